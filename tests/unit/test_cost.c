/*
 * test_cost.c: the collective formulas and layout transitions of passes/cost.c, checked
 * as exact integers (the runtime counts the same bytes, so "close" is not good enough).
 */
#include "passes.h"
#include "search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            fprintf(stderr, "%s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #a, a_, b_);     \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_NEAR(a, b)                                                                           \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (fabs(a_ - b_) > 1e-12 * fmax(1.0, fabs(b_))) {                                         \
            fprintf(stderr, "%s:%d: %s == %.17g, want %.17g\n", __FILE__, __LINE__, #a, a_, b_);   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static void test_bytes(void) {
    /* all-reduce 2(g−1)·n/g */
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 2, 2000000), 2000000);
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 4, 1000), 1500);
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 8, 4096), 7168);
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 3, 1000), 1333); /* floor(4000/3) */
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 1, 1000), 0);
    /* all-gather and reduce-scatter (g−1)·n/g, n the full tensor */
    CHECK_EQ(cost_coll_bytes(COLL_ALLGATHER, 4, 1000), 750);
    CHECK_EQ(cost_coll_bytes(COLL_REDUCESCATTER, 4, 1000), 750);
    CHECK_EQ(cost_coll_bytes(COLL_ALLGATHER, 2, 256000), 128000);
    CHECK_EQ(cost_coll_bytes(COLL_REDUCESCATTER, 1, 1000), 0);
    /* all-to-all (g−1)·n/g² */
    CHECK_EQ(cost_coll_bytes(COLL_ALLTOALL, 4, 1600), 300);
    CHECK_EQ(cost_coll_bytes(COLL_ALLTOALL, 2, 1000), 250);
    /* send/recv n, whatever the group; slices and nothing cost nothing */
    CHECK_EQ(cost_coll_bytes(COLL_SENDRECV, 2, 1234), 1234);
    CHECK_EQ(cost_coll_bytes(COLL_SLICE, 4, 1234), 0);
    CHECK_EQ(cost_coll_bytes(COLL_NONE, 4, 1234), 0);
    CHECK_EQ(cost_coll_bytes(COLL_ALLREDUCE, 4, 0), 0);
}

static void test_time(void) {
    double a = 1e-6, b = 1e9;
    CHECK_NEAR(cost_coll_time(COLL_ALLREDUCE, 4, 1000, a, b), 6 * a + 1500 / b);
    CHECK_NEAR(cost_coll_time(COLL_ALLGATHER, 4, 1000, a, b), 3 * a + 750 / b);
    CHECK_NEAR(cost_coll_time(COLL_REDUCESCATTER, 8, 8000, a, b), 7 * a + 7000 / b);
    CHECK_NEAR(cost_coll_time(COLL_ALLTOALL, 4, 1600, a, b), 3 * a + 300 / b);
    CHECK_NEAR(cost_coll_time(COLL_SENDRECV, 2, 1000, a, b), a + 1000 / b);
    CHECK_NEAR(cost_coll_time(COLL_ALLREDUCE, 1, 1000, a, b), 0);
    CHECK_NEAR(cost_coll_time(COLL_SLICE, 4, 1000, a, b), 0);
}

static void test_layouts(void) {
    /* forward: DESIGN.md §4 */
    static const CollKind fwd[4][4] = {
        /* to:      R               B                    F                    P */
        /* R */ {COLL_NONE, COLL_SLICE, COLL_SLICE, COLL__COUNT},
        /* B */ {COLL_ALLGATHER, COLL_NONE, COLL_ALLTOALL, COLL__COUNT},
        /* F */ {COLL_ALLGATHER, COLL_ALLTOALL, COLL_NONE, COLL__COUNT},
        /* P */ {COLL_ALLREDUCE, COLL_REDUCESCATTER, COLL_REDUCESCATTER, COLL_NONE},
    };
    /* backward duals: the gradient of P is R */
    static const CollKind bwd[4][4] = {
        /* R */ {COLL_NONE, COLL_ALLGATHER, COLL_ALLGATHER, COLL__COUNT},
        /* B */ {COLL_SLICE, COLL_NONE, COLL_ALLTOALL, COLL__COUNT},
        /* F */ {COLL_SLICE, COLL_ALLTOALL, COLL_NONE, COLL__COUNT},
        /* P */ {COLL_NONE, COLL_ALLGATHER, COLL_ALLGATHER, COLL_NONE},
    };
    for (int a = 0; a < 4; a++) {
        for (int b = 0; b < 4; b++) {
            CHECK_EQ(cost_layout_change((Layout)a, (Layout)b), fwd[a][b]);
            if (fwd[a][b] != COLL__COUNT)
                CHECK_EQ(cost_layout_change_bwd((Layout)a, (Layout)b), bwd[a][b]);
        }
    }
    CHECK_EQ(cost_grad_layout(LAYOUT_P), LAYOUT_R);
    CHECK_EQ(cost_grad_layout(LAYOUT_F), LAYOUT_F);
    /* a P→R all-reduce of a 128×500 f32 activation over 2 ranks: 256,000 bytes */
    CHECK_EQ(cost_coll_bytes(cost_layout_change(LAYOUT_P, LAYOUT_R), 2, 128 * 500 * 4), 256000);
}

