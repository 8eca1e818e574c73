/*
 * comm_zero.c: ZeRO-2's reduce-scatters overlapped with the backward (mprt.h,
 * mprt_zero_rs_start; docs/runtime.md, "ZeRO"): one non-blocking MPI_Ireduce_scatter_block in
 * flight per slot, tested between layers and completed before the slot is reused, counted at
 * completion as the padded tensor the planner prices.
 */
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"
#include "mprt.h"

/* ZeRO-2's reduce-scatters in flight, one per slot (mprt_zero_rs_start). */
static struct {
    MPI_Request req[MPRT_ZERO_SLOTS];
    MprtGroup group[MPRT_ZERO_SLOTS];
    int64_t bytes[MPRT_ZERO_SLOTS]; /* -1: none in flight */
    double t0[MPRT_ZERO_SLOTS];
} ZR = {.bytes = {-1, -1}};

static int zero_slot(int slot, bool busy) {
    if (slot < 0 || slot >= MPRT_ZERO_SLOTS || (ZR.bytes[slot] >= 0) != busy)
        mprt_fatal("ZeRO reduce-scatter slot %d: %s", slot, busy ? "none in flight" : "busy");
    return slot;
}

static void zero_rs_done(int slot) {
    mprt_stats_add(MPRT_REDUCESCATTER, ZR.group[slot], ZR.bytes[slot], MPI_Wtime() - ZR.t0[slot]);
    ZR.bytes[slot] = -1;
}

void mprt_zero_rs_start(int slot, MprtGroup g, const float *full, float *part, int64_t shard) {
    zero_slot(slot, false);
    int G = mprt_group_size(g);
    if (shard < 0 || (int64_t)G * shard > INT_MAX)
        mprt_fatal("MPI_Ireduce_scatter_block: bad ZeRO part of %lld floats over %d ranks",
                   (long long)shard, G);
    ZR.group[slot] = g, ZR.t0[slot] = MPI_Wtime(), ZR.req[slot] = MPI_REQUEST_NULL;
    ZR.bytes[slot] = mprt_coll_bytes(MPRT_REDUCESCATTER, G, 4 * shard * G);
    if (mprt__wire()) { /* bf16 on the wire (comm_bf16.c): blocking, 2 bytes an element */
        int *c = malloc(2 * (size_t)G * sizeof *c);
        if (!c) mprt_fatal("out of memory");
        for (int r = 0; r < G; r++)
            c[r] = (int)shard, c[G + r] = (int)(shard * r);
        mprt__wire_zero_reduce_scatter(g, full, part, shard * G, c, false);
        free(c);
        ZR.bytes[slot] = mprt_coll_bytes(MPRT_REDUCESCATTER, G, 2 * shard * G);
        return;
    }
    if (mprt__grad_sync_blocking()) {
        mprt__check(
            MPI_Reduce_scatter_block(full, part, (int)shard, MPI_FLOAT, MPI_SUM, mprt__comm(g)),
            "MPI_Reduce_scatter_block", g);
        return;
    }
    mprt__check(MPI_Ireduce_scatter_block(full, part, (int)shard, MPI_FLOAT, MPI_SUM, mprt__comm(g),
                                          &ZR.req[slot]),
                "MPI_Ireduce_scatter_block", g);
}

bool mprt_zero_rs_test(int slot) {
    int done = 0;
    mprt__check(MPI_Test(&ZR.req[zero_slot(slot, true)], &done, MPI_STATUS_IGNORE), "MPI_Test",
                ZR.group[slot]);
    if (done) zero_rs_done(slot);
    return done != 0;
}

void mprt_zero_rs_wait(int slot) {
    mprt__check(mprt__wait(&ZR.req[zero_slot(slot, true)], "MPI_Ireduce_scatter_block",
                           mprt_group_name(ZR.group[slot])),
                "MPI_Ireduce_scatter_block", ZR.group[slot]);
    zero_rs_done(slot);
}

void mprt_zero_allgather_bf16(MprtGroup g, uint16_t *full, int64_t count, int64_t shard) {
    int G = mprt_group_size(g);
    if (shard < 0 || shard * G < count || (int64_t)G * shard > INT_MAX)
        mprt_fatal("MPI_Allgatherv: bad ZeRO split of %lld bf16 values into %d parts of %lld",
                   (long long)count, G, (long long)shard);
    int *c = malloc(2 * (size_t)G * sizeof *c);
    if (!c) mprt_fatal("out of memory");
    for (int r = 0; r < G; r++) {
        int64_t lo, n = mprt_zero_span(count, shard, r, &lo);
        c[r] = (int)n, c[G + r] = (int)lo;
    }
    double t0 = MPI_Wtime();
    mprt__check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full, c, c + G, MPI_UINT16_T,
                               mprt__comm(g)),
                "MPI_Allgatherv", g);
    mprt_stats_add(MPRT_ALLGATHER, g, mprt_coll_bytes(MPRT_ALLGATHER, G, 2 * shard * G),
                   MPI_Wtime() - t0);
    free(c);
}
