/*
 * test_cu_kernels.c: every kernel of mprt_cuda against its CPU twin in mprt (runtime/
 * mprt_kernels.h, itself tested against double-precision references and finite differences
 * in tests/kernels/), on the same random inputs, forward and backward.
 *
 * Tolerance: max |gpu − cpu| ≤ tol · max(1, max |cpu|), tol = 1e-4 (1e-3 for the GEMMs run
 * again with TF32). Dropout masks, maxpool and the elementwise table's ops (relu, gelu,
 * tanh, …: runtime/mprt_ew.h), the bf16 conversions and a bf16 trainer's working weights
 * (cu_bf16.c: registered, uploaded by range, refreshed) must agree bit for bit; the bf16 GEMM
 * (bf16 operands, fp32 sums) is checked against a double reference on the same bf16 values.
 * Gradient buffers start at 0.25 on both sides, so the accumulation rule (+=) is checked too.
 *
 * Without a CUDA device the test prints "SKIPPED: no CUDA device" and exits 77, which ctest
 * reports as skipped (SKIP_RETURN_CODE): it never passes without having run.
 */
#include "mprt.h"
#include "mprt_cuda.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;
static double tol = 1e-4;

/* ─────────────────────────────── helpers ─────────────────────────────── */

static uint64_t rng_state = 0x1234567ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 40) / 8388608.0 - 1.0);
}

static float *hrand(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static float *hfill(int64_t n, float v) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++)
        p[i] = v;
    return p;
}

static void *dcopy(const void *h, size_t bytes) {
    void *d = mprt_cu_malloc(bytes);
    mprt_cu_upload(d, h, bytes);
    return d;
}
static float *dev(const float *h, int64_t n) { return dcopy(h, (size_t)n * sizeof(float)); }

/* Compares n floats of device buffer d with the host reference. */
static void cmp(const char *what, const float *d, const float *ref, int64_t n, double t) {
    float *g = malloc((size_t)(n > 0 ? n : 1) * sizeof *g);
    mprt_cu_download(g, d, (size_t)n * sizeof(float));
    double maxref = 1.0, maxdiff = 0.0;
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = fabs((double)ref[i]), df = fabs((double)g[i] - (double)ref[i]);
        if (r > maxref) maxref = r;
        if (!(df <= maxdiff)) maxdiff = df, worst = i;
    }
    checks++;
    if (!(maxdiff <= t * maxref)) {
        failures++;
        printf("FAIL %s: max |gpu - cpu| = %.3g at %lld (gpu %.9g, cpu %.9g), allowed %.3g\n", what,
               maxdiff, (long long)worst, (double)g[worst], (double)ref[worst], t * maxref);
    }
    free(g);
}

static void cmp_exact_bytes(const char *what, const void *d, const void *ref, size_t bytes) {
    void *g = malloc(bytes ? bytes : 1);
    mprt_cu_download(g, d, bytes);
    checks++;
    if (memcmp(g, ref, bytes) != 0) {
        failures++;
        printf("FAIL %s: not bit-identical to the CPU\n", what);
    }
    free(g);
}

/* Two device buffers of the same bytes: a kernel's two entries on the same values. */
static void cmp_dev_exact(const char *what, const void *d, const void *d2, size_t bytes) {
    void *ref = malloc(bytes ? bytes : 1);
    mprt_cu_download(ref, d2, bytes);
    cmp_exact_bytes(what, d, ref, bytes);
    free(ref);
}

static void cmp_scalar(const char *what, double gpu, double cpu, double t) {
    checks++;
    if (!(fabs(gpu - cpu) <= t * fmax(1.0, fabs(cpu)))) {
        failures++;
        printf("FAIL %s: gpu %.12g, cpu %.12g\n", what, gpu, cpu);
    }
}

/* ─────────────────────────────── linear ─────────────────────────────── */

static void test_linear(int N, int Din, int Dout, double t) {
    float *x = hrand((int64_t)N * Din), *W = hrand((int64_t)Din * Dout), *b = hrand(Dout);
    float *dout = hrand((int64_t)N * Dout), *out = hrand((int64_t)N * Dout);
    float *dx = hfill((int64_t)N * Din, 0.25f), *dW = hfill((int64_t)Din * Dout, 0.25f);
    float *db = hfill(Dout, 0.25f);
    float *gx = dev(x, (int64_t)N * Din), *gW = dev(W, (int64_t)Din * Dout), *gb = dev(b, Dout);
    float *gdout = dev(dout, (int64_t)N * Dout), *gout = dev(out, (int64_t)N * Dout);
    float *gdx = dev(dx, (int64_t)N * Din), *gdW = dev(dW, (int64_t)Din * Dout);
    float *gdb = dev(db, Dout);
    for (int add_bias = 0; add_bias < 2; add_bias++) {
        mprt_linear_forward(out, x, W, b, N, Din, Dout, add_bias);
        mprt_cu_linear_forward(gout, gx, gW, gb, N, Din, Dout, add_bias);
        cmp(add_bias ? "linear forward (bias)" : "linear forward", gout, out, (int64_t)N * Dout, t);
    }
    mprt_linear_backward(dx, dW, db, dout, x, W, N, Din, Dout);
    mprt_cu_linear_backward(gdx, gdW, gdb, gdout, gx, gW, N, Din, Dout);
    cmp("linear dx", gdx, dx, (int64_t)N * Din, t);
    cmp("linear dW", gdW, dW, (int64_t)Din * Dout, t);
    cmp("linear db", gdb, db, Dout, t);
    float *bufs[] = {x, W, b, dout, out, dx, dW, db};
    float *gbufs[] = {gx, gW, gb, gdout, gout, gdx, gdW, gdb};
    for (int i = 0; i < 8; i++)
        free(bufs[i]), mprt_cu_free(gbufs[i]);
}

/* A bf16 trainer's linear forward: bf16 weights and bias, an input of bf16 values packed into
 * scratch, a bf16 GEMM with fp32 sums, against the CPU's f32 forward on the same values (what
 * the C bf16 trainer computes): the f32 tolerance. The scratch holds exactly the packed input. */
