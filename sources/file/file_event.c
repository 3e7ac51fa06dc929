/* SPDX-License-Identifier: Apache-2.0 */
/* file_event.c: what the file source's records look like to a function, a filter and a
 * destination: Kinesis-shaped (the shared event_kinesis.c), the file being the shard, its path
 * the default partitionKey, the line's byte offset the sequenceNumber. It owns, per file, the
 * prepared template of its events (built when the file is opened, so that per record only the
 * offset, the bytes, the time and the generation are written) and maps a record of the file's
 * queue onto the shared event's record. It must not read files nor touch the mapping. Loop
 * thread only.
 *
 * The shape's KinesisBatchInfo (event_kinesis.c) finds what it needs here: the template as
 * part->event (its arn "file://<path>" is the streamArn), the path as the partition's name
 * (the shardId), and file_format_item_id for sequence numbers. A file's batches never span
 * files.
 *
 * About event ids: a record's eventID is "<path>:<generation>:<offset>" (the template holds
 * "<path>:"; file_head.c says what a generation is), its sequenceNumber the offset alone (the
 * checkpoint and the itemIdentifier). eventSource is "sluice:file", eventName
 * "sluice:file:record", eventSourceARN "file://<path>".
 *
 * About positions: a record's position is two native 64-bit numbers, the byte offset of its
 * line and of the line after it (file_read.c pushes them): the first is its sequenceNumber and
 * itemIdentifier, the second its checkpoint (format_pos), so that a restart reads on from the
 * next line. compare_pos compares the first (sl_recq_pos_compare_u64).
 *
 * About keys: a record's partitionKey is the key partition_key_field found in its line (stored
 * as the record's meta bytes at fetch time, file_read.c) or else the file's path. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "encoder.h"
#include "file_int.h"

#define FILE_EVENT_SOURCE "sluice:file"
#define FILE_EVENT_NAME   "sluice:file:record"

int file_event_prepare(struct file_part *fp, const char *path, const char *region)
{
    struct sl_buf arn, id;
    sl_buf_init(&arn);
    sl_buf_init(&id);
    int r = sl_buf_printf(&arn, FILE_SCHEME "%s", path);
    if (r == 0) {
        r = sl_buf_printf(&id, "%s:", path);
    }
    if (r == 0) {
        const struct sl_event_kinesis_part p = {
            .event_source = FILE_EVENT_SOURCE,
            .event_name = FILE_EVENT_NAME,
            .arn = arn.data,
            .region = region,
            .key = path,
            .id_prefix = id.data,
        };
        r = sl_event_kinesis_tmpl_init(&fp->tmpl, &p);
    }
    sl_buf_fini(&arn);
    sl_buf_fini(&id);
    return r;
}

/* Room for a record's texts: its offset, and "<generation>:<offset>". */
struct file_event_text {
    char seq[SL_ENC_U64_MAX + 1];
    char id[2 * SL_ENC_U64_MAX + 2];
};

/* Fills ret_er with rec as the shared event sees it (pointing into t and the queue). */
static void file_event_rec(const struct file_part *fp,
                           struct sl_part *part,
                           const struct sl_record *rec,
                           struct file_event_text *t,
                           struct sl_event_kinesis_rec *ret_er)
{
    size_t seq_len = sl_enc_u64_digits(t->seq, file_rec_pos(part, rec, 0));
    t->seq[seq_len] = '\0';
    size_t id_len = sl_enc_u64_digits(t->id, fp->gen);
    t->id[id_len++] = ':';
    memcpy(t->id + id_len, t->seq, seq_len);
    id_len += seq_len;
    *ret_er = (struct sl_event_kinesis_rec){
        .key = rec->meta_len > 0 ? sl_recq_meta(&part->q, rec) : NULL,
        .key_len = rec->meta_len,
        .seq = t->seq,
        .seq_len = seq_len,
        /* an oversize record has no bytes (and maybe no arena to point into) */
        .data = rec->len ? sl_recq_data(&part->q, rec) : "",
        .len = rec->len,
        .no_data = (rec->flags & SL_REC_OVERSIZE) != 0,
        .arrival_ms = rec->arrival_ms,
        .id = t->id,
        .id_len = id_len,
        .text_plain = true, /* digits and ':' */
    };
}

int file_encode_record(void *vctx,
                       struct sl_part *part,
                       const struct sl_record *rec,
                       struct sl_buf *out)
{
    (void)vctx;
    const struct file_part *fp = part->src;
    struct file_event_text t;
    struct sl_event_kinesis_rec er;
    file_event_rec(fp, part, rec, &t, &er);
    return sl_event_kinesis_encode(&fp->tmpl, &er, out);
}

size_t
file_record_key(void *vctx, struct sl_part *part, const struct sl_record *rec, const char **ret_key)
{
    (void)vctx;
    if (rec->meta_len > 0) {
        *ret_key = sl_recq_meta(&part->q, rec);
        return rec->meta_len;
    }
    *ret_key = part->name;
    return strlen(part->name);
}

int file_format_item_id(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)vctx;
    int n = snprintf(buf, len, "%" PRIu64, file_rec_pos(part, rec, 0));
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

/* The checkpoint after rec: the offset of the line after it. */
int file_format_pos(
    void *vctx, struct sl_part *part, const struct sl_record *rec, char *buf, size_t len)
{
    (void)vctx;
    int n = snprintf(buf, len, "%" PRIu64, file_rec_pos(part, rec, 1));
    return n < 0 || (size_t)n >= len ? SL_EINVAL : 0;
}

/* The shared filter document: data is the line parsed as JSON when it is JSON, else a string,
 * null when oversize. */
cJSON *file_filter_doc(void *vctx, struct sl_part *part, const struct sl_record *rec)
{
    (void)vctx;
    const struct file_part *fp = part->src;
    struct file_event_text t;
    struct sl_event_kinesis_rec er;
    file_event_rec(fp, part, rec, &t, &er);
    return sl_event_kinesis_filter_doc(&fp->tmpl, &er);
}
