/*
 * cost.c: the communication formulas of the cost model (docs/cost-model.md).
 *
 * Everything the planner predicts about communication reduces to three questions asked
 * here: how many bytes one device sends for one collective call, how long that call takes
 * on a link with latency α and bandwidth β, and which collective turns one activation
 * layout into another. The search (search.c) composes these into layer, stage and step
 * costs; the runtime counts the same bytes, so the formulas are in integer arithmetic and
 * must stay bit-for-bit what the runtime adds up.
 *
 * Ring algorithms (Thakur, Rabenseifner & Gropp 2005; Patarasuk & Yuan 2009): over g ranks
 * an all-reduce of n bytes is a reduce-scatter followed by an all-gather, each of g−1 steps
 * moving n/g bytes, so 2(g−1)·n/g bytes per device; an all-gather or reduce-scatter of a
 * tensor whose full size is n moves (g−1)·n/g; an all-to-all where every rank holds n/g and
 * keeps 1/g of it sends (g−1)·n/g². A group of one rank moves nothing and takes no time.
 *
 * Layout changes (DESIGN.md §4): R→B and R→F are local slices; B→R and F→R all-gathers;
 * P→R an all-reduce; P→B and P→F reduce-scatters; B↔F an all-to-all. Nothing turns a
 * non-P value into P (the planner never needs it: an add of a P and an R value costs the
 * same as all-reducing first), so those changes are reported as impossible (COLL__COUNT).
 *
 * Per-layer cost (the second half of this file). For one candidate of the search (a mesh
 * S×d×t and a micro-batch count m, search_internal.h) every node gets its modes — a
 * strategy with the layouts it reads and writes, as the op's entry in the rules table
 * (passes/rules.c) and the shapes allow and its annotation demands — and each mode a ModeCost:
 * forward and backward compute per micro-batch, the layer's own collective (a column split
 * all-reduces its input gradient), the gradient all-reduce per step and the part of it the layer's
 * backward does not hide, the parameter bytes held and the activation bytes kept for backward.
 * value_costs() adds the price of every layout change of every activation and of sending it across
 * a cut. search_cand_prepare() fills these tables and the candidate's lower bound; nothing here
 * chooses anything, and the same figures feed the sweep, the evaluation and the report.
 *
 * Measured presets (docs/presets.md): a preset file may carry per-collective α/β fitted by
 * mpcc-calibrate and a table of GEMM rates by shape. cost_coll_time_on() prices a call
 * from the measurement for that collective, link kind and nearest group size, and
 * cost_compute.c prices each GEMM of a layer at its shape's measured rate; the built-in presets
 * carry neither, and then both reduce to the formulas above and the flat FLOP rate.
 */
#include "search_internal.h"

#include <math.h>
#include <string.h>

const char *plan_layout_name(Layout l) {
    static const char *const names[] = {"R", "B", "F", "P"};
    return l < LAYOUT__COUNT ? names[l] : "?";
}

const char *plan_strategy_name(Strategy s) {
    static const char *const names[] = {"data", "tensor(col)", "tensor(row)"};
    return s < STRAT__COUNT ? names[s] : "?";
}

const char *plan_node_strategy_name(OpKind op, Strategy s) {
    bool loss = op < OP__COUNT && (ir_ops[op].flags & OPF_LOSS);
    return loss && s == STRAT_COL ? "vocab-parallel" : plan_strategy_name(s);
}

const char *plan_group_name(GroupKind k) {
    static const char *const names[] = {"tensor", "data", "stage", "pipe"};
    return k < GROUP__COUNT ? names[k] : "?";
}

const char *cost_coll_name(CollKind k) {
    static const char *const names[] = {"none",           "slice",      "all-reduce", "all-gather",
                                        "reduce-scatter", "all-to-all", "send/recv"};
    return k < COLL__COUNT ? names[k] : "impossible";
}

int64_t cost_coll_bytes(CollKind k, int64_t g, int64_t n) {
    if (n <= 0) return 0;
    if (k == COLL_SENDRECV) return n;
    if (g <= 1) return 0;
    switch (k) {
    case COLL_ALLREDUCE: return 2 * (g - 1) * n / g;
    case COLL_ALLGATHER:
    case COLL_REDUCESCATTER: return (g - 1) * n / g;
    case COLL_ALLTOALL: return (g - 1) * n / (g * g);
    case COLL_NONE:
    case COLL_SLICE:
    case COLL_SENDRECV:
    case COLL__COUNT: break;
    }
    return 0;
}

/* Ring steps of one call; a send/recv is one message. */
static int64_t coll_steps(CollKind k, int64_t g) {
    if (k == COLL_SENDRECV) return 1;
    if (g <= 1) return 0;
    switch (k) {
    case COLL_ALLREDUCE: return 2 * (g - 1);
    case COLL_ALLGATHER:
    case COLL_REDUCESCATTER:
    case COLL_ALLTOALL: return g - 1;
    case COLL_NONE:
    case COLL_SLICE:
    case COLL_SENDRECV:
    case COLL__COUNT: break;
    }
    return 0;
}

