/* SPDX-License-Identifier: Apache-2.0 */
/* httpc.c: the HTTP client of the loop. It owns one curl multi handle and drives it from libuv:
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION → httpc_sock.c's table, one
 * uv_poll_t per socket for its whole life) and when to call it back (CURLMOPT_TIMERFUNCTION →
 * one uv_timer_t); readiness goes back to curl through curl_multi_socket_action, and finished
 * transfers are collected from curl_multi_info_read. Connections stay in the multi's cache and
 * are reused across requests.
 *
 * A transfer (struct httpc_xfer) wraps one easy handle and the response it collects: the body in
 * an sl_buf and the headers of the final response as name/value pairs. Finished transfers go
 * back to a small free list with their buffers, so a steady stream of requests allocates
 * nothing per request. Request bodies are borrowed (CURLOPT_POSTFIELDS), never copied.
 *
 * What a request sends as headers when the caller's list cannot go as it is (an AWS request
 * signed with SigV4, a large body that must not wait for "100 Continue") is built by
 * httpc_req.c, just before the easy handle gets its headers, so that what is signed is exactly
 * what curl sends; this file only owns and frees that list. curl's sockets are opened here
 * (OPENSOCKETFUNCTION, which hands them to the socket table), close-on-exec, so exec functions'
 * processes do not inherit kept-alive connections; a socket that cannot be opened reports its
 * errno, which tells sluice's own descriptor exhaustion from a connection the peer refused.
 *
 * Callbacks never run from inside sl_httpc_request or sl_httpc_cancel, nor from inside curl:
 * finished and canceled transfers are queued and reported from a uv_check handle, in the order
 * they finished. While the queue is not empty a uv_idle handle is active, which keeps that loop
 * turn's I/O poll from blocking; so a completion found in a timer callback (curl often
 * finishes a transfer from its 0 ms timer) is reported in the same turn and UV_RUN_ONCE
 * returns right after it. The module does not log (its callers log outcomes); the only secret
 * it holds is a session token in a signed header list, which httpc_req.c wipes when it is
 * freed.
 * Loop thread only. */
#include "httpc.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "httpc_req.h"
#include "httpc_sock.h"

/* Idle transfers kept for reuse; beyond this they are freed. */
#define HTTPC_FREE_MAX 64
/* Response buffers larger than this are not kept when a transfer is reused. */
#define HTTPC_KEEP_BUF_MAX (1024u * 1024u)
/* Headers kept per response; more are ignored. */
#define HTTPC_MAX_HEADERS 128
/* curl adds "Expect: 100-continue" above this body size (curl 7.88's EXPECT_100_THRESHOLD). */
#define HTTPC_EXPECT_THRESHOLD (1024u * 1024u)

struct httpc_hoff {
    size_t name;
    size_t value;
};

struct httpc_xfer {
    struct httpc_xfer *prev, *next; /* in h->active, h->done or h->free_list */
    struct sl_httpc *h;
    CURL *easy;
    sl_http_cb cb;
    void *arg;
    struct curl_slist *own_headers; /* the caller's, edited (signed, "Expect:"), or NULL */
    size_t max_response_bytes;
    bool too_large;
    bool canceled;
    int socket_errno; /* errno of a socket(2) that failed in xfer_open_socket, or 0 */
    CURLcode code;
    struct sl_buf body;
    struct sl_buf htext; /* "name\0value\0" pairs of the final response */
    struct httpc_hoff *hoffs;
    struct sl_http_header *hdrs;
    size_t n_hdrs;
    size_t cap_hdrs;
    char errbuf[CURL_ERROR_SIZE];
};

struct httpc_list {
    struct httpc_xfer *head;
    struct httpc_xfer *tail;
    size_t n;
};

struct sl_httpc {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    uv_idle_t idle;                   /* active while done is not empty: the poll must not block */
    uv_check_t check;                 /* reports done */
    struct sl_httpc_sock_table socks; /* curl's sockets and their polls */
    struct httpc_list active;         /* added to the multi */
    struct httpc_list done;           /* finished or canceled, callback not yet run */
    struct httpc_list free_list;      /* idle, for reuse */
    int closing_handles;              /* timer, idle and check close callbacks still to come */
    bool freeing;
};

/* Appends x at the tail (completions are reported in the order they finished). */
static void list_push(struct httpc_list *l, struct httpc_xfer *x)
{
    x->next = NULL;
    x->prev = l->tail;
    if (l->tail) {
        l->tail->next = x;
    } else {
        l->head = x;
    }
    l->tail = x;
    l->n++;
}

