/* SPDX-License-Identifier: Apache-2.0 */
/* test_exec.c: the "exec" function type against real processes (/bin/sh scripts): stdin and
 * stdout byte-exact, exit statuses and signals, the timeout killing the whole process group,
 * background processes, stderr forwarded to the log, the minimal environment, the response
 * size limit, spawn failures, concurrency and stop(). Options are set through the option
 * table's offsets, as the core does, without going through JSON. Nothing sleeps: each test
 * drives the loop to a condition with a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "config.h"
#include "function.h"
#include "helpers.h"
#include "log.h"
#include "opt.h"

#define DEADLINE_MS 10000

struct fixture {
    uv_loop_t loop;
    char *tmp;
    char log_path[512];
    int log_fd;
    void *ctx;
    bool inited;
};

struct call {
    int ncalls;
    enum sl_outcome outcome;
    int status;
    char *body;
    size_t body_len;
    bool has_body;
    char error_type[64];
    char detail[512];
};

/* ---- Options, set the way the core would ---- */

static const struct sl_opt *opt_row(const char *name)
{
    for (const struct sl_opt *o = sl_function_exec.opts; o->name; o++) {
        if (strcmp(o->name, name) == 0) {
            return o;
        }
    }
    fail_msg("no option %s", name);
    return NULL;
}

static void opt_set_strlist(void *ctx, const char *name, const char *const *items, size_t n)
{
    struct sl_strlist *l = (struct sl_strlist *)((char *)ctx + opt_row(name)->off);
    l->items = sl_calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        l->items[i] = sl_strdup(items[i]);
    }
    l->n = n;
}

static void opt_set_strmap(void *ctx, const char *name, const char *const *kv, size_t n)
{
    struct sl_strmap *m = (struct sl_strmap *)((char *)ctx + opt_row(name)->off);
    m->keys = sl_calloc(n ? n : 1, sizeof(char *));
    m->values = sl_calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        m->keys[i] = sl_strdup(kv[2 * i]);
        m->values[i] = sl_strdup(kv[2 * i + 1]);
    }
    m->n = n;
}

/* Creates the function with command argv, timeout, env (n_env key/value pairs) and cwd. */
static void fn_make(struct fixture *f,
                    const char *const *argv,
                    size_t argc,
                    int64_t timeout_ms,
                    const char *const *env,
                    size_t n_env,
                    const char *cwd)
{
    f->ctx = sl_calloc(1, sl_function_exec.ctx_size);
    assert_non_null(f->ctx);
    opt_set_strlist(f->ctx, "command", argv, argc);
    *(int64_t *)((char *)f->ctx + opt_row("timeout")->off) = timeout_ms;
    opt_set_strmap(f->ctx, "env", env, n_env);
    *(char **)((char *)f->ctx + opt_row("cwd")->off) = cwd ? sl_strdup(cwd) : NULL;
    char errbuf[256] = "";
    assert_int_equal(sl_function_exec.check(f->ctx, errbuf, sizeof(errbuf)), 0);
    struct sl_function_env fenv = {
        .loop = &f->loop, .clock = &sl_clock_system, .name = "fn-test", .region = "eu-west-3"};
    assert_int_equal(sl_function_exec.init(f->ctx, &fenv, errbuf, sizeof(errbuf)), 0);
    f->inited = true;
}

static void fn_make_sh(struct fixture *f, const char *script, int64_t timeout_ms)
{
    const char *argv[] = {"/bin/sh", "-c", script};
    fn_make(f, argv, 3, timeout_ms, NULL, 0, NULL);
}

static void on_result(void *arg, const struct sl_invoke_result *res)
{
    struct call *c = arg;
    c->ncalls++;
    c->outcome = res->outcome;
    c->status = res->status;
    c->has_body = res->body != NULL;
    if (res->body) {
        assert_int_equal(res->body[res->body_len], '\0');
        c->body = malloc(res->body_len + 1);
        assert_non_null(c->body);
        memcpy(c->body, res->body, res->body_len + 1);
        c->body_len = res->body_len;
    }
    snprintf(c->error_type, sizeof(c->error_type), "%s", res->error_type ? res->error_type : "");
    snprintf(c->detail, sizeof(c->detail), "%s", res->detail ? res->detail : "");
}

