/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FIREHOSE_REPLY_H
#define SL_FIREHOSE_REPLY_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "firehose_api.h"
#include "log.h"

#define SL_FIREHOSE_NAME_MAX 64 /* characters of a DeliveryStreamName */

/* Fills *ret with AWS's JSON error answer: status, __type (static) and the message. Returns 0
 * or SL_ENOMEM (an answer that could not be built is answered InternalFailure by the
 * dispatch, so a caller may ignore it). */
int sl_firehose_reply_error(struct sl_firehose_reply *ret,
                            unsigned status,
                            const char *type,
                            const char *fmt,
                            ...) SL_PRINTF(4, 5);

/* Coral's wording of a shape violation ("1 validation error detected: Value ... at 'records'
 * failed to satisfy constraint: Member must ..."). */
#define SL_FIREHOSE_VALIDATION(ret, fmt, ...)                                                     \
    sl_firehose_reply_error(ret, 400, "ValidationException", "1 validation error detected: " fmt, \
                            __VA_ARGS__)

/* Fills *ret with a 200 answer of o (takes ownership of o; NULL is out of memory). Returns 0 or
 * SL_ENOMEM. */
SL_NODISCARD int sl_firehose_reply_json(struct sl_firehose_reply *ret, cJSON *o);

/* The DeliveryStreamName of the call req, checked as AWS does: returns its index in host, or -1
 * with *ret filled with the error (must_exist: also ResourceNotFoundException for an unknown
 * name) and *ret_r 0 or SL_ENOMEM. */
long sl_firehose_reply_stream(struct sl_firehose_host *host,
                              const cJSON *req,
                              struct sl_firehose_reply *ret,
                              int *ret_r,
                              bool must_exist);

#endif
