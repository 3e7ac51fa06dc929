/* SPDX-License-Identifier: Apache-2.0 */
/* conformance_source.c: the source conformance suite (conformance_source.h). It stands in for the
 * mapping: it allocates the adapter's ctx and applies its options, gives it an env whose callbacks
 * record what the source reports, owns the partitions, fetches, acknowledges and releases as the
 * mapping does, and checks the stream source contract of source.h through the completed ops the
 * registry hands out, and for queue sources the queue contract (leases, acknowledgements and their
 * reports, releases, holds, groups). It knows nothing of any one adapter: the driver in struct
 * conf_source or struct conf_queue makes the source's content, and says how the adapter ends a
 * partition (gone or revoked), which clock it runs on and, for a source that keeps its own
 * positions, what its store holds. Waits run the loop to a condition under a real-time deadline
 * (test_run_until) while moving the fake clock forward; nothing sleeps. Loop thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance_source.h"
#include "config.h"
#include "helpers.h"
#include "opt.h"
#include "partition.h"

#define CONF_DEADLINE_MS 5000
#define CONF_MAX_PARTS   4
#define CONF_N           5 /* records a check starts with */
#define CONF_TEXT        128

#define CONF_MAX_REPORTS 256

/* One env->queue_report call. */
struct conf_report {
    uint64_t lease;
    enum sl_queue_report report;
    int err;
};

/* One running instance of the adapter and the mapping it sees. */
struct conf_h {
    const struct conf_source *cs;
    const struct sl_source_ops *ops;
    uv_loop_t loop;
    struct sl_clock_fake clock;
    uv_timer_t tick; /* moves the fake clock while the loop waits */
    char arn[1024];
    cJSON *opts;
    bool owns_opts; /* opts is this instance's to delete (a second instance shares them) */
    bool loop_open; /* loop initialised and not yet closed */
    struct sl_source_env env;
    void *ctx;
    bool inited;
    struct sl_part *parts[CONF_MAX_PARTS];
    size_t n_parts;
    struct sl_part *released[CONF_MAX_PARTS]; /* let go by the check, freed at conf_stop */
    size_t n_released;
    size_t after_release; /* callbacks naming a released partition */
    const char *ckpt_pos; /* given to the next partition, as a stored checkpoint */
    const char *ckpt_meta;
    bool stopped;
    size_t after_stop; /* callbacks after stop */
    size_t unknown;    /* callbacks naming a partition the harness does not hold */
    size_t wakes;
    size_t gones;
    size_t revokes;
    bool fetched; /* part_fetched came */
    int fetched_n;
    /* queue checks */
    struct conf_source qcs; /* names the queue adapter in messages (cs points here) */
    struct conf_report reports[CONF_MAX_REPORTS];
    size_t n_reports;
    int64_t vis; /* the queue's visibility timeout, ms */
};

/* The instances of the running check: one, or two when a second instance resumes where the
 * first stopped. Static, not on the check's stack: cmocka leaves a failed check by a longjmp,
 * and conf_source_cleanup (from the test's teardown) still finds them to stop and free. */
static struct conf_h conf_slots[2];

static struct conf_h *conf_slot(size_t i)
{
    assert_true(i < sizeof(conf_slots) / sizeof(conf_slots[0]));
    memset(&conf_slots[i], 0, sizeof(conf_slots[i]));
    return &conf_slots[i];
}

static const char *const conf_data[] = {
    "{\"n\":0,\"text\":\"alpha\"}",   "{\"n\":1,\"text\":\"beta\"}",
    "{\"n\":2,\"text\":\"gamma\"}",   "{\"n\":3,\"text\":\"delta\"}",
    "{\"n\":4,\"text\":\"epsilon\"}",
};

static const char conf_more[] = "{\"n\":5,\"text\":\"zeta\"}";

static bool conf_known(struct conf_h *h, const struct sl_part *part)
{
    for (size_t i = 0; i < h->n_released; i++) {
        if (h->released[i] == part) {
            h->after_release++;
            return false;
        }
    }
    for (size_t i = 0; i < h->n_parts; i++) {
        if (h->parts[i] == part) {
            return true;
        }
    }
    h->unknown++;
    return false;
}

static int conf_part_add(void *owner, const char *id, const char *name, struct sl_part **ret_part)
{
    struct conf_h *h = owner;
    h->after_stop += h->stopped;
    assert_true(h->n_parts < CONF_MAX_PARTS);
    assert_non_null(id);
    assert_non_null(name);
    assert_true(id[0] != '\0');
    struct sl_part *part = sl_part_new(id, name);
    assert_non_null(part);
    if (h->ckpt_pos) {
        assert_int_equal(sl_part_set_checkpoint(part, h->ckpt_pos, h->ckpt_meta), 0);
    }
    h->parts[h->n_parts++] = part;
    *ret_part = part;
    return 0;
}

static void conf_part_wake(void *owner, struct sl_part *part)
{
    struct conf_h *h = owner;
    h->after_stop += h->stopped;
    if (conf_known(h, part)) {
        h->wakes++;
    }
}

static void conf_part_fetched(void *owner, struct sl_part *part, int n)
{
    struct conf_h *h = owner;
    h->after_stop += h->stopped;
    if (conf_known(h, part)) {
        h->fetched = true;
        h->fetched_n = n;
    }
}

static void conf_part_gone(void *owner, struct sl_part *part)
{
    struct conf_h *h = owner;
    h->after_stop += h->stopped;
    if (conf_known(h, part)) {
        h->gones++;
    }
}

static void conf_part_revoke(void *owner, struct sl_part *part)
{
    struct conf_h *h = owner;
    h->after_stop += h->stopped;
    if (!h->cs->end_revokes) {
        (void)conf_known(h, part);
        fail_msg("%s: part_revoke without a reason", h->cs->name);
    }
    if (conf_known(h, part)) {
        h->revokes++;
    }
}

