/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_SECRET_H
#define SL_SECRET_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "err.h"

/* Secrets (passwords, tokens, keys, certificates' private parts): read from where a
 * configuration points, wiped from memory when done, never logged nor put in an error. Any
 * thread. */

#define SL_SECRET_MAX (256 * 1024) /* a secret read from a file is at most this many bytes */

/* Overwrites n bytes at p so that the compiler cannot leave it out (explicit_bzero). p may be
 * NULL. */
void sl_secret_wipe(void *p, size_t n);

/* Wipes the string s (up to its NUL) and frees it. NULL is a no-op. */
void sl_secret_free(char *s);

/* Wipes b's whole capacity, then frees it (sl_buf_fini). */
void sl_secret_buf_fini(struct sl_buf *b);

/* Wipes every string of j, at any depth, then deletes it. NULL is a no-op. */
void sl_secret_json_delete(cJSON *j);

/* Reads the secret ref names: file:///path (the whole file, at most SL_SECRET_MAX bytes) or
 * env://NAME (the environment variable). Returns 0 and *ret (owned: sl_secret_free it),
 * SL_ECONFIG with errbuf saying, after what, which file or variable and why (never the
 * secret), or SL_ENOMEM. */
SL_NODISCARD int
sl_secret_read(const char *ref, const char *what, char **ret, char *errbuf, size_t errlen);

#endif
