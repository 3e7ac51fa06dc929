/* SPDX-License-Identifier: Apache-2.0 */
/* url.c: URLs as configuration values. It owns two things every module that takes a URL from
 * the configuration needs: the redacted form of a URL for logs and error messages (the
 * user-info and the query of a URL can carry passwords and tokens: "http://carol:pw@host/" or
 * "...?sig=..."), and the check that a URL names a scheme sluice speaks, a host and a usable
 * port, so a typo fails `sluice validate` instead of being retried forever at run time.
 *
 * About redaction: it works on the text, without a parser that could refuse the URL, so that
 * even a URL too broken to use is logged without its secrets. The authority is what follows
 * "scheme://" (or the start, without a scheme) up to the first '/', '?' or '#'. When a raw '/'
 * or '?' sits inside a password the authority seen that way ends inside the password, and its
 * "port" is not a number: then everything up to the last '@' before the fragment is taken as
 * the user-info. A file:// URL keeps its '?' and '#': they are glob or file name characters
 * there, not a query. It never logs. Any thread. */
#include "url.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "alloc.h"

struct url_out {
    char *buf;
    size_t len;
    size_t n;
};

static void url_put(struct url_out *o, const char *s, size_t n)
{
    size_t room = o->len - 1 - o->n;
    if (n > room) {
        n = room;
    }
    memcpy(o->buf + o->n, s, n);
    o->n += n;
}

/* Length of "scheme://" at the start of s, or 0. */
static size_t url_scheme_len(const char *s)
{
    size_t i = 0;
    if (!isalpha((unsigned char)s[0])) {
        return 0;
    }
    while (isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.') {
        i++;
    }
    return strncmp(s + i, "://", 3) == 0 ? i + 3 : 0;
}

/* True when the authority a[0..n) (no user-info) ends in ":X" with X not all digits, outside an
 * IPv6 literal's brackets: not host[:port], so a password was probably cut. */
static bool url_authority_odd(const char *a, size_t n)
{
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == ']') {
            colon = NULL;
        } else if (a[i] == ':') {
            colon = a + i;
        }
    }
    if (!colon || (n > 0 && a[0] == '[' && !memchr(a, ']', n))) {
        return colon != NULL;
    }
    for (const char *p = colon + 1; p < a + n; p++) {
        if (!isdigit((unsigned char)*p)) {
            return true;
        }
    }
    return false;
}

const char *sl_url_redact(const char *url, char *buf, size_t len)
{
    struct url_out o = {buf, len, 0};
    if (!url) {
        url = "";
    }
    size_t sl = url_scheme_len(url);
    const char *auth = url + sl;
    size_t alen = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++) {
        if (auth[i] == '@') {
            at = auth + i;
        }
    }
    url_put(&o, url, sl);
    const char *rest = auth + alen;
    if (at) {
        url_put(&o, "***@", 4);
        url_put(&o, at + 1, (size_t)(auth + alen - (at + 1)));
    } else if (url_authority_odd(auth, alen)) {
        /* An '@' before the fragment ends a user-info that holds a '/' or '?'. */
        const char *end = auth + alen + strcspn(auth + alen, "#");
        const char *last = NULL;
        for (const char *p = auth; p < end; p++) {
            if (*p == '@') {
                last = p;
            }
        }
        if (last) {
            url_put(&o, "***@", 4);
            auth = last + 1;
            alen = strcspn(auth, "/?#");
            rest = auth + alen;
        }
        url_put(&o, auth, alen);
    } else {
        url_put(&o, auth, alen);
    }
    /* A file URL has no query: '?' is a glob character of its path. */
    bool file = sl == 7 && strncasecmp(url, "file", 4) == 0;
    size_t plen = strcspn(rest, file ? "" : "?#");
    url_put(&o, rest, plen);
    if (rest[plen] == '?') {
        url_put(&o, "?***", 4);
    }
    buf[o.n] = '\0';
    return buf;
}

char *sl_url_redact_dup(const char *url)
{
    char buf[SL_URL_REDACTED_MAX];
    return sl_strdup(sl_url_redact(url, buf, sizeof(buf)));
}

static void url_allowed(char *out, size_t len, const char *const *schemes, bool no_query)
{
    struct url_out o = {out, len, 0};
    for (size_t i = 0; schemes[i]; i++) {
        if (i > 0) {
            url_put(&o, schemes[i + 1] ? ", " : " or ", schemes[i + 1] ? 2 : 4);
        }
        url_put(&o, schemes[i], strlen(schemes[i]));
        url_put(&o, "://", 3);
    }
    const char *tail = no_query ? " URL with a host, an optional port from 1 to 65535 and no query"
                                : " URL with a host and an optional port from 1 to 65535";
    url_put(&o, tail, strlen(tail));
    out[o.n] = '\0';
}

int sl_url_check(
    const char *url, const char *const *schemes, bool no_query, char *errbuf, size_t errlen)
{
    char shown[SL_URL_REDACTED_MAX];
    char allowed[160];
    (void)sl_url_redact(url, shown, sizeof(shown));
    url_allowed(allowed, sizeof(allowed), schemes, no_query);
    const char *what = NULL;
    char curl_what[160];
    size_t sl = url_scheme_len(url);
    bool scheme_ok = false;
    for (size_t i = 0; sl > 3 && schemes[i]; i++) {
        scheme_ok = scheme_ok ||
                    (strlen(schemes[i]) == sl - 3 && strncasecmp(url, schemes[i], sl - 3) == 0);
    }
    for (const char *p = url; !what && *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            what = "contains a space or a control character";
        }
    }
    if (!what && !scheme_ok) {
        what = sl ? "has a scheme sluice does not speak here" : "is not an absolute URL";
    }
    if (!what && (url[sl] == '\0' || strchr("/?#", url[sl]))) {
        what = "has no host";
    }
    if (!what && no_query && strpbrk(url, "?#")) {
        what = "has a query or a fragment";
    }
    int r = 0;
    if (!what) {
        CURLU *u = curl_url();
        if (!u) {
            return SL_ENOMEM;
        }
        char *host = NULL;
        char *port = NULL;
        CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
        if (uc == CURLUE_OK) {
            uc = curl_url_get(u, CURLUPART_HOST, &host, 0);
        }
        if (uc == CURLUE_OK || uc == CURLUE_NO_HOST) {
            CURLUcode pc = curl_url_get(u, CURLUPART_PORT, &port, 0);
            if (pc == CURLUE_OUT_OF_MEMORY) {
                uc = pc;
            }
        }
        if (uc == CURLUE_OUT_OF_MEMORY) {
            r = SL_ENOMEM;
        } else if (uc == CURLUE_BAD_PORT_NUMBER ||
                   (port && (strtol(port, NULL, 10) < 1 || strtol(port, NULL, 10) > 65535))) {
            what = "has a port outside 1 to 65535";
        } else if (uc == CURLUE_NO_HOST || (uc == CURLUE_OK && (!host || !*host))) {
            what = "has no host";
        } else if (uc != CURLUE_OK) {
            (void)snprintf(curl_what, sizeof(curl_what), "is not a valid URL (%s)",
                           curl_url_strerror(uc));
            what = curl_what;
        }
        curl_free(host);
        curl_free(port);
        curl_url_cleanup(u);
    }
    if (r < 0) {
        return r;
    }
    if (!what) {
        return 0;
    }
    (void)snprintf(errbuf, errlen, "\"%s\" %s; allowed: an %s", shown, what, allowed);
    return SL_ECONFIG;
}