static void list_del(struct httpc_list *l, struct httpc_xfer *x)
{
    if (x->prev) {
        x->prev->next = x->next;
    } else {
        l->head = x->next;
    }
    if (x->next) {
        x->next->prev = x->prev;
    } else {
        l->tail = x->prev;
    }
    x->prev = x->next = NULL;
    l->n--;
}

/* Frees a header list we built; it may hold a session token, so it is wiped first. */
static void xfer_free_headers(struct httpc_xfer *x)
{
    sl_httpc_req_headers_free(x->own_headers);
    x->own_headers = NULL;
}

static void xfer_destroy(struct httpc_xfer *x)
{
    if (!x) {
        return;
    }
    if (x->easy) {
        curl_easy_cleanup(x->easy);
    }
    xfer_free_headers(x);
    sl_buf_fini(&x->body);
    sl_buf_fini(&x->htext);
    sl_free(x->hoffs);
    sl_free(x->hdrs);
    sl_free(x);
}

/* Response headers. curl calls this once per header line, including the status line of every
 * response it reads (a "100 Continue" or a redirect comes before the final one), so a status
 * line starts the list afresh. */
static size_t xfer_header_cb(char *p, size_t size, size_t n, void *userdata)
{
    struct httpc_xfer *x = userdata;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        x->n_hdrs = 0;
        sl_buf_truncate(&x->htext, 0);
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (!colon || colon == p || x->n_hdrs >= HTTPC_MAX_HEADERS) {
        return len; /* blank line, folded continuation or too many: ignored */
    }
    const char *name_end = colon;
    while (name_end > p && (name_end[-1] == ' ' || name_end[-1] == '\t')) {
        name_end--;
    }
    const char *v = colon + 1;
    const char *end = p + len;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    if (x->n_hdrs == x->cap_hdrs) {
        size_t cap = x->cap_hdrs ? x->cap_hdrs * 2 : 16;
        struct httpc_hoff *ho = sl_realloc(x->hoffs, cap * sizeof(*ho));
        if (!ho) {
            return 0;
        }
        x->hoffs = ho;
        struct sl_http_header *hd = sl_realloc(x->hdrs, cap * sizeof(*hd));
        if (!hd) {
            return 0;
        }
        x->hdrs = hd;
        x->cap_hdrs = cap;
    }
    size_t name_off = x->htext.len;
    if (sl_buf_append(&x->htext, p, (size_t)(name_end - p)) < 0 ||
        sl_buf_append(&x->htext, "", 1) < 0) {
        return 0;
    }
    size_t value_off = x->htext.len;
    if (sl_buf_append(&x->htext, v, (size_t)(end - v)) < 0 || sl_buf_append(&x->htext, "", 1) < 0) {
        return 0;
    }
    x->hoffs[x->n_hdrs].name = name_off;
    x->hoffs[x->n_hdrs].value = value_off;
    x->n_hdrs++;
    return len;
}

static size_t xfer_write_cb(char *p, size_t size, size_t n, void *userdata)
{
    struct httpc_xfer *x = userdata;
    size_t len = size * n;
    if (x->body.len + len > x->max_response_bytes) {
        x->too_large = true;
        return 0; /* ends the transfer with CURLE_WRITE_ERROR */
    }
    if (x->body.len == 0 && x->body.cap == 0) {
        curl_off_t cl = -1;
        if (curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl) == CURLE_OK &&
            cl > 0 && (uint64_t)cl <= x->max_response_bytes &&
            sl_buf_reserve(&x->body, (size_t)cl) < 0) {
            return 0;
        }
    }
    if (sl_buf_append(&x->body, p, len) < 0) {
        return 0;
    }
    return len;
}

/* Runs the callback of a finished or canceled transfer and recycles it. x is already out of
 * every list and out of the multi. */
