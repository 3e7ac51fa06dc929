/* SPDX-License-Identifier: Apache-2.0 */
/* aws.c: AWS settings as the SDKs resolve them (reference/wire.md §3.3 items 1 and 2):
 * credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then the shared
 * credentials and config files of the active profile), region, endpoint URLs (per-service and
 * global environment variables, the profile's `services` block and `endpoint_url`, both turned
 * off by AWS_IGNORE_CONFIGURED_ENDPOINT_URLS or the profile's ignore_configured_endpoint_urls),
 * plus small text helpers (URI encoding, Lambda ARNs). Signing is sigv4.c's.
 *
 * Out of scope: container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI / _FULL_URI), EC2
 * instance metadata (IMDSv2), role_arn/source_profile (STS), credential_process and SSO. A
 * process that needs them gets its credentials into the environment or a profile first (for
 * example `aws configure export-credentials --format env`).
 *
 * The shared files are INI-like: "[section]" lines, "key = value" lines, comments starting with
 * '#' or ';', and indented "sub = value" lines under a key with an empty value (the `services`
 * blocks). They are read whole (capped at 1 MiB), parsed once per lookup and wiped afterwards
 * because they hold secrets. Nothing here logs; secrets never reach an error message. Reads
 * files, so callers use it at startup. Any thread. */
#include "aws.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "secret.h"

#define AWS_FILE_MAX (1024 * 1024)

static const char *aws_env(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

const char *sl_aws_profile(void)
{
    const char *p = aws_env("AWS_PROFILE");
    return p ? p : "default";
}

/* Returns the path of a shared file: $envvar (with a leading "~/" expanded) or
 * $HOME/.aws/<base>. Owned, or NULL. */
static char *aws_file_path(const char *envvar, const char *base)
{
    struct sl_buf b;
    sl_buf_init(&b);
    const char *v = aws_env(envvar);
    const char *home = aws_env("HOME");
    int r;
    if (v && strncmp(v, "~/", 2) == 0 && home) {
        r = sl_buf_printf(&b, "%s/%s", home, v + 2);
    } else if (v) {
        r = sl_buf_puts(&b, v);
    } else if (home) {
        r = sl_buf_printf(&b, "%s/.aws/%s", home, base);
    } else {
        return NULL;
    }
    if (r < 0) {
        sl_buf_fini(&b);
        return NULL;
    }
    return sl_buf_steal(&b);
}

/* Reads path whole into b. Returns 0, SL_ENOTFOUND (missing or unreadable), SL_EINVAL (too
 * large) or SL_ENOMEM. */
static int aws_read_file(const char *path, struct sl_buf *b)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return SL_ENOTFOUND;
    }
    int r = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b->len + n > AWS_FILE_MAX) {
            r = SL_EINVAL;
            break;
        }
        if (sl_buf_append(b, chunk, n) < 0) {
            r = SL_ENOMEM;
            break;
        }
    }
    sl_secret_wipe(chunk, sizeof(chunk));
    fclose(f);
    if (r == 0 && !b->data && sl_buf_grow(b, 0) < 0) {
        r = SL_ENOMEM;
    }
    return r;
}

static char *aws_trim(char *s, char *end)
{
    while (s < end && isspace((unsigned char)*s)) {
        s++;
    }
    while (end > s && isspace((unsigned char)end[-1])) {
        end--;
    }
    *end = '\0';
    return s;
}

/* Does the header of section (the text between the brackets, trimmed) name `want`? want is
 * "NAME" for the credentials file, "profile NAME", "default" or "services NAME" for the config
 * file. Extra spaces between the words are allowed. */
static bool aws_section_is(const char *sect, const char *want)
{
    const char *sp = strchr(want, ' ');
    if (!sp) {
        return strcmp(sect, want) == 0;
    }
    size_t wl = (size_t)(sp - want);
    if (strncmp(sect, want, wl) != 0 || !isspace((unsigned char)sect[wl])) {
        return false;
    }
    const char *rest = sect + wl;
    while (isspace((unsigned char)*rest)) {
        rest++;
    }
    return strcmp(rest, sp + 1) == 0;
}

