/* SPDX-License-Identifier: Apache-2.0 */
/* s3_object.c: the bytes of a Firehose S3 object (s3_object.h): records concatenated, optionally
 * GZIP through zlib, streamed in bounded chunks to the caller's emit function; the same GZIP
 * compressed in parallel blocks on libuv's thread pool for an object already in memory (its jobs
 * touch only their own slot and read the borrowed records; the rest is the loop thread's); and
 * Firehose's error record JSON lines for backups. It owns only the encoding: where the bytes go
 * (a file, an S3 PutObject body) is the caller's. */
#include "s3_object.h"

#include <assert.h>
#include <string.h>

#include <zlib.h>

#include "alloc.h"
#include "encoder.h"

struct sl_s3_object {
    enum sl_s3_compression comp;
    sl_s3_object_emit_fn emit;
    void *arg;
    z_stream z;
    bool z_live; /* deflateInit2 succeeded: deflateEnd owed */
    int err;     /* the first error, returned from then on */
    uint64_t in, out;
    size_t fill; /* bytes waiting in chunk */
    unsigned char chunk[SL_S3_OBJECT_CHUNK];
};

static void *object_zalloc(void *opaque, unsigned items, unsigned size)
{
    (void)opaque;
    return sl_calloc(items, size);
}

static void object_zfree(void *opaque, void *p)
{
    (void)opaque;
    sl_free(p);
}

int sl_s3_object_new(enum sl_s3_compression comp,
                     sl_s3_object_emit_fn emit,
                     void *arg,
                     struct sl_s3_object **ret_o)
{
    assert(comp < SL_S3_COMPRESSION_COUNT);
    struct sl_s3_object *o = sl_malloc(sizeof *o);
    if (!o) {
        return SL_ENOMEM;
    }
    memset(o, 0, offsetof(struct sl_s3_object, chunk));
    o->comp = comp;
    o->emit = emit;
    o->arg = arg;
    if (comp == SL_S3_GZIP) {
        o->z.zalloc = object_zalloc;
        o->z.zfree = object_zfree;
        /* windowBits 15 + 16: a gzip header and trailer around the deflate stream */
        if (deflateInit2(&o->z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            sl_free(o);
            return SL_ENOMEM;
        }
        o->z_live = true;
    }
    *ret_o = o;
    return 0;
}

static int object_emit(struct sl_s3_object *o, const void *p, size_t n)
{
    if (n == 0) {
        return 0;
    }
    int r = o->emit(o->arg, p, n);
    if (r < 0) {
        o->err = r;
        return r;
    }
    o->out += n;
    return 0;
}

/* Runs deflate over z's input with flush, emitting every full chunk. */
static int object_deflate(struct sl_s3_object *o, int flush)
{
    for (;;) {
        o->z.next_out = o->chunk + o->fill;
        o->z.avail_out = (uInt)(sizeof o->chunk - o->fill);
        int zr = deflate(&o->z, flush);
        o->fill = sizeof o->chunk - o->z.avail_out;
        if (zr == Z_STREAM_ERROR) {
            o->err = SL_EIO;
            return SL_EIO;
        }
        if (o->fill == sizeof o->chunk) {
            int r = object_emit(o, o->chunk, o->fill);
            if (r < 0) {
                return r;
            }
            o->fill = 0;
            continue; /* output was full: there may be more */
        }
        if (flush == Z_FINISH ? zr == Z_STREAM_END : o->z.avail_in == 0) {
            return 0;
        }
    }
}

int sl_s3_object_add(struct sl_s3_object *o, const void *p, size_t n)
{
    if (o->err) {
        return o->err;
    }
    o->in += n;
    if (o->comp == SL_S3_GZIP) {
        const unsigned char *q = p;
        while (n > 0) { /* avail_in is a uInt: feed at most 1 GiB at a time */
            size_t step = n < (1u << 30) ? n : (1u << 30);
            o->z.next_in = (unsigned char *)(uintptr_t)q;
            o->z.avail_in = (uInt)step;
            int r = object_deflate(o, Z_NO_FLUSH);
            if (r < 0) {
                return r;
            }
            q += step;
            n -= step;
        }
        return 0;
    }
    if (o->fill + n > sizeof o->chunk) {
        int r = object_emit(o, o->chunk, o->fill);
        if (r < 0) {
            return r;
        }
        o->fill = 0;
        if (n >= sizeof o->chunk) { /* a large record goes out as it is */
            return object_emit(o, p, n);
        }
    }
    memcpy(o->chunk + o->fill, p, n);
    o->fill += n;
    return 0;
}

int sl_s3_object_finish(struct sl_s3_object *o)
{
    if (o->err) {
        return o->err;
    }
    if (o->comp == SL_S3_GZIP) {
        o->z.next_in = NULL;
        o->z.avail_in = 0;
        int r = object_deflate(o, Z_FINISH);
        if (r < 0) {
            return r;
        }
    }
    int r = object_emit(o, o->chunk, o->fill);
    o->fill = 0;
    return r;
}

uint64_t sl_s3_object_bytes_in(const struct sl_s3_object *o)
{
    return o->in;
}

uint64_t sl_s3_object_bytes_out(const struct sl_s3_object *o)
{
    return o->out;
}

void sl_s3_object_free(struct sl_s3_object *o)
{
    if (!o) {
        return;
    }
    if (o->z_live) {
        (void)deflateEnd(&o->z);
    }
    sl_free(o);
}

static int object_to_buf(void *arg, const void *p, size_t n)
{
    return sl_buf_append(arg, p, n);
}

int sl_s3_object_build(const struct iovec *recs,
                       size_t n,
                       enum sl_s3_compression comp,
                       struct sl_buf *out)
{
    size_t start = out->len;
    struct sl_s3_object *o;
    int r = sl_s3_object_new(comp, object_to_buf, out, &o);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; i < n && r == 0; i++) {
        r = sl_s3_object_add(o, recs[i].iov_base, recs[i].iov_len);
    }
    if (r == 0) {
        r = sl_s3_object_finish(o);
    }
    sl_s3_object_free(o);
    if (r < 0) {
        sl_buf_truncate(out, start);
    }
    return r;
}

