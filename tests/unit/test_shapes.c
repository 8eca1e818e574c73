/*
 * test_shapes.c: pass_shapes on graphs built by hand, one group of checks per op.
 *
 * Every shape rule, parameter shape, parameter count and FLOP count is compared with a
 * number worked out by hand from the formulas in docs/ops.md (the arithmetic is written next
 * to each expectation), and every error path is checked by the text it prints.
 */
#include "ir_testlib.h"
#include "passes.h"

#include <math.h>
#include <time.h>

/* x f32[128, 784] -> linear(4096): the DESIGN.md MLP's first layer. */
static void test_linear(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 784, 0, 0);
    int y = tg_value(&t, "y", VAL_LABEL, DT_I32, 1, 128, 0, 0, 0);
    int h = tg_node(&t, OP_LINEAR, "h1", 3, x, -1);
    tg_arg(&t, h, 0, 4096, 3);
    int o = tg_node(&t, OP_LINEAR, "out", 4, tg_out(&t, h), -1);
    tg_arg(&t, o, 0, 10, 4);
    tg_arg(&t, o, 1, 0, 4); /* bias=false */
    int l = tg_node(&t, OP_CROSS_ENTROPY, "loss", 5, tg_out(&t, o), y);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK_EQ(t.diag.errors, 0);
    CHECK(strcmp(tg_shape(&t, h), "f32[128, 4096]") == 0);
    CHECK(strcmp(tg_shape(&t, o), "f32[128, 10]") == 0);
    CHECK(strcmp(tg_shape(&t, l), "f32[]") == 0);
    CHECK_EQ(t.g->loss_node, l);
    /* params 784*4096 + 4096 = 3,215,360 */
    CHECK_EQ(tg_n(&t, h)->param_count, 3215360);
    CHECK_EQ(tg_n(&t, h)->nparams, 2);
    const IrParam *w = IR_PARAM(t.g, tg_n(&t, h)->first_param);
    CHECK(strcmp(w->name, "h1.weight") == 0);
    CHECK_EQ(w->role, PARAM_WEIGHT);
    CHECK_EQ(w->shape.rank, 2);
    CHECK_EQ(w->shape.d[0], 784);
    CHECK_EQ(w->shape.d[1], 4096);
    const IrParam *b = IR_PARAM(t.g, tg_n(&t, h)->first_param + 1);
    CHECK(strcmp(b->name, "h1.bias") == 0);
    CHECK_EQ(b->shape.rank, 1);
    CHECK_EQ(b->shape.d[0], 4096);
    /* fwd 2*128*784*4096 + 128*4096 = 822,607,872; the first layer's input (the data) needs
     * no gradient, so its backward is the weight gradient and the bias only: the same */
    CHECK_EQ(tg_n(&t, h)->flops_fwd, 822607872LL);
    CHECK_EQ(tg_n(&t, h)->flops_bwd, 822607872LL);
    /* no bias: params 4096*10 = 40,960; fwd 2*128*4096*10 = 10,485,760; bwd twice that */
    CHECK_EQ(tg_n(&t, o)->param_count, 40960);
    CHECK_EQ(tg_n(&t, o)->nparams, 1);
    CHECK_EQ(tg_n(&t, o)->flops_fwd, 10485760);
    CHECK_EQ(tg_n(&t, o)->flops_bwd, 20971520);
    CHECK_EQ(IR_NPARAMS(t.g), 3);
    tg_free(&t);
}

/* linear works on the last dimension of any rank >= 2 tensor: [8, 16, 32] -> [8, 16, 64]. */
static void test_linear_rank3(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 3, 8, 16, 32, 0);
    int y = tg_value(&t, "y", VAL_LABEL, DT_F32, 3, 8, 16, 64, 0);
    int h = tg_node(&t, OP_LINEAR, "h", 2, x, -1);
    tg_arg(&t, h, 0, 64, 2);
    tg_node(&t, OP_MSE, "loss", 3, tg_out(&t, h), y);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK(strcmp(tg_shape(&t, h), "f32[8, 16, 64]") == 0);
    /* rows 8*16 = 128: params 32*64 + 64 = 2112; fwd 2*128*32*64 + 128*64 = 532,480 */
    CHECK_EQ(tg_n(&t, h)->param_count, 2112);
    CHECK_EQ(tg_n(&t, h)->flops_fwd, 532480);
    CHECK_EQ(tg_n(&t, h)->flops_bwd, 532480); /* no input gradient: dW and db only */
    tg_free(&t);
}

/* Runs pass_shapes on a one-op graph (x -> op -> mse against a same-shaped target is not
 * always possible, so no loss is added: the pass then also reports "has no loss", which
 * the checks ignore) and returns the diagnostics. */
