/* SPDX-License-Identifier: Apache-2.0 */
/* test_s3_object.c: Firehose S3 object bodies (sinks/s3_object.h): records concatenated with no
 * delimiter, GZIP round trips through zlib's inflate (small, empty, several MB in odd pieces),
 * output in bounded chunks, an emit error stopping the encoder, the parallel GZIP of an object in
 * memory (thousands of records of odd sizes across many blocks, a record larger than a block,
 * empty records and objects, taken in pieces of every size: one gzip member, the same bytes every
 * run; a cancel ending it; two at once sharing the jobs), and the error record JSON lines of
 * backups (keys, order, base64, optional fields). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <zlib.h>

#include "helpers.h"
#include "s3_object.h"

/* Inflates a gzip stream (windowBits 15 + 16) into out; fails the test on a bad stream. */
static void gunzip(const void *p, size_t n, struct sl_buf *out)
{
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (unsigned char *)(uintptr_t)p;
    z.avail_in = (uInt)n;
    int zr;
    do {
        assert_int_equal(sl_buf_reserve(out, 65536), 0);
        z.next_out = (unsigned char *)out->data + out->len;
        z.avail_out = (uInt)(out->cap - out->len - 1);
        zr = inflate(&z, Z_NO_FLUSH);
        out->len = out->cap - 1 - z.avail_out;
        assert_true(zr == Z_OK || zr == Z_STREAM_END);
    } while (zr != Z_STREAM_END);
    assert_int_equal(z.avail_in, 0); /* one member, nothing after it */
    inflateEnd(&z);
}

static void test_s3_object_concatenates(void **state)
{
    (void)state;
    struct iovec recs[] = {{"{\"a\":1}", 7}, {"{\"a\":2}\n", 8}, {"", 0}, {"x", 1}};
    struct sl_buf out;
    sl_buf_init(&out);
    assert_int_equal(sl_buf_puts(&out, "kept"), 0);
    assert_int_equal(sl_s3_object_build(recs, 4, SL_S3_UNCOMPRESSED, &out), 0);
    assert_string_equal(out.data, "kept{\"a\":1}{\"a\":2}\nx");
    sl_buf_fini(&out);
}

static void test_s3_object_gzip_round_trip(void **state)
{
    (void)state;
    struct iovec recs[] = {{"{\"a\":1}\n", 8}, {"{\"a\":2}\n", 8}};
    struct sl_buf gz, plain;
    sl_buf_init(&gz);
    sl_buf_init(&plain);
    assert_int_equal(sl_s3_object_build(recs, 2, SL_S3_GZIP, &gz), 0);
    assert_true(gz.len > 18);
    assert_int_equal((unsigned char)gz.data[0], 0x1f); /* gzip magic */
    assert_int_equal((unsigned char)gz.data[1], 0x8b);
    gunzip(gz.data, gz.len, &plain);
    assert_int_equal(plain.len, 16);
    assert_memory_equal(plain.data, "{\"a\":1}\n{\"a\":2}\n", 16);
    /* an empty object is still a valid gzip stream */
    sl_buf_truncate(&gz, 0);
    sl_buf_truncate(&plain, 0);
    assert_int_equal(sl_s3_object_build(NULL, 0, SL_S3_GZIP, &gz), 0);
    gunzip(gz.data, gz.len, &plain);
    assert_int_equal(plain.len, 0);
    sl_buf_fini(&gz);
    sl_buf_fini(&plain);
}

struct sink {
    struct sl_buf all;
    size_t calls, max_chunk;
    size_t fail_after; /* calls; 0: never fail */
};

static int sink_emit(void *arg, const void *p, size_t n)
{
    struct sink *s = arg;
    if (s->fail_after && s->calls == s->fail_after) {
        return SL_EIO;
    }
    s->calls++;
    if (n > s->max_chunk) {
        s->max_chunk = n;
    }
    assert_true(n > 0);
    return sl_buf_append(&s->all, p, n);
}

/* Several MB of poorly compressible records in pieces of odd sizes: the inflated output equals
 * the input, and no emitted chunk is larger than SL_S3_OBJECT_CHUNK. */
