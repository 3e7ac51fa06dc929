/* SPDX-License-Identifier: Apache-2.0 */
#ifndef SL_CHECKPOINT_H
#define SL_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "err.h"

/* The checkpoint store (file by default, Redis below): one JSON file per mapping in state_dir,
 * holding for each partition id its position and the source's meta. Updates only mark the store
 * dirty; once per loop turn (a uv_check) a dirty store is written atomically on the libuv thread
 * pool: temp file, fsync, rename, fsync of the directory. While a write is in flight, further
 * updates coalesce into the next. So a crash loses at most the updates of the last turns,
 * which only repeats records, never skips them. Loop thread. */
struct sl_ckpt;
struct sl_redis_conn;

struct sl_ckpt_entry {
    const char *pos;  /* borrowed */
    const char *meta; /* borrowed, may be NULL */
};

/* Opens (and loads) the store of mapping_id in dir, creating dir if needed. A corrupt file is
 * an error naming the file (never silently reset). mapping_id must not contain '/' nor start
 * with '.'. Returns 0, SL_EINVAL (bad id), SL_EIO or SL_ENOMEM with errbuf filled. */
SL_NODISCARD int sl_ckpt_open(uv_loop_t *loop,
                              const char *dir,
                              const char *mapping_id,
                              struct sl_ckpt **ret_ck,
                              char *errbuf,
                              size_t errlen);

/* The Redis checkpoint store (the top-level "checkpoint_store": redis://host:port/db): the
 * same store, its rows kept in the Redis hash "<prefix>ckpt:<mapping_id>" (prefix from
 * ?prefix=P, default "sluice:") instead of a file, so they survive the loss of the process or
 * its machine. Opening reads the hash (blocking: it runs before the mapping starts; while
 * Redis cannot be reached it tries again for up to SL_CKPT_REDIS_LOAD_TIMEOUT_MS). Writes
 * coalesce per loop turn as for files, go out pipelined on the loop, and move a position in
 * Redis only forward (an atomic compare in a Lua script); "durable" means Redis answered. While
 * Redis is down nothing becomes durable (so a partition stops after max_unsaved_batches
 * advances) and every change is written once it is back. Returns 0, SL_EINVAL (bad id),
 * SL_ECONFIG (bad URL), SL_EIO / SL_EPROTO (Redis unreachable, or the hash is not
 * checkpoints) or SL_ENOMEM with errbuf filled; SL_ECONFIG in a build without Redis. */
#define SL_CKPT_REDIS_LOAD_TIMEOUT_MS 30000
SL_NODISCARD int sl_ckpt_open_redis(uv_loop_t *loop,
                                    const char *url,
                                    const char *mapping_id,
                                    struct sl_ckpt **ret_ck,
                                    char *errbuf,
                                    size_t errlen);

/* Leases (lease.c): with a Redis store shared by several processes, every write of a partition's
 * row is fenced by its lease: skipped unless holds(arg, part, &counter) says this process holds
 * it, and refused by Redis unless lease_key's entry for the partition still names owner and
 * that counter, so a process that lost a lease never moves its checkpoint. lease_key and owner
 * are borrowed (they must outlive ck); lease_key NULL turns fencing off. Redis store only. */
typedef bool (*sl_ckpt_holds_cb)(void *arg, const char *part_id, uint64_t *ret_counter);
void sl_ckpt_fence(struct sl_ckpt *ck,
                   const char *lease_key,
                   const char *owner,
                   sl_ckpt_holds_cb holds,
                   void *arg);

/* A lease was just taken: row is part_id's value in Redis at that moment (NULL: none), which
 * replaces what the store held for it (another process may have moved it since the load).
 * Redis store only. Returns 0, SL_EPROTO (row is not a checkpoint) or SL_ENOMEM. */
SL_NODISCARD int sl_ckpt_refresh(struct sl_ckpt *ck, const char *part_id, const char *row);

/* The Redis store's connection (for the lease layer, so that one connection and one outage
 * line serve both), or NULL for the file store. Borrowed while ck lives. */
