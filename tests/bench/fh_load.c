/* SPDX-License-Identifier: Apache-2.0 */
/* fh_load.c: the delivery-stream benchmark's load generator and its plain 200 responder, run by
 * bench_firehose.sh (built by meson, not installed, not a test). Modes:
 *   put PORT [OPTIONS]   CONNS keep-alive connections to 127.0.0.1:PORT, each sending Firehose's
 *                        PutRecordBatch (X-Amz-Target Firehose_20150804.PutRecordBatch, JSON 1.1)
 *                        of RECORDS records of SIZE bytes, until CALLS calls were sent. Each
 *                        answer is read: records refused with ServiceUnavailableException (the
 *                        backpressure of a full buffer, or a 503 for the whole call) are sent
 *                        again after a backoff, as the SDKs do, so backpressure slows the run
 *                        rather than losing records; any other refusal or status is an error.
 *                        Prints one line of key=value figures on stdout; exits 1 on an error,
 *                        2 when DEADLINE seconds pass first.
 *   serve [PORT]         the baseline: answers every POST, once its body is read in full, with
 *                        a valid PutRecordBatch answer accepting every record of it (counted as
 *                        the `{"Data":` in the body), so the load generator's own ceiling on this
 *                        machine can be measured; prints "port N" once listening; runs until
 *                        SIGTERM.
 * Options of put: --random (see build_records) --conns N (4) --calls N (2000) --records N (500)
 * --size BYTES (1024)
 *                 --stream NAME (bench) --deadline SECONDS (600).
 * A record is a JSON line of exactly SIZE bytes ending in '\n' ({"seq":...,"pad":"..."} with
 * printable pseudo-random padding, words unless --random), so what a destination holds can be
 * checked by lines and bytes. The records of a call are built once; every call sends the same
 * bodies. Plain sockets and poll(2), HTTP/1.1 written by hand: the generator should cost little. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <stdint.h>

#define MAX_RECORDS 500
#define MAX_CONNS   256

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "fh_load: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

struct buf {
    char *p;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) {
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "fh_load: out of memory (%zu bytes)\n", cap);
        exit(1);
    }
    b->p = p;
    b->cap = cap;
}

static void buf_add(struct buf *b, const void *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void buf_puts(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* ---- HTTP/1.1 messages ------------------------------------------------------------------- */

/* Reading one message off a connection: headers, then Content-Length bytes of body. */
struct msg {
    struct buf in;
    size_t hdr_len;  /* bytes up to and including the blank line; 0 until seen */
    size_t body_len; /* Content-Length */
    int status;      /* of a response */
    bool close;      /* Connection: close */
};

/* The value of header NAME in the header block H (NUL-terminated), or NULL. */
static const char *header_value(const char *h, const char *name)
{
    size_t n = strlen(name);
    for (const char *l = strstr(h, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, name, n) == 0 && l[2 + n] == ':') {
            const char *v = l + 3 + n;
            while (*v == ' ') {
                v++;
            }
            return v;
        }
    }
    return NULL;
}

/* After new bytes: 1 once a whole message is in, 0 for more, -1 for a malformed one. */
static int msg_complete(struct msg *m)
{
    if (!m->hdr_len) {
        buf_reserve(&m->in, 1);
        m->in.p[m->in.len] = '\0';
        char *end = strstr(m->in.p, "\r\n\r\n");
        if (!end) {
            return m->in.len > 65536 ? -1 : 0;
        }
        m->hdr_len = (size_t)(end - m->in.p) + 4;
        char save = m->in.p[m->hdr_len - 2];
        m->in.p[m->hdr_len - 2] = '\0'; /* header_value stops at the block's end */
        const char *cl = header_value(m->in.p, "Content-Length");
        const char *conn = header_value(m->in.p, "Connection");
        m->close = conn && strncasecmp(conn, "close", 5) == 0;
        m->in.p[m->hdr_len - 2] = save;
        if (!cl) {
            return -1; /* both sides here always send Content-Length */
        }
        m->body_len = strtoull(cl, NULL, 10);
        if (strncmp(m->in.p, "HTTP/1.", 7) == 0) {
            m->status = (int)strtol(m->in.p + 9, NULL, 10);
        }
    }
    return m->in.len >= m->hdr_len + m->body_len ? 1 : 0;
}

