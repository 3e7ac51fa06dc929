/* SPDX-License-Identifier: Apache-2.0 */
/* test_s3_put.c: S3 PutObject (sinks/s3_put.h) against a loopback peer: the request as it goes
 * on the wire (PUT path-style to AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL; the key encoded
 * once; the body as given; SigV4 for service s3 with X-Amz-Content-Sha256 of the body and the
 * signed header names); S3's answers mapped to errors with its Code and Message; AWS's
 * virtual-hosted address without an endpoint; BucketARN shapes. And, with tests/services' s3rver
 * running (S3_ENDPOINT; WITH_S3), a GZIP object put there and read back with /usr/bin/aws s3api. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <unistd.h>

#include "helpers.h"
#include "http_peer.h"
#include "s3_object.h"
#include "s3_put.h"
#include "sha256.h"
#include "sigv4.h"

struct fx {
    uv_loop_t loop;
    struct sl_httpc *h;
    struct sl_clock_fake clock;
    struct http_peer peer;
    pthread_mutex_t mu;
    char head[4096];
    char *body;
    size_t body_len;
    long answer_status;
    const char *answer_body;
    /* the callback */
    int calls, err;
    long status;
    char detail[600];
};

static void unset_env(void)
{
    static const char *const vars[] = {"AWS_ACCESS_KEY_ID",
                                       "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",
                                       "AWS_PROFILE",
                                       "AWS_REGION",
                                       "AWS_DEFAULT_REGION",
                                       "AWS_ENDPOINT_URL",
                                       "AWS_ENDPOINT_URL_S3",
                                       "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                                       "http_proxy",
                                       "HTTP_PROXY",
                                       "all_proxy",
                                       "ALL_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        unsetenv(vars[i]);
    }
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
}

static void
answer(void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len)
{
    struct fx *f = arg;
    pthread_mutex_lock(&f->mu);
    (void)snprintf(f->head, sizeof f->head, "%.*s", (int)head_len, head);
    free(f->body);
    f->body = malloc(body_len + 1);
    memcpy(f->body, body, body_len);
    f->body_len = body_len;
    char resp[1024];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %ld X\r\nContent-Type: application/xml\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     f->answer_status, strlen(f->answer_body), f->answer_body);
    pthread_mutex_unlock(&f->mu);
    (void)http_peer_send_all(fd, resp, (size_t)n);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    unset_env();
    pthread_mutex_init(&f->mu, NULL);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(sl_httpc_new(&f->loop, &f->h), 0);
    sl_clock_fake_init(&f->clock, 0, 1440938160000LL); /* 2015-08-30T12:36:00Z */
    f->answer_status = 200;
    f->answer_body = "";
    http_peer_start(&f->peer, answer, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sl_httpc_free(f->h);
    (void)uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    http_peer_stop(&f->peer);
    pthread_mutex_destroy(&f->mu);
    free(f->body);
    free(f);
    unset_env();
    return 0;
}

static void on_put(void *arg, int err, long status, const char *detail)
{
    struct fx *f = arg;
    f->calls++;
    f->err = err;
    f->status = status;
    (void)snprintf(f->detail, sizeof f->detail, "%s", detail ? detail : "");
}

static bool put_done(void *arg)
{
    return ((struct fx *)arg)->calls > 0;
}

static void put(struct fx *f, struct sl_s3_put *p, const char *key, const void *body, size_t len)
{
    f->calls = 0;
    assert_int_equal(sl_s3_put_object(p, key, body, len, 10000, on_put, f), 0);
    assert_int_equal(f->calls, 0);
    assert_true(test_run_until(&f->loop, put_done, f, test_deadline_ms(10000)));
    assert_int_equal(f->calls, 1);
    assert_int_equal(sl_s3_put_inflight(p), 0);
}

static struct sl_s3_put *open_put_clock(struct fx *f, const char *arn, const struct sl_clock *clock)
{
    struct sl_s3_put *p = NULL;
    char err[256];
    if (sl_s3_put_new(f->h, clock, arn, &p, err, sizeof err) != 0) {
        fail_msg("sl_s3_put_new: %s", err);
    }
    return p;
}