static void expect_error(TestGraph *t, const char *msg) {
    CHECK(!pass_shapes(t->g, &t->diag));
    CHECK(t->diag.errors >= 1);
    CHECK_STR(tg_diag_text(t), msg);
}

static void test_linear_errors(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 1, 128, 0, 0, 0);
    int h = tg_node(&t, OP_LINEAR, "h", 12, x, -1);
    tg_arg(&t, h, 0, 64, 12);
    expect_error(&t, "dir/m.mp:12:5: error: linear expects a tensor of rank >= 2, got f32[128]\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 10, 0, 0);
    h = tg_node(&t, OP_LINEAR, "h", 3, x, -1);
    tg_arg(&t, h, 0, 0, 7); /* out = 0, written on line 7 col 20 */
    expect_error(&t, "dir/m.mp:7:20: error: linear argument 'out' must be >= 1, got 0\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_I32, 2, 128, 10, 0, 0);
    h = tg_node(&t, OP_LINEAR, "h", 3, x, -1);
    tg_arg(&t, h, 0, 5, 3);
    expect_error(
        &t,
        "dir/m.mp:3:5: error: linear expects a floating-point (f32) tensor, got i32[128, 10]\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 10, 0, 0);
    h = tg_node(&t, OP_LINEAR, "h", 3, x, -1);
    tg_arg(&t, h, 0, 2.5, 4);
    expect_error(&t, "dir/m.mp:4:20: error: linear argument 'out' must be an integer, got 2.5\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 10, 0, 0);
    h = tg_node(&t, OP_LINEAR, "h", 3, x, -1);
    tg_arg(&t, h, 0, 1e300, 4);
    expect_error(
        &t,
        "dir/m.mp:4:20: error: linear argument 'out' is too large (1e+300; the limit is 2^53)\n");
    tg_free(&t);
}

/* relu, gelu, tanh, dropout: identity shapes, per-element FLOP constants. */
static void test_elementwise(void) {
    static const struct {
        OpKind op;
        int64_t fwd, bwd; /* per element, docs/ops.md */
    } cases[] = {{OP_RELU, 1, 1}, {OP_GELU, 8, 16}, {OP_TANH, 1, 3}, {OP_DROPOUT, 2, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TestGraph t;
        tg_init(&t);
        int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 3, 4, 5, 6, 0);
        int y = tg_value(&t, "y", VAL_LABEL, DT_F32, 3, 4, 5, 6, 0);
        int a = tg_node(&t, cases[i].op, "a", 2, x, -1);
        tg_node(&t, OP_MSE, "loss", 3, tg_out(&t, a), y);
        CHECK(pass_shapes(t.g, &t.diag));
        CHECK(strcmp(tg_shape(&t, a), "f32[4, 5, 6]") == 0);
        CHECK_EQ(tg_n(&t, a)->param_count, 0);
        CHECK_EQ(tg_n(&t, a)->nparams, 0);
        CHECK_EQ(tg_n(&t, a)->flops_fwd, 120 * cases[i].fwd); /* 4*5*6 = 120 elements */
        CHECK_EQ(tg_n(&t, a)->flops_bwd, 120 * cases[i].bwd);
        tg_free(&t);
    }
}

static void test_elementwise_errors(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 4, 5, 0, 0);
    int a = tg_node(&t, OP_DROPOUT, "a", 2, x, -1);
    tg_arg(&t, a, 0, 1.0, 9);
    expect_error(&t, "dir/m.mp:9:20: error: dropout probability 'p' must be in [0, 1), got 1\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 4, 5, 0, 0);
    a = tg_node(&t, OP_DROPOUT, "a", 2, x, -1);
    tg_arg(&t, a, 0, -0.25, 9);
    expect_error(&t,
                 "dir/m.mp:9:20: error: dropout probability 'p' must be in [0, 1), got -0.25\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_I64, 2, 4, 5, 0, 0);
    tg_node(&t, OP_GELU, "a", 6, x, -1);
    expect_error(
        &t, "dir/m.mp:6:5: error: gelu expects a floating-point (f32) tensor, got i64[4, 5]\n");
    tg_free(&t);
}

static void test_add(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 64, 0, 0);
    int y = tg_value(&t, "y", VAL_LABEL, DT_F32, 2, 128, 64, 0, 0);
    int r = tg_node(&t, OP_RELU, "r", 2, x, -1);
    int a = tg_node(&t, OP_ADD, "a", 3, tg_out(&t, r), x);
    tg_node(&t, OP_MSE, "loss", 4, tg_out(&t, a), y);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK(strcmp(tg_shape(&t, a), "f32[128, 64]") == 0);
    CHECK_EQ(tg_n(&t, a)->flops_fwd, 8192); /* one add per element: 128*64 */
    CHECK_EQ(tg_n(&t, a)->flops_bwd, 0);
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 64, 0, 0);
    int z = tg_value(&t, "z", VAL_INPUT, DT_F32, 2, 128, 32, 0, 0);
    tg_node(&t, OP_ADD, "a", 5, x, z);
    expect_error(
        &t, "dir/m.mp:5:5: error: add expects equal shapes, got f32[128, 64] and f32[128, 32]\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 64, 0, 0);
    z = tg_value(&t, "z", VAL_INPUT, DT_F32, 3, 128, 64, 1, 0);
    tg_node(&t, OP_ADD, "a", 5, x, z);
    expect_error(&t, "add expects equal shapes, got f32[128, 64] and f32[128, 64, 1]\n");
    tg_free(&t);
}

static void test_layernorm(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 3, 2, 8, 64, 0);
    int y = tg_value(&t, "y", VAL_LABEL, DT_F32, 3, 2, 8, 64, 0);
    int n = tg_node(&t, OP_LAYERNORM, "ln", 2, x, -1);
    tg_node(&t, OP_MSE, "loss", 3, tg_out(&t, n), y);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK(strcmp(tg_shape(&t, n), "f32[2, 8, 64]") == 0);
    CHECK_EQ(tg_n(&t, n)->param_count, 128); /* gamma [64] + beta [64] */
    CHECK_EQ(tg_n(&t, n)->nparams, 2);
    const IrParam *g0 = IR_PARAM(t.g, tg_n(&t, n)->first_param);
    const IrParam *b0 = IR_PARAM(t.g, tg_n(&t, n)->first_param + 1);
    CHECK(strcmp(g0->name, "ln.gamma") == 0 && g0->role == PARAM_GAMMA && g0->shape.d[0] == 64);
    CHECK(strcmp(b0->name, "ln.beta") == 0 && b0->role == PARAM_BETA && b0->shape.d[0] == 64);
    CHECK_EQ(tg_n(&t, n)->flops_fwd, 8192);  /* 8 per element, 2*8*64 = 1024 elements */
    CHECK_EQ(tg_n(&t, n)->flops_bwd, 11264); /* 11 per element */
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 1, 64, 0, 0, 0);
    tg_node(&t, OP_LAYERNORM, "ln", 4, x, -1);
    expect_error(&t, "dir/m.mp:4:5: error: layernorm expects a tensor of rank >= 2, got f32[64]\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 4, 64, 0, 0);
    n = tg_node(&t, OP_LAYERNORM, "ln", 4, x, -1);
    tg_arg(&t, n, 0, 0, 4);
    expect_error(&t, "dir/m.mp:4:20: error: layernorm argument 'eps' must be positive, got 0\n");
    tg_free(&t);
}

/* conv2d on [2, 3, 32, 32]. Arguments: out, kernel, stride, padding, bias. */
static int conv(TestGraph *t, int in, int line, double out, double k, double s, double p) {
    int c = tg_node(t, OP_CONV2D, "conv", line, in, -1);
    tg_arg(t, c, 0, out, line);
    tg_arg(t, c, 1, k, line);
    tg_arg(t, c, 2, s, line);
    tg_arg(t, c, 3, p, line);
    return c;
}

static void test_conv2d(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 4, 2, 3, 32, 32);
    int c = conv(&t, x, 2, 16, 3, 1, 1);
    int c2 = conv(&t, tg_out(&t, c), 3, 16, 3, 2, 0);
    tg_arg(&t, c2, 4, 0, 3); /* bias=false */
    int f = tg_node(&t, OP_FLATTEN, "f", 4, tg_out(&t, c2), -1);
    int y = tg_value(&t, "y", VAL_LABEL, DT_I32, 1, 2, 0, 0, 0);
    tg_node(&t, OP_CROSS_ENTROPY, "loss", 5, tg_out(&t, f), y);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK(strcmp(tg_shape(&t, c), "f32[2, 16, 32, 32]") == 0);  /* (32 + 2 - 3)/1 + 1 = 32 */
    CHECK(strcmp(tg_shape(&t, c2), "f32[2, 16, 15, 15]") == 0); /* (32 - 3)/2 + 1 = 15 */
    CHECK(strcmp(tg_shape(&t, f), "f32[2, 3600]") == 0);        /* 16*15*15 */
    /* weight [16, 3, 3, 3] + bias [16] = 432 + 16 */
    CHECK_EQ(tg_n(&t, c)->param_count, 448);
    const IrParam *w = IR_PARAM(t.g, tg_n(&t, c)->first_param);
    CHECK(w->shape.rank == 4 && w->shape.d[0] == 16 && w->shape.d[1] == 3 && w->shape.d[2] == 3 &&
          w->shape.d[3] == 3);
    /* outputs 2*16*32*32 = 32768: fwd 2*32768*3*3*3 + 32768; bwd the same (the images need
     * no gradient: dW and db only) */
    CHECK_EQ(tg_n(&t, c)->flops_fwd, 1802240);
    CHECK_EQ(tg_n(&t, c)->flops_bwd, 1802240);
    /* second conv: weight [16, 16, 3, 3] = 2304, no bias; outputs 2*16*15*15 = 7200:
     * fwd 2*7200*16*9 = 2,073,600, bwd 4,147,200 */
    CHECK_EQ(tg_n(&t, c2)->param_count, 2304);
    CHECK_EQ(tg_n(&t, c2)->flops_fwd, 2073600);
    CHECK_EQ(tg_n(&t, c2)->flops_bwd, 4147200);
    CHECK_EQ(tg_n(&t, f)->flops_fwd, 0);
    tg_free(&t);
}

static void test_conv2d_errors(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 4, 2, 3, 3, 3);
    conv(&t, x, 8, 4, 5, 1, 0);
    expect_error(&t, "dir/m.mp:8:5: error: conv2d kernel 5 with padding 0 does not fit the 3x3 "
                     "input f32[2, 3, 3, 3] (the output would be empty)\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 4, 2, 3, 8, 8);
    conv(&t, x, 8, 4, 3, 0, 0);
    expect_error(&t, "dir/m.mp:8:24: error: conv2d argument 'stride' must be >= 1, got 0\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 4, 2, 3, 8, 8);
    conv(&t, x, 8, 4, 3, 1, -1);
    expect_error(&t, "dir/m.mp:8:26: error: conv2d argument 'padding' must be >= 0, got -1\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 4, 2, 3, 8, 8);
    conv(&t, x, 8, 4, 0, 1, 0);
    expect_error(&t, "dir/m.mp:8:22: error: conv2d argument 'kernel' must be >= 1, got 0\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 2, 784, 0, 0);
    conv(&t, x, 8, 4, 3, 1, 0);
    expect_error(&t, "dir/m.mp:8:5: error: conv2d expects a tensor of rank 4, got f32[2, 784]\n");
    tg_free(&t);
}

static void test_maxpool2d(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 4, 2, 16, 32, 32);
    int p = tg_node(&t, OP_MAXPOOL2D, "p", 2, x, -1); /* kernel 2, stride 0 = kernel */
    int q = tg_node(&t, OP_MAXPOOL2D, "q", 3, x, -1);
    tg_arg(&t, q, 0, 3, 3);
    tg_arg(&t, q, 1, 2, 3);
    CHECK(!pass_shapes(t.g, &t.diag)); /* no loss; shapes are still inferred */
    CHECK_STR(tg_diag_text(&t),
              "dir/m.mp: error: model 'm' has no loss; end it with cross_entropy or mse\n");
    CHECK_EQ(t.diag.errors, 1);
    CHECK(strcmp(tg_shape(&t, p), "f32[2, 16, 16, 16]") == 0);
    CHECK(strcmp(tg_shape(&t, q), "f32[2, 16, 15, 15]") == 0); /* (32 - 3)/2 + 1 */
    /* outputs 2*16*16*16 = 8192: fwd 8192*2*2 comparisons, bwd 8192 */
    CHECK_EQ(tg_n(&t, p)->flops_fwd, 32768);
    CHECK_EQ(tg_n(&t, p)->flops_bwd, 8192);
    CHECK_EQ(tg_n(&t, q)->flops_fwd, 64800); /* 2*16*15*15 = 7200 outputs, 9 each */
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 4, 2, 16, 2, 2);
    p = tg_node(&t, OP_MAXPOOL2D, "p", 6, x, -1);
    tg_arg(&t, p, 0, 3, 6);
    expect_error(&t, "dir/m.mp:6:5: error: maxpool2d kernel 3 does not fit the 2x2 input "
                     "f32[2, 16, 2, 2] (the output would be empty)\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 4, 2, 16, 8, 8);
    p = tg_node(&t, OP_MAXPOOL2D, "p", 6, x, -1);
    tg_arg(&t, p, 1, -2, 7);
    expect_error(&t, "dir/m.mp:7:22: error: maxpool2d argument 'stride' must be >= 0, got -2\n");
    tg_free(&t);
}

static void test_flatten(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 1, 8, 0, 0, 0);
    tg_node(&t, OP_FLATTEN, "f", 3, x, -1);
    expect_error(&t, "dir/m.mp:3:5: error: flatten expects a tensor of rank >= 2, got f32[8]\n");
    tg_free(&t);
}

static void test_embedding(void) {
    TestGraph t;
    tg_init(&t);
    int tok = tg_value(&t, "tok", VAL_INPUT, DT_I32, 2, 4, 16, 0, 0);
    int e = tg_node(&t, OP_EMBEDDING, "emb", 2, tok, -1);
    tg_arg(&t, e, 0, 100, 2);
    tg_arg(&t, e, 1, 32, 2);
    tg_arg(&t, e, 2, 64, 2);
    int h = tg_node(&t, OP_LINEAR, "head", 3, tg_out(&t, e), -1);
    tg_arg(&t, h, 0, 100, 3);
    int y = tg_value(&t, "y", VAL_LABEL, DT_I64, 2, 4, 16, 0, 0);
    int l = tg_node(&t, OP_CROSS_ENTROPY, "loss", 4, tg_out(&t, h), y);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK(strcmp(tg_shape(&t, e), "f32[4, 16, 32]") == 0);
    /* weight [100, 32] + pos [64, 32] = 3200 + 2048 */
    CHECK_EQ(tg_n(&t, e)->param_count, 5248);
    const IrParam *pp = IR_PARAM(t.g, tg_n(&t, e)->first_param + 1);
    CHECK(strcmp(pp->name, "emb.pos") == 0 && pp->role == PARAM_POS && pp->shape.d[0] == 64 &&
          pp->shape.d[1] == 32);
    /* outputs 4*16*32 = 2048: fwd adds the positions (2048), bwd scatters two gradients */
    CHECK_EQ(tg_n(&t, e)->flops_fwd, 2048);
    CHECK_EQ(tg_n(&t, e)->flops_bwd, 4096);
    /* cross_entropy on [4, 16, 100]: rows 64, elements 6400: fwd 4*6400 + 64, bwd 2*6400 + 64 */
    CHECK_EQ(tg_n(&t, l)->flops_fwd, 25664);
    CHECK_EQ(tg_n(&t, l)->flops_bwd, 12864);
    tg_free(&t);

    /* [N] token ids without positions -> [N, dim] */
    tg_init(&t);
    tok = tg_value(&t, "tok", VAL_INPUT, DT_I32, 1, 8, 0, 0, 0);
    e = tg_node(&t, OP_EMBEDDING, "emb", 2, tok, -1);
    tg_arg(&t, e, 0, 10, 2);
    tg_arg(&t, e, 1, 4, 2);
    y = tg_value(&t, "y", VAL_LABEL, DT_F32, 2, 8, 4, 0, 0);
    tg_node(&t, OP_MSE, "loss", 3, tg_out(&t, e), y);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK(strcmp(tg_shape(&t, e), "f32[8, 4]") == 0);
    CHECK_EQ(tg_n(&t, e)->param_count, 40);
    CHECK_EQ(tg_n(&t, e)->nparams, 1);
    CHECK_EQ(tg_n(&t, e)->flops_fwd, 0);
    CHECK_EQ(tg_n(&t, e)->flops_bwd, 32);
    tg_free(&t);
}

static int emb(TestGraph *t, DType dt, int rank, double vocab, double dim, double pos) {
    int tok = tg_value(t, "tok", VAL_INPUT, dt, rank, 4, 16, 8, 0);
    int e = tg_node(t, OP_EMBEDDING, "emb", 2, tok, -1);
    tg_arg(t, e, 0, vocab, 5);
    tg_arg(t, e, 1, dim, 5);
    tg_arg(t, e, 2, pos, 5);
    return e;
}

static void test_embedding_errors(void) {
    TestGraph t;
    tg_init(&t);
    emb(&t, DT_F32, 2, 100, 32, 0);
    expect_error(
        &t,
        "dir/m.mp:2:5: error: embedding expects integer token ids (i32 or i64), got f32[4, 16]\n");
    tg_free(&t);

    tg_init(&t);
    emb(&t, DT_I32, 2, 100, 32, 8);
    expect_error(&t, "dir/m.mp:2:5: error: embedding has 8 positions but its input i32[4, 16] has "
                     "sequence length 16\n");
    tg_free(&t);

    tg_init(&t);
    emb(&t, DT_I32, 2, 0, 32, 0);
    expect_error(&t, "dir/m.mp:5:20: error: embedding argument 'vocab' must be >= 1, got 0\n");
    tg_free(&t);

    tg_init(&t);
    emb(&t, DT_I32, 2, 10, -3, 0);
    expect_error(&t, "dir/m.mp:5:22: error: embedding argument 'dim' must be >= 1, got -3\n");
    tg_free(&t);

    tg_init(&t);
    emb(&t, DT_I32, 3, 10, 3, 0);
    expect_error(
        &t, "dir/m.mp:2:5: error: embedding expects a tensor of rank 1 or 2, got i32[4, 16, 8]\n");
    tg_free(&t);
}

static void test_attention(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 3, 2, 8, 64, 0);
    int y = tg_value(&t, "y", VAL_LABEL, DT_F32, 3, 2, 8, 64, 0);
    int a = tg_node(&t, OP_ATTENTION, "attn", 2, x, -1);
    tg_arg(&t, a, 0, 4, 2);
    tg_arg(&t, a, 1, 1, 2); /* causal: same FLOPs by convention */
    tg_node(&t, OP_MSE, "loss", 3, tg_out(&t, a), y);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK(strcmp(tg_shape(&t, a), "f32[2, 8, 64]") == 0);
    /* 4 * [64, 64] + 4 * [64] */
    CHECK_EQ(tg_n(&t, a)->param_count, 16640);
    CHECK_EQ(tg_n(&t, a)->nparams, 8);
    static const char *const names[] = {"attn.wq", "attn.wk", "attn.wv", "attn.wo",
                                        "attn.bq", "attn.bk", "attn.bv", "attn.bo"};
    for (int i = 0; i < 8; i++) {
        const IrParam *p = IR_PARAM(t.g, tg_n(&t, a)->first_param + i);
        CHECK(strcmp(p->name, names[i]) == 0);
        CHECK_EQ(p->shape.rank, i < 4 ? 2 : 1);
        CHECK_EQ(p->shape.d[0], 64);
    }
    /* N=2 T=8 D=64 H=4: projections 8*N*T*D*D = 524,288; QK^T and PV 4*N*T*T*D = 32,768;
     * biases 4*N*T*D = 4,096; softmax 6*N*H*T*T = 3,072 -> 564,224.
     * bwd: 2*524,288 + 2*32,768 + 4,096 + 5*512 = 1,120,768, less the q, k, v projections'
     * input gradients 6*N*T*D*D = 393,216 (x is the data: it needs none) = 727,552 */
    CHECK_EQ(tg_n(&t, a)->flops_fwd, 564224);
    CHECK_EQ(tg_n(&t, a)->flops_bwd, 727552);
    tg_free(&t);
}

static void test_attention_errors(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 3, 2, 8, 64, 0);
    int a = tg_node(&t, OP_ATTENTION, "attn", 2, x, -1);
    tg_arg(&t, a, 0, 3, 11);
    expect_error(
        &t,
        "dir/m.mp:11:20: error: attention heads (3) must divide the width 64 of f32[2, 8, 64]\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 3, 2, 8, 64, 0);
    a = tg_node(&t, OP_ATTENTION, "attn", 2, x, -1);
    tg_arg(&t, a, 0, 0, 11);
    expect_error(&t, "dir/m.mp:11:20: error: attention argument 'heads' must be >= 1, got 0\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 16, 64, 0, 0);
    a = tg_node(&t, OP_ATTENTION, "attn", 2, x, -1);
    tg_arg(&t, a, 0, 4, 11);
    expect_error(&t,
                 "dir/m.mp:2:5: error: attention expects a tensor of rank 3, got f32[16, 64]\n");
    tg_free(&t);
}

static void test_losses(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 10, 0, 0);
    int y = tg_value(&t, "y", VAL_LABEL, DT_I32, 1, 128, 0, 0, 0);
    int l = tg_node(&t, OP_CROSS_ENTROPY, "loss", 2, x, y);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK_EQ(tg_v(&t, l)->shape.rank, 0);
    CHECK_EQ(tg_v(&t, l)->dtype, DT_F32);
    CHECK_EQ(tg_n(&t, l)->flops_fwd, 5248); /* 4*1280 + 128 */
    CHECK_EQ(tg_n(&t, l)->flops_bwd, 2688); /* 2*1280 + 128 */
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 10, 0, 0);
    y = tg_value(&t, "y", VAL_LABEL, DT_F32, 1, 128, 0, 0, 0);
    tg_node(&t, OP_CROSS_ENTROPY, "loss", 2, x, y);
    expect_error(
        &t,
        "dir/m.mp:2:5: error: cross_entropy expects integer labels (i32 or i64), got f32[128]\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 10, 0, 0);
    y = tg_value(&t, "y", VAL_LABEL, DT_I32, 1, 64, 0, 0, 0);
    tg_node(&t, OP_CROSS_ENTROPY, "loss", 2, x, y);
    expect_error(&t,
                 "cross_entropy labels must have the logits' shape without the class dimension: "
                 "logits f32[128, 10], labels i32[64]\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 10, 0, 0);
    y = tg_value(&t, "y", VAL_LABEL, DT_F32, 2, 128, 10, 0, 0);
    l = tg_node(&t, OP_MSE, "loss", 2, x, y);
    CHECK(pass_shapes(t.g, &t.diag));
    CHECK_EQ(tg_n(&t, l)->flops_fwd, 3840); /* 3*1280 */
    CHECK_EQ(tg_n(&t, l)->flops_bwd, 2560); /* 2*1280 */
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 10, 0, 0);
    y = tg_value(&t, "y", VAL_LABEL, DT_F32, 2, 128, 1, 0, 0);
    tg_node(&t, OP_MSE, "loss", 2, x, y);
    expect_error(&t, "mse expects the prediction and target to have equal shapes, got f32[128, 10] "
                     "and f32[128, 1]\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 128, 10, 0, 0);
    y = tg_value(&t, "y", VAL_LABEL, DT_I32, 2, 128, 10, 0, 0);
    tg_node(&t, OP_MSE, "loss", 2, x, y);
    expect_error(&t, "mse expects a floating-point (f32) tensor, got i32[128, 10]\n");
    tg_free(&t);
}

/* Zero losses, two losses, a loss used as an input. */
static void test_loss_structure(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 4, 4, 0, 0);
    tg_node(&t, OP_RELU, "r", 2, x, -1);
    expect_error(&t, "dir/m.mp: error: model 'm' has no loss; end it with cross_entropy or mse\n");
    CHECK_EQ(t.g->loss_node, -1);
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 4, 4, 0, 0);
    int y = tg_value(&t, "y", VAL_LABEL, DT_F32, 2, 4, 4, 0, 0);
    tg_node(&t, OP_MSE, "l1", 2, x, y);
    tg_node(&t, OP_MSE, "l2", 3, x, y);
    expect_error(&t, "dir/m.mp:3:5: error: the model has more than one loss\n"
                     "dir/m.mp:2:5: note: the first loss is 'l1'\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 4, 4, 0, 0);
    y = tg_value(&t, "y", VAL_LABEL, DT_F32, 2, 4, 4, 0, 0);
    int l = tg_node(&t, OP_MSE, "l1", 2, x, y);
    tg_node(&t, OP_RELU, "r", 3, tg_out(&t, l), -1);
    expect_error(&t,
                 "dir/m.mp:3:5: error: 'l1' is a loss (a scalar) and cannot be an input of relu\n");
    tg_free(&t);
}

/* A failed node poisons its output: later users are skipped, not reported again. */
static void test_no_cascade(void) {
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 4, 4, 0, 0);
    int y = tg_value(&t, "y", VAL_LABEL, DT_F32, 2, 4, 4, 0, 0);
    int z = tg_value(&t, "z", VAL_INPUT, DT_F32, 2, 4, 8, 0, 0);
    int a = tg_node(&t, OP_ADD, "a", 2, x, z); /* error 1 */
    int r = tg_node(&t, OP_RELU, "r", 3, tg_out(&t, a), -1);
    int b = tg_node(&t, OP_ADD, "b", 4, tg_out(&t, r), x);
    int c = tg_node(&t, OP_ATTENTION, "c", 5, x, -1); /* error 2: independent of the first */
    tg_arg(&t, c, 0, 2, 5);
    tg_node(&t, OP_MSE, "loss", 6, tg_out(&t, b), y);
    CHECK(!pass_shapes(t.g, &t.diag));
    CHECK_EQ(t.diag.errors, 2);
    CHECK_STR(tg_diag_text(&t), "dir/m.mp:2:5: error: add expects equal shapes");
    CHECK_STR(tg_diag_text(&t), "dir/m.mp:5:5: error: attention expects a tensor of rank 3");
    tg_free(&t);
}

