/*
 * test_cu_link.c: the CUDA side builds and links, and what can be checked without a GPU
 * holds. Runs everywhere nvcc is found, GPU or not (CI has none):
 *   - the NCCL, cuBLAS and CUDA runtime libraries linked are the versions of the headers
 *     compiled against (a stale library on the link path is caught here);
 *   - MPI links (the trainer's launcher and the host-staged mode need it);
 *   - every public function of mprt_cuda resolves (taken by address below), among them the
 *     forward and backward of every row of the elementwise table (runtime/mprt_ew.h), in f32
 *     and on 16-bit activations, and a bf16 trainer's kernels;
 *   - the --comm parser, and the device query, which must report 0 devices instead of
 *     failing when there is no GPU; a device index past the count is refused.
 */
#include "mprt.h"
#include "mprt_cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#include <stdio.h>
#include <string.h>

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

typedef void (*AnyFn)(void);

/* The GPU kernels of every row of runtime/mprt_ew.h's elementwise table: a row that
 * kernels_dense.cu does not expand is a link error here. */
#define EW_ENTRY_POINTS(name, saved)                                                               \
    (AnyFn) mprt_cu_##name##_forward, (AnyFn)mprt_cu_##name##_backward,                            \
        (AnyFn)mprt_cu_##name##_forward_bf16, (AnyFn)mprt_cu_##name##_backward_bf16,

/* Every entry point, so a missing definition is a link error of this test. */
static const AnyFn entry_points[] = {
    (AnyFn)mprt_cu_init,
    (AnyFn)mprt_cu_init_local,
    (AnyFn)mprt_cu_finalize,
    (AnyFn)mprt_cu_set_tf32,
    (AnyFn)mprt_cu_sync,
    (AnyFn)mprt_cu_malloc,
    (AnyFn)mprt_cu_free,
    (AnyFn)mprt_cu_memset0,
    (AnyFn)mprt_cu_upload,
    (AnyFn)mprt_cu_download,
    (AnyFn)mprt_cu_gemm,
    (AnyFn)mprt_cu_gemm_batched,
    (AnyFn)mprt_cu_linear_forward,
    (AnyFn)mprt_cu_linear_backward,
    MPRT_EW_UNARY(EW_ENTRY_POINTS) /* relu, gelu, tanh, …: every row of the table */
    (AnyFn) mprt_cu_add_forward,
    (AnyFn)mprt_cu_add_backward,
    (AnyFn)mprt_cu_accumulate,
    (AnyFn)mprt_cu_fill,
    (AnyFn)mprt_cu_layernorm_forward,
    (AnyFn)mprt_cu_layernorm_backward,
    (AnyFn)mprt_cu_dropout_forward,
    (AnyFn)mprt_cu_dropout_backward,
    (AnyFn)mprt_cu_conv2d_forward,
    (AnyFn)mprt_cu_conv2d_backward,
    (AnyFn)mprt_cu_maxpool2d_forward,
    (AnyFn)mprt_cu_maxpool2d_backward,
    (AnyFn)mprt_cu_embedding_forward,
    (AnyFn)mprt_cu_embedding_backward,
    (AnyFn)mprt_cu_attention_forward,
    (AnyFn)mprt_cu_attention_backward,
    (AnyFn)mprt_cu_cross_entropy_forward,
    (AnyFn)mprt_cu_cross_entropy_backward,
    (AnyFn)mprt_cu_mse_forward,
    (AnyFn)mprt_cu_mse_backward,
    (AnyFn)mprt_cu_sgd_step,
    (AnyFn)mprt_cu_adam_step,
    (AnyFn)mprt_cu_adamw_step,
    (AnyFn)mprt_cu_allreduce,
    (AnyFn)mprt_cu_allreduce_start,
    (AnyFn)mprt_cu_comm_join,
    (AnyFn)mprt_cu_allgather,
    (AnyFn)mprt_cu_reduce_scatter,
    (AnyFn)mprt_cu_slice,
    (AnyFn)mprt_cu_alltoall_b2f,
    (AnyFn)mprt_cu_alltoall_f2b,
    (AnyFn)mprt_cu_broadcast,
    (AnyFn)mprt_cu_sendrecv,
    (AnyFn)mprt_cu_send,
    (AnyFn)mprt_cu_recv,
    (AnyFn)mprt_cu_stats_flush,
    (AnyFn)mprt_cu_copy,
    (AnyFn)mprt_cu_isend_staged,
    (AnyFn)mprt_cu_recv_staged,
    (AnyFn)mprt_cu_wait_staged,
    /* a bf16 trainer's (docs/cuda.md, "bf16"): 16-bit weights and 16-bit activations */
    (AnyFn)mprt_cu_gemm_bf16,
    (AnyFn)mprt_cu_bf16_pack,
    (AnyFn)mprt_cu_bf16_unpack,
    (AnyFn)mprt_cu_bf16_round,
    (AnyFn)mprt_cu_linear_forward_bf16,
    (AnyFn)mprt_cu_linear_forward_bf16_packed,
    (AnyFn)mprt_cu_attention_forward_bf16,
    (AnyFn)mprt_cu_attention_forward_bf16_packed,
    (AnyFn)mprt_cu_conv2d_forward_bf16,
    (AnyFn)mprt_cu_conv2d_forward_bf16_packed,
    (AnyFn)mprt_cu_embedding_forward_bf16,
    (AnyFn)mprt_cu_embedding_forward_bf16_act,
    (AnyFn)mprt_cu_add_forward_bf16,
    (AnyFn)mprt_cu_layernorm_forward_bf16,
    (AnyFn)mprt_cu_layernorm_backward_bf16,
    (AnyFn)mprt_cu_dropout_forward_bf16,
    (AnyFn)mprt_cu_maxpool2d_forward_bf16,
    (AnyFn)mprt_cu_cross_entropy_forward_bf16,
    (AnyFn)mprt_cu_cross_entropy_backward_bf16,
    (AnyFn)mprt_cu_mse_forward_bf16,
    (AnyFn)mprt_cu_mse_backward_bf16,
    (AnyFn)mprt_cu_vocab_ce_forward_bf16,
    (AnyFn)mprt_cu_vocab_ce_backward_bf16,
};

