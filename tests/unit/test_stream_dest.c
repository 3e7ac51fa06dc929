/* SPDX-License-Identifier: Apache-2.0 */
/* test_stream_dest.c: a delivery stream's destination interface (stream_dest.h) on a real loop,
 * with configurations loaded as a run loads them: a GZIP object under a !{timestamp:...} prefix
 * with Firehose's object name and the counters; a write that fails retried with the same key
 * until it succeeds (no record dropped); stop ending a retrying delivery with SL_ECANCELED; the
 * HTTP endpoint delivering, backed up as Firehose error records under http-endpoint-failed once
 * its retry duration is used up, and AllData writing every record to the backup. The HTTP
 * endpoint is the scripted one of fh_endpoint.c. Waits are test_run_until deadlines on
 * conditions, never sleeps. */
#define _XOPEN_SOURCE 700 /* nftw */
#include <ftw.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "errlist.h"
#include "fh_endpoint.h"
#include "helpers.h"
#include "httpc.h"
#include "stream_dest.h"

#define WALL_MS INT64_C(1714568862000) /* 2024-05-01T13:07:42Z */

struct fixture {
    char *dir;
    char out[4200]; /* the bucket directory */
    uv_loop_t loop;
    uv_async_t wake;
    struct sl_httpc *httpc;
    struct sl_clock_fake clock;
    struct sl_config *cfg;
    struct sl_stream_dest *d;
    struct fh_endpoint ep;
    bool ep_started;
    int calls;
    int err;
};

static void on_wake(uv_async_t *a)
{
    (void)a;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f) {
        return -1;
    }
    f->dir = test_tmpdir();
    (void)snprintf(f->out, sizeof(f->out), "%s/bucket", f->dir);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_async_init(&f->loop, &f->wake, on_wake), 0);
    assert_int_equal(sl_httpc_new(&f->loop, &f->httpc), 0);
    sl_clock_fake_init(&f->clock, 1000, WALL_MS);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->ep_started) {
        fh_ep_stop(&f->ep);
    }
    sl_stream_dest_free(f->d);
    uv_close((uv_handle_t *)&f->wake, NULL);
    sl_httpc_free(f->httpc);
    (void)uv_run(&f->loop, UV_RUN_DEFAULT);
    test_close_all(&f->loop);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sl_config_free(f->cfg);
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Loads {"delivery_streams":[{"DeliveryStreamName":"clicks", <entry>}]} and opens its
 * destination. */
static void open_dest(struct fixture *f, const char *entry)
{
    char text[8192], file[4300];
    (void)snprintf(text, sizeof(text),
                   "{\"delivery_streams\":[{\"DeliveryStreamName\":\"clicks\",%s}]}", entry);
    (void)snprintf(file, sizeof(file), "%s/config.json", f->dir);
    test_write_file(file, "w", text, strlen(text));
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    int r = sl_config_load(file, &f->cfg, &errs);
    for (size_t i = 0; i < errs.n; i++) {
        print_error("  error: %s\n", errs.items[i]);
    }
    sl_errlist_fini(&errs);
    assert_int_equal(r, 0);
    struct sl_stream_dest_env env = {
        .loop = &f->loop,
        .httpc = f->httpc,
        .clock = &f->clock.clock,
        .source_arn = "arn:aws:firehose:us-east-1:000000000000:deliverystream/clicks",
    };
    char err[512] = "";
    r = sl_stream_dest_new(&f->cfg->streams[0], &env, &f->d, err, sizeof(err));
    if (r != 0) {
        fail_msg("dest: %s", err);
    }
}

static void on_done(void *arg, int err)
{
    struct fixture *f = arg;
    f->calls++;
    f->err = err;
}

static bool called(void *arg)
{
    struct fixture *f = arg;
    return f->calls > 0;
}

static bool retried_twice(void *arg)
{
    struct fixture *f = arg;
    return sl_stream_dest_stats(f->d)->failed_attempts >= 2;
}

static const struct sl_stream_dest_rec recs[] = {
    {"{\"a\":1}\n", 8, WALL_MS},
    {"{\"a\":2}\n", 8, WALL_MS + 5},
};

static void deliver(struct fixture *f)
{
    f->calls = 0;
    assert_int_equal(sl_stream_dest_deliver(f->d, recs, 2, WALL_MS, on_done, f), 0);
    assert_int_equal(f->calls, 0); /* never from inside the call */
    assert_true(sl_stream_dest_busy(f->d));
}

/* Every regular file under dir, as paths relative to it, sorted, '\n'-joined. */
static struct sl_buf *found;
static size_t found_skip;
static int found_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_F) {
        assert_int_equal(sl_buf_printf(found, "%s\n", path + found_skip), 0);
    }
    return 0;
}