double cost_coll_time(CollKind k, int64_t g, int64_t n, double alpha, double beta) {
    int64_t bytes = cost_coll_bytes(k, g, n);
    int64_t steps = coll_steps(k, g);
    if (steps == 0 || n <= 0) return 0.0;
    return (double)steps * alpha + (beta > 0 ? (double)bytes / beta : 0.0);
}

/* Measured collectives (docs/presets.md): among the entries for this collective and link
 * kind, the one whose group size is nearest in log2 (ties: the larger group, the dearer
 * guess); it prices the call as α + n/β, n the full tensor's bytes, as it was fitted. */
double cost_coll_time_on(const ClusterCfg *cl, CollKind k, bool inter, int64_t g, int64_t n,
                         double alpha, double beta) {
    const PresetTables *t = cl ? cl->tables : NULL;
    const PresetColl *best = NULL;
    double bd = INFINITY;
    for (int i = 0; t && i < t->ncoll; i++) {
        const PresetColl *e = &t->coll[i];
        if (e->coll != (int)k || e->inter != inter) continue;
        double dist = fabs(log2((double)e->group) - log2((double)(g > 1 ? g : 1)));
        if (dist < bd || (dist == bd && best && e->group > best->group)) bd = dist, best = e;
    }
    if (!best) return cost_coll_time(k, g, n, alpha, beta);
    if (n <= 0 || coll_steps(k, g) == 0) return 0.0;
    return best->alpha + (double)n / best->beta;
}

/* A GEMM table that is a whole grid (every combination of its m, n and k values, as
 * mpcc-calibrate writes it): the axes' log2 values, sorted, at most GEMM_AXIS each. */
#define GEMM_AXIS 16
typedef struct GemmGrid {
    double ax[3][GEMM_AXIS];
    int n[3];
} GemmGrid;

static void axis_add(GemmGrid *g, int a, double v) {
    int i = 0;
    while (i < g->n[a] && g->ax[a][i] < v)
        i++;
    if (i < g->n[a] && g->ax[a][i] == v) return;
    if (g->n[a] == GEMM_AXIS) {
        g->n[a] = GEMM_AXIS + 1; /* too many: not a grid */
        return;
    }
    memmove(&g->ax[a][i + 1], &g->ax[a][i], (size_t)(g->n[a] - i) * sizeof(double));
    g->ax[a][i] = v, g->n[a]++;
}

static bool gemm_grid(const PresetTables *t, GemmGrid *g) {
    memset(g, 0, sizeof *g);
    for (int i = 0; i < t->ngemm; i++) {
        axis_add(g, 0, log2((double)t->gemm[i].m));
        axis_add(g, 1, log2((double)t->gemm[i].n));
        axis_add(g, 2, log2((double)t->gemm[i].k));
    }
    for (int a = 0; a < 3; a++)
        if (g->n[a] < 2 || g->n[a] > GEMM_AXIS) return false;
    return g->n[0] * g->n[1] * g->n[2] == t->ngemm;
}

/* An entry's rate for a call of kind `kind` (the cold rate of its transposition when the hot one
 * was not measured, the forward's when that transposition was not). */
static double entry_rate(const PresetGemm *p, GemmKind kind) {
    double hot = kind == GEMM_NT_HOT   ? p->flops_nt_hot
                 : kind == GEMM_TN_HOT ? p->flops_tn_hot
                 : kind == GEMM_NN_HOT ? p->flops_hot
                                       : 0.0;
    if (hot > 0) return hot;
    if (kind >= GEMM_NN_HOT) kind = (GemmKind)(kind - GEMM_NN_HOT);
    double r = kind == GEMM_NT ? p->flops_nt : kind == GEMM_TN ? p->flops_tn : p->flops;
    return r > 0 ? r : p->flops;
}

/* log2 of the rate measured at grid point (i, j, l); the table holds each point once. */
static double grid_at(const PresetTables *t, const GemmGrid *g, const int *ix, GemmKind kind) {
    for (int e = 0; e < t->ngemm; e++) {
        const PresetGemm *p = &t->gemm[e];
        if (log2((double)p->m) == g->ax[0][ix[0]] && log2((double)p->n) == g->ax[1][ix[1]] &&
            log2((double)p->k) == g->ax[2][ix[2]])
            return log2(entry_rate(p, kind));
    }
    return 0.0;
}

/* Trilinear interpolation of log2(rate) in (log2 m, log2 n, log2 k), clamped to the grid. */
static double grid_rate(const PresetTables *t, const GemmGrid *g, const double *q, GemmKind kind) {
    int lo[3];
    double w[3];
    for (int a = 0; a < 3; a++) {
        double v = fmin(fmax(q[a], g->ax[a][0]), g->ax[a][g->n[a] - 1]);
        int i = 0;
        while (i < g->n[a] - 2 && v > g->ax[a][i + 1])
            i++;
        lo[a] = i, w[a] = (v - g->ax[a][i]) / (g->ax[a][i + 1] - g->ax[a][i]);
    }
    double acc = 0;
    for (int c = 0; c < 8; c++) {
        int ix[3];
        double wt = 1;
        for (int a = 0; a < 3; a++) {
            int up = (c >> a) & 1;
            ix[a] = lo[a] + up, wt *= up ? w[a] : 1 - w[a];
        }
        if (wt > 0) acc += wt * grid_at(t, g, ix, kind);
    }
    return exp2(acc);
}

