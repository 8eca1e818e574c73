/*
 * trainer_zero2.c: ZeRO-2's gradients in the C trainer — this rank's parts only, plus a bounded
 * transient buffer, reduce-scattered as the backward produces them (docs/runtime.md, "ZeRO").
 *
 * A layer's backward (one micro-batch) accumulates its parameters' gradients into one of
 * MPRT_ZERO_SLOTS slots, each room for the largest layer's gradients padded to G equal parts
 * (shard·G floats) followed by one part (shard floats) that receives the group's sum of this
 * rank's part. Right after the layer's backward the slot's reduce-scatter starts without
 * blocking; it is tested between layers (mprt_zero2_progress, from the layer timers) and
 * completed at the latest when its slot is needed again or before the optimizer
 * (mprt_zero2_join); completing it adds the received part to the layer's part of `gsh`.
 * Completions are taken in start order, so every run adds a part's micro-batches in the same
 * order. A layer whose gradients need no synchronisation accumulates straight into its part
 * of `gsh` (it holds all of them).
 */
#include "mprt_trainer.h"

#include <stdlib.h>
#include <string.h>

static struct {
    const MprtZero *z;
    float *gsh, *slot[MPRT_ZERO_SLOTS];
    int busy[MPRT_ZERO_SLOTS]; /* the part whose reduce-scatter is in flight there, or -1 */
    int64_t seq[MPRT_ZERO_SLOTS];
    int64_t started;     /* reduce-scatters started: the next one's sequence number */
    int open, open_slot; /* the part whose backward runs (-1: none) and its slot */
} Z = {.open = -1};

static int64_t part_floats(const MprtZeroPart *p) {
    return p->shard * (mprt_group_size(p->group) + 1);
}

int64_t mprt_zero2_slot_floats(const MprtZero *z, int stage) {
    int64_t n = 0;
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        if (p->stage == stage && p->synced && part_floats(p) > n) n = part_floats(p);
    }
    return n;
}

void mprt_zero2_setup(const MprtZero *z, float *gsh) {
    int64_t n = mprt_zero2_slot_floats(z, mprt_mesh()->s);
    Z.z = z, Z.gsh = gsh, Z.open = -1, Z.started = 0;
    for (int s = 0; s < MPRT_ZERO_SLOTS; s++)
        Z.slot[s] = n ? mprt_falloc_in(MPRT_MEM_ZERO_BUF, n) : NULL, Z.busy[s] = -1;
}

void mprt_zero2_teardown(void) {
    for (int s = 0; s < MPRT_ZERO_SLOTS; s++)
        free(Z.slot[s]), Z.slot[s] = NULL;
    Z.z = NULL;
}

/* Slot s's reduce-scatter completed (`done`) or waited for: its part into gsh. */
static void finish(int s, bool done) {
    const MprtZeroPart *p = &Z.z->parts[Z.busy[s]];
    if (!done) mprt_zero_rs_wait(s);
    int64_t lo, n = mprt_zero_part(p->group, p->count, p->shard, &lo);
    const float *got = Z.slot[s] + p->shard * mprt_group_size(p->group);
    float *dst = Z.gsh + p->soff;
    for (int64_t i = 0; i < n; i++)
        dst[i] += got[i];
    Z.busy[s] = -1;
}

/* The slot of the oldest reduce-scatter in flight, or -1. */
static int oldest(void) {
    int o = -1;
    for (int s = 0; s < MPRT_ZERO_SLOTS; s++)
        if (Z.busy[s] >= 0 && (o < 0 || Z.seq[s] < Z.seq[o])) o = s;
    return o;
}

void mprt_zero2_progress(void) {
    for (int s; Z.z && (s = oldest()) >= 0;)
        if (mprt_zero_rs_test(s))
            finish(s, true);
        else
            return;
}

void mprt_zero2_join(void) {
    for (int s; Z.z && (s = oldest()) >= 0;)
        finish(s, false);
}

void mprt_zero2_open(int part) {
    const MprtZeroPart *p = &Z.z->parts[part];
    Z.open = part;
    if (!p->synced) return;
    int s = (int)(Z.started % MPRT_ZERO_SLOTS);
    while (Z.busy[s] >= 0) /* complete the older ones first: the same order every run */
        finish(oldest(), false);
    memset(Z.slot[s], 0, sizeof(float) * (size_t)(p->shard * mprt_group_size(p->group)));
    Z.open_slot = s;
}

float *mprt_zero2_place(const MprtZero *z, int open, float *gsh, float *slot, int64_t offset) {
    const MprtZeroPart *p = open >= 0 ? &z->parts[open] : NULL;
    if (!p || offset < p->offset || offset >= p->offset + p->count)
        mprt_fatal("ZeRO-2: a gradient at %lld outside the open layer's", (long long)offset);
    if (!p->synced) return gsh + p->soff + (offset - p->offset);
    return slot + (offset - p->offset);
}

float *mprt_zero2_grad(int64_t offset) {
    return mprt_zero2_place(Z.z, Z.open, Z.gsh, Z.slot[Z.open_slot], offset);
}

void mprt_zero2_close(void) {
    const MprtZeroPart *p = &Z.z->parts[Z.open];
    int s = Z.open_slot, part = Z.open;
    Z.open = -1;
    if (!p->synced) return;
    float *full = Z.slot[s];
    int G = mprt_group_size(p->group);
    /* busy only once posted: under bf16 the start packs the wire, whose kernels progress the
     * calls in flight (mprt__progress_inflight), and must not find this one half made */
    int64_t seq = Z.started++;
    mprt_zero_rs_start(s, p->group, full, full + p->shard * G, p->shard);
    Z.busy[s] = part, Z.seq[s] = seq;
}
