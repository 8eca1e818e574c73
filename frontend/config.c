/*
 * config.c: the train and cluster settings, cluster presets and -D overrides.
 *
 * Every setting has one entry in `keys` below: its block, name, type and where it lives
 * in TrainCfg/ClusterCfg. The same table serves the file's `train {}`/`cluster {}` blocks
 * and the command line's `-D train.batch=256`, so the two can never disagree about which
 * keys exist, and an unknown key is answered with the list of valid ones.
 *
 * Resolution order (docs/language.md, "Defaults"):
 *   1. the built-in defaults, with the cluster preset (`-D cluster.preset`, else the file's
 *      `preset`, else "cpu") filling the hardware numbers;
 *   2. the optimizer (`-D train.optimizer`, else the file's, else sgd) filling its
 *      hyper-parameter defaults;
 *   3. the file's settings, in order;
 *   4. the -D overrides, in order.
 * Then the result is checked as a whole (positive sizes, batch divisible by micro-batches,
 * sane optimizer constants); an error points at the setting that supplied the bad value,
 * in the file or on the command line.
 *
 * Preset numbers and their sources are documented in docs/language.md ("Cluster presets");
 * a preset may also be a JSON file (preset.c, docs/presets.md), the files in presets/ being the
 * built-in ones in that format.
 */
#include "ast.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { K_INT, K_FLOAT, K_OPT, K_PRESET, K_MESH, K_RECOMPUTE, K_ZERO, K_PRECISION } KeyType;

typedef struct CfgKey {
    const char *name; /* "train.batch" */
    KeyType type;
    bool train; /* lives in TrainCfg (train.* and plan.*), else in ClusterCfg */
    size_t off;
} CfgKey;

