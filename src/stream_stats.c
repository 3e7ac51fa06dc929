/* SPDX-License-Identifier: Apache-2.0 */
/* stream_stats.c: a delivery stream's progress line: Firehose's metric names for what the
 * stream's destination is (DeliveryToS3.*, DeliveryToHttpEndpoint.* with BackupToS3.*, or
 * sluice's own DeliveryToSink.*), DataFreshness (the age of the oldest record not yet
 * delivered, wherever it is held), the transform's and partitioning's counters, and what memory
 * and the spool hold. Apart from stream.c, which owns the stream and its counters, because it
 * only reads them (through stream_int.h) and calls nothing of stream.c's but the memory sum.
 * Loop thread. */
#include "stream_int.h"

#include "clock.h"
#include "config.h"
#include "log.h"
#include "spool.h"
#include "stream_dest.h"
#include "stream_part.h"
#include "stream_xform.h"

#define STREAM_STATS_COMP "stream"

const struct sl_stream_stats *sl_stream_stats(const struct sl_stream *s)
{
    return &s->stats;
}

/* DataFreshness: the age in seconds of the oldest record not yet delivered (0 when none). */
static int64_t stream_freshness_s(const struct sl_stream *s)
{
    int64_t oldest = s->head ? s->head->oldest_ms : -1;
    int64_t more[2] = {sl_stream_parts_oldest(s->parts),
                       s->xform ? sl_stream_xform_oldest(s->xform) : -1};
    for (size_t i = 0; i < 2; i++) {
        if (more[i] >= 0 && (oldest < 0 || more[i] < oldest)) {
            oldest = more[i];
        }
    }
    if (oldest < 0) {
        return 0;
    }
    int64_t age = sl_clock_wall_ms(s->env.clock) - oldest;
    return age > 0 ? age / 1000 : 0;
}

void sl_stream_log_stats(const struct sl_stream *s, const char *msg)
{
    if (s->closing) {
        return; /* its destination and buffers may be gone already (stream_release) */
    }
    const struct sl_stream_dest_stats *ds = sl_stream_dest_stats(s->dest);
    struct sl_spool_stats st;
    sl_spool_stats(s->spool, &st);
    const char *keys[24];
    int64_t values[24];
    size_t n = 0;
#define STAT(k, v) (keys[n] = (k), values[n++] = (int64_t)(v))
    STAT("IncomingRecords", s->stats.incoming_records);
    STAT("IncomingBytes", s->stats.incoming_bytes);
    STAT("ThrottledRecords", s->stats.throttled);
    if (s->sc->sink) { /* sluice's own names: Firehose has no Kafka or Redis destination */
        STAT("DeliveryToSink.Records", ds->sink_records);
        STAT("DeliveryToSink.Bytes", ds->sink_bytes);
        STAT("DeliveryToSink.Success", ds->sink_success);
        STAT("DeliveryToSink.DataFreshness", stream_freshness_s(s));
    } else if (sl_stream_dest_is_http(s->dest)) {
        STAT("DeliveryToHttpEndpoint.Records", ds->http_records);
        STAT("DeliveryToHttpEndpoint.Bytes", ds->http_bytes);
        STAT("DeliveryToHttpEndpoint.Success", ds->http_success);
        STAT("DeliveryToHttpEndpoint.DataFreshness", stream_freshness_s(s));
        STAT("BackupToS3.Records", ds->backup_records);
        STAT("BackupToS3.Success", ds->backup_success);
    } else {
        STAT("DeliveryToS3.Records", ds->s3_records);
        STAT("DeliveryToS3.Bytes", ds->s3_bytes);
        STAT("DeliveryToS3.Success", ds->s3_success);
        STAT("DeliveryToS3.DataFreshness", stream_freshness_s(s));
    }
    STAT("failed_attempts", ds->failed_attempts);
    if (s->xform) {
        STAT("transform_ok", s->stats.transform_ok);
        STAT("transform_dropped", s->stats.transform_dropped);
        STAT("transform_failed", s->stats.transform_failed);
    }
    if (s->sc->dynamic_partitioning) {
        STAT("partitions", sl_stream_parts_count(s->parts));
        STAT("partitioning_failed", s->stats.partition_failed);
    }
    STAT("buffered_records", sl_stream_parts_records(s->parts) + s->sealed_records +
                                 (s->xform ? sl_stream_xform_records(s->xform) : 0));
    STAT("buffered_bytes", sl_stream_mem_bytes(s));
    STAT("spool_records", st.records_live);
    STAT("spool_bytes", st.disk_bytes);
#undef STAT
    sl_log_fields(SL_LOG_INFO, STREAM_STATS_COMP, s->sc->name, msg, keys, values, n);
}
