/* SPDX-License-Identifier: Apache-2.0 */
/* sink_redis.c: the redis:// sink, for on-failure destinations of mappings and for delivery
 * streams. redis://[user:password@]host:port/db/STREAM appends each document to a stream (XADD
 * STREAM [MAXLEN ~ N] * data <document> [key <key>]); redis://host:port/db/list/NAME appends
 * the documents of a call to a list (one RPUSH NAME <document>...). The connection is
 * redis_conn.c's: made and remade with backoff by itself, AUTH and SELECT from the URL, and
 * commands pipelined, so a call's XADDs are on the wire together and answered in order. A
 * document is DELIVERED only once Redis answered its command; a lost connection answers RETRY
 * (the owner retries, so a command that ran before the connection broke may run twice:
 * at-least-once, as everywhere). Redis refuses by content only past its bulk limit, which
 * would close the connection under every command on it: a document over max_document_bytes is
 * REJECTED here without being sent. An error reply is REJECTED when the same command cannot
 * succeed later (WRONGTYPE, a syntax error) and RETRY when it can (OOM, LOADING, READONLY, ...).
 * It parses the destination itself (sl_redis_url_parse for the connection part) and never logs
 * the password. Loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "opt.h"
#include "redis_conn.h"
#include "redis_url.h"
#include "sink.h"
#include "url.h"

#define SINK_REDIS_SCHEME  "redis://"
#define SINK_REDISS_SCHEME "rediss://"
#define SINK_REDIS_LIST    "list/"

struct redis_sink {
    int64_t maxlen;             /* option maxlen (or ?maxlen=): XADD MAXLEN ~ N; 0: none */
    int64_t max_doc_bytes;      /* option max_document_bytes */
    int64_t command_timeout_ms; /* option command_timeout */
    int64_t connect_timeout_ms; /* option connect_timeout */
    struct sl_redis_url url;
    char *key; /* the stream or list */
    bool list;
    bool stopped;
    struct sl_redis_conn *conn;
};

static const struct sl_opt redis_sink_opts[] = {
    {"maxlen", SL_OPT_INT, "0", 0, INT64_C(1) << 40, offsetof(struct redis_sink, maxlen), 0, NULL,
     "Streams: trim the stream to about this many entries as entries are added (XADD MAXLEN ~ "
     "N); 0 keeps every entry. The destination's ?maxlen=N says the same."},
    {"max_document_bytes", SL_OPT_SIZE, "512MB", 1, INT64_C(512) * 1024 * 1024,
     offsetof(struct redis_sink, max_doc_bytes), 0, NULL,
     "A document larger than this is refused without being sent (Redis' proto-max-bulk-len "
     "would close the connection under every command on it)."},
    {"connect_timeout", SL_OPT_DURATION, "5s", 100, 600000,
     offsetof(struct redis_sink, connect_timeout_ms), 0, NULL,
     "How long connecting (with AUTH and SELECT) may take before the attempt counts as failed "
     "and is made again after a backoff."},
    {"command_timeout", SL_OPT_DURATION, "30s", 100, 3600000,
     offsetof(struct redis_sink, command_timeout_ms), 0, NULL,
     "A connection whose oldest command has waited this long for Redis' answer is dropped and "
     "made again; its documents are retried."},
    {0},
};

static bool redis_sink_handles(const char *destination)
{
    return strncmp(destination, SINK_REDIS_SCHEME, strlen(SINK_REDIS_SCHEME)) == 0 ||
           strncmp(destination, SINK_REDISS_SCHEME, strlen(SINK_REDISS_SCHEME)) == 0;
}

/* Where documents go: the stream or list of u->rest, and ?maxlen=. Returns 0, SL_ECONFIG with
 * errbuf, or SL_ENOMEM. */
