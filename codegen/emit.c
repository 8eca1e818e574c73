/*
 * emit.c: the trainer emitter — the SPMD schedule printed as a standalone MPI trainer in C
 * (cg_emit_c) or as a CUDA trainer (.cu, cg_emit_cuda) running on the GPU through
 * runtime/cuda/mprt_cuda.h (docs/cuda.md).
 *
 * The schedule (passes/lower_spmd.c) already says everything a rank does; this file only
 * decides how it reads. The output follows llm.c: named constants for every shape, one
 * `_forward` / `_backward` pair per layer calling the runtime's kernels on the local shard,
 * parameters, gradients and optimizer state each carved from one allocation, and a short
 * main(). Each pipeline stage gets a struct naming its activation buffers (one field per
 * (value, layout) buffer and per saved-for-backward stash), an allocation function, and one
 * forward and one backward function per micro-batch whose bodies are the schedule's lists in
 * order: kernels, collectives on named groups, sends and receives. The step walks the stage's
 * 1F1B order, synchronises gradients and steps the optimizer.
 *
 * Determinism: the text depends only on the graph and the schedule, walked in index order; no
 * pointers, no hash order, no clock. Safety: every identifier that comes from the .mp file is
 * mangled with an index prefix (cg_mangle), source text in comments is escaped (no comment
 * terminator, no control bytes), and names inside string literals are escaped.
 *
 * What is the same for every model is runtime code, not text here: the trainer holds its
 * parameters as a table (PARAMS, the runtime's MprtParam) and a descriptor (MODEL), and the
 * runtime (runtime/mprt_trainer.h) initialises the weights and writes and reads checkpoints
 * over them, for the trainer and the C API alike.
 *
 * One emitter, two targets: both read the same schedule the same way, so the trainers have
 * the same structure, constants, command line, checkpoints and progress line, and a
 * checkpoint of one resumes on the other. A Target names what is only spelled differently
 * (the kernel prefix mprt_ / mprt_cu_, copies, staged pipeline transfers); the few places
 * where the CUDA trainer does something else test `dev`, each in its own small function:
 *   - parameters, gradients, optimizer state and activations live in device memory, each in
 *     one allocation (dalloc/ialloc), and layout changes are mprt_cu_ collectives;
 *   - what starts on the host is uploaded (input batches), and MODEL names the runtime's
 *     download/upload calls, through which it draws the initial weights and moves
 *     checkpoint shards;
 *   - the losses accumulate into one device double (dloss) read once per step;
 *   - gradient all-reduces are started as issued and joined before the optimizer;
 *   - pipeline sends and receives keep the C trainer's MPI protocol, staged through host
 *     memory (the 1F1B order is deadlock-free under it; NCCL's blocking send/recv is not);
 *   - layer timers synchronise the device only with --profile (kernels are asynchronous);
 *   - --comm and --tf32 are added, --threads is accepted and ignored;
 *   - the output is C++ for nvcc: allocations are cast, mprt.h is included in extern "C".
 */
#include "codegen.h"
#include "report.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const SrcLoc noloc = {NULL, 0, 0, 0};

/* What differs between the targets besides the blocks that test `dev` (docs/cuda.md). */
typedef struct Target {
    const char *lang; /* "C" or "CUDA", for messages */
    const char *k;    /* kernel and collective prefix: "mprt_" or "mprt_cu_" */
    const char *copy; /* copy between buffers of the trainer: "memcpy" or "mprt_cu_copy" */
    const char *sr;   /* pipeline send/recv/wait suffix: "" or "_staged" (through host memory) */
    const char *req;  /* their request type */
    bool dev;         /* the data lives in device memory (the CUDA trainer) */
} Target;

static const Target target_c = {"C", "mprt_", "memcpy", "", "MprtReq", false};
static const Target target_cuda = {"CUDA",    "mprt_cu_",  "mprt_cu_copy",
                                   "_staged", "MprtCuReq", true};

typedef struct Emit {
    const Target *t;
    const IrGraph *g;
    const Schedule *s;
    FILE *o;
    Arena *a;
    char **bname;               /* [nbufs] struct field of each buffer */
    char **lname;               /* [nodes] function prefix of each layer */
    char **pname;               /* [params] macro suffix of each parameter */
    int64_t *poff;              /* [params] offset in its stage's parameter arena (floats) */
    int *fwd_in[IR_MAX_INPUTS]; /* [nodes] input buffers of each node's FWD */
    int *fwd_out;               /* [nodes] output buffer */
} Emit;

static void E(Emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void E(Emit *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->o, fmt, ap);
    va_end(ap);
}
static const char *pfx(const Emit *e) { return e->t->k; }
/* `mprt_zero(p, bytes)` on the host (a memset on the rank's threads), `mprt_cu_memset0(p, bytes)`
 * on the device. */
static const char *zero(const Emit *e) { return e->t->dev ? "mprt_cu_memset0(" : "mprt_zero("; }

/* ───────────────────────────── names and escaping ───────────────────────────── */

char *cg_mangle(Arena *a, const char *prefix, int index, const char *name) {
    char *s = arena_printf(a, "%s%d_%s", prefix, index, name ? name : "");
    for (char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok) *p = '_';
    }
    return s;
}

/* Source text for a comment: printable ASCII only, no comment terminator. */
static void put_comment_text(Emit *e, const char *s) {
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '*' && p[1] == '/')
            fputs("*\\/", e->o), p++;
        else if (*p == '/' && p[1] == '*')
            fputs("/\\*", e->o), p++;
        else if (*p == '\n' || *p == '\t' || *p == '\r')
            fputc(' ', e->o);
        else if (*p < 0x20 || *p >= 0x7f)
            fprintf(e->o, "\\x%02x", *p);
        else
            fputc(*p, e->o);
    }
}

/* A C string literal body: printable ASCII except quote and backslash, else octal. */
static void put_c_string(Emit *e, const char *s) {
    fputc('"', e->o);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            fputs("\\n", e->o);
        else if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\' || *p == '?')
            fprintf(e->o, "\\%03o", *p);
        else
            fputc(*p, e->o);
    }
    fputc('"', e->o);
}

static void source_comment(Emit *e, const IrNode *n, const char *indent) {
    E(e, "%s/* ", indent);
    put_comment_text(e, e->g->file);
    E(e, ":%d:%d  ", n->loc.line, n->loc.col);
    put_comment_text(e, n->text ? n->text : n->name);
    E(e, " */\n");
}

static const char *lay_name(Layout l) { return (const char *[]){"R", "B", "F", "P"}[l]; }
static Layout grad_layout_of(Layout l) { return l == LAYOUT_P ? LAYOUT_R : l; }
static const char *group_c(GroupKind k) {
    return (const char *[]){"MPRT_TENSOR", "MPRT_DATA", "MPRT_STAGE", "MPRT_PIPE"}[k];
}
static const char *strat_name(Strategy s) {
    return s == STRAT_COL ? "tensor(col)" : s == STRAT_ROW ? "tensor(row)" : "data";
}
static const char *shape_str(Emit *e, DType t, const Shape *s) {
    char buf[160];
    return arena_strdup(e->a, ir_shape_str(buf, sizeof buf, t, s));
}

/* A float constant as C source: always with a '.' or an exponent, then 'f'. */
static const char *flt(Emit *e, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", v);
    bool dot = strpbrk(buf, ".eEn") != NULL;
    return arena_printf(e->a, "%s%sf", buf, dot ? "" : ".0");
}

/* ───────────────────────────── sizes ───────────────────────────── */

static const SchedBuf *B(const Emit *e, int b) { return &e->s->bufs[b]; }
static const IrValue *BV(const Emit *e, int b) { return IR_VALUE(e->g, B(e, b)->value); }
static bool is_int(const Emit *e, int b) { return BV(e, b)->dtype != DT_F32; }
static int64_t lnumel(const Emit *e, int b) { return ir_shape_numel(&B(e, b)->local); }
static int64_t ldim(const Emit *e, int b, int i) {
    const Shape *s = &B(e, b)->local;
    return s->d[i < 0 ? s->rank + i : i];
}
static const IrParam *P(const Emit *e, const IrNode *n, ParamRole r) {
    for (int i = n->first_param; i < n->first_param + n->nparams; i++)
        if (IR_PARAM(e->g, i)->role == r) return IR_PARAM(e->g, i);
    return NULL;
}
static int PI(const Emit *e, const IrNode *n, ParamRole r) {
    const IrParam *p = P(e, n, r);
    return p ? (int)(p - IR_PARAM(e->g, 0)) : -1;
}
/* "P3_fc1_weight" or "NULL"; with grad "G3_fc1_weight". */
static const char *pref(Emit *e, const IrNode *n, ParamRole r, bool grad) {
    int i = PI(e, n, r);
    return i < 0 ? "NULL" : arena_printf(e->a, "%s%s", grad ? "G" : "P", e->pname[i]);
}
static const char *add_flag(Emit *e, const IrNode *n, ParamRole r) {
    int i = PI(e, n, r);
    return i >= 0 && e->s->params[i].rank0_adds ? "mesh->k == 0" : "1";
}

/* Kernel scratch (floats) and stash (floats, ints) a node needs per micro-batch. */
static int64_t node_scratch(const Emit *e, int id);
static int64_t node_stash(const Emit *e, int id);
static int64_t node_istash(const Emit *e, int id);

/* ───────────────────────────── the header ───────────────────────────── */

