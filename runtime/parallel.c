/*
 * parallel.c: the rank's CPU threads — how many, on which CPUs, and the small pool that runs
 * the kernels' loops on them.
 *
 * A rank computes with `threads` threads (the trainer's --threads, by default its share of
 * the node: the CPUs its node's ranks may run on, divided by their number). Everything runs on
 * this one pool, the calling thread plus threads − 1 workers: GEMMs (gemm_blas.c, with OpenBLAS
 * itself single-threaded) and every other loop that is worth it (elementwise ops, layernorm,
 * the optimizers, attention's per-head cores). A loop over n items is cut into at most `threads`
 * contiguous parts of equal size; part p is [p·n/P, (p+1)·n/P). The kernels are written so that
 * each element's result is computed by the same operations in the same order whatever the cut, so
 * results are bit-identical for every thread count (tests/runtime/test_rt_parallel.c checks this).
 *
 * Workers wait for a job by spinning briefly on an atomic generation counter (a kernel
 * usually follows a kernel within microseconds) and then sleep on a condition variable. They
 * never spin when the rank has more threads than CPUs, where spinning would take the core
 * from the thread it waits for. A job started from inside a job runs serially.
 *
 * CPU binding. Open MPI binds each rank to one core when it starts one or two ranks, so a rank
 * asked for two threads would run both on one core at half speed (measured: the transformer
 * benchmark's step goes from 1.2 s to 0.55 s when the binding is lifted). When a rank's CPU
 * mask holds fewer CPUs than its threads, mprt_set_threads widens it: the node's ranks agree
 * on the union of their masks and their launcher's (the parent process, Open MPI's daemon or
 * slurmstepd, keeps the allocation's CPUs), and rank i of the node takes the i-th block of
 * `threads` CPUs of that union, or the whole union when the blocks do not fit (an oversubscribed
 * node). Every thread of the process is moved, OpenBLAS's workers included (they already exist:
 * OpenBLAS starts them when the library loads). A launcher binding that already gives the rank
 * enough CPUs is left alone.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_* macros */
#include "internal.h"

#include <cblas.h>
#include <dirent.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_THREADS 256
#define SPIN_ROUNDS 20000 /* about 50–100 µs of pause instructions before a worker sleeps */

