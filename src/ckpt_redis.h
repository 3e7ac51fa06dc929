/* SPDX-License-Identifier: Apache-2.0 */
/* ckpt_redis.h: the checkpoint store's Redis side (ckpt_redis.c), for checkpoint.c only. */
#ifndef SL_CKPT_REDIS_H
#define SL_CKPT_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "ckpt_table.h"
#include "err.h"

/* The default key prefix: a mapping's checkpoints are the hash "<prefix>ckpt:<mapping id>". */
#define SL_CKPT_REDIS_PREFIX "sluice:"

struct ckpt_redis;

/* Checks a checkpoint_store URL: redis://[user:password@]host[:port][/db][?prefix=P]; nothing
 * after the database, no other query key. Fills errbuf (the URL redacted) and returns
 * SL_ECONFIG when it is not that, or SL_ENOMEM. No I/O; any thread. */
SL_NODISCARD int ckpt_redis_check_url(const char *url, char *errbuf, size_t errlen);

/* Parses url, reads the mapping's checkpoints from Redis into t (empty), synchronously (with
 * timeouts: it runs before the loop does anything for this mapping; while Redis cannot be
 * reached it tries again with backoff for up to load_timeout_ms, logging once), then opens the
 * connection the writes use, on loop. Returns 0 and *ret_cr (owned: ckpt_redis_free),
 * SL_ECONFIG / SL_EIO / SL_EPROTO with errbuf filled (never the password), or SL_ENOMEM. */
SL_NODISCARD int ckpt_redis_open(uv_loop_t *loop,
                                 const char *url,
                                 const char *mapping_id,
                                 int64_t load_timeout_ms,
                                 struct ckpt_table *t,
                                 struct ckpt_redis **ret_cr,
                                 char *errbuf,
                                 size_t errlen);

/* One write's end: err 0 when Redis answered every row (a row whose stored position was
 * already ahead is kept there: positions only move forward), or the first error (SL_EIO: the
 * connection went away or could not be made; SL_EREJECTED: Redis refused the script). */
typedef void (*ckpt_redis_done_cb)(void *arg, int err);

/* Writes rows[0..n) (n >= 1; copied), pipelined, each through the compare-and-set script.
 * At most one write at a time. Returns 0 (cb runs once, later, never from inside this call
 * unless ckpt_redis_free runs), SL_EAGAIN when every row was fenced off (nothing to send: the
 * write is over, cb never runs) or SL_ENOMEM (cb never runs; nothing was sent). Loop thread. */
SL_NODISCARD int ckpt_redis_write(
    struct ckpt_redis *cr, const struct ckpt_row *rows, size_t n, ckpt_redis_done_cb cb, void *arg);

/* Writes rows[0..n) now on a connection of its own, blocking up to a few seconds: for exit.
 * Returns 0, SL_EIO (logged) or SL_ENOMEM. */
SL_NODISCARD int
ckpt_redis_write_sync(struct ckpt_redis *cr, const struct ckpt_row *rows, size_t n);

/* True once after each time the write connection was made again (a Redis restarted without
 * persistence may have lost everything): the caller writes every position it holds again. */
bool ckpt_redis_take_reconnect(struct ckpt_redis *cr);

/* Fencing (leases): every row is written only while this worker holds the partition's lease,
 * checked here (holds) and again by the script in Redis against lease_key's owner and counter;
 * a row whose lease is not held is dropped (another worker owns the partition now). */
struct ckpt_redis_fence {
    const char *lease_key; /* borrowed; NULL: no fencing */
    const char *owner;     /* borrowed */
    bool (*holds)(void *arg, const char *part, uint64_t *ret_counter);
    void *arg;
};
/* fence is copied; NULL turns fencing off. */
void ckpt_redis_set_fence(struct ckpt_redis *cr, const struct ckpt_redis_fence *fence);
/* Rows dropped or refused because the lease was not (or no longer) this worker's. */
unsigned long ckpt_redis_fenced_writes(const struct ckpt_redis *cr);

/* Puts part's row from text, a value of the hash ({"pos":"...","meta":"..."}), into t. Returns
 * 0, SL_EPROTO (not a row) or SL_ENOMEM. */
SL_NODISCARD int ckpt_redis_parse_row(const char *text, struct ckpt_table *t, const char *part);

/* The connection the writes use (shared with the lease layer: one connection, one log line
 * per outage). Borrowed while cr lives. */
struct sl_redis_conn *ckpt_redis_conn(struct ckpt_redis *cr);

/* Runs one command on a blocking connection of its own (a few seconds at most), for exit.
 * Returns 0, SL_EIO (not reachable, or an error reply) or SL_ENOMEM. */
SL_NODISCARD int
ckpt_redis_command_sync(struct ckpt_redis *cr, int argc, const char **argv, const size_t *argvlen);

/* Rows Redis kept because it already held a later position (for tests and logs). */
unsigned long ckpt_redis_stale_writes(const struct ckpt_redis *cr);

/* "redis://host:port/db key" (never the password), for log lines. Borrowed while cr lives. */
const char *ckpt_redis_name(const struct ckpt_redis *cr);

/* Frees cr; a write in flight ends with SL_ECANCELED, from inside this call. NULL: no-op. */
void ckpt_redis_free(struct ckpt_redis *cr);

#endif
