/*
 * test_cu_bf16.c: a bf16 trainer's kernels of mprt_cuda (docs/cuda.md, "bf16") against the
 * CPU's and against the f32 GPU kernels, on the same random inputs rounded to bf16.
 *
 * The bf16 conversions and a bf16 trainer's working weights (cu_bf16.c: registered, uploaded
 * by range, refreshed) must agree with the CPU bit for bit; the bf16 GEMM (bf16 operands, fp32
 * sums) is checked against a double reference on the same bf16 values, and the GEMM forwards
 * on bf16 weights against the CPU's f32 forward on the same values (tol = 1e-4, as
 * test_cu_kernels.c). The kernels for 16-bit activations must give, bit for bit, what the f32
 * path gives on the same values: the GEMM forwards from a 16-bit input their f32-input twins'
 * outputs, the elementwise, dropout and max-pooling ones the CPU's f32 result rounded to bf16
 * (their f32 kernels equal the CPU's bit for bit), layer norm's and the losses' gradients the
 * f32 GPU kernels' (a loss value, a double summed by atomicAdd in any order, within 1e-12).
 *
 * Without a CUDA device the test prints "SKIPPED: no CUDA device" and exits 77, which ctest
 * reports as skipped (SKIP_RETURN_CODE): it never passes without having run.
 */
#include "cu_test.h"

/* ─────────────────────────────── linear ─────────────────────────────── */

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

/* ─────────────────── 16-bit activations (the _bf16 kernels) ─────────────────── */
/* A bf16 trainer's activations as stored: n random values rounded to bf16, returned as f32
 * (what the f32 kernels read) with their 16 bits in *h and on the device in *gh. */
static float *bf16_vals(int64_t n, uint16_t **h, uint16_t **gh) {
    float *x = hrand(n);
    *h = malloc((size_t)(n > 0 ? n : 1) * 2);
    mprt_bf16_pack(*h, x, n), mprt_bf16_unpack(x, *h, n);
    *gh = dcopy(*h, (size_t)n * 2);
    return x;
}

/* A 16-bit device output against the bf16 rounding of an f32 reference, bit for bit. */
static void cmp_packed(const char *what, const uint16_t *d, const float *ref, int64_t n) {
    uint16_t *h = malloc((size_t)(n > 0 ? n : 1) * 2);
    mprt_bf16_pack(h, ref, n);
    cmp_exact_bytes(what, d, h, (size_t)n * 2);
    free(h);
}

typedef void (*CuUnaryH)(uint16_t *, const uint16_t *, int64_t);
typedef void (*CuUnaryBwdH)(float *, const float *, const uint16_t *, int64_t);

/* One unary op, 16-bit in and out: the CPU's f32 result rounded, bit for bit (the f32 kernels
 * equal the CPU's: test_unary); its backward from the 16-bit saved value (x, or the output as
 * stored) equals the CPU's on that value. */