static void xfer_complete(struct sl_httpc *h, struct httpc_xfer *x)
{
    struct sl_http_resp resp;
    memset(&resp, 0, sizeof(resp));
    resp.curl_code = x->code;
    if (x->canceled) {
        resp.curl_error = "canceled";
    } else if (x->code != CURLE_OK) {
        resp.curl_error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->code);
    } else {
        resp.curl_error = "";
    }
    long status = 0;
    if (!x->canceled) {
        (void)curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    }
    resp.status = status;
    if (x->code == CURLE_FILESIZE_EXCEEDED) {
        x->too_large = true;
    }
    resp.too_large = x->too_large;
    /* Bytes of request headers written: 0 while connecting (DNS, TCP, TLS). */
    long sent = 0;
    if (!x->canceled) {
        (void)curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &sent);
    }
    resp.request_sent = sent > 0;
    resp.socket_errno = x->socket_errno;
    resp.body = x->body.data ? x->body.data : "";
    resp.body_len = x->body.len;
    for (size_t i = 0; i < x->n_hdrs; i++) {
        x->hdrs[i].name = x->htext.data + x->hoffs[i].name;
        x->hdrs[i].value = x->htext.data + x->hoffs[i].value;
    }
    resp.headers = x->n_hdrs ? x->hdrs : NULL;
    resp.n_headers = x->n_hdrs;

    sl_http_cb cb = x->cb;
    void *arg = x->arg;
    x->cb = NULL;
    cb(arg, &resp);

    xfer_free_headers(x);
    if (h->freeing || h->free_list.n >= HTTPC_FREE_MAX) {
        xfer_destroy(x);
        return;
    }
    if (x->body.cap > HTTPC_KEEP_BUF_MAX) {
        sl_buf_fini(&x->body);
    }
    if (x->htext.cap > HTTPC_KEEP_BUF_MAX) {
        sl_buf_fini(&x->htext);
    }
    list_push(&h->free_list, x);
}

/* Collects what curl finished into h->done; httpc_check_cb reports them. */
static void httpc_schedule(struct sl_httpc *h);

static void httpc_check_done(struct sl_httpc *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        char *priv = NULL;
        (void)curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        struct httpc_xfer *x = (struct httpc_xfer *)(void *)priv;
        assert(x && x->easy == easy);
        (void)curl_multi_remove_handle(h->multi, easy);
        list_del(&h->active, x);
        x->code = code;
        list_push(&h->done, x);
    }
    httpc_schedule(h);
}

/* A socket curl waits on is ready (httpc_sock.c's poll callback). */
static void httpc_sock_ready(void *arg, curl_socket_t fd, int flags)
{
    struct sl_httpc *h = arg;
    int running = 0;
    (void)curl_multi_socket_action(h->multi, fd, flags, &running);
    httpc_check_done(h);
}

static void httpc_timer_cb(uv_timer_t *t)
{
    struct sl_httpc *h = t->data;
    int running = 0;
    (void)curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    httpc_check_done(h);
}

static int httpc_timerfunction(CURLM *multi, long timeout_ms, void *userp)
{
    struct sl_httpc *h = userp;
    (void)multi;
    if (timeout_ms < 0) {
        (void)uv_timer_stop(&h->timer);
        return 0;
    }
    /* 0 means "as soon as possible": a 0 ms timer fires on the next loop turn, never from
     * inside curl_multi_add_handle's caller. */
    (void)uv_timer_start(&h->timer, httpc_timer_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

static void httpc_idle_cb(uv_idle_t *idle)
{
    (void)idle; /* being active is its whole job */
}

/* Reports finished transfers, outside any curl call, so callbacks may start new requests. A
 * callback that cancels others only adds to the queue, which this loop drains too. */
static void httpc_check_cb(uv_check_t *check)
{
    struct sl_httpc *h = check->data;
    while (h->done.head) {
        struct httpc_xfer *x = h->done.head;
        list_del(&h->done, x);
        xfer_complete(h, x);
    }
    (void)uv_idle_stop(&h->idle);
    (void)uv_check_stop(&h->check);
}

static void httpc_schedule(struct sl_httpc *h)
{
    if (h->done.n && !h->freeing) {
        (void)uv_idle_start(&h->idle, httpc_idle_cb);
        (void)uv_check_start(&h->check, httpc_check_cb);
    }
}

int sl_httpc_new(uv_loop_t *loop, struct sl_httpc **ret_h)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return SL_EIO;
    }
    struct sl_httpc *h = sl_calloc(1, sizeof(*h));
    if (!h) {
        curl_global_cleanup();
        return SL_ENOMEM;
    }
    h->loop = loop;
    h->multi = curl_multi_init();
    if (!h->multi) {
        sl_free(h);
        curl_global_cleanup();
        return SL_ENOMEM;
    }
    sl_httpc_sock_init(&h->socks, loop, httpc_sock_ready, h);
    (void)curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sl_httpc_sock_watch);
    (void)curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, &h->socks);
    (void)curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, httpc_timerfunction);
    (void)curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    (void)curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 256L);
    (void)uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    (void)uv_idle_init(loop, &h->idle);
    h->idle.data = h;
    (void)uv_check_init(loop, &h->check);
    h->check.data = h;
    *ret_h = h;
    return 0;
}

static void httpc_handle_close_cb(uv_handle_t *handle)
{
    struct sl_httpc *h = handle->data;
    if (--h->closing_handles == 0) {
        sl_free(h);
    }
}

