/*
 * search_why.c: the words of the plan search — for every layer of the chosen plan what each
 * strategy would have cost and one sentence on why it has the one it has, and the errors
 * that say why no plan exists.
 *
 * Alternatives (PlanNode.alt) are priced as the layer alone would change: the layouts before
 * it as the chosen plan leaves them, and the layout its first consumer reads in the chosen
 * plan, so a strategy pays the conversion its neighbours would need. The reason compares the
 * chosen strategy with its best rival in the terms the choice turns on: gradients all-reduced
 * against activations moved. Reasons and alternatives are written after the plan is chosen
 * and never feed back into the choice.
 *
 * Errors: bad configuration and @stage pins that no plan can honour are reported before the
 * search (search_check_inputs); after it, a tensor annotation no mesh can divide, or no mesh
 * at all, or the smallest plan found with the stage and layer that overflow the memory. Every
 * error points at the annotation or layer concerned and says what would have to change.
 */
#include "search_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ───────────────────────────── alternatives and reasons ───────────────────────────── */

/* The layout the first consumer of value v computes on in the chosen plan (or `def`). */
static Layout consumer_layout(const Search *s, const Plan *plan, int v, int after, Layout def) {
    for (int q = after + 1; q < s->N; q++) {
        const IrNode *n = IR_NODE(s->g, q);
        for (int k = 0; k < n->ninputs; k++)
            if (n->inputs[k] == v) return plan->nodes[q].in_layout[k];
    }
    return def;
}

/* What node p would cost with mode mi given the state before it and the layout its
 * consumers use in the chosen plan. */
