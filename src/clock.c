/* SPDX-License-Identifier: Apache-2.0 */
/* clock.c: the system clock and the fake clock behind struct sl_clock. Any thread. */
#include "clock.h"

#include <time.h>

static int64_t clock_read(clockid_t id)
{
    struct timespec ts;
    (void)clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t system_now_ms(const struct sl_clock *c)
{
    (void)c;
    return clock_read(CLOCK_MONOTONIC);
}

static int64_t system_wall_ms(const struct sl_clock *c)
{
    (void)c;
    return clock_read(CLOCK_REALTIME);
}

const struct sl_clock sl_clock_system = {system_now_ms, system_wall_ms};

static int64_t fake_now_ms(const struct sl_clock *c)
{
    return ((const struct sl_clock_fake *)c)->now;
}

static int64_t fake_wall_ms(const struct sl_clock *c)
{
    return ((const struct sl_clock_fake *)c)->wall;
}

void sl_clock_fake_init(struct sl_clock_fake *f, int64_t now_ms, int64_t wall_ms)
{
    f->clock.now_ms = fake_now_ms;
    f->clock.wall_ms = fake_wall_ms;
    f->now = now_ms;
    f->wall = wall_ms;
}

void sl_clock_fake_advance(struct sl_clock_fake *f, int64_t ms)
{
    f->now += ms;
    f->wall += ms;
}