/* Drop the message just handled, keeping any bytes of the next one. */
static void msg_next(struct msg *m)
{
    size_t used = m->hdr_len + m->body_len;
    memmove(m->in.p, m->in.p + used, m->in.len - used);
    m->in.len -= used;
    m->hdr_len = m->body_len = 0;
    m->status = 0;
    m->close = false;
}

/* Read what the socket has into M: 1 read something, 0 would block, -1 closed or failed. */
static int msg_read(int fd, struct msg *m)
{
    buf_reserve(&m->in, 256 * 1024);
    ssize_t n = read(fd, m->in.p + m->in.len, m->in.cap - m->in.len - 1);
    if (n > 0) {
        m->in.len += (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return 0;
    }
    return -1;
}

static void set_nonblock(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Write what is left of OUT from *OFF: 1 all written, 0 would block, -1 failed. */
static int write_some(int fd, const char *out, size_t len, size_t *off)
{
    while (*off < len) {
        ssize_t n = write(fd, out + *off, len - *off);
        if (n > 0) {
            *off += (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            return 0;
        } else {
            return -1;
        }
    }
    return 1;
}

static int listen_or_connect(int port, bool listening)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    if (fd < 0) {
        return -1;
    }
    if (listening) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0) {
            close(fd);
            return -1;
        }
    } else if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    set_nonblock(fd);
    return fd;
}

static double cpu_self_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- put: the load generator ------------------------------------------------------------- */

struct load {
    int port, conns, records, size;
    bool random; /* --random: records of uniformly random characters */
    long calls;
    const char *stream;
    double deadline;
    struct buf recs;                  /* the records' {"Data":"..."} elements back to back */
    size_t rec_off[MAX_RECORDS + 1];  /* element i is recs[rec_off[i], rec_off[i + 1]) */
    struct buf full;                  /* the request of a whole call */
    long started, sent, retries;      /* fresh calls, all calls, calls that were retries */
    long accepted, throttled, errors; /* records */
    int shown;                        /* error answers printed */
};

enum conn_state { C_IDLE, C_SEND, C_READ, C_WAIT, C_DONE };

struct conn {
    int fd;
    enum conn_state state;
    const char *out;
    size_t out_len, out_off;
    struct buf own; /* the request of a retry */
    struct msg msg;
    int n, idx[MAX_RECORDS]; /* the records of the call in flight */
    int retry_n, retry_idx[MAX_RECORDS];
    int attempt;
    double wake;
};

static void b64_add(struct buf *out, const unsigned char *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    buf_reserve(out, (n + 2) / 3 * 4);
    char *o = out->p + out->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    out->len = (size_t)(o - out->p);
}

/* The records: JSON lines of exactly SIZE bytes, padded with pseudo-random printable text: words
 * of a small vocabulary and numbers, about as compressible as log lines (gzip -1 makes them about
 * 40% of their size), or, with --random, characters drawn uniformly from 63 (barely compressible).
 */
