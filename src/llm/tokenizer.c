/*
 * tokenizer.c -- the BPE tokenizer of a Hugging Face tokenizer.json (+ tokenizer_config.json):
 * loading (cJSON), encoding, decoding and the streaming detokenizer.
 *
 * Encoding mirrors the reference library (`tokenizers`, Rust) stage by stage, because the ids
 * must be the reference ids exactly:
 *   1. added tokens that are not "normalized" are cut out of the raw text (leftmost, longest;
 *      special ones only with parse_special), honouring lstrip / rstrip / single_word;
 *   2. each remaining segment is normalized (NFC etc. via utf8proc), then "normalized" added
 *      tokens are cut out of the normalized text;
 *   3. the pre-tokenizer chain splits each segment into words (Split: a PCRE2 regex with Unicode
 *      properties; ByteLevel: optional prefix space and GPT-2 regex; Metaspace);
 *   4. each word is mapped to the model's alphabet (ByteLevel: one stand-in character per byte),
 *      looked up whole when ignore_merges is set, else split into characters and merged pair by
 *      pair, lowest merge rank first (leftmost on ties), with a binary heap over a linked list of
 *      symbols.
 * The vocabulary and the merges live in open-addressing hash tables built at load time; no
 * lookup scans a list. Ill-formed UTF-8 input is tolerated: the regex engine runs with
 * PCRE2_MATCH_INVALID_UTF (bad bytes never match and end up in their own pieces), the normalizer
 * passes bad bytes through, and byte-level BPE encodes them like any byte.
 *
 * Decoding precomputes, per id, the bytes the decoder turns the token into (ByteLevel: back to
 * raw bytes), so decode is concatenation plus the whole-text steps (Strip) and the final
 * lossy UTF-8 repair the reference does. The tokenizer is immutable after loading; encode and
 * decode allocate their own scratch memory, so any number of threads may share one tokenizer.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include "llm/llm.h"

/* Largest token id accepted: real vocabularies stay below 2^19 (Gemma 3: 262k); the cap keeps a
 * hostile file from making us allocate per-id tables of hundreds of megabytes. */
#define TOK_MAX_ID ((1 << 20) - 1)

#define TOKF_ADDED   1u
#define TOKF_SPECIAL 2u

/* ---- UTF-8 ---- */

int anml__utf8_seq(const uint8_t *s, size_t n, size_t *bad) {
    uint8_t c = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    size_t dummy;
    if (!bad) {
        bad = &dummy;
    }
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c == 0xE0) {
        len = 3;
        lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
        len = 3;
    } else if (c == 0xED) {
        len = 3;
        hi = 0x9F; /* no surrogates */
    } else if (c == 0xF0) {
        len = 4;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3) {
        len = 4;
    } else if (c == 0xF4) {
        len = 4;
        hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if (i >= n) {
            return -1;
        }
        uint8_t l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (s[i] < l || s[i] > h) {
            *bad = i;
            return 0;
        }
    }
    return (int)len;
}

size_t anml__utf8_lossy(const uint8_t *in, size_t n, bool final, uint8_t *out, size_t *consumed) {
    size_t i = 0, o = 0;
    while (i < n) {
        if (in[i] < 0x80) {
            out[o++] = in[i++];
            continue;
        }
        size_t bad = 1;
        int k = anml__utf8_seq(in + i, n - i, &bad);
        if (k > 0) {
            memcpy(out + o, in + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
            continue;
        }
        if (k < 0) {
            if (!final) {
                break;
            }
            bad = n - i;
        }
        out[o++] = 0xEF;
        out[o++] = 0xBF;
        out[o++] = 0xBD;
        i += bad;
    }
    if (consumed) {
        *consumed = i;
    }
    return o;
}

/* Decodes a well-formed k-byte sequence. */
static uint32_t utf8_cp(const uint8_t *s, int k) {
    switch (k) {
    case 1: return s[0];
    case 2: return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3: return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default:
        return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
               ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
}

static size_t utf8_put(uint32_t cp, uint8_t *out) {
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | (cp >> 6));
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12));
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18));
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* The code point at s[i] (*k bytes), or UINT32_MAX (*k = 1) for an ill-formed byte. */
static uint32_t utf8_next(const uint8_t *s, size_t n, size_t i, int *k) {
    int len = anml__utf8_seq(s + i, n - i, NULL);
    if (len <= 0) {
        *k = 1;
        return UINT32_MAX;
    }
    *k = len;
    return utf8_cp(s + i, len);
}

/* The code point ending just before s[i] (*k bytes), or UINT32_MAX for an ill-formed one. */
static uint32_t utf8_prev(const uint8_t *s, size_t i, int *k) {
    size_t j = i;
    while (j > 0 && i - j < 4) {
        j--;
        if ((s[j] & 0xC0) != 0x80) {
            break;
        }
    }
    int len = anml__utf8_seq(s + j, i - j, NULL);
    if (len <= 0 || (size_t)len != i - j) {
        *k = 1;
        return UINT32_MAX;
    }
    *k = len;
    return utf8_cp(s + j, len);
}

/* Unicode White_Space, which Rust's char::is_whitespace (used by the reference) follows. */
static bool cp_is_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

static bool cp_is_word(uint32_t c) {
    if (c == UINT32_MAX) {
        return false;
    }
    if (c < 0x80) {
        return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_';
    }
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
           (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

/* ---- the byte-level alphabet ---- */

uint32_t anml__bytelevel_char(uint8_t b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) {
        return b;
    }
    if (b <= 0x20) {
        return 256u + b;
    }
    if (b >= 0x7F && b <= 0xA0) {
        return 256u + 33u + (uint32_t)(b - 0x7F);
    }
    return 256u + 33u + 34u; /* 0xAD, the soft hyphen */
}

int anml__bytelevel_byte(uint32_t cp) {
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) {
        return (int)cp;
    }
    if (cp >= 256 && cp < 256 + 33) {
        return (int)(cp - 256);
    }
    if (cp >= 256 + 33 && cp < 256 + 33 + 34) {
        return (int)(cp - 256 - 33 + 0x7F);
    }
    if (cp == 256 + 33 + 34) {
        return 0xAD;
    }
    return -1;
}

/* ---- growable byte buffer (always NUL-terminated once used) ---- */

struct bbuf {
    uint8_t *p;
    size_t n, cap;
};

