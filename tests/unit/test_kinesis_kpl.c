/* SPDX-License-Identifier: Apache-2.0 */
/* test_kinesis_kpl.c: sources/kinesis/kinesis_kpl.c. wire.md §5's test vector splits into its
 * one user record; hand-built aggregates with shared partition keys, an explicit hash key
 * table, tags and unknown fields of every wire type give their user records in order, borrowed
 * from the input; records without the magic are plain; an aggregate whose MD5 trailer does not
 * match, or whose protobuf is truncated, uses a group, an index outside its table, a record
 * without data or key, or holds no record, is malformed (delivered as stored) with an error
 * naming what is wrong. Hash keys of partition keys match MD5 read as a 128-bit integer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "encoder.h"
#include "err.h"
#include "kinesis/kinesis_kpl.h"
#include "md5.h"

/* ---- building aggregates ---- */

struct pbw {
    unsigned char b[4096];
    size_t n;
};

static void put(struct pbw *w, const void *p, size_t n)
{
    assert_true(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void varint(struct pbw *w, uint64_t v)
{
    do {
        unsigned char c = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) {
            c |= 0x80;
        }
        put(w, &c, 1);
    } while (v);
}

static void field_len(struct pbw *w, unsigned field, const void *p, size_t n)
{
    varint(w, (uint64_t)field << 3 | 2);
    varint(w, n);
    put(w, p, n);
}

static void field_str(struct pbw *w, unsigned field, const char *s)
{
    field_len(w, field, s, strlen(s));
}

static void field_varint(struct pbw *w, unsigned field, uint64_t v)
{
    varint(w, (uint64_t)field << 3);
    varint(w, v);
}

/* A Record message: pk index, optional ehk index (ehk < 0: none), data. */
static void record(struct pbw *agg, uint64_t pk, int ehk, const char *data, bool tags)
{
    struct pbw r = {.n = 0};
    field_varint(&r, 1, pk);
    if (ehk >= 0) {
        field_varint(&r, 2, (uint64_t)ehk);
    }
    field_str(&r, 3, data);
    if (tags) {
        struct pbw t = {.n = 0};
        field_str(&t, 1, "k");
        field_str(&t, 2, "v");
        field_len(&r, 4, t.b, t.n);
    }
    field_len(agg, 3, r.b, r.n);
}

/* magic + protobuf + MD5 of the protobuf (corrupting the MD5 when bad_md5) */
static size_t wrap(const struct pbw *pb, unsigned char *out, bool bad_md5)
{
    static const unsigned char magic[4] = {0xF3, 0x89, 0x9A, 0xC2};
    memcpy(out, magic, 4);
    memcpy(out + 4, pb->b, pb->n);
    sl_md5(pb->b, pb->n, out + 4 + pb->n);
    if (bad_md5) {
        out[4 + pb->n + 15] ^= 1;
    }
    return 4 + pb->n + 16;
}

static int parse(const unsigned char *p, size_t n, struct kinesis_kpl_agg *agg, char *err)
{
    return kinesis_kpl_parse(p, n, agg, err, 160);
}

static void
expect_rec(const struct kinesis_kpl_record *r, const char *pk, const char *ehk, const char *data)
{
    assert_int_equal(r->partition_key_len, strlen(pk));
    assert_memory_equal(r->partition_key, pk, strlen(pk));
    if (ehk) {
        assert_non_null(r->explicit_hash_key);
        assert_int_equal(r->explicit_hash_key_len, strlen(ehk));
        assert_memory_equal(r->explicit_hash_key, ehk, strlen(ehk));
    } else {
        assert_null(r->explicit_hash_key);
    }
    assert_int_equal(r->len, strlen(data));
    assert_memory_equal(r->data, data, strlen(data));
}

static void test_kinesis_kpl_wire_md_vector(void **state)
{
    (void)state;
    const char *b64 = "84mawgoBYRoGCAAaAmhp7U/yh3eWaubfWZEcsFMMwg==";
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_enc_base64_decode(&b, b64, strlen(b64)), 0);
    struct kinesis_kpl_agg agg;
    char err[160] = "";
    assert_int_equal(parse((unsigned char *)b.data, b.len, &agg, err), KINESIS_KPL_AGGREGATE);
    assert_int_equal(agg.n, 1);
    expect_rec(&agg.records[0], "a", NULL, "hi");
    /* borrowed from the input */
    assert_true((const char *)agg.records[0].data > b.data &&
                (const char *)agg.records[0].data < b.data + b.len);
    kinesis_kpl_agg_fini(&agg);
    assert_null(agg.records);
    sl_buf_fini(&b);
}

