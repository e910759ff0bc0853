/*
 * synth.c -- `anml synth --out DIR [--preset NAME | shape options] ...`: writes a complete ANEMLL
 * 0.3.4 model directory (meta.yaml, embeddings, FFN chunks, LM head, tokenizer files) with
 * random fixed-seed weights or weights from a .safetensors checkpoint, through the library's
 * synthesizer (src/llm/synth.c).
 */
#include "llm/synth.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

static void synth_usage(FILE *f) {
    fprintf(f,
            "usage: anml synth --out DIR [--preset NAME] [options]\n"
            "\n"
            "Writes an ANEMLL model directory (0.3.4 layout): meta.yaml, PREFIX_embeddings,\n"
            "PREFIX_FFN_PF_chunk_XXofYY (functions infer + prefill), PREFIX_lm_head, each a\n"
            ".mlmodelc, plus tokenizer files. Weights are random (fixed seed; the model\n"
            "produces gibberish) unless --weights gives a checkpoint.\n"
            "\n"
            "model:\n"
            "  --preset NAME        tiny | qwen3-0.6b | qwen2.5-0.5b | llama3.2-1b\n"
            "  --arch NAME          qwen3 | qwen2 | llama (default qwen3; presets imply theirs)\n"
            "  --hidden N --layers N --heads N --kv-heads N --head-dim N\n"
            "  --intermediate N --vocab N\n"
            "                       shapes (override the preset / the checkpoint's config.json)\n"
            "  --rms-eps X --rope-theta X\n"
            "                       norm epsilon and RoPE base (default: per architecture)\n"
            "  --weights FILE       a .safetensors checkpoint (Hugging Face tensor names; F16,\n"
            "                       BF16 or F32); its config.json, when next to it, gives the\n"
            "                       architecture and shapes\n"
            "  --seed N             seed of the random weights (default 1)\n"
            "\n"
            "conversion:\n"
            "  --context N          context length = KV state length (default 512; tiny: 64)\n"
            "  --batch N            prefill batch (default 64; tiny: 8)\n"
            "  --chunks N           FFN chunks (default 1)\n"
            "  --lut-embeddings B --lut-ffn B --lut-lmhead B\n"
            "                       palettize with B-bit tables (none, 1, 2, 3, 4, 6, 8;\n"
            "                       default none); one table per 8 output channels\n"
            "  --split-lm-head K    LM head slices (default 16 for Qwen, 8 for LLaMA)\n"
            "  --prefix NAME        file prefix (default qwen, qwen25 or llama)\n"
            "  --name NAME          model_info.name in meta.yaml\n"
            "  --tokenizer PATH     tokenizer.json (or its directory) to copy, with\n"
            "                       tokenizer_config.json from the same directory\n"
            "  --out DIR            output directory (created; same-named components replaced)\n"
            "  -q, --quiet          print nothing on success\n");
}

static int bad(const char *opt, const char *val, const char *why) {
    fprintf(stderr, "anml synth: %s '%s': %s\n", opt, val, why);
    return 2;
}

static bool parse_i32(const char *s, int32_t *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > INT32_MAX) {
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static bool parse_lut(const char *s, int32_t *out) {
    if (!strcmp(s, "none") || !strcmp(s, "0")) {
        *out = 0;
        return true;
    }
    return parse_i32(s, out) &&
           (*out == 1 || *out == 2 || *out == 3 || *out == 4 || *out == 6 || *out == 8);
}

static bool parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0)) {
        return false;
    }
    *out = v;
    return true;
}

static uint64_t dir_bytes(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        return (uint64_t)st.st_size;
    }
    DIR *d = opendir(path);
    if (!d) {
        return 0;
    }
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            continue;
        }
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        total += dir_bytes(sub);
    }
    closedir(d);
    return total;
}

/* Shape and setting options, -1 / NULL when not given. */
struct opts {
    const char *preset, *arch, *weights, *tokenizer, *out, *prefix, *name;
    int32_t hidden, layers, heads, kv_heads, head_dim, intermediate, vocab;
    int32_t context, batch, chunks, split, lut_emb, lut_ffn, lut_head;
    double eps, theta;
    uint64_t seed;
    bool seed_set, quiet;
};

