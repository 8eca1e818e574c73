/*
 * codegen.h: the public face of codegen/ — printing the SPMD schedule (g->sched, made by
 * pass_lower) as a standalone trainer, and building it.
 *
 * cg_emit_c writes one C file that includes the runtime (mprt.h, mprt_kernels.h) and holds:
 * the plan as a header comment, every layer's local shard shapes as named constants, one
 * forward and one backward function per layer with the source line above it, the parameter /
 * gradient / optimizer-state arenas carved with shape comments, one forward and one backward
 * function per pipeline stage and micro-batch, the 1F1B step loop, checkpoints and main()
 * with the trainer's command line (DESIGN.md §9). The output depends only on the graph and
 * the schedule: the same input gives the same bytes. Nothing from the .mp file reaches the C
 * text unescaped: identifiers are mangled ([A-Za-z0-9_] with an index prefix), source text
 * in comments has its comment terminators and non-printable bytes escaped, and names in
 * string literals are escaped.
 */
#ifndef MPCC_CODEGEN_H
#define MPCC_CODEGEN_H

#include "passes.h"

/* Writes the trainer for g (which must have been through pass_lower). Returns false (after
 * reporting through d) on failure. */
bool cg_emit_c(const IrGraph *g, FILE *out, Diag *d);

/* Whether the C (cuda false) or CUDA trainer implements what g's plan uses; reports why not
 * through `d` (ZeRO: docs/runtime.md). cg_emit_c/cg_emit_cuda check it first; the driver
 * checks it before --emit=c/cuda so that nothing is written. */
bool cg_plan_supported(const IrGraph *g, bool cuda, Diag *d);
/* cg_emit_c to `out`, reporting internal errors on stderr (mpcc --emit=c). */
void cg_print_c(const IrGraph *g, FILE *out);

/* The C API (emit_capi.c): appends NAME_create/step/save/load/… to the trainer `c_out` that
 * cg_emit_c just wrote, and writes their header NAME.h to `h_out`; `prefix` is NAME. */
bool cg_emit_capi(const IrGraph *g, const char *prefix, FILE *c_out, FILE *h_out, Diag *d);
/* Whether `prefix` can name the API: a C identifier of at most 64 characters, other than
 * "train" and "trainer" (whose NAME_step and NAME_main are the trainer's own functions). */
bool cg_api_prefix_ok(const char *prefix);
/* Why `prefix` (an identifier cg_api_prefix_ok accepts) cannot name the API, or NULL: NAME.h
 * would shadow a header the trainer, the runtime or a C program includes (mpi.h, mprt.h,
 * stdio.h, … in any case), or NAME_… would be in MPI's or the runtime's namespace. */
const char *cg_api_prefix_clash(const char *prefix);

/* The CUDA target (codegen/emit.c, docs/cuda.md): the same trainer as a .cu file running
 * on the GPU through runtime/cuda/mprt_cuda.h; cg_print_cuda is mpcc --emit=cuda. */
bool cg_emit_cuda(const IrGraph *g, FILE *out, Diag *d);
void cg_print_cuda(const IrGraph *g, FILE *out);

/* `prefix` + index + "_" + name with every byte outside [A-Za-z0-9_] replaced by '_':
 * distinct indices give distinct identifiers whatever the names are. */
char *cg_mangle(Arena *a, const char *prefix, int index, const char *name);
/* The range of an integer input: the vocabulary of the embedding reading it, or the classes
 * of the loss it labels; 0 for floats (MprtData's range). */
int64_t cg_int_range(const IrGraph *g, int value);

/* Where the runtime is: include directories and libraries for building a trainer. */
typedef struct CgToolchain {
    const char *cc;          /* $CC, else "mpicc" */
    const char *include_dir; /* runtime headers */
    const char *lib_dir;     /* libmprt.a */
} CgToolchain;

/* The in-tree runtime of this build (compile-time paths), overridable by $MPCC_RUNTIME_DIR. */
CgToolchain cg_toolchain_default(void);
/* Compiles `c_file` into `exe` against the runtime; prints the command when verbose.
 * Returns false after reporting a one-line error through d. */
bool cg_build(const CgToolchain *tc, const char *c_file, const char *exe, bool verbose, Diag *d);
/* The same for a CUDA trainer (.cu): nvcc with the MPI C++ wrapper as host compiler ($NVCC
 * and $MPCC_CUDA_HOST_CXX override them), linked to mprt_cuda, mprt, cuBLAS and NCCL. An mpcc
 * configured without CUDA reports that instead. */
bool cg_build_cuda(const CgToolchain *tc, const char *cu_file, const char *exe, bool verbose,
                   Diag *d);

#endif /* MPCC_CODEGEN_H */
