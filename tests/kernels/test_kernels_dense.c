/*
 * test_kernels_dense.c: linear, relu, gelu, tanh, add, layernorm and dropout against naive
 * double references (forward) and finite differences (every backward gradient), plus the
 * shard identities the plans rely on: a column-split linear concatenates to the whole, a
 * row-split pair sums to it, and dropout masks do not depend on how the tensor is split.
 */
#include "kcheck.h"

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4
#define PRE 0.25f /* gradients are pre-filled with this: backward must accumulate */

/* ─────────────────────────────── linear ─────────────────────────────── */

typedef struct LinCtx {
    int N, I, O, add_bias;
    double *x, *W, *b, *r, *out;
} LinCtx;

static void ref_linear(const LinCtx *c) {
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++) {
            double s = c->add_bias ? c->b[o] : 0.0;
            for (int i = 0; i < c->I; i++)
                s += c->x[n * c->I + i] * c->W[i * c->O + o];
            c->out[n * c->O + o] = s;
        }
}

static double loss_linear(void *ctx) {
    LinCtx *c = ctx;
    ref_linear(c);
    return kc_dot(c->r, c->out, (size_t)(c->N * c->O));
}

/* Copies columns [c0, c0 + cl) of src [rows, cols] into dst [rows, cl]. */
static void copy_cols(float *dst, const float *src, int rows, int cols, int c0, int cl) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cl; j++)
            dst[i * cl + j] = src[i * cols + c0 + j];
}

static void test_linear(void) {
    LinCtx c = {.N = 3, .I = 5, .O = 7, .add_bias = 1};
    size_t nx = 15, nw = 35, no = 21;
    float *x = kc_randf(nx, -1, 1, &c.x), *W = kc_randf(nw, -1, 1, &c.W);
    float *b = kc_randf(7, -1, 1, &c.b), *r = kc_randf(no, -1, 1, &c.r);
    c.out = kc_doubles(no);
    float *out = kc_floats(no);
    mprt_linear_forward(out, x, W, b, c.N, c.I, c.O, 1);
    ref_linear(&c);
    kc_close("linear forward", out, c.out, no, FWD_TOL);
    c.add_bias = 0;
    mprt_linear_forward(out, x, W, b, c.N, c.I, c.O, 0);
    ref_linear(&c);
    kc_close("linear forward without bias", out, c.out, no, FWD_TOL);
    c.add_bias = 1;

    float *dx = kc_floats(nx), *dW = kc_floats(nw), *db = kc_floats(7);
    kc_fill(dx, nx, PRE), kc_fill(dW, nw, PRE), kc_fill(db, 7, PRE);
    mprt_linear_backward(dx, dW, db, r, x, W, c.N, c.I, c.O);
    double *g = kc_doubles(nw);
    kc_fd(g, c.x, nx, loss_linear, &c);
    kc_grad("linear dx", dx, PRE, g, nx, GRAD_TOL);
    kc_fd(g, c.W, nw, loss_linear, &c);
    kc_grad("linear dW", dW, PRE, g, nw, GRAD_TOL);
    kc_fd(g, c.b, 7, loss_linear, &c);
    kc_grad("linear db", db, PRE, g, 7, GRAD_TOL);

    /* NULL gradients are skipped, the others still accumulate. */
    float *dW2 = kc_floats(nw);
    mprt_linear_backward(NULL, dW2, NULL, r, x, W, c.N, c.I, c.O);
    kc_fd(g, c.W, nw, loss_linear, &c);
    kc_grad("linear dW alone", dW2, 0.0f, g, nw, GRAD_TOL);
    free(x), free(W), free(b), free(r), free(out), free(dx), free(dW), free(db), free(dW2);
    free(g), free(c.x), free(c.W), free(c.b), free(c.r), free(c.out);
}

/* Column split over two ranks (uneven: 3 + 4 output features) concatenates to the whole;
 * its input gradients are partial sums of the whole dx. */
