#!/usr/bin/env python3
"""HTTP endpoints of vox-server (python3 standard library + ffmpeg CLI, no PyPI).

  srvhttp_check.py PORT DIR     DIR holds the expectations made by tests/test_server_http.sh:
    speech.wav, speech.mp3     the upload inputs; ref.txt / ref_mp3.txt vox-transcribe's text
    dur.txt                    the WAV's duration (s)
    tts.raw, tts.log           vox-tts -o - of TTS_TEXT with the default seed, and its -v log
    long.txt, long.raw         a 1.6 kB text and vox-tts -o - of it (several chunks)
  srvhttp_check.py PORT --no-tts BIG.mp3   the TTS endpoints on a server without --tts-model,
                                 and /health during a long upload (--max-audio-seconds 10)

Checks: transcription of the WAV and of the mp3 equals vox-transcribe's text (json, text,
verbose_json); srt/vtt pass tests/tools/check_subs.py; verbose_json words are monotonic inside
[0, duration] and make up the text; bad uploads give 400 with the OpenAI error shape; speech in
every format is 24 kHz mono, sent chunked, and holds frames x samples-per-frame samples
(exactly for pcm, wav, flac: the same samples as vox-tts; within the codec's delay for mp3 and
opus); speech errors; the speech WebSocket; GET / has the page's element ids.
Prints one line per failure and exits 1 if any.
"""
import base64
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wsclient  # noqa: E402

TTS_TEXT = "Hello there. How are you today?"
fails = []


def check(cond, what):
    if not cond:
        fails.append(what)
        print("FAIL: " + what)


def request(port, path, body=None, headers=None, method=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body,
                                 headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, dict((k.lower(), v) for k, v in r.headers.items()), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict((k.lower(), v) for k, v in e.headers.items()), e.read()


def multipart(fields, files):
    b = uuid.uuid4().hex
    out = b""
    for k, v in fields:
        out += ('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (b, k, v)).encode()
    for k, name, data, ct in files:
        out += ('--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\n'
                'Content-Type: %s\r\n\r\n' % (b, k, name, ct)).encode() + data + b"\r\n"
    out += ("--%s--\r\n" % b).encode()
    return out, "multipart/form-data; boundary=" + b


def transcribe(port, data, name, fmt, extra=()):
    body, ct = multipart([("model", "m"), ("response_format", fmt)] + list(extra),
                         [("file", name, data, "application/octet-stream")])
    return request(port, "/v1/audio/transcriptions", body, {"Content-Type": ct})


def is_error(status, body, want):
    try:
        e = json.loads(body)["error"]
        return status == want and isinstance(e["message"], str) and e["message"] and "type" in e
    except (ValueError, KeyError, TypeError):
        return False


def decode_s16(data, ext):
    """ffmpeg CLI decode to 24 kHz mono s16 (the container's own trimming applies)."""
    r = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", ext, "-i", "-",
                        "-f", "s16le", "-ac", "1", "-ar", "24000", "-"], input=data,
                       capture_output=True)
    return r.stdout if r.returncode == 0 else None


def probe_rate(data, ext):
    r = subprocess.run(["ffprobe", "-v", "error", "-f", ext, "-show_entries",
                        "stream=sample_rate,channels", "-of", "compact", "-"], input=data,
                       capture_output=True, text=False)
    return r.stdout.decode().strip()


