/*
 * facts.c: what the text and the JSON report derive from the plan — totals over the graph,
 * which strategies a layer could take, bytes a cut moves per step, the reason sentence of a
 * layer, and the pure data / tensor / pipeline reference plans with why one is not an option.
 *
 * Both renderings call these, so the two never disagree; nothing here prints a report.
 * A reason or a "why not" that quotes a quantity uses passes/units.c.
 */
#include "report_internal.h"

#include <string.h>

/* ───────────────────────────── facts derived from the plan ───────────────────────────── */

const Plan *report_plan(const IrGraph *g) { return g->plan; }

double report_node_flops(const IrNode *n) { return n->flops_fwd + n->flops_bwd; }

int64_t report_total_params(const IrGraph *g) {
    int64_t p = 0;
    for (int i = 0; i < IR_NNODES(g); i++)
        p += IR_NODE(g, i)->param_count;
    return p;
}

/* The strategy is a real choice only for ops that allow more than one. */
bool report_has_choice(const IrNode *n) {
    unsigned s = ir_ops[n->op].strats;
    return (s & (s - 1)) != 0;
}

bool report_strat_allowed(const IrNode *n, Strategy s) {
    return (ir_ops[n->op].strats & (1u << s)) != 0;
}

bool report_alt_shown(const IrNode *n, const PlanNode *pn, Strategy s) {
    /* a mode without an annotation (a vocabulary-parallel loss) shows when chosen or priced */
    return report_strat_allowed(n, s) ||
           (s != STRAT_DATA && (s == pn->strat || pn->alt[s].feasible));
}

const char *report_chosen_name(const IrNode *n, const PlanNode *pn) {
    if (!report_has_choice(n) && pn->strat == STRAT_DATA) return "-";
    return plan_node_strategy_name(n->op, pn->strat);
}

/* Gradients of activations travel back across a cut; inputs and labels need none. */
static bool value_needs_grad(const IrGraph *g, int v) { return IR_VALUE(g, v)->kind == VAL_ACT; }

int64_t report_cut_bytes_per_step(const IrGraph *g, const PlanCut *c) {
    int dirs = value_needs_grad(g, c->value) ? 2 : 1;
    return c->bytes * report_plan(g)->m * dirs;
}

const char *report_opt_name(OptKind k) {
    switch (k) {
    case OPT_SGD: return "sgd";
    case OPT_ADAM: return "adam";
    case OPT_ADAMW: return "adamw";
    }
    return "?";
}

/* The reason for a layer's choice: the planner's sentence when it wrote one, else one
 * composed from the alternatives it weighed (chosen vs. the cheapest other). */
const char *report_layer_reason(const IrGraph *g, int i, char *buf, size_t n) {
    const IrNode *nd = IR_NODE(g, i);
    const PlanNode *pn = &report_plan(g)->nodes[i];
    if (pn->reason && pn->reason[0]) return pn->reason;
    if (pn->forced) {
        snprintf(buf, n, "forced by @%s at %d:%d",
                 pn->strat == STRAT_DATA  ? "data"
                 : pn->strat == STRAT_COL ? "tensor(col)"
                                          : "tensor(row)",
                 nd->annot.strat_loc.line, nd->annot.strat_loc.col);
        return buf;
    }
    if (!report_has_choice(nd) && pn->strat == STRAT_DATA) {
        snprintf(buf, n, "follows its input's layout (%s)", plan_layout_name(pn->out_layout));
        return buf;
    }
    int best = -1;
    for (int s = 0; s < STRAT__COUNT; s++)
        if (s != (int)pn->strat && pn->alt[s].feasible &&
            (best < 0 || pn->alt[s].time < pn->alt[best].time))
            best = s;
    const PlanAlt *c = &pn->alt[pn->strat];
    char b1[32], b2[32], t1[32], t2[32];
    if (best < 0) {
        snprintf(buf, n, "the only feasible alternative");
        return buf;
    }
    const PlanAlt *o = &pn->alt[best];
    snprintf(buf, n, "%s: moves %s (%s) instead of %s (%s) for %s",
             plan_node_strategy_name(nd->op, pn->strat), units_bytes(b1, sizeof b1, c->comm_bytes),
             units_time(t1, sizeof t1, c->time), units_bytes(b2, sizeof b2, o->comm_bytes),
             units_time(t2, sizeof t2, o->time), plan_node_strategy_name(nd->op, (Strategy)best));
    return buf;
}

