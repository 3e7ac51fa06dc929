/* SPDX-License-Identifier: Apache-2.0 */
/* fn_exec.c: the "exec" function type. Each invocation runs the configured command as a new
 * process (uv_spawn, UV_PROCESS_DETACHED, so the child leads its own session and process group),
 * writes the event JSON to its stdin, reads the response from its stdout (at most
 * SL_FUNCTION_MAX_RESPONSE_BYTES) and forwards its stderr to sluice's log, line by line, under
 * the function's name. The child sees a minimal environment (PATH, HOME, LANG,
 * AWS_LAMBDA_FUNCTION_NAME, AWS_REGION, then the configured `env`), never sluice's own
 * variables, which may hold credentials.
 *
 * One struct exec_run per invocation owns five handles (process, stdin, stdout, stderr, timer).
 * An invocation completes when the process exited and both stdout and stderr reached EOF. When
 * the leader exits, the rest of its process group is killed at once, so a background process
 * that inherited stdout cannot hold the invocation open (a process that left the group is cut
 * off at the timeout instead). At the timeout, on a response over the limit, and on stop(), the
 * whole group is killed with SIGKILL and the pipes are closed as soon as the leader exited.
 * The result is delivered from the last handle's close callback: never from inside invoke(),
 * exactly once, after every handle (and the pending stdin write, which borrows the body) is gone.
 *
 * This module does not decide about retries, it classifies: a spawn failure that is the
 * function's (no such program, not executable) is a function error; one that is sluice's own
 * (out of descriptors, processes or memory: EMFILE, ENFILE, EAGAIN, ENOMEM) is
 * SL_OUTCOME_RESOURCE_EXHAUSTED, which the invoker retries without counting, so records are not
 * dropped while the process is short of descriptors. Running past `timeout` is the function's
 * failure (SL_OUTCOME_TIMEOUT, "Unhandled"), counted like AWS's "Task timed out".
 *
 * The child inherits only its three pipes: every descriptor sluice and its libraries hold is
 * marked close-on-exec right before each spawn (exec_cloexec_all), because not every library
 * opens its descriptors that way (libcurl 7.88's wakeup socketpair, librdkafka 2.0's wakeup
 * pipes). Its stderr lines are handed to the log with their length, so a NUL does not cut a
 * line; the log escapes it and the other control bytes.
 *
 * It relies on SIGPIPE being ignored by the process (the daemon does it): a child that exits
 * without reading stdin makes the write fail with EPIPE, which is ignored. Loop thread only. */
#include "function.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>
#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/close_range.h>)
#include <linux/close_range.h>
#endif
#endif

#include "alloc.h"
#include "buf.h"
#include "log.h"

/* A stderr line longer than this is logged in pieces of this size (log.c caps lines at 8 KiB,
 * prefix included). */
#define EXEC_STDERR_LINE_MAX 4096
/* How much stdout is read per read(2) at most. */
#define EXEC_READ_CHUNK   (64u * 1024u)
#define EXEC_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

struct exec_run;

struct exec_ctx {
    /* Options (filled and freed by the core from exec_opts). */
    struct sl_strlist command;
    int64_t timeout_ms;
    struct sl_strmap env;
    char *cwd;
    /* State, set by init. */
    uv_loop_t *loop;
    char *name;            /* owned copy of the function's name */
    char **args;           /* command.items plus a NULL; the strings are borrowed */
    char **envp;           /* owned "KEY=VALUE" strings, NULL-terminated */
    struct exec_run *runs; /* invocations not yet delivered */
};

struct exec_run {
    struct exec_ctx *ctx;
    struct exec_run *prev, *next;
    sl_invoke_cb cb;
    void *arg;
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    uv_write_t wreq;
    struct sl_buf out_buf;
    struct sl_buf err_line;
    int handles; /* handles not yet closed; the result is delivered when it reaches 0 */
    int spawn_err;
    int term_signal;
    int64_t exit_status;
    bool spawned, exited, out_eof, err_eof, finished;
    bool timed_out, canceled, too_large, nomem;
    bool held_open; /* the timeout hit after the leader exited: stdout or stderr still open */
    struct sl_invoke_result res;
    char detail[320];
    char scratch[16384]; /* read target for output that is discarded */
};

