/*
 * emit_main.c: what the runtime's trainer functions are handed — the parameter arenas and
 * table (MprtParam) and the model descriptor (MprtModel), the inputs and labels (MprtData),
 * the plan summary and predicted bytes, setup and teardown, the trainer descriptor
 * (MprtTrainer) and main().
 */
#include "emit.h"
#include "report.h"

#include <stdlib.h>
#include <string.h>

/* ───────────────────────────── parameters ───────────────────────────── */

static void param_view(const Emit *e, int i, int64_t *outer, int64_t *chunk, int64_t *inner,
                       int *parts) {
    const IrParam *p = IR_PARAM(e->g, i);
    const SchedParam *sp = &e->s->params[i];
    *outer = 1, *inner = 1, *parts = 1;
    *chunk = ir_shape_numel(&p->shape);
    if (sp->split_dim < 0) return;
    *parts = e->s->t;
    *chunk = sp->local.d[sp->split_dim];
    for (int k = 0; k < sp->split_dim; k++)
        *outer *= p->shape.d[k];
    for (int k = sp->split_dim + 1; k < p->shape.rank; k++)
        *inner *= p->shape.d[k];
}

/* Initial values: weights U(±1/√fan_in) as PyTorch's linear/conv, embeddings N(0, 0.02),
 * biases 0, layernorm gamma 1 and beta 0. */
static void param_init(const Emit *e, int i, int *kind, double *a, double *b) {
    const IrParam *p = IR_PARAM(e->g, i);
    *kind = 0, *a = 0, *b = 0;
    switch (p->role) {
    case PARAM_WEIGHT:
        if (IR_NODE(e->g, p->node)->op == OP_EMBEDDING) {
            *kind = 2, *b = 0.02;
            return;
        } else {
            int64_t fan = IR_NODE(e->g, p->node)->op == OP_CONV2D
                              ? p->shape.d[1] * p->shape.d[2] * p->shape.d[3]
                              : p->shape.d[0];
            *kind = 1, *b = 1.0 / __builtin_sqrt((double)fan), *a = -*b;
            return;
        }
    case PARAM_WQ:
    case PARAM_WK:
    case PARAM_WV:
    case PARAM_WO: *kind = 1, *b = 1.0 / __builtin_sqrt((double)p->shape.d[0]), *a = -*b; return;
    case PARAM_POS: *kind = 2, *b = 0.02; return;
    case PARAM_GAMMA: *kind = 3, *a = 1; return;
    case PARAM_BIAS:
    case PARAM_BETA:
    case PARAM_BQ:
    case PARAM_BK:
    case PARAM_BV:
    case PARAM_BO: return; /* zeros */
    case PARAM__COUNT: return;
    }
}

static const char *const init_name[] = {"MPRT_INIT_ZERO", "MPRT_INIT_UNIFORM", "MPRT_INIT_NORMAL",
                                        "MPRT_INIT_CONST"};

/* The layer's sync on its stage, or NULL. */
static const SchedSync *sync_of(const SchedStage *st, int id) {
    for (int i = 0; i < st->nsync; i++)
        if (st->sync[i].node == id) return &st->sync[i];
    return NULL;
}

/* Floats of node id's part under ZeRO: its sync's shard, or all its parameters' floats. */
static int64_t zero_len(const Emit *e, const SchedStage *st, int id, int64_t *count) {
    const IrNode *nd = IR_NODE(e->g, id);
    const SchedSync *y = sync_of(st, id);
    *count = 0;
    for (int i = nd->first_param; i < nd->first_param + nd->nparams; i++)
        *count += ir_shape_numel(&e->s->params[i].local);
    return y ? y->shard : *count;
}

bool cg_zero2_sharded(const Emit *e) { return e->s->zero >= 2; }

int cg_zero_part(const Emit *e, int node) {
    int n = 0;
    for (int id = 0; id < node; id++)
        if (IR_NODE(e->g, id)->nparams > 0) n++;
    return n;
}

const char *cg_zero3_gather(Emit *e, int node) {
    if (!cg_zero3(e) || IR_NODE(e->g, node)->nparams == 0) return "";
    return arena_printf(e->a, "mprt_zero3_gather(%d), ", cg_zero_part(e, node));
}

/* ZeRO (docs/runtime.md, "ZeRO"): every layer with parameters, its part of the stage's
 * arenas, how its gradients are split over its group (a layer without synchronisation keeps
 * all), and each stage's shard arena size; the optimizer and checkpoints walk this table. */
