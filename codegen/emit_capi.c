/*
 * emit_capi.c: the C API of a generated trainer — NAME.h and the functions behind it.
 *
 * `mpcc model.mp --emit=c --emit-header NAME.h -o NAME.c` writes the trainer as usual
 * (emit.c) and then appends, after its main(), a small library interface for programs that
 * drive training themselves (DESIGN.md §1 flow 3, docs/embedding.md):
 *
 *   NAME_config_default / NAME_create / NAME_configure   seed, threads, optimizer overrides
 *   NAME_step                                             one step on caller-owned buffers
 *   NAME_save / NAME_load                                 the trainer's safetensors checkpoints
 *   NAME_data_info / NAME_plan / NAME_steps_done          shapes of the step's buffers, the plan
 *   NAME_last_error / NAME_destroy / NAME_main            message getter, teardown, the CLI
 *
 * The functions reuse the trainer's own pieces rather than copies: create is mprt_init plus
 * the trainer's setup_rank (buffers, initial weights, timers), destroy its free_all plus
 * mprt_finalize, a step its train_step, and save/load the runtime's one checkpoint writer and
 * reader (mprt_ckpt_save/load over the trainer's MODEL table, runtime/trainer.c) with errors
 * returned instead of exiting. What does not depend on the model is the runtime's
 * (runtime/trainer_api.c, compiled and unit-tested): the context registry, the messages, the
 * agreement of a call's outcome, the checks of a step's buffers (NULL, size, NaN/Inf, ranges)
 * and NAME_main's refusal while a context is live.
 *
 * Handles: NAME_ctx is never defined. A caller holds an opaque id the runtime's registry
 * hands out and checks on every call, so a NULL, destroyed or forged handle is an error code
 * (NAME_ERR_ARG, NAME_ERR_HANDLE) found without reading memory; a live context's state (step,
 * config, message buffer) is this file's struct api_state, freed by destroy.
 *
 * The same declarations go into NAME.h and, under the same include guard, into the C file
 * itself, so the C file compiles alone and including the header beside it is harmless.
 * Building with -DMPCC_NO_MAIN leaves main() out (emit.c guards it) for a library.
 *
 * The rules the generated functions keep. They never exit the process for bad input: every
 * call returns NAME_OK or an error code and keeps a one-line message (NAME_last_error). The
 * trainer is one SPMD program, so every call that can fail on some ranks first agrees on the
 * outcome: one MPI_Allreduce (MIN over the failing ranks) before any collective work, and the
 * lowest failing rank's code and message are broadcast, so all ranks return the same code and
 * no rank is left waiting in a collective the others skipped (a handle check joins that
 * agreement, so a destroyed handle on one rank fails the call on all). create and configure
 * also agree that every rank passed the same seed and optimizer settings (mprt_agree_settings,
 * the trainer's start-up agreement). A failed call changes nothing:
 * a bad config keeps the old settings, a bad buffer runs no step, and a checkpoint is read into
 * copies of the parameter and optimizer arenas that replace them only when every rank read
 * its tensors. Failures that are not the caller's (a broken MPI, running out of memory in the
 * step) stay fatal as in the trainer (mprt_fatal aborts the job rather than hanging it).
 *
 * Step data: each rank passes the whole step batch (NAME_BATCH samples of every input and
 * label, row-major, shape[0] = the batch), the same on every rank; the plan picks which rows
 * each rank uses (replica j, micro-batch i: rows j·BATCH/d + i·MB … + MB), exactly the rows
 * the stand-alone trainer would read from --data/--labels for that step, so a run through the
 * API and a run of the trainer on the same data give the same losses.
 *
 * The runtime holds one mesh per process, so one context is live at a time (destroy frees
 * the plan's buffers and communicators, and a later create makes them again); the caller owns
 * MPI (MPI_Init before NAME_create, MPI_Finalize after NAME_destroy). Every identifier comes
 * from the prefix (checked to be a C identifier by the driver) or from mangled .mp names.
 */
#include "codegen.h"

#include <ctype.h>
#include <string.h>

/* Writes tpl with "@P@" replaced by the prefix and "@U@" by the prefix in upper case. */
static void put_tpl(FILE *f, const char *tpl, const char *p, const char *up) {
    for (const char *s = tpl; *s;) {
        if (strncmp(s, "@P@", 3) == 0) {
            fputs(p, f);
            s += 3;
        } else if (strncmp(s, "@U@", 3) == 0) {
            fputs(up, f);
            s += 3;
        } else {
            fputc(*s++, f);
        }
    }
}

