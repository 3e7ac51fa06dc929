/* SPDX-License-Identifier: Apache-2.0 */
/* fh_http_wire.c: what Firehose's HTTP endpoint delivery puts on the wire and how it reads the
 * answer (wire.md §4.3, AWS's "HTTP endpoint delivery request and response specifications"):
 * the request body ({"requestId","timestamp","records":[{"data":base64}]}, GZIP through the S3
 * object encoder's zlib), the headers (Content-Type, Content-Encoding, X-Amz-Firehose-Protocol-
 * Version, -Request-Id, -Source-Arn, -Access-Key, -Common-Attributes), the verdict on an answer
 * (only a 200 with Content-Type application/json, no Content-Encoding, and a JSON body echoing
 * our requestId with a numeric timestamp is a success; everything else fails with Firehose's
 * error code and an errorMessage quoting the answer), the backoff, and the error record lines of
 * a failed buffer. No state and no I/O: the delivery (fh_http.c) calls it. Any thread; nothing
 * logs. */
#include "fh_http_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "encoder.h"
#include "json.h"
#include "s3_object.h"

#define FH_DEFAULT_BASE_MS 1000
#define FH_DEFAULT_MAX_MS  120000

bool fh_http_request_id_ok(const char *id)
{
    size_t n = strspn(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-");
    return n > 0 && n <= FH_HTTP_MAX_REQUEST_ID && id[n] == '\0';
}

int fh_http_body(struct sl_buf *out,
                 const char *request_id,
                 int64_t ts_ms,
                 const struct sl_fh_http_rec *recs,
                 size_t n,
                 bool gzip)
{
    size_t need = 64 + strlen(request_id);
    for (size_t i = 0; i < n; i++) {
        need += sl_enc_base64_len(recs[i].len) + 12;
    }
    struct sl_buf json;
    sl_buf_init(&json);
    int r = sl_buf_reserve(&json, need);
    if (r < 0) {
        goto done;
    }
    r = sl_buf_printf(&json, "{\"requestId\":\"%s\",\"timestamp\":%lld,\"records\":[", request_id,
                      (long long)ts_ms);
    for (size_t i = 0; i < n && r == 0; i++) {
        r = sl_buf_puts(&json, i ? ",{\"data\":\"" : "{\"data\":\"");
        if (r < 0) {
            break;
        }
        r = sl_enc_base64(&json, recs[i].data, recs[i].len);
        if (r < 0) {
            break;
        }
        r = sl_buf_puts(&json, "\"}");
    }
    if (r < 0) {
        goto done;
    }
    r = sl_buf_puts(&json, "]}");
    if (r < 0) {
        goto done;
    }
    if (gzip) {
        struct iovec iov = {json.data, json.len};
        r = sl_s3_object_build(&iov, 1, SL_S3_GZIP, out);
    } else {
        r = sl_buf_append(out, json.data, json.len);
    }
done:
    sl_buf_fini(&json);
    return r;
}

/* Appends "Name: value" to *list. */
static int fh_http_header(struct curl_slist **list, const char *name, const char *value)
{
    struct sl_buf line;
    sl_buf_init(&line);
    /* curl drops a header written "Name:" with nothing after it; "Name;" sends it empty. */
    int r =
        *value ? sl_buf_printf(&line, "%s: %s", name, value) : sl_buf_printf(&line, "%s;", name);
    struct curl_slist *l = r < 0 ? NULL : curl_slist_append(*list, line.data);
    if (line.data) {
        /* The line may hold the access key: not left behind in freed memory. */
        memset(line.data, 0, line.len);
    }
    sl_buf_fini(&line);
    if (!l) {
        return SL_ENOMEM;
    }
    *list = l;
    return 0;
}

int fh_http_headers(const struct sl_fh_http_conf *conf,
                    const char *request_id,
                    const char *source_arn,
                    struct curl_slist **ret_list)
{
    struct curl_slist *l = NULL;
    /* "Expect:" keeps curl from waiting for a 100-continue Firehose never asks for. */
    static const char *const fixed[] = {"Content-Type: application/json",
                                        "X-Amz-Firehose-Protocol-Version: 1.0", "Expect:"};
    for (size_t i = 0; i < SL_ARRAY_LEN(fixed); i++) {
        struct curl_slist *t = curl_slist_append(l, fixed[i]);
        if (!t) {
            goto fail;
        }
        l = t;
    }
    if (conf->gzip && fh_http_header(&l, "Content-Encoding", "gzip") < 0) {
        goto fail;
    }
    if (fh_http_header(&l, "X-Amz-Firehose-Request-Id", request_id) < 0) {
        goto fail;
    }
    if (source_arn && fh_http_header(&l, "X-Amz-Firehose-Source-Arn", source_arn) < 0) {
        goto fail;
    }
    if (conf->access_key && fh_http_header(&l, "X-Amz-Firehose-Access-Key", conf->access_key) < 0) {
        goto fail;
    }
    if (conf->common_attributes &&
        fh_http_header(&l, "X-Amz-Firehose-Common-Attributes", conf->common_attributes) < 0) {
        goto fail;
    }
    *ret_list = l;
    return 0;
fail:
    curl_slist_free_all(l);
    return SL_ENOMEM;
}

/* Appends up to SL_FH_HTTP_MAX_QUOTED bytes of the answer's body, as text an error record can
 * carry: cut at a NUL, and with every byte of 0x80 or more made '?' when the cut is not UTF-8. */
static int fh_http_quote(struct sl_buf *out, const struct sl_http_resp *resp)
{
    size_t n = resp->body ? strnlen(resp->body, resp->body_len) : 0;
    if (n > SL_FH_HTTP_MAX_QUOTED) {
        n = SL_FH_HTTP_MAX_QUOTED;
    }
    size_t start = out->len;
    int r = sl_buf_append(out, resp->body ? resp->body : "", n);
    if (r < 0) {
        return r;
    }
    if (!sl_json_is_utf8((const unsigned char *)out->data + start, n)) {
        for (size_t i = start; i < out->len; i++) {
            if ((unsigned char)out->data[i] >= 0x80) {
                out->data[i] = '?';
            }
        }
    }
    return 0;
}

/* Why a 200 is not a success, or NULL when it is one. */
static const char *fh_http_bad_200(const struct sl_http_resp *resp, const char *request_id)
{
    const char *ct = sl_http_resp_header(resp, "Content-Type");
    size_t mt = ct ? strcspn(ct, "; \t") : 0;
    if (!ct || mt != strlen("application/json") || strncasecmp(ct, "application/json", mt) != 0) {
        return "its Content-Type is not application/json";
    }
    const char *ce = sl_http_resp_header(resp, "Content-Encoding");
    if (ce && *ce && strcasecmp(ce, "identity") != 0) {
        return "it has a Content-Encoding";
    }
    cJSON *doc = sl_json_parse_exact(resp->body ? resp->body : "", resp->body_len);
    const char *why = NULL;
    if (!cJSON_IsObject(doc)) {
        why = "its body is not a JSON object";
    } else {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "requestId"));
        if (!id) {
            why = "it has no requestId";
        } else if (strcmp(id, request_id) != 0) {
            why = "its requestId is not the request's";
        } else if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(doc, "timestamp"))) {
            why = "its timestamp is missing or not a number";
        }
    }
    cJSON_Delete(doc);
    return why;
}

