/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_HTTPD_H
#define SL_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "err.h"

/* sluice's HTTP server (libmicrohttpd on the libuv loop). Loop thread only. */

struct sl_httpd;
struct sl_httpd_req;

/* Called once per request, with the whole body read (or too large: sl_httpd_req_too_large).
 * The handler answers with sl_httpd_respond, now or later (the connection waits, suspended,
 * until it does). req is valid until it is answered. */
typedef void (*sl_httpd_handler)(void *arg, struct sl_httpd_req *req);

struct sl_httpd_conf {
    const char *listen;      /* "host:port" ("127.0.0.1:4573", "[::1]:0"); port 0 picks one */
    size_t max_body_bytes;   /* a longer body is not kept: the handler sees too_large */
    unsigned max_conns;      /* connections at once */
    unsigned idle_timeout_s; /* an idle connection is closed after this */
    sl_httpd_handler handler;
    void *arg;
};

/* Parses "host:port" as `listen` takes it. Returns 0 or SL_EINVAL (with why in errbuf). On
 * success *ret_host is owned (brackets of an IPv6 address removed). Any thread. */
SL_NODISCARD int sl_httpd_parse_listen(
    const char *listen, char **ret_host, int *ret_port, char *errbuf, size_t errlen);

/* Binds and starts serving on loop. Returns 0 and *ret_h, or SL_EINVAL (bad address),
 * SL_EIO (cannot bind: errbuf says why) or SL_ENOMEM. */
SL_NODISCARD int sl_httpd_new(uv_loop_t *loop,
                              const struct sl_httpd_conf *conf,
                              struct sl_httpd **ret_h,
                              char *errbuf,
                              size_t errlen);

/* The port it listens on (the one picked for port 0). */
int sl_httpd_port(const struct sl_httpd *h);

/* Requests begun (their first bytes read) and not yet ended: answered and sent, or their
 * connection gone. A drain waits for these. */
size_t sl_httpd_busy(const struct sl_httpd *h);

/* Stops accepting connections; requests already begun are still read and answered, and every
 * answer from then on closes its connection (Connection: close), so keep-alive clients leave. */
void sl_httpd_quiesce(struct sl_httpd *h);

/* Closes every connection and frees h. Requests not yet answered are dropped (their clients
 * see the connection close and retry). NULL is a no-op. */
void sl_httpd_free(struct sl_httpd *h);

/* The request, borrowed until it is answered. Header lookup ignores case; NULL when absent. */
const char *sl_httpd_req_method(const struct sl_httpd_req *req);
const char *sl_httpd_req_path(const struct sl_httpd_req *req);
const char *sl_httpd_req_header(const struct sl_httpd_req *req, const char *name);
const char *sl_httpd_req_body(const struct sl_httpd_req *req, size_t *ret_len);
bool sl_httpd_req_too_large(const struct sl_httpd_req *req);

/* Adds a response header (copied). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int
sl_httpd_req_add_header(struct sl_httpd_req *req, const char *name, const char *value);

/* Answers req with status, content_type and body[0..len) (takes ownership of body, an
 * sl_malloc'd buffer, or NULL for none). req must not be used afterwards. */
void sl_httpd_respond(
    struct sl_httpd_req *req, unsigned status, const char *content_type, char *body, size_t len);

#endif
