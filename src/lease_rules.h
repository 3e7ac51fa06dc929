/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_LEASE_RULES_H
#define SL_LEASE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* KCL's lease-taking rules, as a pure function of one look at the lease table: which leases a
 * worker takes this round. No I/O, no clock of its own (now is given); any thread. */

/* One lease as the table shows it. */
struct sl_lease_view {
    const char *part;   /* the partition id */
    const char *owner;  /* the worker holding it; "" when nobody does (never taken, released) */
    uint64_t counter;   /* bumped by every take: the fencing token */
    int64_t expires_ms; /* on the table's clock; the lease is free from then on */
};

/* What to take: indexes into the views, expired (or free) ones first; at most one steal. */
struct sl_lease_plan {
    size_t n_take;
    bool steal;   /* take[0] is a live lease of the most loaded worker */
    size_t *take; /* caller's array of n views */
};

/* Plans me's round over views[0..n) at now_ms with live_workers workers alive (heartbeats;
 * counted as at least 1 + every other live owner). The fair share is ceil(n / workers). A worker
 * below it takes expired or free leases up to it (starting at a place that differs per worker,
 * so workers rarely race for the same one); when there are none, it steals one lease from the
 * most loaded worker if that one holds more than the share, or the share while me needs two or
 * more. A worker at or above the share takes nothing (it gives nothing back either: the others
 * steal). plan->take must have room for n indexes. Returns me's live lease count. */
size_t sl_lease_rules_plan(const struct sl_lease_view *views,
                           size_t n,
                           const char *me,
                           size_t live_workers,
                           int64_t now_ms,
                           struct sl_lease_plan *plan);

/* True when the lease is free at now_ms (nobody holds it, or it ran out). */
bool sl_lease_rules_is_free(const struct sl_lease_view *v, int64_t now_ms);

#endif
