/* SPDX-License-Identifier: Apache-2.0 */
/* test_spool.c: the delivery streams' durable spool on real temporary directories: round trip,
 * replay after a crash (a copy of the directory taken while the spool is open, as the disk would
 * hold it if the process died then), torn tails and damaged frames quarantined, quota
 * backpressure, group commit counted through the sync hook, segment deletion after release,
 * and no replay of released records after a clean restart. No sleeps: the loop runs until the
 * append callbacks have run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "helpers.h"
#include "log.h"
#include "spool.h"

#define MAX_READ 4096

struct got {
    uint64_t id;
    int64_t arrival_ms;
    uint64_t tag;
    char data[64];
    uint32_t len;
    char meta[64];
    uint32_t meta_len;
};

struct fx {
    uv_loop_t loop;
    char *dir;  /* the test's temporary directory */
    char *sdir; /* the spool's directory inside it */
    atomic_int syncs;
    int fail_syncs; /* the hook fails this many calls */
    bool gated;     /* the hook waits on gate (a pool thread) and sets entered */
    uv_sem_t gate;
    atomic_int entered;
    struct sl_spool *sp;
    int acked, status, failed;
    uint64_t first_id;
    struct got got[MAX_READ];
    int ngot;
    bool closed;
    int saved; /* sl_spool_save_released callbacks: 1 + status */
};

static int fx_sync(int fd, void *arg)
{
    struct fx *f = arg;
    atomic_fetch_add(&f->syncs, 1);
    if (f->gated) {
        atomic_store(&f->entered, 1);
        uv_sem_wait(&f->gate);
    }
    if (f->fail_syncs > 0) {
        f->fail_syncs--;
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->dir = test_tmpdir();
    f->sdir = malloc(strlen(f->dir) + 16);
    assert_non_null(f->sdir);
    snprintf(f->sdir, strlen(f->dir) + 16, "%s/clicks", f->dir);
    *state = f;
    return 0;
}

static bool closed_done(void *arg)
{
    return ((struct fx *)arg)->closed;
}

static void on_closed(void *arg)
{
    ((struct fx *)arg)->closed = true;
}

static void on_saved(void *arg, int status)
{
    ((struct fx *)arg)->saved = 1 + status;
}

static bool saved_done(void *arg)
{
    return ((struct fx *)arg)->saved != 0;
}

static void fx_close(struct fx *f)
{
    if (!f->sp) {
        return;
    }
    f->closed = false;
    sl_spool_close(f->sp, on_closed, f);
    assert_true(test_run_until(&f->loop, closed_done, f, 10000));
    f->sp = NULL;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    fx_close(f);
    test_close_all(&f->loop);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_rmtree(f->dir);
    free(f->dir);
    free(f->sdir);
    free(f);
    return 0;
}

static void fx_open_dir(struct fx *f, const char *dir, uint64_t max_bytes, uint64_t seg_bytes)
{
    struct sl_spool_opts o = {
        .dir = dir,
        .name = "clicks",
        .max_bytes = max_bytes,
        .segment_bytes = seg_bytes,
        .sync_fn = fx_sync,
        .sync_arg = f,
    };
    char err[256] = "";
    int r = sl_spool_open(&f->loop, &o, &f->sp, err, sizeof(err));
    if (r != 0) {
        fail_msg("open: %d %s", r, err);
    }
}

static void fx_open(struct fx *f, uint64_t max_bytes, uint64_t seg_bytes)
{
    fx_open_dir(f, f->sdir, max_bytes, seg_bytes);
}

static void on_append(void *arg, int status, uint64_t first_id)
{
    struct fx *f = arg;
    f->acked++;
    f->status = status;
    f->failed += status < 0;
    f->first_id = first_id;
}

struct acked_n {
    struct fx *f;
    int n;
};

static bool acked_done(void *arg)
{
    const struct acked_n *a = arg;
    return a->f->acked >= a->n;
}

static void fx_wait_acked(struct fx *f, int n)
{
    struct acked_n a = {f, n};
    assert_true(test_run_until(&f->loop, acked_done, &a, 10000));
}

/* Appends n records "<prefix>-<i>" (arrival 1000 + i, tag i) and waits for the callback. */
static int fx_append(struct fx *f, const char *prefix, int n)
{
    struct sl_spool_in in[64];
    char bufs[64][32];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) {
        int len = snprintf(bufs[i], sizeof(bufs[i]), "%s-%d", prefix, i);
        in[i] = (struct sl_spool_in){
            .data = bufs[i], .len = (uint32_t)len, .arrival_ms = 1000 + i, .tag = (uint64_t)i};
    }
    int before = f->acked;
    int r = sl_spool_append(f->sp, in, (size_t)n, on_append, f);
    if (r == 0) {
        fx_wait_acked(f, before + 1);
        assert_int_equal(f->status, 0);
    }
    return r;
}

