/*
 * test_kernels_parallel.c: the rank's thread pool (runtime/parallel.c) and the kernels on it.
 *
 * - mprt__parallel_for visits every index exactly once, in at most mprt_threads() contiguous
 *   parts no smaller than the grain, and a call from inside a part of a parallel job runs
 *   serially; restarting the pool right after a job never runs that job again; mprt_zero
 *   clears exactly the bytes asked for;
 * - every kernel whose loops the pool cuts gives bit-identical results with 1 and with 3
 *   threads (3, so the parts are uneven and the sizes do not divide): elementwise ops,
 *   layernorm, dropout, the losses' gradients, the optimizers, the bias gradient, the
 *   counter RNG's fills, maxpool2d (ties, a NaN, tiling and overlapping windows);
 * - GEMMs, which the pool cuts into blocks of rows or columns, and attention (per-head cores on
 *   the pool, projections cut as GEMMs) agree with 1 thread to float rounding (1e-5 relative);
 *   they are not bit-identical because OpenBLAS adds edge tiles in another order.
 */
#include "internal.h"
#include "kcheck.h"
#include "mprt.h"

#include <stdatomic.h>

#define THREADS 3
#define BIG 100003 /* elements: above 3 × the kernels' grain, and prime */

/* ───────────────────────────── the pool itself ───────────────────────────── */

typedef struct Visit {
    int *hits;
    int parts_seen[THREADS + 1];
    int64_t min_len;
    int nested_ok;
} Visit;

static void inner_part(void *ctx, int64_t lo, int64_t hi, int part) {
    int *ok = ctx;
    if (part != 0 || lo != 0 || hi != 10) *ok = 0;
}

static void visit_part(void *ctx, int64_t lo, int64_t hi, int part) {
    Visit *v = ctx;
    for (int64_t i = lo; i < hi; i++)
        v->hits[i]++;
    if (part >= 0 && part <= THREADS) v->parts_seen[part]++;
    if (hi - lo < v->min_len) v->min_len = hi - lo;
    mprt__parallel_for(10, 1, inner_part, &v->nested_ok); /* must run here, serially */
}

static void check_pool(void) {
    static const int64_t sizes[] = {1, 2, 5, 1000, BIG};
    static const int64_t grains[] = {1, 7, 4096};
    for (size_t a = 0; a < sizeof sizes / sizeof *sizes; a++)
        for (size_t b = 0; b < sizeof grains / sizeof *grains; b++) {
            int64_t n = sizes[a], grain = grains[b];
            Visit v = {.hits = kc_alloc((size_t)n, sizeof(int)), .min_len = n, .nested_ok = 1};
            mprt__parallel_for(n, grain, visit_part, &v);
            int64_t bad = 0;
            for (int64_t i = 0; i < n; i++)
                bad += v.hits[i] != 1;
            int parts = 0;
            for (int p = 0; p <= THREADS; p++)
                parts += v.parts_seen[p];
            int64_t want = (n + grain - 1) / grain;
            want = want < THREADS ? want : THREADS;
            kc_expect(bad == 0, "parallel_for: every index once", "%g of %g indices wrong",
                      (double)bad, (double)n);
            kc_expect(parts == want, "parallel_for: part count", "%g parts, want %g", (double)parts,
                      (double)want);
            kc_expect(v.parts_seen[THREADS] == 0, "parallel_for: part index < threads", "%g%g",
                      (double)v.parts_seen[THREADS], 0.0);
            kc_expect(parts == 1 || v.min_len >= grain, "parallel_for: parts hold the grain",
                      "smallest part %g, grain %g", (double)v.min_len, (double)grain);
            /* From inside a parallel job a call runs serially; after a serial outer call (one
             * part, on the calling thread alone) it may use the pool itself. */
            kc_expect(parts == 1 || v.nested_ok, "parallel_for: nested call runs serially", "%g%g",
                      0.0, 0.0);
            free(v.hits);
        }
}

/* Restarting the pool right after a job (mprt_set_threads, as the C API's configure does) must
 * not make a worker still spinning on the finished job run it again. */
static atomic_int job_open, stale_runs;

