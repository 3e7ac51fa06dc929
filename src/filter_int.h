/* SPDX-License-Identifier: Apache-2.0 */
/* filter_int.h: what the files of the filter share and nothing else includes: the compiled
 * pattern tree, the compile context, the document views the matcher walks, and the functions
 * one layer calls in the layer below (filter.c > filter_compile.c > filter_wildcard.c >
 * filter_error.c and filter_text.c; filter.c > filter_match.c > filter_wildcard.c). */
#ifndef SL_FILTER_INT_H
#define SL_FILTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "filter.h"

/* Object levels a pattern may nest, each part of a dotted key counting as one (EventBridge
 * documents no limit; 4096 characters allow ~2000). */
#define FILTER_MAX_DEPTH 32
/* Document arrays nested inside one another that matching looks through; deeper ones are
 * treated as holding no values. */
#define FILTER_MAX_ARRAY_DEPTH 32
#define FILTER_PATH_MAX        256

enum fm_kind {
    FM_STRING,
    FM_NUMBER,
    FM_TRUE,
    FM_FALSE,
    FM_NULL,
    FM_PREFIX,
    FM_PREFIX_IC,
    FM_SUFFIX,
    FM_SUFFIX_IC,
    FM_EQ_IC,
    FM_WILDCARD,
    FM_NUMERIC,
    FM_EXISTS,
    FM_CIDR,
    FM_NOT_VALUES,   /* anything-but a value or a list of values (items: STRING/NUMBER) */
    FM_NOT_PREFIX,   /* anything-but {"prefix": s or [s...]} (items: PREFIX) */
    FM_NOT_SUFFIX,   /* anything-but {"suffix": s or [s...]} (items: SUFFIX) */
    FM_NOT_EQ_IC,    /* anything-but {"equals-ignore-case": s or [s...]} (items: EQ_IC) */
    FM_NOT_WILDCARD, /* anything-but {"wildcard": s or [s...]} (items: WILDCARD) */
    FM_COUNT
};

struct fm_wild {
    char *bytes;     /* the literal pieces, escapes removed, back to back */
    size_t *seg_off; /* nseg pieces: offset into bytes ... */
    size_t *seg_len; /* ... and length */
    size_t nseg;
    bool lead_star;  /* the pattern starts with '*' */
    bool trail_star; /* the pattern ends with '*' */
    bool any_star;
};

struct fm {
    enum fm_kind kind;
    char *s; /* STRING, PREFIX, SUFFIX */
    size_t slen;
    uint32_t *cp; /* folded code points: *_IC, EQ_IC */
    size_t ncp;
    double num; /* NUMBER */
    double lo, hi;
    bool has_lo, has_hi, lo_incl, hi_incl; /* NUMERIC */
    bool exists;                           /* EXISTS */
    struct fm_wild wild;                   /* WILDCARD */
    unsigned char net[16];                 /* CIDR: network, masked */
    int family;
    unsigned bits;
    struct fm *items; /* NOT_VALUES, NOT_PREFIX, NOT_SUFFIX, NOT_EQ_IC, NOT_WILDCARD */
    size_t nitems;
};

struct fnode;

struct ffield {
    char *key;
    size_t klen;
    struct fm *m; /* leaf: nm matchers, ORed */
    size_t nm;
    struct fnode *child; /* or a nested object */
};

struct fnode {
    struct ffield *fields; /* ANDed */
    size_t nfields;
    struct fnode **alts; /* "$or": n_alts alternatives, one must match (0: none) */
    size_t nalts;
};

struct sl_pattern {
    struct fnode *root;
};

struct sl_filter {
    struct sl_pattern *p[SL_FILTER_MAX_PATTERNS];
    size_t n;
};

/* ---- compiling ---------------------------------------------------------------------------- */

struct cctx {
    char *errbuf;
    size_t errlen;
    char path[FILTER_PATH_MAX];
    size_t pathlen;
    unsigned depth;
    int elem; /* the position of the matcher being compiled in its field's list */
};

/* ---- matching (see "About dotted keys" in filter_match.c) -------------------------------- */

#define FILTER_MAX_VIEWS 8

/* One place of a view: obj itself (plen 0), or the keys of obj that begin with pre[0..plen),
 * with that prefix (ending in '.') taken off. pre points into one of those keys. */
struct fplace {
    const cJSON *obj;
    const char *pre;
    size_t plen;
};

/* An object as the pattern sees it: the union of its places; n == 0 is an absent object. */
struct fview {
    struct fplace at[FILTER_MAX_VIEWS];
    size_t n;
};

/* What a key names inside a view: the values stored under exactly that path, and the view of
 * the keys that continue it with dots. */
struct ffound {
    const cJSON *val[FILTER_MAX_VIEWS];
    size_t nval;
    struct fview sub;
};

/* filter_text.c */
uint32_t filter_text_utf8_next(const unsigned char *s, size_t len, size_t *i);
uint32_t filter_text_fold(uint32_t c);
size_t filter_text_utf8_count(const unsigned char *s, size_t len);
bool filter_text_ic_compare(
    const char *str, size_t skip, const uint32_t *cp, size_t ncp, bool whole);
bool filter_text_ic_suffix(const char *str, const uint32_t *cp, size_t ncp);

/* filter_error.c */
SL_PRINTF(2, 3) int filter_error_fmt(struct cctx *c, const char *fmt, ...);
int filter_error_nomem(struct cctx *c);
size_t filter_error_path_push(struct cctx *c, const char *key, long index);
void filter_error_path_pop(struct cctx *c, size_t old);
SL_PRINTF(2, 3) size_t filter_error_path_addf(struct cctx *c, const char *fmt, ...);
const char *filter_error_type_name(const cJSON *v);

/* filter_wildcard.c */
bool filter_wildcard_match(const struct fm_wild *w, const char *s);
int filter_wildcard_set(struct cctx *c, struct fm *m, const char *what, const char *s);
int filter_wildcard_check_complexity(struct cctx *c, const struct ffield *f);

/* filter_match.c */
bool filter_match_field(const struct ffield *f, const struct fview *v);
bool filter_match_root(const struct fnode *n, const cJSON *doc);

/* filter_compile.c */
void filter_compile_node_free(struct fnode *n);
int filter_compile_count_items(const cJSON *v);
int filter_compile_node(struct cctx *c, const cJSON *obj, struct fnode **ret_n);

#endif
