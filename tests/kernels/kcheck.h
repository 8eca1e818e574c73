/*
 * kcheck.h: the little harness the kernel tests share (header-only, static inline).
 *
 * The method, llm.c-style: every float kernel's forward is compared with a naive
 * double-precision reference written in the test; every backward is compared with central
 * finite differences of that double reference, taken on the scalar L = Σ r ⊙ out for a
 * fixed random r (so dout = r). Gradients are pre-filled with a constant before the backward
 * call and the constant is subtracted afterwards, which checks that kernels accumulate (+=).
 *
 * Tolerances (docs/kernels.md): forwards max |got − want| ≤ 1e-5·(1 + max |want|); gradients
 * max |got − want| ≤ 1e-4·max |want| (1e-3 for layernorm's dx, whose terms cancel). The
 * finite differences are in double with h = 1e-6, so what is measured is the float
 * kernel's rounding. Shard identities compare float with float to 1e-6.
 */
#ifndef KCHECK_H
#define KCHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mprt_kernels.h"

static int kc_failures = 0;
static int kc_checks = 0;

/* A deterministic test-data generator (xorshift64*), values in [lo, hi). */
static uint64_t kc_state = 0x2545f4914f6cdd1dull;
static inline double kc_rand(double lo, double hi) {
    kc_state ^= kc_state >> 12;
    kc_state ^= kc_state << 25;
    kc_state ^= kc_state >> 27;
    uint64_t r = kc_state * 0x2545f4914f6cdd1dull;
    return lo + (hi - lo) * (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

static inline void *kc_alloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "kcheck: out of memory\n");
        exit(2);
    }
    return p;
}
static inline float *kc_floats(size_t n) { return kc_alloc(n, sizeof(float)); }
static inline double *kc_doubles(size_t n) { return kc_alloc(n, sizeof(double)); }

/* A random float tensor and its exact double copy. */
static inline float *kc_randf(size_t n, double lo, double hi, double **copy) {
    float *f = kc_floats(n);
    if (copy) *copy = kc_doubles(n);
    for (size_t i = 0; i < n; i++) {
        f[i] = (float)kc_rand(lo, hi);
        if (copy) (*copy)[i] = (double)f[i];
    }
    return f;
}

static inline void kc_fill(float *a, size_t n, float v) {
    for (size_t i = 0; i < n; i++)
        a[i] = v;
}

/* Records one check; prints it when it fails. */
static inline void kc_expect(int ok, const char *what, const char *fmt, double a, double b) {
    kc_checks++;
    if (ok) return;
    kc_failures++;
    fprintf(stderr, "FAIL %s: ", what);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
}

/* max |got − want| ≤ tol·(1 + max |want|); got is float, want double. */
static inline void kc_close(const char *what, const float *got, const double *want, size_t n,
                            double tol) {
    double err = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= err)) err = e; /* NaN-propagating max */
        if (fabs(want[i]) > mx) mx = fabs(want[i]);
    }
    kc_expect(err <= tol * (1.0 + mx), what, "max abs err %.3g (max |want| %.3g)", err, mx);
}

/* Gradient check: (got − pre) against want, max error relative to max |want|. Also demands
 * that want is not all zero, so a test cannot pass on a vanishing gradient. */
static inline void kc_grad(const char *what, const float *got, float pre, const double *want,
                           size_t n, double tol) {
    double err = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(((double)got[i] - (double)pre) - want[i]);
        if (!(e <= err)) err = e;
        if (fabs(want[i]) > mx) mx = fabs(want[i]);
    }
    kc_expect(mx > 0, what, "reference gradient is zero (%g %g)", mx, 0.0);
    kc_expect(err <= tol * mx, what, "max abs err %.3g vs max |grad| %.3g", err, mx);
}

/* A gradient that is zero in exact arithmetic: both (got − pre) and want below tol. */
static inline void kc_zero_grad(const char *what, const float *got, float pre, const double *want,
                                size_t n, double tol) {
    double mg = 0, mw = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)pre);
        if (!(e <= mg)) mg = e;
        if (fabs(want[i]) > mw) mw = fabs(want[i]);
    }
    kc_expect(mg <= tol && mw <= tol, what, "should vanish: kernel %.3g, reference %.3g", mg, mw);
}

/* Exact equality of two float tensors. */
static inline void kc_same(const char *what, const float *a, const float *b, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += a[i] != b[i];
    kc_expect(bad == 0, what, "%g of %g elements differ", (double)bad, (double)n);
}

/* A double-precision loss of the current contents of the test's reference buffers. */
typedef double (*KcLoss)(void *ctx);

/* Central differences: grad[i] = (L(p + h e_i) − L(p − h e_i)) / 2h over p[0..n). */
static inline void kc_fd(double *grad, double *p, size_t n, KcLoss loss, void *ctx) {
    const double h = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double lp = loss(ctx);
        p[i] = keep - h;
        double lm = loss(ctx);
        p[i] = keep;
        grad[i] = (lp - lm) / (2 * h);
    }
}

/* Σ r ⊙ out */
static inline double kc_dot(const double *r, const double *out, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += r[i] * out[i];
    return s;
}

static inline int kc_report(const char *name) {
    if (kc_failures) {
        fprintf(stderr, "%s: %d of %d checks failed\n", name, kc_failures, kc_checks);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, kc_checks);
    return 0;
}

#endif /* KCHECK_H */