static int conf_part_set_start(void *owner, struct sl_part *part, const char *pos)
{
    struct conf_h *h = owner;
    h->after_stop += h->stopped;
    assert_non_null(pos);
    (void)conf_known(h, part);
    assert_int_equal(sl_recq_count(&part->q), 0);
    return 0;
}

static void conf_queue_report(
    void *owner, struct sl_part *part, uint64_t lease, enum sl_queue_report report, int err)
{
    struct conf_h *h = owner;
    h->after_stop += h->stopped;
    (void)conf_known(h, part);
    assert_true(report < SL_QUEUE_REPORT_COUNT);
    assert_true(h->n_reports < CONF_MAX_REPORTS);
    h->reports[h->n_reports++] = (struct conf_report){lease, report, err};
}

static void conf_tick_cb(uv_timer_t *t)
{
    struct conf_h *h = t->data;
    sl_clock_fake_advance(&h->clock, 1000);
}

/* Makes the source's content (once per check). */
static void conf_prepare(struct conf_h *h, const struct conf_source *cs, size_t n)
{
    memset(h, 0, sizeof(*h));
    h->cs = cs;
    h->opts = cs->prepare(cs->arg, conf_data, n, h->arn, sizeof(h->arn));
    h->owns_opts = true;
    h->ops = sl_source_for_arn(h->arn);
    assert_non_null(h->ops);
}

/* Starts an instance over the prepared source, as sl_mapping_new and _start do. */
static void conf_start(struct conf_h *h)
{
    assert_int_equal(uv_loop_init(&h->loop), 0);
    h->loop_open = true;
    sl_clock_fake_init(&h->clock, 1000000, INT64_C(1700000000000));
    uv_timer_init(&h->loop, &h->tick);
    h->tick.data = h;
    h->ctx = calloc(1, h->ops->ctx_size);
    assert_non_null(h->ctx);
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    cJSON *empty = cJSON_CreateObject();
    struct sl_opt_target t = {.table = h->ops->opts, .base = h->ctx};
    int r = sl_opt_apply(&t, 1, h->opts ? h->opts : empty, "conformance", "$", &errs);
    char first[512];
    (void)snprintf(first, sizeof(first), "%s", errs.n ? errs.items[0] : "?");
    cJSON_Delete(empty);
    sl_errlist_fini(&errs);
    if (r < 0) {
        fail_msg("%s: options: %s", h->cs->name, first);
    }
    char err[512] = "";
    if (h->ops->check(h->ctx, h->arn, err, sizeof(err)) < 0) {
        fail_msg("%s: check: %s", h->cs->name, err);
    }
    h->env = (struct sl_source_env){
        .loop = &h->loop,
        .clock = h->cs->real_clock ? &sl_clock_system : &h->clock.clock,
        .inst = "conformance",
        .region = "us-east-1",
        .arn = h->arn,
        .starting_position = SL_START_TRIM_HORIZON,
        .max_records_buffered = 10000,
        .max_bytes_buffered = 16 << 20,
        .owner = h,
        .part_add = conf_part_add,
        .part_wake = conf_part_wake,
        .part_fetched = conf_part_fetched,
        .part_gone = conf_part_gone,
        .part_revoke = conf_part_revoke,
        .part_set_start = conf_part_set_start,
        .queue_report = conf_queue_report,
    };
    if (h->ops->init(h->ctx, &h->env, err, sizeof(err)) < 0) {
        fail_msg("%s: init: %s", h->cs->name, err);
    }
    h->inited = true;
    assert_int_equal(h->ops->start(h->ctx), 0);
}

static void conf_tick_start(struct conf_h *h)
{
    uv_timer_start(&h->tick, conf_tick_cb, 1, 1);
}

static bool conf_has_part(void *arg)
{
    return ((struct conf_h *)arg)->n_parts > 0;
}

static bool conf_woken(void *arg)
{
    return ((struct conf_h *)arg)->wakes > 0;
}

static bool conf_was_fetched(void *arg)
{
    return ((struct conf_h *)arg)->fetched;
}

static bool conf_is_gone(void *arg)
{
    return ((struct conf_h *)arg)->gones > 0;
}

static bool conf_is_revoked(void *arg)
{
    return ((struct conf_h *)arg)->revokes > 0;
}

/* Runs the loop (the fake clock moving) until cond holds or the deadline passes. */
static bool conf_wait(struct conf_h *h, bool (*cond)(void *arg))
{
    conf_tick_start(h);
    bool ok = test_run_until(&h->loop, cond, h,
                             h->cs->deadline_ms ? h->cs->deadline_ms : CONF_DEADLINE_MS);
    uv_timer_stop(&h->tick);
    return ok;
}

/* What conf_has_stored waits for. */
static int64_t conf_stored_want;

static bool conf_has_stored(void *arg)
{
    const struct conf_h *h = arg;
    return h->cs->stored(h->cs->arg) == conf_stored_want;
}

/* Waits until the store of a source that keeps its positions says want records are done. */
static void conf_wait_stored(struct conf_h *h, int64_t want)
{
    conf_stored_want = want;
    if (!conf_wait(h, conf_has_stored)) {
        fail_msg("%s: its store holds %" PRId64 " records done, want %" PRId64, h->cs->name,
                 h->cs->stored(h->cs->arg), want);
    }
}

/* Whether the source keeps its own positions; such a driver must say what its store holds. */
static bool conf_keeps_positions(const struct conf_h *h)
{
    if (!h->ops->caps->keeps_positions) {
        return false;
    }
    if (!h->cs->stored) {
        fail_msg("%s keeps its own positions: its driver must give stored", h->cs->name);
    }
    return true;
}

/* The mapping let part go (after part_release): the harness keeps it, freed at conf_stop, to
 * notice any callback that still names it. */
