/* SPDX-License-Identifier: Apache-2.0 */
/* kafka.c: the Kafka source, on librdkafka's KafkaConsumer. A mapping is self-managed Kafka
 * (EventSourceArn "kafka://" + bootstrap servers, which the config loader synthesizes from
 * SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS) or MSK-style (an arn:aws:kafka: ARN
 * plus our own bootstrap_servers, since there is no MSK API to ask). Each assigned
 * topic-partition is a partition, id and name "<topic>-<partition>"; each message a record.
 *
 * It owns, per mapping: the consumer (group ConsumerGroupId, by default the mapping's UUID), a
 * pipe that librdkafka writes to when the consumer queue or a partition queue becomes non-empty
 * (watched by a uv_poll), a 100 ms timer (backstop for wake-ups and callbacks, and the commit
 * clock), an idle handle that continues a drain of the consumer queue cut short by the per-turn
 * cap, and per partition its own librdkafka queue, a small stash of messages taken from it but
 * not yet fetched by the mapping, and the constant pieces of its events.
 * It must not block the loop, except in fini (shutdown): the wait for a commit on revoke still
 * in flight, then commit + leave-group, each bounded. It must never commit an
 * offset the mapping has not acknowledged. Loop thread only, with one exception: the lookup of
 * where newly assigned partitions start runs on libuv's thread pool (kafka_lookup_work, which
 * touches nothing but its own struct kafka_lookup and the thread-safe rd_kafka_t);
 * librdkafka's own threads call nothing here but kafka_log_cb, which only formats a log line.
 *
 * About positions: Kafka's committed offsets are the checkpoint (keeps_positions): the mapping's
 * store is not used. ack(part, last) records last->next_pos (offset + 1) as the partition's
 * acknowledged offset (so is, at assignment, a start resolved from StartingPosition: see "About
 * where reading starts"); the timer commits every changed partition at most every 100 ms with one
 * asynchronous OffsetCommit carrying explicit offsets (so offsets_store is not needed; auto
 * commit and auto store are off). A failed commit is logged and sent again one second later.
 * On revoke the acknowledged offsets of the revoked partitions are committed (asynchronously,
 * see "About rebalances") before they are given up; at shutdown everything acknowledged is
 * committed (bounded wait).
 *
 * About where reading starts: on assignment the committed offsets are fetched
 * (rd_kafka_committed). A partition with one resumes there; one without starts from
 * StartingPosition: TRIM_HORIZON the beginning, LATEST the end, AT_TIMESTAMP the first offset
 * whose timestamp is at or after StartingPositionTimestamp (the end when there is none), each
 * resolved to a real offset by the lookup (offsets_for_times: ListOffsets by time, or for the
 * earliest or latest offset). That offset is where the partition is assigned, and it is
 * committed for the group at once, as if acknowledged (nothing before it is to be delivered, so
 * the commit passes no undelivered record): otherwise a run stopped before a record arrived
 * would leave the group without an offset, and the next run would start from the (new) end
 * again, skipping what was produced meanwhile. The partition has not started, and settling
 * stays true (so --until-idle does not stop), until the broker acknowledged that commit (at most
 * KAFKA_SETTLE_MS; fini commits it again, bounded, if it is still missing). It goes out with the
 * ordinary commits (kafka_commit_async, retried like them), only for a partition of the current
 * assignment: a lookup of an older generation creates no partition and so commits nothing. If
 * the lookup of that offset fails, the partition is assigned at the logical offset for librdkafka
 * to resolve, and the group's offset is committed only with the first record delivered (a
 * warning says so). auto.offset.reset is therefore always "earliest": it applies only when a
 * committed (or fetched) offset is out of range, i.e. the log was truncated by retention under us;
 * the consumer then resumes from the earliest available offset, and the gap is logged as records
 * lost to retention (any jump in offsets is logged; a compacted topic or transaction markers
 * also make jumps, which the line says). If the committed offsets cannot be fetched (timeout),
 * the partitions are assigned without explicit offsets: librdkafka looks them up itself and a
 * partition without one starts from the beginning (duplicates, never a skip), with a warning.
 *
 * About the lookup: its calls (rd_kafka_committed, then for partitions without a committed offset
 * rd_kafka_offsets_for_times, twice for AT_TIMESTAMP when no message is at or after the time)
 * each wait for a broker round trip (up to KAFKA_BLOCK_TIMEOUT_MS each when the coordinator or
 * a leader is slow or away), so they run on libuv's thread pool (a struct kafka_lookup, one per
 * assignment) and the rebalance callback returns without assigning:
 * librdkafka's group stays in its wait-for-assign state, heartbeating, until the lookup's
 * completion calls rd_kafka_assign on the loop with the offsets found. Every assignment and every
 * revoke starts a new generation; a lookup that completes in an older one (a revoke, or another
 * assignment, came while it ran) is dropped without assigning anything, since its partitions are
 * no longer this consumer's to read (the revoke answers librdkafka with rd_kafka_assign(NULL)
 * once its commit ended). fini cancels lookups not yet started and waits for a running one (it
 * uses rk). This is the one use of the pool for network calls: a lookup holds a pool thread for
 * those round trips, at most 3 x KAFKA_BLOCK_TIMEOUT_MS. librdkafka 2.0 has no asynchronous form
 * of either call (ListConsumerGroupOffsets would do the first, but nothing does ListOffsets by
 * time).
 *
 * About fetching: each assigned partition has its own queue (rd_kafka_queue_get_partition, its
 * forwarding to the consumer queue removed with rd_kafka_queue_forward(q, NULL) BEFORE
 * rd_kafka_assign, so that no message of it ever reaches the consumer queue: librdkafka does
 * not forward a queue the application has set itself). Messages are taken from it only inside
 * fetch(), at most max_records and about max_bytes (rd_kafka_consume_batch_queue, timeout 0, in
 * chunks of at most KAFKA_CHUNK; what a chunk holds beyond max_bytes waits in the partition's
 * stash, served first by the next fetch), and copied into part->q (one copy of the bytes). So
 * backpressure is librdkafka's own: it stops fetching a partition while its queue holds
 * queued.min.messages messages or queued.max.messages.kbytes (sluice sets 5000 and 2048 KiB per
 * partition; both can be overridden through "rdkafka"); pause/resume serves only the memory
 * bound (see "About memory"): in librdkafka 2.0 it discards a partition's prefetched data and
 * leaves it stalled until the broker's thread wakes. A queued record of 100 bytes costs about 400
 * bytes in all (measured), so 5000 are about 2 MB a partition. librdkafka 2.0 notices that a queue
 * fell below those limits only when the broker's thread next wakes, up to a second later if no
 * other fetch wakes it (2.1 added fetch.queue.backoff.ms for this). So a partition whose queue
 * sluice saw full and then drained, and which has stayed empty for KAFKA_KICK_MS while the broker
 * has more, gets a seek to the offset after the last one taken: an asynchronous op that wakes the
 * broker's thread at once (kafka_kick_if_stalled). It keeps a partition at full speed with a
 * fraction of a second's records queued, where the queue had to hold a whole second's worth before
 * (measured: 5000 queued, 100k records/s without, 250k-550k with, beside kcat's 245k-460k). About
 * memory (DESIGN.md rule 4): what librdkafka holds counts against the mapping's max_bytes_buffered.
 * Its limits are per partition and fixed once the consumer exists, so with hundreds of partitions
 * their queues alone would hold the whole topic (measured: 310 MB for a 50 MB topic of 240
 * partitions). So only kafka_slots() partitions fetch at once: max_bytes_buffered over what one
 * fetching partition's queue can hold (queued.min.messages, or queued.max.messages.kbytes, of
 * messages of the average size seen, each with librdkafka's KAFKA_MSG_OVERHEAD; 8 with the defaults
 * and 100-byte records). The others are paused (rd_kafka_pause_partitions) before they are
 * assigned, so that nothing is prefetched for them, and take a slot in turn (kafka_slots_fill, from
 * ctx->rr): a fetching partition whose fetch found nothing gives its slot up (kafka_slot_yield)
 * once it has read everything its broker had (its high watermark) or has held it 10 x
 * KAFKA_SLICE_MS, to a paused partition that has more to read or has not been looked at for as
 * long. Pausing a partition whose queue is empty discards nothing; what librdkafka may still bring
 * for it is dropped and fetched again from the offset after the last one taken, as is everything
 * after a resume. A resumed partition gets a seek to that offset (kafka_seek_wake), which wakes the
 * broker's thread at once, as the kick does. fetch.wait.max.ms is 100 (librdkafka: 500): a broker
 * holds a fetch that found nothing that long, and the fetch of a partition given a slot waits
 * for it. With as many partitions as slots or fewer, nothing is ever paused.
 * The consumer queue carries only rebalances, errors, commit
 * results and statistics. Each partition queue writes its own 4-byte key (the consumer queue: 0)
 * to the shared pipe when it becomes non-empty; a fetch that found nothing marks the partition
 * waiting, and the key (or the timer's check of waiting queues, a backstop) calls part_wake.
 * The mapping sees the usual contract: fetch returns what it appended, or 0 and part_wake
 * follows. A message of an assigned partition that does reach the consumer queue (only when its
 * own queue could not be had, out of memory) is stashed and fetched in order all the same.
 *
 * About records: data = the value bytes (len 0 and KAFKA_M_NULLVAL for a tombstone, a null
 * value); meta = flags, timestamp type, timestamp, key and headers (kafka_meta_*), so that
 * encode_record rebuilds AWS's record exactly. pos = offset, next_pos = offset + 1, arrival_ms =
 * the message timestamp (CREATE_TIME or LOG_APPEND_TIME; the wall clock when it has none). A
 * record whose event would not fit in one invocation (6 MB) is kept as SL_REC_OVERSIZE without
 * its value (and without its key and headers if they alone are too big).
 *
 * About the event (esm.md §2): {"eventSource":"SelfManagedKafka","bootstrapServers":"h:p,...",
 * "records":{"<topic>-<p>":[...]}} and for MSK {"eventSource":"aws:kafka","eventSourceArn":..,
 * "bootstrapServers":...}. A record: {"topic","partition","offset","timestamp","timestampType",
 * "key","value","headers"} in that order; key absent for a null key, value absent for a
 * tombstone; headers always present, a list of one-key objects whose values are the bytes as
 * SIGNED integers (-128..127) as AWS (Java bytes) sends them; a header with a null value has
 * []. A message without a timestamp has "timestamp":-1,"timestampType":"NO_TIMESTAMP_TYPE".
 *
 * About itemIdentifier (esm.md §4.3): third parties disagree between the object
 * {"partition":"topic-0","offset":N} and the string "topic-partition-offset". We write the
 * string form, "<topic>-<partition>-<offset>" (unambiguous: the last two dash-separated fields
 * are numbers); the invoker also accepts the object form, normalized to that string.
 *
 * About rebalances: eager assignors only (range, roundrobin; librdkafka's default);
 * cooperative-sticky is rejected in check(). On revoke the partitions are revoked at once with
 * env->part_revoke (the mapping abandons their batches and releases them when nothing is in
 * flight; an acknowledgement that comes later is ignored) and their staged messages dropped;
 * their acknowledged, uncommitted offsets are committed with rd_kafka_commit_queue on a queue of
 * our own (the revoke queue, which writes KAFKA_REVOKE_KEY to the pipe), and the rebalance
 * callback returns. librdkafka's eager rebalance waits, heartbeating, until the application
 * calls rd_kafka_assign(NULL); kafka_revoke_end does that when the commit's answer arrives (on
 * the loop), or when KAFKA_BLOCK_TIMEOUT_MS passed without one (checked each tick; a late answer
 * is then ignored), so the partitions are given up only after their offsets were committed or
 * the commit failed. A rebalance delivered meanwhile waits (kafka_defer) and is handled after
 * it, in order: an assignment made before the revoke's rd_kafka_assign(NULL) would be undone by
 * it. stop() leaves a commit on revoke in flight alone; fini waits for its answer (what is left
 * of its time limit) before its own final commit, which leaves revoked partitions out, so it is
 * sent once; the revoke queue is destroyed, any late answer with it, before rk. Stopped, a
 * revoke commits nothing (fini commits what is live). A partition assigned again later is a new
 * partition object with the same id (the mapping keeps a failing batch's retry state by that
 * id). If the commit on revoke fails or times out (librdkafka's mock cluster, unlike a real
 * broker, refuses OffsetCommit while the group is joining, so it does whenever another member
 * leaves or joins), the acknowledged offset is remembered (the leftover list): when the
 * partition is assigned to this process again, reading resumes there (if beyond the committed
 * offset) and it is committed at the next tick; given to another member, that member reads
 * again from the committed offset (at-least-once).
 *
 * About lag (progress line): the cached high watermark minus the acknowledged offset (committed
 * within a tick; a resolved start counts as acknowledged); before the first acknowledgement,
 * minus the committed offset, else the first offset received, else the log start (the end for
 * LATEST). Unknown (-1) until a fetch answer from the broker gave the high watermark; until
 * then, too, the source is settling (bounded), so --until-idle does not stop before it. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "alloc.h"
#include "batcher.h"
#include "config.h"
#include "encoder.h"
#include "log.h"
#include "source.h"

#define KAFKA_COMP                 "kafka"
#define KAFKA_SCHEME               "kafka://"
#define KAFKA_SCHEME_LEN           8
#define KAFKA_MSK_PREFIX           "arn:aws:kafka:"
#define KAFKA_TICK_MS              50
#define KAFKA_KICK_MS              50    /* a partition queue empty this long may be stalled */
#define KAFKA_SLICE_MS             100   /* a fetching partition found empty this long yields */
#define KAFKA_MSG_OVERHEAD         300   /* librdkafka's bytes per queued message beyond its own */
#define KAFKA_POLL_CAP             5000  /* consumer queue events per loop turn */
#define KAFKA_CHUNK                256   /* messages taken from a partition queue at once */
#define KAFKA_SETTLE_MS            30000 /* settling ends at the first assignment or after this */
#define KAFKA_COMMIT_RETRY_MS      1000
#define KAFKA_BLOCK_TIMEOUT_MS     10000 /* committed offsets, offsets_for_times, commit on revoke */
#define KAFKA_CLOSE_TIMEOUT_MS     10000 /* final commit + leaving the group */
#define KAFKA_LOG_EVERY_MS         10000 /* the same librdkafka error is logged at most this often */
#define KAFKA_SECFAIL_LOG_EVERY_MS 60000 /* the same kind of authentication/TLS/ACL failure */
#define KAFKA_SECRET_MAX           (256 * 1024)
#define KAFKA_TOPICS_MAX           64
#define KAFKA_SERVERS_MAX          100
#define KAFKA_SAC_MAX              22

/* Record meta: [flags u8][tstype u8][timestamp i64][key_len u32][key][n_headers u32]
 * then per header [name_len u32][name][value_len u32 or KAFKA_M_NULLHDR][value]. */
#define KAFKA_REVOKE_KEY UINT32_MAX /* the revoke queue's key on the pipe; never a partition's */

#define KAFKA_M_KEY     0x1u /* the key is not null */
#define KAFKA_M_NULLVAL 0x2u /* the value is null (a tombstone) */
#define KAFKA_M_NULLHDR UINT32_MAX
#define KAFKA_M_FIXED   (1 + 1 + 8 + 4)

struct kafka_ctx;

/* The source's state of one topic-partition (part->src). */
struct kafka_part {
    struct kafka_ctx *ctx;
    struct sl_part *part;
    char *topic;
    int32_t partition;
    bool revoked;
    bool waiting;       /* the last fetch returned 0: part_wake is owed */
    int64_t waiting_ms; /* since when (monotonic), or since the last kick */
    int64_t slot_ms;    /* when it last got a fetch slot, or was paused (see "About memory") */
    bool maybe_stalled; /* the queue last seen held enough to stop librdkafka's fetching */
    bool paused;        /* librdkafka does not fetch it: it waits for a slot (see "About memory") */
    uint32_t key;       /* written to the pipe when q becomes non-empty; never 0 */
    rd_kafka_queue_t *q; /* the partition's own queue, or NULL (see "About fetching") */
    /* the stash: messages taken from q (or the consumer queue) not yet fetched, a ring */
    rd_kafka_message_t **stage;
    size_t st_head, st_n, st_cap;
    int64_t acked;       /* next offset to commit (last acknowledged + 1), or -1 */
    int64_t committed;   /* known committed offset, or -1 */
    int64_t start;       /* where reading started (committed, resolved or logical), or -1 */
    int64_t start_by_ms; /* the resolved start's commit is awaited (settling) until then, or 0 */
    int64_t expect;      /* the offset expected next, for gap detection, or -1 */
    int64_t first;       /* the offset of the first message received, or -1 */
    int64_t assigned_ms; /* when it was assigned (monotonic) */
    bool answered;       /* a fetch answer from the broker gave its high watermark */
    bool dirty;          /* acked moved past what was committed or is being committed */
    char *open;          /* {"eventSource":...,"records":{"<topic>-<p>":[ */
    char *rec_head;      /* {"topic":"<topic>","partition":<p>,"offset": */
    size_t open_len, rec_head_len;
};

/* A revoke whose commit is in flight: the partitions are revoked from the mapping, not yet given
 * up to librdkafka (see "About rebalances"). offsets is NULL when none is. */
struct kafka_revoking {
    rd_kafka_topic_partition_list_t *offsets; /* the acknowledged offsets being committed */
    int64_t *committed; /* per element of offsets: the committed offset known before, or -1 */
    uint64_t seq;       /* the commit's opaque, which tells a late answer to an older one apart */
    int64_t started_ms, deadline_ms;
};

/* A rebalance delivered while a commit on revoke was in flight, handled after it (in order). */
struct kafka_deferred {
    struct kafka_deferred *next;
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_t *parts; /* a copy */
};

struct kafka_logged {
    int err;
    int64_t at_ms;
    unsigned suppressed;
};

struct kafka_ctx {
    /* options (kafka_opts) */
    struct sl_strlist topics;
    cJSON *self_managed;         /* SelfManagedEventSource */
    cJSON *smk_config;           /* SelfManagedKafkaEventSourceConfig */
    cJSON *msk_config;           /* AmazonManagedKafkaEventSourceConfig */
    cJSON *sac;                  /* SourceAccessConfigurations */
    struct sl_strlist bootstrap; /* bootstrap_servers (MSK) */
    struct sl_strmap rdkafka;

    struct sl_source_env env;
    bool msk;
    char *servers; /* "h1:p,h2:p" */
    char *group_id;
    rd_kafka_conf_t *conf; /* built by init, consumed by start */
    rd_kafka_t *rk;
    rd_kafka_queue_t *cq; /* the consumer queue */
    rd_kafka_queue_t *rq; /* the results of commits on revoke (see "About rebalances") */
    struct kafka_io *io;
    uv_timer_t *timer;
    uv_idle_t *more;
    bool stopped;
    bool commit_inflight;
    bool assigned_once; /* the first assignment arrived (settling ends) */
    int64_t started_ms; /* when start() ran, or 0 */
    uint32_t next_key;  /* the last partition key handed out */
    int64_t commit_retry_at_ms;
    struct kafka_part **parts;
    size_t n_parts, cap_parts;
    struct kafka_part *last_hit;
    struct kafka_lookup *lookups; /* start-offset lookups in flight (newest first) */
    uint64_t assign_gen;          /* bumped by every assignment and revoke */
    /* offsets acknowledged for partitions released after stop(), committed in fini */
    rd_kafka_topic_partition_list_t *final;
    /* acknowledged offsets of revoked partitions whose commit failed (see "About rebalances") */
    rd_kafka_topic_partition_list_t *leftover;
    struct kafka_revoking revoking;  /* the commit on revoke in flight, if any */
    uint64_t revoke_seq;             /* the last commit on revoke sent */
    struct kafka_deferred *deferred; /* rebalances that came meanwhile, oldest first */
    struct kafka_logged logged[8];
    uint64_t stall_msgs;   /* queued.min.messages */
    uint64_t stall_bytes;  /* queued.max.messages.kbytes, in bytes */
    uint64_t avg_len;      /* the average message size seen (value + key), for the slots */
    size_t rr;             /* where the next slot's search for a paused partition starts */
    int64_t secfail_at_ms; /* the last authentication/TLS/ACL failure, or 0 */
};

