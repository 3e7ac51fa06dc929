/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_kpl.c: KPL aggregated records (wire.md §5) split into their user records, for the
 * Kinesis source's `deaggregate` option. A record is an aggregate only when it starts with the
 * magic, its MD5 trailer matches and its protobuf parses with every index inside its table;
 * anything else is handed back as plain or malformed and delivered as stored (what Lambda does
 * with every record), never dropped. A tiny protobuf reader (varints, length-delimited fields,
 * skipping unknown fields by wire type) is enough for the two messages involved. Also the
 * hash key of a partition key (MD5 as a 128-bit decimal). Pure: no state, no I/O, no logging. */
#include "kinesis_kpl.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "err.h"
#include "md5.h"

static const unsigned char kpl_magic[KINESIS_KPL_MAGIC_LEN] = {0xF3, 0x89, 0x9A, 0xC2};

/* protobuf wire types */
enum { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

struct pb {
    const unsigned char *p, *end;
};

static bool pb_varint(struct pb *b, uint64_t *ret)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (b->p == b->end) {
            return false;
        }
        unsigned char c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *ret = v;
            return true;
        }
    }
    return false; /* more than 10 bytes */
}

/* Reads one field's key and, for a length-delimited field, its bytes (*ret_val, *ret_len); a
 * varint field's value goes to *ret_num; other fixed-size fields are skipped. Returns false with
 * *ret_why on truncated or unsupported input. */
static bool pb_field(struct pb *b,
                     uint64_t *ret_field,
                     unsigned *ret_type,
                     uint64_t *ret_num,
                     const unsigned char **ret_val,
                     size_t *ret_len,
                     const char **ret_why)
{
    uint64_t key;
    if (!pb_varint(b, &key)) {
        *ret_why = "truncated or overlong field key";
        return false;
    }
    *ret_field = key >> 3;
    *ret_type = (unsigned)(key & 7);
    size_t left = (size_t)(b->end - b->p);
    switch (*ret_type) {
    case PB_VARINT:
        if (!pb_varint(b, ret_num)) {
            *ret_why = "truncated or overlong varint";
            return false;
        }
        return true;
    case PB_I64:
    case PB_I32: {
        size_t n = *ret_type == PB_I64 ? 8 : 4;
        if (left < n) {
            *ret_why = "truncated fixed-size field";
            return false;
        }
        b->p += n;
        return true;
    }
    case PB_LEN: {
        uint64_t n;
        if (!pb_varint(b, &n)) {
            *ret_why = "truncated or overlong length";
            return false;
        }
        if (n > (uint64_t)(b->end - b->p)) {
            *ret_why = "length runs past the end";
            return false;
        }
        *ret_val = b->p;
        *ret_len = (size_t)n;
        b->p += n;
        return true;
    }
    default:
        *ret_why = "unsupported wire type (groups are not allowed)";
        return false;
    }
}

struct kpl_str {
    const char *s;
    size_t n;
};

/* One Record message: indices and data; tags and unknown fields skipped. */
static bool kpl_record(const unsigned char *p,
                       size_t n,
                       uint64_t *ret_pk,
                       bool *ret_has_ehk,
                       uint64_t *ret_ehk,
                       struct kinesis_kpl_record *rec,
                       const char **ret_why)
{
    struct pb b = {p, p + n};
    bool has_pk = false, has_data = false;
    *ret_has_ehk = false;
    while (b.p < b.end) {
        uint64_t field, num = 0;
        unsigned type;
        const unsigned char *val = NULL;
        size_t len = 0;
        if (!pb_field(&b, &field, &type, &num, &val, &len, ret_why)) {
            return false;
        }
        if (field == 1 && type == PB_VARINT) {
            *ret_pk = num;
            has_pk = true;
        } else if (field == 2 && type == PB_VARINT) {
            *ret_ehk = num;
            *ret_has_ehk = true;
        } else if (field == 3 && type == PB_LEN) {
            rec->data = val;
            rec->len = len;
            has_data = true;
        } else if (field >= 1 && field <= 3) {
            *ret_why = "record field has the wrong wire type";
            return false;
        }
    }
    if (!has_pk) {
        *ret_why = "record has no partition_key_index";
        return false;
    }
    if (!has_data) {
        *ret_why = "record has no data";
        return false;
    }
    return true;
}

