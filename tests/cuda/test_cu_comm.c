/*
 * test_cu_comm.c: the collectives of mprt_cuda against the CPU runtime's on the same data.
 *
 *   mpirun -np P test_cu_comm S d t MODE      (MODE: nccl, mpi or auto; P = S·d·t)
 *
 * Every rank fills deterministic per-rank inputs, runs each collective on the GPU (mprt_cu_*)
 * and on the host (mprt_*, counters paused), and compares the results exactly (sums of a
 * few small integers-valued floats are exact in any order; the vocabulary-parallel loss, whose
 * sums of exponentials are not, within 1e-5 relative of the CPU kernels'; its form on 16-bit
 * logits bit for bit the f32 form's on the same values). Then the byte
 * counters: every GPU call must have added exactly mprt_coll_bytes(kind, group size, n) to its
 * (kind, group), and nothing else may have been counted. Then everything again with the bf16 wire
 * on (mprt_set_wire_bf16; docs/cuda.md, "bf16"): the same inputs are bf16 values and their sums are
 * exact in bf16, so the results must equal the f32 references bit for bit while every counted call
 * except the broadcast counts 2 bytes per element; and a sum of values that are not bf16 values
 * must be the sum of their bf16 roundings (the wire rounds what it sends); ZeRO under bf16's
 * master weights (test_zero_master); and the layout changes and pipeline sends of a bf16
 * trainer's 16-bit activations, bit for bit the CPU's _bf16 forms, counted as the f32 forms
 * under the wire (test_layout_bf16, test_pipe_bf16). Prints "test_cu_comm S x
 * d x t MODE: ok" on rank 0.
 *
 * Without a CUDA device it prints "SKIPPED: no CUDA device" and exits 77 (ctest: skipped).
 */
#include "mprt.h"
#include "mprt_cuda.h"
#include "mprt_trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static int64_t expect_bytes[MPRT_COLL__COUNT][MPRT_GROUP__COUNT];
static int64_t expect_calls[MPRT_COLL__COUNT][MPRT_GROUP__COUNT];

/* n_bytes as f32 data; halved while the bf16 wire is on, except for broadcasts (f32 always). */
static void expect(MprtColl k, MprtGroup g, int64_t n_bytes) {
    if (mprt_wire_bf16() && k != MPRT_BROADCAST) n_bytes /= 2;
    expect_bytes[k][g] += mprt_coll_bytes(k, mprt_group_size(g), n_bytes);
    expect_calls[k][g]++;
}

static float *filled(int64_t n, int salt) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    int r = mprt_mesh()->rank;
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)((i * 7 + r * 13 + salt) % 17) - 8.0f;
    return p;
}

static float *to_dev(const float *h, int64_t n) {
    float *d = mprt_cu_malloc((size_t)n * sizeof(float));
    mprt_cu_upload(d, h, (size_t)n * sizeof(float));
    return d;
}

/* `bytes` of device memory d equal the host's ref, byte for byte. */
static void same_bytes(const char *what, MprtGroup g, const void *d, const void *ref,
                       size_t bytes) {
    void *h = malloc(bytes > 0 ? bytes : 1);
    mprt_cu_sync();
    mprt_cu_download(h, d, bytes);
    if (memcmp(h, ref, bytes) != 0) {
        failures++;
        printf("FAIL rank %d: %s on the %s group differs from the CPU runtime\n", mprt_mesh()->rank,
               what, mprt_group_name(g));
    }
    free(h);
}

static void same(const char *what, MprtGroup g, const float *d, const float *ref, int64_t n) {
    same_bytes(what, g, d, ref, (size_t)n * sizeof(float));
}

