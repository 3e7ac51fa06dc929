/* SPDX-License-Identifier: Apache-2.0 */
/* function.c: a configured function (its type's ops and state) and the outcome rules shared by
 * the function types. The types themselves live in fn_exec.c, fn_http.c and fn_lambda.c; the
 * decisions about outcomes (retry, back off) live in the mapping. Loop thread. */
#include "function.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "batcher.h"
#include "config.h"
#include "httpc.h"

static const char *const outcome_names[SL_OUTCOME_COUNT] = {
    "success",         "function_error", "throttle",           "service_error",
    "transport_error", "timeout",        "resource_exhausted",
};

const char *sl_outcome_name(enum sl_outcome o)
{
    return (unsigned)o < SL_OUTCOME_COUNT ? outcome_names[o] : "unknown";
}

bool sl_errno_is_resource(int err)
{
    return err == EMFILE || err == ENFILE || err == EAGAIN || err == ENOMEM || err == ENOBUFS;
}

enum sl_outcome sl_outcome_from_spawn_error(int uv_err)
{
    /* libuv's codes are negated errno values on Unix. */
    return uv_err < 0 && sl_errno_is_resource(-uv_err) ? SL_OUTCOME_RESOURCE_EXHAUSTED
                                                       : SL_OUTCOME_FUNCTION_ERROR;
}

enum sl_outcome sl_outcome_from_http_status(long status)
{
    if (status >= 200 && status < 300) {
        return SL_OUTCOME_SUCCESS;
    }
    if (status == 429 || status == 503) {
        return SL_OUTCOME_THROTTLE;
    }
    return SL_OUTCOME_FUNCTION_ERROR;
}

enum sl_outcome sl_outcome_from_lambda(long status, const char *function_error)
{
    if (status >= 200 && status < 300) {
        return function_error ? SL_OUTCOME_FUNCTION_ERROR : SL_OUTCOME_SUCCESS;
    }
    if (status == 429) {
        return SL_OUTCOME_THROTTLE;
    }
    return SL_OUTCOME_SERVICE_ERROR;
}

bool sl_invoke_result_from_transport(const struct sl_http_resp *resp,
                                     struct sl_invoke_result *res,
                                     char *detail,
                                     size_t len)
{
    memset(res, 0, sizeof(*res));
    res->retry_after_ms = -1;
    res->status = (int)resp->status;
    res->detail = detail;
    detail[0] = '\0';
    if (resp->too_large) {
        res->outcome = SL_OUTCOME_FUNCTION_ERROR;
        res->error_type = "Function.ResponseSizeTooLarge";
        (void)snprintf(detail, len, "response larger than %u bytes",
                       SL_FUNCTION_MAX_RESPONSE_BYTES);
    } else if (resp->curl_code == CURLE_ABORTED_BY_CALLBACK) {
        res->outcome = SL_OUTCOME_TRANSPORT_ERROR;
        res->detail = "canceled";
    } else if (resp->curl_code == CURLE_OPERATION_TIMEDOUT && resp->request_sent) {
        /* The function had the event and did not answer in time: AWS's "Task timed out". */
        res->outcome = SL_OUTCOME_TIMEOUT;
        res->error_type = "Unhandled";
        (void)snprintf(detail, len, "%s", resp->curl_error);
    } else if (resp->curl_code != CURLE_OK && resp->socket_errno &&
               sl_errno_is_resource(resp->socket_errno)) {
        res->outcome = SL_OUTCOME_RESOURCE_EXHAUSTED;
        (void)snprintf(detail, len, "cannot open a socket: %s (%s)",
                       uv_strerror(-resp->socket_errno), uv_err_name(-resp->socket_errno));
    } else if (resp->curl_code != CURLE_OK) {
        /* Refused, reset, DNS, TLS, or a timeout before the request went out (connecting). */
        res->outcome = SL_OUTCOME_TRANSPORT_ERROR;
        (void)snprintf(detail, len, "%s", resp->curl_error);
    } else {
        return false;
    }
    return true;
}

void sl_invocation_link(struct sl_invocation **head, struct sl_invocation *inv)
{
    inv->prev = NULL;
    inv->next = *head;
    if (*head) {
        (*head)->prev = inv;
    }
    *head = inv;
}

void sl_invocation_unlink(struct sl_invocation **head, struct sl_invocation *inv)
{
    if (inv->prev) {
        inv->prev->next = inv->next;
    } else {
        *head = inv->next;
    }
    if (inv->next) {
        inv->next->prev = inv->prev;
    }
    inv->prev = inv->next = NULL;
}

