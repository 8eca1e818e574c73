/*
 * table.c: aligned text tables for the report, and the collapsing of long ones.
 *
 * A table is a list of string cells in an arena, printed with columns padded by display
 * width (one column per UTF-8 code point, so "µs" or "×" do not skew a column), two spaces
 * apart, indented two spaces; the last column is never padded, so no line ends in spaces.
 * No line is wider than REPORT_WIDTH columns when it can be helped: a row's last column (a
 * sentence) and a note line wrap at spaces onto lines indented under where they started;
 * only a single cell wider than the limit (a very long layer name) goes past it.
 * Long models stay readable: a run of identical blocks of rows (compared as printed, except
 * the identity columns the caller names) is printed once and then as one line that says
 * what it stands for. Output depends on the cells only.
 */
#include "report_internal.h"

#include <stdarg.h>
#include <string.h>

/* ───────────────────────────── aligned tables ───────────────────────────── */

/* Display width of UTF-8 text: one column per code point (the report uses only
 * single-width characters such as µ, ×, → besides ASCII). */
size_t table_text_width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

static void put_pad(FILE *out, size_t n) {
    for (size_t i = 0; i < n; i++)
        fputc(' ', out);
}

void table_init(Table *t, Arena *a, const char *align, const char *const *head) {
    memset(t, 0, sizeof *t);
    t->a = a;
    t->align = align;
    t->ncols = (int)strlen(align);
    for (int i = 0; i < t->ncols; i++)
        t->head[i] = head ? head[i] : NULL;
    t->cells.item = sizeof(const char *);
}

void table_add(Table *t, const char *fmt, ...) {
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
void table_note(Table *t, const char *text) {
    *(const char **)vec_push(t->a, &t->cells) = arena_strdup(t->a, text);
    for (int c = 1; c < t->ncols; c++)
        *(const char **)vec_push(t->a, &t->cells) = NULL;
}

static bool table_is_note(const Table *t, size_t row) {
    return row > 0 && t->ncols > 1 && table_cell(t, row, 1) == NULL;
}

/* Display width of the first `bytes` bytes of s. */
static size_t width_n(const char *s, size_t bytes) {
    size_t w = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) w++;
    return w;
}

/* Prints text s, whose first character lands at column `col`, breaking at spaces so that no
 * line passes REPORT_WIDTH; continuation lines start at column `indent` (unless that leaves
 * under 24 columns: then s stays on one line). A word wider than the room left is not
 * broken. Ends the line. */
static void put_wrapped(FILE *out, const char *s, size_t col, size_t indent) {
    if (indent + 24 > REPORT_WIDTH) { /* no room to wrap into: one long line */
        fprintf(out, "%s\n", s);
        return;
    }
    for (bool first = true; *s; first = false) {
        if (!first) {
            while (*s == ' ')
                s++;
            fputc('\n', out);
            put_pad(out, indent);
            col = indent;
        }
        size_t len = strlen(s), cut = len;
        if (col + table_text_width(s) > REPORT_WIDTH) {
            size_t room = REPORT_WIDTH - (col < REPORT_WIDTH ? col : REPORT_WIDTH), best = 0;
            for (size_t i = 1; i < len; i++)
                if (s[i] == ' ' && width_n(s, i) <= room) best = i;
            if (best)
                cut = best;
            else /* no space fits: cut after the first word */
                for (cut = 1; cut < len && s[cut] != ' '; cut++) {
                }
        }
        fwrite(s, 1, cut, out);
        s += cut;
    }
    fputc('\n', out);
}

static void table_print_row(const Table *t, const size_t *w, size_t r, FILE *out) {
    int end = t->ncols; /* trailing empty cells print nothing */
    while (end > 1 && !table_cell(t, r, end - 1)[0])
        end--;
    fputs("  ", out);
    size_t col = 2;
    for (int c = 0; c < end; c++) {
        const char *s = table_cell(t, r, c);
        size_t pad = w[c] - table_text_width(s);
        bool last = c + 1 == end;
        if (c) fputs("  ", out), col += 2;
        if (last && t->align[c] != 'r') {
            put_wrapped(out, s, col, col);
            return;
        }
        if (t->align[c] == 'r') put_pad(out, pad);
        fputs(s, out);
        if (t->align[c] != 'r' && !last) put_pad(out, pad);
        col += w[c];
    }
    fputc('\n', out);
}

/* How many times the block of `period` items starting at `i` repeats back to back, for the
 * shortest period that repeats at least REPORT_MIN_REPEATS times among n items (1 when
 * none does); same(ctx, a, b) says whether items a and b look alike. */

int table_repeat_run(SameFn same_fn, const void *ctx, int n, int i, int *period) {
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
void table_collapse(Table *out, const Table *t, unsigned ignore) {
    table_init(out, t->a, t->align, t->head);
    int n = (int)(t->cells.len / (size_t)t->ncols);
    RowCmp rc = {t, ignore};
    for (int i = 0; i < n;) {
        int period = 1, reps = table_repeat_run(row_same_fn, &rc, n, i, &period);
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
void table_print(const Table *t, FILE *out) {
    size_t rows = 1 + t->cells.len / (size_t)t->ncols;
    size_t w[TABLE_MAX_COLS] = {0};
    size_t r0 = t->head[0] ? 0 : 1; /* a NULL first heading: no header row */
    for (size_t r = r0; r < rows; r++)
        for (int c = 0; c < t->ncols && !table_is_note(t, r); c++) {
            size_t cw = table_text_width(table_cell(t, r, c));
            if (cw > w[c]) w[c] = cw;
        }
    for (size_t r = r0; r < rows; r++) {
        if (table_is_note(t, r)) {
            const char *note = table_cell(t, r, 0);
            size_t lead = strspn(note, " "), word = strcspn(note + lead, " ");
            fputs("  ", out); /* continuation lines start under the note's second word */
            put_wrapped(out, note, 2, 2 + lead + width_n(note + lead, word) + 1);
        } else
            table_print_row(t, w, r, out);
    }
}
