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

/* The host's answer to a put: status 0, the records taken are durable; negative, they are not
 * (answered InternalFailure). */
typedef void (*sl_firehose_put_cb)(void *arg, int status);

/* What the API serves: the delivery streams, by index. All callbacks run on the loop thread. */
struct sl_firehose_host {
    void *arg;
    const char *region;
    const char *account;
    double created_s; /* CreateTimestamp of every stream: when sluice started */
    size_t n_streams;
    const struct sl_stream_conf *(*conf_at)(void *arg, size_t i);
    /* Takes the records of one put (copies them). Returns 0 with *ret_took the number of the
     * first ones taken (the others are answered ServiceUnavailableException, which the SDKs
     * send again) and calls cb(cb_arg, status) once they are durable, possibly before it
     * returns; or, without calling cb: SL_ETHROTTLED (none taken: each record answered
     * ServiceUnavailableException), SL_ECANCELED (shutting down: the call answered 503
     * ServiceUnavailableException, which the SDKs retry) or another negative error
     * (InternalFailure). */
    int (*put)(void *arg,
               size_t i,
               const struct sl_firehose_rec *recs,
               size_t n,
               size_t *ret_took,
               sl_firehose_put_cb cb,
               void *cb_arg);
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

/* An answer that came later: rep's body belongs to the callee (sl_free it, or hand it on). */
typedef void (*sl_firehose_reply_cb)(void *arg, struct sl_firehose_reply *rep);

/* Handles one call. target is the X-Amz-Target header (NULL when absent); body[0..len) the
 * request; too_large says the body went over SL_FIREHOSE_BODY_MAX and was not kept. Fills *ret
 * with the answer and returns 0, or SL_ENOMEM (then *ret is a 500 InternalFailure without body
 * text if even that could not be built); or returns SL_EINPROGRESS for a put whose records are
 * not durable yet: cb(arg, rep) answers it later (a success only once they are). Loop thread. */
SL_NODISCARD int sl_firehose_api_handle(struct sl_firehose_host *host,
                                        const char *target,
                                        const char *body,
                                        size_t len,
                                        bool too_large,
                                        struct sl_firehose_reply *ret,
                                        sl_firehose_reply_cb cb,
                                        void *arg);

/* An HTTP request to the Firehose API: handles it and answers it (a put once its records are
 * durable), with a fresh x-amzn-RequestId. Logs refused calls (rate-limited); never logs
 * headers (they carry the caller's signature). Loop thread. */
void sl_firehose_api_serve(struct sl_firehose_host *host, struct sl_httpd_req *req);

#endif
