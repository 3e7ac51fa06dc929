/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_TEST_FH_ENDPOINT_H
#define SL_TEST_FH_ENDPOINT_H

/* A scripted Firehose HTTP endpoint for unit tests (fh_endpoint.c), on http_peer's loopback
 * server: each request is answered as the script says (the i-th request by the i-th step, the
 * last step repeating), and recorded: its head, and its body as sent and decoded (gunzipped when
 * it came with Content-Encoding: gzip). Failures fail the running cmocka test. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "buf.h"
#include "http_peer.h"

enum fh_ep_step {
    FH_EP_OK,        /* 200, application/json, our requestId echoed, a numeric timestamp */
    FH_EP_SLOW,      /* FH_EP_OK after slow_ms (sooner if the client goes away) */
    FH_EP_500,       /* 500 with Firehose's failure body, errorMessage "boom" */
    FH_EP_413,       /* 413 with Firehose's failure body */
    FH_EP_WRONG_ID,  /* 200 echoing another requestId */
    FH_EP_NO_ID,     /* 200 with {"timestamp":...} only */
    FH_EP_TEXT,      /* 200 with the right body but Content-Type text/plain */
    FH_EP_SILENT,    /* reads the request and never answers (until the client closes) */
    FH_EP_CLOSE,     /* closes the connection without an answer */
    FH_EP_GATED_500, /* FH_EP_500 once the test opens the gate (fh_ep_open_gate) */
    FH_EP_STEP_COUNT
};

#define FH_EP_MAX_STEPS 16
#define FH_EP_MAX_REQS  64

struct fh_ep_req {
    char *head;         /* request line and headers, NUL-terminated */
    struct sl_buf raw;  /* the body as sent */
    struct sl_buf body; /* decoded */
};

struct fh_endpoint {
    struct http_peer peer;
    char url[64]; /* http://127.0.0.1:<port>/ingest?k=v */
    enum fh_ep_step steps[FH_EP_MAX_STEPS];
    size_t n_steps;
    int slow_ms;
    uv_async_t *wake;   /* sent after each request is recorded (fh_ep_start's) */
    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t gate_cv;
    int gate_opens; /* fh_ep_open_gate calls */
    int gate_used;  /* gated answers sent */
    struct fh_ep_req reqs[FH_EP_MAX_REQS];
    size_t n_reqs;
};

/* Starts e answering with steps[0..n) (n >= 1). wake (or NULL) is sent after each request is
 * recorded, so a loop waiting for a request wakes: stop e before closing it. */
void fh_ep_start(struct fh_endpoint *e, const enum fh_ep_step *steps, size_t n, uv_async_t *wake);
/* Lets one FH_EP_GATED_500 answer go. Any thread. */
void fh_ep_open_gate(struct fh_endpoint *e);
void fh_ep_stop(struct fh_endpoint *e);
/* Requests received so far. Any thread. */
size_t fh_ep_count(struct fh_endpoint *e);
/* The value of header name of request i (a copy, free()), or NULL. */
char *fh_ep_header(struct fh_endpoint *e, size_t i, const char *name);

#endif
