/*
 * kernels_vocab.c: cross-entropy on logits split by class over the tensor group (the
 * vocabulary-parallel loss of Shoeybi et al. 2019, §3; docs/runtime.md).
 *
 * A column-split LM head leaves each tensor rank with its slice [v0, v0 + Vl) of every row's
 * logits. Instead of gathering the rows (M·V floats), the ranks agree on three floats per row:
 * the row maximum (all-reduce max), then the sum of exp(x − max) over their slices and the
 * target's logit, which only the rank owning the label adds (two all-reduce sums). Each rank
 * then knows the whole loss, and the gradient softmax − onehot of its own slice needs nothing
 * more: the backward is local. The three values per row are kept in a stash [3, M] for it.
 * The all-reduces are counted by the runtime like any other (the planner predicts them as the
 * layer's own forward collectives, rules.c own_fwd). Only an evaluation (validation accuracy,
 * --generate) gathers whole rows, for the hooks that read them.
 */
#include "internal.h"
#include "mprt_kernels.h"

#include "kernels_math.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static int owns(int32_t label, int64_t v0, int Vl) { return label >= v0 && label < v0 + Vl; }

/* The classes of this rank's slice [v0, v0 + Vl) that exist: a vocabulary that does not divide
 * the tensor group is padded (each rank holds ceil(V/t) columns), and the last rank's columns
 * past V are padding, which never enters the softmax (their gradient stays 0). */
static int valid_classes(int Vl, int64_t v0, int64_t V) {
    return v0 >= V ? 0 : V - v0 < Vl ? (int)(V - v0) : Vl;
}

/* Row maxima of the local slices (rows of Vl floats, nv of them classes) into mx [M]. */
static void local_max(const float *restrict logits, float *restrict mx, int M, int Vl, int nv) {
    for (int m = 0; m < M; m++) {
        const float *row = logits + (size_t)m * (size_t)Vl;
        float v = nv > 0 ? row[0] : -INFINITY;
        for (int j = 1; j < nv; j++)
            v = row[j] > v ? row[j] : v;
        mx[m] = v;
    }
}

/* Σ exp(x − mx) over the local slice into sum [M], the target's logit into tgt [M] (0 unless
 * this rank owns the label). */
static void local_sums(const float *restrict logits, const int32_t *restrict labels,
                       const float *restrict mx, float *restrict sum, float *restrict tgt, int M,
                       int Vl, int nv, int64_t v0) {
    for (int m = 0; m < M; m++) {
        const float *row = logits + (size_t)m * (size_t)Vl;
        float s = 0.0f;
        for (int j = 0; j < nv; j++)
            s += mprt_ew_expf(row[j] - mx[m]);
        sum[m] = s;
        tgt[m] = owns(labels[m], v0, nv) ? row[labels[m] - v0] : 0.0f;
    }
}

/* While an evaluation runs (validation accuracy, --generate's draw: mprt_kernels_eval), the
 * hooks that read whole rows get them: the tensor group gathers the logits (not plan traffic:
 * validation pauses the counters; a generated token costs one forward anyway). */
static void eval_hooks(const float *logits, const int32_t *labels, int M, int Vl, int64_t V) {
    if (!mprt__kernels_evaluating()) return;
    int64_t G = (int64_t)mprt_mesh()->t * Vl; /* the gathered row: V and the padding */
    float *full = malloc(sizeof(float) * (size_t)M * (size_t)G);
    if (!full) mprt_fatal("cross-entropy: out of memory gathering %d rows of logits", M);
    mprt_allgather(MPRT_TENSOR, logits, full, M, Vl, 1);
    for (int m = 1; G > V && m < M; m++) /* drop each row's padding */
        memmove(full + (size_t)m * (size_t)V, full + (size_t)m * (size_t)G,
                sizeof(float) * (size_t)V);
    mprt__logits_captured(full, M, (int)V);
    mprt__ce_counted(full, labels, M, (int)V);
    free(full);
}

double mprt_vocab_ce_forward(const float *restrict logits, const int32_t *restrict labels,
                             float *restrict stash, int M, int Vl, int64_t v0, int64_t V,
                             float scale) {
    float *mx = stash, *lse = stash + M, *tgt = stash + 2 * (size_t)M;
    int nv = valid_classes(Vl, v0, V);
    eval_hooks(logits, labels, M, Vl, V);
    local_max(logits, mx, M, Vl, nv);
    mprt_allreduce_max(MPRT_TENSOR, mx, M);
    local_sums(logits, labels, mx, lse, tgt, M, Vl, nv, v0);
    /* the loss is f32 (docs/runtime.md, "A bf16 trainer"): its sums stay off the bf16 wire,
     * 4 bytes a row, as the planner prices them (docs/cost-model.md §7c) */
    bool wire = mprt_wire_bf16();
    mprt_set_wire_bf16(false);
    mprt_allreduce(MPRT_TENSOR, lse, M);
    mprt_allreduce(MPRT_TENSOR, tgt, M);
    mprt_set_wire_bf16(wire);
    double loss = 0.0;
    for (int m = 0; m < M; m++) {
        lse[m] = logf(lse[m]);
        if (labels[m] < 0 || labels[m] >= V) continue; /* ignored row */
        loss += (double)(lse[m] - (tgt[m] - mx[m]));
    }
    return loss * (double)scale;
}

void mprt_vocab_ce_backward(float *restrict dlogits, const float *restrict logits,
                            const int32_t *restrict labels, const float *restrict stash, int M,
                            int Vl, int64_t v0, int64_t V, float scale) {
    const float *mx = stash, *lse = stash + M;
    int nv = valid_classes(Vl, v0, V);
    for (int m = 0; m < M; m++) {
        if (labels[m] < 0 || labels[m] >= V) continue; /* ignored row */
        const float *row = logits + (size_t)m * (size_t)Vl;
        float *d = dlogits + (size_t)m * (size_t)Vl;
        for (int j = 0; j < nv; j++)
            d[j] += scale * mprt_ew_expf(row[j] - mx[m] - lse[m]);
        if (owns(labels[m], v0, nv)) d[labels[m] - v0] -= scale;
    }
}
