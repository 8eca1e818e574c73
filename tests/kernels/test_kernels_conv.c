/*
 * test_kernels_conv.c: conv2d and maxpool2d against naive double loops (forward) and finite
 * differences (dx, dW, db), over odd sizes with stride and padding, a pointwise (1×1)
 * convolution that skips im2col, and the channel splits: output channels in two blocks
 * concatenate to the whole, input channels in two blocks give partial sums of the whole.
 */
#include "kcheck.h"

#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4
#define PRE 0.25f

/* ─────────────────────────────── conv2d ─────────────────────────────── */

typedef struct ConvCtx {
    int N, C, H, W, O, K, S, P, Ho, Wo, add_bias;
    double *x, *w, *b, *r, *out;
} ConvCtx;

static double conv_at(const ConvCtx *c, int n, int o, int oh, int ow) {
    double s = c->add_bias ? c->b[o] : 0.0;
    for (int ci = 0; ci < c->C; ci++)
        for (int kh = 0; kh < c->K; kh++)
            for (int kw = 0; kw < c->K; kw++) {
                int ih = oh * c->S - c->P + kh, iw = ow * c->S - c->P + kw;
                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                s += c->w[((o * c->C + ci) * c->K + kh) * c->K + kw] *
                     c->x[((n * c->C + ci) * c->H + ih) * c->W + iw];
            }
    return s;
}

static void ref_conv(ConvCtx *c) {
    for (int n = 0; n < c->N; n++)
        for (int o = 0; o < c->O; o++)
            for (int oh = 0; oh < c->Ho; oh++)
                for (int ow = 0; ow < c->Wo; ow++)
                    c->out[((n * c->O + o) * c->Ho + oh) * c->Wo + ow] = conv_at(c, n, o, oh, ow);
}

static double loss_conv(void *ctx) {
    ConvCtx *c = ctx;
    ref_conv(c);
    return kc_dot(c->r, c->out, (size_t)(c->N * c->O * c->Ho * c->Wo));
}

static void test_conv(int N, int C, int H, int W, int O, int K, int S, int P) {
    ConvCtx c = {
        N, C,    H,    W,    O,    K,   S, P, MPRT_CONV_OUT(H, K, S, P), MPRT_CONV_OUT(W, K, S, P),
        1, NULL, NULL, NULL, NULL, NULL};
    size_t nx = (size_t)(N * C * H * W), nw = (size_t)(O * C * K * K);
    size_t no = (size_t)(N * O * c.Ho * c.Wo);
    float *x = kc_randf(nx, -1, 1, &c.x), *w = kc_randf(nw, -1, 1, &c.w);
    float *b = kc_randf((size_t)O, -1, 1, &c.b), *r = kc_randf(no, -1, 1, &c.r);
    float *out = kc_floats(no), *scratch = kc_floats((size_t)MPRT_CONV2D_SCRATCH(C, K, c.Ho, c.Wo));
    c.out = kc_doubles(no);
    char what[96];
    mprt_conv2d_forward(out, x, w, b, scratch, N, C, H, W, O, K, S, P, 1);
    ref_conv(&c);
    snprintf(what, sizeof what, "conv2d K=%d S=%d P=%d forward", K, S, P);
    kc_close(what, out, c.out, no, FWD_TOL);

    float *dx = kc_floats(nx), *dw = kc_floats(nw), *db = kc_floats((size_t)O);
    kc_fill(dx, nx, PRE), kc_fill(dw, nw, PRE), kc_fill(db, (size_t)O, PRE);
    mprt_conv2d_backward(dx, dw, db, r, x, w, scratch, N, C, H, W, O, K, S, P);
    double *g = kc_doubles(nx > nw ? nx : nw);
    kc_fd(g, c.x, nx, loss_conv, &c);
    snprintf(what, sizeof what, "conv2d K=%d S=%d P=%d dx", K, S, P);
    kc_grad(what, dx, PRE, g, nx, GRAD_TOL);
    kc_fd(g, c.w, nw, loss_conv, &c);
    snprintf(what, sizeof what, "conv2d K=%d S=%d P=%d dW", K, S, P);
    kc_grad(what, dw, PRE, g, nw, GRAD_TOL);
    kc_fd(g, c.b, (size_t)O, loss_conv, &c);
    snprintf(what, sizeof what, "conv2d K=%d S=%d P=%d db", K, S, P);
    kc_grad(what, db, PRE, g, (size_t)O, GRAD_TOL);
    free(x), free(w), free(b), free(r), free(out), free(scratch), free(dx), free(dw), free(db);
    free(g), free(c.x), free(c.w), free(c.b), free(c.r), free(c.out);
}