static void test_linear_col_split(void) {
    enum { N = 3, I = 5, O = 7, O0 = 3, O1 = 4 };
    float *x = kc_randf(N * I, -1, 1, NULL), *W = kc_randf(I * O, -1, 1, NULL);
    float *b = kc_randf(O, -1, 1, NULL), *dout = kc_randf(N * O, -1, 1, NULL);
    float out[N * O], dx[N * I] = {0}, dW[I * O] = {0}, db[O] = {0};
    mprt_linear_forward(out, x, W, b, N, I, O, 1);
    mprt_linear_backward(dx, dW, db, dout, x, W, N, I, O);
    int c0[2] = {0, O0}, cl[2] = {O0, O1};
    float dxsum[N * I] = {0};
    for (int k = 0; k < 2; k++) {
        float Wl[I * O1], bl[O1], outl[N * O1], doutl[N * O1], dWl[I * O1] = {0}, dbl[O1] = {0};
        float want[I * O1]; /* I > N: large enough for both blocks */
        copy_cols(Wl, W, I, O, c0[k], cl[k]);
        copy_cols(bl, b, 1, O, c0[k], cl[k]);
        copy_cols(doutl, dout, N, O, c0[k], cl[k]);
        mprt_linear_forward(outl, x, Wl, bl, N, I, cl[k], 1);
        mprt_linear_backward(dxsum, dWl, dbl, doutl, x, Wl, N, I, cl[k]);
        double wo[N * O1], wdw[I * O1], wdb[O1];
        copy_cols(want, out, N, O, c0[k], cl[k]);
        for (int i = 0; i < N * cl[k]; i++)
            wo[i] = want[i];
        copy_cols(want, dW, I, O, c0[k], cl[k]);
        for (int i = 0; i < I * cl[k]; i++)
            wdw[i] = want[i];
        for (int i = 0; i < cl[k]; i++)
            wdb[i] = db[c0[k] + i];
        kc_close("col split: output block", outl, wo, (size_t)(N * cl[k]), 1e-6);
        kc_close("col split: dW block", dWl, wdw, (size_t)(I * cl[k]), 1e-6);
        kc_close("col split: db block", dbl, wdb, (size_t)cl[k], 1e-6);
    }
    double wdx[N * I];
    for (int i = 0; i < N * I; i++)
        wdx[i] = dx[i];
    kc_close("col split: dx partials sum to dx", dxsum, wdx, N * I, 1e-6);
    free(x), free(W), free(b), free(dout);
}

/* Row split over two ranks (2 + 3 input features): outputs are partial sums (bias on rank 0
 * only), input gradients are the feature blocks of dx, dW the row blocks. */
static void test_linear_row_split(void) {
    enum { N = 3, I = 5, O = 7, I0 = 2 };
    float *x = kc_randf(N * I, -1, 1, NULL), *W = kc_randf(I * O, -1, 1, NULL);
    float *b = kc_randf(O, -1, 1, NULL), *dout = kc_randf(N * O, -1, 1, NULL);
    float out[N * O], dx[N * I] = {0}, dW[I * O] = {0};
    mprt_linear_forward(out, x, W, b, N, I, O, 1);
    mprt_linear_backward(dx, dW, NULL, dout, x, W, N, I, O);
    float sum[N * O] = {0};
    int r0[2] = {0, I0}, rl[2] = {I0, I - I0};
    for (int k = 0; k < 2; k++) {
        float xl[N * I], dxl[N * I] = {0}, dWl[I * O] = {0}, outl[N * O];
        copy_cols(xl, x, N, I, r0[k], rl[k]);
        const float *Wl = W + r0[k] * O; /* rows are contiguous */
        mprt_linear_forward(outl, xl, Wl, b, N, rl[k], O, k == 0);
        mprt_accumulate(sum, outl, N * O);
        mprt_linear_backward(dxl, dWl, NULL, dout, xl, Wl, N, rl[k], O);
        double wdx[N * I], wdw[I * O];
        float blk[N * I];
        copy_cols(blk, dx, N, I, r0[k], rl[k]);
        for (int i = 0; i < N * rl[k]; i++)
            wdx[i] = blk[i];
        for (int i = 0; i < rl[k] * O; i++)
            wdw[i] = dW[r0[k] * O + i];
        kc_close("row split: dx block", dxl, wdx, (size_t)(N * rl[k]), 1e-6);
        kc_close("row split: dW rows", dWl, wdw, (size_t)(rl[k] * O), 1e-6);
    }
    double want[N * O];
    for (int i = 0; i < N * O; i++)
        want[i] = out[i];
    kc_close("row split: partial outputs sum to the whole", sum, want, N * O, 1e-6);
    free(x), free(W), free(b), free(dout);
}

/* ──────────────────── elementwise: relu, gelu, tanh, add ──────────────────── */

typedef enum { EW_RELU, EW_GELU, EW_TANH } EwKind;

