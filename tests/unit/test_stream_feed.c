/* SPDX-License-Identifier: Apache-2.0 */
/* test_stream_feed.c: a delivery stream as a mapping's function (stream_feed.c) on a real loop and
 * a real spool: the batch's payloads (base64 ones decoded) go into the stream as they are, with a
 * Kinesis source's record metadata (fh_kmeta.c) and arrival kept for a KinesisStreamAsSource
 * stream and none for another; the invocation answers only once every record is durable; when the
 * quota refuses records it keeps what was taken and offers the rest again, nothing skipped or
 * put twice; stop answers a waiting invocation canceled; a record the spool cannot take ends the
 * encoding before it. Waits are test_run_until deadlines, never sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "batcher.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "fh_kmeta.h"
#include "helpers.h"
#include "partition.h"
#include "s3_keys.h"
#include "source.h"
#include "spool.h"
#include "stream.h"
#include "stream_dest.h"
#include "stream_feed.h"

#define WALL_MS INT64_C(1714568862000)

struct fixture {
    char *dir;
    char spool[4200];
    char arn[4200];
    uv_loop_t loop;
    struct sl_clock_fake clock;
    struct sl_stream_conf sc;
    struct sl_stream *s;
    struct sl_function *fn;
    struct sl_part part;
    struct sl_buf body;
    int answers;
    struct sl_invoke_result last;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = test_tmpdir();
    uv_loop_init(&f->loop);
    sl_clock_fake_init(&f->clock, 0, WALL_MS);
    (void)snprintf(f->arn, sizeof(f->arn), "file://%s", f->dir);
    f->sc = (struct sl_stream_conf){.name = "clicks",
                                    .bucket_arn = f->arn,
                                    .dir = f->dir,
                                    .prefix = "raw/",
                                    .size_mb = 1,
                                    .interval_s = 900};
    (void)snprintf(f->spool, sizeof(f->spool), "%s/state/streams/clicks", f->dir);
    struct sl_s3_layout_conf lc = {.prefix = "raw/"};
    char err[256];
    assert_int_equal(sl_s3_layout_new(&lc, &f->sc.layout, err, sizeof(err)), 0);
    f->part = (struct sl_part){.id = "shardId-000000000001", .name = "shardId-000000000001"};
    sl_recq_init(&f->part.q);
    sl_buf_init(&f->body);
    *state = f;
    return 0;
}

static bool all_closed(void *arg)
{
    (void)arg;
    return sl_stream_closing() == 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->fn) {
        sl_function_stop(f->fn);
    }
    sl_stream_free(f->s);
    assert_true(test_run_until(&f->loop, all_closed, f, 10000));
    sl_function_free(f->fn);
    test_close_all(&f->loop);
    sl_s3_layout_free(f->sc.layout);
    sl_recq_fini(&f->part.q);
    sl_buf_fini(&f->body);
    (void)uv_loop_close(&f->loop);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void start(struct fixture *f, uint64_t quota, bool kinesis)
{
    struct sl_stream_dest_env denv = {.loop = &f->loop, .clock = &f->clock.clock};
    struct sl_stream_env env = {.loop = &f->loop,
                                .clock = &f->clock.clock,
                                .spool_dir = f->spool,
                                .spool_max_bytes = quota};
    char err[512] = "";
    assert_int_equal(sl_stream_dest_new(&f->sc, &denv, &env.dest, err, sizeof(err)), 0);
    assert_int_equal(sl_stream_new(&f->sc, &env, &f->s, err, sizeof(err)), 0);
    assert_int_equal(sl_stream_feed_new(&f->loop, f->s, "clicks", kinesis, &f->clock.clock, &f->fn),
                     0);
}

/* The source's view of a record: its key is its meta bytes, its item id "SEQ" (or "SEQ:SUB"
 * when the position's second byte is set), as the Kinesis adapter's. */
static int
fake_item_id(void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)ctx;
    const unsigned char *pos = sl_recq_pos(&part->q, rec);
    int n = pos[1] ? snprintf(buf, len, "4959%02u:%u", pos[0], pos[1])
                   : snprintf(buf, len, "4959%02u", pos[0]);
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

static size_t
fake_key(void *ctx, struct sl_part *part, const struct sl_record *rec, const char **ret_key)
{
    (void)ctx;
    *ret_key = sl_recq_meta(&part->q, rec);
    return rec->meta_len;
}

static const struct sl_source_ops fake_ops = {
    .name = "fake",
    .format_item_id = fake_item_id,
    .record_key = fake_key,
};

static void push(struct fixture *f,
                 const char *data,
                 const char *key,
                 unsigned seq,
                 unsigned sub,
                 uint32_t flags)
{
    unsigned char pos[2] = {(unsigned char)seq, (unsigned char)sub};
    assert_int_equal(sl_recq_push(&f->part.q, data, (uint32_t)strlen(data), key,
                                  (uint32_t)strlen(key), pos, sizeof(pos), WALL_MS + seq, flags),
                     0);
}