/* The uv_poll on the pipe's read end; freed by its close callback with both descriptors. */
struct kafka_io {
    uv_poll_t poll;
    int rfd, wfd;
};

/* Where the partitions of one assignment start (see "About where reading starts"). The worker
 * (kafka_lookup_work, on libuv's thread pool) reads and writes only rk, parts, res, the two
 * errors and, under mu, done; everything else, ctx included, belongs to the loop thread. Freed
 * by its completion callback (kafka_lookup_done), which always runs on the loop. */
struct kafka_lookup {
    uv_work_t req;
    struct kafka_ctx *ctx; /* NULL once fini orphaned it: the completion only frees it */
    struct kafka_lookup *next;
    uint64_t gen; /* ctx->assign_gen when it started; stale when they differ */
    int64_t started_ms;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts; /* a copy of the assignment; the offsets found */
    /* Those without a committed offset, and where StartingPosition puts them (ListOffsets);
     * after kafka_start_offsets, only those that start there (the others' offset is
     * RD_KAFKA_OFFSET_INVALID): their start is committed at once. */
    rd_kafka_topic_partition_list_t *res;
    int starting_position;
    int64_t ts_ms;
    rd_kafka_resp_err_t err;     /* of rd_kafka_committed */
    rd_kafka_resp_err_t res_err; /* of rd_kafka_offsets_for_times */
    uv_mutex_t mu;
    uv_cond_t cv;
    bool done; /* the worker returned (under mu) */
};

static const struct sl_opt kafka_opts[] = {
    {"Topics", SL_OPT_STRLIST, NULL, 1, KAFKA_TOPICS_MAX, offsetof(struct kafka_ctx, topics),
     SL_OPT_REQUIRED, NULL,
     "The topic to consume (AWS allows exactly one; several are accepted as an extension)."},
    {"SelfManagedEventSource", SL_OPT_JSON, NULL, 1, 0, offsetof(struct kafka_ctx, self_managed), 0,
     NULL,
     "Self-managed Kafka: {\"Endpoints\":{\"KAFKA_BOOTSTRAP_SERVERS\":[\"host:port\", ...]}} "
     "(1 to 10 servers)."},
    {"SelfManagedKafkaEventSourceConfig", SL_OPT_JSON, NULL, 1, 0,
     offsetof(struct kafka_ctx, smk_config), 0, NULL,
     "{\"ConsumerGroupId\":\"...\"} (1 to 200 characters); the default group is the mapping's "
     "UUID."},
    {"AmazonManagedKafkaEventSourceConfig", SL_OPT_JSON, NULL, 1, 0,
     offsetof(struct kafka_ctx, msk_config), 0, NULL,
     "MSK: {\"ConsumerGroupId\":\"...\"}; the default group is the mapping's UUID."},
    {"SourceAccessConfigurations", SL_OPT_JSON, NULL, 1, 0, offsetof(struct kafka_ctx, sac), 0,
     NULL,
     "Authentication: a list of {\"Type\",\"URI\"}: BASIC_AUTH (SASL/PLAIN), "
     "SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH, CLIENT_CERTIFICATE_TLS_AUTH, "
     "SERVER_ROOT_CA_CERTIFICATE; URI file:///path or env://NAME holding the secret's JSON "
     "(username/password, or certificate/privateKey/privateKeyPassword), or a PEM file for the "
     "root CA."},
    {"bootstrap_servers", SL_OPT_STRLIST, NULL, 1, KAFKA_SERVERS_MAX,
     offsetof(struct kafka_ctx, bootstrap), 0, NULL,
     "Bootstrap servers (host:port) of the MSK cluster an arn:aws:kafka: EventSourceArn names."},
    {"rdkafka", SL_OPT_STRMAP, NULL, 1, 0, offsetof(struct kafka_ctx, rdkafka), 0, NULL,
     "librdkafka consumer properties, passed to rd_kafka_conf_set after sluice's own (e.g. "
     "{\"session.timeout.ms\":\"6000\"}); group.id, bootstrap.servers, auto.offset.reset and "
     "the commit settings are sluice's."},
    {0},
};

/* ---- small helpers ---- */

static void kafka_put_u32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

static uint32_t kafka_get_u32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static bool kafka_is_secret_key(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, ".pem") ||
           strstr(key, "sasl.oauthbearer.config") || strstr(key, "ssl.key");
}

/* Logs a librdkafka error at most once per every_ms per error code (or other key). */
static void kafka_vlog_limited(struct kafka_ctx *ctx,
                               enum sl_log_level level,
                               int err,
                               int64_t every_ms,
                               const char *fmt,
                               va_list ap) SL_PRINTF(5, 0);

static void
kafka_log_limited(struct kafka_ctx *ctx, enum sl_log_level level, int err, const char *fmt, ...)
    SL_PRINTF(4, 5);

static void kafka_log_every(
    struct kafka_ctx *ctx, enum sl_log_level level, int err, int64_t every_ms, const char *fmt, ...)
    SL_PRINTF(5, 6);

static void kafka_log_every(
    struct kafka_ctx *ctx, enum sl_log_level level, int err, int64_t every_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kafka_vlog_limited(ctx, level, err, every_ms, fmt, ap);
    va_end(ap);
}

/* kafka_vlog_limited every KAFKA_LOG_EVERY_MS. */
static void
kafka_log_limited(struct kafka_ctx *ctx, enum sl_log_level level, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kafka_vlog_limited(ctx, level, err, KAFKA_LOG_EVERY_MS, fmt, ap);
    va_end(ap);
}

static void kafka_vlog_limited(struct kafka_ctx *ctx,
                               enum sl_log_level level,
                               int err,
                               int64_t every_ms,
                               const char *fmt,
                               va_list ap)
{
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    struct kafka_logged *slot = NULL;
    for (size_t i = 0; i < SL_ARRAY_LEN(ctx->logged); i++) {
        if (ctx->logged[i].err == err && ctx->logged[i].at_ms != 0) {
            slot = &ctx->logged[i];
            break;
        }
    }
    if (!slot) {
        slot = &ctx->logged[0];
        for (size_t i = 1; i < SL_ARRAY_LEN(ctx->logged); i++) {
            if (ctx->logged[i].at_ms < slot->at_ms) {
                slot = &ctx->logged[i];
            }
        }
        slot->err = err;
        slot->at_ms = 0;
        slot->suppressed = 0;
    }
    if (slot->at_ms != 0 && now - slot->at_ms < every_ms) {
        slot->suppressed++;
        return;
    }
    if (!sl_log_enabled(level)) {
        return;
    }
    char msg[768];
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    if (slot->suppressed) {
        sl_log_write(level, KAFKA_COMP, ctx->env.inst, "%s (%u more like it since the last)", msg,
                     slot->suppressed);
    } else {
        sl_log_write(level, KAFKA_COMP, ctx->env.inst, "%s", msg);
    }
    slot->at_ms = now ? now : 1;
    slot->suppressed = 0;
}

/* ---- validation (check) ---- */

static bool kafka_valid_server(const char *s)
{
    size_t len = strlen(s);
    const char *colon = strrchr(s, ':');
    if (len == 0 || len > 300 || !colon || colon == s || colon[1] == '\0') {
        return false;
    }
    if (s[0] == '[' && colon[-1] != ']') {
        return false;
    }
    for (const char *p = s; p < colon; p++) {
        if (*p == ',' || *p == ' ' || *p == '/' || (unsigned char)*p < 0x21) {
            return false;
        }
    }
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    return errno == 0 && *end == '\0' && colon[1] != '-' && colon[1] != '+' && port >= 1 &&
           port <= 65535;
}

static bool kafka_valid_topic(const char *t)
{
    size_t len = strlen(t);
    if (len == 0 || len > 249 || t[0] == '.') {
        return false;
    }
    for (const char *p = t; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

static bool kafka_valid_group(const char *g)
{
    size_t len = strlen(g);
    if (len == 0 || len > 200) {
        return false;
    }
    for (const char *p = g; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-/*:_+=.@", c))) {
            return false;
        }
    }
    return true;
}

/* Checks that obj has only the members in allowed ("A|B"). Returns the first other, or NULL. */
static const char *kafka_unknown_member(const cJSON *obj, const char *allowed)
{
    for (const cJSON *c = obj->child; c; c = c->next) {
        size_t n = strlen(c->string);
        const char *p = allowed;
        bool found = false;
        while (*p && !found) {
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);
            found = len == n && strncmp(p, c->string, n) == 0;
            p = bar ? bar + 1 : p + len;
        }
        if (!found) {
            return c->string;
        }
    }
    return NULL;
}

/* Validates SelfManagedEventSource; on success points *ret_servers at the array. */
static int kafka_check_sme(const cJSON *sme, const cJSON **ret_servers, char *errbuf, size_t errlen)
{
    static const char *allowed =
        "allowed: {\"Endpoints\":{\"KAFKA_BOOTSTRAP_SERVERS\":[\"host:port\", ...]}} with 1 to 10 "
        "servers";
    const char *bad;
    if (!cJSON_IsObject(sme)) {
        (void)snprintf(errbuf, errlen, "SelfManagedEventSource: not an object; %s", allowed);
        return SL_ECONFIG;
    }
    if ((bad = kafka_unknown_member(sme, "Endpoints"))) {
        (void)snprintf(errbuf, errlen, "SelfManagedEventSource.%s: unknown key; %s", bad, allowed);
        return SL_ECONFIG;
    }
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(sme, "Endpoints");
    if (!cJSON_IsObject(ep)) {
        (void)snprintf(errbuf, errlen,
                       "SelfManagedEventSource.Endpoints: missing or not an "
                       "object; %s",
                       allowed);
        return SL_ECONFIG;
    }
    if ((bad = kafka_unknown_member(ep, "KAFKA_BOOTSTRAP_SERVERS"))) {
        (void)snprintf(errbuf, errlen, "SelfManagedEventSource.Endpoints.%s: unknown key; %s", bad,
                       allowed);
        return SL_ECONFIG;
    }
    const cJSON *servers = cJSON_GetObjectItemCaseSensitive(ep, "KAFKA_BOOTSTRAP_SERVERS");
    int n = cJSON_GetArraySize(servers);
    if (!cJSON_IsArray(servers) || n < 1 || n > 10) {
        (void)snprintf(
            errbuf, errlen, "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS: %s; %s",
            cJSON_IsArray(servers) ? "needs 1 to 10 servers" : "missing or not a list", allowed);
        return SL_ECONFIG;
    }
    int i = 0;
    for (const cJSON *s = servers->child; s; s = s->next, i++) {
        if (!cJSON_IsString(s) || !kafka_valid_server(s->valuestring)) {
            (void)snprintf(errbuf, errlen,
                           "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS[%d]: %s%s%s "
                           "is not host:port; allowed: a host name or address and a port 1 to "
                           "65535, such as \"broker1:9092\"",
                           i, cJSON_IsString(s) ? "\"" : "",
                           cJSON_IsString(s) ? s->valuestring : "a non-string",
                           cJSON_IsString(s) ? "\"" : "");
            return SL_ECONFIG;
        }
    }
    *ret_servers = servers;
    return 0;
}

static int kafka_check_group_config(
    const cJSON *c, const char *key, const char **ret_group, char *errbuf, size_t errlen)
{
    const char *bad;
    if (!cJSON_IsObject(c)) {
        (void)snprintf(errbuf, errlen,
                       "%s: not an object; allowed: {\"ConsumerGroupId\":\"my-group\"}", key);
        return SL_ECONFIG;
    }
    if ((bad = kafka_unknown_member(c, "ConsumerGroupId|SchemaRegistryConfig"))) {
        (void)snprintf(errbuf, errlen, "%s.%s: unknown key; allowed: ConsumerGroupId", key, bad);
        return SL_ECONFIG;
    }
    if (cJSON_GetObjectItemCaseSensitive(c, "SchemaRegistryConfig")) {
        (void)snprintf(errbuf, errlen,
                       "%s.SchemaRegistryConfig: schema registries are not supported; allowed: "
                       "ConsumerGroupId only (the function receives the raw bytes)",
                       key);
        return SL_ECONFIG;
    }
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(c, "ConsumerGroupId");
    if (!g) {
        return 0;
    }
    if (!cJSON_IsString(g) || !kafka_valid_group(g->valuestring)) {
        (void)snprintf(errbuf, errlen,
                       "%s.ConsumerGroupId: %s%.64s%s is not a group id; allowed: 1 to 200 "
                       "characters of a-z A-Z 0-9 and -/*:_+=.@",
                       key, cJSON_IsString(g) ? "\"" : "",
                       cJSON_IsString(g) ? g->valuestring : "a non-string",
                       cJSON_IsString(g) ? "\"" : "");
        return SL_ECONFIG;
    }
    *ret_group = g->valuestring;
    return 0;
}

enum kafka_sac_type {
    KAFKA_SAC_BASIC,
    KAFKA_SAC_SCRAM256,
    KAFKA_SAC_SCRAM512,
    KAFKA_SAC_CLIENT_CERT,
    KAFKA_SAC_ROOT_CA,
    KAFKA_SAC_VPC_SUBNET,
    KAFKA_SAC_VPC_SG,
    KAFKA_SAC_COUNT
};

static const char *const kafka_sac_names[KAFKA_SAC_COUNT] = {
    "BASIC_AUTH",
    "SASL_SCRAM_256_AUTH",
    "SASL_SCRAM_512_AUTH",
    "CLIENT_CERTIFICATE_TLS_AUTH",
    "SERVER_ROOT_CA_CERTIFICATE",
    "VPC_SUBNET",
    "VPC_SECURITY_GROUP",
};

static int kafka_sac_type(const char *s)
{
    for (int i = 0; i < KAFKA_SAC_COUNT; i++) {
        if (strcmp(s, kafka_sac_names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

static bool kafka_sac_is_secret(int type)
{
    return type <= KAFKA_SAC_ROOT_CA;
}

/* Validates SourceAccessConfigurations: shapes, types, URIs, at most one SASL method. */
static int kafka_check_sac(const cJSON *sac, char *errbuf, size_t errlen)
{
    static const char *types = "BASIC_AUTH, SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH, "
                               "CLIENT_CERTIFICATE_TLS_AUTH, SERVER_ROOT_CA_CERTIFICATE, "
                               "VPC_SUBNET, VPC_SECURITY_GROUP";
    int n = cJSON_GetArraySize(sac);
    if (!cJSON_IsArray(sac) || n > KAFKA_SAC_MAX) {
        (void)snprintf(errbuf, errlen,
                       "SourceAccessConfigurations: %s; allowed: a list of 0 to 22 "
                       "{\"Type\":\"...\",\"URI\":\"...\"}",
                       cJSON_IsArray(sac) ? "too many entries" : "not a list");
        return SL_ECONFIG;
    }
    int i = 0;
    int sasl = -1;
    bool seen[KAFKA_SAC_COUNT] = {false};
    for (const cJSON *e = sac->child; e; e = e->next, i++) {
        const char *bad;
        if (!cJSON_IsObject(e)) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d]: not an object; allowed: "
                           "{\"Type\":\"BASIC_AUTH\",\"URI\":\"file:///etc/sluice/kafka.json\"}",
                           i);
            return SL_ECONFIG;
        }
        if ((bad = kafka_unknown_member(e, "Type|URI"))) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d].%s: unknown key; allowed: Type, URI", i,
                           bad);
            return SL_ECONFIG;
        }
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "Type");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(e, "URI");
        int type = cJSON_IsString(t) ? kafka_sac_type(t->valuestring) : -1;
        if (type < 0) {
            bool vh = cJSON_IsString(t) && strcmp(t->valuestring, "VIRTUAL_HOST") == 0;
            (void)snprintf(
                errbuf, errlen,
                "SourceAccessConfigurations[%d].Type: %s%.40s%s%s; "
                "allowed: %s",
                i, cJSON_IsString(t) ? "\"" : "", cJSON_IsString(t) ? t->valuestring : "missing",
                cJSON_IsString(t) ? "\"" : "", vh ? " is for RabbitMQ, not Kafka" : "", types);
            return SL_ECONFIG;
        }
        if (!cJSON_IsString(u) || !u->valuestring[0]) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d].URI: missing or not a string; "
                           "allowed: file:///path/to/secret.json or env://NAME",
                           i);
            return SL_ECONFIG;
        }
        if (seen[type]) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d]: %s appears twice; allowed: each type "
                           "once",
                           i, kafka_sac_names[type]);
            return SL_ECONFIG;
        }
        seen[type] = true;
        if (type <= KAFKA_SAC_SCRAM512) {
            if (sasl >= 0) {
                (void)snprintf(errbuf, errlen,
                               "SourceAccessConfigurations[%d]: %s and %s both set; allowed: one "
                               "of BASIC_AUTH, SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH",
                               i, kafka_sac_names[sasl], kafka_sac_names[type]);
                return SL_ECONFIG;
            }
            sasl = type;
        }
        if (!kafka_sac_is_secret(type)) {
            continue;
        }
        const char *uri = u->valuestring;
        if (strncmp(uri, "arn:", 4) == 0) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d].URI: Secrets Manager ARNs cannot be "
                           "read here; allowed: file:///path/to/secret.json or env://NAME holding "
                           "the secret's JSON",
                           i);
            return SL_ECONFIG;
        }
        if (!(strncmp(uri, "file:///", 8) == 0 && uri[8]) &&
            !(strncmp(uri, "env://", 6) == 0 && uri[6])) {
            (void)snprintf(errbuf, errlen,
                           "SourceAccessConfigurations[%d].URI: \"%.80s\" is not a secret "
                           "location; allowed: file:///path/to/secret.json or env://NAME",
                           i, uri);
            return SL_ECONFIG;
        }
    }
    if (seen[KAFKA_SAC_CLIENT_CERT] && sasl >= 0) {
        (void)snprintf(errbuf, errlen,
                       "SourceAccessConfigurations: CLIENT_CERTIFICATE_TLS_AUTH and %s both set; "
                       "allowed: one authentication method",
                       kafka_sac_names[sasl]);
        return SL_ECONFIG;
    }
    return 0;
}

/* Properties sluice sets itself: the AWS key to use instead, for the error. */
static const char *kafka_reserved_prop(const char *key)
{
    static const char *const keys[][2] = {
        {"group.id", "SelfManagedKafkaEventSourceConfig.ConsumerGroupId"},
        {"bootstrap.servers", "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS"},
        {"metadata.broker.list", "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS"},
        {"enable.auto.commit", "nothing: sluice commits after success"},
        {"enable.auto.offset.store", "nothing: sluice commits after success"},
        {"auto.offset.reset", "StartingPosition"},
        {"enable.partition.eof", "nothing"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(keys); i++) {
        if (strcmp(key, keys[i][0]) == 0) {
            return keys[i][1];
        }
    }
    return NULL;
}

/* Sets one property; on failure fills errbuf with librdkafka's text (the value is shown only
 * when it is not a secret). */
static int kafka_set(rd_kafka_conf_t *conf,
                     const char *what,
                     const char *key,
                     const char *value,
                     bool secret,
                     char *errbuf,
                     size_t errlen)
{
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof(err)) == RD_KAFKA_CONF_OK) {
        return 0;
    }
    if (secret || kafka_is_secret_key(key)) {
        (void)snprintf(errbuf, errlen, "%s: librdkafka rejects the value of %s", what, key);
    } else {
        (void)snprintf(errbuf, errlen, "%s: %s", what, err);
    }
    return SL_ECONFIG;
}

/* Where connection settings go: the consumer's configuration (init), or the key/value pairs
 * client_props hands to another client of the cluster. Exactly one is set. */
struct kafka_dst {
    rd_kafka_conf_t *conf;
    struct sl_strmap *props;
};

/* kafka_set for either destination; the pairs were already accepted by librdkafka at init. */
static int kafka_dst_set(const struct kafka_dst *d,
                         const char *what,
                         const char *key,
                         const char *value,
                         bool secret,
                         char *errbuf,
                         size_t errlen)
{
    if (d->conf) {
        return kafka_set(d->conf, what, key, value, secret, errbuf, errlen);
    }
    return sl_strmap_put(d->props, key, value);
}

/* True for the pass-through properties that say how to connect to the cluster (security),
 * which another client of it needs as well: security.protocol, sasl.*, ssl.*, ssl_*,
 * enable.ssl.* and enable.sasl.*. */