double cost_gemm_rate(const ClusterCfg *cl, int64_t m, int64_t n, int64_t k) {
    return cost_gemm_rate_kind(cl, GEMM_NN, m, n, k);
}

/* Measured GEMM rates of a call kind: interpolated in log space on a whole grid; else the entry
 * nearest in (log2 m, log2 n, log2 k), ties keeping the first. */
double cost_gemm_rate_kind(const ClusterCfg *cl, GemmKind kind, int64_t m, int64_t n, int64_t k) {
    const PresetTables *t = cl->tables;
    if (!t || t->ngemm == 0) return cl->flops;
    double lm = log2((double)(m > 1 ? m : 1)), ln = log2((double)(n > 1 ? n : 1)),
           lk = log2((double)(k > 1 ? k : 1));
    GemmGrid g;
    if (gemm_grid(t, &g)) return grid_rate(t, &g, (double[3]){lm, ln, lk}, kind);
    double bd = INFINITY, rate = cl->flops;
    for (int i = 0; i < t->ngemm; i++) {
        const PresetGemm *e = &t->gemm[i];
        double dm = log2((double)e->m) - lm, dn = log2((double)e->n) - ln,
               dk = log2((double)e->k) - lk;
        double dist = dm * dm + dn * dn + dk * dk;
        if (dist < bd) bd = dist, rate = entry_rate(e, kind);
    }
    return rate;
}

CollKind cost_layout_change(Layout from, Layout to) {
    if (from == to) return COLL_NONE;
    if (to == LAYOUT_P) return COLL__COUNT;
    switch (from) {
    case LAYOUT_R: return COLL_SLICE;
    case LAYOUT_B:
    case LAYOUT_F: return to == LAYOUT_R ? COLL_ALLGATHER : COLL_ALLTOALL;
    case LAYOUT_P: return to == LAYOUT_R ? COLL_ALLREDUCE : COLL_REDUCESCATTER;
    case LAYOUT__COUNT: break;
    }
    return COLL__COUNT;
}

Layout cost_grad_layout(Layout l) { return l == LAYOUT_P ? LAYOUT_R : l; }

CollKind cost_layout_change_bwd(Layout from, Layout to) {
    return cost_layout_change(cost_grad_layout(to), cost_grad_layout(from));
}

/* ───────────────────────────── links and groups ───────────────────────────── */

/* A group of `span` consecutive ranks stays inside a node when the whole job fits in one
 * node, or when span divides devices_per_node (groups then start on node boundaries). */
bool cost_group_inter(const ClusterCfg *c, int64_t span) {
    int64_t dpn = c->devices_per_node > 0 ? c->devices_per_node : c->devices;
    return !(c->devices <= dpn || (span <= dpn && dpn % span == 0));
}

int64_t cost_group_nodes(const ClusterCfg *c, int64_t span) {
    if (span < 1 || !cost_group_inter(c, span)) return 0;
    int64_t dpn = c->devices_per_node, most = 0;
    for (int64_t g = 0; g + span <= c->devices; g += span) {
        int64_t n = (g + span - 1) / dpn - g / dpn + 1;
        if (n > most) most = n;
    }
    return most;
}

static Link link_for(const ClusterCfg *c, int64_t span) {
    bool intra = !cost_group_inter(c, span);
    Link l = {c->latency, c->bandwidth, !intra};
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
    c->pipe =
        link_for(cl, cl->devices > (cl->devices_per_node > 0 ? cl->devices_per_node : cl->devices)
                         ? cl->devices + 1
                         : 1);
}

/* ───────────────────────────── modes ───────────────────────────── */

static Mode mode1(Strategy st, Layout in, Layout out) {
    Mode m = {st, {in, in}, out};
    return m;
}

static Mode mode_of(const RuleMode *r) {
    Mode m = {r->strat, {rules_mode_in(r, 0), rules_mode_in(r, 1)}, r->out};
    return m;
}

bool search_has_tensor_annot(const IrNode *n) {
    return n->annot.has_strat && n->annot.strat != STRAT_DATA;
}

/* The modes node `p` may take in candidate `c`, filtered by its annotation. */
int search_node_modes(const Search *s, int p, const Cand *c, Mode *out) {
    const IrNode *n = IR_NODE(s->g, p);
    if (c->t == 1) {
        if (n->annot.has_strat) {
            if (search_has_tensor_annot(n) && s->D > 1) return 0;
            out[0] = mode1(n->annot.strat, LAYOUT_B, LAYOUT_B);
        } else {
            out[0] = mode1(STRAT_DATA, LAYOUT_B, LAYOUT_B);
        }
        return 1;
    }
    /* the op's modes at t > 1 from the rules table (passes/rules.c), in its order */
    RuleMode rm[RULES_MAX_MODES];
    Mode all[MAX_MODES];
    int na = rules_modes(n, c->t, c->b, s->feat[n->inputs[0]], s->feat[n->output], rm);
    for (int i = 0; i < na; i++)
        all[i] = mode_of(&rm[i]);
    bool any_tensor = false;
    for (int i = 0; i < na; i++)
        any_tensor |= all[i].strat != STRAT_DATA && !pass_rules[n->op].own_fwd[all[i].strat];
    int k = 0;
    /* padded classes (rules.c RULES_LINEAR): only straight into a vocabulary-parallel loss */
    bool pad_ok = s->vocab_logits[n->output];
    for (int i = 0; i < na; i++) {
        if (n->annot.has_strat && all[i].strat != n->annot.strat) continue;
        if (n->op == OP_LINEAR && all[i].out == LAYOUT_F && search_padded(s, n->output, c->t) &&
            !pad_ok)
            continue;
        if (c->restrict_tensor && any_tensor && all[i].strat == STRAT_DATA) continue;
        out[k++] = all[i];
    }
    return k;
}