#define TK(n, t)                                                                                   \
    { "train." #n, t, true, offsetof(TrainCfg, n) }
#define CK(n, t)                                                                                   \
    { "cluster." #n, t, false, offsetof(ClusterCfg, n) }
static const CfgKey keys[] = {
    TK(batch, K_INT),
    TK(microbatches, K_INT),
    TK(steps, K_INT),
    TK(seed, K_INT),
    {"train.optimizer", K_OPT, true, offsetof(TrainCfg, opt)},
    TK(lr, K_FLOAT),
    TK(momentum, K_FLOAT),
    TK(beta1, K_FLOAT),
    TK(beta2, K_FLOAT),
    TK(eps, K_FLOAT),
    TK(weight_decay, K_FLOAT),
    TK(zero, K_ZERO),
    {"cluster.preset", K_PRESET, false, offsetof(ClusterCfg, preset)},
    CK(devices, K_INT),
    CK(devices_per_node, K_INT),
    CK(flops, K_FLOAT),
    CK(memory, K_FLOAT),
    CK(bandwidth, K_FLOAT),
    CK(latency, K_FLOAT),
    CK(inter_node_bandwidth, K_FLOAT),
    CK(inter_node_latency, K_FLOAT),
    CK(memory_bandwidth, K_FLOAT),
    {"plan.mesh", K_MESH, true, offsetof(TrainCfg, mesh)},
    {"plan.microbatches", K_INT, true, offsetof(TrainCfg, mesh_m)},
    {"train.recompute", K_RECOMPUTE, true, offsetof(TrainCfg, recompute)},
    TK(precision, K_PRECISION),
};
#define NKEYS ((int)(sizeof keys / sizeof keys[0]))

/* ───────────────────────────── presets ───────────────────────────── */

/* The built-in presets are the files in presets/, compiled in and read by preset.c
 * (fe_cluster_preset); docs/language.md "Cluster presets" says where each number comes from. */

static const char *const opt_names[] = {"sgd", "adam", "adamw"};
/* train.recompute's values, indexed by RecomputePolicy. */
static const char *const recompute_names[] = {"auto", "none", "all"};

/* A train.recompute value's policy, or -1. */
static int recompute_policy(const char *v) {
    for (int i = 0; i < 3; i++)
        if (strcmp(v, recompute_names[i]) == 0) return i;
    return -1;
}

/* The optimizer's hyper-parameter defaults (PyTorch's). */
static void opt_defaults(TrainCfg *t, OptKind k) {
    t->opt = k;
    t->lr = k == OPT_SGD ? 0.01 : 1e-3;
    t->momentum = 0;
    t->beta1 = 0.9;
    t->beta2 = 0.999;
    t->eps = 1e-8;
    t->weight_decay = k == OPT_ADAMW ? 0.01 : 0;
}

/* ───────────────────────────── resolution ───────────────────────────── */

/* Where a key's value came from, for errors: a place in the file or a -D. */
typedef struct Origin {
    SrcLoc loc;
    const FeDefine *def;
} Origin;

typedef struct Cfg {
    Arena *a;
    Diag *d;
    TrainCfg *t;
    ClusterCfg *c;
    Origin org[NKEYS];
    char keylist[1024];
} Cfg;

static int find_key(const char *name) {
    for (int i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0) return i;
    return -1;
}

static void *key_ptr(Cfg *C, int k) {
    return (char *)(keys[k].train ? (void *)C->t : (void *)C->c) + keys[k].off;
}

/* Reports a bad value at its origin: the file's setting or the -D that gave it. */
static void bad_value(Cfg *C, int k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void bad_value(Cfg *C, int k, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const Origin *o = &C->org[k];
    if (o->def) {
        SrcLoc none = {0};
        diag_error(C->d, none, "-D %s=%s: %s", o->def->key, o->def->value, msg);
    } else {
        diag_error(C->d, o->loc, "%s", msg);
    }
}

/* Whether key k is a setting of block `block` ("train", "cluster", "plan"). */
static bool key_in_block(int k, const char *block) {
    size_t n = strlen(block);
    return strncmp(keys[k].name, block, n) == 0 && keys[k].name[n] == '.';
}

/* The keys of one block without its prefix, or every key in full (block NULL). */
static const char *key_list(Cfg *C, const char *block) {
    size_t n = 0;
    C->keylist[0] = 0;
    for (int i = 0; i < NKEYS && n < sizeof C->keylist; i++)
        if (!block || key_in_block(i, block))
            n += (size_t)snprintf(C->keylist + n, sizeof C->keylist - n, "%s%s", n ? ", " : "",
                                  block ? strchr(keys[i].name, '.') + 1 : keys[i].name);
    return C->keylist;
}

/* plan.mesh's value: "SxDxT" (three positive integers, each at most IR_MAX_DEVICES) into
 * mesh[], or "auto" (all 0: the search chooses). False when it is neither. */
static bool parse_mesh(const char *v, int64_t mesh[3]) {
    if (strcmp(v, "auto") == 0) {
        mesh[0] = mesh[1] = mesh[2] = 0;
        return true;
    }
    for (int i = 0; i < 3; i++) {
        if (!isdigit((unsigned char)*v)) return false;
        int64_t x = 0;
        while (isdigit((unsigned char)*v) && x <= IR_MAX_DEVICES)
            x = 10 * x + (*v++ - '0');
        if (x < 1 || x > IR_MAX_DEVICES || *v != (i < 2 ? 'x' : '\0')) return false;
        mesh[i] = x;
        v += i < 2;
    }
    return true;
}

/* train.zero's value: "0", "1", "2", "3" or "auto" (TRAIN_ZERO_AUTO) into *z; anything else is
 * reported at the value's origin (key k) with the values it may take. Stage 3 runs in the C
 * trainer in f32; codegen refuses it for CUDA and bf16 (cg_plan_supported). */
static const char *const zero_names[] = {"0", "1", "2", "3", "auto"};
static void set_zero(Cfg *C, int k, const char *v) {
    for (int i = 0; i < 5; i++) {
        if (strcmp(v, zero_names[i]) != 0) continue;
        C->t->zero = i == 4 ? TRAIN_ZERO_AUTO : i;
        return;
    }
    const char *sug = diag_suggest(v, zero_names, 5);
    if (sug)
        bad_value(C, k, "zero must be 0, 1, 2, 3 or \"auto\", got '%s'; did you mean '%s'?", v,
                  sug);
    else
        bad_value(C, k, "zero must be 0, 1, 2, 3 or \"auto\", got '%s'", v);
}

/* train.precision's value, indexed by Precision: "f32" or "bf16" into C->t->precision; anything
 * else is reported at the value's origin (key k), with a suggestion when one is close. */
static const char *const precision_names[] = {"f32", "bf16"};
static void set_precision(Cfg *C, int k, const char *v) {
    for (int i = 0; i < 2; i++)
        if (strcmp(v, precision_names[i]) == 0) {
            C->t->precision = (Precision)i;
            return;
        }
    const char *sug = diag_suggest(v, precision_names, 2);
    if (sug)
        bad_value(C, k, "precision must be \"f32\" or \"bf16\", got '%s'; did you mean '%s'?", v,
                  sug);
    else
        bad_value(C, k, "precision must be \"f32\" or \"bf16\", got '%s'", v);
}

static void bad_mesh(Cfg *C, int k, const char *v) {
    bad_value(C, k,
              "plan.mesh must be \"SxDxT\" (stages x data replicas x tensor ranks, as in "
              "\"4x8x8\") or \"auto\", got '%s'",
              v);
}

static const char *preset_list(char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < fe_preset_count && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s'%s'", i ? ", " : "", fe_builtin_presets[i].name);
    return buf;
}

static const AstStmt *file_setting(const AstBlock *b, const char *name) {
    const AstStmt *found = NULL;
    for (const AstStmt *s = b ? b->settings : NULL; s; s = s->next)
        if (strcmp(s->name, name) == 0) found = s;
    return found;
}

static const FeDefine *last_define(const FeDefine *defs, int n, const char *key) {
    const FeDefine *found = NULL;
    for (int i = 0; i < n; i++)
        if (strcmp(defs[i].key, key) == 0) found = &defs[i];
    return found;
}

/* A preset file (preset.c): relative to the .mp file's folder when `mp_file` is given
 * (the file's setting), else to the current directory (-D). On error the "cpu" numbers
 * stand in, so later checks do not pile up. */
static void load_preset_file(Cfg *C, int k, const char *name, const char *mp_file) {
    const char *path = name;
    const char *slash = mp_file ? strrchr(mp_file, '/') : NULL;
    if (slash && name[0] != '/')
        path = arena_printf(C->a, "%.*s/%s", (int)(slash - mp_file), mp_file, name);
    char err[512];
    fe_cluster_preset(C->a, "cpu", C->c);
    if (!fe_preset_load(C->a, path, C->c, err, sizeof err))
        bad_value(C, k, "preset file '%s': %s", path, err);
}

/* Step 1: the preset, from -D cluster.preset, the file, or "cpu". */
static void pick_preset(Cfg *C, const Ast *ast, const FeDefine *defs, int ndefs) {
    const FeDefine *dp = last_define(defs, ndefs, "cluster.preset");
    const AstStmt *fp = file_setting(ast->cluster, "preset");
    const char *name = "cpu";
    int k = find_key("cluster.preset");
    if (dp) {
        name = dp->value;
        C->org[k].def = dp;
    } else if (fp && fp->value->kind == EX_STRING) {
        name = fp->value->name;
        C->org[k].loc = fp->value->loc;
    }
    if (fe_preset_is_file(name)) {
        load_preset_file(C, k, name, dp ? NULL : ast->file);
        return;
    }
    if (!fe_cluster_preset(C->a, name, C->c)) {
        char buf[256];
        bad_value(C, k, "unknown cluster preset '%s'; the presets are %s", name,
                  preset_list(buf, sizeof buf));
        fe_cluster_preset(C->a, "cpu", C->c);
    }
}

/* Step 2: the optimizer kind, from -D train.optimizer, the file, or sgd. */
static void pick_optimizer(Cfg *C, const Ast *ast, const FeDefine *defs, int ndefs) {
    const FeDefine *dopt = last_define(defs, ndefs, "train.optimizer");
    const AstStmt *fopt = file_setting(ast->train, "optimizer");
    const char *name = "sgd";
    if (dopt)
        name = dopt->value;
    else if (fopt && (fopt->value->kind == EX_CALL || fopt->value->kind == EX_NAME))
        name = fopt->value->name;
    OptKind k = OPT_SGD;
    for (int i = 0; i < 3; i++)
        if (strcmp(opt_names[i], name) == 0) k = (OptKind)i;
    opt_defaults(C->t, k);
}

/* Stores an optimizer call's arguments: sgd(lr, momentum), adam[w](lr, beta1, beta2, eps,
 * weight_decay), positional or by name. */
static void apply_optimizer(Cfg *C, const AstExpr *v, int key) {
    int kind = -1;
    for (int i = 0; i < 3; i++)
        if ((v->kind == EX_CALL || v->kind == EX_NAME) && strcmp(opt_names[i], v->name) == 0)
            kind = i;
    if (kind < 0) {
        const char *sug =
            v->kind == EX_CALL || v->kind == EX_NAME ? diag_suggest(v->name, opt_names, 3) : NULL;
        if (sug)
            diag_error(C->d, v->loc, "unknown optimizer '%s'; did you mean '%s'?", v->name, sug);
        else
            diag_error(C->d, v->loc, "optimizer must be sgd(...), adam(...) or adamw(...)");
        return;
    }
    C->org[key].loc = v->loc;
    static const char *const sgd_args[] = {"lr", "momentum"};
    static const char *const adam_args[] = {"lr", "beta1", "beta2", "eps", "weight_decay"};
    const char *const *names = kind == OPT_SGD ? sgd_args : adam_args;
    int nnames = kind == OPT_SGD ? 2 : 5, pos = 0;
    bool given[5] = {0};
    for (const AstArg *a = v->args; a; a = a->next) {
        int slot = -1;
        if (!a->key)
            slot = pos < nnames ? pos : -1, pos++;
        else
            for (int i = 0; i < nnames; i++)
                if (strcmp(names[i], a->key) == 0) slot = i;
        if (slot < 0) {
            const char *sug = a->key ? diag_suggest(a->key, names, (size_t)nnames) : NULL;
            if (!a->key)
                diag_error(C->d, a->loc, "too many arguments to %s", v->name);
            else if (sug)
                diag_error(C->d, a->key_loc, "%s has no argument '%s'; did you mean '%s'?", v->name,
                           a->key, sug);
            else
                diag_error(C->d, a->key_loc, "%s has no argument '%s'", v->name, a->key);
            continue;
        }
        if (given[slot]) {
            diag_error(C->d, a->loc, "argument '%s' of %s given twice", names[slot], v->name);
            continue;
        }
        given[slot] = true;
        if (a->value->kind != EX_INT && a->value->kind != EX_FLOAT) {
            diag_error(C->d, a->value->loc, "argument '%s' of %s must be a number", names[slot],
                       v->name);
            continue;
        }
        char full[64];
        snprintf(full, sizeof full, "train.%s", names[slot]);
        int k = find_key(full);
        *(double *)key_ptr(C, k) = a->value->fval;
        C->org[k].loc = a->value->loc;
        C->org[k].def = NULL;
    }
}

/* Step 3: one `key = value;` of a train or cluster block. */
static void apply_setting(Cfg *C, const AstStmt *s, const char *block, const AstStmt **seen) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", block, s->name);
    int k = find_key(full);
    if (k < 0) {
        const char *cands[NKEYS];
        size_t n = 0;
        for (int i = 0; i < NKEYS; i++)
            if (key_in_block(i, block)) cands[n++] = strchr(keys[i].name, '.') + 1;
        const char *sug = diag_suggest(s->name, cands, n);
        if (sug)
            diag_error(C->d, s->name_loc, "unknown %s setting '%s'; did you mean '%s'?", block,
                       s->name, sug);
        else
            diag_error(C->d, s->name_loc, "unknown %s setting '%s'; the settings are %s", block,
                       s->name, key_list(C, block));
        return;
    }
    if (seen[k]) {
        diag_error(C->d, s->name_loc, "'%s' is set twice", s->name);
        diag_note(C->d, seen[k]->name_loc, "first set here");
        return;
    }
    seen[k] = s;
    const AstExpr *v = s->value;
    switch (keys[k].type) {
    case K_OPT: apply_optimizer(C, v, k); return;
    case K_MESH:
        C->org[k].loc = v->loc;
        C->org[k].def = NULL;
        C->t->mesh_loc = v->loc;
        if (v->kind != EX_STRING)
            diag_error(C->d, v->loc, "mesh must be a string, as in mesh = \"4x8x8\"");
        else if (!parse_mesh(v->name, C->t->mesh))
            bad_mesh(C, k, v->name);
        return;
    case K_PRESET:
        if (v->kind != EX_STRING)
            diag_error(C->d, v->loc, "preset must be a string, as in preset = \"h100-nvlink\"");
        return; /* applied in step 1 */
    case K_RECOMPUTE:
        if (v->kind != EX_STRING || recompute_policy(v->name) < 0)
            diag_error(C->d, v->loc, "recompute must be \"none\", \"auto\" or \"all\"");
        else
            C->t->recompute = (RecomputePolicy)recompute_policy(v->name);
        break;
    case K_ZERO: {
        C->org[k].loc = v->loc;
        C->org[k].def = NULL;
        char num[32] = "";
        if (v->kind == EX_INT) snprintf(num, sizeof num, "%lld", (long long)v->ival);
        if (v->kind == EX_INT || v->kind == EX_STRING)
            set_zero(C, k, v->kind == EX_STRING ? v->name : num);
        else
            bad_value(C, k, "zero must be 0, 1, 2, 3 or \"auto\"");
        return;
    }
    case K_PRECISION:
        C->org[k].loc = v->loc;
        C->org[k].def = NULL;
        if (v->kind == EX_STRING)
            set_precision(C, k, v->name);
        else
            bad_value(C, k, "precision must be a string, \"f32\" or \"bf16\"");
        return;
    case K_INT:
        if (v->kind != EX_INT) {
            diag_error(C->d, v->loc, "'%s' must be an integer", s->name);
            return;
        }
        *(int64_t *)key_ptr(C, k) = v->ival;
        break;
    case K_FLOAT:
        if (v->kind != EX_INT && v->kind != EX_FLOAT) {
            diag_error(C->d, v->loc, "'%s' must be a number", s->name);
            return;
        }
        *(double *)key_ptr(C, k) = v->fval;
        break;
    }
    C->org[k].loc = v->loc;
    C->org[k].def = NULL;
}

/* Step 4: one -D key=value. */
static void apply_define(Cfg *C, const FeDefine *def) {
    SrcLoc none = {0};
    int k = find_key(def->key);
    if (k < 0) {
        const char *cands[NKEYS];
        for (int i = 0; i < NKEYS; i++)
            cands[i] = keys[i].name;
        const char *sug = diag_suggest(def->key, cands, NKEYS);
        if (sug)
            diag_error(C->d, none, "-D %s: unknown setting '%s'; did you mean '%s'?", def->key,
                       def->key, sug);
        else
            diag_error(C->d, none, "-D %s: unknown setting '%s'; the settings are %s", def->key,
                       def->key, key_list(C, NULL));
        return;
    }
    C->org[k].def = def;
    const char *v = def->value;
    char *end = NULL;
    errno = 0;
    switch (keys[k].type) {
    case K_PRESET: return; /* applied in step 1 */
    case K_RECOMPUTE:
        if (recompute_policy(v) < 0)
            diag_error(C->d, none, "-D %s=%s: expected none, auto or all", def->key, v);
        else
            C->t->recompute = (RecomputePolicy)recompute_policy(v);
        return;
    case K_ZERO: set_zero(C, k, v); return;
    case K_PRECISION: set_precision(C, k, v); return;
    case K_MESH:
        C->t->mesh_loc = none;
        if (!parse_mesh(v, C->t->mesh)) bad_mesh(C, k, v);
        return;
    case K_OPT:
        for (int i = 0; i < 3; i++)
            if (strcmp(v, opt_names[i]) == 0) return; /* applied in step 2 */
        const char *sug = diag_suggest(v, opt_names, 3);
        if (sug)
            diag_error(C->d, none, "-D %s=%s: unknown optimizer '%s'; did you mean '%s'?", def->key,
                       v, v, sug);
        else
            diag_error(C->d, none, "-D %s=%s: the optimizers are sgd, adam and adamw", def->key, v);
        return;
    case K_INT: {
        /* Spaces are refused on both sides (strtoll alone skips leading ones), as in the file. */
        long long x = isspace((unsigned char)*v) ? 0 : strtoll(v, &end, 10);
        if (!*v || !end || *end)
            diag_error(C->d, none, "-D %s=%s: expected an integer", def->key, v);
        else if (errno == ERANGE)
            diag_error(C->d, none, "-D %s=%s: integer out of range (the %s is %lld)", def->key, v,
                       x < 0 ? "smallest" : "largest", x);
        else
            *(int64_t *)key_ptr(C, k) = x;
        return;
    }
    case K_FLOAT: {
        double x = isspace((unsigned char)*v) ? 0 : strtod(v, &end);
        if (!*v || !end || *end || (!isfinite(x) && errno != ERANGE))
            diag_error(C->d, none, "-D %s=%s: expected a number", def->key, v);
        else if (errno == ERANGE)
            diag_error(C->d, none, "-D %s=%s: number out of range", def->key, v);
        else
            *(double *)key_ptr(C, k) = x;
        return;
    }
    }
}

/* ───────────────────────────── checks ───────────────────────────── */

static void need_int(Cfg *C, const char *key, int64_t lo, int64_t hi) {
    int k = find_key(key);
    int64_t v = *(int64_t *)key_ptr(C, k);
    if (v < lo)
        bad_value(C, k, "%s must be at least %lld, got %lld", strchr(key, '.') + 1, (long long)lo,
                  (long long)v);
    else if (v > hi)
        bad_value(C, k, "%s must be at most %lld, got %lld", strchr(key, '.') + 1, (long long)hi,
                  (long long)v);
}

/* An upper bound on a float setting, so the sizes and times derived from it stay finite and
 * fit the integers they are printed as. */
static void need_float_max(Cfg *C, const char *key, double hi) {
    int k = find_key(key);
    double v = *(double *)key_ptr(C, k);
    if (isfinite(v) && v > hi)
        bad_value(C, k, "%s must be at most %g, got %g", strchr(key, '.') + 1, hi, v);
}

/* lo < v (open) or lo <= v; v < hi when hi > 0. */
static void need_float(Cfg *C, const char *key, double lo, bool lo_open, double hi) {
    int k = find_key(key);
    double v = *(double *)key_ptr(C, k);
    bool ok = isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi <= 0 || v < hi);
    if (ok) return;
    const char *n = strchr(key, '.') + 1;
    if (hi > 0)
        bad_value(C, k, "%s must be in [%g, %g), got %g", n, lo, hi, v);
    else
        bad_value(C, k, "%s must be %s %g, got %g", n, lo_open ? "greater than" : "at least", lo,
                  v);
}

/* plan.mesh against the devices and the batch, plan.microbatches against the mesh's
 * replicas; what depends on the model (stages ≤ layers, splits) is the planner's. */
static void check_mesh(Cfg *C) {
    const TrainCfg *t = C->t;
    int km = find_key("plan.mesh"), kb = find_key("plan.microbatches");
    need_int(C, "plan.microbatches", 0, IR_MAX_MICROBATCHES);
    if (t->mesh[0] == 0) {
        if (t->mesh_m > 0)
            bad_value(C, kb,
                      "plan.microbatches needs plan.mesh (train.microbatches pins the "
                      "micro-batches of the search)");
        return;
    }
    long long S = t->mesh[0], d = t->mesh[1], tt = t->mesh[2], D = C->c->devices;
    if (S * d * tt != D) {
        bad_value(C, km, "plan.mesh %lldx%lldx%lld is %lld devices, but cluster.devices is %lld", S,
                  d, tt, S * d * tt, D);
        return;
    }
    if (t->batch % d) {
        bad_value(C, km,
                  "plan.mesh %lldx%lldx%lld: %lld data replicas do not divide the batch "
                  "(%lld)",
                  S, d, tt, d, (long long)t->batch);
        return;
    }
    long long per = (long long)t->batch / d;
    if (t->mesh_m > 0 && per % t->mesh_m)
        bad_value(C, kb,
                  "plan.microbatches %lld does not divide the %lld samples of each of "
                  "the %lld data replicas of plan.mesh",
                  (long long)t->mesh_m, per, d);
}

static void check_config(Cfg *C) {
    need_int(C, "train.batch", 1, IR_MAX_BATCH);
    need_int(C, "train.microbatches", 0, IR_MAX_MICROBATCHES); /* 0: the planner chooses m */
    need_int(C, "train.steps", 1, INT64_MAX);
    need_int(C, "train.seed", 0, INT64_MAX);
    const TrainCfg *t = C->t;
    if (t->batch >= 1 && t->microbatches >= 1 && t->batch % t->microbatches != 0)
        bad_value(C, find_key("train.microbatches"),
                  "the batch (%lld) is not divisible by microbatches (%lld)", (long long)t->batch,
                  (long long)t->microbatches);
    need_float(C, "train.lr", 0, true, 0);
    need_float(C, "train.momentum", 0, false, 1);
    need_float(C, "train.beta1", 0, false, 1);
    need_float(C, "train.beta2", 0, false, 1);
    need_float(C, "train.eps", 0, true, 0);
    need_float(C, "train.weight_decay", 0, false, 0);
    need_int(C, "cluster.devices", 1, IR_MAX_DEVICES);
    need_int(C, "cluster.devices_per_node", 1, IR_MAX_DEVICES);
    need_float(C, "cluster.flops", 0, true, 0);
    need_float(C, "cluster.memory", 0, true, 0);
    need_float(C, "cluster.bandwidth", 0, true, 0);
    need_float(C, "cluster.latency", 0, false, 0);
    need_float(C, "cluster.inter_node_bandwidth", 0, true, 0);
    need_float(C, "cluster.inter_node_latency", 0, false, 0);
    need_float(C, "cluster.memory_bandwidth", 0, true, 0);
    /* 1 EB of memory, 1 EB/s links, 10^21 FLOP/s and 1000 s of latency are beyond any device */
    need_float_max(C, "cluster.flops", 1e21);
    need_float_max(C, "cluster.memory", 1e18);
    need_float_max(C, "cluster.bandwidth", 1e18);
    need_float_max(C, "cluster.inter_node_bandwidth", 1e18);
    need_float_max(C, "cluster.memory_bandwidth", 1e18);
    need_float_max(C, "cluster.latency", 1e3);
    need_float_max(C, "cluster.inter_node_latency", 1e3);
    check_mesh(C);
}

bool fe_lower_config(Arena *a, Diag *d, const Ast *ast, const FeDefine *defs, int ndefs,
                     TrainCfg *t, ClusterCfg *c) {
    int errors0 = d->errors;
    Cfg C = {.a = a, .d = d, .t = t, .c = c};
    memset(t, 0, sizeof *t);
    memset(c, 0, sizeof *c);
    t->batch = 32;
    t->microbatches = 0; /* not set: the planner searches m (docs/cost-model.md) */
    t->steps = 100;
    t->seed = 1;
    c->devices = 1;
    pick_preset(&C, ast, defs, ndefs);
    pick_optimizer(&C, ast, defs, ndefs);
    const AstStmt *seen[NKEYS] = {0};
    for (const AstStmt *s = ast->train ? ast->train->settings : NULL; s; s = s->next)
        apply_setting(&C, s, "train", seen);
    for (const AstStmt *s = ast->cluster ? ast->cluster->settings : NULL; s; s = s->next)
        apply_setting(&C, s, "cluster", seen);
    for (const AstStmt *s = ast->plan ? ast->plan->settings : NULL; s; s = s->next)
        apply_setting(&C, s, "plan", seen);
    for (int i = 0; i < ndefs; i++)
        apply_define(&C, &defs[i]);
    if (d->errors == errors0) check_config(&C);
    return d->errors == errors0;
}

void fe_config_dump(const TrainCfg *t, const ClusterCfg *c, FILE *out) {
    for (int k = 0; k < NKEYS; k++) {
        const void *p =
            (const char *)(keys[k].train ? (const void *)t : (const void *)c) + keys[k].off;
        fprintf(out, "%s = ", keys[k].name);
        switch (keys[k].type) {
        case K_INT: fprintf(out, "%lld\n", (long long)*(const int64_t *)p); break;
        case K_FLOAT: fprintf(out, "%.10g\n", *(const double *)p); break;
        case K_OPT: fprintf(out, "%s\n", opt_names[t->opt]); break;
        case K_PRESET: fprintf(out, "\"%s\"\n", c->preset ? c->preset : ""); break;
        case K_RECOMPUTE: fprintf(out, "\"%s\"\n", recompute_names[t->recompute]); break;
        case K_PRECISION: fprintf(out, "\"%s\"\n", precision_names[t->precision]); break;
        case K_ZERO:
            if (t->zero == TRAIN_ZERO_AUTO)
                fprintf(out, "\"auto\"\n");
            else
                fprintf(out, "%lld\n", (long long)t->zero);
            break;
        case K_MESH:
            if (t->mesh[0] > 0)
                fprintf(out, "\"%lldx%lldx%lld\"\n", (long long)t->mesh[0], (long long)t->mesh[1],
                        (long long)t->mesh[2]);
            else
                fprintf(out, "\"auto\"\n");
            break;
        }
    }
}