bool cg_api_prefix_ok(const char *p) {
    /* train_step and trainer_start/stop are the trainer's own functions (emit.c) */
    if (!p || strcmp(p, "train") == 0 || strcmp(p, "trainer") == 0) return false;
    if (!(isalpha((unsigned char)*p) || *p == '_')) return false;
    for (const char *s = p; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_')) return false;
    return strlen(p) <= 64;
}

/* Header names NAME.h must not take: those the trainer and the runtime include (a NAME.h
 * beside them is found first when the user's build adds its folder with -I) and the C and
 * POSIX headers a program around the API is likely to include. */
static const char *const shadowed_headers[] = {
    "mpi",
    "mpio",
    "mprt",
    "mprt_kernels",
    "mprt_trainer",
    "mprt_cuda",
    "nccl",
    "cuda",
    "cuda_runtime",
    "cublas",
    "cublas_v2",
    "cblas",
    "openblas_config",
    "cjson",
    "omp",
    "assert",
    "complex",
    "ctype",
    "errno",
    "fenv",
    "float",
    "inttypes",
    "iso646",
    "limits",
    "locale",
    "math",
    "setjmp",
    "signal",
    "stdalign",
    "stdarg",
    "stdatomic",
    "stdbool",
    "stddef",
    "stdint",
    "stdio",
    "stdlib",
    "stdnoreturn",
    "string",
    "strings",
    "tgmath",
    "threads",
    "time",
    "uchar",
    "wchar",
    "wctype",
    "unistd",
    "fcntl",
    "pthread",
    "sched",
    "spawn",
    "dirent",
};
/* Prefixes of the names MPI (MPI_, PMPI_) and the runtime (mprt, MPRT_) own. */
static const char *const reserved_prefixes[] = {"mpi_", "pmpi_", "mprt", "ompi_", "nccl"};

static bool same_ci(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]) || !a[i]) return false;
    return true;
}

const char *cg_api_prefix_clash(const char *p) {
    size_t n = strlen(p);
    /* Case is ignored: MPI.h is mpi.h on a case-insensitive file system, and the API's
     * upper-case constants (NAME_OK, …) would be MPI's. */
    for (size_t i = 0; i < sizeof shadowed_headers / sizeof *shadowed_headers; i++)
        if (strlen(shadowed_headers[i]) == n && same_ci(p, shadowed_headers[i], n))
            return "it would shadow a system or runtime header of that name";
    for (size_t i = 0; i < sizeof reserved_prefixes / sizeof *reserved_prefixes; i++) {
        size_t k = strlen(reserved_prefixes[i]);
        if (n >= k && same_ci(p, reserved_prefixes[i], k))
            return "the API's names would begin with a prefix that MPI or the runtime reserves";
    }
    return NULL;
}

typedef struct Api {
    const IrGraph *g;
    const char *p, *up;
    int ndata;
    int *data; /* [ndata] value ids of the inputs and labels, in value order */
} Api;

static const char api_head_doc[] =
    " *\n"
    " * Every function taking a context is collective over MPI_COMM_WORLD: all ranks call it, in\n"
    " * the same order, with the same arguments (@P@_data_info, @P@_plan, @P@_steps_done and\n"
    " * @P@_last_error excepted). Each returns @U@_OK (0) or an error code, keeps a one-line\n"
    " * message for @P@_last_error, never exits the process, and on error changes nothing.\n"
    " * The caller owns MPI: MPI_Init before @P@_create, MPI_Finalize after @P@_destroy. One\n"
    " * context is live per process. docs/embedding.md is the manual.\n"
    " */\n";

