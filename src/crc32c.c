/* SPDX-License-Identifier: Apache-2.0 */
/* crc32c.c: CRC-32C over bytes, for the spool's frames. Table-driven (eight tables, eight bytes
 * a step) everywhere; on x86-64 with SSE4.2 the crc32 instruction instead, chosen once at run
 * time. No state beyond the tables, built on first use (idempotent, so a race between threads
 * only builds them twice with the same values). Any thread. */
#include "crc32c.h"

#include <stdbool.h>
#include <string.h>

#define CRC32C_POLY 0x82f63b78u /* reversed Castagnoli polynomial */

static uint32_t crc32c_table[8][256];
static volatile bool crc32c_table_ready;

static void crc32c_init_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        }
        crc32c_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t c = crc32c_table[t - 1][i];
            crc32c_table[t][i] = (c >> 8) ^ crc32c_table[0][c & 0xff];
        }
    }
    crc32c_table_ready = true;
}

static uint32_t crc32c_sw(uint32_t crc, const unsigned char *p, size_t len)
{
    if (!crc32c_table_ready) {
        crc32c_init_table();
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        w ^= crc;
        crc = crc32c_table[7][w & 0xff] ^ crc32c_table[6][(w >> 8) & 0xff] ^
              crc32c_table[5][(w >> 16) & 0xff] ^ crc32c_table[4][(w >> 24) & 0xff] ^
              crc32c_table[3][(w >> 32) & 0xff] ^ crc32c_table[2][(w >> 40) & 0xff] ^
              crc32c_table[1][(w >> 48) & 0xff] ^ crc32c_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--) {
        crc = (crc >> 8) ^ crc32c_table[0][(crc ^ *p++) & 0xff];
    }
    return crc;
}

uint32_t sl_crc32c_portable(uint32_t crc, const void *data, size_t len)
{
    return ~crc32c_sw(~crc, data, len);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const unsigned char *p, size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) {
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    }
    return c32;
}

static int crc32c_have_hw = -1;

uint32_t sl_crc32c(uint32_t crc, const void *data, size_t len)
{
    if (crc32c_have_hw < 0) {
        __builtin_cpu_init();
        crc32c_have_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
    }
    if (crc32c_have_hw) {
        return ~crc32c_hw(~crc, data, len);
    }
    return ~crc32c_sw(~crc, data, len);
}
#else
uint32_t sl_crc32c(uint32_t crc, const void *data, size_t len)
{
    return ~crc32c_sw(~crc, data, len);
}
#endif
