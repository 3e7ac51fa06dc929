/* SPDX-License-Identifier: Apache-2.0 */
/* redis_conn.c: one Redis connection on the loop, for whatever talks to Redis (the Redis sink
 * today; the Redis Streams source and checkpoint store reuse it). It owns the hiredis async
 * context (0.14: the pre-1.0 API, no redisOptions, no TLS) attached to the loop through hiredis'
 * libuv adapter, the handshake (AUTH [user] password, SELECT db) and the life of the connection:
 * a connection lost or never made is made again after a backoff (full jitter, capped), with one
 * warning line when the outage starts and one info line when it ends, naming host:port and never
 * the password. Commands are written as soon as the connection is ready, so several are on the
 * wire at once (pipelined: hiredis writes them together and answers them in order); commands
 * started while it is not ready wait for it, and a connection attempt that fails answers them
 * with its error (their owners retry; nothing here repeats a command, which might run twice).
 * Every command gets exactly one answer: the reply, or an error when the connection went away
 * (hiredis answers every command it holds with a NULL reply when its context is freed).
 *
 * About the states: an attempt (connecting, then the handshake) ends ready or down; ready ends
 * down when the server goes away or a reply is late (command_timeout_ms); down waits for the
 * backoff and makes the next attempt. One timer serves all three: the attempt's deadline, the
 * backoff, the oldest command's deadline. About freeing a context: hiredis frees it by itself
 * after a failed connect or a lost connection; when this file frees one (a timeout, a refused
 * AUTH, sl_redis_conn_free) it forgets it first, so the disconnect callback that follows knows
 * it was not news.
 *
 * About the loop glue: it is hiredis' libuv adapter (hiredis/adapters/libuv.h) with one fix. In
 * 0.14 the adapter drops a poll callback whose status is an error, and libuv reports a socket
 * error (EPOLLERR: a refused connect, a reset) exactly that way and stops the watcher, so the
 * context would wait forever; here an error status lets hiredis read and write as it asked,
 * and it finds the error itself. Loop thread only. */
#include "redis_conn.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "alloc.h"
#include "log.h"
#include "secret.h"

#define CONN_COMP               "redis"
#define CONN_CONNECT_TIMEOUT_MS 5000
#define CONN_BACKOFF_MAX_MS     5000

enum conn_state {
    CONN_DOWN,       /* waiting for the backoff (or never tried) */
    CONN_CONNECTING, /* connect, AUTH, SELECT in progress */
    CONN_READY,
};

/* One command: waiting (in pending) or on the wire (in sent), until answered. */
struct conn_req {
    struct conn_req *next;
    char *cmd; /* RESP text (redisFormatCommandArgv): hiredis' allocation, redisFreeCommand */
    int len;
    sl_redis_cb cb;
    void *arg;
    int64_t sent_ms;
    bool hello; /* AUTH or SELECT of the handshake */
};

struct conn_queue {
    struct conn_req *head;
    struct conn_req *tail;
};

struct sl_redis_conn {
    uv_loop_t *loop;
    uv_timer_t timer;
    redisAsyncContext *ac; /* the live context, or NULL */
    enum conn_state state;
    char *host;
    int port;
    int db;
    char *user;
    char *password;
    char *inst;
    char name[300]; /* host:port */
    int64_t connect_timeout_ms;
    int64_t command_timeout_ms;
    struct sl_retry_policy backoff;
    struct redisReplyObjectFunctions *reply_functions; /* conf's, or NULL */
    bool quiet;                                        /* outages at debug level (conf's) */
    uint64_t rng;
    unsigned attempts; /* failed attempts since the last ready */
    unsigned hello_left;
    uint64_t connects;
    bool down; /* an outage was logged and has not ended */
    int64_t down_since_ms;
    int fail_err; /* the error of the commands a context freed here answers */
    bool closing;
    struct conn_queue pending;
    struct conn_queue sent;
    struct conn_queue canceled; /* closing: answered SL_ECANCELED once the timer is closed */
};

static void conn_push(struct conn_queue *q, struct conn_req *r)
{
    r->next = NULL;
    if (q->tail) {
        q->tail->next = r;
    } else {
        q->head = r;
    }
    q->tail = r;
}

static struct conn_req *conn_pop(struct conn_queue *q)
{
    struct conn_req *r = q->head;
    if (r) {
        q->head = r->next;
        if (!q->head) {
            q->tail = NULL;
        }
    }
    return r;
}