static void test_s3_object_gzip_large_bounded(void **state)
{
    (void)state;
    size_t total = 5 * 1024 * 1024 + 17;
    unsigned char *in = malloc(total);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < total; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        in[i] = (unsigned char)(x % 20 + 'a'); /* some redundancy, far from all */
    }
    for (int comp = 0; comp < SL_S3_COMPRESSION_COUNT; comp++) {
        struct sink s = {0};
        sl_buf_init(&s.all);
        struct sl_s3_object *o;
        assert_int_equal(sl_s3_object_new(comp, sink_emit, &s, &o), 0);
        size_t off = 0, step = 1;
        while (off < total) {
            size_t n = total - off < step ? total - off : step;
            assert_int_equal(sl_s3_object_add(o, in + off, n), 0);
            off += n;
            step = step * 7 % 100003 + 1;
        }
        assert_int_equal(sl_s3_object_finish(o), 0);
        assert_int_equal(sl_s3_object_bytes_in(o), total);
        assert_int_equal(sl_s3_object_bytes_out(o), s.all.len);
        sl_s3_object_free(o);
        if (comp == SL_S3_GZIP) {
            struct sl_buf plain;
            sl_buf_init(&plain);
            gunzip(s.all.data, s.all.len, &plain);
            assert_int_equal(plain.len, total);
            assert_memory_equal(plain.data, in, total);
            assert_true(s.all.len < total);
            sl_buf_fini(&plain);
            /* never more than one chunk at a time */
            assert_true(s.max_chunk <= SL_S3_OBJECT_CHUNK);
        } else {
            assert_int_equal(s.all.len, total);
            assert_memory_equal(s.all.data, in, total);
        }
        assert_true(s.calls > total / SL_S3_OBJECT_CHUNK / 8);
        sl_buf_fini(&s.all);
    }
    free(in);
}

/* Records of an object: n of pseudo-random sizes (some empty) over about total bytes, one of
 * big bytes in the middle; text with some redundancy, repeating itself now and then farther
 * back than a block so matches cross block boundaries. */
struct objin {
    unsigned char *data;
    size_t len;
    struct iovec *recs;
    size_t n;
};

static void objin_make(struct objin *in, size_t total, size_t big)
{
    in->data = malloc(total + big);
    uint32_t x = 88172645u;
    for (size_t i = 0; i < total + big; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        in->data[i] = i > 70000 && x % 7 == 0 ? in->data[i - 65536 - x % 1000]
                                              : (unsigned char)(x % 24 + 'a');
    }
    in->len = total + big;
    in->recs = malloc(sizeof(*in->recs) * (total + 2));
    in->n = 0;
    size_t off = 0;
    while (off < in->len) {
        size_t len = x % 3001; /* 0 to 3000 */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if (in->n == 1000) {
            len = big;
        }
        if (len > in->len - off) {
            len = in->len - off;
        }
        in->recs[in->n++] = (struct iovec){in->data + off, len};
        off += len;
    }
}

static void objin_free(struct objin *in)
{
    free(in->data);
    free(in->recs);
}

struct gzrun {
    struct sl_s3_gz *gz;
    struct sl_buf out;
    size_t step;  /* pieces taken at a time, cycling 1..SL_S3_GZ_WINDOW + 2 */
    size_t calls; /* ready callbacks */
};

static void gzrun_ready(void *arg)
{
    struct gzrun *g = arg;
    g->calls++;
    struct iovec iov[SL_S3_GZ_WINDOW + 2];
    size_t k;
    while ((k = sl_s3_gz_ready(g->gz, iov, g->step)) > 0) {
        for (size_t i = 0; i < k; i++) {
            assert_int_equal(sl_buf_append(&g->out, iov[i].iov_base, iov[i].iov_len), 0);
        }
        sl_s3_gz_consumed(g->gz, k);
        g->step = g->step % (SL_S3_GZ_WINDOW + 2) + 1;
    }
}

