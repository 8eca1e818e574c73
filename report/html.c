/*
 * html.c: the partition report as one self-contained HTML page (mpcc --report-html FILE,
 * docs/report.md): the same plan as the text report, drawn.
 *
 * A plan is a picture — a mesh of stages × replicas × tensor ranks, layers placed on stages,
 * a 1F1B schedule with its bubble, memory per device against capacity — so the page draws
 * five: the mesh (html.c), the layer table with each alternative's bytes and time as small
 * bars (html.c), and the predicted timeline, memory per stage and the comparison with the
 * pure plans (html_charts.c). Below them the full text report, verbatim, so the page says
 * exactly what the text says; every number drawn is written by passes/units.c.
 *
 * Invariants. Self-contained: inline CSS and SVG, one small inline script that sorts the
 * table; nothing is fetched. Deterministic: a function of the graph and plan only, floats
 * printed with fixed precision. Every name that comes from the .mp (model, layers, values)
 * goes through html_esc. Elements a test counts carry data attributes: data-device,
 * data-stage, data-layer, data-tl-stage (docs/report.md lists them).
 */
#include "report_internal.h"

#include <stdlib.h>
#include <string.h>

/* ───────────────────────────── escaping ───────────────────────────── */

void html_esc(FILE *out, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '&': fputs("&amp;", out); break;
        case '"': fputs("&quot;", out); break;
        case '\'': fputs("&#39;", out); break;
        default: fputc(*s, out);
        }
    }
}

/* A stage's colour: hues spread by the golden angle, so neighbours differ. */
void html_stage_color(char *buf, size_t n, int s) {
    snprintf(buf, n, "hsl(%d,65%%,72%%)", (s * 137) % 360);
}

/* ───────────────────────────── page frame ───────────────────────────── */

static const char html_css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}\n"
    "h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}\n"
    "svg{display:block;margin:8px 0}svg text{font:11px system-ui,sans-serif;fill:#222}\n"
    ".wrap{overflow:auto;max-width:100%}.scroll{max-height:560px;overflow:auto;"
    "border:1px solid #ddd}\n"
    "table{border-collapse:collapse;font-size:12px}th,td{padding:2px 6px;text-align:left;"
    "border-bottom:1px solid #eee;white-space:nowrap}\n"
    "th{position:sticky;top:0;background:#f4f4f4;cursor:pointer}td.r{text-align:right}\n"
    "td.why{white-space:normal;min-width:280px}.alt{display:inline-block;width:140px}\n"
    ".alt.na{color:#aaa}.alt.chosen{background:#fff3c4;outline:1px solid #d9b400}\n"
    ".bar{height:5px;background:#7aa6d8;margin:1px 0}.bar.t{background:#e39b5b}\n"
    ".k{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;"
    "vertical-align:middle}\n"
    "pre{font-size:11px;overflow:auto;background:#fafafa;padding:8px}td.off{color:#c00}.warn{color:"
    "#c00}\n";

/* Sorts the layer table by the clicked column (numbers by data-v, text otherwise); marks the
 * body data-ready once it ran, which the browser test looks for. */
static const char html_js[] =
    "document.querySelectorAll('table.sortable th').forEach(function(th,c){\n"
    " th.addEventListener('click',function(){\n"
    "  var tb=th.closest('table').tBodies[0],rows=Array.prototype.slice.call(tb.rows);\n"
    "  var "
    "dir=th.getAttribute('data-dir')==='1'?-1:1;th.setAttribute('data-dir',dir===1?'1':'-1');\n"
    "  function key(r){var d=r.cells[c];var v=d.getAttribute('data-v');\n"
    "   return v===null?d.textContent:parseFloat(v);}\n"
    "  rows.sort(function(a,b){var x=key(a),y=key(b);\n"
    "   return (x<y?-1:x>y?1:0)*dir;});\n"
    "  rows.forEach(function(r){tb.appendChild(r);});});});\n"
    "document.body.setAttribute('data-ready','1');\n";

static void html_head(const IrGraph *g, FILE *out) {
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>mpcc "
          "plan: ",
          out);
    html_esc(out, g->name);
    fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", html_css);
    fputs("<h1>mpcc partition report: ", out);
    html_esc(out, g->name);
    fputs(" (", out);
    html_esc(out, g->file);
    fputs(")</h1>\n", out);
}

/* The summary lines the trainer prints, as the page's first paragraph. */
static void html_summary(const IrGraph *g, FILE *out) {
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    if (!m) return;
    pass_report_summary(g, m);
    fclose(m);
    fputs("<pre class=\"summary\">", out);
    html_esc(out, buf);
    fputs("</pre>\n", out);
    free(buf);
}