static void open_job_part(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)ctx, (void)lo, (void)hi, (void)part;
    if (!atomic_load(&job_open)) atomic_fetch_add(&stale_runs, 1);
}

static void check_restart(void) {
    for (int i = 0; i < 300; i++) {
        atomic_store(&job_open, 1);
        mprt__parallel_for(THREADS, 1, open_job_part, NULL);
        atomic_store(&job_open, 0);
        mprt_set_threads(i % 2 ? THREADS : 2);
    }
    mprt_set_threads(THREADS);
    kc_expect(atomic_load(&stale_runs) == 0, "pool restart runs no finished job again",
              "%g stale runs in %g restarts", (double)atomic_load(&stale_runs), 300.0);
}

/* mprt_zero clears exactly the bytes asked for, however the pool cuts them. */
static void check_zero(void) {
    size_t n = 1000003;
    unsigned char *b = kc_alloc(n, 1);
    memset(b, 0xab, n);
    mprt_zero(b + 1, n - 2);
    size_t bad = 0;
    for (size_t i = 1; i + 1 < n; i++)
        bad += b[i] != 0;
    kc_expect(bad == 0, "mprt_zero: every byte asked for", "%g of %g bytes not zero", (double)bad,
              (double)(n - 2));
    kc_expect(b[0] == 0xab && b[n - 1] == 0xab, "mprt_zero: nothing outside", "%g %g", (double)b[0],
              (double)b[n - 1]);
    free(b);
}

/* ───────────────────────────── kernels: 1 vs 3 threads ───────────────────────────── */

/* What one run of the kernels writes; run() fills it, with the inputs fixed by the seed. */
typedef struct Out {
    float *relu, *drelu, *gelu, *dgelu, *tanh_, *dtanh, *add, *acc, *fill;
    float *ln, *mean, *rstd, *dln, *dgamma, *dbeta;
    float *drop, *ddrop, *dce, *dmse;
    float *sgd_p, *sgd_v, *adam_p, *adam_m, *adam_v, *adamw_p;
    float *lin, *ldx, *ldw, *ldb;
    float *att, *datt_x, *datt_wq, *datt_wo;
    float *normal, *uniform;
    float *pool, *dpool, *opool, *dopool; /* maxpool2d: 2×2 tiles, 3×3 windows overlapping */
} Out;

enum { LN_N = 211, LN_C = 512, CE_M = 1001, CE_V = 37, LIN_N = 200, LIN_I = 300, LIN_O = 500 };
enum { AN = 2, AT = 24, AH = 4, AHD = 8, AD = AH * AHD };
enum { PP = 97, PH = 13, PW = 18 }; /* maxpool planes: over 3 parts of the grain, odd heights */

static float *randf(size_t n, double lo, double hi) { return kc_randf(n, lo, hi, NULL); }

static void run_elementwise(Out *o) {
    kc_state = 0x1234567ull;
    float *x = randf(BIG, -3, 3), *d = randf(BIG, -1, 1), *y = randf(BIG, -2, 2);
    mprt_relu_forward(o->relu = kc_floats(BIG), x, BIG);
    o->drelu = randf(BIG, -1, 1);
    mprt_relu_backward(o->drelu, d, x, BIG);
    mprt_gelu_forward(o->gelu = kc_floats(BIG), x, BIG);
    o->dgelu = randf(BIG, -1, 1);
    mprt_gelu_backward(o->dgelu, d, x, BIG);
    mprt_tanh_forward(o->tanh_ = kc_floats(BIG), x, BIG);
    o->dtanh = randf(BIG, -1, 1);
    mprt_tanh_backward(o->dtanh, d, o->tanh_, BIG);
    mprt_add_forward(o->add = kc_floats(BIG), x, y, BIG);
    o->acc = randf(BIG, -1, 1);
    mprt_add_backward(o->acc, o->acc, d, BIG);
    mprt_fill(o->fill = kc_floats(BIG), BIG, 0.25f);
    MprtDropShard sh = {.n0 = 3, .R = 7, .r0 = 0, .F = 19, .F_global = 19, .f0 = 0};
    int dn = BIG / (7 * 19);
    mprt_dropout_forward(o->drop = kc_floats(BIG), x, dn, sh, 0.3f, 42, 2, 5, 1);
    o->ddrop = randf(BIG, -1, 1);
    mprt_dropout_backward(o->ddrop, d, dn, sh, 0.3f, 42, 2, 5);
    o->dmse = randf(BIG, -1, 1);
    mprt_mse_backward(o->dmse, x, y, BIG, 1.0f / BIG);
    MprtRng r = mprt_rng_sub(mprt_rng(7, 11), 13);
    mprt_rng_fill_normal(r, 5, BIG, 0.5f, 2.0f, o->normal = kc_floats(BIG));
    mprt_rng_fill_uniform(r, 3, BIG, -1.0f, 3.0f, o->uniform = kc_floats(BIG));
    free(x), free(d), free(y);
}

