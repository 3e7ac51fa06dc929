/* SPDX-License-Identifier: Apache-2.0 */
/* log.c: one line per event, human or JSON, each written with a single write(2) so that lines
 * from librdkafka's or libuv's threads never interleave. It formats into a stack buffer and
 * truncates lines over 8 KiB. It never allocates and never logs about itself. It also rate-limits
 * lines that repeat on a hot path (sl_log_limited), for every module that needs it, with a
 * limiter its caller owns: no global state beyond the settings.
 *
 * About control characters: what is logged includes text sluice does not control (a
 * function's stderr, file names, names from the configuration). In the human format every C0
 * control but tab, and DEL, is written as \xNN, so a line stays one line and an escape
 * sequence cannot drive the reader's terminal; the JSON format writes them as \u00NN. */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192

static enum sl_log_level log_level = SL_LOG_INFO;
static enum sl_log_format log_format = SL_LOG_HUMAN;
static int log_fd = 2;

static const char *const level_names[SL_LOG_LEVEL_COUNT] = {"error", "warn", "info", "debug"};

void sl_log_setup(enum sl_log_level level, enum sl_log_format format, int fd)
{
    log_level = level;
    log_format = format;
    log_fd = fd;
}

int sl_log_level_parse(const char *s, enum sl_log_level *ret_level)
{
    for (int i = 0; i < SL_LOG_LEVEL_COUNT; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *ret_level = (enum sl_log_level)i;
            return 0;
        }
    }
    return SL_EINVAL;
}

int sl_log_format_parse(const char *s, enum sl_log_format *ret_format)
{
    if (strcmp(s, "human") == 0) {
        *ret_format = SL_LOG_HUMAN;
    } else if (strcmp(s, "json") == 0) {
        *ret_format = SL_LOG_JSON;
    } else {
        return SL_EINVAL;
    }
    return 0;
}

bool sl_log_enabled(enum sl_log_level level)
{
    return level <= log_level;
}

/* A bounded line under construction; appends past the end are dropped. */
struct line {
    char buf[LOG_LINE_MAX];
    size_t len;
};

static void line_putn(struct line *l, const char *s, size_t n)
{
    size_t room = sizeof(l->buf) - 1 - l->len;
    if (n > room) {
        n = room;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void line_puts(struct line *l, const char *s)
{
    line_putn(l, s, strlen(s));
}

static void line_vprintf(struct line *l, const char *fmt, va_list ap)
{
    size_t room = sizeof(l->buf) - 1 - l->len;
    int n = vsnprintf(l->buf + l->len, room + 1, fmt, ap);
    if (n > 0) {
        l->len += (size_t)n > room ? room : (size_t)n;
    }
}

static void line_printf(struct line *l, const char *fmt, ...) SL_PRINTF(2, 3);
static void line_printf(struct line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line_vprintf(l, fmt, ap);
    va_end(ap);
}

/* Appends s as the inside of a JSON string. */
static void line_json_escape(struct line *l, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            line_putn(l, esc, 2);
        } else if (c == '\n') {
            line_puts(l, "\\n");
        } else if (c == '\t') {
            line_puts(l, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            line_printf(l, "\\u%04x", c);
        } else {
            line_putn(l, (const char *)&c, 1);
        }
    }
}

/* Appends s for the human format: C0 controls but tab, and DEL, as \xNN. */
static void line_human_escape(struct line *l, const char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            line_putn(l, s + from, i - from);
            line_printf(l, "\\x%02x", c);
            from = i + 1;
        }
    }
    line_putn(l, s + from, n - from);
}

