/* SPDX-License-Identifier: Apache-2.0 */
/* fake_stream.c: a stream source adapter for unit tests (fake_stream.h). It owns nothing of the
 * engine: it answers the engine's operations from records the test pushed, and logs every fetch
 * and every acknowledgement so that tests can check the delivery rules from the outside (what
 * was asked for, what was acknowledged, when). Its use of struct sl_source_ops is the one
 * initializer at the bottom, with only what a stream source must give; the registry fills the
 * rest with its defaults, so a change of the ops struct touches one place. Loop thread. */
#include "fake_source.h"
#include "fake_stream.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encoder.h"
#include "json.h"
#include "partition.h"

/* The adapter's ctx (allocated by the mapping): the test's controller. */
struct fake_ctx {
    struct fake_stream *fs;
};

static struct fake_stream *fake_current;

static void fake_create_part(struct fake_stream *fs, size_t p)
{
    struct fake_part *fp = &fs->parts[p];
    struct sl_part *part = NULL;
    if (fs->env.part_add(fs->env.owner, fp->id, fp->id, &part) < 0) {
        abort();
    }
    part->src = fp;
    fp->part = part;
    /* A stored checkpoint is the number of records done: resume after them. */
    if (part->ckpt_pos) {
        fp->next = (size_t)strtoull(part->ckpt_pos, NULL, 10);
        fp->acked = fp->next;
    }
}

/* Appends up to max_records records (about max_bytes, at least one) of fp to its queue. */
static int
fake_take(struct fake_stream *fs, struct fake_part *fp, size_t max_records, size_t max_bytes)
{
    size_t n = 0;
    size_t bytes = 0;
    while (fp->next < fp->n_recs && n < max_records) {
        const struct fake_rec *r = &fp->recs[fp->next];
        size_t key_len = strlen(r->key);
        if (n > 0 && bytes + r->len + key_len > max_bytes) {
            break;
        }
        int64_t arrival = sl_clock_wall_ms(fs->env.clock);
        const uint64_t seq = fp->next; /* the position: the record's index, 8 bytes */
        if (sl_recq_push(&fp->part->q, r->data, (uint32_t)r->len, r->key, (uint32_t)key_len, &seq,
                         sizeof(seq), arrival, 0) < 0) {
            return n > 0 ? (int)n : SL_ENOMEM;
        }
        bytes += r->len + key_len;
        fp->next++;
        n++;
    }
    fs->held_records += n;
    fs->held_bytes += bytes;
    if (fs->held_records > fs->max_held_records) {
        fs->max_held_records = fs->held_records;
    }
    if (fs->held_bytes > fs->max_held_bytes) {
        fs->max_held_bytes = fs->held_bytes;
    }
    return (int)n;
}

/* --- the operations --- */

static int fake_check(void *ctx, const char *arn, char *errbuf, size_t errlen)
{
    (void)ctx;
    return fake_source_check_scheme(arn, FAKE_STREAM_SCHEME, errbuf, errlen);
}

static int fake_init(void *ctx, const struct sl_source_env *env, char *errbuf, size_t errlen)
{
    (void)errbuf;
    (void)errlen;
    struct fake_ctx *c = ctx;
    assert(fake_current);
    c->fs = fake_current;
    c->fs->env = *env;
    c->fs->inited = true;
    c->fs->stopped = false;
    if (c->fs->async_auto) {
        uv_idle_init(env->loop, &c->fs->idle);
        c->fs->idle.data = c->fs;
    }
    return 0;
}

static int fake_start(void *ctx)
{
    struct fake_stream *fs = ((struct fake_ctx *)ctx)->fs;
    fs->started = true;
    for (size_t p = 0; p < fs->n_parts; p++) {
        fake_create_part(fs, p);
    }
    return 0;
}

static void fake_idle_cb(uv_idle_t *h)
{
    uv_idle_stop(h);
    (void)fake_stream_complete(h->data);
}

static int fake_fetch(void *ctx, struct sl_part *part, size_t max_records, size_t max_bytes)
{
    struct fake_stream *fs = ((struct fake_ctx *)ctx)->fs;
    struct fake_part *fp = part->src;
    fs->calls_after_stop += fs->stopped;
    size_t pending = 0;
    for (size_t p = 0; p < fs->n_parts; p++) {
        pending += fs->parts[p].fetch_pending ? fs->parts[p].pending_max_records : 0;
    }
    fs->fetches =
        fake_source_grow(fs->fetches, &fs->cap_fetches, fs->n_fetches, sizeof(*fs->fetches));
    fs->fetches[fs->n_fetches++] =
        (struct fake_fetch){(size_t)(fp - fs->parts), max_records,    max_bytes,
                            fs->held_records,         fs->held_bytes, pending};
    if (fs->async) {
        fp->fetch_pending = true;
        fp->pending_max_records = max_records;
        fp->pending_max_bytes = max_bytes;
        if (fs->async_auto) {
            uv_idle_start(&fs->idle, fake_idle_cb);
        }
        return SL_EINPROGRESS;
    }
    int n = fake_take(fs, fp, max_records, max_bytes);
    fp->wants_wake = n == 0;
    return n;
}

