/*
 * html_charts.c: the three charts of the HTML report (html.c) — the predicted timeline of one
 * step, memory per stage against capacity, and the chosen plan against the pure ones.
 *
 * The timeline replays the 1F1B schedule the lowering emits (passes/lower_spmd.c): stage s
 * runs min(S−1−s, m) warm-up forwards, then alternates one forward and one backward, then
 * drains its backwards. A forward of micro-batch i waits for the same forward on stage s−1,
 * a backward for the same backward on stage s+1. Each slot lasts the plan's per-micro-batch
 * times (docs/cost-model.md §6): forward + half the stage's communication, backward + the
 * other half; the unhidden gradient sync follows the last backward. Idle time between is the
 * bubble. The replay is drawn to scale beside the plan's predicted step (the cost model's
 * max_s(K·T_s + U_s)), which it matches when the stages are balanced. Past TL_MAX_BOXES
 * slots the timeline is aggregated: one bar per stage split into forward, backward,
 * communication, gradient sync and bubble, so a 64-stage GPT stays readable.
 */
#include "report_internal.h"

#include <stdlib.h>
#include <string.h>

enum { TL_MAX_BOXES = 1200, TL_LEFT = 70, TL_W = 1000, TL_ROW = 16 };

/* One slot of a stage's 1F1B order. */
typedef struct Slot {
    bool bwd;
    int micro;
    double start, end;
} Slot;

static int build_order(const Plan *p, int s, Slot *o) {
    int m = p->m, w = p->S - 1 - s < m ? p->S - 1 - s : m, n = 0;
    for (int i = 0; i < w; i++)
        o[n++] = (Slot){false, i, -1, -1};
    for (int i = 0; i < m - w; i++) {
        o[n++] = (Slot){false, w + i, -1, -1};
        o[n++] = (Slot){true, i, -1, -1};
    }
    for (int i = m - w; i < m; i++)
        o[n++] = (Slot){true, i, -1, -1};
    return n;
}

/* End time of (stage s, fwd/bwd, micro i), or −1 while not yet placed. */
static double slot_end(const Slot *o, int m, int s, bool bwd, int i) {
    for (int k = 0; k < 2 * m; k++) {
        const Slot *x = &o[s * 2 * m + k];
        if (x->bwd == bwd && x->micro == i) return x->end;
    }
    return -1;
}

static double slot_len(const PlanStage *st, bool bwd) {
    return (bwd ? st->bwd_time : st->fwd_time) + st->comm_time / 2;
}

/* Places every slot: repeatedly, each stage starts its next slot once its dependency ended. */
static void replay(const Plan *p, Slot *o) {
    int m = p->m, S = p->S, *next = calloc((size_t)S, sizeof *next);
    double *free_at = calloc((size_t)S, sizeof *free_at);
    if (!next || !free_at) goto out;
    for (bool moved = true; moved;) {
        moved = false;
        for (int s = 0; s < S; s++) {
            if (next[s] == 2 * m) continue;
            Slot *x = &o[s * 2 * m + next[s]];
            double dep = 0;
            if (!x->bwd && s > 0) dep = slot_end(o, m, s - 1, false, x->micro);
            if (x->bwd && s < S - 1) dep = slot_end(o, m, s + 1, true, x->micro);
            if (dep < 0) continue;
            x->start = dep > free_at[s] ? dep : free_at[s];
            x->end = free_at[s] = x->start + slot_len(&p->stages[s], x->bwd);
            next[s]++;
            moved = true;
        }
    }
out:
    free(next);
    free(free_at);
}

/* The step time a stage's gradient sync adds: its exposed wait and the backward it slows. */
static double unhidden(const PlanStage *st) {
    return st->grad_sync_time - st->grad_sync_hidden + st->grad_sync_slow;
}

void html_box(FILE *out, double x, double y, double w, double h, const char *fill,
              const char *cls) {
    fprintf(out,
            "<rect class=\"%s\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" "
            "fill=\"%s\"/>",
            cls, x, y, w, h, fill);
}

static const char *const TL_FWD = "#6a9fd8", *const TL_BWD = "#3d6fae", *const TL_COMM = "#e39b5b",
                         *const TL_SYNC = "#b05fc4", *const TL_IDLE = "#eeeeee";

