/*
 * comm_bf16.c: the layout changes of a bf16 CUDA trainer's 16-bit activations (docs/cuda.md,
 * "16-bit activations"), the device twins of runtime/comm_layout.c's and comm_bf16.c's _bf16
 * forms: the stored bf16 values move as they are, 2 bytes each.
 *
 * Over NCCL each runs on ncclBfloat16 with comm_nccl.c's ordering and counting (the call opens
 * on the communication stream after the compute stream, and the compute stream waits for it),
 * its permutations the 16-bit forms of comm_pack.cu's, staged in the wire's bf16 buffers. The
 * f32 forms under the bf16 wire pack their (bf16-exact) input, run the same NCCL call on the
 * same bf16 values and unpack: so the two give the same bits and count the same bytes, 2 per
 * element. Host-staged (MPI mode), each calls the CPU's _bf16 form on a pinned copy.
 */
#include "cu_internal.h"
#include "mprt.h"

#include <nccl.h>

/* Pinned host staging of `count` 16-bit values, the first `down` of them downloaded from d. */
static uint16_t *staged_copy(const uint16_t *d, int64_t count, int64_t down) {
    uint16_t *h = mprt_cu__host(2 * count);
    if (down > 0) mprt_cu_download(h, d, (size_t)down * sizeof *h);
    return h;
}

static void upload_h(uint16_t *d, const uint16_t *h, int64_t count) {
    if (count > 0) mprt_cu_upload(d, h, (size_t)count * sizeof *h);
}

void mprt_cu_slice_bf16(const uint16_t *full, uint16_t *local, int64_t outer, int64_t chunk,
                        int64_t inner, int parts, int part) {
    mprt_cu_pack_slice_h(local, full, outer, chunk, inner, parts, part, mprt_cu_stream());
}

void mprt_cu_allgather_bf16(int group, const uint16_t *local, uint16_t *full, int64_t outer,
                            int64_t chunk, int64_t inner) {
    int64_t G = mprt_group_size((MprtGroup)group), n = outer * chunk * inner;
    if (mprt_cu__staged()) {
        uint16_t *h = staged_copy(local, n + G * n, n);
        mprt_allgather_bf16((MprtGroup)group, h, h + n, outer, chunk, inner);
        upload_h(full, h + n, G * n);
        return;
    }
    cudaStream_t cs = mprt_cu__begin();
    uint16_t *dst = outer == 1 ? full : mprt_cu__wire_buf(1, G * n);
    NCCL_CHECK(ncclAllGather(local, dst, (size_t)n, ncclBfloat16, mprt_cu__comm(group), cs));
    if (outer != 1) mprt_cu_pack_permute_h(full, dst, outer, G, chunk * inner, true, cs);
    mprt_cu__end(MPRT_ALLGATHER, group, 2 * G * n);
}

void mprt_cu_reduce_scatter_bf16(int group, const uint16_t *full, uint16_t *local, int64_t outer,
                                 int64_t chunk, int64_t inner) {
    int64_t G = mprt_group_size((MprtGroup)group), n = outer * chunk * inner;
    if (mprt_cu__staged()) {
        uint16_t *h = staged_copy(full, G * n + n, G * n);
        mprt_reduce_scatter_bf16((MprtGroup)group, h, h + G * n, outer, chunk, inner);
        upload_h(local, h + G * n, n);
        return;
    }
    cudaStream_t cs = mprt_cu__begin();
    const uint16_t *src = full;
    if (outer != 1) {
        uint16_t *s = mprt_cu__wire_buf(0, G * n);
        mprt_cu_pack_permute_h(s, full, outer, G, chunk * inner, false, cs);
        src = s;
    }
    NCCL_CHECK(
        ncclReduceScatter(src, local, (size_t)n, ncclBfloat16, ncclSum, mprt_cu__comm(group), cs));
    mprt_cu__end(MPRT_REDUCESCATTER, group, 2 * G * n);
}

/* Block r of send [G][blk] to rank r, block r of recv from rank r: one NCCL group. */
static void exchange_h(struct ncclComm *c, const uint16_t *send, uint16_t *recv, int64_t G,
                       int64_t blk, cudaStream_t cs) {
    NCCL_CHECK(ncclGroupStart());
    for (int64_t r = 0; r < G; r++) {
        NCCL_CHECK(ncclSend(send + r * blk, (size_t)blk, ncclBfloat16, (int)r, c, cs));
        NCCL_CHECK(ncclRecv(recv + r * blk, (size_t)blk, ncclBfloat16, (int)r, c, cs));
    }
    NCCL_CHECK(ncclGroupEnd());
}

/* comm_nccl.c's all-to-all on 16-bit values: B layout [A][G][Bk] with A = (batch/G)·mid,
 * Bk = (feat/G)·inner; F layout [G][A][Bk]. */
static void alltoall_h(int group, const uint16_t *in, uint16_t *out, int64_t batch, int64_t mid,
                       int64_t feat, int64_t inner, bool b2f) {
    int64_t G = mprt_group_size((MprtGroup)group), n = batch * mid * feat * inner / G;
    if (mprt_cu__staged()) {
        uint16_t *h = staged_copy(in, 2 * n, n);
        if (b2f)
            mprt_alltoall_b2f_bf16((MprtGroup)group, h, h + n, batch, mid, feat, inner);
        else
            mprt_alltoall_f2b_bf16((MprtGroup)group, h, h + n, batch, mid, feat, inner);
        upload_h(out, h + n, n);
        return;
    }
    int64_t A = batch / G * mid, Bk = feat / G * inner, blk = A * Bk;
    cudaStream_t cs = mprt_cu__begin();
    uint16_t *s = mprt_cu__wire_buf(0, G * blk);
    if (b2f) {
        mprt_cu_pack_permute_h(s, in, A, G, Bk, false, cs);
        exchange_h(mprt_cu__comm(group), s, out, G, blk, cs);
    } else {
        exchange_h(mprt_cu__comm(group), in, s, G, blk, cs);
        mprt_cu_pack_permute_h(out, s, A, G, Bk, true, cs);
    }
    mprt_cu__end(MPRT_ALLTOALL, group, 2 * G * n);
}

void mprt_cu_alltoall_b2f_bf16(int group, const uint16_t *in, uint16_t *out, int64_t batch,
                               int64_t mid, int64_t feat, int64_t inner) {
    alltoall_h(group, in, out, batch, mid, feat, inner, true);
}

void mprt_cu_alltoall_f2b_bf16(int group, const uint16_t *in, uint16_t *out, int64_t batch,
                               int64_t mid, int64_t feat, int64_t inner) {
    alltoall_h(group, in, out, batch, mid, feat, inner, false);
}
