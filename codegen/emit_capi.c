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
 * returned instead of exiting.
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
 * no rank is left waiting in a collective the others skipped. A failed call changes nothing:
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
    "    @U@_ERR_VALUE = 3, /* a label or token id outside its range */\n"
    "    @U@_ERR_IO = 4,    /* a checkpoint that cannot be written, read, or does not fit the "
    "model */\n"
    "    @U@_ERR_MPI = 5,   /* MPI not initialised, or a world size that is not the plan's */\n"
    "    @U@_ERR_BUSY = 6   /* another context is live in this process */\n"
    "};\n\n"
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
    "void @P@_config_default(@P@_config *cfg);\n"
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
    "/* The plan in a few lines (mesh, micro-batches, each layer's stage and strategy). */\n"
    "const char *@P@_plan(const @P@_ctx *ctx);\n"
    "/* Steps taken (the optimizer's step count, restored by a resuming load). */\n"
    "int64_t @P@_steps_done(const @P@_ctx *ctx);\n"
    "/* The message of ctx's last failed call (\"\" if none); NULL: of the last failed create. */\n"
    "const char *@P@_last_error(const @P@_ctx *ctx);\n"
    "/* Frees the context and the runtime's communicators (MPI stays initialised). */\n"
    "void @P@_destroy(@P@_ctx *ctx);\n"
    "/* The stand-alone trainer's command line (--steps, --data, --save, …), as its main(). */\n"
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
    "struct @P@_ctx {\n    int64_t step;\n    @P@_config cfg;\n    char err[512];\n};\n\n"
    "static @P@_ctx *api_live;        /* the context that holds the runtime */\n"
    "static char api_create_err[512]; /* the last failed create's message */\n\n"
    "static int api_fail(char *err, int code, const char *fmt, ...) __attribute__((format(printf, "
    "3, 4)));\n"
    "static int api_fail(char *err, int code, const char *fmt, ...) {\n"
    "    va_list ap;\n    va_start(ap, fmt);\n    vsnprintf(err, 512, fmt, ap);\n    va_end(ap);\n "
    "   return code;\n}\n\n"
    "/* Every rank's outcome agreed: 0 if no rank failed, else the lowest failing rank's code,\n"
    " * whose message lands in err on every rank. Collective over MPI_COMM_WORLD. */\n"
    "static int api_agree(int code, char *err) {\n"
    "    int rank = 0, first = INT_MAX;\n    MPI_Comm_rank(MPI_COMM_WORLD, &rank);\n"
    "    int mine = code ? rank : INT_MAX;\n"
    "    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);\n"
    "    if (first == INT_MAX) return 0;\n"
    "    MPI_Bcast(&code, 1, MPI_INT, first, MPI_COMM_WORLD);\n"
    "    MPI_Bcast(err, 512, MPI_CHAR, first, MPI_COMM_WORLD);\n"
    "    return code;\n}\n\n"
    "void @P@_config_default(@P@_config *cfg) {\n"
    "    if (!cfg) return;\n"
    "    *cfg = (@P@_config){DEFAULT_SEED, 0,         hyper.lr,  hyper.momentum,\n"
    "                        hyper.beta1,  hyper.beta2, hyper.eps, hyper.weight_decay};\n}\n\n"
    "static bool api_unit(float v) { return v >= 0.0f && v < 1.0f; }\n\n"
    "static int api_check_config(const @P@_config *c, char *err) {\n"
    "    if (c->threads < 0 || c->threads > 4096)\n"
    "        return api_fail(err, @U@_ERR_ARG, \"config: threads must be in 0..4096, got %d\", "
    "c->threads);\n"
    "    if (!(c->lr > 0.0f) || !isfinite(c->lr))\n"
    "        return api_fail(err, @U@_ERR_ARG, \"config: lr must be a positive finite number, got "
    "%g\", (double)c->lr);\n"
    "    if (!api_unit(c->momentum) || !api_unit(c->beta1) || !api_unit(c->beta2))\n"
    "        return api_fail(err, @U@_ERR_ARG, \"config: momentum, beta1 and beta2 must be in [0, "
    "1), got %g, %g, %g\",\n"
    "                        (double)c->momentum, (double)c->beta1, (double)c->beta2);\n"
    "    if (!(c->eps > 0.0f) || !isfinite(c->eps))\n"
    "        return api_fail(err, @U@_ERR_ARG, \"config: eps must be a positive finite number, got "
    "%g\", (double)c->eps);\n"
    "    if (!(c->weight_decay >= 0.0f) || !isfinite(c->weight_decay))\n"
    "        return api_fail(err, @U@_ERR_ARG, \"config: weight_decay must be finite and >= 0, got "
    "%g\",\n"
    "                        (double)c->weight_decay);\n"
    "    return @U@_OK;\n}\n\n"
    "static void api_apply(@P@_ctx *c, const @P@_config *cfg) {\n"
    "    c->cfg = *cfg;\n    seed = cfg->seed;\n"
    "    hyper.lr = cfg->lr, hyper.momentum = cfg->momentum, hyper.beta1 = cfg->beta1;\n"
    "    hyper.beta2 = cfg->beta2, hyper.eps = cfg->eps, hyper.weight_decay = cfg->weight_decay;\n"
    "    mprt_set_threads(cfg->threads);\n}\n\n"
    "int @P@_configure(@P@_ctx *c, const @P@_config *cfg) {\n"
    "    if (!c) return api_fail(api_create_err, @U@_ERR_ARG, \"@P@_configure: ctx is NULL\");\n"
    "    int code = cfg ? api_check_config(cfg, c->err) : api_fail(c->err, @U@_ERR_ARG, "
    "\"@P@_configure: cfg is NULL\");\n"
    "    if ((code = api_agree(code, c->err))) return code;\n"
    "    api_apply(c, cfg);\n    c->err[0] = 0;\n    return @U@_OK;\n}\n\n";

