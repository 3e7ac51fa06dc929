/* SPDX-License-Identifier: Apache-2.0 */
/* firehose_api.c: the Firehose ingest API on sluice's HTTP server: PutRecord and PutRecordBatch,
 * and the dispatch of every call (DescribeDeliveryStream and ListDeliveryStreams are answered
 * by firehose_describe.c; the answers' JSON and the stream name's check are firehose_reply.c's),
 * in AWS's JSON 1.1 protocol (wire.md §0.1, §4.1), so the AWS CLI and the SDKs work unchanged
 * against it. It owns checking each put as
 * AWS does (AWS's error types, messages and status codes: shapes first, then the stream's
 * existence, then the 4 MiB per call), decoding the records, and the per-record answers; it
 * hands decoded records to its host (stream.c's streams) and answers a put only when the host
 * says they are durable (the HTTP request waits, suspended, meanwhile; the server keeps a
 * request whose connection closed until it is answered); it knows nothing of spools, buffers
 * or destinations. A put the host refuses because it is shutting down fails as a whole (503
 * ServiceUnavailableException, which the SDKs retry); every 503 carries Retry-After. Signatures
 * are not checked, and headers are never logged (they carry them). Loop thread. */
#include "firehose_api.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "config.h"
#include "encoder.h"
#include "firehose_describe.h"
#include "firehose_reply.h"
#include "httpd.h"
#include "json.h"
#include "log.h"

#define API_COMP          "firehose"
#define API_TARGET_PREFIX "Firehose_20150804."
#define API_RETRY_AFTER_S "1" /* seconds, in the Retry-After of a 503 */

/* A RecordId: opaque to clients, unique in this process (and, by the salt, across runs). */
static void api_record_id(struct sl_firehose_host *host, char out[40])
{
    (void)snprintf(out, 40, "%016" PRIx64 "%016" PRIx64, host->id_salt, host->id_seq++);
}

/* ------------------------------------------------------------------------------------------ */
/* Request checks */

/* Decodes the records of a put into one arena (copy once); recs[i] point into it afterwards.
 * Returns 0, or -1 with *ret filled, or SL_ENOMEM. */
/* The member a record's Data is, as Coral names it in its messages. */
static void api_where(char *out, size_t len, bool batch, size_t i)
{
    if (batch) {
        (void)snprintf(out, len, "records.%zu.member.data", i + 1);
    } else {
        (void)snprintf(out, len, "record.data");
    }
}

static int api_decode(const cJSON *const *items,
                      size_t n,
                      bool batch,
                      struct sl_buf *arena,
                      struct sl_firehose_rec *recs,
                      struct sl_firehose_reply *ret)
{
    size_t b64_total = 0;
    for (size_t i = 0; i < n; i++) {
        char where[48];
        api_where(where, sizeof(where), batch, i);
        if (!cJSON_IsObject(items[i])) {
            int r = sl_firehose_reply_error(ret, 400, "SerializationException",
                                            "%s: expected an object with Data",
                                            batch ? "Records" : "Record");
            return r < 0 ? r : -1;
        }
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(items[i], "Data");
        if (!d || cJSON_IsNull(d)) {
            int r =
                SL_FIREHOSE_VALIDATION(ret, "Value null at '%s' failed to satisfy constraint: %s",
                                       where, "Member must not be null");
            return r < 0 ? r : -1;
        }
        if (!cJSON_IsString(d)) {
            int r = sl_firehose_reply_error(ret, 400, "SerializationException",
                                            "%s: Data: expected a base64 string", where);
            return r < 0 ? r : -1;
        }
        b64_total += strlen(d->valuestring);
    }
    if (sl_buf_reserve(arena, b64_total / 4 * 3 + 3) < 0) {
        return SL_ENOMEM;
    }
    size_t *offs = sl_calloc(n ? n : 1, sizeof(*offs));
    if (!offs) {
        return SL_ENOMEM;
    }
    int result = 0;
    for (size_t i = 0; i < n && result == 0; i++) {
        const char *s = cJSON_GetObjectItemCaseSensitive(items[i], "Data")->valuestring;
        offs[i] = arena->len;
        int r = sl_enc_base64_decode(arena, s, strlen(s));
        if (r == SL_ENOMEM) {
            result = r;
        } else if (r < 0) {
            r = sl_firehose_reply_error(ret, 400, "SerializationException",
                                        "Base64 encoded bytes are malformed (record %zu)", i + 1);
            result = r < 0 ? r : -1;
        } else if (arena->len - offs[i] > SL_FIREHOSE_RECORD_MAX) {
            char where[48];
            api_where(where, sizeof(where), batch, i);
            r = SL_FIREHOSE_VALIDATION(
                ret,
                "Value at '%s' failed to satisfy constraint: Member must have "
                "length less than or equal to %d",
                where, SL_FIREHOSE_RECORD_MAX);
            result = r < 0 ? r : -1;
        }
    }
    for (size_t i = 0; i < n && result == 0; i++) {
        size_t end = i + 1 < n ? offs[i + 1] : arena->len;
        recs[i].data = arena->data + offs[i];
        recs[i].len = end - offs[i];
    }
    sl_free(offs);
    return result;
}

