/*
 * mprt.h: the public header of mprt, the runtime every generated trainer links.
 *
 * A trainer is one SPMD program launched with `mpirun -np N ./train`: one process per
 * device. mprt gives it the mesh and its communicators, the collectives that change an
 * activation's layout (each one counted: bytes, calls, seconds), a counter-based RNG so
 * initial weights, synthetic data and dropout masks do not depend on the plan, .npy and
 * safetensors I/O with careful validation, and logging (progress line, named timers,
 * a JSON profile). docs/runtime.md is the manual; this header is the contract.
 *
 * The mesh (DESIGN.md §4, passes/passes.h): N = S·d·t ranks; rank r has coordinates
 * (stage s, replica j, tensor rank k) with r = (s·d + j)·t + k. Groups:
 *
 *   MPRT_TENSOR  same (s, j): the t tensor ranks of one replica       (size t, rank k)
 *   MPRT_DATA    same (s, k): the d replicas of one tensor rank       (size d, rank j)
 *   MPRT_STAGE   same s: all d·t ranks of a pipeline stage            (size d·t)
 *   MPRT_PIPE    same (j, k): the S stages of one (replica, tensor) column (size S, rank s);
 *                send/recv go to rank s±1 of this group
 *   MPRT_WORLD   everybody (metrics, profile gathering)
 *
 * The group and collective enums have the numeric values of passes.h's GroupKind and
 * CollKind, so generated code and tests can convert by cast; the runtime does not link the
 * compiler. Extra kinds (broadcast, metrics) and the world group come after them.
 *
 * Errors. A failing MPI call is a bug or a broken machine: the runtime prints
 *   train: rank 3: MPI_Allreduce on tensor group failed: <MPI error string>
 * and calls MPI_Abort, so the job ends instead of hanging. Bad user input (files, shapes,
 * flags) is reported through MprtErr by the function that finds it; the trainer then calls
 * mprt_exit_if_any(), which agrees across ranks, prints ONE line and exits 1 everywhere.
 * "train" is the basename of argv[0].
 *
 * Sizes are element counts (int64_t) unless named *_bytes. Shards must divide evenly: the
 * planner only chooses splits that divide, and the runtime checks (a fatal error otherwise).
 */
#ifndef MPRT_H
#define MPRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MPRT_VERSION "0.1.0"
#define MPRT_MAX_DIMS 8

/* ─────────────────────────────── launch and mesh (comm_mpi.c) ─────────────────────────────── */

typedef enum {
    MPRT_TENSOR,
    MPRT_DATA,
    MPRT_STAGE,
    MPRT_PIPE,
    MPRT_WORLD,
    MPRT_GROUP__COUNT
} MprtGroup;

typedef struct MprtMesh {
    int S, d, t;    /* pipeline stages, data replicas, tensor ranks */
    int rank, size; /* in MPI_COMM_WORLD; size == S·d·t */
    int s, j, k;    /* this rank's coordinates */
} MprtMesh;

/* MPI_Init, checks world size == S·d·t (else rank 0 prints "train: this plan needs 4 ranks
 * (S=1 × d=2 × t=2), launched with 3" and every rank exits 1), splits the groups, sets
 * MPI_ERRORS_RETURN everywhere and starts the run clock. Call once, before anything else. */
void mprt_init(int *argc, char ***argv, int S, int d, int t);
/* Frees the runtime's buffers and communicators, and MPI_Finalize when mprt_init was the one
 * that called MPI_Init. A program that initialised MPI itself (an embedding program driving a
 * generated trainer's C API) keeps MPI: mprt_init skips MPI_Init, mprt_finalize skips
 * MPI_Finalize, and the pair may run again. */
void mprt_finalize(void);

const MprtMesh *mprt_mesh(void);
int mprt_group_size(MprtGroup g);
int mprt_group_rank(MprtGroup g);
const char *mprt_group_name(MprtGroup g); /* "tensor", "data", "stage", "pipe", "world" */
const char *mprt_progname(void);          /* basename of argv[0], "train" before init */
double mprt_now(void);                    /* MPI_Wtime */
double mprt_elapsed(void);                /* seconds since mprt_init */

/* ─────────────────────────────── collectives (comm_mpi.c) ─────────────────────────────── */

