#!/usr/bin/env bash
# Regenerates tests/fixtures/tts/ with tests/reference/tts_ref.py (upstream vllm-omni FM,
# transformers MistralModel, mistral-common, torch CPU fp32) on the tiny model that
# `vox-mkmodel --kind tts` writes with its defaults (tests/test_tts.c regenerates the same
# model through vox_mkmodel_tts_write, so the model directory is not committed).
#
# Usage: tests/reference/run_tts_ref.sh
# Also writes tests/fixtures/tts/steps3.safetensors (+ steps3.json): the same frame and
# generations with 3 flow-matching steps instead of the model's 7 (tts_ref.py --steps 3).
# Environment: VOX_MKMODEL (vox-mkmodel binary, default build/bin/vox-mkmodel),
#   VOX_REF_PY (default .venv-ref/bin/python; requirements-tts.txt), VOX_REF_WORK (scratch dir).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${VOX_REF_PY:-$ROOT/.venv-ref/bin/python}
MK=${VOX_MKMODEL:-$ROOT/build/bin/vox-mkmodel}
[ -x "$MK" ] || { echo "run_tts_ref: $MK missing (set VOX_MKMODEL)" >&2; exit 1; }
[ -x "$PY" ] || { echo "run_tts_ref: $PY missing (see requirements-tts.txt)" >&2; exit 1; }
if [ -n "${VOX_REF_WORK:-}" ]; then WORK=$VOX_REF_WORK; mkdir -p "$WORK"
else WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT; fi
# vllm-omni is downloaded, never installed (it would pull the CUDA vLLM stack)
if [ ! -d "$WORK/vo/vllm_omni" ]; then
    "$PY" -m pip download --no-deps vllm-omni==0.30.0 -d "$WORK/dl"
    mkdir -p "$WORK/vo" && (cd "$WORK/vo" && unzip -q -o "$WORK"/dl/vllm_omni-0.30.0-*.whl)
fi
if [ ! -d "$WORK/sgl/sglang_omni" ]; then
    "$PY" -m pip download --no-deps sglang-omni==0.1.9 -d "$WORK/dl"
    mkdir -p "$WORK/sgl" && (cd "$WORK/sgl" && unzip -q -o "$WORK"/dl/sglang_omni-0.1.9-*.whl)
fi
rm -rf "$WORK/model"
"$MK" --kind tts --out "$WORK/model"
mkdir -p "$ROOT/tests/fixtures/tts"
"$PY" "$ROOT/tests/reference/tts_ref.py" "$WORK/model" "$ROOT/tests/fixtures/tts" --vo-dir "$WORK/vo" \
    --sgl-dir "$WORK/sgl"
"$PY" "$ROOT/tests/reference/tts_ref.py" "$WORK/model" "$ROOT/tests/fixtures/tts" --vo-dir "$WORK/vo" \
    --steps 3