/* ------------------------------------------------------------------------------------------ */
/* Operations */

/* A put whose records are not durable yet. */
struct api_pending {
    struct sl_firehose_host *host;
    bool batch;
    size_t n;
    size_t took;
    bool done;    /* the host answered */
    bool waiting; /* api_put returned SL_EINPROGRESS: api_put_done answers */
    int status;
    sl_firehose_reply_cb cb;
    void *arg;
};

/* The answer to a put of n records of which the first took were taken, stored with status. */
static int api_put_reply(struct sl_firehose_host *host,
                         bool batch,
                         size_t n,
                         size_t took,
                         int status,
                         struct sl_firehose_reply *ret)
{
    struct sl_buf out;
    sl_buf_init(&out);
    char id[40];
    int r;
    if (!batch) {
        if (took == 0) {
            return sl_firehose_reply_error(ret, 503, "ServiceUnavailableException", "Slow down.");
        }
        if (status < 0) {
            return sl_firehose_reply_error(ret, 500, "InternalFailure",
                                           "The record could not be stored: %s",
                                           sl_strerror(status));
        }
        api_record_id(host, id);
        r = sl_buf_printf(&out, "{\"RecordId\":\"%s\",\"Encrypted\":false}", id);
    } else {
        size_t ok = status < 0 ? 0 : took;
        r = sl_buf_printf(
            &out, "{\"FailedPutCount\":%zu,\"Encrypted\":false,\"RequestResponses\":[", n - ok);
        for (size_t i = 0; i < n && r == 0; i++) {
            if (i < ok) {
                api_record_id(host, id);
                r = sl_buf_printf(&out, "%s{\"RecordId\":\"%s\"}", i ? "," : "", id);
            } else if (i < took) {
                r = sl_buf_printf(&out,
                                  "%s{\"ErrorCode\":\"InternalFailure\","
                                  "\"ErrorMessage\":\"Internal service failure.\"}",
                                  i ? "," : "");
            } else {
                r = sl_buf_printf(&out,
                                  "%s{\"ErrorCode\":\"ServiceUnavailableException\","
                                  "\"ErrorMessage\":\"Slow down.\"}",
                                  i ? "," : "");
            }
        }
        if (r == 0) {
            r = sl_buf_puts(&out, "]}");
        }
    }
    if (r == 0) {
        ret->status = 200;
        ret->len = out.len;
        ret->body = sl_buf_steal(&out);
        r = ret->body ? 0 : SL_ENOMEM;
    }
    sl_buf_fini(&out);
    return r;
}

/* A reply that could not be built: InternalFailure, without body text if even that fails. */
static void api_oom_reply(struct sl_firehose_reply *ret)
{
    sl_free(ret->body);
    memset(ret, 0, sizeof(*ret));
    ret->status = 500;
    ret->error_type = "InternalFailure";
    static const char text[] = "{\"__type\":\"InternalFailure\",\"message\":\"out of memory\"}";
    ret->body = sl_strndup(text, sizeof(text) - 1);
    ret->len = ret->body ? sizeof(text) - 1 : 0;
}

static void api_put_done(void *arg, int status)
{
    struct api_pending *p = arg;
    p->done = true;
    p->status = status;
    if (!p->waiting) {
        return; /* answered before the put returned: api_put replies */
    }
    struct sl_firehose_reply rep;
    memset(&rep, 0, sizeof(rep));
    if (api_put_reply(p->host, p->batch, p->n, p->took, status, &rep) < 0) {
        api_oom_reply(&rep);
    }
    p->cb(p->arg, &rep);
    sl_free(p);
}

