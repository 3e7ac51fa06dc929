/* SPDX-License-Identifier: Apache-2.0 */
/* httpc_req.c: the header list of one request, and its AWS signature. It owns what httpc.c's
 * transfers send as headers when the caller's list cannot go to curl as it is: a signed request,
 * or a body large enough that curl would wait for "100 Continue". It is apart from httpc.c
 * because it needs only the request and the signer's clock (no curl handle, no loop): it reads
 * a struct sl_http_req and returns a curl_slist, and calls nothing in httpc.c.
 *
 * AWS requests are signed here with our own SigV4 signer (sigv4.c), not curl's
 * CURLOPT_AWS_SIGV4 (whose 7.88 bugs are in reference/wire.md §3.2). httpc.c asks for the list
 * just before the easy handle gets its headers, so that what is signed is exactly what curl
 * sends: an explicit Host (with a non-default port), an explicit Content-Type for a body, the
 * caller's headers, never a removal such as "Expect:" (removals are not sent, so not signed),
 * and the body hashed from the POSTFIELDS buffer. Headers curl adds on its own (User-Agent,
 * Accept, Content-Length, Expect) stay unsigned, which AWS allows. A signed list may hold a
 * session token, so it is wiped when freed. Does not log. Loop thread only. */
#include "httpc_req.h"

#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "buf.h"
#include "secret.h"

void sl_httpc_req_headers_free(struct curl_slist *l)
{
    for (struct curl_slist *it = l; it; it = it->next) {
        sl_secret_wipe(it->data, strlen(it->data));
    }
    curl_slist_free_all(l);
}

static int req_add_header(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);
    if (!n) {
        return SL_ENOMEM;
    }
    *l = n;
    return 0;
}

/* One line of a curl header list, as curl reads it: "Name: value" is sent; "Name:" with nothing
 * after the colon removes a header curl would add and is not sent; "Name;" sends the header
 * with an empty value. */
struct httpc_hline {
    const char *name;
    size_t name_len;
    const char *value; /* up to the end of the line */
    bool sent;
};

static void httpc_hline_parse(const char *line, struct httpc_hline *ret)
{
    const char *colon = strchr(line, ':');
    const char *v;
    memset(ret, 0, sizeof(*ret));
    ret->name = line;
    if (colon) {
        ret->name_len = (size_t)(colon - line);
        v = colon + 1;
        while (*v == ' ' || *v == '\t') {
            v++;
        }
        ret->value = v;
        ret->sent = *v != '\0';
        return;
    }
    const char *semi = strchr(line, ';');
    ret->name_len = semi ? (size_t)(semi - line) : strlen(line);
    v = semi ? semi + 1 : "";
    while (*v == ' ' || *v == '\t') {
        v++;
    }
    ret->value = "";
    ret->sent = semi && *v == '\0';
}

static bool httpc_hline_is(const struct httpc_hline *hl, const char *name)
{
    return hl->name_len == strlen(name) && strncasecmp(hl->name, name, hl->name_len) == 0;
}

/* The header names the signer owns: a caller's line under one of them is dropped. */
static bool httpc_hline_is_signers(const struct httpc_hline *hl)
{
    static const char *const own[] = {"Host", "Authorization", "X-Amz-Date", "X-Amz-Security-Token",
                                      "X-Amz-Content-Sha256"};
    for (size_t i = 0; i < SL_ARRAY_LEN(own); i++) {
        if (httpc_hline_is(hl, own[i])) {
            return true;
        }
    }
    return false;
}

/* The Host header curl would send for url: the host, with ":port" unless the port is the
 * scheme's default. Appended to b. */
