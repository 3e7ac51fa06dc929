/* SPDX-License-Identifier: Apache-2.0 */
/* test_engine.c: the engine (mapping, lanes, progress, checkpoint store) driven through its
 * public API only: a mapping built from JSON text by the config loader, a fake stream source
 * (fake_stream.c) the test feeds, a test function whose answers follow a script, the injected
 * clock, and the checkpoint store's file operations recorded. One test per delivery rule of
 * DESIGN.md and per invoker behaviour, each named after it.
 *
 * Two oracles run in every test. At every ack the fake source reports, and in every checkpoint
 * the store writes, every record of the partition up to it must be done (answered as delivered
 * by the function, filtered out, or one the test allowed to be given up): rule 1 and the
 * low-watermark of rule 2. At every invocation,
 * no record may be sent while an earlier record of its partition and key is neither done nor
 * in the same event, and a partition key never has two batches in flight: the order of rule 2.
 *
 * The loop, the clock, the mapping and the test function's answers are the harness's
 * (engine_harness.h). Time: eng_advance() moves the fake clock and fires every armed timer;
 * nothing sleeps. Retry backoffs are set long (6 s to 60 s, SLUICE_RETRY_*) so that no real
 * timer can fire while a test runs; only eng_advance fires them.
 *
 * Deliberate bugs put into the engine (by hand, never committed) and the tests that caught
 * them (each run of test_engine failed; every other test passed):
 *   (a) the checkpoint jumps to the highest done record instead of the low-watermark
 *       (progress.c, sl_progress_part_advance: last = the highest SL_REC_DONE record, even
 *       when the first record is not done): rule2_low_watermark_parallel_retry,
 *       rule2_low_watermark_filtered_after_retry (one lane: record 0 retried, the records
 *       after it filtered out), rule2_low_watermark_parallel_gap,
 *       rule2_low_watermark_filtered_gap and rule2_order_per_key_parallel. Its milder form, the
 *       position taken from the highest done record only when the first one is done (the ack
 *       still at the low-watermark): rule2_low_watermark_parallel_gap and
 *       rule2_low_watermark_filtered_gap (also through the checkpoint oracle).
 *   (b) the checkpoint written without its fsync (checkpoint.c, ck_write_file: the
 *       fsync(fd) removed): ckpt_write_order.
 *   (c) no 6 MB split, the whole batch sent (batcher.c, sl_batcher_encode: the max_bytes
 *       check removed): payload_split_6mb.
 *   (d) no atomic rename, the store written in place (ck_write_file: the store's own path
 *       opened, no rename): ckpt_write_order, ckpt_crash_before_rename_keeps_old (the torn
 *       file no longer parses).
 *   (e) ack before the function answered (lane.c, lane_invoke: the source acknowledged up to
 *       the batch's last record before invoking): all 22, through the ack oracle;
 *       rule1_never_acked_before_done also by its own assertion.
 *   (f) a failed record's later records delivered before it in the same key (mapping.c,
 *       part_take_new: records spread over lanes by their index, not their key):
 *       rule2_order_per_key_parallel (record 6 of key a sent while record 1 was not done),
 *       rule2_low_watermark_parallel_retry and rule2_low_watermark_parallel_gap.
 * Also: (g) fetching past the mapping's memory bound (mapping.c, the mapping's totals left out
 * of the fetch budget): rule4_memory_bound_records and rule4_memory_bound_bytes; (h) the
 * batching window ignored (batcher.c: due at once): rule5_batching_window_bounded; (i) a
 * partial response resuming after the failed records instead of at the lowest (lane.c: the
 * records after a failed one counted done): partial_response_resumes_at_lowest and
 * partial_response_aws_rules; (j) records given up marked done before their on-failure write
 * (lane.c, lane_give_up): rule1_on_failure_written_before_checkpoint; (k) a drain that
 * still starts batches (lane.c: draining ignored): rule5_drain_ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "batcher.h"
#include "checkpoint.h"
#include "clock.h"
#include "config.h"
#include "engine_harness.h"
#include "fake_stream.h"
#include "function.h"
#include "helpers.h"
#include "log.h"
#include "mapping.h"
#include "opt.h"

#define ENG_ROUNDS      200     /* clock advances one drive may take */
#define ENG_RETRY_BASE  "60000" /* SLUICE_RETRY_BASE_MS: backoffs from 6 s (base / 10) .. */
#define ENG_RETRY_CAP   60000   /* SLUICE_RETRY_MAX_MS: .. to 60 s */
#define ENG_RETRY_FLOOR 6000
#define ENG_MAX_SEQ     256
#define ENG_UUID        "engine-test"
#define ENG_SIZE_ALL    SIZE_MAX

/* --- the checkpoint store's file operations, recorded (they run on a pool thread) --- */

enum fop_kind { FOP_OPEN, FOP_WRITE, FOP_FSYNC, FOP_CLOSE, FOP_RENAME };
enum fop_crash { FOP_CRASH_NONE, FOP_CRASH_MID_WRITE, FOP_CRASH_AT_RENAME };

struct fop {
    enum fop_kind kind;
    int fd;
    char path[512]; /* open: the path; rename: from */
    char to[512];   /* rename: to */
};

static pthread_mutex_t fop_mu = PTHREAD_MUTEX_INITIALIZER;
/* Told every snapshot the store writes (on the pool thread): the checkpoint oracle. */
static void (*fop_on_data)(const char *data, size_t len);
static struct fop fop_log[1024];
static size_t fop_n;
static enum fop_crash fop_crash;

static void fop_add(enum fop_kind kind, int fd, const char *path, const char *to)
{
    pthread_mutex_lock(&fop_mu);
    if (fop_n < sizeof(fop_log) / sizeof(fop_log[0])) {
        struct fop *f = &fop_log[fop_n++];
        f->kind = kind;
        f->fd = fd;
        (void)snprintf(f->path, sizeof(f->path), "%s", path ? path : "");
        (void)snprintf(f->to, sizeof(f->to), "%s", to ? to : "");
    }
    pthread_mutex_unlock(&fop_mu);
}

static enum fop_crash fop_crash_mode(void)
{
    pthread_mutex_lock(&fop_mu);
    enum fop_crash c = fop_crash;
    pthread_mutex_unlock(&fop_mu);
    return c;
}

static void fop_reset(enum fop_crash crash)
{
    pthread_mutex_lock(&fop_mu);
    fop_n = 0;
    fop_crash = crash;
    pthread_mutex_unlock(&fop_mu);
}

static int fop_open(const char *path, int flags, mode_t mode)
{
    int fd = open(path, flags, mode);
    fop_add(FOP_OPEN, fd, path, NULL);
    return fd;
}

/* A crash in the middle of the write: half the bytes land, then the machine is gone. */
static ssize_t fop_write(int fd, const void *buf, size_t len)
{
    fop_add(FOP_WRITE, fd, NULL, NULL);
    if (fop_on_data) {
        fop_on_data(buf, len);
    }
    if (fop_crash_mode() == FOP_CRASH_MID_WRITE) {
        (void)write(fd, buf, len / 2);
        errno = EIO;
        return -1;
    }
    return write(fd, buf, len);
}

static int fop_fsync(int fd)
{
    fop_add(FOP_FSYNC, fd, NULL, NULL);
    return fsync(fd);
}

static int fop_close(int fd)
{
    fop_add(FOP_CLOSE, fd, NULL, NULL);
    return close(fd);
}

static int fop_rename(const char *from, const char *to)
{
    fop_add(FOP_RENAME, -1, from, to);
    if (fop_crash_mode() == FOP_CRASH_AT_RENAME) {
        errno = EIO;
        return -1;
    }
    return rename(from, to);
}

static const struct sl_ckpt_fileops fop_ops = {
    .open = fop_open,
    .write = fop_write,
    .fsync = fop_fsync,
    .close = fop_close,
    .rename = fop_rename,
};

/* --- the fixture: loop, clock, fake source, test function, mapping --- */

struct eng;

