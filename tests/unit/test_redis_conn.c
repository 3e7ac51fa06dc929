/* SPDX-License-Identifier: Apache-2.0 */
/* test_redis_conn.c: redis_conn.c against redis-servers of the test's own (redis_server.h), so
 * the faults are real: commands pipelined and answered in order, exactly once each; AUTH with an
 * ACL user and SELECT from the URL; a refused password; the server stopped and started again on
 * the same port (the commands of the outage fail, the connection comes back by itself, one
 * warning line for the outage and never the password); a server that stops answering
 * (command_timeout_ms); sl_redis_conn_free answering what waits; a port nothing listens on.
 * The loop runs to a condition with a deadline (test_run_until); nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "helpers.h"
#include "http_peer.h"
#include "log.h"
#include "redis_conn.h"
#include "redis_server.h"

#define DEADLINE_MS 10000
#define N_CMDS      200

struct answer {
    int calls;
    int err;
    long long integer;
    char text[256];
};

static void on_answer(void *arg, int err, const struct redisReply *reply, const char *detail)
{
    struct answer *a = arg;
    a->calls++;
    a->err = err;
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        a->integer = reply->integer;
    }
    const char *t = reply && reply->str ? reply->str : detail;
    (void)snprintf(a->text, sizeof(a->text), "%s", t ? t : "");
}

struct fx {
    uv_loop_t loop;
    struct test_redis srv;
    struct sl_redis_url url;
    struct sl_redis_conn *c;
    FILE *log;
};

static int setup(void **state)
{
    test_redis_need();
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->log = tmpfile();
    assert_non_null(f->log);
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, fileno(f->log));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    sl_redis_conn_free(f->c);
    test_close_all(&f->loop);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    test_redis_stop(&f->srv);
    sl_redis_url_fini(&f->url);
    sl_log_setup(SL_LOG_INFO, SL_LOG_HUMAN, 2);
    fclose(f->log);
    free(f);
    return 0;
}

static void open_conn(struct fx *f, const char *url, int64_t command_timeout_ms)
{
    char err[512] = "";
    assert_int_equal(sl_redis_url_parse(url, &f->url, err, sizeof(err)), 0);
    struct sl_redis_conn_conf conf = {
        .url = &f->url,
        .inst = "test",
        .connect_timeout_ms = 2000,
        .command_timeout_ms = command_timeout_ms,
        .backoff = {.base_ms = 10, .max_ms = 50, .min_ms = 1},
    };
    assert_int_equal(sl_redis_conn_new(&f->loop, &conf, &f->c), 0);
}

static bool answered(void *arg)
{
    return ((struct answer *)arg)->calls > 0;
}

/* Runs one command and waits for its answer. */
static void run_cmd(struct fx *f, struct answer *a, int argc, const char **argv)
{
    size_t lens[8];
    for (int i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }
    memset(a, 0, sizeof(*a));
    assert_int_equal(sl_redis_conn_command(f->c, argc, argv, lens, on_answer, a), 0);
    assert_int_equal(a->calls, 0); /* never from inside the call */
    assert_true(test_run_until(&f->loop, answered, a, test_deadline_ms(DEADLINE_MS)));
    assert_int_equal(a->calls, 1);
}

static char *log_text(struct fx *f)
{
    fflush(f->log);
    long n = ftell(f->log);
    char *s = calloc(1, (size_t)n + 1);
    assert_non_null(s);
    rewind(f->log);
    assert_int_equal(fread(s, 1, (size_t)n, f->log), (size_t)n);
    (void)fseek(f->log, 0, SEEK_END);
    return s;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) {
        n++;
    }
    return n;
}

struct many {
    struct answer a[N_CMDS];
    int done;
};

static void on_many(void *arg, int err, const struct redisReply *reply, const char *detail)
{
    on_answer(arg, err, reply, detail);
}

static bool all_answered(void *arg)
{
    struct many *m = arg;
    for (int i = 0; i < N_CMDS; i++) {
        if (m->a[i].calls == 0) {
            return false;
        }
    }
    return true;
}

/* Commands started together (before the connection is even up) are all on the wire at once and
 * answered in order, each exactly once. */
