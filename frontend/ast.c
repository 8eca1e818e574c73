/*
 * ast.c: printing the syntax tree.
 *
 * Two printers live here. fe_ast_dump() is `mpcc --emit=ast`: an indented tree, one
 * node per line with its kind, its payload and its span <line:col-end_col>, stable
 * enough for golden tests. fe_expr_print()/fe_stmt_text() print an expression or a
 * statement back as canonical one-line source (single spaces, no comments, numbers as
 * written); lowering stores that text in IrNode.text so generated code can quote the
 * statement a layer came from.
 */
#include "ast.h"

#include <stdlib.h>
#include <string.h>

static void put_loc(SrcLoc l, FILE *out) {
    if (l.end_col > l.col && l.end_col < (1 << 20))
        fprintf(out, " <%d:%d-%d>\n", l.line, l.col, l.end_col);
    else
        fprintf(out, " <%d:%d>\n", l.line, l.col);
}

static void indent(int depth, FILE *out) {
    for (int i = 0; i < depth; i++)
        fputs("  ", out);
}

void fe_expr_print(const AstExpr *e, FILE *out) {
    switch (e->kind) {
    case EX_NAME: fputs(e->name, out); return;
    case EX_INT:
    case EX_FLOAT:
    case EX_BOOL: fputs(e->lit, out); return;
    case EX_STRING: fprintf(out, "\"%s\"", e->name); return;
    case EX_CALL:
        fprintf(out, "%s(", e->name);
        for (const AstArg *a = e->args; a; a = a->next) {
            if (a != e->args) fputs(", ", out);
            if (a->key) fprintf(out, "%s=", a->key);
            fe_expr_print(a->value, out);
        }
        fputc(')', out);
        return;
    }
}

static void annot_print(const AstAnnot *an, FILE *out) {
    fprintf(out, "@%s", an->name);
    if (an->arg == AN_ARG_NAME) fprintf(out, "(%s)", an->arg_name);
    if (an->arg == AN_ARG_INT) fprintf(out, "(%lld)", (long long)an->arg_int);
}

static void dims_print(const AstStmt *s, FILE *out) {
    fprintf(out, "%s[", s->dtype_name);
    for (int i = 0; i < s->ndims; i++) {
        if (i) fputs(", ", out);
        if (s->dims[i].is_batch)
            fputs("batch", out);
        else
            fprintf(out, "%lld", (long long)s->dims[i].size);
    }
    fputc(']', out);
}

static void stmt_print(const AstStmt *s, FILE *out) {
    switch (s->kind) {
    case ST_INPUT:
    case ST_LABEL:
        fprintf(out, "%s %s: ", s->kind == ST_INPUT ? "input" : "label", s->name);
        dims_print(s, out);
        return;
    case ST_ASSIGN:
    case ST_SETTING:
        fprintf(out, "%s = ", s->name);
        fe_expr_print(s->value, out);
        for (const AstAnnot *an = s->annots; an; an = an->next) {
            fputc(' ', out);
            annot_print(an, out);
        }
        return;
    case ST_REPEAT:
        fprintf(out, "%s = repeat %lld", s->name, (long long)s->count);
        if (s->section) fprintf(out, " as %s", s->section);
        fprintf(out, " (%s = ", s->carry);
        fe_expr_print(s->value, out);
        fputc(')', out);
        return;
    }
}

char *fe_stmt_text(Arena *a, const AstStmt *s) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return arena_strdup(a, s->name);
    stmt_print(s, f);
    fclose(f);
    char *r = arena_strndup(a, buf, len);
    free(buf);
    return r;
}

/* ── the --emit=ast tree ── */

static void dump_expr(const AstExpr *e, int depth, FILE *out) {
    indent(depth, out);
    switch (e->kind) {
    case EX_NAME: fprintf(out, "Name %s", e->name); break;
    case EX_INT: fprintf(out, "Int %s", e->lit); break;
    case EX_FLOAT: fprintf(out, "Float %s", e->lit); break;
    case EX_BOOL: fprintf(out, "Bool %s", e->lit); break;
    case EX_STRING: fprintf(out, "String \"%s\"", e->name); break;
    case EX_CALL: fprintf(out, "Call %s", e->name); break;
    }
    put_loc(e->loc, out);
    if (e->kind != EX_CALL) return;
    for (const AstArg *a = e->args; a; a = a->next) {
        if (a->key) {
            indent(depth + 1, out);
            fprintf(out, "Keyword %s", a->key);
            put_loc(a->loc, out);
            dump_expr(a->value, depth + 2, out);
        } else {
            dump_expr(a->value, depth + 1, out);
        }
    }
}

static void dump_stmts(const AstStmt *s, int depth, FILE *out);

static void dump_return(const AstExpr *ret, int depth, FILE *out) {
    indent(depth, out);
    fputs("Return", out);
    put_loc(ret->loc, out);
    dump_expr(ret, depth + 1, out);
}

static void dump_stmt(const AstStmt *s, int depth, FILE *out) {
    indent(depth, out);
    switch (s->kind) {
    case ST_INPUT:
    case ST_LABEL:
        fprintf(out, "%s %s ", s->kind == ST_INPUT ? "Input" : "Label", s->name);
        dims_print(s, out);
        put_loc(s->loc, out);
        return;
    case ST_ASSIGN:
    case ST_SETTING:
        fprintf(out, "%s %s", s->kind == ST_ASSIGN ? "Assign" : "Setting", s->name);
        put_loc(s->loc, out);
        dump_expr(s->value, depth + 1, out);
        for (const AstAnnot *an = s->annots; an; an = an->next) {
            indent(depth + 1, out);
            fputs("Annot ", out);
            annot_print(an, out);
            put_loc(an->loc, out);
        }
        return;
    case ST_REPEAT:
        fprintf(out, "Repeat %s count=%lld section=%s carry=%s", s->name, (long long)s->count,
                s->section ? s->section : s->name, s->carry);
        put_loc(s->loc, out);
        indent(depth + 1, out);
        fputs("Init\n", out);
        dump_expr(s->value, depth + 2, out);
        dump_stmts(s->body, depth + 1, out);
        dump_return(s->ret, depth + 1, out);
        return;
    }
}

static void dump_stmts(const AstStmt *s, int depth, FILE *out) {
    for (; s; s = s->next)
        dump_stmt(s, depth, out);
}

void fe_ast_dump(const Ast *ast, FILE *out) {
    fprintf(out, "File %s\n", ast->file);
    if (ast->model) {
        fprintf(out, "Model %s", ast->model);
        put_loc(ast->model_name_loc, out);
        dump_stmts(ast->body, 1, out);
    }
    for (const AstDef *def = ast->defs; def; def = def->next) {
        fprintf(out, "Def %s(", def->name);
        for (const AstParam *p = def->params; p; p = p->next)
            fprintf(out, "%s%s", p == def->params ? "" : ", ", p->name);
        fputc(')', out);
        put_loc(def->name_loc, out);
        dump_stmts(def->body, 1, out);
        dump_return(def->ret, 1, out);
    }
    const AstBlock *blocks[3] = {ast->train, ast->cluster, ast->plan};
    const char *names[3] = {"Train", "Cluster", "Plan"};
    for (int i = 0; i < 3; i++) {
        if (!blocks[i]) continue;
        fputs(names[i], out);
        put_loc(blocks[i]->loc, out);
        dump_stmts(blocks[i]->settings, 1, out);
    }
}
