/*
 * comm_wait.c: what the communication timeout costs a collective (docs/benchmarks.md,
 * "Communication timeout: the cost of polling").
 *
 *   mpirun -np 2 bench_comm_wait [rounds]
 *
 * Since the timeout (runtime/comm_wait.c), every runtime collective is posted non-blocking
 * and polled against a deadline instead of calling MPI's blocking collective. Per message
 * size, three ways of summing the same buffer over the world are timed, interleaved round by
 * round so that a loaded machine slows all three alike:
 *
 *   blocking   MPI_Allreduce (Open MPI's tuned blocking algorithms: the runtime before)
 *   nb+wait    MPI_Iallreduce + MPI_Wait (the non-blocking algorithm alone)
 *   runtime    mprt_allreduce (MPI_Iallreduce + the polled, deadline-checked wait)
 *   off        mprt_allreduce with the timeout off (--comm-timeout 0: MPI_Allreduce again)
 *
 * and rank 0 prints the median per-call time of each over the rounds, in microseconds.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "mprt.h"

enum { NSIZES = 6, NWAYS = 4 };
static const int sizes[NSIZES] = {1, 16, 256, 4096, 65536, 1048576}; /* floats */

/* Seconds per call of `way` over `n` floats (the slowest rank's mean over a batch of calls). */
static double per_call(int way, float *buf, int n) {
    int reps = n >= 65536 ? 4 : 64;
    double t0 = MPI_Wtime();
    for (int i = 0; i < reps; i++) {
        if (way == 0) {
            MPI_Allreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        } else if (way == 1) {
            MPI_Request rq;
            MPI_Iallreduce(MPI_IN_PLACE, buf, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &rq);
            MPI_Wait(&rq, MPI_STATUS_IGNORE);
        } else {
            mprt_set_comm_timeout(way == 2 ? MPRT_COMM_TIMEOUT_DEFAULT : 0);
            mprt_allreduce(MPRT_WORLD, buf, n);
        }
        for (int k = 0; k < (n < 16 ? n : 16); k++)
            buf[k] = 1.0f; /* keep the sums finite */
    }
    double dt = (MPI_Wtime() - t0) / reps;
    MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return dt;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int size = 0;
    MPI_Init(&argc, &argv);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    mprt_init(&argc, &argv, 1, 1, size);
    int rounds = argc > 1 ? atoi(argv[1]) : 15;
    if (rounds < 1) rounds = 1;
    float *buf = calloc((size_t)sizes[NSIZES - 1], sizeof *buf);
    double *t = malloc(sizeof *t * (size_t)rounds * NWAYS);
    if (!buf || !t) return 1;
    if (mprt_mesh()->rank == 0)
        printf("%d ranks, %d rounds, median microseconds per call\n%10s %10s %10s %10s %10s %s\n",
               size, rounds, "floats", "blocking", "nb+wait", "runtime", "off", "runtime/blocking");
    for (int s = 0; s < NSIZES; s++) {
        for (int r = 0; r < rounds; r++)
            for (int w = 0; w < NWAYS; w++)
                t[w * rounds + r] = per_call(w, buf, sizes[s]);
        for (int w = 0; w < NWAYS; w++)
            qsort(t + w * rounds, (size_t)rounds, sizeof *t, cmp);
        double med[NWAYS];
        for (int w = 0; w < NWAYS; w++)
            med[w] = 1e6 * t[w * rounds + rounds / 2];
        if (mprt_mesh()->rank == 0)
            printf("%10d %10.2f %10.2f %10.2f %10.2f %8.2f\n", sizes[s], med[0], med[1], med[2],
                   med[3], med[2] / med[0]);
    }
    free(buf);
    free(t);
    mprt_finalize();
    MPI_Finalize();
    return 0;
}
