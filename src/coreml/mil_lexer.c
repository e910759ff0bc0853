/*
 * mil_lexer.c -- the model.mil tokenizer (coreml-format.md §3.3). It scans one token at a time
 * over text that need not be NUL-terminated, tracks line:col for error positions, and never fails:
 * malformed input becomes a MIL_TOK_ERROR token that the parser reports where it stands.
 *
 * Numbers are only delimited here; their values are converted by the parser, which knows the
 * dtype they must fit.
 */
#include <string.h>

#include "coreml/mil_text.h"

void anml__mil_lexer_init(struct mil_lexer *lx, const char *text, size_t len) {
    lx->text = text;
    lx->len = len;
    lx->pos = 0;
    lx->line = 1;
    lx->col = 1;
}

const char *anml__mil_lex_error_str(enum mil_lex_error e) {
    switch (e) {
    case MIL_LEX_OK: return "no error";
    case MIL_LEX_BAD_CHAR: return "unexpected character";
    case MIL_LEX_NUL: return "NUL byte in the text";
    case MIL_LEX_UNTERMINATED_STRING: return "unterminated string";
    case MIL_LEX_BAD_ESCAPE: return "invalid escape in string (only \\\" \\\\ \\n \\t are allowed)";
    case MIL_LEX_BAD_NUMBER: return "malformed number";
    case MIL_LEX_ERROR_COUNT: break;
    }
    return "lexical error";
}

