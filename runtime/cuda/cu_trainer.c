/*
 * cu_trainer.c: what every generated CUDA trainer does the same way on the device, whatever
 * the model (mprt_cuda.h, "the trainer's device side"; docs/cuda.md): bringing the GPU up
 * from the trainer's flags and down again, zeroed device buffers, uploading a micro-batch of
 * inputs through a reusable host buffer, and pipeline sends staged through host memory and
 * tracked by the CPU runtime's send tracker (mprt_pipe_track), so the C and CUDA trainers
 * wait for their sends alike.
 */
#include "mprt_cuda.h"
#include "mprt_trainer.h"

#include <stdlib.h>
#include <string.h>

/* The host buffer uploads of input batches go through, grown as needed. */
static struct {
    void *buf;
    size_t cap;
} stage;

void mprt_cu_trainer_up(const MprtArgs *a) {
    MprtCuComm comm = MPRT_CU_COMM_AUTO;
    mprt_exit_if_any(a->comm && !mprt_cu_comm_parse(a->comm, &comm),
                     "--comm takes nccl, mpi or auto");
    mprt_cu_init(comm);
    mprt_cu_set_tf32(a->tf32);
    /* layer times need the device's queue drained around each timed call: --profile's
     * timers and --trace's compute spans alike (without either, nothing is timed) */
    mprt_timed_device(mprt_cu_sync, a->profile != NULL || a->trace != NULL);
}

void mprt_cu_trainer_down(void) {
    free(stage.buf);
    stage.buf = NULL, stage.cap = 0;
    mprt_cu_finalize();
}

/* `bytes` of zeroed device memory. */
static void *zeroed(size_t bytes) {
    void *p = mprt_cu_malloc(bytes);
    mprt_cu_memset0(p, bytes);
    return p;
}

float *mprt_cu_falloc(int64_t n) { return (float *)zeroed(sizeof(float) * (size_t)n); }
int32_t *mprt_cu_ialloc(int64_t n) { return (int32_t *)zeroed(sizeof(int32_t) * (size_t)n); }

/* At least one element, so that an empty arena is a valid pointer, as mprt_falloc's; the n
 * elements asked for are what counts. */
float *mprt_cu_falloc_in(int category, int64_t n) {
    mprt_mem_add((MprtMem)category, 4 * n);
    return mprt_cu_falloc(n > 0 ? n : 1);
}
int32_t *mprt_cu_ialloc_in(int category, int64_t n) {
    mprt_mem_add((MprtMem)category, 4 * n);
    return mprt_cu_ialloc(n > 0 ? n : 1);
}
uint16_t *mprt_cu_halloc_in(int category, int64_t n) {
    mprt_mem_add((MprtMem)category, 2 * n);
    return (uint16_t *)zeroed(sizeof(uint16_t) * (size_t)(n > 0 ? n : 1));
}

void mprt_cu_data_rows(const MprtData *d, uint64_t seed, int64_t first, int64_t n, void *dst) {
    size_t bytes = mprt_dtype_size(d->dtype) * (size_t)(n * mprt_data_row(d));
    if (bytes > stage.cap) {
        free(stage.buf);
        stage.buf = malloc(bytes);
        if (!stage.buf) mprt_fatal("out of memory (%zu bytes)", bytes);
        stage.cap = bytes;
    }
    mprt_data_rows(d, seed, first, n, stage.buf);
    mprt_cu_upload(dst, stage.buf, bytes);
}

static void wait_staged(void *req) { mprt_cu_wait_staged((MprtCuReq *)req); }

void mprt_cu_pipe_send(int slot, int dir, const float *buf, int64_t count, int tag) {
    mprt_pipe_track(slot, mprt_cu_isend_staged(dir, buf, count, tag), wait_staged);
}

void mprt_cu_pipe_send_bf16(int slot, int dir, const uint16_t *buf, int64_t count, int tag) {
    mprt_pipe_track(slot, mprt_cu_isend_staged_bf16(dir, buf, count, tag), wait_staged);
}

/* One ZeRO part's optimizer step on device pointers: part_step of trainer_zero.c with the
 * mprt_cu_ optimizers. */
static void part_step(const MprtModel *m, float *p, float *s1, float *s2, const float *g, int64_t n,
                      const MprtHyper *h, int64_t t) {
    if (!strcmp(m->optimizer, "sgd"))
        mprt_cu_sgd_step(p, h->momentum != 0.0f ? s1 : NULL, g, n, h->lr, h->momentum,
                         h->weight_decay);
    else if (!strcmp(m->optimizer, "adam"))
        mprt_cu_adam_step(p, s1, s2, g, n, h->lr, h->beta1, h->beta2, h->eps, h->weight_decay, t);
    else
        mprt_cu_adamw_step(p, s1, s2, g, n, h->lr, h->beta1, h->beta2, h->eps, h->weight_decay, t);
}

void mprt_cu_zero_update(const MprtModel *m, float *prm, const float *grd, const float *gsh,
                         float *state[3], const MprtHyper *h, int64_t t) {
    mprt_zero_update_parts(m, prm, grd, gsh, state, h, t, part_step);
}

void mprt_cu_zero_params(const MprtZero *z, float *prm) {
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        if (p->stage == mprt_mesh()->s && p->synced)
            mprt_cu_zero_allgather(p->group, prm + p->offset, p->count, p->shard);
    }
}