static bool bb_reserve(struct bbuf *b, size_t extra) {
    size_t need;
    if (!anml__add_size(b->n, extra, &need) || !anml__add_size(need, 1, &need)) {
        return false;
    }
    if (need <= b->cap) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (!anml__mul_size(cap, 2, &cap)) {
            return false;
        }
    }
    uint8_t *p = anml__realloc(b->p, cap);
    if (!p) {
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static bool bb_put(struct bbuf *b, const void *d, size_t n) {
    if (!bb_reserve(b, n)) {
        return false;
    }
    if (n) {
        memcpy(b->p + b->n, d, n);
    }
    b->n += n;
    b->p[b->n] = 0;
    return true;
}

static void bb_free(struct bbuf *b) {
    anml__free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

/* ---- hash tables ---- */

static uint32_t hash_bytes(const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return (uint32_t)(h ^ (h >> 32));
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A power of two with room for n entries at a load factor of at most 1/2. */
static bool table_size(size_t n, size_t *out) {
    size_t cap = 16;
    while (cap / 2 < n) {
        if (!anml__mul_size(cap, 2, &cap)) {
            return false;
        }
    }
    *out = cap;
    return true;
}

/* String -> id. Keys are borrowed (they live in the tokenizer's arena). */
struct smap_slot {
    const char *key; /* NULL = empty */
    uint32_t len;
    uint32_t hash;
    int32_t id;
};

struct smap {
    struct smap_slot *slots;
    size_t mask;
};

static bool smap_init(struct smap *m, size_t n) {
    size_t cap;
    if (!table_size(n, &cap)) {
        return false;
    }
    m->slots = anml__calloc(cap, sizeof *m->slots);
    m->mask = cap - 1;
    return m->slots != NULL;
}

static struct smap_slot *smap_find(const struct smap *m, const void *key, size_t len, uint32_t h) {
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        struct smap_slot *s = &m->slots[i];
        if (!s->key || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)) {
            return s;
        }
    }
}

/* A later key replaces an earlier equal one, as a JSON object read into a hash map does. */
static void smap_put(struct smap *m, const char *key, size_t len, int32_t id) {
    uint32_t h = hash_bytes(key, len);
    struct smap_slot *s = smap_find(m, key, len, h);
    s->key = key;
    s->len = (uint32_t)len;
    s->hash = h;
    s->id = id;
}

static int32_t smap_get(const struct smap *m, const void *key, size_t len) {
    if (!m->slots) {
        return -1;
    }
    const struct smap_slot *s = smap_find(m, key, len, hash_bytes(key, len));
    return s->key ? s->id : -1;
}

/* (left id, right id) -> (rank, merged id). */
#define PAIR_EMPTY UINT64_MAX

struct pair_slot {
    uint64_t key;
    int32_t rank;
    int32_t out;
};

struct pmap {
    struct pair_slot *slots;
    size_t mask;
};

static uint64_t pair_key(int32_t a, int32_t b) {
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

static bool pmap_init(struct pmap *m, size_t n) {
    size_t cap;
    if (!table_size(n, &cap)) {
        return false;
    }
    m->slots = anml__malloc(cap * sizeof *m->slots);
    if (!m->slots) {
        return false;
    }
    for (size_t i = 0; i < cap; i++) {
        m->slots[i].key = PAIR_EMPTY;
    }
    m->mask = cap - 1;
    return true;
}

static struct pair_slot *pmap_find(const struct pmap *m, uint64_t key) {
    for (size_t i = (size_t)hash_u64(key) & m->mask;; i = (i + 1) & m->mask) {
        struct pair_slot *s = &m->slots[i];
        if (s->key == key || s->key == PAIR_EMPTY) {
            return s;
        }
    }
}

static const struct pair_slot *pmap_get(const struct pmap *m, int32_t a, int32_t b) {
    if (!m->slots) {
        return NULL;
    }
    const struct pair_slot *s = pmap_find(m, pair_key(a, b));
    return s->key == PAIR_EMPTY ? NULL : s;
}

/* ---- the tokenizer ---- */

struct tok_entry {
    const char *text;  /* spelling in tokenizer.json; NULL for an id no token uses */
    const char *piece; /* what the decoder makes of the token on its own */
    uint32_t text_len, piece_len;
    uint32_t flags; /* TOKF_* */
};

enum norm_kind { NORM_UNICODE, NORM_LOWERCASE, NORM_REPLACE, NORM_PREPEND, NORM_STRIP };

struct norm_step {
    enum norm_kind kind;
    int options;         /* NORM_UNICODE: utf8proc options */
    pcre2_code *re;      /* NORM_REPLACE */
    const char *content; /* NORM_REPLACE / NORM_PREPEND */
    size_t content_len;
    bool left, right; /* NORM_STRIP */
};

enum pre_kind { PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE };
enum split_behavior {
    SPLIT_REMOVED,
    SPLIT_ISOLATED,
    SPLIT_MERGED_PREV,
    SPLIT_MERGED_NEXT,
    SPLIT_CONTIGUOUS
};
enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

struct pre_step {
    enum pre_kind kind;
    pcre2_code *re; /* PRE_SPLIT, PRE_BYTELEVEL with use_regex */
    enum split_behavior behavior;
    bool invert;
    bool add_prefix_space; /* PRE_BYTELEVEL */
    uint8_t repl[8];       /* PRE_METASPACE replacement character, UTF-8 */
    size_t repl_len;
    enum prepend_scheme prepend;
    bool split;
};

struct added_token {
    const char *content;
    size_t len;
    int32_t id;      /* as the reference assigns it (see assign_added_ids) */
    int32_t json_id; /* as tokenizer.json states it */
    bool special, lstrip, rstrip, normalized, single_word;
    bool shadowed; /* a later entry with the same content took over */
};

/* A byte trie over added-token contents, for leftmost-longest matching. */
struct trie_node {
    int32_t child, sibling; /* first child, next sibling: -1 = none */
    int32_t token;          /* index into tok->added ending here, or -1 */
    uint8_t byte;
};

struct trie {
    struct trie_node *nodes; /* nodes[0] is the root */
    int32_t n, cap;
    int32_t root[256]; /* root's child per first byte, -1 = none */
};

struct anml_tokenizer {
    struct anml_arena *arena; /* strings and per-id tables */
    pcre2_general_context *gctx;
    struct tok_entry *entries;
    int32_t n_vocab;
    struct smap vocab;     /* model vocabulary: spelling -> id */
    struct smap added_map; /* content -> index into added */
    struct pmap merges;
    bool byte_level;      /* a ByteLevel pre-tokenizer maps bytes to the GPT-2 alphabet */
    int32_t byte_id[256]; /* byte-level: id of each byte's one-character token, -1 = none */
    bool byte_fallback, ignore_merges, fuse_unk;
    int32_t unk_id;
    int32_t fallback_id[256]; /* "<0xXX>" tokens, -1 = none */
    struct norm_step *norm;
    int32_t n_norm;
    struct pre_step *pre;
    int32_t n_pre;
    struct added_token *added;
    int32_t n_added;
    struct trie trie_raw, trie_norm;
    /* decoder, whole-text part */
    bool join_space;       /* no decoder: tokens are joined with spaces */
    uint8_t strip_char[4]; /* Strip after Fuse / Metaspace: leading/trailing char to drop */
    size_t strip_char_len;
    int32_t strip_start, strip_stop;
    int32_t bos, eos;
    bool add_bos;
    int32_t eos_ids[8];
    int32_t n_eos;
};

/* ---- PCRE2 with our allocator ---- */

static void *pcre_alloc(PCRE2_SIZE n, void *ud) {
    (void)ud;
    return anml__malloc(n);
}

static void pcre_free(void *p, void *ud) {
    (void)ud;
    anml__free(p);
}

/* ---- normalization ---- */

/* Applies utf8proc to each well-formed run of in[0..n); ill-formed bytes pass through. */
static bool norm_unicode(const uint8_t *in, size_t n, int options, struct bbuf *out) {
    size_t i = 0;
    utf8proc_int32_t *buf = NULL;
    size_t buf_cap = 0;
    bool ok = true;
    while (ok && i < n) {
        size_t j = i, bad = 1;
        int k;
        while (j < n && (k = anml__utf8_seq(in + j, n - j, &bad)) > 0) {
            j += (size_t)k;
        }
        if (j > i) {
            utf8proc_ssize_t cnt = utf8proc_decompose(in + i, (utf8proc_ssize_t)(j - i), NULL, 0,
                                                      (utf8proc_option_t)options);
            if (cnt < 0) {
                ok = false;
                break;
            }
            if ((size_t)cnt + 1 > buf_cap) {
                anml__free(buf);
                buf_cap = (size_t)cnt + 1;
                buf = anml__malloc(buf_cap * sizeof *buf);
                if (!buf) {
                    ok = false;
                    break;
                }
            }
            cnt = utf8proc_decompose(in + i, (utf8proc_ssize_t)(j - i), buf, cnt,
                                     (utf8proc_option_t)options);
            utf8proc_ssize_t bytes =
                cnt < 0 ? cnt : utf8proc_reencode(buf, cnt, (utf8proc_option_t)options);
            ok = bytes >= 0 && bb_put(out, buf, (size_t)bytes);
        }
        if (ok && j < n) {
            /* j stopped at an ill-formed or truncated sequence */
            size_t skip = anml__utf8_seq(in + j, n - j, &bad) < 0 ? n - j : bad;
            ok = bb_put(out, in + j, skip);
            j += skip;
        }
        i = j;
    }
    anml__free(buf);
    return ok;
}

static bool norm_lowercase(const uint8_t *in, size_t n, struct bbuf *out) {
    for (size_t i = 0; i < n;) {
        int k;
        uint32_t cp = utf8_next(in, n, i, &k);
        if (cp == UINT32_MAX) {
            if (!bb_put(out, in + i, 1)) {
                return false;
            }
        } else {
            uint8_t tmp[4];
            uint32_t lc = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
            if (!bb_put(out, tmp, utf8_put(lc, tmp))) {
                return false;
            }
        }
        i += (size_t)k;
    }
    return true;
}

/* Replaces every match of re in in[0..n) by content. false on out of memory or a regex error. */
static bool regex_replace(const pcre2_code *re, pcre2_general_context *gctx, const uint8_t *in,
                          size_t n, const char *content, size_t content_len, struct bbuf *out) {
    pcre2_match_data *md = pcre2_match_data_create(1, gctx);
    if (!md) {
        return false;
    }
    size_t pos = 0, last = 0;
    bool ok = true;
    while (ok && pos < n) {
        int rc = pcre2_match(re, in, n, pos, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) {
            break;
        }
        if (rc < 0) {
            ok = false;
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] <= ov[0]) { /* an empty match replaces nothing; step over one character */
            pos = ov[0] + 1;
            while (pos < n && (in[pos] & 0xC0) == 0x80) {
                pos++;
            }
            continue;
        }
        ok = bb_put(out, in + last, ov[0] - last) && bb_put(out, content, content_len);
        last = pos = ov[1];
    }
    pcre2_match_data_free(md);
    return ok && bb_put(out, in + last, n - last);
}

static bool normalize_step(const struct anml_tokenizer *tok, const struct norm_step *st,
                           const uint8_t *in, size_t n, struct bbuf *out) {
    switch (st->kind) {
    case NORM_UNICODE: return norm_unicode(in, n, st->options, out);
    case NORM_LOWERCASE: return norm_lowercase(in, n, out);
    case NORM_REPLACE:
        return regex_replace(st->re, tok->gctx, in, n, st->content, st->content_len, out);
    case NORM_PREPEND:
        return (n == 0 || bb_put(out, st->content, st->content_len)) && bb_put(out, in, n);
    case NORM_STRIP: {
        size_t s = 0, e = n;
        int k;
        while (st->left && s < e && cp_is_space(utf8_next(in, n, s, &k))) {
            s += (size_t)k;
        }
        while (st->right && e > s && cp_is_space(utf8_prev(in, e, &k))) {
            e -= (size_t)k;
        }
        return bb_put(out, in + s, e - s);
    }
    }
    return false;
}

/* Runs the whole normalizer over in[0..n) into *out (reset first). */
static bool normalize(const struct anml_tokenizer *tok, const uint8_t *in, size_t n,
                      struct bbuf *out) {
    struct bbuf tmp = { 0 };
    out->n = 0;
    if (!bb_put(out, in, n)) {
        return false;
    }
    for (int32_t i = 0; i < tok->n_norm; i++) {
        tmp.n = 0;
        if (!bb_put(&tmp, "", 0) || !normalize_step(tok, &tok->norm[i], out->p, out->n, &tmp)) {
            bb_free(&tmp);
            return false;
        }
        struct bbuf t = *out;
        *out = tmp;
        tmp = t;
    }
    bb_free(&tmp);
    return true;
}

/* ---- added-token trie ---- */

static bool trie_add(struct trie *t, const uint8_t *s, size_t n, int32_t token) {
    if (!t->nodes) {
        t->cap = 64;
        t->nodes = anml__malloc((size_t)t->cap * sizeof *t->nodes);
        if (!t->nodes) {
            return false;
        }
        t->nodes[0] = (struct trie_node){ .child = -1, .sibling = -1, .token = -1 };
        t->n = 1;
        for (int i = 0; i < 256; i++) {
            t->root[i] = -1;
        }
    }
    int32_t cur = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = cur == 0 ? t->root[s[i]] : t->nodes[cur].child;
        if (cur != 0) {
            while (c >= 0 && t->nodes[c].byte != s[i]) {
                c = t->nodes[c].sibling;
            }
        }
        if (c < 0) {
            if (t->n == t->cap) {
                if (t->cap > INT32_MAX / 2) {
                    return false;
                }
                struct trie_node *p =
                    anml__realloc(t->nodes, (size_t)t->cap * 2 * sizeof *t->nodes);
                if (!p) {
                    return false;
                }
                t->nodes = p;
                t->cap *= 2;
            }
            c = t->n++;
            t->nodes[c] = (struct trie_node){ .child = -1, .token = -1, .byte = s[i] };
            if (cur == 0) {
                t->nodes[c].sibling = -1;
                t->root[s[i]] = c;
            } else {
                t->nodes[c].sibling = t->nodes[cur].child;
                t->nodes[cur].child = c;
            }
        }
        cur = c;
    }
    /* The first of two tokens with the same content wins, like the reference's trie. */
    if (t->nodes[cur].token < 0) {
        t->nodes[cur].token = token;
    }
    return true;
}

/* The longest allowed added token starting at s[0..n): index into tok->added, or -1. */
static int32_t trie_longest(const struct trie *t, const struct added_token *added, const uint8_t *s,
                            size_t n, bool parse_special, size_t *mlen) {
    int32_t best = -1;
    int32_t c = t->root[s[0]];
    size_t i = 0;
    while (c >= 0) {
        i++;
        int32_t tk = t->nodes[c].token;
        if (tk >= 0 && (parse_special || !added[tk].special)) {
            best = tk;
            *mlen = i;
        }
        if (i == n) {
            break;
        }
        c = t->nodes[c].child;
        while (c >= 0 && t->nodes[c].byte != s[i]) {
            c = t->nodes[c].sibling;
        }
    }
    return best;
}

/* ---- encoding ---- */

struct heap_item {
    int32_t rank;
    int32_t pos;
};

struct enc {
    const struct anml_tokenizer *tok;
    bool parse_special;
    enum anml_status status;
    int32_t *ids;
    size_t n_ids, cap_ids;
    pcre2_match_data *md;
    struct bbuf word; /* a word in the model's alphabet */
    int32_t *sym_id, *sym_prev, *sym_next;
    size_t sym_cap;
    struct heap_item *heap;
    size_t heap_n, heap_cap;
};

static enum anml_status enc_fail(struct enc *e, enum anml_status st) {
    if (e->status == ANML_OK) {
        e->status = st;
    }
    return st;
}

static enum anml_status push_id(struct enc *e, int32_t id) {
    if (e->n_ids == e->cap_ids) {
        size_t cap = e->cap_ids ? e->cap_ids * 2 : 256;
        if (e->n_ids >= (size_t)ANML_TOKENIZER_MAX_COUNT) {
            return enc_fail(e, ANML_E_INVALID_ARG);
        }
        int32_t *p = anml__realloc(e->ids, cap * sizeof *p);
        if (!p) {
            return enc_fail(e, ANML_E_NOMEM);
        }
        e->ids = p;
        e->cap_ids = cap;
    }
    e->ids[e->n_ids++] = id;
    return ANML_OK;
}

static bool heap_push(struct enc *e, int32_t rank, int32_t pos) {
    if (e->heap_n == e->heap_cap) {
        size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
        struct heap_item *h = anml__realloc(e->heap, cap * sizeof *h);
        if (!h) {
            return false;
        }
        e->heap = h;
        e->heap_cap = cap;
    }
    struct heap_item it = { rank, pos };
    size_t i = e->heap_n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        struct heap_item p = e->heap[parent];
        if (p.rank < it.rank || (p.rank == it.rank && p.pos <= it.pos)) {
            break;
        }
        e->heap[i] = p;
        i = parent;
    }
    e->heap[i] = it;
    return true;
}

static struct heap_item heap_pop(struct enc *e) {
    struct heap_item top = e->heap[0];
    struct heap_item last = e->heap[--e->heap_n];
    size_t i = 0, n = e->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) {
            break;
        }
        if (c + 1 < n &&
            (e->heap[c + 1].rank < e->heap[c].rank ||
             (e->heap[c + 1].rank == e->heap[c].rank && e->heap[c + 1].pos < e->heap[c].pos))) {
            c++;
        }
        if (last.rank < e->heap[c].rank ||
            (last.rank == e->heap[c].rank && last.pos <= e->heap[c].pos)) {
            break;
        }
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (n > 0) {
        e->heap[i] = last;
    }
    return top;
}

static bool sym_reserve(struct enc *e, size_t n) {
    if (n <= e->sym_cap) {
        return true;
    }
    size_t cap = e->sym_cap ? e->sym_cap : 64;
    while (cap < n) {
        cap *= 2;
    }
    int32_t *a = anml__realloc(e->sym_id, cap * sizeof *a);
    if (a) {
        e->sym_id = a;
    }
    int32_t *b = anml__realloc(e->sym_prev, cap * sizeof *b);
    if (b) {
        e->sym_prev = b;
    }
    int32_t *c = anml__realloc(e->sym_next, cap * sizeof *c);
    if (c) {
        e->sym_next = c;
    }
    if (!a || !b || !c) {
        return false;
    }
    e->sym_cap = cap;
    return true;
}

