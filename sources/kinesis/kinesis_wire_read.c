/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_wire_read.c: the readers of the Kinesis answers the source needs (ListShards with
 * its NextToken, GetShardIterator, GetRecords with its records, end-of-shard and ChildShards,
 * DescribeStreamSummary). Each checks every member it hands on (types, sequence numbers,
 * lengths) and names, on failure, the operation and the member ("GetRecords:
 * Records[3].SequenceNumber: ..."), so a wrong answer becomes one clear log line rather than a
 * wrong event or checkpoint. GetRecords' strings stay in the parsed document (no copy; the
 * adapter copies a record into the queue once). Pure: no state, no I/O, no logging. */
#include "kinesis_wire.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "json.h"

static cJSON *
kinesis_parse(const char *op, const char *body, size_t len, char *errbuf, size_t errlen)
{
    cJSON *j = sl_json_parse_exact(body, len);
    if (!cJSON_IsObject(j)) {
        (void)snprintf(errbuf, errlen, "%s: the answer is not a JSON object", op);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* The string member key of o, or NULL with errbuf naming it (where.key) when absent or not a
 * string (optional: absent and null are not errors, and give NULL with errbuf untouched). */
static const char *kinesis_str(const cJSON *o,
                               const char *key,
                               bool optional,
                               const char *where,
                               bool *ret_bad,
                               char *errbuf,
                               size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) {
        return v->valuestring;
    }
    if (optional && (!v || cJSON_IsNull(v))) {
        return NULL;
    }
    (void)snprintf(errbuf, errlen, "%s.%s is %s (a string is required)", where, key,
                   v ? "not a string" : "missing");
    *ret_bad = true;
    return NULL;
}

/* Copies string member key of o into out[0..outlen) (empty when optional and absent). */
static bool kinesis_copy(char *out,
                         size_t outlen,
                         const cJSON *o,
                         const char *key,
                         bool optional,
                         const char *where,
                         char *errbuf,
                         size_t errlen)
{
    bool bad = false;
    const char *s = kinesis_str(o, key, optional, where, &bad, errbuf, errlen);
    out[0] = '\0';
    if (bad) {
        return false;
    }
    if (!s) {
        return true;
    }
    size_t n = strlen(s);
    if (n == 0 && !optional) {
        (void)snprintf(errbuf, errlen, "%s.%s is empty", where, key);
        return false;
    }
    if (n >= outlen) {
        (void)snprintf(errbuf, errlen, "%s.%s is %zu bytes long (at most %zu allowed)", where, key,
                       n, outlen - 1);
        return false;
    }
    memcpy(out, s, n + 1);
    return true;
}

/* A copied member that must be a decimal number (sequence numbers, hash keys). */
static bool kinesis_copy_num(char *out,
                             size_t outlen,
                             const cJSON *o,
                             const char *key,
                             bool optional,
                             const char *where,
                             char *errbuf,
                             size_t errlen)
{
    if (!kinesis_copy(out, outlen, o, key, optional, where, errbuf, errlen)) {
        return false;
    }
    char why[128];
    if (out[0] && kinesis_seq_check(out, strlen(out), why, sizeof(why)) < 0) {
        (void)snprintf(errbuf, errlen, "%s.%s: %s", where, key, why);
        return false;
    }
    return true;
}

static const cJSON *
kinesis_obj(const cJSON *o, const char *key, const char *where, char *errbuf, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsObject(v)) {
        (void)snprintf(errbuf, errlen, "%s.%s is %s (an object is required)", where, key,
                       v ? "not an object" : "missing");
        return NULL;
    }
    return v;
}

/* ---- ListShards ---- */

void kinesis_shard_list_fini(struct kinesis_shard_list *l)
{
    sl_free(l->shards);
    sl_free(l->next_token);
    l->shards = NULL;
    l->next_token = NULL;
    l->n = l->cap = 0;
}

