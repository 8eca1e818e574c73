/*
 * text.c: the partition report for people (docs/report.md), and the plan-space table.
 *
 * The report is the product's face. A Megatron or Alpa user's complaint is that the plan
 * is a black box: which layer was split how, what each alternative would have cost, and
 * why. So the report reads only g->plan (filled by pass_plan) and the graph, and prints,
 * in order: a header with the mesh, the predicted step time split into compute, exposed
 * communication, pipeline bubble and unhidden gradient sync, and memory against capacity;
 * one row per layer with the bytes and time of every alternative, the choice and the
 * reason; the layout changes with their collective, group and bytes; per-stage times and
 * memory; the pipeline cuts; and the same totals for the pure data, pure tensor and pure
 * pipeline plans with the chosen plan's speed-up over each. A pure plan that is not an
 * option says why in words: the memory it would need, or the fact that rules it out (more
 * stages than layers, an annotation it cannot honour, a batch that does not split).
 *
 * Invariants. The output is a function of the graph and the plan only: no pointers, no
 * timestamps, no locale, no hash order. Quantities go through passes/units.c (decimal units,
 * three significant digits); past REPORT_COLLAPSE_LAYERS layers, runs of identical blocks are
 * collapsed (table.c).
 */
#include "report_internal.h"

#include <string.h>

/* ───────────────────────────── text report ───────────────────────────── */

static void text_header(const IrGraph *g, FILE *out) {
    const ClusterCfg *c = &g->cluster;
    char b[6][48];
    int64_t P = report_total_params(g);
    fprintf(out, "mpcc partition report (format 1)\n\n");
    fprintf(out, "model       %s (%s): %s, %s parameters\n", g->name, g->file,
            units_n(b[1], sizeof b[1], IR_NNODES(g), "layer"),
            units_count(b[0], sizeof b[0], (double)P, ""));
    fprintf(out, "cluster     %s, %lld per node, preset %s\n",
            units_n(b[0], sizeof b[0], (long long)c->devices, "device"),
            (long long)c->devices_per_node, c->preset ? c->preset : "(none)");
    fprintf(out, "device      %s/s, %s memory; intra-node %s/s + %s, inter-node %s/s + %s\n",
            units_count(b[0], sizeof b[0], c->flops, "FLOP"),
            units_bytes(b[1], sizeof b[1], (int64_t)c->memory),
            units_bytes(b[2], sizeof b[2], (int64_t)c->bandwidth),
            units_time(b[3], sizeof b[3], c->latency),
            units_bytes(b[4], sizeof b[4], (int64_t)c->inter_node_bandwidth),
            units_time(b[5], sizeof b[5], c->inter_node_latency));
    fprintf(out, "training    batch %lld, optimizer %s\n", (long long)g->train.batch,
            report_opt_name(g->train.opt));
}

/* train.precision = "bf16" (never under the default f32): what it stores in which type and the
 * GEMM rate it is priced at (docs/cost-model.md, "Mixed precision"). */
static void text_precision(const IrGraph *g, FILE *out) {
    const ClusterCfg *c = &g->cluster;
    char b[48];
    if (g->train.precision != PRECISION_BF16) return;
    fprintf(out,
            "precision   bf16 parameters, activations and messages; f32 gradient sums, master "
            "weights and optimizer state; GEMMs at %s/s\n",
            units_count(b, sizeof b, c->flops_bf16 > 0 ? c->flops_bf16 : c->flops, "FLOP"));
}

/* plan.mesh: the mesh was asked for; what the search would have chosen instead. */
static void text_pinned(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    const PlanChoice *c = &p->searched;
    char b[2][48];
    if (!p->pinned) return;
    if (!p->searched_valid) {
        fprintf(out, "pinned      by plan.mesh; the search finds no plan that fits\n");
        return;
    }
    fprintf(out,
            "pinned      by plan.mesh; the search chooses S×d×t = %d×%d×%d with %s: %s "
            "predicted, this plan takes %.2f× that\n",
            c->S, c->d, c->t, units_n(b[0], 48, c->m, "micro-batch"),
            units_time(b[1], 48, c->totals.step_time),
            c->totals.step_time > 0 ? p->totals.step_time / c->totals.step_time : 1.0);
}

