/*
 * report.c: the partition report — the plan the search chose, written for people (text)
 * and for programs (JSON). docs/report.md explains every line; docs/report.schema.json is
 * the JSON's contract.
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
 * Long models stay readable: past REPORT_COLLAPSE_LAYERS layers, a run of identical blocks
 * is printed once and then as one line (layers compared exactly, other tables as printed);
 * the JSON never collapses anything.
 *
 * Invariants. The output is a function of the graph and the plan only: no pointers, no
 * timestamps, no locale, no hash order, and every float goes through one formatter
 * (three significant digits in text, the shortest string that reads back to the same
 * double in JSON). Text uses decimal units (1 KB = 1000 bytes, as the cost model quotes
 * them) and pads columns by display width, so "µs" does not skew a table. JSON keeps every
 * number exact: bytes, FLOPs and counts as integers, times in seconds. Files are written
 * to a temporary name beside the target and renamed, so a failed write never leaves a
 * half-written report.
 *
 * pass_report itself checks the plan's shape before anything is printed (stages cover
 * every layer once, S·d·t = devices, the chosen plan is not predicted slower than a pure
 * plan that fits): a failure there is the search's bug, reported as an internal error.
 */
#include "passes.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ───────────────────────────── human units ───────────────────────────── */

/* Three significant digits of v (v ≥ 0) followed by a unit. */
static void fmt_sig3(char *buf, size_t n, double v, const char *unit) {
    if (v >= 99.95)
        snprintf(buf, n, "%.0f %s", v, unit);
    else if (v >= 9.995)
        snprintf(buf, n, "%.1f %s", v, unit);
    else
        snprintf(buf, n, "%.2f %s", v, unit);
}

/* Scales v by 1000 until it is below 1000 and picks the matching prefix. */
static void fmt_scaled(char *buf, size_t n, double v, const char *const *units, int nunits) {
    double a = fabs(v);
    int u = 0;
    while (a >= 999.5 && u + 1 < nunits) {
        a /= 1000.0;
        u++;
    }
    if (v < 0 && n > 1) {
        *buf++ = '-';
        n--;
    }
    fmt_sig3(buf, n, a, units[u]);
}

static const char *fmt_bytes(char *buf, size_t n, int64_t b) {
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
    if (b > -1000 && b < 1000)
        snprintf(buf, n, "%lld B", (long long)b);
    else
        fmt_scaled(buf, n, (double)b, units, 7);
    return buf;
}

static const char *fmt_time(char *buf, size_t n, double s) {
    if (!isfinite(s))
        snprintf(buf, n, "%s", "inf");
    else if (s == 0)
        snprintf(buf, n, "0 s");
    else if (s < 1e-6)
        fmt_sig3(buf, n, s * 1e9, "ns");
    else if (s < 1e-3)
        fmt_sig3(buf, n, s * 1e6, "\xc2\xb5s");
    else if (s < 1)
        fmt_sig3(buf, n, s * 1e3, "ms");
    else
        fmt_sig3(buf, n, s, "s");
    return buf;
}

/* Counts (parameters, FLOPs): 3.21 M, 12.9 G. */
static const char *fmt_count(char *buf, size_t n, double c, const char *unit) {
    static const char *const p[] = {"", "K", "M", "G", "T", "P", "E"};
    if (c < 1000) {
        snprintf(buf, n, "%.0f%s%s", c, unit[0] ? " " : "", unit);
        return buf;
    }
    char u[7][16];
    const char *units[7];
    for (int i = 0; i < 7; i++) {
        snprintf(u[i], sizeof u[i], "%s%s", p[i], unit);
        units[i] = u[i];
    }
    fmt_scaled(buf, n, c, units, 7);
    return buf;
}

static const char *fmt_pct(char *buf, size_t n, double part, double whole) {
    snprintf(buf, n, "%.1f%%", whole > 0 ? 100.0 * part / whole : 0.0);
    return buf;
}

/* ───────────────────────────── aligned tables ───────────────────────────── */

/* Long models (more than REPORT_COLLAPSE_LAYERS layers): a run of at least
 * REPORT_MIN_REPEATS identical blocks of up to REPORT_MAX_PERIOD rows is shown once, then
 * as one line for the rest. The JSON always lists everything. */
#define REPORT_COLLAPSE_LAYERS 100
#define REPORT_MIN_REPEATS 3
#define REPORT_MAX_PERIOD 64

/* Display width of UTF-8 text: one column per code point (the report uses only
 * single-width characters such as µ, ×, → besides ASCII). */
static size_t text_width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

static void put_pad(FILE *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        fputc(' ', out);
}

/* A table of strings printed with aligned columns. `align` has one letter per column:
 * 'l' left, 'r' right. Cells live in the table's arena. */
#define TABLE_MAX_COLS 16
typedef struct Table {
    Arena *a;
    int ncols;
    const char *head[TABLE_MAX_COLS];
    const char *align;
    Vec cells; /* const char *, row-major */
} Table;

