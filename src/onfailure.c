/* SPDX-License-Identifier: Apache-2.0 */
/* onfailure.c: the on-failure path of a mapping. It owns the destination (DestinationConfig
 * OnFailure: a sink opened from its URL, on the source's own cluster for kafka://) and, for
 * each lane that gives records up, the write of their AWS invocation record: built from the
 * failure the lane reports, the source's batch info and, where the destination keeps it, the
 * event the records made; written whole or, for a one-document-per-record destination, one
 * record at a time as the lane asks; on failure written again after a backoff the lane waits
 * out. DESIGN.md rule 1 is kept by the lane: it marks records done only once this path says
 * they were written. It never calls the lane except through the callback it was given, and
 * knows nothing of partitions or checkpoints. Loop thread. */
#include "onfailure.h"

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

struct sl_onfail_write {
    struct sl_onfail *of;
    sl_onfail_cb cb;
    void *arg;
    struct sl_buf doc; /* the invocation record being written */
    struct sl_buf key; /* the record's key, for a one-document-per-record destination */
    bool per_record;
    bool null_key;
    unsigned failures; /* failed writes of this record */
    char what[ONFAIL_WHAT_MAX];
};

static int
onfail_open(struct sl_onfail *of, const struct sl_onfail_conf *conf, char *errbuf, size_t errlen)
{
    const char *d = conf->url;
    (void)sl_url_redact(d, of->shown, sizeof(of->shown));
    const struct sl_sink_ops *ops = sl_sink_for(d);
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
     * its servers and its security, secrets included, which are wiped once init copied them. */
    struct sl_strmap cluster = {0};
    int r = 0;
    if (ops->uses_source_cluster && conf->ops->shares_cluster) {
        r = conf->ops->client_props(conf->src_ctx, &cluster, errbuf, errlen);
        env.cluster = r == 0 ? &cluster : NULL;
    }
    if (r == 0) {
        r = sl_sink_open(ops, &env, d, NULL, NULL, NULL, &of->dest_ctx, errbuf, errlen);
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

size_t sl_onfail_doc_records(const struct sl_onfail *of, size_t n)
{
    return of->dest ? sl_sink_plan_for(of->dest, n).n_records : n;
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
    sl_buf_init(&w->doc);
    sl_buf_init(&w->key);
    return w;
}

void sl_onfail_write_free(struct sl_onfail_write *w)
{
    if (!w) {
        return;
    }
    sl_buf_fini(&w->doc);
    sl_buf_fini(&w->key);
    sl_free(w);
}

void sl_onfail_write_trim(struct sl_onfail_write *w, size_t keep)
{
    if (w->doc.cap > keep) {
        sl_buf_fini(&w->doc);
    }
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

/* Builds the invocation record of refs into w->doc (and the key of a per-record document).
 * Returns 0 or SL_ENOMEM. */
static int onfail_build(struct sl_onfail_write *w,
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
        .per_record = plan.per_record,
    };
    sl_buf_truncate(&w->doc, 0);
    /* The destination's capability says whether it keeps the payload (sink.h). */
    bool with_payload = rc == 0 && encoded == n && plan.with_payload;
    struct sl_batch_run *runs = NULL;
    size_t n_runs = rc == 0 ? onfail_runs(refs, n, &runs) : 0;
    if (n_runs == 0) {
        return SL_ENOMEM;
    }
    rc = sl_failrec_build(&w->doc, &f, of->ops, of->src_ctx, runs, n_runs,
                          with_payload ? scratch->data : NULL, scratch->len);
    sl_free(runs);
    w->per_record = plan.per_record;
    w->null_key = true;
    sl_buf_truncate(&w->key, 0);
    if (rc == 0 && plan.per_record) {
        const char *key = NULL;
        size_t key_len = of->ops->record_key(of->src_ctx, refs[0].part, refs[0].rec, &key);
        /* a null key stays null */
        w->null_key = key_len == 0;
        rc = key_len > 0 ? sl_buf_append(&w->key, key, key_len) : 0;
    }
    return rc;
}

/* The sink's answer for the document: written only when it landed, whatever err says. */
static void onfail_delivered(void *arg, const struct sl_sink_result *results, size_t n)
{
    struct sl_onfail_write *w = arg;
    w->of->in_flight--;
    for (size_t i = 0; i < n; i++) {
        if (results[i].outcome != SL_SINK_DELIVERED) {
            int err = results[i].err < 0 ? results[i].err : SL_EIO;
            w->cb(w->arg, err, results[i].detail);
            return;
        }
    }
    w->cb(w->arg, 0, NULL);
}

void sl_onfail_write_again(struct sl_onfail_write *w)
{
    struct sl_onfail *of = w->of;
    struct sl_sink_doc doc = {
        .body = w->doc.data,
        .len = w->doc.len,
        .time_ms = sl_clock_wall_ms(of->clock),
    };
    if (w->per_record && !w->null_key) {
        doc.key = w->key.data;
        doc.key_len = w->key.len;
    }
    of->in_flight++;
    int r = sl_sink_deliver(of->dest, of->dest_ctx, &doc, 1, onfail_delivered, w);
    if (r < 0) {
        of->in_flight--;
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
    sl_log_warn(ONFAIL_COMP, of->inst, "%s: writing %s to %s", why->condition, w->what, of->shown);
    w->failures = 0;
    sl_onfail_write_again(w);
    return 0;
}

int64_t sl_onfail_write_failed(struct sl_onfail_write *w, int err, const char *detail)
{
    struct sl_onfail *of = w->of;
    int64_t delay = sl_retry_delay_ms(&of->retry, ++w->failures, &of->rng);
    sl_log_warn(ONFAIL_COMP, of->inst, "writing %s to %s failed: %s%s%s, retrying in %" PRId64 "ms",
                w->what, of->shown, sl_strerror(err), detail ? ": " : "", detail ? detail : "",
                delay);
    return delay;
}