/* train.zero set (never at the default 0): the ZeRO stage used, what it shards, what it saved. */
static void text_zero(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    static const char *const what[] = {"nothing sharded", "optimizer state sharded",
                                       "gradients and optimizer state sharded",
                                       "parameters, gradients and optimizer state sharded"};
    char b[48];
    if (g->train.zero == 0) return;
    int64_t most = 0;
    int at = 0;
    for (int s = 0; s < p->S; s++)
        if (p->stages[s].zero_saved > most) most = p->stages[s].zero_saved, at = s;
    /* "auto" tries 3 only where the trainer runs it (passes/search.c search_zero_auto_max) */
    bool to3 = !g->train.zero_auto_max2;
    fprintf(out, "zero        ZeRO-%d%s: %s over the data replicas", p->zero,
            !p->zero_auto ? ""
            : to3         ? " (auto: the fastest of 0, 1, 2, 3 that fits)"
                          : " (auto: the fastest of 0, 1, 2 that fits)",
            what[p->zero]);
    if (p->zero > 0)
        fprintf(out, "; saves %s per device on stage %d", units_bytes(b, 48, most), at);
    fprintf(out, "\n");
}

/* Splits that do not divide their dimension (a vocabulary over the tensor group): each rank
 * holds the rounded-up share and the last one's excess is padding; one line per weight. */
static void text_padded(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    for (int i = 0; p->t > 1 && i < IR_NNODES(g); i++) {
        const IrNode *n = IR_NODE(g, i);
        for (int k = 0; k < n->nparams; k++) {
            const IrParam *ip = IR_PARAM(g, n->first_param + k);
            ParamSplit sp = rules_param_split(n->op, p->nodes[i].strat, ip->role);
            if (sp.dim < 0 || ip->shape.rank < 2 || ip->shape.d[sp.dim] % p->t == 0) continue;
            int64_t w = ip->shape.d[sp.dim], part = (w + p->t - 1) / p->t;
            bool emb = n->op == OP_EMBEDDING;
            char pad[48];
            units_n(pad, sizeof pad, part * p->t - w, emb ? "padding row" : "padding column");
            fprintf(out,
                    "padded      %s: %lld %s over %d tensor ranks as %lld each (%lld: %s on the "
                    "last rank, %s)\n",
                    ip->name, (long long)w, emb ? "rows" : "classes", p->t, (long long)part,
                    (long long)(part * p->t), pad,
                    emb ? "never looked up" : "left out of the loss's softmax");
        }
    }
}

static void text_mesh(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    int64_t B = g->train.batch, per = (int64_t)p->d * p->m;
    char b[4][48];
    fprintf(out, "mesh        S=%s × d=%s × t=%s\n", units_n(b[0], 48, p->S, "stage"),
            units_n(b[1], 48, p->d, "data replica"), units_n(b[2], 48, p->t, "tensor rank"));
    if (p->tensor_nodes > 0) /* node-aware meshes: only when a tensor group crosses nodes */
        fprintf(out,
                "nodes       tensor group of %d spans %lld nodes of %lld: priced on the inter-node "
                "link\n",
                p->t, (long long)p->tensor_nodes, (long long)p->devices_per_node);
    if (per > 0 && B % per == 0)
        fprintf(out, "micro       %s of %s per replica\n", units_n(b[0], 48, p->m, "micro-batch"),
                units_n(b[1], 48, (long long)(B / per), "sample"));
    else
        fprintf(out, "micro       %s\n", units_n(b[0], 48, p->m, "micro-batch"));
    text_pinned(g, out);
    text_zero(g, out);
    text_precision(g, out);
    text_padded(g, out);
}

static void step_row(Table *t, const char *what, double v, double step, const char *note) {
    char b[2][48];
    table_add(t, "%s", what);
    table_add(t, "%s", units_time(b[0], sizeof b[0], v));
    table_add(t, "%s", units_pct(b[1], sizeof b[1], v, step));
    table_add(t, "%s", note);
}

/* How much K·T_max, the step's pipeline term, may exceed the schedule: with unequal stages the
 * critical path is nearer the first micro-batch through every stage and then the slowest
 * stage's other m − 1, Σ T_s + (m − 1)·T_max, which is S·T_max − Σ T_s less (docs/cost-model.md
 * §6). 0 for one stage. */