static size_t list_files(const char *dir, struct sl_buf *out)
{
    found = out;
    found_skip = strlen(dir) + 1;
    (void)nftw(dir, found_cb, 16, FTW_PHYS);
    size_t n = 0;
    for (size_t i = 0; i < out->len; i++) {
        n += out->data[i] == '\n';
    }
    return n;
}

static void read_file(const char *dir, const char *rel, size_t rel_len, struct sl_buf *out)
{
    char path[8192];
    (void)snprintf(path, sizeof(path), "%s/%.*s", dir, (int)rel_len, rel);
    gzFile gz = gzopen(path, "rb"); /* reads plain files as they are */
    assert_non_null(gz);
    char chunk[4096];
    int k;
    while ((k = gzread(gz, chunk, sizeof(chunk))) > 0) {
        assert_int_equal(sl_buf_append(out, chunk, (size_t)k), 0);
    }
    gzclose(gz);
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int r = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (r != 0) {
        fail_msg("\"%s\" does not match %s", text, pattern);
    }
}

#define UUID "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"

static void test_stream_dest_s3_file_gzip_prefix(void **state)
{
    struct fixture *f = *state;
    char entry[6000];
    (void)snprintf(entry, sizeof(entry),
                   "\"ExtendedS3DestinationConfiguration\":{\"BucketARN\":\"file://%s\","
                   "\"Prefix\":\"logs/!{timestamp:yyyy-MM}/\",\"ErrorOutputPrefix\":"
                   "\"err/!{firehose:error-output-type}/\",\"CompressionFormat\":\"GZIP\"}",
                   f->out);
    open_dest(f, entry);
    deliver(f);
    assert_true(test_run_until(&f->loop, called, f, 5000));
    assert_int_equal(f->err, 0);
    assert_false(sl_stream_dest_busy(f->d));
    struct sl_buf files, body;
    sl_buf_init(&files);
    sl_buf_init(&body);
    assert_int_equal(list_files(f->out, &files), 1);
    assert_matches(files.data, "^logs/2024-05/clicks-1-2024-05-01-13-07-42-" UUID "\\.gz\n$");
    read_file(f->out, files.data, files.len - 1, &body);
    assert_string_equal(body.data, "{\"a\":1}\n{\"a\":2}\n");
    const struct sl_stream_dest_stats *st = sl_stream_dest_stats(f->d);
    assert_int_equal(st->s3_records, 2);
    assert_int_equal(st->s3_bytes, 16);
    assert_int_equal(st->s3_success, 1);
    assert_false(sl_stream_dest_is_http(f->d));
    sl_buf_fini(&files);
    sl_buf_fini(&body);
}

/* The bucket directory sits under a regular file: every write fails until it is removed. */
static void open_blocked(struct fixture *f)
{
    char block[4300];
    (void)snprintf(block, sizeof(block), "%s/block", f->dir);
    test_write_file(block, "w", "x", 1);
    (void)snprintf(f->out, sizeof(f->out), "%s/block/bucket", f->dir);
    char entry[6000];
    (void)snprintf(entry, sizeof(entry),
                   "\"ExtendedS3DestinationConfiguration\":{\"BucketARN\":\"file://%s\"}", f->out);
    open_dest(f, entry);
}

static void test_stream_dest_s3_retried_until_written(void **state)
{
    struct fixture *f = *state;
    open_blocked(f);
    deliver(f);
    assert_true(test_run_until(&f->loop, retried_twice, f, 10000));
    assert_int_equal(f->calls, 0); /* failing: kept, not reported done, not dropped */
    char block[4300];
    (void)snprintf(block, sizeof(block), "%s/block", f->dir);
    assert_int_equal(unlink(block), 0);
    assert_true(test_run_until(&f->loop, called, f, 10000));
    assert_int_equal(f->err, 0);
    struct sl_buf files, body;
    sl_buf_init(&files);
    sl_buf_init(&body);
    assert_int_equal(list_files(f->out, &files), 1);
    assert_matches(files.data, "^2024/05/01/13/clicks-1-2024-05-01-13-07-42-" UUID "\n$");
    read_file(f->out, files.data, files.len - 1, &body);
    assert_string_equal(body.data, "{\"a\":1}\n{\"a\":2}\n");
    assert_int_equal(sl_stream_dest_stats(f->d)->s3_success, 1);
    sl_buf_fini(&files);
    sl_buf_fini(&body);
}

static void test_stream_dest_stop_cancels(void **state)
{
    struct fixture *f = *state;
    open_blocked(f);
    deliver(f);
    assert_true(test_run_until(&f->loop, retried_twice, f, 10000));
    sl_stream_dest_stop(f->d);
    assert_true(test_run_until(&f->loop, called, f, 10000));
    assert_int_equal(f->err, SL_ECANCELED);
    assert_int_equal(f->calls, 1);
    assert_int_equal(sl_stream_dest_deliver(f->d, recs, 2, WALL_MS, on_done, f), SL_ECANCELED);
}

