/*
 * zero2.c: ZeRO-2's gradients in the CUDA trainer — this rank's parts only (gsh), plus
 * MPRT_ZERO_SLOTS transient slots, each layer reduce-scattered on the communication stream
 * right after its backward while the compute stream runs the backward of the layers before it
 * (docs/cuda.md, "ZeRO"). The device twin of runtime/trainer_zero2.c, with the same slots
 * (mprt_zero2_slot_floats: room for the largest synchronised layer's gradients padded to G
 * equal parts, then one part) and the same calls from the generated trainer.
 *
 * A layer's backward (one micro-batch) accumulates its parameters' gradients into the next
 * slot, zeroed first on the compute stream. mprt_cu_zero2_close starts the slot's
 * reduce-scatter on the communication stream (after the backward that filled it: the
 * collectives' ordering event) together with the add of this rank's part into the layer's part
 * of gsh, and records an event there; the compute stream carries on. Before a slot is zeroed
 * again the compute stream waits for its event (on the device: the host never blocks), and
 * mprt_cu_zero2_join (before the optimizer) makes it wait for all of them. The communication
 * stream runs the reduce-scatters and adds in start order, so every run adds a part's
 * micro-batches in the same order. A layer whose gradients need no synchronisation accumulates
 * straight into its part of gsh. Under host-staged MPI every reduce-scatter is synchronous.
 */
#include "cu_internal.h"
#include "mprt_trainer.h"

#include <string.h>

static struct {
    const MprtZero *z;
    float *gsh, *slot[MPRT_ZERO_SLOTS];
    cudaEvent_t free_ev[MPRT_ZERO_SLOTS]; /* recorded after the slot's reduce-scatter and add */
    bool busy[MPRT_ZERO_SLOTS];           /* a reduce-scatter was started from it since */
    int64_t started;                      /* reduce-scatters started: picks the next slot */
    int open, open_slot;                  /* the part whose backward runs (-1: none), its slot */
} Z = {.open = -1};

void mprt_cu_zero2_setup(const MprtZero *z, float *gsh) {
    int64_t n = mprt_zero2_slot_floats(z, mprt_mesh()->s);
    Z.z = z, Z.gsh = gsh, Z.open = -1, Z.started = 0;
    for (int s = 0; s < MPRT_ZERO_SLOTS; s++) {
        Z.slot[s] = n ? mprt_cu_falloc_in(MPRT_MEM_ZERO_BUF, n) : NULL, Z.busy[s] = false;
        CU_CHECK(cudaEventCreateWithFlags(&Z.free_ev[s], cudaEventDisableTiming));
    }
}

void mprt_cu_zero2_teardown(void) {
    if (!Z.z) return;
    mprt_cu_sync();
    for (int s = 0; s < MPRT_ZERO_SLOTS; s++) {
        mprt_cu_free(Z.slot[s]), Z.slot[s] = NULL;
        CU_CHECK(cudaEventDestroy(Z.free_ev[s]));
    }
    Z.z = NULL;
}

void mprt_cu_zero2_open(int part) {
    const MprtZeroPart *p = &Z.z->parts[part];
    Z.open = part;
    if (!p->synced) return;
    int s = (int)(Z.started % MPRT_ZERO_SLOTS);
    if (Z.busy[s]) /* its last reduce-scatter still reads it */
        CU_CHECK(cudaStreamWaitEvent(mprt_cu_stream(), Z.free_ev[s], 0));
    mprt_cu_memset0(Z.slot[s], sizeof(float) * (size_t)(p->shard * mprt_group_size(p->group)));
    Z.open_slot = s;
}

float *mprt_cu_zero2_grad(int64_t offset) {
    return mprt_zero2_place(Z.z, Z.open, Z.gsh, Z.slot[Z.open_slot], offset);
}

void mprt_cu_zero2_close(void) {
    const MprtZeroPart *p = &Z.z->parts[Z.open];
    int s = Z.open_slot;
    Z.open = -1;
    if (!p->synced) return;
    mprt_cu_zero_reduce_scatter_start(p->group, Z.slot[s], Z.gsh + p->soff, p->count, p->shard);
    CU_CHECK(cudaEventRecord(Z.free_ev[s], mprt_cu_comm_stream()));
    Z.busy[s] = true, Z.started++;
}

void mprt_cu_zero2_join(void) {
    mprt_cu_comm_join();
    memset(Z.busy, 0, sizeof Z.busy);
}