static double pipeline_slack(const Plan *p) {
    double sum = 0, mx = 0;
    for (int k = 0; k < p->S; k++) {
        double T = plan_stage_time(&p->stages[k]);
        sum += T;
        if (T > mx) mx = T;
    }
    return p->S > 1 ? (double)p->S * mx - sum : 0.0;
}

static void text_step(const IrGraph *g, FILE *out, Arena *a) {
    const Plan *p = report_plan(g);
    const PlanTotals *t = &p->totals;
    char b[5][64], note[2][200];
    /* hidden: the wait removed; the slowdown of the backward beside it is time but no wait */
    double st = t->step_time, all = t->grad_sync_hidden + t->grad_sync_unhidden - t->grad_sync_slow;
    fprintf(out, "step time   %s predicted\n", units_time(b[0], sizeof b[0], st));
    Table tb;
    table_init(&tb, a, "lrrl", NULL);
    step_row(&tb, "compute", t->compute, st, "");
    step_row(&tb, "exposed communication", t->exposed_comm, st, "");
    if (p->S > 1 && p->m == 1) /* placement without streaming is not pipelining: say so */
        snprintf(note[0], sizeof note[0],
                 "(S-1)/S = %d/%d: one micro-batch, the stages run in turn, not streamed", p->S - 1,
                 p->S);
    else
        snprintf(note[0], sizeof note[0], "(S-1)/(m+S-1) = %d/%d", p->S - 1, p->m + p->S - 1);
    double slack = pipeline_slack(p);
    if (slack > 0.1 * st) { /* the bound is loose: say by how much at most */
        size_t used = strlen(note[0]);
        snprintf(note[0] + used, sizeof note[0] - used, "; up to %s less: unequal stages",
                 units_time(b[4], sizeof b[4], slack));
    }
    step_row(&tb, "pipeline bubble", t->bubble, st, note[0]);
    if (all > 0)
        snprintf(note[1], sizeof note[1], "%s of %s hidden behind backward (%s)",
                 units_time(b[1], sizeof b[1], t->grad_sync_hidden),
                 units_time(b[2], sizeof b[2], all),
                 units_pct(b[3], sizeof b[3], t->grad_sync_hidden, all));
    else
        snprintf(note[1], sizeof note[1], "no gradient sync");
    if (all > 0 && t->grad_sync_slow > 0) {
        size_t used = strlen(note[1]);
        snprintf(note[1] + used, sizeof note[1] - used, ", backward slowed %s by it",
                 units_time(b[4], sizeof b[4], t->grad_sync_slow));
    }
    step_row(&tb, "gradient sync unhidden", t->grad_sync_unhidden, st, note[1]);
    if (t->optimizer > 0) step_row(&tb, "optimizer step", t->optimizer, st, "bytes / bandwidth");
    table_print(&tb, out);
}

static int fullest_stage(const Plan *p) {
    int s = 0;
    for (int i = 1; i < p->S; i++)
        if (p->stages[i].mem_bytes > p->stages[s].mem_bytes) s = i;
    return s;
}

static void text_memory(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    char b[3][48];
    double cap = g->cluster.memory;
    fprintf(out, "memory      %s per device of %s (%s), fullest on stage %d%s\n",
            units_bytes(b[0], 48, p->totals.mem_peak), units_bytes(b[1], 48, (int64_t)cap),
            units_pct(b[2], 48, (double)p->totals.mem_peak, cap), fullest_stage(p),
            p->totals.fits ? "" : "  DOES NOT FIT");
    fprintf(out, "traffic     %s per device per step (busiest device)\n",
            units_bytes(b[0], 48, p->totals.comm_bytes));
}

/* Activation recomputation, one line per stage that recomputes (none when no stage does): how
 * many layers, the forward time it adds per step, the activation memory it saves. */
static void text_recompute(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    static const char *const policy[] = {"auto", "none", "all"};
    for (int s = 0; s < p->S; s++) {
        const PlanStage *st = &p->stages[s];
        if (!st->recompute) continue;
        char b[3][48], traffic[96] = "";
        if (st->rc_bytes)
            snprintf(traffic, sizeof traffic, ", %s more tensor traffic",
                     units_bytes(b[2], 48, st->rc_bytes * p->m));
        fprintf(out,
                "recompute   stage %d: %d of %d layers (train.recompute = %s), +%s per step "
                "(forward run again%s), saves %s of activations\n",
                s, st->recompute, st->last_node - st->first_node + 1, policy[g->train.recompute],
                units_time(b[0], 48, p->m * (st->rc_compute + st->rc_comm)), traffic,
                units_bytes(b[1], 48, st->rc_saved));
    }
}

