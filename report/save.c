/*
 * save.c: writing a report to a file without ever leaving half of one.
 *
 * The report goes through ir/outfile.c, the writer every mpcc output uses: a temporary name
 * beside the target (same directory, so the rename is atomic), flushed and closed, and only
 * then renamed over the target; any failure removes the temporary file and is reported
 * through Diag as "cannot write 'PATH': reason". The file gets the usual 0666 & ~umask mode,
 * not mkstemp's 0600, like the trainer's source beside it.
 */
#include "report.h"

bool pass_report_save(const IrGraph *g, const char *path, bool json, Diag *d) {
    IrOutFile o;
    if (!ir_out_open(&o, path, d)) return false;
    if (json)
        pass_report_json(g, o.f);
    else
        pass_report_text(g, o.f);
    return ir_out_close(&o, true, d);
}