/* ------------------------------------------------------------------------------------------ */
/* Parallel GZIP */

#define GZ_DICT 32768 /* deflate's window: the input before a block that it may refer to */

enum gz_state { GZ_FREE = 0, GZ_RUNNING, GZ_DONE };

/* One block's job. The pool thread touches only the slot and reads gz->recs. */
struct gz_slot {
    struct sl_s3_gz *gz;
    uv_work_t work;
    enum gz_state state;
    size_t rec, off; /* where its input starts: recs[rec] at byte off */
    size_t len;      /* input bytes */
    bool last;
    z_stream z; /* kept from block to block (deflateReset) */
    bool z_live;
    unsigned char *out;
    size_t out_cap, out_len;
    uint32_t crc; /* CRC-32 of its input */
    int err;
    unsigned char dict[GZ_DICT];
};

struct sl_s3_gz {
    uv_loop_t *loop;
    const struct iovec *recs;
    size_t n;
    uint64_t total; /* input bytes */
    uint64_t nblocks;
    uint64_t next_start;         /* the next block to start */
    size_t start_rec, start_off; /* where it starts */
    uint64_t next_out;           /* the next block to hand out, in order */
    uint64_t crc_blocks;         /* blocks counted in crc */
    uint32_t crc;
    unsigned running;
    struct sl_s3_gz *wait_next; /* in gz_waiting: has a block to start, no job slot free */
    bool waiting;
    int err;
    bool header_done, trailer_done;
    uint64_t bytes_out;
    unsigned char header[10], trailer[8];
    void (*ready)(void *arg);
    void *arg;
    struct gz_slot slots[SL_S3_GZ_WINDOW];
};

static struct gz_slot *gz_slot_of(struct sl_s3_gz *gz, uint64_t block)
{
    return &gz->slots[block % SL_S3_GZ_WINDOW];
}

/* Copies up to GZ_DICT bytes of input before the block's start to the end of sl->dict. */
static size_t gz_dict(struct gz_slot *sl)
{
    const struct iovec *recs = sl->gz->recs;
    size_t have = 0, r = sl->rec, o = sl->off;
    while (have < GZ_DICT) {
        if (o == 0) {
            if (r == 0) {
                break;
            }
            o = recs[--r].iov_len;
            continue;
        }
        size_t take = o < GZ_DICT - have ? o : GZ_DICT - have;
        memcpy(sl->dict + GZ_DICT - have - take, (const char *)recs[r].iov_base + o - take, take);
        have += take;
        o -= take;
    }
    return have;
}

