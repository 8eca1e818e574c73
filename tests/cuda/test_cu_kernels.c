/*
 * test_cu_kernels.c: every kernel of mprt_cuda against its CPU twin in mprt (runtime/
 * mprt_kernels.h, itself tested against double-precision references and finite differences
 * in tests/kernels/), on the same random inputs, forward and backward.
 *
 * Tolerance: max |gpu − cpu| ≤ tol · max(1, max |cpu|), tol = 1e-4 (1e-3 for the GEMMs run
 * again with TF32). Dropout masks, maxpool and the elementwise table's ops (relu, gelu,
 * tanh, …: runtime/mprt_ew.h) must agree bit for bit. A bf16 trainer's kernels are
 * test_cu_bf16.c's (cuda/kernels_bf16); the helpers both use are cu_test.h's.
 * Gradient buffers start at 0.25 on both sides, so the accumulation rule (+=) is checked too.
 *
 * Without a CUDA device the test prints "SKIPPED: no CUDA device" and exits 77, which ctest
 * reports as skipped (SKIP_RETURN_CODE): it never passes without having run.
 */
#include "cu_test.h"

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

/* ─────────────────────────────── elementwise ─────────────────────────────── */

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
    mprt_cu_set_tf32(true); /* TF32 GEMMs: the looser tolerance */
    test_linear(128, 256, 192, 1e-3);
    mprt_cu_set_tf32(false);
    mprt_cu_finalize();
    printf("%s: %d checks, %d failed\n", failures ? "FAIL" : "ok", checks, failures);
    return failures ? 1 : 0;
}
