/* SPDX-License-Identifier: Apache-2.0 */
/* kinesis_arn.c: the Kinesis source's EventSourceArn, "arn:PARTITION:kinesis:REGION:ACCOUNT:
 * stream/NAME" as `aws lambda create-event-source-mapping` takes it, split into its parts with
 * AWS's rules for each (a stream name of 1-128 letters, digits, '_', '-', '.'; a 12-digit
 * account). An enhanced fan-out consumer's ARN (".../consumer/...") is refused by name. Pure:
 * no I/O, no state, no logging. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "kinesis_int.h"

#define KIN_ARN_FORM "arn:aws:kinesis:REGION:ACCOUNT:stream/NAME"

static bool kin_arn_name_ok(const char *s, size_t n)
{
    if (n < 1 || n > 128) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            return false;
        }
    }
    return true;
}

static bool kin_arn_region_ok(const char *s, size_t n)
{
    if (n < 1 || n > 32) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            return false;
        }
    }
    return true;
}

static bool kin_arn_account_ok(const char *s, size_t n)
{
    if (n != 12) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

static char *kin_arn_dup(const char *s, size_t n)
{
    char *p = sl_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int kin_arn_parse(const char *arn, struct kin_arn *ret, char *errbuf, size_t errlen)
{
    memset(ret, 0, sizeof(*ret));
    const char *f[6];
    size_t len[6];
    const char *p = arn ? arn : "";
    /* arn : partition : kinesis : region : account : resource */
    for (int i = 0; i < 6; i++) {
        const char *c = i < 5 ? strchr(p, ':') : NULL;
        f[i] = p;
        len[i] = c ? (size_t)(c - p) : strlen(p);
        if (i < 5 && !c) {
            (void)snprintf(errbuf, errlen,
                           "EventSourceArn: \"%.200s\" is not a Kinesis stream ARN; allowed: "
                           "%s",
                           arn ? arn : "", KIN_ARN_FORM);
            return SL_ECONFIG;
        }
        p = c ? c + 1 : p;
    }
    if (len[0] != 3 || memcmp(f[0], "arn", 3) != 0 || len[1] < 3 || memcmp(f[1], "aws", 3) != 0 ||
        len[2] != 7 || memcmp(f[2], "kinesis", 7) != 0) {
        (void)snprintf(errbuf, errlen,
                       "EventSourceArn: \"%.200s\" is not a Kinesis stream ARN; allowed: %s", arn,
                       KIN_ARN_FORM);
        return SL_ECONFIG;
    }
    if (!kin_arn_region_ok(f[3], len[3])) {
        (void)snprintf(errbuf, errlen,
                       "EventSourceArn: \"%.200s\": the region must be a region name such as "
                       "us-east-1; allowed: %s",
                       arn, KIN_ARN_FORM);
        return SL_ECONFIG;
    }
    if (!kin_arn_account_ok(f[4], len[4])) {
        (void)snprintf(errbuf, errlen,
                       "EventSourceArn: \"%.200s\": the account must be 12 digits; allowed: %s",
                       arn, KIN_ARN_FORM);
        return SL_ECONFIG;
    }
    const char *res = f[5];
    if (strncmp(res, "stream/", 7) != 0) {
        (void)snprintf(errbuf, errlen,
                       "EventSourceArn: \"%.200s\" does not name a stream; allowed: %s", arn,
                       KIN_ARN_FORM);
        return SL_ECONFIG;
    }
    const char *name = res + 7;
    if (strstr(name, "/consumer/")) {
        (void)snprintf(errbuf, errlen,
                       "EventSourceArn: \"%.200s\" names an enhanced fan-out consumer, which is "
                       "not supported; allowed: the stream's own ARN, %s",
                       arn, KIN_ARN_FORM);
        return SL_ECONFIG;
    }
    if (!kin_arn_name_ok(name, strlen(name))) {
        (void)snprintf(errbuf, errlen,
                       "EventSourceArn: \"%.200s\": the stream name must be 1 to 128 letters, "
                       "digits, '_', '-' or '.'; allowed: %s",
                       arn, KIN_ARN_FORM);
        return SL_ECONFIG;
    }
    ret->partition = kin_arn_dup(f[1], len[1]);
    ret->region = kin_arn_dup(f[3], len[3]);
    ret->account = kin_arn_dup(f[4], len[4]);
    ret->stream = kin_arn_dup(name, strlen(name));
    if (!ret->partition || !ret->region || !ret->account || !ret->stream) {
        kin_arn_fini(ret);
        return SL_ENOMEM;
    }
    return 0;
}

void kin_arn_fini(struct kin_arn *a)
{
    sl_free(a->partition);
    sl_free(a->region);
    sl_free(a->account);
    sl_free(a->stream);
    memset(a, 0, sizeof(*a));
}
