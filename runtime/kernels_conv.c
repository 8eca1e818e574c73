/*
 * kernels_conv.c: conv2d and maxpool2d on NCHW tensors.
 *
 * A convolution is a matrix product once the input is unrolled (im2col): for one sample,
 * column (oh, ow) of col [C·K·K, Ho·Wo] holds the C·K·K input values under the kernel when
 * it sits at output position (oh, ow), zeros where it overhangs the padding. Then
 * out_n [O, Ho·Wo] = W [O, C·K·K] · col, which is exactly NCHW for the output, so no
 * transposition is needed. Backward runs the same machinery the other way: dW accumulates
 * dout_n · colᵀ, and dx receives col2im(Wᵀ · dout_n), which scatters every column entry
 * back onto the input pixel it came from (adding, since windows overlap).
 *
 * The unrolled matrix of one sample lives in a caller-provided scratch buffer of
 * MPRT_CONV2D_SCRATCH(C, K, Ho, Wo) floats; backward uses it first for im2col (dW) and then
 * for Wᵀ·dout (dx). A 1×1 convolution with stride 1 and no padding skips the unrolling: the
 * sample itself is the col matrix.
 *
 * Channel splits need nothing special: a column split hands in W [O/t, C, K, K] (rows of the
 * weight matrix), a row split x [N, C/t, H, W] and W [O, C/t, K, K] (its own contiguous
 * copy of a column block), whose outputs are partial sums; only one rank adds the bias.
 */
#include "internal.h"
#include "mprt_kernels.h"

#include <stddef.h>

typedef struct ConvDims {
    int C, H, W, K, S, P, Ho, Wo;
} ConvDims;

static ConvDims conv_dims(int C, int H, int Wd, int K, int S, int P) {
    ConvDims d = {C, H, Wd, K, S, P, MPRT_CONV_OUT(H, K, S, P), MPRT_CONV_OUT(Wd, K, S, P)};
    return d;
}

static int conv_is_pointwise(ConvDims d) { return d.K == 1 && d.S == 1 && d.P == 0; }

/* col[(c·K + kh)·K + kw, oh·Wo + ow] = x[c, oh·S − P + kh, ow·S − P + kw] (0 outside). */
static void im2col(float *restrict col, const float *restrict x, ConvDims d) {
    size_t plane = (size_t)d.Ho * (size_t)d.Wo;
    for (int c = 0; c < d.C; c++)
        for (int kh = 0; kh < d.K; kh++)
            for (int kw = 0; kw < d.K; kw++) {
                const float *restrict xc = x + (size_t)c * (size_t)d.H * (size_t)d.W;
                float *restrict dst =
                    col + ((size_t)(c * d.K + kh) * (size_t)d.K + (size_t)kw) * plane;
                for (int oh = 0; oh < d.Ho; oh++) {
                    int ih = oh * d.S - d.P + kh;
                    float *restrict row = dst + (size_t)oh * (size_t)d.Wo;
                    for (int ow = 0; ow < d.Wo; ow++) {
                        int iw = ow * d.S - d.P + kw;
                        int in = ih >= 0 && ih < d.H && iw >= 0 && iw < d.W;
                        row[ow] = in ? xc[(size_t)ih * (size_t)d.W + (size_t)iw] : 0.0f;
                    }
                }
            }
}

/* One sample's output planes start as the bias: on[o, i] = b[o] (the GEMM then adds to it). */
static void bias_fill(float *restrict on, const float *restrict b, int O, int plane) {
    for (int o = 0; o < O; o++)
        for (int i = 0; i < plane; i++)
            on[(size_t)o * (size_t)plane + (size_t)i] = b[o];
}

/* db[o] += Σ_i don[o, i] for one sample, each plane summed in order (a serial chain per plane:
 * the order the checkpointed losses depend on; mpcc-calibrate measures its rate). */
static void bias_grad(float *restrict db, const float *restrict don, int O, int plane) {
    for (int o = 0; o < O; o++) {
        const float *restrict r = don + (size_t)o * (size_t)plane;
        float s = 0.0f;
        for (int i = 0; i < plane; i++)
            s += r[i];
        db[o] += s;
    }
}