static void test_group(MprtGroup g) {
    int64_t G = mprt_group_size(g), outer = 2, chunk = 3, inner = 2, n = outer * chunk * inner;
    /* all-reduce, blocking and started/joined */
    float *h = filled(1000, 1), *d = to_dev(h, 1000);
    mprt_stats_pause(), mprt_allreduce(g, h, 1000), mprt_stats_resume();
    mprt_cu_allreduce((int)g, d, 1000);
    expect(MPRT_ALLREDUCE, g, 4000);
    same("allreduce", g, d, h, 1000);
    mprt_stats_pause(), mprt_allreduce(g, h, 1000), mprt_stats_resume();
    mprt_cu_allreduce_start((int)g, d, 1000);
    mprt_cu_comm_join();
    expect(MPRT_ALLREDUCE, g, 4000);
    same("allreduce_start", g, d, h, 1000);
    free(h), mprt_cu_free(d);
    /* all-gather and reduce-scatter of a split middle dimension (outer > 1: repacking) */
    float *loc = filled(n, 2), *full = filled(G * n, 3);
    float *dloc = to_dev(loc, n), *dfull = to_dev(full, G * n);
    mprt_stats_pause(), mprt_allgather(g, loc, full, outer, chunk, inner), mprt_stats_resume();
    mprt_cu_allgather((int)g, dloc, dfull, outer, chunk, inner);
    expect(MPRT_ALLGATHER, g, 4 * G * n);
    same("allgather", g, dfull, full, G * n);
    mprt_stats_pause(), mprt_reduce_scatter(g, full, loc, outer, chunk, inner), mprt_stats_resume();
    mprt_cu_reduce_scatter((int)g, dfull, dloc, outer, chunk, inner);
    expect(MPRT_REDUCESCATTER, g, 4 * G * n);
    same("reduce_scatter", g, dloc, loc, n);
    mprt_slice(full, loc, outer, chunk, inner, (int)G, (int)(G - 1));
    mprt_cu_slice(dfull, dloc, outer, chunk, inner, (int)G, (int)(G - 1));
    same("slice", g, dloc, loc, n);
    free(loc), free(full), mprt_cu_free(dloc), mprt_cu_free(dfull);
    /* all-to-all both ways: batch 2G, mid 3, feat 2G, inner 2 */
    int64_t batch = 2 * G, mid = 3, feat = 2 * G, in2 = 2, part = batch * mid * feat * in2 / G;
    float *a = filled(part, 4), *b = filled(part, 5), *da = to_dev(a, part), *db = to_dev(b, part);
    mprt_stats_pause(), mprt_alltoall_b2f(g, a, b, batch, mid, feat, in2), mprt_stats_resume();
    mprt_cu_alltoall_b2f((int)g, da, db, batch, mid, feat, in2);
    expect(MPRT_ALLTOALL, g, 4 * part * G);
    same("alltoall_b2f", g, db, b, part);
    mprt_stats_pause(), mprt_alltoall_f2b(g, b, a, batch, mid, feat, in2), mprt_stats_resume();
    mprt_cu_alltoall_f2b((int)g, db, da, batch, mid, feat, in2);
    expect(MPRT_ALLTOALL, g, 4 * part * G);
    same("alltoall_f2b", g, da, a, part);
    free(a), free(b), mprt_cu_free(da), mprt_cu_free(db);
    /* broadcast from the last rank */
    float *c = filled(100, 6), *dc = to_dev(c, 100);
    mprt_stats_pause(), mprt_broadcast(g, c, 100, (int)G - 1), mprt_stats_resume();
    mprt_cu_broadcast((int)g, dc, 100, (int)G - 1);
    expect(MPRT_BROADCAST, g, 400);
    same("broadcast", g, dc, c, 100);
    free(c), mprt_cu_free(dc);
}

/* The bf16 all-reduce (ncclBfloat16) against the CPU's bf16 sum: small integers, exact in bf16
 * in any order. Counted as 2 bytes per element. */
static void test_allreduce_bf16(MprtGroup g) {
    int64_t n = 1000;
    float *f = filled(n, 11);
    uint16_t *h = malloc((size_t)n * sizeof *h), *d = mprt_cu_malloc((size_t)n * sizeof *d);
    mprt_bf16_pack(h, f, n);
    mprt_cu_upload(d, h, (size_t)n * sizeof *h);
    mprt_stats_pause(), mprt_allreduce_bf16(g, h, n), mprt_stats_resume();
    mprt_cu_allreduce_bf16((int)g, d, n);
    expect(MPRT_ALLREDUCE, g, 2 * n);
    uint16_t *got = malloc((size_t)n * sizeof *got);
    mprt_cu_sync();
    mprt_cu_download(got, d, (size_t)n * sizeof *got);
    if (memcmp(got, h, (size_t)n * sizeof *h) != 0) {
        failures++;
        printf("FAIL rank %d: allreduce_bf16 on the %s group differs from the CPU runtime\n",
               mprt_mesh()->rank, mprt_group_name(g));
    }
    free(f), free(h), free(got), mprt_cu_free(d);
}

/* The wire rounds: every rank sends the same x = b + t, b = 1 + (i mod 32)/32 and t a few
 * 2^-11 below half a bf16 step (x is not a bf16 value; bf16(x) = b). An all-gather returns
 * bf16(x), and the sum is G·bf16(x) exactly in any order of additions: every partial sum k·b
 * (k <= 4) is a multiple of 1/32 below 8, 8 significant bits, a bf16 value. */