/* ───────────────────────────── costs ───────────────────────────── */

bool search_padded(const Search *s, int v, int t) {
    return t > 1 && s->feat[v] > 1 && s->feat[v] % t != 0; /* not a scalar (feat 1) */
}

int64_t search_local_bytes(const Search *s, const Cand *c, int v, Layout l) {
    int64_t n = s->sample_bytes[v] * c->b;
    if (l == LAYOUT_F && search_padded(s, v, c->t)) /* ceil(feat/t) of every row */
        return n / s->feat[v] * ((s->feat[v] + c->t - 1) / c->t);
    return (l == LAYOUT_B || l == LAYOUT_F) ? n / c->t : n;
}

/* Parameter bytes one device holds for node `n` in strategy `st` over t tensor ranks (the
 * working copy: bf16 under train.precision = "bf16"). */
static int64_t node_param_bytes(const Search *s, const IrNode *n, Strategy st, int t) {
    int64_t total = 0;
    for (int i = 0; i < n->nparams; i++)
        total += rules_param_local(IR_PARAM(s->g, n->first_param + i), n->op, st, t) * s->elem;
    return total;
}

/* Bytes of the f32 optimizer state of `elems` parameters: opt_copies moments, and under bf16
 * the f32 master weights too (docs/cost-model.md, "Mixed precision"). */
static int64_t state_bytes(const Search *s, int64_t elems) {
    return elems * 4 * (s->opt_copies + (s->elem == 2 ? 1 : 0));
}

/* Value v's shape on one device for a micro-batch of c->b samples in layout l: split by
 * batch (B) or by features (F: the channels of a 4-D tensor, else the last dim) over t. */
static Shape local_shape(const Search *s, const Cand *c, int v, Layout l) {
    Shape sh = IR_VALUE(s->g, v)->shape;
    sh.d[0] = c->b;
    if (c->t > 1 && l == LAYOUT_B) sh.d[0] /= c->t;
    /* a scalar (a vocabulary-parallel loss's value, "F" as its input) has nothing to split */
    if (c->t > 1 && l == LAYOUT_F && sh.rank > 0) { /* rounded up: padded classes */
        int64_t *f = &sh.d[sh.rank == 4 ? 1 : sh.rank - 1];
        *f = (*f + c->t - 1) / c->t;
    }
    return sh;
}

/* Bytes the op keeps for backward besides its activations on one device, as the trainers
 * allocate them (the rules table: layernorm's row statistics, maxpool's argmax, attention's
 * q, k, v, context and probabilities, a vocabulary-parallel loss's row statistics): 4 bytes
 * each under bf16 too, f32 values and int32 indices, since the kernels compute and keep them
 * in f32 (codegen/emit_buffers.c allocates them as floats and int32s). */
static int64_t stash_bytes(const Search *s, const IrNode *n, const Cand *c, const Mode *M) {
    RuleCtx rc = {.n = n, .strat = M->strat, .t = c->t};
    rc.in = local_shape(s, c, n->inputs[0], M->in[0]);
    rc.out = local_shape(s, c, n->output, M->out);
    return (rules_stash(&rc) + rules_istash(&rc)) * 4;
}

/* Whether a device's weights and their gradients stay in its share of the node's last-level
 * cache from one use to the next (docs/cost-model.md §5, "Operands in cache"): 8 bytes per
 * parameter (the f32 gradient and the weight, or under bf16 its f32 copy) over S·t devices,
 * times the devices sharing the node's cache, within the preset's cache_bytes. */
static bool weights_resident(const Search *s, const Cand *c) {
    const ClusterCfg *cl = &s->g->cluster;
    double cache = cl->tables ? cl->tables->cache_bytes : 0.0;
    int64_t per_node = cl->devices_per_node < cl->devices ? cl->devices_per_node : cl->devices;
    double dev = 8.0 * s->param_elems / ((double)c->S * (double)c->t);
    return cache > 0 && dev * (double)(per_node > 0 ? per_node : 1) <= cache;
}

/* The share of node n's GEMM calls whose operands are in cache: a convolution's per-sample
 * GEMMs reuse its weights and read the unrolled input im2col has just written, all but the
 * micro-batch's first sample; a linear layer's (and attention's projections) reuse its weights
 * in every micro-batch after the step's first, when they stay resident. */
