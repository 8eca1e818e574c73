/*
 * ast.h: the syntax tree of a .mp file, as the parser builds it (frontend-internal).
 *
 * The tree mirrors the grammar in docs/language.md: a file holds one `model` block,
 * any number of `def` blocks, and optional `train` and `cluster` blocks. Lists are
 * singly linked through `next`, in source order. Everything lives in the compilation's
 * arena. Every node has a SrcLoc; numbers keep their spelling (`lit`) so dumps and the
 * statement text given to codegen show them as written (3e-4 stays 3e-4).
 */
#ifndef MPCC_AST_H
#define MPCC_AST_H

#include "frontend.h"

/* Expressions: tensor expressions (names, calls) and literal values. */
typedef enum { EX_NAME, EX_CALL, EX_INT, EX_FLOAT, EX_BOOL, EX_STRING } AstExprKind;

typedef struct AstExpr AstExpr;
typedef struct AstArg AstArg;

/* One argument of a call: positional (key == NULL) or `key = value`. */
struct AstArg {
    const char *key; /* NULL for positional */
    SrcLoc key_loc;
    AstExpr *value;
    SrcLoc loc; /* the whole argument, key included */
    AstArg *next;
};

struct AstExpr {
    AstExprKind kind;
    SrcLoc loc;
    const char *name; /* NAME: the name; CALL: the callee; STRING: the text (unquoted) */
    SrcLoc name_loc;  /* CALL: the callee's span */
    const char *lit;  /* INT/FLOAT: the spelling, sign included */
    int64_t ival;     /* INT, BOOL (0/1) */
    double fval;      /* INT and FLOAT */
    AstArg *args;     /* CALL */
    int nargs;
};

/* `@data`, `@tensor(col)`, `@stage(2)`: checked when lowering. */
typedef enum { AN_ARG_NONE, AN_ARG_NAME, AN_ARG_INT } AstAnnotArg;
typedef struct AstAnnot AstAnnot;
struct AstAnnot {
    const char *name;
    SrcLoc loc, arg_loc; /* loc covers the whole annotation */
    AstAnnotArg arg;
    const char *arg_name;
    int64_t arg_int;
    AstAnnot *next;
};

typedef struct AstDim {
    bool is_batch;
    int64_t size;
    SrcLoc loc;
} AstDim;

typedef enum { ST_INPUT, ST_LABEL, ST_ASSIGN, ST_REPEAT, ST_SETTING } AstStmtKind;

typedef struct AstStmt AstStmt;
/*
 * Statements. Fields by kind:
 *   INPUT/LABEL  name, dtype_name/dtype_loc, dims/ndims
 *   ASSIGN       name, value, annots
 *   REPEAT       name (the result), count/count_loc, section (NULL: use name),
 *                carry/carry_loc, value (the carry's initial value), body, ret
 *   SETTING      name (the key), value (train/cluster blocks)
 */
struct AstStmt {
    AstStmtKind kind;
    SrcLoc loc; /* the whole statement */
    const char *name;
    SrcLoc name_loc;
    const char *dtype_name;
    SrcLoc dtype_loc;
    AstDim *dims;
    int ndims;
    AstExpr *value;
    AstAnnot *annots;
    int64_t count;
    SrcLoc count_loc;
    const char *section;
    SrcLoc section_loc;
    const char *carry;
    SrcLoc carry_loc;
    AstStmt *body;
    AstExpr *ret;
    SrcLoc ret_loc;
    AstStmt *next;
};

/* `def NAME(a, b) { body; return ret; }` */
typedef struct AstParam {
    const char *name;
    SrcLoc loc;
    struct AstParam *next;
} AstParam;

typedef struct AstDef AstDef;
struct AstDef {
    const char *name;
    SrcLoc loc, name_loc;
    AstParam *params;
    int nparams;
    AstStmt *body;
    AstExpr *ret;
    SrcLoc ret_loc;
    AstDef *next;
};

/* `train { ... }`, `cluster { ... }` or `plan { ... }`. */
typedef struct AstBlock {
    SrcLoc loc;
    AstStmt *settings;
} AstBlock;

struct Ast {
    const char *file;
    const char *src; /* the text parsed */
    size_t src_len;
    const char *model; /* NULL if the file had no model block */
    SrcLoc model_loc, model_name_loc;
    AstStmt *body;
    AstDef *defs;
    int ndefs;
    AstBlock *train, *cluster, *plan;
};

/* Printing an expression or statement as canonical one-line source (ast.c). Used for
 * IrNode.text and by the AST dump. */
void fe_expr_print(const AstExpr *e, FILE *out);
char *fe_stmt_text(Arena *a, const AstStmt *s);

/* Resolves the train and cluster blocks: the preset, then the file's settings, then the
 * -D overrides, then checks the result (config.c). False after reporting errors. */
bool fe_lower_config(Arena *a, Diag *d, const Ast *ast, const FeDefine *defs, int ndefs,
                     TrainCfg *t, ClusterCfg *c);

#endif /* MPCC_AST_H */