/* What the function answers to one invocation (the harness's reply, and what it delivers). */
struct reply {
    enum sl_outcome outcome;
    const char *body;    /* response body, or NULL */
    int64_t retry_after; /* ms, or -1 */
    size_t ok_prefix;    /* records of the call the answer delivers (oracle): ENG_SIZE_ALL */
    bool hold;           /* not answered until the test calls eng_answer */
};

typedef void (*eng_script)(struct eng *e, size_t call, struct reply *ret);

struct rec_ref {
    size_t part;
    uint64_t seq;
    char key[16];
};

/* What the test reads of one invocation (e->h.calls[i] has its answer's state). */
struct call {
    struct rec_ref *recs;
    size_t n;
    size_t len; /* event bytes */
    int64_t at_ms;
    size_t ok_prefix; /* records the answer delivers (oracle) */
};

struct eng {
    struct eh h; /* loop, clock, directory, mapping, the function's answers */
    char store_path[700];
    struct fake_stream fs;
    struct call *calls; /* parallel to h.calls */
    size_t cap_calls;
    eng_script script;
    /* the oracle: records done (delivered, filtered) and records the test lets be given up */
    bool done[FAKE_STREAM_MAX_PARTS][ENG_MAX_SEQ];
    bool may_drop[FAKE_STREAM_MAX_PARTS][ENG_MAX_SEQ];
    size_t early_acks;
    size_t early_ckpts;
    size_t order_violations;
    char violation[256];
};

/* Guards the oracle's records (done, violations) that the pool thread reads; eng_violation and
 * the *_locked functions are called with it held. */
static pthread_mutex_t eng_mu = PTHREAD_MUTEX_INITIALIZER;

static void eng_violation(struct eng *e, size_t *counter, const char *fmt, ...) SL_PRINTF(3, 4);

static void eng_violation(struct eng *e, size_t *counter, const char *fmt, ...)
{
    if ((*counter)++ == 0 && e->violation[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(e->violation, sizeof(e->violation), fmt, ap);
        va_end(ap);
    }
}

static size_t eng_part_index(struct eng *e, const char *id)
{
    for (size_t p = 0; p < e->fs.n_parts; p++) {
        if (strcmp(e->fs.parts[p].id, id) == 0) {
            return p;
        }
    }
    fail_msg("event names unknown partition %s", id);
    return 0;
}

/* Rule 1 and the low-watermark: at an ack, every record up to it is done. */
static void eng_on_ack_locked(void *arg, size_t part, uint64_t pos)
{
    struct eng *e = arg;
    for (uint64_t s = 0; s <= pos && s < ENG_MAX_SEQ; s++) {
        if (!e->done[part][s] && !e->may_drop[part][s]) {
            eng_violation(e, &e->early_acks,
                          "%s acknowledged up to %" PRIu64 " while record %" PRIu64 " was not done",
                          e->fs.parts[part].id, pos, s);
            return;
        }
    }
}

/* The same for what the store writes: every record before a partition's stored position is
 * done. Runs on the pool thread, under eng_mu (done only grows, so a record not done now was
 * not done when the position was recorded). */
static struct eng *eng_current;

static void eng_on_ckpt_data(const char *data, size_t len)
{
    cJSON *doc = cJSON_ParseWithLength(data, len);
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(doc, "partitions");
    pthread_mutex_lock(&eng_mu);
    struct eng *e = eng_current;
    const cJSON *p;
    cJSON_ArrayForEach(p, parts)
    {
        const cJSON *pos = cJSON_GetObjectItemCaseSensitive(p, "pos");
        for (size_t i = 0; e && cJSON_IsString(pos) && i < e->fs.n_parts; i++) {
            if (strcmp(e->fs.parts[i].id, p->string) != 0) {
                continue;
            }
            uint64_t upto = strtoull(pos->valuestring, NULL, 10);
            for (uint64_t s = 0; s < upto && s < ENG_MAX_SEQ; s++) {
                if (!e->done[i][s] && !e->may_drop[i][s]) {
                    eng_violation(e, &e->early_ckpts,
                                  "%s checkpointed at %" PRIu64 " while record %" PRIu64
                                  " was not done",
                                  p->string, upto, s);
                    break;
                }
            }
        }
    }
    pthread_mutex_unlock(&eng_mu);
    cJSON_Delete(doc);
}

static bool eng_same_group(const struct rec_ref *a, const struct rec_ref *b)
{
    return a->part == b->part && strcmp(a->key, b->key) == 0;
}

/* Rule 2's order: checked at every invocation. */
static void eng_check_order_locked(struct eng *e, const struct call *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct rec_ref *r = &c->recs[i];
        const struct fake_part *fp = &e->fs.parts[r->part];
        for (uint64_t s = 0; s < r->seq && s < fp->n_recs; s++) {
            if (strcmp(fp->recs[s].key, r->key) != 0 || e->done[r->part][s] ||
                e->may_drop[r->part][s]) {
                continue;
            }
            bool in_call = false;
            for (size_t j = 0; j < i; j++) {
                in_call = in_call || (c->recs[j].part == r->part && c->recs[j].seq == s);
            }
            if (!in_call) {
                eng_violation(e, &e->order_violations,
                              "record %" PRIu64 " of %s (key %s) sent before record %" PRIu64
                              " was done",
                              r->seq, fp->id, r->key, s);
            }
        }
        for (size_t j = 0; j < i; j++) {
            if (eng_same_group(&c->recs[j], r) && c->recs[j].seq >= r->seq) {
                eng_violation(e, &e->order_violations, "records of %s out of order in an event",
                              fp->id);
            }
        }
        /* one batch in flight per partition key */
        for (size_t k = 0; k + 1 < e->h.n_calls; k++) {
            const struct call *o = &e->calls[k];
            for (size_t j = 0; !e->h.calls[k].answered && j < o->n; j++) {
                if (eng_same_group(&o->recs[j], r)) {
                    eng_violation(e, &e->order_violations,
                                  "two batches of %s key %s in flight at once", fp->id, r->key);
                    k = e->h.n_calls;
                    break;
                }
            }
        }
    }
}

static void eng_on_ack(void *arg, size_t part, uint64_t pos)
{
    pthread_mutex_lock(&eng_mu);
    eng_on_ack_locked(arg, part, pos);
    pthread_mutex_unlock(&eng_mu);
}

static void eng_check_order(struct eng *e, const struct call *c)
{
    pthread_mutex_lock(&eng_mu);
    eng_check_order_locked(e, c);
    pthread_mutex_unlock(&eng_mu);
}

/* The harness is about to answer call idx: the records it delivers are done (the oracle). */
static void eng_answering(void *arg, size_t idx)
{
    struct eng *e = arg;
    const struct call *c = &e->calls[idx];
    const struct eh_reply *rep = &e->h.calls[idx].reply;
    size_t ok = rep->outcome == SL_OUTCOME_SUCCESS ? c->ok_prefix : 0;
    pthread_mutex_lock(&eng_mu);
    for (size_t i = 0; i < c->n && i < ok; i++) {
        e->done[c->recs[i].part][c->recs[i].seq] = true;
    }
    pthread_mutex_unlock(&eng_mu);
}

/* Answers a held invocation (on the next loop turn, as a real function would); the answer
 * delivers all its records. */
static void eng_answer(struct eng *e, size_t idx, enum sl_outcome outcome, const char *body)
{
    e->calls[idx].ok_prefix = ENG_SIZE_ALL;
    eh_answer(&e->h, idx, outcome, body);
}

/* The function got call idx: its records are read (part, seq, key), the order is checked, and
 * the script says the answer. */
