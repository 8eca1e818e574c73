/*
 * test_rt_zero.c: ZeRO's host-side arithmetic, which both trainers and the CUDA collectives'
 * padding rely on (runtime/mprt.h mprt_zero_span, runtime/mprt_trainer.h
 * mprt_zero_shard_floats; docs/runtime.md and docs/cuda.md, "ZeRO"). No MPI: pure functions.
 *
 * For every count up to 70 and every group size up to 9, with the planner's shard
 * ceil(count / G) and with a spare part of padding: the G parts are disjoint, in rank order,
 * cover [0, count) exactly, none is longer than shard, and a part is empty only after the
 * tensor's end. Then a two-stage table's shard arena sizes. Then which whole-weights copies
 * mprt_zero_weights / mprt_zero_weights_done make under bf16's sharded master weights (one
 * stage, parts kept whole, so no collective runs): the host's (gathered from the parts, put
 * back into them) for a model without device copies, and for one with copies while no device
 * runtime registered its pair (the C bf16 trainer's: its copies are host memory); the
 * registered pair's (mprt_zero_master_device) for a model with copies, until unregistered.
 * Then ZeRO-3 (trainer_zero3.c) on parts kept whole: no gathered buffer, a layer read in place
 * at its soff (f32: mprt_zero3_param / mprt_zero3_at; bf16: mprt_bf16_layer through the window
 * and mprt_zero3_param16), and under bf16 the working parts rounded from the master parts
 * (mprt_zero_master_params, mprt_zero_params_init) at the parts' offsets.
 */
#include <stdlib.h>
#include <string.h>

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

/* A stand-in for a device runtime's pair: counts its calls, hands out its own buffer. */
static int dev_calls[2];
static float dev_whole[16];
static float *dev_weights(const MprtModel *m, float *arena, bool gather) {
    (void)m, (void)arena, (void)gather;
    dev_calls[0]++;
    return dev_whole;
}
static void dev_done(const MprtModel *m, float *whole, float *arena, bool put) {
    (void)m, (void)arena;
    dev_calls[1] += put && whole == dev_whole ? 1 : 100;
}
static void copy(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }

/* One stage of two layers whose parts are whole (synced false: no collective): the master
 * parts are the arena itself, in part order. */
static void check_master_copies(void) {
    static const MprtZeroPart parts[] = {
        {0, MPRT_DATA, false, 0, 4, 4, 2},
        {0, MPRT_DATA, false, 4, 2, 2, 0},
    };
    static const int64_t stage_floats[1] = {6};
    MprtZero z = {1, parts, 2, stage_floats, true};
    MprtModel host = {.zero = &z}, dev = {.zero = &z, .download = copy, .upload = copy};
    float mst[6] = {4, 5, 0, 1, 2, 3};
    for (int with = 0; with < 2; with++) { /* a model without copies, one with (none registered) */
        const MprtModel *m = with ? &dev : &host;
        float *w = mprt_zero_weights(m, mst, true);
        CHECK(w != mst && w[0] == 0 && w[3] == 3 && w[4] == 4 && w[5] == 5,
              "model %d: whole copy %g %g %g", with, (double)w[0], (double)w[3], (double)w[4]);
        w[0] = 10, w[5] = 15;
        mprt_zero_weights_done(m, w, mst, true);
        CHECK(mst[2] == 10 && mst[1] == 15, "model %d: put back %g %g", with, (double)mst[2],
              (double)mst[1]);
        mst[2] = 0, mst[1] = 5;
    }
    static const MprtZeroDevice pair = {dev_weights, dev_done};
    mprt_zero_master_device(&pair);
    float *w = mprt_zero_weights(&dev, mst, true);
    mprt_zero_weights_done(&dev, w, mst, true);
    CHECK(w == dev_whole && dev_calls[0] == 1 && dev_calls[1] == 1,
          "registered: the pair was not used (%d, %d)", dev_calls[0], dev_calls[1]);
    w = mprt_zero_weights(&host, mst, true); /* no copies: the host's, even now */
    CHECK(w != dev_whole && w[4] == 4, "registered, host model: not the host's copy");
    mprt_zero_weights_done(&host, w, mst, false);
    mprt_zero_master_device(NULL);
    w = mprt_zero_weights(&dev, mst, false);
    CHECK(w != dev_whole && dev_calls[0] == 1, "unregistered: the pair was still used");
    mprt_zero_weights_done(&dev, w, mst, false);
}

/* mprt_zero_params_init: the parts and the working copy of the weights mprt_params_init draws
 * whole (two tensors, the second's part first in the master arena). */
