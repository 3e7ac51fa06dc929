/* SPDX-License-Identifier: Apache-2.0 */
/* checkpoint.c: the file checkpoint store. It owns one mapping's partition positions in memory
 * (an open-addressing hash table keyed by partition id) and their file <dir>/<mapping>.json.
 * Updates only bump a generation counter; a uv_check handle (with a uv_idle handle beside it so
 * the loop does not block in poll while something is dirty) takes one snapshot per loop turn
 * and hands it to the libuv thread pool, which writes <mapping>.json.tmp, fsyncs it, renames it
 * over <mapping>.json and fsyncs the directory. At most one write is in flight; updates made
 * meanwhile go into the next one. Opening creates and removes the temp file once, so a directory
 * it cannot write in stops the run before anything is read. A failed write is retried after a
 * backoff (100 ms doubling to 1 s) and logged once per distinct error. It must not block the loop
 * thread (except in sl_ckpt_flush_sync, which is for exit), must not silently reset a corrupt file,
 * and must never leave <mapping>.json partially written. Loop thread, except ck_work_cb which
 * runs on a pool thread and touches only the immutable paths, the snapshot buffer and the result.
 * Below it: the table (ckpt_table.c), its JSON form (ckpt_json.c) and the file I/O with its
 * injectable calls (ckpt_file.c); none of them calls back up.
 *
 * About Redis (sl_ckpt_open_redis): the same store with Redis in place of the file. The table,
 * the generations and the once-per-turn coalescing are the same; what a turn writes is the rows
 * changed since the last write (the pending table), through ckpt_redis.c, which moves a
 * position in Redis only forward. A write that fails puts its rows back into pending (unless a
 * newer one is there) and is retried after the same backoff, so no checkpoint moves in Redis
 * nor counts as durable while it is down, and nothing is lost when it is back. After the
 * connection was made again every row is written again (a Redis restarted without persistence
 * has lost them). The outage itself is logged by the connection (one line when it starts, one
 * when it ends); only other failures are logged here. */
#include "checkpoint.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "ckpt_file.h"
#include "ckpt_json.h"
#include "ckpt_redis.h"
#include "ckpt_table.h"
#include "log.h"

#define CK_COMP           "checkpoint"
#define CK_BACKOFF_MIN_MS 100
#define CK_BACKOFF_MAX_MS 1000
#define CK_MAX_ID_BYTES   200 /* keeps "<id>.json.tmp" well under NAME_MAX */

/* What stores opened from now on use instead of the system's calls (tests only). */
static const struct sl_ckpt_fileops *ck_default_fileops;

struct sl_ckpt {
    uv_loop_t *loop;
    const struct sl_ckpt_fileops *fops; /* the system's calls unless a test replaced them */
    char *id;
    char *dir;  /* absolute */
    char *path; /* <dir>/<id>.json */
    char *tmp;  /* <dir>/<id>.json.tmp */

    struct ckpt_table *table;

    /* Redis instead of the file (NULL for the file store); pending: rows changed since the
     * last write began; inflight: the rows of the write in flight. */
    struct ckpt_redis *redis;
    struct ckpt_table *pending;
    struct ckpt_table *inflight;

    /* gen counts changes; durable_gen is the gen of the last successful write; inflight_gen the
     * gen of the snapshot in the pool. Something is pending when gen is past the newest of
     * them, so a failed write needs no bookkeeping: gen stays ahead of durable_gen. */
    uint64_t gen;
    uint64_t durable_gen;
    uint64_t inflight_gen;

    uv_check_t check;
    uv_idle_t idle;
    uv_timer_t timer;
    uv_work_t work;
    int handles_open;
    bool in_flight;     /* work queued and its after_work not yet run */
    bool work_consumed; /* flush_sync already accounted the in-flight result */
    bool closing;
    bool backoff; /* timer running; no write until it fires */
    int64_t backoff_ms;

    /* work_done and work_res are written by the pool thread under mu. */
    uv_mutex_t mu;
    uv_cond_t cond;
    bool work_done;
    struct ckpt_file_result work_res;

    struct sl_buf snap; /* the snapshot; the pool reads it while in flight */

    sl_ckpt_durable_cb durable_cb;
    void *durable_arg;