static void test_names(void) {
    if (strcmp(plan_layout_name(LAYOUT_F), "F") ||
        strcmp(plan_strategy_name(STRAT_COL), "tensor(col)") ||
        strcmp(cost_coll_name(COLL_ALLTOALL), "all-to-all") ||
        strcmp(plan_group_name(GROUP_STAGE), "stage")) {
        fprintf(stderr, "names differ\n");
        failures++;
    }
}

/* Preset-file measurements (docs/presets.md): the nearest group size in log2 for the same
 * collective and link kind, ties to the larger; the formula when none was measured. */
static void test_measured_colls(void) {
    static const PresetColl coll[] = {
        {COLL_ALLREDUCE, false, 2, 1e-5, 1e9},
        {COLL_ALLREDUCE, false, 8, 4e-5, 5e8},
        {COLL_ALLREDUCE, true, 16, 1e-4, 1e8},
        {COLL_SENDRECV, false, 2, 3e-6, 4e9},
    };
    PresetTables t = {.ncoll = 4, .coll = coll};
    ClusterCfg cl = {.flops = 1e10, .tables = &t};
    CHECK_NEAR(cost_coll_time_on(&cl, COLL_ALLREDUCE, false, 2, 1000000, 1, 1), 1e-5 + 1e-3);
    CHECK_NEAR(cost_coll_time_on(&cl, COLL_ALLREDUCE, false, 8, 1000000, 1, 1), 4e-5 + 2e-3);
    /* 3 is nearer 2 than 8 in log2; 4 is equally near both and takes the larger, 8 */
    CHECK_NEAR(cost_coll_time_on(&cl, COLL_ALLREDUCE, false, 3, 1000000, 1, 1), 1e-5 + 1e-3);
    CHECK_NEAR(cost_coll_time_on(&cl, COLL_ALLREDUCE, false, 4, 1000000, 1, 1), 4e-5 + 2e-3);
    CHECK_NEAR(cost_coll_time_on(&cl, COLL_ALLREDUCE, false, 64, 1000000, 1, 1), 4e-5 + 2e-3);
    CHECK_NEAR(cost_coll_time_on(&cl, COLL_ALLREDUCE, true, 2, 1000000, 1, 1), 1e-4 + 1e-2);
    CHECK_NEAR(cost_coll_time_on(&cl, COLL_SENDRECV, false, 2, 4000, 1, 1), 3e-6 + 1e-6);
    /* a group of one and an empty tensor cost nothing, measured or not */
    CHECK_NEAR(cost_coll_time_on(&cl, COLL_ALLREDUCE, false, 1, 1000000, 1, 1), 0);
    CHECK_NEAR(cost_coll_time_on(&cl, COLL_ALLREDUCE, false, 4, 0, 1, 1), 0);
    /* not measured (all-gather; send/recv across nodes): the ring formula with α, β given */
    CHECK_NEAR(cost_coll_time_on(&cl, COLL_ALLGATHER, false, 4, 1000, 1e-6, 1e9),
               cost_coll_time(COLL_ALLGATHER, 4, 1000, 1e-6, 1e9));
    CHECK_NEAR(cost_coll_time_on(&cl, COLL_SENDRECV, true, 2, 1000, 2e-6, 1e9), 2e-6 + 1e-6);
    ClusterCfg plain = {.flops = 1e10};
    CHECK_NEAR(cost_coll_time_on(&plain, COLL_ALLREDUCE, false, 4, 1000, 1e-6, 1e9),
               cost_coll_time(COLL_ALLREDUCE, 4, 1000, 1e-6, 1e9));
}

