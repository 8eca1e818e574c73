/*
 * search_exact.c: the fastest plan of one candidate under the device's memory — the search's
 * exact answer when memory binds (docs/cost-model.md, "When memory binds").
 *
 * The time sweep (search_dp.c) keeps one value per (stage index, state): the least load. Under
 * a memory limit that is not enough: a slower path may be the only one whose stage still fits.
 * This sweep keeps, per (stage index, state), every label (load, memory, largest buffer) that no
 * other label of the same kind beats in all three — a Pareto front — and drops a label as soon
 * as its load exceeds the bound τ or its memory the device's. Bisection on τ as in
 * search_solve_cand then gives the optimum under the memory limit.
 *
 * A label's memory is the stage's memory as search_eval_plan counts it, built up node by node:
 * parameters, gradients and optimizer state; activations × micro-batches in flight (min(S − k,
 * m)), or × 1 for a recomputed layer; the activations received at the stage's first cut × in
 * flight; and at its last cut the sent values a recomputed layer made, which are kept for every
 * micro-batch in flight (the flags `fl` say which copies those are). The buffer is the largest
 * message × 2 (or ZeRO-2's full gradient), a maximum, so it is a label component of its own.
 *
 * Recomputation under train.recompute = "auto": search_rc_fit recomputes every layer of a stage
 * that would not fit otherwise. Each stage of this sweep starts twice, as a plain stage and
 * (where more than one micro-batch is in flight) as a recomputed one; since recomputing never
 * makes a stage faster, the fastest choice per stage is the rule's, so the optimum is the same.
 *
 * A front is capped at LCAP labels per (stage, state); when a label had to be dropped for room
 * the answer is no longer proven optimal and *trunc says so (the caller then also tries the
 * heuristic fallbacks). The small graphs of the brute-force tests never reach the cap.
 */
#include "search_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LCAP 48

typedef struct Lab {
    double t, m, b; /* stage load so far, memory (without the buffer), largest buffer */
    int64_t par;    /* the label it extends (pool index), or a stage start's left label */
    int tr;         /* the transition that made it (index into s->tr); −1: a stage start */
    uint32_t fl;    /* bit 4q + l: live value q's copy in layout l was made recomputing */
    uint8_t rcst;   /* the stage recomputes every layer */
} Lab;

typedef struct TrEx {
    double rx, tb;  /* recomputing: extra time per micro-batch; the largest buffer */
    uint32_t rcadd; /* the flags a recomputing node sets after it */
} TrEx;

typedef struct Ex {
    Search *s;
    const Cand *c;
    TrEx *tx;
    Lab *pool, *tmp;
    size_t np, pcap, tcap, ccap;
    int64_t *coff; /* per point p, cell i: first label at coff[cbase[p] + i] */
    int64_t *cbase, *tbase;
    int *tn;
    size_t tncap;
    double tau, cap;
    bool trunc;
} Ex;

/* The position after node p of the value at position `pos` before it (−1: it dies at p). */
static int pos_after(const Search *s, int p, int pos) {
    for (int j = 0; j < s->live_n[p + 1]; j++)
        if (s->next_src[s->live_off[p + 1] + j] == pos) return j;
    return -1;
}

/* The extras of one transition, as search_eval_reshards and eval_node_into count them. */
static TrEx tr_extra(const Search *s, const Cand *c, int p, const Tr *t) {
    const IrNode *n = IR_NODE(s->g, p);
    const Mode *M = &s->modes[p * MAX_MODES + t->mode];
    const ModeCost *mc = &s->mc[p * MAX_MODES + t->mode];
    uint8_t lay[MAX_LIVE], have[MAX_LIVE];
    unsigned code = s->st_code[s->st_off[p] + t->from];
    search_decode(code, s->live_n[p], lay);
    search_decode_have(code, s->live_n[p], have);
    TrEx x = {mc->fwd,
              fmax(fmax(2.0 * (double)mc->own_n, (double)mc->zero_tmp), (double)mc->wstage), 0};
    for (int k = 0; k < n->ninputs; k++) {
        int pos = s->in_pos[p * IR_MAX_INPUTS + k], v = n->inputs[k];
        if (pos < 0 || (k == 1 && v == n->inputs[0]) || (have[pos] >> M->in[k] & 1u)) continue;
        Layout from = search_resh_from(s, p, v, have[pos], (Layout)lay[pos], M->in[k]);
        x.rx += s->reshf[v * 16 + from * 4 + M->in[k]];
        x.tb = fmax(x.tb, 2.0 * (double)(s->sample_bytes[v] * c->b));
        int j = pos_after(s, p, pos);
        if (j >= 0) x.rcadd |= 1u << (4 * j + M->in[k]);
    }
    int jo = pos_after(s, p, -1);
    if (jo >= 0) x.rcadd |= 1u << (4 * jo + M->out);
    return x;
}

