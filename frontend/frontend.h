/*
 * frontend.h: the public face of frontend/ — reading a .mp file, the AST, and lowering
 * it to an IrGraph. See docs/language.md for the language itself.
 */
#ifndef MPCC_FRONTEND_H
#define MPCC_FRONTEND_H

#include "ir.h"

/* A `-D key=value` override from the command line ("train.batch", "cluster.devices", ...). */
typedef struct FeDefine {
    const char *key, *value;
} FeDefine;

typedef struct Ast Ast; /* frontend/ast.h */

/* Reads and parses `path`. A missing file, a directory, a binary or oversized file and
 * every lexical or syntax error are reported through `d`; returns NULL if any error. The
 * file's text is registered with `d` for caret lines. */
Ast *fe_parse_file(Arena *a, Diag *d, const char *path);
/* Parses text already in memory (the fuzz target and tests use this). */
Ast *fe_parse_string(Arena *a, Diag *d, const char *file, const char *src, size_t len);

/* Prints the AST in a stable, readable form (mpcc --emit=ast). */
void fe_ast_dump(const Ast *ast, FILE *out);

/* Lowers the AST to an IrGraph: resolves names, expands `def` and `repeat` into
 * hierarchical layer names, checks op arguments and annotations, and resolves the train
 * and cluster blocks (preset, then the file's values, then `defs`). Returns NULL after
 * reporting errors. Shapes are inferred later by pass_shapes. */
IrGraph *fe_lower(Arena *a, Diag *d, const Ast *ast, const FeDefine *defs, int ndefs);

/* Prints the resolved train and cluster settings, one `key = value` a line, in the
 * spelling -D accepts (mpcc --emit=config). */
void fe_config_dump(const TrainCfg *t, const ClusterCfg *c, FILE *out);

/* The built-in cluster presets: the files presets/NAME.json, their bytes compiled in
 * (cmake/EmbedPresets.cmake), in the order the docs list them ("cpu" first). */
typedef struct FeBuiltinPreset {
    const char *name, *text;
} FeBuiltinPreset;
extern const FeBuiltinPreset fe_builtin_presets[];
extern const int fe_preset_count;
/* Fills `c` from the built-in preset `name`, read as its file is (tables in `a`); false if
 * there is none of that name. */
bool fe_cluster_preset(Arena *a, const char *name, ClusterCfg *c);
/* A preset value that names a JSON file (ends in ".json" or contains '/'), and its reader
 * (preset.c, docs/presets.md): fills `c` (all but devices) from the file, or leaves it alone
 * and writes one sentence naming the bad field into err. */
bool fe_preset_is_file(const char *value);
bool fe_preset_load(Arena *a, const char *path, ClusterCfg *c, char *err, size_t nerr);
/* A collective's preset-file name ("all-reduce" …) as a CollKind value; -1 if none. */
int fe_preset_coll_kind(const char *name);

#endif /* MPCC_FRONTEND_H */
