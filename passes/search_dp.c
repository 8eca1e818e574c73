/*
 * search_dp.c: the sweeps of the plan search — for one candidate, the cheapest stage cuts
 * and modes as a min–max path problem over the layouts of the live activations.
 *
 * States are the layouts of the activations live between two nodes: each one's current layout
 * and the other layouts the stage holds it in (search_internal.h; residual graphs keep 1–3
 * live). cand_tables() builds the reachable states of every point and the transitions between
 * them (search_trans: a node in one mode, with the reshards its inputs need) with their costs,
 * the cost of cutting the pipeline in each state, and the state each cut starts the next stage
 * in (st_cut: every value held in its current layout only). For a bound τ,
 * dp_run() sweeps the nodes once keeping, per (stage index, state), the least load of the
 * current stage that stays ≤ τ, and offers a cut at every point; only a window of stage
 * indices is possible at each point (the cheapest cost before and after it must fit in the
 * stages on either side), which keeps a sweep near O(N · transitions) for balanced plans.
 *
 * search_solve_cand() bisects τ between the candidate's lower bound and a feasible bound to
 * 1e-11 relative, then records a last sweep and walks its choices back (dp_backtrack). A
 * candidate that cannot beat the best plan so far is dismissed after one sweep at that bound.
 * Within a sweep modes are tried in their order (data, col, row) and a cut only replaces a
 * strictly better load, so equal costs keep data and no cut.
 *
 * Memory: the same sweep either drops every path whose stage memory would exceed the device's
 * (mem_cap; search_solve_capped, a heuristic since it keeps one path per state), or takes
 * stage memory itself as the load (mem_mode; search_solve_mem, the leanest plan). Stage
 * memory counts parameters with their gradients and optimizer state, and the activations of
 * min(S − k, m) micro-batches in flight under 1F1B.
 */
#include "search_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ───────────────────────────── transitions ───────────────────────────── */

/* One value's LIVE_BITS of a state code: its current layout in the low 2 bits, then a bit for
 * each other layout it is held in (those below cur, then those above, ascending). */
static unsigned live_enc(unsigned cur, unsigned have) {
    unsigned code = cur;
    for (unsigned l = 0, i = 0; l < 4; l++) {
        if (l == cur) continue;
        if (have >> l & 1u) code |= 1u << (2 + i);
        i++;
    }
    return code;
}

static unsigned live_have(unsigned code) {
    unsigned cur = code & 3u, have = 1u << cur;
    for (unsigned l = 0, i = 0; l < 4; l++) {
        if (l == cur) continue;
        if (code >> (2 + i) & 1u) have |= 1u << l;
        i++;
    }
    return have;
}

#define LIVE_MASK ((1u << LIVE_BITS) - 1u)

void search_decode(unsigned code, int n, uint8_t *lay) {
    for (int j = 0; j < n; j++)
        lay[j] = (uint8_t)((code >> (LIVE_BITS * j)) & 3u);
}

void search_decode_have(unsigned code, int n, uint8_t *have) {
    for (int j = 0; j < n; j++)
        have[j] = (uint8_t)live_have((code >> (LIVE_BITS * j)) & LIVE_MASK);
}

unsigned search_cut_code(unsigned code, int n) {
    unsigned out = 0;
    for (int j = 0; j < n; j++)
        out |= ((code >> (LIVE_BITS * j)) & 3u) << (LIVE_BITS * j);
    return out;
}

Layout search_resh_from(const Search *s, int p, int v, unsigned have, Layout cur, Layout to) {
    Layout best = LAYOUT__COUNT;
    double bt = INFINITY;
    for (int i = -1; i < 4; i++) {
        Layout l = i < 0 ? cur : (Layout)i;
        if ((i >= 0 && l == cur) || !(have >> l & 1u)) continue;
        double tm = s->resh[v * 16 + l * 4 + to];
        if (s->rcfix[p]) tm += s->reshf[v * 16 + l * 4 + to]; /* run again */
        if (tm < bt) bt = tm, best = l;
    }
    return best;
}

