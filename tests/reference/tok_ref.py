#!/usr/bin/env python3
"""Tokenizer fixtures: mistral-common's Tekkenizer run on tekken.json files made by OUR generator.

Usage:
    tok_ref.py --mktekken build/bin/vox-mktekken [--out tests/fixtures/tokenizer]

For every configuration in CONFIGS it
  1. writes a tekken.json with `vox-mktekken` (tools/common/vox_tekken_gen.c) into a temp dir;
  2. loads it with mistral-common (Tekkenizer.from_file and MistralTokenizer.from_file; both must
     succeed) and checks the loaded sizes against the generator options;
  3. encodes >= 200 strings (bos=False, eos=False) and decodes >= 100 id sequences (policies
     IGNORE and KEEP), including sequences whose bytes are invalid UTF-8;
  4. writes OUT/<name>.json: the generator options, the size and FNV-1a-64 hash of the generated
     file (the C test regenerates it and must get the same bytes), special-token ids by name, the
     encode cases and the decode cases. Strings are stored as hex of their UTF-8 bytes (decoded
     text may contain NUL), plus a readable copy.
The CI never runs this; tests/test_tekken.c compares the C tokenizer with the committed files.
"""

import argparse
import hashlib
import re
import json
import os
import random
import subprocess
import sys
import tempfile
import time

from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
from mistral_common.tokens.tokenizers.tekken import Tekkenizer

# Generator options (names as vox_tekken_gen_opts; the C test reads them back from the fixture).
CONFIGS = [
    dict(name="tekken_real", n_special=1000, default_vocab_size=2048, n_vocab_stored=1100,
         seed=1, delay_ms=480, real_pattern=1, tts=0, version="v7", voices={}),
    dict(name="tekken_alt", n_special=40, default_vocab_size=740, n_vocab_stored=1500,
         seed=12345, delay_ms=0, real_pattern=0, tts=0, version="v3", voices={}),
    dict(name="tekken_big", n_special=1000, default_vocab_size=131072, n_vocab_stored=150000,
         seed=2026, delay_ms=480, real_pattern=1, tts=0, version="v7", voices={}),
    dict(name="tekken_tts", n_special=1000, default_vocab_size=4000, n_vocab_stored=3500,
         seed=7, delay_ms=0, real_pattern=1, tts=1, version="v7",
         voices={"casual_male": 147, "neutral_female": 93}),
]