static bool kinesis_shard_read(
    const cJSON *o, const char *where, struct kinesis_shard *s, char *errbuf, size_t errlen)
{
    if (!cJSON_IsObject(o)) {
        (void)snprintf(errbuf, errlen, "%s is not an object", where);
        return false;
    }
    if (!kinesis_copy(s->id, sizeof(s->id), o, "ShardId", false, where, errbuf, errlen) ||
        !kinesis_copy(s->parent, sizeof(s->parent), o, "ParentShardId", true, where, errbuf,
                      errlen) ||
        !kinesis_copy(s->adjacent_parent, sizeof(s->adjacent_parent), o, "AdjacentParentShardId",
                      true, where, errbuf, errlen)) {
        return false;
    }
    char sub[96];
    (void)snprintf(sub, sizeof(sub), "%s.HashKeyRange", where);
    const cJSON *h = kinesis_obj(o, "HashKeyRange", where, errbuf, errlen);
    if (!h ||
        !kinesis_copy_num(s->starting_hash_key, sizeof(s->starting_hash_key), h, "StartingHashKey",
                          false, sub, errbuf, errlen) ||
        !kinesis_copy_num(s->ending_hash_key, sizeof(s->ending_hash_key), h, "EndingHashKey", false,
                          sub, errbuf, errlen)) {
        return false;
    }
    (void)snprintf(sub, sizeof(sub), "%s.SequenceNumberRange", where);
    const cJSON *r = kinesis_obj(o, "SequenceNumberRange", where, errbuf, errlen);
    return r &&
           kinesis_copy_num(s->starting_seq, sizeof(s->starting_seq), r, "StartingSequenceNumber",
                            false, sub, errbuf, errlen) &&
           kinesis_copy_num(s->ending_seq, sizeof(s->ending_seq), r, "EndingSequenceNumber", true,
                            sub, errbuf, errlen);
}

int kinesis_wire_list_shards_read(
    const char *body, size_t len, struct kinesis_shard_list *l, char *errbuf, size_t errlen)
{
    cJSON *j = kinesis_parse("ListShards", body, len, errbuf, errlen);
    if (!j) {
        return SL_EPROTO;
    }
    int r = SL_EPROTO;
    size_t n0 = l->n;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "Shards");
    if (!cJSON_IsArray(arr)) {
        (void)snprintf(errbuf, errlen, "ListShards: Shards is %s (an array is required)",
                       arr ? "not an array" : "missing");
        goto out;
    }
    bool bad = false;
    const char *token = kinesis_str(j, "NextToken", true, "ListShards", &bad, errbuf, errlen);
    if (bad) {
        goto out;
    }
    size_t add = (size_t)cJSON_GetArraySize(arr);
    if (l->n + add > l->cap) {
        size_t cap = l->cap ? l->cap : 16;
        while (cap < l->n + add) {
            cap *= 2;
        }
        struct kinesis_shard *s = sl_realloc(l->shards, cap * sizeof(*s));
        if (!s) {
            r = SL_ENOMEM;
            goto out;
        }
        l->shards = s;
        l->cap = cap;
    }
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        char where[48];
        (void)snprintf(where, sizeof(where), "ListShards: Shards[%zu]", i++);
        if (!kinesis_shard_read(e, where, &l->shards[l->n], errbuf, errlen)) {
            l->n = n0;
            goto out;
        }
        l->n++;
    }
    char *dup = token && *token ? sl_strdup(token) : NULL;
    if (token && *token && !dup) {
        l->n = n0;
        r = SL_ENOMEM;
        goto out;
    }
    sl_free(l->next_token);
    l->next_token = dup;
    r = 0;
out:
    cJSON_Delete(j);
    return r;
}

/* ---- GetShardIterator ---- */

int kinesis_wire_get_shard_iterator_read(
    const char *body, size_t len, char **ret_iterator, char *errbuf, size_t errlen)
{
    cJSON *j = kinesis_parse("GetShardIterator", body, len, errbuf, errlen);
    if (!j) {
        return SL_EPROTO;
    }
    bool bad = false;
    const char *it =
        kinesis_str(j, "ShardIterator", false, "GetShardIterator", &bad, errbuf, errlen);
    int r = SL_EPROTO;
    if (it && !*it) {
        (void)snprintf(errbuf, errlen, "GetShardIterator.ShardIterator is empty");
    } else if (it) {
        char *dup = sl_strdup(it);
        r = dup ? 0 : SL_ENOMEM;
        if (dup) {
            *ret_iterator = dup;
        }
    }
    cJSON_Delete(j);
    return r;
}

/* ---- GetRecords ---- */

void kinesis_records_fini(struct kinesis_records *r)
{
    cJSON_Delete(r->doc);
    sl_free(r->records);
    sl_free(r->children);
    memset(r, 0, sizeof(*r));
    r->millis_behind = -1;
}

