/*
 * search.c: the plan search (pass "plan"): mesh, micro-batches, pipeline cuts and a
 * strategy per layer, chosen to minimise the predicted step time (docs/cost-model.md).
 *
 * The plan space. A candidate is a mesh S×d×t = devices with a micro-batch count m
 * (B % (d·m) == 0; train.microbatches > 0 pins m). Within a candidate every node gets a
 * mode — a strategy with the layouts it reads and writes (node_modes) — and a stage, the
 * stages being contiguous, non-empty and in node order. Layouts flow along the graph: a
 * value has one current layout; a consumer that needs another pays the layout change and
 * the value keeps the new layout for later consumers ("replace" semantics).
 *
 * The objective. Per node and mode the cost model gives a per-micro-batch time (compute,
 * the layer's own collective, the reshards of its inputs) and a per-step gradient sync
 * whose unhidden part u is the sync less the target's overlap share of what runs beside the
 * layer's own backward compute (the window the following backward work offers). A stage's
 * cost is
 *     c_s = K·(Σ node times + cut send/recv) + Σ u,   K = m + S − 1,
 * and the predicted step time is max_s c_s: the 1F1B pipeline runs K slots of the slowest
 * stage, and a stage's unhidden sync is added after its slots. Because every term is a sum
 * along the node order, the optimum over cuts and modes is a min–max path problem.
 *
 * The algorithm, per candidate (search_dp.c). States are the layouts of the activations
 * live between two nodes; one sweep over the nodes answers "is there a plan whose every stage
 * costs ≤ τ?", and bisection on τ between a lower bound and a feasible bound gives the exact
 * optimum to 1e-11 relative. Candidates are visited in order of a lower bound; one whose
 * bound exceeds the best time so far is skipped, one that cannot reach the best time is
 * dismissed after a single sweep at it, so few candidates are bisected.
 *
 * Ties: between candidates whose times differ by at most 1e-12 relative, fewer stages win,
 * then the smaller t (more data parallelism), then fewer micro-batches (cand_before). Within
 * a sweep modes are tried data, col, row and a cut only replaces a strictly better load, so
 * equal costs keep data and no cut.
 *
 * Memory is not a resource of the time sweep: the best plan of each candidate is evaluated
 * in full, and when a device's memory exceeds cluster.memory (or fits only by recomputing) the
 * candidate is solved again by the exact sweep under the memory limit (search_exact.c), so the
 * search is exact when memory binds too; tests/unit/test_search_mem.c checks it against brute
 * force. The pure data, tensor and pipeline plans are solved the same way and the chosen plan
 * is replaced by one of them should it ever be faster, so it never is.
 *
 * Where the parts live. This file holds the graph facts computed once (values, liveness),
 * the candidates, their order and pruning, and the pass itself. The rest of the search is
 * split by concept, sharing the types of search_internal.h: the modes and per-layer costs
 * of a candidate in cost.c, the layout graph and the sweeps in search_dp.c, the evaluation
 * of a complete plan in search_eval.c, and the reason sentences and the errors that
 * explain a missing plan in search_why.c. The exhaustive oracle the tests compare against
 * is tests/unit/brute.c.
 */
#include "search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ───────────────────────────── the graph, once ───────────────────────────── */

static int64_t value_feat(const IrValue *v) {
    if (v->shape.rank == 4) return v->shape.d[1];
    if (v->shape.rank >= 2) return v->shape.d[v->shape.rank - 1];
    return 1;
}

void *search_xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "mpcc: fatal: out of memory in the plan search\n");
        exit(3);
    }
    return p;
}

