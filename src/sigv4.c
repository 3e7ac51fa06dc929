/* SPDX-License-Identifier: Apache-2.0 */
/* sigv4.c: AWS Signature Version 4 of our own, replacing curl's CURLOPT_AWS_SIGV4 (curl 7.88
 * signs removal headers such as "Expect:", does not canonicalise the query, and cannot be
 * checked against AWS's published test vectors; reference/wire.md §3.2). It owns one set of
 * credentials and a small cache of signing keys.
 *
 * Signing follows AWS's four steps: the canonical request (method, canonical URI, canonical
 * query, canonical headers, signed header names, payload hash), the string to sign
 * ("AWS4-HMAC-SHA256", the time, the scope date/region/service/aws4_request, the hash of the
 * canonical request), the signing key (HMAC chain from "AWS4" + secret over date, region,
 * service and "aws4_request") and the signature (HMAC of the string to sign, hex). The signing
 * key changes once a day per region and service, so the last few are cached with their scope;
 * the secret itself is only read on a miss.
 *
 * The time is a parameter: callers pass their clock, which keeps tests on fixed vectors. It
 * never logs. The secret, the session token and derived keys are wiped on free; every buffer
 * that held the token (the canonical request, the header lines) is wiped by
 * sl_sigv4_out_fini. Loop thread, or one thread at a time per signer. */
#include "sigv4.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "alloc.h"
#include "secret.h"
#include "sha256.h"

#define SIGV4_CACHE     4  /* signing keys kept: (date, region, service) triples */
#define SIGV4_SCOPE_MAX 96 /* "YYYYMMDD/region/service" */
#define SIGV4_NAME_MAX  63 /* region and service names */

struct sigv4_key {
    char scope[SIGV4_SCOPE_MAX]; /* "" when unused */
    uint8_t key[SL_SHA256_LEN];
    uint64_t used; /* last use, in signatures made: the oldest is replaced */
};

struct sl_sigv4 {
    char *access_key_id;
    char *secret; /* "AWS4" + the secret access key, as the key derivation starts */
    char *token;  /* or NULL */
    struct sigv4_key cache[SIGV4_CACHE];
    uint64_t uses;
    size_t derivations;
};

int sl_sigv4_new(const char *access_key_id,
                 const char *secret_access_key,
                 const char *session_token,
                 struct sl_sigv4 **ret_s)
{
    if (!access_key_id || !*access_key_id || !secret_access_key || !*secret_access_key) {
        return SL_EINVAL;
    }
    struct sl_sigv4 *s = sl_calloc(1, sizeof(*s));
    if (!s) {
        return SL_ENOMEM;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    s->access_key_id = sl_strdup(access_key_id);
    if (sl_buf_puts(&b, "AWS4") == 0 && sl_buf_puts(&b, secret_access_key) == 0) {
        s->secret = sl_buf_steal(&b);
    } else {
        sl_secret_buf_fini(&b);
    }
    if (session_token && *session_token) {
        s->token = sl_strdup(session_token);
    }
    if (!s->access_key_id || !s->secret || (session_token && *session_token && !s->token)) {
        sl_sigv4_free(s);
        return SL_ENOMEM;
    }
    *ret_s = s;
    return 0;
}

void sl_sigv4_free(struct sl_sigv4 *s)
{
    if (!s) {
        return;
    }
    sl_free(s->access_key_id);
    sl_secret_free(s->secret);
    sl_secret_free(s->token);
    sl_secret_wipe(s, sizeof(*s));
    sl_free(s);
}

size_t sl_sigv4_key_derivations(const struct sl_sigv4 *s)
{
    return s->derivations;
}

void sl_sigv4_out_init(struct sl_sigv4_out *out)
{
    memset(out, 0, sizeof(*out));
    sl_buf_init(&out->text);
    sl_buf_init(&out->canonical);
    sl_buf_init(&out->string_to_sign);
}

void sl_sigv4_out_fini(struct sl_sigv4_out *out)
{
    sl_secret_buf_fini(&out->text);
    sl_secret_buf_fini(&out->canonical);
    sl_secret_buf_fini(&out->string_to_sign);
    memset(out, 0, sizeof(*out));
}

/* ---- encoding ---- */

static bool sigv4_unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.' || ch == '~';
}

static int sigv4_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Appends p[0..n) percent-encoded: unreserved characters as they are, '/' too when keep_slash,
 * everything else %XX in upper-case hex. With decode, %XX escapes in the input are decoded
 * first (a '%' not followed by two hex digits stays a literal '%'). */
