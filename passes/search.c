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
 * whose unhidden part u is what the sync exceeds the layer's own backward compute (the
 * window the following backward work offers). A stage's cost is
 *     c_s = K·(Σ node times + cut send/recv) + Σ u,   K = m + S − 1,
 * and the predicted step time is max_s c_s: the 1F1B pipeline runs K slots of the slowest
 * stage, and a stage's unhidden sync is added after its slots. Because every term is a sum
 * along the node order, the optimum over cuts and modes is a min–max path problem.
 *
 * The algorithm, per candidate. States are the layouts of the activations live between two
 * nodes (4^live codes; residual graphs keep 1–3 live). cand_tables() builds the reachable
 * states of every point and the transitions between them with their costs. For a bound τ,
 * dp_run() sweeps the nodes once keeping, per (stage index, state), the least load of the
 * current stage that stays ≤ τ, and offers a cut at every point; only a window of stage
 * indices is possible at each point (the cheapest cost before and after it must fit in the
 * stages on either side), which keeps a sweep near O(N · transitions) for balanced plans.
 * Bisection on τ between a lower bound and a feasible bound gives the exact optimum to 1e-11
 * relative; a last sweep records the choices. Candidates are visited in order of a lower
 * bound; one whose bound exceeds the best time so far is skipped, one that cannot reach the
 * best time is dismissed after a single sweep at it, so few candidates are bisected.
 *
 * Ties: between candidates whose times differ by at most 1e-12 relative, fewer stages win,
 * then the smaller t (more data parallelism), then fewer micro-batches (cand_before). Within
 * a sweep modes are tried data, col, row and a cut only replaces a strictly better load, so
 * equal costs keep data and no cut.
 *
 * Memory is not a resource of the time sweep: the best plan of each candidate is evaluated
 * in full, and when a device's memory exceeds cluster.memory the sweep runs again dropping
 * paths over the memory (solve_capped), then with stage memory as the load (solve_mem), and
 * the first plan that fits is kept. The search is therefore
 * exact when memory does not bind; tests/unit/test_search.c measures the gap when it does.
 * The pure data, tensor and pipeline plans are solved the same way and the chosen plan is
 * replaced by one of them should it ever be faster, so it never is.
 */
#include "passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODES 8
#define MAX_LIVE 6
#define REL_EPS 1e-12
#define BISECT_EPS 1e-11

typedef struct Mode {
    Strategy strat;
    Layout in[IR_MAX_INPUTS];
    Layout out;
} Mode;

typedef struct Link {
    double alpha, beta;
} Link;

typedef struct Cand {
    int S, d, t, m;
    int64_t b;  /* samples per replica per micro-batch: B/(d·m) */
    double K;   /* m + S − 1 */
    Link tensor, data, stage, pipe;
    int restrict_tensor; /* pure tensor reference: parameter layers may not pick data */
    bool loose;          /* a reference plan: bisect to 1e-4 only (its time is an upper
                          * bound on its mesh's optimum, so the chosen plan stays ≤ it) */
    double lb;  /* lower bound on the step time */
    double cutmin; /* the cheapest cut (both sides, K-scaled) at any point */
} Cand;

/* What one node costs in one mode, for a candidate. Times in seconds. */
typedef struct ModeCost {
    double fwd, bwd;        /* compute per micro-batch */
    double own;             /* the layer's own collective per micro-batch */
    CollKind own_coll;
    int64_t own_n, own_bytes;
    double sync;            /* gradient all-reduce per step */
    int64_t sync_bytes, param_bytes;
    GroupKind sync_group;
    double unhidden;        /* u: sync beyond the layer's backward compute */
    double base;            /* K·(fwd + bwd + own) + u */
    int64_t act_bytes;      /* stashed per micro-batch (output + internals) */
} ModeCost;

typedef struct Search {
    IrGraph *g;
    Diag *diag;
    int N, V;
    int64_t B, D;
    int opt_copies;
    /* per value */
    bool *act, *needs_grad;
    int64_t *sample_bytes, *feat;
    int *last_use;
    /* per point 0..N: the live activations, sorted by value index */
    int *live_off, *live_n, *live;
    /* per node: position of each input in the live list before it (−1: not an activation);
     * for each value live after it, its position before it (−1: the node's output) */
    int *in_pos;
    int *next_src;
    int *pin;
    /* candidate scratch */
    int *nmodes;
    Mode *modes;
    ModeCost *mc;
    double *resh;       /* [V][4][4] time per micro-batch, fwd + bwd */
    double *cutf, *cutb; /* [V][4] send time of the value / of its gradient */
    int maxlive;
    /* the layout graph of a candidate (cand_tables) */
    int *st_off, *st_cnt, *st_idx, *tr_off;
    unsigned *st_code;
    struct Tr *tr;
    double *cl, *cr; /* K·cut costs of each reachable state (left and right stage) */
    double *crm;     /* bytes a stage receives at a cut in each state (memory sweeps) */
    bool mem_mode;   /* sweeps bound each stage's memory instead of its time */
    double mem_cap;  /* time sweeps: reject paths whose stage memory exceeds this */
    double *curm, *nxtm; /* the memory of the path kept in cur / nxt (when mem_cap is set) */
    size_t mcap, mcap2;
    double *infl;    /* micro-batches in flight at each stage: min(S − k, m) */
    size_t infl_cap, crm_cap;
    size_t st_cap, tr_cap, cl_cap, cr_cap;
    /* the sweep */
    double *pre, *suf;  /* cheapest cost of the nodes before / from each point */
    int *kmin, *kmax;   /* stage windows of each point for the current bound */
    double *cur, *nxt;
    size_t dp_cap, dp_cap2;
    int *from;          /* the transition that reached each (point, stage, state) */
    uint8_t *cutflag;
    size_t *rec_off;
    size_t rec_cap, flag_cap;
} Search;

/* ───────────────────────────── the graph, once ───────────────────────────── */

static int64_t value_feat(const IrValue *v) {
    if (v->shape.rank == 4) return v->shape.d[1];
    if (v->shape.rank >= 2) return v->shape.d[v->shape.rank - 1];
    return 1;
}

static void *xcalloc(size_t n, size_t size) {
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
        s->sample_bytes[v] = batch > 0 ? numel / batch * (int64_t)ir_dtype_size(val->dtype) : 0;
        s->feat[v] = value_feat(val);
    }
    for (int i = 0; i < s->N; i++) {
        const IrNode *n = IR_NODE(g, i);
        bool ng = n->nparams > 0;
        for (int k = 0; k < n->ninputs; k++) {
            s->last_use[n->inputs[k]] = i;
            if (s->needs_grad[n->inputs[k]]) ng = true;
        }
        s->needs_grad[n->output] = ng;
    }
}

/* Live activations at each point: a value is live from just after its producer up to and
 * including its last consumer. Lists are sorted by value index; O(values + Σ live). */
