/*
 * cu_test.h: what the GPU kernel tests share (test_cu_kernels.c, the f32 kernels; test_cu_bf16.c,
 * a bf16 trainer's): random inputs, device copies, and the comparisons, which count checks and
 * failures. Each test program is one file, so the state below is its own.
 */
#ifndef MPCC_TESTS_CU_TEST_H
#define MPCC_TESTS_CU_TEST_H

#include "mprt.h"
#include "mprt_cuda.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures, checks;
static double tol = 1e-4;

static uint64_t rng_state = 0x1234567ull;
static inline float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 40) / 8388608.0 - 1.0);
}

static inline float *hrand(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static inline float *hfill(int64_t n, float v) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++)
        p[i] = v;
    return p;
}

static inline void *dcopy(const void *h, size_t bytes) {
    void *d = mprt_cu_malloc(bytes);
    mprt_cu_upload(d, h, bytes);
    return d;
}
static inline float *dev(const float *h, int64_t n) { return dcopy(h, (size_t)n * sizeof(float)); }

/* Compares n floats of device buffer d with the host reference. */
static inline void cmp(const char *what, const float *d, const float *ref, int64_t n, double t) {
    float *g = malloc((size_t)(n > 0 ? n : 1) * sizeof *g);
    mprt_cu_download(g, d, (size_t)n * sizeof(float));
    double maxref = 1.0, maxdiff = 0.0;
    int64_t worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double r = fabs((double)ref[i]), df = fabs((double)g[i] - (double)ref[i]);
        if (r > maxref) maxref = r;
        if (!(df <= maxdiff)) maxdiff = df, worst = i;
    }
    checks++;
    if (!(maxdiff <= t * maxref)) {
        failures++;
        printf("FAIL %s: max |gpu - cpu| = %.3g at %lld (gpu %.9g, cpu %.9g), allowed %.3g\n", what,
               maxdiff, (long long)worst, (double)g[worst], (double)ref[worst], t * maxref);
    }
    free(g);
}

static inline void cmp_exact_bytes(const char *what, const void *d, const void *ref, size_t bytes) {
    void *g = malloc(bytes ? bytes : 1);
    mprt_cu_download(g, d, bytes);
    checks++;
    if (memcmp(g, ref, bytes) != 0) {
        failures++;
        printf("FAIL %s: not bit-identical to the CPU\n", what);
    }
    free(g);
}

/* Two device buffers of the same bytes: a kernel's two entries on the same values. */
static inline void cmp_dev_exact(const char *what, const void *d, const void *d2, size_t bytes) {
    void *ref = malloc(bytes ? bytes : 1);
    mprt_cu_download(ref, d2, bytes);
    cmp_exact_bytes(what, d, ref, bytes);
    free(ref);
}

static inline void cmp_scalar(const char *what, double gpu, double cpu, double t) {
    checks++;
    if (!(fabs(gpu - cpu) <= t * fmax(1.0, fabs(cpu)))) {
        failures++;
        printf("FAIL %s: gpu %.12g, cpu %.12g\n", what, gpu, cpu);
    }
}
/* A unary op of the mprt_ew.h table: the CPU forward and backward, the GPU ones; the backward
 * reads the forward output (X(tanh, out)) or input (X(relu, x)). */
typedef void (*Unary)(float *restrict, const float *restrict, int64_t);
typedef void (*UnaryBwd)(float *restrict, const float *restrict, const float *restrict, int64_t);
typedef void (*CuUnary)(float *, const float *, int64_t);
typedef void (*CuUnaryBwd)(float *, const float *, const float *, int64_t);
#define BWD_FROM_OUT_x false
#define BWD_FROM_OUT_out true

/* The attention weights in MprtAttnW order. */
enum { AW_WQ, AW_BQ, AW_WK, AW_BK, AW_WV, AW_BV, AW_WO, AW_BO, AW__N };

#endif /* MPCC_TESTS_CU_TEST_H */