static void conn_req_free(struct conn_req *r)
{
    if (r->hello) {
        sl_secret_wipe(r->cmd, (size_t)r->len); /* AUTH's password */
    }
    redisFreeCommand(r->cmd);
    sl_free(r);
}

/* Answers every waiting command with err (detail borrowed for the calls); closing, they join
 * the canceled ones, answered later. */
static void conn_fail_pending(struct sl_redis_conn *c, int err, const char *detail)
{
    if (c->closing) {
        struct conn_req *r;
        while ((r = conn_pop(&c->pending))) {
            conn_push(&c->canceled, r);
        }
        return;
    }
    struct conn_queue q = c->pending;
    c->pending = (struct conn_queue){0};
    struct conn_req *r;
    while ((r = conn_pop(&q))) {
        sl_redis_cb cb = r->cb;
        void *arg = r->arg;
        conn_req_free(r);
        cb(arg, err, NULL, detail);
    }
}

static void conn_timer_cb(uv_timer_t *t);

static void conn_arm(struct sl_redis_conn *c, int64_t delay_ms)
{
    if (!c->closing) {
        (void)uv_timer_start(&c->timer, conn_timer_cb, (uint64_t)(delay_ms < 0 ? 0 : delay_ms), 0);
    }
}

/* Arms the oldest command's deadline, when there is one to watch. */
static void conn_arm_command(struct sl_redis_conn *c)
{
    if (c->state != CONN_READY || c->command_timeout_ms <= 0) {
        return;
    }
    if (!c->sent.head) {
        (void)uv_timer_stop(&c->timer);
        return;
    }
    int64_t waited = (int64_t)uv_now(c->loop) - c->sent.head->sent_ms;
    conn_arm(c, c->command_timeout_ms - waited);
}

/* The connection is not usable: log the outage once, answer the waiting commands when an attempt
 * failed (fail_pending), and try again after the backoff. */
static void conn_down(struct sl_redis_conn *c, int err, const char *why, bool fail_pending)
{
    c->state = CONN_DOWN;
    if (c->closing) {
        return;
    }
    if (!c->down) {
        c->down = true;
        c->down_since_ms = (int64_t)uv_now(c->loop);
        sl_log(c->quiet ? SL_LOG_DEBUG : SL_LOG_WARN, CONN_COMP, c->inst,
               "redis %s: %s, reconnecting with backoff", c->name, why);
    } else {
        sl_log_debug(CONN_COMP, c->inst, "redis %s: attempt %u: %s", c->name, c->attempts, why);
    }
    c->attempts++;
    conn_arm(c, sl_retry_delay_ms(&c->backoff, c->attempts, &c->rng));
    if (fail_pending) {
        conn_fail_pending(c, err, why);
    }
}

/* Frees the live context here (not hiredis): its commands are answered with err. */
static void conn_drop(struct sl_redis_conn *c, int err)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    if (ac) {
        c->fail_err = err;
        redisAsyncFree(ac); /* inside a hiredis callback: done when it returns */
        c->fail_err = 0;
    }
}

static void conn_reply_cb(redisAsyncContext *ac, void *vreply, void *privdata);

/* ---- the loop glue (hiredis' libuv adapter, fixed: see the top) ---- */

struct conn_ev {
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    uv_poll_t poll;
    int events;
};

static void conn_ev_cb(uv_poll_t *h, int status, int events)
{
    struct conn_ev *p = h->data;
    int ev = status < 0 ? p->events : events;
    if (p->ac && (ev & UV_READABLE)) {
        redisAsyncHandleRead(p->ac);
    }
    if (p->ac && (ev & UV_WRITABLE)) {
        redisAsyncHandleWrite(p->ac);
    }
}

static void conn_ev_update(struct conn_ev *p, int add, int del)
{
    p->events = (p->events | add) & ~del;
    if (p->events) {
        (void)uv_poll_start(&p->poll, p->events, conn_ev_cb);
    } else {
        (void)uv_poll_stop(&p->poll);
    }
}

static void conn_ev_add_read(void *privdata)
{
    conn_ev_update(privdata, UV_READABLE, 0);
}

static void conn_ev_del_read(void *privdata)
{
    conn_ev_update(privdata, 0, UV_READABLE);
}

static void conn_ev_add_write(void *privdata)
{
    conn_ev_update(privdata, UV_WRITABLE, 0);
}

static void conn_ev_del_write(void *privdata)
{
    conn_ev_update(privdata, 0, UV_WRITABLE);
}

static void conn_ev_closed(uv_handle_t *h)
{
    sl_free(h->data);
}

static void conn_ev_cleanup(void *privdata)
{
    struct conn_ev *p = privdata;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, conn_ev_closed);
}