static void search_values(Search *s) {
    IrGraph *g = s->g;
    for (int v = 0; v < s->V; v++) {
        const IrValue *val = IR_VALUE(g, v);
        s->act[v] = val->kind == VAL_ACT;
        s->last_use[v] = -1;
        int64_t numel = ir_shape_numel(&val->shape);
        int64_t batch = val->shape.rank > 0 ? val->shape.d[0] : 1;
        int64_t size = val->dtype == DT_F32 ? s->elem : (int64_t)ir_dtype_size(val->dtype);
        s->sample_bytes[v] = batch > 0 ? numel / batch * size : 0;
        s->feat[v] = value_feat(val);
    }
    int *uses = search_xcalloc((size_t)s->V, sizeof(int));
    for (int i = 0; i < s->N; i++) {
        const IrNode *n = IR_NODE(g, i);
        bool ng = n->nparams > 0;
        for (int k = 0; k < n->ninputs; k++) {
            s->last_use[n->inputs[k]] = i;
            if (s->needs_grad[n->inputs[k]]) ng = true;
            uses[n->inputs[k]]++;
        }
        s->needs_grad[n->output] = ng;
        if (n->op == OP_CROSS_ENTROPY) s->vocab_logits[n->inputs[0]] = true;
    }
    for (int v = 0; v < s->V; v++)
        s->vocab_logits[v] = s->vocab_logits[v] && uses[v] == 1;
    free(uses);
}

/* ───────────────────────────── repeated blocks ───────────────────────────── */

/* Values v and w cost the same in every layout (value_costs): activations alike in bytes per
 * sample, features and gradient. */
static bool same_value(const Search *s, int v, int w) {
    return s->act[v] && s->act[w] && s->sample_bytes[v] == s->sample_bytes[w] &&
           s->feat[v] == s->feat[w] && s->needs_grad[v] == s->needs_grad[w];
}

static bool same_shape(const Shape *a, const Shape *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->d[i] != b->d[i]) return false;
    return true;
}

/* An input or output of two nodes that every mode cost reads alike (cost.c: shapes, bytes,
 * features, gradients, and the logits' padding rule). */
static bool same_io(const Search *s, int v, int w) {
    const IrValue *a = IR_VALUE(s->g, v), *b = IR_VALUE(s->g, w);
    return a->dtype == b->dtype && a->kind == b->kind && same_shape(&a->shape, &b->shape) &&
           s->sample_bytes[v] == s->sample_bytes[w] && s->feat[v] == s->feat[w] &&
           s->needs_grad[v] == s->needs_grad[w] && s->vocab_logits[v] == s->vocab_logits[w];
}

/* Nodes p and q have the same modes and mode costs in every candidate (search_node_modes,
 * mode_cost; the recomputation flag is compared where they are used). */
static bool same_node(const Search *s, int p, int q) {
    const IrNode *a = IR_NODE(s->g, p), *b = IR_NODE(s->g, q);
    if (a->op != b->op || a->ninputs != b->ninputs || a->nparams != b->nparams ||
        a->flops_fwd != b->flops_fwd || a->flops_bwd != b->flops_bwd ||
        a->annot.has_strat != b->annot.has_strat ||
        (a->annot.has_strat && a->annot.strat != b->annot.strat) ||
        memcmp(a->args, b->args, sizeof a->args) != 0 || !same_io(s, a->output, b->output))
        return false;
    for (int k = 0; k < a->ninputs; k++)
        if (!same_io(s, a->inputs[k], b->inputs[k]) ||
            (k > 0 && (a->inputs[k] == a->inputs[0]) != (b->inputs[k] == b->inputs[0])))
            return false;
    for (int i = 0; i < a->nparams; i++) {
        const IrParam *x = IR_PARAM(s->g, a->first_param + i),
                      *y = IR_PARAM(s->g, b->first_param + i);
        if (x->role != y->role || !same_shape(&x->shape, &y->shape)) return false;
    }
    return true;
}

/* same_node and same_value: each node (value) against the distinct ones before it, so
 * O(N · distinct) comparisons (a GPT has a few dozen distinct layers). */
static void search_same(Search *s) {
    int *reps = search_xcalloc((size_t)(s->N > s->V ? s->N : s->V), sizeof(int)), nr = 0;
    for (int p = 0; p < s->N; p++) {
        s->same_node[p] = -1;
        for (int i = 0; i < nr && s->same_node[p] < 0; i++)
            if (same_node(s, p, reps[i])) s->same_node[p] = reps[i];
        if (s->same_node[p] < 0) reps[nr++] = p;
    }
    nr = 0;
    for (int v = 0; v < s->V; v++) {
        s->same_value[v] = -1;
        for (int i = 0; s->act[v] && i < nr && s->same_value[v] < 0; i++)
            if (same_value(s, v, reps[i])) s->same_value[v] = reps[i];
        if (s->act[v] && s->same_value[v] < 0) reps[nr++] = v;
    }
    free(reps);
}

