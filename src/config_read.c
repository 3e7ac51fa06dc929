/* SPDX-License-Identifier: Apache-2.0 */
/* config_read.c: the configuration file as text and JSON: reading it whole (capped), parsing it
 * with an error that names line and column, refusing strings that hold \u0000 (cJSON would cut
 * them short) and expanding ${VAR} from the environment in every string value ($${ writes a
 * literal ${). It knows nothing of what the keys mean; config.c calls it before any table is
 * applied. Errors go to the list it is given; no logging. */
#include "config_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_FILE_BYTES (16u * 1024u * 1024u) /* a config bigger than this is a mistake */

/* ------------------------------------------------------------------------------------------ */
/* Reading and parsing */

int config_read_file(const char *file, char **ret_text, struct sl_errlist *errs)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        sl_errlist_add(errs, "%s: cannot open: %s; allowed: a readable JSON file", file,
                       strerror(errno));
        return SL_ECONFIG;
    }
    struct sl_buf b;
    sl_buf_init(&b);
    int r = 0;
    for (;;) {
        if (sl_buf_reserve(&b, 65536) < 0) {
            r = SL_ENOMEM;
            break;
        }
        size_t n = fread(b.data + b.len, 1, b.cap - b.len - 1, f);
        b.len += n;
        b.data[b.len] = '\0';
        if (b.len > CONFIG_MAX_FILE_BYTES) {
            sl_errlist_add(errs, "%s: file is larger than %u bytes; allowed: a smaller file", file,
                           CONFIG_MAX_FILE_BYTES);
            r = SL_ECONFIG;
            break;
        }
        if (n == 0) {
            if (ferror(f)) {
                sl_errlist_add(errs, "%s: cannot read: %s; allowed: a readable JSON file", file,
                               strerror(errno));
                r = SL_ECONFIG;
            }
            break;
        }
    }
    (void)fclose(f);
    if (r < 0) {
        sl_buf_fini(&b);
        return r;
    }
    if (memchr(b.data, '\0', b.len)) {
        sl_buf_fini(&b);
        sl_errlist_add(errs, "%s: contains a NUL byte; allowed: a JSON text", file);
        return SL_ECONFIG;
    }
    *ret_text = sl_buf_steal(&b);
    return *ret_text ? 0 : SL_ENOMEM;
}

cJSON *config_read_parse(const char *file, const char *text, struct sl_errlist *errs)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (root) {
        return root;
    }
    /* cJSON reports where it stopped (the same pointer cJSON_GetErrorPtr() returns). */
    if (!end || end < text) {
        end = text;
    }
    unsigned line = 1, col = 1;
    for (const char *p = text; p < end && *p; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char near[24];
    size_t n = 0;
    for (const char *p = end; *p && *p != '\n' && n < sizeof(near) - 1; p++) {
        near[n++] = isprint((unsigned char)*p) ? *p : '?';
    }
    near[n] = '\0';
    if (n == 0) {
        sl_errlist_add(errs,
                       "%s: line %u, column %u: invalid JSON at end of input; allowed: "
                       "one complete JSON object",
                       file, line, col);
    } else {
        sl_errlist_add(errs,
                       "%s: line %u, column %u: invalid JSON near \"%s\"; allowed: one "
                       "complete JSON object",
                       file, line, col, near);
    }
    return NULL;
}

/* One open object or array while config_read_find_nul walks the text. */
struct config_level {
    size_t path_len; /* length of the path of this container in the path buffer */
    int index;       /* arrays: the element being read */
    bool array;
};

/* Reads the JSON string token at *p (its opening quote): returns whether it holds the escape
 * \u0000, and appends its text (escapes kept as written, NUL cut) to key when key is not NULL.
 * Leaves *p past the closing quote. The text is valid JSON (cJSON parsed it). */
static bool config_scan_string(const char **p, struct sl_buf *key, int *r)
{
    const char *s = *p + 1;
    bool nul = false;
    bool cut = false;
    while (*s && *s != '"') {
        size_t n = *s == '\\' && s[1] ? 2 : 1;
        if (n == 2 && s[1] == 'u' && strncmp(s + 2, "0000", 4) == 0) {
            nul = true;
            cut = true;
            n = 6;
        }
        if (key && !cut) {
            *r |= sl_buf_append(key, s, n);
        }
        s += n;
    }
    *p = *s ? s + 1 : s;
    return nul;
}

/* cJSON ends a string at "\u0000" and silently drops the rest, so a value would be cut short
 * (a password, a path, a header): refuse it, naming the string by its JSON path. Walks the raw
 * text, which cJSON already found valid. Returns 0, SL_ECONFIG (errors added) or SL_ENOMEM. */
