/*
 * emit.h: what the files of the trainer emitter share (codegen-internal: only codegen/emit*.c
 * include it; the rest of the compiler sees codegen.h).
 *
 * The emitter is one walk over the graph and the schedule, split by what it prints:
 *   emit.c           the walk (emit_trainer), names and escaping, the file's header comment,
 *                    includes, constants and timers, and the entry points;
 *   emit_buffers.c   each pipeline stage's struct of activation buffers and its allocation;
 *   emit_layers.c    one `_forward` / `_backward` pair per layer;
 *   emit_schedule.c  each stage's per-micro-batch programs (kernels, collectives, sends and
 *                    receives), the 1F1B orders and the training step;
 *   emit_main.c      the parameter table and model descriptor, the data, the plan summary,
 *                    the predicted bytes, setup and main().
 * Every printer takes the Emit state; E() prints to the output. The one-line accessors are
 * static inline here; the rest is declared below by the file that defines it.
 */
#ifndef MPCC_CODEGEN_EMIT_H
#define MPCC_CODEGEN_EMIT_H

#include "codegen.h"

#include <stdarg.h>

/* What differs between the targets besides the blocks that test `dev` (docs/cuda.md). */
typedef struct Target {
    const char *lang; /* "C" or "CUDA", for messages */
    const char *k;    /* kernel and collective prefix: "mprt_" or "mprt_cu_" */
    const char *copy; /* copy between buffers of the trainer: "memcpy" or "mprt_cu_copy" */
    const char *sr;   /* pipeline receive suffix: "" or "_staged" (through host memory) */
    bool dev;         /* the data lives in device memory (the CUDA trainer) */
} Target;

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
    unsigned *uses[2];          /* [nodes] what each layer's forward, backward reads (LYR_*) */
    unsigned *reads[2];         /* [nodes] which of its in[0], in[1], out (bits 0-2) each layer's
                                 * forward, backward names as a->field (bf16 views) */
    /* a function body being printed into a buffer (body_begin .. body_flush) */
    FILE *outer;     /* the output, while `o` is the buffer */
    char *body;      /* the buffer's text, after body_end */
    size_t body_len; /* its length */
    bool oom;        /* a buffer could not be made: the output is incomplete */
} Emit;

static inline void E(Emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void E(Emit *e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->o, fmt, ap);
    va_end(ap);
}
static inline const char *pfx(const Emit *e) { return e->t->k; }
/* `mprt_zero(p, bytes)` on the host (a memset on the rank's threads), `mprt_cu_memset0(p, bytes)`
 * on the device. */
static inline const char *zero(const Emit *e) {
    return e->t->dev ? "mprt_cu_memset0(" : "mprt_zero(";
}

static inline const char *lay_name(Layout l) { return (const char *[]){"R", "B", "F", "P"}[l]; }
static inline Layout grad_layout_of(Layout l) { return l == LAYOUT_P ? LAYOUT_R : l; }
static inline const char *group_c(GroupKind k) {
    return (const char *[]){"MPRT_TENSOR", "MPRT_DATA", "MPRT_STAGE", "MPRT_PIPE"}[k];
}
static inline const char *strat_name(Strategy s) {
    return s == STRAT_COL ? "tensor(col)" : s == STRAT_ROW ? "tensor(row)" : "data";
}

/* The schedule's buffer b, its value, and the sizes of its local shard. */
static inline const SchedBuf *B(const Emit *e, int b) { return &e->s->bufs[b]; }
static inline const IrValue *BV(const Emit *e, int b) { return IR_VALUE(e->g, B(e, b)->value); }
static inline bool is_int(const Emit *e, int b) { return BV(e, b)->dtype != DT_F32; }
/* A bf16 plan on the host (docs/runtime.md, "A bf16 trainer"): f32 master weights `mst`, a
 * bf16-rounded working copy `prm`, activations rounded after every layer, bf16 on the wire. */
