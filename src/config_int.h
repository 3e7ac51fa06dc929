/* SPDX-License-Identifier: Apache-2.0 */
/* config_int.h: what the files of the configuration loader share and nothing else includes: the
 * context one load carries, and the functions one layer calls in the layer below (config.c >
 * config_read.c; config.c > config_function.c; config.c > config_mapping.c > config_rules.c;
 * config.c > config_sink.c; config.c > config_stream.c > config_function.c; config_stream.c >
 * config_stream_sink.c; config_stream.c > config_stream_source.c > config_mapping.c; config.c >
 * config_stream_source.c;
 * config_mapping.c > config_function.c; every one of them > config_error.c). */
#ifndef SL_CONFIG_INT_H
#define SL_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "alloc.h"
#include "buf.h"
#include "config.h"

/* Everything one load carries around. */
struct config_ctx {
    const char *file;
    struct sl_errlist *errs;
    struct sl_config *cfg;
    size_t cap_functions;
    size_t *fn_index;       /* per mapping: index into cfg->functions, or SIZE_MAX */
    const cJSON *functions; /* the "functions" object, or NULL */
    bool failed;            /* an error was found (even if OOM kept its message out of errs) */
};

/* config_read.c: the file as text and JSON. Each returns 0, SL_ECONFIG (errors added to errs)
 * or SL_ENOMEM; config_read_parse returns the document (owned) or NULL with errors added. */
int config_read_file(const char *file, char **ret_text, struct sl_errlist *errs);
cJSON *config_read_parse(const char *file, const char *text, struct sl_errlist *errs);
int config_read_find_nul(const char *file, const char *text, struct sl_errlist *errs);
int config_read_expand(cJSON *node, const char *path, const char *file, struct sl_errlist *errs);

/* config_error.c: adds one error line; the load fails even without memory for the line. */
void config_error(struct config_ctx *cc, const char *fmt, ...) SL_PRINTF(2, 3);
/* Adds an adapter's check() message, one error per line; a line that starts with a key of table
 * or extra joins the JSON path. */
void config_error_check_lines(struct config_ctx *cc,
                              const char *path,
                              const struct sl_opt *table,
                              const struct sl_opt *extra,
                              const char *errbuf,
                              int r);
/* Appends the EventSourceArn schemes of the sources built in ("file://..., kafka://..."). */
void config_error_schemes(struct sl_buf *b, int *r);
/* The destinations this build can write, as an error lists them. */
const char *config_error_destinations(void);
/* When uri belongs to an adapter the build left out: reports it at path.key (source or
 * destination) and returns SL_ECONFIG; 0 when it does not; SL_ENOMEM. */
int config_error_left_out(
    struct config_ctx *cc, const char *path, const char *key, const char *uri, bool source);

/* config_function.c: the "functions" object, and the function a FunctionName names (0 and
 * *ret_index, SL_ECONFIG or SL_ENOMEM). */
int config_function_load_all(struct config_ctx *cc, const cJSON *fns);
int config_function_resolve(struct config_ctx *cc,
                            const char *name,
                            const char *mapping_path,
                            size_t *ret_index);
/* The same for a key at key_path (its full JSON path, e.g. a LambdaArn's ParameterValue). */
int config_function_resolve_at(struct config_ctx *cc,
                               const char *name,
                               const char *key_path,
                               size_t *ret_index);
void config_function_fini(struct sl_function_conf *fc);

/* config_mapping.c: the "mappings" array. Returns 0, SL_ECONFIG or SL_ENOMEM. */
int config_mapping_load_all(struct config_ctx *cc, const cJSON *maps);
/* Adds one mapping (obj, borrowed) after the others, named path in messages (a delivery
 * stream's KinesisStreamSourceConfiguration). Returns 0, SL_ECONFIG (reported) or SL_ENOMEM. */
int config_mapping_add(struct config_ctx *cc, const cJSON *obj, const char *path);

/* config_sink.c: every mapping's destination_options, checked against its destination's sink
 * (after the mappings are loaded). Returns 0, SL_ECONFIG (reported) or SL_ENOMEM. */
int config_sink_check_all(struct config_ctx *cc);

/* config_stream_source.c: an entry's DeliveryStreamType (its enum index) and its
 * KinesisStreamSourceConfiguration ksc (NULL: none) at path, into sc; a KinesisStreamAsSource
 * stream adds its mapping. Returns 0, SL_ECONFIG or SL_ENOMEM. */
int config_stream_load_source(
    struct config_ctx *cc, struct sl_stream_conf *sc, int type, const cJSON *ksc, const char *path);
/* The mappings whose FunctionName is a delivery stream's ARN: each finds its stream (by
 * DeliveryStreamName), and what such a mapping cannot have is refused. After the streams are
 * loaded. Returns 0, SL_ECONFIG (reported) or SL_ENOMEM. */
int config_stream_link_mappings(struct config_ctx *cc);

/* config_stream.c: the "delivery_streams" array. Returns 0, SL_ECONFIG or SL_ENOMEM. */
int config_stream_load_all(struct config_ctx *cc, const cJSON *streams);
void config_stream_fini(struct sl_stream_conf *sc);

/* config_stream_sink.c: a delivery stream's SinkDestinationConfiguration (obj, at path's
 * entry) into sc->sink and sc's buffering hints. Returns 0 (problems reported), SL_ECONFIG or
 * SL_ENOMEM. config_stream_sink_fini frees sc->sink (NULL is fine). */
int config_stream_sink_load(struct config_ctx *cc,
                            struct sl_stream_conf *sc,
                            const cJSON *obj,
                            const char *path);
void config_stream_sink_fini(struct sl_stream_conf *sc);

/* config_rules.c: the rules of mc's core keys beyond their table (obj is its JSON object). */
void config_rules_check(struct config_ctx *cc,
                        struct sl_mapping_conf *mc,
                        const cJSON *obj,
                        const char *path);

#endif
