/* SPDX-License-Identifier: Apache-2.0 */
/* checkpoint.c: the file checkpoint store. It owns one mapping's partition positions in memory
 * (an open-addressing hash table keyed by partition id) and their file <dir>/<mapping>.json.
 * Updates only bump a generation counter; a uv_check handle (with a uv_idle handle beside it so
 * the loop does not block in poll while something is dirty) takes one snapshot per loop turn
 * and hands it to the libuv thread pool, which writes <mapping>.json.tmp, fsyncs it, renames it
 * over <mapping>.json and fsyncs the directory. At most one write is in flight; updates made
 * meanwhile go into the next one. Opening creates and removes the temp file once, so a directory
 * it cannot write in stops the run before anything is read. A failed write is retried after a
 * backoff (100 ms doubling to 1 s) and logged once per distinct error. It must not block the loop
 * thread (except in sl_ckpt_flush_sync, which is for exit), must not silently reset a corrupt file,
 * and must never leave <mapping>.json partially written. Loop thread, except write_file() which
 * runs on a pool thread and touches only the immutable paths, the snapshot buffer and the result.
 */
#include "checkpoint.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "buf.h"
#include "log.h"

#define CK_COMP            "checkpoint"
#define CK_VERSION         1
#define CK_BACKOFF_MIN_MS  100
#define CK_BACKOFF_MAX_MS  1000
#define CK_MAX_FILE_BYTES  (256u * 1024 * 1024)
#define CK_MAX_ID_BYTES    200 /* keeps "<id>.json.tmp" well under NAME_MAX */
#define CK_TABLE_MIN_SLOTS 16

struct ck_ent {
    uint32_t hash;
    char *part;
    char *pos;  /* owned; pos_cap bytes */
    char *meta; /* owned or NULL; meta_cap bytes */
    size_t pos_cap;
    size_t meta_cap;
};

/* The outcome of one write, filled on whichever thread did it. */
struct ck_result {
    const char *step; /* static: "open", "write", ... ; NULL on success */
    int sys_errno;
};

struct sl_ckpt {
    uv_loop_t *loop;
    const struct sl_ckpt_fileops *fops; /* the system's calls unless a test replaced them */
    char *id;
    char *dir;  /* absolute */
    char *path; /* <dir>/<id>.json */
    char *tmp;  /* <dir>/<id>.json.tmp */

    struct ck_ent **slots; /* power-of-two table, NULL = empty */
    size_t nslots;
    size_t count;

    /* gen counts changes; durable_gen is the gen of the last successful write; inflight_gen the
     * gen of the snapshot in the pool. Something is pending when gen is past the newest of
     * them, so a failed write needs no bookkeeping: gen stays ahead of durable_gen. */
    uint64_t gen;
    uint64_t durable_gen;
    uint64_t inflight_gen;

    uv_check_t check;
    uv_idle_t idle;
    uv_timer_t timer;
    uv_work_t work;
    int handles_open;
    bool in_flight;     /* work queued and its after_work not yet run */
    bool work_consumed; /* flush_sync already accounted the in-flight result */
    bool closing;
    bool backoff; /* timer running; no write until it fires */
    int64_t backoff_ms;

    /* work_done and work_res are written by the pool thread under mu. */
    uv_mutex_t mu;
    uv_cond_t cond;
    bool work_done;
    struct ck_result work_res;

    struct sl_buf snap;     /* the snapshot; the pool reads it while in flight */
    struct ck_ent **sorted; /* scratch for a stable order */
    size_t sorted_cap;

    sl_ckpt_durable_cb durable_cb;
    void *durable_arg;

    unsigned long writes;
    int last_error;
    const char *logged_step; /* the error last logged, so each is logged once */
    int logged_errno;
};

/* ---- hash table ---- */

static uint32_t ck_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h;
}

static size_t ck_find_slot(const struct sl_ckpt *ck, const char *part, uint32_t h)
{
    size_t mask = ck->nslots - 1;
    size_t i = h & mask;
    while (ck->slots[i]) {
        if (ck->slots[i]->hash == h && strcmp(ck->slots[i]->part, part) == 0) {
            return i;
        }
        i = (i + 1) & mask;
    }
    return i;
}