/* GEMM rates: the nearest measured shape in (log2 m, log2 n, log2 k); the flat rate without
 * a table. */
static void test_gemm_rates(void) {
    static const PresetGemm gemm[] = {{1, 1024, 1024, 2e9, 0, 0, 0, 0, 0},
                                      {64, 1024, 1024, 3e10, 0, 0, 0, 0, 0},
                                      {512, 1024, 1024, 8e10, 0, 0, 0, 0, 0},
                                      {512, 64, 64, 1e10, 0, 0, 0, 0, 0}};
    PresetTables t = {.ngemm = 4, .gemm = gemm};
    ClusterCfg cl = {.flops = 6e10, .tables = &t};
    CHECK_NEAR(cost_gemm_rate(&cl, 1, 1024, 1024), 2e9);
    CHECK_NEAR(cost_gemm_rate(&cl, 2, 1000, 1000), 2e9);
    CHECK_NEAR(cost_gemm_rate(&cl, 32, 1024, 1024), 3e10);
    CHECK_NEAR(cost_gemm_rate(&cl, 4096, 1024, 1024), 8e10);
    CHECK_NEAR(cost_gemm_rate(&cl, 512, 32, 100), 1e10);
    ClusterCfg plain = {.flops = 6e10};
    CHECK_NEAR(cost_gemm_rate(&plain, 1, 1024, 1024), 6e10);
}

/* The roofline: the longer of FLOPs at the rate and bytes at the bandwidth; an unknown
 * bandwidth (0) leaves compute alone. */
static void test_roofline(void) {
    CHECK_NEAR(cost_roofline(2e9, 1e10, 1e6, 1e10), 0.2);     /* compute-bound GEMM */
    CHECK_NEAR(cost_roofline(1e6, 6e10, 8e6, 2e10), 4e-4);    /* a relu: 8 bytes per FLOP */
    CHECK_NEAR(cost_roofline(1e6, 6e10, 8e6, 0), 1e6 / 6e10); /* no bandwidth: compute only */
    CHECK_NEAR(cost_roofline(0, 6e10, 0, 2e10), 0);
}

/* Node-aware groups: a group of consecutive ranks crosses nodes when the job spans several
 * and its size does not divide devices_per_node; then the most nodes one group touches. */
static void test_group_nodes(void) {
    ClusterCfg cl = {.devices = 32, .devices_per_node = 8};
    CHECK_EQ(cost_group_inter(&cl, 8) + cost_group_inter(&cl, 4) + cost_group_inter(&cl, 1), 0);
    CHECK_EQ(cost_group_inter(&cl, 16) + cost_group_inter(&cl, 3) + cost_group_inter(&cl, 12), 3);
    CHECK_EQ(cost_group_nodes(&cl, 8), 0);
    CHECK_EQ(cost_group_nodes(&cl, 16), 2);
    CHECK_EQ(cost_group_nodes(&cl, 32), 4);
    CHECK_EQ(cost_group_nodes(&cl, 3), 2);  /* ranks 6..8 straddle nodes 0 and 1 */
    CHECK_EQ(cost_group_nodes(&cl, 12), 2); /* 0..11 and 12..23 touch two nodes each */
    ClusterCfg one = {.devices = 8, .devices_per_node = 8};
    CHECK_EQ(cost_group_inter(&one, 3), 0);
    CHECK_EQ(cost_group_nodes(&one, 3), 0);
    ClusterCfg unset = {.devices = 64}; /* devices_per_node 0: one node */
    CHECK_EQ(cost_group_nodes(&unset, 16), 0);
}

/* A whole grid (every m with every n and k) is interpolated in log space and clamped: rates
 * 1e9 at m = 1 and 4e9 at m = 4 give 2e9 at m = 2 (their geometric mean). */