static bool search_live(Search *s) {
    IrGraph *g = s->g;
    int *cnt = xcalloc((size_t)s->N + 1, sizeof(int)), *tmp = xcalloc((size_t)s->V, sizeof(int));
    for (int v = 0; v < s->V; v++) {
        int prod = IR_VALUE(g, v)->producer;
        tmp[v] = -1;
        if (!s->act[v] || prod < 0) continue;
        for (int p = prod + 1; p <= s->last_use[v]; p++) cnt[p]++;
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
    s->live = xcalloc((size_t)total + 1, sizeof(int));
    s->next_src = xcalloc((size_t)total + 1, sizeof(int));
    for (int v = 0; v < s->V; v++) {
        int prod = IR_VALUE(g, v)->producer;
        if (!s->act[v] || prod < 0) continue;
        for (int p = prod + 1; p <= s->last_use[v]; p++) s->live[s->live_off[p] + cnt[p]++] = v;
    }
    for (int p = 0; p < s->N; p++) {
        const IrNode *n = IR_NODE(g, p);
        const int *lp = &s->live[s->live_off[p]], *lq = &s->live[s->live_off[p + 1]];
        for (int j = 0; j < s->live_n[p]; j++) tmp[lp[j]] = j;
        for (int k = 0; k < IR_MAX_INPUTS; k++)
            s->in_pos[p * IR_MAX_INPUTS + k] = k < n->ninputs ? tmp[n->inputs[k]] : -1;
        for (int j = 0; j < s->live_n[p + 1]; j++) s->next_src[s->live_off[p + 1] + j] = tmp[lq[j]];
        for (int j = 0; j < s->live_n[p]; j++) tmp[lp[j]] = -1;
    }
    free(cnt);
    free(tmp);
    return true;
}

static int opt_copies(const TrainCfg *t) {
    if (t->opt == OPT_ADAM || t->opt == OPT_ADAMW) return 2;
    return t->momentum != 0.0 ? 1 : 0;
}

static bool search_init(Search *s, IrGraph *g, Diag *d) {
    memset(s, 0, sizeof *s);
    s->g = g;
    s->diag = d;
    s->N = IR_NNODES(g);
    s->V = IR_NVALUES(g);
    s->B = g->train.batch;
    s->D = g->cluster.devices;
    s->opt_copies = opt_copies(&g->train);
    size_t V = (size_t)s->V, N = (size_t)s->N;
    s->act = xcalloc(V, sizeof(bool));
    s->needs_grad = xcalloc(V, sizeof(bool));
    s->sample_bytes = xcalloc(V, sizeof(int64_t));
    s->feat = xcalloc(V, sizeof(int64_t));
    s->last_use = xcalloc(V, sizeof(int));
    s->live_off = xcalloc(N + 1, sizeof(int));
    s->live_n = xcalloc(N + 1, sizeof(int));
    s->in_pos = xcalloc(N * IR_MAX_INPUTS, sizeof(int));
    s->pin = xcalloc(N, sizeof(int));
    s->nmodes = xcalloc(N, sizeof(int));
    s->modes = xcalloc(N * MAX_MODES, sizeof(Mode));
    s->mc = xcalloc(N * MAX_MODES, sizeof(ModeCost));
    s->resh = xcalloc(V * 16, sizeof(double));
    s->cutf = xcalloc(V * 4, sizeof(double));
    s->cutb = xcalloc(V * 4, sizeof(double));
    s->rec_off = xcalloc(N + 1, sizeof(size_t));
    s->st_off = xcalloc(N + 1, sizeof(int));
    s->st_cnt = xcalloc(N + 1, sizeof(int));
    s->tr_off = xcalloc(N + 1, sizeof(int));
    s->pre = xcalloc(N + 1, sizeof(double));
    s->suf = xcalloc(N + 1, sizeof(double));
    s->kmin = xcalloc(N + 1, sizeof(int));
    s->kmax = xcalloc(N + 1, sizeof(int));
    s->mem_cap = INFINITY;
    for (int i = 0; i < s->N; i++) s->pin[i] = IR_NODE(g, i)->annot.stage;
    search_values(s);
    if (!search_live(s)) return false;
    s->st_idx = xcalloc((size_t)1 << (2 * s->maxlive), sizeof(int));
    for (size_t i = 0; i < (size_t)1 << (2 * s->maxlive); i++) s->st_idx[i] = -1;
    return true;
}

static void search_free(Search *s) {
    void *ptrs[] = {s->act,    s->needs_grad, s->sample_bytes, s->feat,    s->last_use, s->live_off,
                    s->live_n, s->live,       s->in_pos,       s->next_src, s->pin,     s->nmodes,
                    s->modes,  s->mc,         s->resh,         s->cutf,     s->cutb,    s->cur,
                    s->nxt,    s->from,       s->cutflag,      s->rec_off,  s->st_off,  s->st_cnt,
                    s->st_idx, s->tr_off,     s->st_code,      s->tr,       s->cl,      s->cr,
                    s->pre,    s->suf,        s->kmin,         s->kmax,     s->crm,     s->infl,
                    s->curm,   s->nxtm};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) free(ptrs[i]);
}

/* ───────────────────────────── links and groups ───────────────────────────── */

/* A group of `span` consecutive ranks stays inside a node when the whole job fits in one
 * node, or when span divides devices_per_node (groups then start on node boundaries). */
static Link link_for(const ClusterCfg *c, int64_t span) {
    int64_t dpn = c->devices_per_node > 0 ? c->devices_per_node : c->devices;
    bool intra = c->devices <= dpn || (span <= dpn && dpn % span == 0);
    Link l = {c->latency, c->bandwidth};
    if (!intra) {
        l.alpha = c->inter_node_latency > 0 ? c->inter_node_latency : c->latency;
        l.beta = c->inter_node_bandwidth > 0 ? c->inter_node_bandwidth : c->bandwidth;
    }
    return l;
}

static void cand_links(const Search *s, Cand *c) {
    const ClusterCfg *cl = &s->g->cluster;
    c->tensor = link_for(cl, c->t);
    c->data = link_for(cl, (int64_t)c->d * c->t);
    c->stage = c->data;
    /* Neighbouring stages are d·t ranks apart: inside a node only if the job is. */
    c->pipe = link_for(cl, cl->devices > (cl->devices_per_node > 0 ? cl->devices_per_node
                                                                     : cl->devices)
                               ? cl->devices + 1
                               : 1);
}

/* ───────────────────────────── modes ───────────────────────────── */

static Mode mode1(Strategy st, Layout in, Layout out) {
    Mode m = {st, {in, in}, out};
    return m;
}

/* The modes of a parameterless or layout-following op at t > 1. */
static int follow_modes(const Search *s, const IrNode *n, const Cand *c, Mode *out) {
    int k = 0, t = c->t;
    int64_t in_feat = s->feat[n->inputs[0]];
    bool bok = c->b % t == 0, fok = in_feat % t == 0 && s->feat[n->output] % t == 0;
    switch (n->op) {
    case OP_LAYERNORM:
    case OP_CROSS_ENTROPY:
    case OP_MSE:
        out[k++] = mode1(STRAT_DATA, LAYOUT_R, LAYOUT_R);
        if (bok) out[k++] = mode1(STRAT_DATA, LAYOUT_B, LAYOUT_B);
        break;
    case OP_ADD:
        out[k++] = mode1(STRAT_DATA, LAYOUT_R, LAYOUT_R);
        if (bok) out[k++] = mode1(STRAT_DATA, LAYOUT_B, LAYOUT_B);
        if (fok) out[k++] = mode1(STRAT_DATA, LAYOUT_F, LAYOUT_F);
        out[k++] = mode1(STRAT_DATA, LAYOUT_P, LAYOUT_P);
        break;
    default:
        out[k++] = mode1(STRAT_DATA, LAYOUT_R, LAYOUT_R);
        if (bok) out[k++] = mode1(STRAT_DATA, LAYOUT_B, LAYOUT_B);
        if (fok) out[k++] = mode1(STRAT_DATA, LAYOUT_F, LAYOUT_F);
        break;
    }
    return k;
}

/* The modes of a parameter layer at t > 1 (DESIGN.md §4; docs/cost-model.md §3). */
static int param_modes(const Search *s, const IrNode *n, const Cand *c, Mode *out) {
    int k = 0, t = c->t;
    int64_t in_feat = s->feat[n->inputs[0]], out_feat = s->feat[n->output];
    if (c->b % t == 0) out[k++] = mode1(STRAT_DATA, LAYOUT_B, LAYOUT_B);
    switch (n->op) {
    case OP_LINEAR:
    case OP_CONV2D:
        if (out_feat % t == 0) out[k++] = mode1(STRAT_COL, LAYOUT_R, LAYOUT_F);
        if (in_feat % t == 0) out[k++] = mode1(STRAT_ROW, LAYOUT_F, LAYOUT_P);
        break;
    case OP_ATTENTION:
        if ((int64_t)n->args[0] % t == 0) out[k++] = mode1(STRAT_COL, LAYOUT_R, LAYOUT_P);
        break;
    case OP_EMBEDDING:
        if (out_feat % t == 0) out[k++] = mode1(STRAT_COL, LAYOUT_R, LAYOUT_F);
        out[k++] = mode1(STRAT_ROW, LAYOUT_R, LAYOUT_P);
        break;
    default: break;
    }
    return k;
}

static bool has_tensor_annot(const IrNode *n) {
    return n->annot.has_strat && n->annot.strat != STRAT_DATA;
}

/* The modes node `p` may take in candidate `c`, filtered by its annotation. */
static int node_modes(const Search *s, int p, const Cand *c, Mode *out) {
    const IrNode *n = IR_NODE(s->g, p);
    unsigned strats = ir_ops[n->op].strats;
    if (c->t == 1) {
        if (n->annot.has_strat) {
            if (has_tensor_annot(n) && s->D > 1) return 0;
            out[0] = mode1(n->annot.strat, LAYOUT_B, LAYOUT_B);
        } else {
            out[0] = mode1(STRAT_DATA, LAYOUT_B, LAYOUT_B);
        }
        return 1;
    }
    Mode all[MAX_MODES];
    int na = (ir_ops[n->op].flags & OPF_PARAMS) && strats != STRATF_DATA
                 ? param_modes(s, n, c, all)
                 : follow_modes(s, n, c, all);
    bool any_tensor = false;
    for (int i = 0; i < na; i++) any_tensor |= all[i].strat != STRAT_DATA;
    int k = 0;
    for (int i = 0; i < na; i++) {
        if (n->annot.has_strat && all[i].strat != n->annot.strat) continue;
        if (c->restrict_tensor && any_tensor && all[i].strat == STRAT_DATA) continue;
        out[k++] = all[i];
    }
    return k;
}

/* ───────────────────────────── costs ───────────────────────────── */

