/*
 * emit.c: the trainer emitter — the SPMD schedule printed as a standalone MPI trainer in C
 * (cg_emit_c) or as a CUDA trainer (.cu, cg_emit_cuda) running on the GPU through
 * runtime/cuda/mprt_cuda.h (docs/cuda.md).
 *
 * The schedule (passes/lower_spmd.c) already says everything a rank does; the emitter only
 * decides how it reads. It is split by what it prints (emit.h lists the files): this file
 * holds the walk (emit_trainer), names and escaping, the header and the entry points.
 *
 * The output follows llm.c: named constants for every shape, one `_forward` / `_backward`
 * pair per layer calling the runtime's kernels on the local shard, parameters, gradients and
 * optimizer state each carved from one allocation, and a short main(). Each pipeline stage
 * gets a struct naming its activation buffers (one field per (value, layout) buffer and per
 * saved-for-backward stash), an allocation function, and one forward and one backward
 * function per micro-batch whose bodies are the schedule's lists in order: kernels,
 * collectives on named groups, sends and receives. The step walks the stage's 1F1B order,
 * synchronises gradients and steps the optimizer.
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
#include "emit.h"
#include "report.h"

#include <stdlib.h>
#include <string.h>

static const SrcLoc noloc = {NULL, 0, 0, 0};

static const Target target_c = {"C", "mprt_", "memcpy", "", false};
static const Target target_cuda = {"CUDA", "mprt_cu_", "mprt_cu_copy", "_staged", true};

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
void put_comment_text(Emit *e, const char *s) {
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
void put_c_string(Emit *e, const char *s) {
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

void source_comment(Emit *e, const IrNode *n, const char *indent) {
    E(e, "%s/* ", indent);
    put_comment_text(e, e->g->file);
    E(e, ":%d:%d  ", n->loc.line, n->loc.col);
    put_comment_text(e, n->text ? n->text : n->name);
    E(e, " */\n");
}

const char *shape_str(Emit *e, DType t, const Shape *s) {
    char buf[160];
    return arena_strdup(e->a, ir_shape_str(buf, sizeof buf, t, s));
}

/* A float constant as C source: always with a '.' or an exponent, then 'f'. */
const char *flt(Emit *e, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.9g", v);
    bool dot = strpbrk(buf, ".eEn") != NULL;
    return arena_printf(e->a, "%s%sf", buf, dot ? "" : ".0");
}

/* "P3_fc1_weight" or "NULL"; with grad "GRAD(P3_fc1_weight)". */
const char *pref(Emit *e, const IrNode *n, ParamRole r, bool grad) {
    int i = PI(e, n, r);
    if (i < 0) return "NULL";
    return arena_printf(e->a, grad ? "GRAD(P%s)" : "P%s", e->pname[i]);
}
const char *add_flag(Emit *e, const IrNode *n, ParamRole r) {
    int i = PI(e, n, r);
    return i >= 0 && e->s->params[i].rank0_adds ? "mesh->k == 0" : "1";
}

/* ───────────────────────────── function bodies ───────────────────────────── */

