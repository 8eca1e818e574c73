/*
 * main.c: the mpcc command.
 *
 *   mpcc FILE [-o OUT] [--emit=KIND] [--emit-header NAME.h] [--report-json FILE]
 *        [--report-html FILE] [-D key=value]... [--dump-after=PASS] [-v]
 *
 * The driver is a straight line through the phases: read and parse (frontend), lower to
 * the IR, run the passes, print what --emit asked for. It stops after the first phase
 * that reported an error. Each output kind is one row of `emits`: its name, the last pass
 * it needs and the function that prints it; later outputs (plan, schedule, c, cuda) are
 * new rows.
 *
 * Exit codes: 0 success, 1 an error in the user's model or settings (reported with
 * file:line:col), 2 a usage error (bad command line), 3 an internal error (a failure no
 * input should cause, or running out of memory).
 *
 * `-o OUT` without --emit runs every pass and writes the partition report to OUT.report,
 * the trainer's C source to OUT.c and the trainer to OUT (built with $CC or mpicc against
 * the runtime, codegen/build.c), and the plan summary to standard error; `--report-json FILE`
 * writes the report as JSON and `--report-html FILE` as one HTML page with pictures
 * (docs/report.md).
 *
 * Every file goes through ir/outfile.c: a temporary file beside it, renamed over it only
 * when everything succeeded (a failed run never leaves a half-written or stale-looking
 * file), with the umask's usual mode.
 */
#include "codegen.h"
#include "frontend.h"
#include "ir.h"
#include "passes.h"
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_USER = 1, EXIT_USAGE = 2, EXIT_INTERNAL = 3 };

typedef struct Options {
    const char *file, *out, *emit, *dump_after, *report_json, *report_html, *header;
    const char *measured; /* --measured PROFILE: a trainer's profile for the HTML report */
    int plan_space;       /* --plan-space K: list the K fastest meshes instead of compiling */
    bool cuda;            /* --target cuda: -o builds the CUDA trainer (codegen/emit.c) */
    FeDefine *defs;
    int ndefs;
    bool verbose;
} Options;

typedef struct Emit {
    const char *name;
    const char *until; /* the last pass it needs; NULL: none (the AST) */
    const char *what;
    void (*print)(const IrGraph *g, FILE *out); /* NULL for the AST */
} Emit;

static void print_config(const IrGraph *g, FILE *out) {
    fe_config_dump(&g->train, &g->cluster, out);
}

