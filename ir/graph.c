/*
 * graph.c: the op table and the IrGraph building blocks.
 *
 * The graph is three arrays (values, nodes, parameters) that refer to each other by
 * index. Nodes are appended in source order, which the frontend guarantees is a
 * topological order (a name must be defined before use). Every node makes exactly one
 * output value. Nothing here reports user errors: the frontend checks names and
 * arguments before building, and pass_shapes checks shapes.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

/* Each argument becomes "name:type, " or "name:type=default, " of the op's spec text. */
const OpInfo ir_ops[OP__COUNT] = {
#define ARG(op, aid, nm, ty) #nm ":" #ty ", "
#define ARGD(op, aid, nm, ty, def) #nm ":" #ty "=" #def ", "
#define OP(id, nm, nin, st, fl, args) [OP_##id] = {nm, nin, st, fl, "" args},
#include "ops.def"
#undef OP
#undef ARG
#undef ARGD
};

double ir_arg_get(const IrNode *n, OpKind op, int slot) {
    if (n->op != op || slot < 0 || slot >= IR_MAX_ARGS) {
        fprintf(stderr, "internal compiler error: argument %d of %s read from %s node '%s'\n", slot,
                ir_ops[op].name, ir_ops[n->op].name, n->name ? n->name : "?");
        abort();
    }
    return n->args[slot];
}

int ir_op_lookup(const char *name) {
    for (int i = 0; i < OP__COUNT; i++)
        if (strcmp(ir_ops[i].name, name) == 0) return i;
    return -1;
}

/* Parses one "name:type" or "name:type=default" item of an argspec. */
static void parse_arg(const char *s, size_t n, ArgSpec *out) {
    memset(out, 0, sizeof *out);
    size_t i = 0, k = 0;
    while (i < n && s[i] != ':' && k + 1 < sizeof out->name)
        out->name[k++] = s[i++];
    i++; /* ':' */
    const char *ty = s + i;
    size_t tn = 0;
    while (i + tn < n && ty[tn] != '=')
        tn++;
    if (tn == 3 && strncmp(ty, "int", 3) == 0)
        out->type = ARG_INT;
    else if (tn == 5 && strncmp(ty, "float", 5) == 0)
        out->type = ARG_FLOAT;
    else
        out->type = ARG_BOOL;
    i += tn;
    out->required = i >= n;
    if (!out->required) {
        const char *dv = s + i + 1;
        if (strncmp(dv, "true", 4) == 0)
            out->def = 1;
        else if (strncmp(dv, "false", 5) == 0)
            out->def = 0;
        else
            out->def = strtod(dv, NULL);
    }
}

int ir_op_args(OpKind op, ArgSpec out[IR_MAX_ARGS]) {
    const char *s = ir_ops[op].argspec;
    int n = 0;
    while (*s && n < IR_MAX_ARGS) {
        while (*s == ' ' || *s == ',')
            s++;
        if (!*s) break;
        const char *e = s;
        while (*e && *e != ',')
            e++;
        parse_arg(s, (size_t)(e - s), &out[n++]);
        s = e;
    }
    return n;
}

const char *ir_dtype_name(DType t) {
    switch (t) {
    case DT_F32: return "f32";
    case DT_I32: return "i32";
    case DT_I64: return "i64";
    }
    return "?";
}

size_t ir_dtype_size(DType t) { return t == DT_I64 ? 8 : 4; }

int64_t ir_shape_numel(const Shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->d[i];
    return n;
}

char *ir_shape_str(char *buf, size_t n, DType t, const Shape *s) {
    size_t k = (size_t)snprintf(buf, n, "%s[", ir_dtype_name(t));
    for (int i = 0; i < s->rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)s->d[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

const char *ir_param_role_name(ParamRole r) {
    static const char *const names[] = {
        [PARAM_WEIGHT] = "weight", [PARAM_BIAS] = "bias", [PARAM_GAMMA] = "gamma",
        [PARAM_BETA] = "beta",     [PARAM_POS] = "pos",   [PARAM_WQ] = "wq",
        [PARAM_WK] = "wk",         [PARAM_WV] = "wv",     [PARAM_WO] = "wo",
        [PARAM_BQ] = "bq",         [PARAM_BK] = "bk",     [PARAM_BV] = "bv",
        [PARAM_BO] = "bo",
    };
    _Static_assert(sizeof names / sizeof names[0] == PARAM__COUNT, "a ParamRole has no name");
    return names[r];
}

IrGraph *ir_graph_new(Arena *a, const char *name, const char *file) {
    IrGraph *g = arena_alloc(a, sizeof *g);
    g->arena = a;
    g->name = arena_strdup(a, name);
    g->file = arena_strdup(a, file);
    g->values.item = sizeof(IrValue);
    g->nodes.item = sizeof(IrNode);
    g->params.item = sizeof(IrParam);
    g->loss_node = -1;
    return g;
}

int ir_add_value(IrGraph *g, const char *name, ValueKind k, DType t, SrcLoc loc) {
    IrValue *v = vec_push(g->arena, &g->values);
    v->name = arena_strdup(g->arena, name);
    v->kind = k;
    v->dtype = t;
    v->producer = -1;
    v->loc = loc;
    return (int)g->values.len - 1;
}

int ir_add_node(IrGraph *g, OpKind op, const char *name, SrcLoc loc) {
    int id = (int)g->nodes.len;
    int out = ir_add_value(g, name, VAL_ACT, DT_F32, loc);
    IR_VALUE(g, out)->producer = id;
    IrNode *n = vec_push(g->arena, &g->nodes);
    n->op = op;
    n->name = arena_strdup(g->arena, name);
    n->loc = loc;
    n->output = out;
    n->annot.stage = IR_NO_STAGE;
    ArgSpec spec[IR_MAX_ARGS];
    int na = ir_op_args(op, spec);
    for (int i = 0; i < na; i++)
        n->args[i] = spec[i].def;
    return id;
}

int ir_add_param(IrGraph *g, int node, ParamRole role, Shape shape) {
    IrNode *n = IR_NODE(g, node);
    IrParam *p = vec_push(g->arena, &g->params);
    p->name = arena_printf(g->arena, "%s.%s", n->name, ir_param_role_name(role));
    p->role = role;
    p->node = node;
    p->shape = shape;
    int id = (int)g->params.len - 1;
    if (n->nparams == 0) n->first_param = id;
    n->nparams++;
    n->param_count += ir_shape_numel(&shape);
    return id;
}

int ir_find_value(const IrGraph *g, const char *name) {
    for (int i = IR_NVALUES(g) - 1; i >= 0; i--)
        if (strcmp(VEC_AT(g->values, IrValue, i).name, name) == 0) return i;
    return -1;
}

void ir_finalize(IrGraph *g) {
    for (int i = 0; i < IR_NVALUES(g); i++)
        IR_VALUE(g, i)->nusers = 0;
    for (int i = 0; i < IR_NNODES(g); i++) {
        IrNode *n = IR_NODE(g, i);
        for (int k = 0; k < n->ninputs; k++)
            IR_VALUE(g, n->inputs[k])->nusers++;
    }
}
