/* SPDX-License-Identifier: Apache-2.0 */
/* onfailure.c: the on-failure path of a mapping. It owns the destination (DestinationConfig
 * OnFailure: a sink opened from its URL with the mapping's destination_options, given the
 * source's own cluster for kafka://, which the sink uses unless its options name one) and, for each
 * lane that gives records up, the write of their AWS invocation records: built from the failure the
 * lane reports, the source's batch info and, where the destination keeps it, the event the records
 * made. The sink's capabilities choose the shape (sl_sink_plan_for): one document for all the
 * records, or one per record with the record's key; either way the write is one delivery
 * (sl_sink_deliver, cut to the sink's limits there) with one outcome per document. A document that
 * did not land is delivered again after a backoff the lane waits out, and only those: the ones the
 * destination has are never sent twice by this path. DESIGN.md rule 1 is kept by the lane: it marks
 * the records done only once this path says every document of the write landed. It never calls the
 * lane except through the callback it was given, and knows nothing of partitions or checkpoints.
 * Loop thread. */
#include "onfailure.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "httpc.h"
#include "log.h"
#include "retry.h"
#include "sink.h"
#include "source.h"
#include "url.h"

#define ONFAIL_COMP     "onfailure"
#define ONFAIL_WHAT_MAX 256

struct sl_onfail {
    const char *inst;
    const struct sl_clock *clock;
    const struct sl_source_ops *ops;
    void *src_ctx;
    char *function_arn; /* the invocation records' requestContext.functionArn */
    struct sl_batch_limits lim;
    const struct sl_sink_ops *dest; /* NULL: no destination */
    void *dest_ctx;
    char shown[SL_URL_REDACTED_MAX]; /* the destination as logs show it (url.h) */
    struct sl_retry_policy retry;
    uint64_t rng;
    int in_flight;
};

/* One document of a write: where its body and key are in the write's buffers, and whether the
 * destination has it. */
struct onfail_doc {
    size_t off, len;         /* in docs */
    size_t key_off, key_len; /* in keys; key_len 0 with null_key */
    bool null_key;
    bool landed;
};

struct sl_onfail_write {
    struct sl_onfail *of;
    sl_onfail_cb cb;
    void *arg;
    struct sl_buf docs; /* the invocation records, one after another */
    struct sl_buf keys; /* their records' keys, for a one-document-per-record destination */
    struct onfail_doc *doc;
    size_t n_docs;
    size_t cap_docs;
    size_t n_left; /* documents the destination does not have yet */
    bool per_record;
    /* The delivery in flight: the documents not landed when it started, and their index in
     * doc (cap_docs each). */
    struct sl_sink_doc *sending;
    size_t *sending_ix;
    size_t n_sending;
    size_t n_failed;   /* documents the last delivery did not land */
    unsigned failures; /* failed deliveries of this write */
    char what[ONFAIL_WHAT_MAX];
};

static int
onfail_open(struct sl_onfail *of, const struct sl_onfail_conf *conf, char *errbuf, size_t errlen)
{
    const char *d = conf->url;
    (void)sl_url_redact(d, of->shown, sizeof(of->shown));
    const struct sl_sink_ops *ops = conf->sink ? conf->sink : sl_sink_for(d);
    if (!ops) {
        (void)snprintf(errbuf, errlen, "no sink writes %s", of->shown);
        return SL_ECONFIG;
    }
    struct sl_sink_env env = {
        .loop = conf->loop,
        .httpc = conf->httpc,
        .clock = conf->clock,
        .inst = conf->inst,
        .region = conf->region,
    };
    /* A destination on the source's own cluster (kafka://) connects to it as the source does:
     * its servers and its security, secrets included, which are wiped once init copied them. A
     * source without one (shares_cluster false) gives none: the sink's options then name the
     * cluster (checked when the configuration was loaded). */
    struct sl_strmap cluster = {0};
    int r = 0;
    if (ops->uses_source_cluster && conf->ops->shares_cluster) {
        r = conf->ops->client_props(conf->src_ctx, &cluster, errbuf, errlen);
        env.cluster = r == 0 ? &cluster : NULL;
    }
    if (r == 0) {
        r = sl_sink_open(ops, &env, d, conf->sink_opts, NULL, "$.destination_options",
                         &of->dest_ctx, errbuf, errlen);
    }
    sl_strmap_clear(&cluster, true);
    if (r < 0) {
        return r;
    }
    of->dest = ops;
    return 0;
}

