/*
 * cu_internal.h: what the files of runtime/cuda/ share and the public header does not
 * promise — the check macros, the streams and handle of the device context, and launch
 * geometry helpers. Included by C files (cu_core.c, comm_nccl.c) and by .cu files.
 */
#ifndef MPRT_CU_INTERNAL_H
#define MPRT_CU_INTERNAL_H

#include "mprt_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Every call of the library goes through one of these: the text of the call is the name
 * printed when it fails. */
#define CU_CHECK(call) mprt_cu_check_cuda((int)(call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) mprt_cu_check_cublas((int)(call), #call, __FILE__, __LINE__)
#define NCCL_CHECK(call) mprt_cu_check_nccl((int)(call), #call, __FILE__, __LINE__)
/* After a kernel launch: launch errors (bad geometry, no kernel image for this GPU). */
#define CU_CHECK_LAUNCH(name) CU_CHECK_LAUNCH_(name, __FILE__, __LINE__)
#define CU_CHECK_LAUNCH_(name, f, l) mprt_cu_check_cuda((int)cudaGetLastError(), name, f, l)

/* The context's compute stream, communication stream and cuBLAS handle (cu_core.c). Kernels
 * abort with a clear message when the context was not initialised. */
cudaStream_t mprt_cu_stream(void);
cudaStream_t mprt_cu_comm_stream(void);
cublasHandle_t mprt_cu_cublas(void);

/* Comm teardown hook for mprt_cu_fail (comm_nccl.c): ncclCommAbort on every communicator. */
void mprt_cu_comm_abort_all(void);
void mprt_cu_comm_setup(MprtCuComm mode, int local_size, int ndev);
void mprt_cu_comm_teardown(void);

/* Pack and unpack kernels for the collectives (comm_pack.cu), on `stream`.
 * gather_to_full: src [G][outer][chunk][inner] → dst [outer][G·chunk][inner];
 * full_to_gather is the inverse. */
void mprt_cu_pack_gather_to_full(float *dst, const float *src, int64_t G, int64_t outer,
                                 int64_t chunk, int64_t inner, cudaStream_t stream);
void mprt_cu_pack_full_to_gather(float *dst, const float *src, int64_t G, int64_t outer,
                                 int64_t chunk, int64_t inner, cudaStream_t stream);
/* Copies a strided 3-D block: dst [outer][chunk][inner] = src[outer][part·chunk..][inner]
 * with src rows of parts·chunk. */
void mprt_cu_pack_slice(float *dst, const float *src, int64_t outer, int64_t chunk, int64_t inner,
                        int parts, int part, cudaStream_t stream);
/* All-to-all pack: in viewed [A][G][B] (A outer blocks, G peers, B elements each) →
 * out [G][A][B] (per-peer contiguous), and the inverse. */
void mprt_cu_pack_transpose_mid(float *dst, const float *src, int64_t A, int64_t G, int64_t B,
                                cudaStream_t stream);
void mprt_cu_pack_untranspose_mid(float *dst, const float *src, int64_t A, int64_t G, int64_t B,
                                  cudaStream_t stream);
/* The same on 16-bit elements (a bf16 trainer's activations: comm_bf16.c): mprt_cu_pack_slice,
 * and the permutation behind the others — dst [A][G][B] <- src [G][A][B] (to_agb:
 * gather_to_full with A = outer, B = chunk·inner; untranspose_mid), or the inverse (!to_agb:
 * full_to_gather; transpose_mid). */
void mprt_cu_pack_slice_h(uint16_t *dst, const uint16_t *src, int64_t outer, int64_t chunk,
                          int64_t inner, int parts, int part, cudaStream_t stream);
void mprt_cu_pack_permute_h(uint16_t *dst, const uint16_t *src, int64_t A, int64_t G, int64_t B,
                            bool to_agb, cudaStream_t stream);
/* comm_nccl.c's call machinery, for comm_bf16.c: whether collectives are host-staged (MPI
 * mode), group g's NCCL communicator, the opening of a call on the communication stream (it
 * waits for the compute stream) and its closing (counted as mprt_coll_bytes(kind, G, n_bytes),
 * the compute stream waiting for it), bf16 staging buffer i (0, 1: the wire's) of at least
 * `count` values, pinned host staging of at least `bytes`. */
struct ncclComm;
bool mprt_cu__staged(void);
struct ncclComm *mprt_cu__comm(int group);
cudaStream_t mprt_cu__begin(void);
void mprt_cu__end(int kind, int group, int64_t n_bytes); /* kind: an MprtColl */
uint16_t *mprt_cu__wire_buf(int i, int64_t count);
void *mprt_cu__host(int64_t bytes);
/* dst[0 .. n) += src[0 .. n) on `stream`. */
void mprt_cu_pack_add(float *dst, const float *src, int64_t n, cudaStream_t stream);

