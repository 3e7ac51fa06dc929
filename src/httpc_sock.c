/* SPDX-License-Identifier: Apache-2.0 */
/* httpc_sock.c: the sockets of httpc.c's curl multi handle and the libuv polls that watch them.
 *
 * A socket curl opens through httpc.c (CURLOPT_OPENSOCKETFUNCTION) gets one uv_poll_t at once
 * and keeps it until curl closes the socket (CURLOPT_CLOSESOCKETFUNCTION), across every
 * transfer that reuses the connection. The reason is cost: libuv's uv_poll_start first stops
 * the poll, which takes the descriptor out of epoll, so starting, stopping or re-arming a poll
 * per transfer costs epoll_ctl calls on every request. Here the poll is (re)started only when
 * the events curl wants change.
 *
 * curl says CURL_POLL_REMOVE when no transfer uses a socket any more, which for a kept-alive
 * connection means it went back to the connection cache (curl 7.88 documents that the socket
 * "might soon be added again"; it also sends the REMOVE, if the socket was watched, just before
 * it calls the close callback). An idle socket that was watched for reading stays watched,
 * unreferenced so that it keeps no loop alive: the next transfer on that connection wants to
 * read again and then nothing changes. If it becomes readable while idle (the peer closed it, or
 * sent what nobody asked for) its poll is stopped, because level-triggered readiness would
 * otherwise wake the loop on every turn; curl finds the connection dead when it next checks it.
 * A socket watched for writing is stopped at REMOVE for the same reason.
 *
 * Sockets curl opens without the open callback (a resolver's wake-up pair) are watched from
 * their first CURLMOPT_SOCKETFUNCTION call until their REMOVE, as they come.
 *
 * The table is indexed by descriptor. Loop thread only. */
#include "httpc_sock.h"

#include <assert.h>
#include <errno.h>
#include <unistd.h>

#include "alloc.h"

struct httpc_sock {
    uv_poll_t poll;
    struct sl_httpc_sock_table *t;
    curl_socket_t fd;
    int events; /* UV_READABLE | UV_WRITABLE being watched; 0: stopped */
    bool owned; /* opened through sl_httpc_sock_add: kept until sl_httpc_sock_close */
    bool busy;  /* a transfer uses it (between curl's first wish and its REMOVE) */
};

void sl_httpc_sock_init(struct sl_httpc_sock_table *t,
                        uv_loop_t *loop,
                        sl_httpc_sock_ready_cb ready,
                        void *arg)
{
    t->loop = loop;
    t->ready = ready;
    t->arg = arg;
    t->by_fd = NULL;
    t->cap = 0;
}

static struct httpc_sock *sock_get(const struct sl_httpc_sock_table *t, curl_socket_t fd)
{
    return fd >= 0 && (size_t)fd < t->cap ? t->by_fd[fd] : NULL;
}

static void sock_close_cb(uv_handle_t *handle)
{
    sl_free(handle->data);
}

/* Takes s out of the table and closes its poll (which also takes fd out of epoll); s is freed
 * once libuv is done with it. */
static void sock_drop(struct sl_httpc_sock_table *t, struct httpc_sock *s)
{
    assert(t->by_fd[s->fd] == s);
    t->by_fd[s->fd] = NULL;
    uv_close((uv_handle_t *)&s->poll, sock_close_cb);
}

static void sock_stop(struct httpc_sock *s)
{
    (void)uv_poll_stop(&s->poll);
    s->events = 0;
}

static void sock_poll_cb(uv_poll_t *poll, int status, int events)
{
    struct httpc_sock *s = poll->data;
    if (!s->busy) {
        sock_stop(s); /* idle in curl's cache and readable: closed or misbehaving peer */
        return;
    }
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
    }
    /* s may be freed inside (curl closes the socket): not used after this. */
    s->t->ready(s->t->arg, s->fd, flags);
}

static struct httpc_sock *sock_new(struct sl_httpc_sock_table *t, curl_socket_t fd, bool owned)
{
    assert(fd >= 0);
    if ((size_t)fd >= t->cap) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap <= (size_t)fd) {
            cap *= 2;
        }
        struct httpc_sock **by_fd = sl_realloc(t->by_fd, cap * sizeof(*by_fd));
        if (!by_fd) {
            return NULL;
        }
        for (size_t i = t->cap; i < cap; i++) {
            by_fd[i] = NULL;
        }
        t->by_fd = by_fd;
        t->cap = cap;
    }
    struct httpc_sock *old = t->by_fd[fd];
    if (old) {
        sock_drop(t, old); /* a socket closed without curl telling us: the number is reused */
    }
    struct httpc_sock *s = sl_calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    if (uv_poll_init_socket(t->loop, &s->poll, fd) < 0) {
        sl_free(s);
        return NULL;
    }
    s->poll.data = s;
    s->t = t;
    s->fd = fd;
    s->owned = owned;
    t->by_fd[fd] = s;
    return s;
}

int sl_httpc_sock_add(struct sl_httpc_sock_table *t, curl_socket_t fd)
{
    return sock_new(t, fd, true) ? 0 : -ENOMEM;
}

int sl_httpc_sock_close(void *clientp, curl_socket_t fd)
{
    struct sl_httpc_sock_table *t = clientp;
    struct httpc_sock *s = sock_get(t, fd);
    if (s) {
        sock_drop(t, s);
    }
    return close(fd) == 0 ? 0 : 1;
}

int sl_httpc_sock_watch(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct sl_httpc_sock_table *t = userp;
    struct httpc_sock *s = sock_get(t, fd);
    (void)easy;
    (void)socketp;
    if (what == CURL_POLL_REMOVE) {
        if (!s) {
            return 0;
        }
        s->busy = false;
        if (!s->owned) {
            sock_drop(t, s);
        } else if (s->events == UV_READABLE) {
            uv_unref((uv_handle_t *)&s->poll); /* kept armed for the next transfer */
        } else if (s->events) {
            sock_stop(s);
        }
        return 0;
    }
    if (!s) {
        s = sock_new(t, fd, false);
        if (!s) {
            return -1;
        }
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= UV_READABLE;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= UV_WRITABLE;
    }
    s->busy = true;
    uv_ref((uv_handle_t *)&s->poll);
    if (events == s->events) {
        return 0;
    }
    if (events == 0) {
        sock_stop(s);
        return 0;
    }
    if (uv_poll_start(&s->poll, events, sock_poll_cb) < 0) {
        s->events = 0;
        return -1;
    }
    s->events = events;
    return 0;
}

void sl_httpc_sock_fini(struct sl_httpc_sock_table *t)
{
    for (size_t i = 0; i < t->cap; i++) {
        if (t->by_fd[i]) {
            sock_drop(t, t->by_fd[i]);
        }
    }
    sl_free(t->by_fd);
    t->by_fd = NULL;
    t->cap = 0;
}
