/*
 * lower.c: from the syntax tree to the IrGraph.
 *
 * Lowering walks the model body once, in source order, and appends a node for every op
 * call it meets, inner calls before outer ones, so the node array comes out in a
 * topological order (a name must be defined before it is used). `def` calls and `repeat`
 * blocks are expanded on the spot: the tree is a template and each expansion gets its own
 * scope and its own name prefix. That is where the hierarchical layer names come from:
 *
 *   top level         h = linear(x, 64);                  -> h
 *   nested call       a = relu(linear(x, 64));            -> a.0 (tensor argument 0 of a), a
 *   def call          m = mlp(x);  (mlp: fc1 = ...)       -> m.fc1, ...
 *   def's result      return linear(h, 10);   (in mlp)    -> m (named after the call site)
 *   def call argument m = mlp(relu(x));                   -> m.arg0
 *   repeat            h = repeat 12 as blocks (x = e) {...} -> blocks.3.<stmt>, and the
 *                     returned call of iteration 3 is blocks.3 (a returned def call
 *                     expands straight into blocks.3.<its statements>)
 *   repeat's init     ... (x = relu(e))                   -> blocks.init
 *
 * Statement names are identifiers and generated segments are numbers, `argK` or `init`,
 * so the only way two layers can get one name is a returned def call whose statements
 * share names with the statements around it; every name is checked for uniqueness and
 * such a clash is an error that says how to avoid it. A section name (`as blocks`) is
 * bound in its scope like a value so it cannot be reused.
 *
 * Scopes: the model body is scope 0. A def body sees only its parameters (a def is a
 * function, not a macro). A repeat iteration sees its carried value and everything its
 * enclosing scope sees; it may not redefine a visible name. Names live in one
 * open-addressing hash table keyed by (scope, name), so lowering stays linear in the size
 * of the expanded model (a 10,000-layer model lowers in milliseconds).
 *
 * Checks made here (all errors of the phase are reported): unknown ops and defs, argument
 * counts, names and types, undefined names and redefinitions, labels used where only a
 * loss may read them, recursive defs, def calls nested deeper than FE_MAX_DEF_DEPTH,
 * `repeat 0`, annotations (known, allowed by the op, stage non-negative), exactly one loss, unused
 * values (a warning), and the input declarations. The train/cluster blocks are resolved by
 * config.c. Shapes are left to pass_shapes. An expansion that would exceed FE_MAX_LAYERS stops with
 * an error instead of exhausting memory. The same error reached again through another expansion of
 * the same text is printed once.
 */
#include "ast.h"

#include <string.h>

#define FE_MAX_LAYERS (1 << 16)
/* Def calls inside def calls: each level is a few C stack frames of lowering, so a chain of
 * thousands of defs each calling the next would overflow the stack. Real models nest a
 * handful deep. */
#define FE_MAX_DEF_DEPTH 256
#define FE_MAX_ERRORS 100

enum { B_VALUE, B_SECTION, B_DEF };

typedef struct Binding {
    const char *name; /* NULL: empty slot */
    uint32_t hash;
    int scope, kind;
    int value; /* B_VALUE: value index, -1 if its definition failed; B_DEF: def index */
    SrcLoc loc;
} Binding;

/* A value bound to a name, remembered for the unused-value warning. */
typedef struct Bound {
    const char *name;
    int value;
    SrcLoc loc;
} Bound;

/* Open-addressing map from a 64-bit key (never 0) to a pointer. */
typedef struct U64Map {
    uint64_t *keys;
    void **vals;
    size_t cap, n;
} U64Map;

typedef struct Scope {
    int id;
    const struct Scope *parent;
    const char *prefix; /* prepended to layer names: "", "m.", "blocks.3." */
    int stage;          /* inherited @stage, IR_NO_STAGE if none */
    SrcLoc stage_loc;   /* the def call's @stage it comes from */
    SrcLoc recompute;   /* the def call's @recompute its layers inherit (line 0: none) */
} Scope;

typedef struct Lower {
    Arena *a;
    Diag *d;
    const Ast *ast;
    IrGraph *g;
    Binding *tab;
    size_t cap, n;
    int nscopes;
    const AstDef **defs;
    bool *def_active;
    int def_depth; /* def calls being expanded, one inside the other */
    Vec bound;     /* Bound */
    U64Map reported, texts, names;
    bool stop; /* too many layers or errors: unwind */
} Lower;

/* What a node's `text` is made from: a statement, or `return EXPR` of a body. */
typedef struct TextSrc {
    const AstStmt *stmt;
    const AstExpr *ret;
} TextSrc;

