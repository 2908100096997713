#!/usr/bin/env python3
"""Golden log-mel spectrograms for the C audio front end (audio/vox_mel.c), computed with the
upstream reference: transformers' VoxtralRealtimeFeatureExtractor (torch STFT, float32, CPU),
cross-checked against an independent float64 numpy log-mel built on mistral-common's
mel_filter_bank, with the WAVs read by mistral-common's Audio.from_file.

Usage (from the repository root):
    /work/main/.venv-ref/bin/python tests/reference/mel_ref.py [--regen-audio]

Inputs (16 kHz mono PCM16 WAVs under tests/fixtures/mel/; --regen-audio remakes them):
    speech.wav   espeak-ng sentence, `sox -D in.wav -r 16000 -c 1 -b 16 speech.wav`
    silence.wav  1 s of digital silence
    sine.wav     0.4 s, 440 Hz, amplitude 0.5, phase pi/3 (non-zero at sample 0, so the
                 reflect padding matters)
    click.wav    0.4 s, zeros with a one-sample impulse of 0.9 at sample 57 and a
                 -0.5 sample at 3001 (the first lies inside the 200-sample reflect region)

Outputs (tests/fixtures/mel/):
    NAME.mel.f32  raw little-endian float32, TIME-MAJOR [T][n_mels], T = n_samples // hop,
                  the feature extractor's output transposed (it returns [n_mels][T])
    meta.json     the feature-extractor arguments (the values of the real params.json
                  audio_encoding_args), per input: n_samples, T, max |HF - float64 numpy|,
                  number of frames equal to the floor; versions.

The silence input gets no .mel.f32: the script asserts the extractor gives exactly
(global_log_mel_max - 8 + 4) / 4 = -0.625 everywhere, and the C test asserts the same value.
"""
import argparse
import json
import os
import platform
import subprocess
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers.models.voxtral_realtime import VoxtralRealtimeFeatureExtractor  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.normpath(os.path.join(HERE, "..", "fixtures", "mel"))
SENTENCE = "Hello world, this is a test."

# The real Voxtral-Mini-4B-Realtime-2602 params.json,
# multimodal.whisper_model_args.encoder_args.audio_encoding_args (spec voxtral-realtime.md §5):
# sampling_rate 16000, num_mel_bins 128, hop_length 160, window_size 400, global_log_mel_max 1.5.
AUDIO_ENCODING_ARGS = {"sampling_rate": 16000, "num_mel_bins": 128, "hop_length": 160,
                       "window_size": 400, "global_log_mel_max": 1.5}


def die(msg):
    print(f"mel_ref: {msg}", file=sys.stderr)
    sys.exit(1)


def fe_args_from(aea):
    # Same mapping as tests/reference/asr_ref.py build_config().
    return dict(feature_size=int(aea["num_mel_bins"]), sampling_rate=int(aea["sampling_rate"]),
                hop_length=int(aea["hop_length"]), n_fft=int(aea["window_size"]),
                win_length=int(aea["window_size"]),
                global_log_mel_max=float(aea["global_log_mel_max"]))


