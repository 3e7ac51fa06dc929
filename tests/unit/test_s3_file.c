/* SPDX-License-Identifier: Apache-2.0 */
/* test_s3_file.c: the file:///dir object writer (sinks/s3_file.h) on a real loop and thread
 * pool: an object lands under its key whole (GZIP inflates back to the records); just before
 * the rename the key does not exist and the body sits complete under a hidden temporary name in
 * the same directory; a write that fails half way (the file size limit) reports SL_EIO naming
 * the file and leaves no temporary file; a directory that cannot be created and a bad key are
 * reported; destination shapes are checked. A GZIP object of many records over many blocks
 * (compressed in parallel) lands whole, renamed only once complete; one whose write fails half
 * way leaves nothing under its key nor a temporary file, and written again with the same key it
 * is whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

#include "helpers.h"
#include "s3_file.h"

struct fx {
    uv_loop_t loop;
    char *dir;
    struct sl_s3_file *f;
    int calls, err;
    char detail[600];
    /* hook observations */
    int hook_calls;
    bool final_absent, tmp_hidden_same_dir;
    long long tmp_size;
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    assert_int_equal(uv_loop_init(&x->loop), 0);
    x->dir = test_tmpdir();
    char url[600], err[256];
    (void)snprintf(url, sizeof url, "file://%s/", x->dir);
    assert_int_equal(sl_s3_file_new(&x->loop, url, &x->f, err, sizeof err), 0);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    sl_s3_file_free(x->f);
    test_close_all(&x->loop);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    test_rmtree(x->dir);
    free(x->dir);
    free(x);
    return 0;
}

static void on_put(void *arg, int err, const char *detail)
{
    struct fx *x = arg;
    x->calls++;
    x->err = err;
    (void)snprintf(x->detail, sizeof x->detail, "%s", detail ? detail : "");
}

static bool put_done(void *arg)
{
    return ((struct fx *)arg)->calls > 0;
}

static void
put(struct fx *x, const char *key, const struct iovec *recs, size_t n, enum sl_s3_compression comp)
{
    x->calls = 0;
    assert_int_equal(sl_s3_file_put(x->f, key, recs, n, comp, on_put, x), 0);
    assert_int_equal(x->calls, 0); /* never from inside put */
    assert_int_equal(sl_s3_file_inflight(x->f), 1);
    assert_true(test_run_until(&x->loop, put_done, x, test_deadline_ms(10000)));
    assert_int_equal(x->calls, 1);
    assert_int_equal(sl_s3_file_inflight(x->f), 0);
}

static char *slurp(const char *path, size_t *ret_len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 20);
    *ret_len = fread(buf, 1, 1 << 20, fp);
    fclose(fp);
    return buf;
}

/* Names in dir (not . and ..), joined with ' '. */
static void list_dir(const char *dir, char *out, size_t len)
{
    out[0] = '\0';
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            strncat(out, e->d_name, len - strlen(out) - 2);
            strncat(out, " ", len - strlen(out) - 1);
        }
    }
    closedir(d);
}

static void test_s3_file_writes_gzip_object(void **state)
{
    struct fx *x = *state;
    struct iovec recs[] = {{"{\"a\":1}\n", 8}, {"{\"a\":2}\n", 8}};
    put(x, "2018/08/27/10/clicks-1-2018-08-27-10-30-05-uuid.gz", recs, 2, SL_S3_GZIP);
    assert_int_equal(x->err, 0);
    char path[700];
    (void)snprintf(path, sizeof path, "%s/2018/08/27/10/clicks-1-2018-08-27-10-30-05-uuid.gz",
                   x->dir);
    size_t n;
    char *gz = slurp(path, &n);
    char plain[64];
    uLongf plain_len = sizeof plain;
    /* uncompress() takes zlib format; inflate a gzip member with windowBits 15 + 16 */
    z_stream z = {0};
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (unsigned char *)gz;
    z.avail_in = (uInt)n;
    z.next_out = (unsigned char *)plain;
    z.avail_out = (uInt)plain_len;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, 16);
    assert_memory_equal(plain, "{\"a\":1}\n{\"a\":2}\n", 16);
    inflateEnd(&z);
    free(gz);
    /* nothing else in the directory: no temporary file left */
    char names[1024];
    (void)snprintf(path, sizeof path, "%s/2018/08/27/10", x->dir);
    list_dir(path, names, sizeof names);
    assert_string_equal(names, "clicks-1-2018-08-27-10-30-05-uuid.gz ");
    /* a second object in the same directory, uncompressed */
    put(x, "2018/08/27/10/b", recs, 2, SL_S3_UNCOMPRESSED);
    assert_int_equal(x->err, 0);
    (void)snprintf(path, sizeof path, "%s/2018/08/27/10/b", x->dir);
    char *body = slurp(path, &n);
    assert_int_equal(n, 16);
    assert_memory_equal(body, "{\"a\":1}\n{\"a\":2}\n", 16);
    free(body);
}

