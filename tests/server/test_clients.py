"""Issue 6 acceptance 1: clients we did not write, from PyPI, unchanged, against vox-server.

  openai SDK     audio.transcriptions.create (json, text, srt, vtt, verbose_json; WAV and MP3)
                 audio.speech.create and with_streaming_response (wav, pcm, flac, mp3, opus)
  mistralai SDK  audio.realtime (mistralai.extra.realtime.RealtimeTranscription): connect,
                 transcribe_stream over ws .../v1/audio/transcriptions/realtime
  websockets     a vLLM /v1/realtime client written the way vllm's
                 examples/online_serving/openai_realtime_client.py talks (session.update,
                 commit, appends, commit final)

Expected transcripts come from vox-transcribe on the same file (txt, srt, vtt), expected speech
from vox-tts with the same voice and seed (raw s16le). Run by test_clients.sh with the venv python.
"""

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import voxsrv as V  # noqa: E402

import openai  # noqa: E402
import websockets  # noqa: E402
from mistralai.client import Mistral  # noqa: E402
from mistralai.extra.realtime import AudioFormat  # noqa: E402

T = V.Checks("test_server_clients")
TIMEOUT = 60


def cues(sub):
    """Cue texts of an SRT or WebVTT document (index / timing lines dropped), and timings."""
    texts, times, cur = [], [], []
    for line in sub.replace("\r\n", "\n").split("\n"):
        if "-->" in line:
            times.append(line.strip())
            cur = []
            texts.append(cur)
        elif line.strip() == "":
            cur = []
        elif texts and cur is texts[-1]:
            cur.append(line)
    return ["\n".join(c) for c in texts], times


def wav_info(data):
    with wave.open(io.BytesIO(data), "rb") as w:
        return w.getframerate(), w.getnchannels(), w.getsampwidth(), w.readframes(w.getnframes())


def probe(data, tmp, ext):
    """(sample rate, channels, duration) of encoded audio as ffprobe decodes it."""
    p = os.path.join(tmp, "probe." + ext)
    with open(p, "wb") as f:
        f.write(data)
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=sample_rate,channels:format=duration",
                        "-of", "json", p], capture_output=True, timeout=30)
    if r.returncode != 0:
        return None
    j = json.loads(r.stdout)
    s = j["streams"][0]
    return int(s["sample_rate"]), int(s["channels"]), float(j["format"].get("duration", 0))


def test_openai_transcriptions(srv, c, asr, wav, mp3):
    ids = [m.id for m in c.models.list().data]
    T.check("openai: models.list names a model", len(ids) > 0, repr(ids))
    model = V.server_model_name(srv)
    want = V.norm(V.transcribe(asr, wav))
    want_srt = V.transcribe(asr, wav, "srt")
    want_vtt = V.transcribe(asr, wav, "vtt")
    want_json = json.loads(V.transcribe(asr, wav, "json"))

    def create(fmt, path=wav):
        with open(path, "rb") as f:
            return c.audio.transcriptions.create(model=model, file=f, response_format=fmt)

    r = create("json")
    T.check("openai json: text equals vox-transcribe", V.norm(r.text) == want, "%r vs %r" % (r.text, want))
    r = create("text")
    T.check("openai text: equals vox-transcribe", isinstance(r, str) and V.norm(r) == want, "%r vs %r" % (r, want))
    for fmt, ref in (("srt", want_srt), ("vtt", want_vtt)):
        r = create(fmt)
        got_t, got_times = cues(r)
        ref_t, ref_times = cues(ref)
        T.check("openai %s: cue texts equal vox-transcribe -f %s" % (fmt, fmt), got_t == ref_t,
                "%r vs %r" % (got_t[:3], ref_t[:3]))
        T.check("openai %s: cue timings equal vox-transcribe -f %s" % (fmt, fmt), got_times == ref_times,
                "%r vs %r" % (got_times[:3], ref_times[:3]))
        if fmt == "vtt":
            T.check("openai vtt: starts with WEBVTT", r.lstrip("\ufeff").startswith("WEBVTT"), repr(r[:20]))
    r = create("verbose_json")
    T.check("openai verbose_json: text equals vox-transcribe", V.norm(r.text) == want, "%r vs %r" % (r.text, want))
    T.check("openai verbose_json: duration equals the file's (1 ms)",
            r.duration is not None and abs(float(r.duration) - want_json["duration"]) <= 0.001,
            "%r vs %r" % (r.duration, want_json["duration"]))
    words = [(w.word, round(w.start, 3), round(w.end, 3)) for w in (r.words or [])]
    ref_words = [(w["word"], round(w["start"], 3), round(w["end"], 3)) for w in want_json["words"]]
    T.check("openai verbose_json: words (text, start, end to 1 ms) equal vox-transcribe -f json",
            words == ref_words, "%r vs %r" % (words[:3], ref_words[:3]))
    T.check("openai verbose_json: segments present", bool(r.segments), repr(r.segments)[:200])
    # any format the server decodes: an MP3 of the same speech against vox-transcribe on that MP3
    r = create("json", mp3)
    want_mp3 = V.norm(V.transcribe(asr, mp3))
    T.check("openai json (mp3 upload): text equals vox-transcribe on the mp3", V.norm(r.text) == want_mp3,
            "%r vs %r" % (r.text, want_mp3))


