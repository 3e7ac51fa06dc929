/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_HTTPC_REQ_H
#define SL_HTTPC_REQ_H

#include <stdbool.h>

#include <curl/curl.h>

#include "err.h"
#include "httpc.h"

/* The header list httpc.c hands to curl for a request whose own list cannot go as it is (see
 * httpc_req.c). Only httpc.c includes this header. Loop thread. */

/* Builds the header list for req, sent with method (has_body: it carries POSTFIELDS): the
 * caller's lines less "Expect:" lines when drop_expect, then, when req has an aws_signer, the
 * signed headers (see struct sl_http_req), then "Expect:" when drop_expect, so that a large POST
 * goes out at once instead of waiting for "100 Continue". A removal is never signed: it is not
 * sent. Returns 0 with *ret_list owned by the caller (free it with sl_httpc_req_headers_free),
 * or SL_ENOMEM, or SL_EINVAL (a URL that does not parse, more headers than the signer takes, a
 * signer error); *ret_list is untouched on failure. */
SL_NODISCARD int sl_httpc_req_headers(const struct sl_http_req *req,
                                      const char *method,
                                      bool has_body,
                                      bool drop_expect,
                                      struct curl_slist **ret_list);

/* Frees a list from sl_httpc_req_headers, wiping each line first (a signed list may hold a
 * session token). NULL is a no-op. */
void sl_httpc_req_headers_free(struct curl_slist *l);

#endif
