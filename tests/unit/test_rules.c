/*
 * test_rules.c: the per-op rules table (passes/rules.c) and the named argument accessors.
 *
 * The table is what the search, the lowering and codegen share, so its entries are pinned
 * here against the strategies DESIGN.md §4 describes: which parameter dimension a column or
 * row split divides, which bias rank 0 adds alone, the column split's own all-reduce, the
 * modes the search may try (in order, with their divisibility), and the memory attention keeps.
 */
#include "ir_testlib.h"
#include "passes.h"
#include "sched_testlib.h"

#include "../../runtime/mprt_ew.h"

static void test_accessors(void) {
    Arena a = {0};
    Diag d;
    diag_init(&d, stderr);
    IrGraph *g = tp_compile(&a, &d,
                            "model m {\n"
                            "    input x: f32[batch, 8, 16];\n"
                            "    label y: i32[batch, 8];\n"
                            "    h = attention(x, 4, causal = true);\n"
                            "    c = linear(h, 5, false);\n"
                            "    loss = cross_entropy(c, y);\n"
                            "}\n"
                            "train { batch = 4; optimizer = sgd(lr = 0.1); steps = 1; }\n"
                            "cluster { devices = 2; preset = \"cpu\"; }\n");
    CHECK(g != NULL);
    if (!g) return;
    const IrNode *att = IR_NODE(g, 0), *lin = IR_NODE(g, 1);
    CHECK_EQ(ir_arg_int(att, ATTENTION_HEADS), 4);
    CHECK(ir_arg_bool(att, ATTENTION_CAUSAL));
    CHECK_EQ(ir_arg_int(lin, LINEAR_OUT), 5);
    CHECK(!ir_arg_bool(lin, LINEAR_BIAS));
    /* slots follow the order of ops.def's lists, which the spec text repeats */
    ArgSpec s[IR_MAX_ARGS];
    CHECK_EQ(ir_op_args(OP_CONV2D, s), 5);
    CHECK(strcmp(s[IR_ARG_CONV2D_PADDING].name, "padding") == 0);
    CHECK(!s[IR_ARG_CONV2D_PADDING].required && s[IR_ARG_CONV2D_PADDING].def == 0);
    CHECK(s[IR_ARG_CONV2D_OUT].required && s[IR_ARG_CONV2D_OUT].type == ARG_INT);
    CHECK_EQ(ir_op_args(OP_LAYERNORM, s), 1);
    CHECK(s[IR_ARG_LAYERNORM_EPS].type == ARG_FLOAT && s[IR_ARG_LAYERNORM_EPS].def == 1e-5);
    arena_free(&a);
}

static void check_split(OpKind op, Strategy st, ParamRole role, int dim, bool ceil, bool rank0) {
    ParamSplit p = rules_param_split(op, st, role);
    CHECK_EQ(p.dim, dim);
    CHECK_EQ(p.ceil, ceil);
    CHECK_EQ(p.rank0, rank0);
}

static void test_splits(void) {
    check_split(OP_LINEAR, STRAT_DATA, PARAM_WEIGHT, -1, false, false);
    /* [in, out]: out, rounded up (an LM head's classes may be padded) */
    check_split(OP_LINEAR, STRAT_COL, PARAM_WEIGHT, 1, true, false);
    check_split(OP_LINEAR, STRAT_COL, PARAM_BIAS, 0, true, false);
    check_split(OP_LINEAR, STRAT_ROW, PARAM_WEIGHT, 0, false, false);
    check_split(OP_LINEAR, STRAT_ROW, PARAM_BIAS, -1, false, true);
    check_split(OP_CONV2D, STRAT_COL, PARAM_WEIGHT, 0, false, false); /* [out, in, k, k] */
    check_split(OP_CONV2D, STRAT_ROW, PARAM_WEIGHT, 1, false, false);
    check_split(OP_EMBEDDING, STRAT_ROW, PARAM_WEIGHT, 0, true, false);
    check_split(OP_EMBEDDING, STRAT_ROW, PARAM_POS, -1, false, true);
    check_split(OP_EMBEDDING, STRAT_COL, PARAM_POS, 1, false, false);
    check_split(OP_ATTENTION, STRAT_COL, PARAM_WQ, 1, false, false);
    check_split(OP_ATTENTION, STRAT_COL, PARAM_BV, 0, false, false);
    check_split(OP_ATTENTION, STRAT_COL, PARAM_WO, 0, false, false);
    check_split(OP_ATTENTION, STRAT_COL, PARAM_BO, -1, false, true);
    check_split(OP_LAYERNORM, STRAT_DATA, PARAM_GAMMA, -1, false, false);
    /* a vocabulary of 101 over 4 ranks: 26 rows each */
    IrParam emb = {.role = PARAM_WEIGHT, .shape = {2, {101, 8}}};
    CHECK_EQ(rules_param_local(&emb, OP_EMBEDDING, STRAT_ROW, 4), 26 * 8);
    CHECK_EQ(rules_param_local(&emb, OP_EMBEDDING, STRAT_COL, 4), 101 * 2);
    CHECK_EQ(rules_param_local(&emb, OP_EMBEDDING, STRAT_COL, 1), 101 * 8);
}

