/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_wire.c: the requests the Kinesis source sends (JSON 1.1 bodies of ListShards with
 * its paging rule, GetShardIterator with its five iterator types, GetRecords and
 * DescribeStreamSummary), the classification of an error answer by its __type into what the
 * caller does (renew the iterator, back off, back off slowly, list again, give up), and the
 * shard lineage rule (a child is read only after all its parents). The answers' readers are in
 * kinesis_wire_read.c. Pure: no state, no I/O, no logging. */
#include "kinesis_wire.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "encoder.h"
#include "err.h"

static const char *const kinesis_ops[KINESIS_OP_COUNT] = {
    [KINESIS_OP_LIST_SHARDS] = "ListShards",
    [KINESIS_OP_GET_SHARD_ITERATOR] = "GetShardIterator",
    [KINESIS_OP_GET_RECORDS] = "GetRecords",
    [KINESIS_OP_DESCRIBE_STREAM_SUMMARY] = "DescribeStreamSummary",
};

static const char *const kinesis_targets[KINESIS_OP_COUNT] = {
    [KINESIS_OP_LIST_SHARDS] = "Kinesis_20131202.ListShards",
    [KINESIS_OP_GET_SHARD_ITERATOR] = "Kinesis_20131202.GetShardIterator",
    [KINESIS_OP_GET_RECORDS] = "Kinesis_20131202.GetRecords",
    [KINESIS_OP_DESCRIBE_STREAM_SUMMARY] = "Kinesis_20131202.DescribeStreamSummary",
};

const char *kinesis_wire_op_name(enum kinesis_op op)
{
    assert(op < KINESIS_OP_COUNT);
    return kinesis_ops[op];
}

const char *kinesis_wire_target(enum kinesis_op op)
{
    assert(op < KINESIS_OP_COUNT);
    return kinesis_targets[op];
}

static const char *const kinesis_iters[KINESIS_ITER_COUNT] = {
    [KINESIS_ITER_TRIM_HORIZON] = "TRIM_HORIZON",
    [KINESIS_ITER_LATEST] = "LATEST",
    [KINESIS_ITER_AT_SEQUENCE_NUMBER] = "AT_SEQUENCE_NUMBER",
    [KINESIS_ITER_AFTER_SEQUENCE_NUMBER] = "AFTER_SEQUENCE_NUMBER",
    [KINESIS_ITER_AT_TIMESTAMP] = "AT_TIMESTAMP",
};

const char *kinesis_wire_iter_name(enum kinesis_iter_type type)
{
    assert(type < KINESIS_ITER_COUNT);
    return kinesis_iters[type];
}

static const char *const kinesis_filters[KINESIS_FILTER_COUNT] = {
    [KINESIS_FILTER_NONE] = "",
    [KINESIS_FILTER_AFTER_SHARD_ID] = "AFTER_SHARD_ID",
    [KINESIS_FILTER_AT_TRIM_HORIZON] = "AT_TRIM_HORIZON",
    [KINESIS_FILTER_FROM_TRIM_HORIZON] = "FROM_TRIM_HORIZON",
    [KINESIS_FILTER_AT_LATEST] = "AT_LATEST",
    [KINESIS_FILTER_AT_TIMESTAMP] = "AT_TIMESTAMP",
    [KINESIS_FILTER_FROM_TIMESTAMP] = "FROM_TIMESTAMP",
};

/* ---- building a body: one object of string and number members ---- */

struct kinesis_body {
    struct sl_buf *b;
    int r;      /* first error */
    bool first; /* no member written yet */
};

static void kinesis_body_start(struct kinesis_body *jb, struct sl_buf *b)
{
    sl_buf_truncate(b, 0);
    jb->b = b;
    jb->first = true;
    jb->r = sl_buf_puts(b, "{");
}

