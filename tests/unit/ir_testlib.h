/*
 * ir_testlib.h: a tiny harness for the IR unit tests (test_arena, test_ir, test_shapes).
 *
 * CHECK* macros print the failing expression with file:line and count failures; a test's
 * main returns TEST_RESULT(). TestGraph bundles an arena, a graph and a Diag whose output
 * goes to a memory buffer, so tests can assert the exact text of diagnostics.
 */
#ifndef MPCC_IR_TESTLIB_H
#define MPCC_IR_TESTLIB_H

#include "ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);                  \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, expected %s == %lld\n", __FILE__, \
                    __LINE__, #a, a_, #b, b_);                                                     \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_STR(hay, needle)                                                                     \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (!h_ || !strstr(h_, n_)) {                                                              \
            fprintf(stderr, "%s:%d: CHECK_STR failed: expected to find\n  \"%s\"\nin\n%s\n",       \
                    __FILE__, __LINE__, n_, h_ ? h_ : "(null)");                                   \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define TEST_RESULT()                                                                              \
    (test_failures ? (fprintf(stderr, "%d check(s) failed\n", test_failures), 1)                   \
                   : (printf("all checks passed\n"), 0))

typedef struct TestGraph {
    Arena arena;
    IrGraph *g;
    Diag diag;
    FILE *diag_out;
    char *text; /* everything written to the Diag so far (tg_diag_text) */
    size_t text_len;
} TestGraph;

static inline void tg_init(TestGraph *t) {
    memset(t, 0, sizeof *t);
    t->g = ir_graph_new(&t->arena, "m", "dir/m.mp");
    t->diag_out = open_memstream(&t->text, &t->text_len);
    if (!t->diag_out) {
        perror("open_memstream");
        exit(2);
    }
    diag_init(&t->diag, t->diag_out);
}

static inline void tg_free(TestGraph *t) {
    fclose(t->diag_out);
    free(t->text);
    arena_free(&t->arena);
}

/* The diagnostics printed so far, NUL-terminated. */
static inline const char *tg_diag_text(TestGraph *t) {
    fflush(t->diag_out);
    return t->text ? t->text : "";
}

static inline SrcLoc tg_loc(int line, int col) { return (SrcLoc){"dir/m.mp", line, col, col + 3}; }

/* An input or label with the given shape (rank = number of dims given, ≤ 4). */
static inline int tg_value(TestGraph *t, const char *name, ValueKind k, DType dt, int rank,
                           int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int v = ir_add_value(t->g, name, k, dt, tg_loc(1, 1));
    IrValue *val = IR_VALUE(t->g, v);
    int64_t d[4] = {d0, d1, d2, d3};
    val->shape.rank = rank;
    for (int i = 0; i < rank; i++)
        val->shape.d[i] = d[i];
    val->batch_sym = true;
    return v;
}

/* A node reading `in0` (and `in1` when the op takes two); written on source line `line`.
 * Its arguments start at the op's defaults; set node->args[] afterwards. */
static inline int tg_node(TestGraph *t, OpKind op, const char *name, int line, int in0, int in1) {
    int id = ir_add_node(t->g, op, name, tg_loc(line, 5));
    IrNode *n = IR_NODE(t->g, id);
    n->ninputs = ir_ops[op].ninputs;
    n->inputs[0] = in0;
    if (n->ninputs > 1) n->inputs[1] = in1;
    return id;
}

/* Sets argument i of node `id` to v, written at line `line`, column 20 + 2*i. */
static inline void tg_arg(TestGraph *t, int id, int i, double v, int line) {
    IrNode *n = IR_NODE(t->g, id);
    n->args[i] = v;
    n->arg_loc[i] = tg_loc(line, 20 + 2 * i);
}

static inline int tg_out(TestGraph *t, int id) { return IR_NODE(t->g, id)->output; }
static inline IrNode *tg_n(TestGraph *t, int id) { return IR_NODE(t->g, id); }
static inline const IrValue *tg_v(TestGraph *t, int id) {
    return IR_VALUE(t->g, IR_NODE(t->g, id)->output);
}

/* "f32[128, 10]" for a node's output. */
static inline const char *tg_shape(TestGraph *t, int id) {
    static char buf[8][192];
    static int k;
    const IrValue *v = tg_v(t, id);
    k = (k + 1) % 8;
    return ir_shape_str(buf[k], sizeof buf[k], v->dtype, &v->shape);
}

#endif /* MPCC_IR_TESTLIB_H */