/* Adds the symbols of one character (or ill-formed byte) that the vocabulary lacks: its
 * "<0xXX>" tokens with byte_fallback, else the unknown token (fused with a preceding one when
 * fuse_unk), else nothing -- the reference drops such characters silently. */
static void add_unknown(const struct anml_tokenizer *tok, struct enc *e, const uint8_t *s, size_t k,
                        size_t *n, bool *last_unk) {
    if (tok->byte_fallback) {
        bool all = true;
        for (size_t i = 0; i < k; i++) {
            all = all && tok->fallback_id[s[i]] >= 0;
        }
        if (all) {
            for (size_t i = 0; i < k; i++) {
                e->sym_id[(*n)++] = tok->fallback_id[s[i]];
            }
            *last_unk = false;
            return;
        }
    }
    if (tok->unk_id >= 0 && !(tok->fuse_unk && *last_unk)) {
        e->sym_id[(*n)++] = tok->unk_id;
    }
    *last_unk = tok->unk_id >= 0;
}

/* BPE of one pre-tokenized word (raw bytes) -> ids appended to e->ids. */
static enum anml_status bpe_word(struct enc *e, const uint8_t *p, size_t n) {
    const struct anml_tokenizer *tok = e->tok;
    /* Up to 4 fallback symbols per byte of a character: n * 4 bounds every case. */
    if (n > SIZE_MAX / 16 || !sym_reserve(e, n * 4 + 1)) {
        return enc_fail(e, ANML_E_NOMEM);
    }
    e->word.n = 0;
    size_t nsym = 0;
    bool last_unk = false;
    if (tok->byte_level) {
        for (size_t i = 0; i < n; i++) {
            uint8_t u[4];
            if (!bb_put(&e->word, u, utf8_put(anml__bytelevel_char(p[i]), u))) {
                return enc_fail(e, ANML_E_NOMEM);
            }
            int32_t id = tok->byte_id[p[i]];
            if (id >= 0) {
                e->sym_id[nsym++] = id;
                last_unk = false;
            } else {
                add_unknown(tok, e, p + i, 1, &nsym, &last_unk);
            }
        }
    } else {
        if (!bb_put(&e->word, p, n)) {
            return enc_fail(e, ANML_E_NOMEM);
        }
        for (size_t i = 0; i < n;) {
            size_t bad = 1;
            int k = anml__utf8_seq(p + i, n - i, &bad);
            size_t len = k > 0 ? (size_t)k : 1;
            int32_t id = smap_get(&tok->vocab, p + i, len);
            if (id >= 0) {
                e->sym_id[nsym++] = id;
                last_unk = false;
            } else {
                add_unknown(tok, e, p + i, len, &nsym, &last_unk);
            }
            i += len;
        }
    }
    if (tok->ignore_merges) {
        int32_t id = smap_get(&tok->vocab, e->word.p, e->word.n);
        if (id >= 0) {
            return push_id(e, id);
        }
    }
    if (nsym == 0) {
        return ANML_OK;
    }
    int32_t *sid = e->sym_id, *prev = e->sym_prev, *next = e->sym_next;
    e->heap_n = 0;
    for (size_t i = 0; i < nsym; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < nsym ? (int32_t)i + 1 : -1;
        if (i + 1 < nsym) {
            const struct pair_slot *m = pmap_get(&tok->merges, sid[i], sid[i + 1]);
            if (m && !heap_push(e, m->rank, (int32_t)i)) {
                return enc_fail(e, ANML_E_NOMEM);
            }
        }
    }
    while (e->heap_n > 0) {
        struct heap_item top = heap_pop(e);
        int32_t pos = top.pos;
        int32_t nx = next[pos];
        if (sid[pos] < 0 || nx < 0) {
            continue;
        }
        const struct pair_slot *m = pmap_get(&tok->merges, sid[pos], sid[nx]);
        if (!m || m->rank != top.rank) {
            continue; /* stale: a neighbour changed since this pair was queued */
        }
        sid[pos] = m->out;
        sid[nx] = -1;
        next[pos] = next[nx];
        if (next[nx] >= 0) {
            prev[next[nx]] = pos;
        }
        if (prev[pos] >= 0) {
            const struct pair_slot *l = pmap_get(&tok->merges, sid[prev[pos]], sid[pos]);
            if (l && !heap_push(e, l->rank, prev[pos])) {
                return enc_fail(e, ANML_E_NOMEM);
            }
        }
        if (next[pos] >= 0) {
            const struct pair_slot *r = pmap_get(&tok->merges, sid[pos], sid[next[pos]]);
            if (r && !heap_push(e, r->rank, pos)) {
                return enc_fail(e, ANML_E_NOMEM);
            }
        }
    }
    for (int32_t i = 0; i >= 0; i = next[i]) {
        if (push_id(e, sid[i]) != ANML_OK) {
            return e->status;
        }
    }
    return ANML_OK;
}

struct range {
    size_t s, e;
    bool m;
};

struct ranges {
    struct range *r;
    size_t n, cap;
};

static bool ranges_add(struct ranges *rs, size_t s, size_t e, bool m) {
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 16;
        struct range *r = anml__realloc(rs->r, cap * sizeof *r);
        if (!r) {
            return false;
        }
        rs->r = r;
        rs->cap = cap;
    }
    rs->r[rs->n++] = (struct range){ s, e, m };
    return true;
}

/* Covers p[0..n) with alternating gaps and regex matches (m = true), in order. */
static enum anml_status find_matches(struct enc *e, const pcre2_code *re, const uint8_t *p,
                                     size_t n, struct ranges *out) {
    size_t pos = 0, last = 0;
    while (pos < n) {
        int rc = pcre2_match(re, p, n, pos, 0, e->md, NULL);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
            /* The JIT's fixed stack is small; the interpreter keeps its frames on the heap. */
            rc = pcre2_match(re, p, n, pos, PCRE2_NO_JIT, e->md, NULL);
        }
        if (rc == PCRE2_ERROR_NOMATCH) {
            break;
        }
        if (rc < 0) {
            return enc_fail(e, rc == PCRE2_ERROR_NOMEMORY ? ANML_E_NOMEM : ANML_E_INTERNAL);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(e->md);
        if (ov[1] <= ov[0]) { /* empty matches split nothing */
            pos = ov[0] + 1;
            while (pos < n && (p[pos] & 0xC0) == 0x80) {
                pos++;
            }
            continue;
        }
        if ((ov[0] > last && !ranges_add(out, last, ov[0], false)) ||
            !ranges_add(out, ov[0], ov[1], true)) {
            return enc_fail(e, ANML_E_NOMEM);
        }
        last = pos = ov[1];
    }
    if (last < n && !ranges_add(out, last, n, false)) {
        return enc_fail(e, ANML_E_NOMEM);
    }
    return ANML_OK;
}

/* Applies a Split behaviour (the reference's SplitDelimiterBehavior) in place. */
static void apply_behavior(struct ranges *rs, enum split_behavior b, bool invert) {
    size_t o = 0;
    bool prev_match = false;
    if (b == SPLIT_MERGED_NEXT) {
        /* walk backwards, extending the following piece down over a match */
        struct range *r = rs->r;
        size_t n = rs->n, w = n;
        for (size_t i = n; i-- > 0;) {
            bool m = r[i].m != invert;
            if (m && !prev_match && w < n) {
                r[w].s = r[i].s;
            } else {
                r[--w] = (struct range){ r[i].s, r[i].e, false };
            }
            prev_match = m;
        }
        memmove(r, r + w, (n - w) * sizeof *r);
        rs->n = n - w;
        return;
    }
    for (size_t i = 0; i < rs->n; i++) {
        struct range cur = rs->r[i];
        bool m = cur.m != invert;
        switch (b) {
        case SPLIT_REMOVED:
            if (!m) {
                rs->r[o++] = cur;
            }
            break;
        case SPLIT_ISOLATED: rs->r[o++] = cur; break;
        case SPLIT_MERGED_PREV:
            if (m && !prev_match && o > 0) {
                rs->r[o - 1].e = cur.e;
            } else {
                rs->r[o++] = cur;
            }
            break;
        case SPLIT_CONTIGUOUS:
            if (m == prev_match && o > 0) {
                rs->r[o - 1].e = cur.e;
            } else {
                rs->r[o++] = cur;
            }
            break;
        case SPLIT_MERGED_NEXT: break;
        }
        prev_match = m;
    }
    rs->n = o;
}

static enum anml_status pretok(struct enc *e, int32_t k, const uint8_t *p, size_t n, bool first);

/* Splits p by re (Isolated unless the step says otherwise) and continues with step k + 1. */
static enum anml_status split_and_continue(struct enc *e, int32_t k, const pcre2_code *re,
                                           enum split_behavior b, bool invert, const uint8_t *p,
                                           size_t n, bool first) {
    struct ranges rs = { 0 };
    enum anml_status st = find_matches(e, re, p, n, &rs);
    if (st == ANML_OK) {
        apply_behavior(&rs, b, invert);
        for (size_t i = 0; i < rs.n && st == ANML_OK; i++) {
            if (rs.r[i].e > rs.r[i].s) {
                st =
                    pretok(e, k + 1, p + rs.r[i].s, rs.r[i].e - rs.r[i].s, first && rs.r[i].s == 0);
            }
        }
    }
    anml__free(rs.r);
    return st;
}

static enum anml_status pre_metaspace(struct enc *e, int32_t k, const struct pre_step *st,
                                      const uint8_t *p, size_t n, bool first) {
    struct bbuf b = { 0 };
    bool prepend = st->prepend == PREPEND_ALWAYS || (st->prepend == PREPEND_FIRST && first);
    bool ok = true;
    if (prepend && !(n >= st->repl_len && memcmp(p, st->repl, st->repl_len) == 0)) {
        ok = bb_put(&b, st->repl, st->repl_len);
    }
    for (size_t i = 0; ok && i < n; i++) {
        ok = p[i] == ' ' ? bb_put(&b, st->repl, st->repl_len) : bb_put(&b, p + i, 1);
    }
    if (!ok) {
        bb_free(&b);
        return enc_fail(e, ANML_E_NOMEM);
    }
    enum anml_status rc = ANML_OK;
    if (!st->split) {
        rc = pretok(e, k + 1, b.p, b.n, first);
    } else {
        /* MergedWithNext on the replacement character: each piece starts with it */
        size_t s = 0;
        for (size_t i = 1; i <= b.n && rc == ANML_OK; i++) {
            if (i == b.n ||
                (b.n - i >= st->repl_len && memcmp(b.p + i, st->repl, st->repl_len) == 0)) {
                rc = pretok(e, k + 1, b.p + s, i - s, first && s == 0);
                s = i;
            }
        }
    }
    bb_free(&b);
    return rc;
}

/* Pre-tokenizer step k over one piece; past the last step the piece is a word for BPE. */
static enum anml_status pretok(struct enc *e, int32_t k, const uint8_t *p, size_t n, bool first) {
    const struct anml_tokenizer *tok = e->tok;
    if (n == 0) {
        return ANML_OK;
    }
    if (k == tok->n_pre) {
        return bpe_word(e, p, n);
    }
    const struct pre_step *st = &tok->pre[k];
    switch (st->kind) {
    case PRE_SPLIT: return split_and_continue(e, k, st->re, st->behavior, st->invert, p, n, first);
    case PRE_BYTELEVEL: {
        struct bbuf b = { 0 };
        if (st->add_prefix_space && p[0] != ' ') {
            if (!bb_put(&b, " ", 1) || !bb_put(&b, p, n)) {
                bb_free(&b);
                return enc_fail(e, ANML_E_NOMEM);
            }
            p = b.p;
            n = b.n;
        }
        enum anml_status rc =
            st->re ? split_and_continue(e, k, st->re, SPLIT_ISOLATED, false, p, n, first)
                   : pretok(e, k + 1, p, n, first);
        bb_free(&b);
        return rc;
    }
    case PRE_METASPACE: return pre_metaspace(e, k, st, p, n, first);
    }
    return enc_fail(e, ANML_E_INTERNAL);
}

