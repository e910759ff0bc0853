/* test_tokenizer.c -- the tokenizer on small tokenizer.json files written here: the GPT-2 byte
 * alphabet, merge order (rank, then leftmost), both merge spellings, ignore_merges, added tokens
 * (special / non-special, longest match, lstrip / rstrip / single_word, normalized), Split
 * behaviours, a SentencePiece-style tokenizer (Prepend/Replace normalizer, byte fallback, unk,
 * Strip decoder), lossy decoding, the streaming detokenizer on an emoji split over four tokens,
 * snprintf-style sizes, tokenizer_config.json specials, and clear load errors. Expected ids are
 * worked out by hand from the vocabularies below. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"
#include "testutil.h"

/* ---- helpers ---- */

static size_t put_utf8(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6)); /* the byte alphabet stays below U+0800 */
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

/* JSON members "<char of byte b>": b for all 256 bytes, comma-separated. */
static char *byte_vocab(void) {
    char *s = malloc(256 * 16);
    size_t n = 0;
    for (int b = 0; b < 256; b++) {
        char u[4];
        size_t k = put_utf8(anml__bytelevel_char((uint8_t)b), u);
        s[n++] = '"';
        if (u[0] == '"' || u[0] == '\\') {
            s[n++] = '\\';
        }
        memcpy(s + n, u, k);
        n += k;
        n += (size_t)snprintf(s + n, 16, "\": %d%s", b, b < 255 ? ", " : "");
    }
    s[n] = '\0';
    return s;
}

static char *g_dir;

