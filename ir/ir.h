/*
 * ir.h: the map of mpcc. Read this first.
 *
 * mpcc turns a .mp model description into a model-parallel training program:
 *
 *   .mp text ─ frontend/ ─► AST ─► IrGraph ─ passes/ ─► Plan ─► Schedule ─ codegen/ ─► train.c /
 * train.cu
 *
 *   frontend/  fe_parse_file(): flex lexer + bison parser into an AST (frontend/ast.h),
 *              fe_lower(): AST → IrGraph, expanding `def` and `repeat`, resolving the
 *              train/cluster blocks, presets and -D overrides into TrainCfg/ClusterCfg.
 *   ir/        this header: arenas, diagnostics, the tensor graph, the op table (ops.def),
 *              the textual dump (ir_dump) and the verifier (ir_verify).
 *   passes/    one pass per file, all with the signature `bool pass_NAME(IrGraph *, Diag *)`,
 *              run in order by pass_run_pipeline() (passes/passes.h, passes/pipeline.c):
 *                shapes   shape inference, parameter shapes and counts, FLOPs   (passes/shapes.c)
 *                plan     cost model + search, fills g->plan                    (passes/cost.c,
 * search*.c) report   the plan's contract checked                            (passes/plan_check.c)
 *                lower    lowering to a per-rank schedule (passes/lower_spmd.c) report/
 * pass_report_text(), pass_report_json(): the plan written for people and programs
 *              (report/report.h); reads the plan, plans nothing.
 *   codegen/   cg_emit_c(), cg_emit_cuda(): the schedule printed as a C or CUDA program.
 *   runtime/   mprt: the library generated trainers link (runtime/mprt.h).
 *   driver/    the `mpcc` command.
 *
 * Conventions (STYLE.md): module prefixes (fe_ ir_ pass_ cost_ cg_ mprt_ diag_ arena_),
 * references between IR objects are indices into the graph's arrays (never pointers), all
 * compiler memory comes from an Arena freed once at exit, and user errors are reported
 * through Diag, never by assert or exit.
 */
#ifndef MPCC_IR_H
#define MPCC_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MPCC_VERSION "0.1.0"

/* ───────────────────────────── arenas (ir/arena.c) ───────────────────────────── */

/* A bump allocator made of chained blocks. Memory is zeroed and 16-byte aligned; it is
 * released all at once by arena_free(). Running out of memory is fatal (exit 3). */
typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
    ArenaBlock *head;
    size_t total; /* bytes handed out, for statistics */
} Arena;

void *arena_alloc(Arena *a, size_t size);
void *arena_calloc(Arena *a, size_t n, size_t size); /* checks n*size for overflow */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

/* A growable array of fixed-size items living in an arena (old storage is abandoned to the
 * arena on growth). Used for node, value and parameter tables. */
typedef struct Vec {
    void *data;
    size_t len, cap, item;
} Vec;
void *vec_push(Arena *a, Vec *v); /* returns a zeroed slot */
#define VEC_AT(v, T, i) (((T *)(v).data)[i])

/* ──────────────────────── source locations and diagnostics (ir/diag.c) ──────────────────────── */

/* A span on one source line: columns are 1-based, end_col is inclusive. line == 0 means
 * "no location" (command-line or internal). */
typedef struct SrcLoc {
    const char *file;
    int line, col, end_col;
} SrcLoc;

typedef enum { DIAG_ERROR, DIAG_WARNING, DIAG_NOTE } DiagLevel;

/* Collects diagnostics and prints each as it arrives, compiler-style:
 *   model.mp:12:5: error: linear expects 2-D input, got f32[128, 3, 32, 32]
 *       h = linear(x, 10);
 *           ^~~~~~~~~~~~~
 * The source text of the file being compiled is registered with diag_set_source() so
 * caret lines can be drawn. Errors are counted; a phase reports all it finds and the
 * driver stops after the phase when diag_errors() > 0. */
