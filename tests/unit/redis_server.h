/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_REDIS_SERVER_H
#define SL_TEST_REDIS_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

/* A redis-server of a test's own (Debian's, from PATH or /usr/bin), in memory, on a loopback
 * port picked free, so a test may stop, restart, pause and resume it without touching the one
 * tests/services shares. */
struct test_redis {
    pid_t pid; /* 0 when not running */
    int port;
    char args[256];       /* extra arguments, kept for restarts ("--requirepass x") */
    const char *password; /* test_redis_cmd AUTHs with it first when set */
};

/* Whether a redis-server binary is there. Without one the callers skip (under CI=true they fail:
 * test_redis_need). */
bool test_redis_available(void);

/* Skips the current test when there is no redis-server (fails it under CI=true). */
void test_redis_need(void);

/* Starts a server on a free port (port 0) or on r->port, with extra (space-separated, may be
 * NULL), and waits for it to accept connections (a deadline, no sleep). Fails the test on
 * error. */
void test_redis_start(struct test_redis *r, int port, const char *extra);

/* Stops it (SIGTERM, then waits for it). No-op when it is not running. */
void test_redis_stop(struct test_redis *r);

/* Starts it again on the same port with the same arguments. */
void test_redis_restart(struct test_redis *r);

/* SIGSTOP / SIGCONT: a server that takes commands and never answers. */
void test_redis_pause(struct test_redis *r);
void test_redis_resume(struct test_redis *r);

/* Runs one command (printf-style, hiredis' format) on a connection of its own and returns its
 * reply as text: a string, status or error as is, an integer in decimal, an array as its
 * elements' texts joined with '\n' (nested arrays flattened). Owned: free(). NULL when the
 * server cannot be reached. */
char *test_redis_cmd(const struct test_redis *r, const char *fmt, ...);

#endif