static void test_versions(void) {
    int nccl = 0;
    CHECK(ncclGetVersion(&nccl) == ncclSuccess, "ncclGetVersion failed");
    CHECK(nccl == NCCL_VERSION_CODE, "libnccl is version %d, nccl.h is %d", nccl,
          NCCL_VERSION_CODE);
    int major = -1;
    CHECK(cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS,
          "cublasGetProperty failed");
    CHECK(major == CUBLAS_VER_MAJOR, "libcublas is major version %d, cublas_api.h is %d", major,
          CUBLAS_VER_MAJOR);
    int rt = 0;
    CHECK(cudaRuntimeGetVersion(&rt) == cudaSuccess, "cudaRuntimeGetVersion failed");
    CHECK(rt == CUDART_VERSION, "libcudart is %d, the headers are %d", rt, CUDART_VERSION);
    char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    CHECK(MPI_Get_library_version(mpi, &len) == MPI_SUCCESS && len > 0, "no MPI library version");
}

static void test_comm_names(void) {
    static const char *names[] = {"auto", "nccl", "mpi"};
    for (int i = 0; i < 3; i++) {
        MprtCuComm c = MPRT_CU_COMM_AUTO;
        CHECK(mprt_cu_comm_parse(names[i], &c) && (int)c == i, "--comm %s not parsed", names[i]);
        CHECK(strcmp(mprt_cu_comm_name(c), names[i]) == 0, "name of --comm %s", names[i]);
    }
    MprtCuComm c = MPRT_CU_COMM_NCCL;
    CHECK(!mprt_cu_comm_parse("gloo", &c) && c == MPRT_CU_COMM_NCCL, "--comm gloo accepted");
    CHECK(!mprt_cu_comm_parse(NULL, &c), "NULL accepted");
}

static void test_devices(void) {
    int n = mprt_cu_device_count();
    CHECK(n >= 0, "negative device count");
    CHECK(mprt_cu_device() == -1, "a device is in use before init");
    CHECK(!mprt_cu_init_local(n), "device %d of %d accepted", n, n);
    CHECK(!mprt_cu_init_local(-1), "device -1 accepted");
    if (n == 0) CHECK(!mprt_cu_init_local(0), "init without a device succeeded");
    printf("CUDA devices: %d\n", n);
}

int main(void) {
    for (size_t i = 0; i < sizeof entry_points / sizeof entry_points[0]; i++)
        CHECK(entry_points[i] != NULL, "entry point %zu is NULL", i);
    test_versions();
    test_comm_names();
    test_devices();
    printf("%s\n", failures ? "FAIL" : "ok");
    return failures ? 1 : 0;
}
