/* fuzz_tokenizer.c -- libFuzzer harness for the tokenizer.
 *
 * The first input byte picks a mode:
 *   0x00..0xEF  round trip: the rest is text for one of two small byte-level tokenizers built
 *               here (Qwen's Split regex + ByteLevel, merges, added tokens with every flag; the
 *               second adds an NFC normalizer, a normalized added token and ignore_merges) -- or
 *               for the tokenizer.json named by $ANML_FUZZ_TOKENIZER. Encoding must succeed;
 *               decode(encode(x)) must equal x with ill-formed UTF-8 replaced by U+FFFD (the NFC
 *               form of x for the normalizing tokenizer, when x is well-formed); streaming the
 *               ids through anml_detok must give the same text in well-formed pieces; and the
 *               snprintf-style size contract must hold.
 *   0xF0..0xFF  loader: the rest is a tokenizer.json; loading must succeed or fail cleanly, and
 *               a loaded tokenizer must encode and decode a fixed text.
 * Any violated property aborts, which libFuzzer reports as a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "llm/llm.h"

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "fuzz_tokenizer: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                   \
    }                                                                            \
  } while (0)

static const char k_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "
    "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";

static const char k_added[] =
    "{\"id\": 265, \"content\": \"<|im_end|>\", \"special\": true},"
    "{\"id\": 266, \"content\": \"<think>\", \"special\": false, \"normalized\": false},"
    "{\"id\": 267, \"content\": \"<ls>\", \"special\": true, \"lstrip\": true},"
    "{\"id\": 268, \"content\": \"<rs>\", \"special\": true, \"rstrip\": true},"
    "{\"id\": 269, \"content\": \"word\", \"single_word\": true, \"normalized\": false},"
    "{\"id\": 270, \"content\": \"<|im\", \"special\": true}";

/* Byte-level vocabulary: ids 0..255 are the bytes, then a few merged tokens. */
static char *tiny_json(bool nfc) {
    size_t cap = 16384, n = 0;
    char *s = malloc(cap);
    if (!s) {
        abort();
    }
    n += (size_t)snprintf(
        s + n, cap - n,
        "{\"added_tokens\": [%s%s], \"normalizer\": %s,"
        " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
        "  {\"type\": \"Split\", \"pattern\": {\"Regex\": \"%s\"}, \"behavior\": \"Isolated\"},"
        "  {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]},"
        " \"decoder\": {\"type\": \"ByteLevel\"},"
        " \"model\": {\"type\": \"BPE\", \"ignore_merges\": %s, \"vocab\": {",
        k_added,
        nfc ? ", {\"id\": 271, \"content\": \"nfc\", \"special\": false, \"normalized\": true}"
            : "",
        nfc ? "{\"type\": \"NFC\"}" : "null", k_regex, nfc ? "true" : "false");
    for (int b = 0; b < 256; b++) {
        uint32_t cp = anml__bytelevel_char((uint8_t)b);
        char u[4];
        size_t k = 1;
        if (cp < 0x80) {
            u[0] = (char)cp;
        } else {
            u[0] = (char)(0xC0 | (cp >> 6));
            u[1] = (char)(0x80 | (cp & 0x3F));
            k = 2;
        }
        n += (size_t)snprintf(s + n, cap - n, "\"%s%.*s\": %d, ",
                              (u[0] == '"' || u[0] == '\\') ? "\\" : "", (int)k, u, b);
    }
    /* Ġ = C4 A0 */
    n += (size_t)snprintf(
        s + n, cap - n,
        "\"ab\": 256, \"abc\": 257, \"\xC4\xA0t\": 258, \"th\": 259,"
        " \"\xC4\xA0th\": 260, \"\xC4\xA0the\": 261, \"aa\": 262,"
        " \"\xC3\x83\xC2\xA9\": 263, \"\xC4\xA0\xC4\xA0\": 264},"
        " \"merges\": [\"a b\", \"ab c\", \"t h\", \"\xC4\xA0 t\","
        " [\"\xC4\xA0t\", \"h\"], \"\xC4\xA0th e\", \"a a\", \"\xC3\x83 \xC2\xA9\","
        " \"\xC4\xA0 \xC4\xA0\"]}}");
    return s;
}

static struct anml_tokenizer *g_tok[2];

static void init(void) {
    static bool done;
    if (done) {
        return;
    }
    done = true;
    struct anml_error err = { 0 };
    const char *env = getenv("ANML_FUZZ_TOKENIZER");
    for (int i = 0; i < 2; i++) {
        enum anml_status st;
        if (env && *env) {
            st = anml_tokenizer_load(env, &g_tok[i], &err);
        } else {
            char *json = tiny_json(i == 1);
            st = anml__tokenizer_from_json(json, strlen(json), NULL, 0, &g_tok[i], &err);
            free(json);
        }
        if (st != ANML_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s: %s\n", err.where, err.msg);
            abort();
        }
    }
}

static bool well_formed(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        int k = anml__utf8_seq(s + i, n - i, NULL);
        if (k <= 0) {
            return false;
        }
        i += (size_t)k;
    }
    return true;
}

static bool contains(const uint8_t *s, size_t n, const char *what) {
    size_t k = strlen(what);
    for (size_t i = 0; i + k <= n; i++) {
        if (memcmp(s + i, what, k) == 0) {
            return true;
        }
    }
    return false;
}