static void test_wire_rounds(MprtGroup g) {
    int64_t n = 1000, G = mprt_group_size(g);
    float *x = malloc((size_t)n * sizeof *x), *ref = malloc((size_t)(G * n) * sizeof *ref);
    for (int64_t i = 0; i < n; i++)
        x[i] = 1.0f + (float)(i % 32) / 32.0f + (float)(i % 7 + 1) / 2048.0f;
    float *d = to_dev(x, n), *dfull = mprt_cu_malloc((size_t)(G * n) * sizeof(float));
    mprt_cu_allgather((int)g, d, dfull, 1, n, 1);
    expect(MPRT_ALLGATHER, g, 4 * G * n);
    for (int64_t i = 0; i < G * n; i++)
        ref[i] = mprt_bf16_round1(x[i % n]);
    same("allgather on the bf16 wire", g, dfull, ref, G * n);
    mprt_cu_allreduce((int)g, d, n);
    expect(MPRT_ALLREDUCE, g, 4 * n);
    for (int64_t i = 0; i < n; i++)
        ref[i] = (float)G * mprt_bf16_round1(x[i]);
    same("allreduce on the bf16 wire", g, d, ref, n);
    free(x), free(ref), mprt_cu_free(d), mprt_cu_free(dfull);
}

/* ZeRO's parts of `count` floats in parts of `shard` (docs/cuda.md, "ZeRO"): reduce-scatter
 * (set, then add) and the in-place all-gather against the CPU's, counted as G·shard floats. */
static void test_zero_split(MprtGroup g, int64_t count, int64_t shard) {
    int64_t G = mprt_group_size(g), lo, n = mprt_zero_part(g, count, shard, &lo);
    float *full = filled(count, 9), *out = filled(shard, 10);
    float *dfull = to_dev(full, count), *dout = to_dev(out, shard);
    for (int add = 0; add < 2; add++) {
        mprt_stats_pause(), mprt_zero_reduce_scatter(g, full, out, count, shard, add);
        mprt_stats_resume();
        mprt_cu_zero_reduce_scatter((int)g, dfull, dout, count, shard, add);
        expect(MPRT_REDUCESCATTER, g, 4 * G * shard);
        same(add ? "zero_reduce_scatter (add)" : "zero_reduce_scatter", g, dout, out, n);
    }
    mprt_stats_pause(), mprt_zero_allgather(g, full, count, shard), mprt_stats_resume();
    mprt_cu_zero_allgather((int)g, dfull, count, shard);
    expect(MPRT_ALLGATHER, g, 4 * G * shard);
    same("zero_allgather", g, dfull, full, count);
    free(full), free(out), mprt_cu_free(dfull), mprt_cu_free(dout);
}

/* Parts that tile the tensor (in place over NCCL), the planner's ceil(count / G) with a short
 * last part, and a spare part of padding so that the padded path runs even at G = 1. */
static void test_zero(MprtGroup g) {
    int64_t G = mprt_group_size(g);
    test_zero_split(g, 4 * G, 4);
    test_zero_split(g, 7 * G + 3, (7 * G + 3 + G - 1) / G);
    test_zero_split(g, 7 * G + 3, (7 * G + 3 + G - 1) / G + 1);
}

/* The maximum all-reduce (the vocabulary-parallel loss's row maxima): exact in any order. */
static void test_allreduce_max(MprtGroup g) {
    float *h = filled(500, 12), *d = to_dev(h, 500);
    mprt_stats_pause(), mprt_allreduce_max(g, h, 500), mprt_stats_resume();
    mprt_cu_allreduce_max((int)g, d, 500);
    expect(MPRT_ALLREDUCE, g, 2000);
    same("allreduce_max", g, d, h, 500);
    free(h), mprt_cu_free(d);
}

/* |got − want| within rtol of |want| (sums in another order), or a failure named `what`. */
static void close_to(const char *what, double got, double want, double rtol) {
    if (got - want > rtol * (want < 0 ? -want : want) + 1e-12 ||
        want - got > rtol * (want < 0 ? -want : want) + 1e-12) {
        failures++;
        printf("FAIL rank %d: %s %.9g, expected %.9g\n", mprt_mesh()->rank, what, got, want);
    }
}

/* The vocabulary-parallel cross-entropy (kernels_vocab.cu) on this tensor rank's classes of
 * rows the whole group shares, against the CPU's mprt_vocab_ce_* on the same slice and the
 * whole-row cross-entropy: the loss, every gradient, three all-reduces of M floats counted. */
