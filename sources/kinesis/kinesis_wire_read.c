/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_wire_read.c: the readers of the Kinesis answers the source needs (ListShards with
 * its NextToken, GetShardIterator, GetRecords with its records, end-of-shard and ChildShards,
 * DescribeStreamSummary). Each checks every member it hands on (types, sequence numbers,
 * lengths) and names, on failure, the operation and the member ("GetRecords:
 * Records[3].SequenceNumber: ..."), so a wrong answer becomes one clear log line rather than a
 * wrong event or checkpoint. GetRecords is read by a scanner of its own (not a cJSON tree, see
 * there); its strings stay in one copy of the answer, decoded in place (the adapter copies a
 * record into the queue once). Pure: no state, no I/O, no logging. */
#include "kinesis_wire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "json.h"
#include "kinesis_scan.h"

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

/* GetRecords' answer is read by a scanner of its own rather than as a cJSON tree (a page of
 * 10,000 records would be some 60,000 allocations): one pass over a writable copy of the
 * answer checks that all of it is JSON, decodes the strings the records need in place (so they
 * are NUL-terminated where they lie) and skips everything else. Errors are reported in the
 * order the members are checked, whatever their order in the answer: the syntax first, then
 * Records, NextShardIterator, MillisBehindLatest, the records in order, ChildShards. ChildShards
 * (only at a closed shard's end) is parsed by cJSON from its span. */

void kinesis_records_fini(struct kinesis_records *r)
{
    sl_free(r->doc);
    cJSON_Delete(r->children_doc);
    sl_free(r->records);
    sl_free(r->children);
    memset(r, 0, sizeof(*r));
    r->millis_behind = -1;
}

/* One record's members as the scanner found them. */
struct kjs_rec {
    enum kjs_kind kind[5]; /* SequenceNumber, Data, PartitionKey, EncryptionType, arrival */
    char *str[5];
    size_t len[5];
};

enum { KJS_SEQ, KJS_DATA, KJS_KEY, KJS_ENC, KJS_TIME };

static const char *const kjs_rec_keys[5] = {
    "SequenceNumber", "Data", "PartitionKey", "EncryptionType", "ApproximateArrivalTimestamp",
};
static const size_t kjs_rec_key_lens[5] = {14, 4, 12, 14, 27};

/* The record object at s->p (after its '{'). */
static bool kjs_record_scan(struct kjs *s, struct kjs_rec *kr)
{
    memset(kr, 0, sizeof(*kr));
    kjs_ws(s);
    if (*s->p == '}') {
        s->p++;
        return true;
    }
    bool more = true;
    while (more) {
        char *key;
        size_t key_len;
        if (!kjs_key(s, &key, &key_len)) {
            return false;
        }
        int f = -1;
        for (int i = 0; i < 5; i++) {
            if (key_len == kjs_rec_key_lens[i] && memcmp(key, kjs_rec_keys[i], key_len) == 0) {
                f = i;
                break;
            }
        }
        bool ok = f >= 0 && kr->kind[f] == KJS_ABSENT
                      ? kjs_member(s, &kr->kind[f], &kr->str[f], &kr->len[f])
                      : kjs_skip(s);
        if (!ok || !kjs_next(s, '}', &more)) {
            return false;
        }
    }
    return true;
}

/* "GetRecords: Records[i]", made only when an error names it. */
static const char *kjs_where(char *where, size_t len, size_t i)
{
    (void)snprintf(where, len, "GetRecords: Records[%zu]", i);
    return where;
}

/* A required (or optional) string member of record i, as kinesis_str says it. */
static const char *kjs_rec_str(const struct kjs_rec *kr,
                               int f,
                               bool optional,
                               size_t i,
                               bool *ret_bad,
                               char *errbuf,
                               size_t errlen)
{
    char where[48];
    if (kr->kind[f] == KJS_STRING) {
        return kr->str[f];
    }
    if (optional && (kr->kind[f] == KJS_ABSENT || kr->kind[f] == KJS_NULL)) {
        return NULL;
    }
    (void)snprintf(errbuf, errlen, "%s.%s is %s (a string is required)",
                   kjs_where(where, sizeof(where), i), kjs_rec_keys[f],
                   kr->kind[f] != KJS_ABSENT ? "not a string" : "missing");
    *ret_bad = true;
    return NULL;
}

/* Epoch seconds written as plain digits with at most three decimals (kinesalite's
 * 1796583737.955), to ms exactly: what llround(strtod(s) * 1000) gives for them (below 1e13
 * seconds the double's error is far under half a millisecond), without strtod. false: another
 * form (an exponent, more decimals, a sign): strtod reads it. */
static bool kjs_epoch_ms(const char *s, int64_t *ret_ms)
{
    int64_t v = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (*s++ - '0');
        if (++digits > 13) {
            return false;
        }
    }
    int dec = 0;
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            if (++dec > 3) {
                return false;
            }
            v = v * 10 + (*s++ - '0');
        }
    }
    if (digits == 0 || *s == 'e' || *s == 'E' || v > INT64_C(10000000000000) * 1000) {
        return false;
    }
    for (; dec < 3; dec++) {
        v *= 10;
    }
    if (v > INT64_C(10000000000000000)) {
        return false; /* past 1e13 seconds: refused as strtod's path says */
    }
    *ret_ms = v;
    return true;
}