static inline bool cg_bf16(const Emit *e) {
    return e->s->precision == PRECISION_BF16 && !e->t->dev;
}
/* The same on the device (docs/cuda.md, "bf16"): `mst` and `prm` in device memory, the
 * mprt_cu_ roundings, the device collectives on the same (CPU) wire switch. */
static inline bool cg_bf16_cu(const Emit *e) {
    return e->s->precision == PRECISION_BF16 && e->t->dev;
}
/* Either target: the optimizer updates, and checkpoints hold, the master weights `mst`; the
 * working weights `prm` are bf16 values (uint16_t), each layer's unpacked into the f32 staging
 * buffer `wl` for the kernels that take f32 weights (PREFIX_bf16_layer). */
static inline bool cg_mst(const Emit *e) { return cg_bf16(e) || cg_bf16_cu(e); }
/* A bf16 trainer, C or CUDA, keeps buffer b in 16 bits (docs/runtime.md, "A bf16 trainer";
 * docs/cuda.md, "16-bit activations"): an f32 activation, not an input or label as loaded
 * (those stay f32, outside the plan), nor an op's internals (stash, argmax: their own
 * f32/int32 fields). The kernels see it through the stage's f32 view `w`, unpacked into `work`
 * around each layer (emit_schedule.c); on the device both are device memory. */
static inline bool cg_h16(const Emit *e, int b) {
    return cg_mst(e) && b >= 0 && BV(e, b)->dtype == DT_F32 && BV(e, b)->kind == VAL_ACT;
}
/* bf16 with ZeRO on either target (docs/runtime.md, "ZeRO under bf16"; docs/cuda.md, the same):
 * `mst` holds this rank's parts of the f32 master weights (at the ZERO_PARTS soff, like the
 * optimizer state); `prm` is whole. */
static inline bool cg_zero_master(const Emit *e) { return cg_mst(e) && e->s->zero; }
/* ZeRO-3 in the C trainer (docs/runtime.md, "ZeRO"; runtime/trainer_zero3.c): `prm` holds this
 * rank's parts of the f32 weights, each layer's gathered whole before it runs. */
static inline bool cg_zero3(const Emit *e) { return e->s->zero == 3; }
static inline int64_t lnumel(const Emit *e, int b) { return ir_shape_numel(&B(e, b)->local); }
static inline int64_t ldim(const Emit *e, int b, int i) {
    const Shape *s = &B(e, b)->local;
    return s->d[i < 0 ? s->rank + i : i];
}
static inline const IrParam *P(const Emit *e, const IrNode *n, ParamRole r) {
    for (int i = n->first_param; i < n->first_param + n->nparams; i++)
        if (IR_PARAM(e->g, i)->role == r) return IR_PARAM(e->g, i);
    return NULL;
}
static inline int PI(const Emit *e, const IrNode *n, ParamRole r) {
    const IrParam *p = P(e, n, r);
    return p ? (int)(p - IR_PARAM(e->g, 0)) : -1;
}

/* The product of dims [from, to) of s. */
static inline int64_t prod(const Shape *s, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= s->d[i];
    return p;
}

/* ── emit_main.c ── */
/* Whether the plan is ZeRO-2 or 3: gradients in parts and transient slots
 * (runtime/trainer_zero2.c, on the device runtime/cuda/zero2.c), no whole gradient arena. */
bool cg_zero2_sharded(const Emit *e);
/* Node `node`'s index in the ZERO_PARTS table (its rank among the layers with parameters). */
int cg_zero_part(const Emit *e, int node);
/* ZeRO-3: "mprt_zero3_gather(PART), " for a layer with parameters, the start of the timed
 * expression that runs it (its weights gathered first); "" otherwise. */
const char *cg_zero3_gather(Emit *e, int node);
/* Floats of node n's parameters on one device; parameter i's offset from its layer's first
 * (a bf16 trainer stages a layer's weights as f32: emit_main.c). */