static const Emit emits[] = {
    {"ast", NULL, "the syntax tree", NULL},
    {"config", NULL, "the resolved train and cluster settings (after presets and -D)",
     print_config},
    {"ir", "shapes", "the IR after shape inference: layers, shapes, parameters, FLOPs", ir_dump},
    {"plan", "report", "the partition report: every layer's alternatives, the choice and why",
     pass_report_text},
    {"schedule", "lower", "the per-rank SPMD schedule: each stage's steps, collectives, 1F1B order",
     pass_schedule_print},
    {"c", "lower", "the C trainer (codegen/emit.c); -o FILE.c to write it", cg_print_c},
    {"cuda", "lower", "the CUDA trainer (codegen/emit.c); -o FILE.cu to write it", cg_print_cuda},
};
#define NEMITS ((int)(sizeof emits / sizeof emits[0]))

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: mpcc FILE [-o OUT] [--emit=KIND] [--report-json FILE] [--report-html FILE\n"
        "            [--measured PROFILE]] [-D key=value]... [--dump-after=PASS] [-v]\n"
        "       mpcc compare PLAN.json PROFILE.json\n"
        "\n"
        "Compiles a .mp model description (see docs/language.md). `mpcc compare` puts a plan's\n"
        "predicted times (--report-json) beside a trainer's measured ones (--profile), per layer,\n"
        "largest error first (docs/report.md).\n"
        "\n"
        "options:\n"
        "  -o OUT             with --emit, write that output to OUT instead of standard output;\n"
        "                     without, plan the model and build the trainer OUT, writing beside "
        "it\n"
        "                     its C source OUT.c (OUT.cu with --target cuda) and the partition\n"
        "                     report OUT.report; the plan summary goes to standard error\n"
        "  --emit=KIND        what to print:\n");
    for (int i = 0; i < NEMITS; i++)
        fprintf(f, "                       %-6s %s\n", emits[i].name, emits[i].what);
    fprintf(
        f,
        "                     without --emit, mpcc checks the model and prints nothing\n"
        "  --emit-header NAME.h  with --emit=c, also write the trainer's C API: NAME.h, and\n"
        "                     NAME_create/step/save/load/... after main() (docs/embedding.md)\n"
        "  --report-json FILE write the partition report as JSON to FILE (docs/report.md)\n"
        "  --report-html FILE write the partition report as one self-contained HTML page with\n"
        "                     pictures (mesh, layers, step timeline, memory, pure plans) to FILE\n"
        "  --measured PROFILE with --report-html, draw a trainer's --profile JSON under the\n"
        "                     prediction: the measured step per stage, each layer's error\n"
        "  -D key=value       override a setting, e.g. -D train.batch=256 -D cluster.devices=8\n"
        "                     (any train.* or cluster.* key, cluster.preset included)\n"
        "  --target c|cuda    what -o builds: the C (MPI) trainer (default) or the CUDA one\n"
        "  --plan-space K     list the K fastest meshes S×d×t and micro-batch counts the plan\n"
        "                     search found, with their predicted step times, and stop\n"
        "  --dump-after=PASS  print what PASS made to standard output, and go on:\n");
    for (int i = 0; i < pass_count; i++)
        fprintf(f, "                       %-6s %s\n", pass_list[i].name, pass_list[i].what);
    fprintf(f, "  -v                 print the time each phase took to standard error\n"
               "  --help             print this help\n"
               "  --version          print the version\n"
               "\n"
               "exit status: 0 success, 1 error in the input, 2 usage error, 3 internal error\n");
}

static int usage_error(const char *fmt, const char *arg) {
    fputs("mpcc: error: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'mpcc --help' for more information.\n", stderr);
    return EXIT_USAGE;
}

static const Emit *find_emit(const char *name) {
    for (int i = 0; i < NEMITS; i++)
        if (strcmp(emits[i].name, name) == 0) return &emits[i];
    return NULL;
}

/* The value of an option given as "--opt=V", "--opt V", "-oV" or "-o V". */
static const char *opt_value(int argc, char **argv, int *i, const char *opt) {
    const char *a = argv[*i];
    size_t n = strlen(opt);
    if (a[n] == '=' && opt[1] == '-') return a + n + 1;
    if (a[n] && opt[1] != '-') return a + n;
    if (a[n]) return NULL;
    if (*i + 1 >= argc) return NULL;
    return argv[++*i];
}

static bool is_opt(const char *a, const char *opt) {
    size_t n = strlen(opt);
    return strncmp(a, opt, n) == 0 && (a[n] == 0 || a[n] == '=' || opt[1] != '-');
}