static void eng_invoked(void *arg, size_t idx, const cJSON *doc, struct eh_reply *ehrep)
{
    struct eng *e = arg;
    if (idx >= e->cap_calls) {
        e->cap_calls = e->cap_calls ? e->cap_calls * 2 : 32;
        e->calls = realloc(e->calls, e->cap_calls * sizeof(*e->calls));
        assert_non_null(e->calls);
    }
    struct call *c = &e->calls[idx];
    memset(c, 0, sizeof(*c));
    c->len = e->h.calls[idx].len;
    c->at_ms = e->h.calls[idx].at_ms;
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(doc, "Records");
    size_t n = (size_t)cJSON_GetArraySize(recs);
    c->recs = calloc(n ? n : 1, sizeof(*c->recs));
    assert_non_null(c->recs);
    const cJSON *r;
    cJSON_ArrayForEach(r, recs)
    {
        struct rec_ref *ref = &c->recs[c->n++];
        ref->part = eng_part_index(e, cJSON_GetObjectItemCaseSensitive(r, "part")->valuestring);
        ref->seq = (uint64_t)cJSON_GetObjectItemCaseSensitive(r, "seq")->valuedouble;
        (void)snprintf(ref->key, sizeof(ref->key), "%s",
                       cJSON_GetObjectItemCaseSensitive(r, "key")->valuestring);
        assert_true(ref->seq < ENG_MAX_SEQ);
    }
    eng_check_order(e, c);
    struct reply rep = {ehrep->outcome, ehrep->body, ehrep->retry_after, ENG_SIZE_ALL, ehrep->hold};
    if (e->script) {
        e->script(e, idx, &rep);
    }
    c->ok_prefix = rep.ok_prefix;
    *ehrep = (struct eh_reply){rep.outcome, rep.body, rep.retry_after, rep.hold};
}

/* --- driving the loop --- */

static void eng_settle(struct eng *e)
{
    eh_settle(&e->h);
}

static void eng_advance(struct eng *e, int64_t ms)
{
    eh_advance(&e->h, ms);
}

static size_t eng_unanswered(const struct eng *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->h.n_calls; i++) {
        n += e->h.calls[i].held || e->h.calls[i].queued;
    }
    return n;
}

/* Nothing in flight but the invocations the test holds: no destination write on the pool. */
static bool eng_no_io(void *arg)
{
    struct eng *e = arg;
    return !e->h.m || (size_t)sl_mapping_in_flight(e->h.m) <= eng_unanswered(e);
}

/* Runs and lets time pass (a retry backoff's worth at a time) until cond holds. An on-failure
 * write in flight (on the thread pool) is waited for under a real-time deadline. */
static bool eng_drive(struct eng *e, bool (*cond)(struct eng *e))
{
    for (int round = 0; round < ENG_ROUNDS; round++) {
        eng_settle(e);
        if (!eng_no_io(e)) {
            (void)eh_until(&e->h, eng_no_io, e);
            eng_settle(e);
        }
        if (cond(e)) {
            return true;
        }
        eng_advance(e, ENG_RETRY_CAP);
    }
    return cond(e);
}

static bool eng_all_acked(struct eng *e)
{
    for (size_t p = 0; p < e->fs.n_parts; p++) {
        if (fake_stream_acked(&e->fs, p) < e->fs.parts[p].n_recs) {
            return false;
        }
    }
    return true;
}

/* --- mappings from JSON text --- */

static void eng_open(struct eng *e, const char *extra)
{
    eh_open(&e->h,
            "\"UUID\":\"" ENG_UUID "\",\"EventSourceArn\":\"fake://stream\",\"FunctionName\":"
            "\"f\",\"StartingPosition\":\"TRIM_HORIZON\",\"max_unsaved_batches\":1000",
            extra);
    (void)snprintf(e->store_path, sizeof(e->store_path), "%s/state/" ENG_UUID ".json", e->h.dir);
    eng_settle(e);
}

/* Ends the mapping as a drain does, then frees it; without flush, what the store had not
 * written yet is lost (as in a crash). */
static void eng_close(struct eng *e, bool flush)
{
    eh_close(&e->h, flush);
    assert_int_equal(e->fs.calls_after_stop, 0);
}

/* The position the store file holds for part, or "" when none ("?" when the file does not
 * parse: a torn write). */
static void eng_stored(struct eng *e, const char *part, char *buf, size_t len)
{
    buf[0] = '\0';
    FILE *f = fopen(e->store_path, "r");
    if (!f) {
        return;
    }
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *doc = cJSON_Parse(text);
    if (!doc) {
        (void)snprintf(buf, len, "?");
        return;
    }
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(doc, "partitions");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(parts, part);
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(p, "pos");
    if (cJSON_IsString(pos)) {
        (void)snprintf(buf, len, "%s", pos->valuestring);
    }
    cJSON_Delete(doc);
}

static void eng_assert_stored(struct eng *e, const char *part, const char *want)
{
    assert_int_equal(sl_mapping_flush(e->h.m), 0);
    char got[64];
    eng_stored(e, part, got, sizeof(got));
    assert_string_equal(got, want);
}

static void eng_push_n(struct eng *e, size_t p, const char *key, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char data[32];
        (void)snprintf(data, sizeof(data), "{\"i\":%zu}", i);
        fake_stream_push_str(&e->fs, p, key, data);
    }
}

static bool call_has(const struct call *c, size_t part, uint64_t seq)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->recs[i].part == part && c->recs[i].seq == seq) {
            return true;
        }
    }
    return false;
}

/* The lane ParallelizationFactor puts a key in: the mapping's FNV-1a of the key, modulo the
 * factor. Used only to choose keys that land in different lanes. */
static size_t eng_lane_of(const char *key, size_t lanes)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const char *k = key; *k; k++) {
        h ^= (unsigned char)*k;
        h *= 0x100000001b3ULL;
    }
    return (size_t)(h % lanes);
}

static int eng_setup(void **state)
{
    struct eng *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    eh_init(&e->h, &(struct eh_hooks){eng_invoked, eng_answering, e});
    fake_stream_init(&e->fs);
    e->fs.on_ack = eng_on_ack;
    e->fs.on_ack_arg = e;
    fop_reset(FOP_CRASH_NONE);
    sl_ckpt_set_default_fileops(&fop_ops);
    pthread_mutex_lock(&eng_mu);
    eng_current = e;
    pthread_mutex_unlock(&eng_mu);
    fop_on_data = eng_on_ckpt_data;
    *state = e;
    return 0;
}

static int eng_teardown(void **state)
{
    struct eng *e = *state;
    fop_reset(FOP_CRASH_NONE);
    eng_close(e, true);
    size_t n_calls = e->h.n_calls;
    eh_fini(&e->h);
    sl_ckpt_set_default_fileops(NULL);
    fop_on_data = NULL;
    pthread_mutex_lock(&eng_mu);
    eng_current = NULL;
    pthread_mutex_unlock(&eng_mu);
    fake_stream_fini(&e->fs);
    for (size_t i = 0; i < n_calls; i++) {
        free(e->calls[i].recs);
    }
    free(e->calls);
    size_t early = e->early_acks + e->early_ckpts;
    size_t order = e->order_violations;
    char why[sizeof(e->violation)];
    (void)snprintf(why, sizeof(why), "%s", e->violation);
    free(e);
    if (early || order) {
        fail_msg("%s", why);
    }
    return 0;
}

/* --- rule 1: a position is acknowledged only after every record up to it is done --- */

static bool two_calls(struct eng *e)
{
    return e->h.n_calls >= 2;
}

static void test_engine_rule1_never_acked_before_done(void **state)
{
    struct eng *e = *state;
    e->fs.async = true; /* fetches complete when the test says */
    size_t p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 3);
    e->h.hold_all = true;
    eng_open(e, "\"BatchSize\":3");
    assert_int_equal(e->h.n_calls, 0);
    assert_int_equal(fake_stream_complete(&e->fs), 1);
    eng_settle(e);
    assert_int_equal(e->h.n_calls, 1);
    assert_int_equal(e->calls[0].n, 3);
    /* in flight: nothing acknowledged, nothing checkpointed */
    eng_advance(e, ENG_RETRY_CAP);
    assert_int_equal(e->fs.n_acks, 0);
    eng_assert_stored(e, "p0", "");
    /* a failed answer is not done either */
    eng_answer(e, 0, SL_OUTCOME_FUNCTION_ERROR, NULL);
    eng_settle(e);
    assert_int_equal(e->fs.n_acks, 0);
    eng_assert_stored(e, "p0", "");
    assert_true(eng_drive(e, two_calls));
    assert_int_equal(e->fs.n_acks, 0);
    eng_answer(e, 1, SL_OUTCOME_SUCCESS, NULL);
    eng_settle(e);
    assert_int_equal(e->fs.n_acks, 1);
    assert_int_equal(e->fs.acks[0].pos, 2);
    eng_assert_stored(e, "p0", "3");
}

