/*
 * measured.c: a trainer's --profile JSON (docs/runtime.md, "Logging and the profile") read
 * against the plan it ran, for the HTML report's predicted-vs-measured view (html_measured.c,
 * docs/report.md).
 *
 * Every figure is steady state, warm-up excluded the trainer's way wherever the profile says
 * how: a layer's forward (backward) per micro-batch is its rank's "layers" entry
 * (measured_fwd_s, measured_bwd_s: the calls after the run's first max(1, n/10) steps, the
 * same figures `mpcc compare` reads). A profile without "layers" entries, and the stage
 * timers that have none, fall back to the timer itself: a timer of `calls` calls whose first
 * took `first_s` costs (seconds − first_s) / (calls − 1) per call. Per rank: the step count is
 * stage.busy's calls; a step is its busy time plus its idle time (stage.idle over the steps).
 * A stage's figures are the mean over its ranks. The step is the profile's measured_step_s
 * when it has one, else the slowest stage's.
 *
 * The profile must come from this plan: its mesh must be the plan's, every layer must have its
 * timer and every layer timer must name a layer; anything else is a one-line error naming the
 * file (a profile from another model or other -D settings would otherwise be drawn against
 * the wrong prediction).
 */
#include "report_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *report_slurp(const char *path, const char **why) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = strerror(errno);
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        *why = "not a regular file";
    else if (st.st_size > REPORT_MAX_INPUT)
        *why = "larger than 256 MiB; not a report or a profile";
    else if (!(buf = malloc((size_t)st.st_size + 1)))
        *why = "out of memory";
    else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        *why = "cannot read it";
        free(buf), buf = NULL;
    } else
        buf[st.st_size] = 0;
    fclose(f);
    return buf;
}

static double num(const cJSON *o, const char *name, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* Steady-state seconds per call of one timer entry. */
static double per_call(const cJSON *t) {
    double s = num(t, "seconds", 0), c = num(t, "calls", 0), first = num(t, "first_s", -1);
    if (c > 1 && first >= 0 && s >= first) return (s - first) / (c - 1); /* else no first_s */
    return c > 0 ? s / c : 0;
}

/* Layer names sorted, to find a timer's layer in O(log n). */
typedef struct NameIdx {
    const char *name;
    int i;
} NameIdx;

static int name_cmp(const void *a, const void *b) {
    return strcmp(((const NameIdx *)a)->name, ((const NameIdx *)b)->name);
}

static int find_layer(const NameIdx *idx, int n, const char *name) {
    NameIdx key = {name, -1};
    const NameIdx *hit = bsearch(&key, idx, (size_t)n, sizeof *idx, name_cmp);
    return hit ? hit->i : -1;
}

typedef struct Acc {
    Measured *m;
    const NameIdx *idx;
    int nlayers;
    int *layer_ranks;    /* ranks that timed each layer */
    double *steady[2];   /* this rank's "layers" entries (forward, backward); < 0: none */
    const char *unknown; /* a layer timer naming no layer of the model */
} Acc;

/* The rank's steady-state per-layer figures ("layers" entries) into A->steady; -1 where the
 * profile has none, so the timer's own figure serves. */
static void read_steady(Acc *A, const cJSON *rank) {
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < A->nlayers; i++)
            A->steady[k][i] = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(rank, "layers")) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
        int i = cJSON_IsString(nm) ? find_layer(A->idx, A->nlayers, nm->valuestring) : -1;
        if (i < 0) continue; /* its timers name the layer too; they report it */
        A->steady[0][i] = num(e, "measured_fwd_s", -1);
        A->steady[1][i] = num(e, "measured_bwd_s", -1);
    }
}

/* One rank's timers into its stage's sums; false when it has no stage.busy. */
static bool add_rank(Acc *A, MeasuredStage *st, const cJSON *rank) {
    const cJSON *timers = cJSON_GetObjectItemCaseSensitive(rank, "timers");
    read_steady(A, rank);
    const cJSON *busy = NULL, *t;
    cJSON_ArrayForEach(t, timers) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "stage.busy")) busy = t;
    }
    double steps = busy ? num(busy, "calls", 0) : 0;
    if (steps < 1) return false;
    double fwd = 0, bwd = 0, opt = 0, idle = 0, b = per_call(busy);
    cJSON_ArrayForEach(t, timers) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (!cJSON_IsString(nm)) continue;
        const char *n = nm->valuestring;
        bool f = !strncmp(n, "fwd.", 4), bk = !strncmp(n, "bwd.", 4);
        if (!strcmp(n, "stage.idle")) idle = num(t, "seconds", 0) / steps;
        if (!strcmp(n, "optimizer")) opt = per_call(t) * num(t, "calls", 0) / steps;
        int i = f || bk ? find_layer(A->idx, A->nlayers, n + 4) : -1;
        if (i < 0 && (f || bk) && !A->unknown) A->unknown = n;
        if (i < 0) continue;
        double pc = A->steady[bk][i] >= 0 ? A->steady[bk][i] : per_call(t);
        double ps = pc * num(t, "calls", 0) / steps;
        MeasuredLayer *L = &A->m->layers[i];
        *(f ? &L->fwd : &L->bwd) += pc;
        *(f ? &fwd : &bwd) += ps;
        if (f) A->layer_ranks[i]++;
        L->have = true;
    }
    st->fwd += fwd, st->bwd += bwd, st->opt += opt, st->idle += idle, st->step += b + idle;
    st->other += b > fwd + bwd + opt ? b - fwd - bwd - opt : 0;
    st->ranks++;
    A->m->steps = (int)steps;
    return true;
}

