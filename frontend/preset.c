/*
 * preset.c: cluster presets read from a JSON file (docs/presets.md).
 *
 * `cluster { preset = "mycluster.json"; }` and `-D cluster.preset=mycluster.json` name a
 * file instead of a built-in preset when the value ends in ".json" or contains a '/'. The
 * file is what `mpcc-calibrate` writes, and the four built-in presets are the files in presets/,
 * compiled in (cmake/EmbedPresets.cmake) and read here the same way (fe_cluster_preset).
 *
 * The reader is strict, because a preset that is silently half-read plans for a machine
 * that does not exist: every field is checked for presence, type and range, an unknown
 * field is refused (a misspelt optional field would otherwise be ignored), numbers must
 * be finite, and the file may not exceed PRESET_MAX_BYTES. The first problem found is
 * returned as one sentence naming the field ("field 'intra_node.beta_bytes_per_s' must be
 * greater than 0"); config.c prefixes the file name and the place of the setting.
 *
 * Everything kept (the name, the tables) is copied into the compiler's arena; the parsed
 * cJSON tree is freed before returning.
 */
#include "ast.h"
#include "frontend.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PRESET_MAX_BYTES (16L << 20)
#define PRESET_FORMAT 1

typedef struct PReader {
    Arena *a;
    char *err;
    size_t nerr;
    bool failed;
} PReader;

static void fail(PReader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(PReader *r, const char *fmt, ...) {
    if (r->failed) return;
    r->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->nerr, fmt, ap);
    va_end(ap);
}

/* Reads the whole file, refusing one over PRESET_MAX_BYTES; NULL after fail(). */
static char *slurp(PReader *r, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(r, "cannot open: %s", strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    struct stat st;
    long n = -1;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0)
        fail(r, "cannot read: not a regular file");
    else if (n > PRESET_MAX_BYTES)
        fail(r, "larger than %ld MiB; not a preset", PRESET_MAX_BYTES >> 20);
    else if (!(buf = malloc((size_t)n + 1)))
        fail(r, "out of memory");
    else if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        fail(r, "cannot read: %s", strerror(errno));
    else
        buf[n] = 0;
    fclose(f);
    if (r->failed) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* The member `name` of object `o`; fails when it is required and absent. */
static const cJSON *member(PReader *r, const cJSON *o, const char *path, const char *name,
                           bool required) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!v && required) fail(r, "missing field '%s%s'", path, name);
    return v;
}

/* Refuses members of `o` not in the NULL-terminated `known`. */
static void only_known(PReader *r, const cJSON *o, const char *path, const char *const *known) {
    for (const cJSON *m = o ? o->child : NULL; m; m = m->next) {
        bool ok = false;
        for (int i = 0; known[i]; i++)
            ok |= m->string && strcmp(m->string, known[i]) == 0;
        if (!ok) fail(r, "unknown field '%s%s'", path, m->string ? m->string : "?");
    }
}

/* A number field: finite, > 0 (positive) or >= 0. Returns 0 when absent or bad. */
static double number(PReader *r, const cJSON *o, const char *path, const char *name, bool required,
                     bool positive) {
    const cJSON *v = member(r, o, path, name, required);
    if (!v) return 0;
    if (!cJSON_IsNumber(v))
        fail(r, "field '%s%s' must be a number", path, name);
    else if (!isfinite(v->valuedouble))
        fail(r, "field '%s%s' must be finite", path, name);
    else if (positive ? !(v->valuedouble > 0) : v->valuedouble < 0)
        fail(r, "field '%s%s' must be %s 0, got %g", path, name,
             positive ? "greater than" : "at least", v->valuedouble);
    else
        return v->valuedouble;
    return 0;
}

/* An integer field in [1, 2^40]. */
static int64_t integer(PReader *r, const cJSON *o, const char *path, const char *name) {
    double x = number(r, o, path, name, true, true);
    if (r->failed) return 0;
    if (x != floor(x) || x > 1099511627776.0) {
        fail(r, "field '%s%s' must be a whole number of at most 2^40, got %g", path, name, x);
        return 0;
    }
    return (int64_t)x;
}

