/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_FUNCTION_H
#define SL_FUNCTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "clock.h"
#include "err.h"
#include "opt.h"

struct sl_httpc;
struct sl_function_conf;
struct sl_batch_limits;
struct sl_batch_ref;
struct sl_buf;
struct sl_source_ops;

#define SL_FUNCTION_ABI 1u

/* The largest response a function may return (Lambda's synchronous limit, 6 MB). A larger one
 * is a function error. */
#define SL_FUNCTION_MAX_RESPONSE_BYTES (6u * 1024u * 1024u)

/* What happened to one invocation. Only the invoker decides what to do about it: function
 * errors and timeouts are the function's fault and count toward MaximumRetryAttempts; the
 * others say nothing about the function and are retried without counting. */
enum sl_outcome {
    SL_OUTCOME_SUCCESS,         /* the function ran and returned */
    SL_OUTCOME_FUNCTION_ERROR,  /* it ran and failed (error marker, bad exit, oversized reply,
                                   a program that cannot be run) */
    SL_OUTCOME_THROTTLE,        /* it was not run: too many requests (429, 503 for http) */
    SL_OUTCOME_SERVICE_ERROR,   /* it was not run: the service failed (5xx, 4xx other than 429) */
    SL_OUTCOME_TRANSPORT_ERROR, /* no answer: connection refused, reset, DNS, TLS, a connect
                                   that timed out; or canceled */
    SL_OUTCOME_TIMEOUT,         /* it got the event and ran past its timeout (AWS: "Task timed
                                   out", a function error) */
    SL_OUTCOME_RESOURCE_EXHAUSTED, /* sluice itself could not start it: out of descriptors,
                                      processes or memory (EMFILE, ENFILE, EAGAIN, ENOMEM) */
    SL_OUTCOME_COUNT
};

/* "success", "function_error", ... */
const char *sl_outcome_name(enum sl_outcome o);

/* The result of one invocation; borrowed for the duration of the callback. */
struct sl_invoke_result {
    enum sl_outcome outcome;
    int status;       /* HTTP status, or exit status; -N for death by signal N; 0 n/a */
    const char *body; /* response body (NUL-terminated) or NULL */
    size_t body_len;
    const char *error_type; /* X-Amz-Function-Error, "Function.ResponseSizeTooLarge", ... */
    const char *detail;     /* short human text for logs (never a secret) */
    int64_t retry_after_ms; /* from Retry-After, or -1 */
};

typedef void (*sl_invoke_cb)(void *arg, const struct sl_invoke_result *res);

struct sl_function_env {
    uv_loop_t *loop;
    struct sl_httpc *httpc; /* shared HTTP client on the loop */
    const struct sl_clock *clock;
    const char *name; /* the function's name in the config, for logs */
    const char *region;
};

/* A function type: exec, http, lambda. The core callocs ctx_size bytes and applies the type's
 * options from the function's JSON object (minus "type") into ctx. Loop thread. */
struct sl_function_ops {
    uint32_t abi;              /* SL_FUNCTION_ABI */
    const char *name;          /* "exec", "http", "lambda": the "type" value */
    const struct sl_opt *opts; /* {0}-ended */
    size_t ctx_size;
    /* Checks the applied options beyond the table (URL shape, command not empty, cwd is a
     * directory). Returns 0 or SL_ECONFIG with errbuf filled: one problem per line, each starting
     * with its key ("url: ...", "headers.Host: ...") so the config gives it its JSON path. No I/O
     * beyond stat(2). */
    int (*check)(void *ctx, char *errbuf, size_t errlen);
    int (*init)(void *ctx, const struct sl_function_env *env, char *errbuf, size_t errlen);
    /* Starts one invocation with body (borrowed until cb). Returns 0 (cb will be called exactly
     * once, never from inside invoke) or a negative error (cb is never called). */
    int (*invoke)(void *ctx, const char *body, size_t body_len, sl_invoke_cb cb, void *arg);
    /* Cancels every invocation in flight; each still gets its callback, with
     * SL_OUTCOME_TRANSPORT_ERROR and detail "canceled". May be NULL. */
    void (*stop)(void *ctx);
    /* Frees ctx's contents; nothing may be in flight. Safe after a failed init. */
    void (*fini)(void *ctx);
    /* How long one invocation may run (its configured timeout, ms), read once after init: a
     * queue's leases are held that long past an invocation's start. May be NULL: unknown. */
    int64_t (*timeout_ms)(const void *ctx);
    /* A function that takes records rather than an event (a delivery stream, stream_feed.c):
     * writes the records refs lists into body in its own form, under sl_batcher_encode's
     * contract (body cleared first; stops before a record that would pass lim->max_bytes or
     * that the function cannot take; *ret_n encoded, 0 when the first cannot go on its own,
     * which the mapping hands to the on-failure path as too large). ops and src_ctx are the
     * batch's source. May be NULL: the source's event (sl_batcher_encode). */
    int (*encode)(void *ctx,
                  const struct sl_batch_limits *lim,
                  const struct sl_source_ops *ops,
                  void *src_ctx,
                  const struct sl_batch_ref *refs,
                  size_t n,
                  struct sl_buf *body,
                  size_t *ret_n);
};

/* For check(): appends one problem to errbuf as a line of its own ("key: why"), after the
 * problems already there; what does not fit is left out. */