static int api_put(struct sl_firehose_host *host,
                   const cJSON *req,
                   bool batch,
                   struct sl_firehose_reply *ret,
                   sl_firehose_reply_cb cb,
                   void *arg)
{
    int r = 0;
    const cJSON *single = NULL;
    const cJSON **items = NULL;
    size_t n = 0;
    /* Shapes first (AWS checks the whole request before it looks the stream up). */
    const cJSON *recs_json = cJSON_GetObjectItemCaseSensitive(req, batch ? "Records" : "Record");
    if (!recs_json || cJSON_IsNull(recs_json)) {
        return SL_FIREHOSE_VALIDATION(ret, "Value null at '%s' failed to satisfy constraint: %s",
                                      batch ? "records" : "record", "Member must not be null");
    }
    if (batch) {
        if (!cJSON_IsArray(recs_json)) {
            return sl_firehose_reply_error(ret, 400, "SerializationException",
                                           "Records: expected a list");
        }
        n = (size_t)cJSON_GetArraySize(recs_json);
        if (n < 1 || n > SL_FIREHOSE_BATCH_MAX) {
            return SL_FIREHOSE_VALIDATION(
                ret,
                "Value '[...]' at 'records' failed to satisfy constraint: "
                "Member must have length %s",
                n < 1 ? "greater than or equal to 1" : "less than or equal to 500");
        }
    } else {
        single = recs_json;
        n = 1;
    }
    long idx = sl_firehose_reply_stream(host, req, ret, &r, true);
    if (idx < 0) {
        return r;
    }
    if (host->conf_at(host->arg, (size_t)idx)->kinesis_arn) {
        /* It reads its Kinesis stream; AWS refuses puts to it with these words. */
        return sl_firehose_reply_error(
            ret, 400, "InvalidArgumentException",
            "This operation is not permitted on KinesisStreamAsSource delivery "
            "stream type.");
    }
    items = sl_calloc(n, sizeof(*items));
    struct sl_firehose_rec *recs = sl_calloc(n, sizeof(*recs));
    struct sl_buf arena;
    sl_buf_init(&arena);
    if (!items || !recs) {
        r = SL_ENOMEM;
        goto done;
    }
    if (single) {
        items[0] = single;
    } else {
        size_t i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, recs_json)
        {
            items[i++] = it;
        }
    }
    r = api_decode(items, n, batch, &arena, recs, ret);
    if (r != 0) {
        r = r == -1 ? 0 : r;
        goto done;
    }
    if (batch && arena.len > SL_FIREHOSE_CALL_MAX) {
        r = sl_firehose_reply_error(ret, 400, "InvalidArgumentException",
                                    "Records size exceeds 4 MiB limit: %zu bytes in %zu records",
                                    arena.len, n);
        goto done;
    }
    struct api_pending *p = sl_calloc(1, sizeof(*p));
    if (!p) {
        r = SL_ENOMEM;
        goto done;
    }
    *p = (struct api_pending){.host = host, .batch = batch, .n = n, .cb = cb, .arg = arg};
    r = host->put(host->arg, (size_t)idx, recs, n, &p->took, api_put_done, p);
    if (r < 0) {
        sl_free(p);
        if (r == SL_ETHROTTLED) {
            /* Nothing stored: the SDKs back off and send the records again. */
            r = api_put_reply(host, batch, n, 0, 0, ret);
        } else if (r == SL_ECANCELED) {
            /* Shutting down: the whole call fails as a 503, which the SDKs retry on their own
             * (a per-record failure only a producer's own loop sends again). */
            r = sl_firehose_reply_error(ret, 503, "ServiceUnavailableException",
                                        "The service is shutting down; send the records again.");
        } else if (r != SL_ENOMEM) {
            r = sl_firehose_reply_error(ret, 500, "InternalFailure",
                                        "The records could not be stored: %s", sl_strerror(r));
        }
    } else if (p->done) {
        r = api_put_reply(host, batch, n, p->took, p->status, ret);
        sl_free(p);
    } else {
        /* Answered by api_put_done once the records are durable. */
        p->waiting = true;
        r = SL_EINPROGRESS;
    }
done:
    sl_free(items);
    sl_free(recs);
    sl_buf_fini(&arena);
    return r;
}