/* The checks of one record, in the order they have always been made. */
static bool kjs_record_check(
    const struct kjs_rec *kr, size_t i, struct kinesis_record *rec, char *errbuf, size_t errlen)
{
    char w[48];
    bool bad = false;
    rec->seq = kjs_rec_str(kr, KJS_SEQ, false, i, &bad, errbuf, errlen);
    rec->data = kjs_rec_str(kr, KJS_DATA, false, i, &bad, errbuf, errlen);
    rec->partition_key = kjs_rec_str(kr, KJS_KEY, false, i, &bad, errbuf, errlen);
    rec->encryption_type = kjs_rec_str(kr, KJS_ENC, true, i, &bad, errbuf, errlen);
    if (bad) {
        return false;
    }
    char why[128];
    rec->seq_len = kr->len[KJS_SEQ];
    if (kinesis_seq_check(rec->seq, rec->seq_len, why, sizeof(why)) < 0) {
        (void)snprintf(errbuf, errlen, "%s.SequenceNumber: %s", kjs_where(w, sizeof(w), i), why);
        return false;
    }
    rec->data_len = kr->len[KJS_DATA];
    if (!kinesis_is_base64(rec->data, rec->data_len)) {
        (void)snprintf(errbuf, errlen, "%s.Data is not padded standard base64",
                       kjs_where(w, sizeof(w), i));
        return false;
    }
    rec->partition_key_len = kr->len[KJS_KEY];
    if (rec->partition_key_len == 0) {
        (void)snprintf(errbuf, errlen, "%s.PartitionKey is empty", kjs_where(w, sizeof(w), i));
        return false;
    }
    int64_t ms;
    if (kr->kind[KJS_TIME] == KJS_NUMBER && kjs_epoch_ms(kr->str[KJS_TIME], &ms)) {
        rec->arrival_ms = ms;
        return true;
    }
    double t = kr->kind[KJS_TIME] == KJS_NUMBER ? strtod(kr->str[KJS_TIME], NULL) : NAN;
    if (!isfinite(t) || t < 0 || t > 1e13) {
        (void)snprintf(errbuf, errlen,
                       "%s.ApproximateArrivalTimestamp is %s (epoch seconds are required)",
                       kjs_where(w, sizeof(w), i),
                       kr->kind[KJS_TIME] != KJS_ABSENT ? "not a valid number" : "missing");
        return false;
    }
    rec->arrival_ms = (int64_t)llround(t * 1000.0);
    return true;
}