/* Encodes the queue's records from..n into f->body; returns how many went in. */
static size_t encode(struct fixture *f, size_t from, size_t max_bytes)
{
    size_t n = sl_recq_count(&f->part.q) - from;
    struct sl_batch_ref refs[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        refs[i] = (struct sl_batch_ref){&f->part, sl_recq_at(&f->part.q, from + i)};
    }
    struct sl_batch_limits lim = {.max_records = 100, .max_bytes = max_bytes};
    size_t done = 0;
    assert_int_equal(sl_function_encode(f->fn, &lim, &fake_ops, NULL, refs, n, &f->body, &done), 0);
    return done;
}

static void answered(void *arg, const struct sl_invoke_result *res)
{
    struct fixture *f = arg;
    f->answers++;
    f->last = *res;
}

static bool has_answer(void *arg)
{
    return ((struct fixture *)arg)->answers > 0;
}

/* What the spool holds, read by a second open of its directory after the stream closed. */
struct held {
    int n;
    char data[16][64];
    struct sl_fh_kinesis_meta meta[16];
    int meta_rc[16];
    char meta_bytes[16][256];
    int64_t arrival[16];
};

static void read_rec(void *arg, const struct sl_spool_rec *rec)
{
    struct held *h = arg;
    assert_true(h->n < 16 && rec->len < 64 && rec->meta_len < 256);
    memcpy(h->data[h->n], rec->data, rec->len);
    h->data[h->n][rec->len] = '\0';
    memcpy(h->meta_bytes[h->n], rec->meta, rec->meta_len);
    h->meta_rc[h->n] = sl_fh_kmeta_decode(h->meta_bytes[h->n], rec->meta_len, &h->meta[h->n]);
    h->arrival[h->n] = rec->arrival_ms;
    h->n++;
}

static void read_spool(struct fixture *f, struct held *h)
{
    sl_function_stop(f->fn);
    sl_stream_free(f->s);
    f->s = NULL;
    assert_true(test_run_until(&f->loop, all_closed, f, 10000));
    struct sl_spool_opts o = {.dir = f->spool, .name = "check", .max_bytes = 1 << 20};
    struct sl_spool *sp;
    char err[256];
    assert_int_equal(sl_spool_open(&f->loop, &o, &sp, err, sizeof(err)), 0);
    memset(h, 0, sizeof(*h));
    while (sl_spool_read(sp, 16, 1 << 20, read_rec, h) > 0) {
    }
    sl_spool_close(sp, NULL, NULL);
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void test_stream_feed_kmeta_round_trip(void **state)
{
    (void)state;
    struct sl_buf b;
    sl_buf_init(&b);
    struct sl_fh_kinesis_meta m = {.shard_id = "shardId-000000000003",
                                   .partition_key = "user-42",
                                   .sequence_number = "49546986683135544286507457936321625675",
                                   .subsequence_number = 7,
                                   .arrival_ms = WALL_MS};
    assert_int_equal(sl_fh_kmeta_encode(&b, &m), 0);
    struct sl_fh_kinesis_meta got;
    assert_int_equal(sl_fh_kmeta_decode(b.data, b.len, &got), 0);
    assert_string_equal(got.shard_id, m.shard_id);
    assert_string_equal(got.partition_key, m.partition_key);
    assert_string_equal(got.sequence_number, m.sequence_number);
    assert_int_equal(got.subsequence_number, 7);
    assert_int_equal(got.arrival_ms, WALL_MS);
    assert_int_equal(sl_fh_kmeta_decode(b.data, 0, &got), SL_ENOTFOUND);
    assert_int_equal(sl_fh_kmeta_decode(b.data, b.len - 1, &got), SL_EINVAL);
    ((char *)b.data)[0] = 'X';
    assert_int_equal(sl_fh_kmeta_decode(b.data, b.len, &got), SL_EINVAL);
    char big[SL_FH_KMETA_STR_MAX + 2];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    m.partition_key = big;
    sl_buf_truncate(&b, 0);
    assert_int_equal(sl_fh_kmeta_encode(&b, &m), SL_EINVAL);
    sl_buf_fini(&b);
}

/* KinesisStreamAsSource: the payloads as they were put (base64 decoded), each with its
 * metadata and its Kinesis arrival; answered once durable. */
static void test_stream_feed_kinesis_records(void **state)
{
    struct fixture *f = *state;
    start(f, 1 << 20, true);
    push(f, "aGVsbG8K", "user-1", 1, 0, SL_REC_BASE64); /* "hello\n" */
    push(f, "plain\n", "user-2", 2, 3, 0);
    assert_int_equal(encode(f, 0, SL_BATCH_MAX_PAYLOAD_BYTES), 2);
    assert_int_equal(sl_function_invoke(f->fn, f->body.data, f->body.len, answered, f), 0);
    assert_int_equal(f->answers, 0); /* never from inside invoke */
    assert_true(test_run_until(&f->loop, has_answer, f, 10000));
    assert_int_equal(f->last.outcome, SL_OUTCOME_SUCCESS);
    assert_int_equal(sl_stream_held(f->s), 2);
    struct held h;
    read_spool(f, &h);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.data[0], "hello\n");
    assert_string_equal(h.data[1], "plain\n");
    assert_int_equal(h.meta_rc[0], 0);
    assert_string_equal(h.meta[0].shard_id, "shardId-000000000001");
    assert_string_equal(h.meta[0].partition_key, "user-1");
    assert_string_equal(h.meta[0].sequence_number, "495901");
    assert_int_equal(h.meta[0].subsequence_number, 0);
    assert_int_equal(h.meta[0].arrival_ms, WALL_MS + 1);
    assert_int_equal(h.arrival[0], WALL_MS + 1);
    assert_string_equal(h.meta[1].sequence_number, "495902");
    assert_int_equal(h.meta[1].subsequence_number, 3);
}