static void on_read(void *arg, const struct sl_spool_rec *rec)
{
    struct fx *f = arg;
    assert_true(f->ngot < MAX_READ);
    struct got *g = &f->got[f->ngot++];
    g->id = rec->id;
    g->arrival_ms = rec->arrival_ms;
    g->tag = rec->tag;
    assert_true(rec->len < sizeof(g->data));
    memcpy(g->data, rec->data, rec->len);
    g->data[rec->len] = '\0';
    g->len = rec->len;
    assert_true(rec->meta_len < sizeof(g->meta));
    if (rec->meta_len) {
        memcpy(g->meta, rec->meta, rec->meta_len);
    }
    g->meta[rec->meta_len] = '\0';
    g->meta_len = rec->meta_len;
}

static int fx_read_all(struct fx *f)
{
    f->ngot = 0;
    int r;
    while ((r = sl_spool_read(f->sp, 7, 1 << 20, on_read, f)) > 0) {
    }
    assert_int_equal(r, 0);
    assert_false(sl_spool_has_unread(f->sp));
    return f->ngot;
}

static char *seg_path(const struct fx *f, const char *dir, uint64_t first_id)
{
    (void)f;
    size_t n = strlen(dir) + 64;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/seg-%020llu.spool", dir, (unsigned long long)first_id);
    return p;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static int count_segments(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '^seg-.*\\.spool$'", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    int n = -1;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* A record's metadata is kept beside its data: read back after a clean reopen and after a
 * crash, counted against the quota, refused over its limit; records without any read as
 * before. */
static void test_spool_metadata_round_trip(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 0);
    struct sl_spool_in in[3] = {
        {.data = "one", .len = 3, .arrival_ms = 7, .tag = 1, .meta = "shard-0|k1", .meta_len = 10},
        {.data = "two", .len = 3, .arrival_ms = 8, .tag = 2},
        {.data = "", .len = 0, .arrival_ms = 9, .tag = 3, .meta = "m", .meta_len = 1},
    };
    assert_int_equal(sl_spool_append(f->sp, in, 3, on_append, f), 0);
    fx_wait_acked(f, 1);
    struct sl_spool_stats st;
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.disk_bytes, 8 + 3 * SL_SPOOL_FRAME_OVERHEAD + 6 + 11);
    char big[SL_SPOOL_META_MAX_BYTES + 1];
    memset(big, 'x', sizeof(big));
    struct sl_spool_in over = {.data = "x", .len = 1, .meta = big, .meta_len = sizeof(big)};
    assert_int_equal(sl_spool_append(f->sp, &over, 1, on_append, f), SL_EINVAL);
    assert_int_equal(fx_read_all(f), 3);
    for (int pass = 0; pass < 3; pass++) {
        assert_string_equal(f->got[0].data, "one");
        assert_string_equal(f->got[0].meta, "shard-0|k1");
        assert_int_equal(f->got[0].meta_len, 10);
        assert_string_equal(f->got[1].data, "two");
        assert_int_equal(f->got[1].meta_len, 0);
        assert_int_equal(f->got[2].len, 0);
        assert_string_equal(f->got[2].meta, "m");
        assert_int_equal(f->got[2].arrival_ms, 9);
        if (pass == 0) {
            fx_close(f);
            fx_open(f, 1 << 20, 0);
        } else if (pass == 1) {
            /* a crash: the directory as the disk holds it while the spool is open */
            char cmd[8400];
            snprintf(cmd, sizeof(cmd), "cp -r '%s' '%s.crash' && rm -f '%s.crash/lock'", f->sdir,
                     f->sdir, f->sdir);
            assert_int_equal(system(cmd), 0);
            fx_close(f);
            char crash[4200];
            snprintf(crash, sizeof(crash), "%s.crash", f->sdir);
            fx_open_dir(f, crash, 1 << 20, 0);
        }
        if (pass < 2) {
            sl_spool_stats(f->sp, &st);
            assert_int_equal(st.quarantined_frames, 0);
            assert_int_equal(fx_read_all(f), 3);
        }
    }
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* A segment written before records carried metadata (the header's field at 12 a reserved 0)
 * still replays, byte for byte. */
static void test_spool_reads_files_without_metadata(void **state)
{
    struct fx *f = *state;
    assert_int_equal(mkdir(f->sdir, 0700), 0);
    char *seg = seg_path(f, f->sdir, 0);
    FILE *out = fopen(seg, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite("SLSPOOL1", 1, 8, out), 8);
    const char *datas[2] = {"old-0", "old-one"};
    for (int i = 0; i < 2; i++) {
        unsigned char fr[64] = {0};
        size_t len = strlen(datas[i]);
        put_le(fr, 0x50534c53u, 4);
        put_le(fr + 8, len, 4);
        put_le(fr + 16, (uint64_t)i, 8);
        put_le(fr + 24, 5000 + (uint64_t)i, 8);
        put_le(fr + 32, 40 + (uint64_t)i, 8);
        memcpy(fr + 40, datas[i], len);
        put_le(fr + 4, sl_crc32c(0, fr + 8, 32 + len), 4);
        assert_int_equal(fwrite(fr, 1, 40 + len, out), 40 + len);
    }
    assert_int_equal(fclose(out), 0);
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_read_all(f), 2);
    assert_string_equal(f->got[1].data, "old-one");
    assert_int_equal(f->got[1].meta_len, 0);
    assert_int_equal(f->got[1].arrival_ms, 5001);
    assert_int_equal(f->got[1].tag, 41);
    struct sl_spool_stats st;
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.quarantined_frames, 0);
    /* new records (with metadata) go after them */
    struct sl_spool_in in = {.data = "new", .len = 3, .meta = "m", .meta_len = 1};
    assert_int_equal(sl_spool_append(f->sp, &in, 1, on_append, f), 0);
    fx_wait_acked(f, 1);
    assert_int_equal(f->first_id, 2);
    free(seg);
}