/* C++ for nvcc on the device: MPI's C++ bindings kept out, mprt.h inside extern "C". */
static void emit_includes(Emit *e) {
    if (!e->t->dev) {
        E(e,
          " */\n#define _POSIX_C_SOURCE 200809L\n#include <math.h>\n#include <mpi.h>\n#include "
          "<stdio.h>\n"
          "#include <stdlib.h>\n#include <string.h>\n#include <unistd.h>\n\n#include \"mprt.h\"\n"
          "#include \"mprt_kernels.h\"\n#include \"mprt_trainer.h\"\n\n");
        return;
    }
    E(e, " */\n#define _POSIX_C_SOURCE 200809L\n"
         "#define OMPI_SKIP_MPICXX 1 /* the C API only: MPI's C++ bindings do not compile "
         "warning-free */\n"
         "#define MPICH_SKIP_MPICXX 1\n#include <math.h>\n#include <mpi.h>\n#include <stdio.h>\n"
         "#include <stdlib.h>\n#include <string.h>\n\n"
         "#include \"mprt_cuda.h\" /* first: it makes mprt_kernels.h, which mprt.h includes, "
         "C++-safe */\n"
         "extern \"C\" {\n#include \"mprt.h\"\n#include \"mprt_trainer.h\"\n}\n\n");
}

static void emit_timing_c(Emit *e) {
    E(e,
      "static float *scratch, *xfer; /* kernel scratch; collective staging */\n"
      "static int timers[%d][2];      /* per layer: forward and backward seconds (--profile) */\n"
      "#define TIMED(id, call)        \\\n    do {                        \\\n        "
      "mprt_timer_start(id);   \\\n"
      "        call;                   \\\n        mprt_timer_stop(id);    \\\n    } while (0)\n",
      IR_NNODES(e->g) + 1);
}

static void emit_buffers_c(Emit *e) {
    E(e, "static float *gbase;           /* this stage's activation gradients */\n"
         "static float *fbase;           /* this stage's activations */\n"
         "static int32_t *ibase;         /* this stage's integer inputs and argmaxes */\n\n");
}

/* Kernels are asynchronous: with --profile a timed layer synchronises the device around it. */
static void emit_timing_cuda(Emit *e) {
    E(e,
      "static float *scratch, *xfer; /* kernel scratch; collective staging (device) */\n"
      "static int timers[%d][2];      /* per layer: forward and backward seconds (--profile) */\n"
      "static bool profiling;         /* --profile: layer times, at a device sync per layer */\n"
      "#define TIMED(id, call)        \\\n    do {                        \\\n"
      "        if (!profiling) {       \\\n            call;               \\\n            break;  "
      "            \\\n        }                       \\\n"
      "        mprt_cu_sync();         \\\n        mprt_timer_start(id);   \\\n"
      "        call;                   \\\n        mprt_cu_sync();         \\\n        "
      "mprt_timer_stop(id);    \\\n    } while (0)\n",
      IR_NNODES(e->g) + 1);
}

static void emit_buffers_cuda(Emit *e) {
    E(e, "static float *gbase;           /* this stage's activation gradients (device) */\n"
         "static float *fbase;           /* this stage's activations (device) */\n"
         "static int32_t *ibase;         /* this stage's integer inputs and argmaxes (device) */\n"
         "static double *dloss;          /* the step's loss, accumulated on the device */\n\n"
         "/* Device memory, zeroed. */\n"
         "static float *dalloc(int64_t n) {\n    float *p = (float *)mprt_cu_malloc(sizeof(float) "
         "* (size_t)n);\n"
         "    mprt_cu_memset0(p, sizeof(float) * (size_t)n);\n    return p;\n}\n"
         "static int32_t *ialloc(int64_t n) {\n    int32_t *p = (int32_t "
         "*)mprt_cu_malloc(sizeof(int32_t) * (size_t)n);\n"
         "    mprt_cu_memset0(p, sizeof(int32_t) * (size_t)n);\n    return p;\n}\n\n"
         "/* A reusable host buffer for uploads of input batches. */\n"
         "static void *hstage(size_t bytes) {\n    static void *buf;\n    static size_t cap;\n"
         "    if (bytes > cap) {\n        free(buf);\n        buf = malloc(bytes);\n"
         "        if (!buf) mprt_fatal(\"out of memory (%%zu bytes)\", bytes);\n        cap = "
         "bytes;\n    }\n"
         "    return buf;\n}\n\n");
}

static void emit_header(Emit *e) {
    const IrGraph *g = e->g;
    const Schedule *s = e->s;
    E(e, "/*\n * Generated by mpcc %s from ", MPCC_VERSION);
    put_comment_text(e, g->file);
    E(e, ". Do not edit: change the model and regenerate.\n *\n * model ");
    put_comment_text(e, g->name);
    int64_t np = 0;
    for (int i = 0; i < IR_NPARAMS(g); i++)
        np += ir_shape_numel(&IR_PARAM(g, i)->shape);
    E(e, ": %d layers, %lld parameters\n", IR_NNODES(g), (long long)np);
    E(e, " * mesh: %d stage(s) x %d replica(s) x %d tensor rank(s) = %d ranks (mpirun -np %d)\n",
      s->S, s->d, s->t, s->S * s->d * s->t, s->S * s->d * s->t);
    E(e, " * batch %lld = %d replica(s) x %d micro-batch(es) x %lld samples\n *\n * plan:\n",
      (long long)s->batch, s->d, s->m, (long long)s->micro);
    for (int i = 0; i < IR_NNODES(g); i++) {
        const IrNode *n = IR_NODE(g, i);
        const PlanNode *pn = &g->plan->nodes[i];
        E(e, " *   stage %d  %-12s ", pn->stage, ir_ops[n->op].name);
        put_comment_text(e, n->name);
        E(e, "  %s  %s -> %s\n", strat_name(pn->strat), lay_name(pn->in_layout[0]),
          lay_name(pn->out_layout));
    }
    emit_includes(e);
    E(e, "#define MESH_S %d\n#define MESH_D %d\n#define MESH_T %d\n", s->S, s->d, s->t);
    E(e, "#define BATCH %lld      /* samples per step */\n", (long long)s->batch);
    E(e, "#define MICRO %d        /* micro-batches per step */\n", s->m);
    E(e, "#define MB %lld         /* samples per micro-batch per replica */\n",
      (long long)s->micro);
    const TrainCfg *t = &g->train;
    E(e, "#define DEFAULT_STEPS %lld\n#define DEFAULT_SEED %lld\n", (long long)t->steps,
      (long long)t->seed);
    /* variables, not constants: the C API (emit_capi.c) lets a caller override them */
    E(e,
      "static struct {\n    float lr, momentum, beta1, beta2, eps, weight_decay;\n} hyper = {%s, "
      "%s, %s, %s, %s, %s};\n",
      flt(e, t->lr), flt(e, t->momentum), flt(e, t->beta1), flt(e, t->beta2), flt(e, t->eps),
      flt(e, t->weight_decay));
    E(e, "#define LR hyper.lr\n#define MOMENTUM hyper.momentum\n#define BETA1 hyper.beta1\n"
         "#define BETA2 hyper.beta2\n#define EPS hyper.eps\n#define WEIGHT_DECAY "
         "hyper.weight_decay\n\n");
    E(e, "static const MprtMesh *mesh;\nstatic uint64_t seed = DEFAULT_SEED;\n");
    if (e->t->dev)
        emit_timing_cuda(e);
    else
        emit_timing_c(e);
    E(e,
      "/* Per stage (--profile): \"stage.idle\" is time spent waiting on a neighbour stage or the\n"
      " * step's end (the pipeline bubble), \"stage.busy\" the rest of the step: compute and the\n"
      " * stage's own collectives. idle / (busy + idle) is the measured bubble. */\n"
      "static int t_busy, t_idle;\n#define IDLE(call) TIMED(t_idle, call)\n");
    if (e->t->dev)
        emit_buffers_cuda(e);
    else
        emit_buffers_c(e);
}

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

/* What the runtime's trainer functions (mprt_trainer.h) need of the model: the parameter
 * table, the mesh and the optimizer's state; on the device, how shards reach the host. */
static void emit_model(Emit *e) {
    OptKind opt = e->g->train.opt;
    E(e,
      "#define NUM_STATE %d /* optimizer states per parameter */\n"
      "static const char *const STATE_NAMES[NUM_STATE] = {%s};\n",
      opt == OPT_SGD ? 1 : 2, opt == OPT_SGD ? "\"momentum\"" : "\"m\", \"v\"");
    E(e,
      "static const MprtModel MODEL = {\n"
      "    MODEL_NAME, MESH_S, MESH_D, MESH_T, PARAMS, NUM_PARAMS,\n"
      "    \"%s\", NUM_STATE, STATE_NAMES, /* the optimizer and its states */\n",
      opt == OPT_SGD    ? "sgd"
      : opt == OPT_ADAM ? "adam"
                        : "adamw");
    if (e->t->dev)
        E(e,
          "    mprt_cu_download, mprt_cu_upload, /* the arenas live in device memory */\n};\n\n");
    else
        E(e, "    NULL, NULL, /* the arenas are host memory */\n};\n\n");
}