/* One alternative's cell: "*  2.00 MB  40.1 µs", or "n/a" when the op or shapes forbid. */
static void alt_cell(Table *t, const IrNode *n, const PlanNode *pn, Strategy s) {
    const PlanAlt *a = &pn->alt[s];
    if (!report_alt_shown(n, pn, s) || !a->feasible) {
        table_add(t, "%s", "n/a");
        return;
    }
    char b[32], tm[32];
    units_bytes(b, sizeof b, a->comm_bytes);
    units_time(tm, sizeof tm, a->time);
    char cell[96];
    size_t k = (size_t)snprintf(cell, sizeof cell, "%s", pn->strat == s ? "* " : "  ");
    size_t bw = table_text_width(b), tw = table_text_width(tm);
    for (size_t i = bw; i < 9 && k + 1 < sizeof cell; i++)
        cell[k++] = ' ';
    k += (size_t)snprintf(cell + k, sizeof cell - k, "%s ", b);
    for (size_t i = tw; i < 9 && k + 1 < sizeof cell; i++)
        cell[k++] = ' ';
    snprintf(cell + k, sizeof cell - k, "%s", tm);
    table_add(t, "%s", cell);
}

/* A layer's facts: where it is, what it computes, its stage and layouts. */
static void text_layer_row(Table *t, const IrGraph *g, int i) {
    const IrNode *n = IR_NODE(g, i);
    const PlanNode *pn = &report_plan(g)->nodes[i];
    const IrValue *ov = IR_VALUE(g, n->output);
    char b[2][160];
    table_add(t, "%d", i);
    table_add(t, "%s", n->name);
    table_add(t, "%d:%d", n->loc.line, n->loc.col);
    table_add(t, "%s", ir_ops[n->op].name);
    table_add(t, "%s", ir_shape_str(b[0], sizeof b[0], ov->dtype, &ov->shape));
    table_add(t, "%s", n->param_count ? units_count(b[0], 48, (double)n->param_count, "") : "-");
    table_add(t, "%s", units_count(b[0], 48, report_node_flops(n), ""));
    table_add(t, "%d", pn->stage);
    size_t k = 0;
    for (int j = 0; j < n->ninputs; j++)
        k += (size_t)snprintf(b[1] + k, sizeof b[1] - k, "%s%s", j ? "," : "",
                              plan_layout_name(pn->in_layout[j]));
    table_add(t, "%s→%s", b[1], plan_layout_name(pn->out_layout));
}

/* A layer's choice: every alternative's cost, the choice, then the reason on a line below. */
static void text_choice_row(Table *t, const IrGraph *g, int i) {
    const IrNode *n = IR_NODE(g, i);
    const PlanNode *pn = &report_plan(g)->nodes[i];
    char why[512];
    table_add(t, "%d", i);
    table_add(t, "%s", n->name);
    for (int s = 0; s < STRAT__COUNT; s++)
        alt_cell(t, n, pn, (Strategy)s);
    table_add(t, "%s%s", report_chosen_name(n, pn), pn->forced ? " (forced)" : "");
    table_note(t, arena_printf(t->a, "      why: %s", report_layer_reason(g, i, why, sizeof why)));
}

/* Two layers are identical when everything in their row but name, position and stage is
 * (compared exactly, not as printed). */

static bool alt_same(const PlanAlt *a, const PlanAlt *b) {
    return a->feasible == b->feasible && a->in_layout == b->in_layout &&
           a->out_layout == b->out_layout && a->comm_bytes == b->comm_bytes &&
           a->grad_bytes == b->grad_bytes && a->time == b->time;
}