static void conf_forget(struct conf_h *h, struct sl_part *part)
{
    for (size_t i = 0; i < h->n_parts; i++) {
        if (h->parts[i] == part) {
            memmove(&h->parts[i], &h->parts[i + 1], (h->n_parts - i - 1) * sizeof(*h->parts));
            h->n_parts--;
            break;
        }
    }
    assert_true(h->n_released < CONF_MAX_PARTS);
    h->released[h->n_released++] = part;
}

static struct sl_part *conf_part(struct conf_h *h)
{
    if (!conf_wait(h, conf_has_part)) {
        fail_msg("%s: no partition appeared within %" PRId64 " ms", h->cs->name,
                 test_deadline_ms(h->cs->deadline_ms ? h->cs->deadline_ms : CONF_DEADLINE_MS));
    }
    assert_int_equal(h->n_parts, 1);
    return h->parts[0];
}

/* One fetch as the mapping makes it: the number of records appended (0: none now). An
 * asynchronous fetch is waited for. */
static int conf_fetch_once(struct conf_h *h, struct sl_part *part, size_t max_records)
{
    h->fetched = false;
    int r = h->ops->fetch(h->ctx, part, max_records, 1 << 20);
    if (r == SL_EINPROGRESS) {
        if (!conf_wait(h, conf_was_fetched)) {
            fail_msg("%s: an asynchronous fetch never completed", h->cs->name);
        }
        r = h->fetched_n;
    }
    if (r < 0) {
        fail_msg("%s: fetch failed: %s", h->cs->name, sl_strerror(r));
    }
    assert_true((size_t)r <= max_records);
    return r;
}

/* Fetches until the partition's queue holds want records, waiting for wakes in between. */
static void conf_fetch_until(struct conf_h *h, struct sl_part *part, size_t want, size_t max)
{
    for (int turn = 0; turn < 100 && sl_recq_count(&part->q) < want; turn++) {
        size_t left = want - sl_recq_count(&part->q); /* a source may hand out fewer at first */
        if (conf_fetch_once(h, part, left < max ? left : max) == 0) {
            h->wakes = 0;
            if (!conf_wait(h, conf_woken)) {
                fail_msg("%s: no part_wake after fetch returned 0 (%zu of %zu records)",
                         h->cs->name, sl_recq_count(&part->q), want);
            }
        }
    }
    assert_int_equal(sl_recq_count(&part->q), want);
}

static void
conf_assert_data(const struct conf_h *h, const struct sl_part *part, size_t i, const char *want)
{
    const struct sl_record *rec = sl_recq_at(&part->q, i);
    char shaped[2 * CONF_TEXT];
    if (h->cs->payload) {
        h->cs->payload(h->cs->arg, want, shaped, sizeof(shaped));
        want = shaped;
    }
    size_t n = strlen(want);
    /* the payload itself, decoded when the source keeps it as base64 (SL_REC_BASE64) */
    struct sl_buf raw;
    sl_buf_init(&raw);
    const char *data = "";
    size_t len = 0;
    int r = sl_recq_payload(&part->q, rec, &raw, &data, &len);
    if (r < 0 || len != n || memcmp(data, want, n) != 0 ||
        sl_recq_payload_len(&part->q, rec) != n) {
        fail_msg("%s: record %zu is \"%.*s\" (%s), want \"%s\"", h->cs->name, i, (int)rec->len,
                 sl_recq_data(&part->q, rec),
                 r < 0                          ? "not base64"
                 : (rec->flags & SL_REC_BASE64) ? "base64"
                                                : "as is",
                 want);
    }
    sl_buf_fini(&raw);
}

/* Stops the instance and lets it go, as sl_mapping_free does, whatever of it was started (an
 * instance whose conf_start failed part-way too). Returns false if a handle stayed open on the
 * loop (which then stays open). Asserts nothing: conf_source_cleanup calls it after a failure. */
static bool conf_close(struct conf_h *h)
{
    if (!h->loop_open) {
        return true;
    }
    uv_timer_stop(&h->tick);
    if (h->inited && !h->stopped) {
        h->ops->stop(h->ctx);
        h->stopped = true;
    }
    /* one at a time, so that a failure in a callback leaves nothing freed twice */
    for (; h->n_parts > 0; h->n_parts--) {
        struct sl_part *part = h->parts[h->n_parts - 1];
        h->ops->part_release(h->ctx, part);
        sl_part_free(part);
    }
    if (h->ctx) {
        h->ops->fini(h->ctx); /* safe after a failed or missing init */
    }
    for (; h->n_released > 0; h->n_released--) {
        sl_part_free(h->released[h->n_released - 1]);
    }
    if (h->ctx) {
        sl_opt_free(h->ops->opts, h->ctx);
        free(h->ctx);
        h->ctx = NULL;
    }
    h->inited = false;
    uv_close((uv_handle_t *)&h->tick, NULL);
    for (int i = 0; i < 1000 && uv_loop_alive(&h->loop); i++) {
        (void)uv_run(&h->loop, UV_RUN_ONCE);
    }
    if (uv_loop_close(&h->loop) != 0) {
        return false;
    }
    h->loop_open = false;
    return true;
}

/* Stops the instance and lets it go, as sl_mapping_free does; no handle may stay open. */
static void conf_stop(struct conf_h *h)
{
    if (!conf_close(h)) {
        fail_msg("%s: a handle is still open after stop and fini", h->cs->name);
    }
    assert_int_equal(h->after_stop, 0);
    assert_int_equal(h->unknown, 0);
    if (h->after_release != 0) {
        fail_msg("%s: %zu callbacks named a partition after its part_release", h->cs->name,
                 h->after_release);
    }
}

static void conf_done(struct conf_h *h)
{
    if (h->owns_opts) {
        cJSON_Delete(h->opts);
    }
    h->opts = NULL;
    h->owns_opts = false;
}

void conf_source_cleanup(void)
{
    for (size_t i = sizeof(conf_slots) / sizeof(conf_slots[0]); i-- > 0;) {
        struct conf_h *h = &conf_slots[i];
        if (!conf_close(h)) {
            fprintf(stderr, "%s: a handle is still open after stop and fini\n",
                    h->cs ? h->cs->name : "conformance");
        }
        conf_done(h);
    }
}