static void table_init(Table *t, Arena *a, const char *align, const char *const *head) {
    memset(t, 0, sizeof *t);
    t->a = a;
    t->align = align;
    t->ncols = (int)strlen(align);
    for (int i = 0; i < t->ncols; i++)
        t->head[i] = head ? head[i] : NULL;
    t->cells.item = sizeof(const char *);
}

static void table_add(Table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void table_add(Table *t, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    *(const char **)vec_push(t->a, &t->cells) = arena_strdup(t->a, buf);
}

static const char *table_cell(const Table *t, size_t row, int col) {
    if (row == 0) return t->head[col];
    return VEC_AT(t->cells, const char *, (row - 1) * (size_t)t->ncols + (size_t)col);
}

/* A row that is one line of text across the table (a collapsed run of layers): its first
 * cell holds the text, the others are NULL. */
static void table_note(Table *t, const char *text) {
    *(const char **)vec_push(t->a, &t->cells) = arena_strdup(t->a, text);
    for (int c = 1; c < t->ncols; c++)
        *(const char **)vec_push(t->a, &t->cells) = NULL;
}

static bool table_is_note(const Table *t, size_t row) {
    return row > 0 && t->ncols > 1 && table_cell(t, row, 1) == NULL;
}

static void table_print_row(const Table *t, const size_t *w, size_t r, FILE *out) {
    int end = t->ncols; /* trailing empty cells print nothing */
    while (end > 1 && !table_cell(t, r, end - 1)[0])
        end--;
    fputs("  ", out);
    for (int c = 0; c < end; c++) {
        const char *s = table_cell(t, r, c);
        size_t pad = w[c] - text_width(s);
        bool last = c + 1 == end;
        if (c) fputs("  ", out);
        if (t->align[c] == 'r') put_pad(out, pad);
        fputs(s, out);
        if (t->align[c] != 'r' && !last) put_pad(out, pad);
    }
    fputc('\n', out);
}

/* How many times the block of `period` items starting at `i` repeats back to back, for the
 * shortest period that repeats at least REPORT_MIN_REPEATS times among n items (1 when
 * none does); same(ctx, a, b) says whether items a and b look alike. */
typedef bool (*SameFn)(const void *ctx, int a, int b);

static int repeat_run(SameFn same_fn, const void *ctx, int n, int i, int *period) {
    for (int p = 1; p <= REPORT_MAX_PERIOD && i + REPORT_MIN_REPEATS * p <= n; p++) {
        int reps = 1;
        for (bool same = true; same && i + (reps + 1) * p <= n; reps += same) {
            for (int k = 0; k < p && same; k++)
                same = same_fn(ctx, i + k, i + reps * p + k);
        }
        if (reps >= REPORT_MIN_REPEATS) {
            *period = p;
            return reps;
        }
    }
    return 1;
}

/* Rows compared for collapsing: every column but those in `ignore` (a bit per column). */
typedef struct RowCmp {
    const Table *t;
    unsigned ignore;
} RowCmp;

static bool row_same_fn(const void *ctx, int a, int b) {
    const RowCmp *rc = ctx;
    for (int c = 0; c < rc->t->ncols; c++) {
        if (rc->ignore & (1u << c)) continue;
        if (strcmp(table_cell(rc->t, (size_t)a + 1, c), table_cell(rc->t, (size_t)b + 1, c)) != 0)
            return false;
    }
    return true;
}

static void table_copy_row(Table *dst, const Table *src, int row) {
    for (int c = 0; c < src->ncols; c++)
        *(const char **)vec_push(dst->a, &dst->cells) = table_cell(src, (size_t)row + 1, c);
}

/* `t` with runs of rows that repeat (as printed, ignoring the identity columns in `ignore`)
 * shown once and then as one line naming the first column of the rows it stands for. */
static void table_collapse(Table *out, const Table *t, unsigned ignore) {
    table_init(out, t->a, t->align, t->head);
    int n = (int)(t->cells.len / (size_t)t->ncols);
    RowCmp rc = {t, ignore};
    for (int i = 0; i < n;) {
        int period = 1, reps = repeat_run(row_same_fn, &rc, n, i, &period);
        for (int k = 0; k < period; k++)
            table_copy_row(out, t, i + k);
        if (reps > 1) {
            char note[512];
            snprintf(note, sizeof note, "... %s .. %s: %d more repeats of the %d row%s above",
                     table_cell(t, (size_t)(i + period) + 1, 0),
                     table_cell(t, (size_t)(i + reps * period), 0), reps - 1, period,
                     period == 1 ? "" : "s");
            table_note(out, note);
        }
        i += period * reps;
    }
}

/* Prints the header and every row, indented two spaces, columns two spaces apart; the
 * last column is never padded, so no line ends in spaces. */
static void table_print(const Table *t, FILE *out) {
    size_t rows = 1 + t->cells.len / (size_t)t->ncols;
    size_t w[TABLE_MAX_COLS] = {0};
    size_t r0 = t->head[0] ? 0 : 1; /* a NULL first heading: no header row */
    for (size_t r = r0; r < rows; r++)
        for (int c = 0; c < t->ncols && !table_is_note(t, r); c++) {
            size_t cw = text_width(table_cell(t, r, c));
            if (cw > w[c]) w[c] = cw;
        }
    for (size_t r = r0; r < rows; r++) {
        if (table_is_note(t, r))
            fprintf(out, "  %s\n", table_cell(t, r, 0));
        else
            table_print_row(t, w, r, out);
    }
}

/* ───────────────────────────── facts derived from the plan ───────────────────────────── */

static const Plan *plan_of(const IrGraph *g) { return g->plan; }

static int64_t node_flops(const IrNode *n) { return n->flops_fwd + n->flops_bwd; }

static int64_t total_params(const IrGraph *g) {
    int64_t p = 0;
    for (int i = 0; i < IR_NNODES(g); i++)
        p += IR_NODE(g, i)->param_count;
    return p;
}

/* The strategy is a real choice only for ops that allow more than one. */
static bool has_choice(const IrNode *n) {
    unsigned s = ir_ops[n->op].strats;
    return (s & (s - 1)) != 0;
}

static bool strat_allowed(const IrNode *n, Strategy s) {
    return (ir_ops[n->op].strats & (1u << s)) != 0;
}

/* Gradients of activations travel back across a cut; inputs and labels need none. */
static bool value_needs_grad(const IrGraph *g, int v) { return IR_VALUE(g, v)->kind == VAL_ACT; }

static int64_t cut_bytes_per_step(const IrGraph *g, const PlanCut *c) {
    int dirs = value_needs_grad(g, c->value) ? 2 : 1;
    return c->bytes * plan_of(g)->m * dirs;
}

static const char *opt_name(OptKind k) {
    switch (k) {
    case OPT_SGD: return "sgd";
    case OPT_ADAM: return "adam";
    case OPT_ADAMW: return "adamw";
    }
    return "?";
}

/* The reason for a layer's choice: the planner's sentence when it wrote one, else one
 * composed from the alternatives it weighed (chosen vs. the cheapest other). */
static const char *layer_reason(const IrGraph *g, int i, char *buf, size_t n) {
    const IrNode *nd = IR_NODE(g, i);
    const PlanNode *pn = &plan_of(g)->nodes[i];
    if (pn->reason && pn->reason[0]) return pn->reason;
    if (pn->forced) {
        snprintf(buf, n, "forced by @%s at %d:%d",
                 pn->strat == STRAT_DATA  ? "data"
                 : pn->strat == STRAT_COL ? "tensor(col)"
                                          : "tensor(row)",
                 nd->annot.strat_loc.line, nd->annot.strat_loc.col);
        return buf;
    }
    if (!has_choice(nd)) {
        snprintf(buf, n, "follows its input's layout (%s)", plan_layout_name(pn->out_layout));
        return buf;
    }
    int best = -1;
    for (int s = 0; s < STRAT__COUNT; s++)
        if (s != (int)pn->strat && pn->alt[s].feasible &&
            (best < 0 || pn->alt[s].time < pn->alt[best].time))
            best = s;
    const PlanAlt *c = &pn->alt[pn->strat];
    char b1[32], b2[32], t1[32], t2[32];
    if (best < 0) {
        snprintf(buf, n, "the only feasible alternative");
        return buf;
    }
    const PlanAlt *o = &pn->alt[best];
    snprintf(buf, n, "%s: moves %s (%s) instead of %s (%s) for %s", plan_strategy_name(pn->strat),
             fmt_bytes(b1, sizeof b1, c->comm_bytes), fmt_time(t1, sizeof t1, c->time),
             fmt_bytes(b2, sizeof b2, o->comm_bytes), fmt_time(t2, sizeof t2, o->time),
             plan_strategy_name((Strategy)best));
    return buf;
}

/* A pure reference plan: its name, mesh, and whether the search could build it. */
typedef struct PureRef {
    const char *name, *key;
    int64_t S, d, t;
    const PlanTotals *tot;
    bool valid;
} PureRef;

static int pure_refs(const IrGraph *g, PureRef out[3]) {
    const Plan *p = plan_of(g);
    int64_t D = g->cluster.devices;
    out[0] = (PureRef){"pure data", "data", 1, D, 1, &p->pure_data, p->pure_data_valid};
    out[1] = (PureRef){"pure tensor", "tensor", 1, 1, D, &p->pure_tensor, p->pure_tensor_valid};
    out[2] =
        (PureRef){"pure pipeline", "pipeline", D, 1, 1, &p->pure_pipeline, p->pure_pipeline_valid};
    return 3;
}

static int count_tensor_splittable(const IrGraph *g) {
    int k = 0;
    for (int i = 0; i < IR_NNODES(g); i++)
        if (has_choice(IR_NODE(g, i))) k++;
    return k;
}

/* A pure plan fits; or exists but needs more memory than a device has (the search reports
 * the smallest it found, with or without its times); or cannot be built at all. */
typedef enum { PURE_OK, PURE_TOO_BIG, PURE_IMPOSSIBLE } PureState;

static PureState pure_state(const PureRef *r) {
    if (r->valid) return r->tot->fits ? PURE_OK : PURE_TOO_BIG;
    return r->tot->mem_peak > 0 ? PURE_TOO_BIG : PURE_IMPOSSIBLE;
}

/* The first annotation a pure plan of this shape cannot honour, in words (NULL: none):
 * a layer pinned to a stage beyond the plan's last, or pinned to a tensor split when the
 * plan has a single tensor rank. */
static const char *pinned_why(const IrGraph *g, const PureRef *r, char *buf, size_t n) {
    for (int i = 0; i < IR_NNODES(g); i++) {
        const IrNode *nd = IR_NODE(g, i);
        const Annot *an = &nd->annot;
        if (an->stage != IR_NO_STAGE && an->stage >= r->S) {
            snprintf(buf, n, "'%s' is pinned to stage %d at %d:%d", nd->name, an->stage,
                     an->stage_loc.line, an->stage_loc.col);
            return buf;
        }
        if (an->has_strat && an->strat != STRAT_DATA && r->t == 1) {
            snprintf(buf, n, "'%s' is pinned to %s at %d:%d", nd->name,
                     plan_strategy_name(an->strat), an->strat_loc.line, an->strat_loc.col);
            return buf;
        }
    }
    return NULL;
}

/* Why a pure plan is not an option, in words, from the facts that forbid it. */
static const char *pure_why(const IrGraph *g, const PureRef *r, char *buf, size_t n) {
    int64_t B = g->train.batch;
    char b[2][48];
    if (pure_state(r) == PURE_TOO_BIG)
        snprintf(buf, n, "needs %s per device, more than the %s a device has",
                 fmt_bytes(b[0], sizeof b[0], r->tot->mem_peak),
                 fmt_bytes(b[1], sizeof b[1], (int64_t)g->cluster.memory));
    else if (r->S > IR_NNODES(g))
        snprintf(buf, n, "%lld stages need at least %lld layers, the model has %d", (long long)r->S,
                 (long long)r->S, IR_NNODES(g));
    else if (pinned_why(g, r, buf, n))
        return buf;
    else if (B % r->d != 0)
        snprintf(buf, n, "batch %lld does not split over %lld replicas", (long long)B,
                 (long long)r->d);
    else if (g->train.microbatches > 0 && B % (r->d * g->train.microbatches) != 0)
        snprintf(buf, n, "batch %lld does not split into %lld replicas × %lld micro-batches",
                 (long long)B, (long long)r->d, (long long)g->train.microbatches);
    else if (r->t > 1 && count_tensor_splittable(g) == 0)
        snprintf(buf, n, "no layer can be split over tensor ranks");
    else if (r->t > 1)
        snprintf(buf, n, "the layers' shapes do not split over %lld tensor ranks", (long long)r->t);
    else
        snprintf(buf, n, "the search found no valid plan of this shape");
    return buf;
}

/* ───────────────────────────── text report ───────────────────────────── */

static void text_header(const IrGraph *g, FILE *out) {
    const ClusterCfg *c = &g->cluster;
    char b[6][48];
    int64_t P = total_params(g);
    fprintf(out, "mpcc partition report (format 1)\n\n");
    fprintf(out, "model       %s (%s): %d layers, %s parameters\n", g->name, g->file, IR_NNODES(g),
            fmt_count(b[0], sizeof b[0], (double)P, ""));
    fprintf(out, "cluster     %lld devices, %lld per node, preset %s\n", (long long)c->devices,
            (long long)c->devices_per_node, c->preset ? c->preset : "(none)");
    fprintf(out, "device      %s/s, %s memory; intra-node %s/s + %s, inter-node %s/s + %s\n",
            fmt_count(b[0], sizeof b[0], c->flops, "FLOP"),
            fmt_bytes(b[1], sizeof b[1], (int64_t)c->memory),
            fmt_bytes(b[2], sizeof b[2], (int64_t)c->bandwidth),
            fmt_time(b[3], sizeof b[3], c->latency),
            fmt_bytes(b[4], sizeof b[4], (int64_t)c->inter_node_bandwidth),
            fmt_time(b[5], sizeof b[5], c->inter_node_latency));
    fprintf(out, "training    batch %lld, optimizer %s\n", (long long)g->train.batch,
            opt_name(g->train.opt));
}

static void text_mesh(const IrGraph *g, FILE *out) {
    const Plan *p = plan_of(g);
    int64_t B = g->train.batch, per = (int64_t)p->d * p->m;
    fprintf(out, "mesh        S=%d stage%s × d=%d data replica%s × t=%d tensor rank%s\n", p->S,
            p->S == 1 ? "" : "s", p->d, p->d == 1 ? "" : "s", p->t, p->t == 1 ? "" : "s");
    if (per > 0 && B % per == 0)
        fprintf(out, "micro       %d micro-batch%s of %lld samples per replica\n", p->m,
                p->m == 1 ? "" : "es", (long long)(B / per));
    else
        fprintf(out, "micro       %d micro-batch%s\n", p->m, p->m == 1 ? "" : "es");
}

static void step_row(Table *t, const char *what, double v, double step, const char *note) {
    char b[2][48];
    table_add(t, "%s", what);
    table_add(t, "%s", fmt_time(b[0], sizeof b[0], v));
    table_add(t, "%s", fmt_pct(b[1], sizeof b[1], v, step));
    table_add(t, "%s", note);
}

static void text_step(const IrGraph *g, FILE *out, Arena *a) {
    const Plan *p = plan_of(g);
    const PlanTotals *t = &p->totals;
    char b[4][64], note[2][160];
    double st = t->step_time, all = t->grad_sync_hidden + t->grad_sync_unhidden;
    fprintf(out, "step time   %s predicted\n", fmt_time(b[0], sizeof b[0], st));
    Table tb;
    table_init(&tb, a, "lrrl", NULL);
    step_row(&tb, "compute", t->compute, st, "");
    step_row(&tb, "exposed communication", t->exposed_comm, st, "");
    if (p->S > 1 && p->m == 1) /* placement without streaming is not pipelining: say so */
        snprintf(note[0], sizeof note[0], "(S-1)/S = %d/%d: one micro-batch, the stages run in turn, not streamed",
                 p->S - 1, p->S);
    else
        snprintf(note[0], sizeof note[0], "(S-1)/(m+S-1) = %d/%d", p->S - 1, p->m + p->S - 1);
    step_row(&tb, "pipeline bubble", t->bubble, st, note[0]);
    if (all > 0)
        snprintf(note[1], sizeof note[1], "%s of %s hidden behind backward (%s)",
                 fmt_time(b[1], sizeof b[1], t->grad_sync_hidden), fmt_time(b[2], sizeof b[2], all),
                 fmt_pct(b[3], sizeof b[3], t->grad_sync_hidden, all));
    else
        snprintf(note[1], sizeof note[1], "no gradient sync");
    step_row(&tb, "gradient sync unhidden", t->grad_sync_unhidden, st, note[1]);
    table_print(&tb, out);
}

static int fullest_stage(const Plan *p) {
    int s = 0;
    for (int i = 1; i < p->S; i++)
        if (p->stages[i].mem_bytes > p->stages[s].mem_bytes) s = i;
    return s;
}

static void text_memory(const IrGraph *g, FILE *out) {
    const Plan *p = plan_of(g);
    char b[3][48];
    double cap = g->cluster.memory;
    fprintf(out, "memory      %s per device of %s (%s), fullest on stage %d%s\n",
            fmt_bytes(b[0], 48, p->totals.mem_peak), fmt_bytes(b[1], 48, (int64_t)cap),
            fmt_pct(b[2], 48, (double)p->totals.mem_peak, cap), fullest_stage(p),
            p->totals.fits ? "" : "  DOES NOT FIT");
    fprintf(out, "traffic     %s per device per step (busiest device)\n",
            fmt_bytes(b[0], 48, p->totals.comm_bytes));
}

/* One alternative's cell: "*  2.00 MB  40.1 µs", or "n/a" when the op or shapes forbid. */
static void alt_cell(Table *t, const IrNode *n, const PlanNode *pn, Strategy s) {
    const PlanAlt *a = &pn->alt[s];
    if (!strat_allowed(n, s) || !a->feasible) {
        table_add(t, "%s", "n/a");
        return;
    }
    char b[32], tm[32];
    fmt_bytes(b, sizeof b, a->comm_bytes);
    fmt_time(tm, sizeof tm, a->time);
    char cell[96];
    size_t k = (size_t)snprintf(cell, sizeof cell, "%s", pn->strat == s ? "* " : "  ");
    size_t bw = text_width(b), tw = text_width(tm);
    for (size_t i = bw; i < 9 && k + 1 < sizeof cell; i++)
        cell[k++] = ' ';
    k += (size_t)snprintf(cell + k, sizeof cell - k, "%s ", b);
    for (size_t i = tw; i < 9 && k + 1 < sizeof cell; i++)
        cell[k++] = ' ';
    snprintf(cell + k, sizeof cell - k, "%s", tm);
    table_add(t, "%s", cell);
}

static void text_layer_row(Table *t, const IrGraph *g, int i) {
    const IrNode *n = IR_NODE(g, i);
    const PlanNode *pn = &plan_of(g)->nodes[i];
    const IrValue *ov = IR_VALUE(g, n->output);
    char b[3][160];
    table_add(t, "%d", i);
    table_add(t, "%s", n->name);
    table_add(t, "%d:%d", n->loc.line, n->loc.col);
    table_add(t, "%s", ir_ops[n->op].name);
    table_add(t, "%s", ir_shape_str(b[0], sizeof b[0], ov->dtype, &ov->shape));
    table_add(t, "%s", n->param_count ? fmt_count(b[0], 48, (double)n->param_count, "") : "-");
    table_add(t, "%s", fmt_count(b[0], 48, (double)node_flops(n), ""));
    table_add(t, "%d", pn->stage);
    for (int s = 0; s < STRAT__COUNT; s++)
        alt_cell(t, n, pn, (Strategy)s);
    size_t k = 0;
    for (int j = 0; j < n->ninputs; j++)
        k += (size_t)snprintf(b[1] + k, sizeof b[1] - k, "%s%s", j ? "," : "",
                              plan_layout_name(pn->in_layout[j]));
    table_add(t, "%s→%s", b[1], plan_layout_name(pn->out_layout));
    table_add(t, "%s%s", has_choice(n) ? plan_strategy_name(pn->strat) : "-",
              pn->forced ? " (forced)" : "");
    table_add(t, "%s", layer_reason(g, i, b[2], sizeof b[2]));
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
    const PlanNode *p = &plan_of(g)->nodes[a], *q = &plan_of(g)->nodes[b];
    const Shape *sx = &IR_VALUE(g, x->output)->shape, *sy = &IR_VALUE(g, y->output)->shape;
    if (x->op != y->op || x->param_count != y->param_count || node_flops(x) != node_flops(y) ||
        sx->rank != sy->rank || memcmp(sx->d, sy->d, sizeof sx->d[0] * (size_t)sx->rank) != 0)
        return false;
    if (p->strat != q->strat || p->forced != q->forced || p->out_layout != q->out_layout ||
        memcmp(p->in_layout, q->in_layout, sizeof p->in_layout) != 0)
        return false;
    for (int s = 0; s < STRAT__COUNT; s++)
        if (!alt_same(&p->alt[s], &q->alt[s])) return false;
    return (!p->reason && !q->reason) || (p->reason && q->reason && !strcmp(p->reason, q->reason));
}

static bool layer_same_fn(const void *ctx, int a, int b) { return layer_same(ctx, a, b); }

static void layers_note(Table *t, const IrGraph *g, int first, int period, int reps) {
    int from = first + period, to = first + reps * period - 1;
    int smin = plan_of(g)->nodes[from].stage, smax = plan_of(g)->nodes[to].stage;
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
}

static void text_layers(const IrGraph *g, FILE *out, Arena *a) {
    static const char *const head[] = {"#",           "layer",     "at",     "op",   "output",
                                       "params",      "FLOPs f+b", "stage",  "data", "tensor(col)",
                                       "tensor(row)", "layout",    "choice", "why"};
    Table t;
    table_init(&t, a, "rllllrrrllllll", head);
    bool collapse = IR_NNODES(g) > REPORT_COLLAPSE_LAYERS;
    for (int i = 0; i < IR_NNODES(g);) {
        int period = 1,
            reps = collapse ? repeat_run(layer_same_fn, g, IR_NNODES(g), i, &period) : 1;
        for (int k = 0; k < period; k++)
            text_layer_row(&t, g, i + k);
        if (reps > 1) layers_note(&t, g, i, period, reps);
        i += period * reps;
    }
    fprintf(out, "\nlayers (each alternative: bytes moved per device per step, time per step; "
                 "* = chosen)\n");
    table_print(&t, out);
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
    const Plan *p = plan_of(g);
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
        table_add(&t, "%s", fmt_bytes(b[0], 48, r->fwd_bytes));
        table_add(&t, "%s", r->bwd == COLL_NONE ? "-" : cost_coll_name(r->bwd));
        table_add(&t, "%s", r->bwd == COLL_NONE ? "-" : fmt_bytes(b[1], 48, r->bwd_bytes));
        table_add(&t, "%s", plan_group_name(r->group));
        table_add(&t, "%s", fmt_bytes(b[2], 48, (r->fwd_bytes + r->bwd_bytes) * p->m));
    }
    table_print_long(g, &t, 0x3u, out); /* value, consumer */
}

