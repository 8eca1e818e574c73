/*
 * test_kernels_ew.c: the elementwise table of runtime/mprt_ew.h, which the CPU kernels and
 * the CUDA kernels both expand (tests/cuda checks the GPU side links and, on a GPU, matches).
 *
 *   - Every row X(name, saved) of MPRT_EW_UNARY against its documented formula, evaluated
 *     in double here (ref_NAME, dref_NAME): forward and gradient on a dense grid and at the
 *     edge values (±0, denormals, the tanh branch point, saturation, ±FLT_MAX). A row with no
 *     reference below does not compile: adding an op means writing its reference.
 *   - Each documented derivative is the derivative of its forward: central differences of
 *     the double reference.
 *   - The kernels mprt_NAME_forward / _backward are the table: bit for bit the inline
 *     functions, element by element (and the backward accumulates).
 *   - NaN and ±∞ inputs: no undefined behaviour (this test runs under UBSan in the sanitizer
 *     build: mprt_ew_expf once shifted a NaN's negative bit pattern), NaN propagates
 *     (except through relu, documented: NaN > 0 is false), and the values at ±∞ that the
 *     header documents.
 * Tolerance: |got − want| ≤ 1e-6·max(1, |want|) forward, 1e-5·max(1, |want|) for gradients:
 * the float formulas' own rounding (gelu's 1 + tanh u and 1 − tanh² u cancel for negative
 * x, so the bounds are absolute near 0; measured 1.0e-7 and 1.4e-6, both at gelu).
 */
#include "kcheck.h"
#include "kernels_math.h"

#include <float.h>

/* ─────────────────────── the documented formulas, in double ─────────────────────── */

static double ref_relu(double x) { return x > 0 ? x : 0; }
static double dref_relu(double x) { return x > 0 ? 1 : 0; }

