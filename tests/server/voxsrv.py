"""Shared helpers for the vox-server tests (Python standard library only).

Starts vox-server on a free loopback port with tiny generated models, makes test speech with
espeak-ng + sox, runs vox-transcribe for the expected transcript, and speaks HTTP and WebSocket
(RFC 6455 framing written here, both blocking and asyncio) so that the hostile-input, load and
page tests need nothing from PyPI. Every network call has a timeout.
"""

import asyncio
import atexit
import base64
import ctypes
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import wave

SRC = os.environ.get("VOX_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("VOX_BIN", os.path.join(SRC, "build", "bin"))
SKIP = 77
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def log(*a):
    print(*a, flush=True)


class Fail(Exception):
    pass


class Checks:
    """Counts named checks; a failed check prints FAIL with the detail and the test exits 1."""

    def __init__(self, name):
        self.name, self.passed, self.failed = name, 0, []

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
            log("ok   %s" % what)
        else:
            self.failed.append(what)
            log("FAIL: %s%s" % (what, (": " + detail) if detail else ""))
        return ok

    def stop(self, srv):
        """SIGTERM the server: it must exit 0 within its grace period (log tail on failure)."""
        rc = srv.stop()
        self.check("SIGTERM: server exits 0", rc == 0, "%s\n%s" % (rc, srv.log_tail()))

    def done(self):
        log("%s: %d passed, %d failed" % (self.name, self.passed, len(self.failed)))
        sys.exit(1 if self.failed else 0)


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=timeout, check=True, **kw)


def tmpdir(prefix):
    """A scratch directory removed at exit (kept when VOX_KEEP_TMP is set, for post-mortems)."""
    d = tempfile.mkdtemp(prefix=prefix)
    if not os.environ.get("VOX_KEEP_TMP"):
        atexit.register(shutil.rmtree, d, True)
    return d


# ---- models, audio, reference transcripts ------------------------------------------------

def make_models(tmp, seed=7, tts=True):
    asr = os.path.join(tmp, "asr")
    run([os.path.join(BIN, "vox-mkmodel"), "--kind", "realtime", "--out", asr, "--seed", str(seed)])
    ttsdir = None
    if tts:
        ttsdir = os.path.join(tmp, "tts")
        run([os.path.join(BIN, "vox-mkmodel"), "--kind", "tts", "--out", ttsdir, "--seed", str(seed)])
    return asr, ttsdir


def make_speech(tmp, text, name="speech", rate=16000):
    """espeak-ng speech resampled by sox to `rate` Hz mono s16 WAV; returns its path."""
    raw = os.path.join(tmp, name + "_espeak.wav")
    out = os.path.join(tmp, "%s_%d.wav" % (name, rate))
    run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", raw, text])
    run(["sox", raw, "-r", str(rate), "-c", "1", "-b", "16", out])
    return out


def wav_pcm(path):
    """(s16le mono bytes, rate) of a WAV file."""
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise Fail("%s: want mono s16" % path)
        return w.readframes(w.getnframes()), w.getframerate()


def write_wav(path, pcm, rate=16000):
    """s16le mono bytes to a WAV file."""
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def transcribe(model, path, fmt="txt", extra=()):
    """vox-transcribe's output on the file: the independent expectation for every server test."""
    r = run([os.path.join(BIN, "vox-transcribe"), "-m", model, "--device", "cpu", "-f", fmt, *extra, path])
    return r.stdout.decode("utf-8", "replace")


def norm(text):
    return text.strip()


# ---- the server process ------------------------------------------------------------------