static int redis_sink_target(const char *destination,
                             const struct sl_redis_url *u,
                             bool *ret_list,
                             const char **ret_key,
                             int64_t *ret_maxlen,
                             char *errbuf,
                             size_t errlen)
{
    char red[SL_URL_REDACTED_MAX];
    const char *what = NULL;
    const char *key = u->rest;
    bool list = strncmp(key, SINK_REDIS_LIST, strlen(SINK_REDIS_LIST)) == 0;
    if (list) {
        key += strlen(SINK_REDIS_LIST);
    }
    *ret_maxlen = -1;
    if (!*key) {
        what = list ? "names no list" : "names no stream";
    } else if (u->query) {
        const char *q = u->query;
        if (strncmp(q, "maxlen=", 7) != 0 || !q[7] ||
            strspn(q + 7, "0123456789") != strlen(q + 7) || strlen(q + 7) > 12) {
            what = "has a query other than maxlen=N";
        } else if (list) {
            what = "asks for maxlen on a list (only streams are trimmed)";
        } else {
            *ret_maxlen = strtoll(q + 7, NULL, 10);
        }
    }
    if (what) {
        (void)snprintf(errbuf, errlen,
                       "\"%s\" %s; allowed: redis://[user:password@]host:port/db/STREAM[?maxlen=N] "
                       "(XADD) or redis://[user:password@]host:port/db/list/NAME (RPUSH)",
                       sl_url_redact(destination, red, sizeof(red)), what);
        return SL_ECONFIG;
    }
    *ret_list = list;
    *ret_key = key;
    return 0;
}