static bool gzrun_over(void *arg)
{
    struct gzrun *g = arg;
    return sl_s3_gz_done(g->gz) || (sl_s3_gz_error(g->gz) && !sl_s3_gz_busy(g->gz));
}

/* Compresses recs[0..n) in parallel on a loop and returns the body in out. */
static void gz_parallel(const struct iovec *recs, size_t n, struct sl_buf *out)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct gzrun g = {.step = 1};
    sl_buf_init(&g.out);
    assert_int_equal(sl_s3_gz_new(&loop, recs, n, gzrun_ready, &g, &g.gz), 0);
    assert_true(test_run_until(&loop, gzrun_over, &g, test_deadline_ms(30000)));
    assert_int_equal(sl_s3_gz_error(g.gz), 0);
    assert_false(sl_s3_gz_busy(g.gz));
    assert_int_equal(sl_s3_gz_bytes_out(g.gz), g.out.len);
    struct iovec iov[1];
    assert_int_equal(sl_s3_gz_ready(g.gz, iov, 1), 0); /* nothing after the trailer */
    sl_s3_gz_free(g.gz);
    assert_int_equal(uv_loop_close(&loop), 0);
    *out = g.out;
}

static void test_s3_object_gz_parallel_round_trip(void **state)
{
    (void)state;
    struct objin in;
    objin_make(&in, 6 * SL_S3_GZ_BLOCK + 12345, SL_S3_GZ_BLOCK * 5 / 2);
    assert_true(in.n > 4000);
    struct sl_buf gz, again, plain;
    gz_parallel(in.recs, in.n, &gz);
    sl_buf_init(&plain);
    gunzip(gz.data, gz.len, &plain); /* one member: inflate ends with the input */
    assert_int_equal(plain.len, in.len);
    assert_memory_equal(plain.data, in.data, in.len);
    assert_true(gz.len < in.len * 3 / 4);
    /* the same bytes on every run (a retry writes the same object), whatever the scheduling */
    gz_parallel(in.recs, in.n, &again);
    assert_int_equal(again.len, gz.len);
    assert_memory_equal(again.data, gz.data, gz.len);
    /* the dictionary: within a few percent of one stream through the streaming encoder */
    struct sl_buf one;
    sl_buf_init(&one);
    assert_int_equal(sl_s3_object_build(in.recs, in.n, SL_S3_GZIP, &one), 0);
    assert_true(gz.len < one.len + one.len / 50);
    sl_buf_fini(&one);
    sl_buf_fini(&gz);
    sl_buf_fini(&again);
    sl_buf_fini(&plain);
    objin_free(&in);
}

static void test_s3_object_gz_parallel_edges(void **state)
{
    (void)state;
    /* no records, empty records only, one byte, exactly one block */
    static char block[SL_S3_GZ_BLOCK];
    memset(block, 'b', sizeof block);
    struct iovec empties[] = {{"", 0}, {"", 0}};
    struct iovec one[] = {{"", 0}, {"x", 1}, {"", 0}};
    struct iovec whole[] = {{block, sizeof block}};
    struct {
        const struct iovec *recs;
        size_t n, len;
        const char *want;
    } cases[] = {
        {NULL, 0, 0, ""}, {empties, 2, 0, ""}, {one, 3, 1, "x"}, {whole, 1, sizeof block, block}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sl_buf gz, plain;
        gz_parallel(cases[i].recs, cases[i].n, &gz);
        sl_buf_init(&plain);
        gunzip(gz.data, gz.len, &plain);
        assert_int_equal(plain.len, cases[i].len);
        assert_memory_equal(plain.data ? plain.data : "", cases[i].want, cases[i].len);
        sl_buf_fini(&gz);
        sl_buf_fini(&plain);
    }
}