static bool layer_same(const IrGraph *g, int a, int b) {
    const IrNode *x = IR_NODE(g, a), *y = IR_NODE(g, b);
    const PlanNode *p = &report_plan(g)->nodes[a], *q = &report_plan(g)->nodes[b];
    const Shape *sx = &IR_VALUE(g, x->output)->shape, *sy = &IR_VALUE(g, y->output)->shape;
    if (x->op != y->op || x->param_count != y->param_count ||
        report_node_flops(x) != report_node_flops(y) || sx->rank != sy->rank ||
        memcmp(sx->d, sy->d, sizeof sx->d[0] * (size_t)sx->rank) != 0)
        return false;
    if (p->strat != q->strat || p->forced != q->forced || p->out_layout != q->out_layout ||
        memcmp(p->in_layout, q->in_layout, sizeof p->in_layout) != 0)
        return false;
    for (int s = 0; s < STRAT__COUNT; s++)
        if (!alt_same(&p->alt[s], &q->alt[s])) return false;
    return (!p->reason && !q->reason) || (p->reason && q->reason && !strcmp(p->reason, q->reason));
}

static bool layer_same_fn(const void *ctx, int a, int b) { return layer_same(ctx, a, b); }

static void layers_note(Table *t, Table *c, const IrGraph *g, int first, int period, int reps) {
    int from = first + period, to = first + reps * period - 1;
    int smin = report_plan(g)->nodes[from].stage, smax = report_plan(g)->nodes[to].stage;
    char stages[48], note[512];
    if (smin == smax)
        snprintf(stages, sizeof stages, "stage %d", smin);
    else
        snprintf(stages, sizeof stages, "stages %d-%d", smin, smax);
    snprintf(note, sizeof note,
             "... layers %d-%d (%s .. %s): %d more repeats of layers %d-%d with the same "
             "shapes, costs and choices, on %s",
             from, to, IR_NODE(g, from)->name, IR_NODE(g, to)->name, reps - 1, first,
             first + period - 1, stages);
    table_note(t, note);
    table_note(c, note);
}

/* Two tables, so that each line fits REPORT_WIDTH: the layers (what each computes, where,
 * in which layouts) and their choices (each alternative's cost, the choice, the reason). */
static void text_layers(const IrGraph *g, FILE *out, Arena *a) {
    static const char *const lh[] = {"#",      "layer",     "at",    "op",    "output",
                                     "params", "FLOPs f+b", "stage", "layout"};
    static const char *const ch[] = {"#", "layer", "data", "tensor(col)", "tensor(row)", "choice"};
    Table t, c;
    table_init(&t, a, "rllllrrrl", lh);
    table_init(&c, a, "rlllll", ch);
    bool collapse = IR_NNODES(g) > REPORT_COLLAPSE_LAYERS;
    for (int i = 0; i < IR_NNODES(g);) {
        int period = 1,
            reps = collapse ? table_repeat_run(layer_same_fn, g, IR_NNODES(g), i, &period) : 1;
        for (int k = 0; k < period; k++) {
            text_layer_row(&t, g, i + k);
            text_choice_row(&c, g, i + k);
        }
        if (reps > 1) layers_note(&t, &c, g, i, period, reps);
        i += period * reps;
    }
    fprintf(out, "\nlayers (FLOPs of forward and backward per step; layout: inputs→output)\n");
    table_print(&t, out);
    fprintf(out, "\nchoices (each alternative: bytes moved per device per step, time per step; "
                 "* = chosen)\n");
    table_print(&c, out);
}

/* Prints `t`, collapsed when the model is long (see REPORT_COLLAPSE_LAYERS). */
static void table_print_long(const IrGraph *g, const Table *t, unsigned ignore, FILE *out) {
    if (IR_NNODES(g) <= REPORT_COLLAPSE_LAYERS) {
        table_print(t, out);
        return;
    }
    Table c;
    table_collapse(&c, t, ignore);
    table_print(&c, out);
}

