/*
 * comm_bf16.c: collectives on bf16 data (docs/runtime.md, "bf16"), and the bf16 wire under
 * which the f32 collectives of comm_mpi.c move their data as bf16.
 *
 * MPI has no bf16 type, so bf16 travels as MPI_UINT16_T and sums with a user-defined operation
 * (commutative) that widens both operands to f32, adds, and rounds the sum back to bf16 (round
 * to nearest even): every partial sum MPI forms is a bf16 value, as on an accelerator whose
 * collectives reduce in bf16. A bf16 call counts 2 bytes per element in the byte rule, which
 * is what the planner prices for a bf16 plan.
 *
 * The wire (mprt_set_wire_bf16): a bf16 trainer keeps its tensors in f32 buffers and calls the
 * same collectives as an f32 one; with the wire on, each plan collective packs its input to
 * bf16, moves and reduces bf16, and unpacks the result, so what lands in the f32 buffer is
 * bf16-exact and the counted bytes are the bf16 ones. A group of 1 rounds the same way (the
 * result of a collective does not depend on the group size being 1). Traffic that is not
 * counted (mprt_stats_pause: checkpoints, validation) stays f32, so checkpoints hold the f32
 * master weights exactly.
 */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { SLOTS = 3 };

static struct {
    bool wire, have_op;
    MPI_Op sum;
    uint16_t *buf[SLOTS];
    size_t cap[SLOTS]; /* elements */
} B;

/* inout[i] = bf16(f32(in[i]) + f32(inout[i])): MPI's user operation on MPI_UINT16_T. */
static void bf16_sum(void *in, void *inout, int *len, MPI_Datatype *dt) {
    const uint16_t *a = in;
    uint16_t *b = inout;
    (void)dt;
    for (int i = 0; i < *len; i++)
        b[i] = mprt_bf16_from_f32(mprt_f32_from_bf16(a[i]) + mprt_f32_from_bf16(b[i]));
}

MPI_Op mprt__bf16_sum_op(void) {
    if (!B.have_op) {
        mprt__check(MPI_Op_create(bf16_sum, 1, &B.sum), "MPI_Op_create", MPRT_WORLD);
        B.have_op = true;
    }
    return B.sum;
}

uint16_t *mprt__bf16_buf(int slot, int64_t n) {
    if (n < 1) n = 1;
    if ((size_t)n > B.cap[slot]) {
        uint16_t *p = realloc(B.buf[slot], (size_t)n * sizeof(uint16_t));
        if (!p) mprt_fatal("out of memory for a %lld-byte bf16 buffer", (long long)n * 2);
        B.buf[slot] = p, B.cap[slot] = (size_t)n;
    }
    return B.buf[slot];
}

void mprt__bf16_finalize(void) {
    int down = 0;
    MPI_Finalized(&down);
    if (B.have_op && !down) MPI_Op_free(&B.sum);
    for (int i = 0; i < SLOTS; i++)
        free(B.buf[i]);
    bool wire = B.wire;
    memset(&B, 0, sizeof B);
    B.wire = wire; /* a setting of the trainer, not a buffer */
}

void mprt_set_wire_bf16(bool on) { B.wire = on; }
bool mprt_wire_bf16(void) { return B.wire; }
bool mprt__wire(void) { return B.wire && !mprt__stats_paused(); }

/* ───────────────────────────── bf16 data ───────────────────────────── */

void mprt_allreduce_bf16(MprtGroup g, uint16_t *buf, int64_t count) {
    int G = mprt_group_size(g), n = mprt__count_int(count, "MPI_Allreduce");
    double t0 = MPI_Wtime();
    if (G > 1) {
        MPI_Request rq;
        mprt__check(MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_UINT16_T, mprt__bf16_sum_op(),
                                   mprt__comm(g), &rq),
                    "MPI_Iallreduce", g);
        mprt__await(&rq, "MPI_Allreduce", g);
    }
    mprt_stats_add(MPRT_ALLREDUCE, g, mprt_coll_bytes(MPRT_ALLREDUCE, G, 2 * count),
                   MPI_Wtime() - t0);
}

void mprt_allgather_bf16(MprtGroup g, const uint16_t *local, uint16_t *full, int64_t outer,
                         int64_t chunk, int64_t inner) {
    int G = mprt_group_size(g);
    int64_t blk = mprt__view_block(outer, chunk, inner, G, "MPI_Allgather");
    double t0 = MPI_Wtime();
    if (G == 1) {
        memmove(full, local, (size_t)blk * sizeof(uint16_t));
    } else {
        uint16_t *dst = outer == 1 ? full : mprt__bf16_buf(2, blk * G);
        MPI_Request rq;
        mprt__check(MPI_Iallgather(local, (int)blk, MPI_UINT16_T, dst, (int)blk, MPI_UINT16_T,
                                   mprt__comm(g), &rq),
                    "MPI_Iallgather", g);
        mprt__await(&rq, "MPI_Allgather", g);
        if (outer > 1)
            mprt__regroup(full, dst, G, outer, (size_t)(chunk * inner) * sizeof(uint16_t), false);
    }
    mprt_stats_add(MPRT_ALLGATHER, g, mprt_coll_bytes(MPRT_ALLGATHER, G, 2 * blk * G),
                   MPI_Wtime() - t0);
}