SPECIAL_NAMES = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "<pad>", "[AUDIO]", "[BEGIN_AUDIO]",
                 "[OUTPUT_AUDIO]", "[STREAMING_PAD]", "[STREAMING_WORD]", "[REPEAT_AUDIO_TEXT]",
                 "[NEXT_AUDIO_TEXT]", "[TRANSCRIBE]", "<SPECIAL_20>", "<SPECIAL_39>",
                 "<SPECIAL_999>", "[SYSTEM_PROMPT]", "nope"]


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def hand_strings():
    s = [
        "", " ", "a", "A", "Hello", "Hello, world!", "hello world", " hello world",
        "Hello, this is a test of the speech to text system.",
        "The quick brown fox jumps over the lazy dog.",
        "Mary had a little lamb, its fleece was white as snow.",
        "I'm sure you're right, don't worry; it's fine.", "DON'T SHOUT", "CamelCaseWord",
        "McDonald", "iPhone", "HTTPServer", "ABCdef", "abcDEF",
        "Très bien, merci beaucoup.", "Le garçon a mangé une pomme.", "naïve café résumé",
        "Schöne Grüße aus München", "Straße", "¿Dónde está la biblioteca?", "ÀÉÎÕÜ àéîõü",
        "e\u0301", "Cafe\u0301", "\u0301\u0301\u0301", "a\u0308o\u0308u\u0308",
        "ǅemal ǈ ǋ", "ΑΒΓ αβγ Ωμέγα", "Привет, как дела?", "Это тест.",
        "你好，世界。", "这是一个语音识别系统的测试。", "中文", "日本語のテキスト",
        "こんにちは、元気ですか。", "カタカナ", "東京は大きい都市です。", "안녕하세요. 감사합니다.",
        "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีครับ", "שלום עולם",
        "😀", "😀😃😄", "Hello 👋 world 🌍!", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "❤️", "✨🚀🔥",
        "a😀b", " 😀 ", "😀a", "🎉🎉🎉 party",
        "0", "7", "42", "123", "1234567890", "3.14159", "98.6%", "$19.99", "12:30",
        "1/2", "3-4", "-5", "+1", "1e10", "2026-12-02", "555-0199", "x2", "2x", "v1.13.1",
        "١٢٣", "一二三", "Ⅻ", "½", "²³", "①②",
        "  ", "   ", "    ", "          ", "a  b", "a   b", "a    b", "a b  c   d",
        "trailing ", "trailing  ", "trailing   ", " leading", "  leading", "   leading",
        "\t", "\t\t", "a\tb", "\ta", "a\t", " \t ", "\t \t",
        "\n", "\n\n", "\n\n\n", "a\nb", "a\n\nb", "a \n b", "a  \n  b", "\r\n", "a\r\nb",
        "\r", "a\rb", "line1\nline2\nline3\n", "  \n", "\n  ", " \n", "\n ", "x\n\t y",
        "end.\n", "end.\n\n", "?\n", "!\r\n", "/\n", "a/\nb", "path/to/file", "a//b",
        ".", "..", "...", "!!!", "???", "?!", ",", ";", ":", "--", "---", "***", "()", "[]",
        "{}", "<>", "\"quoted\"", "'single'", "“curly” ‘quotes’", "— dash – en", "…",
        "a, b, c.", "(a)", "[1, 2, 3]", "{\"key\": \"value\"}", "x == 1 && y != 2",
        "int main(void) { return 0; }", "printf(\"%d\\n\", x);", "#include <stdio.h>",
        "https://example.com/path?query=1&x=2", "user@example.org", "C:\\Windows\\System32",
        "© ® ™ € £ ¥ ° ± × ÷", "→ ← ↑ ↓ ≤ ≥ ≠ ∞ √ π", "µ ß ø å æ œ ı ł",
        "[INST]", "<s>", "</s>", "[STREAMING_PAD]", "<SPECIAL_5>", "[INST] hello [/INST]",
        "\u00a0", "a\u00a0b", "\u2003", "a\u2003b", "\u3000", "a\u3000b", "\u2028", "a\u2029b",
        "\u0085", "a\u0085b", "\u180e", "a\u180eb", "\u200b", "a\u200bb", "\ufeff", "\u202f",
        "\u000b", "a\u000bb", "\u000c", "a\u000cb", "\u001f", "\u0000", "a\u0000b", "\u007f",
        "\U0001F600\u0301", "\uffff", "\U0010FFFF", "\U00020000", "\ue000",
        "ABC DEF GHI", "a1b2c3", "word123word", "test_case_name", "snake_case", "kebab-case",
        "ALL CAPS SENTENCE HERE", "Title Case Sentence Here", "mIxEd CaSe",
    ]
    long = ("In the beginning there was only sound, and then there were words. " * 20 +
            "Très bien! 你好 😀 42\n\n\tEnd.   ")
    s.append(long)
    return s


ALPHABET = (list("abcdefghijklmnopqrstuvwxyz") * 4 + list("ABCDEFGHIJKLMNOPQRSTUVWXYZ") +
            list("0123456789") * 2 + [" "] * 30 + ["  ", "\n", "\t", "\r\n", "\n\n"] +
            list(".,;:!?'\"()-/[]{}<>@#$%^&*_+=|\\~`") +
            ["é", "è", "à", "ç", "ü", "ö", "ß", "ñ", "ø", "Ü", "É", "\u0301", "\u0308"] +
            ["你", "好", "世", "界", "中", "文", "日", "本", "語", "の", "こ", "ん", "ア", "한", "국"] +
            ["а", "б", "в", "П", "Ж", "α", "β", "Ω", "ع", "ب", "न", "म", "ส"] +
            ["😀", "👍", "🏽", "\u200d", "🌍", "❤", "\ufe0f", "🇫", "🇷", "—", "…", "“", "”", "€"] +
            ["\u00a0", "\u2003", "\u3000", "\u0085", "\u2028", "\u180e", "\u200b"] +
            ["\u0897", "\u1c89", "\U00031350", "\U00011f04", "\U0001e4d0"] +
            [" the", " and", " of", " to", " is", "ing", "tion", " was", " that"] * 3)


def random_strings(rng, n):
    out = []
    for _ in range(n):
        k = rng.randint(1, 40)
        out.append("".join(rng.choice(ALPHABET) for _ in range(k)))
    return out


def tik_pieces(pat, s):
    """tiktoken's pre-split of s: with every substring of s in the vocab, each regex piece is
    exactly one token, so the token byte lengths are the piece boundaries."""
    import tiktoken
    ranks = {bytes([i]): i for i in range(256)}
    subs = set()
    for i in range(len(s)):
        for j in range(i + 1, len(s) + 1):
            subs.add(s[i:j].encode())
    for b in sorted(subs, key=lambda b: (len(b), b)):
        if b not in ranks:
            ranks[b] = len(ranks)
    enc = tiktoken.Encoding("split", pat_str=pat, mergeable_ranks=ranks, special_tokens={})
    out, pos = [], 0
    for t in enc.encode(s):
        n = len(enc.decode_single_token_bytes(t))
        out += [pos, pos + n]
        pos += n
    return out