static void text_reshards(const IrGraph *g, FILE *out, Arena *a) {
    const Plan *p = report_plan(g);
    fprintf(out, "\nlayout changes (bytes per device per micro-batch)\n");
    if (p->nreshards == 0) {
        fprintf(out, "  none: every layer reads its inputs in the layout they were made in\n");
        return;
    }
    static const char *const head[] = {"value",    "into",      "layout", "forward", "fwd bytes",
                                       "backward", "bwd bytes", "group",  "per step"};
    Table t;
    table_init(&t, a, "llllrlrlr", head);
    for (int i = 0; i < p->nreshards; i++) {
        const PlanReshard *r = &p->reshards[i];
        char b[3][48];
        table_add(&t, "%s", IR_VALUE(g, r->value)->name);
        table_add(&t, "%s", IR_NODE(g, r->to_node)->name);
        table_add(&t, "%s→%s", plan_layout_name(r->from), plan_layout_name(r->to));
        table_add(&t, "%s", cost_coll_name(r->fwd));
        table_add(&t, "%s", units_bytes(b[0], 48, r->fwd_bytes));
        table_add(&t, "%s", r->bwd == COLL_NONE ? "-" : cost_coll_name(r->bwd));
        table_add(&t, "%s", r->bwd == COLL_NONE ? "-" : units_bytes(b[1], 48, r->bwd_bytes));
        table_add(&t, "%s", plan_group_name(r->group));
        table_add(&t, "%s", units_bytes(b[2], 48, (r->fwd_bytes + r->bwd_bytes) * p->m));
    }
    table_print_long(g, &t, 0x3u, out); /* value, consumer */
}

static void stage_time_row(Table *t, const IrGraph *g, int s) {
    const Plan *p = report_plan(g);
    const PlanStage *st = &p->stages[s];
    const char *first = IR_NODE(g, st->first_node)->name, *last = IR_NODE(g, st->last_node)->name;
    char b[6][48];
    table_add(t, "%d", s);
    if (st->first_node == st->last_node) {
        table_add(t, "%d", st->first_node);
        table_add(t, "%s", first);
    } else {
        table_add(t, "%d-%d", st->first_node, st->last_node);
        table_add(t, "%s .. %s", first, last);
    }
    table_add(t, "%s", units_time(b[0], 48, st->fwd_time));
    table_add(t, "%s", units_time(b[1], 48, st->bwd_time));
    table_add(t, "%s", units_time(b[2], 48, st->comm_time));
    table_add(t, "%s", units_time(b[3], 48, (st->fwd_time + st->bwd_time + st->comm_time) * p->m));
    table_add(t, "%s", units_time(b[4], 48, st->grad_sync_time));
    table_add(t, "%s", units_time(b[5], 48, st->grad_sync_hidden));
}

static void stage_mem_row(Table *t, const PlanStage *st, int s) {
    char b[6][48];
    table_add(t, "%d", s);
    table_add(t, "%s", units_bytes(b[0], 48, st->mem_bytes));
    table_add(t, "%s", units_bytes(b[1], 48, st->mem_params));
    table_add(t, "%s", units_bytes(b[2], 48, st->mem_grads));
    table_add(t, "%s", units_bytes(b[3], 48, st->mem_optim));
    table_add(t, "%s", units_bytes(b[4], 48, st->mem_acts));
    table_add(t, "%s", units_bytes(b[5], 48, st->mem_buffers));
}

/* One stage's precision, recomputed layers and ZeRO stage, with the memory each saves per
 * device ("-": the feature is off on that stage). */
static void stage_saved_row(Table *t, const IrGraph *g, int s) {
    const Plan *p = report_plan(g);
    const PlanStage *st = &p->stages[s];
    bool bf = g->train.precision == PRECISION_BF16;
    char b[3][48];
    table_add(t, "%d", s);
    table_add(t, "%s", bf ? "bf16" : "f32");
    if (st->recompute)
        table_add(t, "%d of %d layers", st->recompute, st->last_node - st->first_node + 1);
    else
        table_add(t, "none");
    table_add(t, "%d", p->zero);
    table_add(t, "%s", bf ? units_bytes(b[0], 48, st->bf16_saved) : "-");
    table_add(t, "%s", st->recompute ? units_bytes(b[1], 48, st->rc_saved) : "-");
    table_add(t, "%s", p->zero ? units_bytes(b[2], 48, st->zero_saved) : "-");
}

/* Per stage, what bf16, recomputation and ZeRO do and save; only when one of them is on. */
static void text_savings(const IrGraph *g, FILE *out, Arena *a) {
    const Plan *p = report_plan(g);
    static const char *const h[] = {"stage",      "precision",       "recomputed", "ZeRO",
                                    "bf16 saves", "recompute saves", "ZeRO saves"};
    if (!report_savings_shown(g)) return;
    Table t;
    table_init(&t, a, "rllrrrr", h);
    for (int s = 0; s < p->S; s++)
        stage_saved_row(&t, g, s);
    fprintf(out, "\nmemory saved per device by stage (precision, recomputation, ZeRO)\n");
    table_print_long(g, &t, 0x1u, out); /* stage */
}

