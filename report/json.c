/*
 * json.c: the partition report for programs; docs/report.schema.json is its contract.
 *
 * The same content as the text report (text.c), from the same facts (facts.c), never
 * collapsed. Every number is exact: bytes, FLOPs and counts as integers, times in seconds
 * written as the shortest string that reads back to the same double. Keys come in the order
 * written, two-space indent; no pointers, timestamps, locale or hash order, so the same plan
 * gives the same bytes.
 */
#include "report_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ───────────────────────────── JSON report ───────────────────────────── */

/* A small pretty-printing JSON writer: two-space indent, keys in the order written. */
typedef struct Json {
    FILE *out;
    int depth;
    bool first;
    int inline_from; /* depth at which the current line began printing inline; 0: none */
} Json;

static void json_indent(Json *j) {
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->out);
}

static void json_str_raw(Json *j, const char *s) {
    fputc('"', j->out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(j->out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", j->out);
        else if (*p == '\t')
            fputs("\\t", j->out);
        else if (*p < 0x20)
            fprintf(j->out, "\\u%04x", *p);
        else
            fputc(*p, j->out);
    }
    fputc('"', j->out);
}

/* Starts a member (key != NULL, inside an object) or an element (inside an array). */
static void json_key(Json *j, const char *key) {
    if (j->inline_from) {
        fputs(j->first ? "" : ", ", j->out);
    } else {
        fputs(j->first ? "\n" : ",\n", j->out);
        json_indent(j);
    }
    j->first = false;
    if (key) {
        json_str_raw(j, key);
        fputs(": ", j->out);
    }
}

static void json_open(Json *j, const char *key, char bracket) {
    if (j->depth > 0 || key) json_key(j, key);
    fputc(bracket, j->out);
    j->depth++;
    j->first = true;
}

static void json_close(Json *j, char bracket) {
    if (j->inline_from == j->depth) {
        j->depth--;
        j->inline_from = 0;
        fputc(bracket, j->out);
        j->first = false;
        return;
    }
    j->depth--;
    if (!j->first && !j->inline_from) {
        fputc('\n', j->out);
        json_indent(j);
    }
    fputc(bracket, j->out);
    j->first = false;
}

/* Opens an object or array whose members all go on the current line. */
static void json_open_inline(Json *j, const char *key, char bracket) {
    json_open(j, key, bracket);
    if (!j->inline_from) j->inline_from = j->depth;
}

static void json_int(Json *j, const char *key, int64_t v) {
    json_key(j, key);
    fprintf(j->out, "%lld", (long long)v);
}

/* An integral count held in a double (FLOPs): written as an integer, exact below 2^53. */
static void json_count(Json *j, const char *key, double v) {
    json_key(j, key);
    fprintf(j->out, "%.0f", v);
}

/* The shortest decimal that reads back as the same double; null when not finite. */
static void json_num(Json *j, const char *key, double v) {
    json_key(j, key);
    if (!isfinite(v)) {
        fputs("null", j->out);
        return;
    }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, j->out);
}

static void json_str(Json *j, const char *key, const char *s) {
    json_key(j, key);
    json_str_raw(j, s);
}

static void json_bool(Json *j, const char *key, bool b) {
    json_key(j, key);
    fputs(b ? "true" : "false", j->out);
}

static void json_null(Json *j, const char *key) {
    json_key(j, key);
    fputs("null", j->out);
}

static void json_cluster(Json *j, const IrGraph *g) {
    const ClusterCfg *c = &g->cluster;
    json_open(j, "cluster", '{');
    if (c->preset)
        json_str(j, "preset", c->preset);
    else
        json_null(j, "preset");
    json_int(j, "devices", c->devices);
    json_int(j, "devices_per_node", c->devices_per_node);
    json_num(j, "flops", c->flops);
    json_int(j, "memory_bytes", (int64_t)c->memory);
    json_num(j, "bandwidth", c->bandwidth);
    json_num(j, "latency", c->latency);
    json_num(j, "inter_node_bandwidth", c->inter_node_bandwidth);
    json_num(j, "inter_node_latency", c->inter_node_latency);
    json_num(j, "memory_bandwidth", c->memory_bandwidth);
    json_close(j, '}');
    json_open(j, "train", '{');
    json_int(j, "batch", g->train.batch);
    json_str(j, "optimizer", report_opt_name(g->train.opt));
    if (g->train.precision == PRECISION_BF16) { /* only when bf16: f32 reports stay as they were */
        json_str(j, "precision", "bf16");
        json_num(j, "gemm_flops",
                 g->cluster.flops_bf16 > 0 ? g->cluster.flops_bf16 : g->cluster.flops);
    }
    if (g->train.zero != 0) { /* train.zero set: the stage used (only then, so 0 adds nothing) */
        const Plan *p = report_plan(g);
        json_open_inline(j, "zero", '{');
        json_int(j, "stage", p->zero);
        json_bool(j, "auto", p->zero_auto);
        json_close(j, '}');
    }
    json_close(j, '}');
}

