"""Issue 6 acceptance 3: load on loopback, bounded in count and time (stdlib asyncio, own framing).

Phase 1: N concurrent streaming clients (default 32; half vLLM /v1/realtime, half Mistral
/v1/audio/transcriptions/realtime) each send S seconds (default 60) of 16 kHz s16 speech in
100 ms appends paced at real time, read deltas as they come, then end the stream. Checks, per
client: no error event, a done event, the audio the server says it received equals the bytes sent
(every appended byte accounted for), and the final transcript equals vox-transcribe's on the same
S-second WAV (a lost or duplicated chunk would shift every later token). Latency per delta = its
arrival time minus the send time of the chunk holding the end of the delta's audio (the delta's
end time on the audio timeline, reported by the server); p50/p95 are printed.

Phase 2: C connect/disconnect cycles (default 1000; 32 at a time): connect, session set-up, half a
second of audio, then alternately a clean end (done awaited) or an abrupt close. Afterwards the
server is healthy, /health reports 0 sessions, and VmRSS is within max(16 MB, 10 %) of the baseline
measured after phase 1 (allocator arenas and the model already warm).
"""

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import voxsrv as V  # noqa: E402

T = V.Checks("test_server_load")
RATE = 16000
CHUNK = 3200  # bytes = 100 ms of s16 mono at 16 kHz


def delta_text(m):
    return m.get("delta") if m.get("type") == "transcription.delta" else m.get("text", "")


def delta_end(m):
    """Audio end time (s) of a delta's tokens, from the server's extra timing fields."""
    for k in ("t1", "end", "audio_end"):
        if isinstance(m.get(k), (int, float)):
            return float(m[k])
    w = m.get("words")
    if isinstance(w, list) and w and isinstance(w[-1], dict) and isinstance(w[-1].get("end"), (int, float)):
        return float(w[-1]["end"])
    return None


def done_audio_seconds(m):
    """Seconds of audio the server says the stream received, from the done event."""
    for src in (m, m.get("usage") or {}):
        for k in ("audio_seconds", "audio_sec", "duration", "input_audio_seconds", "prompt_audio_seconds"):
            if isinstance(src.get(k), (int, float)):
                return float(src[k]), k
    return None, None