static void write_file(const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_file(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    remove(path);
}

static enum anml_status try_load(const char *json, struct anml_tokenizer **tok,
                                 struct anml_error *err) {
    write_file("tokenizer.json", json);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", g_dir);
    return anml_tokenizer_load(path, tok, err);
}

static struct anml_tokenizer *load_json(const char *json) {
    struct anml_tokenizer *tok = NULL;
    struct anml_error err = { 0 };
    if (try_load(json, &tok, &err) != ANML_OK) {
        fail_msg("load failed: %s: %s", err.where, err.msg);
    }
    return tok;
}

/* A byte-level tokenizer: ids 0..255 are the bytes, extra vocab and merges as given. */
static struct anml_tokenizer *load_bytelevel(const char *extra_vocab, const char *merges,
                                             const char *added, const char *normalizer,
                                             bool ignore_merges) {
    char *bv = byte_vocab();
    size_t cap = strlen(bv) + strlen(extra_vocab) + strlen(merges) + strlen(added) + 2048;
    char *json = malloc(cap);
    snprintf(
        json, cap,
        "{\"version\": \"1.0\", \"added_tokens\": [%s], \"normalizer\": %s,\n"
        " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [\n"
        "   {\"type\": \"Split\", \"pattern\": {\"Regex\": "
        "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "
        "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
        " \"behavior\": \"Isolated\", \"invert\": false},\n"
        "   {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]},\n"
        " \"decoder\": {\"type\": \"ByteLevel\"},\n"
        " \"model\": {\"type\": \"BPE\", \"ignore_merges\": %s, \"vocab\": {%s%s%s},\n"
        "   \"merges\": [%s]}}\n",
        added, normalizer, ignore_merges ? "true" : "false", bv, extra_vocab[0] ? ", " : "",
        extra_vocab, merges);
    struct anml_tokenizer *tok = load_json(json);
    free(json);
    free(bv);
    return tok;
}

static int32_t enc(const struct anml_tokenizer *tok, const char *text, bool special, int32_t *ids) {
    int32_t n = anml_tokenizer_encode(tok, text, strlen(text), special, ids, 64);
    assert_false(ANML_TOKENIZER_IS_ERROR(n));
    assert_true(n >= 0);
    return n;
}

#define ASSERT_IDS(tok, text, special, ...)                                         \
  do {                                                                              \
    const int32_t want_[] = { __VA_ARGS__ };                                        \
    int32_t got_[64];                                                               \
    int32_t n_ = enc(tok, text, special, got_);                                     \
    int32_t nw_ = (int32_t)(sizeof want_ / sizeof want_[0]);                        \
    if (n_ != nw_ || memcmp(got_, want_, sizeof want_) != 0) {                      \
      fprintf(stderr, "text \"%s\": got", text);                                    \
      for (int32_t i_ = 0; i_ < n_; i_++) {                                         \
        fprintf(stderr, " %d", (int)got_[i_]);                                      \
      }                                                                             \
      fprintf(stderr, "\n");                                                        \
      fail_msg("ids differ for \"%s\" (%d ids, want %d)", text, (int)n_, (int)nw_); \
    }                                                                               \
  } while (0)

static char *dec(const struct anml_tokenizer *tok, const int32_t *ids, int32_t n, bool skip) {
    static char buf[512];
    int32_t got = anml_tokenizer_decode(tok, ids, n, skip, buf, sizeof buf);
    assert_true(got >= 0 && got < (int32_t)sizeof buf);
    return buf;
}

/* ---- the byte alphabet (GPT-2 bytes_to_unicode) ---- */

static void test_bytelevel_alphabet(void **state) {
    (void)state;
    /* printable Latin-1 stands for itself; the rest go to U+0100.. in byte order */
    assert_int_equal(anml__bytelevel_char('a'), 'a');
    assert_int_equal(anml__bytelevel_char('!'), '!');
    assert_int_equal(anml__bytelevel_char('~'), '~');
    assert_int_equal(anml__bytelevel_char(0xA1), 0xA1);
    assert_int_equal(anml__bytelevel_char(0xFF), 0xFF);
    assert_int_equal(anml__bytelevel_char(0x00), 0x100); /* Ā */
    assert_int_equal(anml__bytelevel_char('\t'), 0x109); /* ĉ */
    assert_int_equal(anml__bytelevel_char('\n'), 0x10A); /* Ċ */
    assert_int_equal(anml__bytelevel_char(' '), 0x120);  /* Ġ */
    assert_int_equal(anml__bytelevel_char(0x7F), 0x121); /* ġ */
    assert_int_equal(anml__bytelevel_char(0xA0), 0x142); /* ł */
    assert_int_equal(anml__bytelevel_char(0xAD), 0x143); /* Ń */
    bool seen[0x144] = { false };
    for (int b = 0; b < 256; b++) {
        uint32_t cp = anml__bytelevel_char((uint8_t)b);
        assert_true(cp < 0x144);
        assert_false(seen[cp]);
        seen[cp] = true;
        assert_int_equal(anml__bytelevel_byte(cp), b);
    }
    assert_int_equal(anml__bytelevel_byte(' '), -1);
    assert_int_equal(anml__bytelevel_byte(0xAD), -1);
    assert_int_equal(anml__bytelevel_byte(0x144), -1);
    assert_int_equal(anml__bytelevel_byte(0x4E2D), -1);
}

/* ---- UTF-8 helpers (Unicode §3.9, "U+FFFD substitution of maximal subparts") ---- */

static void test_utf8_lossy(void **state) {
    (void)state;
    uint8_t out[64];
    size_t used;
    /* F0 9F is a truncated 4-byte sequence: one U+FFFD, then 'a' */
    size_t n = anml__utf8_lossy((const uint8_t *)"\xF0\x9F"
                                                 "a",
                                3, true, out, &used);
    assert_int_equal(n, 4);
    assert_memory_equal(out,
                        "\xEF\xBF\xBD"
                        "a",
                        4);
    /* a surrogate ED A0 80 is three maximal subparts of one byte each */
    n = anml__utf8_lossy((const uint8_t *)"\xED\xA0\x80", 3, true, out, &used);
    assert_int_equal(n, 9);
    /* not final: an incomplete tail waits */
    n = anml__utf8_lossy((const uint8_t *)"x\xE2\x82", 3, false, out, &used);
    assert_int_equal(n, 1);
    assert_int_equal(used, 1);
    size_t bad = 0;
    assert_int_equal(anml__utf8_seq((const uint8_t *)"\xE2\x82\xAC", 3, &bad), 3);
    assert_int_equal(anml__utf8_seq((const uint8_t *)"\xE2\x82", 2, &bad), -1);
    assert_int_equal(anml__utf8_seq((const uint8_t *)"\xE2\x41", 2, &bad), 0);
    assert_int_equal(bad, 1);
    assert_int_equal(anml__utf8_seq((const uint8_t *)"\xC0\xAF", 2, &bad), 0); /* overlong */
    assert_int_equal(anml__utf8_seq((const uint8_t *)"\xF4\x90\x80\x80", 4, &bad), 0);
}

/* ---- merges ---- */

static void test_merges_by_rank(void **state) {
    (void)state;
    /* "a b" (rank 0) then "ab c" (rank 1), string form */
    struct anml_tokenizer *tok =
        load_bytelevel("\"ab\": 256, \"abc\": 257", "\"a b\", \"ab c\"", "", "null", false);
    ASSERT_IDS(tok, "abc", true, 257);
    ASSERT_IDS(tok, "abcab", true, 257, 256);
    ASSERT_IDS(tok, "cab", true, 'c', 256);
    ASSERT_IDS(tok, "ab cab", true, 256, ' ', 'c', 256); /* " cab" is one word */
    assert_int_equal(anml_tokenizer_n_vocab(tok), 258);
    assert_int_equal(anml_tokenizer_token_id(tok, "abc"), 257);
    assert_int_equal(anml_tokenizer_token_id(tok, "\xC4\xA0"), ' '); /* Ġ */
    assert_int_equal(anml_tokenizer_token_id(tok, "zz"), -1);
    assert_string_equal(anml_tokenizer_token_text(tok, ' '), "\xC4\xA0");
    size_t len;
    const char *piece = anml_tokenizer_token_to_piece(tok, ' ', &len);
    assert_int_equal(len, 1);
    assert_int_equal(piece[0], ' ');
    assert_null(anml_tokenizer_token_to_piece(tok, 258, &len));
    assert_null(anml_tokenizer_token_to_piece(tok, -1, &len));
    anml_tokenizer_free(tok);

    /* array form; "b c" ranks first, so "abc" becomes a + bc and (a, bc) has no merge */
    tok = load_bytelevel("\"ab\": 256, \"abc\": 257, \"bc\": 258",
                         "[\"b\", \"c\"], [\"a\", \"b\"], [\"ab\", \"c\"]", "", "null", false);
    ASSERT_IDS(tok, "abc", true, 'a', 258);
    ASSERT_IDS(tok, "abab", true, 256, 256);
    anml_tokenizer_free(tok);
}

static void test_merges_leftmost_on_ties(void **state) {
    (void)state;
    struct anml_tokenizer *tok = load_bytelevel("\"aa\": 256", "\"a a\"", "", "null", false);
    ASSERT_IDS(tok, "aaa", true, 256, 'a'); /* two equal-rank pairs: the left one merges */
    ASSERT_IDS(tok, "aaaaa", true, 256, 256, 'a');
    anml_tokenizer_free(tok);
}

static void test_ignore_merges(void **state) {
    (void)state;
    const char *vocab = "\"ab\": 256, \"abc\": 257, \"abcd\": 258";
    struct anml_tokenizer *tok = load_bytelevel(vocab, "\"a b\", \"ab c\"", "", "null", true);
    ASSERT_IDS(tok, "abcd", true, 258); /* whole word in the vocabulary: no merging */
    ASSERT_IDS(tok, "abce", true, 257, 'e');
    anml_tokenizer_free(tok);
    tok = load_bytelevel(vocab, "\"a b\", \"ab c\"", "", "null", false);
    ASSERT_IDS(tok, "abcd", true, 257, 'd');
    anml_tokenizer_free(tok);
}

/* The reference's regex engine does not count U+180E (a format character since Unicode 6.3) as
 * \s; PCRE2 would, and "  <U+180E>" would split as "  " + U+180E instead of " " + " <U+180E>". */
static void test_regex_whitespace_is_white_space(void **state) {
    (void)state;
    struct anml_tokenizer *tok =
        load_bytelevel("\"\xC4\xA0\xC4\xA0\": 256", "\"\xC4\xA0 \xC4\xA0\"", "", "null", false);
    ASSERT_IDS(tok, "a  \xE1\xA0\x8E", true, 'a', ' ', ' ', 0xE1, 0xA0, 0x8E);
    ASSERT_IDS(tok, "a  \xE3\x80\x80", true, 'a', 256, 0xE3, 0x80, 0x80); /* U+3000 is */
    ASSERT_IDS(tok, "a  b", true, 'a', ' ', ' ', 'b');
    anml_tokenizer_free(tok);
}

/* ---- added tokens ---- */

static const char k_added[] =
    "{\"id\": 257, \"content\": \"<|end|>\", \"special\": true},"
    "{\"id\": 258, \"content\": \"<x>\", \"special\": false, \"normalized\": false},"
    "{\"id\": 259, \"content\": \"<ls>\", \"special\": true, \"lstrip\": true},"
    "{\"id\": 260, \"content\": \"<rs>\", \"special\": true, \"rstrip\": true},"
    "{\"id\": 261, \"content\": \"word\", \"special\": false, \"single_word\": true,"
    " \"normalized\": false},"
    "{\"id\": 262, \"content\": \"<|e\", \"special\": true},"
    "{\"id\": 263, \"content\": \"<|im_end|>\", \"special\": true}";

static void test_added_tokens(void **state) {
    (void)state;
    struct anml_tokenizer *tok = load_bytelevel("\"ab\": 256", "\"a b\"", k_added, "null", false);
    ASSERT_IDS(tok, "<|end|>", true, 257); /* longest match wins over "<|e" */
    ASSERT_IDS(tok, "<|en", true, 262, 'n');
    ASSERT_IDS(tok, "ab<|end|>ab", true, 256, 257, 256);
    /* parse_special off: special tokens are text, the non-special <x> still matches */
    ASSERT_IDS(tok, "<|end|>", false, '<', '|', 'e', 'n', 'd', '|', '>');
    ASSERT_IDS(tok, "a<x>b", false, 'a', 258, 'b');
    /* lstrip eats the spaces before, rstrip the spaces after */
    ASSERT_IDS(tok, "a  <ls>b", true, 'a', 259, 'b');
    ASSERT_IDS(tok, "a<rs>  b", true, 'a', 260, 'b');
    ASSERT_IDS(tok, "a <rs>", true, 'a', ' ', 260); /* no lstrip: the space stays */
    /* single_word: only where no word character touches it */
    ASSERT_IDS(tok, "a word.", true, 'a', ' ', 261, '.');
    ASSERT_IDS(tok, "awordb", true, 'a', 'w', 'o', 'r', 'd', 'b');
    assert_true(anml_tokenizer_is_special(tok, 257));
    assert_false(anml_tokenizer_is_special(tok, 258));
    assert_false(anml_tokenizer_is_special(tok, 256));
    const int32_t ids[] = { 256, 257, 258 };
    assert_string_equal(dec(tok, ids, 3, false), "ab<|end|><x>");
    assert_string_equal(dec(tok, ids, 3, true), "ab<x>");
    assert_int_equal(anml_tokenizer_token_id(tok, "<|end|>"), 257);
    anml_tokenizer_free(tok);
}

static void test_added_normalized(void **state) {
    (void)state;
    /* "ét" precomposed as a normalized added token under an NFC normalizer matches the
     * decomposed spelling e + U+0301 + t too; a non-normalized one only matches itself */
    const char *added =
        "{\"id\": 256, \"content\": \"\xC3\xA9t\", \"special\": false, \"normalized\": true},"
        "{\"id\": 257, \"content\": \"o\xCC\x88\", \"special\": false, \"normalized\": false}";
    struct anml_tokenizer *tok = load_bytelevel("", "", added, "{\"type\": \"NFC\"}", false);
    ASSERT_IDS(tok, "e\xCC\x81t", true, 256);
    ASSERT_IDS(tok, "\xC3\xA9t", true, 256);
    ASSERT_IDS(tok, "o\xCC\x88", true, 257);       /* raw match before normalization */
    ASSERT_IDS(tok, "\xC3\xB6", true, 0xC3, 0xB6); /* ö precomposed: not the raw token */
    /* NFC applies to plain text: decomposed ü becomes C3 BC */
    ASSERT_IDS(tok, "u\xCC\x88", true, 0xC3, 0xBC);
    anml_tokenizer_free(tok);
}

/* Ids of added tokens follow the reference library, which ignores the ids written in the file:
 * a content found in the vocabulary takes that id ("é" is the byte alphabet's stand-in for 0xE9,
 * id 233), the others take the next ids after the vocabulary in file order, a repeated content
 * keeps its first id. Decoding runs every token through the ByteLevel decoder ("<ü>" becomes
 * "<" 0xFC ">", 0xFC being ill-formed), except tokens with characters outside the alphabet.
 * All expected values were produced by the reference library on this tokenizer.json. */
static void test_added_ids_as_reference(void **state) {
    (void)state;
    const char *added = "{\"id\": 260, \"content\": \"<a>\", \"special\": true},"
                        "{\"id\": 258, \"content\": \"<b>\", \"special\": true},"
                        "{\"id\": 5, \"content\": \"<c>\", \"special\": false},"
                        "{\"id\": 300, \"content\": \"\xC3\xA9\", \"special\": true},"
                        "{\"id\": 301, \"content\": \"ab\", \"special\": false},"
                        "{\"id\": 302, \"content\": \"<\xC3\xBC>\", \"special\": false},"
                        "{\"id\": 303, \"content\": \"a b\", \"special\": false},"
                        "{\"id\": 304, \"content\": \"<a>\", \"special\": false}";
    struct anml_tokenizer *tok = load_bytelevel("", "", added, "null", false);
    ASSERT_IDS(tok, "<a><b><c>", true, 256, 257, 258);
    ASSERT_IDS(tok, "\xC3\xA9", true, 233);
    ASSERT_IDS(tok, "ab", true, 259);
    ASSERT_IDS(tok, "x<\xC3\xBC>y", true, 'x', 260, 'y');
    ASSERT_IDS(tok, "a b", true, 261);
    assert_int_equal(anml_tokenizer_n_vocab(tok), 262);
    assert_true(anml_tokenizer_is_special(tok, 233));
    assert_true(anml_tokenizer_is_special(tok, 256)); /* the repeat does not unmark it */
    const int32_t e_acute[] = { 233 };
    assert_string_equal(dec(tok, e_acute, 1, false), "\xEF\xBF\xBD");
    assert_string_equal(dec(tok, e_acute, 1, true), "");
    const int32_t u_umlaut[] = { 260 };
    assert_string_equal(dec(tok, u_umlaut, 1, false), "<\xEF\xBF\xBD>");
    const int32_t a_b[] = { 261, 258 };
    assert_string_equal(dec(tok, a_b, 2, false), "a b<c>");
    anml_tokenizer_free(tok);
}

/* ---- Split behaviours, on a character-level vocabulary (no byte level) ---- */

static void check_split(const char *behavior, const char *text, const int32_t *want, int nw) {
    char json[2048];
    snprintf(json, sizeof json,
             "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \"-\"},"
             " \"behavior\": \"%s\", \"invert\": false},"
             " \"decoder\": {\"type\": \"Fuse\"},"
             " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"-\": 2,"
             " \"a-\": 3, \"-b\": 4, \"--\": 5}, \"merges\": [\"a -\", \"- b\", \"- -\"]}}",
             behavior);
    struct anml_tokenizer *tok = load_json(json);
    int32_t got[64];
    int32_t n = enc(tok, text, true, got);
    if (n != nw || memcmp(got, want, (size_t)nw * sizeof *want) != 0) {
        fail_msg("Split %s on \"%s\": got %d ids (first %d)", behavior, text, (int)n,
                 n ? (int)got[0] : -1);
    }
    anml_tokenizer_free(tok);
}

static void test_split_behaviors(void **state) {
    (void)state;
    check_split("Isolated", "a-b", (const int32_t[]){ 0, 2, 1 }, 3);
    check_split("Removed", "a-b", (const int32_t[]){ 0, 1 }, 2);
    check_split("MergedWithPrevious", "a-b", (const int32_t[]){ 3, 1 }, 2);
    check_split("MergedWithNext", "a-b", (const int32_t[]){ 0, 4 }, 2);
    check_split("Isolated", "a--b", (const int32_t[]){ 0, 2, 2, 1 }, 4);
    check_split("Contiguous", "a--b", (const int32_t[]){ 0, 5, 1 }, 3);
}

/* ---- SentencePiece-style BPE: Prepend/Replace normalizer, byte fallback, unk, Strip ---- */

static const char k_spm[] =
    "{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
    "  {\"type\": \"Prepend\", \"prepend\": \"\xE2\x96\x81\"},"
    "  {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\xE2\x96\x81\"}]},"
    " \"pre_tokenizer\": null,"
    " \"decoder\": {\"type\": \"Sequence\", \"decoders\": ["
    "  {\"type\": \"Replace\", \"pattern\": {\"String\": \"\xE2\x96\x81\"}, \"content\": \" \"},"
    "  {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},"
    "  {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},"
    " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": true,"
    "  \"fuse_unk\": true,"
    "  \"vocab\": {\"<unk>\": 0, \"\xE2\x96\x81\": 1, \"a\": 2, \"b\": 3, \"\xE2\x96\x81"
    "a\": 4,"
    "   \"<0xC3>\": 5, \"<0xA9>\": 6},"
    "  \"merges\": [[\"\xE2\x96\x81\", \"a\"]]}}";

static void test_sentencepiece_style(void **state) {
    (void)state;
    struct anml_tokenizer *tok = load_json(k_spm);
    ASSERT_IDS(tok, "a b", true, 4, 1, 3);
    ASSERT_IDS(tok, "\xC3\xA9", true, 1, 5, 6); /* é: not in the vocabulary -> its bytes */
    ASSERT_IDS(tok, "zz", true, 1, 0);          /* unknown, no byte tokens: one fused <unk> */
    const int32_t ab[] = { 4, 1, 3 };
    assert_string_equal(dec(tok, ab, 3, false), "a b"); /* the leading space is stripped */
    const int32_t e_acute[] = { 1, 5, 6 };
    assert_string_equal(dec(tok, e_acute, 3, false), "\xC3\xA9");
    /* streamed: the stripped space gives nothing, C3 waits for A9 */
    struct anml_detok *d;
    const char *text;
    size_t len;
    assert_int_equal(anml_detok_create(tok, false, &d), ANML_OK);
    assert_int_equal(anml_detok_feed(d, 1, &text, &len), ANML_OK);
    assert_int_equal(len, 0);
    assert_int_equal(anml_detok_feed(d, 5, &text, &len), ANML_OK);
    assert_int_equal(len, 0);
    assert_int_equal(anml_detok_feed(d, 6, &text, &len), ANML_OK);
    assert_int_equal(len, 2);
    assert_memory_equal(text, "\xC3\xA9", 2);
    anml_detok_free(d);
    anml_tokenizer_free(tok);
}

/* ---- decoding and streaming ---- */

static void test_decode_lossy(void **state) {
    (void)state;
    struct anml_tokenizer *tok = load_bytelevel("", "", "", "null", false);
    const int32_t cut[] = { 0xF0, 0x9F, 'a' };
    assert_string_equal(dec(tok, cut, 3, false), "\xEF\xBF\xBD"
                                                 "a");
    const int32_t emoji[] = { 0xF0, 0x9F, 0x98, 0x80 };
    assert_string_equal(dec(tok, emoji, 4, false), "\xF0\x9F\x98\x80");
    const int32_t bad[] = { 5000 };
    int32_t r = anml_tokenizer_decode(tok, bad, 1, false, NULL, 0);
    assert_true(ANML_TOKENIZER_IS_ERROR(r));
    assert_int_equal(ANML_TOKENIZER_ERROR_STATUS(r), ANML_E_INVALID_ARG);
    anml_tokenizer_free(tok);
}

static void test_detok_emoji_split(void **state) {
    (void)state;
    struct anml_tokenizer *tok = load_bytelevel("", "", "", "null", false);
    /* 😀 is F0 9F 98 80, one byte-token each: nothing until the fourth */
    int32_t ids[8];
    assert_int_equal(enc(tok, "\xF0\x9F\x98\x80", true, ids), 4);
    struct anml_detok *d;
    assert_int_equal(anml_detok_create(tok, false, &d), ANML_OK);
    const char *text;
    size_t len;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(anml_detok_feed(d, ids[i], &text, &len), ANML_OK);
        assert_int_equal(len, 0);
        assert_string_equal(text, "");
    }
    assert_int_equal(anml_detok_feed(d, ids[3], &text, &len), ANML_OK);
    assert_int_equal(len, 4);
    assert_string_equal(text, "\xF0\x9F\x98\x80");
    /* a stray continuation byte can never complete: U+FFFD at once */
    assert_int_equal(anml_detok_feed(d, 0x80, &text, &len), ANML_OK);
    assert_string_equal(text, "\xEF\xBF\xBD");
    /* a lead byte followed by ASCII: the lead becomes U+FFFD when the ASCII arrives */
    assert_int_equal(anml_detok_feed(d, 0xE2, &text, &len), ANML_OK);
    assert_int_equal(len, 0);
    assert_int_equal(anml_detok_feed(d, 'x', &text, &len), ANML_OK);
    assert_string_equal(text, "\xEF\xBF\xBDx");
    /* an incomplete tail at the end: flush gives one U+FFFD and resets */
    assert_int_equal(anml_detok_feed(d, 0xF0, &text, &len), ANML_OK);
    assert_int_equal(anml_detok_feed(d, 0x9F, &text, &len), ANML_OK);
    assert_int_equal(len, 0);
    assert_int_equal(anml_detok_flush(d, &text, &len), ANML_OK);
    assert_string_equal(text, "\xEF\xBF\xBD");
    assert_int_equal(anml_detok_flush(d, &text, &len), ANML_OK);
    assert_int_equal(len, 0);
    /* bad ids are refused without disturbing the stream */
    assert_int_equal(anml_detok_feed(d, 0xE2, &text, &len), ANML_OK);
    assert_int_equal(anml_detok_feed(d, -1, &text, &len), ANML_E_INVALID_ARG);
    assert_int_equal(anml_detok_feed(d, 256, &text, &len), ANML_E_INVALID_ARG);
    assert_int_equal(anml_detok_feed(d, 0x82, &text, &len), ANML_OK);
    assert_int_equal(anml_detok_feed(d, 0xAC, &text, &len), ANML_OK);
    assert_string_equal(text, "\xE2\x82\xAC"); /* € */
    anml_detok_reset(d);
    anml_detok_free(d);
    anml_detok_free(NULL);
    anml_tokenizer_free(tok);
}

