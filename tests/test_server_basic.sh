#!/usr/bin/env bash
# vox-server on a tiny model, driven by tests/tools/server_check.py (stdlib-only WebSocket client
# tests/tools/wsclient.py): /health, /v1/models, /metrics; vLLM /v1/realtime and Mistral
# realtime round trips whose transcripts and word timings equal vox-transcribe's on the same
# WAV (16 kHz, and 22.05 kHz resampled by both); protocol errors; limits (a 50 MB message, max
# sessions, audio length, idle timeout, abrupt disconnect, a client that never reads); 8 concurrent streams each equal the reference;
# SIGTERM with a stream in flight exits 0.
set -euo pipefail
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
fail=0
command -v python3 >/dev/null || { echo "SKIP: python3 not found"; exit 77; }
WAV="$VOX_SOURCE_DIR/tests/fixtures/asr/speech.wav"
CHECK="$VOX_SOURCE_DIR/tests/tools/server_check.py"
"$VOX_BIN/vox-mkmodel" --kind realtime --out "$TMP/m" --seed 11 --enc-window 16 >/dev/null
"$VOX_BIN/vox-transcribe" -m "$TMP/m" --device cpu -f json "$WAV" >"$TMP/ref.json"
sox "$WAV" -r 22050 "$TMP/s22.wav"
"$VOX_BIN/vox-transcribe" -m "$TMP/m" --device cpu -f json "$TMP/s22.wav" >"$TMP/ref22.json"

# start a server on a free port (--port 0); echo its port once it listens
start() {
    local log=$1; shift
    "$VOX_BIN/vox-server" -m "$TMP/m" --device cpu --port 0 "$@" 2>"$log" &
    PIDS+=($!)
    SPID=$!
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$log")
        [ -n "$PORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    echo "FAIL: vox-server did not start:"; cat "$log"; exit 1
}

"$VOX_BIN/vox-server" --help | grep -q -- "--max-sessions" || { echo "FAIL: --help"; fail=1; }
if "$VOX_BIN/vox-server" --port 1 2>"$TMP/e1"; then echo "FAIL: no -m accepted"; fail=1; fi
grep -q "required" "$TMP/e1" || { echo "FAIL: missing -m message"; fail=1; }

start "$TMP/s1.log"
python3 "$CHECK" "$PORT" m "$WAV" "$TMP/ref.json" "$TMP/s22.wav" "$TMP/ref22.json" || fail=1
kill -TERM "$SPID" || echo "FAIL: the server is gone"; wait "$SPID" && rc=0 || rc=$?
[ "$rc" = 0 ] || { echo "FAIL: exit status $rc after SIGTERM (idle)"; fail=1; }

start "$TMP/s2.log" --max-sessions 1 --max-message 65536 --idle-timeout 2 --max-audio-seconds 2 \
    --max-out-queue 65536
python3 "$CHECK" "$PORT" m --limits "$WAV" || fail=1
kill -TERM "$SPID" || echo "FAIL: the server is gone"; wait "$SPID" && rc=0 || rc=$?
[ "$rc" = 0 ] || { echo "FAIL: exit status $rc after SIGTERM (after the limit checks)"; cat "$TMP/s2.log"; fail=1; }

start "$TMP/s3.log" --grace 20
python3 "$CHECK" "$PORT" m --drain "$WAV" "$SPID" || fail=1
wait "$SPID" && rc=0 || rc=$?
[ "$rc" = 0 ] || { echo "FAIL: exit status $rc after SIGTERM with a stream in flight"; fail=1; }
grep -q "stopping: 1 session" "$TMP/s3.log" || { echo "FAIL: drain line"; cat "$TMP/s3.log"; fail=1; }
if [ $fail != 0 ]; then for l in "$TMP"/s*.log; do echo "== $l"; cat "$l"; done; fi
echo "test_server_basic: $([ $fail = 0 ] && echo ok || echo FAILED)"
exit $fail