static bool kafka_is_security_prop(const char *key)
{
    static const char *const prefixes[] = {"security.protocol", "sasl.",       "ssl.", "ssl_",
                                           "enable.ssl.",       "enable.sasl."};
    for (size_t i = 0; i < SL_ARRAY_LEN(prefixes); i++) {
        if (strncmp(key, prefixes[i], strlen(prefixes[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* Applies the rdkafka pass-through onto conf. */
static int kafka_apply_passthrough(const struct kafka_ctx *ctx,
                                   rd_kafka_conf_t *conf,
                                   char *errbuf,
                                   size_t errlen)
{
    for (size_t i = 0; i < ctx->rdkafka.n; i++) {
        const char *key = ctx->rdkafka.keys[i];
        const char *value = ctx->rdkafka.values[i];
        const char *instead = kafka_reserved_prop(key);
        char what[160];
        if (instead) {
            (void)snprintf(errbuf, errlen,
                           "rdkafka.%s: set by sluice; allowed: any other librdkafka consumer "
                           "property (use %s)",
                           key, instead);
            return SL_ECONFIG;
        }
        if (strcmp(key, "partition.assignment.strategy") == 0 && strstr(value, "cooperative")) {
            (void)snprintf(errbuf, errlen,
                           "rdkafka.partition.assignment.strategy: \"%s\" is not supported; "
                           "allowed: range, roundrobin (eager assignors)",
                           value);
            return SL_ECONFIG;
        }
        (void)snprintf(what, sizeof(what), "rdkafka.%s", key);
        int r = kafka_set(conf, what, key, value, false, errbuf, errlen);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}

static int kafka_check(void *vctx, const char *arn, char *errbuf, size_t errlen)
{
    struct kafka_ctx *ctx = vctx;
    bool msk = arn && strncmp(arn, KAFKA_MSK_PREFIX, strlen(KAFKA_MSK_PREFIX)) == 0;
    bool smk = arn && strncmp(arn, KAFKA_SCHEME, KAFKA_SCHEME_LEN) == 0;
    if (!msk && !smk) {
        (void)snprintf(errbuf, errlen,
                       "\"%s\" is not a Kafka source; allowed: an arn:aws:kafka: cluster ARN with "
                       "bootstrap_servers, or SelfManagedEventSource.Endpoints."
                       "KAFKA_BOOTSTRAP_SERVERS without EventSourceArn",
                       arn ? arn : "");
        return SL_ECONFIG;
    }
    if (msk && !strstr(arn, ":cluster/")) {
        (void)snprintf(errbuf, errlen,
                       "\"%s\" is not an MSK cluster ARN; allowed: "
                       "arn:aws:kafka:REGION:ACCOUNT:cluster/NAME/UUID",
                       arn);
        return SL_ECONFIG;
    }
    const cJSON *servers = NULL;
    int r;
    if (ctx->self_managed) {
        if (msk) {
            (void)snprintf(errbuf, errlen,
                           "SelfManagedEventSource: not allowed with an MSK EventSourceArn; "
                           "allowed: bootstrap_servers for MSK, or SelfManagedEventSource "
                           "without EventSourceArn");
            return SL_ECONFIG;
        }
        if ((r = kafka_check_sme(ctx->self_managed, &servers, errbuf, errlen)) < 0) {
            return r;
        }
    }
    if (smk && !servers) {
        /* kafka://h:p,h:p written directly (our extension) */
        const char *p = arn + KAFKA_SCHEME_LEN;
        if (!*p) {
            (void)snprintf(errbuf, errlen,
                           "no bootstrap servers; allowed: SelfManagedEventSource.Endpoints."
                           "KAFKA_BOOTSTRAP_SERVERS with 1 to 10 host:port");
            return SL_ECONFIG;
        }
        char one[320];
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            if (len >= sizeof(one)) {
                len = sizeof(one) - 1;
            }
            memcpy(one, p, len);
            one[len] = '\0';
            if (!kafka_valid_server(one)) {
                (void)snprintf(errbuf, errlen,
                               "EventSourceArn: \"%s\" is not host:port; allowed: kafka://host:"
                               "port[,host:port...]",
                               one);
                return SL_ECONFIG;
            }
            p += len + (comma ? 1 : 0);
        }
    }
    if (smk && ctx->bootstrap.n) {
        (void)snprintf(errbuf, errlen,
                       "bootstrap_servers: only for an MSK EventSourceArn; allowed: "
                       "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS for "
                       "self-managed Kafka");
        return SL_ECONFIG;
    }
    if (msk && !ctx->bootstrap.n) {
        (void)snprintf(errbuf, errlen,
                       "bootstrap_servers: missing; an MSK EventSourceArn needs the cluster's "
                       "bootstrap servers (sluice does not call the MSK API); allowed: a list of "
                       "host:port, such as [\"b-1.c.kafka.us-east-1.amazonaws.com:9092\"]");
        return SL_ECONFIG;
    }
    for (size_t i = 0; i < ctx->bootstrap.n; i++) {
        if (!kafka_valid_server(ctx->bootstrap.items[i])) {
            (void)snprintf(errbuf, errlen,
                           "bootstrap_servers[%zu]: \"%.80s\" is not host:port; allowed: a host "
                           "and a port 1 to 65535",
                           i, ctx->bootstrap.items[i]);
            return SL_ECONFIG;
        }
    }
    for (size_t i = 0; i < ctx->topics.n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ctx->topics.items[i], ctx->topics.items[j]) == 0) {
                (void)snprintf(errbuf, errlen, "Topics[%zu]: \"%s\" is listed twice", i,
                               ctx->topics.items[i]);
                return SL_ECONFIG;
            }
        }
        if (!kafka_valid_topic(ctx->topics.items[i])) {
            (void)snprintf(errbuf, errlen,
                           "Topics[%zu]: \"%.80s\" is not a topic name; allowed: 1 to 249 "
                           "characters of a-z A-Z 0-9 . _ -, not starting with '.'",
                           i, ctx->topics.items[i]);
            return SL_ECONFIG;
        }
    }
    const char *group = NULL;
    if (ctx->smk_config && msk) {
        (void)snprintf(errbuf, errlen,
                       "SelfManagedKafkaEventSourceConfig: not allowed with an MSK "
                       "EventSourceArn; allowed: AmazonManagedKafkaEventSourceConfig");
        return SL_ECONFIG;
    }
    if (ctx->msk_config && smk) {
        (void)snprintf(errbuf, errlen,
                       "AmazonManagedKafkaEventSourceConfig: only for an MSK EventSourceArn; "
                       "allowed: SelfManagedKafkaEventSourceConfig");
        return SL_ECONFIG;
    }
    if (ctx->smk_config &&
        (r = kafka_check_group_config(ctx->smk_config, "SelfManagedKafkaEventSourceConfig", &group,
                                      errbuf, errlen)) < 0) {
        return r;
    }
    if (ctx->msk_config &&
        (r = kafka_check_group_config(ctx->msk_config, "AmazonManagedKafkaEventSourceConfig",
                                      &group, errbuf, errlen)) < 0) {
        return r;
    }
    if (ctx->sac && (r = kafka_check_sac(ctx->sac, errbuf, errlen)) < 0) {
        return r;
    }
    /* rd_kafka_conf_set is pure: librdkafka's own checks run here, before anything starts. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        return SL_ENOMEM;
    }
    r = kafka_apply_passthrough(ctx, conf, errbuf, errlen);
    rd_kafka_conf_destroy(conf);
    return r;
}

/* ---- secrets and the configuration ---- */

/* Reads the secret a URI names (file:///path or env://NAME) into an owned string. Never logs or
 * returns its content in errors. */
static int
kafka_read_secret(const char *uri, const char *what, char **ret, char *errbuf, size_t errlen)
{
    if (strncmp(uri, "env://", 6) == 0) {
        const char *v = getenv(uri + 6);
        if (!v) {
            (void)snprintf(errbuf, errlen, "%s: environment variable %s is not set", what, uri + 6);
            return SL_ECONFIG;
        }
        *ret = sl_strdup(v);
        return *ret ? 0 : SL_ENOMEM;
    }
    const char *path = uri + 7; /* file:// + /abs */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        (void)snprintf(errbuf, errlen, "%s: cannot open %s: %s", what, path, strerror(errno));
        return SL_ECONFIG;
    }
    char *buf = sl_malloc(KAFKA_SECRET_MAX + 1);
    if (!buf) {
        (void)close(fd);
        return SL_ENOMEM;
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, KAFKA_SECRET_MAX + 1 - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            (void)snprintf(errbuf, errlen, "%s: cannot read %s: %s", what, path, strerror(errno));
            (void)close(fd);
            sl_free(buf);
            return SL_ECONFIG;
        }
        if (n == 0 || (got += (size_t)n) > KAFKA_SECRET_MAX) {
            break;
        }
    }
    (void)close(fd);
    if (got > KAFKA_SECRET_MAX) {
        (void)snprintf(errbuf, errlen, "%s: %s is larger than 256 KiB", what, path);
        sl_free(buf);
        return SL_ECONFIG;
    }
    buf[got] = '\0';
    *ret = buf;
    return 0;
}

static void kafka_wipe_free(char *s)
{
    if (s) {
        volatile char *p = s;
        while (*p) {
            *p++ = '\0';
        }
        sl_free(s);
    }
}

/* Gets string member key of a secret's JSON, or NULL. */
static const char *kafka_secret_str(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* Applies one SourceAccessConfiguration (with its secret read) to conf. */
static int kafka_apply_sac_entry(const struct kafka_dst *conf,
                                 int type,
                                 const char *uri,
                                 size_t idx,
                                 char *errbuf,
                                 size_t errlen)
{
    char what[96];
    (void)snprintf(what, sizeof(what), "SourceAccessConfigurations[%zu] (%s)", idx,
                   kafka_sac_names[type]);
    char *text = NULL;
    int r = kafka_read_secret(uri, what, &text, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    cJSON *j = text[0] == '{' || text[0] == ' ' || text[0] == '\n' ? cJSON_Parse(text) : NULL;
    if (type == KAFKA_SAC_ROOT_CA) {
        const char *pem = j ? kafka_secret_str(j, "certificate") : text;
        if (!pem || !strstr(pem, "-----BEGIN")) {
            (void)snprintf(errbuf, errlen,
                           "%s: no PEM certificate; allowed: a PEM file, or JSON "
                           "{\"certificate\":\"-----BEGIN CERTIFICATE-----...\"}",
                           what);
            r = SL_ECONFIG;
        } else {
            r = kafka_dst_set(conf, what, "ssl.ca.pem", pem, true, errbuf, errlen);
        }
    } else if (!cJSON_IsObject(j)) {
        (void)snprintf(errbuf, errlen, "%s: the secret is not a JSON object; allowed: %s", what,
                       type == KAFKA_SAC_CLIENT_CERT
                           ? "{\"certificate\":\"PEM\",\"privateKey\":\"PEM\","
                             "\"privateKeyPassword\":\"...\"}"
                           : "{\"username\":\"...\",\"password\":\"...\"}");
        r = SL_ECONFIG;
    } else if (type == KAFKA_SAC_CLIENT_CERT) {
        const char *cert = kafka_secret_str(j, "certificate");
        const char *key = kafka_secret_str(j, "privateKey");
        const char *pass = kafka_secret_str(j, "privateKeyPassword");
        if (!cert || !key) {
            (void)snprintf(errbuf, errlen,
                           "%s: the secret needs certificate and privateKey (PEM), and "
                           "privateKeyPassword if the key is encrypted",
                           what);
            r = SL_ECONFIG;
        } else {
            r = kafka_dst_set(conf, what, "ssl.certificate.pem", cert, true, errbuf, errlen);
            r = r < 0 ? r : kafka_dst_set(conf, what, "ssl.key.pem", key, true, errbuf, errlen);
            if (r == 0 && pass) {
                r = kafka_dst_set(conf, what, "ssl.key.password", pass, true, errbuf, errlen);
            }
        }
    } else {
        const char *user = kafka_secret_str(j, "username");
        const char *pass = kafka_secret_str(j, "password");
        const char *mech = type == KAFKA_SAC_BASIC      ? "PLAIN"
                           : type == KAFKA_SAC_SCRAM256 ? "SCRAM-SHA-256"
                                                        : "SCRAM-SHA-512";
        if (!user || !pass) {
            (void)snprintf(errbuf, errlen, "%s: the secret needs username and password", what);
            r = SL_ECONFIG;
        } else {
            r = kafka_dst_set(conf, what, "sasl.mechanisms", mech, false, errbuf, errlen);
            r = r < 0 ? r : kafka_dst_set(conf, what, "sasl.username", user, true, errbuf, errlen);
            r = r < 0 ? r : kafka_dst_set(conf, what, "sasl.password", pass, true, errbuf, errlen);
        }
    }
    if (j) {
        /* wipe the parsed copies of the secret too */
        for (cJSON *c = j->child; c; c = c->next) {
            if (cJSON_IsString(c)) {
                volatile char *p = c->valuestring;
                while (*p) {
                    *p++ = '\0';
                }
            }
        }
        cJSON_Delete(j);
    }
    kafka_wipe_free(text);
    return r;
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque);
static void kafka_rebalance_cb(rd_kafka_t *rk,
                               rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts,
                               void *opaque);
static void kafka_commit_cb(rd_kafka_t *rk,
                            rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *offsets,
                            void *opaque);

/* Applies SourceAccessConfigurations (their secrets read from where the URIs say) and the
 * security.protocol they imply to d. Logs the entries it ignores only when d is the consumer's
 * configuration (once per mapping). */
static int
kafka_apply_sac(const struct kafka_ctx *ctx, const struct kafka_dst *d, char *errbuf, size_t errlen)
{
    bool sasl = false;
    bool tls = false;
    int i = 0;
    int r = 0;
    for (const cJSON *e = ctx->sac ? ctx->sac->child : NULL; e && r == 0; e = e->next, i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "Type");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(e, "URI");
        int type = kafka_sac_type(t->valuestring);
        if (!kafka_sac_is_secret(type)) {
            if (d->conf) {
                sl_log_info(KAFKA_COMP, ctx->env.inst,
                            "SourceAccessConfigurations[%d]: %s has no meaning here, ignoring it",
                            i, kafka_sac_names[type]);
            }
            continue;
        }
        sasl = sasl || type <= KAFKA_SAC_SCRAM512;
        tls = true;
        r = kafka_apply_sac_entry(d, type, u->valuestring, (size_t)i, errbuf, errlen);
    }
    if (r == 0 && (sasl || tls)) {
        /* As AWS: SASL over TLS, or TLS; the rdkafka pass-through can say SASL_PLAINTEXT. */
        r = kafka_dst_set(d, "SourceAccessConfigurations", "security.protocol",
                          sasl ? "SASL_SSL" : "SSL", false, errbuf, errlen);
    }
    return r;
}

/* Builds the consumer's configuration: sluice's settings, then the access configurations (with
 * their secrets), then the rdkafka pass-through, which wins. Returns 0 and *ret_conf (owned),
 * SL_ECONFIG (errbuf filled) or SL_ENOMEM. */
/* The per-partition queue limits in force (sluice's or the "rdkafka" pass-through's), for
 * kafka_kick_if_stalled. */
static void kafka_read_queue_limits(struct kafka_ctx *ctx, const rd_kafka_conf_t *conf)
{
    char v[32];
    size_t len = sizeof(v);
    ctx->stall_msgs = rd_kafka_conf_get(conf, "queued.min.messages", v, &len) == RD_KAFKA_CONF_OK
                          ? strtoull(v, NULL, 10)
                          : 100000;
    len = sizeof(v);
    ctx->stall_bytes =
        rd_kafka_conf_get(conf, "queued.max.messages.kbytes", v, &len) == RD_KAFKA_CONF_OK
            ? strtoull(v, NULL, 10) * 1024
            : 65536 * 1024ULL;
}

static int
kafka_build_conf(struct kafka_ctx *ctx, rd_kafka_conf_t **ret_conf, char *errbuf, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        return SL_ENOMEM;
    }
    const char *fixed[][2] = {
        {"bootstrap.servers", ctx->servers},
        {"group.id", ctx->group_id},
        {"client.id", "sluice"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        /* Per partition: librdkafka stops fetching a partition whose queue holds either. */
        {"queued.max.messages.kbytes", "2048"},
        {"queued.min.messages", "5000"},
        /* an empty fetch holds the next one this long (see "About memory") */
        {"fetch.wait.max.ms", "100"},
    };
    int r = 0;
    for (size_t i = 0; i < SL_ARRAY_LEN(fixed) && r == 0; i++) {
        r = kafka_set(conf, "Kafka settings", fixed[i][0], fixed[i][1], false, errbuf, errlen);
    }
    if (r == 0) {
        r = kafka_apply_sac(ctx, &(struct kafka_dst){.conf = conf}, errbuf, errlen);
    }
    if (r == 0) {
        r = kafka_apply_passthrough(ctx, conf, errbuf, errlen);
    }
    if (r < 0) {
        rd_kafka_conf_destroy(conf);
        return r;
    }
    kafka_read_queue_limits(ctx, conf);
    rd_kafka_conf_set_opaque(conf, ctx);
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    rd_kafka_conf_set_rebalance_cb(conf, kafka_rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, kafka_commit_cb);
    *ret_conf = conf;
    return 0;
}

static int kafka_init(void *vctx, const struct sl_source_env *env, char *errbuf, size_t errlen)
{
    struct kafka_ctx *ctx = vctx;
    ctx->env = *env;
    int r = kafka_check(ctx, env->arn, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    ctx->msk = strncmp(env->arn, KAFKA_MSK_PREFIX, strlen(KAFKA_MSK_PREFIX)) == 0;
    struct sl_buf b;
    sl_buf_init(&b);
    const cJSON *servers = NULL;
    if (ctx->self_managed) {
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(ctx->self_managed, "Endpoints");
        servers = cJSON_GetObjectItemCaseSensitive(ep, "KAFKA_BOOTSTRAP_SERVERS");
        for (const cJSON *s = servers->child; s && r == 0; s = s->next) {
            r = sl_buf_printf(&b, "%s%s", s == servers->child ? "" : ",", s->valuestring);
        }
    } else if (ctx->msk) {
        for (size_t i = 0; i < ctx->bootstrap.n && r == 0; i++) {
            r = sl_buf_printf(&b, "%s%s", i ? "," : "", ctx->bootstrap.items[i]);
        }
    } else {
        r = sl_buf_puts(&b, env->arn + KAFKA_SCHEME_LEN);
    }
    if (r < 0 || !(ctx->servers = sl_buf_steal(&b))) {
        sl_buf_fini(&b);
        return SL_ENOMEM;
    }
    const cJSON *gc = ctx->smk_config ? ctx->smk_config : ctx->msk_config;
    const cJSON *g = gc ? cJSON_GetObjectItemCaseSensitive(gc, "ConsumerGroupId") : NULL;
    ctx->group_id = sl_strdup(g ? g->valuestring : env->inst);
    if (!ctx->group_id) {
        return SL_ENOMEM;
    }
    if (!g) {
        sl_log_info(KAFKA_COMP, env->inst,
                    "no ConsumerGroupId: using the mapping's UUID %s as the consumer group",
                    ctx->group_id);
    }
    return kafka_build_conf(ctx, &ctx->conf, errbuf, errlen);
}

/* The client properties of the source's cluster (ops->client_props): bootstrap.servers, then
 * what kafka_build_conf applies for the connection's security, in the same order so that the
 * same value wins: SourceAccessConfigurations (secrets read again from their URIs) and the
 * security.protocol they imply, then the security entries of the rdkafka pass-through. */
static int kafka_client_props(void *vctx, struct sl_strmap *ret_props, char *errbuf, size_t errlen)
{
    const struct kafka_ctx *ctx = vctx;
    assert(ctx->servers && ret_props->n == 0);
    const struct kafka_dst d = {.props = ret_props};
    int r = sl_strmap_put(ret_props, "bootstrap.servers", ctx->servers);
    if (r == 0) {
        r = kafka_apply_sac(ctx, &d, errbuf, errlen);
    }
    for (size_t i = 0; i < ctx->rdkafka.n && r == 0; i++) {
        if (kafka_is_security_prop(ctx->rdkafka.keys[i])) {
            r = sl_strmap_put(ret_props, ctx->rdkafka.keys[i], ctx->rdkafka.values[i]);
        }
    }
    if (r < 0) {
        sl_strmap_clear(ret_props, true);
    }
    return r;
}

/* ---- partitions ---- */

static struct kafka_part *kafka_find(struct kafka_ctx *ctx, const char *topic, int32_t partition)
{
    struct kafka_part *kp = ctx->last_hit;
    if (kp && kp->partition == partition && !kp->revoked && strcmp(kp->topic, topic) == 0) {
        return kp;
    }
    for (size_t i = 0; i < ctx->n_parts; i++) {
        kp = ctx->parts[i];
        if (kp->partition == partition && !kp->revoked && strcmp(kp->topic, topic) == 0) {
            ctx->last_hit = kp;
            return kp;
        }
    }
    return NULL;
}

/* Builds kp's constant event pieces. */
static int kafka_build_enc(struct kafka_ctx *ctx, struct kafka_part *kp, const char *id)
{
    struct sl_buf b;
    sl_buf_init(&b);
    int r = sl_buf_puts(&b, ctx->msk ? "{\"eventSource\":\"aws:kafka\",\"eventSourceArn\":"
                                     : "{\"eventSource\":\"SelfManagedKafka\"");
    if (r == 0 && ctx->msk) {
        r = sl_enc_json_str(&b, ctx->env.arn, strlen(ctx->env.arn));
    }
    r = r < 0 ? r : sl_buf_puts(&b, ",\"bootstrapServers\":");
    r = r < 0 ? r : sl_enc_json_str(&b, ctx->servers, strlen(ctx->servers));
    r = r < 0 ? r : sl_buf_puts(&b, ",\"records\":{");
    r = r < 0 ? r : sl_enc_json_str(&b, id, strlen(id));
    r = r < 0 ? r : sl_buf_puts(&b, ":[");
    if (r < 0) {
        sl_buf_fini(&b);
        return SL_ENOMEM;
    }
    kp->open_len = b.len;
    kp->open = sl_buf_steal(&b);
    sl_buf_init(&b);
    r = sl_buf_puts(&b, "{\"topic\":");
    r = r < 0 ? r : sl_enc_json_str(&b, kp->topic, strlen(kp->topic));
    r = r < 0 ? r : sl_buf_printf(&b, ",\"partition\":%" PRId32 ",\"offset\":", kp->partition);
    if (r < 0 || !kp->open) {
        sl_buf_fini(&b);
        return SL_ENOMEM;
    }
    kp->rec_head_len = b.len;
    kp->rec_head = sl_buf_steal(&b);
    return kp->rec_head ? 0 : SL_ENOMEM;
}

static void kafka_stage_clear(struct kafka_part *kp)
{
    for (size_t i = 0; i < kp->st_n; i++) {
        rd_kafka_message_destroy(kp->stage[(kp->st_head + i) % kp->st_cap]);
    }
    kp->st_head = kp->st_n = 0;
}

/* Appends msg to kp's stash (takes ownership on success). Returns 0 or SL_ENOMEM. */
static int kafka_stash(struct kafka_part *kp, rd_kafka_message_t *msg)
{
    if (kp->st_n == kp->st_cap) {
        size_t cap = kp->st_cap ? kp->st_cap * 2 : KAFKA_CHUNK;
        rd_kafka_message_t **st = sl_calloc(cap, sizeof(*st));
        if (!st) {
            return SL_ENOMEM;
        }
        for (size_t i = 0; i < kp->st_n; i++) {
            st[i] = kp->stage[(kp->st_head + i) % kp->st_cap];
        }
        sl_free(kp->stage);
        kp->stage = st;
        kp->st_cap = cap;
        kp->st_head = 0;
    }
    kp->stage[(kp->st_head + kp->st_n) % kp->st_cap] = msg;
    kp->st_n++;
    return 0;
}

/* Stops kp's queue from waking us and gives it back (its messages are librdkafka's again). */
static void kafka_queue_close(struct kafka_part *kp)
{
    if (kp->q) {
        rd_kafka_queue_io_event_enable(kp->q, -1, NULL, 0);
        rd_kafka_queue_destroy(kp->q);
        kp->q = NULL;
    }
}

static void kafka_part_free(struct kafka_part *kp)
{
    kafka_queue_close(kp);
    kafka_stage_clear(kp);
    sl_free(kp->stage);
    sl_free(kp->topic);
    sl_free(kp->open);
    sl_free(kp->rec_head);
    sl_free(kp);
}

/* Creates the partition for topic/partition (and tells the mapping). */
static struct kafka_part *
kafka_part_new(struct kafka_ctx *ctx, const char *topic, int32_t partition, int64_t start)
{
    if (ctx->n_parts == ctx->cap_parts) {
        size_t cap = ctx->cap_parts ? ctx->cap_parts * 2 : 16;
        struct kafka_part **parts = sl_realloc(ctx->parts, cap * sizeof(*parts));
        if (!parts) {
            return NULL;
        }
        ctx->parts = parts;
        ctx->cap_parts = cap;
    }
    struct kafka_part *kp = sl_calloc(1, sizeof(*kp));
    if (!kp) {
        return NULL;
    }
    kp->ctx = ctx;
    kp->partition = partition;
    kp->acked = kp->committed = kp->first = -1;
    kp->assigned_ms = sl_clock_now_ms(ctx->env.clock);
    kp->start = start;
    kp->expect = start >= 0 ? start : -1;
    kp->waiting = true;
    if (++ctx->next_key == 0 || ctx->next_key == KAFKA_REVOKE_KEY) {
        ctx->next_key = 1;
    }
    kp->key = ctx->next_key;
    /* Room for the rest of one chunk, so that fetch never has to allocate. */
    if (!(kp->stage = sl_calloc(KAFKA_CHUNK, sizeof(*kp->stage)))) {
        sl_free(kp);
        return NULL;
    }
    kp->st_cap = KAFKA_CHUNK;
    if (start >= 0) {
        kp->committed = start;
    }
    char id[300];
    (void)snprintf(id, sizeof(id), "%s-%" PRId32, topic, partition);
    struct sl_part *part = NULL;
    if (!(kp->topic = sl_strdup(topic)) || kafka_build_enc(ctx, kp, id) < 0 ||
        ctx->env.part_add(ctx->env.owner, id, id, &part) < 0) {
        kafka_part_free(kp);
        return NULL;
    }
    kp->part = part;
    part->src = kp;
    ctx->parts[ctx->n_parts++] = kp;
    return kp;
}

/* ---- commits ---- */

/* Adds the partitions whose acknowledged offset is not committed (only the revoked set's when
 * revoked is not NULL) to a new list, marking them as being committed. */
static rd_kafka_topic_partition_list_t *
kafka_commit_list(struct kafka_ctx *ctx, const rd_kafka_topic_partition_list_t *only)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    for (size_t i = 0; i < ctx->n_parts; i++) {
        struct kafka_part *kp = ctx->parts[i];
        if (kp->revoked || kp->acked < 0 || kp->acked <= kp->committed) {
            continue;
        }
        if (only && !rd_kafka_topic_partition_list_find(only, kp->topic, kp->partition)) {
            continue;
        }
        if (!only && !kp->dirty) {
            continue;
        }
        if (!l && !(l = rd_kafka_topic_partition_list_new((int)ctx->n_parts))) {
            return NULL;
        }
        rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset = kp->acked;
        kp->dirty = false;
    }
    return l;
}

/* Notes commit results: a partition's committed offset moves, or it is marked to retry. */
static void kafka_note_committed(struct kafka_ctx *ctx,
                                 rd_kafka_resp_err_t err,
                                 const rd_kafka_topic_partition_list_t *offsets)
{
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &offsets->elems[i];
        struct kafka_part *kp = kafka_find(ctx, p->topic, p->partition);
        rd_kafka_resp_err_t e = p->err ? p->err : err;
        if (!kp) {
            continue;
        }
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR && p->offset >= 0) {
            if (p->offset > kp->committed) {
                kp->committed = p->offset;
            }
            sl_log_debug(KAFKA_COMP, ctx->env.inst, "committed offset %" PRId64 " of %s-%" PRId32,
                         p->offset, p->topic, p->partition);
        } else if (e != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            kp->dirty = true;
            ctx->commit_retry_at_ms = sl_clock_now_ms(ctx->env.clock) + KAFKA_COMMIT_RETRY_MS;
            kafka_log_limited(ctx, SL_LOG_WARN, 10000 + (int)e,
                              "committing offset %" PRId64 " of %s-%" PRId32 " failed: %s, "
                              "retrying",
                              p->offset, p->topic, p->partition, rd_kafka_err2str(e));
        }
    }
}

static void kafka_commit_cb(rd_kafka_t *rk,
                            rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *offsets,
                            void *opaque)
{
    (void)rk;
    struct kafka_ctx *ctx = opaque;
    ctx->commit_inflight = false;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        return;
    }
    if (err && !offsets) {
        kafka_log_limited(ctx, SL_LOG_WARN, 10000 + (int)err, "commit failed: %s, retrying",
                          rd_kafka_err2str(err));
        return;
    }
    kafka_note_committed(ctx, err, offsets);
}