static const struct sl_opt exec_opts[] = {
    {"command", SL_OPT_STRLIST, NULL, 1, 256, offsetof(struct exec_ctx, command), SL_OPT_REQUIRED,
     NULL,
     "The program and its arguments (argv); the program is looked up in PATH. The event JSON "
     "arrives on stdin, the response is read from stdout."},
    {"timeout", SL_OPT_DURATION, "30s", 100, 900000, offsetof(struct exec_ctx, timeout_ms), 0, NULL,
     "How long one invocation may run; then its whole process group is killed and the "
     "invocation is a timeout, a function error that counts toward MaximumRetryAttempts."},
    {"env", SL_OPT_STRMAP, NULL, 0, -1, offsetof(struct exec_ctx, env), 0, NULL,
     "Extra environment variables for the process, added to PATH, HOME, LANG, "
     "AWS_LAMBDA_FUNCTION_NAME and AWS_REGION (and overriding them)."},
    {"cwd", SL_OPT_STR, NULL, 0, -1, offsetof(struct exec_ctx, cwd), 0, NULL,
     "The working directory of the process; sluice's own when not set."},
    {0},
};

/* ---- Configuration ---- */

/* Reports every problem, one per line of errbuf, each starting with its key. */
static int exec_check(void *ctx_, char *errbuf, size_t errlen)
{
    struct exec_ctx *ctx = ctx_;
    errbuf[0] = '\0';
    if (ctx->command.n == 0 || !ctx->command.items[0] || ctx->command.items[0][0] == '\0') {
        sl_function_check_err(errbuf, errlen,
                              "command: must name a program, as in [\"python3\", \"h.py\"]");
    }
    for (size_t i = 0; i < ctx->env.n; i++) {
        const char *k = ctx->env.keys[i];
        if (k[0] == '\0' || strchr(k, '=')) {
            sl_function_check_err(
                errbuf, errlen,
                "env: \"%.64s\" is not a valid variable name; allowed: a non-empty "
                "name without '='",
                k);
        }
    }
    /* A cwd that is missing would otherwise surface only at the first invocation, as a spawn
     * failure that blames the program. */
    struct stat st;
    if (ctx->cwd && stat(ctx->cwd, &st) < 0) {
        sl_function_check_err(errbuf, errlen, "cwd: \"%.256s\": %s; allowed: an existing directory",
                              ctx->cwd, strerror(errno));
    } else if (ctx->cwd && !S_ISDIR(st.st_mode)) {
        sl_function_check_err(errbuf, errlen,
                              "cwd: \"%.256s\" is not a directory; allowed: an existing directory",
                              ctx->cwd);
    }
    return errbuf[0] ? SL_ECONFIG : 0;
}

/* Sets key to value in *envp, a NULL-terminated array of *n owned "KEY=VALUE" strings (NULL
 * when empty), replacing an existing entry for key. Returns 0 or SL_ENOMEM. */
static int env_set(char ***envp, size_t *n, const char *key, const char *value)
{
    struct sl_buf b;
    sl_buf_init(&b);
    if (sl_buf_printf(&b, "%s=%s", key, value) < 0) {
        sl_buf_fini(&b);
        return SL_ENOMEM;
    }
    char *kv = sl_buf_steal(&b);
    size_t klen = strlen(key);
    for (size_t i = 0; i < *n; i++) {
        if (strncmp((*envp)[i], key, klen) == 0 && (*envp)[i][klen] == '=') {
            sl_free((*envp)[i]);
            (*envp)[i] = kv;
            return 0;
        }
    }
    char **grown = sl_realloc(*envp, (*n + 2) * sizeof(*grown));
    if (!grown) {
        sl_free(kv);
        return SL_ENOMEM;
    }
    grown[(*n)++] = kv;
    grown[*n] = NULL;
    *envp = grown;
    return 0;
}

