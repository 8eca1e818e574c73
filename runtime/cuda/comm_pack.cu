/*
 * comm_pack.cu: the data movement around collectives. NCCL's all-gather concatenates the
 * ranks' buffers ([G][n]) and its reduce-scatter hands rank i the i-th contiguous block,
 * while a feature or channel split needs rank i's block inside every row: the tensor
 * outer × (G·chunk) × inner with rank i owning [.., i·chunk:(i+1)·chunk, ..]
 * (runtime/mprt.h). These kernels convert between the two orders, and between the batch-
 * and feature-split layouts around an all-to-all. All are plain index permutations on the
 * stream they are given (the communication stream, so they order with the collective),
 * templates over the element: f32, or 16 bits (a bf16 trainer's activations as stored, moved
 * as they are: comm_bf16.c).
 */
#include "cu_internal.h"

/* dst [A][G][B] ← src [G][A][B] (gather: true) or dst [G][A][B] ← src [A][G][B] (false). */
template <class T>
__global__ void permute_k(T *dst, const T *src, int64_t A, int64_t G, int64_t B, bool to_agb) {
    GRID_STRIDE(i, A * G * B) {
        int64_t b = i % B, g = (i / B) % G, a = i / (B * G); /* i indexes [A][G][B] */
        int64_t j = (g * A + a) * B + b;                     /* the same element in [G][A][B] */
        if (to_agb)
            dst[i] = src[j];
        else
            dst[j] = src[i];
    }
}

template <class T>
static void permute(T *dst, const T *src, int64_t A, int64_t G, int64_t B, bool to_agb,
                    cudaStream_t stream) {
    int64_t n = A * G * B;
    if (n <= 0) return;
    permute_k<<<mprt_cu_blocks(n), MPRT_CU_THREADS, 0, stream>>>(dst, src, A, G, B, to_agb);
    CU_CHECK_LAUNCH("permute_k");
}

extern "C" void mprt_cu_pack_gather_to_full(float *dst, const float *src, int64_t G, int64_t outer,
                                            int64_t chunk, int64_t inner, cudaStream_t stream) {
    permute(dst, src, outer, G, chunk * inner, true, stream);
}

extern "C" void mprt_cu_pack_full_to_gather(float *dst, const float *src, int64_t G, int64_t outer,
                                            int64_t chunk, int64_t inner, cudaStream_t stream) {
    permute(dst, src, outer, G, chunk * inner, false, stream);
}

extern "C" void mprt_cu_pack_transpose_mid(float *dst, const float *src, int64_t A, int64_t G,
                                           int64_t B, cudaStream_t stream) {
    permute(dst, src, A, G, B, false, stream);
}

extern "C" void mprt_cu_pack_untranspose_mid(float *dst, const float *src, int64_t A, int64_t G,
                                             int64_t B, cudaStream_t stream) {
    permute(dst, src, A, G, B, true, stream);
}

template <class T>
__global__ void slice_k(T *dst, const T *src, int64_t outer, int64_t chunk, int64_t inner,
                        int parts, int part) {
    int64_t row = chunk * inner;
    GRID_STRIDE(i, outer * row) {
        int64_t o = i / row, r = i % row;
        dst[i] = src[(o * parts + part) * row + r];
    }
}

template <class T>
static void slice(T *dst, const T *src, int64_t outer, int64_t chunk, int64_t inner, int parts,
                  int part, cudaStream_t stream) {
    int64_t n = outer * chunk * inner;
    if (n <= 0) return;
    slice_k<<<mprt_cu_blocks(n), MPRT_CU_THREADS, 0, stream>>>(dst, src, outer, chunk, inner, parts,
                                                               part);
    CU_CHECK_LAUNCH("slice_k");
}

extern "C" void mprt_cu_pack_slice(float *dst, const float *src, int64_t outer, int64_t chunk,
                                   int64_t inner, int parts, int part, cudaStream_t stream) {
    slice(dst, src, outer, chunk, inner, parts, part, stream);
}

/* The same moves on 16-bit elements (comm_bf16.c). */
extern "C" void mprt_cu_pack_slice_h(uint16_t *dst, const uint16_t *src, int64_t outer,
                                     int64_t chunk, int64_t inner, int parts, int part,
                                     cudaStream_t stream) {
    slice(dst, src, outer, chunk, inner, parts, part, stream);
}

extern "C" void mprt_cu_pack_permute_h(uint16_t *dst, const uint16_t *src, int64_t A, int64_t G,
                                       int64_t B, bool to_agb, cudaStream_t stream) {
    permute(dst, src, A, G, B, to_agb, stream);
}

__global__ void add_k(float *dst, const float *src, int64_t n) {
    GRID_STRIDE(i, n) dst[i] += src[i];
}

extern "C" void mprt_cu_pack_add(float *dst, const float *src, int64_t n, cudaStream_t stream) {
    if (n <= 0) return;
    add_k<<<mprt_cu_blocks(n), MPRT_CU_THREADS, 0, stream>>>(dst, src, n);
    CU_CHECK_LAUNCH("add_k");
}