void sl_httpc_free(struct sl_httpc *h)
{
    if (!h) {
        return;
    }
    h->freeing = true;
    /* Report what already finished, then abort the rest (a callback may cancel more). */
    while (h->done.head || h->active.head) {
        struct httpc_xfer *x = h->done.head;
        if (x) {
            list_del(&h->done, x);
        } else {
            x = h->active.head;
            (void)curl_multi_remove_handle(h->multi, x->easy);
            list_del(&h->active, x);
            x->code = CURLE_ABORTED_BY_CALLBACK;
            x->canceled = true;
        }
        xfer_complete(h, x);
    }
    while (h->free_list.head) {
        struct httpc_xfer *x = h->free_list.head;
        list_del(&h->free_list, x);
        xfer_destroy(x);
    }
    /* Closing cached connections calls back into h->socks (CURL_POLL_REMOVE, then the close
     * callback), so the table goes after the multi. */
    (void)curl_multi_cleanup(h->multi);
    h->multi = NULL;
    sl_httpc_sock_fini(&h->socks);
    curl_global_cleanup();
    (void)uv_timer_stop(&h->timer);
    (void)uv_idle_stop(&h->idle);
    (void)uv_check_stop(&h->check);
    h->closing_handles = 3;
    uv_close((uv_handle_t *)&h->timer, httpc_handle_close_cb);
    uv_close((uv_handle_t *)&h->idle, httpc_handle_close_cb);
    uv_close((uv_handle_t *)&h->check, httpc_handle_close_cb);
}

const char *sl_http_resp_header(const struct sl_http_resp *resp, const char *name)
{
    for (size_t i = 0; i < resp->n_headers; i++) {
        if (strcasecmp(resp->headers[i].name, name) == 0) {
            return resp->headers[i].value;
        }
    }
    return NULL;
}

static struct httpc_xfer *xfer_get(struct sl_httpc *h)
{
    struct httpc_xfer *x = h->free_list.head;
    if (x) {
        list_del(&h->free_list, x);
        curl_easy_reset(x->easy);
        sl_buf_truncate(&x->body, 0);
        sl_buf_truncate(&x->htext, 0);
    } else {
        x = sl_calloc(1, sizeof(*x));
        if (!x) {
            return NULL;
        }
        x->h = h;
        sl_buf_init(&x->body);
        sl_buf_init(&x->htext);
        x->easy = curl_easy_init();
        if (!x->easy) {
            sl_free(x);
            return NULL;
        }
    }
    x->n_hdrs = 0;
    x->too_large = false;
    x->canceled = false;
    x->socket_errno = 0;
    x->code = CURLE_OK;
    x->errbuf[0] = '\0';
    return x;
}

static void xfer_put(struct sl_httpc *h, struct httpc_xfer *x)
{
    xfer_free_headers(x);
    if (h->free_list.n >= HTTPC_FREE_MAX) {
        xfer_destroy(x);
    } else {
        list_push(&h->free_list, x);
    }
}

/* Opens curl's sockets close-on-exec, atomically: without it every connection (kept alive
 * between requests) would be inherited by the processes exec functions spawn. Also remembers
 * why socket(2) failed, so that running out of descriptors is told from a refused
 * connection. */
static curl_socket_t xfer_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct httpc_xfer *x = clientp;
    (void)purpose;
    int fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd < 0) {
        x->socket_errno = errno;
        return CURL_SOCKET_BAD;
    }
    int r = sl_httpc_sock_add(&x->h->socks, fd);
    if (r < 0) {
        (void)close(fd);
        x->socket_errno = -r;
        return CURL_SOCKET_BAD;
    }
    return fd;
}

