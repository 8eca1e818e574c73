/*
 * mprt_cuda.h: the public header of mprt_cuda, the GPU half of the runtime a CUDA trainer
 * links (docs/cuda.md is the manual). It has three parts:
 *
 *   1. The device context: one GPU per process, chosen from the local rank, with a compute
 *      stream, a communication stream and a cuBLAS handle. Every CUDA, cuBLAS and NCCL call
 *      of the library is checked; a failure prints
 *        train: rank 3 (device 1): cublasSgemm failed: CUBLAS_STATUS_EXECUTION_FAILED [gemm.cu:57]
 *      aborts every NCCL communicator (ncclCommAbort) and calls MPI_Abort, so a job never
 *      hangs on a dead peer.
 *   2. Kernels with exactly the semantics and argument order of runtime/mprt_kernels.h, on
 *      DEVICE pointers, named mprt_cu_OP_forward / mprt_cu_OP_backward. The conventions of
 *      that header hold unchanged (row-major fp32, local shards, no aliasing, backward
 *      accumulates, NULL gradients skipped, scratch from the caller); the differences are
 *      listed where they occur: the losses add their value into a device double instead of
 *      returning it (no host synchronisation per micro-batch), and attention backward needs
 *      a larger scratch (MPRT_CU_ATTENTION_SCRATCH). All kernels run on the compute stream,
 *      asynchronously with the host.
 *   3. Collectives on the groups of runtime/mprt.h (tensor, data, stage, pipe, world) with
 *      the same arguments as the CPU runtime's, over NCCL (one communicator per group) or,
 *      in host-staged MPI mode, by copying to the host and calling the CPU collectives. Bytes
 *      are counted with the CPU runtime's formula (mprt_coll_bytes), so the profile of a
 *      CUDA run reads like the profile of a CPU run.
 *
 * Usable from C and C++ (nvcc compiles the trainers as C++).
 */
#ifndef MPRT_CUDA_H
#define MPRT_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The elementwise table and its math (host and device), before the extern "C" block below:
 * it includes system headers and is valid C++ as it stands. */
#include "mprt_ew.h"

