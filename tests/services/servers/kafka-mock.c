/* SPDX-License-Identifier: MIT */
/*
 * kafka-mock: librdkafka's mock cluster (rdkafka_mock.h) run as a standalone Kafka broker
 * process for sluice's tests and benchmarks.  Debian has no Kafka broker; this speaks the real
 * protocol (Produce, Fetch, ListOffsets, Metadata, groups, offset commits) on loopback.
 *
 *   kafka-mock [-b BROKERS] [-P BASE_PORT] [-f BOOTSTRAP_FILE] [-c CONTROL_FIFO] [TOPIC:N ...]
 *
 * Prints "BOOTSTRAP=host:port,..." on stdout once the brokers listen (and writes the same list
 * to BOOTSTRAP_FILE), then runs until SIGTERM or SIGINT and exits 0 after destroying the
 * cluster.  The control FIFO takes one command per line while running; each is answered on
 * stderr (the log) with "ctl: ok ..." or "ctl: ERR ...":
 *
 *   topic NAME N                   create NAME with N partitions (the mock has no CreateTopics)
 *   down ID | up ID                broker ID (or -1: all) refuses / accepts connections
 *   rtt ID MS                      add MS of delay to broker ID's responses
 *   leader TOPIC PART ID           move a partition's leader (-1: leaderless)
 *   coordinator group|transaction KEY ID
 *   error APIKEY ERR [COUNT]       the next COUNT (1) requests of APIKEY fail with ERR (cluster)
 *   broker-error ID APIKEY ERR RTT_MS [COUNT]   the same on one broker, with a delay
 *   clear APIKEY                   drop the cluster's pending errors for APIKEY
 *   topic-error TOPIC ERR          Metadata reports ERR for TOPIC (0 clears)
 *   help
 *
 * Commands run one at a time, in order.  librdkafka applies most of them through the mock
 * cluster's own thread, and one that follows another within a few ms can take up to 1 s to be
 * picked up there: wait for the "ctl:" answer, not a fixed sleep.
 *
 * About fixed ports: librdkafka 2.0.2 binds every mock broker to 127.0.0.1:0 and has no API to
 * choose the port.  This executable defines bind(), exported to the shared library (link with
 * -rdynamic or rely on the dynamic symbol the library imports), so librdkafka's call lands here.
 * While rd_kafka_mock_cluster_new() runs, a loopback bind to port 0 becomes BASE_PORT + n (n
 * counting the listeners in creation order, broker 1 first) with SO_REUSEADDR so a restart does
 * not trip over TIME_WAIT; every other bind passes through to libc's via dlsym(RTLD_NEXT).
 * Without -P the ports stay random.
 *
 * Threads: main waits in ppoll() on the FIFO with SIGTERM/SIGINT blocked everywhere else
 * (blocked before librdkafka starts its threads, so they inherit the mask).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define CTL_LINE_MAX 1024

static volatile sig_atomic_t stop_requested;
static atomic_int bind_base_port;  /* 0: leave binds alone */
static atomic_int bind_next_index; /* listeners rewritten so far */

/* The interposed bind(): see the file comment.  Only AF_INET to 127.0.0.1:0 is rewritten. */
int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    if (real_bind == NULL) {
        real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
        if (real_bind == NULL) {
            errno = ENOSYS;
            return -1;
        }
    }
    int base = atomic_load(&bind_base_port);
    if (base > 0 && addr != NULL && addr->sa_family == AF_INET &&
        len >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, addr, sizeof(sin));
        if (sin.sin_port == 0 && ntohl(sin.sin_addr.s_addr) == INADDR_LOOPBACK) {
            int port = base + atomic_fetch_add(&bind_next_index, 1);
            int one = 1;
            (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            sin.sin_port = htons((uint16_t)port);
            return real_bind(fd, (const struct sockaddr *)&sin, sizeof(sin));
        }
    }
    return real_bind(fd, addr, len);
}

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr, one write(2), prefixed with a UTC timestamp. */
static void logf_(const char *fmt, ...)
{
    char line[CTL_LINE_MAX + 256];
    struct timespec ts;
    struct tm tm;
    (void)clock_gettime(CLOCK_REALTIME, &ts);
    (void)gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ kafka-mock: ", ts.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (r > 0) {
        n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
    }
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
}