/* Sizes beyond int64 are errors, never wrap-around. */
static void test_overflow(void) {
    const int64_t big = (int64_t)1 << 31;
    TestGraph t;
    tg_init(&t);
    int x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, big, big, 0, 0); /* 2^62 elements: fits */
    int h = tg_node(&t, OP_LINEAR, "h", 2, x, -1);
    tg_arg(&t, h, 0, 1 << 30, 2); /* weight 2^61 fits; FLOPs 2*2^31*2^31*2^30 = 2^93 too */
    int y0 = tg_value(&t, "y", VAL_LABEL, DT_F32, 2, big, (int64_t)1 << 30, 0, 0);
    tg_node(&t, OP_MSE, "loss", 3, tg_out(&t, h), y0);
    CHECK(pass_shapes(t.g, &t.diag));
    /* FLOPs are doubles (a 1T GPT's GEMMs pass 2^63): 2^93 + 2^61 for the bias, each way (the
     * first layer's backward has no input gradient) */
    CHECK(tg_n(&t, h)->flops_fwd == ldexp(1, 93) + ldexp(1, 61));
    CHECK(tg_n(&t, h)->flops_bwd == ldexp(1, 93) + ldexp(1, 61));
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 1, (int64_t)1 << 40, 0, 0);
    h = tg_node(&t, OP_LINEAR, "h", 2, x, -1);
    tg_arg(&t, h, 0, 1 << 30, 2); /* weight 2^70 */
    expect_error(&t, "dir/m.mp:2:5: error: the sizes of linear 'h' overflow 64-bit integers\n");
    CHECK_EQ(tg_n(&t, h)->nparams, 0);
    CHECK_EQ(IR_NPARAMS(t.g), 0);
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 3, big, big, big, 0);
    tg_node(&t, OP_RELU, "r", 2, x, -1);
    expect_error(&t,
                 "dir/m.mp:1:1: error: the size of 'x' (f32[2147483648, 2147483648, 2147483648]) "
                 "overflows 64-bit integers\n");
    tg_free(&t);

    /* Each node's parameters fit (2^62 + 2^30) but three of them overflow the model's total. */
    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 1, (int64_t)1 << 32, 0, 0);
    int y = tg_value(&t, "y", VAL_LABEL, DT_F32, 2, 1, (int64_t)1 << 30, 0, 0);
    int last = -1;
    for (int i = 0; i < 3; i++) {
        last = tg_node(&t, OP_LINEAR, i == 0 ? "h0" : i == 1 ? "h1" : "h2", 2 + i, x, -1);
        tg_arg(&t, last, 0, 1 << 30, 2 + i);
    }
    tg_node(&t, OP_MSE, "loss", 6, tg_out(&t, last), y);
    expect_error(&t, "dir/m.mp: error: the model's total parameters overflow 64-bit integers\n");
    tg_free(&t);

    tg_init(&t);
    x = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 0, 4, 0, 0);
    tg_node(&t, OP_RELU, "r", 2, x, -1);
    expect_error(&t, "dir/m.mp:1:1: error: dimension 0 of 'x' must be positive, got f32[0, 4]\n");
    tg_free(&t);
}