enum stage { STAGE_RAW, STAGE_NORMALIZED };

static enum anml_status segment(struct enc *e, enum stage stage, const uint8_t *p, size_t n,
                                bool first);

/* Cuts the added tokens of trie t out of p[0..n); the text between them goes on to the next
 * stage. Matching is leftmost-longest; a single_word token that touches a word character is not
 * a match (scanning resumes after it, as the reference's automaton does). */
static enum anml_status split_added(struct enc *e, const struct trie *t, enum stage stage,
                                    const uint8_t *p, size_t n, bool first) {
    const struct anml_tokenizer *tok = e->tok;
    size_t seg = 0, i = 0;
    while (i < n) {
        size_t mlen = 0;
        int32_t a = t->root[p[i]] < 0
                        ? -1
                        : trie_longest(t, tok->added, p + i, n - i, e->parse_special, &mlen);
        if (a < 0) {
            i++;
            continue;
        }
        const struct added_token *at = &tok->added[a];
        size_t start = i, end = i + mlen;
        int k;
        if (at->single_word && ((start > 0 && cp_is_word(utf8_prev(p, start, &k))) ||
                                (end < n && cp_is_word(utf8_next(p, n, end, &k))))) {
            i = end;
            continue;
        }
        if (at->lstrip) {
            while (start > seg && cp_is_space(utf8_prev(p, start, &k)) &&
                   start - seg >= (size_t)k) {
                start -= (size_t)k;
            }
        }
        if (at->rstrip) {
            while (end < n && cp_is_space(utf8_next(p, n, end, &k))) {
                end += (size_t)k;
            }
        }
        enum anml_status st = segment(e, stage, p + seg, start - seg, first && seg == 0);
        if (st != ANML_OK || (st = push_id(e, at->id)) != ANML_OK) {
            return st;
        }
        seg = i = end;
    }
    return segment(e, stage, p + seg, n - seg, first && seg == 0);
}

/* Text between added tokens: STAGE_RAW normalizes it and cuts out the normalized added tokens;
 * STAGE_NORMALIZED pre-tokenizes it. */
static enum anml_status segment(struct enc *e, enum stage stage, const uint8_t *p, size_t n,
                                bool first) {
    const struct anml_tokenizer *tok = e->tok;
    if (n == 0) {
        return ANML_OK;
    }
    if (stage == STAGE_NORMALIZED) {
        return pretok(e, 0, p, n, first);
    }
    struct bbuf nb = { 0 };
    if (tok->n_norm > 0) {
        if (!normalize(tok, p, n, &nb)) {
            bb_free(&nb);
            return enc_fail(e, ANML_E_NOMEM);
        }
        p = nb.p;
        n = nb.n;
    }
    enum anml_status st = tok->trie_norm.nodes
                              ? split_added(e, &tok->trie_norm, STAGE_NORMALIZED, p, n, first)
                              : pretok(e, 0, p, n, first);
    bb_free(&nb);
    return st;
}

static int32_t tok_error(enum anml_status st) {
    return INT32_MIN + (int32_t)st;
}

int32_t anml_tokenizer_encode(const struct anml_tokenizer *tok, const char *text, size_t len,
                              bool parse_special, int32_t *ids, int32_t cap) {
    if (!tok || (!text && len > 0) || cap < 0 || (!ids && cap > 0)) {
        return tok_error(ANML_E_INVALID_ARG);
    }
    if (len == 0) {
        return 0;
    }
    struct enc e = { .tok = tok, .parse_special = parse_special };
    e.md = pcre2_match_data_create(1, tok->gctx);
    if (!e.md) {
        return tok_error(ANML_E_NOMEM);
    }
    const uint8_t *p = (const uint8_t *)text;
    if (tok->trie_raw.nodes) {
        split_added(&e, &tok->trie_raw, STAGE_RAW, p, len, true);
    } else {
        segment(&e, STAGE_RAW, p, len, true);
    }
    int32_t ret;
    if (e.status != ANML_OK) {
        ret = tok_error(e.status);
    } else if (e.n_ids > (size_t)ANML_TOKENIZER_MAX_COUNT) {
        ret = tok_error(ANML_E_INVALID_ARG);
    } else if (e.n_ids > (size_t)cap) {
        ret = -(int32_t)e.n_ids;
    } else {
        if (e.n_ids) {
            memcpy(ids, e.ids, e.n_ids * sizeof *ids);
        }
        ret = (int32_t)e.n_ids;
    }
    pcre2_match_data_free(e.md);
    anml__free(e.ids);
    bb_free(&e.word);
    anml__free(e.sym_id);
    anml__free(e.sym_prev);
    anml__free(e.sym_next);
    anml__free(e.heap);
    return ret;
}

/* ---- decoding ---- */

/* Appends token id's piece for a decode that has emitted *count tokens so far, applying the
 * whole-text leading strip (*strip_left counts how many characters may still go). */
static bool decode_append(const struct anml_tokenizer *tok, int32_t id, bool skip_special,
                          size_t *count, int32_t *strip_left, struct bbuf *out) {
    const struct tok_entry *t = &tok->entries[id];
    if (!t->text || (skip_special && (t->flags & TOKF_SPECIAL))) {
        return true;
    }
    if (*count > 0 && tok->join_space && !bb_put(out, " ", 1)) {
        return false;
    }
    (*count)++;
    const uint8_t *p = (const uint8_t *)t->piece;
    size_t n = t->piece_len;
    while (*strip_left > 0 && out->n == 0 && n >= tok->strip_char_len &&
           memcmp(p, tok->strip_char, tok->strip_char_len) == 0) {
        p += tok->strip_char_len;
        n -= tok->strip_char_len;
        (*strip_left)--;
    }
    if (out->n > 0 || n > 0) {
        *strip_left = 0;
    }
    return bb_put(out, p, n);
}

int32_t anml_tokenizer_decode(const struct anml_tokenizer *tok, const int32_t *ids, int32_t n_ids,
                              bool skip_special, char *buf, int32_t cap) {
    if (!tok || n_ids < 0 || (!ids && n_ids > 0) || cap < 0 || (!buf && cap > 0)) {
        return tok_error(ANML_E_INVALID_ARG);
    }
    struct bbuf raw = { 0 };
    size_t count = 0;
    int32_t strip_left = tok->strip_start;
    for (int32_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= tok->n_vocab) {
            bb_free(&raw);
            return tok_error(ANML_E_INVALID_ARG);
        }
        if (!decode_append(tok, ids[i], skip_special, &count, &strip_left, &raw)) {
            bb_free(&raw);
            return tok_error(ANML_E_NOMEM);
        }
    }
    for (int32_t i = 0; i < tok->strip_stop && tok->strip_char_len > 0; i++) {
        if (raw.n < tok->strip_char_len || memcmp(raw.p + raw.n - tok->strip_char_len,
                                                  tok->strip_char, tok->strip_char_len) != 0) {
            break;
        }
        raw.n -= tok->strip_char_len;
    }
    size_t out_cap;
    uint8_t *text = NULL;
    if (!anml__mul_size(raw.n, 3, &out_cap) || (raw.n > 0 && !(text = anml__malloc(out_cap)))) {
        bb_free(&raw);
        return tok_error(ANML_E_NOMEM);
    }
    size_t n = raw.n ? anml__utf8_lossy(raw.p, raw.n, true, text, NULL) : 0;
    bb_free(&raw);
    int32_t ret;
    if (n > (size_t)ANML_TOKENIZER_MAX_COUNT) {
        ret = tok_error(ANML_E_INVALID_ARG);
    } else if (n > (size_t)cap) {
        ret = -(int32_t)n;
    } else {
        if (n) {
            memcpy(buf, text, n);
        }
        if (n < (size_t)cap) {
            buf[n] = '\0';
        }
        ret = (int32_t)n;
    }
    anml__free(text);
    return ret;
}

/* ---- streaming detokenizer ---- */

struct anml_detok {
    const struct anml_tokenizer *tok;
    bool skip_special;
    size_t count;
    int32_t strip_left;
    struct bbuf pending; /* bytes of an incomplete UTF-8 sequence */
    struct bbuf out;
};

enum anml_status anml_detok_create(const struct anml_tokenizer *tok, bool skip_special,
                                   struct anml_detok **out) {
    if (!out) {
        return ANML_E_INVALID_ARG;
    }
    *out = NULL;
    if (!tok) {
        return ANML_E_INVALID_ARG;
    }
    struct anml_detok *d = anml__calloc(1, sizeof *d);
    if (!d) {
        return ANML_E_NOMEM;
    }
    d->tok = tok;
    d->skip_special = skip_special;
    d->strip_left = tok->strip_start;
    *out = d;
    return ANML_OK;
}

void anml_detok_free(struct anml_detok *d) {
    if (!d) {
        return;
    }
    bb_free(&d->pending);
    bb_free(&d->out);
    anml__free(d);
}

void anml_detok_reset(struct anml_detok *d) {
    if (!d) {
        return;
    }
    d->pending.n = 0;
    d->count = 0;
    d->strip_left = d->tok->strip_start;
}

/* Moves the complete part of d->pending (all of it when final) into d->out as lossy UTF-8. */
static enum anml_status detok_emit(struct anml_detok *d, bool final, const char **text,
                                   size_t *len) {
    d->out.n = 0;
    size_t need;
    if (!anml__mul_size(d->pending.n, 3, &need) || !bb_reserve(&d->out, need)) {
        return ANML_E_NOMEM;
    }
    size_t used = 0;
    d->out.n =
        d->pending.n ? anml__utf8_lossy(d->pending.p, d->pending.n, final, d->out.p, &used) : 0;
    d->out.p[d->out.n] = 0;
    if (used > 0) {
        memmove(d->pending.p, d->pending.p + used, d->pending.n - used);
        d->pending.n -= used;
    }
    *text = (const char *)d->out.p;
    *len = d->out.n;
    return ANML_OK;
}

enum anml_status anml_detok_feed(struct anml_detok *d, int32_t id, const char **text, size_t *len) {
    if (!d || !text || !len) {
        return ANML_E_INVALID_ARG;
    }
    *text = "";
    *len = 0;
    if (id < 0 || id >= d->tok->n_vocab) {
        return ANML_E_INVALID_ARG;
    }
    size_t before = d->pending.n;
    if (!decode_append(d->tok, id, d->skip_special, &d->count, &d->strip_left, &d->pending)) {
        d->pending.n = before;
        return ANML_E_NOMEM;
    }
    return detok_emit(d, false, text, len);
}

enum anml_status anml_detok_flush(struct anml_detok *d, const char **text, size_t *len) {
    if (!d || !text || !len) {
        return ANML_E_INVALID_ARG;
    }
    *text = "";
    *len = 0;
    enum anml_status st = detok_emit(d, true, text, len);
    d->count = 0;
    d->strip_left = d->tok->strip_start;
    return st;
}

/* ---- queries ---- */

static bool valid_id(const struct anml_tokenizer *tok, int32_t id) {
    return tok && id >= 0 && id < tok->n_vocab;
}

const char *anml_tokenizer_token_to_piece(const struct anml_tokenizer *tok, int32_t id,
                                          size_t *len) {
    if (!valid_id(tok, id) || !tok->entries[id].text) {
        if (len) {
            *len = 0;
        }
        return valid_id(tok, id) ? "" : NULL;
    }
    if (len) {
        *len = tok->entries[id].piece_len;
    }
    return tok->entries[id].piece;
}

const char *anml_tokenizer_token_text(const struct anml_tokenizer *tok, int32_t id) {
    return valid_id(tok, id) ? tok->entries[id].text : NULL;
}

int32_t anml_tokenizer_token_id(const struct anml_tokenizer *tok, const char *text) {
    if (!tok || !text) {
        return -1;
    }
    size_t n = strlen(text);
    int32_t idx = smap_get(&tok->added_map, text, n);
    return idx >= 0 ? tok->added[idx].id : smap_get(&tok->vocab, text, n);
}

int32_t anml_tokenizer_n_vocab(const struct anml_tokenizer *tok) {
    return tok ? tok->n_vocab : 0;
}

bool anml_tokenizer_is_special(const struct anml_tokenizer *tok, int32_t id) {
    return valid_id(tok, id) && (tok->entries[id].flags & TOKF_SPECIAL);
}

