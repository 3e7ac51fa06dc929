/* SPDX-License-Identifier: Apache-2.0 */
/* fh_wire.c: the bytes of Firehose's Lambda data transformation (wire.md §4.7): the
 * event an invocation carries, its exact size per record (so a buffer is cut into invocations
 * within BufferSizeInMBs and Lambda's 6 MB before anything is built), the recordIds, and the
 * reading of the function's answer by Firehose's status model (fh_transform.h lists the rules).
 * Pure: no I/O, no log, no state; fh_transform.c runs the invocations. Any thread. */
#include "fh_transform_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "encoder.h"
#include "json.h"
#include "uuid.h"

#define FH_MSG_JSON                                                                          \
    "There was an error parsing returned records from the Lambda function. Ensure that the " \
    "returned records follow the status model required by Firehose."
#define FH_MSG_FORMAT                                                                           \
    "Check your function and make sure the output is in required format. In addition to that, " \
    "make sure the processed records contain valid result status of Dropped, Ok, or "           \
    "ProcessingFailed"
#define FH_MSG_DUPLICATED                                                                      \
    "Multiple records were returned with the same record ID. Ensure that the Lambda function " \
    "returns unique record IDs for each record."
#define FH_MSG_MISSING                                                                       \
    "One or more record IDs were not returned. Ensure that the Lambda function returns all " \
    "received record IDs."
#define FH_MSG_STATUS "ProcessingFailed status set for record"

/* The record's constant parts: {"recordId":"<56>","approximateArrivalTimestamp":<n>,"data":"
 * <base64>"} and a comma. */
#define FH_REC_FIXED                                                                  \
    (sizeof("{\"recordId\":\"") - 1 + SL_FH_RECORD_ID_LEN +                           \
     sizeof("\",\"approximateArrivalTimestamp\":") - 1 + sizeof(",\"data\":\"") - 1 + \
     sizeof("\"}") - 1 + 1)

void sl_fh_wire_record_id(char out[SL_FH_RECORD_ID_LEN + 1], uint64_t nonce, uint64_t tag, size_t i)
{
    (void)snprintf(out, SL_FH_RECORD_ID_LEN + 1, "%020" PRIu64 "%020" PRIu64 "%016" PRIu64, nonce,
                   tag, (uint64_t)i % UINT64_C(10000000000000000));
}

static size_t fh_digits(int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    return n > 0 ? (size_t)n : 1;
}

/* The length sl_enc_json_str gives s: quotes, and its escapes (\" \\ \b \t \n \f \r in two
 * bytes, other control bytes in six). */
static size_t fh_json_str_len(const char *s)
{
    size_t n = 2;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        n += *p == '"' || *p == '\\' || *p == '\b' || *p == '\t' || *p == '\n' || *p == '\f' ||
                     *p == '\r'
                 ? 2
             : *p < 0x20 ? 6
                         : 1;
    }
    return n;
}

#define FH_KIN_FIXED                                                                             \
    (sizeof(",\"kinesisRecordMetadata\":{\"shardId\":") - 1 + sizeof(",\"partitionKey\":") - 1 + \
     sizeof(",\"approximateArrivalTimestamp\":") - 1 + sizeof(",\"sequenceNumber\":") - 1 +      \
     sizeof(",\"subsequenceNumber\":") - 1 + sizeof("}") - 1)

size_t sl_fh_wire_rec_len(const struct sl_fh_rec *rec)
{
    size_t n = FH_REC_FIXED + fh_digits(rec->arrival_ms) + sl_enc_base64_len(rec->len);
    const struct sl_fh_kinesis_meta *k = rec->kinesis;
    if (k) {
        n += FH_KIN_FIXED + fh_json_str_len(k->shard_id) + fh_json_str_len(k->partition_key) +
             fh_digits(k->arrival_ms) + fh_json_str_len(k->sequence_number) +
             fh_digits(
                 (int64_t)(k->subsequence_number > INT64_MAX ? INT64_MAX : k->subsequence_number));
    }
    return n;
}