struct sl_redis_conn *sl_ckpt_redis_conn(struct sl_ckpt *ck);

/* Runs one command on a blocking connection of its own to the Redis store (a few seconds at
 * most): for exit (the lease layer's release). Returns 0, SL_EIO (logged) or SL_ENOMEM. */
SL_NODISCARD int
sl_ckpt_redis_command_sync(struct sl_ckpt *ck, int argc, const char **argv, const size_t *argvlen);

/* Rows not written because their lease was not, or no longer, this process's. */
unsigned long sl_ckpt_fenced_writes(const struct sl_ckpt *ck);

/* Looks up a partition. Returns true and fills *ret_e (borrowed until the next set/del). */
bool sl_ckpt_get(const struct sl_ckpt *ck, const char *part_id, struct sl_ckpt_entry *ret_e);

/* Records a partition's position; meta may be NULL. Returns 0 or SL_ENOMEM. */
SL_NODISCARD int
sl_ckpt_set(struct sl_ckpt *ck, const char *part_id, const char *pos, const char *meta);
void sl_ckpt_del(struct sl_ckpt *ck, const char *part_id);

/* True when nothing is dirty and no write is in flight. */
bool sl_ckpt_is_clean(const struct sl_ckpt *ck);

/* Writes the store now, synchronously, if dirty (waits for a write in flight first, blocking
 * on it without running the loop, so callable from a callback). Used at exit. Returns 0,
 * SL_EIO or SL_ENOMEM. */
SL_NODISCARD int sl_ckpt_flush_sync(struct sl_ckpt *ck);

/* Generations: every change to the store gets the next number; a write makes durable every
 * change up to the generation it snapshotted. A caller that must bound how far it runs ahead
 * of the disk compares the generation of its own change with the durable one. */
uint64_t sl_ckpt_generation(const struct sl_ckpt *ck);
uint64_t sl_ckpt_durable_generation(const struct sl_ckpt *ck);

/* Calls cb(arg) after every successful write (on the loop thread). One callback per store;
 * NULL clears it. */
typedef void (*sl_ckpt_durable_cb)(void *arg);
void sl_ckpt_on_durable(struct sl_ckpt *ck, sl_ckpt_durable_cb cb, void *arg);

/* Number of completed writes and the last write error (0 if none), for tests and logs. */
unsigned long sl_ckpt_writes(const struct sl_ckpt *ck);
int sl_ckpt_last_error(const struct sl_ckpt *ck);

/* The file system calls a checkpoint write makes, in this order: open the temp file, write
 * it, fsync it, close it, rename it over the store's file, open the directory, fsync it, close
 * it. Replaceable so that tests can observe the order and stop a write part-way as a crash
 * would; production code never sets them. They run on a pool thread (or the loop thread in
 * sl_ckpt_flush_sync). */
struct sl_ckpt_fileops {
    int (*open)(const char *path, int flags, mode_t mode);
    ssize_t (*write)(int fd, const void *buf, size_t len);
    int (*fsync)(int fd);
    int (*close)(int fd);
    int (*rename)(const char *from, const char *to);
};

/* Makes ck's writes use ops (borrowed; it must outlive ck), or the system's calls again when
 * ops is NULL. Call only while no write is in flight (sl_ckpt_is_clean). For tests. */
void sl_ckpt_set_fileops(struct sl_ckpt *ck, const struct sl_ckpt_fileops *ops);

/* Makes every store opened after it use ops (borrowed; it must outlive them), or the system's
 * calls again when ops is NULL: for tests that drive a store they cannot reach (a mapping's).
 * Production code never calls it. Loop thread. */
void sl_ckpt_set_default_fileops(const struct sl_ckpt_fileops *ops);

/* Closes the store: a write in flight completes first; the store is freed from the loop once
 * its handles are closed. Call sl_ckpt_flush_sync before it to persist pending updates. */
void sl_ckpt_close(struct sl_ckpt *ck);

#endif
