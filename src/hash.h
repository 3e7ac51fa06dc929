/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_HASH_H
#define SL_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Non-cryptographic hashing for tables, ids and fingerprints: stable across runs and builds
 * (never seeded), never for anything an attacker must not forge. Any thread. */

#define SL_HASH_FNV1A_BASIS UINT64_C(0xcbf29ce484222325) /* FNV-1a's 64-bit offset basis */

/* 64-bit FNV-1a of p[0..n), continuing from h: SL_HASH_FNV1A_BASIS to start, or another base
 * for a second, independent hash of the same bytes. */
uint64_t sl_hash_fnv1a(const void *p, size_t n, uint64_t h);

/* The 64-bit finalizer of splitmix64 (MurmurHash3's fmix64 constants): every bit of x affects
 * every bit of the result. Used to finish FNV-1a, whose low bits mix poorly. */
uint64_t sl_hash_mix(uint64_t x);

#endif
