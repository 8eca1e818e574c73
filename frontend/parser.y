/*
 * parser.y: the grammar of the .mp language (docs/language.md has it as EBNF; keep the
 * two in sync).
 *
 * A pure (reentrant) LALR(1) parser with locations: the lexer hands over each token with
 * its line/column span and byte offsets, the actions build the AST (ast.h) in the
 * compilation's arena, and every node keeps the span of the text it came from. The
 * grammar has no conflicts (%expect 0) and LAC makes the "expected ..." list of a syntax
 * error exact. A syntax error inside a statement or setting skips to the next ';', so
 * one run reports every broken statement, not only the first.
 *
 * Names are checked later (lower.c): the parser only knows shapes of text. Two things are
 * checked here because they are syntax in spirit: a dimension must be an integer or the
 * word `batch`, and `batch` may only be the leading dimension.
 */
%define api.pure full
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%define api.prefix {fe_yy}
%param {void *scanner}
%parse-param {FeParser *P}

%code requires {
#include "ast.h"

/* A token or rule span: lines and 1-based columns (inclusive) plus byte offsets into the
 * source, [first_byte, last_byte). */
typedef struct FeLoc {
    int first_line, first_column, last_line, last_column;
    size_t first_byte, last_byte;
} FeLoc;
#define FE_YYLTYPE FeLoc
#define FE_YYLTYPE_IS_DECLARED 1
#define FE_YYLTYPE_IS_TRIVIAL 1

/* The state shared by the lexer and the parser for one parse. */
typedef struct FeParser {
    Arena *a;
    Diag *d;
    const char *file;
    const char *src;
    size_t len;
    Ast *ast;
    /* the lexer's position: the next character's line, column and byte */
    int line, col;
    size_t byte;
    SrcLoc comment_loc; /* where the open block comment began */
    AstDim *dims; /* growable buffer for the dimension list being parsed */
    int ndims, dims_cap;
} FeParser;

/* Converts a parser span to a one-line SrcLoc (a span over several lines is marked to the
 * end of its first line). */
SrcLoc fe_loc(const FeParser *P, FeLoc l);
}

%code provides {
int fe_yylex(FE_YYSTYPE *lval, FE_YYLTYPE *lloc, void *scanner);
}

