/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_SHA256_H
#define SL_SHA256_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for SigV4 (sigv4.c). No allocation, no
 * failure. Any thread; a context is used by one thread at a time. */

#define SL_SHA256_LEN     32 /* digest bytes */
#define SL_SHA256_HEX_LEN 64 /* digest as lower-case hex, without the NUL */
#define SL_SHA256_BLOCK   64 /* block bytes */

struct sl_sha256 {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    uint8_t block[SL_SHA256_BLOCK];
    size_t fill; /* bytes waiting in block */
};

void sl_sha256_init(struct sl_sha256 *c);
/* Hashes n more bytes of p (p may be NULL when n is 0). */
void sl_sha256_update(struct sl_sha256 *c, const void *p, size_t n);
/* Writes the digest to out and wipes c (it must be initialised again before reuse). */
void sl_sha256_final(struct sl_sha256 *c, uint8_t out[SL_SHA256_LEN]);

/* The digest of p[0..n) in one call. */
void sl_sha256(const void *p, size_t n, uint8_t out[SL_SHA256_LEN]);

/* Writes the n bytes of d as lower-case hex to out, NUL-terminated (out has 2 * n + 1 bytes). */
void sl_sha256_hex(const uint8_t *d, size_t n, char *out);

/* Chooses the compression function: the processor's SHA extensions (on, where there are any)
 * or the portable code (off). Returns whether the extensions are used now. Without a call the
 * extensions are used where there are any. For tests; not while another thread hashes. */
bool sl_sha256_set_accel(bool on);

/* HMAC-SHA256 of msg[0..msg_len) under key[0..key_len) (any key length). Wipes its own copies
 * of the key. */
void sl_hmac_sha256(
    const void *key, size_t key_len, const void *msg, size_t msg_len, uint8_t out[SL_SHA256_LEN]);

#endif