static int sigv4_encode(struct sl_buf *b, const char *p, size_t n, bool decode, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (decode && ch == '%' && i + 2 < n && sigv4_hexval(p[i + 1]) >= 0 &&
            sigv4_hexval(p[i + 2]) >= 0) {
            ch = (unsigned char)(sigv4_hexval(p[i + 1]) << 4 | sigv4_hexval(p[i + 2]));
            i += 2;
        }
        int r;
        if (sigv4_unreserved(ch) || (keep_slash && ch == '/')) {
            r = sl_buf_append(b, &ch, 1);
        } else {
            char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            r = sl_buf_append(b, enc, 3);
        }
        if (r < 0) {
            return SL_ENOMEM;
        }
    }
    return 0;
}

/* ---- canonical URI ---- */

struct sigv4_seg {
    const char *p;
    size_t n;
};

/* Appends the canonical URI of path. Not S3: dot segments and empty segments are removed, a
 * trailing '/' is kept, and each segment is encoded as it is (an escape in it is escaped
 * again). S3: the path as it is, decoded and encoded once. */
static int sigv4_canonical_uri(struct sl_buf *b, const char *path, bool s3)
{
    if (!path || !*path) {
        path = "/";
    }
    size_t len = strlen(path);
    if (s3) {
        if (path[0] != '/' && sl_buf_append(b, "/", 1) < 0) {
            return SL_ENOMEM;
        }
        return sigv4_encode(b, path, len, true, true);
    }
    /* Segments kept so far; a path has at most len / 2 + 1 of them. */
    size_t cap = len / 2 + 1;
    struct sigv4_seg *segs = sl_calloc(cap, sizeof(*segs));
    if (!segs) {
        return SL_ENOMEM;
    }
    size_t n = 0;
    const char *p = path;
    const char *end = path + len;
    while (p < end) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *se = slash ? slash : end;
        size_t sl = (size_t)(se - p);
        if (sl == 0 || (sl == 1 && p[0] == '.')) {
            /* empty or ".": dropped */
        } else if (sl == 2 && p[0] == '.' && p[1] == '.') {
            if (n) {
                n--;
            }
        } else {
            assert(n < cap);
            segs[n].p = p;
            segs[n].n = sl;
            n++;
        }
        p = slash ? slash + 1 : end;
    }
    bool trailing = len > 1 && path[len - 1] == '/';
    int r = sl_buf_append(b, "/", 1);
    for (size_t i = 0; i < n && r == 0; i++) {
        if (i) {
            r = sl_buf_append(b, "/", 1);
        }
        if (r == 0) {
            r = sigv4_encode(b, segs[i].p, segs[i].n, false, false);
        }
    }
    if (r == 0 && trailing && n) {
        r = sl_buf_append(b, "/", 1);
    }
    sl_free(segs);
    return r < 0 ? SL_ENOMEM : 0;
}

/* ---- canonical query ---- */

struct sigv4_param {
    size_t name_off; /* into the scratch buffer, NUL-terminated (it may move while filled) */
    size_t value_off;
    const char *name; /* set from the offsets once the scratch buffer is complete */
    const char *value;
};

static int sigv4_param_cmp(const void *va, const void *vb)
{
    const struct sigv4_param *a = va;
    const struct sigv4_param *b = vb;
    int c = strcmp(a->name, b->name);
    if (c) {
        return c;
    }
    return strcmp(a->value, b->value);
}

/* Appends the canonical query of query ("a=1&b=2" as sent). */
static int sigv4_canonical_query(struct sl_buf *b, const char *query)
{
    if (!query || !*query) {
        return 0;
    }
    size_t qlen = strlen(query);
    size_t cap = qlen / 2 + 1; /* parameters are separated by '&' */
    struct sigv4_param *params = sl_calloc(cap, sizeof(*params));
    if (!params) {
        return SL_ENOMEM;
    }
    struct sl_buf scratch;
    sl_buf_init(&scratch);
    size_t n = 0;
    int r = 0;
    const char *p = query;
    const char *end = query + qlen;
    while (p < end && r == 0) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        if (pe > p) {
            const char *eq = memchr(p, '=', (size_t)(pe - p));
            const char *ne = eq ? eq : pe;
            assert(n < cap);
            params[n].name_off = scratch.len;
            r = sigv4_encode(&scratch, p, (size_t)(ne - p), true, false);
            r = r ? r : sl_buf_append(&scratch, "", 1);
            params[n].value_off = scratch.len;
            if (r == 0 && eq) {
                r = sigv4_encode(&scratch, eq + 1, (size_t)(pe - eq - 1), true, false);
            }
            r = r ? r : sl_buf_append(&scratch, "", 1);
            n++;
        }
        p = amp ? amp + 1 : end;
    }
    if (r == 0 && n) {
        for (size_t i = 0; i < n; i++) {
            params[i].name = scratch.data + params[i].name_off;
            params[i].value = scratch.data + params[i].value_off;
        }
        qsort(params, n, sizeof(*params), sigv4_param_cmp);
    }
    for (size_t i = 0; i < n && r == 0; i++) {
        if (i) {
            r = sl_buf_append(b, "&", 1);
        }
        r = r ? r : sl_buf_puts(b, params[i].name);
        r = r ? r : sl_buf_append(b, "=", 1);
        r = r ? r : sl_buf_puts(b, params[i].value);
    }
    sl_buf_fini(&scratch);
    sl_free(params);
    return r < 0 ? SL_ENOMEM : 0;
}

