#!/bin/sh
# Synthesizes a model with `anml synth` and measures it: time and peak RSS of writing it, peak
# RSS of `anml info` on it, then load / prefill / decode figures through the pipeline
# (bench_pipeline.c). Uses an optimized build in build-bench/ (configured here if missing).
# usage: bench/bench_synth.sh [OUT_DIR] [anml synth options...]
#   env: ANML_BENCH_BUILD (build dir), ANML_BENCH_NO_BUILD=1 (use the binaries as they are),
#        ANML_BENCH_PROMPT / ANML_BENCH_GEN (prompt / generated tokens, default 128 / 32)
#   default: /tmp/anml-bench-qwen3-0.6b-lut8 --preset qwen3-0.6b --lut-ffn 8 --lut-lmhead 8
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ANML_BENCH_BUILD:-$root/build-bench}
out=${1:-/tmp/anml-bench-qwen3-0.6b-lut8}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- --preset qwen3-0.6b --lut-ffn 8 --lut-lmhead 8
if [ ! -f "$build/build.ninja" ]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DANML_BUILD_TESTS=OFF >/dev/null
fi
if [ -z "${ANML_BENCH_NO_BUILD:-}" ]; then
    ninja -C "$build" anml anml_cli >"$build/bench-build.log" 2>&1 || {
        tail -20 "$build/bench-build.log" >&2; exit 1; }
fi
libs=$(pkg-config --libs libprotobuf-c libcjson yaml-0.1 libzip libpcre2-8 libutf8proc)
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$root/include" "$root/bench/bench_pipeline.c" \
    "$build/libanml.a" $libs -lm -lpthread -o "$build/bench_pipeline"
echo "== anml synth $* --out $out"
rm -rf "$out"
/usr/bin/time -v "$build/anml" synth "$@" --out "$out" 2>"$build/synth.time"
grep -E "Elapsed|Maximum resident" "$build/synth.time"
echo "== files: $(du -sm "$out" | cut -f1) MB"
du -sm "$out"/*.mlmodelc
echo "== anml info"
/usr/bin/time -v "$build/anml" info "$out" >/dev/null 2>"$build/info.time"
grep -E "Elapsed|Maximum resident" "$build/info.time"
echo "== pipeline"
/usr/bin/time -v "$build/bench_pipeline" "$out" "${ANML_BENCH_PROMPT:-128}" "${ANML_BENCH_GEN:-32}" 2>"$build/run.time"
grep -E "Elapsed|Maximum resident" "$build/run.time"