static int fh_str(struct sl_buf *out, const char *key, const char *s)
{
    if (sl_buf_puts(out, key) < 0 || sl_enc_json_str(out, s, strlen(s)) < 0) {
        return SL_ENOMEM;
    }
    return 0;
}

static int
fh_event_head(struct sl_buf *out, const char *invocation_id, const struct sl_fh_wire_ctx *ev)
{
    if (fh_str(out, "{\"invocationId\":", invocation_id) < 0 ||
        (ev->source_arn && fh_str(out, ",\"sourceKinesisStreamArn\":", ev->source_arn) < 0) ||
        fh_str(out, ",\"deliveryStreamArn\":", ev->stream_arn) < 0 ||
        fh_str(out, ",\"region\":", ev->region) < 0 || sl_buf_puts(out, ",\"records\":[") < 0) {
        return SL_ENOMEM;
    }
    return 0;
}

size_t sl_fh_wire_head_len(const struct sl_fh_wire_ctx *ev)
{
    size_t n = sizeof("{\"invocationId\":") - 1 + 38 + sizeof(",\"deliveryStreamArn\":") - 1 +
               fh_json_str_len(ev->stream_arn) + sizeof(",\"region\":") - 1 +
               fh_json_str_len(ev->region) + sizeof(",\"records\":[") - 1 + sizeof("]}") - 1;
    if (ev->source_arn) {
        n += sizeof(",\"sourceKinesisStreamArn\":") - 1 + fh_json_str_len(ev->source_arn);
    }
    return n;
}

static int fh_event_kinesis(struct sl_buf *out, const struct sl_fh_kinesis_meta *k)
{
    if (fh_str(out, ",\"kinesisRecordMetadata\":{\"shardId\":", k->shard_id) < 0 ||
        fh_str(out, ",\"partitionKey\":", k->partition_key) < 0 ||
        sl_buf_printf(out, ",\"approximateArrivalTimestamp\":%" PRId64, k->arrival_ms) < 0 ||
        fh_str(out, ",\"sequenceNumber\":", k->sequence_number) < 0 ||
        sl_buf_printf(
            out, ",\"subsequenceNumber\":%" PRId64 "}",
            (int64_t)(k->subsequence_number > INT64_MAX ? INT64_MAX : k->subsequence_number)) < 0) {
        return SL_ENOMEM;
    }
    return 0;
}

size_t sl_fh_wire_cut(const struct sl_fh_rec *recs,
                      size_t n,
                      size_t lo,
                      size_t head_len,
                      int64_t buffer_bytes,
                      bool *too_large)
{
    size_t event = head_len;
    uint64_t input = 0;
    size_t i = lo;
    *too_large = false;
    for (; i < n; i++) {
        size_t add = sl_fh_wire_rec_len(&recs[i]);
        if (i == lo && event + add - 1 > SL_FH_EVENT_MAX_BYTES) {
            *too_large = true;
            return lo + 1;
        }
        /* the last record has no comma: count it once the next one joins */
        if (i > lo && (event + add - 1 > SL_FH_EVENT_MAX_BYTES ||
                       input + recs[i].len > (uint64_t)buffer_bytes)) {
            break;
        }
        event += add;
        input += recs[i].len;
    }
    return i;
}