static int exec_build_env(struct exec_ctx *ctx, const struct sl_function_env *env)
{
    size_t n = 0;
    const char *path = getenv("PATH");
    const char *home = getenv("HOME");
    const char *lang = getenv("LANG");
    int r = env_set(&ctx->envp, &n, "PATH", path && path[0] ? path : EXEC_DEFAULT_PATH);
    if (r == 0 && home) {
        r = env_set(&ctx->envp, &n, "HOME", home);
    }
    if (r == 0 && lang) {
        r = env_set(&ctx->envp, &n, "LANG", lang);
    }
    if (r == 0) {
        r = env_set(&ctx->envp, &n, "AWS_LAMBDA_FUNCTION_NAME", ctx->name);
    }
    if (r == 0 && env->region && env->region[0]) {
        r = env_set(&ctx->envp, &n, "AWS_REGION", env->region);
    }
    for (size_t i = 0; r == 0 && i < ctx->env.n; i++) {
        r = env_set(&ctx->envp, &n, ctx->env.keys[i], ctx->env.values[i]);
    }
    return r;
}

static int exec_init(void *ctx_, const struct sl_function_env *env, char *errbuf, size_t errlen)
{
    struct exec_ctx *ctx = ctx_;
    int r = exec_check(ctx, errbuf, errlen);
    if (r < 0) {
        return r;
    }
    ctx->loop = env->loop;
    ctx->name = sl_strdup(env->name ? env->name : "exec");
    ctx->args = sl_calloc(ctx->command.n + 1, sizeof(*ctx->args));
    if (!ctx->name || !ctx->args) {
        goto fail;
    }
    for (size_t i = 0; i < ctx->command.n; i++) {
        ctx->args[i] = ctx->command.items[i];
    }
    if (exec_build_env(ctx, env) < 0) {
        goto fail;
    }
    return 0;
fail:
    snprintf(errbuf, errlen, "%s", sl_strerror(SL_ENOMEM));
    return SL_ENOMEM;
}

static void exec_fini(void *ctx_)
{
    struct exec_ctx *ctx = ctx_;
    assert(ctx->runs == NULL);
    if (ctx->envp) {
        for (size_t i = 0; ctx->envp[i]; i++) {
            sl_free(ctx->envp[i]);
        }
    }
    sl_free(ctx->envp);
    ctx->envp = NULL;
    sl_free(ctx->args);
    ctx->args = NULL;
    sl_free(ctx->name);
    ctx->name = NULL;
}

/* ---- One invocation ---- */

/* Kills the process group the child leads. Only called while the leader is alive or right
 * after it was reaped (in exit_cb), so the group id cannot yet name somebody else's group. */
static void run_kill_group(struct exec_run *run)
{
    if (run->spawned && run->proc.pid > 0) {
        if (kill(-run->proc.pid, SIGKILL) < 0 && errno != ESRCH) {
            sl_log_debug("exec", run->ctx->name, "kill(-%d): %s", run->proc.pid, strerror(errno));
        }
    }
}

/* Logs one line of stderr, in pieces of at most EXEC_STDERR_LINE_MAX bytes. The bytes go to
 * the log with their length, so a NUL does not end the line early; log.c escapes NUL and the
 * other control bytes for the log format (\xNN in the human one). */
static void run_log_stderr(struct exec_run *run, const char *s, size_t n)
{
    while (n) {
        size_t piece = n < EXEC_STDERR_LINE_MAX ? n : EXEC_STDERR_LINE_MAX;
        sl_log_bytes(SL_LOG_INFO, "exec", run->ctx->name, s, piece);
        s += piece;
        n -= piece;
    }
}