static void alt_for(const Search *s, const Cand *c, const Plan *plan, int p, int mi, unsigned code,
                    PlanAlt *alt) {
    const IrNode *n = IR_NODE(s->g, p);
    const Mode *M = &s->modes[p * MAX_MODES + mi];
    const ModeCost *mc = &s->mc[p * MAX_MODES + mi];
    StageAcc a;
    memset(&a, 0, sizeof a);
    unsigned cd;
    if (search_trans(s, c, p, mi, code, &cd, NULL) < 0) return;
    search_eval_reshards(s, c, p, M, code, &a, NULL);
    Layout want = consumer_layout(s, plan, n->output, p, M->out);
    int64_t conv = 0;
    double conv_t = 0;
    if (want != M->out) {
        CollKind f = cost_layout_change(M->out, want);
        if ((want == LAYOUT_F || M->out == LAYOUT_F) && search_padded(s, n->output, c->t))
            return; /* padded classes are never gathered or sliced */
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
                      unsigned code) {
    PlanNode *pn = &plan->nodes[p];
    for (int st = 0; st < STRAT__COUNT; st++)
        pn->alt[st].feasible = false;
    for (int mi = 0; mi < s->nmodes[p]; mi++) {
        PlanAlt alt;
        memset(&alt, 0, sizeof alt);
        alt_for(s, c, plan, p, mi, code, &alt);
        Strategy st = s->modes[p * MAX_MODES + mi].strat;
        if (!alt.feasible || (st == pn->strat && mi != chosen)) continue;
        if (!pn->alt[st].feasible || alt.time < pn->alt[st].time) pn->alt[st] = alt;
    }
}

/* A vocabulary-parallel loss against the loss on gathered logits (docs/cost-model.md). */
static const char *vocab_reason(const PlanNode *pn, Arena *A) {
    char b1[32], b2[32];
    const PlanAlt *me = &pn->alt[pn->strat], *ot = &pn->alt[STRAT_DATA];
    if (!ot->feasible)
        return arena_printf(A, "vocab-parallel: %d all-reduces of one float per row (%s per step)",
                            pn->own_fwd, units_bytes(b1, sizeof b1, me->comm_bytes));
    return arena_printf(A,
                        "vocab-parallel: %d all-reduces of one float per row, %s per step, "
                        "instead of gathering the logits for data, %s",
                        pn->own_fwd, units_bytes(b1, sizeof b1, me->comm_bytes),
                        units_bytes(b2, sizeof b2, ot->comm_bytes));
}

/* A loss on gathered logits that could have run vocabulary-parallel: both costs, since the
 * bytes alone favour the split (latency decides for small rows and large t). */
static const char *gathered_reason(const PlanNode *pn, int calls, Arena *A) {
    char b[4][32];
    const PlanAlt *me = &pn->alt[pn->strat], *vp = &pn->alt[STRAT_COL];
    return arena_printf(A,
                        "data: whole rows, %s per step in %s; vocab-parallel (%d all-reduces of "
                        "one float per row): %s in %s",
                        units_bytes(b[0], sizeof b[0], me->comm_bytes),
                        units_time(b[1], sizeof b[1], me->time), calls,
                        units_bytes(b[2], sizeof b[2], vp->comm_bytes),
                        units_time(b[3], sizeof b[3], vp->time));
}

static const char *node_reason(const Search *s, const Cand *c, Plan *plan, int p) {
    const IrNode *n = IR_NODE(s->g, p);
    PlanNode *pn = &plan->nodes[p];
    Arena *A = s->g->arena;
    char b1[32], b2[32];
    if (pn->forced)
        return arena_printf(A, "pinned by @%s",
                            n->annot.strat == STRAT_DATA  ? "data"
                            : n->annot.strat == STRAT_COL ? "tensor(col)"
                                                          : "tensor(row)");
    if (c->t == 1)
        return arena_printf(A, "t = 1: the layer runs whole on each of the %d data replica%s", c->d,
                            c->d == 1 ? "" : "s");
    if (pn->own_fwd) return vocab_reason(pn, A);
    if (pass_rules[n->op].own_fwd[STRAT_COL] && pn->alt[STRAT_COL].feasible)
        return gathered_reason(pn, pass_rules[n->op].own_fwd[STRAT_COL], A);
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
        return arena_printf(A,
                            "data: all-reduces %s of weight gradients instead of moving %s of "
                            "activations for %s",
                            units_bytes(b1, sizeof b1, me->grad_bytes),
                            units_bytes(b2, sizeof b2, ot->comm_bytes - ot->grad_bytes),
                            plan_strategy_name((Strategy)other));
    if (other == STRAT_DATA)
        return arena_printf(A, "%s: moves %s of activations instead of %s of weight gradients",
                            plan_strategy_name(pn->strat),
                            units_bytes(b1, sizeof b1, me->comm_bytes - me->grad_bytes),
                            units_bytes(b2, sizeof b2, ot->grad_bytes));
    return arena_printf(A, "%s: moves %s per step against %s for %s", plan_strategy_name(pn->strat),
                        units_bytes(b1, sizeof b1, me->comm_bytes),
                        units_bytes(b2, sizeof b2, ot->comm_bytes),
                        plan_strategy_name((Strategy)other));
}

/* The full plan for the report: plan_eval_new plus alternatives and reasons. */
Plan *search_plan_build(Search *s, const Cand *c, const int *mode, const int *stage) {
    Plan *plan = search_plan_eval_new(s, c, mode, stage);
    unsigned code = 0; /* the state before node p, as search_eval_plan walks it */
    for (int p = 0; p < s->N; p++) {
        if (p > 0 && stage[p] != stage[p - 1]) code = search_cut_code(code, s->live_n[p]);
        node_alts(s, c, plan, p, mode[p], code);
        search_trans(s, c, p, mode[p], code, &code, NULL);
    }
    for (int p = 0; p < s->N; p++)
        plan->nodes[p].reason = node_reason(s, c, plan, p);
    return plan;
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
                       "@stage(%d) cannot be honoured: %lld device%s allow%s at most %lld pipeline "
                       "stage%s",
                       k, (long long)s->D, s->D == 1 ? "" : "s", s->D == 1 ? "s" : "",
                       (long long)(s->D < s->N ? s->D : s->N),
                       (s->D < s->N ? s->D : s->N) == 1 ? "" : "s");
            ok = false;
        } else if (k > p) {
            diag_error(
                s->diag, n->annot.stage_loc,
                "@stage(%d) on '%s' cannot be honoured: %d layer%s come%s before it, and each of "
                "the %d earlier stages needs at least one",
                k, n->name, p, p == 1 ? "" : "s", p == 1 ? "s" : "", k);
            ok = false;
        } else if (k < last) {
            diag_error(s->diag, n->annot.stage_loc,
                       "@stage(%d) on '%s' comes after '%s' at @stage(%d); stages must follow the "
                       "layer order",
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
    if (!search_has_tensor_annot(n) || s->D == 1) return NULL;
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
        if (search_node_modes(s, p, &c, ms) > 0) return NULL;
    }
    int64_t width = n->annot.strat == STRAT_COL ? s->feat[n->output] : s->feat[n->inputs[0]];
    if (n->op == OP_ATTENTION) width = ir_arg_int(n, ATTENTION_HEADS);
    const char *what = n->op == OP_ATTENTION ? "heads"
                       : n->op == OP_CONV2D
                           ? (n->annot.strat == STRAT_COL ? "output channels" : "input channels")
                       : n->annot.strat == STRAT_COL ? "output features"
                                                     : "input features";
    /* an LM head's classes would split padded, but only into a vocabulary-parallel loss */
    const char *pad = n->op == OP_LINEAR && n->annot.strat == STRAT_COL
                          ? " (padded classes only go straight into a cross-entropy)"
                          : "";
    return arena_printf(
        s->g->arena,
        "cannot honour @%s on '%s': its %lld %s do not divide over any tensor group "
        "size t > 1 that %lld devices allow%s",
        n->annot.strat == STRAT_COL ? "tensor(col)" : "tensor(row)", n->name, (long long)width,
        what, (long long)s->D, pad);
}