static struct {
    int threads; /* the caller + workers; 1 = no pool */
    bool spin;   /* threads ≤ CPUs of this rank: waiting threads may spin */
    pthread_t worker[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    atomic_uint gen;    /* bumped for every job (and for shutdown) */
    unsigned gen0;      /* gen when the workers were started */
    atomic_int pending; /* workers still running the current job */
    atomic_bool stop;   /* set before the gen bump that wakes the workers to exit */
    MprtParFn fn;       /* the current job, valid while pending > 0 */
    void *ctx;
    int64_t n;
    int parts;
    float *scratch;            /* mprt__par_scratch: parts × scratch_each floats */
    int64_t scratch_cap;       /* floats */
    char cpus[64];             /* "0-1" after a rebinding, else "" */
    int node_ranks, node_cpus; /* this node's ranks and the CPUs they may use, together */
} P = {.threads = 1,
       .mu = PTHREAD_MUTEX_INITIALIZER,
       .wake = PTHREAD_COND_INITIALIZER,
       .done = PTHREAD_COND_INITIALIZER};

static _Thread_local bool in_job;

/* Called by the calling thread before every job (mprt__set_progress_hook), never from inside
 * one: the gradient all-reduces in flight progress only inside MPI calls, and the kernels'
 * calls are the rank's densest points between which to make them (docs/runtime.md, "Overlap").
 * Workers never call it, so MPI stays on the thread that initialised it. */
static void (*progress_hook)(void);

void mprt__set_progress_hook(void (*hook)(void)) { progress_hook = hook; }

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* ───────────────────────────── the pool ───────────────────────────── */

static void run_part(int p) {
    int64_t lo = p * P.n / P.parts, hi = (p + 1) * P.n / P.parts;
    if (lo < hi) P.fn(P.ctx, lo, hi, p);
}

/* Waits until gen differs from seen; false when the pool is stopping. */
static bool wait_job(unsigned seen) {
    for (int i = 0; P.spin && i < SPIN_ROUNDS; i++) {
        if (atomic_load_explicit(&P.gen, memory_order_acquire) != seen)
            return !atomic_load_explicit(&P.stop, memory_order_acquire);
        cpu_relax();
    }
    pthread_mutex_lock(&P.mu);
    while (atomic_load_explicit(&P.gen, memory_order_acquire) == seen &&
           !atomic_load_explicit(&P.stop, memory_order_acquire))
        pthread_cond_wait(&P.wake, &P.mu);
    pthread_mutex_unlock(&P.mu);
    return !atomic_load_explicit(&P.stop, memory_order_acquire);
}

static void *worker_main(void *arg) {
    int id = (int)(intptr_t)arg; /* 1 .. threads−1; the caller is part 0 */
    unsigned seen = P.gen0;
    in_job = true;
    while (wait_job(seen)) {
        seen = atomic_load_explicit(&P.gen, memory_order_acquire);
        if (id < P.parts) run_part(id);
        if (atomic_fetch_sub_explicit(&P.pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&P.mu);
            pthread_cond_signal(&P.done);
            pthread_mutex_unlock(&P.mu);
        }
    }
    return NULL;
}

static void pool_stop(void) {
    if (P.threads <= 1) return;
    pthread_mutex_lock(&P.mu);
    /* stop first: a spinning worker that sees the bump must not take it for a job */
    atomic_store_explicit(&P.stop, true, memory_order_release);
    atomic_fetch_add_explicit(&P.gen, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.mu);
    for (int i = 1; i < P.threads; i++)
        pthread_join(P.worker[i], NULL);
    atomic_store_explicit(&P.stop, false, memory_order_release);
    P.threads = 1;
}

static void pool_start(int threads) {
    P.threads = 1;
    P.gen0 = atomic_load_explicit(&P.gen, memory_order_acquire);
    for (int i = 1; i < threads; i++) {
        if (pthread_create(&P.worker[i], NULL, worker_main, (void *)(intptr_t)i) != 0)
            mprt_fatal("pthread_create failed for worker thread %d of %d", i, threads);
        P.threads = i + 1;
    }
}

void mprt__parallel_for(int64_t n, int64_t grain, MprtParFn fn, void *ctx) {
    if (n <= 0) return;
    if (progress_hook && !in_job) progress_hook();
    int64_t most = grain > 0 ? (n + grain - 1) / grain : n;
    int parts = P.threads < most ? P.threads : (int)most;
    if (parts <= 1 || in_job) {
        fn(ctx, 0, n, 0);
        return;
    }
    P.fn = fn, P.ctx = ctx, P.n = n, P.parts = parts;
    atomic_store_explicit(&P.pending, P.threads - 1, memory_order_release);
    pthread_mutex_lock(&P.mu);
    atomic_fetch_add_explicit(&P.gen, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.mu);
    in_job = true;
    run_part(0);
    in_job = false;
    for (int i = 0; P.spin && i < SPIN_ROUNDS; i++) {
        if (atomic_load_explicit(&P.pending, memory_order_acquire) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&P.mu);
    while (atomic_load_explicit(&P.pending, memory_order_acquire) != 0)
        pthread_cond_wait(&P.done, &P.mu);
    pthread_mutex_unlock(&P.mu);
}

int mprt_threads(void) { return P.threads; }

float *mprt__par_scratch(int64_t each) {
    int64_t need = each * P.threads;
    if (need > P.scratch_cap) {
        free(P.scratch);
        P.scratch = malloc((size_t)need * sizeof(float));
        if (!P.scratch)
            mprt_fatal("out of memory for %lld floats of kernel scratch", (long long)need);
        P.scratch_cap = need;
    }
    return P.scratch;
}

void mprt__par_finalize(void) {
    pool_stop();
    free(P.scratch);
    P.scratch = NULL;
    P.scratch_cap = 0;
}

/* ───────────────────────────── CPUs and binding ───────────────────────────── */

/* Moves every thread of this process (the main thread, OpenBLAS's, MPI's) onto `set`. */
static void bind_process(const cpu_set_t *set) {
    DIR *d = opendir("/proc/self/task");
    if (!d) {
        sched_setaffinity(0, sizeof *set, set);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long tid = atol(de->d_name);
        if (tid > 0) sched_setaffinity((pid_t)tid, sizeof *set, set);
    }
    closedir(d);
}

/* "0-1,4" for a set. */
static void cpus_str(char *buf, size_t n, const cpu_set_t *set) {
    size_t at = 0;
    buf[0] = '\0';
    for (int c = 0; c < CPU_SETSIZE && at + 24 < n; c++) {
        if (!CPU_ISSET(c, set) || (c > 0 && CPU_ISSET(c - 1, set))) continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, set))
            e++;
        at += (size_t)snprintf(buf + at, n - at, e > c ? "%s%d-%d" : "%s%d", at ? "," : "", c, e);
    }
}

