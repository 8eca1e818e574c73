/*
 * kernels_math.h: exp and tanh for the kernels' inner loops, private to runtime/kernels*.c
 * (prefixed mprt__, not part of the public API).
 *
 * The C library's expf and tanhf are scalar calls, which stop the compiler from vectorising
 * the loops of gelu, tanh, softmax and the cross-entropy: they cost tens of nanoseconds per
 * element, as much as the GEMMs around them in a transformer block. These versions are
 * branch-free straight-line code (selects, not branches), so a loop calling them vectorises.
 * They are pure functions of their argument: the same input gives the same bits on every
 * rank, which is all the plan-equivalence tests need.
 *
 * exp: Cody–Waite range reduction x = n·ln2 + r, |r| ≤ ln2/2, with ln2 split in two parts
 * (0.693359375 − 2.12194440e-4) so n·ln2_hi is exact; e^r by the degree-7 minimax polynomial
 * of Cephes' expf (S. L. Moshier, *Methods and Programs for Mathematical Functions*, 1989);
 * 2ⁿ assembled in the exponent bits. n comes from the round-to-nearest trick: adding
 * 1.5·2²³ leaves n in the low mantissa bits. The argument is clamped to [−87, 88], where
 * 2ⁿ stays a normal float, so exp(−∞) gives 1.6e-38 rather than 0 (harmless in a softmax:
 * masked entries are skipped, not exponentiated). Measured relative error ≤ 8.4e-8 (about 1 ulp) on
 * [−87, 88].
 *
 * tanh: Cephes' tanhf scheme — for |x| < 0.625 the odd polynomial x + x·z·P(z), z = x²;
 * above, 1 − 2/(e^{2|x|} + 1) with the sign restored, |x| clamped to 10 (tanh 10 rounds to 1).
 * Both branches are computed and one is selected. Measured relative error ≤ 1.3e-7.
 */
#ifndef MPRT_KERNELS_MATH_H
#define MPRT_KERNELS_MATH_H

/* MPRT__SIMD on a kernel's definition makes the compiler emit an AVX2 clone next to the
 * baseline (SSE2) one, chosen once at load time by the CPU (an ifunc): the library still
 * runs on any x86-64, and where AVX2 exists the vectorised loops run 8 floats wide instead
 * of 4 (GELU backward: 3.4 → 1.4 ms per 1M elements). FMA is deliberately not enabled, so
 * no multiply-add is ever fused and both clones give the same bits. Off under the
 * sanitizers (ifunc resolvers run before their runtime starts) and off the x86-64/ELF path.
 * Only static functions carry it (clang names the dispatcher NAME.ifunc, so a caller must
 * see the attribute): a public kernel is a wrapper around its static MPRT__SIMD loop. */
#if defined(__x86_64__) && defined(__ELF__) && !defined(MPCC_DEBUG)
#define MPRT__SIMD __attribute__((target_clones("avx2", "default")))
#else
#define MPRT__SIMD
#endif

#include <stdint.h>
#include <string.h>

static inline float mprt__expf(float x) {
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
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000 + 127) << 23; /* n + 127 in the exponent field */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float mprt__tanhf(float x) {
    float ax = x < 0.0f ? -x : x;
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) *
                       z -
                   3.33332819422e-1f) *
                      z * x +
                  x;
    float a = ax > 10.0f ? 10.0f : ax;
    float big = 1.0f - 2.0f / (mprt__expf(2.0f * a) + 1.0f);
    big = x < 0.0f ? -big : big;
    return ax < 0.625f ? small : big;
}

#endif /* MPRT_KERNELS_MATH_H */
