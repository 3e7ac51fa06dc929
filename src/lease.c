/* SPDX-License-Identifier: Apache-2.0 */
/* lease.c: a mapping's partition leases in Redis, KCL's way, so that several sluice processes
 * share the partitions of sources without a group protocol (Kinesis shards). It owns the lease
 * hash "<prefix>lease:<mapping>" (one field per partition: "<owner> <counter> <expires_ms>",
 * owner "-" when released), the worker set "<prefix>workers:<mapping>" (a sorted set of worker
 * ids scored by when their heartbeat runs out), this worker's held leases, and the round timer.
 * It talks to Redis on the checkpoint store's connection (one connection, one log line per
 * outage), and at exit releases its leases on a blocking one, so a restart takes them at once.
 *
 * A round, every ttl / 3: one script heartbeats this worker, renews every lease it holds whose
 * owner and counter are still its own (the others are lost: the mapping is told to stop them),
 * counts the live workers and returns the whole table with Redis' clock; the rules
 * (lease_rules.c) choose what to take; one script per take swaps the lease to this worker with
 * the counter bumped, only if the lease is still exactly as it was seen (a compare-and-set), and
 * returns the partition's checkpoint as Redis holds it at that moment, which the mapping starts
 * from. Times are Redis' (TIME in the scripts), so the processes' clocks need not agree.
 *
 * About stopping in time: a lease renewed by a round sent at local time s lasts until at least
 * s + ttl. A round that fails or does not answer renews nothing; once the last renewal that
 * succeeded was sent 2/3 of the TTL ago, every lease is given up (the mapping stops the
 * partitions) before any could have run out. A process stopped (SIGSTOP) past its TTL finds
 * this at its first tick after it resumes, before it sends anything; its checkpoint writes are
 * fenced by the lease counter besides (checkpoint.c, ckpt_redis.c). Loop thread. */
#include "lease.h"

#include "sl_adapters.h"

#if SL_HAVE_REDIS

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "buf.h"
#include "lease_rules.h"
#include "log.h"
#include "redis_conn.h"
#include "redis_url.h"

#define LEASE_COMP "lease"

/* KEYS: workers, leases. ARGV: me, ttl_ms, then part, counter for every lease held.
 * Returns {now_ms, live workers, {lost parts}, HGETALL of the leases}. */
static const char lease_round_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local ttl = tonumber(ARGV[2])\n"
    "redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "local live = redis.call('ZCARD', KEYS[1])\n"
    "local lost = {}\n"
    "for i = 3, #ARGV, 2 do\n"
    "  local v = redis.call('HGET', KEYS[2], ARGV[i])\n"
    "  local o, c = nil, nil\n"
    "  if v then o, c = string.match(v, '^(%S+) (%d+) ') end\n"
    "  if o == ARGV[1] and c == ARGV[i + 1] then\n"
    "    redis.call('HSET', KEYS[2], ARGV[i], o .. ' ' .. c .. ' ' .. (now + ttl))\n"
    "  else\n"
    "    lost[#lost + 1] = ARGV[i]\n"
    "  end\n"
    "end\n"
    "return {now, live, lost, redis.call('HGETALL', KEYS[2])}\n";

/* KEYS: leases, checkpoints. ARGV: me, ttl_ms, part, the lease's value as seen ("" absent).
 * Returns {counter, checkpoint value or false}, or -1 when the lease changed meanwhile. */
static const char lease_take_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local v = redis.call('HGET', KEYS[1], ARGV[3]) or ''\n"
    "if v ~= ARGV[4] then return -1 end\n"
    "local c = tonumber(string.match(v, '^%S+ (%d+) ') or '0') + 1\n"
    "redis.call('HSET', KEYS[1], ARGV[3], ARGV[1] .. ' ' .. c .. ' ' .. (now + "
    "tonumber(ARGV[2])))\n"
    "return {c, redis.call('HGET', KEYS[2], ARGV[3])}\n";

struct lease_part {
    char *part;
    uint64_t counter;
    bool held;
    bool taking; /* a take is in flight */
    bool done;   /* the mapping is done with it: given back once the store is clean */
};

