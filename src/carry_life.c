/* SPDX-License-Identifier: Apache-2.0 */
/* carry_life.c: the life of the carries and their group: it makes a group (its limits, policy,
 * retry backoff and the memo of revoked partitions' retry state) and a lane's carry (its batch and
 * its timer), and frees them, a carry once its timer is closed, telling the lanes through the host
 * interface they gave (closed). What a carry does while it lives is carry.c's. Loop thread. */
#include "carry_int.h"

#include "alloc.h"
#include "memo.h"

int sl_carry_group_new(const struct sl_carry_conf *conf,
                       const struct sl_carry_host *host,
                       struct sl_carry_group **ret_g)
{
    struct sl_carry_group *g = sl_calloc(1, sizeof(*g));
    struct sl_memo *memo = sl_memo_new();
    if (!g || !memo) {
        sl_free(g);
        sl_memo_free(memo);
        return SL_ENOMEM;
    }
    g->inst = conf->inst;
    g->loop = conf->loop;
    g->clock = conf->clock;
    g->ops = conf->ops;
    g->src_ctx = conf->src_ctx;
    g->fn = conf->fn;
    g->onfail = conf->onfail;
    g->lim = conf->lim;
    g->policy = conf->policy;
    g->max_concurrency = conf->max_concurrency;
    g->max_record_age_s = conf->max_record_age_s;
    g->queue_hold_ms = conf->queue_hold_ms;
    g->queue_max_hold_ms = conf->queue_max_hold_ms;
    g->host = *host;
    sl_retry_policy_default(&g->retry);
    g->rng = conf->seed ? conf->seed : 0x9E3779B97F4A7C15ULL;
    g->memo = memo;
    *ret_g = g;
    return 0;
}

void sl_carry_group_free(struct sl_carry_group *g)
{
    if (!g) {
        return;
    }
    sl_memo_free(g->memo);
    sl_free(g);
}

void sl_carry_group_drain(struct sl_carry_group *g)
{
    g->draining = true;
}

bool sl_carry_group_is_draining(const struct sl_carry_group *g)
{
    return g->draining;
}

int sl_carry_group_in_flight(const struct sl_carry_group *g)
{
    return g->in_flight;
}

struct sl_carry *sl_carry_new(struct sl_carry_group *g,
                              void *lane_tag,
                              void *part_tag,
                              struct sl_part *part,
                              struct sl_progress_part *prog,
                              struct sl_window *win)
{
    struct sl_carry *c = sl_calloc(1, sizeof(*c));
    struct sl_lanebatch *b = sl_lanebatch_new(g->ops, g->src_ctx);
    if (!c || !b) {
        sl_free(c);
        sl_lanebatch_free(b);
        return NULL;
    }
    c->b = b;
    c->g = g;
    c->lane_tag = lane_tag;
    c->part_tag = part_tag;
    c->part = part;
    c->prog = prog;
    c->win = win;
    sl_buf_init(&c->body);
    uv_timer_init(g->loop, &c->timer);
    c->timer.data = c;
    return c;
}

static void carry_close_cb(uv_handle_t *h)
{
    struct sl_carry *c = h->data;
    struct sl_carry_group *g = c->g;
    void *lane_tag = c->lane_tag;
    sl_lanebatch_free(c->b);
    sl_buf_fini(&c->body);
    sl_onfail_write_free(c->ofw);
    sl_free(c);
    g->host.closed(g->host.arg, lane_tag);
}

void sl_carry_close(struct sl_carry *c)
{
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, carry_close_cb);
}