static void emit_params(Emit *e) {
    const IrGraph *g = e->g;
    const Schedule *s = e->s;
    int64_t *tot = arena_calloc(e->a, (size_t)s->S, sizeof *tot);
    for (int i = 0; i < IR_NPARAMS(g); i++) {
        e->pname[i] = cg_mangle(e->a, "", i, IR_PARAM(g, i)->name);
        e->poff[i] = tot[s->params[i].stage];
        tot[s->params[i].stage] += ir_shape_numel(&s->params[i].local);
    }
    E(e, "/* Parameters: the local shard of every tensor of this rank's stage, carved from one\n"
         " * allocation `prm`; gradients (`grd`) and optimizer state (`opt1`, `opt2`) mirror it. "
         "*/\n");
    E(e, "static float *prm, *grd, *opt1, *opt2;\n");
    E(e, "static const int64_t STAGE_PARAMS[MESH_S] = {");
    for (int k = 0; k < s->S; k++)
        E(e, "%s%lld", k ? ", " : "", (long long)tot[k]);
    E(e, "};\n");
    for (int i = 0; i < IR_NPARAMS(g); i++) {
        const SchedParam *sp = &s->params[i];
        E(e, "#define P%s (prm + %lld) /* ", e->pname[i], (long long)e->poff[i]);
        put_comment_text(e, shape_str(e, DT_F32, &sp->local));
        if (sp->split_dim >= 0)
            E(e, " of %s, split on dim %d", shape_str(e, DT_F32, &IR_PARAM(g, i)->shape),
              sp->split_dim);
        E(e, ", stage %d */\n#define G%s (grd + %lld)\n", sp->stage, e->pname[i],
          (long long)e->poff[i]);
    }
    E(e,
      "\n/* Every tensor whole, as checkpoints hold it, and how this plan shards it (MprtParam,\n"
      " * mprt_trainer.h): name, stage, dims, whole shape, offset and count of the local shard,\n"
      " * which is outer x chunk x inner of outer x (parts*chunk) x inner, and the initial values. "
      "*/\n");
    E(e, "#define NUM_PARAMS %d\nstatic const MprtParam PARAMS[NUM_PARAMS + 1] = {\n",
      IR_NPARAMS(g));
    for (int i = 0; i < IR_NPARAMS(g); i++) {
        const IrParam *p = IR_PARAM(g, i);
        const SchedParam *sp = &s->params[i];
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
    E(e, "    {NULL, 0, 0, {0}, 0, 0, 0, 0, 0, 0, MPRT_INIT_ZERO, 0.0f, 0.0f}, /* keeps the array "
         "non-empty */\n};\n");
    emit_model(e);
}

/* ───────────────────────────── stage buffers ───────────────────────────── */

static const char *aux_field(Emit *e, int id, const char *what) {
    return arena_printf(e->a, "%s_%s", e->lname[id], what);
}

static void emit_stage_struct(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    E(e,
      "/* Stage %d: the buffers of one micro-batch (local shards). `act%d[slot]` holds the\n"
      " * activations of the %d micro-batch(es) in flight; `grad%d` their gradients. */\n",
      s, s, st->stash, s);
    E(e, "typedef struct Stage%d {\n", s);
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s) continue;
        E(e, "    %s *%s; /* ", is_int(e, b) ? "int32_t" : "float", e->bname[b]);
        put_comment_text(e, BV(e, b)->name);
        E(e, " %s %s", lay_name(B(e, b)->layout),
          shape_str(e, is_int(e, b) ? DT_I32 : DT_F32, &B(e, b)->local));
        if (B(e, b)->split_dim >= 0) E(e, " of %s", shape_str(e, BV(e, b)->dtype, &B(e, b)->full));
        E(e, " */\n");
    }
    for (int id = st->first_node; id <= st->last_node; id++) {
        if (node_stash(e, id))
            E(e, "    float *%s; /* saved for backward */\n", aux_field(e, id, "stash"));
        if (node_istash(e, id)) E(e, "    int32_t *%s; /* argmax */\n", aux_field(e, id, "argmax"));
    }
    E(e, "    int unused;\n} Stage%d;\nstatic Stage%d act%d[%d], grad%d;\n\n", s, s, s, st->stash,
      s);
}

/* The allocation function is written out directly (no helper) so the offsets are visible. */
static void emit_alloc(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    int64_t fsz = 0, isz = 0, gsz = 0, scr = 1, xf = 1;
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s) continue;
        *(is_int(e, b) ? &isz : &fsz) += lnumel(e, b);
        if (B(e, b)->grad) gsz += lnumel(e, b);
        if (ir_shape_numel(&B(e, b)->full) > xf) xf = ir_shape_numel(&B(e, b)->full);
    }
    for (int id = st->first_node; id <= st->last_node; id++) {
        fsz += node_stash(e, id), isz += node_istash(e, id);
        if (node_scratch(e, id) > scr) scr = node_scratch(e, id);
    }
    E(e, "static void stage%d_alloc(void) {\n", s);
    const char *fa = e->t->dev ? "dalloc" : "mprt_falloc";
    E(e, "    float *f = %s((int64_t)%d * %lld);\n", fa, st->stash, (long long)(fsz + 1));
    if (e->t->dev)
        E(e, "    int32_t *n = ialloc((int64_t)%d * %lld);\n", st->stash, (long long)(isz + 1));
    else
        E(e, "    int32_t *n = calloc((size_t)%d * %lld, sizeof(int32_t));\n", st->stash,
          (long long)(isz + 1));
    E(e, "    float *g = %s(%lld);\n", fa, (long long)(gsz + 1));
    E(e, "    gbase = g;\n    scratch = %s(%lld);\n    xfer = %s(%lld);\n", fa, (long long)scr, fa,
      (long long)(2 * xf));
    E(e, "%s    fbase = f, ibase = n;\n",
      e->t->dev ? "" : "    if (!n) mprt_fatal(\"out of memory\");\n");
    E(e, "    for (int i = 0; i < %d; i++, f += %lld, n += %lld) {\n", st->stash,
      (long long)(fsz + 1), (long long)(isz + 1));
    int64_t fo = 0, io = 0, go = 0;
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s) continue;
        int64_t *off = is_int(e, b) ? &io : &fo;
        E(e, "        act%d[i].%s = %s + %lld;\n", s, e->bname[b], is_int(e, b) ? "n" : "f",
          (long long)*off);
        *off += lnumel(e, b);
    }
    for (int id = st->first_node; id <= st->last_node; id++) {
        if (node_stash(e, id)) {
            E(e, "        act%d[i].%s = f + %lld;\n", s, aux_field(e, id, "stash"), (long long)fo);
            fo += node_stash(e, id);
        }
        if (node_istash(e, id)) {
            E(e, "        act%d[i].%s = n + %lld;\n", s, aux_field(e, id, "argmax"), (long long)io);
            io += node_istash(e, id);
        }
    }
    E(e, "    }\n");
    for (int b = 0; b < e->s->nbufs; b++) {
        if (B(e, b)->stage != s || !B(e, b)->grad) continue;
        E(e, "    grad%d.%s = g + %lld;\n", s, e->bname[b], (long long)go);
        go += lnumel(e, b);
    }
    E(e, "}\n#define STAGE%d_GRADS %lld\n\n", s, (long long)gsz);
}

/* ───────────────────────────── layers ───────────────────────────── */

/* What one layer's functions need: its buffers as `a->field` / `d->field` expressions. */
typedef struct Lyr {
    Emit *e;
    int id;
    const IrNode *n;
    const PlanNode *pn;
    int in[IR_MAX_INPUTS], out;
    const char *C; /* constant prefix, upper case */
} Lyr;

static const char *A(const Lyr *l, int b) { return arena_printf(l->e->a, "a->%s", l->e->bname[b]); }
static const char *D(const Lyr *l, int b) {
    return b >= 0 && B(l->e, b)->grad ? arena_printf(l->e->a, "d->%s", l->e->bname[b]) : "NULL";
}
static void K(const Lyr *l, const char *name, int64_t v, const char *what) {
    E(l->e, "#define %s_%s %lld%s%s%s\n", l->C, name, (long long)v, what ? " /* " : "",
      what ? what : "", what ? " */" : "");
}

static int64_t prod(const Shape *s, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= s->d[i];
    return p;
}

/* What the rules table's memory rules see for node `id`: its local input and output shapes. */
static RuleCtx rule_ctx(const Emit *e, int id) {
    RuleCtx c = {.n = IR_NODE(e->g, id),
                 .strat = e->g->plan->nodes[id].strat,
                 .t = e->s->t,
                 .dev = e->t->dev};
    int x = e->fwd_in[0][id], o = e->fwd_out[id];
    if (x >= 0) c.in = B(e, x)->local;
    if (o >= 0) c.out = B(e, o)->local;
    return c;
}

/* Floats node `id` keeps for backward besides its activations (passes/rules.c). */
static int64_t node_stash(const Emit *e, int id) {
    RuleCtx c = rule_ctx(e, id);
    return e->fwd_in[0][id] < 0 ? 0 : rules_stash(&c);
}

/* Int32s node `id` keeps for backward (maxpool's argmax). */
static int64_t node_istash(const Emit *e, int id) {
    RuleCtx c = rule_ctx(e, id);
    return e->fwd_out[id] < 0 ? 0 : rules_istash(&c);
}

/* Floats of scratch node `id` needs. */
static int64_t node_scratch(const Emit *e, int id) {
    RuleCtx c = rule_ctx(e, id);
    return e->fwd_in[0][id] < 0 || e->fwd_out[id] < 0 ? 0 : rules_scratch(&c);
}

static void open_fwd(const Lyr *l, bool loss) {
    source_comment(l->e, l->n, "");
    E(l->e, "static %s %s_forward(const Stage%d *a, int64_t step, int64_t n0) {\n",
      loss ? "double" : "void", l->e->lname[l->id], l->pn->stage);
    E(l->e, "    (void)step, (void)n0;\n");
}
static void open_bwd(const Lyr *l) {
    E(l->e,
      "static void %s_backward(const Stage%d *a, const Stage%d *d, int64_t step, int64_t n0) {\n",
      l->e->lname[l->id], l->pn->stage, l->pn->stage);
    E(l->e, "    (void)a, (void)d, (void)step, (void)n0;\n");
}

static void lyr_linear(const Lyr *l) {
    Emit *e = l->e;
    int64_t I = ldim(e, l->in[0], -1), O = ldim(e, l->out, -1);
    K(l, "N", lnumel(e, l->in[0]) / I, "rows (samples x positions)");
    K(l, "I", I, "input features (local)");
    K(l, "O", O, "output features (local)");
    const IrNode *n = l->n;
    open_fwd(l, false);
    E(e, "    %slinear_forward(%s, %s, %s, %s, %s_N, %s_I, %s_O, %s);\n}\n", pfx(e), A(l, l->out),
      A(l, l->in[0]), pref(e, n, PARAM_WEIGHT, false), pref(e, n, PARAM_BIAS, false), l->C, l->C,
      l->C, add_flag(e, n, PARAM_BIAS));
    open_bwd(l);
    E(e, "    %slinear_backward(%s, %s, %s, %s, %s, %s, %s_N, %s_I, %s_O);\n}\n\n", pfx(e),
      D(l, l->in[0]), pref(e, n, PARAM_WEIGHT, true), pref(e, n, PARAM_BIAS, true), D(l, l->out),
      A(l, l->in[0]), pref(e, n, PARAM_WEIGHT, false), l->C, l->C, l->C);
}