static struct sl_s3_put *open_put(struct fx *f, const char *arn)
{
    return open_put_clock(f, arn, &f->clock.clock);
}

/* Header name's value in the received head, up to the line's end (owned: free). */
static char *head_value(const char *head, const char *name)
{
    const char *v = http_peer_header(head, strlen(head), name);
    assert_non_null(v);
    return strndup(v, strcspn(v, "\r\n"));
}

/* Signs again what arrived (method, path, Host, Content-Type, body) with a signer of its own and
 * compares with the Authorization sent: what went on the wire is what was signed. */
static void verify_signature(struct fx *f)
{
    char method[16], target[1024];
    assert_int_equal(sscanf(f->head, "%15s %1023s", method, target), 2);
    char *host = head_value(f->head, "Host");
    char *type = head_value(f->head, "Content-Type");
    char *auth = head_value(f->head, "Authorization");
    struct sl_sigv4 *s;
    assert_int_equal(
        sl_sigv4_new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL, &s), 0);
    struct sl_sigv4_header h = {"Content-Type", 12, type, strlen(type)};
    struct sl_sigv4_req req = {.method = method,
                               .host = host,
                               .path = target,
                               .headers = &h,
                               .n_headers = 1,
                               .payload = f->body,
                               .payload_len = f->body_len,
                               .region = "eu-west-1",
                               .service = "s3",
                               .content_sha256 = true,
                               .s3 = true};
    struct sl_sigv4_out out;
    sl_sigv4_out_init(&out);
    assert_int_equal(sl_sigv4_sign(s, &req, 1440938160000LL, &out), 0);
    assert_string_equal(auth, out.authorization);
    sl_sigv4_out_fini(&out);
    sl_sigv4_free(s);
    free(host);
    free(type);
    free(auth);
}

static void test_s3_put_signed_request(void **state)
{
    struct fx *f = *state;
    char endpoint[64];
    (void)snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", f->peer.port);
    setenv("AWS_ENDPOINT_URL_S3", endpoint, 1);
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1); /* the S3 one wins */
    setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    struct sl_s3_put *p = open_put(f, "arn:aws:s3:::my-bucket");
    char want_base[96];
    (void)snprintf(want_base, sizeof want_base, "%s/my-bucket/", endpoint);
    assert_string_equal(sl_s3_put_base_url(p), want_base);
    static const char body[] = "{\"a\":1}{\"a\":2}";
    put(f, p, "dt=2018-08-27/clicks-1-2018 x.gz", body, sizeof body - 1);
    assert_int_equal(f->err, 0);
    assert_int_equal(f->status, 200);
    /* path-style, the key encoded once ('=' and ' ' escaped, '/' kept) */
    static const char line[] = "PUT /my-bucket/dt%3D2018-08-27/clicks-1-2018%20x.gz HTTP/1.1\r\n";
    assert_true(strncmp(f->head, line, sizeof line - 1) == 0);
    assert_int_equal(f->body_len, sizeof body - 1);
    assert_memory_equal(f->body, body, sizeof body - 1);
    char host[64];
    (void)snprintf(host, sizeof host, "127.0.0.1:%d", f->peer.port);
    const char *v = http_peer_header(f->head, strlen(f->head), "Host");
    assert_non_null(v);
    assert_true(strncmp(v, host, strlen(host)) == 0);
    uint8_t d[SL_SHA256_LEN];
    char hex[SL_SHA256_HEX_LEN + 1];
    sl_sha256(body, sizeof body - 1, d);
    sl_sha256_hex(d, sizeof d, hex);
    v = http_peer_header(f->head, strlen(f->head), "X-Amz-Content-Sha256");
    assert_non_null(v);
    assert_true(strncmp(v, hex, SL_SHA256_HEX_LEN) == 0);
    v = http_peer_header(f->head, strlen(f->head), "X-Amz-Date");
    assert_true(strncmp(v, "20150830T123600Z", 16) == 0);
    v = http_peer_header(f->head, strlen(f->head), "Authorization");
    assert_non_null(v);
    static const char auth[] = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/eu-west-1/s3/"
                               "aws4_request, SignedHeaders=content-type;host;"
                               "x-amz-content-sha256;x-amz-date, Signature=";
    if (strncmp(v, auth, sizeof auth - 1) != 0) {
        fail_msg("Authorization: %.200s", v);
    }
    assert_null(strstr(f->head, "wJalrXUtnFEMI"));
    verify_signature(f);
    sl_s3_put_free(p);

    /* AWS_ENDPOINT_URL when there is no S3 one */
    unsetenv("AWS_ENDPOINT_URL_S3");
    setenv("AWS_ENDPOINT_URL", endpoint, 1);
    p = open_put(f, "arn:aws:s3:::other.bucket");
    (void)snprintf(want_base, sizeof want_base, "%s/other.bucket/", endpoint);
    assert_string_equal(sl_s3_put_base_url(p), want_base);
    put(f, p, "k", "", 0); /* an empty object is still a PUT with a body of 0 bytes */
    assert_int_equal(f->err, 0);
    assert_true(strncmp(f->head, "PUT /other.bucket/k HTTP/1.1\r\n", 30) == 0);
    assert_int_equal(f->body_len, 0);
    sl_s3_put_free(p);
}

