/*
 * trace.c: `--trace FILE`, a timeline of a few steady-state steps in the Chrome trace-event
 * format (the JSON that chrome://tracing, Perfetto and TensorBoard's trace viewer open).
 *
 * One process per rank (pid = world rank, named with its stage, replica and tensor rank), two
 * tracks each: "compute" (tid 0), a span per layer forward and backward per micro-batch and the
 * stage's idle waits, and "communication" (tid 1), a span per collective with its kind, group
 * and bytes, and per pipeline send or receive. Every span is a complete event ("ph": "X") with
 * its start and duration in microseconds from one origin all ranks take right after a common
 * collective, so the ranks' rows line up (to the collective's skew, microseconds).
 *
 * Where spans come from: the step's timer slots (trainer_step.c, MPRT_TIMED) give the compute
 * spans — the k-th forward of a layer within a step is micro-batch k, as the 1F1B order runs
 * each layer's micro-batches in order; the byte counters (log.c, mprt_stats_add) give the
 * communication spans, ending when the runtime counted them with the duration it measured.
 * A CUDA trainer's NCCL collectives are counted in batches (mprt_cu_stats_flush, inside the
 * step), so their spans have the counted bytes and the GPU-measured time but sit where the
 * flush ran; its layers are timed with the device synchronised, for --trace as for --profile.
 *
 * Bounded: only the `nsteps` steps right after the run's warm-up are recorded (--trace-steps,
 * default 2), and at most TRACE_MAX_EVENTS per rank; the file says when that cap cut it.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mprt_trainer.h" /* MPRT_IDLE */

#define TRACE_MAX_EVENTS (1 << 20)

typedef struct Ev {
    const char *name; /* the timer's name ("fwd.h1") or the collective's kind */
    double t0, dur;   /* seconds from the origin */
    int64_t step, bytes;
    int micro;       /* compute: the micro-batch; -1 for idle and the optimizer */
    MprtGroup group; /* communication */
    bool comm, idle; /* a communication span; the stage's idle wait */
} Ev;

static struct {
    bool armed, on;
    int64_t nsteps, from, to, step; /* record the steps from + 1 .. to */
    double origin, comm_end;        /* the last communication span's end, from the origin */
    Ev *ev;
    int n, cap;
    bool cut;   /* TRACE_MAX_EVENTS reached */
    int *micro; /* [nslots] spans of each timer slot in the current step */
    int nslots;
} TR;

void mprt_trace_arm(int64_t nsteps) {
    double dummy = 0;
    TR.armed = true, TR.nsteps = nsteps > 0 ? nsteps : 2;
    mprt_metric_max(MPRT_WORLD, &dummy, 1); /* every rank here: one origin for all */
    TR.origin = mprt_now();
}

void mprt__trace_window(int64_t first, int64_t from) {
    if (!TR.armed) return;
    TR.from = from, TR.to = from + TR.nsteps;
    mprt__trace_step(first);
}

void mprt__trace_step(int64_t done) {
    if (!TR.armed) return;
    TR.on = done >= TR.from && done < TR.to, TR.step = done + 1;
    if (TR.micro) memset(TR.micro, 0, sizeof(int) * (size_t)TR.nslots);
}

bool mprt__tracing(void) { return TR.on; }

static Ev *push(void) {
    if (TR.n == TRACE_MAX_EVENTS) {
        TR.cut = true;
        return NULL;
    }
    if (TR.n == TR.cap) {
        int cap = TR.cap ? 2 * TR.cap : 1024;
        Ev *e = realloc(TR.ev, sizeof *e * (size_t)cap);
        if (!e) mprt_fatal("out of memory for %d trace events", cap);
        TR.ev = e, TR.cap = cap;
    }
    return &TR.ev[TR.n++];
}

void mprt__trace_compute(int slot, const char *name, double t0, double t1) {
    int micro = -1;
    if (slot >= 0) {
        if (slot >= TR.nslots) {
            int *m = realloc(TR.micro, sizeof(int) * (size_t)(slot + 1));
            if (!m) mprt_fatal("out of memory for the trace");
            memset(m + TR.nslots, 0, sizeof(int) * (size_t)(slot + 1 - TR.nslots));
            TR.micro = m, TR.nslots = slot + 1;
        }
        micro = TR.micro[slot]++;
    }
    Ev *e = push();
    if (e)
        *e = (Ev){name,  t0 - TR.origin, t1 - t0, TR.step,          0,
                  micro, MPRT_WORLD,     false,   slot == MPRT_IDLE};
}

