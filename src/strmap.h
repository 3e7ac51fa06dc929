/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_STRMAP_H
#define SL_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* A small map of strings to strings, in insertion order (an SL_OPT_STRMAP option's value, a
 * client's properties). Values may be secrets: sl_strmap_clear(m, true) wipes them. */
struct sl_strmap {
    char **keys;
    char **values;
    size_t n;
};

/* Sets key to value in m, both copied: replaces the value of a key already there (wiping the
 * old one), else appends. Returns 0 or SL_ENOMEM (m unchanged). Any thread, one at a time. */
SL_NODISCARD int sl_strmap_put(struct sl_strmap *m, const char *key, const char *value);

/* The value of key in m (borrowed), or NULL. */
const char *sl_strmap_get(const struct sl_strmap *m, const char *key);

/* Frees m's contents and zeroes it; with wipe, overwrites each value first (secrets). */
void sl_strmap_clear(struct sl_strmap *m, bool wipe);

#endif