static int64_t local_bytes(const Search *s, const Cand *c, int v, Layout l) {
    int64_t n = s->sample_bytes[v] * c->b;
    return (l == LAYOUT_B || l == LAYOUT_F) ? n / c->t : n;
}

static bool param_sharded(OpKind op, Strategy st, ParamRole role) {
    if (st == STRAT_DATA) return false;
    if (op == OP_ATTENTION) return role != PARAM_BO;
    if (op == OP_EMBEDDING) return st == STRAT_COL || role == PARAM_WEIGHT;
    if (st == STRAT_ROW) return role == PARAM_WEIGHT;
    return true;
}

/* Parameter bytes one device holds for node `n` in strategy `st` over t tensor ranks. */
static int64_t node_param_bytes(const IrGraph *g, const IrNode *n, Strategy st, int t) {
    int64_t total = 0;
    for (int i = 0; i < n->nparams; i++) {
        const IrParam *pr = IR_PARAM(g, n->first_param + i);
        int64_t numel = ir_shape_numel(&pr->shape);
        if (t > 1 && param_sharded(n->op, st, pr->role)) {
            if (n->op == OP_EMBEDDING && st == STRAT_ROW && pr->shape.rank == 2) {
                int64_t rows = (pr->shape.d[0] + t - 1) / t;
                numel = rows * pr->shape.d[1];
            } else {
                numel /= t;
            }
        }
        total += numel * 4;
    }
    return total;
}

/* Attention keeps q, k, v, the context and the softmax probabilities for backward. */
static int64_t attention_extra(const Search *s, const IrNode *n, const Cand *c, bool split) {
    const IrValue *x = IR_VALUE(s->g, n->inputs[0]);
    if (x->shape.rank != 3) return 0;
    int64_t seq = x->shape.d[1], dim = x->shape.d[2], heads = (int64_t)n->args[0];
    int64_t per = 4 * seq * dim * 4 + heads * seq * seq * 4;
    return per * c->b / (split ? c->t : 1);
}

static void mode_cost(const Search *s, const Cand *c, int p, const Mode *M, ModeCost *mc) {
    const IrGraph *g = s->g;
    const IrNode *n = IR_NODE(g, p);
    const ClusterCfg *cl = &g->cluster;
    memset(mc, 0, sizeof *mc);
    bool split = c->t > 1 && (M->strat != STRAT_DATA || M->out == LAYOUT_B || M->out == LAYOUT_F);
    double div = (double)c->d * c->m * (split ? c->t : 1);
    mc->fwd = (double)n->flops_fwd / div / cl->flops;
    mc->bwd = (double)n->flops_bwd / div / cl->flops;
    bool col_own = (n->op == OP_LINEAR || n->op == OP_CONV2D || n->op == OP_ATTENTION) &&
                   M->strat == STRAT_COL && c->t > 1 && s->needs_grad[n->inputs[0]];
    if (col_own) {
        mc->own_coll = COLL_ALLREDUCE;
        mc->own_n = s->sample_bytes[n->inputs[0]] * c->b;
        mc->own_bytes = cost_coll_bytes(COLL_ALLREDUCE, c->t, mc->own_n);
        mc->own = cost_coll_time(COLL_ALLREDUCE, c->t, mc->own_n, c->tensor.alpha, c->tensor.beta);
    }
    mc->param_bytes = node_param_bytes(g, n, M->strat, c->t);
    bool stage_group = c->t > 1 && M->strat == STRAT_DATA && M->out == LAYOUT_B;
    int64_t gs = stage_group ? (int64_t)c->d * c->t : c->d;
    Link l = stage_group ? c->stage : c->data;
    mc->sync_group = stage_group ? GROUP_STAGE : GROUP_DATA;
    mc->sync_bytes = cost_coll_bytes(COLL_ALLREDUCE, gs, mc->param_bytes);
    mc->sync = cost_coll_time(COLL_ALLREDUCE, gs, mc->param_bytes, l.alpha, l.beta);
    mc->unhidden = mc->sync > mc->bwd ? mc->sync - mc->bwd : 0.0;
    mc->base = c->K * (mc->fwd + mc->bwd + mc->own) + mc->unhidden;
    mc->act_bytes = local_bytes(s, c, n->output, M->out);
    if (n->op == OP_ATTENTION) mc->act_bytes += attention_extra(s, n, c, split);
}

static void value_costs(Search *s, const Cand *c) {
    for (int v = 0; v < s->V; v++) {
        if (!s->act[v]) continue;
        int64_t n = s->sample_bytes[v] * c->b;
        for (int a = 0; a < 4; a++) {
            for (int b = 0; b < 4; b++) {
                CollKind f = cost_layout_change((Layout)a, (Layout)b);
                double tm = INFINITY;
                if (f != COLL__COUNT) {
                    tm = cost_coll_time(f, c->t, n, c->tensor.alpha, c->tensor.beta);
                    if (s->needs_grad[v]) {
                        CollKind bk = cost_layout_change_bwd((Layout)a, (Layout)b);
                        tm += cost_coll_time(bk, c->t, n, c->tensor.alpha, c->tensor.beta);
                    }
                }
                s->resh[v * 16 + a * 4 + b] = tm;
            }
            int64_t lb = local_bytes(s, c, v, (Layout)a);
            s->cutf[v * 4 + a] = cost_coll_time(COLL_SENDRECV, 2, lb, c->pipe.alpha, c->pipe.beta);
            s->cutb[v * 4 + a] = s->needs_grad[v] ? s->cutf[v * 4 + a] : 0.0;
        }
    }
}

/* Fills modes and costs for candidate `c`; false when some node has no mode. */
static bool cand_prepare(Search *s, Cand *c) {
    c->K = (double)(c->m + c->S - 1);
    c->b = s->B / ((int64_t)c->d * c->m);
    cand_links(s, c);
    double sum = 0, mx = 0;
    for (int p = 0; p < s->N; p++) {
        int k = node_modes(s, p, c, &s->modes[p * MAX_MODES]);
        s->nmodes[p] = k;
        if (k == 0) return false;
        double best = INFINITY;
        for (int i = 0; i < k; i++) {
            ModeCost *mc = &s->mc[p * MAX_MODES + i];
            mode_cost(s, c, p, &s->modes[p * MAX_MODES + i], mc);
            if (mc->base < best) best = mc->base;
        }
        sum += best;
        if (best > mx) mx = best;
    }
    value_costs(s, c);
    c->cutmin = 0;
    if (c->S > 1) {
        c->cutmin = INFINITY;
        for (int p = 1; p < s->N; p++) {
            double t = 0;
            for (int j = 0; j < s->live_n[p]; j++) {
                int v = s->live[s->live_off[p] + j];
                double lmin = INFINITY;
                for (int l = 0; l < 4; l++) lmin = fmin(lmin, s->cutf[v * 4 + l] + s->cutb[v * 4 + l]);
                t += lmin;
            }
            c->cutmin = fmin(c->cutmin, c->K * t);
        }
    }
    /* Every stage costs at least its nodes' cheapest modes, and the S−1 cuts add at least
     * cutmin each: the average stage bounds the slowest; so does the dearest node. */
    c->lb = fmax((sum + (c->S - 1) * c->cutmin) / c->S, mx);
    return true;
}

/* ───────────────────────────── transitions ───────────────────────────── */

static void decode(unsigned code, int n, uint8_t *lay) {
    for (int j = 0; j < n; j++) lay[j] = (uint8_t)((code >> (2 * j)) & 3u);
}

/* Applies node p in mode mi to the layouts `lay` of the values live before it: writes the
 * state after it to *code and the resharded layouts to nl; returns the node's cost
 * (base + K·reshards), or −1 when a needed layout change is impossible. */
static double trans(const Search *s, const Cand *c, int p, int mi, const uint8_t *lay,
                    unsigned *code, uint8_t *nl) {
    const IrNode *n = IR_NODE(s->g, p);
    const Mode *M = &s->modes[p * MAX_MODES + mi];
    int nlive = s->live_n[p];
    memcpy(nl, lay, (size_t)nlive);
    double r = 0;
    for (int k = 0; k < n->ninputs; k++) {
        int pos = s->in_pos[p * IR_MAX_INPUTS + k];
        if (pos < 0) {
            /* inputs and labels: every rank reads the slice it needs; never a partial sum */
            if (M->in[k] == LAYOUT_P) return -1;
            continue;
        }
        if (k == 1 && n->inputs[1] == n->inputs[0]) continue;
        Layout from = (Layout)nl[pos], to = M->in[k];
        if (from == to) continue;
        double tm = s->resh[n->inputs[k] * 16 + from * 4 + to];
        if (tm == INFINITY) return -1;
        r += tm;
        nl[pos] = (uint8_t)to;
    }
    unsigned cd = 0;
    const int *src = &s->next_src[s->live_off[p + 1]];
    for (int j = 0; j < s->live_n[p + 1]; j++) {
        unsigned l = src[j] < 0 ? (unsigned)M->out : nl[src[j]];
        cd |= l << (2 * j);
    }
    *code = cd;
    return s->mc[p * MAX_MODES + mi].base + c->K * r;
}