/* An element-wise op of ops.def (EW): its backward reads the input (IN) or the output (OUT). */
#define EW_READS_IN false
#define EW_READS_OUT true
static void lyr_pointwise(const Lyr *l, const char *k, bool from_out) {
    Emit *e = l->e;
    K(l, "SIZE", lnumel(e, l->out), shape_str(e, DT_F32, &B(e, l->out)->local));
    open_fwd(l, false);
    E(e, "    %s%s_forward(%s, %s, %s_SIZE);\n}\n", pfx(e), k, A(l, l->out), A(l, l->in[0]), l->C);
    open_bwd(l);
    E(e, "    %s%s_backward(%s, %s, %s, %s_SIZE);\n}\n\n", pfx(e), k, D(l, l->in[0]), D(l, l->out),
      from_out ? A(l, l->out) : A(l, l->in[0]), l->C);
}

static void lyr_add(const Lyr *l) {
    Emit *e = l->e;
    K(l, "SIZE", lnumel(e, l->out), shape_str(e, DT_F32, &B(e, l->out)->local));
    open_fwd(l, false);
    E(e, "    %sadd_forward(%s, %s, %s, %s_SIZE);\n}\n", pfx(e), A(l, l->out), A(l, l->in[0]),
      A(l, l->in[1]), l->C);
    open_bwd(l);
    E(e, "    %sadd_backward(%s, %s, %s, %s_SIZE);\n}\n\n", pfx(e), D(l, l->in[0]), D(l, l->in[1]),
      D(l, l->out), l->C);
}

static void lyr_flatten(const Lyr *l) {
    Emit *e = l->e;
    K(l, "SIZE", lnumel(e, l->out), "the same bytes under a new shape");
    open_fwd(l, false);
    E(e, "    %s(%s, %s, sizeof(float) * %s_SIZE);\n}\n", e->t->copy, A(l, l->out), A(l, l->in[0]),
      l->C);
    open_bwd(l);
    if (B(e, l->in[0])->grad)
        E(e, "    %saccumulate(%s, %s, %s_SIZE);\n", pfx(e), D(l, l->in[0]), D(l, l->out), l->C);
    E(e, "}\n\n");
}

static void lyr_layernorm(const Lyr *l) {
    Emit *e = l->e;
    int64_t C = ldim(e, l->in[0], -1);
    const char *st = arena_printf(e->a, "a->%s", aux_field(e, l->id, "stash"));
    K(l, "N", lnumel(e, l->in[0]) / C, "rows");
    K(l, "C", C, "normalised features");
    open_fwd(l, false);
    E(e, "    %slayernorm_forward(%s, %s, %s + %s_N, %s, %s, %s, %s_N, %s_C, %s);\n}\n", pfx(e),
      A(l, l->out), st, st, l->C, A(l, l->in[0]), pref(e, l->n, PARAM_GAMMA, false),
      pref(e, l->n, PARAM_BETA, false), l->C, l->C, flt(e, ir_arg_float(l->n, LAYERNORM_EPS)));
    open_bwd(l);
    E(e, "    %slayernorm_backward(%s, %s, %s, %s, %s, %s, %s + %s_N, %s, %s_N, %s_C);\n}\n\n",
      pfx(e), D(l, l->in[0]), pref(e, l->n, PARAM_GAMMA, true), pref(e, l->n, PARAM_BETA, true),
      D(l, l->out), A(l, l->in[0]), st, st, l->C, pref(e, l->n, PARAM_GAMMA, false), l->C, l->C);
}

/* "0" or "N * mesh->k": the offset of this tensor rank's block. */
static const char *times_k(Emit *e, int64_t n) {
    return n ? arena_printf(e->a, "%lld * mesh->k", (long long)n) : "0";
}

static void lyr_dropout(const Lyr *l) {
    Emit *e = l->e;
    const SchedBuf *b = B(e, l->out);
    const Shape *s = &b->local, *f = &b->full;
    int64_t R, r0k = 0, F, Fg, f0k = 0;
    if (s->rank == 4) {
        R = s->d[1], F = Fg = s->d[2] * s->d[3];
        if (b->layout == LAYOUT_F) r0k = R;
    } else {
        R = prod(s, 1, s->rank - 1), F = s->rank > 1 ? s->d[s->rank - 1] : 1;
        Fg = f->rank > 1 ? f->d[f->rank - 1] : 1;
        if (b->layout == LAYOUT_F) f0k = F;
    }
    K(l, "N", s->d[0], "samples (local)");
    open_fwd(l, false);
    const char *sh = arena_printf(
        e->a, "(MprtDropShard){n0%s, %lld, %s, %lld, %lld, %s}",
        b->layout == LAYOUT_B ? arena_printf(e->a, " + %lld * mesh->k", (long long)s->d[0]) : "",
        (long long)R, times_k(e, r0k), (long long)F, (long long)Fg, times_k(e, f0k));
    E(e, "    %sdropout_forward(%s, %s, %s_N, %s, %s, seed, %du, step, 1);\n}\n", pfx(e),
      A(l, l->out), A(l, l->in[0]), l->C, sh, flt(e, ir_arg_float(l->n, DROPOUT_P)), l->id);
    open_bwd(l);
    E(e, "    %sdropout_backward(%s, %s, %s_N, %s, %s, seed, %du, step);\n}\n\n", pfx(e),
      D(l, l->in[0]), D(l, l->out), l->C, sh, flt(e, ir_arg_float(l->n, DROPOUT_P)), l->id);
}

static void lyr_conv2d(const Lyr *l) {
    Emit *e = l->e;
    const Shape *x = &B(e, l->in[0])->local, *y = &B(e, l->out)->local;
    K(l, "N", x->d[0], "samples");
    K(l, "C", x->d[1], "input channels (local)");
    K(l, "H", x->d[2], NULL);
    K(l, "W", x->d[3], NULL);
    K(l, "O", y->d[1], "output channels (local)");
    K(l, "K", ir_arg_int(l->n, CONV2D_KERNEL), "kernel");
    K(l, "S", ir_arg_int(l->n, CONV2D_STRIDE), "stride");
    K(l, "P", ir_arg_int(l->n, CONV2D_PADDING), "padding");
    const char *dims = arena_printf(e->a, "%s_N, %s_C, %s_H, %s_W, %s_O, %s_K, %s_S, %s_P", l->C,
                                    l->C, l->C, l->C, l->C, l->C, l->C, l->C);
    open_fwd(l, false);
    E(e, "    %sconv2d_forward(%s, %s, %s, %s, scratch, %s, %s);\n}\n", pfx(e), A(l, l->out),
      A(l, l->in[0]), pref(e, l->n, PARAM_WEIGHT, false), pref(e, l->n, PARAM_BIAS, false), dims,
      add_flag(e, l->n, PARAM_BIAS));
    open_bwd(l);
    E(e, "    %sconv2d_backward(%s, %s, %s, %s, %s, %s, scratch, %s);\n}\n\n", pfx(e),
      D(l, l->in[0]), pref(e, l->n, PARAM_WEIGHT, true), pref(e, l->n, PARAM_BIAS, true),
      D(l, l->out), A(l, l->in[0]), pref(e, l->n, PARAM_WEIGHT, false), dims);
}

static void lyr_maxpool(const Lyr *l) {
    Emit *e = l->e;
    const Shape *x = &B(e, l->in[0])->local;
    int64_t k = ir_arg_int(l->n, MAXPOOL2D_KERNEL), st = ir_arg_int(l->n, MAXPOOL2D_STRIDE);
    K(l, "PLANES", x->d[0] * x->d[1], "samples x channels (local)");
    K(l, "H", x->d[2], NULL);
    K(l, "W", x->d[3], NULL);
    K(l, "K", k, "window");
    K(l, "S", st ? st : k, "stride");
    const char *am = arena_printf(e->a, "a->%s", aux_field(e, l->id, "argmax"));
    open_fwd(l, false);
    E(e, "    %smaxpool2d_forward(%s, %s, %s, %s_PLANES, %s_H, %s_W, %s_K, %s_S);\n}\n", pfx(e),
      A(l, l->out), am, A(l, l->in[0]), l->C, l->C, l->C, l->C, l->C);
    open_bwd(l);
    E(e, "    %smaxpool2d_backward(%s, %s, %s, %s_PLANES, %s_H, %s_W, %s_K, %s_S);\n}\n\n", pfx(e),
      D(l, l->in[0]), D(l, l->out), am, l->C, l->C, l->C, l->C, l->C);
}

static void lyr_embedding(const Lyr *l) {
    Emit *e = l->e;
    const Shape *ids = &B(e, l->in[0])->local;
    int pw = PI(e, l->n, PARAM_WEIGHT);
    const Shape *w = &e->s->params[pw].local;
    K(l, "M", ir_shape_numel(ids), "tokens (local)");
    K(l, "T", ids->rank == 2 ? ids->d[1] : 1, "positions per sample");
    K(l, "V", w->d[0], "vocabulary rows (local)");
    K(l, "D", ldim(e, l->out, -1), "features (local)");
    const char *v0 =
        e->s->params[pw].split_dim == 0 ? arena_printf(e->a, "mesh->k * %s_V", l->C) : "0";
    open_fwd(l, false);
    E(e, "    %sembedding_forward(%s, %s, %s, %s, %s_M, %s_T, %s_V, %s, %s_D, %s);\n}\n", pfx(e),
      A(l, l->out), A(l, l->in[0]), pref(e, l->n, PARAM_WEIGHT, false),
      pref(e, l->n, PARAM_POS, false), l->C, l->C, l->C, v0, l->C, add_flag(e, l->n, PARAM_POS));
    open_bwd(l);
    E(e, "    %sembedding_backward(%s, %s, %s, %s, %s_M, %s_T, %s_V, %s, %s_D);\n}\n\n", pfx(e),
      pref(e, l->n, PARAM_WEIGHT, true), pref(e, l->n, PARAM_POS, true), D(l, l->out),
      A(l, l->in[0]), l->C, l->C, l->C, v0, l->C);
}