/* Rule 1's third case: records given up are written to the on-failure destination before the
 * checkpoint passes them. At every ack, the destination must already hold every record given
 * up up to it. */
static char eng_dest_dir[700];

static size_t eng_dest_lines(void)
{
    size_t lines = 0;
    DIR *d = opendir(eng_dest_dir);
    for (struct dirent *de = d ? readdir(d) : NULL; de; de = readdir(d)) {
        char path[1000];
        (void)snprintf(path, sizeof(path), "%s/%s", eng_dest_dir, de->d_name);
        FILE *f = strstr(de->d_name, ".ndjson") ? fopen(path, "r") : NULL;
        for (int c = f ? fgetc(f) : EOF; c != EOF; c = fgetc(f)) {
            lines += c == '\n';
        }
        if (f) {
            fclose(f);
        }
    }
    if (d) {
        closedir(d);
    }
    return lines;
}

static size_t dest_acks_checked;
static size_t dest_early;

static void eng_on_ack_dest(void *arg, size_t part, uint64_t pos)
{
    eng_on_ack(arg, part, pos);
    if (pos >= 1) {
        dest_acks_checked++;
        dest_early += eng_dest_lines() < 1; /* record 1's invocation record */
    }
}

static void script_rec1_always_fails(struct eng *e, size_t call, struct reply *ret)
{
    if (call_has(&e->calls[call], 0, 1)) {
        ret->outcome = SL_OUTCOME_FUNCTION_ERROR;
    }
}

static void test_engine_rule1_on_failure_written_before_checkpoint(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 3);
    e->may_drop[p][1] = true;
    e->script = script_rec1_always_fails;
    e->fs.on_ack = eng_on_ack_dest;
    dest_acks_checked = 0;
    dest_early = 0;
    (void)snprintf(eng_dest_dir, sizeof(eng_dest_dir), "%s/failed", e->h.dir);
    char extra[1024];
    (void)snprintf(extra, sizeof(extra),
                   "\"BatchSize\":1,\"MaximumRetryAttempts\":0,\"DestinationConfig\":"
                   "{\"OnFailure\":{\"Destination\":\"file://%s\"}}",
                   eng_dest_dir);
    eng_open(e, extra);
    assert_true(eng_drive(e, eng_all_acked));
    assert_int_equal(sl_mapping_stats(e->h.m)->destination_delivered, 1);
    assert_int_equal(eng_dest_lines(), 1);
    assert_true(dest_acks_checked > 0);
    assert_int_equal(dest_early, 0);
    eng_assert_stored(e, "p0", "3");
}

/* --- rule 2: order per partition, one batch in flight per partition --- */

/* p0's first batch fails twice. */
static void script_p0_fails_twice(struct eng *e, size_t call, struct reply *ret)
{
    size_t fails = 0;
    for (size_t i = 0; i < call; i++) {
        fails += call_has(&e->calls[i], 0, 0);
    }
    if (call_has(&e->calls[call], 0, 0) && fails < 2) {
        ret->outcome = SL_OUTCOME_FUNCTION_ERROR;
    }
}

static void test_engine_rule2_order_per_partition(void **state)
{
    struct eng *e = *state;
    size_t p0 = fake_stream_add_part(&e->fs, "p0");
    size_t p1 = fake_stream_add_part(&e->fs, "p1");
    eng_push_n(e, p0, "k", 6);
    eng_push_n(e, p1, "k", 6);
    e->script = script_p0_fails_twice;
    eng_open(e, "\"BatchSize\":2");
    /* p1 is not held up by p0's failing batch */
    assert_true(fake_stream_acked(&e->fs, p1) == 6);
    assert_int_equal(fake_stream_acked(&e->fs, p0), 0);
    assert_true(eng_drive(e, eng_all_acked));
    /* p0: [0,1] failed twice, then [0,1], [2,3], [4,5] */
    size_t k = 0;
    uint64_t want[][2] = {{0, 1}, {0, 1}, {0, 1}, {2, 3}, {4, 5}};
    for (size_t i = 0; i < e->h.n_calls; i++) {
        if (e->calls[i].recs[0].part != p0) {
            continue;
        }
        assert_true(k < 5);
        assert_int_equal(e->calls[i].n, 2);
        assert_int_equal(e->calls[i].recs[0].seq, want[k][0]);
        assert_int_equal(e->calls[i].recs[1].seq, want[k][1]);
        k++;
    }
    assert_int_equal(k, 5);
    eng_assert_stored(e, "p0", "6");
    eng_assert_stored(e, "p1", "6");
}

/* --- rule 2 under ParallelizationFactor > 1: order per key, low-watermark --- */

struct key_pair {
    const char *a;
    const char *b;
};

#define ENG_KEY_A "a" /* the first key of every pair */

static struct key_pair eng_two_lanes(void)
{
    static const char *const keys[] = {ENG_KEY_A, "b", "c", "d", "e", "f", "g", "h"};
    for (size_t i = 1; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (eng_lane_of(keys[i], 2) != eng_lane_of(keys[0], 2)) {
            return (struct key_pair){keys[0], keys[i]};
        }
    }
    fail_msg("no two keys in different lanes");
    return (struct key_pair){NULL, NULL};
}

/* Any batch holding record 0 fails its first three times. */
static void script_rec0_fails_3(struct eng *e, size_t call, struct reply *ret)
{
    size_t fails = 0;
    for (size_t i = 0; i < call; i++) {
        fails += call_has(&e->calls[i], 0, 0);
    }
    if (call_has(&e->calls[call], 0, 0) && fails < 3) {
        ret->outcome = SL_OUTCOME_FUNCTION_ERROR;
    }
}

/* Every record of partition 0 whose key is not ENG_KEY_A is done. */
static bool key_b_done(struct eng *e)
{
    for (size_t s = 0; s < e->fs.parts[0].n_recs; s++) {
        if (strcmp(e->fs.parts[0].recs[s].key, ENG_KEY_A) != 0 && !e->done[0][s]) {
            return false;
        }
    }
    return true;
}

/* Records 0 (key A) retrying; A's later records wait for it, B's go on in their own lane. The
 * records of A are not in index parity, so a lane choice by index rather than key shows. */
static void test_engine_rule2_order_per_key_parallel(void **state)
{
    struct eng *e = *state;
    struct key_pair k = eng_two_lanes();
    size_t p = fake_stream_add_part(&e->fs, "p0");
    const char *layout[] = {k.a, k.a, k.b, k.a, k.b, k.b, k.a, k.b};
    for (size_t i = 0; i < 8; i++) {
        fake_stream_push_str(&e->fs, p, layout[i], "{}");
    }
    e->script = script_rec0_fails_3;
    eng_open(e, "\"BatchSize\":10,\"ParallelizationFactor\":2");
    /* B's records are delivered while A's first batch still fails */
    eng_settle(e);
    assert_true(key_b_done(e));
    for (size_t s = 0; s < 8; s++) {
        if (strcmp(layout[s], k.a) == 0) {
            assert_false(e->done[p][s]);
        }
    }
    assert_int_equal(e->fs.n_acks, 0); /* record 0 holds the checkpoint back */
    assert_true(eng_drive(e, eng_all_acked));
    eng_assert_stored(e, "p0", "8");
}

