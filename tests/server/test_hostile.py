"""Issue 6 acceptance 4: hostile input, each answered with an error event or an HTTP error status
(or a WebSocket close with a code), and the server unharmed.

After every case: the process is alive, GET /health answers 200 JSON, and a normal vLLM session
on a new connection still gives vox-transcribe's transcript of the probe clip. Cases: malformed
JSON, wrong types, bad base64, binary and invalid UTF-8 where text is expected, a frame that
declares 50 MB, an over-long fragmented message, a client that never reads while the server
streams to it, abrupt disconnects mid-stream (ASR, TTS, HTTP upload, handshake), uploads that
are not audio, malformed HTTP requests and oversized headers. Python standard library only.
"""

import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import voxsrv as V  # noqa: E402

T = V.Checks("test_server_hostile")
REPLY_S = 10  # every hostile input must be answered within this many seconds


def reply_of(ws, timeout=REPLY_S):
    """What the server answered: ("error", event), ("close", code), ("eof", detail) or
    ("timeout", last messages). Non-error events (session.updated, ...) are skipped."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", seen
        try:
            m = ws.recv_json(left)
        except V.WSClosed:
            if ws.close_code is not None:
                return "close", ws.close_code
            return "eof", "closed without a close frame"
        except (ConnectionError, OSError) as e:
            if isinstance(e, socket.timeout):
                return "timeout", seen
            return "eof", str(e)
        except (ValueError, V.Fail) as e:
            return "garbage", str(e)
        seen.append(m)
        if m.get("type") == "error":
            return "error", m


def answered(kind):
    return kind in ("error", "close")


class Case:
    def __init__(self, srv, probe_pcm, probe_want, model):
        self.srv, self.pcm, self.want, self.model = srv, probe_pcm, probe_want, model

    def after(self, name):
        ok, why = self.srv.healthy()
        T.check("%s: server healthy afterwards" % name, ok, why + "\n" + self.srv.log_tail())
        if not ok:
            return False
        try:
            text, deltas, _ = V.vllm_session(self.srv.port, self.pcm, self.model, timeout=30)
            T.check("%s: a normal session afterwards gives vox-transcribe's text" % name,
                    V.norm(text) == self.want, "%r vs %r" % (text, self.want))
        except (V.Fail, V.WSClosed, OSError) as e:
            T.check("%s: a normal session afterwards works" % name, False, str(e))
        return True

    # ---- WebSocket sessions ------------------------------------------------------------------
    def vllm(self, update=True, start=True):
        ws = V.WS(self.srv.port, "/v1/realtime", timeout=REPLY_S)
        first = ws.recv_json(REPLY_S)
        assert first.get("type") == "session.created", first
        if update:
            ws.send_json({"type": "session.update", "model": self.model})
        if start:
            ws.send_json({"type": "input_audio_buffer.commit"})
        return ws

    def mistral(self, update=True):
        ws = V.WS(self.srv.port, "/v1/audio/transcriptions/realtime?model=" + self.model, timeout=REPLY_S)
        first = ws.recv_json(REPLY_S)
        assert first.get("type") == "session.created", first
        if update:
            ws.send_json({"type": "session.update",
                          "session": {"audio_format": {"encoding": "pcm_s16le", "sample_rate": 16000}}})
        return ws

    def finish_vllm_on(self, ws, name):
        """The same socket still transcribes correctly after a recoverable error."""
        try:
            for i in range(0, len(self.pcm), 3200):
                ws.send_json({"type": "input_audio_buffer.append", "audio": V.b64(self.pcm[i:i + 3200])})
            ws.send_json({"type": "input_audio_buffer.commit", "final": True})
            msgs, last = ws.recv_until({"transcription.done", "error"}, 30)
            T.check("%s: the session goes on after the error (same socket, right text)" % name,
                    last["type"] == "transcription.done" and V.norm(last.get("text", "")) == self.want,
                    "%r" % last)
        except (V.Fail, V.WSClosed, OSError) as e:
            T.check("%s: the session goes on after the error" % name, False, str(e))


def ws_cases(C):
    # -- vLLM protocol: recoverable errors keep the session (vLLM sends an error event, code)
    recoverable = [
        ("vllm malformed JSON", b'{"type": "input_audio_buffer.append", "audio": ', "invalid_json"),
        ("vllm JSON array", b'[1, 2, 3]', None),
        ("vllm JSON string", b'"hello"', None),
        ("vllm type is a number", b'{"type": 5}', None),
        ("vllm unknown event", b'{"type": "no.such.event"}', "unknown_event"),
        ("vllm audio is a number", b'{"type": "input_audio_buffer.append", "audio": 123}', None),
        ("vllm bad base64", b'{"type": "input_audio_buffer.append", "audio": "!!not*base64@@"}', "invalid_audio"),
        ("vllm NUL inside JSON", b'{"type": "input_audio_buffer.append\x00", "audio": ""}', None),
        ("vllm deep nesting", b'{"a":' * 10000 + b'1' + b'}' * 10000, None),
    ]
    for name, payload, code in recoverable:
        ws = C.vllm()
        ws.send(V.OP_TEXT, payload)
        kind, m = reply_of(ws)
        T.check("%s: answered with an error event" % name, kind == "error", "%s %r" % (kind, m))
        if kind == "error":
            T.check("%s: error event has a message" % name,
                    isinstance(m.get("error"), (str, dict)) and bool(m.get("error")), repr(m))
            if code:
                T.check("%s: error code %s (vLLM's)" % (name, code), m.get("code") == code, repr(m))
            C.finish_vllm_on(ws, name)
        ws.close()
        C.after(name)

    ws = C.vllm(update=False, start=False)
    ws.send_json({"type": "input_audio_buffer.commit"})
    kind, m = reply_of(ws)
    T.check("vllm commit before session.update: error model_not_validated",
            kind == "error" and m.get("code") == "model_not_validated", "%s %r" % (kind, m))
    ws.close()
    ws = C.vllm(update=False, start=False)
    ws.send_json({"type": "session.update", "model": "no-such-model"})
    ws.send_json({"type": "input_audio_buffer.commit"})
    kind, m = reply_of(ws)
    T.check("vllm unknown model name: error event", kind == "error", "%s %r" % (kind, m))
    ws.close()
    C.after("vllm session.update errors")

    # -- Mistral protocol
    for name, msg in (
        ("mistral sample_rate is a string", {"type": "session.update", "session": {
            "audio_format": {"encoding": "pcm_s16le", "sample_rate": "fast"}}}),
        ("mistral sample_rate 0", {"type": "session.update", "session": {
            "audio_format": {"encoding": "pcm_s16le", "sample_rate": 0}}}),
        ("mistral unknown encoding", {"type": "session.update", "session": {
            "audio_format": {"encoding": "mp9", "sample_rate": 16000}}}),
        ("mistral session is a list", {"type": "session.update", "session": [1]}),
        ("mistral bad base64", {"type": "input_audio.append", "audio": "%%%%"}),
        ("mistral audio is null", {"type": "input_audio.append", "audio": None}),
    ):
        ws = C.mistral(update=not name.startswith("mistral sample") and "encoding" not in name
                       and "list" not in name)
        ws.send_json(msg)
        kind, m = reply_of(ws)
        T.check("%s: answered with an error event" % name, kind == "error", "%s %r" % (kind, m))
        if kind == "error":
            e = m.get("error")
            T.check("%s: error is {message, code:int} (mistralai parses it)" % name,
                    isinstance(e, dict) and "message" in e and isinstance(e.get("code"), int), repr(m))
        ws.close()
        C.after(name)

    # -- binary and invalid UTF-8 where text (JSON) is expected
    for proto in ("vllm", "mistral"):
        ws = C.vllm() if proto == "vllm" else C.mistral()
        ws.send(V.OP_BIN, os.urandom(3000))
        kind, m = reply_of(ws)
        T.check("%s binary frame: error event or close" % proto, answered(kind), "%s %r" % (kind, m))
        ws.close()
        ws = C.vllm() if proto == "vllm" else C.mistral()
        ws.send(V.OP_TEXT, b'{"type": "\xff\xfe\xc3"}')
        kind, m = reply_of(ws)
        T.check("%s invalid UTF-8 text: error event or close" % proto, answered(kind), "%s %r" % (kind, m))
        ws.close()
        C.after("%s binary / invalid UTF-8" % proto)

    # -- a frame that declares 50 MB: part of it is streamed, the server must refuse it
    for path in ("/v1/realtime", "/v1/audio/transcriptions/realtime?model=" + C.model):
        rss0 = C.srv.rss_kb()
        ws = V.WS(C.srv.port, path, timeout=REPLY_S)
        ws.recv_json(REPLY_S)
        n = 50 * 1024 * 1024
        ws.sock.sendall(V.frame(V.OP_TEXT, b"", length=n))  # header + mask key; the payload follows
        sent, chunk, t0 = 0, b'{"type":"input_audio_buffer.append","audio":"' + b"A" * 65536, time.monotonic()
        refused = False
        try:
            while sent < 20 * 1024 * 1024 and time.monotonic() - t0 < REPLY_S:
                ws.sock.settimeout(REPLY_S)
                ws.sock.sendall(chunk)  # masked with the wrong key on purpose: content is junk anyway
                sent += len(chunk)
        except OSError:
            refused = True
        kind, m = reply_of(ws)
        T.check("50 MB frame on %s: refused (close / error / reset) after %.1f MB" % (path.split("?")[0], sent / 1e6),
                refused or kind in ("error", "close", "eof"), "%s %r" % (kind, m))
        ws.sock.close()
        time.sleep(0.5)
        grow = (C.srv.rss_kb() - rss0) / 1024
        T.check("50 MB frame: server RSS grew < 64 MB (%.1f MB)" % grow, grow < 64)
        C.after("50 MB frame " + path.split("?")[0])

    # -- one message fragmented into 1 MB continuation frames, beyond any sane message size
    ws = C.vllm()
    refused = False
    try:
        ws.send(V.OP_TEXT, b'{"type":"input_audio_buffer.append","audio":"', fin=False)
        for i in range(40):
            ws.send(V.OP_CONT, b"A" * (1 << 20), fin=False)
    except OSError:
        refused = True
    kind, m = reply_of(ws)
    T.check("40 MB fragmented message: refused", refused or kind in ("error", "close", "eof"), "%s %r" % (kind, m))
    ws.sock.close()
    C.after("40 MB fragmented message")

    # -- control frames: ping gets a pong, an oversized (>125 B) ping is a protocol error
    ws = C.vllm()
    ws.send(V.OP_PING, b"abc")
    try:
        fin, op, data = ws.recv_frame()
        T.check("ping answered with pong", op == V.OP_PONG and data == b"abc", "%d %r" % (op, data))
    except (OSError, V.WSClosed) as e:
        T.check("ping answered", False, str(e))
    ws.close()
    ws = C.vllm()
    ws.send(V.OP_PING, b"x" * 200)
    kind, m = reply_of(ws)
    T.check("200-byte ping: connection closed", kind in ("close", "eof"), "%s %r" % (kind, m))
    ws.sock.close()
    C.after("control frames")


def slow_and_abrupt(C):
    # -- a client that never reads: ASR with a stream of deltas and a TTS stream over HTTP
    long_pcm = C.pcm * 40
    ws = C.vllm()
    for i in range(0, len(long_pcm), 32000):
        ws.send_json({"type": "input_audio_buffer.append", "audio": V.b64(long_pcm[i:i + 32000])})
    ws.send_json({"type": "input_audio_buffer.commit", "final": True})
    # the never-reading TTS client: a long text whose audio is far more than the socket buffers
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.settimeout(REPLY_S)
    s.connect(("127.0.0.1", C.srv.port))
    body = json.dumps({"model": "tts", "input": "This sentence is spoken again and again. " * 60,
                       "response_format": "pcm"}).encode()
    s.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    # and a pipelining HTTP client: 20000 GET /metrics in one stream, no response ever read
    # (about 40 MB of responses; the server must stop reading it, not queue them)
    p = socket.socket()
    p.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    p.settimeout(REPLY_S)
    p.connect(("127.0.0.1", C.srv.port))
    p.setblocking(False)
    reqs, off, t_end = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 20000, 0, time.monotonic() + 3
    while off < len(reqs) and time.monotonic() < t_end:
        try:
            off += p.send(reqs[off:off + 65536])
        except BlockingIOError:
            time.sleep(0.05)
    V.log("pipelining client: %d of %d request bytes accepted before the server stopped reading"
          % (off, len(reqs)))
    rss_slow = C.srv.rss_kb()
    time.sleep(2)
    t0 = time.monotonic()
    C.after("slow clients (while they stall)")
    T.check("slow clients: other sessions served while they stall (%.1f s)" % (time.monotonic() - t0),
            time.monotonic() - t0 < 30)
    grow = (C.srv.rss_kb() - rss_slow) / 1024
    T.check("slow clients: server RSS grew < 32 MB while they stalled (%.1f MB)" % grow, grow < 32)
    s.close()
    p.close()
    ws.sock.close()
    C.after("slow clients gone")

    # -- abrupt disconnects: RST (SO_LINGER 0) mid-stream, mid-handshake, mid-upload
    def rst(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()

    for i in range(5):
        ws = C.vllm()
        for j in range(0, len(C.pcm) // 2, 3200):
            ws.send_json({"type": "input_audio_buffer.append", "audio": V.b64(C.pcm[j:j + 3200])})
        if i % 2:
            ws.send_json({"type": "input_audio_buffer.commit", "final": True})
        rst(ws.sock)
        ws = C.mistral()
        ws.send_json({"type": "input_audio.append", "audio": V.b64(C.pcm)})
        ws.send_json({"type": "input_audio.flush"})
        rst(ws.sock)
    s = socket.create_connection(("127.0.0.1", C.srv.port), timeout=REPLY_S)
    s.sendall(b"GET /v1/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
    rst(s)
    s = socket.create_connection(("127.0.0.1", C.srv.port), timeout=REPLY_S)
    body, ctype = V.multipart({"model": C.model}, {"file": ("a.wav", C.wav_bytes, "audio/wav")})
    s.sendall(("POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
               "Content-Length: %d\r\n\r\n" % (ctype, len(body))).encode() + body[: len(body) // 2])
    rst(s)
    s = socket.create_connection(("127.0.0.1", C.srv.port), timeout=REPLY_S)
    body = json.dumps({"model": "tts", "input": "Hello there, a long sentence. " * 20}).encode()
    s.sendall(b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    try:
        s.recv(100)  # the response has started
    except OSError:
        pass
    rst(s)
    C.after("abrupt disconnects")
    # every session of a vanished client is freed: /health's session count goes back to 0
    ok, h = V.wait_idle(C.srv, 10)
    T.check("abrupt disconnects: /health sessions back to 0 within 10 s", ok, repr(h))


def http_cases(C):
    srv = C.srv
    # -- uploads that are not audio: 4xx with a JSON error
    for name, files, fields in (
        ("upload of text", {"file": ("notes.wav", b"this is not audio at all\n" * 100, "audio/wav")}, {}),
        ("upload of random bytes", {"file": ("x.mp3", os.urandom(50000), "audio/mpeg")}, {}),
        ("upload of an empty file", {"file": ("e.wav", b"", "audio/wav")}, {}),
        ("upload of a truncated WAV header", {"file": ("t.wav", C.wav_bytes[:30], "audio/wav")}, {}),
        ("upload without a file field", {}, {"response_format": "json"}),
        ("upload with a bad response_format", {"file": ("a.wav", C.wav_bytes, "audio/wav")},
         {"response_format": "klingon"}),
    ):
        fields = dict(fields, model=C.model)
        body, ctype = V.multipart(fields, files)
        st, hd, b = srv.http("POST", "/v1/audio/transcriptions", body, {"Content-Type": ctype})
        T.check("%s: 4xx (got %d)" % (name, st), 400 <= st < 500, repr(b[:200]))
        try:
            j = json.loads(b)
            T.check("%s: JSON error with a message" % name, isinstance(j.get("error"), (dict, str)), repr(b[:200]))
        except ValueError:
            T.check("%s: body is a JSON error" % name, False, repr(b[:200]))
        C.after(name)
    for name, body, ctype in (
        ("transcriptions: JSON body, not multipart", b'{"file": "x"}', "application/json"),
        ("transcriptions: multipart without boundary", b"--x\r\n\r\n", "multipart/form-data"),
        ("transcriptions: multipart never closed", b"--abc\r\nContent-Disposition: form-data; name=\"file\"; "
         b"filename=\"a.wav\"\r\n\r\n" + b"RIFF" * 100, "multipart/form-data; boundary=abc"),
        ("speech: malformed JSON", b'{"input": "hi", ', "application/json"),
        ("speech: input is a number", b'{"model": "tts", "input": 5}', "application/json"),
        ("speech: empty input", b'{"model": "tts", "input": ""}', "application/json"),
        ("speech: unknown voice", b'{"model": "tts", "input": "hi", "voice": "nobody-here"}', "application/json"),
        ("speech: unknown response_format", b'{"model": "tts", "input": "hi", "response_format": "wma"}',
         "application/json"),
    ):
        path = "/v1/audio/transcriptions" if name.startswith("transcriptions") else "/v1/audio/speech"
        st, hd, b = srv.http("POST", path, body, {"Content-Type": ctype})
        T.check("%s: 4xx (got %d)" % (name, st), 400 <= st < 500, repr(b[:200]))
    C.after("HTTP bodies")

    # -- malformed HTTP and oversized headers: an error status or a closed connection, never a hang
    def raw(req, timeout=REPLY_S):
        """("ok", response) once a whole response (headers + Content-Length body) or EOF came,
        ("reset", ...) on a reset, ("timeout", partial) when the server neither answers nor closes."""
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
        got = b""
        try:
            s.sendall(req)
            if not req.endswith(b"\r\n\r\n"):
                s.shutdown(socket.SHUT_WR)
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += d
                if b"\r\n\r\n" in got:
                    head, rest = got.split(b"\r\n\r\n", 1)
                    cl = [l for l in head.lower().split(b"\r\n") if l.startswith(b"content-length:")]
                    if not cl or len(rest) >= int(cl[0].split(b":")[1]):
                        break
        except socket.timeout:
            return "timeout", got
        except OSError as e:
            return "reset", got or str(e).encode()
        finally:
            s.close()
        return "ok", got

    def status_of(got):
        try:
            return int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.") else None
        except (IndexError, ValueError):
            return None

    for name, req in (
        ("garbage request line", b"GARBAGE\r\n\r\n"),
        ("binary junk", os.urandom(4000)),
        ("8 KB URL", b"GET /" + b"a" * 8192 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("64 KB header", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 65536 + b"\r\n\r\n"),
        ("2000 headers", b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(2000)) + b"\r\n"),
        ("negative Content-Length", b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
        ("huge Content-Length", b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
         b"Content-Type: multipart/form-data; boundary=a\r\nContent-Length: 99999999999\r\n\r\n--a"),
        ("bad chunked encoding", b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n"),
        ("websocket upgrade without a key", b"GET /v1/realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
         b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"),
        ("unknown path", b"GET /no/such/path HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("wrong method on /v1/audio/speech", b"DELETE /v1/audio/speech HTTP/1.1\r\nHost: x\r\n\r\n"),
    ):
        how, got = raw(req)
        st = status_of(got)
        if name == "unknown path":
            T.check("%s: 404 (got %s)" % (name, st), st == 404, repr(got[:120]))
        elif name.startswith("wrong method"):
            T.check("%s: 404/405 (got %s)" % (name, st), st in (404, 405), repr(got[:120]))
        else:
            T.check("%s: 4xx/5xx or closed, no hang (%s, status %s)" % (name, how, st),
                    how != "timeout" and (st is None or st >= 400), repr(got[:120]))
        C.after(name)


def main():
    tmp = V.tmpdir("vox_srv_hostile_")
    asr, tts = V.make_models(tmp)
    wav = V.make_speech(tmp, "Testing one two three.", "probe")
    pcm, rate = V.wav_pcm(wav)
    want = V.norm(V.transcribe(asr, wav))
    T.check("the probe's reference transcript is not empty", len(want) > 5)
    srv = V.Server(tmp, asr, tts).start()
    try:
        C = Case(srv, pcm, want, V.server_model_name(srv))
        with open(wav, "rb") as f:
            C.wav_bytes = f.read()
        rss0 = srv.rss_kb()
        for part in (ws_cases, slow_and_abrupt, http_cases):
            try:
                part(C)
            except Exception as e:  # a crash of the harness is a failure, reported with the log
                T.check("%s: ran to the end" % part.__name__, False,
                        "%s: %s\n%s" % (type(e).__name__, e, srv.log_tail()))
                if not srv.alive():
                    break
        if srv.alive():
            log_rss = (srv.rss_kb() - rss0) / 1024
            V.log("RSS after all hostile cases: %+.1f MB vs start" % log_rss)
    finally:
        T.stop(srv)
    T.done()


if __name__ == "__main__":
    main()
