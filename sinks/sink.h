/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_SINK_H
#define SL_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "err.h"
#include "opt.h"
#include "sl_adapters.h"

struct sl_httpc;
struct sl_strmap;

#define SL_SINK_ABI 5u

/* What a sink gets from its owner. */
struct sl_sink_env {
    uv_loop_t *loop;
    struct sl_httpc *httpc; /* shared HTTP client on the loop */
    const struct sl_clock *clock;
    const char *inst;   /* owner's name for logs (the mapping's UUID) */
    const char *region; /* default AWS region */
    /* For a sink with uses_source_cluster: the client properties of the source's own cluster
     * (source ops->client_props: bootstrap.servers and the connection security, secrets
     * included: never log a value), borrowed for init; NULL when the source has none. */
    const struct sl_strmap *cluster;
};

/* One document to write: for on-failure destinations an AWS invocation record (JSON, with the
 * payload where the destination keeps it). Borrowed until the callback. The on-failure path
 * also NUL-terminates key. */
struct sl_sink_doc {
    const char *body;
    size_t len;
    const char *key; /* optional: message key / dedupe id (Kafka key, SQS dedup), or NULL */
    int64_t time_ms; /* wall clock of the failure, for time-based layouts (file per day) */
    size_t key_len;  /* bytes of key (a Kafka key may hold any byte); 0 with key NULL */
};

/* err: 0 when the document is durably written (file: fsynced; http: 2xx; SQS: SendMessage
 * accepted); otherwise a negative SL_E* and detail (borrowed for the call). The caller retries
 * failed writes with backoff; a sink never drops a document on its own. */
typedef void (*sl_sink_cb)(void *arg, int err, const char *detail);

/* What became of one document of a delivery. REJECTED: the destination refused it (4xx, too
 * large); RETRY: anything else that did not land. The core retries both with backoff (a sink
 * never drops a document on its own, and there is no further destination to give it to). */
enum sl_sink_outcome {
    SL_SINK_DELIVERED = 0,
    SL_SINK_RETRY,
    SL_SINK_REJECTED,
    SL_SINK_OUTCOME_COUNT
};

struct sl_sink_result {
    enum sl_sink_outcome outcome;
    int err;            /* 0 when delivered, else a negative SL_E* */
    const char *detail; /* NULL when delivered; borrowed for the callback */
};

/* results[i] is the outcome of docs[i] of the delivery; n is the delivery's document count.
 * Borrowed for the call. */
typedef void (*sl_sink_deliver_cb)(void *arg, const struct sl_sink_result *results, size_t n);

/* A sink adapter: one const object per kind, found by the destination's scheme. Loop thread.
 * An operation that returns an error never calls its callback. The core (sl_sink_open)
 * callocs ctx_size, fills the option table into it (defaults, then the configured values,
 * range-checked), and only then calls init; sl_sink_close calls fini and frees the options. */
struct sl_sink_ops {
    uint32_t abi;
    const char *name; /* "file", "http", "sqs" */
    /* The sink's own options, {0}-terminated (NULL: none): offsets into ctx. */
    const struct sl_opt *opts;
    size_t ctx_size;
    /* True when this sink serves destination (its scheme or ARN shape). */
    bool (*handles)(const char *destination);
    /* Capabilities of deliver: at most max_docs documents and max_bytes bytes of bodies per
     * call (0: no limit). sl_sink_deliver cuts a larger delivery into calls within them, in
     * order; a document larger than max_bytes goes in a call of its own (the sink decides what
     * to do with it). A sink without deliver writes one document per write whatever these
     * say. */
    size_t max_docs;
    size_t max_bytes;
    /* Capabilities: the core decides from these, never from the name (sl_sink_plan_for).
     * one_doc_per_record: one document per failed record (AWS's kafka:// destination), with
     * the record's key, rather than one per batch. keeps_payload: the document carries the
     * event the records made (AWS's S3 destination does, its SQS one does not: a message is at
     * most 1 MiB, an event up to 6 MB); false leaves only the batch info. */
    bool one_doc_per_record;
    bool keeps_payload;
    /* init needs env->cluster: the destination is on the source's own cluster (kafka://),
     * unless the option own_cluster_opt gives it a cluster of its own. */
    bool uses_source_cluster;
    /* For a sink with uses_source_cluster: the option that names a cluster of the sink's own
     * instead of the source's (kafka: "bootstrap_servers"), or NULL. A mapping whose
     * destination_options set it needs no source cluster, so any source kind may use the sink;
     * a delivery stream, whose configuration names the cluster in keys of its own, refuses it. */
    const char *own_cluster_opt;
    /* Checks destination's shape without I/O; errbuf says what is allowed. Returns 0 or
     * SL_ECONFIG. */
    int (*check)(const char *destination, char *errbuf, size_t errlen);
    /* Checks the options applied to ctx together, beyond what their table checks (keys that
     * need one another, values a library must accept), without I/O: ctx holds the options
     * only, init has not run. Fills errbuf starting with the option's key ("rdkafka: ...") and
     * saying what is allowed, never showing a secret. Returns 0 or SL_ECONFIG. May be NULL:
     * the table says all. */
    int (*check_opts)(const void *ctx, char *errbuf, size_t errlen);
    int (*init)(void *ctx,
                const struct sl_sink_env *env,
                const char *destination,
                char *errbuf,
                size_t errlen);
    /* Starts writing doc. Returns 0 (cb runs exactly once, never from inside write) or an
     * error (cb never runs). Several writes may be in flight. */
    int (*write)(void *ctx, const struct sl_sink_doc *doc, sl_sink_cb cb, void *arg);
    /* Starts delivering docs[0..n) (n > 0, each borrowed until cb). Returns 0 (cb runs exactly
     * once, with one result per document, never from inside deliver) or an error (cb never
     * runs). May be NULL: sl_sink_deliver then writes each document with write. */
    int (*deliver)(
        void *ctx, const struct sl_sink_doc *docs, size_t n, sl_sink_deliver_cb cb, void *arg);
    /* Cancels writes in flight; their callbacks still run with SL_ECANCELED. May be NULL. */
    void (*stop)(void *ctx);
    /* Frees ctx's contents; nothing in flight. Safe after a failed init. */
    void (*fini)(void *ctx);
};

