#!/usr/bin/env bash
# Regenerates the Voxtral Realtime ASR golden fixtures in tests/fixtures/asr/ with the upstream
# reference (transformers, float32, CPU) on tiny random models made by our vox-mkmodel.
#
# Usage: tests/reference/run_asr_ref.sh [--regen-audio]
# Environment:
#   VOX_MKMODEL   path of the vox-mkmodel binary (default: first of build-G, build-F, build under bin/)
#   VOX_REF_PY    python of the reference venv (default: .venv-ref/bin/python; see requirements-asr.txt)
#   VOX_REF_WORK  scratch dir for the generated models (default: a fresh mktemp dir, removed at exit)
#
# The model directories are NOT committed: the C test regenerates each one with the exact
# vox-mkmodel command line stored in the fixture's meta.json ("mkmodel_cmd", with {out} standing
# for the output directory). The input WAVs ARE committed and are reused unless --regen-audio
# (espeak-ng and sox output can change between versions; regenerate only deliberately).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FIX="$ROOT/tests/fixtures/asr"
PY=${VOX_REF_PY:-$ROOT/.venv-ref/bin/python}
REGEN_AUDIO=0
[ "${1:-}" = "--regen-audio" ] && REGEN_AUDIO=1

if [ -z "${VOX_MKMODEL:-}" ]; then
    for d in build-G build-F build; do
        if [ -x "$ROOT/$d/bin/vox-mkmodel" ]; then VOX_MKMODEL="$ROOT/$d/bin/vox-mkmodel"; break; fi
    done
fi
[ -x "${VOX_MKMODEL:-}" ] || { echo "run_asr_ref: vox-mkmodel not found (set VOX_MKMODEL)" >&2; exit 1; }
[ -x "$PY" ] || { echo "run_asr_ref: $PY missing (pip install -r tests/reference/requirements-asr.txt into .venv-ref)" >&2; exit 1; }

if [ -n "${VOX_REF_WORK:-}" ]; then
    WORK=$VOX_REF_WORK; mkdir -p "$WORK"
else
    WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$FIX"

# ---- inputs (16 kHz mono PCM16 WAV)
if [ $REGEN_AUDIO = 1 ] || [ ! -f "$FIX/speech.wav" ]; then
    espeak-ng -v en-us -s 150 -w "$WORK/speech_raw.wav" "The quick brown fox jumps over the lazy dog."
    # -D: no dither, so the conversion is deterministic
    sox -D "$WORK/speech_raw.wav" -r 16000 -c 1 -b 16 -e signed-integer "$FIX/speech.wav"
fi
if [ $REGEN_AUDIO = 1 ] || [ ! -f "$FIX/silence.wav" ]; then
    # 1.0 s of digital silence: 16000 samples -> padded length 79360 at 480 ms
    # -D matters here: by default sox dithers even a generated null signal to +-1 LSB
    sox -D -n -r 16000 -c 1 -b 16 -e signed-integer "$FIX/silence.wav" trim 0 1.0
fi

# ---- models: NAME | vox-mkmodel arguments ({out} = model dir) | audio files | extra asr_ref args
# m1: encoder window 16 frames (the audio spans hundreds of encoder frames), decoder window wide.
# m2: decoder window 16 tokens (decoding runs far past it), other dims, GQA 4:1.
# m3: 960 ms delay (12 delay tokens, prompt of 45), both windows small-ish.
MODELS=(
  "m1|--kind realtime --out {out} --seed 11 --enc-window 16 --dec-window 8192|speech.wav silence.wav|"
  "m2|--kind realtime --out {out} --seed 22 --dim 96 --heads 8 --kv-heads 2 --enc-window 750 --dec-window 16|speech.wav|"
  "m3|--kind realtime --out {out} --seed 33 --enc-window 64 --dec-window 32 --delay-ms 960|speech.wav|--delay-ms 960"
)

FIXTURES=()
for spec in "${MODELS[@]}"; do
    IFS='|' read -r name mkargs audios extra <<<"$spec"
    mdir="$WORK/$name"
    rm -rf "$mdir"
    # shellcheck disable=SC2086
    "$VOX_MKMODEL" ${mkargs//\{out\}/$mdir} >/dev/null
    for a in $audios; do
        fx="${name}_${a%.wav}"
        rm -rf "${FIX:?}/$fx"
        # shellcheck disable=SC2086
        "$PY" "$ROOT/tests/reference/asr_ref.py" "$mdir" "$FIX/$a" "$FIX/$fx" $extra \
            --name "$fx" --mkmodel-cmd "vox-mkmodel $mkargs"
        FIXTURES+=("$fx")
    done
done

# ---- index and size budget
"$PY" - "$FIX" "${FIXTURES[@]}" <<'EOF'
import json, os, sys
fix, names = sys.argv[1], sys.argv[2:]
index = []
for n in names:
    m = json.load(open(os.path.join(fix, n, "meta.json")))
    index.append({"name": n, "dir": n, "audio": m["audio_file"], "mkmodel_cmd": m["mkmodel_cmd"],
                  "delay_ms": m["audio"]["delay_ms"], "n_tokens": m["n_tokens"],
                  "n_distinct_tokens": m["checks"]["n_distinct_tokens"], "min_margin": m["checks"]["min_margin"]})
    if m["checks"]["n_distinct_tokens"] < 2 and "silence" not in n:
        print(f"run_asr_ref: WARNING {n}: degenerate greedy sequence (one distinct token)", file=sys.stderr)
with open(os.path.join(fix, "index.json"), "w") as f:
    json.dump({"generator": "tests/reference/run_asr_ref.sh", "fixtures": index}, f, indent=1)
    f.write("\n")
total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(fix) for fn in fns)
print(f"run_asr_ref: {len(names)} fixtures, {total} bytes in {fix}")
if total > 2 * 1024 * 1024:
    sys.exit("run_asr_ref: fixtures exceed the 2 MB budget")
EOF