static double cut_left(const Search *s, const Cand *c, int p, const uint8_t *lay) {
    double t = 0;
    for (int j = 0; j < s->live_n[p]; j++) t += s->cutf[s->live[s->live_off[p] + j] * 4 + lay[j]];
    return c->K * t;
}

static double cut_right(const Search *s, const Cand *c, int p, const uint8_t *lay) {
    double t = 0;
    for (int j = 0; j < s->live_n[p]; j++) t += s->cutb[s->live[s->live_off[p] + j] * 4 + lay[j]];
    return c->K * t;
}

/* ───────────────────────────── the sweep ───────────────────────────── */

/* One transition of the layout graph: state `from` before node p, mode, state `to` after
 * it (indices into the reachable states of each point), and its cost w. */
typedef struct Tr {
    int from, to, mode;
    double w;
    double ms, ma; /* memory: static bytes, and bytes kept per micro-batch in flight */
} Tr;

static void *xgrow(void *p, size_t *cap, size_t need, size_t item) {
    if (need <= *cap) return p;
    size_t nc = *cap ? *cap : 1024;
    while (nc < need) nc *= 2;
    void *np = realloc(p, nc * item);
    if (!np) {
        fprintf(stderr, "mpcc: fatal: out of memory in the plan search\n");
        exit(3);
    }
    *cap = nc;
    return np;
}

/* The reachable states of every point and the transitions between them, with the cut
 * costs of each state; false when some point has no reachable state (no plan). */
static bool cand_tables(Search *s, const Cand *c) {
    size_t nstates = 1, ntr = 0;
    s->st_code = xgrow(s->st_code, &s->st_cap, 1, sizeof(unsigned));
    s->cl = xgrow(s->cl, &s->cl_cap, 1, sizeof(double));
    s->cr = xgrow(s->cr, &s->cr_cap, 1, sizeof(double));
    s->crm = xgrow(s->crm, &s->crm_cap, 1, sizeof(double));
    s->st_code[0] = 0;
    s->cl[0] = s->cr[0] = s->crm[0] = 0;
    s->st_off[0] = 0;
    s->st_cnt[0] = 1;
    uint8_t lay[MAX_LIVE], nl[MAX_LIVE];
    for (int p = 0; p < s->N; p++) {
        int off = s->st_off[p], cnt = s->st_cnt[p], off1 = (int)nstates;
        s->tr_off[p] = (int)ntr;
        for (int i = 0; i < cnt; i++) {
            decode(s->st_code[off + i], s->live_n[p], lay);
            for (int mi = 0; mi < s->nmodes[p]; mi++) {
                unsigned cd;
                double w = trans(s, c, p, mi, lay, &cd, nl);
                if (w < 0) continue;
                int j = s->st_idx[cd];
                if (j < 0) {
                    s->st_code = xgrow(s->st_code, &s->st_cap, nstates + 1, sizeof(unsigned));
                    s->st_code[nstates] = cd;
                    j = s->st_idx[cd] = (int)nstates - off1;
                    nstates++;
                }
                s->tr = xgrow(s->tr, &s->tr_cap, ntr + 1, sizeof(Tr));
                const ModeCost *mc = &s->mc[p * MAX_MODES + mi];
                double copies = 0;
                for (int q = 0; q < s->live_n[p]; q++)
                    if (nl[q] != lay[q])
                        copies += (double)local_bytes(s, c, s->live[s->live_off[p] + q], (Layout)nl[q]);
                s->tr[ntr++] = (Tr){i, j, mi, w, (double)mc->param_bytes * (2 + s->opt_copies),
                                    (double)mc->act_bytes + copies};
            }
        }
        s->st_off[p + 1] = off1;
        s->st_cnt[p + 1] = (int)nstates - off1;
        s->cl = xgrow(s->cl, &s->cl_cap, nstates, sizeof(double));
        s->cr = xgrow(s->cr, &s->cr_cap, nstates, sizeof(double));
        s->crm = xgrow(s->crm, &s->crm_cap, nstates, sizeof(double));
        for (int j = off1; j < (int)nstates; j++) {
            s->st_idx[s->st_code[j]] = -1;
            decode(s->st_code[j], s->live_n[p + 1], lay);
            s->cl[j] = cut_left(s, c, p + 1, lay);
            s->cr[j] = cut_right(s, c, p + 1, lay);
            double recv = 0;
            for (int q = 0; q < s->live_n[p + 1]; q++)
                recv += (double)local_bytes(s, c, s->live[s->live_off[p + 1] + q], (Layout)lay[q]);
            s->crm[j] = recv;
        }
        if (s->st_cnt[p + 1] == 0) return false;
    }
    s->tr_off[s->N] = (int)ntr;
    return true;
}

/* The stage indices a plan with every stage ≤ tau can be at when it reaches point p:
 * the cheapest cost of the nodes before p needs k+1 stages, the rest S−k stages. */
static void dp_windows(Search *s, const Cand *c, double tau) {
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
    s->cur = xgrow(s->cur, &s->dp_cap, need, sizeof(double));
    size_t cap2 = s->dp_cap2;
    s->nxt = xgrow(s->nxt, &cap2, need, sizeof(double));
    s->dp_cap2 = cap2;
    if (s->mem_cap < INFINITY) {
        s->curm = xgrow(s->curm, &s->mcap, need, sizeof(double));
        s->nxtm = xgrow(s->nxtm, &s->mcap2, need, sizeof(double));
    }
    if (!record) return;
    size_t tot = 0;
    for (int p = 0; p < s->N; p++) {
        s->rec_off[p] = tot;
        int rows = s->kmax[p + 1] - s->kmin[p + 1] + 1;
        if (rows > 0) tot += (size_t)rows * (size_t)s->st_cnt[p + 1];
    }
    s->from = xgrow(s->from, &s->rec_cap, tot + 1, sizeof(int));
    s->cutflag = xgrow(s->cutflag, &s->flag_cap, tot + 1, 1);
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

/* A cut at point p (before node p): stage k ends, stage k+1 starts with the same state. */
static void dp_cut(Search *s, const Cand *c, int p, double tau, bool record) {
    int ns = s->st_cnt[p], off = s->st_off[p];
    uint8_t *flag = record ? s->cutflag + s->rec_off[p - 1] : NULL;
    int hi = s->kmax[p] < c->S - 1 ? s->kmax[p] : c->S - 1;
    for (int k = hi - 1; k >= s->kmin[p]; k--) {
        const double *row = s->nxt + (size_t)(k - s->kmin[p]) * ns;
        double *next = s->nxt + (size_t)(k + 1 - s->kmin[p]) * ns;
        uint8_t *fl = flag ? flag + (size_t)(k + 1 - s->kmin[p]) * ns : NULL;
        for (int j = 0; j < ns; j++) {
            double l = row[j];
            if (l == INFINITY || l + (s->mem_mode ? 0 : s->cl[off + j]) > tau) continue;
            double r = s->mem_mode ? s->crm[off + j] * s->infl[k + 1] : s->cr[off + j];
            if (s->mem_cap < INFINITY) {
                double rm = s->crm[off + j] * s->infl[k + 1];
                double *nm = s->nxtm + (size_t)(k + 1 - s->kmin[p]) * ns;
                if (rm > s->mem_cap || r > tau) continue;
                if (r < next[j] || (r == next[j] && rm < nm[j])) {
                    next[j] = r;
                    nm[j] = rm;
                    if (fl) fl[j] = 1;
                }
                continue;
            }
            if (r <= tau && r < next[j]) {
                next[j] = r;
                if (fl) fl[j] = 1;
            }
        }
    }
}

/* One sweep: is there a plan of candidate `c` whose every stage costs ≤ tau? */
static bool dp_run(Search *s, const Cand *c, double tau, bool record) {
    dp_windows(s, c, tau);
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
        for (size_t i = 0; i < n1; i++) s->nxt[i] = INFINITY;
        if (record) {
            memset(s->from + s->rec_off[p], 0xff, n1 * sizeof(int));
            memset(s->cutflag + s->rec_off[p], 0, n1);
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
        if (p + 1 < s->N && s->cutflag[at]) {
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
        for (int i = 0; i < s->nmodes[p]; i++) best = fmin(best, s->mc[p * MAX_MODES + i].base);
        s->pre[p + 1] = s->pre[p] + best;
    }
    for (int p = 0; p <= s->N; p++) s->suf[p] = s->pre[s->N] - s->pre[p];
}

/* The optimal time of candidate `c` (INFINITY if it has no plan or none faster than
 * `bound`), with its choices. One sweep at the bound dismisses a candidate that cannot
 * beat the best plan so far; the bisection stops as soon as it cannot either. */
static double solve_cand(Search *s, const Cand *c, double bound, bool wins_ties, int *mode,
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
        if (dp_run(s, c, mid, false)) hi = mid;
        else lo = mid;
    }
    dp_run(s, c, hi, true);
    dp_backtrack(s, c, mode, stage);
    return hi;
}

/* When the fastest plan of a candidate does not fit: the plan whose fullest stage holds the
 * least (parameters, optimizer state, and activations × micro-batches in flight; buffers
 * are left to the evaluation), by the same sweep with memory as the stage's load. */
/* Micro-batches in flight at each stage under 1F1B: min(S − s, m). */
static void set_inflight(Search *s, const Cand *c) {
    s->infl = xgrow(s->infl, &s->infl_cap, (size_t)c->S, sizeof(double));
    for (int k = 0; k < c->S; k++) s->infl[k] = c->S - k < c->m ? c->S - k : c->m;
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
        if (dp_run(s, c, mid, false)) hi = mid;
        else lo = mid;
    }
    if (ok) {
        dp_run(s, c, hi, true);
        dp_backtrack(s, c, mode, stage);
    }
    return ok;
}

