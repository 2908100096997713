#!/usr/bin/env python3
"""server_check.py - checks a running vox-server against vox-transcribe's output (stdlib only).

    server_check.py PORT MODEL_NAME WAV16K REF_JSON [WAV_OTHER_RATE REF_OTHER_JSON]
    server_check.py PORT MODEL_NAME --limits WAV16K
    server_check.py PORT MODEL_NAME --drain WAV16K SERVER_PID

REF_JSON is `vox-transcribe -f json` of WAV16K (16 kHz mono s16). Checks, each printed as
PASS/FAIL: /health, /v1/models, /metrics shapes; a vLLM /v1/realtime round trip (100 ms appends)
whose transcription.done text equals the reference text and equals the concatenated deltas,
whose words equal the reference words (text exactly, times within 1 ms); a Mistral-protocol
round trip with the same audio; 8 concurrent streams each equal to the reference; protocol
errors that keep the session usable. Exit 1 if any
check fails. --limits: the limit checks (server started with --max-sessions 1
--max-message 65536 --idle-timeout 2 --max-audio-seconds 2
--max-out-queue 65536): oversize message, busy refusal, abrupt disconnect,
idle timeout, Mistral errors. --drain: SIGTERM with a stream in flight."""
import base64
import json
import os
import sys
import urllib.request
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import WS  # noqa: E402

HOST = "127.0.0.1"
fails = 0


def check(name, ok, detail=""):
    global fails
    print(("PASS " if ok else "FAIL ") + name + ("" if ok or not detail else ": " + detail))
    if not ok:
        fails += 1