static void emit_zero_table(Emit *e) {
    const Schedule *s = e->s;
    int64_t *tot = arena_calloc(e->a, (size_t)s->S, sizeof *tot);
    int n = 0;
    E(e,
      "/* ZeRO-%d: per layer {stage, group, synced, offset, count, shard, offset of this rank's "
      "part}. */\nstatic const MprtZeroPart ZERO_PARTS[] = {\n",
      s->zero);
    for (int k = 0; k < s->S; k++) {
        const SchedStage *st = &s->stages[k];
        for (int id = st->first_node; id <= st->last_node; id++) {
            const IrNode *nd = IR_NODE(e->g, id);
            if (nd->nparams == 0) continue;
            const SchedSync *y = sync_of(st, id);
            int64_t count, shard = zero_len(e, st, id, &count);
            E(e, "    {%d, %s, %s, %lld, %lld, %lld, %lld}, /* ", k,
              group_c(y ? y->group : GROUP_DATA), y ? "true" : "false",
              (long long)e->poff[nd->first_param], (long long)count, (long long)shard,
              (long long)tot[k]);
            put_comment_text(e, nd->name);
            E(e, " */\n");
            tot[k] += shard;
            n++;
        }
    }
    E(e, "};\nstatic const int64_t STAGE_SHARDS[MESH_S] = {");
    for (int k = 0; k < s->S; k++)
        E(e, "%s%lld", k ? ", " : "", (long long)tot[k]);
    E(e,
      "};\nstatic const MprtZero ZERO = {%d, ZERO_PARTS, %d, STAGE_PARAMS, %s};\n"
      "static float *gsh; /* ZeRO-2: this rank's parts of the reduced gradients (ZeRO-1: NULL, "
      "each part is reduced in place in grd) */\n\n",
      s->zero, n,
      cg_zero3(e) && cg_mst(e) ? "true /* bf16 ZeRO-3: mst and prm hold the weights' parts */"
      : cg_zero_master(e)      ? "true /* bf16: mst holds the master weights' parts */"
      : cg_zero3(e)            ? "true /* ZeRO-3: prm holds the weights' parts */"
                               : "false");
}

/* What the runtime's trainer functions (mprt_trainer.h) need of the model: the parameter
 * table, the mesh and the optimizer's state; on the device, how shards reach the host. */
static void emit_model(Emit *e) {
    OptKind opt = e->g->train.opt;
    E(e,
      "#define NUM_STATE %d /* optimizer states per parameter */\n"
      "static const char *const STATE_NAMES[NUM_STATE] = {%s};\n",
      opt == OPT_SGD ? 1 : 2, opt == OPT_SGD ? "\"momentum\"" : "\"m\", \"v\"");
    E(e, "static const MprtModel MODEL = {\n    ");
    put_c_string(e, e->g->name);
    E(e,
      ", MESH_S, MESH_D, MESH_T, PARAMS, NUM_PARAMS, /* the model, the mesh, the "
      "parameters */\n"
      "    \"%s\", NUM_STATE, STATE_NAMES, /* the optimizer and its states */\n",
      opt == OPT_SGD    ? "sgd"
      : opt == OPT_ADAM ? "adam"
                        : "adamw");
    if (cg_bf16_cu(e))
        E(e, "    mprt_cu_bf16_download, mprt_cu_bf16_upload, /* device memory; writes into mst "
             "round into prm */\n");
    else if (e->t->dev)
        E(e, "    mprt_cu_download, mprt_cu_upload, /* the arenas live in device memory */\n");
    else if (cg_bf16(e))
        E(e, "    mprt_bf16_download, mprt_bf16_upload, /* host memory; writes into mst round "
             "into prm */\n");
    else
        E(e, "    NULL, NULL, /* the arenas are host memory */\n");
    E(e, "    %s, /* ZeRO: the optimizer state's parts */\n};\n\n", e->s->zero ? "&ZERO" : "NULL");
}

/* Floats of node n's parameters on this plan's devices (adjacent in their stage's arena). */
int64_t cg_layer_floats(const Emit *e, const IrNode *n) {
    int64_t c = 0;
    for (int i = n->first_param; i < n->first_param + n->nparams; i++)
        c += ir_shape_numel(&e->s->params[i].local);
    return c;
}

/* Parameter i's place among its layer's parameters (floats from the layer's first). */
int64_t cg_layer_at(const Emit *e, int i) {
    for (int id = 0; id < IR_NNODES(e->g); id++) {
        const IrNode *n = IR_NODE(e->g, id);
        if (i >= n->first_param && i < n->first_param + n->nparams)
            return e->poff[i] - e->poff[n->first_param];
    }
    return 0;
}

/* bf16: the f32 staging of one layer's weights, sized by each stage's largest layer (but
 * embeddings, whose kernel converts the rows it looks up). */
static void emit_layer_params(Emit *e) {
    int64_t *mx = arena_calloc(e->a, (size_t)e->s->S, sizeof *mx);
    for (int id = 0; id < IR_NNODES(e->g); id++) {
        int k = e->g->plan->nodes[id].stage;
        if (IR_NODE(e->g, id)->op == OP_EMBEDDING) continue; /* reads its rows from bf16 */
        int64_t c = cg_layer_floats(e, IR_NODE(e->g, id));
        if (c > mx[k]) mx[k] = c;
    }
    E(e, "/* bf16: floats of each stage's largest layer's weights, the size of wl */\n"
         "static const int64_t STAGE_LAYER_PARAMS[MESH_S] = {");
    for (int k = 0; k < e->s->S; k++)
        E(e, "%s%lld", k ? ", " : "", (long long)mx[k]);
    E(e, "};\n");
}

/* The parameter arenas (prm, grd, opt1, opt2; under bf16 mst and wl) and GRAD(p), the
 * gradient of parameter p (GRAD_AT(off) under bf16). */
