/* SPDX-License-Identifier: Apache-2.0 */
/* s3_keys_time.c: the time and random parts of Firehose's S3 keys (s3_keys.h). It owns the
 * subset of Java's DateTimeFormatter that !{timestamp:...} takes, Firehose's object name
 * (<stream>-<version>-yyyy-MM-dd-HH-mm-ss-<uuid><ext>), the random UUIDs and random strings,
 * and the compression extensions. Kept apart from the prefix templates (s3_keys.c) because it
 * is pure formatting: the same pattern code checks a pattern at config time (out NULL) and
 * renders it per object, so what validation accepts is exactly what rendering can do. */
#include "s3_keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "s3_keys_int.h"
#include "uuid.h"

static const char *const time_months[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};
static const char *const time_days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};

int sl_s3_keys_time_random(struct sl_buf *out, sl_rand_fn rand, void *rand_arg)
{
    /* Firehose's documented outputs ("046b6c7f-0b", "5abf82daaa5") are the first 11 characters
     * of a random UUID, dash included: the same here. */
    size_t start = out->len;
    int r = sl_uuid_v4_append(out, rand, rand_arg);
    if (r < 0) {
        return r;
    }
    sl_buf_truncate(out, start + SL_S3_RANDOM_LEN);
    return 0;
}

static int time_fail(char *errbuf, size_t errlen, const char *pattern, size_t len, const char *what)
{
    (void)snprintf(errbuf, errlen, "timestamp pattern '%.*s': %s", (int)len, pattern, what);
    return SL_EINVAL;
}

/* Appends v in at least width digits. */
static int time_num(struct sl_buf *out, long v, int width)
{
    return sl_buf_printf(out, "%0*ld", width, v);
}

/* One run of count copies of letter c. out NULL: only checks. */
static int time_field(struct sl_buf *out,
                      char c,
                      int count,
                      const struct tm *tm,
                      int ms,
                      const char *pattern,
                      size_t len,
                      char *errbuf,
                      size_t errlen)
{
    long year = (long)tm->tm_year + 1900;
    int max = 2; /* most numeric fields take 1 or 2 letters */
    switch (c) {
    case 'y':
    case 'u':
        max = 19;
        break;
    case 'M':
    case 'L':
    case 'E':
        max = 5;
        break;
    case 'D':
        max = 3;
        break;
    case 'S':
        max = 9;
        break;
    case 'a':
        max = 1;
        break;
    case 'X':
    case 'Z':
        max = 3;
        break;
    case 'd':
    case 'H':
    case 'h':
    case 'k':
    case 'K':
    case 'm':
    case 's':
        break;
    default: {
        char what[160];
        (void)snprintf(what, sizeof what,
                       "pattern letter '%c' is not supported; allowed: y u M L d D H h k K m s S "
                       "a E X Z, other characters as is, literal text in single quotes",
                       c);
        return time_fail(errbuf, errlen, pattern, len, what);
    }
    }
    if (count > max) {
        char what[96];
        (void)snprintf(what, sizeof what, "too many pattern letters '%c' (at most %d)", c, max);
        return time_fail(errbuf, errlen, pattern, len, what);
    }
    if (!out) {
        return 0;
    }
    switch (c) {
    case 'y':
    case 'u':
        return count == 2 ? time_num(out, year % 100, 2) : time_num(out, year, count);
    case 'M':
    case 'L':
        if (count <= 2) {
            return time_num(out, tm->tm_mon + 1, count);
        }
        return sl_buf_printf(out, "%.*s",
                             count == 3   ? 3
                             : count == 4 ? 20
                                          : 1,
                             time_months[tm->tm_mon]);
    case 'E':
        return sl_buf_printf(out, "%.*s",
                             count <= 3   ? 3
                             : count == 4 ? 20
                                          : 1,
                             time_days[tm->tm_wday]);
    case 'd':
        return time_num(out, tm->tm_mday, count);
    case 'D':
        return time_num(out, tm->tm_yday + 1, count);
    case 'H':
        return time_num(out, tm->tm_hour, count);
    case 'k':
        return time_num(out, tm->tm_hour == 0 ? 24 : tm->tm_hour, count);
    case 'K':
        return time_num(out, tm->tm_hour % 12, count);
    case 'h':
        return time_num(out, tm->tm_hour % 12 == 0 ? 12 : tm->tm_hour % 12, count);
    case 'm':
        return time_num(out, tm->tm_min, count);
    case 's':
        return time_num(out, tm->tm_sec, count);
    case 'a':
        return sl_buf_puts(out, tm->tm_hour < 12 ? "AM" : "PM");
    case 'X':
        return sl_buf_puts(out, "Z"); /* UTC */
    case 'Z':
        return sl_buf_puts(out, "+0000");
    default: { /* 'S': the fraction of the second, count digits */
        char frac[10];
        (void)snprintf(frac, sizeof frac, "%03d000000", ms);
        return sl_buf_append(out, frac, (size_t)count);
    }
    }
}