/* Sends one asynchronous commit of every acknowledged, uncommitted offset (one at a time). */
static void kafka_commit_async(struct kafka_ctx *ctx)
{
    if (!ctx->rk || ctx->commit_inflight ||
        sl_clock_now_ms(ctx->env.clock) < ctx->commit_retry_at_ms) {
        return;
    }
    rd_kafka_topic_partition_list_t *l = kafka_commit_list(ctx, NULL);
    if (!l) {
        return;
    }
    rd_kafka_resp_err_t err = rd_kafka_commit(ctx->rk, l, 1);
    if (err) {
        for (int i = 0; i < l->cnt; i++) {
            struct kafka_part *kp = kafka_find(ctx, l->elems[i].topic, l->elems[i].partition);
            if (kp) {
                kp->dirty = true;
            }
        }
        ctx->commit_retry_at_ms = sl_clock_now_ms(ctx->env.clock) + KAFKA_COMMIT_RETRY_MS;
        kafka_log_limited(ctx, SL_LOG_WARN, 10000 + (int)err, "commit failed: %s, retrying",
                          rd_kafka_err2str(err));
    } else {
        ctx->commit_inflight = true;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Commits l and waits for the answer at most timeout_ms; used on revoke and at shutdown. */
static void
kafka_commit_bounded(struct kafka_ctx *ctx, rd_kafka_topic_partition_list_t *l, int timeout_ms)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(ctx->rk);
    if (!q) {
        return;
    }
    rd_kafka_resp_err_t err = rd_kafka_commit_queue(ctx->rk, l, q, NULL, NULL);
    rd_kafka_event_t *ev = err ? NULL : rd_kafka_queue_poll(q, timeout_ms);
    if (!err && !ev) {
        err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    }
    if (ev) {
        err = rd_kafka_event_error(ev);
        const rd_kafka_topic_partition_list_t *res = rd_kafka_event_topic_partition_list(ev);
        kafka_note_committed(ctx, err, res);
    }
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "committing %d partition(s) failed: %s; they will be read again from the "
                    "last committed offsets",
                    l->cnt, rd_kafka_err2str(err));
    } else if (!err) {
        sl_log_debug(KAFKA_COMP, ctx->env.inst, "committed %d partition(s)", l->cnt);
    }
    if (ev) {
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
}

static void kafka_ack(void *vctx, struct sl_part *part, const struct sl_record *last)
{
    struct kafka_ctx *ctx = vctx;
    struct kafka_part *kp = part->src;
    if (!kp || kp->revoked) {
        return;
    }
    if ((int64_t)last->next_pos > kp->acked) {
        kp->acked = (int64_t)last->next_pos;
        kp->dirty = true;
    }
    if (ctx->stopped) {
        return; /* committed in fini */
    }
}

/* ---- rebalances ---- */

/* In the worker: where StartingPosition puts the partitions of lk without a committed offset,
 * as offsets (lk->res), with one ListOffsets per leader (rd_kafka_offsets_for_times): by time
 * for AT_TIMESTAMP, else for the latest (-1) or earliest (-2) offset, which a broker answers
 * with the end or the start of the log. An AT_TIMESTAMP partition with no message at or after
 * the time (offset -1) is asked for its end in a second call; if that fails it stays -1. */
static void kafka_lookup_starts(struct kafka_lookup *lk)
{
    int64_t what = lk->starting_position == SL_START_AT_TIMESTAMP ? lk->ts_ms
                   : lk->starting_position == SL_START_LATEST     ? RD_KAFKA_OFFSET_END
                                                                  : RD_KAFKA_OFFSET_BEGINNING;
    for (int i = 0; i < lk->parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &lk->parts->elems[i];
        if (p->offset >= 0) {
            continue;
        }
        if (!lk->res && !(lk->res = rd_kafka_topic_partition_list_new(lk->parts->cnt))) {
            return;
        }
        rd_kafka_topic_partition_list_add(lk->res, p->topic, p->partition)->offset = what;
    }
    if (!lk->res) {
        return;
    }
    lk->res_err = rd_kafka_offsets_for_times(lk->rk, lk->res, KAFKA_BLOCK_TIMEOUT_MS);
    if (lk->res_err || lk->starting_position != SL_START_AT_TIMESTAMP) {
        return;
    }
    rd_kafka_topic_partition_list_t *end = NULL;
    for (int i = 0; i < lk->res->cnt; i++) {
        const rd_kafka_topic_partition_t *r = &lk->res->elems[i];
        if (r->err || r->offset >= 0) {
            continue;
        }
        if (!end && !(end = rd_kafka_topic_partition_list_new(lk->res->cnt))) {
            return;
        }
        rd_kafka_topic_partition_list_add(end, r->topic, r->partition)->offset =
            RD_KAFKA_OFFSET_END;
    }
    if (end && rd_kafka_offsets_for_times(lk->rk, end, KAFKA_BLOCK_TIMEOUT_MS) == 0) {
        for (int i = 0; i < end->cnt; i++) {
            const rd_kafka_topic_partition_t *e = &end->elems[i];
            if (!e->err && e->offset >= 0) {
                rd_kafka_topic_partition_list_find(lk->res, e->topic, e->partition)->offset =
                    e->offset;
            }
        }
    }
    if (end) {
        rd_kafka_topic_partition_list_destroy(end);
    }
}

/* The worker of a lookup, on libuv's thread pool: the blocking calls, nothing else (no logging,
 * no ctx). Each is bounded by KAFKA_BLOCK_TIMEOUT_MS. */
static void kafka_lookup_work(uv_work_t *req)
{
    struct kafka_lookup *lk = req->data;
    lk->err = rd_kafka_committed(lk->rk, lk->parts, KAFKA_BLOCK_TIMEOUT_MS);
    if (lk->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        kafka_lookup_starts(lk);
    }
    uv_mutex_lock(&lk->mu);
    lk->done = true;
    uv_cond_signal(&lk->cv);
    uv_mutex_unlock(&lk->mu);
}

static const char *const kafka_start_names[SL_START_COUNT] = {
    [SL_START_TRIM_HORIZON] = "TRIM_HORIZON",
    [SL_START_LATEST] = "LATEST",
    [SL_START_AT_TIMESTAMP] = "AT_TIMESTAMP",
};

/* Decides where each partition of lk starts from what the worker found (see "About where
 * reading starts"): its committed offset, else the offset StartingPosition resolved to (left in
 * lk->res: those are committed at once), else, when that lookup failed, the logical offset
 * (LATEST the end, others the beginning) for librdkafka to resolve; without committed offsets
 * at all, RD_KAFKA_OFFSET_INVALID, which leaves the lookup to librdkafka. */
static void kafka_start_offsets(struct kafka_ctx *ctx, struct kafka_lookup *lk)
{
    rd_kafka_topic_partition_list_t *parts = lk->parts;
    if (lk->err) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "cannot fetch the committed offsets (%s): librdkafka looks them up; "
                    "partitions without one start from the beginning",
                    rd_kafka_err2str(lk->err));
        for (int i = 0; i < parts->cnt; i++) {
            parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
        }
        if (lk->res) {
            rd_kafka_topic_partition_list_destroy(lk->res);
            lk->res = NULL;
        }
        return;
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (p->offset >= 0) {
            continue;
        }
        rd_kafka_topic_partition_t *r =
            lk->res ? rd_kafka_topic_partition_list_find(lk->res, p->topic, p->partition) : NULL;
        rd_kafka_resp_err_t e = !r || lk->res_err ? lk->res_err : r->err;
        if (r && e == RD_KAFKA_RESP_ERR_NO_ERROR && r->offset >= 0) {
            p->offset = r->offset;
            continue;
        }
        if (lk->starting_position == SL_START_AT_TIMESTAMP && r && !e) {
            p->offset = RD_KAFKA_OFFSET_END; /* no message at or after the time, and no end */
        } else {
            p->offset = lk->starting_position == SL_START_LATEST ? RD_KAFKA_OFFSET_END
                                                                 : RD_KAFKA_OFFSET_BEGINNING;
        }
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "%s-%" PRId32 ": cannot look up where StartingPosition %s starts (%s): "
                    "reading from the %s; the group's offset is committed only with the first "
                    "record delivered",
                    p->topic, p->partition, kafka_start_names[lk->starting_position],
                    !r  ? "out of memory"
                    : e ? rd_kafka_err2str(e)
                        : "no end offset",
                    p->offset == RD_KAFKA_OFFSET_END ? "end" : "beginning");
        if (r) {
            r->offset = RD_KAFKA_OFFSET_INVALID; /* not a start to commit */
        }
    }
}

static void kafka_lookup_free(struct kafka_lookup *lk)
{
    if (lk->parts) {
        rd_kafka_topic_partition_list_destroy(lk->parts);
    }
    if (lk->res) {
        rd_kafka_topic_partition_list_destroy(lk->res);
    }
    uv_cond_destroy(&lk->cv);
    uv_mutex_destroy(&lk->mu);
    sl_free(lk);
}

/* Orphans every lookup in flight and returns once none of them can touch rk any more: those
 * not started are canceled, a running one is waited for (its calls are bounded). Their
 * completions still run on the loop, and only free them. Shutdown only (fini). */
static void kafka_lookups_abandon(struct kafka_ctx *ctx)
{
    while (ctx->lookups) {
        struct kafka_lookup *lk = ctx->lookups;
        ctx->lookups = lk->next;
        lk->ctx = NULL;
        lk->next = NULL;
        if (uv_cancel((uv_req_t *)&lk->req) == 0) {
            continue;
        }
        uv_mutex_lock(&lk->mu);
        while (!lk->done) {
            uv_cond_wait(&lk->cv, &lk->mu);
        }
        uv_mutex_unlock(&lk->mu);
    }
}

/* Remembers kp's acknowledged offset when its commit on revoke failed (the mock cluster, unlike
 * a real broker, refuses commits while the group is joining): if the partition comes back to
 * this process, reading resumes there instead of re-delivering what was acknowledged. */
static void kafka_leftover_keep(
    struct kafka_ctx *ctx, const char *topic, int32_t partition, int64_t acked, int64_t committed)
{
    if (!ctx->leftover && !(ctx->leftover = rd_kafka_topic_partition_list_new(8))) {
        return;
    }
    rd_kafka_topic_partition_t *e =
        rd_kafka_topic_partition_list_find(ctx->leftover, topic, partition);
    if (!e) {
        e = rd_kafka_topic_partition_list_add(ctx->leftover, topic, partition);
        e->offset = -1;
    }
    if (acked > e->offset) {
        e->offset = acked;
    }
    sl_log_info(KAFKA_COMP, ctx->env.inst,
                "%s-%" PRId32 ": offset %" PRId64 " was acknowledged but not committed; if the "
                "partition is assigned here again reading resumes there, elsewhere it is read "
                "again from %" PRId64,
                topic, partition, acked, committed);
}

/* The leftover acknowledged offset of topic/partition (removed from the list), or -1. */
static int64_t kafka_leftover_take(struct kafka_ctx *ctx, const char *topic, int32_t partition)
{
    if (!ctx->leftover) {
        return -1;
    }
    rd_kafka_topic_partition_t *e =
        rd_kafka_topic_partition_list_find(ctx->leftover, topic, partition);
    if (!e) {
        return -1;
    }
    int64_t off = e->offset;
    (void)rd_kafka_topic_partition_list_del(ctx->leftover, topic, partition);
    return off;
}