static double gemm_reuse(const Search *s, const Cand *c, const IrNode *n, double samples) {
    const PresetTables *t = s->g->cluster.tables;
    if (!t || t->ngemm == 0 || t->gemm[0].flops_hot <= 0) return 0.0; /* no hot rates */
    if (n->op == OP_CONV2D) return samples > 1 ? (samples - 1) / samples : 0.0;
    if (c->m > 1 && weights_resident(s, c)) return (double)(c->m - 1) / (double)c->m;
    return 0.0;
}

/* Node n's local problem in mode M for the compute model (cost_compute.c): the GEMM
 * dimensions its kernel uses on this device for one micro-batch (split: it works on a shard,
 * the columns under a column split, the input features or channels under a row split, the
 * samples when batch-split). */
static CompCtx comp_ctx(const Search *s, const Cand *c, const IrNode *n, const Mode *M, bool split,
                        double div) {
    const IrGraph *g = s->g;
    CompCtx x = {.cl = &g->cluster,
                 .op = n->op,
                 .ff = n->flops_fwd / div,
                 .fb = n->flops_bwd / div,
                 .gemm_scale = s->gemm_scale};
    x.dx = s->needs_grad[n->inputs[0]];
    double t = split ? (double)c->t : 1.0;
    bool col = M->strat == STRAT_COL, row = M->strat == STRAT_ROW, bat = M->strat == STRAT_DATA;
    x.samples = (double)c->b / (bat ? t : 1.0);
    x.reuse = gemm_reuse(s, c, n, x.samples);
    const Shape *in = &IR_VALUE(g, n->inputs[0])->shape, *out = &IR_VALUE(g, n->output)->shape;
    double cols = (double)s->feat[n->output],
           numel = (double)(s->sample_bytes[n->output] / s->elem);
    if (n->op == OP_CONV2D) {
        int64_t k = ir_arg_int(n, CONV2D_KERNEL);
        x.cols = (double)out->d[1] / (col ? t : 1.0);
        x.in = (double)in->d[1] / (row ? t : 1.0) * (double)(k * k);
        x.plane = (double)(out->d[2] * out->d[3]);
        x.unroll =
            !(k == 1 && ir_arg_int(n, CONV2D_STRIDE) == 1 && ir_arg_int(n, CONV2D_PADDING) == 0);
        return x;
    }
    x.rows = x.samples * (cols > 0 ? numel / cols : 0);
    x.cols = cols / (col ? t : 1.0);
    int pv = n->op == OP_CROSS_ENTROPY ? n->inputs[0] : n->output;
    if (col && split && search_padded(s, pv, c->t)) { /* padded classes: ceil(V/t) per rank */
        double v = (double)s->feat[pv], vl = (double)((s->feat[pv] + c->t - 1) / c->t);
        x.cols = n->op == OP_CROSS_ENTROPY ? x.cols : vl;
        x.ff *= vl * t / v, x.fb *= vl * t / v;
    }
    x.in = (double)s->feat[n->inputs[0]] / (row ? t : 1.0);
    if (n->op == OP_ATTENTION) {
        x.in = cols, x.plane = (double)in->d[1];
        x.head = cols / (double)ir_arg_int(n, ATTENTION_HEADS);
    }
    return x;
}

/* Bytes one device moves to and from memory for node n's forward (*fwd) and backward (*bwd)
 * of one micro-batch in mode M (docs/cost-model.md §2): the forward reads its inputs and
 * parameters and writes its output and what it keeps for backward; the backward reads the
 * output's gradient, the saved input and internals and the parameters, writes the input's
 * gradient (when one is needed) and reads and writes the parameter gradients it accumulates
 * (3 passes over the parameters; 2 for a linear or convolution with no input gradient, below).
 * An embedding gathers only the rows it looks up: its table
 * costs as many bytes as its output, each way. */
static void node_bytes(const Search *s, const Cand *c, const IrNode *n, const Mode *M, double *fwd,
                       double *bwd) {
    double in = 0, din = 0;
    for (int k = 0; k < n->ninputs; k++) {
        if (n->inputs[k] < 0 || (k == 1 && n->inputs[1] == n->inputs[0])) continue;
        double b = (double)search_local_bytes(s, c, n->inputs[k], M->in[k < 2 ? k : 0]);
        in += b;
        din += s->needs_grad[n->inputs[k]] ? b : 0;
    }
    double out = (double)search_local_bytes(s, c, n->output, M->out);
    double st = (double)stash_bytes(s, n, c, M);
    double par = (double)node_param_bytes(s, n, M->strat, c->t);
    if (n->op == OP_EMBEDDING && par > 0) par = out;
    /* a linear's or convolution's backward reads its weights only for the input's gradient:
     * without one (the model's first layer) two passes, the gradient's read and write */
    bool gemm = n->op == OP_LINEAR || n->op == OP_CONV2D;
    *fwd = in + out + st + par;
    *bwd = out + in + din + st + (gemm && din == 0 ? 2 : 3) * par;
}

/* The roofline (Williams, Waterman & Patterson 2009): a kernel takes the longer of its FLOPs
 * at the compute rate and its bytes at the memory bandwidth (0: unknown, compute only). */
double cost_roofline(double flops, double rate, double bytes, double bw) {
    double tc = flops / rate, tm = bw > 0 ? bytes / bw : 0.0;
    return tc > tm ? tc : tm;
}

