/*
 * test_ir.c: the IR building blocks (ir/graph.c), the dump (ir/dump.c), the verifier
 * (ir/verify.c) and the pass pipeline (passes/pipeline.c).
 */
#include "ir_testlib.h"
#include "passes.h"

static void test_op_table(void) {
    CHECK_EQ(ir_op_lookup("linear"), OP_LINEAR);
    CHECK_EQ(ir_op_lookup("cross_entropy"), OP_CROSS_ENTROPY);
    CHECK_EQ(ir_op_lookup("relu6"), -1);
    CHECK_EQ(ir_ops[OP_ADD].ninputs, 2);
    CHECK(ir_ops[OP_MSE].flags & OPF_LOSS);
    ArgSpec s[IR_MAX_ARGS];
    CHECK_EQ(ir_op_args(OP_CONV2D, s), 5);
    CHECK(strcmp(s[0].name, "out") == 0 && s[0].type == ARG_INT && s[0].required);
    CHECK(strcmp(s[3].name, "padding") == 0 && !s[3].required && s[3].def == 0);
    CHECK(strcmp(s[4].name, "bias") == 0 && s[4].type == ARG_BOOL && s[4].def == 1);
    CHECK_EQ(ir_op_args(OP_RELU, s), 0);
    CHECK_EQ(ir_op_args(OP_LAYERNORM, s), 1);
    CHECK(s[0].type == ARG_FLOAT && s[0].def == 1e-5);
}

static void test_shape_helpers(void) {
    Shape s = {3, {2, 3, 4}};
    CHECK_EQ(ir_shape_numel(&s), 24);
    char buf[64];
    CHECK(strcmp(ir_shape_str(buf, sizeof buf, DT_I64, &s), "i64[2, 3, 4]") == 0);
    Shape z = {0, {0}};
    CHECK(strcmp(ir_shape_str(buf, sizeof buf, DT_F32, &z), "f32[]") == 0);
    CHECK(strcmp(ir_shape_str(buf, 8, DT_F32, &s), "f32[2, ") == 0); /* truncates safely */
    CHECK_EQ(ir_dtype_size(DT_I64), 8);
    CHECK_EQ(ir_dtype_size(DT_F32), 4);
    CHECK(strcmp(ir_param_role_name(PARAM_BO), "bo") == 0);
}

static void test_building(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 8, 4, 0, 0);
    CHECK_EQ(IR_VALUE(t.g, x)->producer, -1);
    int n = tg_node(&t, OP_CONV2D, "c", 2, x, -1);
    CHECK_EQ(n, 0);
    const IrNode *node = tg_n(&t, n);
    CHECK_EQ(node->output, 1);
    CHECK_EQ(IR_VALUE(t.g, node->output)->producer, 0);
    CHECK(strcmp(IR_VALUE(t.g, node->output)->name, "c") == 0);
    CHECK_EQ(node->args[1], 3); /* conv2d kernel default */
    CHECK_EQ(node->args[4], 1); /* bias default true */
    CHECK_EQ(node->annot.stage, IR_NO_STAGE);
    int r1 = tg_node(&t, OP_RELU, "r1", 3, x, -1);
    int r2 = tg_node(&t, OP_ADD, "r2", 4, x, tg_out(&t, r1));
    ir_finalize(t.g);
    CHECK_EQ(IR_VALUE(t.g, x)->nusers, 3);
    CHECK_EQ(IR_VALUE(t.g, tg_out(&t, r1))->nusers, 1);
    CHECK_EQ(IR_VALUE(t.g, tg_out(&t, r2))->nusers, 0);
    CHECK_EQ(ir_find_value(t.g, "r1"), tg_out(&t, r1));
    CHECK_EQ(ir_find_value(t.g, "nope"), -1);
    int p = ir_add_param(t.g, r2, PARAM_GAMMA, (Shape){1, {4}});
    CHECK(strcmp(IR_PARAM(t.g, p)->name, "r2.gamma") == 0);
    CHECK_EQ(tg_n(&t, r2)->first_param, p);
    CHECK_EQ(tg_n(&t, r2)->param_count, 4);
    tg_free(&t);
}

