/* SPDX-License-Identifier: Apache-2.0 */
/* test_log.c: log.c's line formats. Text sluice does not control (a function's stderr, file
 * names, configured names) reaches the log: control characters must neither split a line nor
 * reach the reader's terminal as escape sequences, in the human format (\xNN) as in the JSON
 * one (\u00NN). Lines that repeat are rate-limited per key. Lines go to a temporary file through
 * sl_log_setup's descriptor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* Reads everything logged to f since the last call, then empties f. */
static void read_log(FILE *f, char *buf, size_t len)
{
    int fd = fileno(f);
    off_t end = lseek(fd, 0, SEEK_END);
    assert_true(end >= 0 && (size_t)end < len);
    assert_int_equal(pread(fd, buf, (size_t)end, 0), end);
    buf[end] = '\0';
    assert_int_equal(ftruncate(fd, 0), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
}

static void test_log_human_escapes_controls(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    char buf[8192];
    sl_log_setup(SL_LOG_DEBUG, SL_LOG_HUMAN, fileno(f));
    sl_log_info("exec", "fn\x1b]0;x\x07", "stderr: \x1b[31mred\x1b[0m\tcol\rcr\nnl\x7f end");
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "[exec:fn\\x1b]0;x\\x07] "));
    assert_non_null(strstr(buf, "stderr: \\x1b[31mred\\x1b[0m\tcol\\x0dcr\\x0anl\\x7f end\n"));
    assert_null(strchr(buf, '\x1b'));
    assert_null(strchr(buf, '\r'));
    assert_ptr_equal(strchr(buf, '\n'), buf + strlen(buf) - 1); /* one line */

    const char *keys[] = {"/logs/\x1b[2Ja.log"};
    int64_t values[] = {7};
    sl_log_fields(SL_LOG_INFO, "mapping", "m", "lag\x1b", keys, values, 1);
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "lag\\x1b /logs/\\x1b[2Ja.log=7\n"));
    assert_null(strchr(buf, '\x1b'));
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    fclose(f);
}

static void test_log_json_escapes_controls(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    char buf[8192];
    sl_log_setup(SL_LOG_DEBUG, SL_LOG_JSON, fileno(f));
    sl_log_info("exec", "fn\x1b", "a\x1b[31m\"b\\\x7f\n");
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"inst\":\"fn\\u001b\""));
    assert_non_null(strstr(buf, "\"msg\":\"a\\u001b[31m\\\"b\\\\\\u007f\\n\"}\n"));
    assert_null(strchr(buf, '\x1b'));
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    fclose(f);
}

/* sl_log_bytes takes the message with its length: a NUL (a function's stderr may hold one)
 * is escaped like any control byte instead of ending the message. */
static void test_log_bytes_keeps_nul(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    char buf[8192];
    static const char msg[] = "head\0tail \x1b[31mred";
    sl_log_setup(SL_LOG_DEBUG, SL_LOG_HUMAN, fileno(f));
    sl_log_bytes(SL_LOG_INFO, "exec", "fn", msg, sizeof(msg) - 1);
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "[exec:fn] head\\x00tail \\x1b[31mred\n"));
    sl_log_setup(SL_LOG_DEBUG, SL_LOG_JSON, fileno(f));
    sl_log_bytes(SL_LOG_INFO, "exec", "fn", msg, sizeof(msg) - 1);
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"msg\":\"head\\u0000tail \\u001b[31mred\"}\n"));
    sl_log_setup(SL_LOG_WARN, SL_LOG_HUMAN, fileno(f));
    sl_log_bytes(SL_LOG_INFO, "exec", "fn", msg, sizeof(msg) - 1); /* below the threshold */
    read_log(f, buf, sizeof(buf));
    assert_string_equal(buf, "");
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    fclose(f);
}

/* An unknown field value (a partition's lag before its first fetch) is "?" in the human
 * format and null in JSON, never a number. */