static int conn_ev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    struct conn_ev *p = sl_calloc(1, sizeof(*p));
    if (!p) {
        return SL_ENOMEM;
    }
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        sl_free(p);
        return SL_EIO;
    }
    p->poll.data = p;
    p->ac = ac;
    ac->ev.addRead = conn_ev_add_read;
    ac->ev.delRead = conn_ev_del_read;
    ac->ev.addWrite = conn_ev_add_write;
    ac->ev.delWrite = conn_ev_del_write;
    ac->ev.cleanup = conn_ev_cleanup;
    ac->ev.data = p;
    return 0;
}

/* ---- the connection ---- */

/* Puts r on the wire. Returns false when the context refuses it (going away). */
static bool conn_send(struct sl_redis_conn *c, struct conn_req *r)
{
    if (!c->ac ||
        redisAsyncFormattedCommand(c->ac, conn_reply_cb, r, r->cmd, (size_t)r->len) != REDIS_OK) {
        return false;
    }
    r->sent_ms = (int64_t)uv_now(c->loop);
    bool was_empty = c->sent.head == NULL;
    conn_push(&c->sent, r);
    if (was_empty) {
        conn_arm_command(c);
    }
    return true;
}

static void conn_ready(struct sl_redis_conn *c)
{
    c->state = CONN_READY;
    c->connects++;
    (void)uv_timer_stop(&c->timer);
    if (c->down) {
        sl_log(c->quiet ? SL_LOG_DEBUG : SL_LOG_INFO, CONN_COMP, c->inst,
               "redis %s: connected again after %lld ms", c->name,
               (long long)((int64_t)uv_now(c->loop) - c->down_since_ms));
        c->down = false;
    } else {
        sl_log_debug(CONN_COMP, c->inst, "redis %s: connected", c->name);
    }
    c->attempts = 0;
    struct conn_req *r;
    while (c->state == CONN_READY && (r = conn_pop(&c->pending))) {
        if (!conn_send(c, r)) {
            /* the context is going away: r waits for the next one */
            r->next = c->pending.head;
            c->pending.head = r;
            if (!c->pending.tail) {
                c->pending.tail = r;
            }
            break;
        }
    }
    conn_arm_command(c);
}

/* The handshake's answers (AUTH, SELECT), in order. */
static void conn_hello_reply(struct sl_redis_conn *c, const redisReply *reply)
{
    if (!reply || c->state != CONN_CONNECTING) {
        return; /* the attempt ended already */
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[320];
        (void)snprintf(why, sizeof(why), "AUTH or SELECT refused: %.256s", reply->str);
        conn_drop(c, SL_EAUTH);
        conn_down(c, SL_EAUTH, why, true);
        return;
    }
    if (--c->hello_left == 0) {
        conn_ready(c);
    }
}

static void conn_reply_cb(redisAsyncContext *ac, void *vreply, void *privdata)
{
    struct sl_redis_conn *c = ac->data;
    const redisReply *reply = vreply;
    struct conn_req *r = privdata;
    /* Replies come in the order the commands went: r is the oldest on the wire. */
    struct conn_req *head = conn_pop(&c->sent);
    assert(head == r);
    (void)head;
    if (r->hello) {
        conn_req_free(r);
        conn_hello_reply(c, reply);
        return;
    }
    if (c->closing) {
        conn_push(&c->canceled, r); /* answered once the timer is closed, never from free */
        return;
    }
    sl_redis_cb cb = r->cb;
    void *arg = r->arg;
    conn_req_free(r);
    if (!reply) {
        /* The context is going away: commands started from here on wait for the next one. */
        if (c->state == CONN_READY) {
            c->state = CONN_DOWN;
        }
        int err = c->closing ? SL_ECANCELED : c->fail_err ? c->fail_err : SL_EIO;
        const char *detail = err == SL_ECANCELED   ? "canceled"
                             : err == SL_ETIMEDOUT ? "no reply in time; the connection was dropped"
                             : ac->errstr[0]       ? ac->errstr
                                                   : "the connection was lost";
        cb(arg, err, NULL, detail);
        return;
    }
    if (c->state == CONN_READY && c->ac == ac) {
        conn_arm_command(c);
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        cb(arg, SL_EREJECTED, reply, reply->str);
    } else {
        cb(arg, 0, reply, NULL);
    }
}