static void open_http(struct fixture *f, enum fh_ep_step step, const char *extra)
{
    fh_ep_start(&f->ep, &step, 1, &f->wake);
    f->ep_started = true;
    char entry[6000];
    (void)snprintf(entry, sizeof(entry),
                   "\"HttpEndpointDestinationConfiguration\":{\"EndpointConfiguration\":"
                   "{\"Url\":\"%s\"},\"RetryOptions\":{\"DurationInSeconds\":0},"
                   "\"S3Configuration\":{\"BucketARN\":\"file://%s\"}%s}",
                   f->ep.url, f->out, extra);
    open_dest(f, entry);
}

static void test_stream_dest_http_delivered(void **state)
{
    struct fixture *f = *state;
    open_http(f, FH_EP_OK, "");
    assert_true(sl_stream_dest_is_http(f->d));
    deliver(f);
    assert_true(test_run_until(&f->loop, called, f, 10000));
    assert_int_equal(f->err, 0);
    assert_int_equal(fh_ep_count(&f->ep), 1);
    assert_non_null(strstr(f->ep.reqs[0].body.data, "\"data\":\"eyJhIjoxfQo=\""));
    const struct sl_stream_dest_stats *st = sl_stream_dest_stats(f->d);
    assert_int_equal(st->http_records, 2);
    assert_int_equal(st->http_success, 1);
    assert_int_equal(st->backup_records, 0);
    struct sl_buf files;
    sl_buf_init(&files);
    assert_int_equal(list_files(f->out, &files), 0); /* FailedDataOnly: nothing backed up */
    sl_buf_fini(&files);
}

static void test_stream_dest_http_failed_backed_up(void **state)
{
    struct fixture *f = *state;
    open_http(f, FH_EP_500, "");
    deliver(f);
    assert_true(test_run_until(&f->loop, called, f, 10000));
    assert_int_equal(f->err, 0); /* done: in the backup */
    struct sl_buf files, body;
    sl_buf_init(&files);
    sl_buf_init(&body);
    assert_int_equal(list_files(f->out, &files), 1);
    assert_matches(files.data,
                   "^http-endpoint-failed/2024/05/01/13/clicks-1-2024-05-01-13-07-42-" UUID "\n$");
    read_file(f->out, files.data, files.len - 1, &body);
    assert_matches(body.data, "^\\{\"attemptsMade\":1,\"arrivalTimestamp\":1714568862000,"
                              "\"errorCode\":\"HttpEndpoint.DestinationException\",.*"
                              "\"rawData\":\"eyJhIjoxfQo=\".*\n\\{.*\"arrivalTimestamp\":"
                              "1714568862005,.*\"rawData\":\"eyJhIjoyfQo=\".*\n$");
    const struct sl_stream_dest_stats *st = sl_stream_dest_stats(f->d);
    assert_int_equal(st->http_records, 0);
    assert_int_equal(st->backup_records, 2);
    assert_int_equal(st->backup_success, 1);
    sl_buf_fini(&files);
    sl_buf_fini(&body);
}

static void test_stream_dest_http_all_data(void **state)
{
    struct fixture *f = *state;
    open_http(f, FH_EP_OK, ",\"S3BackupMode\":\"AllData\"");
    deliver(f);
    assert_true(test_run_until(&f->loop, called, f, 10000));
    assert_int_equal(f->err, 0);
    struct sl_buf files, body;
    sl_buf_init(&files);
    sl_buf_init(&body);
    assert_int_equal(list_files(f->out, &files), 1);
    assert_matches(files.data, "^2024/05/01/13/clicks-1-2024-05-01-13-07-42-" UUID "\n$");
    read_file(f->out, files.data, files.len - 1, &body);
    assert_string_equal(body.data, "{\"a\":1}\n{\"a\":2}\n");
    assert_int_equal(sl_stream_dest_stats(f->d)->http_records, 2);
    assert_int_equal(sl_stream_dest_stats(f->d)->backup_records, 2);
    sl_buf_fini(&files);
    sl_buf_fini(&body);
}

int main(void)
{
    (void)setenv("SLUICE_RETRY_BASE_MS", "5", 1);
    (void)setenv("SLUICE_RETRY_MAX_MS", "20", 1);
#define T(name) cmocka_unit_test_setup_teardown(test_stream_dest_##name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(s3_file_gzip_prefix), T(s3_retried_until_written), T(stop_cancels),
        T(http_delivered),      T(http_failed_backed_up),    T(http_all_data),
    };
#undef T
    return cmocka_run_group_tests_name("stream_dest", tests, NULL, NULL);
}
