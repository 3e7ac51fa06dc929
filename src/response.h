/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_RESPONSE_H
#define SL_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>

#include "invoker.h"
#include "lanebatch.h"

/* A function's answer to a batch, read: what the carry carries out. */
struct sl_response {
    const struct sl_invoke_result *res; /* the answer as judged: the invoker's, or windowed */
    struct sl_invoke_result windowed;   /* the answer turned into a State.Missing function error */
    char *new_state;                    /* a window's new state (the caller's), else NULL */
    size_t new_state_len;
    struct sl_partial partial;
    const struct sl_partial *pp; /* &partial when a partial batch response was read, else NULL */
    struct sl_verdict v;
};

/* Reads res, the answer to the n records of b's current range after attempts counted failures,
 * into r (which res may then point into: r must stay where it is while used). windowed: the batch
 * is a tumbling window's, whose answer must hold its state. inst names the mapping in log lines;
 * warned_key (warned_key_size bytes) is the key last warned about as a misspelt
 * batchItemFailures, kept by the caller so that each is warned about once. */
void sl_response_read(struct sl_response *r,
                      const struct sl_invoke_result *res,
                      const struct sl_invoker_policy *policy,
                      bool windowed,
                      struct sl_lanebatch *b,
                      size_t n,
                      unsigned attempts,
                      const char *inst,
                      char *warned_key,
                      size_t warned_key_size);

#endif
