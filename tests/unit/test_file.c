/* SPDX-License-Identifier: Apache-2.0 */
/* test_file.c: the file source against real files in a temporary directory: line splitting and
 * positions, partial lines, growth, discovery, rotation by rename, truncation, overlong lines,
 * checkpoints and fingerprints, LATEST, unusable paths, fetch limits; partition keys and arrival
 * times from JSON lines, the event, filter document, item id and KinesisBatchInfo of a record.
 * A tiny fake owner stands
 * in for the mapping. Nothing sleeps: the loop runs to a condition under a deadline, and the
 * rotate_wait clock is a fake one the tests advance. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "buf.h"
#include "config.h"
#include "helpers.h"
#include "log.h"
#include "partition.h"
#include "source.h"

#define MAX_PARTS 16
#define DEADLINE  5000

/* The fake mapping. */
struct owner {
    struct sl_part *parts[MAX_PARTS];
    size_t n;
    unsigned wakes[MAX_PARTS]; /* since the last fetch_text of the partition */
    unsigned total_wakes;
    bool gone[MAX_PARTS];
    /* checkpoint handed to the next part_add (any id) */
    const char *ck_pos;
    const char *ck_meta;
    /* the last start each partition recorded (part_set_start), and how many times */
    char start_pos[MAX_PARTS][24];
    char start_meta[MAX_PARTS][96];
    unsigned starts[MAX_PARTS];
};

static int owner_index(struct owner *o, const struct sl_part *part)
{
    for (size_t i = 0; i < o->n; i++) {
        if (o->parts[i] == part) {
            return (int)i;
        }
    }
    fail_msg("unknown partition");
    return -1;
}

static int owner_part_add(void *owner, const char *id, const char *name, struct sl_part **ret_part)
{
    struct owner *o = owner;
    assert_true(o->n < MAX_PARTS);
    struct sl_part *part = sl_part_new(id, name);
    assert_non_null(part);
    if (o->ck_pos) {
        assert_int_equal(sl_part_set_checkpoint(part, o->ck_pos, o->ck_meta), 0);
    }
    o->parts[o->n++] = part;
    *ret_part = part;
    return 0;
}

static void owner_part_wake(void *owner, struct sl_part *part)
{
    struct owner *o = owner;
    o->wakes[owner_index(o, part)]++;
    o->total_wakes++;
}

static int owner_part_set_start(void *owner, struct sl_part *part, const char *pos)
{
    struct owner *o = owner;
    int i = owner_index(o, part);
    assert_int_equal(sl_recq_count(&part->q), 0);
    snprintf(o->start_pos[i], sizeof(o->start_pos[i]), "%s", pos);
    snprintf(o->start_meta[i], sizeof(o->start_meta[i]), "%s", part->meta ? part->meta : "");
    o->starts[i]++;
    return 0;
}

static void owner_part_gone(void *owner, struct sl_part *part)
{
    struct owner *o = owner;
    int i = owner_index(o, part);
    assert_false(o->gone[i]);
    o->gone[i] = true;
}

struct fx {
    char *dir;
    uv_loop_t loop;
    struct sl_clock_fake clk;
    struct owner owner;
    struct sl_source_env env;
    const struct sl_source_ops *ops;
    void *ctx;
    char arn[600];
    char text[8192]; /* what fetch_text collected */
};

static int fx_setup(void **state)
{
    struct fx *f = sl_calloc(1, sizeof(*f));
    assert_non_null(f);
    f->dir = test_tmpdir();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    sl_clock_fake_init(&f->clk, 1000000, 1545084650987);
    f->ops = &sl_source_file;
    *state = f;
    return 0;
}

static void set_opt(struct fx *f, const char *name, int64_t v)
{
    for (const struct sl_opt *o = f->ops->opts; o->name; o++) {
        if (strcmp(o->name, name) == 0) {
            memcpy((char *)f->ctx + o->off, &v, sizeof(v));
            return;
        }
    }
    fail_msg("no option %s", name);
}

/* Sets a string option; the value is borrowed (the core would own a copy and free it). */
static void set_str(struct fx *f, const char *name, const char *v)
{
    for (const struct sl_opt *o = f->ops->opts; o->name; o++) {
        if (strcmp(o->name, name) == 0) {
            assert_int_equal(o->type, SL_OPT_STR);
            memcpy((char *)f->ctx + o->off, &v, sizeof(v));
            return;
        }
    }
    fail_msg("no option %s", name);
}

/* Creates the source context with test-friendly options; the caller may change them before
 * src_start. */
static void src_new(struct fx *f, const char *rel_pattern, int starting_position)
{
    assert_null(f->ctx);
    f->ctx = sl_calloc(1, f->ops->ctx_size);
    assert_non_null(f->ctx);
    set_opt(f, "max_line_bytes", 1024 * 1024);
    set_opt(f, "poll_interval", 10);
    set_opt(f, "rotate_wait", 50);
    set_opt(f, "read_chunk", 64 * 1024);
    set_opt(f, "rescan_interval", 0); /* the glob at every poll, as without a watch */
    snprintf(f->arn, sizeof(f->arn), "file://%s/%s", f->dir, rel_pattern);
    f->env = (struct sl_source_env){
        .loop = &f->loop,
        .clock = &f->clk.clock,
        .inst = "test",
        .region = "us-east-1",
        .arn = f->arn,
        .starting_position = starting_position,
        .owner = &f->owner,
        .part_add = owner_part_add,
        .part_wake = owner_part_wake,
        .part_gone = owner_part_gone,
        .part_set_start = owner_part_set_start,
    };
}

static void src_start(struct fx *f)
{
    char err[256];
    assert_int_equal(f->ops->check(f->ctx, f->arn, err, sizeof(err)), 0);
    assert_int_equal(f->ops->init(f->ctx, &f->env, err, sizeof(err)), 0);
    assert_int_equal(f->ops->start(f->ctx), 0);
}

/* Stops the source and releases its partitions, as a mapping would. */
static void src_free(struct fx *f)
{
    if (!f->ctx) {
        return;
    }
    f->ops->stop(f->ctx);
    for (size_t i = 0; i < f->owner.n; i++) {
        f->ops->part_release(f->ctx, f->owner.parts[i]);
        sl_part_free(f->owner.parts[i]);
    }
    memset(&f->owner, 0, sizeof(f->owner));
    f->ops->fini(f->ctx);
    sl_free(f->ctx);
    f->ctx = NULL;
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    src_free(f);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_rmtree(f->dir);
    free(f->dir);
    sl_free(f);
    return 0;
}

static void path_of(struct fx *f, const char *rel, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", f->dir, rel);
}

static void write_rel(struct fx *f, const char *rel, const char *mode, const char *data)
{
    char p[600];
    path_of(f, rel, p, sizeof(p));
    test_write_file(p, mode, data, strlen(data));
}

/* Formats the records in part's queue as "pos-next:data;" ("pos-next:!;" for oversize ones)
 * into f->text (appending) and drops them. */
static void take_records(struct fx *f, struct sl_part *part)
{
    size_t n = sl_recq_count(&part->q);
    for (size_t i = 0; i < n; i++) {
        const struct sl_record *rec = sl_recq_at(&part->q, i);
        size_t used = strlen(f->text);
        if (rec->flags & SL_REC_OVERSIZE) {
            assert_int_equal(rec->len, 0);
            snprintf(f->text + used, sizeof(f->text) - used, "%llu-%llu:!;",
                     (unsigned long long)rec->pos, (unsigned long long)rec->next_pos);
        } else {
            snprintf(f->text + used, sizeof(f->text) - used, "%llu-%llu:%.*s;",
                     (unsigned long long)rec->pos, (unsigned long long)rec->next_pos, (int)rec->len,
                     sl_recq_data(&part->q, rec));
        }
    }
    sl_recq_drop(&part->q, n);
}

