/* SPDX-License-Identifier: Apache-2.0 */
/* window.c: tumbling windows. A window's bounds come from record arrival times aligned to
 * multiples of its length; the function must answer with an object "state", which the next
 * invocation of the window receives. Besides those pure rules (any thread) it keeps one lane's
 * window: when it opens and closes, the records it holds back from the checkpoint until then,
 * and its state. It decides; the lane that owns it invokes, arms timers and moves checkpoints,
 * so it calls nothing above it. A window belongs to its lane (loop thread). */
#include "window.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "encoder.h"

int64_t sl_window_start_ms(int64_t arrival_ms, int64_t window_ms)
{
    int64_t r = arrival_ms % window_ms;
    if (r < 0) {
        r += window_ms;
    }
    return arrival_ms - r;
}

/* ISO 8601 without milliseconds, as AWS writes window bounds ("2020-12-09T07:04:00Z"). */
static int window_iso(struct sl_buf *out, int64_t ms)
{
    size_t mark = out->len;
    int r = sl_enc_iso8601_ms(out, ms);
    if (r < 0) {
        return r;
    }
    /* "...:SS.mmmZ" -> "...:SSZ" */
    if (out->len >= mark + 5 && out->data[out->len - 5] == '.') {
        out->data[out->len - 5] = 'Z';
        sl_buf_truncate(out, out->len - 4);
    }
    return 0;
}

int sl_window_wrap(struct sl_buf *body, const struct sl_window_fields *w)
{
    if (body->len == 0 || body->data[body->len - 1] != '}') {
        return SL_EINVAL;
    }
    sl_buf_truncate(body, body->len - 1);
    int r = sl_buf_puts(body, ",\"window\":{\"start\":\"");
    r = r < 0 ? r : window_iso(body, w->start_ms);
    r = r < 0 ? r : sl_buf_puts(body, "\",\"end\":\"");
    r = r < 0 ? r : window_iso(body, w->start_ms + w->window_ms);
    r = r < 0 ? r : sl_buf_puts(body, "\"},\"state\":");
    r = r < 0 ? r : sl_buf_append(body, w->state, w->state_len);
    r = r < 0 ? r : sl_buf_puts(body, ",\"shardId\":");
    r = r < 0 ? r : sl_enc_json_str(body, w->shard_id, strlen(w->shard_id));
    r = r < 0 ? r : sl_buf_puts(body, ",\"eventSourceARN\":");
    r = r < 0 ? r : sl_enc_json_str(body, w->arn, strlen(w->arn));
    r = r < 0
            ? r
            : sl_buf_printf(body, ",\"isFinalInvokeForWindow\":%s,\"isWindowTerminatedEarly\":%s}",
                            w->final ? "true" : "false", w->terminated_early ? "true" : "false");
    return r;
}

int sl_window_read_state(const char *body, size_t len, char **ret_state, size_t *ret_len)
{
    if (!body || len == 0) {
        return SL_EPROTO;
    }
    cJSON *doc = cJSON_ParseWithLength(body, len);
    if (!doc) {
        return SL_EPROTO;
    }
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(doc, "state");
    if (!cJSON_IsObject(state)) {
        cJSON_Delete(doc);
        return SL_EPROTO;
    }
    char *text = cJSON_PrintUnformatted(state);
    cJSON_Delete(doc);
    if (!text) {
        return SL_ENOMEM;
    }
    size_t n = strlen(text);
    char *copy = sl_strndup(text, n);
    cJSON_free(text);
    if (!copy) {
        return SL_ENOMEM;
    }
    *ret_state = copy;
    *ret_len = n;
    return 0;
}

struct sl_window {
    int64_t window_ms;
    bool open;
    int64_t start_ms; /* wall clock */
    char *state;      /* the state the next invocation receives (JSON object text), or NULL */
    size_t state_len;
    uint64_t first_abs; /* the window's records: [first_abs, end_abs) */
    uint64_t end_abs;
    bool final_due; /* the window is over: its final invocation comes next */
    bool terminated_early;
};