static int xfer_setup(struct httpc_xfer *x, const struct sl_http_req *req)
{
    CURL *e = x->easy;
    CURLcode c = CURLE_OK;
#define SETOPT(opt, val)                       \
    do {                                       \
        if (c == CURLE_OK) {                   \
            c = curl_easy_setopt(e, opt, val); \
        }                                      \
    } while (0)
    SETOPT(CURLOPT_PRIVATE, (void *)x);
    SETOPT(CURLOPT_URL, req->url);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
    SETOPT(CURLOPT_OPENSOCKETFUNCTION, xfer_open_socket);
    SETOPT(CURLOPT_OPENSOCKETDATA, (void *)x);
    /* The connection keeps the close callback and its data of the handle that opened it, which
     * may be long gone when the connection closes: its data is the table, not x. */
    SETOPT(CURLOPT_CLOSESOCKETFUNCTION, sl_httpc_sock_close);
    SETOPT(CURLOPT_CLOSESOCKETDATA, (void *)&x->h->socks);
    SETOPT(CURLOPT_WRITEFUNCTION, xfer_write_cb);
    SETOPT(CURLOPT_WRITEDATA, (void *)x);
    SETOPT(CURLOPT_HEADERFUNCTION, xfer_header_cb);
    SETOPT(CURLOPT_HEADERDATA, (void *)x);
    SETOPT(CURLOPT_USERAGENT, "sluice");
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_TCP_KEEPIDLE, 60L);
    SETOPT(CURLOPT_TCP_KEEPINTVL, 30L);
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    if (req->timeout_ms > 0) {
        SETOPT(CURLOPT_TIMEOUT_MS, req->timeout_ms);
    }
    if (req->connect_timeout_ms > 0) {
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    }
    x->max_response_bytes = req->max_response_bytes ? req->max_response_bytes : SIZE_MAX;
    if (req->max_response_bytes) {
        SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_response_bytes);
    }
    const char *method = req->method ? req->method : "POST";
    bool has_body = req->body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
    if (has_body) {
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        SETOPT(CURLOPT_POSTFIELDS, req->body ? req->body : "");
        if (strcmp(method, "POST") != 0) {
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
        }
    } else if (strcmp(method, "GET") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }
    const struct curl_slist *headers = req->headers;
    bool drop_expect = has_body && req->body_len >= HTTPC_EXPECT_THRESHOLD;
    if (c == CURLE_OK && (req->aws_signer || drop_expect)) {
        /* Signed just before the handle gets its headers: nothing curl adds later is signed
         * and everything signed is sent as signed. */
        int r = sl_httpc_req_headers(req, method, has_body, drop_expect, &x->own_headers);
        if (r < 0) {
            return r;
        }
        headers = x->own_headers;
    }
    /* curl never modifies the list; the cast drops const for the setopt prototype only. */
    SETOPT(CURLOPT_HTTPHEADER, (struct curl_slist *)(uintptr_t)headers);
#undef SETOPT
    if (c == CURLE_OUT_OF_MEMORY) {
        return SL_ENOMEM;
    }
    return c == CURLE_OK ? 0 : SL_EINVAL;
}

int sl_httpc_request(struct sl_httpc *h, const struct sl_http_req *req, sl_http_cb cb, void *arg)
{
    assert(!h->freeing);
    struct httpc_xfer *x = xfer_get(h);
    if (!x) {
        return SL_ENOMEM;
    }
    int r = xfer_setup(x, req);
    if (r < 0) {
        xfer_put(h, x);
        return r;
    }
    x->cb = cb;
    x->arg = arg;
    CURLMcode mc = curl_multi_add_handle(h->multi, x->easy);
    if (mc != CURLM_OK) {
        x->cb = NULL;
        xfer_put(h, x);
        return mc == CURLM_OUT_OF_MEMORY ? SL_ENOMEM : SL_EIO;
    }
    list_push(&h->active, x);
    return 0;
}

size_t sl_httpc_cancel(struct sl_httpc *h, void *arg)
{
    size_t n = 0;
    struct httpc_xfer *x = h->active.head;
    while (x) {
        struct httpc_xfer *next = x->next;
        if (x->arg == arg) {
            (void)curl_multi_remove_handle(h->multi, x->easy);
            list_del(&h->active, x);
            x->code = CURLE_ABORTED_BY_CALLBACK;
            x->canceled = true;
            list_push(&h->done, x);
            n++;
        }
        x = next;
    }
    if (n) {
        httpc_schedule(h);
    }
    return n;
}

size_t sl_httpc_in_flight(const struct sl_httpc *h)
{
    return h->active.n + h->done.n;
}

int64_t sl_http_retry_after_ms(const struct sl_http_resp *resp)
{
    const int64_t cap_ms = 24 * 3600 * 1000LL;
    const char *v = sl_http_resp_header(resp, "Retry-After");
    if (!v || !*v) {
        return -1;
    }
    if (*v >= '0' && *v <= '9') {
        char *end;
        errno = 0;
        long long s = strtoll(v, &end, 10);
        if (errno || (*end && *end != ' ')) {
            return -1;
        }
        return s > cap_ms / 1000 ? cap_ms : (int64_t)s * 1000;
    }
    time_t t = curl_getdate(v, NULL);
    if (t < 0) {
        return -1;
    }
    time_t now = time(NULL);
    if (t <= now) {
        return 0;
    }
    int64_t ms = ((int64_t)t - (int64_t)now) * 1000;
    return ms > cap_ms ? cap_ms : ms;
}
