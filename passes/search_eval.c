/*
 * search_eval.c: a complete plan of the search evaluated — every node's mode and stage fixed,
 * the step time, stage times and memory, the reshards and pipeline cuts, and the bytes each
 * device moves per step.
 *
 * search_eval_plan() walks the nodes in order with the layouts of the live activations,
 * applying each node's mode (search_trans) and closing a stage at every cut. A stage's cost is
 * its K-scaled per-micro-batch load (nodes, reshards, the sends of its cuts) plus its
 * unhidden gradient sync, exactly what the sweep bounds, so the time it returns is the one the
 * sweep found. Its memory is parameters, gradients and optimizer state (shards of them under
 * ZeRO), the activations of min(S − k, m) micro-batches in flight, a buffer twice the
 * largest message and ZeRO-2's two gradient slots (each the largest layer's padded gradient
 * and one part of it). The search
 * calls it without a Plan to check each candidate's best plan against the device memory and
 * the tests' oracle to price every plan; search_plan_eval_new() calls it with one to fill the
 * Plan that lowering, the report and codegen read. Invariant: the bytes of totals.comm_bytes
 * are the schedule's bytes (passes/lower_spmd.c, sched_busiest_bytes) for the busiest stage.
 */
#include "search_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void acc_buf(StageAcc *a, int64_t n) {
    if (2 * n > a->buf) a->buf = 2 * n;
}

/* x, or 0 where x is below the rounding of the step's sum (F − K·Tmax − optimizer leaves
 * ~1e-18 s where a plan has no gradient sync: the report said "0 s of 0 s hidden"). */
static double not_residue(double x, double step) { return x > 1e-12 * step ? x : 0.0; }

static void stage_close(const Search *s, const Cand *c, int k, StageAcc *a, double cut_l,
                        PlanStage *ps, double *cost) {
    double load = a->load + cut_l;
    *cost = load;
    if (!ps) return;
    ps->fwd_time = a->fwd;
    ps->bwd_time = a->bwd;
    ps->comm_time = a->comm;
    ps->grad_sync_time = a->sync;
    ps->grad_sync_hidden = a->sync - (a->unhidden - a->slow);
    ps->grad_sync_slow = a->slow;
    ps->opt_time = a->opt;
    int64_t inflight = c->S - k < c->m ? c->S - k : c->m;
    ps->mem_params = a->params;
    ps->mem_grads = a->grads;
    ps->mem_optim = a->optim;
    /* a recomputed layer's activations exist for one micro-batch at a time (the one whose
     * backward rebuilt them); the rest for every micro-batch in flight */
    ps->mem_acts = (a->acts - a->racts) * inflight + a->racts;
    ps->mem_internals = (a->stash - a->rstash) * inflight + a->rstash;
    /* the largest of the collective buffers, a bf16 C trainer's f32 copy of one layer's
     * weights and ZeRO-2's slots (the exact search's model; the trainer holds them all:
     * docs/runtime.md, "Memory: allocated against predicted") */
    int64_t base = a->buf > a->wbuf ? a->buf : a->wbuf;
    ps->mem_buffers = base > a->zbuf ? base : a->zbuf;
    ps->mem_zero_buf = a->zbuf;
    ps->mem_bytes = ps->mem_params + ps->mem_grads + ps->mem_optim + ps->mem_acts + ps->mem_buffers;
    ps->recompute = a->rcn;
    ps->rc_compute = a->rcf;
    ps->rc_comm = a->rcc;
    ps->rc_bytes = a->rbytes;
    ps->rc_saved = a->racts * (inflight - 1);
    /* what ZeRO saved: the same stage's parameters, gradients and state whole, its buffers
     * without it */
    ps->zero_saved = a->whole + base - a->params - a->grads - a->optim - ps->mem_buffers;
    /* bf16 against f32: parameters, activations (less the ops' internals, f32 either way) and
     * collective buffers would be twice as large (the gradients and ZeRO-2's slots are f32
     * either way), the f32 master weights (1 of the state's copies + 1 parts) and the f32 copy
     * of one layer's weights would not exist */
    int64_t f32_buffers = 2 * a->buf > a->zbuf ? 2 * a->buf : a->zbuf;
    if (s->elem == 2)
        ps->bf16_saved = ps->mem_params + ps->mem_acts - ps->mem_internals -
                         ps->mem_optim / (s->opt_copies + 1) + f32_buffers - ps->mem_buffers;
    s->stage_mem[k] = ps->mem_bytes;
}