static bool call_done(void *arg)
{
    return ((struct call *)arg)->ncalls > 0;
}

/* Invokes with body and waits for the callback. */
static void invoke_wait(struct fixture *f, const char *body, size_t len, struct call *c)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(sl_function_exec.invoke(f->ctx, body, len, on_result, c), 0);
    assert_int_equal(c->ncalls, 0); /* never from inside invoke */
    assert_true(test_run_until(&f->loop, call_done, c, DEADLINE_MS));
    assert_int_equal(c->ncalls, 1);
}

static void call_fini(struct call *c)
{
    free(c->body);
    c->body = NULL;
}

/* ---- Process groups ---- */

/* True once no process of group pgid exists. The test process is a child subreaper, so
 * orphaned members (background processes) become its children: reap them here, or their
 * zombies would keep the group alive. Only called after the leader was reaped by libuv. */
static bool group_gone(void *arg)
{
    pid_t pgid = *(pid_t *)arg;
    while (waitpid(-pgid, NULL, WNOHANG) > 0) {
    }
    return kill(-pgid, 0) < 0 && errno == ESRCH;
}

static void sigchld_cb(uv_signal_t *h, int signum)
{
    (void)h;
    (void)signum;
}

/* Waits until group pgid is gone. Its orphaned members are our children (subreaper), so each
 * death raises SIGCHLD, which wakes the loop to check again. */
static bool wait_group_gone(struct fixture *f, pid_t pgid)
{
    uv_signal_t sig;
    assert_int_equal(uv_signal_init(&f->loop, &sig), 0);
    assert_int_equal(uv_signal_start(&sig, sigchld_cb, SIGCHLD), 0);
    bool gone = test_run_until(&f->loop, group_gone, &pgid, DEADLINE_MS);
    uv_close((uv_handle_t *)&sig, NULL);
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    return gone;
}

static pid_t read_pid(const char *path)
{
    char buf[32] = "";
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof(buf), fp));
    fclose(fp);
    char *end = NULL;
    long v = strtol(buf, &end, 10);
    assert_true(v > 1);
    return (pid_t)v;
}

static char *read_log(struct fixture *f)
{
    FILE *fp = fopen(f->log_path, "r");
    assert_non_null(fp);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* ---- Fixture ---- */

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->tmp = test_tmpdir();
    snprintf(f->log_path, sizeof(f->log_path), "%s/log", f->tmp);
    f->log_fd = open(f->log_path, O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
    assert_true(f->log_fd >= 0);
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, f->log_fd);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->ctx) {
        if (f->inited) {
            sl_function_exec.fini(f->ctx);
        }
        sl_opt_free(sl_function_exec.opts, f->ctx);
        sl_free(f->ctx);
    }
    (void)uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    close(f->log_fd);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    test_rmtree(f->tmp);
    free(f->tmp);
    free(f);
    return 0;
}

/* ---- Tests ---- */

/* Each function type tells its configured timeout (a queue's leases are held that long past an
 * invocation's start), and sl_function_new reads it once: exec's from its options. */
static void test_function_types_tell_timeout(void **state)
{
    struct fixture *f = *state;
    const struct sl_function_ops *types[] = {&sl_function_exec, &sl_function_http,
                                             &sl_function_lambda};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        void *ctx = sl_calloc(1, types[i]->ctx_size);
        assert_non_null(ctx);
        const struct sl_opt *o = types[i]->opts;
        while (strcmp(o->name, "timeout") != 0) {
            o++;
        }
        *(int64_t *)((char *)ctx + o->off) = 4321;
        assert_non_null(types[i]->timeout_ms);
        assert_int_equal(types[i]->timeout_ms(ctx), 4321);
        sl_free(ctx);
    }
    cJSON *json = cJSON_Parse("{\"type\":\"exec\",\"command\":[\"/bin/true\"],\"timeout\":\"5s\"}");
    assert_non_null(json);
    struct sl_function_conf conf = {
        .name = "t", .ops = &sl_function_exec, .json = json, .path = "$.functions.t"};
    struct sl_function_env fenv = {
        .loop = &f->loop, .clock = &sl_clock_system, .name = "t", .region = "eu-west-3"};
    struct sl_function *fn = NULL;
    char errbuf[256] = "";
    assert_int_equal(sl_function_new(&conf, &fenv, &fn, errbuf, sizeof(errbuf)), 0);
    assert_int_equal(fn->timeout_ms, 5000);
    sl_function_free(fn);
    cJSON_Delete(json);
}

