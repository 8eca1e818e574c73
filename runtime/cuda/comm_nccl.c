/*
 * comm_nccl.c: the collectives of a CUDA trainer, over NCCL or over MPI with host staging,
 * with the same groups, arguments and byte counts as the CPU runtime (runtime/comm_mpi.c).
 *
 * Communicators. World rank 0 draws an ncclUniqueId, MPI_Bcast hands it to everyone, and
 * ncclCommInitRank builds a world communicator; each group of runtime/mprt.h (tensor, data,
 * stage, pipe) is then split from it with ncclCommSplit, colour = the coordinates the group
 * shares and key = the rank's index inside the group, so a group's NCCL ranks are numbered
 * exactly like its MPI ranks (checked at setup: layouts and send/recv peers depend on it).
 *
 * Streams and order. Collectives run on the communication stream. Before each one the
 * communication stream waits for an event recorded on the compute stream (the data is
 * ready); after it, the compute stream waits for an event on the communication stream (the
 * result is there before the next kernel reads it). Neither wait blocks the host. The
 * gradient all-reduce can skip the second wait (mprt_cu_allreduce_start), so the backward of
 * earlier layers keeps the compute stream busy while gradients travel; mprt_cu_comm_join
 * (before the optimizer) makes the compute stream wait for all of them.
 *
 * Counting. Each NCCL call's bytes follow mprt_coll_bytes (the report's formula); its time is
 * measured by a pair of timing events around it on the communication stream. Reading an
 * event's time needs the call to have finished, so calls are queued and
 * mprt_cu_stats_flush() adds them to the CPU runtime's counters in one go.
 *
 * Host-staged MPI mode. Every collective copies its input to pinned host memory, calls the
 * CPU runtime's collective of the same name (which counts its own bytes and time) and copies
 * the result back. It is synchronous and slow, and exists so that several ranks can share
 * one GPU in tests (NCCL refuses two ranks of a communicator on one device).
 *
 * The bf16 wire (docs/cuda.md, "bf16"). While the CPU runtime's wire is on and the counters
 * run (mprt_set_wire_bf16, the test every CPU collective makes), every counted collective
 * moves bf16 over NCCL as the CPU's do over MPI: its f32 input is packed (rounded) into a
 * bf16 staging buffer on the communication stream, NCCL runs on ncclBfloat16 (sums are
 * NCCL's, in bf16), the result is unpacked into the caller's f32 buffer, and the call counts
 * 2 bytes per element. Broadcasts stay f32, as on the CPU. Host-staged mode needs nothing:
 * the CPU calls it makes do the same.
 */
#include "cu_internal.h"
#include "internal.h" /* mprt__wire: the CPU runtime's bf16 wire, which the device follows */
#include "mprt.h"

#include <mpi.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

#define NGROUPS 5 /* MPRT_TENSOR … MPRT_WORLD */

typedef struct Pending {
    MprtColl kind;
    MprtGroup group;
    int64_t bytes;
    cudaEvent_t start, stop;
} Pending;

static struct {
    bool up;
    MprtCuComm mode;
    ncclComm_t comm[NGROUPS];
    cudaEvent_t ready, done; /* ordering events (no timing) */
    Pending *pend;           /* timing events, reused after each flush */
    int npend, cap;
    float *scratch[2]; /* device staging for pack/unpack */
    size_t scratch_bytes[2];
    uint16_t *wire[2]; /* device bf16 staging of the wire: input, output */
    size_t wire_bytes[2];
    float *host; /* pinned staging for MPI mode */
    size_t host_bytes;
    bool started; /* an all-reduce ran without a join since */
} N;

/* ─────────────────────────────── setup ─────────────────────────────── */

/* Colour and key of this rank in group g: the coordinates shared, and the index inside. */
static void split_of(MprtGroup g, const MprtMesh *m, int *color, int *key) {
    switch (g) {
    case MPRT_TENSOR: *color = m->s * m->d + m->j, *key = m->k; break;
    case MPRT_DATA: *color = m->s * m->t + m->k, *key = m->j; break;
    case MPRT_STAGE: *color = m->s, *key = m->j * m->t + m->k; break;
    case MPRT_PIPE: *color = m->j * m->t + m->k, *key = m->s; break;
    default: *color = 0, *key = m->rank; break;
    }
}