/* The device counts nearest to s->D, below and above, on which the model has a plan (each
 * side searched at most NEAR_TRIES counts away), as the end of the no-plan error. */
enum { NEAR_TRIES = 64 };
static const char *nearest_devices(Search *s) {
    int64_t below = 0, above = 0;
    for (int64_t k = 1; k <= NEAR_TRIES && !below && s->D - k >= 1; k++)
        if (search_plans_on(s, s->D - k)) below = s->D - k;
    for (int64_t k = 1; k <= NEAR_TRIES && !above && s->D + k <= IR_MAX_DEVICES; k++)
        if (search_plans_on(s, s->D + k)) above = s->D + k;
    if (below && above)
        return arena_printf(s->g->arena, "the nearest device counts with a plan are %lld and %lld",
                            (long long)below, (long long)above);
    if (below || above)
        return arena_printf(s->g->arena, "the nearest device count with a plan is %lld",
                            (long long)(below ? below : above));
    return arena_printf(s->g->arena, "no device count from %lld to %lld has one either",
                        (long long)(s->D > NEAR_TRIES ? s->D - NEAR_TRIES : 1),
                        (long long)(s->D + NEAR_TRIES));
}

void search_explain_no_plan(Search *s) {
    bool said = false;
    for (int p = 0; p < s->N; p++) {
        const char *why = tensor_annot_problem(s, p);
        if (why) {
            diag_error(s->diag, IR_NODE(s->g, p)->annot.strat_loc, "%s", why);
            said = true;
        }
    }
    if (said) return;
    bool annotated = false;
    for (int p = 0; p < s->N; p++)
        annotated |= search_has_tensor_annot(IR_NODE(s->g, p)) ||
                     IR_NODE(s->g, p)->annot.stage != IR_NO_STAGE;
    SrcLoc none = {s->g->file, 0, 0, 0};
    diag_error(s->diag, none,
               "no parallel plan exists for %lld devices with batch %lld%s: no mesh S×d×t divides "
               "the batch and the layer shapes%s; %s",
               (long long)s->D, (long long)s->B,
               s->g->train.microbatches > 0 ? " and the given micro-batch count" : "",
               annotated ? " as the annotations require" : "", nearest_devices(s));
}

