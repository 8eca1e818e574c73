/*
 * html_measured.c: the HTML report's predicted-vs-measured view (mpcc --report-html FILE
 * --measured PROFILE; docs/report.md), drawn from the plan and a trainer's profile read by
 * measured.c.
 *
 * Per stage, two bars on one time axis: the prediction (forward, backward and communication
 * over the step's micro-batches, the unhidden gradient sync, then the bubble up to the
 * predicted step) and, under it, the measurement (the layers' forwards and backwards, the
 * optimizer, the rest of the stage's busy time, then its idle time). The profile holds totals
 * per step, not timestamps, so the measured bar is aggregated; the trace (--trace) has the
 * micro-batch timeline. Then one row per layer: predicted and measured forward and backward
 * per micro-batch with the error, sorted by how much the layer's error costs per step.
 */
#include "report_internal.h"

#include <math.h>
#include <stdlib.h>

enum { PM_LEFT = 110, PM_W = 960, PM_ROW = 15 };

static const char *const PM_FWD = "#6a9fd8", *const PM_BWD = "#3d6fae", *const PM_COMM = "#e39b5b",
                         *const PM_SYNC = "#b05fc4", *const PM_OPT = "#5aa469",
                         *const PM_OTHER = "#c9a26b", *const PM_IDLE = "#dddddd";

static double pm_unhidden(const PlanStage *st) {
    return st->grad_sync_time - st->grad_sync_hidden + st->grad_sync_slow;
}

/* Draws parts[] left to right from x = 0; returns where they end (seconds). */
static double pm_bar(FILE *out, const double *part, const char *const *fill, const char *const *cls,
                     int n, double sc, double y) {
    double x = 0;
    for (int i = 0; i < n; i++) {
        if (part[i] > 0)
            html_box(out, PM_LEFT + x * sc, y, part[i] * sc, PM_ROW - 4, fill[i], cls[i]);
        x += part[i];
    }
    return x;
}

static void pm_stage(FILE *out, const Plan *p, const MeasuredStage *ms, int s, double sc,
                     double y) {
    const PlanStage *st = &p->stages[s];
    char b[48];
    double pred[5] = {st->fwd_time * p->m, st->bwd_time * p->m, st->comm_time * p->m,
                      pm_unhidden(st), 0};
    const char *pf[5] = {PM_FWD, PM_BWD, PM_COMM, PM_SYNC, "url(#hatch)"},
               *pc[5] = {"fwd", "bwd", "comm", "sync", "bubble"};
    double used = pred[0] + pred[1] + pred[2] + pred[3];
    pred[4] = p->totals.step_time > used ? p->totals.step_time - used : 0;
    fprintf(out, "<g data-pm-stage=\"%d\" data-measured-step=\"%.9g\">", s, ms->step);
    fprintf(out, "<text x=\"4\" y=\"%.1f\">stage %d predicted</text>", y + 10, s);
    pm_bar(out, pred, pf, pc, 5, sc, y);
    double meas[5] = {ms->fwd, ms->bwd, ms->opt, ms->other, ms->idle};
    const char *mf[5] = {PM_FWD, PM_BWD, PM_OPT, PM_OTHER, PM_IDLE},
               *mc[5] = {"mfwd", "mbwd", "mopt", "mother", "midle"};
    fprintf(out, "<text x=\"4\" y=\"%.1f\">stage %d measured</text>", y + PM_ROW + 10, s);
    double end = pm_bar(out, meas, mf, mc, 5, sc, y + PM_ROW);
    fprintf(out, "<text x=\"%.2f\" y=\"%.1f\">%s</text></g>\n", PM_LEFT + end * sc + 4,
            y + PM_ROW + 10, units_time(b, sizeof b, ms->step));
}

static void pm_legend(FILE *out) {
    static const char *const name[] = {"forward",   "backward",   "communication", "grad sync",
                                       "optimizer", "other busy", "idle"};
    const char *fill[] = {PM_FWD, PM_BWD, PM_COMM, PM_SYNC, PM_OPT, PM_OTHER, PM_IDLE};
    fputs("<p>", out);
    for (int i = 0; i < 7; i++)
        fprintf(out, "<span class=\"k\" style=\"background:%s\"></span>%s", fill[i], name[i]);
    fputs("</p>\n", out);
}

static void pm_timeline(const IrGraph *g, const Measured *m, FILE *out) {
    const Plan *p = report_plan(g);
    double span = p->totals.step_time;
    for (int s = 0; s < p->S; s++)
        if (m->stages[s].step > span) span = m->stages[s].step;
    double sc = span > 0 ? PM_W / span : 0;
    int h = p->S * 2 * PM_ROW + p->S * 6 + 24, w = PM_LEFT + PM_W + 90;
    pm_legend(out);
    fprintf(out,
            "<div class=\"wrap\"><svg class=\"measured\" data-stages=\"%d\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\">\n",
            p->S, w, h, w, h);
    for (int s = 0; s < p->S; s++)
        pm_stage(out, p, &m->stages[s], s, sc, 4 + s * (2 * PM_ROW + 6));
    double xs = PM_LEFT + p->totals.step_time * sc, yb = h - 20;
    char b[48];
    fprintf(out,
            "<line x1=\"%.2f\" y1=\"0\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"#c00\" "
            "stroke-dasharray=\"4 3\"/><text x=\"%d\" y=\"%.1f\">0</text><text x=\"%.2f\" "
            "y=\"%.1f\" text-anchor=\"end\">%s</text>\n</svg></div>\n",
            xs, xs, yb, PM_LEFT, yb + 14, PM_LEFT + span * sc, yb + 14,
            units_time(b, sizeof b, span));
}

