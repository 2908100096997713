#!/usr/bin/env bash
# vox-server's HTTP endpoints (apps/server/srv_http.c) on tiny models, driven by
# tests/tools/srvhttp_check.py (stdlib only): transcriptions of a WAV and an mp3 equal
# vox-transcribe's text, srt/vtt pass check_subs.py, verbose_json words; speech in every format
# holds the samples vox-tts makes for the same text (frames x samples per frame; a 0.5 kB text
# split into chunks as vox-tts does, byte-identical); errors; the
# streaming-TTS WebSocket; GET /; a server without --tts-model answers the TTS endpoints 404,
# and answers /health promptly while a 15-minute upload is decoded (413 over --max-audio-seconds).
set -uo pipefail
TMP=$(mktemp -d)
SPID=
cleanup() { [ -n "$SPID" ] && kill "$SPID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
for t in python3 ffmpeg ffprobe espeak-ng; do
    command -v $t >/dev/null || { echo "SKIP: $t not found"; exit 77; }
done
B=$VOX_BIN
CHECK="$VOX_SOURCE_DIR/tests/tools/srvhttp_check.py"
"$B/vox-mkmodel" --kind realtime --out "$TMP/asr" --seed 7 >/dev/null || exit 1
"$B/vox-mkmodel" --kind tts --out "$TMP/tts" >/dev/null || exit 1
espeak-ng -v en-us -s 170 -w "$TMP/speech.wav" "Hello world. This is a test of the server." || exit 1
ffmpeg -nostdin -loglevel error -i "$TMP/speech.wav" -c:a libmp3lame -b:a 64k "$TMP/speech.mp3" || exit 1
"$B/vox-transcribe" -m "$TMP/asr" --device cpu "$TMP/speech.wav" >"$TMP/ref.txt" || exit 1
"$B/vox-transcribe" -m "$TMP/asr" --device cpu "$TMP/speech.mp3" >"$TMP/ref_mp3.txt" || exit 1
python3 -c "import wave,sys; w=wave.open(sys.argv[1]); print(w.getnframes()/w.getframerate())" \
    "$TMP/speech.wav" >"$TMP/dur.txt"
"$B/vox-tts" -m "$TMP/tts" --device cpu -v --voice casual_male -o - \
    "Hello there. How are you today?" >"$TMP/tts.raw" 2>"$TMP/tts.log" || { cat "$TMP/tts.log"; exit 1; }

. "$VOX_SOURCE_DIR/tests/tools/vox_server.sh"
# > 400 bytes: vox-tts and the server (inside the TTS job) split it into chunks with
# vox_tts_split_text, one session each with the chunk index added to the seed
python3 -c "print(' '.join('Sentence number %d is here, and it goes on a little.' % i for i in range(9)))" >"$TMP/long.txt"
"$B/vox-tts" -m "$TMP/tts" --device cpu --voice casual_male -f "$TMP/long.txt" -o - \
    >"$TMP/long.raw" 2>"$TMP/long.log" || { cat "$TMP/long.log"; exit 1; }

start() { local log=$1; shift; vox_server_start "$log" -m "$TMP/asr" --device cpu "$@"; }
fail=0
start "$TMP/s1.log" --tts-model "$TMP/tts"
python3 "$CHECK" "$PORT" "$TMP" || fail=1
kill -TERM "$SPID"; wait "$SPID" || { echo "FAIL: exit status after SIGTERM"; fail=1; }
# a 15-minute mp3 for the decoding-off-the-loop check (the server without TTS refuses it: 413)
ffmpeg -nostdin -loglevel error -f lavfi -i "sine=frequency=300:duration=900:sample_rate=16000" -ac 1 \
    -c:a libmp3lame -b:a 32k "$TMP/big.mp3" || exit 1
start "$TMP/s2.log" --max-audio-seconds 10
python3 "$CHECK" "$PORT" --no-tts "$TMP/big.mp3" || fail=1
kill -TERM "$SPID"; wait "$SPID" || { echo "FAIL: exit status after SIGTERM (no TTS)"; fail=1; }
SPID=
echo "test_server_http: $([ $fail = 0 ] && echo ok || echo FAILED)"
exit $fail