void mprt__trace_comm(MprtColl k, MprtGroup g, int64_t bytes, double seconds) {
    /* Recorded at completion, in host order; a pipeline send completes long after its post, so
     * its span starts at the post or at the end of the track's previous span, whichever is
     * later: one track's spans never overlap (Perfetto drops improperly nested ones). */
    double now = mprt_now() - TR.origin, t0 = now - seconds;
    if (t0 < TR.comm_end) t0 = TR.comm_end;
    if (t0 > now) t0 = now;
    TR.comm_end = now;
    Ev *e = push();
    if (e) *e = (Ev){mprt_coll_name(k), t0, now - t0, TR.step, bytes, -1, g, true, false};
}

/* ───────────────────────────── writing ───────────────────────────── */

static cJSON *meta(const char *what, int tid, const char *name) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", what);
    cJSON_AddStringToObject(m, "ph", "M");
    cJSON_AddNumberToObject(m, "pid", mprt_mesh()->rank);
    cJSON_AddNumberToObject(m, "tid", tid);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(m, "args"), "name", name);
    return m;
}

static cJSON *event(const Ev *v) {
    cJSON *e = cJSON_CreateObject(), *args;
    cJSON_AddStringToObject(e, "name", v->name);
    cJSON_AddStringToObject(e, "cat", v->comm ? "communication" : v->idle ? "idle" : "compute");
    cJSON_AddStringToObject(e, "ph", "X");
    cJSON_AddNumberToObject(e, "ts", v->t0 * 1e6);
    cJSON_AddNumberToObject(e, "dur", v->dur * 1e6);
    cJSON_AddNumberToObject(e, "pid", mprt_mesh()->rank);
    cJSON_AddNumberToObject(e, "tid", v->comm ? 1 : 0);
    args = cJSON_AddObjectToObject(e, "args");
    cJSON_AddNumberToObject(args, "step", (double)v->step);
    if (v->comm) {
        cJSON_AddStringToObject(args, "group", mprt_group_name(v->group));
        cJSON_AddNumberToObject(args, "bytes", (double)v->bytes);
    } else if (v->micro >= 0) {
        cJSON_AddNumberToObject(args, "micro", v->micro);
    }
    return e;
}

/* This rank's events as JSON array elements without the brackets (malloc'd). */
static char *rank_text(void) {
    const MprtMesh *m = mprt_mesh();
    char name[96];
    snprintf(name, sizeof name, "rank %d (stage %d, replica %d, tensor rank %d)", m->rank, m->s,
             m->j, m->k);
    cJSON *arr = cJSON_CreateArray();
    cJSON_AddItemToArray(arr, meta("process_name", 0, name));
    cJSON_AddItemToArray(arr, meta("thread_name", 0, "compute"));
    cJSON_AddItemToArray(arr, meta("thread_name", 1, "communication"));
    for (int i = 0; i < TR.n; i++)
        cJSON_AddItemToArray(arr, event(&TR.ev[i]));
    char *text = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    if (!text) mprt_fatal("out of memory writing the trace");
    size_t len = strlen(text);
    memmove(text, text + 1, len - 2); /* drop "[" and "]" */
    text[len - 2] = 0;
    return text;
}

bool mprt_trace_write(const char *path, MprtErr *err) {
    char *mine = rank_text(), head[160];
    double cut = TR.cut;
    int n = 0;
    mprt_metric_max(MPRT_WORLD, &cut, 1);
    char *all = mprt__gather_text(mine, &n);
    cJSON_free(mine);
    free(TR.ev), free(TR.micro);
    TR.ev = NULL, TR.micro = NULL, TR.n = TR.cap = TR.nslots = 0, TR.armed = TR.on = false;
    if (!all) return true; /* not rank 0 */
    snprintf(head, sizeof head,
             "{\"displayTimeUnit\": \"ms\", \"otherData\": {\"steps\": %lld, \"truncated\": %s},\n"
             "\"traceEvents\": [\n",
             (long long)TR.nsteps, cut > 0 ? "true" : "false");
    MprtAtomic w;
    bool ok = mprt__atomic_open(&w, path, err) && mprt__atomic_write(&w, head, strlen(head), err);
    const char *t = all;
    for (int i = 0; ok && i < n; t += strlen(t) + 1, i++)
        ok = (i == 0 || mprt__atomic_write(&w, ",\n", 2, err)) &&
             mprt__atomic_write(&w, t, strlen(t), err);
    ok = ok && mprt__atomic_write(&w, "\n]}\n", 4, err) && mprt__atomic_commit(&w, err);
    free(all); /* a failed write or commit has removed its temporary file */
    return ok;
}