/* Channel splits of one convolution (N=2, C=3, 7×6, O=4, K=3, S=2, P=1) over two ranks. */
enum { SN = 2, SC = 3, SH = 7, SW = 6, SO = 4, SK = 3, SS = 2, SP = 1 };
enum { SHo = (SH + 2 * SP - SK) / SS + 1, SWo = (SW + 2 * SP - SK) / SS + 1 };

static void to_double(double *d, const float *f, size_t n) {
    for (size_t i = 0; i < n; i++)
        d[i] = f[i];
}

/* Output channels [o0, o0 + ol): the weight's rows; the output's channel block. */
static void conv_col_split(const float *x, const float *w, const float *b, const float *out, int o0,
                           int ol, float *scratch) {
    float outl[SN * SO * SHo * SWo];
    double want[SN * SO * SHo * SWo];
    mprt_conv2d_forward(outl, x, w + o0 * SC * SK * SK, b + o0, scratch, SN, SC, SH, SW, ol, SK, SS,
                        SP, 1);
    size_t blk = (size_t)ol * SHo * SWo;
    for (int n = 0; n < SN; n++)
        to_double(want + (size_t)n * blk, out + ((size_t)n * SO + (size_t)o0) * SHo * SWo, blk);
    kc_close("conv2d col split: output channel block", outl, want, SN * blk, 1e-6);
}

/* Input channels [c0, c0 + cl): x's channel block and the weight's [O, cl, K, K] block;
 * outputs are partial sums, dx the input's channel block. */
static void conv_row_split(const float *x, const float *w, const float *b, const float *dout,
                           const float *dx, int c0, int cl, float *sum, float *scratch) {
    float xl[SN * SC * SH * SW], wl[SO * SC * SK * SK], outl[SN * SO * SHo * SWo];
    float dxl[SN * SC * SH * SW] = {0};
    double want[SN * SC * SH * SW];
    size_t plane = SH * SW, kk = SK * SK;
    for (int n = 0; n < SN; n++)
        memcpy(xl + (size_t)n * cl * plane, x + ((size_t)n * SC + (size_t)c0) * plane,
               cl * plane * sizeof(float));
    for (int o = 0; o < SO; o++)
        memcpy(wl + (size_t)o * cl * kk, w + ((size_t)o * SC + (size_t)c0) * kk,
               cl * kk * sizeof(float));
    mprt_conv2d_forward(outl, xl, wl, b, scratch, SN, cl, SH, SW, SO, SK, SS, SP, c0 == 0);
    mprt_accumulate(sum, outl, SN * SO * SHo * SWo);
    mprt_conv2d_backward(dxl, NULL, NULL, dout, xl, wl, scratch, SN, cl, SH, SW, SO, SK, SS, SP);
    for (int n = 0; n < SN; n++)
        to_double(want + (size_t)n * cl * plane, dx + ((size_t)n * SC + (size_t)c0) * plane,
                  cl * plane);
    kc_close("conv2d row split: dx channel block", dxl, want, SN * cl * plane, 1e-6);
}

static void test_conv_split(void) {
    float *x = kc_randf(SN * SC * SH * SW, -1, 1, NULL),
          *w = kc_randf(SO * SC * SK * SK, -1, 1, NULL);
    float *b = kc_randf(SO, -1, 1, NULL), *dout = kc_randf(SN * SO * SHo * SWo, -1, 1, NULL);
    float out[SN * SO * SHo * SWo], dx[SN * SC * SH * SW] = {0}, sum[SN * SO * SHo * SWo] = {0};
    float *scratch = kc_floats((size_t)MPRT_CONV2D_SCRATCH(SC, SK, SHo, SWo));
    double want[SN * SO * SHo * SWo];
    mprt_conv2d_forward(out, x, w, b, scratch, SN, SC, SH, SW, SO, SK, SS, SP, 1);
    mprt_conv2d_backward(dx, NULL, NULL, dout, x, w, scratch, SN, SC, SH, SW, SO, SK, SS, SP);
    conv_col_split(x, w, b, out, 0, 1, scratch);
    conv_col_split(x, w, b, out, 1, 3, scratch);
    conv_row_split(x, w, b, dout, dx, 0, 1, sum, scratch);
    conv_row_split(x, w, b, dout, dx, 1, 2, sum, scratch);
    to_double(want, out, SN * SO * SHo * SWo);
    kc_close("conv2d row split: partial outputs sum to the whole", sum, want, SN * SO * SHo * SWo,
             1e-6);
    free(x), free(w), free(b), free(dout), free(scratch);
}