def die_with_parent():
    """In a child before exec: SIGKILL it when the test process dies (a ctest timeout kills the
    test with SIGKILL; no server or browser may outlive it)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    """vox-server on 127.0.0.1:<free port>; stderr goes to a log file shown on failure."""

    def __init__(self, tmp, asr, tts=None, args=()):
        self.tmp, self.asr, self.tts, self.args = tmp, asr, tts, list(args)
        self.proc, self.port = None, None
        self.logpath = os.path.join(tmp, "server.log")

    def start(self, timeout=30):
        exe = os.path.join(BIN, "vox-server")
        if not os.access(exe, os.X_OK):
            raise Fail("%s not built" % exe)
        self.port = free_port()
        cmd = [exe, "-m", self.asr, "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"]
        if self.tts:
            cmd += ["--tts-model", self.tts]
        cmd += self.args
        self.logf = open(self.logpath, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.logf, stderr=self.logf, stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Fail("vox-server exited %d at start-up:\n%s" % (self.proc.returncode, self.log_tail()))
            try:
                st, _, body = self.http("GET", "/health", timeout=2)
                if st == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise Fail("vox-server not healthy within %d s:\n%s" % (timeout, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def healthy(self):
        """(ok, detail): process running and GET /health answers 200 with JSON."""
        if not self.alive():
            return False, "process exited with %s" % self.proc.returncode
        try:
            st, _, body = self.http("GET", "/health", timeout=5)
        except OSError as e:
            return False, "GET /health: %s" % e
        if st != 200:
            return False, "GET /health status %d: %r" % (st, body[:200])
        try:
            json.loads(body)
        except ValueError:
            return False, "GET /health body is not JSON: %r" % body[:200]
        return True, ""

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def stop(self, timeout=20):
        """SIGTERM; returns the exit status (the server must exit 0 within its grace period)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return "killed after %d s" % timeout
        self.logf.close()
        return self.proc.returncode

    def log_tail(self, n=30):
        try:
            with open(self.logpath, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def http(self, method, path, body=None, headers=None, timeout=30):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()


def multipart(fields, files):
    """multipart/form-data body: fields {name: str}, files {name: (filename, bytes, type)}."""
    b = "----voxtest%d" % int(time.monotonic() * 1e6)
    out = []
    for k, v in fields.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (b, k, v)).encode())
    for k, (fn, data, ctype) in files.items():
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: %s\r\n\r\n" % (b, k, fn, ctype)).encode() + data + b"\r\n")
    out.append(("--%s--\r\n" % b).encode())
    return b"".join(out), "multipart/form-data; boundary=" + b