def test_openai_speech(srv, c, tts, tmp):
    voice = sorted(os.path.splitext(v)[0] for v in os.listdir(os.path.join(tts, "voice_embedding")))[0]
    text = "Hello there. This is a speech test."
    ref = V.run([os.path.join(V.BIN, "vox-tts"), "-m", tts, "--device", "cpu", "--voice", voice, "--seed", "0",
                 "-o", "-", text]).stdout
    T.check("vox-tts reference speech is non-empty", len(ref) > 0)
    r = c.audio.speech.create(model="tts", voice=voice, input=text, response_format="wav")
    data = r.read() if hasattr(r, "read") else r.content
    try:
        rate, ch, width, pcm = wav_info(data)
        T.check("openai speech wav: 24 kHz mono s16", (rate, ch, width) == (24000, 1, 2), repr((rate, ch, width)))
        T.check("openai speech wav: has samples", len(pcm) > 0)
        T.check("openai speech wav: PCM equals vox-tts (same voice, seed 0)", pcm == ref,
                "%d vs %d bytes" % (len(pcm), len(ref)))
    except (wave.Error, EOFError) as e:
        T.check("openai speech wav: parses as WAV", False, "%s; first bytes %r" % (e, data[:16]))
    r = c.audio.speech.create(model="tts", voice=voice, input=text, response_format="pcm")
    pcm = r.read() if hasattr(r, "read") else r.content
    T.check("openai speech pcm: s16le equals vox-tts", pcm == ref, "%d vs %d bytes" % (len(pcm), len(ref)))
    chunks = []
    with c.audio.speech.with_streaming_response.create(model="tts", voice=voice, input=text,
                                                       response_format="pcm") as resp:
        for ch in resp.iter_bytes(4096):
            chunks.append(ch)
    T.check("openai speech streaming pcm: bytes equal vox-tts", b"".join(chunks) == ref,
            "%d vs %d bytes in %d chunks" % (sum(map(len, chunks)), len(ref), len(chunks)))
    dur = len(ref) / 2 / 24000
    for fmt, ext, want_rate in (("flac", "flac", 24000), ("mp3", "mp3", 24000), ("opus", "opus", 48000)):
        with c.audio.speech.with_streaming_response.create(model="tts", voice=voice, input=text,
                                                           response_format=fmt) as resp:
            data = resp.read()
        p = probe(data, tmp, ext)
        # opus always decodes at 48 kHz; mp3 frames pad the length (up to ~0.1 s here)
        T.check("openai speech %s: decodes, mono, %d Hz, duration within 0.15 s of vox-tts" % (fmt, want_rate),
                p is not None and p[0] == want_rate and p[1] == 1 and abs(p[2] - dur) < 0.15,
                "ffprobe %r, want %.3f s" % (p, dur))


