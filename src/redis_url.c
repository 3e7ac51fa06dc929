/* SPDX-License-Identifier: Apache-2.0 */
/* redis_url.c: the redis:// URLs of the configuration (the Redis sink's destination, and the
 * Redis source and checkpoint store that share the connection module, redis_conn.c), taken apart
 * into host, port, database, ACL user and password, and what follows the database (the sink's
 * stream or list/NAME) with its query. It owns the rules of the form, so each user checks it the
 * same way at `sluice validate` time: a port from 1 to 65535, a database from 0 up, user-info
 * percent-decoded (a password may hold '@' or ':'), IPv6 hosts in brackets. rediss:// is refused
 * by name: Debian 12's hiredis (0.14) has no TLS. A password given as ${VAR} was expanded by the
 * configuration reader already; errors show the URL redacted (sl_url_redact), never the
 * password. Pure; any thread. */
#include "redis_url.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "secret.h"
#include "url.h"

#define REDIS_SCHEME  "redis://"
#define REDISS_SCHEME "rediss://"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* A percent-decoded copy of s[0..n), or NULL (out of memory, or a bad escape: *bad set). */
static char *redis_url_decode(const char *s, size_t n, bool *bad)
{
    char *out = sl_malloc(n + 1);
    if (!out) {
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int h = i + 1 < n ? hexval(s[i + 1]) : -1;
            int l = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (h < 0 || l < 0) {
                *bad = true;
                sl_secret_wipe(out, k);
                sl_free(out);
                return NULL;
            }
            out[k++] = (char)(h * 16 + l);
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = '\0';
    return out;
}

static int redis_url_fail(
    struct sl_redis_url *u, const char *url, const char *why, char *errbuf, size_t errlen)
{
    char red[SL_URL_REDACTED_MAX];
    (void)snprintf(errbuf, errlen,
                   "\"%s\" %s; allowed: redis://[user:password@]host[:port][/db], port 1 to "
                   "65535, db a number from 0",
                   sl_url_redact(url, red, sizeof(red)), why);
    sl_redis_url_fini(u);
    return SL_ECONFIG;
}

/* A decimal number from s[0..n) within [min, max]; -1 when it is not one. */
static long redis_url_number(const char *s, size_t n, long min, long max)
{
    if (n == 0 || n > 10) {
        return -1;
    }
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v < min || v > max ? -1 : v;
}

int sl_redis_url_parse(const char *url, struct sl_redis_url *ret, char *errbuf, size_t errlen)
{
    struct sl_redis_url u = {.port = SL_REDIS_DEFAULT_PORT};
    *ret = u;
    if (strncmp(url, REDISS_SCHEME, strlen(REDISS_SCHEME)) == 0) {
        return redis_url_fail(&u, url,
                              "asks for TLS, which this build cannot do: Debian 12's hiredis "
                              "(0.14) has no TLS support; use redis:// (a TLS tunnel such as "
                              "stunnel on loopback works)",
                              errbuf, errlen);
    }
    if (strncmp(url, REDIS_SCHEME, strlen(REDIS_SCHEME)) != 0) {
        return redis_url_fail(&u, url, "is not a redis:// URL", errbuf, errlen);
    }
    for (const char *c = url; *c; c++) {
        if ((unsigned char)*c <= ' ' || *c == 0x7f) {
            return redis_url_fail(&u, url, "has a space or control character", errbuf, errlen);
        }
    }
    const char *auth = url + strlen(REDIS_SCHEME);
    /* The authority ends at the first '/' or '?'; its user-info at the last '@' in it (a
     * password may hold a raw '@' and ':'; a '/' or '?' in it must be written %2F, %3F). */
    const char *end = auth + strcspn(auth, "/?");
    const char *at = NULL;
    for (const char *c = auth; c < end; c++) {
        if (*c == '@') {
            at = c;
        }
    }
    bool bad = false;
    const char *host = auth;
    if (at) {
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon) {
            if (colon > auth && !(u.user = redis_url_decode(auth, (size_t)(colon - auth), &bad)) &&
                !bad) {
                return SL_ENOMEM;
            }
            if (!bad &&
                !(u.password = redis_url_decode(colon + 1, (size_t)(at - colon - 1), &bad)) &&
                !bad) {
                sl_redis_url_fini(&u);
                return SL_ENOMEM;
            }
        } else if (!(u.password = redis_url_decode(auth, (size_t)(at - auth), &bad)) && !bad) {
            /* redis://password@host: the password alone, as redis-cli -u takes it */
            return SL_ENOMEM;
        }
        if (bad) {
            return redis_url_fail(&u, url, "has a bad %-escape in its user-info", errbuf, errlen);
        }
        host = at + 1;
    }
    const char *port = NULL;
    const char *host_end = end;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (!close || close == host + 1) {
            return redis_url_fail(&u, url, "has a bad [IPv6] host", errbuf, errlen);
        }
        if (close + 1 < end) {
            if (close[1] != ':') {
                return redis_url_fail(&u, url, "has text after its [IPv6] host", errbuf, errlen);
            }
            port = close + 2;
        }
        u.host = sl_strndup(host + 1, (size_t)(close - host - 1));
    } else {
        const char *colon = memchr(host, ':', (size_t)(end - host));
        if (colon) {
            port = colon + 1;
            host_end = colon;
        }
        u.host = host_end > host ? sl_strndup(host, (size_t)(host_end - host)) : NULL;
        if (host_end == host) {
            return redis_url_fail(&u, url, "has no host", errbuf, errlen);
        }
    }
    if (!u.host) {
        sl_redis_url_fini(&u);
        return SL_ENOMEM;
    }
    if (port) {
        long p = redis_url_number(port, (size_t)(end - port), 1, 65535);
        if (p < 0) {
            return redis_url_fail(&u, url, "has a bad port", errbuf, errlen);
        }
        u.port = (int)p;
    }
    const char *q = strchr(end, '?');
    const char *path_end = q ? q : end + strlen(end);
    const char *rest = path_end;
    if (*end == '/' && end + 1 < path_end) {
        const char *db = end + 1;
        const char *db_end = memchr(db, '/', (size_t)(path_end - db));
        db_end = db_end ? db_end : path_end;
        long d = redis_url_number(db, (size_t)(db_end - db), 0, 1L << 30);
        if (d < 0) {
            return redis_url_fail(&u, url, "has a bad database number after the host", errbuf,
                                  errlen);
        }
        u.db = (int)d;
        rest = db_end < path_end ? db_end + 1 : db_end;
    }
    u.rest = sl_strndup(rest, (size_t)(path_end - rest));
    if (!u.rest || (q && !(u.query = sl_strdup(q + 1)))) {
        sl_redis_url_fini(&u);
        return SL_ENOMEM;
    }
    *ret = u;
    return 0;
}

void sl_redis_url_fini(struct sl_redis_url *u)
{
    sl_free(u->host);
    sl_free(u->user);
    sl_secret_free(u->password);
    sl_free(u->rest);
    sl_free(u->query);
    *u = (struct sl_redis_url){.port = SL_REDIS_DEFAULT_PORT};
}
