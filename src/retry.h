/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_RETRY_H
#define SL_RETRY_H

#include <stdint.h>

/* How long to wait before trying a failed operation again: exponential backoff with full
 * jitter, capped, with a floor so that a retry is never a tight loop. */
struct sl_retry_policy {
    int64_t base_ms; /* ceiling of the first retry */
    int64_t max_ms;  /* cap of the ceiling */
    int64_t min_ms;  /* floor of every delay */
};

/* The default policy (base 200 ms, cap 30 s, floor 20 ms). The environment variables
 * SLUICE_RETRY_BASE_MS and SLUICE_RETRY_MAX_MS override base and cap (tests use small values);
 * the floor follows as base / 10, at least 1 ms. */
void sl_retry_policy_default(struct sl_retry_policy *p);

/* The delay before retry number attempt (1 = the first retry): uniform in
 * [min_ms, min(max_ms, base_ms * 2^(attempt-1))]. rng is the caller's generator state. */
int64_t sl_retry_delay_ms(const struct sl_retry_policy *p, unsigned attempt, uint64_t *rng);

/* A small, fast generator (xorshift64*) for jitter; seed must not be 0. */
uint64_t sl_retry_rand(uint64_t *rng);

#endif
