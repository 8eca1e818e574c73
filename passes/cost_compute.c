/*
 * cost_compute.c: the compute time of one layer on one device for one micro-batch, priced
 * as the target's kernels run it (docs/cost-model.md §5).
 *
 * A GEMM-bound layer is the sum of the GEMMs the runtime really calls, each at the preset's
 * measured rate for its own shape (cost_gemm_rate):
 *   linear  forward  x·W: (m, n, k) with m the rows, n the output and k the input features;
 *           backward dx += dy·Wᵀ (m, k, n) when the input needs a gradient, dW += xᵀ·dy
 *           (k, n, m) (runtime/kernels.c), each at the rate measured for its transposition
 *           (GemmKind: the grid's flops_nt and flops_tn);
 *   conv2d  one GEMM per sample (runtime/kernels_conv.c): forward W·col (O, Ho·Wo, C·K·K),
 *           backward dW += dy·colᵀ (O, C·K·K, Ho·Wo) and, when the input needs a gradient,
 *           Wᵀ·dy (C·K·K, Ho·Wo, O); plus the im2col pass before the forward and the dW GEMM
 *           and the col2im pass after the dx GEMM, priced per byte of the unrolled matrix at
 *           the preset's measured conv2d rates (`ops`; none without an entry), and the bias
 *           passes (the output filled with the bias, its gradient summed plane by plane) per
 *           byte of the output at the entry's bias rates;
 *   attention the four projections at (rows, D_local, D) and the per-head cores
 *           (QKᵀ, P·V and their gradients) at (T, T, D/heads), the rest at the flat rate.
 * Whatever FLOPs are left (bias, softmax, the elementwise ops) run at the flat flops, so
 * under a preset without a GEMM grid every layer costs its FLOPs / flops as before. Under
 * bf16 every GEMM (and a GEMM-bound layer's FLOPs without a grid) runs flops_bf16 / flops
 * times faster (gemm_scale).
 */
#include "search_internal.h"

/* One GEMM call of `kind`: the cold rate, and for the share x->reuse of calls that find their
 * operands in cache the hot one (the same where the preset has no hot rates). */
static double gemm_t(const CompCtx *x, GemmKind kind, double m, double n, double k) {
    if (m < 1 || n < 1 || k < 1) return 0.0;
    double f = 2.0 * m * n * k;
    int64_t im = (int64_t)m, in = (int64_t)n, ik = (int64_t)k;
    double cold = f / (cost_gemm_rate_kind(x->cl, kind, im, in, ik) * x->gemm_scale);
    if (x->reuse <= 0) return cold;
    GemmKind hk = (GemmKind)(kind + GEMM_NN_HOT);
    double hot = f / (cost_gemm_rate_kind(x->cl, hk, im, in, ik) * x->gemm_scale);
    return (1.0 - x->reuse) * cold + x->reuse * hot;
}

/* The conv2d entry's bias rate (forward: fill, backward: sum), 0 when not measured. */
static double bias_bw(const ClusterCfg *cl, bool bwd) {
    const PresetTables *t = cl->tables;
    for (int i = 0; t && i < t->nops; i++)
        if (t->ops[i].op == OP_CONV2D) return bwd ? t->ops[i].bias_bwd_bw : t->ops[i].bias_fwd_bw;
    return 0.0;
}

/* The measured rate of op's forward or backward pass over its bytes; 0 when not measured. */
double cost_op_bw(const ClusterCfg *cl, int op, bool bwd) {
    const PresetTables *t = cl->tables;
    for (int i = 0; t && i < t->nops; i++)
        if (t->ops[i].op == op) return bwd ? t->ops[i].bwd_bw : t->ops[i].fwd_bw;
    return 0.0;
}

/* The flat-rate time of the FLOPs left after the GEMMs (never below zero). */
static double rest_t(const ClusterCfg *cl, double flops, double gemm_flops) {
    double r = flops - gemm_flops;
    return r > 0 ? r / cl->flops : 0.0;
}

static CompTime linear_time(const CompCtx *x) {
    const ClusterCfg *cl = x->cl;
    double m = x->rows, n = x->cols, k = x->in;
    CompTime t = {0, 0, 0, 0};
    t.fwd = gemm_t(x, GEMM_NN, m, n, k) + rest_t(cl, x->ff, 2 * m * n * k);
    double mm = 2 * m * n * k * (x->dx ? 2 : 1);
    t.bwd = (x->dx ? gemm_t(x, GEMM_NT, m, k, n) : 0.0) + gemm_t(x, GEMM_TN, k, n, m) +
            rest_t(cl, x->fb, mm);
    return t;
}

static CompTime conv_time(const CompCtx *x) {
    const ClusterCfg *cl = x->cl;
    double N = x->samples, O = x->cols, P = x->plane, ckk = x->in;
    CompTime t = {0, 0, 0, 0};
    double mm = 2 * N * O * P * ckk;
    t.fwd = N * gemm_t(x, GEMM_NN, O, P, ckk) + rest_t(cl, x->ff, mm);
    t.bwd = N * (gemm_t(x, GEMM_NT, O, ckk, P) + (x->dx ? gemm_t(x, GEMM_TN, ckk, P, O) : 0.0)) +
            rest_t(cl, x->fb, mm * (x->dx ? 2 : 1));
    double colb = 4.0 * N * ckk * P, bf = cost_op_bw(cl, OP_CONV2D, false),
           bb = cost_op_bw(cl, OP_CONV2D, true);
    if (x->unroll && bf > 0) t.fwd_extra = colb / bf, t.bwd_extra = colb / bf;
    if (x->unroll && bb > 0 && x->dx) t.bwd_extra += colb / bb;
    /* the bias: the output planes filled before the GEMM adds to them, summed in backward */
    double outb = 4.0 * N * O * P, pf = bias_bw(cl, false), pb = bias_bw(cl, true);
    if (pf > 0) t.fwd_extra += outb / pf;
    if (pb > 0) t.bwd_extra += outb / pb;
    return t;
}

static CompTime attn_time(const CompCtx *x) {
    const ClusterCfg *cl = x->cl;
    double m = x->rows, dl = x->cols, d = x->in, T = x->plane, hd = x->head;
    CompTime t = {0, 0, 0, 0};
    double proj = 4 * 2 * m * dl * d, core = 2 * 2 * x->samples * T * T * dl;
    double tp = 3 * gemm_t(x, GEMM_NN, m, dl, d) + gemm_t(x, GEMM_NN, m, d, dl);
    double tc =
        core > 0 ? core / (cost_gemm_rate(cl, (int64_t)T, (int64_t)T, (int64_t)hd) * x->gemm_scale)
                 : 0;
    t.fwd = tp + tc + rest_t(cl, x->ff, proj + core);
    double pb = proj * (x->dx ? 2 : 1.25); /* without dx: 4 dW GEMMs + the output's dx */
    t.bwd = tp * pb / proj + 2 * tc + rest_t(cl, x->fb, pb + 2 * core);
    return t;
}

CompTime cost_compute_time(const CompCtx *x) {
    bool grid = x->cl->tables && x->cl->tables->ngemm > 0;
    if (grid && x->op == OP_LINEAR) return linear_time(x);
    if (grid && x->op == OP_CONV2D) return conv_time(x);
    if (grid && x->op == OP_ATTENTION) return attn_time(x);
    bool gemm_op = x->op == OP_LINEAR || x->op == OP_CONV2D || x->op == OP_ATTENTION;
    double rate = x->cl->flops * (gemm_op ? x->gemm_scale : 1.0);
    CompTime t = {x->ff / rate, x->fb / rate, 0, 0};
    return t;
}