/* Applies node p in mode mi to state `code` (the values live before it): writes the state
 * after it to *out and the bytes of the copies it makes to *copies; returns the node's cost
 * (base + K·reshards), or −1 when a needed layout change is impossible. */
double search_trans(const Search *s, const Cand *c, int p, int mi, unsigned code, unsigned *out,
                    double *copies) {
    const IrNode *n = IR_NODE(s->g, p);
    const Mode *M = &s->modes[p * MAX_MODES + mi];
    uint8_t lay[MAX_LIVE], have[MAX_LIVE];
    search_decode(code, s->live_n[p], lay);
    search_decode_have(code, s->live_n[p], have);
    double r = 0, made = 0;
    for (int k = 0; k < n->ninputs; k++) {
        int pos = s->in_pos[p * IR_MAX_INPUTS + k];
        if (pos < 0) {
            /* inputs and labels: every rank reads the slice it needs; never a partial sum */
            if (M->in[k] == LAYOUT_P) return -1;
            continue;
        }
        if (k == 1 && n->inputs[1] == n->inputs[0]) continue;
        int v = n->inputs[k];
        Layout to = M->in[k];
        if (!(have[pos] >> to & 1u)) {
            Layout from = search_resh_from(s, p, v, have[pos], (Layout)lay[pos], to);
            if (from == LAYOUT__COUNT) return -1;
            r += s->resh[v * 16 + from * 4 + to];
            if (s->rcfix[p]) r += s->reshf[v * 16 + from * 4 + to]; /* run again */
            made += (double)search_local_bytes(s, c, v, to);
            have[pos] = (uint8_t)(have[pos] | 1u << to);
        }
        lay[pos] = (uint8_t)to;
    }
    unsigned cd = 0;
    const int *src = &s->next_src[s->live_off[p + 1]];
    for (int j = 0; j < s->live_n[p + 1]; j++) {
        unsigned l =
            src[j] < 0 ? live_enc(M->out, 1u << M->out) : live_enc(lay[src[j]], have[src[j]]);
        cd |= l << (LIVE_BITS * j);
    }
    *out = cd;
    if (copies) *copies = made;
    return s->mc[p * MAX_MODES + mi].base + c->K * r;
}

double search_cut_left(const Search *s, const Cand *c, int p, const uint8_t *lay) {
    double t = 0;
    for (int j = 0; j < s->live_n[p]; j++)
        t += s->cutf[s->live[s->live_off[p] + j] * 4 + lay[j]];
    return c->K * t;
}

double search_cut_right(const Search *s, const Cand *c, int p, const uint8_t *lay) {
    double t = 0;
    for (int j = 0; j < s->live_n[p]; j++)
        t += s->cutb[s->live[s->live_off[p] + j] * 4 + lay[j]];
    return c->K * t;
}

/* ───────────────────────────── the sweep ───────────────────────────── */

/* Grows an array to hold `need` items of `item` bytes (capacity doubling); exits on OOM. */
void *search_grow(void *p, size_t *cap, size_t need, size_t item) {
    if (need <= *cap) return p;
    size_t nc = *cap ? *cap : 256;
    while (nc < need)
        nc *= 2;
    void *np = realloc(p, nc * item);
    if (!np) {
        fprintf(stderr, "mpcc: fatal: out of memory in the plan search\n");
        exit(3);
    }
    *cap = nc;
    return np;
}

/* The cut costs of the new states off1..nstates−1 of point p (time for the stage that ends
 * and the one that begins, bytes received for memory). */