static void run_rows(Out *o) {
    kc_state = 0x7654321ull;
    size_t n = (size_t)LN_N * LN_C;
    float *x = randf(n, -2, 2), *g = randf(LN_C, 0.5, 1.5), *b = randf(LN_C, -0.5, 0.5);
    float *dout = randf(n, -1, 1);
    o->mean = kc_floats(LN_N), o->rstd = kc_floats(LN_N);
    mprt_layernorm_forward(o->ln = kc_floats(n), o->mean, o->rstd, x, g, b, LN_N, LN_C, 1e-5f);
    o->dln = randf(n, -1, 1), o->dgamma = randf(LN_C, -1, 1), o->dbeta = randf(LN_C, -1, 1);
    mprt_layernorm_backward(o->dln, o->dgamma, o->dbeta, dout, x, o->mean, o->rstd, g, LN_N, LN_C);
    float *logits = randf((size_t)CE_M * CE_V, -4, 4);
    int32_t *labels = kc_alloc(CE_M, sizeof(int32_t));
    for (int m = 0; m < CE_M; m++)
        labels[m] = m % 11 == 0 ? -100 : (int32_t)(m % CE_V);
    o->dce = randf((size_t)CE_M * CE_V, -1, 1);
    mprt_cross_entropy_backward(o->dce, logits, labels, CE_M, CE_V, 1.0f / CE_M);
    free(x), free(g), free(b), free(dout), free(logits), free(labels);
}

static void run_optimizers(Out *o) {
    kc_state = 0xabcdefull;
    float *g = randf(BIG, -1, 1);
    o->sgd_p = randf(BIG, -1, 1), o->sgd_v = randf(BIG, -0.1, 0.1);
    mprt_sgd_step(o->sgd_p, o->sgd_v, g, BIG, 0.05f, 0.9f, 1e-4f);
    o->adam_p = randf(BIG, -1, 1), o->adam_m = randf(BIG, -0.1, 0.1);
    o->adam_v = randf(BIG, 0, 0.01);
    mprt_adam_step(o->adam_p, o->adam_m, o->adam_v, g, BIG, 1e-3f, 0.9f, 0.999f, 1e-8f, 1e-2f, 3);
    o->adamw_p = randf(BIG, -1, 1);
    float *m = randf(BIG, -0.1, 0.1), *v = randf(BIG, 0, 0.01);
    mprt_adamw_step(o->adamw_p, m, v, g, BIG, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.1f, 3);
    free(g), free(m), free(v);
}

static void run_dense(Out *o) {
    kc_state = 0x5eedull;
    float *x = randf((size_t)LIN_N * LIN_I, -1, 1), *w = randf((size_t)LIN_I * LIN_O, -1, 1);
    float *b = randf(LIN_O, -1, 1), *dout = randf((size_t)LIN_N * LIN_O, -1, 1);
    mprt_linear_forward(o->lin = kc_floats((size_t)LIN_N * LIN_O), x, w, b, LIN_N, LIN_I, LIN_O, 1);
    o->ldx = kc_floats((size_t)LIN_N * LIN_I), o->ldw = kc_floats((size_t)LIN_I * LIN_O);
    o->ldb = kc_floats(LIN_O);
    mprt_linear_backward(o->ldx, o->ldw, o->ldb, dout, x, w, LIN_N, LIN_I, LIN_O);
    free(x), free(w), free(b), free(dout);
}

