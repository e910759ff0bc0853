/*
 * mil_text.h -- private interface of the model.mil text reader: the tokenizer (mil_lexer.c) used
 * by the recursive-descent parser (mil_parser.c), and a lenient statement entry point for tests.
 *
 * Lexical rules follow coreml-format.md §3.3: identifiers [A-Za-z_][A-Za-z0-9_@.:]*, decimal and
 * C99 hex numbers with an optional leading '-', "-inf" / "-nan", double-quoted strings with the
 * escapes \" \\ \n \t, the punctuation ( ) [ ] { } < > , = ; ? and the arrow "->". Whitespace and
 * `//` comments separate tokens.
 */
#ifndef ANML_COREML_MIL_TEXT_H
#define ANML_COREML_MIL_TEXT_H

#include "coreml/program.h"

enum mil_tok_kind {
    MIL_TOK_EOF = 0,
    MIL_TOK_IDENT,
    MIL_TOK_INT,    /* -?[0-9]+ */
    MIL_TOK_FLOAT,  /* decimal with '.' or exponent, hex float, "-inf", "-nan" */
    MIL_TOK_STRING, /* the token spans the quotes; escapes are already checked */
    MIL_TOK_PUNCT,  /* one character, held in `punct` */
    MIL_TOK_ARROW,  /* "->" */
    MIL_TOK_ERROR,  /* a lexical error, described by lex_error */
    MIL_TOK_KIND_COUNT
};

enum mil_lex_error {
    MIL_LEX_OK = 0,
    MIL_LEX_BAD_CHAR,            /* a byte that starts no token */
    MIL_LEX_NUL,                 /* a NUL byte in the text */
    MIL_LEX_UNTERMINATED_STRING, /* end of input inside a string */
    MIL_LEX_BAD_ESCAPE,          /* backslash followed by something other than " \ n t */
    MIL_LEX_BAD_NUMBER,          /* e.g. "1e", "0x", "12ab", "1.2.3" */
    MIL_LEX_ERROR_COUNT
};

struct mil_token {
    enum mil_tok_kind kind;
    char punct;                   /* MIL_TOK_PUNCT */
    unsigned char bad;            /* MIL_TOK_ERROR: the offending byte */
    enum mil_lex_error lex_error; /* MIL_TOK_ERROR */
    size_t off, len;              /* byte span in the text */
    int32_t line, col;            /* 1-based position of the first byte */
};

struct mil_lexer {
    const char *text;
    size_t len;
    size_t pos;
    int32_t line, col;
};

void anml__mil_lexer_init(struct mil_lexer *lx, const char *text, size_t len);
/* Scans the next token. At the end of the text it keeps returning MIL_TOK_EOF; after an error
 * token it skips the offending byte(s), so it always makes progress. */
void anml__mil_lex_next(struct mil_lexer *lx, struct mil_token *tok);
/* "unterminated string", ... for an error token. */
const char *anml__mil_lex_error_str(enum mil_lex_error e);

/* Test hook: parses a bare sequence of statements (no program/func wrapper) into a new function
 * "main" (opset ios18) appended to prog. References to names that are not defined are accepted,
 * so single statements lifted out of a larger program can be checked on their own. */
enum anml_status anml__mil_parse_statements_for_test(struct mil_program *prog, const char *text,
                                                     size_t len, const char *filename,
                                                     struct anml_error *err);

#endif /* ANML_COREML_MIL_TEXT_H */
