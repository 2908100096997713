#!/usr/bin/env python3
"""wsclient.py - a tiny WebSocket client (RFC 6455) on the Python standard library only, for
the server tests: handshake, masked client frames, fragmented and control frames on receive.

    ws = WS("127.0.0.1", 8080, "/v1/realtime")     # connects and upgrades (raises on non-101)
    ws.send_text('{"type":"session.update"}')      # or send_binary(b"..."), send_frame(...)
    kind, data = ws.recv(timeout=10)                # ("text", str) / ("binary", bytes) /
                                                    # ("close", (code, reason)); None on timeout
    ws.close()

As a program:  wsclient.py HOST PORT PATH [MESSAGE...]  sends each message and prints every
message received until the server closes or 5 s pass without one.
"""
import base64
import os
import socket
import struct
import sys


class WSError(Exception):
    pass


class WS:
    def __init__(self, host, port, path, timeout=10.0, headers=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n"
               % (path, host, port, key, extra))
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WSError("connection closed during the handshake: %r" % head)
            head += chunk
        head, self.buf = head.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise WSError("handshake refused: %s" % status.decode(errors="replace"))
        self.status = status.decode()
        self.closed = False

    # -- sending (client frames are masked) --
    def send_frame(self, opcode, payload, fin=True):
        hdr = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
            _mask_fast(payload, mask)
        self.sock.sendall(hdr + mask + masked)

    def send_text(self, s):
        self.send_frame(0x1, s.encode() if isinstance(s, str) else s)

    def send_binary(self, b):
        self.send_frame(0x2, b)

    # -- receiving --
    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WSError("connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self, timeout=10.0):
        """Next data message or close; answers pings. None on timeout."""
        self.sock.settimeout(timeout)
        parts, kind = [], None
        try:
            while True:
                b0, b1 = self._read(2)
                op, n = b0 & 0x0F, b1 & 0x7F
                if n == 126:
                    n = struct.unpack(">H", self._read(2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", self._read(8))[0]
                if b1 & 0x80:
                    raise WSError("server frames must not be masked")
                data = self._read(n)
                if op == 0x8:
                    code = struct.unpack(">H", data[:2])[0] if len(data) >= 2 else 1005
                    self.closed = True
                    return ("close", (code, data[2:].decode(errors="replace")))
                if op == 0x9:
                    self.send_frame(0xA, data)
                    continue
                if op == 0xA:
                    continue
                if op in (0x1, 0x2):
                    kind, parts = ("text" if op == 0x1 else "binary"), [data]
                elif op == 0x0:
                    parts.append(data)
                if b0 & 0x80:
                    msg = b"".join(parts)
                    return (kind, msg.decode() if kind == "text" else msg)
        except socket.timeout:
            return None

    def close(self, code=1000):
        try:
            if not self.closed:
                self.send_frame(0x8, struct.pack(">H", code))
        except OSError:
            pass
        self.sock.close()


def _mask_fast(payload, mask):
    n = len(payload)
    m = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ m).to_bytes(n, "little")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    ws = WS(sys.argv[1], int(sys.argv[2]), sys.argv[3])
    for m in sys.argv[4:]:
        ws.send_text(m)
    while True:
        r = ws.recv(timeout=5)
        if r is None:
            break
        print(r[0], r[1])
        if r[0] == "close":
            break
    ws.close()