/* A record's position is its index in the partition, one native 64-bit number. */
static uint64_t fake_seq(const struct sl_part *part, const struct sl_record *rec)
{
    return sl_recq_pos_u64(&part->q, rec, 0);
}

/* The checkpoint after rec: the next index. */
static int
fake_format_pos(void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)ctx;
    int n = snprintf(buf, len, "%" PRIu64, fake_seq(part, rec) + 1);
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

/* The itemIdentifier: the index. */
static int fake_format_item_id(
    void *ctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)ctx;
    int n = snprintf(buf, len, "%" PRIu64, fake_seq(part, rec));
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

static int
fake_encode_record(void *ctx, struct sl_part *part, const struct sl_record *rec, struct sl_buf *out)
{
    (void)ctx;
    const char *data = sl_recq_data(&part->q, rec);
    int r = sl_buf_printf(out, "{\"part\":\"%s\",\"seq\":%" PRIu64 ",\"key\":", part->id,
                          fake_seq(part, rec));
    r = r < 0 ? r : sl_enc_json_str(out, sl_recq_meta(&part->q, rec), rec->meta_len);
    r = r < 0 ? r : sl_buf_puts(out, ",\"data\":");
    r = r < 0 ? r : sl_enc_json_str(out, data, rec->len);
    r = r < 0 ? r : sl_buf_puts(out, "}");
    return r;
}

static cJSON *fake_filter_doc(void *ctx, struct sl_part *part, const struct sl_record *rec)
{
    (void)ctx;
    cJSON *doc = cJSON_CreateObject();
    char key[sizeof(((struct fake_rec *)0)->key)];
    (void)snprintf(key, sizeof(key), "%.*s", (int)rec->meta_len, sl_recq_meta(&part->q, rec));
    cJSON *data = sl_json_payload(sl_recq_data(&part->q, rec), rec->len);
    if (!doc || !data || !cJSON_AddStringToObject(doc, "key", key)) {
        cJSON_Delete(data);
        cJSON_Delete(doc);
        return NULL;
    }
    cJSON_AddItemToObject(doc, "data", data);
    return doc;
}

static void fake_ack(void *ctx, struct sl_part *part, const struct sl_record *last)
{
    struct fake_stream *fs = ((struct fake_ctx *)ctx)->fs;
    struct fake_part *fp = part->src;
    /* After stop (a drain), acks of the invocations that finish still come: not counted. */
    if (fs->on_ack) {
        fs->on_ack(fs->on_ack_arg, (size_t)(fp - fs->parts), fake_seq(part, last));
    }
    uint64_t seq = fake_seq(part, last);
    fs->acks = fake_source_grow(fs->acks, &fs->cap_acks, fs->n_acks, sizeof(*fs->acks));
    fs->acks[fs->n_acks++] = (struct fake_ack){(size_t)(fp - fs->parts), seq};
    /* What the mapping held of fp up to last is dropped now: count it out. */
    for (size_t i = fp->acked; i <= seq && i < fp->n_recs; i++) {
        fs->held_records--;
        fs->held_bytes -= fp->recs[i].len + strlen(fp->recs[i].key);
    }
    if (seq + 1 > fp->acked) {
        fp->acked = (size_t)seq + 1;
    }
}

static void fake_part_release(void *ctx, struct sl_part *part)
{
    struct fake_stream *fs = ((struct fake_ctx *)ctx)->fs;
    struct fake_part *fp = part->src;
    /* Records the mapping held and drops unacknowledged (revoked, or at free) leave it too. */
    for (size_t i = fp->acked; i < fp->next; i++) {
        fs->held_records--;
        fs->held_bytes -= fp->recs[i].len + strlen(fp->recs[i].key);
    }
    fp->next = fp->acked;
    fp->part = NULL;
    fp->released = true;
    fp->fetch_pending = false;
    fs->released++;
}

static void fake_stop(void *ctx)
{
    struct fake_stream *fs = ((struct fake_ctx *)ctx)->fs;
    fs->stopped = true;
    if (fs->async_auto && fs->inited) {
        uv_idle_stop(&fs->idle);
    }
}

static void fake_fini(void *ctx)
{
    struct fake_ctx *c = ctx;
    if (c->fs && c->fs->inited) {
        if (c->fs->async_auto) {
            uv_close((uv_handle_t *)&c->fs->idle, NULL);
        }
        c->fs->inited = false;
    }
}

/* Its event shape: Kinesis-like wrapping and filter rule, the registry's generic BatchInfo. */
static const struct sl_event_format fake_event = FAKE_SOURCE_EVENT("fake", "data");

