/*
 * dump.c: the textual form of an IrGraph (mpcc --emit=ir, --dump-after=PASS).
 *
 * The dump is for people and for golden tests, so it is stable and aligned:
 *
 *   model mlp (mlp.mp)
 *   inputs:
 *     x  input  f32[128, 784]  mlp.mp:2:5
 *   nodes:
 *     name  op      inputs             output          params     fwd FLOPs  bwd FLOPs  loc
 * annotations h1    linear  x:f32[128, 784]    f32[128, 4096]  3,215,360  823M       ...
 *   parameters:
 *     h1.weight  f32[784, 4096]  3,211,264
 *   totals:
 *     parameters  3,215,360 (3.22M)
 *     ...
 *
 * One line per value, node and parameter, in graph order; columns are padded to the widest
 * cell. Parameter counts are exact (with thousands separators) everywhere; FLOPs are
 * abbreviated per node (3 significant digits with K/M/G/T/P/E) and exact in the totals.
 * Source locations print the file's base name, so the dump does not depend on where the
 * compiler was run from. An activation whose shape is not inferred yet prints as "?".
 * Nothing here depends on pointer values or hash order, so the same graph always gives
 * the same bytes.
 */
#include "ir.h"

#include <string.h>

/* ───────────────────────── number formatting ───────────────────────── */

/* 7087872 -> "7,087,872". */
static char *fmt_exact(Arena *a, int64_t v) {
    char digits[32], out[48];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)u);
    int k = 0;
    if (v < 0) out[k++] = '-';
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) out[k++] = ',';
        out[k++] = digits[i];
    }
    out[k] = '\0';
    return arena_strdup(a, out);
}

/* FLOPs (doubles, integral): exact with commas below 2^63, else in "%.0f" digits. */
static char *fmt_exact_f(Arena *a, double v) {
    if (v < 9.2e18) return fmt_exact(a, (int64_t)v);
    return arena_printf(a, "%.0f", v);
}

/* 823160832 -> "823M"; 3215360 -> "3.22M"; values under 1000 exactly; past 999E, "2.48e+27". */
static char *fmt_human(Arena *a, double x) {
    static const char units[] = "KMGTPE";
    if (x < 1000 && x > -1000) return arena_printf(a, "%lld", (long long)x);
    if (x >= 999.5e18 || x <= -999.5e18) return arena_printf(a, "%.3g", x);
    int u = -1;
    while ((x >= 999.5 || x <= -999.5) && u < 5) {
        x /= 1000.0;
        u++;
    }
    double ax = x < 0 ? -x : x;
    const char *f = ax < 9.995 ? "%.2f%c" : ax < 99.95 ? "%.1f%c" : "%.0f%c";
    return arena_printf(a, f, x, units[u]);
}

static char *fmt_loc(Arena *a, SrcLoc l) {
    if (l.line <= 0) return "-";
    return arena_printf(a, "%s:%d:%d", l.file ? l.file : "", l.line, l.col);
}

static char *fmt_shape(Arena *a, DType t, const Shape *s) {
    char buf[192];
    return arena_strdup(a, ir_shape_str(buf, sizeof buf, t, s));
}

/* ───────────────────────── aligned tables ───────────────────────── */

#define TAB_MAX_COLS 10

/* Rows of cells printed with every column padded to its widest cell. `right` marks the
 * columns of numbers, which align on the right. The last column is never padded. */
typedef struct Table {
    Arena *a;
    int ncols, nrows, cap;
    const char **cells;
    bool right[TAB_MAX_COLS];
} Table;

static void tab_row(Table *t, const char *const *row) {
    if (t->nrows == t->cap) {
        int ncap = t->cap ? 2 * t->cap : 32;
        const char **nc = arena_calloc(t->a, (size_t)ncap * (size_t)t->ncols, sizeof *nc);
        if (t->nrows) memcpy(nc, t->cells, sizeof *nc * (size_t)t->nrows * (size_t)t->ncols);
        t->cells = nc;
        t->cap = ncap;
    }
    memcpy(t->cells + (size_t)t->nrows * (size_t)t->ncols, row, sizeof *row * (size_t)t->ncols);
    t->nrows++;
}

static void tab_print(const Table *t, FILE *out) {
    size_t w[TAB_MAX_COLS] = {0};
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            size_t l = strlen(t->cells[r * t->ncols + c]);
            if (l > w[c]) w[c] = l;
        }
    for (int r = 0; r < t->nrows; r++) {
        const char *const *row = t->cells + r * t->ncols;
        int last = t->ncols - 1; /* trailing empty cells are dropped: no trailing spaces */
        while (last > 0 && row[last][0] == '\0')
            last--;
        fputs("  ", out);
        for (int c = 0; c <= last; c++) {
            if (c > 0) fputs("  ", out);
            if (t->right[c])
                fprintf(out, "%*s", (int)w[c], row[c]);
            else if (c == last)
                fputs(row[c], out);
            else
                fprintf(out, "%-*s", (int)w[c], row[c]);
        }
        fputc('\n', out);
    }
}

/* ───────────────────────── the sections ───────────────────────── */

static const char *kind_name(ValueKind k) {
    return k == VAL_INPUT ? "input" : k == VAL_LABEL ? "label" : "act";
}