/* ───────────────────────────── small tables ───────────────────────────── */

static uint32_t hash_str(const char *s, int scope) {
    uint32_t h = 2166136261u ^ (uint32_t)scope * 16777619u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static uint64_t mix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}

static void **map_slot(Arena *a, U64Map *m, uint64_t key) {
    if (2 * (m->n + 1) > m->cap) {
        U64Map old = *m;
        m->cap = old.cap ? old.cap * 2 : 256;
        m->keys = arena_calloc(a, m->cap, sizeof *m->keys);
        m->vals = arena_calloc(a, m->cap, sizeof *m->vals);
        m->n = 0;
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i]) *map_slot(a, m, old.keys[i]) = old.vals[i];
    }
    size_t i = (size_t)mix64(key) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->n++;
    }
    return &m->vals[i];
}

static Binding *find_in(const Lower *L, int scope, const char *name) {
    if (!L->cap) return NULL;
    uint32_t h = hash_str(name, scope);
    for (size_t i = h & (L->cap - 1);; i = (i + 1) & (L->cap - 1)) {
        Binding *b = &L->tab[i];
        if (!b->name) return NULL;
        if (b->hash == h && b->scope == scope && strcmp(b->name, name) == 0) return b;
    }
}

static void insert_raw(Lower *L, Binding b) {
    for (size_t i = b.hash & (L->cap - 1);; i = (i + 1) & (L->cap - 1))
        if (!L->tab[i].name) {
            L->tab[i] = b;
            return;
        }
}

static void bind(Lower *L, int scope, int kind, const char *name, int value, SrcLoc loc) {
    if (2 * (L->n + 1) > L->cap) {
        Binding *old = L->tab;
        size_t ocap = L->cap;
        L->cap = ocap ? ocap * 2 : 1024;
        L->tab = arena_calloc(L->a, L->cap, sizeof *L->tab);
        for (size_t i = 0; i < ocap; i++)
            if (old[i].name) insert_raw(L, old[i]);
    }
    Binding b = {name, hash_str(name, scope), scope, kind, value, loc};
    insert_raw(L, b);
    L->n++;
    if (kind == B_VALUE && value >= 0) {
        Bound *bd = vec_push(L->a, &L->bound);
        bd->name = name;
        bd->value = value;
        bd->loc = loc;
    }
}

static const Binding *lookup(const Lower *L, const Scope *s, const char *name) {
    for (; s; s = s->parent) {
        const Binding *b = find_in(L, s->id, name);
        if (b) return b;
    }
    return NULL;
}

/* ───────────────────────────── diagnostics ───────────────────────────── */

/* Reports an error unless the same message at the same place was reported already (a
 * def expanded twice would otherwise say everything twice). Returns whether it printed,
 * so a following note is printed with its error or not at all. */
