/*
 * test_kernels_math.c: the vectorisable exp and tanh of runtime/mprt_ew.h against the
 * C library in double, over their whole working range on a dense grid plus the edges.
 * Bounds (docs/kernels.md): relative error ≤ 2e-7 for exp on [−87, 88] and for tanh on
 * [−20, 20] (measured: 8.4e-8 and 1.3e-7); exact at 0 and in tanh's saturation.
 */
#include "kcheck.h"
#include "kernels_math.h"

static void test_exp(void) {
    double worst = 0, at = 0;
    for (int i = 0; i <= 1750000; i++) {
        float x = -87.0f + (float)i * 1e-4f;
        double want = exp((double)x), err = fabs((double)mprt_ew_expf(x) - want) / want;
        if (err > worst) worst = err, at = x;
    }
    kc_expect(worst <= 2e-7, "exp relative error on [-87, 88]", "%.3g at x = %g", worst, at);
    kc_expect(mprt_ew_expf(0.0f) == 1.0f, "exp(0) is exactly 1", "%g %g", mprt_ew_expf(0.0f), 1);
    float lo = mprt_ew_expf(-INFINITY), hi = mprt_ew_expf(200.0f);
    kc_expect(lo >= 0 && lo < 1e-37f, "exp(-inf) is ~0", "%g %g", lo, 0);
    kc_expect(isfinite(hi) && hi > 1e38f, "exp of a large argument saturates", "%g %g", hi, 0);
}

static void test_tanh(void) {
    double worst = 0, at = 0;
    for (int i = -200000; i <= 200000; i++) {
        float x = (float)i * 1e-4f;
        double want = tanh((double)x);
        double err = fabs((double)mprt_ew_tanhf(x) - want) / fmax(fabs(want), 1e-30);
        if (err > worst) worst = err, at = x;
    }
    kc_expect(worst <= 2e-7, "tanh relative error on [-20, 20]", "%.3g at x = %g", worst, at);
    kc_expect(mprt_ew_tanhf(0.0f) == 0.0f && mprt_ew_tanhf(30.0f) == 1.0f &&
                  mprt_ew_tanhf(-30.0f) == -1.0f,
              "tanh at 0 and the saturation", "%g %g", mprt_ew_tanhf(0.0f), mprt_ew_tanhf(30.0f));
    kc_expect(fabs(mprt_ew_tanhf(1e-20f) - 1e-20f) < 1e-26f, "tanh of a tiny argument", "%g %g",
              mprt_ew_tanhf(1e-20f), 1e-20);
}

int main(void) {
    test_exp();
    test_tanh();
    return kc_report("test_kernels_math");
}
