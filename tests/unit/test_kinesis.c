/* SPDX-License-Identifier: Apache-2.0 */
/* test_kinesis.c: the Kinesis source's own behaviour, driven op by op with a small owner
 * standing in for the mapping, against the scripted Kinesis server (kinesis_peer.c): the ARN's
 * checks, ListShards pages and the lineage rule, a closed shard's end recorded in the checkpoint
 * and not read again, starting positions and checkpoint resume (the iterator types asked for),
 * Limit from the budget, throttling and an expired iterator, and the event a function receives.
 * Time is a fake clock that a loop timer moves forward while a test waits; nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "config.h"
#include "errlist.h"
#include "helpers.h"
#include "kinesis_peer.h"
#include "log.h"
#include "md5.h"
#include "source.h"

#define ARN "arn:aws:kinesis:us-east-1:123456789012:stream/s"

struct ck {
    const char *id, *pos, *meta;
};

struct owner {
    uv_loop_t loop;
    uv_timer_t tick;
    struct sl_clock_fake clock;
    const struct sl_source_ops *ops;
    void *ctx;
    cJSON *opts;
    struct sl_source_env env;
    struct sl_part *parts[8];
    size_t n_parts;
    const struct ck *cks;
    int wakes, gones;
    bool fetched;
    int fetched_n;
    char set_start[128];
};

static struct kpeer peer;

static int own_part_add(void *owner, const char *id, const char *name, struct sl_part **ret)
{
    struct owner *o = owner;
    struct sl_part *part = sl_part_new(id, name);
    assert_non_null(part);
    for (const struct ck *c = o->cks; c && c->id; c++) {
        if (strcmp(c->id, id) == 0) {
            assert_int_equal(sl_part_set_checkpoint(part, c->pos, c->meta), 0);
        }
    }
    assert_true(o->n_parts < 8);
    o->parts[o->n_parts++] = part;
    *ret = part;
    return 0;
}

static void own_part_wake(void *owner, struct sl_part *part)
{
    (void)part;
    ((struct owner *)owner)->wakes++;
}

static void own_part_fetched(void *owner, struct sl_part *part, int n)
{
    (void)part;
    struct owner *o = owner;
    o->fetched = true;
    o->fetched_n = n;
}

static void own_part_gone(void *owner, struct sl_part *part)
{
    (void)part;
    ((struct owner *)owner)->gones++;
}

static int own_part_set_start(void *owner, struct sl_part *part, const char *pos)
{
    (void)part;
    (void)snprintf(((struct owner *)owner)->set_start, 128, "%s", pos);
    return 0;
}

static void own_tick_cb(uv_timer_t *t)
{
    struct owner *o = t->data;
    sl_clock_fake_advance(&o->clock, 50);
}

/* Starts the source over the peer with the options in extra (a JSON object's members). */
static void
own_start(struct owner *o, const char *extra, int start, int64_t ts_ms, const struct ck *cks)
{
    memset(o, 0, sizeof(*o));
    o->cks = cks;
    assert_int_equal(uv_loop_init(&o->loop), 0);
    sl_clock_fake_init(&o->clock, 1000000, INT64_C(1700000000000));
    uv_timer_init(&o->loop, &o->tick);
    o->tick.data = o;
    uv_timer_start(&o->tick, own_tick_cb, 1, 1);
    o->ops = sl_source_for_arn(ARN);
    assert_non_null(o->ops);
    o->ctx = calloc(1, o->ops->ctx_size);
    char json[512];
    (void)snprintf(json, sizeof(json),
                   "{\"endpoint_url\":\"%s\",\"shard_refresh_interval\":\"200ms\",%s}",
                   peer.endpoint, extra ? extra : "\"poll_interval\":\"100ms\"");
    o->opts = cJSON_Parse(json);
    assert_non_null(o->opts);
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_opt_target t = {.table = o->ops->opts, .base = o->ctx};
    assert_int_equal(sl_opt_apply(&t, 1, o->opts, "test", "$", &errs), 0);
    sl_errlist_fini(&errs);
    char err[512] = "";
    assert_int_equal(o->ops->check(o->ctx, ARN, err, sizeof(err)), 0);
    o->env = (struct sl_source_env){
        .loop = &o->loop,
        .clock = &o->clock.clock,
        .inst = "test",
        .region = "us-east-1",
        .arn = ARN,
        .starting_position = start,
        .starting_position_ts_ms = ts_ms,
        .max_records_buffered = 10000,
        .max_bytes_buffered = 16 << 20,
        .owner = o,
        .part_add = own_part_add,
        .part_wake = own_part_wake,
        .part_fetched = own_part_fetched,
        .part_gone = own_part_gone,
        .part_set_start = own_part_set_start,
    };
    assert_int_equal(o->ops->init(o->ctx, &o->env, err, sizeof(err)), 0);
    assert_int_equal(o->ops->start(o->ctx), 0);
}

static void own_stop(struct owner *o)
{
    o->ops->stop(o->ctx);
    for (size_t i = 0; i < o->n_parts; i++) {
        if (o->parts[i]) {
            o->ops->part_release(o->ctx, o->parts[i]);
            sl_part_free(o->parts[i]);
        }
    }
    o->ops->fini(o->ctx);
    sl_opt_free(o->ops->opts, o->ctx);
    free(o->ctx);
    cJSON_Delete(o->opts);
    test_close_all(&o->loop);
    assert_int_equal(uv_loop_close(&o->loop), 0);
}