void conf_source_check_partitions_appear(const struct conf_source *cs)
{
    struct conf_h *h = conf_slot(0);
    conf_prepare(h, cs, CONF_N);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    assert_true(part->id[0] != '\0');
    assert_true(part->name[0] != '\0');
    assert_non_null(part->src);
    conf_stop(h);
    conf_done(h);
}

/* Positions grow: the source's compare_pos orders a before b (and not the other way). */
static void conf_assert_before(const struct conf_h *h,
                               const struct sl_part *part,
                               const struct sl_record *a,
                               const struct sl_record *b)
{
    const unsigned char *pa = sl_recq_pos(&part->q, a), *pb = sl_recq_pos(&part->q, b);
    if (h->ops->compare_pos(h->ctx, pa, a->pos_len, pb, b->pos_len) >= 0 ||
        h->ops->compare_pos(h->ctx, pb, b->pos_len, pa, a->pos_len) <= 0) {
        fail_msg("%s: positions do not grow in fetch order", h->cs->name);
    }
}

void conf_source_check_fetch_in_order(const struct conf_source *cs)
{
    struct conf_h *h = conf_slot(0);
    conf_prepare(h, cs, CONF_N);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    conf_fetch_until(h, part, CONF_N, 2); /* two at most per fetch */
    for (size_t i = 0; i < CONF_N; i++) {
        const struct sl_record *rec = sl_recq_at(&part->q, i);
        conf_assert_data(h, part, i, conf_data[i]);
        assert_true(rec->pos_len >= 1 && rec->pos_len <= SL_REC_POS_MAX);
        if (i > 0) {
            conf_assert_before(h, part, sl_recq_at(&part->q, i - 1), rec);
        }
    }
    /* nothing more now; one added record wakes the mapping and comes next */
    assert_int_equal(conf_fetch_once(h, part, 100), 0);
    h->wakes = 0;
    cs->append(cs->arg, conf_more);
    if (!conf_wait(h, conf_woken)) {
        fail_msg("%s: no part_wake after a record was added", cs->name);
    }
    conf_fetch_until(h, part, CONF_N + 1, 100);
    conf_assert_data(h, part, CONF_N, conf_more);
    conf_assert_before(h, part, sl_recq_at(&part->q, CONF_N - 1), sl_recq_at(&part->q, CONF_N));
    conf_stop(h);
    conf_done(h);
}

void conf_source_check_positions_round_trip(const struct conf_source *cs)
{
    struct conf_h *h = conf_slot(0);
    conf_prepare(h, cs, CONF_N);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    conf_fetch_until(h, part, CONF_N, 100);
    char ids[CONF_N][CONF_TEXT];
    for (size_t i = 0; i < CONF_N; i++) {
        const struct sl_record *rec = sl_recq_at(&part->q, i);
        assert_int_equal(h->ops->format_item_id(h->ctx, part, rec, ids[i], CONF_TEXT), 0);
        assert_true(ids[i][0] != '\0');
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ids[i], ids[j]) == 0) {
                fail_msg("%s: records %zu and %zu have the same item id %s", cs->name, j, i,
                         ids[i]);
            }
        }
    }
    /* the checkpoint after record 1, and the meta the source keeps beside it */
    char pos[CONF_TEXT];
    char meta[1024] = "";
    assert_int_equal(h->ops->format_pos(h->ctx, part, sl_recq_at(&part->q, 1), pos, sizeof(pos)),
                     0);
    assert_true(pos[0] != '\0');
    bool has_meta = part->meta != NULL;
    if (has_meta) {
        (void)snprintf(meta, sizeof(meta), "%s", part->meta);
    }
    bool keeps = conf_keeps_positions(h);
    if (keeps) {
        /* records 0 and 1 done, as the mapping acknowledges them; stopping keeps that */
        h->ops->ack(h->ctx, part, sl_recq_at(&part->q, 0));
        h->ops->ack(h->ctx, part, sl_recq_at(&part->q, 1));
    }
    conf_stop(h);
    if (keeps) {
        int64_t stored = cs->stored(cs->arg);
        if (stored != 2) {
            fail_msg("%s: record 1 acknowledged, then stopped: its store holds %" PRId64
                     " records done, want 2",
                     cs->name, stored);
        }
    }
    /* a new instance, the checkpoint stored (by the mapping, or the source's own): it resumes at
     * record 2 */
    struct conf_h *again = conf_slot(1);
    again->cs = cs;
    again->ops = h->ops;
    again->opts = h->opts;
    (void)snprintf(again->arn, sizeof(again->arn), "%s", h->arn);
    again->ckpt_pos = keeps ? NULL : pos;
    again->ckpt_meta = has_meta && !keeps ? meta : NULL;
    conf_start(again);
    part = conf_part(again);
    conf_fetch_until(again, part, CONF_N - 2, 100);
    conf_assert_data(again, part, 0, conf_data[2]);
    char id[CONF_TEXT];
    assert_int_equal(
        again->ops->format_item_id(again->ctx, part, sl_recq_at(&part->q, 0), id, sizeof(id)), 0);
    assert_string_equal(id, ids[2]); /* the same record has the same item id */
    conf_stop(again);
    conf_done(h);
}

void conf_source_check_ack_after_done(const struct conf_source *cs)
{
    struct conf_h *h = conf_slot(0);
    conf_prepare(h, cs, CONF_N);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    conf_fetch_until(h, part, 3, 3);
    /* records 0..2 are done: acknowledged in order, once per advance, then dropped */
    h->ops->ack(h->ctx, part, sl_recq_at(&part->q, 1));
    h->ops->ack(h->ctx, part, sl_recq_at(&part->q, 2));
    sl_recq_drop(&part->q, 3);
    conf_fetch_until(h, part, CONF_N - 3, 100);
    conf_assert_data(h, part, 0, conf_data[3]);
    conf_assert_data(h, part, 1, conf_data[4]);
    if (conf_keeps_positions(h)) {
        conf_wait_stored(h, 3); /* the one after record 2, while it runs */
    }
    conf_stop(h);
    conf_done(h);
}