    unsigned long writes;
    int last_error;
    const char *logged_step; /* the error last logged, so each is logged once */
    int logged_errno;
};

/* ---- scheduling ---- */

static bool ck_busy(const struct sl_ckpt *ck)
{
    return ck->in_flight && !ck->work_consumed;
}

static bool ck_has_pending(const struct sl_ckpt *ck)
{
    return ck->gen != (ck_busy(ck) ? ck->inflight_gen : ck->durable_gen);
}

static void ck_check_cb(uv_check_t *h);
static void ck_idle_cb(uv_idle_t *h);

/* Arms the once-per-turn flush when there is something to write and nothing stops it. */
static void ck_kick(struct sl_ckpt *ck)
{
    if (ck->closing || ck->in_flight || ck->backoff || !ck_has_pending(ck)) {
        return;
    }
    (void)uv_check_start(&ck->check, ck_check_cb);
    (void)uv_idle_start(&ck->idle, ck_idle_cb);
}

static void ck_timer_cb(uv_timer_t *t)
{
    struct sl_ckpt *ck = t->data;
    ck->backoff = false;
    ck_kick(ck);
}

/* Accounts one finished write (pool or sync): exactly once per write. */
static void ck_finish(struct sl_ckpt *ck, uint64_t gen, int err, struct ckpt_file_result res)
{
    if (err == 0 && !res.step) {
        ck->writes++;
        if (gen > ck->durable_gen) {
            ck->durable_gen = gen;
        }
        if (ck->logged_step) {
            sl_log_info(CK_COMP, ck->id, "%s: checkpoint write succeeded again", ck->path);
        }
        ck->last_error = 0;
        ck->logged_step = NULL;
        ck->logged_errno = 0;
        ck->backoff_ms = 0;
        if (ck->backoff) {
            (void)uv_timer_stop(&ck->timer);
            ck->backoff = false;
        }
        if (ck->durable_cb && !ck->closing) {
            ck->durable_cb(ck->durable_arg);
        }
        return;
    }
    ck->last_error = err ? err : SL_EIO;
    const char *step = res.step ? res.step : "serialize";
    bool outage = ck->redis && err == SL_EIO; /* the connection logs it */
    if (!outage && (step != ck->logged_step || res.sys_errno != ck->logged_errno)) {
        if (ck->redis) {
            sl_log_error(CK_COMP, ck->id, "%s: checkpoint write failed: %s, retrying", ck->path,
                         sl_strerror(ck->last_error));
        } else if (res.step) {
            sl_log_error(CK_COMP, ck->id, "%s: %s failed: %s, retrying", ck->path, step,
                         uv_strerror(-res.sys_errno));
        } else {
            sl_log_error(CK_COMP, ck->id, "%s: serializing checkpoint failed: %s, retrying",
                         ck->path, sl_strerror(ck->last_error));
        }
        ck->logged_step = step;
        ck->logged_errno = res.sys_errno;
    }
    if (ck->closing) {
        return;
    }
    ck->backoff_ms = ck->backoff_ms ? ck->backoff_ms * 2 : CK_BACKOFF_MIN_MS;
    if (ck->backoff_ms > CK_BACKOFF_MAX_MS) {
        ck->backoff_ms = CK_BACKOFF_MAX_MS;
    }
    (void)uv_timer_stop(&ck->timer);
    (void)uv_timer_start(&ck->timer, ck_timer_cb, (uint64_t)ck->backoff_ms, 0);
    ck->backoff = true;
}

static void ck_free(struct sl_ckpt *ck);

static void ck_work_cb(uv_work_t *req)
{
    struct sl_ckpt *ck = req->data;
    struct ckpt_file_result res =
        ckpt_file_write(ck->fops, ck->dir, ck->path, ck->tmp, ck->snap.data, ck->snap.len);
    uv_mutex_lock(&ck->mu);
    ck->work_res = res;
    ck->work_done = true;
    uv_cond_signal(&ck->cond);
    uv_mutex_unlock(&ck->mu);
}