/* The text report verbatim, folded: the page never disagrees with it. */
static void html_text_report(const IrGraph *g, FILE *out) {
    char *buf = NULL;
    size_t n = 0;
    FILE *m = open_memstream(&buf, &n);
    if (!m) return;
    pass_report_text(g, m);
    fclose(m);
    fputs("<h2>The text report</h2>\n<details><summary>the same plan as text (mpcc "
          "--emit=plan)</summary>\n<pre>",
          out);
    html_esc(out, buf);
    fputs("</pre></details>\n", out);
    free(buf);
}

/* ───────────────────────────── the mesh ───────────────────────────── */

enum { CELL = 18, GAP = 4, RGAP = 10, MESH_LEFT = 70 };

/* One stage's row: replicas side by side, each a tensor group of t devices (outlined);
 * a dashed line joins the devices of one tensor rank across replicas (a data group). */
static void mesh_row(FILE *out, const Plan *p, int s, int y) {
    char col[32];
    html_stage_color(col, sizeof col, s);
    fprintf(out, "<text x=\"4\" y=\"%d\">stage %d</text>\n", y + 13, s);
    int gw = p->t * (CELL + GAP) - GAP;
    for (int k = 0; k < p->t && p->d > 1; k++) {
        int x0 = MESH_LEFT + k * (CELL + GAP) + CELL / 2;
        int x1 = x0 + (p->d - 1) * (gw + RGAP + 4);
        fprintf(out,
                "<line class=\"dgroup\" data-dgroup=\"%d.%d\" x1=\"%d\" y1=\"%d\" x2=\"%d\" "
                "y2=\"%d\" stroke=\"#555\" stroke-dasharray=\"3 2\"/>\n",
                s, k, x0, y + CELL + 6, x1, y + CELL + 6);
    }
    for (int j = 0; j < p->d; j++) {
        int gx = MESH_LEFT + j * (gw + RGAP + 4);
        fprintf(out,
                "<rect class=\"tgroup\" data-tgroup=\"%d.%d\" x=\"%d\" y=\"%d\" width=\"%d\" "
                "height=\"%d\" rx=\"3\" fill=\"none\" stroke=\"#333\"/>\n",
                s, j, gx - 2, y - 2, gw + 4, CELL + 4);
        for (int k = 0; k < p->t; k++) {
            int r = (s * p->d + j) * p->t + k;
            fprintf(out,
                    "<rect data-device=\"%d\" data-stage=\"%d\" x=\"%d\" y=\"%d\" width=\"%d\" "
                    "height=\"%d\" fill=\"%s\"><title>rank %d: stage %d, replica %d, tensor "
                    "rank %d</title></rect>\n",
                    r, s, gx + k * (CELL + GAP), y, CELL, CELL, col, r, s, j, k);
        }
    }
}

static void html_mesh(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    int gw = p->t * (CELL + GAP) - GAP;
    int w = MESH_LEFT + p->d * (gw + RGAP + 4) + 10, rowh = CELL + 14;
    int h = p->S * rowh + 8;
    fprintf(out,
            "<h2>Mesh</h2>\n<p>S=%d stage%s × d=%d data replica%s × t=%d tensor rank%s = %lld "
            "devices. Each square is a device (rank r = (s·d + j)·t + k), coloured by stage; a "
            "solid outline is a tensor group (the t ranks of one replica), a dashed line a data "
            "group (one tensor rank across the replicas).</p>\n<div class=\"wrap\">",
            p->S, p->S == 1 ? "" : "s", p->d, p->d == 1 ? "" : "s", p->t, p->t == 1 ? "" : "s",
            (long long)g->cluster.devices);
    fprintf(out,
            "<svg class=\"mesh\" data-stages=\"%d\" data-replicas=\"%d\" data-tensor=\"%d\" "
            "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
            p->S, p->d, p->t, w, h, w, h);
    for (int s = 0; s < p->S; s++)
        mesh_row(out, p, s, 6 + s * rowh);
    fputs("</svg></div>\n", out);
}

/* ───────────────────────────── the layer table ───────────────────────────── */