static size_t want_parts;

static bool has_parts(void *arg)
{
    return ((struct owner *)arg)->n_parts >= want_parts;
}

static bool was_fetched(void *arg)
{
    return ((struct owner *)arg)->fetched;
}

static bool was_woken(void *arg)
{
    return ((struct owner *)arg)->wakes > 0;
}

static bool is_gone(void *arg)
{
    return ((struct owner *)arg)->gones > 0;
}

static unsigned want_calls;

static bool polled(void *arg)
{
    (void)arg;
    return kpeer_count(&peer, &peer.calls_records) >= want_calls;
}

static void wait_parts(struct owner *o, size_t n)
{
    want_parts = n;
    if (!test_run_until(&o->loop, has_parts, o, 5000)) {
        fail_msg("%zu partitions, want %zu", o->n_parts, n);
    }
}

static struct sl_part *part_named(struct owner *o, const char *id)
{
    for (size_t i = 0; i < o->n_parts; i++) {
        if (o->parts[i] && strcmp(o->parts[i]->id, id) == 0) {
            return o->parts[i];
        }
    }
    fail_msg("no partition %s", id);
    return NULL;
}

/* One fetch, waited for: the records appended. */
static int fetch_once(struct owner *o, struct sl_part *part, size_t max)
{
    o->fetched = false;
    int r = o->ops->fetch(o->ctx, part, max, 1 << 20);
    if (r == SL_EINPROGRESS) {
        assert_true(test_run_until(&o->loop, was_fetched, o, 5000));
        r = o->fetched_n;
    }
    return r;
}

/* Fetches until part's queue holds want records. */
static void fetch_until(struct owner *o, struct sl_part *part, size_t want)
{
    for (int turn = 0; turn < 200 && sl_recq_count(&part->q) < want; turn++) {
        int r = fetch_once(o, part, 100);
        assert_true(r >= 0);
        if (r == 0) {
            o->wakes = 0;
            assert_true(test_run_until(&o->loop, was_woken, o, 5000));
        }
    }
    assert_int_equal(sl_recq_count(&part->q), want);
}

/* Record i's payload is want[0..n) (decoded when the queue keeps it as base64). */
static void data_is_n(struct sl_part *part, size_t i, const char *want, size_t n)
{
    const struct sl_record *rec = sl_recq_at(&part->q, i);
    struct sl_buf raw;
    sl_buf_init(&raw);
    const char *data;
    size_t len;
    assert_int_equal(sl_recq_payload(&part->q, rec, &raw, &data, &len), 0);
    assert_int_equal(len, n);
    assert_int_equal(sl_recq_payload_len(&part->q, rec), len);
    assert_memory_equal(data, want, len);
    sl_buf_fini(&raw);
}

static void data_is(struct sl_part *part, size_t i, const char *want)
{
    data_is_n(part, i, want, strlen(want));
}

static int setup(void **state)
{
    (void)state;
    static const char *const one[] = {"shardId-000000000000", NULL};
    kpeer_start(&peer, "s", one);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kpeer_stop(&peer);
    return 0;
}

