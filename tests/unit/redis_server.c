/* SPDX-License-Identifier: Apache-2.0 */
/* redis_server.c: a redis-server of a test's own (redis_server.h). It runs the server in the
 * foreground with its log on a pipe and waits, with poll() and a deadline, for "Ready to accept
 * connections", so nothing sleeps; it reads the server's state back with hiredis' blocking
 * client (the test's side, never the loop's). */
#include "redis_server.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "helpers.h"
#include "http_peer.h"

static const char *redis_bin(void)
{
    static const char *const paths[] = {"/usr/bin/redis-server", "/usr/local/bin/redis-server",
                                        "/usr/sbin/redis-server"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        if (access(paths[i], X_OK) == 0) {
            return paths[i];
        }
    }
    return NULL;
}

bool test_redis_available(void)
{
    return redis_bin() != NULL;
}

void test_redis_need(void)
{
    if (test_redis_available()) {
        return;
    }
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        fail_msg("redis-server not found (apt-get install redis-server), and CI=true");
    }
    skip();
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void test_redis_start(struct test_redis *r, int port, const char *extra)
{
    const char *bin = redis_bin();
    assert_non_null(bin);
    if (port == 0) {
        int fd = http_peer_listen(&port); /* a free port: bound, then let go */
        close(fd);
    }
    r->port = port;
    if (extra != r->args) {
        (void)snprintf(r->args, sizeof(r->args), "%s", extra ? extra : "");
    }
    char portbuf[16];
    (void)snprintf(portbuf, sizeof(portbuf), "%d", port);
    char *argv[32] = {(char *)bin,    "--port", portbuf,     "--bind", "127.0.0.1",   "--save", "",
                      "--appendonly", "no",     "--logfile", "",       "--daemonize", "no"};
    int argc = 13;
    char words[256];
    (void)snprintf(words, sizeof(words), "%s", r->args);
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w && argc < 30;
         w = strtok_r(NULL, " ", &save)) {
        argv[argc++] = w;
    }
    argv[argc] = NULL;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        close(pfd[1]);
        execv(bin, argv);
        _exit(127);
    }
    close(pfd[1]);
    r->pid = pid;
    char log[8192];
    size_t n = 0;
    int64_t deadline = mono_ms() + test_deadline_ms(10000);
    bool ready = false;
    while (!ready && mono_ms() < deadline) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - mono_ms())) <= 0) {
            continue;
        }
        ssize_t k = read(pfd[0], log + n, sizeof(log) - 1 - n);
        if (k <= 0) {
            break;
        }
        n += (size_t)k;
        log[n] = '\0';
        ready = strstr(log, "Ready to accept connections") != NULL;
        if (n == sizeof(log) - 1) { /* keep the tail */
            memmove(log, log + n / 2, n - n / 2 + 1);
            n -= n / 2;
        }
    }
    close(pfd[0]); /* the server's later lines go nowhere (it ignores SIGPIPE) */
    if (!ready) {
        test_redis_stop(r);
        fail_msg("redis-server on port %d not ready: %s", port, log);
    }
}

void test_redis_stop(struct test_redis *r)
{
    if (r->pid <= 0) {
        return;
    }
    (void)kill(r->pid, SIGCONT);
    (void)kill(r->pid, SIGTERM);
    (void)waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

void test_redis_restart(struct test_redis *r)
{
    test_redis_stop(r);
    test_redis_start(r, r->port, r->args);
}

void test_redis_pause(struct test_redis *r)
{
    assert_int_equal(kill(r->pid, SIGSTOP), 0);
}

void test_redis_resume(struct test_redis *r)
{
    assert_int_equal(kill(r->pid, SIGCONT), 0);
}

static void reply_text(const redisReply *rep, char **buf, size_t *len, size_t *cap)
{
    char num[32];
    const char *s = NULL;
    size_t k = 0;
    switch (rep->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        s = rep->str;
        k = rep->len;
        break;
    case REDIS_REPLY_INTEGER:
        k = (size_t)snprintf(num, sizeof(num), "%lld", rep->integer);
        s = num;
        break;
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < rep->elements; i++) {
            reply_text(rep->element[i], buf, len, cap);
        }
        return;
    default:
        s = "(nil)";
        k = 5;
        break;
    }
    while (*len + k + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *buf = realloc(*buf, *cap);
        assert_non_null(*buf);
    }
    if (*len > 0) {
        (*buf)[(*len)++] = '\n';
    }
    memcpy(*buf + *len, s, k);
    *len += k;
    (*buf)[*len] = '\0';
}

char *test_redis_cmd(const struct test_redis *r, const char *fmt, ...)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c || c->err) {
        redisFree(c);
        return NULL;
    }
    if (r->password) {
        redisReply *a = redisCommand(c, "AUTH %s", r->password);
        freeReplyObject(a);
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    char *out = NULL;
    if (rep) {
        size_t len = 0;
        size_t cap = 0;
        reply_text(rep, &out, &len, &cap);
        if (!out) {
            out = strdup("");
        }
        freeReplyObject(rep);
    }
    redisFree(c);
    return out;
}