/* Records' array at s->p (after its '['): each record scanned, and checked until one fails
 * (*rec_err then says why; the rest are only scanned). */
static int kjs_records_scan(
    struct kjs *s, struct kinesis_records *ret, size_t *cap, char *rec_err, size_t rec_err_len)
{
    kjs_ws(s);
    if (*s->p == ']') {
        s->p++;
        return 0;
    }
    bool more = true;
    for (size_t i = 0; more; i++) {
        char where[48];
        if (*s->p != '{') {
            if (!rec_err[0]) {
                (void)snprintf(rec_err, rec_err_len, "GetRecords: Records[%zu] is not an object",
                               i);
            }
            if (!kjs_skip(s)) {
                return SL_EPROTO;
            }
        } else if (rec_err[0]) {
            if (!kjs_skip(s)) {
                return SL_EPROTO;
            }
        } else {
            struct kjs_rec kr;
            s->p++;
            if (!kjs_record_scan(s, &kr)) {
                return SL_EPROTO;
            }
            if (ret->n == *cap) {
                size_t nc = *cap ? *cap * 2 : 64;
                struct kinesis_record *r = sl_realloc(ret->records, nc * sizeof(*r));
                if (!r) {
                    return SL_ENOMEM;
                }
                ret->records = r;
                *cap = nc;
            }
            struct kinesis_record *rec = &ret->records[ret->n];
            memset(rec, 0, sizeof(*rec));
            if (!kjs_record_check(&kr, i, rec, rec_err, rec_err_len)) {
                /* the message is in rec_err */
            } else if (ret->n > 0 && kinesis_seq_compare(rec[-1].seq, rec[-1].seq_len, rec->seq,
                                                         rec->seq_len) >= 0) {
                (void)snprintf(rec_err, rec_err_len,
                               "%s.SequenceNumber is not after the previous record's (records "
                               "of a shard come in increasing order)",
                               kjs_where(where, sizeof(where), i));
            } else {
                ret->n++;
            }
        }
        if (!kjs_next(s, ']', &more)) {
            return SL_EPROTO;
        }
    }
    return 0;
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

static int kinesis_children_read(
    struct kinesis_records *ret, const char *span, size_t span_len, char *errbuf, size_t errlen)
{
    cJSON *ch = sl_json_parse_exact(span, span_len);
    if (!ch) {
        return SL_ENOMEM; /* the scanner checked the span: only memory can fail here */
    }
    ret->children_doc = ch;
    if (cJSON_IsNull(ch)) {
        return 0;
    }
    if (!cJSON_IsArray(ch)) {
        (void)snprintf(errbuf, errlen, "GetRecords: ChildShards is not an array");
        return SL_EPROTO;
    }
    size_t nc = (size_t)cJSON_GetArraySize(ch);
    if (nc) {
        ret->children = sl_calloc(nc, sizeof(*ret->children));
        if (!ret->children) {
            return SL_ENOMEM;
        }
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, ch)
    {
        char where[48];
        (void)snprintf(where, sizeof(where), "GetRecords: ChildShards[%zu]", ret->n_children);
        if (!kinesis_child_read(e, where, &ret->children[ret->n_children], errbuf, errlen)) {
            return SL_EPROTO;
        }
        ret->n_children++;
    }
    return 0;
}

/* The answer's top level, scanned: Records read, the other members the reader wants kept. */
struct kjs_top {
    enum kjs_kind records; /* KJS_OTHER for an array too; see records_seen */
    bool records_seen;     /* Records was an array and was read */
    enum kjs_kind next, mbl;
    char *next_str, *mbl_str;
    const char *children; /* ChildShards' span, or NULL */
    size_t children_len;
};

static int kjs_top_scan(struct kjs *s,
                        struct kjs_top *t,
                        struct kinesis_records *ret,
                        char *rec_err,
                        size_t rec_err_len)
{
    size_t cap = 0;
    kjs_ws(s);
    if (*s->p != '{') {
        return SL_EPROTO;
    }
    s->p++;
    kjs_ws(s);
    bool more = *s->p != '}';
    if (!more) {
        s->p++;
    }
    while (more) {
        char *key;
        size_t key_len;
        if (!kjs_key(s, &key, &key_len)) {
            return SL_EPROTO;
        }
        bool ok = true;
        size_t n;
        if (strcmp(key, "Records") == 0 && t->records == KJS_ABSENT) {
            t->records = KJS_OTHER;
            if (*s->p == '[') {
                s->p++;
                t->records_seen = true;
                int r = kjs_records_scan(s, ret, &cap, rec_err, rec_err_len);
                if (r < 0) {
                    return r;
                }
            } else {
                ok = kjs_skip(s);
            }
        } else if (strcmp(key, "NextShardIterator") == 0 && t->next == KJS_ABSENT) {
            ok = kjs_member(s, &t->next, &t->next_str, &n);
        } else if (strcmp(key, "MillisBehindLatest") == 0 && t->mbl == KJS_ABSENT) {
            ok = kjs_member(s, &t->mbl, &t->mbl_str, &n);
        } else if (strcmp(key, "ChildShards") == 0 && !t->children) {
            t->children = s->p;
            ok = kjs_skip(s);
            t->children_len = (size_t)(s->p - t->children);
        } else {
            ok = kjs_skip(s);
        }
        if (!ok || !kjs_next(s, '}', &more)) {
            return SL_EPROTO;
        }
    }
    kjs_ws(s);
    return s->p == s->end ? 0 : SL_EPROTO;
}

int kinesis_wire_get_records_read(
    const char *body, size_t len, struct kinesis_records *ret, char *errbuf, size_t errlen)
{
    memset(ret, 0, sizeof(*ret));
    ret->millis_behind = -1;
    char *doc = sl_malloc(len + 1);
    if (!doc) {
        return SL_ENOMEM;
    }
    if (len) {
        memcpy(doc, body, len);
    }
    doc[len] = '\0';
    ret->doc = doc;
    struct kjs s = {.p = doc, .end = doc + len};
    struct kjs_top t = {0};
    char rec_err[256] = "";
    int r =
        memchr(doc, '\0', len) ? SL_EPROTO : kjs_top_scan(&s, &t, ret, rec_err, sizeof(rec_err));
    if (r == SL_EPROTO) {
        (void)snprintf(errbuf, errlen, "GetRecords: the answer is not a JSON object");
        goto fail;
    }
    if (r < 0) {
        goto fail;
    }
    r = SL_EPROTO;
    if (!t.records_seen) {
        (void)snprintf(errbuf, errlen, "GetRecords: Records is %s (an array is required)",
                       t.records != KJS_ABSENT ? "not an array" : "missing");
        goto fail;
    }
    if (t.next != KJS_ABSENT && t.next != KJS_NULL && t.next != KJS_STRING) {
        (void)snprintf(errbuf, errlen,
                       "GetRecords.NextShardIterator is not a string (a string is required)");
        goto fail;
    }
    ret->next_iterator = t.next == KJS_STRING && *t.next_str ? t.next_str : NULL;
    if (t.mbl != KJS_ABSENT && t.mbl != KJS_NULL) {
        double v = t.mbl == KJS_NUMBER ? strtod(t.mbl_str, NULL) : -1;
        if (!(v >= 0) || v > 9e15) {
            (void)snprintf(errbuf, errlen,
                           "GetRecords: MillisBehindLatest is not a non-negative number");
            goto fail;
        }
        ret->millis_behind = (int64_t)v;
    }
    if (rec_err[0]) {
        (void)snprintf(errbuf, errlen, "%s", rec_err);
        goto fail;
    }
    if (t.children) {
        r = kinesis_children_read(ret, t.children, t.children_len, errbuf, errlen);
        if (r < 0) {
            goto fail;
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