static void test_exec_options(void **state)
{
    (void)state;
    assert_string_equal(sl_function_exec.name, "exec");
    assert_int_equal(sl_function_exec.abi, SL_FUNCTION_ABI);
    const struct sl_opt *o = opt_row("command");
    assert_int_equal(o->type, SL_OPT_STRLIST);
    assert_true(o->flags & SL_OPT_REQUIRED);
    o = opt_row("timeout");
    assert_int_equal(o->type, SL_OPT_DURATION);
    assert_string_equal(o->def, "30s");
    assert_int_equal(o->min, 100);
    assert_int_equal(o->max, 900000);
    assert_int_equal(opt_row("env")->type, SL_OPT_STRMAP);
    assert_int_equal(opt_row("cwd")->type, SL_OPT_STR);
}

/* Applies the JSON object text to a fresh ctx through the option table, as the core does.
 * Returns sl_opt_apply's result; *ret_ctx must be released with sl_opt_free and sl_free. */
static int apply_json(const char *text, void **ret_ctx)
{
    cJSON *obj = cJSON_Parse(text);
    assert_non_null(obj);
    void *ctx = sl_calloc(1, sl_function_exec.ctx_size);
    assert_non_null(ctx);
    struct sl_opt_target t = {.table = sl_function_exec.opts, .base = ctx};
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    int r = sl_opt_apply(&t, 1, obj, "config.json", "$.functions.f", &errs);
    assert_true((r == 0) == (errs.n == 0));
    sl_errlist_fini(&errs);
    cJSON_Delete(obj);
    *ret_ctx = ctx;
    return r;
}

static void test_exec_options_apply(void **state)
{
    (void)state;
    void *ctx = NULL;
    assert_int_equal(
        apply_json("{\"command\": [\"python3\", \"h.py\"], \"env\": {\"A\": \"b\"}}", &ctx), 0);
    assert_int_equal(*(int64_t *)((char *)ctx + opt_row("timeout")->off), 30000);
    struct sl_strlist *cmd = (struct sl_strlist *)((char *)ctx + opt_row("command")->off);
    assert_int_equal(cmd->n, 2);
    assert_string_equal(cmd->items[1], "h.py");
    struct sl_strmap *env = (struct sl_strmap *)((char *)ctx + opt_row("env")->off);
    assert_int_equal(env->n, 1);
    assert_string_equal(env->values[0], "b");
    char errbuf[256];
    assert_int_equal(sl_function_exec.check(ctx, errbuf, sizeof(errbuf)), 0);
    sl_opt_free(sl_function_exec.opts, ctx);
    sl_free(ctx);

    assert_int_equal(apply_json("{\"command\": [\"x\"], \"timeout\": 900}", &ctx), 0);
    assert_int_equal(*(int64_t *)((char *)ctx + opt_row("timeout")->off), 900000);
    sl_opt_free(sl_function_exec.opts, ctx);
    sl_free(ctx);

    const char *bad[] = {
        "{}",                                       /* command is required */
        "{\"command\": []}",                        /* at least one item */
        "{\"command\": [\"x\"], \"timeout\": 901}", /* at most 900 s */
        "{\"command\": [\"x\"], \"timeout\": 0.05}",
        "{\"command\": [\"x\"], \"bogus\": 1}",
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(bad); i++) {
        if (apply_json(bad[i], &ctx) != SL_ECONFIG) {
            fail_msg("accepted %s", bad[i]);
        }
        sl_opt_free(sl_function_exec.opts, ctx);
        sl_free(ctx);
    }
}

