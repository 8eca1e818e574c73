/*
 * test_lower.c: the lowering (pass "lower") and the C emitter on hand-made plans.
 *
 * A Megatron-style block (column split, gelu, row split) followed by a data-parallel layer
 * on 2 tensor ranks: the schedule must hold exactly the collectives the layouts imply, with
 * the bytes of passes.h's formulas, the duals in backward, the gradient all-reduce over the
 * right group, and 1F1B orders with the right stash bound. The emitter must give the same
 * bytes twice and mangle hostile names.
 */
#include "codegen.h"
#include "ir_testlib.h"
#include "sched_testlib.h"

static const char *MEGATRON =
    "model meg {\n"
    "    input x: f32[batch, 64];\n"
    "    label y: i32[batch];\n"
    "    h = linear(x, 128) @tensor(col);\n"
    "    a = gelu(h);\n"
    "    o = linear(a, 64) @tensor(row);\n"
    "    z = linear(o, 10);\n"
    "    loss = cross_entropy(z, y);\n"
    "}\n"
    "train { batch = 16; microbatches = 2; optimizer = adam(lr = 1e-3); steps = 5; }\n"
    "cluster { devices = 2; preset = \"cpu\"; }\n";

static char *text_of(void (*fn)(const IrGraph *, FILE *), const IrGraph *g) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    fn(g, f);
    fclose(f);
    return buf;
}

static void emit_to(const IrGraph *g, FILE *f) {
    Diag d;
    diag_init(&d, stderr);
    if (!cg_emit_c(g, f, &d)) fprintf(f, "EMIT FAILED\n");
}

static int count_ops(const SchedOp *ops, int n, SchedOpKind k, CollKind c) {
    int r = 0;
    for (int i = 0; i < n; i++)
        r += ops[i].kind == k && (k != SOP_COLL || ops[i].coll == c);
    return r;
}

static void test_megatron(void) {
    Arena a = {0};
    Diag d;
    diag_init(&d, stderr);
    IrGraph *g = tp_compile(&a, &d, MEGATRON);
    CHECK(g != NULL);
    if (!g) return;
    tp_plan(g, 1, 1, 2, 2);
    CHECK(pass_lower(g, &d));
    const Schedule *s = g->sched;
    CHECK_EQ(s->micro, 8);
    const SchedStage *st = &s->stages[0];
    /* load x, h, a, o, reduce-scatter o (P→B), z, load y, slice y (R→B), loss */
    CHECK_EQ(st->nfwd, 9);
    CHECK_EQ(count_ops(st->fwd, st->nfwd, SOP_COLL, COLL_REDUCESCATTER), 1);
    CHECK_EQ(count_ops(st->fwd, st->nfwd, SOP_COLL, COLL_SLICE), 1);
    CHECK_EQ(count_ops(st->bwd, st->nbwd, SOP_COLL, COLL_ALLGATHER), 1);
    CHECK_EQ(count_ops(st->bwd, st->nbwd, SOP_BWD, 0), 5);
    /* o is [8, 64] f32 = 2048 B per micro-batch: reduce-scatter and its all-gather dual
     * move half of it each, twice per step (2 micro-batches) */
    CHECK_EQ(st->bytes[GROUP_TENSOR][COLL_REDUCESCATTER], 2048);
    CHECK_EQ(st->bytes[GROUP_TENSOR][COLL_ALLGATHER], 2048);
    /* z (650 floats) is data-parallel over both ranks: one all-reduce over the stage group */
    CHECK_EQ(st->nsync, 1);
    CHECK_EQ(st->sync[0].group, GROUP_STAGE);
    CHECK_EQ(st->bytes[GROUP_STAGE][COLL_ALLREDUCE], 2600);
    /* shards: h.weight [64, 64] of [64, 128]; o.weight [64, 64] of [128, 64]; o.bias whole on rank
     * 0 */
    const SchedParam *hw = &s->params[0], *ow = &s->params[2], *ob = &s->params[3];
    CHECK_EQ(hw->split_dim, 1);
    CHECK_EQ(hw->local.d[1], 64);
    CHECK_EQ(ow->split_dim, 0);
    CHECK_EQ(ow->local.d[0], 64);
    CHECK(ob->rank0_adds && ob->split_dim < 0);
    char *p1 = text_of(pass_schedule_print, g), *p2 = text_of(pass_schedule_print, g);
    CHECK(strcmp(p1, p2) == 0);
    CHECK_STR(p1, "reduce-scatter tensor group, o[P] f32[8, 64] -> o[B] f32[4, 64]  1024 B");
    CHECK_STR(p1, "order: F0 B0 F1 B1");
    char *c1 = text_of(emit_to, g), *c2 = text_of(emit_to, g);
    CHECK(strcmp(c1, c2) == 0);
    CHECK_STR(c1, "mprt_reduce_scatter(MPRT_TENSOR, a->v");
    CHECK_STR(c1, "mprt_linear_forward(a->v");
    CHECK_STR(c1, "mesh->k == 0");
    CHECK_STR(c1, "/* test.mp:4:9  ");
    free(p1), free(p2), free(c1), free(c2);
    arena_free(&a);
}

