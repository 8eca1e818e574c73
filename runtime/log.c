/*
 * log.c: what the runtime measures and how it reports it — the byte and time counters of
 * the collectives, named timers, the progress line and the JSON profile.
 *
 * The counters are the other half of the partition report: the cost model predicts, per
 * device and per (collective kind, group), the bytes a step moves, and the runtime counts
 * the same quantity with the same integer formula (mprt_coll_bytes, a copy of
 * cost_coll_bytes in passes/ — the runtime does not link the compiler; a unit test checks
 * both agree). Bytes are what this rank sends on a ring algorithm, so summing over a group
 * gives the traffic on the wires. Broadcasts and the scalar all-reduces behind the
 * progress line have their own kinds and stay out of mprt_stats_plan_bytes().
 *
 * Timers are a flat table of names; ids are indices, so a hot loop looks a name up once.
 * The profile gathers every rank's counters and timers (as JSON text) to rank 0, which
 * writes one file: {"mprt_version", "mesh", "world_size", "elapsed_s", "ranks": [...]}.
 * docs/runtime.md documents the schema.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static MprtCommStat stats[MPRT_COLL__COUNT][MPRT_GROUP__COUNT];
static int paused;

typedef struct Timer {
    char *name;
    double seconds, started, first; /* first: the first call's seconds (warm-up shows there) */
    int64_t calls;
    double mark_seconds; /* seconds and calls at mprt_timers_mark (the warm-up's end) */
    int64_t mark_calls;
} Timer;
static Timer *timers;
static int ntimers, captimers;
static double exposed_mark; /* mprt_allreduce_exposed() at mprt_timers_mark */

static struct {
    int64_t first, last, per_step, prev_step, every, warmup;
    double t_start, t_prev, t_mark, measured;
    MprtForecast f;
    /* the last validation (mprt_progress_val): due on the next line; any at all */
    bool val_due, has_val;
    int64_t val_step, val_batches;
    double val_loss, val_acc;
} prog;

/* ───────────────────────────── byte counts ───────────────────────────── */

const char *mprt_coll_name(MprtColl k) {
    /* the cost model's names (cost_coll_name), so the profile reads like the report */
    static const char *const names[] = {"none",       "slice",          "all-reduce",
                                        "all-gather", "reduce-scatter", "all-to-all",
                                        "send/recv",  "broadcast",      "metrics"};
    return (unsigned)k < MPRT_COLL__COUNT ? names[k] : "?";
}

int64_t mprt_coll_bytes(MprtColl k, int64_t g, int64_t n) {
    if (n <= 0) return 0;
    switch (k) {
    case MPRT_SENDRECV: return n;
    case MPRT_ALLREDUCE:
    case MPRT_METRICS: return g > 1 ? 2 * (g - 1) * n / g : 0;
    case MPRT_ALLGATHER:
    case MPRT_REDUCESCATTER:
    case MPRT_BROADCAST: return g > 1 ? (g - 1) * n / g : 0;
    case MPRT_ALLTOALL: return g > 1 ? (g - 1) * n / (g * g) : 0;
    default: return 0;
    }
}

void mprt_stats_add(MprtColl k, MprtGroup g, int64_t bytes, double seconds) {
    if (paused || (unsigned)k >= MPRT_COLL__COUNT || (unsigned)g >= MPRT_GROUP__COUNT) return;
    if (mprt__tracing()) mprt__trace_comm(k, g, bytes, seconds);
    MprtCommStat *s = &stats[k][g];
    s->bytes += bytes;
    s->calls += 1;
    s->seconds += seconds;
}

MprtCommStat mprt_stats_get(MprtColl k, MprtGroup g) {
    MprtCommStat zero = {0, 0, 0.0};
    if ((unsigned)k >= MPRT_COLL__COUNT || (unsigned)g >= MPRT_GROUP__COUNT) return zero;
    return stats[k][g];
}

int64_t mprt_stats_plan_bytes(void) {
    int64_t sum = 0;
    for (int k = MPRT_ALLREDUCE; k <= MPRT_SENDRECV; k++)
        for (int g = 0; g < MPRT_GROUP__COUNT; g++)
            sum += stats[k][g].bytes;
    return sum;
}

static int64_t plan_calls(void) {
    int64_t sum = 0;
    for (int k = MPRT_ALLREDUCE; k <= MPRT_SENDRECV; k++)
        for (int g = 0; g < MPRT_GROUP__COUNT; g++)
            sum += stats[k][g].calls;
    return sum;
}

