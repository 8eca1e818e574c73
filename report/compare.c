/*
 * compare.c: `mpcc compare PLAN.json PROFILE.json` — how far a plan's times were from a run's.
 *
 * The plan is the JSON report (`mpcc --report-json`): per layer its predicted seconds for one
 * micro-batch's forward and backward on one device (fwd_time, bwd_time) and the predicted
 * step (totals.step_time). The profile is a trainer's `--profile` (docs/runtime.md): the
 * steady-state step it measured (measured_step_s, warm-up excluded) and, per rank, per layer
 * of its stage, the measured seconds per micro-batch (measured_fwd_s, measured_bwd_s). A
 * layer held by several ranks (its stage's replicas and tensor ranks) is the mean of them.
 *
 * The table lists every layer of the plan with both times and their ratio, sorted by how much
 * the layer's error moves the step: |measured − predicted| of forward plus backward, times
 * the micro-batches per step. Layers the profile lacks (a device run without --profile) show
 * "-" and sort last. A profile naming a layer the plan has not is refused: it belongs to
 * another model.
 */
#include "report_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct Row {
    const char *name;
    int stage;
    double pf, pb; /* predicted seconds per micro-batch: forward, backward */
    double mf, mb; /* measured, the mean over the ranks that hold the layer */
    int nmeasured; /* ranks that measured it */
    double off;    /* seconds per step the error moves the step by */
} Row;

typedef struct Cmp {
    char *err;
    size_t nerr;
    bool failed;
} Cmp;

static void fail(Cmp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(Cmp *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->nerr, fmt, ap);
    va_end(ap);
}

/* The JSON in `path`, or NULL after fail() naming the file. */
static cJSON *read_json(Cmp *c, const char *path) {
    const char *why = NULL;
    char *text = report_slurp(path, &why);
    if (!text) {
        fail(c, "%s: cannot open: %s", path, why);
        return NULL;
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) fail(c, "%s: not valid JSON", path);
    return j;
}

/* Field `key` of object `o` as a number; fail() naming the file and the field if not. */
static double num(Cmp *c, const char *file, const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0) {
        fail(c, "%s: missing or invalid number \"%s\"", file, key);
        return 0;
    }
    return v->valuedouble;
}

static const char *str(Cmp *c, const char *file, const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) {
        fail(c, "%s: missing string \"%s\"", file, key);
        return "";
    }
    return v->valuestring;
}

static const cJSON *array(Cmp *c, const char *file, const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(v)) fail(c, "%s: missing array \"%s\"", file, key);
    return v;
}

/* The plan's layers into rows[] (malloc'd); their count, or -1 after fail(). */
static int plan_rows(Cmp *c, const char *file, const cJSON *plan, Row **rows) {
    const cJSON *layers = array(c, file, plan, "layers"), *l;
    int n = cJSON_GetArraySize(layers), i = 0;
    *rows = c->failed ? NULL : calloc((size_t)(n > 0 ? n : 1), sizeof **rows);
    if (!*rows) return -1;
    cJSON_ArrayForEach(l, layers) {
        Row *r = &(*rows)[i++];
        r->name = str(c, file, l, "name");
        r->stage = (int)num(c, file, l, "stage");
        r->pf = num(c, file, l, "fwd_time"), r->pb = num(c, file, l, "bwd_time");
    }
    return c->failed ? -1 : n;
}

/* Adds one rank's measured layers to the rows. */
static void add_rank(Cmp *c, const char *file, const cJSON *rank, Row *rows, int n) {
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(rank, "layers"), *l;
    cJSON_ArrayForEach(l, layers) {
        const char *name = str(c, file, l, "name");
        int i = 0;
        while (i < n && strcmp(rows[i].name, name) != 0)
            i++;
        if (c->failed) return;
        if (i == n) {
            fail(c, "%s: layer '%.64s' is not in the plan (a profile of another model?)", file,
                 name);
            return;
        }
        rows[i].mf += num(c, file, l, "measured_fwd_s");
        rows[i].mb += num(c, file, l, "measured_bwd_s");
        rows[i].nmeasured++;
    }
}

