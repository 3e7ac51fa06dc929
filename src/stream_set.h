/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_STREAM_SET_H
#define SL_STREAM_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "err.h"

struct sl_config;
struct sl_httpc;
struct sl_function;

/* Every delivery stream of a configuration and the HTTP server that feeds them. Loop thread. */
struct sl_stream_set;

/* Creates the streams of cfg with their destinations (httpc, borrowed: the S3 API and HTTP
 * endpoints) and, when there is one, starts the HTTP server on cfg->listen. Returns 0 and
 * *ret_set (NULL when cfg has no delivery stream), SL_EIO (cannot listen, in errbuf),
 * SL_ECONFIG (a destination that cannot be set up, in errbuf) or SL_ENOMEM. cfg is borrowed and
 * must outlive the set; fns (borrowed, indexed as cfg->functions) are the functions transforms
 * invoke. */
SL_NODISCARD int sl_stream_set_new(const struct sl_config *cfg,
                                   uv_loop_t *loop,
                                   struct sl_httpc *httpc,
                                   struct sl_function *const *fns,
                                   struct sl_stream_set **ret_set,
                                   char *errbuf,
                                   size_t errlen);

/* Stops taking connections and puts (a put from then on is answered ServiceUnavailableException;
 * puts already taken are answered once durable) and delivers what every stream holds (SIGTERM,
 * end of idle). */
void sl_stream_set_drain(struct sl_stream_set *set);

/* Cancels the transform batches in flight, whose records stay in the spool (drain_timeout),
 * before the functions are stopped. */
void sl_stream_set_cancel(struct sl_stream_set *set);

/* Records accepted and not yet delivered, in all streams, plus requests begun and not yet
 * answered and sent. */
size_t sl_stream_set_in_flight(const struct sl_stream_set *set);

/* Records received so far, in all streams: --until-idle's measure of activity. */
uint64_t sl_stream_set_incoming(const struct sl_stream_set *set);

void sl_stream_set_log_stats(const struct sl_stream_set *set, const char *msg);

/* Frees the streams, runs the loop until their spools are closed (puts waiting for a sync are
 * answered; new ones are refused), then stops the server. Not from a loop callback. NULL is a
 * no-op. */
void sl_stream_set_free(struct sl_stream_set *set);

#endif
