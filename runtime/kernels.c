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
 *
 * Loops worth it run on the rank's thread pool (parallel.c): elementwise ops over contiguous
 * ranges of elements, row-wise ops (layernorm, the bias fill) over rows, and column sums
 * (the bias gradient, layernorm's dgamma and dbeta) over columns, each column summed over the
 * rows in row order. So every output element is computed exactly as by the serial loop, and
 * the results do not depend on the thread count.
 */
#include "internal.h"
#include "mprt.h"

#include "kernels_math.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

/* Elementwise work below this many elements runs on the calling thread alone: waking the
 * pool costs about as much as 16k elements of a cheap loop. */
#define GRAIN 16384

/* The operands of an elementwise or row-wise kernel, for its part function. */
typedef struct Ew {
    float *o;
    const float *a, *b;
    int64_t rows, cols;
    float f;
} Ew;

/* ─────────────────────────────── linear ─────────────────────────────── */

static void fill_rows_part(void *p, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Ew *e = p;
    for (int64_t n = lo; n < hi; n++) {
        float *restrict row = e->o + n * e->cols;
        for (int64_t j = 0; j < e->cols; j++)
            row[j] = e->a[j];
    }
}

void mprt_linear_forward(float *restrict out, const float *restrict x, const float *restrict W,
                         const float *restrict b, int N, int Din, int Dout, int add_bias) {
    float beta = 0.0f;
    if (add_bias && b) {
        Ew e = {.o = out, .a = b, .cols = Dout};
        mprt__parallel_for(N, GRAIN / Dout + 1, fill_rows_part, &e);
        beta = 1.0f;
    }
    mprt__sgemm(false, false, N, Dout, Din, 1.0f, x, Din, W, Dout, beta, out, Dout);
}

/* db[lo..hi) += Σ_n dout[n, lo..hi), rows in order; e->cols is the row length. */
static void sum_rows_part(void *p, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Ew *e = p;
    float *restrict db = e->o;
    for (int64_t n = 0; n < e->rows; n++) {
        const float *restrict row = e->a + n * e->cols;
        for (int64_t o = lo; o < hi; o++)
            db[o] += row[o];
    }
}

/* db[Dout] += Σ_n dout[n, :], split by columns (each column's sum keeps the row order). */
static void sum_rows(float *restrict db, const float *restrict dout, int N, int Dout) {
    Ew e = {.o = db, .a = dout, .rows = N, .cols = Dout};
    mprt__parallel_for(Dout, GRAIN / (N + 1) + 1, sum_rows_part, &e);
}

void mprt_linear_backward(float *restrict dx, float *restrict dW, float *restrict db,
                          const float *restrict dout, const float *restrict x,
                          const float *restrict W, int N, int Din, int Dout) {
    if (dx) mprt__sgemm(false, true, N, Din, Dout, 1.0f, dout, Dout, W, Dout, 1.0f, dx, Din);
    if (dW) mprt__sgemm(true, false, Din, Dout, N, 1.0f, x, Din, dout, Dout, 1.0f, dW, Dout);
    if (db) sum_rows(db, dout, N, Dout);
}

/* ──────────────────── elementwise: relu, gelu, tanh, add ──────────────────── */

/* Each kernel is a serial loop over a range (the MPRT__SIMD ones get an AVX2 clone) and a
 * part function that runs it on [lo, hi) of the operands in an Ew. */
#define EW_PART(name, call)                                                                        \
    static void name(void *p, int64_t lo, int64_t hi, int part) {                                  \
        (void)part;                                                                                \
        const Ew *e = p;                                                                           \
        int64_t n = hi - lo;                                                                       \
        call;                                                                                      \
    }

/* Runs part over n elements of the operands o, a, b (and the scalar f). */
static void ew(MprtParFn part, int64_t n, float *o, const float *a, const float *b, float f) {
    Ew e = {.o = o, .a = a, .b = b, .f = f};
    mprt__parallel_for(n, GRAIN, part, &e);
}

/* The unary ops of mprt_ew.h's table (relu, gelu, tanh, …), each expanded into a forward
 * and a backward loop, their part functions and the public mprt_NAME_forward/_backward
 * declared by the same table in mprt_kernels.h. The math is mprt_ew_NAME_fwd / _grad: this
 * file only says how to loop. `saved` names the backward's third operand (x or out). */
#define EW_UNARY_KERNELS(name, saved)                                                              \
    MPRT__SIMD static void name##_forward_loop(float *restrict out, const float *restrict x,       \
                                               int64_t n) {                                        \
        for (int64_t i = 0; i < n; i++)                                                            \
            out[i] = mprt_ew_##name##_fwd(x[i]);                                                   \
    }                                                                                              \
    MPRT__SIMD static void name##_backward_loop(float *restrict dx, const float *restrict dout,    \
                                                const float *restrict s, int64_t n) {              \
        for (int64_t i = 0; i < n; i++)                                                            \
            dx[i] += mprt_ew_##name##_grad(dout[i], s[i]);                                         \
    }                                                                                              \
    EW_PART(name##_fwd_part, name##_forward_loop(e->o + lo, e->a + lo, n))                         \
    EW_PART(name##_bwd_part, name##_backward_loop(e->o + lo, e->a + lo, e->b + lo, n))             \
    void mprt_##name##_forward(float *restrict out, const float *restrict x, int64_t n) {          \
        ew(name##_fwd_part, n, out, x, NULL, 0.0f);                                                \
    }                                                                                              \
    void mprt_##name##_backward(float *restrict dx, const float *restrict dout,                    \
                                const float *restrict saved, int64_t n) {                          \
        ew(name##_bwd_part, n, dx, dout, saved, 0.0f);                                             \
    }

MPRT_EW_UNARY(EW_UNARY_KERNELS)

static void fill_loop(float *restrict dst, int64_t n, float value) {
    for (int64_t i = 0; i < n; i++)
        dst[i] = value;
}

static void add_loop(float *restrict out, const float *restrict a, const float *restrict b,
                     int64_t n) {
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

static void accumulate_loop(float *restrict dst, const float *restrict src, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

EW_PART(fill_part, fill_loop(e->o + lo, n, e->f))
EW_PART(copy_part, memcpy(e->o + lo, e->a + lo, (size_t)n * sizeof(float)))
EW_PART(add_part, add_loop(e->o + lo, e->a + lo, e->b + lo, n))
EW_PART(accumulate_part, accumulate_loop(e->o + lo, e->a + lo, n))

void mprt_fill(float *restrict dst, int64_t n, float value) {
    ew(fill_part, n, dst, NULL, NULL, value);
}

void mprt_add_forward(float *restrict out, const float *restrict a, const float *restrict b,
                      int64_t n) {
    ew(add_part, n, out, a, b, 0.0f);
}

void mprt_accumulate(float *restrict dst, const float *restrict src, int64_t n) {
    ew(accumulate_part, n, dst, src, NULL, 0.0f);
}

static void zero_part(void *p, int64_t lo, int64_t hi, int part) {
    (void)part;
    memset((char *)p + lo, 0, (size_t)(hi - lo));
}

void mprt_zero(void *p, size_t bytes) {
    mprt__parallel_for((int64_t)bytes, (int64_t)GRAIN * 16, zero_part, p);
}

/* Two separate passes, so da == db (add(x, x)) correctly receives 2·dout. */
void mprt_add_backward(float *da, float *db, const float *dout, int64_t n) {
    if (da) mprt_accumulate(da, dout, n);
    if (db) mprt_accumulate(db, dout, n);
}

/* ─────────────────────────────── layernorm ─────────────────────────────── */

typedef struct Ln {
    float *out, *mean, *rstd, *dx, *dgamma, *dbeta;
    const float *x, *gamma, *beta, *dout, *cmean, *crstd;
    int64_t N, C;
    float eps;
} Ln;

/* Rows [lo, hi). Two passes over a row (mean, then centred variance): exact enough in float
 * for the widths we meet, and unlike E[x²] − E[x]² it cannot go negative. */
static void ln_forward_part(void *p, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Ln *l = p;
    int64_t C = l->C;
    for (int64_t n = lo; n < hi; n++) {
        const float *restrict xr = l->x + n * C;
        float *restrict yr = l->out + n * C;
        const float *restrict gamma = l->gamma, *restrict beta = l->beta;
        float s = 0.0f;
        for (int64_t c = 0; c < C; c++)
            s += xr[c];
        float mu = s / (float)C;
        float v = 0.0f;
        for (int64_t c = 0; c < C; c++)
            v += (xr[c] - mu) * (xr[c] - mu);
        float rs = 1.0f / sqrtf(v / (float)C + l->eps);
        for (int64_t c = 0; c < C; c++)
            yr[c] = (xr[c] - mu) * rs * gamma[c] + beta[c];
        l->mean[n] = mu;
        l->rstd[n] = rs;
    }
}

void mprt_layernorm_forward(float *restrict out, float *restrict mean, float *restrict rstd,
                            const float *restrict x, const float *restrict gamma,
                            const float *restrict beta, int N, int C, float eps) {
    Ln l = {.out = out,
            .mean = mean,
            .rstd = rstd,
            .x = x,
            .gamma = gamma,
            .beta = beta,
            .C = C,
            .eps = eps};
    mprt__parallel_for(N, GRAIN / C + 1, ln_forward_part, &l);
}

/* dx for rows [lo, hi): dx += rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dout·gamma. */
static void ln_backward_dx_part(void *p, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Ln *l = p;
    int64_t C = l->C;
    const float *restrict gamma = l->gamma;
    for (int64_t n = lo; n < hi; n++) {
        const float *restrict xr = l->x + n * C;
        const float *restrict gr = l->dout + n * C;
        float *restrict dr = l->dx + n * C;
        float mu = l->cmean[n], rs = l->crstd[n];
        float sg = 0.0f, sgx = 0.0f; /* Σ g, Σ g·x̂ */
        for (int64_t c = 0; c < C; c++) {
            float xh = (xr[c] - mu) * rs;
            float g = gr[c] * gamma[c];
            sg += g;
            sgx += g * xh;
        }
        float mg = sg / (float)C, mgx = sgx / (float)C;
        for (int64_t c = 0; c < C; c++) {
            float xh = (xr[c] - mu) * rs;
            dr[c] += rs * (gr[c] * gamma[c] - mg - xh * mgx);
        }
    }
}

/* dgamma, dbeta for columns [lo, hi), each summed over all rows in row order. */
static void ln_backward_dparam_part(void *p, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Ln *l = p;
    int64_t C = l->C;
    float *restrict dgamma = l->dgamma, *restrict dbeta = l->dbeta;
    for (int64_t n = 0; n < l->N; n++) {
        const float *restrict xr = l->x + n * C;
        const float *restrict gr = l->dout + n * C;
        float mu = l->cmean[n], rs = l->crstd[n];
        if (dgamma)
            for (int64_t c = lo; c < hi; c++)
                dgamma[c] += gr[c] * ((xr[c] - mu) * rs);
        if (dbeta)
            for (int64_t c = lo; c < hi; c++)
                dbeta[c] += gr[c];
    }
}

void mprt_layernorm_backward(float *restrict dx, float *restrict dgamma, float *restrict dbeta,
                             const float *restrict dout, const float *restrict x,
                             const float *restrict mean, const float *restrict rstd,
                             const float *restrict gamma, int N, int C) {
    Ln l = {.dx = dx,
            .dgamma = dgamma,
            .dbeta = dbeta,
            .x = x,
            .gamma = gamma,
            .dout = dout,
            .cmean = mean,
            .crstd = rstd,
            .N = N,
            .C = C};
    if (dgamma || dbeta) mprt__parallel_for(C, GRAIN / (N + 1) + 1, ln_backward_dparam_part, &l);
    if (dx) mprt__parallel_for(N, GRAIN / C + 1, ln_backward_dx_part, &l);
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

typedef struct Drop {
    float *dst;
    const float *src;
    MprtDropShard sh;
    float p;
    uint64_t seed;
    uint32_t layer;
    int64_t step;
    int acc;
} Drop;

/* dst[i] (=, or += when acc) src[i]·keep·scale over samples [lo, hi) of the local shard. */
static void dropout_part(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Drop *q = ctx;
    MprtDropShard sh = q->sh;
    uint64_t thr = drop_threshold(q->p);
    float scale = 1.0f / (1.0f - q->p);
    for (int64_t n = lo; n < hi; n++) {
        MprtRng key = drop_key(q->seed, q->layer, q->step, sh.n0 + n);
        for (int r = 0; r < sh.R; r++) {
            size_t off = ((size_t)n * (size_t)sh.R + (size_t)r) * (size_t)sh.F;
            int64_t e0 = (int64_t)(sh.r0 + r) * sh.F_global + sh.f0;
            const float *restrict s = q->src + off;
            float *restrict d = q->dst + off;
            for (int f = 0; f < sh.F; f++) {
                uint64_t h = mprt_rng_bits(key, (uint64_t)(e0 + f));
                float v = (h >> 40) >= thr ? s[f] * scale : 0.0f;
                d[f] = q->acc ? d[f] + v : v;
            }
        }
    }
}

static void dropout_apply(float *dst, const float *src, int N, MprtDropShard sh, float p,
                          uint64_t seed, uint32_t layer, int64_t step, int acc) {
    Drop q = {dst, src, sh, p, seed, layer, step, acc};
    int64_t per = (int64_t)sh.R * sh.F;
    mprt__parallel_for(N, GRAIN / 4 / (per + 1) + 1, dropout_part, &q);
}

static int eval_mode; /* mprt_kernels_eval */
void mprt_kernels_eval(int on) { eval_mode = on; }
int mprt__kernels_evaluating(void) { return eval_mode; }

void mprt_dropout_forward(float *restrict out, const float *restrict x, int N, MprtDropShard sh,
                          float p, uint64_t seed, uint32_t layer, int64_t step, int training) {
    if (!training || p <= 0.0f || eval_mode) {
        ew(copy_part, (int64_t)N * sh.R * sh.F, out, x, NULL, 0.0f);
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