static bool solve_mem(Search *s, const Cand *c, int *mode, int *stage) {
    set_inflight(s, c);
    s->mem_mode = true;
    bool ok = bisect_plan(s, c, 0, 1, 1e-6, mode, stage);
    s->mem_mode = false;
    return ok;
}

/* The fastest plan the time sweep finds when every path whose stage memory (as in
 * solve_mem) would exceed the device's is dropped: per state it keeps the fastest path that
 * fits, which is not always the one a later layer needs, so this is a heuristic. */
static bool solve_capped(Search *s, const Cand *c, int *mode, int *stage) {
    set_inflight(s, c);
    s->mem_cap = s->g->cluster.memory;
    bool ok = bisect_plan(s, c, c->lb, fmax(c->lb * 1.25, 1e-300), 1e-9, mode, stage);
    s->mem_cap = INFINITY;
    return ok;
}

/* ───────────────────────────── evaluation ───────────────────────────── */

/* Accumulates one stage while walking a plan. */
typedef struct StageAcc {
    double load, fwd, bwd, comm, sync, unhidden;
    int64_t bytes, params, acts, buf;
} StageAcc;

static void acc_buf(StageAcc *a, int64_t n) {
    if (2 * n > a->buf) a->buf = 2 * n;
}

static void stage_close(const Search *s, const Cand *c, int k, StageAcc *a, double cut_l,
                        PlanStage *ps, double *cost) {
    double load = a->load + cut_l;
    *cost = load;
    if (!ps) return;
    ps->fwd_time = a->fwd;
    ps->bwd_time = a->bwd;
    ps->comm_time = a->comm;
    ps->grad_sync_time = a->sync;
    ps->grad_sync_hidden = a->sync - a->unhidden;
    int64_t inflight = c->S - k < c->m ? c->S - k : c->m;
    ps->mem_params = a->params;
    ps->mem_grads = a->params;
    ps->mem_optim = a->params * s->opt_copies;
    ps->mem_acts = a->acts * inflight;
    ps->mem_buffers = a->buf;
    ps->mem_bytes = ps->mem_params + ps->mem_grads + ps->mem_optim + ps->mem_acts + ps->mem_buffers;
}

/* The cut before point p: its sends, for the stage that ends and the one that begins. */
static void eval_cut(const Search *s, const Cand *c, int p, int k, const uint8_t *lay,
                     StageAcc *left, StageAcc *right, Plan *plan, int *ncuts) {
    for (int j = 0; j < s->live_n[p]; j++) {
        int v = s->live[s->live_off[p] + j];
        int64_t lb = local_bytes(s, c, v, (Layout)lay[j]);
        left->comm += s->cutf[v * 4 + lay[j]];
        left->bytes += lb;
        acc_buf(left, lb);
        right->comm += s->cutb[v * 4 + lay[j]];
        right->bytes += s->needs_grad[v] ? lb : 0;
        right->acts += lb;
        acc_buf(right, lb);
        if (plan) {
            PlanCut *pc = &plan->cuts[(*ncuts)++];
            pc->stage = k;
            pc->value = v;
            pc->layout = (Layout)lay[j];
            pc->bytes = lb;
        }
    }
}

/* The reshards node p needs in mode M from layouts lay; accumulates into a. */
static void eval_reshards(const Search *s, const Cand *c, int p, const Mode *M, const uint8_t *lay,
                          StageAcc *a, Plan *plan) {
    const IrNode *n = IR_NODE(s->g, p);
    for (int k = 0; k < n->ninputs; k++) {
        int pos = s->in_pos[p * IR_MAX_INPUTS + k];
        if (pos < 0 || (k == 1 && n->inputs[1] == n->inputs[0])) continue;
        Layout from = (Layout)lay[pos], to = M->in[k];
        if (from == to) continue;
        int v = n->inputs[k];
        int64_t nb = s->sample_bytes[v] * c->b;
        CollKind f = cost_layout_change(from, to);
        CollKind bk = s->needs_grad[v] ? cost_layout_change_bwd(from, to) : COLL_NONE;
        int64_t fb = cost_coll_bytes(f, c->t, nb), bb = cost_coll_bytes(bk, c->t, nb);
        a->comm += s->resh[v * 16 + from * 4 + to];
        a->bytes += fb + bb;
        a->acts += local_bytes(s, c, v, to);
        acc_buf(a, nb);
        if (plan) {
            PlanReshard *r = &plan->reshards[plan->nreshards++];
            r->value = v;
            r->to_node = p;
            r->from = from;
            r->to = to;
            r->fwd = f;
            r->bwd = bk;
            r->group = GROUP_TENSOR;
            r->fwd_bytes = fb;
            r->bwd_bytes = bb;
        }
    }
}

static void eval_node_into(const Search *s, int p, int mi, StageAcc *a) {
    const ModeCost *mc = &s->mc[p * MAX_MODES + mi];
    a->fwd += mc->fwd;
    a->bwd += mc->bwd;
    a->comm += mc->own;
    a->bytes += mc->own_bytes;
    a->sync += mc->sync;
    a->unhidden += mc->unhidden;
    a->params += mc->param_bytes;
    a->acts += mc->act_bytes;
    if (mc->own_n) acc_buf(a, mc->own_n);
}

static bool plan_shape_ok(const Search *s, const Cand *c, const int *mode, const int *stage) {
    int prev = 0;
    for (int p = 0; p < s->N; p++) {
        if (mode[p] < 0 || mode[p] >= s->nmodes[p]) return false;
        if (stage[p] < prev || stage[p] > prev + 1 || (p == 0 && stage[p] != 0)) return false;
        if (s->pin[p] != IR_NO_STAGE && s->pin[p] != stage[p]) return false;
        prev = stage[p];
    }
    return prev == c->S - 1;
}

/* Evaluates a complete plan of candidate `c`: returns the step time (INFINITY if the
 * plan is not valid) and, with `plan`, fills nodes, stages, reshards, cuts and totals
 * (the search fills the alternatives and reasons afterwards). */
static double eval_plan(const Search *s, const Cand *c, const int *mode, const int *stage,
                        Plan *plan, int64_t *mem_peak) {
    if (!plan_shape_ok(s, c, mode, stage)) return INFINITY;
    uint8_t lay[MAX_LIVE], nl[MAX_LIVE];
    StageAcc a, nexta;
    memset(&a, 0, sizeof a);
    double F = 0, Tmax = -1, cost;
    int smax = 0, sworst = 0, ncuts = 0, k = 0;
    int64_t peak = 0;
    double worst = -1;
    PlanStage tmp;
    for (int p = 0; p <= s->N; p++) {
        bool end = p == s->N;
        if (end || (p > 0 && stage[p] != stage[p - 1])) {
            memset(&nexta, 0, sizeof nexta);
            double cl = end ? 0.0 : cut_left(s, c, p, lay);
            if (!end) eval_cut(s, c, p, k, lay, &a, &nexta, plan, &ncuts);
            PlanStage *ps = plan ? &plan->stages[k] : &tmp;
            stage_close(s, c, k, &a, cl, ps, &cost);
            if (plan) ps->last_node = p - 1;
            double T = a.fwd + a.bwd + a.comm;
            if (T > Tmax) Tmax = T, smax = k;
            if (cost > worst) worst = cost, sworst = k;
            if (cost > F) F = cost;
            if (ps->mem_bytes > peak) peak = ps->mem_bytes;
            if (end) break;
            k++;
            a = nexta;
            a.load = cut_right(s, c, p, lay);
            if (plan) plan->stages[k].first_node = p;
        }
        unsigned cd;
        double w = trans(s, c, p, mode[p], lay, &cd, nl);
        if (w < 0) return INFINITY;
        eval_reshards(s, c, p, &s->modes[p * MAX_MODES + mode[p]], lay, &a, plan);
        eval_node_into(s, p, mode[p], &a);
        a.load += w;
        decode(cd, s->live_n[p + 1], lay);
    }
    if (mem_peak) *mem_peak = peak;
    if (plan) {
        plan->ncuts = ncuts;
        PlanTotals *t = &plan->totals;
        const PlanStage *b = &plan->stages[smax], *w = &plan->stages[sworst];
        t->step_time = F;
        t->compute = c->m * (b->fwd_time + b->bwd_time);
        t->exposed_comm = c->m * b->comm_time;
        t->bubble = (c->S - 1) * (b->fwd_time + b->bwd_time + b->comm_time);
        t->grad_sync_unhidden = fmax(0.0, F - c->K * Tmax);
        t->grad_sync_hidden = fmax(0.0, w->grad_sync_time - t->grad_sync_unhidden);
        t->mem_peak = peak;
        t->fits = (double)peak <= s->g->cluster.memory;
    }
    return F;
}

