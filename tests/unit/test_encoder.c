/* SPDX-License-Identifier: Apache-2.0 */
/* test_encoder.c: the event building blocks byte for byte (base64 against RFC 4648's vectors,
 * JSON string escaping, decimals, timestamps), and one whole file-source record against the
 * exact text a function receives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "config.h"
#include "encoder.h"
#include "helpers.h"
#include "partition.h"
#include "source.h"

static void expect_base64(const char *in, size_t n, const char *want)
{
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_enc_base64(&b, in, n), 0);
    assert_int_equal(b.len, sl_enc_base64_len(n));
    assert_string_equal(b.data, want);
    struct sl_buf d;
    sl_buf_init(&d);
    assert_int_equal(sl_enc_base64_decode(&d, b.data, b.len), 0);
    assert_int_equal(d.len, n);
    assert_memory_equal(d.data ? d.data : "", in, n);
    sl_buf_fini(&d);
    sl_buf_fini(&b);
}

static void test_encoder_base64_rfc4648(void **state)
{
    (void)state;
    expect_base64("", 0, "");
    expect_base64("f", 1, "Zg==");
    expect_base64("fo", 2, "Zm8=");
    expect_base64("foo", 3, "Zm9v");
    expect_base64("foob", 4, "Zm9vYg==");
    expect_base64("fooba", 5, "Zm9vYmE=");
    expect_base64("foobar", 6, "Zm9vYmFy");
}

static void test_encoder_base64_binary(void **state)
{
    (void)state;
    char all[256];
    for (int i = 0; i < 256; i++) {
        all[i] = (char)i;
    }
    expect_base64(all, sizeof(all),
                  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7"
                  "PD0+P0BBQkNERUZHSElKS0xNTk9QUVJTVFVWV1hZWltcXV5fYGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3"
                  "eHl6e3x9fn+AgYKDhIWGh4iJiouMjY6PkJGSk5SVlpeYmZqbnJ2en6ChoqOkpaanqKmqq6ytrq+wsbKz"
                  "tLW2t7i5uru8vb6/wMHCw8TFxsfIycrLzM3Oz9DR0tPU1dbX2Nna29zd3t/g4eLj5OXm5+jp6uvs7e7v"
                  "8PHy8/T19vf4+fr7/P3+/w==");
    /* every length and alignment round-trips, appended after existing bytes */
    for (size_t n = 0; n < 40; n++) {
        struct sl_buf b, d;
        sl_buf_init(&b);
        sl_buf_init(&d);
        assert_int_equal(sl_buf_puts(&b, "x"), 0);
        assert_int_equal(sl_enc_base64(&b, all + 200 - n, n), 0);
        assert_int_equal(sl_buf_puts(&d, "y"), 0);
        assert_int_equal(sl_enc_base64_decode(&d, b.data + 1, b.len - 1), 0);
        assert_int_equal(d.len, n + 1);
        assert_memory_equal(d.data + 1, all + 200 - n, n);
        sl_buf_fini(&b);
        sl_buf_fini(&d);
    }
}

static void test_encoder_base64_decode_forms(void **state)
{
    (void)state;
    struct sl_buf d;
    sl_buf_init(&d);
    assert_int_equal(sl_enc_base64_decode(&d, "Zm9vYg", 6), 0); /* padding optional */
    assert_string_equal(d.data, "foob");
    sl_buf_truncate(&d, 0);
    assert_int_equal(sl_enc_base64_decode(&d, "Zm9vYmE", 7), 0);
    assert_string_equal(d.data, "fooba");
    sl_buf_truncate(&d, 0);
    assert_int_equal(sl_enc_base64_decode(&d, "Zm9v*mFy", 8), SL_EINVAL);
    assert_int_equal(sl_enc_base64_decode(&d, "Zm9vY", 5), SL_EINVAL);
    assert_int_equal(sl_enc_base64_decode(&d, "Zg=a", 4), SL_EINVAL);
    assert_int_equal(sl_enc_base64_decode(&d, "Z===", 4), SL_EINVAL);
    assert_int_equal(sl_enc_base64_decode(&d, "Zm9v\x80mFy", 8), SL_EINVAL);
    assert_int_equal(d.len, 0);
    sl_buf_fini(&d);
}

static void expect_json(const char *in, size_t n, const char *want)
{
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_enc_json_str(&b, in, n), 0);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    sl_buf_fini(&b);
}

static void test_encoder_json_escapes(void **state)
{
    (void)state;
    expect_json("", 0, "\"\"");
    expect_json("plain text", 10, "\"plain text\"");
    expect_json("a\"b\\c/d", 7, "\"a\\\"b\\\\c/d\"");
    expect_json("\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\"");
    expect_json("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\x7f\"");
    expect_json("nul\0x", 5, "\"nul\\u0000x\"");
    expect_json("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15,
                "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
    /* a long run with escapes at both ends, so the buffer must grow mid-string */
    char big[3000];
    memset(big, 'a', sizeof(big));
    big[0] = '"';
    big[sizeof(big) - 1] = '\n';
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_enc_json_str(&b, big, sizeof(big)), 0);
    assert_int_equal(b.len, sizeof(big) + 2 + 2);
    assert_memory_equal(b.data, "\"\\\"aaa", 6);
    assert_memory_equal(b.data + b.len - 4, "a\\n\"", 4);
    sl_buf_fini(&b);
}