static void emit_param_arenas(Emit *e) {
    E(e, "/* Parameters: the local shard of every tensor of this rank's stage, carved from "
         "one\n"
         " * allocation `prm`; gradients (`grd`) and optimizer state (`opt1`, `opt2`) "
         "mirror it. "
         "*/\n");
    const char *at = "((p) - prm)"; /* a parameter's offset in the arena */
    if (cg_mst(e)) {
        E(e,
          "/* bf16: `prm` holds the working weights as bf16 values, each the rounding of the "
          "f32 master\n * weights `mst`, which the optimizer updates and checkpoints hold. "
          "The kernels take f32: a\n * layer's functions first unpack its weights into `wl` "
          "(%sbf16_layer; wl_at: where they\n * start in prm), so a parameter is named by "
          "its place in wl, its gradient by its place in prm.%s */\n"
          "static uint16_t *prm;\nstatic float *grd, *opt1, *opt2, *mst, *wl;\n"
          "static int64_t wl_at;\n",
          pfx(e), e->t->dev ? "\n * All three are device memory." : "");
        at = "(wl_at + ((p) - wl))";
    } else {
        E(e, "static float *prm, *grd, *opt1, *opt2;\n");
    }
    if (cg_zero3(e) && cg_mst(e)) /* wl is unpacked from the gathered layer */
        E(e, "/* bf16 ZeRO-3: prm holds this rank's parts of the bf16 weights; a layer's are "
             "gathered whole\n * before it runs and wl unpacked from them (mprt_bf16_window) */\n");
    else if (cg_zero3(e)) { /* the weights of the gathered layer (runtime/trainer_zero3.c) */
        E(e, "/* ZeRO-3: prm holds this rank's parts; a P macro is the parameter in its layer's "
             "gathered\n * weights (mprt_zero3_param), GRAD(p) its gradient by that offset */\n");
        at = "(mprt_zero3_at(p))";
    }
    if (cg_zero2_sharded(e))
        E(e,
          "/* ZeRO-2: a parameter's gradient in its layer's transient slot, or its part of gsh "
          "*/\n#define GRAD(p) %szero2_grad%s\n",
          pfx(e), at);
    else
        E(e, "#define GRAD(p) (grd + %s) /* a parameter's gradient: its offset in grd */\n", at);
    if (cg_mst(e)) /* for kernels that read no f32 weights (an embedding's) */
        E(e, "#define GRAD_AT(off) %s /* the gradient at offset off of prm */\n",
          cg_zero2_sharded(e) ? arena_printf(e->a, "%szero2_grad(off)", pfx(e)) : "(grd + (off))");
}

/* One macro a parameter, P<name>: where the kernels find it (prm, wl or the gathered layer). */
static void emit_param_macros(Emit *e) {
    const IrGraph *g = e->g;
    for (int i = 0; i < IR_NPARAMS(g); i++) {
        const SchedParam *sp = &e->s->params[i];
        if (cg_mst(e))
            E(e, "#define P%s (wl + %lld) /* ", e->pname[i], (long long)cg_layer_at(e, i));
        else if (cg_zero3(e))
            E(e, "#define P%s mprt_zero3_param(%lld) /* ", e->pname[i], (long long)e->poff[i]);
        else
            E(e, "#define P%s (prm + %lld) /* ", e->pname[i], (long long)e->poff[i]);
        put_comment_text(e, shape_str(e, DT_F32, &sp->local));
        if (sp->split_dim >= 0)
            E(e, " of %s, split on dim %d", shape_str(e, DT_F32, &IR_PARAM(g, i)->shape),
              sp->split_dim);
        E(e, ", stage %d */\n", sp->stage);
    }
}

/* PARAMS: every tensor whole, as checkpoints hold it, and how this plan shards it. */
static void emit_param_table(Emit *e) {
    const IrGraph *g = e->g;
    E(e, "\n/* Every tensor whole, as checkpoints hold it, and how this plan shards it "
         "(MprtParam,\n"
         " * mprt_trainer.h): name, stage, dims, whole shape, offset and count of the "
         "local shard,\n"
         " * which is outer x chunk x inner of outer x (parts*chunk) x inner, and the "
         "initial values. "
         "*/\n");
    E(e, "#define NUM_PARAMS %d\nstatic const MprtParam PARAMS[NUM_PARAMS + 1] = {\n",
      IR_NPARAMS(g));
    for (int i = 0; i < IR_NPARAMS(g); i++) {
        const IrParam *p = IR_PARAM(g, i);
        const SchedParam *sp = &e->s->params[i];
        int64_t outer, chunk, inner;
        int parts, kind;
        double a, b;
        param_view(e, i, &outer, &chunk, &inner, &parts);
        param_init(e, i, &kind, &a, &b);
        E(e, "    {");
        put_c_string(e, p->name);
        E(e, ", %d, %d, {", sp->stage, p->shape.rank);
        for (int k = 0; k < p->shape.rank; k++)
            E(e, "%s%lld", k ? ", " : "", (long long)p->shape.d[k]);
        E(e, "}, %lld, %lld, %lld, %lld, %lld, %d, %s, %s, %s},\n", (long long)e->poff[i],
          (long long)ir_shape_numel(&sp->local), (long long)outer, (long long)chunk,
          (long long)inner, parts, init_name[kind], flt(e, a), flt(e, b));
    }
    E(e, "    {NULL, 0, 0, {0}, 0, 0, 0, 0, 0, 0, MPRT_INIT_ZERO, 0.0f, 0.0f}, /* keeps "
         "the array "
         "non-empty */\n};\n");
}