/* The MLP from DESIGN.md, small: x[4, 6] -> linear 3 @tensor(col) -> relu @stage(1) -> ce. */
static TestGraph *small_mlp(TestGraph *t) {
    tg_init(t);
    int x = tg_value(t, "x", VAL_INPUT, DT_F32, 2, 4, 6, 0, 0);
    int y = tg_value(t, "y", VAL_LABEL, DT_I32, 1, 4, 0, 0, 0);
    int h = tg_node(t, OP_LINEAR, "h1", 3, x, -1);
    tg_arg(t, h, 0, 3, 3);
    tg_n(t, h)->annot.has_strat = true;
    tg_n(t, h)->annot.strat = STRAT_COL;
    int r = tg_node(t, OP_RELU, "a1", 4, tg_out(t, h), -1);
    tg_n(t, r)->annot.stage = 1;
    tg_node(t, OP_CROSS_ENTROPY, "loss", 5, tg_out(t, r), y);
    return t;
}

static char *dump_to_string(const IrGraph *g) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ir_dump(g, f);
    fclose(f);
    return buf;
}

static void test_dump(void) {
    TestGraph t;
    small_mlp(&t);
    char *before = dump_to_string(t.g);
    CHECK_STR(before, "  h1    linear         x:f32[4, 6]     -> ?            0          0         "
                      " 0  dir/m.mp:3:5  @tensor(col)\n");
    CHECK_STR(before, "  a1    relu           h1:?            -> ?            0          0         "
                      " 0  dir/m.mp:4:5  @stage(1)\n");
    CHECK(pass_shapes(t.g, &t.diag));
    char *d = dump_to_string(t.g);
    /* h1: params 6*3 + 3 = 21; fwd 2*4*6*3 + 4*3 = 156; bwd 156 (x needs no gradient).
     * loss: 12 logits, 4 rows: fwd 4*12 + 4 = 52, bwd 2*12 + 4 = 28. */
    CHECK_STR(
        d,
        "model m (dir/m.mp)\ninputs:\n  x  input  f32[4, 6]  dir/m.mp:1:1\n  y  label  i32[4]     "
        "dir/m.mp:1:1\n");
    CHECK_STR(d, "nodes:\n"
                 "  name  op             inputs                  -> output     params  fwd FLOPs  "
                 "bwd FLOPs  loc           annotations\n"
                 "  h1    linear         x:f32[4, 6]             -> f32[4, 3]      21        156   "
                 "     156  dir/m.mp:3:5  @tensor(col)\n"
                 "  a1    relu           h1:f32[4, 3]            -> f32[4, 3]       0         12   "
                 "      12  dir/m.mp:4:5  @stage(1)\n"
                 "  loss  cross_entropy  a1:f32[4, 3], y:i32[4]  -> f32[]           0         52   "
                 "      28  dir/m.mp:5:5\n");
    CHECK_STR(d, "parameters:\n"
                 "  h1.weight  f32[6, 3]  18\n"
                 "  h1.bias    f32[3]      3\n");
    CHECK_STR(d, "totals:\n"
                 "  parameters       21  (21)\n"
                 "  fwd FLOPs/step  220  (220)\n"
                 "  bwd FLOPs/step  196  (196)\n"
                 "  FLOPs/step      416  (416)\n");
    CHECK(strstr(d, " \n") == NULL); /* no trailing spaces */
    char *again = dump_to_string(t.g);
    CHECK(strcmp(d, again) == 0); /* deterministic */
    free(before);
    free(d);
    free(again);
    tg_free(&t);
}