/* On the pool thread, just before the rename. */
static void before_rename(void *arg, const char *tmp, const char *final)
{
    struct fx *x = arg;
    x->hook_calls++;
    struct stat st;
    x->final_absent = stat(final, &st) < 0;
    const char *tslash = strrchr(tmp, '/');
    const char *fslash = strrchr(final, '/');
    x->tmp_hidden_same_dir = tslash - tmp == fslash - final &&
                             strncmp(tmp, final, (size_t)(tslash - tmp)) == 0 && tslash[1] == '.';
    x->tmp_size = stat(tmp, &st) == 0 ? (long long)st.st_size : -1;
}

static void test_s3_file_atomic_rename(void **state)
{
    struct fx *x = *state;
    sl_s3_file_set_hook(x->f, before_rename, x);
    static char big[300000];
    memset(big, 'z', sizeof big);
    struct iovec recs[] = {{big, sizeof big}, {"tail", 4}};
    put(x, "p/obj", recs, 2, SL_S3_UNCOMPRESSED);
    assert_int_equal(x->err, 0);
    assert_int_equal(x->hook_calls, 1);
    assert_true(x->final_absent);                             /* no half object under the key */
    assert_true(x->tmp_hidden_same_dir);                      /* ".obj.tmp-..." beside it */
    assert_int_equal(x->tmp_size, (long long)sizeof big + 4); /* whole before the rename */
    char path[700], names[1024];
    (void)snprintf(path, sizeof path, "%s/p", x->dir);
    list_dir(path, names, sizeof names);
    assert_string_equal(names, "obj ");
}

static void test_s3_file_failure_leaves_no_temp(void **state)
{
    struct fx *x = *state;
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    /* create the directory first, so only the object's write meets the limit */
    struct iovec small[] = {{"x", 1}};
    put(x, "d/first", small, 1, SL_S3_UNCOMPRESSED);
    assert_int_equal(x->err, 0);
    low = old;
    low.rlim_cur = 100000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    static char big[300000];
    memset(big, 'q', sizeof big);
    struct iovec recs[] = {{big, sizeof big}};
    put(x, "d/second", recs, 1, SL_S3_UNCOMPRESSED);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    (void)signal(SIGXFSZ, old_sig);
    assert_int_equal(x->err, SL_EIO);
    /* the detail names the step and the temporary file */
    assert_non_null(strstr(x->detail, "write "));
    assert_non_null(strstr(x->detail, "/d/.second.tmp-"));
    assert_non_null(strstr(x->detail, "File too large"));
    char path[700], names[1024];
    (void)snprintf(path, sizeof path, "%s/d", x->dir);
    list_dir(path, names, sizeof names);
    assert_string_equal(names, "first ");
}

/* n records of up to 2,000 bytes, about total bytes of poorly compressible text. */
static struct iovec *many_records(size_t total, unsigned char **ret_data, size_t *ret_n)
{
    unsigned char *data = malloc(total);
    struct iovec *recs = malloc(sizeof(*recs) * total);
    uint32_t x = 2463534242u;
    size_t n = 0, off = 0;
    for (size_t i = 0; i < total; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data[i] = (unsigned char)(x % 64 + ' ');
    }
    while (off < total) {
        size_t len = (off * 7 + n * 13) % 2001;
        len = len > total - off ? total - off : len;
        recs[n++] = (struct iovec){data + off, len};
        off += len;
    }
    *ret_data = data;
    *ret_n = n;
    return recs;
}

