/* SPDX-License-Identifier: Apache-2.0 */
/* test_stream_dest.c: a delivery stream's destination interface (stream_dest.h) on a real loop,
 * with configurations loaded as a run loads them: a GZIP object under a !{timestamp:...} prefix
 * with Firehose's object name and the counters; a write that fails retried with the same key
 * until it succeeds (no record dropped); stop ending a retrying delivery with SL_ECANCELED; the
 * HTTP endpoint delivering, backed up as Firehose error records under http-endpoint-failed once
 * its retry duration is used up, and AllData writing every record to the backup. The HTTP
 * endpoint is the scripted one of fh_endpoint.c. Through the S3 API (http_peer.c answering
 * PutObject) a GZIP object of several MB, compressed off the loop, is one gzip member of the
 * records, and a PutObject answered 500 is sent again with the same key and the same body; a
 * stop during the compression ends the delivery with SL_ECANCELED and nothing sent. Waits are
 * test_run_until deadlines on conditions, never sleeps. */
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
#include "http_peer.h"
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

/* An S3 server for PutObject: the first answer is status first, then 200; the request lines
 * and bodies are kept. */
#define S3_PEER_MAX 4
struct s3_peer {
    struct http_peer peer;
    pthread_mutex_t mu;
    int first;
    int n;
    char line[S3_PEER_MAX][512];
    char *body[S3_PEER_MAX];
    size_t body_len[S3_PEER_MAX];
};

static void s3_peer_answer(
    void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len)
{
    struct s3_peer *sp = arg;
    pthread_mutex_lock(&sp->mu);
    int i = sp->n < S3_PEER_MAX ? sp->n : S3_PEER_MAX - 1;
    const char *eol = memchr(head, '\r', head_len);
    (void)snprintf(sp->line[i], sizeof sp->line[i], "%.*s", (int)(eol ? eol - head : 0), head);
    free(sp->body[i]);
    sp->body[i] = malloc(body_len + 1);
    memcpy(sp->body[i], body, body_len);
    sp->body_len[i] = body_len;
    int status = sp->n++ == 0 ? sp->first : 200;
    pthread_mutex_unlock(&sp->mu);
    char resp[256];
    int k = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
    (void)http_peer_send_all(fd, resp, (size_t)k);
}

static int s3_peer_count(struct s3_peer *sp)
{
    pthread_mutex_lock(&sp->mu);
    int n = sp->n;
    pthread_mutex_unlock(&sp->mu);
    return n;
}

/* Starts sp and opens a GZIP destination arn:aws:s3:::bucket at it (unsigned). */
static void open_s3_api(struct fixture *f, struct s3_peer *sp, int first)
{
    memset(sp, 0, sizeof(*sp));
    pthread_mutex_init(&sp->mu, NULL);
    sp->first = first;
    http_peer_start(&sp->peer, s3_peer_answer, sp);
    char endpoint[64];
    (void)snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", sp->peer.port);
    static const char *const vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        (void)unsetenv(vars[i]);
    }
    (void)setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    (void)setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    (void)setenv("AWS_REGION", "us-east-1", 1);
    (void)setenv("AWS_ENDPOINT_URL_S3", endpoint, 1);
    open_dest(f, "\"ExtendedS3DestinationConfiguration\":{\"BucketARN\":\"arn:aws:s3:::bucket\","
                 "\"CompressionFormat\":\"GZIP\"}");
}

static void close_s3_api(struct s3_peer *sp)
{
    http_peer_stop(&sp->peer);
    for (int i = 0; i < S3_PEER_MAX; i++) {
        free(sp->body[i]);
    }
    pthread_mutex_destroy(&sp->mu);
    (void)unsetenv("AWS_ENDPOINT_URL_S3");
}

/* n records of the bytes of data (len), cut at odd places. */
static struct sl_stream_dest_rec *cut_records(const char *data, size_t len, size_t *ret_n)
{
    struct sl_stream_dest_rec *r = calloc(len / 500 + 2, sizeof(*r));
    size_t n = 0;
    for (size_t off = 0; off < len;) {
        size_t k = 500 + (n * 37) % 1500;
        k = k > len - off ? len - off : k;
        r[n++] = (struct sl_stream_dest_rec){data + off, k, WALL_MS};
        off += k;
    }
    *ret_n = n;
    return r;
}

static char *object_text(size_t len)
{
    char *data = malloc(len);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (char)(x % 40 + '0');
    }
    return data;
}

static void test_stream_dest_s3_api_gzip_retried_same_body(void **state)
{
    struct fixture *f = *state;
    struct s3_peer sp;
    open_s3_api(f, &sp, 500);
    size_t len = 3 * 1024 * 1024 + 77, n;
    char *data = object_text(len);
    struct sl_stream_dest_rec *r = cut_records(data, len, &n);
    assert_int_equal(sl_stream_dest_deliver(f->d, r, n, WALL_MS, on_done, f), 0);
    assert_true(test_run_until(&f->loop, called, f, test_deadline_ms(30000)));
    assert_int_equal(f->err, 0);
    assert_int_equal(s3_peer_count(&sp), 2); /* 500, then 200 */
    assert_string_equal(sp.line[0], sp.line[1]);
    assert_non_null(strstr(sp.line[0], "PUT /bucket/"));
    assert_non_null(strstr(sp.line[0], ".gz HTTP/1.1"));
    assert_int_equal(sp.body_len[0], sp.body_len[1]);
    assert_memory_equal(sp.body[0], sp.body[1], sp.body_len[0]);
    /* one gzip member holding the records */
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    char *plain = malloc(len + 1);
    z.next_in = (unsigned char *)sp.body[1];
    z.avail_in = (uInt)sp.body_len[1];
    z.next_out = (unsigned char *)plain;
    z.avail_out = (uInt)len + 1;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.avail_in, 0);
    assert_int_equal(z.total_out, len);
    assert_memory_equal(plain, data, len);
    inflateEnd(&z);
    assert_int_equal(sl_stream_dest_stats(f->d)->s3_bytes, len);
    free(plain);
    free(r);
    free(data);
    close_s3_api(&sp);
}

static void test_stream_dest_s3_api_stop_while_compressing(void **state)
{
    struct fixture *f = *state;
    struct s3_peer sp;
    open_s3_api(f, &sp, 200);
    size_t len = 16 * 1024 * 1024, n;
    char *data = object_text(len);
    struct sl_stream_dest_rec *r = cut_records(data, len, &n);
    assert_int_equal(sl_stream_dest_deliver(f->d, r, n, WALL_MS, on_done, f), 0);
    (void)uv_run(&f->loop, UV_RUN_NOWAIT); /* the first attempt: the compression starts */
    sl_stream_dest_stop(f->d);
    assert_true(test_run_until(&f->loop, called, f, test_deadline_ms(30000)));
    assert_int_equal(f->calls, 1);
    assert_int_equal(f->err, SL_ECANCELED);
    assert_int_equal(s3_peer_count(&sp), 0);
    assert_false(sl_stream_dest_busy(f->d));
    free(r);
    free(data);
    close_s3_api(&sp);
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
        T(s3_file_gzip_prefix),
        T(s3_retried_until_written),
        T(stop_cancels),
        T(http_delivered),
        T(http_failed_backed_up),
        T(http_all_data),
        T(s3_api_gzip_retried_same_body),
        T(s3_api_stop_while_compressing),
    };
#undef T
    return cmocka_run_group_tests_name("stream_dest", tests, NULL, NULL);
}
