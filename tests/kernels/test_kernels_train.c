/*
 * test_kernels_train.c: the losses against double references and finite differences (with
 * the batch split into two halves summing to the whole), and the optimizers over three
 * steps against values worked out by hand and against the textbook form of each rule.
 */
#include "kcheck.h"

#define PRE 0.25f

/* ─────────────────────────────── losses ─────────────────────────────── */

enum { CM = 5, CV = 7 };

typedef struct CeCtx {
    const int32_t *labels;
    double scale;
    double *logits;
} CeCtx;

static double loss_ce(void *ctx) {
    CeCtx *c = ctx;
    double s = 0;
    for (int m = 0; m < CM; m++) {
        const double *row = c->logits + m * CV;
        double mx = row[0], z = 0;
        for (int j = 1; j < CV; j++)
            mx = row[j] > mx ? row[j] : mx;
        for (int j = 0; j < CV; j++)
            z += exp(row[j] - mx);
        s += log(z) + mx - row[c->labels[m]];
    }
    return s * c->scale;
}

static void test_cross_entropy(void) {
    int32_t labels[CM] = {2, 0, 6, 6, 3};
    CeCtx c = {.labels = labels, .scale = 1.0 / 8}; /* as if 8 rows globally */
    float *logits = kc_randf(CM * CV, -4, 4, &c.logits);
    double want = loss_ce(&c), g[CM * CV];
    double got = mprt_cross_entropy_forward(logits, labels, CM, CV, 0.125f);
    kc_expect(fabs(got - want) <= 1e-5 * fabs(want), "cross_entropy forward", "%.9g, want %.9g",
              got, want);
    double half = mprt_cross_entropy_forward(logits, labels, 2, CV, 0.125f) +
                  mprt_cross_entropy_forward(logits + 2 * CV, labels + 2, CM - 2, CV, 0.125f);
    kc_expect(fabs(half - got) <= 1e-6 * fabs(got), "cross_entropy: batch halves sum to whole",
              "%.9g vs %.9g", half, got);
    float d[CM * CV];
    kc_fill(d, CM * CV, PRE);
    mprt_cross_entropy_backward(d, logits, labels, CM, CV, 0.125f);
    kc_fd(g, c.logits, CM * CV, loss_ce, &c);
    kc_grad("cross_entropy dlogits", d, PRE, g, CM * CV, 1e-4);
    /* a confident right answer costs ~0, a confident wrong one ~its margin */
    float sure[2 * 3] = {20, 0, 0, 0, 0, 20};
    int32_t lab[2] = {0, 0};
    double easy = mprt_cross_entropy_forward(sure, lab, 1, 3, 1.0f);
    double hard = mprt_cross_entropy_forward(sure + 3, lab + 1, 1, 3, 1.0f);
    kc_expect(easy < 1e-8 && fabs(hard - 20.0) < 1e-6, "cross_entropy extremes",
              "right %g, wrong %g (want 0 and 20)", easy, hard);
    /* labels outside [0, V) are ignored rows: no loss, no gradient */
    int32_t odd[2] = {-100, 7};
    float d0[2 * 3] = {0};
    double ign = mprt_cross_entropy_forward(sure, odd, 2, 3, 1.0f);
    mprt_cross_entropy_backward(d0, sure, odd, 2, 3, 1.0f);
    int zero = 1;
    for (int i = 0; i < 6; i++)
        zero &= d0[i] == 0.0f;
    kc_expect(ign == 0.0 && zero, "cross_entropy ignores labels outside [0, V)", "loss %g %g", ign,
              0);
    free(logits), free(c.logits);
}

typedef struct MseCtx {
    double *pred, *target, scale;
    int n;
} MseCtx;

static double loss_mse(void *ctx) {
    MseCtx *c = ctx;
    double s = 0;
    for (int i = 0; i < c->n; i++)
        s += (c->pred[i] - c->target[i]) * (c->pred[i] - c->target[i]);
    return s * c->scale;
}

static void test_mse(void) {
    enum { n = 13 };
    MseCtx c = {.scale = 1.0 / n, .n = n};
    float *pred = kc_randf(n, -2, 2, &c.pred), *target = kc_randf(n, -2, 2, &c.target);
    double want = loss_mse(&c), g[n];
    double got = mprt_mse_forward(pred, target, n, 1.0f / n);
    kc_expect(fabs(got - want) <= 1e-6 * want, "mse forward", "%.9g, want %.9g", got, want);
    float d[n];
    kc_fill(d, n, PRE);
    mprt_mse_backward(d, pred, target, n, 1.0f / n);
    kc_fd(g, c.pred, n, loss_mse, &c);
    kc_grad("mse dpred", d, PRE, g, n, 1e-5);
    free(pred), free(target), free(c.pred), free(c.target);
}

/* ─────────────────────────────── optimizers ─────────────────────────────── */

static void expect_near(const char *what, double got, double want, double tol) {
    kc_expect(fabs(got - want) <= tol * (1 + fabs(want)), what, "%.9g, want %.9g", got, want);
}

/* p = 1, g = 0.5 every step, lr 0.1, momentum 0.9:
 * v = 0.5, 0.95, 1.355;  p = 0.95, 0.855, 0.7195. With wd = 0.1 the gradient is g + 0.1·p. */