int32_t anml_tokenizer_bos(const struct anml_tokenizer *tok) {
    return tok ? tok->bos : -1;
}

bool anml_tokenizer_add_bos(const struct anml_tokenizer *tok) {
    return tok && tok->add_bos;
}

int32_t anml_tokenizer_eos(const struct anml_tokenizer *tok) {
    return tok ? tok->eos : -1;
}

const int32_t *anml_tokenizer_eos_ids(const struct anml_tokenizer *tok, int32_t *n) {
    if (n) {
        *n = tok ? tok->n_eos : 0;
    }
    return tok ? tok->eos_ids : NULL;
}

bool anml_tokenizer_is_eos(const struct anml_tokenizer *tok, int32_t id) {
    for (int32_t i = 0; tok && i < tok->n_eos; i++) {
        if (tok->eos_ids[i] == id) {
            return true;
        }
    }
    return false;
}

/* ---- loading ---- */

struct loader {
    struct anml_tokenizer *tok;
    const char *path; /* tokenizer.json as opened, for err->where */
    const char *base; /* the file name used in messages */
    struct anml_error *err;
};

static enum anml_status lerr(struct loader *ld, enum anml_status code, const char *field,
                             const char *fmt, ...) ANML_PRINTF(4, 5);

static enum anml_status lerr(struct loader *ld, enum anml_status code, const char *field,
                             const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    enum anml_status st = anml__verr_field(ld->err, code, ld->path, ld->base, field, fmt, ap);
    va_end(ap);
    return st;
}

static enum anml_status nomem(struct loader *ld) {
    return lerr(ld, ANML_E_NOMEM, NULL, "out of memory");
}

/* Optional boolean member (absent or null -> def). */
static enum anml_status get_bool(struct loader *ld, const cJSON *obj, const char *key,
                                 const char *field, bool def, bool *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = def;
    if (!it || cJSON_IsNull(it)) {
        return ANML_OK;
    }
    if (!cJSON_IsBool(it)) {
        return lerr(ld, ANML_E_FORMAT, field, "'%s' must be true or false", key);
    }
    *out = cJSON_IsTrue(it);
    return ANML_OK;
}

/* Optional string member (absent or null -> NULL). */
static enum anml_status get_str(struct loader *ld, const cJSON *obj, const char *key,
                                const char *field, const char **out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!it || cJSON_IsNull(it)) {
        return ANML_OK;
    }
    if (!cJSON_IsString(it) || !it->valuestring) {
        return lerr(ld, ANML_E_FORMAT, field, "'%s' must be a string", key);
    }
    *out = it->valuestring;
    return ANML_OK;
}

static enum anml_status get_id(struct loader *ld, const cJSON *it, const char *field,
                               int32_t *out) {
    if (!cJSON_IsNumber(it)) {
        return lerr(ld, ANML_E_FORMAT, field, "the token id must be a number");
    }
    double v = it->valuedouble;
    if (!(v >= 0.0 && v <= (double)TOK_MAX_ID) || floor(v) != v) {
        return lerr(ld, ANML_E_FORMAT, field, "token id %.17g is not an integer in [0, %d]", v,
                    TOK_MAX_ID);
    }
    *out = (int32_t)v;
    return ANML_OK;
}

/* The reference's regex engine (Oniguruma) reads \s as the Unicode White_Space property, while
 * PCRE2's \s also takes U+180E (MONGOLIAN VOWEL SEPARATOR, a format character since Unicode
 * 6.3), which changes how runs of spaces split. Spelling \s and \S as the property makes both
 * engines agree, inside character classes too. Returns a copy (caller frees) or NULL. */
static char *translate_regex(const char *re) {
    static const char ws[] = "\\p{White_Space}", nws[] = "\\P{White_Space}";
    struct bbuf b = { 0 };
    bool ok = true;
    for (size_t i = 0; ok && re[i]; i++) {
        if (re[i] == '\\' && (re[i + 1] == 's' || re[i + 1] == 'S')) {
            ok = re[i + 1] == 's' ? bb_put(&b, ws, sizeof ws - 1) : bb_put(&b, nws, sizeof nws - 1);
            i++;
        } else if (re[i] == '\\' && re[i + 1]) {
            ok = bb_put(&b, re + i, 2);
            i++;
        } else {
            ok = bb_put(&b, re + i, 1);
        }
    }
    if (!ok || !bb_put(&b, "", 0)) {
        bb_free(&b);
        return NULL;
    }
    return (char *)b.p;
}

/* A "pattern": {"Regex": "..."} or {"String": "..."} compiled with PCRE2 (a String literally). */
static enum anml_status compile_pattern(struct loader *ld, const cJSON *pat, const char *field,
                                        pcre2_code **out) {
    const cJSON *rx = cJSON_GetObjectItemCaseSensitive(pat, "Regex");
    const cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String");
    const cJSON *s = rx ? rx : lit;
    if (!cJSON_IsObject(pat) || !cJSON_IsString(s) || !s->valuestring) {
        return lerr(ld, ANML_E_FORMAT, field, "expected {\"Regex\": ...} or {\"String\": ...}");
    }
    if (!s->valuestring[0]) {
        return lerr(ld, ANML_E_FORMAT, field, "empty pattern");
    }
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_compile_context *cctx = pcre2_compile_context_create(ld->tok->gctx);
    if (!cctx) {
        return nomem(ld);
    }
    /* PCRE2_LITERAL refuses UCP, which a literal does not need. */
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (rx ? PCRE2_UCP : PCRE2_LITERAL);
    char *text = rx ? translate_regex(s->valuestring) : NULL;
    if (rx && !text) {
        pcre2_compile_context_free(cctx);
        return nomem(ld);
    }
    *out = pcre2_compile((PCRE2_SPTR)(text ? text : s->valuestring), PCRE2_ZERO_TERMINATED, opts,
                         &errcode, &erroff, cctx);
    if (!*out && text) {
        /* report the error against the pattern as written */
        pcre2_code *orig = pcre2_compile((PCRE2_SPTR)s->valuestring, PCRE2_ZERO_TERMINATED, opts,
                                         &errcode, &erroff, cctx);
        pcre2_code_free(orig);
    }
    anml__free(text);
    pcre2_compile_context_free(cctx);
    if (!*out) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(errcode, msg, sizeof msg);
        return lerr(ld, ANML_E_UNSUPPORTED, field,
                    "regex /%.120s/ does not compile at offset %zu: %s", s->valuestring,
                    (size_t)erroff, (const char *)msg);
    }
    /* JIT is an optimization only: without it (or where it fails) the interpreter runs. */
    (void)pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE);
    return ANML_OK;
}

/* Grows a step array by one zeroed element (callers keep it under MAX_STEPS). */
#define MAX_STEPS 32

static void *grow(void *arr, int32_t *n, size_t elem) {
    uint8_t *p = anml__realloc(arr, (size_t)(*n + 1) * elem);
    if (p) {
        memset(p + (size_t)*n * elem, 0, elem);
        (*n)++;
    }
    return p;
}

static enum anml_status parse_normalizer(struct loader *ld, const cJSON *n, const char *field,
                                         int depth) {
    struct anml_tokenizer *tok = ld->tok;
    char sub[256];
    if (!n || cJSON_IsNull(n)) {
        return ANML_OK;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(n, "type");
    if (!cJSON_IsObject(n) || !cJSON_IsString(type)) {
        return lerr(ld, ANML_E_FORMAT, field, "expected an object with a string 'type'");
    }
    const char *t = type->valuestring;
    if (strcmp(t, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers");
        if (!cJSON_IsArray(list)) {
            return lerr(ld, ANML_E_FORMAT, field, "'normalizers' must be an array");
        }
        if (depth > 8) {
            return lerr(ld, ANML_E_UNSUPPORTED, field, "Sequence nested too deeply");
        }
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            snprintf(sub, sizeof sub, "%s.normalizers[%d]", field, i++);
            enum anml_status st = parse_normalizer(ld, it, sub, depth + 1);
            if (st != ANML_OK) {
                return st;
            }
        }
        return ANML_OK;
    }
    struct norm_step step = { 0 };
    if (strcmp(t, "NFC") == 0) {
        step.kind = NORM_UNICODE;
        step.options = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    } else if (strcmp(t, "NFD") == 0) {
        step.kind = NORM_UNICODE;
        step.options = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE;
    } else if (strcmp(t, "NFKC") == 0) {
        step.kind = NORM_UNICODE;
        step.options = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    } else if (strcmp(t, "NFKD") == 0) {
        step.kind = NORM_UNICODE;
        step.options = UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
    } else if (strcmp(t, "Lowercase") == 0) {
        step.kind = NORM_LOWERCASE;
    } else if (strcmp(t, "Strip") == 0) {
        step.kind = NORM_STRIP;
        enum anml_status st = get_bool(ld, n, "strip_left", field, true, &step.left);
        if (st == ANML_OK) {
            st = get_bool(ld, n, "strip_right", field, true, &step.right);
        }
        if (st != ANML_OK) {
            return st;
        }
    } else if (strcmp(t, "Prepend") == 0 || strcmp(t, "Replace") == 0) {
        bool prepend = t[0] == 'P';
        const char *s;
        enum anml_status st = get_str(ld, n, prepend ? "prepend" : "content", field, &s);
        if (st != ANML_OK) {
            return st;
        }
        if (!s) {
            return lerr(ld, ANML_E_FORMAT, field, "missing '%s'", prepend ? "prepend" : "content");
        }
        step.kind = prepend ? NORM_PREPEND : NORM_REPLACE;
        step.content = anml__arena_strdup(tok->arena, s);
        step.content_len = strlen(s);
        if (!step.content) {
            return nomem(ld);
        }
        if (!prepend) {
            snprintf(sub, sizeof sub, "%s.pattern", field);
            st = compile_pattern(ld, cJSON_GetObjectItemCaseSensitive(n, "pattern"), sub, &step.re);
            if (st != ANML_OK) {
                return st;
            }
        }
    } else {
        return lerr(ld, ANML_E_UNSUPPORTED, field, "normalizer type '%s' is not supported", t);
    }
    if (tok->n_norm >= MAX_STEPS) {
        pcre2_code_free(step.re);
        return lerr(ld, ANML_E_UNSUPPORTED, field, "more than %d normalizers", MAX_STEPS);
    }
    struct norm_step *arr = grow(tok->norm, &tok->n_norm, sizeof *arr);
    if (!arr) {
        pcre2_code_free(step.re);
        return nomem(ld);
    }
    tok->norm = arr;
    arr[tok->n_norm - 1] = step;
    return ANML_OK;
}

static enum anml_status parse_behavior(struct loader *ld, const cJSON *n, const char *field,
                                       enum split_behavior *out) {
    static const char *const names[] = { "Removed", "Isolated", "MergedWithPrevious",
                                         "MergedWithNext", "Contiguous" };
    const char *b;
    enum anml_status st = get_str(ld, n, "behavior", field, &b);
    if (st != ANML_OK) {
        return st;
    }
    if (!b) {
        return lerr(ld, ANML_E_FORMAT, field, "missing 'behavior'");
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(b, names[i]) == 0) {
            *out = (enum split_behavior)i;
            return ANML_OK;
        }
    }
    return lerr(ld, ANML_E_UNSUPPORTED, field, "split behavior '%s' is not supported", b);
}