static int parse_long(const char *s, long min, long max, long *ret_v)
{
    char *end;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *ret_v = v;
    return 0;
}

/* Answers are "ctl: ok LINE[ (detail)]" or "ctl: ERR LINE: reason", LINE as received, so a
 * test can wait for the answer to the command it wrote. */
static int create_topic(rd_kafka_mock_cluster_t *mc, const char *name, long parts, int brokers)
{
    int rf = brokers < 3 ? brokers : 3;
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, (int)parts, rf);
    if (err) {
        logf_("ctl: ERR topic %s %ld: %s", name, parts, rd_kafka_err2str(err));
        return -1;
    }
    logf_("ctl: ok topic %s %ld (replication %d)", name, parts, rf);
    return 0;
}

/* "NAME:N" from the command line */
static int create_topic_arg(rd_kafka_mock_cluster_t *mc, const char *arg, int brokers)
{
    char name[256];
    const char *colon = strrchr(arg, ':');
    long parts = 4;
    size_t len = colon != NULL ? (size_t)(colon - arg) : strlen(arg);
    if (len == 0 || len >= sizeof(name) ||
        (colon != NULL && parse_long(colon + 1, 1, 100000, &parts) != 0)) {
        logf_("bad topic argument '%s' (want NAME:PARTITIONS)", arg);
        return -1;
    }
    memcpy(name, arg, len);
    name[len] = '\0';
    return create_topic(mc, name, parts, brokers);
}

static void ctl_result(const char *what, rd_kafka_resp_err_t err)
{
    if (err) {
        logf_("ctl: ERR %s: %s", what, rd_kafka_err2str(err));
    } else {
        logf_("ctl: ok %s", what);
    }
}

