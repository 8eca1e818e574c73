/*
 * lower_spmd.c: the plan becomes a per-rank SPMD schedule (pass "lower").
 *
 * The planner decides, per layer, a stage, a strategy on the tensor axis and the layouts the
 * layer computes on (passes.h). What it does not write down is the program every rank runs.
 * This pass writes it, as data the emitters print: for each pipeline stage, the ordered list
 * of operations one micro-batch goes through forward, the list backward, the gradient
 * synchronisation once per step, and the order in which the stage interleaves the forwards and
 * backwards of the m micro-batches (1F1B). All ranks of a stage run the same lists on their own
 * shards; the mesh coordinates only pick the shard and the communicator (SPMD).
 *
 * Values live in buffers, one per (value, layout) a stage needs. A value's home buffer is where
 * it first appears on the stage: the output of the node that makes it, the rows a LOAD reads
 * for a model input or label (always R: every tensor rank can read its replica's rows), or the
 * RECV from the stage that made it (in the producer's layout, which is the layout at the cut).
 * When a consumer wants another layout, a COLL operation on the tensor group makes that copy
 * just before the first consumer that needs it, from the copy the plan's reshard names (the
 * search picks the held copy that changes to it cheapest: docs/cost-model.md §3, "Copies";
 * without a reshard, from the home), and later consumers share it. So every layout
 * change the plan implies is one explicit collective here, on a named group, with the bytes the
 * runtime will count for it.
 *
 * Backward walks the forward list in reverse. A node becomes its BWD step; a reshard becomes
 * its dual, the collective that moves the gradient from the consumer's gradient layout back to
 * the producer's (the gradient of a P value is R, every other layout keeps its own), which the
 * emitter accumulates into the producer's gradient; a RECV becomes a SEND of the gradient and a
 * SEND a RECV. Because a forward COLL or RECV precedes all consumers of its buffer, its dual runs
 * after all of them have added their part of the gradient, and because a SEND directly follows
 * its producer, the gradient it receives is in place before the producer's backward. A column
 * split computes a partial input gradient; its own all-reduce (Megatron's "f") runs on a scratch
 * copy so other consumers' contributions are not summed t times.
 *
 * Parameters are sharded as the strategy says in the rules table (passes/rules.c: a column
 * split divides a linear weight's output features, a row split its input features, ...); a bias of
 * a layer whose output is a partial sum stays whole and is added by tensor rank 0 only. Gradients
 * sum over micro-batches and are all-reduced once per step over the ranks holding the same shard
 * with different samples: the stage group for data-strategy layers computing on a batch split, the
 * data group otherwise.
 *
 * Invariants on success: every buffer's local shape divides evenly (or the pass reports an
 * internal error naming the node), the byte counts use the same integer formulas as the cost
 * model, and the output depends only on the graph and the plan (deterministic).
 */
#include "passes.h"

#include <string.h>

static const SrcLoc noloc = {NULL, 0, 0, 0};

/* Names and byte formulas come from the cost model (passes/cost.c), so the schedule's byte
 * counts and the plan's predictions are the same integers. */

int64_t sched_busiest_bytes(const Schedule *s) {
    int64_t best = 0;
    for (int k = 0; k < s->S; k++) {
        int64_t n = 0;
        for (int g = 0; g < GROUP__COUNT; g++)
            for (int c = 0; c < COLL__COUNT; c++)
                n += s->stages[k].bytes[g][c];
        if (n > best) best = n;
    }
    return best;
}

int sched_group_size(const Schedule *s, GroupKind k) {
    switch (k) {
    case GROUP_TENSOR: return s->t;
    case GROUP_DATA: return s->d;
    case GROUP_STAGE: return s->d * s->t;
    case GROUP_PIPE: return s->S;
    case GROUP__COUNT: break;
    }
    return 1;
}

/* ───────────────────────────── the lowering context ───────────────────────────── */

typedef struct Lower {
    IrGraph *g;
    Diag *d;
    const Plan *p;
    Schedule *s;
    Vec bufs; /* SchedBuf */
    Vec ops;  /* SchedOp, the list being built */
    int stage;
    int *home;        /* [nvalues]: home buffer of each value on the current stage, -1 */
    int *copy;        /* [nvalues × LAYOUT__COUNT]: buffer of each (value, layout), -1 */
    bool *needs_grad; /* [nvalues]: some parameter lies upstream */
    Vec syncs;        /* SchedSync of the current stage */
    bool ok;
} Lower;