static void test_engine_rule2_low_watermark_parallel_retry(void **state)
{
    struct eng *e = *state;
    struct key_pair k = eng_two_lanes();
    size_t p = fake_stream_add_part(&e->fs, "p0");
    fake_stream_push_str(&e->fs, p, k.a, "{}");
    for (size_t i = 1; i < 6; i++) {
        fake_stream_push_str(&e->fs, p, k.b, "{}");
    }
    e->script = script_rec0_fails_3;
    eng_open(e, "\"BatchSize\":2,\"ParallelizationFactor\":2");
    /* records 1..5 are done, record 0 is backing off after its first failure */
    eng_settle(e);
    for (size_t s = 1; s < 6; s++) {
        assert_true(e->done[p][s]);
    }
    assert_false(e->done[p][0]);
    assert_int_equal(e->fs.n_acks, 0);
    eng_assert_stored(e, "p0", "");
    /* a second failure changes nothing */
    eng_advance(e, ENG_RETRY_CAP);
    assert_false(e->done[p][0]);
    assert_int_equal(e->fs.n_acks, 0);
    eng_assert_stored(e, "p0", "");
    assert_true(eng_drive(e, eng_all_acked));
    assert_int_equal(e->fs.acks[0].pos, 5); /* the first ack covers everything at once */
    eng_assert_stored(e, "p0", "6");
}

/* One lane: record 0 is retried while the records after it are filtered out at fetch time. */
static void test_engine_rule2_low_watermark_filtered_after_retry(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    fake_stream_push_str(&e->fs, p, "k", "{\"keep\":true}");
    for (size_t i = 1; i < 5; i++) {
        fake_stream_push_str(&e->fs, p, "k", "{\"keep\":false}");
        e->done[p][i] = true; /* filtered out: done once fetched */
    }
    e->script = script_rec0_fails_3;
    eng_open(e, "\"BatchSize\":10,\"FilterCriteria\":{\"Filters\":[{\"Pattern\":"
                "\"{\\\"data\\\":{\\\"keep\\\":[true]}}\"}]}");
    eng_settle(e);
    assert_int_equal(e->h.n_calls, 1);
    assert_int_equal(e->calls[0].n, 1);
    assert_int_equal(sl_mapping_stats(e->h.m)->filtered, 4);
    assert_int_equal(e->fs.n_acks, 0);
    eng_assert_stored(e, "p0", "");
    eng_advance(e, ENG_RETRY_CAP);
    assert_int_equal(e->h.n_calls, 2);
    assert_int_equal(e->fs.n_acks, 0);
    eng_assert_stored(e, "p0", "");
    assert_true(eng_drive(e, eng_all_acked));
    eng_assert_stored(e, "p0", "5");
}

/* Any batch holding record 1 fails its first three times. */
static void script_rec1_fails_3(struct eng *e, size_t call, struct reply *ret)
{
    size_t fails = 0;
    for (size_t i = 0; i < call; i++) {
        fails += call_has(&e->calls[i], 0, 1);
    }
    if (call_has(&e->calls[call], 0, 1) && fails < 3) {
        ret->outcome = SL_OUTCOME_FUNCTION_ERROR;
    }
}

/* The gap in the middle: record 0 done, record 1 retrying in its lane, records 2 and 3 done in
 * the other: the checkpoint stops after record 0. */
static void test_engine_rule2_low_watermark_parallel_gap(void **state)
{
    struct eng *e = *state;
    struct key_pair k = eng_two_lanes();
    size_t p = fake_stream_add_part(&e->fs, "p0");
    const char *layout[] = {k.a, k.b, k.a, k.a};
    for (size_t i = 0; i < 4; i++) {
        fake_stream_push_str(&e->fs, p, layout[i], "{}");
    }
    e->script = script_rec1_fails_3;
    eng_open(e, "\"BatchSize\":10,\"ParallelizationFactor\":2");
    assert_true(e->done[p][0] && e->done[p][2] && e->done[p][3]);
    assert_false(e->done[p][1]);
    assert_int_equal(fake_stream_acked(&e->fs, p), 1);
    eng_assert_stored(e, "p0", "1");
    assert_true(eng_drive(e, eng_all_acked));
    eng_assert_stored(e, "p0", "4");
}

/* Record 1 is reported failed (a partial batch response) by the first three calls holding it. */
static void script_rec1_partial_3(struct eng *e, size_t call, struct reply *ret)
{
    size_t fails = 0;
    for (size_t i = 0; i < call; i++) {
        fails += call_has(&e->calls[i], 0, 1);
    }
    if (call_has(&e->calls[call], 0, 1) && fails < 3) {
        ret->body = "{\"batchItemFailures\":[{\"itemIdentifier\":\"1\"}]}";
        ret->ok_prefix = e->calls[call].recs[0].seq == 0 ? 1 : 0;
    }
}

/* One lane, the gap in the middle: record 0 delivered, record 1 reported failed and retried,
 * the records after it filtered out. */
static void test_engine_rule2_low_watermark_filtered_gap(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    fake_stream_push_str(&e->fs, p, "k", "{\"keep\":true}");
    fake_stream_push_str(&e->fs, p, "k", "{\"keep\":true}");
    for (size_t i = 2; i < 5; i++) {
        fake_stream_push_str(&e->fs, p, "k", "{\"keep\":false}");
        e->done[p][i] = true; /* filtered out: done once fetched */
    }
    e->script = script_rec1_partial_3;
    eng_open(e, "\"BatchSize\":10,\"FunctionResponseTypes\":[\"ReportBatchItemFailures\"],"
                "\"FilterCriteria\":{\"Filters\":[{\"Pattern\":"
                "\"{\\\"data\\\":{\\\"keep\\\":[true]}}\"}]}");
    assert_true(e->done[p][0]);
    assert_false(e->done[p][1]);
    assert_int_equal(fake_stream_acked(&e->fs, p), 1);
    eng_assert_stored(e, "p0", "1");
    assert_true(eng_drive(e, eng_all_acked));
    eng_assert_stored(e, "p0", "5");
}

/* --- rule 3: a crash may repeat the batches in flight; it never skips one --- */

static void test_engine_rule3_crash_repeats_never_skips(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 10);
    e->h.hold_all = true;
    eng_open(e, "\"BatchSize\":2");
    eng_answer(e, 0, SL_OUTCOME_SUCCESS, NULL);
    eng_settle(e);
    eng_answer(e, 1, SL_OUTCOME_SUCCESS, NULL);
    eng_settle(e);
    assert_int_equal(e->h.n_calls, 3); /* [4,5] in flight when the process dies */
    assert_int_equal(fake_stream_acked(&e->fs, p), 4);
    eng_close(e, false);
    /* the next run: the same records, the store as the crash left it */
    fake_stream_fini(&e->fs);
    fake_stream_init(&e->fs);
    e->fs.on_ack = eng_on_ack;
    e->fs.on_ack_arg = e;
    p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 10);
    size_t first = e->h.n_calls;
    e->h.hold_all = false;
    eng_open(e, "\"BatchSize\":2");
    assert_true(eng_drive(e, eng_all_acked));
    assert_true(e->h.n_calls > first);
    assert_true(e->calls[first].recs[0].seq <= 4); /* repeated, never skipped */
    bool seen[10] = {false};
    for (size_t i = first; i < e->h.n_calls; i++) {
        for (size_t j = 0; j < e->calls[i].n; j++) {
            seen[e->calls[i].recs[j].seq] = true;
        }
    }
    for (size_t s = 4; s < 10; s++) {
        assert_true(seen[s]);
    }
}

/* --- partitions that end: gone (finished first) and revoked (abandoned) --- */

static bool p0_released(struct eng *e)
{
    return e->fs.parts[0].released;
}

static void test_engine_part_gone_finishes_then_releases(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 3);
    e->script = script_rec0_fails_3;
    eng_open(e, "\"BatchSize\":2");
    fake_stream_gone(&e->fs, p);
    eng_settle(e);
    assert_false(e->fs.parts[p].released); /* its records are not finished yet */
    assert_true(eng_drive(e, p0_released));
    assert_int_equal(fake_stream_acked(&e->fs, p), 3);
    eng_assert_stored(e, "p0", "3");
}

static void test_engine_part_revoked_acks_nothing_more(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 4);
    e->h.hold_all = true;
    eng_open(e, "\"BatchSize\":2");
    eng_answer(e, 0, SL_OUTCOME_SUCCESS, NULL);
    eng_settle(e);
    assert_int_equal(fake_stream_acked(&e->fs, p), 2);
    assert_int_equal(e->h.n_calls, 2);
    /* taken away while [2,3] is in flight: its answer moves nothing */
    fake_stream_revoke(&e->fs, p);
    eng_settle(e);
    assert_false(e->fs.parts[p].released); /* not while a batch of it is in flight */
    eng_answer(e, 1, SL_OUTCOME_SUCCESS, NULL);
    eng_settle(e);
    assert_true(e->fs.parts[p].released);
    assert_int_equal(e->fs.n_acks, 1);
    eng_assert_stored(e, "p0", "2");
}

