/*
 * outfile.c: every file mpcc writes (the trainer's source, its API header, the reports,
 * --emit output) goes through here, so all get the same two guarantees.
 *
 * Atomic: the text is written to a temporary file beside the destination (same directory,
 * so rename(2) cannot cross file systems) and renamed over it only when everything was
 * written and flushed; a failed run removes the temporary and leaves the old file, or none,
 * never a half-written one.
 *
 * Only regular files are replaced that way. A path naming something else — /dev/null,
 * /dev/stdout, a FIFO — is opened and written in place: renaming a temporary over it would
 * replace the device node itself (as root, /dev/null would become a plain file).
 *
 * The usual mode: mkstemp creates its file 0600, which would make the generated source
 * private while the report beside it is not. The file gets 0666 minus the process's umask,
 * what open(2) with O_CREAT would give, before a byte is written.
 */
#include "ir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const SrcLoc noloc = {NULL, 0, 0, 0};

bool ir_out_open(IrOutFile *o, const char *path, Diag *d) {
    o->f = stdout;
    o->tmp = NULL;
    o->path = path;
    o->direct = false;
    if (!path || strcmp(path, "-") == 0) return true;
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode) || !(o->f = fopen(path, "w"))) {
            diag_error(d, noloc, "cannot write '%s': %s", path,
                       S_ISDIR(st.st_mode) ? "it is a directory" : strerror(errno));
            return false;
        }
        o->direct = true;
        return true;
    }
    size_t n = strlen(path) + sizeof ".tmpXXXXXX";
    if (!(o->tmp = malloc(n))) {
        diag_error(d, noloc, "out of memory writing '%s'", path);
        return false;
    }
    snprintf(o->tmp, n, "%s.tmpXXXXXX", path);
    int fd = mkstemp(o->tmp);
    if (fd >= 0) {
        mode_t mask = umask(0); /* umask can only be read by setting it; put it back at once */
        umask(mask);
        (void)fchmod(fd, 0666 & ~mask);
    }
    if (fd < 0 || !(o->f = fdopen(fd, "w"))) {
        diag_error(d, noloc, "cannot write '%s': %s", path, strerror(errno));
        if (fd >= 0) close(fd), unlink(o->tmp);
        free(o->tmp);
        o->tmp = NULL;
        return false;
    }
    return true;
}

bool ir_out_close(IrOutFile *o, bool ok, Diag *d) {
    if (o->direct) {
        bool wrote = fflush(o->f) == 0 && !ferror(o->f);
        wrote = fclose(o->f) == 0 && wrote;
        if (ok && !wrote) diag_error(d, noloc, "cannot write '%s': %s", o->path, strerror(errno));
        return ok && wrote;
    }
    if (!o->tmp) return fflush(stdout) == 0 && ok;
    bool wrote = fflush(o->f) == 0 && !ferror(o->f);
    int err = errno;
    wrote = fclose(o->f) == 0 && wrote;
    if (wrote && ok && rename(o->tmp, o->path) != 0) wrote = false, err = errno;
    if (ok && !wrote) diag_error(d, noloc, "cannot write '%s': %s", o->path, strerror(err));
    ok = ok && wrote;
    if (!ok) unlink(o->tmp);
    free(o->tmp);
    o->tmp = NULL;
    return ok;
}
