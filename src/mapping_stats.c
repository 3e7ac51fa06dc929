/* SPDX-License-Identifier: Apache-2.0 */
/* mapping_stats.c: a mapping's progress line and its per-partition lag line. It only reads the
 * mapping, through the narrow read-only interface mapping.h gives (its counters, partitions and
 * their lag, whether its source is settling); the mapping never calls it: the daemon does, on its
 * progress timer and at exit. Loop thread. */
#include "mapping_stats.h"

#include <stdint.h>

#include "log.h"
#include "mapping.h"

#define MAPPING_COMP "mapping"

/* Per-partition lag, on a line of its own beside the progress line (partition names are the
 * keys; at most MAPPING_LAG_PARTS of them, the rest summed in the progress line only).
 *
 * About unknown lag: a partition's lag is unknown until a fetch of it completed, and whenever
 * its source cannot tell (Kafka before the broker's first fetch answer gave the high
 * watermark): it is logged as unknown (SL_LOG_UNKNOWN: "?", JSON null), never as 0, and then
 * so are the mapping's lag and max_lag, which would otherwise understate it. Without
 * partitions they are 0, unless the source is still settling (joining its group). */
#define MAPPING_LAG_PARTS 64

#define MAPPING_QUEUE_STATS 4 /* counters of the progress line only queues have */

void sl_mapping_log_stats(const struct sl_mapping *m, const char *msg)
{
    int64_t lag = 0;
    int64_t max_lag = 0;
    const char *lag_keys[MAPPING_LAG_PARTS];
    int64_t lag_values[MAPPING_LAG_PARTS];
    size_t n_lag = 0;
    size_t n_parts = sl_mapping_part_count(m);
    if (n_parts == 0 && sl_mapping_is_settling(m)) {
        lag = max_lag = SL_LOG_UNKNOWN;
    }
    for (size_t i = 0; i < n_parts; i++) {
        int64_t l = sl_mapping_part_lag(m, i);
        if (l == SL_LOG_UNKNOWN) {
            lag = max_lag = SL_LOG_UNKNOWN;
        } else if (lag != SL_LOG_UNKNOWN) {
            lag += l;
            max_lag = l > max_lag ? l : max_lag;
        }
        if (n_lag < MAPPING_LAG_PARTS) {
            lag_keys[n_lag] = sl_mapping_part_name(m, i);
            lag_values[n_lag++] = l;
        }
    }
    const struct sl_mapping_stats *s = sl_mapping_stats(m);
    static const char *const keys[] = {
        "PolledEventCount",
        "FilteredOutEventCount",
        "InvokedEventCount",
        "FailedInvokeEventCount",
        "DroppedEventCount",
        "OnFailureDestinationDeliveredEventCount",
        "delivered",
        "retried",
        "batches",
        "in_flight",
        "bytes",
        "lag",
        "max_lag",
        "partitions",
        /* queue sources only (the last MAPPING_QUEUE_STATS): AWS's DeletedEventCount, and the
         * deletes that failed, the leases lost, and those lost while in flight */
        "DeletedEventCount",
        "delete_failed",
        "lease_lost",
        "lost_in_flight",
    };
    const int64_t values[] = {
        (int64_t)s->fetched,
        (int64_t)s->filtered,
        (int64_t)s->invoked,
        (int64_t)s->failed,
        (int64_t)s->dropped,
        (int64_t)s->destination_delivered,
        (int64_t)s->delivered,
        (int64_t)s->retried,
        (int64_t)s->batches,
        sl_mapping_in_flight(m),
        (int64_t)s->bytes,
        lag,
        max_lag,
        (int64_t)n_parts,
        (int64_t)s->queue_deleted,
        (int64_t)s->queue_delete_failed,
        (int64_t)s->queue_lease_lost,
        (int64_t)s->queue_lost_in_flight,
    };
    size_t n_keys = SL_ARRAY_LEN(keys) - (sl_mapping_is_queue(m) ? 0 : MAPPING_QUEUE_STATS);
    /* Lag is in the source's own unit (records, bytes, ms behind): the lines say which. */
    const char *unit = sl_mapping_lag_unit(m);
    sl_log_fields_tagged(SL_LOG_INFO, MAPPING_COMP, sl_mapping_name(m), msg, keys, values, n_keys,
                         "lag_unit", unit);
    if (n_lag > 0) {
        sl_log_fields_tagged(SL_LOG_INFO, MAPPING_COMP, sl_mapping_name(m), "lag", lag_keys,
                             lag_values, n_lag, "lag_unit", unit);
    }
}