#ifdef __cplusplus
/* mprt_kernels.h is C99 and spells `restrict`; C++ has it as a compiler extension. */
#define restrict __restrict__
extern "C" {
#endif

#include "mprt_kernels.h" /* MprtDropShard, MprtAttnW/G, MPRT_CONV_OUT, the scratch macros */

/* ─────────────────────────────── device context (cu_core.c) ─────────────────────────────── */

/* How collectives travel: NCCL, host-staged MPI, or NCCL unless several local ranks must
 * share one GPU (NCCL refuses two ranks of a communicator on one device). */
typedef enum { MPRT_CU_COMM_AUTO, MPRT_CU_COMM_NCCL, MPRT_CU_COMM_MPI } MprtCuComm;

/* Parses "nccl", "mpi" or "auto" (the trainer's --comm flag); false if none of them. */
bool mprt_cu_comm_parse(const char *s, MprtCuComm *out);
const char *mprt_cu_comm_name(MprtCuComm c); /* "auto", "nccl", "mpi" */

/* For a trainer, after mprt_init: finds the local rank (MPI_Comm_split_type over shared
 * memory), counts the GPUs and picks device local_rank (local_rank mod count under MPI
 * mode). No GPU, or fewer GPUs than local ranks with --comm nccl (or more than one GPU but
 * fewer than the local ranks under auto), is a one-line error agreed over all ranks and exit
 * 1. Then creates the streams, the cuBLAS handle and, under NCCL, the communicators:
 * ncclGetUniqueId on world rank 0, MPI_Bcast, ncclCommInitRank over the world, and one
 * ncclCommSplit per group with the group's rank order of mprt.h. Collective over the world. */
void mprt_cu_init(MprtCuComm comm);
/* For tests and single-process tools, without MPI: uses device `device`, creates the
 * streams and the cuBLAS handle. Returns false (and does nothing) when there is no usable
 * CUDA device, so a test can report itself skipped. */
bool mprt_cu_init_local(int device);
/* Destroys the communicators, handle and streams (after synchronising). */
void mprt_cu_finalize(void);

/* The number of CUDA devices, 0 when the driver finds none or fails (never aborts). */
int mprt_cu_device_count(void);
int mprt_cu_device(void);           /* the device in use, -1 before init */
MprtCuComm mprt_cu_comm_mode(void); /* NCCL or MPI after init (never AUTO) */

/* TF32 tensor-core GEMMs (about 10 bits of mantissa in the products): off by default. */
void mprt_cu_set_tf32(bool on);

/* Waits for all work of this process on the device (both streams). */
void mprt_cu_sync(void);

/* Device memory; aborts (checked) on failure. Sizes in bytes. */
void *mprt_cu_malloc(size_t bytes);
void mprt_cu_free(void *p);
void mprt_cu_memset0(void *dst, size_t bytes);               /* on the compute stream */
void mprt_cu_copy(void *dst, const void *src, size_t bytes); /* device → device, compute stream */
void mprt_cu_upload(void *dst, const void *src, size_t bytes);   /* host → device, synchronous */
void mprt_cu_download(void *dst, const void *src, size_t bytes); /* device → host, synchronous */

/* Error handling for the library's own check macros (cu_internal.h) and for generated code:
 * prints "train: rank R (device D): <call> failed: <reason> [file:line]", aborts NCCL and
 * the MPI job (or the process, without MPI). */
void mprt_cu_fail(const char *call, const char *reason, const char *file, int line)
    __attribute__((noreturn));
/* Checks a cudaError_t / cublasStatus_t / ncclResult_t given as int. */
void mprt_cu_check_cuda(int err, const char *call, const char *file, int line);
void mprt_cu_check_cublas(int status, const char *call, const char *file, int line);
void mprt_cu_check_nccl(int result, const char *call, const char *file, int line);

/* ─────────────────────────────── GEMM (gemm.cu) ─────────────────────────────── */

/* Row-major C[M, N] = alpha · op(A) · op(B) + beta · C with op(A) [M, K], op(B) [K, N];
 * ta / tb: the stored matrix is transposed (A stored [K, M] when ta). lda, ldb, ldc are the
 * row-major leading dimensions (the stored row lengths). The only place that turns
 * row-major into cuBLAS's column-major. */
void mprt_cu_gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
/* The same for `batch` independent products at element strides sA, sB, sC. */
void mprt_cu_gemm_batched(bool ta, bool tb, int M, int N, int K, float alpha, const float *A,
                          int lda, int64_t sA, const float *B, int ldb, int64_t sB, float beta,
                          float *C, int ldc, int64_t sC, int batch);

/* bf16 operands (bit patterns, as mprt.h's uint16_t bf16), fp32 C, fp32 products and sums
 * (cublasGemmEx, CUBLAS_COMPUTE_32F); otherwise as mprt_cu_gemm. */
void mprt_cu_gemm_bf16(bool ta, bool tb, int M, int N, int K, float alpha, const uint16_t *A,
                       int lda, const uint16_t *B, int ldb, float beta, float *C, int ldc);

/* ─────────────────────────────── bf16 (bf16.cu) ─────────────────────────────── */
/* The device twins of mprt.h's mprt_bf16_pack / _unpack / _round, bit for bit: round to
 * nearest even, NaN kept; round's dst may be src. On the compute stream. */
void mprt_cu_bf16_pack(uint16_t *dst, const float *src, int64_t n);
void mprt_cu_bf16_unpack(float *dst, const uint16_t *src, int64_t n);
void mprt_cu_bf16_round(float *dst, const float *src, int64_t n);

/* ─────────────────────────────── kernels ─────────────────────────────── */
/* Same math and arguments as mprt_kernels.h; every pointer is a device pointer. */

void mprt_cu_linear_forward(float *out, const float *x, const float *W, const float *b, int N,
                            int Din, int Dout, int add_bias);
void mprt_cu_linear_backward(float *dx, float *dW, float *db, const float *dout, const float *x,
                             const float *W, int N, int Din, int Dout);
/* A bf16 trainer's forward (docs/cuda.md, "bf16"): W [Din, Dout] and b [Dout] are bf16 working
 * weights, x holds bf16 values (an activation: packing it into xh, N·Din bf16 of device
 * scratch, is exact), the product runs on bf16 operands with fp32 products and sums
 * (mprt_cu_gemm_bf16): the f32 forward's values up to the order of its additions. */
void mprt_cu_linear_forward_bf16(float *out, const float *x, const uint16_t *W, const uint16_t *b,
                                 int N, int Din, int Dout, int add_bias, uint16_t *xh);
/* The same with the input already packed: xh [N, Din] bf16. */
void mprt_cu_linear_forward_bf16_packed(float *out, const uint16_t *xh, const uint16_t *W,
                                        const uint16_t *b, int N, int Din, int Dout, int add_bias);

/* mprt_cu_NAME_forward / _backward for every row X(NAME, saved) of mprt_ew.h's table
 * (relu, gelu, tanh, …), the twins of mprt_NAME_forward / _backward. */
#define MPRT_CU_EW_DECLARE(name, saved)                                                            \
    void mprt_cu_##name##_forward(float *out, const float *x, int64_t n);                          \
    void mprt_cu_##name##_backward(float *dx, const float *dout, const float *saved, int64_t n);   \
    void mprt_cu_##name##_forward_bf16(uint16_t *out, const uint16_t *x, int64_t n);               \
    void mprt_cu_##name##_backward_bf16(float *dx, const float *dout, const uint16_t *saved,       \
                                        int64_t n);
