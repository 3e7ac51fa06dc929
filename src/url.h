/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_URL_H
#define SL_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* Longest redacted URL the callers keep on their stack; longer ones are cut (never in the
 * middle of a secret: the secrets are gone before the cut). */
#define SL_URL_REDACTED_MAX 512

/* Writes into buf (len > 0) a copy of url that is safe to log: the user-info ("user:password@")
 * becomes "***@", a query becomes "?***" and a fragment is dropped (except in a file:// URL,
 * where '?' and '#' belong to the path). Without a "scheme://" the text up to the first '/' is
 * taken as the authority ("user:pw@host:9092" -> "***@host:9092"); an '@' after the authority
 * (in the path) is kept. Returns buf. Pure; any thread. */
const char *sl_url_redact(const char *url, char *buf, size_t len);

/* Like sl_url_redact, into a new string: returns owned (sl_free), or NULL when out of memory. */
char *sl_url_redact_dup(const char *url);

/* Checks that url is an absolute URL whose scheme is one of schemes (NULL-terminated, lower
 * case, such as {"http", "https", NULL}), with a host, a port from 1 to 65535 when one is given,
 * and no whitespace or control character. With no_query, a query or fragment is refused too.
 * On failure writes to errbuf "\"<url, redacted>\" <what is wrong>; allowed: ..." and returns
 * SL_ECONFIG; SL_ENOMEM when out of memory. Any thread. */
SL_NODISCARD int sl_url_check(
    const char *url, const char *const *schemes, bool no_query, char *errbuf, size_t errlen);

#endif
