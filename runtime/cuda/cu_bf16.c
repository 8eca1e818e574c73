/*
 * cu_bf16.c: the weights of a bf16 CUDA trainer (docs/cuda.md, "bf16"), the device twin of
 * runtime/trainer_bf16.c.
 *
 * The trainer keeps two copies of its stage's weights in device memory: the f32 master
 * weights `mst`, which the optimizer updates and checkpoints hold whole, and the working copy
 * `prm`, 16 bits a value, each value the bf16 rounding of its master (mprt_cu_bf16_pack, the
 * CPU's bits). mprt_cu_bf16_weights registers the pair and the f32 staging buffer; every
 * upload into the master weights through the checkpoint and initialisation code
 * (MprtModel.upload, which a bf16 CUDA trainer sets to mprt_cu_bf16_upload) rounds the same
 * range into the working copy, so a checkpoint loaded, an initialisation or a partial start
 * reach the kernels without another hook; mprt_cu_bf16_refresh rounds all of it (after the
 * optimizer). Kernels that take f32 weights read one layer's working weights at a time,
 * unpacked (exactly) into the staging buffer by mprt_cu_bf16_layer; the bf16 GEMMs read the
 * working copy itself. Without registered weights the upload and download are plain copies and
 * refresh does nothing; with master NULL (the master weights are ZeRO parts, written into
 * the working copy elsewhere) the staging works and refresh and the copies leave it alone.
 */
#include "mprt_cuda.h"
#include "mprt_trainer.h"

static struct {
    float *master, *stage;
    uint16_t *work;
    int64_t n, cap;
} W;

void mprt_cu_bf16_weights(float *master, uint16_t *work, int64_t n, float *stage, int64_t cap) {
    bool on = work != NULL;
    W.master = master, W.work = work, W.n = on ? n : 0;
    W.stage = on ? stage : NULL, W.cap = on && stage ? cap : 0;
    mprt_cu_bf16_refresh();
}

void mprt_cu_bf16_refresh(void) {
    if (W.n > 0 && W.master) mprt_cu_bf16_pack(W.work, W.master, W.n);
}

/* On the compute stream, so the layer's kernels that follow read the unpacked values and the
 * next layer's unpack waits for them. */
float *mprt_cu_bf16_layer(int64_t offset, int64_t n) {
    if (offset < 0 || n < 0 || n > W.cap || offset > W.n - n)
        mprt_fatal("bf16 weights: a layer's %lld values at %lld do not fit the %lld staged of "
                   "the %lld registered",
                   (long long)n, (long long)offset, (long long)W.cap, (long long)W.n);
    mprt_cu_bf16_unpack(W.stage, W.work + offset, n);
    return W.stage;
}

/* The synchronous upload first, then the rounding on the compute stream, which every later
 * kernel follows. */
void mprt_cu_bf16_upload(void *arena, const void *host, size_t bytes) {
    mprt_cu_upload(arena, host, bytes);
    uintptr_t a = (uintptr_t)arena, lo = (uintptr_t)W.master;
    uintptr_t hi = lo + (uintptr_t)W.n * sizeof(float);
    if (W.n == 0 || !W.master || a < lo || a + bytes > hi) return; /* not the master weights */
    size_t off = (a - lo) / sizeof(float);
    mprt_cu_bf16_pack(W.work + off, W.master + off, (int64_t)(bytes / sizeof(float)));
}

void mprt_cu_bf16_download(void *host, const void *arena, size_t bytes) {
    mprt_cu_download(host, arena, bytes);
}