static void run_attention(Out *o) {
    kc_state = 0xa77e57ull;
    size_t nx = (size_t)AN * AT * AD, nw = (size_t)AD * AD;
    float *x = randf(nx, -1, 1), *dout = randf(nx, -1, 1), *wq = randf(nw, -0.5, 0.5);
    float *wk = randf(nw, -0.5, 0.5), *wv = randf(nw, -0.5, 0.5), *wo = randf(nw, -0.5, 0.5);
    float *bq = randf(AD, -0.1, 0.1), *bk = randf(AD, -0.1, 0.1), *bv = randf(AD, -0.1, 0.1);
    float *bo = randf(AD, -0.1, 0.1);
    MprtAttnW w = {wq, bq, wk, bk, wv, bv, wo, bo};
    float *stash = kc_floats((size_t)MPRT_ATTENTION_STASH(AN, AT, AD, AH));
    float *scratch = kc_floats((size_t)MPRT_ATTENTION_SCRATCH(AN, AT, AD));
    mprt_attention_forward(o->att = kc_floats(nx), stash, x, w, AN, AT, AD, AH, AHD, 1, 1);
    o->datt_x = kc_floats(nx), o->datt_wq = kc_floats(nw), o->datt_wo = kc_floats(nw);
    MprtAttnG g = {.wq = o->datt_wq, .wo = o->datt_wo};
    mprt_attention_backward(o->datt_x, g, dout, x, stash, scratch, w, AN, AT, AD, AH, AHD, 1);
    free(x), free(dout), free(wq), free(wk), free(wv), free(wo), free(bq), free(bk), free(bv);
    free(bo), free(stash), free(scratch);
}

/* Input as after a relu (a third zeros: ties in most windows) and one NaN; both window shapes. */
static void run_pool(Out *o) {
    kc_state = 0x9001ull;
    size_t n = (size_t)PP * PH * PW;
    float *x = randf(n, -1, 2);
    for (size_t i = 0; i < n; i++)
        x[i] = x[i] > 0 ? x[i] : 0;
    x[5 * PW + 7] = NAN;
    static const int ks[2][2] = {{2, 2}, {3, 2}};
    float **outs[2][2] = {{&o->pool, &o->dpool}, {&o->opool, &o->dopool}};
    for (int v = 0; v < 2; v++) {
        int K = ks[v][0], S = ks[v][1];
        size_t no = (size_t)PP * MPRT_CONV_OUT(PH, K, S, 0) * MPRT_CONV_OUT(PW, K, S, 0);
        int32_t *am = kc_alloc(no, sizeof *am);
        float *dout = randf(no, -1, 1);
        mprt_maxpool2d_forward(*outs[v][0] = kc_floats(no), am, x, PP, PH, PW, K, S);
        mprt_maxpool2d_backward(*outs[v][1] = randf(n, -1, 1), dout, am, PP, PH, PW, K, S);
        free(am), free(dout);
    }
    free(x);
}

/* Out holds only float pointers, so it can be freed as an array of them. */
static void free_out(Out *o) {
    float **p = (float **)o;
    for (size_t i = 0; i < sizeof *o / sizeof *p; i++)
        free(p[i]);
}

static Out run(int threads) {
    int got = mprt_set_threads(threads);
    kc_expect(got == threads && mprt_threads() == threads, "mprt_set_threads",
              "%g threads, want %g", (double)got, (double)threads);
    Out o;
    run_elementwise(&o);
    run_rows(&o);
    run_optimizers(&o);
    run_dense(&o);
    run_attention(&o);
    run_pool(&o);
    return o;
}

/* max |a − b| ≤ tol·(1 + max |a|), float against float. */
static void near(const char *what, const float *a, const float *b, size_t n, double tol) {
    double *wa = kc_doubles(n);
    for (size_t i = 0; i < n; i++)
        wa[i] = (double)a[i];
    kc_close(what, b, wa, n, tol);
    free(wa);
}

