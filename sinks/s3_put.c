/* SPDX-License-Identifier: Apache-2.0 */
/* s3_put.c: S3 PutObject for delivery streams (s3_put.h). It owns the bucket's address (the
 * endpoint the SDK rules give, path-style for a configured endpoint, virtual-hosted for AWS),
 * the credentials' signer, and the mapping of S3's answers to sluice's errors. It signs each
 * request itself (sigv4.c with the S3 rules: X-Amz-Content-Sha256 of the body, the path encoded
 * once) and hands httpc the signed headers as they are, because httpc's own signing is for the
 * JSON services, which sign no content hash. Loop thread. */
#include "s3_put.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "aws.h"
#include "buf.h"
#include "log.h"
#include "sha256.h"
#include "sigv4.h"
#include "url.h"

#define S3_PUT_DETAIL_MAX 512

struct s3_put_op {
    struct s3_put_op *prev, *next; /* in p->ops until called back */
    struct sl_s3_put *p;
    char *url;
    struct curl_slist *headers;
    sl_s3_put_cb cb;
    void *arg;
};

struct sl_s3_put {
    struct sl_httpc *http;
    const struct sl_clock *clock;
    struct sl_sigv4 *signer; /* NULL: unsigned */
    char *region;
    char *bucket;
    char *base_url;  /* scheme://host[:port][/path]/bucket/ or https://bucket.s3.region.../ */
    char *host;      /* the Host header's value */
    char *base_path; /* base_url's path, "/bucket/" or "/" */
    struct s3_put_op *ops;
    size_t inflight;
};

int sl_s3_put_check(const char *bucket_arn, char *errbuf, size_t errlen)
{
    const char *b = NULL;
    if (strncmp(bucket_arn, "arn:", 4) == 0) {
        const char *part_end = strchr(bucket_arn + 4, ':');
        if (part_end && part_end > bucket_arn + 4 && strncmp(part_end, ":s3:::", 6) == 0) {
            b = part_end + 6;
        }
    }
    size_t n = b ? strlen(b) : 0;
    bool ok = b && n >= 3 && n <= 63;
    for (size_t i = 0; ok && i < n; i++) {
        char c = b[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        ok = alnum || ((c == '.' || c == '-') && i > 0 && i + 1 < n);
    }
    if (!ok) {
        (void)snprintf(errbuf, errlen,
                       "BucketARN '%s': allowed: arn:aws:s3:::BUCKET, BUCKET 3 to 63 characters "
                       "of a-z 0-9 . - starting and ending with a letter or digit",
                       bucket_arn);
        return SL_ECONFIG;
    }
    return 0;
}

/* Splits endpoint into the Host header value and its path (without a trailing '/'). */
static int s3_put_endpoint(struct sl_s3_put *p, const char *endpoint, char *errbuf, size_t errlen)
{
    CURLU *u = curl_url();
    if (!u) {
        return SL_ENOMEM;
    }
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
    int r = 0;
    if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        char shown[SL_URL_REDACTED_MAX];
        (void)snprintf(errbuf, errlen,
                       "S3 endpoint '%s' is not a URL; allowed: http(s)://host[:port]",
                       sl_url_redact(endpoint, shown, sizeof shown));
        r = SL_ECONFIG;
        goto out;
    }
    (void)curl_url_get(u, CURLUPART_PORT, &port, CURLU_NO_DEFAULT_PORT);
    (void)curl_url_get(u, CURLUPART_PATH, &path, 0);
    struct sl_buf b;
    sl_buf_init(&b);
    r = sl_buf_printf(&b, "%s%s%s", host, port ? ":" : "", port ? port : "");
    p->host = r == 0 ? sl_buf_steal(&b) : NULL;
    sl_buf_fini(&b);
    size_t plen = path ? strlen(path) : 0;
    while (plen > 0 && path[plen - 1] == '/') {
        plen--;
    }
    sl_buf_init(&b);
    r = sl_buf_printf(&b, "%.*s/%s/", (int)plen, path ? path : "", p->bucket);
    p->base_path = r == 0 ? sl_buf_steal(&b) : NULL;
    sl_buf_fini(&b);
    sl_buf_init(&b);
    r = sl_buf_printf(&b, "%s://%s%s", scheme, p->host ? p->host : "",
                      p->base_path ? p->base_path : "");
    p->base_url = r == 0 ? sl_buf_steal(&b) : NULL;
    sl_buf_fini(&b);
    if (!p->host || !p->base_path || !p->base_url) {
        r = SL_ENOMEM;
    }
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return r;
}