/* --- rule 4: memory is bounded: fetching pauses at the in-flight limit --- */

static void eng_check_fetch_budget(struct eng *e, size_t max_records, size_t max_bytes)
{
    for (size_t i = 0; i < e->fs.n_fetches; i++) {
        const struct fake_fetch *f = &e->fs.fetches[i];
        assert_true(f->held_records < max_records);
        assert_true(f->max_records <= max_records - f->held_records);
        assert_true(f->held_bytes < max_bytes);
        assert_true(f->max_bytes <= max_bytes - f->held_bytes);
    }
}

static void eng_answer_held(struct eng *e)
{
    for (size_t i = 0; i < e->h.n_calls; i++) {
        if (e->h.calls[i].held) {
            eng_answer(e, i, SL_OUTCOME_SUCCESS, NULL);
        }
    }
    eng_settle(e);
}

static void test_engine_rule4_memory_bound_records(void **state)
{
    struct eng *e = *state;
    for (int p = 0; p < 4; p++) {
        char id[8];
        (void)snprintf(id, sizeof(id), "p%d", p);
        eng_push_n(e, fake_stream_add_part(&e->fs, id), "k", 30);
    }
    e->h.hold_all = true;
    eng_open(e, "\"BatchSize\":2,\"max_records_buffered\":10");
    /* every function call held: the mapping holds its limit and asks for no more */
    assert_int_equal(e->fs.held_records, 10);
    size_t fetches = e->fs.n_fetches;
    eng_advance(e, ENG_RETRY_CAP);
    assert_int_equal(e->fs.n_fetches, fetches);
    for (int round = 0; round < 200 && !eng_all_acked(e); round++) {
        eng_answer_held(e);
        assert_true(e->fs.held_records <= 10);
    }
    assert_true(eng_all_acked(e));
    assert_true(e->fs.max_held_records <= 10);
    eng_check_fetch_budget(e, 10, 16u << 20);
}

static void test_engine_rule4_memory_bound_bytes(void **state)
{
    struct eng *e = *state;
    static char big[20000];
    memset(big, 'x', sizeof(big));
    for (int p = 0; p < 3; p++) {
        char id[8];
        (void)snprintf(id, sizeof(id), "p%d", p);
        size_t i = fake_stream_add_part(&e->fs, id);
        for (int r = 0; r < 12; r++) {
            fake_stream_push(&e->fs, i, "k", big, sizeof(big));
        }
    }
    e->h.hold_all = true;
    eng_open(e, "\"BatchSize\":2,\"max_bytes_buffered\":\"64KiB\"");
    /* at least one record per fetch, so at most one record over the budget */
    assert_true(e->fs.held_bytes >= 65536 - sizeof(big) - 1);
    assert_true(e->fs.held_bytes < 65536 + sizeof(big) + 1);
    size_t fetches = e->fs.n_fetches;
    eng_advance(e, ENG_RETRY_CAP);
    assert_int_equal(e->fs.n_fetches, fetches);
    for (int round = 0; round < 200 && !eng_all_acked(e); round++) {
        eng_answer_held(e);
    }
    assert_true(eng_all_acked(e));
    assert_true(e->fs.max_held_bytes < 65536 + sizeof(big) + 1);
    eng_check_fetch_budget(e, 10000, 65536);
}

/* A source whose fetches are paced (Kinesis) reads up to its caps' fetch_records_min per
 * partition, within its part of max_records_buffered (all four busy: each its share; how busy
 * and quiet partitions share it is test_engine_budget.c's). */
static const struct sl_source_caps paced_caps = {
    .model = SL_DELIVERY_STREAM,
    .batch_size_default = 100,
    .batch_size_max = 10000,
    .starting_position_required = true,
    .window_rule = SL_WINDOW_AFTER_INVOKE,
    .lag_unit = SL_LAG_RECORDS,
    .fetch_records_min = 100,
};

static void eng_register_paced(void)
{
    struct sl_source_ops ops = fake_stream_ops;
    ops.caps = &paced_caps;
    sl_source_register_extra(&ops);
}

static void test_engine_rule4_paced_fetch_reads_a_page(void **state)
{
    struct eng *e = *state;
    eng_register_paced();
    eng_push_n(e, fake_stream_add_part(&e->fs, "p0"), "k", 250);
    e->h.hold_all = true;
    eng_open(e, "\"BatchSize\":2");
    /* one fetch of the whole page rather than two batches (4) */
    assert_true(e->fs.n_fetches >= 1);
    assert_int_equal(e->fs.fetches[0].max_records, 100);
    assert_int_equal(e->fs.held_records, 100);
    for (int round = 0; round < 1000 && !eng_all_acked(e); round++) {
        eng_answer_held(e);
        assert_true(e->fs.held_records <= 100);
    }
    assert_true(eng_all_acked(e));
    fake_stream_register();
}

static void test_engine_rule4_paced_fetch_memory_bound(void **state)
{
    struct eng *e = *state;
    eng_register_paced();
    for (int p = 0; p < 4; p++) {
        char id[8];
        (void)snprintf(id, sizeof(id), "p%d", p);
        eng_push_n(e, fake_stream_add_part(&e->fs, id), "k", 200);
    }
    e->fs.async = true;
    e->fs.async_auto = true; /* the fetches of all four are out at once, as Kinesis's are */
    e->h.hold_all = true;
    eng_open(e, "\"BatchSize\":2,\"max_records_buffered\":120");
    /* each partition asks for its share (120 / 4), never the caps' 100 */
    for (size_t i = 0; i < e->fs.n_fetches; i++) {
        assert_true(e->fs.fetches[i].max_records <= 30);
    }
    assert_int_equal(e->fs.fetches[0].max_records, 30);
    assert_int_equal(e->fs.held_records, 120);
    for (int round = 0; round < 1000 && !eng_all_acked(e); round++) {
        eng_answer_held(e);
        assert_true(e->fs.held_records <= 120);
    }
    assert_true(eng_all_acked(e));
    assert_true(e->fs.max_held_records <= 120);
    eng_check_fetch_budget(e, 120 + 1, 16u << 20);
    fake_stream_register();
}

static void test_engine_rule4_paced_fetch_bytes_bound(void **state)
{
    struct eng *e = *state;
    eng_register_paced();
    static char big[1200];
    memset(big, 'x', sizeof(big));
    size_t p = fake_stream_add_part(&e->fs, "p0");
    for (int r = 0; r < 12; r++) {
        fake_stream_push(&e->fs, p, "k", big, sizeof(big));
    }
    e->h.hold_all = true;
    eng_open(e, "\"BatchSize\":2,\"max_bytes_buffered\":\"64KiB\"");
    assert_true(e->fs.fetches[0].max_records >= 100);        /* paced: a page of records... */
    assert_true(e->fs.held_bytes < 65536 + sizeof(big) + 1); /* ...within the bytes */
    for (int round = 0; round < 200 && !eng_all_acked(e); round++) {
        eng_answer_held(e);
    }
    assert_true(eng_all_acked(e));
    assert_true(e->fs.max_held_bytes < 65536 + sizeof(big) + 1);
    eng_check_fetch_budget(e, 10000, 65536);
    fake_stream_register();
}

/* --- rule 5: every wait has a bound --- */