void conf_source_check_part_gone(const struct conf_source *cs)
{
    struct conf_h *h = conf_slot(0);
    conf_prepare(h, cs, CONF_N);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    conf_fetch_until(h, part, CONF_N, 100);
    assert_int_equal(conf_fetch_once(h, part, 100), 0);
    if (cs->end_revokes) {
        /* records 0 and 1 done before the partition is taken away */
        h->ops->ack(h->ctx, part, sl_recq_at(&part->q, 0));
        h->ops->ack(h->ctx, part, sl_recq_at(&part->q, 1));
    }
    cs->end(cs->arg);
    if (!conf_wait(h, cs->end_revokes ? conf_is_revoked : conf_is_gone)) {
        fail_msg("%s: no %s after the partition ended", cs->name,
                 cs->end_revokes ? "part_revoke" : "part_gone");
    }
    /* the mapping lets it go; nothing of it may come back */
    h->ops->part_release(h->ctx, part);
    conf_forget(h, part);
    h->wakes = 0;
    if (cs->end_revokes) {
        /* The partition lives on: it comes back as a new one (the group's only member), at the
         * record after the acknowledged ones, nothing of the old one called back meanwhile. */
        part = conf_part(h);
        conf_fetch_until(h, part, CONF_N - 2, 100);
        conf_assert_data(h, part, 0, conf_data[2]);
    } else {
        conf_tick_start(h);
        for (int i = 0; i < 50; i++) {
            (void)uv_run(&h->loop, UV_RUN_NOWAIT);
        }
        assert_int_equal(h->wakes, 0);
    }
    assert_int_equal(h->gones + h->revokes, 1);
    assert_int_equal(h->after_release, 0);
    conf_stop(h);
    conf_done(h);
}

void conf_source_check_stop(const struct conf_source *cs)
{
    struct conf_h *h = conf_slot(0);
    conf_prepare(h, cs, CONF_N);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    conf_fetch_until(h, part, CONF_N, 100);
    assert_int_equal(conf_fetch_once(h, part, 100), 0); /* it owes a wake now */
    h->ops->stop(h->ctx);
    h->stopped = true;
    cs->append(cs->arg, conf_more); /* would wake it, were it running */
    cs->end(cs->arg);
    conf_tick_start(h);
    for (int i = 0; i < 50; i++) {
        (void)uv_run(&h->loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(h->after_stop, 0);
    conf_stop(h);
    conf_done(h);
}

/* --- the queue contract --- */

enum { CONF_Q_FREE, CONF_Q_HELD, CONF_Q_DELETED };

/* One record a queue check fetched: its lease, which message (index in conf_data) and key. */
struct conf_got {
    uint64_t lease;
    size_t idx;
    char key[32];
};

#define CONF_VISIBILITY_MS 30000

static void conf_queue_prepare(struct conf_h *h,
                               const struct conf_queue *cq,
                               const char *const *groups,
                               int64_t visibility_ms)
{
    memset(h, 0, sizeof(*h));
    h->qcs.name = cq->name;
    h->qcs.arg = cq->arg;
    h->qcs.real_clock = cq->real_clock;
    h->qcs.deadline_ms = cq->deadline_ms;
    h->cs = &h->qcs;
    h->vis = cq->visibility_ms ? cq->visibility_ms : visibility_ms;
    h->opts = cq->prepare(cq->arg, conf_data, groups, CONF_N, h->vis, h->arn, sizeof(h->arn));
    h->owns_opts = true;
    h->ops = sl_source_for_arn(h->arn);
    assert_non_null(h->ops);
    assert_int_equal(h->ops->caps->model, SL_DELIVERY_QUEUE);
}

static size_t conf_data_index(const struct conf_h *h, const struct sl_part *part, size_t i)
{
    const struct sl_record *rec = sl_recq_at(&part->q, i);
    for (size_t k = 0; k < CONF_N; k++) {
        if (rec->len == strlen(conf_data[k]) &&
            memcmp(sl_recq_data(&part->q, rec), conf_data[k], rec->len) == 0) {
            return k;
        }
    }
    fail_msg("%s: a record that was never sent: \"%.*s\"", h->cs->name, (int)rec->len,
             sl_recq_data(&part->q, rec));
    return SIZE_MAX;
}

/* Moves what part->q holds into got (lease, message, key), then drops the records, as the
 * mapping may once it holds their leases. Returns how many. */
static size_t conf_take(struct conf_h *h, struct sl_part *part, struct conf_got *got, size_t max)
{
    size_t n = sl_recq_count(&part->q);
    assert_true(n <= max);
    for (size_t i = 0; i < n; i++) {
        const struct sl_record *rec = sl_recq_at(&part->q, i);
        got[i].lease = sl_queue_rec_lease(rec);
        if (got[i].lease == 0) {
            fail_msg("%s: record %zu has lease 0", h->cs->name, i);
        }
        got[i].idx = conf_data_index(h, part, i);
        const char *key = NULL;
        size_t len = h->ops->record_key(h->ctx, part, rec, &key);
        assert_true(len < sizeof(got[i].key));
        (void)snprintf(got[i].key, sizeof(got[i].key), "%.*s", (int)len, key);
    }
    sl_recq_clear(&part->q);
    return n;
}

/* Runs the loop, the clock standing still, until cond holds or the deadline passes. */
static bool conf_spin(struct conf_h *h, bool (*cond)(void *arg))
{
    return test_run_until(&h->loop, cond, h,
                          h->cs->deadline_ms ? h->cs->deadline_ms : CONF_DEADLINE_MS);
}

/* Fetches until want records came (no time passing: they are receivable now). */
static size_t
conf_receive(struct conf_h *h, struct sl_part *part, struct conf_got *got, size_t want)
{
    size_t n = 0;
    for (int turn = 0; turn < 100 && n < want; turn++) {
        if (conf_fetch_once(h, part, want - n) == 0) {
            h->wakes = 0;
            if (!conf_spin(h, conf_woken)) {
                fail_msg("%s: %zu of %zu receivable messages came, then no part_wake", h->cs->name,
                         n, want);
            }
            continue;
        }
        n += conf_take(h, part, got + n, want - n);
    }
    assert_int_equal(n, want);
    return n;
}

static size_t conf_reports_of(const struct conf_h *h, uint64_t lease, enum sl_queue_report what)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_reports; i++) {
        n += h->reports[i].lease == lease && h->reports[i].report == what;
    }
    return n;
}