/* Every byte value, at every position of a string of 19 bytes (so at each place in the words the
 * encoder tests eight at a time, and in the tail after them), among neighbours that are plain,
 * UTF-8 or DEL, is escaped exactly as one byte at a time would escape it. */
static void test_encoder_json_escapes_every_byte_everywhere(void **state)
{
    (void)state;
    static const unsigned char fills[] = {'a', 0xc3, 0x7f, '!', '#', '[', ']'};
    struct sl_buf got, want;
    sl_buf_init(&got);
    sl_buf_init(&want);
    for (size_t f = 0; f < sizeof(fills); f++) {
        for (unsigned v = 0; v < 256; v++) {
            for (size_t pos = 0; pos < 19; pos++) {
                unsigned char in[19];
                memset(in, fills[f], sizeof(in));
                in[pos] = (unsigned char)v;
                sl_buf_truncate(&got, 0);
                sl_buf_truncate(&want, 0);
                assert_int_equal(sl_enc_json_str(&got, (const char *)in, sizeof(in)), 0);
                assert_int_equal(sl_buf_puts(&want, "\""), 0);
                for (size_t i = 0; i < sizeof(in); i++) {
                    unsigned char ch = in[i];
                    int r;
                    if (ch == '"' || ch == '\\') {
                        r = sl_buf_printf(&want, "\\%c", ch);
                    } else if (ch == '\n' || ch == '\r' || ch == '\t' || ch == '\b' || ch == '\f') {
                        r = sl_buf_printf(&want, "\\%c",
                                          "nrtbf"[strchr("\n\r\t\b\f", ch) - "\n\r\t\b\f"]);
                    } else if (ch < 0x20) {
                        r = sl_buf_printf(&want, "\\u%04x", ch);
                    } else {
                        r = sl_buf_append(&want, &ch, 1);
                    }
                    assert_int_equal(r, 0);
                }
                assert_int_equal(sl_buf_puts(&want, "\""), 0);
                assert_int_equal(got.len, want.len);
                assert_memory_equal(got.data, want.data, want.len);
            }
        }
    }
    sl_buf_fini(&got);
    sl_buf_fini(&want);
}

static void expect_u64(uint64_t v, const char *want)
{
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_enc_u64(&b, v), 0);
    assert_string_equal(b.data, want);
    sl_buf_fini(&b);
}

static void test_encoder_u64(void **state)
{
    (void)state;
    expect_u64(0, "0");
    expect_u64(7, "7");
    expect_u64(10, "10");
    expect_u64(1234567890, "1234567890");
    expect_u64(UINT64_MAX, "18446744073709551615");
    expect_u64((uint64_t)INT64_MAX + 1, "9223372036854775808");
}

static void expect_time(int (*fn)(struct sl_buf *, int64_t), int64_t ms, const char *want)
{
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(fn(&b, ms), 0);
    assert_string_equal(b.data, want);
    sl_buf_fini(&b);
}

static void test_encoder_epoch_seconds(void **state)
{
    (void)state;
    expect_time(sl_enc_epoch_seconds, 1545084650987, "1545084650.987");
    expect_time(sl_enc_epoch_seconds, 5, "0.005");
    expect_time(sl_enc_epoch_seconds, 0, "0.000");
    expect_time(sl_enc_epoch_seconds, 1000, "1.000");
    expect_time(sl_enc_epoch_seconds, 1545084650050, "1545084650.050");
    expect_time(sl_enc_epoch_seconds, -1500, "-1.500");
    expect_time(sl_enc_epoch_seconds, INT64_MIN, "-9223372036854775.808");
}

static void test_encoder_iso8601(void **state)
{
    (void)state;
    expect_time(sl_enc_iso8601_ms, 1573691886021, "2019-11-14T00:38:06.021Z");
    expect_time(sl_enc_iso8601_ms, 0, "1970-01-01T00:00:00.000Z");
    expect_time(sl_enc_iso8601_ms, -1, "1969-12-31T23:59:59.999Z");
    expect_time(sl_enc_iso8601_ms, 951782400000, "2000-02-29T00:00:00.000Z");
    expect_time(sl_enc_iso8601_ms, 951868799999, "2000-02-29T23:59:59.999Z");
    expect_time(sl_enc_iso8601_ms, 4107542400000, "2100-03-01T00:00:00.000Z");
    expect_time(sl_enc_iso8601_ms, 1709164800000, "2024-02-29T00:00:00.000Z");
    expect_time(sl_enc_iso8601_ms, 253402300799999, "9999-12-31T23:59:59.999Z");
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_enc_iso8601_ms(&b, 253402300800000), SL_EINVAL);
    sl_buf_fini(&b);
}