struct sl_window *sl_window_new(int64_t window_ms)
{
    struct sl_window *w = sl_calloc(1, sizeof(*w));
    if (w) {
        w->window_ms = window_ms;
    }
    return w;
}

void sl_window_free(struct sl_window *w)
{
    if (!w) {
        return;
    }
    sl_free(w->state);
    sl_free(w);
}

enum sl_window_step sl_window_dispatch(struct sl_window *w,
                                       const struct sl_recq *q,
                                       size_t start,
                                       size_t *waiting,
                                       bool part_full,
                                       bool part_ended,
                                       int64_t now_ms,
                                       int64_t *ret_wait_ms)
{
    const struct sl_record *first = NULL;
    size_t count = sl_recq_count(q);
    size_t in_window = 0;
    if (w->open && w->end_abs == w->first_abs) {
        w->open = false; /* nothing delivered in it yet: the next record opens its own */
    }
    for (size_t i = start; i < count && in_window < *waiting; i++) {
        const struct sl_record *rec = sl_recq_at(q, i);
        if (rec->flags & (SL_REC_DONE | SL_REC_TAKEN)) {
            continue;
        }
        int64_t ws = sl_window_start_ms(rec->arrival_ms, w->window_ms);
        if (!first) {
            first = rec;
            if (!w->open) {
                w->open = true;
                w->start_ms = ws;
                w->first_abs = q->dropped + i;
                w->end_abs = w->first_abs;
            }
        }
        if (ws > w->start_ms) {
            break; /* the next window's: not in this batch */
        }
        in_window++;
    }
    if (w->open && w->end_abs > w->first_abs) {
        bool full = in_window == 0 && part_full;
        bool next_window = first && in_window == 0;
        if (full && !w->final_due) {
            w->terminated_early = true;
        }
        bool over = in_window == 0 && (part_ended || now_ms >= w->start_ms + w->window_ms);
        if (w->final_due || full || next_window || over) {
            return SL_WINDOW_FINAL;
        }
        if (in_window == 0) {
            *ret_wait_ms = w->start_ms + w->window_ms - now_ms;
            return SL_WINDOW_WAIT;
        }
    }
    *waiting = in_window;
    return SL_WINDOW_BATCH;
}

int sl_window_add_fields(const struct sl_window *w,
                         struct sl_buf *body,
                         const char *arn,
                         const char *part_name,
                         bool final)
{
    struct sl_window_fields f = {
        .start_ms = w->start_ms,
        .window_ms = w->window_ms,
        .state = w->state ? w->state : "{}",
        .state_len = w->state ? w->state_len : 2,
        .shard_id = part_name,
        .arn = arn,
        .final = final,
        .terminated_early = final && w->terminated_early,
    };
    return sl_window_wrap(body, &f);
}

void sl_window_delivered(struct sl_window *w, uint64_t end_abs)
{
    w->end_abs = end_abs;
}

bool sl_window_set_state(struct sl_window *w, char *state, size_t len)
{
    sl_free(w->state);
    w->state = state;
    w->state_len = len;
    if (len > SL_WINDOW_STATE_MAX) {
        w->final_due = true;
        w->terminated_early = true;
        return true;
    }
    return false;
}

void sl_window_close(struct sl_window *w, struct sl_recq *q)
{
    for (uint64_t a = w->first_abs; a < w->end_abs; a++) {
        if (a >= q->dropped && a - q->dropped < sl_recq_count(q)) {
            struct sl_record *rec = sl_recq_at_mut(q, (size_t)(a - q->dropped));
            if (rec->flags & SL_REC_WINDOWED) {
                rec->flags = (rec->flags & ~SL_REC_WINDOWED) | SL_REC_DONE;
            }
        }
    }
    sl_free(w->state);
    w->state = NULL;
    w->open = false;
    w->final_due = false;
    bool early = w->terminated_early;
    w->terminated_early = false;
    if (early) {
        /* The same window goes on with fresh state. */
        w->open = true;
        w->first_abs = w->end_abs;
    }
}