static double ref_ew(EwKind k, double v) {
    switch (k) {
    case EW_RELU: return v > 0 ? v : 0;
    case EW_GELU:
        return 0.5 * v * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (v + 0.044715 * v * v * v)));
    case EW_TANH: return tanh(v);
    }
    return 0;
}

typedef struct EwCtx {
    EwKind kind;
    size_t n;
    double *x, *r;
} EwCtx;

static double loss_ew(void *ctx) {
    EwCtx *c = ctx;
    double s = 0;
    for (size_t i = 0; i < c->n; i++)
        s += c->r[i] * ref_ew(c->kind, c->x[i]);
    return s;
}

static void test_elementwise(EwKind kind, const char *name) {
    enum { n = 37 };
    EwCtx c = {.kind = kind, .n = n};
    float *x = kc_randf(n, -3, 3, &c.x), *r = kc_randf(n, -1, 1, &c.r);
    float out[n], dx[n];
    double want[n], g[n];
    kc_fill(dx, n, PRE);
    switch (kind) {
    case EW_RELU:
        mprt_relu_forward(out, x, n);
        mprt_relu_backward(dx, r, x, n);
        break;
    case EW_GELU:
        mprt_gelu_forward(out, x, n);
        mprt_gelu_backward(dx, r, x, n);
        break;
    case EW_TANH:
        mprt_tanh_forward(out, x, n);
        mprt_tanh_backward(dx, r, out, n);
        break;
    }
    for (int i = 0; i < n; i++)
        want[i] = ref_ew(kind, c.x[i]);
    char what[64];
    snprintf(what, sizeof what, "%s forward", name);
    kc_close(what, out, want, n, FWD_TOL);
    kc_fd(g, c.x, n, loss_ew, &c);
    snprintf(what, sizeof what, "%s dx", name);
    kc_grad(what, dx, PRE, g, n, GRAD_TOL);
    free(x), free(r), free(c.x), free(c.r);
}

static void test_add(void) {
    enum { n = 11 };
    float *a = kc_randf(n, -1, 1, NULL), *b = kc_randf(n, -1, 1, NULL);
    float *d = kc_randf(n, -1, 1, NULL);
    float out[n], da[n], db[n], dd[n];
    double want[n], wda[n], w2[n];
    mprt_add_forward(out, a, b, n);
    kc_fill(da, n, PRE), kc_fill(db, n, PRE), kc_fill(dd, n, 0.0f);
    mprt_add_backward(da, db, d, n);
    mprt_add_backward(dd, dd, d, n); /* add(x, x): the same buffer gets both */
    for (int i = 0; i < n; i++) {
        want[i] = (double)a[i] + b[i];
        wda[i] = d[i];
        w2[i] = 2.0 * d[i];
    }
    kc_close("add forward", out, want, n, FWD_TOL);
    kc_grad("add da", da, PRE, wda, n, 1e-6);
    kc_grad("add db", db, PRE, wda, n, 1e-6);
    kc_grad("add(x, x) gradient is 2·dout", dd, 0.0f, w2, n, 1e-6);
    free(a), free(b), free(d);
}

/* ─────────────────────────────── layernorm ─────────────────────────────── */

typedef struct LnCtx {
    int N, C;
    double eps;
    double *x, *gamma, *beta, *r, *out, *mean, *rstd;
} LnCtx;

static void ref_layernorm(LnCtx *c) {
    for (int n = 0; n < c->N; n++) {
        const double *x = c->x + n * c->C;
        double mu = 0, var = 0;
        for (int i = 0; i < c->C; i++)
            mu += x[i] / c->C;
        for (int i = 0; i < c->C; i++)
            var += (x[i] - mu) * (x[i] - mu) / c->C;
        double rs = 1 / sqrt(var + c->eps);
        for (int i = 0; i < c->C; i++)
            c->out[n * c->C + i] = (x[i] - mu) * rs * c->gamma[i] + c->beta[i];
        c->mean[n] = mu, c->rstd[n] = rs;
    }
}

static double loss_layernorm(void *ctx) {
    LnCtx *c = ctx;
    ref_layernorm(c);
    return kc_dot(c->r, c->out, (size_t)(c->N * c->C));
}

