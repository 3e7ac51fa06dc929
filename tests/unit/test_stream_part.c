/* SPDX-License-Identifier: Apache-2.0 */
/* test_stream_part.c: a delivery stream's partition buffers (stream_part.c) with the time passed
 * in (no loop, no clock): records of one key in one object, of two keys in two; a partition
 * sealed at SizeInMBs (not before), at IntervalInSeconds from its OLDEST record (others not
 * yet); the open-partition limit sealing the oldest partition rather than dropping; error
 * partitions apart from data partitions of the same key; the delimiter after each record; and
 * the keys kept for the object's Prefix. And the partition of a record under dynamic
 * partitioning (stream_key.c): its query keys, or its partitioning-failed error record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "errlist.h"
#include "fh_partition.h"
#include "s3_keys.h"
#include "stream_key.h"
#include "stream_part.h"

struct sink {
    struct sl_stream_obj *objs[16];
    size_t n;
};

static void emit(void *arg, struct sl_stream_obj *o)
{
    struct sink *k = arg;
    assert_true(k->n < 16);
    k->objs[k->n++] = o;
}

static void sink_free(struct sink *k)
{
    for (size_t i = 0; i < k->n; i++) {
        sl_stream_obj_free(k->objs[i]);
    }
    k->n = 0;
}

static struct sl_stream_parts *parts(int64_t size, int64_t interval_ms, size_t max)
{
    struct sl_stream_parts_conf c = {
        .size_bytes = size, .interval_ms = interval_ms, .max_parts = max};
    struct sl_stream_parts *p = NULL;
    assert_int_equal(sl_stream_parts_new(&c, &p), 0);
    return p;
}

static void add(struct sl_stream_parts *p,
                struct sink *k,
                const char *key,
                const char *err_type,
                const char *data,
                int64_t at,
                uint64_t id)
{
    struct sl_stream_part_key pk = {.id = key, .id_len = strlen(key), .error_type = err_type};
    assert_int_equal(sl_stream_parts_add(p, &pk, data, strlen(data), NULL, 0, at, id, emit, k), 0);
}

static void test_stream_part_size_seals_one_partition(void **state)
{
    (void)state;
    struct sink k = {0};
    struct sl_stream_parts *p = parts(10, 60000, 500);
    add(p, &k, "a", NULL, "12345", 1000, 1);
    add(p, &k, "b", NULL, "xyz", 1001, 2);
    add(p, &k, "a", NULL, "6789", 1002, 3);
    assert_int_equal(k.n, 0); /* 9 bytes: not yet */
    add(p, &k, "a", NULL, "0", 1003, 4);
    assert_int_equal(k.n, 1); /* 10 bytes: sealed, b stays */
    struct sl_stream_obj *o = k.objs[0];
    assert_int_equal(o->n_records, 3);
    assert_memory_equal(o->data.data, "1234567890", 10);
    assert_int_equal(o->ids[0], 1);
    assert_int_equal(o->ids[2], 4);
    assert_memory_equal(o->recs[1].data, "6789", 4);
    assert_int_equal(o->oldest_ms, 1000);
    assert_int_equal(sl_stream_parts_count(p), 1);
    assert_int_equal(sl_stream_parts_bytes(p), 3);
    assert_int_equal(sl_stream_parts_records(p), 1);
    sink_free(&k);
    sl_stream_parts_free(p);
}

static void test_stream_part_interval_from_oldest(void **state)
{
    (void)state;
    struct sink k = {0};
    struct sl_stream_parts *p = parts(1 << 20, 5000, 500);
    add(p, &k, "a", NULL, "x", 1000, 1);
    add(p, &k, "b", NULL, "y", 3000, 2);
    add(p, &k, "a", NULL, "z", 4000, 3);
    assert_int_equal(sl_stream_parts_next_due(p), 6000);
    assert_int_equal(sl_stream_parts_oldest(p), 1000);
    sl_stream_parts_seal_due(p, 5999, emit, &k);
    assert_int_equal(k.n, 0);
    sl_stream_parts_seal_due(p, 6000, emit, &k);
    assert_int_equal(k.n, 1); /* a, due from its first record; b not yet */
    assert_int_equal(k.objs[0]->n_records, 2);
    assert_int_equal(sl_stream_parts_next_due(p), 8000);
    sl_stream_parts_seal_due(p, INT64_MAX, emit, &k);
    assert_int_equal(k.n, 2);
    assert_int_equal(sl_stream_parts_next_due(p), INT64_MAX);
    assert_int_equal(sl_stream_parts_oldest(p), -1);
    sink_free(&k);
    sl_stream_parts_free(p);
}

static void test_stream_part_limit_seals_oldest(void **state)
{
    (void)state;
    struct sink k = {0};
    struct sl_stream_parts *p = parts(1 << 20, 60000, 2);
    add(p, &k, "b", NULL, "b1", 2000, 1);
    add(p, &k, "a", NULL, "a1", 1000, 2);
    add(p, &k, "c", NULL, "c1", 3000, 3); /* a third partition: a (oldest) is sealed */
    assert_int_equal(k.n, 1);
    assert_string_equal(k.objs[0]->key, "a");
    assert_int_equal(sl_stream_parts_count(p), 2);
    assert_int_equal(sl_stream_parts_records(p), 2);
    sink_free(&k);
    sl_stream_parts_free(p);
}