/* The adjoint of im2col: dx[c, ih, iw] += every col entry that was read from it. */
static void col2im_add(float *restrict dx, const float *restrict col, ConvDims d) {
    size_t plane = (size_t)d.Ho * (size_t)d.Wo;
    for (int c = 0; c < d.C; c++)
        for (int kh = 0; kh < d.K; kh++)
            for (int kw = 0; kw < d.K; kw++) {
                float *restrict xc = dx + (size_t)c * (size_t)d.H * (size_t)d.W;
                const float *restrict src =
                    col + ((size_t)(c * d.K + kh) * (size_t)d.K + (size_t)kw) * plane;
                for (int oh = 0; oh < d.Ho; oh++) {
                    int ih = oh * d.S - d.P + kh;
                    if (ih < 0 || ih >= d.H) continue;
                    for (int ow = 0; ow < d.Wo; ow++) {
                        int iw = ow * d.S - d.P + kw;
                        if (iw >= 0 && iw < d.W)
                            xc[(size_t)ih * (size_t)d.W + (size_t)iw] +=
                                src[(size_t)oh * (size_t)d.Wo + (size_t)ow];
                    }
                }
            }
}

void mprt_conv2d_forward(float *restrict out, const float *restrict x, const float *restrict W,
                         const float *restrict b, float *restrict scratch, int N, int C, int H,
                         int Wd, int O, int K, int S, int P, int add_bias) {
    ConvDims d = conv_dims(C, H, Wd, K, S, P);
    int plane = d.Ho * d.Wo, ckk = C * K * K;
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * (size_t)C * (size_t)H * (size_t)Wd;
        float *restrict on = out + (size_t)n * (size_t)O * (size_t)plane;
        const float *col = xn;
        if (!conv_is_pointwise(d)) {
            im2col(scratch, xn, d);
            col = scratch;
        }
        float beta = 0.0f;
        if (add_bias && b) {
            bias_fill(on, b, O, plane);
            beta = 1.0f;
        }
        mprt__sgemm(false, false, O, plane, ckk, 1.0f, W, ckk, col, plane, beta, on, plane);
    }
}

/* One sample's dx: dx_n += col2im(Wᵀ · dout_n); pointwise convolutions add Wᵀ·dout_n
 * straight into dx_n. */
static void conv_backward_input(float *restrict dxn, const float *restrict don,
                                const float *restrict W, float *restrict scratch, ConvDims d,
                                int O) {
    int plane = d.Ho * d.Wo, ckk = d.C * d.K * d.K;
    if (conv_is_pointwise(d)) {
        mprt__sgemm(true, false, ckk, plane, O, 1.0f, W, ckk, don, plane, 1.0f, dxn, plane);
        return;
    }
    mprt__sgemm(true, false, ckk, plane, O, 1.0f, W, ckk, don, plane, 0.0f, scratch, plane);
    col2im_add(dxn, scratch, d);
}

void mprt_conv2d_backward(float *restrict dx, float *restrict dW, float *restrict db,
                          const float *restrict dout, const float *restrict x,
                          const float *restrict W, float *restrict scratch, int N, int C, int H,
                          int Wd, int O, int K, int S, int P) {
    ConvDims d = conv_dims(C, H, Wd, K, S, P);
    int plane = d.Ho * d.Wo, ckk = C * K * K;
    size_t in_size = (size_t)C * (size_t)H * (size_t)Wd;
    for (int n = 0; n < N; n++) {
        const float *restrict don = dout + (size_t)n * (size_t)O * (size_t)plane;
        if (dW) {
            const float *col = x + (size_t)n * in_size;
            if (!conv_is_pointwise(d)) {
                im2col(scratch, col, d);
                col = scratch;
            }
            mprt__sgemm(false, true, O, ckk, plane, 1.0f, don, plane, col, plane, 1.0f, dW, ckk);
        }
        if (db) bias_grad(db, don, O, plane);
        if (dx) conv_backward_input(dx + (size_t)n * in_size, don, W, scratch, d, O);
    }
}

/* The unrolling passes alone, for mpcc-calibrate (tools/calibrate_kern.c), which prices them
 * per byte of the unrolled matrix (docs/cost-model.md §5). */
void mprt__im2col(float *col, const float *x, int C, int H, int Wd, int K, int S, int P) {
    im2col(col, x, conv_dims(C, H, Wd, K, S, P));
}

void mprt__col2im_add(float *dx, const float *col, int C, int H, int Wd, int K, int S, int P) {
    col2im_add(dx, col, conv_dims(C, H, Wd, K, S, P));
}

/* The bias passes of one sample alone, for mpcc-calibrate, which prices them per byte of the
 * output (docs/cost-model.md §5). */
void mprt__conv_bias_fill(float *on, const float *b, int O, int plane) {
    bias_fill(on, b, O, plane);
}

void mprt__conv_bias_grad(float *db, const float *don, int O, int plane) {
    bias_grad(db, don, O, plane);
}

/* ─────────────────────────────── maxpool2d ─────────────────────────────── */