static void test_linear_bf16(int N, int Din, int Dout) {
    int64_t nx = (int64_t)N * Din, nw = (int64_t)Din * Dout, no = (int64_t)N * Dout;
    float *x = hrand(nx), *W = hrand(nw), *b = hrand(Dout), *out = hrand(no);
    uint16_t *hx = malloc((size_t)nx * 2), *hW = malloc((size_t)nw * 2),
             *hb = malloc(2 * (size_t)Dout);
    mprt_bf16_pack(hx, x, nx), mprt_bf16_pack(hW, W, nw), mprt_bf16_pack(hb, b, Dout);
    mprt_bf16_unpack(x, hx, nx), mprt_bf16_unpack(W, hW, nw), mprt_bf16_unpack(b, hb, Dout);
    float *gx = dev(x, nx), *gout = dev(out, no);
    uint16_t *gW = dcopy(hW, (size_t)nw * 2), *gb = dcopy(hb, 2 * (size_t)Dout);
    uint16_t *gxh = mprt_cu_malloc((size_t)nx * 2);
    float *gout2 = dev(out, no);
    for (int add_bias = 0; add_bias < 2; add_bias++) {
        mprt_linear_forward(out, x, W, b, N, Din, Dout, add_bias);
        mprt_cu_linear_forward_bf16(gout, gx, gW, gb, N, Din, Dout, add_bias, gxh);
        cmp(add_bias ? "linear forward bf16 (bias)" : "linear forward bf16", gout, out, no, tol);
        cmp_exact_bytes("linear forward bf16: the packed input", gxh, hx, (size_t)nx * 2);
        /* a 16-bit activation as stored: the GEMM's operand itself, the same bits out */
        mprt_cu_linear_forward_bf16_packed(gout2, gxh, gW, gb, N, Din, Dout, add_bias);
        cmp_dev_exact("linear forward bf16 from 16-bit x", gout2, gout, (size_t)no * 4);
    }
    free(x), free(W), free(b), free(out), free(hx), free(hW), free(hb);
    mprt_cu_free(gx), mprt_cu_free(gout), mprt_cu_free(gW), mprt_cu_free(gb), mprt_cu_free(gxh);
    mprt_cu_free(gout2);
}

/* ─────────────────────────────── elementwise ─────────────────────────────── */

typedef void (*Unary)(float *restrict, const float *restrict, int64_t);
typedef void (*UnaryBwd)(float *restrict, const float *restrict, const float *restrict, int64_t);
typedef void (*CuUnary)(float *, const float *, int64_t);
typedef void (*CuUnaryBwd)(float *, const float *, const float *, int64_t);

/* One row of runtime/mprt_ew.h's table. Both sides expand the same inline functions and
 * neither fuses a multiply-add (the CPU has no FMA enabled, runtime/cuda builds with
 * --fmad=false), so the GPU must give the CPU's bits: tolerance 0. The backward reads the
 * forward output (X(tanh, out)) or input (X(relu, x)). */
static void test_unary(const char *name, Unary f, UnaryBwd b, CuUnary cf, CuUnaryBwd cb,
                       bool bwd_from_out) {
    int64_t n = 3001;
    float *x = hrand(n), *out = hrand(n), *dout = hrand(n), *dx = hfill(n, 0.25f);
    for (int64_t i = 0; i < n; i++)
        x[i] *= 4.0f;
    float *gx = dev(x, n), *gout = dev(out, n), *gdout = dev(dout, n), *gdx = dev(dx, n);
    char what[64];
    f(out, x, n);
    cf(gout, gx, n);
    snprintf(what, sizeof what, "%s forward", name);
    cmp(what, gout, out, n, 0.0);
    b(dx, dout, bwd_from_out ? out : x, n);
    cb(gdx, gdout, bwd_from_out ? gout : gx, n);
    snprintf(what, sizeof what, "%s backward", name);
    cmp(what, gdx, dx, n, 0.0);
    free(x), free(out), free(dout), free(dx);
    mprt_cu_free(gx), mprt_cu_free(gout), mprt_cu_free(gdout), mprt_cu_free(gdx);
}