%code {
#include <stdlib.h>
#include <string.h>

#define YYLLOC_DEFAULT(Cur, Rhs, N)                                            \
    do {                                                                       \
        if (N) {                                                               \
            (Cur).first_line = YYRHSLOC(Rhs, 1).first_line;                    \
            (Cur).first_column = YYRHSLOC(Rhs, 1).first_column;                \
            (Cur).first_byte = YYRHSLOC(Rhs, 1).first_byte;                    \
            (Cur).last_line = YYRHSLOC(Rhs, N).last_line;                      \
            (Cur).last_column = YYRHSLOC(Rhs, N).last_column;                  \
            (Cur).last_byte = YYRHSLOC(Rhs, N).last_byte;                      \
        } else {                                                               \
            (Cur).first_line = (Cur).last_line = YYRHSLOC(Rhs, 0).last_line;   \
            (Cur).first_column = (Cur).last_column = YYRHSLOC(Rhs, 0).last_column; \
            (Cur).first_byte = (Cur).last_byte = YYRHSLOC(Rhs, 0).last_byte;   \
        }                                                                      \
    } while (0)

/* Deep nesting ends in a clean "nested too deeply" error, well before the recursive
 * walks over the tree could exhaust the C stack. */
#define YYMAXDEPTH 3000
#define YYINITDEPTH 200

static void fe_yyerror(FE_YYLTYPE *loc, void *scanner, FeParser *P, const char *msg);

#define LOC(l) fe_loc(P, (l))
#define NEW(T) ((T *)arena_alloc(P->a, sizeof(T)))

static AstExpr *new_expr(FeParser *P, AstExprKind k, FE_YYLTYPE l) {
    AstExpr *e = NEW(AstExpr);
    e->kind = k;
    e->loc = LOC(l);
    return e;
}

static AstExpr *new_number(FeParser *P, AstExpr *num, FE_YYLTYPE l, bool neg) {
    if (!neg) return num;
    AstExpr *e = new_expr(P, num->kind, l);
    e->ival = -num->ival;
    e->fval = -num->fval;
    e->lit = arena_printf(P->a, "-%s", num->lit);
    return e;
}

static AstArg *new_arg(FeParser *P, const char *key, FE_YYLTYPE kl, AstExpr *v, FE_YYLTYPE l) {
    AstArg *a = NEW(AstArg);
    a->key = key;
    a->key_loc = key ? LOC(kl) : (SrcLoc){0};
    a->value = v;
    a->loc = LOC(l);
    return a;
}

static AstStmt *new_stmt(FeParser *P, AstStmtKind k, FE_YYLTYPE l) {
    AstStmt *s = NEW(AstStmt);
    s->kind = k;
    s->loc = LOC(l);
    return s;
}

static AstAnnot *new_annot(FeParser *P, const char *name, FE_YYLTYPE l) {
    AstAnnot *an = NEW(AstAnnot);
    an->name = name;
    an->loc = LOC(l);
    return an;
}

/* Appends to a NULL-terminated singly linked list in O(length); lists are built
 * left-recursively with a tail kept in the list head's slot, see LIST_APPEND users. */
#define LIST_APPEND(T, head, item)                                             \
    do {                                                                       \
        T *it_ = (item);                                                       \
        if (!it_) break;                                                       \
        if (!(head).first) (head).first = it_;                                 \
        else (head).last->next = it_;                                          \
        (head).last = it_;                                                     \
    } while (0)

static void push_dim(FeParser *P, AstDim dim) {
    if (P->ndims == P->dims_cap) {
        int cap = P->dims_cap ? P->dims_cap * 2 : 8;
        AstDim *nd = arena_calloc(P->a, (size_t)cap, sizeof *nd);
        if (P->ndims) memcpy(nd, P->dims, (size_t)P->ndims * sizeof *nd);
        P->dims = nd;
        P->dims_cap = cap;
    }
    P->dims[P->ndims++] = dim;
}

static void end_decl(FeParser *P, AstStmt *s) {
    s->ndims = P->ndims;
    s->dims = arena_calloc(P->a, (size_t)(P->ndims ? P->ndims : 1), sizeof *s->dims);
    if (P->ndims) memcpy(s->dims, P->dims, (size_t)P->ndims * sizeof *s->dims);
    P->ndims = 0;
    for (int i = 1; i < s->ndims; i++)
        if (s->dims[i].is_batch)
            diag_error(P->d, s->dims[i].loc,
                       "'batch' may only be the leading dimension of '%s'", s->name);
    if (s->ndims > IR_MAX_RANK)
        diag_error(P->d, s->loc, "'%s' has %d dimensions; at most %d are supported", s->name,
                   s->ndims, IR_MAX_RANK);
}

static void add_def(FeParser *P, AstDef *def) {
    AstDef **p = &P->ast->defs;
    while (*p) p = &(*p)->next;
    *p = def;
    P->ast->ndefs++;
}

static void set_block(FeParser *P, AstBlock **slot, const char *what, AstBlock *b) {
    if (*slot) {
        diag_error(P->d, b->loc, "second '%s' block", what);
        diag_note(P->d, (*slot)->loc, "the first '%s' block is here", what);
        return;
    }
    *slot = b;
}
}

%union {
    const char *str;
    AstExpr *expr;
    AstArg *arg;
    struct { AstArg *first, *last; int n; } args;
    AstStmt *stmt;
    struct { AstStmt *first, *last; } stmts;
    AstAnnot *annot;
    struct { AstAnnot *first, *last; } annots;
    AstParam *param;
    struct { AstParam *first, *last; int n; } params;
    AstDef *def;
    AstBlock *block;
}

%token <str> IDENT "identifier"
%token <expr> INT "integer"
%token <expr> FLOAT "number"
%token <str> STRING "string"
%token MODEL "'model'" INPUT "'input'" LABEL "'label'" DEF "'def'" RETURN "'return'"
%token REPEAT "'repeat'" AS "'as'" TRAIN "'train'" CLUSTER "'cluster'" PLAN "'plan'"
%token TRUE "'true'" FALSE "'false'"

%type <expr> expr call value number
%type <arg> arg
%type <args> args args_opt
%type <stmt> model_stmt decl assign repeat body_stmt setting
%type <stmts> model_stmts body_stmts settings
%type <annot> annot
%type <annots> annots
%type <param> param
%type <params> params params_opt
%type <str> as_opt
%type <def> def
%type <block> block

%%

file
    : %empty
    | file top
    ;

top
    : MODEL IDENT '{' model_stmts '}' {
          if (P->ast->model) {
              diag_error(P->d, LOC(@2), "second model '%s'; a file holds one model", $2);
              diag_note(P->d, P->ast->model_name_loc, "the first model is here");
          } else {
              P->ast->model = $2;
              P->ast->model_loc = LOC(@$);
              P->ast->model_name_loc = LOC(@2);
              P->ast->body = $4.first;
          }
      }
    | def { add_def(P, $1); }
    | TRAIN block { set_block(P, &P->ast->train, "train", $2); }
    | CLUSTER block { set_block(P, &P->ast->cluster, "cluster", $2); }
    | PLAN block { set_block(P, &P->ast->plan, "plan", $2); }
    ;

model_stmts
    : %empty { $$.first = $$.last = NULL; }
    | model_stmts model_stmt { $$ = $1; LIST_APPEND(AstStmt, $$, $2); }
    ;