void emit_params(Emit *e) {
    const IrGraph *g = e->g;
    const Schedule *s = e->s;
    int64_t *tot = arena_calloc(e->a, (size_t)s->S, sizeof *tot);
    for (int i = 0; i < IR_NPARAMS(g); i++) {
        e->pname[i] = cg_mangle(e->a, "", i, IR_PARAM(g, i)->name);
        e->poff[i] = tot[s->params[i].stage];
        tot[s->params[i].stage] += ir_shape_numel(&s->params[i].local);
    }
    emit_param_arenas(e);
    E(e, "static const int64_t STAGE_PARAMS[MESH_S] = {");
    for (int k = 0; k < s->S; k++)
        E(e, "%s%lld", k ? ", " : "", (long long)tot[k]);
    E(e, "};\n");
    if (cg_mst(e)) emit_layer_params(e);
    emit_param_macros(e);
    emit_param_table(e);
    if (s->zero) emit_zero_table(e);
    emit_model(e);
}

/* ───────────────────────────── data ───────────────────────────── */

/* The range of an integer input: the vocabulary of the embedding reading it, or the classes
 * of the loss it labels; 0 for floats. */
int64_t cg_int_range(const IrGraph *g, int value) {
    for (int i = 0; i < IR_NNODES(g); i++) {
        const IrNode *n = IR_NODE(g, i);
        if (n->op == OP_EMBEDDING && n->inputs[0] == value) return ir_arg_int(n, EMBEDDING_VOCAB);
        if (n->op == OP_CROSS_ENTROPY && n->inputs[1] == value) {
            const Shape *s = &IR_VALUE(g, n->inputs[0])->shape;
            return s->d[s->rank - 1];
        }
    }
    return 0;
}

/* --data reads the first input; --labels the first label, or, in a model without labels
 * (a regression onto an `input target`), the second input. Others are always synthetic. */
static int first_of(const Emit *e, ValueKind k) {
    int seen = 0;
    for (int v = 0; v < IR_NVALUES(e->g); v++)
        if (IR_VALUE(e->g, v)->kind == k) return v;
    if (k != VAL_LABEL) return -1;
    for (int v = 0; v < IR_NVALUES(e->g); v++)
        if (IR_VALUE(e->g, v)->kind == VAL_INPUT && seen++ == 1) return v;
    return -1;
}

void emit_loaders(Emit *e) {
    int x = first_of(e, VAL_INPUT), y = first_of(e, VAL_LABEL);
    E(e, "/* Inputs and labels (MprtData, docs/runtime.md): replica j's micro-batch i of a "
         "step is\n"
         " * samples step*BATCH + j*BATCH/MESH_D + i*MB .. + MB of a file, or synthetic "
         "ones. */\n");
    for (int v = 0; v < IR_NVALUES(e->g); v++) {
        const IrValue *iv = IR_VALUE(e->g, v);
        if (iv->kind == VAL_ACT) continue;
        const char *nm = cg_mangle(e->a, "d", v, iv->name);
        E(e, "static MprtDataFile %s_file;\nstatic const MprtData %s = {", nm, nm);
        put_c_string(e, arena_printf(e->a, "data.%s", iv->name));
        E(e, ", %s, %d, {BATCH", iv->dtype != DT_F32 ? "MPRT_I32" : "MPRT_F32", iv->shape.rank);
        for (int k = 1; k < iv->shape.rank; k++)
            E(e, ", %lld", (long long)iv->shape.d[k]);
        E(e, "}, %lld, &%s_file", (long long)cg_int_range(e->g, v), nm);
        if (v == y && x >= 0 && x < y) /* synthetic: the teacher's answer to the input */
            E(e, ", &%s", cg_mangle(e->a, "d", x, IR_VALUE(e->g, x)->name));
        else
            E(e, ", NULL");
        E(e, "}; /* ");
        put_comment_text(e, iv->name);
        E(e, " %s */\n", shape_str(e, iv->dtype, &iv->shape));
    }
    E(e, "static void load(const MprtData *d, void *dst, int64_t step, int micro) {\n"
         "    int64_t first = step * BATCH + (int64_t)mesh->j * (BATCH / MESH_D) + "
         "(int64_t)micro "
         "* MB;\n");
    E(e, "    %sdata_rows(d, seed, first, MB, dst);\n}\n\n", pfx(e));
}

/* ───────────────────────────── main ───────────────────────────── */

/* The runtime's name of each of the schedule's collective kinds (passes.h's CollKind). */
static const char *const coll_c[COLL__COUNT] = {
    [COLL_NONE] = "MPRT_COLL_NONE",
    [COLL_SLICE] = "MPRT_COLL_SLICE",
    [COLL_ALLREDUCE] = "MPRT_ALLREDUCE",
    [COLL_ALLGATHER] = "MPRT_ALLGATHER",
    [COLL_REDUCESCATTER] = "MPRT_REDUCESCATTER",
    [COLL_ALLTOALL] = "MPRT_ALLTOALL",
    [COLL_SENDRECV] = "MPRT_SENDRECV",
};