int sl_s3_put_new(struct sl_httpc *http,
                  const struct sl_clock *clock,
                  const char *bucket_arn,
                  struct sl_s3_put **ret_p,
                  char *errbuf,
                  size_t errlen)
{
    int r = sl_s3_put_check(bucket_arn, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    struct sl_s3_put *p = sl_calloc(1, sizeof *p);
    if (!p) {
        return SL_ENOMEM;
    }
    p->http = http;
    p->clock = clock ? clock : &sl_clock_system;
    p->bucket = sl_strdup(strstr(bucket_arn, ":::") + 3);
    p->region = sl_aws_region();
    if (!p->region) {
        p->region = sl_strdup("us-east-1");
    }
    char *endpoint = sl_aws_endpoint_url("s3");
    if (!p->bucket || !p->region) {
        r = SL_ENOMEM;
        goto fail;
    }
    if (endpoint) {
        r = s3_put_endpoint(p, endpoint, errbuf, errlen);
    } else {
        struct sl_buf b;
        sl_buf_init(&b);
        r = sl_buf_printf(&b, "%s.s3.%s.amazonaws.com", p->bucket, p->region);
        p->host = r == 0 ? sl_buf_steal(&b) : NULL;
        sl_buf_fini(&b);
        sl_buf_init(&b);
        r = sl_buf_printf(&b, "https://%s/", p->host ? p->host : "");
        p->base_url = r == 0 ? sl_buf_steal(&b) : NULL;
        sl_buf_fini(&b);
        p->base_path = sl_strdup("/");
        r = p->host && p->base_url && p->base_path ? 0 : SL_ENOMEM;
    }
    if (r < 0) {
        goto fail;
    }
    struct sl_aws_creds creds;
    char aws_err[256] = "";
    r = sl_aws_creds_load(&creds, aws_err, sizeof aws_err);
    if (r == SL_ENOTFOUND) {
        sl_log_debug("s3_put", p->bucket, "no AWS credentials found; PutObject unsigned");
        r = 0;
    } else if (r == SL_ECONFIG) {
        (void)snprintf(errbuf, errlen, "%s", aws_err);
        goto fail;
    } else if (r == 0) {
        r = sl_sigv4_new(creds.access_key_id, creds.secret_access_key, creds.session_token,
                         &p->signer);
        sl_aws_creds_fini(&creds);
    }
    if (r < 0) {
        goto fail;
    }
    sl_free(endpoint);
    *ret_p = p;
    return 0;
fail:
    sl_free(endpoint);
    sl_s3_put_free(p);
    return r;
}

const char *sl_s3_put_base_url(const struct sl_s3_put *p)
{
    return p->base_url;
}

size_t sl_s3_put_inflight(const struct sl_s3_put *p)
{
    return p->inflight;
}

void sl_s3_put_free(struct sl_s3_put *p)
{
    if (!p) {
        return;
    }
    assert(p->inflight == 0);
    sl_sigv4_free(p->signer);
    sl_free(p->region);
    sl_free(p->bucket);
    sl_free(p->base_url);
    sl_free(p->host);
    sl_free(p->base_path);
    sl_free(p);
}

static void s3_put_op_free(struct s3_put_op *op)
{
    curl_slist_free_all(op->headers); /* may hold a session token: freed at once */
    sl_free(op->url);
    sl_free(op);
}

/* S3's XML error <Code> and <Message>, or a prefix of the body. */
static void s3_put_detail(const struct sl_http_resp *resp, char *out, size_t len)
{
    if (resp->status == 0) {
        (void)snprintf(out, len, "PutObject: %s", resp->curl_error);
        return;
    }
    const char *body = resp->body ? resp->body : "";
    const char *code = strstr(body, "<Code>");
    const char *code_end = code ? strstr(code, "</Code>") : NULL;
    const char *msg = strstr(body, "<Message>");
    const char *msg_end = msg ? strstr(msg, "</Message>") : NULL;
    if (code && code_end) {
        (void)snprintf(out, len, "PutObject: HTTP %ld %.*s: %.*s", resp->status,
                       (int)(code_end - code - 6), code + 6,
                       msg && msg_end ? (int)(msg_end - msg - 9) : 0, msg ? msg + 9 : "");
    } else {
        (void)snprintf(out, len, "PutObject: HTTP %ld %.200s", resp->status, body);
    }
}

static int s3_put_err(const struct sl_http_resp *resp)
{
    if (resp->curl_code == CURLE_ABORTED_BY_CALLBACK) {
        return SL_ECANCELED;
    }
    if (resp->status == 0) {
        return resp->curl_code == CURLE_OPERATION_TIMEDOUT ? SL_ETIMEDOUT : SL_EIO;
    }
    if (resp->status == 200) {
        return 0;
    }
    if (resp->status == 403) {
        return SL_EAUTH;
    }
    if (resp->status == 404) {
        return SL_ENOTFOUND;
    }
    if (resp->status == 503 && resp->body && strstr(resp->body, "<Code>SlowDown</Code>")) {
        return SL_ETHROTTLED;
    }
    return resp->status >= 500 ? SL_EREMOTE : SL_EREJECTED;
}

static void s3_put_done(void *arg, const struct sl_http_resp *resp)
{
    struct s3_put_op *op = arg;
    struct sl_s3_put *p = op->p;
    if (op->prev) {
        op->prev->next = op->next;
    } else {
        p->ops = op->next;
    }
    if (op->next) {
        op->next->prev = op->prev;
    }
    p->inflight--;
    int err = s3_put_err(resp);
    char detail[S3_PUT_DETAIL_MAX] = "";
    if (err) {
        s3_put_detail(resp, detail, sizeof detail);
    }
    sl_s3_put_cb cb = op->cb;
    void *cb_arg = op->arg;
    s3_put_op_free(op);
    cb(cb_arg, err, resp->status, err ? detail : NULL); /* last: the callback may free p */
}

static int s3_put_header(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n) {
        return SL_ENOMEM;
    }
    *l = n;
    return 0;
}

