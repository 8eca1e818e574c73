/*
 * comm_wait.c: every wait of the runtime on other ranks, under a deadline (docs/runtime.md,
 * "A rank that stops").
 *
 * A rank that stops (SIGSTOP, a debugger, a node swapping) or hangs outside MPI is never
 * reported by MPI: the other ranks wait in their next collective forever. So every wait goes
 * through mprt__wait, which polls the call's request instead of blocking, against the
 * communication timeout: --comm-timeout SECONDS or MPRT_COMM_TIMEOUT, 300 s by default, 0 for
 * none. A rank whose wait outlives the timeout knows something is wrong but not what: any rank
 * of its group, or one further along a chain of waits, may be the stuck one. So it asks.
 *
 * It sends a query (one int) to every other rank over a communicator of its own, a duplicate
 * of the world, so that the plan's traffic and byte counters never see it, and waits a grace
 * period (the timeout, at most 30 s) for the answers. A rank answers from inside any wait of
 * its own: mprt__wait probes for queries every few milliseconds while it polls. The ranks that
 * answer are alive and waiting; those that do not are stopped, dead, or busy outside the
 * runtime's waits for longer than the grace period: the ones holding the job up. The lowest
 * rank among the asker and those that answered prints one line naming the silent ranks and
 * aborts the job (mprt_fatal: MPI_Abort, exit status 1); another asker stays quiet, answering
 * queries, until the abort reaches it, and reports itself only if none has come after
 * another timeout. When every rank answers, they are all waiting on each other: a deadlock,
 * said as such.
 *
 * On the common path nothing is sent: the cost is a non-blocking call polled with MPI_Test
 * (MPI's blocking calls poll the same way inside) plus a clock read per poll and a probe for
 * queries every PROBE_EVERY seconds.
 */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define PROBE_EVERY 0.005 /* seconds between probes for queries while a wait polls */
#define GRACE_MAX 30.0    /* seconds the asker waits for answers, at most */

enum { TAG_QUERY = 7101, TAG_ANSWER = 7102 };

static struct {
    MPI_Comm side; /* the queries' own communicator; MPI_COMM_NULL before mprt__wait_init */
    int rank, size;
    double timeout;   /* seconds; 0: wait forever */
    bool timeout_set; /* by mprt_set_comm_timeout, which the environment does not override */
} W = {.side = MPI_COMM_NULL, .timeout = MPRT_COMM_TIMEOUT_DEFAULT};

void mprt_set_comm_timeout(double seconds) {
    W.timeout = seconds > 0 ? seconds : 0;
    W.timeout_set = true;
}

double mprt_comm_timeout(void) { return W.timeout; }

/* MPRT_COMM_TIMEOUT, unless a flag set the timeout. */
static void timeout_from_env(void) {
    const char *v = getenv("MPRT_COMM_TIMEOUT");
    if (W.timeout_set || !v || !*v) return;
    char *end = NULL;
    double s = strtod(v, &end);
    if (end == v || *end || !(s >= 0 && s <= 1e9))
        mprt_fatal("MPRT_COMM_TIMEOUT=%.32s: expected seconds (0: no timeout)", v);
    W.timeout = s;
}

void mprt__wait_init(void) {
    timeout_from_env();
    MPI_Comm_rank(MPI_COMM_WORLD, &W.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &W.size);
    if (MPI_Comm_dup(MPI_COMM_WORLD, &W.side) != MPI_SUCCESS)
        mprt_fatal("MPI_Comm_dup of the world for the communication timeout failed");
    MPI_Comm_set_errhandler(W.side, MPI_ERRORS_RETURN);
}

void mprt__wait_finalize(void) {
    int down = 0; /* after the program's own MPI_Finalize (the C API) the handle is just dropped */
    MPI_Finalized(&down);
    if (W.side != MPI_COMM_NULL && !down) MPI_Comm_free(&W.side);
    W.side = MPI_COMM_NULL;
}

/* Answers every query that has arrived ("alive"). The asker posted its receive before its
 * query, so the blocking send of one int completes at once. */
static void answer(void) {
    if (W.side == MPI_COMM_NULL) return;
    int flag = 1;
    while (flag) {
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_QUERY, W.side, &flag, &st) != MPI_SUCCESS) return;
        if (!flag) return;
        int q = 0, a = 1;
        MPI_Recv(&q, 1, MPI_INT, st.MPI_SOURCE, TAG_QUERY, W.side, MPI_STATUS_IGNORE);
        MPI_Send(&a, 1, MPI_INT, st.MPI_SOURCE, TAG_ANSWER, W.side);
    }
}

