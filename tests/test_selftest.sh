#!/usr/bin/env bash
# test_selftest.sh - vox-selftest end to end: every op passes on the CPU against the reference
# loops; --device cuda either passes (a GPU is present) or fails cleanly with exit 2 and one
# line naming the CUDA error (no GPU, as on the build machine); --device auto always passes;
# libvox_cuda.so exports its entry point. Env: VOX_BIN, VOX_HAVE_CUDA (ctest sets them).
set -u
BIN=${VOX_BIN:?VOX_BIN not set}
ST="$BIN/vox-selftest"
fails=0
passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

OPS="memory matmul rmsnorm rope kv_write attention attention_alibi swiglu silu gelu softmax add mul scale mul_rows conv1d conv_transpose1d embed argmax logmel"

# every op has exactly one PASS line in $1 (the output)
check_ops() {
    local out=$1 what=$2
    for op in $OPS; do
        n=$(grep -cE "^$op +[0-9]+ .* PASS$" <<<"$out")
        if [ "$n" = 1 ]; then ok; else bad "$what: no single PASS line for op '$op'"; fi
    done
    n=$(grep -cE " (PASS|FAIL)$" <<<"$out")
    [ "$n" = 20 ] && ok || bad "$what: $n result lines, expected 20"
}

# --help
out=$("$ST" --help); rc=$?
[ $rc = 0 ] && grep -q -- "--device" <<<"$out" && grep -q "default" <<<"$out" && ok \
    || bad "--help: rc $rc"

# cpu: against the reference loops, two thread counts and seeds
out=$("$ST" --device cpu --threads 2 --seed 1 2>&1); rc=$?
[ $rc = 0 ] && ok || bad "--device cpu: exit $rc"$'\n'"$out"
head -1 <<<"$out" | grep -qE "^cpu: [0-9]+ threads?, matvec [a-z0-9]+, OpenBLAS" && ok \
    || bad "--device cpu: first line is not the backend description: $(head -1 <<<"$out")"
check_ops "$out" "--device cpu"
out=$("$ST" --device cpu --threads 3 --seed 12345 2>&1); rc=$?
[ $rc = 0 ] && ok || bad "--device cpu --threads 3 --seed 12345: exit $rc"$'\n'"$out"
check_ops "$out" "--device cpu --threads 3"

# an unknown device is a usage error, not a device error
"$ST" --device tpu >/dev/null 2>&1; rc=$?
[ $rc = 3 ] && ok || bad "--device tpu: exit $rc, expected 3"

# cuda
if [ "${VOX_HAVE_CUDA:-OFF}" = ON ]; then
    lib="$BIN/libvox_cuda.so"
    if nm -D --defined-only "$lib" 2>/dev/null | grep -qE " T vox_cuda_backend_create$"; then ok
    else bad "$lib does not export vox_cuda_backend_create"; fi
    n=$(nm -D --defined-only "$lib" 2>/dev/null | grep -cE " [TDB] ")
    [ "$n" = 1 ] && ok || bad "$lib exports $n symbols, expected only the entry point"
    out=$("$ST" --device cuda 2>&1); rc=$?
    if [ $rc = 0 ]; then
        # a GPU answered: every op matches the CPU backend
        head -1 <<<"$out" | grep -q "^cuda: device" && ok || bad "--device cuda: first line $(head -1 <<<"$out")"
        check_ops "$out" "--device cuda"
    elif [ $rc = 2 ]; then
        lines=$(grep -c . <<<"$out")
        [ "$lines" = 1 ] && ok || bad "--device cuda without a GPU: $lines lines, expected 1:"$'\n'"$out"
        grep -q "CUDA" <<<"$out" && ok || bad "--device cuda: the line does not mention CUDA: $out"
        echo "no GPU: $out"
    else
        bad "--device cuda: exit $rc, expected 0 (GPU) or 2 (no GPU)"$'\n'"$out"
    fi
else
    out=$("$ST" --device cuda 2>&1); rc=$?
    [ $rc = 2 ] && grep -q "CUDA" <<<"$out" && ok || bad "--device cuda without the CUDA build: exit $rc: $out"
fi

# auto: CUDA when a GPU answers, else the CPU after one line saying why
out=$("$ST" --device auto --threads 2 2>&1); rc=$?
[ $rc = 0 ] && ok || bad "--device auto: exit $rc"$'\n'"$out"
check_ops "$out" "--device auto"
if ! grep -q "^cuda: device" <<<"$out"; then
    n=$(grep -c "using the CPU" <<<"$out")
    [ "$n" = 1 ] && ok || bad "--device auto fell back to the CPU with $n explanation lines"
fi

echo "test_selftest: $passes passed, $fails failed"
[ $fails = 0 ]