static void stage_time_row(Table *t, const IrGraph *g, int s) {
    const Plan *p = plan_of(g);
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
    table_add(t, "%s", fmt_time(b[0], 48, st->fwd_time));
    table_add(t, "%s", fmt_time(b[1], 48, st->bwd_time));
    table_add(t, "%s", fmt_time(b[2], 48, st->comm_time));
    table_add(t, "%s", fmt_time(b[3], 48, (st->fwd_time + st->bwd_time + st->comm_time) * p->m));
    table_add(t, "%s", fmt_time(b[4], 48, st->grad_sync_time));
    table_add(t, "%s", fmt_time(b[5], 48, st->grad_sync_hidden));
}

static void stage_mem_row(Table *t, const PlanStage *st, int s) {
    char b[6][48];
    table_add(t, "%d", s);
    table_add(t, "%s", fmt_bytes(b[0], 48, st->mem_bytes));
    table_add(t, "%s", fmt_bytes(b[1], 48, st->mem_params));
    table_add(t, "%s", fmt_bytes(b[2], 48, st->mem_grads));
    table_add(t, "%s", fmt_bytes(b[3], 48, st->mem_optim));
    table_add(t, "%s", fmt_bytes(b[4], 48, st->mem_acts));
    table_add(t, "%s", fmt_bytes(b[5], 48, st->mem_buffers));
}