/* Runs deflate over the slot's input with flush, growing its output as needed. */
static int gz_deflate(struct gz_slot *sl, int flush)
{
    for (;;) {
        if (sl->out_len == sl->out_cap) {
            size_t cap = sl->out_cap ? 2 * sl->out_cap : SL_S3_OBJECT_CHUNK;
            unsigned char *out = sl_realloc(sl->out, cap);
            if (!out) {
                return SL_ENOMEM;
            }
            sl->out = out;
            sl->out_cap = cap;
        }
        sl->z.next_out = sl->out + sl->out_len;
        sl->z.avail_out = (uInt)(sl->out_cap - sl->out_len);
        int zr = deflate(&sl->z, flush);
        sl->out_len = sl->out_cap - sl->z.avail_out;
        if (zr == Z_STREAM_ERROR) {
            return SL_EIO;
        }
        if (sl->z.avail_out == 0) {
            continue; /* output was full: there may be more */
        }
        if (flush == Z_FINISH ? zr == Z_STREAM_END : sl->z.avail_in == 0) {
            return 0;
        }
        if (zr == Z_BUF_ERROR) {
            return SL_EIO; /* no progress with room left: cannot happen with zlib's contract */
        }
    }
}

/* The pool thread: one block to raw deflate, ended on a byte boundary (a sync flush) or, for the
 * last, by the final block. */
static int gz_block(struct gz_slot *sl)
{
    if (!sl->z_live) {
        sl->z.zalloc = object_zalloc;
        sl->z.zfree = object_zfree;
        if (deflateInit2(&sl->z, Z_BEST_SPEED, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            return SL_ENOMEM;
        }
        sl->z_live = true;
    } else if (deflateReset(&sl->z) != Z_OK) {
        return SL_EIO;
    }
    size_t dict_len = gz_dict(sl);
    if (dict_len > 0 &&
        deflateSetDictionary(&sl->z, sl->dict + GZ_DICT - dict_len, (uInt)dict_len) != Z_OK) {
        return SL_EIO;
    }
    sl->out_len = 0;
    sl->crc = (uint32_t)crc32_z(0, NULL, 0);
    const struct iovec *recs = sl->gz->recs;
    size_t r = sl->rec, o = sl->off, need = sl->len;
    while (need > 0) {
        size_t avail = recs[r].iov_len - o;
        size_t take = avail < need ? avail : need; /* <= SL_S3_GZ_BLOCK: fits a uInt */
        const unsigned char *p = (const unsigned char *)recs[r].iov_base + o;
        sl->crc = (uint32_t)crc32_z(sl->crc, p, take);
        sl->z.next_in = (unsigned char *)(uintptr_t)p;
        sl->z.avail_in = (uInt)take;
        int rc = gz_deflate(sl, Z_NO_FLUSH);
        if (rc < 0) {
            return rc;
        }
        need -= take;
        r++;
        o = 0;
    }
    sl->z.next_in = NULL;
    sl->z.avail_in = 0;
    return gz_deflate(sl, sl->last ? Z_FINISH : Z_SYNC_FLUSH);
}

static void gz_work(uv_work_t *w)
{
    struct gz_slot *sl = w->data;
    sl->err = gz_block(sl);
}

static void gz_start(struct sl_s3_gz *gz);

/* Jobs of every compressor at once (one loop thread runs them all): SL_S3_GZ_JOBS in all, so
 * that however many streams compress, pool threads stay free for the spool's fsyncs, which
 * answer the puts. Compressors with a block to start wait their turn, first come first. */
static unsigned gz_running_all;
static struct sl_s3_gz *gz_waiting, **gz_waiting_tail = &gz_waiting;

static void gz_wait_del(struct sl_s3_gz *gz)
{
    if (!gz->waiting) {
        return;
    }
    struct sl_s3_gz **pp = &gz_waiting;
    while (*pp != gz) {
        pp = &(*pp)->wait_next;
    }
    *pp = gz->wait_next;
    if (gz_waiting_tail == &gz->wait_next) {
        gz_waiting_tail = pp;
    }
    gz->wait_next = NULL;
    gz->waiting = false;
}

/* A job ended: the compressors waiting take the free slots, in turn. */
static void gz_wake(void)
{
    while (gz_waiting && gz_running_all < SL_S3_GZ_JOBS) {
        struct sl_s3_gz *gz = gz_waiting;
        gz_wait_del(gz);
        gz_start(gz); /* may queue itself again */
    }
}

static void gz_after(uv_work_t *w, int status)
{
    struct gz_slot *sl = w->data;
    struct sl_s3_gz *gz = sl->gz;
    gz->running--;
    gz_running_all--;
    if (status == UV_ECANCELED) {
        sl->state = GZ_FREE;
        gz->err = gz->err ? gz->err : SL_ECANCELED;
    } else {
        sl->state = GZ_DONE;
        gz->err = gz->err ? gz->err : sl->err;
    }
    gz_wake(); /* those waiting first, then this one again */
    gz_start(gz);
    gz->ready(gz->arg); /* last: it may free gz */
}

/* Starts blocks while fewer than SL_S3_GZ_JOBS run and the window has room. */
static void gz_start(struct sl_s3_gz *gz)
{
    while (!gz->err && gz->running < SL_S3_GZ_JOBS && gz->next_start < gz->nblocks &&
           gz->next_start - gz->next_out < SL_S3_GZ_WINDOW) {
        if (gz_running_all >= SL_S3_GZ_JOBS) {
            if (!gz->waiting) {
                gz->waiting = true;
                *gz_waiting_tail = gz;
                gz_waiting_tail = &gz->wait_next;
            }
            return;
        }
        struct gz_slot *sl = gz_slot_of(gz, gz->next_start);
        assert(sl->state == GZ_FREE);
        uint64_t left = gz->total - gz->next_start * SL_S3_GZ_BLOCK;
        sl->rec = gz->start_rec;
        sl->off = gz->start_off;
        sl->len = left < SL_S3_GZ_BLOCK ? (size_t)left : SL_S3_GZ_BLOCK;
        sl->last = gz->next_start + 1 == gz->nblocks;
        sl->err = 0;
        for (size_t need = sl->len; need > 0;) { /* the next block's start */
            size_t avail = gz->recs[gz->start_rec].iov_len - gz->start_off;
            if (avail > need) {
                gz->start_off += need;
                break;
            }
            need -= avail;
            gz->start_rec++;
            gz->start_off = 0;
        }
        sl->state = GZ_RUNNING;
        gz->running++;
        gz_running_all++;
        gz->next_start++;
        int r = uv_queue_work(gz->loop, &sl->work, gz_work, gz_after);
        assert(r == 0); /* fails only for a NULL callback */
        (void)r;
    }
}

int sl_s3_gz_new(uv_loop_t *loop,
                 const struct iovec *recs,
                 size_t n,
                 void (*ready)(void *arg),
                 void *arg,
                 struct sl_s3_gz **ret_gz)
{
    struct sl_s3_gz *gz = sl_calloc(1, sizeof *gz);
    if (!gz) {
        return SL_ENOMEM;
    }
    gz->loop = loop;
    gz->recs = recs;
    gz->n = n;
    for (size_t i = 0; i < n; i++) {
        gz->total += recs[i].iov_len;
    }
    gz->nblocks = gz->total ? (gz->total + SL_S3_GZ_BLOCK - 1) / SL_S3_GZ_BLOCK : 1;
    gz->ready = ready;
    gz->arg = arg;
    /* RFC 1952: deflate, no name, no time (the same bytes on every retry), XFL 4 (fastest), OS
     * 3 (Unix): what zlib writes at level 1 */
    static const unsigned char header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 3};
    memcpy(gz->header, header, sizeof header);
    for (size_t i = 0; i < SL_S3_GZ_WINDOW; i++) {
        gz->slots[i].gz = gz;
        gz->slots[i].work.data = &gz->slots[i];
    }
    gz_start(gz);
    *ret_gz = gz;
    return 0;
}

