/*
 * gemm.cu: every matrix product of mprt_cuda goes through the two functions here, the only
 * code that knows cuBLAS is column-major.
 *
 * The runtime stores matrices row-major, as the CPU kernels and the checkpoints do. A
 * row-major matrix with r rows, c columns and row length ld is, read column-major with
 * leading dimension ld, its own transpose. So the row-major product C = op(A)·op(B) is the
 * column-major product Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands, swap M and N, keep each
 * operand's transpose flag and leading dimension. Nothing is copied or transposed.
 *
 * Precision: FP32 by default (CUBLAS_DEFAULT_MATH, which cuBLAS keeps in full fp32);
 * mprt_cu_set_tf32(true) switches the handle to CUBLAS_TF32_TENSOR_OP_MATH, which rounds the
 * inputs of each product to TF32 (10-bit mantissa) and accumulates in fp32.
 *
 * bf16 (mprt_cu_gemm_bf16): cublasGemmEx with CUDA_R_16BF operands, an fp32 C and
 * CUBLAS_COMPUTE_32F, so products and sums are fp32 (on the tensor cores) and only the
 * operands are bf16 (docs/cuda.md, "bf16").
 */
#include "cu_internal.h"

static cublasOperation_t op(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }

extern "C" void mprt_cu_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                             int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    CUBLAS_CHECK(cublasSgemm(mprt_cu_cublas(), op(tb), op(ta), N, M, K, &alpha, B, ldb, A, lda,
                             &beta, C, ldc));
}

extern "C" void mprt_cu_gemm_batched(bool ta, bool tb, int M, int N, int K, float alpha,
                                     const float *A, int lda, int64_t sA, const float *B, int ldb,
                                     int64_t sB, float beta, float *C, int ldc, int64_t sC,
                                     int batch) {
    if (M == 0 || N == 0 || batch == 0) return;
    CUBLAS_CHECK(cublasSgemmStridedBatched(mprt_cu_cublas(), op(tb), op(ta), N, M, K, &alpha, B,
                                           ldb, sB, A, lda, sA, &beta, C, ldc, sC, batch));
}

extern "C" void mprt_cu_gemm_bf16(bool ta, bool tb, int M, int N, int K, float alpha,
                                  const uint16_t *A, int lda, const uint16_t *B, int ldb,
                                  float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    CUBLAS_CHECK(cublasGemmEx(mprt_cu_cublas(), op(tb), op(ta), N, M, K, &alpha, B, CUDA_R_16BF,
                              ldb, A, CUDA_R_16BF, lda, &beta, C, CUDA_R_32F, ldc,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