/* FunctionName as an ARN: as it is when it is one, else a function of this region. */
static char *onfail_function_arn(const char *fn, const char *region)
{
    struct sl_buf b;
    sl_buf_init(&b);
    int r = strncmp(fn, "arn:", 4) == 0
                ? sl_buf_puts(&b, fn)
                : sl_buf_printf(&b, "arn:aws:lambda:%s:000000000000:function:%s", region, fn);
    if (r < 0) {
        sl_buf_fini(&b);
        return NULL;
    }
    return sl_buf_steal(&b);
}

int sl_onfail_new(const struct sl_onfail_conf *conf,
                  struct sl_onfail **ret_of,
                  char *errbuf,
                  size_t errlen)
{
    struct sl_onfail *of = sl_calloc(1, sizeof(*of));
    if (!of) {
        return SL_ENOMEM;
    }
    of->inst = conf->inst;
    of->clock = conf->clock;
    of->ops = conf->ops;
    of->src_ctx = conf->src_ctx;
    of->function_arn = onfail_function_arn(conf->function_name, conf->region);
    if (!of->function_arn) {
        sl_free(of);
        return SL_ENOMEM;
    }
    of->lim = conf->lim;
    sl_retry_policy_default(&of->retry);
    of->rng = conf->seed ? conf->seed : 0x9E3779B97F4A7C15ULL;
    if (conf->url) {
        int r = onfail_open(of, conf, errbuf, errlen);
        if (r < 0) {
            sl_free(of->function_arn);
            sl_free(of);
            return r;
        }
    }
    *ret_of = of;
    return 0;
}

void sl_onfail_cancel(struct sl_onfail *of)
{
    if (of->dest && of->dest->stop) {
        of->dest->stop(of->dest_ctx);
    }
}

void sl_onfail_free(struct sl_onfail *of)
{
    if (!of) {
        return;
    }
    if (of->dest) {
        sl_onfail_cancel(of);
        sl_sink_close(of->dest, of->dest_ctx);
    }
    sl_free(of->function_arn);
    sl_free(of);
}

bool sl_onfail_has_dest(const struct sl_onfail *of)
{
    return of->dest != NULL;
}

const char *sl_onfail_shown(const struct sl_onfail *of)
{
    return of->dest ? of->shown : "";
}

int sl_onfail_in_flight(const struct sl_onfail *of)
{
    return of->in_flight;
}

struct sl_onfail_write *sl_onfail_write_new(struct sl_onfail *of, sl_onfail_cb cb, void *arg)
{
    struct sl_onfail_write *w = sl_calloc(1, sizeof(*w));
    if (!w) {
        return NULL;
    }
    w->of = of;
    w->cb = cb;
    w->arg = arg;
    sl_buf_init(&w->docs);
    sl_buf_init(&w->keys);
    return w;
}

static void onfail_write_free_docs(struct sl_onfail_write *w)
{
    sl_free(w->doc);
    sl_free(w->sending);
    sl_free(w->sending_ix);
    w->doc = NULL;
    w->sending = NULL;
    w->sending_ix = NULL;
    w->cap_docs = 0;
}

void sl_onfail_write_free(struct sl_onfail_write *w)
{
    if (!w) {
        return;
    }
    sl_buf_fini(&w->docs);
    sl_buf_fini(&w->keys);
    onfail_write_free_docs(w);
    sl_free(w);
}

void sl_onfail_write_trim(struct sl_onfail_write *w, size_t keep)
{
    if (w->docs.cap > keep) {
        sl_buf_fini(&w->docs);
    }
    if (w->keys.cap > keep) {
        sl_buf_fini(&w->keys);
    }
    if (w->cap_docs * (sizeof(*w->doc) + sizeof(*w->sending) + sizeof(*w->sending_ix)) > keep) {
        onfail_write_free_docs(w);
    }
}

/* Room for n documents. Returns 0 or SL_ENOMEM. */
static int onfail_reserve(struct sl_onfail_write *w, size_t n)
{
    if (n <= w->cap_docs) {
        return 0;
    }
    onfail_write_free_docs(w);
    w->doc = sl_calloc(n, sizeof(*w->doc));
    w->sending = sl_calloc(n, sizeof(*w->sending));
    w->sending_ix = sl_calloc(n, sizeof(*w->sending_ix));
    if (!w->doc || !w->sending || !w->sending_ix) {
        onfail_write_free_docs(w);
        return SL_ENOMEM;
    }
    w->cap_docs = n;
    return 0;
}