static void kinesis_body_key(struct kinesis_body *jb, const char *key)
{
    if (jb->r < 0) {
        return;
    }
    jb->r = sl_buf_puts(jb->b, jb->first ? "\"" : ",\"");
    jb->first = false;
    if (jb->r == 0) {
        jb->r = sl_buf_puts(jb->b, key);
    }
    if (jb->r == 0) {
        jb->r = sl_buf_puts(jb->b, "\":");
    }
}

static void kinesis_body_str(struct kinesis_body *jb, const char *key, const char *v)
{
    kinesis_body_key(jb, key);
    if (jb->r == 0) {
        jb->r = sl_enc_json_str(jb->b, v, strlen(v));
    }
}

static void kinesis_body_raw(struct kinesis_body *jb, const char *key, const char *v)
{
    kinesis_body_key(jb, key);
    if (jb->r == 0) {
        jb->r = sl_buf_puts(jb->b, v);
    }
}

static void kinesis_body_int(struct kinesis_body *jb, const char *key, int v)
{
    char num[16];
    (void)snprintf(num, sizeof(num), "%d", v);
    kinesis_body_raw(jb, key, num);
}

static void kinesis_body_epoch(struct kinesis_body *jb, const char *key, int64_t ms)
{
    kinesis_body_key(jb, key);
    if (jb->r == 0) {
        jb->r = sl_enc_epoch_seconds(jb->b, ms);
    }
}

static int kinesis_body_end(struct kinesis_body *jb)
{
    if (jb->r == 0) {
        jb->r = sl_buf_puts(jb->b, "}");
    }
    return jb->r;
}

static bool kinesis_nonempty(const char *s)
{
    return s && *s;
}

/* Writes the stream's members; fails when it names neither. */
static int kinesis_body_stream(struct kinesis_body *jb,
                               const struct kinesis_stream *stream,
                               const char *op,
                               char *errbuf,
                               size_t errlen)
{
    if (!kinesis_nonempty(stream->name) && !kinesis_nonempty(stream->arn)) {
        (void)snprintf(errbuf, errlen, "%s: no stream (StreamName or StreamARN required)", op);
        return SL_EINVAL;
    }
    if (kinesis_nonempty(stream->name)) {
        kinesis_body_str(jb, "StreamName", stream->name);
    }
    if (kinesis_nonempty(stream->arn)) {
        kinesis_body_str(jb, "StreamARN", stream->arn);
    }
    return 0;
}

