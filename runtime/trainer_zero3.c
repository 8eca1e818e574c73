/*
 * trainer_zero3.c: ZeRO-3's parameters in the C trainer — this rank's part of every layer's
 * weights only, and one transient buffer that holds one layer's weights whole while it runs
 * (docs/runtime.md, "ZeRO").
 *
 * Under ZeRO-3 the weight arena `prm` is a shard arena like the optimizer state's: each layer's
 * part at its MprtZeroPart.soff (MprtZero.master), updated there by mprt_zero_update, never
 * all-gathered after the step. Right before a layer's forward, and again before its backward
 * (and before a recomputed forward), mprt_zero3_gather(part) all-gathers the layer's parts
 * over its group into the gathered buffer, as the schedule lists and the planner prices them
 * (2m, or 3m recomputed, all-gathers of the padded layer per step). While that layer runs,
 * mprt_zero3_param(offset) is where the parameter at `offset` of the (whole) weight arena
 * is, and mprt_zero3_at(p) the arena offset of such a pointer (the gradient's, GRAD(p) under
 * ZeRO-2's slots). A layer whose gradients need no synchronisation keeps all of its weights in
 * its part, read in place without a gather.
 */
#include "mprt_trainer.h"

#include <stdlib.h>
#include <string.h>

static struct {
    const MprtZero *z;
    float *prm, *buf; /* this rank's parts; the gathered layer */
    int part;         /* the part whose weights are gathered (-1: none) */
    float *at;        /* where that part's weights start: buf, or its place in prm */
} Z3 = {.part = -1};

int64_t mprt_zero3_buf_floats(const MprtZero *z, int stage) {
    int64_t n = 0;
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        int64_t whole = p->shard * mprt_group_size(p->group);
        if (p->stage == stage && p->synced && whole > n) n = whole;
    }
    return n;
}

void mprt_zero3_setup(const MprtZero *z, float *prm) {
    int64_t n = mprt_zero3_buf_floats(z, mprt_mesh()->s);
    Z3.z = z, Z3.prm = prm, Z3.part = -1, Z3.at = NULL;
    Z3.buf = n ? mprt_falloc_in(MPRT_MEM_ZERO_BUF, n) : NULL;
}

void mprt_zero3_teardown(void) {
    free(Z3.buf);
    Z3.buf = NULL, Z3.z = NULL, Z3.part = -1;
}

void mprt_zero3_gather(int part) {
    if (!Z3.z || part < 0 || part >= Z3.z->nparts) mprt_fatal("ZeRO-3: no part %d to gather", part);
    const MprtZeroPart *p = &Z3.z->parts[part];
    Z3.part = part;
    if (!p->synced) { /* all of it is this rank's */
        Z3.at = Z3.prm + p->soff;
        return;
    }
    int64_t lo, n = mprt_zero_part(p->group, p->count, p->shard, &lo);
    memcpy(Z3.buf + lo, Z3.prm + p->soff, sizeof(float) * (size_t)n);
    mprt_zero_allgather(p->group, Z3.buf, p->count, p->shard);
    Z3.at = Z3.buf;
}

/* The gathered part, fatal when `offset` is outside it. */
static const MprtZeroPart *gathered(int64_t offset) {
    const MprtZeroPart *p = Z3.part >= 0 ? &Z3.z->parts[Z3.part] : NULL;
    if (!p || offset < p->offset || offset >= p->offset + p->count)
        mprt_fatal("ZeRO-3: a parameter at %lld outside the gathered layer's", (long long)offset);
    return p;
}

float *mprt_zero3_param(int64_t offset) {
    const MprtZeroPart *p = gathered(offset);
    return Z3.at + (offset - p->offset);
}

int64_t mprt_zero3_at(const float *w) {
    const MprtZeroPart *p = Z3.part >= 0 ? &Z3.z->parts[Z3.part] : NULL;
    uintptr_t a = (uintptr_t)w, lo = (uintptr_t)Z3.at;
    if (!p || a < lo || a >= lo + sizeof(float) * (size_t)p->count)
        mprt_fatal("ZeRO-3: a parameter outside the gathered layer's weights");
    return p->offset + (int64_t)((a - lo) / sizeof(float));
}
