/*
 * probe.c: one header included with the include path of one of mpcc's libraries.
 *
 * tests/layers/CMakeLists.txt compiles this file once per (library, header) pair, with the
 * include directories a source file of that library gets. Where the library depends on the
 * header's folder the probe must compile; where it does not, it must fail to find the
 * header. Either way the test is about the build's include paths, not about the header.
 */
#include PROBE_HEADER

int layer_probe(void);
int layer_probe(void) { return 0; }