static int redis_sink_check(const char *destination, char *errbuf, size_t errlen)
{
    struct sl_redis_url u;
    int r = sl_redis_url_parse(destination, &u, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    bool list;
    const char *key;
    int64_t maxlen;
    r = redis_sink_target(destination, &u, &list, &key, &maxlen, errbuf, errlen);
    sl_redis_url_fini(&u);
    return r;
}

static int redis_sink_init(
    void *vctx, const struct sl_sink_env *env, const char *destination, char *errbuf, size_t errlen)
{
    struct redis_sink *ctx = vctx;
    int r = sl_redis_url_parse(destination, &ctx->url, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    const char *key;
    int64_t maxlen;
    r = redis_sink_target(destination, &ctx->url, &ctx->list, &key, &maxlen, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    if (maxlen >= 0) {
        ctx->maxlen = maxlen;
    }
    if (!(ctx->key = sl_strdup(key))) {
        return SL_ENOMEM;
    }
    if (ctx->max_doc_bytes <= 0) { /* init called without the core's options */
        ctx->max_doc_bytes = INT64_C(512) * 1024 * 1024;
    }
    struct sl_redis_conn_conf cc = {
        .url = &ctx->url,
        .inst = env->inst,
        .connect_timeout_ms = ctx->connect_timeout_ms,
        .command_timeout_ms = ctx->command_timeout_ms > 0 ? ctx->command_timeout_ms : 30000,
    };
    return sl_redis_conn_new(env->loop, &cc, &ctx->conn);
}

/* One write or deliver call in flight. */
struct redis_call {
    sl_sink_cb write_cb;
    sl_sink_deliver_cb deliver_cb;
    void *arg;
    size_t n;
    size_t pending; /* commands not yet answered */
    struct sl_sink_result *results;
    char **details;         /* owned copies of error replies' texts */
    struct redis_cmd *cmds; /* one per document (XADD), or one for the call (RPUSH) */
};

/* A command's link back to its call: documents [lo, lo + n) of it. */
struct redis_cmd {
    struct redis_call *call;
    size_t lo;
    size_t n;
};

static void redis_call_free(struct redis_call *call)
{
    for (size_t i = 0; i < call->n; i++) {
        sl_free(call->details[i]);
    }
    sl_free(call->details);
    sl_free(call->results);
    sl_free(call->cmds);
    sl_free(call);
}

static struct redis_call *redis_call_new(size_t n)
{
    struct redis_call *call = sl_calloc(1, sizeof(*call));
    if (!call) {
        return NULL;
    }
    call->n = n;
    call->results = sl_calloc(n, sizeof(*call->results));
    call->details = sl_calloc(n, sizeof(*call->details));
    call->cmds = sl_calloc(n, sizeof(*call->cmds));
    if (!call->results || !call->details || !call->cmds) {
        redis_call_free(call);
        return NULL;
    }
    return call;
}

static void redis_call_done(struct redis_call *call)
{
    if (call->write_cb) {
        char detail[256] = "";
        const struct sl_sink_result *res = &call->results[0];
        if (res->detail) {
            (void)snprintf(detail, sizeof(detail), "%s", res->detail);
        }
        sl_sink_cb cb = call->write_cb;
        void *arg = call->arg;
        int err = res->err;
        redis_call_free(call);
        cb(arg, err, err ? detail : NULL);
        return;
    }
    call->deliver_cb(call->arg, call->results, call->n);
    redis_call_free(call);
}

/* Whether Redis' error reply text says the same command may succeed later. */
static bool redis_sink_transient(const char *text)
{
    static const char *const transient[] = {"OOM",        "LOADING",    "BUSY",   "TRYAGAIN",
                                            "READONLY",   "MASTERDOWN", "NOAUTH", "CLUSTERDOWN",
                                            "NOREPLICAS", "MISCONF"};
    for (size_t i = 0; i < SL_ARRAY_LEN(transient); i++) {
        size_t k = strlen(transient[i]);
        if (strncmp(text, transient[i], k) == 0 && (text[k] == ' ' || text[k] == '\0')) {
            return true;
        }
    }
    return false;
}

static void redis_call_set(struct redis_call *call, size_t i, int err, const char *detail)
{
    struct sl_sink_result *res = &call->results[i];
    if (err == 0) {
        *res = (struct sl_sink_result){SL_SINK_DELIVERED, 0, NULL};
        return;
    }
    enum sl_sink_outcome outcome = SL_SINK_RETRY;
    if (err == SL_EREJECTED && detail && !redis_sink_transient(detail)) {
        outcome = SL_SINK_REJECTED;
    } else if (err == SL_EREJECTED) {
        err = SL_EREMOTE;
    }
    sl_free(call->details[i]);
    call->details[i] = sl_strdup(detail ? detail : sl_strerror(err));
    *res = (struct sl_sink_result){outcome, err,
                                   call->details[i] ? call->details[i] : sl_strerror(err)};
}

static void
redis_sink_answered(void *arg, int err, const struct redisReply *reply, const char *detail)
{
    (void)reply;
    struct redis_cmd *cmd = arg;
    struct redis_call *call = cmd->call;
    for (size_t i = cmd->lo; i < cmd->lo + cmd->n; i++) {
        redis_call_set(call, i, err, detail);
    }
    if (--call->pending == 0) {
        redis_call_done(call);
    }
}

/* Sends the commands of docs[0..n) for call: one XADD per document, or one RPUSH for the
 * documents that are not refused. Returns how many commands were started (their answers come
 * later); a document refused here has its result already. */
static size_t redis_sink_send(struct redis_sink *ctx,
                              struct redis_call *call,
                              const struct sl_sink_doc *docs,
                              size_t n)
{
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        if ((int64_t)docs[i].len > ctx->max_doc_bytes) {
            char why[128];
            (void)snprintf(why, sizeof(why),
                           "the document is %zu bytes, over max_document_bytes (%lld)", docs[i].len,
                           (long long)ctx->max_doc_bytes);
            redis_call_set(call, i, SL_EREJECTED, why);
        }
    }
    if (ctx->list) {
        const char **argv = sl_calloc(n + 2, sizeof(*argv));
        size_t *argvlen = sl_calloc(n + 2, sizeof(*argvlen));
        int argc = 0;
        if (argv && argvlen) {
            argv[argc] = "RPUSH";
            argvlen[argc++] = 5;
            argv[argc] = ctx->key;
            argvlen[argc++] = strlen(ctx->key);
            for (size_t i = 0; i < n; i++) {
                if (call->results[i].err == 0) {
                    argv[argc] = docs[i].body;
                    argvlen[argc++] = docs[i].len;
                }
            }
        }
        call->cmds[0] = (struct redis_cmd){call, 0, n};
        int r = !argv || !argvlen ? SL_ENOMEM
                : argc == 2       ? 1
                                  : sl_redis_conn_command(ctx->conn, argc, argv, argvlen,
                                                          redis_sink_answered, &call->cmds[0]);
        sl_free(argv);
        sl_free(argvlen);
        if (r == 0) {
            call->pending = 1;
            return 1;
        }
        for (size_t i = 0; r < 0 && i < n; i++) {
            if (call->results[i].err == 0) {
                redis_call_set(call, i, r, "cannot start the command");
            }
        }
        return 0;
    }
    char maxlen[24];
    (void)snprintf(maxlen, sizeof(maxlen), "%lld", (long long)ctx->maxlen);
    for (size_t i = 0; i < n; i++) {
        if (call->results[i].err != 0) {
            continue;
        }
        const char *argv[10];
        size_t argvlen[10];
        int argc = 0;
#define ARG(s, l) (argv[argc] = (s), argvlen[argc++] = (l))
        ARG("XADD", 4);
        ARG(ctx->key, strlen(ctx->key));
        if (ctx->maxlen > 0) {
            ARG("MAXLEN", 6);
            ARG("~", 1);
            ARG(maxlen, strlen(maxlen));
        }
        ARG("*", 1);
        ARG("data", 4);
        ARG(docs[i].body, docs[i].len);
        if (docs[i].key) {
            ARG("key", 3);
            ARG(docs[i].key, docs[i].key_len);
        }
#undef ARG
        call->cmds[i] = (struct redis_cmd){call, i, 1};
        int r = sl_redis_conn_command(ctx->conn, argc, argv, argvlen, redis_sink_answered,
                                      &call->cmds[i]);
        if (r < 0) {
            redis_call_set(call, i, r, "cannot start the command");
            continue;
        }
        sent++;
    }
    call->pending = sent;
    return sent;
}

/* The error to return when no command started: the first document's. */
static int redis_sink_start(struct redis_sink *ctx,
                            struct redis_call *call,
                            const struct sl_sink_doc *docs,
                            size_t n)
{
    if (ctx->stopped || !ctx->conn) {
        redis_call_free(call);
        return SL_ECANCELED;
    }
    if (redis_sink_send(ctx, call, docs, n) == 0) {
        int err = call->results[0].err ? call->results[0].err : SL_EIO;
        redis_call_free(call);
        return err;
    }
    return 0;
}

static int redis_sink_write(void *vctx, const struct sl_sink_doc *doc, sl_sink_cb cb, void *arg)
{
    struct redis_call *call = redis_call_new(1);
    if (!call) {
        return SL_ENOMEM;
    }
    call->write_cb = cb;
    call->arg = arg;
    return redis_sink_start(vctx, call, doc, 1);
}

static int redis_sink_deliver(
    void *vctx, const struct sl_sink_doc *docs, size_t n, sl_sink_deliver_cb cb, void *arg)
{
    struct redis_call *call = redis_call_new(n);
    if (!call) {
        return SL_ENOMEM;
    }
    call->deliver_cb = cb;
    call->arg = arg;
    return redis_sink_start(vctx, call, docs, n);
}

/* Closing the connection answers every command in flight with SL_ECANCELED (RETRY). */
static void redis_sink_stop(void *vctx)
{
    struct redis_sink *ctx = vctx;
    ctx->stopped = true;
    struct sl_redis_conn *conn = ctx->conn;
    ctx->conn = NULL;
    sl_redis_conn_free(conn);
}

static void redis_sink_fini(void *vctx)
{
    struct redis_sink *ctx = vctx;
    sl_redis_conn_free(ctx->conn);
    ctx->conn = NULL;
    sl_redis_url_fini(&ctx->url);
    sl_free(ctx->key);
    ctx->key = NULL;
}

const struct sl_sink_ops sl_sink_redis = {
    .abi = SL_SINK_ABI,
    .name = "redis",
    .opts = redis_sink_opts,
    .ctx_size = sizeof(struct redis_sink),
    .handles = redis_sink_handles,
    .max_docs = 1000,
    .max_bytes = 64 * 1024 * 1024, /* one RPUSH's worth */
    .keeps_payload = true,
    .check = redis_sink_check,
    .init = redis_sink_init,
    .write = redis_sink_write,
    .deliver = redis_sink_deliver,
    .stop = redis_sink_stop,
    .fini = redis_sink_fini,
};
