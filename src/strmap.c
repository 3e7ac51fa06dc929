/* SPDX-License-Identifier: Apache-2.0 */
/* strmap.c: a small map of strings to strings (an SL_OPT_STRMAP option's value, the client
 * properties a source shares with a destination). Values may be secrets, so a replaced value is
 * wiped and clearing may wipe them all. Linear lookup: maps hold a handful of keys. No logging,
 * no I/O; any thread, one at a time. */
#include "strmap.h"

#include <string.h>

#include "alloc.h"
#include "secret.h"

static void opt_strmap_clear(struct sl_strmap *m)
{
    for (size_t j = 0; j < m->n; j++) {
        sl_free(m->keys[j]);
        sl_free(m->values[j]);
    }
    sl_free(m->keys);
    sl_free(m->values);
    m->keys = NULL;
    m->values = NULL;
    m->n = 0;
}

int sl_strmap_put(struct sl_strmap *m, const char *key, const char *value)
{
    char *v = sl_strdup(value);
    if (!v) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->keys[i], key) == 0) {
            sl_secret_free(m->values[i]);
            m->values[i] = v;
            return 0;
        }
    }
    char *k = sl_strdup(key);
    char **keys = k ? sl_realloc(m->keys, (m->n + 1) * sizeof(*keys)) : NULL;
    if (keys) {
        m->keys = keys;
    }
    char **values = keys ? sl_realloc(m->values, (m->n + 1) * sizeof(*values)) : NULL;
    if (!values) {
        sl_secret_free(v);
        sl_free(k);
        return SL_ENOMEM;
    }
    m->values = values;
    m->keys[m->n] = k;
    m->values[m->n] = v;
    m->n++;
    return 0;
}

const char *sl_strmap_get(const struct sl_strmap *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->keys[i], key) == 0) {
            return m->values[i];
        }
    }
    return NULL;
}

void sl_strmap_clear(struct sl_strmap *m, bool wipe)
{
    if (wipe) {
        for (size_t i = 0; i < m->n; i++) {
            sl_secret_wipe(m->values[i], strlen(m->values[i]));
        }
    }
    opt_strmap_clear(m);
}