/* The schedule's byte count, one entry per (stage, group, collective) that moves bytes, each
 * naming the runtime's enums, so the runtime's check never depends on their order. */
static void emit_predicted(Emit *e) {
    const Schedule *s = e->s;
    E(e, "/* Bytes this plan moves per device per step, by stage, group and collective (the\n"
         " * schedule's count, which the runtime's counters must match: mprt_check_bytes). "
         "*/\n"
         "static const MprtPredicted PREDICTED[] = {\n");
    int n = 0;
    for (int k = 0; k < s->S; k++)
        for (int gk = 0; gk < GROUP__COUNT; gk++)
            for (int c = 0; c < COLL__COUNT; c++) {
                int64_t b = s->stages[k].bytes[gk][c];
                if (!b) continue;
                E(e, "    {%d, %s, %s, %lld},\n", k, group_c((GroupKind)gk), coll_c[c],
                  (long long)b);
                n++;
            }
    E(e,
      "    {0, MPRT_TENSOR, MPRT_COLL_NONE, 0}, /* keeps the array non-empty */\n};\n"
      "#define NUM_PREDICTED %d\n\n",
      n);
}

void emit_summary(Emit *e) {
    const Schedule *s = e->s;
    E(e, "/* Printed at start: the plan in a few lines. */\nstatic const char "
         "PLAN_SUMMARY[] =\n");
    /* the report's own summary (predicted step time, memory), one string literal per line
     */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (mem) {
        pass_report_summary(e->g, mem);
        fclose(mem);
        for (char *line = text, *nl; line && *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (!nl) nl = line + strlen(line) - 1;
            E(e, "    ");
            put_c_string(e, arena_printf(e->a, "%.*s\n", (int)(nl - line), line));
            E(e, "\n");
        }
        free(text);
    }
    char b[5][48]; /* the report's words and × (docs/report.md), octal-escaped in the C */
    E(e, "    ");
    put_c_string(
        e,
        arena_printf(e->a, "plan: S=%s × d=%s × t=%s, %s of %s, batch %lld\n",
                     units_n(b[0], 48, s->S, "stage"), units_n(b[1], 48, s->d, "replica"),
                     units_n(b[2], 48, s->t, "tensor rank"), units_n(b[3], 48, s->m, "micro-batch"),
                     units_n(b[4], 48, (long long)s->micro, "sample"), (long long)s->batch));
    E(e, "\n");
    for (int i = 0; i < IR_NNODES(e->g); i++) {
        const IrNode *n = IR_NODE(e->g, i);
        const PlanNode *pn = &e->g->plan->nodes[i];
        E(e, "    ");
        put_c_string(e, arena_printf(e->a, "  stage %d  %-24s %-14s %s\n", pn->stage, n->name,
                                     ir_ops[n->op].name, strat_name(pn->strat)));
        E(e, "\n");
    }
    E(e, "    \"\";\n\n");
    emit_predicted(e);
}

static void emit_free_all(Emit *e) {
    E(e, "static void free_all(void) {\n");
    if (e->t->dev)
        E(e, "    void *const dev[] = {prm, grd, opt1, opt2, fbase, gbase, scratch, xfer, "
             "xbase, rfbase};\n"
             "    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) "
             "mprt_cu_free(dev[i]);\n"
             "    mprt_cu_free(ibase), mprt_cu_free(xibase), mprt_cu_free(ribase), "
             "mprt_cu_free(dloss);\n");
    else
        E(e, "    free(prm), free(grd), free(opt1), free(opt2), free(fbase), free(ibase), "
             "free(gbase);\n"
             "    free(scratch), free(xfer), free(xbase), free(xibase), free(rfbase), "
             "free(ribase);\n");
    if (cg_bf16(e)) E(e, "    free(hbase), free(rhbase), free(work);\n");
    if (cg_bf16_cu(e)) E(e, "    mprt_cu_free(hbase), mprt_cu_free(rhbase), mprt_cu_free(work);\n");
    if (e->s->zero) E(e, "    %s(gsh);\n", e->t->dev ? "mprt_cu_free" : "free");
    if (cg_zero_master(e) && !e->t->dev)
        E(e, "    mprt_zero_master(NULL, NULL), mprt_bf16_weights(NULL, NULL, 0, NULL, 0),\n"
             "        mprt_set_wire_bf16(false), free(mst), free(wl);\n");
    else if (cg_bf16(e))
        E(e, "    mprt_bf16_weights(NULL, NULL, 0, NULL, 0), mprt_set_wire_bf16(false), free(mst), "
             "free(wl);\n");
    if (cg_zero_master(e) && e->t->dev) E(e, "    mprt_cu_zero_master(NULL, NULL);\n");
    if (cg_bf16_cu(e))
        E(e, "    mprt_cu_bf16_weights(NULL, NULL, 0, NULL, 0), mprt_set_wire_bf16(false), "
             "mprt_cu_free(mst), mprt_cu_free(wl);\n");
    if (cg_zero2_sharded(e)) E(e, "    %szero2_teardown();\n", pfx(e));
    if (cg_zero3(e)) E(e, "    mprt_zero3_teardown();\n");
    for (int v = 0; v < IR_NVALUES(e->g); v++)
        if (IR_VALUE(e->g, v)->kind != VAL_ACT)
            E(e, "    mprt_data_close(&%s);\n", cg_mangle(e->a, "d", v, IR_VALUE(e->g, v)->name));
    E(e, "}\n\n");
}