/* The _bf16 forms here and below (docs/cuda.md, "bf16"): the same f32 math on a bf16 trainer's
 * 16-bit activations, each input read exactly and each output stored rounded to bf16 (round to
 * nearest even: mprt_cu_bf16_pack's bits), so a _bf16 forward equals the f32 forward on the
 * unpacked input followed by mprt_cu_bf16_pack, and a _bf16 backward the f32 backward on the
 * unpacked activation, bit for bit; gradients, statistics and weights stay f32. */
MPRT_EW_UNARY(MPRT_CU_EW_DECLARE)
void mprt_cu_add_forward(float *out, const float *a, const float *b, int64_t n);
void mprt_cu_add_forward_bf16(uint16_t *out, const uint16_t *a, const uint16_t *b, int64_t n);
void mprt_cu_add_backward(float *da, float *db, const float *dout, int64_t n);
void mprt_cu_accumulate(float *dst, const float *src, int64_t n);
void mprt_cu_fill(float *dst, int64_t n, float value);

void mprt_cu_layernorm_forward(float *out, float *mean, float *rstd, const float *x,
                               const float *gamma, const float *beta, int N, int C, float eps);
void mprt_cu_layernorm_backward(float *dx, float *dgamma, float *dbeta, const float *dout,
                                const float *x, const float *mean, const float *rstd,
                                const float *gamma, int N, int C);
/* mean and rstd f32 (N each), gamma and beta the f32 staged weights, as in f32. */
void mprt_cu_layernorm_forward_bf16(uint16_t *out, float *mean, float *rstd, const uint16_t *x,
                                    const float *gamma, const float *beta, int N, int C, float eps);
void mprt_cu_layernorm_backward_bf16(float *dx, float *dgamma, float *dbeta, const float *dout,
                                     const uint16_t *x, const float *mean, const float *rstd,
                                     const float *gamma, int N, int C);

/* The mask is mprt_dropout_keep's, bit for bit: the same SplitMix64 construction on the GPU. */
void mprt_cu_dropout_forward(float *out, const float *x, int N, MprtDropShard sh, float p,
                             uint64_t seed, uint32_t layer, int64_t step, int training);
void mprt_cu_dropout_backward(float *dx, const float *dout, int N, MprtDropShard sh, float p,
                              uint64_t seed, uint32_t layer, int64_t step);
/* The mask and scale of mprt_cu_dropout_forward, the product rounded to bf16. */
void mprt_cu_dropout_forward_bf16(uint16_t *out, const uint16_t *x, int N, MprtDropShard sh,
                                  float p, uint64_t seed, uint32_t layer, int64_t step,
                                  int training);

/* scratch: MPRT_CONV2D_SCRATCH(C, K, Ho, Wo) floats, as on the CPU (one sample at a time). */
void mprt_cu_conv2d_forward(float *out, const float *x, const float *W, const float *b,
                            float *scratch, int N, int C, int H, int Wd, int O, int K, int S, int P,
                            int add_bias);
/* A bf16 trainer's forward (docs/cuda.md, "bf16"): W and b bf16 working weights, each
 * sample's col packed as bf16 into scratch (MPRT_CONV2D_SCRATCH floats hold it twice; exact:
 * x holds bf16 values), the product a bf16 GEMM with fp32 sums (mprt_cu_gemm_bf16). */