/* Fetches until fetch returns 0; returns the collected text (valid until the next call). */
static const char *fetch_text(struct fx *f, struct sl_part *part, size_t max_records)
{
    f->text[0] = '\0';
    f->owner.wakes[owner_index(&f->owner, part)] = 0;
    int n;
    while ((n = f->ops->fetch(f->ctx, part, max_records, 1 << 20)) > 0) {
        assert_true((size_t)n <= max_records);
        take_records(f, part);
    }
    assert_int_equal(n, 0);
    return f->text;
}

struct wait_wake {
    struct fx *f;
    size_t part;
};

static bool woken(void *arg)
{
    struct wait_wake *w = arg;
    return w->f->owner.n > w->part && w->f->owner.wakes[w->part] > 0;
}

/* Runs the loop until part i was woken since its last fetch_text. */
static void wait_wake(struct fx *f, size_t i)
{
    struct wait_wake w = {f, i};
    assert_true(test_run_until(&f->loop, woken, &w, DEADLINE));
}

struct wait_parts {
    struct fx *f;
    size_t n;
};

static bool have_parts(void *arg)
{
    struct wait_parts *w = arg;
    return w->f->owner.n >= w->n;
}

static void wait_parts(struct fx *f, size_t n)
{
    struct wait_parts w = {f, n};
    assert_true(test_run_until(&f->loop, have_parts, &w, DEADLINE));
}

struct wait_gone {
    struct fx *f;
    size_t i;
};

static bool is_gone(void *arg)
{
    struct wait_gone *w = arg;
    return w->f->owner.gone[w->i];
}

static void cat(char *dst, size_t len, const char *s)
{
    size_t used = strlen(dst);
    snprintf(dst + used, len - used, "%s", s);
}

/* ---- tests ---- */

static void test_file_lines_and_positions(void **state)
{
    struct fx *f = *state;
    write_rel(f, "a.log", "w", "hello\n\nworld\r\nlast\n");
    src_new(f, "a.log", SL_START_TRIM_HORIZON);
    src_start(f);
    assert_int_equal(f->owner.n, 1);
    struct sl_part *part = f->owner.parts[0];
    char p[600];
    path_of(f, "a.log", p, sizeof(p));
    assert_string_equal(part->name, p);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    char id[64];
    snprintf(id, sizeof(id), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
    assert_string_equal(part->id, id);
    assert_int_equal(f->ops->lag(f->ctx, part), 19);
    assert_string_equal(fetch_text(f, part, 100), "0-6:hello;6-7:;7-14:world\r;14-19:last;");
    assert_int_equal(f->ops->lag(f->ctx, part), 0);
    assert_non_null(part->meta);
    assert_int_equal(strncmp(part->meta, "head=19:", 8), 0);
}

static void test_file_arrival_time_from_clock(void **state)
{
    struct fx *f = *state;
    write_rel(f, "a.log", "w", "x\n");
    src_new(f, "a.log", SL_START_TRIM_HORIZON);
    src_start(f);
    struct sl_part *part = f->owner.parts[0];
    assert_int_equal(f->ops->fetch(f->ctx, part, 10, 1 << 20), 1);
    assert_int_equal(sl_recq_at(&part->q, 0)->arrival_ms, 1545084650987);
}

static void test_file_partial_line_held(void **state)
{
    struct fx *f = *state;
    write_rel(f, "a.log", "w", "one\ntw");
    src_new(f, "a.log", SL_START_TRIM_HORIZON);
    src_start(f);
    struct sl_part *part = f->owner.parts[0];
    assert_string_equal(fetch_text(f, part, 100), "0-4:one;");
    assert_string_equal(fetch_text(f, part, 100), "");
    write_rel(f, "a.log", "a", "o\nthr");
    wait_wake(f, 0);
    assert_string_equal(fetch_text(f, part, 100), "4-8:two;");
    write_rel(f, "a.log", "a", "ee\n");
    wait_wake(f, 0);
    assert_string_equal(fetch_text(f, part, 100), "8-14:three;");
}

static void test_file_growth_wakes(void **state)
{
    struct fx *f = *state;
    write_rel(f, "a.log", "w", "");
    src_new(f, "a.log", SL_START_TRIM_HORIZON);
    src_start(f);
    struct sl_part *part = f->owner.parts[0];
    assert_string_equal(fetch_text(f, part, 100), "");
    for (int i = 0; i < 3; i++) {
        write_rel(f, "a.log", "a", "line\n");
        wait_wake(f, 0);
        char want[32];
        snprintf(want, sizeof(want), "%d-%d:line;", i * 5, i * 5 + 5);
        assert_string_equal(fetch_text(f, part, 100), want);
    }
    assert_int_equal(f->owner.total_wakes, 3);
}

static void test_file_new_file_discovered(void **state)
{
    struct fx *f = *state;
    write_rel(f, "a.log", "w", "a\n");
    write_rel(f, "skip.txt", "w", "no\n");
    src_new(f, "*.log", SL_START_TRIM_HORIZON);
    src_start(f);
    assert_int_equal(f->owner.n, 1);
    write_rel(f, "b.log", "w", "b1\nb2\n");
    wait_parts(f, 2);
    char p[600];
    path_of(f, "b.log", p, sizeof(p));
    assert_string_equal(f->owner.parts[1]->name, p);
    assert_string_equal(fetch_text(f, f->owner.parts[1], 100), "0-3:b1;3-6:b2;");
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "0-2:a;");
}

static void test_file_missing_then_created(void **state)
{
    struct fx *f = *state;
    src_new(f, "sub/*.log", SL_START_TRIM_HORIZON);
    src_start(f);
    assert_int_equal(f->owner.n, 0);
    char p[600];
    path_of(f, "sub", p, sizeof(p));
    assert_int_equal(mkdir(p, 0755), 0);
    write_rel(f, "sub/x.log", "w", "x\n");
    wait_parts(f, 1);
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "0-2:x;");
}

/* Rename rotation while the writer keeps appending to the old file: every line once. */
static void test_file_rotation_by_rename(void **state)
{
    struct fx *f = *state;
    char cur[600], old[600];
    path_of(f, "app.log", cur, sizeof(cur));
    path_of(f, "app.log.1", old, sizeof(old));
    write_rel(f, "app.log", "w", "a1\na2\n");
    src_new(f, "app.log", SL_START_TRIM_HORIZON);
    src_start(f);
    struct sl_part *first = f->owner.parts[0];
    char all[1024] = "";
    cat(all, sizeof(all), fetch_text(f, first, 100));

    write_rel(f, "app.log", "a", "a3\n");
    assert_int_equal(rename(cur, old), 0);
    write_rel(f, "app.log.1", "a", "a4\n");
    write_rel(f, "app.log", "w", "b1\n");
    wait_parts(f, 2);
    wait_wake(f, 0);
    struct sl_part *second = f->owner.parts[1];
    assert_string_not_equal(first->id, second->id);
    cat(all, sizeof(all), fetch_text(f, first, 100));
    cat(all, sizeof(all), "|");
    cat(all, sizeof(all), fetch_text(f, second, 100));

    /* the old file gets an unfinished line, then goes quiet past rotate_wait */
    write_rel(f, "app.log.1", "a", "a5");
    wait_wake(f, 0);
    assert_string_equal(fetch_text(f, first, 100), "");
    assert_false(f->owner.gone[0]);
    sl_clock_fake_advance(&f->clk, 100);
    wait_wake(f, 0);
    cat(all, sizeof(all), fetch_text(f, first, 100));
    struct wait_gone g = {f, 0};
    assert_true(test_run_until(&f->loop, is_gone, &g, DEADLINE));
    assert_false(f->owner.gone[1]);
    assert_string_equal(all, "0-3:a1;3-6:a2;6-9:a3;9-12:a4;|0-3:b1;12-14:a5;");

    /* the new file goes on as usual */
    write_rel(f, "app.log", "a", "b2\n");
    wait_wake(f, 1);
    assert_string_equal(fetch_text(f, second, 100), "3-6:b2;");
}

