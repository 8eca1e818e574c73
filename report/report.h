/*
 * report.h: the public header of report/ — the plan the search chose, written for people
 * (text) and for programs (JSON). docs/report.md explains every line; docs/report.schema.json
 * is the JSON's contract. report/ reads g->plan and the graph (passes.h) and plans nothing;
 * passes/ never calls into it.
 */
#ifndef MPCC_REPORT_H
#define MPCC_REPORT_H

#include "passes.h"

/* The partition report (docs/report.md): text and JSON, deterministic. */
void pass_report_text(const IrGraph *g, FILE *out); /* report/text.c */
void pass_report_json(const IrGraph *g, FILE *out); /* report/json.c */
/* The same plan as one self-contained HTML page with pictures (report/html.c). */
void pass_report_html(const IrGraph *g, FILE *out);
/* A few lines (mesh, micro-batches, predicted step time, memory per device) for `mpcc -o`
 * and for the generated trainer to print at start. */
void pass_report_summary(const IrGraph *g, FILE *out);
/* Writes the text (or JSON) report to `path` via a temporary file renamed into place, so
 * an error never leaves a half-written file (ir/outfile.c; "-" is standard output); reports
 * failures through `d`. */
bool pass_report_save(const IrGraph *g, const char *path, bool json, Diag *d);
/* Prints the choices of plan_search_space as a table (mpcc --plan-space K). */
void plan_space_print(const IrGraph *g, const PlanChoice *c, int n, FILE *out);

#endif /* MPCC_REPORT_H */