static void ice(Lower *L, int node, const char *what) {
    SrcLoc loc = node >= 0 ? IR_NODE(L->g, node)->loc : (SrcLoc){NULL, 0, 0, 0};
    diag_error(L->d, loc, "internal compiler error: pass lower: %s%s%s", node >= 0 ? "layer '" : "",
               node >= 0 ? IR_NODE(L->g, node)->name : "", node >= 0 ? "': " : "");
    diag_note(L->d, loc, "%s", what);
    L->ok = false;
}

/* With one tensor rank every layout is the whole tensor: use R so no copies appear. */
static Layout norm(const Lower *L, Layout l) { return L->s->t == 1 ? LAYOUT_R : l; }

/* The feature (channel) dimension of an activation: 1 for NCHW images, else the last. */
static int feature_dim(int rank) { return rank == 4 ? 1 : rank - 1; }

static SchedBuf *BUF(const Lower *L, int i) { return &VEC_AT(L->bufs, SchedBuf, i); }

static int make_buf(Lower *L, int value, Layout lay, int node) {
    const IrValue *v = IR_VALUE(L->g, value);
    SchedBuf *b = vec_push(L->g->arena, &L->bufs);
    b->value = value;
    b->stage = L->stage;
    b->layout = lay;
    b->full = v->shape;
    b->full.d[0] = L->s->micro;
    b->split_dim = lay == LAYOUT_B ? 0 : lay == LAYOUT_F ? feature_dim(v->shape.rank) : -1;
    b->local = b->full;
    b->grad = L->needs_grad[value] && v->shape.rank > 0;
    int id = (int)L->bufs.len - 1;
    if (b->split_dim >= 0) {
        bool pad = lay == LAYOUT_F && b->full.d[b->split_dim] % L->s->t != 0; /* classes */
        if (v->shape.rank < 1 || (lay == LAYOUT_F && v->shape.rank < 2) ||
            (b->full.d[b->split_dim] % L->s->t != 0 && !pad)) {
            ice(L, node,
                arena_printf(L->g->arena, "value '%s' cannot be split %s over %d tensor ranks",
                             v->name, lay == LAYOUT_B ? "by batch" : "by feature", L->s->t));
        } else { /* padded classes (passes/rules.c RULES_LINEAR): ceil(V/t) on every rank */
            b->local.d[b->split_dim] = (b->local.d[b->split_dim] + L->s->t - 1) / L->s->t;
        }
    }
    L->copy[value * LAYOUT__COUNT + lay] = id;
    return id;
}

static int64_t buf_bytes(const Lower *L, int b, bool local) {
    const SchedBuf *sb = BUF(L, b);
    const IrValue *v = IR_VALUE(L->g, sb->value);
    int64_t size = v->dtype == DT_F32 ? ir_float_bytes(L->s->precision)
                                      : (int64_t)ir_dtype_size(v->dtype); /* bf16: 2 */
    return ir_shape_numel(local ? &sb->local : &sb->full) * size;
}

static SchedOp *push(Lower *L, SchedOpKind k, int node, int src, int dst) {
    SchedOp *o = vec_push(L->g->arena, &L->ops);
    o->kind = k;
    o->node = node;
    o->src = src;
    o->dst = dst;
    o->peer = -1;
    return o;
}

/* ───────────────────────────── forward lists ───────────────────────────── */

static const PlanCut *find_cut(const Lower *L, int stage, int value);

/* The buffer holding `value` where it first appears on this stage. */
static int home_of(Lower *L, int value, int node) {
    if (L->home[value] >= 0) return L->home[value];
    const IrValue *v = IR_VALUE(L->g, value);
    int b;
    if (v->producer < 0) {
        b = make_buf(L, value, LAYOUT_R, node);
        push(L, SOP_LOAD, -1, -1, b);
    } else {
        const PlanCut *cut = find_cut(L, L->stage - 1, value);
        if (!cut)
            ice(L, node,
                arena_printf(L->g->arena, "value '%s' reaches stage %d without a pipeline cut",
                             v->name, L->stage));
        b = make_buf(L, value, norm(L, cut ? cut->layout : LAYOUT_R), node);
        SchedOp *o = push(L, SOP_RECV, -1, -1, b);
        o->peer = L->stage - 1;
        o->coll = COLL_SENDRECV;
        o->group = GROUP_PIPE;
    }
    L->home[value] = b;
    return b;
}

