/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_HTTPC_H
#define SL_HTTPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

#include "err.h"

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
    const char *aws_sigv4;     /* "aws:amz:REGION:SERVICE" to sign, or NULL */
    const char *username;      /* SigV4 access key id, borrowed */
    const char *password;      /* SigV4 secret, borrowed; never logged */
    size_t max_response_bytes; /* larger bodies end the transfer with too_large set */
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
 * never runs). */
SL_NODISCARD int
sl_httpc_request(struct sl_httpc *h, const struct sl_http_req *req, sl_http_cb cb, void *arg);

/* Aborts every request in flight whose callback argument is arg. Each callback still runs once,
 * on a later loop turn (never from inside this call), with curl_code CURLE_ABORTED_BY_CALLBACK,
 * status 0 and curl_error "canceled". Returns how many were canceled. */
size_t sl_httpc_cancel(struct sl_httpc *h, void *arg);

/* Number of requests in flight. */
size_t sl_httpc_in_flight(const struct sl_httpc *h);

#endif