static void test_vocab_ce(void) {
    int M = 37, T = mprt_group_size(MPRT_TENSOR), k = mprt_group_rank(MPRT_TENSOR), Vl = 129;
    int64_t V = (int64_t)Vl * T, v0 = (int64_t)k * Vl;
    float *full = malloc(sizeof(float) * (size_t)(M * V)), *loc = malloc(sizeof(float) * M * Vl);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)M), *dlab = mprt_cu_malloc(4 * (size_t)M);
    for (int m = 0; m < M; m++) {
        lab[m] = m == 5 ? -100 : (int32_t)((m * 131 + 7) % V); /* row 5 ignored */
        for (int64_t j = 0; j < V; j++)
            full[m * V + j] = (float)((m * 31 + j * 17) % 23) * 0.37f - 4.0f + (float)(m % 3);
        memcpy(loc + (size_t)m * Vl, full + m * V + v0, sizeof(float) * (size_t)Vl);
    }
    mprt_cu_upload(dlab, lab, 4 * (size_t)M);
    float *dl = to_dev(loc, (int64_t)M * Vl), *st = mprt_cu_falloc(3 * M);
    float *dg = mprt_cu_falloc((int64_t)M * Vl), *hst = calloc(3 * (size_t)M, sizeof(float));
    float *hg = calloc((size_t)M * Vl, sizeof(float)), *got = malloc(sizeof(float) * M * Vl);
    double *dloss = mprt_cu_malloc(sizeof(double)), loss = 0, scale = 1.0 / M;
    mprt_cu_memset0(dloss, sizeof(double));
    mprt_cu_vocab_ce_forward(dloss, dl, dlab, st, M, Vl, v0, V, (float)scale);
    mprt_cu_vocab_ce_backward(dg, dl, dlab, st, M, Vl, v0, V, (float)scale);
    for (int i = 0; i < 3; i++)
        expect(MPRT_ALLREDUCE, MPRT_TENSOR, 4 * (int64_t)M);
    mprt_stats_pause();
    double want = mprt_vocab_ce_forward(loc, lab, hst, M, Vl, v0, V, (float)scale);
    mprt_vocab_ce_backward(hg, loc, lab, hst, M, Vl, v0, V, (float)scale);
    mprt_stats_resume();
    mprt_cu_sync();
    mprt_cu_download(&loss, dloss, sizeof loss);
    mprt_cu_download(got, dg, sizeof(float) * (size_t)M * Vl);
    close_to("vocab_ce loss", loss, want, 1e-5);
    close_to("vocab_ce loss against whole rows", loss,
             mprt_cross_entropy_forward(full, lab, M, (int)V, (float)scale), 1e-5);
    for (int64_t i = 0; i < (int64_t)M * Vl; i++)
        close_to("vocab_ce gradient", got[i], hg[i], 1e-4);
    free(full), free(loc), free(lab), free(hst), free(hg), free(got);
    mprt_cu_free(dlab), mprt_cu_free(dl), mprt_cu_free(st), mprt_cu_free(dg), mprt_cu_free(dloss);
}

/* The same loss on 16-bit logits (a bf16 trainer's activations, kernels_vocab.cu's _bf16 forms):
 * on the same values, the stash and every gradient bit for bit what the f32 entries give (the
 * same all-reduces of the same per-row values), the loss within 1e-12 (its rows are added by
 * atomicAdd in any order), and its three all-reduces of M floats counted. */
