/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_AWS_H
#define SL_AWS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

/* AWS settings resolved the way the AWS SDKs and CLI do: credentials, region and endpoints from
 * the environment and the shared files (~/.aws/credentials, ~/.aws/config). Signing is
 * sigv4.h's (applied by httpc.h). Container, instance-metadata, STS-role, process and SSO
 * credentials are not supported. These functions read files: call them at startup, not on the
 * hot path. Any thread (they only read the environment). */

struct sl_aws_creds {
    char *access_key_id;     /* owned */
    char *secret_access_key; /* owned; a secret: never log it */
    char *session_token;     /* owned or NULL; a secret: never log it */
    const char *source;      /* static: "environment", "credentials file", "config file" */
};

/* Resolves credentials in the SDK order: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN; then the profile (AWS_PROFILE, else "default") in the shared credentials
 * file (AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials); then the same profile in the
 * config file (AWS_CONFIG_FILE, else ~/.aws/config; sections [default] and [profile NAME]).
 * In the files the token is aws_session_token, or the older aws_security_token.
 * Container and instance metadata credentials are not supported.
 * Returns 0 with *ret_creds filled (owned: sl_aws_creds_fini), SL_ENOTFOUND when there are
 * none, SL_ECONFIG when a source is incomplete (errbuf says which; no secret in it), or
 * SL_ENOMEM. *ret_creds is zeroed on failure. */
SL_NODISCARD int sl_aws_creds_load(struct sl_aws_creds *ret_creds, char *errbuf, size_t errlen);

/* Wipes and frees the strings of c. Safe on a zeroed struct. */
void sl_aws_creds_fini(struct sl_aws_creds *c);

/* The profile in use: AWS_PROFILE or "default". Borrowed from the environment. */
const char *sl_aws_profile(void);

/* The region: AWS_REGION, then AWS_DEFAULT_REGION, then the profile's `region` in the config
 * file. Returns an owned string or NULL when none is set (or on OOM). */
char *sl_aws_region(void);

/* The endpoint URL for a service id ("lambda", "kinesis", "sqs", "firehose"):
 * AWS_ENDPOINT_URL_<SERVICE> (upper case, spaces and dashes as '_'), then AWS_ENDPOINT_URL,
 * then the profile's `services` section (`<service> = \n  endpoint_url = ...`), then the
 * profile's `endpoint_url`; none when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true, or when that
 * variable is unset and the profile says ignore_configured_endpoint_urls = true. Returns an
 * owned string or NULL. */
char *sl_aws_endpoint_url(const char *service_id);

/* Appends s percent-encoded as SigV4 wants it: unreserved characters (A-Z a-z 0-9 - _ . ~) as
 * they are, everything else as %XX with upper-case hex; '/' kept when keep_slash. Returns 0 or
 * SL_ENOMEM. */
SL_NODISCARD int sl_aws_uri_encode(struct sl_buf *b, const char *s, bool keep_slash);

/* The parts of a Lambda function ARN or partial ARN:
 * "arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]",
 * "ACCOUNT:function:NAME[:QUALIFIER]" or "NAME[:QUALIFIER]". Each field points into a copy
 * owned by the struct; absent parts are NULL. Returns 0, SL_EINVAL (not a function reference)
 * or SL_ENOMEM. */
struct sl_aws_lambda_ref {
    char *copy;
    const char *region;
    const char *account;
    const char *name;
    const char *qualifier;
};
SL_NODISCARD int sl_aws_lambda_ref_parse(const char *s, struct sl_aws_lambda_ref *ret_ref);
void sl_aws_lambda_ref_fini(struct sl_aws_lambda_ref *ref);

#endif