static void nccl_setup(void) {
    const MprtMesh *m = mprt_mesh();
    ncclUniqueId id;
    if (m->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    if (MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        mprt_fatal("MPI_Bcast of the NCCL unique id failed");
    NCCL_CHECK(ncclCommInitRank(&N.comm[MPRT_WORLD], m->size, id, m->rank));
    for (int g = 0; g < MPRT_WORLD; g++) {
        int color, key;
        split_of((MprtGroup)g, m, &color, &key);
        NCCL_CHECK(ncclCommSplit(N.comm[MPRT_WORLD], color, key, &N.comm[g], NULL));
        int r = -1;
        NCCL_CHECK(ncclCommUserRank(N.comm[g], &r));
        if (r != mprt_group_rank((MprtGroup)g))
            mprt_fatal("NCCL %s communicator numbers this rank %d, MPI numbers it %d",
                       mprt_group_name((MprtGroup)g), r, mprt_group_rank((MprtGroup)g));
    }
}

void mprt_cu_comm_setup(MprtCuComm mode, int local_size, int ndev) {
    (void)local_size, (void)ndev;
    N.mode = mode;
    CU_CHECK(cudaEventCreateWithFlags(&N.ready, cudaEventDisableTiming));
    CU_CHECK(cudaEventCreateWithFlags(&N.done, cudaEventDisableTiming));
    if (mode == MPRT_CU_COMM_NCCL) nccl_setup();
    N.up = true;
}

void mprt_cu_comm_abort_all(void) {
    for (int g = 0; g < NGROUPS; g++)
        if (N.comm[g]) {
            ncclCommAbort(N.comm[g]); /* best effort: we are already failing */
            N.comm[g] = NULL;
        }
}

void mprt_cu_comm_teardown(void) {
    if (!N.up) return;
    mprt_cu_stats_flush();
    for (int g = 0; g < NGROUPS; g++)
        if (N.comm[g]) {
            NCCL_CHECK(ncclCommDestroy(N.comm[g]));
            N.comm[g] = NULL;
        }
    for (int i = 0; i < N.cap; i++) {
        CU_CHECK(cudaEventDestroy(N.pend[i].start));
        CU_CHECK(cudaEventDestroy(N.pend[i].stop));
    }
    free(N.pend);
    for (int i = 0; i < 2; i++)
        mprt_cu_free(N.scratch[i]), mprt_cu_free(N.wire[i]);
    if (N.host) CU_CHECK(cudaFreeHost(N.host));
    CU_CHECK(cudaEventDestroy(N.ready));
    CU_CHECK(cudaEventDestroy(N.done));
    memset(&N, 0, sizeof N);
}

/* ─────────────────────────────── buffers ─────────────────────────────── */

/* *buf grown to at least `bytes` of device memory (after the streams drain). */
static void *grow(void **buf, size_t *have, size_t bytes) {
    if (bytes > *have) {
        mprt_cu_sync();
        mprt_cu_free(*buf);
        *buf = mprt_cu_malloc(bytes);
        *have = bytes;
    }
    return *buf;
}

/* Device staging buffer i of at least `count` floats. */
static float *scratch(int i, int64_t count) {
    return grow((void **)&N.scratch[i], &N.scratch_bytes[i], (size_t)count * sizeof(float));
}

/* bf16 staging buffer i of at least `count` elements. */
static uint16_t *wire_buf(int i, int64_t count) {
    return grow((void **)&N.wire[i], &N.wire_bytes[i], (size_t)count * sizeof(uint16_t));
}

/* Pinned host staging of at least `count` floats. */
static float *host(int64_t count) {
    size_t bytes = (size_t)count * sizeof(float);
    if (bytes > N.host_bytes) {
        if (N.host) CU_CHECK(cudaFreeHost(N.host));
        CU_CHECK(cudaMallocHost((void **)&N.host, bytes));
        N.host_bytes = bytes;
    }
    return N.host;
}

static void to_host(float *h, const float *d, int64_t count) {
    mprt_cu_download(h, d, (size_t)count * sizeof(float));
}
static void to_device(float *d, const float *h, int64_t count) {
    mprt_cu_upload(d, h, (size_t)count * sizeof(float));
}

/* ─────────────────────────────── ordering and counting ─────────────────────────────── */

static bool staged(void) {
    if (!N.up)
        mprt_cu_fail("mprt_cu collective", "mprt_cu_init was not called", __FILE__, __LINE__);
    return N.mode == MPRT_CU_COMM_MPI;
}

static ncclComm_t comm_of(int g) {
    if (g < 0 || g >= NGROUPS || !N.comm[g])
        mprt_cu_fail("mprt_cu collective", "no such group", __FILE__, __LINE__);
    return N.comm[g];
}

/* The communication stream waits for the compute stream; a timing event opens the call. */
static cudaStream_t begin(void) {
    cudaStream_t cs = mprt_cu_comm_stream();
    CU_CHECK(cudaEventRecord(N.ready, mprt_cu_stream()));
    CU_CHECK(cudaStreamWaitEvent(cs, N.ready, 0));
    if (N.npend == N.cap) {
        int cap = N.cap ? 2 * N.cap : 64;
        Pending *p = realloc(N.pend, (size_t)cap * sizeof *p);
        if (!p) mprt_fatal("out of memory for collective timing events");
        for (int i = N.cap; i < cap; i++) {
            CU_CHECK(cudaEventCreate(&p[i].start));
            CU_CHECK(cudaEventCreate(&p[i].stop));
        }
        N.pend = p, N.cap = cap;
    }
    CU_CHECK(cudaEventRecord(N.pend[N.npend].start, cs));
    return cs;
}

/* Closes the call opened by begin: queues its count, and unless `async`, makes the compute
 * stream wait for it. */
static void end(MprtColl kind, int group, int64_t n_bytes, bool async) {
    cudaStream_t cs = mprt_cu_comm_stream();
    Pending *p = &N.pend[N.npend++];
    p->kind = kind;
    p->group = (MprtGroup)group;
    p->bytes = mprt_coll_bytes(kind, mprt_group_size((MprtGroup)group), n_bytes);
    CU_CHECK(cudaEventRecord(p->stop, cs));
    if (async) {
        N.started = true;
        return;
    }
    CU_CHECK(cudaEventRecord(N.done, cs));
    CU_CHECK(cudaStreamWaitEvent(mprt_cu_stream(), N.done, 0));
}

void mprt_cu_comm_join(void) {
    if (!N.started) return;
    CU_CHECK(cudaEventRecord(N.done, mprt_cu_comm_stream()));
    CU_CHECK(cudaStreamWaitEvent(mprt_cu_stream(), N.done, 0));
    N.started = false;
}

void mprt_cu_stats_flush(void) {
    for (int i = 0; i < N.npend; i++) {
        Pending *p = &N.pend[i];
        float ms = 0.0f;
        CU_CHECK(cudaEventSynchronize(p->stop));
        CU_CHECK(cudaEventElapsedTime(&ms, p->start, p->stop));
        mprt_stats_add(p->kind, p->group, p->bytes, (double)ms * 1e-3);
    }
    N.npend = 0;
}

/* What comm_bf16.c's collectives on 16-bit buffers share with these (cu_internal.h). */
bool mprt_cu__staged(void) { return staged(); }
struct ncclComm *mprt_cu__comm(int group) {
    return comm_of(group);
}
cudaStream_t mprt_cu__begin(void) { return begin(); }
void mprt_cu__end(int kind, int group, int64_t n_bytes) {
    end((MprtColl)kind, group, n_bytes, false);
}
uint16_t *mprt_cu__wire_buf(int i, int64_t count) { return wire_buf(i, count); }
void *mprt_cu__host(int64_t bytes) { return host((bytes + 3) / 4); }

/* ─────────────────────────────── the NCCL calls, f32 or bf16 on the wire ───────────────────── */

/* Bytes per element moved: bf16 while the wire is on (w), else f32. */
static int64_t esize(bool w) { return w ? 2 : 4; }

/* `count` floats of src rounded into bf16 staging buffer i, on the communication stream. */
static uint16_t *wire_pack(int i, const float *src, int64_t count, cudaStream_t cs) {
    uint16_t *p = wire_buf(i, count);
    mprt_cu_bf16_pack_on(p, src, count, cs);
    return p;
}

/* In-place sum of `count` floats over c. */
static void nccl_allreduce(float *buf, int64_t count, ncclComm_t c, cudaStream_t cs, bool w) {
    if (!w) {
        NCCL_CHECK(ncclAllReduce(buf, buf, (size_t)count, ncclFloat, ncclSum, c, cs));
        return;
    }
    uint16_t *p = wire_pack(0, buf, count, cs);
    NCCL_CHECK(ncclAllReduce(p, p, (size_t)count, ncclBfloat16, ncclSum, c, cs));
    mprt_cu_bf16_unpack_on(buf, p, count, cs);
}

/* recv [G·n] = every rank's send [n], in rank order. */
static void nccl_allgather(const float *send, float *recv, int64_t n, int64_t G, ncclComm_t c,
                           cudaStream_t cs, bool w) {
    if (!w) {
        NCCL_CHECK(ncclAllGather(send, recv, (size_t)n, ncclFloat, c, cs));
        return;
    }
    uint16_t *in = wire_pack(0, send, n, cs), *out = wire_buf(1, G * n);
    NCCL_CHECK(ncclAllGather(in, out, (size_t)n, ncclBfloat16, c, cs));
    mprt_cu_bf16_unpack_on(recv, out, G * n, cs);
}

/* recv [n] = the sum over ranks of their send [G·n]'s block of this rank. */
static void nccl_reduce_scatter(const float *send, float *recv, int64_t n, int64_t G, ncclComm_t c,
                                cudaStream_t cs, bool w) {
    if (!w) {
        NCCL_CHECK(ncclReduceScatter(send, recv, (size_t)n, ncclFloat, ncclSum, c, cs));
        return;
    }
    uint16_t *in = wire_pack(0, send, G * n, cs), *out = wire_buf(1, n);
    NCCL_CHECK(ncclReduceScatter(in, out, (size_t)n, ncclBfloat16, ncclSum, c, cs));
    mprt_cu_bf16_unpack_on(recv, out, n, cs);
}

/* ─────────────────────────────── collectives ─────────────────────────────── */

/* Sum, or with `max` the maximum (the vocabulary-parallel loss's row maxima). */
static void allreduce(int g, float *buf, int64_t count, bool async, bool max) {
    if (staged()) {
        float *h = host(count);
        to_host(h, buf, count);
        if (max)
            mprt_allreduce_max((MprtGroup)g, h, count);
        else
            mprt_allreduce((MprtGroup)g, h, count);
        to_device(buf, h, count);
        return;
    }
    cudaStream_t cs = begin();
    bool w = !max && mprt__wire(); /* the max is f32 on the wire, as on the CPU */
    if (max)
        NCCL_CHECK(ncclAllReduce(buf, buf, (size_t)count, ncclFloat, ncclMax, comm_of(g), cs));
    else
        nccl_allreduce(buf, count, comm_of(g), cs, w);
    end(MPRT_ALLREDUCE, g, count * esize(w), async);
}

void mprt_cu_allreduce(int group, float *buf, int64_t count) {
    allreduce(group, buf, count, false, false);
}
void mprt_cu_allreduce_start(int group, float *buf, int64_t count) {
    allreduce(group, buf, count, true, false);
}
void mprt_cu_allreduce_max(int group, float *buf, int64_t count) {
    allreduce(group, buf, count, false, true);
}

void mprt_cu_allreduce_bf16(int group, uint16_t *buf, int64_t count) {
    if (staged()) {
        uint16_t *h = (uint16_t *)host((count + 1) / 2);
        mprt_cu_download(h, buf, (size_t)count * sizeof *h);
        mprt_allreduce_bf16((MprtGroup)group, h, count);
        mprt_cu_upload(buf, h, (size_t)count * sizeof *h);
        return;
    }
    cudaStream_t cs = begin();
    NCCL_CHECK(ncclAllReduce(buf, buf, (size_t)count, ncclBfloat16, ncclSum, comm_of(group), cs));
    end(MPRT_ALLREDUCE, group, count * 2, false);
}

void mprt_cu_allgather(int group, const float *local, float *full, int64_t outer, int64_t chunk,
                       int64_t inner) {
    int64_t G = mprt_group_size((MprtGroup)group), n = outer * chunk * inner;
    if (staged()) {
        float *h = host(n + G * n);
        to_host(h, local, n);
        mprt_allgather((MprtGroup)group, h, h + n, outer, chunk, inner);
        to_device(full, h + n, G * n);
        return;
    }
    cudaStream_t cs = begin();
    bool w = mprt__wire();
    float *dst = outer == 1 ? full : scratch(0, G * n);
    nccl_allgather(local, dst, n, G, comm_of(group), cs, w);
    if (outer != 1) mprt_cu_pack_gather_to_full(full, dst, G, outer, chunk, inner, cs);
    end(MPRT_ALLGATHER, group, G * n * esize(w), false);
}

void mprt_cu_reduce_scatter(int group, const float *full, float *local, int64_t outer,
                            int64_t chunk, int64_t inner) {
    int64_t G = mprt_group_size((MprtGroup)group), n = outer * chunk * inner;
    if (staged()) {
        float *h = host(G * n + n);
        to_host(h, full, G * n);
        mprt_reduce_scatter((MprtGroup)group, h, h + G * n, outer, chunk, inner);
        to_device(local, h + G * n, n);
        return;
    }
    cudaStream_t cs = begin();
    const float *src = full;
    if (outer != 1) {
        float *s = scratch(0, G * n);
        mprt_cu_pack_full_to_gather(s, full, G, outer, chunk, inner, cs);
        src = s;
    }
    bool w = mprt__wire();
    nccl_reduce_scatter(src, local, n, G, comm_of(group), cs, w);
    end(MPRT_REDUCESCATTER, group, G * n * esize(w), false);
}

void mprt_cu_slice(const float *full, float *local, int64_t outer, int64_t chunk, int64_t inner,
                   int parts, int part) {
    mprt_cu_pack_slice(local, full, outer, chunk, inner, parts, part, mprt_cu_stream());
}

/* ─────────────────────────────── ZeRO ─────────────────────────────── */

/* Host-staged: the CPU runtime's ZeRO collectives on pinned copies (this rank's n floats of
 * `out` go down first when adding to them). */
static void zero_rs_staged(int group, const float *full, float *out, int64_t count, int64_t shard,
                           bool add) {
    int64_t lo, n = mprt_zero_part((MprtGroup)group, count, shard, &lo);
    float *h = host(count + shard);
    to_host(h, full, count);
    if (add) to_host(h + count, out, n);
    mprt_zero_reduce_scatter((MprtGroup)group, h, h + count, count, shard, add);
    to_device(out, h + count, n);
}

/* NCCL reduce-scatters G equal parts: unless count == G·shard, `full` goes into a zero-padded
 * copy first (on the communication stream, so it is ordered after the backward that wrote it).
 * Adding, or a part shorter than `shard` (the last, padded), the part lands in a scratch buffer
 * first: the compute stream adds it to `out` after the call (the next collective's scratch use
 * waits for that add: begin()), or its n real floats are copied to `out`. out NULL (ZeRO-1): in
 * place, this rank's part at its place in `full` (NCCL's in-place form when count == G·shard). */
void mprt_cu_zero_reduce_scatter(int group, const float *full, float *out, int64_t count,
                                 int64_t shard, bool add) {
    int64_t G = mprt_group_size((MprtGroup)group), lo;
    int64_t n = mprt_zero_span(count, shard, mprt_group_rank((MprtGroup)group), &lo);
    if (!out) out = (float *)full + lo;
    if (staged()) {
        zero_rs_staged(group, full, out, count, shard, add);
        return;
    }
    cudaStream_t cs = begin();
    const float *src = full;
    if (count != G * shard) {
        float *pad = scratch(0, G * shard);
        CU_CHECK(cudaMemcpyAsync(pad, full, (size_t)count * sizeof(float), cudaMemcpyDeviceToDevice,
                                 cs));
        CU_CHECK(cudaMemsetAsync(pad + count, 0, (size_t)(G * shard - count) * sizeof(float), cs));
        src = pad;
    }
    bool direct = !add && n == shard, w = mprt__wire();
    float *dst = direct ? out : scratch(1, shard);
    nccl_reduce_scatter(src, dst, shard, G, comm_of(group), cs, w);
    if (!add && !direct && n > 0)
        CU_CHECK(
            cudaMemcpyAsync(out, dst, (size_t)n * sizeof(float), cudaMemcpyDeviceToDevice, cs));
    end(MPRT_REDUCESCATTER, group, esize(w) * G * shard, false);
    if (add) mprt_cu_accumulate(out, dst, n);
}

void mprt_cu_zero_reduce_scatter_start(int group, float *slot, float *out, int64_t count,
                                       int64_t shard) {
    if (staged()) {
        zero_rs_staged(group, slot, out, count, shard, true);
        return;
    }
    int64_t G = mprt_group_size((MprtGroup)group), lo;
    int64_t n = mprt_zero_span(count, shard, mprt_group_rank((MprtGroup)group), &lo);
    cudaStream_t cs = begin();
    float *part = slot + G * shard;
    bool w = mprt__wire();
    nccl_reduce_scatter(slot, part, shard, G, comm_of(group), cs, w);
    mprt_cu_pack_add(out, part, n, cs);
    end(MPRT_REDUCESCATTER, group, esize(w) * G * shard, true);
}

/* In place when count == G·shard (this rank's part is at G's slot already); otherwise through
 * a padded copy, of which only the `count` real floats come back. */
void mprt_cu_zero_allgather(int group, float *full, int64_t count, int64_t shard) {
    if (staged()) {
        float *h = host(count);
        to_host(h, full, count);
        mprt_zero_allgather((MprtGroup)group, h, count, shard);
        to_device(full, h, count);
        return;
    }
    int64_t G = mprt_group_size((MprtGroup)group), lo;
    int r = mprt_group_rank((MprtGroup)group);
    int64_t n = mprt_zero_span(count, shard, r, &lo);
    cudaStream_t cs = begin();
    float *buf = full;
    if (count != G * shard) {
        buf = scratch(0, G * shard);
        if (n > 0)
            CU_CHECK(cudaMemcpyAsync(buf + shard * r, full + lo, (size_t)n * sizeof(float),
                                     cudaMemcpyDeviceToDevice, cs));
    }
    bool w = mprt__wire(); /* bf16: this rank's part is packed before anything is received */
    nccl_allgather(buf + shard * r, buf, shard, G, comm_of(group), cs, w);
    if (buf != full)
        CU_CHECK(cudaMemcpyAsync(full, buf, (size_t)count * sizeof(float), cudaMemcpyDeviceToDevice,
                                 cs));
    end(MPRT_ALLGATHER, group, esize(w) * G * shard, false);
}

/* ZeRO under bf16 (zero_bf16.c): the working copy's 16-bit values, `count` of them split over
 * the group in parts of `shard`, every part to every rank: NCCL on ncclBfloat16 (in place when
 * count == G·shard, else through a padded copy in the wire's staging buffer), or host-staged
 * through the CPU's mprt_zero_allgather_bf16. Counted as the padded tensor at 2 bytes a value,
 * the plan's figure, whether or not the wire is on (the values are bf16 either way). */
void mprt_cu_zero_allgather_bf16(int group, uint16_t *full, int64_t count, int64_t shard) {
    if (staged()) {
        uint16_t *h = (uint16_t *)host((count + 1) / 2);
        mprt_cu_download(h, full, (size_t)count * sizeof(uint16_t));
        mprt_zero_allgather_bf16((MprtGroup)group, h, count, shard);
        mprt_cu_upload(full, h, (size_t)count * sizeof(uint16_t));
        return;
    }
    int64_t G = mprt_group_size((MprtGroup)group), lo;
    int r = mprt_group_rank((MprtGroup)group);
    int64_t n = mprt_zero_span(count, shard, r, &lo);
    cudaStream_t cs = begin();
    uint16_t *buf = full;
    if (count != G * shard) {
        buf = wire_buf(0, G * shard);
        if (n > 0)
            CU_CHECK(cudaMemcpyAsync(buf + shard * r, full + lo, (size_t)n * sizeof(uint16_t),
                                     cudaMemcpyDeviceToDevice, cs));
    }
    NCCL_CHECK(
        ncclAllGather(buf + shard * r, buf, (size_t)shard, ncclBfloat16, comm_of(group), cs));
    if (buf != full)
        CU_CHECK(cudaMemcpyAsync(full, buf, (size_t)count * sizeof(uint16_t),
                                 cudaMemcpyDeviceToDevice, cs));
    end(MPRT_ALLGATHER, group, 2 * G * shard, false);
}

/* Grouped send/recv of G equal blocks of `blk` elements of `esz` bytes (type t): block r of
 * send to rank r, block r of recv from rank r. */
static void exchange_as(ncclComm_t c, const void *send, void *recv, int64_t G, int64_t blk,
                        ncclDataType_t t, size_t esz, cudaStream_t cs) {
    NCCL_CHECK(ncclGroupStart());
    for (int64_t r = 0; r < G; r++) {
        size_t at = (size_t)(r * blk) * esz;
        NCCL_CHECK(ncclSend((const char *)send + at, (size_t)blk, t, (int)r, c, cs));
        NCCL_CHECK(ncclRecv((char *)recv + at, (size_t)blk, t, (int)r, c, cs));
    }
    NCCL_CHECK(ncclGroupEnd());
}

/* The same on f32 blocks, bf16 on the wire when w (packed, exchanged, unpacked). */
static void exchange(ncclComm_t c, const float *send, float *recv, int64_t G, int64_t blk,
                     cudaStream_t cs, bool w) {
    if (!w) {
        exchange_as(c, send, recv, G, blk, ncclFloat, sizeof(float), cs);
        return;
    }
    uint16_t *in = wire_pack(0, send, G * blk, cs), *out = wire_buf(1, G * blk);
    exchange_as(c, in, out, G, blk, ncclBfloat16, sizeof(uint16_t), cs);
    mprt_cu_bf16_unpack_on(recv, out, G * blk, cs);
}

/* B layout [A][G][Bk] with A = (batch/G)·mid, Bk = (feat/G)·inner; F layout [G][A][Bk]. */
static void alltoall(int group, const float *in, float *out, int64_t batch, int64_t mid,
                     int64_t feat, int64_t inner, bool b2f) {
    int64_t G = mprt_group_size((MprtGroup)group), total = batch * mid * feat * inner;
    if (staged()) {
        float *h = host(2 * total / G);
        to_host(h, in, total / G);
        if (b2f)
            mprt_alltoall_b2f((MprtGroup)group, h, h + total / G, batch, mid, feat, inner);
        else
            mprt_alltoall_f2b((MprtGroup)group, h, h + total / G, batch, mid, feat, inner);
        to_device(out, h + total / G, total / G);
        return;
    }
    int64_t A = batch / G * mid, Bk = feat / G * inner, blk = A * Bk;
    cudaStream_t cs = begin();
    bool w = mprt__wire();
    float *s = scratch(1, G * blk);
    if (b2f) {
        mprt_cu_pack_transpose_mid(s, in, A, G, Bk, cs);
        exchange(comm_of(group), s, out, G, blk, cs, w);
    } else {
        exchange(comm_of(group), in, s, G, blk, cs, w);
        mprt_cu_pack_untranspose_mid(out, s, A, G, Bk, cs);
    }
    end(MPRT_ALLTOALL, group, total * esize(w), false);
}

void mprt_cu_alltoall_b2f(int group, const float *in, float *out, int64_t batch, int64_t mid,
                          int64_t feat, int64_t inner) {
    alltoall(group, in, out, batch, mid, feat, inner, true);
}

void mprt_cu_alltoall_f2b(int group, const float *in, float *out, int64_t batch, int64_t mid,
                          int64_t feat, int64_t inner) {
    alltoall(group, in, out, batch, mid, feat, inner, false);
}

void mprt_cu_broadcast(int group, float *buf, int64_t count, int root) {
    if (staged()) {
        float *h = host(count);
        to_host(h, buf, count);
        mprt_broadcast((MprtGroup)group, h, count, root);
        to_device(buf, h, count);
        return;
    }
    cudaStream_t cs = begin();
    NCCL_CHECK(ncclBroadcast(buf, buf, (size_t)count, ncclFloat, root, comm_of(group), cs));
    end(MPRT_BROADCAST, group, count * 4, false);
}

/* ─────────────────────────────── pipeline point-to-point ─────────────────────────────── */

static int peer(int dir) {
    int s = mprt_group_rank(MPRT_PIPE) + dir;
    if (dir != 1 && dir != -1)
        mprt_cu_fail("mprt_cu_send/recv", "direction must be +1 or -1", __FILE__, __LINE__);
    if (s < 0 || s >= mprt_group_size(MPRT_PIPE))
        mprt_cu_fail("mprt_cu_send/recv", "no pipeline stage in that direction", __FILE__,
                     __LINE__);
    return s;
}

static void sendrecv_staged(int send_dir, const float *sendbuf, int64_t send_count, int recv_dir,
                            float *recvbuf, int64_t recv_count) {
    float *h = host(send_count + recv_count);
    MprtReq *req = NULL;
    if (send_count) {
        to_host(h, sendbuf, send_count);
        req = mprt_isend(send_dir, h, send_count, 0);
    }
    if (recv_count) mprt_recv(recv_dir, h + send_count, recv_count, 0);
    if (req) mprt_wait(req);
    if (recv_count) to_device(recvbuf, h + send_count, recv_count);
}

void mprt_cu_sendrecv(int send_dir, const float *sendbuf, int64_t send_count, int recv_dir,
                      float *recvbuf, int64_t recv_count) {
    if (send_count <= 0 && recv_count <= 0) return;
    if (staged()) {
        sendrecv_staged(send_dir, sendbuf, send_count, recv_dir, recvbuf, recv_count);
        return;
    }
    ncclComm_t c = comm_of(MPRT_PIPE);
    cudaStream_t cs = begin();
    bool w = mprt__wire(); /* bf16: packed into wire buffer 0, received into 1, unpacked */
    const void *sb = sendbuf;
    void *rb = recvbuf;
    if (w && send_count > 0) sb = wire_pack(0, sendbuf, send_count, cs);
    if (w && recv_count > 0) rb = wire_buf(1, recv_count);
    ncclDataType_t t = w ? ncclBfloat16 : ncclFloat;
    NCCL_CHECK(ncclGroupStart());
    if (send_count > 0) NCCL_CHECK(ncclSend(sb, (size_t)send_count, t, peer(send_dir), c, cs));
    if (recv_count > 0) NCCL_CHECK(ncclRecv(rb, (size_t)recv_count, t, peer(recv_dir), c, cs));
    NCCL_CHECK(ncclGroupEnd());
    if (w && recv_count > 0) mprt_cu_bf16_unpack_on(recvbuf, rb, recv_count, cs);
    end(MPRT_SENDRECV, MPRT_PIPE, send_count > 0 ? send_count * esize(w) : 0, false);
}

void mprt_cu_send(int dir, const float *buf, int64_t count) {
    mprt_cu_sendrecv(dir, buf, count, 0, NULL, 0);
}

void mprt_cu_recv(int dir, float *buf, int64_t count) {
    mprt_cu_sendrecv(0, NULL, 0, dir, buf, count);
}

/* ─────────────────────────────── host-staged pipeline transfers ─────────────────────────────── */

struct MprtCuReq {
    MprtReq *req;
    void *host; /* owned until the wait: the MPI send reads it */
};

/* `count` elements of `esz` bytes (4: f32, 2: bf16) downloaded into a host copy the send owns,
 * sent by mprt_isend or mprt_isend_bf16. */
static MprtCuReq *isend_staged(int dir, const void *buf, int64_t count, size_t esz, int tag) {
    MprtCuReq *r = malloc(sizeof *r);
    void *h = malloc((size_t)(count > 0 ? count : 1) * esz);
    if (!r || !h)
        mprt_fatal("out of memory staging a pipeline send of %lld values", (long long)count);
    mprt_cu_download(h, buf, (size_t)count * esz);
    r->host = h;
    r->req = esz == 2 ? mprt_isend_bf16(dir, h, count, tag) : mprt_isend(dir, h, count, tag);
    return r;
}

MprtCuReq *mprt_cu_isend_staged(int dir, const float *buf, int64_t count, int tag) {
    return isend_staged(dir, buf, count, sizeof(float), tag);
}
MprtCuReq *mprt_cu_isend_staged_bf16(int dir, const uint16_t *buf, int64_t count, int tag) {
    return isend_staged(dir, buf, count, sizeof(uint16_t), tag);
}

void mprt_cu_recv_staged(int dir, float *buf, int64_t count, int tag) {
    float *h = host(count);
    mprt_recv(dir, h, count, tag);
    to_device(buf, h, count);
}

void mprt_cu_recv_bf16(int dir, uint16_t *buf, int64_t count, int tag) {
    uint16_t *h = mprt_cu__host(2 * count);
    mprt_recv_bf16(dir, h, count, tag);
    mprt_cu_upload(buf, h, (size_t)count * sizeof *h);
}

void mprt_cu_wait_staged(MprtCuReq *r) {
    if (!r) return;
    mprt_wait(r->req);
    free(r->host);
    free(r);
}