/* ---- canonical headers ---- */

struct sigv4_hdr {
    char name[64]; /* lower case; longer names cannot be signed (SL_EINVAL) */
    const char *value;
    size_t value_len;
    size_t order; /* position in the request: repeated names keep their order */
};

static int sigv4_hdr_cmp(const void *va, const void *vb)
{
    const struct sigv4_hdr *a = va;
    const struct sigv4_hdr *b = vb;
    int c = strcmp(a->name, b->name);
    if (c) {
        return c;
    }
    return a->order < b->order ? -1 : a->order > b->order;
}

static bool sigv4_is_token_char(unsigned char ch)
{
    return ch > ' ' && ch < 127 && !strchr("\"(),/:;<=>?@[\\]{}", ch);
}

/* Fills h from name/value; lower-cases the name. Returns 0 or SL_EINVAL. */
static int
sigv4_hdr_set(struct sigv4_hdr *h, const char *name, size_t nlen, const char *v, size_t vlen)
{
    if (nlen == 0 || nlen >= sizeof(h->name)) {
        return SL_EINVAL;
    }
    for (size_t i = 0; i < nlen; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (!sigv4_is_token_char(ch)) {
            return SL_EINVAL;
        }
        h->name[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
    }
    h->name[nlen] = '\0';
    for (size_t i = 0; i < vlen; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '\r' || ch == '\n' || ch == '\0') {
            return SL_EINVAL;
        }
    }
    h->value = v;
    h->value_len = vlen;
    return 0;
}

/* Appends v trimmed, with inner runs of spaces and tabs as one space. */
static int sigv4_put_value(struct sl_buf *b, const char *v, size_t n)
{
    size_t i = 0;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) {
        n--;
    }
    while (i < n && (v[i] == ' ' || v[i] == '\t')) {
        i++;
    }
    while (i < n) {
        size_t start = i;
        while (i < n && v[i] != ' ' && v[i] != '\t') {
            i++;
        }
        if (sl_buf_append(b, v + start, i - start) < 0) {
            return SL_ENOMEM;
        }
        if (i < n) {
            while (i < n && (v[i] == ' ' || v[i] == '\t')) {
                i++;
            }
            if (sl_buf_append(b, " ", 1) < 0) {
                return SL_ENOMEM;
            }
        }
    }
    return 0;
}

static bool sigv4_is_own_header(const char *lname)
{
    return strcmp(lname, "host") == 0 || strcmp(lname, "authorization") == 0 ||
           strcmp(lname, "x-amz-date") == 0 || strcmp(lname, "x-amz-security-token") == 0 ||
           strcmp(lname, "x-amz-content-sha256") == 0;
}

static bool sigv4_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > SIGV4_NAME_MAX) {
        return false;
    }
    for (; *s; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-')) {
            return false;
        }
    }
    return true;
}

/* ---- the signing key ---- */

/* Returns the signing key of scope "date/region/service", from the cache or derived. */
static const uint8_t *sigv4_key(struct sl_sigv4 *s,
                                const char *scope,
                                const char *date,
                                const char *region,
                                const char *service)
{
    s->uses++;
    struct sigv4_key *slot = &s->cache[0];
    for (size_t i = 0; i < SIGV4_CACHE; i++) {
        struct sigv4_key *k = &s->cache[i];
        if (k->scope[0] && strcmp(k->scope, scope) == 0) {
            k->used = s->uses;
            return k->key;
        }
        if (k->used < slot->used) {
            slot = k;
        }
    }
    uint8_t a[SL_SHA256_LEN], b[SL_SHA256_LEN];
    sl_hmac_sha256(s->secret, strlen(s->secret), date, strlen(date), a);
    sl_hmac_sha256(a, sizeof(a), region, strlen(region), b);
    sl_hmac_sha256(b, sizeof(b), service, strlen(service), a);
    sl_hmac_sha256(a, sizeof(a), "aws4_request", 12, slot->key);
    sl_secret_wipe(a, sizeof(a));
    sl_secret_wipe(b, sizeof(b));
    (void)snprintf(slot->scope, sizeof(slot->scope), "%s", scope);
    slot->used = s->uses;
    s->derivations++;
    return slot->key;
}

