/* SPDX-License-Identifier: Apache-2.0 */
/* stream_part.c: a delivery stream's open buffers, one per destination partition
 * (stream_part.h): which partition a record joins (by its key, compared by hash then bytes),
 * when a partition is sealed (SizeInMBs, IntervalInSeconds from its oldest arrival, or the
 * open-partition limit, which seals the oldest), and the sealed object handed to the caller.
 * It owns the bytes and ids of the records buffered, nothing else: the stream decides which
 * key a record has, and delivers and releases what is sealed. No loop and no clock (the caller
 * passes the time), so it is tested without one. The partitions are a small array scanned by
 * hash: at most max_parts (500) are open. Nothing logs. */
#include "stream_part.h"

#include <assert.h>
#include <string.h>

#include "alloc.h"
#include "hash.h"

#define PARTS_RECS_MIN 1024 /* record slots of a new partition; doubled as it fills */

struct sl_stream_parts {
    struct sl_stream_parts_conf conf;
    struct sl_stream_obj **open; /* the open partitions, in no order */
    size_t n;
    size_t bytes;
    size_t records;
};

void sl_stream_obj_free(struct sl_stream_obj *o)
{
    if (!o) {
        return;
    }
    sl_buf_fini(&o->data);
    sl_free(o->recs);
    sl_free(o->ids);
    sl_strmap_clear(&o->query, false);
    sl_strmap_clear(&o->lambda, false);
    sl_free(o->key);
    sl_free(o);
}

int sl_stream_parts_new(const struct sl_stream_parts_conf *conf, struct sl_stream_parts **ret_p)
{
    assert(conf->max_parts >= 1);
    struct sl_stream_parts *p = sl_calloc(1, sizeof(*p));
    if (!p) {
        return SL_ENOMEM;
    }
    p->conf = *conf;
    p->open = sl_calloc(conf->max_parts, sizeof(*p->open));
    if (!p->open) {
        sl_free(p);
        return SL_ENOMEM;
    }
    *ret_p = p;
    return 0;
}

void sl_stream_parts_free(struct sl_stream_parts *p)
{
    if (!p) {
        return;
    }
    for (size_t i = 0; i < p->n; i++) {
        sl_stream_obj_free(p->open[i]);
    }
    sl_free(p->open);
    sl_free(p);
}

static uint64_t parts_hash(const struct sl_stream_part_key *key)
{
    uint64_t h = sl_hash_fnv1a(key->id, key->id_len, SL_HASH_FNV1A_BASIS);
    const char *t = key->error_type ? key->error_type : "";
    return sl_hash_mix(sl_hash_fnv1a(t, strlen(t) + 1, h));
}

static bool
parts_same(const struct sl_stream_obj *o, const struct sl_stream_part_key *key, uint64_t hash)
{
    if (o->hash != hash || o->key_len != key->id_len) {
        return false;
    }
    bool both_plain = !o->error_type && !key->error_type;
    bool same_type = both_plain || (o->error_type && key->error_type &&
                                    strcmp(o->error_type, key->error_type) == 0);
    return same_type && memcmp(o->key, key->id, key->id_len) == 0;
}

static int parts_copy_map(struct sl_strmap *dst, const struct sl_strmap *src)
{
    for (size_t i = 0; src && i < src->n; i++) {
        if (sl_strmap_put(dst, src->keys[i], src->values[i]) < 0) {
            return SL_ENOMEM;
        }
    }
    return 0;
}

/* Takes partition i out of the open set and hands it over, its records' bytes as pointers. */
static void parts_seal(struct sl_stream_parts *p, size_t i, sl_stream_parts_emit_fn emit, void *arg)
{
    struct sl_stream_obj *o = p->open[i];
    p->open[i] = p->open[--p->n];
    p->open[p->n] = NULL;
    p->bytes -= o->data.len;
    p->records -= o->n_records;
    if (o->n_records == 0) {
        sl_stream_obj_free(o); /* left empty by a failed add */
        return;
    }
    for (size_t k = 0; k < o->n_records; k++) {
        o->recs[k].data = o->data.data + (uintptr_t)o->recs[k].data;
    }
    emit(arg, o);
}

/* The open partition holding the oldest record. */
static size_t parts_oldest_index(const struct sl_stream_parts *p)
{
    size_t best = 0;
    for (size_t i = 1; i < p->n; i++) {
        if (p->open[i]->oldest_ms < p->open[best]->oldest_ms) {
            best = i;
        }
    }
    return best;
}

