#!/usr/bin/env bash
# vox-transcribe as a user runs it: on a tiny model regenerated from a fixture's mkmodel_cmd, the
# --tokens output must equal the reference's greedy tokens, the text output must equal
# mistral-common's decode, and bad invocations must fail with one line on stderr.
set -euo pipefail
FIX="$VOX_SOURCE_DIR/tests/fixtures/asr/m1_speech"
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
fail=0; pass=0
check() { if eval "$2"; then pass=$((pass+1)); else echo "FAIL: $1"; fail=$((fail+1)); fi; }

# the reference tokens, from the fixture (no Python in CI: plain text processing)
want=$(sed -n '/^ "tokens": \[/,/^ \]/p' "$FIX/meta.json" | tr -dc '0-9\n' | grep . | tr '\n' ' ' | sed 's/ $//')
cmd=$(sed -n 's/^ "mkmodel_cmd": "vox-mkmodel \(.*\)",$/\1/p' "$FIX/meta.json")
# shellcheck disable=SC2086
"$VOX_BIN/vox-mkmodel" ${cmd//\{out\}/$TMP/m} >/dev/null

got=$("$VOX_BIN/vox-transcribe" -m "$TMP/m" --device cpu --tokens "$VOX_SOURCE_DIR/tests/fixtures/asr/speech.wav" 2>"$TMP/err")
check "--tokens equals the reference tokens" '[ "$got" = "$want" ]'
echo "tokens: $(echo "$got" | wc -w) (reference $(echo "$want" | wc -w))"

text=$("$VOX_BIN/vox-transcribe" -m "$TMP/m" --device cpu "$VOX_SOURCE_DIR/tests/fixtures/asr/speech.wav" 2>/dev/null)
if command -v jq >/dev/null; then
    ref=$(jq -r '.text' "$FIX/meta.json" | sed 's/^ *//; s/ *$//')
    check "text equals mistral-common's decode" '[ "$text" = "$ref" ]'
fi

check "--help exits 0 and names --delay" '"$VOX_BIN/vox-transcribe" --help | grep -q -- "--delay"'
check "bad delay fails" '! "$VOX_BIN/vox-transcribe" -m "$TMP/m" --device cpu --delay 500 "$VOX_SOURCE_DIR/tests/fixtures/asr/speech.wav" 2>"$TMP/e1" >/dev/null'
check "bad delay message" 'grep -q "500 ms not supported" "$TMP/e1"'
check "missing model dir fails" '! "$VOX_BIN/vox-transcribe" -m "$TMP/nope" --device cpu "$VOX_SOURCE_DIR/tests/fixtures/asr/speech.wav" 2>"$TMP/e2" >/dev/null'
check "missing model message names the file" 'grep -q "nope/params.json" "$TMP/e2"'
echo "test_transcribe: $pass passed, $fail failed"
[ $fail = 0 ]
