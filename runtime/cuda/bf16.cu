/*
 * bf16.cu: bfloat16 on the device (docs/cuda.md, "bf16"), the twins of runtime/bf16.c.
 *
 * The conversions work on the bit pattern with the CPU's integer arithmetic (round to nearest,
 * ties to even, by adding 0x7FFF plus the lowest kept bit; a NaN keeps its sign and gets the
 * quiet bit; bf16 → f32 is exact), so every GPU conversion gives the CPU's bits. No float
 * operation is involved, so --fmad and the rounding mode cannot change them.
 */
#include "cu_internal.h"

__global__ void bf16_pack_k(uint16_t *dst, const float *src, int64_t n) {
    GRID_STRIDE(i, n) dst[i] = mprt_cu_bf16_of(src[i]);
}

__global__ void bf16_unpack_k(float *dst, const uint16_t *src, int64_t n) {
    GRID_STRIDE(i, n) dst[i] = mprt_cu_f32_of(src[i]);
}

/* dst may be src: each element is read once, then written. */
__global__ void bf16_round_k(float *dst, const float *src, int64_t n) {
    GRID_STRIDE(i, n) dst[i] = mprt_cu_f32_of(mprt_cu_bf16_of(src[i]));
}

extern "C" void mprt_cu_bf16_pack(uint16_t *dst, const float *src, int64_t n) {
    LAUNCH_1D(bf16_pack_k, n, dst, src, n);
}

extern "C" void mprt_cu_bf16_unpack(float *dst, const uint16_t *src, int64_t n) {
    LAUNCH_1D(bf16_unpack_k, n, dst, src, n);
}

/* The same on a stream of the caller's: the bf16 wire packs and unpacks on the communication
 * stream, ordered with the collective it feeds (comm_nccl.c). */
extern "C" void mprt_cu_bf16_pack_on(uint16_t *dst, const float *src, int64_t n,
                                     cudaStream_t stream) {
    if (n <= 0) return;
    bf16_pack_k<<<mprt_cu_blocks(n), MPRT_CU_THREADS, 0, stream>>>(dst, src, n);
    CU_CHECK_LAUNCH("bf16_pack_k");
}

extern "C" void mprt_cu_bf16_unpack_on(float *dst, const uint16_t *src, int64_t n,
                                       cudaStream_t stream) {
    if (n <= 0) return;
    bf16_unpack_k<<<mprt_cu_blocks(n), MPRT_CU_THREADS, 0, stream>>>(dst, src, n);
    CU_CHECK_LAUNCH("bf16_unpack_k");
}

extern "C" void mprt_cu_bf16_round(float *dst, const float *src, int64_t n) {
    LAUNCH_1D(bf16_round_k, n, dst, src, n);
}