static void test_kinesis_kpl_many_records(void **state)
{
    (void)state;
    struct pbw pb = {.n = 0};
    /* unknown fields of every wire type before, between and after the tables */
    field_varint(&pb, 9, 300);
    varint(&pb, 10 << 3 | 1);
    put(&pb, "12345678", 8);
    field_str(&pb, 1, "user-1");
    varint(&pb, 11 << 3 | 5);
    put(&pb, "1234", 4);
    field_str(&pb, 1, "user-2");
    field_str(&pb, 2, "170141183460469231731687303715884105728");
    record(&pb, 0, -1, "first", false);
    record(&pb, 1, 0, "second", true);
    record(&pb, 0, -1, "", false); /* empty data is data */
    field_str(&pb, 12, "unknown length-delimited");
    /* a table entry after the records that use it */
    field_str(&pb, 1, "user-3");
    record(&pb, 2, -1, "fourth", false);
    unsigned char buf[4200];
    size_t n = wrap(&pb, buf, false);
    struct kinesis_kpl_agg agg;
    char err[160] = "";
    assert_int_equal(parse(buf, n, &agg, err), KINESIS_KPL_AGGREGATE);
    assert_int_equal(agg.n, 4);
    expect_rec(&agg.records[0], "user-1", NULL, "first");
    expect_rec(&agg.records[1], "user-2", "170141183460469231731687303715884105728", "second");
    expect_rec(&agg.records[2], "user-1", NULL, "");
    expect_rec(&agg.records[3], "user-3", NULL, "fourth");
    kinesis_kpl_agg_fini(&agg);
}

static void test_kinesis_kpl_plain(void **state)
{
    (void)state;
    struct kinesis_kpl_agg agg;
    char err[160] = "";
    assert_int_equal(parse((const unsigned char *)"hello", 5, &agg, err), KINESIS_KPL_PLAIN);
    assert_int_equal(agg.n, 0);
    assert_null(agg.records);
    assert_int_equal(parse((const unsigned char *)"", 0, &agg, err), KINESIS_KPL_PLAIN);
    static const unsigned char three[3] = {0xF3, 0x89, 0x9A};
    assert_int_equal(parse(three, 3, &agg, err), KINESIS_KPL_PLAIN);
    /* a record that starts like the magic but differs in its last byte */
    static const unsigned char near[24] = {0xF3, 0x89, 0x9A, 0xC3};
    assert_int_equal(parse(near, sizeof(near), &agg, err), KINESIS_KPL_PLAIN);
}

static void expect_malformed(const struct pbw *pb, bool bad_md5, const char *why)
{
    unsigned char buf[4200];
    size_t n = wrap(pb, buf, bad_md5);
    struct kinesis_kpl_agg agg;
    char err[160] = "";
    assert_int_equal(parse(buf, n, &agg, err), KINESIS_KPL_MALFORMED);
    assert_int_equal(agg.n, 0);
    assert_null(agg.records);
    if (!strstr(err, why)) {
        print_error("error '%s' does not say '%s'\n", err, why);
        fail();
    }
}