static void test_unary_bf16(const char *name, Unary f, UnaryBwd b, CuUnaryH cf, CuUnaryBwdH cb,
                            bool bwd_from_out) {
    int64_t n = 1000;
    uint16_t *hx, *gx, *gout = mprt_cu_malloc((size_t)n * 2);
    float *x = bf16_vals(n, &hx, &gx), *out = hrand(n), *dout = hrand(n), *dx = hfill(n, 0.25f);
    float *gdout = dev(dout, n), *gdx = dev(dx, n);
    char what[80];
    f(out, x, n), cf(gout, gx, n);
    snprintf(what, sizeof what, "%s forward bf16", name), cmp_packed(what, gout, out, n);
    mprt_bf16_round(out, out, n); /* the output as stored */
    b(dx, dout, bwd_from_out ? out : x, n), cb(gdx, gdout, bwd_from_out ? gout : gx, n);
    snprintf(what, sizeof what, "%s backward bf16", name), cmp(what, gdx, dx, n, 0.0);
    free(x), free(out), free(dout), free(dx), free(hx);
    mprt_cu_free(gx), mprt_cu_free(gout), mprt_cu_free(gdout), mprt_cu_free(gdx);
}
#define TEST_UNARY_BF16(name, saved)                                                               \
    test_unary_bf16(#name, mprt_##name##_forward, mprt_##name##_backward,                          \
                    mprt_cu_##name##_forward_bf16, mprt_cu_##name##_backward_bf16,                 \
                    BWD_FROM_OUT_##saved);

/* add, 16-bit in and out: the CPU's f32 sum rounded, bit for bit. */
static void test_add_bf16(void) {
    int64_t n = 1000;
    uint16_t *ha, *ga, *hb, *gb, *gout = mprt_cu_malloc((size_t)n * 2);
    float *a = bf16_vals(n, &ha, &ga), *b = bf16_vals(n, &hb, &gb), *out = hrand(n);
    mprt_add_forward(out, a, b, n), mprt_cu_add_forward_bf16(gout, ga, gb, n);
    cmp_packed("add forward bf16", gout, out, n);
    free(a), free(b), free(out), free(ha), free(hb);
    mprt_cu_free(ga), mprt_cu_free(gb), mprt_cu_free(gout);
}

/* layernorm from 16-bit x: the f32 GPU kernel's output on the same values rounded, and its
 * statistics and gradients, bit for bit. */
static void test_layernorm_bf16(int N, int C) {
    int64_t n = (int64_t)N * C;
    uint16_t *hx, *gxh;
    float *x = bf16_vals(n, &hx, &gxh), *g = hrand(C), *be = hrand(C), *dout = hrand(n);
    float *gx = dev(x, n), *gg = dev(g, C), *gbe = dev(be, C), *gdout = dev(dout, n);
    float *gout = mprt_cu_malloc((size_t)n * 4), *gst = mprt_cu_malloc((size_t)N * 16);
    float *gz[2][3]; /* dx, dgamma, dbeta of the f32 and the bf16 backward */
    uint16_t *gouth = mprt_cu_malloc((size_t)n * 2), *packed = mprt_cu_malloc((size_t)n * 2);
    mprt_cu_layernorm_forward(gout, gst, gst + N, gx, gg, gbe, N, C, 1e-5f);
    mprt_cu_layernorm_forward_bf16(gouth, gst + 2 * N, gst + 3 * N, gxh, gg, gbe, N, C, 1e-5f);
    mprt_cu_bf16_pack(packed, gout, n);
    cmp_dev_exact("layernorm forward bf16", gouth, packed, (size_t)n * 2);
    cmp_dev_exact("layernorm bf16 mean, rstd", gst + 2 * N, gst, (size_t)N * 8);
    float *acc = hfill(n, 0.25f); /* the gradients accumulate onto 0.25 */
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 3; i++)
            gz[k][i] = dev(acc, i ? C : n);
    mprt_cu_layernorm_backward(gz[0][0], gz[0][1], gz[0][2], gdout, gx, gst, gst + N, gg, N, C);
    mprt_cu_layernorm_backward_bf16(gz[1][0], gz[1][1], gz[1][2], gdout, gxh, gst, gst + N, gg, N,
                                    C);
    cmp_dev_exact("layernorm dx bf16", gz[1][0], gz[0][0], (size_t)n * 4);
    cmp_dev_exact("layernorm dgamma bf16", gz[1][1], gz[0][1], (size_t)C * 4);
    cmp_dev_exact("layernorm dbeta bf16", gz[1][2], gz[0][2], (size_t)C * 4);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 3; i++)
            mprt_cu_free(gz[k][i]);
    free(x), free(g), free(be), free(dout), free(hx), free(acc);
    mprt_cu_free(gxh), mprt_cu_free(gx), mprt_cu_free(gg), mprt_cu_free(gbe), mprt_cu_free(gdout);
    mprt_cu_free(gout), mprt_cu_free(gst), mprt_cu_free(gouth), mprt_cu_free(packed);
}