int kinesis_wire_list_shards(struct sl_buf *b,
                             const struct kinesis_list_req *req,
                             char *errbuf,
                             size_t errlen)
{
    if (req->max_results < 0 || req->max_results > 10000) {
        (void)snprintf(errbuf, errlen, "ListShards: MaxResults %d is out of range (1 to 10000)",
                       req->max_results);
        return SL_EINVAL;
    }
    if (req->filter >= KINESIS_FILTER_COUNT) {
        (void)snprintf(errbuf, errlen, "ListShards: unknown ShardFilter type %d", (int)req->filter);
        return SL_EINVAL;
    }
    struct kinesis_body jb;
    kinesis_body_start(&jb, b);
    if (kinesis_nonempty(req->next_token)) {
        /* a follow-up page: AWS answers InvalidArgumentException to StreamName, StreamARN,
         * ExclusiveStartShardId or ShardFilter beside NextToken */
        kinesis_body_str(&jb, "NextToken", req->next_token);
    } else {
        int r = kinesis_body_stream(&jb, &req->stream, "ListShards", errbuf, errlen);
        if (r < 0) {
            return r;
        }
        if (kinesis_nonempty(req->exclusive_start_shard_id)) {
            kinesis_body_str(&jb, "ExclusiveStartShardId", req->exclusive_start_shard_id);
        }
        if (req->filter != KINESIS_FILTER_NONE) {
            kinesis_body_key(&jb, "ShardFilter");
            if (jb.r == 0) {
                jb.r = sl_buf_puts(b, "{\"Type\":\"");
            }
            if (jb.r == 0) {
                jb.r = sl_buf_puts(b, kinesis_filters[req->filter]);
            }
            if (jb.r == 0) {
                jb.r = sl_buf_puts(b, "\"");
            }
            if (req->filter == KINESIS_FILTER_AFTER_SHARD_ID) {
                if (!kinesis_nonempty(req->filter_shard_id)) {
                    (void)snprintf(errbuf, errlen,
                                   "ListShards: ShardFilter AFTER_SHARD_ID needs a ShardId");
                    return SL_EINVAL;
                }
                if (jb.r == 0) {
                    jb.r = sl_buf_puts(b, ",\"ShardId\":");
                }
                if (jb.r == 0) {
                    jb.r = sl_enc_json_str(b, req->filter_shard_id, strlen(req->filter_shard_id));
                }
            } else if (req->filter == KINESIS_FILTER_AT_TIMESTAMP ||
                       req->filter == KINESIS_FILTER_FROM_TIMESTAMP) {
                if (jb.r == 0) {
                    jb.r = sl_buf_puts(b, ",\"Timestamp\":");
                }
                if (jb.r == 0) {
                    jb.r = sl_enc_epoch_seconds(b, req->filter_timestamp_ms);
                }
            }
            if (jb.r == 0) {
                jb.r = sl_buf_puts(b, "}");
            }
        }
    }
    if (req->max_results > 0) {
        kinesis_body_int(&jb, "MaxResults", req->max_results);
    }
    return kinesis_body_end(&jb);
}

int kinesis_wire_get_shard_iterator(struct sl_buf *b,
                                    const struct kinesis_stream *stream,
                                    const char *shard_id,
                                    enum kinesis_iter_type type,
                                    const char *seq,
                                    int64_t timestamp_ms,
                                    char *errbuf,
                                    size_t errlen)
{
    if (type >= KINESIS_ITER_COUNT) {
        (void)snprintf(errbuf, errlen, "GetShardIterator: unknown ShardIteratorType %d", (int)type);
        return SL_EINVAL;
    }
    if (!kinesis_nonempty(shard_id)) {
        (void)snprintf(errbuf, errlen, "GetShardIterator: no ShardId");
        return SL_EINVAL;
    }
    bool by_seq =
        type == KINESIS_ITER_AT_SEQUENCE_NUMBER || type == KINESIS_ITER_AFTER_SEQUENCE_NUMBER;
    if (by_seq) {
        char why[128];
        if (!seq || kinesis_seq_check(seq, strlen(seq), why, sizeof(why)) < 0) {
            (void)snprintf(errbuf, errlen, "GetShardIterator %s of %s: %s", kinesis_iters[type],
                           shard_id, seq ? why : "StartingSequenceNumber required");
            return SL_EINVAL;
        }
    }
    struct kinesis_body jb;
    kinesis_body_start(&jb, b);
    int r = kinesis_body_stream(&jb, stream, "GetShardIterator", errbuf, errlen);
    if (r < 0) {
        return r;
    }
    kinesis_body_str(&jb, "ShardId", shard_id);
    kinesis_body_str(&jb, "ShardIteratorType", kinesis_iters[type]);
    if (by_seq) {
        kinesis_body_str(&jb, "StartingSequenceNumber", seq);
    } else if (type == KINESIS_ITER_AT_TIMESTAMP) {
        kinesis_body_epoch(&jb, "Timestamp", timestamp_ms);
    }
    return kinesis_body_end(&jb);
}

