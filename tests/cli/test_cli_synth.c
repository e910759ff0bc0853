/*
 * test_cli_synth.c -- `anml synth` as a command: the directory it writes is described by
 * `anml info` (text and --json) and runs under `anml predict` (embeddings gather the generated
 * rows bit for bit, the LM head's slices equal W x from the same weights, an FFN chunk writes its
 * KV slot), LUT options give the ANEMLL file names and uintN palettized constants, --tokenizer
 * copies the tokenizer files, and bad options fail with exit status 2 (usage) or 1 (a message
 * naming the problem).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/synth.h"
#include "testutil.h"

static int run(const char *cmd, char **out, char **err) {
    int rc = anml_test_run(cmd, out, err);
    return rc;
}

static char *synth_tiny(const char *extra) {
    char *dir = anml_test_tmpdir("cli_synth");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s synth --preset tiny --seed 5 %s --out %s", ANML_CLI_PATH, extra,
             dir);
    char *out = NULL, *err = NULL;
    int rc = run(cmd, &out, &err);
    if (rc != 0) {
        fail_msg("%s: exit %d: %s", cmd, rc, err);
    }
    assert_non_null(strstr(out, "wrote "));
    free(out);
    free(err);
    return dir;
}

static void tiny_cfg(struct anml_synth_config *c) {
    assert_true(anml__synth_preset("tiny", ANML_SYNTH_QWEN3, c));
    c->seed = 5;
}

static void test_info(void **state) {
    (void)state;
    char *dir = synth_tiny("");
    char cmd[4096];
    char *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "%s info %s", ANML_CLI_PATH, dir);
    assert_int_equal(run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "architecture: qwen3"));
    assert_non_null(strstr(out, "qwen_FFN_PF_chunk_01of01.mlmodelc"));
    assert_non_null(strstr(out, "model_model_kv_cache_0: fp16 [4, 2, 64, 16]"));
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "%s info --json %s", ANML_CLI_PATH, dir);
    assert_int_equal(run(cmd, &out, &err), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model");
    assert_non_null(m);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(m, "vocab_size")->valueint, 1024);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(m, "logit_slices")->valueint, 16);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(m, "context_length")->valueint, 64);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(m, "batch_size")->valueint, 8);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "components")), 3);
    cJSON_Delete(j);
    free(out);
    free(err);
    free(dir);
}

static void write_ids(const char *path, const int32_t *ids, int n) {
    struct anml_tensor t = { .dtype = ANML_DTYPE_INT32, .rank = 2, .shape = { 1, n } };
    t.data = (void *)ids;
    struct anml_error e = { 0 };
    assert_int_equal(anml_npy_write(path, &t, &e), ANML_OK);
}

static void test_predict_embeddings(void **state) {
    (void)state;
    char *dir = synth_tiny("");
    char *odir = anml_test_tmpdir("cli_synth_out");
    char ids_path[4096], cmd[8192];
    snprintf(ids_path, sizeof ids_path, "%s/ids.npy", odir);
    int32_t ids[8] = { 0, 1, 2, 511, 512, 1000, 1023, 77 };
    write_ids(ids_path, ids, 8);
    snprintf(cmd, sizeof cmd,
             "%s predict %s/qwen_embeddings.mlmodelc --input input_ids=%s --out %s", ANML_CLI_PATH,
             dir, ids_path, odir);
    char *out = NULL, *err = NULL;
    if (run(cmd, &out, &err) != 0) {
        fail_msg("%s: %s", cmd, err);
    }
    free(out);
    free(err);
    char hp[4096];
    snprintf(hp, sizeof hp, "%s/hidden_states.npy", odir);
    struct anml_tensor t;
    struct anml_error e = { 0 };
    assert_int_equal(anml_npy_read(hp, &t, &e), ANML_OK);
    assert_int_equal(t.dtype, ANML_DTYPE_F16);
    assert_int_equal(t.rank, 3);
    assert_int_equal(t.shape[1], 8);
    assert_int_equal(t.shape[2], 64);
    /* the rows the generator gives for those ids, rounded to fp16 */
    struct anml_synth_config c;
    tiny_cfg(&c);
    struct anml_wsrc *ws = NULL;
    assert_int_equal(anml__wsrc_open(&c, NULL, &ws, &e), ANML_OK);
    struct anml_synth_tensor st;
    anml__synth_tensor_init(&c, ANML_SYNTH_PART_EMB, "model.embed_tokens.weight", 1024, 64, 0, &st);
    float row[64];
    const uint16_t *h = t.data;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(anml__synth_tensor_rows(ws, &st, ids[i], 1, row, NULL, NULL, &e), ANML_OK);
        for (int k = 0; k < 64; k++) {
            assert_float_equal(row[k], anml__fp16_to_fp32(h[i * 64 + k]), 0.0);
        }
    }
    anml__wsrc_free(ws);
    anml_free(t.data);
    free(dir);
    free(odir);
}