/* Collective kinds, numbered as passes.h's CollKind (NONE and SLICE move nothing). */
typedef enum {
    MPRT_COLL_NONE,
    MPRT_COLL_SLICE,
    MPRT_ALLREDUCE,
    MPRT_ALLGATHER,
    MPRT_REDUCESCATTER,
    MPRT_ALLTOALL,
    MPRT_SENDRECV,
    MPRT_BROADCAST, /* not part of a plan (initialisation, checkpoints) */
    MPRT_METRICS,   /* scalar all-reduces for logging */
    MPRT_COLL__COUNT
} MprtColl;
const char *mprt_coll_name(MprtColl k); /* "all-reduce", "all-gather", ... as cost_coll_name */

/* The bytes one call counts on one rank, n = the tensor's bytes (see each function), g the
 * group size, integer arithmetic exactly as cost_coll_bytes() in passes/passes.h:
 *   allreduce, metrics 2(g−1)·n/g   allgather, reducescatter, broadcast (g−1)·n/g
 *   alltoall (g−1)·n/g²             sendrecv n (counted on the send side only)
 * Every product is formed before the single division; a group of 1 (except for send/recv)
 * and n ≤ 0 count 0. */
int64_t mprt_coll_bytes(MprtColl k, int64_t g, int64_t n);

/* In-place sum over the group of n floats. n = 4·count bytes. */
void mprt_allreduce(MprtGroup g, float *buf, int64_t count);
/* In-place maximum over the group, counted as an all-reduce of the same bytes. */
void mprt_allreduce_max(MprtGroup g, float *buf, int64_t count);

/* The gradient all-reduces overlapped with backward (docs/runtime.md, "Overlap"):
 * mprt_allreduce_start begins the same in-place sum as mprt_allreduce without waiting
 * (MPI_Iallreduce; buf must not be touched until the join); mprt_allreduce_progress lets MPI
 * advance every call in flight (MPI_Test each: MPI progresses a non-blocking collective only
 * inside MPI calls), to be called between layers; mprt_allreduce_join waits for all of them,
 * in start order. Every rank of a group starts its calls in the same order. Each call counts
 * as one all-reduce, its bytes as mprt_allreduce's and its time from start to completion;
 * mprt_allreduce_exposed is the total time the caller spent inside the three functions since
 * the start of the run: the part of the all-reduces the backward did not hide. */
void mprt_allreduce_start(MprtGroup g, float *buf, int64_t count);
void mprt_allreduce_progress(void);
void mprt_allreduce_join(void);
double mprt_allreduce_exposed(void);

/* A row-major tensor is viewed as outer × (G·chunk) × inner, G the group size, split along
 * the middle dimension: group rank i owns the slice [.., i·chunk:(i+1)·chunk, ..], stored
 * contiguously as outer × chunk × inner. Batch split: outer = 1. Feature split of
 * [B, F]: outer = B, chunk = F/G, inner = 1. Channel split of [B, C, H, W]: outer = B,
 * chunk = C/G, inner = H·W. The runtime rearranges when outer > 1.
 *
 * all-gather: local (outer × chunk × inner) → full (outer × G·chunk × inner) on every rank.
 * reduce-scatter: full partial sums on every rank → local = this rank's slice of their sum.
 * n = the full tensor's bytes for both. local and full must not overlap. */
void mprt_allgather(MprtGroup g, const float *local, float *full, int64_t outer, int64_t chunk,
                    int64_t inner);
void mprt_reduce_scatter(MprtGroup g, const float *full, float *local, int64_t outer, int64_t chunk,
                         int64_t inner);

/* ZeRO (docs/runtime.md, "ZeRO"): a tensor of `count` floats split over the G ranks of group g
 * into parts of `shard` floats (shard = ceil(count / G); the last parts short or empty).
 * mprt_zero_part: this rank's part, [*lo, *lo + n), n returned. mprt_zero_reduce_scatter: the
 * group's sum of `full`, this rank's part of it into `out` (added to it when `add`), or with
 * out NULL in place, at [lo, lo + n) of `full` (the rest of `full` is then undefined).
 * mprt_zero_allgather: every rank's part of `full` (in place) to every rank. Both count as
 * the padded tensor, n = 4·shard·G bytes, as the planner prices them. */
int64_t mprt_zero_part(MprtGroup g, int64_t count, int64_t shard, int64_t *lo);
/* The same split without a group, for rank r (pure; the CUDA collectives plan their padding
 * with it): [*lo, *lo + n), n returned, 0 <= n <= shard, *lo = min(shard·r, count). */
