/* SPDX-License-Identifier: Apache-2.0 */
/* spool_scan.c: the spool's frame format: encoding a frame header, and reading a segment's
 * frames back through a bounded buffer (SPOOL_SCAN_BUF_BYTES, whatever the file's size), telling
 * good frames from bad bytes and resynchronising after bad bytes at the next offset where a
 * valid frame starts (its magic, a sane length and id, and a matching CRC-32C). Used by recovery
 * at open and by the reader. Knows nothing of segments lists, the loop or logging. Any thread. */
#include "spool_int.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "crc32c.h"

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void spool_frame_encode(unsigned char *hdr, const struct sl_spool_in *in, uint64_t id)
{
    put32(hdr, SPOOL_FRAME_MAGIC);
    put32(hdr + 8, in->len);
    put32(hdr + 12, in->meta_len);
    put64(hdr + 16, id);
    put64(hdr + 24, (uint64_t)in->arrival_ms);
    put64(hdr + 32, in->tag);
    uint32_t crc = sl_crc32c(0, hdr + 8, SPOOL_FRAME_HDR - 8);
    crc = sl_crc32c(crc, in->data, in->len);
    if (in->meta_len) {
        crc = sl_crc32c(crc, in->meta, in->meta_len);
    }
    put32(hdr + 4, crc);
}

int spool_scan_init(struct spool_scan *sc, int fd, uint64_t first_id, uint64_t pos, uint64_t limit)
{
    memset(sc, 0, sizeof(*sc));
    sc->fd = fd;
    sc->cap = SPOOL_SCAN_BUF_BYTES;
    sc->buf = sl_malloc(sc->cap);
    if (!sc->buf) {
        return SL_ENOMEM;
    }
    sc->pos = pos;
    sc->limit = limit;
    sc->first_id = first_id;
    sc->prev_id = first_id - 1;
    return 0;
}

void spool_scan_fini(struct spool_scan *sc)
{
    sl_free(sc->buf);
    sc->buf = NULL;
}

/* Makes buf hold [off, off + n) and returns a pointer to off; NULL when that runs past the
 * limit (*ret_err 0) or the read failed (*ret_err -1, errno kept). A frame never exceeds cap. */
static const unsigned char *scan_need(struct spool_scan *sc, uint64_t off, size_t n, int *ret_err)
{
    *ret_err = 0;
    if (off + n > sc->limit) {
        return NULL;
    }
    if (off >= sc->buf_off && off + n <= sc->buf_off + sc->len) {
        return sc->buf + (off - sc->buf_off);
    }
    assert(n <= sc->cap);
    uint64_t want = sc->limit - off;
    if (want > sc->cap) {
        want = sc->cap;
    }
    sc->buf_off = off;
    sc->len = 0;
    while (sc->len < want) {
        ssize_t r = pread(sc->fd, sc->buf + sc->len, want - sc->len, (off_t)(off + sc->len));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            *ret_err = -1;
            return NULL;
        }
        if (r == 0) {
            break; /* the file is shorter than limit says */
        }
        sc->len += (size_t)r;
    }
    if (n > sc->len) {
        return NULL;
    }
    return sc->buf;
}

/* Checks the frame at off. Returns NULL when valid (filling *f), else why not; *ret_err set on
 * a read failure. */
static const char *
scan_check(struct spool_scan *sc, uint64_t off, struct spool_frame *f, int *ret_err)
{
    const unsigned char *h = scan_need(sc, off, SPOOL_FRAME_HDR, ret_err);
    if (!h) {
        return "truncated frame";
    }
    if (get32(h) != SPOOL_FRAME_MAGIC) {
        return "bad magic";
    }
    uint32_t len = get32(h + 8);
    uint32_t meta_len = get32(h + 12);
    if (len > SL_SPOOL_RECORD_MAX_BYTES || meta_len > SL_SPOOL_META_MAX_BYTES) {
        return "bad length";
    }
    uint64_t id = get64(h + 16);
    /* Ids increase in a segment, from its first. The cap keeps a frame that only looks valid
     * (one stored as a record's data, met while resynchronising) from sizing a huge bitmap. */
    if (id < sc->first_id || id - sc->first_id >= SPOOL_SEG_MAX_RECORDS ||
        (sc->any && id <= sc->prev_id)) {
        return "bad record id";
    }
    const unsigned char *p = scan_need(sc, off, (size_t)spool_frame_size(len, meta_len), ret_err);
    if (!p) {
        return "truncated frame";
    }
    uint32_t crc = sl_crc32c(0, p + 8, SPOOL_FRAME_HDR - 8 + (size_t)len + meta_len);
    if (crc != get32(p + 4)) {
        return "bad checksum";
    }
    f->off = off;
    f->id = id;
    f->arrival_ms = (int64_t)get64(p + 24);
    f->tag = get64(p + 32);
    f->raw = p;
    f->data = p + SPOOL_FRAME_HDR;
    f->len = len;
    f->meta = f->data + len;
    f->meta_len = meta_len;
    return NULL;
}

enum spool_scan_result
spool_scan_next(struct spool_scan *sc, struct spool_frame *ret_f, struct spool_bad *ret_bad)
{
    if (sc->pos >= sc->limit) {
        return SPOOL_SCAN_END;
    }
    int err;
    const char *why = scan_check(sc, sc->pos, ret_f, &err);
    if (err < 0) {
        return SPOOL_SCAN_ERR;
    }
    if (!why) {
        sc->pos += spool_frame_size(ret_f->len, ret_f->meta_len);
        sc->prev_id = ret_f->id;
        sc->any = true;
        return SPOOL_SCAN_FRAME;
    }
    /* Resync: the next offset that starts a valid frame, else the limit. */
    uint64_t start = sc->pos;
    uint64_t q = start + 1;
    for (; q + SPOOL_FRAME_HDR <= sc->limit; q++) {
        const unsigned char *m = scan_need(sc, q, 4, &err);
        if (!m) {
            if (err < 0) {
                return SPOOL_SCAN_ERR;
            }
            break;
        }
        if (get32(m) != SPOOL_FRAME_MAGIC) {
            continue;
        }
        struct spool_frame probe;
        if (!scan_check(sc, q, &probe, &err)) {
            break;
        }
        if (err < 0) {
            return SPOOL_SCAN_ERR;
        }
    }
    if (q + SPOOL_FRAME_HDR > sc->limit) {
        q = sc->limit;
    }
    ret_bad->off = start;
    ret_bad->len = q - start;
    ret_bad->why = why;
    sc->pos = q;
    return SPOOL_SCAN_BAD;
}
