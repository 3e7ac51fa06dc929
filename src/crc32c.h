/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_CRC32C_H
#define SL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli, as iSCSI and ext4 use): crc is the value so far (0 to start), returns
 * the value after len more bytes, so sl_crc32c(sl_crc32c(0, a, n), b, m) is the CRC of a then b.
 * Uses the SSE4.2 instruction when the CPU has it. Any thread. */
uint32_t sl_crc32c(uint32_t crc, const void *data, size_t len);

/* The table-driven computation alone (what sl_crc32c uses without SSE4.2), for tests. */
uint32_t sl_crc32c_portable(uint32_t crc, const void *data, size_t len);

#endif