static void text_stages(const IrGraph *g, FILE *out, Arena *a) {
    const Plan *p = plan_of(g);
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
}

static void text_cuts(const IrGraph *g, FILE *out, Arena *a) {
    const Plan *p = plan_of(g);
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
        table_add(&t, "%s", fmt_bytes(b[0], 48, c->bytes));
        table_add(&t, "%s", fmt_bytes(b[1], 48, cut_bytes_per_step(g, c)));
    }
    table_print_long(g, &t, 0x3u, out); /* cut, value */
}

static void compare_row(Table *t, const IrGraph *g, const PureRef *r) {
    const Plan *p = plan_of(g);
    char b[3][160];
    PureState st = pure_state(r);
    table_add(t, "%s", r->name);
    table_add(t, "%lld×%lld×%lld", (long long)r->S, (long long)r->d, (long long)r->t);
    table_add(t, "%s", r->valid ? fmt_time(b[0], 48, r->tot->step_time) : "-");
    table_add(t, "%s", st != PURE_IMPOSSIBLE ? fmt_bytes(b[1], 48, r->tot->mem_peak) : "-");
    if (st == PURE_OK && p->totals.step_time > 0)
        table_add(t, "%.2f×", r->tot->step_time / p->totals.step_time);
    else if (st == PURE_OK)
        table_add(t, "-");
    else
        table_add(t, "%s: %s", st == PURE_TOO_BIG ? "does not fit" : "not possible",
                  pure_why(g, r, b[2], sizeof b[2]));
}