static void test_s3_put_errors(void **state)
{
    struct fx *f = *state;
    char endpoint[64];
    (void)snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d/", f->peer.port);
    setenv("AWS_ENDPOINT_URL_S3", endpoint, 1); /* unsigned: no credentials */
    struct sl_s3_put *p = open_put(f, "arn:aws:s3:::b-1");
    static const struct {
        long status;
        const char *code;
        int err;
    } cases[] = {
        {503, "SlowDown", SL_ETHROTTLED},       {500, "InternalError", SL_EREMOTE},
        {403, "AccessDenied", SL_EAUTH},        {404, "NoSuchBucket", SL_ENOTFOUND},
        {400, "InvalidArgument", SL_EREJECTED},
    };
    char xml[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        (void)snprintf(xml, sizeof xml,
                       "<?xml version=\"1.0\"?><Error><Code>%s</Code><Message>why %zu</Message>"
                       "</Error>",
                       cases[i].code, i);
        pthread_mutex_lock(&f->mu);
        f->answer_status = cases[i].status;
        f->answer_body = xml;
        pthread_mutex_unlock(&f->mu);
        put(f, p, "k", "x", 1);
        assert_int_equal(f->err, cases[i].err);
        assert_int_equal(f->status, cases[i].status);
        char want[128];
        (void)snprintf(want, sizeof want, "PutObject: HTTP %ld %s: why %zu", cases[i].status,
                       cases[i].code, i);
        assert_string_equal(f->detail, want);
        assert_null(http_peer_header(f->head, strlen(f->head), "Authorization"));
        assert_true(strncmp(f->head, "PUT /b-1/k HTTP/1.1\r\n", 21) == 0);
    }
    sl_s3_put_free(p);
    /* no answer at all */
    setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1", 1);
    p = open_put(f, "arn:aws:s3:::b-1");
    put(f, p, "k", "x", 1);
    assert_int_equal(f->err, SL_EIO);
    assert_int_equal(f->status, 0);
    assert_non_null(strstr(f->detail, "PutObject: "));
    sl_s3_put_free(p);
}

static void test_s3_put_aws_address(void **state)
{
    struct fx *f = *state;
    setenv("AWS_REGION", "ap-northeast-1", 1);
    struct sl_s3_put *p = open_put(f, "arn:aws:s3:::logs");
    assert_string_equal(sl_s3_put_base_url(p), "https://logs.s3.ap-northeast-1.amazonaws.com/");
    sl_s3_put_free(p);
    unsetenv("AWS_REGION");
    p = open_put(f, "arn:aws:s3:::logs");
    assert_string_equal(sl_s3_put_base_url(p), "https://logs.s3.us-east-1.amazonaws.com/");
    sl_s3_put_free(p);
}