/* The parameter, gradient and optimizer arenas (on the device: device memory), each in its
 * memory category (mprt_falloc_in, mprt_cu_falloc_in) and exactly its size: the weights; the
 * gradients whole (ZeRO-1 reduces each layer's part in place), or under ZeRO-2 this rank's
 * parts only; the optimizer states (one for SGD, two for Adam), under ZeRO this rank's parts. */
static void emit_setup_arenas(Emit *e) {
    const char *f = e->t->dev ? "mprt_cu_falloc_in" : "mprt_falloc_in";
    E(e,
      "    mprt_mem_reset(); /* counts what follows by category (mprt_check_memory) */\n"
      "    int64_t np = %s\n",
      cg_zero3(e) ? "STAGE_SHARDS[mesh->s]; /* ZeRO-3: the weights are this rank's parts too */"
                  : "STAGE_PARAMS[mesh->s];");
    if (cg_mst(e))
        E(e, "    prm = %s(MPRT_MEM_PARAMS, np); /* bf16: 2 bytes a weight */\n",
          e->t->dev ? "mprt_cu_halloc_in" : "mprt_halloc_in");
    else
        E(e, "    prm = %s(MPRT_MEM_PARAMS, np);\n", f);
    if (e->s->zero < 2) E(e, "    grd = %s(MPRT_MEM_GRADS, np);\n", f);
    E(e, "    int64_t ns = %s;%s\n", e->s->zero ? "STAGE_SHARDS[mesh->s]" : "np",
      e->s->zero ? " /* ZeRO: this rank's parts */" : "");
    E(e, "    opt1 = %s(MPRT_MEM_OPTIM, ns);\n", f);
    if (e->g->train.opt != OPT_SGD) E(e, "    opt2 = %s(MPRT_MEM_OPTIM, ns);\n", f);
    if (e->s->zero >= 2)
        E(e,
          "    gsh = %s(MPRT_MEM_GRADS, ns); /* ZeRO-%d: no whole gradient arena */\n"
          "    %szero2_setup(&ZERO, gsh); /* and two transient slots */\n",
          f, e->s->zero, pfx(e));
    if (cg_zero3(e))
        E(e, "    mprt_zero3_setup%s(&ZERO, prm); /* and the gathered layer's buffer */\n",
          cg_mst(e) ? "_bf16" : "");
    if (e->t->dev)
        E(e, "    dloss = (double *)mprt_cu_malloc(2 * sizeof(double)); /* [1]: recomputed losses "
             "*/\n");
}

/* Bytes of the per-sample loss values stage k's activations count in the plan (4 per sample
 * of a micro-batch, 2 under bf16, in the loss's layout, per micro-batch in flight): the trainer
 * sums them into the step's loss instead of keeping them. */
static int64_t loss_bytes(const Emit *e, int k) {
    const SchedStage *st = &e->s->stages[k];
    int64_t n = 0;
    for (int id = st->first_node; id <= st->last_node; id++) {
        const IrNode *nd = IR_NODE(e->g, id);
        const PlanNode *pn = &e->g->plan->nodes[id];
        if (IR_VALUE(e->g, nd->output)->shape.rank != 0) continue;
        bool split = e->s->t > 1 && (pn->out_layout == LAYOUT_B || pn->out_layout == LAYOUT_F);
        n += (cg_mst(e) ? 2 : 4) * e->s->micro / (split ? e->s->t : 1) *
             (pn->recompute ? 1 : st->stash);
    }
    return n;
}

/* The plan's memory per device of each stage, by category (the report's "memory per device
 * by stage"), which the C trainer's allocations are checked against (mprt_check_memory). */
static void emit_memory(Emit *e) {
    E(e, "/* The plan's bytes per device of each stage: parameters, gradients, optimizer "
         "state,\n * activations, ZeRO-2's slots, buffers; per-sample losses (mprt_check_memory). "
         "*/\n"
         "static const MprtMemPredicted MEMORY[MESH_S] = {\n");
    for (int k = 0; k < e->s->S; k++) {
        const PlanStage *ps = &e->g->plan->stages[k];
        E(e, "    {{%lld, %lld, %lld, %lld, %lld, %lld}, %lld},\n", (long long)ps->mem_params,
          (long long)ps->mem_grads, (long long)ps->mem_optim, (long long)ps->mem_acts,
          (long long)ps->mem_zero_buf, (long long)ps->mem_buffers, (long long)loss_bytes(e, k));
    }
    E(e,
      "};\n/* Floats of each optimizer-state arena of stage s (ZeRO: this rank's parts). */\n"
      "#define STATE_FLOATS(s) %s[s]\n",
      e->s->zero ? "STAGE_SHARDS" : "STAGE_PARAMS");
    E(e,
      "/* Floats of the trainer's weight arena (TRAINER.arena[0]) of stage s, and the working "
      "copy\n * rebuilt from it after the C API replaced it (a bf16 trainer's; else nothing). "
      "*/\n#define WEIGHT_FLOATS(s) %s[s]\n#define WEIGHTS_REFRESH() %s\n\n",
      cg_zero_master(e) || cg_zero3(e) ? "STAGE_SHARDS" : "STAGE_PARAMS",
      cg_zero_master(e) ? arena_printf(e->a, "%szero_master_params(&ZERO, mst, prm, false)", pfx(e))
                        : "mprt_bf16_refresh()");
}