/* Bytes per device per step of each stage (the busiest is the plan's figure). */
static void plan_bytes(const Search *s, const Cand *c, const int *mode, Plan *plan) {
    int64_t *per = xcalloc((size_t)c->S, sizeof(int64_t));
    for (int p = 0; p < s->N; p++) {
        const ModeCost *mc = &s->mc[p * MAX_MODES + mode[p]];
        per[plan->nodes[p].stage] += mc->sync_bytes + mc->own_bytes * c->m;
    }
    for (int i = 0; i < plan->nreshards; i++) {
        const PlanReshard *r = &plan->reshards[i];
        per[plan->nodes[r->to_node].stage] += (r->fwd_bytes + r->bwd_bytes) * c->m;
    }
    for (int i = 0; i < plan->ncuts; i++) {
        const PlanCut *pc = &plan->cuts[i];
        per[pc->stage] += pc->bytes * c->m;
        if (s->needs_grad[pc->value]) per[pc->stage + 1] += pc->bytes * c->m;
    }
    int64_t mx = 0;
    for (int k = 0; k < c->S; k++) {
        if (per[k] > mx) mx = per[k];
    }
    plan->totals.comm_bytes = mx;
    free(per);
}

/* ───────────────────────────── alternatives and reasons ───────────────────────────── */

static const char *fmt_bytes(char *buf, size_t n, int64_t b) {
    double x = (double)b;
    if (x >= 1e9) snprintf(buf, n, "%.1f GB", x / 1e9);
    else if (x >= 1e6) snprintf(buf, n, "%.1f MB", x / 1e6);
    else if (x >= 1e3) snprintf(buf, n, "%.1f KB", x / 1e3);
    else snprintf(buf, n, "%lld B", (long long)b);
    return buf;
}

/* The layout the first consumer of value v computes on in the chosen plan (or `def`). */
static Layout consumer_layout(const Search *s, const Plan *plan, int v, int after, Layout def) {
    for (int q = after + 1; q < s->N; q++) {
        const IrNode *n = IR_NODE(s->g, q);
        for (int k = 0; k < n->ninputs; k++)
            if (n->inputs[k] == v) return plan->nodes[q].in_layout[k];
    }
    return def;
}

/* What node p would cost with mode mi given the layouts before it and the layout its
 * consumers use in the chosen plan. */
static void alt_for(const Search *s, const Cand *c, const Plan *plan, int p, int mi,
                    const uint8_t *lay, PlanAlt *alt) {
    const IrNode *n = IR_NODE(s->g, p);
    const Mode *M = &s->modes[p * MAX_MODES + mi];
    const ModeCost *mc = &s->mc[p * MAX_MODES + mi];
    StageAcc a;
    memset(&a, 0, sizeof a);
    unsigned cd;
    uint8_t nl[MAX_LIVE];
    if (trans(s, c, p, mi, lay, &cd, nl) < 0) return;
    eval_reshards(s, c, p, M, lay, &a, NULL);
    Layout want = consumer_layout(s, plan, n->output, p, M->out);
    int64_t conv = 0;
    double conv_t = 0;
    if (want != M->out) {
        CollKind f = cost_layout_change(M->out, want);
        if (f == COLL__COUNT) return;
        int v = n->output;
        int64_t nb = s->sample_bytes[v] * c->b;
        CollKind bk = s->needs_grad[v] ? cost_layout_change_bwd(M->out, want) : COLL_NONE;
        conv = cost_coll_bytes(f, c->t, nb) + cost_coll_bytes(bk, c->t, nb);
        conv_t = s->resh[v * 16 + M->out * 4 + want];
    }
    alt->feasible = true;
    alt->in_layout = M->in[0];
    alt->out_layout = M->out;
    alt->grad_bytes = mc->sync_bytes;
    alt->comm_bytes = (a.bytes + mc->own_bytes + conv) * c->m + mc->sync_bytes;
    alt->time = c->m * (mc->fwd + mc->bwd + mc->own + a.comm + conv_t) + mc->sync;
}

/* alt[] of node p: the chosen mode for its strategy, the cheapest mode for the others. */
static void node_alts(const Search *s, const Cand *c, Plan *plan, int p, int chosen,
                      const uint8_t *lay) {
    PlanNode *pn = &plan->nodes[p];
    for (int st = 0; st < STRAT__COUNT; st++) pn->alt[st].feasible = false;
    for (int mi = 0; mi < s->nmodes[p]; mi++) {
        PlanAlt alt;
        memset(&alt, 0, sizeof alt);
        alt_for(s, c, plan, p, mi, lay, &alt);
        Strategy st = s->modes[p * MAX_MODES + mi].strat;
        if (!alt.feasible || (st == pn->strat && mi != chosen)) continue;
        if (!pn->alt[st].feasible || alt.time < pn->alt[st].time) pn->alt[st] = alt;
    }
}

static const char *node_reason(const Search *s, const Cand *c, Plan *plan, int p) {
    const IrNode *n = IR_NODE(s->g, p);
    PlanNode *pn = &plan->nodes[p];
    Arena *A = s->g->arena;
    char b1[32], b2[32];
    if (pn->forced)
        return arena_printf(A, "pinned by @%s", n->annot.strat == STRAT_DATA ? "data"
                                                : n->annot.strat == STRAT_COL ? "tensor(col)"
                                                                              : "tensor(row)");
    if (c->t == 1)
        return arena_printf(A, "t = 1: the layer runs whole on each of the %d data replica%s",
                            c->d, c->d == 1 ? "" : "s");
    if (!(ir_ops[n->op].flags & OPF_PARAMS) || ir_ops[n->op].strats == STRATF_DATA)
        return arena_printf(A, "computes on layout %s, the cheapest for its neighbours",
                            plan_layout_name(pn->out_layout));
    const PlanAlt *me = &pn->alt[pn->strat];
    int other = -1;
    for (int st = 0; st < STRAT__COUNT; st++) {
        if (st == (int)pn->strat || !pn->alt[st].feasible) continue;
        if (other < 0 || pn->alt[st].time < pn->alt[other].time) other = st;
    }
    /* a tensor split is explained against data: activations against weight gradients */
    if (pn->strat != STRAT_DATA && pn->alt[STRAT_DATA].feasible) other = STRAT_DATA;
    if (other < 0)
        return arena_printf(A, "%s: the only strategy the shapes allow on t = %d",
                            plan_strategy_name(pn->strat), c->t);
    const PlanAlt *ot = &pn->alt[other];
    if (pn->strat == STRAT_DATA)
        return arena_printf(A, "data: all-reduces %s of weight gradients instead of moving %s of "
                               "activations for %s",
                            fmt_bytes(b1, sizeof b1, me->grad_bytes),
                            fmt_bytes(b2, sizeof b2, ot->comm_bytes - ot->grad_bytes),
                            plan_strategy_name((Strategy)other));
    if (other == STRAT_DATA)
        return arena_printf(A, "%s: moves %s of activations instead of %s of weight gradients",
                            plan_strategy_name(pn->strat),
                            fmt_bytes(b1, sizeof b1, me->comm_bytes - me->grad_bytes),
                            fmt_bytes(b2, sizeof b2, ot->grad_bytes));
    return arena_printf(A, "%s: moves %s per step against %s for %s", plan_strategy_name(pn->strat),
                        fmt_bytes(b1, sizeof b1, me->comm_bytes), fmt_bytes(b2, sizeof b2, ot->comm_bytes),
                        plan_strategy_name((Strategy)other));
}