static void test_spool_crc32c(void **state)
{
    (void)state;
    assert_int_equal(sl_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(sl_crc32c_portable(0, "123456789", 9), 0xe3069283u);
    char big[1000];
    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (char)(i * 7);
    }
    uint32_t whole = sl_crc32c(0, big, sizeof(big));
    assert_int_equal(sl_crc32c(sl_crc32c(0, big, 333), big + 333, sizeof(big) - 333), whole);
    assert_int_equal(sl_crc32c_portable(0, big, sizeof(big)), whole);
}

static void test_spool_round_trip(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 0);
    assert_false(sl_spool_has_unread(f->sp));
    assert_int_equal(fx_append(f, "a", 3), 0);
    assert_int_equal(f->first_id, 0);
    assert_int_equal(fx_append(f, "b", 2), 0);
    assert_int_equal(f->first_id, 3);
    assert_true(sl_spool_has_unread(f->sp));
    /* A bounded read hands out only what was asked for, in order. */
    f->ngot = 0;
    assert_int_equal(sl_spool_read(f->sp, 2, 1 << 20, on_read, f), 2);
    assert_int_equal(f->got[1].id, 1);
    /* A byte limit: "a-2" and "b-0" fit in 6 bytes, "b-1" waits for the next call. */
    f->ngot = 0;
    assert_int_equal(sl_spool_read(f->sp, 100, 6, on_read, f), 2);
    assert_int_equal(f->got[1].id, 3);
    /* At least one record whatever the limit. */
    assert_int_equal(sl_spool_read(f->sp, 100, 1, on_read, f), 1);
    assert_int_equal(f->got[2].id, 4);
    assert_false(sl_spool_has_unread(f->sp));
    fx_close(f);
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_read_all(f), 5);
    f->ngot = 0;
    fx_close(f);
    fx_open(f, 1 << 20, 0);
    assert_int_equal(sl_spool_read(f->sp, 2, 1 << 20, on_read, f), 2);
    assert_int_equal(fx_read_all(f), 3);
    assert_string_equal(f->got[0].data, "a-2");
    assert_int_equal(f->got[0].id, 2);
    assert_int_equal(f->got[0].arrival_ms, 1002);
    assert_int_equal(f->got[0].tag, 2);
    assert_string_equal(f->got[2].data, "b-1");
    assert_int_equal(f->got[2].id, 4);
    assert_int_equal(f->got[2].arrival_ms, 1001);
    struct sl_spool_stats st;
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.records_live, 5);
    assert_int_equal(st.quarantined_frames, 0);
}

