/* SPDX-License-Identifier: Apache-2.0 */
/* secret.c: secrets in memory, for every module that holds one (AWS credentials and the shared
 * files they come from, a Lambda session token header, an http function's header values, the
 * Kafka source's SourceAccessConfigurations, string maps of client properties): reading one
 * from the file or environment variable a configuration names, and wiping it with
 * explicit_bzero (which the compiler may not drop as dead stores) before its memory is freed.
 * It never logs, and its errors name where a secret was looked for, never what it holds. Any
 * thread. */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"

#define SECRET_FILE "file://"
#define SECRET_ENV  "env://"

void sl_secret_wipe(void *p, size_t n)
{
    if (p && n) {
        explicit_bzero(p, n);
    }
}

void sl_secret_free(char *s)
{
    if (s) {
        sl_secret_wipe(s, strlen(s));
        sl_free(s);
    }
}

void sl_secret_buf_fini(struct sl_buf *b)
{
    sl_secret_wipe(b->data, b->cap);
    sl_buf_fini(b);
}

static void secret_json_wipe(cJSON *j)
{
    for (; j; j = j->next) {
        if (cJSON_IsString(j) && j->valuestring) {
            sl_secret_wipe(j->valuestring, strlen(j->valuestring));
        }
        secret_json_wipe(j->child);
    }
}

void sl_secret_json_delete(cJSON *j)
{
    if (j) {
        sl_secret_wipe(j->valuestring, j->valuestring ? strlen(j->valuestring) : 0);
        secret_json_wipe(j->child);
        cJSON_Delete(j);
    }
}

/* Reads the file at path whole, at most SL_SECRET_MAX bytes. */
static int
secret_read_file(const char *path, const char *what, char **ret, char *errbuf, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        (void)snprintf(errbuf, errlen, "%s: cannot open %s: %s", what, path, strerror(errno));
        return SL_ECONFIG;
    }
    char *buf = sl_malloc(SL_SECRET_MAX + 1);
    if (!buf) {
        (void)close(fd);
        return SL_ENOMEM;
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, SL_SECRET_MAX + 1 - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            (void)snprintf(errbuf, errlen, "%s: cannot read %s: %s", what, path, strerror(errno));
            (void)close(fd);
            sl_secret_wipe(buf, got);
            sl_free(buf);
            return SL_ECONFIG;
        }
        if (n == 0 || (got += (size_t)n) > SL_SECRET_MAX) {
            break;
        }
    }
    (void)close(fd);
    if (got > SL_SECRET_MAX) {
        (void)snprintf(errbuf, errlen, "%s: %s is larger than %d KiB", what, path,
                       SL_SECRET_MAX / 1024);
        sl_secret_wipe(buf, got);
        sl_free(buf);
        return SL_ECONFIG;
    }
    buf[got] = '\0';
    *ret = buf;
    return 0;
}

int sl_secret_read(const char *ref, const char *what, char **ret, char *errbuf, size_t errlen)
{
    if (strncmp(ref, SECRET_ENV, strlen(SECRET_ENV)) == 0) {
        const char *name = ref + strlen(SECRET_ENV);
        const char *v = getenv(name);
        if (!v) {
            (void)snprintf(errbuf, errlen, "%s: environment variable %s is not set", what, name);
            return SL_ECONFIG;
        }
        *ret = sl_strdup(v);
        return *ret ? 0 : SL_ENOMEM;
    }
    if (strncmp(ref, SECRET_FILE, strlen(SECRET_FILE)) == 0) {
        return secret_read_file(ref + strlen(SECRET_FILE), what, ret, errbuf, errlen);
    }
    (void)snprintf(errbuf, errlen,
                   "%s: not a place to read a secret from; allowed: "
                   "file:///path or env://NAME",
                   what);
    return SL_ECONFIG;
}
