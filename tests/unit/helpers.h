/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_HELPERS_H
#define SL_TEST_HELPERS_H

#include <stdbool.h>
#include <stdint.h>

#include <sys/resource.h>

#include <uv.h>

#include "recq.h"

/* Runs loop until done(arg) is true or timeout_ms of real time passed (a deadline, not a
 * sleep: the loop wakes on I/O). Returns true if done became true. */
/* A real-time deadline of ms, times SLUICE_TEST_DEADLINE_SCALE when that is set (2..100): the
 * valgrind test setup sets it, since everything runs many times slower there. Deadlines only
 * bound a wait for a condition; no test asserts that something took at least this long. */
int64_t test_deadline_ms(int64_t ms);
bool test_run_until(uv_loop_t *loop, bool (*done)(void *arg), void *arg, int64_t timeout_ms);

/* Makes a fresh temporary directory and returns its path (owned by the caller, free()). */
char *test_tmpdir(void);

/* Removes a directory tree (for teardown). */
void test_rmtree(const char *path);

/* Writes len bytes to path (mode "w" or "a"). */
void test_write_file(const char *path, const char *mode, const char *data, size_t len);

/* Descriptor exhaustion for tests of EMFILE: the soft RLIMIT_NOFILE lowered to
 * TEST_FD_PRESSURE_MAX and /dev/null opened until open fails. */
#define TEST_FD_PRESSURE_MAX 256
struct test_fd_pressure {
    struct rlimit old;
    int fds[TEST_FD_PRESSURE_MAX];
    int n;
};

/* Lowers the limit and fills it. Returns the errno that stopped the opening (EMFILE when every
 * descriptor is taken), or -1 when the limit could not be changed. */
int test_fd_exhaust(struct test_fd_pressure *p);

/* Closes what test_fd_exhaust opened and restores the limit. Returns 0, or -1 when the limit
 * could not be restored. */
int test_fd_release(struct test_fd_pressure *p);

/* Closes every handle still open on loop and runs it until they are closed (a fixture's
 * teardown, before uv_loop_close). */
void test_close_all(uv_loop_t *loop);

/* sl_recq_push with the position most tests use: the pair {pos, next_pos} of native 64-bit
 * numbers (the file source's layout: where the record starts and where the next one does). */
int test_push(struct sl_recq *q,
              const void *data,
              uint32_t len,
              const void *meta,
              uint32_t meta_len,
              uint64_t pos,
              uint64_t next_pos,
              int64_t arrival_ms,
              uint32_t flags);

#endif
