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
 *
 * Under bf16 (mprt_zero3_setup_bf16; docs/runtime.md, "ZeRO under bf16") the weights that are
 * parts and gathered are the 16-bit working copy (the f32 master weights are parts of the
 * optimizer state, as under ZeRO-1/2): the buffer holds 16-bit values, gathered 2 bytes a
 * value, and the gather points the bf16 staging (mprt_bf16_window) at the gathered layer, so
 * the layer's mprt_bf16_layer unpacks it as usual; mprt_zero3_param16(offset) is a 16-bit
 * weight for the kernels that read them directly (the embedding's lookup).
 */
#include "mprt_trainer.h"

#include <stdlib.h>
#include <string.h>

static struct {
    const MprtZero *z;
    float *prm, *buf;               /* this rank's parts; the gathered layer */
    int part;                       /* the part whose weights are gathered (-1: none) */
    float *at;                      /* where that part's weights start: buf, or its place in prm */
    uint16_t *prm16, *buf16, *at16; /* the same under bf16 (prm, buf and at NULL) */
} Z3 = {.part = -1};

int64_t mprt_zero3_buf_floats(const MprtZero *z, int stage) {
    int64_t n = 0;
    for (int i = 0; i < z->nparts; i++) {
        const MprtZeroPart *p = &z->parts[i];
        if (p->stage == stage && p->synced && p->shard * mprt_group_size(p->group) > n)
            n = p->shard * mprt_group_size(p->group);
    }
    return n;
}

void mprt_zero3_setup(const MprtZero *z, float *prm) {
    int64_t n = mprt_zero3_buf_floats(z, mprt_mesh()->s);
    Z3.z = z, Z3.prm = prm, Z3.part = -1, Z3.at = NULL, Z3.prm16 = Z3.buf16 = Z3.at16 = NULL;
    Z3.buf = n ? mprt_falloc_in(MPRT_MEM_ZERO_BUF, n) : NULL;
}

void mprt_zero3_setup_bf16(const MprtZero *z, uint16_t *prm) {
    int64_t n = mprt_zero3_buf_floats(z, mprt_mesh()->s);
    Z3.z = z, Z3.prm16 = prm, Z3.part = -1, Z3.at16 = NULL, Z3.prm = Z3.buf = Z3.at = NULL;
    Z3.buf16 = n ? mprt_halloc_in(MPRT_MEM_ZERO_BUF, n) : NULL;
}

void mprt_zero3_teardown(void) {
    free(Z3.buf), free(Z3.buf16);
    Z3.buf = NULL, Z3.buf16 = NULL, Z3.z = NULL, Z3.part = -1;
}

/* bf16: part p's 16-bit weights into buf16 (or read in place), the staging pointed at them. */
static void gather16(const MprtZeroPart *p) {
    Z3.at16 = Z3.prm16 + p->soff;
    if (p->synced) {
        int64_t lo, n = mprt_zero_part(p->group, p->count, p->shard, &lo);
        memcpy(Z3.buf16 + lo, Z3.prm16 + p->soff, sizeof(uint16_t) * (size_t)n);
        mprt_zero_allgather_bf16(p->group, Z3.buf16, p->count, p->shard);
        Z3.at16 = Z3.buf16;
    }
    mprt_bf16_window(Z3.at16, p->offset, p->count);
}

void mprt_zero3_gather(int part) {
    if (!Z3.z || part < 0 || part >= Z3.z->nparts) mprt_fatal("ZeRO-3: no part %d to gather", part);
    const MprtZeroPart *p = &Z3.z->parts[part];
    Z3.part = part;
    if (Z3.prm16) {
        gather16(p);
        return;
    }
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
    if (!Z3.at) mprt_fatal("ZeRO-3: f32 weights asked of a bf16 trainer");
    return Z3.at + (offset - p->offset);
}

const uint16_t *mprt_zero3_param16(int64_t offset) {
    const MprtZeroPart *p = gathered(offset);
    if (!Z3.at16) mprt_fatal("ZeRO-3: bf16 weights asked of an f32 trainer");
    return Z3.at16 + (offset - p->offset);
}

int64_t mprt_zero3_at(const float *w) {
    const MprtZeroPart *p = Z3.part >= 0 ? &Z3.z->parts[Z3.part] : NULL;
    uintptr_t a = (uintptr_t)w, lo = (uintptr_t)Z3.at;
    if (!p || !Z3.at || a < lo || a >= lo + sizeof(float) * (size_t)p->count)
        mprt_fatal("ZeRO-3: a parameter outside the gathered layer's weights");
    return p->offset + (int64_t)((a - lo) / sizeof(float));
}