/* setup_rank's end for bf16 with ZeRO (docs/runtime.md and docs/cuda.md, "ZeRO under bf16"):
 * this rank's parts of the f32 master weights (mst), the 16-bit working copy registered beside
 * them, and the weights drawn whole then split (mprt_zero_params_init). The CUDA trainer's
 * arenas are device memory (the mprt_cu_ allocations and registration). */
static void emit_setup_zero_master(Emit *e) {
    const char *cu = e->t->dev ? "cu_" : "";
    E(e,
      "    /* bf16 + ZeRO: this rank's parts of the f32 master weights; traffic in bf16 */\n"
      "    mst = mprt_%sfalloc_in(MPRT_MEM_OPTIM, ns);\n"
      "    int64_t nl = STAGE_LAYER_PARAMS[mesh->s];\n"
      "    wl = mprt_%sfalloc_in(MPRT_MEM_BUFFERS, nl); /* one layer's weights as f32 */\n"
      "    mprt_%sbf16_weights(NULL, prm, np, wl, nl); /* the working copy, no whole master */\n"
      "    mprt_%szero_master(mst, prm), mprt_set_wire_bf16(true);\n"
      "    STAGES[mesh->s].alloc();\n"
      "    mprt_zero_params_init(&MODEL, mst, seed); /* mst: the parts, prm: all, bf16 */\n"
      "    mprt_layer_timers(LAYERS, NUM_LAYERS);\n}\n\n",
      cu, cu, cu, cu);
}

/* After mprt_init: shared by the command line and the C API's create (emit_capi.c). */
static void emit_setup_rank(Emit *e) {
    E(e,
      "/* Every layer's name and stage (its timers \"fwd.NAME\" and \"bwd.NAME\") and the\n"
      " * plan's seconds for one micro-batch's forward and backward on one device. */\n"
      "#define NUM_LAYERS %d\nstatic const MprtLayer LAYERS[NUM_LAYERS] = {\n",
      IR_NNODES(e->g));
    for (int i = 0; i < IR_NNODES(e->g); i++) {
        const PlanNode *pn = &e->g->plan->nodes[i];
        E(e, "    {");
        put_c_string(e, IR_NODE(e->g, i)->name);
        E(e, ", %d, %.6g, %.6g},\n", pn->stage, pn->fwd_time, pn->bwd_time);
    }
    E(e, "};\n\n");
    E(e, "/* This rank's parameter and activation buffers, initial weights (from `seed`) "
         "and layer\n"
         " * timers. After mprt_init; free_all undoes it. */\n"
         "static void setup_rank(void) {\n");
    emit_setup_arenas(e);
    if (cg_zero_master(e)) {
        emit_setup_zero_master(e);
        return;
    }
    if (cg_mst(e)) { /* bf16 on either target: the same calls, mprt_cu_ on the device */
        const char *cu = e->t->dev ? "cu_" : "";
        E(e,
          "    mst = mprt_%sfalloc_in(MPRT_MEM_OPTIM, np); /* bf16: the f32 master weights; "
          "traffic in bf16 */\n"
          "    int64_t nl = STAGE_LAYER_PARAMS[mesh->s];\n"
          "    wl = mprt_%sfalloc_in(MPRT_MEM_BUFFERS, nl); /* one layer's weights as f32 */\n"
          "    mprt_%sbf16_weights(mst, prm, np, wl, nl), mprt_set_wire_bf16(true);\n",
          cu, cu, cu);
    }
    E(e,
      "    STAGES[mesh->s].alloc();\n    mprt_%sparams_init(&MODEL, %s, seed);%s\n"
      "    mprt_layer_timers(LAYERS, NUM_LAYERS);\n",
      cg_zero3(e) ? "zero_" : "", cg_mst(e) ? "mst" : "prm",
      cg_zero3(e) ? " /* drawn whole, then this rank's parts kept */" : "");
    E(e, "}\n\n");
}

/* --data and --labels: the first input and the first label, if the model has them. */
static void emit_open_data(Emit *e) {
    int x = first_of(e, VAL_INPUT), y = first_of(e, VAL_LABEL);
    E(e,
      "/* --data and --labels: the first input and the first label (a token stream feeds "
      "both\n"
      " * when they are token sequences; mprt_data_open_files checks the files). */\n"
      "static bool open_data(const MprtArgs *a, MprtErr *err) {\n"
      "    return mprt_data_open_files(%s%s, %s%s, a->data, a->labels, err);\n}\n\n",
      x >= 0 ? "&" : "", x >= 0 ? cg_mangle(e->a, "d", x, IR_VALUE(e->g, x)->name) : "NULL",
      y >= 0 ? "&" : "", y >= 0 ? cg_mangle(e->a, "d", y, IR_VALUE(e->g, y)->name) : "NULL");
}