static void build_records(struct load *ld)
{
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static const char *const words[] = {
        "click",   "view",     "user",  "session", "page",   "checkout", "cart",  "search",
        "mobile",  "desktop",  "GET",   "POST",    "status", "latency",  "ms",    "region",
        "eu-west", "us-east",  "ok",    "error",   "retry",  "item",     "price", "EUR",
        "USD",     "referrer", "https", "example", "com",    "id",       "ts",    "level"};
    unsigned char *raw = xmalloc((size_t)ld->size + 32);
    unsigned long long x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < ld->records; i++) {
        int h = snprintf((char *)raw, (size_t)ld->size, "{\"seq\":%d,\"pad\":\"", i);
        int j = h;
        while (j < ld->size - 3) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (ld->random) {
                raw[j++] = (unsigned char)alpha[x % (sizeof alpha - 1)];
            } else if (x % 3 == 0) {
                j += snprintf((char *)raw + j, 32, "%u ", (unsigned)(x >> 20) % 100000);
            } else {
                j += snprintf((char *)raw + j, 32, "%s ", words[(x >> 8) % 32]);
            }
        }
        memcpy(raw + ld->size - 3, "\"}\n", 3);
        ld->rec_off[i] = ld->recs.len;
        buf_puts(&ld->recs, "{\"Data\":\"");
        b64_add(&ld->recs, raw, (size_t)ld->size);
        buf_puts(&ld->recs, "\"}");
    }
    ld->rec_off[ld->records] = ld->recs.len;
    free(raw);
}

