/*
 * mprt_ew.h: the one definition of every elementwise function of the runtime — the exp and
 * tanh primitives and each activation's forward and gradient — written once as inline
 * functions that the CPU kernels (runtime/kernels*.c, C11) and the CUDA kernels
 * (runtime/cuda/kernels_*.cu, nvcc) both expand. Neither side spells a formula of its own,
 * so their results cannot drift apart (docs/kernels.md, "One definition of the elementwise
 * math").
 *
 * THE TABLE. MPRT_EW_UNARY(X) lists the unary elementwise ops as X(name, saved): `saved` is
 * the tensor the backward reads, `x` (the forward input) or `out` (the forward output). Each
 * row has two functions next to it:
 *
 *   float mprt_ew_NAME_fwd(float x)             the forward value
 *   float mprt_ew_NAME_grad(float dy, float s)  dy · NAME'(x), computed from s = x or s = out
 *
 * (the gradient takes dy so that relu can pass it through as a select: an infinite dy at
 * x ≤ 0 gives 0, not ∞·0 = NaN). Expanding the table gives, for every row:
 *   - runtime/mprt_kernels.h: the prototypes of mprt_NAME_forward / mprt_NAME_backward;
 *   - runtime/kernels.c: their vectorised loops on the rank's thread pool;
 *   - runtime/cuda/mprt_cuda.h and kernels_dense.cu: mprt_cu_NAME_forward / _backward;
 *   - tests/kernels/test_kernels_ew.c and tests/cuda: the checks of all of them.
 *
 * ADDING AN OP, e.g. silu(x) = x·σ(x): one row and its two functions, here, and nothing
 * else in the runtime:
 *
 *     X(silu, x)                                          (in MPRT_EW_UNARY)
 *     MPRT_EW_FN float mprt_ew_silu_fwd(float x) { return x / (1.0f + mprt_ew_expf(-x)); }
 *     MPRT_EW_FN float mprt_ew_silu_grad(float dy, float x) {
 *         float s = 1.0f / (1.0f + mprt_ew_expf(-x));
 *         return dy * (s + x * s * (1.0f - s));
 *     }
 *
 * The build then asks for the rest by name: the kernel test needs a double-precision
 * reference ref_silu / dref_silu (tests/kernels/test_kernels_ew.c does not compile without
 * one), and the compiler's op tables (ir/ops.def, the rules) make `silu` reachable from a
 * model (docs/adding-an-op.md).
 *
 * RULES FOR A FUNCTION HERE. It must compile as C11 under the project's strict warnings and
 * as CUDA C++ (MPRT_EW_HD is __host__ __device__ under nvcc); it must be branch-free
 * straight-line code (selects, not if/else), so the CPU loops calling it vectorise; and it
 * must not call libm's or CUDA's transcendental functions: exp and tanh are the ones below,
 * so both sides evaluate the same operations in the same order. Neither side fuses a
 * multiply and an add (the CPU builds without FMA, see kernels_math.h; runtime/cuda builds
 * with nvcc --fmad=false), and both round +, −, ×, ÷ as IEEE single precision, so an
 * elementwise kernel gives the same bits on the GPU as on the CPU.
 *
 * WHY NOT THE DEVICE INTRINSICS. __expf and tanh.approx are faster but less accurate
 * (tanh.approx has a relative error near 2⁻¹¹) and libdevice's tanhf/expf are accurate but
 * different: either would make the GPU disagree with the CPU in the last bits, or worse, and
 * the elementwise kernels are memory-bound, so the dozen extra multiply-adds of the
 * polynomials cost nothing measurable there.
 *
 * exp: Cody–Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, with ln2 split in two parts
 * (0.693359375 − 2.12194440e-4) so n·ln2_hi is exact; e^r by the degree-7 minimax polynomial
 * of Cephes' expf (S. L. Moshier, *Methods and Programs for Mathematical Functions*, 1989);
 * 2ⁿ assembled in the exponent bits. n comes from the round-to-nearest trick: adding
 * 1.5·2²³ leaves n in the low mantissa bits. The argument is clamped to [−87, 88], where
 * 2ⁿ stays a normal float, so exp(−∞) gives 1.6e-38 rather than 0 (harmless in a softmax:
 * masked entries are skipped, not exponentiated) and exp(+∞) gives 1.65e38. A NaN argument
 * passes the clamps and gives NaN; the exponent is assembled in unsigned arithmetic, so a
 * NaN's (or any) bit pattern shifts without undefined behaviour. Measured relative error
 * ≤ 8.4e-8 (about 1 ulp) on [−87, 88].
 *
 * tanh: Cephes' tanhf scheme — for |x| < 0.625 the odd polynomial x + x·z·P(z), z = x²;
 * above, 1 − 2/(e^{2|x|} + 1) with the sign restored, |x| clamped to 10 (tanh 10 rounds to 1).
 * Both branches are computed and one is selected. tanh(±∞) = ±1, tanh(NaN) = NaN. Measured
 * relative error ≤ 1.3e-7.
 */