int report_pure_refs(const IrGraph *g, PureRef out[3]) {
    const Plan *p = report_plan(g);
    int64_t D = g->cluster.devices;
    out[0] = (PureRef){"pure data", "data", 1, D, 1, &p->pure_data, p->pure_data_valid};
    out[1] = (PureRef){"pure tensor", "tensor", 1, 1, D, &p->pure_tensor, p->pure_tensor_valid};
    out[2] =
        (PureRef){"pure pipeline", "pipeline", D, 1, 1, &p->pure_pipeline, p->pure_pipeline_valid};
    return 3;
}

static int count_tensor_splittable(const IrGraph *g) {
    int k = 0;
    for (int i = 0; i < IR_NNODES(g); i++)
        if (report_has_choice(IR_NODE(g, i))) k++;
    return k;
}

/* A pure plan fits; or exists but needs more memory than a device has (the search reports
 * the smallest it found, with or without its times); or cannot be built at all. */

PureState report_pure_state(const PureRef *r) {
    if (r->valid) return r->tot->fits ? PURE_OK : PURE_TOO_BIG;
    return r->tot->mem_peak > 0 ? PURE_TOO_BIG : PURE_IMPOSSIBLE;
}

/* The first annotation a pure plan of this shape cannot honour, in words (NULL: none):
 * a layer pinned to a stage beyond the plan's last, or pinned to a tensor split when the
 * plan has a single tensor rank. */
static const char *pinned_why(const IrGraph *g, const PureRef *r, char *buf, size_t n) {
    for (int i = 0; i < IR_NNODES(g); i++) {
        const IrNode *nd = IR_NODE(g, i);
        const Annot *an = &nd->annot;
        if (an->stage != IR_NO_STAGE && an->stage >= r->S) {
            snprintf(buf, n, "'%s' is pinned to stage %d at %d:%d", nd->name, an->stage,
                     an->stage_loc.line, an->stage_loc.col);
            return buf;
        }
        if (an->has_strat && an->strat != STRAT_DATA && r->t == 1) {
            snprintf(buf, n, "'%s' is pinned to %s at %d:%d", nd->name,
                     plan_strategy_name(an->strat), an->strat_loc.line, an->strat_loc.col);
            return buf;
        }
    }
    return NULL;
}

/* Why a pure plan is not an option, in words, from the facts that forbid it. */
const char *report_pure_why(const IrGraph *g, const PureRef *r, char *buf, size_t n) {
    int64_t B = g->train.batch;
    char b[2][48];
    if (report_pure_state(r) == PURE_TOO_BIG)
        snprintf(buf, n, "needs %s per device, more than the %s a device has",
                 units_bytes(b[0], sizeof b[0], r->tot->mem_peak),
                 units_bytes(b[1], sizeof b[1], (int64_t)g->cluster.memory));
    else if (r->S > IR_NNODES(g))
        snprintf(buf, n, "%lld stages need at least %lld layers, the model has %d", (long long)r->S,
                 (long long)r->S, IR_NNODES(g));
    else if (pinned_why(g, r, buf, n))
        return buf;
    else if (B % r->d != 0)
        snprintf(buf, n, "batch %lld does not split over %lld replicas", (long long)B,
                 (long long)r->d);
    else if (g->train.microbatches > 0 && B % (r->d * g->train.microbatches) != 0)
        snprintf(buf, n, "batch %lld does not split into %lld replicas × %lld micro-batches",
                 (long long)B, (long long)r->d, (long long)g->train.microbatches);
    else if (r->t > 1 && count_tensor_splittable(g) == 0)
        snprintf(buf, n, "no layer can be split over tensor ranks");
    else if (r->t > 1)
        snprintf(buf, n, "the layers' shapes do not split over %lld tensor ranks", (long long)r->t);
    else
        snprintf(buf, n, "the search found no valid plan of this shape");
    return buf;
}

bool report_savings_shown(const IrGraph *g) {
    const Plan *p = report_plan(g);
    if (g->train.precision == PRECISION_BF16 || g->train.zero != 0) return true;
    for (int s = 0; p && s < p->S; s++)
        if (p->stages[s].recompute) return true;
    return false;
}