static const char api_impl_create[] =
    "int @P@_create(const @P@_config *cfg, @P@_ctx **out) {\n"
    "    if (!out) return api_fail(api_create_err, @U@_ERR_ARG, \"@P@_create: out is NULL\");\n"
    "    *out = NULL;\n"
    "    int up = 0, size = 0;\n    MPI_Initialized(&up);\n"
    "    if (!up) return api_fail(api_create_err, @U@_ERR_MPI, \"MPI is not initialised: call "
    "MPI_Init before @P@_create\");\n"
    "    MPI_Comm_size(MPI_COMM_WORLD, &size);\n"
    "    if (size != MESH_S * MESH_D * MESH_T)\n"
    "        return api_fail(api_create_err, @U@_ERR_MPI, \"this plan needs %d ranks (S=%d x d=%d "
    "x t=%d), MPI_COMM_WORLD has %d\",\n"
    "                        MESH_S * MESH_D * MESH_T, MESH_S, MESH_D, MESH_T, size);\n"
    "    @P@_config def;\n    @P@_config_default(&def);\n    if (!cfg) cfg = &def;\n"
    "    int code = api_live ? api_fail(api_create_err, @U@_ERR_BUSY, \"another context is live in "
    "this process; destroy it first\")\n"
    "                        : api_check_config(cfg, api_create_err);\n"
    "    @P@_ctx *c = code ? NULL : calloc(1, sizeof *c);\n"
    "    if (!code && !c) code = api_fail(api_create_err, @U@_ERR_ARG, \"out of memory\");\n"
    "    if ((code = api_agree(code, api_create_err))) {\n        free(c);\n        return code;\n "
    "   }\n"
    "    mprt_init(NULL, NULL, MESH_S, MESH_D, MESH_T);\n    mesh = mprt_mesh();\n"
    "    api_apply(c, cfg); /* the seed first: setup_rank draws the initial weights from it */\n"
    "    setup_rank();\n"
    "    api_live = c;\n    *out = c;\n    return @U@_OK;\n}\n\n"
    "void @P@_destroy(@P@_ctx *c) {\n"
    "    if (!c) return;\n"
    "    if (c == api_live) {\n        free_all();\n        mprt_finalize();\n        api_live = "
    "NULL;\n    }\n"
    "    free(c);\n}\n\n";

static const char api_impl_io[] =
    "int @P@_save(@P@_ctx *c, const char *path) {\n"
    "    if (!c) return api_fail(api_create_err, @U@_ERR_ARG, \"@P@_save: ctx is NULL\");\n"
    "    int code = path && *path ? 0 : api_fail(c->err, @U@_ERR_ARG, \"@P@_save: no path\");\n"
    "    if ((code = api_agree(code, c->err))) return code;\n"
    "    MprtArenas arena = {prm, opt1, opt2};\n    MprtErr err = {{0}};\n"
    "    if (!mprt_ckpt_save(&MODEL, arena, path, c->step, &err)) code = api_fail(c->err, "
    "@U@_ERR_IO, \"%s\", err.msg);\n"
    "    if ((code = api_agree(code, c->err))) return code;\n"
    "    c->err[0] = 0;\n    return @U@_OK;\n}\n\n";