/* Gives kp its own queue, no longer forwarded to the consumer queue, that writes kp's key to the
 * pipe when it becomes non-empty. Called before rd_kafka_assign (see "About fetching"). */
static void kafka_queue_open(struct kafka_ctx *ctx, struct kafka_part *kp)
{
    kp->q = rd_kafka_queue_get_partition(ctx->rk, kp->topic, kp->partition);
    if (!kp->q) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "%s: no partition queue (out of memory): its messages come through the "
                    "consumer queue",
                    kp->part->name);
        return;
    }
    rd_kafka_queue_forward(kp->q, NULL);
    if (ctx->io) {
        rd_kafka_queue_io_event_enable(kp->q, ctx->io->wfd, &kp->key, sizeof(kp->key));
    }
}

static size_t kafka_slots(const struct kafka_ctx *ctx);
static size_t kafka_fetching(const struct kafka_ctx *ctx, bool *ret_paused);

/* Pauses the partitions of l (marked paused by the caller) before they are assigned; those
 * librdkafka did not pause are marked fetching again. Frees l. */
static void kafka_pause_list(struct kafka_ctx *ctx, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_resp_err_t err = rd_kafka_pause_partitions(ctx->rk, l);
    for (int i = 0; i < l->cnt; i++) {
        if (err || l->elems[i].err) {
            struct kafka_part *kp = kafka_find(ctx, l->elems[i].topic, l->elems[i].partition);
            if (kp) {
                kp->paused = false;
            }
        }
    }
    sl_log_info(KAFKA_COMP, ctx->env.inst,
                "%d partition(s) wait for a fetch slot: %zu fetch at once within "
                "max_bytes_buffered",
                l->cnt, kafka_slots(ctx));
    rd_kafka_topic_partition_list_destroy(l);
}

/* Makes the assignment parts, whose offsets say where each partition starts: the partitions,
 * their queues, then rd_kafka_assign. The partitions in resolved (may be NULL) have no committed
 * offset and start where StartingPosition resolved to (kafka_start_offsets): that offset counts
 * as acknowledged, since nothing before it is to be delivered, and is committed at once (see
 * "About where reading starts"). */
static void kafka_assign_apply(struct kafka_ctx *ctx,
                               rd_kafka_topic_partition_list_t *parts,
                               const rd_kafka_topic_partition_list_t *resolved)
{
    ctx->assigned_once = true;
    bool commit_now = false;
    bool any_paused;
    size_t n_fetching = kafka_fetching(ctx, &any_paused);
    size_t slots = kafka_slots(ctx);
    rd_kafka_topic_partition_list_t *paused = NULL;
    rd_kafka_topic_partition_list_t *resumed = NULL;
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        if (kafka_find(ctx, p->topic, p->partition)) {
            continue;
        }
        const rd_kafka_topic_partition_t *r =
            resolved ? rd_kafka_topic_partition_list_find(resolved, p->topic, p->partition) : NULL;
        bool fresh = r && r->offset >= 0 && r->offset == p->offset;
        int64_t committed = fresh ? -1 : p->offset;
        int64_t left = kafka_leftover_take(ctx, p->topic, p->partition);
        bool use_left = left >= 0 && left > committed;
        if (use_left) {
            p->offset = left; /* acknowledged here before the rebalance: see kafka_leftover_keep */
            fresh = false;
        }
        struct kafka_part *kp = kafka_part_new(ctx, p->topic, p->partition, p->offset);
        if (!kp) {
            sl_log_error(KAFKA_COMP, ctx->env.inst,
                         "%s-%" PRId32 ": out of memory adding the partition, skipping it",
                         p->topic, p->partition);
            continue;
        }
        kafka_queue_open(ctx, kp);
        if (kp->q && n_fetching >= slots) {
            /* no fetch slot for it yet: paused before librdkafka starts fetching it */
            if (!paused) {
                paused = rd_kafka_topic_partition_list_new(parts->cnt);
            }
            if (paused) {
                rd_kafka_topic_partition_list_add(paused, kp->topic, kp->partition);
                kp->paused = true;
            }
        } else if (kp->q) {
            /* resumed all the same: a pause from an earlier assignment of it would stay */
            if (!resumed) {
                resumed = rd_kafka_topic_partition_list_new(parts->cnt);
            }
            if (resumed) {
                rd_kafka_topic_partition_list_add(resumed, kp->topic, kp->partition);
            }
            n_fetching++;
            kp->slot_ms = sl_clock_now_ms(ctx->env.clock);
        }
        char from[160];
        if (use_left) {
            kp->committed = committed >= 0 ? committed : -1;
            kp->acked = left;
            kp->dirty = true; /* committed by the next tick */
            (void)snprintf(from, sizeof(from),
                           "offset %" PRId64 " (acknowledged here before the rebalance)",
                           p->offset);
        } else if (fresh) {
            kp->committed = -1;
            kp->acked = p->offset;
            kp->dirty = true;
            kp->start_by_ms = sl_clock_now_ms(ctx->env.clock) + KAFKA_SETTLE_MS;
            commit_now = true;
            (void)snprintf(from, sizeof(from),
                           "offset %" PRId64 " (StartingPosition %s; the group has no committed "
                           "offset: committing it)",
                           p->offset, kafka_start_names[ctx->env.starting_position]);
        } else if (p->offset >= 0) {
            (void)snprintf(from, sizeof(from), "offset %" PRId64, p->offset);
        }
        sl_log_info(KAFKA_COMP, ctx->env.inst, "%s: assigned, reading from %s", kp->part->name,
                    p->offset >= 0                           ? from
                    : p->offset == RD_KAFKA_OFFSET_END       ? "the end (LATEST)"
                    : p->offset == RD_KAFKA_OFFSET_BEGINNING ? "the beginning"
                                                             : "the committed offset");
    }
    if (paused) {
        kafka_pause_list(ctx, paused);
    }
    if (resumed) {
        (void)rd_kafka_resume_partitions(ctx->rk, resumed);
        rd_kafka_topic_partition_list_destroy(resumed);
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(ctx->rk, parts);
    if (err) {
        sl_log_error(KAFKA_COMP, ctx->env.inst, "assigning partitions failed: %s",
                     rd_kafka_err2str(err));
    }
    if (commit_now) {
        kafka_commit_async(ctx); /* else the next tick, once the commit in flight answered */
    }
}

/* A lookup finished (or was canceled by fini), on the loop: assigns its partitions if it is
 * still the current generation, else drops it. */
static void kafka_lookup_done(uv_work_t *req, int status)
{
    struct kafka_lookup *lk = req->data;
    struct kafka_ctx *ctx = lk->ctx;
    if (!ctx) {
        kafka_lookup_free(lk); /* orphaned by fini */
        return;
    }
    for (struct kafka_lookup **pp = &ctx->lookups; *pp; pp = &(*pp)->next) {
        if (*pp == lk) {
            *pp = lk->next;
            break;
        }
    }
    if (status < 0) {
        /* only fini cancels, and it orphans first; treat it as a failed lookup all the same */
        lk->err = RD_KAFKA_RESP_ERR__INTR;
    }
    if (lk->gen != ctx->assign_gen) {
        sl_log_info(KAFKA_COMP, ctx->env.inst,
                    "dropping an assignment of %d partition(s) revoked while their committed "
                    "offsets were looked up",
                    lk->parts->cnt);
    } else if (ctx->stopped) {
        (void)rd_kafka_assign(ctx->rk, NULL);
    } else {
        sl_log_debug(KAFKA_COMP, ctx->env.inst,
                     "start offsets of %d partition(s) found in %" PRId64 "ms", lk->parts->cnt,
                     sl_clock_now_ms(ctx->env.clock) - lk->started_ms);
        kafka_start_offsets(ctx, lk);
        kafka_assign_apply(ctx, lk->parts, lk->res);
    }
    kafka_lookup_free(lk);
}

/* An assignment arrived: starts the lookup of where its partitions start, on the thread pool
 * (see "About where reading starts"); kafka_lookup_done assigns them. An empty assignment
 * needs no lookup. */
static void kafka_assign(struct kafka_ctx *ctx, rd_kafka_topic_partition_list_t *parts)
{
    ctx->assign_gen++;
    if (parts->cnt == 0) {
        kafka_assign_apply(ctx, parts, NULL);
        return;
    }
    struct kafka_lookup *lk = sl_calloc(1, sizeof(*lk));
    if (!lk || uv_mutex_init(&lk->mu) < 0) {
        sl_free(lk);
        lk = NULL;
    } else if (uv_cond_init(&lk->cv) < 0) {
        uv_mutex_destroy(&lk->mu);
        sl_free(lk);
        lk = NULL;
    }
    if (lk) {
        lk->req.data = lk;
        lk->ctx = ctx;
        lk->gen = ctx->assign_gen;
        lk->rk = ctx->rk;
        lk->starting_position = ctx->env.starting_position;
        lk->ts_ms = ctx->env.starting_position_ts_ms;
        lk->started_ms = sl_clock_now_ms(ctx->env.clock);
        lk->parts = rd_kafka_topic_partition_list_copy(parts);
    }
    if (lk && lk->parts &&
        uv_queue_work(ctx->env.loop, &lk->req, kafka_lookup_work, kafka_lookup_done) == 0) {
        lk->next = ctx->lookups;
        ctx->lookups = lk;
        sl_log_debug(KAFKA_COMP, ctx->env.inst,
                     "%d partition(s) assigned: looking up their committed offsets", parts->cnt);
        return;
    }
    if (lk) {
        kafka_lookup_free(lk);
    }
    /* Out of memory: as when the committed offsets cannot be fetched, librdkafka looks them up. */
    sl_log_warn(KAFKA_COMP, ctx->env.inst,
                "cannot look up the committed offsets (out of memory): librdkafka looks them up; "
                "partitions without one start from the beginning");
    for (int i = 0; i < parts->cnt; i++) {
        parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
    }
    kafka_assign_apply(ctx, parts, NULL);
}

static void kafka_rebalance(struct kafka_ctx *ctx,
                            rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts);

/* Handles, in order, the rebalances deferred while a commit on revoke was in flight, until one
 * of them starts another such commit. */
static void kafka_deferred_replay(struct kafka_ctx *ctx)
{
    while (ctx->deferred && !ctx->revoking.offsets) {
        struct kafka_deferred *d = ctx->deferred;
        ctx->deferred = d->next;
        kafka_rebalance(ctx, d->err, d->parts);
        rd_kafka_topic_partition_list_destroy(d->parts);
        sl_free(d);
    }
}

/* The commit on revoke ended: committed (err 0 and res, its per-partition result), failed, or
 * timed out (res NULL). A partition whose offset was not committed is remembered in the
 * leftover list, as before (see "About rebalances"); then the partitions are given up
 * (rd_kafka_assign(NULL): librdkafka's rebalance goes on) and the rebalances that came
 * meanwhile are handled. */
static void kafka_revoke_end(struct kafka_ctx *ctx,
                             rd_kafka_resp_err_t err,
                             const rd_kafka_topic_partition_list_t *res)
{
    struct kafka_revoking rv = ctx->revoking;
    memset(&ctx->revoking, 0, sizeof(ctx->revoking));
    assert(rv.offsets);
    int failed = 0;
    rd_kafka_resp_err_t why = err;
    for (int i = 0; i < rv.offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &rv.offsets->elems[i];
        const rd_kafka_topic_partition_t *r =
            res ? rd_kafka_topic_partition_list_find(res, p->topic, p->partition) : NULL;
        rd_kafka_resp_err_t e = err ? err : !r ? RD_KAFKA_RESP_ERR__TIMED_OUT : r->err;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            sl_log_debug(KAFKA_COMP, ctx->env.inst, "committed offset %" PRId64 " of %s-%" PRId32,
                         p->offset, p->topic, p->partition);
            continue;
        }
        why = e;
        failed++;
        kafka_leftover_keep(ctx, p->topic, p->partition, p->offset,
                            rv.committed ? rv.committed[i] : -1);
    }
    int64_t took_ms = sl_clock_now_ms(ctx->env.clock) - rv.started_ms;
    if (failed) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "committing %d of %d partition(s) given up in a rebalance failed after "
                    "%" PRId64 "ms: %s",
                    failed, rv.offsets->cnt, took_ms, rd_kafka_err2str(why));
    } else {
        sl_log_debug(KAFKA_COMP, ctx->env.inst,
                     "committed %d partition(s) given up in a rebalance in %" PRId64 "ms",
                     rv.offsets->cnt, took_ms);
    }
    rd_kafka_topic_partition_list_destroy(rv.offsets);
    sl_free(rv.committed);
    (void)rd_kafka_assign(ctx->rk, NULL);
    kafka_deferred_replay(ctx);
}

/* One event from the revoke queue: the answer to the commit on revoke in flight, or a late one
 * to an earlier commit that was given up on (KAFKA_BLOCK_TIMEOUT_MS), which changes nothing. */
static void kafka_revoke_event(struct kafka_ctx *ctx, rd_kafka_event_t *ev)
{
    if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_OFFSET_COMMIT) {
        return;
    }
    uintptr_t seq = (uintptr_t)rd_kafka_event_opaque(ev);
    if (!ctx->revoking.offsets || seq != (uintptr_t)ctx->revoking.seq) {
        sl_log_debug(KAFKA_COMP, ctx->env.inst,
                     "a commit given up on in an earlier rebalance answered late: %s",
                     rd_kafka_err2str(rd_kafka_event_error(ev)));
        return;
    }
    kafka_revoke_end(ctx, rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
}

/* Serves the revoke queue without blocking, and gives up on a commit on revoke that took
 * KAFKA_BLOCK_TIMEOUT_MS (its partitions' offsets then go to the leftover list). */
static void kafka_revoke_poll(struct kafka_ctx *ctx)
{
    rd_kafka_event_t *ev;
    while (ctx->rq && (ev = rd_kafka_queue_poll(ctx->rq, 0))) {
        kafka_revoke_event(ctx, ev);
        rd_kafka_event_destroy(ev);
    }
    if (ctx->revoking.offsets && sl_clock_now_ms(ctx->env.clock) >= ctx->revoking.deadline_ms) {
        kafka_revoke_end(ctx, RD_KAFKA_RESP_ERR__TIMED_OUT, NULL);
    }
}

/* Partitions are revoked (eager: all of them). The mapping gives them up at once
 * (env->part_revoke; acknowledgements that come later are ignored, as they always were), then
 * their acknowledged, uncommitted offsets are committed asynchronously, the answer arriving on
 * the revoke queue (kafka_revoke_poll, on the loop); librdkafka, which waits for
 * rd_kafka_assign(NULL) before it rejoins the group, gets it only once the commit ended
 * (kafka_revoke_end). Nothing to commit, or stopped (fini commits what is live): at once. */
static void kafka_revoke(struct kafka_ctx *ctx, rd_kafka_topic_partition_list_t *parts)
{
    struct kafka_revoking rv = {0};
    if (!ctx->stopped) {
        rv.offsets = kafka_commit_list(ctx, parts);
    }
    if (rv.offsets) {
        rv.committed = sl_calloc((size_t)rv.offsets->cnt, sizeof(*rv.committed));
        for (int i = 0; rv.committed && i < rv.offsets->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &rv.offsets->elems[i];
            const struct kafka_part *kp = kafka_find(ctx, p->topic, p->partition);
            rv.committed[i] = kp ? kp->committed : -1;
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        struct kafka_part *kp = kafka_find(ctx, parts->elems[i].topic, parts->elems[i].partition);
        if (!kp) {
            continue;
        }
        if (!ctx->stopped && kp->acked > kp->committed && !rv.offsets) {
            /* not being committed (out of memory for the list) */
            kafka_leftover_keep(ctx, kp->topic, kp->partition, kp->acked, kp->committed);
        }
        kp->revoked = true;
        kafka_queue_close(kp);
        kafka_stage_clear(kp);
        if (ctx->last_hit == kp) {
            ctx->last_hit = NULL;
        }
        if (kp->acked > kp->committed && rv.offsets) {
            sl_log_info(KAFKA_COMP, ctx->env.inst,
                        "%s: revoked (committed up to %" PRId64 ", committing %" PRId64 ")",
                        kp->part->name, kp->committed, kp->acked);
        } else {
            sl_log_info(KAFKA_COMP, ctx->env.inst, "%s: revoked (committed up to %" PRId64 ")",
                        kp->part->name, kp->committed);
        }
        if (!ctx->stopped) {
            ctx->env.part_revoke(ctx->env.owner, kp->part); /* may release kp at once */
        }
    }
    if (!rv.offsets) {
        (void)rd_kafka_assign(ctx->rk, NULL);
        return;
    }
    rv.seq = ++ctx->revoke_seq;
    rv.started_ms = sl_clock_now_ms(ctx->env.clock);
    rv.deadline_ms = rv.started_ms + KAFKA_BLOCK_TIMEOUT_MS;
    ctx->revoking = rv;
    rd_kafka_resp_err_t err = ctx->rq ? rd_kafka_commit_queue(ctx->rk, rv.offsets, ctx->rq, NULL,
                                                              (void *)(uintptr_t)rv.seq)
                                      : RD_KAFKA_RESP_ERR__STATE;
    if (err) {
        kafka_revoke_end(ctx, err, NULL);
        return;
    }
    sl_log_debug(KAFKA_COMP, ctx->env.inst,
                 "committing %d partition(s) before giving them up in the rebalance",
                 rv.offsets->cnt);
}

/* Handles one rebalance (kafka_rebalance_cb, or replayed by kafka_deferred_replay). */
static void kafka_rebalance(struct kafka_ctx *ctx,
                            rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts)
{
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS && !ctx->stopped) {
        kafka_assign(ctx, parts);
        return;
    }
    ctx->assign_gen++; /* a lookup still running for an earlier assignment is stale now */
    if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        kafka_revoke(ctx, parts);
    } else {
        if (err != RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
            sl_log_warn(KAFKA_COMP, ctx->env.inst, "rebalance failed: %s", rd_kafka_err2str(err));
        }
        (void)rd_kafka_assign(ctx->rk, NULL);
    }
}

/* Keeps a rebalance that came while a commit on revoke is in flight for after it: handled now,
 * its rd_kafka_assign would come before the revoke's rd_kafka_assign(NULL), which would then
 * undo it. Out of memory for the copy, the commits in flight are given up on (their offsets go
 * to the leftover list, as when they fail) so that order is kept all the same. */
static void
kafka_defer(struct kafka_ctx *ctx, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts)
{
    struct kafka_deferred *d = sl_calloc(1, sizeof(*d));
    if (d && !(d->parts = rd_kafka_topic_partition_list_copy(parts))) {
        sl_free(d);
        d = NULL;
    }
    if (d) {
        struct kafka_deferred **pp = &ctx->deferred;
        while (*pp) {
            pp = &(*pp)->next;
        }
        d->err = err;
        *pp = d;
        sl_log_debug(KAFKA_COMP, ctx->env.inst,
                     "a rebalance came while partitions given up are being committed: it waits");
        return;
    }
    sl_log_error(KAFKA_COMP, ctx->env.inst,
                 "out of memory keeping a rebalance for after a commit in flight: not waiting for "
                 "the commit");
    while (ctx->revoking.offsets) {
        kafka_revoke_end(ctx, RD_KAFKA_RESP_ERR__TIMED_OUT, NULL); /* replays what waited */
    }
    kafka_rebalance(ctx, err, parts);
}

static void kafka_rebalance_cb(rd_kafka_t *rk,
                               rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t *parts,
                               void *opaque)
{
    (void)rk;
    struct kafka_ctx *ctx = opaque;
    if (ctx->revoking.offsets || ctx->deferred) {
        kafka_defer(ctx, err, parts);
        return;
    }
    kafka_rebalance(ctx, err, parts);
}

/* ---- messages ---- */

