/* SPDX-License-Identifier: Apache-2.0 */
/* file_fields.c: a line's own partition key and arrival time (partition_key_field and
 * arrival_time_field): the values of a JSON object line's fields read as a key (a string, or a
 * number or boolean as its JSON text) and as a time (epoch seconds, or ISO 8601 with an
 * offset). Kept apart from the read path (file_read.c), which parses the line once and asks
 * this module what its fields mean. It owns nothing, keeps no state and never logs: a value it
 * cannot use is not an error, the line keeps the defaults. Any thread. */
#include <stdint.h>
#include <string.h>

#include "file_int.h"

#define FILE_TIME_MIN_S (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define FILE_TIME_MAX_S 253402300799LL   /* 9999-12-31T23:59:59Z */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t file_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Reads n decimal digits at *p (advancing it); false if any is not a digit. */
static bool file_digits(const char **p, int n, unsigned *ret)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *ret = v;
    return true;
}

/* Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" into Unix epoch milliseconds
 * (fraction truncated to milliseconds; 't', 'z' and a decimal comma as ISO 8601 allows). An offset
 * other than zero is applied, so any correct ISO 8601 time with an offset gives its UTC instant.
 * Returns false if s is not one. */
static bool file_parse_iso8601(const char *s, int64_t *ret_ms)
{
    const char *p = s;
    unsigned y, mo, d, h, mi, sec, ms = 0;
    if (!file_digits(&p, 4, &y) || *p++ != '-' || !file_digits(&p, 2, &mo) || *p++ != '-' ||
        !file_digits(&p, 2, &d)) {
        return false;
    }
    if (*p != 'T' && *p != 't') {
        return false;
    }
    p++;
    if (!file_digits(&p, 2, &h) || *p++ != ':' || !file_digits(&p, 2, &mi) || *p++ != ':' ||
        !file_digits(&p, 2, &sec)) {
        return false;
    }
    if (*p == '.' || *p == ',') {
        p++;
        if (*p < '0' || *p > '9') {
            return false;
        }
        unsigned scale = 100;
        for (; *p >= '0' && *p <= '9'; p++) {
            ms += (unsigned)(*p - '0') * scale;
            scale /= 10;
        }
    }
    int64_t off_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        unsigned oh, om;
        if (!file_digits(&p, 2, &oh) || *p++ != ':' || !file_digits(&p, 2, &om) || oh > 23 ||
            om > 59) {
            return false;
        }
        off_s = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return false;
    }
    static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 59) {
        return false;
    }
    int64_t t = file_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off_s;
    if (t < FILE_TIME_MIN_S || t > FILE_TIME_MAX_S) {
        return false;
    }
    *ret_ms = t * 1000 + ms;
    return true;
}

/* The arrival time a JSON value gives: epoch seconds (a number, maybe fractional) or an ISO
 * 8601 string. Returns false if it is neither (or out of years 0000..9999). */
bool file_arrival_of(const cJSON *v, int64_t *ret_ms)
{
    if (cJSON_IsNumber(v)) {
        double s = v->valuedouble;
        if (!(s >= (double)FILE_TIME_MIN_S && s < (double)FILE_TIME_MAX_S + 1.0)) {
            return false; /* also NaN */
        }
        double ms = s * 1000.0;
        int64_t t = (int64_t)(ms >= 0 ? ms + 0.5 : ms - 0.5);
        *ret_ms = t > FILE_TIME_MAX_S * 1000 + 999 ? FILE_TIME_MAX_S * 1000 + 999 : t;
        return true;
    }
    if (cJSON_IsString(v)) {
        return file_parse_iso8601(v->valuestring, ret_ms);
    }
    return false;
}

/* The partition key a JSON value gives: a string as it is, a number or boolean as its JSON
 * text (numbers as cJSON prints them: integers exactly up to 2^53), written into num when it
 * is needed. An empty string, null, an object or an array gives none (the path is used). */
size_t file_key_of(const cJSON *v, char *num, size_t num_len, const char **ret_key)
{
    if (cJSON_IsString(v)) {
        *ret_key = v->valuestring;
        return strlen(v->valuestring);
    }
    if ((cJSON_IsNumber(v) || cJSON_IsBool(v)) &&
        cJSON_PrintPreallocated((cJSON *)(uintptr_t)v, num, (int)num_len, 0)) {
        *ret_key = num;
        return strlen(num);
    }
    return 0;
}