static void test_redis_conn_pipelined_in_order(void **state)
{
    struct fx *f = *state;
    test_redis_start(&f->srv, 0, NULL);
    char url[128];
    (void)snprintf(url, sizeof(url), "redis://127.0.0.1:%d", f->srv.port);
    open_conn(f, url, 0);
    static struct many m;
    memset(&m, 0, sizeof(m));
    const char *argv[] = {"INCR", "counter"};
    const size_t lens[] = {4, 7};
    for (int i = 0; i < N_CMDS; i++) {
        assert_int_equal(sl_redis_conn_command(f->c, 2, argv, lens, on_many, &m.a[i]), 0);
    }
    assert_true(test_run_until(&f->loop, all_answered, &m, test_deadline_ms(DEADLINE_MS)));
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    for (int i = 0; i < N_CMDS; i++) {
        assert_int_equal(m.a[i].calls, 1);
        assert_int_equal(m.a[i].err, 0);
        assert_int_equal(m.a[i].integer, i + 1);
    }
    assert_true(sl_redis_conn_is_ready(f->c));
    assert_int_equal(sl_redis_conn_connects(f->c), 1);
    /* an error reply is an answer with its text */
    struct answer a;
    const char *bad[] = {"LPUSH", "counter", "x"};
    run_cmd(f, &a, 3, bad);
    assert_int_equal(a.err, SL_EREJECTED);
    assert_non_null(strstr(a.text, "WRONGTYPE"));
}

/* AUTH with an ACL user and the password from the URL, then SELECT: the key lands in that
 * database, and the password appears in no log line. */
static void test_redis_conn_auth_and_select(void **state)
{
    struct fx *f = *state;
    test_redis_start(&f->srv, 0, "--requirepass hunter2 --user carol on >s3cr3t ~* &* +@all");
    f->srv.password = "hunter2";
    char url[160];
    (void)snprintf(url, sizeof(url), "redis://carol:s3cr3t@127.0.0.1:%d/5", f->srv.port);
    open_conn(f, url, 0);
    struct answer a;
    const char *set[] = {"SET", "where", "db5"};
    run_cmd(f, &a, 3, set);
    assert_int_equal(a.err, 0);
    /* the connection is carol's, in database 5; a fresh one (database 0) does not see it */
    const char *who[] = {"ACL", "WHOAMI"};
    run_cmd(f, &a, 2, who);
    assert_string_equal(a.text, "carol");
    const char *dbsize[] = {"DBSIZE"};
    run_cmd(f, &a, 1, dbsize);
    assert_int_equal(a.integer, 1);
    char *in0 = test_redis_cmd(&f->srv, "EXISTS where");
    assert_string_equal(in0, "0");
    free(in0);
    char *log = log_text(f);
    assert_null(strstr(log, "s3cr3t"));
    free(log);
}

/* A password Redis refuses: the commands waiting fail with SL_EAUTH, the log says so once and
 * never shows the password. */
static void test_redis_conn_auth_refused(void **state)
{
    struct fx *f = *state;
    test_redis_start(&f->srv, 0, "--requirepass hunter2");
    char url[160];
    (void)snprintf(url, sizeof(url), "redis://:wrong-pw@127.0.0.1:%d/0", f->srv.port);
    open_conn(f, url, 0);
    struct answer a;
    const char *ping[] = {"PING"};
    run_cmd(f, &a, 1, ping);
    assert_int_equal(a.err, SL_EAUTH);
    assert_null(strstr(a.text, "wrong-pw"));
    run_cmd(f, &a, 1, ping); /* the next attempt fails the same way */
    assert_int_equal(a.err, SL_EAUTH);
    char *log = log_text(f);
    assert_int_equal(count(log, "AUTH or SELECT refused"), 1);
    assert_null(strstr(log, "wrong-pw"));
    free(log);
}

/* The server stopped, then started again on the same port: a command of the outage fails
 * (SL_EIO), the connection comes back by itself, the outage is one warning and one line when it
 * ends, and commands work again. */