int config_read_find_nul(const char *file, const char *text, struct sl_errlist *errs)
{
    if (!strstr(text, "\\u0000")) {
        return 0;
    }
    struct config_level *st = sl_calloc(CJSON_NESTING_LIMIT + 2, sizeof(*st));
    struct sl_buf path, key;
    sl_buf_init(&path);
    sl_buf_init(&key);
    int r = st ? sl_buf_puts(&path, "$") : SL_ENOMEM;
    int depth = 0;
    bool want_key = false;
    int result = 0;
    for (const char *p = text; r == 0 && *p;) {
        char c = *p;
        if (c == '{' || c == '[') {
            if (depth > CJSON_NESTING_LIMIT) {
                break;
            }
            st[++depth] = (struct config_level){.path_len = path.len, .array = c == '['};
            want_key = c == '{';
            if (c == '[') {
                r |= sl_buf_puts(&path, "[0]");
            }
            p++;
        } else if (c == '}' || c == ']') {
            sl_buf_truncate(&path, st[depth].path_len);
            depth--;
            want_key = false;
            p++;
        } else if (c == ',') {
            sl_buf_truncate(&path, st[depth].path_len);
            if (st[depth].array) {
                r |= sl_buf_printf(&path, "[%d]", ++st[depth].index);
            }
            want_key = !st[depth].array;
            p++;
        } else if (c == '"' && want_key) {
            sl_buf_truncate(&key, 0);
            bool nul = config_scan_string(&p, &key, &r);
            r |= sl_buf_printf(&path, ".%s", key.len ? key.data : "");
            if (nul && r == 0) {
                sl_errlist_add(errs,
                               "%s: %s: the key contains \\u0000 (a NUL character), which would "
                               "cut it short; allowed: keys without \\u0000",
                               file, path.data);
                result = SL_ECONFIG;
            }
            want_key = false;
        } else if (c == '"') {
            if (config_scan_string(&p, NULL, &r) && r == 0) {
                sl_errlist_add(errs,
                               "%s: %s: the string contains \\u0000 (a NUL character), which "
                               "would cut the value short; allowed: strings without \\u0000",
                               file, path.data);
                result = SL_ECONFIG;
            }
        } else {
            p++;
        }
    }
    sl_buf_fini(&path);
    sl_buf_fini(&key);
    sl_free(st);
    return r ? SL_ENOMEM : result;
}

/* ------------------------------------------------------------------------------------------ */
/* ${VAR} expansion */

/* Appends the JSON path of child (a member of object parent, or element i of an array) to b. */
static int config_path_child(
    struct sl_buf *b, const char *path, const cJSON *parent, const cJSON *child, int i)
{
    if (cJSON_IsArray(parent)) {
        return sl_buf_printf(b, "%s[%d]", path, i);
    }
    return sl_buf_printf(b, "%s.%s", path, child->string);
}

/* Expands ${NAME} in s into out. "$${" writes a literal "${". Returns 0, SL_ECONFIG (error
 * added, naming path and variable) or SL_ENOMEM. */
static int config_expand_str(
    const char *s, struct sl_buf *out, const char *file, const char *path, struct sl_errlist *errs)
{
    int result = 0;
    const char *p = s;
    while (*p) {
        const char *d = strchr(p, '$');
        if (!d) {
            if (sl_buf_puts(out, p) < 0) {
                return SL_ENOMEM;
            }
            break;
        }
        if (sl_buf_append(out, p, (size_t)(d - p)) < 0) {
            return SL_ENOMEM;
        }
        if (d[1] == '$' && d[2] == '{') {
            if (sl_buf_puts(out, "${") < 0) {
                return SL_ENOMEM;
            }
            p = d + 3;
            continue;
        }
        if (d[1] != '{') {
            if (sl_buf_append(out, d, 1) < 0) {
                return SL_ENOMEM;
            }
            p = d + 1;
            continue;
        }
        const char *name = d + 2;
        const char *close = strchr(name, '}');
        size_t len = close ? (size_t)(close - name) : 0;
        bool ok = close && len > 0 && (isalpha((unsigned char)name[0]) || name[0] == '_');
        for (size_t i = 0; ok && i < len; i++) {
            ok = isalnum((unsigned char)name[i]) || name[i] == '_';
        }
        if (!ok) {
            sl_errlist_add(errs,
                           "%s: %s: bad variable reference \"%.*s\"; allowed: ${NAME} with "
                           "NAME of letters, digits and _, or $${ for a literal ${",
                           file, path, close ? (int)(close - d + 1) : 2, d);
            result = SL_ECONFIG;
            if (!close) {
                break;
            }
            p = close + 1;
            continue;
        }
        char var[256];
        if (len >= sizeof(var)) {
            sl_errlist_add(errs, "%s: %s: variable name too long; allowed: up to %zu characters",
                           file, path, sizeof(var) - 1);
            result = SL_ECONFIG;
            p = close + 1;
            continue;
        }
        memcpy(var, name, len);
        var[len] = '\0';
        const char *val = getenv(var);
        if (!val) {
            sl_errlist_add(errs,
                           "%s: %s: environment variable %s is not set; allowed: set %s, "
                           "or write $${%s} for a literal ${%s}",
                           file, path, var, var, var, var);
            result = SL_ECONFIG;
        } else if (sl_buf_puts(out, val) < 0) {
            return SL_ENOMEM;
        }
        p = close + 1;
    }
    return result;
}

int config_read_expand(cJSON *node, const char *path, const char *file, struct sl_errlist *errs)
{
    if (cJSON_IsString(node)) {
        if (!strchr(node->valuestring, '$')) {
            return 0;
        }
        struct sl_buf out;
        sl_buf_init(&out);
        int r = config_expand_str(node->valuestring, &out, file, path, errs);
        if (r == 0 && sl_buf_reserve(&out, 0) < 0) {
            r = SL_ENOMEM;
        }
        if (r == 0 && !cJSON_SetValuestring(node, out.data)) {
            r = SL_ENOMEM;
        }
        sl_buf_fini(&out);
        return r;
    }
    if (!cJSON_IsObject(node) && !cJSON_IsArray(node)) {
        return 0;
    }
    int result = 0;
    int i = 0;
    cJSON *c;
    cJSON_ArrayForEach(c, node)
    {
        struct sl_buf p;
        sl_buf_init(&p);
        if (config_path_child(&p, path, node, c, i++) < 0) {
            return SL_ENOMEM;
        }
        int r = config_read_expand(c, p.data, file, errs);
        sl_buf_fini(&p);
        if (r == SL_ENOMEM) {
            return r;
        }
        if (r < 0) {
            result = r;
        }
    }
    return result;
}
