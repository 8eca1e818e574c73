/*
 * pipeline.c: the list of passes and the driver loop that runs them (STYLE.md §6).
 *
 * Every pass has the signature `bool pass_NAME(IrGraph *, Diag *)` and appears once in
 * pass_list, in the order it runs, with the IrPhase it leaves the graph in and a dump of what
 * it made (shapes: the IR, plan: the plan, report: the plan's contract checked, lower: the
 * schedule). pass_run_pipeline runs them up to and including `until`, stops at the first pass that
 * fails or reports an error, checks the graph with ir_verify (told the phase) before the first pass
 * and after every pass in debug builds (MPCC_DEBUG), and prints the dump of the pass named by
 * `dump_after`. Pass names come from the command line (--dump-after=PASS), so an unknown name
 * is a user error reported here with a suggestion; the driver turns it into a usage error
 * (exit 2) by checking pass_find first or by the returned false.
 */
#include "passes.h"

#include <string.h>

const PassInfo pass_list[] = {
    {"shapes", pass_shapes, IR_PHASE_SHAPED, ir_dump, "the IR: layers, shapes, parameters, FLOPs"},
    {"plan", pass_plan, IR_PHASE_PLANNED, pass_plan_dump,
     "the plan: mesh, per-layer stage/strategy/layouts, reshards, cuts"},
    {"report", pass_report, IR_PHASE_PLANNED, pass_plan_check_dump,
     "what the plan was checked for: mesh, stages, pure plans"},
    {"lower", pass_lower, IR_PHASE_LOWERED, pass_schedule_print,
     "the per-rank schedule: each stage's steps, collectives, 1F1B order"},
};
const int pass_count = (int)(sizeof pass_list / sizeof pass_list[0]);

int pass_find(const char *name) {
    for (int i = 0; i < pass_count; i++)
        if (strcmp(pass_list[i].name, name) == 0) return i;
    return -1;
}

/* Resolves a pass name from the command line; reports unknown names with the list. */
static int resolve(Diag *d, const char *name) {
    int i = pass_find(name);
    if (i >= 0) return i;
    const char *names[16];
    int n = pass_count < 16 ? pass_count : 16;
    char list[256] = "";
    for (int k = 0; k < n; k++) {
        names[k] = pass_list[k].name;
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", k ? ", " : "", names[k]);
    }
    SrcLoc none = {NULL, 0, 0, 0};
    const char *near = diag_suggest(name, names, (size_t)n);
    if (near)
        diag_error(d, none, "unknown pass '%s'; did you mean '%s'? (passes: %s)", name, near, list);
    else
        diag_error(d, none, "unknown pass '%s' (passes: %s)", name, list);
    return -1;
}

bool pass_run_pipeline(IrGraph *g, Diag *d, const char *until, const char *dump_after,
                       FILE *dump_out) {
    int last = until ? resolve(d, until) : pass_count - 1;
    int dump = dump_after ? resolve(d, dump_after) : -1;
    if (last < 0 || (dump_after && dump < 0)) return false;
    if (dump > last) {
        SrcLoc none = {NULL, 0, 0, 0};
        diag_error(d, none, "cannot dump the IR after pass '%s': this run stops after '%s'",
                   dump_after, pass_list[last].name);
        return false;
    }
#ifdef MPCC_DEBUG
    if (!ir_verify(g, IR_PHASE_BUILT, "frontend", d)) return false; /* what the frontend built */
#endif
    for (int i = 0; i <= last; i++) {
        int before = diag_errors(d);
        if (!pass_list[i].run(g, d) || diag_errors(d) > before) return false;
#ifdef MPCC_DEBUG
        if (!ir_verify(g, pass_list[i].leaves, pass_list[i].name, d)) return false;
#endif
        if (i == dump) pass_list[i].dump(g, dump_out ? dump_out : stdout);
    }
    return true;
}