static void test_predict_lm_head_lut(void **state) {
    (void)state;
    char *dir = synth_tiny("--lut-lmhead 6 --split-lm-head 4");
    char *odir = anml_test_tmpdir("cli_synth_out");
    /* a hidden state with unit RMS */
    float hv[64];
    uint16_t hh[64];
    for (int i = 0; i < 64; i++) {
        hv[i] = anml__fp16_to_fp32(anml__fp32_to_fp16(sinf((float)i * 0.7f) * 1.4f));
        hh[i] = anml__fp32_to_fp16(hv[i]);
    }
    char hp[4096], cmd[8192];
    snprintf(hp, sizeof hp, "%s/h.npy", odir);
    struct anml_tensor t = { .dtype = ANML_DTYPE_F16, .rank = 3, .shape = { 1, 1, 64 } };
    t.data = hh;
    struct anml_error e = { 0 };
    assert_int_equal(anml_npy_write(hp, &t, &e), ANML_OK);
    snprintf(cmd, sizeof cmd,
             "%s predict %s/qwen_lm_head_lut6.mlmodelc --input hidden_states=%s --out %s",
             ANML_CLI_PATH, dir, hp, odir);
    char *out = NULL, *err = NULL;
    if (run(cmd, &out, &err) != 0) {
        fail_msg("%s: %s", cmd, err);
    }
    free(out);
    free(err);
    struct anml_synth_config c;
    tiny_cfg(&c);
    c.lut_head = 6;
    c.split = 4;
    struct anml_wsrc *ws = NULL;
    assert_int_equal(anml__wsrc_open(&c, NULL, &ws, &e), ANML_OK);
    float *w = malloc(256 * 64 * sizeof *w);
    double worst = 0;
    for (int k = 0; k < 4; k++) {
        int32_t rows, first;
        anml__synth_slice_rows(&c, k, &rows, &first);
        assert_int_equal(rows, 256);
        struct anml_synth_tensor st;
        anml__synth_tensor_init(&c, ANML_SYNTH_PART_HEAD, "lm_head.weight", rows, 64, first, &st);
        assert_int_equal(st.lut_bits, 6);
        assert_int_equal(anml__synth_tensor_rows(ws, &st, 0, rows, w, NULL, NULL, &e), ANML_OK);
        char lp[4096];
        snprintf(lp, sizeof lp, "%s/logits%d.npy", odir, k + 1);
        struct anml_tensor lg;
        assert_int_equal(anml_npy_read(lp, &lg, &e), ANML_OK);
        assert_int_equal(lg.shape[2], 256);
        const uint16_t *l16 = lg.data;
        for (int r = 0; r < rows; r++) {
            double acc = 0;
            for (int i = 0; i < 64; i++) {
                acc += (double)w[r * 64 + i] * (double)hv[i];
            }
            double d = fabs(acc - (double)anml__fp16_to_fp32(l16[r]));
            worst = d > worst ? d : worst;
        }
        anml_free(lg.data);
    }
    /* fp16 output rounding of logits of magnitude < 8 plus fp32 accumulation */
    assert_true(worst < 0.01);
    free(w);
    anml__wsrc_free(ws);
    free(dir);
    free(odir);
}