/* ZeRO-2's reduce-scatter of one layer started on the communication stream (zero2.c): `slot`
 * holds the layer's `count` gradients, zeroed up to G·shard floats, with room for `shard` more
 * after them; the group's sum of this rank's part lands there and its n real floats are added
 * to `out`, both on the communication stream. The compute stream does not wait for it
 * (mprt_cu_comm_join does). Host-staged: synchronous, through the CPU's
 * mprt_zero_reduce_scatter. Counted as the padded tensor (4·G·shard bytes). */
void mprt_cu_zero_reduce_scatter_start(int group, float *slot, float *out, int64_t count,
                                       int64_t shard);

/* mprt_cu_bf16_pack / _unpack on `stream` (bf16.cu): the bf16 wire's conversions, on the
 * communication stream beside the collective they feed. */
void mprt_cu_bf16_pack_on(uint16_t *dst, const float *src, int64_t n, cudaStream_t stream);
void mprt_cu_bf16_unpack_on(float *dst, const uint16_t *src, int64_t n, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
/* Threads per block for elementwise kernels, and a grid covering n elements (grid-stride
 * loops handle the rest, so the grid is capped). */
#define MPRT_CU_THREADS 256
static inline unsigned mprt_cu_blocks(int64_t n) {
    int64_t b = (n + MPRT_CU_THREADS - 1) / MPRT_CU_THREADS;
    if (b < 1) b = 1;
    if (b > 65535 * 8) b = 65535 * 8;
    return (unsigned)b;
}

/* A grid-stride loop over n elements, and a checked launch of a 1-D elementwise kernel on
 * the runtime's stream (nothing is launched for n == 0). */
#define GRID_STRIDE(i, n)                                                                          \
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n);                      \
         i += (int64_t)gridDim.x * blockDim.x)
#define LAUNCH_1D(kernel, n, ...)                                                                  \
    do {                                                                                           \
        if ((n) > 0) {                                                                             \
            kernel<<<mprt_cu_blocks(n), MPRT_CU_THREADS, 0, mprt_cu_stream()>>>(__VA_ARGS__);      \
            CU_CHECK_LAUNCH(#kernel);                                                              \
        }                                                                                          \
    } while (0)

/* A reduction over the whole block (blockDim.x a multiple of 32, at most MPRT_CU_THREADS):
 * every thread passes its value and gets the block's result. Uses shared memory, so every
 * thread of the block must call it. */
template <class T, class Op> __device__ static inline T mprt_cu_block_reduce(T v, Op op) {
    __shared__ T part[MPRT_CU_THREADS / 32];
    for (int o = 16; o > 0; o >>= 1)
        v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    int lane = (int)(threadIdx.x % 32), warp = (int)(threadIdx.x / 32);
    if (lane == 0) part[warp] = v;
    __syncthreads();
    T r = part[0];
    for (int w = 1; w < (int)(blockDim.x / 32); w++)
        r = op(r, part[w]);
    __syncthreads(); /* part is reused by the next reduction */
    return r;
}

/* f32 → bf16, round to nearest even on the bit pattern (a NaN keeps its sign and gets the
 * quiet bit): the CPU's rounding, integer arithmetic only, so the GPU gives the CPU's bits. */
__device__ static inline uint16_t mprt_cu_bf16_of(float x) {
    uint32_t u = __float_as_uint(x);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* bf16 → f32, exact (the bf16 bits are the f32's upper half). */
__device__ static inline float mprt_cu_f32_of(uint16_t h) {
    return __uint_as_float((uint32_t)h << 16);
}

/* A value as a kernel reads it, f32 or bf16 bits (exact), and as it stores it: f32, or bf16
 * rounded (mprt_cu_bf16_of: the C trainer's mprt_bf16_round). One kernel template over the
 * storage type serves f32 buffers and a bf16 trainer's 16-bit ones with the same f32 math. */
__device__ static inline float mprt_cu_get(float v) { return v; }
__device__ static inline float mprt_cu_get(uint16_t h) { return mprt_cu_f32_of(h); }
__device__ static inline void mprt_cu_put(float *p, float v) { *p = v; }
__device__ static inline void mprt_cu_put(uint16_t *p, float v) { *p = mprt_cu_bf16_of(v); }

struct MprtCuMax {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct MprtCuSum {
    template <class T> __device__ T operator()(T a, T b) const { return a + b; }
};
#endif

#endif /* MPRT_CU_INTERNAL_H */
