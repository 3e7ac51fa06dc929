/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FH_HTTP_INT_H
#define SL_FH_HTTP_INT_H

#include <curl/curl.h>

#include "fh_http.h"

/* Shared by fh_http.c (the delivery) and fh_http_wire.c (what goes on the wire) only. */

/* Longest requestId accepted from a caller (a UUID is 36). */
#define FH_HTTP_MAX_REQUEST_ID 64

/* True when id can be a requestId: 1 to FH_HTTP_MAX_REQUEST_ID of [0-9A-Za-z-]. */
bool fh_http_request_id_ok(const char *id);

/* Appends the request body: {"requestId":..,"timestamp":ts_ms,"records":[{"data":<base64>},..]},
 * gzipped when gzip. Returns 0 or SL_ENOMEM / SL_EIO (out as it was). */
SL_NODISCARD int fh_http_body(struct sl_buf *out,
                              const char *request_id,
                              int64_t ts_ms,
                              const struct sl_fh_http_rec *recs,
                              size_t n,
                              bool gzip);

/* The request's headers (Content-Type, Content-Encoding, X-Amz-Firehose-*). Returns 0 with
 * *ret_list (owned: curl_slist_free_all) or SL_ENOMEM. */
SL_NODISCARD int fh_http_headers(const struct sl_fh_http_conf *conf,
                                 const char *request_id,
                                 const char *source_arn,
                                 struct curl_slist **ret_list);

/* How one attempt ended, as Firehose judges it. */
struct fh_http_verdict {
    int err;                /* 0: delivered; else as sl_fh_http_result.err */
    const char *error_code; /* SL_FH_HTTP_*, NULL when delivered or canceled */
    long status;
    bool permanent; /* 413 */
};

/* Judges resp to the request carrying request_id that was given timeout_ms; message gets the
 * error message (Firehose's wording, the answer quoted up to SL_FH_HTTP_MAX_QUOTED bytes). Returns
 * 0 or SL_ENOMEM (the verdict is filled either way). */
SL_NODISCARD int fh_http_judge(const struct sl_http_resp *resp,
                               const char *request_id,
                               int64_t timeout_ms,
                               struct fh_http_verdict *v,
                               struct sl_buf *message);

#endif