static void test_predict_ffn_writes_kv(void **state) {
    (void)state;
    char *dir = synth_tiny("--lut-ffn 4");
    char *odir = anml_test_tmpdir("cli_synth_out");
    char p[4][4096], cmd[16384];
    const char *names[4] = { "hidden_states", "position_ids", "causal_mask", "current_pos" };
    uint16_t hs[64], mask[64];
    for (int i = 0; i < 64; i++) {
        hs[i] = anml__fp32_to_fp16(cosf((float)i));
        mask[i] = i == 0 ? 0 : 0xfc00; /* 0 for j <= 0, -inf after */
    }
    int32_t zero = 0;
    struct anml_tensor ts[4] = {
        { .dtype = ANML_DTYPE_F16, .rank = 3, .shape = { 1, 1, 64 }, .data = hs },
        { .dtype = ANML_DTYPE_INT32, .rank = 1, .shape = { 1 }, .data = &zero },
        { .dtype = ANML_DTYPE_F16, .rank = 4, .shape = { 1, 1, 1, 64 }, .data = mask },
        { .dtype = ANML_DTYPE_INT32, .rank = 1, .shape = { 1 }, .data = &zero },
    };
    struct anml_error e = { 0 };
    size_t n =
        (size_t)snprintf(cmd, sizeof cmd, "%s predict %s/qwen_FFN_PF_lut4_chunk_01of01.mlmodelc",
                         ANML_CLI_PATH, dir);
    for (int i = 0; i < 4; i++) {
        snprintf(p[i], sizeof p[i], "%s/%s.npy", odir, names[i]);
        assert_int_equal(anml_npy_write(p[i], &ts[i], &e), ANML_OK);
        n += (size_t)snprintf(cmd + n, sizeof cmd - n, " --input %s=%s", names[i], p[i]);
    }
    snprintf(cmd + n, sizeof cmd - n, " --out %s", odir);
    char *out = NULL, *err = NULL;
    if (run(cmd, &out, &err) != 0) {
        fail_msg("%s: %s", cmd, err);
    }
    free(out);
    free(err);
    char sp[4096];
    snprintf(sp, sizeof sp, "%s/state.model_model_kv_cache_0.npy", odir);
    struct anml_tensor st;
    assert_int_equal(anml_npy_read(sp, &st, &e), ANML_OK);
    assert_int_equal(st.shape[0], 4);
    /* slot 0 of every layer's K and V rows is written, slot 1 is still zero */
    const uint16_t *kv = st.data;
    for (int row = 0; row < 4; row++) {
        bool written = false, clean = true;
        for (int hd = 0; hd < 2; hd++) {
            for (int i = 0; i < 16; i++) {
                written |= (kv[((row * 2 + hd) * 64 + 0) * 16 + i] & 0x7fff) != 0;
                clean &= kv[((row * 2 + hd) * 64 + 1) * 16 + i] == 0;
            }
        }
        assert_true(written);
        assert_true(clean);
    }
    anml_free(st.data);
    free(dir);
    free(odir);
}