/* dropout from 16-bit x: the CPU's mask and product, rounded, bit for bit (and a copy in eval). */
static void test_dropout_bf16(void) {
    int N = 4;
    MprtDropShard sh = {.n0 = 7, .R = 3, .r0 = 2, .F = 5, .F_global = 10, .f0 = 5};
    int64_t n = (int64_t)N * sh.R * sh.F;
    uint16_t *hx, *gx, *gout = mprt_cu_malloc((size_t)n * 2);
    float *x = bf16_vals(n, &hx, &gx), *out = hrand(n);
    for (int training = 0; training < 2; training++) {
        mprt_dropout_forward(out, x, N, sh, 0.3f, 42, 3, 11, training);
        mprt_cu_dropout_forward_bf16(gout, gx, N, sh, 0.3f, 42, 3, 11, training);
        cmp_packed(training ? "dropout forward bf16" : "dropout forward bf16 (eval)", gout, out, n);
    }
    free(x), free(out), free(hx), mprt_cu_free(gx), mprt_cu_free(gout);
}

/* The losses on 16-bit logits (labels outside [0, V) among them) and a 16-bit prediction (an
 * f32 target): the gradients bit for bit the f32 GPU kernels' on the same values; the loss,
 * a sum of per-block atomicAdds on a double whose order may vary, within 1e-12. */
static void test_losses_bf16(int M, int V) {
    int64_t n = (int64_t)M * V;
    float *lg = hrand(n), *dl = hfill(n, 0.25f), *tg = hrand(n);
    uint16_t *hlg = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++)
        lg[i] *= 5.0f;
    mprt_bf16_pack(hlg, lg, n), mprt_bf16_unpack(lg, hlg, n);
    int32_t *lab = malloc((size_t)M * sizeof *lab);
    for (int m = 0; m < M; m++)
        lab[m] = m % 4 == 1 ? -1 - m : (m * 13 + 5) % V; /* some rows ignored */
    float *glg = dev(lg, n), *gtg = dev(tg, n), *gd[2] = {dev(dl, n), dev(dl, n)};
    uint16_t *glh = dcopy(hlg, (size_t)n * 2);
    int32_t *glab = dcopy(lab, (size_t)M * sizeof *lab);
    double *gloss = mprt_cu_malloc(2 * sizeof(double)), loss[2], zero[2] = {0.0, 0.0};
    float scale = 1.0f / (float)M, ms = 1.0f / (float)n;
    mprt_cu_upload(gloss, zero, sizeof zero);
    mprt_cu_cross_entropy_forward(gloss, glg, glab, M, V, scale);
    mprt_cu_cross_entropy_forward_bf16(gloss + 1, glh, glab, M, V, scale);
    mprt_cu_download(loss, gloss, sizeof loss);
    cmp_scalar("cross_entropy forward bf16", loss[1], loss[0], 1e-12);
    mprt_cu_cross_entropy_backward(gd[0], glg, glab, M, V, scale);
    mprt_cu_cross_entropy_backward_bf16(gd[1], glh, glab, M, V, scale);
    cmp_dev_exact("cross_entropy backward bf16", gd[1], gd[0], (size_t)n * sizeof(float));
    mprt_cu_upload(gloss, zero, sizeof zero);
    mprt_cu_mse_forward(gloss, glg, gtg, n, ms),
        mprt_cu_mse_forward_bf16(gloss + 1, glh, gtg, n, ms);
    mprt_cu_download(loss, gloss, sizeof loss);
    cmp_scalar("mse forward bf16", loss[1], loss[0], 1e-12);
    mprt_cu_mse_backward(gd[0], glg, gtg, n, ms), mprt_cu_mse_backward_bf16(gd[1], glh, gtg, n, ms);
    cmp_dev_exact("mse backward bf16", gd[1], gd[0], (size_t)n * sizeof(float));
    free(lg), free(dl), free(tg), free(hlg), free(lab);
    mprt_cu_free(glg), mprt_cu_free(gtg), mprt_cu_free(gd[0]), mprt_cu_free(gd[1]);
    mprt_cu_free(glh), mprt_cu_free(glab), mprt_cu_free(gloss);
}

/* ─────────────────────────────── conv2d, maxpool2d ─────────────────────────────── */

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

/* max-pooling from 16-bit x (ties included): the CPU's output on the same values, copied
 * exactly, and the CPU's argmax (the first maximum of each window). */