static void ck_after_work_cb(uv_work_t *req, int status)
{
    struct sl_ckpt *ck = req->data;
    assert(status == 0);
    (void)status;
    if (!ck->work_consumed) {
        ck_finish(ck, ck->inflight_gen, 0, ck->work_res);
    }
    ck->in_flight = false;
    ck->work_consumed = false;
    ck->work_done = false;
    if (ck->closing) {
        if (ck->handles_open == 0) {
            ck_free(ck);
        }
        return;
    }
    ck_kick(ck);
}

static void ck_redis_flush(struct sl_ckpt *ck);

static void ck_check_cb(uv_check_t *h)
{
    struct sl_ckpt *ck = h->data;
    (void)uv_check_stop(&ck->check);
    (void)uv_idle_stop(&ck->idle);
    if (ck->closing || ck->in_flight || ck->backoff || !ck_has_pending(ck)) {
        return;
    }
    if (ck->redis) {
        ck_redis_flush(ck);
        return;
    }
    uint64_t gen = ck->gen;
    int r = ckpt_json_encode(ck->table, ck->id, &ck->snap);
    if (r < 0) {
        ck_finish(ck, gen, r, (struct ckpt_file_result){NULL, 0});
        return;
    }
    ck->inflight_gen = gen;
    ck->in_flight = true;
    ck->work_consumed = false;
    ck->work_done = false;
    r = uv_queue_work(ck->loop, &ck->work, ck_work_cb, ck_after_work_cb);
    if (r < 0) {
        ck->in_flight = false;
        ck_finish(ck, gen, SL_EIO, (struct ckpt_file_result){"queue", -r});
    }
}

static void ck_idle_cb(uv_idle_t *h)
{
    /* Only here so that poll does not block while the check handle waits for its turn. */
    (void)h;
}

/* ---- Redis ---- */

/* Puts every row of from into to, except where to already has the partition (a newer row). */
static int ck_merge(struct ckpt_table *to, struct ckpt_table *from, bool keep_newer)
{
    const struct ckpt_row *rows;
    size_t n;
    int r = ckpt_table_sorted(from, &rows, &n);
    for (size_t i = 0; r == 0 && i < n; i++) {
        struct ckpt_row cur;
        bool changed;
        if (!(keep_newer && ckpt_table_get(to, rows[i].part, &cur))) {
            r = ckpt_table_put(to, rows[i].part, rows[i].pos, rows[i].meta, &changed);
        }
    }
    return r;
}

static void ck_redis_done(void *arg, int err)
{
    struct sl_ckpt *ck = arg;
    ck->in_flight = false;
    if (ck->closing) {
        return; /* the handles' close frees the store */
    }
    if (err < 0 && ck_merge(ck->pending, ck->inflight, true) < 0) {
        /* out of memory: write everything again next time */
        (void)ck_merge(ck->pending, ck->table, false);
    }
    ckpt_table_free(ck->inflight);
    ck->inflight = NULL;
    ck_finish(ck, ck->inflight_gen, err, (struct ckpt_file_result){err ? "redis" : NULL, 0});
    if (err == 0 && ckpt_redis_take_reconnect(ck->redis)) {
        /* the write went out on a new connection: Redis may have lost the other rows */
        if (ck_merge(ck->pending, ck->table, true) == 0) {
            ck->gen++;
        }
    }
    ck_kick(ck);
}

/* One write of the rows changed since the last (every row after a reconnect). */
static void ck_redis_flush(struct sl_ckpt *ck)
{
    uint64_t gen = ck->gen;
    int r = 0;
    if (ckpt_redis_take_reconnect(ck->redis)) {
        r = ck_merge(ck->pending, ck->table, true);
    }
    struct ckpt_table *fresh = r == 0 ? ckpt_table_new() : NULL;
    if (!fresh) {
        ck_finish(ck, gen, SL_ENOMEM, (struct ckpt_file_result){NULL, 0});
        return;
    }
    const struct ckpt_row *rows;
    size_t n;
    r = ckpt_table_sorted(ck->pending, &rows, &n);
    if (r == 0 && n == 0) {
        ckpt_table_free(fresh);
        ck_finish(ck, gen, 0, (struct ckpt_file_result){NULL, 0}); /* a delete: nothing to send */
        return;
    }
    ck->inflight_gen = gen;
    ck->in_flight = true;
    ck->work_consumed = false;
    /* the rows go in flight; kept to put back if the write fails */
    ck->inflight = ck->pending;
    ck->pending = fresh;
    if (r == 0) {
        r = ckpt_redis_write(ck->redis, rows, n, ck_redis_done, ck);
    }
    if (r == SL_EAGAIN) { /* every row fenced off: nothing of ours to write */
        ckpt_table_free(ck->inflight);
        ck->inflight = NULL;
        ck->in_flight = false;
        ck_finish(ck, gen, 0, (struct ckpt_file_result){NULL, 0});
        return;
    }
    if (r < 0) {
        ckpt_table_free(ck->pending);
        ck->pending = ck->inflight;
        ck->inflight = NULL;
        ck->in_flight = false;
        ck_finish(ck, gen, r, (struct ckpt_file_result){NULL, 0});
    }
}

