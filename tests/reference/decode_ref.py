#!/usr/bin/env python3
"""Golden 16 kHz signals for tests/test_decode.c: what mistral-common feeds Voxtral.

For each input in tests/fixtures/decode/ (not 16 kHz, made once with espeak-ng 1.51 / sox 14.4.2:
e22.wav = `espeak-ng -v en-us -s 170 -w e22.wav "Resampling check."` (22050 Hz mono s16),
e44st.flac = `sox -D e22.wav -r 44100 -c 2 e44st.flac`), run mistral-common's own loading path:
Audio.from_file(strict=False) (soundfile read, channel mean) then Audio.resample(16000)
(soxr.resample quality="HQ"), and store the float32 result as <name>.ref16.f32 (raw little-endian).
Versions: tests/reference/requirements-decode.txt. Run: /work/main/.venv-ref/bin/python decode_ref.py
"""
import json
import os
import sys

import numpy as np
import soxr
import soundfile
import mistral_common
from mistral_common.tokens.tokenizers.audio import Audio

here = os.path.dirname(os.path.abspath(__file__))
fix = os.path.join(here, "..", "fixtures", "decode")
meta = {"mistral_common": mistral_common.__version__, "soxr": soxr.__version__,
        "soundfile": soundfile.__version__, "numpy": np.__version__, "files": {}}
for name in ("e22.wav", "e44st.flac"):
    a = Audio.from_file(os.path.join(fix, name), strict=False)
    sr = a.sampling_rate
    n_in = int(a.audio_array.shape[0])
    a.resample(16000)
    y = np.ascontiguousarray(a.audio_array, dtype="<f4")
    y.tofile(os.path.join(fix, name + ".ref16.f32"))
    meta["files"][name] = {"rate": sr, "frames": n_in, "out_samples": int(y.shape[0])}
    print(f"{name}: {sr} Hz, {n_in} frames -> {y.shape[0]} samples at 16 kHz", file=sys.stderr)
with open(os.path.join(fix, "meta.json"), "w") as f:
    json.dump(meta, f, indent=1)
    f.write("\n")