/* A Plan with its arrays for candidate c, nodes filled from mode[]/stage[], evaluated. */
static Plan *plan_eval_new(Search *s, const Cand *c, const int *mode, const int *stage) {
    Arena *A = s->g->arena;
    Plan *plan = arena_alloc(A, sizeof *plan);
    plan->S = c->S;
    plan->d = c->d;
    plan->t = c->t;
    plan->m = c->m;
    plan->nodes = arena_calloc(A, (size_t)s->N, sizeof(PlanNode));
    plan->stages = arena_calloc(A, (size_t)c->S, sizeof(PlanStage));
    plan->reshards = arena_calloc(A, (size_t)s->N * IR_MAX_INPUTS + 1, sizeof(PlanReshard));
    int maxcuts = 0;
    for (int p = 0; p <= s->N; p++) maxcuts += s->live_n[p];
    plan->cuts = arena_calloc(A, (size_t)maxcuts + 1, sizeof(PlanCut));
    for (int p = 0; p < s->N; p++) {
        const Mode *M = &s->modes[p * MAX_MODES + mode[p]];
        PlanNode *pn = &plan->nodes[p];
        const IrNode *n = IR_NODE(s->g, p);
        pn->stage = stage[p];
        pn->strat = M->strat;
        for (int k = 0; k < IR_MAX_INPUTS; k++) pn->in_layout[k] = M->in[k];
        pn->out_layout = M->out;
        pn->forced = n->annot.has_strat;
        const ModeCost *mc = &s->mc[p * MAX_MODES + mode[p]];
        pn->fwd_time = mc->fwd;
        pn->bwd_time = mc->bwd;
        pn->own_bwd = mc->own_coll;
        pn->own_bwd_bytes = mc->own_bytes;
        pn->grad_group = mc->sync_group;
        pn->grad_bytes = mc->sync_bytes;
        pn->param_bytes = mc->param_bytes;
        int inflight = c->S - stage[p] < c->m ? c->S - stage[p] : c->m;
        pn->mem_bytes = mc->param_bytes * (2 + s->opt_copies) + mc->act_bytes * inflight;
    }
    eval_plan(s, c, mode, stage, plan, NULL);
    plan_bytes(s, c, mode, plan);
    return plan;
}

/* The full plan for the report: plan_eval_new plus alternatives and reasons. */
static Plan *plan_build(Search *s, const Cand *c, const int *mode, const int *stage) {
    Plan *plan = plan_eval_new(s, c, mode, stage);
    uint8_t lay[MAX_LIVE], nl[MAX_LIVE];
    for (int p = 0; p < s->N; p++) {
        node_alts(s, c, plan, p, mode[p], lay);
        unsigned cd;
        trans(s, c, p, mode[p], lay, &cd, nl);
        decode(cd, s->live_n[p + 1], lay);
    }
    for (int p = 0; p < s->N; p++) plan->nodes[p].reason = node_reason(s, c, plan, p);
    return plan;
}

/* ───────────────────────────── candidates ───────────────────────────── */

typedef struct CandList {
    Cand *v;
    int n, cap;
} CandList;

static void cand_push(CandList *l, Cand c) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        Cand *nv = xcalloc((size_t)l->cap, sizeof(Cand));
        if (l->n) memcpy(nv, l->v, (size_t)l->n * sizeof(Cand));
        free(l->v);
        l->v = nv;
    }
    l->v[l->n++] = c;
}

