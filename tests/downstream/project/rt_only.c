/* rt_only.c: a downstream program that links only the installed runtime (mpcc::mprt_shared)
 * and checks two of its functions against their documented values (runtime/mprt.h). */
#include <stdio.h>

#include "mprt.h"

int main(void) {
    /* all-reduce of 1000 bytes over 4 ranks moves 2·3·1000/4 bytes per rank */
    long long ar = (long long)mprt_coll_bytes(MPRT_ALLREDUCE, 4, 1000);
    const char *name = mprt_dtype_name(MPRT_F32);
    int ok = ar == 1500 && name[0] == 'f' && name[1] == '3' && name[2] == '2' && !name[3];
    printf("rt_only: allreduce bytes %lld, dtype %s, runtime %s: %s\n", ar, name, MPRT_VERSION,
           ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