static bool has_normalizer(const struct anml_tokenizer *tok) {
    /* The NFC tokenizer has the extra added token "nfc"; a file from the environment may have
     * any normalizer, so its text is not compared. */
    return getenv("ANML_FUZZ_TOKENIZER") != NULL || anml_tokenizer_token_id(tok, "nfc") >= 0;
}

static void round_trip(const struct anml_tokenizer *tok, const uint8_t *text, size_t n,
                       bool special) {
    int32_t need = anml_tokenizer_encode(tok, (const char *)text, n, special, NULL, 0);
    CHECK(!ANML_TOKENIZER_IS_ERROR(need));
    int32_t n_ids = need < 0 ? -need : need;
    CHECK((size_t)n_ids <= 4 * n + 1); /* NFC may grow the text up to 3x */
    int32_t *ids = malloc(((size_t)n_ids + 1) * sizeof *ids);
    CHECK(ids);
    if (n_ids > 0) {
        CHECK(anml_tokenizer_encode(tok, (const char *)text, n, special, ids, n_ids - 1) == -n_ids);
    }
    CHECK(anml_tokenizer_encode(tok, (const char *)text, n, special, ids, n_ids) == n_ids);

    int32_t dn = anml_tokenizer_decode(tok, ids, n_ids, false, NULL, 0);
    CHECK(!ANML_TOKENIZER_IS_ERROR(dn));
    int32_t dlen = dn < 0 ? -dn : dn;
    char *dec = malloc((size_t)dlen + 1);
    CHECK(dec);
    CHECK(anml_tokenizer_decode(tok, ids, n_ids, false, dec, dlen + 1) == dlen);
    CHECK(well_formed((const uint8_t *)dec, (size_t)dlen));

    /* lstrip / rstrip tokens swallow the whitespace next to them, by design */
    bool lossy_tokens = special && (contains(text, n, "<ls>") || contains(text, n, "<rs>"));
    /* NFC of the whole text can differ from NFC between added tokens, which is what the
     * reference computes: '>' + U+0338 composes to U+226F, "word" + U+0323 to "wor\u1E0D" */
    bool raw_tokens = contains(text, n, "<") || contains(text, n, ">") || contains(text, n, "word");
    if (lossy_tokens) {
        /* nothing exact to compare */
    } else if (!has_normalizer(tok)) {
        /* byte-level BPE without a normalizer loses nothing but ill-formed bytes */
        uint8_t *want = malloc(3 * n + 1);
        CHECK(want);
        size_t wn = anml__utf8_lossy(text, n, true, want, NULL);
        CHECK(wn == (size_t)dlen && memcmp(want, dec, wn) == 0);
        free(want);
    } else if (well_formed(text, n) && !raw_tokens && !getenv("ANML_FUZZ_TOKENIZER")) {
        utf8proc_uint8_t *nfc = NULL;
        utf8proc_ssize_t nn =
            utf8proc_map(text, (utf8proc_ssize_t)n, &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        CHECK(nn >= 0);
        CHECK((size_t)nn == (size_t)dlen && memcmp(nfc, dec, (size_t)nn) == 0);
        free(nfc);
    }

    /* streaming gives the same text, in well-formed pieces */
    struct anml_detok *d = NULL;
    CHECK(anml_detok_create(tok, false, &d) == ANML_OK);
    size_t used = 0;
    for (int32_t i = 0; i <= n_ids; i++) {
        const char *piece;
        size_t len;
        CHECK((i < n_ids ? anml_detok_feed(d, ids[i], &piece, &len)
                         : anml_detok_flush(d, &piece, &len)) == ANML_OK);
        CHECK(well_formed((const uint8_t *)piece, len));
        CHECK(used + len <= (size_t)dlen && memcmp(dec + used, piece, len) == 0);
        used += len;
    }
    CHECK(used == (size_t)dlen);
    anml_detok_free(d);
    free(dec);
    free(ids);
}

static void load_json(const uint8_t *data, size_t size) {
    struct anml_tokenizer *tok = NULL;
    struct anml_error err = { 0 };
    enum anml_status st = anml__tokenizer_from_json((const char *)data, size, NULL, 0, &tok, &err);
    if (st != ANML_OK) {
        CHECK(tok == NULL && err.code == st && err.msg[0]);
        return;
    }
    static const char text[] = "Hello <|im_end|> w\xC3\xB6rld 123 \xF0\x9F\x98\x80!";
    int32_t ids[256];
    int32_t n = anml_tokenizer_encode(tok, text, sizeof text - 1, true, ids, 256);
    if (n >= 0) {
        char buf[1024];
        int32_t m = anml_tokenizer_decode(tok, ids, n, false, buf, sizeof buf);
        CHECK(!ANML_TOKENIZER_IS_ERROR(m));
    } else {
        CHECK(!ANML_TOKENIZER_IS_ERROR(n) || ANML_TOKENIZER_ERROR_STATUS(n) == ANML_E_INTERNAL);
    }
    anml_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) {
        return 0;
    }
    if (data[0] >= 0xF0) {
        load_json(data + 1, size - 1);
        return 0;
    }
    init();
    const struct anml_tokenizer *tok = g_tok[data[0] & 1];
    round_trip(tok, data + 1, size - 1, (data[0] & 2) != 0);
    return 0;
}
