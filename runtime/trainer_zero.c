/*
 * trainer_zero.c: ZeRO's optimizer state between its sharded form and whole tensors.
 *
 * Under ZeRO (docs/runtime.md, "ZeRO") each rank keeps the optimizer state of its part of
 * every layer's parameters only, packed at MprtZeroPart.soff; checkpoints hold whole tensors,
 * so that a ZeRO run resumes without ZeRO, on another mesh, and the reverse. mprt_zero_gather
 * rebuilds the stage's whole state arena (the weights' layout) before a save; mprt_zero_take
 * keeps this rank's parts of a whole arena after a load. Under bf16 the f32 master weights are
 * sharded the same way (MprtZero.master): mprt_zero_weights and mprt_zero_weights_done give
 * the code that reads or writes weights by tensor a whole copy (a device trainer's through the
 * functions its runtime registers: mprt_zero_master_device), and mprt_zero_master_params
 * rebuilds the bf16 working copy from the parts.
 */
#include <stdlib.h>
#include <string.h>

#include "mprt_trainer.h"

int64_t mprt_zero_mine(const MprtZeroPart *p, int64_t *lo) {
    *lo = 0;
    return p->synced ? mprt_zero_part(p->group, p->count, p->shard, lo) : p->count;
}

int64_t mprt_zero_shard_floats(const MprtZero *z, int stage) {
    int64_t n = 0;
    for (int i = 0; i < z->nparts; i++)
        if (z->parts[i].stage == stage && z->parts[i].soff + z->parts[i].shard > n)
            n = z->parts[i].soff + z->parts[i].shard;
    return n;
}

void mprt_zero_gather(const MprtZero *z, const float *shards, float *full) {
    int s = mprt_mesh()->s;
    mprt_stats_pause();
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        if (p->stage != s) continue;
        if (!p->synced) {
            memcpy(full + p->offset, shards + p->soff, sizeof(float) * (size_t)p->count);
            continue;
        }
        int64_t lo, n = mprt_zero_part(p->group, p->count, p->shard, &lo);
        memcpy(full + p->offset + lo, shards + p->soff, sizeof(float) * (size_t)n);
        mprt_zero_allgather(p->group, full + p->offset, p->count, p->shard);
    }
    mprt_stats_resume();
}

void mprt_zero_take(const MprtZero *z, const float *full, float *shards) {
    int s = mprt_mesh()->s;
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        if (p->stage != s) continue;
        int64_t lo, n = mprt_zero_mine(p, &lo);
        memcpy(shards + p->soff, full + p->offset + lo, sizeof(float) * (size_t)n);
    }
}

/* One layer's part: the optimizer of m->optimizer on n floats. */
static void part_step(const MprtModel *m, float *p, float *s1, float *s2, const float *g, int64_t n,
                      const MprtHyper *h, int64_t t) {
    if (!strcmp(m->optimizer, "sgd"))
        mprt_sgd_step(p, h->momentum != 0.0f ? s1 : NULL, g, n, h->lr, h->momentum,
                      h->weight_decay);
    else if (!strcmp(m->optimizer, "adam"))
        mprt_adam_step(p, s1, s2, g, n, h->lr, h->beta1, h->beta2, h->eps, h->weight_decay, t);
    else
        mprt_adamw_step(p, s1, s2, g, n, h->lr, h->beta1, h->beta2, h->eps, h->weight_decay, t);
}

void mprt_zero_update(const MprtModel *m, float *prm, const float *grd, const float *gsh,
                      MprtArenas state, const MprtHyper *h, int64_t t) {
    mprt_zero_update_parts(m, prm, grd, gsh, state, h, t, part_step);
}

void mprt_zero_update_parts(const MprtModel *m, float *prm, const float *grd, const float *gsh,
                            MprtArenas state, const MprtHyper *h, int64_t t, MprtZeroStep step) {
    const MprtZero *z = m->zero;
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        if (p->stage != mprt_mesh()->s) continue;
        int64_t lo, n = mprt_zero_mine(p, &lo);
        /* ZeRO-2: the part in gsh; ZeRO-1 (gsh NULL): reduced in place, at its place in grd */
        const float *g = gsh ? gsh + p->soff : grd + p->offset + lo;
        float *s2 = state[2] ? state[2] + p->soff : NULL;
        float *w = z->master ? prm + p->soff : prm + p->offset + lo;
        step(m, w, state[1] + p->soff, s2, g, n, h, t);
    }
}

void mprt_zero_params(const MprtZero *z, float *prm) {
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        if (p->stage == mprt_mesh()->s && p->synced)
            mprt_zero_allgather(p->group, prm + p->offset, p->count, p->shard);
    }
}

void mprt_zero_master_params(const MprtZero *z, const float *mst, uint16_t *prm, bool counted) {
    if (z->stage == 3) { /* prm is parts too: each rounded in place, gathered where used */
        for (int i = 0; i < z->nparts; i++) {
            const MprtZeroPart *p = &z->parts[i];
            int64_t lo, n = mprt_zero_mine(p, &lo);
            if (p->stage == mprt_mesh()->s) mprt_bf16_pack(prm + p->soff, mst + p->soff, n);
        }
        return;
    }
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        if (p->stage != mprt_mesh()->s) continue;
        int64_t lo, n = mprt_zero_mine(p, &lo);
        mprt_bf16_pack(prm + p->offset + lo, mst + p->soff, n);
    }
    if (!counted) mprt_stats_pause();
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        if (p->stage == mprt_mesh()->s && p->synced)
            mprt_zero_allgather_bf16(p->group, prm + p->offset, p->count, p->shard);
    }
    if (!counted) mprt_stats_resume();
}

/* The registered pair (mprt_zero_master): writes of whole weights into `mst` round into `prm`. */
static struct {
    float *mst;
    uint16_t *prm;
} W;

void mprt_zero_master(float *mst, uint16_t *prm) { W.mst = mst, W.prm = prm; }

/* A device trainer's whole copies (mprt_zero_master_device): device memory, made elsewhere,
 * for a model whose arenas its download/upload reach (a host view of it has none). */
static const MprtZeroDevice *Dev;

void mprt_zero_master_device(const MprtZeroDevice *dev) { Dev = dev; }

float *mprt_zero_weights(const MprtModel *m, float *arena, bool gather) {
    if (!m->zero || !m->zero->master) return arena;
    if (Dev && m->download) return Dev->weights(m, arena, gather);
    int64_t n = m->zero->stage_floats[mprt_mesh()->s] + 1;
    float *whole = mprt_falloc(n);
    memset(whole, 0, sizeof(float) * (size_t)n);
    if (gather) mprt_zero_gather(m->zero, arena, whole);
    return whole;
}

void mprt_zero_weights_done(const MprtModel *m, float *whole, float *arena, bool put) {
    if (!m->zero || !m->zero->master) return;
    if (Dev && m->download) {
        Dev->done(m, whole, arena, put);
        return;
    }
    if (put) mprt_zero_take(m->zero, whole, arena);
    if (put && arena == W.mst && W.prm && m->zero->stage == 3) /* ZeRO-3: the working parts */
        mprt_zero_master_params(m->zero, W.mst, W.prm, false);
    else if (put && arena == W.mst && W.prm) /* the live master weights: their working copy too */
        mprt_bf16_pack(W.prm, whole, m->zero->stage_floats[mprt_mesh()->s]);
    free(whole);
}

void mprt_zero_params_init(const MprtModel *m, float *mst, uint64_t seed) {
    float *whole = mprt_zero_weights(m, mst, false);
    mprt_params_init(m, whole, seed);
    mprt_zero_weights_done(m, whole, mst, true);
}
