/* SPDX-License-Identifier: Apache-2.0 */
/* test_redis_src.c: the pure pieces of the Redis Streams source (sources/redis): entry ids as
 * text and numbers, an entry's fields written as a JSON object (the escape check, eight bytes at
 * a time, at every position of a value), and the reader functions of its reading connection
 * (redis_src_reply.c), driven through hiredis' own reader with RESP text: the same redisReply
 * shapes as hiredis' own functions make, a reply cut short freed whole (valgrind: nothing
 * leaks). The adapter itself runs in test_conformance_redis.c and tests/integration/
 * test_redis.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redis/redis_src_int.h"

static void test_redis_src_ids(void **state)
{
    (void)state;
    struct rs_id id;
    char buf[RS_ID_MAX];
    assert_true(rs_id_parse("1700000000000-0", 15, &id));
    assert_true(id.ms == 1700000000000u && id.seq == 0);
    assert_int_equal(rs_id_format(&id, buf), 15);
    assert_string_equal(buf, "1700000000000-0");
    const char *max = "18446744073709551615-18446744073709551615";
    assert_true(rs_id_parse(max, strlen(max), &id));
    assert_true(id.ms == UINT64_MAX && id.seq == UINT64_MAX);
    assert_int_equal(rs_id_format(&id, buf), strlen(max));
    assert_string_equal(buf, max);
    static const char *const bad[] = {
        "", "1", "1-", "-1", "a-1", "1-b", "1-2-3", "18446744073709551616-0", "1 -2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(rs_id_parse(bad[i], strlen(bad[i]), &id));
    }
}

/* The reply hiredis' reader makes of resp with the source's functions (NULL when it is not
 * whole). */
static redisReply *read_reply(const char *resp, size_t len)
{
    redisReader *rd = redisReaderCreateWithFunctions(&rs_reply_functions);
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, resp, len), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    redisReaderFree(rd);
    return reply;
}

static void test_redis_src_reply_shapes(void **state)
{
    (void)state;
    static const char resp[] = "*6\r\n$3\r\nabc\r\n:42\r\n*-1\r\n+OK\r\n*0\r\n"
                               "*2\r\n*1\r\n$0\r\n\r\n-ERR no\r\n";
    redisReply *r = read_reply(resp, sizeof(resp) - 1);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 6);
    assert_int_equal(r->element[0]->type, REDIS_REPLY_STRING);
    assert_int_equal(r->element[0]->len, 3);
    assert_string_equal(r->element[0]->str, "abc");
    assert_int_equal(r->element[1]->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->element[1]->integer, 42);
    assert_int_equal(r->element[2]->type, REDIS_REPLY_NIL);
    assert_int_equal(r->element[3]->type, REDIS_REPLY_STATUS);
    assert_string_equal(r->element[3]->str, "OK");
    assert_int_equal(r->element[4]->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[4]->elements, 0);
    const redisReply *n = r->element[5];
    assert_int_equal(n->elements, 2);
    assert_int_equal(n->element[0]->element[0]->len, 0);
    assert_string_equal(n->element[0]->element[0]->str, "");
    assert_int_equal(n->element[1]->type, REDIS_REPLY_ERROR);
    assert_string_equal(n->element[1]->str, "ERR no");
    rs_reply_functions.freeObject(r);
    /* tops of every kind, each alone */
    r = read_reply("*-1\r\n", 5);
    assert_int_equal(r->type, REDIS_REPLY_NIL);
    rs_reply_functions.freeObject(r);
    r = read_reply("-NOGROUP x\r\n", 12);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_string_equal(r->str, "NOGROUP x");
    rs_reply_functions.freeObject(r);
    /* a reply larger than a block: many entries, each [id, [field, value]] */
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_buf_printf(&b, "*3000\r\n"), 0);
    for (int i = 0; i < 3000; i++) {
        assert_int_equal(
            sl_buf_printf(&b, "*2\r\n$%d\r\n%d-0\r\n*2\r\n$4\r\ndata\r\n$100\r\n%0100d\r\n",
                          (int)snprintf(NULL, 0, "%d-0", i), i, i),
            0);
    }
    r = read_reply(b.data, b.len);
    assert_int_equal(r->elements, 3000);
    assert_int_equal(r->element[2999]->element[1]->element[1]->len, 100);
    assert_string_equal(r->element[2999]->element[0]->str, "2999-0");
    rs_reply_functions.freeObject(r);
    /* cut short: the reader frees what it built (valgrind checks nothing leaks) */
    redisReader *rd = redisReaderCreateWithFunctions(&rs_reply_functions);
    assert_int_equal(redisReaderFeed(rd, b.data, b.len / 2), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    assert_null(reply);
    redisReaderFree(rd);
    sl_buf_fini(&b);
}

/* The fields field=value (one pair) as JSON, through a RESP reply. */
static void fields_json(const char *field, const char *value, struct sl_buf *out)
{
    struct sl_buf resp;
    sl_buf_init(&resp);
    assert_int_equal(sl_buf_printf(&resp, "*2\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(field),
                                   field, strlen(value), value),
                     0);
    redisReply *r = read_reply(resp.data, resp.len);
    sl_buf_truncate(out, 0);
    assert_int_equal(rs_fields_json(out, r), 0);
    rs_reply_functions.freeObject(r);
    sl_buf_fini(&resp);
}

static void test_redis_src_fields_json(void **state)
{
    (void)state;
    struct sl_buf out;
    sl_buf_init(&out);
    fields_json("order", "1", &out);
    assert_string_equal(out.data, "{\"order\":\"1\"}");
    fields_json("city", "Z\xc3\xbcrich", &out);
    assert_string_equal(out.data, "{\"city\":\"Z\xc3\xbcrich\"}");
    /* what JSON escapes, at every place of a value of 19 bytes (words and the tail) */
    static const char specials[] = {'"', '\\', '\n', 0x01, 0x1f};
    static const char *const escaped[] = {"\\\"", "\\\\", "\\n", "\\u0001", "\\u001f"};
    for (size_t k = 0; k < sizeof(specials); k++) {
        for (size_t at = 0; at < 19; at++) {
            char v[20];
            memset(v, 'a', 19);
            v[19] = '\0';
            v[at] = specials[k];
            fields_json("f", v, &out);
            char want[64];
            (void)snprintf(want, sizeof(want), "{\"f\":\"%.*s%s%s\"}", (int)at, v, escaped[k],
                           v + at + 1);
            assert_string_equal(out.data, want);
        }
    }
    /* bytes near the specials that need nothing: copied as they are */
    fields_json("f",
                " !#[]^~\x7f\x80\xff\xc3\xa9"
                "ab",
                &out);
    assert_string_equal(out.data, "{\"f\":\" !#[]^~\x7f\x80\xff\xc3\xa9"
                                  "ab\"}");
    /* not fields: an odd count, or a value that is no string */
    redisReply *r = read_reply("*1\r\n$1\r\na\r\n", 11);
    assert_int_equal(rs_fields_json(&out, r), SL_EPROTO);
    rs_reply_functions.freeObject(r);
    r = read_reply("*2\r\n$1\r\na\r\n:1\r\n", 15);
    assert_int_equal(rs_fields_json(&out, r), SL_EPROTO);
    rs_reply_functions.freeObject(r);
    sl_buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_src_ids),
        cmocka_unit_test(test_redis_src_reply_shapes),
        cmocka_unit_test(test_redis_src_fields_json),
    };
    return cmocka_run_group_tests_name("redis_src", tests, NULL, NULL);
}