static bool lerr(Lower *L, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool lerr(Lower *L, SrcLoc loc, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint64_t key = (uint64_t)hash_str(msg, loc.line) << 32 | (uint32_t)loc.col | 1u;
    void **slot = map_slot(L->a, &L->reported, key);
    if (*slot) return false;
    *slot = L;
    diag_error(L->d, loc, "%s", msg);
    if (L->d->errors >= FE_MAX_ERRORS) L->stop = true;
    return true;
}

/* The names visible from scope s (for "did you mean"), at most `max`. */
static int visible_names(const Lower *L, const Scope *s, const char **out, int max) {
    int n = 0;
    for (; s; s = s->parent)
        for (size_t i = 0; i < L->cap && n < max; i++)
            if (L->tab[i].name && L->tab[i].scope == s->id && L->tab[i].kind == B_VALUE)
                out[n++] = L->tab[i].name;
    return n;
}

static void undefined_name(Lower *L, const Scope *s, const char *name, SrcLoc loc) {
    const char *cands[256];
    int n = visible_names(L, s, cands, 256);
    const char *sug = diag_suggest(name, cands, (size_t)n);
    if (sug)
        lerr(L, loc, "undefined name '%s'; did you mean '%s'?", name, sug);
    else
        lerr(L, loc, "undefined name '%s'", name);
}

static void unknown_callee(Lower *L, const AstExpr *e) {
    const char *cands[OP__COUNT + 64];
    size_t n = 0;
    for (int i = 0; i < OP__COUNT; i++)
        cands[n++] = ir_ops[i].name;
    for (int i = 0; i < L->ast->ndefs && n < sizeof cands / sizeof *cands; i++)
        cands[n++] = L->defs[i]->name;
    const char *sug = diag_suggest(e->name, cands, n);
    if (sug)
        lerr(L, e->name_loc, "unknown op '%s'; did you mean '%s'?", e->name, sug);
    else
        lerr(L, e->name_loc, "unknown op '%s'", e->name);
}

/* "redefinition of 'h'" with a note at the first definition, if `name` is visible. */
static bool check_redefinition(Lower *L, const Scope *s, const char *name, SrcLoc loc) {
    const Binding *b = lookup(L, s, name);
    if (!b) return true;
    if (lerr(L, loc, "redefinition of '%s'", name))
        diag_note(L->d, b->loc, "'%s' was first defined here", name);
    return false;
}

/* ───────────────────────────── expressions ───────────────────────────── */

static int lower_expr(Lower *L, const Scope *s, const AstExpr *e, const char *name, TextSrc ts,
                      const AstAnnot *annots);
static void lower_stmts(Lower *L, const Scope *s, const AstStmt *st);

static const char *node_text(Lower *L, TextSrc ts) {
    const void *key = ts.stmt ? (const void *)ts.stmt : (const void *)ts.ret;
    void **slot = map_slot(L->a, &L->texts, (uint64_t)(uintptr_t)key);
    if (*slot) return *slot;
    if (ts.stmt) {
        *slot = fe_stmt_text(L->a, ts.stmt);
    } else {
        AstStmt tmp = {.kind = ST_ASSIGN, .name = "return", .value = (AstExpr *)ts.ret};
        char *t = fe_stmt_text(L->a, &tmp); /* "return = EXPR" */
        *slot = arena_printf(L->a, "return %s", t + strlen("return = "));
    }
    return *slot;
}

static const char *arg_type_name(ArgType t) {
    return t == ARG_INT ? "an integer" : t == ARG_FLOAT ? "a number" : "true or false";
}

static const char *expr_kind_name(AstExprKind k) {
    switch (k) {
    case EX_NAME: return "a name";
    case EX_CALL: return "a call";
    case EX_INT: return "an integer";
    case EX_FLOAT: return "a number";
    case EX_BOOL: return "a boolean";
    case EX_STRING: return "a string";
    }
    return "?";
}

/* Checks one non-tensor argument against its spec and stores it in the node's slot. */
static bool set_arg(Lower *L, const char *op, const ArgSpec *sp, const AstArg *arg, double *out) {
    const AstExpr *v = arg->value;
    bool ok = sp->type == ARG_INT     ? v->kind == EX_INT
              : sp->type == ARG_FLOAT ? (v->kind == EX_INT || v->kind == EX_FLOAT)
                                      : v->kind == EX_BOOL;
    if (!ok) {
        lerr(L, v->loc, "argument '%s' of %s must be %s, not %s", sp->name, op,
             arg_type_name(sp->type), expr_kind_name(v->kind));
        return false;
    }
    if (sp->type == ARG_INT && (v->ival > INT32_MAX || v->ival < -INT32_MAX)) {
        lerr(L, v->loc, "argument '%s' of %s is out of range (%s; the limit is %d)", sp->name, op,
             v->lit, INT32_MAX);
        return false;
    }
    *out = sp->type == ARG_BOOL ? (double)v->ival : v->fval;
    return true;
}

/* The argspec slot of keyword argument `a`, or -1 after reporting an unknown name. */
static int keyword_slot(Lower *L, const char *op, const AstArg *a, const ArgSpec *spec, int nspec) {
    const char *cands[IR_MAX_ARGS];
    for (int i = 0; i < nspec; i++) {
        if (strcmp(spec[i].name, a->key) == 0) return i;
        cands[i] = spec[i].name;
    }
    const char *sug = diag_suggest(a->key, cands, (size_t)nspec);
    if (sug)
        lerr(L, a->key_loc, "%s has no argument '%s'; did you mean '%s'?", op, a->key, sug);
    else
        lerr(L, a->key_loc, "%s has no argument '%s'", op, a->key);
    return -1;
}

/* Fills args[]/arg_loc[] from the non-tensor arguments (positional after the `nin`
 * tensors, then keywords). Returns false after reporting errors. */
static bool match_args(Lower *L, const AstExpr *e, int op, double args[IR_MAX_ARGS],
                       SrcLoc locs[IR_MAX_ARGS]) {
    ArgSpec spec[IR_MAX_ARGS];
    int nspec = ir_op_args((OpKind)op, spec), nin = ir_ops[op].ninputs, pos = 0;
    const AstArg *given[IR_MAX_ARGS] = {0};
    bool ok = true;
    for (const AstArg *a = e->args; a; a = a->next) {
        int slot = -1;
        if (!a->key) {
            if (pos++ < nin) continue; /* a tensor input, lowered by the caller */
            slot = pos - 1 - nin;
            if (slot >= nspec) {
                if (nspec == 0)
                    lerr(L, a->loc,
                         "too many arguments to %s (it takes %d tensor input%s and nothing else)",
                         e->name, nin, nin == 1 ? "" : "s");
                else
                    lerr(L, a->loc,
                         "too many arguments to %s (it takes %d tensor input%s and %d other "
                         "argument%s)",
                         e->name, nin, nin == 1 ? "" : "s", nspec, nspec == 1 ? "" : "s");
                ok = false;
                continue;
            }
        } else if ((slot = keyword_slot(L, e->name, a, spec, nspec)) < 0) {
            ok = false;
            continue;
        }
        if (given[slot]) {
            if (lerr(L, a->loc, "argument '%s' of %s given twice", spec[slot].name, e->name))
                diag_note(L->d, given[slot]->loc, "'%s' was first given here", spec[slot].name);
            ok = false;
            continue;
        }
        given[slot] = a;
        locs[slot] = a->value->loc;
        ok &= set_arg(L, e->name, &spec[slot], a, &args[slot]);
    }
    if (pos < nin) {
        lerr(L, e->loc, "%s takes %d tensor input%s, got %d", e->name, nin, nin == 1 ? "" : "s",
             pos);
        ok = false;
    }
    for (int i = 0; i < nspec; i++)
        if (!given[i] && spec[i].required) {
            lerr(L, e->loc, "missing argument '%s' of %s", spec[i].name, e->name);
            ok = false;
        }
    return ok;
}

/* @stage(k): k must be a non-negative integer, given once. */
static bool annot_stage(Lower *L, const AstAnnot *an, Annot *out) {
    if (an->arg != AN_ARG_INT) {
        lerr(L, an->loc, "@stage needs a stage number, as in @stage(1)");
        return false;
    }
    if (an->arg_int < 0 || an->arg_int > INT32_MAX) {
        lerr(L, an->arg_loc, "stage %lld is out of range; stages are numbered from 0",
             (long long)an->arg_int);
        return false;
    }
    if (out->stage_loc.line > 0) {
        if (lerr(L, an->loc, "a second @stage on one call"))
            diag_note(L->d, out->stage_loc, "the first one is here");
        return false;
    }
    out->stage = (int)an->arg_int;
    out->stage_loc = an->loc;
    return true;
}

/* The strategy an annotation names, or -1 after reporting a malformed or unknown one. */
static int annot_strategy(Lower *L, const AstAnnot *an) {
    if (strcmp(an->name, "data") == 0 && an->arg == AN_ARG_NONE) return STRAT_DATA;
    if (strcmp(an->name, "tensor") == 0 && an->arg == AN_ARG_NAME) {
        if (strcmp(an->arg_name, "col") == 0) return STRAT_COL;
        if (strcmp(an->arg_name, "row") == 0) return STRAT_ROW;
    }
    if (strcmp(an->name, "data") == 0 || strcmp(an->name, "tensor") == 0) {
        lerr(L, an->loc, "malformed annotation; write @data, @tensor(col) or @tensor(row)");
        return -1;
    }
    static const char *const known[] = {"data", "tensor", "stage", "recompute"};
    const char *sug = diag_suggest(an->name, known, 4);
    if (sug)
        lerr(L, an->loc, "unknown annotation '@%s'; did you mean '@%s'?", an->name, sug);
    else
        lerr(L, an->loc,
             "unknown annotation '@%s'; expected @data, @tensor(col|row), @stage(k) or @recompute",
             an->name);
    return -1;
}

static const char *strategy_spelling(Strategy st) {
    return st == STRAT_DATA ? "@data" : st == STRAT_COL ? "@tensor(col)" : "@tensor(row)";
}

/* @recompute: no argument, given once. */
static bool annot_recompute(Lower *L, const AstAnnot *an, Annot *out) {
    if (an->arg != AN_ARG_NONE) {
        lerr(L, an->loc, "@recompute takes no argument");
        return false;
    }
    if (out->recompute && out->recompute_loc.line > 0) {
        if (lerr(L, an->loc, "a second @recompute on one call"))
            diag_note(L->d, out->recompute_loc, "the first one is here");
        return false;
    }
    out->recompute = true;
    out->recompute_loc = an->loc;
    return true;
}

/* Applies @data / @tensor(col|row) / @stage(k) / @recompute to a call of `op` (-1: a def call,
 * whose caller rejects strategies), checking each against the op table. */
static bool apply_annots(Lower *L, int op, const AstAnnot *an, Annot *out) {
    bool ok = true;
    for (; an; an = an->next) {
        if (strcmp(an->name, "stage") == 0) {
            ok &= annot_stage(L, an, out);
            continue;
        }
        if (strcmp(an->name, "recompute") == 0) {
            ok &= annot_recompute(L, an, out);
            continue;
        }
        int st = annot_strategy(L, an);
        if (st < 0 || op < 0) {
            ok = false;
        } else if (!(ir_ops[op].strats & (1u << st))) {
            lerr(L, an->loc, "%s cannot take %s%s", ir_ops[op].name,
                 strategy_spelling((Strategy)st),
                 ir_ops[op].strats == STRATF_DATA
                     ? "; it has no weights to split and follows its input's layout"
                     : "");
            ok = false;
        } else if (out->has_strat) {
            if (lerr(L, an->loc, "a second strategy annotation on one call"))
                diag_note(L->d, out->strat_loc, "the first one is here");
            ok = false;
        } else {
            out->has_strat = true;
            out->strat = (Strategy)st;
            out->strat_loc = an->loc;
        }
    }
    return ok;
}

/* Two expansions could produce one layer name only through a returned def call whose
 * statements share names with its caller's (see docs/language.md, "Layer names"). */
static bool unique_layer_name(Lower *L, const char *name, SrcLoc loc) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    void **slot = map_slot(L->a, &L->names, h | 1u);
    if (*slot) {
        const IrNode *prev = IR_NODE(L->g, (int)((intptr_t)*slot - 1));
        if (strcmp(prev->name, name) != 0) return true; /* a hash collision, not a clash */
        if (lerr(L, loc,
                 "this call would be a second layer named '%s'; bind the returned def call to a "
                 "name first",
                 name))
            diag_note(L->d, prev->loc, "the first '%s' is here", name);
        return false;
    }
    *slot = (void *)(intptr_t)(IR_NNODES(L->g) + 1);
    return true;
}