#define GC 0.79788456080286535588 /* √(2/π) */
#define GA 0.044715
static double ref_gelu(double x) { return 0.5 * x * (1 + tanh(GC * (x + GA * x * x * x))); }
static double dref_gelu(double x) {
    double t = tanh(GC * (x + GA * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GC * (1 + 3 * GA * x * x);
}

static double ref_tanh(double x) { return tanh(x); }
static double dref_tanh(double x) { return 1 - tanh(x) * tanh(x); }

static double sigmoid(double x) { return 1 / (1 + exp(-x)); }
static double ref_silu(double x) { return x * sigmoid(x); }
static double dref_silu(double x) { return sigmoid(x) * (1 + x * (1 - sigmoid(x))); }

/* Whether the row's backward reads the forward output (X(name, out)) or the input. */
#define SAVED_IS_OUT_x 0
#define SAVED_IS_OUT_out 1

typedef struct EwOp {
    const char *name;
    float (*fwd)(float);
    float (*grad)(float, float);
    double (*ref)(double), (*dref)(double);
    void (*kfwd)(float *restrict, const float *restrict, int64_t);
    void (*kbwd)(float *restrict, const float *restrict, const float *restrict, int64_t);
    int saved_out;
} EwOp;

#define EW_ROW(name, saved)                                                                        \
    {#name,       mprt_ew_##name##_fwd,  mprt_ew_##name##_grad,  ref_##name,                       \
     dref_##name, mprt_##name##_forward, mprt_##name##_backward, SAVED_IS_OUT_##saved},
static const EwOp ops[] = {MPRT_EW_UNARY(EW_ROW)};
#define NOPS (sizeof ops / sizeof ops[0])

/* ─────────────────────────────── the points ─────────────────────────────── */

#define NGRID 24001 /* [-12, 12] by 1e-3 */
static const float edges[] = {0.0f,    -0.0f,    1e-30f, -1e-30f, 1e-40f,  -1e-40f, 0.625f, -0.625f,
                              0.6249f, -0.6249f, 10.0f,  -10.0f,  20.0f,   -20.0f,  88.0f,  -88.0f,
                              1e15f,   -1e15f,   1e19f,  -1e19f,  FLT_MIN, -FLT_MIN};
#define NEDGES (sizeof edges / sizeof edges[0])
#define NPTS (NGRID + NEDGES)

static float point(size_t i) { return i < NGRID ? -12.0f + (float)i * 1e-3f : edges[i - NGRID]; }

/* The value the saved tensor holds at x: x itself or the forward output. */
static float saved_at(const EwOp *op, float x) { return op->saved_out ? op->fwd(x) : x; }

static double tol(double want) { return 1e-6 * fmax(1.0, fabs(want)); }
static double grad_tol(double want) { return 1e-5 * fmax(1.0, fabs(want)); }

/* ─────────────────────────────── checks ─────────────────────────────── */

/* Forward and gradient (for dy = 1 and dy = −2.5) against the double formulas. */
static void check_formulas(const EwOp *op) {
    double wf = 0, wg = 0, atf = 0, atg = 0;
    for (size_t i = 0; i < NPTS; i++) {
        float x = point(i);
        double ef = fabs((double)op->fwd(x) - op->ref(x)) / tol(op->ref(x));
        if (!(ef <= wf)) wf = ef, atf = x;
        for (int k = 0; k < 2; k++) {
            float dy = k ? -2.5f : 1.0f;
            double want = (double)dy * op->dref(x);
            double eg = fabs((double)op->grad(dy, saved_at(op, x)) - want) / grad_tol(want);
            if (!(eg <= wg)) wg = eg, atg = x;
        }
    }
    char what[96];
    snprintf(what, sizeof what, "%s forward = its formula (error / tolerance)", op->name);
    kc_expect(wf <= 1.0, what, "%.3g at x = %g", wf, atf);
    snprintf(what, sizeof what, "%s gradient = dy * its derivative (error / tolerance)", op->name);
    kc_expect(wg <= 1.0, what, "%.3g at x = %g", wg, atg);
}

/* The documented derivative is the derivative of the documented forward. */
static void check_derivative(const EwOp *op) {
    const double h = 1e-5;
    double worst = 0, at = 0;
    for (double x = -8.0; x <= 8.0; x += 0.01) {
        if (fabs(x) < 2 * h) continue; /* relu's kink */
        double fd = (op->ref(x + h) - op->ref(x - h)) / (2 * h);
        double err = fabs(fd - op->dref(x));
        if (err > worst) worst = err, at = x;
    }
    char what[96];
    snprintf(what, sizeof what, "%s derivative = central differences of its forward", op->name);
    kc_expect(worst <= 1e-8, what, "%.3g at x = %g", worst, at);
}

/* Bitwise equality, NaN equal to NaN. */
static int same_bits(float a, float b) {
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

/* The kernels compute exactly the table's functions (vectorised, on any thread count). */
static void check_kernels(const EwOp *op, const float *x, size_t n) {
    float *out = kc_floats(n), *dout = kc_floats(n), *dx = kc_floats(n), *s = kc_floats(n);
    for (size_t i = 0; i < n; i++) {
        dout[i] = (float)kc_rand(-2, 2);
        dx[i] = 0.25f;
    }
    op->kfwd(out, x, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        s[i] = op->saved_out ? out[i] : x[i];
    op->kbwd(dx, dout, s, (int64_t)n);
    size_t bad_f = 0, bad_b = 0, first = n;
    for (size_t i = 0; i < n; i++) {
        int bf = !same_bits(out[i], op->fwd(x[i]));
        int bb = !same_bits(dx[i], 0.25f + op->grad(dout[i], s[i]));
        bad_f += (size_t)bf, bad_b += (size_t)bb;
        if ((bf || bb) && first == n) first = i;
    }
    char what[96];
    snprintf(what, sizeof what, "mprt_%s_forward/_backward are the table, bit for bit", op->name);
    kc_expect(bad_f + bad_b == 0, what, "%g elements differ, first at x = %g",
              (double)(bad_f + bad_b), first < n ? (double)x[first] : 0.0);
    free(out), free(dout), free(dx), free(s);
}

/* NaN propagates (relu maps it to 0); ±∞ give the header's documented values. */
static void check_specials(const EwOp *op) {
    int relu = strcmp(op->name, "relu") == 0, gelu = strcmp(op->name, "gelu") == 0;
    int silu = strcmp(op->name, "silu") == 0;
    float f = op->fwd(NAN), g = op->grad(1.0f, NAN);
    char what[96];
    snprintf(what, sizeof what, "%s of NaN is NaN (relu: 0)", op->name);
    kc_expect(relu ? f == 0.0f && g == 0.0f : isnan(f) && isnan(g), what, "%g, gradient %g", f, g);
    float pinf = op->fwd(INFINITY), ninf = op->fwd(-INFINITY);
    snprintf(what, sizeof what, "%s at +inf and -inf", op->name);
    if (relu)
        kc_expect(pinf == INFINITY && ninf == 0.0f, what, "%g %g", pinf, ninf);
    else if (gelu)
        kc_expect(pinf == INFINITY && isnan(ninf), what, "%g %g", pinf, ninf);
    else if (silu)
        kc_expect(pinf == INFINITY && ninf == -INFINITY, what, "%g %g", pinf, ninf);
    else
        kc_expect(pinf == 1.0f && ninf == -1.0f, what, "%g %g", pinf, ninf);
}

/* The primitives on NaN and ±∞ (the UBSan finding of issue 13: a NaN's bit pattern was
 * shifted as a negative int in mprt_ew_expf). */
static void check_primitives(void) {
    kc_expect(isnan(mprt_ew_expf(NAN)) && isnan(mprt_ew_expf(-NAN)), "exp(NaN) is NaN", "%g %g",
              mprt_ew_expf(NAN), mprt_ew_expf(-NAN));
    float hi = mprt_ew_expf(INFINITY), lo = mprt_ew_expf(-INFINITY);
    kc_expect(hi > 1.6e38f && hi < 1.7e38f && lo > 1.5e-38f && lo < 1.7e-38f,
              "exp(+inf) and exp(-inf) clamp to exp(88) and exp(-87)", "%g %g", hi, lo);
    kc_expect(isnan(mprt_ew_tanhf(NAN)) && mprt_ew_tanhf(INFINITY) == 1.0f &&
                  mprt_ew_tanhf(-INFINITY) == -1.0f,
              "tanh of NaN, +inf, -inf", "%g %g", mprt_ew_tanhf(NAN), mprt_ew_tanhf(INFINITY));
}

/* A softmax row and a cross-entropy over logits holding NaN and ±∞ run without UB, and the
 * poisoned rows come out NaN rather than a plausible number. */
static void check_losses_with_specials(void) {
    float logits[2 * 4] = {0.5f, NAN, -1.0f, 2.0f, INFINITY, 1.0f, -INFINITY, 0.0f};
    float dlogits[2 * 4] = {0};
    int32_t labels[2] = {0, 1};
    double loss = mprt_cross_entropy_forward(logits, labels, 2, 4, 0.5f);
    kc_expect(isnan(loss), "cross-entropy over NaN / inf logits is NaN", "%g %g", loss, 0);
    mprt_cross_entropy_backward(dlogits, logits, labels, 2, 4, 0.5f);
    kc_expect(isnan(dlogits[0]), "its gradient on the NaN row is NaN", "%g %g", dlogits[0], 0);
}

int main(void) {
    check_primitives();
    float *x = kc_floats(NPTS + 9);
    for (size_t i = 0; i < NPTS; i++)
        x[i] = point(i);
    const float specials[9] = {NAN, -NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 1e38f, 0, 1};
    memcpy(x + NPTS, specials, sizeof specials);
    for (size_t k = 0; k < NOPS; k++) {
        check_formulas(&ops[k]);
        check_derivative(&ops[k]);
        check_specials(&ops[k]);
        check_kernels(&ops[k], x, NPTS + 9);
        mprt_set_threads(3);
        check_kernels(&ops[k], x, NPTS + 9);
        mprt_set_threads(1);
    }
    check_losses_with_specials();
    free(x);
    return kc_report("test_kernels_ew");
}