static int by_off(const void *a, const void *b) {
    const Row *x = a, *y = b;
    if (x->nmeasured != y->nmeasured && (!x->nmeasured || !y->nmeasured))
        return x->nmeasured ? -1 : 1;
    return x->off > y->off ? -1 : x->off < y->off ? 1 : strcmp(x->name, y->name);
}

/* "4.32×", or "-" when either side is missing. */
static const char *ratio(Arena *a, double measured, double predicted, int have) {
    if (!have || predicted <= 0) return "-";
    return arena_printf(a, "%.3g×", measured / predicted);
}

static void print_rows(Row *rows, int n, FILE *out) {
    static const char *const head[] = {"layer",        "stage", "fwd predicted",
                                       "fwd measured", "fwd ×", "bwd predicted",
                                       "bwd measured", "bwd ×", "off/step"};
    Arena a = {0};
    Table t;
    table_init(&t, &a, "lrrrrrrrr", head);
    for (int i = 0; i < n; i++) {
        const Row *r = &rows[i];
        char b[5][48];
        bool have = r->nmeasured > 0;
        table_add(&t, "%s", r->name);
        table_add(&t, "%d", r->stage);
        table_add(&t, "%s", units_time(b[0], 48, r->pf));
        table_add(&t, "%s", have ? units_time(b[1], 48, r->mf) : "-");
        table_add(&t, "%s", ratio(&a, r->mf, r->pf, have));
        table_add(&t, "%s", units_time(b[2], 48, r->pb));
        table_add(&t, "%s", have ? units_time(b[3], 48, r->mb) : "-");
        table_add(&t, "%s", ratio(&a, r->mb, r->pb, have));
        table_add(&t, "%s", have ? units_time(b[4], 48, r->off) : "-");
    }
    table_print(&t, out);
    arena_free(&a);
}

/* Both files read; the table printed. */
static void compare(Cmp *c, const char *pf, const cJSON *plan, const char *mf, const cJSON *prof,
                    FILE *out) {
    Row *rows = NULL;
    int n = plan_rows(c, pf, plan, &rows);
    double m = num(c, pf, plan, "microbatches");
    double pstep = num(c, pf, cJSON_GetObjectItemCaseSensitive(plan, "totals"), "step_time");
    double mstep = num(c, mf, prof, "measured_step_s");
    const cJSON *ranks = array(c, mf, prof, "ranks"), *rank;
    cJSON_ArrayForEach(rank, ranks) add_rank(c, mf, rank, rows, n > 0 ? n : 0);
    if (!c->failed) {
        for (int i = 0; i < n; i++) {
            Row *r = &rows[i];
            if (r->nmeasured) r->mf /= r->nmeasured, r->mb /= r->nmeasured;
            r->off = m * (fabs(r->mf - r->pf) + fabs(r->mb - r->pb));
        }
        qsort(rows, (size_t)n, sizeof *rows, by_off);
        char b[2][48];
        fprintf(out, "compare: %s against %s\n  step: predicted %s, measured %s", pf, mf,
                units_time(b[0], 48, pstep), mstep > 0 ? units_time(b[1], 48, mstep) : "-");
        if (mstep > 0 && pstep > 0) fprintf(out, " (%.3g× the prediction)", mstep / pstep);
        fprintf(out, "\n  per layer, seconds per micro-batch on one device, largest error "
                     "first:\n");
        print_rows(rows, n, out);
    }
    free(rows);
}

bool report_compare(const char *plan_path, const char *profile_path, FILE *out, char *err,
                    size_t nerr) {
    Cmp c = {err, nerr, false};
    cJSON *plan = read_json(&c, plan_path);
    cJSON *prof = c.failed ? NULL : read_json(&c, profile_path);
    if (!c.failed) compare(&c, plan_path, plan, profile_path, prof, out);
    cJSON_Delete(plan);
    cJSON_Delete(prof);
    return !c.failed;
}
