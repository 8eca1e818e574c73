/*
 * trainer_main.c: a generated trainer's command line and run (mprt_trainer.h) — the flags and
 * the usage text, the order of a run (mesh, threads, buffers, data, checkpoints, the plan,
 * the steps with their progress lines, the byte check, the final checkpoint and profile), and
 * the check of the runtime's byte counters against the plan's prediction.
 *
 * The model's own parts come in through MprtTrainer: its start (mesh pointer, seed, buffers
 * and initial weights), its data files, its train_step and its teardown. The CUDA trainer
 * runs through the same function: `device` adds its flags (--comm, --tf32), drops the CPU
 * binding line, and its start and stop hooks bring the GPU up and down.
 *
 * Every error here is the user's (a bad flag, a file that does not fit) and ends the job with
 * one line and exit status 1 on every rank (mprt_exit_if_any); --help prints the usage once
 * per job and exits 0 (before MPI starts when no launcher started the process; under one,
 * after the ranks agreed on it, so that --help on some ranks only is an error, not a hang).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mprt_trainer.h"

void mprt_usage(const MprtTrainer *t, FILE *out, const char *prog) {
    const MprtModel *m = t->model;
    fprintf(out,
            "usage: mpirun -np %d %s [options]\n"
            "  --steps N          train until step N (default %d)\n"
            "  --data X.npy       inputs (default: synthetic samples from the seed)\n"
            "  --labels Y.npy     labels (default: synthetic)\n"
            "  --seed S           initialisation, synthetic data and dropout seed (default %d)\n"
            "  --init F           start from the weights of a checkpoint of this model\n"
            "  --init-partial F   start from those tensors of F whose names and shapes fit "
            "(any model)\n"
            "  --resume F         continue a checkpoint: weights, optimizer state and step\n"
            "  --save F           write a checkpoint at the end (and every --save-every steps)\n"
            "  --save-every K     checkpoint every K steps\n"
            "  --log-every K      progress line every K steps (default 1)\n"
            "  --profile F.json   write bytes, calls and times per collective and layer\n"
            "  --trace F.json     write a timeline of steps after the warm-up (Chrome trace "
            "format:\n"
            "                     Perfetto, chrome://tracing); --trace-steps K of them (default "
            "2)\n"
            "  --val-data F       validation inputs: a token stream or .npy (with --val-labels "
            "Y.npy);\n"
            "                     its loss (and accuracy) every --eval-every N steps (default: "
            "at the\n"
            "                     end) over --val-batches K batches (default: the file's whole "
            "batches,\n"
            "                     at most 16)\n"
            "  --generate N       sample N tokens from --init/--resume instead of training\n"
            "                     (language models; --prompt-tokens 3,1,4 (default 0),\n"
            "                     --temperature T (default 1, 0: greedy), --top-k K;\n"
            "                     --logits F.npy: the logits each token was drawn from)\n"
            "  --export-hf DIR    write the final weights in Hugging Face's GPT-2 layout\n"
            "                     (model.safetensors, config.json; docs/hf.md)\n",
            m->S * m->d * m->t, prog, (int)t->default_steps, (int)t->default_seed);
    fputs("  --comm-timeout S   a collective or transfer without progress for S seconds ends the "
          "job,\n"
          "                     naming the ranks that do not answer (default "
          "$MPRT_COMM_TIMEOUT,\n"
          "                     else 300; 0: wait forever)\n",
          out);
    if (t->device)
        fputs("  --comm MODE        collectives over nccl, mpi (host-staged, GPUs shared) or auto "
              "(default)\n"
              "  --tf32             TF32 tensor-core GEMMs (faster, about 3 decimal digits)\n"
              "  --threads N        accepted for the C trainer's command line; unused on GPUs\n",
              out);
    else
        fputs("  --threads N        compute threads per rank (default: its share of the node's "
              "CPUs)\n",
              out);
    fputs("  --help             this text\n", out);
}

/* A non-negative integer flag value; -1 when it is not one, -2 when it is above MPRT_MAX_STEPS
 * (no count flag is sensibly larger; the seed takes any value that fits 64 bits). */