/* ---- open and load ---- */

static bool ck_id_valid(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n <= CK_MAX_ID_BYTES && id[0] != '.' && !strchr(id, '/');
}

static char *ck_join(const char *a, const char *b, const char *c)
{
    struct sl_buf s;
    sl_buf_init(&s);
    if (sl_buf_puts(&s, a) < 0 || sl_buf_puts(&s, b) < 0 || sl_buf_puts(&s, c) < 0) {
        sl_buf_fini(&s);
        return NULL;
    }
    return sl_buf_steal(&s);
}

static int ck_load(struct sl_ckpt *ck, char *errbuf, size_t errlen)
{
    struct sl_buf b;
    sl_buf_init(&b);
    int r = ckpt_file_read(ck->path, &b, errbuf, errlen);
    if (r == SL_ENOTFOUND) {
        r = 0;
    } else if (r == 0) {
        r = ckpt_json_decode(ck->table, ck->path, ck->id, b.data ? b.data : "", b.len, errbuf,
                             errlen);
    }
    if (r == SL_ENOMEM) {
        snprintf(errbuf, errlen, "checkpoint file %s: out of memory", ck->path);
    }
    sl_buf_fini(&b);
    return r;
}

static void ck_free(struct sl_ckpt *ck)
{
    ckpt_table_free(ck->table);
    ckpt_table_free(ck->pending);
    ckpt_table_free(ck->inflight);
    ckpt_redis_free(ck->redis);
    sl_buf_fini(&ck->snap);
    sl_free(ck->id);
    sl_free(ck->dir);
    sl_free(ck->path);
    sl_free(ck->tmp);
    uv_cond_destroy(&ck->cond);
    uv_mutex_destroy(&ck->mu);
    sl_free(ck);
}

/* 0, or SL_EINVAL with errbuf saying what a mapping id may be. */
static int ck_check_id(const char *mapping_id, char *errbuf, size_t errlen)
{
    if (!ck_id_valid(mapping_id)) {
        snprintf(errbuf, errlen,
                 "checkpoint: invalid mapping id \"%s\" (must be 1 to %d bytes, no '/', not "
                 "starting with '.')",
                 mapping_id, CK_MAX_ID_BYTES);
        return SL_EINVAL;
    }
    return 0;
}

/* A store's memory, shared by both kinds: the id checked, the lock and the table. Returns 0 and
 * *ret_ck, or SL_EINVAL / SL_ENOMEM with errbuf. */
