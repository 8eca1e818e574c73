/*
 * test_rt_api.c: the C API's shared part (runtime/trainer_api.c) without MPI and without a
 * generated trainer: the handle registry (a live handle, a destroyed one, one no create made,
 * another API's, NULL), where each call's message goes, the check of a step's buffers (NULL,
 * size, NaN/Inf and integer ranges with the row), and that the agreement of a call's outcome
 * needs no MPI when there is none. tests/capi/api_misuse.c drives the same through a trainer
 * under mpirun.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "mprt_trainer.h"

#include "rt_check.h"

static bool has(const char *msg, const char *want) { return strstr(msg, want) != NULL; }

/* A live handle, its release, and every kind of handle that is not live. */
static void registry(void) {
    static MprtErr mine;
    int state = 42;
    void *got = &state;
    MprtErr *orphan = mprt_api_error();
    CHECK(mprt_api_can_register("t_create", orphan) == MPRT_API_OK, "nothing live at first");
    void *h = mprt_api_register("t", &state, &mine);
    CHECK(h != NULL && h != (void *)&state, "a handle is an id, not the state's address");
    CHECK(mprt_api_lookup(h, "t", "t_step", false, &got) == MPRT_API_OK && got == &state,
          "the live handle gives its state");
    CHECK(mprt_api_err(h, "t") == &mine, "the live context keeps its own messages");
    CHECK(mprt_api_err(h, "u") == orphan, "another API's calls on it do not write there");
    CHECK(mprt_api_can_register("t_create", orphan) == MPRT_API_ERR_BUSY &&
              has(orphan->msg, "t_create: another context is live in this process (made by "
                               "t_create)"),
          "one live context at a time: %s", orphan->msg);
    CHECK(mprt_api_lookup(h, "u", "u_step", false, &got) == MPRT_API_ERR_HANDLE && got == NULL &&
              has(orphan->msg, "u_step: ctx is a context of t_create, not of u_create"),
          "another API's handle: %s", orphan->msg);
    CHECK(mprt_api_lookup(h, "t", "t_step", true, &got) == MPRT_API_ERR_MPI && got == &state &&
              has(mine.msg, "MPI was finalised while the context was live"),
          "a collective call without MPI: %s", mine.msg);
    CHECK(mprt_api_release(h) == &state, "release gives the state back");
    CHECK(mprt_api_lookup(h, "t", "t_step", false, &got) == MPRT_API_ERR_HANDLE && got == NULL &&
              has(orphan->msg, "t_step: ctx was destroyed (t_destroy)"),
          "a released handle: %s", orphan->msg);
    CHECK(mprt_api_err(h, "t") == orphan, "a dead handle's messages go to the process's buffer");
    void *h2 = mprt_api_register("t", &state, &mine);
    CHECK(h2 != h, "a new context never reuses an old handle");
    CHECK(mprt_api_lookup(h, "t", "t_step", false, &got) == MPRT_API_ERR_HANDLE,
          "the old handle stays dead while a new one is live");
    uintptr_t next = (uintptr_t)h2 + ((uintptr_t)1 << 8); /* the id the next create would get */
    CHECK(mprt_api_lookup((void *)next, "t", "t_step", false, &got) == MPRT_API_ERR_HANDLE &&
              has(orphan->msg, "not a context made by t_create"),
          "an id no create made yet: %s", orphan->msg);
    CHECK(mprt_api_lookup(&state, "t", "t_step", false, &got) == MPRT_API_ERR_HANDLE &&
              has(orphan->msg, "not a context made by t_create"),
          "an address: %s", orphan->msg);
    CHECK(mprt_api_lookup(NULL, "t", "t_step", false, &got) == MPRT_API_ERR_ARG &&
              has(orphan->msg, "t_step: ctx is NULL"),
          "NULL: %s", orphan->msg);
    mprt_api_release(h2);
    CHECK(mprt_api_agree(MPRT_API_ERR_HANDLE, orphan) == MPRT_API_ERR_HANDLE &&
              mprt_api_agree(MPRT_API_OK, orphan) == MPRT_API_OK,
          "without MPI a call's outcome is its own");
    CHECK(mprt_api_mpi_check("t_create", 1, 1, 1, orphan) == MPRT_API_ERR_MPI &&
              has(orphan->msg, "MPI is not initialised"),
          "create before MPI_Init: %s", orphan->msg);
}

/* A step's buffers: f32[4, 3] with NaN/Inf checks, i32[4] in [0, 5). */
static void buffers(void) {
    MprtData x = {"data.x", MPRT_F32, 2, {4, 3}, 0, NULL, NULL};
    MprtData y = {"data.y", MPRT_I32, 1, {4}, 5, NULL, NULL};
    float xs[12] = {0};
    int32_t ys[4] = {0, 1, 2, 4};
    MprtArray a = {0};
    MprtErr err = {{0}};
    CHECK(mprt_api_buffer(&x, "t_step", 0, "x", xs, 12, &a, &err) == MPRT_API_OK && a.data == xs &&
              a.numel == 12 && a.shape[0] == 4 && a.shape[1] == 3,
          "a good buffer is viewed, not copied");
    CHECK(mprt_api_buffer(&x, "t_step", 0, "x", NULL, 12, &a, &err) == MPRT_API_ERR_ARG &&
              !strcmp(err.msg, "t_step: buffer 0 (x) is NULL"),
          "NULL: %s", err.msg);
    CHECK(
        mprt_api_buffer(&x, "t_step", 0, "x", xs, 11, &a, &err) == MPRT_API_ERR_SIZE &&
            !strcmp(err.msg, "t_step: buffer 0 (x) has 11 elements, the plan needs 12 (f32[4, 3])"),
        "size: %s", err.msg);
    xs[7] = NAN;
    CHECK(mprt_api_buffer(&x, "t_step", 0, "x", xs, 12, &a, &err) == MPRT_API_ERR_VALUE &&
              !strcmp(err.msg, "t_step: buffer 0 (x): non-finite value nan at row 2, element 1 "
                               "(inputs must be finite)"),
          "NaN: %s", err.msg);
    xs[7] = 0, xs[11] = -INFINITY;
    CHECK(mprt_api_buffer(&x, "t_step", 0, "x", xs, 12, &a, &err) == MPRT_API_ERR_VALUE &&
              has(err.msg, "non-finite value -inf at row 3, element 2"),
          "-Inf: %s", err.msg);
    CHECK(mprt_api_buffer(&y, "t_step", 1, "y", ys, 4, &a, &err) == MPRT_API_OK, "good labels");
    ys[2] = 5;
    CHECK(
        mprt_api_buffer(&y, "t_step", 1, "y", ys, 4, &a, &err) == MPRT_API_ERR_VALUE &&
            !strcmp(err.msg, "t_step: buffer 1 (y): value 5 at row 2, element 0 is outside [0, 5)"),
        "range: %s", err.msg);
    ys[2] = -1, y.range = 0;
    CHECK(mprt_api_buffer(&y, "t_step", 1, "y", ys, 4, &a, &err) == MPRT_API_OK,
          "range 0: any integer");
}

int main(void) {
    registry();
    buffers();
    if (!failures) printf("test_rt_api: ok\n");
    return failures ? 1 : 0;
}