/* Logs every complete line of err_line, and pieces of EXEC_STDERR_LINE_MAX of an overlong one;
 * with final, the partial last line too. Keeps the rest. */
static void run_flush_stderr(struct exec_run *run, bool final)
{
    struct sl_buf *b = &run->err_line;
    if (b->len == 0) {
        return;
    }
    size_t start = 0;
    for (;;) {
        char *nl = memchr(b->data + start, '\n', b->len - start);
        if (!nl) {
            break;
        }
        size_t end = (size_t)(nl - b->data);
        size_t n = end - start;
        if (n && b->data[end - 1] == '\r') {
            n--;
        }
        run_log_stderr(run, b->data + start, n);
        start = end + 1;
    }
    while (b->len - start >= EXEC_STDERR_LINE_MAX) {
        run_log_stderr(run, b->data + start, EXEC_STDERR_LINE_MAX);
        start += EXEC_STDERR_LINE_MAX;
    }
    if (final && b->len > start) {
        run_log_stderr(run, b->data + start, b->len - start);
        start = b->len;
    }
    if (start) {
        memmove(b->data, b->data + start, b->len - start);
        sl_buf_truncate(b, b->len - start);
    }
}

static void run_deliver(struct exec_run *run)
{
    struct exec_ctx *ctx = run->ctx;
    if (run->prev) {
        run->prev->next = run->next;
    } else {
        ctx->runs = run->next;
    }
    if (run->next) {
        run->next->prev = run->prev;
    }
    run->cb(run->arg, &run->res);
    sl_buf_fini(&run->out_buf);
    sl_buf_fini(&run->err_line);
    sl_free(run);
}

static void run_close_cb(uv_handle_t *h)
{
    struct exec_run *run = h->data;
    if (--run->handles == 0) {
        run_deliver(run);
    }
}

static void run_close(uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        uv_close(h, run_close_cb);
    }
}

static void run_set_result(struct exec_run *run)
{
    struct sl_invoke_result *res = &run->res;
    struct exec_ctx *ctx = run->ctx;
    *res = (struct sl_invoke_result){
        .outcome = SL_OUTCOME_FUNCTION_ERROR, .retry_after_ms = -1, .detail = run->detail};
    if (run->spawn_err &&
        sl_outcome_from_spawn_error(run->spawn_err) == SL_OUTCOME_RESOURCE_EXHAUSTED) {
        res->outcome = SL_OUTCOME_RESOURCE_EXHAUSTED;
        snprintf(run->detail, sizeof(run->detail), "cannot spawn \"%s\": %s (%s)", ctx->args[0],
                 uv_strerror(run->spawn_err), uv_err_name(run->spawn_err));
    } else if (run->spawn_err) {
        res->error_type = "Runtime.InvalidEntrypoint";
        snprintf(run->detail, sizeof(run->detail), "cannot run \"%s\": %s (%s)", ctx->args[0],
                 uv_strerror(run->spawn_err), uv_err_name(run->spawn_err));
    } else if (run->canceled) {
        res->outcome = SL_OUTCOME_TRANSPORT_ERROR;
        snprintf(run->detail, sizeof(run->detail), "canceled");
    } else if (run->timed_out) {
        res->outcome = SL_OUTCOME_TIMEOUT;
        res->error_type = "Unhandled";
        snprintf(run->detail, sizeof(run->detail), "timed out after %lld ms%s",
                 (long long)ctx->timeout_ms,
                 run->held_open ? " (the process exited, but a process outside its group kept "
                                  "stdout or stderr open)"
                                : "");
    } else if (run->nomem) {
        res->outcome = SL_OUTCOME_TRANSPORT_ERROR;
        snprintf(run->detail, sizeof(run->detail), "out of memory reading the response");
    } else if (run->too_large) {
        res->error_type = "Function.ResponseSizeTooLarge";
        snprintf(run->detail, sizeof(run->detail),
                 "response larger than %u bytes; process group killed",
                 SL_FUNCTION_MAX_RESPONSE_BYTES);
    } else if (run->term_signal) {
        res->status = -run->term_signal;
        res->error_type = "Unhandled";
        snprintf(run->detail, sizeof(run->detail), "killed by signal %d", run->term_signal);
    } else if (run->exit_status != 0) {
        res->status = (int)run->exit_status;
        res->error_type = "Unhandled";
        res->body = run->out_buf.data ? run->out_buf.data : "";
        res->body_len = run->out_buf.len;
        snprintf(run->detail, sizeof(run->detail), "exited with status %lld",
                 (long long)run->exit_status);
    } else {
        res->outcome = SL_OUTCOME_SUCCESS;
        res->body = run->out_buf.data ? run->out_buf.data : "";
        res->body_len = run->out_buf.len;
        res->detail = NULL;
    }
}