static int httpc_host_value(const char *url, struct sl_buf *b, char **ret_path, char **ret_query)
{
    CURLU *u = curl_url();
    if (!u) {
        return SL_ENOMEM;
    }
    char *host = NULL, *port = NULL, *scheme = NULL, *path = NULL, *query = NULL;
    int r = SL_EINVAL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
    if (uc == CURLUE_OUT_OF_MEMORY) {
        r = SL_ENOMEM;
    }
    if (uc != CURLUE_OK || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        goto out;
    }
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0);   /* none: the default */
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0); /* none: no query */
    bool default_port = !port || (strcasecmp(scheme, "http") == 0 && strcmp(port, "80") == 0) ||
                        (strcasecmp(scheme, "https") == 0 && strcmp(port, "443") == 0);
    r = sl_buf_puts(b, host);
    if (r == 0 && !default_port) {
        r = sl_buf_printf(b, ":%s", port);
    }
    if (r == 0) {
        *ret_path = sl_strdup(path);
        *ret_query = query ? sl_strdup(query) : NULL;
        if (!*ret_path || (query && !*ret_query)) {
            sl_free(*ret_path);
            sl_free(*ret_query);
            r = SL_ENOMEM;
        }
    }
out:
    curl_free(host);
    curl_free(port);
    curl_free(scheme);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return r;
}

int sl_httpc_req_headers(const struct sl_http_req *req,
                         const char *method,
                         bool has_body,
                         bool drop_expect,
                         struct curl_slist **ret_list)
{
    bool sign = req->aws_signer != NULL;
    struct sl_sigv4_header sh[SL_SIGV4_MAX_HEADERS + 1];
    size_t n_sh = 0;
    bool has_type = false;
    struct curl_slist *l = NULL;
    struct sl_buf host;
    sl_buf_init(&host);
    char *path = NULL, *query = NULL;
    struct sl_sigv4_out out;
    sl_sigv4_out_init(&out);
    int r = 0;
    for (const struct curl_slist *it = req->headers; it && r == 0; it = it->next) {
        struct httpc_hline hl;
        httpc_hline_parse(it->data, &hl);
        if (httpc_hline_is(&hl, "Expect") && drop_expect) {
            continue;
        }
        if (httpc_hline_is(&hl, "Content-Type")) {
            has_type = true; /* sent, or removed on purpose */
        }
        if (sign && httpc_hline_is_signers(&hl)) {
            continue;
        }
        if (sign && hl.sent) {
            if (n_sh == SL_SIGV4_MAX_HEADERS) {
                r = SL_EINVAL;
                break;
            }
            sh[n_sh++] = (struct sl_sigv4_header){hl.name, hl.name_len, hl.value, strlen(hl.value)};
        }
        r = req_add_header(&l, it->data);
    }
    if (r == 0 && sign) {
        static const char form[] = "Content-Type: application/x-www-form-urlencoded";
        if (has_body && !has_type) {
            sh[n_sh++] = (struct sl_sigv4_header){"Content-Type", 12, form + 14, strlen(form + 14)};
            r = req_add_header(&l, form);
        }
        r = r ? r : httpc_host_value(req->url, &host, &path, &query);
        const struct sl_clock *clock = req->aws_clock ? req->aws_clock : &sl_clock_system;
        struct sl_sigv4_req sreq = {
            .method = method,
            .host = host.data,
            .path = path,
            .query = query,
            .headers = sh,
            .n_headers = n_sh,
            .payload = req->body,
            .payload_len = req->body ? req->body_len : 0,
            .region = req->aws_region,
            .service = req->aws_service,
        };
        r = r ? r : sl_sigv4_sign(req->aws_signer, &sreq, sl_clock_wall_ms(clock), &out);
        if (r == 0) {
            struct sl_buf line;
            sl_buf_init(&line);
            r = sl_buf_printf(&line, "Host: %s", host.data);
            r = r ? r : req_add_header(&l, line.data);
            sl_buf_fini(&line);
        }
        for (size_t i = 0; i < out.n_lines && r == 0; i++) {
            r = req_add_header(&l, out.lines[i]);
        }
    }
    if (r == 0 && drop_expect) {
        r = req_add_header(&l, "Expect:");
    }
    sl_sigv4_out_fini(&out);
    sl_buf_fini(&host);
    sl_free(path);
    sl_free(query);
    if (r < 0) {
        sl_httpc_req_headers_free(l);
        return r;
    }
    *ret_list = l;
    return 0;
}