/* ---- snprintf-style sizes and argument errors ---- */

static void test_sizes_and_args(void **state) {
    (void)state;
    struct anml_tokenizer *tok = load_bytelevel("\"ab\": 256", "\"a b\"", "", "null", false);
    int32_t ids[4] = { -7, -7, -7, -7 };
    assert_int_equal(anml_tokenizer_encode(tok, "ab c", 4, true, NULL, 0), -3);
    assert_int_equal(anml_tokenizer_encode(tok, "ab c", 4, true, ids, 2), -3);
    assert_int_equal(anml_tokenizer_encode(tok, "ab c", 4, true, ids, 3), 3);
    assert_int_equal(ids[3], -7);
    assert_int_equal(anml_tokenizer_encode(tok, "", 0, true, NULL, 0), 0);
    assert_int_equal(anml_tokenizer_encode(tok, NULL, 0, true, NULL, 0), 0);
    /* embedded NUL is text like any byte */
    assert_int_equal(anml_tokenizer_encode(tok, "a\0b", 3, true, ids, 4), 3);
    assert_int_equal(ids[1], 0);
    int32_t r = anml_tokenizer_encode(NULL, "a", 1, true, ids, 4);
    assert_true(ANML_TOKENIZER_IS_ERROR(r));
    assert_int_equal(ANML_TOKENIZER_ERROR_STATUS(r), ANML_E_INVALID_ARG);
    r = anml_tokenizer_encode(tok, "a", 1, true, NULL, 4);
    assert_int_equal(ANML_TOKENIZER_ERROR_STATUS(r), ANML_E_INVALID_ARG);
    r = anml_tokenizer_encode(tok, "a", 1, true, ids, -1);
    assert_int_equal(ANML_TOKENIZER_ERROR_STATUS(r), ANML_E_INVALID_ARG);

    const int32_t abc[] = { 256, 'c' };
    char buf[8];
    memset(buf, 'Z', sizeof buf);
    assert_int_equal(anml_tokenizer_decode(tok, abc, 2, false, NULL, 0), -3);
    assert_int_equal(anml_tokenizer_decode(tok, abc, 2, false, buf, 2), -3);
    assert_int_equal(anml_tokenizer_decode(tok, abc, 2, false, buf, 3), 3);
    assert_memory_equal(buf, "abcZ", 4); /* exactly full: no NUL */
    assert_int_equal(anml_tokenizer_decode(tok, abc, 2, false, buf, 4), 3);
    assert_string_equal(buf, "abc");
    r = anml_tokenizer_decode(tok, abc, -1, false, buf, 4);
    assert_int_equal(ANML_TOKENIZER_ERROR_STATUS(r), ANML_E_INVALID_ARG);
    assert_int_equal(anml_tokenizer_decode(tok, NULL, 0, false, buf, 4), 0);
    assert_string_equal(buf, "");

    assert_int_equal(anml_tokenizer_n_vocab(NULL), 0);
    assert_int_equal(anml_tokenizer_bos(tok), -1);
    assert_int_equal(anml_tokenizer_eos(tok), -1);
    int32_t n_eos = -1;
    anml_tokenizer_eos_ids(tok, &n_eos);
    assert_int_equal(n_eos, 0);
    struct anml_detok *d = (struct anml_detok *)1;
    assert_int_equal(anml_detok_create(NULL, false, &d), ANML_E_INVALID_ARG);
    assert_null(d);
    anml_tokenizer_free(tok);
    anml_tokenizer_free(NULL);
}

