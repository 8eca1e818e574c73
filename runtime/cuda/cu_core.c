/*
 * cu_core.c: the device context of mprt_cuda — which GPU this process drives, its two
 * streams and its cuBLAS handle — and the error path every checked call ends in.
 *
 * Choosing the device. A CUDA trainer runs one process per GPU under mpirun. The local rank
 * (this process's index among the processes on its node) comes from splitting the world by
 * shared memory (MPI_Comm_split_type), which works under every launcher, unlike the
 * OpenMPI-only OMPI_COMM_WORLD_LOCAL_RANK. Local rank i drives device i. When there are more
 * local ranks than GPUs, NCCL cannot run (it refuses two ranks of one communicator on one
 * device), so the collectives must be staged through host memory over MPI: that is what
 * `--comm mpi` asks for, and what `--comm auto` chooses when the node has exactly one GPU
 * (the single-GPU test machine). Any other shortage is a misconfigured launch and a
 * one-line error, agreed by all ranks through mprt_exit_if_any so exactly one line prints.
 *
 * Streams. Kernels and cuBLAS run on the compute stream; NCCL runs on the communication
 * stream (comm_nccl.c orders the two with events). Both are created non-blocking so the
 * legacy default stream never serialises them.
 *
 * Errors. A failing CUDA, cuBLAS or NCCL call is never recoverable in a trainer: the
 * message names the call (its source text), the rank, the device, the library's error name
 * and string and the source line; then every NCCL communicator is aborted (a peer blocked
 * in a collective with us would otherwise hang forever) and MPI_Abort ends the job.
 */
#include "cu_internal.h"
#include "mprt.h"

#include <mpi.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    bool ready;
    int device;
    MprtCuComm mode;
    cudaStream_t compute, comm;
    cublasHandle_t blas;
    bool failing; /* set while the error path runs, so it cannot recurse */
} C = {.device = -1};

/* ─────────────────────────────── errors ─────────────────────────────── */

static int world_rank(void) {
    int inited = 0, finalized = 0, rank = -1;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

void mprt_cu_fail(const char *call, const char *reason, const char *file, int line) {
    int rank = world_rank();
    fflush(stdout);
    if (rank >= 0)
        fprintf(stderr, "%s: rank %d (device %d): %s failed: %s [%s:%d]\n", mprt_progname(), rank,
                C.device, call, reason, file, line);
    else
        fprintf(stderr, "%s: device %d: %s failed: %s [%s:%d]\n", mprt_progname(), C.device, call,
                reason, file, line);
    fflush(stderr);
    if (!C.failing) {
        C.failing = true;
        mprt_cu_comm_abort_all();
    }
    if (rank >= 0) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

void mprt_cu_check_cuda(int err, const char *call, const char *file, int line) {
    if (err == (int)cudaSuccess) return;
    char why[256];
    snprintf(why, sizeof why, "%s (%s)", cudaGetErrorName((cudaError_t)err),
             cudaGetErrorString((cudaError_t)err));
    mprt_cu_fail(call, why, file, line);
}

void mprt_cu_check_cublas(int status, const char *call, const char *file, int line) {
    if (status == (int)CUBLAS_STATUS_SUCCESS) return;
    char why[256];
    snprintf(why, sizeof why, "%s (%s)", cublasGetStatusName((cublasStatus_t)status),
             cublasGetStatusString((cublasStatus_t)status));
    mprt_cu_fail(call, why, file, line);
}

void mprt_cu_check_nccl(int result, const char *call, const char *file, int line) {
    if (result == (int)ncclSuccess || result == (int)ncclInProgress) return;
    char why[512];
    const char *detail = ncclGetLastError(NULL);
    snprintf(why, sizeof why, "%s%s%s", ncclGetErrorString((ncclResult_t)result),
             detail && *detail ? ": " : "", detail ? detail : "");
    mprt_cu_fail(call, why, file, line);
}

/* ─────────────────────────────── context ─────────────────────────────── */

int mprt_cu_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the sticky error: no device is not a failure here */
        return 0;
    }
    return n;
}

int mprt_cu_device(void) { return C.device; }
MprtCuComm mprt_cu_comm_mode(void) { return C.mode; }

static void need_ready(const char *what) {
    if (!C.ready) mprt_cu_fail(what, "the CUDA context is not initialised", __FILE__, __LINE__);
}

cudaStream_t mprt_cu_stream(void) {
    need_ready("mprt_cu_stream");
    return C.compute;
}
cudaStream_t mprt_cu_comm_stream(void) {
    need_ready("mprt_cu_comm_stream");
    return C.comm;
}
cublasHandle_t mprt_cu_cublas(void) {
    need_ready("mprt_cu_cublas");
    return C.blas;
}

