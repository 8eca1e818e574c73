/*
 * cu_init_probe.c: a trainer's start-up and nothing else — mprt_init, then mprt_cu_init with
 * the --comm mode given — used by tests/cuda/no_gpu.sh to check the error a CUDA trainer
 * gives on a machine without a GPU (one line, agreed over all ranks, exit 1).
 *
 *   cu_init_probe --has-gpu [N]     exit 0 if at least N (default 1) CUDA devices are visible
 *   mpirun -np N cu_init_probe MODE N  start up (S = 1, d = N, t = 1) and report the device
 */
#include "mprt.h"
#include "mprt_cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if ((argc == 2 || argc == 3) && strcmp(argv[1], "--has-gpu") == 0) {
        int want = argc == 3 ? atoi(argv[2]) : 1;
        return mprt_cu_device_count() >= (want > 1 ? want : 1) ? 0 : 1;
    }
    MprtCuComm mode = MPRT_CU_COMM_AUTO;
    int ranks = argc == 3 ? atoi(argv[2]) : 0;
    if (argc != 3 || !mprt_cu_comm_parse(argv[1], &mode) || ranks < 1) {
        fprintf(stderr, "usage: cu_init_probe --has-gpu [N] | (auto|nccl|mpi) RANKS\n");
        return 2;
    }
    mprt_init(&argc, &argv, 1, ranks, 1);
    mprt_cu_init(mode);
    printf("rank %d: device %d, comm %s\n", mprt_mesh()->rank, mprt_cu_device(),
           mprt_cu_comm_name(mprt_cu_comm_mode()));
    mprt_cu_finalize();
    mprt_finalize();
    return 0;
}