/* Planes are independent, so both directions run on the rank's threads one block of planes
 * each: every element is computed by the same operations whatever the cut.
 *
 * Forward works a row of windows at a time, the K·K window positions outermost and the
 * windows innermost, so the compiler vectorises across windows; taking a later position only
 * when strictly greater keeps the first maximum in row-major window order (a NaN wins only
 * where it comes first), as a window-by-window scan would.
 *
 * Backward scatters each plane's gradients onto their argmax in output order, as one thread
 * would. (A dense pass over the input rows for tiling windows, selecting the gradient where the
 * position is the argmax, vectorised but ran 3× slower than the scatter at 2×2.) */
typedef struct Pool {
    float *out, *dx;
    int32_t *argmax;
    const float *x, *dout;
    const int32_t *cargmax;
    int H, W, K, S, Ho, Wo;
} Pool;

/* mask ? a : b for a mask of all ones or all zeros, in integer operations: gcc 12 if-converts
 * this where it leaves a float `?:` beside a second select as control flow, unvectorised. */
static inline float pick(int32_t mask, float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, sizeof ia), memcpy(&ib, &b, sizeof ib);
    int32_t r = (mask & ia) | (~mask & ib);
    float f;
    memcpy(&f, &r, sizeof f);
    return f;
}

/* One row of windows: the running maximum and its index, position by position. */
static void pool_fwd_row(float *restrict best, int32_t *restrict at, const float *restrict xp,
                         int32_t row0, int W, int K, int S, int Wo) {
    for (int ow = 0; ow < Wo; ow++)
        best[ow] = xp[row0 + ow * S], at[ow] = row0 + ow * S;
    for (int kh = 0; kh < K; kh++)
        for (int kw = kh ? 0 : 1; kw < K; kw++) {
            int32_t i0 = row0 + kh * W + kw;
            for (int ow = 0; ow < Wo; ow++) {
                float v = xp[i0 + ow * S];
                int32_t take = -(int32_t)(v > best[ow]); /* all ones where v wins */
                best[ow] = pick(take, v, best[ow]);
                at[ow] = (take & (i0 + ow * S)) | (~take & at[ow]);
            }
        }
}

static void pool_fwd_planes(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Pool *c = ctx;
    int W = c->W, K = c->K, S = c->S, Wo = c->Wo;
    for (int64_t p = lo; p < hi; p++) {
        const float *restrict xp = c->x + (size_t)p * (size_t)c->H * (size_t)W;
        for (int oh = 0; oh < c->Ho; oh++) {
            size_t o = ((size_t)p * (size_t)c->Ho + (size_t)oh) * (size_t)Wo;
            int32_t row0 = (int32_t)(oh * S * W);
            pool_fwd_row(c->out + o, c->argmax + o, xp, row0, W, K, S, Wo);
        }
    }
}

static void pool_bwd_planes(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Pool *c = ctx;
    int W = c->W, Wo = c->Wo;
    for (int64_t p = lo; p < hi; p++) {
        float *restrict dxp = c->dx + (size_t)p * (size_t)c->H * (size_t)W;
        size_t o0 = (size_t)p * (size_t)c->Ho * (size_t)Wo;
        const float *restrict dout = c->dout + o0;
        const int32_t *restrict am = c->cargmax + o0;
        for (size_t o = 0; o < (size_t)c->Ho * (size_t)Wo; o++)
            dxp[am[o]] += dout[o];
    }
}

/* Planes per job part: enough elements that a part is worth waking a thread for. */
static int64_t pool_grain(int H, int W) { return 16384 / ((int64_t)H * W) + 1; }

static Pool pool_geometry(int H, int W, int K, int S) {
    Pool c = {.H = H, .W = W, .K = K, .S = S};
    c.Ho = MPRT_CONV_OUT(H, K, S, 0), c.Wo = MPRT_CONV_OUT(W, K, S, 0);
    return c;
}

void mprt_maxpool2d_forward(float *restrict out, int32_t *restrict argmax, const float *restrict x,
                            int planes, int H, int Wd, int K, int S) {
    Pool c = pool_geometry(H, Wd, K, S);
    c.out = out, c.argmax = argmax, c.x = x;
    mprt__parallel_for(planes, pool_grain(H, Wd), pool_fwd_planes, &c);
}

void mprt_maxpool2d_backward(float *restrict dx, const float *restrict dout,
                             const int32_t *restrict argmax, int planes, int H, int Wd, int K,
                             int S) {
    Pool c = pool_geometry(H, Wd, K, S);
    c.dx = dx, c.dout = dout, c.cargmax = argmax;
    mprt__parallel_for(planes, pool_grain(H, Wd), pool_bwd_planes, &c);
}