/* Parses the command line; returns -1 to go on, or an exit status. */
static int parse_args(int argc, char **argv, Options *o) {
    o->defs = calloc((size_t)argc, sizeof *o->defs);
    if (!o->defs) return EXIT_INTERNAL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("mpcc %s\n", MPCC_VERSION);
            return 0;
        } else if (strcmp(a, "-v") == 0) {
            o->verbose = true;
        } else if (is_opt(a, "-o")) {
            if (!(v = opt_value(argc, argv, &i, "-o")) || !*v)
                return usage_error("%s needs a file name", "-o");
            o->out = v;
        } else if (is_opt(a, "--emit")) {
            if (!(v = opt_value(argc, argv, &i, "--emit")))
                return usage_error("%s needs a value", "--emit");
            o->emit = v;
        } else if (is_opt(a, "--emit-header")) {
            if (!(v = opt_value(argc, argv, &i, "--emit-header")) || !*v)
                return usage_error("%s needs a file name", "--emit-header");
            o->header = v;
        } else if (is_opt(a, "--report-json")) {
            if (!(v = opt_value(argc, argv, &i, "--report-json")) || !*v)
                return usage_error("%s needs a file name", "--report-json");
            o->report_json = v;
        } else if (is_opt(a, "--report-html")) {
            if (!(v = opt_value(argc, argv, &i, "--report-html")) || !*v)
                return usage_error("%s needs a file name", "--report-html");
            o->report_html = v;
        } else if (is_opt(a, "--measured")) {
            if (!(v = opt_value(argc, argv, &i, "--measured")) || !*v)
                return usage_error("%s needs a profile file (a trainer's --profile)", "--measured");
            o->measured = v;
        } else if (is_opt(a, "--target")) {
            if (!(v = opt_value(argc, argv, &i, "--target")))
                return usage_error("%s needs c or cuda", "--target");
            if (strcmp(v, "c") != 0 && strcmp(v, "cuda") != 0)
                return usage_error("--target '%s': expected c or cuda", v);
            o->cuda = strcmp(v, "cuda") == 0;
        } else if (is_opt(a, "--plan-space")) {
            if (!(v = opt_value(argc, argv, &i, "--plan-space")))
                return usage_error("%s needs a count", "--plan-space");
            char *end;
            long k = strtol(v, &end, 10);
            if (*end || k < 1 || k > 1000)
                return usage_error("--plan-space '%s': expected a count from 1 to 1000", v);
            o->plan_space = (int)k;
        } else if (is_opt(a, "--dump-after")) {
            if (!(v = opt_value(argc, argv, &i, "--dump-after")))
                return usage_error("%s needs a pass name", "--dump-after");
            o->dump_after = v;
        } else if (is_opt(a, "-D")) {
            if (!(v = opt_value(argc, argv, &i, "-D")))
                return usage_error("%s needs key=value", "-D");
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                return usage_error("-D '%s': expected key=value, as in -D train.batch=256", v);
            o->defs[o->ndefs].key = strndup(v, (size_t)(eq - v));
            o->defs[o->ndefs++].value = eq + 1;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'", a);
        } else if (o->file) {
            return usage_error("more than one input file ('%s')", a);
        } else {
            o->file = a;
        }
    }
    if (!o->file) return usage_error("%s", "no input file");
    return -1;
}

/* NAME of --emit-header DIR/NAME.h (static storage; the driver asks for one). */
static const char *api_prefix(const char *header) {
    static char name[128];
    const char *base = strrchr(header, '/');
    snprintf(name, sizeof name, "%s", base ? base + 1 : header);
    size_t n = strlen(name);
    if (n > 2 && strcmp(name + n - 2, ".h") == 0) name[n - 2] = 0;
    return name;
}

/* Checks --emit and --dump-after; returns -1 to go on, or an exit status. */
static int check_args(const Options *o, const Emit **emit) {
    *emit = NULL;
    if (o->emit && !(*emit = find_emit(o->emit))) {
        char list[256] = "";
        for (int i = 0; i < NEMITS; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     emits[i].name);
        fprintf(stderr, "mpcc: error: unknown --emit value '%s'; expected one of: %s\n", o->emit,
                list);
        return EXIT_USAGE;
    }
    if (o->dump_after && pass_find(o->dump_after) < 0) {
        fprintf(stderr,
                "mpcc: error: unknown pass '%s' for --dump-after; the passes are:", o->dump_after);
        for (int i = 0; i < pass_count; i++)
            fprintf(stderr, " %s", pass_list[i].name);
        fputc('\n', stderr);
        return EXIT_USAGE;
    }
    if (o->header && !(*emit && strcmp((*emit)->name, "c") == 0))
        return usage_error("%s", "--emit-header goes with --emit=c");
    if (o->header && !cg_api_prefix_ok(api_prefix(o->header)))
        return usage_error(
            "--emit-header '%s': the file's name without .h names the API and must be a C "
            "identifier (letters, digits, _) other than train and trainer",
            o->header);
    const char *clash = o->header ? cg_api_prefix_clash(api_prefix(o->header)) : NULL;
    if (clash) {
        fprintf(stderr, "mpcc: error: --emit-header '%s': %s; choose another name\n", o->header,
                clash);
        return EXIT_USAGE;
    }
    if ((o->report_json || o->report_html) && *emit && (*emit)->until == NULL) {
        /* ast, config: nothing is planned */
        char why[96];
        snprintf(why, sizeof why, "%s needs the plan; it cannot go with --emit=%s",
                 o->report_json ? "--report-json" : "--report-html", (*emit)->name);
        return usage_error("%s", why);
    }
    if (o->measured && !o->report_html)
        return usage_error("%s", "--measured draws into the HTML report; give --report-html FILE");
    if (o->report_html && o->plan_space > 0)
        return usage_error("%s", "--report-html needs the plan; it cannot go with --plan-space");
    return -1;
}