/* Live activations at each point: a value is live from just after its producer up to and
 * including its last consumer. Lists are sorted by value index; O(values + Σ live). */
static bool search_live(Search *s) {
    IrGraph *g = s->g;
    int *cnt = search_xcalloc((size_t)s->N + 1, sizeof(int)),
        *tmp = search_xcalloc((size_t)s->V, sizeof(int));
    for (int v = 0; v < s->V; v++) {
        int prod = IR_VALUE(g, v)->producer;
        tmp[v] = -1;
        if (!s->act[v] || prod < 0) continue;
        for (int p = prod + 1; p <= s->last_use[v]; p++)
            cnt[p]++;
    }
    int total = 0;
    for (int p = 0; p <= s->N; p++) {
        if (cnt[p] > MAX_LIVE) {
            const IrNode *nd = IR_NODE(g, p < s->N ? p : s->N - 1);
            diag_error(s->diag, nd->loc,
                       "%d values are live at once before '%s'; the planner handles at most %d",
                       cnt[p], nd->name, MAX_LIVE);
            free(cnt);
            free(tmp);
            return false;
        }
        s->live_off[p] = total;
        s->live_n[p] = cnt[p];
        total += cnt[p];
        if (cnt[p] > s->maxlive) s->maxlive = cnt[p];
        cnt[p] = 0;
    }
    s->live = search_xcalloc((size_t)total + 1, sizeof(int));
    s->next_src = search_xcalloc((size_t)total + 1, sizeof(int));
    for (int v = 0; v < s->V; v++) {
        int prod = IR_VALUE(g, v)->producer;
        if (!s->act[v] || prod < 0) continue;
        for (int p = prod + 1; p <= s->last_use[v]; p++)
            s->live[s->live_off[p] + cnt[p]++] = v;
    }
    for (int p = 0; p < s->N; p++) {
        const IrNode *n = IR_NODE(g, p);
        const int *lp = &s->live[s->live_off[p]], *lq = &s->live[s->live_off[p + 1]];
        for (int j = 0; j < s->live_n[p]; j++)
            tmp[lp[j]] = j;
        for (int k = 0; k < IR_MAX_INPUTS; k++)
            s->in_pos[p * IR_MAX_INPUTS + k] = k < n->ninputs ? tmp[n->inputs[k]] : -1;
        for (int j = 0; j < s->live_n[p + 1]; j++)
            s->next_src[s->live_off[p + 1] + j] = tmp[lq[j]];
        for (int j = 0; j < s->live_n[p]; j++)
            tmp[lp[j]] = -1;
    }
    free(cnt);
    free(tmp);
    return true;
}

/* The optimizer-state arenas the trainer holds per parameter: Adam's m and v; SGD's momentum,
 * even at momentum 0 (a checkpoint carries it, so a plain-SGD run resumes a run with momentum
 * and the reverse, and the C API may turn momentum on between steps). `moved`: the arenas
 * its step reads and writes (SGD without momentum none: mprt_sgd_step gets no momentum). */
static int opt_copies(const TrainCfg *t, bool moved) {
    if (t->opt == OPT_ADAM || t->opt == OPT_ADAMW) return 2;
    return !moved || t->momentum != 0.0 ? 1 : 0;
}