static void test_own_and_modes(void) {
    CHECK_EQ(pass_rules[OP_LINEAR].own_bwd[STRAT_COL], COLL_ALLREDUCE);
    CHECK_EQ(pass_rules[OP_LINEAR].own_bwd[STRAT_ROW], COLL_NONE);
    CHECK_EQ(pass_rules[OP_ATTENTION].own_bwd[STRAT_COL], COLL_ALLREDUCE);
    CHECK_EQ(pass_rules[OP_EMBEDDING].own_bwd[STRAT_COL], COLL_NONE);
    /* every op can compute on replicated or batch-split inputs, in one mode or the other */
    for (int op = 0; op < OP__COUNT; op++) {
        bool data = false;
        for (int i = 0; i < pass_rules[op].nmodes; i++)
            data |= pass_rules[op].modes[i].strat == STRAT_DATA;
        CHECK(data);
        CHECK(pass_rules[op].nmodes >= 1 && pass_rules[op].nmodes <= RULES_MAX_MODES);
    }
    CHECK(rules_layout_ok(OP_LINEAR, STRAT_ROW, LAYOUT_F, LAYOUT_P));
    CHECK(!rules_layout_ok(OP_LINEAR, STRAT_ROW, LAYOUT_R, LAYOUT_P));
    CHECK(rules_layout_ok(OP_ADD, STRAT_DATA, LAYOUT_P, LAYOUT_P));
    CHECK(!rules_layout_ok(OP_RELU, STRAT_DATA, LAYOUT_P, LAYOUT_P));
    IrNode lin = {.op = OP_LINEAR};
    RuleMode m[RULES_MAX_MODES];
    /* 6 samples over 4 ranks do not split; 8 output features do, 6 input features do not */
    CHECK_EQ(rules_modes(&lin, 4, 6, 6, 8, m), 1);
    CHECK(m[0].strat == STRAT_COL && m[0].in == LAYOUT_R && m[0].out == LAYOUT_F);
    CHECK_EQ(rules_modes(&lin, 2, 6, 6, 8, m), 3);
    CHECK(m[0].strat == STRAT_DATA && m[1].strat == STRAT_COL && m[2].strat == STRAT_ROW);
    /* 509 classes over 4 ranks: padded, 128 each (the search keeps it only for an LM head);
     * 5 over 4: 2 each would leave the last rank none, so no column split */
    CHECK_EQ(rules_modes(&lin, 4, 8, 16, 509, m), 3);
    CHECK(m[1].strat == STRAT_COL && m[1].out == LAYOUT_F);
    CHECK_EQ(rules_modes(&lin, 4, 8, 16, 5, m), 2);
    CHECK(m[0].strat == STRAT_DATA && m[1].strat == STRAT_ROW);
    IrParam head = {.role = PARAM_WEIGHT, .shape = {2, {16, 509}}};
    CHECK_EQ(rules_param_local(&head, OP_LINEAR, STRAT_COL, 4), 16 * 128);
    IrNode ce = {.op = OP_CROSS_ENTROPY};
    CHECK_EQ(rules_modes(&ce, 4, 8, 509, 1, m), 3); /* vocabulary-parallel: any class count */
    IrNode att = {.op = OP_ATTENTION, .args = {[IR_ARG_ATTENTION_HEADS] = 6}};
    CHECK_EQ(rules_modes(&att, 4, 8, 24, 24, m), 1); /* 6 heads do not divide over 4 */
    CHECK_EQ(rules_modes(&att, 3, 8, 24, 24, m), 1); /* 8 samples do not divide over 3 */
    CHECK(m[0].strat == STRAT_COL && m[0].out == LAYOUT_P);
}