static const char api_decls[] =
    "#include <stddef.h>\n#include <stdint.h>\n\n"
    "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
    "enum {\n"
    "    @U@_OK = 0,\n"
    "    @U@_ERR_ARG = 1,   /* a NULL pointer, an index out of range, a bad config value */\n"
    "    @U@_ERR_SIZE = 2,  /* a step buffer whose element count is not the plan's */\n"
    "    @U@_ERR_VALUE = 3, /* a non-finite input, a label or token id outside its range */\n"
    "    @U@_ERR_IO = 4,    /* a checkpoint that cannot be written, read, or does not fit the "
    "model */\n"
    "    @U@_ERR_MPI = 5,   /* MPI not initialised or finalised, or a world size that is not the "
    "plan's */\n"
    "    @U@_ERR_BUSY = 6,  /* another context is live in this process */\n"
    "    @U@_ERR_HANDLE = 7 /* a destroyed context, or a ctx no @P@_create made */\n"
    "};\n\n"
    "/* A context: an opaque handle (an id, not an address, so a destroyed one is recognised). */\n"
    "typedef struct @P@_ctx @P@_ctx;\n\n"
    "/* Settings; @P@_config_default fills in the .mp file's values. */\n"
    "typedef struct @P@_config {\n"
    "    uint64_t seed; /* initial weights and dropout masks */\n"
    "    int threads;   /* kernel/BLAS threads per rank; 0: cores / ranks on the node */\n"
    "    float lr, momentum, beta1, beta2, eps, weight_decay; /* the optimizer's settings */\n"
    "} @P@_config;\n\n"
    "/* One step buffer: the whole step batch of one input or label, row-major. */\n"
    "typedef struct @P@_tensor_info {\n"
    "    const char *name; /* as in the .mp file */\n"
    "    int is_label;     /* 0: an input, 1: a label */\n"
    "    int is_int;       /* 0: float, 1: int32_t */\n"
    "    int ndim;\n"
    "    int64_t shape[8]; /* shape[0] == @U@_BATCH */\n"
    "    size_t count;     /* elements: the product of shape */\n"
    "    int64_t range;    /* ints: values must lie in [0, range); 0: any */\n"
    "} @P@_tensor_info;\n\n"
    "int @P@_config_default(@P@_config *cfg);\n"
    "/* Sets up the mesh and fresh weights from cfg (NULL: the defaults). On error *out is NULL\n"
    " * and @P@_last_error(NULL) has the message. */\n"
    "int @P@_create(const @P@_config *cfg, @P@_ctx **out);\n"
    "/* Changes seed, threads and optimizer settings from the next step on. */\n"
    "int @P@_configure(@P@_ctx *ctx, const @P@_config *cfg);\n";

static const char api_decls_tail[] =
    "/* Writes a checkpoint (whole tensors, optimizer state, step): the trainer's --save format. "
    "*/\n"
    "int @P@_save(@P@_ctx *ctx, const char *path);\n"
    "/* Reads a checkpoint: weights only (resume 0, like --init), or weights, optimizer state and\n"
    " * step (resume 1, like --resume). Any plan's checkpoint of the same model fits. */\n"
    "int @P@_load(@P@_ctx *ctx, const char *path, int resume);\n"
    "/* Buffer i of @P@_step (0 <= i < @U@_NUM_DATA). Local, not collective. */\n"
    "int @P@_data_info(@P@_ctx *ctx, int i, @P@_tensor_info *out);\n"
    "/* The plan in a few lines (mesh, micro-batches, each layer's stage and strategy); NULL for\n"
    " * a destroyed or unknown ctx (ctx may be NULL). */\n"
    "const char *@P@_plan(const @P@_ctx *ctx);\n"
    "/* Steps taken (the optimizer's step count, restored by a resuming load); -1 for a NULL,\n"
    " * destroyed or unknown ctx. */\n"
    "int64_t @P@_steps_done(const @P@_ctx *ctx);\n"
    "/* The message of ctx's last failed call (\"\" if none); for NULL, a destroyed or an unknown\n"
    " * ctx: of the last failed call that had no live context (a failed create, a bad handle). */\n"
    "const char *@P@_last_error(const @P@_ctx *ctx);\n"
    "/* Frees the context and the runtime's communicators (MPI stays initialised); NULL: nothing.\n"
    " * A destroyed ctx is dead for good: a second destroy or any call on it is @U@_ERR_HANDLE. "
    "*/\n"
    "int @P@_destroy(@P@_ctx *ctx);\n"
    "/* The stand-alone trainer's command line (--steps, --data, --save, …), as its main();\n"
    " * @U@_ERR_BUSY while a context is live, @U@_ERR_MPI after MPI_Finalize. */\n"
    "int @P@_main(int argc, char **argv);\n\n"
    "#ifdef __cplusplus\n}\n#endif\n";