/* About connection-security failures (authentication, TLS, authorization): librdkafka treats the
 * first two as a broken connection and connects again after reconnect.backoff.ms, doubled per
 * failure up to reconnect.backoff.max.ms (100 ms and 10 s by default, per broker, jittered): a
 * slow backoff with no work on the loop meanwhile, and as quick a recovery as any once the cause
 * is fixed (a password rotated back, a listener switched). A topic it may not read is reported
 * at each metadata refresh (topic.metadata.refresh.interval.ms) and consumed once allowed. The
 * mapping keeps running throughout. What sluice adds is the line that says so: one error per
 * kind (all brokers alike, from error_cb or a consumer error) at most every
 * KAFKA_SECFAIL_LOG_EVERY_MS, with librdkafka's reason (which never holds a secret), what to
 * check, and how many more there were; meanwhile "all brokers are down", a consequence, is
 * debug, and librdkafka's own "FAIL" lines always are (kafka_log_cb). */

/* What a connection-security failure is about, for the line that says what to check. */
enum kafka_secfail {
    KAFKA_SECFAIL_NONE,
    KAFKA_SECFAIL_AUTH,  /* SASL: credentials, mechanism, or a broker without SASL */
    KAFKA_SECFAIL_TLS,   /* TLS: certificates, or TLS against a plaintext listener */
    KAFKA_SECFAIL_ACL,   /* authenticated, but the topic or group is not allowed */
    KAFKA_SECFAIL_COUNT, /* (also the log slot keys: KAFKA_SECFAIL_KEY + kind) */
};

#define KAFKA_SECFAIL_KEY 20000

static enum kafka_secfail kafka_secfail_kind(int err, const char *reason)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM:
    case RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE:
        return KAFKA_SECFAIL_AUTH;
    case RD_KAFKA_RESP_ERR__SSL:
        return KAFKA_SECFAIL_TLS;
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
        return KAFKA_SECFAIL_ACL;
    case RD_KAFKA_RESP_ERR__TRANSPORT:
        /* TLS against a plaintext listener or the reverse: librdkafka says so only in words
         * ("SSL handshake failed: Disconnected: connecting to a PLAINTEXT broker listener?",
         * "might be caused by incorrect security.protocol configuration") */
        if (reason && (strstr(reason, "SSL handshake failed") ||
                       strstr(reason, "security.protocol") || strstr(reason, "state SSL_"))) {
            return KAFKA_SECFAIL_TLS;
        }
        if (reason && strstr(reason, "state AUTH_")) {
            return KAFKA_SECFAIL_AUTH; /* the broker hung up during SASL */
        }
        return KAFKA_SECFAIL_NONE;
    default:
        return KAFKA_SECFAIL_NONE;
    }
}

/* Logs err if it is a connection-security failure (see "About connection-security failures"):
 * one error line per kind at most every KAFKA_SECFAIL_LOG_EVERY_MS. Returns
 * whether it was one. */
static bool kafka_secfail_log(struct kafka_ctx *ctx, int err, const char *reason)
{
    static const char *const what[KAFKA_SECFAIL_COUNT] = {
        [KAFKA_SECFAIL_AUTH] = "authentication failed",
        [KAFKA_SECFAIL_TLS] = "the TLS connection failed",
        [KAFKA_SECFAIL_ACL] = "authorization failed",
    };
    static const char *const check[KAFKA_SECFAIL_COUNT] = {
        [KAFKA_SECFAIL_AUTH] = "the credentials and mechanism of SourceAccessConfigurations "
                               "(BASIC_AUTH, SASL_SCRAM_*) and rdkafka security.protocol/sasl.*",
        [KAFKA_SECFAIL_TLS] = "SourceAccessConfigurations (SERVER_ROOT_CA_CERTIFICATE, "
                              "CLIENT_CERTIFICATE_TLS_AUTH) and rdkafka security.protocol/ssl.*",
        [KAFKA_SECFAIL_ACL] = "the broker's ACLs for the topic and the consumer group",
    };
    static const char *const again[KAFKA_SECFAIL_COUNT] = {
        [KAFKA_SECFAIL_AUTH] = "connects again with backoff (up to reconnect.backoff.max.ms)",
        [KAFKA_SECFAIL_TLS] = "connects again with backoff (up to reconnect.backoff.max.ms)",
        [KAFKA_SECFAIL_ACL] = "tries again at each metadata refresh "
                              "(topic.metadata.refresh.interval.ms)",
    };
    enum kafka_secfail kind = kafka_secfail_kind(err, reason);
    if (kind == KAFKA_SECFAIL_NONE) {
        return false;
    }
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    ctx->secfail_at_ms = now ? now : 1;
    kafka_log_every(ctx, SL_LOG_ERROR, KAFKA_SECFAIL_KEY + (int)kind, KAFKA_SECFAIL_LOG_EVERY_MS,
                    "cannot consume: %s (%s: %s); check %s. The source keeps running and %s",
                    what[kind], rd_kafka_err2name(err), reason ? reason : "", check[kind],
                    again[kind]);
    return true;
}

static void kafka_on_error_message(struct kafka_ctx *ctx, const rd_kafka_message_t *msg)
{
    const char *topic = msg->rkt ? rd_kafka_topic_name(msg->rkt) : "";
    if (kafka_secfail_log(ctx, (int)msg->err, rd_kafka_message_errstr(msg))) {
        return; /* TOPIC_AUTHORIZATION_FAILED ("Subscribed topic not available") */
    }
    enum sl_log_level level =
        msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ? SL_LOG_DEBUG : SL_LOG_WARN;
    kafka_log_limited(ctx, level, (int)msg->err, "consumer error on %s [%" PRId32 "]: %s", topic,
                      msg->partition, rd_kafka_message_errstr(msg));
}

/* A message from the consumer queue: an error, or one of a partition without its own queue. */
static void kafka_on_message(struct kafka_ctx *ctx, rd_kafka_message_t *msg)
{
    if (msg->err) {
        kafka_on_error_message(ctx, msg);
        rd_kafka_message_destroy(msg);
        return;
    }
    struct kafka_part *kp = kafka_find(ctx, rd_kafka_topic_name(msg->rkt), msg->partition);
    if (!kp) {
        rd_kafka_message_destroy(msg); /* a revoked partition's: read again by its new owner */
        return;
    }
    if (kafka_stash(kp, msg) < 0) {
        /* Without room, drop it and go back: librdkafka fetches it again. */
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        if (l) {
            rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset = msg->offset;
            (void)rd_kafka_seek_partitions(ctx->rk, l, 0);
            rd_kafka_topic_partition_list_destroy(l);
        }
        rd_kafka_message_destroy(msg);
        return;
    }
    if (kp->waiting) {
        kp->waiting = false;
        ctx->env.part_wake(ctx->env.owner, kp->part);
    }
}

/* The partition whose queue writes key, or NULL (revoked since). */
static struct kafka_part *kafka_find_key(struct kafka_ctx *ctx, uint32_t key)
{
    for (size_t i = 0; i < ctx->n_parts; i++) {
        if (ctx->parts[i]->key == key) {
            return ctx->parts[i];
        }
    }
    return NULL;
}

/* kp's queue has (or may have) messages: wakes the mapping if a fetch found none before. */
static void kafka_wake(struct kafka_ctx *ctx, struct kafka_part *kp)
{
    if (kp && kp->waiting && !kp->revoked && !ctx->stopped) {
        kp->waiting = false;
        ctx->env.part_wake(ctx->env.owner, kp->part);
    }
}

static void kafka_more_cb(uv_idle_t *h);

/* Serves the consumer queue without blocking: messages, rebalances, commits, errors. */
static void kafka_drain(struct kafka_ctx *ctx)
{
    for (int i = 0; i < KAFKA_POLL_CAP && !ctx->stopped; i++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(ctx->rk, 0);
        if (!msg) {
            if (ctx->more) {
                (void)uv_idle_stop(ctx->more);
            }
            return;
        }
        kafka_on_message(ctx, msg);
    }
    if (ctx->more && !ctx->stopped) {
        (void)uv_idle_start(ctx->more, kafka_more_cb); /* the cap was reached: go on next turn */
    }
}

static void kafka_more_cb(uv_idle_t *h)
{
    kafka_drain(h->data);
}

/* The pipe: 4-byte keys (every write is one whole key, and the pipe is read in multiples of
 * 4, so keys never split): 0 for the consumer queue, KAFKA_REVOKE_KEY for the revoke queue,
 * else a partition's. */
static void kafka_io_cb(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct kafka_io *io = (struct kafka_io *)h;
    struct kafka_ctx *ctx = h->data;
    uint32_t keys[64];
    bool consumer = false;
    bool revoke = false;
    ssize_t got;
    while ((got = read(io->rfd, keys, sizeof(keys))) > 0) {
        for (size_t i = 0; i < (size_t)got / sizeof(keys[0]); i++) {
            if (keys[i] == 0) {
                consumer = true;
            } else if (keys[i] == KAFKA_REVOKE_KEY) {
                revoke = true;
            } else {
                kafka_wake(ctx, kafka_find_key(ctx, keys[i]));
            }
        }
    }
    if (revoke) {
        kafka_revoke_poll(ctx);
    }
    if (consumer) {
        kafka_drain(ctx);
    }
}

/* librdkafka 2.0 stops fetching a partition whose queue reached queued.min.messages (or
 * queued.max.messages.kbytes) and looks again only when the broker's thread next wakes, up to
 * a second later (see "About fetching"). A partition whose queue sluice saw that full, then
 * drained, and that has stayed empty for KAFKA_KICK_MS while the broker has more, is stalled
 * that way: a seek to the offset after the last one taken (an asynchronous op for the broker's
 * thread; on an empty queue it discards nothing) wakes it at once. Once per fill: a partition
 * that was not full (a fetch error, an offset reset in progress) is left to librdkafka. */
static void kafka_kick_if_stalled(struct kafka_ctx *ctx, struct kafka_part *kp, int64_t now)
{
    if (!kp->waiting || !kp->maybe_stalled || kp->paused || !kp->q || kp->st_n > 0 ||
        kp->expect < 0 || now - kp->waiting_ms < KAFKA_KICK_MS ||
        rd_kafka_queue_length(kp->q) > 0) {
        return;
    }
    int64_t lo = -1;
    int64_t hi = -1;
    if (rd_kafka_get_watermark_offsets(ctx->rk, kp->topic, kp->partition, &lo, &hi) != 0 ||
        hi <= kp->expect) {
        return;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (!l) {
        return;
    }
    rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset = kp->expect;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(ctx->rk, l, 0);
    if (e) {
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
    kp->maybe_stalled = false;
}

/* ---- memory: fetch slots (see "About memory") ---- */

/* How many partitions librdkafka may fetch at once: the mapping's max_bytes_buffered over what
 * the queue of one fetching partition can hold (queued.min.messages messages, or
 * queued.max.messages.kbytes of them, each with librdkafka's own KAFKA_MSG_OVERHEAD), at least
 * one; every partition without a budget (0: the unit tests). */
static size_t kafka_slots(const struct kafka_ctx *ctx)
{
    if (ctx->env.max_bytes_buffered <= 0) {
        return SIZE_MAX;
    }
    uint64_t avg = ctx->avg_len ? ctx->avg_len : 100;
    uint64_t msgs =
        ctx->stall_bytes / avg < ctx->stall_msgs ? ctx->stall_bytes / avg : ctx->stall_msgs;
    uint64_t per = (msgs ? msgs : 1) * (avg + KAFKA_MSG_OVERHEAD);
    uint64_t n = (uint64_t)ctx->env.max_bytes_buffered / per;
    return n < 1 ? 1 : n > SIZE_MAX ? SIZE_MAX : (size_t)n;
}

/* Whether kp has taken everything the broker had when it last told (its high watermark). */
static bool kafka_caught_up(const struct kafka_ctx *ctx, const struct kafka_part *kp)
{
    int64_t lo = -1;
    int64_t hi = -1;
    return kp->expect >= 0 &&
           rd_kafka_get_watermark_offsets(ctx->rk, kp->topic, kp->partition, &lo, &hi) == 0 &&
           hi >= 0 && hi <= kp->expect;
}

/* Whether kp, paused, wants a fetch slot: it has more to read, or it was caught up and paused
 * long enough ago (KAFKA_SLICE_MS x 10) that the broker may have more (a paused partition
 * learns nothing of its watermark). */
static bool kafka_slot_wanted(const struct kafka_ctx *ctx, const struct kafka_part *kp, int64_t now)
{
    return kp->paused && kp->q && !kp->revoked &&
           (now - kp->slot_ms >= 10 * KAFKA_SLICE_MS || !kafka_caught_up(ctx, kp));
}

/* The partitions librdkafka fetches now (assigned, not paused); *ret_wanted: whether a paused
 * one wants a slot. */
static size_t kafka_fetching(const struct kafka_ctx *ctx, bool *ret_wanted)
{
    size_t n = 0;
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    *ret_wanted = false;
    for (size_t i = 0; i < ctx->n_parts; i++) {
        const struct kafka_part *kp = ctx->parts[i];
        if (kp->q && !kp->revoked && !kp->paused) {
            n++;
        } else if (!*ret_wanted) {
            *ret_wanted = kafka_slot_wanted(ctx, kp, now);
        }
    }
    return n;
}

/* Pauses or resumes kp's fetching; kp->paused says what is in force. */
static void kafka_pause_set(struct kafka_ctx *ctx, struct kafka_part *kp, bool pause)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    if (!l) {
        return;
    }
    rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition);
    rd_kafka_resp_err_t err =
        pause ? rd_kafka_pause_partitions(ctx->rk, l) : rd_kafka_resume_partitions(ctx->rk, l);
    if (!err && !l->elems[0].err) {
        kp->paused = pause;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* librdkafka 2.0 looks at a resumed partition only when its broker thread next wakes, up to a
 * second later: a seek to where it resumes (after the last message taken, or where it
 * started) wakes that thread at once, as kafka_kick_if_stalled does. */
static void kafka_seek_wake(struct kafka_ctx *ctx, struct kafka_part *kp)
{
    int64_t at = kp->expect >= 0 ? kp->expect : kp->start;
    rd_kafka_topic_partition_list_t *l = at >= 0 ? rd_kafka_topic_partition_list_new(1) : NULL;
    if (!l) {
        return;
    }
    rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset = at;
    rd_kafka_error_t *e = rd_kafka_seek_partitions(ctx->rk, l, 0);
    if (e) {
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Gives the free slots to paused partitions that want one, in turn from ctx->rr. */
static void kafka_slots_fill(struct kafka_ctx *ctx)
{
    bool any_paused;
    size_t n = kafka_fetching(ctx, &any_paused);
    size_t slots = kafka_slots(ctx);
    if (ctx->stopped || !any_paused || n >= slots) {
        return;
    }
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    size_t np = ctx->n_parts;
    for (size_t k = 0; k < np && n < slots; k++) {
        size_t i = (ctx->rr + k) % np;
        struct kafka_part *kp = ctx->parts[i];
        if (!kafka_slot_wanted(ctx, kp, now)) {
            continue;
        }
        kafka_pause_set(ctx, kp, false);
        if (!kp->paused) {
            n++;
            ctx->rr = (i + 1) % np;
            kp->slot_ms = now;
            kafka_seek_wake(ctx, kp);
        }
    }
}

/* kp, fetching, gives its slot to a paused partition if one waits: it is paused (librdkafka
 * drops what it may still bring; fetching resumes after the last message taken) and its turn
 * comes again after every other paused partition's. */
static void kafka_slot_yield(struct kafka_ctx *ctx, struct kafka_part *kp)
{
    bool any_paused;
    if (kp->paused || kp->revoked || !kp->q || ctx->stopped) {
        return;
    }
    (void)kafka_fetching(ctx, &any_paused);
    if (!any_paused) {
        return;
    }
    kafka_pause_set(ctx, kp, true);
    if (!kp->paused) {
        return;
    }
    kp->slot_ms = sl_clock_now_ms(ctx->env.clock);
    for (size_t i = 0; i < ctx->n_parts; i++) {
        if (ctx->parts[i] == kp) {
            ctx->rr = (i + 1) % ctx->n_parts;
            break;
        }
    }
    kafka_slots_fill(ctx);
}

/* Whether kp, fetching, should give its slot up now that its queue is empty: it has read all
 * the broker had when last asked, or it held its slot KAFKA_SLICE_MS x 10 and others wait. */
static bool kafka_slot_done(struct kafka_ctx *ctx, struct kafka_part *kp, int64_t now)
{
    return now - kp->slot_ms >= 10 * KAFKA_SLICE_MS || kafka_caught_up(ctx, kp);
}

static void kafka_tick(uv_timer_t *t)
{
    struct kafka_ctx *ctx = t->data;
    kafka_revoke_poll(ctx); /* a backstop too, and the commit on revoke's time limit */
    kafka_drain(ctx);
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    /* Backstop: a wake-up lost (a full pipe) costs at most one tick. */
    for (size_t i = 0; i < ctx->n_parts && !ctx->stopped; i++) {
        struct kafka_part *kp = ctx->parts[i];
        if (kp->waiting && kp->q && rd_kafka_queue_length(kp->q) > 0) {
            kafka_wake(ctx, kp);
        } else if (kp->waiting && !kp->paused && kp->st_n == 0 &&
                   now - kp->waiting_ms >= KAFKA_SLICE_MS &&
                   (kafka_caught_up(ctx, kp) || now - kp->slot_ms >= 10 * KAFKA_SLICE_MS)) {
            kafka_slot_yield(ctx, kp); /* found empty a while: its slot goes to another */
        } else {
            kafka_kick_if_stalled(ctx, kp, now);
        }
    }
    kafka_slots_fill(ctx); /* slots freed by revokes, by a smaller average message */
    kafka_commit_async(ctx);
}

/* librdkafka's log lines. Its "FAIL" lines (a broker connection failed) are debug: librdkafka
 * reports each of them through error_cb too, with the same text, and kafka_error_cb logs that
 * one, rate-limited. Any thread: it only formats a line. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const struct kafka_ctx *ctx = rd_kafka_opaque(rk);
    enum sl_log_level l = level <= 3   ? SL_LOG_ERROR
                          : level == 4 ? SL_LOG_WARN
                          : level <= 6 ? SL_LOG_INFO
                                       : SL_LOG_DEBUG;
    if (strcmp(fac, "FAIL") == 0) {
        l = SL_LOG_DEBUG;
    }
    sl_log(l, KAFKA_COMP, ctx ? ctx->env.inst : NULL, "librdkafka %s: %s", fac, buf);
}

/* librdkafka's errors, from the consumer queue (kafka_drain, on the loop). */
static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kafka_ctx *ctx = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        sl_log_error(KAFKA_COMP, ctx->env.inst, "fatal consumer error: %s: %s",
                     rd_kafka_err2name(ferr), fatal);
        return;
    }
    if (kafka_secfail_log(ctx, err, reason)) {
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && ctx->secfail_at_ms &&
        sl_clock_now_ms(ctx->env.clock) - ctx->secfail_at_ms < KAFKA_SECFAIL_LOG_EVERY_MS) {
        sl_log_debug(KAFKA_COMP, ctx->env.inst, "%s: %s", rd_kafka_err2name(err), reason);
        return;
    }
    kafka_log_limited(ctx, SL_LOG_WARN, err, "%s: %s, retrying", rd_kafka_err2name(err), reason);
}

/* ---- the fetch path ---- */

static int
kafka_push_message(struct kafka_part *kp, const rd_kafka_message_t *msg, int64_t wall_ms);

/* Takes one message: an error is logged and dropped, a record is checked for a gap in offsets
 * and copied into part->q. Returns the bytes it added to part->q, or SL_ENOMEM (msg is kept). */
static int kafka_take(struct kafka_part *kp, const rd_kafka_message_t *msg, int64_t wall_ms)
{
    struct kafka_ctx *ctx = kp->ctx;
    if (msg->err) {
        kafka_on_error_message(ctx, msg);
        return 0;
    }
    size_t before = sl_recq_bytes(&kp->part->q);
    int r = kafka_push_message(kp, msg, wall_ms);
    if (r < 0) {
        return r;
    }
    if (kp->expect >= 0 && msg->offset > kp->expect) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "%s: offsets %" PRId64 "..%" PRId64 " (%" PRId64 " records) were not "
                    "available: lost to retention if the log was truncated (or compacted, or "
                    "transaction markers), skipping",
                    kp->part->name, kp->expect, msg->offset - 1, msg->offset - kp->expect);
    }
    kp->expect = msg->offset + 1;
    if (kp->first < 0) {
        kp->first = msg->offset;
    }
    size_t added = sl_recq_bytes(&kp->part->q) - before;
    return added > INT32_MAX ? INT32_MAX : (int)added;
}