static void test_exec_check_rejects_empty_command(void **state)
{
    struct fixture *f = *state;
    f->ctx = sl_calloc(1, sl_function_exec.ctx_size);
    char errbuf[256] = "";
    assert_int_equal(sl_function_exec.check(f->ctx, errbuf, sizeof(errbuf)), SL_ECONFIG);
    assert_non_null(strstr(errbuf, "command"));
    const char *argv[] = {""};
    opt_set_strlist(f->ctx, "command", argv, 1);
    assert_int_equal(sl_function_exec.check(f->ctx, errbuf, sizeof(errbuf)), SL_ECONFIG);
    /* fini is safe without init */
    sl_function_exec.fini(f->ctx);
}

static void test_exec_echo_byte_exact(void **state)
{
    struct fixture *f = *state;
    fn_make_sh(f, "cat", 10000);
    struct call c;
    const char small[] = "{\"Records\":[]}";
    invoke_wait(f, small, strlen(small), &c);
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    assert_int_equal(c.body_len, strlen(small));
    assert_memory_equal(c.body, small, strlen(small));
    call_fini(&c);

    size_t n = 1024 * 1024;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) {
        big[i] = (char)(i * 7 + i / 251);
    }
    invoke_wait(f, big, n, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    assert_int_equal(c.body_len, n);
    assert_memory_equal(c.body, big, n);
    call_fini(&c);
    free(big);

    /* An empty body: stdin is closed at once. */
    invoke_wait(f, "", 0, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    assert_true(c.has_body);
    assert_int_equal(c.body_len, 0);
    call_fini(&c);
}

static void test_exec_exit_status(void **state)
{
    struct fixture *f = *state;
    fn_make_sh(f, "cat >/dev/null; echo '{\"errorMessage\":\"bad\"}'; exit 3", 10000);
    struct call c;
    invoke_wait(f, "{}", 2, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_FUNCTION_ERROR);
    assert_int_equal(c.status, 3);
    assert_string_equal(c.error_type, "Unhandled");
    assert_string_equal(c.detail, "exited with status 3");
    assert_string_equal(c.body, "{\"errorMessage\":\"bad\"}\n");
    call_fini(&c);
}

static void test_exec_signal(void **state)
{
    struct fixture *f = *state;
    fn_make_sh(f, "kill -9 $$", 10000);
    struct call c;
    invoke_wait(f, "{}", 2, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_FUNCTION_ERROR);
    assert_int_equal(c.status, -9);
    assert_string_equal(c.detail, "killed by signal 9");
    call_fini(&c);
}

static void test_exec_timeout_kills_group(void **state)
{
    struct fixture *f = *state;
    char script[1024];
    snprintf(script, sizeof(script), "echo $$ > '%s/pid'; sleep 100 & sleep 100; wait", f->tmp);
    fn_make_sh(f, script, 200);
    struct call c;
    uint64_t t0 = uv_hrtime();
    invoke_wait(f, "{}", 2, &c);
    uint64_t took_ms = (uv_hrtime() - t0) / 1000000u;
    assert_int_equal(c.outcome, SL_OUTCOME_TIMEOUT);
    assert_string_equal(c.error_type, "Unhandled"); /* AWS's "Task timed out" */
    assert_string_equal(c.detail, "timed out after 200 ms");
    if (took_ms < 200 || took_ms >= 5000) {
        fail_msg("timed out after %llu ms", (unsigned long long)took_ms);
    }
    char path[600];
    snprintf(path, sizeof(path), "%s/pid", f->tmp);
    pid_t pgid = read_pid(path);
    assert_true(wait_group_gone(f, pgid));
    call_fini(&c);
}

/* Decision: when the leader exits, the rest of its group is killed, so a background process
 * holding stdout does not hold the invocation; the result is the leader's. */
static void test_exec_background_process_is_swept(void **state)
{
    struct fixture *f = *state;
    char script[1024];
    snprintf(script, sizeof(script), "echo $$ > '%s/pid'; sleep 100 & echo ok", f->tmp);
    fn_make_sh(f, script, 30000);
    struct call c;
    uint64_t t0 = uv_hrtime();
    invoke_wait(f, "{}", 2, &c);
    uint64_t took_ms = (uv_hrtime() - t0) / 1000000u;
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    assert_string_equal(c.body, "ok\n");
    assert_true(took_ms < 5000);
    char path[600];
    snprintf(path, sizeof(path), "%s/pid", f->tmp);
    pid_t pgid = read_pid(path);
    assert_true(wait_group_gone(f, pgid));
    call_fini(&c);
}

/* A process that left the group (setsid) and holds stdout is cut off at the timeout: the
 * invocation does not hang, and it is a timeout. */
static void test_exec_escaped_process_holding_stdout(void **state)
{
    struct fixture *f = *state;
    if (access("/usr/bin/setsid", X_OK) != 0) {
        skip();
    }
    char script[1024];
    snprintf(script, sizeof(script),
             "/usr/bin/setsid /bin/sh -c 'echo $$ > \"%s/esc\"; exec sleep 100' & "
             "while [ ! -s '%s/esc' ]; do :; done; echo ok",
             f->tmp, f->tmp);
    fn_make_sh(f, script, 300);
    struct call c;
    invoke_wait(f, "{}", 2, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_TIMEOUT);
    assert_non_null(strstr(c.detail, "kept stdout or stderr open"));
    call_fini(&c);
    char path[600];
    snprintf(path, sizeof(path), "%s/esc", f->tmp);
    pid_t esc = read_pid(path);
    assert_int_equal(kill(esc, SIGKILL), 0);
    assert_true(wait_group_gone(f, esc));
}

static void test_exec_stderr_forwarded(void **state)
{
    struct fixture *f = *state;
    fn_make_sh(f,
               "echo first line >&2; echo out; printf 'second\\r\\n' >&2; "
               "head -c 10000 /dev/zero | tr '\\0' x >&2; echo >&2; printf tail-no-newline >&2",
               10000);
    struct call c;
    invoke_wait(f, "{}", 2, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    assert_string_equal(c.body, "out\n");
    call_fini(&c);
    const char *log = read_log(f);
    const char *want[] = {"[exec:fn-test] first line\n", "[exec:fn-test] second\n",
                          "[exec:fn-test] tail-no-newline\n"};
    for (size_t i = 0; i < SL_ARRAY_LEN(want); i++) {
        if (!strstr(log, want[i])) {
            fail_msg("log lacks %s: %s", want[i], log);
        }
    }
    /* The 10000-byte line arrives in pieces of at most 4096 bytes. */
    int pieces = 0;
    for (const char *p = log; (p = strstr(p, "[exec:fn-test] xxxx")); p++) {
        pieces++;
    }
    assert_int_equal(pieces, 3);
}

/* A NUL in stderr used to end the log line there; control bytes (ESC) reached the terminal
 * raw. Both are escaped as \xNN; tab and UTF-8 pass. */
static void test_exec_stderr_control_bytes_escaped(void **state)
{
    struct fixture *f = *state;
    fn_make_sh(f, "printf 'before\\000after\\033[31mred\\tt\\303\\251\\n' >&2", 10000);
    struct call c;
    invoke_wait(f, "{}", 2, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    call_fini(&c);
    const char *log = read_log(f);
    if (!strstr(log, "[exec:fn-test] before\\x00after\\x1b[31mred\tt\xc3\xa9\n")) {
        fail_msg("stderr line not escaped as expected: %s", log);
    }
    assert_null(strchr(log, '\033'));
}

static void test_exec_env_minimal(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(setenv("SECRET_X", "do-not-leak", 1), 0);
    assert_int_equal(setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak", 1), 0);
    const char *argv[] = {"env"}; /* looked up in PATH */
    const char *env[] = {"FOO", "bar baz", "AWS_REGION", "us-east-2"};
    fn_make(f, argv, 1, 10000, env, 2, NULL);
    struct call c;
    invoke_wait(f, "{}", 2, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    assert_null(strstr(c.body, "SECRET"));
    assert_null(strstr(c.body, "do-not-leak"));
    assert_non_null(strstr(c.body, "FOO=bar baz\n"));
    assert_non_null(strstr(c.body, "AWS_LAMBDA_FUNCTION_NAME=fn-test\n"));
    assert_non_null(strstr(c.body, "AWS_REGION=us-east-2\n")); /* configured env overrides */
    assert_null(strstr(c.body, "eu-west-3"));
    assert_non_null(strstr(c.body, "PATH="));
    /* Nothing but the listed names. */
    const char *allowed[] = {
        "PATH=", "HOME=", "LANG=", "AWS_LAMBDA_FUNCTION_NAME=", "AWS_REGION=", "FOO="};
    for (char *line = c.body; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        bool ok = false;
        for (size_t i = 0; i < SL_ARRAY_LEN(allowed); i++) {
            ok = ok || strncmp(line, allowed[i], strlen(allowed[i])) == 0;
        }
        if (!ok) {
            fail_msg("unexpected variable: %.*s", (int)(nl - line), line);
        }
        line = nl + 1;
    }
    call_fini(&c);
    unsetenv("SECRET_X");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

static void test_exec_env_region_from_function_env(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"env"};
    fn_make(f, argv, 1, 10000, NULL, 0, NULL);
    struct call c;
    invoke_wait(f, "{}", 2, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    assert_non_null(strstr(c.body, "AWS_REGION=eu-west-3\n"));
    call_fini(&c);
}

static void test_exec_cwd(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"/bin/sh", "-c", "pwd -P"};
    char real[4096];
    assert_non_null(realpath(f->tmp, real));
    fn_make(f, argv, 3, 10000, NULL, 0, f->tmp);
    struct call c;
    invoke_wait(f, "", 0, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    char want[4200];
    snprintf(want, sizeof(want), "%s\n", real);
    assert_string_equal(c.body, want);
    call_fini(&c);
}

/* A cwd that does not exist, or is not a directory, is refused by check() (so by `sluice
 * validate`), naming the key, the value and what is allowed. */
static void test_exec_check_rejects_bad_cwd(void **state)
{
    struct fixture *f = *state;
    char missing[600], file[600];
    snprintf(missing, sizeof(missing), "%s/no-such-dir", f->tmp);
    snprintf(file, sizeof(file), "%s/log", f->tmp);
    const char *bad[] = {missing, file};
    const char *why[] = {"No such file or directory", "is not a directory"};
    for (size_t i = 0; i < 2; i++) {
        void *ctx = sl_calloc(1, sl_function_exec.ctx_size);
        const char *argv[] = {"cat"};
        opt_set_strlist(ctx, "command", argv, 1);
        *(char **)((char *)ctx + opt_row("cwd")->off) = sl_strdup(bad[i]);
        char errbuf[512] = "";
        assert_int_equal(sl_function_exec.check(ctx, errbuf, sizeof(errbuf)), SL_ECONFIG);
        if (strncmp(errbuf, "cwd: ", 5) != 0 || !strstr(errbuf, bad[i]) ||
            !strstr(errbuf, why[i]) || !strstr(errbuf, "allowed: an existing directory")) {
            fail_msg("unexpected message: %s", errbuf);
        }
        sl_opt_free(sl_function_exec.opts, ctx);
        sl_free(ctx);
    }
    /* Every problem is reported, one per line, each with its key. */
    void *ctx = sl_calloc(1, sl_function_exec.ctx_size);
    const char *argv[] = {"cat"};
    const char *env[] = {"A=B", "x"};
    opt_set_strlist(ctx, "command", argv, 1);
    opt_set_strmap(ctx, "env", env, 1);
    *(char **)((char *)ctx + opt_row("cwd")->off) = sl_strdup(missing);
    char errbuf[512] = "";
    assert_int_equal(sl_function_exec.check(ctx, errbuf, sizeof(errbuf)), SL_ECONFIG);
    char *nl = strchr(errbuf, '\n');
    assert_non_null(nl);
    assert_true(strncmp(errbuf, "env: ", 5) == 0 && strncmp(nl + 1, "cwd: ", 5) == 0);
    sl_opt_free(sl_function_exec.opts, ctx);
    sl_free(ctx);
}

/* Item 4: the child starts with its three pipes only, even when the parent holds descriptors
 * opened without O_CLOEXEC (as some libraries do). */
static void test_exec_child_inherits_only_stdio(void **state)
{
    struct fixture *f = *state;
    int leak = open("/dev/null", O_RDONLY); /* deliberately not close-on-exec */
    int sv[2];
    assert_true(leak >= 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    /* Lists the shell's own descriptors; the one the glob reads is gone by the test. */
    fn_make_sh(f, "cd /proc/self/fd && for d in *; do [ -e \"$d\" ] && echo \"$d\"; done; true",
               10000);
    struct call c;
    invoke_wait(f, "", 0, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    assert_string_equal(c.body, "0\n1\n2\n");
    call_fini(&c);
    close(leak);
    close(sv[0]);
    close(sv[1]);
}

/* Item 2: a spawn that fails because sluice is out of descriptors is not the function's
 * fault: SL_OUTCOME_RESOURCE_EXHAUSTED (retried without counting), and once descriptors are
 * back the function runs. */
static void test_exec_spawn_emfile_is_resource_exhausted(void **state)
{
    struct fixture *f = *state;
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload")) {
        skip(); /* valgrind itself aborts when a fork finds no descriptor left */
    }
    fn_make_sh(f, "echo ran", 10000);
    struct test_fd_pressure fdp;
    assert_int_equal(test_fd_exhaust(&fdp), EMFILE);
    struct call c;
    invoke_wait(f, "{}", 2, &c);
    assert_int_equal(test_fd_release(&fdp), 0);
    assert_int_equal(c.outcome, SL_OUTCOME_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(c.detail, "EMFILE"));
    call_fini(&c);
    assert_non_null(strstr(read_log(f), "cannot spawn \"/bin/sh\": too many open files (EMFILE), "
                                        "retrying"));
    invoke_wait(f, "{}", 2, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    assert_string_equal(c.body, "ran\n");
    call_fini(&c);
}

/* The child exits without reading a 4 MB body: the write fails with EPIPE, which is ignored. */
static void test_exec_child_ignores_stdin(void **state)
{
    struct fixture *f = *state;
    fn_make_sh(f, "echo done", 10000);
    size_t n = 4 * 1024 * 1024;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    struct call c;
    for (int i = 0; i < 3; i++) {
        invoke_wait(f, big, n, &c);
        assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
        assert_string_equal(c.body, "done\n");
        call_fini(&c);
    }
    free(big);
}

static void test_exec_response_limit(void **state)
{
    struct fixture *f = *state;
    fn_make_sh(f, "head -c \"$(cat)\" /dev/zero", 10000);
    struct call c;
    char n[32];
    snprintf(n, sizeof(n), "%u", SL_FUNCTION_MAX_RESPONSE_BYTES);
    invoke_wait(f, n, strlen(n), &c);
    assert_int_equal(c.outcome, SL_OUTCOME_SUCCESS);
    assert_int_equal(c.body_len, SL_FUNCTION_MAX_RESPONSE_BYTES);
    call_fini(&c);

    snprintf(n, sizeof(n), "%u", SL_FUNCTION_MAX_RESPONSE_BYTES + 1);
    invoke_wait(f, n, strlen(n), &c);
    assert_int_equal(c.outcome, SL_OUTCOME_FUNCTION_ERROR);
    assert_string_equal(c.error_type, "Function.ResponseSizeTooLarge");
    assert_false(c.has_body);
    call_fini(&c);

    /* A function that would write forever is killed, not waited for. */
    invoke_wait(f, "100000000000", 12, &c);
    assert_int_equal(c.outcome, SL_OUTCOME_FUNCTION_ERROR);
    assert_string_equal(c.error_type, "Function.ResponseSizeTooLarge");
    call_fini(&c);
}

static void test_exec_command_not_found(void **state)
{
    struct fixture *f = *state;
    const char *argv[] = {"sluice-no-such-command-xyz", "arg"};
    fn_make(f, argv, 2, 10000, NULL, 0, NULL);
    struct call c;
    for (int i = 0; i < 2; i++) {
        invoke_wait(f, "{}", 2, &c); /* asserts the callback is deferred */
        assert_int_equal(c.outcome, SL_OUTCOME_FUNCTION_ERROR);
        assert_non_null(strstr(c.detail, "sluice-no-such-command-xyz"));
        assert_non_null(strstr(c.detail, "ENOENT"));
        call_fini(&c);
    }
    assert_non_null(strstr(read_log(f), "warn  [exec:fn-test] cannot run"));
}

static bool all_done(void *arg)
{
    struct call *calls = arg;
    for (int i = 0; i < 10; i++) {
        if (calls[i].ncalls == 0) {
            return false;
        }
    }
    return true;
}

static void test_exec_concurrent(void **state)
{
    struct fixture *f = *state;
    fn_make_sh(f, "cat; echo \"$AWS_LAMBDA_FUNCTION_NAME\" >&2", 10000);
    struct call calls[10];
    char bodies[10][64];
    memset(calls, 0, sizeof(calls));
    for (int i = 0; i < 10; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "{\"n\":%d}", i);
        assert_int_equal(
            sl_function_exec.invoke(f->ctx, bodies[i], strlen(bodies[i]), on_result, &calls[i]), 0);
    }
    assert_true(test_run_until(&f->loop, all_done, calls, DEADLINE_MS));
    for (int i = 0; i < 10; i++) {
        assert_int_equal(calls[i].ncalls, 1);
        assert_int_equal(calls[i].outcome, SL_OUTCOME_SUCCESS);
        assert_string_equal(calls[i].body, bodies[i]);
        call_fini(&calls[i]);
    }
}

static bool log_has_ready(void *arg)
{
    return strstr(read_log(arg), "[exec:fn-test] ready") != NULL;
}

static void test_exec_stop_cancels(void **state)
{
    struct fixture *f = *state;
    char script[1024];
    snprintf(script, sizeof(script), "echo $$ > '%s/pid'; sleep 100 & echo ready >&2; sleep 100",
             f->tmp);
    fn_make_sh(f, script, 30000);
    struct call c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(sl_function_exec.invoke(f->ctx, "{}", 2, on_result, &c), 0);
    /* The script says "ready" on stderr once its background process runs. */
    assert_true(test_run_until(&f->loop, log_has_ready, f, DEADLINE_MS));
    sl_function_exec.stop(f->ctx);
    assert_int_equal(c.ncalls, 0);
    assert_true(test_run_until(&f->loop, call_done, &c, DEADLINE_MS));
    assert_int_equal(c.ncalls, 1);
    assert_int_equal(c.outcome, SL_OUTCOME_TRANSPORT_ERROR);
    assert_string_equal(c.detail, "canceled");
    call_fini(&c);
    char path[600];
    snprintf(path, sizeof(path), "%s/pid", f->tmp);
    pid_t pgid = read_pid(path);
    assert_true(wait_group_gone(f, pgid));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* Orphaned background processes become our children, so tests can reap them and see
     * their process group disappear even where PID 1 does not reap. */
    (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_options),
        cmocka_unit_test_setup_teardown(test_function_types_tell_timeout, setup, teardown),
        cmocka_unit_test(test_exec_options_apply),
        cmocka_unit_test_setup_teardown(test_exec_check_rejects_empty_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_echo_byte_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_exit_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_signal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_timeout_kills_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_background_process_is_swept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_escaped_process_holding_stdout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_stderr_forwarded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_stderr_control_bytes_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_env_minimal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_env_region_from_function_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_cwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_check_rejects_bad_cwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_child_inherits_only_stdio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_spawn_emfile_is_resource_exhausted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_exec_child_ignores_stdin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_response_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_command_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exec_stop_cancels, setup, teardown),
    };
    return cmocka_run_group_tests_name("exec", tests, NULL, NULL);
}