static void text_compare(const IrGraph *g, FILE *out, Arena *a) {
    const Plan *p = plan_of(g);
    static const char *const head[] = {"plan", "S×d×t", "step time", "memory/device",
                                       "chosen plan's speed-up"};
    Table t;
    table_init(&t, a, "lrrrl", head);
    char b[2][48];
    table_add(&t, "chosen");
    table_add(&t, "%d×%d×%d", p->S, p->d, p->t);
    table_add(&t, "%s", fmt_time(b[0], 48, p->totals.step_time));
    table_add(&t, "%s", fmt_bytes(b[1], 48, p->totals.mem_peak));
    table_add(&t, "1.00×");
    PureRef r[3];
    int n = pure_refs(g, r);
    for (int i = 0; i < n; i++)
        compare_row(&t, g, &r[i]);
    fprintf(out, "\ncompared with pure strategies (same cluster, same batch)\n");
    table_print(&t, out);
}

void pass_report_text(const IrGraph *g, FILE *out) {
    text_header(g, out);
    if (!plan_of(g)) {
        fprintf(out, "\nno plan: the planner did not run\n");
        return;
    }
    Arena a = {0};
    text_mesh(g, out);
    text_step(g, out, &a);
    text_memory(g, out);
    text_layers(g, out, &a);
    text_reshards(g, out, &a);
    text_stages(g, out, &a);
    text_cuts(g, out, &a);
    text_compare(g, out, &a);
    arena_free(&a);
}