int kinesis_wire_get_records(struct sl_buf *b,
                             const char *iterator,
                             int limit,
                             const char *stream_arn,
                             char *errbuf,
                             size_t errlen)
{
    if (!kinesis_nonempty(iterator)) {
        (void)snprintf(errbuf, errlen, "GetRecords: no ShardIterator");
        return SL_EINVAL;
    }
    if (limit < 1 || limit > KINESIS_GET_RECORDS_LIMIT_MAX) {
        (void)snprintf(errbuf, errlen, "GetRecords: Limit %d is out of range (1 to %d)", limit,
                       KINESIS_GET_RECORDS_LIMIT_MAX);
        return SL_EINVAL;
    }
    struct kinesis_body jb;
    kinesis_body_start(&jb, b);
    kinesis_body_str(&jb, "ShardIterator", iterator);
    kinesis_body_int(&jb, "Limit", limit);
    if (kinesis_nonempty(stream_arn)) {
        kinesis_body_str(&jb, "StreamARN", stream_arn);
    }
    return kinesis_body_end(&jb);
}

int kinesis_wire_describe_stream_summary(struct sl_buf *b,
                                         const struct kinesis_stream *stream,
                                         char *errbuf,
                                         size_t errlen)
{
    struct kinesis_body jb;
    kinesis_body_start(&jb, b);
    int r = kinesis_body_stream(&jb, stream, "DescribeStreamSummary", errbuf, errlen);
    if (r < 0) {
        return r;
    }
    return kinesis_body_end(&jb);
}

/* ---- errors ---- */

static const char *const kinesis_retries[KINESIS_RETRY_COUNT] = {
    [KINESIS_RETRY_RENEW_ITERATOR] = "renew iterator",
    [KINESIS_RETRY_THROTTLE] = "throttle",
    [KINESIS_RETRY_SLOW] = "slow backoff",
    [KINESIS_RETRY_RELIST] = "list again",
    [KINESIS_RETRY_FATAL] = "fatal",
};

const char *kinesis_wire_retry_name(enum kinesis_retry r)
{
    assert(r < KINESIS_RETRY_COUNT);
    return kinesis_retries[r];
}

struct kinesis_class {
    const char *type;
    enum kinesis_retry retry;
    int err;
};

/* wire.md §0.1 and §1.6; a type not named here is classified by the status */
static const struct kinesis_class kinesis_classes[] = {
    {"ExpiredIteratorException", KINESIS_RETRY_RENEW_ITERATOR, SL_EAGAIN},
    {"ProvisionedThroughputExceededException", KINESIS_RETRY_THROTTLE, SL_ETHROTTLED},
    {"LimitExceededException", KINESIS_RETRY_THROTTLE, SL_ETHROTTLED},
    {"ThrottlingException", KINESIS_RETRY_THROTTLE, SL_ETHROTTLED},
    {"KMSThrottlingException", KINESIS_RETRY_THROTTLE, SL_ETHROTTLED},
    {"RequestLimitExceeded", KINESIS_RETRY_THROTTLE, SL_ETHROTTLED},
    {"InternalFailure", KINESIS_RETRY_THROTTLE, SL_EREMOTE},
    {"InternalFailureException", KINESIS_RETRY_THROTTLE, SL_EREMOTE},
    {"ServiceUnavailable", KINESIS_RETRY_THROTTLE, SL_EREMOTE},
    {"ServiceUnavailableException", KINESIS_RETRY_THROTTLE, SL_EREMOTE},
    {"ResourceNotFoundException", KINESIS_RETRY_SLOW, SL_ENOTFOUND},
    {"ResourceInUseException", KINESIS_RETRY_SLOW, SL_EAGAIN},
    {"AccessDeniedException", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"UnrecognizedClientException", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"InvalidSignatureException", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"IncompleteSignatureException", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"MissingAuthenticationTokenException", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"MissingAuthenticationToken", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"ExpiredTokenException", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"InvalidClientTokenId", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"KMSDisabledException", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"KMSInvalidStateException", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"KMSAccessDeniedException", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"KMSNotFoundException", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"KMSOptInRequired", KINESIS_RETRY_SLOW, SL_EAUTH},
    {"ExpiredNextTokenException", KINESIS_RETRY_RELIST, SL_EAGAIN},
    {"InvalidArgumentException", KINESIS_RETRY_FATAL, SL_EREJECTED},
    {"ValidationException", KINESIS_RETRY_FATAL, SL_EREJECTED},
    {"SerializationException", KINESIS_RETRY_FATAL, SL_EPROTO},
    {"UnknownOperationException", KINESIS_RETRY_FATAL, SL_EPROTO},
};