int64_t mprt_zero_span(int64_t count, int64_t shard, int r, int64_t *lo);
/* ZeRO-2's reduce-scatters overlapped with backward (docs/runtime.md, "ZeRO"), one in flight
 * per slot (0 .. MPRT_ZERO_SLOTS-1): mprt_zero_rs_start begins the group's sum of `full`
 * (shard·G floats, padded) into this rank's part `part` (shard floats) without waiting
 * (MPI_Ireduce_scatter_block; neither buffer may be touched until it completes);
 * mprt_zero_rs_test completes it if it is done (true) and lets MPI progress it otherwise;
 * mprt_zero_rs_wait completes it. Counted at completion as mprt_zero_reduce_scatter (the
 * padded tensor), its time from start to completion. MPRT_GRAD_SYNC=blocking, and bf16 on
 * the wire, run it blocking at the start. */
#define MPRT_ZERO_SLOTS 2
void mprt_zero_rs_start(int slot, MprtGroup g, const float *full, float *part, int64_t shard);
bool mprt_zero_rs_test(int slot);
void mprt_zero_rs_wait(int slot);

void mprt_zero_reduce_scatter(MprtGroup g, float *full, float *out, int64_t count, int64_t shard,
                              bool add);
void mprt_zero_allgather(MprtGroup g, float *full, int64_t count, int64_t shard);
/* The same on bf16 values (ZeRO under bf16: the 16-bit working weights), counted as
 * n = 2·shard·G bytes (comm_zero.c). */
void mprt_zero_allgather_bf16(MprtGroup g, uint16_t *full, int64_t count, int64_t shard);

/* Local slice (R → B or R → F, no communication): copies this rank's slice of `full`
 * (outer × G·chunk × inner) into `local` (outer × chunk × inner). Also used to take a shard
 * of a whole tensor read from a checkpoint; `part` of `parts` picks the slice. */
void mprt_slice(const float *full, float *local, int64_t outer, int64_t chunk, int64_t inner,
                int parts, int part);

/* All-to-all between the batch-split and feature-split layouts of one tensor viewed as
 * batch × mid × feat × inner (full sizes; batch and feat divisible by G):
 *   B layout: (batch/G) × mid × feat × inner    F layout: batch × mid × (feat/G) × inner
 * n = the full tensor's bytes (batch·mid·feat·inner·4). in and out must not overlap. */
void mprt_alltoall_b2f(MprtGroup g, const float *in, float *out, int64_t batch, int64_t mid,
                       int64_t feat, int64_t inner);
void mprt_alltoall_f2b(MprtGroup g, const float *in, float *out, int64_t batch, int64_t mid,
                       int64_t feat, int64_t inner);

/* Broadcast count floats from group rank root. */
void mprt_broadcast(MprtGroup g, float *buf, int64_t count, int root);

/* Sum of count doubles over the group, in place, counted under MPRT_METRICS (not part of
 * the plan's traffic): the loss for the progress line, totals for the final line. */
void mprt_metric_sum(MprtGroup g, double *vals, int count);
/* Maximum of count doubles over the group, in place, counted under MPRT_METRICS. */
void mprt_metric_max(MprtGroup g, double *vals, int count);

/* Point-to-point along the pipeline (MPRT_PIPE group): dir +1 is stage s+1, −1 is s−1.
 * Tags let several values cross one cut per micro-batch; n = 4·count, counted by the
 * sender. A trainer receives blocking and sends without blocking: mprt_isend returns a
 * request that mprt_wait completes and frees (before the buffer is reused); the time between
 * post and completion is counted at the wait. */
typedef struct MprtReq MprtReq;
void mprt_recv(int dir, float *buf, int64_t count, int tag);
MprtReq *mprt_isend(int dir, const float *buf, int64_t count, int tag);
void mprt_wait(MprtReq *req);

/* ─────────────────────────────── bf16 (bf16.c, comm_bf16.c) ─────────────────────────────── */

/* bfloat16 as its bit pattern (the upper half of an IEEE binary32). f32 → bf16 rounds to
 * nearest, ties to even; ±Inf stays ±Inf, finite values beyond the largest bf16 round to ±Inf,
 * a NaN stays a NaN (quiet, sign kept). bf16 → f32 is exact. mprt_bf16_round1(x) is
 * f32(bf16(x)); the array forms convert n elements (round: dst = f32(bf16(src)), dst may be
 * src). docs/runtime.md, "bf16". */
