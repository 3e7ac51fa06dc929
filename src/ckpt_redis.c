/* SPDX-License-Identifier: Apache-2.0 */
/* ckpt_redis.c: the checkpoint store's Redis side, for checkpoint.c (which keeps the table, the
 * generations and the once-per-turn coalescing, as for files). It owns the mapping's hash in
 * Redis, "<prefix>ckpt:<mapping id>": one field per partition id whose value is the JSON
 * {"pos":"...","meta":"..."} (meta absent when the source gave none), the same two strings the
 * file store keeps. It reads the hash once at open (synchronously, before the mapping starts,
 * so the partitions find their checkpoints as they do in a file), and writes rows through one
 * Lua script that moves a position only forward: an atomic compare, in Redis, of the new
 * position with the stored one, so no other writer and no late or repeated write can move a
 * checkpoint back. Writes go out pipelined on the loop's connection (redis_conn.c: reconnect
 * with backoff, one log line per outage); a write that fails is the caller's to repeat.
 *
 * About the order: positions are opaque text to the core, so the script orders them the way
 * every stream source in sluice writes them: the runs of decimal digits in the position, as
 * numbers, compared in turn (a Kinesis sequence number and its sub-record number "SEQ:SUB", a
 * file's byte offset, a Kafka offset), after the content generation a file keeps in its meta
 * ("gen=<g>": a truncated or replaced file starts again at 0 with a later generation). Where one
 * position is the other's prefix, the shorter one is later (a whole Kinesis record comes after
 * each of its user records). A position without digits cannot be ordered and is written as is.
 * A row the script kept back counts as written (the stored one is ahead) and is counted.
 *
 * It must not block the loop except in ckpt_redis_open (before the mapping runs) and
 * ckpt_redis_write_sync (at exit); it never logs the password. Loop thread. */
#include "ckpt_redis.h"

#include "sl_adapters.h"

#if SL_HAVE_REDIS

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"
#include "redis_conn.h"
#include "redis_url.h"
#include "url.h"

#define CR_COMP            "checkpoint"
#define CR_SYNC_TIMEOUT_MS 3000
#define CR_PREFIX_MAX      200

/* KEYS[1] the mapping's hash, KEYS[2] (fenced writes only) its lease hash; ARGV: partition,
 * position, meta, "1" when meta is given, and for fenced writes the lease's owner and counter.
 * Returns 1 when the row was written, 0 when the stored position is ahead (kept), -1 when the
 * lease is no longer the writer's (fenced: nothing written). */
static const char cr_script[] =
    "if KEYS[2] then\n"
    "  local l = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "  local o, c = nil, nil\n"
    "  if l then o, c = string.match(l, '^(%S+) (%d+) ') end\n"
    "  if o ~= ARGV[5] or c ~= ARGV[6] then return -1 end\n"
    "end\n"
    "local function order(pos, meta)\n"
    "  local k = {string.match(meta or '', 'gen=(%d+)') or '0'}\n"
    "  for d in string.gmatch(pos, '%d+') do k[#k + 1] = d end\n"
    "  return k\n"
    "end\n"
    "local function num(a, b)\n"
    "  a = string.gsub(a, '^0+', '')\n"
    "  b = string.gsub(b, '^0+', '')\n"
    "  if #a ~= #b then return #a < #b and -1 or 1 end\n"
    "  if a == b then return 0 end\n"
    "  return a < b and -1 or 1\n"
    "end\n"
    "local function cmp(a, b)\n"
    "  for i = 1, math.min(#a, #b) do\n"
    "    local c = num(a[i], b[i])\n"
    "    if c ~= 0 then return c end\n"
    "  end\n"
    "  if #a == #b then return 0 end\n"
    "  return #a < #b and 1 or -1\n"
    "end\n"
    "local meta = nil\n"
    "if ARGV[4] == '1' then meta = ARGV[3] end\n"
    "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if old then\n"
    "  local ok, o = pcall(cjson.decode, old)\n"
    "  if ok and type(o) == 'table' and type(o.pos) == 'string' and\n"
    "     string.find(o.pos, '%d') and string.find(ARGV[2], '%d') then\n"
    "    local om = nil\n"
    "    if type(o.meta) == 'string' then om = o.meta end\n"
    "    if cmp(order(ARGV[2], meta), order(o.pos, om)) < 0 then return 0 end\n"
    "  end\n"
    "end\n"
    "local v = {pos = ARGV[2]}\n"
    "if meta then v.meta = meta end\n"
    "redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(v))\n"
    "return 1\n";