/* A 100,000-layer chain: the pass must be linear (this would take minutes if quadratic). */
static void test_long_chain(void) {
    TestGraph t;
    tg_init(&t);
    enum { LAYERS = 100000 };
    int v = tg_value(&t, "x", VAL_INPUT, DT_F32, 2, 32, 16, 0, 0);
    int y = tg_value(&t, "y", VAL_LABEL, DT_F32, 2, 32, 16, 0, 0);
    char name[32];
    for (int i = 0; i < LAYERS; i++) {
        snprintf(name, sizeof name, "l%d", i);
        int n = tg_node(&t, i % 2 ? OP_RELU : OP_LINEAR, name, 2 + i, v, -1);
        if (i % 2 == 0) tg_arg(&t, n, 0, 16, 2 + i);
        v = tg_out(&t, n);
    }
    tg_node(&t, OP_MSE, "loss", 3 + LAYERS, v, y);
    clock_t c0 = clock();
    CHECK(pass_shapes(t.g, &t.diag));
    double s = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("pass_shapes on %d layers: %.3f s\n", LAYERS, s);
    CHECK(s < 5.0);
    CHECK_EQ(IR_NPARAMS(t.g), LAYERS); /* weight and bias per linear: 2 * LAYERS/2 */
    int64_t total = 0;
    for (int i = 0; i < IR_NNODES(t.g); i++)
        total += IR_NODE(t.g, i)->param_count;
    CHECK_EQ(total, (int64_t)(LAYERS / 2) * (16 * 16 + 16));
    tg_free(&t);
}

int main(void) {
    test_linear();
    test_linear_rank3();
    test_linear_errors();
    test_elementwise();
    test_elementwise_errors();
    test_add();
    test_layernorm();
    test_conv2d();
    test_conv2d_errors();
    test_maxpool2d();
    test_flatten();
    test_embedding();
    test_embedding_errors();
    test_attention();
    test_attention_errors();
    test_losses();
    test_loss_structure();
    test_no_cascade();
    test_overflow();
    test_long_chain();
    return TEST_RESULT();
}
