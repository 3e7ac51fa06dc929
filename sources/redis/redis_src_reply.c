/* SPDX-License-Identifier: Apache-2.0 */
/* redis_src_reply.c: how hiredis builds the replies of the source's reading connection. A reply
 * of XREADGROUP COUNT 1000 is some 5,000 objects (each entry an array of its id and an array of
 * its fields and values), and hiredis' own functions make each with two allocations and free
 * each on its own: about a third of the source's work per record. These functions make the
 * same redisReply objects (so whoever reads a reply, redis_conn.c included, sees hiredis' own
 * shape), but carve them and their strings out of a few large blocks per reply, kept in an
 * arena just before the reply's top object and freed at once with it. The top object comes first
 * in a block of its own size (a small reply, such as a blocking read that timed out, costs one
 * allocation); what follows goes into blocks of RS_REPLY_BLOCK bytes (or one as large as a
 * longer string). Strings are NUL-terminated, as hiredis makes them. Pure: no state beyond the
 * reply; any thread, one reply at a time per reader, as hiredis calls them. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "alloc.h"
#include "redis_src_int.h"

#define RS_REPLY_BLOCK (256 * 1024)

struct rs_reply_blk {
    struct rs_reply_blk *next;
    size_t used;
    size_t cap;
    max_align_t data[];
};

/* The arena of one reply, just before its top object. */
struct rs_reply_arena {
    struct rs_reply_blk *blocks; /* newest first; the first holds nothing but this and the top */
    max_align_t top[];           /* the top redisReply */
};

static struct rs_reply_arena *rs_reply_arena_of(void *top)
{
    return (struct rs_reply_arena *)((char *)top - offsetof(struct rs_reply_arena, top));
}

/* The top task's object: the reply's top, before which its arena lies. */
static void *rs_reply_top(const redisReadTask *task)
{
    while (task->parent) {
        task = task->parent;
    }
    return task->obj;
}

static void *rs_reply_alloc(struct rs_reply_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    struct rs_reply_blk *b = a->blocks;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > RS_REPLY_BLOCK ? size : RS_REPLY_BLOCK;
        b = sl_malloc(sizeof(*b) + cap);
        if (!b) {
            return NULL;
        }
        b->used = 0;
        b->cap = cap;
        b->next = a->blocks;
        a->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

/* A new object of type for task: the top of a new arena, or carved from its top's arena and
 * linked into its parent array; extra bytes after it (a string's) when asked. */
static redisReply *rs_reply_new(const redisReadTask *task, int type, size_t extra, char **ret_extra)
{
    redisReply *r;
    if (!task->parent) {
        struct rs_reply_arena *a = sl_malloc(sizeof(*a) + sizeof(*r) + extra);
        if (!a) {
            return NULL;
        }
        a->blocks = NULL;
        r = (redisReply *)a->top;
        if (ret_extra) {
            *ret_extra = (char *)(r + 1);
        }
    } else {
        struct rs_reply_arena *a = rs_reply_arena_of(rs_reply_top(task));
        r = rs_reply_alloc(a, sizeof(*r) + extra);
        if (!r) {
            return NULL;
        }
        if (ret_extra) {
            *ret_extra = (char *)(r + 1);
        }
        redisReply *parent = task->parent->obj;
        parent->element[task->idx] = r;
    }
    memset(r, 0, sizeof(*r));
    r->type = type;
    return r;
}

static void *rs_reply_string(const redisReadTask *task, char *str, size_t len)
{
    char *s = NULL;
    redisReply *r = rs_reply_new(task, task->type, len + 1, &s);
    if (!r) {
        return NULL;
    }
    memcpy(s, str, len);
    s[len] = '\0';
    r->str = s;
    r->len = len;
    return r;
}

static void *rs_reply_array(const redisReadTask *task, int elements)
{
    size_t n = elements > 0 ? (size_t)elements : 0;
    char *e = NULL;
    redisReply *r = rs_reply_new(task, REDIS_REPLY_ARRAY, n * sizeof(redisReply *), &e);
    if (!r) {
        return NULL;
    }
    r->elements = n;
    r->element = n ? (redisReply **)(void *)e : NULL;
    if (n) {
        memset(e, 0, n * sizeof(redisReply *));
    }
    return r;
}

static void *rs_reply_integer(const redisReadTask *task, long long value)
{
    redisReply *r = rs_reply_new(task, REDIS_REPLY_INTEGER, 0, NULL);
    if (r) {
        r->integer = value;
    }
    return r;
}

static void *rs_reply_nil(const redisReadTask *task)
{
    return rs_reply_new(task, REDIS_REPLY_NIL, 0, NULL);
}

/* hiredis frees only a reply's top object (after its callback, or a reply cut short): the
 * whole arena goes with it. */
static void rs_reply_free(void *top)
{
    if (!top) {
        return;
    }
    struct rs_reply_arena *a = rs_reply_arena_of(top);
    struct rs_reply_blk *b = a->blocks;
    while (b) {
        struct rs_reply_blk *next = b->next;
        sl_free(b);
        b = next;
    }
    sl_free(a);
}

struct redisReplyObjectFunctions rs_reply_functions = {
    .createString = rs_reply_string,
    .createArray = rs_reply_array,
    .createInteger = rs_reply_integer,
    .createNil = rs_reply_nil,
    .freeObject = rs_reply_free,
};