/* ---- signing ---- */

static int sigv4_time(int64_t wall_ms, char amz_date[17])
{
    int64_t secs = wall_ms / 1000;
    if (wall_ms < 0 || secs > 253402300799LL) { /* 9999-12-31T23:59:59Z */
        return SL_EINVAL;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        return SL_EINVAL;
    }
    if (strftime(amz_date, 17, "%Y%m%dT%H%M%SZ", &tm) != 16) {
        return SL_EINVAL;
    }
    return 0;
}

static int sigv4_line(struct sl_sigv4_out *out, size_t *offs, const char *name, const char *value)
{
    assert(out->n_lines < SL_SIGV4_MAX_LINES);
    offs[out->n_lines++] = out->text.len;
    int r = sl_buf_puts(&out->text, name);
    r = r ? r : sl_buf_puts(&out->text, ": ");
    r = r ? r : sl_buf_puts(&out->text, value);
    r = r ? r : sl_buf_append(&out->text, "", 1);
    return r;
}

int sl_sigv4_sign(struct sl_sigv4 *s,
                  const struct sl_sigv4_req *req,
                  int64_t wall_ms,
                  struct sl_sigv4_out *out)
{
    sl_secret_buf_fini(&out->text);
    sl_secret_buf_fini(&out->canonical);
    sl_secret_buf_fini(&out->string_to_sign);
    sl_sigv4_out_init(out);
    if (!sigv4_name_ok(req->region) || !sigv4_name_ok(req->service) || !req->method ||
        !*req->method || !req->host || !*req->host || req->n_headers > SL_SIGV4_MAX_HEADERS) {
        return SL_EINVAL;
    }
    for (const char *m = req->method; *m; m++) {
        if (!sigv4_is_token_char((unsigned char)*m)) {
            return SL_EINVAL;
        }
    }
    int r = sigv4_time(wall_ms, out->amz_date);
    if (r < 0) {
        return r;
    }
    if (req->payload_hash) {
        if (strlen(req->payload_hash) >= sizeof(out->payload_hash) ||
            strpbrk(req->payload_hash, "\r\n")) {
            return SL_EINVAL;
        }
        (void)snprintf(out->payload_hash, sizeof(out->payload_hash), "%s", req->payload_hash);
    } else {
        uint8_t d[SL_SHA256_LEN];
        sl_sha256(req->payload, req->payload_len, d);
        sl_sha256_hex(d, sizeof(d), out->payload_hash);
    }