static void json_totals(Json *j, const char *key, const PlanTotals *t) {
    json_open(j, key, '{');
    json_num(j, "step_time", t->step_time);
    json_num(j, "compute", t->compute);
    json_num(j, "exposed_comm", t->exposed_comm);
    json_num(j, "bubble", t->bubble);
    json_num(j, "grad_sync_unhidden", t->grad_sync_unhidden);
    json_num(j, "grad_sync_hidden", t->grad_sync_hidden);
    if (t->grad_sync_slow > 0) json_num(j, "grad_sync_slow", t->grad_sync_slow);
    json_num(j, "optimizer", t->optimizer);
    json_int(j, "comm_bytes", t->comm_bytes);
    json_int(j, "mem_peak_bytes", t->mem_peak);
    json_bool(j, "fits", t->fits);
    json_close(j, '}');
}

static void json_loc(Json *j, const char *key, SrcLoc loc) {
    json_open_inline(j, key, '{');
    json_str(j, "file", loc.file);
    json_int(j, "line", loc.line);
    json_int(j, "col", loc.col);
    json_close(j, '}');
}

static void json_alts(Json *j, const IrNode *n, const PlanNode *pn) {
    json_open(j, "alternatives", '[');
    for (int s = 0; s < STRAT__COUNT; s++) {
        const PlanAlt *a = &pn->alt[s];
        bool ok = report_alt_shown(n, pn, (Strategy)s) && a->feasible;
        json_open_inline(j, NULL, '{');
        json_str(j, "strategy",
                 report_alt_shown(n, pn, (Strategy)s) ? plan_node_strategy_name(n->op, (Strategy)s)
                                                      : plan_strategy_name((Strategy)s));
        json_bool(j, "allowed", report_alt_shown(n, pn, (Strategy)s));
        json_bool(j, "feasible", ok);
        json_bool(j, "chosen", pn->strat == (Strategy)s);
        if (ok) {
            json_str(j, "in_layout", plan_layout_name(a->in_layout));
            json_str(j, "out_layout", plan_layout_name(a->out_layout));
            json_int(j, "comm_bytes", a->comm_bytes);
            json_int(j, "grad_bytes", a->grad_bytes);
            json_num(j, "time", a->time);
        }
        json_close(j, '}');
    }
    json_close(j, ']');
}

static void json_layer(Json *j, const IrGraph *g, int i) {
    const IrNode *n = IR_NODE(g, i);
    const PlanNode *pn = &report_plan(g)->nodes[i];
    const IrValue *ov = IR_VALUE(g, n->output);
    char why[512];
    json_open(j, NULL, '{');
    json_int(j, "index", i);
    json_str(j, "name", n->name);
    json_str(j, "op", ir_ops[n->op].name);
    json_loc(j, "source", n->loc);
    json_str(j, "dtype", ir_dtype_name(ov->dtype));
    json_open_inline(j, "shape", '[');
    for (int k = 0; k < ov->shape.rank; k++)
        json_int(j, NULL, ov->shape.d[k]);
    json_close(j, ']');
    json_int(j, "params", n->param_count);
    json_count(j, "flops_fwd", n->flops_fwd);
    json_count(j, "flops_bwd", n->flops_bwd);
    json_int(j, "stage", pn->stage);
    json_str(j, "strategy", plan_node_strategy_name(n->op, pn->strat));
    json_bool(j, "has_choice", report_has_choice(n));
    json_bool(j, "forced", pn->forced);
    json_open_inline(j, "in_layouts", '[');
    for (int k = 0; k < n->ninputs; k++)
        json_str(j, NULL, plan_layout_name(pn->in_layout[k]));
    json_close(j, ']');
    json_str(j, "out_layout", plan_layout_name(pn->out_layout));
    json_alts(j, n, pn);
    json_str(j, "reason", report_layer_reason(g, i, why, sizeof why));
    json_int(j, "mem_bytes", pn->mem_bytes);
    json_num(j, "fwd_time", pn->fwd_time);
    json_num(j, "bwd_time", pn->bwd_time);
    if (pn->recompute) json_bool(j, "recompute", true); /* only when recomputed */
    json_close(j, '}');
}

