/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_SIGV4_H
#define SL_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* AWS Signature Version 4 (AWS4-HMAC-SHA256) for one set of credentials: given a request as it
 * will go on the wire and the time, the headers that authenticate it. The signing key of each
 * (date, region, service) is derived once and cached. Loop thread (or one thread at a time). */
struct sl_sigv4;

/* Copies the credentials (session_token may be NULL or ""). Returns 0 and *ret_s (owned:
 * sl_sigv4_free), SL_EINVAL when the key id or secret is empty, or SL_ENOMEM. */
SL_NODISCARD int sl_sigv4_new(const char *access_key_id,
                              const char *secret_access_key,
                              const char *session_token,
                              struct sl_sigv4 **ret_s);
/* Wipes the secret, the session token and the cached keys, then frees s. NULL is a no-op. */
void sl_sigv4_free(struct sl_sigv4 *s);

/* How many signing keys s has derived (cache misses); for tests. */
size_t sl_sigv4_key_derivations(const struct sl_sigv4 *s);

/* A header to sign: name[0..name_len) and value[0..value_len), as sent. */
struct sl_sigv4_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

#define SL_SIGV4_MAX_HEADERS 64 /* headers a request may ask to sign */

struct sl_sigv4_req {
    const char *method; /* "POST" */
    const char *host;   /* the Host header's value as sent: "host" or "host:port" */
    const char *path;   /* as sent (already percent-encoded); NULL or "" is "/" */
    const char *query;  /* as sent, without the '?'; NULL: none */
    const struct sl_sigv4_header *headers; /* the other headers sent and signed (borrowed); */
    size_t n_headers;                      /* those named Host, Authorization or X-Amz-Date,
                                            * -Security-Token or -Content-Sha256 are the signer's: skipped */
    const void *payload;                   /* the body (NULL with payload_len 0: none) */
    size_t payload_len;
    const char *payload_hash; /* instead of hashing payload: hex SHA-256 or "UNSIGNED-PAYLOAD" */
    const char *region;       /* "us-east-1" */
    const char *service;      /* "kinesis", "lambda" */
    bool content_sha256;      /* also sign and send X-Amz-Content-Sha256 (S3 wants it) */
    bool s3;                  /* S3's path rule: encoded once, not normalised */
};

#define SL_SIGV4_MAX_LINES 4

/* What signing produces. lines[0..n_lines) are the header lines to add, "Name: value", in this
 * order: X-Amz-Date, X-Amz-Security-Token (with a session token), X-Amz-Content-Sha256 (when
 * asked), Authorization. canonical and string_to_sign are kept for tests and debugging. All of
 * it may hold the session token: sl_sigv4_out_fini wipes it. */
struct sl_sigv4_out {
    char amz_date[17];     /* "20150830T123600Z" */
    char payload_hash[65]; /* hex, or a copy of req->payload_hash */
    const char *lines[SL_SIGV4_MAX_LINES];
    size_t n_lines;
    const char *authorization; /* the Authorization value (points into text) */
    struct sl_buf text;        /* owns lines */
    struct sl_buf canonical;
    struct sl_buf string_to_sign;
};

void sl_sigv4_out_init(struct sl_sigv4_out *out);
void sl_sigv4_out_fini(struct sl_sigv4_out *out);

/* Signs req at wall_ms (Unix epoch milliseconds: the caller's clock) into out (initialised;
 * earlier contents replaced). Canonical URI: for services other than S3 the path is normalised
 * ("." and ".." segments and empty segments removed) and each segment percent-encoded again
 * (so "%3A" is signed as "%253A", as AWS expects); for S3 it is decoded and encoded once.
 * Canonical query: parameters decoded, encoded (RFC 3986 unreserved kept, upper-case hex) and
 * sorted by name then value. Headers: names lower-cased, values trimmed with inner runs of
 * spaces collapsed, repeated names joined with ',' in order, sorted by name.
 * Returns 0, SL_EINVAL (a region, service, method, header or time that cannot be signed: more
 * than SL_SIGV4_MAX_HEADERS headers, control characters, a time outside years 1970-9999) or
 * SL_ENOMEM. */
SL_NODISCARD int sl_sigv4_sign(struct sl_sigv4 *s,
                               const struct sl_sigv4_req *req,
                               int64_t wall_ms,
                               struct sl_sigv4_out *out);

#endif