    /* The headers: the caller's, then ours. */
    struct sigv4_hdr hs[SL_SIGV4_MAX_HEADERS + 4];
    size_t n = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct sl_sigv4_header *h = &req->headers[i];
        r = sigv4_hdr_set(&hs[n], h->name, h->name_len, h->value, h->value_len);
        if (r < 0) {
            return r;
        }
        if (sigv4_is_own_header(hs[n].name)) {
            continue;
        }
        hs[n].order = n;
        n++;
    }
    r = sigv4_hdr_set(&hs[n], "host", 4, req->host, strlen(req->host));
    if (r < 0) {
        return r;
    }
    hs[n].order = n;
    n++;
    (void)sigv4_hdr_set(&hs[n], "x-amz-date", 10, out->amz_date, 16);
    hs[n].order = n;
    n++;
    if (s->token) {
        r = sigv4_hdr_set(&hs[n], "x-amz-security-token", 20, s->token, strlen(s->token));
        if (r < 0) {
            return r;
        }
        hs[n].order = n;
        n++;
    }
    if (req->content_sha256) {
        (void)sigv4_hdr_set(&hs[n], "x-amz-content-sha256", 20, out->payload_hash,
                            strlen(out->payload_hash));
        hs[n].order = n;
        n++;
    }
    qsort(hs, n, sizeof(hs[0]), sigv4_hdr_cmp);

    /* The canonical request. */
    struct sl_buf *c = &out->canonical;
    struct sl_buf signed_names;
    sl_buf_init(&signed_names);
    r = sl_buf_puts(c, req->method);
    r = r ? r : sl_buf_append(c, "\n", 1);
    r = r ? r : sigv4_canonical_uri(c, req->path, req->s3);
    r = r ? r : sl_buf_append(c, "\n", 1);
    r = r ? r : sigv4_canonical_query(c, req->query);
    r = r ? r : sl_buf_append(c, "\n", 1);
    for (size_t i = 0; i < n && r == 0; i++) {
        bool repeat = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
        bool last = i + 1 == n || strcmp(hs[i].name, hs[i + 1].name) != 0;
        if (!repeat) {
            r = sl_buf_puts(c, hs[i].name);
            r = r ? r : sl_buf_append(c, ":", 1);
            if (r == 0 && signed_names.len) {
                r = sl_buf_append(&signed_names, ";", 1);
            }
            r = r ? r : sl_buf_puts(&signed_names, hs[i].name);
        } else {
            r = sl_buf_append(c, ",", 1);
        }
        r = r ? r : sigv4_put_value(c, hs[i].value, hs[i].value_len);
        if (r == 0 && last) {
            r = sl_buf_append(c, "\n", 1);
        }
    }
    r = r ? r : sl_buf_append(c, "\n", 1);
    r = r ? r : sl_buf_append(c, signed_names.data, signed_names.len);
    r = r ? r : sl_buf_append(c, "\n", 1);
    r = r ? r : sl_buf_puts(c, out->payload_hash);
    if (r < 0) {
        sl_buf_fini(&signed_names);
        return SL_ENOMEM;
    }

    /* The string to sign. */
    char date[9];
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';
    char scope[SIGV4_SCOPE_MAX];
    (void)snprintf(scope, sizeof(scope), "%s/%s/%s", date, req->region, req->service);
    uint8_t d[SL_SHA256_LEN];
    char hex[2 * SL_SHA256_LEN + 1];
    sl_sha256(c->data, c->len, d);
    sl_sha256_hex(d, sizeof(d), hex);
    struct sl_buf *sts = &out->string_to_sign; /* appended, not printf'd: signed per request */
    r = sl_buf_puts(sts, "AWS4-HMAC-SHA256\n");
    r = r ? r : sl_buf_puts(sts, out->amz_date);
    r = r ? r : sl_buf_append(sts, "\n", 1);
    r = r ? r : sl_buf_puts(sts, scope);
    r = r ? r : sl_buf_puts(sts, "/aws4_request\n");
    r = r ? r : sl_buf_puts(sts, hex);
    if (r < 0) {
        sl_buf_fini(&signed_names);
        return SL_ENOMEM;
    }

    /* The signature and the header lines. */
    const uint8_t *key = sigv4_key(s, scope, date, req->region, req->service);
    sl_hmac_sha256(key, SL_SHA256_LEN, out->string_to_sign.data, out->string_to_sign.len, d);
    sl_sha256_hex(d, sizeof(d), hex);
    size_t offs[SL_SIGV4_MAX_LINES];
    r = sigv4_line(out, offs, "X-Amz-Date", out->amz_date);
    if (r == 0 && s->token) {
        r = sigv4_line(out, offs, "X-Amz-Security-Token", s->token);
    }
    if (r == 0 && req->content_sha256) {
        r = sigv4_line(out, offs, "X-Amz-Content-Sha256", out->payload_hash);
    }
    size_t auth_off = 0;
    if (r == 0) {
        offs[out->n_lines++] = out->text.len;
        auth_off = out->text.len + strlen("Authorization: ");
        struct sl_buf *t = &out->text;
        r = sl_buf_puts(t, "Authorization: AWS4-HMAC-SHA256 Credential=");
        r = r ? r : sl_buf_puts(t, s->access_key_id);
        r = r ? r : sl_buf_append(t, "/", 1);
        r = r ? r : sl_buf_puts(t, scope);
        r = r ? r : sl_buf_puts(t, "/aws4_request, SignedHeaders=");
        r = r ? r : sl_buf_append(t, signed_names.data, signed_names.len);
        r = r ? r : sl_buf_puts(t, ", Signature=");
        r = r ? r : sl_buf_puts(t, hex);
    }
    sl_buf_fini(&signed_names);
    if (r < 0) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < out->n_lines; i++) {
        out->lines[i] = out->text.data + offs[i];
    }
    out->authorization = out->text.data + auth_off;
    return 0;
}