static int64_t parse_count(const char *s, bool any) {
    char *end = NULL;
    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (!end || *end) return -1;
    if (errno == ERANGE || (!any && v > (unsigned long long)MPRT_MAX_STEPS) ||
        v > (unsigned long long)INT64_MAX)
        return -2;
    return (int64_t)v;
}

/* The field a file-name flag sets, or NULL. */
static const char **str_flag(const MprtTrainer *t, MprtArgs *a, const char *f) {
    static const char *const names[] = {"--data",  "--labels",       "--init",
                                        "--save",  "--resume",       "--profile",
                                        "--trace", "--init-partial", "--comm"};
    const char **fields[] = {&a->data,    &a->labels, &a->init,         &a->save, &a->resume,
                             &a->profile, &a->trace,  &a->init_partial, &a->comm};
    if (!strcmp(f, "--prompt-tokens")) return &a->prompt; /* a list of tokens, not a file */
    if (!strcmp(f, "--val-data")) return &a->val_data;
    if (!strcmp(f, "--val-labels")) return &a->val_labels;
    if (!strcmp(f, "--logits")) return &a->logits;
    if (!strcmp(f, "--export-hf")) return &a->export_hf; /* trainer_hf.c */
    int n = t->device ? 9 : 8;                           /* --comm: the CUDA trainer's */
    for (int i = 0; i < n; i++)
        if (!strcmp(f, names[i])) return fields[i];
    return NULL;
}

/* The field a count flag sets, or NULL. */
static int64_t *num_flag(MprtArgs *a, const char *f) {
    if (!strcmp(f, "--comm-timeout")) return &a->comm_timeout;
    return !strcmp(f, "--steps")         ? &a->steps
           : !strcmp(f, "--save-every")  ? &a->save_every
           : !strcmp(f, "--log-every")   ? &a->log_every
           : !strcmp(f, "--trace-steps") ? &a->trace_steps
           : !strcmp(f, "--generate")    ? &a->generate
           : !strcmp(f, "--top-k")       ? &a->top_k
           : !strcmp(f, "--eval-every")  ? &a->eval_every
           : !strcmp(f, "--val-batches") ? &a->val_batches
                                         : NULL;
}

const char *mprt_args_parse(const MprtTrainer *t, int argc, char **argv, MprtArgs *a, char *err,
                            size_t n) {
    *a = (MprtArgs){
        .steps = t->default_steps, .log_every = 1, .seed = t->default_seed, .temperature = 1};
    a->comm_timeout = -1; /* unset: MPRT_COMM_TIMEOUT, else the default */
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t c = parse_count(v, !strcmp(f, "--seed"));
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            a->help = true;
            continue;
        }
        if (t->device && !strcmp(f, "--tf32")) {
            a->tf32 = true;
            continue;
        }
        if (!strcmp(f, "--temperature")) {
            char *end = NULL;
            a->temperature = v ? strtod(v, &end) : -1;
            if (!v || end == v || *end || !(a->temperature >= 0 && a->temperature <= 1e6)) {
                snprintf(err, n, "--temperature needs a number in [0, 1e6]");
                return err;
            }
            i++;
            continue;
        }
        const char **str = str_flag(t, a, f);
        int64_t *num = num_flag(a, f);
        bool is_seed = !strcmp(f, "--seed"), is_threads = !strcmp(f, "--threads");
        if (!str && !num && !is_seed && !is_threads) {
            snprintf(err, n, "unknown flag '%.64s' (try --help)", f);
            return err;
        }
        if (!v || (!str && c < 0)) {
            if (v && !str && c == -2)
                snprintf(err, n, "%s %.32s: too large (at most %lld)", f, v,
                         is_seed ? (long long)INT64_MAX : (long long)MPRT_MAX_STEPS);
            else
                snprintf(err, n, "%s needs %s", f,
                         str == &a->prompt ? "tokens"
                         : str             ? "a file name"
                                           : "a non-negative integer");
            return err;
        }
        if (str)
            *str = v;
        else if (num)
            *num = c;
        else if (is_seed)
            a->seed = (uint64_t)c;
        else
            a->threads = (int)(c > 4096 ? 4096 : c);
        i++;
    }
    if (a->log_every == 0) a->log_every = 1;
    if (a->init && a->init_partial) {
        snprintf(err, n, "--init and --init-partial exclude each other");
        return err;
    }
    return NULL;
}