def split_strings(rng):
    """Inputs whose piece boundaries are sensitive to the regex engine's Unicode tables: code
    points from lm/tekken_unicode.h (letters/marks/digits newer than PCRE2's tables), every
    White_Space character, and some hand strings."""
    hdr = open(os.path.join(os.path.dirname(__file__), "..", "..", "lm", "tekken_unicode.h")).read()
    cps = []
    for lo, hi in re.findall(r"\{0x([0-9A-F]+), 0x([0-9A-F]+)\}", hdr):
        lo, hi = int(lo, 16), int(hi, 16)
        if hi:
            cps += sorted({lo, hi, rng.randint(lo, hi)})
    out = []
    for cp in cps:
        c = chr(cp)
        out += ["a" + c + "b", " " + c + " x", c + c, "A" + c, "1" + c + "2"]
    ws = ["\t", "\n", "\r", " ", "\x0b", "\x0c", "\x85", "\xa0", "\u1680", "\u180e", "\u2000",
          "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u200b", "x", ".", "1"]
    for a in ws:
        for b in ws:
            out.append("q" + a + b + "q")
        out += [a, a + a + "Z", " " + a + " x", a + "\n"]
    out += hand_strings()[:120]
    return out


def decode_sequences(rng, tok, n_special, vocab_size, encoded):
    """Id sequences: valid text, specials in between, byte tokens, split multibyte chars."""
    ids_normal = list(range(n_special, vocab_size))
    byte_id = lambda b: n_special + b  # ranks 0..255 are the single bytes
    seqs = []
    # plain encodings of some strings, with specials inserted
    for e in encoded[:40]:
        seqs.append(list(e))
        if e:
            k = rng.randrange(len(e) + 1)
            seqs.append(e[:k] + [rng.choice([1, 2, 32, 33, 24])] + e[k:])
    # multibyte characters split into byte tokens, sometimes with a special inside or cut short
    for ch in ["é", "你", "😀", "👍🏽", "ß", "€", "\U0010FFFF", "한"]:
        bs = list(ch.encode("utf-8"))
        seqs.append([byte_id(b) for b in bs])
        seqs.append([byte_id(b) for b in bs[:-1]])                       # truncated at end
        seqs.append([byte_id(b) for b in bs[:-1]] + [byte_id(ord("x"))])  # truncated, then ASCII
        seqs.append([byte_id(bs[0]), 33] + [byte_id(b) for b in bs[1:]])  # special splits it
        seqs.append([byte_id(b) for b in bs[1:]])                        # lone continuations
        seqs.append([byte_id(ord("a"))] + [byte_id(b) for b in bs] * 3)
    # invalid bytes of every kind
    bad = [[0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xFE],
           [0xE0, 0x80, 0x80], [0xE0, 0xA0], [0xED, 0xA0, 0x80], [0xED, 0x9F, 0xBF],
           [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x90, 0x80], [0xF4, 0x90, 0x80, 0x80],
           [0xF4, 0x8F, 0xBF, 0xBF], [0xC3], [0xC3, 0xC3, 0xA9], [0xE4, 0xB8, 0x41],
           [0xF0, 0x9F, 0x98], [0xF0, 0x9F, 0x98, 0x80, 0x80], [0x00], [0x00, 0x41, 0x00]]
    for b in bad:
        seqs.append([byte_id(x) for x in b])
        seqs.append([2] + [byte_id(x) for x in b] + [1])
    # vocab tokens whose bytes are not valid UTF-8 on their own (token_str null)
    partial = [i for i in ids_normal if i - n_special >= 256 and
               not _valid(tok.id_to_byte_piece(i))]
    for _ in range(25):
        if partial:
            seqs.append([rng.choice(partial) for _ in range(rng.randint(1, 6))])
    # random mixtures of everything
    pool = ids_normal + list(range(min(n_special, 40))) + [byte_id(b) for b in range(128, 256)]
    for _ in range(40):
        seqs.append([rng.choice(pool) for _ in range(rng.randint(0, 20))])
    seqs.append([])
    seqs.append([1, 32, 32, 33, 2])
    return seqs


