/*
 * report_internal.h: what the files of report/ share — aligned tables (table.c) and the facts
 * both renderings derive from the plan (facts.c). Private to report/.
 *
 * Invariant: everything here is a function of the graph and its plan only, so the text and
 * the JSON report say the same thing in the same order.
 */
#ifndef MPCC_REPORT_INTERNAL_H
#define MPCC_REPORT_INTERNAL_H

#include "report.h"

/* ─────────── table.c ─────────── */

/* Long models (more than REPORT_COLLAPSE_LAYERS layers): a run of at least
 * REPORT_MIN_REPEATS identical blocks of up to REPORT_MAX_PERIOD rows is shown once, then
 * as one line for the rest. The JSON always lists everything. */
#define REPORT_COLLAPSE_LAYERS 100
#define REPORT_MIN_REPEATS 3
#define REPORT_MAX_PERIOD 64
/* The widest line the text report prints (docs/report.md): a wide terminal's. */
#define REPORT_WIDTH 160

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

/* Display width of UTF-8 text: one column per code point. */
size_t table_text_width(const char *s);
void table_init(Table *t, Arena *a, const char *align, const char *const *head);
void table_add(Table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A row that is one line of text across the table (its other cells NULL). */
void table_note(Table *t, const char *text);
/* How many times the block of `period` items starting at `i` repeats back to back, for the
 * shortest period that repeats at least REPORT_MIN_REPEATS times among n items (1 when
 * none does); same(ctx, a, b) says whether items a and b look alike. */
typedef bool (*SameFn)(const void *ctx, int a, int b);
int table_repeat_run(SameFn same_fn, const void *ctx, int n, int i, int *period);
/* `t` with runs of rows that repeat (ignoring the columns in the bit set `ignore`) shown once
 * and then as one line. */
void table_collapse(Table *out, const Table *t, unsigned ignore);
/* The header and every row, indented two spaces, columns two spaces apart. */
void table_print(const Table *t, FILE *out);

/* A JSON report or a trainer's profile read whole (measured.c; used by compare.c too): a
 * regular file of at most REPORT_MAX_INPUT bytes, NUL-terminated, malloc'd; NULL with *why
 * set to what went wrong. */
#define REPORT_MAX_INPUT (256L << 20)
char *report_slurp(const char *path, const char **why);

/* ─────────── facts.c ─────────── */

const Plan *report_plan(const IrGraph *g);
double report_node_flops(const IrNode *n);
int64_t report_total_params(const IrGraph *g);
/* The strategy is a real choice only for ops that allow more than one. */
bool report_has_choice(const IrNode *n);
bool report_strat_allowed(const IrNode *n, Strategy s);
/* Whether the report shows alternative s of node n: its op allows it, or the plan chose it (a
 * vocabulary-parallel loss, a mode of the rules table the op's annotations do not name). */
bool report_alt_shown(const IrNode *n, const PlanNode *pn, Strategy s);
/* The "chosen" cell: the strategy's name for the node, or "-" when it only follows its input. */
const char *report_chosen_name(const IrNode *n, const PlanNode *pn);
int64_t report_cut_bytes_per_step(const IrGraph *g, const PlanCut *c);
const char *report_opt_name(OptKind k);
/* Whether the per-stage savings (precision, recomputation, ZeRO and the memory each saved) are
 * reported: under bf16, with train.zero set, or when a stage recomputes; never for a plan that
 * uses none of them (docs/report.md). */
bool report_savings_shown(const IrGraph *g);
/* The reason for layer i's choice: the planner's sentence, else one composed from the
 * alternatives it weighed. */
const char *report_layer_reason(const IrGraph *g, int i, char *buf, size_t n);

/* A pure reference plan: its name, mesh, and whether the search could build it. */
typedef struct PureRef {
    const char *name, *key;
    int64_t S, d, t;
    const PlanTotals *tot;
    bool valid;
} PureRef;

/* The pure data, tensor and pipeline plans of the plan, in that order; returns 3. */
int report_pure_refs(const IrGraph *g, PureRef out[3]);
typedef enum { PURE_OK, PURE_TOO_BIG, PURE_IMPOSSIBLE } PureState;
PureState report_pure_state(const PureRef *r);
/* Why a pure plan is not an option, in words. */
const char *report_pure_why(const IrGraph *g, const PureRef *r, char *buf, size_t n);

/* ─────────── html.c, html_charts.c ─────────── */

/* `s` with <, >, &, " and ' written as HTML entities. */
void html_esc(FILE *out, const char *s);
/* The fill colour of stage s (a CSS colour, deterministic). */
void html_stage_color(char *buf, size_t n, int s);
void html_timeline(const IrGraph *g, FILE *out); /* the 1F1B step, to scale */
void html_memory(const IrGraph *g, FILE *out);   /* memory per stage against capacity */
/* per stage: precision, recomputation, ZeRO and what each saves (report_savings_shown only) */
void html_savings(const IrGraph *g, FILE *out);
void html_compare(const IrGraph *g, FILE *out); /* chosen vs pure plans */
/* A rectangle of the charts: class `cls` (what a test counts), fill a CSS colour. */
void html_box(FILE *out, double x, double y, double w, double h, const char *fill, const char *cls);
/* html_measured.c: the measured step under the predicted one, per stage, and each layer's
 * predicted and measured times with the error. */
void html_measured(const IrGraph *g, const Measured *m, FILE *out);

#endif /* MPCC_REPORT_INTERNAL_H */