static void check_params_init(void) {
    static const MprtZeroPart parts[] = {
        {0, MPRT_DATA, false, 0, 4, 4, 2},
        {0, MPRT_DATA, false, 4, 2, 2, 0},
    };
    static const int64_t stage_floats[1] = {6};
    static const MprtParam params[] = {
        {"w", 0, 1, {4}, 0, 4, 1, 4, 1, 1, MPRT_INIT_UNIFORM, -1.0f, 1.0f},
        {"b", 0, 1, {2}, 4, 2, 1, 2, 1, 1, MPRT_INIT_UNIFORM, -1.0f, 1.0f},
    };
    MprtZero z = {1, parts, 2, stage_floats, true};
    MprtModel whole = {.params = params, .nparams = 2}, m = whole;
    m.zero = &z;
    float ref[6], mst[6] = {0};
    uint16_t prm[6] = {0}, want[6];
    mprt_params_init(&whole, ref, 7);
    mprt_bf16_pack(want, ref, 6);
    mprt_zero_master(mst, prm);
    mprt_zero_params_init(&m, mst, 7);
    mprt_zero_master(NULL, NULL);
    CHECK(ref[0] != 0 && ref[0] != ref[1], "params_init drew %g %g", (double)ref[0],
          (double)ref[1]);
    CHECK(memcmp(mst + 2, ref, 4 * sizeof(float)) == 0 &&
              memcmp(mst, ref + 4, 2 * sizeof(float)) == 0,
          "master parts %g %g, want %g %g", (double)mst[2], (double)mst[0], (double)ref[0],
          (double)ref[4]);
    CHECK(memcmp(prm, want, sizeof want) == 0, "working copy not the rounded whole weights");
}

/* ZeRO-3 with two layers kept whole (no collective): layer 0 (4 floats at offset 0 of the
 * whole arena) at soff 2 of the parts, layer 1 (2 at offset 4) at soff 0. */
static const MprtZeroPart z3_parts[] = {
    {0, MPRT_DATA, false, 0, 4, 4, 2},
    {0, MPRT_DATA, false, 4, 2, 2, 0},
};
static const int64_t z3_floats[1] = {6};

static void check_zero3_f32(void) {
    MprtZero z = {3, z3_parts, 2, z3_floats, true};
    float prm[6] = {10, 11, 20, 21, 22, 23};
    mprt_mem_reset();
    mprt_zero3_setup(&z, prm);
    CHECK(mprt_zero3_buf_floats(&z, 0) == 0 && mprt_mem_allocated(MPRT_MEM_ZERO_BUF) == 0,
          "a buffer for layers without synchronisation");
    mprt_zero3_gather(0);
    CHECK(mprt_zero3_param(0) == prm + 2 && mprt_zero3_param(3) == prm + 5,
          "layer 0's weights not read at its part");
    CHECK(mprt_zero3_at(prm + 4) == 2, "offset of layer 0's third weight %lld",
          (long long)mprt_zero3_at(prm + 4));
    mprt_zero3_gather(1);
    CHECK(*mprt_zero3_param(5) == 11 && mprt_zero3_at(prm) == 4, "layer 1 not at soff 0");
    mprt_zero3_teardown();
}

static void check_zero3_bf16(void) {
    MprtZero z = {3, z3_parts, 2, z3_floats, true};
    float mst[6] = {1.001f, -2.003f, 3.007f, 4.011f, 5.013f, -6.017f}, wl[4];
    uint16_t prm[6] = {0}, want[6];
    mprt_bf16_pack(want, mst, 6);
    mprt_zero_master_params(&z, mst, prm, true); /* the parts rounded in place, nothing gathered */
    CHECK(memcmp(prm, want, sizeof want) == 0, "working parts not bf16(master parts)");
    mprt_bf16_weights(NULL, prm, 6, wl, 4);
    mprt_zero3_setup_bf16(&z, prm);
    mprt_zero3_gather(0); /* layer 0: whole arena offsets 0..3 are prm[2..5] */
    float *got = mprt_bf16_layer(0, 4);
    CHECK(got == wl && got[0] == mprt_bf16_round1(mst[2]) && got[3] == mprt_bf16_round1(mst[5]),
          "staged layer 0: %g .. %g", (double)got[0], (double)got[3]);
    CHECK(mprt_zero3_param16(1) == prm + 3, "16-bit weight at offset 1 not prm[3]");
    mprt_zero3_gather(1);
    got = mprt_bf16_layer(4, 2);
    CHECK(got[1] == mprt_bf16_round1(mst[1]), "staged layer 1: %g", (double)got[1]);
    mprt_zero3_teardown();
    mprt_bf16_weights(NULL, NULL, 0, NULL, 0);
    /* a put of whole master weights rounds the working parts too (init, a load) */
    static const MprtParam params[] = {
        {"w", 0, 1, {4}, 0, 4, 1, 4, 1, 1, MPRT_INIT_UNIFORM, -1.0f, 1.0f},
        {"b", 0, 1, {2}, 4, 2, 1, 2, 1, 1, MPRT_INIT_UNIFORM, -1.0f, 1.0f},
    };
    MprtModel m = {.params = params, .nparams = 2, .zero = &z};
    mprt_zero_master(mst, prm);
    mprt_zero_params_init(&m, mst, 7);
    mprt_zero_master(NULL, NULL);
    mprt_bf16_pack(want, mst, 6);
    CHECK(memcmp(prm, want, sizeof want) == 0, "init: working parts not bf16(master parts)");
}

int main(void) {
    for (int64_t count = 1; count <= 70; count++)
        for (int G = 1; G <= 9; G++) {
            int64_t shard = (count + G - 1) / G;
            check_split(count, shard, G);
            check_split(count, shard + 1, G);
        }
    check_shard_floats();
    check_master_copies();
    check_params_init();
    check_zero3_f32();
    check_zero3_bf16();
    if (failures == 0) printf("test_rt_zero: ok\n");
    return failures != 0;
}