static bool label_allowed(int op, int k) {
    return (ir_ops[op].flags & OPF_LABEL_IN) && k == ir_ops[op].ninputs - 1;
}

static int lower_op(Lower *L, const Scope *s, const AstExpr *e, int op, const char *name,
                    TextSrc ts, const AstAnnot *annots) {
    int nin = ir_ops[op].ninputs, inputs[IR_MAX_INPUTS] = {0}, k = 0;
    bool ok = true;
    for (const AstArg *a = e->args; a && k < nin; a = a->next) {
        if (a->key) continue;
        const char *sub = arena_printf(L->a, "%s.%d", name, k);
        inputs[k] = lower_expr(L, s, a->value, sub, ts, NULL);
        if (inputs[k] < 0)
            ok = false;
        else if (IR_VALUE(L->g, inputs[k])->kind == VAL_LABEL && !label_allowed(op, k)) {
            lerr(L, a->value->loc,
                 "label '%s' cannot be an input of %s; only the last input of a loss "
                 "(cross_entropy, mse) may be a label",
                 a->value->kind == EX_NAME ? a->value->name : IR_VALUE(L->g, inputs[k])->name,
                 e->name);
            ok = false;
        }
        k++;
    }
    double args[IR_MAX_ARGS] = {0};
    SrcLoc locs[IR_MAX_ARGS];
    memset(locs, 0, sizeof locs);
    ArgSpec spec[IR_MAX_ARGS];
    int nspec = ir_op_args((OpKind)op, spec);
    for (int i = 0; i < nspec; i++)
        args[i] = spec[i].def;
    ok &= match_args(L, e, op, args, locs);
    Annot an = {.stage = s->stage};
    ok &= apply_annots(L, op, annots, &an);
    if (an.stage_loc.line == 0) an.stage_loc = s->stage_loc; /* inherited (or none) */
    if (!an.recompute && s->recompute.line > 0)
        an.recompute = true, an.recompute_loc = s->recompute;
    if (!ok || L->stop) return -1;
    if (IR_NNODES(L->g) >= FE_MAX_LAYERS) {
        lerr(L, e->loc, "the model expands to more than %d layers", FE_MAX_LAYERS);
        L->stop = true;
        return -1;
    }
    if (!unique_layer_name(L, name, e->loc)) return -1;
    int id = ir_add_node(L->g, (OpKind)op, name, e->loc);
    IrNode *n = IR_NODE(L->g, id);
    n->ninputs = nin;
    memcpy(n->inputs, inputs, sizeof inputs);
    memcpy(n->args, args, sizeof args);
    memcpy(n->arg_loc, locs, sizeof locs);
    n->annot = an;
    n->text = node_text(L, ts);
    return n->output;
}