/* The GPT-2 pre-tokenization regex a ByteLevel pre-tokenizer with use_regex applies. */
static const char k_gpt2_regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static enum anml_status parse_metaspace(struct loader *ld, const cJSON *n, const char *field,
                                        uint8_t *repl, size_t *repl_len,
                                        enum prepend_scheme *scheme, bool *split) {
    const char *r, *ps;
    bool aps;
    enum anml_status st = get_str(ld, n, "replacement", field, &r);
    if (st == ANML_OK) {
        st = get_str(ld, n, "prepend_scheme", field, &ps);
    }
    if (st == ANML_OK) {
        st = get_bool(ld, n, "add_prefix_space", field, true, &aps);
    }
    if (st == ANML_OK && split) {
        st = get_bool(ld, n, "split", field, true, split);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (!r) {
        r = "\xe2\x96\x81"; /* U+2581, SentencePiece's space */
    }
    size_t rl = strlen(r);
    if (rl == 0 || rl > 4 || anml__utf8_seq((const uint8_t *)r, rl, NULL) != (int)rl) {
        return lerr(ld, ANML_E_FORMAT, field, "'replacement' must be one character");
    }
    memcpy(repl, r, rl);
    *repl_len = rl;
    if (!ps) {
        *scheme = aps ? PREPEND_ALWAYS : PREPEND_NEVER;
    } else if (strcmp(ps, "always") == 0) {
        *scheme = PREPEND_ALWAYS;
    } else if (strcmp(ps, "first") == 0) {
        *scheme = PREPEND_FIRST;
    } else if (strcmp(ps, "never") == 0) {
        *scheme = PREPEND_NEVER;
    } else {
        return lerr(ld, ANML_E_UNSUPPORTED, field, "prepend_scheme '%s' is not supported", ps);
    }
    return ANML_OK;
}

static enum anml_status parse_pretokenizer(struct loader *ld, const cJSON *n, const char *field,
                                           int depth) {
    struct anml_tokenizer *tok = ld->tok;
    char sub[256];
    if (!n || cJSON_IsNull(n)) {
        return ANML_OK;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(n, "type");
    if (!cJSON_IsObject(n) || !cJSON_IsString(type)) {
        return lerr(ld, ANML_E_FORMAT, field, "expected an object with a string 'type'");
    }
    const char *t = type->valuestring;
    if (tok->byte_level) {
        return lerr(ld, ANML_E_UNSUPPORTED, field,
                    "a pre-tokenizer after ByteLevel is not supported");
    }
    if (strcmp(t, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "pretokenizers");
        if (!cJSON_IsArray(list)) {
            return lerr(ld, ANML_E_FORMAT, field, "'pretokenizers' must be an array");
        }
        if (depth > 8) {
            return lerr(ld, ANML_E_UNSUPPORTED, field, "Sequence nested too deeply");
        }
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%d]", field, i++);
            enum anml_status st = parse_pretokenizer(ld, it, sub, depth + 1);
            if (st != ANML_OK) {
                return st;
            }
        }
        return ANML_OK;
    }
    struct pre_step step = { 0 };
    enum anml_status st = ANML_OK;
    if (strcmp(t, "Split") == 0) {
        step.kind = PRE_SPLIT;
        st = parse_behavior(ld, n, field, &step.behavior);
        if (st == ANML_OK) {
            st = get_bool(ld, n, "invert", field, false, &step.invert);
        }
        if (st == ANML_OK) {
            snprintf(sub, sizeof sub, "%s.pattern", field);
            st = compile_pattern(ld, cJSON_GetObjectItemCaseSensitive(n, "pattern"), sub, &step.re);
        }
    } else if (strcmp(t, "ByteLevel") == 0) {
        bool use_regex;
        step.kind = PRE_BYTELEVEL;
        st = get_bool(ld, n, "add_prefix_space", field, true, &step.add_prefix_space);
        if (st == ANML_OK) {
            st = get_bool(ld, n, "use_regex", field, true, &use_regex);
        }
        if (st == ANML_OK && use_regex) {
            cJSON *pat = cJSON_CreateObject();
            if (!pat || !cJSON_AddStringToObject(pat, "Regex", k_gpt2_regex)) {
                cJSON_Delete(pat);
                return nomem(ld);
            }
            st = compile_pattern(ld, pat, field, &step.re);
            cJSON_Delete(pat);
        }
        tok->byte_level = true;
    } else if (strcmp(t, "Metaspace") == 0) {
        step.kind = PRE_METASPACE;
        st = parse_metaspace(ld, n, field, step.repl, &step.repl_len, &step.prepend, &step.split);
    } else {
        return lerr(ld, ANML_E_UNSUPPORTED, field, "pre-tokenizer type '%s' is not supported", t);
    }
    if (st == ANML_OK && tok->n_pre >= MAX_STEPS) {
        st = lerr(ld, ANML_E_UNSUPPORTED, field, "more than %d pre-tokenizers", MAX_STEPS);
    }
    struct pre_step *arr = st == ANML_OK ? grow(tok->pre, &tok->n_pre, sizeof *arr) : NULL;
    if (!arr) {
        pcre2_code_free(step.re);
        return st != ANML_OK ? st : nomem(ld);
    }
    tok->pre = arr;
    arr[tok->n_pre - 1] = step;
    return ANML_OK;
}

/* Decoder steps, applied per token when the pieces are precomputed. */
enum dec_kind { DEC_BYTELEVEL, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_METASPACE };

struct dec_step {
    enum dec_kind kind;
    const char *pattern, *content; /* DEC_REPLACE (borrowed from the JSON) */
    uint8_t ch[8];                 /* DEC_STRIP content, DEC_METASPACE replacement */
    size_t ch_len;
    int32_t start, stop;
};

struct decoder {
    struct dec_step steps[16];
    int n;
    bool fused;
};

static enum anml_status set_whole_strip(struct loader *ld, const char *field, const uint8_t *ch,
                                        size_t ch_len, int32_t start, int32_t stop) {
    struct anml_tokenizer *tok = ld->tok;
    if (tok->strip_char_len > 0) {
        return lerr(ld, ANML_E_UNSUPPORTED, field, "more than one whole-text Strip");
    }
    memcpy(tok->strip_char, ch, ch_len);
    tok->strip_char_len = ch_len;
    tok->strip_start = start;
    tok->strip_stop = stop;
    return ANML_OK;
}

static enum anml_status parse_decoder(struct loader *ld, const cJSON *n, const char *field,
                                      struct decoder *dec, int depth) {
    char sub[256];
    if (!n || cJSON_IsNull(n)) {
        return ANML_OK;
    }
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(n, "type");
    if (!cJSON_IsObject(n) || !cJSON_IsString(type)) {
        return lerr(ld, ANML_E_FORMAT, field, "expected an object with a string 'type'");
    }
    const char *t = type->valuestring;
    if (strcmp(t, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "decoders");
        if (!cJSON_IsArray(list)) {
            return lerr(ld, ANML_E_FORMAT, field, "'decoders' must be an array");
        }
        if (depth > 8) {
            return lerr(ld, ANML_E_UNSUPPORTED, field, "Sequence nested too deeply");
        }
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, list) {
            snprintf(sub, sizeof sub, "%s.decoders[%d]", field, i++);
            enum anml_status st = parse_decoder(ld, it, sub, dec, depth + 1);
            if (st != ANML_OK) {
                return st;
            }
        }
        return ANML_OK;
    }
    if (dec->n == (int)(sizeof dec->steps / sizeof dec->steps[0])) {
        return lerr(ld, ANML_E_UNSUPPORTED, field, "too many decoder steps");
    }
    struct dec_step *s = &dec->steps[dec->n];
    memset(s, 0, sizeof *s);
    enum anml_status st = ANML_OK;
    if (strcmp(t, "ByteLevel") == 0) {
        s->kind = DEC_BYTELEVEL;
    } else if (strcmp(t, "ByteFallback") == 0) {
        s->kind = DEC_BYTEFALLBACK;
    } else if (strcmp(t, "Fuse") == 0) {
        s->kind = DEC_FUSE;
        dec->fused = true;
    } else if (strcmp(t, "Replace") == 0) {
        s->kind = DEC_REPLACE;
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(n, "pattern");
        const cJSON *lit = cJSON_GetObjectItemCaseSensitive(pat, "String");
        if (!cJSON_IsString(lit) || !lit->valuestring[0]) {
            return lerr(ld, ANML_E_UNSUPPORTED, field,
                        "only a non-empty {\"String\": ...} pattern is supported in Replace");
        }
        s->pattern = lit->valuestring;
        st = get_str(ld, n, "content", field, &s->content);
        if (st == ANML_OK && !s->content) {
            st = lerr(ld, ANML_E_FORMAT, field, "missing 'content'");
        }
    } else if (strcmp(t, "Strip") == 0) {
        const char *c;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(n, "start");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(n, "stop");
        st = get_str(ld, n, "content", field, &c);
        if (st != ANML_OK) {
            return st;
        }
        size_t cl = c ? strlen(c) : 0;
        if (!c || cl == 0 || cl > 4 || anml__utf8_seq((const uint8_t *)c, cl, NULL) != (int)cl ||
            !cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valuedouble < 0 || b->valuedouble < 0 ||
            a->valuedouble > 64 || b->valuedouble > 64) {
            return lerr(ld, ANML_E_FORMAT, field,
                        "Strip needs one 'content' character and 'start'/'stop' in [0, 64]");
        }
        s->kind = DEC_STRIP;
        memcpy(s->ch, c, cl);
        s->ch_len = cl;
        s->start = (int32_t)a->valuedouble;
        s->stop = (int32_t)b->valuedouble;
        if (dec->fused) {
            /* after Fuse there is one token: the strip applies to the whole text */
            return set_whole_strip(ld, field, s->ch, s->ch_len, s->start, s->stop);
        }
    } else if (strcmp(t, "Metaspace") == 0) {
        enum prepend_scheme scheme;
        s->kind = DEC_METASPACE;
        st = parse_metaspace(ld, n, field, s->ch, &s->ch_len, &scheme, NULL);
        if (st == ANML_OK && scheme != PREPEND_NEVER) {
            /* the reference drops the first token's leading space */
            st = set_whole_strip(ld, field, (const uint8_t *)" ", 1, 1, 0);
        }
    } else {
        return lerr(ld, ANML_E_UNSUPPORTED, field, "decoder type '%s' is not supported", t);
    }
    if (st == ANML_OK) {
        dec->n++;
    }
    return st;
}

static bool replace_all(const uint8_t *in, size_t n, const char *pat, const char *content,
                        struct bbuf *out) {
    size_t pl = strlen(pat), cl = strlen(content);
    for (size_t i = 0; i < n;) {
        if (n - i >= pl && memcmp(in + i, pat, pl) == 0) {
            if (!bb_put(out, content, cl)) {
                return false;
            }
            i += pl;
        } else {
            if (!bb_put(out, in + i, 1)) {
                return false;
            }
            i++;
        }
    }
    return true;
}

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One token through the per-token decoder steps. */
static bool decode_token(const struct decoder *dec, const uint8_t *text, size_t n, struct bbuf *a,
                         struct bbuf *b) {
    a->n = 0;
    if (!bb_put(a, text, n)) {
        return false;
    }
    for (int i = 0; i < dec->n; i++) {
        const struct dec_step *s = &dec->steps[i];
        b->n = 0;
        if (!bb_put(b, "", 0)) {
            return false;
        }
        switch (s->kind) {
        case DEC_BYTELEVEL: {
            /* all characters in the alphabet -> their bytes; otherwise the token as it is */
            bool all = true;
            for (size_t j = 0; all && j < a->n;) {
                int k;
                uint32_t cp = utf8_next(a->p, a->n, j, &k);
                int byte = cp == UINT32_MAX ? -1 : anml__bytelevel_byte(cp);
                uint8_t c = (uint8_t)byte;
                all = byte >= 0 && bb_put(b, &c, 1);
                j += (size_t)k;
            }
            if (!all) {
                b->n = 0;
                if (!bb_put(b, a->p, a->n)) {
                    return false;
                }
            }
            break;
        }
        case DEC_REPLACE:
            if (!replace_all(a->p, a->n, s->pattern, s->content, b)) {
                return false;
            }
            break;
        case DEC_BYTEFALLBACK: {
            int hi = a->n == 6 ? hexval(a->p[3]) : -1, lo = a->n == 6 ? hexval(a->p[4]) : -1;
            if (hi >= 0 && lo >= 0 && memcmp(a->p, "<0x", 3) == 0 && a->p[5] == '>') {
                uint8_t c = (uint8_t)(hi * 16 + lo);
                if (!bb_put(b, &c, 1)) {
                    return false;
                }
            } else if (!bb_put(b, a->p, a->n)) {
                return false;
            }
            break;
        }
        case DEC_STRIP: {
            size_t s0 = 0, e0 = a->n;
            for (int32_t j = 0;
                 j < s->start && e0 - s0 >= s->ch_len && memcmp(a->p + s0, s->ch, s->ch_len) == 0;
                 j++) {
                s0 += s->ch_len;
            }
            for (int32_t j = 0; j < s->stop && e0 - s0 >= s->ch_len &&
                                memcmp(a->p + e0 - s->ch_len, s->ch, s->ch_len) == 0;
                 j++) {
                e0 -= s->ch_len;
            }
            if (!bb_put(b, a->p + s0, e0 - s0)) {
                return false;
            }
            break;
        }
        case DEC_METASPACE: {
            char rep[8];
            memcpy(rep, s->ch, s->ch_len);
            rep[s->ch_len] = '\0';
            if (!replace_all(a->p, a->n, rep, " ", b)) {
                return false;
            }
            break;
        }
        case DEC_FUSE:
            if (!bb_put(b, a->p, a->n)) {
                return false;
            }
            break;
        }
        struct bbuf t = *a;
        *a = *b;
        *b = t;
    }
    return true;
}

