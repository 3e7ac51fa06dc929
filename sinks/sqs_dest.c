/* SPDX-License-Identifier: Apache-2.0 */
/* sqs_dest.c: what an SQS destination string names, for the SQS sink: a queue ARN
 * (arn:PARTITION:sqs:REGION:ACCOUNT:NAME) or a queue URL (https://sqs.REGION.amazonaws.com/
 * ACCOUNT/NAME, or any http(s) URL whose path is /ACCOUNT/NAME with a 12-digit account, which is
 * how local servers such as fauxqs name queues), with the region an AWS host name gives and
 * whether the queue is FIFO (a name ending .fifo). It only parses and checks text: no I/O, no
 * allocation, any thread. */
#include "sqs_dest.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "err.h"
#include "url.h"

static bool sqs_valid_name(const char *s, size_t n)
{
    if (n == 0 || n > SQS_NAME_MAX) {
        return false;
    }
    size_t base = n;
    if (n > 5 && memcmp(s + n - 5, ".fifo", 5) == 0) {
        base = n - 5;
    }
    for (size_t i = 0; i < base; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_') {
            return false;
        }
    }
    return true;
}

static bool sqs_all(const char *s, size_t n, const char *allowed_extra, bool digits_only)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (digits_only ? !isdigit(c)
                        : !(islower(c) || isdigit(c) || (c && strchr(allowed_extra, c)))) {
            return false;
        }
    }
    return true;
}

static bool sqs_copy(char *dst, size_t cap, const char *s, size_t n)
{
    if (n >= cap) {
        return false;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

/* "arn:PARTITION:sqs:REGION:ACCOUNT:NAME" */
static bool sqs_parse_arn(const char *d, struct sqs_dest *ret)
{
    const char *f[6];
    size_t len[6];
    const char *p = d;
    for (int i = 0; i < 6; i++) {
        const char *c = i < 5 ? strchr(p, ':') : p + strlen(p);
        if (!c) {
            return false;
        }
        f[i] = p;
        len[i] = (size_t)(c - p);
        p = c + 1;
    }
    if (len[0] != 3 || memcmp(f[0], "arn", 3) != 0 || len[2] != 3 || memcmp(f[2], "sqs", 3) != 0) {
        return false;
    }
    if (len[1] == 0 || !sqs_all(f[1], len[1], "-", false) || len[3] == 0 ||
        !sqs_all(f[3], len[3], "-", false) || len[4] != SQS_ACCOUNT_LEN ||
        !sqs_all(f[4], len[4], "", true) || !sqs_valid_name(f[5], len[5])) {
        return false;
    }
    ret->is_arn = true;
    return sqs_copy(ret->partition, sizeof(ret->partition), f[1], len[1]) &&
           sqs_copy(ret->region, sizeof(ret->region), f[3], len[3]) &&
           sqs_copy(ret->account, sizeof(ret->account), f[4], len[4]) &&
           sqs_copy(ret->name, sizeof(ret->name), f[5], len[5]);
}

/* "http(s)://AUTHORITY/ACCOUNT/NAME" with a 12-digit account; the region is read from AWS host
 * names (sqs.REGION.amazonaws.com[.cn], REGION.queue.amazonaws.com). */
static bool sqs_parse_url(const char *d, struct sqs_dest *ret)
{
    const char *a;
    if (strncasecmp(d, "http://", 7) == 0) {
        a = d + 7;
    } else if (strncasecmp(d, "https://", 8) == 0) {
        a = d + 8;
    } else {
        return false;
    }
    const char *path = strchr(a, '/');
    if (!path || path == a || memchr(a, '@', (size_t)(path - a)) || strpbrk(path, "?#")) {
        return false;
    }
    const char *acct = path + 1;
    const char *slash = strchr(acct, '/');
    if (!slash || slash - acct != SQS_ACCOUNT_LEN || !sqs_all(acct, SQS_ACCOUNT_LEN, "", true)) {
        return false;
    }
    const char *name = slash + 1;
    if (!sqs_valid_name(name, strlen(name))) {
        return false;
    }
    ret->is_arn = false;
    ret->origin_len = (size_t)(path - d);
    (void)sqs_copy(ret->account, sizeof(ret->account), acct, SQS_ACCOUNT_LEN);
    (void)sqs_copy(ret->name, sizeof(ret->name), name, strlen(name));
    /* The host, without a port. */
    size_t hlen = (size_t)(path - a);
    const char *colon = memchr(a, ':', hlen);
    if (colon) {
        hlen = (size_t)(colon - a);
    }
    const char *dot = memchr(a, '.', hlen);
    if (hlen > 4 && strncasecmp(a, "sqs.", 4) == 0) {
        const char *r = a + 4;
        const char *e = memchr(r, '.', hlen - 4);
        if (e && e > r) {
            (void)sqs_copy(ret->region, sizeof(ret->region), r, (size_t)(e - r));
        }
    } else if (dot && (size_t)(a + hlen - dot) >= 20 &&
               strncasecmp(dot, ".queue.amazonaws.com", 20) == 0) {
        (void)sqs_copy(ret->region, sizeof(ret->region), a, (size_t)(dot - a));
    }
    return true;
}

bool sl_sqs_dest_parse(const char *d, struct sqs_dest *ret)
{
    memset(ret, 0, sizeof(*ret));
    bool ok = strncmp(d, "arn:", 4) == 0 ? sqs_parse_arn(d, ret) : sqs_parse_url(d, ret);
    if (ok) {
        size_t n = strlen(ret->name);
        ret->fifo = n > 5 && strcmp(ret->name + n - 5, ".fifo") == 0;
    }
    return ok;
}

bool sl_sqs_dest_handles(const char *destination)
{
    struct sqs_dest dest;
    if (strncmp(destination, "arn:", 4) == 0) {
        /* Any ARN of the sqs service is ours, so check() can say what is wrong with it. */
        const char *p = strchr(destination + 4, ':');
        return p && strncmp(p, ":sqs:", 5) == 0;
    }
    return sqs_parse_url(destination, &dest);
}

int sl_sqs_dest_check(const char *destination, char *errbuf, size_t errlen)
{
    static const char *const schemes[] = {"http", "https", NULL};
    struct sqs_dest dest;
    if (!sl_sqs_dest_parse(destination, &dest)) {
        char shown[SL_URL_REDACTED_MAX];
        (void)snprintf(errbuf, errlen,
                       "'%s' is not an SQS queue: expected an ARN "
                       "arn:aws:sqs:REGION:ACCOUNT:NAME or a URL "
                       "https://sqs.REGION.amazonaws.com/ACCOUNT/NAME (ACCOUNT: 12 digits; NAME: "
                       "up to 80 letters, digits, '-' or '_', optionally ending in .fifo)",
                       sl_url_redact(destination, shown, sizeof(shown)));
        return SL_ECONFIG;
    }
    /* A queue URL's host and port are where requests go: refuse what curl could not reach. */
    return dest.is_arn ? 0 : sl_url_check(destination, schemes, true, errbuf, errlen);
}