static int lower_def_call(Lower *L, const Scope *s, const AstExpr *e, int di, const char *name,
                          TextSrc ts, const AstAnnot *annots) {
    const AstDef *def = L->defs[di];
    if (L->def_active[di]) {
        if (lerr(L, e->loc, "recursive call to def '%s'", def->name))
            diag_note(L->d, def->loc, "'%s' is defined here", def->name);
        return -1;
    }
    if (L->def_depth >= FE_MAX_DEF_DEPTH) {
        lerr(L, e->loc, "def calls nest more than %d deep (each def calling the next)",
             FE_MAX_DEF_DEPTH);
        L->stop = true;
        return -1;
    }
    if (e->nargs != def->nparams) {
        if (lerr(L, e->loc, "def '%s' takes %d argument%s, got %d", def->name, def->nparams,
                 def->nparams == 1 ? "" : "s", e->nargs))
            diag_note(L->d, def->loc, "'%s' is defined here", def->name);
        return -1;
    }
    int vals[64], k = 0;
    int *args = def->nparams <= 64 ? vals : arena_calloc(L->a, (size_t)def->nparams, sizeof(int));
    bool ok = true;
    for (const AstArg *a = e->args; a; a = a->next, k++) {
        if (a->key) {
            lerr(L, a->key_loc, "arguments of def '%s' are positional", def->name);
            ok = false;
            continue;
        }
        args[k] = lower_expr(L, s, a->value, arena_printf(L->a, "%s.arg%d", name, k), ts, NULL);
        ok &= args[k] >= 0;
    }
    Annot an = {.stage = s->stage};
    for (const AstAnnot *x = annots; x; x = x->next)
        if (strcmp(x->name, "stage") != 0 && strcmp(x->name, "recompute") != 0) {
            lerr(L, x->loc,
                 "only @stage and @recompute can annotate a def call; put strategy annotations on "
                 "the op calls inside '%s'",
                 def->name);
            ok = false;
        }
    ok &= apply_annots(L, -1, annots, &an);
    if (!ok || L->stop) return -1;

    Scope inner = {L->nscopes++,
                   NULL,
                   arena_printf(L->a, "%s.", name),
                   an.stage,
                   an.stage_loc.line ? an.stage_loc : s->stage_loc,
                   an.recompute ? an.recompute_loc : s->recompute};
    k = 0;
    for (const AstParam *p = def->params; p; p = p->next, k++)
        bind(L, inner.id, B_VALUE, p->name, args[k], p->loc);
    L->def_active[di] = true;
    L->def_depth++;
    lower_stmts(L, &inner, def->body);
    TextSrc rts = {NULL, def->ret};
    int r = L->stop ? -1 : lower_expr(L, &inner, def->ret, name, rts, NULL);
    L->def_depth--;
    L->def_active[di] = false;
    return r;
}