bool mprt_cu_init_local(int device) {
    if (C.ready) return true;
    int n = mprt_cu_device_count();
    if (n <= 0 || device < 0 || device >= n) return false;
    C.device = device;
    CU_CHECK(cudaSetDevice(device));
    CU_CHECK(cudaStreamCreateWithFlags(&C.compute, cudaStreamNonBlocking));
    CU_CHECK(cudaStreamCreateWithFlags(&C.comm, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&C.blas));
    CUBLAS_CHECK(cublasSetStream(C.blas, C.compute));
    CUBLAS_CHECK(cublasSetMathMode(C.blas, CUBLAS_DEFAULT_MATH));
    C.ready = true;
    return true;
}

bool mprt_cu_comm_parse(const char *s, MprtCuComm *out) {
    static const char *const names[] = {"auto", "nccl", "mpi"};
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *out = (MprtCuComm)i;
            return true;
        }
    return false;
}

const char *mprt_cu_comm_name(MprtCuComm c) {
    return c == MPRT_CU_COMM_NCCL ? "nccl" : c == MPRT_CU_COMM_MPI ? "mpi" : "auto";
}

/* This process's index and the process count on its node. */
static void local_rank(int *rank, int *size) {
    MPI_Comm node;
    int r = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &r);
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, r, MPI_INFO_NULL, &node) !=
        MPI_SUCCESS)
        mprt_fatal("MPI_Comm_split_type failed: cannot find the local rank");
    MPI_Comm_rank(node, rank);
    MPI_Comm_size(node, size);
    MPI_Comm_free(&node);
}

/* The mode the devices allow, or a reason in msg why none does. */
static MprtCuComm pick_mode(MprtCuComm want, int lsize, int ndev, char *msg, size_t cap) {
    msg[0] = '\0';
    if (ndev <= 0) {
        snprintf(msg, cap,
                 "no CUDA device found (a CUDA trainer needs a GPU; build the C "
                 "target with --target c to train on CPUs)");
        return want;
    }
    if (want == MPRT_CU_COMM_MPI || lsize <= ndev)
        return want == MPRT_CU_COMM_AUTO ? MPRT_CU_COMM_NCCL : want;
    if (want == MPRT_CU_COMM_AUTO && ndev == 1) return MPRT_CU_COMM_MPI;
    snprintf(msg, cap,
             "%d ranks on this node but %d GPU%s: NCCL needs one GPU per rank (launch at most %d "
             "ranks per node, or pass --comm mpi to share GPUs through host-staged MPI)",
             lsize, ndev, ndev == 1 ? "" : "s", ndev);
    return want;
}

void mprt_cu_init(MprtCuComm comm) {
    int lrank = 0, lsize = 1;
    local_rank(&lrank, &lsize);
    int ndev = mprt_cu_device_count();
    char msg[512];
    MprtCuComm mode = pick_mode(comm, lsize, ndev, msg, sizeof msg);
    mprt_exit_if_any(msg[0] != '\0', msg);
    /* One node may need host staging while another does not: all ranks take the same. */
    int m = (int)mode;
    MPI_Allreduce(MPI_IN_PLACE, &m, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    C.mode = (MprtCuComm)m;
    if (!mprt_cu_init_local(lrank % ndev))
        mprt_fatal("cannot use CUDA device %d of %d", lrank % ndev, ndev);
    mprt_cu_comm_setup(C.mode, lsize, ndev);
}

void mprt_cu_finalize(void) {
    if (!C.ready) return;
    mprt_cu_sync();
    mprt_cu_comm_teardown();
    CUBLAS_CHECK(cublasDestroy(C.blas));
    CU_CHECK(cudaStreamDestroy(C.comm));
    CU_CHECK(cudaStreamDestroy(C.compute));
    C.ready = false;
}

void mprt_cu_set_tf32(bool on) {
    CUBLAS_CHECK(
        cublasSetMathMode(mprt_cu_cublas(), on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

void mprt_cu_sync(void) {
    need_ready("mprt_cu_sync");
    CU_CHECK(cudaStreamSynchronize(C.comm));
    CU_CHECK(cudaStreamSynchronize(C.compute));
}

/* ─────────────────────────────── memory ─────────────────────────────── */

void *mprt_cu_malloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) return NULL;
    CU_CHECK(cudaMalloc(&p, bytes));
    return p;
}

void mprt_cu_free(void *p) {
    if (p) CU_CHECK(cudaFree(p));
}

void mprt_cu_memset0(void *dst, size_t bytes) {
    if (bytes) CU_CHECK(cudaMemsetAsync(dst, 0, bytes, mprt_cu_stream()));
}

void mprt_cu_copy(void *dst, const void *src, size_t bytes) {
    if (bytes)
        CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, mprt_cu_stream()));
}

void mprt_cu_upload(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, mprt_cu_stream()));
    CU_CHECK(cudaStreamSynchronize(C.compute));
}

void mprt_cu_download(void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CU_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, mprt_cu_stream()));
    CU_CHECK(cudaStreamSynchronize(C.compute));
}