static void test_maxpool_bf16(int planes, int H, int Wd, int K, int S) {
    int64_t nx = (int64_t)planes * H * Wd;
    int64_t no = (int64_t)planes * MPRT_CONV_OUT(H, K, S, 0) * MPRT_CONV_OUT(Wd, K, S, 0);
    uint16_t *hx, *gx, *gout = mprt_cu_malloc((size_t)no * 2);
    float *x = bf16_vals(nx, &hx, &gx), *out = hrand(no);
    for (int64_t i = 0; i < nx; i += 5)
        hx[i] = 0x3F00; /* 0.5: ties, the first maximum must win on both */
    mprt_bf16_unpack(x, hx, nx), mprt_cu_upload(gx, hx, (size_t)nx * 2);
    int32_t *am = calloc((size_t)no, sizeof *am), *gam = mprt_cu_malloc((size_t)no * 4);
    mprt_cu_memset0(gam, (size_t)no * 4);
    mprt_maxpool2d_forward(out, am, x, planes, H, Wd, K, S);
    mprt_cu_maxpool2d_forward_bf16(gout, gam, gx, planes, H, Wd, K, S);
    cmp_packed("maxpool forward bf16", gout, out, no);
    cmp_exact_bytes("maxpool argmax bf16", gam, am, (size_t)no * sizeof(int32_t));
    free(x), free(out), free(hx), free(am), mprt_cu_free(gx), mprt_cu_free(gout), mprt_cu_free(gam);
}

/* ─────────────────────────────── attention ─────────────────────────────── */

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

/* ─────────────────────── conversions, weights, GEMM ─────────────────────── */

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
    uint16_t *gouth = mprt_cu_malloc((size_t)no * 2);
    for (int add = 0; add < 2; add++) {
        mprt_embedding_forward_bf16(out, ids, hW, hpos, M, T, V_local, v0, D, add);
        mprt_cu_embedding_forward_bf16(gout, gids, gW, gpos, M, T, V_local, v0, D, add);
        cmp_exact_bytes(add ? "embedding forward bf16 (positions)" : "embedding forward bf16", gout,
                        out, (size_t)no * sizeof *out);
        /* into a 16-bit activation: the same values rounded */
        mprt_cu_embedding_forward_bf16_act(gouth, gids, gW, gpos, M, T, V_local, v0, D, add);
        cmp_packed(add ? "embedding forward to 16 bits (positions)"
                       : "embedding forward to 16 bits",
                   gouth, out, no);
    }
    free(W), free(pos), free(out), free(hW), free(hpos);
    mprt_cu_free(gids), mprt_cu_free(gW), mprt_cu_free(gpos), mprt_cu_free(gout);
    mprt_cu_free(gouth);
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
    test_bf16_convert(1000);
    test_bf16_weights(1000);
    for (int t = 0; t < 4; t++)
        test_gemm_bf16(t & 1, t >> 1, 37, 29, 23), test_gemm_bf16(t & 1, t >> 1, 128, 192, 256);
    test_embedding_bf16();
    test_linear_bf16(37, 29, 23); /* odd sizes: an odd number of packed values */
    test_linear_bf16(128, 256, 192);
    test_attention_bf16(2, 33, 64, 4, 16, 1);
    test_conv_bf16(2, 3, 7, 6, 4, 3, 2, 1);
    test_conv_bf16(3, 5, 4, 4, 2, 1, 1, 0); /* pointwise: a packed copy of x */
    MPRT_EW_UNARY(TEST_UNARY_BF16)          /* relu, gelu, tanh, …: every row of the table */
    test_add_bf16();
    test_layernorm_bf16(19, 77);
    test_layernorm_bf16(3, 1000);
    test_dropout_bf16();
    test_maxpool_bf16(5, 7, 7, 3, 2); /* overlapping windows */
    test_maxpool_bf16(4, 8, 6, 2, 2);
    test_losses_bf16(9, 37);
    test_losses_bf16(4, 1000);
    mprt_cu_finalize();
    printf("%s: %d checks, %d failed\n", failures ? "FAIL" : "ok", checks, failures);
    return failures ? 1 : 0;
}