int anml_cli_synth(int argc, char **argv) {
    struct opts o = { 0 };
    int32_t *i32_dst[] = { &o.hidden,   &o.layers,       &o.heads, &o.kv_heads,
                           &o.head_dim, &o.intermediate, &o.vocab, &o.context,
                           &o.batch,    &o.chunks,       &o.split };
    static const char *const i32_name[] = { "--hidden",   "--layers",       "--heads",
                                            "--kv-heads", "--head-dim",     "--intermediate",
                                            "--vocab",    "--context",      "--batch",
                                            "--chunks",   "--split-lm-head" };
    for (size_t i = 0; i < sizeof i32_dst / sizeof i32_dst[0]; i++) {
        *i32_dst[i] = -1;
    }
    o.lut_emb = o.lut_ffn = o.lut_head = -1;
    o.eps = o.theta = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            synth_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o.quiet = true;
            continue;
        }
        if (a[0] != '-') {
            fprintf(stderr, "anml synth: unexpected argument '%s'\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "anml synth: option '%s' needs a value\n", a);
            return 2;
        }
        const char *v = argv[++i];
        bool done = false;
        for (size_t k = 0; k < sizeof i32_dst / sizeof i32_dst[0]; k++) {
            if (!strcmp(a, i32_name[k])) {
                if (!parse_i32(v, i32_dst[k]) || *i32_dst[k] < 1) {
                    return bad(a, v, "expected a positive integer");
                }
                done = true;
            }
        }
        if (done) {
            continue;
        }
        if (!strcmp(a, "--preset")) {
            o.preset = v;
        } else if (!strcmp(a, "--arch")) {
            o.arch = v;
        } else if (!strcmp(a, "--weights")) {
            o.weights = v;
        } else if (!strcmp(a, "--tokenizer")) {
            o.tokenizer = v;
        } else if (!strcmp(a, "--out")) {
            o.out = v;
        } else if (!strcmp(a, "--prefix")) {
            o.prefix = v;
        } else if (!strcmp(a, "--name")) {
            o.name = v;
        } else if (!strcmp(a, "--lut-embeddings") || !strcmp(a, "--lut-ffn") ||
                   !strcmp(a, "--lut-lmhead")) {
            int32_t *dst = !strcmp(a, "--lut-embeddings") ? &o.lut_emb
                           : !strcmp(a, "--lut-ffn")      ? &o.lut_ffn
                                                          : &o.lut_head;
            if (!parse_lut(v, dst)) {
                return bad(a, v, "expected none, 1, 2, 3, 4, 6 or 8");
            }
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 0);
            if (errno || end == v || *end || v[0] == '-') {
                return bad(a, v, "expected a non-negative integer");
            }
            o.seed = s;
            o.seed_set = true;
        } else if (!strcmp(a, "--rms-eps") || !strcmp(a, "--rope-theta")) {
            if (!parse_double(v, !strcmp(a, "--rms-eps") ? &o.eps : &o.theta)) {
                return bad(a, v, "expected a positive number");
            }
        } else {
            fprintf(stderr, "anml synth: unknown option '%s'\n", a);
            synth_usage(stderr);
            return 2;
        }
    }
    if (!o.out) {
        fprintf(stderr, "anml synth: --out DIR is required\n");
        synth_usage(stderr);
        return 2;
    }
    enum anml_synth_arch arch = ANML_SYNTH_QWEN3;
    if (o.arch && !anml__synth_arch_parse(o.arch, &arch)) {
        return bad("--arch", o.arch, "expected qwen3, qwen2 or llama");
    }
    struct anml_synth_config cfg;
    memset(&cfg, 0, sizeof cfg);
    struct anml_error err = { 0 };
    bool have_shapes = false;
    if (o.preset) {
        if (!anml__synth_preset(o.preset, arch, &cfg)) {
            return bad("--preset", o.preset,
                       "expected tiny, qwen3-0.6b, qwen2.5-0.5b or llama3.2-1b");
        }
        if (o.arch && cfg.arch != arch) {
            fprintf(stderr, "anml synth: --preset %s is a %s model; --arch %s contradicts it\n",
                    o.preset, anml__synth_arch_name(cfg.arch), o.arch);
            return 2;
        }
        have_shapes = true;
    } else {
        anml__synth_arch_defaults(arch, &cfg);
        cfg.context = 512;
        cfg.batch = 64;
        cfg.chunks = 1;
        cfg.seed = 1;
        if (o.weights) {
            /* config.json next to the checkpoint gives the shapes, as convert_model.sh reads */
            char cpath[4096];
            const char *slash = strrchr(o.weights, '/');
            int dl = slash ? (int)(slash - o.weights) : 1;
            snprintf(cpath, sizeof cpath, "%.*s/config.json", dl, slash ? o.weights : ".");
            FILE *f = fopen(cpath, "rb");
            if (f) {
                fclose(f);
                if (o.prefix == NULL) {
                    cfg.prefix[0] = '\0';
                }
                cfg.split = 0;
                if (anml__synth_config_from_hf(cpath, &cfg, &err) != ANML_OK) {
                    fprintf(stderr, "anml synth: %s: %s\n", err.where, err.msg);
                    return 1;
                }
                if (o.arch && cfg.arch != arch) {
                    fprintf(stderr, "anml synth: %s says %s; --arch %s contradicts it\n", cpath,
                            anml__synth_arch_name(cfg.arch), o.arch);
                    return 2;
                }
                have_shapes = true;
            }
        }
    }
    int32_t *cfg_dst[] = { &cfg.hidden,   &cfg.layers,       &cfg.heads, &cfg.kv_heads,
                           &cfg.head_dim, &cfg.intermediate, &cfg.vocab, &cfg.context,
                           &cfg.batch,    &cfg.chunks,       &cfg.split };
    for (size_t k = 0; k < sizeof cfg_dst / sizeof cfg_dst[0]; k++) {
        if (*i32_dst[k] > 0) {
            *cfg_dst[k] = *i32_dst[k];
        } else if (!have_shapes && k < 7) {
            fprintf(stderr,
                    "anml synth: %s is required without --preset (or a checkpoint with "
                    "config.json)\n",
                    i32_name[k]);
            return 2;
        }
    }
    if (o.lut_emb >= 0) {
        cfg.lut_emb = o.lut_emb;
    }
    if (o.lut_ffn >= 0) {
        cfg.lut_ffn = o.lut_ffn;
    }
    if (o.lut_head >= 0) {
        cfg.lut_head = o.lut_head;
    }
    if (o.eps > 0) {
        cfg.rms_eps = o.eps;
    }
    if (o.theta > 0) {
        cfg.rope_base = o.theta;
    }
    if (o.seed_set) {
        cfg.seed = o.seed;
    }
    if (o.prefix) {
        snprintf(cfg.prefix, sizeof cfg.prefix, "%s", o.prefix);
    }
    struct anml_synth_options opt = { .weights_path = o.weights,
                                      .tokenizer_path = o.tokenizer,
                                      .name = o.name };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (anml__synth_write(&cfg, &opt, o.out, &err) != ANML_OK) {
        fprintf(stderr, "anml synth: %s%s%s\n", err.where, err.where[0] ? ": " : "", err.msg);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!o.quiet) {
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
        printf("wrote %s: %s, hidden %d, %d layers, %d/%d heads x %d, intermediate %d, vocab "
               "%d, context %d, batch %d, %d chunk%s, LUT %d/%d/%d, %d logits slices, %s "
               "weights\n",
               o.out, anml__synth_arch_name(cfg.arch), (int)cfg.hidden, (int)cfg.layers,
               (int)cfg.heads, (int)cfg.kv_heads, (int)cfg.head_dim, (int)cfg.intermediate,
               (int)cfg.vocab, (int)cfg.context, (int)cfg.batch, (int)cfg.chunks,
               cfg.chunks == 1 ? "" : "s", (int)cfg.lut_emb, (int)cfg.lut_ffn, (int)cfg.lut_head,
               (int)cfg.split, o.weights ? "checkpoint" : "random");
        printf("%.1f MB in %.2f s\n", (double)dir_bytes(o.out) / 1e6, secs);
    }
    return 0;
}