/* The flags of the values live after node p, carried over from before it. */
static uint32_t fl_carry(const Search *s, int p, uint32_t fl) {
    uint32_t out = 0;
    const int *src = &s->next_src[s->live_off[p + 1]];
    for (int j = 0; j < s->live_n[p + 1]; j++)
        if (src[j] >= 0) out |= ((fl >> (4 * src[j])) & 15u) << (4 * j);
    return out;
}

static bool rc_allowed(const Ex *e, int k) {
    return e->s->g->train.recompute == RECOMPUTE_AUTO && e->c->S - k > 1 && e->c->m > 1;
}

static bool dominates(const Lab *a, const Lab *b) {
    return a->rcst == b->rcst && a->fl == b->fl && a->t <= b->t && a->m <= b->m && a->b <= b->b;
}

/* Inserts L into temporary cell `cell` unless dominated; `prune` removes what L dominates
 * (never for stage starts, whose parents' positions must not move). */
static void cell_insert(Ex *e, int cell, const Lab *L, bool prune) {
    Lab *v = e->tmp + (size_t)cell * LCAP;
    int n = e->tn[cell], w = 0;
    for (int i = 0; i < n; i++)
        if (dominates(&v[i], L)) return;
    if (prune) {
        for (int i = 0; i < n; i++)
            if (!dominates(L, &v[i])) v[w++] = v[i];
        n = w;
    }
    if (n == LCAP) {
        e->trunc = true;
        e->tn[cell] = n;
        return;
    }
    v[n++] = *L;
    e->tn[cell] = n;
}

/* Node p: every label before it through every transition, into the cells after it. */
static void ex_node(Ex *e, int p) {
    Search *s = e->s;
    const Cand *c = e->c;
    int ns = s->st_cnt[p], ns1 = s->st_cnt[p + 1];
    int lo = s->kmin[p] > s->kmin[p + 1] ? s->kmin[p] : s->kmin[p + 1];
    int hi = s->kmax[p] < s->kmax[p + 1] ? s->kmax[p] : s->kmax[p + 1];
    int t0 = s->tr_off[p], ntr = s->tr_off[p + 1] - t0;
    for (int k = lo; k <= hi; k++) {
        if (s->pin[p] != IR_NO_STAGE && s->pin[p] != k) continue;
        double infl = s->infl[k];
        const int64_t *co = e->coff + e->cbase[p] + (int64_t)(k - s->kmin[p]) * ns;
        for (int q = 0; q < ntr; q++) {
            const Tr *t = &s->tr[t0 + q];
            const TrEx *x = &e->tx[t0 + q];
            int cell = (k - s->kmin[p + 1]) * ns1 + t->to;
            for (int64_t i = co[t->from]; i < co[t->from + 1]; i++) {
                const Lab *L = &e->pool[i];
                bool rc = L->rcst || s->rcfix[p];
                Lab N = {L->t + t->w + (L->rcst && !s->rcfix[p] ? c->K * x->rx : 0),
                         L->m + t->ms + (rc ? t->ma : t->ma * infl),
                         fmax(L->b, x->tb),
                         i,
                         t0 + q,
                         fl_carry(s, p, L->fl) | (rc ? x->rcadd : 0),
                         L->rcst};
                if (N.t <= e->tau && N.m + N.b <= e->cap) cell_insert(e, cell, &N, true);
            }
        }
    }
}

/* What closing a stage at point p in state j adds to a label's memory: the sent copies a
 * recomputed layer made stay for every micro-batch in flight (stage k). */