void pass_report_summary(const IrGraph *g, FILE *out) {
    const Plan *p = plan_of(g);
    char b[6][48];
    if (!p) {
        fprintf(out, "mpcc plan: %s: no plan\n", g->name);
        return;
    }
    const PlanTotals *t = &p->totals;
    fprintf(out, "mpcc plan: %s on %lld devices: mesh S=%d × d=%d × t=%d, %d micro-batch%s\n",
            g->name, (long long)g->cluster.devices, p->S, p->d, p->t, p->m, p->m == 1 ? "" : "es");
    fprintf(out, "  predicted step %s: compute %s, exposed comm %s, bubble %s, grad sync %s\n",
            fmt_time(b[0], 48, t->step_time), fmt_time(b[1], 48, t->compute),
            fmt_time(b[2], 48, t->exposed_comm), fmt_time(b[3], 48, t->bubble),
            fmt_time(b[4], 48, t->grad_sync_unhidden));
    fprintf(out, "  memory %s per device of %s\n", fmt_bytes(b[0], 48, t->mem_peak),
            fmt_bytes(b[1], 48, (int64_t)g->cluster.memory));
}

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
    json_close(j, '}');
    json_open(j, "train", '{');
    json_int(j, "batch", g->train.batch);
    json_str(j, "optimizer", opt_name(g->train.opt));
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
        bool ok = strat_allowed(n, (Strategy)s) && a->feasible;
        json_open_inline(j, NULL, '{');
        json_str(j, "strategy", plan_strategy_name((Strategy)s));
        json_bool(j, "allowed", strat_allowed(n, (Strategy)s));
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
    const PlanNode *pn = &plan_of(g)->nodes[i];
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
    json_int(j, "flops_fwd", n->flops_fwd);
    json_int(j, "flops_bwd", n->flops_bwd);
    json_int(j, "stage", pn->stage);
    json_str(j, "strategy", plan_strategy_name(pn->strat));
    json_bool(j, "has_choice", has_choice(n));
    json_bool(j, "forced", pn->forced);
    json_open_inline(j, "in_layouts", '[');
    for (int k = 0; k < n->ninputs; k++)
        json_str(j, NULL, plan_layout_name(pn->in_layout[k]));
    json_close(j, ']');
    json_str(j, "out_layout", plan_layout_name(pn->out_layout));
    json_alts(j, n, pn);
    json_str(j, "reason", layer_reason(g, i, why, sizeof why));
    json_int(j, "mem_bytes", pn->mem_bytes);
    json_num(j, "fwd_time", pn->fwd_time);
    json_num(j, "bwd_time", pn->bwd_time);
    json_close(j, '}');
}