static void test_file_deleted_read_then_gone(void **state)
{
    struct fx *f = *state;
    write_rel(f, "d.log", "w", "d1\nd2\n");
    src_new(f, "*.log", SL_START_TRIM_HORIZON);
    src_start(f);
    char p[600];
    path_of(f, "d.log", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    /* still readable to its end after deletion; no rotate_wait since it cannot be found */
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "0-3:d1;3-6:d2;");
    struct wait_gone g = {f, 0};
    assert_true(test_run_until(&f->loop, is_gone, &g, DEADLINE));
}

static void test_file_truncation_restarts(void **state)
{
    struct fx *f = *state;
    write_rel(f, "t.log", "w", "one\ntwo\n");
    src_new(f, "t.log", SL_START_TRIM_HORIZON);
    src_start(f);
    struct sl_part *part = f->owner.parts[0];
    const char *id = part->id;
    assert_string_equal(fetch_text(f, part, 100), "0-4:one;4-8:two;");
    /* copytruncate: same inode, shorter */
    char p[600];
    path_of(f, "t.log", p, sizeof(p));
    assert_int_equal(truncate(p, 0), 0);
    write_rel(f, "t.log", "a", "x\n");
    wait_wake(f, 0);
    assert_string_equal(fetch_text(f, part, 100), "0-2:x;");
    assert_int_equal(f->owner.n, 1);
    assert_string_equal(part->id, id);
    assert_int_equal(strncmp(part->meta, "head=2:", 7), 0);
}

static bool restart_seen(void *arg)
{
    struct fx *f = arg;
    return f->ops->settling(f->ctx);
}

/* Lines read into the buffer before a truncation are records: delivered (the unfinished last
 * one as it is) before the file is read again from 0, and the restart waits until the mapping
 * holds none of the old records. */
static void test_file_truncation_delivers_buffered(void **state)
{
    struct fx *f = *state;
    write_rel(f, "t.log", "w", "a\nb\nc\nd");
    src_new(f, "t.log", SL_START_TRIM_HORIZON);
    src_start(f);
    struct sl_part *part = f->owner.parts[0];
    assert_int_equal(f->ops->fetch(f->ctx, part, 1, 1 << 20), 1); /* the rest stays buffered */
    f->text[0] = '\0';
    take_records(f, part);
    assert_string_equal(f->text, "0-2:a;");
    char p[600];
    path_of(f, "t.log", p, sizeof(p));
    assert_int_equal(truncate(p, 0), 0);
    write_rel(f, "t.log", "a", "x\n");
    assert_true(test_run_until(&f->loop, restart_seen, f, DEADLINE));
    /* the old lines come while the mapping still holds them: no restart yet */
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 1 << 20), 3);
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 1 << 20), 0);
    f->text[0] = '\0';
    take_records(f, part);
    assert_string_equal(f->text, "2-4:b;4-6:c;6-7:d;");
    assert_int_equal(f->owner.starts[0], 1); /* the start at open only */
    assert_string_equal(fetch_text(f, part, 100), "0-2:x;");
    assert_int_equal(strncmp(part->meta, "head=2:", 7), 0);
    /* the new content's start is recorded with its own fingerprint */
    assert_int_equal(f->owner.starts[0], 2);
    assert_string_equal(f->owner.start_pos[0], "0");
    assert_int_equal(strncmp(f->owner.start_meta[0], "head=2:", 7), 0);
    assert_false(f->ops->settling(f->ctx));
}

/* Truncated and rewritten past our offset between two polls: the head shows it. */
static void test_file_rewrite_detected_by_head(void **state)
{
    struct fx *f = *state;
    write_rel(f, "t.log", "w", "one\ntwo\n");
    src_new(f, "t.log", SL_START_TRIM_HORIZON);
    src_start(f);
    struct sl_part *part = f->owner.parts[0];
    assert_string_equal(fetch_text(f, part, 100), "0-4:one;4-8:two;");
    char p[600];
    path_of(f, "t.log", p, sizeof(p));
    /* rewrite in place without ever being shorter than 8 bytes */
    int fd = open(p, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "ZZZZZZZZZZ\nmore\n", 16, 0), 16);
    close(fd);
    wait_wake(f, 0);
    assert_string_equal(fetch_text(f, part, 100), "0-11:ZZZZZZZZZZ;11-16:more;");
}

static void test_file_oversize_line(void **state)
{
    struct fx *f = *state;
    write_rel(f, "o.log", "w", "short\n0123456789abcdef\nok\n");
    /* whole line in the buffer */
    src_new(f, "o.log", SL_START_TRIM_HORIZON);
    set_opt(f, "max_line_bytes", 8);
    src_start(f);
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "0-6:short;6-23:!;23-26:ok;");
    src_free(f);
    /* skipped across small chunks without buffering it */
    src_new(f, "o.log", SL_START_TRIM_HORIZON);
    set_opt(f, "max_line_bytes", 8);
    set_opt(f, "read_chunk", 4);
    src_start(f);
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "0-6:short;6-23:!;23-26:ok;");
    /* an overlong line still being written: its record comes once its newline does */
    write_rel(f, "o.log", "a", "0123456789");
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "");
    write_rel(f, "o.log", "a", "xyz\nfin\n");
    wait_wake(f, 0);
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "26-40:!;40-44:fin;");
    /* exactly max_line_bytes is fine */
    write_rel(f, "o.log", "a", "12345678\n");
    wait_wake(f, 0);
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "44-53:12345678;");
}

static void test_file_checkpoint_resume(void **state)
{
    struct fx *f = *state;
    write_rel(f, "c.log", "w", "l1\nl2\nl3\n");
    src_new(f, "c.log", SL_START_LATEST);
    src_start(f);
    char meta[64];
    snprintf(meta, sizeof(meta), "%s", f->owner.parts[0]->meta);
    src_free(f);

    /* checkpoint wins over StartingPosition */
    f->owner.ck_pos = "3";
    f->owner.ck_meta = meta;
    src_new(f, "c.log", SL_START_LATEST);
    src_start(f);
    assert_int_equal(f->owner.starts[0], 0); /* the stored checkpoint says it already */
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "3-6:l2;6-9:l3;");
    src_free(f);

    /* a checkpoint without meta is trusted when in range */
    f->owner.ck_pos = "6";
    f->owner.ck_meta = NULL;
    src_new(f, "c.log", SL_START_TRIM_HORIZON);
    src_start(f);
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "6-9:l3;");
    src_free(f);

    /* past the end: truncated while we were away */
    f->owner.ck_pos = "100";
    f->owner.ck_meta = meta;
    src_new(f, "c.log", SL_START_LATEST);
    src_start(f);
    assert_string_equal(f->owner.start_pos[0], "0"); /* the new start replaces it */
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "0-3:l1;3-6:l2;6-9:l3;");
}