struct sl_lease {
    uv_loop_t *loop;
    const struct sl_clock *clock;
    struct sl_lease_host host;
    struct sl_redis_url url;
    struct sl_redis_conn *conn; /* the checkpoint store's, borrowed */
    struct sl_ckpt *ck;
    uv_timer_t timer;
    bool timer_closed;
    char *owner;
    char *inst;
    char *lease_key;
    char *workers_key;
    char *ckpt_key;
    int64_t ttl_ms;
    struct lease_part *parts;
    size_t n_parts;
    size_t cap_parts;
    size_t n_held;
    bool round_in_flight;
    int64_t round_sent_ms;
    int64_t renewed_sent_ms; /* when the last round that renewed was sent */
    size_t pending;          /* commands not answered yet (round + takes) */
    bool freeing;
};

static struct lease_part *lease_find(const struct sl_lease *ls, const char *part)
{
    for (size_t i = 0; i < ls->n_parts; i++) {
        if (strcmp(ls->parts[i].part, part) == 0) {
            return &ls->parts[i];
        }
    }
    return NULL;
}

int sl_lease_want(struct sl_lease *ls, const char *part)
{
    if (lease_find(ls, part)) {
        return 0;
    }
    if (ls->n_parts == ls->cap_parts) {
        size_t cap = ls->cap_parts ? ls->cap_parts * 2 : 16;
        struct lease_part *p = sl_realloc(ls->parts, cap * sizeof(*p));
        if (!p) {
            return SL_ENOMEM;
        }
        ls->parts = p;
        ls->cap_parts = cap;
    }
    char *s = sl_strdup(part);
    if (!s) {
        return SL_ENOMEM;
    }
    ls->parts[ls->n_parts++] = (struct lease_part){.part = s};
    return 0;
}

bool sl_lease_holds(const struct sl_lease *ls, const char *part, uint64_t *ret_counter)
{
    const struct lease_part *lp = lease_find(ls, part);
    if (!lp || !lp->held) {
        return false;
    }
    if (ret_counter) {
        *ret_counter = lp->counter;
    }
    return true;
}

const char *sl_lease_key(const struct sl_lease *ls)
{
    return ls->lease_key;
}

const char *sl_lease_owner(const struct sl_lease *ls)
{
    return ls->owner;
}

size_t sl_lease_count(const struct sl_lease *ls)
{
    return ls->n_held;
}

/* ---- losing ---- */

static void lease_lose(struct sl_lease *ls, struct lease_part *lp, const char *why)
{
    if (!lp->held) {
        return;
    }
    lp->held = false;
    ls->n_held--;
    sl_log_info(LEASE_COMP, ls->inst, "%s: lease lost (%s); stopping its work", lp->part, why);
    ls->host.lost(ls->host.arg, lp->part);
}

static void lease_lose_all(struct sl_lease *ls, const char *why)
{
    for (size_t i = 0; i < ls->n_parts; i++) {
        lease_lose(ls, &ls->parts[i], why);
    }
}

/* KEYS: leases. ARGV: me, then part, counter for every lease held: each still ours is freed
 * ("-", same counter, expired). */
static const char lease_release_script[] =
    "for i = 2, #ARGV, 2 do\n"
    "  local v = redis.call('HGET', KEYS[1], ARGV[i])\n"
    "  local o, c = nil, nil\n"
    "  if v then o, c = string.match(v, '^(%S+) (%d+) ') end\n"
    "  if o == ARGV[1] and c == ARGV[i + 1] then\n"
    "    redis.call('HSET', KEYS[1], ARGV[i], '- ' .. c .. ' 0')\n"
    "  end\n"
    "end\n"
    "return 1\n";

static void lease_finish_cmd(struct sl_lease *ls);

static void lease_released(void *arg, int err, const struct redisReply *reply, const char *detail)
{
    (void)err;
    (void)reply;
    (void)detail;
    lease_finish_cmd(arg);
}

/* Releases lp's lease (if held) and forgets it. */
static void lease_give_back(struct sl_lease *ls, struct lease_part *lp)
{
    const char *part = lp->part;
    if (lp->held) {
        char counter[24];
        (void)snprintf(counter, sizeof(counter), "%" PRIu64, lp->counter);
        const char *argv[] = {"EVAL", lease_release_script, "1", ls->lease_key, ls->owner, part,
                              counter};
        size_t argvlen[7];
        for (int i = 0; i < 7; i++) {
            argvlen[i] = strlen(argv[i]);
        }
        ls->pending++;
        if (sl_redis_conn_command(ls->conn, 7, argv, argvlen, lease_released, ls) < 0) {
            ls->pending--; /* it runs out by itself */
        }
        lp->held = false;
        ls->n_held--;
        sl_log_info(LEASE_COMP, ls->inst, "%s: done with it; lease released", part);
    }
    sl_free(lp->part);
    *lp = ls->parts[--ls->n_parts];
}