static void json_reshards(Json *j, const IrGraph *g) {
    const Plan *p = plan_of(g);
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
    const Plan *p = plan_of(g);
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
        json_open_inline(j, "memory", '{');
        json_int(j, "total", st->mem_bytes);
        json_int(j, "params", st->mem_params);
        json_int(j, "grads", st->mem_grads);
        json_int(j, "optimizer", st->mem_optim);
        json_int(j, "activations", st->mem_acts);
        json_int(j, "buffers", st->mem_buffers);
        json_close(j, '}');
        json_close(j, '}');
    }
    json_close(j, ']');
}

static void json_cuts(Json *j, const IrGraph *g) {
    const Plan *p = plan_of(g);
    json_open(j, "cuts", '[');
    for (int i = 0; i < p->ncuts; i++) {
        const PlanCut *c = &p->cuts[i];
        json_open_inline(j, NULL, '{');
        json_int(j, "after_stage", c->stage);
        json_str(j, "value", IR_VALUE(g, c->value)->name);
        json_str(j, "layout", plan_layout_name(c->layout));
        json_int(j, "bytes_per_microbatch", c->bytes);
        json_int(j, "bytes_per_step", cut_bytes_per_step(g, c));
        json_close(j, '}');
    }
    json_close(j, ']');
}

