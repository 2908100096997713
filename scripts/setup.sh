#!/usr/bin/env bash
# scripts/setup.sh - one command from a fresh clone to a working vox:
#   1. installs the Debian packages vox needs (when missing; needs root or sudo),
#   2. configures and builds (CUDA backend too when nvcc is found),
#   3. runs the main job: on the model in $VOX_MODEL when given, else on a tiny random model
#      in the exact upstream layout generated with vox-mkmodel (real weights cannot be
#      downloaded by this script).
# Options (environment): BUILD_DIR (default build), VOX_CUDA (AUTO|ON|OFF), VOX_MODEL (model dir),
#   VOX_SKIP_DEPS=1 (do not touch packages), VOX_SKIP_RUN=1 (build only).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
VOX_CUDA=${VOX_CUDA:-AUTO}

# Debian packages, one per need (see docs/dependencies.md).
PKGS="build-essential cmake pkg-config git python3 libopenblas-dev libfftw3-dev libcjson-dev
libpcre2-dev portaudio19-dev libsndfile1-dev libavformat-dev libavcodec-dev libavutil-dev
libswresample-dev libasound2-dev libwebsockets-dev espeak-ng sox ffmpeg tmux
pulseaudio pulseaudio-utils libasound2-plugins chromium"

install_deps() {
    local missing=()
    for p in $PKGS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && { echo "setup: all Debian packages present"; return 0; }
    echo "setup: installing ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "setup: need root to run: apt-get install ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

if [ "${VOX_SKIP_DEPS:-0}" != 1 ]; then
    if command -v apt-get >/dev/null; then install_deps; else echo "setup: no apt-get; install the packages listed in docs/dependencies.md" >&2; fi
fi

# The CUDA toolkit is often installed without being on PATH.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DVOX_CUDA="$VOX_CUDA" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
echo "setup: built into $BUILD_DIR/bin"

[ "${VOX_SKIP_RUN:-0}" = 1 ] && exit 0
exec bash scripts/demo.sh
