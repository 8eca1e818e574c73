/*
 * plan_check.c: pass "report" — the search's contract checked before anything reports the
 * plan or lowers it.
 *
 * The plan the search leaves in g->plan must have a mesh of at least one of everything whose
 * S·d·t is the device count, stages that cover every layer once and in order, every layer on
 * a stage, and a predicted step time no slower than any pure plan that fits (the search takes
 * a pure plan should it ever be faster). A failure is the search's bug, never the user's:
 * it is reported as an internal compiler error naming the pass. The text and JSON renderings
 * themselves live in report/, which reads a plan this pass has accepted.
 *
 * The pass's dump (mpcc --dump-after=report) states what it checked, fact by fact: the mesh
 * against the device count, each stage's range of layers, and how each pure plan stands
 * (not an option, does not fit, or fits and is not faster). The report itself is
 * --emit=plan: passes/ cannot print it, as report/ sits above it.
 */
#include "passes.h"

#include <string.h>

/* The search's contract, checked before the report trusts it. */
static const char *plan_check(const IrGraph *g) {
    const Plan *p = g->plan;
    if (!p) return "no plan";
    if (p->S < 1 || p->d < 1 || p->t < 1 || p->m < 1) return "mesh or micro-batches below 1";
    if ((int64_t)p->S * p->d * p->t != g->cluster.devices) return "S·d·t differs from devices";
    int next = 0;
    for (int s = 0; s < p->S; s++) {
        if (p->stages[s].first_node != next || p->stages[s].last_node < next)
            return "stages do not cover the layers in order";
        next = p->stages[s].last_node + 1;
    }
    if (next != IR_NNODES(g)) return "stages do not cover every layer";
    for (int i = 0; i < IR_NNODES(g); i++)
        if (p->nodes[i].stage < 0 || p->nodes[i].stage >= p->S) return "a layer has no stage";
    const PlanTotals *pure[3] = {&p->pure_data, &p->pure_tensor, &p->pure_pipeline};
    bool valid[3] = {p->pure_data_valid, p->pure_tensor_valid, p->pure_pipeline_valid};
    for (int k = 0; k < 3 && !p->pinned; k++) /* a pinned mesh may be slower: it is asked for */
        if (valid[k] && pure[k]->fits && pure[k]->step_time < p->totals.step_time * (1 - 1e-9))
            return "the chosen plan is predicted slower than a pure plan";
    return NULL;
}

bool pass_report(IrGraph *g, Diag *d) {
    const char *bad = plan_check(g);
    if (bad) {
        diag_error(d, (SrcLoc){0}, "internal compiler error: pass report: %s", bad);
        return false;
    }
    return true;
}

static const char *pure_state(bool valid, const PlanTotals *t) {
    if (!valid) return "not an option";
    return t->fits ? "fits, not faster than the plan" : "does not fit";
}

void pass_plan_check_dump(const IrGraph *g, FILE *out) {
    const Plan *p = g->plan;
    const char *file = g->file ? g->file : "?"; /* as given, like every output */
    const char *bad = plan_check(g);
    fprintf(out, "report %s (%s): %s\n", g->name ? g->name : "?", file,
            bad ? bad : "the plan keeps the search's contract");
    if (bad) return;
    char b[48];
    fprintf(out, "  mesh S=%d × d=%d × t=%d = %s, m=%d\n", p->S, p->d, p->t,
            units_n(b, sizeof b, (long long)g->cluster.devices, "device"), p->m);
    for (int s = 0; s < p->S; s++)
        fprintf(out, "  stage %d: layers %d..%d (%s .. %s)\n", s, p->stages[s].first_node,
                p->stages[s].last_node, IR_NODE(g, p->stages[s].first_node)->name,
                IR_NODE(g, p->stages[s].last_node)->name);
    fprintf(out, "  pure data: %s\n", pure_state(p->pure_data_valid, &p->pure_data));
    fprintf(out, "  pure tensor: %s\n", pure_state(p->pure_tensor_valid, &p->pure_tensor));
    fprintf(out, "  pure pipeline: %s\n", pure_state(p->pure_pipeline_valid, &p->pure_pipeline));
}