int sl_firehose_api_handle(struct sl_firehose_host *host,
                           const char *target,
                           const char *body,
                           size_t len,
                           bool too_large,
                           struct sl_firehose_reply *ret,
                           sl_firehose_reply_cb cb,
                           void *arg)
{
    memset(ret, 0, sizeof(*ret));
    int r;
    size_t plen = strlen(API_TARGET_PREFIX);
    const char *op = target && strncmp(target, API_TARGET_PREFIX, plen) == 0 ? target + plen : "";
    bool known = strcmp(op, "PutRecord") == 0 || strcmp(op, "PutRecordBatch") == 0 ||
                 strcmp(op, "DescribeDeliveryStream") == 0 ||
                 strcmp(op, "ListDeliveryStreams") == 0;
    if (!known) {
        r = sl_firehose_reply_error(
            ret, 400, "UnknownOperationException",
            "X-Amz-Target %.100s is not served; allowed: Firehose_20150804.PutRecord, "
            "PutRecordBatch, DescribeDeliveryStream, ListDeliveryStreams",
            target ? target : "(missing)");
        goto done;
    }
    if (too_large) {
        r = sl_firehose_reply_error(
            ret, 413, "InvalidArgumentException",
            "Request body exceeds %d bytes; PutRecordBatch takes at most 4 MiB of "
            "records",
            SL_FIREHOSE_BODY_MAX);
        goto done;
    }
    cJSON *req = sl_json_parse_exact(body, len);
    if (!cJSON_IsObject(req)) {
        cJSON_Delete(req);
        r = sl_firehose_reply_error(ret, 400, "SerializationException",
                                    "The request body is not a JSON object");
        goto done;
    }
    if (strcmp(op, "PutRecord") == 0) {
        r = api_put(host, req, false, ret, cb, arg);
    } else if (strcmp(op, "PutRecordBatch") == 0) {
        r = api_put(host, req, true, ret, cb, arg);
    } else if (strcmp(op, "DescribeDeliveryStream") == 0) {
        r = sl_firehose_describe(host, req, ret);
    } else {
        r = sl_firehose_describe_list(host, req, ret);
    }
    cJSON_Delete(req);
done:
    if (r == SL_ENOMEM) {
        api_oom_reply(ret);
    }
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP */

/* Sends rep as the answer to req, with a fresh x-amzn-RequestId. */
static void api_answer(struct sl_httpd_req *req, struct sl_firehose_reply *rep)
{
    static struct sl_log_limit limit;
    const char *target = sl_httpd_req_header(req, "X-Amz-Target");
    unsigned char raw[16];
    char request_id[40];
    if (uv_random(NULL, NULL, raw, sizeof(raw), 0, NULL) != 0) {
        memset(raw, 0, sizeof(raw));
    }
    raw[6] = (unsigned char)((raw[6] & 0x0f) | 0x40);
    raw[8] = (unsigned char)((raw[8] & 0x3f) | 0x80);
    (void)snprintf(request_id, sizeof(request_id),
                   "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", raw[0],
                   raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8], raw[9], raw[10],
                   raw[11], raw[12], raw[13], raw[14], raw[15]);
    /* Headers are a courtesy to clients: without memory for them the answer goes without. */
    int hr = sl_httpd_req_add_header(req, "x-amzn-RequestId", request_id);
    if (rep->error_type && hr == 0) {
        hr = sl_httpd_req_add_header(req, "x-amzn-ErrorType", rep->error_type);
    }
    if (rep->status == 503 && hr == 0) {
        /* Beyond AWS: when to come back. The JavaScript SDK waits at least this long before
         * its retry (its own backoff starts at tens of ms), which gives a full spool time to
         * deliver, or a restarted process time to listen. */
        hr = sl_httpd_req_add_header(req, "Retry-After", API_RETRY_AFTER_S);
    }
    if (rep->error_type) {
        sl_log_limited(&limit, sl_clock_now_ms(&sl_clock_system), 1000, (int)rep->status,
                       SL_LOG_INFO, API_COMP, NULL, "%s refused: %u %s: %.*s",
                       target ? target : "(no X-Amz-Target)", rep->status, rep->error_type,
                       (int)(rep->len > 300 ? 300 : rep->len), rep->body ? rep->body : "");
    }
    sl_httpd_respond(req, rep->status, SL_FIREHOSE_CONTENT_TYPE, rep->body, rep->len);
}

static void api_later_cb(void *arg, struct sl_firehose_reply *rep)
{
    api_answer(arg, rep);
}

void sl_firehose_api_serve(struct sl_firehose_host *host, struct sl_httpd_req *req)
{
    size_t len;
    const char *body = sl_httpd_req_body(req, &len);
    const char *target = sl_httpd_req_header(req, "X-Amz-Target");
    struct sl_firehose_reply rep;
    if (strcmp(sl_httpd_req_method(req), "POST") != 0) {
        (void)sl_firehose_reply_error(&rep, 404, "UnknownOperationException",
                                      "only POST is served; allowed: POST / with X-Amz-Target");
    } else {
        /* Out of memory is answered as InternalFailure in rep. */
        int r = sl_firehose_api_handle(host, target, body, len, sl_httpd_req_too_large(req), &rep,
                                       api_later_cb, req);
        if (r == SL_EINPROGRESS) {
            return; /* answered once the records are durable */
        }
        if (r < 0) {
            sl_log_warn(API_COMP, NULL, "out of memory answering %s", target ? target : "a call");
        }
    }
    api_answer(req, &rep);
}