static int lower_expr(Lower *L, const Scope *s, const AstExpr *e, const char *name, TextSrc ts,
                      const AstAnnot *annots) {
    if (e->kind == EX_NAME) {
        const Binding *b = lookup(L, s, e->name);
        if (!b || b->kind != B_VALUE) {
            if (b && b->kind == B_SECTION)
                lerr(L, e->loc, "'%s' names a repeat section, not a value", e->name);
            else
                undefined_name(L, s, e->name, e->loc);
            return -1;
        }
        return b->value;
    }
    if (e->kind != EX_CALL) {
        lerr(L, e->loc, "expected a tensor (a name or a call), got %s", expr_kind_name(e->kind));
        return -1;
    }
    int op = ir_op_lookup(e->name);
    if (op >= 0) return lower_op(L, s, e, op, name, ts, annots);
    const Binding *b = find_in(L, -1, e->name);
    if (b) return lower_def_call(L, s, e, b->value, name, ts, annots);
    unknown_callee(L, e);
    return -1;
}

/* ───────────────────────────── statements ───────────────────────────── */

static void lower_assign(Lower *L, const Scope *s, const AstStmt *st) {
    if (!check_redefinition(L, s, st->name, st->name_loc)) return;
    const char *name = arena_printf(L->a, "%s%s", s->prefix, st->name);
    TextSrc ts = {st, NULL};
    if (st->value->kind == EX_NAME && st->annots)
        lerr(L, st->annots->loc, "annotations need an op call on the right of '='");
    int v = lower_expr(L, s, st->value, name, ts, st->annots);
    bind(L, s->id, B_VALUE, st->name, v, st->name_loc);
}

