/* SPDX-License-Identifier: Apache-2.0 */
/* conformance_source.c: the source conformance suite (conformance_source.h). It stands in for
 * the mapping: it allocates the adapter's ctx and applies its options, gives it an env whose
 * callbacks record what the source reports, owns the partitions, fetches, acknowledges and
 * releases as the mapping does, and checks the stream source contract of source.h through the
 * completed ops the registry hands out. It knows nothing of any one adapter: the driver in
 * struct conf_source makes the source's content. Waits run the loop to a condition under a
 * real-time deadline (test_run_until) while moving the fake clock forward; nothing sleeps. Loop
 * thread. */
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

/* One running instance of the adapter and the mapping it sees. */
struct conf_h {
    const struct conf_source *cs;
    const struct sl_source_ops *ops;
    uv_loop_t loop;
    struct sl_clock_fake clock;
    uv_timer_t tick; /* moves the fake clock while the loop waits */
    char arn[1024];
    cJSON *opts;
    struct sl_source_env env;
    void *ctx;
    bool inited;
    struct sl_part *parts[CONF_MAX_PARTS];
    size_t n_parts;
    const char *ckpt_pos; /* given to the next partition, as a stored checkpoint */
    const char *ckpt_meta;
    bool stopped;
    size_t after_stop; /* callbacks after stop */
    size_t unknown;    /* callbacks naming a partition the harness does not hold */
    size_t wakes;
    size_t gones;
    bool fetched; /* part_fetched came */
    int fetched_n;
};

static const char *const conf_data[] = {
    "{\"n\":0,\"text\":\"alpha\"}",   "{\"n\":1,\"text\":\"beta\"}",
    "{\"n\":2,\"text\":\"gamma\"}",   "{\"n\":3,\"text\":\"delta\"}",
    "{\"n\":4,\"text\":\"epsilon\"}",
};

static const char conf_more[] = "{\"n\":5,\"text\":\"zeta\"}";

static bool conf_known(struct conf_h *h, const struct sl_part *part)
{
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
    (void)conf_known(h, part);
    fail_msg("%s: part_revoke without a reason", h->cs->name);
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
    h->ops = sl_source_for_arn(h->arn);
    assert_non_null(h->ops);
}