static struct conn_req *conn_req_new(int argc, const char **argv, const size_t *argvlen)
{
    struct conn_req *r = sl_calloc(1, sizeof(*r));
    if (!r) {
        return NULL;
    }
    r->len = redisFormatCommandArgv(&r->cmd, argc, argv, argvlen);
    if (r->len < 0) {
        sl_free(r);
        return NULL;
    }
    return r;
}

/* The handshake: AUTH and SELECT when the URL asks, pipelined; ready at once without them. */
static void conn_hello(struct sl_redis_conn *c)
{
    const char *argv[3];
    size_t argvlen[3];
    struct conn_req *rs[2] = {NULL, NULL};
    int n = 0;
    if (c->password) {
        int argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;
        if (c->user) {
            argv[argc] = c->user;
            argvlen[argc++] = strlen(c->user);
        }
        argv[argc] = c->password;
        argvlen[argc++] = strlen(c->password);
        if (!(rs[n++] = conn_req_new(argc, argv, argvlen))) {
            goto oom;
        }
    }
    if (c->db != 0) {
        char db[16];
        (void)snprintf(db, sizeof(db), "%d", c->db);
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = db;
        argvlen[1] = strlen(db);
        if (!(rs[n++] = conn_req_new(2, argv, argvlen))) {
            goto oom;
        }
    }
    if (n == 0) {
        conn_ready(c);
        return;
    }
    c->hello_left = (unsigned)n;
    for (int i = 0; i < n; i++) {
        rs[i]->hello = true;
        if (!conn_send(c, rs[i])) {
            for (int j = i; j < n; j++) {
                conn_req_free(rs[j]);
            }
            conn_drop(c, SL_EIO);
            conn_down(c, SL_EIO, "cannot send the handshake", true);
            return;
        }
    }
    return;
oom:
    for (int i = 0; i < n; i++) {
        if (rs[i]) {
            rs[i]->hello = true;
            conn_req_free(rs[i]);
        }
    }
    conn_drop(c, SL_ENOMEM);
    conn_down(c, SL_ENOMEM, "out of memory", true);
}

static void conn_connect_cb(const redisAsyncContext *ac, int status)
{
    struct sl_redis_conn *c = ac->data;
    if (c->ac != ac) {
        return;
    }
    if (status != REDIS_OK) {
        char why[300];
        (void)snprintf(why, sizeof(why), "cannot connect: %.256s",
                       ac->errstr[0] ? ac->errstr : "error");
        c->ac = NULL; /* hiredis frees it when this returns */
        conn_down(c, SL_EIO, why, true);
        return;
    }
    conn_hello(c);
}

static void conn_disconnect_cb(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct sl_redis_conn *c = ac->data;
    if (c->ac != ac) {
        return; /* freed here: handled where it was freed */
    }
    c->ac = NULL;
    char why[300];
    (void)snprintf(why, sizeof(why), "connection lost: %.256s",
                   ac->errstr[0] ? ac->errstr : "closed by the server");
    /* An attempt that ends here (the server closed during the handshake) failed; a ready
     * connection's waiting commands (started while hiredis answered the lost ones) wait for the
     * next attempt. */
    conn_down(c, SL_EIO, why, c->state == CONN_CONNECTING);
}

static void conn_attempt(struct sl_redis_conn *c)
{
    c->state = CONN_CONNECTING;
    redisAsyncContext *ac = redisAsyncConnect(c->host, c->port);
    if (!ac) {
        conn_down(c, SL_ENOMEM, "out of memory", true);
        return;
    }
    if (ac->err) {
        char why[300];
        (void)snprintf(why, sizeof(why), "cannot connect: %.256s", ac->errstr);
        redisAsyncFree(ac);
        conn_down(c, SL_EIO, why, true);
        return;
    }
    ac->data = c;
    if (c->reply_functions) {
        ac->c.reader->fn = c->reply_functions;
    }
    if (conn_ev_attach(ac, c->loop) < 0) {
        redisAsyncFree(ac);
        conn_down(c, SL_ENOMEM, "cannot watch the socket", true);
        return;
    }
    (void)redisAsyncSetConnectCallback(ac, conn_connect_cb);
    (void)redisAsyncSetDisconnectCallback(ac, conn_disconnect_cb);
    c->ac = ac;
    conn_arm(c, c->connect_timeout_ms);
}

