/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_ONFAILURE_H
#define SL_ONFAILURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include <cjson/cJSON.h>

#include "batcher.h"
#include "buf.h"
#include "clock.h"
#include "err.h"
#include "failrec.h"

struct sl_httpc;
struct sl_sink_ops;
struct sl_source_ops;

/* The on-failure path of a mapping (DestinationConfig.OnFailure): its destination, the AWS
 * invocation records written to it, and the backoff of a write that failed. A lane gives it
 * the records it gives up on; it answers through the callback the lane gave it and never calls
 * the lane otherwise. Loop thread. */
struct sl_onfail;

/* One lane's write: the invocation records being written (one, or one per record), which of
 * them landed, and its failures. */
struct sl_onfail_write;

struct sl_onfail_conf {
    const char *url;  /* the destination (borrowed for new), or NULL: give-ups are dropped */
    const char *inst; /* the mapping's name, for logs (borrowed; outlives the path) */
    uv_loop_t *loop;
    struct sl_httpc *httpc;
    const struct sl_clock *clock;
    const char *region;
    /* The mapping's source (borrowed): its cluster for a destination on it (kafka://), its
     * batch info, event encoding and record keys for the invocation records. */
    const struct sl_source_ops *ops;
    void *src_ctx;
    const char *function_name;  /* FunctionName: an ARN, or a name in region (borrowed) */
    struct sl_batch_limits lim; /* for the payload an invocation record carries */
    uint64_t seed;              /* for request ids and write backoff jitter; not 0 */
    /* The destination's options (the mapping's destination_options, checked against the sink's
     * table when the configuration was loaded; borrowed for new), or NULL: its defaults. */
    const cJSON *sink_opts;
    /* The sink that writes url, or NULL: the one that serves it (sl_sink_for). Unit tests give
     * their own; production code leaves it NULL. */
    const struct sl_sink_ops *sink;
};

/* Opens the destination, if any. Returns 0 and *ret_of, SL_ECONFIG (no sink writes the
 * destination, or its init refused it) with errbuf filled, or SL_ENOMEM. */
SL_NODISCARD int sl_onfail_new(const struct sl_onfail_conf *conf,
                               struct sl_onfail **ret_of,
                               char *errbuf,
                               size_t errlen);

/* Stops the destination and frees. Writes must not be in flight, or be cancelled first.
 * NULL is a no-op. */
void sl_onfail_free(struct sl_onfail *of);

/* Cancels writes in flight (their callbacks run with an error). */
void sl_onfail_cancel(struct sl_onfail *of);

/* True when there is a destination; without one, given-up records are dropped. */
bool sl_onfail_has_dest(const struct sl_onfail *of);

/* The destination as logs show it (secrets redacted), "" without one. */
const char *sl_onfail_shown(const struct sl_onfail *of);

/* Writes in flight. */
int sl_onfail_in_flight(const struct sl_onfail *of);

/* What the invocation record says about the failure. */
struct sl_onfail_why {
    const char *condition; /* SL_FAILREC_* */
    enum sl_failrec_response response;
    unsigned invoke_count; /* approximateInvokeCount */
    int status;            /* responseContext.statusCode; 0 reads as 200 */
    bool function_error;
};

/* A write's answer: err 0 when the destination has every document of the write, else a
 * negative SL_E* and detail (borrowed for the call, may be NULL) of the first that did not
 * land. */
typedef void (*sl_onfail_cb)(void *arg, int err, const char *detail);

/* Returns a write that answers cb(arg), or NULL on OOM. */
struct sl_onfail_write *sl_onfail_write_new(struct sl_onfail *of, sl_onfail_cb cb, void *arg);
/* Not while in flight. NULL is a no-op. */
void sl_onfail_write_free(struct sl_onfail_write *w);

/* Builds the invocation records of the n records refs lists (grouped by partition, borrowed
 * for the call): one for them all, or one per record where the destination takes one per
 * record, each with the event its records make as its payload where the destination keeps it
 * (encoded in scratch). Logs what is written where (what: the records, as logs show them) and
 * starts delivering them all at once. Returns 0: cb runs once, perhaps from inside this call;
 * or SL_ENOMEM: nothing was started and cb never runs. */
SL_NODISCARD int sl_onfail_write_start(struct sl_onfail_write *w,
                                       const struct sl_batch_ref *refs,
                                       size_t n,
                                       const struct sl_onfail_why *why,
                                       const char *what,
                                       struct sl_buf *scratch);

/* After cb reported err: counts the failure, logs it and returns the backoff before
 * sl_onfail_write_again. */
int64_t sl_onfail_write_failed(struct sl_onfail_write *w, int err, const char *detail);

/* Delivers again the documents of the write that did not land (never one that did); cb runs
 * once, perhaps from inside this call. */
void sl_onfail_write_again(struct sl_onfail_write *w);

/* Idle: frees the write's buffers that grew over keep bytes. */
void sl_onfail_write_trim(struct sl_onfail_write *w, size_t keep);

#endif