/* Runs one control command; `line` has no newline and is modified. */
static void ctl_run(rd_kafka_mock_cluster_t *mc, int brokers, char *line)
{
    char echo[CTL_LINE_MAX];
    char *argv[8];
    int argc = 0;
    char *save = NULL;
    snprintf(echo, sizeof(echo), "%s", line);
    for (char *tok = strtok_r(line, " \t\r", &save); tok != NULL && argc < 8;
         tok = strtok_r(NULL, " \t\r", &save)) {
        argv[argc++] = tok;
    }
    if (argc == 0 || argv[0][0] == '#') {
        return;
    }
    const char *cmd = argv[0];
    long a = 0, b = 0, c = 0, d = 0, cnt = 1;
    if (strcmp(cmd, "topic") == 0 && argc == 3 && parse_long(argv[2], 1, 100000, &a) == 0) {
        (void)create_topic(mc, argv[1], a, brokers);
    } else if ((strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) && argc == 2 &&
               parse_long(argv[1], -1, brokers, &a) == 0) {
        ctl_result(echo, cmd[0] == 'd' ? rd_kafka_mock_broker_set_down(mc, (int32_t)a)
                                       : rd_kafka_mock_broker_set_up(mc, (int32_t)a));
    } else if (strcmp(cmd, "rtt") == 0 && argc == 3 && parse_long(argv[1], -1, brokers, &a) == 0 &&
               parse_long(argv[2], 0, 3600000, &b) == 0) {
        ctl_result(echo, rd_kafka_mock_broker_set_rtt(mc, (int32_t)a, (int)b));
    } else if (strcmp(cmd, "leader") == 0 && argc == 4 && parse_long(argv[2], 0, 100000, &a) == 0 &&
               parse_long(argv[3], -1, brokers, &b) == 0) {
        ctl_result(echo, rd_kafka_mock_partition_set_leader(mc, argv[1], (int32_t)a, (int32_t)b));
    } else if (strcmp(cmd, "coordinator") == 0 && argc == 4 &&
               (strcmp(argv[1], "group") == 0 || strcmp(argv[1], "transaction") == 0) &&
               parse_long(argv[3], 0, 1000000, &a) == 0) {
        ctl_result(echo, rd_kafka_mock_coordinator_set(mc, argv[1], argv[2], (int32_t)a));
    } else if (strcmp(cmd, "error") == 0 && (argc == 3 || argc == 4) &&
               parse_long(argv[1], 0, 32767, &a) == 0 &&
               parse_long(argv[2], -200, 32767, &b) == 0 &&
               (argc == 3 || parse_long(argv[3], 1, 100000, &cnt) == 0)) {
        rd_kafka_resp_err_t *errs = calloc((size_t)cnt, sizeof(*errs));
        if (errs == NULL) {
            logf_("ctl: ERR %s: out of memory", echo);
            return;
        }
        for (long i = 0; i < cnt; i++) {
            errs[i] = (rd_kafka_resp_err_t)b;
        }
        rd_kafka_mock_push_request_errors_array(mc, (int16_t)a, (size_t)cnt, errs);
        free(errs);
        logf_("ctl: ok %s (%s x%ld)", echo, rd_kafka_err2name((rd_kafka_resp_err_t)b), cnt);
    } else if (strcmp(cmd, "broker-error") == 0 && (argc == 5 || argc == 6) &&
               parse_long(argv[1], 1, brokers, &a) == 0 && parse_long(argv[2], 0, 32767, &b) == 0 &&
               parse_long(argv[3], -200, 32767, &c) == 0 &&
               parse_long(argv[4], 0, 3600000, &d) == 0 &&
               (argc == 5 || parse_long(argv[5], 1, 10000, &cnt) == 0)) {
        /* the varargs API takes (err, rtt) pairs; push them one at a time */
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        for (long i = 0; i < cnt && !err; i++) {
            err = rd_kafka_mock_broker_push_request_error_rtts(mc, (int32_t)a, (int16_t)b, 1,
                                                               (rd_kafka_resp_err_t)c, (int)d);
        }
        ctl_result(echo, err);
    } else if (strcmp(cmd, "clear") == 0 && argc == 2 && parse_long(argv[1], 0, 32767, &a) == 0) {
        rd_kafka_mock_clear_request_errors(mc, (int16_t)a);
        logf_("ctl: ok %s", echo);
    } else if (strcmp(cmd, "topic-error") == 0 && argc == 3 &&
               parse_long(argv[2], -200, 32767, &a) == 0) {
        rd_kafka_mock_topic_set_error(mc, argv[1], (rd_kafka_resp_err_t)a);
        logf_("ctl: ok %s", echo);
    } else if (strcmp(cmd, "help") == 0) {
        logf_("ctl: ok help: topic NAME N | down ID | up ID | rtt ID MS | leader TOPIC PART ID"
              " | coordinator group|transaction KEY ID | error APIKEY ERR [COUNT]"
              " | broker-error ID APIKEY ERR RTT_MS [COUNT] | clear APIKEY"
              " | topic-error TOPIC ERR");
    } else {
        logf_("ctl: ERR %s: unknown or malformed command (try 'help')", echo);
    }
}

/* Splits what the FIFO delivered into lines and runs each complete one. */
static void ctl_feed(rd_kafka_mock_cluster_t *mc, int brokers, char *buf, size_t *len)
{
    size_t start = 0;
    for (size_t i = 0; i < *len; i++) {
        if (buf[i] == '\n') {
            buf[i] = '\0';
            ctl_run(mc, brokers, buf + start);
            start = i + 1;
        }
    }
    memmove(buf, buf + start, *len - start);
    *len -= start;
    if (*len == CTL_LINE_MAX - 1) { /* a line too long to be a command */
        logf_("ctl: ERR line longer than %d bytes, dropped", CTL_LINE_MAX - 2);
        *len = 0;
    }
}

static int write_file(const char *path, const char *text)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }
    int ok = fprintf(f, "%s\n", text) > 0;
    ok = fclose(f) == 0 && ok;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

static void usage(void)
{
    fprintf(stderr, "usage: kafka-mock [-b BROKERS] [-P BASE_PORT] [-f BOOTSTRAP_FILE] "
                    "[-c CONTROL_FIFO] [TOPIC:PARTITIONS ...]\n");
}