int kinesis_kpl_parse(
    const unsigned char *data, size_t len, struct kinesis_kpl_agg *ret, char *errbuf, size_t errlen)
{
    ret->records = NULL;
    ret->n = 0;
    if (len < KINESIS_KPL_MAGIC_LEN || memcmp(data, kpl_magic, KINESIS_KPL_MAGIC_LEN) != 0) {
        return KINESIS_KPL_PLAIN;
    }
    if (len < KINESIS_KPL_MAGIC_LEN + KINESIS_KPL_MD5_LEN) {
        (void)snprintf(errbuf, errlen,
                       "aggregate of %zu bytes is shorter than magic + MD5 (20 bytes)", len);
        return KINESIS_KPL_MALFORMED;
    }
    const unsigned char *pbuf = data + KINESIS_KPL_MAGIC_LEN;
    size_t plen = len - KINESIS_KPL_MAGIC_LEN - KINESIS_KPL_MD5_LEN;
    unsigned char md5[SL_MD5_LEN];
    sl_md5(pbuf, plen, md5);
    if (memcmp(md5, pbuf + plen, SL_MD5_LEN) != 0) {
        (void)snprintf(errbuf, errlen, "aggregate's MD5 trailer does not match its protobuf");
        return KINESIS_KPL_MALFORMED;
    }

    /* pass 1: count the tables and the records */
    size_t n_pk = 0, n_ehk = 0, n_rec = 0;
    const char *why = NULL;
    struct pb b = {pbuf, pbuf + plen};
    while (b.p < b.end) {
        uint64_t field, num;
        unsigned type;
        const unsigned char *val;
        size_t vlen;
        if (!pb_field(&b, &field, &type, &num, &val, &vlen, &why)) {
            goto malformed;
        }
        if (field >= 1 && field <= 3 && type != PB_LEN) {
            why = "aggregate field has the wrong wire type";
            goto malformed;
        }
        n_pk += field == 1;
        n_ehk += field == 2;
        n_rec += field == 3;
    }
    if (n_rec == 0) {
        why = "aggregate holds no records";
        goto malformed;
    }

    /* pass 2: fill them */
    struct kpl_str *tables = sl_calloc(n_pk + n_ehk + 1, sizeof(*tables));
    uint64_t *idx = sl_calloc(n_rec * 2 + 1, sizeof(*idx));
    bool *has_ehk = sl_calloc(n_rec, sizeof(*has_ehk));
    struct kinesis_kpl_record *recs = sl_calloc(n_rec, sizeof(*recs));
    if (!tables || !idx || !has_ehk || !recs) {
        sl_free(tables);
        sl_free(idx);
        sl_free(has_ehk);
        sl_free(recs);
        return SL_ENOMEM;
    }
    struct kpl_str *pk = tables, *ehk = tables + n_pk;
    size_t i_pk = 0, i_ehk = 0, i_rec = 0;
    b = (struct pb){pbuf, pbuf + plen};
    while (b.p < b.end) {
        uint64_t field, num;
        unsigned type;
        const unsigned char *val = NULL;
        size_t vlen = 0;
        (void)pb_field(&b, &field, &type, &num, &val, &vlen, &why); /* parsed in pass 1 */
        if (field == 1) {
            pk[i_pk++] = (struct kpl_str){(const char *)val, vlen};
        } else if (field == 2) {
            ehk[i_ehk++] = (struct kpl_str){(const char *)val, vlen};
        } else if (field == 3) {
            if (!kpl_record(val, vlen, &idx[2 * i_rec], &has_ehk[i_rec], &idx[2 * i_rec + 1],
                            &recs[i_rec], &why)) {
                break;
            }
            i_rec++;
        }
    }
    for (size_t i = 0; !why && i < n_rec; i++) {
        if (idx[2 * i] >= n_pk) {
            why = "partition_key_index is outside the partition key table";
        } else if (has_ehk[i] && idx[2 * i + 1] >= n_ehk) {
            why = "explicit_hash_key_index is outside the explicit hash key table";
        } else {
            recs[i].partition_key = pk[idx[2 * i]].s;
            recs[i].partition_key_len = pk[idx[2 * i]].n;
            if (has_ehk[i]) {
                recs[i].explicit_hash_key = ehk[idx[2 * i + 1]].s;
                recs[i].explicit_hash_key_len = ehk[idx[2 * i + 1]].n;
            }
        }
    }
    sl_free(tables);
    sl_free(idx);
    sl_free(has_ehk);
    if (why) {
        sl_free(recs);
        goto malformed;
    }
    ret->records = recs;
    ret->n = n_rec;
    return KINESIS_KPL_AGGREGATE;

malformed:
    (void)snprintf(errbuf, errlen, "aggregate's protobuf: %s", why);
    return KINESIS_KPL_MALFORMED;
}

void kinesis_kpl_agg_fini(struct kinesis_kpl_agg *agg)
{
    sl_free(agg->records);
    agg->records = NULL;
    agg->n = 0;
}

void kinesis_kpl_hash_key(const char *partition_key, size_t n, char out[KINESIS_HASH_KEY_TEXT_MAX])
{
    unsigned char v[SL_MD5_LEN];
    sl_md5(partition_key, n, v);
    char rev[KINESIS_HASH_KEY_TEXT_MAX];
    size_t digits = 0;
    bool zero;
    do {
        /* v /= 10, long division over the big-endian bytes; the remainder is the next digit */
        unsigned rem = 0;
        zero = true;
        for (size_t i = 0; i < SL_MD5_LEN; i++) {
            unsigned cur = rem << 8 | v[i];
            v[i] = (unsigned char)(cur / 10);
            rem = cur % 10;
            zero = zero && v[i] == 0;
        }
        rev[digits++] = (char)('0' + rem);
    } while (!zero);
    for (size_t i = 0; i < digits; i++) {
        out[i] = rev[digits - 1 - i];
    }
    out[digits] = '\0';
}
