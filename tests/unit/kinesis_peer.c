/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_peer.c: the scripted Kinesis server of the Kinesis source's unit tests
 * (kinesis_peer.h). It owns the streams' shards and records and the scripted failures; the
 * HTTP is http_peer.c's. Answers are written as AWS writes them (wire.md §1), so that the
 * source reads them through the same readers as kinesalite's and AWS's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "encoder.h"
#include "kinesis_peer.h"

#define KPEER_T0_S                                                                 \
    1700000000 /* the arrival of record 0, in epoch seconds; record i is i s later \
                */

void kpeer_seq(size_t shard, size_t idx, char *buf)
{
    (void)snprintf(buf, 64, "49%02u%046d%06u", (unsigned)(shard % 100), 0,
                   (unsigned)(idx % 1000000));
}

static void kpeer_send(int fd, int status, const char *type, cJSON *body)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    char msg[256];
    if (!text) {
        (void)snprintf(msg, sizeof(msg), "{\"__type\":\"%s\",\"message\":\"scripted\"}",
                       type ? type : "InternalFailure");
    }
    const char *b = text ? text : msg;
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/x-amz-json-1.1\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, status == 200 ? "OK" : "Error", strlen(b));
    (void)http_peer_send_all(fd, head, (size_t)n);
    (void)http_peer_send_all(fd, b, strlen(b));
    free(text);
}

static struct kpeer_shard *kpeer_find(struct kpeer *p, const char *id, size_t *ret_i)
{
    for (size_t i = 0; i < p->n_shards; i++) {
        if (id && strcmp(p->shards[i].id, id) == 0) {
            *ret_i = i;
            return &p->shards[i];
        }
    }
    return NULL;
}