static void line_timestamp(struct line *l)
{
    struct timespec ts;
    struct tm tm;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    (void)gmtime_r(&ts.tv_sec, &tm);
    line_printf(l, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static void line_begin(struct line *l, enum sl_log_level level, const char *comp, const char *inst)
{
    l->len = 0;
    if (log_format == SL_LOG_JSON) {
        line_puts(l, "{\"ts\":\"");
        line_timestamp(l);
        line_printf(l, "\",\"level\":\"%s\",\"comp\":\"", level_names[level]);
        line_json_escape(l, comp, strlen(comp));
        line_puts(l, "\"");
        if (inst) {
            line_puts(l, ",\"inst\":\"");
            line_json_escape(l, inst, strlen(inst));
            line_puts(l, "\"");
        }
        line_puts(l, ",\"msg\":\"");
    } else {
        line_timestamp(l);
        line_printf(l, " %-5s [%s%s", level_names[level], comp, inst ? ":" : "");
        if (inst) {
            line_human_escape(l, inst, strlen(inst));
        }
        line_puts(l, "] ");
    }
}

static void line_end(struct line *l)
{
    if (log_format == SL_LOG_JSON && l->len >= sizeof(l->buf) - 3) {
        l->len = sizeof(l->buf) - 3; /* keep room to close the object */
    }
    if (log_format == SL_LOG_JSON) {
        line_puts(l, "}");
    }
    l->buf[l->len++] = '\n';
    const char *p = l->buf;
    size_t left = l->len;
    while (left > 0) {
        ssize_t w = write(log_fd, p, left);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return;
        }
        p += w;
        left -= (size_t)w;
    }
}

void sl_log_write(enum sl_log_level level, const char *comp, const char *inst, const char *fmt, ...)
{
    struct line l;
    line_begin(&l, level, comp, inst);
    va_list ap;
    va_start(ap, fmt);
    char msg[LOG_LINE_MAX];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t len = n > 0 ? ((size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1) : 0;
    if (log_format == SL_LOG_JSON) {
        line_json_escape(&l, msg, len);
        line_puts(&l, "\"");
    } else {
        line_human_escape(&l, msg, len);
    }
    line_end(&l);
}

void sl_log_bytes(
    enum sl_log_level level, const char *comp, const char *inst, const char *msg, size_t len)
{
    if (!sl_log_enabled(level)) {
        return;
    }
    struct line l;
    line_begin(&l, level, comp, inst);
    if (len > LOG_LINE_MAX - 1) {
        len = LOG_LINE_MAX - 1;
    }
    if (log_format == SL_LOG_JSON) {
        line_json_escape(&l, msg, len);
        line_puts(&l, "\"");
    } else {
        line_human_escape(&l, msg, len);
    }
    line_end(&l);
}

void sl_log_fields(enum sl_log_level level,
                   const char *comp,
                   const char *inst,
                   const char *msg,
                   const char *const *keys,
                   const int64_t *values,
                   size_t n)
{
    sl_log_fields_tagged(level, comp, inst, msg, keys, values, n, NULL, NULL);
}

void sl_log_fields_tagged(enum sl_log_level level,
                          const char *comp,
                          const char *inst,
                          const char *msg,
                          const char *const *keys,
                          const int64_t *values,
                          size_t n,
                          const char *tag_key,
                          const char *tag)
{
    if (!sl_log_enabled(level)) {
        return;
    }
    struct line l;
    line_begin(&l, level, comp, inst);
    if (log_format == SL_LOG_JSON) {
        line_json_escape(&l, msg, strlen(msg));
        line_puts(&l, "\"");
        for (size_t i = 0; i < n; i++) {
            line_puts(&l, ",\"");
            line_json_escape(&l, keys[i], strlen(keys[i]));
            if (values[i] == SL_LOG_UNKNOWN) {
                line_puts(&l, "\":null");
            } else {
                line_printf(&l, "\":%" PRId64, values[i]);
            }
        }
        if (tag_key) {
            line_puts(&l, ",\"");
            line_json_escape(&l, tag_key, strlen(tag_key));
            line_puts(&l, "\":\"");
            line_json_escape(&l, tag, strlen(tag));
            line_puts(&l, "\"");
        }
    } else {
        line_human_escape(&l, msg, strlen(msg));
        for (size_t i = 0; i < n; i++) {
            line_puts(&l, " ");
            line_human_escape(&l, keys[i], strlen(keys[i]));
            if (values[i] == SL_LOG_UNKNOWN) {
                line_puts(&l, "=?");
            } else {
                line_printf(&l, "=%" PRId64, values[i]);
            }
        }
        if (tag_key) {
            line_puts(&l, " ");
            line_human_escape(&l, tag_key, strlen(tag_key));
            line_puts(&l, "=");
            line_human_escape(&l, tag, strlen(tag));
        }
    }
    line_end(&l);
}

void sl_log_vlimited(struct sl_log_limit *lim,
                     int64_t now_ms,
                     int64_t every_ms,
                     int key,
                     enum sl_log_level level,
                     const char *comp,
                     const char *inst,
                     const char *fmt,
                     va_list ap)
{
    size_t slot = SIZE_MAX;
    for (size_t i = 0; i < SL_LOG_LIMIT_SLOTS; i++) {
        if (lim->slots[i].key == key && lim->slots[i].at_ms != 0) {
            slot = i;
            break;
        }
    }
    if (slot == SIZE_MAX) {
        slot = 0;
        for (size_t i = 1; i < SL_LOG_LIMIT_SLOTS; i++) {
            if (lim->slots[i].at_ms < lim->slots[slot].at_ms) {
                slot = i;
            }
        }
        lim->slots[slot].key = key;
        lim->slots[slot].at_ms = 0;
        lim->slots[slot].suppressed = 0;
    }
    if (lim->slots[slot].at_ms != 0 && now_ms - lim->slots[slot].at_ms < every_ms) {
        lim->slots[slot].suppressed++;
        return;
    }
    if (!sl_log_enabled(level)) {
        return;
    }
    char msg[768];
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    if (lim->slots[slot].suppressed) {
        sl_log_write(level, comp, inst, "%s (%u more like it since the last)", msg,
                     lim->slots[slot].suppressed);
    } else {
        sl_log_write(level, comp, inst, "%s", msg);
    }
    lim->slots[slot].at_ms = now_ms ? now_ms : 1;
    lim->slots[slot].suppressed = 0;
}

void sl_log_limited(struct sl_log_limit *lim,
                    int64_t now_ms,
                    int64_t every_ms,
                    int key,
                    enum sl_log_level level,
                    const char *comp,
                    const char *inst,
                    const char *fmt,
                    ...)
{
    va_list ap;
    va_start(ap, fmt);
    sl_log_vlimited(lim, now_ms, every_ms, key, level, comp, inst, fmt, ap);
    va_end(ap);
}