void mprt_cu_conv2d_forward_bf16(float *out, const float *x, const uint16_t *W, const uint16_t *b,
                                 uint16_t *scratch, int N, int C, int H, int Wd, int O, int K,
                                 int S, int P, int add_bias);
/* The same from a 16-bit input xh [N, C, H, Wd] (a bf16 trainer's activation as stored): each
 * col is copied from it exactly; a pointwise convolution (K 1, S 1, P 0) multiplies xh itself
 * and leaves the scratch alone. The same products as mprt_cu_conv2d_forward_bf16, bit for bit. */
void mprt_cu_conv2d_forward_bf16_packed(float *out, const uint16_t *xh, const uint16_t *W,
                                        const uint16_t *b, uint16_t *scratch, int N, int C, int H,
                                        int Wd, int O, int K, int S, int P, int add_bias);
void mprt_cu_conv2d_backward(float *dx, float *dW, float *db, const float *dout, const float *x,
                             const float *W, float *scratch, int N, int C, int H, int Wd, int O,
                             int K, int S, int P);
void mprt_cu_maxpool2d_forward(float *out, int32_t *argmax, const float *x, int planes, int H,
                               int Wd, int K, int S);
void mprt_cu_maxpool2d_backward(float *dx, const float *dout, const int32_t *argmax, int planes,
                                int H, int Wd, int K, int S);
/* 16-bit x and out (the _bf16 forms above): the same argmax, the maximum copied exactly. */
void mprt_cu_maxpool2d_forward_bf16(uint16_t *out, int32_t *argmax, const uint16_t *x, int planes,
                                    int H, int Wd, int K, int S);

/* Backward scatters into dW with atomicAdd (repeated ids), so the order of the additions,
 * and the last bits of dW, may vary from run to run; dpos is a deterministic gather. */
void mprt_cu_embedding_forward(float *out, const int32_t *ids, const float *W, const float *pos,
                               int M, int T, int V_local, int v0, int D, int add_pos);
void mprt_cu_embedding_backward(float *dW, float *dpos, const float *dout, const int32_t *ids,
                                int M, int T, int V_local, int v0, int D);
/* The forward of a bf16 trainer (mprt.h's mprt_embedding_forward_bf16): the table and the
 * positions are bf16 working weights, each row looked up converted exactly to f32, so the
 * vocabulary is never unpacked whole. */
void mprt_cu_embedding_forward_bf16(float *out, const int32_t *ids, const uint16_t *W,
                                    const uint16_t *pos, int M, int T, int V_local, int v0, int D,
                                    int add_pos);
/* The same into a 16-bit activation: each value (row, plus position) rounded to bf16. */
void mprt_cu_embedding_forward_bf16_act(uint16_t *out, const int32_t *ids, const uint16_t *W,
                                        const uint16_t *pos, int M, int T, int V_local, int v0,
                                        int D, int add_pos);

/* Stash as MPRT_ATTENTION_STASH (same layout: q, k, v, y, then P [N, Hl, T, T]). The
 * backward scratch holds dP for every sample of one head at once, so it is larger than the
 * CPU's: dy, dq, dk, dv [N·T, Dl] and dP [N, T, T]. */
#define MPRT_CU_ATTENTION_SCRATCH(N, T, Dl)                                                        \
    (4 * (int64_t)(N) * (T) * (Dl) + (int64_t)(N) * (T) * (T))
void mprt_cu_attention_forward(float *out, float *stash, const float *x, MprtAttnW w, int N, int T,
                               int D, int Hl, int hd, int causal, int add_bias);
void mprt_cu_attention_backward(float *dx, MprtAttnG g, const float *dout, const float *x,
                                const float *stash, float *scratch, MprtAttnW w, int N, int T,
                                int D, int Hl, int hd, int causal);
/* A bf16 trainer's forward (docs/cuda.md, "bf16"): the q, k and v projections read their bf16
 * working weights `h` and the input packed once into xh (N·T·D bf16 of device scratch; exact:
 * x holds bf16 values) and run as bf16 GEMMs with fp32 sums (mprt_cu_linear_forward_bf16);
 * the scores, softmax and P·V stay f32 as in the f32 forward, and so does the output
 * projection (w.wo, w.bo: f32 weights), whose input is the f32 y of the stash. */