static void state_cut_costs(Search *s, const Cand *c, int p, int off1, size_t nstates) {
    uint8_t lay[MAX_LIVE];
    s->cl = search_grow(s->cl, &s->cl_cap, nstates, sizeof(double));
    s->cr = search_grow(s->cr, &s->cr_cap, nstates, sizeof(double));
    s->crm = search_grow(s->crm, &s->crm_cap, nstates, sizeof(double));
    for (int j = off1; j < (int)nstates; j++) {
        search_decode(s->st_code[j], s->live_n[p], lay);
        s->cl[j] = search_cut_left(s, c, p, lay);
        s->cr[j] = search_cut_right(s, c, p, lay);
        double recv = 0;
        for (int q = 0; q < s->live_n[p]; q++)
            recv += (double)search_local_bytes(s, c, s->live[s->live_off[p] + q], (Layout)lay[q]);
        s->crm[j] = recv;
    }
}

/* Starts a point's hash of state codes, with room for `need` states at half load. */
static void st_hash_begin(Search *s, size_t need) {
    size_t cap = s->st_hcap ? s->st_hcap : 64;
    while (cap < 2 * need)
        cap *= 2;
    if (cap != s->st_hcap) {
        free(s->st_hkey);
        free(s->st_hgen);
        free(s->st_hval);
        s->st_hkey = search_xcalloc(cap, sizeof(unsigned));
        s->st_hgen = search_xcalloc(cap, sizeof(unsigned));
        s->st_hval = search_xcalloc(cap, sizeof(int));
        s->st_hcap = cap;
        s->st_gen = 0;
    }
    if (++s->st_gen == 0) { /* wrapped: forget every entry */
        memset(s->st_hgen, 0, cap * sizeof(unsigned));
        s->st_gen = 1;
    }
}

/* The index among the states off1.. of the point being built of state `cd`, added if new. */
static int st_add(Search *s, unsigned cd, int off1, size_t *nstates) {
    unsigned h = cd;
    h ^= h >> 16, h *= 0x7feb352du, h ^= h >> 15, h *= 0x846ca68bu, h ^= h >> 16;
    size_t mask = s->st_hcap - 1, i = h & mask;
    while (s->st_hgen[i] == s->st_gen && s->st_hkey[i] != cd)
        i = (i + 1) & mask;
    if (s->st_hgen[i] == s->st_gen) return s->st_hval[i];
    s->st_code = search_grow(s->st_code, &s->st_cap, *nstates + 1, sizeof(unsigned));
    s->st_code[*nstates] = cd;
    s->st_hgen[i] = s->st_gen;
    s->st_hkey[i] = cd;
    s->st_hval[i] = (int)*nstates - off1;
    return (int)(*nstates)++ - off1;
}

/* The states off1..nstates−1 of point p each with the state a cut there starts the next stage
 * in (added to the point when no path reaches it otherwise: a cut is how one does). */
static void state_cuts(Search *s, int p, int off1, size_t *nstates) {
    for (size_t j = (size_t)off1; j < *nstates; j++) {
        int jc = p < s->N ? st_add(s, search_cut_code(s->st_code[j], s->live_n[p]), off1, nstates)
                          : (int)j - off1;
        s->st_cut = search_grow(s->st_cut, &s->stc_cap, *nstates, sizeof(int));
        s->st_cut[j] = jc;
    }
}

/* The transitions of node p from each of its states, appended to s->tr; the states they reach
 * are added as point p + 1's. */
static void node_trans(Search *s, const Cand *c, int p, size_t *nstates, size_t *ntr) {
    int off = s->st_off[p], cnt = s->st_cnt[p], off1 = (int)*nstates;
    st_hash_begin(s, 2 * (size_t)cnt * (size_t)s->nmodes[p] + 1);
    for (int i = 0; i < cnt; i++) {
        for (int mi = 0; mi < s->nmodes[p]; mi++) {
            unsigned cd;
            double copies;
            double w = search_trans(s, c, p, mi, s->st_code[off + i], &cd, &copies);
            if (w < 0) continue;
            int j = st_add(s, cd, off1, nstates);
            s->tr = search_grow(s->tr, &s->tr_cap, *ntr + 1, sizeof(Tr));
            const ModeCost *mc = &s->mc[p * MAX_MODES + mi];
            s->tr[(*ntr)++] = (Tr){i,
                                   j,
                                   mi,
                                   w,
                                   (double)(mc->param_mem + mc->grad_mem + mc->optim_mem),
                                   (double)mc->act_bytes + copies};
        }
    }
    state_cuts(s, p + 1, off1, nstates);
}