/* The buffer of this stage that holds `value` in layout `lay`, or -1. */
static int held(const Lower *L, int value, Layout lay) {
    int b = L->copy[value * LAYOUT__COUNT + lay];
    return b >= 0 && BUF(L, b)->stage == L->stage ? b : -1;
}

/* The buffer of `value` in layout `lay`, making it with a collective if needed: from the copy
 * in layout `src_lay` when the plan's reshard says so (LAYOUT__COUNT: from its home). */
static int need(Lower *L, int value, Layout lay, Layout src_lay, int node) {
    int have = held(L, value, lay);
    if (have >= 0) return have;
    int src = home_of(L, value, node);
    if (src_lay != LAYOUT__COUNT && held(L, value, norm(L, src_lay)) >= 0)
        src = held(L, value, norm(L, src_lay));
    else if (src_lay != LAYOUT__COUNT)
        ice(L, node,
            arena_printf(L->g->arena, "the plan makes value '%s' %s from layout %s, not held here",
                         IR_VALUE(L->g, value)->name, plan_layout_name(lay),
                         plan_layout_name(src_lay)));
    Layout from = BUF(L, src)->layout;
    if (from == lay) return src;
    /* R → P is local too: tensor rank 0 keeps the value, the others hold zeros (the search
     * loads model inputs in whatever layout their first consumer wants). */
    CollKind k = from == LAYOUT_R && lay == LAYOUT_P ? COLL_SLICE : cost_layout_change(from, lay);
    if (k == COLL_NONE || k == COLL__COUNT ||
        (IR_VALUE(L->g, value)->dtype != DT_F32 && k != COLL_SLICE)) {
        ice(L, node,
            arena_printf(L->g->arena, "value '%s' cannot change layout %s -> %s",
                         IR_VALUE(L->g, value)->name, plan_layout_name(from),
                         plan_layout_name(lay)));
        return src;
    }
    int dst = make_buf(L, value, lay, node);
    SchedOp *o = push(L, SOP_COLL, node, src, dst);
    o->coll = k;
    o->group = GROUP_TENSOR;
    o->bytes = cost_coll_bytes(k, L->s->t, buf_bytes(L, dst, false));
    return dst;
}

/* The all-reduces a layer's forward runs inside its kernel (rules.c own_fwd: a vocabulary-
 * parallel loss's max, sum of exponentials and target logit, one float per row of its input
 * each): listed after its FWD so the schedule counts their bytes; the emitter prints no call
 * for them and they have no backward dual. */
static void lower_own_fwd(Lower *L, int id, int src) {
    int calls = L->s->t > 1 ? pass_rules[IR_NODE(L->g, id)->op].own_fwd[L->p->nodes[id].strat] : 0;
    const SchedBuf *b = src >= 0 ? BUF(L, src) : NULL;
    for (int i = 0; b && i < calls; i++) {
        int64_t rows = ir_shape_numel(&b->local) / b->local.d[b->local.rank - 1];
        SchedOp *o = push(L, SOP_COLL, id, src, src);
        o->layer_own = true;
        o->coll = COLL_ALLREDUCE;
        o->group = GROUP_TENSOR;
        o->bytes = cost_coll_bytes(COLL_ALLREDUCE, L->s->t, 4 * rows);
    }
}

/* The layout the plan makes input `value` of node `id` from (its reshard's), or LAYOUT__COUNT. */
static Layout reshard_from(const Lower *L, int value, int id) {
    for (int i = 0; i < L->p->nreshards; i++) {
        const PlanReshard *r = &L->p->reshards[i];
        if (r->value == value && r->to_node == id) return r->from;
    }
    return LAYOUT__COUNT;
}

static void lower_node_fwd(Lower *L, int id) {
    const IrNode *n = IR_NODE(L->g, id);
    const PlanNode *pn = &L->p->nodes[id];
    int in[IR_MAX_INPUTS] = {-1, -1};
    Layout l0 = norm(L, pn->in_layout[0]);
    for (int k = 0; k < n->ninputs; k++) {
        Layout lk = norm(L, pn->in_layout[k]);
        if (lk != l0 && !rules_in1_ok(n->op, pn->strat, l0, lk))
            ice(L, id, "its inputs are planned in different layouts");
        in[k] = need(L, n->inputs[k], lk, reshard_from(L, n->inputs[k], id), id);
    }
    bool loss = ir_ops[n->op].flags & OPF_LOSS;
    Layout out = loss ? l0 : norm(L, pn->out_layout);
    if (L->s->t > 1 && !rules_layout_ok(n->op, pn->strat, l0, out))
        ice(L, id,
            arena_printf(L->g->arena, "%s cannot compute as %s from layout %s to %s",
                         ir_ops[n->op].name,
                         pn->strat == STRAT_COL   ? "tensor(col)"
                         : pn->strat == STRAT_ROW ? "tensor(row)"
                                                  : "data",
                         plan_layout_name(l0), plan_layout_name(out)));
    int ob = loss ? -1 : make_buf(L, n->output, out, id);
    SchedOp *o = push(L, SOP_FWD, id, in[0], ob);
    o->dst = ob;
    if (ob >= 0) L->home[n->output] = ob;
    lower_own_fwd(L, id, in[0]);
}