static const char *string(PReader *r, const cJSON *o, const char *path, const char *name) {
    const cJSON *v = member(r, o, path, name, true);
    if (!v) return NULL;
    if (!cJSON_IsString(v) || !v->valuestring[0]) {
        fail(r, "field '%s%s' must be a non-empty string", path, name);
        return NULL;
    }
    return v->valuestring;
}

static const cJSON *object(PReader *r, const cJSON *o, const char *name, bool required) {
    const cJSON *v = member(r, o, "", name, required);
    if (v && !cJSON_IsObject(v)) {
        fail(r, "field '%s' must be an object", name);
        return NULL;
    }
    return v;
}

static const cJSON *array(PReader *r, const cJSON *o, const char *name) {
    const cJSON *v = member(r, o, "", name, false);
    if (v && !cJSON_IsArray(v)) {
        fail(r, "field '%s' must be an array", name);
        return NULL;
    }
    return v;
}

/* intra_node / inter_node: {alpha_s, beta_bytes_per_s}. */
static void link(PReader *r, const cJSON *root, const char *name, double *alpha, double *beta) {
    static const char *const known[] = {"alpha_s", "beta_bytes_per_s", NULL};
    const cJSON *o = object(r, root, name, true);
    if (!o) return;
    char path[32];
    snprintf(path, sizeof path, "%s.", name);
    only_known(r, o, path, known);
    *alpha = number(r, o, path, "alpha_s", true, false);
    *beta = number(r, o, path, "beta_bytes_per_s", true, true);
}

int fe_preset_coll_kind(const char *name) {
    static const char *const names[] = {"all-reduce", "all-gather", "reduce-scatter", "all-to-all",
                                        "send/recv"};
    for (int i = 0; i < 5; i++)
        if (strcmp(names[i], name) == 0) return 2 + i; /* COLL_ALLREDUCE … COLL_SENDRECV */
    return -1;
}

/* collectives[i]: {op, link, group, alpha_s, beta_bytes_per_s}. */
static void coll_entry(PReader *r, const cJSON *e, int i, PresetColl *out) {
    static const char *const known[] = {"op", "link", "group", "alpha_s", "beta_bytes_per_s", NULL};
    char path[48];
    snprintf(path, sizeof path, "collectives[%d].", i);
    if (!cJSON_IsObject(e)) {
        fail(r, "field 'collectives[%d]' must be an object", i);
        return;
    }
    only_known(r, e, path, known);
    const char *op = string(r, e, path, "op"), *lk = string(r, e, path, "link");
    if (op && (out->coll = fe_preset_coll_kind(op)) < 0)
        fail(r,
             "field '%sop' must be all-reduce, all-gather, reduce-scatter, all-to-all or "
             "send/recv, got '%s'",
             path, op);
    if (lk && strcmp(lk, "intra") != 0 && strcmp(lk, "inter") != 0)
        fail(r, "field '%slink' must be \"intra\" or \"inter\", got '%s'", path, lk);
    out->inter = lk && strcmp(lk, "inter") == 0;
    out->group = integer(r, e, path, "group");
    out->alpha = number(r, e, path, "alpha_s", true, false);
    out->beta = number(r, e, path, "beta_bytes_per_s", true, true);
}

/* gemm[i]: {m, n, k, flops[, flops_nt, flops_tn][, flops_hot, flops_nt_hot, flops_tn_hot]}. */
static void gemm_entry(PReader *r, const cJSON *e, int i, PresetGemm *out) {
    static const char *const known[] = {
        "m", "n", "k", "flops", "flops_nt", "flops_tn", "flops_hot", "flops_nt_hot", "flops_tn_hot",
        NULL};
    char path[48];
    snprintf(path, sizeof path, "gemm[%d].", i);
    if (!cJSON_IsObject(e)) {
        fail(r, "field 'gemm[%d]' must be an object", i);
        return;
    }
    only_known(r, e, path, known);
    out->m = integer(r, e, path, "m");
    out->n = integer(r, e, path, "n");
    out->k = integer(r, e, path, "k");
    out->flops = number(r, e, path, "flops", true, true);
    out->flops_nt = number(r, e, path, "flops_nt", false, true);
    out->flops_tn = number(r, e, path, "flops_tn", false, true);
    out->flops_hot = number(r, e, path, "flops_hot", false, true);
    out->flops_nt_hot = number(r, e, path, "flops_nt_hot", false, true);
    out->flops_tn_hot = number(r, e, path, "flops_tn_hot", false, true);
}