static void test_vocab_ce_bf16(void) {
    int M = 37, T = mprt_group_size(MPRT_TENSOR), k = mprt_group_rank(MPRT_TENSOR), Vl = 129;
    int64_t V = (int64_t)Vl * T, v0 = (int64_t)k * Vl, n = (int64_t)M * Vl;
    float *loc = malloc(sizeof(float) * (size_t)n), *hs = malloc(sizeof(float) * 3 * (size_t)M);
    float *hg = malloc(sizeof(float) * (size_t)n);
    uint16_t *h = malloc(2 * (size_t)n), *dh = mprt_cu_malloc(2 * (size_t)n);
    int32_t *lab = malloc(sizeof(int32_t) * (size_t)M), *dlab = mprt_cu_malloc(4 * (size_t)M);
    for (int m = 0; m < M; m++) {
        lab[m] = m == 5 ? -100 : (int32_t)((m * 131 + 7) % V); /* row 5 ignored */
        for (int64_t j = 0; j < Vl; j++)
            loc[m * Vl + j] =
                (float)((m * 31 + (v0 + j) * 17) % 23) * 0.37f - 4.0f + (float)(m % 3);
    }
    mprt_bf16_pack(h, loc, n), mprt_bf16_unpack(loc, h, n); /* bf16 values, both ways */
    mprt_cu_upload(dlab, lab, 4 * (size_t)M), mprt_cu_upload(dh, h, 2 * (size_t)n);
    float *dl = to_dev(loc, n), *st[2] = {mprt_cu_falloc(3 * M), mprt_cu_falloc(3 * M)};
    float *dg[2] = {mprt_cu_falloc(n), mprt_cu_falloc(n)}, scale = 1.0f / (float)M;
    double *dloss = mprt_cu_malloc(2 * sizeof(double)), loss[2];
    mprt_cu_memset0(dloss, 2 * sizeof(double));
    mprt_cu_memset0(dg[0], sizeof(float) * (size_t)n),
        mprt_cu_memset0(dg[1], sizeof(float) * (size_t)n);
    mprt_cu_vocab_ce_forward(dloss, dl, dlab, st[0], M, Vl, v0, V, scale);
    mprt_cu_vocab_ce_backward(dg[0], dl, dlab, st[0], M, Vl, v0, V, scale);
    mprt_cu_vocab_ce_forward_bf16(dloss + 1, dh, dlab, st[1], M, Vl, v0, V, scale);
    mprt_cu_vocab_ce_backward_bf16(dg[1], dh, dlab, st[1], M, Vl, v0, V, scale);
    for (int i = 0; i < 6; i++)
        expect(MPRT_ALLREDUCE, MPRT_TENSOR, 4 * (int64_t)M);
    mprt_cu_sync();
    mprt_cu_download(loss, dloss, sizeof loss);
    mprt_cu_download(hs, st[0], sizeof(float) * 3 * (size_t)M);
    mprt_cu_download(hg, dg[0], sizeof(float) * (size_t)n);
    close_to("vocab_ce bf16 loss", loss[1], loss[0], 1e-12);
    same_bytes("vocab_ce bf16 stash", MPRT_TENSOR, st[1], hs, sizeof(float) * 3 * (size_t)M);
    same_bytes("vocab_ce bf16 gradient", MPRT_TENSOR, dg[1], hg, sizeof(float) * (size_t)n);
    free(loc), free(hs), free(hg), free(h), free(lab);
    mprt_cu_free(dh), mprt_cu_free(dlab), mprt_cu_free(dl), mprt_cu_free(dloss);
    for (int i = 0; i < 2; i++)
        mprt_cu_free(st[i]), mprt_cu_free(dg[i]);
}

/* ZeRO-2 on the device (zero2.c): three layers' gradients over two micro-batches, each written
 * into its slot on the compute stream (as a backward accumulates) between mprt_cu_zero2_open and
 * _close, whose reduce-scatters run on the communication stream while the next layers are
 * written (three layers, two slots: a slot is reused while its reduce-scatter may be in flight);
 * after mprt_cu_zero2_join, gsh equals the CPU's reduce-scatter-and-add of the same gradients,
 * exactly, and each call counted the padded tensor. In place (ZeRO-1): this rank's part at its
 * place in the gradients. */
static void test_zero2(MprtGroup g) {
    int64_t G = mprt_group_size(g), count[3] = {5 * G + 1, 3 * G, 7}, off = 0, soff = 0;
    MprtZeroPart parts[3];
    for (int i = 0; i < 3; i++) {
        int64_t shard = (count[i] + G - 1) / G;
        parts[i] = (MprtZeroPart){.stage = mprt_mesh()->s,
                                  .group = g,
                                  .synced = true,
                                  .offset = off,
                                  .count = count[i],
                                  .shard = shard,
                                  .soff = soff};
        off += count[i], soff += shard;
    }
    int64_t floats[64] = {0};
    floats[mprt_mesh()->s] = off;
    MprtZero z = {.stage = 2, .parts = parts, .nparts = 3, .stage_floats = floats};
    float *gsh = mprt_cu_falloc(soff), *ref = calloc((size_t)soff, sizeof(float));
    float *tmp = mprt_cu_falloc(off);
    mprt_cu_zero2_setup(&z, gsh);
    for (int micro = 0; micro < 2; micro++)
        for (int i = 2; i >= 0; i--) {
            float *h = filled(count[i], 20 + 3 * micro + i);
            mprt_cu_upload(tmp + parts[i].offset, h, sizeof(float) * (size_t)count[i]);
            mprt_cu_zero2_open(i);
            mprt_cu_accumulate(mprt_cu_zero2_grad(parts[i].offset), tmp + parts[i].offset,
                               count[i]);
            mprt_cu_zero2_close();
            expect(MPRT_REDUCESCATTER, g, 4 * G * parts[i].shard);
            mprt_stats_pause();
            mprt_zero_reduce_scatter(g, h, ref + parts[i].soff, count[i], parts[i].shard, true);
            mprt_stats_resume();
            free(h);
        }
    mprt_cu_zero2_join();
    same("zero2 (overlapped reduce-scatters)", g, gsh, ref, soff);
    mprt_cu_zero2_teardown();
    /* ZeRO-1's in-place form on the last layer's count */
    int64_t lo, n = mprt_zero_part(g, count[0], parts[0].shard, &lo);
    float *h = filled(count[0], 30), *d = to_dev(h, count[0]);
    mprt_stats_pause(), mprt_zero_reduce_scatter(g, h, NULL, count[0], parts[0].shard, false);
    mprt_stats_resume();
    mprt_cu_zero_reduce_scatter((int)g, d, NULL, count[0], parts[0].shard, false);
    expect(MPRT_REDUCESCATTER, g, 4 * G * parts[0].shard);
    same("zero_reduce_scatter (in place)", g, d + lo, h + lo, n);
    free(ref), free(h), mprt_cu_free(gsh), mprt_cu_free(tmp), mprt_cu_free(d);
}

