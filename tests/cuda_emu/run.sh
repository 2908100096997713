#!/usr/bin/env bash
# run.sh - build the CUDA backend sources against the host emulation (cuda_runtime.h,
# cublas_v2.h, emu.cpp here) with g++ and run `vox-selftest --device cuda` on it, i.e. every
# CUDA kernel's index math checked against the CPU backend on a machine without a GPU.
# Slow (every GPU thread is a coroutine; ~3 CPU-minutes), so not part of ctest.
#   usage: tests/cuda_emu/run.sh <build dir with bin/vox-selftest> [vox-selftest args...]
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: run.sh <build dir> [args]}
shift
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
gcc -std=c11 -O2 -fPIC -Wall -Wextra -Werror -D_GNU_SOURCE -c "$src/kernels/common.c" \
    -o "$out/common.o"
gcc -std=c11 -O2 -fPIC -Wall -Wextra -Werror -D_GNU_SOURCE -c "$src/kernels/dtype.c" \
    -o "$out/dtype.o"
g++ -std=c++17 -O2 -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror -Wno-unknown-pragmas \
    -D_GNU_SOURCE -I "$src/tests/cuda_emu" -I "$src/kernels" \
    -x c++ "$src"/kernels/cuda/*.cu "$src/tests/cuda_emu/emu.cpp" -x none "$out/common.o" \
    "$out/dtype.o" -o "$out/libvox_cuda.so"
VOX_CUDA_LIB="$out/libvox_cuda.so" "$build/bin/vox-selftest" --device cuda "$@"