/* The plan's predictions the run compares itself with (MprtForecast): the predicted step, the
 * model's FLOPs per step as the report counts them (forward + backward of every layer), the
 * preset's per-device FLOP/s, and the tokens of one sample when the first input is a token
 * sequence (i32[batch, T]). */
static void emit_forecast(Emit *e) {
    const IrGraph *g = e->g;
    double flops = 0;
    for (int i = 0; i < IR_NNODES(g); i++)
        flops += (double)IR_NODE(g, i)->flops_fwd + (double)IR_NODE(g, i)->flops_bwd;
    int x = first_of(e, VAL_INPUT);
    const IrValue *in = x >= 0 ? IR_VALUE(g, x) : NULL;
    long long tokens = in && in->dtype == DT_I32 && in->shape.rank == 2 ? in->shape.d[1] : 0;
    E(e,
      "    {%.6g, %.6g, %.6g, %lld}, /* predicted step s, FLOPs/step, peak FLOP/s, tokens "
      "*/\n",
      g->plan->totals.step_time, flops, g->cluster.flops, tokens);
}

/* The token input --generate fills ("&d0_tok"), or "NULL": a model whose first input and
 * first label are token sequences i32[batch, T] over a vocabulary (a language model). */
static const char *token_input(Emit *e) {
    int x = first_of(e, VAL_INPUT), y = first_of(e, VAL_LABEL);
    if (x < 0 || y < 0) return "NULL";
    const IrValue *xv = IR_VALUE(e->g, x), *yv = IR_VALUE(e->g, y);
    if (xv->dtype == DT_F32 || yv->dtype == DT_F32 || xv->shape.rank != 2 || yv->shape.rank != 2 ||
        xv->shape.d[1] != yv->shape.d[1] || cg_int_range(e->g, x) <= 0 ||
        cg_int_range(e->g, y) <= 0)
        return "NULL";
    return arena_printf(e->a, "&%s", cg_mangle(e->a, "d", x, xv->name));
}

/* The run itself is the runtime's (mprt_trainer_main); the trainer hands it its parts. On the
 * device, start and stop also bring the GPU up and down. */
void emit_main(Emit *e) {
    bool dev = e->t->dev;
    emit_free_all(e);
    emit_memory(e);
    emit_setup_rank(e);
    emit_open_data(e);
    E(e,
      "/* After mprt_init: the mesh, the seed, %sthis rank's buffers and weights. */\n"
      "static void trainer_start(const MprtArgs *a) {\n",
      dev ? "the GPU, " : "");
    if (dev) E(e, "    mprt_cu_trainer_up(a); /* the GPU, --comm, --tf32, --profile's syncs */\n");
    E(e, "    mesh = mprt_mesh(), seed = a->seed;\n    setup_rank();\n}\n\n");
    if (dev)
        E(e,
          "static void trainer_stop(void) {\n    free_all();\n    mprt_cu_trainer_down();\n}\n\n");
    emit_hf(e);
    E(e,
      "/* The trainer as the runtime's run sees it (runtime/mprt_trainer.h). */\n"
      "static const MprtTrainer TRAINER = {\n"
      "    &MODEL, BATCH, DEFAULT_STEPS, DEFAULT_SEED, %s, /* model, plan, defaults, "
      "target */\n"
      "    PLAN_SUMMARY, PREDICTED, NUM_PREDICTED, {&%s, &opt1, &opt2},\n"
      "    trainer_start, open_data, train_step, %s, %s,\n",
      dev ? "true" : "false", cg_mst(e) ? "mst" : "prm", dev ? "trainer_stop" : "free_all",
      dev ? "mprt_cu_stats_flush" : "NULL");
    emit_forecast(e);
    E(e, "    STAGES, %s, /* --generate: the stage programs, the token input */\n", token_input(e));
    int x = first_of(e, VAL_INPUT), y = first_of(e, VAL_LABEL);
    E(e, "    %s%s, %s%s, /* the first input and label (--data, --val-data) */\n",
      x >= 0 ? "&" : "", x >= 0 ? cg_mangle(e->a, "d", x, IR_VALUE(e->g, x)->name) : "NULL",
      y >= 0 ? "&" : "", y >= 0 ? cg_mangle(e->a, "d", y, IR_VALUE(e->g, y)->name) : "NULL");
    E(e, "    &HF, /* --export-hf */\n");
    E(e, "    %s, /* the gradients the non-finite guard checks%s */\n", dev ? "NULL" : "&grd",
      dev ? " (device memory: the loss alone)" : "");
    E(e, "    MEMORY, /* the plan's memory per device, against what is allocated */\n};\n\n");
    E(e, "#ifndef MPCC_NO_MAIN /* defined when the trainer is built as a library (C API) */\n"
         "int main(int argc, char **argv) { return mprt_trainer_main(&TRAINER, argc, argv); "
         "}\n#endif\n");
}