static void nap(void) {
    struct timespec ts = {0, 1000000}; /* 1 ms */
    nanosleep(&ts, NULL);
}

/* Queries every other rank and waits up to `grace` seconds for the answers: heard[r] is set
 * for each rank that answered (and for this rank). Returns false if it could not ask. */
static bool ask(bool *heard, double grace) {
    static const int q = 1; /* the query; a send to a stopped rank may read it later */
    int n = W.size, *ans = calloc((size_t)n, sizeof *ans), posted = 0;
    MPI_Request *rq = malloc(2 * (size_t)n * sizeof *rq);
    bool ok = ans && rq;
    for (; ok && posted < n; posted++) {
        int r = posted;
        rq[r] = rq[n + r] = MPI_REQUEST_NULL;
        if (r == W.rank) continue;
        ok = MPI_Irecv(&ans[r], 1, MPI_INT, r, TAG_ANSWER, W.side, &rq[r]) == MPI_SUCCESS &&
             MPI_Isend(&q, 1, MPI_INT, r, TAG_QUERY, W.side, &rq[n + r]) == MPI_SUCCESS;
    }
    int left = n - 1;
    heard[W.rank] = true;
    for (double end = MPI_Wtime() + grace; ok && left > 0 && MPI_Wtime() < end; nap()) {
        answer();
        for (int r = 0; r < n; r++) {
            int done = 0;
            if (r == W.rank || heard[r]) continue;
            if (MPI_Test(&rq[r], &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && done)
                heard[r] = true, left--;
        }
    }
    for (int r = 0; r < posted; r++) { /* no late answer may land in freed memory */
        if (rq[r] != MPI_REQUEST_NULL && !heard[r]) {
            MPI_Cancel(&rq[r]);
            MPI_Wait(&rq[r], MPI_STATUS_IGNORE);
        }
        if (rq[n + r] != MPI_REQUEST_NULL) MPI_Request_free(&rq[n + r]);
    }
    free(ans);
    free(rq);
    return ok;
}

/* "1, 3" (at most a line's worth) of the ranks not heard from; how many. */
static int silent_list(const bool *heard, char *out, size_t cap) {
    int count = 0;
    size_t len = 0;
    out[0] = '\0';
    for (int r = 0; r < W.size; r++) {
        if (heard[r]) continue;
        if (count++ < 16 && len + 16 < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s%d", len ? ", " : "", r);
        else if (count == 17 && len + 8 < cap)
            len += (size_t)snprintf(out + len, cap - len, ", ...");
    }
    return count;
}

/* The deadline of `call` passed: find the ranks holding the job up and abort it. */
static void timed_out(const char *call, const char *group) {
    double grace = W.timeout < GRACE_MAX ? W.timeout : GRACE_MAX;
    bool *heard = W.side != MPI_COMM_NULL ? calloc((size_t)W.size, sizeof *heard) : NULL;
    bool asked = heard && ask(heard, grace); /* not before mprt_init (the C API's agreement) */
    int lowest = W.rank;
    for (int r = 0; asked && r < W.rank; r++)
        if (heard[r]) {
            lowest = r;
            break;
        }
    /* A lower rank that answered reports; this one answers queries until the abort. */
    for (double end = MPI_Wtime() + W.timeout + grace; lowest != W.rank && MPI_Wtime() < end; nap())
        answer();
    char who[160] = "";
    int silent = asked ? silent_list(heard, who, sizeof who) : -1;
    free(heard);
    char msg[256];
    snprintf(msg, sizeof msg, "%s on the %s group: no progress in %g s (--comm-timeout)", call,
             group, W.timeout);
    if (silent > 0)
        mprt_fatal("%s; rank%s %s did not answer within %g s: stopped, dead, or busy outside "
                   "MPI",
                   msg, silent > 1 ? "s" : "", who, grace);
    if (silent == 0)
        mprt_fatal("%s; every rank answers and is waiting: the ranks wait on each other "
                   "(a deadlock)",
                   msg);
    mprt_fatal("%s; could not ask the other ranks which one is stuck", msg);
}

int mprt__wait(MPI_Request *req, const char *call, const char *group) {
    int done = 0, rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS || done) return rc;
    double start = MPI_Wtime(), probe = start;
    while (!done) {
        double now = MPI_Wtime();
        if (now >= probe) {
            answer();
            probe = now + PROBE_EVERY;
        }
        if (W.timeout > 0 && now - start > W.timeout) timed_out(call, group);
        rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}