/* The signed header list of one PutObject. */
static int s3_put_headers(
    struct sl_s3_put *p, const char *path, const void *body, size_t len, struct curl_slist **ret_l)
{
    static const char type[] = "application/octet-stream";
    struct sl_buf line;
    sl_buf_init(&line);
    int r = sl_buf_printf(&line, "Host: %s", p->host);
    if (r == 0) {
        r = s3_put_header(ret_l, line.data);
    }
    sl_buf_fini(&line);
    if (r == 0) {
        r = s3_put_header(ret_l, "Content-Type: application/octet-stream");
    }
    if (r < 0 || !p->signer) {
        return r;
    }
    struct sl_sigv4_header h = {"Content-Type", 12, type, sizeof type - 1};
    struct sl_sigv4_req sreq = {
        .method = "PUT",
        .host = p->host,
        .path = path,
        .headers = &h,
        .n_headers = 1,
        .payload = body,
        .payload_len = len,
        .region = p->region,
        .service = "s3",
        .content_sha256 = true,
        .s3 = true,
    };
    struct sl_sigv4_out out;
    sl_sigv4_out_init(&out);
    r = sl_sigv4_sign(p->signer, &sreq, sl_clock_wall_ms(p->clock), &out);
    for (size_t i = 0; i < out.n_lines && r == 0; i++) {
        r = s3_put_header(ret_l, out.lines[i]);
    }
    sl_sigv4_out_fini(&out);
    return r;
}

int sl_s3_put_object(struct sl_s3_put *p,
                     const char *key,
                     const void *body,
                     size_t len,
                     long timeout_ms,
                     sl_s3_put_cb cb,
                     void *arg)
{
    struct s3_put_op *op = sl_calloc(1, sizeof *op);
    if (!op) {
        return SL_ENOMEM;
    }
    op->p = p;
    op->cb = cb;
    op->arg = arg;
    struct sl_buf path, url;
    sl_buf_init(&path);
    sl_buf_init(&url);
    int r = sl_buf_puts(&path, p->base_path);
    if (r == 0) {
        r = sl_aws_uri_encode(&path, key, true);
    }
    if (r == 0) {
        size_t origin = strlen(p->base_url) - strlen(p->base_path);
        r = sl_buf_printf(&url, "%.*s%s", (int)origin, p->base_url, path.data);
    }
    if (r == 0) {
        r = s3_put_headers(p, path.data, body, len, &op->headers);
    }
    if (r == 0) {
        op->url = sl_buf_steal(&url);
        r = op->url ? 0 : SL_ENOMEM;
    }
    sl_buf_fini(&path);
    sl_buf_fini(&url);
    if (r < 0) {
        s3_put_op_free(op);
        return r;
    }
    struct sl_http_req req = {
        .method = "PUT",
        .url = op->url,
        .headers = op->headers,
        .body = body,
        .body_len = len,
        .timeout_ms = timeout_ms,
        .max_response_bytes = 64 * 1024,
    };
    r = sl_httpc_request(p->http, &req, s3_put_done, op);
    if (r < 0) {
        s3_put_op_free(op);
        return r;
    }
    op->next = p->ops;
    if (p->ops) {
        p->ops->prev = op;
    }
    p->ops = op;
    p->inflight++;
    return 0;
}

void sl_s3_put_stop(struct sl_s3_put *p)
{
    for (struct s3_put_op *op = p->ops; op; op = op->next) {
        (void)sl_httpc_cancel(p->http, op);
    }
}
