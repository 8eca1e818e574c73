/*
 * plan_dump.c: the plan as pass_plan left it, in a compact textual form
 * (mpcc --dump-after=plan).
 *
 * The partition report (report.c) explains a plan to a person: every alternative with its
 * cost, the reasons, the pure plans for comparison, times rounded for reading. This dump is
 * for the compiler's own developers and for tests: it shows exactly what the search decided
 * and nothing it weighed, one line per fact, so two plans can be compared with diff and a
 * FileCheck line can pin one decision. In order:
 *
 *   - the mesh S × d × t and the micro-batch count m;
 *   - per stage, the range of layers it holds and the bytes each of its devices moves per step
 *     (what the schedule's stage counts);
 *   - per layer: op, stage, strategy, the layout it computes each input in, its output's
 *     layout, "pinned" when an annotation forced it, and its own backward collective and its
 *     gradient synchronisation when it has them;
 *   - every layout change (reshard) and every pipeline cut, with its collective and bytes;
 *   - the totals the plan promises: bytes per step of the busiest device, peak memory and
 *     whether it fits.
 *
 * Only integers and names are printed (bytes exact, no times), so the dump is stable: it
 * changes when a decision changes, not when a cost constant is tuned.
 */
#include "passes.h"

#include <string.h>

/* The layouts layer `i` computes its inputs in, "R,B" style, into buf. */
static const char *in_layouts(const IrGraph *g, int i, char *buf, size_t n) {
    const IrNode *node = IR_NODE(g, i);
    const PlanNode *pn = &g->plan->nodes[i];
    buf[0] = '\0';
    for (int k = 0; k < node->ninputs && k < IR_MAX_INPUTS; k++) {
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s", k ? "," : "", plan_layout_name(pn->in_layout[k]));
    }
    return buf;
}

static int max_int(int a, int b) { return a > b ? a : b; }

/* Column widths of the per-layer lines: name, op, strategy. */
static void widths(const IrGraph *g, int w[3]) {
    w[0] = w[1] = w[2] = 1;
    for (int i = 0; i < IR_NNODES(g); i++) {
        const IrNode *n = IR_NODE(g, i);
        w[0] = max_int(w[0], (int)strlen(n->name));
        w[1] = max_int(w[1], (int)strlen(ir_ops[n->op].name));
        w[2] = max_int(w[2], (int)strlen(plan_node_strategy_name(n->op, g->plan->nodes[i].strat)));
    }
}

static void dump_layer(const IrGraph *g, int i, const int w[3], FILE *out) {
    const IrNode *n = IR_NODE(g, i);
    const PlanNode *pn = &g->plan->nodes[i];
    char ins[16];
    fprintf(out, "  %-*s  %-*s  stage %d  %-*s  in %-3s  out %s", w[0], n->name, w[1],
            ir_ops[n->op].name, pn->stage, w[2], plan_node_strategy_name(n->op, pn->strat),
            in_layouts(g, i, ins, sizeof ins), plan_layout_name(pn->out_layout));
    if (pn->forced) fputs("  pinned", out);
    if (pn->own_fwd)
        fprintf(out, "  own fwd %d x all-reduce %lld B", pn->own_fwd, (long long)pn->own_fwd_bytes);
    if (pn->own_bwd != COLL_NONE)
        fprintf(out, "  own bwd %s %lld B", cost_coll_name(pn->own_bwd),
                (long long)pn->own_bwd_bytes);
    if (pn->grad_bytes > 0)
        fprintf(out, "  grad all-reduce on %s %lld B", plan_group_name(pn->grad_group),
                (long long)pn->grad_bytes);
    fputc('\n', out);
}

static void dump_reshards(const IrGraph *g, FILE *out) {
    const Plan *p = g->plan;
    for (int k = 0; k < p->nreshards; k++) {
        const PlanReshard *r = &p->reshards[k];
        fprintf(out, "reshard %s -> %s: %s -> %s, fwd %s %lld B, bwd %s %lld B, on %s\n",
                IR_VALUE(g, r->value)->name, IR_NODE(g, r->to_node)->name,
                plan_layout_name(r->from), plan_layout_name(r->to), cost_coll_name(r->fwd),
                (long long)r->fwd_bytes, cost_coll_name(r->bwd), (long long)r->bwd_bytes,
                plan_group_name(r->group));
    }
}

static void dump_cuts(const IrGraph *g, FILE *out) {
    const Plan *p = g->plan;
    for (int k = 0; k < p->ncuts; k++) {
        const PlanCut *c = &p->cuts[k];
        fprintf(out, "cut %d|%d: %s in %s, %lld B\n", c->stage, c->stage + 1,
                IR_VALUE(g, c->value)->name, plan_layout_name(c->layout), (long long)c->bytes);
    }
}

void pass_plan_dump(const IrGraph *g, FILE *out) {
    const Plan *p = g->plan;
    const char *file = g->file ? g->file : "?"; /* as given, like every output */
    if (!p) {
        fprintf(out, "plan %s (%s): none\n", g->name ? g->name : "?", file);
        return;
    }
    fprintf(out, "plan %s (%s): mesh S=%d × d=%d × t=%d, m=%d\n", g->name ? g->name : "?", file,
            p->S, p->d, p->t, p->m);
    int w[3];
    widths(g, w);
    for (int s = 0; s < p->S; s++) {
        const PlanStage *st = &p->stages[s];
        fprintf(out, "stage %d: %s .. %s, %lld B per step\n", s, IR_NODE(g, st->first_node)->name,
                IR_NODE(g, st->last_node)->name, (long long)st->comm_bytes);
        for (int i = st->first_node; i <= st->last_node; i++)
            dump_layer(g, i, w, out);
    }
    dump_reshards(g, out);
    dump_cuts(g, out);
    fprintf(out, "totals: %lld B per step on the busiest device, peak memory %lld B, %s\n",
            (long long)p->totals.comm_bytes, (long long)p->totals.mem_peak,
            p->totals.fits ? "fits" : "does not fit");
}