typedef struct MprtCuAttnWh {
    const uint16_t *wq, *bq, *wk, *bk, *wv, *bv;
} MprtCuAttnWh;
void mprt_cu_attention_forward_bf16(float *out, float *stash, const float *x, MprtAttnW w,
                                    MprtCuAttnWh h, int N, int T, int D, int Hl, int hd, int causal,
                                    int add_bias, uint16_t *xh);
/* The same from a 16-bit input xh [N·T, D] (a bf16 trainer's activation as stored): no packing;
 * bit for bit what mprt_cu_attention_forward_bf16 computes from its unpacked values. */
void mprt_cu_attention_forward_bf16_packed(float *out, float *stash, const uint16_t *xh,
                                           MprtAttnW w, MprtCuAttnWh h, int N, int T, int D, int Hl,
                                           int hd, int causal, int add_bias);

/* Losses: *loss (a device double) += the value mprt_cross_entropy_forward / mprt_mse_forward
 * return. Read it with mprt_cu_download when a step is logged. */
void mprt_cu_cross_entropy_forward(double *loss, const float *logits, const int32_t *labels, int M,
                                   int V, float scale);
void mprt_cu_cross_entropy_backward(float *dlogits, const float *logits, const int32_t *labels,
                                    int M, int V, float scale);
/* The twins of mprt_kernels.h's mprt_vocab_ce_forward / _backward (kernels_vocab.cu): this rank's
 * classes [v0, v0 + Vl) of V, the three all-reduces of one float per row on the tensor group;
 * *loss += the whole loss (every rank computes it; pass NULL on the ranks that do not report
 * it, which still take part in the all-reduces). stash [3, M] as on the CPU. */
void mprt_cu_vocab_ce_forward(double *loss, const float *logits, const int32_t *labels,
                              float *stash, int M, int Vl, int64_t v0, int64_t V, float scale);
void mprt_cu_vocab_ce_backward(float *dlogits, const float *logits, const int32_t *labels,
                               const float *stash, int M, int Vl, int64_t v0, int64_t V,
                               float scale);
/* The same on 16-bit logits (a bf16 trainer's activations, read exactly); stash f32. */
void mprt_cu_vocab_ce_forward_bf16(double *loss, const uint16_t *logits, const int32_t *labels,
                                   float *stash, int M, int Vl, int64_t v0, int64_t V, float scale);
void mprt_cu_vocab_ce_backward_bf16(float *dlogits, const uint16_t *logits, const int32_t *labels,
                                    const float *stash, int M, int Vl, int64_t v0, int64_t V,
                                    float scale);
void mprt_cu_mse_forward(double *loss, const float *pred, const float *target, int64_t n,
                         float scale);
void mprt_cu_mse_backward(float *dpred, const float *pred, const float *target, int64_t n,
                          float scale);
/* The losses on a bf16 trainer's 16-bit logits or prediction (the _bf16 forms above): the same
 * f32 arithmetic on their values read exactly; mse's target (an input as loaded) stays f32. */
void mprt_cu_cross_entropy_forward_bf16(double *loss, const uint16_t *logits, const int32_t *labels,
                                        int M, int V, float scale);
void mprt_cu_cross_entropy_backward_bf16(float *dlogits, const uint16_t *logits,
                                         const int32_t *labels, int M, int V, float scale);
void mprt_cu_mse_forward_bf16(double *loss, const uint16_t *pred, const float *target, int64_t n,
                              float scale);
void mprt_cu_mse_backward_bf16(float *dpred, const uint16_t *pred, const float *target, int64_t n,
                               float scale);

void mprt_cu_sgd_step(float *p, float *v, const float *g, int64_t n, float lr, float momentum,
                      float weight_decay);
void mprt_cu_adam_step(float *p, float *m, float *v, const float *g, int64_t n, float lr,
                       float beta1, float beta2, float eps, float weight_decay, int64_t t);
void mprt_cu_adamw_step(float *p, float *m, float *v, const float *g, int64_t n, float lr,
                        float beta1, float beta2, float eps, float weight_decay, int64_t t);

