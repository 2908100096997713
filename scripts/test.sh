#!/usr/bin/env bash
# scripts/test.sh - run the whole test suite on the build made by scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
[ -d "$BUILD_DIR" ] || { echo "test: no build in $BUILD_DIR; run scripts/setup.sh first" >&2; exit 2; }
cmake --build "$BUILD_DIR" -j"$(nproc)" >/dev/null
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" --timeout 900