void sl_lease_done(struct sl_lease *ls, const char *part)
{
    struct lease_part *lp = lease_find(ls, part);
    if (!lp || lp->taking) {
        return; /* a take in flight: it is released when the partition is offered and done */
    }
    if (!lp->held) {
        lease_give_back(ls, lp);
        return;
    }
    /* held until its last checkpoint (the end it recorded) is in Redis: released by a round
     * that finds the store clean, so the write is not fenced off by the release */
    lp->done = true;
}

/* Gives back the leases of partitions done with, once the store has written everything. */
static void lease_give_back_done(struct sl_lease *ls)
{
    bool clean = sl_ckpt_is_clean(ls->ck);
    for (size_t i = ls->n_parts; i-- > 0;) {
        const struct lease_part *lp = &ls->parts[i];
        if (lp->done && !lp->taking && (clean || !lp->held)) {
            lease_give_back(ls, &ls->parts[i]);
        }
    }
}

/* ---- taking ---- */

struct lease_take {
    struct sl_lease *ls;
    char *part;
};

static void lease_taken(void *arg, int err, const struct redisReply *reply, const char *detail)
{
    struct lease_take *tk = arg;
    struct sl_lease *ls = tk->ls;
    (void)detail;
    struct lease_part *lp = lease_find(ls, tk->part);
    if (lp) {
        lp->taking = false;
    }
    if (!ls->freeing && lp && err == 0 && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == 2 && reply->element[0]->type == REDIS_REPLY_INTEGER) {
        lp->counter = (uint64_t)reply->element[0]->integer;
        lp->held = true;
        ls->n_held++;
        const redisReply *ck = reply->element[1];
        sl_log_info(LEASE_COMP, ls->inst, "%s: lease taken (counter %" PRIu64 ")", lp->part,
                    lp->counter);
        /* {"pos":"...","meta":"..."}: the store's row, which the mapping's store reads */
        ls->host.granted(ls->host.arg, lp->part, ck->type == REDIS_REPLY_STRING ? ck->str : NULL);
    }
    sl_free(tk->part);
    sl_free(tk);
    lease_finish_cmd(ls);
}

