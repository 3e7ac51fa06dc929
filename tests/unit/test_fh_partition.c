/* SPDX-License-Identifier: Apache-2.0 */
/* test_fh_partition.c: dynamic partitioning's configuration and keys (fh_partition.h) and the
 * ProcessingConfiguration that carries the query and the Lambda processor (fh_processing.h):
 * the query forms supported and the jq refused at config time with the JSON path and what is
 * supported; keys extracted from records, rendered as Firehose does (strings without quotes,
 * numbers as written); records that fail (not JSON, a key missing or null or not a value);
 * every parameter's range and error; the layout check against the S3 Prefix (s3_keys.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fh_partition.h"
#include "fh_processing.h"
#include "s3_keys.h"

#define FILE_ "cfg.json"
#define DEST  "$.delivery_streams[0].ExtendedS3DestinationConfiguration"
#define PC    DEST ".ProcessingConfiguration"

/* Fails unless one of errs' lines contains every one of the NULL-ended strings. */
static void assert_error(const struct sl_errlist *errs, ...)
{
    for (size_t i = 0; i < errs->n; i++) {
        va_list ap;
        va_start(ap, errs);
        bool all = true;
        for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *)) {
            all = all && strstr(errs->items[i], s) != NULL;
        }
        va_end(ap);
        if (all) {
            return;
        }
    }
    for (size_t i = 0; i < errs->n; i++) {
        print_error("error line: %s\n", errs->items[i]);
    }
    fail_msg("no error line with what was expected (%zu lines)", errs->n);
}

static struct sl_fh_query *compile(const char *text)
{
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_fh_query *q = NULL;
    int r = sl_fh_query_new(text, FILE_, "$.q", &q, &errs);
    if (r != 0) {
        fail_msg("%s: %s", text, errs.n ? errs.items[0] : "?");
    }
    sl_errlist_fini(&errs);
    return q;
}

/* Extracts from rec; returns the result and leaves the values in m. */
static int extract(const struct sl_fh_query *q, const char *rec, struct sl_strmap *m)
{
    char errbuf[256] = "";
    int r = sl_fh_query_extract(q, rec, strlen(rec), m, errbuf, sizeof(errbuf));
    if (r != 0) {
        assert_true(errbuf[0] != '\0');
    }
    return r;
}

static void test_fh_partition_query_paths(void **state)
{
    (void)state;
    struct sl_fh_query *q = compile(" { customer_id: .customer_id, year: .event.year, \"odd key\": "
                                    ".\"odd-key\", deep: .a[\"b-c\"].d, device }");
    assert_int_equal(sl_fh_query_key_count(q), 5);
    assert_string_equal(sl_fh_query_key(q, 0), "customer_id");
    assert_string_equal(sl_fh_query_key(q, 2), "odd key");
    assert_string_equal(sl_fh_query_key(q, 4), "device");
    struct sl_strmap m = {0};
    assert_int_equal(
        extract(q,
                "{\"customer_id\":\"c\\u00e9\\\"1\",\"event\":{\"year\":2024,\"x\":[1,{\"y\":null}]"
                "},\"odd-key\":1.50,\"a\":{\"b-c\":{\"d\":true}},\"device\":-0.5e+3}",
                &m),
        0);
    assert_string_equal(sl_strmap_get(&m, "customer_id"), "c\xc3\xa9\"1"); /* no quotes */
    assert_string_equal(sl_strmap_get(&m, "year"), "2024");
    assert_string_equal(sl_strmap_get(&m, "odd key"), "1.50"); /* as written */
    assert_string_equal(sl_strmap_get(&m, "deep"), "true");
    assert_string_equal(sl_strmap_get(&m, "device"), "-0.5e+3");
    sl_strmap_clear(&m, false);
    /* a key written twice: the last counts, as jq; escapes in keys compare decoded */
    assert_int_equal(
        extract(q,
                "{\"customer_id\":\"a\",\"customer_\\u0069d\":\"b\",\"event\":{\"year\":\"1\"},"
                "\"odd-key\":\"k\",\"a\":{\"b-c\":{\"d\":0}},\"device\":\"\"}",
                &m),
        0);
    assert_string_equal(sl_strmap_get(&m, "customer_id"), "b");
    assert_string_equal(sl_strmap_get(&m, "device"), "");
    sl_strmap_clear(&m, false);
    sl_fh_query_free(q);
}