static const char *attn_w(const Lyr *l, bool grad) {
    const IrNode *n = l->n;
    Emit *e = l->e;
    return arena_printf(
        e->a, "(%s){%s, %s, %s, %s, %s, %s, %s, %s}", grad ? "MprtAttnG" : "MprtAttnW",
        pref(e, n, PARAM_WQ, grad), pref(e, n, PARAM_BQ, grad), pref(e, n, PARAM_WK, grad),
        pref(e, n, PARAM_BK, grad), pref(e, n, PARAM_WV, grad), pref(e, n, PARAM_BV, grad),
        pref(e, n, PARAM_WO, grad), pref(e, n, PARAM_BO, grad));
}

static void lyr_attention(const Lyr *l) {
    Emit *e = l->e;
    const Shape *x = &B(e, l->in[0])->local;
    int64_t h = ir_arg_int(l->n, ATTENTION_HEADS), hl = l->pn->strat == STRAT_COL ? h / e->s->t : h;
    K(l, "N", x->d[0], "samples");
    K(l, "T", x->d[1], "positions");
    K(l, "D", x->d[2], "width");
    K(l, "HL", hl, "heads on this rank");
    K(l, "HD", x->d[2] / h, "head size");
    const char *dims = arena_printf(e->a, "%s_N, %s_T, %s_D, %s_HL, %s_HD, %d", l->C, l->C, l->C,
                                    l->C, l->C, ir_arg_bool(l->n, ATTENTION_CAUSAL));
    const char *st = arena_printf(e->a, "a->%s", aux_field(e, l->id, "stash"));
    open_fwd(l, false);
    E(e, "    %sattention_forward(%s, %s, %s, %s, %s, %s);\n}\n", pfx(e), A(l, l->out), st,
      A(l, l->in[0]), attn_w(l, false), dims, add_flag(e, l->n, PARAM_BO));
    open_bwd(l);
    E(e, "    %sattention_backward(%s, %s, %s, %s, %s, scratch, %s, %s);\n}\n\n", pfx(e),
      D(l, l->in[0]), attn_w(l, true), D(l, l->out), A(l, l->in[0]), st, attn_w(l, false), dims);
}

/* On the host the loss function returns the micro-batch's loss. */
static void loss_forward_host(const Lyr *l, bool ce, bool once) {
    Emit *e = l->e;
    if (ce)
        E(e, "    double v = mprt_cross_entropy_forward(%s, %s, %s_M, %s_V, %s_SCALE);\n",
          A(l, l->in[0]), A(l, l->in[1]), l->C, l->C, l->C);
    else
        E(e, "    double v = mprt_mse_forward(%s, %s, %s_SIZE, %s_SCALE);\n", A(l, l->in[0]),
          A(l, l->in[1]), l->C, l->C);
    E(e, "    return %s;\n}\n", once ? "mesh->k == 0 ? v : 0.0" : "v");
}

/* On the device it adds into dloss, which the step reads once: no sync per micro-batch. */
static void loss_forward_dev(const Lyr *l, bool ce, bool once) {
    Emit *e = l->e;
    const char *guard = once ? "    if (mesh->k == 0)\n    " : "";
    if (ce)
        E(e, "%s    mprt_cu_cross_entropy_forward(dloss, %s, %s, %s_M, %s_V, %s_SCALE);\n", guard,
          A(l, l->in[0]), A(l, l->in[1]), l->C, l->C, l->C);
    else
        E(e, "%s    mprt_cu_mse_forward(dloss, %s, %s, %s_SIZE, %s_SCALE);\n", guard,
          A(l, l->in[0]), A(l, l->in[1]), l->C, l->C);
    E(e, "    return 0.0; /* the value accumulates in dloss, read once per step */\n}\n");
}

static void lyr_loss(const Lyr *l) {
    Emit *e = l->e;
    const SchedBuf *p = B(e, l->in[0]);
    bool ce = l->n->op == OP_CROSS_ENTROPY;
    int64_t V = ldim(e, l->in[0], -1);
    /* mean over every global row (cross entropy) or element (mse) */
    int64_t global = ir_shape_numel(&BV(e, l->in[0])->shape) / (ce ? V : 1);
    if (ce) {
        K(l, "M", lnumel(e, l->in[0]) / V, "rows (local)");
        K(l, "V", V, "classes");
    } else {
        K(l, "SIZE", lnumel(e, l->in[0]), "elements (local)");
    }
    E(e, "#define %s_SCALE (1.0f / %lld.0f) /* mean over the global batch */\n", l->C,
      (long long)global);
    /* With the logits replicated over the tensor ranks, rank 0 alone reports the loss. */
    bool once = p->layout == LAYOUT_R && e->s->t > 1;
    open_fwd(l, true);
    if (e->t->dev)
        loss_forward_dev(l, ce, once);
    else
        loss_forward_host(l, ce, once);
    open_bwd(l);
    if (ce)
        E(e, "    %scross_entropy_backward(%s, %s, %s, %s_M, %s_V, %s_SCALE);\n}\n\n", pfx(e),
          D(l, l->in[0]), A(l, l->in[0]), A(l, l->in[1]), l->C, l->C, l->C);
    else
        E(e, "    %smse_backward(%s, %s, %s, %s_SIZE, %s_SCALE);\n}\n\n", pfx(e), D(l, l->in[0]),
          A(l, l->in[0]), A(l, l->in[1]), l->C, l->C);
}