/* The optimizer's pass over `elems` parameters of one device, once per step: it reads each
 * parameter, its gradient and its optimizer state and writes the parameter and the state back —
 * (3 + 2·moved) × 4 bytes per parameter (SGD 12, SGD with momentum 20, Adam/AdamW 28), at the
 * preset's measured rate for that optimizer's kernel, else the memory bandwidth. Under
 * bf16 it reads the f32 gradient sum (4; ZeRO-2's part too) and the f32 master (4) and
 * state, writes them and the bf16 working copy (2): 2 bytes more. */
static double opt_time(const Search *s, int64_t elems) {
    const TrainCfg *tr = &s->g->train;
    const PresetTables *t = s->g->cluster.tables;
    PresetOpt k = tr->opt == OPT_ADAMW  ? PRESET_OPT_ADAMW
                  : tr->opt == OPT_ADAM ? PRESET_OPT_ADAM
                  : tr->momentum != 0.0 ? PRESET_OPT_SGD_MOMENTUM
                                        : PRESET_OPT_SGD;
    double bw = t && t->opt_bw[k] > 0 ? t->opt_bw[k] : s->g->cluster.memory_bandwidth;
    if (bw <= 0 || elems <= 0) return 0.0;
    double bf16 = s->elem == 2 ? 2.0 : 0.0;
    return (double)elems * (4.0 * (3.0 + 2.0 * s->opt_moved) + bf16) / bw;
}

/* The share of a backward's time during which a gradient all-reduce beside it really
 * progresses on this target (the preset's measured grad_overlap; 1 when not given: a GPU's
 * communication stream runs beside the kernels). */
static double grad_overlap(const ClusterCfg *cl) {
    return cl->tables && cl->tables->has_overlap ? cl->tables->grad_overlap : 1.0;
}

/* The compute time a hidden second of gradient sync adds on this target (the preset's measured
 * grad_overlap_slowdown: on a CPU the reduction's copies and sums share the backward's cores). */
static double sync_slowdown(const ClusterCfg *cl) {
    return cl->tables && cl->tables->has_overlap ? cl->tables->grad_overlap_slowdown : 0.0;
}

/* Whether some backward runs after node n's own on its device: the producer of an input
 * that needs a gradient (the layer below; at a stage's first layer, the pipeline drain
 * while the earlier stages finish). When none does, n is the last layer to finish backward
 * and its gradient all-reduce has nothing to hide behind (docs/cost-model.md §5). */
static bool backward_after(const Search *s, const IrNode *n) {
    for (int k = 0; k < n->ninputs; k++)
        if (n->inputs[k] >= 0 && s->needs_grad[n->inputs[k]]) return true;
    return false;
}

/* The unhidden part of mc->sync, `beside` seconds of which run beside the backward: the
 * target's overlap share of those is hidden, and the compute they slow is added. */
static void hide(const ClusterCfg *cl, ModeCost *mc, double beside) {
    mc->slow = sync_slowdown(cl) * beside;
    mc->unhidden = mc->sync - grad_overlap(cl) * beside + mc->slow;
}

/* The gradient synchronisation of a layer whose parameters hold mc->param_bytes on this
 * device, over a group of gs ranks, and what its gradients and optimizer state keep in
 * memory (docs/cost-model.md, "ZeRO"). Without ZeRO: one all-reduce per step, hidden behind
 * `window` of backward. ZeRO-1: a reduce-scatter of the gradients padded to gs equal shards
 * (the same ring bytes and steps as the all-reduce's first half), each rank's optimizer step
 * on its shard of the state, then an all-gather of the updated parameters, which nothing
 * hides. ZeRO-2 also keeps only the gradient shard: each micro-batch's gradients are
 * reduce-scattered as its backward produces them (m reduce-scatters per step), hidden behind
 * the backward after it like the all-reduce; the layer's padded gradient and the part it
 * receives live in one of two transient slots (the trainer's, runtime/trainer_zero2.c), so
 * the stage keeps two of the largest. ZeRO-3 reduce-scatters as ZeRO-2 and also keeps only
 * the parameters' shard: each micro-batch all-gathers the layer's parameters into one
 * transient buffer before its forward and again before its backward (a recomputed forward
 * gathers once more), and frees them after; no all-gather follows the optimizer step. The
 * gathers are priced per micro-batch with the layer (mode_cost), exposed: the layer waits
 * for its weights. */