/* Splits refs into runs of one partition each (refs is grouped by partition). Returns how
 * many, or 0 when out of memory; *ret_runs is the caller's to free. */
static size_t onfail_runs(const struct sl_batch_ref *refs, size_t n, struct sl_batch_run **ret_runs)
{
    size_t n_runs = 0;
    for (size_t i = 0; i < n; i++) {
        n_runs += i == 0 || refs[i].part != refs[i - 1].part;
    }
    struct sl_batch_run *runs = sl_calloc(n_runs ? n_runs : 1, sizeof(*runs));
    if (!runs) {
        return 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && refs[i].part == refs[i - 1].part) {
            runs[k - 1].last = refs[i].rec;
            runs[k - 1].n++;
            continue;
        }
        runs[k++] = (struct sl_batch_run){refs[i].part, refs[i].rec, refs[i].rec, 1};
    }
    *ret_runs = runs;
    return n_runs;
}

/* Appends the invocation record of the n records refs lists to w->docs as document d (and, for a
 * per-record document, its record's key to w->keys). Returns 0 or SL_ENOMEM. */
static int onfail_build_doc(struct sl_onfail_write *w,
                            size_t d,
                            const struct sl_batch_ref *refs,
                            size_t n,
                            const struct sl_onfail_why *why,
                            struct sl_buf *scratch)
{
    struct sl_onfail *of = w->of;
    struct sl_sink_plan plan = sl_sink_plan_for(of->dest, n);
    /* The payload: the event those records made, when the destination keeps it. */
    size_t encoded = 0;
    int rc = 0;
    if (strcmp(why->condition, SL_FAILREC_PAYLOAD_TOO_LARGE) != 0) {
        rc = sl_batcher_encode(&of->lim, of->ops, of->src_ctx, refs, n, scratch, &encoded);
    }
    struct sl_failrec f = {
        .condition = why->condition,
        .function_arn = of->function_arn,
        .invoke_count = why->invoke_count,
        .response = why->response,
        .status = why->status ? why->status : 200,
        .function_error = why->function_error,
        .now_ms = sl_clock_wall_ms(of->clock),
        .request_id = {sl_retry_rand(&of->rng), sl_retry_rand(&of->rng)},
        .per_record = w->per_record,
    };
    /* The destination's capability says whether it keeps the payload (sink.h). */
    bool with_payload = rc == 0 && encoded == n && plan.with_payload;
    struct sl_batch_run *runs = NULL;
    size_t n_runs = rc == 0 ? onfail_runs(refs, n, &runs) : 0;
    if (n_runs == 0) {
        return SL_ENOMEM;
    }
    struct onfail_doc *doc = &w->doc[d];
    *doc = (struct onfail_doc){.off = w->docs.len, .key_off = w->keys.len, .null_key = true};
    rc = sl_failrec_build(&w->docs, &f, of->ops, of->src_ctx, runs, n_runs,
                          with_payload ? scratch->data : NULL, scratch->len);
    sl_free(runs);
    doc->len = w->docs.len - doc->off;
    if (rc == 0 && w->per_record) {
        const char *key = NULL;
        size_t key_len = of->ops->record_key(of->src_ctx, refs[0].part, refs[0].rec, &key);
        /* a null key stays null */
        doc->null_key = key_len == 0;
        doc->key_len = key_len;
        /* NUL-terminated too, for a sink that reads the key as a string (an SQS dedup id) */
        rc = key_len > 0 ? sl_buf_append(&w->keys, key, key_len) : 0;
        rc = rc == 0 && key_len > 0 ? sl_buf_append(&w->keys, "", 1) : rc;
    }
    return rc;
}

/* Builds the documents of refs into w: one for all n records, or one per record where the
 * destination takes one per record. Returns 0 or SL_ENOMEM. */
