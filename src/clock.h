/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_CLOCK_H
#define SL_CLOCK_H

#include <stdint.h>

/* An injectable clock. Everything that decides by time (batching windows, retry schedules,
 * idle detection, record age) reads one of these instead of the system, so unit tests drive
 * time by hand and never sleep. now_ms is monotonic; wall_ms is Unix epoch milliseconds. */
struct sl_clock {
    int64_t (*now_ms)(const struct sl_clock *c);
    int64_t (*wall_ms)(const struct sl_clock *c);
};

/* The real clock (CLOCK_MONOTONIC and CLOCK_REALTIME). */
extern const struct sl_clock sl_clock_system;

/* A clock tests set by hand: now and wall advance only when the test says so. */
struct sl_clock_fake {
    struct sl_clock clock;
    int64_t now;
    int64_t wall;
};

void sl_clock_fake_init(struct sl_clock_fake *f, int64_t now_ms, int64_t wall_ms);
void sl_clock_fake_advance(struct sl_clock_fake *f, int64_t ms);

static inline int64_t sl_clock_now_ms(const struct sl_clock *c)
{
    return c->now_ms(c);
}

static inline int64_t sl_clock_wall_ms(const struct sl_clock *c)
{
    return c->wall_ms(c);
}

#endif