static int ck_table_grow(struct sl_ckpt *ck)
{
    size_t n = ck->nslots ? ck->nslots * 2 : CK_TABLE_MIN_SLOTS;
    struct ck_ent **slots = sl_calloc(n, sizeof(*slots));
    if (!slots) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < ck->nslots; i++) {
        struct ck_ent *e = ck->slots[i];
        if (e) {
            size_t j = e->hash & (n - 1);
            while (slots[j]) {
                j = (j + 1) & (n - 1);
            }
            slots[j] = e;
        }
    }
    sl_free(ck->slots);
    ck->slots = slots;
    ck->nslots = n;
    return 0;
}

static void ck_ent_free(struct ck_ent *e)
{
    if (e) {
        sl_free(e->part);
        sl_free(e->pos);
        sl_free(e->meta);
        sl_free(e);
    }
}

/* Copies s into *dst (capacity *cap), reusing the buffer when it fits: sets happen per batch. */
static int ck_str_assign(char **dst, size_t *cap, const char *s)
{
    size_t n = strlen(s) + 1;
    if (n > *cap) {
        size_t c = n < 32 ? 32 : n;
        char *d = sl_realloc(*dst, c);
        if (!d) {
            return SL_ENOMEM;
        }
        *dst = d;
        *cap = c;
    }
    memcpy(*dst, s, n);
    return 0;
}

static bool ck_meta_equal(const char *a, const char *b)
{
    if (!a || !b) {
        return a == b;
    }
    return strcmp(a, b) == 0;
}

/* Inserts or updates without touching gen. Sets *ret_changed when the stored value differs. */
static int
ck_put(struct sl_ckpt *ck, const char *part, const char *pos, const char *meta, bool *ret_changed)
{
    *ret_changed = false;
    if ((ck->count + 1) * 4 > ck->nslots * 3) {
        if (ck_table_grow(ck) < 0) {
            return SL_ENOMEM;
        }
    }
    uint32_t h = ck_hash(part);
    size_t i = ck_find_slot(ck, part, h);
    struct ck_ent *e = ck->slots[i];
    if (e) {
        if (strcmp(e->pos, pos) == 0 && ck_meta_equal(e->meta, meta)) {
            return 0;
        }
        if (ck_str_assign(&e->pos, &e->pos_cap, pos) < 0) {
            return SL_ENOMEM;
        }
        if (meta) {
            if (ck_str_assign(&e->meta, &e->meta_cap, meta) < 0) {
                return SL_ENOMEM;
            }
        } else {
            sl_free(e->meta);
            e->meta = NULL;
            e->meta_cap = 0;
        }
        *ret_changed = true;
        return 0;
    }
    e = sl_calloc(1, sizeof(*e));
    if (!e) {
        return SL_ENOMEM;
    }
    e->hash = h;
    e->part = sl_strdup(part);
    if (!e->part || ck_str_assign(&e->pos, &e->pos_cap, pos) < 0 ||
        (meta && ck_str_assign(&e->meta, &e->meta_cap, meta) < 0)) {
        ck_ent_free(e);
        return SL_ENOMEM;
    }
    ck->slots[i] = e;
    ck->count++;
    *ret_changed = true;
    return 0;
}

/* ---- the file: serialization and the atomic write ---- */

static int ck_json_str(struct sl_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (sl_buf_append(b, "\"", 1) < 0) {
        return SL_ENOMEM;
    }
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        if (sl_buf_append(b, run, (size_t)(p - run)) < 0) {
            return SL_ENOMEM;
        }
        if (c == '\0') {
            break;
        }
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
        case '\\':
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            n = 6;
            break;
        }
        if (sl_buf_append(b, esc, n) < 0) {
            return SL_ENOMEM;
        }
        run = p + 1;
    }
    return sl_buf_append(b, "\"", 1);
}

static int ck_ent_cmp(const void *a, const void *b)
{
    const struct ck_ent *x = *(struct ck_ent *const *)a;
    const struct ck_ent *y = *(struct ck_ent *const *)b;
    return strcmp(x->part, y->part);
}

/* Serializes the table into ck->snap, partitions sorted by id so files diff well:
 * {"version":1,"mapping":"<id>","partitions":{\n"<part>":{"pos":"..","meta":".."},\n...}}\n */