static void test_file_fingerprint_mismatch(void **state)
{
    struct fx *f = *state;
    write_rel(f, "c.log", "w", "l1\nl2\nl3\n");
    const char *bad[] = {
        "head=9:0000000000000000",   /* other content */
        "head=200:0000000000000000", /* longer head than the file has */
        "garbage",
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        f->owner.ck_pos = "6";
        f->owner.ck_meta = bad[i];
        src_new(f, "c.log", SL_START_LATEST);
        src_start(f);
        assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "0-3:l1;3-6:l2;6-9:l3;");
        src_free(f);
    }
}

static void test_file_latest(void **state)
{
    struct fx *f = *state;
    write_rel(f, "a.log", "w", "old1\nold2\n");
    write_rel(f, "b.log", "w", "old\npart");
    src_new(f, "*.log", SL_START_LATEST);
    src_start(f);
    assert_int_equal(f->owner.n, 2);
    struct sl_part *a = f->owner.parts[0], *b = f->owner.parts[1];
    if (strstr(a->name, "b.log")) {
        struct sl_part *t = a;
        a = b;
        b = t;
    }
    /* where LATEST started is recorded at once, with the fingerprint of what it covers */
    size_t ia = a == f->owner.parts[0] ? 0 : 1;
    assert_int_equal(f->owner.starts[ia], 1);
    assert_string_equal(f->owner.start_pos[ia], "10");
    assert_string_equal(f->owner.start_meta[ia], a->meta);
    assert_int_equal(strncmp(f->owner.start_meta[ia], "head=10:", 8), 0);
    assert_string_equal(f->owner.start_pos[1 - ia], "4");
    assert_string_equal(fetch_text(f, a, 100), "");
    assert_string_equal(fetch_text(f, b, 100), "");
    write_rel(f, "a.log", "a", "new\n");
    write_rel(f, "b.log", "a", "ial\n");
    wait_wake(f, 0);
    wait_wake(f, 1);
    assert_string_equal(fetch_text(f, a, 100), "10-14:new;");
    /* the line being written at start is delivered whole */
    assert_string_equal(fetch_text(f, b, 100), "4-12:partial;");
    /* a file that appears later is read from its start, even under LATEST */
    write_rel(f, "c.log", "w", "c1\n");
    wait_parts(f, 3);
    assert_string_equal(fetch_text(f, f->owner.parts[2], 100), "0-3:c1;");
}

static size_t count_in_file(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[1024];
    size_t n = 0;
    while (fgets(line, sizeof(line), fp)) {
        if (strstr(line, needle)) {
            n++;
        }
    }
    fclose(fp);
    return n;
}

/* Runs as root here, so permissions cannot make a file unreadable: a directory and a dangling
 * symlink stand in for it. Each is logged once over many polls, nothing stops, and the link
 * is read once its target exists. */
static void test_file_unusable_logged_once(void **state)
{
    struct fx *f = *state;
    char p[600], logp[600];
    path_of(f, "dir.log", p, sizeof(p));
    assert_int_equal(mkdir(p, 0755), 0);
    path_of(f, "link.log", p, sizeof(p));
    assert_int_equal(symlink("target.txt", p), 0);
    write_rel(f, "good.log", "w", "");
    path_of(f, "sluice.out", logp, sizeof(logp));
    int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(logfd >= 0);
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, logfd);

    src_new(f, "*.log", SL_START_TRIM_HORIZON);
    src_start(f);
    assert_int_equal(f->owner.n, 1);
    struct sl_part *good = f->owner.parts[0];
    assert_string_equal(fetch_text(f, good, 100), "");
    for (int i = 0; i < 4; i++) { /* each wake is at least one more poll */
        write_rel(f, "good.log", "a", "g\n");
        wait_wake(f, 0);
        char want[32];
        snprintf(want, sizeof(want), "%d-%d:g;", i * 2, i * 2 + 2);
        assert_string_equal(fetch_text(f, good, 100), want);
    }
    assert_int_equal(count_in_file(logp, "dir.log: not a regular file, skipping"), 1);
    assert_int_equal(count_in_file(logp, "link.log: No such file or directory, retrying"), 1);

    write_rel(f, "target.txt", "w", "t\n");
    wait_parts(f, 2);
    assert_string_equal(fetch_text(f, f->owner.parts[1], 100), "0-2:t;");
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    close(logfd);
}

/* The real thing, where permissions apply (not as root). */
static void test_file_permission_denied_logged_once(void **state)
{
    struct fx *f = *state;
    if (geteuid() == 0) {
        skip();
    }
    char p[600], logp[600];
    write_rel(f, "locked.log", "w", "secret\n");
    write_rel(f, "good.log", "w", "");
    path_of(f, "locked.log", p, sizeof(p));
    assert_int_equal(chmod(p, 0), 0);
    path_of(f, "sluice.out", logp, sizeof(logp));
    int logfd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(logfd >= 0);
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, logfd);

    src_new(f, "*.log", SL_START_TRIM_HORIZON);
    src_start(f);
    assert_int_equal(f->owner.n, 1);
    struct sl_part *good = f->owner.parts[0];
    assert_string_equal(fetch_text(f, good, 100), "");
    for (int i = 0; i < 3; i++) {
        write_rel(f, "good.log", "a", "g\n");
        wait_wake(f, 0);
        (void)fetch_text(f, good, 100);
    }
    assert_int_equal(count_in_file(logp, "locked.log: Permission denied, retrying"), 1);
    assert_int_equal(chmod(p, 0644), 0);
    wait_parts(f, 2);
    assert_string_equal(fetch_text(f, f->owner.parts[1], 100), "0-7:secret;");
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    close(logfd);
}

static void test_file_fetch_limits(void **state)
{
    struct fx *f = *state;
    write_rel(f, "m.log", "w", "123456789\n123456789\n123456789\n123456789\n123456789\n");
    src_new(f, "m.log", SL_START_TRIM_HORIZON);
    src_start(f);
    struct sl_part *part = f->owner.parts[0];
    assert_int_equal(f->ops->fetch(f->ctx, part, 2, 1 << 20), 2);
    assert_int_equal(f->ops->fetch(f->ctx, part, 2, 1 << 20), 2);
    assert_int_equal(sl_recq_count(&part->q), 4);
    /* max_bytes: stops once reached, at least one record */
    sl_recq_clear(&part->q);
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 1), 1);
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 1), 0);
    src_free(f);
    src_new(f, "m.log", SL_START_TRIM_HORIZON);
    src_start(f);
    part = f->owner.parts[0];
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 15), 2);
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 1 << 20), 3);
    assert_int_equal(sl_recq_at(&part->q, 4)->next_pos, 50);
}