static void tl_detail(FILE *out, const Plan *p, const Slot *o, double sc, int s, double y) {
    const PlanStage *st = &p->stages[s];
    for (int k = 0; k < 2 * p->m; k++) {
        const Slot *x = &o[s * 2 * p->m + k];
        double w = (x->bwd ? st->bwd_time : st->fwd_time) * sc, c = st->comm_time / 2 * sc;
        html_box(out, TL_LEFT + x->start * sc, y, w, TL_ROW - 4, x->bwd ? TL_BWD : TL_FWD,
                 x->bwd ? "bwd" : "fwd");
        if (c > 0) html_box(out, TL_LEFT + x->start * sc + w, y, c, TL_ROW - 4, TL_COMM, "comm");
        fputc('\n', out);
    }
    double end = o[s * 2 * p->m + 2 * p->m - 1].end;
    if (unhidden(st) > 0)
        html_box(out, TL_LEFT + end * sc, y, unhidden(st) * sc, TL_ROW - 4, TL_SYNC, "sync");
}

/* Aggregated: forward, backward, communication, sync, then the rest of the step is bubble. */
static void tl_aggregate(FILE *out, const Plan *p, double sc, int s, double y, double step) {
    const PlanStage *st = &p->stages[s];
    double part[4] = {st->fwd_time * p->m, st->bwd_time * p->m, st->comm_time * p->m, unhidden(st)};
    const char *fill[4] = {TL_FWD, TL_BWD, TL_COMM, TL_SYNC},
               *cls[4] = {"fwd", "bwd", "comm", "sync"};
    double x = 0;
    for (int i = 0; i < 4; i++) {
        if (part[i] > 0)
            html_box(out, TL_LEFT + x * sc, y, part[i] * sc, TL_ROW - 4, fill[i], cls[i]);
        x += part[i];
    }
    if (step > x)
        html_box(out, TL_LEFT + x * sc, y, (step - x) * sc, TL_ROW - 4, "url(#hatch)", "bubble");
    fputc('\n', out);
}

static void tl_legend(FILE *out) {
    static const char *const name[] = {"forward", "backward", "communication",
                                       "gradient sync (unhidden)", "idle (bubble)"};
    const char *fill[] = {TL_FWD, TL_BWD, TL_COMM, TL_SYNC, "#ddd"};
    fputs("<p>", out);
    for (int i = 0; i < 5; i++)
        fprintf(out, "<span class=\"k\" style=\"background:%s\"></span>%s", fill[i], name[i]);
    fputs("</p>\n", out);
}

static double tl_span(const Plan *p, const Slot *o, bool detail) {
    double span = p->totals.step_time;
    for (int s = 0; s < p->S; s++) {
        const PlanStage *st = &p->stages[s];
        double e = detail ? o[s * 2 * p->m + 2 * p->m - 1].end + unhidden(st)
                          : (st->fwd_time + st->bwd_time + st->comm_time) * p->m + unhidden(st);
        if (e > span) span = e;
    }
    return span;
}

void html_timeline(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    bool detail = (int64_t)p->S * p->m * 2 <= TL_MAX_BOXES;
    Slot *o = detail ? calloc((size_t)p->S * 2 * (size_t)p->m, sizeof *o) : NULL;
    if (detail && !o) detail = false;
    for (int s = 0; detail && s < p->S; s++)
        build_order(p, s, &o[s * 2 * p->m]);
    if (detail) replay(p, o);
    double span = tl_span(p, o, detail), sc = span > 0 ? TL_W / span : 0;
    char b[2][48];
    fprintf(out,
            "<h2>Timeline of one step (predicted)</h2>\n<p>%s: %d micro-batch%s through %d "
            "stage%s, predicted step %s (dashed line). %s</p>\n",
            detail ? "The 1F1B schedule, to scale" : "Per stage, aggregated", p->m,
            p->m == 1 ? "" : "es", p->S, p->S == 1 ? "" : "s",
            units_time(b[0], sizeof b[0], p->totals.step_time),
            detail ? "Each forward and backward box is one micro-batch on every device of the "
                     "stage; grey is idle (the bubble)."
                   : "Too many micro-batch slots to draw one by one: each bar is the stage's "
                     "forward, backward and communication over all micro-batches, its unhidden "
                     "gradient sync, then the bubble up to the step's end.");
    tl_legend(out);
    int h = p->S * TL_ROW + 30, w = TL_LEFT + TL_W + 20;
    fprintf(out,
            "<div class=\"wrap\"><svg class=\"timeline\" data-stages=\"%d\" data-micro=\"%d\" "
            "data-detail=\"%d\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n"
            "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\">"
            "<rect width=\"6\" height=\"6\" fill=\"#f3f3f3\"/><path d=\"M0 6L6 0\" "
            "stroke=\"#ccc\"/></pattern></defs>\n",
            p->S, p->m, detail, w, h, w, h);
    for (int s = 0; s < p->S; s++) {
        double y = 4 + s * TL_ROW;
        fprintf(out, "<g data-tl-stage=\"%d\"><text x=\"4\" y=\"%.1f\">stage %d</text>", s, y + 10,
                s);
        if (detail) {
            html_box(out, TL_LEFT, y, span * sc, TL_ROW - 4, TL_IDLE, "idle");
            tl_detail(out, p, o, sc, s, y);
        } else
            tl_aggregate(out, p, sc, s, y, p->totals.step_time);
        fputs("</g>\n", out);
    }
    double xs = TL_LEFT + p->totals.step_time * sc, yb = 4 + p->S * TL_ROW;
    fprintf(out,
            "<line x1=\"%.2f\" y1=\"0\" x2=\"%.2f\" y2=\"%.1f\" stroke=\"#c00\" "
            "stroke-dasharray=\"4 3\"/><text x=\"%d\" y=\"%.1f\">0</text><text x=\"%.2f\" "
            "y=\"%.1f\" text-anchor=\"end\">%s</text>\n</svg></div>\n",
            xs, xs, yb, TL_LEFT, yb + 14, TL_LEFT + span * sc, yb + 14,
            units_time(b[1], sizeof b[1], span));
    free(o);
}

