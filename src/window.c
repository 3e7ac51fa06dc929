/* SPDX-License-Identifier: Apache-2.0 */
/* window.c: the event fields and the state rules of tumbling windows. A window's bounds come
 * from record arrival times aligned to multiples of its length; the function must answer with
 * an object "state", which the next invocation of the window receives. The mapping decides
 * when windows open and close. Pure; any thread. */
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