static bool kinesis_is_base64(const char *s, size_t n)
{
    if (n % 4) {
        return false;
    }
    size_t pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '=') {
            pad++;
            if (i + 2 < n || pad > 2) {
                return false;
            }
        } else if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '+' || c == '/')) {
            return false;
        }
    }
    return true;
}

static bool kinesis_record_read(
    const cJSON *o, const char *where, struct kinesis_record *rec, char *errbuf, size_t errlen)
{
    if (!cJSON_IsObject(o)) {
        (void)snprintf(errbuf, errlen, "%s is not an object", where);
        return false;
    }
    bool bad = false;
    rec->seq = kinesis_str(o, "SequenceNumber", false, where, &bad, errbuf, errlen);
    rec->data = kinesis_str(o, "Data", false, where, &bad, errbuf, errlen);
    rec->partition_key = kinesis_str(o, "PartitionKey", false, where, &bad, errbuf, errlen);
    rec->encryption_type = kinesis_str(o, "EncryptionType", true, where, &bad, errbuf, errlen);
    if (bad) {
        return false;
    }
    char why[128];
    rec->seq_len = strlen(rec->seq);
    if (kinesis_seq_check(rec->seq, rec->seq_len, why, sizeof(why)) < 0) {
        (void)snprintf(errbuf, errlen, "%s.SequenceNumber: %s", where, why);
        return false;
    }
    rec->data_len = strlen(rec->data);
    if (!kinesis_is_base64(rec->data, rec->data_len)) {
        (void)snprintf(errbuf, errlen, "%s.Data is not padded standard base64", where);
        return false;
    }
    rec->partition_key_len = strlen(rec->partition_key);
    if (rec->partition_key_len == 0) {
        (void)snprintf(errbuf, errlen, "%s.PartitionKey is empty", where);
        return false;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "ApproximateArrivalTimestamp");
    if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble) || t->valuedouble < 0 ||
        t->valuedouble > 1e13) {
        (void)snprintf(errbuf, errlen,
                       "%s.ApproximateArrivalTimestamp is %s (epoch seconds are required)", where,
                       t ? "not a valid number" : "missing");
        return false;
    }
    rec->arrival_ms = (int64_t)llround(t->valuedouble * 1000.0);
    return true;
}

static bool kinesis_child_read(
    const cJSON *o, const char *where, struct kinesis_child_shard *c, char *errbuf, size_t errlen)
{
    if (!cJSON_IsObject(o)) {
        (void)snprintf(errbuf, errlen, "%s is not an object", where);
        return false;
    }
    bool bad = false;
    c->id = kinesis_str(o, "ShardId", false, where, &bad, errbuf, errlen);
    if (bad) {
        return false;
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "ParentShards");
    int np = cJSON_IsArray(p) ? cJSON_GetArraySize(p) : -1;
    if (np < 1 || np > 2) {
        (void)snprintf(errbuf, errlen, "%s.ParentShards is %s (1 or 2 shard ids required)", where,
                       np < 0 ? (p ? "not an array" : "missing") : "of the wrong length");
        return false;
    }
    c->parents[1] = NULL;
    c->n_parents = (size_t)np;
    for (int k = 0; k < np; k++) {
        const cJSON *s = cJSON_GetArrayItem(p, k);
        if (!cJSON_IsString(s) || !*s->valuestring) {
            (void)snprintf(errbuf, errlen, "%s.ParentShards[%d] is not a shard id", where, k);
            return false;
        }
        c->parents[k] = s->valuestring;
    }
    return true;
}

