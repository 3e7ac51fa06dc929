/* SPDX-License-Identifier: Apache-2.0 */
/* firehose_reply.c: what every call of the Firehose API shares (wire.md §0.1, §4.1): AWS's
 * JSON answers (an error with its __type, status and message; a 200 with a JSON body) and the
 * check of a call's DeliveryStreamName (shape, then existence, with AWS's codes and wording).
 * Its own file so that firehose_api.c (the puts and the dispatch) and firehose_describe.c (the
 * read-only calls) both use it without calling each other. Pure but for allocation; any
 * thread. */
#include "firehose_reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "config.h"

int sl_firehose_reply_error(
    struct sl_firehose_reply *ret, unsigned status, const char *type, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ret->status = status;
    ret->error_type = type;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "__type", type) ||
        !cJSON_AddStringToObject(o, "message", msg)) {
        cJSON_Delete(o);
        return SL_ENOMEM;
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) {
        return SL_ENOMEM;
    }
    ret->len = strlen(text);
    ret->body = sl_strndup(text, ret->len);
    cJSON_free(text);
    return ret->body ? 0 : SL_ENOMEM;
}

int sl_firehose_reply_json(struct sl_firehose_reply *ret, cJSON *o)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        return SL_ENOMEM;
    }
    ret->status = 200;
    ret->len = strlen(text);
    ret->body = sl_strndup(text, ret->len);
    cJSON_free(text);
    return ret->body ? 0 : SL_ENOMEM;
}

static bool reply_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > SL_FIREHOSE_NAME_MAX) {
        return false;
    }
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

long sl_firehose_reply_stream(struct sl_firehose_host *host,
                              const cJSON *req,
                              struct sl_firehose_reply *ret,
                              int *ret_r,
                              bool must_exist)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(req, "DeliveryStreamName");
    *ret_r = 0;
    if (!name || cJSON_IsNull(name)) {
        *ret_r = SL_FIREHOSE_VALIDATION(ret, "Value null at '%s' failed to satisfy constraint: %s",
                                        "deliveryStreamName", "Member must not be null");
        return -1;
    }
    if (!cJSON_IsString(name)) {
        *ret_r = sl_firehose_reply_error(ret, 400, "SerializationException",
                                         "DeliveryStreamName: expected a string");
        return -1;
    }
    const char *s = name->valuestring;
    if (strlen(s) < 1 || strlen(s) > SL_FIREHOSE_NAME_MAX) {
        *ret_r = SL_FIREHOSE_VALIDATION(
            ret,
            "Value '%.80s' at 'deliveryStreamName' failed to satisfy "
            "constraint: Member must have length %s",
            s, strlen(s) < 1 ? "greater than or equal to 1" : "less than or equal to 64");
        return -1;
    }
    if (!reply_name_valid(s)) {
        *ret_r = SL_FIREHOSE_VALIDATION(
            ret,
            "Value '%s' at 'deliveryStreamName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: %s",
            s, "[a-zA-Z0-9_.-]+");
        return -1;
    }
    for (size_t i = 0; i < host->n_streams; i++) {
        if (strcmp(host->conf_at(host->arg, i)->name, s) == 0) {
            return (long)i;
        }
    }
    if (must_exist) {
        *ret_r =
            sl_firehose_reply_error(ret, 400, "ResourceNotFoundException",
                                    "Firehose %s under account %s not found.", s, host->account);
    }
    return -1;
}