static bool ident_char(char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Whether `name` appears in C text `s` as an identifier, outside comments and literals. One
 * pass, with no str* calls (under the sanitizers each measures the whole rest of the text,
 * which made a stage of 65,000 layers quadratic). */
static bool mentions(const char *s, const char *name) {
    size_t n = strlen(name);
    for (const char *p = s; *p;) {
        if (p[0] == '/' && p[1] == '*') {
            for (p += 2; *p && !(p[0] == '*' && p[1] == '/');)
                p++;
            p += *p ? 2 : 0;
        } else if (*p == '"' || *p == '\'') {
            char q = *p++;
            while (*p && *p != q)
                p += p[0] == '\\' && p[1] ? 2 : 1;
            p += *p != 0;
        } else if (ident_char(*p) && !(*p >= '0' && *p <= '9')) {
            const char *start = p;
            while (ident_char(*p))
                p++;
            if ((size_t)(p - start) == n && !memcmp(start, name, n)) return true;
        } else {
            p++;
        }
    }
    return false;
}

void body_begin(Emit *e) {
    e->outer = e->o;
    e->body = NULL, e->body_len = 0;
    FILE *buf = open_memstream(&e->body, &e->body_len);
    if (buf)
        e->o = buf;
    else
        e->oom = true; /* the body goes straight out; emit_trainer reports the failure */
}

unsigned body_end(Emit *e, const char *const *names) {
    if (e->o == e->outer) return ~0u;
    fclose(e->o);
    e->o = e->outer;
    unsigned used = 0;
    for (int i = 0; names[i]; i++)
        if (mentions(e->body, names[i])) used |= 1u << i;
    return used;
}

void body_flush(Emit *e) {
    if (e->body) fwrite(e->body, 1, e->body_len, e->o);
    free(e->body);
    e->body = NULL, e->body_len = 0;
}

const char *layer_args(Emit *e, unsigned uses, const char *a, const char *d) {
    const char *arg[] = {a, d, "step", "n0"}, *s = "";
    for (int i = 0; i < 4; i++)
        if (uses & (1u << i)) s = arena_printf(e->a, "%s%s%s", s, *s ? ", " : "", arg[i]);
    return s;
}

/* ───────────────────────────── the header ───────────────────────────── */

/* C++ for nvcc on the device: MPI's C++ bindings kept out, mprt.h inside extern "C". */
static void emit_includes(Emit *e) {
    if (!e->t->dev) {
        E(e, " */\n#define _POSIX_C_SOURCE 200809L\n#include <stdlib.h>\n#include <string.h>\n\n"
             "#include \"mprt_trainer.h\" /* the runtime: mprt.h, its kernels, the trainer's part "
             "*/\n\n");
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

/* The stage's buffers (emit_alloc carves them); on the device also the step's loss. Layer
 * timers and pipeline sends are the runtime's (MPRT_TIMED, mprt_pipe_send: mprt_trainer.h). */
static void emit_buffers(Emit *e) {
    const char *where = e->t->dev ? " (device)" : "";
    E(e,
      "static float *scratch, *xfer; /* kernel scratch; collective staging%s */\n"
      "static float *gbase;           /* this stage's activation gradients%s */\n"
      "static float *fbase;           /* this stage's activations%s */\n"
      "static int32_t *ibase;         /* this stage's integer inputs and argmaxes%s */\n"
      "static float *xbase, *rfbase;   /* inputs and labels as loaded; recomputed copies%s */\n"
      "static int32_t *xibase, *ribase; /* the same, integers%s */\n",
      where, where, where, where, where, where);
    if (cg_mst(e))
        E(e,
          "static uint16_t *hbase, *rhbase; /* bf16: this stage's 16-bit activations; "
          "recomputed%s */\n"
          "static float *work;            /* bf16: one layer's activations as f32 (the "
          "layers' view)%s */\n",
          where, where);
    if (e->t->dev)
        E(e, "static double *dloss;          /* the step's loss, accumulated on the device (a "
             "recomputed\n                                * loss adds into dloss[1], "
             "discarded) */\n");
    E(e, "\n");
}

void emit_header(Emit *e) {
    const IrGraph *g = e->g;
    const Schedule *s = e->s;
    E(e, "/*\n * Generated by mpcc %s from ", MPCC_VERSION);
    put_comment_text(e, g->file);
    E(e, ". Do not edit: change the model and regenerate.\n *\n * model ");
    put_comment_text(e, g->name);
    int64_t np = 0;
    for (int i = 0; i < IR_NPARAMS(g); i++)
        np += ir_shape_numel(&IR_PARAM(g, i)->shape);
    char b[5][48]; /* the report's words; x, not ×: generated comments are ASCII */
    E(e, ": %s, %lld parameters\n", units_n(b[0], 48, IR_NNODES(g), "layer"), (long long)np);
    E(e, " * mesh: S=%s x d=%s x t=%s = %s (mpirun -np %d)\n", units_n(b[0], 48, s->S, "stage"),
      units_n(b[1], 48, s->d, "replica"), units_n(b[2], 48, s->t, "tensor rank"),
      units_n(b[3], 48, s->S * s->d * s->t, "rank"), s->S * s->d * s->t);
    E(e, " * batch %lld = %s x %s x %s\n *\n * plan:\n", (long long)s->batch,
      units_n(b[0], 48, s->d, "replica"), units_n(b[1], 48, s->m, "micro-batch"),
      units_n(b[4], 48, (long long)s->micro, "sample"));
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
    /* a variable, not constants: the C API (emit_capi.c) lets a caller override them */
    E(e,
      "/* lr, momentum, beta1, beta2, eps, weight_decay (a variable: the C API may set them) */\n"
      "static MprtHyper hyper = {%s, %s, %s, %s, %s, %s};\n",
      flt(e, t->lr), flt(e, t->momentum), flt(e, t->beta1), flt(e, t->beta2), flt(e, t->eps),
      flt(e, t->weight_decay));
    E(e, "static const MprtMesh *mesh;\nstatic uint64_t seed = DEFAULT_SEED;\n");
    emit_buffers(e);
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
    for (int k = 0; k < 2; k++) {
        e->uses[k] = arena_calloc(e->a, (size_t)nn + 1, sizeof(unsigned));
        e->reads[k] = arena_calloc(e->a, (size_t)nn + 1, sizeof(unsigned));
    }
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

/* Whether the target's trainer implements the plan, with a one-line error before anything is
 * written where it does not. Both trainers implement bf16 (docs/runtime.md, "A bf16 trainer";
 * docs/cuda.md, "bf16"), ZeRO-1/2, and the two together, the f32 master weights sharded with
 * the optimizer state (docs/runtime.md and docs/cuda.md, "ZeRO under bf16"). ZeRO-3 (the weights
 * in parts, each layer gathered before it runs: docs/runtime.md, "ZeRO") is the C trainer's, in
 * f32 and bf16; the CUDA trainer refuses it. */
bool cg_plan_supported(const IrGraph *g, bool cuda, Diag *d) {
    if (g->plan && g->plan->zero == 3 && cuda) {
        diag_error(d, noloc,
                   "the CUDA trainer does not implement ZeRO stage 3 (train.zero = 3: parameters "
                   "sharded and gathered before use); the C trainer does (--target c); use "
                   "train.zero = 0, 1, 2 or \"auto\" for CUDA");
        return false;
    }
    return true;
}

static bool emit_trainer(const Target *t, const IrGraph *g, FILE *out, Diag *d) {
    if (!g->sched || !g->plan) {
        diag_error(d, noloc, "internal compiler error: codegen: no schedule");
        return false;
    }
    if (!cg_plan_supported(g, t->dev, d)) return false;
    Emit e = {.t = t, .g = g, .s = g->sched, .o = out, .a = g->arena};
    prepare(&e);
    emit_header(&e);
    emit_params(&e);
    for (int s = 0; s < e.s->S; s++)
        emit_stage_struct(&e, s), emit_alloc(&e, s);
    for (int i = 0; i < IR_NNODES(g); i++)
        emit_layer(&e, i);
    emit_loaders(&e);
    for (int s = 0; s < e.s->S; s++)
        emit_stage_fwd(&e, s), emit_stage_bwd(&e, s);
    emit_stages(&e);
    emit_step(&e);
    emit_summary(&e);
    emit_main(&e);
    if (ferror(out) || e.oom) {
        diag_error(d, noloc, "cannot write the generated %s%s", t->lang,
                   e.oom ? ": out of memory" : "");
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
