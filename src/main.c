/* SPDX-License-Identifier: Apache-2.0 */
/* main.c: the command line. It parses commands and flags, loads the configuration and hands
 * over to the daemon; it owns the process's exit codes: 0 done, 1 runtime failure, 2 usage or
 * configuration error. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "opt.h"
#include "registry.h"

#ifndef SL_VERSION
#define SL_VERSION "0.0.0"
#endif

#define EXIT_DONE    0
#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

static const char usage_main[] =
    "usage: sluice COMMAND [ARGS]\n"
    "\n"
    "Polls streams and queues, batches their records and delivers each batch to a function,\n"
    "with the semantics of AWS Lambda event source mappings.\n"
    "\n"
    "commands:\n"
    "  run [--until-idle[=SECONDS]] CONFIG   run the mappings and delivery streams of CONFIG\n"
    "                                        until SIGTERM/SIGINT\n"
    "  validate CONFIG                       check CONFIG and print every error\n"
    "  options [--markdown]                  print every configuration option\n"
    "  version                               print the version and the adapters built in\n"
    "\n"
    "global flags (before or after the command):\n"
    "  --log-format human|json   log line format (default human)\n"
    "  --log-level LEVEL         error, warn, info (default) or debug\n"
    "  -h, --help                help for sluice or for a command\n"
    "\n"
    "exit codes: 0 done, 1 runtime failure, 2 usage or configuration error\n";

static const char usage_run[] =
    "usage: sluice run [--until-idle[=SECONDS]] [--log-format human|json] [--log-level LEVEL] "
    "CONFIG\n"
    "\n"
    "Runs every enabled mapping and delivery stream of CONFIG. On SIGTERM or SIGINT it stops\n"
    "fetching, lets invocations in flight finish and delivery streams deliver what they hold\n"
    "within drain_timeout, writes checkpoints and exits 0.\n"
    "\n"
    "  --until-idle[=SECONDS]  also exit 0 once no mapping has fetched a record, and no\n"
    "                          delivery stream received one, for SECONDS (default 2) and\n"
    "                          nothing is in flight or unwritten\n";

static const char usage_validate[] =
    "usage: sluice validate CONFIG\n"
    "\n"
    "Checks everything a run would check and prints every error with its file, JSON path, bad\n"
    "value and what is allowed. Exits 0 when CONFIG is valid, 2 when it is not.\n";

static const char usage_options[] =
    "usage: sluice options [--markdown]\n"
    "\n"
    "Prints every option with its type, default, range and description. --markdown prints\n"
    "config/OPTIONS.md.\n";

static const char usage_version[] = "usage: sluice version\n\nPrints the version and the "
                                    "source and destination kinds this build has.\n";

struct cli {
    const char *command;
    const char *config;
    bool help;
    bool markdown;
    bool until_idle;
    int64_t idle_ms;
    enum sl_log_level level;
    enum sl_log_format format;
};

static int usage_error(const char *usage, const char *fmt, ...) SL_PRINTF(2, 3);
static int usage_error(const char *usage, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sluice: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n\n%s", usage);
    va_end(ap);
    return EXIT_USAGE;
}

static const char *command_usage(const char *command)
{
    if (!command) {
        return usage_main;
    }
    if (strcmp(command, "run") == 0) {
        return usage_run;
    }
    if (strcmp(command, "validate") == 0) {
        return usage_validate;
    }
    if (strcmp(command, "options") == 0) {
        return usage_options;
    }
    if (strcmp(command, "version") == 0) {
        return usage_version;
    }
    return usage_main;
}

/* Parses argv into cli. Returns -1 when it is fine, else the exit code to leave with. */
static int cli_parse(int argc, char **argv, struct cli *c)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *usage = command_usage(c->command);
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            c->help = true;
        } else if (strcmp(a, "--log-format") == 0 || strncmp(a, "--log-format=", 13) == 0) {
            const char *v = a[12] == '=' ? a + 13 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || sl_log_format_parse(v, &c->format) < 0) {
                return usage_error(usage, "--log-format takes human or json, not \"%s\"",
                                   v ? v : "");
            }
        } else if (strcmp(a, "--log-level") == 0 || strncmp(a, "--log-level=", 12) == 0) {
            const char *v = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || sl_log_level_parse(v, &c->level) < 0) {
                return usage_error(
                    usage, "--log-level takes error, warn, info or debug, not \"%s\"", v ? v : "");
            }
        } else if (c->command && strcmp(c->command, "run") == 0 &&
                   strncmp(a, "--until-idle", 12) == 0 && (a[12] == '\0' || a[12] == '=')) {
            c->until_idle = true;
            if (a[12] == '=') {
                int64_t ms = 0;
                char *end = NULL;
                double secs = strtod(a + 13, &end);
                if (end != a + 13 && *end == '\0' && secs >= 0 && secs < 1e9) {
                    ms = (int64_t)(secs * 1000.0);
                } else if (sl_opt_parse_duration(a + 13, &ms) < 0 || ms < 0) {
                    return usage_error(usage,
                                       "--until-idle takes a number of seconds (like 2 or 0.5), "
                                       "not \"%s\"",
                                       a + 13);
                }
                c->idle_ms = ms;
            }
        } else if (c->command && strcmp(c->command, "options") == 0 &&
                   strcmp(a, "--markdown") == 0) {
            c->markdown = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error(usage, "unknown flag %s", a);
        } else if (!c->command) {
            c->command = a;
        } else if (!c->config &&
                   (strcmp(c->command, "run") == 0 || strcmp(c->command, "validate") == 0)) {
            c->config = a;
        } else {
            return usage_error(usage, "unexpected argument \"%s\"", a);
        }
    }
    return -1;
}