/* The cut that carries `value` from stage `stage` to the next, or NULL. */
static const PlanCut *find_cut(const Lower *L, int stage, int value) {
    for (int i = 0; i < L->p->ncuts; i++)
        if (L->p->cuts[i].stage == stage && L->p->cuts[i].value == value) return &L->p->cuts[i];
    return NULL;
}

/* At the end of a stage's forward: every value the plan's cuts carry to the next stage, in
 * the layout the plan chose for the cut (resharded here first when that differs). A value
 * that skips a stage is carried by one cut per boundary, so the stage in between forwards it. */
static void lower_sends(Lower *L) {
    for (int i = 0; i < L->p->ncuts; i++) {
        const PlanCut *c = &L->p->cuts[i];
        if (c->stage != L->stage) continue;
        int b = need(L, c->value, norm(L, c->layout), LAYOUT__COUNT, -1);
        SchedOp *o = push(L, SOP_SEND, -1, b, -1);
        o->peer = L->stage + 1;
        o->coll = COLL_SENDRECV;
        o->group = GROUP_PIPE;
        o->bytes = buf_bytes(L, b, true);
    }
}

/* ───────────────────────────── backward lists ───────────────────────────── */

/* The layer's own collective on its input gradient (rules.c): a column split's is a partial
 * sum over the tensor ranks, all-reduced. */
static CollKind layer_own_bwd(const Lower *L, int id) {
    if (L->s->t <= 1) return COLL_NONE;
    return pass_rules[IR_NODE(L->g, id)->op].own_bwd[L->p->nodes[id].strat];
}

static void lower_dual(Lower *L, const SchedOp *f) {
    switch (f->kind) {
    case SOP_FWD: {
        push(L, SOP_BWD, f->node, f->src, f->dst);
        CollKind own = layer_own_bwd(L, f->node);
        if (own != COLL_NONE && f->src >= 0 && BUF(L, f->src)->grad) {
            SchedOp *o = push(L, SOP_COLL, f->node, f->src, f->src);
            o->grad = true;
            o->layer_own = true;
            o->coll = own;
            o->group = GROUP_TENSOR;
            o->bytes = cost_coll_bytes(own, L->s->t, buf_bytes(L, f->src, false));
        }
        break;
    }
    case SOP_COLL: {
        if (f->layer_own || !BUF(L, f->src)->grad) break; /* a kernel's own: no dual */
        CollKind k = cost_layout_change(cost_grad_layout(BUF(L, f->dst)->layout),
                                        cost_grad_layout(BUF(L, f->src)->layout));
        SchedOp *o = push(L, SOP_COLL, f->node, f->src, f->dst);
        o->grad = true;
        o->coll = k;
        o->group = GROUP_TENSOR;
        o->bytes = cost_coll_bytes(k, L->s->t, buf_bytes(L, f->src, false));
        break;
    }
    case SOP_RECV:
    case SOP_SEND: {
        int b = f->kind == SOP_RECV ? f->dst : f->src;
        if (!BUF(L, b)->grad) break;
        SchedOp *o = push(L, f->kind == SOP_RECV ? SOP_SEND : SOP_RECV, -1, b, b);
        o->grad = true;
        o->peer = f->peer;
        o->coll = COLL_SENDRECV;
        o->group = GROUP_PIPE;
        o->bytes = o->kind == SOP_SEND ? buf_bytes(L, b, true) : 0;
        break;
    }
    case SOP_LOAD: break; /* inputs and labels need no gradient */
    case SOP_BWD: break;  /* never in a forward list */
    }
}

/* ───────────────────────────── parameters ───────────────────────────── */

