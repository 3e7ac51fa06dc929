/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_REDIS_URL_H
#define SL_REDIS_URL_H

#include <stddef.h>

#include "err.h"

#define SL_REDIS_DEFAULT_PORT 6379

/* A redis://[user:password@]host[:port][/db[/rest]][?query] URL, taken apart. */
struct sl_redis_url {
    char *host;     /* "127.0.0.1", "::1" (brackets removed), "cache.local" */
    int port;       /* 1..65535; SL_REDIS_DEFAULT_PORT when absent */
    int db;         /* SELECT's index; 0 when absent */
    char *user;     /* ACL user (AUTH user password), or NULL: AUTH password alone */
    char *password; /* percent-decoded; NULL: no AUTH. A secret: never log it */
    char *rest;     /* what follows /db/ (a stream or "list/NAME"): "" when none; raw */
    char *query;    /* what follows '?', or NULL */
};

/* Parses url. rediss:// is refused with an error naming the missing TLS support (hiredis 0.14
 * has none). Returns 0 and fills *ret (owned: sl_redis_url_fini), SL_ECONFIG with errbuf saying
 * what is wrong and what is allowed (the URL in it redacted: never the password), or SL_ENOMEM.
 * On failure *ret is left empty (fini is still safe). Pure; any thread. */
SL_NODISCARD int
sl_redis_url_parse(const char *url, struct sl_redis_url *ret, char *errbuf, size_t errlen);

/* Frees what parse filled (the password wiped). Safe on a zeroed or failed one. */
void sl_redis_url_fini(struct sl_redis_url *u);

#endif
