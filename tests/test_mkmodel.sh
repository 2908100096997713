#!/usr/bin/env bash
# test_mkmodel.sh - vox-mkmodel writes the three upstream files, the layout follows
# spec/voxtral-realtime.md section 5 (names, shapes, counts 13/encoder layer + 11/decoder
# layer + 9, 711 at full size, 8.86 GB), vox-inspect validates it, and bad input fails cleanly.
set -uo pipefail
BIN=${VOX_BIN:-build/bin}
MK="$BIN/vox-mkmodel"
IN="$BIN/vox-inspect"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
check() { # check DESCRIPTION CONDITION-EXIT-STATUS
    if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1" >&2; fi
}
has() { grep -qF -- "$2" "$1"; echo $?; }
hasnt() { if grep -qF -- "$2" "$1"; then echo 1; else echo 0; fi; }

# ---- tiny default model
"$MK" --kind realtime --out "$T/m" --seed 5 >"$T/mk.out" 2>"$T/mk.err"
check "mkmodel tiny exits 0 ($(cat "$T/mk.err"))" $?
for f in params.json consolidated.safetensors tekken.json; do
    [ -s "$T/m/$f" ]; check "tiny model has $f" $?
done
size=$(du -cb "$T/m"/* | tail -1 | cut -f1)
[ "$size" -lt 2000000 ]; check "tiny model < 2 MB (is $size bytes)" $?

"$IN" -m "$T/m" --tensors >"$T/in.out" 2>"$T/in.err"
check "vox-inspect exits 0 ($(cat "$T/in.err"))" $?
check "inspect: kind realtime" "$(has "$T/in.out" "kind      realtime")"
# defaults: 2 encoder + 2 decoder layers -> 13*2 + 11*2 + 9 = 57
check "inspect: 57 tensors" "$(has "$T/in.out" "tensors   57,")"
check "inspect: layout matches" "$(hasnt "$T/in.out" "MISMATCH")"
check "inspect: all BF16" "$(has "$T/in.out" "): BF16 ")"
check "inspect: tokenizer found" "$(has "$T/in.out" "tokenizer $T/m/tekken.json")"
P=mm_streams_embeddings.embedding_module.
W=${P}whisper_encoder.
# names and shapes of the spec table at the tiny dims (dim 64, enc 64, q width 4*32, kv 2*32,
# hidden 192, enc hidden 256, vocab 1384, ada 32)
while read -r name shape; do
    grep -qE "^  ${name//./\\.} +BF16 +\\[$shape\\]" "$T/in.out"
    check "tensor $name [$shape]" $?
done <<LIST
${P}tok_embeddings.weight 1384, 64
${W}conv_layers.0.conv.weight 64, 128, 3
${W}conv_layers.0.conv.bias 64
${W}conv_layers.1.conv.weight 64, 64, 3
${W}conv_layers.1.conv.bias 64
${W}transformer.layers.1.attention.wq.weight 128, 64
${W}transformer.layers.1.attention.wq.bias 128
${W}transformer.layers.1.attention.wk.weight 128, 64
${W}transformer.layers.1.attention.wv.bias 128
${W}transformer.layers.1.attention.wo.weight 64, 128
${W}transformer.layers.1.attention.wo.bias 64
${W}transformer.layers.0.feed_forward.w1.weight 256, 64
${W}transformer.layers.0.feed_forward.w2.weight 64, 256
${W}transformer.layers.0.feed_forward.w2.bias 64
${W}transformer.layers.0.ffn_norm.weight 64
${W}transformer.norm.weight 64
${P}audio_language_projection.0.weight 64, 256
${P}audio_language_projection.2.weight 64, 64
layers.1.attention.wq.weight 128, 64
layers.1.attention.wk.weight 64, 64
layers.1.attention.wo.weight 64, 128
layers.1.feed_forward.w3.weight 192, 64
layers.1.ada_rms_norm_t_cond.0.weight 32, 64
layers.1.ada_rms_norm_t_cond.2.weight 64, 32
norm.weight 64
LIST
check "no wk bias" "$(hasnt "$T/in.out" "wk.bias")"
check "no w1/w3 bias" "$(hasnt "$T/in.out" "w1.bias")"
check "no output.weight (tied)" "$(hasnt "$T/in.out" "output.weight")"
check "no decoder biases" "$(if grep -E '^  layers\.[0-9]+\..*\.bias' "$T/in.out" >/dev/null; then echo 1; else echo 0; fi)"
# params.json: every key of the released file
for k in '"dim": 64' '"n_layers": 2' '"head_dim": 32' '"hidden_dim": 192' '"n_heads": 4' \
         '"n_kv_heads": 2' '"use_biases": false' '"causal": true' '"rope_theta": 1000000.0' \
         '"norm_eps": 1e-05' '"vocab_size": 1384' '"model_parallel": 1' '"tied_embeddings": true' \
         '"sliding_window": 8192' '"model_max_length": 131072' '"whisper_model_args"' \
         '"encoder_args"' '"audio_encoding_args"' '"sampling_rate": 16000' '"frame_rate": 12.5' \
         '"num_mel_bins": 128' '"hop_length": 160' '"window_size": 400' '"chunk_length_s": null' \
         '"global_log_mel_max": 1.5' '"transcription_format": "streaming"' '"use_biases": true' \
         '"use_cache": false' '"pos_embed": "rope"' '"max_source_positions": null' \
         '"ffn_type": "swiglu"' '"norm_type": "rms_norm"' '"sliding_window": 750' \
         '"downsample_factor": 4' '"ada_rms_norm_t_cond": true' '"ada_rms_norm_t_cond_dim": 32'; do
    check "params.json has $k" "$(has "$T/m/params.json" "$k")"
done
check "tekken.json realtime audio block" "$(has "$T/m/tekken.json" "transcription_delay_ms")"

# ---- counts scale with layers; flags reach the files
"$MK" --kind realtime --out "$T/m3" --seed 5 --layers 3 --enc-layers 1 --dim 96 --heads 8 \
    --kv-heads 2 --enc-window 16 --dec-window 32 --delay-ms 960 >/dev/null 2>&1
check "mkmodel with flags exits 0" $?
"$IN" -m "$T/m3" --tensors >"$T/in3.out" 2>&1
check "inspect m3 exits 0" $?
check "m3: 13*1 + 11*3 + 9 = 55 tensors" "$(has "$T/in3.out" "tensors   55,")"
check "m3: q width 8*32" "$(if grep -qE '^  layers\.2\.attention\.wq\.weight +BF16 +\[256, 96\]' "$T/in3.out"; then echo 0; else echo 1; fi)"
check "m3: kv width 2*32" "$(if grep -qE '^  layers\.2\.attention\.wk\.weight +BF16 +\[64, 96\]' "$T/in3.out"; then echo 0; else echo 1; fi)"
check "m3: enc window" "$(has "$T/m3/params.json" '"sliding_window": 16')"
check "m3: dec window" "$(has "$T/m3/params.json" '"sliding_window": 32')"
check "m3: delay in tekken" "$(if grep -qE '"transcription_delay_ms": *960' "$T/m3/tekken.json"; then echo 0; else echo 1; fi)"

# ---- deterministic in the seed
"$MK" --kind realtime --out "$T/m_again" --seed 5 >/dev/null 2>&1
for f in params.json consolidated.safetensors tekken.json; do
    cmp -s "$T/m/$f" "$T/m_again/$f"; check "same seed, same $f" $?
done
"$MK" --kind realtime --out "$T/m_other" --seed 6 >/dev/null 2>&1
if cmp -s "$T/m/consolidated.safetensors" "$T/m_other/consolidated.safetensors"; then r=1; else r=0; fi
check "other seed, other weights" $r

# ---- full size: dry run only (the real file: 711 tensors, 8.86 GB)
"$MK" --kind realtime --full --dry-run --out "$T/none" >"$T/full.out" 2>&1
check "full dry run exits 0" $?
check "full: 711 tensors" "$(has "$T/full.out" "711 tensors")"
check "full: 8.86 GB" "$(has "$T/full.out" "(8.86 GB)")"
check "full: dims" "$(has "$T/full.out" "dim 3072 x 26 layers (heads 32/8, head_dim 128, hidden 9216, vocab 131072), encoder 1280 x 32 layers (heads 32, head_dim 64, hidden 5120)")"
[ ! -e "$T/none" ]; check "dry run writes nothing" $?
"$MK" --help >"$T/help.out" 2>&1
check "--help exits 0" $?
for f in --kind --out --seed --dim --heads --kv-heads --enc-window --dec-window --delay-ms --layers \
         --enc-dim --enc-layers --enc-heads --hidden --enc-hidden --vocab --head-dim --enc-head-dim \
         --ada-dim --full; do
    check "--help lists $f" "$(has "$T/help.out" "  $f ")"
done

# ---- bad command lines: exit 2, one line on stderr
bad() { # bad EXPECTED-SUBSTRING ARGS...
    local want=$1; shift
    "$MK" "$@" >/dev/null 2>"$T/bad.err"
    local rc=$?
    [ $rc = 2 ]; check "'$*' exits 2 (got $rc)" $?
    check "'$*' says '$want' ($(cat "$T/bad.err"))" "$(has "$T/bad.err" "$want")"
    [ "$(wc -l <"$T/bad.err")" = 1 ]; check "'$*' prints one line" $?
}
bad "unknown option '--bogus'" --kind realtime --out "$T/b" --bogus 3
bad "option '--dim': expected a positive integer, found 'abc'" --kind realtime --out "$T/b" --dim abc
bad "option '--dim': expected a positive integer, found '0'" --kind realtime --out "$T/b" --dim 0
bad "option '--layers' needs a value" --kind realtime --out "$T/b" --layers
bad "--heads 6: expected a multiple of --kv-heads 4" --kind realtime --out "$T/b" --heads 6 --kv-heads 4
bad "--head-dim 15: expected an even number" --kind realtime --out "$T/b" --head-dim 15
bad "--delay-ms 500: expected a positive multiple of 80" --kind realtime --out "$T/b" --delay-ms 500
bad "--vocab 900: expected more than the 1000 special tokens" --kind realtime --out "$T/b" --vocab 900
bad "--kind 'bogus': expected 'realtime' or 'tts'" --kind bogus --out "$T/b"
bad "missing --out" --kind realtime
bad "missing --kind" --out "$T/b"
[ ! -e "$T/b" ]; check "bad command lines write nothing" $?

# ---- vox-inspect on broken directories: exit 1, one line naming the file
ibad() { # ibad DIR EXPECTED-SUBSTRING
    "$IN" -m "$1" >/dev/null 2>"$T/ibad.err"
    local rc=$?
    [ $rc = 1 ]; check "inspect $1 exits 1 (got $rc)" $?
    check "inspect $1 says '$2' ($(cat "$T/ibad.err"))" "$(has "$T/ibad.err" "$2")"
    [ "$(wc -l <"$T/ibad.err")" = 1 ]; check "inspect $1 prints one line" $?
}
ibad "$T/absent" "$T/absent: not a directory"
cp -r "$T/m" "$T/trunc"
truncate -s 100000 "$T/trunc/consolidated.safetensors"
ibad "$T/trunc" "$T/trunc/consolidated.safetensors: tensor '"
cp -r "$T/m" "$T/notek"
rm "$T/notek/tekken.json"
ibad "$T/notek" "$T/notek/tekken.json: missing"
cp -r "$T/m" "$T/badp"
sed -i 's/"dim": 64/"dim": "64"/' "$T/badp/params.json"
ibad "$T/badp" "$T/badp/params.json: key 'dim': expected an integer, found a string"
"$IN" >/dev/null 2>&1
[ $? = 2 ]; check "inspect without -m exits 2" $?

echo "test_mkmodel: $pass passed, $fail failed"
[ "$fail" = 0 ]