static void test_log_fields_unknown(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    char buf[8192];
    const char *keys[] = {"lag", "max_lag", "partitions"};
    int64_t values[] = {SL_LOG_UNKNOWN, SL_LOG_UNKNOWN, 1};
    sl_log_setup(SL_LOG_DEBUG, SL_LOG_HUMAN, fileno(f));
    sl_log_fields(SL_LOG_INFO, "mapping", "m", "progress", keys, values, 3);
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "progress lag=? max_lag=? partitions=1\n"));
    sl_log_setup(SL_LOG_DEBUG, SL_LOG_JSON, fileno(f));
    sl_log_fields(SL_LOG_INFO, "mapping", "m", "progress", keys, values, 3);
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"lag\":null,\"max_lag\":null,\"partitions\":1}\n"));
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    fclose(f);
}

/* The rate limiter: per key, one line per interval; the lines held back are counted into the
 * next; more keys than slots evict the least recent; a level that is off writes nothing and
 * does not start an interval. The clock is the caller's (no sleeps). */
static void test_log_limited(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    char buf[8192];
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, fileno(f));
    struct sl_log_limit lim = {0};
    sl_log_limited(&lim, 1000, 10000, 7, SL_LOG_WARN, "kafka", "m", "broker down (%d)", 1);
    sl_log_limited(&lim, 2000, 10000, 7, SL_LOG_WARN, "kafka", "m", "broker down (%d)", 2);
    sl_log_limited(&lim, 10999, 10000, 7, SL_LOG_WARN, "kafka", "m", "broker down (%d)", 3);
    sl_log_limited(&lim, 3000, 10000, 8, SL_LOG_WARN, "kafka", "m", "other key");
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "broker down (1)\n"));
    assert_null(strstr(buf, "broker down (2)"));
    assert_null(strstr(buf, "broker down (3)"));
    assert_non_null(strstr(buf, "other key\n"));
    sl_log_limited(&lim, 11000, 10000, 7, SL_LOG_WARN, "kafka", "m", "broker down (%d)", 4);
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "broker down (4) (2 more like it since the last)\n"));
    /* more keys than slots: the least recent gives way, and its next line is written */
    for (int k = 100; k < 100 + SL_LOG_LIMIT_SLOTS; k++) {
        sl_log_limited(&lim, 12000 + k, 10000, k, SL_LOG_WARN, "kafka", "m", "key %d", k);
    }
    read_log(f, buf, sizeof(buf));
    sl_log_limited(&lim, 13000, 10000, 7, SL_LOG_WARN, "kafka", "m", "broker down (%d)", 5);
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "broker down (5)\n"));
    /* a level that is off: nothing written, and the next enabled line is not held back */
    struct sl_log_limit quiet = {0};
    sl_log_limited(&quiet, 1000, 10000, 1, SL_LOG_DEBUG, "kafka", "m", "debug line");
    sl_log_limited(&quiet, 1001, 10000, 1, SL_LOG_DEBUG, "kafka", "m", "debug line");
    read_log(f, buf, sizeof(buf));
    assert_string_equal(buf, "");
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    fclose(f);
}

/* The tag (the unit lag is counted in) follows the numbers: a string in JSON. */
static void test_log_fields_tagged_unit(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    char buf[8192];
    const char *keys[] = {"lag", "max_lag"};
    int64_t values[] = {120, 100};
    sl_log_setup(SL_LOG_DEBUG, SL_LOG_HUMAN, fileno(f));
    sl_log_fields_tagged(SL_LOG_INFO, "mapping", "m", "progress", keys, values, 2, "lag_unit",
                         "bytes");
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "progress lag=120 max_lag=100 lag_unit=bytes\n"));
    sl_log_setup(SL_LOG_DEBUG, SL_LOG_JSON, fileno(f));
    sl_log_fields_tagged(SL_LOG_INFO, "mapping", "m", "progress", keys, values, 2, "lag_unit",
                         "ms");
    read_log(f, buf, sizeof(buf));
    assert_non_null(strstr(buf, "\"lag\":120,\"max_lag\":100,\"lag_unit\":\"ms\"}\n"));
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_human_escapes_controls),
        cmocka_unit_test(test_log_json_escapes_controls),
        cmocka_unit_test(test_log_bytes_keeps_nul),
        cmocka_unit_test(test_log_fields_unknown),
        cmocka_unit_test(test_log_limited),
        cmocka_unit_test(test_log_fields_tagged_unit),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
