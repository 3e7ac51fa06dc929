/* SPDX-License-Identifier: Apache-2.0 */
/* helpers.c: what several unit tests need: drive a libuv loop to a condition with a deadline,
 * and temporary directories. Tests never sleep to wait for an event. */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void deadline_cb(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

struct until {
    bool (*done)(void *arg);
    void *arg;
};

/* Runs just before the loop would block in poll: if a callback of this turn (a timer, say)
 * made the condition true, stop the loop so the poll does not wait for the next event. */
static void until_prepare_cb(uv_prepare_t *p)
{
    const struct until *u = p->data;
    if (u->done(u->arg)) {
        uv_stop(p->loop);
    }
}

int64_t test_deadline_ms(int64_t ms)
{
    const char *scale = getenv("SLUICE_TEST_DEADLINE_SCALE");
    long k = scale ? strtol(scale, NULL, 10) : 1;
    return k > 1 && k <= 100 ? ms * k : ms;
}

bool test_run_until(uv_loop_t *loop, bool (*done)(void *arg), void *arg, int64_t timeout_ms)
{
    timeout_ms = test_deadline_ms(timeout_ms);
    bool expired = false;
    uv_timer_t timer;
    uv_timer_init(loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, deadline_cb, (uint64_t)timeout_ms, 0);
    struct until u = {done, arg};
    uv_prepare_t prepare;
    uv_prepare_init(loop, &prepare);
    prepare.data = &u;
    uv_prepare_start(&prepare, until_prepare_cb);
    while (!done(arg) && !expired) {
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&timer);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_prepare_stop(&prepare);
    uv_close((uv_handle_t *)&prepare, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return done(arg);
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

void test_close_all(uv_loop_t *loop)
{
    uv_walk(loop, close_walk_cb, NULL);
    (void)uv_run(loop, UV_RUN_DEFAULT);
}

char *test_tmpdir(void)
{
    char tmpl[] = "/tmp/sluice-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    if (!d) {
        abort();
    }
    size_t n = strlen(d) + 1;
    char *copy = malloc(n);
    if (!copy) {
        abort();
    }
    memcpy(copy, d, n);
    return copy;
}

void test_rmtree(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0) {
        fprintf(stderr, "rmtree %s failed\n", path);
    }
}

void test_write_file(const char *path, const char *mode, const char *data, size_t len)
{
    FILE *f = fopen(path, mode);
    if (!f) {
        abort();
    }
    if (len && fwrite(data, 1, len, f) != len) {
        abort();
    }
    fclose(f);
}

int test_fd_exhaust(struct test_fd_pressure *p)
{
    p->n = 0;
    if (getrlimit(RLIMIT_NOFILE, &p->old) != 0) {
        return -1;
    }
    struct rlimit low = {TEST_FD_PRESSURE_MAX, p->old.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) {
        return -1;
    }
    while (p->n < TEST_FD_PRESSURE_MAX &&
           (p->fds[p->n] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
        p->n++;
    }
    return errno;
}

int test_fd_release(struct test_fd_pressure *p)
{
    while (p->n > 0) {
        (void)close(p->fds[--p->n]);
    }
    return setrlimit(RLIMIT_NOFILE, &p->old);
}

int test_push(struct sl_recq *q,
              const void *data,
              uint32_t len,
              const void *meta,
              uint32_t meta_len,
              uint64_t pos,
              uint64_t next_pos,
              int64_t arrival_ms,
              uint32_t flags)
{
    const uint64_t at[2] = {pos, next_pos};
    return sl_recq_push(q, data, len, meta, meta_len, at, sizeof(at), arrival_ms, flags);
}