void mprt_reduce_scatter_bf16(MprtGroup g, const uint16_t *full, uint16_t *local, int64_t outer,
                              int64_t chunk, int64_t inner) {
    int G = mprt_group_size(g);
    int64_t blk = mprt__view_block(outer, chunk, inner, G, "MPI_Reduce_scatter_block");
    double t0 = MPI_Wtime();
    if (G == 1) {
        memmove(local, full, (size_t)blk * sizeof(uint16_t));
    } else {
        const uint16_t *src = full;
        if (outer > 1) {
            uint16_t *tmp = mprt__bf16_buf(2, blk * G);
            mprt__regroup(tmp, full, G, outer, (size_t)(chunk * inner) * sizeof(uint16_t), true);
            src = tmp;
        }
        MPI_Request rq;
        mprt__check(MPI_Ireduce_scatter_block(src, local, (int)blk, MPI_UINT16_T,
                                              mprt__bf16_sum_op(), mprt__comm(g), &rq),
                    "MPI_Ireduce_scatter_block", g);
        mprt__await(&rq, "MPI_Reduce_scatter_block", g);
    }
    mprt_stats_add(MPRT_REDUCESCATTER, g, mprt_coll_bytes(MPRT_REDUCESCATTER, G, 2 * blk * G),
                   MPI_Wtime() - t0);
}

/* ───────────────────────────── the wire: f32 buffers, bf16 traffic ─────────────────────────────
 */

void mprt__wire_allreduce(MprtGroup g, float *buf, int64_t count) {
    uint16_t *h = mprt__bf16_buf(0, count);
    mprt_bf16_pack(h, buf, count);
    mprt_allreduce_bf16(g, h, count);
    mprt_bf16_unpack(buf, h, count);
}

void mprt__wire_allgather(MprtGroup g, const float *local, float *full, int64_t outer,
                          int64_t chunk, int64_t inner) {
    int G = mprt_group_size(g);
    int64_t blk = mprt__view_block(outer, chunk, inner, G, "MPI_Allgather");
    uint16_t *l = mprt__bf16_buf(0, blk), *f = mprt__bf16_buf(1, blk * G);
    mprt_bf16_pack(l, local, blk);
    mprt_allgather_bf16(g, l, f, outer, chunk, inner);
    mprt_bf16_unpack(full, f, blk * G);
}

void mprt__wire_reduce_scatter(MprtGroup g, const float *full, float *local, int64_t outer,
                               int64_t chunk, int64_t inner) {
    int G = mprt_group_size(g);
    int64_t blk = mprt__view_block(outer, chunk, inner, G, "MPI_Reduce_scatter_block");
    uint16_t *f = mprt__bf16_buf(1, blk * G), *l = mprt__bf16_buf(0, blk);
    mprt_bf16_pack(f, full, blk * G);
    mprt_reduce_scatter_bf16(g, f, l, outer, chunk, inner);
    mprt_bf16_unpack(local, l, blk);
}

/* ZeRO's uneven parts (counts c[0..G), displacements c[G..2G)), bf16 on the wire. */
void mprt__wire_zero_reduce_scatter(MprtGroup g, const float *full, float *out, int64_t count,
                                    const int *c, bool add) {
    int G = mprt_group_size(g), me = mprt_group_rank(g);
    uint16_t *f = mprt__bf16_buf(1, count), *o = mprt__bf16_buf(0, c[me]);
    mprt_bf16_pack(f, full, count);
    if (G > 1)
        mprt__check(MPI_Reduce_scatter(f, o, c, MPI_UINT16_T, mprt__bf16_sum_op(), mprt__comm(g)),
                    "MPI_Reduce_scatter", g);
    else
        memcpy(o, f, (size_t)c[0] * sizeof(uint16_t));
    for (int i = 0; i < c[me]; i++)
        out[i] = add ? out[i] + mprt_f32_from_bf16(o[i]) : mprt_f32_from_bf16(o[i]);
}

void mprt__wire_zero_allgather(MprtGroup g, float *full, int64_t count, const int *c) {
    int G = mprt_group_size(g);
    uint16_t *f = mprt__bf16_buf(1, count);
    mprt_bf16_pack(f, full, count);
    if (G > 1)
        mprt__check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, f, c, c + G, MPI_UINT16_T,
                                   mprt__comm(g)),
                    "MPI_Allgatherv", g);
    mprt_bf16_unpack(full, f, count);
}
