/* SPDX-License-Identifier: Apache-2.0 */
/* test_checkpoint.c: the file checkpoint store: round trips, persistence, coalescing of writes
 * per loop turn, atomicity (a concurrent reader never sees a partial file; a crash's temp file
 * is ignored; a crash between the write and the rename leaves the old file loadable), the order
 * of the file system calls of a write (open, write, fsync, rename, directory fsync, observed
 * through the store's replaceable file-ops table), corrupt files, write errors and their recovery,
 * odd partition ids. Waits use test_run_until deadlines, never sleeps. Also prints (does not
 * assert) the latency of one write + fsync + rename + directory fsync on this machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "checkpoint.h"
#include "helpers.h"
#include "log.h"

#define ID "3f2a8c1e-0b7d-4e55-9a61-2d4c8e9f0a17"

struct fx {
    uv_loop_t loop;
    char *dir;   /* owned (malloc) */
    char *state; /* <dir>/state, the store's directory */
    char path[4200];
    char tmp[4200];
    struct sl_ckpt *ck;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->dir = test_tmpdir();
    size_t n = strlen(f->dir) + sizeof("/state/sub");
    f->state = malloc(n);
    assert_non_null(f->state);
    snprintf(f->state, n, "%s/state/sub", f->dir);
    snprintf(f->path, sizeof(f->path), "%s/%s.json", f->state, ID);
    snprintf(f->tmp, sizeof(f->tmp), "%s/%s.json.tmp", f->state, ID);
    *state = f;
    return 0;
}

/* Closes the store and runs the loop until its handles are gone; asserts nothing leaked on
 * the loop (uv_loop_close fails with UV_EBUSY otherwise). */
static void fx_close(struct fx *f)
{
    if (f->ck) {
        sl_ckpt_close(f->ck);
        f->ck = NULL;
        assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    }
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fx_close(f);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_rmtree(f->dir);
    free(f->state);
    free(f->dir);
    free(f);
    return 0;
}

static void fx_open(struct fx *f)
{
    char err[512] = "";
    int r = sl_ckpt_open(&f->loop, f->state, ID, &f->ck, err, sizeof(err));
    if (r != 0) {
        fail_msg("open: %d %s", r, err);
    }
}

static bool is_clean(void *arg)
{
    return sl_ckpt_is_clean(arg);
}

static void settle(struct fx *f)
{
    assert_true(test_run_until(&f->loop, is_clean, f->ck, 5000));
}

static char *read_all(const char *path, size_t *ret_len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *d = malloc(cap);
    assert_non_null(d);
    for (;;) {
        size_t got = fread(d + len, 1, cap - len - 1, fp);
        len += got;
        if (got == 0) {
            break;
        }
        if (cap - len < 2) {
            cap *= 2;
            d = realloc(d, cap);
            assert_non_null(d);
        }
    }
    fclose(fp);
    d[len] = '\0';
    if (ret_len) {
        *ret_len = len;
    }
    return d;
}

/* Parses the store's file and returns partitions[part].pos (owned) or NULL. */
static char *file_pos(const char *path, const char *part)
{
    size_t len;
    char *d = read_all(path, &len);
    assert_non_null(d);
    cJSON *root = cJSON_ParseWithLength(d, len);
    assert_non_null(root);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(root, "version")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "mapping")->valuestring, ID);
    cJSON *parts = cJSON_GetObjectItemCaseSensitive(root, "partitions");
    assert_true(cJSON_IsObject(parts));
    cJSON *p = cJSON_GetObjectItemCaseSensitive(parts, part);
    char *pos = NULL;
    if (p) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(p, "pos");
        assert_true(cJSON_IsString(v));
        size_t n = strlen(v->valuestring) + 1;
        pos = malloc(n);
        assert_non_null(pos);
        memcpy(pos, v->valuestring, n);
    }
    cJSON_Delete(root);
    free(d);
    return pos;
}