static void test_gemm_grid(void) {
    PresetGemm g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (PresetGemm){
            i & 1 ? 4 : 1, i & 2 ? 64 : 16, i & 4 ? 64 : 16, i & 1 ? 4e9 : 1e9, 0, 0, 0, 0, 0};
    PresetTables t = {.ngemm = 8, .gemm = g};
    ClusterCfg cl = {.flops = 6e10, .tables = &t};
    CHECK_NEAR(cost_gemm_rate(&cl, 2, 32, 32), 2e9);
    CHECK_NEAR(cost_gemm_rate(&cl, 4, 16, 64), 4e9);
    CHECK_NEAR(cost_gemm_rate(&cl, 1000, 1000, 1), 4e9); /* clamped at the edges */
    CHECK_NEAR(cost_gemm_rate(&cl, 1, 16, 16), 1e9);
}

/* The compute model prices the GEMMs the runtime calls, each at its own shape: here the rate
 * is m · 1e9, so a linear's dW GEMM (k, n, m) runs at the input features' rate, not the rows';
 * a convolution is one GEMM per sample plus its unrolling at the measured conv2d rates. */
static void test_compute(void) {
    static const int ax[4] = {1, 4, 16, 64};
    PresetGemm g[64];
    for (int i = 0; i < 64; i++)
        g[i] = (PresetGemm){ax[i % 4], ax[i / 4 % 4], ax[i / 16], 1e9 * ax[i % 4], 0, 0, 0, 0, 0};
    PresetOp ops[] = {{OP_CONV2D, 1e9, 2e9, 0, 0}, {OP_GELU, 3e9, 4e9, 0, 0}};
    PresetTables t = {.ngemm = 64, .gemm = g, .nops = 2, .ops = ops};
    ClusterCfg cl = {.flops = 6e10, .tables = &t};
    double mm = 2.0 * 4 * 64 * 16;
    CompCtx lin = {&cl, OP_LINEAR, mm, 2 * mm, 4, 64, 16, 4, 0, 0, true, false, 1.0, 0};
    CompTime c = cost_compute_time(&lin);
    CHECK_NEAR(c.fwd, mm / 4e9);
    CHECK_NEAR(c.bwd, mm / 4e9 + mm / 16e9); /* dx at (4, 16, 64), dW at (16, 64, 4) */
    lin.dx = false, lin.fb = mm;
    CHECK_NEAR(cost_compute_time(&lin).bwd, mm / 16e9);
    double cm = 2.0 * 2 * 16 * 64 * 16; /* 2 samples: W[16, 16]·col[16, 64] */
    CompCtx conv = {&cl, OP_CONV2D, cm, 2 * cm, 0, 16, 16, 2, 64, 0, true, true, 1.0, 0};
    c = cost_compute_time(&conv);
    CHECK_NEAR(c.fwd, cm / 16e9);
    CHECK_NEAR(c.bwd, cm / 16e9 + cm / 16e9); /* dW (16, 16, 64), dx (16, 64, 16) */
    CHECK_NEAR(c.fwd_extra, 8192 / 1e9);      /* im2col of 2 × 16 × 64 floats */
    CHECK_NEAR(c.bwd_extra, 8192 / 1e9 + 8192 / 2e9);
    CHECK_NEAR(cost_op_bw(&cl, OP_GELU, true), 4e9);
    CHECK_NEAR(cost_op_bw(&cl, OP_RELU, false), 0);
    ClusterCfg flat = {.flops = 6e10};
    lin.cl = &flat;
    CHECK_NEAR(cost_compute_time(&lin).fwd, mm / 6e10); /* no grid: FLOPs at the flat rate */
    lin.gemm_scale = 2.0;                               /* bf16 GEMMs twice as fast */
    CHECK_NEAR(cost_compute_time(&lin).fwd, mm / 12e10);
}

/* The backward's transposed calls at their own measured rates (flops_nt: a linear's dx and
 * conv2d's dW; flops_tn: a linear's dW and conv2d's dx), the forward's where not measured; and
 * conv2d's bias passes per byte of the output at the conv2d entry's bias rates. */