model_stmt
    : decl ';' { $$ = $1; }
    | assign ';' { $$ = $1; }
    | repeat { $$ = $1; }
    | error ';' { $$ = NULL; P->ndims = 0; }
    ;

decl
    : INPUT IDENT ':' IDENT '[' dims ']' {
          $$ = new_stmt(P, ST_INPUT, @$);
          $$->name = $2; $$->name_loc = LOC(@2);
          $$->dtype_name = $4; $$->dtype_loc = LOC(@4);
          end_decl(P, $$);
      }
    | LABEL IDENT ':' IDENT '[' dims ']' {
          $$ = new_stmt(P, ST_LABEL, @$);
          $$->name = $2; $$->name_loc = LOC(@2);
          $$->dtype_name = $4; $$->dtype_loc = LOC(@4);
          end_decl(P, $$);
      }
    ;

dims
    : dim
    | dims ',' dim
    ;

dim
    : INT { AstDim dm = {false, $1->ival, LOC(@1)}; push_dim(P, dm); }
    | IDENT {
          bool is_batch = strcmp($1, "batch") == 0;
          if (!is_batch)
              diag_error(P->d, LOC(@1),
                         "unknown dimension '%s'; a dimension is an integer or 'batch'", $1);
          AstDim dm = {is_batch, 1, LOC(@1)}; push_dim(P, dm);
      }
    ;

assign
    : IDENT '=' expr annots {
          $$ = new_stmt(P, ST_ASSIGN, @$);
          $$->name = $1; $$->name_loc = LOC(@1);
          $$->value = $3;
          $$->annots = $4.first;
      }
    ;

annots
    : %empty { $$.first = $$.last = NULL; }
    | annots annot { $$ = $1; LIST_APPEND(AstAnnot, $$, $2); }
    ;

annot
    : '@' IDENT { $$ = new_annot(P, $2, @$); }
    | '@' IDENT '(' IDENT ')' {
          $$ = new_annot(P, $2, @$);
          $$->arg = AN_ARG_NAME; $$->arg_name = $4; $$->arg_loc = LOC(@4);
      }
    | '@' IDENT '(' number ')' {
          $$ = new_annot(P, $2, @$);
          $$->arg = AN_ARG_INT; $$->arg_loc = LOC(@4);
          $$->arg_int = $4->ival;
          if ($4->kind != EX_INT)
              diag_error(P->d, LOC(@4), "annotation argument must be an integer");
      }
    ;

repeat
    : IDENT '=' REPEAT INT as_opt '(' IDENT '=' expr ')' '{' body_stmts RETURN expr ';' '}' {
          $$ = new_stmt(P, ST_REPEAT, @$);
          $$->loc = LOC(@1); /* the header line, for diagnostics */
          $$->loc.end_col = fe_loc(P, @10).end_col;
          $$->name = $1; $$->name_loc = LOC(@1);
          $$->count = $4->ival; $$->count_loc = LOC(@4);
          $$->section = $5; $$->section_loc = $5 ? LOC(@5) : LOC(@1);
          $$->carry = $7; $$->carry_loc = LOC(@7);
          $$->value = $9;
          $$->body = $12.first;
          $$->ret = $14; $$->ret_loc = LOC(@14);
      }
    ;

as_opt
    : %empty { $$ = NULL; }
    | AS IDENT { $$ = $2; @$ = @2; }
    ;

body_stmts
    : %empty { $$.first = $$.last = NULL; }
    | body_stmts body_stmt { $$ = $1; LIST_APPEND(AstStmt, $$, $2); }
    ;

body_stmt
    : assign ';' { $$ = $1; }
    | repeat { $$ = $1; }
    | error ';' { $$ = NULL; }
    ;

def
    : DEF IDENT '(' params_opt ')' '{' body_stmts RETURN expr ';' '}' {
          $$ = NEW(AstDef);
          $$->name = $2; $$->loc = LOC(@$); $$->name_loc = LOC(@2);
          $$->loc.end_col = fe_loc(P, @5).end_col;
          $$->params = $4.first; $$->nparams = $4.n;
          $$->body = $7.first;
          $$->ret = $9; $$->ret_loc = LOC(@9);
      }
    ;

params_opt
    : %empty { $$.first = $$.last = NULL; $$.n = 0; }
    | params { $$ = $1; }
    ;

params
    : param { $$.first = $$.last = $1; $$.n = 1; }
    | params ',' param { $$ = $1; LIST_APPEND(AstParam, $$, $3); $$.n++; }
    ;

param
    : IDENT { $$ = NEW(AstParam); $$->name = $1; $$->loc = LOC(@1); }
    ;

expr
    : IDENT { $$ = new_expr(P, EX_NAME, @1); $$->name = $1; }
    | call { $$ = $1; }
    ;

