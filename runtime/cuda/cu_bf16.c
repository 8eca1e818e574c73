/*
 * cu_bf16.c: the weights of a bf16 CUDA trainer (docs/cuda.md, "bf16"), the device twin of
 * runtime/trainer_bf16.c.
 *
 * The trainer keeps two copies of its stage's weights in device memory: the f32 master
 * weights `mst`, which the optimizer updates and checkpoints hold whole, and the working copy
 * `prm` its kernels read, each value the bf16 rounding of its master (mprt_cu_bf16_round, the
 * CPU's bits). mprt_cu_bf16_weights registers the pair; every upload into the master weights
 * through the checkpoint and initialisation code (MprtModel.upload, which a bf16 CUDA trainer
 * sets to mprt_cu_bf16_upload) rounds the same range into the working copy, so a checkpoint
 * loaded, an initialisation or a partial start reach the kernels without another hook;
 * mprt_cu_bf16_refresh rounds all of it (after the optimizer). Without a registered pair the
 * upload and download are plain copies and refresh does nothing.
 */
#include "mprt_cuda.h"

static struct {
    float *master, *work;
    int64_t n;
} W;

void mprt_cu_bf16_weights(float *master, float *work, int64_t n) {
    W.master = master, W.work = work, W.n = master && work ? n : 0;
    mprt_cu_bf16_refresh();
}

void mprt_cu_bf16_refresh(void) {
    if (W.n > 0) mprt_cu_bf16_round(W.work, W.master, W.n);
}

/* The synchronous upload first, then the rounding on the compute stream, which every later
 * kernel follows. */
void mprt_cu_bf16_upload(void *arena, const void *host, size_t bytes) {
    mprt_cu_upload(arena, host, bytes);
    uintptr_t a = (uintptr_t)arena, lo = (uintptr_t)W.master;
    uintptr_t hi = lo + (uintptr_t)W.n * sizeof(float);
    if (W.n == 0 || a < lo || a + bytes > hi) return; /* not the master weights */
    size_t off = (a - lo) / sizeof(float);
    mprt_cu_bf16_round(W.work + off, W.master + off, (int64_t)(bytes / sizeof(float)));
}

void mprt_cu_bf16_download(void *host, const void *arena, size_t bytes) {
    mprt_cu_download(host, arena, bytes);
}