static void test_fh_partition_record_fails(void **state)
{
    (void)state;
    struct sl_fh_query *q = compile("{id: .id, y: .e.year}");
    struct sl_strmap m = {0};
    assert_int_equal(extract(q, "not json", &m), SL_EINVAL);
    assert_int_equal(extract(q, "{\"id\":1,\"e\":{\"year\":2}} trailing", &m), SL_EINVAL);
    assert_int_equal(extract(q, "{\"id\":1,\"e\":{\"year\":2}", &m), SL_EINVAL);
    assert_int_equal(extract(q, "{\"id\":1}", &m), SL_ENOTFOUND); /* missing */
    assert_int_equal(extract(q, "{\"id\":null,\"e\":{\"year\":2}}", &m), SL_ENOTFOUND);
    assert_int_equal(extract(q, "{\"id\":1,\"e\":{\"year\":{}}}", &m), SL_ENOTFOUND);
    assert_int_equal(extract(q, "{\"id\":1,\"e\":[2]}", &m), SL_ENOTFOUND); /* not an object */
    assert_int_equal(extract(q, "[1]", &m), SL_ENOTFOUND);
    /* every cut of a valid record is refused as not JSON, never read past its end */
    static const char full[] = "{\"id\":\"a\\u00e9\\\"\",\"x\":[1.5e-3,true,null,{\"k\":\"v\"}],"
                               "\"e\":{\"year\":-12}}";
    for (size_t len = 0; len < sizeof(full) - 1; len++) {
        char errbuf[128];
        char *cut = malloc(len ? len : 1);
        memcpy(cut, full, len);
        assert_int_equal(sl_fh_query_extract(q, cut, len, &m, errbuf, sizeof(errbuf)), SL_EINVAL);
        free(cut);
    }
    assert_int_equal(extract(q, full, &m), 0);
    assert_string_equal(sl_strmap_get(&m, "y"), "-12");
    assert_int_equal(extract(q, " {\"id\":\"x\",\"e\":{\"year\":2}}\n", &m), 0);
    assert_string_equal(sl_strmap_get(&m, "id"), "x");
    sl_strmap_clear(&m, false);
    sl_fh_query_free(q);
}

static void query_refused(const char *text, const char *why)
{
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_fh_query *q = NULL;
    assert_int_equal(
        sl_fh_query_new(text, FILE_, PC ".Processors[0].Parameters[0].ParameterValue", &q, &errs),
        SL_ECONFIG);
    assert_null(q);
    assert_error(&errs, FILE_ ": " PC ".Processors[0].Parameters[0].ParameterValue", why,
                 "supported: an object of paths", NULL);
    sl_errlist_fini(&errs);
}

static void test_fh_partition_query_refused(void **state)
{
    (void)state;
    query_refused("{year: .ts|strftime(\"%Y\")}", "pipes and functions are not supported");
    query_refused(".customer_id", "expected '{'");
    query_refused("{a: .b, a: .c}", "a key defined twice");
    query_refused("{}", "no keys");
    query_refused("{a: .b[0]}", "not a path");
    query_refused("{a: b}", "not a path");
    query_refused("{a: .b} | .c", "text after the closing");
    query_refused("{a: .b", "expected");
}

