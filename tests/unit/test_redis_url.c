/* SPDX-License-Identifier: Apache-2.0 */
/* test_redis_url.c: redis_url.c, and the Redis sink's destinations on top of it (its check).
 * A redis:// URL comes apart into host, port, database, ACL user and percent-decoded password,
 * and what follows the database; rediss:// is refused naming the missing TLS support; bad
 * ports, databases and escapes are refused with the URL redacted (never the password); the
 * sink takes /db/STREAM with ?maxlen=N and /db/list/NAME and refuses what names neither. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "redis_url.h"
#include "sink.h"

static void test_redis_url_parts(void **state)
{
    (void)state;
    char err[512] = "";
    struct sl_redis_url u;
    assert_int_equal(sl_redis_url_parse("redis://127.0.0.1:6420/3/orders", &u, err, sizeof(err)),
                     0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6420);
    assert_int_equal(u.db, 3);
    assert_null(u.user);
    assert_null(u.password);
    assert_string_equal(u.rest, "orders");
    assert_null(u.query);
    sl_redis_url_fini(&u);

    assert_int_equal(sl_redis_url_parse("redis://cache.local", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "cache.local");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.rest, "");
    sl_redis_url_fini(&u);

    assert_int_equal(
        sl_redis_url_parse("redis://[::1]:7000/0/list/dlq?maxlen=5", &u, err, sizeof(err)), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7000);
    assert_string_equal(u.rest, "list/dlq");
    assert_string_equal(u.query, "maxlen=5");
    sl_redis_url_fini(&u);
}

static void test_redis_url_user_and_password(void **state)
{
    (void)state;
    char err[512] = "";
    struct sl_redis_url u;
    /* an ACL user, a password with a raw '@' and ':' and an escaped '/' */
    assert_int_equal(
        sl_redis_url_parse("redis://carol:p@ss:w%2Frd@10.0.0.1:6380/1/s", &u, err, sizeof(err)), 0);
    assert_string_equal(u.user, "carol");
    assert_string_equal(u.password, "p@ss:w/rd");
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 1);
    sl_redis_url_fini(&u);
    /* no user: AUTH password alone (":pw@" and "pw@" both) */
    assert_int_equal(sl_redis_url_parse("redis://:secret@h:1/0", &u, err, sizeof(err)), 0);
    assert_null(u.user);
    assert_string_equal(u.password, "secret");
    sl_redis_url_fini(&u);
    assert_int_equal(sl_redis_url_parse("redis://secret@h", &u, err, sizeof(err)), 0);
    assert_null(u.user);
    assert_string_equal(u.password, "secret");
    sl_redis_url_fini(&u);
}

static void expect_refused(const char *url, const char *says)
{
    char err[512] = "";
    struct sl_redis_url u;
    assert_int_equal(sl_redis_url_parse(url, &u, err, sizeof(err)), SL_ECONFIG);
    if (!strstr(err, says)) {
        print_error("%s: error '%s' does not say '%s'\n", url, err, says);
        fail();
    }
    assert_null(strstr(err, "hunter2")); /* never the password */
    assert_non_null(strstr(err, "allowed"));
    sl_redis_url_fini(&u); /* safe after a failure */
}

static void test_redis_url_refused(void **state)
{
    (void)state;
    expect_refused("rediss://u:hunter2@host:6380/0/s", "TLS");
    expect_refused("rediss://u:hunter2@host:6380/0/s", "hiredis");
    expect_refused("http://host/0", "is not a redis:// URL");
    expect_refused("redis://u:hunter2@host:0/0", "bad port");
    expect_refused("redis://u:hunter2@host:65536/0", "bad port");
    expect_refused("redis://u:hunter2@host:x/0", "bad port");
    expect_refused("redis://u:hunter2@:6379/0", "no host");
    expect_refused("redis://u:hunter2@host:6379/orders", "bad database number");
    expect_refused("redis://u:hunter2@host:6379/-1/s", "bad database number");
    expect_refused("redis://u:hunter2%zz@host/0", "bad %-escape");
    expect_refused("redis://u:hunter2@host/0/a b", "space or control");
}

static void expect_sink(const char *dest, bool ok, const char *says)
{
    const struct sl_sink_ops *ops = sl_sink_for(dest);
    assert_non_null(ops);
    assert_string_equal(ops->name, "redis");
    char err[512] = "";
    int r = ops->check(dest, err, sizeof(err));
    if (ok) {
        if (r != 0) {
            print_error("%s: refused: %s\n", dest, err);
            fail();
        }
        return;
    }
    assert_int_equal(r, SL_ECONFIG);
    if (!strstr(err, says)) {
        print_error("%s: error '%s' does not say '%s'\n", dest, err, says);
        fail();
    }
    assert_null(strstr(err, "hunter2"));
}

static void test_redis_sink_destinations(void **state)
{
    (void)state;
    expect_sink("redis://127.0.0.1:6379/0/failures", true, NULL);
    expect_sink("redis://u:hunter2@127.0.0.1:6379/2/failures?maxlen=1000", true, NULL);
    expect_sink("redis://127.0.0.1:6379/0/list/failures", true, NULL);
    expect_sink("redis://127.0.0.1:6379/0", false, "names no stream");
    expect_sink("redis://127.0.0.1:6379", false, "names no stream");
    expect_sink("redis://127.0.0.1:6379/0/list/", false, "names no list");
    expect_sink("redis://127.0.0.1:6379/0/s?maxlen=x", false, "query other than maxlen=N");
    expect_sink("redis://127.0.0.1:6379/0/s?count=3", false, "query other than maxlen=N");
    expect_sink("redis://127.0.0.1:6379/0/list/l?maxlen=3", false, "only streams are trimmed");
    expect_sink("rediss://u:hunter2@127.0.0.1:6379/0/s", false, "TLS");
    expect_sink("redis://127.0.0.1:6379/failures", false, "bad database number");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_url_parts),
        cmocka_unit_test(test_redis_url_user_and_password),
        cmocka_unit_test(test_redis_url_refused),
        cmocka_unit_test(test_redis_sink_destinations),
    };
    return cmocka_run_group_tests_name("redis_url", tests, NULL, NULL);
}