/* Every compiled-in sink: sl_sink_<name> for each name of the generated sl_adapters.h's
 * SL_SINKS (one a build leaves out is not declared). */
#define SL_SINK_DECLARE(name) extern const struct sl_sink_ops sl_sink_##name;
SL_SINKS(SL_SINK_DECLARE)
#undef SL_SINK_DECLARE

/* How the on-failure path hands records to a sink, decided from its capabilities. */
struct sl_sink_plan {
    size_t n_records;  /* records in each document: all of them, or 1 (all delivered at once) */
    bool per_record;   /* each document is one record's, with the record's key */
    bool with_payload; /* the document carries the event those records made */
};

/* The plan for giving n_records (> 0) failed records to ops. Pure; any thread. */
struct sl_sink_plan sl_sink_plan_for(const struct sl_sink_ops *ops, size_t n_records);

/* Delivers docs[0..n) through ops: its deliver, in calls cut to its max_docs and max_bytes
 * (sl_sink_chunk), or by default one write per document; every call or write in flight at
 * once, and cb once, with one result per document in docs' order, when every one has answered
 * (a document whose call or write cannot start counts as not delivered, with its error).
 * Same contract as ops->deliver: returns 0, or an error when nothing started (cb never runs).
 * Loop thread. */
int sl_sink_deliver(const struct sl_sink_ops *ops,
                    void *ctx,
                    const struct sl_sink_doc *docs,
                    size_t n,
                    sl_sink_deliver_cb cb,
                    void *arg);

/* How many of docs[0..n) (n > 0) the next deliver call of ops takes: at least 1, at most
 * max_docs, and as many as fit in max_bytes. Pure; any thread. */
size_t sl_sink_chunk(const struct sl_sink_ops *ops, const struct sl_sink_doc *docs, size_t n);

/* Opens a sink of ops for destination: callocs its ctx, applies opts (the sink's options as a
 * JSON object, or NULL for the defaults; errors say "file: path.key: ..."), checks them together
 * (check_opts, errors said the same way), then init. Returns 0
 * and *ret_ctx (owned: sl_sink_close), or SL_ECONFIG / SL_ENOMEM / init's error with errbuf
 * saying why (*ret_ctx untouched; nothing left open). Loop thread. */
SL_NODISCARD int sl_sink_open(const struct sl_sink_ops *ops,
                              const struct sl_sink_env *env,
                              const char *destination,
                              const cJSON *opts,
                              const char *file,
                              const char *path,
                              void **ret_ctx,
                              char *errbuf,
                              size_t errlen);

/* Closes what sl_sink_open opened (nothing in flight): fini, the options, ctx. NULL ctx is a
 * no-op. Loop thread. */
void sl_sink_close(const struct sl_sink_ops *ops, void *ctx);

/* The sink that serves destination, or NULL. */
const struct sl_sink_ops *sl_sink_for(const char *destination);
const struct sl_sink_ops *const *sl_sink_all(size_t *ret_n);

#endif