bool search_init(Search *s, IrGraph *g, Diag *d) {
    memset(s, 0, sizeof *s);
    s->g = g;
    s->diag = d;
    s->N = IR_NNODES(g);
    s->V = IR_NVALUES(g);
    s->B = g->train.batch;
    s->D = g->cluster.devices;
    s->opt_copies = opt_copies(&g->train, false);
    s->opt_moved = opt_copies(&g->train, true);
    /* "auto" is resolved by run_search; elsewhere (--plan-space, the device-count hints) the
     * space is priced without ZeRO */
    s->zero = g->train.zero == TRAIN_ZERO_AUTO ? 0 : (int)g->train.zero;
    s->elem = ir_float_bytes(g->train.precision);
    bool bf = g->train.precision == PRECISION_BF16 && g->cluster.flops_bf16 > 0;
    s->gemm_scale = bf && g->cluster.flops > 0 ? g->cluster.flops_bf16 / g->cluster.flops : 1.0;
    s->param_elems = 0;
    for (int i = 0; i < IR_NNODES(g); i++)
        s->param_elems += (double)IR_NODE(g, i)->param_count;
    size_t V = (size_t)s->V, N = (size_t)s->N;
    s->act = search_xcalloc(V, sizeof(bool));
    s->needs_grad = search_xcalloc(V, sizeof(bool));
    s->vocab_logits = search_xcalloc(V, sizeof(bool));
    s->same_node = search_xcalloc(N, sizeof(int));
    s->same_value = search_xcalloc(V, sizeof(int));
    s->sample_bytes = search_xcalloc(V, sizeof(int64_t));
    s->feat = search_xcalloc(V, sizeof(int64_t));
    s->last_use = search_xcalloc(V, sizeof(int));
    s->live_off = search_xcalloc(N + 1, sizeof(int));
    s->live_n = search_xcalloc(N + 1, sizeof(int));
    s->in_pos = search_xcalloc(N * IR_MAX_INPUTS, sizeof(int));
    s->pin = search_xcalloc(N, sizeof(int));
    s->nmodes = search_xcalloc(N, sizeof(int));
    s->modes = search_xcalloc(N * MAX_MODES, sizeof(Mode));
    s->mc = search_xcalloc(N * MAX_MODES, sizeof(ModeCost));
    s->resh = search_xcalloc(V * 16, sizeof(double));
    s->cutf = search_xcalloc(V * 4, sizeof(double));
    s->cutb = search_xcalloc(V * 4, sizeof(double));
    s->rec_off = search_xcalloc(N + 1, sizeof(size_t));
    s->st_off = search_xcalloc(N + 1, sizeof(int));
    s->st_cnt = search_xcalloc(N + 1, sizeof(int));
    s->tr_off = search_xcalloc(N + 1, sizeof(int));
    s->pre = search_xcalloc(N + 1, sizeof(double));
    s->suf = search_xcalloc(N + 1, sizeof(double));
    s->kmin = search_xcalloc(N + 1, sizeof(int));
    s->kmax = search_xcalloc(N + 1, sizeof(int));
    s->reshf = search_xcalloc(V * 16, sizeof(double));
    s->intern = search_xcalloc(V * 4, sizeof(uint8_t));
    s->stage_mem = search_xcalloc(N + 1, sizeof(int64_t));
    search_rc_init(s);
    s->mem_cap = INFINITY;
    for (int i = 0; i < s->N; i++)
        s->pin[i] = IR_NODE(g, i)->annot.stage;
    search_values(s);
    search_same(s);
    if (!search_live(s)) return false;
    return true;
}

void search_free(Search *s) {
    void *ptrs[] = {s->act,       s->needs_grad,   s->sample_bytes, s->feat,      s->last_use,
                    s->live_off,  s->live_n,       s->live,         s->in_pos,    s->next_src,
                    s->pin,       s->nmodes,       s->modes,        s->mc,        s->resh,
                    s->cutf,      s->cutb,         s->cur,          s->nxt,       s->from,
                    s->cutfrom,   s->rec_off,      s->st_off,       s->st_cnt,    s->st_cut,
                    s->tr_off,    s->st_code,      s->tr,           s->cl,        s->cr,
                    s->st_hkey,   s->st_hgen,      s->st_hval,      s->pre,       s->suf,
                    s->kmin,      s->kmax,         s->crm,          s->infl,      s->curm,
                    s->nxtm,      s->rcfix,        s->rc,           s->intern,    s->reshf,
                    s->stage_mem, s->vocab_logits, s->same_node,    s->same_value};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        free(ptrs[i]);
}

/* ───────────────────────────── candidates ───────────────────────────── */

void search_cand_push(CandList *l, Cand c) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        Cand *nv = search_xcalloc((size_t)l->cap, sizeof(Cand));
        if (l->n) memcpy(nv, l->v, (size_t)l->n * sizeof(Cand));
        free(l->v);
        l->v = nv;
    }
    l->v[l->n++] = c;
}

/* The micro-batch counts of a replica's batch n: its divisors up to IR_MAX_MICROBATCHES, in
 * ascending order, into ms (room for 2048: no n below 2^31 has more than 1600 divisors).
 * Found in O(√n) steps, not n — a batch of 2^31 took 17 s, 2^40 hours. Returns the count. */