static void test_lut_files(void **state) {
    (void)state;
    char *dir = synth_tiny("--lut-embeddings 8 --lut-ffn 6 --lut-lmhead 4 --chunks 2");
    char p[4096];
    const char *files[] = { "qwen_embeddings_lut8.mlmodelc", "qwen_lm_head_lut4.mlmodelc",
                            "qwen_FFN_PF_lut6_chunk_01of02.mlmodelc",
                            "qwen_FFN_PF_lut6_chunk_02of02.mlmodelc" };
    const char *dtype[] = { "uint8", "uint4", "uint6", "uint6" };
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s/model.mil", dir, files[i]);
        char *mil = anml_test_read_file(p, NULL);
        if (!mil) {
            fail_msg("missing %s", p);
        }
        char want[64];
        snprintf(want, sizeof want, "indices = tensor<%s, [", dtype[i]);
        assert_non_null(strstr(mil, "constexpr_lut_to_dense"));
        assert_non_null(strstr(mil, want));
        free(mil);
    }
    snprintf(p, sizeof p, "%s/meta.yaml", dir);
    char *meta = anml_test_read_file(p, NULL);
    assert_non_null(meta);
    assert_non_null(strstr(meta, "    lut_embeddings: 8\n"));
    assert_non_null(strstr(meta, "    lut_ffn: 6\n"));
    assert_non_null(strstr(meta, "    lut_lmhead: 4\n"));
    assert_non_null(strstr(meta, "    num_chunks: 2\n"));
    assert_non_null(strstr(meta, "    ffn: qwen_FFN_PF_lut6.mlmodelc\n"));
    assert_non_null(strstr(meta, "  version: 0.3.4\n"));
    free(meta);
    free(dir);
}

static void test_tokenizer_copied(void **state) {
    (void)state;
    char *src = anml_test_tmpdir("cli_synth_tok");
    char p[4096], q[4096];
    snprintf(p, sizeof p, "%s/tokenizer.json", src);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    fputs("{\"model\": {\"type\": \"BPE\"}}\n", f);
    fclose(f);
    snprintf(q, sizeof q, "%s/tokenizer_config.json", src);
    f = fopen(q, "wb");
    assert_non_null(f);
    fputs("{\"eos_token\": \"x\"}\n", f);
    fclose(f);
    char extra[4200];
    snprintf(extra, sizeof extra, "--tokenizer %s", p);
    char *dir = synth_tiny(extra);
    const char *names[] = { "tokenizer.json", "tokenizer_config.json" };
    for (int i = 0; i < 2; i++) {
        char a[4096], b[4096];
        snprintf(a, sizeof a, "%s/%s", src, names[i]);
        snprintf(b, sizeof b, "%s/%s", dir, names[i]);
        size_t na, nb;
        char *da = anml_test_read_file(a, &na), *db = anml_test_read_file(b, &nb);
        assert_non_null(db);
        assert_int_equal(na, nb);
        assert_memory_equal(da, db, na);
        free(da);
        free(db);
    }
    free(dir);
    free(src);
}

static void expect_fail(const char *args, int want_rc, const char *want_msg) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s synth %s", ANML_CLI_PATH, args);
    char *out = NULL, *err = NULL;
    int rc = run(cmd, &out, &err);
    if (rc != want_rc || !strstr(err, want_msg)) {
        fail_msg("%s: exit %d (want %d), stderr: %s (want '%s')", cmd, rc, want_rc, err, want_msg);
    }
    free(out);
    free(err);
}

static void test_errors(void **state) {
    (void)state;
    char *dir = anml_test_tmpdir("cli_synth_err");
    char a[8192];
    expect_fail("--preset tiny", 2, "--out DIR is required");
    snprintf(a, sizeof a, "--preset tiny --lut-ffn 5 --out %s", dir);
    expect_fail(a, 2, "expected none, 1, 2, 3, 4, 6 or 8");
    snprintf(a, sizeof a, "--preset gpt2 --out %s", dir);
    expect_fail(a, 2, "expected tiny, qwen3-0.6b");
    snprintf(a, sizeof a, "--preset qwen3-0.6b --arch llama --out %s", dir);
    expect_fail(a, 2, "contradicts");
    snprintf(a, sizeof a, "--hidden 64 --out %s", dir);
    expect_fail(a, 2, "--layers is required");
    snprintf(a, sizeof a, "--preset tiny --heads 3 --out %s", dir);
    expect_fail(a, 1, "multiple of --kv-heads");
    snprintf(a, sizeof a, "--preset tiny --chunks 3 --out %s", dir);
    expect_fail(a, 1, "--chunks (3) exceeds --layers (2)");
    snprintf(a, sizeof a, "--preset tiny --hidden -4 --out %s", dir);
    expect_fail(a, 2, "expected a positive integer");
    snprintf(a, sizeof a, "--preset tiny --weights %s/missing.safetensors --out %s", dir, dir);
    expect_fail(a, 1, "missing.safetensors");
    snprintf(a, sizeof a, "--preset tiny --tokenizer %s/none.json --out %s", dir, dir);
    expect_fail(a, 1, "no tokenizer.json");
    snprintf(a, sizeof a, "--preset tiny --bogus 1 --out %s", dir);
    expect_fail(a, 2, "unknown option '--bogus'");
    free(dir);
}