/* The reachable states of every point and the transitions between them, with the cut
 * costs of each state; false when some point has no reachable state (no plan). */
static bool cand_tables(Search *s, const Cand *c) {
    size_t nstates = 1, ntr = 0;
    s->st_code = search_grow(s->st_code, &s->st_cap, 1, sizeof(unsigned));
    s->st_cut = search_grow(s->st_cut, &s->stc_cap, 1, sizeof(int));
    s->cl = search_grow(s->cl, &s->cl_cap, 1, sizeof(double));
    s->cr = search_grow(s->cr, &s->cr_cap, 1, sizeof(double));
    s->crm = search_grow(s->crm, &s->crm_cap, 1, sizeof(double));
    s->st_code[0] = 0;
    s->st_cut[0] = 0;
    s->cl[0] = s->cr[0] = s->crm[0] = 0;
    s->st_off[0] = 0;
    s->st_cnt[0] = 1;
    for (int p = 0; p < s->N; p++) {
        int off1 = (int)nstates;
        s->tr_off[p] = (int)ntr;
        node_trans(s, c, p, &nstates, &ntr);
        s->st_off[p + 1] = off1;
        s->st_cnt[p + 1] = (int)nstates - off1;
        state_cut_costs(s, c, p + 1, off1, nstates);
        if (s->st_cnt[p + 1] == 0) return false;
    }
    s->tr_off[s->N] = (int)ntr;
    return true;
}

/* The stage indices a plan with every stage ≤ tau can be at when it reaches point p:
 * the cheapest cost of the nodes before p needs k+1 stages, the rest S−k stages. */
void search_dp_windows(Search *s, const Cand *c, double tau) {
    for (int p = 0; p <= s->N; p++) {
        int lo = c->S - 1 - (s->N - p), hi = c->S - 1 < p ? c->S - 1 : p;
        double gap = tau - c->cutmin; /* what a stage may spend beyond one cut */
        if (tau < INFINITY && gap > 0 && !s->mem_mode) {
            /* stages 0..k cost ≥ pre[p] + k·cutmin, each ≤ tau; stages k..S−1 likewise */
            double x = (s->pre[p] * (1 - 1e-9) - tau) / gap;
            double y = c->S - (s->suf[p] * (1 - 1e-9) - c->cutmin) / gap;
            if (x > lo) lo = (int)ceil(x);
            if (y < hi) hi = (int)floor(y);
        }
        if (lo < 0) lo = 0;
        s->kmin[p] = lo;
        s->kmax[p] = hi;
    }
}

static void dp_reserve(Search *s, const Cand *c, bool record) {
    int maxns = 1;
    for (int p = 0; p <= s->N; p++)
        if (s->st_cnt[p] > maxns) maxns = s->st_cnt[p];
    size_t need = (size_t)c->S * (size_t)maxns;
    s->cur = search_grow(s->cur, &s->dp_cap, need, sizeof(double));
    size_t cap2 = s->dp_cap2;
    s->nxt = search_grow(s->nxt, &cap2, need, sizeof(double));
    s->dp_cap2 = cap2;
    if (s->mem_cap < INFINITY) {
        s->curm = search_grow(s->curm, &s->mcap, need, sizeof(double));
        s->nxtm = search_grow(s->nxtm, &s->mcap2, need, sizeof(double));
    }
    if (!record) return;
    size_t tot = 0;
    for (int p = 0; p < s->N; p++) {
        s->rec_off[p] = tot;
        int rows = s->kmax[p + 1] - s->kmin[p + 1] + 1;
        if (rows > 0) tot += (size_t)rows * (size_t)s->st_cnt[p + 1];
    }
    s->from = search_grow(s->from, &s->rec_cap, tot + 1, sizeof(int));
    s->cutfrom = search_grow(s->cutfrom, &s->flag_cap, tot + 1, sizeof(int));
}