/* The declarations (header body): constants, types, prototypes. */
static void emit_decls(const Api *x, FILE *f) {
    const Schedule *s = x->g->sched;
    fprintf(f, "#define %s_WORLD_SIZE %d /* ranks: mpirun -np %d */\n", x->up, s->S * s->d * s->t,
            s->S * s->d * s->t);
    fprintf(f, "#define %s_BATCH %lld      /* samples per step */\n", x->up, (long long)s->batch);
    fprintf(f, "#define %s_NUM_DATA %d     /* buffers of %s_step */\n", x->up, x->ndata, x->p);
    put_tpl(f, api_decls, x->p, x->up);
    fprintf(f,
            "/* One training step on the whole step batch, the same on every rank (see the top of\n"
            " * this file); *loss is the step's loss (the same on every rank). Counts are "
            "elements. */\n"
            "int %s_step(%s_ctx *ctx",
            x->p, x->p);
    for (int i = 0; i < x->ndata; i++) {
        const IrValue *v = IR_VALUE(x->g, x->data[i]);
        const char *nm = cg_mangle(x->g->arena, "data", x->data[i], v->name);
        fprintf(f, ", const %s *%s, size_t %s_count", v->dtype == DT_F32 ? "float" : "int32_t", nm,
                nm);
    }
    fprintf(f, ", double *loss);\n");
    put_tpl(f, api_decls_tail, x->p, x->up);
}

static void emit_header_file(const Api *x, FILE *h) {
    const Schedule *s = x->g->sched;
    fprintf(
        h,
        "/*\n * %s.h: the C API of a trainer generated by mpcc %s. Do not edit: change the model\n"
        " * and regenerate.\n *\n * model ",
        x->p, MPCC_VERSION);
    for (const char *c = x->g->name; *c; c++)
        fputc(isalnum((unsigned char)*c) || *c == '_' ? *c : '?', h);
    char b[4][48]; /* the report's words; x, not ×: generated comments are ASCII */
    fprintf(h, ": S=%s x d=%s x t=%s = %s, batch %lld\n", units_n(b[0], 48, s->S, "stage"),
            units_n(b[1], 48, s->d, "replica"), units_n(b[2], 48, s->t, "tensor rank"),
            units_n(b[3], 48, s->S * s->d * s->t, "rank"), (long long)s->batch);
    put_tpl(h, api_head_doc, x->p, x->up);
    fprintf(h, "#ifndef %s_API_H\n#define %s_API_H\n\n", x->up, x->up);
    emit_decls(x, h);
    fprintf(h, "\n#endif /* %s_API_H */\n", x->up);
}

/* ── the implementation ── */

static const char api_impl_common[] =
    "/* A live context's state. Callers hold an opaque handle instead (runtime/trainer_api.c: an\n"
    " * id the runtime's registry checks), so a destroyed context's memory is never read again. "
    "*/\n"
    "struct api_state {\n    int64_t step;\n    @P@_config cfg;\n    MprtErr err;\n};\n"
    "/* Both lists count up from 0: equal ends make them equal. */\n"
    "_Static_assert((int)@U@_ERR_ARG == (int)MPRT_API_ERR_ARG && (int)@U@_ERR_HANDLE == "
    "(int)MPRT_API_ERR_HANDLE,\n"
    "               \"the API's codes are the runtime's\");\n\n"
    "/* The state behind handle h, or an error code with its message (mprt_api_lookup). */\n"
    "static int api_enter(const @P@_ctx *h, const char *call, bool collective, struct api_state "
    "**c) {\n"
    "    void *state = NULL;\n"
    "    int code = mprt_api_lookup(h, \"@P@\", call, collective, &state);\n"
    "    *c = state;\n    return code;\n}\n\n"
    "/* Where a call on h keeps its message (h's buffer when it is this API's live context). */\n"
    "static MprtErr *api_err(const @P@_ctx *h) { return mprt_api_err(h, \"@P@\"); }\n\n"
    "int @P@_config_default(@P@_config *cfg) {\n"
    "    if (!cfg) return mprt_api_fail(mprt_api_error(), @U@_ERR_ARG, \"@P@_config_default: cfg "
    "is NULL\");\n"
    "    *cfg = (@P@_config){DEFAULT_SEED, 0,         hyper.lr,  hyper.momentum,\n"
    "                        hyper.beta1,  hyper.beta2, hyper.eps, hyper.weight_decay};\n"
    "    return @U@_OK;\n}\n\n"
    "static bool api_unit(float v) { return v >= 0.0f && v < 1.0f; }\n\n"
    "static int api_check_config(const @P@_config *c, MprtErr *err) {\n"
    "    if (c->threads < 0 || c->threads > 4096)\n"
    "        return mprt_api_fail(err, @U@_ERR_ARG, \"config: threads must be in 0..4096, got "
    "%d\", "
    "c->threads);\n"
    "    if (!(c->lr > 0.0f) || !isfinite(c->lr))\n"
    "        return mprt_api_fail(err, @U@_ERR_ARG, \"config: lr must be a positive finite number, "
    "got %g\", (double)c->lr);\n"
    "    if (!api_unit(c->momentum) || !api_unit(c->beta1) || !api_unit(c->beta2))\n"
    "        return mprt_api_fail(err, @U@_ERR_ARG, \"config: momentum, beta1 and beta2 must be in "
    "[0, 1), got %g, %g, %g\",\n"
    "                             (double)c->momentum, (double)c->beta1, (double)c->beta2);\n"
    "    if (!(c->eps > 0.0f) || !isfinite(c->eps))\n"
    "        return mprt_api_fail(err, @U@_ERR_ARG, \"config: eps must be a positive finite "
    "number, "
    "got %g\", (double)c->eps);\n"
    "    if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))\n"
    "        return mprt_api_fail(err, @U@_ERR_ARG, \"config: weight_decay must be finite and >= "
    "0, "
    "got %g\",\n"
    "                             (double)c->weight_decay);\n"
    "    return @U@_OK;\n}\n\n";