static int ck_snapshot(struct sl_ckpt *ck)
{
    if (ck->count > ck->sorted_cap) {
        size_t cap = ck->count * 2;
        struct ck_ent **s = sl_realloc(ck->sorted, cap * sizeof(*s));
        if (!s) {
            return SL_ENOMEM;
        }
        ck->sorted = s;
        ck->sorted_cap = cap;
    }
    size_t n = 0;
    for (size_t i = 0; i < ck->nslots; i++) {
        if (ck->slots[i]) {
            ck->sorted[n++] = ck->slots[i];
        }
    }
    assert(n == ck->count);
    if (n > 1) {
        qsort(ck->sorted, n, sizeof(*ck->sorted), ck_ent_cmp);
    }
    struct sl_buf *b = &ck->snap;
    sl_buf_truncate(b, 0);
    if (sl_buf_printf(b, "{\"version\":%d,\"mapping\":", CK_VERSION) < 0 ||
        ck_json_str(b, ck->id) < 0 || sl_buf_puts(b, ",\"partitions\":{") < 0) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ck_ent *e = ck->sorted[i];
        if (sl_buf_puts(b, i ? ",\n" : "\n") < 0 || ck_json_str(b, e->part) < 0 ||
            sl_buf_puts(b, ":{\"pos\":") < 0 || ck_json_str(b, e->pos) < 0) {
            return SL_ENOMEM;
        }
        if (e->meta && (sl_buf_puts(b, ",\"meta\":") < 0 || ck_json_str(b, e->meta) < 0)) {
            return SL_ENOMEM;
        }
        if (sl_buf_append(b, "}", 1) < 0) {
            return SL_ENOMEM;
        }
    }
    return sl_buf_puts(b, "}}\n");
}

static int ck_sys_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static const struct sl_ckpt_fileops ck_sys_fileops = {
    .open = ck_sys_open,
    .write = write,
    .fsync = fsync,
    .close = close,
    .rename = rename,
};

/* What stores opened from now on use instead of ck_sys_fileops (tests only). */
static const struct sl_ckpt_fileops *ck_default_fileops;

/* Writes data to tmp, fsyncs, renames over path, fsyncs dir, through fops. Any thread: reads
 * only its arguments. On failure the temp file is removed (best effort) and path is
 * untouched. */
static struct ck_result ck_write_file(const struct sl_ckpt_fileops *fops,
                                      const char *dir,
                                      const char *path,
                                      const char *tmp,
                                      const char *data,
                                      size_t len)
{
    struct ck_result res = {NULL, 0};
    int fd = fops->open(tmp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        res.step = "open";
        goto fail;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = fops->write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            res.step = "write";
            goto fail;
        }
        off += (size_t)w;
    }
    if (fops->fsync(fd) < 0) {
        res.step = "fsync";
        goto fail;
    }
    int r = fops->close(fd);
    fd = -1;
    if (r < 0) {
        res.step = "close";
        goto fail;
    }
    if (fops->rename(tmp, path) < 0) {
        res.step = "rename";
        goto fail;
    }
    int dfd = fops->open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dfd < 0) {
        res.step = "open directory";
        res.sys_errno = errno;
        return res;
    }
    /* Some file systems refuse fsync on a directory (EINVAL); the rename is then as durable
     * as that file system can make it. */
    if (fops->fsync(dfd) < 0 && errno != EINVAL) {
        res.step = "fsync directory";
        res.sys_errno = errno;
    }
    (void)fops->close(dfd);
    return res;

fail:
    res.sys_errno = errno;
    if (fd >= 0) {
        (void)fops->close(fd);
    }
    (void)unlink(tmp);
    return res;
}

/* ---- scheduling ---- */

static bool ck_busy(const struct sl_ckpt *ck)
{
    return ck->in_flight && !ck->work_consumed;
}

static bool ck_has_pending(const struct sl_ckpt *ck)
{
    return ck->gen != (ck_busy(ck) ? ck->inflight_gen : ck->durable_gen);
}

static void ck_check_cb(uv_check_t *h);
static void ck_idle_cb(uv_idle_t *h);

/* Arms the once-per-turn flush when there is something to write and nothing stops it. */
static void ck_kick(struct sl_ckpt *ck)
{
    if (ck->closing || ck->in_flight || ck->backoff || !ck_has_pending(ck)) {
        return;
    }
    (void)uv_check_start(&ck->check, ck_check_cb);
    (void)uv_idle_start(&ck->idle, ck_idle_cb);
}