static void test_s3_put_check(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(sl_s3_put_check("arn:aws:s3:::my-bucket.logs", err, sizeof err), 0);
    assert_int_equal(sl_s3_put_check("arn:aws-cn:s3:::abc", err, sizeof err), 0);
    static const char *const bad[] = {
        "my-bucket",          "arn:aws:s3:::ab",   "arn:aws:s3:::Upper",       "arn:aws:s3:::-dash",
        "arn:aws:s3:::a/b/c", "arn:aws:sqs:::abc", "arn:aws:s3:us-east-1::abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(sl_s3_put_check(bad[i], err, sizeof err), SL_ECONFIG);
        assert_non_null(strstr(err, "allowed: arn:aws:s3:::BUCKET"));
    }
}

/* Runs cmd, returns its exit status; its output (up to len) in out. */
static int run(const char *cmd, char *out, size_t len)
{
    FILE *fp = popen(cmd, "r");
    assert_non_null(fp);
    size_t n = fread(out, 1, len - 1, fp);
    out[n] = '\0';
    return pclose(fp);
}

static void test_s3_put_s3rver_round_trip(void **state)
{
    struct fx *f = *state;
    const char *endpoint = getenv("S3_ENDPOINT");
    if (!endpoint || !*endpoint) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            fail_msg("S3_ENDPOINT is not set under CI=true: start tests/services (SERVICES=s3)");
        }
        print_message("S3_ENDPOINT not set (SERVICES=s3 tests/services/start.sh): skipping\n");
        skip();
    }
    if (access("/usr/bin/aws", X_OK) != 0) {
        skip();
    }
    setenv("AWS_ENDPOINT_URL_S3", endpoint, 1);
    setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
    setenv("AWS_REGION", "us-east-1", 1);
    char cmd[1024], out[4096];
    (void)snprintf(cmd, sizeof cmd,
                   "/usr/bin/aws --endpoint-url %s s3api create-bucket --bucket sluice-put-%d "
                   ">/dev/null 2>&1",
                   endpoint, (int)getpid());
    (void)run(cmd, out, sizeof out); /* may exist from an earlier run */
    char arn[64];
    (void)snprintf(arn, sizeof arn, "arn:aws:s3:::sluice-put-%d", (int)getpid());
    /* the system clock: s3rver checks no signature, but refuses a skewed X-Amz-Date */
    struct sl_s3_put *p = open_put_clock(f, arn, NULL);
    struct iovec recs[] = {{"{\"a\":1}\n", 8}, {"{\"a\":2}\n", 8}};
    struct sl_buf gz;
    sl_buf_init(&gz);
    assert_int_equal(sl_s3_object_build(recs, 2, SL_S3_GZIP, &gz), 0);
    const char *key = "2018/08/27/10/clicks-1-2018-08-27-10-30-05-0001.gz";
    put(f, p, key, gz.data, gz.len);
    if (f->err != 0) {
        fail_msg("PutObject to s3rver: %d %s", f->err, f->detail);
    }
    char *tmp = test_tmpdir();
    (void)snprintf(cmd, sizeof cmd,
                   "/usr/bin/aws --endpoint-url %s s3api get-object --bucket sluice-put-%d "
                   "--key %s %s/obj.gz >/dev/null 2>&1 && gzip -dc %s/obj.gz",
                   endpoint, (int)getpid(), key, tmp, tmp);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "{\"a\":1}\n{\"a\":2}\n");
    test_rmtree(tmp);
    free(tmp);
    sl_buf_fini(&gz);
    sl_s3_put_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_s3_put_signed_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_put_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_put_aws_address, setup, teardown),
        cmocka_unit_test(test_s3_put_check),
        cmocka_unit_test_setup_teardown(test_s3_put_s3rver_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests_name("s3_put", tests, NULL, NULL);
}
