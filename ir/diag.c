/*
 * diag.c: compiler-style diagnostics.
 *
 * Every user-facing problem goes through diag_report(), which prints it at once in the
 * form people know from gcc and clang:
 *
 *   model.mp:4:10: error: unknown op 'reluu'; did you mean 'relu'?
 *       h = reluu(x);
 *           ^~~~~~~~
 *
 * The caret line copies the tabs of the source line so the marker stays aligned however
 * the terminal expands them, and counts UTF-8 code points (not bytes) as columns, the
 * same way the lexer does. A span that runs past the end of its line (a statement over
 * several lines) is clipped to the line. A location with line 0 has no caret line: it
 * prints "file: error: ..." for whole-file problems, or "mpcc: error: ..." when there is
 * no file at all (command-line settings).
 *
 * Errors and warnings are counted; the driver stops after a phase that reported any
 * error. max_errors bounds what is printed (not what is counted), so a fuzzed input with
 * a million errors does not flood the terminal.
 */
#include "ir.h"

#include <string.h>

void diag_init(Diag *d, FILE *out) {
    memset(d, 0, sizeof *d);
    d->out = out ? out : stderr;
}

void diag_set_source(Diag *d, const char *file, const char *src, size_t len) {
    d->file = file;
    d->src = src;
    d->src_len = len;
}

static const char *level_name(DiagLevel lvl) {
    switch (lvl) {
    case DIAG_ERROR: return "error";
    case DIAG_WARNING: return "warning";
    case DIAG_NOTE: return "note";
    }
    return "error";
}

static const char *level_color(DiagLevel lvl) {
    switch (lvl) {
    case DIAG_ERROR: return "\033[1;31m";
    case DIAG_WARNING: return "\033[1;35m";
    case DIAG_NOTE: return "\033[1;36m";
    }
    return "";
}

/* The start of line `line` (1-based) of the registered source, or NULL. */
static const char *find_line(const Diag *d, int line, size_t *len) {
    if (!d->src || line <= 0) return NULL;
    const char *p = d->src, *end = d->src + d->src_len;
    for (int l = 1; l < line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return NULL;
        p = nl + 1;
    }
    const char *e = p;
    while (e < end && *e != '\n' && *e != '\r')
        e++;
    *len = (size_t)(e - p);
    return p;
}

static bool is_cont_byte(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

/* Prints the source line and a ^~~~ marker under columns [col, end_col]. */
static void print_caret(const Diag *d, SrcLoc loc) {
    size_t len = 0;
    const char *s = find_line(d, loc.line, &len);
    if (!s) return;
    fprintf(d->out, "%.*s\n", (int)len, s);
    int col = 1;
    bool started = false;
    for (size_t i = 0; i < len; i++) {
        if (is_cont_byte(s[i])) continue;
        if (col == loc.col) {
            fputc('^', d->out);
            started = true;
        } else if (col > loc.col) {
            if (col > loc.end_col) break;
            fputc('~', d->out);
        } else {
            fputc(s[i] == '\t' ? '\t' : ' ', d->out);
        }
        col++;
    }
    if (!started) fputc('^', d->out); /* a location at the end of the line (e.g. EOF) */
    fputc('\n', d->out);
}

void diag_vreport(Diag *d, DiagLevel lvl, SrcLoc loc, const char *fmt, va_list ap) {
    if (lvl == DIAG_ERROR) d->errors++;
    if (lvl == DIAG_WARNING) d->warnings++;
    if (d->max_errors > 0 && d->errors > d->max_errors) {
        if (lvl == DIAG_ERROR && d->errors == d->max_errors + 1)
            fprintf(d->out, "mpcc: note: too many errors; not printing more\n");
        return;
    }
    const char *bold = d->color ? "\033[1m" : "", *reset = d->color ? "\033[0m" : "";
    const char *file = loc.file ? loc.file : NULL;
    if (file && loc.line > 0)
        fprintf(d->out, "%s%s:%d:%d: %s", bold, file, loc.line, loc.col, reset);
    else if (file)
        fprintf(d->out, "%s%s: %s", bold, file, reset);
    else
        fprintf(d->out, "%smpcc: %s", bold, reset);
    fprintf(d->out, "%s%s:%s ", d->color ? level_color(lvl) : "", level_name(lvl), reset);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    if (loc.line > 0 && file && d->file && strcmp(file, d->file) == 0) print_caret(d, loc);
}

void diag_report(Diag *d, DiagLevel lvl, SrcLoc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_vreport(d, lvl, loc, fmt, ap);
    va_end(ap);
}

/* Edit distance counting an insertion, a deletion, a substitution or a swap of two
 * neighbouring letters as one edit (optimal string alignment: "bais" is one edit from
 * "bias"), giving up (returning limit + 1) once every path exceeds `limit`. */
static size_t edit_distance(const char *a, const char *b, size_t limit) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return limit + 1;
    if ((la > lb ? la - lb : lb - la) > limit) return limit + 1;
    size_t prev2[65], prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        size_t best = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t v = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (prev[j] + 1 < v) v = prev[j] + 1;
            if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < v)
                v = prev2[j - 2] + 1;
            cur[j] = v;
            if (v < best) best = v;
        }
        if (best > limit) return limit + 1;
        memcpy(prev2, prev, sizeof prev);
        memcpy(prev, cur, sizeof cur);
    }
    return prev[lb];
}

const char *diag_suggest(const char *name, const char *const *cands, size_t n) {
    size_t len = strlen(name);
    /* No guesses for one- and two-letter names (every short name is "close"); one edit
     * for names up to 5 letters, two up to 8, three beyond. */
    if (len <= 2) return NULL;
    size_t limit = len <= 5 ? 1 : len <= 8 ? 2 : 3;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (size_t i = 0; i < n; i++) {
        if (!cands[i] || strcmp(cands[i], name) == 0) continue;
        size_t dist = edit_distance(name, cands[i], limit);
        if (dist < best_d) {
            best_d = dist;
            best = cands[i];
        }
    }
    return best;
}