/* Everything is known: compute the result and close the handles; the last close delivers. */
static void run_finish(struct exec_run *run)
{
    assert(!run->finished);
    run->finished = true;
    (void)uv_timer_stop(&run->timer);
    run_flush_stderr(run, true);
    run_set_result(run);
    run_close((uv_handle_t *)&run->timer);
    run_close((uv_handle_t *)&run->in);
    run_close((uv_handle_t *)&run->out);
    run_close((uv_handle_t *)&run->err);
    run_close((uv_handle_t *)&run->proc);
}

static void run_maybe_finish(struct exec_run *run)
{
    if (!run->finished && run->exited && run->out_eof && run->err_eof) {
        run_finish(run);
    }
}

/* Stops waiting for EOF on stdout and stderr (after a kill, once the leader exited: a process
 * that escaped the group may hold them open forever). */
static void run_force_eof(struct exec_run *run)
{
    if (!run->out_eof) {
        run->out_eof = true;
        (void)uv_read_stop((uv_stream_t *)&run->out);
    }
    if (!run->err_eof) {
        run->err_eof = true;
        (void)uv_read_stop((uv_stream_t *)&run->err);
    }
}

static bool run_killed_by_us(const struct exec_run *run)
{
    return run->timed_out || run->canceled || run->too_large || run->nomem;
}

static void run_exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    struct exec_run *run = proc->data;
    run->exited = true;
    run->exit_status = exit_status;
    run->term_signal = term_signal;
    /* Sweep what the function left behind (background processes), so nothing outlives the
     * invocation and nothing in the group keeps stdout open. */
    run_kill_group(run);
    if (run_killed_by_us(run)) {
        run_force_eof(run);
    }
    run_maybe_finish(run);
}

static void run_timer_cb(uv_timer_t *t)
{
    struct exec_run *run = t->data;
    run->timed_out = true;
    if (!run->exited) {
        run_kill_group(run); /* exit_cb follows */
        return;
    }
    run->held_open = true;
    run_force_eof(run);
    run_maybe_finish(run);
}

/* A response over the limit, or no memory to hold it: the result is decided, so stop the
 * process rather than drain it until it ends on its own. */
static void run_abort_output(struct exec_run *run)
{
    if (!run->exited) {
        run_kill_group(run);
    } else {
        run_force_eof(run);
        run_maybe_finish(run);
    }
}

static void run_out_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct exec_run *run = h->data;
    struct sl_buf *b = &run->out_buf;
    (void)suggested;
    if (!run->too_large && !run->nomem) {
        /* Read at most one byte past the limit: enough to tell it was exceeded. */
        size_t room = SL_FUNCTION_MAX_RESPONSE_BYTES + 1 - b->len;
        size_t want = room < EXEC_READ_CHUNK ? room : EXEC_READ_CHUNK;
        if (sl_buf_reserve(b, want) == 0) {
            *buf = uv_buf_init(b->data + b->len, (unsigned)want);
            return;
        }
        run->nomem = true;
        run_abort_output(run);
    }
    *buf = uv_buf_init(run->scratch, sizeof(run->scratch));
}

