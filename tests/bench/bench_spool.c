/* SPDX-License-Identifier: Apache-2.0 */
/* bench_spool.c: the spool's write path and its open with a large spool, run by
 * bench_spool.sh (not part of the test suite). Modes:
 *   baseline DIR MB          write(2) + fdatasync of 500 x 1 KiB per batch to one file
 *   append DIR MB CONC       sl_spool_append of 500 x 1 KiB records per batch, CONC batches in
 *                            flight (each re-appends from its callback: group commit)
 *   fill DIR MB              append MB (then close) to leave a spool of that size
 *   drain DIR                open the spool DIR, read and release everything
 * Each prints one line: mode, MB, seconds, MB/s, CPU seconds, syncs, peak RSS (ru_maxrss). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "spool.h"

#define REC_BYTES 1024
#define BATCH     500

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *mode, double mb, double secs, unsigned long long syncs)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("%-10s %8.0f MB %7.2f s %8.1f MB/s  cpu %6.2f s  syncs %6llu  peak_rss %6.1f MB\n", mode,
           mb, secs, mb / secs, cpu, syncs, (double)ru.ru_maxrss / 1024.0);
}

static int baseline(const char *dir, long mb)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/baseline.dat", dir);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_APPEND, 0600);
    if (fd < 0) {
        perror(path);
        return 1;
    }
    static char buf[REC_BYTES * BATCH];
    memset(buf, 'x', sizeof(buf));
    long batches = mb * 1024 * 1024 / (long)sizeof(buf);
    double t0 = now_s();
    for (long i = 0; i < batches; i++) {
        if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fdatasync(fd) < 0) {
            perror("write");
            return 1;
        }
    }
    double t = now_s() - t0;
    close(fd);
    unlink(path);
    report("baseline", (double)batches * sizeof(buf) / 1048576.0, t, (unsigned long long)batches);
    return 0;
}

struct run {
    uv_loop_t *loop;
    struct sl_spool *sp;
    struct sl_spool_in recs[BATCH];
    long left;     /* batches still to start */
    long inflight; /* batches appended, not yet acknowledged */
    int failed;
};

static void on_append(void *arg, int status, uint64_t first_id);

static void start_one(struct run *run)
{
    if (run->left == 0 || run->failed) {
        return;
    }
    int r = sl_spool_append(run->sp, run->recs, BATCH, on_append, run);
    if (r < 0) {
        fprintf(stderr, "append: %s\n", sl_strerror(r));
        run->failed = 1;
        return;
    }
    run->left--;
    run->inflight++;
}

static void on_append(void *arg, int status, uint64_t first_id)
{
    struct run *run = arg;
    (void)first_id;
    run->inflight--;
    if (status < 0) {
        run->failed = 1;
        return;
    }
    start_one(run);
}

static void on_closed(void *arg)
{
    *(int *)arg = 1;
}

static int open_spool(uv_loop_t *loop, const char *dir, struct sl_spool **ret_sp)
{
    struct sl_spool_opts o = {.dir = dir, .name = "bench", .max_bytes = 8ull << 30};
    char err[512];
    int r = sl_spool_open(loop, &o, ret_sp, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, "open: %s\n", err);
    }
    return r;
}

static void close_spool(uv_loop_t *loop, struct sl_spool *sp)
{
    int closed = 0;
    sl_spool_close(sp, on_closed, &closed);
    while (!closed) {
        uv_run(loop, UV_RUN_ONCE);
    }
}

static int append(const char *mode, const char *dir, long mb, long conc)
{
    static char data[REC_BYTES];
    memset(data, 'y', sizeof(data));
    struct run run = {0};
    run.loop = uv_default_loop();
    for (int i = 0; i < BATCH; i++) {
        run.recs[i] = (struct sl_spool_in){data, REC_BYTES, 1700000000000, 0};
    }
    if (open_spool(run.loop, dir, &run.sp) < 0) {
        return 1;
    }
    run.left = mb * 1024 * 1024 / (REC_BYTES * BATCH);
    long batches = run.left;
    double t0 = now_s();
    for (long i = 0; i < conc; i++) {
        start_one(&run);
    }
    while ((run.left > 0 || run.inflight > 0) && !run.failed) {
        uv_run(run.loop, UV_RUN_ONCE);
    }
    double t = now_s() - t0;
    struct sl_spool_stats st;
    sl_spool_stats(run.sp, &st);
    close_spool(run.loop, run.sp);
    report(mode, (double)batches * BATCH * REC_BYTES / 1048576.0, t, (unsigned long long)st.syncs);
    return run.failed;
}

struct drain {
    struct sl_spool *sp;
    unsigned long long n, bytes;
    int failed;
};

static void on_read(void *arg, const struct sl_spool_rec *rec)
{
    struct drain *d = arg;
    d->n++;
    d->bytes += rec->len;
    if (sl_spool_release(d->sp, rec->id) < 0) {
        d->failed = 1;
    }
}

static int drain(const char *dir)
{
    uv_loop_t *loop = uv_default_loop();
    struct drain d = {0};
    double t0 = now_s();
    if (open_spool(loop, dir, &d.sp) < 0) {
        return 1;
    }
    double topen = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("open       %8.2f s to open, peak_rss %.1f MB so far\n", topen,
           (double)ru.ru_maxrss / 1024.0);
    int r;
    while ((r = sl_spool_read(d.sp, BATCH, BATCH * REC_BYTES, on_read, &d)) > 0) {
    }
    double t = now_s() - t0;
    struct sl_spool_stats st;
    sl_spool_stats(d.sp, &st);
    close_spool(loop, d.sp);
    report("drain", (double)d.bytes / 1048576.0, t, 0);
    printf("drain      %llu records read and released, %llu left, %llu segments left\n", d.n,
           (unsigned long long)st.records_live, (unsigned long long)st.segments);
    return r < 0 || d.failed;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "baseline") == 0) {
        return baseline(argv[2], strtol(argv[3], NULL, 10));
    }
    if (argc >= 5 && strcmp(argv[1], "append") == 0) {
        char mode[32];
        snprintf(mode, sizeof(mode), "append/%ld", strtol(argv[4], NULL, 10));
        return append(mode, argv[2], strtol(argv[3], NULL, 10), strtol(argv[4], NULL, 10));
    }
    if (argc >= 4 && strcmp(argv[1], "fill") == 0) {
        return append("fill", argv[2], strtol(argv[3], NULL, 10), 4);
    }
    if (argc >= 3 && strcmp(argv[1], "drain") == 0) {
        return drain(argv[2]);
    }
    fprintf(stderr, "usage: bench_spool baseline|append|fill|drain DIR [MB] [CONC]\n");
    return 2;
}