static void test_file_check_and_init_errors(void **state)
{
    struct fx *f = *state;
    src_new(f, "x.log", SL_START_TRIM_HORIZON);
    char err[256];
    assert_int_equal(f->ops->check(f->ctx, "/var/log/x.log", err, sizeof(err)), SL_ECONFIG);
    assert_non_null(strstr(err, "file://"));
    assert_int_equal(f->ops->check(f->ctx, "file://var/log/x.log", err, sizeof(err)), SL_ECONFIG);
    assert_non_null(strstr(err, "absolute"));
    assert_int_equal(f->ops->check(f->ctx, "file://", err, sizeof(err)), SL_ECONFIG);
    assert_int_equal(f->ops->check(f->ctx, "file:///var/log/", err, sizeof(err)), SL_ECONFIG);
    assert_non_null(strstr(err, "directory"));
    assert_int_equal(f->ops->check(f->ctx, "file:///var/log/*.log", err, sizeof(err)), 0);
    assert_int_equal(f->ops->check(f->ctx, "file:///var/log/app-[0-9]/x?.log", err, sizeof(err)),
                     0);
    f->env.starting_position = SL_START_AT_TIMESTAMP;
    assert_int_equal(f->ops->init(f->ctx, &f->env, err, sizeof(err)), SL_ECONFIG);
    assert_non_null(strstr(err, "AT_TIMESTAMP"));
    /* fini after a failed init, and stop without start */
    f->ops->stop(f->ctx);
}

/* ---- keys, times, filter documents, batch info ---- */

/* Starts a source on one file holding text and fetches all of it into the queue. */
static struct sl_part *start_and_fetch(
    struct fx *f, const char *rel, const char *text, const char *key_field, const char *time_field)
{
    write_rel(f, rel, "w", text);
    src_new(f, rel, SL_START_TRIM_HORIZON);
    set_str(f, "partition_key_field", key_field);
    set_str(f, "arrival_time_field", time_field);
    src_start(f);
    assert_int_equal(f->owner.n, 1);
    struct sl_part *part = f->owner.parts[0];
    assert_true(f->ops->fetch(f->ctx, part, 1000, 1 << 20) > 0);
    return part;
}

/* The record_key of record i, NUL-terminated into f->text. */
static const char *key_of(struct fx *f, struct sl_part *part, size_t i)
{
    const char *k = NULL;
    size_t n = f->ops->record_key(f->ctx, part, sl_recq_at(&part->q, i), &k);
    assert_non_null(k);
    assert_true(n < sizeof(f->text));
    memcpy(f->text, k, n);
    f->text[n] = '\0';
    return f->text;
}

/* The event of record i, NUL-terminated into f->text. */
static const char *event_of(struct fx *f, struct sl_part *part, size_t i)
{
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(f->ops->encode_record(f->ctx, part, sl_recq_at(&part->q, i), &b), 0);
    assert_true(b.len < sizeof(f->text));
    memcpy(f->text, b.data, b.len + 1);
    sl_buf_fini(&b);
    return f->text;
}

/* The filter document of record i, printed unformatted into f->text. */
static const char *filter_doc_of(struct fx *f, struct sl_part *part, size_t i)
{
    cJSON *doc = f->ops->filter_doc(f->ctx, part, sl_recq_at(&part->q, i));
    assert_non_null(doc);
    char *s = cJSON_PrintUnformatted(doc);
    assert_non_null(s);
    snprintf(f->text, sizeof(f->text), "%s", s);
    cJSON_free(s);
    cJSON_Delete(doc);
    return f->text;
}

static void test_file_partition_key_field(void **state)
{
    struct fx *f = *state;
    struct sl_part *part =
        start_and_fetch(f, "k.log",
                        "{\"user\":\"alice\",\"v\":1}\n"          /* 0 */
                        "{\"v\":2,\"user\":\"b\\\"o\\u00e9b\"}\n" /* 1: escaped, UTF-8 */
                        "not json\n"                              /* 2 */
                        "{\"other\":1}\n"                         /* 3 */
                        "{\"user\":42}\n"                         /* 4 */
                        "{\"user\":-1.5}\n"                       /* 5 */
                        "{\"user\":true}\n"                       /* 6 */
                        "{\"user\":\"\"}\n"                       /* 7 */
                        "{\"user\":null}\n"                       /* 8 */
                        "{\"user\":{\"id\":1}}\n"                 /* 9 */
                        "[{\"user\":\"x\"}]\n"                    /* 10 */
                        "{\"user\":\"x\"} trailing\n"             /* 11: not JSON */
                        "{\"user\":\"carol\"}  \r\n",             /* 12: CRLF */
                        "user", NULL);
    char path[600];
    path_of(f, "k.log", path, sizeof(path));
    assert_int_equal(sl_recq_count(&part->q), 13);
    const char *want[] = {"alice",
                          "b\"o\xc3\xa9"
                          "b",
                          path,
                          path,
                          "42",
                          "-1.5",
                          "true",
                          path,
                          path,
                          path,
                          path,
                          path,
                          "carol"};
    for (size_t i = 0; i < SL_ARRAY_LEN(want); i++) {
        assert_string_equal(key_of(f, part, i), want[i]);
        const struct sl_record *rec = sl_recq_at(&part->q, i);
        /* the path is never copied into the record */
        assert_int_equal(rec->meta_len, want[i] == path ? 0 : strlen(want[i]));
        assert_int_equal(rec->arrival_ms, 1545084650987);
    }
    /* the data is untouched by the key */
    assert_int_equal(sl_recq_at(&part->q, 0)->len, 22);
    assert_memory_equal(sl_recq_data(&part->q, sl_recq_at(&part->q, 0)),
                        "{\"user\":\"alice\",\"v\":1}", 22);

    char want_ev[2048];
    snprintf(want_ev, sizeof(want_ev),
             "{\"kinesis\":{\"kinesisSchemaVersion\":\"1.0\",\"partitionKey\":\"alice\","
             "\"sequenceNumber\":\"0\",\"data\":\"eyJ1c2VyIjoiYWxpY2UiLCJ2IjoxfQ==\","
             "\"approximateArrivalTimestamp\":1545084650.987},\"eventSource\":\"sluice:file\","
             "\"eventVersion\":\"1.0\",\"eventID\":\"%s:1545084650987000:0\",\"eventName\":"
             "\"sluice:file:record\","
             "\"eventSourceARN\":\"file://%s\",\"awsRegion\":\"us-east-1\"}",
             path, path);
    assert_string_equal(event_of(f, part, 0), want_ev);
    /* JSON-escaped in the event, byte for byte */
    assert_non_null(strstr(event_of(f, part, 1), ",\"partitionKey\":\"b\\\"o\xc3\xa9"
                                                 "b\",\"sequenceNumber\":\"23\","));
    /* no key: the path, as without the option */
    char want_path[700];
    snprintf(want_path, sizeof(want_path), ",\"partitionKey\":\"%s\",\"sequenceNumber\":\"52\",",
             path);
    assert_non_null(strstr(event_of(f, part, 2), want_path));
    assert_non_null(strstr(event_of(f, part, 4), ",\"partitionKey\":\"42\","));
    /* appending to a buffer that holds something keeps it */
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_buf_puts(&b, "["), 0);
    assert_int_equal(f->ops->encode_record(f->ctx, part, sl_recq_at(&part->q, 0), &b), 0);
    assert_int_equal(b.data[0], '[');
    assert_string_equal(b.data + 1, want_ev);
    sl_buf_fini(&b);
}

static void test_file_no_key_field_no_meta(void **state)
{
    struct fx *f = *state;
    struct sl_part *part = start_and_fetch(f, "k.log", "{\"user\":\"alice\"}\n", NULL, NULL);
    assert_int_equal(sl_recq_at(&part->q, 0)->meta_len, 0);
    assert_string_equal(key_of(f, part, 0), part->name);
}