static struct sl_stream_obj *
parts_open(struct sl_stream_parts *p, const struct sl_stream_part_key *key, uint64_t hash)
{
    struct sl_stream_obj *o = sl_calloc(1, sizeof(*o));
    if (!o) {
        return NULL;
    }
    sl_buf_init(&o->data);
    o->key = sl_malloc(key->id_len + 1);
    int r = o->key ? 0 : SL_ENOMEM;
    if (r == 0) {
        memcpy(o->key, key->id, key->id_len);
        o->key[key->id_len] = '\0';
        o->key_len = key->id_len;
        o->hash = hash;
        o->error_type = key->error_type;
        r = parts_copy_map(&o->query, key->query);
    }
    if (r == 0) {
        r = parts_copy_map(&o->lambda, key->lambda);
    }
    if (r == 0 && p->conf.reserve_bytes > 0) {
        r = sl_buf_reserve(&o->data, p->conf.reserve_bytes);
    }
    if (r < 0) {
        sl_stream_obj_free(o);
        return NULL;
    }
    return o;
}

int sl_stream_parts_add(struct sl_stream_parts *p,
                        const struct sl_stream_part_key *key,
                        const void *data,
                        size_t len,
                        const void *delim,
                        size_t delim_len,
                        int64_t arrival_ms,
                        uint64_t id,
                        sl_stream_parts_emit_fn emit,
                        void *arg)
{
    uint64_t hash = parts_hash(key);
    struct sl_stream_obj *o = NULL;
    for (size_t i = 0; i < p->n && !o; i++) {
        if (parts_same(p->open[i], key, hash)) {
            o = p->open[i];
        }
    }
    if (!o) {
        o = parts_open(p, key, hash);
        if (!o) {
            return SL_ENOMEM;
        }
        if (p->n == p->conf.max_parts) {
            parts_seal(p, parts_oldest_index(p), emit, arg);
        }
        p->open[p->n++] = o;
    }
    if (o->n_records == o->recs_cap) {
        size_t cap = o->recs_cap ? 2 * o->recs_cap : PARTS_RECS_MIN;
        struct sl_stream_dest_rec *recs = sl_realloc(o->recs, cap * sizeof(*recs));
        if (recs) {
            o->recs = recs;
        }
        uint64_t *ids = recs ? sl_realloc(o->ids, cap * sizeof(*ids)) : NULL;
        if (!ids) {
            return SL_ENOMEM; /* an empty partition just opened stays open, empty */
        }
        o->ids = ids;
        o->recs_cap = cap;
    }
    if (sl_buf_reserve(&o->data, len + delim_len) < 0) {
        return SL_ENOMEM;
    }
    size_t at = o->data.len;
    memcpy(o->data.data + at, data, len);
    if (delim_len > 0) {
        memcpy(o->data.data + at + len, delim, delim_len);
    }
    o->data.len += len + delim_len;
    o->data.data[o->data.len] = '\0';
    if (o->n_records == 0 || arrival_ms < o->oldest_ms) {
        o->oldest_ms = arrival_ms;
    }
    o->recs[o->n_records] =
        (struct sl_stream_dest_rec){(const void *)(uintptr_t)at, len + delim_len, arrival_ms};
    o->ids[o->n_records++] = id;
    p->bytes += len + delim_len;
    p->records++;
    if ((int64_t)o->data.len >= p->conf.size_bytes) {
        for (size_t i = 0; i < p->n; i++) {
            if (p->open[i] == o) {
                parts_seal(p, i, emit, arg);
                break;
            }
        }
    }
    return 0;
}

void sl_stream_parts_seal_due(struct sl_stream_parts *p,
                              int64_t now_ms,
                              sl_stream_parts_emit_fn emit,
                              void *arg)
{
    for (size_t i = 0; i < p->n;) {
        struct sl_stream_obj *o = p->open[i];
        if (o->n_records > 0 &&
            (now_ms == INT64_MAX || o->oldest_ms + p->conf.interval_ms <= now_ms)) {
            parts_seal(p, i, emit, arg); /* the last one moved to i */
        } else {
            i++;
        }
    }
}

int64_t sl_stream_parts_next_due(const struct sl_stream_parts *p)
{
    int64_t oldest = sl_stream_parts_oldest(p);
    return oldest < 0 ? INT64_MAX : oldest + p->conf.interval_ms;
}

int64_t sl_stream_parts_oldest(const struct sl_stream_parts *p)
{
    int64_t oldest = -1;
    for (size_t i = 0; i < p->n; i++) {
        const struct sl_stream_obj *o = p->open[i];
        if (o->n_records > 0 && (oldest < 0 || o->oldest_ms < oldest)) {
            oldest = o->oldest_ms;
        }
    }
    return oldest;
}

size_t sl_stream_parts_bytes(const struct sl_stream_parts *p)
{
    return p->bytes;
}

size_t sl_stream_parts_records(const struct sl_stream_parts *p)
{
    return p->records;
}

size_t sl_stream_parts_count(const struct sl_stream_parts *p)
{
    return p->n;
}