def asr_checks(port, d):
    wav = open(os.path.join(d, "speech.wav"), "rb").read()
    mp3 = open(os.path.join(d, "speech.mp3"), "rb").read()
    ref = open(os.path.join(d, "ref.txt"), encoding="utf-8", errors="surrogateescape").read().strip()
    ref_mp3 = open(os.path.join(d, "ref_mp3.txt"), encoding="utf-8",
                   errors="surrogateescape").read().strip()
    dur = float(open(os.path.join(d, "dur.txt")).read())
    for data, name, want in ((wav, "speech.wav", ref), (mp3, "speech.mp3", ref_mp3)):
        st, h, b = transcribe(port, data, name, "json")
        check(st == 200 and h.get("content-type", "").startswith("application/json"),
              "%s json: status %d %r" % (name, st, b[:200]))
        if st == 200:
            got = json.loads(b)["text"]
            check(got == want, "%s json text %r != vox-transcribe %r" % (name, got[:80], want[:80]))
        st, h, b = transcribe(port, data, name, "text")
        check(st == 200 and b.decode("utf-8", "surrogateescape").strip() == want,
              "%s text: %d %r" % (name, st, b[:80]))
    print("transcription of wav and mp3 = vox-transcribe's text (%d chars)" % len(ref))
    st, h, b = transcribe(port, wav, "speech.wav", "json", [("stream", "true")])
    ev = [json.loads(l[6:]) for l in b.decode("utf-8", "surrogateescape").split("\n")
          if l.startswith("data: ")]
    deltas = "".join(e["delta"] for e in ev if e["type"] == "transcript.text.delta")
    check(st == 200 and h.get("content-type") == "text/event-stream" and len(ev) >= 2 and
          ev[-1]["type"] == "transcript.text.done" and ev[-1]["text"] == ref and
          deltas.strip() == ref, "stream=true: %d, %d events" % (st, len(ev)))
    print("stream=true: %d SSE events, deltas join to the text" % len(ev))
    here = os.path.dirname(os.path.abspath(__file__))
    for fmt in ("srt", "vtt"):
        st, h, b = transcribe(port, wav, "speech.wav", fmt)
        p = os.path.join(d, "out." + fmt)
        open(p, "wb").write(b)
        r = subprocess.run([sys.executable, os.path.join(here, "check_subs.py"), fmt, p, str(dur)],
                           capture_output=True, text=True)
        check(st == 200 and r.returncode == 0, "%s: %d %s" % (fmt, st, r.stdout.strip()))
        print("%s: %s" % (fmt, r.stdout.strip()))
    st, h, b = transcribe(port, wav, "speech.wav", "verbose_json",
                          [("timestamp_granularities[]", "word"),
                           ("timestamp_granularities[]", "segment"), ("language", "en")])
    check(st == 200, "verbose_json status %d %r" % (st, b[:200]))
    if st == 200:
        v = json.loads(b)
        check(v["task"] == "transcribe" and v["language"] == "en", "verbose_json task/language")
        check(abs(v["duration"] - dur) < 0.002, "verbose_json duration %s vs %s" % (v["duration"], dur))
        check(v["text"] == ref, "verbose_json text")
        ws, prev, ok = v["words"], 0.0, True
        for w in ws:
            ok = ok and prev <= w["start"] <= w["end"] <= dur + 0.001
            prev = w["end"]
        check(ok and len(ws) > 0, "verbose_json words monotonic inside [0, duration] (%d)" % len(ws))
        check("".join(w["word"] for w in ws) == "".join(ref.split()),
              "verbose_json words make up the text")
        segs = v["segments"]
        check(len(segs) > 0 and segs[0]["start"] == ws[0]["start"] and
              segs[-1]["end"] == ws[-1]["end"], "verbose_json segments span the words")
        print("verbose_json: %d words, %d segments, duration %.3f" % (len(ws), len(segs), v["duration"]))
    # bad uploads
    st, h, b = transcribe(port, b"this is plain text, not audio\n" * 20, "notes.txt", "json")
    check(is_error(st, b, 400), "not-audio upload: %d %r" % (st, b[:200]))
    print("not audio -> %d %s" % (st, json.loads(b)["error"]["message"] if b else ""))
    body, ct = multipart([("model", "m")], [])
    st, h, b = request(port, "/v1/audio/transcriptions", body, {"Content-Type": ct})
    check(is_error(st, b, 400) and b"file" in b, "missing file part: %d %r" % (st, b[:200]))
    body, ct = multipart([("model", "m")], [("file", "a.wav", wav, "audio/wav")])
    st, h, b = request(port, "/v1/audio/transcriptions", body[:-len(b"--\r\n") - 40],
                       {"Content-Type": ct})
    check(is_error(st, b, 400) and b"truncated" in b, "truncated multipart: %d %r" % (st, b[:200]))
    st, h, b = request(port, "/v1/audio/transcriptions", b"{}", {"Content-Type": "application/json"})
    check(is_error(st, b, 400) and b"multipart" in b, "json body: %d %r" % (st, b[:200]))
    st, h, b = transcribe(port, wav, "speech.wav", "yaml")
    check(is_error(st, b, 400) and b"response_format" in b, "bad response_format: %d" % st)
    st, h, b = transcribe(port, wav, "speech.wav", "json", [("timestamp_granularities[]", "char")])
    check(is_error(st, b, 400), "bad granularity: %d" % st)


def speech(port, **kw):
    body = dict(model="tts", input=TTS_TEXT, voice="casual_male")
    body.update(kw)
    return request(port, "/v1/audio/speech", json.dumps(body).encode(),
                   {"Content-Type": "application/json"})