uint16_t mprt_bf16_from_f32(float x);
float mprt_f32_from_bf16(uint16_t h);
float mprt_bf16_round1(float x);
void mprt_bf16_pack(uint16_t *dst, const float *src, int64_t n);
void mprt_bf16_unpack(float *dst, const uint16_t *src, int64_t n);
void mprt_bf16_round(float *dst, const float *src, int64_t n);

/* Collectives on bf16 buffers, as the f32 ones above (same views, same groups), n = 2 bytes
 * per element in the count. Sums widen each pair of operands to f32, add and round to bf16
 * (an MPI user operation), so every partial sum is a bf16 value. */
void mprt_allreduce_bf16(MprtGroup g, uint16_t *buf, int64_t count);
void mprt_allgather_bf16(MprtGroup g, const uint16_t *local, uint16_t *full, int64_t outer,
                         int64_t chunk, int64_t inner);
void mprt_reduce_scatter_bf16(MprtGroup g, const uint16_t *full, uint16_t *local, int64_t outer,
                              int64_t chunk, int64_t inner);
/* mprt_slice and the all-to-alls on bf16 buffers (comm_layout.c): the same views and bytes as
 * the f32 ones under the bf16 wire (2 per element). */
void mprt_slice_bf16(const uint16_t *full, uint16_t *local, int64_t outer, int64_t chunk,
                     int64_t inner, int parts, int part);
void mprt_alltoall_b2f_bf16(MprtGroup g, const uint16_t *in, uint16_t *out, int64_t batch,
                            int64_t mid, int64_t feat, int64_t inner);
void mprt_alltoall_f2b_bf16(MprtGroup g, const uint16_t *in, uint16_t *out, int64_t batch,
                            int64_t mid, int64_t feat, int64_t inner);
void mprt_recv_bf16(int dir, uint16_t *buf, int64_t count, int tag);
MprtReq *mprt_isend_bf16(int dir, const uint16_t *buf, int64_t count, int tag);

/* The bf16 wire (a bf16 trainer sets it after mprt_init): while on, every counted collective
 * and send of f32 buffers above (all-reduce, its overlapped form, all-gather, reduce-scatter,
 * all-to-all, ZeRO's, send/recv) moves bf16 — packs its input, reduces with the bf16 sum,
 * unpacks — and counts 2 bytes per element; its result is bf16-exact, on a group of 1 too.
 * Calls made while the counters are paused (checkpoints, validation) and broadcasts and
 * metrics stay f32. */
void mprt_set_wire_bf16(bool on);
bool mprt_wire_bf16(void);

/* Every rank calls this with `failed` and its message. If no rank failed it returns. Else the
 * lowest failing rank prints "train: <msg>" (one line for the whole job) and every rank
 * finalises MPI and exits 1. Collective over the world. */
void mprt_exit_if_any(bool failed, const char *msg);
/* The communication timeout (comm_wait.c; docs/runtime.md, "A rank that stops"): a wait on
 * other ranks (every collective, send and receive) that makes no progress for this many
 * seconds asks every rank whether it is alive, prints one line naming those that do not
 * answer, and aborts the job. MPRT_COMM_TIMEOUT in the environment sets it at mprt_init
 * unless mprt_set_comm_timeout did; 0 waits forever. Per rank, callable before mprt_init. */
#define MPRT_COMM_TIMEOUT_DEFAULT 300.0
void mprt_set_comm_timeout(double seconds);
double mprt_comm_timeout(void);

/* An unrecoverable error on this rank: prints "train: rank R: <msg>" and MPI_Abort. */
void mprt_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ─────────────────────────────── counters and profile (log.c) ─────────────────────────────── */

typedef struct MprtCommStat {
    int64_t bytes, calls;
    double seconds;
} MprtCommStat;

MprtCommStat mprt_stats_get(MprtColl k, MprtGroup g);
/* Sum of the bytes of the plan's kinds (allreduce … sendrecv) over all groups: the number
 * the report predicts. Broadcasts and metrics are left out. */
int64_t mprt_stats_plan_bytes(void);
void mprt_stats_reset(void);
/* While paused (nestable), collectives still run but nothing is counted: wrap checkpoint
 * gathers and other traffic that is not part of a training step. */