/* ---- one whole record of the file source ---- */

struct rec_owner {
    struct sl_part *part;
};

static int rec_part_add(void *owner, const char *id, const char *name, struct sl_part **ret_part)
{
    struct rec_owner *o = owner;
    assert_null(o->part);
    o->part = sl_part_new(id, name);
    assert_non_null(o->part);
    *ret_part = o->part;
    return 0;
}

static void rec_part_wake(void *owner, struct sl_part *part)
{
    (void)owner;
    (void)part;
}

static int rec_part_set_start(void *owner, struct sl_part *part, const char *pos)
{
    (void)owner;
    (void)part;
    (void)pos;
    return 0;
}

static void rec_part_gone(void *owner, struct sl_part *part)
{
    (void)owner;
    (void)part;
}

static void set_opt(void *ctx, const struct sl_source_ops *ops, const char *name, int64_t v)
{
    for (const struct sl_opt *o = ops->opts; o->name; o++) {
        if (strcmp(o->name, name) == 0) {
            memcpy((char *)ctx + o->off, &v, sizeof(v));
            return;
        }
    }
    fail_msg("no option %s", name);
}

static void test_encoder_file_record_exact(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/we\"ird\\name.log", dir);
    test_write_file(path, "w", "hello\nworld\n", 12);
    char arn[600];
    snprintf(arn, sizeof(arn), "file://%s", path);

    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct sl_clock_fake clk;
    sl_clock_fake_init(&clk, 1000, 1545084650987);
    struct rec_owner owner = {0};
    struct sl_source_env env = {
        .loop = &loop,
        .clock = &clk.clock,
        .inst = "t",
        .region = "eu-west-1",
        .arn = arn,
        .starting_position = SL_START_TRIM_HORIZON,
        .owner = &owner,
        .part_add = rec_part_add,
        .part_wake = rec_part_wake,
        .part_gone = rec_part_gone,
        .part_set_start = rec_part_set_start,
    };
    const struct sl_source_ops *ops = &sl_source_file;
    void *ctx = sl_calloc(1, ops->ctx_size);
    set_opt(ctx, ops, "max_line_bytes", 1024);
    set_opt(ctx, ops, "poll_interval", 1000);
    set_opt(ctx, ops, "rotate_wait", 1000);
    set_opt(ctx, ops, "read_chunk", 4096);
    char err[256];
    assert_int_equal(ops->check(ctx, arn, err, sizeof(err)), 0);
    assert_int_equal(ops->init(ctx, &env, err, sizeof(err)), 0);
    assert_int_equal(ops->start(ctx), 0);
    assert_non_null(owner.part);
    assert_int_equal(ops->fetch(ctx, owner.part, 100, 1 << 20), 2);

    struct sl_buf out;
    sl_buf_init(&out);
    assert_int_equal(ops->encode_record(ctx, owner.part, sl_recq_at(&owner.part->q, 1), &out), 0);
    char want[2048];
    snprintf(want, sizeof(want),
             "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"%s/"
             "we\\\"ird\\\\name.log\","
             "\"sequenceNumber\":\"6\",\"data\":\"d29ybGQ=\",\"approximateArrivalTimestamp\":"
             "1545084650.987},"
             "\"eventSource\":\"sluice:file\",\"eventVersion\":\"1.0\",\"eventID\":\"%s/"
             "we\\\"ird\\\\name.log:1545084650987000:6\","
             "\"eventName\":\"sluice:file:record\",\"eventSourceARN\":\"file://%s/"
             "we\\\"ird\\\\name.log\","
             "\"awsRegion\":\"eu-west-1\"}",
             dir, dir, dir);
    assert_string_equal(out.data, want);
    assert_int_equal(out.len, strlen(want));

    /* the first record, appended after the second: positions and data are its own */
    sl_buf_truncate(&out, 0);
    assert_int_equal(ops->encode_record(ctx, owner.part, sl_recq_at(&owner.part->q, 0), &out), 0);
    assert_non_null(strstr(out.data, "\"sequenceNumber\":\"0\",\"data\":\"aGVsbG8=\""));
    assert_non_null(strstr(out.data, "name.log:1545084650987000:0\",\"eventName\""));
    sl_buf_fini(&out);

    ops->stop(ctx);
    ops->part_release(ctx, owner.part);
    sl_part_free(owner.part);
    ops->fini(ctx);
    sl_free(ctx);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop), 0);
    test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encoder_base64_rfc4648),
        cmocka_unit_test(test_encoder_base64_binary),
        cmocka_unit_test(test_encoder_base64_decode_forms),
        cmocka_unit_test(test_encoder_json_escapes),
        cmocka_unit_test(test_encoder_json_escapes_every_byte_everywhere),
        cmocka_unit_test(test_encoder_u64),
        cmocka_unit_test(test_encoder_epoch_seconds),
        cmocka_unit_test(test_encoder_iso8601),
        cmocka_unit_test(test_encoder_file_record_exact),
    };
    return cmocka_run_group_tests_name("encoder", tests, NULL, NULL);
}