static void text_stages(const IrGraph *g, FILE *out, Arena *a) {
    const Plan *p = report_plan(g);
    static const char *const th[] = {"stage", "layers",   "first .. last", "fwd",   "bwd",
                                     "comm",  "per step", "grad sync",     "hidden"};
    static const char *const mh[] = {"stage",     "total",       "params", "grads",
                                     "optimizer", "activations", "buffers"};
    Table t, m;
    table_init(&t, a, "rrlrrrrrr", th);
    table_init(&m, a, "rrrrrrr", mh);
    for (int s = 0; s < p->S; s++) {
        stage_time_row(&t, g, s);
        stage_mem_row(&m, &p->stages[s], s);
    }
    fprintf(out, "\nstages (fwd, bwd, comm per micro-batch; per step = m × their sum)\n");
    table_print_long(g, &t, 0x7u, out); /* stage, range, names */
    fprintf(out, "\nmemory per device by stage\n");
    table_print_long(g, &m, 0x1u, out); /* stage */
    text_savings(g, out, a);
}

static void text_cuts(const IrGraph *g, FILE *out, Arena *a) {
    const Plan *p = report_plan(g);
    fprintf(out, "\npipeline cuts (send/recv between neighbouring stages)\n");
    if (p->ncuts == 0) {
        fprintf(out, "  none: one stage\n");
        return;
    }
    static const char *const head[] = {"cut", "value", "layout", "per micro-batch",
                                       "per step (fwd+bwd)"};
    Table t;
    table_init(&t, a, "lllrr", head);
    for (int i = 0; i < p->ncuts; i++) {
        const PlanCut *c = &p->cuts[i];
        char b[2][48];
        table_add(&t, "%d→%d", c->stage, c->stage + 1);
        table_add(&t, "%s", IR_VALUE(g, c->value)->name);
        table_add(&t, "%s", plan_layout_name(c->layout));
        table_add(&t, "%s", units_bytes(b[0], 48, c->bytes));
        table_add(&t, "%s", units_bytes(b[1], 48, report_cut_bytes_per_step(g, c)));
    }
    table_print_long(g, &t, 0x3u, out); /* cut, value */
}

static void compare_row(Table *t, const IrGraph *g, const PureRef *r) {
    const Plan *p = report_plan(g);
    char b[3][160];
    PureState st = report_pure_state(r);
    table_add(t, "%s", r->name);
    table_add(t, "%lld×%lld×%lld", (long long)r->S, (long long)r->d, (long long)r->t);
    table_add(t, "%s", r->valid ? units_time(b[0], 48, r->tot->step_time) : "-");
    table_add(t, "%s", st != PURE_IMPOSSIBLE ? units_bytes(b[1], 48, r->tot->mem_peak) : "-");
    if (st == PURE_OK && p->totals.step_time > 0)
        table_add(t, "%.2f×", r->tot->step_time / p->totals.step_time);
    else if (st == PURE_OK)
        table_add(t, "-");
    else
        table_add(t, "%s: %s", st == PURE_TOO_BIG ? "does not fit" : "not possible",
                  report_pure_why(g, r, b[2], sizeof b[2]));
}

static void text_compare(const IrGraph *g, FILE *out, Arena *a) {
    const Plan *p = report_plan(g);
    static const char *const head[] = {"plan", "S×d×t", "step time", "memory per device",
                                       "chosen plan's speed-up"};
    Table t;
    table_init(&t, a, "lrrrl", head);
    char b[2][48];
    table_add(&t, p->pinned ? "pinned" : "chosen");
    table_add(&t, "%d×%d×%d", p->S, p->d, p->t);
    table_add(&t, "%s", units_time(b[0], 48, p->totals.step_time));
    table_add(&t, "%s", units_bytes(b[1], 48, p->totals.mem_peak));
    table_add(&t, "1.00×");
    if (p->pinned && p->searched_valid) { /* what the search chooses without plan.mesh */
        const PlanChoice *c = &p->searched;
        table_add(&t, "searched");
        table_add(&t, "%d×%d×%d", c->S, c->d, c->t);
        table_add(&t, "%s", units_time(b[0], 48, c->totals.step_time));
        table_add(&t, "%s", units_bytes(b[1], 48, c->totals.mem_peak));
        table_add(&t, "%.2f×",
                  p->totals.step_time > 0 ? c->totals.step_time / p->totals.step_time : 1.0);
    }
    PureRef r[3];
    int n = report_pure_refs(g, r);
    for (int i = 0; i < n; i++)
        compare_row(&t, g, &r[i]);
    fprintf(out, "\ncompared with pure strategies (same cluster, same batch)\n");
    table_print(&t, out);
}