/* Another stream (a mapping of any source): the payload alone, arriving when it is put. */
static void test_stream_feed_plain_records(void **state)
{
    struct fixture *f = *state;
    start(f, 1 << 20, false);
    sl_clock_fake_advance(&f->clock, 5);
    push(f, "line one", "", 1, 0, 0);
    assert_int_equal(encode(f, 0, SL_BATCH_MAX_PAYLOAD_BYTES), 1);
    assert_int_equal(sl_function_invoke(f->fn, f->body.data, f->body.len, answered, f), 0);
    assert_true(test_run_until(&f->loop, has_answer, f, 10000));
    assert_int_equal(f->last.outcome, SL_OUTCOME_SUCCESS);
    struct held h;
    read_spool(f, &h);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.data[0], "line one");
    assert_int_equal(h.meta_rc[0], SL_ENOTFOUND);
    assert_int_equal(h.arrival[0], WALL_MS + 5); /* the clock's, not the record's */
}

/* The encoding stops at the payload limit, and before a record over the spool's record size
 * (0 encoded: the mapping hands it to the on-failure path). */
static void test_stream_feed_encode_limits(void **state)
{
    struct fixture *f = *state;
    start(f, 1 << 20, false);
    push(f, "aaaaaaaaaa", "", 1, 0, 0);
    push(f, "bbbbbbbbbb", "", 2, 0, 0);
    assert_int_equal(encode(f, 0, 30), 1);
    assert_int_equal(encode(f, 0, 60), 2);
    char *big = sl_malloc(SL_SPOOL_RECORD_MAX_BYTES + 2);
    assert_non_null(big);
    memset(big, 'x', SL_SPOOL_RECORD_MAX_BYTES + 1);
    big[SL_SPOOL_RECORD_MAX_BYTES + 1] = '\0';
    push(f, big, "", 3, 0, 0);
    sl_free(big);
    assert_int_equal(encode(f, 2, SL_BATCH_MAX_PAYLOAD_BYTES), 0);
}

/* A quota the batch does not fit in: what fits is taken, the rest waits (the invocation is not
 * answered) and goes in, in order, once deliveries free room; nothing twice. */
static void test_stream_feed_waits_for_room(void **state)
{
    struct fixture *f = *state;
    f->sc.interval_s = 0; /* delivered at once: room comes back */
    start(f, 64 * 1024, false);
    char rec[2001];
    memset(rec, 'r', 2000);
    rec[2000] = '\0';
    for (unsigned i = 0; i < 60; i++) {
        rec[0] = (char)('A' + i % 26);
        rec[1] = (char)('0' + i / 26);
        push(f, rec, "", i, 0, 0);
    }
    size_t n = 0;
    /* three batches of 20 (40 KB each): two do not fit in the 64 KiB quota at once */
    for (int b = 0; b < 3; b++) {
        struct sl_batch_ref refs[20];
        for (size_t i = 0; i < 20; i++) {
            refs[i] = (struct sl_batch_ref){&f->part, sl_recq_at(&f->part.q, b * 20 + i)};
        }
        struct sl_batch_limits lim = {.max_records = 100, .max_bytes = SL_BATCH_MAX_PAYLOAD_BYTES};
        assert_int_equal(sl_function_encode(f->fn, &lim, &fake_ops, NULL, refs, 20, &f->body, &n),
                         0);
        assert_int_equal(n, 20);
        f->answers = 0;
        assert_int_equal(sl_function_invoke(f->fn, f->body.data, f->body.len, answered, f), 0);
        assert_true(test_run_until(&f->loop, has_answer, f, 10000));
        assert_int_equal(f->answers, 1);
        assert_int_equal(f->last.outcome, SL_OUTCOME_SUCCESS);
        f->answers = 0;
    }
    assert_true(sl_stream_stats(f->s)->throttled > 0);
    assert_int_equal(sl_stream_stats(f->s)->incoming_records, 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_feed_kmeta_round_trip),
        cmocka_unit_test_setup_teardown(test_stream_feed_kinesis_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_feed_plain_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_feed_encode_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_feed_waits_for_room, setup, teardown),
    };
    return cmocka_run_group_tests_name("stream_feed", tests, NULL, NULL);
}
