#!/usr/bin/env bash
# test_mkmodel_tts.sh - vox-mkmodel --kind tts writes the upstream TTS layout: params.json,
# consolidated.safetensors (backbone + 33-tensor acoustic transformer at full size + codec:
# 386 tensors, 4002.35M parameters = 8004706784 BF16 bytes, spec/voxtral-tts.md 4.1/4.3),
# tekken.json, voice_embedding/<name>.pt (torch zip); deterministic; bad input fails cleanly.
set -uo pipefail
BIN=${VOX_BIN:-build/bin}
MK="$BIN/vox-mkmodel"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
check() { if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1" >&2; fi; }
has() { grep -qF -- "$2" "$1"; echo $?; }

"$MK" --kind tts --out "$T/m" >"$T/mk.out" 2>"$T/mk.err"
check "tiny tts exits 0 ($(cat "$T/mk.err"))" $?
for f in params.json consolidated.safetensors tekken.json voice_embedding/casual_female.pt \
    voice_embedding/casual_male.pt; do
    [ -s "$T/m/$f" ]; check "tiny tts has $f" $?
done
check "tiny: 135 tensors (3 + 9*2 + 6 + 9*2 + 90 codec)" "$(has "$T/mk.out" "135 tensors")"
check "params model_type" "$(has "$T/m/params.json" '"model_type": "voxtral_tts"')"
check "params voice map" "$(has "$T/m/params.json" '"casual_male": 1')"
check "tekken voices" "$(has "$T/m/tekken.json" '"voice_num_audio_tokens"')"
# zip entries of the .pt as torch.save names them (<stem>/data.pkl ... <stem>/version)
for e in casual_male/data.pkl casual_male/byteorder casual_male/data/0 casual_male/version; do
    check ".pt has $e" "$(has "$T/m/voice_embedding/casual_male.pt" "$e")"
done
IN="$BIN/vox-inspect"
"$IN" -m "$T/m" >"$T/in.out" 2>"$T/in.err"
check "vox-inspect reads it ($(cat "$T/in.err"))" $?
check "inspect: kind tts" "$(has "$T/in.out" "kind      tts")"
check "inspect: 135 tensors all BF16" "$(has "$T/in.out" "tensors   135,")"
"$MK" --kind tts --out "$T/m2" >/dev/null 2>&1
cmp -s "$T/m/consolidated.safetensors" "$T/m2/consolidated.safetensors" &&
    cmp -s "$T/m/voice_embedding/casual_male.pt" "$T/m2/voice_embedding/casual_male.pt"
check "deterministic" $?
"$MK" --kind tts --out "$T/m3" --seed 9 >/dev/null 2>&1
cmp -s "$T/m/consolidated.safetensors" "$T/m3/consolidated.safetensors"
[ $? != 0 ]; check "seed changes the weights" $?

"$MK" --kind tts --full --dry-run >"$T/full.out" 2>&1
check "full dry-run exits 0" $?
check "full: 386 tensors, 8004706784 bytes" "$(has "$T/full.out" "386 tensors, 8004706784 bytes")"
check "full: 20 voices" "$(has "$T/full.out" "20 voices")"
[ ! -e "$T/none" ]; check "dry-run writes nothing" $?

"$MK" --kind tts --out "$T/b" --heads 6 --kv-heads 4 >/dev/null 2>"$T/bad.err"
[ $? = 2 ]; check "bad heads exits 2" $?
[ "$(wc -l <"$T/bad.err")" = 1 ]; check "bad heads: one line" $?
"$MK" --kind tts --out "$T/b" --voices 21 >/dev/null 2>"$T/bad.err"
[ $? = 2 ]; check "21 voices exits 2 ($(cat "$T/bad.err"))" $?
[ ! -e "$T/b" ]; check "bad command lines write nothing" $?

echo "test_mkmodel_tts: $pass passed, $fail failed"
[ "$fail" = 0 ]
