/*
 * zero_bf16.c: ZeRO under bf16 in the CUDA trainer (docs/cuda.md, "ZeRO under bf16"), the
 * device twin of runtime/trainer_zero.c's master-weight functions.
 *
 * With train.precision = "bf16" and train.zero = 1 | 2 each data replica keeps, in device
 * memory, its part of every layer's f32 master weights `mst` (at the parts' soff, like the
 * optimizer state) and the 16-bit working copy `prm` whole, as the C trainer does
 * (docs/runtime.md, "ZeRO under bf16"). After the optimizer updated the parts,
 * mprt_cu_zero_master_params packs each part to bf16 at its place in `prm` (the CPU's bits:
 * mprt_cu_bf16_pack) and all-gathers the parts over the group (mprt_cu_zero_allgather_bf16:
 * ncclBfloat16, 2 bytes a value, as the plan prices it), so every replica's working copy is
 * bf16(master).
 *
 * Code that reads or writes weights by tensor (initialisation, checkpoints, --init-partial,
 * --export-hf) takes a whole copy from mprt_zero_weights (runtime/trainer_zero.c), which for
 * a device trainer calls the two functions registered here: `weights` gathers the parts on the
 * host (downloaded, then mprt_zero_weights on a host view of the model) and uploads the whole
 * copy into device memory, where the runtime's download/upload reach it; `done` takes this
 * rank's parts back (downloaded, mprt_zero_take, uploaded) and, for the live master weights,
 * packs the whole copy into `prm` on the device, so an initialisation, a checkpoint loaded or
 * a partial start reaches the kernels without another hook. Neither is counted as traffic or
 * as the trainer's memory (the C trainer's whole copies are not either).
 */
#include "mprt_cuda.h"
#include "mprt_trainer.h"

#include <stdlib.h>

/* The live master weights' parts and the working copy (mprt_cu_zero_master). */
static struct {
    float *mst;
    uint16_t *prm;
} M;

/* The model as host code sees it: arenas in host memory, no device copies, so
 * mprt_zero_weights on it gathers on the host. */
static MprtModel host_view(const MprtModel *m) {
    MprtModel h = *m;
    h.download = NULL, h.upload = NULL;
    return h;
}

static float *dev_weights(const MprtModel *m, float *arena, bool gather) {
    int s = mprt_mesh()->s;
    int64_t n = m->zero->stage_floats[s], ns = mprt_zero_shard_floats(m->zero, s);
    MprtModel h = host_view(m);
    float *parts = NULL;
    if (gather) { /* this rank's parts, downloaded */
        parts = mprt_falloc(ns + 1);
        mprt_cu_download(parts, arena, sizeof(float) * (size_t)ns);
    }
    float *whole = mprt_zero_weights(&h, parts, gather); /* host, zeros unless gathered */
    float *dev = mprt_cu_falloc(n + 1);
    mprt_cu_upload(dev, whole, sizeof(float) * (size_t)n);
    mprt_zero_weights_done(&h, whole, parts, false); /* frees the host copy */
    free(parts);
    return dev;
}

static void dev_done(const MprtModel *m, float *whole, float *arena, bool put) {
    int s = mprt_mesh()->s;
    int64_t n = m->zero->stage_floats[s], ns = mprt_zero_shard_floats(m->zero, s);
    if (put) {
        float *h = mprt_falloc(n + 1), *parts = mprt_falloc(ns + 1);
        mprt_cu_download(h, whole, sizeof(float) * (size_t)n);
        mprt_zero_take(m->zero, h, parts);
        mprt_cu_upload(arena, parts, sizeof(float) * (size_t)ns);
        free(h), free(parts);
        if (arena == M.mst && M.prm) mprt_cu_bf16_pack(M.prm, whole, n);
    }
    mprt_cu_sync(); /* the packing above reads `whole` */
    mprt_cu_free(whole);
}

static const MprtZeroDevice DEV = {dev_weights, dev_done};

void mprt_cu_zero_master(float *mst, uint16_t *prm) {
    M.mst = mst, M.prm = prm;
    mprt_zero_master_device(mst ? &DEV : NULL);
}

void mprt_cu_zero_master_params(const MprtZero *z, const float *mst, uint16_t *prm, bool counted) {
    int s = mprt_mesh()->s;
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        if (p->stage != s) continue;
        int64_t lo, n = mprt_zero_mine(p, &lo);
        mprt_cu_bf16_pack(prm + p->offset + lo, mst + p->soff, n);
    }
    /* uncounted: what the step queued is counted first; what follows is dropped (paused) */
    if (!counted) mprt_cu_stats_flush(), mprt_stats_pause();
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        if (p->stage == s && p->synced)
            mprt_cu_zero_allgather_bf16((int)p->group, prm + p->offset, p->count, p->shard);
    }
    if (!counted) mprt_cu_stats_flush(), mprt_stats_resume();
}