static void test_fh_partition_conf(void **state)
{
    (void)state;
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_fh_partition_conf c;
    assert_int_equal(sl_fh_partition_conf_parse(NULL, FILE_, DEST ".D", &c, &errs), 0);
    assert_false(c.enabled);
    cJSON *j = cJSON_Parse("{\"Enabled\":true,\"RetryOptions\":{\"DurationInSeconds\":60}}");
    assert_int_equal(sl_fh_partition_conf_parse(j, FILE_, DEST ".D", &c, &errs), 0);
    assert_true(c.enabled);
    assert_int_equal(c.retry_duration_s, 60);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"Enabled\":true}");
    assert_int_equal(sl_fh_partition_conf_parse(j, FILE_, DEST ".D", &c, &errs), 0);
    assert_int_equal(c.retry_duration_s, SL_FH_PARTITION_RETRY_DEFAULT_S);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"Enabled\":1,\"RetryOptions\":{\"DurationInSeconds\":7201},\"X\":1}");
    assert_int_equal(sl_fh_partition_conf_parse(j, FILE_, DEST ".D", &c, &errs), SL_ECONFIG);
    assert_error(&errs, DEST ".D.Enabled: not a boolean", NULL);
    assert_error(&errs, DEST ".D.RetryOptions.DurationInSeconds", "0 to 7200", NULL);
    assert_error(&errs, DEST ".D.X: unknown key", NULL);
    cJSON_Delete(j);
    sl_errlist_fini(&errs);
}

/* ---- ProcessingConfiguration ---- */

static int parse(const char *json, struct sl_fh_processing *p, struct sl_errlist *errs)
{
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    int r = sl_fh_processing_parse(j, FILE_, PC, p, errs);
    cJSON_Delete(j);
    return r;
}

#define PARAM(n, v) "{\"ParameterName\":\"" n "\",\"ParameterValue\":\"" v "\"}"

static void test_fh_partition_processing_full(void **state)
{
    (void)state;
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_fh_processing p;
    /* clang-format off */
    static const char full[] =
        "{\"Enabled\":true,\"Processors\":["
        "{\"Type\":\"MetadataExtraction\",\"Parameters\":["
        PARAM("MetadataExtractionQuery", "{customer_id:.customer_id}") ","
        PARAM("JsonParsingEngine", "JQ-1.6") "]},"
        "{\"Type\":\"Lambda\",\"Parameters\":["
        PARAM("LambdaArn", "shape") ","
        PARAM("NumberOfRetries", "5") ","
        PARAM("BufferSizeInMBs", "0.2") ","
        PARAM("BufferIntervalInSeconds", "0") "]},"
        "{\"Type\":\"AppendDelimiterToRecord\"}]}";
    /* clang-format on */
    int r = parse(full, &p, &errs);
    if (r != 0) {
        fail_msg("%s", errs.items[0]);
    }
    assert_true(p.enabled);
    assert_true(p.lambda.enabled);
    assert_string_equal(p.lambda.lambda_arn, "shape");
    assert_string_equal(p.lambda.lambda_arn_path, PC ".Processors[1].Parameters[0].ParameterValue");
    assert_int_equal(p.lambda.number_of_retries, 5);
    assert_int_equal(p.lambda.buffer_bytes, SL_FH_BUFFER_BYTES_MIN);
    assert_int_equal(p.lambda.buffer_interval_ms, 0);
    assert_non_null(p.query);
    assert_string_equal(sl_fh_query_key(p.query, 0), "customer_id");
    assert_true(p.append_delimiter);
    sl_fh_processing_fini(&p);

    /* defaults */
    assert_int_equal(
        parse("{\"Enabled\":true,\"Processors\":[{\"Type\":\"Lambda\",\"Parameters\":[" PARAM(
                  "LambdaArn", "arn:aws:lambda:us-east-1:1:function:f") "]}]}",
              &p, &errs),
        0);
    assert_int_equal(p.lambda.number_of_retries, 3);
    assert_int_equal(p.lambda.buffer_bytes, 1024 * 1024);
    assert_int_equal(p.lambda.buffer_interval_ms, 60000);
    assert_null(p.query);
    sl_fh_processing_fini(&p);

    /* Enabled false: checked, nothing runs */
    assert_int_equal(
        parse("{\"Enabled\":false,\"Processors\":[{\"Type\":\"Lambda\",\"Parameters\":[" PARAM(
                  "LambdaArn", "f") "]}]}",
              &p, &errs),
        0);
    assert_false(p.lambda.enabled);
    sl_fh_processing_fini(&p);
    assert_int_equal(errs.n, 0);
    sl_errlist_fini(&errs);
}