int64_t cg_layer_floats(const Emit *e, const IrNode *n);
int64_t cg_layer_at(const Emit *e, int i);

/* ── emit.c ── */
/* Source text for a comment: printable ASCII only, no comment terminator. */
void put_comment_text(Emit *e, const char *s);
/* A C string literal: printable ASCII except quote and backslash, else octal. */
void put_c_string(Emit *e, const char *s);
/* The line of the .mp file that made node n, as a comment. */
void source_comment(Emit *e, const IrNode *n, const char *indent);
/* A shape as text ("f32[32, 784]"), in the arena. */
const char *shape_str(Emit *e, DType t, const Shape *s);
/* A float constant as C source: always with a '.' or an exponent, then 'f'. */
const char *flt(Emit *e, double v);
/* "P3_fc1_weight" or "NULL"; with grad "G3_fc1_weight". */
const char *pref(Emit *e, const IrNode *n, ParamRole r, bool grad);
/* Whether this rank adds parameter r of n ("1", or "mesh->k == 0" where one rank adds it). */
const char *add_flag(Emit *e, const IrNode *n, ParamRole r);
/* A function's body is printed into a buffer first (body_begin), so that what comes before it
 * can depend on what it uses: body_end stops the buffer and returns which of `names`
 * (NULL-terminated) the body's code mentions, bit i for names[i]; body_flush prints it. Layer
 * functions take only the parameters they read, stage functions declare only the locals they
 * use: no `(void)x` casts. */
void body_begin(Emit *e);
unsigned body_end(Emit *e, const char *const *names);
void body_flush(Emit *e);
/* The layer parameters, bits of Emit.uses: the stage's activations and gradients, the step
 * and the first sample of the micro-batch (dropout's mask needs the last two). */
enum { LYR_A = 1, LYR_D = 2, LYR_STEP = 4, LYR_N0 = 8 };
/* The arguments of a call of a layer function that uses `uses`, with `a` for LYR_A and `d`
 * for LYR_D. */
const char *layer_args(Emit *e, unsigned uses, const char *a, const char *d);
/* The file's header comment, includes, mesh and batch constants, hyper-parameters, timers. */
void emit_header(Emit *e);

/* ── emit_buffers.c ── */
/* The struct field of node id's extra buffer `what` ("stash", "argmax"). */
const char *aux_field(Emit *e, int id, const char *what);
/* The start of the call that allocates n floats (ints) of memory category cat ("ACTS"; the
 * caller writes "n)"): counted on the C target (mprt_falloc_in(MPRT_MEM_ACTS, ), device memory
 * on the CUDA one (mprt_cu_falloc(). */
const char *cg_alloc(const Emit *e, bool ints, const char *cat);
/* Stage s's buffer struct and its allocation function. */
void emit_stage_struct(Emit *e, int s);
void emit_alloc(Emit *e, int s);

/* ── emit_layers.c ── */
/* Node id's constants and its forward and backward functions. */
void emit_layer(Emit *e, int id);

/* ── emit_schedule.c ── */
/* Stage s's forward and backward programs; the stage table STAGES (the runtime's MprtStage:
 * allocation, programs, 1F1B order); the step. */
void emit_stage_fwd(Emit *e, int s);
void emit_stage_bwd(Emit *e, int s);
void emit_stages(Emit *e);
void emit_step(Emit *e);

/* ── emit_main.c ── */
/* The parameter arenas and table and the model descriptor. */
void emit_params(Emit *e);
/* The inputs and labels (MprtData) and the micro-batch loader. */
void emit_loaders(Emit *e);
/* The plan summary and the predicted bytes. */
void emit_summary(Emit *e);
/* free_all, setup_rank, open_data, the trainer descriptor and main(). */
void emit_main(Emit *e);

/* ── emit_hf.c ── */
/* HF: --export-hf's GPT-2 table and config, or why the model has none (docs/hf.md). */
void emit_hf(Emit *e);

#endif /* MPCC_CODEGEN_EMIT_H */
