/*
 * units.c: how the compiler writes a quantity for people — bytes, times, counts (parameters,
 * FLOPs) and percentages — in the report's tables, the search's reason sentences and the
 * planner's error messages. One file, so every message that quotes a size or a time agrees
 * on its units.
 *
 * Units are decimal (1 KB = 1000 bytes), as the cost model quotes them, with three
 * significant digits and the prefix rescaled up to EB ("262 KB", "1.05 GB", "40.1 µs"),
 * in tables and sentences alike, so a size quoted in a reason reads as in the table beside
 * it. Counts of things take the noun in the right number (units_n: "1 device", "8 devices").
 * Every function writes into the caller's buffer (truncating, never overflowing) and
 * returns it; nothing here depends on the locale beyond printf's "C" default.
 */
#include "passes.h"

#include <math.h>
#include <string.h>

/* ───────────────────────────── significant digits (tables) ───────────────────────────── */

/* Three significant digits of v (v ≥ 0) followed by a unit. */
static void fmt_sig3(char *buf, size_t n, double v, const char *unit) {
    if (v >= 99.95)
        snprintf(buf, n, "%.0f %s", v, unit);
    else if (v >= 9.995)
        snprintf(buf, n, "%.1f %s", v, unit);
    else
        snprintf(buf, n, "%.2f %s", v, unit);
}

/* Scales v by 1000 until it is below 1000 and picks the matching prefix. */
static void fmt_scaled(char *buf, size_t n, double v, const char *const *units, int nunits) {
    double a = fabs(v);
    int u = 0;
    while (a >= 999.5 && u + 1 < nunits) {
        a /= 1000.0;
        u++;
    }
    if (v < 0 && n > 1) {
        *buf++ = '-';
        n--;
    }
    fmt_sig3(buf, n, a, units[u]);
}

const char *units_bytes(char *buf, size_t n, int64_t b) {
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
    if (b > -1000 && b < 1000)
        snprintf(buf, n, "%lld B", (long long)b);
    else
        fmt_scaled(buf, n, (double)b, units, 7);
    return buf;
}

const char *units_time(char *buf, size_t n, double s) {
    if (!isfinite(s))
        snprintf(buf, n, "%s", "inf");
    else if (fabs(s) < 5e-12) /* would print as 0.00 ns */
        snprintf(buf, n, "0 s");
    else if (s < 1e-6)
        fmt_sig3(buf, n, s * 1e9, "ns");
    else if (s < 1e-3)
        fmt_sig3(buf, n, s * 1e6, "\xc2\xb5s");
    else if (s < 1)
        fmt_sig3(buf, n, s * 1e3, "ms");
    else
        fmt_sig3(buf, n, s, "s");
    return buf;
}

/* Counts (parameters, FLOPs): 3.21 M, 12.9 G. */
const char *units_count(char *buf, size_t n, double c, const char *unit) {
    static const char *const p[] = {"", "K", "M", "G", "T", "P", "E"};
    if (c < 1000) {
        snprintf(buf, n, "%.0f%s%s", c, unit[0] ? " " : "", unit);
        return buf;
    }
    char u[7][16];
    const char *units[7];
    for (int i = 0; i < 7; i++) {
        snprintf(u[i], sizeof u[i], "%s%s", p[i], unit);
        units[i] = u[i];
    }
    fmt_scaled(buf, n, c, units, 7);
    return buf;
}

const char *units_pct(char *buf, size_t n, double part, double whole) {
    snprintf(buf, n, "%.1f%%", whole > 0 ? 100.0 * part / whole : 0.0);
    return buf;
}

/* ───────────────────────────── counts of things ───────────────────────────── */

/* "1 device", "8 devices", "2 micro-batches": the noun's plural adds "es" after s, x, ch
 * and sh, else "s". */
const char *units_n(char *buf, size_t n, long long count, const char *noun) {
    size_t len = strlen(noun);
    const char *end = len >= 2 ? noun + len - 2 : noun;
    bool es = len && (noun[len - 1] == 's' || noun[len - 1] == 'x' || !strcmp(end, "ch") ||
                      !strcmp(end, "sh"));
    snprintf(buf, n, "%lld %s%s", count, noun, count == 1 ? "" : es ? "es" : "s");
    return buf;
}
