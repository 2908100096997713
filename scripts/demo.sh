#!/usr/bin/env bash
# scripts/demo.sh - the main job, run by scripts/setup.sh after the build.
# With VOX_MODEL pointing at a real model directory it uses that; otherwise it generates a tiny
# random model in the exact upstream layout (models/tiny-realtime) and uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD_DIR:-build}/bin
MODEL=${VOX_MODEL:-}
if [ -z "$MODEL" ]; then
    MODEL=models/tiny-realtime
    if [ ! -f "$MODEL/consolidated.safetensors" ]; then
        echo "demo: no VOX_MODEL given; generating a tiny random Voxtral Realtime model in $MODEL"
        "$BIN/vox-mkmodel" --kind realtime --out "$MODEL" --seed 1
    fi
fi
echo "demo: backend self-test (every op against reference loops)"
"$BIN/vox-selftest" --device auto
echo "demo: loading and validating $MODEL"
"$BIN/vox-inspect" -m "$MODEL"
echo "demo: transcribing tests/fixtures/asr/speech.wav (espeak-ng: \"The quick brown fox jumps over the lazy dog.\")"
if [ -z "${VOX_MODEL:-}" ]; then
    echo "demo: (a random tiny model emits arbitrary tokens; with real weights this prints the sentence)"
fi
"$BIN/vox-transcribe" -m "$MODEL" -v tests/fixtures/asr/speech.wav
echo "demo: the same as raw decoder tokens (one per 80 ms step)"
"$BIN/vox-transcribe" -m "$MODEL" --tokens tests/fixtures/asr/speech.wav | head -c 400; echo