/* Copies an error type, dropping "namespace#" before it and ":..." after it. */
static void kinesis_error_type(char *out, size_t outlen, const char *t)
{
    const char *hash = strrchr(t, '#');
    if (hash) {
        t = hash + 1;
    }
    size_t n = strcspn(t, ":");
    (void)snprintf(out, outlen, "%.*s", (int)n, t);
}

void kinesis_wire_error_read(long status,
                             const char *body,
                             size_t len,
                             const char *error_type_header,
                             struct kinesis_error *ret)
{
    ret->type[0] = '\0';
    ret->message[0] = '\0';
    cJSON *j = len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "__type");
    if (cJSON_IsString(t)) {
        kinesis_error_type(ret->type, sizeof(ret->type), t->valuestring);
    } else if (error_type_header && *error_type_header) {
        kinesis_error_type(ret->type, sizeof(ret->type), error_type_header);
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (!cJSON_IsString(m)) {
        m = cJSON_GetObjectItemCaseSensitive(j, "Message");
    }
    if (cJSON_IsString(m)) {
        (void)snprintf(ret->message, sizeof(ret->message), "%s", m->valuestring);
    }
    cJSON_Delete(j);

    for (size_t i = 0; i < SL_ARRAY_LEN(kinesis_classes); i++) {
        if (strcmp(ret->type, kinesis_classes[i].type) == 0) {
            ret->retry = kinesis_classes[i].retry;
            ret->err = kinesis_classes[i].err;
            return;
        }
    }
    if (status == 429) {
        ret->retry = KINESIS_RETRY_THROTTLE;
        ret->err = SL_ETHROTTLED;
    } else if (status >= 500 || status < 100) {
        ret->retry = KINESIS_RETRY_THROTTLE;
        ret->err = SL_EREMOTE;
    } else if (status == 401 || status == 403) {
        ret->retry = KINESIS_RETRY_SLOW;
        ret->err = SL_EAUTH;
    } else if (status == 404) {
        ret->retry = KINESIS_RETRY_SLOW;
        ret->err = SL_ENOTFOUND;
    } else {
        /* an unknown 4xx: something is wrong with what we sent */
        ret->retry = KINESIS_RETRY_FATAL;
        ret->err = SL_EREJECTED;
    }
}

/* ---- shard lineage ---- */

/* True when the shard named id is done or not in the list (expired parents count as done). */
static bool
kinesis_parent_done(const char *id, const struct kinesis_shard *shards, size_t n, const bool *done)
{
    for (size_t j = 0; j < n; j++) {
        if (strcmp(shards[j].id, id) == 0) {
            return done[j];
        }
    }
    return true;
}

bool kinesis_wire_shard_may_start(const struct kinesis_shard *shards,
                                  size_t n,
                                  const bool *done,
                                  size_t i)
{
    assert(i < n);
    const struct kinesis_shard *s = &shards[i];
    return (!s->parent[0] || kinesis_parent_done(s->parent, shards, n, done)) &&
           (!s->adjacent_parent[0] || kinesis_parent_done(s->adjacent_parent, shards, n, done));
}

bool kinesis_wire_child_may_start(const struct kinesis_child_shard *child,
                                  const struct kinesis_shard *shards,
                                  size_t n,
                                  const bool *done)
{
    for (size_t k = 0; k < child->n_parents; k++) {
        if (!kinesis_parent_done(child->parents[k], shards, n, done)) {
            return false;
        }
    }
    return true;
}