static void lower_params(Lower *L, int id) {
    const IrNode *n = IR_NODE(L->g, id);
    const PlanNode *pn = &L->p->nodes[id];
    Schedule *s = L->s;
    bool batch_split = s->t > 1 && norm(L, pn->in_layout[0]) == LAYOUT_B;
    int64_t count = 0, e = ir_float_bytes(s->precision); /* gradient bytes per float */
    for (int i = n->first_param; i < n->first_param + n->nparams; i++) {
        SchedParam *sp = &s->params[i];
        const IrParam *ip = IR_PARAM(L->g, i);
        sp->param = i;
        sp->stage = L->stage;
        sp->local = ip->shape;
        ParamSplit split = rules_param_split(n->op, pn->strat, ip->role);
        sp->split_dim = s->t > 1 ? split.dim : -1;
        sp->rank0_adds = s->t > 1 && split.rank0;
        if (sp->split_dim >= 0 && split.ceil) {
            /* rounded up (an embedding's vocabulary): the last rank's extra rows are unused */
            sp->local.d[sp->split_dim] = (sp->local.d[sp->split_dim] + s->t - 1) / s->t;
        } else if (sp->split_dim >= 0) {
            if (sp->local.d[sp->split_dim] % s->t != 0)
                ice(L, id,
                    arena_printf(L->g->arena, "parameter '%s' does not split over %d ranks",
                                 ip->name, s->t));
            else
                sp->local.d[sp->split_dim] /= s->t;
        }
        sp->sync = pn->strat == STRAT_DATA && batch_split ? GROUP_STAGE : GROUP_DATA;
        sp->sync_size = sched_group_size(s, sp->sync);
        count += ir_shape_numel(&sp->local);
    }
    if (n->nparams == 0 || s->params[n->first_param].sync_size <= 1) return;
    SchedSync *y = vec_push(L->g->arena, &L->syncs);
    y->node = id;
    y->first_param = n->first_param;
    y->nparams = n->nparams;
    y->group = s->params[n->first_param].sync;
    y->size = s->params[n->first_param].sync_size;
    y->count = count;
    if (s->zero == 0) {
        y->bytes = cost_coll_bytes(COLL_ALLREDUCE, y->size, count * e);
        s->stages[L->stage].bytes[y->group][COLL_ALLREDUCE] += y->bytes;
        return;
    }
    /* ZeRO: padded to size equal shards; reduce-scatter (ZeRO-2/3: every micro-batch), then the
     * optimizer on this rank's shard and an all-gather of the updated parameters (ZeRO-3: of
     * the parameters before each micro-batch's forward, again before its backward, and once
     * more before a recomputed forward) */
    y->shard = (count + y->size - 1) / y->size;
    int64_t np = y->shard * y->size * e, rs = cost_coll_bytes(COLL_REDUCESCATTER, y->size, np);
    int64_t ag = cost_coll_bytes(COLL_ALLGATHER, y->size, np);
    int64_t rs_n = s->zero >= 2 ? s->m : 1, ag_n = 1;
    if (s->zero == 3) ag_n = (2 + (L->p->nodes[id].recompute ? 1 : 0)) * (int64_t)s->m;
    y->bytes = rs_n * rs + ag_n * ag;
    s->stages[L->stage].bytes[y->group][COLL_REDUCESCATTER] += rs_n * rs;
    s->stages[L->stage].bytes[y->group][COLL_ALLGATHER] += ag_n * ag;
}

/* ───────────────────────────── stages ───────────────────────────── */

/* 1F1B: min(S−s−1, m) warm-up forwards, then alternate, then the remaining backwards. */
static void order_1f1b(Lower *L, SchedStage *st, int s) {
    int m = L->s->m, S = L->s->S;
    int warm = S - s - 1 < m ? S - s - 1 : m;
    st->order = arena_calloc(L->g->arena, (size_t)(2 * m), sizeof *st->order);
    int k = 0;
    for (int i = 0; i < warm; i++)
        st->order[k++] = (SchedItem){false, i};
    for (int i = 0; i < m - warm; i++) {
        st->order[k++] = (SchedItem){false, warm + i};
        st->order[k++] = (SchedItem){true, i};
    }
    for (int i = m - warm; i < m; i++)
        st->order[k++] = (SchedItem){true, i};
    st->norder = k;
    st->stash = S - s < m ? S - s : m;
}