call
    : IDENT '(' args_opt ')' {
          $$ = new_expr(P, EX_CALL, @$);
          $$->name = $1; $$->name_loc = LOC(@1);
          $$->args = $3.first; $$->nargs = $3.n;
      }
    ;

args_opt
    : %empty { $$.first = $$.last = NULL; $$.n = 0; }
    | args { $$ = $1; }
    ;

args
    : arg { $$.first = $$.last = $1; $$.n = 1; }
    | args ',' arg { $$ = $1; LIST_APPEND(AstArg, $$, $3); $$.n++; }
    ;

arg
    : value { $$ = new_arg(P, NULL, @1, $1, @$); }
    | IDENT '=' value { $$ = new_arg(P, $1, @1, $3, @$); }
    ;

value
    : expr { $$ = $1; }
    | number { $$ = $1; }
    | TRUE { $$ = new_expr(P, EX_BOOL, @1); $$->ival = 1; $$->lit = "true"; }
    | FALSE { $$ = new_expr(P, EX_BOOL, @1); $$->ival = 0; $$->lit = "false"; }
    | STRING { $$ = new_expr(P, EX_STRING, @1); $$->name = $1; }
    ;

number
    : INT { $$ = new_number(P, $1, @$, false); }
    | FLOAT { $$ = new_number(P, $1, @$, false); }
    | '-' INT { $$ = new_number(P, $2, @$, true); }
    | '-' FLOAT { $$ = new_number(P, $2, @$, true); }
    ;

block
    : '{' settings '}' { $$ = NEW(AstBlock); $$->loc = LOC(@$); $$->settings = $2.first; }
    ;

settings
    : %empty { $$.first = $$.last = NULL; }
    | settings setting { $$ = $1; LIST_APPEND(AstStmt, $$, $2); }
    ;

setting
    : IDENT '=' value ';' {
          $$ = new_stmt(P, ST_SETTING, @$);
          $$->name = $1; $$->name_loc = LOC(@1);
          $$->value = $3;
      }
    | error ';' { $$ = NULL; }
    ;

%%

SrcLoc fe_loc(const FeParser *P, FeLoc l) {
    SrcLoc s = {P->file, l.first_line, l.first_column, l.last_column};
    if (l.last_line != l.first_line) s.end_col = 1 << 20; /* clipped to the line by diag */
    if (s.end_col < s.col) s.end_col = s.col;
    return s;
}

static void fe_yyerror(FE_YYLTYPE *loc, void *scanner, FeParser *P, const char *msg) {
    (void)scanner;
    if (strstr(msg, "exhausted"))
        diag_error(P->d, fe_loc(P, *loc), "expression or block nested too deeply");
    else
        diag_error(P->d, fe_loc(P, *loc), "%s", msg);
}

/* Appends a token's name to buf: keywords and punctuation quoted, classes plain. */
static size_t put_symbol(char *buf, size_t n, size_t k, yysymbol_kind_t sym) {
    const char *name = yysymbol_name(sym);
    size_t len = strlen(name);
    if (len >= 2 && name[0] == '"' && name[len - 1] == '"') {
        name++;
        len -= 2;
    }
    if (k < n) k += (size_t)snprintf(buf + k, n - k, "%.*s", (int)len, name);
    return k;
}

/* "unexpected identifier 'foo'; expected ';' or '@'": what the user wrote, and (thanks to
 * LAC, exactly) every token that could have come instead. */
static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner, FeParser *P) {
    (void)scanner;
    char msg[1024];
    size_t k = 0, n = sizeof msg;
    const FE_YYLTYPE *l = yypcontext_location(ctx);
    yysymbol_kind_t look = yypcontext_token(ctx);
    k += (size_t)snprintf(msg + k, n - k, "syntax error: unexpected ");
    if (look == YYSYMBOL_YYEOF) {
        k += (size_t)snprintf(msg + k, n - k, "end of file");
    } else {
        k = put_symbol(msg, n, k, look);
        if ((look == YYSYMBOL_IDENT || look == YYSYMBOL_INT || look == YYSYMBOL_FLOAT) &&
            l->last_byte > l->first_byte && l->last_byte - l->first_byte < 40 && k < n)
            k += (size_t)snprintf(msg + k, n - k, " '%.*s'", (int)(l->last_byte - l->first_byte),
                                  P->src + l->first_byte);
    }
    yysymbol_kind_t exp[YYNTOKENS];
    int ne = yypcontext_expected_tokens(ctx, exp, YYNTOKENS);
    for (int i = 0; i < ne && k < n; i++) {
        k += (size_t)snprintf(msg + k, n - k, "%s", i == 0 ? "; expected " : i == ne - 1 ? " or " : ", ");
        k = put_symbol(msg, n, k, exp[i]);
    }
    diag_error(P->d, fe_loc(P, *l), "%s", msg);
    return 0;
}