/* Sums into means: stages over their ranks, layers over the ranks that timed them. */
static void finish(Acc *A, int S) {
    Measured *m = A->m;
    double slowest = 0;
    for (int s = 0; s < S; s++) {
        MeasuredStage *st = &m->stages[s];
        double k = st->ranks ? st->ranks : 1;
        st->fwd /= k, st->bwd /= k, st->opt /= k, st->idle /= k, st->step /= k, st->other /= k;
        if (st->step > slowest) slowest = st->step;
    }
    for (int i = 0; i < A->nlayers; i++)
        if (A->layer_ranks[i] > 1)
            m->layers[i].fwd /= A->layer_ranks[i], m->layers[i].bwd /= A->layer_ranks[i];
    if (!m->step_from_profile) m->step = slowest;
}

/* Checks the mesh and walks the ranks; NULL on success, else why. */
static const char *read_ranks(Acc *A, const IrGraph *g, const cJSON *root, char *why, size_t n) {
    const Plan *p = report_plan(g);
    const cJSON *mesh = cJSON_GetObjectItemCaseSensitive(root, "mesh");
    const cJSON *ranks = cJSON_GetObjectItemCaseSensitive(root, "ranks");
    if (!cJSON_IsObject(mesh) || !cJSON_IsArray(ranks))
        return "not a trainer profile: no \"mesh\" object and \"ranks\" array";
    double S = num(mesh, "S", -1), d = num(mesh, "d", -1), t = num(mesh, "t", -1);
    if (S != p->S || d != p->d || t != p->t) {
        snprintf(why, n,
                 "the profile's mesh is %g×%g×%g but this plan's is %d×%d×%d: give mpcc the "
                 "model and -D settings of the trainer that wrote it",
                 S, d, t, p->S, p->d, p->t);
        return why;
    }
    const cJSON *r;
    cJSON_ArrayForEach(r, ranks) {
        double s = num(r, "stage", -1);
        const cJSON *timers = cJSON_GetObjectItemCaseSensitive(r, "timers");
        if (s < 0 || s >= p->S || s != (int)s || !cJSON_IsArray(timers))
            return "not a trainer profile: a rank without a valid \"stage\" and \"timers\"";
        if (!add_rank(A, &A->m->stages[(int)s], r))
            return "not a trainer profile: a rank without a \"stage.busy\" timer";
    }
    for (int i = 0; i < A->nlayers && !A->unknown; i++)
        if (!A->layer_ranks[i]) {
            snprintf(why, n,
                     "layer '%s' has no timer (fwd.%s): was the profile written by this "
                     "model's trainer?",
                     IR_NODE(g, i)->name, IR_NODE(g, i)->name);
            return why;
        }
    if (A->unknown) {
        snprintf(why, n,
                 "timer '%s' names no layer of this model: was the profile written by "
                 "this model's trainer?",
                 A->unknown);
        return why;
    }
    for (int s = 0; s < p->S; s++)
        if (!A->m->stages[s].ranks) {
            snprintf(why, n, "no rank of stage %d in the profile", s);
            return why;
        }
    return NULL;
}

bool report_measured_load(const IrGraph *g, const char *path, Arena *a, Measured *m, Diag *d) {
    const Plan *p = report_plan(g);
    SrcLoc at = {path, 0, 0, 0};
    const char *why = NULL;
    char buf[512];
    memset(m, 0, sizeof *m);
    m->path = path;
    if (!p) return diag_error(d, at, "no plan to compare the profile with"), false;
    char *text = report_slurp(path, &why);
    if (!text) return diag_error(d, at, "cannot read the profile: %s", why), false;
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        long off = e && e >= text ? (long)(e - text) : 0;
        free(text);
        return diag_error(d, at, "not a trainer profile: invalid JSON near byte %ld", off), false;
    }
    int L = IR_NNODES(g);
    NameIdx *idx = arena_calloc(a, (size_t)L + 1, sizeof *idx);
    for (int i = 0; i < L; i++)
        idx[i] = (NameIdx){IR_NODE(g, i)->name, i};
    qsort(idx, (size_t)L, sizeof *idx, name_cmp);
    m->stages = arena_calloc(a, (size_t)p->S, sizeof *m->stages);
    m->layers = arena_calloc(a, (size_t)L + 1, sizeof *m->layers);
    Acc A = {m,
             idx,
             L,
             arena_calloc(a, (size_t)L + 1, sizeof(int)),
             {arena_calloc(a, (size_t)L + 1, sizeof(double)),
              arena_calloc(a, (size_t)L + 1, sizeof(double))},
             NULL};
    double given = num(root, "measured_step_s", -1);
    m->step_from_profile = given > 0;
    m->trainer_predicted = num(root, "predicted_step_s", -1);
    m->step = given > 0 ? given : 0;
    why = read_ranks(&A, g, root, buf, sizeof buf);
    if (!why) finish(&A, p->S);
    cJSON_Delete(root);
    free(text);
    if (why) diag_error(d, at, "%s", why);
    return !why;
}