/* ZeRO under bf16 on the device (zero_bf16.c), over three parts of g — padded, exact and one
 * without synchronisation — whose f32 master parts are not bf16 values: each part rounded into
 * the working copy and all-gathered (mprt_cu_zero_master_params) gives the host's
 * mprt_zero_master_params bit for bit, counted as the padded bf16 all-gathers (and not at all
 * with counted false); the whole copy for checkpoints (mprt_zero_weights on a model whose arenas
 * are device memory) is the host's gathered copy, and putting a whole copy back leaves this
 * rank's parts of it in the master and bf16 of all of it in the working copy. Run with the
 * wire on. */
static void test_zero_master(MprtGroup g) {
    int64_t G = mprt_group_size(g), count[3] = {5 * G + 1, 3 * G, 7}, off = 0, soff = 0;
    MprtZeroPart parts[3];
    for (int i = 0; i < 3; i++) {
        bool synced = i < 2;
        int64_t shard = synced ? (count[i] + G - 1) / G : count[i];
        parts[i] = (MprtZeroPart){mprt_mesh()->s, g, synced, off, count[i], shard, soff};
        off += count[i], soff += shard;
    }
    int64_t floats[64] = {0};
    floats[mprt_mesh()->s] = off;
    MprtZero z = {.stage = 1, .parts = parts, .nparts = 3, .stage_floats = floats, .master = true};
    float *mst = filled(soff, 40);
    for (int64_t i = 0; i < soff; i++)
        mst[i] += 0.1234567f * (float)(i + 1); /* not bf16 values */
    size_t hb = sizeof(uint16_t) * (size_t)off;
    uint16_t *ref = calloc((size_t)off, sizeof *ref);
    mprt_zero_master_params(&z, mst, ref, false);
    float *dmst = to_dev(mst, soff);
    uint16_t *dprm = mprt_cu_malloc(hb);
    for (int counted = 0; counted < 2; counted++) {
        mprt_cu_memset0(dprm, hb);
        mprt_cu_zero_master_params(&z, dmst, dprm, counted);
        for (int i = 0; counted && i < 2; i++)
            expect(MPRT_ALLGATHER, g, 4 * G * parts[i].shard); /* halved: 2 bytes a value */
        same_bytes(counted ? "zero_master_params" : "zero_master_params (uncounted)", g, dprm, ref,
                   hb);
    }
    /* whole copies: gathered, then another whole copy put back */
    MprtModel hm = {.zero = &z},
              dm = {.zero = &z, .download = mprt_cu_download, .upload = mprt_cu_upload};
    mprt_cu_zero_master(dmst, dprm);
    float *hw = mprt_zero_weights(&hm, mst, true), *dw = mprt_zero_weights(&dm, dmst, true);
    same("zero_weights (gathered whole)", g, dw, hw, off);
    for (int64_t i = 0; i < off; i++)
        hw[i] = 0.75f * hw[i] + 0.0321f * (float)i;
    mprt_cu_upload(dw, hw, sizeof(float) * (size_t)off);
    mprt_zero_take(&z, hw, mst);
    mprt_bf16_pack(ref, hw, off);
    mprt_zero_weights_done(&dm, dw, dmst, true);
    same("zero_weights_done (master parts)", g, dmst, mst, soff);
    same_bytes("zero_weights_done (working copy)", g, dprm, ref, hb);
    mprt_zero_weights_done(&hm, hw, mst, false);
    mprt_cu_zero_master(NULL, NULL);
    free(mst), free(ref), mprt_cu_free(dmst), mprt_cu_free(dprm);
}