/* ───────────────────────────── memory per stage ───────────────────────────── */

enum { MEM_LEFT = 70, MEM_W = 800, MEM_ROW = 18 };

void html_memory(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    static const char *const name[] = {"parameters", "gradients", "optimizer state", "activations",
                                       "buffers"};
    static const char *const fill[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#bab0ac"};
    double cap = g->cluster.memory, peak = (double)p->totals.mem_peak;
    /* Against capacity when the fullest stage uses a visible share of it; else to the
     * fullest stage's scale, with the capacity written out. */
    bool to_cap = cap > 0 && peak * 20 >= cap;
    double scale = to_cap ? (peak > cap ? peak : cap) : peak;
    char b[3][48];
    fprintf(out,
            "<h2>Memory per device, by stage</h2>\n<p>Fullest device %s of %s (%s). %s</p>\n<p>",
            units_bytes(b[0], 48, p->totals.mem_peak), units_bytes(b[1], 48, (int64_t)cap),
            units_pct(b[2], 48, peak, cap),
            to_cap ? "Bars are drawn against the device's capacity (red line)."
                   : "The capacity is off the scale: bars are drawn against the fullest stage.");
    for (int i = 0; i < 5; i++)
        fprintf(out, "<span class=\"k\" style=\"background:%s\"></span>%s", fill[i], name[i]);
    fputs("</p>\n", out);
    int h = p->S * MEM_ROW + 24, w = MEM_LEFT + MEM_W + 140;
    fprintf(out,
            "<div class=\"wrap\"><svg class=\"memory\" data-stages=\"%d\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\">\n",
            p->S, w, h, w, h);
    double sc = scale > 0 ? MEM_W / scale : 0;
    for (int s = 0; s < p->S; s++) {
        const PlanStage *st = &p->stages[s];
        int64_t part[5] = {st->mem_params, st->mem_grads, st->mem_optim, st->mem_acts,
                           st->mem_buffers};
        double y = 4 + s * MEM_ROW, x = MEM_LEFT;
        fprintf(out, "<g data-mem-stage=\"%d\"><text x=\"4\" y=\"%.1f\">stage %d</text>", s, y + 11,
                s);
        for (int i = 0; i < 5; i++) {
            double wd = (double)part[i] * sc;
            if (part[i] > 0)
                fprintf(out,
                        "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"%s\">"
                        "<title>%s %s</title></rect>",
                        x, y, wd, MEM_ROW - 5, fill[i], name[i], units_bytes(b[0], 48, part[i]));
            x += wd;
        }
        fprintf(out, "<text x=\"%.2f\" y=\"%.1f\">%s</text></g>\n", x + 4, y + 11,
                units_bytes(b[0], 48, st->mem_bytes));
    }
    if (to_cap) {
        double xc = MEM_LEFT + cap * sc;
        fprintf(out,
                "<line x1=\"%.2f\" y1=\"0\" x2=\"%.2f\" y2=\"%d\" stroke=\"#c00\"/><text "
                "x=\"%.2f\" y=\"%d\" text-anchor=\"end\">capacity %s</text>\n",
                xc, xc, h - 12, xc, h - 2, units_bytes(b[0], 48, (int64_t)cap));
    }
    fputs("</svg></div>\n", out);
}

/* One stage's row of the savings table ("-": the feature is off there). */
static void savings_row(const IrGraph *g, int s, FILE *out) {
    const Plan *p = report_plan(g);
    const PlanStage *st = &p->stages[s];
    bool bf = g->train.precision == PRECISION_BF16;
    char b[3][48];
    fprintf(out, "<tr data-save-stage=\"%d\"><td>%d</td><td>%s</td>", s, s, bf ? "bf16" : "f32");
    if (st->recompute)
        fprintf(out, "<td>%d of %d layers</td>", st->recompute, st->last_node - st->first_node + 1);
    else
        fputs("<td>none</td>", out);
    fprintf(out, "<td>%d</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", p->zero,
            bf ? units_bytes(b[0], 48, st->bf16_saved) : "-",
            st->recompute ? units_bytes(b[1], 48, st->rc_saved) : "-",
            p->zero ? units_bytes(b[2], 48, st->zero_saved) : "-");
}

void html_savings(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    if (!report_savings_shown(g)) return;
    fputs("<h2>Memory saved, by stage</h2>\n<p>Per pipeline stage: the precision, the layers "
          "whose activations are recomputed in backward, the ZeRO stage, and the memory each "
          "saves per device (docs/cost-model.md).</p>\n<div class=\"scroll\"><table "
          "class=\"savings\"><thead><tr><th>stage</th><th>precision</th><th>recomputed</th>"
          "<th>ZeRO</th><th>bf16 saves</th><th>recompute saves</th><th>ZeRO saves</th></tr>"
          "</thead>\n<tbody>\n",
          out);
    for (int s = 0; s < p->S; s++)
        savings_row(g, s, out);
    fputs("</tbody></table></div>\n", out);
}

/* ───────────────────────────── comparison ───────────────────────────── */

enum { CMP_LEFT = 150, CMP_W = 600, CMP_ROW = 24 };

static void cmp_bar(FILE *out, int row, const char *name, const char *mesh, double t, double sc,
                    const char *fill, const char *label) {
    double y = 4 + row * CMP_ROW;
    fprintf(out, "<g data-cmp=\"%d\"><text x=\"4\" y=\"%.1f\">%s %s</text>", row, y + 13, name,
            mesh);
    if (t > 0)
        fprintf(out, "<rect x=\"%d\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"%s\"/>",
                CMP_LEFT, y, t * sc, CMP_ROW - 8, fill);
    fprintf(out, "<text x=\"%.2f\" y=\"%.1f\">", CMP_LEFT + (t > 0 ? t * sc : 0) + 4, y + 13);
    html_esc(out, label);
    fputs("</text></g>\n", out);
}

void html_compare(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    PureRef r[3];
    int n = report_pure_refs(g, r);
    double tmax = p->totals.step_time;
    for (int i = 0; i < n; i++)
        if (report_pure_state(&r[i]) == PURE_OK && r[i].tot->step_time > tmax)
            tmax = r[i].tot->step_time;
    double sc = tmax > 0 ? CMP_W / tmax : 0;
    fputs("<h2>Compared with pure strategies</h2>\n<p>Predicted step time on the same cluster "
          "and batch; shorter is faster.</p>\n",
          out);
    int h = (n + 1) * CMP_ROW + 8, w = CMP_LEFT + CMP_W + 520;
    fprintf(out,
            "<div class=\"wrap\"><svg class=\"compare\" width=\"%d\" height=\"%d\" viewBox=\"0 0 "
            "%d %d\">\n",
            w, h, w, h);
    char mesh[64], lab[400], b[2][200];
    snprintf(mesh, sizeof mesh, "%d×%d×%d", p->S, p->d, p->t);
    snprintf(lab, sizeof lab, "%s", units_time(b[0], 48, p->totals.step_time));
    cmp_bar(out, 0, "chosen", mesh, p->totals.step_time, sc, "#59a14f", lab);
    for (int i = 0; i < n; i++) {
        PureState st = report_pure_state(&r[i]);
        snprintf(mesh, sizeof mesh, "%lld×%lld×%lld", (long long)r[i].S, (long long)r[i].d,
                 (long long)r[i].t);
        if (st == PURE_OK)
            snprintf(lab, sizeof lab, "%s (%.2f× the chosen plan's)",
                     units_time(b[0], 48, r[i].tot->step_time),
                     p->totals.step_time > 0 ? r[i].tot->step_time / p->totals.step_time : 0);
        else
            snprintf(lab, sizeof lab, "%s: %s",
                     st == PURE_TOO_BIG ? "does not fit" : "not possible",
                     report_pure_why(g, &r[i], b[1], sizeof b[1]));
        cmp_bar(out, i + 1, r[i].name, mesh, st == PURE_OK ? r[i].tot->step_time : 0, sc, "#9c9c9c",
                lab);
    }
    fputs("</svg></div>\n", out);
}
