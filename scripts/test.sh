#!/bin/sh
# Sets up a Debian 12 machine, builds anml with ASan+UBSan and runs every test (unit,
# conformance against ../shared/fixtures, cli, fuzz corpus replay), then runs each libFuzzer
# harness for a bounded time and checks formatting and banned functions.
# Usage: scripts/test.sh            (from the repository root)
# Env:   ANML_FUZZ_SECONDS (default 20) seconds per fuzzer; 0 skips the timed fuzz runs.
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)

# reference tokenizer.json files for the tokenizer tests (outside git, in build-deps/)
scripts/fetch-tokenizers.sh

# 1. the whole suite under ASan + UBSan
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DANML_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j "$jobs"
if [ -d ../shared ]; then export ANML_REQUIRE_FIXTURES=1; fi
(cd build-asan && ctest --output-on-failure -j "$jobs")

# 2. an optimized build (gcc -O2 warns about things -O0 does not see) with the fast layers
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-release -j "$jobs"
(cd build-release && ctest --output-on-failure -j "$jobs" -L 'unit|kernels|conformance')

# 3. a clang build of everything (a second compiler's warnings), then each libFuzzer harness
#    for a bounded time on a copy of its corpus
secs=${ANML_FUZZ_SECONDS:-20}
if [ "$secs" != 0 ]; then
    CC=clang-14 cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug \
        -DANML_BUILD_FUZZ=ON -DANML_BUILD_TESTS=ON -DANML_SANITIZE=address,undefined >/dev/null
    cmake --build build-fuzz -j "$jobs"
    for f in build-fuzz/tests/fuzz_*; do
        case "$f" in *_replay) continue ;; esac
        name=$(basename "$f")
        work=$(mktemp -d)
        cp -r "tests/fuzz/corpus/$name/." "$work/"
        echo "fuzzing $name for ${secs}s"
        if ! "$f" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 "$work" \
            >"$work.log" 2>&1; then
            tail -n 40 "$work.log"
            echo "fuzzer $name failed; the crashing input is above (crash-* in $(pwd))" >&2
            exit 1
        fi
        tail -n 1 "$work.log"
        rm -rf "$work" "$work.log"
    done
fi

# 4. formatting and banned functions
scripts/check-style.sh
echo "all tests passed"