static size_t conf_reports_for(const struct conf_h *h, uint64_t lease)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n_reports; i++) {
        n += h->reports[i].lease == lease;
    }
    return n;
}

/* What a wait waits for: every lease in wait_leases reported wait_report, queue_idle, and the
 * clock at wait_until. */
static const uint64_t *conf_wait_leases;
static size_t conf_wait_n;
static enum sl_queue_report conf_wait_report;
static int64_t conf_wait_until;

static bool conf_all_reported(void *arg)
{
    const struct conf_h *h = arg;
    for (size_t i = 0; i < conf_wait_n; i++) {
        if (conf_reports_of(h, conf_wait_leases[i], conf_wait_report) == 0) {
            return false;
        }
    }
    return h->ops->queue_idle(h->ctx);
}

static bool conf_clock_reached(void *arg)
{
    const struct conf_h *h = arg;
    return sl_clock_now_ms(h->env.clock) >= conf_wait_until;
}

/* Waits until every lease of leases[0..n) was reported what (the clock moving when ticking). */
static void conf_wait_reports(
    struct conf_h *h, const uint64_t *leases, size_t n, enum sl_queue_report what, bool ticking)
{
    conf_wait_leases = leases;
    conf_wait_n = n;
    conf_wait_report = what;
    bool ok = ticking ? conf_wait(h, conf_all_reported) : conf_spin(h, conf_all_reported);
    if (!ok) {
        fail_msg("%s: %zu leases not all reported %s (and idle)", h->cs->name, n,
                 sl_queue_report_name(what));
    }
}

/* The source's time: the fake clock the harness moves, or the system's (real_clock). */
static int64_t conf_now(const struct conf_h *h)
{
    return sl_clock_now_ms(h->env.clock);
}

/* Lets the source's own timers run a while, the clock standing still. */
static void conf_settle(struct conf_h *h)
{
    for (int i = 0; i < 20; i++) {
        (void)uv_run(&h->loop, UV_RUN_NOWAIT);
    }
}

/* Lets ms of the source's time pass: the fake clock moved at once (the source's own timers then
 * run a while), or the real one waited for on the loop. */
static void conf_pass(struct conf_h *h, int64_t ms)
{
    if (!h->cs->real_clock) {
        sl_clock_fake_advance(&h->clock, ms);
        conf_settle(h);
        return;
    }
    conf_wait_until = conf_now(h) + ms;
    if (!conf_spin(h, conf_clock_reached)) {
        fail_msg("%s: %" PRId64 " ms did not pass", h->cs->name, ms);
    }
}

void conf_queue_check_received_invisible(const struct conf_queue *cq)
{
    struct conf_h *h = conf_slot(0);
    conf_queue_prepare(h, cq, NULL, CONF_VISIBILITY_MS);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    int64_t t0 = conf_now(h);
    struct conf_got got[CONF_N];
    conf_receive(h, part, got, CONF_N);
    bool seen[CONF_N] = {false};
    uint64_t leases[CONF_N];
    for (size_t i = 0; i < CONF_N; i++) {
        assert_false(seen[got[i].idx]);
        seen[got[i].idx] = true;
        assert_string_equal(got[i].key, ""); /* a standard queue: no group */
        leases[i] = got[i].lease;
        for (size_t j = 0; j < i; j++) {
            assert_true(got[j].lease != got[i].lease);
        }
    }
    /* invisible: nothing now, nor halfway through the visibility timeout */
    assert_int_equal(conf_fetch_once(h, part, 100), 0);
    conf_pass(h, h->vis / 2);
    assert_int_equal(h->n_reports, 0);
    assert_int_equal(conf_fetch_once(h, part, 100), 0);
    /* past it: each lease reported lost once, and the messages come back with new leases */
    conf_wait_reports(h, leases, CONF_N, SL_QUEUE_LEASE_LOST, true);
    assert_true(conf_now(h) >= t0 + h->vis);
    for (size_t i = 0; i < CONF_N; i++) {
        assert_int_equal(conf_reports_for(h, leases[i]), 1);
    }
    struct conf_got again[CONF_N];
    conf_receive(h, part, again, CONF_N);
    for (size_t i = 0; i < CONF_N; i++) {
        for (size_t j = 0; j < CONF_N; j++) {
            assert_true(again[i].lease != leases[j]);
        }
    }
    conf_stop(h);
    conf_done(h);
}