struct ckpt_redis {
    struct sl_redis_url url;
    struct sl_redis_conn *conn;
    char *key;  /* <prefix>ckpt:<mapping id> */
    char *inst; /* the mapping id, for logs */
    char name[400];
    uint64_t connects_seen;
    /* the write in flight */
    size_t outstanding;
    int first_err;
    ckpt_redis_done_cb cb;
    void *arg;
    unsigned long stale;
    bool stale_logged;
    unsigned long fenced;
    bool fenced_logged;
    struct ckpt_redis_fence fence; /* lease_key NULL: writes are not fenced */
};

/* ---- the URL ---- */

/* The key prefix from ?prefix=P (the only query key), or the default. Returns 0 and *ret_prefix
 * (owned), SL_ECONFIG with errbuf filled, or SL_ENOMEM. */
static int cr_prefix(
    const struct sl_redis_url *u, const char *shown, char **ret_prefix, char *errbuf, size_t errlen)
{
    if (u->rest[0] != '\0') {
        (void)snprintf(errbuf, errlen,
                       "%s: nothing may follow the database number; allowed: "
                       "redis://[user:password@]host[:port][/db][?prefix=P]",
                       shown);
        return SL_ECONFIG;
    }
    const char *p = SL_CKPT_REDIS_PREFIX;
    if (u->query) {
        if (strncmp(u->query, "prefix=", 7) != 0 || strchr(u->query, '&') ||
            strlen(u->query + 7) > CR_PREFIX_MAX) {
            /* only the key is shown: a query's value may be a secret */
            (void)snprintf(errbuf, errlen,
                           "%s: unknown query key \"%.*s\"; allowed: ?prefix=P (the key "
                           "prefix, up to %d bytes; default \"%s\")",
                           shown, (int)strcspn(u->query, "=&"), u->query, CR_PREFIX_MAX,
                           SL_CKPT_REDIS_PREFIX);
            return SL_ECONFIG;
        }
        p = u->query + 7;
    }
    *ret_prefix = sl_strdup(p);
    return *ret_prefix ? 0 : SL_ENOMEM;
}

int ckpt_redis_check_url(const char *url, char *errbuf, size_t errlen)
{
    char shown[SL_URL_REDACTED_MAX];
    (void)sl_url_redact(url, shown, sizeof(shown));
    struct sl_redis_url u = {0};
    int r = sl_redis_url_parse(url, &u, errbuf, errlen);
    char *prefix = NULL;
    if (r == 0) {
        r = cr_prefix(&u, shown, &prefix, errbuf, errlen);
    }
    sl_free(prefix);
    sl_redis_url_fini(&u);
    return r;
}

/* ---- synchronous access: the load at open and the write at exit ---- */