/* No caps: the registry's default, a stream with AWS's stream defaults (BatchSize 100, at most
 * 10000, StartingPosition required). */
const struct sl_source_ops fake_stream_ops = {
    .abi = SL_SOURCE_ABI,
    .name = "fake",
    .scheme = FAKE_STREAM_SCHEME,
    .opts = fake_source_no_opts,
    .ctx_size = sizeof(struct fake_ctx),
    .event = &fake_event,
    .check = fake_check,
    .init = fake_init,
    .start = fake_start,
    .fetch = fake_fetch,
    .compare_pos = sl_recq_pos_compare_u64,
    .format_pos = fake_format_pos,
    .format_item_id = fake_format_item_id,
    .encode_record = fake_encode_record,
    .record_key = fake_source_record_key, /* the partition key */
    .filter_doc = fake_filter_doc,
    .ack = fake_ack,
    .part_release = fake_part_release,
    .stop = fake_stop,
    .fini = fake_fini,
};

/* --- the test's side --- */

void fake_stream_register(void)
{
    sl_source_register_extra(&fake_stream_ops);
}

void fake_stream_init(struct fake_stream *fs)
{
    memset(fs, 0, sizeof(*fs));
    fake_current = fs;
}

void fake_stream_fini(struct fake_stream *fs)
{
    for (size_t p = 0; p < fs->n_parts; p++) {
        for (size_t i = 0; i < fs->parts[p].n_recs; i++) {
            free(fs->parts[p].recs[i].data);
        }
        free(fs->parts[p].recs);
    }
    free(fs->acks);
    free(fs->fetches);
    if (fake_current == fs) {
        fake_current = NULL;
    }
    memset(fs, 0, sizeof(*fs));
}

size_t fake_stream_add_part(struct fake_stream *fs, const char *id)
{
    assert(fs->n_parts < FAKE_STREAM_MAX_PARTS);
    size_t p = fs->n_parts++;
    (void)snprintf(fs->parts[p].id, sizeof(fs->parts[p].id), "%s", id);
    if (fs->started && !fs->stopped) {
        fake_create_part(fs, p);
    }
    return p;
}

void fake_stream_push(
    struct fake_stream *fs, size_t p, const char *key, const char *data, size_t len)
{
    struct fake_part *fp = &fs->parts[p];
    fp->recs = fake_source_grow(fp->recs, &fp->cap_recs, fp->n_recs, sizeof(*fp->recs));
    struct fake_rec *r = &fp->recs[fp->n_recs++];
    r->data = malloc(len ? len : 1);
    if (!r->data) {
        abort();
    }
    memcpy(r->data, data, len);
    r->len = len;
    (void)snprintf(r->key, sizeof(r->key), "%s", key);
    if (fp->part && fp->wants_wake) {
        if (fs->stopped) {
            fs->events_after_stop++;
            return;
        }
        fp->wants_wake = false;
        fs->env.part_wake(fs->env.owner, fp->part);
    }
}

void fake_stream_push_str(struct fake_stream *fs, size_t p, const char *key, const char *data)
{
    fake_stream_push(fs, p, key, data, strlen(data));
}

size_t fake_stream_complete_part(struct fake_stream *fs, size_t p)
{
    struct fake_part *fp = &fs->parts[p];
    if (!fp->fetch_pending || !fp->part) {
        return 0;
    }
    if (fs->stopped) {
        fs->events_after_stop++;
        return 0;
    }
    fp->fetch_pending = false;
    int n = fake_take(fs, fp, fp->pending_max_records, fp->pending_max_bytes);
    fp->wants_wake = n == 0;
    fs->env.part_fetched(fs->env.owner, fp->part, n);
    return 1;
}

size_t fake_stream_complete(struct fake_stream *fs)
{
    size_t done = 0;
    for (size_t p = 0; p < fs->n_parts; p++) {
        done += fake_stream_complete_part(fs, p);
    }
    return done;
}

void fake_stream_gone(struct fake_stream *fs, size_t p)
{
    struct fake_part *fp = &fs->parts[p];
    fp->gone = true;
    if (fp->part && fs->stopped) {
        fs->events_after_stop++;
    } else if (fp->part) {
        fs->env.part_gone(fs->env.owner, fp->part);
    }
}

void fake_stream_revoke(struct fake_stream *fs, size_t p)
{
    struct fake_part *fp = &fs->parts[p];
    fp->revoked = true;
    if (fp->part && fs->stopped) {
        fs->events_after_stop++;
    } else if (fp->part) {
        fs->env.part_revoke(fs->env.owner, fp->part);
    }
}

uint64_t fake_stream_acked(const struct fake_stream *fs, size_t p)
{
    uint64_t hi = 0;
    for (size_t i = 0; i < fs->n_acks; i++) {
        if (fs->acks[i].part == p && fs->acks[i].pos + 1 > hi) {
            hi = fs->acks[i].pos + 1;
        }
    }
    return hi;
}
