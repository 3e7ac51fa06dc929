/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_DAEMON_H
#define SL_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

struct sl_clock;
struct sl_config;

struct sl_daemon_opts {
    bool until_idle; /* exit once every mapping has been idle for idle_ms */
    int64_t idle_ms;
};

/* Runs every enabled mapping of cfg on one libuv loop until SIGTERM or SIGINT (or idleness
 * with until_idle), then drains: stops fetching, lets invocations in flight finish within
 * drain_timeout, writes checkpoints. Returns the process exit code: 0 done, 1 runtime failure. */
int sl_daemon_run(const struct sl_config *cfg, const struct sl_daemon_opts *opts);

/* --until-idle's clock: how long every mapping has been quiet (sl_mapping_is_quiet: its
 * source ready, each partition fetched once, nothing in flight) with no record fetched. The
 * daemon samples it every DAEMON_IDLE_CHECK_MS. Loop thread only. */
struct sl_daemon_idle {
    const struct sl_clock *clock;
    int64_t idle_ms;
    bool quiet;        /* the last sample was quiet */
    int64_t since_ms;  /* the first quiet sample of this quiet stretch */
    uint64_t fetched;  /* records fetched as of the last sample */
    int64_t record_ms; /* the sample that saw the last record fetched, or -1 */
};

void sl_daemon_idle_init(struct sl_daemon_idle *w, const struct sl_clock *clock, int64_t idle_ms);

/* Takes one sample: quiet says whether every mapping is quiet now, fetched how many records
 * they have fetched in all so far. Returns true once the samples have been quiet, with no new
 * record, for idle_ms. */
bool sl_daemon_idle_sample(struct sl_daemon_idle *w, bool quiet, uint64_t fetched);

#endif