static void test_spool_reopen_replays_unreleased(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_append(f, "a", 10), 0);
    assert_int_equal(fx_read_all(f), 10);
    fx_close(f);
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_read_all(f), 10);
    for (int i = 0; i < 10; i++) {
        char want[16];
        snprintf(want, sizeof(want), "a-%d", i);
        assert_string_equal(f->got[i].data, want);
        assert_int_equal(f->got[i].id, (uint64_t)i);
    }
    /* New ids continue after the old ones. */
    assert_int_equal(fx_append(f, "b", 1), 0);
    assert_int_equal(f->first_id, 10);
}

static void test_spool_crash_replays_acked(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_append(f, "a", 10), 0);
    assert_int_equal(fx_append(f, "b", 10), 0);
    assert_int_equal(fx_read_all(f), 20);
    for (uint64_t id = 0; id < 5; id++) {
        assert_int_equal(sl_spool_release(f->sp, id), 0);
    }
    /* The released state saved now: a crash after it repeats only what is released later. */
    f->saved = 0;
    assert_int_equal(sl_spool_save_released(f->sp, on_saved, f), 0);
    assert_int_equal(sl_spool_save_released(f->sp, on_saved, f), SL_EAGAIN);
    assert_true(test_run_until(&f->loop, saved_done, f, 10000));
    assert_int_equal(f->saved, 1);
    for (uint64_t id = 5; id < 8; id++) {
        assert_int_equal(sl_spool_release(f->sp, id), 0);
    }
    /* The crash: the directory as the disk holds it now, with no close. */
    char copy[4200], cmd[8500];
    snprintf(copy, sizeof(copy), "%s/crashed", f->dir);
    snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", f->sdir, copy);
    assert_int_equal(system(cmd), 0);
    fx_close(f);
    fx_open_dir(f, copy, 1 << 20, 0);
    /* Every acknowledged record not released before the save comes back (those released
     * after it too: 5 to 7). */
    assert_int_equal(fx_read_all(f), 15);
    assert_int_equal(f->got[0].id, 5);
    assert_string_equal(f->got[14].data, "b-9");
}