static void test_stream_part_error_type_apart_and_keys_kept(void **state)
{
    (void)state;
    struct sink k = {0};
    struct sl_stream_parts *p = parts(1 << 20, 60000, 500);
    struct sl_strmap q = {0};
    assert_int_equal(sl_strmap_put(&q, "customer", "7"), 0);
    struct sl_stream_part_key pk = {.id = "1:7", .id_len = 3, .query = &q};
    assert_int_equal(sl_stream_parts_add(p, &pk, "r", 1, "\n", 1, 1000, 1, emit, &k), 0);
    sl_strmap_clear(&q, false); /* copied into the partition */
    add(p, &k, "", SL_S3_PROCESSING_FAILED, "line1\n", 1000, 2);
    add(p, &k, "", SL_S3_PARTITIONING_FAILED, "line2\n", 1000, 3);
    add(p, &k, "", NULL, "plain", 1000, 4);
    assert_int_equal(sl_stream_parts_count(p), 4);
    sl_stream_parts_seal_due(p, INT64_MAX, emit, &k);
    assert_int_equal(k.n, 4);
    size_t seen = 0;
    for (size_t i = 0; i < k.n; i++) {
        struct sl_stream_obj *o = k.objs[i];
        assert_int_equal(o->n_records, 1);
        if (o->query.n == 1) {
            assert_string_equal(sl_strmap_get(&o->query, "customer"), "7");
            assert_memory_equal(o->data.data, "r\n", 2); /* the delimiter after the record */
            assert_null(o->error_type);
            seen |= 1;
        } else if (o->error_type) {
            seen |= strcmp(o->error_type, SL_S3_PROCESSING_FAILED) == 0 ? 2 : 4;
        } else {
            seen |= 8;
        }
    }
    assert_int_equal(seen, 15);
    sink_free(&k);
    sl_stream_parts_free(p);
}

/* stream_key.c: the query's keys make the partition; a record without them gets its error
 * record, field by field. */
static void test_stream_key_query_and_failure(void **state)
{
    (void)state;
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_fh_query *q = NULL;
    assert_int_equal(sl_fh_query_new("{c: .customer}", "f", "$.q", &q, &errs), 0);
    struct sl_s3_layout_conf lc = {.prefix = "c=!{partitionKeyFromQuery:c}/",
                                   .error_prefix = "e/!{firehose:error-output-type}/",
                                   .dynamic_partitioning = true};
    struct sl_s3_layout *l = NULL;
    char err[256];
    assert_int_equal(sl_s3_layout_new(&lc, &l, err, sizeof(err)), 0);
    struct sl_stream_key k;
    sl_stream_key_init(&k, q, l);
    struct sl_stream_part_key pk;
    const void *line = NULL;
    size_t len = 0;
    const char *rec = "{\"customer\":\"acme\"}";
    assert_int_equal(sl_stream_key_of(&k, rec, strlen(rec), 1000, 2000, NULL, &pk, &line, &len), 0);
    assert_null(pk.error_type);
    assert_string_equal(sl_strmap_get(pk.query, "c"), "acme");
    char id1[64];
    (void)snprintf(id1, sizeof(id1), "%.*s", (int)pk.id_len, pk.id);
    rec = "{\"customer\":\"other\"}";
    assert_int_equal(sl_stream_key_of(&k, rec, strlen(rec), 1000, 2000, NULL, &pk, &line, &len), 0);
    assert_true(pk.id_len != strlen(id1) || memcmp(pk.id, id1, pk.id_len) != 0);
    rec = "{\"n\":1}";
    assert_int_equal(sl_stream_key_of(&k, rec, strlen(rec), 1000, 2000, NULL, &pk, &line, &len), 1);
    assert_string_equal(pk.error_type, SL_S3_PARTITIONING_FAILED);
    cJSON *e = cJSON_ParseWithLength(line, len);
    assert_non_null(e);
    assert_int_equal(cJSON_GetObjectItem(e, "arrivalTimestamp")->valuedouble, 1000);
    assert_int_equal(cJSON_GetObjectItem(e, "attemptEndingTimestamp")->valuedouble, 2000);
    assert_string_equal(cJSON_GetObjectItem(e, "errorCode")->valuestring, SL_FH_PARTITION_ERR_CODE);
    assert_string_equal(cJSON_GetObjectItem(e, "rawData")->valuestring, "eyJuIjoxfQ==");
    cJSON_Delete(e);
    rec = "not json";
    assert_int_equal(sl_stream_key_of(&k, rec, strlen(rec), 1000, 2000, NULL, &pk, &line, &len), 1);
    assert_non_null(strstr(line, "\"errorMessage\":\"Non JSON record provided\""));
    sl_stream_key_fini(&k);
    sl_s3_layout_free(l);
    sl_fh_query_free(q);
    sl_errlist_fini(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_part_size_seals_one_partition),
        cmocka_unit_test(test_stream_part_interval_from_oldest),
        cmocka_unit_test(test_stream_part_limit_seals_oldest),
        cmocka_unit_test(test_stream_part_error_type_apart_and_keys_kept),
        cmocka_unit_test(test_stream_key_query_and_failure),
    };
    return cmocka_run_group_tests_name("stream_part", tests, NULL, NULL);
}