/* The records inflated back from the gzip file at path. */
static void assert_gzip_file(const char *path, const unsigned char *want, size_t len)
{
    gzFile gz = gzopen(path, "rb");
    assert_non_null(gz);
    unsigned char *got = malloc(len + 1);
    int k = gzread(gz, got, (unsigned)len + 1);
    assert_int_equal(k, (int)len);
    assert_memory_equal(got, want, len);
    gzclose(gz);
    free(got);
}

static void test_s3_file_gzip_many_blocks(void **state)
{
    struct fx *x = *state;
    sl_s3_file_set_hook(x->f, before_rename, x);
    unsigned char *data;
    size_t n, total = 5 * SL_S3_GZ_BLOCK + 999;
    struct iovec *recs = many_records(total, &data, &n);
    put(x, "g/obj.gz", recs, n, SL_S3_GZIP);
    assert_int_equal(x->err, 0);
    assert_int_equal(x->hook_calls, 1);
    assert_true(x->final_absent);
    assert_true(x->tmp_hidden_same_dir);
    char path[700], names[1024];
    (void)snprintf(path, sizeof path, "%s/g/obj.gz", x->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(x->tmp_size, (long long)st.st_size); /* whole before the rename */
    assert_gzip_file(path, data, total);
    (void)snprintf(path, sizeof path, "%s/g", x->dir);
    list_dir(path, names, sizeof names);
    assert_string_equal(names, "obj.gz ");
    free(recs);
    free(data);
}

static void test_s3_file_gzip_failure_half_way_then_whole(void **state)
{
    struct fx *x = *state;
    unsigned char *data;
    size_t n, total = 4 * SL_S3_GZ_BLOCK;
    struct iovec *recs = many_records(total, &data, &n);
    struct iovec small[] = {{"x", 1}};
    put(x, "d/first", small, 1, SL_S3_UNCOMPRESSED);
    assert_int_equal(x->err, 0);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    low = old;
    low.rlim_cur = SL_S3_GZ_BLOCK; /* about a third of the compressed object */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    put(x, "d/obj.gz", recs, n, SL_S3_GZIP);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    (void)signal(SIGXFSZ, old_sig);
    assert_int_equal(x->err, SL_EIO);
    assert_non_null(strstr(x->detail, "write "));
    assert_non_null(strstr(x->detail, "/d/.obj.gz.tmp-"));
    assert_non_null(strstr(x->detail, "File too large"));
    char path[700], names[1024];
    (void)snprintf(path, sizeof path, "%s/d", x->dir);
    list_dir(path, names, sizeof names);
    assert_string_equal(names, "first "); /* no half object, no temporary file */
    /* tried again with the same key: the whole object */
    put(x, "d/obj.gz", recs, n, SL_S3_GZIP);
    assert_int_equal(x->err, 0);
    list_dir(path, names, sizeof names);
    assert_true(strcmp(names, "first obj.gz ") == 0 || strcmp(names, "obj.gz first ") == 0);
    (void)snprintf(path, sizeof path, "%s/d/obj.gz", x->dir);
    assert_gzip_file(path, data, total);
    free(recs);
    free(data);
}

static void test_s3_file_gzip_stop_before_start(void **state)
{
    struct fx *x = *state;
    struct iovec recs[] = {{"r", 1}};
    x->calls = 0;
    assert_int_equal(sl_s3_file_put(x->f, "s/obj.gz", recs, 1, SL_S3_GZIP, on_put, x), 0);
    sl_s3_file_stop(x->f);
    assert_true(test_run_until(&x->loop, put_done, x, test_deadline_ms(10000)));
    assert_int_equal(x->calls, 1);
    /* canceled before it began, or written whole: never half */
    if (x->err == 0) {
        char path[700];
        (void)snprintf(path, sizeof path, "%s/s/obj.gz", x->dir);
        assert_gzip_file(path, (const unsigned char *)"r", 1);
    } else {
        assert_int_equal(x->err, SL_ECANCELED);
    }
    assert_int_equal(sl_s3_file_inflight(x->f), 0);
}

static void test_s3_file_directory_fails(void **state)
{
    struct fx *x = *state;
    char path[700];
    (void)snprintf(path, sizeof path, "%s/blocker", x->dir);
    test_write_file(path, "w", "x", 1); /* a file where a directory must go */
    struct iovec recs[] = {{"r", 1}};
    put(x, "blocker/sub/obj", recs, 1, SL_S3_GZIP);
    assert_int_equal(x->err, SL_EIO);
    assert_non_null(strstr(x->detail, "create directory "));
    assert_non_null(strstr(x->detail, "/blocker/sub"));
}

static void test_s3_file_bad_key(void **state)
{
    struct fx *x = *state;
    static const char *const bad[] = {"", "/abs", "a/../b", "./a", "a//b", "a/"};
    struct iovec recs[] = {{"r", 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put(x, bad[i], recs, 1, SL_S3_UNCOMPRESSED);
        assert_int_equal(x->err, SL_EINVAL);
        assert_non_null(strstr(x->detail, "allowed: a relative path"));
    }
    char names[1024];
    list_dir(x->dir, names, sizeof names);
    assert_string_equal(names, "");
}

static void test_s3_file_error_records(void **state)
{
    struct fx *x = *state;
    struct sl_s3_error_rec errs[] = {
        {.attempts_made = 1,
         .arrival_ms = 10,
         .error_code = "Lambda.FunctionError",
         .error_message = "boom",
         .attempt_ending_ms = 20,
         .raw = "{\"a\":1}",
         .raw_len = 7,
         .lambda_arn = "arn:aws:lambda:us-east-1:1:function:f"},
        {.attempts_made = 2,
         .arrival_ms = 11,
         .error_code = "ProcessingFailed",
         .error_message = NULL,
         .attempt_ending_ms = 21,
         .raw = "",
         .raw_len = 0},
    };
    x->calls = 0;
    assert_int_equal(sl_s3_file_put_errors(x->f, "processing-failed/2018/08/27/10/s-1-x", errs, 2,
                                           SL_S3_UNCOMPRESSED, on_put, x),
                     0);
    assert_true(test_run_until(&x->loop, put_done, x, test_deadline_ms(10000)));
    assert_int_equal(x->err, 0);
    char path[700];
    (void)snprintf(path, sizeof path, "%s/processing-failed/2018/08/27/10/s-1-x", x->dir);
    size_t n;
    char *body = slurp(path, &n);
    body[n] = '\0';
    assert_string_equal(body, "{\"attemptsMade\":1,\"arrivalTimestamp\":10,"
                              "\"errorCode\":\"Lambda.FunctionError\",\"errorMessage\":\"boom\","
                              "\"attemptEndingTimestamp\":20,\"rawData\":\"eyJhIjoxfQ==\","
                              "\"lambdaArn\":\"arn:aws:lambda:us-east-1:1:function:f\"}\n"
                              "{\"attemptsMade\":2,\"arrivalTimestamp\":11,"
                              "\"errorCode\":\"ProcessingFailed\",\"errorMessage\":\"\","
                              "\"attemptEndingTimestamp\":21,\"rawData\":\"\"}\n");
    free(body);
}

static void test_s3_file_check(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(sl_s3_file_check("file:///tmp/out", err, sizeof err), 0);
    assert_int_equal(sl_s3_file_check("file://host/tmp", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "file:///absolute/dir"));
    assert_int_equal(sl_s3_file_check("file:///tmp?x=1", err, sizeof err), SL_ECONFIG);
    assert_int_equal(sl_s3_file_check("s3://bucket", err, sizeof err), SL_ECONFIG);
    assert_non_null(strstr(err, "expected file:///absolute/dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_s3_file_writes_gzip_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_file_atomic_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_file_failure_leaves_no_temp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_file_gzip_many_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_file_gzip_failure_half_way_then_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_s3_file_gzip_stop_before_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_file_directory_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_file_bad_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s3_file_error_records, setup, teardown),
        cmocka_unit_test(test_s3_file_check),
    };
    return cmocka_run_group_tests_name("s3_file", tests, NULL, NULL);
}