static void json_reshards(Json *j, const IrGraph *g) {
    const Plan *p = report_plan(g);
    json_open(j, "reshards", '[');
    for (int i = 0; i < p->nreshards; i++) {
        const PlanReshard *r = &p->reshards[i];
        json_open_inline(j, NULL, '{');
        json_str(j, "value", IR_VALUE(g, r->value)->name);
        json_str(j, "consumer", IR_NODE(g, r->to_node)->name);
        json_int(j, "consumer_index", r->to_node);
        json_str(j, "from", plan_layout_name(r->from));
        json_str(j, "to", plan_layout_name(r->to));
        json_str(j, "forward", cost_coll_name(r->fwd));
        json_str(j, "backward", cost_coll_name(r->bwd));
        json_str(j, "group", plan_group_name(r->group));
        json_int(j, "fwd_bytes", r->fwd_bytes);
        json_int(j, "bwd_bytes", r->bwd_bytes);
        json_int(j, "bytes_per_step", (r->fwd_bytes + r->bwd_bytes) * p->m);
        json_close(j, '}');
    }
    json_close(j, ']');
}

static void json_stages(Json *j, const IrGraph *g) {
    const Plan *p = report_plan(g);
    json_open(j, "stages", '[');
    for (int s = 0; s < p->S; s++) {
        const PlanStage *st = &p->stages[s];
        json_open(j, NULL, '{');
        json_int(j, "index", s);
        json_int(j, "first_layer", st->first_node);
        json_int(j, "last_layer", st->last_node);
        json_num(j, "fwd_time", st->fwd_time);
        json_num(j, "bwd_time", st->bwd_time);
        json_num(j, "comm_time", st->comm_time);
        json_num(j, "grad_sync_time", st->grad_sync_time);
        json_num(j, "grad_sync_hidden", st->grad_sync_hidden);
        if (st->grad_sync_slow > 0) json_num(j, "grad_sync_slow", st->grad_sync_slow);
        json_open_inline(j, "memory", '{');
        json_int(j, "total", st->mem_bytes);
        json_int(j, "params", st->mem_params);
        json_int(j, "grads", st->mem_grads);
        json_int(j, "optimizer", st->mem_optim);
        json_int(j, "activations", st->mem_acts);
        json_int(j, "buffers", st->mem_buffers);
        if (g->train.zero != 0) json_int(j, "zero_saved", st->zero_saved);
        if (g->train.precision == PRECISION_BF16) {
            json_int(j, "bf16_saved", st->bf16_saved);
            json_int(j, "internals", st->mem_internals);
        }
        json_close(j, '}');
        if (g->train.precision == PRECISION_BF16) json_str(j, "precision", "bf16");
        if (g->train.zero != 0) json_int(j, "zero", p->zero);
        if (st->recompute) { /* only on a stage that recomputes (docs/report.md) */
            json_open_inline(j, "recompute", '{');
            json_int(j, "layers", st->recompute);
            json_num(j, "compute_time", st->rc_compute);
            json_num(j, "comm_time", st->rc_comm);
            json_int(j, "comm_bytes", st->rc_bytes);
            json_int(j, "activations_saved", st->rc_saved);
            json_close(j, '}');
        }
        json_close(j, '}');
    }
    json_close(j, ']');
}