static void test_s3_object_gz_parallel_cancel(void **state)
{
    (void)state;
    struct objin in;
    objin_make(&in, 8 * SL_S3_GZ_BLOCK, 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct gzrun g = {.step = 1};
    sl_buf_init(&g.out);
    assert_int_equal(sl_s3_gz_new(&loop, in.recs, in.n, gzrun_ready, &g, &g.gz), 0);
    assert_true(sl_s3_gz_busy(g.gz));
    sl_s3_gz_cancel(g.gz);
    assert_int_equal(sl_s3_gz_error(g.gz), SL_ECANCELED);
    assert_true(test_run_until(&loop, gzrun_over, &g, test_deadline_ms(30000)));
    assert_false(sl_s3_gz_busy(g.gz));
    assert_false(sl_s3_gz_done(g.gz));
    assert_true(g.calls >= 1 && g.calls <= SL_S3_GZ_JOBS); /* no job started after the cancel */
    assert_int_equal(g.out.len, 0);
    sl_s3_gz_free(g.gz);
    sl_buf_fini(&g.out);
    assert_int_equal(uv_loop_close(&loop), 0);
    objin_free(&in);
}

static bool gzrun_both_over(void *arg)
{
    struct gzrun *g = arg;
    return gzrun_over(&g[0]) && gzrun_over(&g[1]);
}

/* Two compressors at once share SL_S3_GZ_JOBS jobs: one waits its turn, both finish whole; one
 * canceled while it waits for a job leaves the other to finish. */
static void test_s3_object_gz_parallel_two_at_once(void **state)
{
    (void)state;
    struct objin in;
    objin_make(&in, 5 * SL_S3_GZ_BLOCK + 3, 0);
    for (int cancel = 0; cancel < 2; cancel++) {
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        struct gzrun g[2] = {{.step = 3}, {.step = 1}};
        for (int i = 0; i < 2; i++) {
            sl_buf_init(&g[i].out);
            assert_int_equal(sl_s3_gz_new(&loop, in.recs, in.n, gzrun_ready, &g[i], &g[i].gz), 0);
        }
        assert_false(sl_s3_gz_busy(g[1].gz)); /* the first took every job */
        if (cancel) {
            sl_s3_gz_cancel(g[1].gz);
            assert_false(sl_s3_gz_busy(g[1].gz));
            sl_s3_gz_free(g[1].gz);
            g[1].gz = NULL;
            assert_true(test_run_until(&loop, gzrun_over, &g[0], test_deadline_ms(30000)));
        } else {
            assert_true(test_run_until(&loop, gzrun_both_over, g, test_deadline_ms(30000)));
        }
        for (int i = 0; i < 2 - cancel; i++) {
            assert_int_equal(sl_s3_gz_error(g[i].gz), 0);
            struct sl_buf plain;
            sl_buf_init(&plain);
            gunzip(g[i].out.data, g[i].out.len, &plain);
            assert_int_equal(plain.len, in.len);
            assert_memory_equal(plain.data, in.data, in.len);
            sl_buf_fini(&plain);
            sl_s3_gz_free(g[i].gz);
        }
        sl_buf_fini(&g[0].out);
        sl_buf_fini(&g[1].out);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
    objin_free(&in);
}

static void test_s3_object_emit_error_sticks(void **state)
{
    (void)state;
    static char rec[SL_S3_OBJECT_CHUNK];
    memset(rec, 'r', sizeof rec);
    for (int comp = 0; comp < SL_S3_COMPRESSION_COUNT; comp++) {
        struct sink s = {.fail_after = 1};
        sl_buf_init(&s.all);
        struct sl_s3_object *o;
        assert_int_equal(sl_s3_object_new(comp, sink_emit, &s, &o), 0);
        int r = 0;
        for (int i = 0; i < 200 && r == 0; i++) {
            rec[0] = (char)i; /* vary so gzip output grows */
            for (size_t k = 0; k < sizeof rec; k += 97) {
                rec[k] = (char)(i * 31 + (int)k);
            }
            r = sl_s3_object_add(o, rec, sizeof rec);
        }
        if (r == 0) {
            r = sl_s3_object_finish(o);
        }
        assert_int_equal(r, SL_EIO);
        assert_int_equal(sl_s3_object_add(o, "x", 1), SL_EIO);
        assert_int_equal(sl_s3_object_finish(o), SL_EIO);
        sl_s3_object_free(o);
        sl_buf_fini(&s.all);
    }
}

static void test_s3_object_error_line_processing_failed(void **state)
{
    (void)state;
    struct sl_buf out;
    sl_buf_init(&out);
    struct sl_s3_error_rec e = {
        .attempts_made = 4,
        .arrival_ms = 1700000000123LL,
        .error_code = "Lambda.FunctionError",
        .error_message = "The Lambda function was \"unhappy\"\n",
        .attempt_ending_ms = 1700000300456LL,
        .raw = "{\"a\":1}\n",
        .raw_len = 8,
        .lambda_arn = "arn:aws:lambda:us-east-1:111122223333:function:f:$LATEST",
    };
    assert_int_equal(sl_s3_object_error_line(&out, &e), 0);
    assert_string_equal(
        out.data, "{\"attemptsMade\":4,\"arrivalTimestamp\":1700000000123,"
                  "\"errorCode\":\"Lambda.FunctionError\","
                  "\"errorMessage\":\"The Lambda function was \\\"unhappy\\\"\\n\","
                  "\"attemptEndingTimestamp\":1700000300456,\"rawData\":\"eyJhIjoxfQo=\","
                  "\"lambdaArn\":\"arn:aws:lambda:us-east-1:111122223333:function:f:$LATEST\"}\n");
    /* a second line appends; the document parses */
    size_t first = out.len;
    e.lambda_arn = NULL;
    e.error_message = NULL;
    e.raw = "eyJhIjoxfQo=";
    e.raw_len = 12;
    e.raw_is_base64 = true;
    assert_int_equal(sl_s3_object_error_line(&out, &e), 0);
    cJSON *doc = cJSON_ParseWithLength(out.data + first, out.len - first);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "rawData")->valuestring,
                        "eyJhIjoxfQo=");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(doc, "errorMessage")->valuestring, "");
    assert_null(cJSON_GetObjectItemCaseSensitive(doc, "lambdaArn"));
    assert_null(cJSON_GetObjectItemCaseSensitive(doc, "dataId"));
    assert_int_equal(cJSON_GetArraySize(doc), 6);
    cJSON_Delete(doc);
    assert_int_equal(out.data[out.len - 1], '\n');
    sl_buf_fini(&out);
}

