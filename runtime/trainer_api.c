/*
 * trainer_api.c: what every generated trainer's C API (codegen/emit_capi.c, docs/embedding.md)
 * does the same way, whatever the model: its context handles, its error messages, the
 * agreement of the ranks on a call's outcome, the checks of a step's buffers, and NAME_main's
 * refusal while a context is live.
 *
 * Handles. A context's handle is an opaque id, not an address: (serial << 8) | MAGIC, where
 * serials count the contexts a process has made (1, 2, …). The registry below keeps only the
 * live context (the runtime holds one mesh, so one context is live at a time) and the next
 * serial. A handle is therefore recognised without reading any memory it names: its serial is
 * the live one's (live), below the next serial (a context that was destroyed), or anything
 * else (never made by NAME_create: garbage, a forged pointer, another API's handle). A second
 * destroy, or a call on a destroyed context, is an error code and a message, never a read of
 * freed memory. The live context's state (its step, config and message buffer) is the
 * generated code's, registered with its handle and freed by its destroy.
 *
 * Messages. A call on the live context writes its message into that context's buffer; a call
 * without one (a failed create, a NULL, destroyed or unknown handle) into the process's
 * buffer, mprt_api_error(), which NAME_last_error returns for such handles.
 *
 * Nothing here is thread-safe: an MPI program calls the API from one thread, as it calls MPI.
 */
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "mprt_trainer.h"

#define MAGIC 0xC5u /* the low byte of every handle: odd, so never an aligned object's address */

static struct {
    uint64_t next;     /* the serial of the next context; serials start at 1 */
    uint64_t live;     /* the live context's serial; 0: none */
    const char *owner; /* the live context's API prefix ("mlp") */
    void *state;       /* the live context's state (the generated code's) */
    MprtErr *err;      /* its message buffer */
    MprtErr orphan;    /* messages of calls without a live context */
} A = {.next = 1};

int mprt_api_fail(MprtErr *err, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

MprtErr *mprt_api_error(void) { return &A.orphan; }

bool mprt_api_mpi_up(void) {
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    return up && !down;
}

int mprt_api_mpi_check(const char *call, int S, int d, int t, MprtErr *err) {
    int up = 0, down = 0, size = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (down)
        return mprt_api_fail(err, MPRT_API_ERR_MPI,
                             "%s: MPI has been finalised (MPI_Finalize); a context needs MPI "
                             "between MPI_Init and MPI_Finalize",
                             call);
    if (!up)
        return mprt_api_fail(err, MPRT_API_ERR_MPI,
                             "%s: MPI is not initialised: call MPI_Init first", call);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size != S * d * t)
        return mprt_api_fail(err, MPRT_API_ERR_MPI,
                             "%s: this plan needs %d ranks (S=%d x d=%d x t=%d), MPI_COMM_WORLD "
                             "has %d",
                             call, S * d * t, S, d, t, size);
    return MPRT_API_OK;
}

int mprt_api_can_register(const char *call, MprtErr *err) {
    if (A.live)
        return mprt_api_fail(err, MPRT_API_ERR_BUSY,
                             "%s: another context is live in this process (made by %s_create); "
                             "destroy it first",
                             call, A.owner);
    if (A.next > (uint64_t)(UINTPTR_MAX >> 8))
        return mprt_api_fail(err, MPRT_API_ERR_BUSY,
                             "%s: this process has made %llu contexts, the most it can tell apart",
                             call, (unsigned long long)(A.next - 1));
    return MPRT_API_OK;
}

void *mprt_api_register(const char *owner, void *state, MprtErr *err) {
    if (A.live || A.next > (uint64_t)(UINTPTR_MAX >> 8))
        mprt_fatal("mprt_api_register without mprt_api_can_register");
    A.live = A.next++;
    A.owner = owner, A.state = state, A.err = err;
    return (void *)(uintptr_t)(((uintptr_t)A.live << 8) | MAGIC);
}

/* What handle h is: its serial if it carries the magic byte, else 0 (no serial is 0). */
static uint64_t serial_of(const void *h) {
    uintptr_t v = (uintptr_t)h;
    return (v & 0xFFu) == MAGIC ? (uint64_t)(v >> 8) : 0;
}

