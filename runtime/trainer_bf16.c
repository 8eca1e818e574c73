/*
 * trainer_bf16.c: the weights of a bf16 trainer (docs/runtime.md, "A bf16 trainer").
 *
 * A bf16 trainer keeps two copies of its stage's weights: the f32 master weights, which the
 * optimizer updates and checkpoints hold whole, and the working copy its kernels read, each
 * value the bf16 rounding of its master. mprt_bf16_weights registers the pair; every write of
 * master weights through the checkpoint and initialisation code (MprtModel.upload, which a
 * bf16 trainer sets to mprt_bf16_upload) rounds the same range into the working copy, so a
 * checkpoint loaded, an initialisation or a partial start reach the kernels without another
 * hook; mprt_bf16_refresh rounds all of it (after the optimizer, after a C API load).
 * Without a registered pair every function here is a plain copy or does nothing.
 */
#include <string.h>

#include "mprt_trainer.h"

static struct {
    float *master, *work;
    int64_t n;
} W;

void mprt_bf16_weights(float *master, float *work, int64_t n) {
    W.master = master, W.work = work, W.n = master && work ? n : 0;
    mprt_bf16_refresh();
}

void mprt_bf16_refresh(void) {
    if (W.n > 0) mprt_bf16_round(W.work, W.master, W.n);
}

void mprt_bf16_upload(void *arena, const void *host, size_t bytes) {
    memcpy(arena, host, bytes);
    uintptr_t a = (uintptr_t)arena, lo = (uintptr_t)W.master;
    uintptr_t hi = lo + (uintptr_t)W.n * sizeof(float);
    if (W.n == 0 || a < lo || a + bytes > hi) return; /* not the master weights */
    size_t off = (a - lo) / sizeof(float);
    mprt_bf16_round(W.work + off, W.master + off, (int64_t)(bytes / sizeof(float)));
}

void mprt_bf16_download(void *host, const void *arena, size_t bytes) { memcpy(host, arena, bytes); }