static void conn_timer_cb(uv_timer_t *t)
{
    struct sl_redis_conn *c = t->data;
    switch (c->state) {
    case CONN_DOWN:
        conn_attempt(c);
        break;
    case CONN_CONNECTING: {
        char why[96];
        (void)snprintf(why, sizeof(why), "not connected within %lld ms",
                       (long long)c->connect_timeout_ms);
        conn_drop(c, SL_ETIMEDOUT);
        conn_down(c, SL_ETIMEDOUT, why, true);
        break;
    }
    case CONN_READY: {
        struct conn_req *head = c->sent.head;
        if (!head) {
            break;
        }
        int64_t waited = (int64_t)uv_now(c->loop) - head->sent_ms;
        if (waited < c->command_timeout_ms) {
            conn_arm(c, c->command_timeout_ms - waited);
            break;
        }
        char why[96];
        (void)snprintf(why, sizeof(why), "no reply for %lld ms", (long long)waited);
        conn_drop(c, SL_ETIMEDOUT);
        conn_down(c, SL_ETIMEDOUT, why, false);
        break;
    }
    }
}

int sl_redis_conn_new(uv_loop_t *loop,
                      const struct sl_redis_conn_conf *conf,
                      struct sl_redis_conn **ret_c)
{
    struct sl_redis_conn *c = sl_calloc(1, sizeof(*c));
    if (!c) {
        return SL_ENOMEM;
    }
    const struct sl_redis_url *u = conf->url;
    c->loop = loop;
    c->port = u->port;
    c->db = u->db;
    c->host = sl_strdup(u->host);
    c->inst = sl_strdup(conf->inst ? conf->inst : "");
    c->user = u->user ? sl_strdup(u->user) : NULL;
    c->password = u->password ? sl_strdup(u->password) : NULL;
    if (!c->host || !c->inst || (u->user && !c->user) || (u->password && !c->password)) {
        sl_free(c->host);
        sl_free(c->inst);
        sl_free(c->user);
        sl_secret_free(c->password);
        sl_free(c);
        return SL_ENOMEM;
    }
    (void)snprintf(c->name, sizeof(c->name), strchr(c->host, ':') ? "[%s]:%d" : "%s:%d", c->host,
                   c->port);
    c->connect_timeout_ms =
        conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : CONN_CONNECT_TIMEOUT_MS;
    c->command_timeout_ms = conf->command_timeout_ms;
    c->backoff = conf->backoff;
    c->reply_functions = conf->reply_functions;
    c->quiet = conf->quiet;
    if (c->backoff.base_ms <= 0 && c->backoff.max_ms <= 0) {
        sl_retry_policy_default(&c->backoff);
        if (c->backoff.max_ms > CONN_BACKOFF_MAX_MS) {
            c->backoff.max_ms = CONN_BACKOFF_MAX_MS;
        }
    }
    c->rng = (uint64_t)(uintptr_t)c ^ uv_hrtime();
    c->rng = c->rng ? c->rng : 1;
    (void)uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    conn_attempt(c);
    *ret_c = c;
    return 0;
}

int sl_redis_conn_command(struct sl_redis_conn *c,
                          int argc,
                          const char **argv,
                          const size_t *argvlen,
                          sl_redis_cb cb,
                          void *arg)
{
    if (c->closing) {
        return SL_ECANCELED;
    }
    struct conn_req *r = conn_req_new(argc, argv, argvlen);
    if (!r) {
        return SL_ENOMEM;
    }
    r->cb = cb;
    r->arg = arg;
    if (c->state == CONN_READY && conn_send(c, r)) {
        return 0;
    }
    conn_push(&c->pending, r);
    return 0;
}

bool sl_redis_conn_is_ready(const struct sl_redis_conn *c)
{
    return c->state == CONN_READY;
}

uint64_t sl_redis_conn_connects(const struct sl_redis_conn *c)
{
    return c->connects;
}

const char *sl_redis_conn_name(const struct sl_redis_conn *c)
{
    return c->name;
}

static void conn_close_cb(uv_handle_t *h)
{
    struct sl_redis_conn *c = h->data;
    struct conn_req *r;
    while ((r = conn_pop(&c->canceled))) {
        sl_redis_cb cb = r->cb;
        void *arg = r->arg;
        conn_req_free(r);
        cb(arg, SL_ECANCELED, NULL, "canceled");
    }
    sl_free(c->host);
    sl_free(c->inst);
    sl_free(c->user);
    sl_secret_free(c->password);
    sl_free(c);
}

void sl_redis_conn_free(struct sl_redis_conn *c)
{
    if (!c || c->closing) {
        return;
    }
    c->closing = true;
    (void)uv_timer_stop(&c->timer);
    conn_drop(c, SL_ECANCELED);
    conn_fail_pending(c, SL_ECANCELED, "canceled");
    uv_close((uv_handle_t *)&c->timer, conn_close_cb);
}