def get(path):
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (HOST, PORT, path), timeout=10) as r:
            return r.status, r.headers.get("content-type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read().decode()


def norm(t):
    # vox-transcribe's txt/json text: trimmed, NUL replaced by a space
    return t.replace("\0", " ").strip(" \n\t\r")


def read_pcm(path):
    with wave.open(path) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        return w.getframerate(), w.readframes(w.getnframes())


def recv_json(ws, timeout=30):
    r = ws.recv(timeout=timeout)
    if r is None:
        return None
    if r[0] != "text":
        return {"type": "_" + r[0], "data": r[1]}
    return json.loads(r[1])


def collect(ws, done_type="transcription.done", delta_key="delta", timeout=60):
    deltas, words, errors = [], [], []
    while True:
        ev = recv_json(ws, timeout)
        if ev is None:
            return None, deltas, words, errors
        if ev["type"] in ("transcription.delta", "transcription.text.delta"):
            deltas.append(ev[delta_key])
            words += ev.get("words", [])
        elif ev["type"] == "error":
            errors.append(ev)
        elif ev["type"] == done_type:
            return ev, deltas, words, errors
        elif ev["type"].startswith("_"):
            return None, deltas, words, errors + [ev]


def compare_words(name, got, ref):
    ok = len(got) == len(ref) and all(
        g["word"] == r["word"] and abs(g["start"] - r["start"]) <= 1e-3 and
        abs(g["end"] - r["end"]) <= 1e-3 for g, r in zip(got, ref))
    check(name, ok, "got %d words, reference %d; first got %s ref %s" %
          (len(got), len(ref), got[:2], ref[:2]))


def vllm_roundtrip(pcm, rate, ref):
    ws = WS(HOST, PORT, "/v1/realtime")
    ev = recv_json(ws)
    check("vllm: session.created with id and created",
          ev and ev["type"] == "session.created" and ev["id"].startswith("sess-") and
          isinstance(ev["created"], int), str(ev))
    # protocol errors first: each answered, the session stays usable
    ws.send_text("{not json")
    ev = recv_json(ws)
    check("vllm: malformed JSON -> invalid_json", ev and ev.get("code") == "invalid_json", str(ev))
    ws.send_text(json.dumps({"type": "input_audio_buffer.commit"}))
    ev = recv_json(ws)
    check("vllm: commit before session.update -> model_not_validated",
          ev and ev.get("code") == "model_not_validated", str(ev))
    ws.send_text(json.dumps({"type": "input_audio_buffer.append", "audio": "@@@"}))
    ev = recv_json(ws)
    check("vllm: bad base64 -> invalid_audio", ev and ev.get("code") == "invalid_audio", str(ev))
    ws.send_text(json.dumps({"type": "input_audio_buffer.append", "audio": 5}))
    ev = recv_json(ws)
    check("vllm: audio of the wrong type -> invalid_audio",
          ev and ev.get("code") == "invalid_audio", str(ev))
    ws.send_binary(b"\x00\x01")
    ev = recv_json(ws)
    check("vllm: binary frame -> error event", ev and ev["type"] == "error", str(ev))
    ws.send_text(json.dumps({"type": "no.such.event"}))
    ev = recv_json(ws)
    check("vllm: unknown event -> unknown_event", ev and ev.get("code") == "unknown_event", str(ev))
    ws.send_text(json.dumps({"type": "session.update", "model": MODEL}))
    ws.send_text(json.dumps({"type": "input_audio_buffer.commit"}))
    step = rate // 10 * 2
    for i in range(0, len(pcm), step):
        ws.send_text(json.dumps({"type": "input_audio_buffer.append",
                                 "audio": base64.b64encode(pcm[i:i + step]).decode()}))
    ws.send_text(json.dumps({"type": "input_audio_buffer.commit", "final": True}))
    done, deltas, words, errors = collect(ws)
    check("vllm: transcription.done arrives without errors", done is not None and not errors,
          str(errors))
    if done:
        check("vllm: done text equals vox-transcribe's", norm(done["text"]) == ref["text"],
              "%r vs %r" % (done["text"][:80], ref["text"][:80]))
        check("vllm: deltas concatenate to the done text", "".join(deltas) == done["text"])
        u = done.get("usage", {})
        check("vllm: usage has prompt/completion/total tokens",
              u.get("total_tokens") == u.get("prompt_tokens", -1) + u.get("completion_tokens", -1)
              and u["completion_tokens"] > 0, str(u))
        compare_words("vllm: delta words equal vox-transcribe's words", words, ref["words"])
    # the socket takes a second utterance
    ws.send_text(json.dumps({"type": "input_audio_buffer.commit"}))
    ws.send_text(json.dumps({"type": "input_audio_buffer.append",
                             "audio": base64.b64encode(pcm).decode()}))
    ws.send_text(json.dumps({"type": "input_audio_buffer.commit", "final": True}))
    done2, _, _, errors = collect(ws)
    check("vllm: a second utterance on the same socket gives the same text",
          done2 is not None and done and done2["text"] == done["text"], str(errors))
    ws.close()


def mistral_roundtrip(pcm, rate, ref, tag):
    ws = WS(HOST, PORT, "/v1/audio/transcriptions/realtime?model=" + MODEL)
    ev = recv_json(ws)
    check("mistral%s: session.created with session.audio_format" % tag,
          ev and ev["type"] == "session.created" and
          ev["session"]["audio_format"] == {"encoding": "pcm_s16le", "sample_rate": 16000} and
          ev["session"]["model"] == MODEL, str(ev))
    ws.send_text(json.dumps({"type": "session.update", "session": {
        "audio_format": {"encoding": "pcm_s16le", "sample_rate": rate}}}))
    ev = recv_json(ws)
    check("mistral%s: session.updated echoes the rate" % tag,
          ev and ev["type"] == "session.updated" and
          ev["session"]["audio_format"]["sample_rate"] == rate, str(ev))
    step = rate // 10 * 2
    for i in range(0, len(pcm), step):
        ws.send_text(json.dumps({"type": "input_audio.append",
                                 "audio": base64.b64encode(pcm[i:i + step]).decode()}))
    ws.send_text(json.dumps({"type": "input_audio.flush"}))
    ws.send_text(json.dumps({"type": "input_audio.end"}))
    done, deltas, words, errors = collect(ws, delta_key="text")
    check("mistral%s: transcription.done without errors" % tag, done is not None and not errors,
          str(errors))
    if done:
        check("mistral%s: done text equals vox-transcribe's" % tag,
              norm(done["text"]) == ref["text"],
              "%r vs %r" % (done["text"][:80], ref["text"][:80]))
        check("mistral%s: done has model, language, usage" % tag,
              done["model"] == MODEL and "language" in done and "usage" in done, str(done)[:200])
        check("mistral%s: deltas concatenate to the done text" % tag,
              "".join(deltas) == done["text"])
    ws.close()


def limits(pcm):
    """Against a server started with --max-sessions 1 --max-message 65536 --idle-timeout 2
    --max-audio-seconds 2 --max-out-queue 65536."""
    import socket
    import time
    # a message over --max-message: error event, then close 1009, without the server keeping it
    ws = WS(HOST, PORT, "/v1/realtime")
    recv_json(ws)
    big = b'{"type":"input_audio_buffer.append","audio":"' + b"A" * (50 << 20) + b'"}'

    try:
        ws.send_text(big)
    except OSError:
        pass  # the server may close before the whole frame is sent
    got = []
    for _ in range(3):
        try:
            r = ws.recv(timeout=10)
        except Exception:
            break
        if r is None:
            break
        got.append(r)
        if r[0] == "close":
            break
    check("50 MB message -> error event then close 1009",
          any(k == "text" and json.loads(v)["type"] == "error" for k, v in got) and
          got[-1][0] == "close" and got[-1][1][0] == 1009, str(got)[:200])
    ws.close()
    # max sessions: the first stream holds the only slot, a second is refused with server_busy
    a = WS(HOST, PORT, "/v1/realtime")
    recv_json(a)
    a.send_text(json.dumps({"type": "input_audio_buffer.append",
                            "audio": base64.b64encode(pcm[:3200]).decode()}))
    for _ in range(100):  # until the server has opened the job
        if json.loads(get("/health")[2])["sessions"]["in_use"] == 1:
            break
        time.sleep(0.05)
    b = WS(HOST, PORT, "/v1/realtime")
    ev = recv_json(b, 5)
    r = b.recv(timeout=5)
    check("--max-sessions 1: a second stream gets a server_busy error and close 1013",
          ev and ev.get("code") == "server_busy" and r and r[0] == "close" and r[1][0] == 1013,
          "%s %s" % (ev, r))
    b.close()
    st, _, body = get("/health")
    check("/health counts the session in use", json.loads(body)["sessions"]["in_use"] == 1, body)
    # abrupt disconnect mid-stream frees the job
    a.sock.shutdown(socket.SHUT_RDWR)
    a.sock.close()
    in_use = 1
    for _ in range(50):
        time.sleep(0.1)
        in_use = json.loads(get("/health")[2])["sessions"]["in_use"]
        if in_use == 0:
            break
    check("abrupt disconnect mid-stream frees the session", in_use == 0, "in_use %d" % in_use)
    # idle timeout: a silent client is closed (1001) after --idle-timeout
    c = WS(HOST, PORT, "/v1/audio/transcriptions/realtime")
    recv_json(c)
    t0 = time.time()
    r = c.recv(timeout=8)
    check("idle client closed with 1001 after --idle-timeout",
          r and r[0] == "close" and r[1][0] == 1001 and 1.5 < time.time() - t0 < 6,
          "%s after %.1f s" % (r, time.time() - t0))
    c.close()
    # Mistral protocol errors keep the session usable; wrong model refused at connect
    d = WS(HOST, PORT, "/v1/audio/transcriptions/realtime?model=not-this-one")
    ev = recv_json(d, 5)
    check("mistral: unknown model -> error {message, code:404}",
          ev and ev["type"] == "error" and ev["error"]["code"] == 404 and
          isinstance(ev["error"]["message"], str), str(ev))
    d.close()
    e = WS(HOST, PORT, "/v1/audio/transcriptions/realtime")
    recv_json(e)
    e.send_text(json.dumps({"type": "session.update", "session": {
        "audio_format": {"encoding": "opus", "sample_rate": 16000}}}))
    ev = recv_json(e, 5)
    check("mistral: unsupported encoding -> error 400", ev and ev["type"] == "error" and
          ev["error"]["code"] == 400, str(ev))
    e.send_text(json.dumps({"type": "session.update", "session": {
        "target_streaming_delay_ms": 480}}))
    ev = recv_json(e, 5)
    check("mistral: session still usable after an error (delay 480 accepted)",
          ev and ev["type"] == "session.updated" and
          ev["session"]["target_streaming_delay_ms"] == 480, str(ev))
    e.close()
    # a client that never reads while its messages keep producing output (one error event per
    # invalid message): dropped once --max-out-queue (64 KiB) is queued, the server unharmed
    g = WS(HOST, PORT, "/v1/realtime")
    g.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sent = 0
    try:
        for _ in range(400000):
            g.send_text("x")
            sent += 1
    except OSError:
        pass
    g.sock.close()
    met = get("/metrics")[2]
    check("a client that never reads is dropped at --max-out-queue (slow_client counted)",
          sent < 400000 and 'vox_errors_total{kind="slow_client"} 1' in met,
          "sent %d messages" % sent)
    # --max-audio-seconds 2: the 3.4 s clip is refused past 2 s with a message naming the option
    f = WS(HOST, PORT, "/v1/realtime")
    recv_json(f)
    for i in range(0, len(pcm), 3200):
        f.send_text(json.dumps({"type": "input_audio_buffer.append",
                                "audio": base64.b64encode(pcm[i:i + 3200]).decode()}))
    ev = recv_json(f, 5)
    check("audio past --max-audio-seconds -> error naming the option",
          ev and ev["type"] == "error" and "--max-audio-seconds" in ev["error"], str(ev))
    f.close()


def drain(pcm, pid):
    """SIGTERM while a stream is in flight: the stream still completes, new sessions refused."""
    import signal
    ws = WS(HOST, PORT, "/v1/realtime")
    recv_json(ws)
    ws.send_text(json.dumps({"type": "session.update", "model": MODEL}))
    ws.send_text(json.dumps({"type": "input_audio_buffer.commit"}))
    half = len(pcm) // 2 // 2 * 2
    ws.send_text(json.dumps({"type": "input_audio_buffer.append",
                             "audio": base64.b64encode(pcm[:half]).decode()}))
    import time
    for _ in range(50):  # the stream is open in the server before the signal
        if json.loads(get("/health")[2])["sessions"]["in_use"] == 1:
            break
        time.sleep(0.1)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.3)
    try:
        x = WS(HOST, PORT, "/v1/realtime")
        ev = recv_json(x, 5)
        refused = ev is not None and ev.get("type") == "error"
        x.close()
    except Exception:
        refused = True
    check("after SIGTERM new sessions are refused", refused)
    ws.send_text(json.dumps({"type": "input_audio_buffer.append",
                             "audio": base64.b64encode(pcm[half:]).decode()}))
    ws.send_text(json.dumps({"type": "input_audio_buffer.commit", "final": True}))
    done, _, _, errors = collect(ws)
    check("the in-flight stream completes after SIGTERM", done is not None and not errors,
          str(errors))
    ws.close()


