/* SPDX-License-Identifier: Apache-2.0 */
/* mapping_stats.c: a mapping's progress line and its per-partition lag line. It only reads the
 * mapping, through the narrow read-only interface mapping.h gives (its counters, partitions and
 * their lag, whether its source is settling); the mapping never calls it: the daemon does, on its
 * progress timer and at exit. Loop thread. */
#include "mapping_stats.h"

#include <stdint.h>
#include <string.h>

#include "log.h"
#include "mapping.h"
#include "source.h"

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

#define MAPPING_STATS_MAX 24 /* counters of the progress line, at most */

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
    const char *unit = sl_mapping_lag_unit(m);
    const char *keys[MAPPING_STATS_MAX];
    int64_t values[MAPPING_STATS_MAX];
    size_t n_keys = 0;
#define STAT(k, v) (keys[n_keys] = (k), values[n_keys++] = (int64_t)(v))
    STAT("PolledEventCount", s->fetched);
    STAT("FilteredOutEventCount", s->filtered);
    STAT("InvokedEventCount", s->invoked);
    STAT("FailedInvokeEventCount", s->failed);
    STAT("DroppedEventCount", s->dropped);
    STAT("OnFailureDestinationDeliveredEventCount", s->destination_delivered);
    STAT("delivered", s->delivered);
    STAT("retried", s->retried);
    STAT("batches", s->batches);
    STAT("in_flight", sl_mapping_in_flight(m));
    STAT("bytes", s->bytes);
    STAT("lag", lag);
    STAT("max_lag", max_lag);
    STAT("partitions", n_parts);
    if (strcmp(unit, sl_lag_unit_name(SL_LAG_MS)) == 0) {
        /* AWS's IteratorAge for a stream whose lag is time behind its newest record (Kinesis's
         * MillisBehindLatest): the partition furthest behind */
        STAT("IteratorAge", max_lag);
    }
    if (sl_mapping_is_queue(m)) {
        /* AWS's DeletedEventCount, and the deletes that failed, the leases lost, and those lost
         * while in flight */
        STAT("DeletedEventCount", s->queue_deleted);
        STAT("delete_failed", s->queue_delete_failed);
        STAT("lease_lost", s->queue_lease_lost);
        STAT("lost_in_flight", s->queue_lost_in_flight);
    }
#undef STAT
    /* Lag is in the source's own unit (records, bytes, ms behind): the lines say which. */
    sl_log_fields_tagged(SL_LOG_INFO, MAPPING_COMP, sl_mapping_name(m), msg, keys, values, n_keys,
                         "lag_unit", unit);
    if (n_lag > 0) {
        sl_log_fields_tagged(SL_LOG_INFO, MAPPING_COMP, sl_mapping_name(m), "lag", lag_keys,
                             lag_values, n_lag, "lag_unit", unit);
    }
}