/* One alternative: its bytes and time as two small bars scaled to the row's largest. */
static void alt_cell(FILE *out, const IrNode *n, const PlanNode *pn, Strategy s, int64_t bmax,
                     double tmax) {
    const PlanAlt *a = &pn->alt[s];
    if (!report_alt_shown(n, pn, s) || !a->feasible) {
        fputs("<td data-v=\"-1\"><span class=\"alt na\">n/a</span></td>", out);
        return;
    }
    char b[32], t[32];
    double bw = bmax > 0 ? 100.0 * (double)a->comm_bytes / (double)bmax : 0;
    double tw = tmax > 0 ? 100.0 * a->time / tmax : 0;
    fprintf(out,
            "<td data-v=\"%.9g\"><span class=\"alt%s\">%s %s · %s<div class=\"bar\" "
            "style=\"width:%.1f%%\"></div><div class=\"bar t\" style=\"width:%.1f%%\"></div>"
            "</span></td>",
            a->time, pn->strat == s ? " chosen" : "", pn->strat == s ? "★" : "",
            units_bytes(b, sizeof b, a->comm_bytes), units_time(t, sizeof t, a->time), bw, tw);
}

static void layer_row(const IrGraph *g, int i, FILE *out) {
    const IrNode *n = IR_NODE(g, i);
    const PlanNode *pn = &report_plan(g)->nodes[i];
    char b[3][160], col[32];
    html_stage_color(col, sizeof col, pn->stage);
    fprintf(out, "<tr data-layer=\"%d\"><td class=\"r\" data-v=\"%d\">%d</td><td>", i, i, i);
    html_esc(out, n->name);
    fprintf(out, "</td><td>%s</td><td class=\"r\" data-v=\"%d\" style=\"background:%s\">%d</td>",
            ir_ops[n->op].name, pn->stage, col, pn->stage);
    fprintf(out, "<td class=\"r\" data-v=\"%lld\">%s</td>", (long long)n->param_count,
            n->param_count ? units_count(b[0], 48, (double)n->param_count, "") : "-");
    fprintf(out, "<td class=\"r\" data-v=\"%.0f\">%s</td>", report_node_flops(n),
            units_count(b[1], 48, report_node_flops(n), ""));
    int64_t bmax = 0;
    double tmax = 0;
    for (int s = 0; s < STRAT__COUNT; s++)
        if (report_alt_shown(n, pn, (Strategy)s) && pn->alt[s].feasible) {
            if (pn->alt[s].comm_bytes > bmax) bmax = pn->alt[s].comm_bytes;
            if (pn->alt[s].time > tmax) tmax = pn->alt[s].time;
        }
    for (int s = 0; s < STRAT__COUNT; s++)
        alt_cell(out, n, pn, (Strategy)s, bmax, tmax);
    fprintf(out, "<td>%s%s</td><td class=\"why\">", report_chosen_name(n, pn),
            pn->forced ? " (forced)" : "");
    html_esc(out, report_layer_reason(g, i, b[2], sizeof b[2]));
    fputs("</td></tr>\n", out);
}

static void html_layers(const IrGraph *g, FILE *out) {
    char n[48];
    fprintf(out,
            "<h2>Layers</h2>\n<p>%s. Each alternative shows the bytes a device moves per "
            "step (blue bar) and the time per step (orange bar), scaled to the row's largest; "
            "★ and the yellow box mark the choice. Click a heading to sort.</p>\n",
            units_n(n, sizeof n, IR_NNODES(g), "layer"));
    fputs("<div class=\"scroll\"><table class=\"sortable layers\"><thead><tr><th>#</th>"
          "<th>layer</th><th>op</th><th>stage</th><th>params</th><th>FLOPs</th>",
          out);
    for (int s = 0; s < STRAT__COUNT; s++)
        fprintf(out, "<th>%s</th>", plan_strategy_name((Strategy)s));
    fputs("<th>chosen</th><th>why</th></tr></thead>\n<tbody>\n", out);
    for (int i = 0; i < IR_NNODES(g); i++)
        layer_row(g, i, out);
    fputs("</tbody></table></div>\n", out);
}

/* ───────────────────────────── the page ───────────────────────────── */

void pass_report_html(const IrGraph *g, const Measured *m, FILE *out) {
    html_head(g, out);
    if (!report_plan(g)) {
        fputs("<p>no plan: the planner did not run</p>\n</body>\n</html>\n", out);
        return;
    }
    html_summary(g, out);
    html_mesh(g, out);
    html_timeline(g, out);
    if (m) html_measured(g, m, out);
    html_memory(g, out);
    html_savings(g, out);
    html_compare(g, out);
    html_layers(g, out);
    html_text_report(g, out);
    fprintf(out, "<script>\n%s</script>\n</body>\n</html>\n", html_js);
}