/* Looks up key in section of the INI text in b (modified in place). When parent is set, key is
 * a sub-key under "parent =" (an indented block). Returns an owned copy of the value, or NULL
 * (not there, or OOM). */
static char *aws_ini_find(char *text, const char *section, const char *parent, const char *key)
{
    bool in_section = false;
    bool in_parent = false;
    char *line = text;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        char *end = nl ? nl : line + strlen(line);
        char *next = nl ? nl + 1 : NULL;
        bool indented = isspace((unsigned char)*line) && line != end;
        char *s = aws_trim(line, end);
        line = next;
        if (!*s || *s == '#' || *s == ';') {
            continue;
        }
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close) {
                in_section = false;
                continue;
            }
            char *name = aws_trim(s + 1, close);
            in_section = aws_section_is(name, section);
            in_parent = false;
            continue;
        }
        if (!in_section) {
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            continue;
        }
        char *k = aws_trim(s, eq);
        char *v = aws_trim(eq + 1, eq + 1 + strlen(eq + 1));
        if (!indented) {
            in_parent = parent && strcasecmp(k, parent) == 0 && !*v;
            if (!parent && strcasecmp(k, key) == 0) {
                return sl_strdup(v);
            }
        } else if (parent && in_parent && strcasecmp(k, key) == 0) {
            return sl_strdup(v);
        }
    }
    return NULL;
}

