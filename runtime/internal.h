/*
 * internal.h: helpers shared by the files of runtime/, not part of the public API (mprt.h)
 * and not installed. Everything here is prefixed mprt__ (two underscores).
 */
#ifndef MPRT_INTERNAL_H
#define MPRT_INTERNAL_H

#include <stdio.h>
#include <string.h>

#include "mprt.h"

/* Formats err->msg (truncating safely). Returns false so callers can `return mprt__err(...)`. */
bool mprt__err(MprtErr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "f32[N, 784]" / "i64[60000]" into buf; shape[0] printed as N when free0 is set. */
char *mprt__shape_str(char *buf, size_t n, MprtDtype t, int ndim, const int64_t *shape, bool free0);

/* Product of ndim dims with overflow and sign checks: false if any dim < 0 or the product
 * (times elem, the element size) exceeds limit. */
bool mprt__numel(int ndim, const int64_t *shape, int64_t elem, int64_t limit, int64_t *numel);

/* Reads a whole regular file into a malloc'd buffer (size bounded by max). */
int mprt__open_regular(const char *path, size_t *size, MprtErr *err);
void mprt__remove_stale_tmp(const char *path);
bool mprt__read_file(const char *path, size_t max, unsigned char **buf, size_t *size, MprtErr *err);

/* The atomic writer: open "<path>.tmp.<pid>", write pieces, then commit (fsync, rename,
 * fsync of the directory) or abort (close and unlink). */
typedef struct MprtAtomic {
    const char *path;
    char tmp[4096];
    int fd;
    int64_t written;
} MprtAtomic;
bool mprt__atomic_open(MprtAtomic *w, const char *path, MprtErr *err);
bool mprt__atomic_write(MprtAtomic *w, const void *data, size_t n, MprtErr *err);
bool mprt__atomic_commit(MprtAtomic *w, MprtErr *err);
void mprt__atomic_abort(MprtAtomic *w);
/* Whether `path` can be written the atomic writer's way: not a directory, and its temporary
 * file can be created in its directory (created and removed again). The error names path. */
bool mprt__check_writable(const char *path, MprtErr *err);

/* Collective over the world (comm_mpi.c): gathers every rank's NUL-terminated text to world
 * rank 0, which gets a malloc'd buffer of the texts back to back (rank order) and their
 * count in *n; other ranks get NULL. Not counted in the statistics. */
char *mprt__gather_text(const char *mine, int *n);

/* Waits for a request this rank posted, polling it against the communication timeout and
 * answering other ranks' queries meanwhile (comm_wait.c); on expiry names the ranks holding
 * the job up and aborts it. call and group name the wait in that message. Returns MPI's error
 * code. For files that include <mpi.h> first. wait_init (collective over the world, in
 * mprt_init) makes the queries' communicator; wait_finalize frees it. */
#ifdef MPI_VERSION
int mprt__wait(MPI_Request *req, const char *call, const char *group);
/* comm_mpi.c's communicators, error check and timed wait, for comm_bf16.c. */
MPI_Comm mprt__comm(MprtGroup g);
void mprt__check(int rc, const char *call, MprtGroup g);
/* MPRT_GRAD_SYNC=blocking: the overlapped gradient collectives run blocking (comm_mpi.c). */
bool mprt__grad_sync_blocking(void);
void mprt__await(MPI_Request *rq, const char *call, MprtGroup g);
/* Shared by comm_mpi.c's f32 and comm_bf16.c's bf16 collectives (fatal on a bad count/view). */
int mprt__count_int(int64_t n, const char *call);
int64_t mprt__view_block(int64_t outer, int64_t chunk, int64_t inner, int G, const char *call);
void mprt__regroup(void *dst, const void *src, int G, int64_t outer, size_t row,
                   bool to_rank_major);
/* comm_mpi.c's all-to-all of G blocks of blk elements of type dt (timed out like the rest), and
 * its f32 scratch buffer (grown on demand), for comm_layout.c. */
void mprt__alltoall(MprtGroup g, const void *src, void *dst, int64_t blk, MPI_Datatype dt);
float *mprt__scratch(int64_t nfloats);
/* comm_bf16.c: the bf16 sum (an MPI user operation, made on first use), the runtime's bf16
 * buffers (slot 0-2, grown on demand) and the wire forms of comm_mpi.c's f32 collectives
 * (ZeRO's with MPI's counts c[0..G) and displacements c[G..2G)). */
MPI_Op mprt__bf16_sum_op(void);
void mprt__wire_zero_reduce_scatter(MprtGroup g, const float *full, float *out, int64_t count,
                                    const int *c, bool add);
void mprt__wire_zero_allgather(MprtGroup g, float *full, int64_t count, const int *c);
#endif
void mprt__wait_init(void);
/* Whether mprt_kernels_eval is on (validation, --generate): kernels_vocab.c then gathers. */
int mprt__kernels_evaluating(void);
uint16_t *mprt__bf16_buf(int slot, int64_t n);
/* Whether the bf16 wire is on and the counters run (comm_bf16.c). */
bool mprt__wire(void);
/* This node's ranks and the CPUs they may use between them (mprt_set_threads; 0 and 0 before
 * it): more ranks than CPUs is an oversubscribed node, slower than any plan. */
void mprt__node_share(int *ranks, int *cpus);
void mprt__wire_allreduce(MprtGroup g, float *buf, int64_t count);
void mprt__wire_allgather(MprtGroup g, const float *local, float *full, int64_t outer,
                          int64_t chunk, int64_t inner);
void mprt__wire_reduce_scatter(MprtGroup g, const float *full, float *local, int64_t outer,
                               int64_t chunk, int64_t inner);
/* Frees the bf16 sum and buffers (mprt_finalize). */
void mprt__bf16_finalize(void);
/* Whether mprt_stats_pause is in effect (log.c). */
bool mprt__stats_paused(void);
void mprt__wait_finalize(void);

/* Before mprt_init, on every rank a launcher started (comm_mpi.c): starts MPI and agrees on a
 * flag that ends the run before the mesh is checked (--help). Returns 0 when no rank has it
 * (MPI stays up for mprt_init); 1 when every rank has it (MPI is finalised; *rank is this
 * rank's, so rank 0 alone can answer it); when only some have it, rank 0 prints "prog: FLAG
 * was given to rank A but not to rank B; ..." and every rank exits 1. */
int mprt__agree_flag(int *argc, char ***argv, const char *flag, bool mine, int *rank);

/* Adds this rank's "layers" array to its profile object (trainer_step.c): per layer of its
 * stage, the plan's predicted and the measured steady-state seconds per micro-batch. */
struct cJSON;
void mprt__layers_json(struct cJSON *rank);
/* Adds this rank's "memory" object (trainer_mem.c): the plan's bytes and the allocated ones
 * by category, once mprt_check_memory ran; nothing before. */
void mprt__memory_json(struct cJSON *rank);
/* While on (a validation's forwards, trainer_eval.c), the layer timer slots time nothing. */
void mprt__timers_pause(bool on);

/* The trace (trace.c), fed by the progress (the step boundaries), the timer slots (compute
 * spans) and the byte counters (communication spans). window(first, from): a run starting
 * after step `first` records the steps after `from`; step(done) after each step. */
void mprt__trace_window(int64_t first, int64_t from);
void mprt__trace_step(int64_t done);
bool mprt__tracing(void);
void mprt__trace_compute(int slot, const char *name, double t0, double t1);
void mprt__trace_comm(MprtColl k, MprtGroup g, int64_t bytes, double seconds);
/* A timer's name and the clock at its last start (log.c). */
const char *mprt__timer_name(int id);
double mprt__timer_started(int id);

/* Little-endian loads and stores (files are little-endian whatever the host). */
uint64_t mprt__le64(const unsigned char *p);
uint32_t mprt__le32(const unsigned char *p);
void mprt__put_le64(unsigned char *p, uint64_t v);

/* The rank's thread pool (parallel.c). fn(ctx, lo, hi, part) runs over [0, n) cut into at most
 * mprt_threads() contiguous parts of at least `grain` items each, part p = [p·n/P, (p+1)·n/P);
 * the caller runs part 0 and returns when every part is done. Serial when called from a part. */
typedef void (*MprtParFn)(void *ctx, int64_t lo, int64_t hi, int part);
void mprt__parallel_for(int64_t n, int64_t grain, MprtParFn fn, void *ctx);
/* hook: run by mprt__parallel_for's calling thread before each job (not from inside one);
 * NULL: none. The trainer sets mprt__progress_inflight (trainer_step.c). */
void mprt__set_progress_hook(void (*hook)(void));
void mprt__progress_inflight(void);
/* Room for `each` floats per part (indexed by part), valid until the next call; the pool owns it.
 */
float *mprt__par_scratch(int64_t each);
/* C[M, N] = alpha·op(A)·op(B) + beta·C, row-major (cblas_sgemm's meaning, ta/tb = transpose),
 * cut across the pool by rows or columns (gemm_blas.c). Every CPU kernel's GEMM goes here. */
void mprt__sgemm(bool ta, bool tb, int M, int N, int K, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc);
/* Stops the workers and frees the scratch (mprt_finalize). */
void mprt__par_finalize(void);
/* conv2d's im2col and col2im passes of one sample (kernels_conv.c), for mpcc-calibrate. */
void mprt__im2col(float *col, const float *x, int C, int H, int Wd, int K, int S, int P);
void mprt__col2im_add(float *dx, const float *col, int C, int H, int Wd, int K, int S, int P);
/* bf16 <-> f32 on the bit pattern (docs/runtime.md, "bf16"; bf16.c explains the rounding),
 * inline so that the runtime's loops over arrays (bf16.c, an embedding's bf16 rows) vectorise
 * them: the exported mprt_bf16_from_f32 / mprt_f32_from_bf16 may be interposed in the shared
 * library, which stops both. */
static inline uint16_t mprt__bf16_of(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u); /* NaN */
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float mprt__f32_of(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* conv2d's bias passes of one sample (kernels_conv.c), for mpcc-calibrate. */
void mprt__conv_bias_fill(float *on, const float *b, int O, int plane);
void mprt__conv_bias_grad(float *db, const float *don, int O, int plane);

#endif /* MPRT_INTERNAL_H */
