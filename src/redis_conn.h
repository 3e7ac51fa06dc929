/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_REDIS_CONN_H
#define SL_REDIS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "err.h"
#include "redis_url.h"
#include "retry.h"

struct redisReply;
struct redisReplyObjectFunctions;

/* One Redis connection on the loop (hiredis async, libuv adapter), kept up by itself: connect,
 * AUTH, SELECT, and after an outage the same again with backoff. Commands are pipelined (each is
 * written as soon as the connection is ready, without waiting for the replies before it) and
 * answered in order. Loop thread only. */
struct sl_redis_conn;

struct sl_redis_conn_conf {
    const struct sl_redis_url *url; /* host, port, db, user, password: copied by new */
    const char *inst;               /* the owner's name for log lines; copied */
    int64_t connect_timeout_ms;     /* connect + AUTH + SELECT; 0: 5000 */
    /* A connection whose oldest command has waited this long for its reply is dropped (and its
     * commands fail with SL_ETIMEDOUT); 0: never (a connection that blocks on purpose). */
    int64_t command_timeout_ms;
    /* Reconnect delays (full jitter); all 0: sl_retry_policy_default() capped at 5 s. */
    struct sl_retry_policy backoff;
    /* How hiredis builds the replies (its reader's functions; they must make redisReply
     * objects), or NULL: hiredis' own. Borrowed: must outlive the connection. */
    struct redisReplyObjectFunctions *reply_functions;
    /* The outage lines at debug level: another connection of the same owner to the same server
     * says them, so that an outage is one line. */
    bool quiet;
};

/* A command's answer, exactly once per command started: err 0 with reply (any type but an
 * error), err SL_EREJECTED with reply and detail its text for an error reply ("WRONGTYPE ..."),
 * or reply NULL with err SL_EIO (the connection was lost, or could not be made or
 * authenticated: the command may or may not have run), SL_EAUTH (AUTH or SELECT refused),
 * SL_ETIMEDOUT (command_timeout_ms) or SL_ECANCELED (sl_redis_conn_free). reply and detail are
 * borrowed for the call. Never called from inside sl_redis_conn_command. */
typedef void (*sl_redis_cb)(void *arg, int err, const struct redisReply *reply, const char *detail);

/* Opens a connection and starts connecting (on the loop; nothing blocks but the name lookup of a
 * host that is not an address). Returns 0 and *ret_c (owned: sl_redis_conn_free) or SL_ENOMEM.
 * Loop thread. */
SL_NODISCARD int sl_redis_conn_new(uv_loop_t *loop,
                                   const struct sl_redis_conn_conf *conf,
                                   struct sl_redis_conn **ret_c);

/* Starts the command argv[0..argc) (argvlen[i] bytes each; copied). While the connection is not
 * ready it waits for it: a connection attempt that fails answers the waiting commands with its
 * error; the next attempt comes after the backoff. Returns 0 (cb runs exactly once, later) or
 * SL_ENOMEM / SL_ECANCELED (closing) and cb never runs. Loop thread. */
SL_NODISCARD int sl_redis_conn_command(struct sl_redis_conn *c,
                                       int argc,
                                       const char **argv,
                                       const size_t *argvlen,
                                       sl_redis_cb cb,
                                       void *arg);

/* The connection is up (connected, authenticated, database selected). */
bool sl_redis_conn_is_ready(const struct sl_redis_conn *c);

/* How many times the connection was made (1 after the first connect; counts reconnects). */
uint64_t sl_redis_conn_connects(const struct sl_redis_conn *c);

/* "host:port" (never the password), for log lines. Borrowed while c lives. */
const char *sl_redis_conn_name(const struct sl_redis_conn *c);

/* Closes c: every command not yet answered gets its callback with SL_ECANCELED on a later loop
 * turn (never from inside this call), when the memory goes too. NULL is a no-op. Loop thread;
 * may be called from inside a command's callback. */
void sl_redis_conn_free(struct sl_redis_conn *c);

#endif
