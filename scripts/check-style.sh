#!/bin/sh
# Fails on a clang-format difference or a banned function in the sources.
set -eu
cd "$(dirname "$0")/.."
files=$(git ls-files '*.c' '*.h')
clang-format-14 --dry-run -Werror $files
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atof|atol|strtok)\s*\('
if grep -nE "$banned" $files; then
    echo "banned function used (see docs: use snprintf, strtol with end pointer, ...)" >&2
    exit 1
fi