static SchedOp *take_ops(Lower *L, int *n) {
    *n = (int)L->ops.len;
    SchedOp *ops = arena_calloc(L->g->arena, L->ops.len ? L->ops.len : 1, sizeof *ops);
    if (L->ops.len) memcpy(ops, L->ops.data, L->ops.len * sizeof *ops);
    L->ops = (Vec){NULL, 0, 0, sizeof(SchedOp)};
    return ops;
}

static void count_bytes(Schedule *s, SchedStage *st) {
    for (int i = 0; i < st->nfwd; i++)
        st->bytes[st->fwd[i].group][st->fwd[i].coll] += st->fwd[i].bytes * s->m;
    for (int i = 0; i < st->nrec; i++)
        st->bytes[st->rec[i].group][st->rec[i].coll] += st->rec[i].bytes * s->m;
    for (int i = 0; i < st->nbwd; i++)
        st->bytes[st->bwd[i].group][st->bwd[i].coll] += st->bwd[i].bytes * s->m;
}

/* The recomputed layers' forward ops, in forward order, run again at the start of each
 * backward (docs/cost-model.md, "Activation recomputation"); the buffers they write exist once
 * (`rebuilt`), except those sent to the next stage, kept per micro-batch until the send ends. */
static void lower_recompute(Lower *L, SchedStage *st) {
    for (int i = 0; i < st->nfwd; i++) {
        const SchedOp *o = &st->fwd[i];
        if ((o->kind != SOP_FWD && o->kind != SOP_COLL) || o->node < 0 ||
            !L->p->nodes[o->node].recompute)
            continue;
        *(SchedOp *)vec_push(L->g->arena, &L->ops) = *o;
        /* inputs and labels (sliced for a recomputed layer) stay per slot: the plan's memory
         * counts activations only */
        if (o->dst >= 0 && IR_VALUE(L->g, BUF(L, o->dst)->value)->kind == VAL_ACT)
            BUF(L, o->dst)->rebuilt = true;
    }
    for (int i = 0; i < st->nfwd; i++)
        if (st->fwd[i].kind == SOP_SEND) BUF(L, st->fwd[i].src)->rebuilt = false;
    st->rec = take_ops(L, &st->nrec);
}

static void lower_stage(Lower *L, int s) {
    const PlanStage *ps = &L->p->stages[s];
    SchedStage *st = &L->s->stages[s];
    int nv = IR_NVALUES(L->g);
    L->stage = s;
    for (int v = 0; v < nv; v++)
        L->home[v] = -1;
    for (int v = 0; v < nv * LAYOUT__COUNT; v++)
        L->copy[v] = -1;
    st->first_node = ps->first_node;
    st->last_node = ps->last_node;
    for (int id = ps->first_node; id <= ps->last_node; id++) {
        if (L->p->nodes[id].stage != s)
            ice(L, id, "its stage disagrees with the stage's node range");
        lower_node_fwd(L, id);
        lower_params(L, id);
    }
    lower_sends(L);
    st->fwd = take_ops(L, &st->nfwd);
    for (int i = st->nfwd - 1; i >= 0; i--)
        lower_dual(L, &st->fwd[i]);
    st->bwd = take_ops(L, &st->nbwd);
    lower_recompute(L, st);
    st->nsync = (int)L->syncs.len;
    st->sync = L->syncs.data;
    L->syncs = (Vec){NULL, 0, 0, sizeof(SchedSync)};
    order_1f1b(L, st, s);
    count_bytes(L->s, st);
}

static bool check_mesh(Lower *L) {
    const Plan *p = L->p;
    Schedule *s = L->s;
    if (p->S < 1 || p->d < 1 || p->t < 1 || p->m < 1) {
        ice(L, -1, "the plan's mesh or micro-batch count is not positive");
        return false;
    }
    if (L->g->train.batch % ((int64_t)p->d * p->m) != 0) {
        ice(L, -1,
            arena_printf(L->g->arena,
                         "batch %lld does not divide into %d replicas × %d micro-batches",
                         (long long)L->g->train.batch, p->d, p->m));
        return false;
    }
    s->S = p->S, s->d = p->d, s->t = p->t, s->m = p->m;
    s->zero = p->zero;
    s->precision = L->g->train.precision;
    s->batch = L->g->train.batch;
    s->micro = s->batch / ((int64_t)p->d * p->m);
    return true;
}

