/*
 * test_rt_threads.c: mprt_set_threads — the thread count and where the rank's threads run.
 *
 * Usage: mpirun -np R [--bind-to core|none] test_rt_threads THREADS
 *
 * Each rank records the CPU mask its launcher gave it and calls mprt_set_threads(THREADS). The
 * rule (runtime/mprt_kernels.h) is then checked on every rank, against U, the union over the
 * node's ranks of their launcher masks and their parents' (the CPUs the node lets the job use):
 *   - a rank whose launcher mask already holds THREADS CPUs keeps it, and reports no rebinding;
 *   - else, when U holds THREADS CPUs for every rank of the node, the rank runs on exactly
 *     THREADS CPUs of U, disjoint from every other rank's;
 *   - else (an oversubscribed node) it runs on all of U;
 *   - every thread of the process (OpenBLAS's workers too, started when the library loaded)
 *     ends up on the rank's mask, and mprt_threads() is the count asked for (or the default).
 * Prints one line per rank, "test_rt_threads: rank R: T threads, CPUs A -> B (rebound|kept)",
 * and exits non-zero on any failed check.
 */
#define _GNU_SOURCE
#include "mprt.h"
#include "rt_check.h"

#include <dirent.h>
#include <mpi.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cpu_set_t mask_of(pid_t tid) {
    cpu_set_t s;
    CPU_ZERO(&s);
    if (sched_getaffinity(tid, sizeof s, &s) != 0) CPU_ZERO(&s);
    return s;
}

static void show(char *buf, size_t n, const cpu_set_t *s) {
    size_t at = 0;
    buf[0] = '\0';
    for (int c = 0; c < CPU_SETSIZE && at + 8 < n; c++)
        if (CPU_ISSET(c, s)) at += (size_t)snprintf(buf + at, n - at, at ? ",%d" : "%d", c);
}

/* Every thread of this process has the mask `want`; returns how many threads were checked. */
static int all_threads_on(const cpu_set_t *want) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    CHECK(d != NULL, "cannot list /proc/self/task");
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long tid = atol(de->d_name);
        if (tid <= 0) continue;
        cpu_set_t s = mask_of((pid_t)tid);
        CHECK(CPU_EQUAL(&s, want), "thread %ld is not on the rank's CPUs", tid);
        n++;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    cpu_set_t before = mask_of(0), parent = mask_of(getppid()), wide;
    CPU_OR(&wide, &before, &parent);
    MPI_Init(&argc, &argv);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int lr, ls;
    MPI_Comm_rank(node, &lr);
    MPI_Comm_size(node, &ls);
    cpu_set_t uni;
    MPI_Allreduce(&wide, &uni, (int)sizeof wide, MPI_BYTE, MPI_BOR, node);

    int got = mprt_set_threads(threads);
    int want_threads = threads > 0 ? threads : CPU_COUNT(&uni) / ls > 0 ? CPU_COUNT(&uni) / ls : 1;
    CHECK(got == want_threads, "mprt_set_threads(%d) returned %d, want %d", threads, got,
          want_threads);
    CHECK(mprt_threads() == got, "mprt_threads() %d, set %d", mprt_threads(), got);

    cpu_set_t after = mask_of(0);
    bool rebound = *mprt_rebound_cpus() != '\0';
    if (CPU_COUNT(&before) >= got) {
        CHECK(CPU_EQUAL(&after, &before), "a launcher mask with enough CPUs must be kept");
        CHECK(!rebound, "reports a rebinding (%s) it should not have made", mprt_rebound_cpus());
    } else if (CPU_COUNT(&uni) >= ls * got) {
        cpu_set_t in;
        CPU_AND(&in, &after, &uni);
        CHECK(CPU_COUNT(&after) == got, "runs on %d CPUs, want %d", CPU_COUNT(&after), got);
        CHECK(CPU_EQUAL(&in, &after), "runs on CPUs outside the node's set");
        CHECK(rebound, "moved without saying so");
        cpu_set_t *all = malloc((size_t)ls * sizeof *all);
        MPI_Allgather(&after, (int)sizeof after, MPI_BYTE, all, (int)sizeof after, MPI_BYTE, node);
        for (int i = 0; i < ls; i++) {
            if (i == lr) continue;
            cpu_set_t both;
            CPU_AND(&both, &after, &all[i]);
            CHECK(CPU_COUNT(&both) == 0, "shares CPUs with node rank %d", i);
        }
        free(all);
    } else {
        CHECK(CPU_EQUAL(&after, &uni), "an oversubscribed node: every rank runs on all its CPUs");
    }
    int n = all_threads_on(&after);
    CHECK(n >= 1, "no threads found");

    char a[256], b[256];
    show(a, sizeof a, &before);
    show(b, sizeof b, &after);
    printf("test_rt_threads: rank %d: %d threads, CPUs %s -> %s (%s), %d OS threads checked\n", lr,
           got, a, b, rebound ? "rebound" : "kept", n);
    MPI_Comm_free(&node);
    int bad = failures, any = 0;
    MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Finalize();
    return any ? 1 : 0;
}