static void test_file_arrival_time_field(void **state)
{
    struct fx *f = *state;
    const int64_t read = 1545084650987;
    const int64_t t0 = 1795683600000; /* 2026-11-26T09:00:00Z */
    struct {
        const char *line;
        int64_t want;
    } cases[] = {
        {"{\"ts\":1795683600}", t0},
        {"{\"ts\":1795683600.25}", t0 + 250},
        {"{\"ts\":1795683600.1236}", t0 + 124},
        {"{\"ts\":0}", 0},
        {"{\"ts\":253402300799.9999}", 253402300799999}, /* rounds, stays in 9999 */
        {"{\"ts\":\"2026-11-26T09:00:00Z\"}", t0},
        {"{\"ts\":\"2026-11-26T09:00:00.5+00:00\"}", t0 + 500},
        {"{\"ts\":\"2026-11-26T09:00:00.123456Z\"}", t0 + 123},
        {"{\"ts\":\"2026-11-26T09:00:00+00:00\"}", t0},
        {"{\"ts\":\"2026-11-26T11:30:00+02:30\"}", t0},
        {"{\"ts\":\"2024-02-29T00:00:00Z\"}", 1709164800000},
        {"{\"x\":1,\"ts\":\"1970-01-01T00:00:01.001Z\"}", 1001},
        /* unusable: the read time */
        {"{\"ts\":\"yesterday\"}", read},
        {"{\"ts\":\"2026-11-26T09:00:00\"}", read},  /* no zone */
        {"{\"ts\":\"2026-11-26 09:00:00Z\"}", read}, /* no T */
        {"{\"ts\":\"2026-02-29T00:00:00Z\"}", read}, /* not a leap year */
        {"{\"ts\":\"2026-11-26T24:00:00Z\"}", read},
        {"{\"ts\":\"2026-11-26T09:00:00.Z\"}", read}, /* empty fraction */
        {"{\"ts\":\"2026-11-26T09:00:00Zjunk\"}", read},
        {"{\"ts\":\"1795683600\"}", read}, /* a number in a string is not ISO 8601 */
        {"{\"ts\":true}", read},
        {"{\"ts\":null}", read},
        {"{\"ts\":1e300}", read},
        {"{\"ts\":-1e300}", read},
        {"{\"other\":1795683600}", read},
        {"[1795683600]", read},
        {"1795683600", read},
        {"not json", read},
    };
    char text[4096] = "";
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        cat(text, sizeof(text), cases[i].line);
        cat(text, sizeof(text), "\n");
    }
    struct sl_part *part = start_and_fetch(f, "t.log", text, NULL, "ts");
    assert_int_equal(sl_recq_count(&part->q), SL_ARRAY_LEN(cases));
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        const struct sl_record *rec = sl_recq_at(&part->q, i);
        if (rec->arrival_ms != cases[i].want) {
            fail_msg("%s: arrival %lld, want %lld", cases[i].line, (long long)rec->arrival_ms,
                     (long long)cases[i].want);
        }
        assert_int_equal(rec->meta_len, 0); /* no key field: no key */
    }
    /* the event's approximateArrivalTimestamp follows */
    assert_non_null(
        strstr(event_of(f, part, 1), "\"approximateArrivalTimestamp\":1795683600.250}"));
}

static void test_file_key_and_time_together(void **state)
{
    struct fx *f = *state;
    struct sl_part *part = start_and_fetch(
        f, "b.log", "{\"k\":\"a\",\"t\":\"2026-11-26T09:00:00Z\"}\n{\"k\":7}\n{\"t\":1}\n", "k",
        "t");
    assert_string_equal(key_of(f, part, 0), "a");
    assert_int_equal(sl_recq_at(&part->q, 0)->arrival_ms, 1795683600000);
    assert_string_equal(key_of(f, part, 1), "7");
    assert_int_equal(sl_recq_at(&part->q, 1)->arrival_ms, 1545084650987);
    assert_string_equal(key_of(f, part, 2), part->name);
    assert_int_equal(sl_recq_at(&part->q, 2)->arrival_ms, 1000);
}

/* A last line flushed without its newline (the file rotated away) gets its key and time too. */
static void test_file_key_on_final_line(void **state)
{
    struct fx *f = *state;
    char cur[600], old[600];
    path_of(f, "r.log", cur, sizeof(cur));
    path_of(f, "r.log.1", old, sizeof(old));
    write_rel(f, "r.log", "w", "{\"k\":\"x\",\"t\":5}");
    src_new(f, "r.log", SL_START_TRIM_HORIZON);
    set_str(f, "partition_key_field", "k");
    set_str(f, "arrival_time_field", "t");
    src_start(f);
    struct sl_part *part = f->owner.parts[0];
    assert_int_equal(f->ops->fetch(f->ctx, part, 10, 1 << 20), 0);
    assert_int_equal(rename(cur, old), 0);
    sl_clock_fake_advance(&f->clk, 100);
    wait_wake(f, 0);
    assert_int_equal(f->ops->fetch(f->ctx, part, 10, 1 << 20), 1);
    assert_string_equal(key_of(f, part, 0), "x");
    assert_int_equal(sl_recq_at(&part->q, 0)->arrival_ms, 5000);
}

static void test_file_filter_doc(void **state)
{
    struct fx *f = *state;
    write_rel(f, "f.log", "w",
              "{\"user\":\"alice\",\"n\":[1,2.5,{\"d\":null}]}\n"    /* 0 */
              "plain text\n"                                         /* 40 */
              "42\n"                                                 /* 51 */
              "\"quoted\"\n"                                         /* 54 */
              "12 apples\n"                                          /* 63 */
              "\n"                                                   /* 73 */
              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n" /* 74: oversize */
              "{\"ts\":\"2026-11-26T09:00:00.5Z\",\"user\":3}\r\n"); /* 125 */
    src_new(f, "f.log", SL_START_TRIM_HORIZON);
    set_str(f, "partition_key_field", "user");
    set_str(f, "arrival_time_field", "ts");
    set_opt(f, "max_line_bytes", 45);
    src_start(f);
    struct sl_part *part = f->owner.parts[0];
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 1 << 20), 8);
    char want[1024];
    snprintf(want, sizeof(want),
             "{\"partitionKey\":\"alice\",\"sequenceNumber\":\"0\","
             "\"approximateArrivalTimestamp\":1545084650.987,"
             "\"data\":{\"user\":\"alice\",\"n\":[1,2.5,{\"d\":null}]}}");
    assert_string_equal(filter_doc_of(f, part, 0), want);
    snprintf(want, sizeof(want),
             "{\"partitionKey\":\"%s\",\"sequenceNumber\":\"40\","
             "\"approximateArrivalTimestamp\":1545084650.987,\"data\":\"plain text\"}",
             part->name);
    assert_string_equal(filter_doc_of(f, part, 1), want);
    assert_non_null(strstr(filter_doc_of(f, part, 2), ",\"data\":42}"));
    assert_non_null(strstr(filter_doc_of(f, part, 3), ",\"data\":\"quoted\"}"));
    assert_non_null(strstr(filter_doc_of(f, part, 4), ",\"data\":\"12 apples\"}"));
    assert_non_null(strstr(filter_doc_of(f, part, 5), ",\"sequenceNumber\":\"73\","));
    assert_non_null(strstr(filter_doc_of(f, part, 5), ",\"data\":\"\"}"));
    assert_true(sl_recq_at(&part->q, 6)->flags & SL_REC_OVERSIZE);
    snprintf(want, sizeof(want),
             "{\"partitionKey\":\"%s\",\"sequenceNumber\":\"74\","
             "\"approximateArrivalTimestamp\":1545084650.987,\"data\":null}",
             part->name);
    assert_string_equal(filter_doc_of(f, part, 6), want);
    /* a CRLF JSON line is JSON; its key is a number, its time a line time */
    assert_string_equal(filter_doc_of(f, part, 7),
                        "{\"partitionKey\":\"3\",\"sequenceNumber\":\"125\","
                        "\"approximateArrivalTimestamp\":1795683600.5,"
                        "\"data\":{\"ts\":\"2026-11-26T09:00:00.5Z\",\"user\":3}}");
}