int kinesis_wire_get_records_read(
    const char *body, size_t len, struct kinesis_records *ret, char *errbuf, size_t errlen)
{
    memset(ret, 0, sizeof(*ret));
    ret->millis_behind = -1;
    cJSON *j = kinesis_parse("GetRecords", body, len, errbuf, errlen);
    if (!j) {
        return SL_EPROTO;
    }
    ret->doc = j;
    int r = SL_EPROTO;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "Records");
    if (!cJSON_IsArray(arr)) {
        (void)snprintf(errbuf, errlen, "GetRecords: Records is %s (an array is required)",
                       arr ? "not an array" : "missing");
        goto fail;
    }
    bool bad = false;
    ret->next_iterator =
        kinesis_str(j, "NextShardIterator", true, "GetRecords", &bad, errbuf, errlen);
    if (bad) {
        goto fail;
    }
    if (ret->next_iterator && !*ret->next_iterator) {
        ret->next_iterator = NULL; /* treated as absent, as null is */
    }
    const cJSON *mbl = cJSON_GetObjectItemCaseSensitive(j, "MillisBehindLatest");
    if (mbl && !cJSON_IsNull(mbl)) {
        if (!cJSON_IsNumber(mbl) || !(mbl->valuedouble >= 0) || mbl->valuedouble > 9e15) {
            (void)snprintf(errbuf, errlen,
                           "GetRecords: MillisBehindLatest is not a non-negative number");
            goto fail;
        }
        ret->millis_behind = (int64_t)mbl->valuedouble;
    }
    size_t n = (size_t)cJSON_GetArraySize(arr);
    if (n) {
        ret->records = sl_calloc(n, sizeof(*ret->records));
        if (!ret->records) {
            r = SL_ENOMEM;
            goto fail;
        }
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, arr)
    {
        char where[48];
        (void)snprintf(where, sizeof(where), "GetRecords: Records[%zu]", ret->n);
        struct kinesis_record *rec = &ret->records[ret->n];
        if (!kinesis_record_read(e, where, rec, errbuf, errlen)) {
            goto fail;
        }
        if (ret->n > 0 &&
            kinesis_seq_compare(rec[-1].seq, rec[-1].seq_len, rec->seq, rec->seq_len) >= 0) {
            (void)snprintf(errbuf, errlen,
                           "%s.SequenceNumber is not after the previous record's (records of "
                           "a shard come in increasing order)",
                           where);
            goto fail;
        }
        ret->n++;
    }
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "ChildShards");
    if (ch && !cJSON_IsNull(ch)) {
        if (!cJSON_IsArray(ch)) {
            (void)snprintf(errbuf, errlen, "GetRecords: ChildShards is not an array");
            goto fail;
        }
        size_t nc = (size_t)cJSON_GetArraySize(ch);
        if (nc) {
            ret->children = sl_calloc(nc, sizeof(*ret->children));
            if (!ret->children) {
                r = SL_ENOMEM;
                goto fail;
            }
        }
        cJSON_ArrayForEach(e, ch)
        {
            char where[48];
            (void)snprintf(where, sizeof(where), "GetRecords: ChildShards[%zu]", ret->n_children);
            if (!kinesis_child_read(e, where, &ret->children[ret->n_children], errbuf, errlen)) {
                goto fail;
            }
            ret->n_children++;
        }
    }
    return 0;
fail:
    kinesis_records_fini(ret);
    return r;
}

/* ---- DescribeStreamSummary ---- */

static int kinesis_int_member(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 1e9) {
        return -1;
    }
    return (int)v->valuedouble;
}

int kinesis_wire_describe_stream_summary_read(
    const char *body, size_t len, struct kinesis_summary *ret, char *errbuf, size_t errlen)
{
    memset(ret, 0, sizeof(*ret));
    cJSON *j = kinesis_parse("DescribeStreamSummary", body, len, errbuf, errlen);
    if (!j) {
        return SL_EPROTO;
    }
    const char *where = "DescribeStreamSummary: StreamDescriptionSummary";
    const cJSON *s =
        kinesis_obj(j, "StreamDescriptionSummary", "DescribeStreamSummary", errbuf, errlen);
    int r = SL_EPROTO;
    if (!s ||
        !kinesis_copy(ret->status, sizeof(ret->status), s, "StreamStatus", false, where, errbuf,
                      errlen) ||
        !kinesis_copy(ret->arn, sizeof(ret->arn), s, "StreamARN", false, where, errbuf, errlen) ||
        !kinesis_copy(ret->encryption_type, sizeof(ret->encryption_type), s, "EncryptionType", true,
                      where, errbuf, errlen)) {
        goto out;
    }
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(s, "StreamModeDetails");
    if (mode && !kinesis_copy(ret->stream_mode, sizeof(ret->stream_mode), mode, "StreamMode", true,
                              "DescribeStreamSummary: StreamModeDetails", errbuf, errlen)) {
        goto out;
    }
    ret->open_shard_count = kinesis_int_member(s, "OpenShardCount");
    ret->retention_hours = kinesis_int_member(s, "RetentionPeriodHours");
    r = 0;
out:
    cJSON_Delete(j);
    return r;
}