int sl_fh_wire_build(struct sl_buf *out,
                     const char *invocation_id,
                     const struct sl_fh_wire_ctx *ev,
                     uint64_t nonce,
                     const struct sl_fh_rec *recs,
                     size_t lo,
                     size_t hi)
{
    size_t total = sl_fh_wire_head_len(ev);
    for (size_t i = lo; i < hi; i++) {
        total += sl_fh_wire_rec_len(&recs[i]);
    }
    if (sl_buf_reserve(out, total) < 0 || fh_event_head(out, invocation_id, ev) < 0) {
        return SL_ENOMEM;
    }
    for (size_t i = lo; i < hi; i++) {
        char id[SL_FH_RECORD_ID_LEN + 1];
        sl_fh_wire_record_id(id, nonce, recs[i].tag, i);
        if (sl_buf_printf(out,
                          "%s{\"recordId\":\"%s\",\"approximateArrivalTimestamp\":%" PRId64
                          ",\"data\":\"",
                          i > lo ? "," : "", id, recs[i].arrival_ms) < 0 ||
            sl_enc_base64(out, recs[i].data, recs[i].len) < 0 || sl_buf_puts(out, "\"") < 0 ||
            (recs[i].kinesis && fh_event_kinesis(out, recs[i].kinesis) < 0) ||
            sl_buf_puts(out, "}") < 0) {
            return SL_ENOMEM;
        }
    }
    return sl_buf_puts(out, "]}");
}

void sl_fh_wire_uuid(char out[37], sl_fh_rand_fn rnd, void *rand_arg)
{
    sl_uuid_v4(out, rnd, rand_arg);
}

void sl_fh_wire_out_clear(struct sl_fh_out *o)
{
    sl_free((char *)o->data);
    sl_strmap_clear(&o->lambda_keys, false);
    memset(o, 0, sizeof(*o));
}

/* The index in recs[lo..hi) a recordId names, or SIZE_MAX. */
static size_t
fh_id_index(const char *id, uint64_t nonce, const struct sl_fh_rec *recs, size_t lo, size_t hi)
{
    if (strlen(id) != SL_FH_RECORD_ID_LEN) {
        return SIZE_MAX;
    }
    uint64_t i = 0;
    for (size_t k = SL_FH_RECORD_ID_LEN - 16; k < SL_FH_RECORD_ID_LEN; k++) {
        if (id[k] < '0' || id[k] > '9') {
            return SIZE_MAX;
        }
        i = i * 10 + (uint64_t)(id[k] - '0');
    }
    if (i < lo || i >= hi) {
        return SIZE_MAX;
    }
    char want[SL_FH_RECORD_ID_LEN + 1];
    sl_fh_wire_record_id(want, nonce, recs[i].tag, (size_t)i);
    return strcmp(want, id) == 0 ? (size_t)i : SIZE_MAX;
}

/* metadata.partitionKeys into keys: an object of strings (numbers and booleans as written by
 * cJSON). Returns 0, 1 (not that shape) or SL_ENOMEM. */
static int fh_read_keys(const cJSON *entry, struct sl_strmap *keys)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(entry, "metadata");
    if (!meta || cJSON_IsNull(meta)) {
        return 0;
    }
    const cJSON *pk =
        cJSON_IsObject(meta) ? cJSON_GetObjectItemCaseSensitive(meta, "partitionKeys") : NULL;
    if (!cJSON_IsObject(meta) || (pk && !cJSON_IsNull(pk) && !cJSON_IsObject(pk))) {
        return 1;
    }
    const cJSON *kv;
    cJSON_ArrayForEach(kv, pk)
    {
        char num[64];
        const char *v = NULL;
        if (cJSON_IsString(kv)) {
            v = kv->valuestring;
        } else if (cJSON_IsBool(kv)) {
            v = cJSON_IsTrue(kv) ? "true" : "false";
        } else if (cJSON_IsNumber(kv)) {
            double d = kv->valuedouble;
            if (d == (double)(int64_t)d && d > -9.0e15 && d < 9.0e15) {
                (void)snprintf(num, sizeof(num), "%" PRId64, (int64_t)d);
            } else {
                (void)snprintf(num, sizeof(num), "%.17g", d);
            }
            v = num;
        } else {
            return 1;
        }
        if (sl_strmap_put(keys, kv->string, v) < 0) {
            return SL_ENOMEM;
        }
    }
    return 0;
}

static int fh_whole(const char **ret_code, const char **ret_msg, const char *code, const char *msg)
{
    *ret_code = code;
    *ret_msg = msg;
    return 1;
}