static void processing_refused(const char *json, const char *where, const char *why)
{
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_fh_processing p;
    assert_int_equal(parse(json, &p, &errs), SL_ECONFIG);
    assert_error(&errs, where, why, NULL);
    sl_errlist_fini(&errs);
}

#define LAMBDA_WITH(x)                                                               \
    "{\"Enabled\":true,\"Processors\":[{\"Type\":\"Lambda\",\"Parameters\":[" PARAM( \
        "LambdaArn", "f") "," x "]}]}"

static void test_fh_partition_processing_refused(void **state)
{
    (void)state;
    processing_refused(LAMBDA_WITH(PARAM("NumberOfRetries", "301")),
                       PC ".Processors[0].Parameters[1].ParameterValue: \"301\"", "0 to 300");
    processing_refused(LAMBDA_WITH(PARAM("NumberOfRetries", "three")),
                       PC ".Processors[0].Parameters[1].ParameterValue", "an integer");
    processing_refused(LAMBDA_WITH(PARAM("BufferSizeInMBs", "0.1")),
                       PC ".Processors[0].Parameters[1].ParameterValue", "from 0.2 to 3");
    processing_refused(LAMBDA_WITH(PARAM("BufferSizeInMBs", "3.5")),
                       PC ".Processors[0].Parameters[1].ParameterValue", "from 0.2 to 3");
    processing_refused(LAMBDA_WITH(PARAM("BufferIntervalInSeconds", "901")),
                       PC ".Processors[0].Parameters[1].ParameterValue", "0 to 900");
    processing_refused(LAMBDA_WITH(PARAM("LambdaArn", "g")),
                       PC ".Processors[0].Parameters[1].ParameterName", "given twice");
    processing_refused(LAMBDA_WITH(PARAM("MetadataExtractionQuery", "{a:.a}")),
                       PC ".Processors[0].Parameters[1].ParameterName",
                       "one of LambdaArn, NumberOfRetries");
    processing_refused(LAMBDA_WITH(PARAM("RoleArn", "  ")),
                       PC ".Processors[0].Parameters[1].ParameterValue", "not blank");
    processing_refused("{\"Enabled\":true,\"Processors\":[{\"Type\":\"Lambda\"}]}",
                       PC ".Processors[0].Parameters: no LambdaArn", "needs one");
    processing_refused("{\"Enabled\":true,\"Processors\":[{\"Type\":\"RecordDeAggregation\"}]}",
                       PC ".Processors[0].Type: \"RecordDeAggregation\" is not built",
                       "allowed: Lambda, MetadataExtraction");
    processing_refused("{\"Enabled\":true,\"Processors\":[{\"Type\":\"Magic\"}]}",
                       PC ".Processors[0].Type", "is not a processor type");
    processing_refused("{\"Enabled\":true,\"Processors\":[{\"Type\":\"AppendDelimiterToRecord\"},{"
                       "\"Type\":\"AppendDelimiterToRecord\"}]}",
                       PC ".Processors[1].Type", "one of each type");
    /* clang-format off */
    static const char bad_query[] =
        "{\"Enabled\":true,\"Processors\":[{\"Type\":\"MetadataExtraction\",\"Parameters\":["
        PARAM("MetadataExtractionQuery", "{y: .t|strftime(\\\"%Y\\\")}") "]}]}";
    /* clang-format on */
    processing_refused(bad_query, PC ".Processors[0].Parameters[0].ParameterValue", "supported:");
    /* clang-format off */
    static const char bad_engine[] =
        "{\"Enabled\":true,\"Processors\":[{\"Type\":\"MetadataExtraction\",\"Parameters\":["
        PARAM("MetadataExtractionQuery", "{y: .t}") ","
        PARAM("JsonParsingEngine", "JQ-1.5") "]}]}";
    /* clang-format on */
    processing_refused(bad_engine, PC ".Processors[0].Parameters[1].ParameterValue: \"JQ-1.5\"",
                       "allowed: JQ-1.6");
    processing_refused("{\"Enabled\":\"yes\",\"Extra\":1}", PC ".Extra", "unknown key");
    processing_refused("{\"Enabled\":true,\"Processors\":{}}", PC ".Processors", "not a list");
    processing_refused("{\"Processors\":[{\"Type\":\"AppendDelimiterToRecord\"}]}",
                       PC ".Enabled: missing beside Processors", "true or false");
}