/* ─────────────────────────────── collectives (comm_nccl.c) ─────────────────────────────── */
/* Groups are mprt.h's MprtGroup values (tensor 0, data 1, stage 2, pipe 3, world 4), passed
 * as int so this header does not need mprt.h. Arguments, layouts and byte counts are those
 * of the CPU collectives of the same name; buffers are device pointers.
 *
 * Ordering. Each call makes the communication stream wait for the work already queued on
 * the compute stream (an event), runs there, and makes the compute stream wait for it
 * (another event), so kernels and collectives keep program order while the host never
 * blocks. The _start variant of the all-reduce leaves out the second wait: the compute
 * stream carries on (the backward of earlier layers overlaps the gradient all-reduce) until
 * mprt_cu_comm_join. Under host-staged MPI every call is synchronous. */
void mprt_cu_allreduce(int group, float *buf, int64_t count);
void mprt_cu_allreduce_start(int group, float *buf, int64_t count);
void mprt_cu_comm_join(void); /* the compute stream waits for every collective started */
/* mprt.h's mprt_allreduce_max: the element-wise maximum (ncclMax), counted as an all-reduce. */
void mprt_cu_allreduce_max(int group, float *buf, int64_t count);
/* mprt.h's mprt_allreduce_bf16 on a device buffer of `count` bf16 values: ncclAllReduce with
 * ncclBfloat16 (NCCL sums pairs in fp32 and rounds each partial sum to bf16, as the CPU's
 * operation does, in its own order), counted as 2·count bytes; staged: the CPU's call. */
void mprt_cu_allreduce_bf16(int group, uint16_t *buf, int64_t count);
void mprt_cu_allgather(int group, const float *local, float *full, int64_t outer, int64_t chunk,
                       int64_t inner);
void mprt_cu_reduce_scatter(int group, const float *full, float *local, int64_t outer,
                            int64_t chunk, int64_t inner);
void mprt_cu_slice(const float *full, float *local, int64_t outer, int64_t chunk, int64_t inner,
                   int parts, int part);
void mprt_cu_alltoall_b2f(int group, const float *in, float *out, int64_t batch, int64_t mid,
                          int64_t feat, int64_t inner);
void mprt_cu_alltoall_f2b(int group, const float *in, float *out, int64_t batch, int64_t mid,
                          int64_t feat, int64_t inner);
void mprt_cu_broadcast(int group, float *buf, int64_t count, int root);
/* The layout changes above on a bf16 trainer's 16-bit activations (comm_bf16.c; docs/cuda.md,
 * "16-bit activations"), as mprt.h's _bf16 forms: the same views and groups, the stored bf16
 * values moved as they are (ncclBfloat16; sums NCCL's in bf16, as the f32 forms' under the
 * wire), 2 bytes per element counted: the bits and bytes of the f32 forms under the bf16 wire. */
void mprt_cu_allgather_bf16(int group, const uint16_t *local, uint16_t *full, int64_t outer,
                            int64_t chunk, int64_t inner);
void mprt_cu_reduce_scatter_bf16(int group, const uint16_t *full, uint16_t *local, int64_t outer,
                                 int64_t chunk, int64_t inner);
void mprt_cu_slice_bf16(const uint16_t *full, uint16_t *local, int64_t outer, int64_t chunk,
                        int64_t inner, int parts, int part);
void mprt_cu_alltoall_b2f_bf16(int group, const uint16_t *in, uint16_t *out, int64_t batch,
                               int64_t mid, int64_t feat, int64_t inner);
void mprt_cu_alltoall_f2b_bf16(int group, const uint16_t *in, uint16_t *out, int64_t batch,
                               int64_t mid, int64_t feat, int64_t inner);
/* ZeRO (docs/cuda.md, "ZeRO"): the twins of mprt.h's mprt_zero_reduce_scatter and
 * mprt_zero_allgather on device pointers — `count` floats split over the group in parts of
 * `shard` (ncclReduceScatter / ncclAllGather of the zero-padded G·shard floats), counted as the
 * padded tensor like the CPU's; `out` receives this rank's real floats (NULL: in place, at their
 * place in `full`, as ZeRO-1 keeps them). Both block the compute stream until done (the next
 * backward may clear the gradients they read). ZeRO-2's overlapped reduce-scatters are
 * mprt_cu_zero2_* below. */
void mprt_cu_zero_reduce_scatter(int group, const float *full, float *out, int64_t count,
                                 int64_t shard, bool add);
