/*
 * brute.c: the exhaustive oracle of the plan search, for tests only (tests/unit/test_search.c).
 *
 * For every candidate mesh and micro-batch count it enumerates every mode of every node and
 * every stage assignment, prices each complete plan with the search's own evaluation
 * (search_rc_fit: search_eval_plan, recomputing under "auto" the stages that would not fit) and
 * keeps the fastest that fits in memory, over ZeRO stages 0 to search_zero_auto_max (3 but for
 * the CUDA trainer) under train.zero = "auto"; with plan.mesh set, only the
 * candidates of that mesh (with train.microbatches' m, as the tests set no plan.microbatches). It
 * shares the search's candidates, modes and evaluation through passes/search_internal.h — the
 * private header of the search, included here on purpose — so what it checks is the sweep and its
 * pruning, not the cost model. Exponential: small graphs only.
 */
#include "brute.h"
#include "search_internal.h"

#include <math.h>
#include <stdlib.h>

typedef struct Brute {
    Search *s;
    const Cand *c;
    int *mode, *stage;
    double best;
} Brute;

/* Every stage assignment for the modes fixed in b->mode. */
static void brute_stages(Brute *b, int p, int k) {
    Search *s = b->s;
    if (p == s->N) {
        if (k != b->c->S - 1) return;
        int64_t peak = 0;
        double F = search_rc_fit(s, b->c, b->mode, b->stage, &peak);
        if ((double)peak <= s->g->cluster.memory && F < b->best) b->best = F;
        return;
    }
    if (s->N - p < b->c->S - 1 - k) return; /* too few nodes left for the stages */
    int lo = p == 0 ? 0 : k, hi = p == 0 ? 0 : k + 1;
    for (int q = lo; q <= hi && q < b->c->S; q++) {
        b->stage[p] = q;
        brute_stages(b, p + 1, q);
    }
}

static void brute_modes(Brute *b, int p) {
    if (p == b->s->N) {
        brute_stages(b, 0, 0);
        return;
    }
    for (int mi = 0; mi < b->s->nmodes[p]; mi++) {
        b->mode[p] = mi;
        brute_modes(b, p + 1);
    }
}

/* The brute force at the ZeRO stage s->zero. */
static double brute_zero(Search *s, const CandList *l, int *mode, int *stage) {
    double best = INFINITY;
    const int64_t *pin = s->g->train.mesh; /* plan.mesh: only that mesh */
    for (int i = 0; i < l->n; i++) {
        Cand c = l->v[i];
        if (pin[0] > 0 && (c.S != pin[0] || c.d != pin[1] || c.t != pin[2])) continue;
        if (!search_cand_prepare(s, &c)) continue;
        Brute b = {s, &c, mode, stage, INFINITY};
        brute_modes(&b, 0);
        if (b.best < best) best = b.best;
    }
    return best;
}

double plan_brute_force(IrGraph *g, Diag *d) {
    Search s;
    double best = INFINITY;
    if (!search_init(&s, g, d) || !search_check_inputs(&s)) {
        search_free(&s);
        return best;
    }
    CandList l = {0};
    search_enumerate(&s, &l);
    int *mode = search_xcalloc((size_t)s.N, sizeof(int)),
        *stage = search_xcalloc((size_t)s.N, sizeof(int));
    bool aut = g->train.zero == TRAIN_ZERO_AUTO; /* "auto": every stage the search tries */
    for (int z = aut ? 0 : s.zero; z <= (aut ? search_zero_auto_max(g) : s.zero); z++) {
        s.zero = z;
        best = fmin(best, brute_zero(&s, &l, mode, stage));
    }
    free(mode);
    free(stage);
    free(l.v);
    search_free(&s);
    return best;
}