void mprt_stats_pause(void);
void mprt_stats_resume(void);
/* Used by comm_mpi.c: adds one call. */
void mprt_stats_add(MprtColl k, MprtGroup g, int64_t bytes, double seconds);

/* Named timers: mprt_timer returns a stable id for a name (created on first use; the name
 * is copied), start/stop accumulate wall seconds and a call count. Names like
 * "fwd.fc1", "bwd.fc1", "optimizer", "stage0.idle". */
int mprt_timer(const char *name);
void mprt_timer_start(int id);
void mprt_timer_stop(int id);
void mprt_timer_add(int id, double seconds);
double mprt_timer_seconds(int id);

/* What the plan predicts, for the progress line's rates and the end-of-run comparison
 * (docs/runtime.md "Predicted and measured"). Zeros leave those numbers out. */
typedef struct MprtForecast {
    double step_s;             /* the report's "predicted step" */
    double flops_per_step;     /* the model's FLOPs per step, forward + backward (the report's) */
    double peak_flops;         /* one device's peak FLOP/s (the preset's): MFU's denominator */
    int64_t tokens_per_sample; /* > 0 for a token model (input [batch, T]): rates in tokens */
} MprtForecast;

/* Progress reporting, printed by world rank 0 only (every rank may call). start() before
 * the first step; step() after every step with the loss already averaged over ranks, which
 * prints a line at every multiple of log_every and at the last step:
 *   step 20/100 | loss 2.302585 | 1234.5 samples/s | 308.6 samples/s/device | 25.9 ms/step |
 *   3.12 GFLOP/s | MFU 1.3% | comm 12.34 MB | elapsed 1.2s | eta 4.8s      (one line)
 * rates over the steps since the previous line, per device = over the world's ranks, FLOP/s
 * from f->flops_per_step, MFU = that over (ranks × f->peak_flops); comm = this rank's plan
 * bytes so far (MB = 10^6 bytes), eta from the average step time so far.
 * The first max(1, n/10) of a run's n ≥ 2 steps are its warm-up: the steady-state step time
 * (mprt_progress_measured) and the timers' steady-state share (mprt_timers_mark) count only
 * the steps after it. finish() is collective over the world and prints the totals line
 * (busiest rank's bytes), then, with a forecast, the comparison:
 *   done 100 steps in 6.0s | final loss 0.123456 | 1666.7 samples/s | comm 123.45 MB max/rank |
 *   400 collectives
 *   time: predicted 6.05 ms/step, measured 47.1 ms/step (steps 11-100; 10 warm-up): 7.79x */
void mprt_progress_start(int64_t first_step, int64_t last_step, int64_t samples_per_step,
                         int64_t log_every, const MprtForecast *f);
void mprt_progress_step(int64_t step, double loss);
void mprt_progress_finish(double final_loss);
/* A validation's result (trainer_eval.c) after the step it followed: the next progress line
 * is printed whatever --log-every says and ends "| val_loss 1.234567 val_acc 0.9100" (no
 * val_acc when acc < 0), the totals line gives the last values, and the profile holds them
 * ("validation": step, loss, accuracy, batches). */
void mprt_progress_val(int64_t step, double loss, double acc, int64_t batches);
/* Leaves `seconds` (an evaluation's) out of the progress line's rates and the steady-state
 * step time. */
void mprt_progress_exclude(double seconds);
/* After finish(): the steady-state seconds per step (the slowest rank's), 0 when no step
 * followed the warm-up; and the number of warm-up steps. */
double mprt_progress_measured(void);
int64_t mprt_progress_warmup(void);
/* Timers' steady state: mark() snapshots every timer (progress does it when the warm-up
 * ends); steady() gives a timer's seconds and calls since the mark. */
void mprt_timers_mark(void);
void mprt_timer_steady(int id, double *seconds, int64_t *calls);

typedef struct MprtErr {
    char msg[512];
} MprtErr;

/* --trace (trace.c, docs/runtime.md "Trace"): arm() before the first step (collective over
 * the world: it takes the ranks' common time origin) records the `nsteps` steps after the
 * run's warm-up; write() (collective) gathers every rank's spans to rank 0, which writes the
 * Chrome trace-event JSON atomically. False with err set on rank 0 if it cannot. */
