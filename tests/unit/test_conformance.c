/* SPDX-License-Identifier: Apache-2.0 */
/* test_conformance.c: the source conformance suite (conformance_source.h) run against every
 * stream source this unit suite can run without a server: the file adapter, and the fake stream
 * (fake_stream.c) with fetches that complete at once and with fetches that complete later
 * (SL_EINPROGRESS, then part_fetched); and the queue checks against every such queue source: the
 * fake queue (fake_queue.c). Each adapter is a driver (how to make a source holding given
 * records, add one, end the partition; for a queue: make a queue of given messages and groups,
 * fail its deletes, say what it still holds) and one test per check. An adapter joins with a
 * driver and a CONF_TESTS or CONF_QUEUE_TESTS line (sources/README.md). Kafka runs the stream
 * checks from test_conformance_kafka.c (built with Kafka only), against librdkafka's mock cluster.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conformance_source.h"
#include "fake_queue.h"
#include "fake_stream.h"
#include "helpers.h"
#include "log.h"

/* --- the file adapter: one file, its lines the records --- */

struct file_drv {
    char *dir;
    char path[600];
};

static cJSON *file_prepare(void *arg, const char *const *data, size_t n, char *arn, size_t len)
{
    struct file_drv *d = arg;
    (void)snprintf(d->path, sizeof(d->path), "%s/conformance.log", d->dir);
    test_write_file(d->path, "w", "", 0);
    for (size_t i = 0; i < n; i++) {
        test_write_file(d->path, "a", data[i], strlen(data[i]));
        test_write_file(d->path, "a", "\n", 1);
    }
    (void)snprintf(arn, len, "file://%s", d->path);
    /* Polled often and rescanned at every poll, so that changes show within the deadline. */
    return cJSON_Parse("{\"poll_interval\":\"10ms\",\"rescan_interval\":\"0s\","
                       "\"rotate_wait\":\"1s\"}");
}

static void file_append(void *arg, const char *data)
{
    struct file_drv *d = arg;
    test_write_file(d->path, "a", data, strlen(data));
    test_write_file(d->path, "a", "\n", 1);
}

static void file_end(void *arg)
{
    struct file_drv *d = arg;
    (void)unlink(d->path);
}

static struct file_drv file_drv;
static const struct conf_source file_source = {.name = "file",
                                               .arg = &file_drv,
                                               .prepare = file_prepare,
                                               .append = file_append,
                                               .end = file_end};

static int file_setup(void **state)
{
    file_drv.dir = test_tmpdir();
    *state = (void *)&file_source;
    return 0;
}

static int file_teardown(void **state)
{
    (void)state;
    conf_source_cleanup();
    test_rmtree(file_drv.dir);
    free(file_drv.dir);
    file_drv.dir = NULL;
    return 0;
}

/* --- the fake stream, synchronous and asynchronous --- */

struct fake_drv {
    struct fake_stream fs;
    bool async;
};

static cJSON *fake_prepare(void *arg, const char *const *data, size_t n, char *arn, size_t len)
{
    struct fake_drv *d = arg;
    fake_stream_fini(&d->fs);
    fake_stream_init(&d->fs);
    d->fs.async = d->async;
    d->fs.async_auto = d->async;
    size_t p = fake_stream_add_part(&d->fs, "p0");
    for (size_t i = 0; i < n; i++) {
        fake_stream_push_str(&d->fs, p, "k", data[i]);
    }
    (void)snprintf(arn, len, FAKE_STREAM_SCHEME "conformance");
    return NULL;
}

static void fake_append(void *arg, const char *data)
{
    struct fake_drv *d = arg;
    fake_stream_push_str(&d->fs, 0, "k", data);
}

static void fake_end(void *arg)
{
    struct fake_drv *d = arg;
    fake_stream_gone(&d->fs, 0);
}

static struct fake_drv fake_sync_drv;
static struct fake_drv fake_async_drv = {.async = true};
static const struct conf_source fake_source = {.name = "fake",
                                               .arg = &fake_sync_drv,
                                               .prepare = fake_prepare,
                                               .append = fake_append,
                                               .end = fake_end};
static const struct conf_source fake_async_source = {.name = "fake (async fetch)",
                                                     .arg = &fake_async_drv,
                                                     .prepare = fake_prepare,
                                                     .append = fake_append,
                                                     .end = fake_end};

static int fake_setup(void **state)
{
    *state = (void *)&fake_source;
    return 0;
}

static int fake_async_setup(void **state)
{
    *state = (void *)&fake_async_source;
    return 0;
}

static int fake_teardown(void **state)
{
    conf_source_cleanup();
    struct fake_drv *d = ((const struct conf_source *)*state)->arg;
    fake_stream_fini(&d->fs);
    return 0;
}

/* --- the fake queue --- */

static struct fake_queue fq_drv;

static cJSON *fq_prepare(void *arg,
                         const char *const *data,
                         const char *const *groups,
                         size_t n,
                         int64_t visibility_ms,
                         char *arn,
                         size_t len)
{
    struct fake_queue *fq = arg;
    fake_queue_fini(fq);
    fake_queue_init(fq);
    fq->visibility_ms = visibility_ms;
    for (size_t i = 0; i < n; i++) {
        (void)fake_queue_send(fq, groups ? groups[i] : NULL, data[i]);
    }
    (void)snprintf(arn, len, FAKE_QUEUE_SCHEME "conformance");
    return NULL;
}

static void fq_fail_deletes(void *arg, const char *data, size_t n)
{
    struct fake_queue *fq = arg;
    fake_queue_fail_deletes(fq, fake_queue_find(fq, data), n, false);
}

static bool fq_exists(void *arg, const char *data)
{
    struct fake_queue *fq = arg;
    size_t i = fake_queue_find(fq, data);
    return i != SIZE_MAX && !fq->msgs[i].deleted;
}

static const struct conf_queue fq_source = {.name = "fake queue",
                                            .arg = &fq_drv,
                                            .prepare = fq_prepare,
                                            .fail_deletes = fq_fail_deletes,
                                            .exists = fq_exists};

static int fq_setup(void **state)
{
    fake_queue_register();
    *state = (void *)&fq_source;
    return 0;
}

static int fq_teardown(void **state)
{
    (void)state;
    conf_source_cleanup();
    fake_queue_fini(&fq_drv);
    fake_stream_register();
    return 0;
}

/* --- the checks, once per adapter --- */

CONF_SOURCE_TESTS

CONF_QUEUE_TESTS_DEFINE

int main(void)
{
    sl_log_setup(SL_LOG_ERROR, SL_LOG_HUMAN, 2);
    fake_stream_register();
    const struct CMUnitTest file_tests[] = {CONF_TESTS(file_setup, file_teardown)};
    const struct CMUnitTest fake_tests[] = {CONF_TESTS(fake_setup, fake_teardown)};
    const struct CMUnitTest fake_async_tests[] = {CONF_TESTS(fake_async_setup, fake_teardown)};
    int failed = cmocka_run_group_tests_name("conformance: file", file_tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("conformance: fake", fake_tests, NULL, NULL);
    failed +=
        cmocka_run_group_tests_name("conformance: fake, async fetch", fake_async_tests, NULL, NULL);
    const struct CMUnitTest fq_tests[] = {CONF_QUEUE_TESTS(fq_setup, fq_teardown)};
    failed += cmocka_run_group_tests_name("conformance: fake queue", fq_tests, NULL, NULL);
    return failed;
}