void mprt_check_bytes(const MprtTrainer *t, int64_t steps) {
    if (t->flush_stats) t->flush_stats();
    int64_t want[MPRT_GROUP__COUNT][MPRT_COLL__COUNT] = {{0}}, total = 0;
    int64_t got = mprt_stats_plan_bytes();
    for (int i = 0; i < t->npredicted; i++) {
        const MprtPredicted *p = &t->predicted[i];
        if (p->stage != mprt_mesh()->s) continue;
        want[p->group][p->coll] += p->bytes * steps;
        total += p->bytes * steps;
    }
    double off[2] = {got != total, (double)got};
    for (int g = 0; g < MPRT_WORLD; g++)
        for (int c = MPRT_ALLREDUCE; c <= MPRT_SENDRECV; c++)
            if (mprt_stats_get((MprtColl)c, (MprtGroup)g).bytes != want[g][c]) off[0] = 1;
    mprt_metric_max(MPRT_WORLD, off, 2);
    if (mprt_mesh()->rank == 0)
        printf("bytes: %s (busiest rank %.0f B over %lld steps; rank 0 counted %lld, predicted "
               "%lld)\n",
               off[0] == 0 ? "counted == predicted on every rank"
                           : "MISMATCH between counted and predicted",
               off[1], (long long)steps, (long long)got, (long long)total);
}

static void save(const MprtTrainer *t, const char *path, int64_t step) {
    MprtArenas arena = {*t->arena[0], *t->arena[1], *t->arena[2]};
    MprtErr err = {{0}};
    mprt_exit_if_any(!mprt_ckpt_save(t->model, arena, path, step, &err), err.msg);
}

/* Weights (and with `state` the optimizer state); returns the step stored in the file. */
static int64_t load(const MprtTrainer *t, const char *path, bool state) {
    MprtArenas arena = {*t->arena[0], *t->arena[1], *t->arena[2]};
    MprtErr err = {{0}};
    int64_t step = 0;
    mprt_exit_if_any(!mprt_ckpt_load(t->model, arena, path, state, &step, &err), err.msg);
    return step;
}

/* --init-partial: the tensors that fit, said on rank 0 (a partial start must not look whole). */
static void load_partial(const MprtTrainer *t, const char *path) {
    MprtErr err = {{0}};
    int loaded = 0;
    bool ok = mprt_ckpt_load_partial(t->model, *t->arena[0], path, &loaded, &err);
    mprt_exit_if_any(!ok, err.msg);
    if (mprt_mesh()->rank == 0)
        printf("init: %d of %d parameter tensors from %s; the rest drawn from the seed\n", loaded,
               t->model->nparams, path);
}

/* Rank 0: the plan, the data, and where the launcher's binding made the rank move. */
static void print_plan(const MprtTrainer *t, const MprtArgs *a, int threads) {
    if (mprt_mesh()->rank != 0) return;
    printf("%s", t->plan_summary);
    if (!a->data && !a->labels) /* trainer_teacher.c */
        printf("data: synthetic (teacher): fresh samples every step from a seeded random "
               "teacher (docs/runtime.md)\n");
    else
        printf("data: %s%s%s\n", a->data ? a->data : "synthetic inputs",
               a->labels ? ", labels " : "", a->labels ? a->labels : "");
    if (!t->device && *mprt_rebound_cpus())
        printf("cpu: %d threads per rank; the launcher bound rank 0 to fewer CPUs, "
               "so it moved to CPUs %s\n",
               threads, mprt_rebound_cpus());
    fflush(stdout);
}