/* Each ARN problem is named, with what is allowed. */
static void test_kinesis_check_arn(void **state)
{
    (void)state;
    const struct sl_source_ops *ops = sl_source_for_arn(ARN);
    assert_non_null(ops);
    assert_string_equal(ops->name, "kinesis");
    void *ctx = calloc(1, ops->ctx_size);
    char err[512];
    static const struct {
        const char *arn, *says;
    } bad[] = {
        {"arn:aws:kinesis:us-east-1:123456789012:stream/", "stream name"},
        {"arn:aws:kinesis:us-east-1:123456789012:stream/a b", "stream name"},
        {"arn:aws:kinesis:us-east-1:1234:stream/s", "12 digits"},
        {"arn:aws:kinesis::123456789012:stream/s", "region"},
        {"arn:aws:kinesis:us-east-1:123456789012:table/s", "does not name a stream"},
        {"arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c:1", "fan-out"},
        {"arn:aws:kinesis:us-east-1", "not a Kinesis stream ARN"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(ops->check(ctx, bad[i].arn, err, sizeof(err)), SL_ECONFIG);
        if (strncmp(err, "EventSourceArn: ", 16) != 0 || !strstr(err, bad[i].says) ||
            !strstr(err, "arn:aws:kinesis:REGION:ACCOUNT:stream/NAME")) {
            fail_msg("%s: %s", bad[i].arn, err);
        }
    }
    assert_int_equal(ops->check(ctx, ARN, err, sizeof(err)), 0);
    /* every problem, one a line, each starting with its key */
    cJSON *opts = cJSON_Parse("{\"endpoint_url\":\"ftp://x\",\"invoke_identity_arn\":\"role\"}");
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_opt_target t = {.table = ops->opts, .base = ctx};
    assert_int_equal(sl_opt_apply(&t, 1, opts, "test", "$", &errs), 0);
    sl_errlist_fini(&errs);
    assert_int_equal(ops->check(ctx, "arn:aws:kinesis:us-east-1:1:stream/s", err, sizeof(err)),
                     SL_ECONFIG);
    assert_non_null(strstr(err, "EventSourceArn: "));
    assert_non_null(strstr(err, "\nendpoint_url: \"ftp://x\" is not a URL; allowed: "));
    assert_non_null(strstr(err, "\ninvoke_identity_arn: \"role\" is not an ARN; allowed: "));
    sl_opt_free(ops->opts, ctx);
    cJSON_Delete(opts);
    free(ctx);
}

/* ListShards is read page by page; a child starts only after its parent was read to its end
 * and released, from its start (TRIM_HORIZON); the parent's end is in its meta. */
static void test_kinesis_pages_and_lineage(void **state)
{
    (void)state;
    peer.page_size = 1;
    kpeer_put(&peer, 0, "a", "a0");
    kpeer_put(&peer, 0, "a", "a1");
    kpeer_close(&peer, 0);
    kpeer_add_shard(&peer, "shardId-000000000001", "shardId-000000000000", NULL);
    kpeer_add_shard(&peer, "shardId-000000000002", NULL, NULL);
    kpeer_put(&peer, 1, "b", "b0");
    kpeer_put(&peer, 2, "c", "c0");
    struct owner o;
    own_start(&o, NULL, SL_START_LATEST, 0, NULL);
    wait_parts(&o, 2);
    assert_true(kpeer_count(&peer, &peer.calls_list) >= 3); /* three pages */
    struct sl_part *a = part_named(&o, "shardId-000000000000");
    (void)part_named(&o, "shardId-000000000002");
    assert_int_equal(o.n_parts, 2); /* not the child */
    assert_string_equal(a->name, "shardId-000000000000");
    /* a parent that was listed closed is read with the starting position (LATEST here): the
     * closed shard has nothing after LATEST, so it ends with nothing read */
    assert_int_equal(fetch_once(&o, a, 100), 0);
    assert_true(test_run_until(&o.loop, is_gone, &o, 5000));
    assert_string_equal(a->meta, "end=");
    o.ops->part_release(o.ctx, a);
    o.parts[0] == a ? (void)(o.parts[0] = NULL) : (void)(o.parts[1] = NULL);
    sl_part_free(a);
    wait_parts(&o, 3);
    struct sl_part *b = part_named(&o, "shardId-000000000001");
    fetch_until(&o, b, 1);
    assert_string_equal(peer.last_iter_type, "TRIM_HORIZON"); /* a child: from its start */
    data_is(b, 0, "b0");
    own_stop(&o);
}

/* A shard read to its end: its meta says where; a restart that finds that in the checkpoint
 * does not read it again, and starts its child. */
static void test_kinesis_closed_shard_recorded(void **state)
{
    (void)state;
    kpeer_put(&peer, 0, "a", "a0");
    kpeer_put(&peer, 0, "a", "a1");
    kpeer_close(&peer, 0);
    kpeer_add_shard(&peer, "shardId-000000000001", "shardId-000000000000", NULL);
    struct owner o;
    own_start(&o, NULL, SL_START_TRIM_HORIZON, 0, NULL);
    wait_parts(&o, 1);
    struct sl_part *a = o.parts[0];
    fetch_until(&o, a, 2);
    char seq1[64], pos[128];
    kpeer_seq(0, 1, seq1);
    char want_meta[80];
    (void)snprintf(want_meta, sizeof(want_meta), "end=%s", seq1);
    if (a->meta == NULL || strcmp(a->meta, want_meta) != 0) {
        int r = fetch_once(&o, a, 100); /* the end may come with the next page */
        assert_int_equal(r, 0);
    }
    assert_string_equal(a->meta, want_meta);
    assert_true(test_run_until(&o.loop, is_gone, &o, 5000));
    assert_int_equal(o.ops->format_pos(o.ctx, a, sl_recq_at(&a->q, 1), pos, sizeof(pos)), 0);
    assert_string_equal(pos, seq1);
    own_stop(&o);

    unsigned before = kpeer_count(&peer, &peer.calls_records);
    const struct ck cks[] = {{"shardId-000000000000", seq1, want_meta}, {0}};
    own_start(&o, NULL, SL_START_TRIM_HORIZON, 0, cks);
    wait_parts(&o, 1);
    assert_true(test_run_until(&o.loop, is_gone, &o, 5000));
    assert_int_equal(kpeer_count(&peer, &peer.calls_records), before); /* not read again */
    a = o.parts[0];
    o.ops->part_release(o.ctx, a);
    sl_part_free(a);
    o.parts[0] = NULL;
    wait_parts(&o, 2);
    assert_string_equal(o.parts[1]->id, "shardId-000000000001");
    own_stop(&o);
}

/* A checkpoint resumes AFTER_SEQUENCE_NUMBER of it; positions, item ids and their order. */
static void test_kinesis_checkpoint_resume(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        char d[8];
        (void)snprintf(d, sizeof(d), "r%d", i);
        kpeer_put(&peer, 0, "k", d);
    }
    char seq1[64], seq2[64], seq3[64], buf[128];
    kpeer_seq(0, 1, seq1);
    kpeer_seq(0, 2, seq2);
    kpeer_seq(0, 3, seq3);
    const struct ck cks[] = {{"shardId-000000000000", seq1, NULL}, {0}};
    struct owner o;
    own_start(&o, NULL, SL_START_TRIM_HORIZON, 0, cks);
    wait_parts(&o, 1);
    struct sl_part *p = o.parts[0];
    fetch_until(&o, p, 2);
    assert_string_equal(peer.last_iter_type, "AFTER_SEQUENCE_NUMBER");
    assert_string_equal(peer.last_iter_seq, seq1);
    data_is(p, 0, "r2");
    const struct sl_record *r2 = sl_recq_at(&p->q, 0), *r3 = sl_recq_at(&p->q, 1);
    assert_int_equal(o.ops->format_item_id(o.ctx, p, r2, buf, sizeof(buf)), 0);
    assert_string_equal(buf, seq2);
    assert_int_equal(o.ops->format_pos(o.ctx, p, r3, buf, sizeof(buf)), 0);
    assert_string_equal(buf, seq3);
    assert_true(o.ops->compare_pos(o.ctx, sl_recq_pos(&p->q, r2), r2->pos_len,
                                   sl_recq_pos(&p->q, r3), r3->pos_len) < 0);
    assert_true(r2->pos_len > 16); /* 56 digits: in the arena, not a 64-bit number */
    own_stop(&o);
}