/* One cell pair: predicted, measured, and the error in percent (data-v for sorting). */
static void pm_cells(FILE *out, double pred, double meas, bool have) {
    char b[2][48];
    fprintf(out, "<td class=\"r\" data-v=\"%.9g\">%s</td>", pred, units_time(b[0], 48, pred));
    if (!have || pred <= 0) { /* no measurement, or no prediction to be off from */
        if (!have)
            fputs("<td class=\"r\" data-v=\"-1\">-</td>", out);
        else
            fprintf(out, "<td class=\"r\" data-v=\"%.9g\">%s</td>", meas,
                    units_time(b[1], 48, meas));
        fputs("<td class=\"r\" data-v=\"0\">-</td>", out);
        return;
    }
    double err = 100.0 * (meas - pred) / pred;
    fprintf(out,
            "<td class=\"r\" data-v=\"%.9g\">%s</td><td class=\"r%s\" data-v=\"%.4f\">%+.0f%%</td>",
            meas, units_time(b[1], 48, meas), fabs(err) > 30 ? " off" : "", err, err);
}

typedef struct PmRow {
    int i;
    double cost; /* |measured − predicted| of forward + backward, per step */
} PmRow;

static int pm_cmp(const void *a, const void *b) {
    const PmRow *x = a, *y = b;
    if (x->cost != y->cost) return x->cost < y->cost ? 1 : -1;
    return x->i - y->i;
}

static void pm_layers(const IrGraph *g, const Measured *m, FILE *out) {
    const Plan *p = report_plan(g);
    int L = IR_NNODES(g);
    PmRow *rows = malloc((size_t)(L > 0 ? L : 1) * sizeof *rows);
    if (!rows) return;
    for (int i = 0; i < L; i++) {
        const PlanNode *pn = &p->nodes[i];
        const MeasuredLayer *ml = &m->layers[i];
        double d = ml->have ? (ml->fwd + ml->bwd - pn->fwd_time - pn->bwd_time) * p->m : 0;
        rows[i] = (PmRow){i, fabs(d)};
    }
    qsort(rows, (size_t)L, sizeof *rows, pm_cmp);
    fputs("<div class=\"scroll\"><table class=\"sortable pm\"><thead><tr><th>#</th><th>layer</th>"
          "<th>stage</th><th>fwd predicted</th><th>fwd measured</th><th>fwd error</th>"
          "<th>bwd predicted</th><th>bwd measured</th><th>bwd error</th><th>error per step</th>"
          "</tr></thead><tbody>\n",
          out);
    char b[48];
    for (int k = 0; k < L; k++) {
        int i = rows[k].i;
        const PlanNode *pn = &p->nodes[i];
        const MeasuredLayer *ml = &m->layers[i];
        fprintf(out, "<tr data-pm-layer=\"%d\"><td class=\"r\" data-v=\"%d\">%d</td><td>", i, i, i);
        html_esc(out, IR_NODE(g, i)->name);
        fprintf(out, "</td><td class=\"r\" data-v=\"%d\">%d</td>", pn->stage, pn->stage);
        pm_cells(out, pn->fwd_time, ml->fwd, ml->have);
        pm_cells(out, pn->bwd_time, ml->bwd, ml->have);
        fprintf(out, "<td class=\"r\" data-v=\"%.9g\">%s</td></tr>\n", rows[k].cost,
                ml->have ? units_time(b, sizeof b, rows[k].cost) : "-");
    }
    fputs("</tbody></table></div>\n", out);
    free(rows);
}

void html_measured(const IrGraph *g, const Measured *m, FILE *out) {
    const Plan *p = report_plan(g);
    char b[3][48];
    double pred = p->totals.step_time;
    fputs("<h2>Predicted and measured</h2>\n<p>", out);
    fprintf(out, "Measured by the trainer's profile <code>");
    html_esc(out, m->path);
    fprintf(out,
            "</code> over %s, warm-up excluded: step <b data-measured=\"%.9g\">%s</b> "
            "(%s), predicted %s, measured/predicted <b>%.2f×</b>. Each stage's predicted bar "
            "(as above, aggregated) has its measured bar under it, on the same scale; the "
            "profile has totals per step, not a timeline of micro-batches.</p>\n",
            units_n(b[2], sizeof b[2], m->steps, "step"), m->step,
            units_time(b[0], sizeof b[0], m->step),
            m->step_from_profile ? "the profile's measured_step_s"
                                 : "the slowest stage's busy and idle time",
            units_time(b[1], sizeof b[1], pred), pred > 0 ? m->step / pred : 0);
    if (m->trainer_predicted > 0 && fabs(m->trainer_predicted - pred) > 1e-3 * pred)
        fprintf(out,
                "<p class=\"warn\" data-other-plan=\"1\">The trainer that wrote the profile "
                "predicted %s, this plan %s: it was built from another plan (other settings or "
                "another mpcc), so the comparison below is not like for like.</p>\n",
                units_time(b[0], sizeof b[0], m->trainer_predicted),
                units_time(b[1], sizeof b[1], pred));
    pm_timeline(g, m, out);
    fputs("<p>Per layer, per micro-batch: the cost model's forward and backward time against the "
          "profile's, mean over the stage's ranks; errors beyond ±30% are red. Sorted by the "
          "time the layer's error costs per step; click a heading to sort.</p>\n",
          out);
    pm_layers(g, m, out);
}