void mprt_cu_zero_allgather(int group, float *full, int64_t count, int64_t shard);

/* Pipeline point-to-point on the pipe group, dir +1 = next stage, −1 = previous. NCCL has no
 * tags: transfers between two stages match in the order they are posted. send and recv of
 * one call are one ncclGroupStart/End, so a stage can exchange with both neighbours without
 * deadlock; either count may be 0. Bytes counted on the send side, as on the CPU. */
void mprt_cu_sendrecv(int send_dir, const float *sendbuf, int64_t send_count, int recv_dir,
                      float *recvbuf, int64_t recv_count);
void mprt_cu_send(int dir, const float *buf, int64_t count);
void mprt_cu_recv(int dir, float *buf, int64_t count);

/* Pipeline point-to-point staged through host memory over the CPU runtime's MPI calls, with
 * the CPU trainer's protocol: tags, a non-blocking send completed by a wait, a blocking
 * receive. Generated trainers use these in both modes, so a pipelined schedule that is free
 * of deadlock on the CPU (sends posted early, waited late) stays so on the GPU; NCCL's
 * send/recv above block the stream until the peer receives, which the 1F1B order would
 * have to pair explicitly. Bytes are counted by the CPU calls (on the sender). */
typedef struct MprtCuReq MprtCuReq;
MprtCuReq *mprt_cu_isend_staged(int dir, const float *buf, int64_t count, int tag);
void mprt_cu_recv_staged(int dir, float *buf, int64_t count, int tag);
void mprt_cu_wait_staged(MprtCuReq *req);
/* The same on 16-bit values (a bf16 trainer's activations: mprt_isend_bf16, mprt_recv_bf16),
 * 2 bytes per element, as the f32 forms move and count under the bf16 wire. */
MprtCuReq *mprt_cu_isend_staged_bf16(int dir, const uint16_t *buf, int64_t count, int tag);
void mprt_cu_recv_bf16(int dir, uint16_t *buf, int64_t count, int tag);

/* ─────────────────────────────── the trainer's device side (cu_trainer.c)
 * ─────────────────────────────── What every generated CUDA trainer does the same way; the types
 * are mprt_trainer.h's. */
struct MprtArgs;
struct MprtData;
/* After mprt_init: picks and initialises the GPU (--comm, mprt_cu_init), sets --tf32, and
 * with --profile makes the trainer's timed calls wait for the device (mprt_timed_device). */
void mprt_cu_trainer_up(const struct MprtArgs *a);
/* After the trainer freed its buffers: frees the upload buffer and brings the GPU down. */
void mprt_cu_trainer_down(void);
/* n zeroed floats, int32s of device memory. */
float *mprt_cu_falloc(int64_t n);
int32_t *mprt_cu_ialloc(int64_t n);
/* The same (at least one element) with the n elements' bytes counted in memory category
 * `category` (mprt_trainer.h's MprtMem, as int), so the trainer's allocations are checked
 * against the plan's like the C trainer's (mprt_check_memory). */
float *mprt_cu_falloc_in(int category, int64_t n);
int32_t *mprt_cu_ialloc_in(int category, int64_t n);
/* n zeroed 16-bit values (bf16 working weights), 2·n bytes counted in `category`. */
uint16_t *mprt_cu_halloc_in(int category, int64_t n);
/* mprt_data_rows into device memory: the rows are filled in a reusable host buffer, then
 * uploaded at once. */
void mprt_cu_data_rows(const struct MprtData *d, uint64_t seed, int64_t first, int64_t n,
                       void *dst);
/* mprt_pipe_send staged through host memory (mprt_cu_isend_staged), completed by the CPU
 * runtime's mprt_pipe_wait and mprt_pipe_wait_all. */
void mprt_cu_pipe_send(int slot, int dir, const float *buf, int64_t count, int tag);
/* The same on 16-bit values (mprt_cu_isend_staged_bf16): mprt_pipe_send_bf16's twin. */
void mprt_cu_pipe_send_bf16(int slot, int dir, const uint16_t *buf, int64_t count, int tag);

/* ZeRO's optimizer step on the device: mprt_zero_update's walk over this rank's parts with
 * the mprt_cu_ optimizers (state[] the device shard arenas), then every updated part to every
 * rank of its group (mprt_cu_zero_allgather), as mprt_zero_params does on the host. */