static double cut_extra(const Search *s, const Cand *c, int p, const uint8_t *lay, uint32_t fl,
                        int k) {
    double x = 0;
    for (int q = 0; q < s->live_n[p]; q++)
        if (fl >> (4 * q + lay[q]) & 1u)
            x += (double)search_local_bytes(s, c, s->live[s->live_off[p] + q], (Layout)lay[q]);
    return x * (s->infl[k] - 1);
}

/* Cuts at point p (after its nodes' labels are in): stage k ends, stage k+1 starts in the
 * state the cut leaves (st_cut). */
static void ex_cut(Ex *e, int p) {
    Search *s = e->s;
    const Cand *c = e->c;
    int ns = s->st_cnt[p], off = s->st_off[p];
    int hi = s->kmax[p] < c->S - 1 ? s->kmax[p] : c->S - 1;
    uint8_t lay[MAX_LIVE];
    for (int j = 0; j < ns; j++) {
        search_decode(s->st_code[off + j], s->live_n[p], lay);
        double big = 0;
        for (int q = 0; q < s->live_n[p]; q++)
            big = fmax(
                big, (double)search_local_bytes(s, c, s->live[s->live_off[p] + q], (Layout)lay[q]));
        for (int k = hi - 1; k >= s->kmin[p]; k--) {
            int cell = (k - s->kmin[p]) * ns + j;
            const Lab *v = e->tmp + (size_t)cell * LCAP;
            int i = 0;
            for (; i < e->tn[cell]; i++) /* not a stage that another cut here began */
                if (v[i].tr >= 0 && v[i].t + s->cl[off + j] <= e->tau &&
                    v[i].m + cut_extra(s, c, p, lay, v[i].fl, k) + fmax(v[i].b, 2 * big) <= e->cap)
                    break;
            if (i == e->tn[cell]) continue;
            Lab N = {s->cr[off + j],
                     s->crm[off + j] * s->infl[k + 1],
                     2 * big,
                     (int64_t)cell * LCAP + i,
                     -1,
                     0,
                     0};
            for (int r = 0; r <= (rc_allowed(e, k + 1) ? 1 : 0); r++) {
                N.rcst = (uint8_t)r;
                if (N.t <= e->tau && N.m + N.b <= e->cap)
                    cell_insert(e, (k + 1 - s->kmin[p]) * ns + s->st_cut[off + j], &N, false);
            }
        }
    }
}

/* The temporary cells of point p into the pool (stage starts' parents resolved). */
static void ex_commit(Ex *e, int p, int ncell) {
    e->cbase[p] = e->cbase[p > 0 ? p - 1 : 0] + (p > 0 ? e->tbase[p - 1] + 1 : 0);
    e->tbase[p] = ncell;
    e->coff = search_grow(e->coff, &e->ccap, (size_t)(e->cbase[p] + ncell + 1), sizeof(int64_t));
    size_t tot = 0;
    for (int i = 0; i < ncell; i++)
        tot += (size_t)e->tn[i];
    e->pool = search_grow(e->pool, &e->pcap, e->np + tot, sizeof(Lab));
    int64_t *co = e->coff + e->cbase[p];
    for (int i = 0; i < ncell; i++) {
        co[i] = (int64_t)e->np;
        for (int q = 0; q < e->tn[i]; q++) {
            Lab L = e->tmp[(size_t)i * LCAP + q];
            if (L.tr < 0) L.par = co[L.par / LCAP] + L.par % LCAP;
            e->pool[e->np++] = L;
        }
    }
    co[ncell] = (int64_t)e->np;
}

static void ex_cells(Ex *e, int ncell) {
    e->tmp = search_grow(e->tmp, &e->tcap, (size_t)ncell * LCAP, sizeof(Lab));
    e->tn = search_grow(e->tn, &e->tncap, (size_t)ncell, sizeof(int));
    memset(e->tn, 0, (size_t)ncell * sizeof(int));
}