/* A checkpoint whose shapes disagree with the requested model is refused, naming the tensor. */
static void test_weights_shape_mismatch(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char *dir = anml_test_tmpdir("cli_synth_w");
    char a[8192];
    snprintf(a, sizeof a, "--weights %s --intermediate 96 --context 64 --batch 8 --out %s",
             anml_test_shared_path("fixtures/coreml/qwen3-tiny-fp16/hf_source/model.safetensors"),
             dir);
    expect_fail(a, 1, "mlp.gate_proj.weight");
    free(dir);
}

static void test_help(void **state) {
    (void)state;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s synth --help", ANML_CLI_PATH);
    char *out = NULL, *err = NULL;
    assert_int_equal(run(cmd, &out, &err), 0);
    assert_non_null(strstr(out, "--lut-ffn"));
    assert_non_null(strstr(out, "qwen3-0.6b"));
    free(out);
    free(err);
}

/* The demo model the build writes (build/demo-model) covers the real Qwen 3 tokenizer and turns
 * text into (gibberish) text through `anml run`. Skipped when the tokenizer was not fetched or
 * the demo-model target was not built. */
static void test_demo_model(void **state) {
    (void)state;
    char tok[4096], dir[4096], meta[4200];
    snprintf(tok, sizeof tok, "%s/tokenizer-qwen3/models/tokenizer.json", ANML_TOKENIZER_DIR);
    snprintf(dir, sizeof dir, "%s/demo-model", ANML_BINARY_DIR);
    snprintf(meta, sizeof meta, "%s/meta.yaml", dir);
    FILE *f = fopen(tok, "rb");
    FILE *g = fopen(meta, "rb");
    if (f) {
        fclose(f);
    }
    if (g) {
        fclose(g);
    }
    if (!f || !g) {
        const char *why =
            !f ? "no Qwen 3 tokenizer (scripts/fetch-tokenizers.sh)" : "build/demo-model not built";
        if (anml_test_fixtures_required()) { /* CI fetches the tokenizer: the demo must exist */
            fail_msg("%s", why);
        }
        print_message("SKIP: %s\n", why);
        skip();
    }
    struct anml_error e = { 0 };
    struct anml_model *m = NULL;
    struct anml_tokenizer *t = NULL;
    assert_int_equal(anml_model_load(dir, NULL, &m, &e), ANML_OK);
    assert_int_equal(anml_tokenizer_load(dir, &t, &e), ANML_OK);
    struct anml_model_info info;
    anml_model_get_info(m, &info);
    assert_string_equal(info.architecture, "qwen3");
    assert_non_null(info.tokenizer_dir);
    /* every id the tokenizer can produce has a logit */
    assert_true(anml_tokenizer_n_vocab(t) <= info.vocab_size);
    assert_int_equal(info.vocab_size, 151936);
    anml_tokenizer_free(t);
    anml_model_free(m);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s run -m %s -p 'The capital of France is' -n 8", ANML_CLI_PATH,
             dir);
    char *out = NULL, *err = NULL;
    int rc = run(cmd, &out, &err);
    if (rc != 0 || !out[0]) {
        fail_msg("%s: exit %d, stdout '%s', stderr %s", cmd, rc, out, err);
    }
    free(out);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_predict_embeddings),
        cmocka_unit_test(test_predict_lm_head_lut),
        cmocka_unit_test(test_predict_ffn_writes_kv),
        cmocka_unit_test(test_lut_files),
        cmocka_unit_test(test_tokenizer_copied),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_weights_shape_mismatch),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_demo_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
