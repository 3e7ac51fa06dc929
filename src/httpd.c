/* SPDX-License-Identifier: Apache-2.0 */
/* httpd.c: sluice's HTTP server, libmicrohttpd driven by the libuv loop. It owns the listening
 * socket, the connections, reading each request body (bounded: a longer one is dropped as it
 * arrives and the handler is told it was too large) and handing whole requests to one handler,
 * which answers now or later. It knows no API: the Firehose ingest API (firehose_api.c) and any
 * later one route on what the handler sees.
 *
 * About the loop: MHD runs in its "external select" mode with its own epoll set
 * (MHD_USE_EPOLL, no MHD thread), so nothing here blocks and every callback runs on the loop
 * thread. A uv_poll_t watches MHD's epoll fd (readable when any of its sockets is) and a
 * uv_timer_t fires at MHD_get_timeout (connection timeouts, and 0 when MHD has buffered work
 * left); each calls MHD_run, then re-arms the timer. A request answered later is suspended
 * (MHD_suspend_connection) and resumed when answered; the resume wakes MHD's epoll set through
 * its inter-thread channel, so the poll fires and MHD_run sends the answer.
 *
 * About bodies: the buffer is sized from Content-Length once (capped at max_body_bytes) so a
 * body arriving in many chunks is copied once, into place.
 *
 * About shutdown: a request is busy from its first bytes until its answer is sent (or its
 * connection is gone), so a drain that waits for busy to reach 0 never cuts a request or an
 * answer short. Once quiesced, the listening socket is closed and every answer carries
 * Connection: close, so kept-alive clients leave rather than send more. */
#include "httpd.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <microhttpd.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"

#define HTTPD_COMP "httpd"

struct sl_httpd {
    uv_loop_t *loop;
    struct MHD_Daemon *mhd;
    uv_poll_t poll;
    uv_timer_t timer;
    struct sl_httpd_conf conf;
    int port;
    size_t busy;      /* requests begun and not yet ended (answer sent or connection gone) */
    bool quiesced;    /* answers close their connection: keep-alive clients go elsewhere */
    int open_handles; /* the poll and the timer, until their close callbacks */
    bool polling;
};

struct sl_httpd_req {
    struct sl_httpd *h; /* NULL once the connection is gone */
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    struct sl_buf body;
    struct sl_buf headers; /* response headers: "name\0value\0"... */
    struct MHD_Response *resp;
    unsigned status;
    bool counted; /* in h->busy until the request ends */
    bool too_large;
    bool dispatched;
    bool answered;
    bool suspended;
};

static void httpd_arm(struct sl_httpd *h);
static void httpd_timer_cb(uv_timer_t *t);

/* ------------------------------------------------------------------------------------------ */
/* Addresses */

int sl_httpd_parse_listen(
    const char *listen, char **ret_host, int *ret_port, char *errbuf, size_t errlen)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || colon[1] == '\0') {
        (void)snprintf(errbuf, errlen, "\"%s\" is not host:port", listen);
        return SL_EINVAL;
    }
    const char *host = listen;
    size_t host_len = (size_t)(colon - listen);
    if (host[0] == '[') {
        if (host_len < 3 || host[host_len - 1] != ']') {
            (void)snprintf(errbuf, errlen, "\"%s\": an IPv6 address goes in brackets", listen);
            return SL_EINVAL;
        }
        host++;
        host_len -= 2;
    } else if (memchr(host, ':', host_len)) {
        (void)snprintf(errbuf, errlen, "\"%s\": write an IPv6 address as [addr]:port", listen);
        return SL_EINVAL;
    }
    long port = 0;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535) {
            (void)snprintf(errbuf, errlen, "\"%s\": the port is not a number from 0 to 65535",
                           listen);
            return SL_EINVAL;
        }
        port = port * 10 + (*p - '0');
    }
    if (port > 65535) {
        (void)snprintf(errbuf, errlen, "\"%s\": the port is not a number from 0 to 65535", listen);
        return SL_EINVAL;
    }
    char *s = sl_strndup(host, host_len);
    if (!s) {
        return SL_ENOMEM;
    }
    *ret_host = s;
    *ret_port = (int)port;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Requests */

const char *sl_httpd_req_method(const struct sl_httpd_req *req)
{
    return req->method;
}

const char *sl_httpd_req_path(const struct sl_httpd_req *req)
{
    return req->path;
}

