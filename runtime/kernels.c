/*
 * kernels.c: the dense and elementwise kernels of mprt — linear, relu, gelu, tanh, add,
 * layernorm, dropout — and the BLAS thread setting. Convolution and pooling live in
 * kernels_conv.c, embedding and attention in kernels_attn.c, losses, optimizers and
 * initialisation in kernels_train.c; mprt_kernels.h is the one header for all of them.
 *
 * Every kernel runs on the local shard of a rank and is oblivious of the plan: shapes come
 * in as arguments, a shard of a weight is a smaller weight, and the only plan-shaped
 * arguments are flags saying whether this rank adds a bias (row-split layers produce partial
 * sums, so exactly one rank adds it) and, for dropout, where the shard sits in the whole
 * tensor (the mask must not depend on the split).
 *
 * Backward kernels accumulate into every gradient they produce (+=): parameter gradients add
 * up over micro-batches, and an activation with two consumers receives the sum of both
 * gradients without the caller adding buffers. The caller zeroes gradients at the start of a
 * step / micro-batch. Matrix products are cblas_sgemm calls with beta = 1 for exactly this
 * reason; elementwise loops are plain indexed loops over restrict pointers so the compiler
 * vectorises them.
 */
#include "mprt.h"

#include "kernels_math.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>

void mprt_kernels_set_threads(int n) { openblas_set_num_threads(n < 1 ? 1 : n); }

/* ─────────────────────────────── linear ─────────────────────────────── */

void mprt_linear_forward(float *restrict out, const float *restrict x, const float *restrict W,
                         const float *restrict b, int N, int Din, int Dout, int add_bias) {
    float beta = 0.0f;
    if (add_bias && b) {
        for (int n = 0; n < N; n++) {
            float *restrict row = out + (size_t)n * (size_t)Dout;
            for (int o = 0; o < Dout; o++)
                row[o] = b[o];
        }
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, Dout, Din, 1.0f, x, Din, W, Dout,
                beta, out, Dout);
}

/* db[Dout] += Σ_n dout[n, :] */
static void sum_rows(float *restrict db, const float *restrict dout, int N, int Dout) {
    for (int n = 0; n < N; n++) {
        const float *restrict row = dout + (size_t)n * (size_t)Dout;
        for (int o = 0; o < Dout; o++)
            db[o] += row[o];
    }
}

void mprt_linear_backward(float *restrict dx, float *restrict dW, float *restrict db,
                          const float *restrict dout, const float *restrict x,
                          const float *restrict W, int N, int Din, int Dout) {
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, Din, Dout, 1.0f, dout, Dout, W,
                    Dout, 1.0f, dx, Din);
    if (dW)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Din, Dout, N, 1.0f, x, Din, dout, Dout,
                    1.0f, dW, Dout);
    if (db) sum_rows(db, dout, N, Dout);
}

/* ──────────────────── elementwise: relu, gelu, tanh, add ──────────────────── */

void mprt_relu_forward(float *restrict out, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void mprt_relu_backward(float *restrict dx, const float *restrict dout, const float *restrict x,
                        int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float d = dout[i]; /* loaded unconditionally, so the select vectorises */
        dx[i] += x[i] > 0.0f ? d : 0.0f;
    }
}

#define GELU_C 0.7978845608028654f /* √(2/π) */
#define GELU_A 0.044715f

MPRT__SIMD static void gelu_forward_loop(float *restrict out, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float t = mprt__tanhf(GELU_C * (v + GELU_A * v * v * v));
        out[i] = 0.5f * v * (1.0f + t);
    }
}

void mprt_gelu_forward(float *restrict out, const float *restrict x, int64_t n) {
    gelu_forward_loop(out, x, n);
}

/* d/dx ½x(1 + tanh u), u = c(x + a x³):  ½(1 + tanh u) + ½x(1 − tanh² u)·c(1 + 3a x²) */
MPRT__SIMD static void gelu_backward_loop(float *restrict dx, const float *restrict dout,
                                          const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float t = mprt__tanhf(GELU_C * (v + GELU_A * v * v * v));
        float du = GELU_C * (1.0f + 3.0f * GELU_A * v * v);
        dx[i] += dout[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
    }
}

void mprt_gelu_backward(float *restrict dx, const float *restrict dout, const float *restrict x,
                        int64_t n) {
    gelu_backward_loop(dx, dout, x, n);
}

MPRT__SIMD static void tanh_forward_loop(float *restrict out, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = mprt__tanhf(x[i]);
}

void mprt_tanh_forward(float *restrict out, const float *restrict x, int64_t n) {
    tanh_forward_loop(out, x, n);
}

MPRT__SIMD static void tanh_backward_loop(float *restrict dx, const float *restrict dout,
                                          const float *restrict out, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dx[i] += dout[i] * (1.0f - out[i] * out[i]);
}

void mprt_tanh_backward(float *restrict dx, const float *restrict dout, const float *restrict out,
                        int64_t n) {
    tanh_backward_loop(dx, dout, out, n);
}

void mprt_fill(float *restrict dst, int64_t n, float value) {
    for (int64_t i = 0; i < n; i++)
        dst[i] = value;
}

