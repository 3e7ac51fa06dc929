/* SPDX-License-Identifier: Apache-2.0 */
/* filter_text.c: the text rules of FilterCriteria: decoding UTF-8 (bytes that are not UTF-8 stand
 * for themselves), simple case folding, and the case-insensitive comparisons that
 * equals-ignore-case, prefix and suffix use. It is the lowest layer of the filter: it knows
 * nothing of patterns or documents, so both the compiler (which folds pattern text once) and the
 * matcher (which folds document text as it compares) call down into it. */
#include "filter_int.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* ---- case folding and UTF-8 ---------------------------------------------------------------- */

/* Decodes one code point at s[*i] (len bytes in all) and advances *i. A byte that does not
 * start a well-formed sequence decodes as 0x110000 + byte, outside Unicode, so it only ever
 * equals the same byte. */
uint32_t filter_text_utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    unsigned char b = s[*i];
    uint32_t cp;
    size_t n;
    uint32_t min;
    if (b < 0x80) {
        (*i)++;
        return b;
    } else if ((b & 0xE0) == 0xC0) {
        cp = b & 0x1Fu;
        n = 1;
        min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
        cp = b & 0x0Fu;
        n = 2;
        min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
        cp = b & 0x07u;
        n = 3;
        min = 0x10000;
    } else {
        goto invalid;
    }
    if (len - *i <= n) {
        goto invalid;
    }
    for (size_t k = 1; k <= n; k++) {
        unsigned char c = s[*i + k];
        if ((c & 0xC0) != 0x80) {
            goto invalid;
        }
        cp = (cp << 6) | (c & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        goto invalid;
    }
    *i += n + 1;
    return cp;
invalid:
    (*i)++;
    return 0x110000u + b;
}

/* Simple case folding (one code point to one) for the scripts listed at the top. */
uint32_t filter_text_fold(uint32_t c)
{
    if (c < 0x80) {
        return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    }
    if (c == 0xB5) {
        return 0x3BC; /* micro sign -> mu */
    }
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) {
        return c + 32;
    }
    if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) {
        return c | 1u;
    }
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) {
        return (c & 1u) ? c + 1 : c;
    }
    if (c == 0x178) {
        return 0xFF;
    }
    if (c == 0x17F) {
        return 's'; /* long s */
    }
    if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB)) {
        return c + 32;
    }
    if (c == 0x3C2) {
        return 0x3C3; /* final sigma */
    }
    if (c >= 0x400 && c <= 0x40F) {
        return c + 80;
    }
    if (c >= 0x410 && c <= 0x42F) {
        return c + 32;
    }
    if ((c >= 0x1E00 && c <= 0x1E95) || (c >= 0x1EA0 && c <= 0x1EFF)) {
        return c | 1u;
    }
    if (c == 0x1E9E) {
        return 0xDF; /* capital sharp s */
    }
    if (c == 0x2126) {
        return 0x3C9; /* ohm sign */
    }
    if (c == 0x212A) {
        return 'k'; /* kelvin sign */
    }
    if (c == 0x212B) {
        return 0xE5; /* angstrom sign */
    }
    if (c >= 0xFF21 && c <= 0xFF3A) {
        return c + 32;
    }
    return c;
}

size_t filter_text_utf8_count(const unsigned char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; n++) {
        (void)filter_text_utf8_next(s, len, &i);
    }
    return n;
}

/* Compares the folded code points of s, from its skip-th code point on, with cp[0..ncp).
 * whole: s must end there too. */
bool filter_text_ic_compare(
    const char *str, size_t skip, const uint32_t *cp, size_t ncp, bool whole)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = strlen(str);
    size_t i = 0;
    for (size_t k = 0; k < skip && i < len; k++) {
        (void)filter_text_utf8_next(s, len, &i);
    }
    for (size_t k = 0; k < ncp; k++) {
        if (i >= len || filter_text_fold(filter_text_utf8_next(s, len, &i)) != cp[k]) {
            return false;
        }
    }
    return !whole || i == len;
}

bool filter_text_ic_suffix(const char *str, const uint32_t *cp, size_t ncp)
{
    size_t n = filter_text_utf8_count((const unsigned char *)str, strlen(str));
    return n >= ncp && filter_text_ic_compare(str, n - ncp, cp, ncp, true);
}