/* Whether a partition queue that held queued messages before got of them were taken into
 * msgs was at the limits that stop librdkafka's fetching (queued.min.messages, or about
 * queued.max.messages.kbytes at the taken messages' average size). */
static bool kafka_queue_was_full(const struct kafka_ctx *ctx,
                                 rd_kafka_message_t *const *msgs,
                                 size_t got,
                                 size_t queued)
{
    if (queued >= ctx->stall_msgs) {
        return true;
    }
    uint64_t bytes = 0;
    for (size_t i = 0; i < got; i++) {
        bytes += msgs[i]->len + msgs[i]->key_len;
    }
    return (uint64_t)queued * (bytes / got) >= ctx->stall_bytes;
}

/* Folds the sizes of msgs into the average message size (for kafka_slots). */
static void kafka_avg_len_update(struct kafka_ctx *ctx, rd_kafka_message_t *const *msgs, size_t n)
{
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += msgs[i]->len + msgs[i]->key_len;
    }
    uint64_t avg = n ? bytes / n : 0;
    ctx->avg_len = ctx->avg_len ? (ctx->avg_len * 7 + avg) / 8 : avg ? avg : 1;
}

/* Appends up to max_records records (about max_bytes) from kp's stash, then from its queue
 * (see "About fetching"). */
static int kafka_fetch(void *vctx, struct sl_part *part, size_t max_records, size_t max_bytes)
{
    struct kafka_ctx *ctx = vctx;
    struct kafka_part *kp = part->src;
    if (!kp || kp->revoked) {
        return 0;
    }
    if (max_records == 0) {
        max_records = 1;
    }
    int64_t wall_ms = sl_clock_wall_ms(ctx->env.clock);
    size_t n = 0;
    size_t bytes = 0;
    int r = 0;
    for (;;) {
        /* the stash first: it holds what came before anything still in the queue */
        while (kp->st_n > 0 && n < max_records && (n == 0 || bytes < max_bytes)) {
            rd_kafka_message_t *msg = kp->stage[kp->st_head];
            if ((r = kafka_take(kp, msg, wall_ms)) < 0) {
                break;
            }
            n += msg->err ? 0 : 1;
            bytes += (size_t)r;
            rd_kafka_message_destroy(msg);
            kp->st_head = (kp->st_head + 1) % kp->st_cap;
            kp->st_n--;
        }
        if (r < 0 || kp->st_n > 0 || !kp->q || n >= max_records || (n > 0 && bytes >= max_bytes)) {
            break;
        }
        /* The stash is empty and has room for a whole chunk (st_cap >= KAFKA_CHUNK): the
         * chunk goes there, and what the limits leave of it stays for the next fetch. */
        size_t want = max_records - n < KAFKA_CHUNK ? max_records - n : KAFKA_CHUNK;
        size_t queued = rd_kafka_queue_length(kp->q);
        ssize_t got = rd_kafka_consume_batch_queue(kp->q, 0, kp->stage, want);
        if (got <= 0) {
            break;
        }
        if (!kp->maybe_stalled) { /* once set, it stays until the kick */
            kp->maybe_stalled = kafka_queue_was_full(ctx, kp->stage, (size_t)got, queued);
        }
        kafka_avg_len_update(ctx, kp->stage, (size_t)got);
        kp->st_head = 0;
        kp->st_n = (size_t)got;
    }
    if (n > 0 || r < 0) {
        return n > 0 ? (int)n : r;
    }
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    if (!kp->waiting) {
        kp->waiting = true;
        kp->waiting_ms = now;
    }
    if (!kp->paused && kp->q && kafka_slot_done(ctx, kp, now)) {
        kafka_slot_yield(ctx, kp);
    }
    return 0;
}

/* ---- records: meta encoding ---- */

struct kafka_msgview {
    int64_t offset;
    int64_t ts;
    int tstype; /* rd_kafka_timestamp_type_t */
    const void *key;
    size_t key_len; /* key NULL: null key */
    const void *value;
    size_t value_len; /* value NULL: tombstone */
    const rd_kafka_headers_t *hdrs;
};

/* Appends one record made of v to kp's queue. wall_ms stands in for a missing timestamp. */
static int kafka_push_view(struct kafka_part *kp, const struct kafka_msgview *v, int64_t wall_ms)
{
    size_t n_hdrs = v->hdrs ? rd_kafka_header_cnt(v->hdrs) : 0;
    size_t meta_len = KAFKA_M_FIXED + (v->key ? v->key_len : 0) + 4;
    size_t hdr_bytes = 0;
    for (size_t i = 0; i < n_hdrs; i++) {
        const char *name;
        const void *val;
        size_t size;
        if (rd_kafka_header_get_all(v->hdrs, i, &name, &val, &size) == 0) {
            meta_len += 8 + strlen(name) + (val ? size : 0);
            hdr_bytes += 2 * strlen(name) + 5 * (val ? size : 0) + 8;
        }
    }
    /* Would the event of this one record pass the 6 MB limit? */
    size_t est = kp->open_len + kp->rec_head_len + 256 + sl_enc_base64_len(v->key_len) +
                 sl_enc_base64_len(v->value_len) + hdr_bytes;
    uint32_t flags = 0;
    bool keep_meta = true;
    if (est > SL_BATCH_MAX_PAYLOAD_BYTES) {
        flags |= SL_REC_OVERSIZE;
        keep_meta = meta_len <= 64 * 1024;
    }
    if (meta_len > UINT32_MAX || v->value_len > UINT32_MAX) {
        flags |= SL_REC_OVERSIZE;
        keep_meta = false;
    }
    unsigned char stackbuf[512];
    unsigned char *meta = stackbuf;
    if (keep_meta && meta_len > sizeof(stackbuf) && !(meta = sl_malloc(meta_len))) {
        return SL_ENOMEM;
    }
    size_t o = 0;
    if (keep_meta) {
        meta[o++] = (unsigned char)((v->key ? KAFKA_M_KEY : 0) | (v->value ? 0 : KAFKA_M_NULLVAL));
        meta[o++] = (unsigned char)v->tstype;
        memcpy(meta + o, &v->ts, 8);
        o += 8;
        kafka_put_u32(meta + o, v->key ? (uint32_t)v->key_len : 0);
        o += 4;
        if (v->key && v->key_len) {
            memcpy(meta + o, v->key, v->key_len);
            o += v->key_len;
        }
        size_t cnt_at = o;
        o += 4;
        uint32_t cnt = 0;
        for (size_t i = 0; i < n_hdrs; i++) {
            const char *name;
            const void *val;
            size_t size;
            if (rd_kafka_header_get_all(v->hdrs, i, &name, &val, &size) != 0) {
                continue;
            }
            size_t nl = strlen(name);
            kafka_put_u32(meta + o, (uint32_t)nl);
            memcpy(meta + o + 4, name, nl);
            o += 4 + nl;
            kafka_put_u32(meta + o, val ? (uint32_t)size : KAFKA_M_NULLHDR);
            o += 4;
            if (val && size) {
                memcpy(meta + o, val, size);
                o += size;
            }
            cnt++;
        }
        kafka_put_u32(meta + cnt_at, cnt);
    }
    bool data = !(flags & SL_REC_OVERSIZE) && v->value;
    int64_t arrival = v->tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? v->ts : wall_ms;
    int r = sl_recq_push(&kp->part->q, data ? v->value : NULL, data ? (uint32_t)v->value_len : 0,
                         keep_meta ? meta : NULL, (uint32_t)o, (uint64_t)v->offset,
                         (uint64_t)v->offset + 1, arrival, flags);
    if (meta != stackbuf) {
        sl_free(meta);
    }
    if (r == 0 && (flags & SL_REC_OVERSIZE)) {
        sl_log_warn(KAFKA_COMP, kp->ctx->env.inst,
                    "%s: the record at offset %" PRId64 " (%zu bytes) does not fit in one "
                    "invocation: delivered as a failed record (MaximumPayloadSizeExceeded)",
                    kp->part->name, v->offset, v->value_len + v->key_len);
    }
    return r;
}

static int kafka_push_message(struct kafka_part *kp, const rd_kafka_message_t *msg, int64_t wall_ms)
{
    struct kafka_msgview v = {0};
    rd_kafka_timestamp_type_t tstype;
    v.offset = msg->offset;
    v.ts = rd_kafka_message_timestamp(msg, &tstype);
    v.tstype = (int)tstype;
    v.key = msg->key;
    v.key_len = msg->key ? msg->key_len : 0;
    v.value = msg->payload;
    v.value_len = msg->payload ? msg->len : 0;
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        v.hdrs = hdrs;
    }
    return kafka_push_view(kp, &v, wall_ms);
}

/* A record's meta, decoded. Pointers borrow from the queue. */
struct kafka_meta {
    bool has_key;
    bool null_value;
    int tstype;
    int64_t ts;
    const unsigned char *key;
    uint32_t key_len;
    uint32_t n_hdrs;
    const unsigned char *hdrs; /* n_hdrs entries as written by kafka_push_view */
};

static void
kafka_meta_read(const struct sl_part *part, const struct sl_record *rec, struct kafka_meta *m)
{
    memset(m, 0, sizeof(*m));
    if (rec->meta_len < KAFKA_M_FIXED + 4) {
        m->tstype = RD_KAFKA_TIMESTAMP_CREATE_TIME;
        m->ts = rec->arrival_ms;
        m->null_value = rec->len == 0 && !(rec->flags & SL_REC_OVERSIZE);
        return;
    }
    const unsigned char *p = (const unsigned char *)sl_recq_meta(&part->q, rec);
    m->has_key = p[0] & KAFKA_M_KEY;
    m->null_value = p[0] & KAFKA_M_NULLVAL;
    m->tstype = p[1];
    memcpy(&m->ts, p + 2, 8);
    m->key_len = kafka_get_u32(p + 10);
    m->key = p + KAFKA_M_FIXED;
    m->n_hdrs = kafka_get_u32(p + KAFKA_M_FIXED + m->key_len);
    m->hdrs = p + KAFKA_M_FIXED + m->key_len + 4;
}

/* Walks to the next header: name/name_len, value/value_len (value NULL for a null value). */
static const unsigned char *kafka_meta_header(const unsigned char *h,
                                              const char **ret_name,
                                              uint32_t *ret_name_len,
                                              const unsigned char **ret_val,
                                              uint32_t *ret_val_len)
{
    *ret_name_len = kafka_get_u32(h);
    *ret_name = (const char *)h + 4;
    h += 4 + *ret_name_len;
    uint32_t vl = kafka_get_u32(h);
    h += 4;
    if (vl == KAFKA_M_NULLHDR) {
        *ret_val = NULL;
        *ret_val_len = 0;
        return h;
    }
    *ret_val = h;
    *ret_val_len = vl;
    return h + vl;
}

/* ---- encoding ---- */

static int kafka_encode_open(void *vctx, struct sl_part *part, struct sl_buf *out)
{
    (void)vctx;
    const struct kafka_part *kp = part->src;
    return sl_buf_append(out, kp->open, kp->open_len);
}

static int kafka_encode_close(void *vctx, struct sl_part *part, struct sl_buf *out)
{
    (void)vctx;
    (void)part;
    return sl_buf_puts(out, "]}}");
}

/* A batch goes on with part's records: ],"<topic>-<p>":[ */
static int kafka_encode_next_part(void *vctx, struct sl_part *part, struct sl_buf *out)
{
    (void)vctx;
    int r = sl_buf_puts(out, "],");
    r = r < 0 ? r : sl_enc_json_str(out, part->id, strlen(part->id));
    return r < 0 ? r : sl_buf_puts(out, ":[");
}

static const char *kafka_tstype_name(int tstype)
{
    switch (tstype) {
    case RD_KAFKA_TIMESTAMP_CREATE_TIME:
        return "CREATE_TIME";
    case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME:
        return "LOG_APPEND_TIME";
    default:
        return "NO_TIMESTAMP_TYPE";
    }
}

/* ,"timestampType":"<name>" in one piece (encode_record, per record). */
static const char *kafka_tstype_field(int tstype)
{
    switch (tstype) {
    case RD_KAFKA_TIMESTAMP_CREATE_TIME:
        return ",\"timestampType\":\"CREATE_TIME\"";
    case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME:
        return ",\"timestampType\":\"LOG_APPEND_TIME\"";
    default:
        return ",\"timestampType\":\"NO_TIMESTAMP_TYPE\"";
    }
}

/* Appends bytes as a JSON array of signed bytes: [104,-61,-87]. */
static int kafka_enc_signed_bytes(struct sl_buf *out, const unsigned char *p, size_t n)
{
    if (sl_buf_reserve(out, 2 + n * 5) < 0) {
        return SL_ENOMEM;
    }
    char *w = out->data + out->len;
    *w++ = '[';
    for (size_t i = 0; i < n; i++) {
        int v = (int)(signed char)p[i];
        if (i) {
            *w++ = ',';
        }
        if (v < 0) {
            *w++ = '-';
            v = -v;
        }
        if (v >= 100) {
            *w++ = (char)('0' + v / 100);
        }
        if (v >= 10) {
            *w++ = (char)('0' + v / 10 % 10);
        }
        *w++ = (char)('0' + v % 10);
    }
    *w++ = ']';
    out->len = (size_t)(w - out->data);
    out->data[out->len] = '\0';
    return 0;
}

static int kafka_encode_record(void *vctx,
                               struct sl_part *part,
                               const struct sl_record *rec,
                               struct sl_buf *out)
{
    (void)vctx;
    const struct kafka_part *kp = part->src;
    struct kafka_meta m;
    kafka_meta_read(part, rec, &m);
    size_t start = out->len;
    int r = sl_buf_append(out, kp->rec_head, kp->rec_head_len);
    r = r < 0 ? r : sl_enc_u64(out, rec->pos);
    r = r < 0 ? r : sl_buf_puts(out, m.ts < 0 ? ",\"timestamp\":-" : ",\"timestamp\":");
    r = r < 0 ? r : sl_enc_u64(out, m.ts < 0 ? 0 - (uint64_t)m.ts : (uint64_t)m.ts);
    r = r < 0 ? r : sl_buf_puts(out, kafka_tstype_field(m.tstype));
    if (r == 0 && m.has_key) {
        r = sl_buf_puts(out, ",\"key\":\"");
        r = r < 0 ? r : sl_enc_base64(out, m.key, m.key_len);
        r = r < 0 ? r : sl_buf_puts(out, "\"");
    }
    if (r == 0 && !m.null_value && !(rec->flags & SL_REC_OVERSIZE)) {
        r = sl_buf_puts(out, ",\"value\":\"");
        r = r < 0 ? r : sl_enc_base64(out, rec->len ? sl_recq_data(&part->q, rec) : "", rec->len);
        r = r < 0 ? r : sl_buf_puts(out, "\"");
    }
    r = r < 0 ? r : sl_buf_puts(out, ",\"headers\":[");
    const unsigned char *h = m.hdrs;
    for (uint32_t i = 0; i < m.n_hdrs && r == 0; i++) {
        const char *name;
        uint32_t nl, vl;
        const unsigned char *val;
        h = kafka_meta_header(h, &name, &nl, &val, &vl);
        r = sl_buf_puts(out, i ? ",{" : "{");
        r = r < 0 ? r : sl_enc_json_str(out, name, nl);
        r = r < 0 ? r : sl_buf_puts(out, ":");
        r = r < 0 ? r : kafka_enc_signed_bytes(out, val, val ? vl : 0);
        r = r < 0 ? r : sl_buf_puts(out, "}");
    }
    r = r < 0 ? r : sl_buf_puts(out, "]}");
    if (r < 0) {
        sl_buf_truncate(out, start);
    }
    return r;
}

static int kafka_format_item_id(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)vctx;
    const struct kafka_part *kp = part->src;
    int n = snprintf(buf, len, "%s-%" PRId32 "-%" PRIu64, kp->topic, kp->partition, rec->pos);
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

static size_t kafka_record_key(void *vctx,
                               struct sl_part *part,
                               const struct sl_record *rec,
                               const char **ret_key)
{
    (void)vctx;
    struct kafka_meta m;
    kafka_meta_read(part, rec, &m);
    *ret_key = (const char *)m.key;
    return m.has_key ? m.key_len : 0;
}

/* True when p[0..n) is valid UTF-8 without NUL (cJSON strings stop at NUL). */
static bool kafka_is_utf8(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        size_t k;
        uint32_t cp;
        if (c == 0) {
            return false;
        } else if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + k >= n) {
            return false;
        }
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += k + 1;
    }
    return true;
}

/* A payload for the filter document: JSON when it parses as exactly one value, else the UTF-8
 * string; NULL (left out) when it is not UTF-8: only metadata filters apply then (esm.md §5). */
static cJSON *kafka_filter_payload(const unsigned char *p, size_t n)
{
    if (!kafka_is_utf8(p, n)) {
        return NULL;
    }
    char *tmp = sl_malloc(n + 1);
    if (!tmp) {
        return NULL;
    }
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    const char *end = NULL;
    cJSON *v = n ? cJSON_ParseWithOpts(tmp, &end, 0) : NULL;
    if (v) {
        for (const char *q = end; *q; q++) {
            if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n') {
                cJSON_Delete(v);
                v = NULL;
                break;
            }
        }
    }
    if (!v) {
        v = cJSON_CreateString(tmp);
    }
    sl_free(tmp);
    return v;
}

static cJSON *kafka_filter_doc(void *vctx, struct sl_part *part, const struct sl_record *rec)
{
    (void)vctx;
    const struct kafka_part *kp = part->src;
    struct kafka_meta m;
    kafka_meta_read(part, rec, &m);
    cJSON *doc = cJSON_CreateObject();
    if (!doc || !cJSON_AddStringToObject(doc, "topic", kp->topic) ||
        !cJSON_AddNumberToObject(doc, "partition", kp->partition) ||
        !cJSON_AddNumberToObject(doc, "offset", (double)rec->pos) ||
        !cJSON_AddNumberToObject(doc, "timestamp", (double)m.ts) ||
        !cJSON_AddStringToObject(doc, "timestampType", kafka_tstype_name(m.tstype))) {
        goto fail;
    }
    if (m.has_key) {
        cJSON *k = kafka_filter_payload(m.key, m.key_len);
        if (k && !cJSON_AddItemToObject(doc, "key", k)) {
            cJSON_Delete(k);
            goto fail;
        }
    }
    if (!m.null_value && !(rec->flags & SL_REC_OVERSIZE)) {
        cJSON *v =
            kafka_filter_payload((const unsigned char *)sl_recq_data(&part->q, rec), rec->len);
        if (v && !cJSON_AddItemToObject(doc, "value", v)) {
            cJSON_Delete(v);
            goto fail;
        }
    }
    cJSON *hs = cJSON_AddArrayToObject(doc, "headers");
    if (!hs) {
        goto fail;
    }
    const unsigned char *h = m.hdrs;
    for (uint32_t i = 0; i < m.n_hdrs; i++) {
        const char *name;
        uint32_t nl, vl;
        const unsigned char *val;
        h = kafka_meta_header(h, &name, &nl, &val, &vl);
        char *nm = sl_strndup(name, nl);
        cJSON *o = cJSON_CreateObject();
        cJSON *arr = cJSON_CreateArray();
        if (!nm || !o || !arr) {
            sl_free(nm);
            cJSON_Delete(o);
            cJSON_Delete(arr);
            goto fail;
        }
        for (uint32_t j = 0; val && j < vl; j++) {
            cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)(signed char)val[j]));
        }
        cJSON_AddItemToObject(o, nm, arr);
        cJSON_AddItemToArray(hs, o);
        sl_free(nm);
    }
    return doc;
fail:
    cJSON_Delete(doc);
    return NULL;
}

/* "KafkaBatchInfo":{"batchSize":n,["eventSourceArn":..,]"bootstrapServers":..,"payloadSize":..,
 * "recordsInfo":{"<topic>-<p>":{"firstRecordOffset":"..","lastRecordOffset":"..",
 * "firstRecordTimestamp":"<ISO 8601>","lastRecordTimestamp":"<ISO 8601>"},...}} (esm.md §4.4),
 * one recordsInfo member per partition of the batch. payloadSize: the value and key bytes of
 * the records the runs cover. */