static void ck_timer_cb(uv_timer_t *t)
{
    struct sl_ckpt *ck = t->data;
    ck->backoff = false;
    ck_kick(ck);
}

/* Accounts one finished write (pool or sync): exactly once per write. */
static void ck_finish(struct sl_ckpt *ck, uint64_t gen, int err, struct ck_result res)
{
    if (err == 0 && !res.step) {
        ck->writes++;
        if (gen > ck->durable_gen) {
            ck->durable_gen = gen;
        }
        if (ck->last_error) {
            sl_log_info(CK_COMP, ck->id, "%s: checkpoint write succeeded again", ck->path);
        }
        ck->last_error = 0;
        ck->logged_step = NULL;
        ck->logged_errno = 0;
        ck->backoff_ms = 0;
        if (ck->backoff) {
            (void)uv_timer_stop(&ck->timer);
            ck->backoff = false;
        }
        if (ck->durable_cb && !ck->closing) {
            ck->durable_cb(ck->durable_arg);
        }
        return;
    }
    ck->last_error = err ? err : SL_EIO;
    const char *step = res.step ? res.step : "serialize";
    if (step != ck->logged_step || res.sys_errno != ck->logged_errno) {
        if (res.step) {
            sl_log_error(CK_COMP, ck->id, "%s: %s failed: %s, retrying", ck->path, step,
                         uv_strerror(-res.sys_errno));
        } else {
            sl_log_error(CK_COMP, ck->id, "%s: serializing checkpoint failed: %s, retrying",
                         ck->path, sl_strerror(ck->last_error));
        }
        ck->logged_step = step;
        ck->logged_errno = res.sys_errno;
    }
    if (ck->closing) {
        return;
    }
    ck->backoff_ms = ck->backoff_ms ? ck->backoff_ms * 2 : CK_BACKOFF_MIN_MS;
    if (ck->backoff_ms > CK_BACKOFF_MAX_MS) {
        ck->backoff_ms = CK_BACKOFF_MAX_MS;
    }
    (void)uv_timer_stop(&ck->timer);
    (void)uv_timer_start(&ck->timer, ck_timer_cb, (uint64_t)ck->backoff_ms, 0);
    ck->backoff = true;
}

static void ck_free(struct sl_ckpt *ck);

static void ck_work_cb(uv_work_t *req)
{
    struct sl_ckpt *ck = req->data;
    struct ck_result res =
        ck_write_file(ck->fops, ck->dir, ck->path, ck->tmp, ck->snap.data, ck->snap.len);
    uv_mutex_lock(&ck->mu);
    ck->work_res = res;
    ck->work_done = true;
    uv_cond_signal(&ck->cond);
    uv_mutex_unlock(&ck->mu);
}

static void ck_after_work_cb(uv_work_t *req, int status)
{
    struct sl_ckpt *ck = req->data;
    assert(status == 0);
    (void)status;
    if (!ck->work_consumed) {
        ck_finish(ck, ck->inflight_gen, 0, ck->work_res);
    }
    ck->in_flight = false;
    ck->work_consumed = false;
    ck->work_done = false;
    if (ck->closing) {
        if (ck->handles_open == 0) {
            ck_free(ck);
        }
        return;
    }
    ck_kick(ck);
}

static void ck_check_cb(uv_check_t *h)
{
    struct sl_ckpt *ck = h->data;
    (void)uv_check_stop(&ck->check);
    (void)uv_idle_stop(&ck->idle);
    if (ck->closing || ck->in_flight || ck->backoff || !ck_has_pending(ck)) {
        return;
    }
    uint64_t gen = ck->gen;
    int r = ck_snapshot(ck);
    if (r < 0) {
        ck_finish(ck, gen, r, (struct ck_result){NULL, 0});
        return;
    }
    ck->inflight_gen = gen;
    ck->in_flight = true;
    ck->work_consumed = false;
    ck->work_done = false;
    r = uv_queue_work(ck->loop, &ck->work, ck_work_cb, ck_after_work_cb);
    if (r < 0) {
        ck->in_flight = false;
        ck_finish(ck, gen, SL_EIO, (struct ck_result){"queue", -r});
    }
}