static const char api_impl_load[] =
    "/* The checkpoint is read into copies of the arenas, which replace them only when every\n"
    " * rank read all of its tensors. */\n"
    "int @P@_load(@P@_ctx *c, const char *path, int resume) {\n"
    "    if (!c) return api_fail(api_create_err, @U@_ERR_ARG, \"@P@_load: ctx is NULL\");\n"
    "    int code = path && *path ? 0 : api_fail(c->err, @U@_ERR_ARG, \"@P@_load: no path\");\n"
    "    if ((code = api_agree(code, c->err))) return code;\n"
    "    int64_t np = STAGE_PARAMS[mesh->s] + 1, step = c->step;\n"
    "    MprtArenas live = {prm, opt1, opt2}, copy;\n"
    "    for (int i = 0; i < 3; i++) copy[i] = mprt_falloc(np), memcpy(copy[i], live[i], "
    "sizeof(float) "
    "* (size_t)np);\n"
    "    MprtErr err = {{0}};\n"
    "    if (!mprt_ckpt_load(&MODEL, copy, path, resume != 0, &step, &err))\n"
    "        code = api_fail(c->err, @U@_ERR_IO, \"%s\", err.msg);\n"
    "    if (!(code = api_agree(code, c->err))) {\n"
    "        for (int i = 0; i < (resume ? 3 : 1); i++) memcpy(live[i], copy[i], sizeof(float) * "
    "(size_t)np);\n"
    "        if (resume) c->step = step;\n        c->err[0] = 0;\n    }\n"
    "    for (int i = 0; i < 3; i++) free(copy[i]);\n"
    "    return code;\n}\n\n"
    "const char *@P@_plan(const @P@_ctx *c) {\n    (void)c;\n    return PLAN_SUMMARY;\n}\n\n"
    "int64_t @P@_steps_done(const @P@_ctx *c) { return c ? c->step : 0; }\n\n"
    "const char *@P@_last_error(const @P@_ctx *c) { return c ? c->err : api_create_err; }\n\n"
    "int @P@_main(int argc, char **argv) { return mprt_trainer_main(&TRAINER, argc, argv); }\n";

/* NAME_step: check every buffer, agree, point the loaders at the caller's batch, step. */
static void emit_step_fn(const Api *x, FILE *f) {
    const Schedule *s = x->g->sched;
    fprintf(f, "int %s_step(%s_ctx *c", x->p, x->p);
    for (int i = 0; i < x->ndata; i++) {
        const IrValue *v = IR_VALUE(x->g, x->data[i]);
        const char *nm = cg_mangle(x->g->arena, "data", x->data[i], v->name);
        fprintf(f, ", const %s *%s, size_t %s_count", v->dtype == DT_F32 ? "float" : "int32_t", nm,
                nm);
    }
    fprintf(f,
            ", double *loss) {\n    if (!c) return api_fail(api_create_err, %s_ERR_ARG, \"%s_step: "
            "ctx is NULL\");\n"
            "    int code = loss ? 0 : api_fail(c->err, %s_ERR_ARG, \"%s_step: loss is NULL\");\n",
            x->up, x->p, x->up, x->p);
    for (int i = 0; i < x->ndata; i++) {
        const IrValue *v = IR_VALUE(x->g, x->data[i]);
        const char *nm = cg_mangle(x->g->arena, "data", x->data[i], v->name);
        const char *arr = cg_mangle(x->g->arena, "d", x->data[i], v->name);
        int64_t n = ir_shape_numel(&v->shape) / v->shape.d[0] * s->batch;
        fprintf(f,
                "    if (!code && !%s) code = api_fail(c->err, %s_ERR_ARG, \"%s_step: buffer %d "
                "(%%s) is NULL\", API_DATA[%d].info.name);\n",
                nm, x->up, x->p, i, i);
        fprintf(f,
                "    if (!code && %s_count != %lldu)\n        code = api_fail(c->err, %s_ERR_SIZE, "
                "\"%s_step: buffer %d (%%s) "
                "has %%zu elements, the plan needs %lld (%%s)\", API_DATA[%d].info.name, %s_count, "
                "API_DATA[%d].type);\n",
                nm, (long long)n, x->up, x->p, i, (long long)n, i, nm, i);
        if (v->dtype != DT_F32)
            fprintf(f,
                    "    for (size_t q = 0; !code && %s.range > 0 && q < %s_count; q++)\n"
                    "        if (%s[q] < 0 || %s[q] >= %s.range)\n"
                    "            code = api_fail(c->err, %s_ERR_VALUE, \"%s_step: buffer %d (%%s) "
                    "has %%d at index %%zu, outside [0, %%d)\",\n"
                    "                            API_DATA[%d].info.name, (int)%s[q], q, "
                    "(int)%s.range);\n",
                    arr, nm, nm, nm, arr, x->up, x->p, i, i, nm, arr);
    }
    fprintf(f, "    if ((code = api_agree(code, c->err))) return code;\n");
    for (int i = 0; i < x->ndata; i++) {
        const IrValue *v = IR_VALUE(x->g, x->data[i]);
        const char *nm = cg_mangle(x->g->arena, "data", x->data[i], v->name);
        const char *arr = cg_mangle(x->g->arena, "d", x->data[i], v->name);
        fprintf(f, "    %s_file.array = (MprtArray){%s, %d, {BATCH", arr,
                v->dtype == DT_F32 ? "MPRT_F32" : "MPRT_I32", v->shape.rank);
        for (int k = 1; k < v->shape.rank; k++)
            fprintf(f, ", %lld", (long long)v->shape.d[k]);
        fprintf(f, "}, (int64_t)%s_count, (void *)(uintptr_t)%s};\n", nm, nm);
    }
    fprintf(f, "    /* The loaders read sample (step·BATCH + row) mod BATCH of a BATCH-row array: "
               "row. */\n"
               "    *loss = train_step(c->step);\n    c->step++;\n");
    for (int i = 0; i < x->ndata; i++)
        fprintf(f, "    %s_file.array = (MprtArray){0};\n",
                cg_mangle(x->g->arena, "d", x->data[i], IR_VALUE(x->g, x->data[i])->name));
    fprintf(f, "    c->err[0] = 0;\n    return %s_OK;\n}\n\n", x->up);
}

