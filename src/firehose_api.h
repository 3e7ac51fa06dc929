/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FIREHOSE_API_H
#define SL_FIREHOSE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct sl_stream_conf;
struct sl_httpd_req;

/* AWS's hard limits of the ingest API (wire.md §4.1). */
#define SL_FIREHOSE_BATCH_MAX       500
#define SL_FIREHOSE_RECORD_MAX      1024000           /* bytes of one record, decoded */
#define SL_FIREHOSE_CALL_MAX        (4 * 1024 * 1024) /* bytes of one PutRecordBatch, decoded */
#define SL_FIREHOSE_BODY_MAX        (6 * 1024 * 1024) /* request body: 4 MiB as base64 + JSON */
#define SL_FIREHOSE_CONTENT_TYPE    "application/x-amz-json-1.1"
#define SL_FIREHOSE_ACCOUNT_DEFAULT "000000000000"

/* One record of a put, decoded. Borrowed for the put call only. */
struct sl_firehose_rec {
    const char *data;
    size_t len;
};

/* What the API serves: the delivery streams, by index. All callbacks run on the loop thread
 * during sl_firehose_api_handle. */
struct sl_firehose_host {
    void *arg;
    const char *region;
    const char *account;
    double created_s; /* CreateTimestamp of every stream: when sluice started */
    size_t n_streams;
    const struct sl_stream_conf *(*conf_at)(void *arg, size_t i);
    /* Takes the records of one put (copies them). Returns how many of the first ones it took:
     * the others are answered ServiceUnavailableException (the SDKs send them again). */
    size_t (*put)(void *arg, size_t i, const struct sl_firehose_rec *recs, size_t n);
    /* RecordIds: unique per process (salt is random at start-up, seq counts). */
    uint64_t id_salt;
    uint64_t id_seq;
};

/* An answer: status, body (owned, sl_malloc'd) and, for errors, AWS's __type (static). */
struct sl_firehose_reply {
    unsigned status;
    char *body;
    size_t len;
    const char *error_type;
};

/* Handles one call. target is the X-Amz-Target header (NULL when absent); body[0..len) the
 * request; too_large says the body went over SL_FIREHOSE_BODY_MAX and was not kept. Fills *ret
 * with the answer; returns 0, or SL_ENOMEM (then *ret is a 500 InternalFailure without body
 * text if even that could not be built). Loop thread. */
SL_NODISCARD int sl_firehose_api_handle(struct sl_firehose_host *host,
                                        const char *target,
                                        const char *body,
                                        size_t len,
                                        bool too_large,
                                        struct sl_firehose_reply *ret);

/* An HTTP request to the Firehose API: handles it and answers it, with a fresh
 * x-amzn-RequestId. Logs refused calls (rate-limited); never logs headers (they carry the
 * caller's signature). Loop thread. */
void sl_firehose_api_serve(struct sl_firehose_host *host, struct sl_httpd_req *req);

#endif