/* Each stage sends to the next and receives from the previous, in one grouped call. */
static void test_pipe(void) {
    int s = mprt_group_rank(MPRT_PIPE), S = mprt_group_size(MPRT_PIPE);
    if (S < 2) return;
    int64_t n = 333;
    float *h = filled(n, 7), *got = filled(n, 8), *d = to_dev(h, n), *dr = to_dev(got, n);
    bool send = s + 1 < S, recv = s > 0;
    mprt_cu_sendrecv(1, d, send ? n : 0, -1, dr, recv ? n : 0);
    if (send) expect(MPRT_SENDRECV, MPRT_PIPE, 4 * n);
    /* the reference: what the previous stage holds, sent over the CPU runtime */
    mprt_stats_pause();
    MprtReq *rq = send ? mprt_isend(1, h, n, 9) : NULL;
    if (recv) mprt_recv(-1, got, n, 9);
    if (rq) mprt_wait(rq);
    mprt_stats_resume();
    if (recv) same("sendrecv", MPRT_PIPE, dr, got, n);
    free(h), free(got), mprt_cu_free(d), mprt_cu_free(dr);
}

/* n bf16 values (filled's small integers, exact in bf16) on the host, and a device copy. */
static uint16_t *filled_h(int64_t n, int salt, uint16_t **dev) {
    float *f = filled(n, salt);
    uint16_t *h = malloc((size_t)(n > 0 ? n : 1) * sizeof *h);
    mprt_bf16_pack(h, f, n);
    *dev = mprt_cu_malloc((size_t)(n > 0 ? n : 1) * sizeof **dev);
    mprt_cu_upload(*dev, h, (size_t)n * sizeof *h);
    free(f);
    return h;
}

static void same_h(const char *what, MprtGroup g, const uint16_t *d, const uint16_t *ref,
                   int64_t n) {
    same_bytes(what, g, d, ref, (size_t)n * sizeof *ref);
}

/* A bf16 trainer's 16-bit activations changing layout (docs/cuda.md, "16-bit activations"):
 * the device's _bf16 forms against the CPU's bit for bit, counted as the f32 forms under the
 * bf16 wire (run with the wire on: expect() halves the f32 bytes). */
static void test_layout_bf16(MprtGroup g) {
    int64_t G = mprt_group_size(g), outer = 2, chunk = 3, inner = 2, n = outer * chunk * inner;
    uint16_t *dloc, *dfull, *loc = filled_h(n, 12, &dloc), *full = filled_h(G * n, 13, &dfull);
    mprt_stats_pause(), mprt_allgather_bf16(g, loc, full, outer, chunk, inner);
    mprt_stats_resume();
    mprt_cu_allgather_bf16((int)g, dloc, dfull, outer, chunk, inner);
    expect(MPRT_ALLGATHER, g, 4 * G * n);
    same_h("allgather_bf16", g, dfull, full, G * n);
    mprt_stats_pause(), mprt_reduce_scatter_bf16(g, full, loc, outer, chunk, inner);
    mprt_stats_resume();
    mprt_cu_reduce_scatter_bf16((int)g, dfull, dloc, outer, chunk, inner);
    expect(MPRT_REDUCESCATTER, g, 4 * G * n);
    same_h("reduce_scatter_bf16", g, dloc, loc, n);
    mprt_slice_bf16(full, loc, outer, chunk, inner, (int)G, (int)(G - 1));
    mprt_cu_slice_bf16(dfull, dloc, outer, chunk, inner, (int)G, (int)(G - 1));
    same_h("slice_bf16", g, dloc, loc, n);
    free(loc), free(full), mprt_cu_free(dloc), mprt_cu_free(dfull);
    int64_t batch = 2 * G, mid = 3, feat = 2 * G, in2 = 2, part = batch * mid * feat * in2 / G;
    uint16_t *da, *db, *a = filled_h(part, 14, &da), *b = filled_h(part, 15, &db);
    mprt_stats_pause(), mprt_alltoall_b2f_bf16(g, a, b, batch, mid, feat, in2);
    mprt_stats_resume();
    mprt_cu_alltoall_b2f_bf16((int)g, da, db, batch, mid, feat, in2);
    expect(MPRT_ALLTOALL, g, 4 * part * G);
    same_h("alltoall_b2f_bf16", g, db, b, part);
    mprt_stats_pause(), mprt_alltoall_f2b_bf16(g, b, a, batch, mid, feat, in2);
    mprt_stats_resume();
    mprt_cu_alltoall_f2b_bf16((int)g, db, da, batch, mid, feat, in2);
    expect(MPRT_ALLTOALL, g, 4 * part * G);
    same_h("alltoall_f2b_bf16", g, da, a, part);
    free(a), free(b), mprt_cu_free(da), mprt_cu_free(db);
}

/* A pipeline send of 16-bit activations staged through the host (mprt_cu_isend_staged_bf16,
 * mprt_cu_recv_bf16): what the previous stage holds, 2 bytes per element on the sender. */