static int kafka_encode_batch_info(void *vctx,
                                   const struct sl_batch_run *runs,
                                   size_t n_runs,
                                   struct sl_buf *out)
{
    struct kafka_ctx *ctx = vctx;
    size_t start = out->len;
    uint64_t payload = 0;
    size_t n = 0;
    for (size_t k = 0; k < n_runs; k++) {
        const struct sl_batch_run *run = &runs[k];
        size_t count = sl_recq_count(&run->part->q);
        n += run->n;
        for (size_t i = 0; i < count; i++) {
            const struct sl_record *rec = sl_recq_at(&run->part->q, i);
            if (rec->pos >= run->first->pos && rec->pos <= run->last->pos &&
                !(rec->flags & SL_REC_FILTERED)) {
                payload += rec->len + rec->meta_len;
            }
        }
    }
    int r = sl_buf_printf(out, "\"KafkaBatchInfo\":{\"batchSize\":%zu", n);
    if (r == 0 && ctx->msk) {
        r = sl_buf_puts(out, ",\"eventSourceArn\":");
        r = r < 0 ? r : sl_enc_json_str(out, ctx->env.arn, strlen(ctx->env.arn));
    }
    r = r < 0 ? r : sl_buf_puts(out, ",\"bootstrapServers\":");
    r = r < 0 ? r : sl_enc_json_str(out, ctx->servers, strlen(ctx->servers));
    r = r < 0 ? r : sl_buf_printf(out, ",\"payloadSize\":%" PRIu64 ",\"recordsInfo\":{", payload);
    for (size_t k = 0; k < n_runs && r == 0; k++) {
        const struct sl_batch_run *run = &runs[k];
        r = k > 0 ? sl_buf_puts(out, ",") : 0;
        r = r < 0 ? r : sl_enc_json_str(out, run->part->id, strlen(run->part->id));
        r = r < 0 ? r
                  : sl_buf_printf(out,
                                  ":{\"firstRecordOffset\":\"%" PRIu64
                                  "\",\"lastRecordOffset\":\"%" PRIu64
                                  "\",\"firstRecordTimestamp\":\"",
                                  run->first->pos, run->last->pos);
        r = r < 0 ? r : sl_enc_iso8601_ms(out, run->first->arrival_ms);
        r = r < 0 ? r : sl_buf_puts(out, "\",\"lastRecordTimestamp\":\"");
        r = r < 0 ? r : sl_enc_iso8601_ms(out, run->last->arrival_ms);
        r = r < 0 ? r : sl_buf_puts(out, "\"}");
    }
    r = r < 0 ? r : sl_buf_puts(out, "}}");
    if (r < 0) {
        sl_buf_truncate(out, start);
    }
    return r;
}

/* AWS's KafkaBatchInfo for the kafka:// destination, one record per message:
 * {"batchSize":1,["eventSourceArn",]"bootstrapServers","payloadSize","recordInfo":{"offset",
 * "timestamp"}}, the offset as a string as in recordsInfo. */
static int kafka_encode_record_info(void *vctx,
                                    struct sl_part *part,
                                    const struct sl_record *rec,
                                    struct sl_buf *out)
{
    (void)part;
    struct kafka_ctx *ctx = vctx;
    size_t start = out->len;
    int r = sl_buf_puts(out, "\"KafkaBatchInfo\":{\"batchSize\":1");
    if (r == 0 && ctx->msk) {
        r = sl_buf_puts(out, ",\"eventSourceArn\":");
        r = r < 0 ? r : sl_enc_json_str(out, ctx->env.arn, strlen(ctx->env.arn));
    }
    r = r < 0 ? r : sl_buf_puts(out, ",\"bootstrapServers\":");
    r = r < 0 ? r : sl_enc_json_str(out, ctx->servers, strlen(ctx->servers));
    r = r < 0 ? r
              : sl_buf_printf(out,
                              ",\"payloadSize\":%" PRIu32 ",\"recordInfo\":{\"offset\":\"%" PRIu64
                              "\",\"timestamp\":\"",
                              rec->len + rec->meta_len, rec->pos);
    r = r < 0 ? r : sl_enc_iso8601_ms(out, rec->arrival_ms);
    r = r < 0 ? r : sl_buf_puts(out, "\"}}");
    if (r < 0) {
        sl_buf_truncate(out, start);
    }
    return r;
}

static int64_t kafka_lag(void *vctx, struct sl_part *part)
{
    struct kafka_ctx *ctx = vctx;
    const struct kafka_part *kp = part->src;
    if (!kp || !ctx->rk) {
        return -1;
    }
    int64_t lo = -1;
    int64_t hi = -1;
    if (rd_kafka_get_watermark_offsets(ctx->rk, kp->topic, kp->partition, &lo, &hi) != 0 ||
        hi < 0) {
        return -1;
    }
    /* Nothing acknowledged or committed yet: everything from where reading began is lag (the
     * first offset received; before that the log start, or the end for LATEST). */
    int64_t done = kp->acked >= 0                     ? kp->acked
                   : kp->committed >= 0               ? kp->committed
                   : kp->first >= 0                   ? kp->first
                   : kp->start == RD_KAFKA_OFFSET_END ? hi
                                                      : lo;
    if (done < 0) {
        return -1;
    }
    if (done < lo) {
        done = lo;
    }
    return hi > done ? hi - done : 0;
}

/* True from start() until the first assignment, at most KAFKA_SETTLE_MS (joining the group),
 * then while a partition of the assignment waits for the broker to acknowledge the commit of
 * where it starts (a group without a committed offset), at most KAFKA_SETTLE_MS after it was
 * assigned: until then the partition has not started, and --until-idle that exited meanwhile
 * would leave the group without a start (fini would still try, bounded). Also while a
 * partition has had no fetch answer from the broker (its high watermark is unknown; its first
 * records may be on the way), at most KAFKA_SETTLE_MS after it was assigned: an empty local
 * queue says nothing before that. */
static bool kafka_settling(void *vctx)
{
    struct kafka_ctx *ctx = vctx;
    if (!ctx->rk || ctx->stopped) {
        return false;
    }
    int64_t now = sl_clock_now_ms(ctx->env.clock);
    if (!ctx->assigned_once) {
        return now - ctx->started_ms < KAFKA_SETTLE_MS;
    }
    for (size_t i = 0; i < ctx->n_parts; i++) {
        struct kafka_part *kp = ctx->parts[i];
        if (kp->revoked) {
            continue;
        }
        if (kp->committed < kp->start && now < kp->start_by_ms) {
            return true;
        }
        if (!kp->answered) {
            int64_t lo = -1;
            int64_t hi = -1;
            kp->answered =
                rd_kafka_get_watermark_offsets(ctx->rk, kp->topic, kp->partition, &lo, &hi) == 0 &&
                hi >= 0;
            if (!kp->answered && now - kp->assigned_ms < KAFKA_SETTLE_MS) {
                return true;
            }
        }
    }
    return false;
}

/* ---- life cycle ---- */

static void kafka_handle_closed(uv_handle_t *h)
{
    sl_free(h);
}

static void kafka_io_closed(uv_handle_t *h)
{
    struct kafka_io *io = (struct kafka_io *)h;
    (void)close(io->rfd);
    (void)close(io->wfd);
    sl_free(io);
}

static int kafka_start(void *vctx)
{
    struct kafka_ctx *ctx = vctx;
    char err[512];
    int fds[2] = {-1, -1};
    if (!ctx->conf) {
        return SL_EINVAL;
    }
    ctx->rk = rd_kafka_new(RD_KAFKA_CONSUMER, ctx->conf, err, sizeof(err));
    if (!ctx->rk) {
        sl_log_error(KAFKA_COMP, ctx->env.inst, "cannot create the consumer: %s", err);
        return SL_ECONFIG;
    }
    ctx->conf = NULL; /* rd_kafka_new took it */
    ctx->started_ms = sl_clock_now_ms(ctx->env.clock);
    (void)rd_kafka_poll_set_consumer(ctx->rk);
    if (!(ctx->cq = rd_kafka_queue_get_consumer(ctx->rk))) {
        return SL_ENOMEM;
    }
    if (!(ctx->rq = rd_kafka_queue_new(ctx->rk))) {
        return SL_ENOMEM;
    }
    if (!(ctx->timer = sl_calloc(1, sizeof(*ctx->timer)))) {
        return SL_ENOMEM;
    }
    (void)uv_timer_init(ctx->env.loop, ctx->timer);
    ctx->timer->data = ctx;
    if (!(ctx->more = sl_calloc(1, sizeof(*ctx->more)))) {
        return SL_ENOMEM;
    }
    (void)uv_idle_init(ctx->env.loop, ctx->more);
    ctx->more->data = ctx;
    struct kafka_io *io = sl_calloc(1, sizeof(*io));
    if (!io) {
        return SL_ENOMEM;
    }
    if (pipe(fds) < 0) {
        sl_log_error(KAFKA_COMP, ctx->env.inst, "pipe: %s", strerror(errno));
        sl_free(io);
        return SL_EIO;
    }
    for (int i = 0; i < 2; i++) {
        (void)fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        (void)fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    io->rfd = fds[0];
    io->wfd = fds[1];
    if (uv_poll_init(ctx->env.loop, &io->poll, fds[0]) < 0) {
        (void)close(fds[0]);
        (void)close(fds[1]);
        sl_free(io);
        return SL_EIO;
    }
    io->poll.data = ctx;
    ctx->io = io;
    static const uint32_t consumer_key = 0;
    rd_kafka_queue_io_event_enable(ctx->cq, fds[1], &consumer_key, sizeof(consumer_key));
    static const uint32_t revoke_key = KAFKA_REVOKE_KEY;
    rd_kafka_queue_io_event_enable(ctx->rq, fds[1], &revoke_key, sizeof(revoke_key));
    (void)uv_poll_start(&io->poll, UV_READABLE, kafka_io_cb);
    (void)uv_timer_start(ctx->timer, kafka_tick, KAFKA_TICK_MS, KAFKA_TICK_MS);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new((int)ctx->topics.n);
    if (!topics) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < ctx->topics.n; i++) {
        (void)rd_kafka_topic_partition_list_add(topics, ctx->topics.items[i],
                                                RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(ctx->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        sl_log_error(KAFKA_COMP, ctx->env.inst, "cannot subscribe: %s", rd_kafka_err2str(e));
        return SL_EINVAL;
    }
    sl_log_info(KAFKA_COMP, ctx->env.inst, "consuming %s%s from %s in group %s",
                ctx->topics.items[0], ctx->topics.n > 1 ? " (and more)" : "", ctx->servers,
                ctx->group_id);
    return 0;
}

static void kafka_stop(void *vctx)
{
    struct kafka_ctx *ctx = vctx;
    ctx->stopped = true;
    /* No librdkafka thread may write to the pipe once it is closed (its fd could be reused). */
    if (ctx->cq) {
        rd_kafka_queue_io_event_enable(ctx->cq, -1, NULL, 0);
    }
    if (ctx->rq) {
        rd_kafka_queue_io_event_enable(ctx->rq, -1, NULL, 0);
    }
    for (size_t i = 0; i < ctx->n_parts; i++) {
        if (ctx->parts[i]->q) {
            rd_kafka_queue_io_event_enable(ctx->parts[i]->q, -1, NULL, 0);
        }
    }
    if (ctx->io) {
        (void)uv_poll_stop(&ctx->io->poll);
        uv_close((uv_handle_t *)&ctx->io->poll, kafka_io_closed);
        ctx->io = NULL;
    }
    if (ctx->timer) {
        (void)uv_timer_stop(ctx->timer);
        uv_close((uv_handle_t *)ctx->timer, kafka_handle_closed);
        ctx->timer = NULL;
    }
    if (ctx->more) {
        (void)uv_idle_stop(ctx->more);
        uv_close((uv_handle_t *)ctx->more, kafka_handle_closed);
        ctx->more = NULL;
    }
}

static void kafka_part_release(void *vctx, struct sl_part *part)
{
    struct kafka_ctx *ctx = vctx;
    struct kafka_part *kp = part->src;
    if (!kp) {
        return;
    }
    if (ctx->stopped && !kp->revoked && kp->acked > kp->committed && ctx->rk) {
        if (!ctx->final) {
            ctx->final = rd_kafka_topic_partition_list_new(8);
        }
        if (ctx->final) {
            rd_kafka_topic_partition_list_add(ctx->final, kp->topic, kp->partition)->offset =
                kp->acked;
        }
    }
    for (size_t i = 0; i < ctx->n_parts; i++) {
        if (ctx->parts[i] == kp) {
            memmove(&ctx->parts[i], &ctx->parts[i + 1],
                    (ctx->n_parts - i - 1) * sizeof(*ctx->parts));
            ctx->n_parts--;
            break;
        }
    }
    if (ctx->last_hit == kp) {
        ctx->last_hit = NULL;
    }
    part->src = NULL;
    kafka_part_free(kp);
}

/* Shutdown (fini, after stop: the loop no longer serves the revoke queue): waits for the answer
 * to a commit on revoke in flight, within what is left of its KAFKA_BLOCK_TIMEOUT_MS, so that it
 * is neither sent twice (fini's own commit leaves revoked partitions out) nor left behind when
 * the consumer closes; then handles what waited for it (stopped: assigns nothing). */
static void kafka_revoke_wait(struct kafka_ctx *ctx)
{
    while (ctx->revoking.offsets) {
        int64_t left_ms = ctx->revoking.deadline_ms - sl_clock_now_ms(ctx->env.clock);
        if (left_ms <= 0) {
            kafka_revoke_end(ctx, RD_KAFKA_RESP_ERR__TIMED_OUT, NULL);
            break;
        }
        rd_kafka_event_t *ev = rd_kafka_queue_poll(ctx->rq, left_ms < 100 ? (int)left_ms : 100);
        if (ev) {
            kafka_revoke_event(ctx, ev);
            rd_kafka_event_destroy(ev);
        }
    }
    kafka_deferred_replay(ctx);
}

/* Leaves the group within KAFKA_CLOSE_TIMEOUT_MS, serving the rebalance it causes. */
static void kafka_close_consumer(struct kafka_ctx *ctx)
{
    rd_kafka_queue_t *q = rd_kafka_queue_new(ctx->rk);
    rd_kafka_error_t *error = q ? rd_kafka_consumer_close_queue(ctx->rk, q) : NULL;
    if (!q || error) {
        if (error) {
            sl_log_warn(KAFKA_COMP, ctx->env.inst, "closing the consumer: %s",
                        rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
        if (q) {
            rd_kafka_queue_destroy(q);
        }
        return;
    }
    int64_t deadline = sl_clock_now_ms(ctx->env.clock) + KAFKA_CLOSE_TIMEOUT_MS;
    while (!rd_kafka_consumer_closed(ctx->rk) && sl_clock_now_ms(ctx->env.clock) < deadline) {
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 100);
        if (!ev) {
            continue;
        }
        if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE) {
            (void)rd_kafka_assign(ctx->rk, NULL);
        }
        rd_kafka_event_destroy(ev);
    }
    if (!rd_kafka_consumer_closed(ctx->rk)) {
        sl_log_warn(KAFKA_COMP, ctx->env.inst,
                    "leaving the group took over %dms; the group rebalances after "
                    "session.timeout.ms",
                    KAFKA_CLOSE_TIMEOUT_MS);
    }
    rd_kafka_queue_destroy(q);
}

static void kafka_fini(void *vctx)
{
    struct kafka_ctx *ctx = vctx;
    kafka_stop(ctx);
    kafka_lookups_abandon(ctx); /* before rk goes: a running lookup uses it */
    if (ctx->rk) {
        kafka_revoke_wait(ctx); /* its partitions are not committed again below */
        /* What was acknowledged and not committed: live partitions and released ones. */
        rd_kafka_topic_partition_list_t *l = kafka_commit_list(ctx, NULL);
        for (size_t i = 0; i < ctx->n_parts; i++) {
            struct kafka_part *kp = ctx->parts[i];
            if (!kp->revoked && kp->acked > kp->committed) {
                if (!l) {
                    l = rd_kafka_topic_partition_list_new((int)ctx->n_parts);
                }
                if (l && !rd_kafka_topic_partition_list_find(l, kp->topic, kp->partition)) {
                    rd_kafka_topic_partition_list_add(l, kp->topic, kp->partition)->offset =
                        kp->acked;
                }
            }
        }
        for (int i = 0; ctx->final && i < ctx->final->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &ctx->final->elems[i];
            if (!l) {
                l = rd_kafka_topic_partition_list_new(ctx->final->cnt);
            }
            if (l) {
                rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->offset;
            }
        }
        if (l) {
            kafka_commit_bounded(ctx, l, KAFKA_CLOSE_TIMEOUT_MS);
            rd_kafka_topic_partition_list_destroy(l);
        }
        for (size_t i = 0; i < ctx->n_parts; i++) {
            kafka_queue_close(ctx->parts[i]); /* before the handle they belong to goes */
            kafka_stage_clear(ctx->parts[i]);
        }
        kafka_close_consumer(ctx);
        if (ctx->rq) {
            rd_kafka_queue_destroy(ctx->rq); /* a late answer in it goes with it */
            ctx->rq = NULL;
        }
        if (ctx->cq) {
            rd_kafka_queue_destroy(ctx->cq);
            ctx->cq = NULL;
        }
        rd_kafka_destroy_flags(ctx->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        ctx->rk = NULL;
    }
    while (ctx->n_parts > 0) {
        struct kafka_part *kp = ctx->parts[--ctx->n_parts];
        kafka_part_free(kp); /* not kp->part: the mapping may have freed it already */
    }
    sl_free(ctx->parts);
    ctx->parts = NULL;
    if (ctx->final) {
        rd_kafka_topic_partition_list_destroy(ctx->final);
        ctx->final = NULL;
    }
    if (ctx->leftover) {
        rd_kafka_topic_partition_list_destroy(ctx->leftover);
        ctx->leftover = NULL;
    }
    while (ctx->deferred) { /* only without rk: kafka_revoke_wait replayed them */
        struct kafka_deferred *d = ctx->deferred;
        ctx->deferred = d->next;
        rd_kafka_topic_partition_list_destroy(d->parts);
        sl_free(d);
    }
    if (ctx->conf) {
        rd_kafka_conf_destroy(ctx->conf);
        ctx->conf = NULL;
    }
    sl_free(ctx->servers);
    sl_free(ctx->group_id);
    ctx->servers = ctx->group_id = NULL;
}

const struct sl_source_ops sl_source_kafka = {
    .abi = SL_SOURCE_ABI,
    .name = "kafka",
    .scheme = KAFKA_SCHEME,
    .arn_prefix = KAFKA_MSK_PREFIX,
    .opts = kafka_opts,
    .ctx_size = sizeof(struct kafka_ctx),
    .event_open = "{\"records\":{\"\":[",
    .event_sep = ",",
    .event_close = "]}}",
    .batch_size_default = 100,
    .batch_size_max = 10000,
    .starting_position_required = true,
    .at_timestamp_supported = true,
    .keeps_positions = true,
    .window_ms_default = 500,
    .window_from_first_record = true,
    .filter_payload_fields = (const char *const[]){"key", "value", NULL},
    .filter_payload_mismatch_ignored = true,
    .check = kafka_check,
    .init = kafka_init,
    .start = kafka_start,
    .fetch = kafka_fetch,
    .encode_record = kafka_encode_record,
    .format_pos = NULL,
    .format_item_id = kafka_format_item_id,
    .record_key = kafka_record_key,
    .filter_doc = kafka_filter_doc,
    .encode_batch_info = kafka_encode_batch_info,
    .encode_record_info = kafka_encode_record_info,
    .settling = kafka_settling,
    .lag = kafka_lag,
    .encode_open = kafka_encode_open,
    .encode_close = kafka_encode_close,
    .batch_spans_partitions = true,
    .encode_next_part = kafka_encode_next_part,
    .ack = kafka_ack,
    .part_release = kafka_part_release,
    .client_props = kafka_client_props,
    .stop = kafka_stop,
    .fini = kafka_fini,
};