/* LATEST skips what is there; AT_TIMESTAMP starts at the first record at or after it. */
static void test_kinesis_starting_positions(void **state)
{
    (void)state;
    kpeer_put(&peer, 0, "k", "old0");
    kpeer_put(&peer, 0, "k", "old1");
    kpeer_put(&peer, 0, "k", "old2");
    struct owner o;
    own_start(&o, NULL, SL_START_LATEST, 0, NULL);
    wait_parts(&o, 1);
    struct sl_part *p = o.parts[0];
    assert_int_equal(fetch_once(&o, p, 100), 0);
    assert_string_equal(peer.last_iter_type, "LATEST");
    /* the LATEST start is recorded, so that a restart before anything is done does not
     * choose LATEST again */
    assert_string_equal(o.set_start, "0");
    assert_non_null(p->meta);
    assert_true(strncmp(p->meta, "at=", 3) == 0);
    char meta[64];
    (void)snprintf(meta, sizeof(meta), "%s", p->meta);
    assert_true(atoll(meta + 3) <= sl_clock_wall_ms(&o.clock.clock) - 1000);
    kpeer_put(&peer, 0, "k", "new");
    fetch_until(&o, p, 1);
    data_is(p, 0, "new");
    own_stop(&o);

    const struct ck cks[] = {{"shardId-000000000000", "0", meta}, {0}};
    own_start(&o, NULL, SL_START_LATEST, 0, cks);
    wait_parts(&o, 1);
    p = o.parts[0];
    assert_true(fetch_once(&o, p, 100) >= 0);
    assert_string_equal(peer.last_iter_type, "AT_TIMESTAMP");
    own_stop(&o);

    own_start(&o, NULL, SL_START_AT_TIMESTAMP, INT64_C(1700000001000), NULL);
    wait_parts(&o, 1);
    p = o.parts[0];
    fetch_until(&o, p, 3);
    assert_string_equal(peer.last_iter_type, "AT_TIMESTAMP");
    data_is(p, 0, "old1");
    own_stop(&o);
}

/* GetRecords' Limit is what the budget allows, at most 10,000; after an empty page the shard
 * is polled every poll_interval from the source's own timer (no wake while it stays empty), and
 * what a poll finds is handed out by the next fetch at once, which then reads on with a Limit
 * from the budget again. */
static void test_kinesis_limit_and_pacing(void **state)
{
    (void)state;
    struct owner o;
    own_start(&o, "\"poll_interval\":\"300ms\"", SL_START_TRIM_HORIZON, 0, NULL);
    wait_parts(&o, 1);
    struct sl_part *p = o.parts[0];
    assert_int_equal(fetch_once(&o, p, 7), 0);
    assert_int_equal(peer.last_limit, 7);
    unsigned calls = kpeer_count(&peer, &peer.calls_records);
    int64_t t0 = sl_clock_now_ms(&o.clock.clock);
    o.wakes = 0;
    assert_int_equal(o.ops->fetch(o.ctx, p, 50000, 1 << 20), 0); /* waits: no call */
    assert_int_equal(kpeer_count(&peer, &peer.calls_records), calls);
    want_calls = calls + 2;
    assert_true(test_run_until(&o.loop, polled, &o, 5000)); /* two empty polls */
    assert_true(sl_clock_now_ms(&o.clock.clock) - t0 >= 2 * 300 - 50);
    assert_int_equal(peer.last_limit, 1); /* a poll asks for one: it is held outside the budget */
    assert_int_equal(o.wakes, 0);
    kpeer_put(&peer, 0, "k", "late");
    assert_true(test_run_until(&o.loop, was_woken, &o, 5000));
    kpeer_put(&peer, 0, "k", "later");
    assert_int_equal(o.ops->fetch(o.ctx, p, 20000, 1 << 20), 1); /* at once: the poll's */
    data_is(p, 0, "late");
    fetch_until(&o, p, 2);
    data_is(p, 1, "later");
    assert_int_equal(peer.last_limit, 100); /* fetch_until's budget again */
    for (int i = 0; i < 5 && peer.last_limit != 10000; i++) {
        o.wakes = 0;
        if (fetch_once(&o, p, 50000) == 0 && peer.last_limit != 10000) {
            assert_true(test_run_until(&o.loop, was_woken, &o, 5000));
        }
    }
    assert_int_equal(peer.last_limit, 10000); /* a budget of 50,000: 10,000 at most */
    own_stop(&o);
}

