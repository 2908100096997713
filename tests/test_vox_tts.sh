#!/usr/bin/env bash
# test_vox_tts.sh - vox-tts on a tiny `vox-mkmodel --kind tts` model: every output format is a
# valid 24 kHz mono file whose length is (frames generated) x (samples per frame), both as
# printed by -v ("frames generated: F; samples per frame: P"): exact for wav, raw, flac and
# Ogg Vorbis (lossless or sample-exact containers), within 0.1 s for mp3 (encoder delay and
# padding) and opus (pre-skip, 20 ms packets). Checked with ffprobe and python3's stdlib
# `wave` (independent readers), and soxi when present. -o - gives exactly 2 x F x P bytes,
# identical to the wav's data. 100 000 characters are split into chunks of <= --chunk-chars
# bytes and all spoken (--max-frames keeps it short). Errors give one line and the documented
# exit status: unknown voice (lists the voices), empty text, truncated .pt, --ref without
# codec encoder weights, --ref with them (espeak-ng clip and a 44.1 kHz stereo mp3 of it: voice
# rows = encoded frames + EOA), unwritable outputs, an ASR model directory, --steps 0. --steps 7 = default,
# --steps 3 differs. Chunking rules,
# --list-voices, incremental raw output, --play into an ALSA file plugin. SIGINT keeps valid
# WAV and FLAC files.
set -uo pipefail
BIN=${VOX_BIN:-build/bin}
TTS="$BIN/vox-tts"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
check() { if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1" >&2; fi; }
has() { grep -qF -- "$2" "$1"; echo $?; }
lines() { wc -l <"$1" | tr -d ' '; }

"$BIN/vox-mkmodel" --kind tts --out "$T/m" >/dev/null 2>"$T/mk.err"
check "mkmodel tts ($(cat "$T/mk.err"))" $?
M="$T/m"
TXT="Hello there. How are you today? Fine, thanks!"
run() { "$TTS" -m "$M" --device cpu "$@"; }
# frames and samples-per-frame of a -v log
frames() { sed -n 's/.*frames generated: \([0-9]*\);.*/\1/p' "$1"; }
spf() { sed -n 's/.*samples per frame: \([0-9]*\);.*/\1/p' "$1"; }

# ---- voices ----
run --list-voices >"$T/lv.out" 2>"$T/lv.err"
check "list-voices exits 0 ($(cat "$T/lv.err"))" $?
check "list-voices: 2 voices, params order" "$([ "$(tr '\n' ' ' <"$T/lv.out")" = "casual_female casual_male " ]; echo $?)"

# ---- wav ----
run -v -o "$T/a.wav" "$TXT" 2>"$T/wav.err"
check "wav exits 0 ($(tail -1 "$T/wav.err"))" $?
F=$(frames "$T/wav.err")
P=$(spf "$T/wav.err")
echo "wav: frames generated ${F:-?}, samples per frame ${P:-?}"
[ -n "$F" ] && [ -n "$P" ] && [ "$F" -gt 0 ]; check "-v prints frames ($F) and samples per frame ($P)" $?
N=$((${F:-0} * ${P:-0}))
W=$(python3 -c "
import wave,sys
w=wave.open(sys.argv[1]); print(w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())" "$T/a.wav" 2>&1)
check "wav (python wave): 24000 Hz mono 16-bit $N samples: got '$W'" "$([ "$W" = "24000 1 2 $N" ]; echo $?)"
if command -v soxi >/dev/null; then
    S=$(soxi -r "$T/a.wav")/$(soxi -c "$T/a.wav")/$(soxi -s "$T/a.wav")
    check "wav (soxi): 24000/1/$N, got $S" "$([ "$S" = "24000/1/$N" ]; echo $?)"
fi
probe() { ffprobe -v error -select_streams a:0 -show_entries stream="$2" -of default=nw=1:nk=1 "$1" | tr '\n' ' '; }
check "wav (ffprobe) 24000 Hz mono" "$([ "$(probe "$T/a.wav" sample_rate,channels)" = "24000 1 " ]; echo $?)"

# ---- raw s16le on stdout == the wav's data ----
run -v -o - "$TXT" >"$T/a.raw" 2>"$T/raw.err"
check "raw exits 0" $?
FR=$(frames "$T/raw.err")
B=$(wc -c <"$T/a.raw" | tr -d ' ')
echo "raw: $B bytes for $FR frames"
check "raw bytes $B = 2 x frames $FR x $P" "$([ "$B" = $((2 * ${FR:-0} * ${P:-0})) ]; echo $?)"
tail -c +45 "$T/a.wav" | cmp -s - "$T/a.raw"
check "raw = wav data (same seed)" $?

# ---- flac, ogg (sample exact), mp3, opus (approximate) ----
for ext in flac ogg mp3 opus; do
    run -v -o "$T/a.$ext" "$TXT" 2>"$T/$ext.err"
    check "$ext exits 0 ($(tail -1 "$T/$ext.err"))" $?
    Fx=$(frames "$T/$ext.err")
    Nx=$((${Fx:-0} * ${P:-0}))
    CH=$(probe "$T/a.$ext" channels)
    check "$ext mono (ffprobe)" "$([ "$CH" = "1 " ]; echo $?)"
    if [ "$ext" = opus ]; then
        # libopus decodes at 48 kHz whatever the input; the input rate is OpusHead's field
        R=$(python3 -c "
import sys,struct
d=open(sys.argv[1],'rb').read(); i=d.find(b'OpusHead'); print(struct.unpack('<I', d[i+12:i+16])[0])" "$T/a.opus")
    else
        R=$(probe "$T/a.$ext" sample_rate | tr -d ' ')
    fi
    check "$ext sample rate 24000 (got $R)" "$([ "$R" = 24000 ]; echo $?)"
    D=$(ffprobe -v error -count_packets -select_streams a:0 -show_entries format=duration -of default=nw=1:nk=1 "$T/a.$ext")
    if [ "$ext" = flac ]; then
        NS=$(ffmpeg -v error -i "$T/a.$ext" -f s16le -ac 1 -ar 24000 - | wc -c)
        check "$ext decodes to $Nx samples (got $((NS / 2)))" "$([ "$NS" = $((2 * Nx)) ]; echo $?)"
    elif [ "$ext" = ogg ]; then # the last page's granule position (ffmpeg's decoder pads)
        NS=$(probe "$T/a.$ext" duration_ts | tr -d ' ')
        check "$ext holds $Nx samples (got $NS)" "$([ "$NS" = "$Nx" ]; echo $?)"
    else
        ok=$(python3 -c "import sys; print(int(abs(float(sys.argv[1]) - $Nx / 24000.0) <= 0.1))" "$D")
        check "$ext duration $D s within 0.1 s of $Nx / 24000" "$([ "$ok" = 1 ]; echo $?)"
    fi
done

# ---- chunking rules (byte sizes of the chunks as -v prints them) ----
sizes() { sed -n 's/.*: chunk [0-9]*\/[0-9]*: \([0-9]*\) bytes.*/\1/p' "$1" | tr '\n' ' '; }
run -v --chunk-chars 20 -o "$T/k.wav" "Version 3.14 is out. Yes!" 2>"$T/k.err"
check "'3.14' is no sentence end: chunks 20+4 (got $(sizes "$T/k.err"))" "$([ "$(sizes "$T/k.err")" = "20 4 " ]; echo $?)"
run -v --chunk-chars 16 -o "$T/k.wav" "one two three, four five six seven eight" 2>"$T/k.err"
check "over-long sentence cut at the comma, then spaces: 14 13 11 (got $(sizes "$T/k.err"))" \
    "$([ "$(sizes "$T/k.err")" = "14 13 11 " ]; echo $?)"
printf 'First line\nsecond line' | run -v -o "$T/k.wav" 2>"$T/k.err"
check "a newline ends a sentence; short sentences packed: one chunk of 22 (got $(sizes "$T/k.err"))" \
    "$([ "$(sizes "$T/k.err")" = "22 " ]; echo $?)"
run -v --chunk-chars 16 -o "$T/k.wav" "$(printf 'Wait\xe2\x80\xa6 what? Really!')" 2>"$T/k.err"
check "ellipsis and ? end sentences: 13 7 (got $(sizes "$T/k.err"))" "$([ "$(sizes "$T/k.err")" = "13 7 " ]; echo $?)"

# ---- other voice, voice file, determinism ----
run -o "$T/b.wav" --voice casual_male "$TXT" 2>"$T/b.err"
check "--voice casual_male exits 0" $?
cmp -s "$T/a.wav" "$T/b.wav"; [ $? != 0 ]; check "another voice gives other audio" $?
run -o "$T/c.wav" --voice-file "$M/voice_embedding/casual_female.pt" "$TXT" 2>/dev/null
cmp -s "$T/a.wav" "$T/c.wav"; check "--voice-file of the default voice = --voice" $?
run -o "$T/d.wav" --seed 5 "$TXT" 2>/dev/null
cmp -s "$T/a.wav" "$T/d.wav"; [ $? != 0 ]; check "--seed changes the audio" $?
echo "$TXT" | run -o "$T/e.wav" 2>/dev/null
cmp -s "$T/a.wav" "$T/e.wav"; check "text from stdin = from arguments" $?

# ---- 100 000 characters: split, not refused ----
python3 -c "
import random
random.seed(7)
w = ['alpha', 'beta', 'gamma', 'voice', 'speech', 'frame', 'model', 'delta']
s = ''
while len(s) < 100000:
    s += ' '.join(random.choice(w) for _ in range(random.randint(2, 120)))
    s += random.choice(['. ', '! ', '? ', ', ', '\n', ' \u2026 '])
open('$T/long.txt', 'w').write(s[:100000])"
run -v --max-frames 1 -f "$T/long.txt" -o "$T/long.wav" 2>"$T/long.err"
check "100000 characters exit 0 ($(tail -1 "$T/long.err"))" $?
NCH=$(grep -c ": chunk " "$T/long.err")
MAXB=$(sed -n 's/.*: chunk [0-9]*\/[0-9]*: \([0-9]*\) bytes.*/\1/p' "$T/long.err" | sort -n | tail -1)
FL=$(frames "$T/long.err")
NL=$(python3 -c "import wave,sys; print(wave.open(sys.argv[1]).getnframes())" "$T/long.wav")
echo "long text: $NCH chunks (largest $MAXB bytes), $FL frames, $NL samples"
[ "$NCH" -gt 200 ] && [ "${MAXB:-999}" -le 400 ]; check "long text: >200 chunks of <= 400 bytes" $?
check "long text: wav samples $NL = $FL x $P" "$([ "$NL" = $((${FL:-0} * ${P:-0})) ]; echo $?)"

# ---- errors: one line, exit status ----
err_case() { # name expected_rc needle cmd...
    local name=$1 want=$2 needle=$3
    shift 3
    "$@" >"$T/err.out" 2>"$T/err.err"
    local rc=$?
    check "$name: exit $want (got $rc: $(cat "$T/err.err"))" "$([ $rc = "$want" ]; echo $?)"
    check "$name: one line" "$([ "$(lines "$T/err.err")" = 1 ]; echo $?)"
    check "$name: says '$needle'" "$(has "$T/err.err" "$needle")"
}
err_case "unknown voice" 2 "voices: casual_female, casual_male" run --voice nobody -o "$T/x.wav" hi
err_case "empty text" 2 "empty text" run -o "$T/x.wav" "  "
: | err_case "empty stdin" 2 "empty text" run -o "$T/x.wav"
head -c 300 "$M/voice_embedding/casual_male.pt" >"$T/bad.pt"
err_case "truncated .pt" 1 "bad.pt" run --voice-file "$T/bad.pt" -o "$T/x.wav" hi
err_case "--ref without encoder" 2 "no codec encoder" run --ref "$T/a.wav" -o "$T/x.wav" hi
check "--ref message names --voice NAME and --list-voices" \
    "$(grep -q -- "--voice NAME (list with --list-voices)" "$T/err.err"; echo $?)"
# ---- --ref with codec encoder weights (vox-mkmodel --codec-encoder): an espeak-ng clip ----
"$BIN/vox-mkmodel" --kind tts --codec-encoder --out "$T/me" >/dev/null 2>&1
check "mkmodel --codec-encoder" $?
REF="${VOX_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}/tests/fixtures/asr/speech.wav"
if command -v espeak-ng >/dev/null; then
    espeak-ng -v en-us -s 170 -w "$T/ref16.wav" "This is my reference voice." 2>/dev/null && REF="$T/ref16.wav"
fi
"$TTS" -m "$T/me" --device cpu -v --max-frames 20 --ref "$REF" -o "$T/r.wav" "$TXT" 2>"$T/r.err"
check "--ref with encoder exits 0 ($(tail -1 "$T/r.err"))" $?
FR=$(frames "$T/r.err")
PR=$(spf "$T/r.err")
NR=$(python3 -c "import wave,sys; w=wave.open(sys.argv[1]); print(w.getframerate(), w.getnframes())" "$T/r.wav" 2>&1)
ROWS=$(sed -n 's/.*voice from .*: \([0-9]*\) rows.*/\1/p' "$T/r.err")
# rows = encoded frames + EOA = ceil(samples at 24 kHz / samples per frame) + 1
SR=$(ffprobe -v error -select_streams a:0 -show_entries stream=sample_rate -of default=nw=1:nk=1 "$REF")
WANT=$(ffmpeg -v error -i "$REF" -f f32le -ac 1 -ar 24000 -af aresample=resampler=soxr - | wc -c | \
    python3 -c "import sys,math; print(math.ceil(int(sys.stdin.read()) / 4 / ${PR:-1}) + 1)")
echo "--ref: $(basename "$REF") ($SR Hz) -> ${ROWS:-?} voice rows (ffmpeg length: $WANT), ${FR:-?} frames, wav '$NR'"
check "--ref: the wav holds frames x samples per frame" \
    "$([ -n "$FR" ] && [ "$FR" -gt 0 ] && [ "$NR" = "24000 $((FR * PR))" ]; echo $?)"
check "--ref: voice rows ($ROWS) = ceil(24 kHz samples / $PR) + 1 ($WANT)" "$([ "$ROWS" = "$WANT" ]; echo $?)"
ffmpeg -v error -y -i "$REF" -ac 2 -ar 44100 "$T/ref44.mp3"
"$TTS" -m "$T/me" --device cpu --max-frames 20 --ref "$T/ref44.mp3" -o "$T/r2.wav" "$TXT" 2>"$T/r2.err"
check "--ref with a 44.1 kHz stereo mp3 exits 0 ($(cat "$T/r2.err"))" $?
"$TTS" -m "$T/me" --device cpu --max-frames 20 -o "$T/p20.wav" "$TXT" 2>/dev/null
cmp -s "$T/r.wav" "$T/p20.wav"; [ $? != 0 ]; check "--ref audio differs from the preset voice's" $?
err_case "--ref missing file" 1 "nope.wav" "$TTS" -m "$T/me" --device cpu --ref "$T/nope.wav" -o "$T/x.wav" hi
err_case "unwritable (no such dir)" 1 "cannot open for writing" run -o "$T/nodir/x.wav" hi
err_case "unwritable (/proc)" 1 "cannot open for writing" run -o /proc/vox_tts_x.flac hi
err_case "bad extension" 2 "unsupported extension" run -o "$T/x.aiff" hi
[ ! -e "$T/x.wav" ]; check "failed runs leave no output file" $?
"$BIN/vox-mkmodel" --kind realtime --out "$T/asr" >/dev/null 2>&1
err_case "ASR model dir" 2 "ASR" run -m "$T/asr" -o "$T/x.wav" hi

# ---- --steps: the model's count = default; another count changes the audio (the codes at a
# given count are test_tts's, against vllm-omni) ----
run --steps 7 -o "$T/s7.wav" "$TXT" 2>/dev/null
cmp -s "$T/a.wav" "$T/s7.wav"; check "--steps 7 (the model's) = default" $?
run -v --steps 3 -o "$T/s3.wav" "$TXT" 2>"$T/s3.err"
check "--steps 3 exits 0 ($(tail -1 "$T/s3.err"))" $?
check "--steps 3: -v reports 3 FM steps" "$(has "$T/s3.err" "3 FM steps")"
cmp -s "$T/a.wav" "$T/s3.wav"; [ $? != 0 ]; check "--steps 3 gives other audio" $?
err_case "--steps 0" 2 "bad value '0' for --steps" run --steps 0 -o "$T/x.wav" hi

# ---- --list-voices of the released voice set: names with their language prefix ----
"$BIN/vox-mkmodel" --kind tts --voices 20 --out "$T/m20" >/dev/null 2>&1
"$TTS" -m "$T/m20" --list-voices >"$T/lv20.out" 2>&1
check "20 voices listed" "$([ "$(lines "$T/lv20.out")" = 20 ]; echo $?)"
check "list: pt_male<TAB>pt" "$(grep -qx "$(printf 'pt_male\tpt')" "$T/lv20.out"; echo $?)"
check "list: casual_female without language" "$(grep -qx casual_female "$T/lv20.out"; echo $?)"

# ---- incremental: the first raw bytes arrive long before a long run ends ----
# (the full run of this text at --max-frames 400 takes ~26 s without sanitizers; head exits
# after 64 bytes and vox-tts dies of SIGPIPE at its next write)
t0=$(date +%s.%N)
"$TTS" -m "$M" --device cpu --max-frames 400 -f "$T/long.txt" -o - 2>/dev/null | head -c 64 >"$T/head.raw"
t1=$(date +%s.%N)
el=$(python3 -c "print(round($t1 - $t0, 2))")
echo "first 64 raw bytes of the 100000-character text after $el s"
check "raw output is incremental (64 bytes in $el s < 8 s)" \
    "$([ "$(wc -c <"$T/head.raw")" = 64 ] && python3 -c "import sys; sys.exit(not $el < 8)"; echo $?)"

# ---- --play through PortAudio into an ALSA file plugin: the samples of -o - (+-1 LSB) ----
cat >"$T/out.conf" <<EOF
pcm.!default { type plug slave { pcm "out" format S16_LE rate 24000 channels 1 } }
pcm.out { type file slave.pcm "null" file "$T/played.raw" format "raw" }
EOF
HOME="$T" ALSA_CONFIG_PATH="/usr/share/alsa/alsa.conf:$T/out.conf" "$TTS" -m "$M" --device cpu \
    --play "$TXT" >/dev/null 2>"$T/play.err"
rc=$?
if [ $rc = 0 ] && [ -s "$T/played.raw" ]; then
    R=$(python3 -c "
import array
a = array.array('h', open('$T/a.raw', 'rb').read())
b = array.array('h', open('$T/played.raw', 'rb').read())
d = max(abs(x - y) for x, y in zip(a, b))
tail = max((abs(x) for x in b[len(a):]), default=0)
print(len(b) >= len(a) and d <= 1 and tail == 0, len(a), len(b), d)")
    echo "--play: $R"
    check "--play wrote the same samples (+-1 LSB): $R" "$([ "${R%% *}" = True ]; echo $?)"
elif grep -q "no audio output device" "$T/play.err"; then
    echo "skip --play: PortAudio sees no ALSA device here ($(cat "$T/play.err"))"
else
    check "--play exits 0 ($(cat "$T/play.err"))" 1
fi

# ---- SIGINT: stops, exit 130, the wav written so far is valid ----
"$TTS" -m "$M" --device cpu --max-frames 400 -f "$T/long.txt" -o "$T/int.wav" 2>"$T/int.err" &
pid=$!
sleep 1.5
kill -INT $pid
wait $pid
rc=$?
check "SIGINT exits 130 (got $rc)" "$([ $rc = 130 ]; echo $?)"
python3 -c "
import wave,sys,os
w=wave.open(sys.argv[1]); n=w.getnframes()
assert os.path.getsize(sys.argv[1]) == 44 + 2*n and w.getframerate() == 24000" "$T/int.wav"
check "interrupted wav is valid (header = data)" $?
"$TTS" -m "$M" --device cpu --max-frames 400 -f "$T/long.txt" -o "$T/int.flac" 2>/dev/null &
pid=$!
sleep 1
kill -INT $pid
wait $pid
rc=$?
NI=$(ffmpeg -v error -i "$T/int.flac" -f s16le - 2>/dev/null | wc -c)
check "SIGINT during .flac: exit 130 (got $rc), the file decodes ($((NI / 2)) samples)" \
    "$([ $rc = 130 ] && [ "$NI" -gt 0 ] && [ "$(probe "$T/int.flac" sample_rate)" = "24000 " ]; echo $?)"

echo "test_vox_tts: $pass passed, $fail failed"
[ "$fail" = 0 ]
