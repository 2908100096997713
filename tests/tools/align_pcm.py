#!/usr/bin/env python3
"""Locate a known 16-bit mono WAV inside a capture of it (python3 standard library only).

  align_pcm.py SOURCE.wav CAPTURE.wav [--prefix MIN_SEC] [--expected OUT.wav]

The capture (what vox-live heard through PortAudio and saved with --save-audio) started at an
arbitrary moment before the source was played into the device, so it should be
    zeros(offset) + SOURCE + zeros(rest)
for one offset: the offset is where the first non-zero sample of the capture lines up with the
first non-zero sample of the source. A negative offset (the capture began inside the source's
leading silence) is accepted: the source samples before the capture are zeros anyway. Every sample is then compared, the source region and the
silence around it, with tolerance 0 (s16 at 16 kHz on both sides: nothing resamples or scales).
--prefix MIN_SEC: the capture may stop before the source ends (Ctrl-C), but must contain at
least MIN_SEC seconds of it. --expected: write zeros(offset) + SOURCE (cut or padded with zeros
to the capture's length), a file built from the source alone, for vox-transcribe to compare with.

Prints one line "offset N samples (S s), source samples heard H of T, differing D (max |diff|
M), non-zero outside the source Z, capture L samples" and exits 0 when D == 0 and Z == 0 (and
H == T, or H >= MIN_SEC with --prefix), else 1.
"""
import struct
import sys
import wave


def read(path):
    w = wave.open(path, "rb")
    if w.getsampwidth() != 2 or w.getnchannels() != 1:
        sys.exit("%s: not 16-bit mono" % path)
    n = w.getnframes()
    rate = w.getframerate()
    return list(struct.unpack("<%dh" % n, w.readframes(n))), rate


def main():
    args = sys.argv[1:]
    prefix = None
    expected = None
    if "--prefix" in args:
        i = args.index("--prefix")
        prefix = float(args[i + 1])
        del args[i : i + 2]
    if "--expected" in args:
        i = args.index("--expected")
        expected = args[i + 1]
        del args[i : i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    src, rate = read(args[0])
    cap, crate = read(args[1])
    if rate != crate:
        sys.exit("rates differ: %d vs %d" % (rate, crate))
    fs = next((i for i, x in enumerate(src) if x), None)
    fc = next((i for i, x in enumerate(cap) if x), None)
    if fs is None:
        sys.exit("%s: all silence" % args[0])
    if fc is None:
        print("capture is all silence (%d samples): the source was not heard" % len(cap))
        return 1
    # off < 0: the capture began inside the source's leading silence (the samples missed are
    # zeros); the source is then compared from sample skip = -off on.
    off = fc - fs
    skip = max(0, -off)
    start = max(0, off)  # capture index of source sample `skip`
    heard = max(0, min(len(src) - skip, len(cap) - start))
    diff = maxd = 0
    for i in range(heard):
        d = cap[start + i] - src[skip + i]
        if d:
            diff += 1
            maxd = max(maxd, abs(d))
    outside = sum(1 for x in cap[:start] if x) + sum(1 for x in cap[start + heard :] if x)
    print(
        "offset %d samples (%.4f s), source samples heard %d of %d (%d leading zeros before the "
        "capture began), differing %d (max |diff| %d), non-zero outside the source %d, capture "
        "%d samples" % (off, off / rate, heard, len(src), skip, diff, maxd, outside, len(cap))
    )
    if expected:
        exp = [0] * start + src[skip : skip + heard]
        exp += [0] * (len(cap) - len(exp))
        w = wave.open(expected, "wb")
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack("<%dh" % len(exp), *exp))
        w.close()
    enough = skip + heard == len(src) if prefix is None else heard >= prefix * rate
    return 0 if diff == 0 and outside == 0 and enough else 1


if __name__ == "__main__":
    sys.exit(main())