static bool is_ident_start(int c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_ident_char(int c) {
    return is_ident_start(c) || (c >= '0' && c <= '9') || c == '@' || c == '.' || c == ':';
}

static bool is_digit(int c) {
    return c >= '0' && c <= '9';
}

static bool is_hex(int c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int at(const struct mil_lexer *lx, size_t i) {
    return i < lx->len ? (unsigned char)lx->text[i] : -1;
}

/* Moves pos to `end`, keeping line:col in step (strings may span lines). */
static void advance_to(struct mil_lexer *lx, size_t end) {
    while (lx->pos < end) {
        if (lx->text[lx->pos] == '\n') {
            if (lx->line < INT32_MAX) {
                lx->line++;
            }
            lx->col = 1;
        } else if (lx->col < INT32_MAX) {
            lx->col++;
        }
        lx->pos++;
    }
}

static void skip_space_and_comments(struct mil_lexer *lx) {
    for (;;) {
        int c = at(lx, lx->pos);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v') {
            advance_to(lx, lx->pos + 1);
        } else if (c == '/' && at(lx, lx->pos + 1) == '/') {
            size_t e = lx->pos;
            while (e < lx->len && lx->text[e] != '\n') {
                e++;
            }
            advance_to(lx, e);
        } else {
            return;
        }
    }
}

/* Scans a number starting at pos (optional '-' included); returns its end and whether it is a
 * float, or 0 when it is malformed (then *end is where scanning stopped). */
static bool scan_number(const struct mil_lexer *lx, size_t *end, bool *is_float) {
    size_t i = lx->pos;
    *is_float = false;
    if (at(lx, i) == '-') {
        i++;
    }
    if (at(lx, i) == '0' && (at(lx, i + 1) == 'x' || at(lx, i + 1) == 'X')) {
        /* C99 hex float: 0xH[.H]p[+-]D; the binary exponent is required */
        i += 2;
        size_t n_digits = 0;
        while (is_hex(at(lx, i))) {
            i++;
            n_digits++;
        }
        if (at(lx, i) == '.') {
            i++;
            while (is_hex(at(lx, i))) {
                i++;
                n_digits++;
            }
        }
        *is_float = true;
        if (n_digits == 0 || (at(lx, i) != 'p' && at(lx, i) != 'P')) {
            *end = i;
            return false;
        }
        i++;
    } else {
        size_t n_digits = 0;
        while (is_digit(at(lx, i))) {
            i++;
            n_digits++;
        }
        if (at(lx, i) == '.') {
            *is_float = true;
            i++;
            while (is_digit(at(lx, i))) {
                i++;
                n_digits++;
            }
        }
        if (n_digits == 0) {
            *end = i;
            return false;
        }
        if (at(lx, i) != 'e' && at(lx, i) != 'E') {
            *end = i;
            return !is_ident_char(at(lx, i));
        }
        *is_float = true;
        i++;
    }
    /* exponent digits (after 'p' or 'e') */
    if (at(lx, i) == '+' || at(lx, i) == '-') {
        i++;
    }
    size_t n_exp = 0;
    while (is_digit(at(lx, i))) {
        i++;
        n_exp++;
    }
    *end = i;
    return n_exp > 0 && !is_ident_char(at(lx, i));
}

static void make_error(struct mil_lexer *lx, struct mil_token *tok, enum mil_lex_error e,
                       size_t end) {
    tok->kind = MIL_TOK_ERROR;
    tok->lex_error = e;
    tok->bad = (unsigned char)lx->text[tok->off];
    tok->len = end - tok->off;
    advance_to(lx, end);
}

static void scan_string(struct mil_lexer *lx, struct mil_token *tok) {
    size_t i = lx->pos + 1;
    for (;;) {
        int c = at(lx, i);
        if (c < 0) {
            make_error(lx, tok, MIL_LEX_UNTERMINATED_STRING, lx->len);
            return;
        }
        if (c == 0) {
            make_error(lx, tok, MIL_LEX_NUL, i + 1);
            return;
        }
        if (c == '"') {
            break;
        }
        if (c == '\\') {
            int e = at(lx, i + 1);
            if (e != '"' && e != '\\' && e != 'n' && e != 't') {
                make_error(lx, tok, MIL_LEX_BAD_ESCAPE, e < 0 ? lx->len : i + 2);
                return;
            }
            i += 2;
            continue;
        }
        i++;
    }
    tok->kind = MIL_TOK_STRING;
    tok->len = i + 1 - lx->pos;
    advance_to(lx, i + 1);
}

void anml__mil_lex_next(struct mil_lexer *lx, struct mil_token *tok) {
    skip_space_and_comments(lx);
    tok->kind = MIL_TOK_EOF;
    tok->punct = 0;
    tok->bad = 0;
    tok->lex_error = MIL_LEX_OK;
    tok->off = lx->pos;
    tok->len = 0;
    tok->line = lx->line;
    tok->col = lx->col;
    int c = at(lx, lx->pos);
    if (c < 0) {
        return;
    }
    if (c == 0) {
        make_error(lx, tok, MIL_LEX_NUL, lx->pos + 1);
        return;
    }
    if (is_ident_start(c)) {
        size_t e = lx->pos + 1;
        while (is_ident_char(at(lx, e))) {
            e++;
        }
        tok->kind = MIL_TOK_IDENT;
        tok->len = e - lx->pos;
        advance_to(lx, e);
        return;
    }
    if (c == '"') {
        scan_string(lx, tok);
        return;
    }
    if (c == '-' && at(lx, lx->pos + 1) == '>') {
        tok->kind = MIL_TOK_ARROW;
        tok->len = 2;
        advance_to(lx, lx->pos + 2);
        return;
    }
    if (c == '-' && is_ident_start(at(lx, lx->pos + 1))) {
        /* only "-inf" and "-nan" are negative words */
        size_t e = lx->pos + 1;
        while (is_ident_char(at(lx, e))) {
            e++;
        }
        size_t n = e - lx->pos;
        const char *s = lx->text + lx->pos;
        if (n == 4 && (memcmp(s, "-inf", 4) == 0 || memcmp(s, "-nan", 4) == 0)) {
            tok->kind = MIL_TOK_FLOAT;
            tok->len = n;
            advance_to(lx, e);
        } else {
            make_error(lx, tok, MIL_LEX_BAD_NUMBER, e);
        }
        return;
    }
    if (c == '-' || is_digit(c) || (c == '.' && is_digit(at(lx, lx->pos + 1)))) {
        size_t e;
        bool is_float;
        if (!scan_number(lx, &e, &is_float)) {
            while (is_ident_char(at(lx, e)) || at(lx, e) == '.') {
                e++; /* swallow the rest of the malformed word so the message shows it */
            }
            make_error(lx, tok, MIL_LEX_BAD_NUMBER, e > lx->pos ? e : lx->pos + 1);
            return;
        }
        tok->kind = is_float ? MIL_TOK_FLOAT : MIL_TOK_INT;
        tok->len = e - lx->pos;
        advance_to(lx, e);
        return;
    }
    switch (c) {
    case '(':
    case ')':
    case '[':
    case ']':
    case '{':
    case '}':
    case '<':
    case '>':
    case ',':
    case '=':
    case ';':
    case '?':
        tok->kind = MIL_TOK_PUNCT;
        tok->punct = (char)c;
        tok->len = 1;
        advance_to(lx, lx->pos + 1);
        return;
    default: break;
    }
    make_error(lx, tok, MIL_LEX_BAD_CHAR, lx->pos + 1);
}