def write_pcm16(path, x, sr):
    q = np.clip(np.round(np.asarray(x, np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    sf.write(path, q, sr, subtype="PCM_16")


def regen_audio(sr):
    os.makedirs(FIX, exist_ok=True)
    tmp = os.path.join(FIX, "_espeak.wav")
    subprocess.run(["espeak-ng", "-w", tmp, SENTENCE], check=True)
    subprocess.run(["sox", "-D", tmp, "-r", str(sr), "-c", "1", "-b", "16",
                    os.path.join(FIX, "speech.wav")], check=True)
    os.remove(tmp)
    write_pcm16(os.path.join(FIX, "silence.wav"), np.zeros(sr), sr)
    n = int(0.4 * sr)
    t = np.arange(n) / sr
    write_pcm16(os.path.join(FIX, "sine.wav"), 0.5 * np.sin(2 * np.pi * 440.0 * t + np.pi / 3), sr)
    c = np.zeros(n)
    c[57] = 0.9
    c[3001] = -0.5
    write_pcm16(os.path.join(FIX, "click.wav"), c, sr)


def own_logmel64(x, fb, n_fft, hop, log_max):
    """Independent float64 log-mel: periodic Hann, reflect pad n_fft//2, rfft, power, drop the
    last frame, mel bank fb [n_bins, n_mels], log10 (1e-10 floor), fixed floor, (x+4)/4."""
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    xp = np.pad(x.astype(np.float64), (n_fft // 2, n_fft // 2), mode="reflect")
    n_frames = 1 + (len(xp) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(xp[idx] * win, axis=1)) ** 2
    spec = spec[:-1]
    mel = spec @ fb                                   # [T, n_mels]
    logm = np.maximum(np.log10(np.maximum(mel, 1e-10)), log_max - 8.0)
    return (logm + 4.0) / 4.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--regen-audio", action="store_true")
    args = ap.parse_args()

    fe_args = fe_args_from(AUDIO_ENCODING_ARGS)
    sr, hop, n_fft = fe_args["sampling_rate"], fe_args["hop_length"], fe_args["n_fft"]
    n_mels, log_max = fe_args["feature_size"], fe_args["global_log_mel_max"]
    if args.regen_audio:
        regen_audio(sr)

    torch.set_num_threads(1)
    fe = VoxtralRealtimeFeatureExtractor(**fe_args)

    from mistral_common import __version__ as mc_version
    from mistral_common.audio import mel_filter_bank as mc_mel_filter_bank
    from mistral_common.tokens.tokenizers.audio import Audio as McAudio

    n_bins = n_fft // 2 + 1
    fb_mc = mc_mel_filter_bank(num_frequency_bins=n_bins, num_mel_bins=n_mels, min_frequency=0.0,
                               max_frequency=8000.0, sampling_rate=sr)
    fb_hf = np.asarray(fe.mel_filters, np.float64)
    if fb_mc.shape != (n_bins, n_mels) or fb_hf.shape != (n_bins, n_mels):
        die(f"filter bank shapes: mistral-common {fb_mc.shape}, transformers {fb_hf.shape}")
    fb_diff = float(np.abs(fb_mc - fb_hf).max())
    if fb_diff > 1e-12:
        die(f"mistral-common and transformers mel filter banks differ by {fb_diff}")

    floor = (log_max - 8.0 + 4.0) / 4.0
    inputs = {}
    for name in ("speech", "silence", "sine", "click"):
        path = os.path.join(FIX, f"{name}.wav")
        mc = McAudio.from_file(path)
        x, fsr = sf.read(path, dtype="float32")
        if mc.sampling_rate != sr or fsr != sr:
            die(f"{path}: sample rate {mc.sampling_rate}, expected {sr}")
        if not np.array_equal(mc.audio_array, x):
            die(f"{path}: mistral-common and soundfile read different samples")
        raw, _ = sf.read(path, dtype="int16")
        if not np.array_equal(raw.astype(np.float32) / 32768.0, x):
            die(f"{path}: samples are not PCM16 / 32768")
        feats = fe(x, sampling_rate=sr, return_tensors="pt").input_features.to(torch.float32)
        mel = feats[0].numpy().T.copy()                 # [T, n_mels], time-major
        T = len(x) // hop
        if mel.shape != (T, n_mels):
            die(f"{name}: feature extractor gave {mel.shape}, expected ({T}, {n_mels})")
        own = own_logmel64(x, fb_mc, n_fft, hop, log_max)
        d = float(np.abs(own - mel.astype(np.float64)).max())
        if d > 1e-3:
            die(f"{name}: feature extractor and float64 log-mel differ by {d}")
        info = {"n_samples": int(len(x)), "frames": int(T), "max_abs_hf_vs_f64": d,
                "n_values_at_floor": int(np.sum(mel == np.float32(floor))),
                "min": float(mel.min()), "max": float(mel.max())}
        if name == "silence":
            if not np.all(mel == np.float32(floor)):
                die(f"silence: mel is not exactly {floor} everywhere")
            info["all_floor"] = True
        else:
            mel.astype("<f4").tofile(os.path.join(FIX, f"{name}.mel.f32"))
            info["file"] = f"{name}.mel.f32"
        inputs[name] = info
        print(f"mel_ref: {name}: {len(x)} samples, {T} frames, HF vs float64 {d:.3g}", file=sys.stderr)

    esv = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    sxv = subprocess.run(["sox", "--version"], capture_output=True, text=True).stdout.strip()
    meta = {
        "what": "log-mel of each WAV by transformers VoxtralRealtimeFeatureExtractor, time-major [T][n_mels] float32",
        "audio_encoding_args": AUDIO_ENCODING_ARGS,
        "feature_extractor": fe_args,
        "f_min": 0.0, "f_max": 8000.0,
        "floor_value": floor,
        "sentence": SENTENCE,
        "speech_cmd": f"espeak-ng -w tmp.wav '{SENTENCE}' && sox -D tmp.wav -r {sr} -c 1 -b 16 speech.wav",
        "filter_bank_mc_vs_hf": fb_diff,
        "inputs": inputs,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__,
                     "soundfile": sf.__version__, "mistral_common": mc_version,
                     "espeak_ng": esv, "sox": sxv},
    }
    with open(os.path.join(FIX, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