/* Throttling answers back off and try again; nothing is lost. */
static void test_kinesis_throttled(void **state)
{
    (void)state;
    kpeer_put(&peer, 0, "k", "r0");
    kpeer_put(&peer, 0, "k", "r1");
    kpeer_fail(&peer, "GetRecords", 400, "ProvisionedThroughputExceededException", 2);
    kpeer_fail(&peer, "ListShards", 400, "LimitExceededException", 1);
    struct owner o;
    own_start(&o, NULL, SL_START_TRIM_HORIZON, 0, NULL);
    wait_parts(&o, 1);
    struct sl_part *p = o.parts[0];
    fetch_until(&o, p, 2);
    data_is(p, 0, "r0");
    data_is(p, 1, "r1");
    assert_int_equal(kpeer_count(&peer, &peer.calls_records), 1); /* + the 2 refused */
    own_stop(&o);
}

/* An expired iterator is renewed AFTER_SEQUENCE_NUMBER of the last record fetched. */
static void test_kinesis_expired_iterator(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        char d[8];
        (void)snprintf(d, sizeof(d), "r%d", i);
        kpeer_put(&peer, 0, "k", d);
    }
    struct owner o;
    own_start(&o, NULL, SL_START_TRIM_HORIZON, 0, NULL);
    wait_parts(&o, 1);
    struct sl_part *p = o.parts[0];
    assert_int_equal(fetch_once(&o, p, 2), 2);
    kpeer_fail(&peer, "GetRecords", 400, "ExpiredIteratorException", 1);
    fetch_until(&o, p, 4);
    char seq1[64];
    kpeer_seq(0, 1, seq1);
    assert_string_equal(peer.last_iter_type, "AFTER_SEQUENCE_NUMBER");
    assert_string_equal(peer.last_iter_seq, seq1);
    data_is(p, 2, "r2");
    data_is(p, 3, "r3");
    own_stop(&o);
}

/* The event is AWS's Kinesis event, field by field (esm.md §2). */
static void test_kinesis_event(void **state)
{
    (void)state;
    kpeer_put(&peer, 0, "key-1", "Hello");
    struct owner o;
    own_start(&o, NULL, SL_START_TRIM_HORIZON, 0, NULL);
    wait_parts(&o, 1);
    struct sl_part *p = o.parts[0];
    fetch_until(&o, p, 1);
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(o.ops->encode_record(o.ctx, p, sl_recq_at(&p->q, 0), &b), 0);
    char seq[64], want[1024];
    kpeer_seq(0, 0, seq);
    (void)snprintf(want, sizeof(want),
                   "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"key-1\","
                   "\"sequenceNumber\":\"%s\",\"data\":\"SGVsbG8=\","
                   "\"approximateArrivalTimestamp\":1700000000.000},\"eventSource\":"
                   "\"aws:kinesis\",\"eventVersion\":\"1.0\",\"eventID\":"
                   "\"shardId-000000000000:%s\",\"eventName\":\"aws:kinesis:record\","
                   "\"invokeIdentityArn\":\"arn:aws:iam::123456789012:role/sluice\","
                   "\"eventSourceARN\":\"" ARN "\",\"awsRegion\":\"us-east-1\"}",
                   seq, seq);
    assert_string_equal(b.data, want);
    sl_buf_fini(&b);
    cJSON *doc = o.ops->filter_doc(o.ctx, p, sl_recq_at(&p->q, 0));
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "data")->valuestring, "Hello");
    cJSON_Delete(doc);
    assert_int_equal(o.ops->lag(o.ctx, p), 0);
    own_stop(&o);
}

/* The event's data is Data exactly as Kinesis stored it, copied rather than decoded and
 * encoded again: "QR==" decodes to "A", which would encode as "QQ==". The queue keeps the
 * base64 (SL_REC_BASE64); the filter document and the size count see the payload itself.
 * With deaggregate, a record that is not an aggregate is kept as stored too. */
static void test_kinesis_data_as_stored(void **state)
{
    (void)state;
    kpeer_put_stored(&peer, 0, "k", "QR==");
    kpeer_put(&peer, 0, "k", "{\"n\":7}");
    kpeer_put(&peer, 0, "k", "");
    for (int deagg = 0; deagg < 2; deagg++) {
        struct owner o;
        own_start(&o,
                  deagg ? "\"poll_interval\":\"100ms\",\"deaggregate\":true"
                        : "\"poll_interval\":\"100ms\"",
                  SL_START_TRIM_HORIZON, 0, NULL);
        wait_parts(&o, 1);
        struct sl_part *p = o.parts[0];
        fetch_until(&o, p, 3);
        const struct sl_record *rec = sl_recq_at(&p->q, 0);
        assert_true(rec->flags & SL_REC_BASE64);
        assert_int_equal(rec->len, 4);
        data_is(p, 0, "A");
        data_is(p, 1, "{\"n\":7}");
        data_is(p, 2, "");
        struct sl_buf b;
        sl_buf_init(&b);
        assert_int_equal(o.ops->encode_record(o.ctx, p, rec, &b), 0);
        assert_non_null(strstr(b.data, ",\"data\":\"QR==\","));
        sl_buf_truncate(&b, 0);
        assert_int_equal(o.ops->encode_record(o.ctx, p, sl_recq_at(&p->q, 2), &b), 0);
        assert_non_null(strstr(b.data, ",\"data\":\"\","));
        sl_buf_fini(&b);
        cJSON *doc = o.ops->filter_doc(o.ctx, p, rec);
        assert_non_null(doc);
        assert_string_equal(cJSON_GetObjectItem(doc, "data")->valuestring, "A");
        cJSON_Delete(doc);
        doc = o.ops->filter_doc(o.ctx, p, sl_recq_at(&p->q, 1));
        assert_non_null(doc);
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "data"), "n")->valueint, 7);
        cJSON_Delete(doc);
        own_stop(&o);
    }
}