static void mode_sync(const Search *s, const Cand *c, ModeCost *mc, int64_t gs, Link l,
                      double window) {
    const ClusterCfg *cl = &s->g->cluster;
    int64_t P = mc->param_bytes, e = s->elem;
    /* gradients sum the step's micro-batches in f32, under bf16 too (Megatron's f32 "main
     * gradients": docs/cost-model.md §7b); ZeRO-2 its f32 parts below */
    mc->grad_mem = P / e * 4;
    mc->optim_mem = state_bytes(s, P / e);
    mc->param_mem = P;
    mc->whole_mem = P + mc->grad_mem + mc->optim_mem;
    if (s->zero == 0 || gs < 2) {
        mc->sync_bytes = cost_coll_bytes(COLL_ALLREDUCE, gs, P);
        mc->sync = cost_coll_time_on(cl, COLL_ALLREDUCE, l.inter, gs, P, l.alpha, l.beta);
        hide(cl, mc, fmin(mc->sync, window)); /* the all-reduce's seconds beside backward */
        return;
    }
    int64_t shard = e * ((P / e + gs - 1) / gs), np = shard * gs;
    int64_t rs_n = s->zero >= 2 ? c->m : 1; /* reduce-scatters per step */
    double rs = cost_coll_time_on(cl, COLL_REDUCESCATTER, l.inter, gs, np, l.alpha, l.beta);
    double ag = cost_coll_time_on(cl, COLL_ALLGATHER, l.inter, gs, np, l.alpha, l.beta);
    int64_t agb = cost_coll_bytes(COLL_ALLGATHER, gs, np);
    /* ZeRO-1/2: one all-gather of the updated parameters; ZeRO-3: two per micro-batch */
    int64_t ag_n = s->zero == 3 ? 2 * c->m : 1;
    mc->sync_bytes = rs_n * cost_coll_bytes(COLL_REDUCESCATTER, gs, np) + ag_n * agb;
    if (s->zero == 3) mc->gather = ag, mc->gather_bytes = agb, ag = 0.0;
    mc->sync = (double)rs_n * rs + ag;
    hide(cl, mc, (double)rs_n * fmin(rs, window));
    mc->optim_mem = state_bytes(s, shard / e);
    /* ZeRO-2's parts and slots hold f32 sums, under bf16 too (as the whole gradients above) */
    if (s->zero >= 2) mc->grad_mem = shard / e * 4, mc->zero_tmp = 2 * (np + shard) / e * 4;
    /* ZeRO-3: the parameters' shard, and one gathered layer beside the slots */
    if (s->zero == 3) mc->param_mem = shard, mc->zero_tmp += np;
}

/* The all-reduces a layer's forward runs itself (rules.c own_fwd), each of one float per row of
 * its input: a vocabulary-parallel loss's max, sum of exponentials and target logit, priced
 * against the all-gather of the logits the replicated loss needs (docs/cost-model.md). */
static void mode_own_fwd(const Search *s, const Cand *c, const IrNode *n, const Mode *M,
                         ModeCost *mc) {
    int calls = pass_rules[n->op].own_fwd[M->strat];
    if (calls == 0) return;
    const ClusterCfg *cl = &s->g->cluster;
    int64_t feat = s->feat[n->inputs[0]];
    /* the logits' elements as stored (s->elem each), one float per row sent either way */
    int64_t rows = feat > 0 ? s->sample_bytes[n->inputs[0]] / s->elem / feat * c->b : 0;
    mc->own_fwd = calls;
    mc->own_fwd_bytes = calls * cost_coll_bytes(COLL_ALLREDUCE, c->t, 4 * rows);
    mc->own_bytes += mc->own_fwd_bytes;
    mc->own_fwd_time = calls * cost_coll_time_on(cl, COLL_ALLREDUCE, c->tensor.inter, c->t,
                                                 4 * rows, c->tensor.alpha, c->tensor.beta);
    mc->own += mc->own_fwd_time;
}

static void mode_cost(const Search *s, const Cand *c, int p, const Mode *M, ModeCost *mc) {
    const IrGraph *g = s->g;
    const IrNode *n = IR_NODE(g, p);
    const ClusterCfg *cl = &g->cluster;
    memset(mc, 0, sizeof *mc);
    bool split = c->t > 1 && (M->strat != STRAT_DATA || M->out == LAYOUT_B || M->out == LAYOUT_F);
    double div = (double)c->d * c->m * (split ? c->t : 1);
    CompCtx cx = comp_ctx(s, c, n, M, split, div);
    CompTime ct = cost_compute_time(&cx);
    double bf, bb, wf = cost_op_bw(cl, n->op, false), wb = cost_op_bw(cl, n->op, true);
    node_bytes(s, c, n, M, &bf, &bb);
    if (n->op == OP_CONV2D || wf <= 0) wf = cl->memory_bandwidth; /* conv2d's entry: unrolling */
    if (n->op == OP_CONV2D || wb <= 0) wb = cl->memory_bandwidth;
    mc->fwd = cost_roofline(ct.fwd, 1.0, bf, wf) + ct.fwd_extra;
    mc->bwd = cost_roofline(ct.bwd, 1.0, bb, wb) + ct.bwd_extra;
    CollKind own = c->t > 1 ? pass_rules[n->op].own_bwd[M->strat] : COLL_NONE;
    if (own != COLL_NONE && s->needs_grad[n->inputs[0]]) {
        mc->own_coll = own;
        mc->own_n = s->sample_bytes[n->inputs[0]] * c->b;
        mc->own_bytes = cost_coll_bytes(own, c->t, mc->own_n);
        mc->own = cost_coll_time_on(cl, own, c->tensor.inter, c->t, mc->own_n, c->tensor.alpha,
                                    c->tensor.beta);
    }
    if (c->t > 1) mode_own_fwd(s, c, n, M, mc);
    mc->param_bytes = node_param_bytes(s, n, M->strat, c->t);
    /* bf16: the C trainer's f32 copy of the weights (an embedding reads its rows from bf16) */
    if (s->elem == 2 && n->op != OP_EMBEDDING) mc->wstage = mc->param_bytes / s->elem * 4;
    bool stage_group = c->t > 1 && M->strat == STRAT_DATA && M->out == LAYOUT_B;
    int64_t gs = stage_group ? (int64_t)c->d * c->t : c->d;
    Link l = stage_group ? c->stage : c->data;
    mc->sync_group = stage_group ? GROUP_STAGE : GROUP_DATA;
    double window = backward_after(s, n) ? mc->bwd : 0.0;
    mode_sync(s, c, mc, gs, l, window);
    /* ZeRO-3's gathers, per micro-batch: the forward's (run again when recomputed) and the
     * backward's */
    mc->own += 2.0 * mc->gather, mc->own_fwd_time += mc->gather;
    /* the optimizer step reads and writes what this device updates: under ZeRO its part */
    int64_t el = mc->param_bytes / s->elem;
    mc->opt = opt_time(s, s->zero && gs > 1 ? (el + gs - 1) / gs : el);
    mc->base = c->K * (mc->fwd + mc->bwd + mc->own) + mc->unhidden + mc->opt;
    if (s->rcfix[p]) mc->base += c->K * (mc->fwd + mc->own_fwd_time); /* forward run again */
    mc->act_bytes = search_local_bytes(s, c, n->output, M->out);
    mc->stash = stash_bytes(s, n, c, M);
    mc->act_bytes += mc->stash;
}