/* The steps from `step` to a->steps, with progress lines, validations and periodic
 * checkpoints. */
static int64_t run_steps(const MprtTrainer *t, const MprtArgs *a, int64_t step) {
    int64_t first = step;
    double loss = 0;
    const char *kept = NULL; /* the last checkpoint written, for the guard's message */
    int64_t kept_step = 0;
    mprt_progress_start(first, a->steps, t->batch, a->log_every, &t->forecast);
    for (; step < a->steps; step++) {
        loss = t->step(step);
        mprt_guard(t, step + 1, loss, kept, kept_step); /* trainer_guard.c */
        if (mprt_eval_due(a, step + 1, a->steps)) {     /* trainer_eval.c */
            double vl, va;
            mprt_eval_run(t, &vl, &va);
            mprt_progress_val(step + 1, vl, va, mprt_eval_batches());
        }
        mprt_progress_step(step + 1, loss); /* prints every --log-every steps */
        if (a->save && a->save_every && (step + 1) % a->save_every == 0 && step + 1 < a->steps)
            save(t, a->save, step + 1), kept = a->save, kept_step = step + 1;
    }
    mprt_progress_finish(loss);
    mprt_check_bytes(t, a->steps > first ? a->steps - first : 0);
    mprt_check_memory(t);
    return step;
}

/* A checkpoint past --steps is refused: training "until step N" from beyond N has no meaning,
 * and a silent run of 0 steps would hide a wrong flag. A checkpoint exactly at --steps runs no
 * steps (a finished run resumed: nothing to do, and --save rewrites the same checkpoint). */
static const char *past_steps(const char *path, int64_t step, int64_t steps, char *msg, size_t n) {
    snprintf(msg, n,
             "%.200s is at step %lld, past --steps %lld (--steps is the last step, not a count; "
             "pass --steps %lld or more)",
             path ? path : "", (long long)step, (long long)steps, (long long)step);
    return msg;
}

/* Whether a launcher started this process (Open MPI, PMIx, MPICH's PMI, Slurm set these
 * before MPI starts). Without one, --help is answered before MPI starts; under one, the ranks
 * agree on it first (mprt__agree_flag): one usage text per job, and --help given to some
 * ranks only ends the job with a line instead of leaving the others waiting in MPI_Init. */
static bool launched(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK",
                                       "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return true;
    }
    return false;
}

/* Every file the run writes (--save, also every --save-every; --profile; --trace) is checked
 * writable by rank 0, which writes them, before anything else: a missing directory must not
 * cost a whole run. The error names the user's path. */
static void check_outputs(const MprtArgs *a) {
    const char *const outs[] = {a->save, a->profile, a->trace};
    MprtErr err = {{0}};
    bool ok = true;
    for (size_t i = 0; ok && mprt_mesh()->rank == 0 && i < sizeof outs / sizeof outs[0]; i++)
        if (outs[i]) ok = mprt__check_writable(outs[i], &err);
    mprt_exit_if_any(!ok, err.msg);
}

/* --generate's conditions: a language model, the C trainer, a checkpoint to start from. */
static const char *cannot_generate(const MprtTrainer *t, const MprtArgs *a) {
    if (!a->generate) return NULL;
    if (!t->tokens || !t->stages)
        return "--generate needs a model whose first input and label are token sequences "
               "i32[batch, T] over a vocabulary";
    if (t->device) return "--generate runs on the C trainer (mpcc --target c)";
    if (!a->init && !a->resume && !a->init_partial)
        return "--generate needs a checkpoint: --init F or --resume F";
    if (a->save || a->data || a->labels || a->val_data)
        return "--generate neither trains nor saves: drop "
               "--save, --data, --labels and --val-data";
    return NULL;
}