/* A blocking connection with AUTH and SELECT done, or NULL with errbuf filled. */
static redisContext *cr_sync_connect(const struct ckpt_redis *cr, char *errbuf, size_t errlen)
{
    struct timeval tv = {CR_SYNC_TIMEOUT_MS / 1000, (CR_SYNC_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(cr->url.host, cr->url.port, tv);
    if (!c || c->err) {
        (void)snprintf(errbuf, errlen, "%s: cannot connect: %s", cr->name,
                       c ? c->errstr : "out of memory");
        if (c) {
            redisFree(c);
        }
        return NULL;
    }
    (void)redisSetTimeout(c, tv);
    redisReply *rep = NULL;
    if (cr->url.password) {
        rep = cr->url.user ? redisCommand(c, "AUTH %s %s", cr->url.user, cr->url.password)
                           : redisCommand(c, "AUTH %s", cr->url.password);
        if (!rep || rep->type == REDIS_REPLY_ERROR) {
            (void)snprintf(errbuf, errlen, "%s: AUTH failed: %.120s", cr->name,
                           rep ? rep->str : c->errstr);
            goto fail;
        }
        freeReplyObject(rep);
    }
    rep = redisCommand(c, "SELECT %d", cr->url.db);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        (void)snprintf(errbuf, errlen, "%s: SELECT %d failed: %.120s", cr->name, cr->url.db,
                       rep ? rep->str : c->errstr);
        goto fail;
    }
    freeReplyObject(rep);
    return c;

fail:
    if (rep) {
        freeReplyObject(rep);
    }
    redisFree(c);
    return NULL;
}

/* Puts one field of the hash into t. Returns 0, SL_EPROTO (errbuf filled) or SL_ENOMEM. */
static int cr_load_row(struct ckpt_redis *cr,
                       const redisReply *field,
                       const redisReply *value,
                       struct ckpt_table *t,
                       char *errbuf,
                       size_t errlen)
{
    if (field->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING ||
        memchr(field->str, '\0', field->len)) {
        (void)snprintf(errbuf, errlen, "%s: a field of %s is not a string", cr->name, cr->key);
        return SL_EPROTO;
    }
    cJSON *j = cJSON_ParseWithLength(value->str, value->len);
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(j, "pos");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "meta");
    if (!cJSON_IsString(pos) || (meta && !cJSON_IsString(meta))) {
        (void)snprintf(errbuf, errlen,
                       "%s: %s field \"%.100s\" is not a checkpoint (%.80s); allowed: "
                       "{\"pos\":\"...\",\"meta\":\"...\"} (remove the field to start it again)",
                       cr->name, cr->key, field->str, value->str);
        cJSON_Delete(j);
        return SL_EPROTO;
    }
    bool changed;
    int r =
        ckpt_table_put(t, field->str, pos->valuestring, meta ? meta->valuestring : NULL, &changed);
    cJSON_Delete(j);
    return r;
}

static int cr_load_once(struct ckpt_redis *cr, struct ckpt_table *t, char *errbuf, size_t errlen)
{
    redisContext *c = cr_sync_connect(cr, errbuf, errlen);
    if (!c) {
        return SL_EIO;
    }
    int r = 0;
    redisReply *rep = redisCommand(c, "HGETALL %s", cr->key);
    if (!rep) {
        (void)snprintf(errbuf, errlen, "%s: HGETALL %s failed: %s", cr->name, cr->key, c->errstr);
        r = SL_EIO;
    } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements % 2) {
        (void)snprintf(errbuf, errlen, "%s: HGETALL %s: %.120s", cr->name, cr->key,
                       rep->type == REDIS_REPLY_ERROR ? rep->str : "not a hash");
        r = SL_EPROTO;
    }
    for (size_t i = 0; r == 0 && i < rep->elements; i += 2) {
        r = cr_load_row(cr, rep->element[i], rep->element[i + 1], t, errbuf, errlen);
    }
    if (rep) {
        freeReplyObject(rep);
    }
    redisFree(c);
    return r;
}

/* ---- open and free ---- */

int ckpt_redis_open(uv_loop_t *loop,
                    const char *url,
                    const char *mapping_id,
                    int64_t load_timeout_ms,
                    struct ckpt_table *t,
                    struct ckpt_redis **ret_cr,
                    char *errbuf,
                    size_t errlen)
{
    char shown[SL_URL_REDACTED_MAX];
    (void)sl_url_redact(url, shown, sizeof(shown));
    struct ckpt_redis *cr = sl_calloc(1, sizeof(*cr));
    if (!cr) {
        return SL_ENOMEM;
    }
    char *prefix = NULL;
    int r = sl_redis_url_parse(url, &cr->url, errbuf, errlen);
    if (r == 0) {
        r = cr_prefix(&cr->url, shown, &prefix, errbuf, errlen);
    }
    if (r < 0) {
        goto fail;
    }
    struct sl_buf k;
    sl_buf_init(&k);
    r = sl_buf_printf(&k, "%sckpt:%s", prefix, mapping_id);
    cr->key = r == 0 ? sl_buf_steal(&k) : NULL;
    sl_buf_fini(&k);
    cr->inst = sl_strdup(mapping_id);
    if (!cr->key || !cr->inst) {
        r = SL_ENOMEM;
        goto fail;
    }
    (void)snprintf(cr->name, sizeof(cr->name), "redis://%s:%d/%d %s", cr->url.host, cr->url.port,
                   cr->url.db, cr->key);
    /* The load: Redis may still be starting beside us. */
    int64_t waited_ms = 0, delay_ms = 100;
    bool logged = false;
    for (;;) {
        r = cr_load_once(cr, t, errbuf, errlen);
        if (r != SL_EIO || waited_ms >= load_timeout_ms) {
            break;
        }
        if (!logged) {
            sl_log_warn(CR_COMP, mapping_id, "%s, retrying for up to %lldms", errbuf,
                        (long long)load_timeout_ms);
            logged = true;
        }
        uv_sleep((unsigned)delay_ms);
        waited_ms += delay_ms;
        delay_ms = delay_ms * 2 > 2000 ? 2000 : delay_ms * 2;
    }
    if (r < 0) {
        goto fail;
    }
    struct sl_redis_conn_conf cc = {
        .url = &cr->url,
        .inst = mapping_id,
        .command_timeout_ms = 10000,
    };
    r = sl_redis_conn_new(loop, &cc, &cr->conn);
    if (r < 0) {
        goto fail;
    }
    cr->connects_seen = 0;
    sl_free(prefix);
    *ret_cr = cr;
    return 0;

fail:
    if (r == SL_ENOMEM) {
        (void)snprintf(errbuf, errlen, "checkpoint store %s: out of memory", shown);
    }
    sl_free(prefix);
    ckpt_redis_free(cr);
    return r;
}

