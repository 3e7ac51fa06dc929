/* SPDX-License-Identifier: Apache-2.0 */
/* ckpt_json.c: the checkpoint store's file format, both ways:
 *   {"version":1,"mapping":"<id>","partitions":{
 *   "<part>":{"pos":"..","meta":".."},
 *   ...}}
 * written with partitions sorted by id so that files diff well, and read back strictly: a file
 * that is not exactly this (another version, another mapping's, a partition twice, a value of
 * the wrong type) is an error naming the file and what is wrong, never silently reset. It fills
 * and reads the table (ckpt_table.c) and knows nothing of files or the loop: checkpoint.c hands
 * it the bytes. No logging. Loop thread. */
#include "ckpt_json.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "encoder.h"

#define CKPT_JSON_VERSION 1

static int ckpt_json_str(struct sl_buf *b, const char *s)
{
    return sl_enc_json_str(b, s, strlen(s));
}

int ckpt_json_encode(struct ckpt_table *t, const char *mapping_id, struct sl_buf *b)
{
    const struct ckpt_row *rows;
    size_t n;
    if (ckpt_table_sorted(t, &rows, &n) < 0) {
        return SL_ENOMEM;
    }
    sl_buf_truncate(b, 0);
    if (sl_buf_printf(b, "{\"version\":%d,\"mapping\":", CKPT_JSON_VERSION) < 0 ||
        ckpt_json_str(b, mapping_id) < 0 || sl_buf_puts(b, ",\"partitions\":{") < 0) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ckpt_row *e = &rows[i];
        if (sl_buf_puts(b, i ? ",\n" : "\n") < 0 || ckpt_json_str(b, e->part) < 0 ||
            sl_buf_puts(b, ":{\"pos\":") < 0 || ckpt_json_str(b, e->pos) < 0) {
            return SL_ENOMEM;
        }
        if (e->meta && (sl_buf_puts(b, ",\"meta\":") < 0 || ckpt_json_str(b, e->meta) < 0)) {
            return SL_ENOMEM;
        }
        if (sl_buf_append(b, "}", 1) < 0) {
            return SL_ENOMEM;
        }
    }
    return sl_buf_puts(b, "}}\n");
}

int ckpt_json_decode(struct ckpt_table *t,
                     const char *path,
                     const char *mapping_id,
                     const char *text,
                     size_t len,
                     char *errbuf,
                     size_t errlen)
{
    cJSON *root = NULL;
    int r = SL_EIO;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        size_t line = 1, col = 1;
        for (size_t i = 0; i < off && i < len; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        snprintf(errbuf, errlen, "checkpoint file %s is corrupt: %s at line %zu column %zu", path,
                 len ? "invalid JSON" : "empty file", line, col);
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
    } else if (ver->valuedouble != CKPT_JSON_VERSION) {
        snprintf(errbuf, errlen, "checkpoint file %s: unsupported version %g (this build reads %d)",
                 path, ver->valuedouble, CKPT_JSON_VERSION);
        goto out;
    } else if (!cJSON_IsString(mapping)) {
        what = "\"mapping\" is missing or not a string";
    } else if (strcmp(mapping->valuestring, mapping_id) != 0) {
        snprintf(errbuf, errlen, "checkpoint file %s is for mapping \"%s\", not \"%s\"", path,
                 mapping->valuestring, mapping_id);
        goto out;
    } else if (!cJSON_IsObject(parts)) {
        what = "\"partitions\" is missing or not an object";
    }
    if (what) {
        snprintf(errbuf, errlen, "checkpoint file %s is corrupt: %s", path, what);
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
        } else if (ckpt_table_get(t, p->string, &(struct ckpt_row){0})) {
            what = "appears twice";
        }
        if (what) {
            snprintf(errbuf, errlen, "checkpoint file %s is corrupt: partition \"%s\" %s", path,
                     p->string, what);
            goto out;
        }
        bool changed;
        if (ckpt_table_put(t, p->string, pos->valuestring,
                           cJSON_IsString(meta) ? meta->valuestring : NULL, &changed) < 0) {
            r = SL_ENOMEM;
            goto out;
        }
    }
    r = 0;
out:
    cJSON_Delete(root);
    return r;
}