def test_mistral(srv, asr, wav, model):
    pcm, rate = V.wav_pcm(wav)
    want = V.norm(V.transcribe(asr, wav))
    client = Mistral(api_key="test", server_url="http://127.0.0.1:%d" % srv.port)

    async def chunks():
        for i in range(0, len(pcm), 6400):  # 200 ms chunks, as a live microphone would
            yield pcm[i:i + 6400]
            await asyncio.sleep(0)

    async def go():
        deltas, done, errors, kinds = [], None, [], []
        agen = client.audio.realtime.transcribe_stream(
            chunks(), model=model, audio_format=AudioFormat(encoding="pcm_s16le", sample_rate=rate),
            server_url="http://127.0.0.1:%d" % srv.port, timeout_ms=TIMEOUT * 1000)
        async for ev in agen:
            t = getattr(ev, "type", None)
            kinds.append((t, type(ev).__name__))
            if t == "transcription.text.delta":
                deltas.append(ev.text)
            elif t == "transcription.done":
                done = ev
            elif t == "error" or type(ev).__name__ == "UnknownRealtimeEvent":
                errors.append(ev)
        return deltas, done, errors, kinds

    deltas, done, errors, kinds = asyncio.run(asyncio.wait_for(go(), TIMEOUT))
    T.check("mistralai realtime: no error or unparsed event", not errors, repr(errors)[:400])
    T.check("mistralai realtime: transcription.done received", done is not None, repr(kinds[-5:]))
    if done is not None:
        T.check("mistralai realtime: done.text equals vox-transcribe", V.norm(done.text) == want,
                "%r vs %r" % (done.text, want))
    T.check("mistralai realtime: deltas joined equal vox-transcribe", V.norm("".join(deltas)) == want,
            "%r vs %r" % ("".join(deltas), want))


def test_vllm(srv, asr, wav, model):
    pcm, rate = V.wav_pcm(wav)
    want = V.norm(V.transcribe(asr, wav))

    async def go():
        async with websockets.connect("ws://127.0.0.1:%d/v1/realtime" % srv.port, open_timeout=TIMEOUT,
                                      max_size=None) as ws:
            first = json.loads(await ws.recv())
            await ws.send(json.dumps({"type": "session.update", "model": model}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            for i in range(0, len(pcm), 4096):
                await ws.send(json.dumps({"type": "input_audio_buffer.append",
                                          "audio": base64.b64encode(pcm[i:i + 4096]).decode()}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit", "final": True}))
            deltas, msgs = [], []
            while True:
                m = json.loads(await ws.recv())
                msgs.append(m)
                if m.get("type") == "transcription.delta":
                    deltas.append(m["delta"])
                elif m.get("type") in ("transcription.done", "error"):
                    return first, deltas, m, msgs

    first, deltas, last, msgs = asyncio.run(asyncio.wait_for(go(), TIMEOUT))
    T.check("vllm (websockets): session.created first", first.get("type") == "session.created", repr(first))
    T.check("vllm (websockets): transcription.done, no error", last.get("type") == "transcription.done", repr(last))
    T.check("vllm (websockets): done.text equals vox-transcribe", V.norm(last.get("text", "")) == want,
            "%r vs %r" % (last.get("text"), want))
    T.check("vllm (websockets): deltas joined equal vox-transcribe", V.norm("".join(deltas)) == want,
            "%r vs %r" % ("".join(deltas), want))
    u = last.get("usage") or {}
    T.check("vllm (websockets): usage has token counts", all(isinstance(u.get(k), int) for k in
            ("prompt_tokens", "completion_tokens", "total_tokens")), repr(u))


def main():
    tmp = V.tmpdir("vox_srv_clients_")
    asr, tts = V.make_models(tmp)
    wav = V.make_speech(tmp, "Hello world. This is a speech recognition test for the server.")
    mp3 = os.path.join(tmp, "speech.mp3")
    V.run(["ffmpeg", "-loglevel", "error", "-y", "-i", wav, "-c:a", "libmp3lame", "-b:a", "64k", mp3])
    T.check("the reference transcript is not empty (else equality proves nothing)",
            len(V.norm(V.transcribe(asr, wav))) > 10)
    srv = V.Server(tmp, asr, tts).start()
    try:
        model = V.server_model_name(srv)
        c = openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % srv.port, api_key="test", timeout=TIMEOUT,
                          max_retries=0)
        for name, fn in (("openai transcriptions", lambda: test_openai_transcriptions(srv, c, asr, wav, mp3)),
                         ("openai speech", lambda: test_openai_speech(srv, c, tts, tmp)),
                         ("mistralai realtime", lambda: test_mistral(srv, asr, wav, model)),
                         ("vllm websockets", lambda: test_vllm(srv, asr, wav, model))):
            try:  # one failed client must not hide the others' results
                fn()
            except Exception as e:
                T.check("%s: no exception" % name, False, "%s: %s" % (type(e).__name__, e))
        ok, why = srv.healthy()
        T.check("server healthy after the client tests", ok, why)
    finally:
        T.stop(srv)
    T.done()


if __name__ == "__main__":
    main()
