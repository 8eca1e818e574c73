/*
 * arena.c: bump allocation for the compiler.
 *
 * Every object of a compilation (AST, IR, plan, schedule, strings) comes from one Arena
 * and is released together at exit, so passes carry no free() bookkeeping. Blocks are
 * chained; a request larger than the default block gets a block of its own. Memory is
 * zeroed, which lets the IR rely on "all fields start at 0". Out of memory is the one
 * fatal condition here: it is not the user's fault and cannot be reported per location.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK 65536u
#define ARENA_ALIGN 16u

struct ArenaBlock {
    ArenaBlock *next;
    size_t used, size;
    _Alignas(16) unsigned char mem[];
};

static void arena_oom(size_t size) {
    fprintf(stderr, "mpcc: fatal: out of memory allocating %zu bytes\n", size);
    exit(3);
}

void *arena_alloc(Arena *a, size_t size) {
    size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (need < size) arena_oom(size);
    ArenaBlock *b = a->head;
    if (!b || b->size - b->used < need) {
        size_t bsize = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        b = calloc(1, sizeof(ArenaBlock) + bsize);
        if (!b) arena_oom(size);
        b->size = bsize;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->mem + b->used;
    b->used += need;
    a->total += need;
    return p;
}

void *arena_calloc(Arena *a, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) arena_oom(SIZE_MAX);
    return arena_alloc(a, n * size);
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void arena_free(Arena *a) {
    ArenaBlock *b = a->head;
    while (b) {
        ArenaBlock *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->total = 0;
}

void *vec_push(Arena *a, Vec *v) {
    if (v->len == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 16;
        void *nd = arena_calloc(a, ncap, v->item);
        if (v->len) memcpy(nd, v->data, v->len * v->item);
        v->data = nd;
        v->cap = ncap;
    }
    void *slot = (unsigned char *)v->data + v->len * v->item;
    memset(slot, 0, v->item);
    v->len++;
    return slot;
}
