/*
 * search_recompute.c: activation recomputation in the plan search (docs/cost-model.md,
 * "Activation recomputation").
 *
 * A recomputed layer does not keep its activations (its output, the layout-changed copies of
 * its inputs, what it stashes for backward) for every micro-batch in flight: its forward runs
 * again, from the activations kept around it, right before its stage's backward of that
 * micro-batch (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"; Korthikanti
 * et al. 2022 price it as one more forward). So its activations exist for one micro-batch at a
 * time instead of min(S − s, m), and each micro-batch pays its forward compute and its forward
 * layout changes (tensor-group collectives) once more. A value a stage sends to the next one is
 * kept in any case (its send completes later).
 *
 * Which layers. `@recompute` pins a layer (or every layer of a def call), and
 * train.recompute = "all" pins every layer: those are priced in the per-layer costs the sweep
 * minimises (cost.c, search_trans), so the search stays exact for them. Under "auto" (the
 * default) a plan is first evaluated as it is; only when one of its stages does not fit in
 * cluster.memory is recomputation switched on for every layer of each such stage that has more
 * than one micro-batch in flight, and the plan re-evaluated with the extra time. A plan that
 * fits is never changed, so models that fit plan exactly as without recomputation. When
 * the fastest plan of a candidate does not fit, or fits only by recomputing, search_fit asks the
 * exact sweep under the memory limit (search_exact.c), which prices every stage both plain and
 * recomputed; recomputation thus also lets a faster mesh (fewer stages, larger micro-batches)
 * fit where it otherwise would not. "none" never
 * recomputes beyond the pins.
 */
#include "search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void search_rc_init(Search *s) {
    s->rcfix = search_xcalloc((size_t)s->N, 1);
    s->rc = search_xcalloc((size_t)s->N, 1);
    bool all = s->g->train.recompute == RECOMPUTE_ALL;
    for (int p = 0; p < s->N; p++)
        s->rcfix[p] = s->rc[p] = all || IR_NODE(s->g, p)->annot.recompute;
}

double search_rc_fit(Search *s, const Cand *c, const int *mode, const int *stage, int64_t *peak) {
    memcpy(s->rc, s->rcfix, (size_t)s->N);
    double F = search_eval_plan(s, c, mode, stage, NULL, peak);
    double cap = s->g->cluster.memory;
    if ((double)*peak <= cap || s->g->train.recompute != RECOMPUTE_AUTO || F == INFINITY) return F;
    bool any = false;
    for (int p = 0; p < s->N; p++) {
        int k = stage[p];
        if ((double)s->stage_mem[k] > cap && c->S - k > 1 && c->m > 1 && !s->rc[p])
            s->rc[p] = 1, any = true;
    }
    return any ? search_eval_plan(s, c, mode, stage, NULL, peak) : F;
}

typedef struct Kept {
    int *mode, *stage;
    uint8_t *rc;
    double F;
    int64_t peak;
} Kept;

static void kept_take(const Search *s, Kept *k, const int *mode, const int *stage, double F,
                      int64_t peak) {
    memcpy(k->mode, mode, (size_t)s->N * sizeof(int));
    memcpy(k->stage, stage, (size_t)s->N * sizeof(int));
    memcpy(k->rc, s->rc, (size_t)s->N);
    k->F = F;
    k->peak = peak;
}

/* Takes the plan in mode/stage/s->rc (time F, memory peak) into k when it fits and is faster. */
static void kept_offer(const Search *s, Kept *k, const int *mode, const int *stage, double F,
                       int64_t peak) {
    if (F < INFINITY && (double)peak <= s->g->cluster.memory && F < k->F)
        kept_take(s, k, mode, stage, F, peak);
}

/* The old fallbacks, for a candidate whose exact sweep overflowed a front: recomputation on the
 * fastest plan (already in k), the memory-capped sweep's plan and the leanest plan. */
static void fit_heuristic(Search *s, const Cand *c, Kept *k, int *mode, int *stage) {
    int64_t p2 = 0;
    if (search_solve_capped(s, c, mode, stage)) {
        double F2 = search_rc_fit(s, c, mode, stage, &p2);
        kept_offer(s, k, mode, stage, F2, p2);
    }
    if (search_solve_mem(s, c, mode, stage)) {
        double F3 = search_rc_fit(s, c, mode, stage, &p2);
        kept_offer(s, k, mode, stage, F3, p2);
    }
}

double search_fit(Search *s, const Cand *c, int *mode, int *stage, double F, int64_t *peak,
                  double lo, double bound) {
    Kept k = {search_xcalloc((size_t)s->N, sizeof(int)), search_xcalloc((size_t)s->N, sizeof(int)),
              search_xcalloc((size_t)s->N, 1), INFINITY, 0};
    kept_offer(s, &k, mode, stage, F, *peak); /* the fastest plan, recomputing */
    bool trunc = false;
    if (search_solve_exact(s, c, lo, bound, mode, stage, &trunc) < INFINITY) {
        double Fx = search_rc_fit(s, c, mode, stage, peak);
        kept_offer(s, &k, mode, stage, Fx, *peak);
    }
    if (trunc) fit_heuristic(s, c, &k, mode, stage);
    F = INFINITY;
    *peak = -1; /* none faster than bound */
    if (k.F < INFINITY && k.F <= bound * (1 + REL_EPS)) {
        memcpy(mode, k.mode, (size_t)s->N * sizeof(int));
        memcpy(stage, k.stage, (size_t)s->N * sizeof(int));
        memcpy(s->rc, k.rc, (size_t)s->N);
        F = k.F, *peak = k.peak;
    } else if (k.F == INFINITY && bound == INFINITY && search_solve_mem(s, c, mode, stage)) {
        F = search_rc_fit(s, c, mode, stage, peak); /* the leanest, for the error's numbers */
    }
    free(k.mode);
    free(k.stage);
    free(k.rc);
    return F;
}