/* ---- KPL aggregates (wire.md §5) ---- */

/* One user record of an aggregate built by agg_build. */
struct ur {
    unsigned key; /* index into the key table */
    int ehk;      /* index into the explicit hash key table, -1: none */
    const char *data;
};

static void pb_varint(struct sl_buf *b, uint64_t v)
{
    do {
        unsigned char c = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) {
            c |= 0x80;
        }
        assert_int_equal(sl_buf_append(b, &c, 1), 0);
    } while (v);
}

static void pb_bytes(struct sl_buf *b, unsigned tag, const void *p, size_t n)
{
    pb_varint(b, tag);
    pb_varint(b, n);
    assert_int_equal(sl_buf_append(b, p, n), 0);
}

/* An aggregate as the KPL writes it: magic, AggregatedRecord, MD5 of it. */
static void agg_build(struct sl_buf *out,
                      const char *const *keys,
                      const char *const *ehks,
                      const struct ur *urs,
                      size_t n)
{
    struct sl_buf pb, rec;
    sl_buf_init(&pb);
    sl_buf_init(&rec);
    for (size_t i = 0; keys[i]; i++) {
        pb_bytes(&pb, 0x0a, keys[i], strlen(keys[i]));
    }
    for (size_t i = 0; ehks && ehks[i]; i++) {
        pb_bytes(&pb, 0x12, ehks[i], strlen(ehks[i]));
    }
    for (size_t i = 0; i < n; i++) {
        sl_buf_truncate(&rec, 0);
        pb_varint(&rec, 0x08);
        pb_varint(&rec, urs[i].key);
        if (urs[i].ehk >= 0) {
            pb_varint(&rec, 0x10);
            pb_varint(&rec, (uint64_t)urs[i].ehk);
        }
        pb_bytes(&rec, 0x1a, urs[i].data, strlen(urs[i].data));
        pb_bytes(&pb, 0x1a, rec.data, rec.len);
    }
    unsigned char md5[SL_MD5_LEN];
    sl_md5(pb.data, pb.len, md5);
    sl_buf_truncate(out, 0);
    assert_int_equal(sl_buf_append(out, "\xf3\x89\x9a\xc2", 4), 0);
    assert_int_equal(sl_buf_append(out, pb.data, pb.len), 0);
    assert_int_equal(sl_buf_append(out, md5, sizeof(md5)), 0);
    sl_buf_fini(&pb);
    sl_buf_fini(&rec);
}

static void pos_is(struct owner *o, struct sl_part *p, size_t i, const char *want)
{
    char buf[160];
    assert_int_equal(o->ops->format_pos(o->ctx, p, sl_recq_at(&p->q, i), buf, sizeof(buf)), 0);
    assert_string_equal(buf, want);
    assert_int_equal(o->ops->format_item_id(o->ctx, p, sl_recq_at(&p->q, i), buf, sizeof(buf)), 0);
    assert_string_equal(buf, want);
}

static void key_is(struct sl_part *p, size_t i, const char *want)
{
    const struct sl_record *rec = sl_recq_at(&p->q, i);
    assert_int_equal(rec->meta_len, strlen(want));
    assert_memory_equal(sl_recq_meta(&p->q, rec), want, rec->meta_len);
}

static const char *const agg_keys[] = {"alpha", "beta", NULL};
static const struct ur agg_urs[] = {{0, -1, "u0"}, {1, -1, "u1"}, {0, -1, "u2"}};

/* deaggregate: an aggregate becomes its user records (sub-sequence numbers, keys from the
 * table, their own data and events); a plain record beside it stays as it is. Without the
 * option the aggregate is delivered as stored, as Lambda does. */
