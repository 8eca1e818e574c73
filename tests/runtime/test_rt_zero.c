/*
 * test_rt_zero.c: ZeRO's host-side arithmetic, which both trainers and the CUDA collectives'
 * padding rely on (runtime/mprt.h mprt_zero_span, runtime/mprt_trainer.h
 * mprt_zero_shard_floats; docs/runtime.md and docs/cuda.md, "ZeRO"). No MPI: pure functions.
 *
 * For every count up to 70 and every group size up to 9, with the planner's shard
 * ceil(count / G) and with a spare part of padding: the G parts are disjoint, in rank order,
 * cover [0, count) exactly, none is longer than shard, and a part is empty only after the
 * tensor's end. Then a two-stage table's shard arena sizes.
 */
#include "mprt_trainer.h"
#include "rt_check.h"

/* The parts of one split tile [0, count) in rank order. */
static void check_split(int64_t count, int64_t shard, int G) {
    int64_t next = 0;
    for (int r = 0; r < G; r++) {
        int64_t lo = -1, n = mprt_zero_span(count, shard, r, &lo);
        CHECK(n >= 0 && n <= shard, "count %lld shard %lld rank %d: n = %lld", (long long)count,
              (long long)shard, r, (long long)n);
        CHECK(lo == next, "count %lld shard %lld rank %d: starts at %lld, expected %lld",
              (long long)count, (long long)shard, r, (long long)lo, (long long)next);
        CHECK(n == shard || lo + n == count, "count %lld shard %lld rank %d: short part inside",
              (long long)count, (long long)shard, r);
        next = lo + n;
    }
    CHECK(next == count, "count %lld shard %lld G %d: parts end at %lld", (long long)count,
          (long long)shard, G, (long long)next);
}

/* Stage 0 holds two layers (parts of 5 and 3 floats), stage 1 one layer kept whole (7). */
static void check_shard_floats(void) {
    static const MprtZeroPart parts[] = {
        {0, MPRT_DATA, true, 0, 10, 5, 0},
        {0, MPRT_DATA, true, 10, 5, 3, 5},
        {1, MPRT_STAGE, false, 0, 7, 7, 0},
    };
    static const int64_t stage_floats[2] = {15, 7};
    MprtZero z = {2, parts, 3, stage_floats, false};
    CHECK(mprt_zero_shard_floats(&z, 0) == 8, "stage 0: %lld",
          (long long)mprt_zero_shard_floats(&z, 0));
    CHECK(mprt_zero_shard_floats(&z, 1) == 7, "stage 1: %lld",
          (long long)mprt_zero_shard_floats(&z, 1));
    CHECK(mprt_zero_shard_floats(&z, 2) == 0, "no stage 2: %lld",
          (long long)mprt_zero_shard_floats(&z, 2));
}

int main(void) {
    for (int64_t count = 1; count <= 70; count++)
        for (int G = 1; G <= 9; G++) {
            int64_t shard = (count + G - 1) / G;
            check_split(count, shard, G);
            check_split(count, shard + 1, G);
        }
    check_shard_floats();
    if (failures == 0) printf("test_rt_zero: ok\n");
    return failures != 0;
}