/* --report-html, with the profile of --measured read first: a bad profile is an error
 * before anything is written. */
static bool write_html(const Options *o, const IrGraph *g, Diag *d) {
    Arena a = {0};
    Measured m;
    bool ok = !o->measured || report_measured_load(g, o->measured, &a, &m, d);
    IrOutFile out;
    if (ok && (ok = ir_out_open(&out, o->report_html, d))) {
        pass_report_html(g, o->measured ? &m : NULL, out.f);
        ok = ir_out_close(&out, true, d);
    }
    arena_free(&a);
    return ok;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* --emit=c --emit-header H: the trainer and its C API into `out`, the header into H. */
static bool write_api(const Options *o, const IrGraph *g, FILE *out, Diag *d) {
    IrOutFile h;
    if (!cg_emit_c(g, out, d) || !ir_out_open(&h, o->header, d)) return false;
    return ir_out_close(&h, cg_emit_capi(g, api_prefix(o->header), out, h.f, d), d);
}

/* `-o OUT`: OUT.report beside OUT, and the plan summary on standard error. */
static int write_report(const char *out, const IrGraph *g, Diag *d) {
    size_t n = strlen(out) + sizeof ".report";
    char *path = malloc(n);
    if (!path) return EXIT_INTERNAL;
    snprintf(path, n, "%s.report", out);
    bool ok = pass_report_save(g, path, false, d);
    free(path);
    if (!ok) return EXIT_USER;
    pass_report_summary(g, stderr);
    return 0;
}

/* `-o OUT`: the report, then the trainer's source OUT.c, then OUT built from it. */
static int write_trainer(const Options *o, const IrGraph *g, Diag *d) {
    if (!cg_plan_supported(g, o->cuda, d)) return EXIT_USER; /* before anything is written */
    int rc = write_report(o->out, g, d);
    if (rc) return rc;
    size_t n = strlen(o->out) + sizeof ".cu";
    char *src = malloc(n);
    if (!src) return EXIT_INTERNAL;
    snprintf(src, n, "%s.%s", o->out, o->cuda ? "cu" : "c");
    IrOutFile out;
    bool ok = ir_out_open(&out, src, d);
    if (ok)
        ok = ir_out_close(&out, o->cuda ? cg_emit_cuda(g, out.f, d) : cg_emit_c(g, out.f, d), d);
    CgToolchain tc = cg_toolchain_default();
    if (ok)
        ok = o->cuda ? cg_build_cuda(&tc, src, o->out, o->verbose, d)
                     : cg_build(&tc, src, o->out, o->verbose, d);
    free(src);
    return ok ? 0 : EXIT_USER;
}

/* `--plan-space K`: the K fastest (mesh, micro-batches) choices with their predicted times. */
static int plan_space(const Options *o, IrGraph *g, Diag *d) {
    if (!pass_run_pipeline(g, d, "shapes", NULL, stdout)) return EXIT_USER;
    PlanChoice *c = calloc((size_t)o->plan_space, sizeof *c);
    if (!c) return EXIT_INTERNAL;
    int n = plan_search_space(g, d, o->plan_space, c);
    if (n > 0) plan_space_print(g, c, n, stdout);
    free(c);
    return n > 0 ? 0 : EXIT_USER;
}

/* Parse, lower, run the passes and print: the compiler proper. */
static int compile(const Options *o, const Emit *emit, Arena *a, Diag *d) {
    double t0 = now_ms();
    Ast *ast = fe_parse_file(a, d, o->file);
    double t1 = now_ms();
    if (!ast) return EXIT_USER;
    IrOutFile out;
    if (emit && strcmp(emit->name, "ast") == 0) {
        if (!ir_out_open(&out, o->out, d)) return EXIT_USER;
        fe_ast_dump(ast, out.f);
        return ir_out_close(&out, true, d) ? 0 : EXIT_USER;
    }
    IrGraph *g = fe_lower(a, d, ast, o->defs, o->ndefs);
    double t2 = now_ms();
    if (!g) return EXIT_USER;
    if (emit && emit->print == print_config) {
        if (!ir_out_open(&out, o->out, d)) return EXIT_USER;
        print_config(g, out.f);
        return ir_out_close(&out, true, d) ? 0 : EXIT_USER;
    }
    /* train.zero = "auto" picks among the stages the trainer to be emitted runs (docs/language.md)
     */
    g->train.zero_auto_max2 = o->cuda || (emit && emit->print == cg_print_cuda);
    if (o->plan_space > 0) return plan_space(o, g, d);
    /* Plain `-o` and the report files need every pass; --emit stops after what it prints. */
    const char *until = emit && !o->report_json && !o->report_html ? emit->until : NULL;
    if (until && o->dump_after && pass_find(o->dump_after) > pass_find(until))
        until = o->dump_after;
    int errors0 = diag_errors(d);
    bool ok = pass_run_pipeline(g, d, until, o->dump_after, stdout);
    double t3 = now_ms();
    if (o->verbose)
        fprintf(stderr, "mpcc: %d layers; parse %.2f ms, lower %.2f ms, passes %.2f ms\n",
                IR_NNODES(g), t1 - t0, t2 - t1, t3 - t2);
    if (!ok) return diag_errors(d) > errors0 ? EXIT_USER : EXIT_INTERNAL;
    if (o->report_json && !pass_report_save(g, o->report_json, true, d)) return EXIT_USER;
    if (o->report_html && !write_html(o, g, d)) return EXIT_USER;
    if (!emit) return o->out ? write_trainer(o, g, d) : 0;
    bool cuda = emit->print == cg_print_cuda;
    if ((cuda || emit->print == cg_print_c) && !cg_plan_supported(g, cuda, d)) return EXIT_USER;
    if (!ir_out_open(&out, o->out, d)) return EXIT_USER;
    if (o->header) return ir_out_close(&out, write_api(o, g, out.f, d), d) ? 0 : EXIT_USER;
    emit->print(g, out.f);
    return ir_out_close(&out, true, d) ? 0 : EXIT_USER;
}

/* `mpcc compare PLAN.json PROFILE.json` (report/compare.c). */
static int compare_cmd(int argc, char **argv) {
    char err[512];
    if (argc != 4) {
        fprintf(stderr, "mpcc: compare needs two files: mpcc compare PLAN.json PROFILE.json\n");
        return EXIT_USAGE;
    }
    if (report_compare(argv[2], argv[3], stdout, err, sizeof err)) return 0;
    fprintf(stderr, "mpcc: error: %s\n", err);
    return EXIT_USER;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "compare") == 0) return compare_cmd(argc, argv);
    Options o = {0};
    int rc = parse_args(argc, argv, &o);
    const Emit *emit = NULL;
    if (rc < 0) rc = check_args(&o, &emit);
    if (rc < 0) {
        Arena a = {0};
        Diag d;
        diag_init(&d, stderr);
        d.max_errors = 100;
        const char *term = getenv("TERM");
        d.color = isatty(STDERR_FILENO) && !getenv("NO_COLOR") && term && strcmp(term, "dumb") != 0;
        rc = compile(&o, emit, &a, &d);
        arena_free(&a);
    }
    for (int i = 0; i < o.ndefs; i++)
        free((char *)o.defs[i].key);
    free(o.defs);
    return rc;
}
