/*
 * build.c: compiling a generated trainer against the runtime (`mpcc model.mp -o train`).
 *
 * The compiler is $CC when set, else `mpicc`, the MPI wrapper that adds MPI's include and
 * library flags. The runtime (mprt.h, mprt_kernels.h and libmprt) is found, in order: under
 * $MPCC_RUNTIME_DIR (headers and library in one folder), else beside an installed mpcc
 * (PREFIX/bin/mpcc finds PREFIX/include/mpcc and PREFIX/lib from /proc/self/exe, so an
 * installed tree can move), else in the build tree this mpcc was built in (paths fixed at
 * configure time). The trainer gets an rpath to the library folder, so a shared libmprt is
 * found at run time. The command runs
 * through posix_spawnp with an argument vector — never a shell — so file names with spaces
 * or quotes are passed as they are, and a name starting with '-' gets "./" so that it is
 * never read as an option. With -v the command is printed first, one line, quoted
 * where needed, so it can be pasted into a shell. A build of mpcc with MPCC_SANITIZE has a
 * sanitized runtime, so its trainers are built with the same sanitizers.
 */
#include "codegen.h"

#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#ifndef MPCC_RUNTIME_INCLUDE_DIR
#define MPCC_RUNTIME_INCLUDE_DIR "runtime"
#endif
#ifndef MPCC_RUNTIME_LIB_DIR
#define MPCC_RUNTIME_LIB_DIR "runtime"
#endif
/* An install's runtime relative to its bin/ (CMakeLists.txt sets them from GNUInstallDirs). */
#ifndef MPCC_INSTALL_REL_INCLUDE
#define MPCC_INSTALL_REL_INCLUDE "../include/mpcc"
#endif
#ifndef MPCC_INSTALL_REL_LIB
#define MPCC_INSTALL_REL_LIB "../lib"
#endif

static const SrcLoc noloc = {NULL, 0, 0, 0};