void pass_report_text(const IrGraph *g, FILE *out) {
    text_header(g, out);
    if (!report_plan(g)) {
        fprintf(out, "\nno plan: the planner did not run\n");
        return;
    }
    Arena a = {0};
    text_mesh(g, out);
    text_step(g, out, &a);
    text_memory(g, out);
    text_recompute(g, out);
    text_layers(g, out, &a);
    text_reshards(g, out, &a);
    text_stages(g, out, &a);
    text_cuts(g, out, &a);
    text_compare(g, out, &a);
    arena_free(&a);
}

void pass_report_summary(const IrGraph *g, FILE *out) {
    const Plan *p = report_plan(g);
    char b[6][48];
    if (!p) {
        fprintf(out, "mpcc plan: %s (%s): no plan\n", g->name, g->file);
        return;
    }
    const PlanTotals *t = &p->totals;
    fprintf(out, "mpcc plan: %s (%s) on %s: mesh S=%d × d=%d × t=%d, %s%s\n", g->name, g->file,
            units_n(b[0], 48, (long long)g->cluster.devices, "device"), p->S, p->d, p->t,
            units_n(b[1], 48, p->m, "micro-batch"), p->pinned ? " (pinned by plan.mesh)" : "");
    fprintf(out,
            "  predicted step %s: compute %s, exposed comm %s, bubble %s, grad sync %s, "
            "optimizer %s\n",
            units_time(b[0], 48, t->step_time), units_time(b[1], 48, t->compute),
            units_time(b[2], 48, t->exposed_comm), units_time(b[3], 48, t->bubble),
            units_time(b[4], 48, t->grad_sync_unhidden), units_time(b[5], 48, t->optimizer));
    fprintf(out, "  memory %s per device of %s\n", units_bytes(b[0], 48, t->mem_peak),
            units_bytes(b[1], 48, (int64_t)g->cluster.memory));
}

/* ───────────────────────────── the plan space ───────────────────────────── */

/* mpcc --plan-space K: the k fastest (mesh, m) choices, one row each, in the report's units. */
void plan_space_print(const IrGraph *g, const PlanChoice *c, int n, FILE *out) {
    static const char *const head[] = {"rank",      "S×d×t",   "m",
                                       "step time", "vs best", "memory per device"};
    char b[2][48];
    Arena a = {0};
    Table t;
    table_init(&t, &a, "rrrrrr", head);
    for (int i = 0; i < n; i++) {
        table_add(&t, "%d", i + 1);
        table_add(&t, "%d×%d×%d", c[i].S, c[i].d, c[i].t);
        table_add(&t, "%d", c[i].m);
        table_add(&t, "%s", units_time(b[0], 48, c[i].totals.step_time));
        table_add(&t, "%.2f×",
                  c[0].totals.step_time > 0 ? c[i].totals.step_time / c[0].totals.step_time : 1.0);
        table_add(&t, "%s", units_bytes(b[1], 48, c[i].totals.mem_peak));
    }
    if (n == 1)
        fprintf(out, "plan space of %s (%s) on %s: the fastest mesh S×d×t and micro-batch count\n",
                g->name, g->file, units_n(b[0], 48, (long long)g->cluster.devices, "device"));
    else
        fprintf(out,
                "plan space of %s (%s) on %s: the %d fastest meshes S×d×t and micro-batch counts\n",
                g->name, g->file, units_n(b[0], 48, (long long)g->cluster.devices, "device"), n);
    table_print(&t, out);
    arena_free(&a);
}
