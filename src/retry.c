/* SPDX-License-Identifier: Apache-2.0 */
/* retry.c: the backoff schedule. Full jitter (uniform between a floor and an exponentially
 * growing ceiling) spreads retries of many partitions apart, as AWS's backoff article advises;
 * the floor keeps a failing function from being hammered in a tight loop. Pure; the caller
 * owns the random state, so tests can replay a schedule. */
#include "retry.h"

#include <stdlib.h>

static int64_t env_ms(const char *name, int64_t def)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        return def;
    }
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (*end != '\0' || n <= 0) {
        return def;
    }
    return (int64_t)n;
}

void sl_retry_policy_default(struct sl_retry_policy *p)
{
    p->base_ms = env_ms("SLUICE_RETRY_BASE_MS", 200);
    p->max_ms = env_ms("SLUICE_RETRY_MAX_MS", 30000);
    if (p->max_ms < p->base_ms) {
        p->max_ms = p->base_ms;
    }
    p->min_ms = p->base_ms / 10 > 0 ? p->base_ms / 10 : 1;
}

uint64_t sl_retry_rand(uint64_t *rng)
{
    uint64_t x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

int64_t sl_retry_delay_ms(const struct sl_retry_policy *p, unsigned attempt, uint64_t *rng)
{
    int64_t ceiling = p->base_ms;
    for (unsigned i = 1; i < attempt && ceiling < p->max_ms; i++) {
        ceiling *= 2;
    }
    if (ceiling > p->max_ms) {
        ceiling = p->max_ms;
    }
    if (ceiling <= p->min_ms) {
        return p->min_ms;
    }
    uint64_t span = (uint64_t)(ceiling - p->min_ms) + 1;
    return p->min_ms + (int64_t)(sl_retry_rand(rng) % span);
}
