/* SPDX-License-Identifier: Apache-2.0 */
/* test_conformance_kinesis.c: the stream checks of the source conformance suite
 * (conformance_source.h) run against the Kinesis source, through the registry like the other
 * adapters, with a scripted Kinesis server on loopback (kinesis_peer.c) standing in for the
 * service: each check gets a stream of one shard holding the check's records. `end` closes the
 * shard (its end is a GetRecords answer without NextShardIterator), so the partition is gone,
 * not revoked. The source's positions are the mapping's checkpoint (it keeps none of its own),
 * so no `stored`. The endpoint is the mapping's endpoint_url; the environment's AWS settings are
 * cleared so that no variable sends the source elsewhere. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "conformance_source.h"
#include "helpers.h"
#include "kinesis_peer.h"
#include "log.h"

static struct kpeer peer;
static bool peer_up;

static cJSON *kc_prepare(void *arg, const char *const *data, size_t n, char *arn, size_t len)
{
    (void)arg;
    if (peer_up) {
        kpeer_stop(&peer);
    }
    static const char *const shards[] = {"shardId-000000000000", NULL};
    kpeer_start(&peer, "conf", shards);
    peer_up = true;
    for (size_t i = 0; i < n; i++) {
        kpeer_put(&peer, 0, "k", data[i]);
    }
    (void)snprintf(arn, len, "arn:aws:kinesis:us-east-1:123456789012:stream/conf");
    char json[256];
    (void)snprintf(json, sizeof(json),
                   "{\"endpoint_url\":\"%s\",\"poll_interval\":\"50ms\","
                   "\"shard_refresh_interval\":\"1s\"}",
                   peer.endpoint);
    cJSON *opts = cJSON_Parse(json);
    assert_non_null(opts);
    return opts;
}

static void kc_append(void *arg, const char *data)
{
    (void)arg;
    kpeer_put(&peer, 0, "k", data);
}

static void kc_end(void *arg)
{
    (void)arg;
    kpeer_close(&peer, 0);
}

static const struct conf_source kinesis_source = {
    .name = "kinesis",
    .prepare = kc_prepare,
    .append = kc_append,
    .end = kc_end,
};

static int kc_setup(void **state)
{
    *state = (void *)&kinesis_source;
    return 0;
}

static int kc_teardown(void **state)
{
    (void)state;
    conf_source_cleanup();
    if (peer_up) {
        kpeer_stop(&peer);
        peer_up = false;
    }
    return 0;
}

CONF_SOURCE_TESTS

int main(void)
{
    sl_log_setup(getenv("KLOG") ? SL_LOG_DEBUG : SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    (void)unsetenv("AWS_ENDPOINT_URL_KINESIS");
    (void)unsetenv("AWS_ENDPOINT_URL");
    (void)setenv("AWS_ACCESS_KEY_ID", "test", 1);
    (void)setenv("AWS_SECRET_ACCESS_KEY", "test", 1);
    (void)unsetenv("AWS_SESSION_TOKEN");
    (void)setenv("AWS_CONFIG_FILE", "/dev/null", 1);
    (void)setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null", 1);
    const struct CMUnitTest tests[] = {CONF_TESTS(kc_setup, kc_teardown)};
    return cmocka_run_group_tests_name("conformance: kinesis", tests, NULL, NULL);
}