bool pass_lower(IrGraph *g, Diag *d) {
    if (!g->plan) {
        diag_error(d, noloc, "internal compiler error: pass lower: no plan");
        return false;
    }
    Lower L = {.g = g, .d = d, .p = g->plan, .ok = true};
    L.bufs.item = sizeof(SchedBuf);
    L.ops.item = sizeof(SchedOp);
    L.syncs.item = sizeof(SchedSync);
    L.s = arena_alloc(g->arena, sizeof *L.s);
    if (!check_mesh(&L)) return false;
    int nv = IR_NVALUES(g);
    L.home = arena_calloc(g->arena, (size_t)nv + 1, sizeof(int));
    L.copy = arena_calloc(g->arena, (size_t)nv * LAYOUT__COUNT + 1, sizeof(int));
    L.needs_grad = arena_calloc(g->arena, (size_t)nv + 1, sizeof(bool));
    for (int i = 0; i < IR_NNODES(g); i++) {
        const IrNode *n = IR_NODE(g, i);
        bool ng = n->nparams > 0;
        for (int k = 0; k < n->ninputs; k++)
            ng |= L.needs_grad[n->inputs[k]];
        L.needs_grad[n->output] = ng;
    }
    L.s->nparams = IR_NPARAMS(g);
    L.s->params = arena_calloc(g->arena, (size_t)L.s->nparams + 1, sizeof(SchedParam));
    L.s->stages = arena_calloc(g->arena, (size_t)L.s->S, sizeof(SchedStage));
    for (int s = 0; s < L.s->S && L.ok; s++)
        lower_stage(&L, s);
    L.s->bufs = L.bufs.data;
    L.s->nbufs = (int)L.bufs.len;
    g->sched = L.s;
    return L.ok;
}

/* ───────────────────────────── printing ───────────────────────────── */

static const char *buf_str(const IrGraph *g, const Schedule *s, int b, bool grad) {
    if (b < 0) return "-";
    const SchedBuf *sb = &s->bufs[b];
    char shp[128];
    const IrValue *v = IR_VALUE(g, sb->value);
    ir_shape_str(shp, sizeof shp, v->dtype, &sb->local);
    Layout l = grad ? cost_grad_layout(sb->layout) : sb->layout;
    return arena_printf(g->arena, "%s%s[%s] %s", grad ? "d" : "", v->name, plan_layout_name(l),
                        shp);
}

static void print_op(const IrGraph *g, const Schedule *s, const SchedOp *o, FILE *out) {
    const char *src = buf_str(g, s, o->src, o->grad), *dst = buf_str(g, s, o->dst, o->grad);
    switch (o->kind) {
    case SOP_LOAD: fprintf(out, "    load    %s\n", dst); break;
    case SOP_FWD:
    case SOP_BWD: {
        const IrNode *n = IR_NODE(g, o->node);
        fprintf(out, "    %s %-12s %s(%s)  %s -> %s\n",
                o->kind == SOP_FWD ? "forward " : "backward", n->name, ir_ops[n->op].name,
                plan_node_strategy_name(n->op, g->plan->nodes[o->node].strat),
                o->kind == SOP_FWD ? src : dst, o->kind == SOP_FWD ? dst : src);
        break;
    }
    case SOP_COLL:
        if (o->layer_own)
            fprintf(out, "    %-8s %s group, %s (%s of %s)  %lld B\n", cost_coll_name(o->coll),
                    plan_group_name(o->group), src,
                    o->grad ? "input gradient" : "one float per row, in the forward",
                    IR_NODE(g, o->node)->name, (long long)o->bytes);
        else
            fprintf(out, "    %-8s %s group, %s %s %s  %lld B\n", cost_coll_name(o->coll),
                    plan_group_name(o->group), o->grad ? dst : src, o->grad ? "->" : "->",
                    o->grad ? src : dst, (long long)o->bytes);
        break;
    case SOP_SEND:
        fprintf(out, "    send     %s to stage %d  %lld B\n", src, o->peer, (long long)o->bytes);
        break;
    case SOP_RECV:
        fprintf(out, "    recv     %s from stage %d\n", o->grad ? src : dst, o->peer);
        break;
    }
}