/* The cut before point p: its sends, for the stage that ends and the one that begins. */
static void eval_cut(const Search *s, const Cand *c, int p, int k, const uint8_t *lay,
                     StageAcc *left, StageAcc *right, Plan *plan, int *ncuts) {
    for (int j = 0; j < s->live_n[p]; j++) {
        int v = s->live[s->live_off[p] + j];
        int64_t lb = search_local_bytes(s, c, v, (Layout)lay[j]);
        left->comm += s->cutf[v * 4 + lay[j]];
        left->bytes += lb;
        acc_buf(left, lb);
        if (s->intern[v * 4 + lay[j]]) /* a sent buffer is kept until its send completes */
            left->racts -= lb;
        memset(&s->intern[v * 4], 0, 4); /* the next stage made none of its copies */
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

/* The reshards node p needs in mode M from state `code`: each input in a layout the stage does
 * not hold yet, made from the held copy search_resh_from picks; accumulates into a. */
void search_eval_reshards(const Search *s, const Cand *c, int p, const Mode *M, unsigned code,
                          StageAcc *a, Plan *plan) {
    const IrNode *n = IR_NODE(s->g, p);
    uint8_t lay[MAX_LIVE], have[MAX_LIVE];
    search_decode(code, s->live_n[p], lay);
    search_decode_have(code, s->live_n[p], have);
    for (int k = 0; k < n->ninputs; k++) {
        int pos = s->in_pos[p * IR_MAX_INPUTS + k];
        if (pos < 0 || (k == 1 && n->inputs[1] == n->inputs[0])) continue;
        int v = n->inputs[k];
        Layout to = M->in[k];
        if (have[pos] >> to & 1u) continue;
        Layout from = search_resh_from(s, p, v, have[pos], (Layout)lay[pos], to);
        if (from == LAYOUT__COUNT) continue; /* not a plan: search_trans refuses it */
        int64_t nb = s->sample_bytes[v] * c->b;
        CollKind f = cost_layout_change(from, to);
        CollKind bk = s->needs_grad[v] ? cost_layout_change_bwd(from, to) : COLL_NONE;
        int64_t fb = cost_coll_bytes(f, c->t, nb), bb = cost_coll_bytes(bk, c->t, nb);
        a->comm += s->resh[v * 16 + from * 4 + to];
        a->bytes += fb + bb;
        a->acts += search_local_bytes(s, c, v, to);
        acc_buf(a, nb);
        if (s->rc[p]) { /* the layout change runs again before the backward */
            a->rcc += s->reshf[v * 16 + from * 4 + to];
            a->rbytes += fb;
            a->racts += search_local_bytes(s, c, v, to);
            s->intern[v * 4 + to] = 1;
        }
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
    if (s->rc[p]) {
        a->rcf += mc->fwd;
        a->rcc += mc->own_fwd_time; /* its forward's own all-reduces run again */
        a->rbytes += mc->own_fwd_bytes + mc->gather_bytes; /* ZeRO-3: gathered again */
        a->racts += mc->act_bytes;
        a->rstash += mc->stash;
        a->rcn++;
        s->intern[IR_NODE(s->g, p)->output * 4 + s->modes[p * MAX_MODES + mi].out] = 1;
    }
    a->fwd += mc->fwd;
    a->bwd += mc->bwd;
    a->comm += mc->own;
    a->bytes += mc->own_bytes;
    a->sync += mc->sync;
    a->unhidden += mc->unhidden;
    a->slow += mc->slow;
    a->opt += mc->opt;
    a->params += mc->param_mem;
    a->grads += mc->grad_mem;
    a->optim += mc->optim_mem;
    a->whole += mc->whole_mem;
    if (mc->zero_tmp > a->zbuf) a->zbuf = mc->zero_tmp;
    if (mc->wstage > a->wbuf) a->wbuf = mc->wstage;
    a->acts += mc->act_bytes;
    a->stash += mc->stash;
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
double search_eval_plan(const Search *s, const Cand *c, const int *mode, const int *stage,
                        Plan *plan, int64_t *mem_peak) {
    if (!plan_shape_ok(s, c, mode, stage)) return INFINITY;
    uint8_t lay[MAX_LIVE];
    unsigned code = 0; /* the state before node p */
    StageAcc a, nexta;
    memset(&a, 0, sizeof a);
    double F = 0, Tmax = -1, cost;
    int smax = 0, sworst = 0, ncuts = 0, k = 0;
    int64_t peak = 0;
    double worst = -1;
    PlanStage tmp;
    memset(s->intern, 0, (size_t)s->V * 4);
    for (int p = 0; p <= s->N; p++) {
        bool end = p == s->N;
        if (end || (p > 0 && stage[p] != stage[p - 1])) {
            memset(&nexta, 0, sizeof nexta);
            search_decode(code, s->live_n[p], lay);
            double cl = end ? 0.0 : search_cut_left(s, c, p, lay);
            if (!end) eval_cut(s, c, p, k, lay, &a, &nexta, plan, &ncuts);
            PlanStage *ps = plan ? &plan->stages[k] : &tmp;
            stage_close(s, c, k, &a, cl, ps, &cost);
            if (plan) ps->last_node = p - 1;
            double T = a.fwd + a.bwd + a.comm + a.rcf + a.rcc;
            if (T > Tmax) Tmax = T, smax = k;
            if (cost > worst) worst = cost, sworst = k;
            if (cost > F) F = cost;
            if (ps->mem_bytes > peak) peak = ps->mem_bytes;
            if (end) break;
            k++;
            a = nexta;
            a.load = search_cut_right(s, c, p, lay);
            code = search_cut_code(code, s->live_n[p]); /* the next stage holds what it got */
            if (plan) plan->stages[k].first_node = p;
        }
        unsigned cd;
        double w = search_trans(s, c, p, mode[p], code, &cd, NULL);
        if (w < 0) return INFINITY;
        double rc0 = a.rcf + a.rcc;
        search_eval_reshards(s, c, p, &s->modes[p * MAX_MODES + mode[p]], code, &a, plan);
        eval_node_into(s, p, mode[p], &a);
        a.load += w;
        if (s->rc[p] && !s->rcfix[p]) a.load += c->K * (a.rcf + a.rcc - rc0); /* not in w */
        code = cd;
    }
    if (mem_peak) *mem_peak = peak;
    if (plan) {
        plan->ncuts = ncuts;
        PlanTotals *t = &plan->totals;
        const PlanStage *b = &plan->stages[smax], *w = &plan->stages[sworst];
        t->step_time = F;
        t->compute = c->m * (b->fwd_time + b->bwd_time + b->rc_compute);
        t->exposed_comm = c->m * (b->comm_time + b->rc_comm);
        t->bubble = (c->S - 1) * plan_stage_time(b);
        t->optimizer = fmin(w->opt_time, fmax(0.0, F - c->K * Tmax)); /* the parts sum to F */
        t->grad_sync_unhidden = not_residue(F - c->K * Tmax - t->optimizer, F);
        /* the slowdown is step time the sync costs but no wait: hidden is the wait removed */
        t->grad_sync_slow = fmin(w->grad_sync_slow, t->grad_sync_unhidden);
        t->grad_sync_hidden =
            not_residue(w->grad_sync_time - (t->grad_sync_unhidden - t->grad_sync_slow), F);
        t->mem_peak = peak;
        t->fits = (double)peak <= s->g->cluster.memory;
    }
    return F;
}

/* Bytes per device per step of each stage (the busiest is the plan's figure). */
static void plan_bytes(const Search *s, const Cand *c, const int *mode, Plan *plan) {
    int64_t *per = search_xcalloc((size_t)c->S, sizeof(int64_t));
    for (int p = 0; p < s->N; p++) {
        const ModeCost *mc = &s->mc[p * MAX_MODES + mode[p]];
        per[plan->nodes[p].stage] += mc->sync_bytes + mc->own_bytes * c->m;
        if (s->rc[p]) per[plan->nodes[p].stage] += (mc->own_fwd_bytes + mc->gather_bytes) * c->m;
    }
    for (int i = 0; i < plan->nreshards; i++) {
        const PlanReshard *r = &plan->reshards[i];
        per[plan->nodes[r->to_node].stage] += (r->fwd_bytes + r->bwd_bytes) * c->m;
        if (s->rc[r->to_node]) per[plan->nodes[r->to_node].stage] += r->fwd_bytes * c->m;
    }
    for (int i = 0; i < plan->ncuts; i++) {
        const PlanCut *pc = &plan->cuts[i];
        per[pc->stage] += pc->bytes * c->m;
        if (s->needs_grad[pc->value]) per[pc->stage + 1] += pc->bytes * c->m;
    }
    int64_t mx = 0;
    for (int k = 0; k < c->S; k++) {
        plan->stages[k].comm_bytes = per[k];
        if (per[k] > mx) mx = per[k];
    }
    plan->totals.comm_bytes = mx;
    free(per);
}

/* A Plan with its arrays for candidate c, nodes filled from mode[]/stage[], evaluated. */
Plan *search_plan_eval_new(Search *s, const Cand *c, const int *mode, const int *stage) {
    Arena *A = s->g->arena;
    Plan *plan = arena_alloc(A, sizeof *plan);
    plan->S = c->S;
    plan->d = c->d;
    plan->t = c->t;
    plan->m = c->m;
    plan->tensor_nodes = c->t > 1 ? cost_group_nodes(&s->g->cluster, c->t) : 0;
    plan->devices_per_node = s->g->cluster.devices_per_node;
    plan->nodes = arena_calloc(A, (size_t)s->N, sizeof(PlanNode));
    plan->stages = arena_calloc(A, (size_t)c->S, sizeof(PlanStage));
    plan->reshards = arena_calloc(A, (size_t)s->N * IR_MAX_INPUTS + 1, sizeof(PlanReshard));
    int maxcuts = 0;
    for (int p = 0; p <= s->N; p++)
        maxcuts += s->live_n[p];
    plan->cuts = arena_calloc(A, (size_t)maxcuts + 1, sizeof(PlanCut));
    for (int p = 0; p < s->N; p++) {
        const Mode *M = &s->modes[p * MAX_MODES + mode[p]];
        PlanNode *pn = &plan->nodes[p];
        const IrNode *n = IR_NODE(s->g, p);
        pn->stage = stage[p];
        pn->strat = M->strat;
        for (int k = 0; k < IR_MAX_INPUTS; k++)
            pn->in_layout[k] = M->in[k];
        pn->out_layout = M->out;
        pn->forced = n->annot.has_strat;
        pn->recompute = s->rc[p];
        const ModeCost *mc = &s->mc[p * MAX_MODES + mode[p]];
        pn->fwd_time = mc->fwd;
        pn->bwd_time = mc->bwd;
        pn->own_bwd = mc->own_coll;
        pn->own_bwd_bytes = mc->own_bytes - mc->own_fwd_bytes;
        pn->own_fwd = mc->own_fwd;
        pn->own_fwd_bytes = mc->own_fwd_bytes;
        pn->grad_group = mc->sync_group;
        pn->grad_bytes = mc->sync_bytes;
        pn->param_bytes = mc->param_mem;
        int inflight = c->S - stage[p] < c->m ? c->S - stage[p] : c->m;
        if (s->rc[p]) inflight = 1; /* rebuilt in backward, one micro-batch at a time */
        pn->mem_bytes = mc->param_mem + mc->grad_mem + mc->optim_mem + mc->act_bytes * inflight;
    }
    search_eval_plan(s, c, mode, stage, plan, NULL);
    plan_bytes(s, c, mode, plan);
    return plan;
}