int mprt_api_lookup(const void *h, const char *owner, const char *call, bool collective,
                    void **state) {
    uint64_t s = serial_of(h);
    *state = NULL;
    if (!h)
        return mprt_api_fail(&A.orphan, MPRT_API_ERR_ARG,
                             "%s: ctx is NULL (no %s_create succeeded for it)", call, owner);
    if (s && s == A.live && strcmp(owner, A.owner) == 0) {
        *state = A.state;
        if (!collective || mprt_api_mpi_up()) return MPRT_API_OK;
        return mprt_api_fail(A.err, MPRT_API_ERR_MPI,
                             "%s: MPI was finalised while the context was live (call %s_destroy "
                             "before MPI_Finalize)",
                             call, owner);
    }
    if (s && s == A.live)
        return mprt_api_fail(&A.orphan, MPRT_API_ERR_HANDLE,
                             "%s: ctx is a context of %s_create, not of %s_create", call, A.owner,
                             owner);
    if (s && s < A.next)
        return mprt_api_fail(&A.orphan, MPRT_API_ERR_HANDLE,
                             "%s: ctx was destroyed (%s_destroy); it cannot be used again", call,
                             owner);
    return mprt_api_fail(&A.orphan, MPRT_API_ERR_HANDLE,
                         "%s: ctx is not a context made by %s_create", call, owner);
}

MprtErr *mprt_api_err(const void *h, const char *owner) {
    uint64_t s = serial_of(h);
    return s && s == A.live && strcmp(owner, A.owner) == 0 ? A.err : &A.orphan;
}

void *mprt_api_release(const void *h) {
    uint64_t s = serial_of(h);
    if (!s || s != A.live) mprt_fatal("mprt_api_release of a context that is not live");
    void *state = A.state;
    A.live = 0, A.owner = NULL, A.state = NULL, A.err = NULL;
    return state;
}

int mprt_api_agree(int code, MprtErr *err) {
    if (!mprt_api_mpi_up()) return code; /* nothing to agree over: the call failed on its own */
    int rank = 0, first = INT32_MAX;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    int mine = code ? rank : INT32_MAX;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == INT32_MAX) return MPRT_API_OK;
    MPI_Bcast(&code, 1, MPI_INT, first, MPI_COMM_WORLD);
    MPI_Bcast(err->msg, (int)sizeof err->msg, MPI_CHAR, first, MPI_COMM_WORLD);
    return code;
}

int mprt_api_buffer(const MprtData *d, const char *call, int i, const char *name, const void *buf,
                    size_t count, MprtArray *out, MprtErr *err) {
    char what[256], type[128];
    snprintf(what, sizeof what, "%s: buffer %d (%s)", call, i, name);
    int64_t need = d->shape[0] * mprt_data_row(d);
    if (!buf) return mprt_api_fail(err, MPRT_API_ERR_ARG, "%s is NULL", what);
    if (count != (size_t)need)
        return mprt_api_fail(
            err, MPRT_API_ERR_SIZE, "%s has %zu elements, the plan needs %lld (%s)", what, count,
            (long long)need,
            mprt__shape_str(type, sizeof type, d->dtype, d->ndim, d->shape, false));
    MprtArray a = {d->dtype, d->ndim, {0}, need, (void *)(uintptr_t)buf};
    memcpy(a.shape, d->shape, sizeof a.shape);
    if (!mprt_data_check(d, &a, what, err)) return MPRT_API_ERR_VALUE;
    *out = a;
    return MPRT_API_OK;
}

int mprt_api_main(const MprtTrainer *t, const char *call, int argc, char **argv) {
    int down = 0;
    MPI_Finalized(&down);
    if (A.live)
        return mprt_api_fail(&A.orphan, MPRT_API_ERR_BUSY,
                             "%s: a context is live in this process (made by %s_create); the "
                             "trainer's run would make its mesh and buffers again under it: "
                             "destroy it first",
                             call, A.owner);
    if (down)
        return mprt_api_fail(&A.orphan, MPRT_API_ERR_MPI,
                             "%s: MPI has been finalised (MPI_Finalize); the trainer's run needs "
                             "MPI",
                             call);
    return mprt_trainer_main(t, argc, argv);
}