static int onfail_build(struct sl_onfail_write *w,
                        const struct sl_batch_ref *refs,
                        size_t n,
                        const struct sl_onfail_why *why,
                        struct sl_buf *scratch)
{
    struct sl_sink_plan plan = sl_sink_plan_for(w->of->dest, n);
    size_t per_doc = plan.n_records;
    w->per_record = plan.per_record;
    w->n_docs = 0;
    w->n_left = 0;
    sl_buf_truncate(&w->docs, 0);
    sl_buf_truncate(&w->keys, 0);
    size_t n_docs = n / per_doc;
    int rc = onfail_reserve(w, n_docs);
    for (size_t d = 0; rc == 0 && d < n_docs; d++) {
        rc = onfail_build_doc(w, d, refs + d * per_doc, per_doc, why, scratch);
    }
    if (rc < 0) {
        return rc;
    }
    w->n_docs = w->n_left = n_docs;
    return 0;
}

/* The sink's answer, one result per document sent: each that landed is never sent again; the
 * write is done once every document landed, and otherwise answers with the first failure. */
static void onfail_delivered(void *arg, const struct sl_sink_result *results, size_t n)
{
    struct sl_onfail_write *w = arg;
    w->of->in_flight--;
    const struct sl_sink_result *failed = NULL;
    w->n_failed = 0;
    for (size_t i = 0; i < w->n_sending; i++) {
        /* a result missing from the answer is a document not written */
        if (i < n && results[i].outcome == SL_SINK_DELIVERED) {
            w->doc[w->sending_ix[i]].landed = true;
            w->n_left--;
            continue;
        }
        w->n_failed++;
        failed = failed ? failed : i < n ? &results[i] : NULL;
    }
    if (w->n_left == 0) {
        w->cb(w->arg, 0, NULL);
        return;
    }
    int err = failed && failed->err < 0 ? failed->err : SL_EIO;
    w->cb(w->arg, err, failed ? failed->detail : "the sink gave no result for a document");
}

void sl_onfail_write_again(struct sl_onfail_write *w)
{
    struct sl_onfail *of = w->of;
    assert(w->n_left > 0);
    int64_t now_ms = sl_clock_wall_ms(of->clock);
    w->n_sending = 0;
    for (size_t d = 0; d < w->n_docs; d++) {
        const struct onfail_doc *doc = &w->doc[d];
        if (doc->landed) {
            continue;
        }
        struct sl_sink_doc *out = &w->sending[w->n_sending];
        *out = (struct sl_sink_doc){
            .body = w->docs.data + doc->off,
            .len = doc->len,
            .time_ms = now_ms,
        };
        if (w->per_record && !doc->null_key) {
            out->key = w->keys.data + doc->key_off;
            out->key_len = doc->key_len;
        }
        w->sending_ix[w->n_sending++] = d;
    }
    of->in_flight++;
    int r = sl_sink_deliver(of->dest, of->dest_ctx, w->sending, w->n_sending, onfail_delivered, w);
    if (r < 0) {
        of->in_flight--;
        w->n_failed = w->n_sending;
        w->cb(w->arg, r, "cannot start the write");
    }
}

int sl_onfail_write_start(struct sl_onfail_write *w,
                          const struct sl_batch_ref *refs,
                          size_t n,
                          const struct sl_onfail_why *why,
                          const char *what,
                          struct sl_buf *scratch)
{
    struct sl_onfail *of = w->of;
    if (onfail_build(w, refs, n, why, scratch) < 0) {
        return SL_ENOMEM;
    }
    (void)snprintf(w->what, sizeof(w->what), "%s", what);
    if (w->n_docs > 1) {
        sl_log_warn(ONFAIL_COMP, of->inst, "%s: writing %s to %s, one document per record",
                    why->condition, w->what, of->shown);
    } else {
        sl_log_warn(ONFAIL_COMP, of->inst, "%s: writing %s to %s", why->condition, w->what,
                    of->shown);
    }
    w->failures = 0;
    sl_onfail_write_again(w);
    return 0;
}

int64_t sl_onfail_write_failed(struct sl_onfail_write *w, int err, const char *detail)
{
    struct sl_onfail *of = w->of;
    int64_t delay = sl_retry_delay_ms(&of->retry, ++w->failures, &of->rng);
    char docs[64] = "";
    if (w->n_docs > 1) {
        (void)snprintf(docs, sizeof(docs), " (%zu of %zu documents)", w->n_failed, w->n_docs);
    }
    sl_log_warn(ONFAIL_COMP, of->inst,
                "writing %s to %s failed%s: %s%s%s, retrying in %" PRId64 "ms", w->what, of->shown,
                docs, sl_strerror(err), detail ? ": " : "", detail ? detail : "", delay);
    return delay;
}