/* Node p: from the states before it (rows k of window p) to the states after it. */
static void dp_node(Search *s, int p, double tau, bool record) {
    int ns = s->st_cnt[p], ns1 = s->st_cnt[p + 1];
    int lo = s->kmin[p] > s->kmin[p + 1] ? s->kmin[p] : s->kmin[p + 1];
    int hi = s->kmax[p] < s->kmax[p + 1] ? s->kmax[p] : s->kmax[p + 1];
    const Tr *tr = s->tr + s->tr_off[p];
    int ntr = s->tr_off[p + 1] - s->tr_off[p];
    int *from = record ? s->from + s->rec_off[p] : NULL;
    for (int k = lo; k <= hi; k++) {
        if (s->pin[p] != IR_NO_STAGE && s->pin[p] != k) continue;
        const double *cur = s->cur + (size_t)(k - s->kmin[p]) * ns;
        double *nxt = s->nxt + (size_t)(k - s->kmin[p + 1]) * ns1;
        int *fr = from ? from + (size_t)(k - s->kmin[p + 1]) * ns1 : NULL;
        double infl = s->mem_mode || s->mem_cap < INFINITY ? s->infl[k] : 0;
        if (s->mem_cap < INFINITY) {
            const double *curm = s->curm + (size_t)(k - s->kmin[p]) * ns;
            double *nxtm = s->nxtm + (size_t)(k - s->kmin[p + 1]) * ns1;
            for (int e = 0; e < ntr; e++) {
                double l = cur[tr[e].from];
                if (l == INFINITY) continue;
                double nl = l + tr[e].w, nm = curm[tr[e].from] + tr[e].ms + tr[e].ma * infl;
                int to = tr[e].to;
                if (nl > tau || nm > s->mem_cap) continue;
                if (nl < nxt[to] || (nl == nxt[to] && nm < nxtm[to])) {
                    nxt[to] = nl;
                    nxtm[to] = nm;
                    if (fr) fr[to] = s->tr_off[p] + e;
                }
            }
            continue;
        }
        for (int e = 0; e < ntr; e++) {
            double l = cur[tr[e].from];
            if (l == INFINITY) continue;
            double nl = l + (s->mem_mode ? tr[e].ms + tr[e].ma * infl : tr[e].w);
            if (nl <= tau && nl < nxt[tr[e].to]) {
                nxt[tr[e].to] = nl;
                if (fr) fr[tr[e].to] = s->tr_off[p] + e;
            }
        }
    }
}

/* A cut at point p (before node p): stage k ends, stage k+1 starts in the state the cut
 * leaves (st_cut: each value in the layout sent). */
static void dp_cut(Search *s, const Cand *c, int p, double tau, bool record) {
    int ns = s->st_cnt[p], off = s->st_off[p];
    int *flag = record ? s->cutfrom + s->rec_off[p - 1] : NULL;
    int hi = s->kmax[p] < c->S - 1 ? s->kmax[p] : c->S - 1;
    for (int k = hi - 1; k >= s->kmin[p]; k--) {
        const double *row = s->nxt + (size_t)(k - s->kmin[p]) * ns;
        double *next = s->nxt + (size_t)(k + 1 - s->kmin[p]) * ns;
        int *fl = flag ? flag + (size_t)(k + 1 - s->kmin[p]) * ns : NULL;
        for (int j = 0; j < ns; j++) {
            double l = row[j];
            int jc = s->st_cut[off + j];
            if (l == INFINITY || l + (s->mem_mode ? 0 : s->cl[off + j]) > tau) continue;
            double r = s->mem_mode ? s->crm[off + j] * s->infl[k + 1] : s->cr[off + j];
            if (s->mem_cap < INFINITY) {
                double rm = s->crm[off + j] * s->infl[k + 1];
                double *nm = s->nxtm + (size_t)(k + 1 - s->kmin[p]) * ns;
                if (rm > s->mem_cap || r > tau) continue;
                if (r < next[jc] || (r == next[jc] && rm < nm[jc])) {
                    next[jc] = r;
                    nm[jc] = rm;
                    if (fl) fl[jc] = j + 1;
                }
                continue;
            }
            if (r <= tau && r < next[jc]) {
                next[jc] = r;
                if (fl) fl[jc] = j + 1;
            }
        }
    }
}