int sl_s3_keys_format_time(struct sl_buf *out,
                           const char *pattern,
                           size_t len,
                           int64_t time_ms,
                           char *errbuf,
                           size_t errlen)
{
    struct tm tm = {0};
    int ms = 0;
    if (out) {
        int64_t s = time_ms >= 0 ? time_ms / 1000 : (time_ms - 999) / 1000;
        ms = (int)(time_ms - s * 1000);
        time_t t = (time_t)s;
        if (!gmtime_r(&t, &tm)) {
            return time_fail(errbuf, errlen, pattern, len, "the time is out of range");
        }
    }
    size_t start = out ? out->len : 0;
    int r = 0;
    for (size_t i = 0; i < len && r == 0;) {
        char c = pattern[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            int count = 1;
            while (i + (size_t)count < len && pattern[i + (size_t)count] == c) {
                count++;
            }
            r = time_field(out, c, count, &tm, ms, pattern, len, errbuf, errlen);
            i += (size_t)count;
        } else if (c == '\'') {
            if (i + 1 < len && pattern[i + 1] == '\'') { /* '' is one quote */
                r = out ? sl_buf_append(out, "'", 1) : 0;
                i += 2;
                continue;
            }
            size_t j = i + 1;
            struct sl_buf lit; /* the quoted text, '' inside it being one quote */
            sl_buf_init(&lit);
            for (; j < len; j++) {
                if (pattern[j] == '\'') {
                    if (j + 1 < len && pattern[j + 1] == '\'') {
                        j++;
                    } else {
                        break;
                    }
                }
                if (out && sl_buf_append(&lit, &pattern[j], 1) < 0) {
                    r = SL_ENOMEM;
                }
            }
            if (r == 0 && j >= len) {
                r = time_fail(errbuf, errlen, pattern, len, "a quote (') is not closed");
            }
            if (r == 0 && out && lit.len) {
                r = sl_buf_append(out, lit.data, lit.len);
            }
            sl_buf_fini(&lit);
            i = j + 1;
        } else if (c == '#' || c == '{' || c == '}') {
            r = time_fail(errbuf, errlen, pattern, len,
                          "'#', '{' and '}' are reserved; quote them ('{')");
        } else if (c == '[' || c == ']') {
            i++; /* optional section markers: every field here is always present */
        } else {
            r = out ? sl_buf_append(out, &c, 1) : 0;
            i++;
        }
    }
    if (r < 0 && out) {
        sl_buf_truncate(out, start);
    }
    return r;
}

int sl_s3_keys_object_name(struct sl_buf *out,
                           const char *stream,
                           unsigned version,
                           int64_t time_ms,
                           const char *ext,
                           sl_rand_fn rand,
                           void *rand_arg)
{
    static const char stamp[] = "yyyy-MM-dd-HH-mm-ss";
    size_t start = out->len;
    int r = sl_buf_printf(out, "%s-%u-", stream, version);
    if (r == 0) {
        r = sl_s3_keys_format_time(out, stamp, sizeof stamp - 1, time_ms, NULL, 0);
    }
    if (r == 0) {
        r = sl_buf_puts(out, "-");
    }
    if (r == 0) {
        r = sl_uuid_v4_append(out, rand, rand_arg);
    }
    if (r == 0 && ext) {
        r = sl_buf_puts(out, ext);
    }
    if (r < 0) {
        sl_buf_truncate(out, start);
        return SL_ENOMEM;
    }
    return 0;
}

const char *sl_s3_keys_extension(const char *compression)
{
    if (!compression || strcasecmp(compression, "UNCOMPRESSED") == 0) {
        return "";
    }
    if (strcasecmp(compression, "GZIP") == 0) {
        return ".gz";
    }
    if (strcasecmp(compression, "ZIP") == 0) {
        return ".zip";
    }
    if (strcasecmp(compression, "Snappy") == 0 || strcasecmp(compression, "HADOOP_SNAPPY") == 0) {
        return ".snappy";
    }
    return NULL;
}