static void test_s3_object_error_line_http_endpoint(void **state)
{
    (void)state;
    struct sl_buf out;
    sl_buf_init(&out);
    struct sl_s3_error_rec e = {
        .attempts_made = 1,
        .arrival_ms = 5,
        .error_code = "HttpEndpoint.DestinationException",
        .error_message = "Received the following response from the endpoint destination. 503: "
                         "{}",
        .attempt_ending_ms = 6,
        .raw = "\x00\xff",
        .raw_len = 2,
        .data_id = "4959.0",
    };
    assert_int_equal(sl_s3_object_error_line(&out, &e), 0);
    assert_string_equal(out.data,
                        "{\"attemptsMade\":1,\"arrivalTimestamp\":5,"
                        "\"errorCode\":\"HttpEndpoint.DestinationException\","
                        "\"errorMessage\":\"Received the following response from the endpoint "
                        "destination. 503: {}\",\"attemptEndingTimestamp\":6,\"rawData\":\"AP8=\","
                        "\"subsequenceNumber\":0,\"dataId\":\"4959.0\"}\n");
    sl_buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3_object_concatenates),
        cmocka_unit_test(test_s3_object_gzip_round_trip),
        cmocka_unit_test(test_s3_object_gzip_large_bounded),
        cmocka_unit_test(test_s3_object_gz_parallel_round_trip),
        cmocka_unit_test(test_s3_object_gz_parallel_edges),
        cmocka_unit_test(test_s3_object_gz_parallel_cancel),
        cmocka_unit_test(test_s3_object_gz_parallel_two_at_once),
        cmocka_unit_test(test_s3_object_emit_error_sticks),
        cmocka_unit_test(test_s3_object_error_line_processing_failed),
        cmocka_unit_test(test_s3_object_error_line_http_endpoint),
    };
    return cmocka_run_group_tests_name("s3_object", tests, NULL, NULL);
}