/* One sweep: is there a plan of candidate `c` whose every stage costs ≤ tau? */
static bool dp_run(Search *s, const Cand *c, double tau, bool record) {
    search_dp_windows(s, c, tau);
    dp_reserve(s, c, record);
    if (s->kmin[0] > 0) return false;
    for (int k = s->kmin[0]; k <= s->kmax[0]; k++) {
        s->cur[k - s->kmin[0]] = k == 0 ? 0 : INFINITY;
        if (s->mem_cap < INFINITY) s->curm[k - s->kmin[0]] = 0;
    }
    for (int p = 0; p < s->N; p++) {
        int rows = s->kmax[p + 1] - s->kmin[p + 1] + 1;
        if (rows <= 0) return false;
        size_t n1 = (size_t)rows * (size_t)s->st_cnt[p + 1];
        for (size_t i = 0; i < n1; i++)
            s->nxt[i] = INFINITY;
        if (record) {
            memset(s->from + s->rec_off[p], 0xff, n1 * sizeof(int));
            memset(s->cutfrom + s->rec_off[p], 0, n1 * sizeof(int));
        }
        dp_node(s, p, tau, record);
        if (p + 1 < s->N) dp_cut(s, c, p + 1, tau, record);
        double *t = s->cur;
        s->cur = s->nxt;
        s->nxt = t;
        size_t ct = s->dp_cap;
        s->dp_cap = s->dp_cap2;
        s->dp_cap2 = ct;
        if (s->mem_cap < INFINITY) {
            t = s->curm;
            s->curm = s->nxtm;
            s->nxtm = t;
            ct = s->mcap;
            s->mcap = s->mcap2;
            s->mcap2 = ct;
        }
    }
    double end = s->kmax[s->N] == c->S - 1 ? s->cur[c->S - 1 - s->kmin[s->N]] : INFINITY;
    return end < INFINITY && end <= tau;
}

/* Walks the recorded choices back from the end into mode[] and stage[]. */
static void dp_backtrack(const Search *s, const Cand *c, int *mode, int *stage) {
    int k = c->S - 1, j = 0;
    for (int p = s->N - 1; p >= 0; p--) {
        int ns1 = s->st_cnt[p + 1];
        size_t at = s->rec_off[p] + (size_t)(k - s->kmin[p + 1]) * ns1 + j;
        if (p + 1 < s->N && s->cutfrom[at]) {
            j = s->cutfrom[at] - 1;
            k--;
            at = s->rec_off[p] + (size_t)(k - s->kmin[p + 1]) * ns1 + j;
        }
        const Tr *t = &s->tr[s->from[at]];
        mode[p] = t->mode;
        stage[p] = k;
        j = t->from;
    }
}

/* Prefix and suffix sums of each node's cheapest cost, for the stage windows. */
static void cand_bounds(Search *s) {
    s->pre[0] = 0;
    for (int p = 0; p < s->N; p++) {
        double best = INFINITY;
        for (int i = 0; i < s->nmodes[p]; i++)
            best = fmin(best, s->mc[p * MAX_MODES + i].base);
        s->pre[p + 1] = s->pre[p] + best;
    }
    for (int p = 0; p <= s->N; p++)
        s->suf[p] = s->pre[s->N] - s->pre[p];
}