static void compare(const Out *a, const Out *b) {
    const struct {
        const char *name;
        const float *x, *y;
        size_t n;
    } same[] = {
        {"relu forward", a->relu, b->relu, BIG},
        {"relu backward", a->drelu, b->drelu, BIG},
        {"gelu forward", a->gelu, b->gelu, BIG},
        {"gelu backward", a->dgelu, b->dgelu, BIG},
        {"tanh forward", a->tanh_, b->tanh_, BIG},
        {"tanh backward", a->dtanh, b->dtanh, BIG},
        {"add forward", a->add, b->add, BIG},
        {"add backward (da == db)", a->acc, b->acc, BIG},
        {"fill", a->fill, b->fill, BIG},
        {"dropout forward", a->drop, b->drop, BIG},
        {"dropout backward", a->ddrop, b->ddrop, BIG},
        {"mse backward", a->dmse, b->dmse, BIG},
        {"rng normal fill", a->normal, b->normal, BIG},
        {"rng uniform fill", a->uniform, b->uniform, BIG},
        {"layernorm forward", a->ln, b->ln, (size_t)LN_N * LN_C},
        {"layernorm mean", a->mean, b->mean, LN_N},
        {"layernorm rstd", a->rstd, b->rstd, LN_N},
        {"layernorm dx", a->dln, b->dln, (size_t)LN_N * LN_C},
        {"layernorm dgamma", a->dgamma, b->dgamma, LN_C},
        {"layernorm dbeta", a->dbeta, b->dbeta, LN_C},
        {"cross-entropy backward", a->dce, b->dce, (size_t)CE_M * CE_V},
        {"sgd p", a->sgd_p, b->sgd_p, BIG},
        {"sgd v", a->sgd_v, b->sgd_v, BIG},
        {"adam p", a->adam_p, b->adam_p, BIG},
        {"adam m", a->adam_m, b->adam_m, BIG},
        {"adam v", a->adam_v, b->adam_v, BIG},
        {"adamw p", a->adamw_p, b->adamw_p, BIG},
        {"linear db (column sums)", a->ldb, b->ldb, LIN_O},
        {"maxpool2d 2x2 forward", a->pool, b->pool, (size_t)PP * (PH / 2) * (PW / 2)},
        {"maxpool2d 2x2 backward", a->dpool, b->dpool, (size_t)PP * PH * PW},
        {"maxpool2d 3x3 stride 2 forward", a->opool, b->opool, (size_t)PP * 6 * 8},
        {"maxpool2d 3x3 stride 2 backward", a->dopool, b->dopool, (size_t)PP * PH * PW},
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s: 1 vs %d threads, bit for bit", same[i].name, THREADS);
        kc_same(what, same[i].x, same[i].y, same[i].n);
    }
    near("linear forward: 1 vs 3 threads", a->lin, b->lin, (size_t)LIN_N * LIN_O, 1e-5);
    near("linear dx: 1 vs 3 threads", a->ldx, b->ldx, (size_t)LIN_N * LIN_I, 1e-5);
    near("linear dW: 1 vs 3 threads", a->ldw, b->ldw, (size_t)LIN_I * LIN_O, 1e-5);
    size_t nx = (size_t)AN * AT * AD, nw = (size_t)AD * AD;
    near("attention forward: 1 vs 3 threads", a->att, b->att, nx, 1e-5);
    near("attention dx: 1 vs 3 threads", a->datt_x, b->datt_x, nx, 1e-5);
    near("attention dWq: 1 vs 3 threads", a->datt_wq, b->datt_wq, nw, 1e-5);
    near("attention dWo: 1 vs 3 threads", a->datt_wo, b->datt_wo, nw, 1e-5);
    /* The comparison must not be vacuous: the runs computed something. */
    kc_expect(a->gelu[17] != 0.0f && a->adam_p[5] != b->sgd_p[5] && a->pool[3] > 0.0f &&
                  a->opool[3] > 0.0f,
              "outputs are computed", "%g %g", (double)a->gelu[17], (double)a->pool[3]);
}

int main(void) {
    mprt_set_threads(THREADS);
    check_pool();
    check_restart();
    check_zero();
    Out one = run(1), many = run(THREADS);
    compare(&one, &many);
    free_out(&one), free_out(&many);
    kc_expect(mprt_set_threads(0) >= 1, "mprt_set_threads(0) picks a count", "%g%g", 0.0, 0.0);
    printf("test_kernels_parallel: %d checks, %d failures\n", kc_checks, kc_failures);
    return kc_failures ? 1 : 0;
}