static void test_redis_conn_server_restarted(void **state)
{
    struct fx *f = *state;
    test_redis_start(&f->srv, 0, NULL);
    char url[128];
    (void)snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", f->srv.port);
    open_conn(f, url, 0);
    struct answer a;
    const char *incr[] = {"INCR", "n"};
    run_cmd(f, &a, 2, incr);
    assert_int_equal(a.err, 0);
    test_redis_stop(&f->srv);
    for (int i = 0; i < 3; i++) { /* several attempts fail while it is down */
        run_cmd(f, &a, 2, incr);
        assert_int_equal(a.err, SL_EIO);
        assert_true(a.text[0] != '\0');
    }
    test_redis_restart(&f->srv);
    for (int i = 0; i < 1000; i++) { /* each failed attempt is one short backoff */
        run_cmd(f, &a, 2, incr);
        if (a.err == 0) {
            break;
        }
        assert_int_equal(a.err, SL_EIO);
    }
    assert_int_equal(a.err, 0);
    assert_int_equal(a.integer, 1); /* the new server is empty: nothing ran twice */
    assert_int_equal(sl_redis_conn_connects(f->c), 2);
    char *log = log_text(f);
    assert_int_equal(count(log, "reconnecting with backoff"), 1);
    assert_int_equal(count(log, "connected again"), 1);
    free(log);
}

/* A server that takes commands and never answers: after command_timeout_ms the connection is
 * dropped and the command fails with SL_ETIMEDOUT; once the server answers again, so do
 * commands. */
static void test_redis_conn_no_reply_times_out(void **state)
{
    struct fx *f = *state;
    test_redis_start(&f->srv, 0, NULL);
    char url[128];
    (void)snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", f->srv.port);
    open_conn(f, url, 200);
    struct answer a;
    const char *ping[] = {"PING"};
    run_cmd(f, &a, 1, ping);
    assert_int_equal(a.err, 0);
    test_redis_pause(&f->srv);
    run_cmd(f, &a, 1, ping);
    assert_int_equal(a.err, SL_ETIMEDOUT);
    test_redis_resume(&f->srv);
    for (int i = 0; i < 1000; i++) {
        run_cmd(f, &a, 1, ping);
        if (a.err == 0) {
            break;
        }
    }
    assert_int_equal(a.err, 0);
    assert_string_equal(a.text, "PONG");
}

/* sl_redis_conn_free answers every command on the wire, exactly once, with SL_ECANCELED, on a
 * later loop turn; afterwards nothing more comes. */
static void test_redis_conn_free_answers_all(void **state)
{
    struct fx *f = *state;
    test_redis_start(&f->srv, 0, NULL);
    char url[128];
    (void)snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", f->srv.port);
    open_conn(f, url, 0);
    struct answer a;
    const char *ping[] = {"PING"};
    run_cmd(f, &a, 1, ping);
    test_redis_pause(&f->srv);
    static struct many m;
    memset(&m, 0, sizeof(m));
    const size_t len[] = {4};
    for (int i = 0; i < 10; i++) {
        assert_int_equal(sl_redis_conn_command(f->c, 1, ping, len, on_many, &m.a[i]), 0);
    }
    (void)uv_run(&f->loop, UV_RUN_NOWAIT); /* on the wire */
    sl_redis_conn_free(f->c);
    f->c = NULL;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(m.a[i].calls, 0); /* never from inside free */
    }
    for (int i = 0; i < 10; i++) {
        (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    }
    for (int i = 0; i < 10; i++) {
        assert_int_equal(m.a[i].calls, 1);
        assert_int_equal(m.a[i].err, SL_ECANCELED);
    }
    test_redis_resume(&f->srv);
}

/* A port nothing listens on: each command fails with SL_EIO (not hanging), one warning. */
static void test_redis_conn_unreachable(void **state)
{
    struct fx *f = *state;
    int port;
    close(http_peer_listen(&port));
    char url[128];
    (void)snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    open_conn(f, url, 0);
    struct answer a;
    const char *ping[] = {"PING"};
    for (int i = 0; i < 3; i++) {
        run_cmd(f, &a, 1, ping);
        assert_int_equal(a.err, SL_EIO);
    }
    assert_false(sl_redis_conn_is_ready(f->c));
    char *log = log_text(f);
    assert_int_equal(count(log, "reconnecting with backoff"), 1);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis_conn_pipelined_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_conn_auth_and_select, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_conn_auth_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_conn_server_restarted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_conn_no_reply_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_conn_free_answers_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_conn_unreachable, setup, teardown),
    };
    return cmocka_run_group_tests_name("redis_conn", tests, NULL, NULL);
}
