/*
 * llm.h -- private declarations shared by the files of src/llm/ (the language-model layer on top
 * of the program executor: tokenizer, pipeline, chat templates, sampling, generation). Each part
 * keeps its declarations in its own banner section.
 */
#ifndef ANML_LLM_H
#define ANML_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* ---- tokenizer ---- */

/* The GPT-2 byte-level alphabet that ByteLevel pre-tokenizers and decoders use: every byte has a
 * printable stand-in code point (printable Latin-1 bytes stand for themselves, the other 68 bytes
 * map to U+0100..U+0143 in byte order). anml__bytelevel_byte is the inverse: -1 for a code point
 * outside the alphabet. */
uint32_t anml__bytelevel_char(uint8_t byte);
int anml__bytelevel_byte(uint32_t cp);

/* Length of the well-formed UTF-8 sequence at s[0..n): k in 1..4 when s starts with one; 0 when
 * s[0] starts none, with *bad (>= 1) set to the length of its maximal ill-formed subpart (the
 * bytes one U+FFFD replaces, as Unicode §3.9 recommends and Rust's from_utf8_lossy does); -1
 * when the n bytes are a proper prefix of a well-formed sequence (more bytes may complete it).
 * n must be > 0. */
int anml__utf8_seq(const uint8_t *s, size_t n, size_t *bad);

/* Copies in[0..n) to out replacing ill-formed UTF-8 by U+FFFD (one per maximal subpart). When
 * `final` is false, a trailing incomplete sequence is left unconsumed. out needs room for 3 * n
 * bytes. Returns the bytes written; *consumed (optional) receives the input bytes used. */
size_t anml__utf8_lossy(const uint8_t *in, size_t n, bool final, uint8_t *out, size_t *consumed);

/* anml_tokenizer_load from memory: tokenizer.json text and optionally tokenizer_config.json text
 * (config may be NULL). Error positions name "tokenizer.json" / "tokenizer_config.json". Used by
 * the fuzz harness and by callers that hold the files in memory. */
enum anml_status anml__tokenizer_from_json(const char *json, size_t len, const char *config,
                                           size_t config_len, struct anml_tokenizer **out,
                                           struct anml_error *err);

#endif /* ANML_LLM_H */