def tts_checks(port, d):
    ref = open(os.path.join(d, "tts.raw"), "rb").read()
    log = open(os.path.join(d, "tts.log")).read()
    frames = int(re.search(r"frames generated: (\d+)", log).group(1))
    spf = int(re.search(r"samples per frame: (\d+)", log).group(1))
    n = frames * spf
    check(len(ref) == 2 * n, "vox-tts raw %d bytes for %d frames x %d" % (len(ref), frames, spf))
    for fmt in ("pcm", "wav", "flac", "mp3", "opus"):
        st, h, b = speech(port, response_format=fmt)
        check(st == 200, "speech %s: %d %r" % (fmt, st, b[:200]))
        if st != 200:
            continue
        check(h.get("transfer-encoding") == "chunked", "speech %s not chunked: %s" % (fmt, h))
        if fmt == "pcm":
            check(b == ref, "speech pcm: %d bytes, not vox-tts's %d" % (len(b), len(ref)))
            got = len(b) // 2
        else:
            rate = probe_rate(b, {"opus": "ogg"}.get(fmt, fmt))
            want = "sample_rate=%d|channels=1" % (48000 if fmt == "opus" else 24000)
            check(want in rate, "speech %s: ffprobe says %s" % (fmt, rate))
            pcm = decode_s16(b, {"opus": "ogg"}.get(fmt, fmt)) or b""
            got = len(pcm) // 2
            if fmt in ("wav", "flac"):
                check(pcm == ref, "speech %s: samples differ from vox-tts (%d vs %d)" % (fmt, got, n))
            elif fmt == "mp3":  # streamed: no Xing/LAME frame, the encoder delay stays
                check(n <= got <= n + 3 * 1152, "speech mp3: %d samples for %d" % (got, n))
            else:  # Ogg Opus: granule positions trim pre-skip and the end
                check(abs(got - n) <= 24, "speech opus: %d samples for %d" % (got, n))
        print("speech %s: %d bytes, %d samples (frames %d x %d = %d)" % (fmt, len(b), got, frames,
                                                                      spf, n))
    long_text = open(os.path.join(d, "long.txt")).read()
    long_ref = open(os.path.join(d, "long.raw"), "rb").read()
    st, h, b = speech(port, response_format="pcm", input=long_text)
    check(st == 200 and b == long_ref, "speech of %d bytes of text: %d, %d bytes vs vox-tts's %d"
          % (len(long_text), st, len(b), len(long_ref)))
    print("speech of %d bytes of text (chunked as vox-tts): %d samples, identical: %s"
          % (len(long_text), len(b) // 2, b == long_ref))
    st, h, b = speech(port, response_format="pcm", stream_format="sse")
    events = [json.loads(l[6:]) for l in b.decode().split("\n") if l.startswith("data: ")]
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    check(st == 200 and events and events[-1]["type"] == "speech.audio.done" and audio == ref,
          "speech sse: %d, %d events, %d audio bytes" % (st, len(events), len(audio)))
    # clients that leave in the middle of a streamed answer: the jobs are dropped, no harm
    body = json.dumps({"input": TTS_TEXT * 20, "voice": "casual_male",
                       "response_format": "flac"}).encode()
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        s.recv(100)
        s.close()
    st, h, b = speech(port, response_format="pcm")
    check(st == 200 and b == ref, "speech after 2 abrupt disconnects: %d" % st)
    for _ in range(50):
        if json.loads(request(port, "/health")[2])["sessions"]["in_use"] == 0:
            break
        time.sleep(0.1)
    check(json.loads(request(port, "/health")[2])["sessions"]["in_use"] == 0,
          "sessions not released after disconnects")
    st, h, b = speech(port, voice="nobody")
    check(is_error(st, b, 400) and b"casual_female" in b, "unknown voice: %d %r" % (st, b[:200]))
    print("unknown voice -> %d %s" % (st, json.loads(b)["error"]["message"]))
    st, h, b = speech(port, input="   ")
    check(is_error(st, b, 400) and b"empty" in b, "empty input: %d %r" % (st, b[:200]))
    st, h, b = speech(port, response_format="aac")
    check(is_error(st, b, 400) and b"aac" in b, "aac: %d %r" % (st, b[:200]))
    st, h, b = speech(port, speed=1.5)
    check(is_error(st, b, 400) and b"speed" in b, "speed 1.5: %d" % st)
    st, h, b = request(port, "/v1/audio/speech", b"{nope", {"Content-Type": "application/json"})
    check(is_error(st, b, 400), "bad JSON: %d" % st)
    st, h, b = request(port, "/v1/audio/voices")
    check(st == 200 and json.loads(b)["voices"] == ["casual_female", "casual_male"],
          "voices: %d %r" % (st, b))
    # streaming TTS over WebSocket: two sentences -> two segments of frames x spf samples each
    w = wsclient.WS("127.0.0.1", port, "/v1/audio/speech/stream")
    first = w.recv()
    check(first and json.loads(first[1])["type"] == "session.created", "ws: session.created")
    w.send_text(json.dumps({"type": "input_text", "text": "Hello there. How", "voice": "casual_male"}))
    w.send_text(json.dumps({"type": "input_text", "text": " are you today?"}))
    w.send_text(json.dumps({"type": "binary?"}))
    w.send_text(json.dumps({"type": "end"}))
    audio, seg_done, started, done, errors = b"", [], [], None, []
    while True:
        m = w.recv(timeout=60)
        if m is None or m[0] == "close":
            break
        if m[0] == "binary":
            audio += m[1]
            continue
        e = json.loads(m[1])
        if e["type"] == "segment.started":
            started.append(e["text"])
        elif e["type"] == "segment.done":
            seg_done.append(e)
        elif e["type"] == "done":
            done = e
        elif e["type"] == "error":
            errors.append(e["error"]["code"])
    w.close()
    check(started == ["Hello there.", "How are you today?"], "ws segments %r" % started)
    check(errors == ["unknown_event"], "ws errors %r" % errors)
    check(done is not None and done["samples"] * 2 == len(audio) and
          sum(s["samples"] for s in seg_done) * 2 == len(audio) and
          all(s["samples"] == s["frames"] * spf for s in seg_done),
          "ws: %d audio bytes, segments %r, done %r" % (len(audio), seg_done, done))
    print("ws speech: %d segments, %d samples, segment samples = frames x %d" %
          (len(seg_done), len(audio) // 2, spf))


def page_checks(port):
    st, h, b = request(port, "/")
    page = b.decode()
    ids = ["start", "stop", "status", "transcript", "tts-text", "voice", "speak", "tts-status",
           "player"]
    check(st == 200 and h["content-type"].startswith("text/html") and
          all('id="%s"' % i in page for i in ids), "GET /: %d, ids" % st)


def big_upload(port, path):
    """The upload is decoded off the network loop: /health stays quick meanwhile."""
    data = open(path, "rb").read()
    res = {}

    def up():
        t0 = time.time()
        res["r"] = transcribe(port, data, "big.mp3", "json")
        res["t"] = time.time() - t0
    th = threading.Thread(target=up)
    th.start()
    lat = []
    while th.is_alive():
        t0 = time.time()
        request(port, "/health")
        lat.append(time.time() - t0)
        time.sleep(0.02)
    th.join()
    st, h, b = res["r"]
    check(is_error(st, b, 413) and b"max-audio-seconds" in b, "big upload: %d %r" % (st, b[:200]))
    check(max(lat) < 0.5 * res["t"], "/health took up to %.2f s during a %.2f s upload"
          % (max(lat), res["t"]))
    print("15-min mp3 (%d bytes): %d after %.2f s; /health during it: %d polls, max %.3f s"
          % (len(data), st, res["t"], len(lat), max(lat)))


def main():
    port = int(sys.argv[1])
    if sys.argv[2] == "--no-tts":
        st, h, b = speech(port)
        check(is_error(st, b, 404) and b"--tts-model" in b, "no TTS: speech %d %r" % (st, b[:200]))
        st, h, b = request(port, "/v1/audio/voices")
        check(is_error(st, b, 404), "no TTS: voices %d" % st)
        w = wsclient.WS("127.0.0.1", port, "/v1/audio/speech/stream")
        m = w.recv()
        check(m and m[0] == "text" and "model_not_found" in m[1], "no TTS: ws %r" % (m,))
        w.close()
        page_checks(port)
        big_upload(port, sys.argv[3])
    else:
        page_checks(port)
        asr_checks(port, sys.argv[2])
        tts_checks(port, sys.argv[2])
    print("srvhttp_check: %s" % ("ok" if not fails else "%d FAILED" % len(fails)))
    sys.exit(1 if fails else 0)


main()