static const char api_impl_config[] =
    "/* Every rank's config alike but for threads, and the same plan (mprt_agree_settings, the\n"
    " * trainer's start-up agreement): one collective; ERR_ARG on every rank otherwise. */\n"
    "static int api_same_config(const char *call, const @P@_config *c, MprtErr *err) {\n"
    "    const MprtSetting set[7] = {\n"
    "        {\"config.seed\", &c->seed, sizeof c->seed},\n"
    "        {\"config.lr\", &c->lr, sizeof c->lr},\n"
    "        {\"config.momentum\", &c->momentum, sizeof c->momentum},\n"
    "        {\"config.beta1\", &c->beta1, sizeof c->beta1},\n"
    "        {\"config.beta2\", &c->beta2, sizeof c->beta2},\n"
    "        {\"config.eps\", &c->eps, sizeof c->eps},\n"
    "        {\"config.weight_decay\", &c->weight_decay, sizeof c->weight_decay}};\n"
    "    char msg[sizeof err->msg - 64];\n"
    "    if (mprt_agree_settings(&TRAINER, set, 7, msg, sizeof msg)) return @U@_OK;\n"
    "    return mprt_api_fail(err, @U@_ERR_ARG, \"%s: %s\", call, msg);\n}\n\n"
    "static void api_apply(struct api_state *c, const @P@_config *cfg) {\n"
    "    c->cfg = *cfg;\n    seed = cfg->seed;\n"
    "    hyper.lr = cfg->lr, hyper.momentum = cfg->momentum, hyper.beta1 = cfg->beta1;\n"
    "    hyper.beta2 = cfg->beta2, hyper.eps = cfg->eps, hyper.weight_decay = cfg->weight_decay;\n"
    "    mprt_set_threads(cfg->threads);\n}\n\n"
    "int @P@_configure(@P@_ctx *h, const @P@_config *cfg) {\n"
    "    struct api_state *c;\n"
    "    int code = api_enter(h, \"@P@_configure\", true, &c);\n"
    "    MprtErr *err = api_err(h);\n"
    "    if (!code && !cfg) code = mprt_api_fail(err, @U@_ERR_ARG, \"@P@_configure: cfg is "
    "NULL\");\n"
    "    if (!code) code = api_check_config(cfg, err);\n"
    "    if ((code = mprt_api_agree(code, err)) || (code = api_same_config(\"@P@_configure\", cfg, "
    "err)))\n"
    "        return code;\n"
    "    api_apply(c, cfg);\n    err->msg[0] = 0;\n    return @U@_OK;\n}\n\n";