static int microbatch_counts(int64_t n, int *ms) {
    int lo = 0, hi = 0, high[1024];
    for (int64_t m = 1; m * m <= n && m <= IR_MAX_MICROBATCHES; m++) {
        if (n % m) continue;
        ms[lo++] = (int)m;
        if (n / m != m && n / m <= IR_MAX_MICROBATCHES) high[hi++] = (int)(n / m);
    }
    while (hi > 0)
        ms[lo++] = high[--hi];
    return lo;
}

/* Every (S, d, t, m) of the plan space, in tie-break order: S, then t, then m ascending. */
void search_enumerate(const Search *s, CandList *out) {
    int64_t D = s->D, B = s->B, m0 = s->g->train.microbatches;
    int ms[2048];
    for (int64_t S = 1; S <= D && S <= s->N; S++) {
        if (D % S) continue;
        for (int64_t t = 1; t <= D / S; t++) {
            if ((D / S) % t) continue;
            int64_t d = D / S / t;
            if (B % d) continue;
            int nm = microbatch_counts(B / d, ms);
            for (int i = 0; i < nm; i++) {
                if (m0 > 0 && ms[i] != m0) continue;
                Cand c;
                memset(&c, 0, sizeof c);
                c.S = (int)S;
                c.d = (int)d;
                c.t = (int)t;
                c.m = ms[i];
                search_cand_push(out, c);
            }
        }
    }
}

static int cmp_lb(const void *a, const void *b) {
    const Cand *x = a, *y = b;
    if (x->lb < y->lb) return -1;
    if (x->lb > y->lb) return 1;
    /* stable tie-break order */
    if (x->S != y->S) return x->S - y->S;
    if (x->t != y->t) return x->t - y->t;
    return x->m - y->m;
}

static bool cand_before(const Cand *x, const Cand *y) {
    if (x->S != y->S) return x->S < y->S;
    if (x->t != y->t) return x->t < y->t;
    return x->m < y->m;
}

static bool better(const Best *b, const Cand *c, double F) {
    if (!b->found) return true;
    if (F < b->F * (1 - REL_EPS)) return true;
    if (F > b->F * (1 + REL_EPS)) return false;
    return cand_before(c, &b->c);
}

/* Whether listed choice x comes after candidate c of time F (time, then tie order). */
static bool top_after(const PlanChoice *x, const Cand *c, double F) {
    double xf = x->totals.step_time;
    if (xf > F * (1 + REL_EPS)) return true;
    if (xf < F * (1 - REL_EPS)) return false;
    Cand xc = {.S = x->S, .d = x->d, .t = x->t, .m = x->m};
    return cand_before(c, &xc);
}

static void top_insert(Best *b, const Cand *c, double F, int64_t peak) {
    if (!b->top) return;
    PlanChoice pc;
    memset(&pc, 0, sizeof pc);
    pc.S = c->S;
    pc.d = c->d;
    pc.t = c->t;
    pc.m = c->m;
    pc.totals.step_time = F;
    pc.totals.mem_peak = peak;
    pc.totals.fits = true;
    int i = b->ntop;
    if (i == b->ktop) {
        if (!top_after(&b->top[i - 1], c, F)) return;
        i--;
    } else {
        b->ntop++;
    }
    while (i > 0 && top_after(&b->top[i - 1], c, F)) {
        b->top[i] = b->top[i - 1];
        i--;
    }
    b->top[i] = pc;
}

static double prune_bound(const Best *b) {
    if (b->top) return b->ntop < b->ktop ? INFINITY : b->top[b->ntop - 1].totals.step_time;
    return b->found && b->F < b->cap ? b->F : b->cap;
}

