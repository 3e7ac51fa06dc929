/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_KINESIS_SEQ_H
#define SL_KINESIS_SEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Kinesis sequence numbers (wire.md §1.1): decimal strings of up to 128 digits (56 today),
 * ordered as big unsigned integers and never converted to a machine integer; and the position
 * bytes the Kinesis source stores for a record (sources/README.md "Positions").
 *
 * Position encoding (compact, and ordered by kinesis_pos_compare):
 *   byte 0              n = number of digits of the sequence number without leading zeros
 *                       (1..KINESIS_SEQ_DIGITS_MAX; "0" is one digit)
 *   bytes 1..(n+1)/2    the digits as packed BCD, two per byte, the first digit in the high
 *                       nibble; an odd count leaves the last low nibble 0
 *   8 more bytes        only for a user record of a KPL aggregate (wire.md §5): its
 *                       sub-sequence number (its index in the aggregate), big-endian
 * A 56-digit sequence number takes 29 bytes, 37 with a sub-sequence number; at most
 * KINESIS_POS_MAX (73), within SL_REC_POS_MAX.
 *
 * Order: by value of the sequence number (more digits = larger, else the digits); for equal
 * sequence numbers a position without a sub-sequence number (the whole record) comes after
 * every sub-sequence number of it, so "done up to the whole record" covers its user records.
 *
 * Text form (kinesis_pos_format, and what kinesis_pos_parse reads back): the digits, or
 * "DIGITS:SUB" with a sub-sequence number. Pure; any thread. */

#define KINESIS_SEQ_DIGITS_MAX 128
#define KINESIS_POS_MAX        (1 + KINESIS_SEQ_DIGITS_MAX / 2 + 8)
/* text of a position: digits, ':', up to 20 digits of a uint64, NUL */
#define KINESIS_POS_TEXT_MAX (KINESIS_SEQ_DIGITS_MAX + 1 + 20 + 1)

/* Checks that s[0..n) is a sequence number: 1 to KINESIS_SEQ_DIGITS_MAX decimal digits after
 * any leading zeros, nothing else. Returns 0, or SL_EINVAL with errbuf naming what is wrong. */
SL_NODISCARD int kinesis_seq_check(const char *s, size_t n, char *errbuf, size_t errlen);

/* Orders two valid sequence numbers (kinesis_seq_check) by value: < 0, 0, > 0. Leading zeros
 * do not count. */
int kinesis_seq_compare(const char *a, size_t a_len, const char *b, size_t b_len);

/* Encodes sequence number seq[0..n) (with sub-sequence number sub when has_sub) into out
 * (room for KINESIS_POS_MAX bytes) and sets *ret_len. Returns 0, or SL_EINVAL with errbuf
 * naming what is wrong with seq (out and *ret_len untouched). */
SL_NODISCARD int kinesis_pos_encode(const char *seq,
                                    size_t n,
                                    bool has_sub,
                                    uint64_t sub,
                                    unsigned char *out,
                                    size_t *ret_len,
                                    char *errbuf,
                                    size_t errlen);

/* kinesis_pos_encode for a seq that kinesis_seq_check already accepted (GetRecords' answers are
 * checked as they are read), so a record's digits are not checked twice. */
void kinesis_pos_pack(
    const char *seq, size_t n, bool has_sub, uint64_t sub, unsigned char *out, size_t *ret_len);

/* True when pos[0..len) is a position kinesis_pos_encode could have written. */
bool kinesis_pos_is_valid(const unsigned char *pos, size_t len);

/* Orders two valid positions of one shard (see the header comment): < 0, 0, > 0. */
int kinesis_pos_compare(const unsigned char *a, size_t a_len, const unsigned char *b, size_t b_len);

/* Writes the sequence number of pos alone (no sub-sequence number), NUL-terminated, into
 * buf[0..len). Returns the number of digits, or SL_EINVAL when pos is not valid or buf too
 * small (KINESIS_SEQ_DIGITS_MAX + 1 always suffices). */
SL_NODISCARD int kinesis_pos_seq(const unsigned char *pos, size_t pos_len, char *buf, size_t len);

/* True with *ret_sub when pos (valid) carries a sub-sequence number. */
bool kinesis_pos_sub(const unsigned char *pos, size_t pos_len, uint64_t *ret_sub);

/* Writes the text form of pos, NUL-terminated, into buf[0..len). Returns its length, or
 * SL_EINVAL when pos is not valid or buf too small (KINESIS_POS_TEXT_MAX always suffices). */
SL_NODISCARD int
kinesis_pos_format(const unsigned char *pos, size_t pos_len, char *buf, size_t len);

/* Reads the text form s (NUL-terminated; a checkpoint) into out (room for KINESIS_POS_MAX)
 * and *ret_len. Returns 0, or SL_EINVAL with errbuf naming what is wrong. */
SL_NODISCARD int
kinesis_pos_parse(const char *s, unsigned char *out, size_t *ret_len, char *errbuf, size_t errlen);

#endif