static void emit_layer(Emit *e, int id) {
    Lyr l = {.e = e, .id = id, .n = IR_NODE(e->g, id), .pn = &e->g->plan->nodes[id]};
    l.in[0] = e->fwd_in[0][id], l.in[1] = e->fwd_in[1][id], l.out = e->fwd_out[id];
    char *c = arena_strdup(e->a, e->lname[id]);
    for (char *p = c; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    l.C = c;
    E(e, "/* %s: %s, %s, %s -> %s */\n", c, ir_ops[l.n->op].name, strat_name(l.pn->strat),
      lay_name(B(e, l.in[0])->layout), l.out >= 0 ? lay_name(B(e, l.out)->layout) : "scalar");
    switch (l.n->op) {
    case OP_LINEAR: lyr_linear(&l); break;
#define OP(id, nm, nin, st, fl, args)
#define EW(id, nm, fwd, bwd, reads)                                                                \
    case OP_##id:                                                                                  \
        lyr_pointwise(&l, nm, EW_READS_##reads);                                                   \
        break;
#include "ops.def"
#undef OP
#undef EW
    case OP_ADD: lyr_add(&l); break;
    case OP_LAYERNORM: lyr_layernorm(&l); break;
    case OP_DROPOUT: lyr_dropout(&l); break;
    case OP_CONV2D: lyr_conv2d(&l); break;
    case OP_MAXPOOL2D: lyr_maxpool(&l); break;
    case OP_FLATTEN: lyr_flatten(&l); break;
    case OP_EMBEDDING: lyr_embedding(&l); break;
    case OP_ATTENTION: lyr_attention(&l); break;
    case OP_CROSS_ENTROPY:
    case OP_MSE: lyr_loss(&l); break;
    case OP__COUNT: break; /* not an op; no default, so -Wswitch names a new op here */
    }
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

static void emit_loaders(Emit *e) {
    E(e,
      "/* Inputs and labels (MprtData, runtime/trainer_data.c): a step reads BATCH consecutive\n"
      " * samples (wrapping around the data set); replica j, micro-batch i takes rows\n"
      " * j*BATCH/MESH_D + i*MB .. + MB of them, so the same sample lands in the same place of\n"
      " * the global batch whatever the plan. Without a file (--data, --labels) the data set is\n"
      " * BATCH synthetic samples drawn from the seed. */\n");
    for (int v = 0; v < IR_NVALUES(e->g); v++) {
        const IrValue *iv = IR_VALUE(e->g, v);
        if (iv->kind == VAL_ACT) continue;
        const char *nm = cg_mangle(e->a, "d", v, iv->name);
        E(e, "static MprtArray %s_file;\nstatic const MprtData %s = {", nm, nm);
        put_c_string(e, arena_printf(e->a, "data.%s", iv->name));
        E(e, ", %s, %d, {BATCH", iv->dtype != DT_F32 ? "MPRT_I32" : "MPRT_F32", iv->shape.rank);
        for (int k = 1; k < iv->shape.rank; k++)
            E(e, ", %lld", (long long)iv->shape.d[k]);
        E(e, "}, %lld, &%s_file}; /* ", (long long)cg_int_range(e->g, v), nm);
        put_comment_text(e, iv->name);
        E(e, " %s */\n", shape_str(e, iv->dtype, &iv->shape));
    }
    E(e, "static void load(const MprtData *d, void *dst, int64_t step, int micro) {\n"
         "    int64_t first = step * BATCH + (int64_t)mesh->j * (BATCH / MESH_D) + (int64_t)micro "
         "* MB;\n");
    if (e->t->dev) { /* on the device the rows are filled in a host buffer, then uploaded at once */
        E(e, "    size_t bytes = mprt_dtype_size(d->dtype) * (size_t)(MB * mprt_data_row(d));\n"
             "    void *host = hstage(bytes);\n    mprt_data_rows(d, seed, first, MB, host);\n"
             "    mprt_cu_upload(dst, host, bytes);\n}\n\n");
        return;
    }
    E(e, "    mprt_data_rows(d, seed, first, MB, dst);\n}\n\n");
}

/* ───────────────────────────── stage programs ───────────────────────────── */

/* The view outer × chunk × inner of buffer b's split (its full tensor). */
static const char *view(Emit *e, int b) {
    const SchedBuf *sb = B(e, b);
    int sd = sb->split_dim < 0 ? 0 : sb->split_dim;
    return arena_printf(e->a, "%lld, %lld, %lld", (long long)prod(&sb->full, 0, sd),
                        (long long)sb->local.d[sd],
                        (long long)prod(&sb->full, sd + 1, sb->full.rank));
}

/* batch, mid, feat, inner of a tensor for the B ↔ F all-to-all. */
static const char *a2a_dims(Emit *e, int b) {
    const SchedBuf *sb = B(e, b);
    int fd = sb->full.rank == 4 ? 1 : sb->full.rank - 1;
    return arena_printf(e->a, "%lld, %lld, %lld, %lld", (long long)sb->full.d[0],
                        (long long)prod(&sb->full, 1, fd), (long long)sb->full.d[fd],
                        (long long)prod(&sb->full, fd + 1, sb->full.rank));
}

static const char *fld(Emit *e, const char *p, int b) {
    return arena_printf(e->a, "%s->%s", p, e->bname[b]);
}

static void emit_fwd_coll(Emit *e, const SchedOp *o) {
    const char *src = fld(e, "a", o->src), *dst = fld(e, "a", o->dst);
    E(e, "    /* ");
    put_comment_text(e, BV(e, o->src)->name);
    E(e, ": %s -> %s, %s on the tensor group (%lld B) */\n", lay_name(B(e, o->src)->layout),
      lay_name(B(e, o->dst)->layout),
      (const char *[]){"", "slice", "all-reduce", "all-gather", "reduce-scatter", "all-to-all",
                       ""}[o->coll],
      (long long)o->bytes);
    switch (o->coll) {
    case COLL_SLICE:
        if (B(e, o->dst)->layout == LAYOUT_P)
            E(e,
              "    if (mesh->k == 0)\n        %s(%s, %s, sizeof(float) * %lld);\n    else\n"
              "        %s%s, sizeof(float) * %lld);\n",
              e->t->copy, dst, src, (long long)lnumel(e, o->dst), zero(e), dst,
              (long long)lnumel(e, o->dst));
        else if (is_int(e, o->src))
            E(e, "    %s(%s, %s + mesh->k * %lld, sizeof(int32_t) * %lld);\n", e->t->copy, dst, src,
              (long long)lnumel(e, o->dst), (long long)lnumel(e, o->dst));
        else
            E(e, "    %sslice(%s, %s, %s, MESH_T, mesh->k);\n", pfx(e), src, dst, view(e, o->dst));
        break;
    case COLL_ALLREDUCE:
        E(e, "    %s(%s, %s, sizeof(float) * %lld);\n    %sallreduce(MPRT_TENSOR, %s, %lld);\n",
          e->t->copy, dst, src, (long long)lnumel(e, o->dst), pfx(e), dst,
          (long long)lnumel(e, o->dst));
        break;
    case COLL_ALLGATHER:
        E(e, "    %sallgather(MPRT_TENSOR, %s, %s, %s);\n", pfx(e), src, dst, view(e, o->src));
        break;
    case COLL_REDUCESCATTER:
        E(e, "    %sreduce_scatter(MPRT_TENSOR, %s, %s, %s);\n", pfx(e), src, dst, view(e, o->dst));
        break;
    case COLL_ALLTOALL:
        E(e, "    %salltoall_%s(MPRT_TENSOR, %s, %s, %s);\n", pfx(e),
          B(e, o->src)->layout == LAYOUT_B ? "b2f" : "f2b", src, dst, a2a_dims(e, o->src));
        break;
    case COLL_NONE:
    case COLL_SENDRECV:
    case COLL__COUNT: break; /* never a forward layout change */
    }
}

/* grad(src) += the dual of a forward layout change, through `xfer`. */
static void emit_bwd_coll(Emit *e, const SchedOp *o) {
    const char *gs = fld(e, "d", o->src), *gd = fld(e, "d", o->dst);
    E(e, "    /* gradient of ");
    put_comment_text(e, BV(e, o->src)->name);
    E(e, ": %s -> %s (%lld B) */\n", lay_name(grad_layout_of(B(e, o->dst)->layout)),
      lay_name(grad_layout_of(B(e, o->src)->layout)), (long long)o->bytes);
    switch (o->coll) {
    case COLL_NONE:
        E(e, "    %saccumulate(%s, %s, %lld);\n", pfx(e), gs, gd, (long long)lnumel(e, o->src));
        return;
    case COLL_SLICE:
        E(e, "    %sslice(%s, xfer, %s, MESH_T, mesh->k);\n", pfx(e), gd, view(e, o->src));
        break;
    case COLL_ALLGATHER:
        E(e, "    %sallgather(MPRT_TENSOR, %s, xfer, %s);\n", pfx(e), gd, view(e, o->dst));
        break;
    case COLL_ALLTOALL:
        E(e, "    %salltoall_%s(MPRT_TENSOR, %s, xfer, %s);\n", pfx(e),
          B(e, o->dst)->layout == LAYOUT_B ? "b2f" : "f2b", gd, a2a_dims(e, o->dst));
        break;
    case COLL_ALLREDUCE:
    case COLL_REDUCESCATTER:
    case COLL_SENDRECV:
    case COLL__COUNT: break; /* never the dual of a layout change: gradients are never P */
    }
    E(e, "    %saccumulate(%s, xfer, %lld);\n", pfx(e), gs, (long long)lnumel(e, o->src));
}

static int tag_of(const Emit *e, int b, bool grad) { return B(e, b)->value * 2 + (grad ? 1 : 0); }

static void emit_stage_fwd(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    E(e, "/* Stage %d, one micro-batch forward; returns its share of the loss. */\n", s);
    E(e, "static double stage%d_forward(int64_t step, int micro) {\n", s);
    E(e, "    const Stage%d *a = &act%d[micro %% %d];\n", s, s, st->stash);
    E(e, "    int64_t n0 = (int64_t)mesh->j * (BATCH / MESH_D) + (int64_t)micro * MB;\n    double "
         "loss = 0;\n");
    E(e, "    (void)a, (void)n0;\n");
    for (int i = 0; i < st->nfwd; i++) {
        const SchedOp *o = &st->fwd[i];
        switch (o->kind) {
        case SOP_LOAD:
            E(e, "    load(&%s, %s, step, micro);\n",
              cg_mangle(e->a, "d", B(e, o->dst)->value, BV(e, o->dst)->name), fld(e, "a", o->dst));
            break;
        case SOP_FWD:
            source_comment(e, IR_NODE(e->g, o->node), "    ");
            E(e, "    TIMED(timers[%d][0], %s%s_forward(a, step, n0));\n", o->node,
              o->dst < 0 ? "loss += " : "", e->lname[o->node]);
            break;
        case SOP_COLL: emit_fwd_coll(e, o); break;
        case SOP_SEND:
            E(e, "    fsend[micro %% %d][nfsend[micro %% %d]++] = %sisend%s(%d, %s, %lld, %d);\n",
              st->stash, st->stash, pfx(e), e->t->sr, o->peer - s, fld(e, "a", o->src),
              (long long)lnumel(e, o->src), tag_of(e, o->src, false));
            break;
        case SOP_RECV:
            E(e, "    IDLE(%srecv%s(%d, %s, %lld, %d));\n", pfx(e), e->t->sr, o->peer - s,
              fld(e, "a", o->dst), (long long)lnumel(e, o->dst), tag_of(e, o->dst, false));
            break;
        case SOP_BWD: break; /* only in backward lists */
        }
    }
    E(e, "    return loss;\n}\n\n");
}

/* One gradient all-reduce: y's parameters over its group (`start`: the device's asynchronous
 * form, joined before the optimizer). */
static void emit_sync_call(Emit *e, const SchedSync *y, const char *indent) {
    E(e, "%s%sallreduce%s(%s, grd + %lld, %lld); /* ", indent, pfx(e), e->t->dev ? "_start" : "",
      group_c(y->group), (long long)e->poff[y->first_param], (long long)y->count);
    put_comment_text(e, IR_NODE(e->g, y->node)->name);
    E(e, ", %lld B */\n", (long long)y->bytes);
}

/* On the device, a layer's gradient all-reduce starts right after its backward on the step's
 * last micro-batch, when its gradients are final: it runs on the communication stream while
 * the compute stream goes on with the backward of the layers before it (the overlap the cost
 * model counts as hidden), and mprt_cu_comm_join waits for all of them before the optimizer. */
static void emit_bwd_syncs(Emit *e, const SchedStage *st, int node) {
    if (!e->t->dev) return;
    for (int i = 0; i < st->nsync; i++) {
        if (st->sync[i].node != node) continue;
        E(e, "    if (micro == MICRO - 1) /* last micro-batch: gradients final, overlap the rest "
             "*/\n");
        emit_sync_call(e, &st->sync[i], "        ");
    }
}

static void emit_stage_bwd(Emit *e, int s) {
    const SchedStage *st = &e->s->stages[s];
    E(e,
      "/* Stage %d, one micro-batch backward: activation gradients start at zero, parameter\n"
      " * gradients accumulate over the step's micro-batches. */\n",
      s);
    E(e, "static void stage%d_backward(int64_t step, int micro) {\n", s);
    E(e, "    const Stage%d *a = &act%d[micro %% %d], *d = &grad%d;\n", s, s, st->stash, s);
    E(e, "    int64_t n0 = (int64_t)mesh->j * (BATCH / MESH_D) + (int64_t)micro * MB;\n");
    E(e, "    (void)a, (void)d, (void)n0;\n");
    E(e, "    IDLE(wait_sends(micro %% %d));\n    %sgbase, sizeof(float) * STAGE%d_GRADS);\n",
      st->stash, zero(e), s);
    for (int i = 0; i < st->nbwd; i++) {
        const SchedOp *o = &st->bwd[i];
        const SchedOp *nx = i + 1 < st->nbwd ? &st->bwd[i + 1] : NULL;
        switch (o->kind) {
        case SOP_BWD:
            if (nx && nx->kind == SOP_COLL && nx->layer_own) {
                const char *f = e->bname[nx->src];
                int64_t n = lnumel(e, nx->src);
                E(e,
                  "    {   /* a column split's input gradient is a partial sum: all-reduce it "
                  "(%lld B) */\n",
                  (long long)nx->bytes);
                E(e,
                  "        Stage%d part = *d;\n        part.%s = xfer;\n        %sxfer, "
                  "sizeof(float) * %lld);\n",
                  s, f, zero(e), (long long)n);
                E(e, "        TIMED(timers[%d][1], %s_backward(a, &part, step, n0));\n", o->node,
                  e->lname[o->node]);
                E(e,
                  "        %sallreduce(MPRT_TENSOR, xfer, %lld);\n        %saccumulate(d->%s, "
                  "xfer, %lld);\n    }\n",
                  pfx(e), (long long)n, pfx(e), f, (long long)n);
                i++;
            } else {
                E(e, "    TIMED(timers[%d][1], %s_backward(a, d, step, n0));\n", o->node,
                  e->lname[o->node]);
            }
            emit_bwd_syncs(e, st, o->node);
            break;
        case SOP_COLL: emit_bwd_coll(e, o); break;
        case SOP_SEND:
            E(e, "    gsend[ngsend++] = %sisend%s(%d, %s, %lld, %d);\n", pfx(e), e->t->sr,
              o->peer - s, fld(e, "d", o->src), (long long)lnumel(e, o->src),
              tag_of(e, o->src, true));
            break;
        case SOP_RECV:
            E(e, "    IDLE(%srecv%s(%d, xfer, %lld, %d));\n    %saccumulate(%s, xfer, %lld);\n",
              pfx(e), e->t->sr, o->peer - s, (long long)lnumel(e, o->dst), tag_of(e, o->dst, true),
              pfx(e), fld(e, "d", o->dst), (long long)lnumel(e, o->dst));
            break;
        case SOP_LOAD:
        case SOP_FWD: break; /* only in forward lists */
        }
    }
    E(e, "}\n\n");
}

static void emit_orders(Emit *e) {
    E(e, "/* The order each stage runs its micro-batches in (1F1B): 2*micro for a forward,\n"
         " * 2*micro + 1 for a backward. */\n");
    for (int s = 0; s < e->s->S; s++) {
        const SchedStage *st = &e->s->stages[s];
        E(e, "static const int ORDER%d[%d] = {", s, st->norder);
        for (int i = 0; i < st->norder; i++)
            E(e, "%s%d", i ? ", " : "", st->order[i].micro * 2 + st->order[i].bwd);
        E(e, "};\n");
    }
    int maxstash = 1, maxsend = 1;
    for (int s = 0; s < e->s->S; s++) {
        const SchedStage *st = &e->s->stages[s];
        int ns = 0, nb = 0;
        if (st->stash > maxstash) maxstash = st->stash;
        for (int i = 0; i < st->nfwd; i++)
            ns += st->fwd[i].kind == SOP_SEND;
        for (int i = 0; i < st->nbwd; i++)
            nb += st->bwd[i].kind == SOP_SEND;
        if (ns > maxsend) maxsend = ns;
        if (nb > maxsend) maxsend = nb;
    }
    E(e,
      "\n/* Sends are posted without blocking and completed before their buffer is reused, so no\n"
      " * rank waits on a send while its neighbour waits on it (docs/codegen.md)%s */\n",
      e->t->dev ? "; they are staged\n * through host memory over MPI, as in the C trainer "
                  "(docs/cuda.md)."
                : ".");
    E(e, "static %s *fsend[%d][%d], *gsend[%d];\nstatic int nfsend[%d], ngsend;\n", e->t->req,
      maxstash, maxsend, maxsend, maxstash);
    E(e,
      "static void wait_sends(int slot) {\n"
      "    for (int i = 0; i < nfsend[slot]; i++) %swait%s(fsend[slot][i]);\n    nfsend[slot] = "
      "0;\n"
      "    for (int i = 0; i < ngsend; i++) %swait%s(gsend[i]);\n    ngsend = 0;\n}\n\n",
      pfx(e), e->t->sr, pfx(e), e->t->sr);
}

/* ───────────────────────────── the step ───────────────────────────── */

static const char *opt_name(OptKind k) {
    return k == OPT_SGD ? "sgd" : k == OPT_ADAM ? "adam" : "adamw";
}

/* The gradient all-reduces after the step's backward (host); on the device they were started
 * in the backward (emit_bwd_syncs) and are joined here. */
static void emit_grad_sync(Emit *e) {
    const Schedule *s = e->s;
    if (e->t->dev) {
        E(e, "    mprt_cu_comm_join(); /* the gradient all-reduces started in the backward */\n");
        return;
    }
    E(e, "    switch (mesh->s) {\n");
    for (int k = 0; k < s->S; k++) {
        const SchedStage *st = &s->stages[k];
        if (!st->nsync) continue;
        E(e, "    case %d:\n", k);
        for (int i = 0; i < st->nsync; i++)
            emit_sync_call(e, &st->sync[i], "        ");
        E(e, "        break;\n");
    }
    E(e, "    default: break;\n    }\n");
}

/* The optimizer, then the step's loss: on the device read from dloss, the step's one sync. */
static void emit_optimizer(Emit *e) {
    OptKind opt = e->g->train.opt;
    const char *sync = e->t->dev ? "    if (profiling) mprt_cu_sync();\n" : "";
    E(e,
      "    int64_t n = STAGE_PARAMS[mesh->s];\n    int t_opt = mprt_timer(\"optimizer\");\n"
      "%s    mprt_timer_start(t_opt);\n",
      sync);
    if (opt == OPT_SGD)
        E(e,
          "    %ssgd_step(prm, MOMENTUM != 0.0f ? opt1 : NULL, grd, n, LR, MOMENTUM, "
          "WEIGHT_DECAY);\n",
          pfx(e));
    else
        E(e,
          "    %s%s_step(prm, opt1, opt2, grd, n, LR, BETA1, BETA2, EPS, WEIGHT_DECAY, step + "
          "1);\n",
          pfx(e), opt_name(opt));
    E(e, "%s    mprt_timer_stop(t_opt);\n", sync);
    if (e->t->dev)
        E(e, "    double dev = 0;\n    mprt_cu_download(&dev, dloss, sizeof dev); /* waits for the "
             "step */\n"
             "    loss += dev;\n    mprt_cu_stats_flush();\n");
    E(e, "    IDLE(mprt_metric_sum(MPRT_WORLD, &loss, 1));\n"
         "    mprt_timer_add(t_busy, mprt_now() - t0 - (mprt_timer_seconds(t_idle) - idle0));\n"
         "    return loss;\n}\n\n");
}

static void emit_step(Emit *e) {
    const Schedule *s = e->s;
    E(e,
      "/* One training step: the stage's micro-batches in 1F1B order, the gradient all-reduce of\n"
      " * every parameter over the ranks that hold the same shard, then the optimizer. Returns\n"
      " * the step's loss, summed over ranks (a metric, not counted as plan traffic). */\n");
    E(e, "static double train_step(int64_t step) {\n    double loss = 0;\n"
         "    double t0 = mprt_now(), idle0 = mprt_timer_seconds(t_idle);\n");
    E(e, "    %sgrd, sizeof(float) * (size_t)STAGE_PARAMS[mesh->s]);\n", zero(e));
    if (e->t->dev) E(e, "    mprt_cu_memset0(dloss, sizeof(double));\n");
    E(e, "    switch (mesh->s) {\n");
    for (int k = 0; k < s->S; k++) {
        E(e, "    case %d:\n        for (int i = 0; i < %d; i++) {\n", k, s->stages[k].norder);
        E(e,
          "            int item = ORDER%d[i];\n            if (item & 1)\n                "
          "stage%d_backward(step, item >> 1);\n"
          "            else\n                loss += stage%d_forward(step, item >> 1);\n        "
          "}\n        break;\n",
          k, k, k);
    }
    E(e, "    default: break;\n    }\n");
    E(e, "    for (int slot = 0; slot < (int)(sizeof nfsend / sizeof nfsend[0]); slot++) "
         "IDLE(wait_sends(slot));\n");
    emit_grad_sync(e);
    emit_optimizer(e);
}

/* ───────────────────────────── checkpoints ───────────────────────────── */

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
         " * schedule's count, which the runtime's counters must match: mprt_check_bytes). */\n"
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

static void emit_summary(Emit *e) {
    const Schedule *s = e->s;
    E(e, "/* Printed at start: the plan in a few lines. */\nstatic const char PLAN_SUMMARY[] =\n");
    /* the report's own summary (predicted step time, memory), one string literal per line */
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
    E(e,
      "    \"plan: %d stage(s) x %d replica(s) x %d tensor rank(s), %d micro-batch(es) of %lld "
      "samples, batch %lld\\n\"\n",
      s->S, s->d, s->t, s->m, (long long)s->micro, (long long)s->batch);
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
        E(e, "    float *const dev[] = {prm, grd, opt1, opt2, fbase, gbase, scratch, xfer};\n"
             "    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++) mprt_cu_free(dev[i]);\n"
             "    mprt_cu_free(ibase), mprt_cu_free(dloss);\n");
    else
        E(e, "    free(prm), free(grd), free(opt1), free(opt2), free(fbase), free(ibase), "
             "free(gbase);\n"
             "    free(scratch), free(xfer);\n");
    for (int v = 0; v < IR_NVALUES(e->g); v++)
        if (IR_VALUE(e->g, v)->kind != VAL_ACT)
            E(e, "    mprt_data_close(&%s);\n", cg_mangle(e->a, "d", v, IR_VALUE(e->g, v)->name));
    E(e, "}\n\n");
}

/* After mprt_init: shared by the command line and the C API's create (emit_capi.c). */
static void emit_setup_rank(Emit *e) {
    E(e,
      "/* Every layer's name and stage: its timers \"fwd.NAME\" and \"bwd.NAME\" (--profile). */\n"
      "#define NUM_LAYERS %d\nstatic const MprtLayer LAYERS[NUM_LAYERS] = {\n",
      IR_NNODES(e->g));
    for (int i = 0; i < IR_NNODES(e->g); i++) {
        E(e, "    {");
        put_c_string(e, IR_NODE(e->g, i)->name);
        E(e, ", %d},\n", e->g->plan->nodes[i].stage);
    }
    E(e, "};\n\n");
    E(e,
      "/* This rank's parameter and activation buffers, initial weights (from `seed`) and layer\n"
      " * timers. After mprt_init; free_all undoes it. */\n"
      "static void setup_rank(void) {\n"
      "    int64_t np = STAGE_PARAMS[mesh->s] + 1;\n");
    if (e->t->dev)
        E(e, "    dloss = (double *)mprt_cu_malloc(sizeof(double));\n"
             "    prm = dalloc(np), grd = dalloc(np), opt1 = dalloc(np), opt2 = dalloc(np);\n");
    else
        E(e, "    prm = mprt_falloc(np), grd = mprt_falloc(np), opt1 = mprt_falloc(np), opt2 = "
             "mprt_falloc(np);\n");
    E(e, "    switch (mesh->s) {\n");
    for (int k = 0; k < e->s->S; k++)
        E(e, "    case %d: stage%d_alloc(); break;\n", k, k);
    E(e, "    default: break;\n    }\n    mprt_params_init(&MODEL, prm, seed);\n"
         "    t_busy = mprt_timer(\"stage.busy\"), t_idle = mprt_timer(\"stage.idle\");\n");
    E(e, "    mprt_layer_timers(LAYERS, NUM_LAYERS, timers);\n");
    E(e, "}\n\n");
}

/* --data and --labels: the first input and the first label, if the model has them. */
static void emit_open_data(Emit *e) {
    int x = first_of(e, VAL_INPUT), y = first_of(e, VAL_LABEL);
    E(e, "/* --data and --labels: the first input and the first label. */\n"
         "static bool open_data(const MprtArgs *a, MprtErr *err) {\n    bool ok = true;\n");
    if (x >= 0)
        E(e, "    if (a->data) ok = mprt_data_open(&%s, a->data, err);\n",
          cg_mangle(e->a, "d", x, IR_VALUE(e->g, x)->name));
    else
        E(e, "    if (a->data) ok = false, snprintf(err->msg, sizeof err->msg, \"this model has no "
             "input for --data\");\n");
    if (y >= 0)
        E(e, "    if (ok && a->labels) ok = mprt_data_open(&%s, a->labels, err);\n",
          cg_mangle(e->a, "d", y, IR_VALUE(e->g, y)->name));
    else
        E(e, "    if (ok && a->labels) ok = false, snprintf(err->msg, sizeof err->msg, \"this "
             "model has no label for --labels\");\n");
    E(e, "    return ok;\n}\n\n");
}

/* The run itself is the runtime's (mprt_trainer_main); the trainer hands it its parts. On the
 * device, start and stop also bring the GPU up and down. */
static void emit_main(Emit *e) {
    bool dev = e->t->dev;
    emit_free_all(e);
    emit_setup_rank(e);
    emit_open_data(e);
    E(e,
      "/* After mprt_init: the mesh, the seed, %sthis rank's buffers and weights. */\n"
      "static void trainer_start(const MprtArgs *a) {\n",
      dev ? "the GPU, " : "");
    if (dev)
        E(e, "    MprtCuComm comm = MPRT_CU_COMM_AUTO;\n"
             "    mprt_exit_if_any(a->comm && !mprt_cu_comm_parse(a->comm, &comm), \"--comm takes "
             "nccl, mpi or auto\");\n"
             "    mprt_cu_init(comm);\n    mprt_cu_set_tf32(a->tf32);\n    profiling = a->profile "
             "!= NULL;\n");
    E(e, "    mesh = mprt_mesh(), seed = a->seed;\n    setup_rank();\n}\n\n");
    if (dev)
        E(e, "static void trainer_stop(void) {\n    free_all();\n    mprt_cu_finalize();\n}\n\n");
    E(e,
      "/* The trainer as the runtime's run sees it (runtime/mprt_trainer.h). */\n"
      "static const MprtTrainer TRAINER = {\n"
      "    &MODEL, BATCH, DEFAULT_STEPS, DEFAULT_SEED, %s, /* model, plan, defaults, target */\n"
      "    PLAN_SUMMARY, PREDICTED, NUM_PREDICTED, {&prm, &opt1, &opt2},\n"
      "    trainer_start, open_data, train_step, %s, %s,\n};\n\n",
      dev ? "true" : "false", dev ? "trainer_stop" : "free_all",
      dev ? "mprt_cu_stats_flush" : "NULL");
    E(e, "#ifndef MPCC_NO_MAIN /* defined when the trainer is built as a library (C API) */\n"
         "int main(int argc, char **argv) { return mprt_trainer_main(&TRAINER, argc, argv); "
         "}\n#endif\n");
}

/* ───────────────────────────── entry points ───────────────────────────── */

static void prepare(Emit *e) {
    const IrGraph *g = e->g;
    int nn = IR_NNODES(g);
    e->bname = arena_calloc(e->a, (size_t)e->s->nbufs + 1, sizeof(char *));
    e->lname = arena_calloc(e->a, (size_t)nn + 1, sizeof(char *));
    e->pname = arena_calloc(e->a, (size_t)IR_NPARAMS(g) + 1, sizeof(char *));
    e->poff = arena_calloc(e->a, (size_t)IR_NPARAMS(g) + 1, sizeof(int64_t));
    for (int k = 0; k < IR_MAX_INPUTS; k++)
        e->fwd_in[k] = arena_calloc(e->a, (size_t)nn + 1, sizeof(int));
    e->fwd_out = arena_calloc(e->a, (size_t)nn + 1, sizeof(int));
    for (int i = 0; i < nn; i++) {
        e->lname[i] = cg_mangle(e->a, "l", i, IR_NODE(g, i)->name);
        e->fwd_in[0][i] = e->fwd_in[1][i] = e->fwd_out[i] = -1;
    }
    for (int b = 0; b < e->s->nbufs; b++)
        e->bname[b] =
            arena_printf(e->a, "%s_%s", cg_mangle(e->a, "v", B(e, b)->value, BV(e, b)->name),
                         lay_name(B(e, b)->layout));
    /* each node's input buffers: the buffer of (input value, planned layout) on its stage
     * (the last such buffer), and its output buffer (the first of its value on its stage).
     * Buffers are bucketed by value first, so this is linear in nodes + buffers. */
    int nv = IR_NVALUES(g), *first = arena_calloc(e->a, (size_t)nv + 2, sizeof(int));
    int *by_value = arena_calloc(e->a, (size_t)e->s->nbufs + 1, sizeof(int));
    for (int b = 0; b < e->s->nbufs; b++)
        first[B(e, b)->value + 2]++;
    for (int v = 0; v < nv; v++)
        first[v + 2] += first[v + 1];
    for (int b = 0; b < e->s->nbufs; b++)
        by_value[first[B(e, b)->value + 1]++] = b; /* in b order */
    for (int i = 0; i < nn; i++) {
        const IrNode *n = IR_NODE(g, i);
        const PlanNode *pn = &g->plan->nodes[i];
        for (int k = 0; k < n->ninputs; k++) {
            Layout want = e->s->t == 1 ? LAYOUT_R : pn->in_layout[k];
            for (int j = first[n->inputs[k]]; j < first[n->inputs[k] + 1]; j++)
                if (B(e, by_value[j])->stage == pn->stage && B(e, by_value[j])->layout == want)
                    e->fwd_in[k][i] = by_value[j];
        }
        for (int j = first[n->output]; j < first[n->output + 1] && e->fwd_out[i] < 0; j++)
            if (B(e, by_value[j])->stage == pn->stage) e->fwd_out[i] = by_value[j];
    }
}

static bool emit_trainer(const Target *t, const IrGraph *g, FILE *out, Diag *d) {
    if (!g->sched || !g->plan) {
        diag_error(d, noloc, "internal compiler error: codegen: no schedule");
        return false;
    }
    Emit e = {.t = t, .g = g, .s = g->sched, .o = out, .a = g->arena};
    prepare(&e);
    emit_header(&e);
    E(&e, "#define MODEL_NAME ");
    put_c_string(&e, g->name);
    E(&e, "\n\n");
    emit_params(&e);
    for (int s = 0; s < e.s->S; s++)
        emit_stage_struct(&e, s), emit_alloc(&e, s);
    for (int i = 0; i < IR_NNODES(g); i++)
        emit_layer(&e, i);
    emit_loaders(&e);
    emit_orders(&e);
    for (int s = 0; s < e.s->S; s++)
        emit_stage_fwd(&e, s), emit_stage_bwd(&e, s);
    emit_step(&e);
    emit_summary(&e);
    emit_main(&e);
    if (ferror(out)) {
        diag_error(d, noloc, "cannot write the generated %s", t->lang);
        return false;
    }
    return true;
}

bool cg_emit_c(const IrGraph *g, FILE *out, Diag *d) { return emit_trainer(&target_c, g, out, d); }
bool cg_emit_cuda(const IrGraph *g, FILE *out, Diag *d) {
    return emit_trainer(&target_cuda, g, out, d);
}

void cg_print_c(const IrGraph *g, FILE *out) {
    Diag d;
    diag_init(&d, stderr);
    cg_emit_c(g, out, &d);
}

void cg_print_cuda(const IrGraph *g, FILE *out) {
    Diag d;
    diag_init(&d, stderr);
    cg_emit_cuda(g, out, &d);
}