static void test_spool_restart_skips_released(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_append(f, "a", 10), 0);
    assert_int_equal(fx_read_all(f), 10);
    /* Out of order, as destination partitions finish. */
    uint64_t rel[] = {7, 0, 1, 2, 5, 9};
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        assert_int_equal(sl_spool_release(f->sp, rel[i]), 0);
    }
    assert_int_equal(sl_spool_release(f->sp, 7), 0);
    assert_int_equal(sl_spool_release(f->sp, 10), SL_EINVAL);
    fx_close(f);
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_read_all(f), 4);
    assert_int_equal(f->got[0].id, 3);
    assert_int_equal(f->got[1].id, 4);
    assert_int_equal(f->got[2].id, 6);
    assert_int_equal(f->got[3].id, 8);
    struct sl_spool_stats st;
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.records_live, 4);
    /* And again, after releasing the rest, nothing. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sl_spool_release(f->sp, f->got[i].id), 0);
    }
    fx_close(f);
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_read_all(f), 0);
    assert_int_equal(count_segments(f->sdir), 1); /* the new, empty one */
    assert_int_equal(fx_append(f, "c", 1), 0);
    assert_int_equal(f->first_id, 10); /* ids are not reused */
}

/* Ten records "a-0".."a-9" in segment 0, closed. Returns the segment's path. */
static char *ten_and_close(struct fx *f)
{
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_append(f, "a", 10), 0);
    fx_close(f);
    return seg_path(f, f->sdir, 0);
}

static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void expect_quarantine(const char *seg, off_t bytes)
{
    char q[4200];
    snprintf(q, sizeof(q), "%s.quarantine", seg);
    assert_int_equal(file_size(q), bytes);
}

static void test_spool_torn_tail_truncated(void **state)
{
    struct fx *f = *state;
    char *seg = ten_and_close(f);
    off_t size = file_size(seg);
    /* Each frame: 40 bytes of header and "a-N" (3 bytes). */
    assert_int_equal(size, 8 + 10 * 43);
    assert_int_equal(truncate(seg, size - 20), 0);
    char logpath[4200];
    snprintf(logpath, sizeof(logpath), "%s/log", f->dir);
    int logfd = open(logpath, O_CREAT | O_RDWR | O_TRUNC, 0600);
    assert_true(logfd >= 0);
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, logfd);
    fx_open(f, 1 << 20, 0);
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    char line[4096] = "";
    assert_true(pread(logfd, line, sizeof(line) - 1, 0) > 0);
    close(logfd);
    char want[4200];
    snprintf(want, sizeof(want),
             "%s: torn tail at offset %d (truncated frame): 23 bytes moved to %s.quarantine", seg,
             8 + 9 * 43, seg);
    if (!strstr(line, want)) {
        fail_msg("log has no \"%s\": %s", want, line);
    }
    assert_int_equal(fx_read_all(f), 9);
    assert_string_equal(f->got[8].data, "a-8");
    struct sl_spool_stats st;
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.quarantined_frames, 1);
    assert_int_equal(st.quarantined_bytes, 23);
    expect_quarantine(seg, 23);
    assert_int_equal(file_size(seg), 8 + 9 * 43);
    /* Opening again finds nothing more to quarantine: no loop. */
    fx_close(f);
    fx_open(f, 1 << 20, 0);
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.quarantined_frames, 0);
    assert_int_equal(fx_read_all(f), 9);
    expect_quarantine(seg, 23);
    free(seg);
}

static void test_spool_torn_tail_flipped_byte(void **state)
{
    struct fx *f = *state;
    char *seg = ten_and_close(f);
    off_t size = file_size(seg);
    flip_byte(seg, size - 1); /* the last record's data: its checksum no longer matches */
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_read_all(f), 9);
    expect_quarantine(seg, 43);
    assert_int_equal(file_size(seg), 8 + 9 * 43);
    free(seg);
}

static void test_spool_torn_header(void **state)
{
    struct fx *f = *state;
    char *seg = ten_and_close(f);
    /* A crash right after the segment was created: only part of its header. */
    char *seg2 = seg_path(f, f->sdir, 10);
    fx_open(f, 1 << 20, 0);
    fx_close(f);
    assert_int_equal(truncate(seg2, 3), 0);
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_read_all(f), 10);
    expect_quarantine(seg2, 3);
    assert_int_equal(file_size(seg2), 8); /* nothing left: deleted, and made anew for appends */
    /* An empty file (the crash came before the header reached the disk): dropped quietly, and
     * its id is not handed out again. */
    fx_close(f);
    char *seg3 = seg_path(f, f->sdir, 99);
    test_write_file(seg3, "w", "", 0);
    fx_open(f, 1 << 20, 0);
    struct sl_spool_stats st;
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.quarantined_frames, 0);
    assert_int_equal(fx_read_all(f), 10);
    assert_int_equal(fx_append(f, "z", 1), 0);
    assert_int_equal(f->first_id, 99);
    free(seg3);
    free(seg);
    free(seg2);
}