void conf_queue_check_ack_deletes(const struct conf_queue *cq)
{
    struct conf_h *h = conf_slot(0);
    conf_queue_prepare(h, cq, NULL, CONF_VISIBILITY_MS);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    struct conf_got got[CONF_N];
    conf_receive(h, part, got, CONF_N);
    assert_int_equal(conf_fetch_once(h, part, 100), 0);
    uint64_t acked[2] = {got[0].lease, got[1].lease};
    assert_int_equal(h->ops->queue_ack(h->ctx, part, acked, 2), 0);
    assert_int_equal(h->n_reports, 0); /* never from inside the call */
    conf_wait_reports(h, acked, 2, SL_QUEUE_ACKED, false);
    assert_int_equal(h->n_reports, 2);
    assert_false(cq->exists(cq->arg, conf_data[got[0].idx]));
    assert_false(cq->exists(cq->arg, conf_data[got[1].idx]));
    assert_true(cq->exists(cq->arg, conf_data[got[2].idx]));
    /* the others come back after their timeout; the deleted ones never do */
    uint64_t rest[CONF_N - 2] = {got[2].lease, got[3].lease, got[4].lease};
    conf_wait_reports(h, rest, CONF_N - 2, SL_QUEUE_LEASE_LOST, true);
    struct conf_got again[CONF_N - 2];
    conf_receive(h, part, again, CONF_N - 2);
    for (size_t i = 0; i < CONF_N - 2; i++) {
        assert_true(again[i].idx != got[0].idx && again[i].idx != got[1].idx);
    }
    assert_int_equal(conf_fetch_once(h, part, 100), 0);
    assert_int_equal(conf_reports_for(h, acked[0]), 1);
    assert_int_equal(conf_reports_for(h, acked[1]), 1);
    conf_stop(h);
    conf_done(h);
}

void conf_queue_check_release(const struct conf_queue *cq)
{
    struct conf_h *h = conf_slot(0);
    conf_queue_prepare(h, cq, NULL, CONF_VISIBILITY_MS);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    int64_t t0 = conf_now(h);
    struct conf_got got[CONF_N];
    conf_receive(h, part, got, CONF_N);
    assert_int_equal(conf_fetch_once(h, part, 100), 0); /* it owes a wake now */
    h->wakes = 0;
    assert_int_equal(h->ops->queue_release(h->ctx, part, &got[0].lease, 1, 0), 0);
    assert_int_equal(
        h->ops->queue_release(h->ctx, part, &got[1].lease, 1, SL_QUEUE_KEEP_VISIBILITY), 0);
    /* visibility 0: receivable again at once, with a new lease */
    if (!conf_spin(h, conf_woken)) {
        fail_msg("%s: no part_wake after a release with visibility 0", cq->name);
    }
    struct conf_got back[CONF_N];
    conf_receive(h, part, back, 1);
    assert_int_equal(back[0].idx, got[0].idx);
    assert_true(back[0].lease != got[0].lease);
    assert_int_equal(conf_fetch_once(h, part, 100), 0); /* the kept one is still invisible */
    assert_true(conf_now(h) < t0 + h->vis);
    /* SL_QUEUE_KEEP_VISIBILITY: after its timeout, with the others */
    uint64_t rest[CONF_N - 2] = {got[2].lease, got[3].lease, got[4].lease};
    conf_wait_reports(h, rest, CONF_N - 2, SL_QUEUE_LEASE_LOST, true);
    size_t n = 0;
    bool kept_back = false;
    for (int turn = 0; turn < 100 && !kept_back; turn++) {
        int r = conf_fetch_once(h, part, 100);
        n = conf_take(h, part, back, CONF_N);
        for (size_t i = 0; i < n; i++) {
            kept_back = kept_back || back[i].idx == got[1].idx;
        }
        if (r == 0) {
            h->wakes = 0;
            (void)conf_spin(h, conf_woken);
        }
    }
    assert_true(kept_back);
    /* a released lease is never reported */
    assert_int_equal(conf_reports_for(h, got[0].lease), 0);
    assert_int_equal(conf_reports_for(h, got[1].lease), 0);
    assert_true(h->ops->queue_idle(h->ctx));
    conf_stop(h);
    conf_done(h);
}

void conf_queue_check_hold_extends(const struct conf_queue *cq)
{
    struct conf_h *h = conf_slot(0);
    conf_queue_prepare(h, cq, NULL, CONF_VISIBILITY_MS);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    int64_t t0 = conf_now(h);
    struct conf_got got[CONF_N];
    conf_receive(h, part, got, CONF_N);
    /* 0..3 held for more than three visibility timeouts, 4 not held */
    uint64_t held[4] = {got[0].lease, got[1].lease, got[2].lease, got[3].lease};
    int64_t until = t0 + h->vis * 10 / 3;
    assert_int_equal(h->ops->queue_hold(h->ctx, part, held, 4, until), 0);
    conf_wait_until = t0 + h->vis * 3;
    if (!conf_wait(h, conf_clock_reached)) {
        fail_msg("%s: the clock did not reach the end of the wait", cq->name);
    }
    for (size_t i = 0; i < 4; i++) {
        if (conf_reports_for(h, held[i]) != 0) {
            fail_msg("%s: held lease %zu reported before its hold ended", cq->name, i);
        }
    }
    assert_int_equal(conf_reports_of(h, got[4].lease, SL_QUEUE_LEASE_LOST), 1);
    /* none of the held messages comes back */
    for (int turn = 0; turn < 3; turn++) {
        (void)conf_fetch_once(h, part, 100);
        struct conf_got back[CONF_N];
        size_t n = conf_take(h, part, back, CONF_N);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(back[i].idx, got[4].idx);
        }
    }
    /* held ones are acknowledged as usual; one left held is lost only after its hold */
    assert_int_equal(h->ops->queue_ack(h->ctx, part, held, 3), 0);
    conf_wait_reports(h, held, 3, SL_QUEUE_ACKED, false);
    conf_wait_reports(h, &held[3], 1, SL_QUEUE_LEASE_LOST, true);
    assert_true(conf_now(h) >= until);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(conf_reports_for(h, held[i]), 1);
    }
    conf_stop(h);
    conf_done(h);
}