/* The node's ranks agree on the union of their sets; returns this rank's place and count. */
static void node_union(cpu_set_t *uni, const cpu_set_t *mine, int *local_rank, int *local_size) {
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, local_rank);
    MPI_Comm_size(node, local_size);
    MPI_Allreduce(mine, uni, (int)sizeof *mine, MPI_BYTE, MPI_BOR, node);
    MPI_Comm_free(&node);
}

/* The i-th block of `threads` CPUs of uni, or all of uni when the blocks do not fit. */
static void block_of(cpu_set_t *out, const cpu_set_t *uni, int i, int nblocks, int threads) {
    if (CPU_COUNT(uni) < nblocks * threads) {
        *out = *uni;
        return;
    }
    CPU_ZERO(out);
    int seen = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, uni)) continue;
        if (seen >= i * threads && seen < (i + 1) * threads) CPU_SET(c, out);
        seen++;
    }
}

int mprt_set_threads(int threads) {
    cpu_set_t mine, uni;
    CPU_ZERO(&mine);
    if (sched_getaffinity(0, sizeof mine, &mine) != 0 || CPU_COUNT(&mine) == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        for (long c = 0; c < online && c < CPU_SETSIZE; c++)
            CPU_SET((int)c, &mine);
    }
    /* What the node lets us use: our mask and our launcher's (the parent, mpirun's daemon or
     * slurmstepd, keeps the allocation's CPUs), over all the node's ranks. */
    cpu_set_t wide = mine, parent;
    CPU_ZERO(&parent);
    if (sched_getaffinity(getppid(), sizeof parent, &parent) == 0) CPU_OR(&wide, &wide, &parent);
    int lr = 0, ls = 1;
    int inited = 0;
    MPI_Initialized(&inited);
    if (inited)
        node_union(&uni, &wide, &lr, &ls);
    else
        uni = wide;
    P.node_ranks = ls, P.node_cpus = CPU_COUNT(&uni);
    if (threads <= 0) threads = CPU_COUNT(&uni) / ls;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    P.cpus[0] = '\0';
    if (CPU_COUNT(&mine) < threads) {
        cpu_set_t to;
        block_of(&to, &uni, lr, ls, threads);
        if (!CPU_EQUAL(&to, &mine)) {
            bind_process(&to);
            cpus_str(P.cpus, sizeof P.cpus, &to);
            mine = to;
        }
    }
    P.spin = threads <= CPU_COUNT(&mine);
    openblas_set_num_threads(1); /* the pool threads GEMMs itself (gemm_blas.c) */
    pool_stop();
    pool_start(threads);
    return threads;
}

const char *mprt_rebound_cpus(void) { return P.cpus; }

void mprt__node_share(int *ranks, int *cpus) { *ranks = P.node_ranks, *cpus = P.node_cpus; }