/* ---- directory loading and tokenizer_config.json ---- */

static void test_config_specials(void **state) {
    (void)state;
    write_file("tokenizer_config.json",
               "{\"bos_token\": \"<|e\", \"add_bos_token\": true,"
               " \"eos_token\": {\"content\": \"<|end|>\", \"special\": true}}");
    char *bv = byte_vocab();
    size_t cap = strlen(bv) + 4096;
    char *json = malloc(cap);
    snprintf(json, cap,
             "{\"added_tokens\": [%s], \"pre_tokenizer\": {\"type\": \"ByteLevel\","
             " \"add_prefix_space\": true, \"use_regex\": true}, \"decoder\": {\"type\":"
             " \"ByteLevel\"}, \"model\": {\"vocab\": {%s, \"\xC4\xA0"
             "a\": 400},"
             " \"merges\": [\"\xC4\xA0 a\"]}}",
             k_added, bv);
    write_file("tokenizer.json", json);
    free(json);
    free(bv);
    struct anml_tokenizer *tok = NULL;
    struct anml_error err = { 0 };
    if (anml_tokenizer_load(g_dir, &tok, &err) != ANML_OK) { /* a directory */
        fail_msg("%s: %s", err.where, err.msg);
    }
    assert_int_equal(anml_tokenizer_bos(tok), 262);
    assert_true(anml_tokenizer_add_bos(tok));
    assert_int_equal(anml_tokenizer_eos(tok), 257);
    int32_t n;
    const int32_t *eos = anml_tokenizer_eos_ids(tok, &n);
    assert_int_equal(n, 2);
    assert_int_equal(eos[0], 257);
    assert_int_equal(eos[1], 263); /* <|im_end|> is an end-of-turn marker */
    assert_true(anml_tokenizer_is_eos(tok, 263));
    assert_false(anml_tokenizer_is_eos(tok, 262));
    /* ByteLevel with add_prefix_space and the GPT-2 regex: "a" -> " a"; "a a" -> two words */
    ASSERT_IDS(tok, "a", true, 400);
    ASSERT_IDS(tok, "a a", true, 400, 400);
    const int32_t ids[] = { 400, 400 };
    assert_string_equal(dec(tok, ids, 2, false), " a a");
    anml_tokenizer_free(tok);
    remove_file("tokenizer_config.json");
}