def concurrent(pcm, ref, n=8):
    """n vLLM streams at once, staggered, each with its own append size: all batched in the
    scheduler's steps; every transcript must still equal vox-transcribe's."""
    import threading
    import time
    res = {}

    def run(k):
        time.sleep(0.05 * k)
        ws = WS(HOST, PORT, "/v1/realtime")
        recv_json(ws)
        ws.send_text(json.dumps({"type": "session.update", "model": MODEL}))
        ws.send_text(json.dumps({"type": "input_audio_buffer.commit"}))
        step = 3200 + 640 * k
        for i in range(0, len(pcm), step):
            ws.send_text(json.dumps({"type": "input_audio_buffer.append",
                                     "audio": base64.b64encode(pcm[i:i + step]).decode()}))
            time.sleep(0.01)
        ws.send_text(json.dumps({"type": "input_audio_buffer.commit", "final": True}))
        done, _, _, _ = collect(ws)
        res[k] = norm(done["text"]) if done else None
        ws.close()

    th = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    same = sum(1 for v in res.values() if v == ref["text"])
    check("%d concurrent streams (batched) each equal vox-transcribe's text" % n, same == n,
          "%d of %d equal" % (same, n))


def main():
    global PORT, MODEL
    PORT, MODEL = int(sys.argv[1]), sys.argv[2]
    if sys.argv[3] == "--drain":
        drain(read_pcm(sys.argv[4])[1], int(sys.argv[5]))
        print("server_check --drain: %d failed" % fails)
        sys.exit(1 if fails else 0)
    if sys.argv[3] == "--limits":
        limits(read_pcm(sys.argv[4])[1])
        print("server_check --limits: %d failed" % fails)
        sys.exit(1 if fails else 0)
    st, ct, body = get("/health")
    h = json.loads(body)
    check("/health is 200 ready with sessions", st == 200 and h["status"] == "ready" and
          h["sessions"]["max"] >= 1 and "in_use" in h["sessions"], body)
    st, ct, body = get("/v1/models")
    m = json.loads(body)
    check("/v1/models lists the served model", st == 200 and m["object"] == "list" and
          [d["id"] for d in m["data"]][0] == MODEL and m["data"][0]["object"] == "model", body)
    st, ct, body = get("/nope")
    check("unknown path -> 404 JSON error", st == 404 and "error" in json.loads(body), body)
    import http.client
    hc = http.client.HTTPConnection(HOST, PORT, timeout=10)
    codes = []
    for p in ["/health", "/nope", "/v1/models", "/metrics", "/health"]:
        hc.request("GET", p)
        r = hc.getresponse()
        r.read()
        codes.append(r.status)
    check("five GETs on one keep-alive connection (one a 404)", codes == [200, 404, 200, 200, 200],
          str(codes))
    hc.close()
    rate, pcm = read_pcm(sys.argv[3])
    ref = json.load(open(sys.argv[4]))
    ref["text"] = norm(ref["text"])
    vllm_roundtrip(pcm, rate, ref)
    mistral_roundtrip(pcm, rate, ref, "")
    if len(sys.argv) > 6:
        rate2, pcm2 = read_pcm(sys.argv[5])
        ref2 = json.load(open(sys.argv[6]))
        ref2["text"] = norm(ref2["text"])
        mistral_roundtrip(pcm2, rate2, ref2, " %d Hz" % rate2)
    concurrent(pcm, ref)
    st, ct, body = get("/metrics")
    met = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            met[k] = float(v)
    check("/metrics is Prometheus text with the session and audio counters",
          st == 200 and ct.startswith("text/plain") and met.get("vox_sessions_total{kind=\"asr\"}", 0) >= 3
          and met.get("vox_audio_in_seconds_total", 0) >= 3 * len(pcm) / 2 / rate - 0.01 and
          met.get("vox_asr_step_seconds_count", 0) > 0 and
          met.get("vox_errors_total{kind=\"invalid_json\"}", 0) >= 1, str(met)[:300])
    print("server_check: %d failed" % fails)
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