/* Reads one entry into outs (its index found); returns 0, 1 (a bad entry) or SL_ENOMEM. */
static int fh_read_entry(const cJSON *e, struct sl_fh_out *o)
{
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(e, "result");
    const char *s = cJSON_IsString(res) ? res->valuestring : "";
    if (strcmp(s, "Ok") == 0) {
        o->result = SL_FH_OK;
    } else if (strcmp(s, "Dropped") == 0) {
        o->result = SL_FH_DROPPED;
    } else if (strcmp(s, "ProcessingFailed") == 0) {
        o->result = SL_FH_FAILED;
        o->error_code = SL_FH_ERR_STATUS;
        o->error_message = FH_MSG_STATUS;
    } else {
        return 1;
    }
    if (o->result != SL_FH_OK) {
        return 0;
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(e, "data");
    if (!cJSON_IsString(data)) {
        return 1;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    int r = sl_enc_base64_decode(&b, data->valuestring, strlen(data->valuestring));
    if (r == 0 && b.cap == 0) {
        r = sl_buf_reserve(&b, 1); /* an empty record still gets its NUL */
    }
    if (r < 0) {
        sl_buf_fini(&b);
        return r == SL_EINVAL ? 1 : r;
    }
    o->len = b.len;
    o->data = sl_buf_steal(&b);
    if (!o->data) {
        return SL_ENOMEM;
    }
    return fh_read_keys(e, &o->lambda_keys);
}

int sl_fh_wire_answer_read(const char *body,
                           size_t len,
                           uint64_t nonce,
                           const struct sl_fh_rec *recs,
                           size_t lo,
                           size_t hi,
                           struct sl_fh_out *outs,
                           const char **ret_code,
                           const char **ret_msg)
{
    cJSON *doc = body ? sl_json_parse_exact(body, len) : NULL;
    const cJSON *list =
        cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, "records") : NULL;
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(doc);
        return fh_whole(ret_code, ret_msg, SL_FH_ERR_JSON, FH_MSG_JSON);
    }
    size_t n = hi - lo;
    bool *seen = sl_calloc(n ? n : 1, sizeof(*seen));
    int r = seen ? 0 : SL_ENOMEM;
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        if (r != 0) {
            break;
        }
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "recordId");
        if (!cJSON_IsObject(e) || !cJSON_IsString(id)) {
            r = fh_whole(ret_code, ret_msg, SL_FH_ERR_FUNCTION_ERROR, FH_MSG_FORMAT);
            break;
        }
        size_t i = fh_id_index(id->valuestring, nonce, recs, lo, hi);
        if (i == SIZE_MAX) {
            /* unknown: ignored; the record it replaced is missing */
            struct sl_fh_out scratch = {0};
            r = fh_read_entry(e, &scratch);
            sl_fh_wire_out_clear(&scratch);
            if (r == 1) {
                r = fh_whole(ret_code, ret_msg, SL_FH_ERR_FUNCTION_ERROR, FH_MSG_FORMAT);
            }
            continue;
        }
        if (seen[i - lo]) {
            r = fh_whole(ret_code, ret_msg, SL_FH_ERR_DUPLICATED, FH_MSG_DUPLICATED);
            break;
        }
        seen[i - lo] = true;
        r = fh_read_entry(e, &outs[i - lo]);
        if (r == 1) {
            r = fh_whole(ret_code, ret_msg, SL_FH_ERR_FUNCTION_ERROR, FH_MSG_FORMAT);
        }
    }
    for (size_t k = 0; r == 0 && k < n; k++) {
        if (!seen[k]) {
            outs[k].result = SL_FH_FAILED;
            outs[k].error_code = SL_FH_ERR_MISSING;
            outs[k].error_message = FH_MSG_MISSING;
        }
    }
    if (r != 0) {
        for (size_t k = 0; k < n; k++) {
            sl_fh_wire_out_clear(&outs[k]);
        }
    }
    sl_free(seen);
    cJSON_Delete(doc);
    return r;
}
