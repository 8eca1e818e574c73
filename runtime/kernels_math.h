/*
 * kernels_math.h: what the CPU kernels' inner loops share, private to runtime/kernels*.c:
 * the elementwise math of runtime/mprt_ew.h (exp, tanh and every activation, defined once
 * for the CPU and the GPU) and MPRT__SIMD, the AVX2 clone of a vectorised loop.
 *
 * The C library's expf and tanhf are scalar calls, which stop the compiler from vectorising
 * the loops of gelu, tanh, softmax and the cross-entropy: they cost tens of nanoseconds per
 * element, as much as the GEMMs around them in a transformer block. mprt_ew.h's versions
 * (mprt_ew_expf, mprt_ew_tanhf) are branch-free straight-line code (selects, not branches),
 * so a loop calling them vectorises. They are pure functions of their argument: the same
 * input gives the same bits on every rank, which is all the plan-equivalence tests need.
 */
#ifndef MPRT_KERNELS_MATH_H
#define MPRT_KERNELS_MATH_H

#include "mprt_ew.h"

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

#endif /* MPRT_KERNELS_MATH_H */