static const char api_impl_create[] =
    "int @P@_create(const @P@_config *cfg, @P@_ctx **out) {\n"
    "    MprtErr *err = mprt_api_error();\n"
    "    if (!out) return mprt_api_fail(err, @U@_ERR_ARG, \"@P@_create: out is NULL\");\n"
    "    *out = NULL;\n"
    "    /* MPI initialised, not finalised, the plan's world size: the same on every rank */\n"
    "    int code = mprt_api_mpi_check(\"@P@_create\", MESH_S, MESH_D, MESH_T, err);\n"
    "    if (code) return code;\n"
    "    @P@_config def;\n    @P@_config_default(&def);\n    if (!cfg) cfg = &def;\n"
    "    code = mprt_api_can_register(\"@P@_create\", err);\n"
    "    if (!code) code = api_check_config(cfg, err);\n"
    "    struct api_state *c = code ? NULL : calloc(1, sizeof *c);\n"
    "    if (!code && !c) code = mprt_api_fail(err, @U@_ERR_ARG, \"@P@_create: out of "
    "memory\");\n"
    "    if ((code = mprt_api_agree(code, err)) || (code = api_same_config(\"@P@_create\", cfg, "
    "err))) {\n"
    "        free(c);\n        return code;\n    }\n"
    "    mprt_init(NULL, NULL, MESH_S, MESH_D, MESH_T);\n    mesh = mprt_mesh();\n"
    "    api_apply(c, cfg); /* the seed first: setup_rank draws the initial weights from it */\n"
    "    setup_rank();\n"
    "    *out = mprt_api_register(\"@P@\", c, &c->err);\n    return @U@_OK;\n}\n\n"
    "int @P@_destroy(@P@_ctx *h) {\n"
    "    struct api_state *c = NULL;\n"
    "    int code = h ? api_enter(h, \"@P@_destroy\", true, &c) : @U@_OK; /* NULL: nothing, like "
    "free */\n"
    "    code = mprt_api_agree(code, api_err(h));\n"
    "    /* a failed destroy keeps the context, but for one MPI_Finalize outlived (ERR_MPI, no "
    "MPI\n"
    "     * left): its memory is freed all the same, and its message kept for last_error(NULL) */\n"
    "    if (!c || (code && mprt_api_mpi_up())) return code;\n"
    "    if (code) *mprt_api_error() = c->err;\n"
    "    mprt_api_release(h);\n    free_all();\n    mprt_finalize();\n    free(c);\n"
    "    return code;\n}\n\n";

static const char api_impl_io[] =
    "int @P@_save(@P@_ctx *h, const char *path) {\n"
    "    struct api_state *c;\n"
    "    int code = api_enter(h, \"@P@_save\", true, &c);\n"
    "    MprtErr *err = api_err(h);\n"
    "    if (!code && !(path && *path)) code = mprt_api_fail(err, @U@_ERR_ARG, \"@P@_save: no "
    "path\");\n"
    "    if ((code = mprt_api_agree(code, err))) return code;\n"
    "    MprtArenas arena = {*TRAINER.arena[0], opt1, opt2}; /* prm, or bf16's mst (its parts "
    "under ZeRO) */\n"
    "    if (!mprt_ckpt_save(&MODEL, arena, path, c->step, err)) code = @U@_ERR_IO;\n"
    "    if ((code = mprt_api_agree(code, err))) return code;\n"
    "    err->msg[0] = 0;\n    return @U@_OK;\n}\n\n";