void sl_invocation_complete(struct sl_invocation **head,
                            struct sl_invocation *inv,
                            const struct sl_invoke_result *res)
{
    sl_invocation_unlink(head, inv);
    sl_invoke_cb cb = inv->cb;
    void *arg = inv->arg;
    sl_free(inv);
    cb(arg, res);
}

int sl_invocation_send(struct sl_httpc *httpc,
                       struct sl_invocation **head,
                       const struct sl_http_req *req,
                       void (*cb)(void *inv, const struct sl_http_resp *resp),
                       struct sl_invocation *inv)
{
    int r = sl_httpc_request(httpc, req, cb, inv);
    if (r < 0) {
        sl_free(inv);
        return r;
    }
    sl_invocation_link(head, inv);
    return 0;
}

void sl_invocation_cancel_all(struct sl_httpc *httpc, struct sl_invocation *head)
{
    for (struct sl_invocation *inv = head; inv; inv = inv->next) {
        (void)sl_httpc_cancel(httpc, inv);
    }
}

int sl_function_new(const struct sl_function_conf *conf,
                    const struct sl_function_env *env,
                    struct sl_function **ret_fn,
                    char *errbuf,
                    size_t errlen)
{
    const struct sl_function_ops *ops = conf->ops;
    struct sl_function *fn = sl_calloc(1, sizeof(*fn));
    if (!fn) {
        return SL_ENOMEM;
    }
    fn->ops = ops;
    fn->name = sl_strdup(conf->name);
    fn->ctx = sl_calloc(1, ops->ctx_size);
    if (!fn->name || !fn->ctx) {
        sl_free(fn->name);
        sl_free(fn->ctx);
        sl_free(fn);
        return SL_ENOMEM;
    }
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    cJSON *opts = cJSON_Duplicate(conf->json, 1);
    int r = opts ? 0 : SL_ENOMEM;
    if (r == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(opts, "type");
        struct sl_opt_target t = {.table = ops->opts, .base = fn->ctx};
        r = sl_opt_apply(&t, 1, opts, "config", conf->path, &errs);
        cJSON_Delete(opts);
    }
    if (r < 0) {
        snprintf(errbuf, errlen, "%s", errs.n ? errs.items[0] : sl_strerror(r));
    } else {
        r = ops->init(fn->ctx, env, errbuf, errlen);
    }
    sl_errlist_fini(&errs);
    if (r < 0) {
        ops->fini(fn->ctx);
        sl_opt_free(ops->opts, fn->ctx);
        sl_free(fn->ctx);
        sl_free(fn->name);
        sl_free(fn);
        return r;
    }
    fn->timeout_ms = ops->timeout_ms ? ops->timeout_ms(fn->ctx) : 0;
    *ret_fn = fn;
    return 0;
}

int sl_function_invoke(
    struct sl_function *fn, const char *body, size_t body_len, sl_invoke_cb cb, void *arg)
{
    return fn->ops->invoke(fn->ctx, body, body_len, cb, arg);
}

void sl_function_stop(struct sl_function *fn)
{
    if (fn->ops->stop) {
        fn->ops->stop(fn->ctx);
    }
}

int sl_function_encode(struct sl_function *fn,
                       const struct sl_batch_limits *lim,
                       const struct sl_source_ops *ops,
                       void *src_ctx,
                       const struct sl_batch_ref *refs,
                       size_t n,
                       struct sl_buf *body,
                       size_t *ret_n)
{
    if (fn->ops->encode) {
        return fn->ops->encode(fn->ctx, lim, ops, src_ctx, refs, n, body, ret_n);
    }
    return sl_batcher_encode(lim, ops, src_ctx, refs, n, body, ret_n);
}

void sl_function_free(struct sl_function *fn)
{
    if (!fn) {
        return;
    }
    fn->ops->fini(fn->ctx);
    sl_opt_free(fn->ops->opts, fn->ctx);
    sl_free(fn->ctx);
    sl_free(fn->name);
    sl_free(fn);
}

void sl_function_check_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    size_t n = strlen(errbuf);
    if (n + 2 >= errlen) {
        return;
    }
    if (n > 0) {
        errbuf[n++] = '\n';
        errbuf[n] = '\0';
    }
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(errbuf + n, errlen - n, fmt, ap);
    va_end(ap);
}