typedef struct Diag {
    FILE *out;        /* stderr by default */
    const char *file; /* the registered source file */
    const char *src;  /* its text, NUL-terminated */
    size_t src_len;
    int errors, warnings;
    int max_errors; /* stop printing after this many errors (0: no limit) */
    bool color;
} Diag;

void diag_init(Diag *d, FILE *out);
void diag_set_source(Diag *d, const char *file, const char *src, size_t len);
void diag_report(Diag *d, DiagLevel lvl, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void diag_vreport(Diag *d, DiagLevel lvl, SrcLoc loc, const char *fmt, va_list ap);
#define diag_error(d, loc, ...) diag_report((d), DIAG_ERROR, (loc), __VA_ARGS__)
#define diag_warning(d, loc, ...) diag_report((d), DIAG_WARNING, (loc), __VA_ARGS__)
#define diag_note(d, loc, ...) diag_report((d), DIAG_NOTE, (loc), __VA_ARGS__)
static inline int diag_errors(const Diag *d) { return d->errors; }
/* The closest of `n` candidate names to `name` by edit distance, or NULL if none is
 * close enough to suggest ("did you mean 'relu'?"). */
const char *diag_suggest(const char *name, const char *const *cands, size_t n);

/* ─────────────────────────── output files (ir/outfile.c) ─────────────────────────── */

/* A file being written: `f` is a temporary beside `path`, renamed over it by ir_out_close
 * when everything succeeded, removed otherwise; mode 0666 minus the umask. A NULL or "-"
 * path writes standard output; a path that exists and is not a regular file (/dev/null, a
 * FIFO) is written in place. */
typedef struct IrOutFile {
    FILE *f;
    char *tmp; /* NULL for standard output and direct writes */
    const char *path;
    bool direct; /* `path` opened in place */
} IrOutFile;
bool ir_out_open(IrOutFile *o, const char *path, Diag *d);
/* Finishes the file; `ok` false (the caller failed) discards it. Returns whether `path` now
 * holds the complete output; errors are reported on `d`. */
bool ir_out_close(IrOutFile *o, bool ok, Diag *d);

/* ───────────────────────────── the op table (ir/ops.def) ───────────────────────────── */

/* Strategies a layer can take on the tensor (t) axis of its stage group (DESIGN.md §4).
 *   DATA  split the batch over the t ranks too, weights replicated (B in → B out)
 *   COL   split output features / channels / heads / embedding features (R in → F out;
 *         attention: R in → P out, q/k/v split by heads, output projection by rows)
 *   ROW   split input features / channels / embedding vocabulary (F in → P out;
 *         embedding: R in → P out) */
typedef enum { STRAT_DATA, STRAT_COL, STRAT_ROW, STRAT__COUNT } Strategy;
#define STRATF_DATA (1u << STRAT_DATA)
#define STRATF_COL (1u << STRAT_COL)
#define STRATF_ROW (1u << STRAT_ROW)

#define OPF_PARAMS 1u   /* has trainable parameters */
#define OPF_LOSS 2u     /* produces the scalar loss */
#define OPF_LABEL_IN 4u /* its last input may be a `label` */

typedef enum {
#define OP(id, name, nin, strats, flags, args) OP_##id,
#include "ops.def"
#undef OP
    OP__COUNT
} OpKind;

typedef struct OpInfo {
    const char *name;
    int ninputs;
    unsigned strats, flags;
    const char *argspec;
} OpInfo;
extern const OpInfo ir_ops[OP__COUNT];
/* -1 when `name` is not an op. */
int ir_op_lookup(const char *name);

/* One parsed argument of an op's argspec. */
typedef enum { ARG_INT, ARG_FLOAT, ARG_BOOL } ArgType;
#define IR_MAX_ARGS 8
typedef struct ArgSpec {
    char name[24];
    ArgType type;
    bool required;
    double def; /* default value (ints and bools stored exactly) */
} ArgSpec;
/* Parses ir_ops[op].argspec; returns the number of arguments (≤ IR_MAX_ARGS). */
int ir_op_args(OpKind op, ArgSpec out[IR_MAX_ARGS]);

/* Named argument slots, generated from the ARG/ARGD lists of ops.def. For every argument
 * ARGID of op ID there are three constants:
 *   IR_ARG_ID_ARGID     its slot in IrNode.args (its position in the op's list)
 *   IR_ARGOP_ID_ARGID   OP_ID, the op it belongs to
 *   IR_ARGTY_ID_ARGID   its ArgType
 * Code reads arguments through the accessors below, never by a bare position. */
enum { IR_ARGT_int = ARG_INT, IR_ARGT_float = ARG_FLOAT, IR_ARGT_bool = ARG_BOOL };
#define ARG(op, aid, nm, ty) IR_ARG_##op##_##aid,
#define ARGD(op, aid, nm, ty, def) IR_ARG_##op##_##aid,
#define OP(id, name, nin, strats, flags, args) enum { IR_ARGS_BEFORE_##id = -1, args };
#include "ops.def"
#undef OP
#undef ARG
#undef ARGD
#define ARG(op, aid, nm, ty) IR_ARGOP_##op##_##aid = OP_##op, IR_ARGTY_##op##_##aid = IR_ARGT_##ty,
#define ARGD(op, aid, nm, ty, def)                                                                 \
    IR_ARGOP_##op##_##aid = OP_##op, IR_ARGTY_##op##_##aid = IR_ARGT_##ty,
#define OP(id, name, nin, strats, flags, args) enum { IR_ARGINFO_##id = 0, args };
#include "ops.def"
#undef OP
#undef ARG
#undef ARGD

/* ─────────────────────────────── the tensor graph ─────────────────────────────── */

typedef enum { DT_F32, DT_I32, DT_I64 } DType;
const char *ir_dtype_name(DType t);
size_t ir_dtype_size(DType t);

#define IR_MAX_RANK 6
/* Dimension 0 of every activation is the batch (the language only allows the symbolic
 * `batch` as the leading dimension); parameters have no batch dimension. Dimensions
 * hold the global batch; the planner divides by micro-batches and replicas. */
typedef struct Shape {
    int rank;
    int64_t d[IR_MAX_RANK];
} Shape;
int64_t ir_shape_numel(const Shape *s);
/* "f32[128, 784]" into buf; returns buf. */
char *ir_shape_str(char *buf, size_t n, DType t, const Shape *s);

typedef enum { VAL_INPUT, VAL_LABEL, VAL_ACT } ValueKind;

/* A tensor flowing between nodes. */
typedef struct IrValue {
    const char *name; /* source name or generated ("h1", "blocks.3.attn") */
    ValueKind kind;
    DType dtype;
    Shape shape;    /* filled by the frontend for inputs/labels, by pass_shapes otherwise */
    bool batch_sym; /* inputs/labels: the leading dimension was written `batch` */
    int producer;   /* node index, -1 for inputs and labels */
    int nusers;     /* how many node inputs read it (filled by ir_finalize) */
    SrcLoc loc;     /* where it was declared or defined */
} IrValue;

/* A trainable tensor of one node: "blocks.3.mlp.fc1.weight". Shapes are whole (unsharded). */
typedef enum {
    PARAM_WEIGHT, /* linear [in, out]; conv2d [out, in, k, k]; embedding [vocab, dim] */
    PARAM_BIAS,   /* [out] */
    PARAM_GAMMA,  /* layernorm scale [dim] */
    PARAM_BETA,   /* layernorm shift [dim] */
    PARAM_POS,    /* embedding positions [positions, dim] */
    PARAM_WQ,
    PARAM_WK,
    PARAM_WV,
    PARAM_WO, /* attention [dim, dim] */
    PARAM_BQ,
    PARAM_BK,
    PARAM_BV,
    PARAM_BO, /* attention [dim] */
    PARAM__COUNT
} ParamRole;
const char *ir_param_role_name(ParamRole r); /* "weight", "bias", "gamma", "wq", ... */

typedef struct IrParam {
    const char *name; /* full hierarchical name, "<node>.<role>" */
    ParamRole role;
    int node;
    Shape shape;
} IrParam;

#define IR_MAX_INPUTS 2
#define IR_NO_STAGE (-1)

/* Annotations written on a statement (@data, @tensor(col|row), @stage(k)). */
typedef struct Annot {
    bool has_strat;
    Strategy strat;
    SrcLoc strat_loc;
    int stage; /* IR_NO_STAGE when not pinned */
    SrcLoc stage_loc;
    bool recompute; /* @recompute on the call or on a def call around it */
    SrcLoc recompute_loc;
} Annot;

/* One layer. Which `args` slots mean what is given by the op's argument list in ops.def,
 * in order; read them by name: ir_arg_int(n, LINEAR_OUT), ir_arg_bool(n, LINEAR_BIAS). */
typedef struct IrNode {
    OpKind op;
    const char *name; /* hierarchical: "blocks.3.mlp.fc1" */
    const char *text; /* the source statement, for comments in generated code */
    SrcLoc loc;       /* the call's span */
    int ninputs;
    int inputs[IR_MAX_INPUTS]; /* value indices */
    int output;                /* value index */
    double args[IR_MAX_ARGS];
    SrcLoc arg_loc[IR_MAX_ARGS]; /* where each argument was written (line 0 if defaulted) */
    Annot annot;
    int first_param, nparams; /* a range of g->params, filled by pass_shapes */
    int64_t param_count;      /* elements over all its parameters */
    /* For the whole global batch, one step. Doubles: a 1T-parameter GPT's MLP GEMM alone is
     * ~3e19 FLOPs a step, past 2^63; exact below 2^53 (9e15), which every count the tests
     * and goldens pin stays under, and the cost model only ever divides them. */
    double flops_fwd, flops_bwd;
} IrNode;

/* Reading a named argument: ir_arg(n, ATTENTION_HEADS) is the raw value, ir_arg_int,
 * ir_arg_float and ir_arg_bool also check, at compile time, that the argument has that type.
 * Reading an argument of another op's node is an internal compiler error (ir_arg_get). */
double ir_arg_get(const IrNode *n, OpKind op, int slot);
#define IR_ARG_TYPED_(n, A, T)                                                                     \
    ((void)sizeof(char[(int)IR_ARGTY_##A == (int)(T) ? 1 : -1]),                                   \
     ir_arg_get((n), (OpKind)IR_ARGOP_##A, IR_ARG_##A))
#define ir_arg(n, A) ir_arg_get((n), (OpKind)IR_ARGOP_##A, IR_ARG_##A)
#define ir_arg_int(n, A) ((int64_t)IR_ARG_TYPED_(n, A, ARG_INT))
#define ir_arg_float(n, A) IR_ARG_TYPED_(n, A, ARG_FLOAT)
#define ir_arg_bool(n, A) (IR_ARG_TYPED_(n, A, ARG_BOOL) != 0)

typedef enum { OPT_SGD, OPT_ADAM, OPT_ADAMW } OptKind;
/* Bounds on the counts a .mp or -D can give (frontend/config.c checks them), so sizes and
 * loops derived from them stay in range: the batch fits an int like an op's arguments, and
 * the planner never considers more micro-batches per step than IR_MAX_MICROBATCHES. */
#define IR_MAX_BATCH 2147483647LL
#define IR_MAX_MICROBATCHES 65536
#define IR_MAX_DEVICES 1048576
typedef enum { RECOMPUTE_AUTO, RECOMPUTE_NONE, RECOMPUTE_ALL } RecomputePolicy;
/* train.precision (docs/language.md; docs/cost-model.md, "Mixed precision"): f32 everywhere, or
 * bf16 parameters, activations, gradients and messages with f32 master weights and optimizer
 * state. */
typedef enum { PRECISION_F32, PRECISION_BF16 } Precision;
/* Bytes of one f32 tensor element as a plan under precision p stores and sends it. */
static inline int64_t ir_float_bytes(Precision p) { return p == PRECISION_BF16 ? 2 : 4; }
typedef struct TrainCfg {
    int64_t batch, microbatches, steps, seed; /* microbatches 0: not set, the planner picks m */
    OptKind opt;
    double lr, momentum, beta1, beta2, eps, weight_decay;
    /* plan.mesh and plan.microbatches (docs/language.md, "plan"): a mesh S×d×t the user
     * pins (all 0: the search chooses it) and its micro-batch count (0: the best for that
     * mesh); mesh_loc is where plan.mesh was set in the file (line 0: by -D). */
    int64_t mesh[3], mesh_m;
    SrcLoc mesh_loc;
    /* train.recompute (docs/cost-model.md, "Activation recomputation"): "auto" lets the search
     * recompute where memory binds, "none" only where @recompute pins it, "all" everywhere. */
    RecomputePolicy recompute;
    /* train.zero (docs/language.md): the ZeRO stage over the data replicas, 0 (none, the
     * default), 1 (optimizer state sharded), 2 (gradients too) or 3 (parameters too: the C
     * trainer; refused for CUDA by codegen); TRAIN_ZERO_AUTO lets the planner pick among 0 to 3,
     * or 0 to 2 with zero_auto_max2 (passes/search.c). */
    int64_t zero;
    /* Set by the driver when the CUDA trainer is to be emitted (--target cuda, --emit=cuda),
     * which does not run ZeRO-3: "auto" then stops at stage 2. */
    bool zero_auto_max2;
    Precision precision; /* train.precision: PRECISION_F32 (the default) or PRECISION_BF16 */
} TrainCfg;
#define TRAIN_ZERO_AUTO (-1)

/* A cluster of identical devices. Units: FLOP/s, bytes, bytes/s, seconds. */
/* A preset's measured figures (docs/presets.md): a preset file's, or the built-in cpu
 * preset's GEMM grid (frontend/config.c); the GPU presets have none. */
typedef struct PresetColl {
    int coll;           /* CollKind (passes/passes.h): COLL_ALLREDUCE … COLL_SENDRECV */
    bool inter;         /* measured across nodes (else within one) */
    int64_t group;      /* ranks in the group */
    double alpha, beta; /* one call of n bytes (the full tensor) takes α + n/β seconds */
} PresetColl;

typedef struct PresetGemm {
    int64_t m, n, k; /* C[m×n] = A[m×k]·B[k×n] */
    double flops;    /* sustained FLOP/s at this shape (the forward's call: C = A·B) */
    /* the backward's calls at the same (m, n, k), accumulating into C: C += A·Bᵀ (a linear's
     * dx, conv2d's dW) and C += Aᵀ·B (a linear's dW); 0 when not given: `flops` */
    double flops_nt, flops_tn;
    /* the same three calls with every operand in cache (the call repeated on the same
     * matrices): what a layer whose weights stay resident sees (docs/cost-model.md §5,
     * "Operands in cache"); 0 when not given: the cold rate */
    double flops_hot, flops_nt_hot, flops_tn_hot;
} PresetGemm;

/* The runtime's kernel for one op kind, measured (mpcc-calibrate): the bytes the cost model
 * counts for its forward and backward (docs/cost-model.md §5) over the seconds they took. For
 * conv2d: the im2col (fwd) and col2im (bwd) passes, per byte of the unrolled matrix. */
typedef struct PresetOp {
    int op;        /* OpKind */
    double fwd_bw; /* bytes/s */
    double bwd_bw; /* bytes/s */
    /* conv2d only: its bias passes per byte of the output (forward: the output planes set to
     * the bias; backward: each plane summed into the bias gradient); 0 when not given */
    double bias_fwd_bw, bias_bwd_bw;
} PresetOp;

typedef struct PresetTables {
    int ncoll, ngemm, nops;
    const PresetColl *coll;
    const PresetGemm *gemm;
    const PresetOp *ops;
    /* the share of a gradient all-reduce that a backward as long as it hides when run beside it
     * (the target's schedule measured); has_overlap false: 1, all of it */
    bool has_overlap;
    double grad_overlap;
    /* the compute time a gradient all-reduce running beside it adds, per second of the
     * all-reduce (the same measurement; 0 when not given) */
    double grad_overlap_slowdown;
    /* the optimizer step's rate over the bytes the cost model counts for it ((3 + 2·copies) × 4
     * per parameter), by PresetOpt; 0 when not measured: memory_bandwidth */
    double opt_bw[4];
    /* the node's last-level cache in bytes (0 when not given: operands never priced in cache) */
    double cache_bytes;
} PresetTables;
/* The optimizer kernels a preset may rate (its `optimizer` object's keys). */
typedef enum {
    PRESET_OPT_SGD,
    PRESET_OPT_SGD_MOMENTUM,
    PRESET_OPT_ADAM,
    PRESET_OPT_ADAMW
} PresetOpt;

typedef struct ClusterCfg {
    const char *preset;
    int64_t devices, devices_per_node;
    double flops;              /* sustained per-device FLOP/s (f32) */
    double memory;             /* bytes per device */
    double bandwidth, latency; /* intra-node link: β (bytes/s per device) and α (s) */
    double inter_node_bandwidth, inter_node_latency;
    double memory_bandwidth;    /* device memory bytes/s: the roofline's bytes term */
    const PresetTables *tables; /* measured tables; NULL when the preset has none */
    double flops_bf16;          /* GEMM FLOP/s at bf16 (0: unknown, the f32 rate is used) */
} ClusterCfg;

typedef struct Plan Plan;         /* passes/: the chosen parallel plan (see passes/passes.h) */
typedef struct Schedule Schedule; /* passes/: the per-rank SPMD schedule */

typedef struct IrGraph {
    Arena *arena;
    const char *name; /* the model's name */
    const char *file; /* the .mp file */
    Vec values;       /* IrValue */
    Vec nodes;        /* IrNode, in topological (source) order */
    Vec params;       /* IrParam, grouped by node */
    int loss_node;    /* index of the single OPF_LOSS node, -1 before shapes */
    TrainCfg train;
    ClusterCfg cluster;
    Plan *plan;
    Schedule *sched;
} IrGraph;

#define IR_NODE(g, i) (&VEC_AT((g)->nodes, IrNode, (i)))
#define IR_VALUE(g, i) (&VEC_AT((g)->values, IrValue, (i)))
#define IR_PARAM(g, i) (&VEC_AT((g)->params, IrParam, (i)))
#define IR_NNODES(g) ((int)(g)->nodes.len)
#define IR_NVALUES(g) ((int)(g)->values.len)
#define IR_NPARAMS(g) ((int)(g)->params.len)

/* Building (ir/graph.c). */
IrGraph *ir_graph_new(Arena *a, const char *name, const char *file);
int ir_add_value(IrGraph *g, const char *name, ValueKind k, DType t, SrcLoc loc);
int ir_add_node(IrGraph *g, OpKind op, const char *name,
                SrcLoc loc); /* also makes its output value */
int ir_add_param(IrGraph *g, int node, ParamRole role, Shape shape);
int ir_find_value(const IrGraph *g, const char *name); /* -1 if absent */
void ir_finalize(IrGraph *g);                          /* computes nusers */

/* Printing (ir/dump.c): one line per node with name, op, input/output shapes, parameters,
 * FLOPs and source location, then totals. Deterministic. */
void ir_dump(const IrGraph *g, FILE *out);

/* The verifier (ir/verify.c): structural invariants (indices in range, topological order,
 * parameter ranges) always, and what `phase` says must already hold on top of them. A
 * failure is an internal compiler error naming `after`, the step that ran last. The caller
 * (passes/pipeline.c) says which phase a pass leaves the graph in, so the IR needs to know
 * nothing about the passes. */
typedef enum {
    IR_PHASE_BUILT,   /* as the frontend built it: structure only */
    IR_PHASE_SHAPED,  /* + every shape inferred, one loss node, an f32 scalar loss */
    IR_PHASE_PLANNED, /* + g->plan set */
    IR_PHASE_LOWERED, /* + g->sched set */
} IrPhase;
bool ir_verify(const IrGraph *g, IrPhase phase, const char *after, Diag *d);

#endif /* MPCC_IR_H */