static void test_layernorm(void) {
    enum { N = 3, C = 7 };
    LnCtx c = {.N = N, .C = C, .eps = 1e-5};
    float *x = kc_randf(N * C, -2, 2, &c.x), *gm = kc_randf(C, 0.5, 1.5, &c.gamma);
    float *bt = kc_randf(C, -1, 1, &c.beta), *r = kc_randf(N * C, -1, 1, &c.r);
    double out_ref[N * C], mean_ref[N], rstd_ref[N], g[N * C];
    c.out = out_ref, c.mean = mean_ref, c.rstd = rstd_ref;
    float out[N * C], mean[N], rstd[N], dx[N * C], dg[C], dbt[C];
    mprt_layernorm_forward(out, mean, rstd, x, gm, bt, N, C, 1e-5f);
    ref_layernorm(&c);
    kc_close("layernorm forward", out, out_ref, N * C, FWD_TOL);
    kc_close("layernorm mean", mean, mean_ref, N, FWD_TOL);
    kc_close("layernorm rstd", rstd, rstd_ref, N, FWD_TOL);
    kc_fill(dx, N * C, PRE), kc_fill(dg, C, PRE), kc_fill(dbt, C, PRE);
    mprt_layernorm_backward(dx, dg, dbt, r, x, mean, rstd, gm, N, C);
    kc_fd(g, c.x, N * C, loss_layernorm, &c);
    kc_grad("layernorm dx", dx, PRE, g, N * C, 1e-3);
    kc_fd(g, c.gamma, C, loss_layernorm, &c);
    kc_grad("layernorm dgamma", dg, PRE, g, C, GRAD_TOL);
    kc_fd(g, c.beta, C, loss_layernorm, &c);
    kc_grad("layernorm dbeta", dbt, PRE, g, C, GRAD_TOL);
    free(x), free(gm), free(bt), free(r), free(c.x), free(c.gamma), free(c.beta), free(c.r);
}

/* ─────────────────────────────── dropout ─────────────────────────────── */

enum { DN = 5, DT = 3, DD = 9 }; /* a [N, T, D] activation */
#define DP 0.3f
#define DSEED 1234u
#define DLAYER 7u
#define DSTEP 42

/* The whole [DN, DT, DD] tensor: one shard covering everything. */
static MprtDropShard drop_whole(void) {
    MprtDropShard sh = {.n0 = 0, .R = DT, .r0 = 0, .F = DD, .F_global = DD, .f0 = 0};
    return sh;
}

static void test_dropout_forward_backward(void) {
    size_t n = DN * DT * DD;
    float *x = kc_randf(n, -1, 1, NULL), *dout = kc_randf(n, -1, 1, NULL);
    float *out = kc_floats(n), *dx = kc_floats(n);
    double *want = kc_doubles(n), *wdx = kc_doubles(n);
    mprt_dropout_forward(out, x, DN, drop_whole(), DP, DSEED, DLAYER, DSTEP, 1);
    kc_fill(dx, n, PRE);
    mprt_dropout_backward(dx, dout, DN, drop_whole(), DP, DSEED, DLAYER, DSTEP);
    int kept = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t s = (int64_t)(i / (DT * DD)), e = (int64_t)(i % (DT * DD));
        int keep = mprt_dropout_keep(DSEED, DLAYER, DSTEP, s, e, DP);
        kept += keep;
        want[i] = keep ? (double)x[i] / (1.0 - DP) : 0.0;
        wdx[i] = keep ? (double)dout[i] / (1.0 - DP) : 0.0;
    }
    kc_expect(kept > 0 && kept < (int)n, "dropout keeps some and drops some", "kept %g of %g", kept,
              (double)n);
    kc_close("dropout forward", out, want, n, FWD_TOL);
    kc_grad("dropout dx", dx, PRE, wdx, n, 1e-6);
    mprt_dropout_forward(out, x, DN, drop_whole(), DP, DSEED, DLAYER, DSTEP, 0);
    kc_same("dropout at eval is the identity", out, x, n);
    mprt_dropout_forward(out, x, DN, drop_whole(), 0.0f, DSEED, DLAYER, DSTEP, 1);
    kc_same("dropout with p = 0 is the identity", out, x, n);
    free(x), free(dout), free(out), free(dx), free(want), free(wdx);
}