void mprt_stats_reset(void) { memset(stats, 0, sizeof stats); }
void mprt_stats_pause(void) { paused++; }
bool mprt__stats_paused(void) { return paused > 0; }
void mprt_stats_resume(void) {
    if (paused > 0) paused--;
}

/* ───────────────────────────── timers ───────────────────────────── */

int mprt_timer(const char *name) {
    for (int i = 0; i < ntimers; i++)
        if (strcmp(timers[i].name, name) == 0) return i;
    if (ntimers == captimers) {
        int cap = captimers ? 2 * captimers : 32;
        Timer *t = realloc(timers, (size_t)cap * sizeof *t);
        if (!t) mprt_fatal("out of memory for timer '%s'", name);
        timers = t;
        captimers = cap;
    }
    size_t len = strlen(name);
    char *copy = malloc(len + 1);
    if (!copy) mprt_fatal("out of memory for timer '%s'", name);
    memcpy(copy, name, len + 1);
    timers[ntimers] = (Timer){copy, 0.0, 0.0, 0.0, 0, 0.0, 0};
    return ntimers++;
}

static Timer *timer_at(int id) {
    if (id < 0 || id >= ntimers) mprt_fatal("invalid timer id %d", id);
    return &timers[id];
}

void mprt_timer_add(int id, double seconds) {
    Timer *t = timer_at(id);
    if (t->calls == 0) t->first = seconds;
    t->seconds += seconds;
    t->calls++;
}
void mprt_timer_start(int id) { timer_at(id)->started = mprt_now(); }
void mprt_timer_stop(int id) { mprt_timer_add(id, mprt_now() - timer_at(id)->started); }
double mprt_timer_seconds(int id) { return timer_at(id)->seconds; }
const char *mprt__timer_name(int id) { return timer_at(id)->name; }
double mprt__timer_started(int id) { return timer_at(id)->started; }

void mprt_timers_mark(void) {
    exposed_mark = mprt_allreduce_exposed();
    for (int i = 0; i < ntimers; i++)
        timers[i].mark_seconds = timers[i].seconds, timers[i].mark_calls = timers[i].calls;
}

void mprt_timer_steady(int id, double *seconds, int64_t *calls) {
    const Timer *t = timer_at(id);
    *seconds = t->seconds - t->mark_seconds, *calls = t->calls - t->mark_calls;
}

/* ───────────────────────────── progress ───────────────────────────── */

void mprt_progress_start(int64_t first_step, int64_t last_step, int64_t samples_per_step,
                         int64_t log_every, const MprtForecast *f) {
    int64_t n = last_step - first_step;
    prog.first = prog.prev_step = first_step;
    prog.last = last_step;
    prog.per_step = samples_per_step;
    prog.every = log_every > 0 ? log_every : 1;
    prog.warmup = n >= 2 ? (n / 10 > 1 ? n / 10 : 1) : 0;
    prog.f = f ? *f : (MprtForecast){0};
    prog.measured = 0;
    prog.t_start = prog.t_prev = prog.t_mark = mprt_now();
    mprt_timers_mark();
    mprt__trace_window(first_step, first_step + prog.warmup);
}

/* "| 12.3 GFLOP/s | MFU 4.5%" for `steps` steps in `dt` seconds, or "" without a forecast. */
static void flops_text(char *buf, size_t n, int64_t steps, double dt) {
    double ranks = (double)mprt_mesh()->size;
    double rate = dt > 0 ? prog.f.flops_per_step * (double)steps / dt : 0.0;
    if (prog.f.flops_per_step <= 0 || dt <= 0) {
        buf[0] = 0;
    } else if (prog.f.peak_flops > 0) {
        snprintf(buf, n, " | %.3g GFLOP/s | MFU %.1f%%", rate / 1e9,
                 100.0 * rate / (ranks * prog.f.peak_flops));
    } else {
        snprintf(buf, n, " | %.3g GFLOP/s", rate / 1e9);
    }
}

/* " | val_loss 1.234567 val_acc 0.9100": the last validation. */
static void val_text(char *buf, size_t n) {
    int len = snprintf(buf, n, " | val_loss %.7g", prog.val_loss);
    if (prog.val_acc >= 0 && len > 0 && (size_t)len < n)
        snprintf(buf + len, n - (size_t)len, " val_acc %.4f", prog.val_acc);
}