static void test_file_format_item_id(void **state)
{
    struct fx *f = *state;
    struct sl_part *part = start_and_fetch(f, "i.log", "a\nbcdefghijk\nc\n", NULL, NULL);
    char buf[32];
    assert_int_equal(f->ops->format_item_id(f->ctx, part, sl_recq_at(&part->q, 0), buf, 32), 0);
    assert_string_equal(buf, "0");
    assert_int_equal(f->ops->format_item_id(f->ctx, part, sl_recq_at(&part->q, 2), buf, 32), 0);
    assert_string_equal(buf, "13");
    /* the same as the event's sequenceNumber */
    assert_non_null(strstr(event_of(f, part, 2), "\"sequenceNumber\":\"13\""));
    assert_int_equal(f->ops->format_item_id(f->ctx, part, sl_recq_at(&part->q, 2), buf, 2),
                     SL_EINVAL);
}

static void test_file_encode_batch_info(void **state)
{
    struct fx *f = *state;
    /* a name that needs escaping */
    struct sl_part *part = start_and_fetch(f, "q\"\\.log",
                                           "{\"t\":\"2026-11-26T09:00:00.021Z\"}\nx\n"
                                           "{\"t\":1795683605.58}\n",
                                           NULL, "t");
    char esc[700];
    snprintf(esc, sizeof(esc), "%s/q\\\"\\\\.log", f->dir);
    char want[2048];
    snprintf(want, sizeof(want),
             "\"KinesisBatchInfo\":{\"shardId\":\"%s\",\"startSequenceNumber\":\"0\","
             "\"endSequenceNumber\":\"35\","
             "\"approximateArrivalOfFirstRecord\":\"2026-11-26T09:00:00.021Z\","
             "\"approximateArrivalOfLastRecord\":\"2026-11-26T09:00:05.580Z\","
             "\"batchSize\":3,\"streamArn\":\"file://%s\"}",
             esc, esc);
    struct sl_buf b;
    sl_buf_init(&b);
    assert_int_equal(sl_buf_puts(&b, "{"), 0);
    struct sl_batch_run run = {part, sl_recq_at(&part->q, 0), sl_recq_at(&part->q, 2), 3};
    assert_int_equal(f->ops->encode_batch_info(f->ctx, &run, 1, &b), 0);
    assert_int_equal(b.data[0], '{');
    assert_string_equal(b.data + 1, want);
    /* one record: first == last, its read time */
    sl_buf_truncate(&b, 0);
    run = (struct sl_batch_run){part, sl_recq_at(&part->q, 1), sl_recq_at(&part->q, 1), 1};
    assert_int_equal(f->ops->encode_batch_info(f->ctx, &run, 1, &b), 0);
    snprintf(want, sizeof(want),
             "\"KinesisBatchInfo\":{\"shardId\":\"%s\",\"startSequenceNumber\":\"33\","
             "\"endSequenceNumber\":\"33\","
             "\"approximateArrivalOfFirstRecord\":\"2018-12-17T22:10:50.987Z\","
             "\"approximateArrivalOfLastRecord\":\"2018-12-17T22:10:50.987Z\","
             "\"batchSize\":1,\"streamArn\":\"file://%s\"}",
             esc, esc);
    assert_string_equal(b.data, want);
    sl_buf_fini(&b);
}

static void test_file_field_options_checked(void **state)
{
    struct fx *f = *state;
    src_new(f, "x.log", SL_START_TRIM_HORIZON);
    char err[256];
    set_str(f, "partition_key_field", "");
    assert_int_equal(f->ops->check(f->ctx, f->arn, err, sizeof(err)), SL_ECONFIG);
    assert_non_null(strstr(err, "partition_key_field"));
    set_str(f, "partition_key_field", "k");
    set_str(f, "arrival_time_field", "");
    assert_int_equal(f->ops->check(f->ctx, f->arn, err, sizeof(err)), SL_ECONFIG);
    set_str(f, "arrival_time_field", "t");
    assert_int_equal(f->ops->check(f->ctx, f->arn, err, sizeof(err)), 0);
}

static void test_file_ops_shape(void **state)
{
    (void)state;
    const struct sl_source_ops *ops = &sl_source_file;
    assert_int_equal(ops->abi, SL_SOURCE_ABI);
    assert_string_equal(ops->name, "file");
    assert_string_equal(ops->scheme, "file://");
    assert_string_equal(ops->event_open, "{\"Records\":[");
    assert_int_equal(ops->caps->batch_size_default, 100);
    assert_int_equal(ops->caps->batch_size_max, 10000);
    assert_true(ops->caps->starting_position_required);
    assert_non_null(ops->format_item_id);
    assert_non_null(ops->record_key);
    assert_non_null(ops->filter_doc);
    assert_non_null(ops->encode_batch_info);
    size_t n = 0;
    for (const struct sl_opt *o = ops->opts; o->name; o++) {
        n++;
        if (o->type == SL_OPT_STR) {
            assert_null(o->def); /* optional: unset means the path, the read time */
            assert_int_equal(o->flags & SL_OPT_REQUIRED, 0);
        } else {
            assert_non_null(o->def);
        }
        assert_non_null(o->desc);
    }
    assert_int_equal(n, 8);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

/* The eventID of record 0 of part's queue ("" if none), into id. */
static void event_id_of(struct fx *f, struct sl_part *part, char *id, size_t len)
{
    id[0] = '\0';
    if (sl_recq_count(&part->q) == 0) {
        return;
    }
    const char *ev = event_of(f, part, 0);
    const char *p = strstr(ev, "\"eventID\":\"");
    assert_non_null(p);
    p += strlen("\"eventID\":\"");
    const char *q = strchr(p, '"');
    assert_non_null(q);
    snprintf(id, len, "%.*s", (int)(q - p), p);
}

/* A content's generation is in its eventIDs and its checkpoint meta: a truncation gives a new
 * one, a resume from a matching checkpoint keeps the stored one, a mismatching one does not. */
static void test_file_generations(void **state)
{
    struct fx *f = *state;
    char p[600], id[700], want[700], meta[96];
    path_of(f, "g.log", p, sizeof(p));
    write_rel(f, "g.log", "w", "one\n");
    src_new(f, "g.log", SL_START_TRIM_HORIZON);
    src_start(f);
    struct sl_part *part = f->owner.parts[0];
    assert_non_null(strstr(part->meta, " gen=1545084650987000"));
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 1 << 20), 1);
    event_id_of(f, part, id, sizeof(id));
    snprintf(want, sizeof(want), "%s:1545084650987000:0", p);
    assert_string_equal(id, want);
    take_records(f, part);
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 1 << 20), 0);
    /* the same path and offset after a truncation: another generation */
    assert_int_equal(truncate(p, 0), 0);
    write_rel(f, "g.log", "a", "two\n");
    wait_wake(f, 0);
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 1 << 20), 1);
    event_id_of(f, part, id, sizeof(id));
    snprintf(want, sizeof(want), "%s:1545084650987001:0", p);
    assert_string_equal(id, want);
    assert_non_null(strstr(part->meta, " gen=1545084650987001"));
    snprintf(meta, sizeof(meta), "%s", part->meta);
    src_free(f);

    /* resumed from its checkpoint: the same generation, so a redelivery keeps its eventID */
    f->owner.ck_pos = "0";
    f->owner.ck_meta = meta;
    src_new(f, "g.log", SL_START_TRIM_HORIZON);
    src_start(f);
    part = f->owner.parts[0];
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 1 << 20), 1);
    event_id_of(f, part, id, sizeof(id));
    assert_string_equal(id, want);
    assert_int_equal(f->owner.starts[0], 0);
    src_free(f);

    /* a checkpoint whose fingerprint does not match: a new generation */
    f->owner.ck_pos = "0";
    f->owner.ck_meta = "head=4:0000000000000000 gen=1545084650987001";
    src_new(f, "g.log", SL_START_TRIM_HORIZON);
    src_start(f);
    part = f->owner.parts[0];
    assert_int_equal(f->ops->fetch(f->ctx, part, 100, 1 << 20), 1);
    event_id_of(f, part, id, sizeof(id));
    assert_string_not_equal(id, want);
    assert_int_equal(f->owner.starts[0], 1);
}