static void test_engine_rule5_batching_window_bounded(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 3);
    eng_open(e, "\"BatchSize\":100,\"MaximumBatchingWindowInSeconds\":2");
    int64_t t0 = sl_clock_now_ms(&e->h.clock.clock);
    assert_int_equal(e->h.n_calls, 0);
    /* the loop wakes for it within the window */
    int wake = uv_backend_timeout(&e->h.loop);
    assert_true(wake > 0 && wake <= 2000);
    eng_advance(e, 1999);
    assert_int_equal(e->h.n_calls, 0);
    eng_advance(e, 1);
    assert_int_equal(e->h.n_calls, 1);
    assert_int_equal(e->calls[0].n, 3);
    assert_int_equal(e->calls[0].at_ms, t0 + 2000);
    /* a full batch does not wait for the window */
    eng_push_n(e, p, "k", 100);
    eng_settle(e);
    assert_int_equal(e->h.n_calls, 2);
    assert_int_equal(e->calls[1].n, 100);
}

/* A drain (SIGTERM) ends in bounded time: it starts nothing new, the invocations in flight
 * finish (a success still moves the checkpoint), a failure is left for the next run. */
static void test_engine_rule5_drain_ends(void **state)
{
    struct eng *e = *state;
    size_t p0 = fake_stream_add_part(&e->fs, "p0");
    size_t p1 = fake_stream_add_part(&e->fs, "p1");
    eng_push_n(e, p0, "k", 6);
    eng_push_n(e, p1, "k", 6);
    e->h.hold_all = true;
    eng_open(e, "\"BatchSize\":2");
    assert_int_equal(e->h.n_calls, 2);
    sl_mapping_drain(e->h.m);
    eng_answer(e, 0, SL_OUTCOME_SUCCESS, NULL);
    eng_answer(e, 1, SL_OUTCOME_FUNCTION_ERROR, NULL);
    eng_settle(e);
    eng_advance(e, ENG_RETRY_CAP);
    assert_int_equal(sl_mapping_in_flight(e->h.m), 0);
    assert_int_equal(e->h.n_calls, 2); /* nothing new, nothing retried */
    size_t done = e->calls[0].recs[0].part;
    assert_int_equal(fake_stream_acked(&e->fs, done), 2);
    assert_int_equal(fake_stream_acked(&e->fs, done == p0 ? p1 : p0), 0);
    eng_assert_stored(e, e->fs.parts[done].id, "2");
}

/* Throttled three times with a Retry-After of a day: each wait is capped. */
static void script_throttle_3(struct eng *e, size_t call, struct reply *ret)
{
    (void)e;
    if (call < 3) {
        ret->outcome = SL_OUTCOME_THROTTLE;
        ret->retry_after = INT64_C(86400000);
    }
}

static void test_engine_rule5_retry_backoff_bounded(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 1);
    e->script = script_throttle_3;
    eng_open(e, "\"BatchSize\":1");
    for (size_t i = 1; i <= 3; i++) {
        assert_int_equal(e->h.n_calls, i);
        /* backing off: nothing is sent again until time passes, and the wait is bounded */
        eng_settle(e);
        assert_int_equal(e->h.n_calls, i);
        int wake = uv_backend_timeout(&e->h.loop);
        assert_true(wake > ENG_RETRY_FLOOR - 1000 && wake <= ENG_RETRY_CAP);
        eng_advance(e, ENG_RETRY_CAP);
    }
    assert_int_equal(e->h.n_calls, 4);
    assert_true(eng_all_acked(e));
}

/* --- BisectBatchOnFunctionError --- */

static void script_rec2_fails(struct eng *e, size_t call, struct reply *ret)
{
    if (call_has(&e->calls[call], 0, 2)) {
        ret->outcome = SL_OUTCOME_FUNCTION_ERROR;
    }
}

static void test_engine_bisect_on_function_error(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 4);
    e->may_drop[p][2] = true;
    e->script = script_rec2_fails;
    eng_open(e, "\"BatchSize\":4,\"BisectBatchOnFunctionError\":true,"
                "\"MaximumRetryAttempts\":1");
    assert_true(eng_drive(e, eng_all_acked));
    /* [0..3] fails, split: [0,1] delivered, [2,3] fails, split: [2] fails until its retries
     * are exhausted (given up: no destination), then [3] */
    static const uint64_t want[][4] = {{0, 1, 2, 3}, {0, 1}, {2, 3}, {2}, {2}, {3}};
    static const size_t want_n[] = {4, 2, 2, 1, 1, 1};
    assert_int_equal(e->h.n_calls, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(e->calls[i].n, want_n[i]);
        for (size_t j = 0; j < want_n[i]; j++) {
            assert_int_equal(e->calls[i].recs[j].seq, want[i][j]);
        }
    }
    assert_int_equal(sl_mapping_stats(e->h.m)->dropped, 1);
    eng_assert_stored(e, "p0", "4");
}

/* --- ReportBatchItemFailures --- */

static void script_partial_3_1(struct eng *e, size_t call, struct reply *ret)
{
    (void)e;
    if (call == 0) {
        ret->body = "{\"batchItemFailures\":[{\"itemIdentifier\":\"3\"},"
                    "{\"itemIdentifier\":\"1\"}]}";
        ret->ok_prefix = 1;
    }
}

static void test_engine_partial_response_resumes_at_lowest(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 5);
    e->script = script_partial_3_1;
    eng_open(e, "\"BatchSize\":5,\"FunctionResponseTypes\":[\"ReportBatchItemFailures\"]");
    /* record 0 is delivered and checkpointed; 1..4 wait for the backoff */
    assert_int_equal(e->h.n_calls, 1);
    assert_int_equal(e->fs.n_acks, 1);
    assert_int_equal(e->fs.acks[0].pos, 0);
    eng_assert_stored(e, "p0", "1");
    assert_true(eng_drive(e, eng_all_acked));
    assert_int_equal(e->h.n_calls, 2);
    assert_int_equal(e->calls[1].n, 4);
    assert_int_equal(e->calls[1].recs[0].seq, 1);
    assert_int_equal(e->calls[1].recs[3].seq, 4);
    eng_assert_stored(e, "p0", "5");
}

/* AWS's reading of a partial batch response (esm.md §4.3): what the first answer of each
 * partition was, and what its second call must be (none: all delivered; 0: the whole batch
 * again; 1: from record 1). */
struct partial_case {
    const char *body;
    int resume; /* -1: all delivered */
};

static const struct partial_case partial_cases[] = {
    {"", -1},
    {"null", -1},
    {"{}", -1},
    {"{\"batchItemFailures\":[]}", -1},
    {"{\"batchItemFailures\":null}", -1},
    {"{\"batchItemFailure\":[{\"itemIdentifier\":\"1\"}]}", -1}, /* misspelt: AWS says done */
    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"1\"}]}", 1},
    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"\"}]}", 0},
    {"{\"batchItemFailures\":[{\"itemIdentifier\":null}]}", 0},
    {"{\"batchItemFailures\":[{}]}", 0},
    {"{\"batchItemFailures\":[{\"itemIdentifier\":\"99\"}]}", 0},
    {"{\"batchItemFailures\":\"1\"}", 0},
    {"not json", 0},
};

#define PARTIAL_CASES (sizeof(partial_cases) / sizeof(partial_cases[0]))

static void script_partial_cases(struct eng *e, size_t call, struct reply *ret)
{
    size_t p = e->calls[call].recs[0].part;
    for (size_t i = 0; i < call; i++) {
        if (e->calls[i].recs[0].part == p) {
            return; /* later calls succeed */
        }
    }
    ret->body = partial_cases[p].body;
    ret->ok_prefix = partial_cases[p].resume < 0 ? ENG_SIZE_ALL : (size_t)partial_cases[p].resume;
}

static void test_engine_partial_response_aws_rules(void **state)
{
    struct eng *e = *state;
    for (size_t i = 0; i < PARTIAL_CASES; i++) {
        char id[8];
        (void)snprintf(id, sizeof(id), "c%zu", i);
        eng_push_n(e, fake_stream_add_part(&e->fs, id), "k", 3);
    }
    e->script = script_partial_cases;
    eng_open(e, "\"BatchSize\":3,\"FunctionResponseTypes\":[\"ReportBatchItemFailures\"]");
    assert_true(eng_drive(e, eng_all_acked));
    for (size_t p = 0; p < PARTIAL_CASES; p++) {
        size_t n = 0;
        const struct call *second = NULL;
        for (size_t i = 0; i < e->h.n_calls; i++) {
            if (e->calls[i].recs[0].part == p && n++ == 1) {
                second = &e->calls[i];
            }
        }
        if (partial_cases[p].resume < 0) {
            if (n != 1) {
                fail_msg("case %zu (%s): %zu calls, want 1", p, partial_cases[p].body, n);
            }
            continue;
        }
        if (n != 2 || second->recs[0].seq != (uint64_t)partial_cases[p].resume ||
            second->n != 3 - (size_t)partial_cases[p].resume) {
            fail_msg("case %zu (%s): %zu calls, the second from %" PRIu64 ", want from %d", p,
                     partial_cases[p].body, n, second ? second->recs[0].seq : 0,
                     partial_cases[p].resume);
        }
    }
}