static const char api_impl_load[] =
    "/* The checkpoint is read into copies of the arenas, which replace them only when every\n"
    " * rank read all of its tensors. */\n"
    "int @P@_load(@P@_ctx *h, const char *path, int resume) {\n"
    "    struct api_state *c;\n"
    "    int code = api_enter(h, \"@P@_load\", true, &c);\n"
    "    MprtErr *err = api_err(h);\n"
    "    if (!code && !(path && *path)) code = mprt_api_fail(err, @U@_ERR_ARG, \"@P@_load: no "
    "path\");\n"
    "    if ((code = mprt_api_agree(code, err))) return code;\n"
    "    int64_t n[3] = {WEIGHT_FLOATS(mesh->s), STATE_FLOATS(mesh->s), STATE_FLOATS(mesh->s)};\n"
    "    int64_t step = c->step;\n"
    "    MprtArenas live = {*TRAINER.arena[0], opt1, opt2}; /* prm, or bf16's mst; opt2: NULL for "
    "SGD */\n"
    "    MprtArenas copy = {NULL, NULL, NULL};\n"
    "    for (int i = 0; i < 3; i++)\n"
    "        if (live[i]) copy[i] = mprt_falloc(n[i]), memcpy(copy[i], live[i], sizeof(float) * "
    "(size_t)n[i]);\n"
    "    if (!mprt_ckpt_load(&MODEL, copy, path, resume != 0, &step, err)) code = @U@_ERR_IO;\n"
    "    if (!(code = mprt_api_agree(code, err))) {\n"
    "        for (int i = 0; i < (resume ? 3 : 1); i++)\n"
    "            if (live[i]) memcpy(live[i], copy[i], sizeof(float) * (size_t)n[i]);\n"
    "        if (resume) c->step = step;\n        err->msg[0] = 0;\n"
    "        WEIGHTS_REFRESH(); /* a bf16 trainer's working weights (else nothing) */\n    }\n"
    "    for (int i = 0; i < 3; i++) free(copy[i]);\n"
    "    return code;\n}\n\n"
    "const char *@P@_plan(const @P@_ctx *h) {\n"
    "    struct api_state *c;\n"
    "    return !h || !api_enter(h, \"@P@_plan\", false, &c) ? PLAN_SUMMARY : NULL;\n}\n\n"
    "int64_t @P@_steps_done(const @P@_ctx *h) {\n"
    "    struct api_state *c;\n"
    "    return api_enter(h, \"@P@_steps_done\", false, &c) ? -1 : c->step;\n}\n\n"
    "const char *@P@_last_error(const @P@_ctx *h) { return api_err(h)->msg; }\n\n"
    "int @P@_main(int argc, char **argv) { return mprt_api_main(&TRAINER, \"@P@_main\", argc, "
    "argv); }\n";

/* NAME_step: check the handle and every buffer (mprt_api_buffer: NULL, size, NaN/Inf, ranges),
 * agree, point the loaders at the caller's batch, step. */
static void emit_step_fn(const Api *x, FILE *f) {
    fprintf(f, "int %s_step(%s_ctx *h", x->p, x->p);
    for (int i = 0; i < x->ndata; i++) {
        const IrValue *v = IR_VALUE(x->g, x->data[i]);
        const char *nm = cg_mangle(x->g->arena, "data", x->data[i], v->name);
        fprintf(f, ", const %s *%s, size_t %s_count", v->dtype == DT_F32 ? "float" : "int32_t", nm,
                nm);
    }
    fprintf(f,
            ", double *loss) {\n    struct api_state *c;\n"
            "    int code = api_enter(h, \"%s_step\", true, &c);\n"
            "    MprtErr *err = api_err(h);\n"
            "    MprtArray in[%d] = {{0}};\n",
            x->p, x->ndata ? x->ndata : 1);
    for (int i = 0; i < x->ndata; i++) {
        const IrValue *v = IR_VALUE(x->g, x->data[i]);
        fprintf(f,
                "    if (!code)\n        code = mprt_api_buffer(&%s, \"%s_step\", %d, "
                "API_DATA[%d].name, %s, %s_count, &in[%d], err);\n",
                cg_mangle(x->g->arena, "d", x->data[i], v->name), x->p, i, i,
                cg_mangle(x->g->arena, "data", x->data[i], v->name),
                cg_mangle(x->g->arena, "data", x->data[i], v->name), i);
    }
    fprintf(f,
            "    if (!code && !loss) code = mprt_api_fail(err, %s_ERR_ARG, \"%s_step: loss is "
            "NULL\");\n"
            "    if ((code = mprt_api_agree(code, err))) return code;\n",
            x->up, x->p);
    for (int i = 0; i < x->ndata; i++)
        fprintf(f, "    %s_file.array = in[%d];\n",
                cg_mangle(x->g->arena, "d", x->data[i], IR_VALUE(x->g, x->data[i])->name), i);
    fprintf(f, "    /* The loaders read sample (step·BATCH + row) mod BATCH of a BATCH-row array: "
               "row. */\n"
               "    *loss = train_step(c->step);\n    c->step++;\n");
    for (int i = 0; i < x->ndata; i++)
        fprintf(f, "    %s_file.array = (MprtArray){0};\n",
                cg_mangle(x->g->arena, "d", x->data[i], IR_VALUE(x->g, x->data[i])->name));
    fprintf(f, "    err->msg[0] = 0;\n    return %s_OK;\n}\n\n", x->up);
}