void mprt_progress_step(int64_t step, double loss) {
    double now = mprt_now();
    if (step == prog.first + prog.warmup && prog.warmup > 0) prog.t_mark = now, mprt_timers_mark();
    mprt__trace_step(step);
    bool due = prog.val_due;
    prog.val_due = false;
    if (step % prog.every != 0 && step != prog.last && !due) return;
    double dt = now - prog.t_prev, elapsed = now - prog.t_start;
    int64_t done = step - prog.first, since = step - prog.prev_step;
    double rate = dt > 0 ? (double)(since * prog.per_step) / dt : 0.0;
    double eta = done > 0 ? elapsed / (double)done * (double)(prog.last - step) : 0.0;
    prog.t_prev = now;
    prog.prev_step = step;
    if (mprt_mesh()->rank != 0) return;
    int64_t tok = prog.f.tokens_per_sample;
    char fl[64];
    flops_text(fl, sizeof fl, since, dt);
    char val[80] = "";
    if (due) val_text(val, sizeof val);
    printf("step %lld/%lld | loss %.7g | %.1f samples/s | %.1f %s/s/device | %.3g ms/step%s | "
           "comm %.2f MB | elapsed %.1fs | eta %.1fs%s\n",
           (long long)step, (long long)prog.last, loss, rate,
           rate * (double)(tok > 0 ? tok : 1) / (double)mprt_mesh()->size,
           tok > 0 ? "tokens" : "samples", since > 0 ? 1e3 * dt / (double)since : 0.0, fl,
           (double)mprt_stats_plan_bytes() / 1e6, elapsed, eta, val);
    fflush(stdout);
}

void mprt_progress_val(int64_t step, double loss, double acc, int64_t batches) {
    prog.val_due = prog.has_val = true;
    prog.val_step = step, prog.val_loss = loss, prog.val_acc = acc, prog.val_batches = batches;
}

void mprt_progress_exclude(double seconds) { prog.t_prev += seconds, prog.t_mark += seconds; }

/* Rank 0: how far the plan's step time was from the steady-state one. */
static void print_forecast(void) {
    if (prog.f.step_s <= 0 || prog.measured <= 0) return;
    printf("time: predicted %.3g ms/step, measured %.3g ms/step (steps %lld-%lld; %lld warm-up): "
           "%.2fx the prediction\n",
           1e3 * prog.f.step_s, 1e3 * prog.measured, (long long)(prog.first + prog.warmup + 1),
           (long long)prog.last, (long long)prog.warmup, prog.measured / prog.f.step_s);
    int ranks, cpus;
    mprt__node_share(&ranks, &cpus);
    if (cpus > 0 && ranks > cpus)
        printf("note: %d ranks shared %d CPU%s on this node: the plan priced a device per rank, "
               "and a rank waiting in MPI polls on the CPU another needs to compute\n",
               ranks, cpus, cpus == 1 ? "" : "s");
}

void mprt_progress_finish(double final_loss) {
    double now = mprt_now(), elapsed = now - prog.t_start;
    int64_t steps = prog.last - prog.first, steady = steps - prog.warmup;
    double v[3] = {(double)mprt_stats_plan_bytes(), (double)plan_calls(),
                   steady > 0 ? (now - prog.t_mark) / (double)steady : 0.0};
    mprt_metric_max(MPRT_WORLD, v, 3);
    prog.measured = v[2];
    if (mprt_mesh()->rank != 0) return;
    double rate = elapsed > 0 ? (double)(steps * prog.per_step) / elapsed : 0.0;
    char val[80] = "";
    if (prog.has_val) val_text(val, sizeof val);
    printf("done %lld steps in %.1fs | final loss %.7g | %.1f samples/s | comm %.2f MB max/rank "
           "| %.0f collectives%s\n",
           (long long)steps, elapsed, final_loss, rate, v[0] / 1e6, v[1], val);
    print_forecast();
    fflush(stdout);
}

double mprt_progress_measured(void) { return prog.measured; }
int64_t mprt_progress_warmup(void) { return prog.warmup; }

/* ───────────────────────────── profile ───────────────────────────── */

/* Seconds per steady-state step this rank spent waiting on its gradient all-reduces (start,
 * progress and join; all of the call under MPRT_GRAD_SYNC=blocking): the unhidden part. */
static double exposed_per_step(void) {
    int64_t steady = prog.last - prog.first - prog.warmup;
    double s = mprt_allreduce_exposed() - exposed_mark;
    return steady > 0 ? s / (double)steady : 0.0;
}

