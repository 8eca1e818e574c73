/*
 * gemm_blas.c: every matrix product of the CPU kernels, on OpenBLAS, cut across the rank's
 * thread pool.
 *
 * OpenBLAS runs single-threaded here, and the pool (parallel.c) does the threading: a product
 * C[M, N] = op(A)·op(B) is cut into blocks of whole rows of C when M ≥ N, else of whole
 * columns, 16 at a time (a multiple of OpenBLAS's register tiles on x86-64), and each thread
 * makes one single-threaded cblas_sgemm call on its block. One pool for GEMMs and for the
 * elementwise loops matters: with OpenBLAS's own threads beside the pool, the two sets of
 * threads took cores from each other (OpenBLAS's idle threads spin in sched_yield for a
 * while after every call), and the transformer step got slower, not faster (measured;
 * docs/benchmarks.md). Small products (under GEMM_SERIAL_FLOPS) stay on the calling thread,
 * as do products started from inside a pool job (attention's per-head cores run in
 * parallel, one head per thread).
 *
 * A block's result does not match the same rows computed inside a larger call bit for bit
 * (OpenBLAS's edge tiles add in another order), so GEMM results depend on the thread count at
 * the level of float rounding; the plan-equivalence tests compare with a tolerance for this
 * reason, as they do across ranks.
 */
#include "internal.h"

#include <cblas.h>
#include <stddef.h>

#define GEMM_BLOCK 16
/* Products under this many FLOPs (about 20–30 µs of one core) do not wake the pool. */
#define GEMM_SERIAL_FLOPS (1 << 21)

typedef struct Gemm {
    bool ta, tb, by_rows;
    int M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
} Gemm;

static void gemm_call(const Gemm *g, int m0, int m, int n0, int n) {
    const float *A = g->ta ? g->A + m0 : g->A + (size_t)m0 * (size_t)g->lda;
    const float *B = g->tb ? g->B + (size_t)n0 * (size_t)g->ldb : g->B + n0;
    float *C = g->C + (size_t)m0 * (size_t)g->ldc + n0;
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                m, n, g->K, g->alpha, A, g->lda, B, g->ldb, g->beta, C, g->ldc);
}

/* Blocks [lo, hi) of GEMM_BLOCK rows or columns. */
static void gemm_part(void *ctx, int64_t lo, int64_t hi, int part) {
    (void)part;
    const Gemm *g = ctx;
    int dim = g->by_rows ? g->M : g->N;
    int a = (int)lo * GEMM_BLOCK, b = (int)hi * GEMM_BLOCK < dim ? (int)hi * GEMM_BLOCK : dim;
    if (g->by_rows)
        gemm_call(g, a, b - a, 0, g->N);
    else
        gemm_call(g, 0, g->M, a, b - a);
}

void mprt__sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    Gemm g = {ta, tb, M >= N, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C};
    double flops = 2.0 * M * N * (K > 0 ? K : 1);
    int dim = g.by_rows ? M : N;
    if (flops < GEMM_SERIAL_FLOPS || mprt_threads() <= 1) {
        gemm_call(&g, 0, M, 0, N);
        return;
    }
    mprt__parallel_for((dim + GEMM_BLOCK - 1) / GEMM_BLOCK, 1, gemm_part, &g);
}