static void ck_idle_cb(uv_idle_t *h)
{
    /* Only here so that poll does not block while the check handle waits for its turn. */
    (void)h;
}

/* ---- open and load ---- */

static bool ck_id_valid(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n <= CK_MAX_ID_BYTES && id[0] != '.' && !strchr(id, '/');
}

static char *ck_join(const char *a, const char *b, const char *c)
{
    struct sl_buf s;
    sl_buf_init(&s);
    if (sl_buf_puts(&s, a) < 0 || sl_buf_puts(&s, b) < 0 || sl_buf_puts(&s, c) < 0) {
        sl_buf_fini(&s);
        return NULL;
    }
    return sl_buf_steal(&s);
}

/* mkdir -p with mode 0700 for the components it creates. */
static int ck_mkdirs(const char *dir, char *errbuf, size_t errlen)
{
    char *p = sl_strdup(dir);
    if (!p) {
        return SL_ENOMEM;
    }
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0') {
            continue;
        }
        char save = p[i];
        p[i] = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST) {
            snprintf(errbuf, errlen, "state directory %s: cannot create %s: %s", dir, p,
                     strerror(errno));
            sl_free(p);
            return SL_EIO;
        }
        p[i] = save;
    }
    sl_free(p);
    struct stat st;
    if (stat(dir, &st) < 0) {
        snprintf(errbuf, errlen, "state directory %s: %s", dir, strerror(errno));
        return SL_EIO;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(errbuf, errlen, "state directory %s: not a directory", dir);
        return SL_EIO;
    }
    return 0;
}

/* Creates and removes the temp file, as every checkpoint write does, so that a state directory
 * sluice cannot write in stops the run before anything is read rather than after records were
 * delivered (they would be delivered again at every start). A real create, not access(2): root
 * passes access() where a read-only mount or an immutable directory still refuses. Returns 0 or
 * SL_EIO with errbuf naming the directory and the reason. */
static int ck_probe_write(const struct sl_ckpt *ck, char *errbuf, size_t errlen)
{
    const char *step = "create";
    int fd = open(ck->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0;
    if (ok) {
        (void)close(fd);
        step = "remove";
        ok = unlink(ck->tmp) == 0;
    }
    if (!ok) {
        snprintf(errbuf, errlen,
                 "state directory %s: cannot %s a file in it (%s): %s; allowed: a directory "
                 "sluice can create and remove files in",
                 ck->dir, step, ck->tmp, strerror(errno));
        return SL_EIO;
    }
    return 0;
}

/* Reads the whole file. Returns 0, SL_ENOTFOUND (no file), SL_EIO or SL_ENOMEM. */
static int ck_read_file(const char *path, struct sl_buf *b, char *errbuf, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return SL_ENOTFOUND;
        }
        snprintf(errbuf, errlen, "checkpoint file %s: cannot open: %s", path, strerror(errno));
        return SL_EIO;
    }
    int r = 0;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(errbuf, errlen, "checkpoint file %s: %s", path, strerror(errno));
        r = SL_EIO;
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > CK_MAX_FILE_BYTES) {
        snprintf(errbuf, errlen, "checkpoint file %s: %s", path,
                 S_ISREG(st.st_mode) ? "larger than 256 MiB" : "not a regular file");
        r = SL_EIO;
        goto out;
    }
    for (;;) {
        if (sl_buf_reserve(b, 65536) < 0) {
            r = SL_ENOMEM;
            goto out;
        }
        ssize_t got = read(fd, b->data + b->len, b->cap - b->len - 1);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            snprintf(errbuf, errlen, "checkpoint file %s: read: %s", path, strerror(errno));
            r = SL_EIO;
            goto out;
        }
        if (got == 0) {
            break;
        }
        b->len += (size_t)got;
        b->data[b->len] = '\0';
        if (b->len > CK_MAX_FILE_BYTES) {
            snprintf(errbuf, errlen, "checkpoint file %s: larger than 256 MiB", path);
            r = SL_EIO;
            goto out;
        }
    }
out:
    (void)close(fd);
    return r;
}