void mprt_add_forward(float *restrict out, const float *restrict a, const float *restrict b,
                      int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void mprt_accumulate(float *restrict dst, const float *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* Two separate passes, so da == db (add(x, x)) correctly receives 2·dout. */
void mprt_add_backward(float *da, float *db, const float *dout, int64_t n) {
    if (da) mprt_accumulate(da, dout, n);
    if (db) mprt_accumulate(db, dout, n);
}

/* ─────────────────────────────── layernorm ─────────────────────────────── */

/* Two passes over the row (mean, then centred variance): exact enough in float for the
 * widths we meet, and unlike E[x²] − E[x]² it cannot go negative. */
void mprt_layernorm_forward(float *restrict out, float *restrict mean, float *restrict rstd,
                            const float *restrict x, const float *restrict gamma,
                            const float *restrict beta, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *restrict xr = x + (size_t)n * (size_t)C;
        float *restrict yr = out + (size_t)n * (size_t)C;
        float s = 0.0f;
        for (int c = 0; c < C; c++)
            s += xr[c];
        float mu = s / (float)C;
        float v = 0.0f;
        for (int c = 0; c < C; c++)
            v += (xr[c] - mu) * (xr[c] - mu);
        float rs = 1.0f / sqrtf(v / (float)C + eps);
        for (int c = 0; c < C; c++)
            yr[c] = (xr[c] - mu) * rs * gamma[c] + beta[c];
        mean[n] = mu;
        rstd[n] = rs;
    }
}

void mprt_layernorm_backward(float *restrict dx, float *restrict dgamma, float *restrict dbeta,
                             const float *restrict dout, const float *restrict x,
                             const float *restrict mean, const float *restrict rstd,
                             const float *restrict gamma, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *restrict xr = x + (size_t)n * (size_t)C;
        const float *restrict gr = dout + (size_t)n * (size_t)C;
        float mu = mean[n], rs = rstd[n];
        float sg = 0.0f, sgx = 0.0f; /* Σ g, Σ g·x̂ with g = dout·gamma */
        for (int c = 0; c < C; c++) {
            float xh = (xr[c] - mu) * rs;
            float g = gr[c] * gamma[c];
            sg += g;
            sgx += g * xh;
            if (dgamma) dgamma[c] += gr[c] * xh;
            if (dbeta) dbeta[c] += gr[c];
        }
        if (!dx) continue;
        float mg = sg / (float)C, mgx = sgx / (float)C;
        float *restrict dr = dx + (size_t)n * (size_t)C;
        for (int c = 0; c < C; c++) {
            float xh = (xr[c] - mu) * rs;
            dr[c] += rs * (gr[c] * gamma[c] - mg - xh * mgx);
        }
    }
}

/* ─────────────────────────────── dropout ─────────────────────────────── */

/* The mask draws from the runtime's counter RNG (rng.c): the stream rng(seed, DROP_STREAM),
 * sub-streams for the layer, the step and the global sample, then output e of that
 * generator for element e of the sample. */
#define DROP_STREAM 0x64726f706f7574ull /* "dropout" in ASCII */

/* The generator shared by all elements of one sample. */
static MprtRng drop_key(uint64_t seed, uint32_t layer, int64_t step, int64_t n) {
    MprtRng r = mprt_rng_sub(mprt_rng(seed, DROP_STREAM), layer);
    r = mprt_rng_sub(r, (uint64_t)step);
    return mprt_rng_sub(r, (uint64_t)n);
}

/* Keep iff the 24-bit draw u = bits >> 40 satisfies u ≥ ⌈p·2²⁴⌉, i.e. u/2²⁴ ≥ p as the
 * runtime's uniform float: P(keep) = 1 − p up to 2⁻²⁴. */
static uint64_t drop_threshold(float p) { return (uint64_t)ceil((double)p * 16777216.0); }

int mprt_dropout_keep(uint64_t seed, uint32_t layer, int64_t step, int64_t n, int64_t e, float p) {
    return (mprt_rng_bits(drop_key(seed, layer, step, n), (uint64_t)e) >> 40) >= drop_threshold(p);
}

/* dst[i] (=, or += when acc) src[i]·keep·scale over the whole local shard. */
static void dropout_apply(float *restrict dst, const float *restrict src, int N, MprtDropShard sh,
                          float p, uint64_t seed, uint32_t layer, int64_t step, int acc) {
    uint64_t thr = drop_threshold(p);
    float scale = 1.0f / (1.0f - p);
    for (int n = 0; n < N; n++) {
        MprtRng key = drop_key(seed, layer, step, sh.n0 + n);
        for (int r = 0; r < sh.R; r++) {
            size_t off = ((size_t)n * (size_t)sh.R + (size_t)r) * (size_t)sh.F;
            int64_t e0 = (int64_t)(sh.r0 + r) * sh.F_global + sh.f0;
            const float *restrict s = src + off;
            float *restrict d = dst + off;
            for (int f = 0; f < sh.F; f++) {
                uint64_t h = mprt_rng_bits(key, (uint64_t)(e0 + f));
                float v = (h >> 40) >= thr ? s[f] * scale : 0.0f;
                d[f] = acc ? d[f] + v : v;
            }
        }
    }
}

void mprt_dropout_forward(float *restrict out, const float *restrict x, int N, MprtDropShard sh,
                          float p, uint64_t seed, uint32_t layer, int64_t step, int training) {
    if (!training || p <= 0.0f) {
        int64_t n = (int64_t)N * sh.R * sh.F;
        for (int64_t i = 0; i < n; i++)
            out[i] = x[i];
        return;
    }
    dropout_apply(out, x, N, sh, p, seed, layer, step, 0);
}

void mprt_dropout_backward(float *restrict dx, const float *restrict dout, int N, MprtDropShard sh,
                           float p, uint64_t seed, uint32_t layer, int64_t step) {
    if (p <= 0.0f) {
        mprt_accumulate(dx, dout, (int64_t)N * sh.R * sh.F);
        return;
    }
    dropout_apply(dx, dout, N, sh, p, seed, layer, step, 1);
}