/* Reads one value from a shared file; see aws_ini_find. */
static char *aws_file_get(
    const char *envvar, const char *base, const char *section, const char *parent, const char *key)
{
    char *path = aws_file_path(envvar, base);
    if (!path) {
        return NULL;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    char *v = NULL;
    if (aws_read_file(path, &b) == 0) {
        v = aws_ini_find(b.data, section, parent, key);
    }
    sl_secret_buf_fini(&b);
    sl_free(path);
    return v;
}

/* The config file's section name for the active profile. Owned or NULL. */
static char *aws_config_section(void)
{
    const char *p = sl_aws_profile();
    if (strcmp(p, "default") == 0) {
        return sl_strdup("default");
    }
    struct sl_buf b;
    sl_buf_init(&b);
    if (sl_buf_printf(&b, "profile %s", p) < 0) {
        sl_buf_fini(&b);
        return NULL;
    }
    return sl_buf_steal(&b);
}

static char *aws_config_get(const char *parent, const char *key)
{
    char *sect = aws_config_section();
    if (!sect) {
        return NULL;
    }
    char *v = aws_file_get("AWS_CONFIG_FILE", "config", sect, parent, key);
    if (!v && strcmp(sect, "default") == 0) {
        v = aws_file_get("AWS_CONFIG_FILE", "config", "profile default", parent, key);
    }
    sl_free(sect);
    return v;
}

void sl_aws_creds_fini(struct sl_aws_creds *c)
{
    sl_free(c->access_key_id);
    sl_secret_free(c->secret_access_key);
    sl_secret_free(c->session_token);
    c->access_key_id = NULL;
    c->secret_access_key = NULL;
    c->session_token = NULL;
    c->source = NULL;
}

/* Fills c from three values (taking ownership of all of them). Returns 0, SL_ENOTFOUND when
 * neither key is there, SL_ECONFIG when only one is. */
static int aws_creds_take(struct sl_aws_creds *c,
                          char *id,
                          char *secret,
                          char *token,
                          const char *source,
                          char *errbuf,
                          size_t errlen)
{
    if (id && *id && secret && *secret) {
        c->access_key_id = id;
        c->secret_access_key = secret;
        if (token && *token) {
            c->session_token = token;
        } else {
            sl_secret_free(token);
        }
        c->source = source;
        return 0;
    }
    bool partial = (id && *id) || (secret && *secret);
    sl_free(id);
    sl_secret_free(secret);
    sl_secret_free(token);
    if (partial) {
        snprintf(errbuf, errlen,
                 "AWS credentials in the %s of profile '%.64s' need both aws_access_key_id and "
                 "aws_secret_access_key",
                 source, sl_aws_profile());
        return SL_ECONFIG;
    }
    return SL_ENOTFOUND;
}

/* The session token of profile in the credentials file: aws_session_token, else the older
 * aws_security_token that the SDKs still read. Owned or NULL. */
static char *aws_creds_file_token(const char *profile)
{
    char *t = aws_file_get("AWS_SHARED_CREDENTIALS_FILE", "credentials", profile, NULL,
                           "aws_session_token");
    if (!t || !*t) {
        sl_secret_free(t);
        t = aws_file_get("AWS_SHARED_CREDENTIALS_FILE", "credentials", profile, NULL,
                         "aws_security_token");
    }
    return t;
}

/* The same in the config file's profile section. */
static char *aws_config_token(void)
{
    char *t = aws_config_get(NULL, "aws_session_token");
    if (!t || !*t) {
        sl_secret_free(t);
        t = aws_config_get(NULL, "aws_security_token");
    }
    return t;
}

int sl_aws_creds_load(struct sl_aws_creds *ret_creds, char *errbuf, size_t errlen)
{
    memset(ret_creds, 0, sizeof(*ret_creds));
    const char *id = aws_env("AWS_ACCESS_KEY_ID");
    const char *secret = aws_env("AWS_SECRET_ACCESS_KEY");
    if (id || secret) {
        if (!id || !secret) {
            snprintf(errbuf, errlen,
                     "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
            return SL_ECONFIG;
        }
        const char *token = aws_env("AWS_SESSION_TOKEN");
        ret_creds->access_key_id = sl_strdup(id);
        ret_creds->secret_access_key = sl_strdup(secret);
        ret_creds->session_token = token ? sl_strdup(token) : NULL;
        ret_creds->source = "environment";
        if (!ret_creds->access_key_id || !ret_creds->secret_access_key ||
            (token && !ret_creds->session_token)) {
            sl_aws_creds_fini(ret_creds);
            return SL_ENOMEM;
        }
        return 0;
    }
    const char *profile = sl_aws_profile();
    int r = aws_creds_take(ret_creds,
                           aws_file_get("AWS_SHARED_CREDENTIALS_FILE", "credentials", profile, NULL,
                                        "aws_access_key_id"),
                           aws_file_get("AWS_SHARED_CREDENTIALS_FILE", "credentials", profile, NULL,
                                        "aws_secret_access_key"),
                           aws_creds_file_token(profile), "credentials file", errbuf, errlen);
    if (r != SL_ENOTFOUND) {
        return r;
    }
    return aws_creds_take(ret_creds, aws_config_get(NULL, "aws_access_key_id"),
                          aws_config_get(NULL, "aws_secret_access_key"), aws_config_token(),
                          "config file", errbuf, errlen);
}

char *sl_aws_region(void)
{
    const char *r = aws_env("AWS_REGION");
    if (!r) {
        r = aws_env("AWS_DEFAULT_REGION");
    }
    if (r) {
        return sl_strdup(r);
    }
    char *v = aws_config_get(NULL, "region");
    if (v && !*v) {
        sl_free(v);
        v = NULL;
    }
    return v;
}

char *sl_aws_endpoint_url(const char *service_id)
{
    /* The environment variable wins over the profile's setting, either way. */
    const char *ign = aws_env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    if (ign && strcasecmp(ign, "true") == 0) {
        return NULL;
    }
    if (!ign) {
        char *cfg = aws_config_get(NULL, "ignore_configured_endpoint_urls");
        bool ignore = cfg && strcasecmp(cfg, "true") == 0;
        sl_free(cfg);
        if (ignore) {
            return NULL;
        }
    }
    char var[96];
    int n = snprintf(var, sizeof(var), "AWS_ENDPOINT_URL_%s", service_id);
    if (n > 0 && (size_t)n < sizeof(var)) {
        for (char *p = var + 17; *p; p++) {
            *p = (*p == ' ' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
        }
        const char *v = aws_env(var);
        if (v) {
            return sl_strdup(v);
        }
    }
    const char *v = aws_env("AWS_ENDPOINT_URL");
    if (v) {
        return sl_strdup(v);
    }
    char *services = aws_config_get(NULL, "services");
    if (services && *services) {
        struct sl_buf sect;
        sl_buf_init(&sect);
        char *url = NULL;
        if (sl_buf_printf(&sect, "services %s", services) == 0) {
            char svc[64];
            snprintf(svc, sizeof(svc), "%s", service_id);
            for (char *p = svc; *p; p++) {
                *p = (*p == ' ' || *p == '-') ? '_' : (char)tolower((unsigned char)*p);
            }
            url = aws_file_get("AWS_CONFIG_FILE", "config", sect.data, svc, "endpoint_url");
        }
        sl_buf_fini(&sect);
        if (url && *url) {
            sl_free(services);
            return url;
        }
        sl_free(url);
    }
    sl_free(services);
    char *url = aws_config_get(NULL, "endpoint_url");
    if (url && !*url) {
        sl_free(url);
        url = NULL;
    }
    return url;
}

int sl_aws_uri_encode(struct sl_buf *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char ch = *p;
        bool plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~' ||
                     (keep_slash && ch == '/');
        if (plain) {
            if (sl_buf_append(b, p, 1) < 0) {
                return SL_ENOMEM;
            }
        } else {
            char enc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            if (sl_buf_append(b, enc, 3) < 0) {
                return SL_ENOMEM;
            }
        }
    }
    if (!b->data && sl_buf_grow(b, 0) < 0) {
        return SL_ENOMEM;
    }
    return 0;
}

static bool aws_lambda_chars_ok(const char *s, bool qualifier)
{
    if (!s || !*s) {
        return false;
    }
    for (; *s; s++) {
        char ch = *s;
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || (qualifier && ch == '$');
        if (!ok) {
            return false;
        }
    }
    return true;
}

void sl_aws_lambda_ref_fini(struct sl_aws_lambda_ref *ref)
{
    sl_free(ref->copy);
    memset(ref, 0, sizeof(*ref));
}

int sl_aws_lambda_ref_parse(const char *s, struct sl_aws_lambda_ref *ret_ref)
{
    memset(ret_ref, 0, sizeof(*ret_ref));
    char *copy = sl_strdup(s);
    if (!copy) {
        return SL_ENOMEM;
    }
    char *parts[9];
    size_t n = 0;
    char *p = copy;
    for (;;) {
        if (n == SL_ARRAY_LEN(parts)) {
            sl_free(copy);
            return SL_EINVAL;
        }
        parts[n++] = p;
        char *colon = strchr(p, ':');
        if (!colon) {
            break;
        }
        *colon = '\0';
        p = colon + 1;
    }
    struct sl_aws_lambda_ref ref = {.copy = copy};
    if (strcmp(parts[0], "arn") == 0) {
        if ((n != 7 && n != 8) || strcmp(parts[2], "lambda") != 0 ||
            strcmp(parts[5], "function") != 0 || !*parts[3] || !*parts[4]) {
            sl_free(copy);
            return SL_EINVAL;
        }
        ref.region = parts[3];
        ref.account = parts[4];
        ref.name = parts[6];
        ref.qualifier = n == 8 ? parts[7] : NULL;
    } else if (n >= 3 && strcmp(parts[1], "function") == 0) {
        if (n > 4 || !*parts[0]) {
            sl_free(copy);
            return SL_EINVAL;
        }
        ref.account = parts[0];
        ref.name = parts[2];
        ref.qualifier = n == 4 ? parts[3] : NULL;
    } else if (n <= 2) {
        ref.name = parts[0];
        ref.qualifier = n == 2 ? parts[1] : NULL;
    } else {
        sl_free(copy);
        return SL_EINVAL;
    }
    if (!aws_lambda_chars_ok(ref.name, false) ||
        (ref.qualifier && !aws_lambda_chars_ok(ref.qualifier, true))) {
        sl_free(copy);
        return SL_EINVAL;
    }
    *ret_ref = ref;
    return 0;
}