static int ck_load(struct sl_ckpt *ck, char *errbuf, size_t errlen)
{
    struct sl_buf b;
    sl_buf_init(&b);
    cJSON *root = NULL;
    int r = ck_read_file(ck->path, &b, errbuf, errlen);
    if (r == SL_ENOTFOUND) {
        r = 0;
        goto out;
    }
    if (r < 0) {
        goto out;
    }
    r = SL_EIO;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(b.data ? b.data : "", b.len, &end, false);
    if (!root) {
        size_t off = end && b.data && end >= b.data ? (size_t)(end - b.data) : 0;
        size_t line = 1, col = 1;
        for (size_t i = 0; i < off && i < b.len; i++) {
            if (b.data[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        snprintf(errbuf, errlen, "checkpoint file %s is corrupt: %s at line %zu column %zu",
                 ck->path, b.len ? "invalid JSON" : "empty file", line, col);
        goto out;
    }
    const char *what = NULL;
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *mapping = cJSON_GetObjectItemCaseSensitive(root, "mapping");
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(root, "partitions");
    if (!cJSON_IsObject(root)) {
        what = "top level is not an object";
    } else if (!cJSON_IsNumber(ver)) {
        what = "\"version\" is missing or not a number";
    } else if (ver->valuedouble != CK_VERSION) {
        snprintf(errbuf, errlen, "checkpoint file %s: unsupported version %g (this build reads %d)",
                 ck->path, ver->valuedouble, CK_VERSION);
        goto out;
    } else if (!cJSON_IsString(mapping)) {
        what = "\"mapping\" is missing or not a string";
    } else if (strcmp(mapping->valuestring, ck->id) != 0) {
        snprintf(errbuf, errlen, "checkpoint file %s is for mapping \"%s\", not \"%s\"", ck->path,
                 mapping->valuestring, ck->id);
        goto out;
    } else if (!cJSON_IsObject(parts)) {
        what = "\"partitions\" is missing or not an object";
    }
    if (what) {
        snprintf(errbuf, errlen, "checkpoint file %s is corrupt: %s", ck->path, what);
        goto out;
    }
    const cJSON *p;
    cJSON_ArrayForEach(p, parts)
    {
        const cJSON *pos = cJSON_GetObjectItemCaseSensitive(p, "pos");
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(p, "meta");
        if (!cJSON_IsObject(p)) {
            what = "is not an object";
        } else if (!cJSON_IsString(pos)) {
            what = "has no string \"pos\"";
        } else if (meta && !cJSON_IsString(meta) && !cJSON_IsNull(meta)) {
            what = "has a \"meta\" that is not a string";
        } else if (sl_ckpt_get(ck, p->string, &(struct sl_ckpt_entry){0})) {
            what = "appears twice";
        }
        if (what) {
            snprintf(errbuf, errlen, "checkpoint file %s is corrupt: partition \"%s\" %s", ck->path,
                     p->string, what);
            goto out;
        }
        bool changed;
        if (ck_put(ck, p->string, pos->valuestring, cJSON_IsString(meta) ? meta->valuestring : NULL,
                   &changed) < 0) {
            r = SL_ENOMEM;
            goto out;
        }
    }
    r = 0;
out:
    if (r == SL_ENOMEM) {
        snprintf(errbuf, errlen, "checkpoint file %s: out of memory", ck->path);
    }
    cJSON_Delete(root);
    sl_buf_fini(&b);
    return r;
}

static void ck_free(struct sl_ckpt *ck)
{
    for (size_t i = 0; i < ck->nslots; i++) {
        ck_ent_free(ck->slots[i]);
    }
    sl_free(ck->slots);
    sl_free(ck->sorted);
    sl_buf_fini(&ck->snap);
    sl_free(ck->id);
    sl_free(ck->dir);
    sl_free(ck->path);
    sl_free(ck->tmp);
    uv_cond_destroy(&ck->cond);
    uv_mutex_destroy(&ck->mu);
    sl_free(ck);
}

int sl_ckpt_open(uv_loop_t *loop,
                 const char *dir,
                 const char *mapping_id,
                 struct sl_ckpt **ret_ck,
                 char *errbuf,
                 size_t errlen)
{
    if (!ck_id_valid(mapping_id)) {
        snprintf(errbuf, errlen,
                 "checkpoint: invalid mapping id \"%s\" (must be 1 to %d bytes, no '/', not "
                 "starting with '.')",
                 mapping_id, CK_MAX_ID_BYTES);
        return SL_EINVAL;
    }
    int r = ck_mkdirs(dir, errbuf, errlen);
    if (r < 0) {
        if (r == SL_ENOMEM) {
            snprintf(errbuf, errlen, "checkpoint: out of memory");
        }
        return r;
    }
    char abs[PATH_MAX];
    if (!realpath(dir, abs)) {
        snprintf(errbuf, errlen, "state directory %s: %s", dir, strerror(errno));
        return SL_EIO;
    }
    struct sl_ckpt *ck = sl_calloc(1, sizeof(*ck));
    if (!ck) {
        snprintf(errbuf, errlen, "checkpoint: out of memory");
        return SL_ENOMEM;
    }
    if (uv_mutex_init(&ck->mu) < 0) {
        sl_free(ck);
        snprintf(errbuf, errlen, "checkpoint: cannot create a mutex");
        return SL_ENOMEM;
    }
    if (uv_cond_init(&ck->cond) < 0) {
        uv_mutex_destroy(&ck->mu);
        sl_free(ck);
        snprintf(errbuf, errlen, "checkpoint: cannot create a condition variable");
        return SL_ENOMEM;
    }
    ck->loop = loop;
    ck->fops = ck_default_fileops ? ck_default_fileops : &ck_sys_fileops;
    sl_buf_init(&ck->snap);
    ck->id = sl_strdup(mapping_id);
    ck->dir = sl_strdup(abs);
    ck->path = ck_join(abs, "/", mapping_id);
    if (ck->path) {
        char *p = ck_join(ck->path, ".json", "");
        sl_free(ck->path);
        ck->path = p;
    }
    ck->tmp = ck->path ? ck_join(ck->path, ".tmp", "") : NULL;
    if (!ck->id || !ck->dir || !ck->path || !ck->tmp || ck_table_grow(ck) < 0) {
        snprintf(errbuf, errlen, "checkpoint: out of memory");
        r = SL_ENOMEM;
        goto fail;
    }
    /* A temp file is what a crash mid-write leaves; the rename never happened, so the main
     * file is the last complete state. */
    if (unlink(ck->tmp) == 0) {
        sl_log_info(CK_COMP, ck->id, "%s: removed a temp file left by an interrupted write",
                    ck->tmp);
    } else if (errno != ENOENT) {
        sl_log_warn(CK_COMP, ck->id, "%s: cannot remove leftover temp file: %s, skipping", ck->tmp,
                    strerror(errno));
    }
    r = ck_probe_write(ck, errbuf, errlen);
    if (r < 0) {
        goto fail;
    }
    r = ck_load(ck, errbuf, errlen);
    if (r < 0) {
        goto fail;
    }
    (void)uv_check_init(loop, &ck->check);
    (void)uv_idle_init(loop, &ck->idle);
    (void)uv_timer_init(loop, &ck->timer);
    ck->check.data = ck;
    ck->idle.data = ck;
    ck->timer.data = ck;
    ck->work.data = ck;
    ck->handles_open = 3;
    *ret_ck = ck;
    return 0;

fail:
    ck_free(ck);
    return r;
}

/* ---- the API ---- */

bool sl_ckpt_get(const struct sl_ckpt *ck, const char *part_id, struct sl_ckpt_entry *ret_e)
{
    uint32_t h = ck_hash(part_id);
    const struct ck_ent *e = ck->slots[ck_find_slot(ck, part_id, h)];
    if (!e) {
        return false;
    }
    ret_e->pos = e->pos;
    ret_e->meta = e->meta;
    return true;
}

static void ck_mark_dirty(struct sl_ckpt *ck)
{
    ck->gen++;
    ck_kick(ck); /* when a write is in flight or backing off, its end kicks instead */
}

int sl_ckpt_set(struct sl_ckpt *ck, const char *part_id, const char *pos, const char *meta)
{
    bool changed;
    int r = ck_put(ck, part_id, pos, meta, &changed);
    if (r < 0) {
        return r;
    }
    if (changed) {
        ck_mark_dirty(ck);
    }
    return 0;
}

void sl_ckpt_del(struct sl_ckpt *ck, const char *part_id)
{
    size_t mask = ck->nslots - 1;
    size_t i = ck_find_slot(ck, part_id, ck_hash(part_id));
    if (!ck->slots[i]) {
        return;
    }
    ck_ent_free(ck->slots[i]);
    ck->slots[i] = NULL;
    ck->count--;
    /* Backward-shift deletion keeps linear probing free of tombstones: move each following
     * entry of the cluster back into the hole when its home slot allows it. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; ck->slots[j]; j = (j + 1) & mask) {
        size_t home = ck->slots[j]->hash & mask;
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            ck->slots[hole] = ck->slots[j];
            ck->slots[j] = NULL;
            hole = j;
        }
    }
    ck_mark_dirty(ck);
}

bool sl_ckpt_is_clean(const struct sl_ckpt *ck)
{
    return !ck_busy(ck) && ck->gen == ck->durable_gen;
}

/* About waiting: a pool write in flight is waited for on a condition variable, not by running
 * the loop, so this is safe to call from inside any loop callback (uv_run is not reentrant).
 * Its after_work callback still runs later on the loop and then only releases the request. */
int sl_ckpt_flush_sync(struct sl_ckpt *ck)
{
    assert(!ck->closing);
    if (ck->in_flight && !ck->work_consumed) {
        uv_mutex_lock(&ck->mu);
        while (!ck->work_done) {
            uv_cond_wait(&ck->cond, &ck->mu);
        }
        struct ck_result res = ck->work_res;
        uv_mutex_unlock(&ck->mu);
        ck->work_consumed = true;
        ck_finish(ck, ck->inflight_gen, 0, res);
    }
    if (ck->gen == ck->durable_gen) {
        return 0;
    }
    uint64_t gen = ck->gen;
    int r = ck_snapshot(ck);
    if (r < 0) {
        ck_finish(ck, gen, r, (struct ck_result){NULL, 0});
        return r;
    }
    struct ck_result res =
        ck_write_file(ck->fops, ck->dir, ck->path, ck->tmp, ck->snap.data, ck->snap.len);
    ck_finish(ck, gen, 0, res);
    if (res.step) {
        return SL_EIO;
    }
    (void)uv_check_stop(&ck->check);
    (void)uv_idle_stop(&ck->idle);
    return 0;
}

unsigned long sl_ckpt_writes(const struct sl_ckpt *ck)
{
    return ck->writes;
}

int sl_ckpt_last_error(const struct sl_ckpt *ck)
{
    return ck->last_error;
}

static void ck_close_cb(uv_handle_t *h)
{
    struct sl_ckpt *ck = h->data;
    if (--ck->handles_open == 0 && !ck->in_flight) {
        ck_free(ck);
    }
}

void sl_ckpt_close(struct sl_ckpt *ck)
{
    if (!ck) {
        return;
    }
    assert(!ck->closing);
    ck->closing = true;
    if (ck->gen != ck->durable_gen && !(ck_busy(ck) && ck->inflight_gen == ck->gen)) {
        sl_log_warn(CK_COMP, ck->id, "%s: closing with checkpoint updates not written", ck->path);
    }
    (void)uv_check_stop(&ck->check);
    (void)uv_idle_stop(&ck->idle);
    (void)uv_timer_stop(&ck->timer);
    uv_close((uv_handle_t *)&ck->check, ck_close_cb);
    uv_close((uv_handle_t *)&ck->idle, ck_close_cb);
    uv_close((uv_handle_t *)&ck->timer, ck_close_cb);
}

uint64_t sl_ckpt_generation(const struct sl_ckpt *ck)
{
    return ck->gen;
}

uint64_t sl_ckpt_durable_generation(const struct sl_ckpt *ck)
{
    return ck->durable_gen;
}

void sl_ckpt_set_default_fileops(const struct sl_ckpt_fileops *ops)
{
    ck_default_fileops = ops;
}

void sl_ckpt_set_fileops(struct sl_ckpt *ck, const struct sl_ckpt_fileops *ops)
{
    assert(!ck->in_flight);
    ck->fops = ops ? ops : &ck_sys_fileops;
}

void sl_ckpt_on_durable(struct sl_ckpt *ck, sl_ckpt_durable_cb cb, void *arg)
{
    ck->durable_cb = cb;
    ck->durable_arg = arg;
}
