/*
 * sbgemm.c: is OpenBLAS's bf16 GEMM (cblas_sbgemm: bf16 inputs, f32 accumulation and output)
 * faster than its f32 GEMM (cblas_sgemm) on this CPU? docs/benchmarks.md, "bf16 GEMM".
 *
 *   OPENBLAS_NUM_THREADS=1 build/bench/bench_sbgemm [reps]
 *
 * For square and training-shaped sizes it prints the best of `reps` timings of each, in
 * GFLOP/s, and sbgemm's speed-up: without the conversion (inputs already bf16) and with the
 * conversion of both inputs from f32 counted (what a trainer that keeps f32 buffers pays).
 * Single-threaded, like each block of the runtime's GEMMs (runtime/gemm_blas.c). cblas.h
 * declares cblas_sbgemm whether or not the library was built with BUILD_BFLOAT16, so the
 * function is looked up at run time: a library without it prints sgemm's numbers and says so.
 */
#define _GNU_SOURCE
#include <cblas.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "mprt.h"

typedef void (*Sbgemm)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, blasint,
                       blasint, blasint, float, const bfloat16 *, blasint, const bfloat16 *,
                       blasint, float, float *, blasint);
static Sbgemm sbgemm;

static double best_of(int reps, int which, int M, int N, int K, const float *A, const float *B,
                      uint16_t *a, uint16_t *b, float *C) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = mprt_now();
        if (which == 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f,
                        C, N);
        } else {
            if (which == 2) {
                mprt_bf16_pack(a, A, (int64_t)M * K);
                mprt_bf16_pack(b, B, (int64_t)K * N);
            }
            sbgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, C,
                   N);
        }
        double t = mprt_now() - t0;
        if (t < best) best = t;
    }
    return best;
}

static void one(int reps, int M, int N, int K) {
    size_t na = (size_t)M * (size_t)K, nb = (size_t)K * (size_t)N;
    float *A = malloc(na * sizeof *A), *B = malloc(nb * sizeof *B);
    float *C = malloc((size_t)M * (size_t)N * sizeof *C);
    uint16_t *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b);
    for (size_t i = 0; i < na; i++)
        A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < nb; i++)
        B[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    mprt_bf16_pack(a, A, (int64_t)na);
    mprt_bf16_pack(b, B, (int64_t)nb);
    double flop = 2.0 * M * N * K, t[3];
    for (int w = 0; w < (sbgemm ? 3 : 1); w++)
        t[w] = best_of(reps, w, M, N, K, A, B, a, b, C);
    if (!sbgemm) {
        printf("%5d x %5d x %5d | sgemm %7.1f\n", M, N, K, flop / t[0] * 1e-9);
        free(A), free(B), free(C), free(a), free(b);
        return;
    }
    printf("%5d x %5d x %5d | sgemm %7.1f | sbgemm %7.1f (%.2fx) | with conversion %7.1f (%.2fx)\n",
           M, N, K, flop / t[0] * 1e-9, flop / t[1] * 1e-9, t[0] / t[1], flop / t[2] * 1e-9,
           t[0] / t[2]);
    free(A), free(B), free(C), free(a), free(b);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    mprt_init(&argc, &argv, 1, 1, 1);
    *(void **)&sbgemm = dlsym(RTLD_DEFAULT, "cblas_sbgemm");
    printf("cblas_sbgemm: %s\n",
           sbgemm ? "found" : "not in this OpenBLAS (built without BUILD_BFLOAT16)");
    printf("GFLOP/s, best of %d, M x N x K (row-major, no transpose), one thread\n", reps);
    static const int sizes[][3] = {{256, 256, 256},    {512, 512, 512}, {1024, 1024, 1024},
                                   {2048, 2048, 2048}, {512, 768, 768}, {512, 3072, 768},
                                   {512, 768, 3072},   {64, 128, 512}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        one(reps, sizes[i][0], sizes[i][1], sizes[i][2]);
    mprt_finalize();
    return 0;
}