/* Descriptors of this process on files under dir. */
static int count_fds(const char *dir)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char link[300], target[1024];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        ssize_t len = readlink(link, target, sizeof(target) - 1);
        if (len > 0) {
            target[len] = '\0';
            n += strncmp(target, dir, strlen(dir)) == 0 && target[strlen(dir)] == '/';
        }
    }
    closedir(d);
    return n;
}

struct cap_state {
    struct fx *f;
    int base_fds;
    size_t lines;
    int max_fds;
};

/* Fetches every partition once; true once every line arrived. */
static bool cap_fetch_all(void *arg)
{
    struct cap_state *c = arg;
    struct fx *f = c->f;
    for (size_t i = 0; i < f->owner.n; i++) {
        int n = f->ops->fetch(f->ctx, f->owner.parts[i], 100, 1 << 20);
        assert_true(n >= 0);
        c->lines += (size_t)n;
        sl_recq_drop(&f->owner.parts[i]->q, (size_t)n);
    }
    int fds = count_fds(f->dir) - c->base_fds;
    if (fds > c->max_fds) {
        c->max_fds = fds;
    }
    return c->lines == 12 && !f->ops->settling(f->ctx);
}

/* max_open_files bounds the descriptors held: files without a slot wait (the source is
 * settling meanwhile), files read to their end give theirs back, every line arrives. */
static void test_file_open_cap(void **state)
{
    struct fx *f = *state;
    struct cap_state c = {f, count_fds(f->dir), 0, 0};
    for (int i = 0; i < 12; i++) {
        char rel[32], line[32];
        snprintf(rel, sizeof(rel), "f%02d.log", i);
        snprintf(line, sizeof(line), "line %d\n", i);
        write_rel(f, rel, "w", line);
    }
    src_new(f, "f*.log", SL_START_TRIM_HORIZON);
    set_opt(f, "max_open_files", 3);
    src_start(f);
    assert_int_equal(f->owner.n, 12);
    assert_true(count_fds(f->dir) - c.base_fds <= 3);
    assert_true(f->ops->settling(f->ctx)); /* 9 files wait for a descriptor */
    assert_true(test_run_until(&f->loop, cap_fetch_all, &c, DEADLINE));
    assert_true(c.max_fds <= 3);
    /* a closed file that grows is opened again */
    write_rel(f, "f05.log", "a", "more\n");
    c.lines = 11;
    assert_true(test_run_until(&f->loop, cap_fetch_all, &c, DEADLINE));
    assert_true(c.max_fds <= 3);
}

/* With the directory watched, new files and growth are seen at once, without the glob being
 * run again (the fake clock never reaches rescan_interval here). */
static void test_file_watch_without_rescan(void **state)
{
    struct fx *f = *state;
    write_rel(f, "w1.log", "w", "a\n");
    src_new(f, "w*.log", SL_START_TRIM_HORIZON);
    set_opt(f, "rescan_interval", 3600000);
    src_start(f);
    assert_int_equal(f->owner.n, 1);
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "0-2:a;");
    write_rel(f, "w2.log", "w", "b\n");
    write_rel(f, "other.txt", "w", "not matched\n");
    wait_parts(f, 2);
    assert_string_equal(fetch_text(f, f->owner.parts[1], 100), "0-2:b;");
    write_rel(f, "w1.log", "a", "c\n");
    wait_wake(f, 0);
    assert_string_equal(fetch_text(f, f->owner.parts[0], 100), "2-4:c;");
    assert_int_equal(f->owner.n, 2);
}

/* A wildcard in a directory cannot be watched: the glob runs at every poll, whatever
 * rescan_interval says. */
static void test_file_unwatchable_pattern_polls(void **state)
{
    struct fx *f = *state;
    char p[600];
    path_of(f, "s1", p, sizeof(p));
    assert_int_equal(mkdir(p, 0755), 0);
    write_rel(f, "s1/x.log", "w", "one\n");
    src_new(f, "s*/x.log", SL_START_TRIM_HORIZON);
    set_opt(f, "rescan_interval", 3600000);
    src_start(f);
    assert_int_equal(f->owner.n, 1);
    path_of(f, "s2", p, sizeof(p));
    assert_int_equal(mkdir(p, 0755), 0);
    write_rel(f, "s2/x.log", "w", "two\n");
    wait_parts(f, 2);
    assert_string_equal(fetch_text(f, f->owner.parts[1], 100), "0-4:two;");
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        T(test_file_lines_and_positions),
        T(test_file_arrival_time_from_clock),
        T(test_file_partial_line_held),
        T(test_file_growth_wakes),
        T(test_file_new_file_discovered),
        T(test_file_missing_then_created),
        T(test_file_rotation_by_rename),
        T(test_file_deleted_read_then_gone),
        T(test_file_truncation_restarts),
        T(test_file_truncation_delivers_buffered),
        T(test_file_generations),
        T(test_file_open_cap),
        T(test_file_watch_without_rescan),
        T(test_file_unwatchable_pattern_polls),
        T(test_file_rewrite_detected_by_head),
        T(test_file_oversize_line),
        T(test_file_checkpoint_resume),
        T(test_file_fingerprint_mismatch),
        T(test_file_latest),
        T(test_file_unusable_logged_once),
        T(test_file_permission_denied_logged_once),
        T(test_file_fetch_limits),
        T(test_file_check_and_init_errors),
        T(test_file_partition_key_field),
        T(test_file_no_key_field_no_meta),
        T(test_file_arrival_time_field),
        T(test_file_key_and_time_together),
        T(test_file_key_on_final_line),
        T(test_file_filter_doc),
        T(test_file_format_item_id),
        T(test_file_encode_batch_info),
        T(test_file_field_options_checked),
        T(test_file_ops_shape),
    };
    /* clang-format on */
    return cmocka_run_group_tests_name("file", tests, NULL, NULL);
}