static void print_stage(const IrGraph *g, const Schedule *s, int k, FILE *out) {
    const SchedStage *st = &s->stages[k];
    fprintf(out, "stage %d: layers %d..%d, activations of %d micro-batch%s kept\n", k,
            st->first_node, st->last_node, st->stash, st->stash == 1 ? "" : "es");
    fprintf(out, "  forward, per micro-batch:\n");
    for (int i = 0; i < st->nfwd; i++)
        print_op(g, s, &st->fwd[i], out);
    if (st->nrec)
        fprintf(out, "  recomputed at the start of each backward (activations not kept):\n");
    for (int i = 0; i < st->nrec; i++)
        print_op(g, s, &st->rec[i], out);
    fprintf(out, "  backward, per micro-batch (gradients accumulate over micro-batches):\n");
    for (int i = 0; i < st->nbwd; i++)
        print_op(g, s, &st->bwd[i], out);
    fprintf(out, "  parameters (local shards), then the gradient sync per step:\n");
    for (int i = 0; i < s->nparams; i++) {
        const SchedParam *sp = &s->params[i];
        if (sp->stage != k) continue;
        char loc[128], whole[128];
        ir_shape_str(loc, sizeof loc, DT_F32, &sp->local);
        ir_shape_str(whole, sizeof whole, DT_F32, &IR_PARAM(g, i)->shape);
        fprintf(out, "    %-28s %s%s%s%s\n", IR_PARAM(g, i)->name, loc,
                sp->split_dim >= 0 ? " of " : "", sp->split_dim >= 0 ? whole : "",
                sp->rank0_adds ? ", added by tensor rank 0" : "");
    }
    for (int i = 0; i < st->nsync; i++) {
        const SchedSync *y = &st->sync[i];
        if (s->zero)
            fprintf(out,
                    "    reduce-scatter%s + all-gather%s %s group (%d ranks): gradients of %s, "
                    "%lld floats, shards of %lld  %lld B\n",
                    s->zero >= 2 ? " per micro-batch" : "",
                    s->zero != 3                        ? ""
                    : g->plan->nodes[y->node].recompute ? " of the parameters before each forward, "
                                                          "recomputed forward and backward"
                                                        : " of the parameters before each forward "
                                                          "and backward",
                    plan_group_name(y->group), y->size, IR_NODE(g, y->node)->name,
                    (long long)y->count, (long long)y->shard, (long long)y->bytes);
        else
            fprintf(out,
                    "    all-reduce %s group (%d ranks): gradients of %s, %lld floats  %lld B\n",
                    plan_group_name(y->group), y->size, IR_NODE(g, y->node)->name,
                    (long long)y->count, (long long)y->bytes);
    }
    if (s->zero)
        fprintf(out,
                "  optimizer step on the local shards, ZeRO-%d: each rank updates its shard\n"
                "  order:",
                s->zero);
    else
        fprintf(out, "  optimizer step on the local shards\n  order:");
    for (int i = 0; i < st->norder; i++)
        fprintf(out, " %c%d", st->order[i].bwd ? 'B' : 'F', st->order[i].micro);
    fprintf(out, "\n  bytes per device per step:");
    bool any = false;
    for (int gk = 0; gk < GROUP__COUNT; gk++)
        for (int c = 0; c < COLL__COUNT; c++)
            if (st->bytes[gk][c]) {
                fprintf(out, "%s %s %s %lld", any ? "," : "", plan_group_name(gk),
                        cost_coll_name(c), (long long)st->bytes[gk][c]);
                any = true;
            }
    fprintf(out, "%s\n", any ? "" : " none");
}

void pass_schedule_print(const IrGraph *g, FILE *out) {
    const Schedule *s = g->sched;
    if (!s) return;
    char b[5][48];
    fprintf(out, "schedule %s (%s): mesh S=%s × d=%s × t=%s = %s\n", g->name, g->file,
            units_n(b[0], 48, s->S, "stage"), units_n(b[1], 48, s->d, "data replica"),
            units_n(b[2], 48, s->t, "tensor rank"), units_n(b[3], 48, s->S * s->d * s->t, "rank"));
    fprintf(out, "batch %lld = %s × %s × %s\n", (long long)s->batch,
            units_n(b[0], 48, s->d, "replica"), units_n(b[1], 48, s->m, "micro-batch"),
            units_n(b[2], 48, (long long)s->micro, "sample"));
    if (s->precision == PRECISION_BF16)
        fprintf(out, "precision bf16: every f32 buffer and message below is held and sent as bf16 "
                     "(2 B), gradients too (summed over micro-batches in f32); master weights and "
                     "optimizer state f32\n");
    for (int k = 0; k < s->S; k++)
        print_stage(g, s, k, out);
    fprintf(out, "busiest device: %lld B per step (the plan predicts %lld B)\n",
            (long long)sched_busiest_bytes(s), (long long)g->plan->totals.comm_bytes);
}