static void test_kinesis_deaggregate(void **state)
{
    (void)state;
    struct sl_buf agg;
    sl_buf_init(&agg);
    agg_build(&agg, agg_keys, NULL, agg_urs, 3);
    kpeer_put_bin(&peer, 0, "outer", agg.data, agg.len);
    kpeer_put(&peer, 0, "k", "plain");
    char seq0[64], seq1[64], want[160];
    kpeer_seq(0, 0, seq0);
    kpeer_seq(0, 1, seq1);

    struct owner o;
    own_start(&o, "\"poll_interval\":\"100ms\",\"deaggregate\":true", SL_START_TRIM_HORIZON, 0,
              NULL);
    wait_parts(&o, 1);
    struct sl_part *p = o.parts[0];
    fetch_until(&o, p, 4);
    for (size_t i = 0; i < 3; i++) {
        (void)snprintf(want, sizeof(want), "%s:%zu", seq0, i);
        pos_is(&o, p, i, want);
        data_is(p, i, agg_urs[i].data);
        key_is(p, i, agg_keys[agg_urs[i].key]);
    }
    pos_is(&o, p, 3, seq1);
    data_is(p, 3, "plain");
    for (size_t i = 0; i + 1 < 4; i++) {
        const struct sl_record *a = sl_recq_at(&p->q, i), *b = sl_recq_at(&p->q, i + 1);
        assert_true(o.ops->compare_pos(o.ctx, sl_recq_pos(&p->q, a), a->pos_len,
                                       sl_recq_pos(&p->q, b), b->pos_len) < 0);
    }
    struct sl_buf ev;
    sl_buf_init(&ev);
    assert_int_equal(o.ops->encode_record(o.ctx, p, sl_recq_at(&p->q, 1), &ev), 0);
    cJSON *doc = cJSON_Parse(ev.data);
    assert_non_null(doc);
    const cJSON *k = cJSON_GetObjectItem(doc, "kinesis");
    assert_string_equal(cJSON_GetObjectItem(k, "partitionKey")->valuestring, "beta");
    assert_string_equal(cJSON_GetObjectItem(k, "sequenceNumber")->valuestring, seq0);
    assert_string_equal(cJSON_GetObjectItem(k, "data")->valuestring, "dTE="); /* "u1" */
    assert_int_equal(cJSON_GetObjectItem(k, "subSequenceNumber")->valueint, 1);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(k, "aggregated")));
    (void)snprintf(want, sizeof(want), "shardId-000000000000:%s:1", seq0);
    assert_string_equal(cJSON_GetObjectItem(doc, "eventID")->valuestring, want);
    cJSON_Delete(doc);
    sl_buf_truncate(&ev, 0);
    /* a plain record's event has neither member */
    assert_int_equal(o.ops->encode_record(o.ctx, p, sl_recq_at(&p->q, 3), &ev), 0);
    assert_null(strstr(ev.data, "subSequenceNumber"));
    sl_buf_fini(&ev);
    own_stop(&o);

    own_start(&o, NULL, SL_START_TRIM_HORIZON, 0, NULL);
    wait_parts(&o, 1);
    p = o.parts[0];
    fetch_until(&o, p, 2);
    pos_is(&o, p, 0, seq0);
    data_is_n(p, 0, agg.data, agg.len);
    key_is(p, 0, "outer");
    own_stop(&o);
    sl_buf_fini(&agg);
}

/* An aggregate that an idle shard's poll finds is handed out whole by the next fetch. */
static void test_kinesis_deaggregate_idle(void **state)
{
    (void)state;
    struct owner o;
    own_start(&o, "\"poll_interval\":\"100ms\",\"deaggregate\":true", SL_START_TRIM_HORIZON, 0,
              NULL);
    wait_parts(&o, 1);
    struct sl_part *p = o.parts[0];
    assert_int_equal(fetch_once(&o, p, 100), 0); /* empty: the shard is idle */
    struct sl_buf agg;
    sl_buf_init(&agg);
    agg_build(&agg, agg_keys, NULL, agg_urs, 3);
    kpeer_put_bin(&peer, 0, "outer", agg.data, agg.len);
    fetch_until(&o, p, 3);
    assert_int_equal(peer.last_limit, 1); /* found by the idle poll, held, then handed out */
    char seq0[64], want[80];
    kpeer_seq(0, 0, seq0);
    (void)snprintf(want, sizeof(want), "%s:2", seq0);
    pos_is(&o, p, 2, want);
    data_is(p, 2, "u2");
    own_stop(&o);
    sl_buf_fini(&agg);
}

/* A checkpoint inside an aggregate resumes AT_SEQUENCE_NUMBER of it and skips the user records
 * up to the checkpointed one. */
static void test_kinesis_deaggregate_resume(void **state)
{
    (void)state;
    struct sl_buf agg;
    sl_buf_init(&agg);
    agg_build(&agg, agg_keys, NULL, agg_urs, 3);
    kpeer_put(&peer, 0, "k", "before");
    kpeer_put_bin(&peer, 0, "outer", agg.data, agg.len);
    kpeer_put(&peer, 0, "k", "after");
    char seq1[64], seq2[64], ck[80], want[80];
    kpeer_seq(0, 1, seq1);
    kpeer_seq(0, 2, seq2);
    (void)snprintf(ck, sizeof(ck), "%s:1", seq1);
    const struct ck cks[] = {{"shardId-000000000000", ck, NULL}, {0}};
    struct owner o;
    own_start(&o, "\"poll_interval\":\"100ms\",\"deaggregate\":true", SL_START_TRIM_HORIZON, 0,
              cks);
    wait_parts(&o, 1);
    struct sl_part *p = o.parts[0];
    fetch_until(&o, p, 2);
    assert_string_equal(peer.last_iter_type, "AT_SEQUENCE_NUMBER");
    assert_string_equal(peer.last_iter_seq, seq1);
    (void)snprintf(want, sizeof(want), "%s:2", seq1);
    pos_is(&o, p, 0, want);
    data_is(p, 0, "u2");
    pos_is(&o, p, 1, seq2);
    data_is(p, 1, "after");
    own_stop(&o);
    sl_buf_fini(&agg);
}

/* User records whose hash key is outside the shard's range are dropped (KCL, after a reshard):
 * by their explicit hash key, else by the MD5 of their partition key. */