static void test_memory(void) {
    IrNode att = {.op = OP_ATTENTION, .args = {[IR_ARG_ATTENTION_HEADS] = 4}};
    /* 2 samples, 8 positions, width 16, heads split over 2 ranks: q k v ctx 2·8·8 each, and
     * probabilities 2·2·8·8 */
    RuleCtx c = {
        .n = &att, .strat = STRAT_COL, .t = 2, .in = {3, {2, 8, 16}}, .out = {3, {2, 8, 16}}};
    CHECK_EQ(rules_stash(&c), 4 * 2 * 8 * 8 + 2 * 2 * 8 * 8);
    CHECK_EQ(rules_scratch(&c), 4 * 2 * 8 * 8 + 8 * 8);
    c.dev = true;
    CHECK_EQ(rules_scratch(&c), 4 * 2 * 8 * 8 + 2 * 8 * 8);
    IrNode ln = {.op = OP_LAYERNORM};
    RuleCtx l = {.n = &ln, .t = 1, .in = {3, {2, 8, 16}}, .out = {3, {2, 8, 16}}};
    CHECK_EQ(rules_stash(&l), 2 * 2 * 8);
    CHECK_EQ(rules_scratch(&l), 0);
    IrNode mp = {.op = OP_MAXPOOL2D};
    RuleCtx p = {.n = &mp, .t = 1, .in = {4, {2, 3, 8, 8}}, .out = {4, {2, 3, 4, 4}}};
    CHECK_EQ(rules_istash(&p), 2 * 3 * 4 * 4);
    CHECK_EQ(rules_stash(&p), 0);
    IrNode cv = {.op = OP_CONV2D, .args = {[IR_ARG_CONV2D_KERNEL] = 3}};
    RuleCtx v = {.n = &cv, .t = 1, .in = {4, {2, 3, 8, 8}}, .out = {4, {2, 5, 6, 6}}};
    CHECK_EQ(rules_scratch(&v), 3 * 3 * 3 * 6 * 6);
}

/* Every element-wise (EW) op of ops.def has a row of the runtime's elementwise table
 * (runtime/mprt_ew.h) under the same name, whose backward reads the same tensor. */
#define EW_OUT_x false
#define EW_OUT_out true
#define EW_READS_IN false
#define EW_READS_OUT true
static void test_ew_runtime(void) {
    static const struct {
        const char *name;
        bool out;
    } rt[] =
        {
#define X(name, saved) {#name, EW_OUT_##saved},
            MPRT_EW_UNARY(X)
#undef X
        },
      ops[] = {
#define OP(id, nm, nin, st, fl, args)
#define EW(id, nm, fwd, bwd, reads) {nm, EW_READS_##reads},
#include "ops.def"
#undef OP
#undef EW
      };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        bool found = false;
        for (size_t k = 0; k < sizeof rt / sizeof rt[0]; k++)
            if (strcmp(rt[k].name, ops[i].name) == 0) {
                found = true;
                CHECK_EQ(rt[k].out, ops[i].out);
            }
        if (!found)
            fprintf(stderr, "element-wise op '%s' has no row in runtime/mprt_ew.h\n", ops[i].name);
        CHECK(found);
    }
    CHECK(sizeof ops / sizeof ops[0] >= 4); /* relu, gelu, tanh, silu */
}

int main(void) {
    test_accessors();
    test_splits();
    test_own_and_modes();
    test_memory();
    test_ew_runtime();
    return TEST_RESULT();
}
