/*
 * test_arena.c: the arena allocator and Vec (ir/arena.c).
 *
 * Alignment of every allocation, zeroed memory, allocations larger than a block, string
 * helpers, and Vec growth keeping earlier items intact.
 */
#include "ir_testlib.h"

#include <stdint.h>

static void test_alignment_and_zero(void) {
    Arena a = {0};
    for (size_t size = 1; size <= 200; size += 7) {
        unsigned char *p = arena_alloc(&a, size);
        CHECK(((uintptr_t)p & 15u) == 0);
        bool zero = true;
        for (size_t i = 0; i < size; i++)
            zero = zero && p[i] == 0;
        CHECK(zero);
        memset(p, 0xab, size); /* ASan flags any overlap with the next allocation */
    }
    /* distinct allocations do not overlap */
    char *x = arena_alloc(&a, 10), *y = arena_alloc(&a, 10);
    CHECK(y >= x + 10 || x >= y + 10);
    CHECK(a.total >= 10 * 16);
    arena_free(&a);
    CHECK(a.head == NULL);
    CHECK_EQ(a.total, 0);
}

static void test_large(void) {
    Arena a = {0};
    char *small = arena_alloc(&a, 100);
    size_t big = 5u * 1024 * 1024; /* far larger than one 64 KiB block */
    unsigned char *p = arena_alloc(&a, big);
    CHECK(((uintptr_t)p & 15u) == 0);
    CHECK(p[0] == 0 && p[big - 1] == 0);
    memset(p, 1, big);
    char *after = arena_alloc(&a, 100); /* still usable after a dedicated block */
    memset(after, 2, 100);
    CHECK(small[0] == 0 && p[big / 2] == 1);
    int *arr = arena_calloc(&a, 1000, sizeof(int));
    bool zero = true;
    for (int i = 0; i < 1000; i++)
        zero = zero && arr[i] == 0;
    CHECK(zero);
    arena_free(&a);
}

static void test_strings(void) {
    Arena a = {0};
    const char *src = "blocks.3.mlp.fc1";
    char *s = arena_strdup(&a, src);
    CHECK(s != src && strcmp(s, src) == 0);
    char *n = arena_strndup(&a, src, 6);
    CHECK(strcmp(n, "blocks") == 0);
    char *e = arena_strdup(&a, "");
    CHECK(e[0] == '\0');
    char *f = arena_printf(&a, "%s.%d.%s", "blocks", 11, "attn");
    CHECK(strcmp(f, "blocks.11.attn") == 0);
    char longbuf[3000];
    memset(longbuf, 'x', sizeof longbuf - 1);
    longbuf[sizeof longbuf - 1] = '\0';
    char *g = arena_printf(&a, "<%s>", longbuf);
    CHECK_EQ(strlen(g), 3001);
    CHECK(g[0] == '<' && g[3000] == '>' && g[3001] == '\0');
    arena_free(&a);
}

static void test_vec(void) {
    Arena a = {0};
    Vec v = {.item = sizeof(int64_t)};
    for (int64_t i = 0; i < 10000; i++) {
        int64_t *slot = vec_push(&a, &v);
        CHECK(*slot == 0);
        *slot = i * i;
    }
    CHECK_EQ(v.len, 10000);
    CHECK(v.cap >= v.len);
    bool ok = true;
    for (int64_t i = 0; i < 10000; i++)
        ok = ok && VEC_AT(v, int64_t, i) == i * i;
    CHECK(ok);

    /* items of an odd size survive growth too */
    typedef struct {
        char name[13];
        int id;
    } Odd;
    Vec w = {.item = sizeof(Odd)};
    for (int i = 0; i < 100; i++) {
        Odd *o = vec_push(&a, &w);
        snprintf(o->name, sizeof o->name, "n%d", i);
        o->id = i;
    }
    CHECK(strcmp(VEC_AT(w, Odd, 0).name, "n0") == 0);
    CHECK(strcmp(VEC_AT(w, Odd, 99).name, "n99") == 0 && VEC_AT(w, Odd, 99).id == 99);
    arena_free(&a);
}

int main(void) {
    test_alignment_and_zero();
    test_large();
    test_strings();
    test_vec();
    return TEST_RESULT();
}