void ckpt_redis_free(struct ckpt_redis *cr)
{
    if (!cr) {
        return;
    }
    sl_redis_conn_free(cr->conn); /* answers a write in flight, from inside */
    sl_redis_url_fini(&cr->url);
    sl_free(cr->key);
    sl_free(cr->inst);
    sl_free(cr);
}

/* ---- writes ---- */

#define CR_ARGV_MAX 11

/* The EVAL of one row into argv/argvlen (counter: room for the lease counter's text). Returns
 * argc, or 0 when writes are fenced and this worker does not hold the row's lease. */
static int cr_argv(const struct ckpt_redis *cr,
                   const struct ckpt_row *row,
                   const char **argv,
                   size_t *argvlen,
                   char *counter)
{
    int argc = 0;
    uint64_t c = 0;
    bool fenced = cr->fence.lease_key != NULL;
    if (fenced && !cr->fence.holds(cr->fence.arg, row->part, &c)) {
        return 0;
    }
    argv[argc++] = "EVAL";
    argv[argc++] = cr_script;
    argv[argc++] = fenced ? "2" : "1";
    argv[argc++] = cr->key;
    if (fenced) {
        argv[argc++] = cr->fence.lease_key;
    }
    argv[argc++] = row->part;
    argv[argc++] = row->pos;
    argv[argc++] = row->meta ? row->meta : "";
    argv[argc++] = row->meta ? "1" : "0";
    if (fenced) {
        (void)snprintf(counter, 24, "%llu", (unsigned long long)c);
        argv[argc++] = cr->fence.owner;
        argv[argc++] = counter;
    }
    for (int a = 0; a < argc; a++) {
        argvlen[a] = strlen(argv[a]);
    }
    return argc;
}

void ckpt_redis_set_fence(struct ckpt_redis *cr, const struct ckpt_redis_fence *fence)
{
    if (fence) {
        cr->fence = *fence;
    } else {
        cr->fence = (struct ckpt_redis_fence){0};
    }
}

unsigned long ckpt_redis_fenced_writes(const struct ckpt_redis *cr)
{
    return cr->fenced;
}

int ckpt_redis_parse_row(const char *text, struct ckpt_table *t, const char *part)
{
    cJSON *j = cJSON_Parse(text);
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(j, "pos");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(j, "meta");
    int r = SL_EPROTO;
    if (cJSON_IsString(pos) && (!meta || cJSON_IsString(meta))) {
        bool changed;
        r = ckpt_table_put(t, part, pos->valuestring, meta ? meta->valuestring : NULL, &changed);
    }
    cJSON_Delete(j);
    return r;
}