static void run_out_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct exec_run *run = s->data;
    if (nread > 0) {
        if (buf->base == run->scratch || run->too_large || run->nomem) {
            return; /* discarded */
        }
        struct sl_buf *b = &run->out_buf;
        if (b->len + (size_t)nread > SL_FUNCTION_MAX_RESPONSE_BYTES) {
            run->too_large = true;
            run_abort_output(run);
            return;
        }
        b->len += (size_t)nread;
        b->data[b->len] = '\0';
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF) {
            sl_log_debug("exec", run->ctx->name, "stdout: %s", uv_strerror((int)nread));
        }
        run->out_eof = true;
        (void)uv_read_stop(s);
        run_maybe_finish(run);
    }
}

static void run_err_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct exec_run *run = h->data;
    struct sl_buf *b = &run->err_line;
    (void)suggested;
    if (sl_buf_reserve(b, EXEC_STDERR_LINE_MAX) == 0) {
        *buf = uv_buf_init(b->data + b->len, EXEC_STDERR_LINE_MAX);
    } else {
        *buf = uv_buf_init(run->scratch, sizeof(run->scratch)); /* dropped, but drained */
    }
}

static void run_err_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct exec_run *run = s->data;
    if (nread > 0) {
        if (buf->base == run->scratch) {
            return;
        }
        run->err_line.len += (size_t)nread;
        run->err_line.data[run->err_line.len] = '\0';
        run_flush_stderr(run, false);
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF) {
            sl_log_debug("exec", run->ctx->name, "stderr: %s", uv_strerror((int)nread));
        }
        run->err_eof = true;
        (void)uv_read_stop(s);
        run_flush_stderr(run, true);
        run_maybe_finish(run);
    }
}

static void run_write_cb(uv_write_t *req, int status)
{
    struct exec_run *run = req->data;
    /* EPIPE: the function exited or closed stdin without reading it all; its exit status
     * decides. ECANCELED: the handle is being closed. */
    if (status < 0 && status != UV_EPIPE && status != UV_ECANCELED) {
        sl_log_debug("exec", run->ctx->name, "stdin: %s", uv_strerror(status));
    }
    run_close((uv_handle_t *)&run->in);
}

/* Marks every descriptor above stderr close-on-exec, so that the child starts with its three
 * pipes only. sluice's own descriptors are opened close-on-exec, and so are libcurl's
 * connections (httpc.c opens them) and libuv's; but some libraries' are not and cannot be
 * reached: libcurl 7.88's multi wakeup socketpair and resolver socketpairs, librdkafka 2.0's
 * per-broker wakeup pipes (pipe(2) without O_CLOEXEC; its sockets and files are). Doing it
 * here, on the loop thread right before the fork, catches them all; a descriptor a library
 * thread opens between this and the fork is the remaining gap. close_range(2) does it in one
 * call (Linux 5.11); without it, /proc/self/fd is walked. Failures are ignored: this is a
 * safety net, and a spawn under descriptor exhaustion fails on its own. */
static void exec_cloexec_all(void)
{
#if defined(SYS_close_range) && defined(CLOSE_RANGE_CLOEXEC)
    if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0) {
        return;
    }
#endif
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        return;
    }
    int self = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd <= 2 || fd == self) {
            continue;
        }
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC)) {
            (void)fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
        }
    }
    (void)closedir(d);
}