/* With MPCC_CG_OUT set, writes trainers of `src` under several meshes for the e2e runs. */
static void write_variants(const char *name, const char *src) {
    const char *dir = getenv("MPCC_CG_OUT");
    static const int mesh[][4] = {{1, 1, 1, 1}, {1, 1, 1, 2}, {1, 2, 1, 2}, {1, 1, 2, 2},
                                  {1, 2, 2, 1}, {1, 1, 4, 1}, {1, 4, 1, 1}, {2, 1, 1, 2},
                                  {2, 1, 2, 4}, {4, 1, 1, 4}};
    for (size_t i = 0; dir && i < sizeof mesh / sizeof mesh[0]; i++) {
        Arena a = {0};
        Diag d;
        diag_init(&d, stderr);
        IrGraph *g = tp_compile(&a, &d, src);
        if (g) tp_plan(g, mesh[i][0], mesh[i][1], mesh[i][2], mesh[i][3]);
        if (g && pass_lower(g, &d)) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s_S%d_d%d_t%d_m%d.c", dir, name, mesh[i][0],
                     mesh[i][1], mesh[i][2], mesh[i][3]);
            FILE *f = fopen(path, "w");
            if (f) emit_to(g, f), fclose(f);
        }
        arena_free(&a);
    }
}

/* 1F1B for S = 4, m = 8: stage s warms up with S−s−1 forwards and keeps min(S−s, m). */
static void test_1f1b(void) {
    Arena a = {0};
    Diag d;
    diag_init(&d, stderr);
    IrGraph *g = tp_compile(&a, &d,
                            "model p { input x: f32[batch, 8]; label y: i32[batch];\n"
                            "  h1 = linear(x, 8); h2 = linear(h1, 8); h3 = linear(h2, 8);\n"
                            "  h4 = linear(h3, 4); loss = cross_entropy(h4, y); }\n"
                            "train { batch = 16; microbatches = 8; }\n");
    CHECK(g != NULL);
    if (!g) return;
    tp_plan(g, 4, 1, 1, 8);
    CHECK(pass_lower(g, &d));
    const Schedule *s = g->sched;
    static const char *want[4] = {
        "F0 F1 F2 F3 B0 F4 B1 F5 B2 F6 B3 F7 B4 B5 B6 B7",
        "F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 F6 B4 F7 B5 B6 B7",
        "F0 F1 B0 F2 B1 F3 B2 F4 B3 F5 B4 F6 B5 F7 B6 B7",
        "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5 F6 B6 F7 B7",
    };
    for (int k = 0; k < 4; k++) {
        char got[256] = "";
        for (int i = 0; i < s->stages[k].norder; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%c%d", i ? " " : "",
                     s->stages[k].order[i].bwd ? 'B' : 'F', s->stages[k].order[i].micro);
        CHECK(strcmp(got, want[k]) == 0);
        if (strcmp(got, want[k]) != 0) fprintf(stderr, "stage %d: %s\n", k, got);
        CHECK_EQ(s->stages[k].stash, 4 - k);
        /* in-flight forwards never exceed the stash bound */
        int live = 0, peak = 0;
        for (int i = 0; i < s->stages[k].norder; i++) {
            live += s->stages[k].order[i].bwd ? -1 : 1;
            if (live > peak) peak = live;
        }
        CHECK_EQ(peak, 4 - k);
    }
    /* stage 1 receives h1 from stage 0 and sends h2 on; backward mirrors it */
    CHECK_EQ(count_ops(s->stages[1].fwd, s->stages[1].nfwd, SOP_RECV, 0), 1);
    CHECK_EQ(count_ops(s->stages[1].fwd, s->stages[1].nfwd, SOP_SEND, 0), 1);
    CHECK_EQ(count_ops(s->stages[1].bwd, s->stages[1].nbwd, SOP_SEND, 0), 1);
    CHECK_EQ(s->stages[1].bytes[GROUP_PIPE][COLL_SENDRECV], 2 * 8 * 2 * 8 * 4);
    arena_free(&a);
}

/* Identifiers in C come from cg_mangle only: index-prefixed, [A-Za-z0-9_]. */
static void test_mangle(void) {
    Arena a = {0};
    CHECK(strcmp(cg_mangle(&a, "l", 3, "blocks.0.fc*/x"), "l3_blocks_0_fc__x") == 0);
    CHECK(strcmp(cg_mangle(&a, "l", 12, "a"), cg_mangle(&a, "l", 1, "2_a")) != 0);
    arena_free(&a);
}

int main(void) {
    test_megatron();
    test_1f1b();
    test_mangle();
    write_variants("meg", MEGATRON);
    return TEST_RESULT();
}