static void consider(Search *s, Best *b, Cand *c, int *mode, int *stage) {
    if (!search_cand_prepare(s, c)) return;
    bool wins_ties = b->top || !b->found || cand_before(c, &b->c);
    double F0 = search_solve_cand(s, c, prune_bound(b), wins_ties, mode, stage);
    if (F0 == INFINITY) return;
    int64_t peak = 0;
    double F = search_rc_fit(s, c, mode, stage, &peak);
    /* over the memory, or fitting only by recomputing: the optimum under the memory limit */
    if ((double)peak > s->g->cluster.memory || memcmp(s->rc, s->rcfix, (size_t)s->N) != 0) {
        F = search_fit(s, c, mode, stage, F, &peak, F0, prune_bound(b));
        if (peak < 0) return;
    }
    if (b->min_mem < 0 || peak < b->min_mem) {
        b->min_mem = peak;
        b->min_mem_c = *c;
        memcpy(b->mm_mode, mode, (size_t)s->N * sizeof(int));
        memcpy(b->mm_stage, stage, (size_t)s->N * sizeof(int));
        memcpy(b->mm_rc, s->rc, (size_t)s->N);
    }
    if ((double)peak > s->g->cluster.memory) return;
    top_insert(b, c, F, peak);
    if (better(b, c, F)) {
        b->found = true;
        b->F = F;
        b->c = *c;
        memcpy(b->mode, mode, (size_t)s->N * sizeof(int));
        memcpy(b->stage, stage, (size_t)s->N * sizeof(int));
        memcpy(b->rc, s->rc, (size_t)s->N);
    }
}

static void best_init(Best *b, int N) {
    memset(b, 0, sizeof *b);
    b->mode = search_xcalloc((size_t)N, sizeof(int));
    b->stage = search_xcalloc((size_t)N, sizeof(int));
    b->mm_mode = search_xcalloc((size_t)N, sizeof(int));
    b->mm_stage = search_xcalloc((size_t)N, sizeof(int));
    b->rc = search_xcalloc((size_t)N, 1);
    b->mm_rc = search_xcalloc((size_t)N, 1);
    b->min_mem = -1;
    b->cap = INFINITY;
}

static void best_free(Best *b) {
    free(b->mode);
    free(b->stage);
    free(b->mm_mode);
    free(b->mm_stage);
    free(b->rc);
    free(b->mm_rc);
}

/* Solves the candidates of `l` in lower-bound order, pruning by the best time so far. */
static void search_list(Search *s, CandList *l, Best *b) {
    int *mode = search_xcalloc((size_t)s->N, sizeof(int)),
        *stage = search_xcalloc((size_t)s->N, sizeof(int));
    int n = 0;
    for (int i = 0; i < l->n; i++)
        if (search_cand_prepare(s, &l->v[i])) l->v[n++] = l->v[i];
    l->n = n;
    if (n > 1) qsort(l->v, (size_t)l->n, sizeof(Cand), cmp_lb);
    for (int i = 0; i < l->n; i++) {
        double bound = prune_bound(b);
        if (l->v[i].lb > bound * (1 + REL_EPS)) break;
        consider(s, b, &l->v[i], mode, stage);
    }
    free(mode);
    free(stage);
}

double search_best_on(Search *s, int64_t devices, double cap) {
    int64_t D = s->D;
    s->D = devices;
    Best b;
    best_init(&b, s->N);
    b.cap = cap;
    CandList l = {0};
    search_enumerate(s, &l);
    search_list(s, &l, &b);
    free(l.v);
    best_free(&b);
    s->D = D;
    return b.found ? b.F : INFINITY;
}

bool search_plans_on(Search *s, int64_t devices) {
    return search_best_on(s, devices, INFINITY) < INFINITY;
}

/* Issue 14 item 6: more devices can make the step slower (a deeper pipeline's bubble, smaller
 * GEMMs, more communication for the same batch). The search is run again on D/2, D/4, ..., 1
 * devices; when one of them is predicted faster than the plan on all D by more than
 * FEWER_MARGIN, a warning names the fastest count. mpcc still plans on all D devices (the
 * job's size is the user's to choose; docs/cost-model.md §7). The re-runs are capped at the
 * time they must beat (F less the margin, then the fastest count so far): a candidate whose
 * lower bound cannot beat it is never solved, and a solve stops as soon as it cannot. */
#define FEWER_MARGIN 0.05
static void warn_fewer_devices(Search *s, double F) {
    int64_t best_d = s->D;
    double best = F * (1 - FEWER_MARGIN);
    int k = 0;
    while ((s->D >> (k + 1)) >= 1)
        k++;
    for (; k >= 1; k--) { /* D/2^k up to D/2: small meshes are cheap and tighten the cap */
        int64_t D2 = s->D >> k;
        double f = search_best_on(s, D2, best);
        if (f < best || (f == best && best_d != s->D)) best = f, best_d = D2;
    }
    if (best_d == s->D) return;
    char a[32], b[32];
    SrcLoc at = {s->g->file, 0, 0, 0};
    diag_warning(s->diag, at,
                 "%lld of the %lld devices would be faster: %s per step instead of %s (more "
                 "devices are slower for this batch); set cluster.devices = %lld to use them",
                 (long long)best_d, (long long)s->D, units_time(a, sizeof a, best),
                 units_time(b, sizeof b, F), (long long)best_d);
}