static void cr_answered(void *arg, int err, const struct redisReply *reply, const char *detail)
{
    struct ckpt_redis *cr = arg;
    assert(cr->outstanding > 0);
    if (err == 0 && reply->type == REDIS_REPLY_INTEGER && reply->integer < 0) {
        cr->fenced++;
        if (!cr->fenced_logged) {
            sl_log_info(CR_COMP, cr->inst,
                        "%s: a checkpoint write was fenced off: this worker no longer holds the "
                        "partition's lease, skipping (logged once until a write succeeds)",
                        cr->name);
            cr->fenced_logged = true;
        }
    } else if (err == 0 && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        cr->fenced_logged = false;
    } else if (err == 0 && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        cr->stale++;
        if (!cr->stale_logged) {
            sl_log_warn(CR_COMP, cr->inst,
                        "%s already holds a later position than this process wrote for a "
                        "partition: kept it (positions only move forward), skipping",
                        cr->name);
            cr->stale_logged = true;
        }
    } else if (err == SL_EREJECTED) {
        sl_log_error(CR_COMP, cr->inst, "%s: the checkpoint script was refused: %.200s, retrying",
                     cr->name, detail ? detail : "");
    }
    if (err && !cr->first_err) {
        cr->first_err = err;
    }
    if (--cr->outstanding == 0) {
        int e = cr->first_err;
        cr->first_err = 0;
        cr->cb(cr->arg, e);
    }
}

int ckpt_redis_write(
    struct ckpt_redis *cr, const struct ckpt_row *rows, size_t n, ckpt_redis_done_cb cb, void *arg)
{
    assert(n >= 1 && cr->outstanding == 0);
    cr->cb = cb;
    cr->arg = arg;
    cr->first_err = 0;
    cr->outstanding = 1; /* held until every command is started, so cb cannot run early */
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        const char *argv[CR_ARGV_MAX];
        size_t argvlen[CR_ARGV_MAX];
        char counter[24];
        int argc = cr_argv(cr, &rows[i], argv, argvlen, counter);
        if (argc == 0) {
            cr->fenced++; /* not this worker's partition now: nothing to write */
            continue;
        }
        cr->outstanding++;
        r = sl_redis_conn_command(cr->conn, argc, argv, argvlen, cr_answered, cr);
        if (r < 0) {
            cr->outstanding--;
            break;
        }
    }
    if (r < 0 && cr->outstanding == 1) {
        cr->outstanding = 0; /* nothing went out: the caller keeps every row */
        return r;
    }
    if (cr->outstanding == 1) {
        cr->outstanding = 0; /* every row was fenced off here: the write is over */
        return SL_EAGAIN;
    }
    if (r < 0 && !cr->first_err) {
        cr->first_err = r; /* some went out: the write fails as a whole once they are answered */
    }
    if (--cr->outstanding == 0) {
        /* every command was answered from inside sl_redis_conn_command: not allowed by its
         * contract, so this does not happen; answer from here all the same */
        int e = cr->first_err;
        cr->first_err = 0;
        cb(arg, e);
    }
    return 0;
}

int ckpt_redis_write_sync(struct ckpt_redis *cr, const struct ckpt_row *rows, size_t n)
{
    size_t sent = 0;
    char err[300];
    redisContext *c = cr_sync_connect(cr, err, sizeof(err));
    if (!c) {
        sl_log_error(CR_COMP, cr->inst, "%s; the last checkpoints are not written", err);
        return SL_EIO;
    }
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        const char *argv[CR_ARGV_MAX];
        size_t argvlen[CR_ARGV_MAX];
        char counter[24];
        int argc = cr_argv(cr, &rows[i], argv, argvlen, counter);
        if (argc == 0) {
            continue;
        }
        if (redisAppendCommandArgv(c, argc, argv, argvlen) != REDIS_OK) {
            r = SL_ENOMEM;
            break;
        }
        sent++;
    }
    for (size_t i = 0; i < sent; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep) {
            sl_log_error(CR_COMP, cr->inst, "%s: %s; the last checkpoints are not written",
                         cr->name, c->errstr);
            r = SL_EIO;
            break;
        }
        if (rep->type == REDIS_REPLY_ERROR && r == 0) {
            sl_log_error(CR_COMP, cr->inst, "%s: the checkpoint script was refused: %.200s",
                         cr->name, rep->str);
            r = SL_EIO;
        }
        freeReplyObject(rep);
    }
    redisFree(c);
    return r;
}

