/* SPDX-License-Identifier: Apache-2.0 */
/* response.c: reads a function's answer to a batch into the invoker's verdict, for the carry
 * (carry.c) to carry out. With a tumbling window the answer must hold the window's new state (AWS:
 * else the batch failed, State.Missing); with ReportBatchItemFailures it is a partial batch
 * response, read against the batch (lanebatch.c), with a warning for an invalid one and, once per
 * key, for an object whose only key looks like a misspelt batchItemFailures. The verdict itself is
 * the invoker's (invoker.c). It keeps no state of its own: the carry group keeps the key last
 * warned about. Its log lines are the carry's. Loop thread. */
#include "response.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "window.h"

#define RESPONSE_COMP "carry"

void sl_response_read(struct sl_response *r,
                      const struct sl_invoke_result *res,
                      const struct sl_invoker_policy *policy,
                      bool windowed,
                      struct sl_lanebatch *b,
                      size_t n,
                      unsigned attempts,
                      const char *inst,
                      char *warned_key,
                      size_t warned_key_size)
{
    char *new_state = NULL;
    size_t new_state_len = 0;
    if (windowed && res->outcome == SL_OUTCOME_SUCCESS &&
        sl_window_read_state(res->body, res->body_len, &new_state, &new_state_len) < 0) {
        /* AWS: a tumbling window function must return its state, else the batch failed. */
        r->windowed = *res;
        r->windowed.outcome = SL_OUTCOME_FUNCTION_ERROR;
        r->windowed.error_type = "State.Missing";
        r->windowed.detail = "the response has no \"state\" object";
        res = &r->windowed;
    }

    const struct sl_partial *pp = NULL;
    if (res->outcome == SL_OUTCOME_SUCCESS && policy->report_item_failures) {
        sl_lanebatch_read_partial(b, res, &r->partial);
        pp = &r->partial;
        if (r->partial.unknown_key[0] && strcmp(r->partial.unknown_key, warned_key) != 0) {
            sl_log_warn(RESPONSE_COMP, inst,
                        "the function's response has the key \"%s\" but no "
                        "batchItemFailures; "
                        "AWS counts such a batch as fully delivered, and so does "
                        "sluice (is it "
                        "misspelt?)",
                        r->partial.unknown_key);
            (void)snprintf(warned_key, warned_key_size, "%s", r->partial.unknown_key);
        }
        if (r->partial.kind == SL_PARTIAL_INVALID) {
            char what[256];
            sl_log_warn(RESPONSE_COMP, inst,
                        "invalid partial batch response for %s: %s; the whole batch failed",
                        sl_lanebatch_describe(b, sl_lanebatch_cur(b), what, sizeof(what)),
                        r->partial.detail);
        }
    }
    sl_invoker_judge(policy, res, pp, n, attempts, &r->v);
    r->res = res;
    r->pp = pp;
    r->new_state = new_state;
    r->new_state_len = new_state_len;
}