static void value_costs(Search *s, const Cand *c) {
    const ClusterCfg *cl = &s->g->cluster;
    for (int v = 0; v < s->V; v++) {
        if (!s->act[v]) continue;
        int w = s->same_value[v];
        if (w >= 0) { /* priced already: an identical value of an earlier block */
            memcpy(&s->resh[v * 16], &s->resh[w * 16], 16 * sizeof(double));
            memcpy(&s->reshf[v * 16], &s->reshf[w * 16], 16 * sizeof(double));
            memcpy(&s->cutf[v * 4], &s->cutf[w * 4], 4 * sizeof(double));
            memcpy(&s->cutb[v * 4], &s->cutb[w * 4], 4 * sizeof(double));
            continue;
        }
        int64_t n = s->sample_bytes[v] * c->b;
        for (int a = 0; a < 4; a++) {
            for (int b = 0; b < 4; b++) {
                CollKind f = cost_layout_change((Layout)a, (Layout)b);
                if ((a == LAYOUT_F || b == LAYOUT_F) && a != b && search_padded(s, v, c->t))
                    f = COLL__COUNT; /* padded logits are never gathered or sliced */
                double tm = INFINITY;
                s->reshf[v * 16 + a * 4 + b] = INFINITY;
                if (f != COLL__COUNT) {
                    tm = cost_coll_time_on(cl, f, c->tensor.inter, c->t, n, c->tensor.alpha,
                                           c->tensor.beta);
                    s->reshf[v * 16 + a * 4 + b] = tm;
                    if (s->needs_grad[v]) {
                        CollKind bk = cost_layout_change_bwd((Layout)a, (Layout)b);
                        tm += cost_coll_time_on(cl, bk, c->tensor.inter, c->t, n, c->tensor.alpha,
                                                c->tensor.beta);
                    }
                }
                s->resh[v * 16 + a * 4 + b] = tm;
            }
            int64_t lb = search_local_bytes(s, c, v, (Layout)a);
            s->cutf[v * 4 + a] = cost_coll_time_on(cl, COLL_SENDRECV, c->pipe.inter, 2, lb,
                                                   c->pipe.alpha, c->pipe.beta);
            s->cutb[v * 4 + a] = s->needs_grad[v] ? s->cutf[v * 4 + a] : 0.0;
        }
    }
}

/* Fills modes and costs for candidate `c`; false when some node has no mode. */
bool search_cand_prepare(Search *s, Cand *c) {
    c->K = (double)(c->m + c->S - 1);
    c->b = s->B / ((int64_t)c->d * c->m);
    cand_links(s, c);
    double sum = 0, mx = 0;
    for (int p = 0; p < s->N; p++) {
        int q = s->same_node[p], k;
        if (q >= 0 && s->rcfix[q] == s->rcfix[p]) { /* an identical node of an earlier block */
            k = s->nmodes[p] = s->nmodes[q];
            memcpy(&s->modes[p * MAX_MODES], &s->modes[q * MAX_MODES], (size_t)k * sizeof(Mode));
            memcpy(&s->mc[p * MAX_MODES], &s->mc[q * MAX_MODES], (size_t)k * sizeof(ModeCost));
        } else {
            k = s->nmodes[p] = search_node_modes(s, p, c, &s->modes[p * MAX_MODES]);
            for (int i = 0; i < k; i++)
                mode_cost(s, c, p, &s->modes[p * MAX_MODES + i], &s->mc[p * MAX_MODES + i]);
        }
        if (k == 0) return false;
        double best = INFINITY;
        for (int i = 0; i < k; i++)
            if (s->mc[p * MAX_MODES + i].base < best) best = s->mc[p * MAX_MODES + i].base;
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
                for (int l = 0; l < 4; l++)
                    lmin = fmin(lmin, s->cutf[v * 4 + l] + s->cutb[v * 4 + l]);
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