/* ───────────────────────────── the pass ───────────────────────────── */

/* The best plan on one fixed mesh (over every m), for the pure reference plans. */
static void pure_best(Search *s, int S, int d, int t, bool restrict_t, Best *b) {
    CandList all = {0}, l = {0};
    search_enumerate(s, &all);
    for (int i = 0; i < all.n; i++) {
        Cand c = all.v[i];
        if (c.S != S || c.d != d || c.t != t) continue;
        c.restrict_tensor = restrict_t;
        c.loose = true;
        search_cand_push(&l, c);
    }
    free(all.v);
    best_init(b, s->N);
    search_list(s, &l, b);
    free(l.v);
}

/* plan.mesh (docs/language.md): the candidates of the pinned mesh, with every m it allows
 * (plan.microbatches, else train.microbatches, else each count the replica's batch splits into). */
static void pin_enumerate(const Search *s, CandList *out) {
    const TrainCfg *tc = &s->g->train;
    int64_t m0 = tc->mesh_m > 0 ? tc->mesh_m : tc->microbatches;
    int ms[2048];
    int nm = microbatch_counts(s->B / tc->mesh[1], ms);
    for (int i = 0; i < nm; i++) {
        if (m0 > 0 && ms[i] != m0) continue;
        Cand c;
        memset(&c, 0, sizeof c);
        c.S = (int)tc->mesh[0];
        c.d = (int)tc->mesh[1];
        c.t = (int)tc->mesh[2];
        c.m = ms[i];
        search_cand_push(out, c);
    }
}

/* The best plan into b at the ZeRO stage s->zero: on the pinned mesh when `pinned` (and what
 * the search chooses without the pin into `searched`), else over the whole space. Reports
 * nothing; b->found false when no plan fits. */
static void find_best(Search *s, bool pinned, Best *b, Best *searched) {
    best_init(b, s->N);
    best_init(searched, s->N);
    CandList l = {0};
    if (pinned)
        pin_enumerate(s, &l);
    else
        search_enumerate(s, &l);
    search_list(s, &l, b);
    free(l.v);
    if (!pinned || !b->found) return;
    l = (CandList){0};
    search_enumerate(s, &l);
    search_list(s, &l, searched);
    free(l.v);
}

/* Whether a (no plan fits) needs less memory than b: the stage the error then names. ZeRO-2
 * is not always the leanest: its two gradient slots can outweigh what it saves. */
static bool leaner(const Best *a, const Best *b) {
    return a->min_mem >= 0 && (b->min_mem < 0 || a->min_mem < b->min_mem);
}

int search_zero_auto_max(const IrGraph *g) { return g->train.zero_auto_max2 ? 2 : 3; }

/* The search at train.zero's stage, or under "auto" at 0 to search_zero_auto_max keeping the
 * fastest plan that fits (the lowest stage on a tie: ZeRO only adds collectives that nothing
 * hides, and stage 3 gathers every layer twice per micro-batch, so a higher stage wins only
 * where the memory it saves lets a faster plan fit); s->zero is left at the chosen stage.
 * Explains why when nothing fits, with the leanest stage's need. */
static bool run_search(Search *s, bool pinned, Best *b, Best *searched) {
    if (!search_check_inputs(s) || (pinned && !search_check_pin(s))) {
        best_init(b, s->N);
        best_init(searched, s->N);
        return false;
    }
    bool aut = s->g->train.zero == TRAIN_ZERO_AUTO;
    int lo = aut ? 0 : (int)s->g->train.zero, hi = aut ? search_zero_auto_max(s->g) : lo;
    int chosen = lo;
    for (int z = lo; z <= hi; z++) {
        Best cb, csb;
        s->zero = z;
        find_best(s, pinned, &cb, &csb);
        bool take = z == lo || (cb.found && (!b->found || cb.F < b->F * (1 - REL_EPS))) ||
                    (!b->found && !cb.found && leaner(&cb, b));
        if (take && z > lo) best_free(b), best_free(searched);
        if (take)
            *b = cb, *searched = csb, chosen = z;
        else
            best_free(&cb), best_free(&csb);
    }
    s->zero = chosen;
    if (b->found) return true;
    if (pinned)
        search_explain_pin(s, b);
    else if (b->min_mem >= 0)
        search_explain_memory(s, b);
    else
        search_explain_no_plan(s);
    return false;
}