void conf_queue_check_ack_retried(const struct conf_queue *cq)
{
    struct conf_h *h = conf_slot(0);
    conf_queue_prepare(h, cq, NULL, CONF_VISIBILITY_MS);
    cq->fail_deletes(cq->arg, conf_data[1], 2);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    struct conf_got got[CONF_N];
    conf_receive(h, part, got, CONF_N);
    uint64_t leases[CONF_N];
    for (size_t i = 0; i < CONF_N; i++) {
        leases[i] = got[i].lease;
    }
    assert_int_equal(h->ops->queue_ack(h->ctx, part, leases, CONF_N), 0);
    conf_wait_reports(h, leases, CONF_N, SL_QUEUE_ACKED, true);
    for (size_t i = 0; i < CONF_N; i++) {
        assert_int_equal(conf_reports_for(h, leases[i]), 1); /* once, and nothing lost */
        assert_false(cq->exists(cq->arg, conf_data[i]));
    }
    conf_stop(h);
    conf_done(h);
}

/* FIFO: record got[i] may be handed out only when every earlier message of its group is
 * deleted or came earlier in the same fetch (taken). */
static void conf_check_group_order(const struct conf_h *h,
                                   const char *const *groups,
                                   const int *state,
                                   const bool *taken,
                                   const struct conf_got *got)
{
    assert_string_equal(got->key, groups[got->idx]);
    for (size_t j = 0; j < got->idx; j++) {
        if (strcmp(groups[j], groups[got->idx]) == 0 && state[j] != CONF_Q_DELETED && !taken[j]) {
            fail_msg("%s: message %zu of group %s handed out while message %zu of it is %s",
                     h->cs->name, got->idx, groups[j], j,
                     state[j] == CONF_Q_HELD ? "in flight" : "not yet done");
        }
    }
}

void conf_queue_check_fifo_groups(const struct conf_queue *cq)
{
    static const char *const groups[CONF_N] = {"g1", "g2", "g1", "g2", "g1"};
    struct conf_h *h = conf_slot(0);
    conf_queue_prepare(h, cq, groups, CONF_VISIBILITY_MS);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    int state[CONF_N] = {CONF_Q_FREE};
    uint64_t lease_of[CONF_N] = {0};
    size_t order[CONF_N]; /* messages in the order they were deleted */
    size_t n_order = 0;
    bool released_g1 = false;
    /* The first fetch takes one record and keeps it in flight: the second must hand out
     * nothing more of its group. Then the held records of g1 fail as the mapping fails a
     * group (all of them, returned with visibility 0): they must come back, in order, before
     * anything later of g1. Everything else is acknowledged as it comes. */
    for (int round = 0; round < 40 && n_order < CONF_N; round++) {
        if (conf_fetch_once(h, part, round == 0 ? 1 : 100) == 0) {
            h->wakes = 0;
            if (!conf_spin(h, conf_woken)) {
                fail_msg("%s: messages left and no part_wake", cq->name);
            }
            continue;
        }
        struct conf_got got[CONF_N];
        size_t n = conf_take(h, part, got, CONF_N);
        bool taken[CONF_N] = {false};
        for (size_t i = 0; i < n; i++) {
            conf_check_group_order(h, groups, state, taken, &got[i]);
            taken[got[i].idx] = true;
            state[got[i].idx] = CONF_Q_HELD;
            lease_of[got[i].idx] = got[i].lease;
        }
        if (round == 0) {
            continue;
        }
        uint64_t ack[CONF_N];
        size_t acked[CONF_N];
        size_t n_ack = 0;
        for (size_t i = 0; i < CONF_N; i++) {
            if (state[i] != CONF_Q_HELD) {
                continue;
            }
            if (!released_g1 && strcmp(groups[i], "g1") == 0) {
                assert_int_equal(h->ops->queue_release(h->ctx, part, &lease_of[i], 1, 0), 0);
                state[i] = CONF_Q_FREE;
                continue;
            }
            acked[n_ack] = i;
            ack[n_ack++] = lease_of[i];
        }
        released_g1 = true;
        if (n_ack == 0) {
            continue;
        }
        assert_int_equal(h->ops->queue_ack(h->ctx, part, ack, n_ack), 0);
        conf_wait_reports(h, ack, n_ack, SL_QUEUE_ACKED, false);
        for (size_t i = 0; i < n_ack; i++) {
            state[acked[i]] = CONF_Q_DELETED;
            order[n_order++] = acked[i];
        }
    }
    assert_int_equal(n_order, CONF_N);
    /* each group was done in its send order */
    for (size_t i = 0; i < CONF_N; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(groups[order[i]], groups[order[j]]) == 0) {
                assert_true(order[j] < order[i]);
            }
        }
    }
    conf_stop(h);
    conf_done(h);
}

void conf_queue_check_stop(const struct conf_queue *cq)
{
    struct conf_h *h = conf_slot(0);
    conf_queue_prepare(h, cq, NULL, CONF_VISIBILITY_MS);
    cq->fail_deletes(cq->arg, conf_data[1], 3);
    conf_start(h);
    struct sl_part *part = conf_part(h);
    int64_t t0 = conf_now(h);
    struct conf_got got[CONF_N];
    conf_receive(h, part, got, CONF_N);
    uint64_t ack[2] = {got[0].lease, got[1].lease};
    assert_int_equal(h->ops->queue_ack(h->ctx, part, ack, 2), 0);
    assert_int_equal(h->ops->queue_hold(h->ctx, part, &got[2].lease, 1, t0 + h->vis * 10 / 3), 0);
    assert_int_equal(h->ops->queue_release(h->ctx, part, &got[3].lease, 1, 0), 0);
    assert_int_equal(conf_fetch_once(h, part, 100), 0); /* it owes a wake */
    h->ops->stop(h->ctx);
    h->stopped = true;
    /* deletes pending, a hold, a release, leases running out (the clock moving past every
     * lease and the hold): nothing may be reported now */
    conf_wait_until = t0 + h->vis * 20 / 3;
    if (!conf_wait(h, conf_clock_reached)) {
        fail_msg("%s: the clock did not reach the end of the wait", cq->name);
    }
    assert_int_equal(h->after_stop, 0);
    conf_stop(h);
    conf_done(h);
}