static void lower_repeat(Lower *L, const Scope *s, const AstStmt *st) {
    if (!check_redefinition(L, s, st->name, st->name_loc)) return;
    const char *section = st->section ? st->section : st->name;
    bool own_section = strcmp(section, st->name) != 0; /* `h = repeat 2 as h` is plain `h` */
    if (own_section && !check_redefinition(L, s, section, st->section_loc)) return;
    if (own_section) bind(L, s->id, B_SECTION, section, -1, st->section_loc);
    if (st->count < 1 || st->count > FE_MAX_LAYERS) {
        lerr(L, st->count_loc, "repeat count must be between 1 and %d, got %lld", FE_MAX_LAYERS,
             (long long)st->count);
        bind(L, s->id, B_VALUE, st->name, -1, st->name_loc);
        return;
    }
    TextSrc ts = {st, NULL};
    int carry =
        lower_expr(L, s, st->value, arena_printf(L->a, "%s%s.init", s->prefix, section), ts, NULL);
    for (int64_t k = 0; k < st->count && carry >= 0 && !L->stop; k++) {
        int errors0 = L->d->errors;
        Scope it = {L->nscopes++,
                    s,
                    arena_printf(L->a, "%s%s.%lld.", s->prefix, section, (long long)k),
                    s->stage,
                    s->stage_loc,
                    s->recompute};
        bind(L, it.id, B_VALUE, st->carry, carry, st->carry_loc);
        lower_stmts(L, &it, st->body);
        TextSrc rts = {NULL, st->ret};
        const char *iname = arena_strndup(L->a, it.prefix, strlen(it.prefix) - 1);
        carry = L->stop ? -1 : lower_expr(L, &it, st->ret, iname, rts, NULL);
        if (L->d->errors > errors0) carry = -1; /* later iterations would only repeat them */
    }
    bind(L, s->id, B_VALUE, st->name, carry, st->name_loc);
}

static void lower_stmt(Lower *L, const Scope *s, const AstStmt *st) {
    if (st->kind == ST_ASSIGN)
        lower_assign(L, s, st);
    else if (st->kind == ST_REPEAT)
        lower_repeat(L, s, st);
}

static void lower_stmts(Lower *L, const Scope *s, const AstStmt *st) {
    for (; st && !L->stop; st = st->next)
        lower_stmt(L, s, st);
}

/* ───────────────────────────── declarations and the model ───────────────────────────── */

static void lower_decl(Lower *L, const Scope *s, const AstStmt *st) {
    if (!check_redefinition(L, s, st->name, st->name_loc)) return;
    static const char *const dtypes[] = {"f32", "i32", "i64"};
    int dt = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(st->dtype_name, dtypes[i]) == 0) dt = i;
    if (dt < 0) {
        const char *sug = diag_suggest(st->dtype_name, dtypes, 3);
        lerr(L, st->dtype_loc, "unknown element type '%s'; expected f32, i32 or i64%s%s%s",
             st->dtype_name, sug ? " (did you mean '" : "", sug ? sug : "", sug ? "'?)" : "");
    }
    bool ok = dt >= 0;
    for (int i = 0; i < st->ndims; i++) {
        const AstDim *dm = &st->dims[i];
        if (!dm->is_batch && dm->size < 1) {
            lerr(L, dm->loc, "dimension %d of '%s' must be positive, got %lld", i, st->name,
                 (long long)dm->size);
            ok = false;
        }
    }
    if (st->ndims > IR_MAX_RANK) ok = false;
    if (ok && !st->dims[0].is_batch && st->dims[0].size != L->g->train.batch) {
        lerr(L, st->dims[0].loc,
             "the leading dimension of '%s' is the batch: write 'batch' or the train batch size "
             "(%lld)",
             st->name, (long long)L->g->train.batch);
        ok = false;
    }
    if (!ok) {
        bind(L, s->id, B_VALUE, st->name, -1, st->name_loc);
        return;
    }
    int v = ir_add_value(L->g, st->name, st->kind == ST_INPUT ? VAL_INPUT : VAL_LABEL, (DType)dt,
                         st->name_loc);
    IrValue *val = IR_VALUE(L->g, v);
    val->shape.rank = st->ndims;
    for (int i = 0; i < st->ndims; i++)
        val->shape.d[i] = st->dims[i].is_batch ? L->g->train.batch : st->dims[i].size;
    val->batch_sym = st->dims[0].is_batch;
    bind(L, s->id, B_VALUE, st->name, v, st->name_loc);
}