/* ─────────────────────────────── maxpool2d ─────────────────────────────── */

typedef struct PoolCtx {
    int planes, H, W, K, S, Ho, Wo;
    double *x, *r, *out;
} PoolCtx;

static void ref_pool(PoolCtx *c) {
    for (int p = 0; p < c->planes; p++)
        for (int oh = 0; oh < c->Ho; oh++)
            for (int ow = 0; ow < c->Wo; ow++) {
                double m = -INFINITY;
                for (int kh = 0; kh < c->K; kh++)
                    for (int kw = 0; kw < c->K; kw++) {
                        double v = c->x[(p * c->H + oh * c->S + kh) * c->W + ow * c->S + kw];
                        m = v > m ? v : m;
                    }
                c->out[(p * c->Ho + oh) * c->Wo + ow] = m;
            }
}

static double loss_pool(void *ctx) {
    PoolCtx *c = ctx;
    ref_pool(c);
    return kc_dot(c->r, c->out, (size_t)(c->planes * c->Ho * c->Wo));
}

static void test_maxpool(int planes, int H, int W, int K, int S) {
    PoolCtx c = {planes, H,    W,   K, S, MPRT_CONV_OUT(H, K, S, 0), MPRT_CONV_OUT(W, K, S, 0),
                 NULL,   NULL, NULL};
    size_t nx = (size_t)(planes * H * W), no = (size_t)(planes * c.Ho * c.Wo);
    float *x = kc_randf(nx, -1, 1, &c.x), *r = kc_randf(no, -1, 1, &c.r);
    float *out = kc_floats(no), *dx = kc_floats(nx);
    int32_t *am = kc_alloc(no, sizeof *am);
    double *g = kc_doubles(nx);
    c.out = kc_doubles(no);
    char what[64];
    mprt_maxpool2d_forward(out, am, x, planes, H, W, K, S);
    ref_pool(&c);
    snprintf(what, sizeof what, "maxpool2d K=%d S=%d forward", K, S);
    kc_close(what, out, c.out, no, 0);
    int in_window = 1;
    for (size_t o = 0; o < no; o++)
        in_window &= am[o] >= 0 && am[o] < H * W;
    kc_expect(in_window, "maxpool2d argmax inside the plane", "%g %g", 0, 0);
    kc_fill(dx, nx, PRE);
    mprt_maxpool2d_backward(dx, r, am, planes, H, W, K, S);
    kc_fd(g, c.x, nx, loss_pool, &c);
    snprintf(what, sizeof what, "maxpool2d K=%d S=%d dx", K, S);
    kc_grad(what, dx, PRE, g, nx, 1e-5);
    free(x), free(r), free(out), free(dx), free(am), free(g), free(c.x), free(c.r), free(c.out);
}

/* Ties go to the first maximum in row-major window order, as documented. */
static void test_maxpool_ties(void) {
    float x[4 * 5], out[2 * 2];
    int32_t am[2 * 2];
    kc_fill(x, 4 * 5, 1.0f);
    x[1 * 5 + 3] = 2.0f; /* window (0, 1) covers rows 0-1, columns 2-3 */
    x[3 * 5 + 1] = 2.0f; /* and a tie inside window (1, 0) with the earlier x[2·5 + 1] */
    x[2 * 5 + 1] = 2.0f;
    mprt_maxpool2d_forward(out, am, x, 1, 4, 5, 2, 2);
    int ok = am[0] == 0 && am[1] == 1 * 5 + 3 && am[2] == 2 * 5 + 1 && am[3] == 2 * 5 + 2;
    kc_expect(ok, "maxpool2d ties: first maximum", "argmax[2] = %g (want %g)", am[2], 11);
}

int main(void) {
    mprt_set_threads(1);
    test_conv(2, 3, 7, 6, 4, 3, 2, 1); /* strided, padded */
    test_conv(2, 3, 5, 7, 5, 3, 1, 0); /* valid */
    test_conv(3, 4, 3, 5, 2, 1, 1, 0); /* pointwise: no im2col */
    test_conv(2, 3, 5, 6, 4, 1, 2, 1); /* 1×1 but strided and padded: im2col needed */
    test_conv(1, 2, 6, 5, 3, 2, 3, 2); /* stride > kernel, wide padding */
    test_conv_split();
    test_maxpool(6, 7, 6, 2, 2); /* the usual 2×2 halving, odd input */
    test_maxpool(5, 7, 5, 3, 2); /* overlapping windows */
    test_maxpool_ties();
    return kc_report("test_kernels_conv");
}