/* The table behind NAME_data_info. */
static void emit_data_table(const Api *x, FILE *f) {
    const Schedule *s = x->g->sched;
    fprintf(f,
            "static const struct {\n    %s_tensor_info info;\n    const char *type;\n} "
            "API_DATA[%d] = {\n",
            x->p, x->ndata ? x->ndata : 1);
    for (int i = 0; i < x->ndata; i++) {
        const IrValue *v = IR_VALUE(x->g, x->data[i]);
        int64_t n = ir_shape_numel(&v->shape) / v->shape.d[0] * s->batch;
        fprintf(f, "    {{\"");
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
        fprintf(f, "}, %lldu, %lld}, \"%s[%lld", (long long)n,
                (long long)cg_int_range(x->g, x->data[i]), v->dtype == DT_F32 ? "f32" : "i32",
                (long long)s->batch);
        for (int k = 1; k < v->shape.rank; k++)
            fprintf(f, ", %lld", (long long)v->shape.d[k]);
        fprintf(f, "]\"},\n");
    }
    if (!x->ndata) fprintf(f, "    {{\"\", 0, 0, 0, {0}, 0, 0}, \"\"},\n");
    fprintf(f, "};\n#define API_DATA_INFO(i) (API_DATA[i].info)\n\n");
    fprintf(f,
            "int %s_data_info(%s_ctx *c, int i, %s_tensor_info *out) {\n"
            "    char *err = c ? c->err : api_create_err;\n"
            "    if (!out) return api_fail(err, %s_ERR_ARG, \"%s_data_info: out is NULL\");\n"
            "    if (i < 0 || i >= %s_NUM_DATA)\n"
            "        return api_fail(err, %s_ERR_ARG, \"%s_data_info: index %%d outside [0, "
            "%%d)\", i, %s_NUM_DATA);\n"
            "    *out = API_DATA_INFO(i);\n    return %s_OK;\n}\n\n",
            x->p, x->p, x->p, x->up, x->p, x->up, x->up, x->p, x->up, x->up);
}

static void emit_impl(const Api *x, FILE *f) {
    fprintf(f,
            "\n/* ───────────────────────────── C API (%s.h) ───────────────────────────── */\n"
            "/* codegen/emit_capi.c and docs/embedding.md describe these functions. */\n",
            x->p);
    fprintf(f,
            "#include <limits.h>\n#include <math.h>\n#include <mpi.h>\n#include <stdarg.h>\n\n"
            "#ifndef %s_API_H\n#define %s_API_H\n",
            x->up, x->up);
    emit_decls(x, f);
    fprintf(f, "#endif /* %s_API_H */\n\n", x->up);
    put_tpl(f, api_impl_common, x->p, x->up);
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