/* ---- the layout's keys against the methods ---- */

static struct sl_s3_layout *layout(const char *prefix)
{
    struct sl_s3_layout_conf c = {.prefix = prefix,
                                  .error_prefix = "errors/!{firehose:error-output-type}/",
                                  .dynamic_partitioning = true,
                                  .path = DEST};
    struct sl_s3_layout *l = NULL;
    char errbuf[512] = "";
    if (sl_s3_layout_new(&c, &l, errbuf, sizeof(errbuf)) != 0) {
        fail_msg("%s", errbuf);
    }
    return l;
}

static void test_fh_partition_check_layout(void **state)
{
    (void)state;
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    struct sl_fh_partition_conf on = {.enabled = true, .retry_duration_s = 300};
    struct sl_fh_partition_conf off = {.enabled = false, .retry_duration_s = 300};
    struct sl_fh_query *q = compile("{customer_id: .customer_id}");
    struct sl_s3_layout *l =
        layout("c=!{partitionKeyFromQuery:customer_id}/t=!{partitionKeyFromLambda:tenant}/");
    assert_int_equal(sl_fh_partition_check(&on, l, q, true, FILE_, DEST, &errs), 0);
    assert_int_equal(sl_fh_partition_check(&on, l, q, false, FILE_, DEST, &errs), SL_ECONFIG);
    assert_error(&errs, DEST ".Prefix: !{partitionKeyFromLambda:tenant} needs a Lambda processor",
                 NULL);
    sl_s3_layout_free(l);
    l = layout("!{partitionKeyFromQuery:device}/");
    assert_int_equal(sl_fh_partition_check(&on, l, q, false, FILE_, DEST, &errs), SL_ECONFIG);
    assert_error(
        &errs, "!{partitionKeyFromQuery:device} is not a key of the MetadataExtractionQuery", NULL);
    assert_int_equal(sl_fh_partition_check(&on, l, NULL, false, FILE_, DEST, &errs), SL_ECONFIG);
    assert_error(&errs, DEST ".DynamicPartitioningConfiguration", "no method", NULL);
    assert_int_equal(sl_fh_partition_check(&off, NULL, q, false, FILE_, DEST, &errs), SL_ECONFIG);
    assert_error(&errs, "needs dynamic partitioning", NULL);
    assert_int_equal(sl_fh_partition_check(&off, NULL, NULL, true, FILE_, DEST, &errs), 0);
    sl_s3_layout_free(l);
    sl_fh_query_free(q);
    sl_errlist_fini(&errs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fh_partition_query_paths),
        cmocka_unit_test(test_fh_partition_record_fails),
        cmocka_unit_test(test_fh_partition_query_refused),
        cmocka_unit_test(test_fh_partition_conf),
        cmocka_unit_test(test_fh_partition_processing_full),
        cmocka_unit_test(test_fh_partition_processing_refused),
        cmocka_unit_test(test_fh_partition_check_layout),
    };
    return cmocka_run_group_tests_name("fh_partition", tests, NULL, NULL);
}
