#!/usr/bin/env python3
"""Strict checks of vox-transcribe outputs (python3 standard library only).

  check_subs.py srt FILE DURATION      SubRip: numbered cues 1..N, "HH:MM:SS,mmm --> HH:MM:SS,mmm",
                                       non-empty text, one blank line between cues, times
                                       start < end, monotonic, inside [0, DURATION]
  check_subs.py vtt FILE DURATION      WebVTT: "WEBVTT" header line, blank line, cues
                                       "HH:MM:SS.mmm --> HH:MM:SS.mmm", the same time rules,
                                       no "-->" in cue text
  check_subs.py json FILE SCHEMA       every line one JSON object valid against SCHEMA (the
                                       subset of JSON Schema the schema uses: type, required,
                                       properties, additionalProperties false, items, minimum,
                                       minLength), then the semantics: words monotonic and
                                       inside [0, duration], segments cover the words in order
                                       and their times equal their words', text joins
Prints "ok: ..." and exits 0, or prints the first problem and exits 1.
"""
import json
import re
import sys

TIME = {"srt": re.compile(r"^(\d\d):([0-5]\d):([0-5]\d),(\d\d\d)$"),
        "vtt": re.compile(r"^(\d\d):([0-5]\d):([0-5]\d)\.(\d\d\d)$")}
EPS = 0.0015  # outputs are rounded to the millisecond


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def parse_time(kind, s, where):
    m = TIME[kind].match(s)
    if not m:
        fail("%s: bad timestamp %r" % (where, s))
    h, mi, se, ms = (int(x) for x in m.groups())
    return h * 3600 + mi * 60 + se + ms / 1000.0


def check_cues(kind, path, duration):
    data = open(path, "rb").read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        fail("%s: not UTF-8: %s" % (path, e))
    if "\r" in text:
        fail("%s: CR characters (we write LF only)" % path)
    if not text.endswith("\n\n") and text != "" and not (kind == "vtt" and text == "WEBVTT\n\n"):
        fail("%s: must end with a blank line after the last cue" % path)
    lines = text.split("\n")
    i = 0
    if kind == "vtt":
        if lines[:2] != ["WEBVTT", ""]:
            fail("%s: must start with 'WEBVTT' and a blank line" % path)
        i = 2
    n = 0
    prev_end = 0.0
    while i < len(lines) and lines[i] != "":
        n += 1
        where = "%s cue %d (line %d)" % (path, n, i + 1)
        if kind == "srt":
            if lines[i] != str(n):
                fail("%s: expected counter %d, found %r" % (where, n, lines[i]))
            i += 1
        parts = lines[i].split(" --> ") if i < len(lines) else []
        if len(parts) != 2:
            fail("%s: expected 'start --> end', found %r" % (where, lines[i] if i < len(lines) else "EOF"))
        a, b = parse_time(kind, parts[0], where), parse_time(kind, parts[1], where)
        if not a < b:
            fail("%s: start %.3f not before end %.3f" % (where, a, b))
        if a < prev_end - EPS:
            fail("%s: starts at %.3f before the previous cue ends (%.3f)" % (where, a, prev_end))
        if b > duration + EPS:
            fail("%s: ends at %.3f after the audio (%.3f s)" % (where, b, duration))
        prev_end = b
        i += 1
        body = []
        while i < len(lines) and lines[i] != "":
            body.append(lines[i])
            i += 1
        if not body or not "".join(body).strip():
            fail("%s: empty cue text" % where)
        if kind == "vtt" and any("-->" in x for x in body):
            fail("%s: '-->' in cue text" % where)
        i += 1  # the blank line
    rest = lines[i:]
    if any(x != "" for x in rest):
        fail("%s: trailing garbage after cue %d: %r" % (path, n, rest[:3]))
    print("ok: %s %s, %d cues" % (kind, path, n))