static cJSON *kpeer_list(struct kpeer *p, const cJSON *req)
{
    const cJSON *tok = cJSON_GetObjectItemCaseSensitive(req, "NextToken");
    size_t start = 0;
    if (cJSON_IsString(tok)) {
        start = (size_t)strtoul(tok->valuestring + 4, NULL, 10); /* "tok-N" */
    }
    size_t end = p->page_size ? start + p->page_size : p->n_shards;
    if (end > p->n_shards) {
        end = p->n_shards;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(out, "Shards");
    for (size_t i = start; i < end; i++) {
        const struct kpeer_shard *s = &p->shards[i];
        if (s->unlisted || s->gone) {
            continue;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "ShardId", s->id);
        if (s->parent[0]) {
            cJSON_AddStringToObject(o, "ParentShardId", s->parent);
        }
        if (s->adjacent[0]) {
            cJSON_AddStringToObject(o, "AdjacentParentShardId", s->adjacent);
        }
        cJSON *h = cJSON_AddObjectToObject(o, "HashKeyRange");
        cJSON_AddStringToObject(h, "StartingHashKey", s->hash_lo);
        cJSON_AddStringToObject(h, "EndingHashKey", s->hash_hi);
        cJSON *r = cJSON_AddObjectToObject(o, "SequenceNumberRange");
        char seq[64];
        kpeer_seq(i, 0, seq);
        cJSON_AddStringToObject(r, "StartingSequenceNumber", seq);
        if (s->closed) {
            kpeer_seq(i, 999999, seq);
            cJSON_AddStringToObject(r, "EndingSequenceNumber", seq);
        }
        cJSON_AddItemToArray(arr, o);
    }
    if (end < p->n_shards) {
        char t[32];
        (void)snprintf(t, sizeof(t), "tok-%zu", end);
        cJSON_AddStringToObject(out, "NextToken", t);
    }
    return out;
}

static cJSON *kpeer_iter(struct kpeer *p, const cJSON *req)
{
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(req, "ShardId");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(req, "ShardIteratorType");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(req, "StartingSequenceNumber");
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(req, "Timestamp");
    size_t i;
    struct kpeer_shard *s = cJSON_IsString(sid) ? kpeer_find(p, sid->valuestring, &i) : NULL;
    if (!s || !cJSON_IsString(type) || s->gone) {
        return NULL;
    }
    (void)snprintf(p->last_iter_type, sizeof(p->last_iter_type), "%s", type->valuestring);
    (void)snprintf(p->last_iter_seq, sizeof(p->last_iter_seq), "%s",
                   cJSON_IsString(seq) ? seq->valuestring : "");
    size_t idx = 0;
    if (strcmp(type->valuestring, "LATEST") == 0) {
        idx = s->n;
    } else if (strcmp(type->valuestring, "AT_TIMESTAMP") == 0 && cJSON_IsNumber(ts)) {
        double t = ts->valuedouble - KPEER_T0_S;
        idx = t <= 0 ? 0 : (size_t)(t + 0.999);
    } else if (cJSON_IsString(seq) && strlen(seq->valuestring) == 56) {
        idx = (size_t)strtoul(seq->valuestring + 50, NULL, 10);
        if (strcmp(type->valuestring, "AFTER_SEQUENCE_NUMBER") == 0) {
            idx++;
        }
    }
    cJSON *out = cJSON_CreateObject();
    char it[64];
    (void)snprintf(it, sizeof(it), "%s/%zu", s->id, idx);
    cJSON_AddStringToObject(out, "ShardIterator", it);
    return out;
}

static cJSON *kpeer_records(struct kpeer *p, const cJSON *req)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(req, "ShardIterator");
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "Limit");
    if (!cJSON_IsString(it)) {
        return NULL;
    }
    char id[64];
    (void)snprintf(id, sizeof(id), "%s", it->valuestring);
    char *slash = strchr(id, '/');
    if (!slash) {
        return NULL;
    }
    *slash = '\0';
    size_t idx = (size_t)strtoul(slash + 1, NULL, 10);
    size_t si;
    struct kpeer_shard *s = kpeer_find(p, id, &si);
    if (!s) {
        return NULL;
    }
    size_t limit = cJSON_IsNumber(lim) ? (size_t)lim->valueint : 10000;
    p->last_limit = cJSON_IsNumber(lim) ? lim->valueint : -1;
    size_t end = idx + limit < s->n ? idx + limit : s->n;
    cJSON *out = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(out, "Records");
    for (size_t k = idx; k < end; k++) {
        cJSON *o = cJSON_CreateObject();
        char seq[64];
        kpeer_seq(si, k, seq);
        cJSON_AddStringToObject(o, "SequenceNumber", seq);
        cJSON_AddNumberToObject(o, "ApproximateArrivalTimestamp", (double)(KPEER_T0_S + k));
        struct sl_buf b;
        sl_buf_init(&b);
        if (s->stored_b64[k]) {
            assert_int_equal(sl_buf_append(&b, s->data[k], s->len[k]), 0);
        } else {
            assert_int_equal(sl_enc_base64(&b, s->data[k], s->len[k]), 0);
        }
        cJSON_AddStringToObject(o, "Data", b.len ? b.data : "");
        sl_buf_fini(&b);
        cJSON_AddStringToObject(o, "PartitionKey", s->key[k]);
        cJSON_AddItemToArray(arr, o);
    }
    if (!(s->closed && end >= s->n)) {
        char next[64];
        (void)snprintf(next, sizeof(next), "%s/%zu", s->id, end);
        cJSON_AddStringToObject(out, "NextShardIterator", next);
    } else {
        /* the end of a closed shard: its children, as AWS names them */
        cJSON *kids = cJSON_AddArrayToObject(out, "ChildShards");
        for (size_t c = 0; c < p->n_shards; c++) {
            const struct kpeer_shard *k = &p->shards[c];
            if (strcmp(k->parent, s->id) != 0 && strcmp(k->adjacent, s->id) != 0) {
                continue;
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "ShardId", k->id);
            cJSON *ps = cJSON_AddArrayToObject(o, "ParentShards");
            cJSON_AddItemToArray(ps, cJSON_CreateString(k->parent));
            if (k->adjacent[0]) {
                cJSON_AddItemToArray(ps, cJSON_CreateString(k->adjacent));
            }
            cJSON *h = cJSON_AddObjectToObject(o, "HashKeyRange");
            cJSON_AddStringToObject(h, "StartingHashKey", k->hash_lo);
            cJSON_AddStringToObject(h, "EndingHashKey", k->hash_hi);
            cJSON_AddItemToArray(kids, o);
        }
    }
    cJSON_AddNumberToObject(out, "MillisBehindLatest", (double)(s->n - end) * 1000);
    return out;
}

static bool kpeer_is_gone(struct kpeer *p, const cJSON *req)
{
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(req, "ShardId");
    size_t i;
    const struct kpeer_shard *s = cJSON_IsString(sid) ? kpeer_find(p, sid->valuestring, &i) : NULL;
    return s && s->gone;
}

static void kpeer_answer(
    void *arg, int fd, const char *head, size_t head_len, const char *body, size_t body_len)
{
    struct kpeer *p = arg;
    const char *target = http_peer_header(head, head_len, "X-Amz-Target");
    char op[40] = "";
    if (target) {
        const char *dot = strchr(target, '.');
        size_t n = strcspn(dot ? dot + 1 : target, "\r\n");
        (void)snprintf(op, sizeof(op), "%.*s", (int)n, dot ? dot + 1 : target);
    }
    cJSON *req = cJSON_ParseWithLength(body, body_len);
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < sizeof(p->fail) / sizeof(p->fail[0]); i++) {
        struct kpeer_fail *f = &p->fail[i];
        if (f->left > 0 && strcmp(f->target, op) == 0) {
            f->left--;
            pthread_mutex_unlock(&p->mu);
            kpeer_send(fd, f->status, f->type, NULL);
            cJSON_Delete(req);
            return;
        }
    }
    cJSON *out = NULL;
    const char *err = "ValidationException";
    int status = 400;
    if (p->missing) {
        err = "ResourceNotFoundException";
    } else if (strcmp(op, "GetShardIterator") == 0 && kpeer_is_gone(p, req)) {
        p->calls_iter++;
        err = "ResourceNotFoundException";
    } else if (strcmp(op, "ListShards") == 0) {
        p->calls_list++;
        out = kpeer_list(p, req);
    } else if (strcmp(op, "GetShardIterator") == 0) {
        p->calls_iter++;
        out = kpeer_iter(p, req);
    } else if (strcmp(op, "GetRecords") == 0) {
        p->calls_records++;
        out = kpeer_records(p, req);
    }
    pthread_mutex_unlock(&p->mu);
    kpeer_send(fd, out ? 200 : status, err, out);
    cJSON_Delete(out);
    cJSON_Delete(req);
}