static int exec_invoke(void *ctx_, const char *body, size_t body_len, sl_invoke_cb cb, void *arg)
{
    struct exec_ctx *ctx = ctx_;
    if (body_len > UINT32_MAX) {
        return SL_EINVAL;
    }
    struct exec_run *run = sl_calloc(1, sizeof(*run));
    if (!run) {
        return SL_ENOMEM;
    }
    run->ctx = ctx;
    run->cb = cb;
    run->arg = arg;
    sl_buf_init(&run->out_buf);
    sl_buf_init(&run->err_line);
    run->proc.data = run;
    run->in.data = run;
    run->out.data = run;
    run->err.data = run;
    run->timer.data = run;
    run->wreq.data = run;
    (void)uv_timer_init(ctx->loop, &run->timer);
    (void)uv_pipe_init(ctx->loop, &run->in, 0);
    (void)uv_pipe_init(ctx->loop, &run->out, 0);
    (void)uv_pipe_init(ctx->loop, &run->err, 0);
    run->handles = 5; /* uv_spawn initialises proc even when it fails */

    run->next = ctx->runs;
    if (ctx->runs) {
        ctx->runs->prev = run;
    }
    ctx->runs = run;

    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&run->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&run->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&run->err},
    };
    uv_process_options_t po = {
        .exit_cb = run_exit_cb,
        .file = ctx->args[0],
        .args = ctx->args,
        .env = ctx->envp,
        .cwd = ctx->cwd,
        .flags = UV_PROCESS_DETACHED,
        .stdio_count = 3,
        .stdio = stdio,
    };
    exec_cloexec_all();
    int r = uv_spawn(ctx->loop, &run->proc, &po);
    if (r < 0) {
        run->spawn_err = r;
        if (sl_outcome_from_spawn_error(r) == SL_OUTCOME_RESOURCE_EXHAUSTED) {
            sl_log_warn("exec", ctx->name, "cannot spawn \"%s\": %s (%s), retrying", ctx->args[0],
                        uv_strerror(r), uv_err_name(r));
        } else {
            sl_log_warn("exec", ctx->name, "cannot run \"%s\": %s (%s)", ctx->args[0],
                        uv_strerror(r), uv_err_name(r));
        }
        run->exited = run->out_eof = run->err_eof = true;
        run_finish(run);
        return 0;
    }
    run->spawned = true;
    /* The loop's cached time may be stale by a whole callback's work and the fork: count the
     * timeout from now. */
    uv_update_time(ctx->loop);
    (void)uv_timer_start(&run->timer, run_timer_cb, (uint64_t)ctx->timeout_ms, 0);
    (void)uv_read_start((uv_stream_t *)&run->out, run_out_alloc, run_out_read);
    (void)uv_read_start((uv_stream_t *)&run->err, run_err_alloc, run_err_read);
    if (body_len) {
        /* uv_write does not modify the buffer; the body stays borrowed until the callback,
         * which runs only after this request completed or was canceled by the close. */
        uv_buf_t b = uv_buf_init((char *)(uintptr_t)body, (unsigned)body_len);
        if (uv_write(&run->wreq, (uv_stream_t *)&run->in, &b, 1, run_write_cb) < 0) {
            run_close((uv_handle_t *)&run->in);
        }
    } else {
        run_close((uv_handle_t *)&run->in);
    }
    return 0;
}

static void exec_stop(void *ctx_)
{
    struct exec_ctx *ctx = ctx_;
    for (struct exec_run *run = ctx->runs; run; run = run->next) {
        if (run->finished) {
            continue;
        }
        run->canceled = true;
        if (!run->exited) {
            run_kill_group(run); /* exit_cb finishes */
        } else {
            run_force_eof(run);
            run_maybe_finish(run);
        }
    }
}

static int64_t exec_timeout_ms(const void *vctx)
{
    const struct exec_ctx *ctx = vctx;
    return ctx->timeout_ms;
}

const struct sl_function_ops sl_function_exec = {
    .abi = SL_FUNCTION_ABI,
    .name = "exec",
    .opts = exec_opts,
    .ctx_size = sizeof(struct exec_ctx),
    .check = exec_check,
    .init = exec_init,
    .invoke = exec_invoke,
    .stop = exec_stop,
    .fini = exec_fini,
    .timeout_ms = exec_timeout_ms,
};