void mprt_trace_arm(int64_t nsteps);
bool mprt_trace_write(const char *path, MprtErr *err);

/* Writes the JSON profile (docs/runtime.md): per rank, per collective kind and group
 * bytes/calls/seconds, and every named timer. Collective over the world; rank 0 writes the
 * file (atomically). Returns false with err set on rank 0 if it cannot be written. */
bool mprt_profile_write(const char *path, MprtErr *err);

/* ─────────────────────────────── RNG (rng.c) ─────────────────────────────── */

/* Counter-based: every value is a pure function of (seed, stream, index), so any range can be
 * generated by any rank in any order and gives the same numbers. A stream is a key derived
 * from the seed and an id (tensor number, "data", dropout layer…); mprt_rng_sub derives a
 * sub-stream (e.g. the step). bits(r, i) is output i of a SplitMix64 generator started at
 * the key: mix64(key + (i+1)·0x9E3779B97F4A7C15). */
typedef struct MprtRng {
    uint64_t key;
} MprtRng;

MprtRng mprt_rng(uint64_t seed, uint64_t stream);
MprtRng mprt_rng_sub(MprtRng r, uint64_t id);
/* A stream id from a name (FNV-1a 64), e.g. a parameter's name. */
uint64_t mprt_rng_name_id(const char *name);

static inline uint64_t mprt_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline uint64_t mprt_rng_bits(MprtRng r, uint64_t i) {
    return mprt_mix64(r.key + (i + 1) * 0x9E3779B97F4A7C15ull);
}
/* Uniform in [0, 1) with 24 random bits: exactly representable floats. */
static inline float mprt_rng_uniform(MprtRng r, uint64_t i) {
    return (float)(mprt_rng_bits(r, i) >> 40) * (1.0f / 16777216.0f);
}
/* Standard normal at index i (Box–Muller on bits(2i) and bits(2i+1), computed in double). */
float mprt_rng_normal(MprtRng r, uint64_t i);

/* dst[e] = value at index first + e, for e < n. */
void mprt_rng_fill_uniform(MprtRng r, uint64_t first, int64_t n, float lo, float hi, float *dst);
void mprt_rng_fill_normal(MprtRng r, uint64_t first, int64_t n, float mean, float std, float *dst);
/* A shard of a whole tensor viewed as outer × (parts·chunk) × inner: fills dst
 * (outer × chunk × inner) with the values the whole tensor has at slice `part`, so every
 * plan starts from the same weights. normal: mean + std·N(0,1); uniform: U[lo, hi). */
void mprt_rng_shard_normal(MprtRng r, int64_t outer, int64_t chunk, int64_t inner, int parts,
                           int part, float mean, float std, float *dst);
void mprt_rng_shard_uniform(MprtRng r, int64_t outer, int64_t chunk, int64_t inner, int parts,
                            int part, float lo, float hi, float *dst);

/* ─────────────────────────────── files (io_npy.c, io_safetensors.c)
 * ─────────────────────────────── */

typedef enum { MPRT_F32, MPRT_I32, MPRT_I64, MPRT_DTYPE__COUNT } MprtDtype;
const char *mprt_dtype_name(MprtDtype t); /* "f32", "i32", "i64" (as in .mp sources) */
size_t mprt_dtype_size(MprtDtype t);

/* An n-d array owned by the caller after a load (free with mprt_array_free). */
typedef struct MprtArray {
    MprtDtype dtype;
    int ndim;
    int64_t shape[MPRT_MAX_DIMS];
    int64_t numel;
    void *data;
} MprtArray;
void mprt_array_free(MprtArray *a);

/* Loads a .npy file (format 1.0, 2.0 or 3.0; '<f4', '<i4' or '<i8'; C order) and checks it
 * against what the caller expects: dtype `want` (i32 and i64 files convert to each other,
 * values checked to fit; floats must be f32), `ndim` dims with shape[1..] equal to
 * `shape[1..]`; the leading dim (the samples) is free but must be ≥ min_rows. Errors are one
 * line, e.g. "x.npy: expected f32[N, 784] with N >= 128, got f32[60000, 785]". */
bool mprt_npy_load(const char *path, MprtDtype want, int ndim, const int64_t *shape,
                   int64_t min_rows, MprtArray *out, MprtErr *err);