/* --logits and --export-hf: with what they go, and a model that has a GPT-2 form. */
static const char *cannot_export(const MprtTrainer *t, const MprtArgs *a) {
    static char msg[1024]; /* the refusal holds the .mp file's path */
    if (a->logits && !a->generate) return "--logits goes with --generate";
    if (!a->export_hf) return NULL;
    if (a->generate) return "--generate neither trains nor saves: drop --export-hf";
    if (t->hf && !t->hf->refusal) return NULL;
    snprintf(msg, sizeof msg, "--export-hf: %s",
             t->hf ? t->hf->refusal : "this trainer has no GPT-2 table");
    return msg;
}

/* At start-up, before any step: the export's directory, on rank 0. */
static void check_export_dir(const char *dir) {
    MprtErr err = {{0}};
    bool ok = mprt_mesh()->rank != 0 || mprt_hf_check_dir(dir, &err);
    mprt_exit_if_any(!ok, err.msg);
}

static void export_hf(const MprtTrainer *t, const char *dir) {
    MprtErr err = {{0}};
    float *w = mprt_zero_weights(t->model, *t->arena[0], true); /* whole (bf16 under ZeRO) */
    bool ok = mprt_hf_export(t->model, w, t->hf, dir, &err);
    mprt_zero_weights_done(t->model, w, *t->arena[0], false);
    mprt_exit_if_any(!ok, err.msg);
    if (mprt_mesh()->rank == 0)
        printf("export-hf: %s/model.safetensors, %s/config.json\n", dir, dir);
}

/* The run of --generate: tokens instead of steps. */
static int generate(const MprtTrainer *t, const MprtArgs *a) {
    mprt_generate(t, a);
    t->stop();
    mprt_finalize();
    return 0;
}

int mprt_trainer_main(const MprtTrainer *t, int argc, char **argv) {
    const MprtModel *m = t->model;
    MprtArgs a;
    char msg[256];
    const char *bad = mprt_args_parse(t, argc, argv, &a, msg, sizeof msg);
    int rank = 0;
    if ((a.help && !launched()) ||
        (launched() && mprt__agree_flag(&argc, &argv, "--help", a.help, &rank))) {
        if (rank == 0) mprt_usage(t, stdout, argv[0]);
        return 0;
    }
    if (a.comm_timeout >= 0) mprt_set_comm_timeout((double)a.comm_timeout);
    mprt_init(&argc, &argv, m->S, m->d, m->t);
    if (!bad) bad = cannot_generate(t, &a);
    if (!bad) bad = cannot_export(t, &a);
    mprt_exit_if_any(bad != NULL, bad ? bad : "");
    mprt_agree(t, &a);
    int threads = t->device ? 0 : mprt_set_threads(a.threads); /* 0: the rank's share */
    if (mprt_mesh()->rank == 0) {
        if (a.save) mprt__remove_stale_tmp(a.save);
        if (a.resume) mprt__remove_stale_tmp(a.resume);
    }
    if (a.export_hf) check_export_dir(a.export_hf);
    check_outputs(&a);
    t->start(&a);
    MprtErr err = {{0}};
    bool ok = t->open_data(&a, &err) && mprt_eval_open(t, &a, &err);
    mprt_exit_if_any(!ok, err.msg);
    int64_t step = 0;
    if (a.init) load(t, a.init, false);
    if (a.init_partial) load_partial(t, a.init_partial);
    if (a.resume) step = load(t, a.resume, true);
    if (a.generate) return generate(t, &a);
    mprt_exit_if_any(step > a.steps, past_steps(a.resume, step, a.steps, msg, sizeof msg));
    print_plan(t, &a, threads);
    if (a.trace) mprt_trace_arm(a.trace_steps);
    mprt_stats_reset();
    step = run_steps(t, &a, step);
    if (a.save) save(t, a.save, step);
    if (a.export_hf) export_hf(t, a.export_hf);
    if (a.profile && !mprt_profile_write(a.profile, &err)) ok = false;
    if (ok && a.trace && !mprt_trace_write(a.trace, &err)) ok = false;
    mprt_exit_if_any(!ok, err.msg);
    mprt_eval_close();
    t->stop();
    mprt_finalize();
    return 0;
}