/* One sweep at bound tau: the pool index of a plan's last label, or −1 when none fits. */
static int64_t ex_run(Ex *e, double tau) {
    Search *s = e->s;
    e->tau = tau;
    e->np = 0;
    search_dp_windows(s, e->c, tau);
    if (s->kmin[0] > 0) return -1;
    ex_cells(e, 1);
    for (int r = 0; r <= (rc_allowed(e, 0) ? 1 : 0); r++) {
        Lab L = {0, 0, 0, -1, 0, 0, (uint8_t)r};
        cell_insert(e, 0, &L, false);
    }
    ex_commit(e, 0, 1);
    for (int p = 0; p < s->N; p++) {
        int rows = s->kmax[p + 1] - s->kmin[p + 1] + 1;
        if (rows <= 0) return -1;
        int ncell = rows * s->st_cnt[p + 1];
        ex_cells(e, ncell);
        ex_node(e, p);
        if (p + 1 < s->N) ex_cut(e, p + 1);
        ex_commit(e, p + 1, ncell);
    }
    if (s->kmax[s->N] != e->c->S - 1) return -1;
    const int64_t *co = e->coff + e->cbase[s->N];
    int row = (e->c->S - 1 - s->kmin[s->N]) * s->st_cnt[s->N];
    for (int j = 0; j < s->st_cnt[s->N]; j++)
        if (co[row + j] < co[row + j + 1]) return co[row + j];
    return -1;
}

/* Follows the labels back from the last one into mode[] and stage[]. */
static void ex_backtrack(const Ex *e, int64_t i, int *mode, int *stage) {
    int k = e->c->S - 1, p = e->s->N;
    while (p > 0) {
        const Lab *L = &e->pool[i];
        if (L->tr < 0) {
            k--;
        } else {
            p--;
            mode[p] = e->s->tr[L->tr].mode;
            stage[p] = k;
        }
        i = L->par;
    }
}

static void ex_setup(Ex *e, Search *s, const Cand *c) {
    memset(e, 0, sizeof *e);
    e->s = s;
    e->c = c;
    e->cap = s->g->cluster.memory;
    search_set_inflight(s, c);
    int ntr = s->tr_off[s->N];
    e->tx = search_xcalloc((size_t)ntr + 1, sizeof(TrEx));
    for (int p = 0; p < s->N; p++)
        for (int q = s->tr_off[p]; q < s->tr_off[p + 1]; q++)
            e->tx[q] = tr_extra(s, c, p, &s->tr[q]);
    e->cbase = search_xcalloc((size_t)s->N + 1, sizeof(int64_t));
    e->tbase = search_xcalloc((size_t)s->N + 1, sizeof(int64_t));
}

static void ex_free(Ex *e) {
    void *ptrs[] = {e->tx, e->pool, e->tmp, e->coff, e->cbase, e->tbase, e->tn};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        free(ptrs[i]);
}

/* The smallest feasible bound: from `hi` (feasible, or INFINITY) down to `lo`. */
static double ex_bisect(Ex *e, double lo, double hi, double tol) {
    if (hi == INFINITY) {
        if (ex_run(e, INFINITY) < 0) return INFINITY;
        hi = fmax(lo * 1.25, 1e-300);
        while (ex_run(e, hi) < 0)
            lo = hi, hi *= 2;
    }
    for (int it = 0; it < 200 && hi - lo > tol * hi; it++) {
        double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi) break;
        if (ex_run(e, mid) >= 0)
            hi = mid;
        else
            lo = mid;
    }
    return hi;
}

double search_solve_exact(Search *s, const Cand *c, double lo, double bound, int *mode, int *stage,
                          bool *trunc) {
    Ex e;
    ex_setup(&e, s, c);
    double hi = INFINITY;
    if (bound < INFINITY) {
        hi = bound * (1 + REL_EPS);
        if (ex_run(&e, hi) < 0) hi = -1;
    }
    double tau = hi < 0 ? INFINITY : ex_bisect(&e, lo, hi, c->loose ? 1e-4 : BISECT_EPS);
    int64_t last = tau < INFINITY ? ex_run(&e, tau) : -1;
    if (last >= 0) ex_backtrack(&e, last, mode, stage);
    *trunc = e.trunc;
    ex_free(&e);
    return last >= 0 ? tau : INFINITY;
}