#ifndef MPRT_EW_H
#define MPRT_EW_H

#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define MPRT_EW_HD __host__ __device__
#else
#define MPRT_EW_HD
#endif
#define MPRT_EW_FN MPRT_EW_HD static inline

/* The unary elementwise ops: X(name, the tensor the backward reads: x or out). */
#define MPRT_EW_UNARY(X)                                                                           \
    X(relu, x)                                                                                     \
    X(gelu, x)                                                                                     \
    X(tanh, out)                                                                                   \
    X(silu, x)

/* ─────────────────────────────── primitives ─────────────────────────────── */

MPRT_EW_FN float mprt_ew_expf(float x) {
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f + 12582912.0f; /* 1.5·2²³: rounds x·log2(e) */
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000u + 127u) << 23; /* n + 127 in the exponent field */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

MPRT_EW_FN float mprt_ew_tanhf(float x) {
    float ax = x < 0.0f ? -x : x;
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) *
                       z -
                   3.33332819422e-1f) *
                      z * x +
                  x;
    float a = ax > 10.0f ? 10.0f : ax;
    float big = 1.0f - 2.0f / (mprt_ew_expf(2.0f * a) + 1.0f);
    big = x < 0.0f ? -big : big;
    return ax < 0.625f ? small : big;
}

/* ─────────────────────────────── the ops ─────────────────────────────── */

/* relu: max(x, 0); dy·[x > 0]. NaN gives 0 (the comparison is false). */
MPRT_EW_FN float mprt_ew_relu_fwd(float x) { return x > 0.0f ? x : 0.0f; }
MPRT_EW_FN float mprt_ew_relu_grad(float dy, float x) { return x > 0.0f ? dy : 0.0f; }

/* gelu, GPT-2's tanh form (Hendrycks & Gimpel 2016): ½x(1 + tanh u), u = c(x + a x³),
 * c = √(2/π), a = 0.044715; derivative ½(1 + tanh u) + ½x(1 − tanh² u)·c(1 + 3a x²).
 * gelu(+∞) = +∞, gelu(−∞) = NaN (−∞·0), NaN gives NaN. */
#define MPRT_EW_GELU_C 0.7978845608028654f /* √(2/π) */
#define MPRT_EW_GELU_A 0.044715f

MPRT_EW_FN float mprt_ew_gelu_fwd(float x) {
    float t = mprt_ew_tanhf(MPRT_EW_GELU_C * (x + MPRT_EW_GELU_A * x * x * x));
    return 0.5f * x * (1.0f + t);
}
MPRT_EW_FN float mprt_ew_gelu_grad(float dy, float x) {
    float t = mprt_ew_tanhf(MPRT_EW_GELU_C * (x + MPRT_EW_GELU_A * x * x * x));
    float du = MPRT_EW_GELU_C * (1.0f + 3.0f * MPRT_EW_GELU_A * x * x);
    return dy * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
}

/* tanh; the gradient from the forward OUTPUT: dy·(1 − out²). */
MPRT_EW_FN float mprt_ew_tanh_fwd(float x) { return mprt_ew_tanhf(x); }
MPRT_EW_FN float mprt_ew_tanh_grad(float dy, float out) { return dy * (1.0f - out * out); }

/* silu (Elfwing et al. 2018; "swish" with β = 1): x·σ(x), σ(x) = 1/(1 + e^{−x}); derivative
 * σ(x)·(1 + x·(1 − σ(x))). σ never reaches 0 (exp clamps at e^88), so silu(−∞) = −∞ rather
 * than the limit 0; silu(+∞) = +∞, NaN gives NaN. */
MPRT_EW_FN float mprt_ew_silu_fwd(float x) { return x / (1.0f + mprt_ew_expf(-x)); }
MPRT_EW_FN float mprt_ew_silu_grad(float dy, float x) {
    float s = 1.0f / (1.0f + mprt_ew_expf(-x));
    return dy * (s + x * s * (1.0f - s));
}

#endif /* MPRT_EW_H */