struct sl_redis_conn *ckpt_redis_conn(struct ckpt_redis *cr)
{
    return cr->conn;
}

int ckpt_redis_command_sync(struct ckpt_redis *cr,
                            int argc,
                            const char **argv,
                            const size_t *argvlen)
{
    char err[300];
    redisContext *c = cr_sync_connect(cr, err, sizeof(err));
    if (!c) {
        sl_log_warn(CR_COMP, cr->inst, "%s, skipping", err);
        return SL_EIO;
    }
    redisReply *rep = redisCommandArgv(c, argc, argv, argvlen);
    int r = rep && rep->type != REDIS_REPLY_ERROR ? 0 : SL_EIO;
    if (r < 0) {
        sl_log_warn(CR_COMP, cr->inst, "%s: %.200s, skipping", cr->name,
                    rep ? rep->str : c->errstr);
    }
    if (rep) {
        freeReplyObject(rep);
    }
    redisFree(c);
    return r;
}

bool ckpt_redis_take_reconnect(struct ckpt_redis *cr)
{
    uint64_t n = sl_redis_conn_connects(cr->conn);
    if (n == cr->connects_seen) {
        return false;
    }
    cr->connects_seen = n;
    return n > 1; /* the first connection: the load just read what Redis holds */
}

unsigned long ckpt_redis_stale_writes(const struct ckpt_redis *cr)
{
    return cr->stale;
}

const char *ckpt_redis_name(const struct ckpt_redis *cr)
{
    return cr->name;
}

#else /* a build without Redis: the store is refused where the configuration names it */

#include <stdio.h>

int ckpt_redis_check_url(const char *url, char *errbuf, size_t errlen)
{
    (void)url;
    (void)snprintf(errbuf, errlen,
                   "a Redis checkpoint store needs a build with Redis (meson -Dredis=enabled, "
                   "hiredis); allowed here: none (the file store in state_dir)");
    return SL_ECONFIG;
}

int ckpt_redis_open(uv_loop_t *loop,
                    const char *url,
                    const char *mapping_id,
                    int64_t load_timeout_ms,
                    struct ckpt_table *t,
                    struct ckpt_redis **ret_cr,
                    char *errbuf,
                    size_t errlen)
{
    (void)loop;
    (void)mapping_id;
    (void)load_timeout_ms;
    (void)t;
    (void)ret_cr;
    return ckpt_redis_check_url(url, errbuf, errlen);
}

int ckpt_redis_write(
    struct ckpt_redis *cr, const struct ckpt_row *rows, size_t n, ckpt_redis_done_cb cb, void *arg)
{
    (void)cr;
    (void)rows;
    (void)n;
    (void)cb;
    (void)arg;
    return SL_EINVAL;
}

int ckpt_redis_write_sync(struct ckpt_redis *cr, const struct ckpt_row *rows, size_t n)
{
    (void)cr;
    (void)rows;
    (void)n;
    return SL_EINVAL;
}

bool ckpt_redis_take_reconnect(struct ckpt_redis *cr)
{
    (void)cr;
    return false;
}

unsigned long ckpt_redis_stale_writes(const struct ckpt_redis *cr)
{
    (void)cr;
    return 0;
}

const char *ckpt_redis_name(const struct ckpt_redis *cr)
{
    (void)cr;
    return "";
}

void ckpt_redis_free(struct ckpt_redis *cr)
{
    (void)cr;
}

void ckpt_redis_set_fence(struct ckpt_redis *cr, const struct ckpt_redis_fence *fence)
{
    (void)cr;
    (void)fence;
}

unsigned long ckpt_redis_fenced_writes(const struct ckpt_redis *cr)
{
    (void)cr;
    return 0;
}

int ckpt_redis_parse_row(const char *text, struct ckpt_table *t, const char *part)
{
    (void)text;
    (void)t;
    (void)part;
    return SL_EPROTO;
}

struct sl_redis_conn *ckpt_redis_conn(struct ckpt_redis *cr)
{
    (void)cr;
    return NULL;
}

int ckpt_redis_command_sync(struct ckpt_redis *cr,
                            int argc,
                            const char **argv,
                            const size_t *argvlen)
{
    (void)cr;
    (void)argc;
    (void)argv;
    (void)argvlen;
    return SL_EIO;
}

#endif