static void test_kinesis_deaggregate_hash_range(void **state)
{
    (void)state;
    /* MD5("alpha") = 2c1743a3..., MD5("beta") = 987bcab0...: only beta is above 2^127 */
    kpeer_set_range(&peer, 0, "170141183460469231731687303715884105728",
                    "340282366920938463463374607431768211455");
    static const char *const ehks[] = {"5", "340282366920938463463374607431768211000", NULL};
    static const struct ur urs[] = {
        {0, -1, "alpha-md5"}, {1, -1, "beta-md5"}, {1, 0, "low-ehk"}, {0, 1, "high-ehk"}};
    struct sl_buf agg;
    sl_buf_init(&agg);
    agg_build(&agg, agg_keys, ehks, urs, 4);
    kpeer_put_bin(&peer, 0, "outer", agg.data, agg.len);
    char seq0[64], want[80];
    kpeer_seq(0, 0, seq0);
    struct owner o;
    own_start(&o, "\"poll_interval\":\"100ms\",\"deaggregate\":true", SL_START_TRIM_HORIZON, 0,
              NULL);
    wait_parts(&o, 1);
    struct sl_part *p = o.parts[0];
    fetch_until(&o, p, 2);
    data_is(p, 0, "beta-md5");
    (void)snprintf(want, sizeof(want), "%s:1", seq0);
    pos_is(&o, p, 0, want);
    data_is(p, 1, "high-ehk");
    (void)snprintf(want, sizeof(want), "%s:3", seq0);
    pos_is(&o, p, 1, want);
    own_stop(&o);
    sl_buf_fini(&agg);
}

/* ---- shards ---- */

/* A closed shard's last GetRecords names its children (ChildShards): they start once it is
 * done, even though no listing has them yet. */
static void test_kinesis_child_shards(void **state)
{
    (void)state;
    kpeer_put(&peer, 0, "a", "a0");
    kpeer_close(&peer, 0);
    kpeer_add_shard(&peer, "shardId-000000000001", "shardId-000000000000", NULL);
    kpeer_set_flags(&peer, 1, true, false); /* never listed */
    kpeer_put(&peer, 1, "b", "b0");
    struct owner o;
    own_start(&o, NULL, SL_START_TRIM_HORIZON, 0, NULL);
    wait_parts(&o, 1);
    struct sl_part *a = o.parts[0];
    fetch_until(&o, a, 1);
    if (!o.gones) {
        (void)fetch_once(&o, a, 100); /* the end may come with the next page */
    }
    assert_true(test_run_until(&o.loop, is_gone, &o, 5000));
    o.ops->part_release(o.ctx, a);
    sl_part_free(a);
    o.parts[0] = NULL;
    wait_parts(&o, 2);
    struct sl_part *b = part_named(&o, "shardId-000000000001");
    fetch_until(&o, b, 1);
    assert_string_equal(peer.last_iter_type, "TRIM_HORIZON");
    data_is(b, 0, "b0");
    own_stop(&o);
}

static unsigned want_lists;

static bool listed_again(void *arg)
{
    (void)arg;
    return kpeer_count(&peer, &peer.calls_list) >= want_lists;
}

/* A shard GetShardIterator says does not exist, and the listing no longer has, is dropped
 * (part_gone) rather than retried forever; its checkpoint is not touched. */
static void test_kinesis_shard_not_found(void **state)
{
    (void)state;
    kpeer_add_shard(&peer, "shardId-000000000001", NULL, NULL);
    kpeer_put(&peer, 1, "b", "b0");
    char seq0[64];
    kpeer_seq(0, 0, seq0);
    const struct ck cks[] = {{"shardId-000000000000", seq0, NULL}, {0}};
    struct owner o;
    own_start(&o, NULL, SL_START_TRIM_HORIZON, 0, cks);
    wait_parts(&o, 2);
    struct sl_part *a = part_named(&o, "shardId-000000000000");
    /* not found while the listing still has it: kept, retried */
    kpeer_fail(&peer, "GetShardIterator", 400, "ResourceNotFoundException", 1);
    unsigned lists = kpeer_count(&peer, &peer.calls_list);
    assert_int_equal(fetch_once(&o, a, 100), 0);
    want_lists = lists + 2;
    assert_true(test_run_until(&o.loop, listed_again, &o, 5000));
    assert_int_equal(o.gones, 0);
    kpeer_set_flags(&peer, 0, false, true); /* deleted: GetShardIterator answers not found */
    o.wakes = 0;
    assert_true(test_run_until(&o.loop, was_woken, &o, 10000));
    assert_int_equal(fetch_once(&o, a, 100), 0);
    assert_true(test_run_until(&o.loop, is_gone, &o, 5000));
    assert_int_equal(o.gones, 1);
    assert_null(a->meta);                 /* no end recorded */
    assert_string_equal(o.set_start, ""); /* the checkpoint is left as it is */
    struct sl_part *b = part_named(&o, "shardId-000000000001");
    fetch_until(&o, b, 1); /* the other shard flows */
    own_stop(&o);
}

int main(void)
{
    sl_log_setup(SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    (void)unsetenv("AWS_ENDPOINT_URL_KINESIS");
    (void)unsetenv("AWS_ENDPOINT_URL");
    (void)setenv("AWS_ACCESS_KEY_ID", "test", 1);
    (void)setenv("AWS_SECRET_ACCESS_KEY", "test", 1);
    (void)unsetenv("AWS_SESSION_TOKEN");
    (void)setenv("AWS_CONFIG_FILE", "/dev/null", 1);
    (void)setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
    (void)setenv("SLUICE_RETRY_BASE_MS", "20", 1);
    (void)setenv("SLUICE_RETRY_MAX_MS", "200", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinesis_check_arn),
        cmocka_unit_test_setup_teardown(test_kinesis_pages_and_lineage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_closed_shard_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_checkpoint_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_starting_positions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_limit_and_pacing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_throttled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_expired_iterator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_data_as_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_deaggregate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_deaggregate_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_deaggregate_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_deaggregate_hash_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_child_shards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kinesis_shard_not_found, setup, teardown),
    };
    return cmocka_run_group_tests_name("kinesis", tests, NULL, NULL);
}
