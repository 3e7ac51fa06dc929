/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_S3_PUT_H
#define SL_S3_PUT_H

#include <stdbool.h>
#include <stddef.h>

#include "clock.h"
#include "err.h"
#include "httpc.h"

/* S3 PutObject for a delivery stream's BucketARN (arn:aws:s3:::BUCKET): one object per call,
 * signed with SigV4 (X-Amz-Content-Sha256 of the body, as S3 requires), on the loop's curl multi
 * (httpc.h).
 *
 * Endpoint, as the SDKs resolve it (aws.h): AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then the
 * profile's; a configured endpoint is addressed path-style (<endpoint>/<bucket>/<key>: what
 * loopback servers such as s3rver and MinIO expect); without one, AWS's virtual-hosted
 * https://<bucket>.s3.<region>.amazonaws.com/<key>. Region: AWS_REGION, AWS_DEFAULT_REGION, the
 * profile's, else us-east-1. No credentials: requests go unsigned (a local server).
 *
 * Usage: sl_s3_put_new at startup (reads the environment and the shared files); per object
 * sl_s3_put_object with the key (sl_s3_layout_key_of) and the body (s3_object.h). Loop thread. */

struct sl_s3_put;

/* Called once per object on the loop thread: err 0 (S3 answered 200: the object is stored), or
 * SL_EAUTH (403), SL_ENOTFOUND (404: no such bucket), SL_ETHROTTLED (503 SlowDown),
 * SL_EREMOTE (other 5xx), SL_EREJECTED (other 4xx), SL_ETIMEDOUT / SL_EIO (no answer),
 * SL_ECANCELED (sl_s3_put_stop). status is the HTTP status (0 without an answer); detail
 * (borrowed for the call) has S3's error Code and Message or curl's error, or is NULL. The
 * caller keeps the records and retries what sl_err_retriable says. */
typedef void (*sl_s3_put_cb)(void *arg, int err, long status, const char *detail);

/* Checks bucket_arn is arn:<partition>:s3:::<bucket> with a valid bucket name (3-63 of a-z 0-9
 * . -, starting and ending with a letter or digit). Returns 0 or SL_ECONFIG (errbuf says what is
 * allowed). No I/O. */
SL_NODISCARD int sl_s3_put_check(const char *bucket_arn, char *errbuf, size_t errlen);

/* Resolves endpoint, region and credentials. http and clock are borrowed (clock: the signing
 * time; NULL: the system's). Returns 0 and *ret_p (owned; sl_s3_put_free), SL_ECONFIG (errbuf:
 * a bad ARN or incomplete credentials, no secret in it) or SL_ENOMEM. */
SL_NODISCARD int sl_s3_put_new(struct sl_httpc *http,
                               const struct sl_clock *clock,
                               const char *bucket_arn,
                               struct sl_s3_put **ret_p,
                               char *errbuf,
                               size_t errlen);

/* The URL objects go to, without the key ("http://127.0.0.1:4569/bucket/"), borrowed. */
const char *sl_s3_put_base_url(const struct sl_s3_put *p);

/* Starts PutObject of body[0..len) (borrowed until the callback) under key (copied).
 * timeout_ms bounds the whole request (0: none). Returns 0 and calls cb exactly once, later; or
 * SL_ENOMEM / SL_EINVAL and never calls it. */
SL_NODISCARD int sl_s3_put_object(struct sl_s3_put *p,
                                  const char *key,
                                  const void *body,
                                  size_t len,
                                  long timeout_ms,
                                  sl_s3_put_cb cb,
                                  void *arg);

/* Cancels every put in flight: each calls back with SL_ECANCELED on a later loop turn. */
void sl_s3_put_stop(struct sl_s3_put *p);

/* Puts in flight. */
size_t sl_s3_put_inflight(const struct sl_s3_put *p);

/* Frees p; nothing may be in flight. Wipes the credentials. */
void sl_s3_put_free(struct sl_s3_put *p);

#endif
