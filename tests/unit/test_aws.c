/* SPDX-License-Identifier: Apache-2.0 */
/* test_aws.c: the AWS settings chain of aws.c against reference/wire.md §3.3 items 1 and 2:
 * environment credentials with a session token, the shared credentials and config files with
 * profiles ([name] and [profile name], [profile default] for the default), the older
 * aws_security_token spelling, the services block for endpoints, and both ways of ignoring
 * configured endpoints. Files are written to a temporary folder; the environment is reset
 * around each test. (test_httpc covers the basic profile cases the lambda type relies on.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "aws.h"
#include "helpers.h"

struct fx {
    char *dir;
    char cred[512];
    char conf[512];
};

static void reset_env(void)
{
    static const char *const vars[] = {
        "AWS_ACCESS_KEY_ID",    "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",    "AWS_PROFILE",
        "AWS_REGION",           "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",     "AWS_ENDPOINT_URL_KINESIS",
        "AWS_ENDPOINT_URL_SQS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"};
    for (size_t i = 0; i < SL_ARRAY_LEN(vars); i++) {
        unsetenv(vars[i]);
    }
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    reset_env();
    f->dir = test_tmpdir();
    snprintf(f->cred, sizeof(f->cred), "%s/credentials", f->dir);
    snprintf(f->conf, sizeof(f->conf), "%s/config", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    reset_env();
    test_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void write_files(struct fx *f, const char *cred, const char *conf)
{
    if (cred) {
        test_write_file(f->cred, "w", cred, strlen(cred));
        setenv("AWS_SHARED_CREDENTIALS_FILE", f->cred, 1);
    }
    if (conf) {
        test_write_file(f->conf, "w", conf, strlen(conf));
        setenv("AWS_CONFIG_FILE", f->conf, 1);
    }
}

static void expect_endpoint(const char *service, const char *want)
{
    char *url = sl_aws_endpoint_url(service);
    if (want) {
        assert_non_null(url);
        assert_string_equal(url, want);
    } else if (url) {
        fail_msg("%s: endpoint %s, want none", service, url);
    }
    sl_free(url);
}

/* Item 1: the environment, with its session token, wins over every file. */
static void test_aws_env_credentials_with_session_token(void **state)
{
    struct fx *f = *state;
    write_files(f, "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = FILESECRET\n",
                NULL);
    setenv("AWS_ACCESS_KEY_ID", "ENVKEY", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET", 1);
    setenv("AWS_SESSION_TOKEN", "ENVTOKEN", 1);
    struct sl_aws_creds c;
    char err[256];
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "ENVKEY");
    assert_string_equal(c.secret_access_key, "ENVSECRET");
    assert_string_equal(c.session_token, "ENVTOKEN");
    assert_string_equal(c.source, "environment");
    sl_aws_creds_fini(&c);
    assert_null(c.secret_access_key);

    /* An empty token is no token; a key without its secret is an error naming no secret. */
    setenv("AWS_SESSION_TOKEN", "", 1);
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), 0);
    assert_null(c.session_token);
    sl_aws_creds_fini(&c);
    unsetenv("AWS_SECRET_ACCESS_KEY");
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), SL_ECONFIG);
    assert_non_null(strstr(err, "AWS_SECRET_ACCESS_KEY"));
    assert_null(strstr(err, "ENVKEY"));
}

/* Item 2: the credentials file before the config file; [name] in the one, [profile name] in
 * the other; [profile default] read for the default profile; aws_security_token as the SDKs
 * still accept it. */