static void json_cuts(Json *j, const IrGraph *g) {
    const Plan *p = report_plan(g);
    json_open(j, "cuts", '[');
    for (int i = 0; i < p->ncuts; i++) {
        const PlanCut *c = &p->cuts[i];
        json_open_inline(j, NULL, '{');
        json_int(j, "after_stage", c->stage);
        json_str(j, "value", IR_VALUE(g, c->value)->name);
        json_str(j, "layout", plan_layout_name(c->layout));
        json_int(j, "bytes_per_microbatch", c->bytes);
        json_int(j, "bytes_per_step", report_cut_bytes_per_step(g, c));
        json_close(j, '}');
    }
    json_close(j, ']');
}

static void json_compare(Json *j, const IrGraph *g) {
    const Plan *p = report_plan(g);
    PureRef r[3];
    int n = report_pure_refs(g, r);
    json_open(j, "comparison", '[');
    for (int i = 0; i < n; i++) {
        char why[256];
        json_open(j, NULL, '{');
        json_str(j, "plan", r[i].key);
        json_open_inline(j, "mesh", '{');
        json_int(j, "S", r[i].S);
        json_int(j, "d", r[i].d);
        json_int(j, "t", r[i].t);
        json_close(j, '}');
        PureState st = report_pure_state(&r[i]);
        json_bool(j, "possible", st != PURE_IMPOSSIBLE);
        json_bool(j, "fits", st == PURE_OK);
        if (st != PURE_OK) json_str(j, "why", report_pure_why(g, &r[i], why, sizeof why));
        if (st != PURE_IMPOSSIBLE) json_int(j, "mem_peak_bytes", r[i].tot->mem_peak);
        if (r[i].valid) json_totals(j, "totals", r[i].tot);
        if (st == PURE_OK && p->totals.step_time > 0)
            json_num(j, "speedup", r[i].tot->step_time / p->totals.step_time);
        else
            json_null(j, "speedup");
        json_close(j, '}');
    }
    json_close(j, ']');
}

/* plan.mesh: present only when the mesh was pinned; `searched` is the search's own choice
 * (null when it found no plan that fits). */
static void json_pinned(Json *j, const IrGraph *g) {
    const Plan *p = report_plan(g);
    if (!p->pinned) return;
    json_open(j, "pinned", '{');
    if (!p->searched_valid) {
        json_null(j, "searched");
    } else {
        const PlanChoice *c = &p->searched;
        json_open(j, "searched", '{');
        json_open_inline(j, "mesh", '{');
        json_int(j, "S", c->S);
        json_int(j, "d", c->d);
        json_int(j, "t", c->t);
        json_close(j, '}');
        json_int(j, "microbatches", c->m);
        json_totals(j, "totals", &c->totals);
        json_close(j, '}');
    }
    json_close(j, '}');
}

static void json_plan(Json *j, const IrGraph *g) {
    const Plan *p = report_plan(g);
    json_open_inline(j, "mesh", '{');
    json_int(j, "S", p->S);
    json_int(j, "d", p->d);
    json_int(j, "t", p->t);
    if (p->tensor_nodes > 0) json_int(j, "tensor_nodes", p->tensor_nodes); /* crosses nodes */
    json_close(j, '}');
    json_int(j, "microbatches", p->m);
    json_totals(j, "totals", &p->totals);
    json_num(j, "bubble_fraction", (double)(p->S - 1) / (double)(p->m + p->S - 1));
    json_open(j, "layers", '[');
    for (int i = 0; i < IR_NNODES(g); i++)
        json_layer(j, g, i);
    json_close(j, ']');
    json_reshards(j, g);
    json_stages(j, g);
    json_cuts(j, g);
    json_compare(j, g);
    json_pinned(j, g);
}

void pass_report_json(const IrGraph *g, FILE *out) {
    Json j = {out, 0, true, 0};
    json_open(&j, NULL, '{');
    json_int(&j, "schema_version", 1);
    json_str(&j, "generator", "mpcc " MPCC_VERSION);
    json_open(&j, "model", '{');
    json_str(&j, "name", g->name);
    json_str(&j, "file", g->file);
    json_int(&j, "layers", IR_NNODES(g));
    json_int(&j, "params", report_total_params(g));
    json_close(&j, '}');
    json_cluster(&j, g);
    json_bool(&j, "planned", report_plan(g) != NULL);
    if (report_plan(g)) json_plan(&j, g);
    json_close(&j, '}');
    fputc('\n', out);
}