static enum anml_status build_pieces(struct loader *ld, const struct decoder *dec) {
    struct anml_tokenizer *tok = ld->tok;
    struct bbuf a = { 0 }, b = { 0 };
    for (int32_t id = 0; id < tok->n_vocab; id++) {
        struct tok_entry *t = &tok->entries[id];
        if (!t->text) {
            continue;
        }
        if (!decode_token(dec, (const uint8_t *)t->text, t->text_len, &a, &b)) {
            bb_free(&a);
            bb_free(&b);
            return nomem(ld);
        }
        if (a.n == t->text_len && memcmp(a.p, t->text, a.n) == 0) {
            t->piece = t->text;
        } else {
            char *p = anml__arena_alloc(tok->arena, a.n + 1);
            if (!p) {
                bb_free(&a);
                bb_free(&b);
                return nomem(ld);
            }
            memcpy(p, a.p, a.n);
            t->piece = p;
        }
        t->piece_len = (uint32_t)a.n;
    }
    bb_free(&a);
    bb_free(&b);
    return ANML_OK;
}

/* model.vocab into the spelling -> id table; *max_id and *count describe it. */
static enum anml_status parse_vocab(struct loader *ld, const cJSON *vocab, int32_t *max_id,
                                    size_t *count) {
    struct anml_tokenizer *tok = ld->tok;
    const cJSON *it;
    char field[96];
    *max_id = -1;
    *count = 0;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id;
        snprintf(field, sizeof field, "model.vocab[\"%.40s\"]", it->string ? it->string : "");
        enum anml_status st = get_id(ld, it, field, &id);
        if (st != ANML_OK) {
            return st;
        }
        *max_id = id > *max_id ? id : *max_id;
        (*count)++;
    }
    if (!smap_init(&tok->vocab, *count)) {
        return nomem(ld);
    }
    cJSON_ArrayForEach(it, vocab) {
        size_t len = strlen(it->string);
        char *key = anml__arena_strndup(tok->arena, it->string, len);
        if (!key) {
            return nomem(ld);
        }
        smap_put(&tok->vocab, key, len, (int32_t)it->valuedouble);
    }
    return ANML_OK;
}

/* The reference does not take added-token ids from the file: it gives each token the id its
 * content has in the vocabulary, else the next id after the vocabulary (counted in entries) and
 * the added tokens so far, and only warns when that differs from the stated id. A repeated
 * content keeps its first id and takes the later entry's flags. Real files agree with the rule;
 * following it keeps hand-edited files tokenizing as the reference does. */
static enum anml_status assign_added_ids(struct loader *ld, size_t vocab_count, int32_t *max_id) {
    struct anml_tokenizer *tok = ld->tok;
    int64_t max_assigned = -1;
    int32_t n_moved = 0;
    for (int32_t i = 0; i < tok->n_added; i++) {
        struct added_token *a = &tok->added[i];
        int32_t prev = smap_get(&tok->added_map, a->content, a->len);
        if (prev >= 0) {
            struct added_token *p = &tok->added[prev];
            bool special = p->special || a->special;
            a->id = p->id;
            *p = *a;
            p->special = special;
            p->json_id = a->json_id;
            a->shadowed = true;
            continue;
        }
        int64_t id = smap_get(&tok->vocab, a->content, a->len);
        if (id < 0) {
            int64_t vs = (int64_t)vocab_count;
            id = max_assigned < 0 ? vs : (max_assigned >= vs || vs == 0 ? max_assigned + 1 : vs);
        }
        if (id > TOK_MAX_ID) {
            char field[64];
            snprintf(field, sizeof field, "added_tokens[%d]", i);
            return lerr(ld, ANML_E_FORMAT, field, "token id %lld is above %d", (long long)id,
                        TOK_MAX_ID);
        }
        a->id = (int32_t)id;
        if (a->id != a->json_id && n_moved++ == 0) {
            ANML_LOG_WARN("tokenizer: %s: added token \"%.40s\" says id %d; the reference gives "
                          "it %d, which anml uses",
                          ld->base, a->content, a->json_id, a->id);
        }
        smap_put(&tok->added_map, a->content, a->len, i);
        max_assigned = id > max_assigned ? id : max_assigned;
        *max_id = a->id > *max_id ? a->id : *max_id;
    }
    if (n_moved > 1) {
        ANML_LOG_WARN("tokenizer: %s: %d added tokens in all have ids other than stated", ld->base,
                      n_moved);
    }
    return ANML_OK;
}

/* Per-id table: vocabulary spellings first, added tokens over them. */
static enum anml_status build_entries(struct loader *ld, int32_t max_id) {
    struct anml_tokenizer *tok = ld->tok;
    if (max_id < 0) {
        return lerr(ld, ANML_E_FORMAT, "model.vocab", "no tokens");
    }
    tok->n_vocab = max_id + 1;
    tok->entries = anml__arena_array(tok->arena, (size_t)tok->n_vocab, sizeof *tok->entries);
    if (!tok->entries) {
        return nomem(ld);
    }
    for (size_t i = 0; i <= tok->vocab.mask; i++) {
        const struct smap_slot *sl = &tok->vocab.slots[i];
        if (sl->key) {
            tok->entries[sl->id].text = sl->key;
            tok->entries[sl->id].text_len = sl->len;
        }
    }
    return ANML_OK;
}

/* One merge, "a b" or ["a", "b"], into the rank table. */
static enum anml_status add_merge(struct loader *ld, const cJSON *m, int32_t rank,
                                  struct bbuf *cat) {
    struct anml_tokenizer *tok = ld->tok;
    char field[64];
    const char *a, *b;
    size_t al, bl;
    snprintf(field, sizeof field, "model.merges[%d]", rank);
    if (cJSON_IsString(m)) {
        const char *sp = strchr(m->valuestring, ' ');
        if (!sp || sp == m->valuestring || !sp[1]) {
            return lerr(ld, ANML_E_FORMAT, field, "expected \"left right\", got \"%.60s\"",
                        m->valuestring);
        }
        a = m->valuestring;
        al = (size_t)(sp - a);
        b = sp + 1;
        bl = strlen(b);
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
               cJSON_IsString(m->child->next)) {
        a = m->child->valuestring;
        al = strlen(a);
        b = m->child->next->valuestring;
        bl = strlen(b);
    } else {
        return lerr(ld, ANML_E_FORMAT, field, "expected \"left right\" or [\"left\", \"right\"]");
    }
    int32_t ia = smap_get(&tok->vocab, a, al), ib = smap_get(&tok->vocab, b, bl);
    if (ia < 0 || ib < 0) {
        return lerr(ld, ANML_E_FORMAT, field, "token \"%.*s\" is not in model.vocab",
                    (int)(ia < 0 ? (al > 60 ? 60 : al) : (bl > 60 ? 60 : bl)), ia < 0 ? a : b);
    }
    cat->n = 0;
    if (!bb_put(cat, a, al) || !bb_put(cat, b, bl)) {
        return nomem(ld);
    }
    int32_t out = smap_get(&tok->vocab, cat->p, cat->n);
    if (out < 0) {
        return lerr(ld, ANML_E_FORMAT, field, "the merged token \"%.60s\" is not in model.vocab",
                    (const char *)cat->p);
    }
    /* A repeated pair takes its later rank, as the reference's map insertion does. */
    struct pair_slot *s = pmap_find(&tok->merges, pair_key(ia, ib));
    s->key = pair_key(ia, ib);
    s->rank = rank;
    s->out = out;
    return ANML_OK;
}

static enum anml_status parse_added(struct loader *ld, const cJSON *list) {
    struct anml_tokenizer *tok = ld->tok;
    int32_t n = cJSON_GetArraySize(list);
    char field[64];
    tok->added = anml__arena_array(tok->arena, n > 0 ? (size_t)n : 1, sizeof *tok->added);
    if (!tok->added || !smap_init(&tok->added_map, (size_t)n)) {
        return nomem(ld);
    }
    const cJSON *it;
    int32_t i = 0;
    cJSON_ArrayForEach(it, list) {
        struct added_token *a = &tok->added[i];
        const char *content;
        snprintf(field, sizeof field, "added_tokens[%d]", i);
        if (!cJSON_IsObject(it)) {
            return lerr(ld, ANML_E_FORMAT, field, "expected an object");
        }
        enum anml_status st =
            get_id(ld, cJSON_GetObjectItemCaseSensitive(it, "id"), field, &a->json_id);
        if (st == ANML_OK) {
            st = get_str(ld, it, "content", field, &content);
        }
        if (st == ANML_OK && (!content || !content[0])) {
            st = lerr(ld, ANML_E_FORMAT, field, "'content' must be a non-empty string");
        }
        if (st == ANML_OK) {
            st = get_bool(ld, it, "special", field, false, &a->special);
        }
        if (st == ANML_OK) {
            st = get_bool(ld, it, "lstrip", field, false, &a->lstrip);
        }
        if (st == ANML_OK) {
            st = get_bool(ld, it, "rstrip", field, false, &a->rstrip);
        }
        if (st == ANML_OK) {
            st = get_bool(ld, it, "single_word", field, false, &a->single_word);
        }
        if (st == ANML_OK) {
            st = get_bool(ld, it, "normalized", field, !a->special, &a->normalized);
        }
        if (st != ANML_OK) {
            return st;
        }
        a->len = strlen(content);
        a->content = anml__arena_strndup(tok->arena, content, a->len);
        if (!a->content) {
            return nomem(ld);
        }
        i++;
    }
    tok->n_added = i;
    return ANML_OK;
}

static enum anml_status build_added(struct loader *ld) {
    struct anml_tokenizer *tok = ld->tok;
    struct bbuf nb = { 0 };
    for (int32_t i = 0; i < tok->n_added; i++) {
        struct added_token *a = &tok->added[i];
        if (a->shadowed) {
            continue;
        }
        struct tok_entry *t = &tok->entries[a->id];
        t->text = a->content;
        t->text_len = (uint32_t)a->len;
        t->flags = TOKF_ADDED | (a->special ? TOKF_SPECIAL : 0);
        bool ok;
        if (a->normalized && tok->n_norm > 0) {
            /* matched against normalized text, so the content is normalized too */
            ok = normalize(tok, (const uint8_t *)a->content, a->len, &nb) &&
                 (nb.n == 0 || trie_add(&tok->trie_norm, nb.p, nb.n, i));
        } else {
            ok = trie_add(a->normalized ? &tok->trie_norm : &tok->trie_raw,
                          (const uint8_t *)a->content, a->len, i);
        }
        if (!ok) {
            bb_free(&nb);
            return nomem(ld);
        }
    }
    bb_free(&nb);
    return ANML_OK;
}

/* "<|eos|>" or {"content": "<|eos|>", ...} -> id, -1 when absent or unknown. */
static int32_t config_token(const struct anml_tokenizer *tok, const cJSON *cfg, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(it)) {
        it = cJSON_GetObjectItemCaseSensitive(it, "content");
    }
    if (!cJSON_IsString(it) || !it->valuestring) {
        return -1;
    }
    return anml_tokenizer_token_id(tok, it->valuestring);
}

/* BOS from a TemplateProcessing post-processor: its "single" template's leading special token. */
static int32_t template_bos(const struct anml_tokenizer *tok, const cJSON *pp, int depth) {
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(pp, "type");
    if (!cJSON_IsString(type) || depth > 8) {
        return -1;
    }
    if (strcmp(type->valuestring, "Sequence") == 0) {
        const cJSON *it;
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(pp, "processors")) {
            int32_t id = template_bos(tok, it, depth + 1);
            if (id >= 0) {
                return id;
            }
        }
        return -1;
    }
    if (strcmp(type->valuestring, "TemplateProcessing") != 0) {
        return -1;
    }
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(pp, "single");
    const cJSON *first = cJSON_IsArray(single) ? single->child : NULL;
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(first, "SpecialToken");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(sp, "id");
    return cJSON_IsString(name) ? anml_tokenizer_token_id(tok, name->valuestring) : -1;
}

