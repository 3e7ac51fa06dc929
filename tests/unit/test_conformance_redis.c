/* SPDX-License-Identifier: Apache-2.0 */
/* test_conformance_redis.c: the stream checks of the source conformance suite
 * (conformance_source.h) run against the Redis Streams source, through the registry like the
 * other adapters, with a redis-server of the test's own (redis_server.h) holding each check's
 * records in a stream of its own (XADD <stream> * d <record>). Each record's payload is then
 * the entry's fields as a JSON object, {"d":"<record>"} (payload). The consumer group keeps the
 * positions (keeps_positions): `stored` reads the group back (the first entry still pending,
 * else the one after the last delivered) as an index into the stream. `end` deletes the stream,
 * so the partition is gone, not revoked. The consumer name is fixed, so a second instance is
 * the same consumer and reads its pending entries again first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance_source.h"
#include "helpers.h"
#include "log.h"
#include "redis_server.h"

#define RC_GROUP "conf-group"

static struct test_redis server;
static char stream[64];
static unsigned streams;

static cJSON *rc_prepare(void *arg, const char *const *data, size_t n, char *arn, size_t len)
{
    (void)arg;
    test_redis_need();
    if (!server.pid) {
        test_redis_start(&server, 0, NULL);
    }
    (void)snprintf(stream, sizeof(stream), "conf-%u", ++streams);
    for (size_t i = 0; i < n; i++) {
        free(test_redis_cmd(&server, "XADD %s * d %s", stream, data[i]));
    }
    (void)snprintf(arn, len, "redis://127.0.0.1:%d/0/%s", server.port, stream);
    cJSON *opts = cJSON_Parse("{\"consumer_group\":\"" RC_GROUP "\",\"consumer_name\":\"conf\","
                              "\"block_time\":\"50ms\"}");
    assert_non_null(opts);
    return opts;
}

static void rc_append(void *arg, const char *data)
{
    (void)arg;
    free(test_redis_cmd(&server, "XADD %s * d %s", stream, data));
}

static void rc_end(void *arg)
{
    (void)arg;
    free(test_redis_cmd(&server, "DEL %s", stream));
}

/* The index in the stream of the entry id (its line in XRANGE's flattened answer: id, field,
 * value per entry), or -1. */
static int64_t rc_index(const char *id)
{
    char *all = test_redis_cmd(&server, "XRANGE %s - +", stream);
    assert_non_null(all);
    int64_t at = -1;
    int64_t line = 0;
    for (char *p = all, *nl; p && *p; p = nl ? nl + 1 : NULL, line++) {
        nl = strchr(p, '\n');
        if (nl) {
            *nl = '\0';
        }
        if (line % 3 == 0 && strcmp(p, id) == 0) {
            at = line / 3;
            break;
        }
    }
    free(all);
    return at;
}

/* What the group says is done: the index of its first pending entry, else the one after the
 * last delivered entry; -1 without a group. */
static int64_t rc_stored(void *arg)
{
    (void)arg;
    /* XPENDING's summary: count, smallest id, largest id, consumers */
    char *p = test_redis_cmd(&server, "XPENDING %s " RC_GROUP, stream);
    assert_non_null(p);
    if (strncmp(p, "NOGROUP", 7) == 0) {
        free(p);
        return -1;
    }
    int64_t stored;
    if (strtoll(p, NULL, 10) > 0) {
        char *first = strchr(p, '\n') + 1;
        *strchr(first, '\n') = '\0';
        stored = rc_index(first);
    } else {
        /* XINFO GROUPS: name, <group>, consumers, n, pending, n, last-delivered-id, <id>, ... */
        char *g = test_redis_cmd(&server, "XINFO GROUPS %s", stream);
        assert_non_null(g);
        char *last = strstr(g, "last-delivered-id\n");
        assert_non_null(last);
        last += strlen("last-delivered-id\n");
        char *nl = strchr(last, '\n');
        if (nl) {
            *nl = '\0';
        }
        stored = strcmp(last, "0-0") == 0 ? 0 : rc_index(last) + 1;
        free(g);
    }
    free(p);
    return stored;
}

static void rc_payload(void *arg, const char *data, char *buf, size_t len)
{
    (void)arg;
    size_t w = (size_t)snprintf(buf, len, "{\"d\":\"");
    for (const char *s = data; *s && w + 4 < len; s++) {
        if (*s == '"' || *s == '\\') {
            buf[w++] = '\\';
        }
        buf[w++] = *s;
    }
    (void)snprintf(buf + w, len - w, "\"}");
}

static const struct conf_source redis_source = {
    .name = "redis",
    .prepare = rc_prepare,
    .append = rc_append,
    .end = rc_end,
    .stored = rc_stored,
    .payload = rc_payload,
};

static int rc_setup(void **state)
{
    *state = (void *)&redis_source;
    return 0;
}

static int rc_teardown(void **state)
{
    (void)state;
    conf_source_cleanup();
    return 0;
}

CONF_SOURCE_TESTS

int main(void)
{
    sl_log_setup(getenv("KLOG") ? SL_LOG_DEBUG : SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    const struct CMUnitTest tests[] = {CONF_TESTS(rc_setup, rc_teardown)};
    int r = cmocka_run_group_tests_name("conformance: redis", tests, NULL, NULL);
    test_redis_stop(&server);
    return r;
}