static void print_errors(const struct sl_errlist *errs)
{
    for (size_t i = 0; i < errs->n; i++) {
        fprintf(stderr, "%s\n", errs->items[i]);
    }
}

static int load_config(const char *file, struct sl_config **ret_cfg)
{
    struct sl_errlist errs;
    sl_errlist_init(&errs);
    int r = sl_config_load(file, ret_cfg, &errs);
    if (r < 0) {
        if (errs.n == 0) {
            fprintf(stderr, "%s: %s\n", file, sl_strerror(r));
        }
        print_errors(&errs);
        fprintf(stderr, "%s: %zu error%s\n", file, errs.n, errs.n == 1 ? "" : "s");
    }
    sl_errlist_fini(&errs);
    return r;
}

static int cmd_validate(const struct cli *c)
{
    struct sl_config *cfg = NULL;
    if (load_config(c->config, &cfg) < 0) {
        return EXIT_USAGE;
    }
    printf("%s: valid (%zu mapping%s, %zu function%s, %zu delivery stream%s)\n", c->config,
           cfg->n_mappings, cfg->n_mappings == 1 ? "" : "s", cfg->n_functions,
           cfg->n_functions == 1 ? "" : "s", cfg->n_streams, cfg->n_streams == 1 ? "" : "s");
    sl_config_free(cfg);
    return EXIT_DONE;
}

static int cmd_run(const struct cli *c)
{
    struct sl_config *cfg = NULL;
    if (load_config(c->config, &cfg) < 0) {
        return EXIT_USAGE;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "sluice: cannot initialise libcurl\n");
        sl_config_free(cfg);
        return EXIT_RUNTIME;
    }
    struct sl_daemon_opts opts = {.until_idle = c->until_idle, .idle_ms = c->idle_ms};
    int code = sl_daemon_run(cfg, &opts);
    sl_config_free(cfg);
    curl_global_cleanup();
    return code;
}

int main(int argc, char **argv)
{
    struct cli c = {
        .idle_ms = 2000,
        .level = SL_LOG_INFO,
        .format = SL_LOG_HUMAN,
    };
    int code = cli_parse(argc, argv, &c);
    if (code >= 0) {
        return code;
    }
    sl_log_setup(c.level, c.format, 2);
    if (c.help) {
        fputs(command_usage(c.command), stdout);
        return EXIT_DONE;
    }
    if (!c.command) {
        fputs(usage_main, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(c.command, "version") == 0) {
        printf("sluice %s\nsources: %s\ndestinations: %s\n", SL_VERSION,
               sl_registry_sources_built(), sl_registry_sinks_built());
        return EXIT_DONE;
    }
    if (strcmp(c.command, "options") == 0) {
        sl_config_print_options(stdout, c.markdown);
        return EXIT_DONE;
    }
    if (strcmp(c.command, "run") == 0 || strcmp(c.command, "validate") == 0) {
        if (!c.config) {
            return usage_error(command_usage(c.command), "%s needs a CONFIG file", c.command);
        }
        return strcmp(c.command, "run") == 0 ? cmd_run(&c) : cmd_validate(&c);
    }
    return usage_error(usage_main, "unknown command \"%s\"", c.command);
}