static void test_spool_corrupt_middle_resyncs(void **state)
{
    struct fx *f = *state;
    char *seg = ten_and_close(f);
    flip_byte(seg, 8 + 4 * 43 + 41); /* inside frame 4's data */
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_read_all(f), 9);
    assert_int_equal(f->got[3].id, 3);
    assert_int_equal(f->got[4].id, 5); /* the good frames after it are kept, ids unchanged */
    assert_string_equal(f->got[8].data, "a-9");
    expect_quarantine(seg, 43);
    assert_int_equal(file_size(seg), 8 + 9 * 43); /* rewritten without the bad frame */
    fx_close(f);
    fx_open(f, 1 << 20, 0);
    struct sl_spool_stats st;
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.quarantined_frames, 0);
    assert_int_equal(fx_read_all(f), 9);
    free(seg);
}

static void test_spool_corrupt_header_field(void **state)
{
    struct fx *f = *state;
    char *seg = ten_and_close(f);
    flip_byte(seg, 8 + 2 * 43 + 9); /* frame 2's length field */
    flip_byte(seg, 8 + 6 * 43);     /* frame 6's magic */
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_read_all(f), 8);
    assert_int_equal(f->got[2].id, 3);
    assert_int_equal(f->got[5].id, 7);
    struct sl_spool_stats st;
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.quarantined_frames, 2);
    expect_quarantine(seg, 86);
    free(seg);
}

static void test_spool_quota_backpressure(void **state)
{
    struct fx *f = *state;
    /* 2 KiB: the header and about 47 frames of 43 bytes. */
    fx_open(f, 2048, 0);
    int ok = 0, r;
    while ((r = fx_append(f, "q", 5)) == 0) {
        ok++;
    }
    assert_int_equal(r, SL_ETHROTTLED);
    assert_int_equal(ok, 9); /* 8 + 9 * 5 * 43 = 1943; one more would be 2158 */
    struct sl_spool_stats st;
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.disk_bytes, 1943);
    assert_int_equal(st.records_live, 45);
    /* Nothing of the refused append was written or handed out. */
    assert_int_equal(fx_read_all(f), 45);
    /* A batch larger than the quota itself can never fit. */
    assert_int_equal(fx_append(f, "x", 60), SL_EINVAL);
    /* Delivering frees room. */
    for (int i = 0; i < 45; i++) {
        assert_int_equal(sl_spool_release(f->sp, f->got[i].id), 0);
    }
    assert_int_equal(fx_append(f, "q", 5), 0);
    assert_int_equal(fx_read_all(f), 5);
    assert_string_equal(f->got[0].data, "q-0");
    assert_int_equal(f->got[0].id, 45);
}

static void test_spool_group_commit(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_append(f, "warm", 1), 0); /* the segment and directory synced once */
    assert_int_equal(fx_read_all(f), 1);
    int syncs_before = atomic_load(&f->syncs);
    enum { N = 20 };
    struct sl_spool_in in = {.data = "x", .len = 1, .arrival_ms = 5};
    for (int i = 0; i < N; i++) {
        assert_int_equal(sl_spool_append(f->sp, &in, 1, on_append, f), 0);
    }
    assert_int_equal(f->acked, 1); /* nothing acknowledged before the sync */
    assert_false(sl_spool_has_unread(f->sp));
    fx_wait_acked(f, 1 + N);
    assert_int_equal(f->status, 0);
    assert_int_equal(f->first_id, N); /* callbacks in append order: the last one last */
    int used = atomic_load(&f->syncs) - syncs_before;
    assert_int_equal(used, 1); /* one fdatasync for all twenty */
    assert_int_equal(fx_read_all(f), N);
}