/* ---- load errors ---- */

static void expect_error(const char *json, enum anml_status code, const char *in_msg) {
    struct anml_tokenizer *tok = (struct anml_tokenizer *)1;
    struct anml_error err = { 0 };
    enum anml_status st = try_load(json, &tok, &err);
    if (st != code || !strstr(err.msg, in_msg)) {
        fail_msg("want %s with \"%s\", got %s: %s: %s", anml_status_str(code), in_msg,
                 anml_status_str(st), err.where, err.msg);
    }
    assert_null(tok);
    assert_int_equal(err.code, code);
    assert_non_null(strstr(err.where, "tokenizer.json"));
}

static void test_load_errors(void **state) {
    (void)state;
    expect_error("{\"model\": {\"vocab\": {\"a\": 0},,}}", ANML_E_FORMAT, "invalid JSON");
    expect_error("{}", ANML_E_FORMAT, "model");
    expect_error("[1, 2]", ANML_E_FORMAT, "top level");
    expect_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", ANML_E_UNSUPPORTED,
                 "Unigram");
    expect_error("{\"model\": {\"type\": \"BPE\", \"merges\": []}}", ANML_E_FORMAT, "model.vocab");
    expect_error("{\"model\": {\"vocab\": {}}}", ANML_E_FORMAT, "no tokens");
    expect_error("{\"model\": {\"vocab\": {\"a\": -1}}}", ANML_E_FORMAT, "model.vocab[\"a\"]");
    expect_error("{\"model\": {\"vocab\": {\"a\": 1.5}}}", ANML_E_FORMAT, "not an integer");
    expect_error("{\"model\": {\"vocab\": {\"a\": \"0\"}}}", ANML_E_FORMAT, "number");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2},"
                 " \"merges\": [\"a b\", \"a z\"]}}",
                 ANML_E_FORMAT, "model.merges[1]: token \"z\" is not in model.vocab");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"b a\"]}}",
                 ANML_E_FORMAT, "merged token \"ba\"");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [\"aa\"]}}", ANML_E_FORMAT,
                 "model.merges[0]");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [[\"a\"]]}}", ANML_E_FORMAT,
                 "model.merges[0]");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": {}}}", ANML_E_FORMAT,
                 "model.merges");
    expect_error("{\"added_tokens\": [5], \"model\": {\"vocab\": {\"a\": 0}}}", ANML_E_FORMAT,
                 "added_tokens[0]");
    expect_error("{\"added_tokens\": [{\"id\": 1, \"content\": \"\"}],"
                 " \"model\": {\"vocab\": {\"a\": 0}}}",
                 ANML_E_FORMAT, "content");
    expect_error(
        "{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"model\": {\"vocab\": {\"a\": 0}}}",
        ANML_E_UNSUPPORTED, "pre-tokenizer type 'Whitespace'");
    expect_error("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"},"
                 " \"behavior\": \"Isolated\"}, \"model\": {\"vocab\": {\"a\": 0}}}",
                 ANML_E_UNSUPPORTED, "pre_tokenizer.pattern: regex /(/ does not compile");
    expect_error("{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"},"
                 " \"behavior\": \"Sideways\"}, \"model\": {\"vocab\": {\"a\": 0}}}",
                 ANML_E_UNSUPPORTED, "Sideways");
    expect_error(
        "{\"normalizer\": {\"type\": \"Precompiled\"}, \"model\": {\"vocab\": {\"a\": 0}}}",
        ANML_E_UNSUPPORTED, "normalizer type 'Precompiled'");
    expect_error("{\"decoder\": {\"type\": \"WordPiece\"}, \"model\": {\"vocab\": {\"a\": 0}}}",
                 ANML_E_UNSUPPORTED, "decoder type 'WordPiece'");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"unk_token\": \"<unk>\"}}", ANML_E_FORMAT,
                 "model.unk_token");
    expect_error("{\"model\": {\"vocab\": {\"a\": 0}, \"byte_fallback\": 1}}", ANML_E_FORMAT,
                 "byte_fallback");

    /* a syntax error names line and column */
    struct anml_tokenizer *tok = NULL;
    struct anml_error err = { 0 };
    assert_int_equal(try_load("{\n  \"model\": {\n    \"vocab\": {\"a\": 0,}\n}", &tok, &err),
                     ANML_E_FORMAT);
    assert_non_null(strstr(err.where, "tokenizer.json:3:"));

    /* missing file, NULL arguments */
    char path[4096];
    snprintf(path, sizeof path, "%s/missing.json", g_dir);
    assert_int_equal(anml_tokenizer_load(path, &tok, &err), ANML_E_IO);
    assert_null(tok);
    assert_int_equal(anml_tokenizer_load(NULL, &tok, &err), ANML_E_INVALID_ARG);
    assert_int_equal(anml_tokenizer_load(path, NULL, NULL), ANML_E_INVALID_ARG);
}

static int setup(void **state) {
    (void)state;
    g_dir = anml_test_tmpdir("tokenizer");
    return g_dir ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(g_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytelevel_alphabet),
        cmocka_unit_test(test_utf8_lossy),
        cmocka_unit_test(test_merges_by_rank),
        cmocka_unit_test(test_merges_leftmost_on_ties),
        cmocka_unit_test(test_ignore_merges),
        cmocka_unit_test(test_regex_whitespace_is_white_space),
        cmocka_unit_test(test_added_tokens),
        cmocka_unit_test(test_added_normalized),
        cmocka_unit_test(test_added_ids_as_reference),
        cmocka_unit_test(test_split_behaviors),
        cmocka_unit_test(test_sentencepiece_style),
        cmocka_unit_test(test_decode_lossy),
        cmocka_unit_test(test_detok_emoji_split),
        cmocka_unit_test(test_sizes_and_args),
        cmocka_unit_test(test_config_specials),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
