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
/* A trainer's --profile read against the plan it ran (report/measured.c): steady-state
 * seconds, warm-up excluded; a stage's figures are the mean over its ranks. */
typedef struct MeasuredLayer {
    bool have;       /* the profile timed this layer */
    double fwd, bwd; /* per micro-batch */
} MeasuredLayer;
typedef struct MeasuredStage {
    int ranks;                         /* of the profile in this stage */
    double step;                       /* busy + idle, per step */
    double fwd, bwd, opt, idle, other; /* per step; other = busy time outside layers/optimizer */
} MeasuredStage;
typedef struct Measured {
    const char *path;
    int steps;
    double step;              /* the profile's measured_step_s, else the slowest stage's step */
    bool step_from_profile;   /* the profile gave measured_step_s */
    double trainer_predicted; /* the profile's predicted_step_s (its trainer's plan), else -1 */
    MeasuredStage *stages;    /* one per plan stage */
    MeasuredLayer *layers;    /* one per layer */
} Measured;
/* Reads the profile at `path` (allocating in `a`); a one-line error through `d` when it is not
 * a profile or not of this plan (another mesh, no timer naming a layer). */
bool report_measured_load(const IrGraph *g, const char *path, Arena *a, Measured *m, Diag *d);

/* The same plan as one self-contained HTML page with pictures (report/html.c); with `m` (may
 * be NULL) also the measured step under the predicted one and each layer's error. */
void pass_report_html(const IrGraph *g, const Measured *m, FILE *out);
/* A few lines (mesh, micro-batches, predicted step time, memory per device) for `mpcc -o`
 * and for the generated trainer to print at start. */
void pass_report_summary(const IrGraph *g, FILE *out);
/* Writes the text (or JSON) report to `path` via a temporary file renamed into place, so
 * an error never leaves a half-written file (ir/outfile.c; "-" is standard output); reports
 * failures through `d`. */
bool pass_report_save(const IrGraph *g, const char *path, bool json, Diag *d);
/* `mpcc compare`: the plan's predicted times (a --report-json file) beside a trainer's
 * measured ones (its --profile), per layer, largest error first (report/compare.c). False
 * with a one-line err naming the file and the field when either is unreadable or malformed,
 * or the profile is of another model. */
bool report_compare(const char *plan_json, const char *profile_json, FILE *out, char *err,
                    size_t nerr);
/* Prints the choices of plan_search_space as a table (mpcc --plan-space K). */
void plan_space_print(const IrGraph *g, const PlanChoice *c, int n, FILE *out);

#endif /* MPCC_REPORT_H */