def _valid(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def hexs(s: str) -> str:
    return s.encode("utf-8").hex()


def run_config(cfg, mktekken, tmp, out_dir, rng):
    path = os.path.join(tmp, cfg["name"] + ".json")
    cmd = [mktekken, path, "--n-special", str(cfg["n_special"]),
           "--vocab-size", str(cfg["default_vocab_size"]), "--stored", str(cfg["n_vocab_stored"]),
           "--seed", str(cfg["seed"]), "--delay-ms", str(cfg["delay_ms"]),
           "--version", cfg["version"]]
    if not cfg["real_pattern"]:
        cmd.append("--alt-pattern")
    if cfg["tts"]:
        cmd.append("--tts")
    for v, n in cfg["voices"].items():
        cmd += ["--voice", f"{v}={n}"]
    subprocess.run(cmd, check=True)
    data = open(path, "rb").read()
    raw = json.loads(data)

    tok = Tekkenizer.from_file(path)
    mt = MistralTokenizer.from_file(path)  # must load too (validation, audio block)
    assert tok.num_special_tokens == cfg["n_special"], tok.num_special_tokens
    assert tok.n_words == cfg["default_vocab_size"], tok.n_words
    assert len(raw["vocab"]) == cfg["n_vocab_stored"], len(raw["vocab"])
    checks = {"tekkenizer_loaded": True, "mistral_tokenizer_loaded": True,
              "version": tok.version.value, "n_words": tok.n_words,
              "num_special_tokens": tok.num_special_tokens}
    if raw.get("audio"):
        ae = mt.instruct_tokenizer.audio_encoder
        checks["audio_special_ids"] = {k: v for k, v in vars(ae.special_ids).items()}
        checks["audio_is_streaming"] = ae.audio_config.is_streaming
        if ae.audio_config.is_streaming:
            checks["transcription_delay_ms"] = ae.audio_config.transcription_delay_ms
            checks["num_delay_tokens"] = ae.audio_config.num_delay_tokens

    special = {}
    for n in SPECIAL_NAMES:
        try:
            special[n] = tok.get_special_token(n)
        except ValueError:
            special[n] = -1

    strings = hand_strings() + random_strings(rng, 150)
    encode = []
    t0 = time.time()
    for s in strings:
        ids = tok.encode(s, bos=False, eos=False)
        back = tok.decode(ids)
        assert back == s, (s, back)  # byte-level BPE is lossless on valid text
        encode.append({"hex": hexs(s), "ids": ids})
    t_enc = time.time() - t0

    decode = []
    for ids in decode_sequences(rng, tok, cfg["n_special"], cfg["default_vocab_size"],
                                [e["ids"] for e in encode]):
        ign = tok.decode(ids, special_token_policy=SpecialTokenPolicy.IGNORE)
        keep = tok.decode(ids, special_token_policy=SpecialTokenPolicy.KEEP)
        raise_ok = True
        try:
            tok.decode(ids, special_token_policy=SpecialTokenPolicy.RAISE)
        except ValueError:
            raise_ok = False
        decode.append({"ids": ids, "ignore_hex": hexs(ign), "keep_hex": hexs(keep),
                       "raise_ok": raise_ok})

    # piece boundaries only for the two distinct patterns (the others repeat tekken_real's)
    split = []
    if cfg["name"] in ("tekken_real", "tekken_alt"):
        for st in split_strings(random.Random(5)):
            split.append({"hex": hexs(st), "spans": tik_pieces(raw["config"]["pattern"], st)})

    # TTS prompts as mistral-common builds them (encode_speech_request)
    speech = []
    if cfg["voices"]:
        from mistral_common.protocol.speech.request import SpeechRequest
        for text in ["Paris is a beautiful city!", "Hello, world.", "Très bien 你好 😀 42"]:
            for voice in cfg["voices"]:
                r = mt.encode_speech_request(SpeechRequest(input=text, voice=voice))
                speech.append({"text": text, "hex": hexs(text), "voice": voice,
                               "ids": list(r.tokens)})

    fixture = {
        "about": "mistral-common Tekkenizer on a tekken.json from vox_tekken_gen (tests/reference/tok_ref.py)",
        "generator": {k: cfg[k] for k in ["n_special", "default_vocab_size", "n_vocab_stored",
                                          "seed", "delay_ms", "real_pattern", "tts", "version"]},
        "voices": cfg["voices"],
        "file_size": len(data),
        "file_fnv1a64": f"{fnv1a64(data):016x}",
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "checks": checks,
        "special": special,
        "encode": encode,
        "decode": decode,
        "split": split,
        "speech": speech,
    }
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, cfg["name"] + ".json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    print(f"{out}: {len(encode)} encode cases ({t_enc:.2f} s), {len(decode)} decode cases, "
          f"{len(split)} split cases, {len(speech)} speech prompts, file {len(data)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mktekken", required=True)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "fixtures",
                                                  "tokenizer"))
    a = ap.parse_args()
    rng = random.Random(20261202)
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in CONFIGS:
            run_config(cfg, a.mktekken, tmp, a.out, rng)


if __name__ == "__main__":
    sys.exit(main())
