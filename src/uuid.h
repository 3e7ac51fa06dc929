/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_UUID_H
#define SL_UUID_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

/* Characters of a UUID's text form, without the terminating NUL. */
#define SL_UUID_LEN 36

/* Fills buf[0..n) with random bytes. Tests pass their own for fixed ids. */
typedef void (*sl_rand_fn)(void *arg, unsigned char *buf, size_t n);

/* The system's random bytes (getrandom); without them (an old kernel) bytes that are unique
 * enough for ids and names, which are no secrets. Any thread. An sl_rand_fn (arg unused). */
void sl_rand_system(void *arg, unsigned char *buf, size_t n);

/* Writes a random version 4 UUID, lowercase, into out (SL_UUID_LEN + 1 bytes with the NUL),
 * from rand's bytes (NULL: sl_rand_system). */
void sl_uuid_v4(char out[SL_UUID_LEN + 1], sl_rand_fn rand, void *rand_arg);

/* Appends a random version 4 UUID to out. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_uuid_v4_append(struct sl_buf *out, sl_rand_fn rand, void *rand_arg);

#endif