/* Big numbers: exact with separators, abbreviated FLOPs per node. */
static void test_dump_numbers(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 1024, 8192, 0, 0);
    int y = tg_value(&t, "y", VAL_LABEL, DT_F32, 2, 1024, 8192, 0, 0);
    int h = tg_node(&t, OP_LINEAR, "h", 2, x, -1);
    tg_arg(&t, h, 0, 8192, 2);
    tg_node(&t, OP_MSE, "loss", 3, tg_out(&t, h), y);
    CHECK(pass_shapes(t.g, &t.diag));
    char *d = dump_to_string(t.g);
    /* params 8192*8192 + 8192 = 67,117,056; fwd 2*1024*8192^2 + 1024*8192 = 137,447,342,080,
     * plus the mse's 3*1024*8192 = 25,165,824 in the total */
    CHECK_STR(d, "  h     linear  x:f32[1024, 8192]                     -> f32[1024, 8192]  "
                 "67,117,056       137G       137G  dir/m.mp:2:5\n");
    CHECK_STR(d, "  h.weight  f32[8192, 8192]  67,108,864\n");
    CHECK_STR(d, "  parameters           67,117,056  (67.1M)\n"
                 "  fwd FLOPs/step  137,472,507,904  (137G)\n");
    free(d);
    tg_free(&t);
}

/* Builds a valid, shaped graph, lets `breakit` damage it, and checks the verifier's text. */
static void expect_verify_fail(void (*breakit)(IrGraph *), const char *msg) {
    TestGraph t;
    small_mlp(&t);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK(ir_verify(t.g, IR_PHASE_SHAPED, "shapes", &t.diag));
    CHECK_EQ(t.diag.errors, 0);
    breakit(t.g);
    CHECK(!ir_verify(t.g, IR_PHASE_SHAPED, "shapes", &t.diag));
    CHECK_EQ(t.diag.errors, 0); /* not a user error: the driver exits 3 */
    CHECK_STR(tg_diag_text(&t),
              "mpcc: internal compiler error: IR verification failed after pass 'shapes': ");
    CHECK_STR(tg_diag_text(&t), msg);
    tg_free(&t);
}

static void break_input_range(IrGraph *g) { IR_NODE(g, 1)->inputs[0] = 99; }
static void break_order(IrGraph *g) { IR_NODE(g, 0)->inputs[0] = IR_NODE(g, 1)->output; }
static void break_ninputs(IrGraph *g) { IR_NODE(g, 1)->ninputs = 2; }
static void break_output(IrGraph *g) { IR_NODE(g, 1)->output = IR_NODE(g, 0)->output; }
static void break_params(IrGraph *g) { IR_NODE(g, 0)->param_count = 20; }
static void break_param_owner(IrGraph *g) { IR_PARAM(g, 1)->node = 2; }
static void break_shape(IrGraph *g) { IR_VALUE(g, IR_NODE(g, 1)->output)->shape.rank = 0; }
static void break_loss_shape(IrGraph *g) { IR_VALUE(g, IR_NODE(g, 2)->output)->shape.rank = 1; }
static void break_loss_node(IrGraph *g) { g->loss_node = 1; }
static void break_dim(IrGraph *g) { IR_VALUE(g, 0)->shape.d[1] = 0; }
static void break_producer(IrGraph *g) { IR_VALUE(g, 0)->producer = 1; }

