/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_HTTPC_H
#define SL_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

#include "clock.h"
#include "err.h"
#include "sigv4.h"

/* An HTTP client on the loop: one curl multi handle driven by libuv (socket and timer
 * callbacks), so thousands of requests can be in flight on the loop thread. Connections are
 * kept alive and reused. TLS is verified. Loop thread. */
struct sl_httpc;

SL_NODISCARD int sl_httpc_new(uv_loop_t *loop, struct sl_httpc **ret_h);
/* Aborts every request in flight (each callback runs with CURLE_ABORTED_BY_CALLBACK) and
 * frees h once its handles are closed. */
void sl_httpc_free(struct sl_httpc *h);

struct sl_http_req {
    const char *method; /* "POST" */
    const char *url;
    const struct curl_slist *headers; /* borrowed until the callback */
    const char *body;                 /* borrowed until the callback */
    size_t body_len;
    long timeout_ms;           /* whole request; 0 = none */
    long connect_timeout_ms;   /* 0 = curl's default */
    size_t max_response_bytes; /* larger bodies end the transfer with too_large set */
    /* AWS SigV4: with a signer, the request is signed for aws_region and aws_service (both
     * required) at aws_clock's wall time (NULL: the system clock) just before it is handed to
     * curl. The headers sent are exactly the headers signed: the caller's (less those named
     * Host, Authorization, X-Amz-Date, X-Amz-Security-Token or X-Amz-Content-Sha256, which the
     * signer owns, and less removals such as "Expect:"), an explicit Host with the port when
     * it is not the scheme's default, Content-Type when a body has none (curl's default
     * application/x-www-form-urlencoded, signed), X-Amz-Date, X-Amz-Security-Token with a
     * session token, and Authorization. The body is hashed from body/body_len. */
    struct sl_sigv4 *aws_signer; /* borrowed during sl_httpc_request only */
    const char *aws_region;
    const char *aws_service;
    const struct sl_clock *aws_clock;
};

struct sl_http_resp {
    CURLcode curl_code;     /* CURLE_OK when an HTTP answer arrived */
    const char *curl_error; /* curl's error text, or "" */
    long status;            /* HTTP status, 0 without an answer */
    const char *body;       /* NUL-terminated */
    size_t body_len;
    bool too_large;    /* the body exceeded max_response_bytes */
    bool request_sent; /* the request went out (a connection was made and the request written) */
    int socket_errno;  /* errno of a socket(2) sluice could not open for it (EMFILE ...), or 0 */
    const struct sl_http_header *headers;
    size_t n_headers;
};

struct sl_http_header {
    const char *name;
    const char *value;
};

/* Returns the value of header name (case-insensitive) from resp, or NULL. */
const char *sl_http_resp_header(const struct sl_http_resp *resp, const char *name);

/* Returns the delay a Retry-After header of resp asks for (delta-seconds or an HTTP date) in
 * milliseconds, capped at one day; -1 when there is none or it cannot be read. */
int64_t sl_http_retry_after_ms(const struct sl_http_resp *resp);

typedef void (*sl_http_cb)(void *arg, const struct sl_http_resp *resp);

/* Starts req. Returns 0 (cb runs exactly once, never from inside this call) or an error (cb
 * never runs): SL_EINVAL for a request curl or the signer refuses (a URL that does not parse,
 * a header that cannot be signed), SL_ENOMEM, SL_EIO. */
SL_NODISCARD int
sl_httpc_request(struct sl_httpc *h, const struct sl_http_req *req, sl_http_cb cb, void *arg);

/* Aborts every request in flight whose callback argument is arg. Each callback still runs once,
 * on a later loop turn (never from inside this call), with curl_code CURLE_ABORTED_BY_CALLBACK,
 * status 0 and curl_error "canceled". Returns how many were canceled. */
size_t sl_httpc_cancel(struct sl_httpc *h, void *arg);

/* Number of requests in flight. */
size_t sl_httpc_in_flight(const struct sl_httpc *h);

#endif