static void add_eos(struct anml_tokenizer *tok, int32_t id) {
    if (id < 0 || anml_tokenizer_is_eos(tok, id) ||
        tok->n_eos == (int32_t)(sizeof tok->eos_ids / sizeof tok->eos_ids[0])) {
        return;
    }
    tok->eos_ids[tok->n_eos++] = id;
}

/* Parses JSON text; on a syntax error names name:line:col. */
static enum anml_status parse_json(const char *data, size_t size, const char *name, cJSON **out,
                                   struct anml_error *err) {
    const char *end = NULL;
    *out = cJSON_ParseWithLengthOpts(data, size, &end, false);
    if (*out) {
        return ANML_OK;
    }
    size_t off = end && end >= data && end <= data + size ? (size_t)(end - data) : 0;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off; i++) {
        if (data[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char where[sizeof err->where];
    snprintf(where, sizeof where, "%s:%zu:%zu", name, line, col);
    return anml__err(err, ANML_E_FORMAT, where, "invalid JSON (%s)",
                     off + 1 >= size ? "unexpected end of file" : "syntax error");
}

static const char *path_base(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static const char *const k_end_markers[] = { "<|im_end|>",      "<|endoftext|>", "<|eot_id|>",
                                             "<|end_of_text|>", "<|eom_id|>",    "<end_of_turn>" };

static enum anml_status load_model(struct loader *ld, const cJSON *root) {
    struct anml_tokenizer *tok = ld->tok;
    if (!cJSON_IsObject(root)) {
        return lerr(ld, ANML_E_FORMAT, NULL, "the top level must be an object");
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsObject(model)) {
        return lerr(ld, ANML_E_FORMAT, "model", "missing (an object with vocab and merges)");
    }
    const char *type;
    enum anml_status st = get_str(ld, model, "type", "model", &type);
    if (st != ANML_OK) {
        return st;
    }
    if (type && strcmp(type, "BPE") != 0) {
        return lerr(ld, ANML_E_UNSUPPORTED, "model.type", "'%s' is not supported (only BPE)", type);
    }
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) {
        return lerr(ld, ANML_E_FORMAT, "model.vocab", "missing or not an object");
    }
    if (merges && !cJSON_IsArray(merges) && !cJSON_IsNull(merges)) {
        return lerr(ld, ANML_E_FORMAT, "model.merges", "must be an array");
    }
    /* Options the reference applies that change ids, and which no inference file sets. */
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0.0) {
        return lerr(ld, ANML_E_UNSUPPORTED, "model.dropout", "BPE dropout is not supported");
    }
    const char *cont, *suffix, *unk;
    st = get_str(ld, model, "continuing_subword_prefix", "model", &cont);
    if (st == ANML_OK) {
        st = get_str(ld, model, "end_of_word_suffix", "model", &suffix);
    }
    if (st == ANML_OK && ((cont && cont[0]) || (suffix && suffix[0]))) {
        st = lerr(ld, ANML_E_UNSUPPORTED, "model",
                  "continuing_subword_prefix / end_of_word_suffix are not supported");
    }
    if (st == ANML_OK) {
        st = get_str(ld, model, "unk_token", "model", &unk);
    }
    if (st == ANML_OK) {
        st = get_bool(ld, model, "byte_fallback", "model", false, &tok->byte_fallback);
    }
    if (st == ANML_OK) {
        st = get_bool(ld, model, "ignore_merges", "model", false, &tok->ignore_merges);
    }
    if (st == ANML_OK) {
        st = get_bool(ld, model, "fuse_unk", "model", false, &tok->fuse_unk);
    }
    if (st != ANML_OK) {
        return st;
    }

    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    if (added && !cJSON_IsArray(added) && !cJSON_IsNull(added)) {
        return lerr(ld, ANML_E_FORMAT, "added_tokens", "must be an array");
    }
    if ((st = parse_added(ld, cJSON_IsArray(added) ? added : NULL)) != ANML_OK) {
        return st;
    }
    int32_t max_id;
    size_t vocab_count;
    if ((st = parse_vocab(ld, vocab, &max_id, &vocab_count)) != ANML_OK ||
        (st = assign_added_ids(ld, vocab_count, &max_id)) != ANML_OK ||
        (st = build_entries(ld, max_id)) != ANML_OK) {
        return st;
    }
    if (cJSON_IsArray(merges)) {
        struct bbuf cat = { 0 };
        int32_t n = cJSON_GetArraySize(merges), rank = 0;
        if (!pmap_init(&tok->merges, (size_t)n)) {
            return nomem(ld);
        }
        const cJSON *m;
        cJSON_ArrayForEach(m, merges) {
            if ((st = add_merge(ld, m, rank++, &cat)) != ANML_OK) {
                bb_free(&cat);
                return st;
            }
        }
        bb_free(&cat);
    }
    tok->unk_id = unk ? smap_get(&tok->vocab, unk, strlen(unk)) : -1;
    if (unk && tok->unk_id < 0) {
        return lerr(ld, ANML_E_FORMAT, "model.unk_token", "\"%.60s\" is not in model.vocab", unk);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", (unsigned)b);
        tok->fallback_id[b] = smap_get(&tok->vocab, name, 6);
    }

    if ((st = parse_normalizer(ld, cJSON_GetObjectItemCaseSensitive(root, "normalizer"),
                               "normalizer", 0)) != ANML_OK ||
        (st = parse_pretokenizer(ld, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
                                 "pre_tokenizer", 0)) != ANML_OK) {
        return st;
    }
    for (int b = 0; b < 256; b++) {
        uint8_t u[4];
        tok->byte_id[b] = smap_get(&tok->vocab, u, utf8_put(anml__bytelevel_char((uint8_t)b), u));
    }
    struct decoder dec = { 0 };
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if ((st = parse_decoder(ld, d, "decoder", &dec, 0)) != ANML_OK) {
        return st;
    }
    tok->join_space = !d || cJSON_IsNull(d);
    if ((st = build_added(ld)) != ANML_OK || (st = build_pieces(ld, &dec)) != ANML_OK) {
        return st;
    }
    tok->bos = template_bos(tok, cJSON_GetObjectItemCaseSensitive(root, "post_processor"), 0);
    tok->add_bos = tok->bos >= 0;
    return ANML_OK;
}

static void load_config(struct anml_tokenizer *tok, const cJSON *cfg) {
    if (cfg) {
        int32_t bos = config_token(tok, cfg, "bos_token");
        const cJSON *bos_item = cJSON_GetObjectItemCaseSensitive(cfg, "bos_token");
        if (bos >= 0 || cJSON_IsNull(bos_item)) {
            /* an explicit null means "no BOS" even when a template names one */
            tok->bos = bos;
        }
        tok->eos = config_token(tok, cfg, "eos_token");
        const cJSON *add = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token");
        if (cJSON_IsBool(add)) {
            tok->add_bos = cJSON_IsTrue(add);
        }
    }
    tok->add_bos = tok->add_bos && tok->bos >= 0;
    add_eos(tok, tok->eos);
    for (size_t i = 0; i < sizeof k_end_markers / sizeof k_end_markers[0]; i++) {
        int32_t idx = smap_get(&tok->added_map, k_end_markers[i], strlen(k_end_markers[i]));
        add_eos(tok, idx >= 0 ? tok->added[idx].id : -1);
    }
}

void anml_tokenizer_free(struct anml_tokenizer *tok) {
    if (!tok) {
        return;
    }
    for (int32_t i = 0; i < tok->n_norm; i++) {
        pcre2_code_free(tok->norm[i].re);
    }
    for (int32_t i = 0; i < tok->n_pre; i++) {
        pcre2_code_free(tok->pre[i].re);
    }
    anml__free(tok->norm);
    anml__free(tok->pre);
    anml__free(tok->vocab.slots);
    anml__free(tok->added_map.slots);
    anml__free(tok->merges.slots);
    anml__free(tok->trie_raw.nodes);
    anml__free(tok->trie_norm.nodes);
    pcre2_general_context_free(tok->gctx);
    anml__arena_free(tok->arena);
    anml__free(tok);
}

/* Builds the tokenizer from tokenizer.json text and, when cfg is not NULL, the text of
 * tokenizer_config.json. The names stand for the files in error positions. */
static enum anml_status build(const char *json, size_t len, const char *name, const char *cfg,
                              size_t cfg_len, const char *cfg_name, struct anml_tokenizer **out,
                              struct anml_error *err) {
    struct anml_tokenizer *tok = anml__calloc(1, sizeof *tok);
    cJSON *root = NULL, *cfg_root = NULL;
    enum anml_status st = ANML_OK;
    if (!tok || !(tok->arena = anml__arena_create()) ||
        !(tok->gctx = pcre2_general_context_create(pcre_alloc, pcre_free, NULL))) {
        st = anml__err(err, ANML_E_NOMEM, name, "out of memory");
        goto done;
    }
    tok->bos = tok->eos = tok->unk_id = -1;
    struct loader ld = { tok, name, path_base(name), err };
    if ((st = parse_json(json, len, name, &root, err)) != ANML_OK ||
        (st = load_model(&ld, root)) != ANML_OK) {
        goto done;
    }
    if (cfg) {
        struct loader cl = { tok, cfg_name, path_base(cfg_name), err };
        if ((st = parse_json(cfg, cfg_len, cfg_name, &cfg_root, err)) != ANML_OK) {
            goto done;
        }
        if (!cJSON_IsObject(cfg_root)) {
            st = lerr(&cl, ANML_E_FORMAT, NULL, "the top level must be an object");
            goto done;
        }
    }
    load_config(tok, cfg_root);
done:
    cJSON_Delete(root);
    cJSON_Delete(cfg_root);
    if (st != ANML_OK) {
        anml_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return ANML_OK;
}

enum anml_status anml__tokenizer_from_json(const char *json, size_t len, const char *config,
                                           size_t config_len, struct anml_tokenizer **out,
                                           struct anml_error *err) {
    if (!out) {
        return anml__err(err, ANML_E_INVALID_ARG, NULL, "out is NULL");
    }
    *out = NULL;
    if (!json) {
        return anml__err(err, ANML_E_INVALID_ARG, NULL, "json is NULL");
    }
    return build(json, len, "tokenizer.json", config, config_len, "tokenizer_config.json", out,
                 err);
}

enum anml_status anml_tokenizer_load(const char *path, struct anml_tokenizer **out,
                                     struct anml_error *err) {
    if (!out) {
        return anml__err(err, ANML_E_INVALID_ARG, NULL, "out is NULL");
    }
    *out = NULL;
    if (!path) {
        return anml__err(err, ANML_E_INVALID_ARG, NULL, "path is NULL");
    }
    char *json_path, *cfg_path;
    if (anml__is_dir(path)) {
        json_path = anml__path_join(path, "tokenizer.json");
        cfg_path = anml__path_join(path, "tokenizer_config.json");
    } else {
        const char *slash = strrchr(path, '/');
        char *dir = slash ? anml__strndup(path, (size_t)(slash - path) + 1) : anml__strdup("./");
        json_path = anml__strdup(path);
        cfg_path = dir ? anml__path_join(dir, "tokenizer_config.json") : NULL;
        anml__free(dir);
    }
    char *json = NULL, *cfg = NULL;
    size_t len = 0, cfg_len = 0;
    enum anml_status st;
    if (!json_path || !cfg_path) {
        st = anml__err(err, ANML_E_NOMEM, path, "out of memory");
    } else if ((st = anml__read_file(json_path, &json, &len, err)) == ANML_OK &&
               (!anml__is_file(cfg_path) ||
                (st = anml__read_file(cfg_path, &cfg, &cfg_len, err)) == ANML_OK)) {
        st = build(json, len, json_path, cfg, cfg_len, cfg_path, out, err);
    }
    anml__free(json);
    anml__free(cfg);
    anml__free(json_path);
    anml__free(cfg_path);
    return st;
}