static cJSON *rank_json(void) {
    const MprtMesh *m = mprt_mesh();
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "rank", m->rank);
    cJSON_AddNumberToObject(r, "stage", m->s);
    cJSON_AddNumberToObject(r, "replica", m->j);
    cJSON_AddNumberToObject(r, "tensor_rank", m->k);
    cJSON_AddNumberToObject(r, "plan_bytes", (double)mprt_stats_plan_bytes());
    cJSON_AddNumberToObject(r, "grad_sync_exposed_s", exposed_per_step());
    cJSON *comm = cJSON_AddArrayToObject(r, "comm");
    for (int k = 0; k < MPRT_COLL__COUNT; k++)
        for (int g = 0; g < MPRT_GROUP__COUNT; g++) {
            MprtCommStat s = stats[k][g];
            if (s.calls == 0) continue;
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "kind", mprt_coll_name((MprtColl)k));
            cJSON_AddStringToObject(e, "group", mprt_group_name((MprtGroup)g));
            cJSON_AddNumberToObject(e, "bytes", (double)s.bytes);
            cJSON_AddNumberToObject(e, "calls", (double)s.calls);
            cJSON_AddNumberToObject(e, "seconds", s.seconds);
            cJSON_AddItemToArray(comm, e);
        }
    cJSON *tm = cJSON_AddArrayToObject(r, "timers");
    for (int i = 0; i < ntimers; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", timers[i].name);
        cJSON_AddNumberToObject(e, "seconds", timers[i].seconds);
        cJSON_AddNumberToObject(e, "calls", (double)timers[i].calls);
        cJSON_AddNumberToObject(e, "first_s", timers[i].first);
        cJSON_AddItemToArray(tm, e);
    }
    mprt__layers_json(r);
    mprt__memory_json(r);
    return r;
}

static cJSON *profile_json(const char *texts, int n) {
    const MprtMesh *m = mprt_mesh();
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "mprt_version", MPRT_VERSION);
    cJSON *mesh = cJSON_AddObjectToObject(root, "mesh");
    cJSON_AddNumberToObject(mesh, "S", m->S);
    cJSON_AddNumberToObject(mesh, "d", m->d);
    cJSON_AddNumberToObject(mesh, "t", m->t);
    cJSON_AddNumberToObject(root, "world_size", m->size);
    cJSON_AddNumberToObject(root, "elapsed_s", mprt_elapsed());
    /* the plan's step time against the steady-state one (mprt_progress_finish) */
    cJSON_AddNumberToObject(root, "predicted_step_s", prog.f.step_s);
    cJSON_AddNumberToObject(root, "measured_step_s", prog.measured);
    cJSON_AddNumberToObject(root, "warmup_steps", (double)prog.warmup);
    if (prog.has_val) { /* the last validation (trainer_eval.c) */
        cJSON *v = cJSON_AddObjectToObject(root, "validation");
        cJSON_AddNumberToObject(v, "step", (double)prog.val_step);
        cJSON_AddNumberToObject(v, "loss", prog.val_loss);
        if (prog.val_acc >= 0)
            cJSON_AddNumberToObject(v, "accuracy", prog.val_acc);
        else
            cJSON_AddNullToObject(v, "accuracy");
        cJSON_AddNumberToObject(v, "batches", (double)prog.val_batches);
    }
    cJSON *ranks = cJSON_AddArrayToObject(root, "ranks");
    for (int i = 0; i < n; i++, texts += strlen(texts) + 1) {
        cJSON *r = cJSON_Parse(texts);
        cJSON_AddItemToArray(ranks, r ? r : cJSON_CreateNull());
    }
    return root;
}

bool mprt_profile_write(const char *path, MprtErr *err) {
    cJSON *mine = rank_json();
    char *text = cJSON_PrintUnformatted(mine);
    cJSON_Delete(mine);
    if (!text) mprt_fatal("out of memory writing the profile");
    int n = 0;
    char *all = mprt__gather_text(text, &n);
    cJSON_free(text);
    if (!all) return true; /* not rank 0 */
    cJSON *root = profile_json(all, n);
    free(all);
    char *out = cJSON_Print(root);
    cJSON_Delete(root);
    if (!out) mprt_fatal("out of memory writing the profile");
    MprtAtomic w;
    bool ok = mprt__atomic_open(&w, path, err) && mprt__atomic_write(&w, out, strlen(out), err) &&
              mprt__atomic_write(&w, "\n", 1, err) && mprt__atomic_commit(&w, err);
    cJSON_free(out);
    return ok;
}