/* The pure data, tensor and pipeline plans' totals for the report; with `take`, one of them
 * replaces *b should memory have hidden it from its mesh's optimum (they lie in the space
 * searched), so the search's choice is never slower. */
static void pure_refs(Search *s, Best *b, bool take, PlanTotals tot[3], bool valid[3]) {
    int D = (int)s->D;
    int shape[3][3] = {{1, D, 1}, {1, 1, D}, {D, 1, 1}};
    for (int i = 0; i < 3; i++) {
        Best pb;
        pure_best(s, shape[i][0], shape[i][1], shape[i][2], i == 1, &pb);
        valid[i] = pb.found;
        memset(&tot[i], 0, sizeof tot[i]);
        if (pb.found) {
            search_cand_prepare(s, &pb.c);
            memcpy(s->rc, pb.rc, (size_t)s->N);
            tot[i] = search_plan_eval_new(s, &pb.c, pb.mode, pb.stage)->totals;
            if (take && (!b->found || pb.F < b->F * (1 - REL_EPS))) {
                Best t = *b;
                *b = pb;
                pb = t;
            }
        } else if (pb.min_mem >= 0) {
            tot[i].mem_peak = pb.min_mem;
        }
        best_free(&pb);
    }
}

bool pass_plan(IrGraph *g, Diag *d) {
    Search s;
    Best b, sb;
    if (!search_init(&s, g, d)) {
        search_free(&s);
        return false;
    }
    bool pinned = g->train.mesh[0] > 0;
    bool ok = run_search(&s, pinned, &b, &sb);
    if (ok) {
        PlanTotals tot[3];
        bool valid[3];
        pure_refs(&s, pinned ? &sb : &b, true, tot, valid);
        PlanChoice searched = {0};
        if (pinned && sb.found) {
            search_cand_prepare(&s, &sb.c);
            memcpy(s.rc, sb.rc, (size_t)s.N);
            searched = (PlanChoice){sb.c.S, sb.c.d, sb.c.t, sb.c.m,
                                    search_plan_eval_new(&s, &sb.c, sb.mode, sb.stage)->totals};
        }
        if (!pinned) warn_fewer_devices(&s, b.F);
        search_cand_prepare(&s, &b.c);
        memcpy(s.rc, b.rc, (size_t)s.N);
        Plan *plan = search_plan_build(&s, &b.c, b.mode, b.stage);
        plan->pure_data = tot[0];
        plan->pure_tensor = tot[1];
        plan->pure_pipeline = tot[2];
        plan->pure_data_valid = valid[0];
        plan->pure_tensor_valid = valid[1];
        plan->pure_pipeline_valid = valid[2];
        plan->pinned = pinned;
        plan->searched_valid = pinned && sb.found;
        plan->searched = searched;
        plan->zero = s.zero;
        plan->zero_auto = g->train.zero == TRAIN_ZERO_AUTO;
        g->plan = plan;
    }
    best_free(&b);
    best_free(&sb);
    search_free(&s);
    return ok;
}

int plan_search_space(IrGraph *g, Diag *d, int k, PlanChoice *out) {
    Search s;
    Best b;
    if (k < 1) return 0;
    if (!search_init(&s, g, d) || !search_check_inputs(&s)) {
        search_free(&s);
        return 0;
    }
    CandList l = {0};
    search_enumerate(&s, &l);
    best_init(&b, s.N);
    b.top = out;
    b.ktop = k;
    search_list(&s, &l, &b);
    free(l.v);
    if (!b.found) {
        if (b.min_mem >= 0)
            search_explain_memory(&s, &b);
        else
            search_explain_no_plan(&s);
    }
    int n = b.ntop;
    best_free(&b);
    search_free(&s);
    return n;
}