static bool fh_http_is_tls(CURLcode c)
{
    return c == CURLE_SSL_CONNECT_ERROR || c == CURLE_PEER_FAILED_VERIFICATION ||
           c == CURLE_SSL_CERTPROBLEM || c == CURLE_SSL_CIPHER || c == CURLE_SSL_CACERT_BADFILE ||
           c == CURLE_SSL_ISSUER_ERROR || c == CURLE_SSL_PINNEDPUBKEYNOTMATCH ||
           c == CURLE_SSL_INVALIDCERTSTATUS || c == CURLE_SSL_CRL_BADFILE;
}

/* A transfer that ended without an answer. */
static int fh_http_judge_transport(const struct sl_http_resp *resp,
                                   int64_t timeout_ms,
                                   struct fh_http_verdict *v,
                                   struct sl_buf *message)
{
    CURLcode c = resp->curl_code;
    const char *why =
        resp->curl_error && *resp->curl_error ? resp->curl_error : curl_easy_strerror(c);
    if (c == CURLE_OPERATION_TIMEDOUT && resp->request_sent) {
        v->err = SL_ETIMEDOUT;
        v->error_code = SL_FH_HTTP_REQUEST_TIMEOUT;
        return sl_buf_printf(message, "The endpoint did not answer within %lld ms.",
                             (long long)timeout_ms);
    }
    v->err = c == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEDOUT : SL_EIO;
    if (fh_http_is_tls(c)) {
        v->error_code = SL_FH_HTTP_SSL_HANDSHAKE_FAILURE;
        return sl_buf_printf(message, "The TLS handshake with the endpoint failed: %s", why);
    }
    if (c == CURLE_GOT_NOTHING || c == CURLE_RECV_ERROR || c == CURLE_SEND_ERROR ||
        c == CURLE_PARTIAL_FILE) {
        v->error_code = SL_FH_HTTP_CONNECTION_RESET;
        return sl_buf_printf(message, "The connection to the endpoint ended before an answer: %s",
                             why);
    }
    v->error_code = SL_FH_HTTP_CONNECTION_FAILED;
    return sl_buf_printf(message, "Unable to connect to the endpoint: %s", why);
}

