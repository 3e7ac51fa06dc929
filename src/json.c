/* SPDX-License-Identifier: Apache-2.0 */
/* json.c: JSON helpers shared by sources and sinks, so that a rule such as "a payload is
 * parsed as JSON when it is JSON" has one definition: what a file line, a Kafka value or a
 * Kinesis record's data look like in a filter document must agree (esm.md §5). It owns nothing
 * and never logs (a utility module); callers decide what a failure means. Any thread. */
#include <string.h>

#include "alloc.h"
#include "json.h"

cJSON *sl_json_parse_exact(const char *data, size_t len)
{
    if (len == 0) {
        return NULL;
    }
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    if (!v) {
        return NULL;
    }
    for (const char *p = end; p && p < data + len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(v);
            return NULL;
        }
    }
    return v;
}

cJSON *sl_json_payload(const char *data, size_t len)
{
    cJSON *v = sl_json_parse_exact(data, len);
    if (v) {
        return v;
    }
    char *tmp = sl_malloc(len + 1);
    if (!tmp) {
        return NULL;
    }
    if (len) {
        memcpy(tmp, data, len);
    }
    tmp[len] = '\0';
    v = cJSON_CreateString(tmp);
    sl_free(tmp);
    return v;
}

bool sl_json_is_utf8(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        size_t k;
        unsigned cp;
        if (c == 0) {
            return false;
        } else if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + k >= n) {
            return false;
        }
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += k + 1;
    }
    return true;
}