# ---- WebSocket framing (RFC 6455), shared by the blocking and asyncio clients --------------

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def frame(opcode, payload, fin=True, mask=True, length=None):
    """One client frame; `length` overrides the declared payload length (hostile tests)."""
    n = len(payload) if length is None else length
    h = bytearray([(0x80 if fin else 0) | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        h.append(m | n)
    elif n < 65536:
        h.append(m | 126)
        h += struct.pack(">H", n)
    else:
        h.append(m | 127)
        h += struct.pack(">Q", n)
    if not mask:
        return bytes(h) + payload
    key = os.urandom(4)
    return bytes(h) + key + mask_bytes(payload, key)


def mask_bytes(data, key):
    if not data:
        return b""
    k = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(len(data), "little")


def handshake_request(port, path, key, headers=None):
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port, "Upgrade: websocket",
             "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    for k, v in (headers or {}).items():
        lines.append("%s: %s" % (k, v))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def accept_of(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


class WSClosed(Exception):
    pass


class WS:
    """Blocking WebSocket client over a raw socket (no extensions, no subprotocol)."""

    def __init__(self, port, path, timeout=10, headers=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.close_code = None
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(handshake_request(port, path, key, headers))
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                raise WSClosed("closed during handshake")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
        if self.status != 101:
            raise WSClosed("handshake status %d: %s" % (self.status, lines[0]))
        if self.headers.get("sec-websocket-accept") != accept_of(key):
            raise WSClosed("bad Sec-WebSocket-Accept")

    def send(self, opcode, payload, **kw):
        self.sock.sendall(frame(opcode, payload, **kw))

    def send_json(self, obj):
        self.send(OP_TEXT, json.dumps(obj).encode())

    def _need(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise WSClosed("connection closed by server")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        b0, b1 = self._need(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._need(8))[0]
        key = self._need(4) if b1 & 0x80 else None
        data = self._need(n)
        if key:
            data = mask_bytes(data, key)
        return bool(b0 & 0x80), b0 & 0x0F, data

    def recv(self, timeout=None):
        """(opcode, payload) of the next data message; answers pings; WSClosed on close."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        parts, op0 = [], None
        while True:
            fin, op, data = self.recv_frame()
            if op == OP_PING:
                self.send(OP_PONG, data)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                self.close_code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005
                self.close_reason = data[2:].decode("utf-8", "replace")
                try:
                    self.send(OP_CLOSE, data[:2])
                except OSError:
                    pass
                raise WSClosed("close %s %s" % (self.close_code, self.close_reason))
            if op != OP_CONT:
                op0 = op
            parts.append(data)
            if fin:
                return op0, b"".join(parts)

    def recv_json(self, timeout=None):
        op, data = self.recv(timeout)
        if op != OP_TEXT:
            raise Fail("expected a text frame, got opcode %d (%d bytes)" % (op, len(data)))
        return json.loads(data)

    def recv_until(self, types, timeout=30):
        """Messages until one whose type is in `types`; returns (all messages, last)."""
        deadline = time.monotonic() + timeout
        got = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Fail("timeout waiting for %s; got %s" % (types, [m.get("type") for m in got][-10:]))
            m = self.recv_json(left)
            got.append(m)
            if m.get("type") in types:
                return got, m

    def close(self, code=1000):
        try:
            self.send(OP_CLOSE, struct.pack(">H", code))
            self.sock.settimeout(2)
            while True:
                self.recv_frame()
        except (OSError, WSClosed, ValueError):
            pass
        finally:
            self.sock.close()


class AWS:
    """asyncio WebSocket client with the same framing (load test: many sockets, one thread)."""

    @classmethod
    async def connect(cls, port, path, timeout=10):
        self = cls()
        self.r, self.w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.w.write(handshake_request(port, path, key))
        head = await asyncio.wait_for(self.r.readuntil(b"\r\n\r\n"), timeout)
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        if int(line.split()[1]) != 101:
            raise WSClosed("handshake: " + line)
        if accept_of(key).encode() not in head:
            raise WSClosed("bad Sec-WebSocket-Accept")
        return self

    async def send(self, opcode, payload):
        self.w.write(frame(opcode, payload))
        await self.w.drain()

    async def send_json(self, obj):
        await self.send(OP_TEXT, json.dumps(obj).encode())

    async def recv(self):
        parts, op0 = [], None
        while True:
            b0, b1 = await self.r.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", await self.r.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", await self.r.readexactly(8))[0]
            key = await self.r.readexactly(4) if b1 & 0x80 else None
            data = await self.r.readexactly(n)
            if key:
                data = mask_bytes(data, key)
            op = b0 & 0x0F
            if op == OP_PING:
                await self.send(OP_PONG, data)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                raise WSClosed("close %s" % (struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005))
            if op != OP_CONT:
                op0 = op
            parts.append(data)
            if b0 & 0x80:
                return op0, b"".join(parts)

    async def recv_json(self):
        op, data = await self.recv()
        return json.loads(data)

    async def close(self):
        try:
            self.w.write(frame(OP_CLOSE, struct.pack(">H", 1000)))
            await asyncio.wait_for(self.w.drain(), 2)
        except (OSError, asyncio.TimeoutError):
            pass
        self.w.close()
        try:
            await asyncio.wait_for(self.w.wait_closed(), 2)
        except (OSError, asyncio.TimeoutError):
            pass


# ---- one normal session of each protocol (the "server still works" probe) ----------------

def b64(pcm):
    return base64.b64encode(pcm).decode()


def vllm_session(port, pcm, model, chunk=3200, timeout=60):
    """vLLM /v1/realtime: session.update, commit (start), appends, commit final -> done text."""
    ws = WS(port, "/v1/realtime", timeout=timeout)
    try:
        first = ws.recv_json(timeout)
        if first.get("type") != "session.created":
            raise Fail("vllm: first event %r" % first)
        ws.send_json({"type": "session.update", "model": model})
        ws.send_json({"type": "input_audio_buffer.commit"})
        for i in range(0, len(pcm), chunk):
            ws.send_json({"type": "input_audio_buffer.append", "audio": b64(pcm[i:i + chunk])})
        ws.send_json({"type": "input_audio_buffer.commit", "final": True})
        msgs, last = ws.recv_until({"transcription.done", "error"}, timeout)
        if last["type"] == "error":
            raise Fail("vllm: error %r" % last)
        deltas = "".join(m.get("delta", "") for m in msgs if m.get("type") == "transcription.delta")
        return last.get("text", ""), deltas, msgs
    finally:
        ws.close()


def health_sessions(srv):
    """(sessions in use, /health JSON): {"status", "sessions": {"in_use", "max"}, ...}."""
    st, _, b = srv.http("GET", "/health", timeout=5)
    h = json.loads(b)
    s = h.get("sessions")
    return (s.get("in_use") if isinstance(s, dict) else s), h


def wait_idle(srv, timeout=15):
    """Polls /health until no session is in use; (True, json) or (False, last json)."""
    deadline = time.monotonic() + timeout
    h = None
    while time.monotonic() < deadline:
        n, h = health_sessions(srv)
        if n == 0:
            return True, h
        time.sleep(0.2)
    return False, h


def server_model_name(srv):
    """The served model id from GET /v1/models (OpenAI list shape)."""
    st, _, body = srv.http("GET", "/v1/models", timeout=10)
    if st != 200:
        raise Fail("GET /v1/models: %d" % st)
    data = json.loads(body).get("data") or []
    if not data:
        raise Fail("GET /v1/models lists no model: %r" % body[:200])
    return data[0]["id"]