int main(int argc, char **argv)
{
    long brokers = 3, base_port = 0;
    const char *bootstrap_file = NULL, *ctl_path = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "b:P:f:c:h")) != -1) {
        switch (opt) {
        case 'b':
            if (parse_long(optarg, 1, 64, &brokers) != 0) {
                usage();
                return 2;
            }
            break;
        case 'P':
            if (parse_long(optarg, 0, 65535, &base_port) != 0) {
                usage();
                return 2;
            }
            break;
        case 'f':
            bootstrap_file = optarg;
            break;
        case 'c':
            ctl_path = optarg;
            break;
        default:
            usage();
            return opt == 'h' ? 0 : 2;
        }
    }
    if (base_port > 0 && base_port + brokers - 1 > 65535) {
        fprintf(stderr, "kafka-mock: ports %ld..%ld out of range\n", base_port,
                base_port + brokers - 1);
        return 2;
    }

    /* block the stop signals before librdkafka creates threads: they inherit the mask, and
     * only main's ppoll() ever unblocks them */
    sigset_t stop_set, wait_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    (void)pthread_sigmask(SIG_BLOCK, &stop_set, &wait_set);
    sigdelset(&wait_set, SIGTERM);
    sigdelset(&wait_set, SIGINT);
    (void)signal(SIGPIPE, SIG_IGN);

    int ctl_fd = -1;
    if (ctl_path != NULL) {
        if (mkfifo(ctl_path, 0600) != 0 && errno != EEXIST) {
            fprintf(stderr, "kafka-mock: mkfifo %s: %s\n", ctl_path, strerror(errno));
            return 1;
        }
        struct stat st;
        if (stat(ctl_path, &st) != 0 || !S_ISFIFO(st.st_mode)) {
            fprintf(stderr, "kafka-mock: %s exists and is not a FIFO\n", ctl_path);
            return 1;
        }
        /* O_RDWR keeps a writer open ourselves, so a writer closing never gives EOF */
        ctl_fd = open(ctl_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (ctl_fd < 0) {
            fprintf(stderr, "kafka-mock: open %s: %s\n", ctl_path, strerror(errno));
            return 1;
        }
    }

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* the handle only hosts the cluster; it never connects anywhere */
    if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "kafka-mock: %s\n", errstr);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka-mock: rd_kafka_new: %s\n", errstr);
        return 1;
    }

    atomic_store(&bind_next_index, 0);
    atomic_store(&bind_base_port, (int)base_port);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, (int)brokers);
    atomic_store(&bind_base_port, 0);
    if (mc == NULL) {
        logf_("cannot create the mock cluster (ports %ld..%ld in use?)", base_port,
              base_port + brokers - 1);
        rd_kafka_destroy(rk);
        return 1;
    }
    if (base_port > 0 && atomic_load(&bind_next_index) != (int)brokers) {
        logf_("fixed ports: rewrote %d binds for %ld brokers; this librdkafka binds differently",
              atomic_load(&bind_next_index), brokers);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 1;
    }

    int rc = 0;
    for (int i = optind; i < argc; i++) {
        if (create_topic_arg(mc, argv[i], (int)brokers) != 0) {
            rc = 1;
        }
    }
    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    if (rc == 0 && bootstrap_file != NULL && write_file(bootstrap_file, bootstraps) != 0) {
        logf_("cannot write %s: %s", bootstrap_file, strerror(errno));
        rc = 1;
    }
    if (rc != 0) {
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 1;
    }
    printf("BOOTSTRAP=%s\n", bootstraps);
    fflush(stdout);
    logf_("up: %ld brokers at %s, control %s, pid %d", brokers, bootstraps,
          ctl_path != NULL ? ctl_path : "(none)", (int)getpid());

    /* main loop: the FIFO, until a stop signal */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    (void)sigaction(SIGTERM, &sa, NULL);
    (void)sigaction(SIGINT, &sa, NULL);
    char buf[CTL_LINE_MAX];
    size_t len = 0;
    for (;;) {
        if (stop_requested) {
            break;
        }
        struct pollfd pfd = {.fd = ctl_fd, .events = POLLIN};
        int n = ppoll(&pfd, ctl_fd >= 0 ? 1 : 0, NULL, &wait_set);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            logf_("ppoll: %s", strerror(errno));
            rc = 1;
            break;
        }
        if (n > 0 && (pfd.revents & POLLIN)) {
            ssize_t r;
            while ((r = read(ctl_fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
                len += (size_t)r;
                ctl_feed(mc, (int)brokers, buf, &len);
            }
        }
    }
    logf_("stopping");
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    if (ctl_fd >= 0) {
        close(ctl_fd);
    }
    logf_("stopped");
    return rc;
}