static void test_pipe_bf16(void) {
    int s = mprt_group_rank(MPRT_PIPE), S = mprt_group_size(MPRT_PIPE);
    if (S < 2) return;
    int64_t n = 333;
    uint16_t *d, *dr, *h = filled_h(n, 16, &d), *want = filled_h(n, 16, &dr);
    /* the reference: the same values sent over the CPU runtime after the device's send */
    MprtCuReq *rq = s + 1 < S ? mprt_cu_isend_staged_bf16(1, d, n, 21) : NULL;
    if (rq) expect(MPRT_SENDRECV, MPRT_PIPE, 4 * n);
    if (s > 0) {
        mprt_cu_recv_bf16(-1, dr, n, 21);
        mprt_stats_pause();
        MprtReq *q = s + 1 < S ? mprt_isend_bf16(1, h, n, 22) : NULL;
        mprt_recv_bf16(-1, want, n, 22);
        if (q) mprt_wait(q);
        mprt_stats_resume();
        same_h("pipe send_bf16", MPRT_PIPE, dr, want, n);
    } else if (s + 1 < S) {
        mprt_stats_pause();
        mprt_wait(mprt_isend_bf16(1, h, n, 22));
        mprt_stats_resume();
    }
    mprt_cu_wait_staged(rq);
    free(h), free(want), mprt_cu_free(d), mprt_cu_free(dr);
}

/* The counters hold exactly the expected bytes (and, over NCCL, calls). */
static void check_counts(void) {
    mprt_cu_stats_flush();
    bool nccl = mprt_cu_comm_mode() == MPRT_CU_COMM_NCCL;
    for (int k = MPRT_ALLREDUCE; k <= MPRT_BROADCAST; k++)
        for (int g = 0; g < MPRT_GROUP__COUNT; g++) {
            MprtCommStat st = mprt_stats_get((MprtColl)k, (MprtGroup)g);
            bool bad = st.bytes != expect_bytes[k][g] ||
                       (nccl && k != MPRT_SENDRECV && st.calls != expect_calls[k][g]);
            if (bad) {
                failures++;
                printf("FAIL rank %d: %s on %s counted %lld bytes in %lld calls, expected %lld "
                       "in %lld\n",
                       mprt_mesh()->rank, mprt_coll_name((MprtColl)k),
                       mprt_group_name((MprtGroup)g), (long long)st.bytes, (long long)st.calls,
                       (long long)expect_bytes[k][g], (long long)expect_calls[k][g]);
            }
        }
}

int main(int argc, char **argv) {
    if (mprt_cu_device_count() <= 0) {
        printf("SKIPPED: no CUDA device\n");
        return 77;
    }
    if (argc != 5) {
        fprintf(stderr, "usage: test_cu_comm S d t nccl|mpi|auto\n");
        return 2;
    }
    MprtCuComm mode;
    if (!mprt_cu_comm_parse(argv[4], &mode)) {
        fprintf(stderr, "test_cu_comm: bad mode '%s'\n", argv[4]);
        return 2;
    }
    mprt_init(&argc, &argv, atoi(argv[1]), atoi(argv[2]), atoi(argv[3]));
    mprt_cu_init(mode);
    mprt_stats_reset();
    for (int g = 0; g < MPRT_GROUP__COUNT; g++)
        test_group((MprtGroup)g), test_zero((MprtGroup)g), test_allreduce_bf16((MprtGroup)g),
            test_allreduce_max((MprtGroup)g), test_zero2((MprtGroup)g);
    test_vocab_ce();
    test_vocab_ce_bf16();
    test_pipe();
    check_counts();
    mprt_stats_reset(), memset(expect_bytes, 0, sizeof expect_bytes);
    memset(expect_calls, 0, sizeof expect_calls);
    mprt_set_wire_bf16(true); /* the same on the bf16 wire */
    for (int g = 0; g < MPRT_GROUP__COUNT; g++)
        test_group((MprtGroup)g), test_zero((MprtGroup)g), test_wire_rounds((MprtGroup)g),
            test_zero_master((MprtGroup)g), test_layout_bf16((MprtGroup)g);
    test_pipe();
    test_pipe_bf16();
    check_counts();
    mprt_set_wire_bf16(false);
    double bad = failures;
    mprt_metric_sum(MPRT_WORLD, &bad, 1);
    const MprtMesh *m = mprt_mesh();
    if (m->rank == 0 && bad == 0)
        printf("test_cu_comm %d x %d x %d %s: ok\n", m->S, m->d, m->t,
               mprt_cu_comm_name(mprt_cu_comm_mode()));
    mprt_cu_finalize();
    mprt_finalize();
    return bad == 0 ? 0 : 1;
}