static void test_spool_sync_failure(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 0);
    f->fail_syncs = 1;
    assert_int_equal(uv_sem_init(&f->gate, 0), 0);
    f->gated = true;
    struct sl_spool_in in = {.data = "x", .len = 1, .arrival_ms = 5};
    assert_int_equal(sl_spool_append(f->sp, &in, 1, on_append, f), 0);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    while (!atomic_load(&f->entered)) {
        sched_yield();
    }
    /* Written while the failing sync runs: they fail with it, whatever a later sync says. */
    assert_int_equal(sl_spool_append(f->sp, &in, 1, on_append, f), 0);
    assert_int_equal(sl_spool_append(f->sp, &in, 1, on_append, f), 0);
    f->gated = false;
    uv_sem_post(&f->gate);
    fx_wait_acked(f, 3);
    assert_int_equal(f->failed, 3);
    uv_sem_destroy(&f->gate);
    assert_int_equal(f->status, SL_EIO);
    assert_false(sl_spool_has_unread(f->sp));
    assert_int_equal(sl_spool_append(f->sp, &in, 1, on_append, f), SL_EIO);
}

static void test_spool_segment_deleted_after_release(void **state)
{
    struct fx *f = *state;
    /* Segments of about 5 frames (a segment is sealed when the next append would pass this). */
    fx_open(f, 1 << 20, 8 + 5 * 43);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx_append(f, "s", 5), 0);
    }
    assert_int_equal(count_segments(f->sdir), 3);
    assert_int_equal(fx_read_all(f), 15);
    char *first = seg_path(f, f->sdir, 0);
    for (uint64_t id = 1; id < 5; id++) {
        assert_int_equal(sl_spool_release(f->sp, id), 0);
    }
    assert_true(file_size(first) > 0); /* record 0 still pending */
    assert_int_equal(sl_spool_release(f->sp, 0), 0);
    assert_int_equal(file_size(first), -1);
    assert_int_equal(count_segments(f->sdir), 2);
    /* The segment appended to is kept while it is active, even when all released. */
    for (uint64_t id = 5; id < 15; id++) {
        assert_int_equal(sl_spool_release(f->sp, id), 0);
    }
    assert_int_equal(count_segments(f->sdir), 1);
    assert_int_equal(sl_spool_release(f->sp, 3), 0); /* already gone: still fine */
    struct sl_spool_stats st;
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.records_live, 0);
    assert_int_equal(st.segments, 1);
    free(first);
}

static void test_spool_group_commit_while_syncing(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_append(f, "warm", 1), 0);
    assert_int_equal(uv_sem_init(&f->gate, 0), 0);
    f->gated = true;
    int syncs_before = atomic_load(&f->syncs);
    struct sl_spool_in in = {.data = "x", .len = 1, .arrival_ms = 5};
    assert_int_equal(sl_spool_append(f->sp, &in, 1, on_append, f), 0);
    /* Run one turn: the sync starts on the pool and holds there. */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    while (!atomic_load(&f->entered)) {
        sched_yield(); /* the pool thread is about to call the hook; no timed wait */
    }
    /* Appends while that sync runs wait for the next, and share it. */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(sl_spool_append(f->sp, &in, 1, on_append, f), 0);
    }
    assert_int_equal(f->acked, 1);
    f->gated = false;
    uv_sem_post(&f->gate);
    fx_wait_acked(f, 12);
    assert_int_equal(atomic_load(&f->syncs) - syncs_before, 2);
    assert_int_equal(f->first_id, 11);
    uv_sem_destroy(&f->gate);
}

static void test_spool_close_waits_for_appends(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 0);
    struct sl_spool_in in = {.data = "late", .len = 4, .arrival_ms = 5};
    assert_int_equal(sl_spool_append(f->sp, &in, 1, on_append, f), 0);
    assert_int_equal(sl_spool_save_released(f->sp, on_saved, f), 0);
    fx_close(f); /* runs the loop until closed: the append and the save finish first */
    assert_int_equal(f->acked, 1);
    assert_int_equal(f->status, 0);
    assert_int_equal(f->saved, 1);
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_read_all(f), 1);
    assert_string_equal(f->got[0].data, "late");
}