/* Starts an instance over the prepared source, as sl_mapping_new and _start do. */
static void conf_start(struct conf_h *h)
{
    assert_int_equal(uv_loop_init(&h->loop), 0);
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
    if (r < 0) {
        fail_msg("%s: options: %s", h->cs->name, errs.n ? errs.items[0] : "?");
    }
    cJSON_Delete(empty);
    sl_errlist_fini(&errs);
    char err[512] = "";
    if (h->ops->check(h->ctx, h->arn, err, sizeof(err)) < 0) {
        fail_msg("%s: check: %s", h->cs->name, err);
    }
    h->env = (struct sl_source_env){
        .loop = &h->loop,
        .clock = &h->clock.clock,
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

/* Runs the loop (the fake clock moving) until cond holds or the deadline passes. */
static bool conf_wait(struct conf_h *h, bool (*cond)(void *arg))
{
    conf_tick_start(h);
    bool ok = test_run_until(&h->loop, cond, h, CONF_DEADLINE_MS);
    uv_timer_stop(&h->tick);
    return ok;
}

static struct sl_part *conf_part(struct conf_h *h)
{
    if (!conf_wait(h, conf_has_part)) {
        fail_msg("%s: no partition appeared", h->cs->name);
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
        if (conf_fetch_once(h, part, max) == 0) {
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
    size_t n = strlen(want);
    if (rec->len != n || memcmp(sl_recq_data(&part->q, rec), want, n) != 0) {
        fail_msg("%s: record %zu is \"%.*s\", want \"%s\"", h->cs->name, i, (int)rec->len,
                 sl_recq_data(&part->q, rec), want);
    }
}

/* Stops the instance and lets it go, as sl_mapping_free does; no handle may stay open. */
static void conf_stop(struct conf_h *h)
{
    uv_timer_stop(&h->tick);
    if (!h->stopped) {
        h->ops->stop(h->ctx);
        h->stopped = true;
    }
    for (size_t i = 0; i < h->n_parts; i++) {
        h->ops->part_release(h->ctx, h->parts[i]);
        sl_part_free(h->parts[i]);
    }
    h->n_parts = 0;
    h->ops->fini(h->ctx);
    sl_opt_free(h->ops->opts, h->ctx);
    free(h->ctx);
    h->ctx = NULL;
    uv_close((uv_handle_t *)&h->tick, NULL);
    for (int i = 0; i < 1000 && uv_loop_alive(&h->loop); i++) {
        (void)uv_run(&h->loop, UV_RUN_ONCE);
    }
    if (uv_loop_close(&h->loop) != 0) {
        fail_msg("%s: a handle is still open after stop and fini", h->cs->name);
    }
    assert_int_equal(h->after_stop, 0);
    assert_int_equal(h->unknown, 0);
}

static void conf_done(struct conf_h *h)
{
    cJSON_Delete(h->opts);
    h->opts = NULL;
}

void conf_source_check_partitions_appear(const struct conf_source *cs)
{
    struct conf_h h;
    conf_prepare(&h, cs, CONF_N);
    conf_start(&h);
    struct sl_part *part = conf_part(&h);
    assert_true(part->id[0] != '\0');
    assert_true(part->name[0] != '\0');
    assert_non_null(part->src);
    conf_stop(&h);
    conf_done(&h);
}

void conf_source_check_fetch_in_order(const struct conf_source *cs)
{
    struct conf_h h;
    conf_prepare(&h, cs, CONF_N);
    conf_start(&h);
    struct sl_part *part = conf_part(&h);
    conf_fetch_until(&h, part, CONF_N, 2); /* two at most per fetch */
    for (size_t i = 0; i < CONF_N; i++) {
        const struct sl_record *rec = sl_recq_at(&part->q, i);
        conf_assert_data(&h, part, i, conf_data[i]);
        assert_true(rec->pos < rec->next_pos);
        if (i > 0) {
            assert_true(sl_recq_at(&part->q, i - 1)->next_pos <= rec->pos);
        }
    }
    /* nothing more now; one added record wakes the mapping and comes next */
    assert_int_equal(conf_fetch_once(&h, part, 100), 0);
    h.wakes = 0;
    cs->append(cs->arg, conf_more);
    if (!conf_wait(&h, conf_woken)) {
        fail_msg("%s: no part_wake after a record was added", cs->name);
    }
    conf_fetch_until(&h, part, CONF_N + 1, 100);
    conf_assert_data(&h, part, CONF_N, conf_more);
    assert_true(sl_recq_at(&part->q, CONF_N - 1)->next_pos <= sl_recq_at(&part->q, CONF_N)->pos);
    conf_stop(&h);
    conf_done(&h);
}

void conf_source_check_positions_round_trip(const struct conf_source *cs)
{
    struct conf_h h;
    conf_prepare(&h, cs, CONF_N);
    conf_start(&h);
    struct sl_part *part = conf_part(&h);
    conf_fetch_until(&h, part, CONF_N, 100);
    char ids[CONF_N][CONF_TEXT];
    for (size_t i = 0; i < CONF_N; i++) {
        const struct sl_record *rec = sl_recq_at(&part->q, i);
        assert_int_equal(h.ops->format_item_id(h.ctx, part, rec, ids[i], CONF_TEXT), 0);
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
    assert_int_equal(h.ops->format_pos(h.ctx, part, sl_recq_at(&part->q, 1), pos, sizeof(pos)), 0);
    assert_true(pos[0] != '\0');
    bool has_meta = part->meta != NULL;
    if (has_meta) {
        (void)snprintf(meta, sizeof(meta), "%s", part->meta);
    }
    conf_stop(&h);
    /* a new instance, the checkpoint stored: it resumes at record 2 */
    struct conf_h again;
    memset(&again, 0, sizeof(again));
    again.cs = cs;
    again.ops = h.ops;
    again.opts = h.opts;
    (void)snprintf(again.arn, sizeof(again.arn), "%s", h.arn);
    again.ckpt_pos = pos;
    again.ckpt_meta = has_meta ? meta : NULL;
    conf_start(&again);
    part = conf_part(&again);
    conf_fetch_until(&again, part, CONF_N - 2, 100);
    conf_assert_data(&again, part, 0, conf_data[2]);
    char id[CONF_TEXT];
    assert_int_equal(
        again.ops->format_item_id(again.ctx, part, sl_recq_at(&part->q, 0), id, sizeof(id)), 0);
    assert_string_equal(id, ids[2]); /* the same record has the same item id */
    conf_stop(&again);
    conf_done(&h);
}

void conf_source_check_ack_after_done(const struct conf_source *cs)
{
    struct conf_h h;
    conf_prepare(&h, cs, CONF_N);
    conf_start(&h);
    struct sl_part *part = conf_part(&h);
    conf_fetch_until(&h, part, 3, 3);
    /* records 0..2 are done: acknowledged in order, once per advance, then dropped */
    h.ops->ack(h.ctx, part, sl_recq_at(&part->q, 1));
    h.ops->ack(h.ctx, part, sl_recq_at(&part->q, 2));
    sl_recq_drop(&part->q, 3);
    conf_fetch_until(&h, part, CONF_N - 3, 100);
    conf_assert_data(&h, part, 0, conf_data[3]);
    conf_assert_data(&h, part, 1, conf_data[4]);
    conf_stop(&h);
    conf_done(&h);
}

void conf_source_check_part_gone(const struct conf_source *cs)
{
    struct conf_h h;
    conf_prepare(&h, cs, CONF_N);
    conf_start(&h);
    struct sl_part *part = conf_part(&h);
    conf_fetch_until(&h, part, CONF_N, 100);
    assert_int_equal(conf_fetch_once(&h, part, 100), 0);
    cs->end(cs->arg);
    if (!conf_wait(&h, conf_is_gone)) {
        fail_msg("%s: no part_gone after the partition ended", cs->name);
    }
    /* the mapping lets it go; nothing of it may come back */
    h.ops->part_release(h.ctx, part);
    sl_part_free(part);
    h.n_parts = 0;
    h.wakes = 0;
    conf_tick_start(&h);
    for (int i = 0; i < 50; i++) {
        (void)uv_run(&h.loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(h.gones, 1);
    assert_int_equal(h.wakes, 0);
    conf_stop(&h);
    conf_done(&h);
}

void conf_source_check_stop(const struct conf_source *cs)
{
    struct conf_h h;
    conf_prepare(&h, cs, CONF_N);
    conf_start(&h);
    struct sl_part *part = conf_part(&h);
    conf_fetch_until(&h, part, CONF_N, 100);
    assert_int_equal(conf_fetch_once(&h, part, 100), 0); /* it owes a wake now */
    h.ops->stop(h.ctx);
    h.stopped = true;
    cs->append(cs->arg, conf_more); /* would wake it, were it running */
    cs->end(cs->arg);
    conf_tick_start(&h);
    for (int i = 0; i < 50; i++) {
        (void)uv_run(&h.loop, UV_RUN_NOWAIT);
    }
    assert_int_equal(h.after_stop, 0);
    conf_stop(&h);
    conf_done(&h);
}