/* --- the 6 MB payload --- */

static void test_engine_payload_split_6mb(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    char *mb = malloc(1000000);
    assert_non_null(mb);
    memset(mb, 'x', 1000000);
    for (int i = 0; i < 7; i++) {
        fake_stream_push(&e->fs, p, "k", mb, 1000000);
    }
    free(mb);
    eng_open(e, "\"BatchSize\":10");
    assert_true(eng_drive(e, eng_all_acked));
    assert_int_equal(e->h.n_calls, 2);
    assert_int_equal(e->calls[0].n, 6);
    assert_int_equal(e->calls[1].n, 1);
    assert_int_equal(e->calls[1].recs[0].seq, 6);
    for (size_t i = 0; i < e->h.n_calls; i++) {
        assert_true(e->calls[i].len <= SL_BATCH_MAX_PAYLOAD_BYTES);
    }
}

/* --- the checkpoint write: open, write, fsync, close, rename, directory fsync --- */

/* Checks that the log is made only of whole, ordered checkpoint writes. Returns how many. */
static size_t eng_check_write_order(const struct eng *e)
{
    char tmp[800];
    (void)snprintf(tmp, sizeof(tmp), "%s.tmp", e->store_path);
    pthread_mutex_lock(&fop_mu);
    size_t n = fop_n;
    pthread_mutex_unlock(&fop_mu);
    size_t writes = 0;
    size_t i = 0;
    while (i < n) {
        const struct fop *f = &fop_log[i];
        int fd = f->fd;
        if (f->kind != FOP_OPEN || strcmp(f->path, tmp) != 0 || fd < 0) {
            fail_msg("op %zu: a write must start by opening %s", i, tmp);
        }
        i++;
        size_t data = 0;
        while (i < n && fop_log[i].kind == FOP_WRITE && fop_log[i].fd == fd) {
            i++;
            data++;
        }
        if (data == 0) {
            fail_msg("op %zu: the temp file is not written", i);
        }
        if (i >= n || fop_log[i].kind != FOP_FSYNC || fop_log[i].fd != fd) {
            fail_msg("op %zu: the temp file is not fsynced after it is written", i);
        }
        i++;
        if (i >= n || fop_log[i].kind != FOP_CLOSE || fop_log[i].fd != fd) {
            fail_msg("op %zu: the temp file is not closed after its fsync", i);
        }
        i++;
        if (i >= n || fop_log[i].kind != FOP_RENAME || strcmp(fop_log[i].path, tmp) != 0 ||
            strcmp(fop_log[i].to, e->store_path) != 0) {
            fail_msg("op %zu: the temp file is not renamed over the store", i);
        }
        i++;
        if (i >= n || fop_log[i].kind != FOP_OPEN || fop_log[i].fd < 0) {
            fail_msg("op %zu: the directory is not opened after the rename", i);
        }
        int dfd = fop_log[i].fd;
        i++;
        if (i >= n || fop_log[i].kind != FOP_FSYNC || fop_log[i].fd != dfd) {
            fail_msg("op %zu: the directory is not fsynced after the rename", i);
        }
        i++;
        if (i >= n || fop_log[i].kind != FOP_CLOSE || fop_log[i].fd != dfd) {
            fail_msg("op %zu: the directory is not closed", i);
        }
        i++;
        writes++;
    }
    return writes;
}

static void test_engine_ckpt_write_order(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 6);
    eng_open(e, "\"BatchSize\":2");
    assert_true(eng_drive(e, eng_all_acked));
    eng_assert_stored(e, "p0", "6");
    assert_true(eng_check_write_order(e) >= 1);
}

static void test_engine_ckpt_crash_before_rename_keeps_old(void **state)
{
    struct eng *e = *state;
    size_t p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 2);
    e->h.hold_all = true;
    eng_open(e, "\"BatchSize\":2");
    eng_answer(e, 0, SL_OUTCOME_SUCCESS, NULL);
    eng_settle(e);
    eng_assert_stored(e, "p0", "2");
    /* the next checkpoint write dies half way through its data (the flush above left none in
     * flight) */
    fop_reset(FOP_CRASH_MID_WRITE);
    eng_push_n(e, p, "k", 2);
    eng_settle(e);
    assert_int_equal(e->h.n_calls, 2);
    eng_answer(e, 1, SL_OUTCOME_SUCCESS, NULL);
    eng_settle(e);
    assert_int_equal(fake_stream_acked(&e->fs, p), 4);
    assert_true(sl_mapping_flush(e->h.m) < 0);
    char got[64];
    eng_stored(e, "p0", got, sizeof(got));
    assert_string_equal(got, "2");
    /* and one that dies just before its rename */
    fop_reset(FOP_CRASH_AT_RENAME);
    assert_true(sl_mapping_flush(e->h.m) < 0);
    eng_stored(e, "p0", got, sizeof(got));
    assert_string_equal(got, "2");
    char tmp[800];
    struct stat st;
    (void)snprintf(tmp, sizeof(tmp), "%s.tmp", e->store_path);
    assert_int_equal(stat(tmp, &st), -1); /* no torn temp file left behind */
    eng_close(e, false);
    /* the next run starts from the old checkpoint: records 2 and 3 again */
    fop_reset(FOP_CRASH_NONE);
    fake_stream_fini(&e->fs);
    fake_stream_init(&e->fs);
    e->fs.on_ack = eng_on_ack;
    e->fs.on_ack_arg = e;
    p = fake_stream_add_part(&e->fs, "p0");
    eng_push_n(e, p, "k", 4);
    e->h.hold_all = false;
    size_t first = e->h.n_calls;
    eng_open(e, "\"BatchSize\":2");
    assert_true(eng_drive(e, eng_all_acked));
    assert_int_equal(e->calls[first].recs[0].seq, 2);
    eng_assert_stored(e, "p0", "4");
}

int main(void)
{
    (void)setenv("SLUICE_RETRY_BASE_MS", ENG_RETRY_BASE, 1);
    (void)setenv("SLUICE_RETRY_MAX_MS", "60000", 1);
    sl_log_setup(SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    fake_stream_register();
#define T(name) cmocka_unit_test_setup_teardown(test_engine_##name, eng_setup, eng_teardown)
    const struct CMUnitTest tests[] = {
        T(rule1_never_acked_before_done),
        T(rule1_on_failure_written_before_checkpoint),
        T(rule2_order_per_partition),
        T(rule2_order_per_key_parallel),
        T(rule2_low_watermark_parallel_retry),
        T(rule2_low_watermark_filtered_after_retry),
        T(rule2_low_watermark_parallel_gap),
        T(rule2_low_watermark_filtered_gap),
        T(rule3_crash_repeats_never_skips),
        T(part_gone_finishes_then_releases),
        T(part_revoked_acks_nothing_more),
        T(rule4_memory_bound_records),
        T(rule4_memory_bound_bytes),
        T(rule4_paced_fetch_reads_a_page),
        T(rule4_paced_fetch_memory_bound),
        T(rule4_paced_fetch_bytes_bound),
        T(rule5_batching_window_bounded),
        T(rule5_retry_backoff_bounded),
        T(rule5_drain_ends),
        T(bisect_on_function_error),
        T(partial_response_resumes_at_lowest),
        T(partial_response_aws_rules),
        T(payload_split_6mb),
        T(ckpt_write_order),
        T(ckpt_crash_before_rename_keeps_old),
    };
#undef T
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