/* Registers every def by name before the body is lowered, so defs may come in any order. */
static void collect_defs(Lower *L) {
    L->defs = arena_calloc(L->a, (size_t)L->ast->ndefs + 1, sizeof *L->defs);
    L->def_active = arena_calloc(L->a, (size_t)L->ast->ndefs + 1, sizeof *L->def_active);
    int i = 0;
    for (const AstDef *def = L->ast->defs; def; def = def->next, i++) {
        L->defs[i] = def;
        const Binding *prev = find_in(L, -1, def->name);
        if (ir_op_lookup(def->name) >= 0) {
            lerr(L, def->name_loc, "def '%s' has the name of an op", def->name);
        } else if (prev) {
            if (lerr(L, def->name_loc, "redefinition of def '%s'", def->name))
                diag_note(L->d, prev->loc, "'%s' was first defined here", def->name);
        } else {
            bind(L, -1, B_DEF, def->name, i, def->name_loc);
        }
        for (const AstParam *p = def->params; p; p = p->next)
            for (const AstParam *q = def->params; q != p; q = q->next)
                if (strcmp(p->name, q->name) == 0 &&
                    lerr(L, p->loc, "parameter '%s' of def '%s' appears twice", p->name, def->name))
                    diag_note(L->d, q->loc, "'%s' was first defined here", p->name);
    }
}

static void check_loss(Lower *L) {
    int first = -1;
    for (int i = 0; i < IR_NNODES(L->g); i++) {
        const IrNode *n = IR_NODE(L->g, i);
        if (!(ir_ops[n->op].flags & OPF_LOSS)) continue;
        if (first < 0) {
            first = i;
        } else {
            if (lerr(L, n->loc, "a second loss; a model has exactly one"))
                diag_note(L->d, IR_NODE(L->g, first)->loc, "the first loss is here");
            return;
        }
    }
    if (first < 0)
        lerr(L, L->ast->model_name_loc,
             "model '%s' has no loss; end it with cross_entropy(...) or mse(...)", L->ast->model);
}

/* Warns once per source place about values nobody reads. A value bound to several
 * names (a def's result) is reported at its outermost name. */
static void warn_unused(Lower *L) {
    IrGraph *g = L->g;
    bool *seen = arena_calloc(L->a, (size_t)IR_NVALUES(g) + 1, sizeof *seen);
    bool *warn = arena_calloc(L->a, L->bound.len + 1, sizeof *warn);
    for (size_t i = L->bound.len; i-- > 0;) {
        const Bound *b = &VEC_AT(L->bound, Bound, i);
        const IrValue *v = IR_VALUE(g, b->value);
        if (seen[b->value] || v->nusers > 0) continue;
        seen[b->value] = true;
        if (v->producer >= 0 && (ir_ops[IR_NODE(g, v->producer)->op].flags & OPF_LOSS)) continue;
        warn[i] = true;
    }
    U64Map done = {0};
    for (size_t i = 0; i < L->bound.len; i++) {
        if (!warn[i]) continue;
        const Bound *b = &VEC_AT(L->bound, Bound, i);
        void **slot =
            map_slot(L->a, &done, (uint64_t)b->loc.line << 32 | (uint32_t)b->loc.col | 1u);
        if (*slot) continue;
        *slot = L;
        ValueKind k = IR_VALUE(g, b->value)->kind;
        diag_warning(L->d, b->loc, "%s '%s' is never used",
                     k == VAL_INPUT   ? "input"
                     : k == VAL_LABEL ? "label"
                                      : "value",
                     b->name);
    }
}

IrGraph *fe_lower(Arena *a, Diag *d, const Ast *ast, const FeDefine *defs, int ndefs) {
    int errors0 = d->errors;
    IrGraph *g = ir_graph_new(a, ast->model ? ast->model : "model", ast->file);
    Lower L = {.a = a, .d = d, .ast = ast, .g = g};
    L.bound.item = sizeof(Bound);
    bool cfg_ok = fe_lower_config(a, d, ast, defs, ndefs, &g->train, &g->cluster);
    collect_defs(&L);
    Scope top = {L.nscopes++, NULL, "", IR_NO_STAGE, {0}, {0}};
    for (const AstStmt *st = ast->body; st && !L.stop; st = st->next) {
        if (st->kind == ST_INPUT || st->kind == ST_LABEL) {
            if (cfg_ok)
                lower_decl(&L, &top, st);
            else
                bind(&L, top.id, B_VALUE, st->name, -1, st->name_loc);
        } else {
            lower_stmt(&L, &top, st);
        }
    }
    if (d->errors > errors0) return NULL;
    ir_finalize(g);
    check_loss(&L);
    if (d->errors > errors0) return NULL;
    warn_unused(&L);
    return g;
}