void kpeer_start(struct kpeer *p, const char *stream, const char *const *shard_ids)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    (void)snprintf(p->stream, sizeof(p->stream), "%s", stream);
    for (size_t i = 0; shard_ids && shard_ids[i]; i++) {
        kpeer_add_shard(p, shard_ids[i], NULL, NULL);
    }
    http_peer_start(&p->http, kpeer_answer, p);
    (void)snprintf(p->endpoint, sizeof(p->endpoint), "http://127.0.0.1:%d", p->http.port);
}

void kpeer_stop(struct kpeer *p)
{
    http_peer_stop(&p->http);
    for (size_t i = 0; i < p->n_shards; i++) {
        for (size_t k = 0; k < p->shards[i].n; k++) {
            free(p->shards[i].data[k]);
        }
    }
    pthread_mutex_destroy(&p->mu);
}

void kpeer_add_shard(struct kpeer *p, const char *id, const char *parent, const char *adjacent)
{
    pthread_mutex_lock(&p->mu);
    assert_true(p->n_shards < KPEER_SHARDS_MAX);
    struct kpeer_shard *s = &p->shards[p->n_shards++];
    memset(s, 0, sizeof(*s));
    (void)snprintf(s->id, sizeof(s->id), "%s", id);
    (void)snprintf(s->parent, sizeof(s->parent), "%s", parent ? parent : "");
    (void)snprintf(s->adjacent, sizeof(s->adjacent), "%s", adjacent ? adjacent : "");
    (void)snprintf(s->hash_lo, sizeof(s->hash_lo), "0");
    (void)snprintf(s->hash_hi, sizeof(s->hash_hi), "340282366920938463463374607431768211455");
    pthread_mutex_unlock(&p->mu);
}

void kpeer_put(struct kpeer *p, size_t shard, const char *key, const char *data)
{
    kpeer_put_bin(p, shard, key, data, strlen(data));
}

void kpeer_put_bin(struct kpeer *p, size_t shard, const char *key, const void *data, size_t len)
{
    pthread_mutex_lock(&p->mu);
    struct kpeer_shard *s = &p->shards[shard];
    assert_true(s->n < KPEER_RECORDS_MAX && !s->closed);
    s->data[s->n] = malloc(len ? len : 1);
    assert_non_null(s->data[s->n]);
    memcpy(s->data[s->n], data, len);
    s->len[s->n] = len;
    (void)snprintf(s->key[s->n], sizeof(s->key[0]), "%s", key);
    s->n++;
    pthread_mutex_unlock(&p->mu);
}

void kpeer_put_stored(struct kpeer *p, size_t shard, const char *key, const char *text)
{
    kpeer_put(p, shard, key, text);
    pthread_mutex_lock(&p->mu);
    struct kpeer_shard *s = &p->shards[shard];
    s->stored_b64[s->n - 1] = true;
    pthread_mutex_unlock(&p->mu);
}

void kpeer_set_range(struct kpeer *p, size_t shard, const char *lo, const char *hi)
{
    pthread_mutex_lock(&p->mu);
    (void)snprintf(p->shards[shard].hash_lo, sizeof(p->shards[shard].hash_lo), "%s", lo);
    (void)snprintf(p->shards[shard].hash_hi, sizeof(p->shards[shard].hash_hi), "%s", hi);
    pthread_mutex_unlock(&p->mu);
}

void kpeer_set_flags(struct kpeer *p, size_t shard, bool unlisted, bool gone)
{
    pthread_mutex_lock(&p->mu);
    p->shards[shard].unlisted = unlisted;
    p->shards[shard].gone = gone;
    pthread_mutex_unlock(&p->mu);
}

void kpeer_close(struct kpeer *p, size_t shard)
{
    pthread_mutex_lock(&p->mu);
    p->shards[shard].closed = true;
    pthread_mutex_unlock(&p->mu);
}

void kpeer_fail(struct kpeer *p, const char *target, int status, const char *type, int n)
{
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < sizeof(p->fail) / sizeof(p->fail[0]); i++) {
        struct kpeer_fail *f = &p->fail[i];
        if (f->left == 0) {
            (void)snprintf(f->target, sizeof(f->target), "%s", target);
            (void)snprintf(f->type, sizeof(f->type), "%s", type);
            f->status = status;
            f->left = n;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
}

unsigned kpeer_count(struct kpeer *p, const unsigned *counter)
{
    pthread_mutex_lock(&p->mu);
    unsigned v = *counter;
    pthread_mutex_unlock(&p->mu);
    return v;
}
