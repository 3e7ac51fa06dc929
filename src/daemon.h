/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_DAEMON_H
#define SL_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

struct sl_config;

struct sl_daemon_opts {
    bool until_idle; /* exit once every mapping has been idle for idle_ms */
    int64_t idle_ms;
};

/* Runs every enabled mapping of cfg on one libuv loop until SIGTERM or SIGINT (or idleness
 * with until_idle), then drains: stops fetching, lets invocations in flight finish within
 * drain_timeout, writes checkpoints. Returns the process exit code: 0 done, 1 runtime failure. */
int sl_daemon_run(const struct sl_config *cfg, const struct sl_daemon_opts *opts);

#endif