async def stream_client(i, port, model, pcm, t_start, res):
    proto = "vllm" if i % 2 == 0 else "mistral"
    r = res[i] = {"proto": proto, "errors": [], "deltas": [], "sent": 0, "lat": [], "done": None}
    try:
        path = "/v1/realtime" if proto == "vllm" else "/v1/audio/transcriptions/realtime?model=" + model
        ws = await V.AWS.connect(port, path)
        first = await asyncio.wait_for(ws.recv_json(), 10)
        if first.get("type") != "session.created":
            r["errors"].append(first)
            return
        if proto == "vllm":
            await ws.send_json({"type": "session.update", "model": model})
            await ws.send_json({"type": "input_audio_buffer.commit"})
        else:
            await ws.send_json({"type": "session.update",
                                "session": {"audio_format": {"encoding": "pcm_s16le", "sample_rate": RATE}}})
        send_times = []  # send time of chunk k (audio [k*0.1, (k+1)*0.1) s)

        async def reader():
            while True:
                m = await ws.recv_json()
                now = time.monotonic()
                t = m.get("type")
                if t == "error":
                    r["errors"].append(m)
                elif t in ("transcription.delta", "transcription.text.delta"):
                    r["deltas"].append(delta_text(m))
                    e = delta_end(m)
                    if e is not None and send_times:
                        k = min(int(e * RATE * 2 // CHUNK), len(send_times) - 1)
                        r["lat"].append(now - send_times[k])
                    elif e is None:
                        r["no_timing"] = True
                elif t == "transcription.done":
                    r["done"] = m
                    return

        rt = asyncio.ensure_future(reader())
        # stagger the clients' starts over 1 s so their chunks do not all arrive in one burst
        t0 = t_start + (i % 10) * 0.1
        for k, off in enumerate(range(0, len(pcm), CHUNK)):
            delay = t0 + k * CHUNK / (2 * RATE) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if rt.done():
                break
            a = V.b64(pcm[off:off + CHUNK])
            send_times.append(time.monotonic())
            await ws.send_json({"type": "input_audio_buffer.append" if proto == "vllm" else "input_audio.append",
                                "audio": a})
            r["sent"] += len(pcm[off:off + CHUNK])
        r["t_end"] = time.monotonic()
        if proto == "vllm":
            await ws.send_json({"type": "input_audio_buffer.commit", "final": True})
        else:
            await ws.send_json({"type": "input_audio.flush"})
            await ws.send_json({"type": "input_audio.end"})
        await asyncio.wait_for(rt, 120)
        r["t_done"] = time.monotonic()
        await ws.close()
    except Exception as e:  # noted per client, judged by the checks
        r["errors"].append("%s: %s" % (type(e).__name__, e))


async def cycle_client(j, port, model, pcm):
    proto = "vllm" if j % 2 == 0 else "mistral"
    path = "/v1/realtime" if proto == "vllm" else "/v1/audio/transcriptions/realtime?model=" + model
    ws = await V.AWS.connect(port, path)
    try:
        first = await asyncio.wait_for(ws.recv_json(), 10)
        if first.get("type") != "session.created":
            return "first event %r" % first
        half = pcm[: RATE]  # 0.5 s
        if proto == "vllm":
            await ws.send_json({"type": "session.update", "model": model})
            await ws.send_json({"type": "input_audio_buffer.commit"})
            await ws.send_json({"type": "input_audio_buffer.append", "audio": V.b64(half)})
        else:
            await ws.send_json({"type": "session.update",
                                "session": {"audio_format": {"encoding": "pcm_s16le", "sample_rate": RATE}}})
            await ws.send_json({"type": "input_audio.append", "audio": V.b64(half)})
        if (j // 2) % 2 == 0:  # clean end, wait for done
            if proto == "vllm":
                await ws.send_json({"type": "input_audio_buffer.commit", "final": True})
            else:
                await ws.send_json({"type": "input_audio.end"})
            while True:
                m = await asyncio.wait_for(ws.recv_json(), 30)
                if m.get("type") == "error":
                    return "error %r" % m
                if m.get("type") == "transcription.done":
                    break
            await ws.close()
        else:  # abrupt: drop the TCP connection without a close frame
            ws.w.transport.abort()
        return None
    except Exception as e:
        ws.w.transport.abort()
        return "%s: %s" % (type(e).__name__, e)


async def cycles(port, model, pcm, n, par):
    errs, sem = [], asyncio.Semaphore(par)

    async def one(j):
        async with sem:
            e = await cycle_client(j, port, model, pcm)
            if e:
                errs.append((j, e))

    await asyncio.gather(*(one(j) for j in range(n)))
    return errs


def metrics(srv):
    """Unlabelled samples of GET /metrics (Prometheus text) as {name: float}."""
    st, _, b = srv.http("GET", "/metrics", timeout=10)
    out = {}
    for line in b.decode().splitlines():
        if line and not line.startswith("#") and "{" not in line:
            k, _, v = line.partition(" ")
            try:
                out[k] = float(v.split()[0])
            except (ValueError, IndexError):
                pass
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=32, help="cycles in flight at once")
    ap.add_argument("--rss-tolerance-mb", type=float, default=16)
    ap.add_argument("--no-rss-check", action="store_true",
                    help="print RSS but do not judge it (ASan's quarantine keeps freed memory)")
    a = ap.parse_args()

    tmp = V.tmpdir("vox_srv_load_")
    asr, _ = V.make_models(tmp, tts=False)
    clip = V.make_speech(tmp, "The quick brown fox jumps over the lazy dog. One two three four five.", "clip")
    pcm, rate = V.wav_pcm(clip)
    nbytes = int(a.seconds * RATE) * 2
    long_pcm = (pcm * (nbytes // len(pcm) + 1))[:nbytes]
    long_wav = os.path.join(tmp, "long.wav")
    V.write_wav(long_wav, long_pcm, RATE)
    want = V.norm(V.transcribe(asr, long_wav))
    T.check("the reference transcript is not empty", len(want) > 10)
    srv = V.Server(tmp, asr, None, ["--max-sessions", str(max(a.clients, a.parallel) + 8)]).start()
    try:
        model = V.server_model_name(srv)
        rss_cold = srv.rss_kb()
        res = [None] * a.clients
        V.log("phase 1: %d clients x %.0f s of audio, real-time paced" % (a.clients, a.seconds))
        t_start = time.monotonic() + 0.5

        async def phase1():
            await asyncio.wait_for(asyncio.gather(*(stream_client(i, srv.port, model, long_pcm, t_start, res)
                                                    for i in range(a.clients))), a.seconds + 150)

        t0 = time.monotonic()
        try:
            asyncio.run(phase1())
        except asyncio.TimeoutError:  # judged per client below (no done event)
            T.check("phase 1 ended within %.0f s" % (a.seconds + 150), False)
        wall1 = time.monotonic() - t0
        lat, n_err, lost = [], 0, 0
        for i, r in enumerate(res):
            if r is None:
                continue
            tag = "client %d (%s)" % (i, r["proto"])
            n_err += len(r["errors"])
            T.check("%s: no errors" % tag, not r["errors"], repr(r["errors"])[:300])
            T.check("%s: all %d bytes sent" % (tag, nbytes), r["sent"] == nbytes, "%d" % r["sent"])
            d = r["done"]
            if not T.check("%s: done received" % tag, d is not None):
                continue
            secs, key = done_audio_seconds(d)
            if T.check("%s: done reports the audio received" % tag, secs is not None, repr(d)[:300]):
                # audio_seconds is printed with 1 ms resolution: |error| <= 0.5 ms + one sample
                ok = abs(secs - r["sent"] / 2 / RATE) <= (1.0 if key == "prompt_audio_seconds" else 0.0005 + 1.0 / RATE)
                lost += not ok
                T.check("%s: audio received (%s=%.5f s) equals audio sent (%.5f s)"
                        % (tag, key, secs, r["sent"] / 2 / RATE), ok)
            T.check("%s: final text equals vox-transcribe on the same audio" % tag, V.norm(d.get("text", "")) == want,
                    "%r... vs %r..." % (d.get("text", "")[:60], want[:60]))
            T.check("%s: deltas joined equal the final text" % tag,
                    V.norm("".join(r["deltas"])) == V.norm(d.get("text", "")))
            lat += r["lat"]
        if any(r.get("no_timing") for r in res):
            T.check("deltas carry audio timings (needed for the latency figure)", False)
        fin = [r["t_done"] - r["t_end"] for r in res if r.get("t_done")]
        V.log("phase 1: %.1f s wall, %d deltas with timings, latency audio->delta p50 %.3f s p95 %.3f s max %.3f s;"
              " end->done p50 %.3f s max %.3f s; errors %d, clients with lost audio %d"
              % (wall1, len(lat), pct(lat, 50), pct(lat, 95), max(lat) if lat else float("nan"),
                 pct(fin, 50), max(fin) if fin else float("nan"), n_err, lost))
        T.check("latency figures measured", len(lat) > 0)
        m = metrics(srv)
        total = sum(r["sent"] for r in res) / 2 / RATE
        ain = m.get("vox_audio_in_seconds_total")
        T.check("/metrics vox_audio_in_seconds_total (%s) equals all audio sent (%.3f s) within 10 ms"
                % (ain, total), ain is not None and abs(ain - total) < 0.01)
        n, sm = m.get("vox_asr_step_seconds_count"), m.get("vox_asr_step_seconds_sum")
        if n and sm is not None:
            V.log("phase 1: %d batched ASR steps, mean %.2f ms, %.0f s of step time in %.0f s wall"
                  % (n, 1000 * sm / n, sm, wall1))
        ok, h = V.wait_idle(srv)
        T.check("phase 1: /health sessions back to 0", ok, repr(h))
        ok, why = srv.healthy()
        T.check("phase 1: server healthy", ok, why)

        rss_base = srv.rss_kb()
        V.log("phase 2: %d connect/disconnect cycles, %d in flight; RSS cold %.1f MB, baseline %.1f MB"
              % (a.cycles, a.parallel, rss_cold / 1024, rss_base / 1024))
        t0 = time.monotonic()
        try:
            errs = asyncio.run(asyncio.wait_for(cycles(srv.port, model, pcm, a.cycles, a.parallel), 150))
        except asyncio.TimeoutError:
            errs = [("all", "%d cycles not done within 150 s" % a.cycles)]
        wall2 = time.monotonic() - t0
        T.check("phase 2: all cycles without error", not errs, "%d errors, first %r" % (len(errs), errs[:3]))
        ok, h = V.wait_idle(srv)
        T.check("phase 2: /health sessions back to 0", ok, repr(h))
        ok, why = srv.healthy()
        T.check("phase 2: server healthy", ok, why)
        time.sleep(0.5)
        rss_after = srv.rss_kb()
        tol = max(a.rss_tolerance_mb * 1024, 0.10 * rss_base)
        V.log("phase 2: %.1f s wall (%.0f cycles/s), RSS after %.1f MB (%+.1f MB vs baseline, tolerance %.1f MB)"
              % (wall2, a.cycles / wall2, rss_after / 1024, (rss_after - rss_base) / 1024, tol / 1024))
        if a.no_rss_check:
            V.log("phase 2: RSS not judged (--no-rss-check: sanitizer build, freed memory is quarantined)")
        else:
            T.check("phase 2: RSS back near the baseline", rss_after - rss_base <= tol)
        try:
            text, _, _ = V.vllm_session(srv.port, pcm, model)
            T.check("a normal session after the load gives vox-transcribe's text",
                    V.norm(text) == V.norm(V.transcribe(asr, clip)))
        except (V.Fail, V.WSClosed, OSError) as e:
            T.check("a normal session after the load works", False, str(e))
    finally:
        T.stop(srv)
    T.done()


if __name__ == "__main__":
    main()