/* Every (S, d, t, m) of the plan space, in tie-break order: S, then t, then m ascending. */
static void enumerate(const Search *s, CandList *out) {
    int64_t D = s->D, B = s->B, m0 = s->g->train.microbatches;
    for (int64_t S = 1; S <= D && S <= s->N; S++) {
        if (D % S) continue;
        for (int64_t t = 1; t <= D / S; t++) {
            if ((D / S) % t) continue;
            int64_t d = D / S / t;
            if (B % d) continue;
            for (int64_t m = 1; m <= B / d; m++) {
                if ((B / d) % m || (m0 > 0 && m != m0)) continue;
                Cand c;
                memset(&c, 0, sizeof c);
                c.S = (int)S;
                c.d = (int)d;
                c.t = (int)t;
                c.m = (int)m;
                cand_push(out, c);
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

/* The outcome of a search over a list of candidates. */
typedef struct Best {
    Cand c;
    double F;
    int *mode, *stage;
    bool found;
    int64_t min_mem;   /* smallest peak memory seen over evaluated plans */
    Cand min_mem_c;
    int *mm_mode, *mm_stage;
    PlanChoice *top;
    int ntop, ktop;
} Best;

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
    return b->found ? b->F : INFINITY;
}

static void consider(Search *s, Best *b, Cand *c, int *mode, int *stage) {
    if (!cand_prepare(s, c)) return;
    bool wins_ties = b->top || !b->found || cand_before(c, &b->c);
    double F = solve_cand(s, c, prune_bound(b), wins_ties, mode, stage);
    if (F == INFINITY) return;
    int64_t peak = 0;
    F = eval_plan(s, c, mode, stage, NULL, &peak);
    if ((double)peak > s->g->cluster.memory) {
        /* the fastest plan that the memory-capped sweep finds, else the leanest plan */
        int64_t p2 = 0;
        double F2 = solve_capped(s, c, mode, stage) ? eval_plan(s, c, mode, stage, NULL, &p2) : INFINITY;
        if (F2 < INFINITY && (double)p2 <= s->g->cluster.memory) {
            F = F2;
            peak = p2;
        } else if (solve_mem(s, c, mode, stage)) {
            F = eval_plan(s, c, mode, stage, NULL, &peak);
        }
    }
    if (b->min_mem < 0 || peak < b->min_mem) {
        b->min_mem = peak;
        b->min_mem_c = *c;
        memcpy(b->mm_mode, mode, (size_t)s->N * sizeof(int));
        memcpy(b->mm_stage, stage, (size_t)s->N * sizeof(int));
    }
    if ((double)peak > s->g->cluster.memory) return;
    top_insert(b, c, F, peak);
    if (better(b, c, F)) {
        b->found = true;
        b->F = F;
        b->c = *c;
        memcpy(b->mode, mode, (size_t)s->N * sizeof(int));
        memcpy(b->stage, stage, (size_t)s->N * sizeof(int));
    }
}

static void best_init(Best *b, int N) {
    memset(b, 0, sizeof *b);
    b->mode = xcalloc((size_t)N, sizeof(int));
    b->stage = xcalloc((size_t)N, sizeof(int));
    b->mm_mode = xcalloc((size_t)N, sizeof(int));
    b->mm_stage = xcalloc((size_t)N, sizeof(int));
    b->min_mem = -1;
}

static void best_free(Best *b) {
    free(b->mode);
    free(b->stage);
    free(b->mm_mode);
    free(b->mm_stage);
}

/* Solves the candidates of `l` in lower-bound order, pruning by the best time so far. */
static void search_list(Search *s, CandList *l, Best *b) {
    int *mode = xcalloc((size_t)s->N, sizeof(int)), *stage = xcalloc((size_t)s->N, sizeof(int));
    int n = 0;
    for (int i = 0; i < l->n; i++)
        if (cand_prepare(s, &l->v[i])) l->v[n++] = l->v[i];
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

/* ───────────────────────────── annotations and errors ───────────────────────────── */

static bool check_stage_pins(const Search *s) {
    bool ok = true;
    int last = -1, last_node = -1;
    for (int p = 0; p < s->N; p++) {
        const IrNode *n = IR_NODE(s->g, p);
        int k = n->annot.stage;
        if (k == IR_NO_STAGE) continue;
        if (k < 0 || k >= s->D || k >= s->N) {
            diag_error(s->diag, n->annot.stage_loc,
                       "@stage(%d) cannot be honoured: %lld device%s allow%s at most %lld pipeline stage%s",
                       k, (long long)s->D, s->D == 1 ? "" : "s", s->D == 1 ? "s" : "",
                       (long long)(s->D < s->N ? s->D : s->N), (s->D < s->N ? s->D : s->N) == 1 ? "" : "s");
            ok = false;
        } else if (k > p) {
            diag_error(s->diag, n->annot.stage_loc,
                       "@stage(%d) on '%s' cannot be honoured: %d layer%s come%s before it, and each of "
                       "the %d earlier stages needs at least one",
                       k, n->name, p, p == 1 ? "" : "s", p == 1 ? "s" : "", k);
            ok = false;
        } else if (k < last) {
            diag_error(s->diag, n->annot.stage_loc,
                       "@stage(%d) on '%s' comes after '%s' at @stage(%d); stages must follow the layer order",
                       k, n->name, IR_NODE(s->g, last_node)->name, last);
            ok = false;
        }
        if (k > last) {
            last = k;
            last_node = p;
        }
    }
    return ok;
}

/* Why a tensor annotation cannot be honoured on any mesh, or NULL. */
static const char *tensor_annot_problem(Search *s, int p) {
    const IrNode *n = IR_NODE(s->g, p);
    if (!has_tensor_annot(n) || s->D == 1) return NULL;
    for (int64_t t = 2; t <= s->D; t++) {
        if (s->D % t) continue;
        Cand c;
        memset(&c, 0, sizeof c);
        c.S = 1;
        c.t = (int)t;
        c.d = 1;
        c.m = 1;
        c.b = s->B;
        Mode ms[MAX_MODES];
        if (node_modes(s, p, &c, ms) > 0) return NULL;
    }
    int64_t width = n->annot.strat == STRAT_COL ? s->feat[n->output] : s->feat[n->inputs[0]];
    if (n->op == OP_ATTENTION) width = (int64_t)n->args[0];
    const char *what = n->op == OP_ATTENTION ? "heads"
                       : n->op == OP_CONV2D ? (n->annot.strat == STRAT_COL ? "output channels" : "input channels")
                       : n->annot.strat == STRAT_COL ? "output features" : "input features";
    return arena_printf(s->g->arena,
                        "cannot honour @%s on '%s': its %lld %s do not divide over any tensor group "
                        "size t > 1 that %lld devices allow",
                        n->annot.strat == STRAT_COL ? "tensor(col)" : "tensor(row)", n->name,
                        (long long)width, what, (long long)s->D);
}

static void explain_no_plan(Search *s) {
    bool said = false;
    for (int p = 0; p < s->N; p++) {
        const char *why = tensor_annot_problem(s, p);
        if (why) {
            diag_error(s->diag, IR_NODE(s->g, p)->annot.strat_loc, "%s", why);
            said = true;
        }
    }
    if (said) return;
    SrcLoc none = {s->g->file, 0, 0, 0};
    diag_error(s->diag, none,
               "no parallel plan exists for %lld devices with batch %lld%s: no mesh S×d×t divides "
               "the batch and the layer shapes as the annotations require",
               (long long)s->D, (long long)s->B,
               s->g->train.microbatches > 0 ? " and the given micro-batch count" : "");
}

static void explain_memory(Search *s, const Best *b) {
    Cand c = b->min_mem_c;
    cand_prepare(s, &c);
    Plan *p = plan_build(s, &c, b->mm_mode, b->mm_stage);
    int worst = 0;
    for (int k = 1; k < p->S; k++)
        if (p->stages[k].mem_bytes > p->stages[worst].mem_bytes) worst = k;
    int dom = p->stages[worst].first_node;
    for (int q = p->stages[worst].first_node; q <= p->stages[worst].last_node; q++)
        if (p->nodes[q].mem_bytes > p->nodes[dom].mem_bytes) dom = q;
    const IrNode *n = IR_NODE(s->g, dom);
    char b1[32], b2[32], b3[32];
    diag_error(s->diag, n->loc,
               "no plan fits in %s per device: the smallest found needs %s on each device of stage %d "
               "(mesh %d×%d×%d, %d micro-batch%s), and '%s' takes %s of it",
               fmt_bytes(b1, sizeof b1, (int64_t)s->g->cluster.memory),
               fmt_bytes(b2, sizeof b2, p->stages[worst].mem_bytes), worst, p->S, p->d, p->t, p->m,
               p->m == 1 ? "" : "es", n->name, fmt_bytes(b3, sizeof b3, p->nodes[dom].mem_bytes));
}

static bool check_inputs(Search *s) {
    SrcLoc none = {s->g->file, 0, 0, 0};
    if (s->D < 1 || s->B < 1 || s->N < 1) {
        diag_error(s->diag, none, "cannot plan: %s", s->D < 1 ? "cluster.devices must be at least 1"
                                                     : s->B < 1 ? "train.batch must be at least 1"
                                                                : "the model has no layers");
        return false;
    }
    if (!(s->g->cluster.flops > 0)) {
        diag_error(s->diag, none, "cannot plan: cluster.flops must be positive");
        return false;
    }
    return check_stage_pins(s);
}

/* ───────────────────────────── the pass ───────────────────────────── */

/* The best plan on one fixed mesh (over every m), for the pure reference plans. */
static void pure_best(Search *s, int S, int d, int t, bool restrict_t, Best *b) {
    CandList all = {0}, l = {0};
    enumerate(s, &all);
    for (int i = 0; i < all.n; i++) {
        Cand c = all.v[i];
        if (c.S != S || c.d != d || c.t != t) continue;
        c.restrict_tensor = restrict_t;
        c.loose = true;
        cand_push(&l, c);
    }
    free(all.v);
    best_init(b, s->N);
    search_list(s, &l, b);
    free(l.v);
}

static bool run_search(Search *s, Best *b) {
    best_init(b, s->N);
    if (!check_inputs(s)) return false;
    CandList l = {0};
    enumerate(s, &l);
    search_list(s, &l, b);
    free(l.v);
    if (b->found) return true;
    if (b->min_mem >= 0) explain_memory(s, b);
    else explain_no_plan(s);
    return false;
}

bool pass_plan(IrGraph *g, Diag *d) {
    Search s;
    Best b;
    if (!search_init(&s, g, d)) {
        search_free(&s);
        return false;
    }
    bool ok = run_search(&s, &b);
    if (ok) {
        int D = (int)s.D;
        int shape[3][3] = {{1, D, 1}, {1, 1, D}, {D, 1, 1}};
        PlanTotals tot[3];
        bool valid[3];
        for (int i = 0; i < 3; i++) {
            Best pb;
            pure_best(&s, shape[i][0], shape[i][1], shape[i][2], i == 1, &pb);
            valid[i] = pb.found;
            memset(&tot[i], 0, sizeof tot[i]);
            if (pb.found) {
                cand_prepare(&s, &pb.c);
                tot[i] = plan_eval_new(&s, &pb.c, pb.mode, pb.stage)->totals;
                /* The pure plans lie in the space searched; should memory have hidden one
                 * from its mesh's optimum, take it, so the choice is never slower. */
                if (pb.F < b.F * (1 - REL_EPS)) {
                    Best t = b;
                    b = pb;
                    pb = t;
                }
            } else if (pb.min_mem >= 0) {
                tot[i].mem_peak = pb.min_mem;
            }
            best_free(&pb);
        }
        cand_prepare(&s, &b.c);
        Plan *plan = plan_build(&s, &b.c, b.mode, b.stage);
        plan->pure_data = tot[0];
        plan->pure_tensor = tot[1];
        plan->pure_pipeline = tot[2];
        plan->pure_data_valid = valid[0];
        plan->pure_tensor_valid = valid[1];
        plan->pure_pipeline_valid = valid[2];
        g->plan = plan;
    }
    best_free(&b);
    search_free(&s);
    return ok;
}

int plan_search_space(IrGraph *g, Diag *d, int k, PlanChoice *out) {
    Search s;
    Best b;
    if (k < 1) return 0;
    if (!search_init(&s, g, d) || !check_inputs(&s)) {
        search_free(&s);
        return 0;
    }
    CandList l = {0};
    enumerate(&s, &l);
    best_init(&b, s.N);
    b.top = out;
    b.ktop = k;
    search_list(&s, &l, &b);
    free(l.v);
    if (!b.found) {
        if (b.min_mem >= 0) explain_memory(&s, &b);
        else explain_no_plan(&s);
    }
    int n = b.ntop;
    best_free(&b);
    search_free(&s);
    return n;
}

/* ───────────────────────────── brute force (tests) ───────────────────────────── */

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
        double F = eval_plan(s, b->c, b->mode, b->stage, NULL, &peak);
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

double plan_brute_force(IrGraph *g, Diag *d) {
    Search s;
    double best = INFINITY;
    if (!search_init(&s, g, d) || !check_inputs(&s)) {
        search_free(&s);
        return best;
    }
    CandList l = {0};
    enumerate(&s, &l);
    int *mode = xcalloc((size_t)s.N, sizeof(int)), *stage = xcalloc((size_t)s.N, sizeof(int));
    for (int i = 0; i < l.n; i++) {
        Cand c = l.v[i];
        if (!cand_prepare(&s, &c)) continue;
        Brute b = {&s, &c, mode, stage, INFINITY};
        brute_modes(&b, 0);
        if (b.best < best) best = b.best;
    }
    free(mode);
    free(stage);
    free(l.v);
    search_free(&s);
    return best;
}

void plan_space_print(const IrGraph *g, const PlanChoice *c, int n, FILE *out) {
    fprintf(out, "plan space of %s: the %d fastest of the meshes S×d×t = %lld and micro-batch counts\n",
            g->name, n, (long long)g->cluster.devices);
    fprintf(out, "  rank  S x d x t        m   step time    vs best  memory/device\n");
    for (int i = 0; i < n; i++) {
        char mesh[48];
        snprintf(mesh, sizeof mesh, "%dx%dx%d", c[i].S, c[i].d, c[i].t);
        fprintf(out, "  %4d  %-14s %5d  %9.3f ms  %7.3f×  %8.1f MB\n", i + 1, mesh, c[i].m,
                c[i].totals.step_time * 1e3, c[i].totals.step_time / c[0].totals.step_time,
                (double)c[i].totals.mem_peak / 1e6);
    }
}
