/* SPDX-License-Identifier: Apache-2.0 */
/* lease_rules.c: KCL's lease-taking rules (count the live workers, take expired leases first,
 * then steal at most one from the most loaded worker when below the fair share), as a pure
 * function of one look at the table, so that the rules are tested without Redis or time. The
 * table itself, the takes and the renewals are lease.c's. Any thread. */
#include "lease_rules.h"

#include <string.h>

#include "hash.h"

bool sl_lease_rules_is_free(const struct sl_lease_view *v, int64_t now_ms)
{
    return v->owner[0] == '\0' || v->expires_ms <= now_ms;
}

/* The live lease count of the owner of views[i] (live leases only). */
static size_t
rules_count(const struct sl_lease_view *views, size_t n, const char *owner, int64_t now)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        if (!sl_lease_rules_is_free(&views[i], now) && strcmp(views[i].owner, owner) == 0) {
            c++;
        }
    }
    return c;
}

/* Whether views[i]'s owner appears live before index i (to count each owner once). */
static bool rules_seen(const struct sl_lease_view *views, size_t i, int64_t now)
{
    for (size_t j = 0; j < i; j++) {
        if (!sl_lease_rules_is_free(&views[j], now) &&
            strcmp(views[j].owner, views[i].owner) == 0) {
            return true;
        }
    }
    return false;
}

size_t sl_lease_rules_plan(const struct sl_lease_view *views,
                           size_t n,
                           const char *me,
                           size_t live_workers,
                           int64_t now_ms,
                           struct sl_lease_plan *plan)
{
    plan->n_take = 0;
    plan->steal = false;
    size_t owners = 0;
    bool me_owns = false;
    for (size_t i = 0; i < n; i++) {
        if (sl_lease_rules_is_free(&views[i], now_ms) || rules_seen(views, i, now_ms)) {
            continue;
        }
        owners++;
        me_owns = me_owns || strcmp(views[i].owner, me) == 0;
    }
    size_t workers = owners + (me_owns ? 0 : 1);
    if (live_workers > workers) {
        workers = live_workers;
    }
    size_t mine = rules_count(views, n, me, now_ms);
    if (n == 0) {
        return mine;
    }
    size_t target = workers >= n ? 1 : n / workers + (n % workers ? 1 : 0);
    if (mine >= target) {
        return mine;
    }
    size_t need = target - mine;
    size_t start = (size_t)(sl_hash_mix(sl_hash_fnv1a(me, strlen(me), SL_HASH_FNV1A_BASIS)) % n);
    for (size_t k = 0; k < n && plan->n_take < need; k++) {
        size_t i = (start + k) % n;
        if (sl_lease_rules_is_free(&views[i], now_ms)) {
            plan->take[plan->n_take++] = i;
        }
    }
    if (plan->n_take > 0) {
        return mine;
    }
    /* nothing free: steal one from the most loaded worker */
    size_t most = 0, most_i = n;
    for (size_t i = 0; i < n; i++) {
        if (sl_lease_rules_is_free(&views[i], now_ms) || strcmp(views[i].owner, me) == 0) {
            continue;
        }
        size_t c = rules_count(views, n, views[i].owner, now_ms);
        if (c > most) {
            most = c;
            most_i = i;
        }
    }
    if (most_i < n && (most > target || (most == target && need > 1))) {
        plan->take[plan->n_take++] = most_i;
        plan->steal = true;
    }
    return mine;
}