static void assert_file_pos(const char *path, const char *part, const char *want)
{
    char *pos = file_pos(path, part);
    if (!want) {
        assert_null(pos);
        return;
    }
    assert_non_null(pos);
    assert_string_equal(pos, want);
    free(pos);
}

static void assert_entry(struct sl_ckpt *ck, const char *part, const char *pos, const char *meta)
{
    struct sl_ckpt_entry e;
    assert_true(sl_ckpt_get(ck, part, &e));
    assert_string_equal(e.pos, pos);
    if (meta) {
        assert_non_null(e.meta);
        assert_string_equal(e.meta, meta);
    } else {
        assert_null(e.meta);
    }
}

static void test_checkpoint_set_get_del(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    struct stat st;
    assert_int_equal(stat(f->state, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_true(sl_ckpt_is_clean(f->ck));

    struct sl_ckpt_entry e;
    assert_false(sl_ckpt_get(f->ck, "2049:1234", &e));
    assert_int_equal(sl_ckpt_set(f->ck, "2049:1234", "1043", "head=abc"), 0);
    assert_false(sl_ckpt_is_clean(f->ck));
    assert_entry(f->ck, "2049:1234", "1043", "head=abc");
    assert_int_equal(sl_ckpt_set(f->ck, "2049:1234", "2000", NULL), 0);
    assert_entry(f->ck, "2049:1234", "2000", NULL);

    /* Enough partitions to grow the table several times, then delete every other one. */
    char part[32], pos[32];
    for (int i = 0; i < 500; i++) {
        snprintf(part, sizeof(part), "p%d", i);
        snprintf(pos, sizeof(pos), "%d", i * 7);
        assert_int_equal(sl_ckpt_set(f->ck, part, pos, i % 3 ? "m" : NULL), 0);
    }
    for (int i = 0; i < 500; i += 2) {
        snprintf(part, sizeof(part), "p%d", i);
        sl_ckpt_del(f->ck, part);
    }
    sl_ckpt_del(f->ck, "never-set");
    for (int i = 0; i < 500; i++) {
        snprintf(part, sizeof(part), "p%d", i);
        snprintf(pos, sizeof(pos), "%d", i * 7);
        if (i % 2) {
            assert_entry(f->ck, part, pos, i % 3 ? "m" : NULL);
        } else {
            assert_false(sl_ckpt_get(f->ck, part, &e));
        }
    }
    settle(f);
    assert_int_equal(sl_ckpt_last_error(f->ck), 0);
    assert_file_pos(f->path, "p7", "49");
    assert_file_pos(f->path, "p8", NULL);

    /* Setting the same value again is not a change: nothing to write. */
    unsigned long w = sl_ckpt_writes(f->ck);
    assert_int_equal(sl_ckpt_set(f->ck, "p7", "49", "m"), 0);
    assert_true(sl_ckpt_is_clean(f->ck));
    assert_int_equal(sl_ckpt_writes(f->ck), w);
}

static void test_checkpoint_bad_ids(void **state)
{
    struct fx *f = *state;
    const char *bad[] = {"", ".hidden", "..", "a/b", "/abs", "."};
    char err[256];
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        struct sl_ckpt *ck = (struct sl_ckpt *)0x1;
        err[0] = '\0';
        assert_int_equal(sl_ckpt_open(&f->loop, f->state, bad[i], &ck, err, sizeof(err)),
                         SL_EINVAL);
        assert_ptr_equal(ck, (struct sl_ckpt *)0x1);
        assert_non_null(strstr(err, "mapping id"));
    }
    char longid[300];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    struct sl_ckpt *ck = NULL;
    assert_int_equal(sl_ckpt_open(&f->loop, f->state, longid, &ck, err, sizeof(err)), SL_EINVAL);
}

static void test_checkpoint_persists(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    assert_int_equal(sl_ckpt_set(f->ck, "shardId-000", "4959", "iter=1"), 0);
    assert_int_equal(sl_ckpt_set(f->ck, "shardId-001", "12", NULL), 0);
    assert_int_equal(sl_ckpt_set(f->ck, "gone", "1", NULL), 0);
    settle(f);
    sl_ckpt_del(f->ck, "gone");
    assert_int_equal(sl_ckpt_set(f->ck, "shardId-001", "13", NULL), 0);
    settle(f);
    assert_int_equal(sl_ckpt_writes(f->ck), 2);
    fx_close(f);

    /* The file is plain JSON holding the values. */
    assert_file_pos(f->path, "shardId-000", "4959");
    assert_file_pos(f->path, "shardId-001", "13");
    assert_file_pos(f->path, "gone", NULL);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    fx_open(f);
    assert_entry(f->ck, "shardId-000", "4959", "iter=1");
    assert_entry(f->ck, "shardId-001", "13", NULL);
    struct sl_ckpt_entry e;
    assert_false(sl_ckpt_get(f->ck, "gone", &e));
    assert_true(sl_ckpt_is_clean(f->ck));
    assert_int_equal(sl_ckpt_writes(f->ck), 0);
}

static void test_checkpoint_coalesces(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    char pos[32];
    for (int i = 1; i <= 1000; i++) {
        snprintf(pos, sizeof(pos), "%d", i);
        assert_int_equal(sl_ckpt_set(f->ck, "p", pos, NULL), 0);
    }
    settle(f);
    assert_int_equal(sl_ckpt_writes(f->ck), 1);
    assert_file_pos(f->path, "p", "1000");

    /* One turn takes the snapshot and queues the write; the updates made while it is in the
     * pool all go into a single next write. */
    assert_int_equal(sl_ckpt_set(f->ck, "p", "1001", NULL), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_false(sl_ckpt_is_clean(f->ck));
    assert_int_equal(sl_ckpt_writes(f->ck), 1);
    for (int i = 1002; i <= 2000; i++) {
        snprintf(pos, sizeof(pos), "%d", i);
        assert_int_equal(sl_ckpt_set(f->ck, "p", pos, NULL), 0);
        assert_int_equal(sl_ckpt_set(f->ck, "q", pos, NULL), 0);
    }
    settle(f);
    assert_int_equal(sl_ckpt_writes(f->ck), 3);
    assert_file_pos(f->path, "p", "2000");
    assert_file_pos(f->path, "q", "2000");
}

/* Sets made from a timer callback (before poll) are written without waiting for I/O: the
 * store's idle handle keeps poll from blocking. */
struct timer_arg {
    struct sl_ckpt *ck;
    int fired;
};

static void set_from_timer(uv_timer_t *t)
{
    struct timer_arg *a = t->data;
    assert_int_equal(sl_ckpt_set(a->ck, "t", "1", NULL), 0);
    a->fired++;
}

static bool timer_written(void *arg)
{
    struct timer_arg *a = arg;
    return a->fired && sl_ckpt_is_clean(a->ck) && sl_ckpt_writes(a->ck) == 1;
}

static void test_checkpoint_flush_after_timer(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    struct timer_arg a = {f->ck, 0};
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    t.data = &a;
    uv_timer_start(&t, set_from_timer, 1, 0);
    assert_true(test_run_until(&f->loop, timer_written, &a, 5000));
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_file_pos(f->path, "t", "1");
}

static void test_checkpoint_flush_sync(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    assert_int_equal(sl_ckpt_flush_sync(f->ck), 0); /* clean: nothing to do */
    assert_int_equal(sl_ckpt_writes(f->ck), 0);
    assert_int_equal(sl_ckpt_set(f->ck, "a", "1", NULL), 0);
    assert_int_equal(sl_ckpt_flush_sync(f->ck), 0);
    assert_int_equal(sl_ckpt_writes(f->ck), 1);
    assert_true(sl_ckpt_is_clean(f->ck));
    assert_file_pos(f->path, "a", "1");

    /* With a write in flight: it waits for it, then writes the newer state itself. */
    assert_int_equal(sl_ckpt_set(f->ck, "a", "2", NULL), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_false(sl_ckpt_is_clean(f->ck));
    assert_int_equal(sl_ckpt_set(f->ck, "a", "3", NULL), 0);
    assert_int_equal(sl_ckpt_flush_sync(f->ck), 0);
    assert_true(sl_ckpt_is_clean(f->ck));
    assert_int_equal(sl_ckpt_writes(f->ck), 3);
    assert_file_pos(f->path, "a", "3");
    /* The pool's completion arrives later and changes nothing. */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    settle(f);
    assert_int_equal(sl_ckpt_writes(f->ck), 3);
    assert_file_pos(f->path, "a", "3");

    /* Close right after a set with the write in flight: the completion frees the store. */
    assert_int_equal(sl_ckpt_set(f->ck, "a", "4", NULL), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    fx_close(f);
    assert_file_pos(f->path, "a", "4");
}

/* A reader thread parses the file over and over while the store rewrites it: every read must
 * be complete JSON, and positions never go backwards. */
struct reader {
    const char *path;
    atomic_bool stop;
    atomic_long reads;
    atomic_long bad;
};

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    long last = -1;
    while (!atomic_load(&rd->stop)) {
        size_t len;
        char *d = read_all(rd->path, &len);
        if (!d) {
            continue; /* not yet created */
        }
        cJSON *root = cJSON_ParseWithLength(d, len);
        cJSON *p = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(root, "partitions"), "p");
        cJSON *pos = cJSON_GetObjectItemCaseSensitive(p, "pos");
        if (!cJSON_IsString(pos)) {
            atomic_fetch_add(&rd->bad, 1);
        } else {
            long v = strtol(pos->valuestring, NULL, 10);
            if (v < last) {
                atomic_fetch_add(&rd->bad, 1);
            }
            last = v;
        }
        cJSON_Delete(root);
        free(d);
        atomic_fetch_add(&rd->reads, 1);
    }
    return NULL;
}

static void test_checkpoint_atomic_under_reader(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    /* A fat file so a torn write would be visible. */
    char part[32], pos[32], meta[256];
    memset(meta, 'x', sizeof(meta) - 1);
    meta[sizeof(meta) - 1] = '\0';
    for (int i = 0; i < 200; i++) {
        snprintf(part, sizeof(part), "filler-%d", i);
        assert_int_equal(sl_ckpt_set(f->ck, part, "0", meta), 0);
    }
    assert_int_equal(sl_ckpt_set(f->ck, "p", "0", NULL), 0);
    settle(f);

    struct reader rd = {.path = f->path};
    atomic_init(&rd.stop, false);
    atomic_init(&rd.reads, 0);
    atomic_init(&rd.bad, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader_main, &rd), 0);
    /* Half the rounds wait for each write; the other half overlap sets with writes. */
    for (int i = 1; i <= 400; i++) {
        snprintf(pos, sizeof(pos), "%d", i);
        assert_int_equal(sl_ckpt_set(f->ck, "p", pos, NULL), 0);
        if (i % 2) {
            settle(f);
        } else {
            uv_run(&f->loop, UV_RUN_NOWAIT);
        }
    }
    settle(f);
    atomic_store(&rd.stop, true);
    pthread_join(th, NULL);
    print_message("    atomicity: %lu writes, %ld concurrent reads, %ld bad\n",
                  sl_ckpt_writes(f->ck), atomic_load(&rd.reads), atomic_load(&rd.bad));
    assert_int_equal(atomic_load(&rd.bad), 0);
    assert_true(sl_ckpt_writes(f->ck) >= 200);
    fx_close(f);

    fx_open(f);
    assert_entry(f->ck, "p", "400", NULL);
    assert_entry(f->ck, "filler-199", "0", meta);
}

static void test_checkpoint_crash_leaves_tmp(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    assert_int_equal(sl_ckpt_set(f->ck, "p", "77", "m"), 0);
    settle(f);
    fx_close(f);

    /* A crash between creating the temp file and the rename leaves garbage beside it. */
    const char garbage[] = "{\"version\":1,\"mapping\":\"" ID "\",\"partitions\":{\"p\":{\"po";
    test_write_file(f->tmp, "w", garbage, sizeof(garbage) - 1);
    fx_open(f);
    assert_entry(f->ck, "p", "77", "m");
    assert_int_equal(access(f->tmp, F_OK), -1);
    assert_int_equal(errno, ENOENT);
    /* And the next write still works. */
    assert_int_equal(sl_ckpt_set(f->ck, "p", "78", "m"), 0);
    settle(f);
    assert_file_pos(f->path, "p", "78");
}

/* ---- the file system calls of a write, observed through the store's file-ops table ---- */

/* What the recording table saw: one letter per call, naming the file it was made on. The pool
 * thread writes it, the test reads it after the write is accounted (settle), which the libuv
 * work queue orders; the mutex keeps the log consistent regardless. */
static struct {
    pthread_mutex_t mu;
    char tmp[4200];
    char dir[4200];
    int tmp_fd;
    int dir_fd;
    char log[256];
    size_t n;
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void seen_add(const char *ev)
{
    pthread_mutex_lock(&seen.mu);
    size_t len = strlen(ev);
    /* consecutive writes of one file count as one */
    bool repeat = seen.n >= len + 1 && strcmp(seen.log + seen.n - len, ev) == 0 &&
                  strncmp(ev, "write", 5) == 0;
    if (!repeat && seen.n + len + 2 < sizeof(seen.log)) {
        if (seen.n > 0) {
            seen.log[seen.n++] = ' ';
        }
        memcpy(seen.log + seen.n, ev, len + 1);
        seen.n += len;
    }
    pthread_mutex_unlock(&seen.mu);
}

static const char *seen_file(int fd)
{
    return fd == seen.tmp_fd ? "tmp" : fd == seen.dir_fd ? "dir" : "other";
}

static int rec_open(const char *path, int flags, mode_t mode)
{
    int fd = open(path, flags, mode);
    if (strcmp(path, seen.tmp) == 0) {
        seen.tmp_fd = fd;
        seen_add("open(tmp)");
    } else if (strcmp(path, seen.dir) == 0) {
        seen.dir_fd = fd;
        seen_add("open(dir)");
    } else {
        seen_add("open(other)");
    }
    return fd;
}

static ssize_t rec_write(int fd, const void *buf, size_t len)
{
    char ev[32];
    snprintf(ev, sizeof(ev), "write(%s)", seen_file(fd));
    seen_add(ev);
    return write(fd, buf, len);
}

static int rec_fsync(int fd)
{
    char ev[32];
    snprintf(ev, sizeof(ev), "fsync(%s)", seen_file(fd));
    seen_add(ev);
    return fsync(fd);
}

static int rec_close(int fd)
{
    char ev[32];
    snprintf(ev, sizeof(ev), "close(%s)", seen_file(fd));
    seen_add(ev);
    /* the number is free again: the next open may reuse it */
    if (fd == seen.tmp_fd) {
        seen.tmp_fd = -2;
    } else if (fd == seen.dir_fd) {
        seen.dir_fd = -2;
    }
    return close(fd);
}

static int rec_rename(const char *from, const char *to)
{
    seen_add(strcmp(from, seen.tmp) == 0 ? "rename(tmp)" : "rename(other)");
    return rename(from, to);
}

static const struct sl_ckpt_fileops rec_fileops = {
    .open = rec_open,
    .write = rec_write,
    .fsync = rec_fsync,
    .close = rec_close,
    .rename = rec_rename,
};

static void seen_reset(const struct fx *f)
{
    pthread_mutex_lock(&seen.mu);
    snprintf(seen.tmp, sizeof(seen.tmp), "%s", f->tmp);
    char *real = realpath(f->state, NULL);
    assert_non_null(real);
    snprintf(seen.dir, sizeof(seen.dir), "%s", real);
    free(real);
    seen.tmp_fd = -2;
    seen.dir_fd = -2;
    seen.n = 0;
    seen.log[0] = '\0';
    pthread_mutex_unlock(&seen.mu);
}

/* A write is durable only in this order: the new content goes to a temp file that is fsynced
 * before it replaces the old file by rename, and the directory is fsynced after the rename so
 * the rename itself survives a power cut. Checked for the write of the loop (on the thread
 * pool) and for the synchronous one at exit. */
static void test_checkpoint_write_order(void **state)
{
    static const char *const want = "open(tmp) write(tmp) fsync(tmp) close(tmp) rename(tmp) "
                                    "open(dir) fsync(dir) close(dir)";
    struct fx *f = *state;
    fx_open(f);
    seen_reset(f);
    sl_ckpt_set_fileops(f->ck, &rec_fileops);
    assert_int_equal(sl_ckpt_set(f->ck, "p", "1", NULL), 0);
    settle(f);
    assert_string_equal(seen.log, want);
    assert_file_pos(f->path, "p", "1");

    seen_reset(f);
    assert_int_equal(sl_ckpt_set(f->ck, "p", "2", NULL), 0);
    assert_int_equal(sl_ckpt_flush_sync(f->ck), 0);
    assert_string_equal(seen.log, want);
    assert_file_pos(f->path, "p", "2");
    sl_ckpt_set_fileops(f->ck, NULL);
}

/* The file-ops table of a process that crashes at the rename: the new content is written and
 * fsynced, then the process dies before the rename. */
static int crash_rename(const char *from, const char *to)
{
    (void)from;
    (void)to;
    _exit(0);
}

static const struct sl_ckpt_fileops crash_fileops = {
    .open = rec_open,
    .write = write,
    .fsync = fsync,
    .close = close,
    .rename = crash_rename,
};

/* A real crash (a child process that dies) between the write of the temp file and the rename:
 * the old file is intact and loads; the temp file the crash left is set aside at open. */
static void test_checkpoint_crash_before_rename(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    assert_int_equal(sl_ckpt_set(f->ck, "p", "41", "old"), 0);
    settle(f);
    seen_reset(f);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child: only this thread exists; the synchronous write runs on it */
        sl_ckpt_set_fileops(f->ck, &crash_fileops);
        if (sl_ckpt_set(f->ck, "p", "42", "new") == 0 && sl_ckpt_flush_sync(f->ck) < 0) {
            _exit(4);
        }
        _exit(3); /* no rename was attempted: not the crash this test is about */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* the crash happened after the new content was complete in the temp file */
    assert_file_pos(f->tmp, "p", "42");
    assert_file_pos(f->path, "p", "41");
    fx_close(f);
    fx_open(f);
    assert_entry(f->ck, "p", "41", "old");
    assert_int_equal(access(f->tmp, F_OK), -1);
}

static void expect_corrupt(struct fx *f, const char *content, const char *why)
{
    test_write_file(f->path, "w", content, strlen(content));
    char err[512] = "";
    struct sl_ckpt *ck = NULL;
    int r = sl_ckpt_open(&f->loop, f->state, ID, &ck, err, sizeof(err));
    if (r != SL_EIO) {
        fail_msg("open of %s gave %d (%s)", content, r, err);
    }
    assert_null(ck);
    if (!strstr(err, f->path) || !strstr(err, why)) {
        fail_msg("error \"%s\" should name %s and say \"%s\"", err, f->path, why);
    }
    /* Never silently reset: the file is left as it was. */
    char *d = read_all(f->path, NULL);
    assert_string_equal(d, content);
    free(d);
}

static void test_checkpoint_corrupt_file(void **state)
{
    struct fx *f = *state;
    fx_open(f); /* creates the directory */
    fx_close(f);
    expect_corrupt(f, "", "empty file");
    expect_corrupt(f, "{\"version\":1,\n\"mapping\": tru", "invalid JSON at line 2");
    expect_corrupt(f, "[]", "top level is not an object");
    expect_corrupt(f, "{\"mapping\":\"" ID "\",\"partitions\":{}}", "\"version\"");
    expect_corrupt(f, "{\"version\":2,\"mapping\":\"" ID "\",\"partitions\":{}}",
                   "unsupported version 2");
    expect_corrupt(f, "{\"version\":1,\"mapping\":\"other\",\"partitions\":{}}",
                   "is for mapping \"other\"");
    expect_corrupt(f, "{\"version\":1,\"mapping\":\"" ID "\",\"partitions\":[]}", "\"partitions\"");
    expect_corrupt(f, "{\"version\":1,\"mapping\":\"" ID "\",\"partitions\":{\"a\":{\"pos\":1}}}",
                   "partition \"a\" has no string \"pos\"");
    expect_corrupt(f,
                   "{\"version\":1,\"mapping\":\"" ID
                   "\",\"partitions\":{\"a\":{\"pos\":\"1\",\"meta\":[]}}}",
                   "\"meta\"");
    expect_corrupt(f,
                   "{\"version\":1,\"mapping\":\"" ID
                   "\",\"partitions\":{\"a\":{\"pos\":\"1\"},\"a\":{\"pos\":\"2\"}}}",
                   "appears twice");
}

static void test_checkpoint_bad_dir(void **state)
{
    struct fx *f = *state;
    char file[4200], under[4300];
    snprintf(file, sizeof(file), "%s/plainfile", f->dir);
    test_write_file(file, "w", "x", 1);
    snprintf(under, sizeof(under), "%s/state", file);
    char err[512] = "";
    struct sl_ckpt *ck = NULL;
    assert_int_equal(sl_ckpt_open(&f->loop, under, ID, &ck, err, sizeof(err)), SL_EIO);
    assert_null(ck);
    assert_non_null(strstr(err, under));
    assert_int_equal(sl_ckpt_open(&f->loop, file, ID, &ck, err, sizeof(err)), SL_EIO);
    assert_non_null(strstr(err, "not a directory"));
}

static bool has_error(void *arg)
{
    return sl_ckpt_last_error(arg) != 0;
}

static bool written_ok(void *arg)
{
    return sl_ckpt_is_clean(arg) && sl_ckpt_last_error(arg) == 0;
}

static size_t count_lines_with(const char *path, const char *needle)
{
    char *d = read_all(path, NULL);
    assert_non_null(d);
    size_t n = 0;
    for (char *line = d; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
        }
        if (strstr(line, needle)) {
            n++;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(d);
    return n;
}

/* The directory disappears under a running store (works as root, unlike chmod): the write
 * fails, the error is kept and logged once, the store retries with a backoff and recovers
 * when the directory is back. */
static void test_checkpoint_write_error(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    char logpath[4200];
    snprintf(logpath, sizeof(logpath), "%s/log.txt", f->dir);
    FILE *lf = fopen(logpath, "w");
    assert_non_null(lf);
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, fileno(lf));

    assert_int_equal(sl_ckpt_set(f->ck, "p", "1", NULL), 0);
    settle(f);
    test_rmtree(f->state);
    assert_int_equal(sl_ckpt_set(f->ck, "p", "2", NULL), 0);
    assert_true(test_run_until(&f->loop, has_error, f->ck, 5000));
    assert_int_equal(sl_ckpt_last_error(f->ck), SL_EIO);
    assert_false(sl_ckpt_is_clean(f->ck));
    assert_int_equal(sl_ckpt_flush_sync(f->ck), SL_EIO);
    assert_int_equal(sl_ckpt_set(f->ck, "p", "3", NULL), 0);

    assert_int_equal(mkdir(f->state, 0700), 0);
    assert_true(test_run_until(&f->loop, written_ok, f->ck, 5000));
    assert_file_pos(f->path, "p", "3");
    assert_int_equal(sl_ckpt_writes(f->ck), 2);

    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    fclose(lf);
    /* The same failure (open: ENOENT) happened at least twice but is logged once. */
    assert_int_equal(count_lines_with(logpath, "error"), 1);
    assert_int_equal(count_lines_with(logpath, f->path), 2); /* error + recovered */
}

static void test_checkpoint_special_ids(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    static const char *const parts[] = {
        "quote\"in",
        "back\\slash",
        "both\\\"end\\",
        "unicode é 日本 🙂",
        "ctl\n\t\r\b\f\x01\x1f",
        "/var/log/app/a b.ndjson:1234",
        "raw\xff\xfe bytes",
        "\x7f",
    };
    static const char *const metas[] = {
        "m\"1", NULL, "\\", "ü", "line\nbreak", "{\"json\":true}", "\xc3", "",
    };
    char pos[32];
    for (size_t i = 0; i < SL_ARRAY_LEN(parts); i++) {
        snprintf(pos, sizeof(pos), "%zu\"\\", i);
        assert_int_equal(sl_ckpt_set(f->ck, parts[i], pos, metas[i]), 0);
    }
    settle(f);
    fx_close(f);

    /* cJSON (another parser than the store's writer) reads the same ids back. */
    for (size_t i = 0; i < 6; i++) {
        snprintf(pos, sizeof(pos), "%zu\"\\", i);
        assert_file_pos(f->path, parts[i], pos);
    }
    fx_open(f);
    for (size_t i = 0; i < SL_ARRAY_LEN(parts); i++) {
        snprintf(pos, sizeof(pos), "%zu\"\\", i);
        assert_entry(f->ck, parts[i], pos, metas[i]);
    }
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void test_checkpoint_write_latency(void **state)
{
    struct fx *f = *state;
    fx_open(f);
    char part[32], pos[32];
    for (int i = 0; i < 10; i++) {
        snprintf(part, sizeof(part), "shard-%d", i);
        assert_int_equal(sl_ckpt_set(f->ck, part,
                                     "49590338271490256608559692538361571095921575989136588898",
                                     NULL),
                         0);
    }
    enum { N = 30 };
    double min = 1e18, max = 0, sum = 0;
    for (int i = 0; i < N; i++) {
        snprintf(pos, sizeof(pos), "%d", i);
        assert_int_equal(sl_ckpt_set(f->ck, "shard-0", pos, NULL), 0);
        double t0 = now_us();
        assert_int_equal(sl_ckpt_flush_sync(f->ck), 0);
        double dt = now_us() - t0;
        sum += dt;
        min = dt < min ? dt : min;
        max = dt > max ? dt : max;
    }
    print_message("    sync write+fsync+rename+dir fsync (10 partitions): mean %.0f us, min %.0f "
                  "us, max %.0f us over %d\n",
                  sum / N, min, max, N);
    /* The same through the pool, as the loop sees it: set to file on disk. */
    double t0 = now_us();
    for (int i = 0; i < N; i++) {
        snprintf(pos, sizeof(pos), "%d", 1000 + i);
        assert_int_equal(sl_ckpt_set(f->ck, "shard-0", pos, NULL), 0);
        settle(f);
    }
    print_message("    pool write, set to durable: mean %.0f us over %d\n", (now_us() - t0) / N, N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_checkpoint_set_get_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_bad_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_coalesces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_flush_after_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_flush_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_atomic_under_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_crash_leaves_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_write_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_crash_before_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_corrupt_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_bad_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_write_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_special_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_write_latency, setup, teardown),
    };
    return cmocka_run_group_tests_name("checkpoint", tests, NULL, NULL);
}