void sl_function_check_err(char *errbuf, size_t errlen, const char *fmt, ...) SL_PRINTF(3, 4);

extern const struct sl_function_ops sl_function_exec;
extern const struct sl_function_ops sl_function_http;
extern const struct sl_function_ops sl_function_lambda;

/* Returns the function type called name, or NULL. */
const struct sl_function_ops *sl_function_type(const char *name);
const struct sl_function_ops *const *sl_function_types(size_t *ret_n);

/* A configured function: its type and its state. */
struct sl_function {
    const struct sl_function_ops *ops;
    void *ctx;
    char *name;
    int64_t timeout_ms; /* how long one invocation may run; 0: unknown */
};

/* Creates and inits the function described by conf. Returns 0 and *ret_fn, SL_ECONFIG (errbuf
 * filled) or SL_ENOMEM. */
SL_NODISCARD int sl_function_new(const struct sl_function_conf *conf,
                                 const struct sl_function_env *env,
                                 struct sl_function **ret_fn,
                                 char *errbuf,
                                 size_t errlen);
SL_NODISCARD int sl_function_invoke(
    struct sl_function *fn, const char *body, size_t body_len, sl_invoke_cb cb, void *arg);
void sl_function_stop(struct sl_function *fn);
/* Writes what fn is invoked with for a batch's records: ops->encode, else the source's event
 * (sl_batcher_encode). Returns 0 or SL_ENOMEM. */
SL_NODISCARD int sl_function_encode(struct sl_function *fn,
                                    const struct sl_batch_limits *lim,
                                    const struct sl_source_ops *ops,
                                    void *src_ctx,
                                    const struct sl_batch_ref *refs,
                                    size_t n,
                                    struct sl_buf *body,
                                    size_t *ret_n);
/* Frees fn; nothing may be in flight. */
void sl_function_free(struct sl_function *fn);

/* An invocation a function type has in flight, on its list so that stop() can reach it.
 * Function types embed it first in their own per-invocation record. */
struct sl_invocation {
    struct sl_invocation *prev;
    struct sl_invocation *next;
    sl_invoke_cb cb;
    void *arg;
};

/* Puts inv at the head of the list *head / takes it off. */
void sl_invocation_link(struct sl_invocation **head, struct sl_invocation *inv);
void sl_invocation_unlink(struct sl_invocation **head, struct sl_invocation *inv);
/* Ends inv: takes it off the list, frees its record (inv must be the first member of a record
 * from sl_malloc & co) and calls its callback with res. */
void sl_invocation_complete(struct sl_invocation **head,
                            struct sl_invocation *inv,
                            const struct sl_invoke_result *res);

struct sl_http_req;
struct sl_http_resp;

/* For the HTTP-based types: sends req through httpc, inv's record being the request's
 * argument (cb gets it back), and links inv into *head. When the request cannot start, frees
 * inv's record and returns the error; else 0. */
SL_NODISCARD int sl_invocation_send(struct sl_httpc *httpc,
                                    struct sl_invocation **head,
                                    const struct sl_http_req *req,
                                    void (*cb)(void *inv, const struct sl_http_resp *resp),
                                    struct sl_invocation *inv);
/* Cancels every HTTP request on the list head (each still ends through its callback). */
void sl_invocation_cancel_all(struct sl_httpc *httpc, struct sl_invocation *head);

/* Starts the result of an HTTP-based invocation from curl's answer: status, no retry-after,
 * detail pointing at detail (len bytes). When there is no HTTP answer to classify (a body over
 * SL_FUNCTION_MAX_RESPONSE_BYTES, a cancel, a timeout, a transport error) it fills the outcome
 * and detail and returns true; otherwise it returns false and the caller classifies the answer.
 * A timeout after the request went out is the function's (SL_OUTCOME_TIMEOUT, "Unhandled"); one
 * before (DNS, TCP or TLS too slow) is a transport error, and a socket sluice could not create
 * for lack of descriptors is SL_OUTCOME_RESOURCE_EXHAUSTED. */
bool sl_invoke_result_from_transport(const struct sl_http_resp *resp,
                                     struct sl_invoke_result *res,
                                     char *detail,
                                     size_t len);

/* Classifies a failed uv_spawn (a libuv error code): sluice's own resources running out
 * (UV_EMFILE, UV_ENFILE, UV_EAGAIN, UV_ENOMEM, UV_ENOBUFS) is SL_OUTCOME_RESOURCE_EXHAUSTED;
 * anything else (no such program, not executable, a bad cwd) is the function's fault,
 * SL_OUTCOME_FUNCTION_ERROR. */
enum sl_outcome sl_outcome_from_spawn_error(int uv_err);

/* True for an errno value that means sluice ran out of a local resource (EMFILE, ENFILE,
 * EAGAIN, ENOMEM, ENOBUFS). */
bool sl_errno_is_resource(int err);

/* Classifies an HTTP answer the way the http function type does: 2xx success, 429 and 503
 * throttle, anything else a function error. */
enum sl_outcome sl_outcome_from_http_status(long status);

/* Classifies a Lambda Invoke API answer: 200 without X-Amz-Function-Error success; with it a
 * function error; 429 throttle; other statuses a service error. */
enum sl_outcome sl_outcome_from_lambda(long status, const char *function_error);

#endif