/* The same on bytes already in memory (`name` used in messages); used by the fuzz target. */
bool mprt_npy_parse(const void *buf, size_t size, const char *name, MprtDtype want, int ndim,
                    const int64_t *shape, int64_t min_rows, MprtArray *out, MprtErr *err);
/* Writes a .npy file (format 1.0, data 64-byte aligned), atomically like checkpoints. */
bool mprt_npy_save(const char *path, MprtDtype t, int ndim, const int64_t *shape, const void *data,
                   MprtErr *err);

/* A token stream (io_tokens.c): the training text of a language model as nanoGPT writes it
 * (little-endian uint16 tokens, nothing else) or llm.c does (a header of 256 int32s: magic
 * 20240520, version 1 for uint16 tokens or 2 for uint32, the token count; then the tokens).
 * Opened files are memory-mapped, read only. */
#define MPRT_MAX_TOKENS ((int64_t)1 << 40)
typedef struct MprtTokens {
    const unsigned char *tok; /* the first token */
    int64_t count;            /* tokens */
    int width;                /* bytes per token: 2 or 4 */
    void *map;                /* the mapping of an opened file (NULL after a parse) */
    size_t map_size;
} MprtTokens;
/* Opens a token file: the layout must hold together (no odd length, a header's count equal to
 * the tokens present, at most MPRT_MAX_TOKENS), at least window + 1 tokens, every token below
 * vocab (0: unchecked). One-line errors, e.g. "train.bin: token 50257 at position 12 is outside
 * the vocabulary [0, 50257)". */
bool mprt_tokens_open(const char *path, int64_t vocab, int64_t window, MprtTokens *out,
                      MprtErr *err);
/* The same checks on bytes in memory (`name` used in messages); out points into buf. For the
 * fuzz targets and the tests. */
bool mprt_tokens_parse(const void *buf, size_t size, const char *name, int64_t vocab,
                       int64_t window, MprtTokens *out, MprtErr *err);
/* Token i (0 <= i < count). */
int64_t mprt_tokens_at(const MprtTokens *t, int64_t i);
/* Unmaps an opened file; zeroes *t. */
void mprt_tokens_close(MprtTokens *t);

/* safetensors (https://huggingface.co/docs/safetensors): 8-byte little-endian header size,
 * a JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {string: string}} padded with spaces to 8 bytes, then the data. */
typedef struct MprtTensorRef {
    const char *name;
    MprtDtype dtype;
    int ndim;
    int64_t shape[MPRT_MAX_DIMS];
    const void *data;
} MprtTensorRef;
typedef struct MprtMeta {
    const char *key, *value;
} MprtMeta;

/* Writes "<path>.tmp.<pid>", fsyncs it, renames it over path and fsyncs the directory, so
 * a crash at any moment leaves either the old file or the new one. Names must be unique. */
bool mprt_st_save(const char *path, const MprtTensorRef *tensors, int ntensors,
                  const MprtMeta *meta, int nmeta, MprtErr *err);

typedef struct MprtSt MprtSt;
/* Opens and validates a file: header size ≤ 100 MB and ≤ file size, JSON parsed with cJSON,
 * every entry checked (known dtype, dims ≥ 0, byte size = numel·dtype size, offsets tiling
 * the data area exactly with no gap or overlap). NULL with err set on any problem. */
MprtSt *mprt_st_open(const char *path, MprtErr *err);
/* The same over bytes in memory (not copied: buf must outlive the handle). */
MprtSt *mprt_st_open_mem(const void *buf, size_t size, const char *name, MprtErr *err);
void mprt_st_close(MprtSt *f);
int mprt_st_count(const MprtSt *f);
/* The i-th tensor (in file order) as a reference with data == NULL. */
MprtTensorRef mprt_st_info(const MprtSt *f, int i);
/* The metadata value for key, or NULL. */
const char *mprt_st_meta(const MprtSt *f, const char *key);
/* Copies tensor `name` into dst, which holds `ndim` dims of `shape` in dtype `t`. Missing
 * tensor, dtype or shape mismatch: one-line error naming the tensor and both shapes. */
bool mprt_st_read(MprtSt *f, const char *name, MprtDtype t, int ndim, const int64_t *shape,
                  void *dst, MprtErr *err);

/* The op kernels (forward/backward pairs, optimizers): runtime/mprt_kernels.h. */
#include "mprt_kernels.h"

#endif /* MPRT_H */
