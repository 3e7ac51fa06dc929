/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FAILREC_H
#define SL_FAILREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

struct sl_batch_run;
struct sl_source_ops;

/* The AWS invocation record an on-failure destination receives (reference/esm.md §4.4). */

#define SL_FAILREC_RETRIES_EXHAUSTED "RetryAttemptsExhausted"
#define SL_FAILREC_RECORD_AGE        "RecordAgeExceeded"
#define SL_FAILREC_PAYLOAD_TOO_LARGE "MaximumPayloadSizeExceeded"

enum sl_failrec_response {
    SL_FAILREC_RESPONSE_OMIT,   /* RecordAgeExceeded: no responseContext at all */
    SL_FAILREC_RESPONSE_NULL,   /* MaximumPayloadSizeExceeded: "responseContext":null */
    SL_FAILREC_RESPONSE_OBJECT, /* RetryAttemptsExhausted: status, version, functionError */
};

struct sl_failrec {
    const char *condition; /* SL_FAILREC_* */
    const char *function_arn;
    unsigned invoke_count; /* approximateInvokeCount */
    enum sl_failrec_response response;
    int status;             /* responseContext.statusCode */
    bool function_error;    /* functionError "Unhandled", else null */
    int64_t now_ms;         /* wall clock: "timestamp" */
    uint64_t request_id[2]; /* random bits for requestId (a version 4 UUID) */
    bool per_record;        /* for a one-document-per-record destination (kafka://) */
};

/* Appends the invocation record for the records runs cover (n_runs >= 1, one per partition) to
 * out, with the batch info written by the source's event shape (ops completed by the
 * registry), and "payload" (the event those records made) when payload is not NULL. Returns 0
 * or SL_ENOMEM. */
SL_NODISCARD int sl_failrec_build(struct sl_buf *out,
                                  const struct sl_failrec *f,
                                  const struct sl_source_ops *ops,
                                  void *src_ctx,
                                  const struct sl_batch_run *runs,
                                  size_t n_runs,
                                  const char *payload,
                                  size_t payload_len);

#endif