static void test_spool_write_failure_keeps_frames_whole(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 0);
    assert_int_equal(fx_append(f, "a", 3), 0);
    char *seg = seg_path(f, f->sdir, 0);
    off_t size = file_size(seg);
    /* The file may grow by 50 bytes only: the next batch is cut short (EFBIG), as on a full
     * disk. */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)size + 50;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int r = fx_append(f, "b", 5);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(r, SL_EIO);
    assert_int_equal(file_size(seg), size); /* the part that landed was taken back */
    assert_int_equal(fx_append(f, "c", 2), 0);
    assert_int_equal(f->first_id, 3);
    fx_close(f);
    fx_open(f, 1 << 20, 0);
    struct sl_spool_stats st;
    sl_spool_stats(f->sp, &st);
    assert_int_equal(st.quarantined_frames, 0);
    assert_int_equal(fx_read_all(f), 5);
    assert_string_equal(f->got[3].data, "c-0");
    assert_int_equal(f->got[3].id, 3);
    free(seg);
}

static void test_spool_crash_replays_across_segments(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 8 + 5 * 43);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fx_append(f, "m", 5), 0);
    }
    assert_int_equal(count_segments(f->sdir), 4);
    fx_close(f);
    /* A torn tail in the last segment, after a clean close of the others. */
    char *last = seg_path(f, f->sdir, 15);
    assert_int_equal(truncate(last, file_size(last) - 1), 0);
    fx_open(f, 1 << 20, 8 + 5 * 43);
    assert_int_equal(fx_read_all(f), 19);
    for (int i = 0; i < 19; i++) {
        assert_int_equal(f->got[i].id, (uint64_t)i);
    }
    free(last);
}

static void release_on_read(void *arg, const struct sl_spool_rec *rec)
{
    struct fx *f = arg;
    on_read(arg, rec);
    assert_int_equal(sl_spool_release(f->sp, rec->id), 0);
}

static void test_spool_release_while_reading(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 8 + 5 * 43);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(fx_append(f, "r", 5), 0);
    }
    /* Each segment goes as its last record is released, from inside the read. */
    f->ngot = 0;
    while (sl_spool_read(f->sp, 3, 1 << 20, release_on_read, f) > 0) {
    }
    assert_int_equal(f->ngot, 20);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(f->got[i].id, (uint64_t)i);
    }
    assert_int_equal(count_segments(f->sdir), 1);
    fx_close(f);
    fx_open(f, 1 << 20, 8 + 5 * 43);
    assert_int_equal(fx_read_all(f), 0);
}

static void test_spool_second_opener_refused(void **state)
{
    struct fx *f = *state;
    fx_open(f, 1 << 20, 0);
    struct sl_spool_opts o = {.dir = f->sdir, .name = "clicks", .max_bytes = 1 << 20};
    struct sl_spool *other = NULL;
    char err[256] = "";
    assert_int_equal(sl_spool_open(&f->loop, &o, &other, err, sizeof(err)), SL_EINVAL);
    assert_non_null(strstr(err, "in use"));
    assert_null(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spool_crc32c),
        cmocka_unit_test_setup_teardown(test_spool_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_metadata_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_reads_files_without_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_reopen_replays_unreleased, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_crash_replays_acked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_restart_skips_released, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_torn_tail_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_torn_tail_flipped_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_torn_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_corrupt_middle_resyncs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_corrupt_header_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_quota_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_group_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_group_commit_while_syncing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_sync_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_close_waits_for_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_write_failure_keeps_frames_whole, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spool_crash_replays_across_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_segment_deleted_after_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_release_while_reading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spool_second_opener_refused, setup, teardown),
    };
    return cmocka_run_group_tests_name("spool", tests, NULL, NULL);
}