/* A PutRecordBatch request of the records IDX[0..N) into OUT. */
static void build_request(const struct load *ld, struct buf *out, const int *idx, int n)
{
    struct buf body = {0};
    buf_puts(&body, "{\"DeliveryStreamName\":\"");
    buf_puts(&body, ld->stream);
    buf_puts(&body, "\",\"Records\":[");
    for (int i = 0; i < n; i++) {
        if (i) {
            buf_add(&body, ",", 1);
        }
        buf_add(&body, ld->recs.p + ld->rec_off[idx[i]],
                ld->rec_off[idx[i] + 1] - ld->rec_off[idx[i]]);
    }
    buf_puts(&body, "]}");
    char head[512];
    int h = snprintf(head, sizeof head,
                     "POST / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "X-Amz-Target: Firehose_20150804.PutRecordBatch\r\n"
                     "Content-Type: application/x-amz-json-1.1\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     ld->port, body.len);
    out->len = 0;
    buf_add(out, head, (size_t)h);
    buf_add(out, body.p, body.len);
    free(body.p);
}

static bool has(const char *p, const char *end, const char *s)
{
    return memmem(p, (size_t)(end - p), s, strlen(s)) != NULL;
}

/* The end of the JSON object that opens at P (strings may hold braces), or NULL. */
static const char *object_end(const char *p, const char *end)
{
    bool str = false;
    int depth = 0;
    for (; p < end; p++) {
        if (str) {
            if (*p == '\\') {
                p++;
            } else if (*p == '"') {
                str = false;
            }
        } else if (*p == '"') {
            str = true;
        } else if (*p == '{') {
            depth++;
        } else if (*p == '}' && --depth == 0) {
            return p + 1;
        }
    }
    return NULL;
}

static void show_error(struct load *ld, const struct msg *m, const char *why)
{
    if (ld->shown++ < 5) {
        int len = (int)(m->body_len < 300 ? m->body_len : 300);
        fprintf(stderr, "fh_load: %s: HTTP %d: %.*s\n", why, m->status, len, m->in.p + m->hdr_len);
    }
}

/* An answer to the call in flight on C: count its records, queue those to send again. */
static void handle_answer(struct load *ld, struct conn *c)
{
    const struct msg *m = &c->msg;
    const char *p = m->in.p + m->hdr_len, *end = p + m->body_len;
    c->retry_n = 0;
    if (m->status == 200) {
        const char *rr = memmem(p, m->body_len, "\"RequestResponses\"", 18);
        const char *q = rr ? memchr(rr, '[', (size_t)(end - rr)) : NULL;
        int i = 0;
        for (; q && i < c->n; i++) {
            const char *o = memchr(q, '{', (size_t)(end - q));
            const char *oe = o ? object_end(o, end) : NULL;
            if (!oe) {
                break;
            }
            if (has(o, oe, "\"RecordId\"")) {
                ld->accepted++;
            } else if (has(o, oe, "ServiceUnavailableException")) {
                ld->throttled++;
                c->retry_idx[c->retry_n++] = c->idx[i];
            } else {
                ld->errors++;
                show_error(ld, m, "record refused");
            }
            q = oe;
        }
        if (i < c->n) {
            ld->errors += c->n - i;
            show_error(ld, m, "answer without a result per record");
        }
    } else if (m->status == 503 || has(p, end, "ServiceUnavailableException")) {
        ld->throttled += c->n;
        c->retry_n = c->n;
        memcpy(c->retry_idx, c->idx, sizeof c->idx[0] * (size_t)c->n);
    } else {
        ld->errors += c->n;
        show_error(ld, m, "call refused");
    }
    if (c->retry_n) {
        /* exponential backoff from 50 ms to 1 s, with jitter, as the SDKs' standard mode */
        double b = 0.05 * (double)(1 << (c->attempt < 5 ? c->attempt : 5));
        b = b > 1.0 ? 1.0 : b;
        c->attempt++;
        c->wake = now_s() + b * (0.5 + 0.5 * (double)rand() / RAND_MAX);
    } else {
        c->attempt = 0;
    }
}

/* What C does next: send a retry (once its backoff is over), a fresh call, or finish. */
static void conn_next(struct load *ld, struct conn *c, double now)
{
    if (c->retry_n) {
        if (now < c->wake) {
            c->state = C_WAIT;
            return;
        }
        build_request(ld, &c->own, c->retry_idx, c->retry_n);
        memcpy(c->idx, c->retry_idx, sizeof c->idx[0] * (size_t)c->retry_n);
        c->n = c->retry_n;
        c->retry_n = 0;
        c->out = c->own.p;
        c->out_len = c->own.len;
        ld->retries++;
    } else if (ld->started < ld->calls) {
        ld->started++;
        for (int i = 0; i < ld->records; i++) {
            c->idx[i] = i;
        }
        c->n = ld->records;
        c->out = ld->full.p;
        c->out_len = ld->full.len;
    } else {
        c->state = C_DONE;
        return;
    }
    ld->sent++;
    c->out_off = 0;
    c->state = C_SEND;
}

static int conn_open(struct load *ld, struct conn *c)
{
    c->fd = listen_or_connect(ld->port, false);
    if (c->fd < 0) {
        fprintf(stderr, "fh_load: connect to 127.0.0.1:%d: %s\n", ld->port, strerror(errno));
        return -1;
    }
    c->msg.in.len = 0;
    c->msg.hdr_len = c->msg.body_len = 0;
    return 0;
}

static int put_run(struct load *ld)
{
    build_records(ld);
    int all[MAX_RECORDS];
    for (int i = 0; i < ld->records; i++) {
        all[i] = i;
    }
    build_request(ld, &ld->full, all, ld->records);
    struct conn *cs = calloc((size_t)ld->conns, sizeof *cs);
    struct pollfd *pf = calloc((size_t)ld->conns, sizeof *pf);
    if (!cs || !pf) {
        return 1;
    }
    for (int i = 0; i < ld->conns; i++) {
        if (conn_open(ld, &cs[i]) != 0) {
            return 1;
        }
    }
    double cpu0 = cpu_self_s(), t0 = now_s(), t = t0;
    int rc = 0;
    for (;;) {
        int live = 0, timeout = 1000;
        for (int i = 0; i < ld->conns; i++) {
            struct conn *c = &cs[i];
            if (c->state == C_IDLE || c->state == C_WAIT) {
                conn_next(ld, c, t);
            }
            pf[i].fd = c->fd;
            pf[i].events = c->state == C_SEND ? POLLOUT : c->state == C_READ ? POLLIN : 0;
            if (c->state == C_WAIT) {
                int ms = (int)((c->wake - t) * 1000) + 1;
                timeout = ms < timeout ? ms : timeout;
            }
            live += c->state != C_DONE;
        }
        if (!live) {
            break;
        }
        if (poll(pf, (nfds_t)ld->conns, timeout) < 0 && errno != EINTR) {
            perror("fh_load: poll");
            return 1;
        }
        t = now_s();
        if (t - t0 > ld->deadline) {
            fprintf(stderr, "fh_load: deadline of %.0f s passed with %ld of %ld calls sent\n",
                    ld->deadline, ld->started, ld->calls);
            rc = 2;
            break;
        }
        for (int i = 0; i < ld->conns; i++) {
            struct conn *c = &cs[i];
            int r = 1;
            if (c->state == C_SEND && (pf[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
                r = write_some(c->fd, c->out, c->out_len, &c->out_off);
                if (r == 1) {
                    c->state = C_READ;
                }
            } else if (c->state == C_READ && (pf[i].revents & (POLLIN | POLLERR | POLLHUP))) {
                r = msg_read(c->fd, &c->msg);
                int done = r == 1 ? msg_complete(&c->msg) : 0;
                if (done < 0) {
                    fprintf(stderr, "fh_load: malformed answer\n");
                    return 1;
                }
                if (done == 1) {
                    handle_answer(ld, c);
                    bool close_it = c->msg.close;
                    msg_next(&c->msg);
                    c->state = C_IDLE;
                    if (close_it) {
                        close(c->fd);
                        if (conn_open(ld, c) != 0) {
                            return 1;
                        }
                    }
                }
            }
            if (r < 0) {
                fprintf(stderr, "fh_load: connection %d: closed by the server mid-call (%s)\n", i,
                        errno ? strerror(errno) : "EOF");
                return 1;
            }
        }
    }
    double secs = t - t0, cpu = cpu_self_s() - cpu0;
    double bytes = (double)ld->accepted * ld->size;
    printf("calls=%ld retried_calls=%ld records=%ld accepted=%ld throttled=%ld errors=%ld "
           "payload_bytes=%.0f seconds=%.3f calls_per_s=%.1f records_per_s=%.0f mb_per_s=%.1f "
           "cpu_s=%.2f\n",
           ld->sent, ld->retries, ld->started * ld->records, ld->accepted, ld->throttled,
           ld->errors, bytes, secs, (double)ld->sent / secs, (double)ld->accepted / secs,
           bytes / 1e6 / secs, cpu);
    if (rc == 0 && (ld->errors || ld->accepted != ld->started * ld->records)) {
        fprintf(stderr, "fh_load: %ld records refused or unanswered\n",
                ld->started * ld->records - ld->accepted);
        rc = 1;
    }
    return rc;
}

/* ---- serve: the plain 200 responder ------------------------------------------------------ */

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

struct peer {
    int fd;
    struct msg msg;
    struct buf out;
    size_t out_off;
};

/* The answer to the request in P->msg: every `{"Data":` of its body accepted. */
static void serve_answer(struct peer *pr)
{
    const struct msg *m = &pr->msg;
    const char *p = m->in.p + m->hdr_len, *end = p + m->body_len;
    struct buf body = {0};
    size_t n = 0;
    buf_puts(&body, "{\"FailedPutCount\":0,\"Encrypted\":false,\"RequestResponses\":[");
    for (const char *q = p; (q = memmem(q, (size_t)(end - q), "{\"Data\":", 8)); q += 8) {
        char id[64];
        int len = snprintf(id, sizeof id, "%s{\"RecordId\":\"%032zx\"}", n ? "," : "", n);
        buf_add(&body, id, (size_t)len);
        n++;
    }
    buf_puts(&body, "]}");
    char head[256];
    int h = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     body.len);
    pr->out.len = 0;
    pr->out_off = 0;
    buf_add(&pr->out, head, (size_t)h);
    buf_add(&pr->out, body.p, body.len);
    free(body.p);
}

static int serve_run(int port)
{
    int lfd = listen_or_connect(port, true);
    if (lfd < 0) {
        fprintf(stderr, "fh_load: listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    printf("port %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    struct sigaction act = {.sa_handler = on_term};
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    static struct peer peers[MAX_CONNS];
    struct pollfd pf[MAX_CONNS + 1];
    int np = 0;
    while (!stopping) {
        pf[0] = (struct pollfd){.fd = lfd, .events = np < MAX_CONNS ? POLLIN : 0};
        for (int i = 0; i < np; i++) {
            pf[i + 1] =
                (struct pollfd){.fd = peers[i].fd,
                                .events = peers[i].out_off < peers[i].out.len ? POLLOUT : POLLIN};
        }
        if (poll(pf, (nfds_t)np + 1, -1) < 0) {
            continue; /* EINTR: SIGTERM */
        }
        for (int i = np - 1; i >= 0; i--) {
            struct peer *pr = &peers[i];
            int r = 1;
            if (!pf[i + 1].revents) {
                continue;
            }
            if (pr->out_off < pr->out.len) {
                r = write_some(pr->fd, pr->out.p, pr->out.len, &pr->out_off);
            } else {
                r = msg_read(pr->fd, &pr->msg);
            }
            /* answer each whole request once the previous answer is out */
            while (r >= 0 && pr->out_off >= pr->out.len) {
                int done = msg_complete(&pr->msg);
                if (done == 0) {
                    break;
                }
                if (done < 0) {
                    r = -1;
                    break;
                }
                serve_answer(pr);
                msg_next(&pr->msg);
                r = write_some(pr->fd, pr->out.p, pr->out.len, &pr->out_off);
            }
            if (r < 0) {
                close(pr->fd);
                free(pr->msg.in.p);
                free(pr->out.p);
                peers[i] = peers[--np];
                memset(&peers[np], 0, sizeof peers[np]);
            }
        }
        if (pf[0].revents & POLLIN) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0) {
                set_nonblock(fd);
                peers[np++] = (struct peer){.fd = fd};
            }
        }
    }
    return 0;
}

/* ---- main -------------------------------------------------------------------------------- */

static void usage(void);

/* A whole decimal number from the command line, else the usage. */
static long num(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end) {
        usage();
    }
    return v;
}

static void usage(void)
{
    fprintf(
        stderr,
        "usage: fh_load put PORT [--random] [--conns N] [--calls N] [--records N] [--size BYTES]\n"
        "                        [--stream NAME] [--deadline SECONDS]\n"
        "       fh_load serve [PORT]\n");
    exit(64);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) {
        return serve_run(argc > 2 ? (int)num(argv[2]) : 0);
    }
    if (argc < 3 || strcmp(argv[1], "put") != 0) {
        usage();
    }
    struct load ld = {.port = (int)num(argv[2]),
                      .conns = 4,
                      .calls = 2000,
                      .records = MAX_RECORDS,
                      .size = 1024,
                      .stream = "bench",
                      .deadline = 600};
    int i = 3;
    for (; i < argc && strcmp(argv[i], "--random") == 0; i++) {
        ld.random = true;
    }
    for (; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--conns") == 0) {
            ld.conns = (int)num(v);
        } else if (strcmp(k, "--calls") == 0) {
            ld.calls = num(v);
        } else if (strcmp(k, "--records") == 0) {
            ld.records = (int)num(v);
        } else if (strcmp(k, "--size") == 0) {
            ld.size = (int)num(v);
        } else if (strcmp(k, "--stream") == 0) {
            ld.stream = v;
        } else if (strcmp(k, "--deadline") == 0) {
            ld.deadline = (double)num(v);
        } else {
            usage();
        }
    }
    if (i != argc || ld.port <= 0 || ld.conns < 1 || ld.conns > MAX_CONNS || ld.calls < 0 ||
        ld.records < 1 || ld.records > MAX_RECORDS || ld.size < 40) {
        usage();
    }
    return put_run(&ld);
}