static void dump_inputs(const IrGraph *g, FILE *out) {
    Table t = {.a = g->arena, .ncols = 4};
    for (int i = 0; i < IR_NVALUES(g); i++) {
        const IrValue *v = IR_VALUE(g, i);
        if (v->kind == VAL_ACT) continue;
        const char *row[] = {v->name, kind_name(v->kind), fmt_shape(g->arena, v->dtype, &v->shape),
                             fmt_loc(g->arena, v->loc)};
        tab_row(&t, row);
    }
    fputs("inputs:\n", out);
    tab_print(&t, out);
}

static const char *fmt_annot(Arena *a, const Annot *an) {
    static const char *const strat[] = {"@data", "@tensor(col)", "@tensor(row)"};
    const char *s = an->has_strat && an->strat < STRAT__COUNT ? strat[an->strat] : "";
    if (an->stage != IR_NO_STAGE)
        s = arena_printf(a, "%s%s@stage(%d)", s, *s ? " " : "", an->stage);
    if (an->recompute) s = arena_printf(a, "%s%s@recompute", s, *s ? " " : "");
    return s;
}

/* The value's shape, or "?" for an activation that pass_shapes has not reached. */
static const char *value_shape(const IrGraph *g, int vi) {
    const IrValue *v = IR_VALUE(g, vi);
    bool is_loss = v->producer >= 0 && (ir_ops[IR_NODE(g, v->producer)->op].flags & OPF_LOSS);
    if (v->kind == VAL_ACT && v->shape.rank == 0 && !is_loss) return "?";
    return fmt_shape(g->arena, v->dtype, &v->shape);
}

static const char *node_inputs(const IrGraph *g, const IrNode *n) {
    const char *s = "";
    for (int k = 0; k < n->ninputs; k++)
        s = arena_printf(g->arena, "%s%s%s:%s", s, k ? ", " : "", IR_VALUE(g, n->inputs[k])->name,
                         value_shape(g, n->inputs[k]));
    return s;
}

static void dump_nodes(const IrGraph *g, FILE *out) {
    Table t = {.a = g->arena, .ncols = 9};
    t.right[4] = t.right[5] = t.right[6] = true;
    const char *head[] = {"name",      "op",        "inputs", "-> output",  "params",
                          "fwd FLOPs", "bwd FLOPs", "loc",    "annotations"};
    tab_row(&t, head);
    for (int i = 0; i < IR_NNODES(g); i++) {
        const IrNode *n = IR_NODE(g, i);
        const char *row[] = {n->name,
                             ir_ops[n->op].name,
                             node_inputs(g, n),
                             arena_printf(g->arena, "-> %s", value_shape(g, n->output)),
                             fmt_exact(g->arena, n->param_count),
                             fmt_human(g->arena, n->flops_fwd),
                             fmt_human(g->arena, n->flops_bwd),
                             fmt_loc(g->arena, n->loc),
                             fmt_annot(g->arena, &n->annot)};
        tab_row(&t, row);
    }
    fputs("nodes:\n", out);
    tab_print(&t, out);
}

static void dump_params(const IrGraph *g, FILE *out) {
    if (IR_NPARAMS(g) == 0) return;
    Table t = {.a = g->arena, .ncols = 3};
    t.right[2] = true;
    for (int i = 0; i < IR_NPARAMS(g); i++) {
        const IrParam *p = IR_PARAM(g, i);
        const char *row[] = {p->name, fmt_shape(g->arena, DT_F32, &p->shape),
                             fmt_exact(g->arena, ir_shape_numel(&p->shape))};
        tab_row(&t, row);
    }
    fputs("parameters:\n", out);
    tab_print(&t, out);
}

/* Sums saturate rather than wrap: pass_shapes guarantees the totals fit, but the dump may
 * also be asked for a graph that failed shape inference. */
static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

static void dump_totals(const IrGraph *g, FILE *out) {
    int64_t p = 0;
    double f = 0, b = 0;
    for (int i = 0; i < IR_NNODES(g); i++) {
        const IrNode *n = IR_NODE(g, i);
        p = sat_add(p, n->param_count);
        f += n->flops_fwd;
        b += n->flops_bwd;
    }
    Arena *a = g->arena;
    Table t = {.a = a, .ncols = 3};
    t.right[1] = true;
    const char *r0[] = {"parameters", fmt_exact(a, p),
                        arena_printf(a, "(%s)", fmt_human(a, (double)p))};
    const char *r1[] = {"fwd FLOPs/step", fmt_exact_f(a, f),
                        arena_printf(a, "(%s)", fmt_human(a, f))};
    const char *r2[] = {"bwd FLOPs/step", fmt_exact_f(a, b),
                        arena_printf(a, "(%s)", fmt_human(a, b))};
    double tot = f + b;
    const char *r3[] = {"FLOPs/step", fmt_exact_f(a, tot),
                        arena_printf(a, "(%s)", fmt_human(a, tot))};
    tab_row(&t, r0);
    tab_row(&t, r1);
    tab_row(&t, r2);
    tab_row(&t, r3);
    fputs("totals:\n", out);
    tab_print(&t, out);
}

void ir_dump(const IrGraph *g, FILE *out) {
    fprintf(out, "model %s (%s)\n", g->name ? g->name : "?", g->file ? g->file : "?");
    dump_inputs(g, out);
    dump_nodes(g, out);
    dump_params(g, out);
    dump_totals(g, out);
}
