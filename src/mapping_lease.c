/* SPDX-License-Identifier: Apache-2.0 */
/* mapping_lease.c: a mapping's side of partition leases (src/lease.c), for sources that share
 * their partitions among processes by leases (caps->leases) when the checkpoint store is Redis.
 * It answers the source's part_add with "not now" (SL_EAGAIN) for a partition whose lease this
 * process does not hold, and contends for it from then on; when a lease is taken it reads the
 * partition's checkpoint as Redis had it at that moment into the store and asks the source to
 * offer the partition again; when a lease is lost it revokes the partition (its batches in
 * flight are abandoned, nothing more of it is checkpointed, the source forgets it); and it
 * fences the store's writes by the leases. Loop thread. */
#include "mapping_int.h"

#include <string.h>

#include "checkpoint.h"
#include "lease.h"
#include "log.h"

static void mapping_lease_granted(void *arg, const char *part, const char *row)
{
    struct sl_mapping *m = arg;
    int r = sl_ckpt_refresh(m->ck, part, row);
    if (r < 0) {
        sl_log_error(MAPPING_COMP, m->name,
                     "%s: its checkpoint in Redis cannot be read (%s); reading it from what this "
                     "process knew",
                     part, sl_strerror(r));
    }
    if (!m->draining) {
        m->ops->offer_again(m->src_ctx);
    }
}

static void mapping_lease_lost(void *arg, const char *part)
{
    struct sl_mapping *m = arg;
    for (size_t i = 0; i < m->n_parts; i++) {
        struct sl_mpart *mp = m->parts[i];
        if (mp->life == SL_MPART_LIVE && strcmp(mp->part->id, part) == 0) {
            /* as the source revokes one (a Kafka rebalance): through the source's env, so this
             * file calls nothing of mapping.c's */
            m->senv.part_revoke(m, mp->part);
            return;
        }
    }
}

static bool mapping_lease_holds(void *arg, const char *part, uint64_t *ret_counter)
{
    struct sl_mapping *m = arg;
    return sl_lease_holds(m->lease, part, ret_counter);
}

int mapping_lease_new(struct sl_mapping *m, char *errbuf, size_t errlen)
{
    if (!m->env.checkpoint_store || !m->ops->caps->leases) {
        return 0;
    }
    struct sl_lease_conf conf = {
        .url = m->env.checkpoint_store,
        .ck = m->ck,
        .mapping_id = m->name,
        .ttl_ms = m->env.lease_ttl_ms,
        .clock = m->env.clock,
    };
    struct sl_lease_host host = {
        .arg = m,
        .granted = mapping_lease_granted,
        .lost = mapping_lease_lost,
    };
    int r = sl_lease_new(m->env.loop, &conf, &host, &m->lease, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    sl_ckpt_fence(m->ck, sl_lease_key(m->lease), sl_lease_owner(m->lease), mapping_lease_holds, m);
    return 0;
}

int mapping_lease_may_add(struct sl_mapping *m, const char *id)
{
    if (!m->lease) {
        return 0;
    }
    int r = sl_lease_want(m->lease, id);
    if (r < 0) {
        return r;
    }
    return sl_lease_holds(m->lease, id, NULL) ? 0 : SL_EAGAIN;
}

void mapping_lease_done(struct sl_mapping *m, const char *id)
{
    if (m->lease) {
        sl_lease_done(m->lease, id);
    }
}

void mapping_lease_free(struct sl_mapping *m)
{
    if (m->lease) {
        sl_ckpt_fence(m->ck, NULL, NULL, NULL, NULL);
        sl_lease_free(m->lease);
        m->lease = NULL;
    }
}
