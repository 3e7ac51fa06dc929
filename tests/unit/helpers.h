/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_HELPERS_H
#define SL_TEST_HELPERS_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

/* Runs loop until done(arg) is true or timeout_ms of real time passed (a deadline, not a
 * sleep: the loop wakes on I/O). Returns true if done became true. */
bool test_run_until(uv_loop_t *loop, bool (*done)(void *arg), void *arg, int64_t timeout_ms);

/* Makes a fresh temporary directory and returns its path (owned by the caller, free()). */
char *test_tmpdir(void);

/* Removes a directory tree (for teardown). */
void test_rmtree(const char *path);

/* Writes len bytes to path (mode "w" or "a"). */
void test_write_file(const char *path, const char *mode, const char *data, size_t len);

#endif