static int ck_new(
    uv_loop_t *loop, const char *mapping_id, struct sl_ckpt **ret_ck, char *errbuf, size_t errlen)
{
    int r = ck_check_id(mapping_id, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    struct sl_ckpt *ck = sl_calloc(1, sizeof(*ck));
    if (!ck) {
        snprintf(errbuf, errlen, "checkpoint: out of memory");
        return SL_ENOMEM;
    }
    if (uv_mutex_init(&ck->mu) < 0) {
        sl_free(ck);
        snprintf(errbuf, errlen, "checkpoint: cannot create a mutex");
        return SL_ENOMEM;
    }
    if (uv_cond_init(&ck->cond) < 0) {
        uv_mutex_destroy(&ck->mu);
        sl_free(ck);
        snprintf(errbuf, errlen, "checkpoint: cannot create a condition variable");
        return SL_ENOMEM;
    }
    ck->loop = loop;
    sl_buf_init(&ck->snap);
    ck->table = ckpt_table_new();
    ck->id = sl_strdup(mapping_id);
    if (!ck->table || !ck->id) {
        ck_free(ck);
        snprintf(errbuf, errlen, "checkpoint: out of memory");
        return SL_ENOMEM;
    }
    *ret_ck = ck;
    return 0;
}

/* The loop handles that coalesce and start writes, for both kinds. */
static void ck_handles_init(struct sl_ckpt *ck)
{
    (void)uv_check_init(ck->loop, &ck->check);
    (void)uv_idle_init(ck->loop, &ck->idle);
    (void)uv_timer_init(ck->loop, &ck->timer);
    ck->check.data = ck;
    ck->idle.data = ck;
    ck->timer.data = ck;
    ck->work.data = ck;
    ck->handles_open = 3;
}

int sl_ckpt_open(uv_loop_t *loop,
                 const char *dir,
                 const char *mapping_id,
                 struct sl_ckpt **ret_ck,
                 char *errbuf,
                 size_t errlen)
{
    int r = ck_check_id(mapping_id, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    r = ckpt_file_mkdirs(dir, errbuf, errlen);
    if (r < 0) {
        if (r == SL_ENOMEM) {
            snprintf(errbuf, errlen, "checkpoint: out of memory");
        }
        return r;
    }
    char abs[PATH_MAX];
    if (!realpath(dir, abs)) {
        snprintf(errbuf, errlen, "state directory %s: %s", dir, strerror(errno));
        return SL_EIO;
    }
    struct sl_ckpt *ck = NULL;
    r = ck_new(loop, mapping_id, &ck, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    ck->fops = ck_default_fileops ? ck_default_fileops : &ckpt_file_sys_ops;
    ck->dir = sl_strdup(abs);
    ck->path = ck_join(abs, "/", mapping_id);
    if (ck->path) {
        char *p = ck_join(ck->path, ".json", "");
        sl_free(ck->path);
        ck->path = p;
    }
    ck->tmp = ck->path ? ck_join(ck->path, ".tmp", "") : NULL;
    if (!ck->dir || !ck->path || !ck->tmp) {
        snprintf(errbuf, errlen, "checkpoint: out of memory");
        r = SL_ENOMEM;
        goto fail;
    }
    /* A temp file is what a crash mid-write leaves; the rename never happened, so the main
     * file is the last complete state. */
    if (unlink(ck->tmp) == 0) {
        sl_log_info(CK_COMP, ck->id, "%s: removed a temp file left by an interrupted write",
                    ck->tmp);
    } else if (errno != ENOENT) {
        sl_log_warn(CK_COMP, ck->id, "%s: cannot remove leftover temp file: %s, skipping", ck->tmp,
                    strerror(errno));
    }
    r = ckpt_file_probe(ck->dir, ck->tmp, errbuf, errlen);
    if (r < 0) {
        goto fail;
    }
    r = ck_load(ck, errbuf, errlen);
    if (r < 0) {
        goto fail;
    }
    ck_handles_init(ck);
    *ret_ck = ck;
    return 0;

fail:
    ck_free(ck);
    return r;
}

int sl_ckpt_open_redis(uv_loop_t *loop,
                       const char *url,
                       const char *mapping_id,
                       struct sl_ckpt **ret_ck,
                       char *errbuf,
                       size_t errlen)
{
    struct sl_ckpt *ck = NULL;
    int r = ck_new(loop, mapping_id, &ck, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    ck->fops = &ckpt_file_sys_ops;
    ck->pending = ckpt_table_new();
    if (!ck->pending) {
        snprintf(errbuf, errlen, "checkpoint: out of memory");
        r = SL_ENOMEM;
        goto fail;
    }
    r = ckpt_redis_open(loop, url, mapping_id, SL_CKPT_REDIS_LOAD_TIMEOUT_MS, ck->table, &ck->redis,
                        errbuf, errlen);
    if (r < 0) {
        goto fail;
    }
    ck->path = sl_strdup(ckpt_redis_name(ck->redis));
    if (!ck->path) {
        snprintf(errbuf, errlen, "checkpoint: out of memory");
        r = SL_ENOMEM;
        goto fail;
    }
    ck_handles_init(ck);
    *ret_ck = ck;
    return 0;

fail:
    ck_free(ck);
    return r;
}

/* ---- the API ---- */

bool sl_ckpt_get(const struct sl_ckpt *ck, const char *part_id, struct sl_ckpt_entry *ret_e)
{
    struct ckpt_row row;
    if (!ckpt_table_get(ck->table, part_id, &row)) {
        return false;
    }
    ret_e->pos = row.pos;
    ret_e->meta = row.meta;
    return true;
}

static void ck_mark_dirty(struct sl_ckpt *ck)
{
    ck->gen++;
    ck_kick(ck); /* when a write is in flight or backing off, its end kicks instead */
}

int sl_ckpt_set(struct sl_ckpt *ck, const char *part_id, const char *pos, const char *meta)
{
    bool changed;
    int r = ckpt_table_put(ck->table, part_id, pos, meta, &changed);
    if (r < 0) {
        return r;
    }
    if (changed && ck->redis) {
        r = ckpt_table_put(ck->pending, part_id, pos, meta, &changed);
        changed = true;
        if (r < 0) {
            return r;
        }
    }
    if (changed) {
        ck_mark_dirty(ck);
    }
    return 0;
}

void sl_ckpt_del(struct sl_ckpt *ck, const char *part_id)
{
    if (ck->redis) {
        (void)ckpt_table_del(ck->pending, part_id);
    }
    if (ckpt_table_del(ck->table, part_id)) {
        ck_mark_dirty(ck);
    }
}

void sl_ckpt_fence(
    struct sl_ckpt *ck, const char *lease_key, const char *owner, sl_ckpt_holds_cb holds, void *arg)
{
    assert(ck->redis);
    struct ckpt_redis_fence f = {lease_key, owner, holds, arg};
    ckpt_redis_set_fence(ck->redis, lease_key ? &f : NULL);
}

int sl_ckpt_refresh(struct sl_ckpt *ck, const char *part_id, const char *row)
{
    assert(ck->redis);
    (void)ckpt_table_del(ck->pending, part_id); /* written under an earlier lease, if at all */
    if (!row) {
        /* none in Redis (never written, or a Redis restarted without persistence lost it):
         * what this process knows, if anything, stands and is written again */
        struct ckpt_row cur;
        bool changed;
        if (!ckpt_table_get(ck->table, part_id, &cur)) {
            return 0;
        }
        int r = ckpt_table_put(ck->pending, part_id, cur.pos, cur.meta, &changed);
        if (r == 0) {
            ck_mark_dirty(ck);
        }
        return r;
    }
    return ckpt_redis_parse_row(row, ck->table, part_id);
}

struct sl_redis_conn *sl_ckpt_redis_conn(struct sl_ckpt *ck)
{
    return ck->redis ? ckpt_redis_conn(ck->redis) : NULL;
}

int sl_ckpt_redis_command_sync(struct sl_ckpt *ck,
                               int argc,
                               const char **argv,
                               const size_t *argvlen)
{
    return ck->redis ? ckpt_redis_command_sync(ck->redis, argc, argv, argvlen) : SL_EIO;
}

unsigned long sl_ckpt_fenced_writes(const struct sl_ckpt *ck)
{
    return ck->redis ? ckpt_redis_fenced_writes(ck->redis) : 0;
}

bool sl_ckpt_is_clean(const struct sl_ckpt *ck)
{
    return !ck_busy(ck) && ck->gen == ck->durable_gen;
}

/* About waiting: a pool write in flight is waited for on a condition variable, not by running
 * the loop, so this is safe to call from inside any loop callback (uv_run is not reentrant).
 * Its after_work callback still runs later on the loop and then only releases the request. */
/* Redis: the rows not known to be written (pending and in flight), on a connection of its own
 * (the loop's cannot be waited for here). */
static int ck_redis_flush_sync(struct sl_ckpt *ck)
{
    uint64_t gen = ck->gen;
    int r = ck->inflight ? ck_merge(ck->pending, ck->inflight, true) : 0;
    const struct ckpt_row *rows;
    size_t n = 0;
    if (r == 0) {
        r = ckpt_table_sorted(ck->pending, &rows, &n);
    }
    if (r == 0 && n > 0) {
        r = ckpt_redis_write_sync(ck->redis, rows, n);
    }
    if (r == 0) {
        struct ckpt_table *fresh = ckpt_table_new();
        if (fresh) {
            ckpt_table_free(ck->pending);
            ck->pending = fresh;
        }
    }
    ck_finish(ck, gen, r, (struct ckpt_file_result){r < 0 ? "redis" : NULL, 0});
    if (r == 0) {
        (void)uv_check_stop(&ck->check);
        (void)uv_idle_stop(&ck->idle);
    }
    return r;
}

int sl_ckpt_flush_sync(struct sl_ckpt *ck)
{
    assert(!ck->closing);
    if (ck->redis) {
        return ck->gen == ck->durable_gen ? 0 : ck_redis_flush_sync(ck);
    }
    if (ck->in_flight && !ck->work_consumed) {
        uv_mutex_lock(&ck->mu);
        while (!ck->work_done) {
            uv_cond_wait(&ck->cond, &ck->mu);
        }
        struct ckpt_file_result res = ck->work_res;
        uv_mutex_unlock(&ck->mu);
        ck->work_consumed = true;
        ck_finish(ck, ck->inflight_gen, 0, res);
    }
    if (ck->gen == ck->durable_gen) {
        return 0;
    }
    uint64_t gen = ck->gen;
    int r = ckpt_json_encode(ck->table, ck->id, &ck->snap);
    if (r < 0) {
        ck_finish(ck, gen, r, (struct ckpt_file_result){NULL, 0});
        return r;
    }
    struct ckpt_file_result res =
        ckpt_file_write(ck->fops, ck->dir, ck->path, ck->tmp, ck->snap.data, ck->snap.len);
    ck_finish(ck, gen, 0, res);
    if (res.step) {
        return SL_EIO;
    }
    (void)uv_check_stop(&ck->check);
    (void)uv_idle_stop(&ck->idle);
    return 0;
}

unsigned long sl_ckpt_writes(const struct sl_ckpt *ck)
{
    return ck->writes;
}

int sl_ckpt_last_error(const struct sl_ckpt *ck)
{
    return ck->last_error;
}

static void ck_close_cb(uv_handle_t *h)
{
    struct sl_ckpt *ck = h->data;
    if (--ck->handles_open == 0 && !ck->in_flight) {
        ck_free(ck);
    }
}

void sl_ckpt_close(struct sl_ckpt *ck)
{
    if (!ck) {
        return;
    }
    assert(!ck->closing);
    ck->closing = true;
    if (ck->gen != ck->durable_gen && !(ck_busy(ck) && ck->inflight_gen == ck->gen)) {
        sl_log_warn(CK_COMP, ck->id, "%s: closing with checkpoint updates not written", ck->path);
    }
    (void)uv_check_stop(&ck->check);
    (void)uv_idle_stop(&ck->idle);
    (void)uv_timer_stop(&ck->timer);
    ckpt_redis_free(ck->redis); /* a write in flight ends here, its rows not known written */
    ck->redis = NULL;
    uv_close((uv_handle_t *)&ck->check, ck_close_cb);
    uv_close((uv_handle_t *)&ck->idle, ck_close_cb);
    uv_close((uv_handle_t *)&ck->timer, ck_close_cb);
}

uint64_t sl_ckpt_generation(const struct sl_ckpt *ck)
{
    return ck->gen;
}

uint64_t sl_ckpt_durable_generation(const struct sl_ckpt *ck)
{
    return ck->durable_gen;
}

void sl_ckpt_set_default_fileops(const struct sl_ckpt_fileops *ops)
{
    ck_default_fileops = ops;
}

void sl_ckpt_set_fileops(struct sl_ckpt *ck, const struct sl_ckpt_fileops *ops)
{
    assert(!ck->in_flight);
    ck->fops = ops ? ops : &ckpt_file_sys_ops;
}

void sl_ckpt_on_durable(struct sl_ckpt *ck, sl_ckpt_durable_cb cb, void *arg)
{
    ck->durable_cb = cb;
    ck->durable_arg = arg;
}
