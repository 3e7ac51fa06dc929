/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>

#include "err.h"

enum sl_log_level { SL_LOG_ERROR, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG, SL_LOG_LEVEL_COUNT };
enum sl_log_format { SL_LOG_HUMAN, SL_LOG_JSON, SL_LOG_FORMAT_COUNT };

/* Sets the threshold, the format and the descriptor lines go to (stderr by default). Call
 * before any other thread logs. */
void sl_log_setup(enum sl_log_level level, enum sl_log_format format, int fd);

/* Parses "error|warn|info|debug" and "human|json"; return 0 or SL_EINVAL. */
SL_NODISCARD int sl_log_level_parse(const char *s, enum sl_log_level *ret_level);
SL_NODISCARD int sl_log_format_parse(const char *s, enum sl_log_format *ret_format);

bool sl_log_enabled(enum sl_log_level level);

/* Writes one line with a single write(2), so it is safe from any thread. comp is the module
 * (a file basename: "mapping", "file", "exec"), inst the instance (mapping or function name)
 * or NULL. */
void sl_log_write(enum sl_log_level level, const char *comp, const char *inst, const char *fmt, ...)
    SL_PRINTF(4, 5);

/* Writes one line whose message is the len bytes at msg, which may hold NUL and any other byte
 * (escaped like every message: \xNN in the human format, \u00NN in JSON); at most the line
 * limit is kept. For text sluice does not control, such as a function's stderr. Any thread. */
void sl_log_bytes(
    enum sl_log_level level, const char *comp, const char *inst, const char *msg, size_t len);

/* A field value that is not known (a partition's lag before its first fetch): written as
 * "k=?" in the human format and as null in JSON. */
#define SL_LOG_UNKNOWN INT64_MIN

/* Writes one line whose message is msg followed by n named integer fields: "k=v" pairs in the
 * human format, JSON members in the JSON format; SL_LOG_UNKNOWN values as unknown. */
void sl_log_fields(enum sl_log_level level,
                   const char *comp,
                   const char *inst,
                   const char *msg,
                   const char *const *keys,
                   const int64_t *values,
                   size_t n);
/* sl_log_fields with one text field after the numbers (tag_key=tag; JSON: a string): the unit
 * the numbers are in, say. tag_key NULL: none. */
void sl_log_fields_tagged(enum sl_log_level level,
                          const char *comp,
                          const char *inst,
                          const char *msg,
                          const char *const *keys,
                          const int64_t *values,
                          size_t n,
                          const char *tag_key,
                          const char *tag);

/* Rate limiting for lines that may repeat on a hot path (the same broker error every poll): per
 * key, at most one line every every_ms; the lines held back are counted and the next line
 * written says how many ("... (3 more like it since the last)"). SL_LOG_LIMIT_SLOTS keys are
 * remembered at once, the least recent one giving way. Zeroed is empty. One limiter per owner,
 * used on one thread. */
#define SL_LOG_LIMIT_SLOTS 8
struct sl_log_limit {
    struct {
        int key;
        int64_t at_ms; /* when its last line was written; 0: never */
        unsigned suppressed;
    } slots[SL_LOG_LIMIT_SLOTS];
};

/* Writes the line (as sl_log_write) unless a line of key was written less than every_ms before
 * now_ms (a monotonic clock's milliseconds), in which case it is only counted. */
void sl_log_limited(struct sl_log_limit *lim,
                    int64_t now_ms,
                    int64_t every_ms,
                    int key,
                    enum sl_log_level level,
                    const char *comp,
                    const char *inst,
                    const char *fmt,
                    ...) SL_PRINTF(8, 9);
void sl_log_vlimited(struct sl_log_limit *lim,
                     int64_t now_ms,
                     int64_t every_ms,
                     int key,
                     enum sl_log_level level,
                     const char *comp,
                     const char *inst,
                     const char *fmt,
                     va_list ap) SL_PRINTF(8, 0);

#define sl_log(level, comp, inst, ...)                    \
    do {                                                  \
        if (sl_log_enabled(level)) {                      \
            sl_log_write(level, comp, inst, __VA_ARGS__); \
        }                                                 \
    } while (0)

#define sl_log_error(comp, inst, ...) sl_log(SL_LOG_ERROR, comp, inst, __VA_ARGS__)
#define sl_log_warn(comp, inst, ...)  sl_log(SL_LOG_WARN, comp, inst, __VA_ARGS__)
#define sl_log_info(comp, inst, ...)  sl_log(SL_LOG_INFO, comp, inst, __VA_ARGS__)
#define sl_log_debug(comp, inst, ...) sl_log(SL_LOG_DEBUG, comp, inst, __VA_ARGS__)

#endif