/* The table behind NAME_data_info. */
static void emit_data_table(const Api *x, FILE *f) {
    const Schedule *s = x->g->sched;
    fprintf(f, "static const %s_tensor_info API_DATA[%d] = {\n", x->p, x->ndata ? x->ndata : 1);
    for (int i = 0; i < x->ndata; i++) {
        const IrValue *v = IR_VALUE(x->g, x->data[i]);
        int64_t n = ir_shape_numel(&v->shape) / v->shape.d[0] * s->batch;
        fprintf(f, "    {\"");
        for (const char *q = v->name; *q;
             q++) /* the name as a C string: octal escapes but for [A-Za-z0-9_.] */
            if (isalnum((unsigned char)*q) || *q == '_' || *q == '.')
                fputc(*q, f);
            else
                fprintf(f, "\\%03o", (unsigned char)*q);
        fprintf(f, "\", %d, %d, %d, {BATCH", v->kind == VAL_LABEL, v->dtype != DT_F32,
                v->shape.rank);
        for (int k = 1; k < v->shape.rank; k++)
            fprintf(f, ", %lld", (long long)v->shape.d[k]);
        fprintf(f, "}, %lldu, %lld},\n", (long long)n, (long long)cg_int_range(x->g, x->data[i]));
    }
    if (!x->ndata) fprintf(f, "    {\"\", 0, 0, 0, {0}, 0, 0},\n");
    fprintf(f, "};\n\n");
    fprintf(f,
            "/* Local; h may be NULL (the table is the plan's), but not destroyed or unknown. */\n"
            "int %s_data_info(%s_ctx *h, int i, %s_tensor_info *out) {\n"
            "    struct api_state *c;\n"
            "    int code = h ? api_enter(h, \"%s_data_info\", false, &c) : %s_OK;\n"
            "    MprtErr *err = api_err(h);\n"
            "    if (code) return code;\n"
            "    if (!out) return mprt_api_fail(err, %s_ERR_ARG, \"%s_data_info: out is NULL\");\n"
            "    if (i < 0 || i >= %s_NUM_DATA)\n"
            "        return mprt_api_fail(err, %s_ERR_ARG, \"%s_data_info: index %%d outside [0, "
            "%%d)\", i, %s_NUM_DATA);\n"
            "    *out = API_DATA[i];\n    return %s_OK;\n}\n\n",
            x->p, x->p, x->p, x->p, x->up, x->up, x->p, x->up, x->up, x->p, x->up, x->up);
}

static void emit_impl(const Api *x, FILE *f) {
    fprintf(f,
            "\n/* ───────────────────────────── C API (%s.h) ───────────────────────────── */\n"
            "/* codegen/emit_capi.c and docs/embedding.md describe these functions. */\n",
            x->p);
    fprintf(f,
            "#include <math.h>\n\n"
            "#ifndef %s_API_H\n#define %s_API_H\n",
            x->up, x->up);
    emit_decls(x, f);
    fprintf(f, "#endif /* %s_API_H */\n\n", x->up);
    put_tpl(f, api_impl_common, x->p, x->up);
    put_tpl(f, api_impl_config, x->p, x->up);
    emit_data_table(x, f);
    put_tpl(f, api_impl_create, x->p, x->up);
    emit_step_fn(x, f);
    put_tpl(f, api_impl_io, x->p, x->up);
    put_tpl(f, api_impl_load, x->p, x->up);
}

bool cg_emit_capi(const IrGraph *g, const char *prefix, FILE *c_out, FILE *h_out, Diag *d) {
    static const SrcLoc noloc = {NULL, 0, 0, 0};
    if (!g->sched || !cg_api_prefix_ok(prefix) || cg_api_prefix_clash(prefix)) {
        diag_error(d, noloc, "internal compiler error: codegen: no schedule or a bad API prefix");
        return false;
    }
    Api x = {.g = g, .p = prefix};
    char *up = arena_printf(g->arena, "%s", prefix);
    for (char *c = up; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    x.up = up;
    x.data = arena_calloc(g->arena, (size_t)IR_NVALUES(g) + 1, sizeof(int));
    for (int v = 0; v < IR_NVALUES(g); v++)
        if (IR_VALUE(g, v)->kind != VAL_ACT) x.data[x.ndata++] = v;
    emit_impl(&x, c_out);
    emit_header_file(&x, h_out);
    if (ferror(c_out) || ferror(h_out)) {
        diag_error(d, noloc, "cannot write the generated C API");
        return false;
    }
    return true;
}
