/* SPDX-License-Identifier: Apache-2.0 */
/* fh_transform_int.h: what fh_transform.c (the batches, invocations and retries) takes from
 * fh_wire.c (the event's and the answer's bytes), and nothing else includes. */
#ifndef SL_FH_TRANSFORM_INT_H
#define SL_FH_TRANSFORM_INT_H

#include "fh_transform.h"

/* Writes the recordId of recs index i of a batch made with nonce: 20 digits of nonce, 20 of
 * tag, 16 of i, and a NUL. */
void sl_fh_wire_record_id(char out[SL_FH_RECORD_ID_LEN + 1],
                          uint64_t nonce,
                          uint64_t tag,
                          size_t i);

/* What an event carries besides its records (strings borrowed; source_arn NULL: none). */
struct sl_fh_wire_ctx {
    const char *stream_arn;
    const char *region;
    const char *source_arn;
};

/* Bytes of the event besides its records (invocationId, the ARNs, region, the brackets). */
size_t sl_fh_wire_head_len(const struct sl_fh_wire_ctx *ev);
/* Bytes one record takes in the event, with its separating comma. */
size_t sl_fh_wire_rec_len(const struct sl_fh_rec *rec);

/* The end of the invocation that starts at recs[lo]: as many records as fit both within
 * buffer_bytes of input and within SL_FH_EVENT_MAX_BYTES of event (at least one). *too_large:
 * the one record recs[lo] alone passes SL_FH_EVENT_MAX_BYTES. */
size_t sl_fh_wire_cut(const struct sl_fh_rec *recs,
                      size_t n,
                      size_t lo,
                      size_t head_len,
                      int64_t buffer_bytes,
                      bool *too_large);

/* Appends the event of recs[lo..hi). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_fh_wire_build(struct sl_buf *out,
                                  const char *invocation_id,
                                  const struct sl_fh_wire_ctx *ev,
                                  uint64_t nonce,
                                  const struct sl_fh_rec *recs,
                                  size_t lo,
                                  size_t hi);

/* Writes a random version 4 UUID and a NUL into out. */
void sl_fh_wire_uuid(char out[37], sl_fh_rand_fn rnd, void *rand_arg);

/* Reads a function's answer for recs[lo..hi) into outs[0..hi-lo) (result, data, lambda_keys;
 * a record missing from the answer gets SL_FH_FAILED with SL_FH_ERR_MISSING). Returns 0,
 * 1 when the answer fails as a whole (*ret_code and *ret_msg set, static strings; outs left
 * empty) or SL_ENOMEM (outs left empty). */
int sl_fh_wire_answer_read(const char *body,
                           size_t len,
                           uint64_t nonce,
                           const struct sl_fh_rec *recs,
                           size_t lo,
                           size_t hi,
                           struct sl_fh_out *outs,
                           const char **ret_code,
                           const char **ret_msg);

/* Frees what an out owns and zeroes it. */
void sl_fh_wire_out_clear(struct sl_fh_out *o);

#endif