/* ops[i]: {op, fwd_bytes_per_s, bwd_bytes_per_s}: an op kind of the language. */
static void op_entry(PReader *r, const cJSON *e, int i, PresetOp *out) {
    static const char *const known[] = {
        "op", "fwd_bytes_per_s", "bwd_bytes_per_s", "bias_fwd_bytes_per_s", "bias_bwd_bytes_per_s",
        NULL};
    char path[48];
    snprintf(path, sizeof path, "ops[%d].", i);
    if (!cJSON_IsObject(e)) {
        fail(r, "field 'ops[%d]' must be an object", i);
        return;
    }
    only_known(r, e, path, known);
    const char *op = string(r, e, path, "op");
    if (op && (out->op = ir_op_lookup(op)) < 0)
        fail(r, "field '%sop' must be an op of the language (relu, gelu, layernorm, ...), got '%s'",
             path, op);
    out->fwd_bw = number(r, e, path, "fwd_bytes_per_s", true, true);
    out->bwd_bw = number(r, e, path, "bwd_bytes_per_s", true, true);
    out->bias_fwd_bw = number(r, e, path, "bias_fwd_bytes_per_s", false, true);
    out->bias_bwd_bw = number(r, e, path, "bias_bwd_bytes_per_s", false, true);
}

/* grad_overlap: a fraction in [0, 1]. */
static void overlap(PReader *r, const cJSON *root, PresetTables *t) {
    const cJSON *v = member(r, root, "", "grad_overlap", false);
    if (!v) return;
    double x = number(r, root, "", "grad_overlap", false, false);
    if (!r->failed && x > 1) fail(r, "field 'grad_overlap' must be at most 1, got %g", x);
    t->has_overlap = true, t->grad_overlap = x;
    t->grad_overlap_slowdown = number(r, root, "", "grad_overlap_slowdown", false, false);
}

/* optimizer: {sgd, sgd_momentum, adam, adamw}: bytes/s, each optional. */
static void optimizer(PReader *r, const cJSON *root, PresetTables *t) {
    static const char *const known[] = {"sgd", "sgd_momentum", "adam", "adamw", NULL};
    const cJSON *o = object(r, root, "optimizer", false);
    if (!o) return;
    only_known(r, o, "optimizer.", known);
    for (int i = 0; i < 4; i++)
        t->opt_bw[i] = number(r, o, "optimizer.", known[i], false, true);
}

static void tables(PReader *r, const cJSON *root, ClusterCfg *c) {
    PresetTables *t = arena_calloc(r->a, 1, sizeof *t);
    const cJSON *co = array(r, root, "collectives"), *ge = array(r, root, "gemm"),
                *op = array(r, root, "ops");
    t->ncoll = co ? cJSON_GetArraySize(co) : 0;
    t->ngemm = ge ? cJSON_GetArraySize(ge) : 0;
    t->nops = op ? cJSON_GetArraySize(op) : 0;
    PresetColl *pc = arena_calloc(r->a, (size_t)t->ncoll + 1, sizeof *pc);
    PresetGemm *pg = arena_calloc(r->a, (size_t)t->ngemm + 1, sizeof *pg);
    PresetOp *po = arena_calloc(r->a, (size_t)t->nops + 1, sizeof *po);
    int i = 0;
    for (const cJSON *e = co ? co->child : NULL; e && !r->failed; e = e->next, i++)
        coll_entry(r, e, i, &pc[i]);
    i = 0;
    for (const cJSON *e = ge ? ge->child : NULL; e && !r->failed; e = e->next, i++)
        gemm_entry(r, e, i, &pg[i]);
    i = 0;
    for (const cJSON *e = op ? op->child : NULL; e && !r->failed; e = e->next, i++)
        op_entry(r, e, i, &po[i]);
    overlap(r, root, t);
    optimizer(r, root, t);
    t->cache_bytes = number(r, root, "", "cache_bytes", false, true);
    t->coll = pc;
    t->gemm = pg;
    t->ops = po;
    /* A file that states no measured table prices GEMMs at the flat flops.f32. */
    bool opt = t->opt_bw[0] > 0 || t->opt_bw[1] > 0 || t->opt_bw[2] > 0 || t->opt_bw[3] > 0;
    c->tables =
        t->ncoll || t->ngemm || t->nops || t->has_overlap || opt || t->cache_bytes > 0 ? t : NULL;
}