/* The keep rate is 1 − p, and the mask changes with the step, layer and seed. */
static void test_dropout_statistics(void) {
    int kept = 0, diff_step = 0, diff_layer = 0, diff_seed = 0;
    const int n = 20000;
    for (int e = 0; e < n; e++) {
        int k = mprt_dropout_keep(DSEED, DLAYER, DSTEP, 3, e, DP);
        kept += k;
        diff_step += k != mprt_dropout_keep(DSEED, DLAYER, DSTEP + 1, 3, e, DP);
        diff_layer += k != mprt_dropout_keep(DSEED, DLAYER + 1, DSTEP, 3, e, DP);
        diff_seed += k != mprt_dropout_keep(DSEED + 1, DLAYER, DSTEP, 3, e, DP);
    }
    double rate = (double)kept / n, expect_diff = 2.0 * DP * (1.0 - DP) * n;
    kc_expect(fabs(rate - (1 - DP)) < 0.015, "dropout keep rate", "%g, want %g", rate, 1 - DP);
    kc_expect(fabs(diff_step - expect_diff) < 0.1 * expect_diff, "dropout mask depends on step",
              "%g differ, want about %g", diff_step, expect_diff);
    kc_expect(fabs(diff_layer - expect_diff) < 0.1 * expect_diff, "dropout mask depends on layer",
              "%g differ, want about %g", diff_layer, expect_diff);
    kc_expect(fabs(diff_seed - expect_diff) < 0.1 * expect_diff, "dropout mask depends on seed",
              "%g differ, want about %g", diff_seed, expect_diff);
}

/* The same mask whole, in batch halves (2 + 3 samples), in feature halves of [N, T, D]
 * (4 + 5 features), and in "channel" halves viewing [N, C=T, H·W=D] (1 + 2 channels). */
static void test_dropout_split(void) {
    size_t n = DN * DT * DD;
    float *x = kc_randf(n, -1, 1, NULL), *whole = kc_floats(n), *part = kc_floats(n);
    mprt_dropout_forward(whole, x, DN, drop_whole(), DP, DSEED, DLAYER, DSTEP, 1);
    MprtDropShard sh = drop_whole();
    mprt_dropout_forward(part, x, 2, sh, DP, DSEED, DLAYER, DSTEP, 1);
    sh.n0 = 2;
    mprt_dropout_forward(part + 2 * DT * DD, x + 2 * DT * DD, DN - 2, sh, DP, DSEED, DLAYER, DSTEP,
                         1);
    kc_same("dropout: batch halves equal the whole", part, whole, n);

    int f0[2] = {0, 4}, fl[2] = {4, 5};
    for (int k = 0; k < 2; k++) {
        MprtDropShard fs = {.n0 = 0, .R = DT, .r0 = 0, .F = fl[k], .F_global = DD, .f0 = f0[k]};
        float *xl = kc_floats(n), *ol = kc_floats(n), *wl = kc_floats(n);
        copy_cols(xl, x, DN * DT, DD, f0[k], fl[k]);
        copy_cols(wl, whole, DN * DT, DD, f0[k], fl[k]);
        mprt_dropout_forward(ol, xl, DN, fs, DP, DSEED, DLAYER, DSTEP, 1);
        kc_same("dropout: feature halves equal the whole's columns", ol, wl,
                (size_t)(DN * DT * fl[k]));
        free(xl), free(ol), free(wl);
    }
    int r0[2] = {0, 1}, rl[2] = {1, 2};
    for (int k = 0; k < 2; k++) {
        MprtDropShard cs = {.n0 = 0, .R = rl[k], .r0 = r0[k], .F = DD, .F_global = DD, .f0 = 0};
        float *xl = kc_floats(n), *ol = kc_floats(n), *wl = kc_floats(n);
        copy_cols(xl, x, DN, DT * DD, r0[k] * DD, rl[k] * DD);
        copy_cols(wl, whole, DN, DT * DD, r0[k] * DD, rl[k] * DD);
        mprt_dropout_forward(ol, xl, DN, cs, DP, DSEED, DLAYER, DSTEP, 1);
        kc_same("dropout: channel halves equal the whole's channels", ol, wl,
                (size_t)(DN * rl[k] * DD));
        free(xl), free(ol), free(wl);
    }
    free(x), free(whole), free(part);
}

int main(void) {
    mprt_set_threads(1);
    test_linear();
    test_linear_col_split();
    test_linear_row_split();
    test_elementwise(EW_RELU, "relu");
    test_elementwise(EW_GELU, "gelu");
    test_elementwise(EW_TANH, "tanh");
    test_add();
    test_layernorm();
    test_dropout_forward_backward();
    test_dropout_statistics();
    test_dropout_split();
    return kc_report("test_kernels_dense");
}