def validate(v, s, where):
    t = s.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool}
    if t == "integer":
        if not isinstance(v, int) or isinstance(v, bool):
            fail("%s: expected integer, found %r" % (where, v))
    elif t == "number":
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            fail("%s: expected number, found %r" % (where, v))
    elif t in types:
        if not isinstance(v, types[t]) or (t != "boolean" and isinstance(v, bool)):
            fail("%s: expected %s, found %r" % (where, t, v))
    elif t is not None:
        fail("schema uses unsupported type %r" % t)
    known = {"$schema", "$id", "title", "description", "type", "required", "properties",
             "additionalProperties", "items", "minimum", "minLength"}
    extra = set(s) - known
    if extra:
        fail("schema uses unsupported keywords %s" % sorted(extra))
    if "minimum" in s and v < s["minimum"]:
        fail("%s: %r below minimum %r" % (where, v, s["minimum"]))
    if "minLength" in s and len(v) < s["minLength"]:
        fail("%s: shorter than %d" % (where, s["minLength"]))
    if t == "object":
        for k in s.get("required", []):
            if k not in v:
                fail("%s: missing %r" % (where, k))
        props = s.get("properties", {})
        if s.get("additionalProperties", True) is False:
            for k in v:
                if k not in props:
                    fail("%s: unexpected property %r" % (where, k))
        for k, sub in props.items():
            if k in v:
                validate(v[k], sub, where + "." + k)
    if t == "array" and "items" in s:
        for n, x in enumerate(v):
            validate(x, s["items"], "%s[%d]" % (where, n))


def check_json(path, schema_path):
    schema = json.load(open(schema_path, encoding="utf-8"))
    lines = open(path, encoding="utf-8").read().split("\n")
    if lines[-1] != "":
        fail("%s: must end with a newline" % path)
    docs = 0
    for ln, line in enumerate(lines[:-1], 1):
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            fail("%s line %d: invalid JSON: %s" % (path, ln, e))
        where = "%s line %d" % (path, ln)
        validate(d, schema, where)
        dur = d["duration"]
        prev = 0.0
        for k, w in enumerate(d["words"]):
            if not (prev - EPS <= w["start"] <= w["end"] <= dur + EPS):
                fail("%s: word %d %r [%.3f, %.3f] not monotonic/inside [0, %.3f]"
                     % (where, k, w["word"], w["start"], w["end"], dur))
            if w["word"] != w["word"].strip():
                fail("%s: word %d has surrounding whitespace" % (where, k))
            prev = w["end"]
        nxt = 0
        for k, s in enumerate(d["segments"]):
            if s["id"] != k or s["first_word"] != nxt:
                fail("%s: segment %d: id/first_word %d/%d, expected %d/%d"
                     % (where, k, s["id"], s["first_word"], k, nxt))
            ws = d["words"][s["first_word"]:s["first_word"] + s["n_words"]]
            if len(ws) != s["n_words"]:
                fail("%s: segment %d runs past the words" % (where, k))
            if abs(s["start"] - ws[0]["start"]) > EPS or abs(s["end"] - ws[-1]["end"]) > EPS:
                fail("%s: segment %d times differ from its words'" % (where, k))
            if "".join(x["word"] for x in ws) != "".join(s["text"].split()):
                fail("%s: segment %d text %r is not its words" % (where, k, s["text"]))
            nxt += s["n_words"]
        if nxt != len(d["words"]):
            fail("%s: segments cover %d of %d words" % (where, nxt, len(d["words"])))
        if "".join(d["text"].split()) != "".join(w["word"] for w in d["words"]):
            fail("%s: text is not the concatenation of the words" % where)
        ts = [t["t"] for t in d["tokens"]]
        if ts != sorted(ts):
            fail("%s: token times not monotonic" % where)
        docs += 1
    if not docs:
        fail("%s: no JSON documents" % path)
    print("ok: json %s, %d documents" % (path, docs))


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("srt", "vtt", "json"):
        print(__doc__)
        sys.exit(2)
    kind, path, arg = sys.argv[1:]
    if kind == "json":
        check_json(path, arg)
    else:
        check_cues(kind, path, float(arg))


if __name__ == "__main__":
    main()