static void test_verify(void) {
    expect_verify_fail(break_input_range, "node 'a1' input 0 is 99, out of range");
    expect_verify_fail(break_order, "node 'h1' uses 'a1' before it is defined");
    expect_verify_fail(break_ninputs, "node 'a1' (relu) has 2 inputs, expected 1");
    expect_verify_fail(break_output, "value 'a1' is not the output of its producer 'a1'");
    expect_verify_fail(break_params, "node 'h1' has param_count 20 but its parameters hold 21");
    expect_verify_fail(break_param_owner, "parameter 'h1.bias' is in the range of node 'h1'");
    expect_verify_fail(break_shape, "value 'a1' has rank 0 after shape inference");
    expect_verify_fail(break_loss_shape, "the loss 'loss' is not an f32 scalar");
    expect_verify_fail(break_loss_node, "loss_node is 1, not the loss");
    expect_verify_fail(break_dim, "value 'x' has dimension 1 of size 0");
    expect_verify_fail(break_producer, "input 'x' has a producer (node 1)");

    /* Before shape inference, shapes are not required. */
    TestGraph t;
    small_mlp(&t);
    CHECK(ir_verify(t.g, IR_PHASE_BUILT, "frontend", &t.diag));
    CHECK_EQ(t.diag.errors, 0);
    /* The phase, not the name of the step that ran, says what must hold: an unshaped graph
     * fails the shaped checks whatever the step is called, and a planned graph needs a plan. */
    CHECK(!ir_verify(t.g, IR_PHASE_SHAPED, "frontend", &t.diag));
    CHECK_STR(tg_diag_text(&t), "after pass 'frontend': loss_node is -1, not the loss");
    tg_free(&t);
    small_mlp(&t);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK(ir_verify(t.g, IR_PHASE_SHAPED, "my-pass", &t.diag));
    CHECK(!ir_verify(t.g, IR_PHASE_PLANNED, "my-pass", &t.diag));
    CHECK_STR(tg_diag_text(&t), "after pass 'my-pass': the graph has no plan");
    CHECK_EQ(t.diag.errors, 0);
    tg_free(&t);
}

static void test_pipeline(void) {
    CHECK(pass_count >= 1);
    CHECK_EQ(pass_find("shapes"), 0);
    CHECK(pass_list[0].run == pass_shapes);
    CHECK_EQ(pass_find("nope"), -1);

    TestGraph t;
    small_mlp(&t);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK(pass_run_pipeline(t.g, &t.diag, "shapes", "shapes", f));
    fclose(f);
    CHECK_STR(buf, "  h1    linear         x:f32[4, 6]             -> f32[4, 3]");
    CHECK_STR(buf, "totals:\n");
    CHECK_EQ(t.g->loss_node, 2);
    free(buf);
    tg_free(&t);

    small_mlp(&t);
    CHECK(!pass_run_pipeline(t.g, &t.diag, "shape", NULL, stdout));
    CHECK_STR(tg_diag_text(&t), "unknown pass 'shape'");
    CHECK_STR(tg_diag_text(&t), "(passes: shapes");
    CHECK_EQ(t.g->loss_node, -1); /* nothing ran */
    tg_free(&t);

    small_mlp(&t);
    CHECK(!pass_run_pipeline(t.g, &t.diag, NULL, "bogus", stdout));
    CHECK_STR(tg_diag_text(&t), "unknown pass 'bogus'");
    tg_free(&t);

    /* Dumping after a pass that this run does not reach is an error, not silence. */
    if (pass_count > 1) {
        small_mlp(&t);
        CHECK(!pass_run_pipeline(t.g, &t.diag, "shapes", pass_list[1].name, stdout));
        CHECK_STR(tg_diag_text(&t), "cannot dump the IR after pass '");
        CHECK_STR(tg_diag_text(&t), "': this run stops after 'shapes'");
        CHECK_EQ(t.g->loss_node, -1);
        tg_free(&t);
    }

    /* A failing pass stops the pipeline and nothing is dumped. */
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 1, 4, 0, 0, 0);
    tg_arg(&t, tg_node(&t, OP_LINEAR, "h", 2, x, -1), 0, 8, 2);
    buf = NULL;
    f = open_memstream(&buf, &len);
    CHECK(!pass_run_pipeline(t.g, &t.diag, NULL, "shapes", f));
    fclose(f);
    CHECK_EQ(len, 0);
    CHECK_STR(tg_diag_text(&t), "linear expects a tensor of rank >= 2");
    free(buf);
    tg_free(&t);
}

int main(void) {
    test_op_table();
    test_shape_helpers();
    test_building();
    test_dump();
    test_dump_numbers();
    test_verify();
    test_pipeline();
    return TEST_RESULT();
}
