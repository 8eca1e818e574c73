/*
 * io_file.c: the file plumbing under the .npy and safetensors code — reading a whole file
 * with its size bounded before the allocation, the atomic writer, error messages, shapes
 * and dtypes.
 *
 * The atomic writer is what makes a checkpoint safe against a crash: data goes to
 * "<path>.tmp.<pid>" (a name no other process writes), is fsync'd, then renamed over the
 * destination, and the directory is fsync'd so the rename itself is durable. rename(2) is
 * atomic, so at every instant the destination is either the complete old file or the
 * complete new one; a process killed before the rename leaves only a stray temporary file,
 * which the next trainer started with that path removes (mprt__remove_stale_tmp).
 *
 * Nothing here uses MPI, so the fuzz targets build the loaders without it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

bool mprt__err(MprtErr *err, const char *fmt, ...) {
    if (!err) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return false;
}

const char *mprt_dtype_name(MprtDtype t) {
    static const char *const names[] = {"f32", "i32", "i64"};
    return (unsigned)t < MPRT_DTYPE__COUNT ? names[t] : "?";
}

size_t mprt_dtype_size(MprtDtype t) { return t == MPRT_I64 ? 8 : 4; }

void mprt_array_free(MprtArray *a) {
    if (!a) return;
    free(a->data);
    a->data = NULL;
}

char *mprt__shape_str(char *buf, size_t n, MprtDtype t, int ndim, const int64_t *shape,
                      bool free0) {
    size_t len = (size_t)snprintf(buf, n, "%s[", mprt_dtype_name(t));
    for (int i = 0; i < ndim && len < n; i++) {
        const char *sep = i ? ", " : "";
        if (i == 0 && free0)
            len += (size_t)snprintf(buf + len, n - len, "%sN", sep);
        else
            len += (size_t)snprintf(buf + len, n - len, "%s%lld", sep, (long long)shape[i]);
    }
    if (len < n) snprintf(buf + len, n - len, "]");
    return buf;
}

bool mprt__numel(int ndim, const int64_t *shape, int64_t elem, int64_t limit, int64_t *numel) {
    int64_t p = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return false;
        if (shape[i] != 0 && p > limit / shape[i]) return false;
        p *= shape[i];
    }
    if (elem > 0 && p > limit / elem) return false;
    *numel = p;
    return true;
}

/* Opens a file for reading only if it is a regular file: O_NONBLOCK keeps open() from waiting
 * for a writer on a FIFO (or a device), fstat then refuses anything but a regular file (and
 * gives its size, so callers need not stat it again), and the flag is cleared again so reads
 * block as usual. */
int mprt__open_regular(const char *path, size_t *size, MprtErr *err) {
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        mprt__err(err, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    int fl = fcntl(fd, F_GETFL);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || fl < 0 ||
        fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        close(fd);
        mprt__err(err, "%s: not a regular file", path);
        return -1;
    }
    if (size) *size = (size_t)st.st_size;
    return fd;
}

bool mprt__read_file(const char *path, size_t max, unsigned char **buf, size_t *size,
                     MprtErr *err) {
    size_t n = 0, got = 0;
    int fd = mprt__open_regular(path, &n, err);
    if (fd < 0) return false;
    if (n > max) {
        close(fd);
        return mprt__err(err, "%s: file too large (%lld bytes, limit %zu)", path, (long long)n,
                         max);
    }
    unsigned char *p = malloc(n ? n : 1);
    if (!p) {
        close(fd);
        return mprt__err(err, "%s: out of memory for %zu bytes", path, n);
    }
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            free(p);
            close(fd);
            return mprt__err(err, "%s: read failed: %s", path,
                             r < 0 ? strerror(errno) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    *buf = p;
    *size = n;
    return true;
}

/* ───────────────────────────── the atomic writer ───────────────────────────── */

bool mprt__atomic_open(MprtAtomic *w, const char *path, MprtErr *err) {
    w->path = path;
    w->written = 0;
    w->fd = -1;
    int n = snprintf(w->tmp, sizeof w->tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof w->tmp) return mprt__err(err, "%s: path too long", path);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w->fd < 0)
        return mprt__err(err, "%s: cannot write: %s (creating its temporary file %s)", path,
                         strerror(errno), w->tmp);
    return true;
}

bool mprt__check_writable(const char *path, MprtErr *err) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return mprt__err(err, "%s: cannot write: is a directory", path);
    MprtAtomic w;
    if (!mprt__atomic_open(&w, path, err)) return false;
    mprt__atomic_abort(&w); /* the probe leaves nothing behind */
    return true;
}

bool mprt__atomic_write(MprtAtomic *w, const void *data, size_t n, MprtErr *err) {
    const unsigned char *p = data;
    while (n > 0) {
        size_t piece = n < ((size_t)1 << 20) ? n : ((size_t)1 << 20);
        ssize_t r = write(w->fd, p, piece);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            mprt__atomic_abort(w);
            return mprt__err(err, "%s: write failed: %s", w->path,
                             r < 0 ? strerror(e) : "no space");
        }
        p += r;
        n -= (size_t)r;
        w->written += r;
    }
    return true;
}

static void fsync_dir(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd); /* some file systems refuse directory fsync; the rename is done anyway */
        close(fd);
    }
}

bool mprt__atomic_commit(MprtAtomic *w, MprtErr *err) {
    if (fsync(w->fd) != 0) {
        int e = errno;
        mprt__atomic_abort(w);
        return mprt__err(err, "%s: fsync failed: %s", w->path, strerror(e));
    }
    if (close(w->fd) != 0) {
        int e = errno;
        w->fd = -1;
        mprt__atomic_abort(w);
        return mprt__err(err, "%s: close failed: %s", w->path, strerror(e));
    }
    w->fd = -1;
    if (rename(w->tmp, w->path) != 0) {
        int e = errno;
        mprt__atomic_abort(w);
        return mprt__err(err, "%s: rename failed: %s", w->path, strerror(e));
    }
    fsync_dir(w->path);
    return true;
}

void mprt__atomic_abort(MprtAtomic *w) {
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    unlink(w->tmp);
}

/* Whether pid is a live process on this host: kill(pid, 0) finds it and (where /proc exists) it
 * is not a zombie, which holds no file open and only waits for its parent. */
static bool pid_alive(pid_t pid) {
    if (kill(pid, 0) != 0 && errno == ESRCH) return false;
    char stat[64], buf[256];
    snprintf(stat, sizeof stat, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(stat, "r");
    if (!f) return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return !(paren && paren[1] == ' ' && paren[2] == 'Z');
}

/* The atomic writer's temporary files are `<path>.tmp.<pid>`. One whose pid is no live process
 * on this host was left by a killed save; it is removed. A live pid's file is kept (another
 * trainer may be writing it), and so is any name that does not end in a plain decimal pid. */
void mprt__remove_stale_tmp(const char *path) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    size_t bn = strlen(base);
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const char *n = e->d_name;
        if (strncmp(n, base, bn) != 0 || strncmp(n + bn, ".tmp.", 5) != 0) continue;
        char *end = NULL;
        errno = 0;
        long long pid = strtoll(n + bn + 5, &end, 10);
        if (!n[bn + 5] || *end || errno || pid <= 0 || pid > INT32_MAX) continue;
        if (pid_alive((pid_t)pid)) continue;
        char full[8192];
        snprintf(full, sizeof full, "%s/%s", dir, n);
        unlink(full);
    }
    closedir(d);
}

/* ───────────────────────────── little-endian ───────────────────────────── */

uint64_t mprt__le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint32_t mprt__le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void mprt__put_le64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