static void test_sgd(void) {
    float p = 1, v = 0, g = 0.5f;
    const double want_p[3] = {0.95, 0.855, 0.7195}, want_v[3] = {0.5, 0.95, 1.355};
    for (int t = 0; t < 3; t++) {
        mprt_sgd_step(&p, &v, &g, 1, 0.1f, 0.9f, 0.0f);
        expect_near("sgd momentum p", p, want_p[t], 1e-6);
        expect_near("sgd momentum v", v, want_v[t], 1e-6);
    }
    /* plain SGD, no state: p = 1 − 3·0.1·0.5 */
    float q = 1;
    for (int t = 0; t < 3; t++)
        mprt_sgd_step(&q, NULL, &g, 1, 0.1f, 0.0f, 0.0f);
    expect_near("sgd plain p", q, 0.85, 1e-6);
    /* weight decay, by hand: step 1 g' = 0.5 + 0.1·1 = 0.6, v = 0.6, p = 0.94;
     * step 2 g' = 0.5 + 0.094 = 0.594, v = 0.54 + 0.594 = 1.134, p = 0.8266;
     * step 3 g' = 0.5 + 0.08266 = 0.58266, v = 1.0206 + 0.58266 = 1.60326, p = 0.666274 */
    float r = 1, w = 0;
    const double want_r[3] = {0.94, 0.8266, 0.666274};
    for (int t = 0; t < 3; t++) {
        mprt_sgd_step(&r, &w, &g, 1, 0.1f, 0.9f, 0.1f);
        expect_near("sgd weight decay p", r, want_r[t], 1e-6);
    }
}

/* The textbook Adam (Kingma & Ba, Algorithm 1) in double, with PyTorch's L2 weight decay or
 * AdamW's decoupled decay, for comparison with the kernel's PyTorch-form arithmetic. */
static void ref_adam(double *p, double *m, double *v, const double *g, int n, double lr, double b1,
                     double b2, double eps, double wd, int t, int decoupled) {
    for (int i = 0; i < n; i++) {
        if (decoupled) p[i] *= 1 - lr * wd;
        double gi = g[i] + (decoupled ? 0 : wd * p[i]);
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        double mh = m[i] / (1 - pow(b1, t)), vh = v[i] / (1 - pow(b2, t));
        p[i] -= lr * mh / (sqrt(vh) + eps);
    }
}

static void test_adam_reference(int decoupled) {
    enum { n = 5 };
    double P[n], M[n] = {0}, V[n] = {0}, G[n];
    float p[n], m[n] = {0}, v[n] = {0}, g[n];
    for (int i = 0; i < n; i++)
        p[i] = (float)(P[i] = (float)kc_rand(-1, 1));
    for (int t = 1; t <= 3; t++) {
        for (int i = 0; i < n; i++)
            g[i] = (float)(G[i] = (float)kc_rand(-1, 1));
        if (decoupled)
            mprt_adamw_step(p, m, v, g, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, t);
        else
            mprt_adam_step(p, m, v, g, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, t);
        ref_adam(P, M, V, G, n, 1e-2, 0.9f, 0.999f, 1e-8f, 0.1f, t, decoupled);
    }
    kc_close(decoupled ? "adamw 3 steps p" : "adam 3 steps p", p, P, n, 1e-6);
    kc_close(decoupled ? "adamw 3 steps m" : "adam 3 steps m", m, M, n, 1e-6);
    kc_close(decoupled ? "adamw 3 steps v" : "adam 3 steps v", v, V, n, 1e-6);
}

/* By hand: a constant gradient g makes m̂ = g and v̂ = g² exactly at every step (the bias
 * correction undoes the zero start), so each Adam step moves p by lr·g/(|g| + eps); AdamW
 * with decay wd first scales p by (1 − lr·wd). lr 0.01, g 0.5, eps 1e-8, p0 = 1:
 * Adam: 0.9900000002, 0.9800000004, 0.9700000006;
 * AdamW wd 0.1: 0.9890000002, 0.9780110004, 0.9670329896. */
static void test_adam_by_hand(void) {
    float p = 1, m = 0, v = 0, g = 0.5f, q = 1, mq = 0, vq = 0;
    double step = 0.01 * 0.5 / (0.5 + 1e-8), wq = 1;
    const double want_p[3] = {0.9900000002, 0.9800000004, 0.9700000006};
    for (int t = 1; t <= 3; t++) {
        mprt_adam_step(&p, &m, &v, &g, 1, 0.01f, 0.9f, 0.999f, 1e-8f, 0.0f, t);
        expect_near("adam constant gradient p", p, want_p[t - 1], 1e-6);
        mprt_adamw_step(&q, &mq, &vq, &g, 1, 0.01f, 0.9f, 0.999f, 1e-8f, 0.1f, t);
        wq = wq * (1 - 0.01 * 0.1) - step;
        expect_near("adamw constant gradient p", q, wq, 1e-6);
    }
    expect_near("adamw after 3 steps, by hand", q, 0.9670329896, 1e-6);
}

int main(void) {
    test_cross_entropy();
    test_mse();
    test_sgd();
    test_adam_reference(0);
    test_adam_reference(1);
    test_adam_by_hand();
    return kc_report("test_kernels_train");
}
