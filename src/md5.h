/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_MD5_H
#define SL_MD5_H

#include <stddef.h>
#include <stdint.h>

/* MD5 (RFC 1321), for the checksums AWS's formats carry: the trailer of a KPL aggregated
 * Kinesis record, a Kinesis partition key's hash key. Never for security. Any thread. */

#define SL_MD5_LEN 16

struct sl_md5 {
    uint32_t h[4];
    uint64_t len; /* bytes hashed so far */
    unsigned char block[64];
};

void sl_md5_init(struct sl_md5 *c);
void sl_md5_update(struct sl_md5 *c, const void *p, size_t n);
void sl_md5_final(struct sl_md5 *c, unsigned char out[SL_MD5_LEN]);

/* MD5 of p[0..n) in one call. */
void sl_md5(const void *p, size_t n, unsigned char out[SL_MD5_LEN]);

#endif