/* The optimal time of candidate `c` (INFINITY if it has no plan or none faster than
 * `bound`), with its choices. One sweep at the bound dismisses a candidate that cannot
 * beat the best plan so far; the bisection stops as soon as it cannot either. */
double search_solve_cand(Search *s, const Cand *c, double bound, bool wins_ties, int *mode,
                         int *stage) {
    if (!cand_tables(s, c)) return INFINITY;
    cand_bounds(s);
    double lo = c->lb, hi;
    if (bound < INFINITY) {
        hi = bound * (1 + REL_EPS);
        if (!dp_run(s, c, hi, false)) return INFINITY;
        /* a tie: lost, not worth the bisection; won, the plan at the bound is it */
        if (!dp_run(s, c, bound * (1 - REL_EPS), false)) {
            if (!wins_ties) return INFINITY;
            lo = hi;
        }
    } else {
        hi = fmax(c->lb * 1.25, 1e-300);
        int guard = 0;
        while (!dp_run(s, c, hi, false)) {
            if (++guard > 64) {
                if (!dp_run(s, c, INFINITY, false)) return INFINITY;
                guard = 0;
            }
            lo = hi;
            hi *= 2;
        }
    }
    double tol = c->loose ? 1e-4 : BISECT_EPS;
    for (int it = 0; it < 200 && hi - lo > tol * hi; it++) {
        double mid = 0.5 * (lo + hi);
        if (mid <= lo || mid >= hi) break;
        if (dp_run(s, c, mid, false))
            hi = mid;
        else
            lo = mid;
    }
    dp_run(s, c, hi, true);
    dp_backtrack(s, c, mode, stage);
    return hi;
}

/* When the fastest plan of a candidate does not fit: the plan whose fullest stage holds the
 * least (parameters, optimizer state, and activations × micro-batches in flight; buffers
 * are left to the evaluation), by the same sweep with memory as the stage's load. */
void search_set_inflight(Search *s, const Cand *c) {
    s->infl = search_grow(s->infl, &s->infl_cap, (size_t)c->S, sizeof(double));
    for (int k = 0; k < c->S; k++)
        s->infl[k] = c->S - k < c->m ? c->S - k : c->m;
}

/* The smallest bottleneck the sweep can meet, found by doubling `hi` from `lo` until a plan
 * exists and bisecting to relative tolerance `tol`; leaves that plan's choices in
 * mode/stage. False when no plan exists at any bottleneck. */
static bool bisect_plan(Search *s, const Cand *c, double lo, double hi, double tol, int *mode,
                        int *stage) {
    bool ok = dp_run(s, c, INFINITY, false);
    while (ok && !dp_run(s, c, hi, false)) {
        lo = hi;
        hi *= 2;
    }
    for (int it = 0; ok && it < 200 && hi - lo > tol * hi; it++) {
        double mid = 0.5 * (lo + hi);
        if (dp_run(s, c, mid, false))
            hi = mid;
        else
            lo = mid;
    }
    if (ok) {
        dp_run(s, c, hi, true);
        dp_backtrack(s, c, mode, stage);
    }
    return ok;
}

bool search_solve_mem(Search *s, const Cand *c, int *mode, int *stage) {
    search_set_inflight(s, c);
    s->mem_mode = true;
    bool ok = bisect_plan(s, c, 0, 1, 1e-6, mode, stage);
    s->mem_mode = false;
    return ok;
}

/* The fastest plan the time sweep finds when every path whose stage memory (as in
 * solve_mem) would exceed the device's is dropped: per state it keeps the fastest path that
 * fits, which is not always the one a later layer needs, so this is a heuristic. */
bool search_solve_capped(Search *s, const Cand *c, int *mode, int *stage) {
    search_set_inflight(s, c);
    s->mem_cap = s->g->cluster.memory;
    bool ok = bisect_plan(s, c, c->lb, fmax(c->lb * 1.25, 1e-300), 1e-9, mode, stage);
    s->mem_cap = INFINITY;
    return ok;
}
