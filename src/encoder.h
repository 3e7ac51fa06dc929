/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_ENCODER_H
#define SL_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Building blocks for the events functions receive: they append to an sl_buf exactly the
 * bytes AWS would send, fast enough to run per record (no cJSON on the hot path). */

/* Bytes base64 of n input bytes takes (standard alphabet, padded). */
static inline size_t sl_enc_base64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

/* Appends standard, padded base64 of data. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_enc_base64(struct sl_buf *out, const void *data, size_t n);

/* Decodes standard base64 (padding optional) into out. Returns 0, SL_EINVAL or SL_ENOMEM. */
SL_NODISCARD int sl_enc_base64_decode(struct sl_buf *out, const char *s, size_t n);

/* Appends s as a JSON string with its quotes: '"', '\\' and control characters escaped
 * (\n \r \t \b \f, others \u00XX); bytes >= 0x80 are copied as they are (the input is taken to
 * be UTF-8). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_enc_json_str(struct sl_buf *out, const char *s, size_t n);

/* Writes v in decimal at w (room for SL_ENC_U64_MAX bytes; no terminator) and returns the
 * number of digits. */
#define SL_ENC_U64_MAX 20
size_t sl_enc_u64_digits(char *w, uint64_t v);

/* Appends v in decimal. */
SL_NODISCARD int sl_enc_u64(struct sl_buf *out, uint64_t v);

/* Appends Unix epoch milliseconds as seconds with exactly three decimals: 1545084650.987. */
SL_NODISCARD int sl_enc_epoch_seconds(struct sl_buf *out, int64_t ms);

/* Appends Unix epoch milliseconds as an ISO 8601 UTC time with milliseconds:
 * 2019-11-14T00:38:06.021Z. */
SL_NODISCARD int sl_enc_iso8601_ms(struct sl_buf *out, int64_t ms);

#endif