size_t sl_s3_gz_ready(struct sl_s3_gz *gz, struct iovec *iov, size_t max)
{
    if (gz->err) {
        return 0;
    }
    size_t k = 0;
    if (!gz->header_done && k < max) {
        iov[k++] = (struct iovec){gz->header, sizeof gz->header};
    }
    uint64_t b = gz->next_out;
    for (; k < max && b < gz->next_start; b++) {
        struct gz_slot *sl = gz_slot_of(gz, b);
        if (sl->state != GZ_DONE) {
            break;
        }
        iov[k++] = (struct iovec){sl->out, sl->out_len};
        if (b == gz->crc_blocks) {
            gz->crc = (uint32_t)crc32_combine(gz->crc, sl->crc, (z_off_t)sl->len);
            gz->crc_blocks++;
        }
    }
    if (b == gz->nblocks && k < max && !gz->trailer_done) {
        uint32_t v[2] = {gz->crc, (uint32_t)gz->total}; /* ISIZE: the length modulo 2^32 */
        for (size_t i = 0; i < 8; i++) {
            gz->trailer[i] = (unsigned char)(v[i / 4] >> (8 * (i % 4))); /* little-endian */
        }
        iov[k++] = (struct iovec){gz->trailer, sizeof gz->trailer};
    }
    return k;
}