int fh_http_judge(const struct sl_http_resp *resp,
                  const char *request_id,
                  int64_t timeout_ms,
                  struct fh_http_verdict *v,
                  struct sl_buf *message)
{
    memset(v, 0, sizeof(*v));
    v->status = resp->status;
    sl_buf_truncate(message, 0);
    if (resp->curl_code == CURLE_ABORTED_BY_CALLBACK) {
        v->err = SL_ECANCELED;
        return sl_buf_puts(message, "canceled");
    }
    if (resp->too_large) {
        v->err = SL_EPROTO;
        v->error_code = SL_FH_HTTP_RESPONSE_TOO_LARGE;
        return sl_buf_printf(message, "The endpoint's answer is larger than %d bytes.",
                             SL_FH_HTTP_MAX_RESPONSE);
    }
    if (resp->curl_code != CURLE_OK) {
        return fh_http_judge_transport(resp, timeout_ms, v, message);
    }
    long s = resp->status;
    const char *why = NULL;
    if (s == 200) {
        why = fh_http_bad_200(resp, request_id);
        if (!why) {
            return 0;
        }
    }
    int r;
    if (why) {
        v->err = SL_EPROTO;
        v->error_code = SL_FH_HTTP_INVALID_RESPONSE;
        r = sl_buf_printf(message,
                          "The response received from the endpoint is invalid: %s. %ld: ", why, s);
    } else {
        v->err = s >= 500 && s < 600 ? SL_EREMOTE : s >= 400 && s < 500 ? SL_EREJECTED : SL_EPROTO;
        v->error_code = SL_FH_HTTP_DESTINATION_EXCEPTION;
        v->permanent = s == 413;
        r = sl_buf_printf(message,
                          "The following response was received from the endpoint destination. "
                          "%ld: ",
                          s);
    }
    if (r < 0) {
        return r;
    }
    return fh_http_quote(message, resp);
}

static int64_t fh_http_env_ms(const char *name, int64_t def)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        return def;
    }
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    return *end == '\0' && n > 0 ? (int64_t)n : def;
}

void sl_fh_http_policy(struct sl_retry_policy *p)
{
    p->base_ms = fh_http_env_ms("SLUICE_RETRY_BASE_MS", FH_DEFAULT_BASE_MS);
    p->max_ms = fh_http_env_ms("SLUICE_RETRY_MAX_MS", FH_DEFAULT_MAX_MS);
    if (p->max_ms < p->base_ms) {
        p->max_ms = p->base_ms;
    }
    p->min_ms = 0;
}

int64_t sl_fh_http_backoff_ms(const struct sl_retry_policy *p, unsigned attempt, uint64_t *rng)
{
    int64_t ceiling = p->base_ms;
    for (unsigned i = 1; i < attempt && ceiling < p->max_ms; i++) {
        ceiling *= 2;
    }
    if (ceiling > p->max_ms) {
        ceiling = p->max_ms;
    }
    /* A factor in [0.85, 1.15], in thousandths. */
    int64_t milli = 850 + (int64_t)(sl_retry_rand(rng) % 301);
    int64_t d = ceiling * milli / 1000;
    return d > 0 ? d : 1;
}

int sl_fh_http_error_lines(const struct sl_fh_http_rec *recs,
                           size_t n,
                           const struct sl_fh_http_result *res,
                           struct sl_buf *out)
{
    size_t start = out->len;
    char id[FH_HTTP_MAX_REQUEST_ID + 32];
    for (size_t i = 0; i < n; i++) {
        const char *data_id = recs[i].data_id;
        if (!data_id) {
            (void)snprintf(id, sizeof id, "%s.%zu", res->request_id ? res->request_id : "", i);
            data_id = id;
        }
        struct sl_s3_error_rec e = {
            .attempts_made = res->attempts,
            .arrival_ms = recs[i].arrival_ms,
            .error_code = res->error_code ? res->error_code : "",
            .error_message = res->error_message,
            .attempt_ending_ms = res->attempt_ending_ms,
            .raw = recs[i].data,
            .raw_len = recs[i].len,
            .data_id = data_id,
        };
        int r = sl_s3_object_error_line(out, &e);
        if (r < 0) {
            sl_buf_truncate(out, start);
            return r;
        }
    }
    return 0;
}