static void test_gemm_kinds(void) {
    PresetGemm g[8];
    for (int i = 0; i < 8; i++)
        g[i] =
            (PresetGemm){i & 1 ? 64 : 16, i & 2 ? 64 : 16, i & 4 ? 64 : 16, 8e9, 2e9, 4e9, 0, 0, 0};
    PresetOp ops[] = {{OP_CONV2D, 1e9, 2e9, 4e9, 8e9}};
    PresetTables t = {.ngemm = 8, .gemm = g, .nops = 1, .ops = ops};
    ClusterCfg cl = {.flops = 6e10, .tables = &t};
    CHECK_NEAR(cost_gemm_rate_kind(&cl, GEMM_NT, 32, 32, 32), 2e9);
    CHECK_NEAR(cost_gemm_rate_kind(&cl, GEMM_TN, 32, 32, 32), 4e9);
    CHECK_NEAR(cost_gemm_rate(&cl, 32, 32, 32), 8e9);
    double mm = 2.0 * 16 * 64 * 16;
    CompCtx lin = {&cl, OP_LINEAR, mm, 2 * mm, 16, 64, 16, 16, 0, 0, true, false, 1.0, 0};
    CompTime c = cost_compute_time(&lin);
    CHECK_NEAR(c.fwd, mm / 8e9);
    CHECK_NEAR(c.bwd, mm / 2e9 + mm / 4e9); /* dx: A·Bᵀ, dW: Aᵀ·B */
    double cm = 2.0 * 2 * 16 * 64 * 16;     /* 2 samples: W[16, 16]·col[16, 64] */
    CompCtx conv = {&cl, OP_CONV2D, cm, 2 * cm, 0, 16, 16, 2, 64, 0, true, true, 1.0, 0};
    c = cost_compute_time(&conv);
    CHECK_NEAR(c.bwd, cm / 2e9 + cm / 4e9); /* dW: dy·colᵀ, dx: Wᵀ·dy */
    double outb = 4.0 * 2 * 16 * 64;        /* the output: 2 samples of 16 planes of 64 */
    CHECK_NEAR(c.fwd_extra, 8192 / 1e9 + outb / 4e9);
    CHECK_NEAR(c.bwd_extra, 8192 / 1e9 + 8192 / 2e9 + outb / 8e9);
    for (int i = 0; i < 8; i++)
        g[i].flops_nt = g[i].flops_tn = 0; /* not measured: the forward's rate */
    CHECK_NEAR(cost_gemm_rate_kind(&cl, GEMM_TN, 32, 32, 32), 8e9);
}

/* Operands in cache: the hot rates of a call kind (the cold rate of the same kind where the hot
 * one was not measured), and a layer whose GEMM calls find their operands in cache for a share
 * `reuse` of them pays that share at the hot rate. */
static void test_gemm_hot(void) {
    PresetGemm g[8];
    for (int i = 0; i < 8; i++)
        g[i] = (PresetGemm){
            i & 1 ? 64 : 16, i & 2 ? 64 : 16, i & 4 ? 64 : 16, 8e9, 2e9, 4e9, 16e9, 0, 8e9};
    PresetTables t = {.ngemm = 8, .gemm = g};
    ClusterCfg cl = {.flops = 6e10, .tables = &t};
    CHECK_NEAR(cost_gemm_rate_kind(&cl, GEMM_NN_HOT, 32, 32, 32), 16e9);
    CHECK_NEAR(cost_gemm_rate_kind(&cl, GEMM_NT_HOT, 32, 32, 32), 2e9); /* not measured: cold */
    CHECK_NEAR(cost_gemm_rate_kind(&cl, GEMM_TN_HOT, 32, 32, 32), 8e9);
    double mm = 2.0 * 16 * 64 * 16;
    CompCtx lin = {&cl, OP_LINEAR, mm, 2 * mm, 16, 64, 16, 16, 0, 0, true, false, 1.0, 0.75};
    CompTime c = cost_compute_time(&lin);
    CHECK_NEAR(c.fwd, 0.25 * mm / 8e9 + 0.75 * mm / 16e9);
    CHECK_NEAR(c.bwd, mm / 2e9 + 0.25 * mm / 4e9 + 0.75 * mm / 8e9);
    lin.reuse = 0;
    CHECK_NEAR(cost_compute_time(&lin).fwd, mm / 8e9);
}

int main(void) {
    test_bytes();
    test_roofline();
    test_group_nodes();
    test_time();
    test_layouts();
    test_names();
    test_measured_colls();
    test_gemm_rates();
    test_gemm_grid();
    test_compute();
    test_gemm_kinds();
    test_gemm_hot();
    if (failures)
        fprintf(stderr, "test_cost: %d failure(s)\n", failures);
    else
        printf("test_cost: ok\n");
    return failures != 0;
}