/* The runtime of an installed mpcc: BIN/../include/mpcc and BIN/../lib when mprt.h is there. */
static bool installed_runtime(CgToolchain *tc) {
    static char exe[PATH_MAX], inc[PATH_MAX + 64], lib[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return false;
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return false;
    *slash = 0;
    char probe[PATH_MAX + 80];
    snprintf(inc, sizeof inc, "%s/%s", exe, MPCC_INSTALL_REL_INCLUDE);
    snprintf(lib, sizeof lib, "%s/%s", exe, MPCC_INSTALL_REL_LIB);
    snprintf(probe, sizeof probe, "%s/mprt.h", inc);
    if (access(probe, R_OK) != 0) return false;
    tc->include_dir = inc;
    tc->lib_dir = lib;
    return true;
}

CgToolchain cg_toolchain_default(void) {
    CgToolchain tc = {"mpicc", MPCC_RUNTIME_INCLUDE_DIR, MPCC_RUNTIME_LIB_DIR};
    const char *cc = getenv("CC"), *dir = getenv("MPCC_RUNTIME_DIR");
    if (cc && *cc) tc.cc = cc;
    if (dir && *dir)
        tc.include_dir = tc.lib_dir = dir;
    else
        installed_runtime(&tc);
    return tc;
}

/* Prints one argument for a POSIX shell: bare when safe, else in single quotes. */
static void print_arg(FILE *f, const char *s) {
    bool safe = *s != 0;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=+,:", *p))
            safe = false;
    if (safe) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (const char *p = s; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", f);
        else
            fputc(*p, f);
    }
    fputc('\'', f);
}

/* Runs argv (argv[0] the tool) and waits; `what` names the tool in errors, `hint` says how to
 * choose another. */
static bool spawn_wait(const char *const *argv, const char *what, const char *hint, bool verbose,
                       Diag *d) {
    if (verbose) {
        for (int i = 0; argv[i]; i++) {
            if (i) fputc(' ', stderr);
            print_arg(stderr, argv[i]);
        }
        fputc('\n', stderr);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], NULL, NULL, (char *const *)argv, environ);
    if (rc != 0) {
        diag_error(d, noloc, "cannot run the %s '%s': %s (%s)", what, argv[0], strerror(rc), hint);
        return false;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok)
        diag_error(d, noloc,
                   "building the trainer failed: '%s' %s %d (run with -v to see the command)",
                   argv[0], WIFEXITED(status) ? "exited with status" : "was killed by signal",
                   WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return ok;
}

/* A user's file name as a compiler argument: one starting with '-' (`-o -v` makes -v.c)
 * gets "./" in front, so the compiler cannot take it for an option. */
static const char *file_arg(Arena *a, const char *path) {
    return path[0] == '-' ? arena_printf(a, "./%s", path) : path;
}

bool cg_build(const CgToolchain *tc, const char *c_file, const char *exe, bool verbose, Diag *d) {
    Arena a = {0};
    c_file = file_arg(&a, c_file);
    exe = file_arg(&a, exe);
    const char *argv[] = {
        tc->cc,
        "-std=c11",
        "-O2",
        arena_printf(&a, "-I%s", tc->include_dir),
        c_file,
        "-o",
        exe,
        arena_printf(&a, "-L%s", tc->lib_dir),
        arena_printf(&a, "-Wl,-rpath,%s", tc->lib_dir),
        "-lmprt",
        "-lcjson",
        "-lopenblas",
        "-lm",
#ifdef MPCC_TRAINER_SANITIZE
        "-fsanitize=address,undefined",
        "-fno-omit-frame-pointer",
#endif
        NULL,
    };
    bool ok = spawn_wait(argv, "C compiler", "set CC to an MPI C compiler", verbose, d);
    arena_free(&a);
    return ok;
}

/* nvcc compiles the .cu with the MPI C++ wrapper as its host compiler (mpicxx adds MPI's
 * include and library flags, as mpicc does for C), and links mprt_cuda, mprt, cuBLAS and
 * NCCL. The paths are this build tree's, fixed at configure time (cmake/MpccCuda.cmake). */
bool cg_build_cuda(const CgToolchain *tc, const char *cu_file, const char *exe, bool verbose,
                   Diag *d) {
#ifndef MPCC_CUDA_LIB_DIR
    (void)tc, (void)cu_file, (void)exe, (void)verbose;
    diag_error(d, noloc,
               "this mpcc was built without the CUDA runtime (no nvcc, cuBLAS or NCCL when it was "
               "configured); --emit=cuda -o FILE.cu writes the trainer, docs/cuda.md says how to "
               "build it");
    return false;
#else
    Arena a = {0};
    cu_file = file_arg(&a, cu_file);
    exe = file_arg(&a, exe);
    const char *host = getenv("MPCC_CUDA_HOST_CXX"), *nvcc = getenv("NVCC");
    const char *argv[] = {
        nvcc && *nvcc ? nvcc : MPCC_NVCC,
        "-ccbin",
        host && *host ? host : "mpicxx",
        "-O2",
        arena_printf(&a, "-I%s", tc->include_dir),
        arena_printf(&a, "-I%s/cuda", tc->include_dir),
        cu_file,
        "-o",
        exe,
        arena_printf(&a, "-L%s", MPCC_CUDA_LIB_DIR),
        "-lmprt_cuda",
        arena_printf(&a, "-L%s", tc->lib_dir),
        arena_printf(&a, "-Xlinker=-rpath,%s", tc->lib_dir),
        "-lmprt",
        "-lcublas",
        arena_printf(&a, "-L%s", MPCC_NCCL_LIB_DIR),
        "-lnccl",
        "-lcjson",
        "-lopenblas",
        "-lm",
        NULL,
    };
    bool ok = spawn_wait(argv, "CUDA compiler", "set NVCC to nvcc's path", verbose, d);
    arena_free(&a);
    return ok;
#endif
}
