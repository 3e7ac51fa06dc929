/* SPDX-License-Identifier: Apache-2.0 */
/* hash.c: the one non-cryptographic hash every module uses (tables keyed by id, derived UUIDs,
 * file fingerprints, deduplication ids, spreading partition keys over lanes): 64-bit FNV-1a and a
 * finalizer, so no module keeps a copy of its own. Pure functions; any thread. */
#include "hash.h"

uint64_t sl_hash_fnv1a(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

uint64_t sl_hash_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}