const char *sl_httpd_req_header(const struct sl_httpd_req *req, const char *name)
{
    if (!req->conn) {
        return NULL;
    }
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *sl_httpd_req_body(const struct sl_httpd_req *req, size_t *ret_len)
{
    *ret_len = req->body.len;
    return req->body.data ? req->body.data : "";
}

bool sl_httpd_req_too_large(const struct sl_httpd_req *req)
{
    return req->too_large;
}

int sl_httpd_req_add_header(struct sl_httpd_req *req, const char *name, const char *value)
{
    if (sl_buf_append(&req->headers, name, strlen(name) + 1) < 0 ||
        sl_buf_append(&req->headers, value, strlen(value) + 1) < 0) {
        return SL_ENOMEM;
    }
    return 0;
}

static void httpd_req_free(struct sl_httpd_req *req)
{
    if (req->resp) {
        MHD_destroy_response(req->resp);
    }
    sl_buf_fini(&req->body);
    sl_buf_fini(&req->headers);
    sl_free(req);
}

static void httpd_free_body(void *p)
{
    sl_free(p);
}

void sl_httpd_respond(
    struct sl_httpd_req *req, unsigned status, const char *content_type, char *body, size_t len)
{
    assert(!req->answered);
    req->answered = true;
    struct sl_httpd *h = req->h;
    if (!h) {
        /* The connection closed while the answer was being made. */
        sl_free(body);
        httpd_req_free(req);
        return;
    }
    struct MHD_Response *resp;
    if (body) {
        resp = MHD_create_response_from_buffer_with_free_callback(len, body, httpd_free_body);
        if (!resp) {
            sl_free(body);
        }
    } else {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    }
    if (resp) {
        if (content_type) {
            (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        }
        for (size_t off = 0; off < req->headers.len;) {
            const char *name = req->headers.data + off;
            const char *value = name + strlen(name) + 1;
            (void)MHD_add_response_header(resp, name, value);
            off = (size_t)(value + strlen(value) + 1 - req->headers.data);
        }
        if (h->quiesced) {
            /* Shutting down: the client reconnects (to a restarted server) for its next call. */
            (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
        }
    }
    /* Without memory for a response the connection is closed: the access callback answers
     * MHD_NO when it finds none. */
    req->resp = resp;
    req->status = status;
    if (req->suspended) {
        req->suspended = false;
        MHD_resume_connection(req->conn);
        /* MHD_run picks the connection up again; run it on the next loop turn rather than
         * wait for its epoll set to wake us. */
        uv_timer_start(&h->timer, httpd_timer_cb, 0, 0);
    }
}

static enum MHD_Result httpd_queue(struct sl_httpd_req *req)
{
    if (!req->resp) {
        return MHD_NO;
    }
    enum MHD_Result r = MHD_queue_response(req->conn, req->status, req->resp);
    MHD_destroy_response(req->resp);
    req->resp = NULL;
    return r;
}

static enum MHD_Result httpd_access_cb(void *cls,
                                       struct MHD_Connection *conn,
                                       const char *url,
                                       const char *method,
                                       const char *version,
                                       const char *upload_data,
                                       size_t *upload_data_size,
                                       void **con_cls)
{
    struct sl_httpd *h = cls;
    struct sl_httpd_req *req = *con_cls;
    (void)version;
    if (!req) {
        req = sl_calloc(1, sizeof(*req));
        if (!req) {
            return MHD_NO;
        }
        req->h = h;
        req->conn = conn;
        req->method = method;
        req->path = url;
        sl_buf_init(&req->body);
        sl_buf_init(&req->headers);
        *con_cls = req;
        /* Counted from its first bytes, so a drain waits for a request being read too. */
        req->counted = true;
        h->busy++;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            unsigned long long n = strtoull(cl, NULL, 10);
            if (n > h->conf.max_body_bytes) {
                req->too_large = true;
            } else if (n > 0 && sl_buf_reserve(&req->body, (size_t)n) < 0) {
                return MHD_NO;
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->too_large || req->body.len + n > h->conf.max_body_bytes) {
            req->too_large = true;
            sl_buf_fini(&req->body);
            return MHD_YES;
        }
        if (sl_buf_append(&req->body, upload_data, n) < 0) {
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (req->answered) {
        return httpd_queue(req);
    }
    if (!req->dispatched) {
        req->dispatched = true;
        h->conf.handler(h->conf.arg, req);
        if (req->answered) {
            return httpd_queue(req);
        }
    }
    req->suspended = true;
    MHD_suspend_connection(conn);
    return MHD_YES;
}

static void httpd_completed_cb(void *cls,
                               struct MHD_Connection *conn,
                               void **con_cls,
                               enum MHD_RequestTerminationCode toe)
{
    struct sl_httpd_req *req = *con_cls;
    (void)cls;
    (void)conn;
    if (!req) {
        return;
    }
    *con_cls = NULL;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        sl_log_debug(HTTPD_COMP, NULL, "%s %s: connection ended before the answer was sent (%d)",
                     req->method, req->path, (int)toe);
    }
    if (req->counted) {
        req->counted = false;
        req->h->busy--;
    }
    if (req->dispatched && !req->answered) {
        /* The handler still holds req: it is freed when answered. */
        req->h = NULL;
        req->conn = NULL;
        req->method = req->path = "";
        return;
    }
    httpd_req_free(req);
}

/* ------------------------------------------------------------------------------------------ */
/* The loop */

static void httpd_log_cb(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    (void)cls;
    (void)vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = '\0';
    }
    sl_log_debug(HTTPD_COMP, NULL, "%s", line);
}

static void httpd_run(struct sl_httpd *h)
{
    (void)MHD_run(h->mhd);
    httpd_arm(h);
}

static void httpd_timer_cb(uv_timer_t *t)
{
    httpd_run(t->data);
}

static void httpd_poll_cb(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    httpd_run(p->data);
}

static void httpd_arm(struct sl_httpd *h)
{
    MHD_UNSIGNED_LONG_LONG to_ms = 0;
    if (MHD_get_timeout(h->mhd, &to_ms) == MHD_YES) {
        uv_timer_start(&h->timer, httpd_timer_cb, (uint64_t)to_ms, 0);
    } else {
        uv_timer_stop(&h->timer);
    }
}

int sl_httpd_new(uv_loop_t *loop,
                 const struct sl_httpd_conf *conf,
                 struct sl_httpd **ret_h,
                 char *errbuf,
                 size_t errlen)
{
    char *host = NULL;
    int port = 0;
    int r = sl_httpd_parse_listen(conf->listen, &host, &port, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port_text[8];
    (void)snprintf(port_text, sizeof(port_text), "%d", port);
    int gr = getaddrinfo(host, port_text, &hints, &ai);
    sl_free(host);
    if (gr != 0) {
        (void)snprintf(errbuf, errlen, "listen \"%s\": %s", conf->listen, gai_strerror(gr));
        return SL_EINVAL;
    }
    struct sl_httpd *h = sl_calloc(1, sizeof(*h));
    if (!h) {
        freeaddrinfo(ai);
        return SL_ENOMEM;
    }
    h->loop = loop;
    h->conf = *conf;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    errno = 0;
    h->mhd = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, httpd_access_cb, h,
                              MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
                              conf->max_conns, MHD_OPTION_CONNECTION_TIMEOUT, conf->idle_timeout_s,
                              MHD_OPTION_NOTIFY_COMPLETED, httpd_completed_cb, h,
                              MHD_OPTION_EXTERNAL_LOGGER, httpd_log_cb, h, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->mhd) {
        int e = errno;
        (void)snprintf(errbuf, errlen, "cannot listen on %s: %s", conf->listen,
                       e ? strerror(e) : "address in use or not local?");
        sl_free(h);
        return SL_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    int epfd = info ? info->epoll_fd : -1;
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? (int)info->port : port;
    if (epfd < 0 || uv_poll_init(loop, &h->poll, epfd) != 0) {
        (void)snprintf(errbuf, errlen, "cannot watch the HTTP server's sockets");
        MHD_stop_daemon(h->mhd);
        sl_free(h);
        return SL_EIO;
    }
    uv_timer_init(loop, &h->timer);
    h->poll.data = h->timer.data = h;
    h->open_handles = 2;
    uv_poll_start(&h->poll, UV_READABLE, httpd_poll_cb);
    h->polling = true;
    httpd_arm(h);
    *ret_h = h;
    return 0;
}

int sl_httpd_port(const struct sl_httpd *h)
{
    return h->port;
}

size_t sl_httpd_busy(const struct sl_httpd *h)
{
    return h->busy;
}

void sl_httpd_quiesce(struct sl_httpd *h)
{
    if (h->quiesced) {
        return;
    }
    h->quiesced = true;
    MHD_socket fd = MHD_quiesce_daemon(h->mhd);
    if (fd != MHD_INVALID_SOCKET) {
        (void)close(fd);
    }
}

static void httpd_close_cb(uv_handle_t *handle)
{
    struct sl_httpd *h = handle->data;
    if (--h->open_handles == 0) {
        sl_free(h);
    }
}

void sl_httpd_free(struct sl_httpd *h)
{
    if (!h) {
        return;
    }
    /* Out of the loop's epoll set before MHD closes its epoll fd. */
    uv_poll_stop(&h->poll);
    uv_close((uv_handle_t *)&h->poll, httpd_close_cb);
    uv_close((uv_handle_t *)&h->timer, httpd_close_cb);
    MHD_stop_daemon(h->mhd);
    h->mhd = NULL;
}