static void test_aws_profiles_in_both_files(void **state)
{
    struct fx *f = *state;
    write_files(f,
                "[both]\naws_access_key_id = CREDKEY\naws_secret_access_key = CREDSECRET\n"
                "[legacy]\naws_access_key_id = LKEY\naws_secret_access_key = LSECRET\n"
                "aws_security_token = LTOKEN\n",
                "[profile both]\naws_access_key_id = CONFKEY\naws_secret_access_key = CONFSECRET\n"
                "region = eu-north-1\n"
                "[profile default]\naws_access_key_id = PDKEY\naws_secret_access_key = PDSECRET\n"
                "aws_session_token = PDTOKEN\nregion = ap-east-1\n"
                "[cfgonly]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n"
                "[profile cfgonly]\naws_access_key_id = CFGKEY\n"
                "aws_secret_access_key = CFGSECRET\naws_security_token = CFGTOKEN\n");
    struct sl_aws_creds c;
    char err[256];
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "PDKEY");
    assert_string_equal(c.session_token, "PDTOKEN");
    assert_string_equal(c.source, "config file");
    sl_aws_creds_fini(&c);
    char *region = sl_aws_region();
    assert_string_equal(region, "ap-east-1");
    sl_free(region);

    setenv("AWS_PROFILE", "both", 1);
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "CREDKEY");
    assert_string_equal(c.source, "credentials file");
    assert_null(c.session_token);
    sl_aws_creds_fini(&c);
    region = sl_aws_region();
    assert_string_equal(region, "eu-north-1");
    sl_free(region);

    setenv("AWS_PROFILE", "legacy", 1);
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), 0);
    assert_string_equal(c.session_token, "LTOKEN");
    sl_aws_creds_fini(&c);

    /* In the config file a profile other than default is [profile NAME] only. */
    setenv("AWS_PROFILE", "cfgonly", 1);
    assert_int_equal(sl_aws_creds_load(&c, err, sizeof(err)), 0);
    assert_string_equal(c.access_key_id, "CFGKEY");
    assert_string_equal(c.session_token, "CFGTOKEN");
    sl_aws_creds_fini(&c);

    /* AWS_REGION beats AWS_DEFAULT_REGION beats the profile. */
    setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
    region = sl_aws_region();
    assert_string_equal(region, "us-west-1");
    sl_free(region);
    setenv("AWS_REGION", "us-west-2", 1);
    region = sl_aws_region();
    assert_string_equal(region, "us-west-2");
    sl_free(region);
}

/* Endpoints: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, the profile's services block, the
 * profile's endpoint_url; all configured ones ignored by the variable or the profile setting,
 * and the variable's "false" overrides the profile's "true". */
static void test_aws_endpoints_and_ignoring_them(void **state)
{
    struct fx *f = *state;
    write_files(f, NULL,
                "[profile local]\nregion = us-east-1\nendpoint_url = http://all:4566\n"
                "services = local-svcs\n"
                "[services local-svcs]\n"
                "sqs =\n  endpoint_url = http://sqs:9324\n"
                "kinesis =\n  region = x\n  endpoint_url = http://kinesis:4567\n"
                "[profile offline]\nendpoint_url = http://all:4566\n"
                "ignore_configured_endpoint_urls = true\n");
    setenv("AWS_PROFILE", "local", 1);
    expect_endpoint("sqs", "http://sqs:9324");
    expect_endpoint("kinesis", "http://kinesis:4567");
    expect_endpoint("firehose", "http://all:4566");
    setenv("AWS_ENDPOINT_URL", "http://env:1", 1);
    expect_endpoint("sqs", "http://env:1");
    setenv("AWS_ENDPOINT_URL_KINESIS", "http://env-kinesis:2", 1);
    expect_endpoint("kinesis", "http://env-kinesis:2");
    expect_endpoint("sqs", "http://env:1");
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE", 1);
    expect_endpoint("kinesis", NULL);
    expect_endpoint("sqs", NULL);

    unsetenv("AWS_ENDPOINT_URL");
    unsetenv("AWS_ENDPOINT_URL_KINESIS");
    unsetenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    setenv("AWS_PROFILE", "offline", 1);
    expect_endpoint("kinesis", NULL); /* the profile's ignore_configured_endpoint_urls */
    setenv("AWS_ENDPOINT_URL_KINESIS", "http://env-kinesis:2", 1);
    expect_endpoint("kinesis", NULL);
    setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false", 1);
    expect_endpoint("kinesis", "http://env-kinesis:2");
    expect_endpoint("sqs", "http://all:4566");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_aws_env_credentials_with_session_token, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_aws_profiles_in_both_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aws_endpoints_and_ignoring_them, setup, teardown),
    };
    return cmocka_run_group_tests_name("aws", tests, NULL, NULL);
}