#define BWD_FROM_OUT_x false
#define BWD_FROM_OUT_out true
#define TEST_UNARY(name, saved)                                                                    \
    test_unary(#name, mprt_##name##_forward, mprt_##name##_backward, mprt_cu_##name##_forward,     \
               mprt_cu_##name##_backward, BWD_FROM_OUT_##saved);

static void test_add_fill(void) {
    int64_t n = 1000;
    float *a = hrand(n), *b = hrand(n), *out = hrand(n), *d = hrand(n), *acc = hfill(n, 0.25f);
    float *ga = dev(a, n), *gb = dev(b, n), *gout = dev(out, n), *gd = dev(d, n);
    float *gacc = dev(acc, n);
    mprt_add_forward(out, a, b, n);
    mprt_cu_add_forward(gout, ga, gb, n);
    cmp("add forward", gout, out, n, tol);
    mprt_add_backward(acc, acc, d, n); /* add(x, x): the same buffer gets 2·dout */
    mprt_cu_add_backward(gacc, gacc, gd, n);
    cmp("add backward (da == db)", gacc, acc, n, tol);
    mprt_fill(out, n, 1.5f);
    mprt_cu_fill(gout, n, 1.5f);
    cmp("fill", gout, out, n, 0.0);
    free(a), free(b), free(out), free(d), free(acc);
    mprt_cu_free(ga), mprt_cu_free(gb), mprt_cu_free(gout), mprt_cu_free(gd), mprt_cu_free(gacc);
}

/* ─────────────────────────────── layernorm ─────────────────────────────── */

static void test_layernorm(int N, int C) {
    int64_t n = (int64_t)N * C;
    float *x = hrand(n), *g = hrand(C), *be = hrand(C), *out = hrand(n), *mean = hrand(N);
    float *rstd = hrand(N), *dout = hrand(n), *dx = hfill(n, 0.25f), *dg = hfill(C, 0.25f);
    float *dbe = hfill(C, 0.25f);
    float *gx = dev(x, n), *gg = dev(g, C), *gbe = dev(be, C), *gout = dev(out, n);
    float *gmean = dev(mean, N), *grstd = dev(rstd, N), *gdout = dev(dout, n);
    float *gdx = dev(dx, n), *gdg = dev(dg, C), *gdbe = dev(dbe, C);
    mprt_layernorm_forward(out, mean, rstd, x, g, be, N, C, 1e-5f);
    mprt_cu_layernorm_forward(gout, gmean, grstd, gx, gg, gbe, N, C, 1e-5f);
    cmp("layernorm forward", gout, out, n, tol);
    cmp("layernorm mean", gmean, mean, N, tol);
    cmp("layernorm rstd", grstd, rstd, N, tol);
    mprt_layernorm_backward(dx, dg, dbe, dout, x, mean, rstd, g, N, C);
    mprt_cu_layernorm_backward(gdx, gdg, gdbe, gdout, gx, gmean, grstd, gg, N, C);
    cmp("layernorm dx", gdx, dx, n, tol);
    cmp("layernorm dgamma", gdg, dg, C, tol);
    cmp("layernorm dbeta", gdbe, dbe, C, tol);
    float *h[] = {x, g, be, out, mean, rstd, dout, dx, dg, dbe};
    float *d[] = {gx, gg, gbe, gout, gmean, grstd, gdout, gdx, gdg, gdbe};
    for (int i = 0; i < 10; i++)
        free(h[i]), mprt_cu_free(d[i]);
}

/* ─────────────────────────────── dropout ─────────────────────────────── */

static void test_dropout(void) {
    int N = 4;
    MprtDropShard sh = {.n0 = 7, .R = 3, .r0 = 2, .F = 5, .F_global = 10, .f0 = 5};
    int64_t n = (int64_t)N * sh.R * sh.F;
    float *x = hrand(n), *out = hrand(n), *dx = hfill(n, 0.25f);
    float *gx = dev(x, n), *gout = dev(out, n), *gdx = dev(dx, n);
    for (int training = 0; training < 2; training++) {
        mprt_dropout_forward(out, x, N, sh, 0.3f, 42, 3, 11, training);
        mprt_cu_dropout_forward(gout, gx, N, sh, 0.3f, 42, 3, 11, training);
        cmp_exact_bytes(training ? "dropout forward" : "dropout forward (eval)", gout, out,
                        (size_t)n * sizeof(float));
    }
    mprt_dropout_backward(dx, x, N, sh, 0.3f, 42, 3, 11);
    mprt_cu_dropout_backward(gdx, gx, N, sh, 0.3f, 42, 3, 11);
    cmp_exact_bytes("dropout backward", gdx, dx, (size_t)n * sizeof(float));
    free(x), free(out), free(dx);
    mprt_cu_free(gx), mprt_cu_free(gout), mprt_cu_free(gdx);
}

/* ─────────────────────────────── conv2d, maxpool2d ─────────────────────────────── */

static void test_conv(int N, int C, int H, int Wd, int O, int K, int S, int P) {
    int Ho = MPRT_CONV_OUT(H, K, S, P), Wo = MPRT_CONV_OUT(Wd, K, S, P);
    int64_t nx = (int64_t)N * C * H * Wd, nw = (int64_t)O * C * K * K;
    int64_t no = (int64_t)N * O * Ho * Wo, ns = MPRT_CONV2D_SCRATCH(C, K, Ho, Wo);
    float *x = hrand(nx), *W = hrand(nw), *b = hrand(O), *out = hrand(no), *dout = hrand(no);
    float *scr = hrand(ns), *dx = hfill(nx, 0.25f), *dW = hfill(nw, 0.25f), *db = hfill(O, 0.25f);
    float *gx = dev(x, nx), *gW = dev(W, nw), *gb = dev(b, O), *gout = dev(out, no);
    float *gdout = dev(dout, no), *gscr = dev(scr, ns), *gdx = dev(dx, nx), *gdW = dev(dW, nw);
    float *gdb = dev(db, O);
    mprt_conv2d_forward(out, x, W, b, scr, N, C, H, Wd, O, K, S, P, 1);
    mprt_cu_conv2d_forward(gout, gx, gW, gb, gscr, N, C, H, Wd, O, K, S, P, 1);
    cmp("conv2d forward", gout, out, no, tol);
    mprt_conv2d_backward(dx, dW, db, dout, x, W, scr, N, C, H, Wd, O, K, S, P);
    mprt_cu_conv2d_backward(gdx, gdW, gdb, gdout, gx, gW, gscr, N, C, H, Wd, O, K, S, P);
    cmp("conv2d dx", gdx, dx, nx, tol);
    cmp("conv2d dW", gdW, dW, nw, tol);
    cmp("conv2d db", gdb, db, O, tol);
    float *h[] = {x, W, b, out, dout, scr, dx, dW, db};
    float *d[] = {gx, gW, gb, gout, gdout, gscr, gdx, gdW, gdb};
    for (int i = 0; i < 9; i++)
        free(h[i]), mprt_cu_free(d[i]);
}
/* The conv forward from a 16-bit x (xh, a bf16 trainer's activation as stored) after
 * test_conv_bf16's last call (bias on): the same bits in out; a pointwise one reads xh itself
 * and leaves the scratch alone. d: C, H, Wd, O, K, S, P. */
static void test_conv_bf16_packed(const float *gout, const uint16_t *gxh, const uint16_t *gW,
                                  const uint16_t *gb, float *gscr, int N, const int *d) {
    int C = d[0], H = d[1], Wd = d[2], O = d[3], K = d[4], S = d[5], P = d[6];
    int64_t no = (int64_t)N * O * MPRT_CONV_OUT(H, K, S, P) * MPRT_CONV_OUT(Wd, K, S, P);
    int64_t ns = MPRT_CONV2D_SCRATCH(C, K, MPRT_CONV_OUT(H, K, S, P), MPRT_CONV_OUT(Wd, K, S, P));
    float *gout2 = mprt_cu_malloc((size_t)no * sizeof(float)), *fill = hfill(ns, 3.0f);
    mprt_cu_upload(gscr, fill, (size_t)ns * sizeof(float));
    mprt_cu_conv2d_forward_bf16_packed(gout2, gxh, gW, gb, (uint16_t *)gscr, N, C, H, Wd, O, K, S,
                                       P, 1);
    cmp_dev_exact("conv2d forward bf16 from 16-bit x", gout2, gout, (size_t)no * sizeof(float));
    if (K == 1 && S == 1 && P == 0)
        cmp_exact_bytes("conv2d pointwise from 16-bit x: scratch untouched", gscr, fill,
                        (size_t)ns * sizeof(float));
    free(fill), mprt_cu_free(gout2);
}

/* A bf16 trainer's conv forward: bf16 weights and bias, each sample's col packed as bf16 into
 * the scratch, a bf16 GEMM with fp32 sums, against the CPU's f32 forward on the same values;
 * the scratch is the f32 forward's size (MPRT_CONV2D_SCRATCH) and its second half untouched. */
static void test_conv_bf16(int N, int C, int H, int Wd, int O, int K, int S, int P) {
    int Ho = MPRT_CONV_OUT(H, K, S, P), Wo = MPRT_CONV_OUT(Wd, K, S, P);
    int64_t nx = (int64_t)N * C * H * Wd, nw = (int64_t)O * C * K * K;
    int64_t no = (int64_t)N * O * Ho * Wo, ns = MPRT_CONV2D_SCRATCH(C, K, Ho, Wo);
    float *x = hrand(nx), *W = hrand(nw), *b = hrand(O), *out = hrand(no), *scr = hrand(ns);
    uint16_t *hx = malloc((size_t)nx * 2), *hW = malloc((size_t)nw * 2),
             *hb = malloc(2 * (size_t)O);
    mprt_bf16_pack(hx, x, nx), mprt_bf16_pack(hW, W, nw), mprt_bf16_pack(hb, b, O);
    mprt_bf16_unpack(x, hx, nx), mprt_bf16_unpack(W, hW, nw), mprt_bf16_unpack(b, hb, O);
    float *gx = dev(x, nx), *gout = dev(out, no), *gscr = dev(scr, ns);
    uint16_t *gW = dcopy(hW, (size_t)nw * 2), *gb = dcopy(hb, 2 * (size_t)O);
    uint16_t *gxh = dcopy(hx, (size_t)nx * 2);
    int64_t half = (ns + 1) / 2; /* floats the bf16 col may use */
    float *rest = malloc((size_t)(ns - half + 1) * sizeof *rest);
    memcpy(rest, scr + half, (size_t)(ns - half) * sizeof *rest);
    for (int add_bias = 0; add_bias < 2; add_bias++) {
        mprt_conv2d_forward(out, x, W, b, scr, N, C, H, Wd, O, K, S, P, add_bias);
        mprt_cu_conv2d_forward_bf16(gout, gx, gW, gb, (uint16_t *)gscr, N, C, H, Wd, O, K, S, P,
                                    add_bias);
        cmp(add_bias ? "conv2d forward bf16 (bias)" : "conv2d forward bf16", gout, out, no, tol);
    }
    cmp_exact_bytes("conv2d forward bf16: the scratch's second half", gscr + half, rest,
                    (size_t)(ns - half) * sizeof *rest);
    test_conv_bf16_packed(gout, gxh, gW, gb, gscr, N, (int[]){C, H, Wd, O, K, S, P});
    free(rest), free(x), free(W), free(b), free(out), free(scr), free(hx), free(hW), free(hb);
    mprt_cu_free(gx), mprt_cu_free(gout), mprt_cu_free(gscr), mprt_cu_free(gW), mprt_cu_free(gb);
    mprt_cu_free(gxh);
}

static void test_maxpool(int planes, int H, int Wd, int K, int S) {
    int Ho = MPRT_CONV_OUT(H, K, S, 0), Wo = MPRT_CONV_OUT(Wd, K, S, 0);
    int64_t nx = (int64_t)planes * H * Wd, no = (int64_t)planes * Ho * Wo;
    float *x = hrand(nx), *out = hrand(no), *dout = hrand(no), *dx = hfill(nx, 0.25f);
    for (int64_t i = 0; i < nx; i += 5)
        x[i] = 0.5f; /* ties: the first maximum must win on both */
    int32_t *am = calloc((size_t)no, sizeof *am);
    float *gx = dev(x, nx), *gout = dev(out, no), *gdout = dev(dout, no), *gdx = dev(dx, nx);
    int32_t *gam = mprt_cu_malloc((size_t)no * sizeof *gam);
    mprt_maxpool2d_forward(out, am, x, planes, H, Wd, K, S);
    mprt_cu_maxpool2d_forward(gout, gam, gx, planes, H, Wd, K, S);
    cmp_exact_bytes("maxpool forward", gout, out, (size_t)no * sizeof(float));
    cmp_exact_bytes("maxpool argmax", gam, am, (size_t)no * sizeof(int32_t));
    mprt_maxpool2d_backward(dx, dout, am, planes, H, Wd, K, S);
    mprt_cu_maxpool2d_backward(gdx, gdout, gam, planes, H, Wd, K, S);
    cmp("maxpool backward", gdx, dx, nx, tol);
    free(x), free(out), free(dout), free(dx), free(am);
    mprt_cu_free(gx), mprt_cu_free(gout), mprt_cu_free(gdout), mprt_cu_free(gdx);
    mprt_cu_free(gam);
}

/* ─────────────────────────────── embedding ─────────────────────────────── */

static void test_embedding(void) {
    int N = 3, T = 5, M = N * T, V_local = 6, v0 = 3, D = 7, Ppos = 6;
    int32_t ids[15];
    for (int m = 0; m < M; m++)
        ids[m] = (m * 7) % 12; /* some inside [3, 9), some outside, repeats */
    float *W = hrand((int64_t)V_local * D), *pos = hrand((int64_t)Ppos * D);
    float *out = hrand((int64_t)M * D), *dout = hrand((int64_t)M * D);
    float *dW = hfill((int64_t)V_local * D, 0.25f), *dpos = hfill((int64_t)Ppos * D, 0.25f);
    int32_t *gids = dcopy(ids, sizeof ids);
    float *gW = dev(W, (int64_t)V_local * D), *gpos = dev(pos, (int64_t)Ppos * D);
    float *gout = dev(out, (int64_t)M * D), *gdout = dev(dout, (int64_t)M * D);
    float *gdW = dev(dW, (int64_t)V_local * D), *gdpos = dev(dpos, (int64_t)Ppos * D);
    mprt_embedding_forward(out, ids, W, pos, M, T, V_local, v0, D, 1);
    mprt_cu_embedding_forward(gout, gids, gW, gpos, M, T, V_local, v0, D, 1);
    cmp("embedding forward", gout, out, (int64_t)M * D, tol);
    mprt_embedding_backward(dW, dpos, dout, ids, M, T, V_local, v0, D);
    mprt_cu_embedding_backward(gdW, gdpos, gdout, gids, M, T, V_local, v0, D);
    cmp("embedding dW", gdW, dW, (int64_t)V_local * D, tol);
    cmp("embedding dpos", gdpos, dpos, (int64_t)Ppos * D, tol);
    free(W), free(pos), free(out), free(dout), free(dW), free(dpos);
    mprt_cu_free(gids), mprt_cu_free(gW), mprt_cu_free(gpos), mprt_cu_free(gout);
    mprt_cu_free(gdout), mprt_cu_free(gdW), mprt_cu_free(gdpos);
}

/* ─────────────────────────────── attention ─────────────────────────────── */

enum { AW_WQ, AW_BQ, AW_WK, AW_BK, AW_WV, AW_BV, AW_WO, AW_BO, AW__N };

static void test_attention(int N, int T, int D, int Hl, int hd, int causal) {
    int Dl = Hl * hd;
    int64_t sizes[AW__N] = {(int64_t)D * Dl, Dl, (int64_t)D * Dl, Dl,
                            (int64_t)D * Dl, Dl, (int64_t)Dl * D, D};
    int64_t nx = (int64_t)N * T * D, nst = MPRT_ATTENTION_STASH(N, T, Dl, Hl);
    int64_t nsc = MPRT_ATTENTION_SCRATCH(N, T, Dl), gsc = MPRT_CU_ATTENTION_SCRATCH(N, T, Dl);
    float *hw[AW__N], *hg[AW__N], *dw[AW__N], *dg[AW__N];
    for (int i = 0; i < AW__N; i++) {
        hw[i] = hrand(sizes[i]), hg[i] = hfill(sizes[i], 0.25f);
        dw[i] = dev(hw[i], sizes[i]), dg[i] = dev(hg[i], sizes[i]);
    }
    MprtAttnW w = {hw[0], hw[1], hw[2], hw[3], hw[4], hw[5], hw[6], hw[7]};
    MprtAttnW gw = {dw[0], dw[1], dw[2], dw[3], dw[4], dw[5], dw[6], dw[7]};
    MprtAttnG g = {hg[0], hg[1], hg[2], hg[3], hg[4], hg[5], hg[6], hg[7]};
    MprtAttnG gg = {dg[0], dg[1], dg[2], dg[3], dg[4], dg[5], dg[6], dg[7]};
    float *x = hrand(nx), *out = hrand(nx), *dout = hrand(nx), *dx = hfill(nx, 0.25f);
    float *st = hrand(nst), *sc = hrand(nsc);
    float *gx = dev(x, nx), *gout = dev(out, nx), *gdout = dev(dout, nx), *gdx = dev(dx, nx);
    float *gst = mprt_cu_malloc((size_t)nst * sizeof(float));
    float *gscr = mprt_cu_malloc((size_t)gsc * sizeof(float));
    mprt_attention_forward(out, st, x, w, N, T, D, Hl, hd, causal, 1);
    mprt_cu_attention_forward(gout, gst, gx, gw, N, T, D, Hl, hd, causal, 1);
    cmp("attention forward", gout, out, nx, tol);
    cmp("attention stash (q, k, v, y, P)", gst, st, nst, tol);
    mprt_attention_backward(dx, g, dout, x, st, sc, w, N, T, D, Hl, hd, causal);
    mprt_cu_attention_backward(gdx, gg, gdout, gx, gst, gscr, gw, N, T, D, Hl, hd, causal);
    cmp("attention dx", gdx, dx, nx, tol);
    static const char *names[AW__N] = {"dWq", "dbq", "dWk", "dbk", "dWv", "dbv", "dWo", "dbo"};
    for (int i = 0; i < AW__N; i++) {
        char what[64];
        snprintf(what, sizeof what, "attention %s%s", names[i], causal ? " (causal)" : "");
        cmp(what, dg[i], hg[i], sizes[i], tol);
        free(hw[i]), free(hg[i]), mprt_cu_free(dw[i]), mprt_cu_free(dg[i]);
    }
    free(x), free(out), free(dout), free(dx), free(st), free(sc);
    mprt_cu_free(gx), mprt_cu_free(gout), mprt_cu_free(gdout), mprt_cu_free(gdx);
    mprt_cu_free(gst), mprt_cu_free(gscr);
}

/* A bf16 trainer's attention forward: q, k, v from the bf16 weights and the input packed into
 * scratch (bf16 GEMMs, fp32 sums), the rest f32 with f32 wo and bo (q, k and v's f32 pointers
 * NULL: they must not be read), against the CPU's f32 forward on the same bf16 values. */
static void test_attention_bf16(int N, int T, int D, int Hl, int hd, int causal) {
    int Dl = Hl * hd;
    int64_t sizes[AW__N] = {(int64_t)D * Dl, Dl, (int64_t)D * Dl, Dl,
                            (int64_t)D * Dl, Dl, (int64_t)Dl * D, D};
    int64_t nx = (int64_t)N * T * D, nst = MPRT_ATTENTION_STASH(N, T, Dl, Hl);
    float *hw[AW__N], *dw[AW__N];
    uint16_t *hh[AW__N], *dh[AW__N];
    for (int i = 0; i < AW__N; i++) {
        hw[i] = hrand(sizes[i]), hh[i] = malloc((size_t)sizes[i] * 2);
        mprt_bf16_pack(hh[i], hw[i], sizes[i]), mprt_bf16_unpack(hw[i], hh[i], sizes[i]);
        dw[i] = dev(hw[i], sizes[i]), dh[i] = dcopy(hh[i], (size_t)sizes[i] * 2);
    }
    MprtAttnW w = {hw[0], hw[1], hw[2], hw[3], hw[4], hw[5], hw[6], hw[7]};
    MprtAttnW gw = {NULL, NULL, NULL, NULL, NULL, NULL, dw[6], dw[7]};
    MprtCuAttnWh gh = {dh[0], dh[1], dh[2], dh[3], dh[4], dh[5]};
    float *x = hrand(nx), *out = hrand(nx), *st = hrand(nst);
    uint16_t *hx = malloc((size_t)nx * 2);
    mprt_bf16_pack(hx, x, nx), mprt_bf16_unpack(x, hx, nx);
    float *gx = dev(x, nx), *gout = dev(out, nx);
    float *gst = mprt_cu_malloc((size_t)nst * sizeof(float));
    uint16_t *gxh = mprt_cu_malloc((size_t)nx * 2);
    mprt_attention_forward(out, st, x, w, N, T, D, Hl, hd, causal, 1);
    mprt_cu_attention_forward_bf16(gout, gst, gx, gw, gh, N, T, D, Hl, hd, causal, 1, gxh);
    cmp("attention forward bf16", gout, out, nx, tol);
    cmp("attention bf16 stash (q, k, v, y, P)", gst, st, nst, tol);
    cmp_exact_bytes("attention bf16: the packed input", gxh, hx, (size_t)nx * 2);
    /* from the 16-bit input as stored: the same bits in out and the stash */
    float *gout2 = dev(out, nx), *gst2 = mprt_cu_malloc((size_t)nst * sizeof(float));
    mprt_cu_attention_forward_bf16_packed(gout2, gst2, gxh, gw, gh, N, T, D, Hl, hd, causal, 1);
    cmp_dev_exact("attention forward bf16 from 16-bit x", gout2, gout, (size_t)nx * sizeof(float));
    cmp_dev_exact("attention bf16 stash from 16-bit x", gst2, gst, (size_t)nst * sizeof(float));
    mprt_cu_free(gout2), mprt_cu_free(gst2);
    for (int i = 0; i < AW__N; i++)
        free(hw[i]), free(hh[i]), mprt_cu_free(dw[i]), mprt_cu_free(dh[i]);
    free(x), free(out), free(st), free(hx);
    mprt_cu_free(gx), mprt_cu_free(gout), mprt_cu_free(gst), mprt_cu_free(gxh);
}

/* ─────────────────────────────── losses ─────────────────────────────── */

static void test_losses(int M, int V) {
    int64_t n = (int64_t)M * V;
    float *lg = hrand(n), *dl = hfill(n, 0.25f), *tg = hrand(n);
    int32_t *lab = malloc((size_t)M * sizeof *lab);
    for (int m = 0; m < M; m++)
        lab[m] = (m * 13 + 5) % V;
    /* labels outside [0, V): rows the CPU kernels ignore (no loss, gradient left as it was),
     * and so must the device's, without reading past the row */
    const int32_t bad[3] = {-1, V, INT32_MIN};
    for (int k = 0; k < 3 && 2 * k + 1 < M; k++)
        lab[2 * k + 1] = bad[k];
    for (int64_t i = 0; i < n; i++)
        lg[i] *= 5.0f;
    float *glg = dev(lg, n), *gdl = dev(dl, n), *gtg = dev(tg, n);
    int32_t *glab = dcopy(lab, (size_t)M * sizeof *lab);
    double *gloss = mprt_cu_malloc(sizeof(double)), zero = 0.0, loss = 0.0;
    float scale = 1.0f / (float)M;
    mprt_cu_upload(gloss, &zero, sizeof zero);
    mprt_cu_cross_entropy_forward(gloss, glg, glab, M, V, scale);
    mprt_cu_download(&loss, gloss, sizeof loss);
    cmp_scalar("cross_entropy forward", loss, mprt_cross_entropy_forward(lg, lab, M, V, scale),
               tol);
    mprt_cross_entropy_backward(dl, lg, lab, M, V, scale);
    mprt_cu_cross_entropy_backward(gdl, glg, glab, M, V, scale);
    cmp("cross_entropy backward", gdl, dl, n, tol);
    mprt_cu_upload(gloss, &zero, sizeof zero);
    mprt_cu_mse_forward(gloss, glg, gtg, n, 1.0f / (float)n);
    mprt_cu_download(&loss, gloss, sizeof loss);
    cmp_scalar("mse forward", loss, mprt_mse_forward(lg, tg, n, 1.0f / (float)n), tol);
    mprt_mse_backward(dl, lg, tg, n, 1.0f / (float)n);
    mprt_cu_mse_backward(gdl, glg, gtg, n, 1.0f / (float)n);
    cmp("mse backward", gdl, dl, n, tol);
    free(lg), free(dl), free(tg), free(lab);
    mprt_cu_free(glg), mprt_cu_free(gdl), mprt_cu_free(gtg), mprt_cu_free(glab);
    mprt_cu_free(gloss);
}

/* ─────────────────────────────── optimizers ─────────────────────────────── */

static void test_optimizers(void) {
    int64_t n = 777;
    for (int kind = 0; kind < 4; kind++) {
        float *p = hrand(n), *m = hfill(n, 0.0f), *v = hfill(n, 0.0f), *g = hrand(n);
        float *gp = dev(p, n), *gm = dev(m, n), *gv = dev(v, n), *gg = dev(g, n);
        for (int64_t t = 1; t <= 3; t++) {
            switch (kind) {
            case 0:
                mprt_sgd_step(p, NULL, g, n, 0.1f, 0.0f, 0.01f);
                mprt_cu_sgd_step(gp, NULL, gg, n, 0.1f, 0.0f, 0.01f);
                break;
            case 1:
                mprt_sgd_step(p, v, g, n, 0.1f, 0.9f, 0.01f);
                mprt_cu_sgd_step(gp, gv, gg, n, 0.1f, 0.9f, 0.01f);
                break;
            case 2:
                mprt_adam_step(p, m, v, g, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
                mprt_cu_adam_step(gp, gm, gv, gg, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
                break;
            default:
                mprt_adamw_step(p, m, v, g, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, t);
                mprt_cu_adamw_step(gp, gm, gv, gg, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, t);
            }
        }
        static const char *names[] = {"sgd", "sgd momentum", "adam", "adamw"};
        char what[64];
        snprintf(what, sizeof what, "%s, 3 steps: parameters", names[kind]);
        cmp(what, gp, p, n, tol);
        snprintf(what, sizeof what, "%s, 3 steps: state", names[kind]);
        cmp(what, gv, v, n, tol);
        free(p), free(m), free(v), free(g);
        mprt_cu_free(gp), mprt_cu_free(gm), mprt_cu_free(gv), mprt_cu_free(gg);
    }
}

/* ─────────────────────────────── bf16 ─────────────────────────────── */

/* Random values and the cases the rounding must get right: ties to even both ways, a carry into
 * the exponent, values that round to Inf, ±Inf, NaNs of both signs, subnormals, ±0. */
static float *bf16_cases(int64_t n) {
    static const uint32_t bits[] = {0x3F808000u, 0x3F818000u, 0x3FFFFFFFu, 0x7F7FFFFFu,
                                    0x7F800000u, 0xFF800000u, 0x7FC00001u, 0xFFA00000u,
                                    0x00000001u, 0x80008000u, 0x00000000u, 0x80000000u};
    float *x = hrand(n);
    for (size_t i = 0; i < sizeof bits / sizeof bits[0] && (int64_t)i < n; i++)
        memcpy(&x[i], &bits[i], sizeof x[i]);
    for (int64_t i = 12; i < n; i += 7)
        x[i] *= 1e30f; /* large exponents too */
    return x;
}

/* The conversions are integer arithmetic on the bit pattern: the GPU must give the CPU's bits. */
static void test_bf16_convert(int64_t n) {
    float *x = bf16_cases(n), *r = malloc((size_t)n * sizeof *r);
    uint16_t *h = malloc((size_t)n * sizeof *h);
    float *gx = dev(x, n), *gr = dev(x, n);
    uint16_t *gh = mprt_cu_malloc((size_t)n * sizeof *gh);
    mprt_bf16_pack(h, x, n);
    mprt_cu_bf16_pack(gh, gx, n);
    cmp_exact_bytes("bf16 pack", gh, h, (size_t)n * sizeof *h);
    mprt_bf16_unpack(r, h, n);
    mprt_cu_bf16_unpack(gx, gh, n);
    cmp_exact_bytes("bf16 unpack", gx, r, (size_t)n * sizeof *r);
    mprt_bf16_round(x, x, n);
    mprt_cu_bf16_round(gr, gr, n); /* in place */
    cmp_exact_bytes("bf16 round", gr, x, (size_t)n * sizeof *x);
    free(x), free(r), free(h), mprt_cu_free(gx), mprt_cu_free(gr), mprt_cu_free(gh);
}

/* A bf16 trainer's weights (cu_bf16.c): registering packs the whole working copy; an upload
 * into a range of the master weights packs that range of the working copy and nothing else; an
 * upload anywhere else leaves it alone; refresh packs it all again; a layer's range unpacks
 * into the staging buffer, which is what it returns; unregistered, an upload is a plain copy.
 * Against mprt_bf16_pack / _unpack on the host, bit for bit. */
static void test_bf16_weights(int64_t n) {
    int64_t lo = n / 3, k = n / 4, cap = n / 2;
    float *m = hrand(n), *v = hrand(k), *st = malloc((size_t)cap * sizeof *st);
    uint16_t *w = malloc((size_t)n * sizeof *w), *zero = calloc((size_t)n, sizeof *zero);
    float *gm = dev(m, n), *other = dev(m, n), *gst = dev(m, cap);
    uint16_t *gw = dcopy(zero, (size_t)n * sizeof *gw);
    size_t wb = (size_t)n * sizeof *w;
    mprt_cu_bf16_weights(gm, gw, n, gst, cap);
    mprt_bf16_pack(w, m, n);
    cmp_exact_bytes("bf16 weights registered", gw, w, wb);
    mprt_cu_bf16_upload(gm + lo, v, (size_t)k * sizeof *v);
    memcpy(m + lo, v, (size_t)k * sizeof *v);
    mprt_bf16_pack(w + lo, m + lo, k);
    cmp_exact_bytes("bf16 upload: the master weights", gm, m, (size_t)n * sizeof *m);
    cmp_exact_bytes("bf16 upload: the range packed", gw, w, wb);
    mprt_cu_bf16_upload(other, v, (size_t)k * sizeof *v); /* not the master weights */
    cmp_exact_bytes("bf16 upload elsewhere", gw, w, wb);
    float *m2 = hrand(n);
    mprt_cu_upload(gm, m2, (size_t)n * sizeof *m2);
    mprt_cu_bf16_refresh();
    mprt_bf16_pack(w, m2, n);
    cmp_exact_bytes("bf16 refresh", gw, w, wb);
    float *got = mprt_cu_bf16_layer(n - cap, cap); /* the last cap values: the whole buffer */
    mprt_bf16_unpack(st, w + (n - cap), cap);
    checks++;
    if (got != gst) failures++, printf("FAIL bf16 layer: not the staging buffer\n");
    cmp_exact_bytes("bf16 layer: unpacked", gst, st, (size_t)cap * sizeof *st);
    mprt_cu_bf16_weights(NULL, NULL, 0, NULL, 0);
    mprt_cu_bf16_upload(gm, m, (size_t)n * sizeof *m);
    cmp_exact_bytes("bf16 unregistered upload", gw, w, wb);
    free(m), free(v), free(st), free(w), free(zero), free(m2);
    mprt_cu_free(gm), mprt_cu_free(gw), mprt_cu_free(other), mprt_cu_free(gst);
}

/* A bf16 trainer's embedding forward reads the bf16 table and positions: the CPU's values bit
 * for bit (an exact conversion and one f32 addition each). */
static void test_embedding_bf16(void) {
    int N = 3, T = 5, M = N * T, V_local = 6, v0 = 3, D = 7, Ppos = 6;
    int64_t nw = (int64_t)V_local * D, np = (int64_t)Ppos * D, no = (int64_t)M * D;
    int32_t ids[15];
    for (int m = 0; m < M; m++)
        ids[m] = (m * 7) % 12; /* some inside [3, 9), some outside, repeats */
    float *W = hrand(nw), *pos = hrand(np), *out = hrand(no);
    uint16_t *hW = malloc((size_t)nw * 2), *hpos = malloc((size_t)np * 2);
    mprt_bf16_pack(hW, W, nw), mprt_bf16_pack(hpos, pos, np);
    int32_t *gids = dcopy(ids, sizeof ids);
    uint16_t *gW = dcopy(hW, (size_t)nw * 2), *gpos = dcopy(hpos, (size_t)np * 2);
    float *gout = dev(out, no);
    for (int add = 0; add < 2; add++) {
        mprt_embedding_forward_bf16(out, ids, hW, hpos, M, T, V_local, v0, D, add);
        mprt_cu_embedding_forward_bf16(gout, gids, gW, gpos, M, T, V_local, v0, D, add);
        cmp_exact_bytes(add ? "embedding forward bf16 (positions)" : "embedding forward bf16", gout,
                        out, (size_t)no * sizeof *out);
    }
    free(W), free(pos), free(out), free(hW), free(hpos);
    mprt_cu_free(gids), mprt_cu_free(gW), mprt_cu_free(gpos), mprt_cu_free(gout);
}

/* C = alpha·op(A)·op(B) + beta·C on bf16 operands against a double reference over the same
 * bf16 values: fp32 products and sums (CUBLAS_COMPUTE_32F), so the usual GEMM tolerance. */
static void test_gemm_bf16(bool ta, bool tb, int M, int N, int K) {
    int64_t na = (int64_t)M * K, nb = (int64_t)K * N, nc = (int64_t)M * N;
    float *a = hrand(na), *b = hrand(nb), *c = hrand(nc), *ref = malloc((size_t)nc * sizeof *ref);
    uint16_t *ha = malloc((size_t)na * 2), *hb = malloc((size_t)nb * 2);
    mprt_bf16_pack(ha, a, na), mprt_bf16_pack(hb, b, nb);
    mprt_bf16_unpack(a, ha, na), mprt_bf16_unpack(b, hb, nb);
    int lda = ta ? M : K, ldb = tb ? K : N;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double sum = 0;
            for (int k = 0; k < K; k++)
                sum += (double)(ta ? a[(int64_t)k * lda + i] : a[(int64_t)i * lda + k]) *
                       (double)(tb ? b[(int64_t)j * ldb + k] : b[(int64_t)k * ldb + j]);
            ref[(int64_t)i * N + j] = (float)(0.5 * sum + 0.25 * (double)c[(int64_t)i * N + j]);
        }
    uint16_t *ga = dcopy(ha, (size_t)na * 2), *gb = dcopy(hb, (size_t)nb * 2);
    float *gc = dev(c, nc);
    mprt_cu_gemm_bf16(ta, tb, M, N, K, 0.5f, ga, lda, gb, ldb, 0.25f, gc, N);
    char what[64];
    snprintf(what, sizeof what, "gemm bf16 %s%s %dx%dx%d", ta ? "T" : "N", tb ? "T" : "N", M, N, K);
    cmp(what, gc, ref, nc, tol);
    free(a), free(b), free(c), free(ref), free(ha), free(hb);
    mprt_cu_free(ga), mprt_cu_free(gb), mprt_cu_free(gc);
}

int main(void) {
    if (mprt_cu_device_count() <= 0 || !mprt_cu_init_local(0)) {
        printf("SKIPPED: no CUDA device\n");
        return 77;
    }
    test_linear(37, 29, 23, tol);
    test_linear(128, 256, 192, tol);
    MPRT_EW_UNARY(TEST_UNARY) /* relu, gelu, tanh, …: every row of the table */
    test_add_fill();
    test_layernorm(19, 77);
    test_layernorm(3, 1000);
    test_dropout();
    test_conv(2, 3, 7, 6, 4, 3, 2, 1);
    test_conv(3, 5, 4, 4, 2, 1, 1, 0); /* pointwise: no im2col */
    test_maxpool(5, 7, 7, 3, 2);       /* overlapping windows */
    test_maxpool(4, 8, 6, 2, 2);
    test_embedding();
    test_attention(2, 5, 6, 3, 2, 0);
    test_attention(2, 5, 6, 3, 2, 1);
    test_attention(2, 33, 64, 4, 16, 1);
    test_losses(9, 37);
    test_losses(4, 1000);
    test_optimizers();
    test_bf16_convert(1000);
    test_bf16_weights(1000);
    test_embedding_bf16();
    test_linear_bf16(37, 29, 23); /* odd sizes: an odd number of packed values */
    test_linear_bf16(128, 256, 192);
    test_attention_bf16(2, 33, 64, 4, 16, 1);
    test_conv_bf16(2, 3, 7, 6, 4, 3, 2, 1);
    test_conv_bf16(3, 5, 4, 4, 2, 1, 1, 0); /* pointwise: a packed copy of x */
    for (int t = 0; t < 4; t++)
        test_gemm_bf16(t & 1, t >> 1, 37, 29, 23), test_gemm_bf16(t & 1, t >> 1, 128, 192, 256);
    mprt_cu_set_tf32(true); /* TF32 GEMMs: the looser tolerance */
    test_linear(128, 256, 192, 1e-3);
    mprt_cu_set_tf32(false);
    mprt_cu_finalize();
    printf("%s: %d checks, %d failed\n", failures ? "FAIL" : "ok", checks, failures);
    return failures ? 1 : 0;
}
