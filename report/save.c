/*
 * save.c: writing a report to a file without ever leaving half of one.
 *
 * The report goes to a temporary name beside the target (same directory, so the rename is
 * atomic), is flushed and closed, and only then renamed over the target; any failure removes
 * the temporary file and is reported through Diag as "cannot write 'PATH': reason". The file
 * gets the usual 0666 & ~umask mode, not mkstemp's 0600.
 */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Writes the report to `path` through a temporary file in the same directory, renamed
 * over `path` only once everything is written and flushed. */
bool pass_report_save(const IrGraph *g, const char *path, bool json, Diag *d) {
    Arena a = {0};
    char *tmp = arena_printf(&a, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd >= 0) {
        mode_t mask = umask(0); /* mkstemp makes 0600; give the usual 0666 & ~umask */
        umask(mask);
        (void)fchmod(fd, 0666 & ~mask);
    }
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f) {
        diag_error(d, (SrcLoc){0}, "cannot write '%s': %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        arena_free(&a);
        return false;
    }
    if (json)
        pass_report_json(g, f);
    else
        pass_report_text(g, f);
    bool ok = fflush(f) == 0 && !ferror(f);
    int err = errno;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) != 0) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        diag_error(d, (SrcLoc){0}, "cannot write '%s': %s", path, strerror(err));
        remove(tmp);
    }
    arena_free(&a);
    return ok;
}