static void json_compare(Json *j, const IrGraph *g) {
    const Plan *p = plan_of(g);
    PureRef r[3];
    int n = pure_refs(g, r);
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
        PureState st = pure_state(&r[i]);
        json_bool(j, "possible", st != PURE_IMPOSSIBLE);
        json_bool(j, "fits", st == PURE_OK);
        if (st != PURE_OK) json_str(j, "why", pure_why(g, &r[i], why, sizeof why));
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

static void json_plan(Json *j, const IrGraph *g) {
    const Plan *p = plan_of(g);
    json_open_inline(j, "mesh", '{');
    json_int(j, "S", p->S);
    json_int(j, "d", p->d);
    json_int(j, "t", p->t);
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
    json_int(&j, "params", total_params(g));
    json_close(&j, '}');
    json_cluster(&j, g);
    json_bool(&j, "planned", plan_of(g) != NULL);
    if (plan_of(g)) json_plan(&j, g);
    json_close(&j, '}');
    fputc('\n', out);
}

/* ───────────────────────────── the pass and saving ───────────────────────────── */

/* The search's contract, checked before the report trusts it. */
static const char *plan_check(const IrGraph *g) {
    const Plan *p = plan_of(g);
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
    for (int k = 0; k < 3; k++)
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

/* Writes the report to `path` through a temporary file in the same directory, renamed
 * over `path` only once everything is written and flushed. */
bool pass_report_save(const IrGraph *g, const char *path, bool json, Diag *d) {
    Arena a = {0};
    char *tmp = arena_printf(&a, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd >= 0) {
        mode_t mask = umask(0); /* mkstemp makes 0600; give the usual 0666 & ~umask */
        umask(mask);
        (void)fchmod(fd, 0666 & ~mask);
    }
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        diag_error(d, (SrcLoc){0}, "cannot write '%s': %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        arena_free(&a);
        return false;
    }
    if (json)
        pass_report_json(g, f);
    else
        pass_report_text(g, f);
    bool ok = fflush(f) == 0 && !ferror(f);
    int err = errno;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        diag_error(d, (SrcLoc){0}, "cannot write '%s': %s", path, strerror(err));
        remove(tmp);
    }
    arena_free(&a);
    return ok;
}