static void read_root(PReader *r, const cJSON *root, ClusterCfg *c) {
    static const char *const known[] = {"format",
                                        "name",
                                        "source",
                                        "devices_per_node",
                                        "flops",
                                        "memory_bytes",
                                        "memory_bandwidth_bytes_per_s",
                                        "intra_node",
                                        "inter_node",
                                        "collectives",
                                        "gemm",
                                        "ops",
                                        "grad_overlap_slowdown",
                                        "optimizer",
                                        "grad_overlap",
                                        "cache_bytes",
                                        NULL};
    static const char *const known_flops[] = {"f32", "bf16", NULL};
    if (!cJSON_IsObject(root)) {
        fail(r, "not a JSON object");
        return;
    }
    const cJSON *fmt = member(r, root, "", "format", true);
    if (fmt && !(cJSON_IsNumber(fmt) && fmt->valuedouble == PRESET_FORMAT))
        fail(r, "field 'format' must be %d (this mpcc reads preset format %d)", PRESET_FORMAT,
             PRESET_FORMAT);
    only_known(r, root, "", known);
    const char *name = string(r, root, "", "name");
    string(r, root, "", "source");
    c->devices_per_node = integer(r, root, "", "devices_per_node");
    const cJSON *fl = object(r, root, "flops", true);
    only_known(r, fl, "flops.", known_flops);
    c->flops = fl ? number(r, fl, "flops.", "f32", true, true) : 0;
    c->flops_bf16 = fl ? number(r, fl, "flops.", "bf16", false, true) : 0;
    c->memory = number(r, root, "", "memory_bytes", true, true);
    c->memory_bandwidth = number(r, root, "", "memory_bandwidth_bytes_per_s", false, true);
    link(r, root, "intra_node", &c->latency, &c->bandwidth);
    link(r, root, "inter_node", &c->inter_node_latency, &c->inter_node_bandwidth);
    if (!r->failed) tables(r, root, c);
    if (!r->failed) c->preset = arena_strdup(r->a, name);
}

/* Parses `text` into `c` (unchanged on error). */
static void parse(PReader *r, const char *text, ClusterCfg *c) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, true);
    if (!root) {
        long off = end && end >= text ? (long)(end - text) : 0;
        long line = 1;
        for (long i = 0; i < off; i++)
            line += text[i] == '\n';
        fail(r, "not valid JSON (near line %ld)", line);
    } else {
        ClusterCfg tmp = *c;
        read_root(r, root, &tmp);
        if (!r->failed) *c = tmp;
    }
    cJSON_Delete(root);
}

bool fe_preset_load(Arena *a, const char *path, ClusterCfg *c, char *err, size_t nerr) {
    PReader r = {a, err, nerr, false};
    char *text = slurp(&r, path);
    if (!text) return false;
    parse(&r, text, c);
    free(text);
    return !r.failed;
}

/* A built-in preset is its file's text, compiled in: a file that does not read is a defect of
 * this build (tests/lit/frontend/preset_files.test reads each), said as such. */
bool fe_cluster_preset(Arena *a, const char *name, ClusterCfg *c) {
    for (int i = 0; i < fe_preset_count; i++) {
        if (strcmp(fe_builtin_presets[i].name, name) != 0) continue;
        char err[512];
        PReader r = {a, err, sizeof err, false};
        parse(&r, fe_builtin_presets[i].text, c);
        if (r.failed) {
            fprintf(stderr, "mpcc: internal error: built-in preset '%s' (presets/%s.json): %s\n",
                    name, name, err);
            exit(70);
        }
        return true;
    }
    return false;
}

bool fe_preset_is_file(const char *value) {
    size_t n = strlen(value);
    return strchr(value, '/') || (n >= 5 && strcmp(value + n - 5, ".json") == 0);
}