static void test_kinesis_kpl_malformed(void **state)
{
    (void)state;
    struct kinesis_kpl_agg agg;
    char err[160] = "";
    static const unsigned char short_agg[10] = {0xF3, 0x89, 0x9A, 0xC2, 1, 2, 3};
    assert_int_equal(parse(short_agg, sizeof(short_agg), &agg, err), KINESIS_KPL_MALFORMED);
    assert_string_equal(err, "aggregate of 10 bytes is shorter than magic + MD5 (20 bytes)");

    struct pbw good = {.n = 0};
    field_str(&good, 1, "k");
    record(&good, 0, -1, "d", false);
    expect_malformed(&good, true, "MD5 trailer does not match");

    struct pbw pb = good;
    varint(&pb, 9 << 3); /* a key without its varint */
    expect_malformed(&pb, false, "truncated or overlong varint");

    pb = good;
    varint(&pb, 12 << 3 | 2);
    varint(&pb, 50); /* 50 bytes promised, none there */
    expect_malformed(&pb, false, "length runs past the end");

    pb = good;
    varint(&pb, 12 << 3 | 3); /* start group */
    expect_malformed(&pb, false, "groups are not allowed");

    pb = good;
    unsigned char ten[11];
    memset(ten, 0xff, sizeof(ten));
    put(&pb, ten, sizeof(ten)); /* a varint longer than 10 bytes */
    expect_malformed(&pb, false, "truncated or overlong field key");

    pb = good;
    record(&pb, 1, -1, "x", false);
    expect_malformed(&pb, false, "partition_key_index is outside the partition key table");

    pb = good;
    record(&pb, 0, 0, "x", false);
    expect_malformed(&pb, false, "explicit_hash_key_index is outside");

    pb = good;
    struct pbw r = {.n = 0};
    field_varint(&r, 1, 0);
    field_len(&pb, 3, r.b, r.n);
    expect_malformed(&pb, false, "record has no data");

    pb = good;
    r.n = 0;
    field_str(&r, 3, "x");
    field_len(&pb, 3, r.b, r.n);
    expect_malformed(&pb, false, "record has no partition_key_index");

    pb = good;
    r.n = 0;
    field_str(&r, 1, "x"); /* partition_key_index as bytes */
    field_str(&r, 3, "x");
    field_len(&pb, 3, r.b, r.n);
    expect_malformed(&pb, false, "record field has the wrong wire type");

    pb = good;
    field_varint(&pb, 3, 7); /* records as a varint */
    expect_malformed(&pb, false, "aggregate field has the wrong wire type");

    pb.n = 0;
    field_str(&pb, 1, "k");
    expect_malformed(&pb, false, "aggregate holds no records");
    pb.n = 0;
    expect_malformed(&pb, false, "aggregate holds no records");
}

static void test_kinesis_kpl_hash_key(void **state)
{
    (void)state;
    char out[KINESIS_HASH_KEY_TEXT_MAX];
    /* wire.md §1.1's vector, and python3 int.from_bytes(hashlib.md5(k).digest(), 'big') */
    kinesis_kpl_hash_key("a", 1, out);
    assert_string_equal(out, "16955237001963240173058271559858726497");
    kinesis_kpl_hash_key("", 0, out);
    assert_string_equal(out, "281949768489412648962353822266799178366");
    kinesis_kpl_hash_key("pk1", 3, out);
    assert_string_equal(out, "329398341438914906102347661116985167824");
    kinesis_kpl_hash_key("user-42", 7, out);
    assert_string_equal(out, "157107139746365290205026809710278036035");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinesis_kpl_wire_md_vector),
        cmocka_unit_test(test_kinesis_kpl_many_records),
        cmocka_unit_test(test_kinesis_kpl_plain),
        cmocka_unit_test(test_kinesis_kpl_malformed),
        cmocka_unit_test(test_kinesis_kpl_hash_key),
    };
    return cmocka_run_group_tests_name("kinesis_kpl", tests, NULL, NULL);
}