void sl_s3_gz_consumed(struct sl_s3_gz *gz, size_t count)
{
    size_t k = 0;
    if (!gz->header_done && k < count) {
        gz->header_done = true;
        gz->bytes_out += sizeof gz->header;
        k++;
    }
    for (; k < count && gz->next_out < gz->nblocks; k++) {
        struct gz_slot *sl = gz_slot_of(gz, gz->next_out++);
        assert(sl->state == GZ_DONE);
        gz->bytes_out += sl->out_len;
        sl->state = GZ_FREE; /* its buffers stay for the next block */
    }
    if (k < count) {
        assert(gz->next_out == gz->nblocks && !gz->trailer_done);
        gz->trailer_done = true;
        gz->bytes_out += sizeof gz->trailer;
    }
    gz_start(gz);
}

bool sl_s3_gz_done(const struct sl_s3_gz *gz)
{
    return gz->trailer_done;
}

int sl_s3_gz_error(const struct sl_s3_gz *gz)
{
    return gz->err;
}

void sl_s3_gz_cancel(struct sl_s3_gz *gz)
{
    gz->err = gz->err ? gz->err : SL_ECANCELED;
    gz_wait_del(gz);
    for (size_t i = 0; i < SL_S3_GZ_WINDOW; i++) {
        if (gz->slots[i].state == GZ_RUNNING) {
            (void)uv_cancel((uv_req_t *)&gz->slots[i].work); /* UV_EBUSY when running */
        }
    }
}

bool sl_s3_gz_busy(const struct sl_s3_gz *gz)
{
    return gz->running > 0;
}

uint64_t sl_s3_gz_bytes_out(const struct sl_s3_gz *gz)
{
    return gz->bytes_out;
}

void sl_s3_gz_free(struct sl_s3_gz *gz)
{
    if (!gz) {
        return;
    }
    assert(gz->running == 0);
    gz_wait_del(gz);
    for (size_t i = 0; i < SL_S3_GZ_WINDOW; i++) {
        if (gz->slots[i].z_live) {
            (void)deflateEnd(&gz->slots[i].z);
        }
        sl_free(gz->slots[i].out);
    }
    sl_free(gz);
}

/* ------------------------------------------------------------------------------------------ */
/* Error records */

static int object_str(struct sl_buf *out, const char *s)
{
    return sl_enc_json_str(out, s ? s : "", s ? strlen(s) : 0);
}

int sl_s3_object_error_line(struct sl_buf *out, const struct sl_s3_error_rec *e)
{
    size_t start = out->len;
    int r = sl_buf_printf(out, "{\"attemptsMade\":%u,\"arrivalTimestamp\":%lld,\"errorCode\":",
                          e->attempts_made, (long long)e->arrival_ms);
    if (r < 0) {
        goto fail;
    }
    r = object_str(out, e->error_code);
    if (r < 0) {
        goto fail;
    }
    r = sl_buf_puts(out, ",\"errorMessage\":");
    if (r < 0) {
        goto fail;
    }
    r = object_str(out, e->error_message);
    if (r < 0) {
        goto fail;
    }
    r = sl_buf_printf(out, ",\"attemptEndingTimestamp\":%lld,\"rawData\":\"",
                      (long long)e->attempt_ending_ms);
    if (r < 0) {
        goto fail;
    }
    r = e->raw_is_base64 ? sl_buf_append(out, e->raw, e->raw_len)
                         : sl_enc_base64(out, e->raw, e->raw_len);
    if (r < 0) {
        goto fail;
    }
    r = sl_buf_puts(out, "\"");
    if (r < 0) {
        goto fail;
    }
    if (e->lambda_arn) {
        r = sl_buf_puts(out, ",\"lambdaArn\":");
        if (r < 0) {
            goto fail;
        }
        r = object_str(out, e->lambda_arn);
        if (r < 0) {
            goto fail;
        }
    }
    if (e->data_id) {
        r = sl_buf_puts(out, ",\"subsequenceNumber\":0,\"dataId\":");
        if (r < 0) {
            goto fail;
        }
        r = object_str(out, e->data_id);
        if (r < 0) {
            goto fail;
        }
    }
    r = sl_buf_puts(out, "}\n");
    if (r < 0) {
        goto fail;
    }
    return 0;
fail:
    sl_buf_truncate(out, start);
    return r;
}