struct MprtModel;
struct MprtZero;
struct MprtHyper;
void mprt_cu_zero_update(const struct MprtModel *m, float *prm, const float *grd, const float *gsh,
                         float *state[3], const struct MprtHyper *h, int64_t t);
void mprt_cu_zero_params(const struct MprtZero *z, float *prm);
/* ZeRO under bf16 (zero_bf16.c; docs/cuda.md, "ZeRO under bf16"): `mst` holds this rank's
 * parts of the f32 master weights (device memory, at the parts' soff), `prm` the whole 16-bit
 * working copy. mprt_cu_zero_master_params packs each updated part to bf16 at its place in prm
 * and all-gathers the parts over their groups (mprt_cu_zero_allgather_bf16: 2 bytes a value, as
 * the plan prices it; `counted` false leaves the all-gathers out of the counters), as
 * mprt_trainer.h's mprt_zero_master_params does on the host. mprt_cu_zero_master registers the
 * live pair (NULL, NULL: none) and the device's whole-weights copies with the CPU runtime
 * (mprt_zero_master_device), so initialisation and checkpoints read and write whole tensors
 * and a put into mst packs into prm. mprt_cu_zero_allgather_bf16 is mprt_cu_zero_allgather on
 * `count` 16-bit values (ncclBfloat16; host-staged: the CPU's mprt_zero_allgather_bf16),
 * counted as 2·shard·G bytes. */
void mprt_cu_zero_master(float *mst, uint16_t *prm);
void mprt_cu_zero_master_params(const struct MprtZero *z, const float *mst, uint16_t *prm,
                                bool counted);
void mprt_cu_zero_allgather_bf16(int group, uint16_t *full, int64_t count, int64_t shard);
/* ZeRO-2's gradients (zero2.c; docs/cuda.md, "ZeRO"): mprt_trainer.h's mprt_zero2_* on the
 * device — gsh holds this rank's parts, each layer's backward writes into one of
 * MPRT_ZERO_SLOTS transient slots (counted as MPRT_MEM_ZERO_BUF) whose reduce-scatter starts on
 * the communication stream at close and overlaps the backward of the layers before it; join
 * makes the compute stream wait for all of them (before the optimizer). Same call order as on
 * the host: setup after the arenas, open(part) / grad(offset) / close() around each layer's
 * backward, join, teardown. */
void mprt_cu_zero2_setup(const struct MprtZero *z, float *gsh);
void mprt_cu_zero2_teardown(void);
void mprt_cu_zero2_open(int part);
float *mprt_cu_zero2_grad(int64_t offset);
void mprt_cu_zero2_close(void);
void mprt_cu_zero2_join(void);

/* bf16 (cu_bf16.c; docs/cuda.md, "bf16"): the device twins of mprt_trainer.h's
 * mprt_bf16_weights / _refresh / _layer / _upload / _download. `master` is n floats of device
 * memory, the f32 master weights; `work` n bf16 values of device memory at the same offsets, the
 * working copy: work = bf16(master) after every mprt_cu_bf16_refresh and, range by range, after
 * every mprt_cu_bf16_upload into master (a bf16 trainer's MprtModel.upload); `stage` cap
 * floats of device memory, where mprt_cu_bf16_layer(offset, n) unpacks work[offset .. offset
 * + n) as f32 (on the compute stream) and which it returns (a range beyond either: one-line
 * fatal error). work NULL unregisters; master NULL (ZeRO's parts write work): _layer works,
 * refresh and the copies leave work alone. */
void mprt_cu_bf16_weights(float *master, uint16_t *work, int64_t n, float *stage, int64_t cap);
float *mprt_cu_bf16_layer(int64_t offset, int64_t n);
void mprt_cu_bf16_refresh(void);
void mprt_cu_bf16_upload(void *arena, const void *host, size_t bytes);
void mprt_cu_bf16_download(void *host, const void *arena, size_t bytes);

/* Collective timing comes from CUDA events on the communication stream; this waits for the
 * collectives issued since the last flush and adds their bytes and seconds to the CPU
 * runtime's counters (mprt_stats_add). Call before printing progress or a profile. */
void mprt_cu_stats_flush(void);

#ifdef __cplusplus
}
#undef restrict
#endif

#endif /* MPRT_CUDA_H */
