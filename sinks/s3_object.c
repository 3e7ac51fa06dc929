/* SPDX-License-Identifier: Apache-2.0 */
/* s3_object.c: the bytes of a Firehose S3 object (s3_object.h): records concatenated, optionally
 * GZIP through zlib, streamed in bounded chunks to the caller's emit function; and Firehose's
 * error record JSON lines for backups. It owns only the encoding: where the bytes go (a file,
 * an S3 PutObject body) is the caller's. */
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