static void lease_take(struct sl_lease *ls, const struct sl_lease_view *v, const char *seen)
{
    struct lease_part *lp = lease_find(ls, v->part);
    if (!lp || lp->taking || lp->held) {
        return;
    }
    struct lease_take *tk = sl_calloc(1, sizeof(*tk));
    char *part = sl_strdup(v->part);
    if (!tk || !part) {
        sl_free(tk);
        sl_free(part);
        return;
    }
    tk->ls = ls;
    tk->part = part;
    char ttl[24];
    (void)snprintf(ttl, sizeof(ttl), "%" PRId64, ls->ttl_ms);
    const char *argv[] = {
        "EVAL", lease_take_script, "2", ls->lease_key, ls->ckpt_key, ls->owner, ttl, part, seen};
    size_t argvlen[9];
    for (int i = 0; i < 9; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    ls->pending++;
    lp->taking = true;
    if (sl_redis_conn_command(ls->conn, 9, argv, argvlen, lease_taken, tk) < 0) {
        ls->pending--;
        lp->taking = false;
        sl_free(part);
        sl_free(tk);
    }
}

/* ---- the round ---- */

/* Splits a lease value "<owner> <counter> <expires>" into v (owner points into buf). */
static bool lease_parse(const char *value, char *buf, size_t len, struct sl_lease_view *v)
{
    char *end = NULL;
    const char *sp = strchr(value, ' ');
    if (!sp || (size_t)(sp - value) >= len) {
        return false;
    }
    memcpy(buf, value, (size_t)(sp - value));
    buf[sp - value] = '\0';
    v->owner = strcmp(buf, "-") == 0 ? "" : buf;
    v->counter = strtoull(sp + 1, &end, 10);
    if (!end || *end != ' ') {
        return false;
    }
    v->expires_ms = strtoll(end + 1, &end, 10);
    return end && *end == '\0';
}

static void lease_plan(struct sl_lease *ls, int64_t now, size_t live, const redisReply *table)
{
    size_t n = table->elements / 2;
    size_t cap = n + ls->n_parts;
    struct sl_lease_view *views = sl_calloc(cap ? cap : 1, sizeof(*views));
    const char **seen = sl_calloc(cap ? cap : 1, sizeof(*seen));
    char(*owners)[128] = sl_calloc(cap ? cap : 1, sizeof(*owners));
    size_t *take = sl_calloc(cap ? cap : 1, sizeof(*take));
    if (!views || !seen || !owners || !take) {
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *f = table->element[2 * i], *val = table->element[2 * i + 1];
        if (f->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING ||
            !lease_find(ls, f->str) ||
            !lease_parse(val->str, owners[k], sizeof(owners[k]), &views[k])) {
            continue; /* a partition this worker's source does not offer (yet) */
        }
        views[k].part = f->str;
        seen[k] = val->str;
        k++;
    }
    for (size_t i = 0; i < ls->n_parts; i++) {
        bool in_table = false;
        for (size_t j = 0; j < k && !in_table; j++) {
            in_table = strcmp(views[j].part, ls->parts[i].part) == 0;
        }
        if (!in_table) {
            views[k] = (struct sl_lease_view){.part = ls->parts[i].part, .owner = ""};
            seen[k] = "";
            k++;
        }
    }
    struct sl_lease_plan plan = {.take = take};
    (void)sl_lease_rules_plan(views, k, ls->owner, live, now, &plan);
    for (size_t i = 0; i < plan.n_take; i++) {
        if (plan.steal) {
            sl_log_info(LEASE_COMP, ls->inst,
                        "%s: taking the lease from %s, the most loaded worker", views[take[i]].part,
                        views[take[i]].owner);
        }
        lease_take(ls, &views[take[i]], seen[take[i]]);
    }
done:
    sl_free(views);
    sl_free(seen);
    sl_free(owners);
    sl_free(take);
}

static void lease_round_done(void *arg, int err, const struct redisReply *reply, const char *detail)
{
    struct sl_lease *ls = arg;
    ls->round_in_flight = false;
    if (ls->freeing) {
        lease_finish_cmd(ls);
        return;
    }
    if (err || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER ||
        reply->element[2]->type != REDIS_REPLY_ARRAY ||
        reply->element[3]->type != REDIS_REPLY_ARRAY) {
        if (err == SL_EREJECTED) {
            sl_log_error(LEASE_COMP, ls->inst, "the lease round was refused: %.200s, retrying",
                         detail ? detail : "");
        }
        lease_finish_cmd(ls); /* nothing renewed: the next tick checks the deadline */
        return;
    }
    ls->renewed_sent_ms = ls->round_sent_ms;
    const redisReply *lost = reply->element[2];
    for (size_t i = 0; i < lost->elements; i++) {
        struct lease_part *lp = lost->element[i]->type == REDIS_REPLY_STRING
                                    ? lease_find(ls, lost->element[i]->str)
                                    : NULL;
        if (lp) {
            lease_lose(ls, lp, "another worker holds it now");
        }
    }
    lease_plan(ls, reply->element[0]->integer, (size_t)reply->element[1]->integer,
               reply->element[3]);
    lease_finish_cmd(ls);
}

static void lease_round(struct sl_lease *ls)
{
    int64_t now = sl_clock_now_ms(ls->clock);
    if (ls->n_held > 0 && now - ls->renewed_sent_ms >= ls->ttl_ms * 2 / 3) {
        lease_lose_all(ls, "not renewed in time");
    }
    if (ls->round_in_flight) {
        return;
    }
    lease_give_back_done(ls);
    size_t argc = 7 + 2 * ls->n_held;
    const char **argv = sl_calloc(argc, sizeof(*argv));
    size_t *argvlen = sl_calloc(argc, sizeof(*argvlen));
    char(*counters)[24] = sl_calloc(ls->n_held ? ls->n_held : 1, sizeof(*counters));
    char ttl[24];
    if (!argv || !argvlen || !counters) {
        goto done;
    }
    (void)snprintf(ttl, sizeof(ttl), "%" PRId64, ls->ttl_ms);
    argv[0] = "EVAL";
    argv[1] = lease_round_script;
    argv[2] = "2";
    argv[3] = ls->workers_key;
    argv[4] = ls->lease_key;
    argv[5] = ls->owner;
    size_t a = 6, h = 0;
    argv[a++] = ttl;
    for (size_t i = 0; i < ls->n_parts; i++) {
        if (ls->parts[i].held) {
            (void)snprintf(counters[h], sizeof(counters[h]), "%" PRIu64, ls->parts[i].counter);
            argv[a++] = ls->parts[i].part;
            argv[a++] = counters[h++];
        }
    }
    for (size_t i = 0; i < a; i++) {
        argvlen[i] = strlen(argv[i]);
    }
    ls->round_sent_ms = now;
    ls->round_in_flight = true;
    ls->pending++;
    if (sl_redis_conn_command(ls->conn, (int)a, argv, argvlen, lease_round_done, ls) < 0) {
        ls->round_in_flight = false;
        ls->pending--;
    }
done:
    sl_free(argv);
    sl_free(argvlen);
    sl_free(counters);
}

static void lease_timer_cb(uv_timer_t *t)
{
    lease_round(t->data);
}

/* ---- life ---- */

static char *lease_join(const char *prefix, const char *kind, const char *id)
{
    struct sl_buf b;
    sl_buf_init(&b);
    char *s = sl_buf_printf(&b, "%s%s:%s", prefix, kind, id) == 0 ? sl_buf_steal(&b) : NULL;
    sl_buf_fini(&b);
    return s;
}

static void lease_destroy(struct sl_lease *ls)
{
    for (size_t i = 0; i < ls->n_parts; i++) {
        sl_free(ls->parts[i].part);
    }
    sl_free(ls->parts);
    sl_redis_url_fini(&ls->url);
    sl_free(ls->owner);
    sl_free(ls->inst);
    sl_free(ls->lease_key);
    sl_free(ls->workers_key);
    sl_free(ls->ckpt_key);
    sl_free(ls);
}

/* Freed once its timer is closed and no command of it waits on the shared connection. */
static void lease_close_cb(uv_handle_t *h)
{
    struct sl_lease *ls = h->data;
    ls->timer_closed = true;
    if (ls->pending == 0) {
        lease_destroy(ls);
    }
}

static void lease_finish_cmd(struct sl_lease *ls)
{
    assert(ls->pending > 0);
    if (--ls->pending == 0 && ls->timer_closed) {
        lease_destroy(ls);
    }
}

int sl_lease_new(uv_loop_t *loop,
                 const struct sl_lease_conf *conf,
                 const struct sl_lease_host *host,
                 struct sl_lease **ret_ls,
                 char *errbuf,
                 size_t errlen)
{
    assert(conf->ttl_ms >= 3);
    struct sl_lease *ls = sl_calloc(1, sizeof(*ls));
    if (!ls) {
        return SL_ENOMEM;
    }
    ls->loop = loop;
    ls->clock = conf->clock;
    ls->host = *host;
    ls->ttl_ms = conf->ttl_ms;
    int r = sl_redis_url_parse(conf->url, &ls->url, errbuf, errlen);
    if (r < 0) {
        sl_free(ls);
        return r;
    }
    const char *prefix = "sluice:";
    if (ls->url.query && strncmp(ls->url.query, "prefix=", 7) == 0) {
        prefix = ls->url.query + 7;
    }
    char owner[300];
    char host_name[256] = "host";
    (void)gethostname(host_name, sizeof(host_name) - 1);
    (void)snprintf(owner, sizeof(owner), "%s:%ld:%08x", host_name, (long)getpid(),
                   (unsigned)(sl_clock_wall_ms(conf->clock) * 2654435761u));
    for (char *p = owner; *p; p++) {
        *p = *p == ' ' ? '_' : *p; /* the lease value is space-separated */
    }
    ls->owner = sl_strdup(conf->owner ? conf->owner : owner);
    ls->inst = sl_strdup(conf->mapping_id);
    ls->lease_key = lease_join(prefix, "lease", conf->mapping_id);
    ls->workers_key = lease_join(prefix, "workers", conf->mapping_id);
    ls->ckpt_key = lease_join(prefix, "ckpt", conf->mapping_id);
    ls->ck = conf->ck;
    ls->conn = sl_ckpt_redis_conn(conf->ck);
    assert(ls->conn);
    r = (ls->owner && ls->inst && ls->lease_key && ls->workers_key && ls->ckpt_key) ? 0 : SL_ENOMEM;
    (void)uv_timer_init(loop, &ls->timer);
    ls->timer.data = ls;
    if (r < 0) {
        ls->freeing = true;
        uv_close((uv_handle_t *)&ls->timer, lease_close_cb);
        (void)snprintf(errbuf, errlen, "leases: out of memory");
        return r;
    }
    uint64_t every = (uint64_t)(conf->ttl_ms / 3);
    (void)uv_timer_start(&ls->timer, lease_timer_cb, 0, every ? every : 1);
    sl_log_info(LEASE_COMP, ls->inst,
                "sharing the partitions as worker %s (lease_ttl %" PRId64 "ms)", ls->owner,
                ls->ttl_ms);
    *ret_ls = ls;
    return 0;
}

/* Frees every lease held, on a blocking connection (the loop's may be waiting on an outage). */
static void lease_release_all(struct sl_lease *ls)
{
    if (ls->n_held == 0) {
        return;
    }
    size_t argc = 5 + 2 * ls->n_held; /* EVAL script 1 key owner, then part counter pairs */
    const char **argv = sl_calloc(argc, sizeof(*argv));
    size_t *argvlen = sl_calloc(argc, sizeof(*argvlen));
    char(*counters)[24] = sl_calloc(ls->n_held, sizeof(*counters));
    if (argv && argvlen && counters) {
        size_t a = 0, h = 0;
        argv[a++] = "EVAL";
        argv[a++] = lease_release_script;
        argv[a++] = "1";
        argv[a++] = ls->lease_key;
        argv[a++] = ls->owner;
        for (size_t i = 0; i < ls->n_parts && h < ls->n_held; i++) {
            if (ls->parts[i].held) {
                (void)snprintf(counters[h], sizeof(counters[h]), "%" PRIu64, ls->parts[i].counter);
                argv[a++] = ls->parts[i].part;
                argv[a++] = counters[h++];
            }
        }
        for (size_t i = 0; i < a; i++) {
            argvlen[i] = strlen(argv[i]);
        }
        if (sl_ckpt_redis_command_sync(ls->ck, (int)a, argv, argvlen) == 0) {
            sl_log_info(LEASE_COMP, ls->inst, "released %zu leases", ls->n_held);
        }
    }
    sl_free(argv);
    sl_free(argvlen);
    sl_free(counters);
}

void sl_lease_free(struct sl_lease *ls)
{
    if (!ls) {
        return;
    }
    ls->freeing = true;
    (void)uv_timer_stop(&ls->timer);
    lease_release_all(ls);
    uv_close((uv_handle_t *)&ls->timer, lease_close_cb);
}

#else /* a build without Redis has no Redis checkpoint store, so no leases */

#include <stdio.h>

int sl_lease_new(uv_loop_t *loop,
                 const struct sl_lease_conf *conf,
                 const struct sl_lease_host *host,
                 struct sl_lease **ret_ls,
                 char *errbuf,
                 size_t errlen)
{
    (void)loop;
    (void)conf;
    (void)host;
    (void)ret_ls;
    (void)snprintf(errbuf, errlen, "leases need a build with Redis");
    return SL_ECONFIG;
}

int sl_lease_want(struct sl_lease *ls, const char *part)
{
    (void)ls;
    (void)part;
    return 0;
}

bool sl_lease_holds(const struct sl_lease *ls, const char *part, uint64_t *ret_counter)
{
    (void)ls;
    (void)part;
    (void)ret_counter;
    return false;
}

const char *sl_lease_key(const struct sl_lease *ls)
{
    (void)ls;
    return "";
}

const char *sl_lease_owner(const struct sl_lease *ls)
{
    (void)ls;
    return "";
}

size_t sl_lease_count(const struct sl_lease *ls)
{
    (void)ls;
    return 0;
}

void sl_lease_done(struct sl_lease *ls, const char *part)
{
    (void)ls;
    (void)part;
}

void sl_lease_free(struct sl_lease *ls)
{
    (void)ls;
}

#endif
