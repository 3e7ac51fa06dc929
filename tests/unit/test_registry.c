/* SPDX-License-Identifier: Apache-2.0 */
/* test_registry.c: the registry is what the build has. The sources and sinks registered are
 * exactly the generated sl_adapters.h's lists, in their order, each once, each with the ABI of
 * its interface and an option table; `sluice version`'s lists say the same; an adapter the build
 * left out (meson -Dkafka=disabled) is recognised by the URIs it serves, case aside, and one
 * built in never is. Run in both kinds of build (CI builds both). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "function.h"
#include "registry.h"
#include "sink.h"
#include "sl_adapters.h"
#include "source.h"

#define NAME(name) #name,
static const char *const want_sources[] = {SL_SOURCES(NAME)};
static const char *const want_sinks[] = {SL_SINKS(NAME)};
#undef NAME

static void test_registry_sources_are_the_built_list(void **state)
{
    (void)state;
    size_t n = 0;
    const struct sl_source_ops *const *all = sl_source_all(&n);
    assert_int_equal(n, SL_ARRAY_LEN(want_sources));
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(all[i]->name, want_sources[i]);
        assert_int_equal(all[i]->abi, SL_SOURCE_ABI);
        assert_non_null(all[i]->opts);
        assert_non_null(all[i]->scheme);
        assert_ptr_equal(sl_source_for_arn(all[i]->scheme), all[i]);
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(all[i]->name, all[j]->name);
        }
    }
}

static void test_registry_sinks_are_the_built_list(void **state)
{
    (void)state;
    size_t n = 0;
    const struct sl_sink_ops *const *all = sl_sink_all(&n);
    assert_int_equal(n, SL_ARRAY_LEN(want_sinks));
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(all[i]->name, want_sinks[i]);
        assert_int_equal(all[i]->abi, SL_SINK_ABI);
    }
}

static void test_registry_version_lists(void **state)
{
    (void)state;
#if SL_HAVE_KAFKA
    assert_string_equal(sl_registry_sources_built(), "file kafka");
    assert_string_equal(sl_registry_sinks_built(), "file kafka sqs http");
#else
    assert_string_equal(sl_registry_sources_built(), "file");
    assert_string_equal(sl_registry_sinks_built(), "file sqs http");
#endif
}

static void test_registry_left_out(void **state)
{
    (void)state;
    static const char *const kafka_uris[] = {"kafka://dlq", "KAFKA://dlq",
                                             "kafka://b-1:9092,b-2:9092",
                                             "arn:aws:kafka:us-east-1:1:cluster/c/abc"};
    for (size_t i = 0; i < SL_ARRAY_LEN(kafka_uris); i++) {
        const struct sl_registry_feature *f = sl_registry_left_out(kafka_uris[i]);
#if SL_HAVE_KAFKA
        assert_null(f);
#else
        assert_non_null(f);
        assert_string_equal(f->option, "kafka");
        assert_string_equal(f->title, "Kafka");
        assert_string_equal(f->library, "librdkafka");
        assert_false(f->built);
#endif
    }
    static const char *const others[] = {
        "file:///tmp/x",    "http://h/x", "", "kafka:/x", "arn:aws:sqs:us-east-1:1:q",
        "arn:aws:kinesis:x"};
    for (size_t i = 0; i < SL_ARRAY_LEN(others); i++) {
        assert_null(sl_registry_left_out(others[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_sources_are_the_built_list),
        cmocka_unit_test(test_registry_sinks_are_the_built_list),
        cmocka_unit_test(test_registry_version_lists),
        cmocka_unit_test(test_registry_left_out),
    };
    return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
