/*
 * trainer_bf16.c: the weights of a bf16 trainer (docs/runtime.md, "A bf16 trainer").
 *
 * A bf16 trainer keeps two copies of its stage's weights: the f32 master weights, which the
 * optimizer updates and checkpoints hold whole, and the bf16 working copy (2 bytes a value),
 * each value the bf16 rounding of its master. mprt_bf16_weights registers the pair and the
 * f32 staging buffer; every write of master weights through the checkpoint and initialisation
 * code (MprtModel.upload, which a bf16 trainer sets to mprt_bf16_upload) rounds the same range
 * into the working copy, so a checkpoint loaded, an initialisation or a partial start reach
 * the kernels without another hook; mprt_bf16_refresh rounds all of it (after the optimizer,
 * after a C API load). The kernels compute in f32: mprt_bf16_layer unpacks one layer's
 * working weights at a time into the staging buffer (exactly: bf16 → f32 is the upper half).
 * Without registered weights every function here is a plain copy or does nothing.
 */
#include <string.h>

#include "mprt_trainer.h"

static struct {
    float *master, *stage;
    uint16_t *work;
    int64_t n, cap;
    int64_t base; /* the offset work[0] holds (0 but under ZeRO-3's mprt_bf16_window) */
} W;

void mprt_bf16_weights(float *master, uint16_t *work, int64_t n, float *stage, int64_t cap) {
    bool on = work != NULL; /* master NULL: ZeRO's parts (trainer_zero.c) write work */
    W.master = master, W.work = work, W.n = on ? n : 0, W.base = 0;
    W.stage = on ? stage : NULL, W.cap = on && stage ? cap : 0;
    mprt_bf16_refresh();
}

void mprt_bf16_window(uint16_t *work, int64_t base, int64_t n) {
    W.master = NULL, W.work = work, W.base = base, W.n = n;
}

void mprt_bf16_refresh(void) {
    if (W.n > 0 && W.master) mprt_bf16_pack(W.work, W.master, W.n);
}

float *mprt_bf16_layer(int64_t offset, int64_t n) {
    int64_t at = offset - W.base;
    if (at < 0 || n < 0 || n > W.cap || at > W.n - n)
        mprt_fatal("bf16 weights: a layer's %lld values at %lld do not fit the %lld staged of "
                   "the %lld registered at %lld",
                   (long long)n, (long long)offset, (long long)W.cap, (long long)W.n,
                   (long long)W.base);
    mprt_bf16_unpack(W.stage, W.work + at, n);
    return W.stage;
}

void mprt_bf16_upload(void *arena, const void *host, size_t bytes) {
    memcpy(arena, host, bytes);
    uintptr_t a = (uintptr_t)arena, lo = (uintptr_t)W.master;
    uintptr_t hi = lo + (uintptr_t)W.n * sizeof(float);
    if (W.n == 0 || !W.master || a < lo || a + bytes > hi) return; /* not the master weights */
    size_t off = (a - lo) / sizeof(float);
    mprt_bf16_pack(W.work + off, W.master + off, (int64_t)(bytes / sizeof(float)));
}

void mprt_bf16_download(void *host, const void *arena, size_t bytes) { memcpy(host, arena, bytes); }