void search_explain_memory(Search *s, const Best *b) {
    Cand c = b->min_mem_c;
    search_cand_prepare(s, &c);
    memcpy(s->rc, b->mm_rc, (size_t)s->N);
    Plan *p = search_plan_build(s, &c, b->mm_mode, b->mm_stage);
    int worst = 0;
    for (int k = 1; k < p->S; k++)
        if (p->stages[k].mem_bytes > p->stages[worst].mem_bytes) worst = k;
    int dom = p->stages[worst].first_node;
    for (int q = p->stages[worst].first_node; q <= p->stages[worst].last_node; q++)
        if (p->nodes[q].mem_bytes > p->nodes[dom].mem_bytes) dom = q;
    const IrNode *n = IR_NODE(s->g, dom);
    char b1[32], b2[32], b3[32];
    diag_error(
        s->diag, n->loc,
        "no plan fits in %s per device: the smallest found needs %s on each device of stage %d "
        "(mesh %d×%d×%d, %d micro-batch%s), and '%s' takes %s of it",
        units_bytes(b1, sizeof b1, (int64_t)s->g->cluster.memory),
        units_bytes(b2, sizeof b2, p->stages[worst].mem_bytes), worst, p->S, p->d, p->t, p->m,
        p->m == 1 ? "" : "es", n->name, units_bytes(b3, sizeof b3, p->nodes[dom].mem_bytes));
}

bool search_check_inputs(Search *s) {
    SrcLoc none = {s->g->file, 0, 0, 0};
    if (s->D < 1 || s->B < 1 || s->N < 1) {
        diag_error(s->diag, none, "cannot plan: %s",
                   s->D < 1   ? "cluster.devices must be at least 1"
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

/* ───────────────────────────── plan.mesh ───────────────────────────── */

/* An error about the pinned mesh, at plan.mesh in the file or naming the -D that gave it. */
static void pin_error(Search *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pin_error(Search *s, const char *fmt, ...) {
    const TrainCfg *t = &s->g->train;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    SrcLoc none = {s->g->file, 0, 0, 0};
    if (t->mesh_loc.line > 0)
        diag_error(s->diag, t->mesh_loc, "plan.mesh %lldx%lldx%lld: %s", (long long)t->mesh[0],
                   (long long)t->mesh[1], (long long)t->mesh[2], msg);
    else
        diag_error(s->diag, none, "-D plan.mesh=%lldx%lldx%lld: %s", (long long)t->mesh[0],
                   (long long)t->mesh[1], (long long)t->mesh[2], msg);
}

bool search_check_pin(Search *s) {
    int64_t S = s->g->train.mesh[0];
    if (S <= s->N) return true;
    char nl[48];
    pin_error(s, "%lld pipeline stages, but the model has %s and each stage needs at least one",
              (long long)S, units_n(nl, sizeof nl, s->N, "layer"));
    return false;
}

void search_explain_pin(Search *s, const Best *b) {
    const TrainCfg *t = &s->g->train;
    char b1[32], b2[32];
    if (b->min_mem >= 0) {
        pin_error(s, "no plan on this mesh fits in %s per device: the smallest needs %s",
                  units_bytes(b1, sizeof b1, (int64_t)s->g->cluster.memory),
                  units_bytes(b2, sizeof b2, b->min_mem));
        return;
    }
    int64_t m = t->mesh_m > 0 ? t->mesh_m : t->microbatches, per = s->B / t->mesh[1];
    if (m > 0 && per % m) {
        pin_error(s, "%s = %lld does not divide the %s of each of its %lld data replicas",
                  t->mesh_m > 0 ? "plan.microbatches" : "train.microbatches", (long long)m,
                  units_n(b1, sizeof b1, (long long)per, "sample"), (long long)t->mesh[1]);
        return;
    }
    char mb[64] = "";
    if (m > 0) snprintf(mb, sizeof mb, " in %lld micro-batches", (long long)m);
    pin_error(s,
              "no plan exists on this mesh%s: the batch's %lld samples per replica, the layer "
              "shapes or the annotations do not split over %lld tensor ranks and %lld stages",
              mb, (long long)(s->B / t->mesh[1]), (long long)t->mesh[2], (long long)t->mesh[0]);
}
