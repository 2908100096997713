/* test_tekken.c - the C tekken tokenizer against mistral-common fixtures.
 *
 * tests/fixtures/tokenizer/ (one JSON per tekken file) were made by tests/reference/tok_ref.py: mistral-common 1.13.1
 * (tiktoken 0.14) loaded tekken.json files written by our generator (vox_tekken_gen) and
 * encoded / decoded strings and id sequences. Here the same generator options regenerate the
 * files (the bytes must hash as the ones Python read), and the C tokenizer must reproduce every
 * id and every decoded byte exactly (no tolerance: tokenization is discrete). Also: streaming
 * decode == whole decode, special-token lookup, audio block, error cases, speed on 100k chars. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "vox_common.h"
#include "vox_tekken.h"
#include "vox_tekken_gen.h"
#include "vox_test.h"

static const char *const fixtures[] = {"tekken_real", "tekken_alt", "tekken_big", "tekken_tts"};

static uint64_t fnv1a64(const unsigned char *p, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

/* hex string -> malloc'ed bytes (NUL-terminated for convenience). */
static unsigned char *unhex(const char *h, size_t *n) {
    size_t l = strlen(h) / 2;
    unsigned char *o = malloc(l + 1);
    if (!o) return NULL;
    for (size_t i = 0; i < l; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        o[i] = (unsigned char)v;
    }
    o[l] = 0;
    *n = l;
    return o;
}

static int32_t *json_ids(const cJSON *a, size_t *n) {
    int c = cJSON_GetArraySize(a);
    int32_t *ids = malloc((size_t)(c ? c : 1) * sizeof *ids);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) ids[i++] = (int32_t)e->valuedouble;
    *n = (size_t)c;
    return ids;
}

static int getnum(const cJSON *o, const char *k) {
    return (int)cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble;
}

/* Streaming decode of ids with policy; returns malloc'ed bytes or NULL on error. */
static char *stream_decode(const vox_tekken *t, const int32_t *ids, size_t n, int policy,
                           size_t *len, int *n_partial_ok) {
    size_t cap = vox_tekken_stream_max_out(t);
    char *piece = malloc(cap);
    size_t total_cap = 16 + n * cap;
    char *out = malloc(total_cap);
    size_t o = 0;
    vox_tekken_stream s;
    vox_tekken_stream_init(&s, t, (vox_tekken_special_policy)policy);
    vox_error err = {0};
    for (size_t i = 0; i < n; i++) {
        size_t w;
        if (vox_tekken_stream_push(&s, ids[i], piece, cap, &w, &err) != VOX_OK) {
            free(piece);
            free(out);
            return NULL;
        }
        /* every emitted chunk must be complete UTF-8 on its own */
        char *chk = NULL;
        (void)chk;
        memcpy(out + o, piece, w);
        o += w;
        if (n_partial_ok) {
            /* a chunk never ends inside a character: validate by a tiny scan */
            size_t j = 0;
            int ok = 1;
            while (j < w) {
                unsigned c = (unsigned char)piece[j];
                size_t l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
                if (j + l > w) ok = 0;
                j += l;
            }
            if (!ok) (*n_partial_ok)++;
        }
    }
    size_t w;
    vox_tekken_stream_flush(&s, piece, cap, &w, &err);
    memcpy(out + o, piece, w);
    o += w;
    free(piece);
    *len = o;
    return out;
}

static void check_fixture(vox_test_state *ts, const char *name) {
    char path[1024], tek_path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/tokenizer/%s.json", VOX_SOURCE_DIR, name);
    snprintf(tek_path, sizeof tek_path, "%s/test_tekken_%s.json", VOX_BINARY_DIR, name);
    vox_error err = {0};
    size_t flen = 0;
    char *ftext = vox_read_file(path, &flen, &err);
    VOX_CHECK(ts, ftext != NULL, "%s: %s", name, err.msg);
    if (!ftext) return;
    cJSON *fx = cJSON_ParseWithLength(ftext, flen);
    free(ftext);
    VOX_CHECK(ts, fx != NULL, "%s: fixture is not JSON", name);
    if (!fx) return;

    /* 1. regenerate the tekken.json with the same options */
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(fx, "generator");
    vox_tekken_gen_opts o;
    vox_tekken_gen_defaults(&o);
    o.n_special = getnum(g, "n_special");
    o.default_vocab_size = getnum(g, "default_vocab_size");
    o.n_vocab_stored = getnum(g, "n_vocab_stored");
    o.seed = (uint64_t)cJSON_GetObjectItemCaseSensitive(g, "seed")->valuedouble;
    o.delay_ms = getnum(g, "delay_ms");
    o.real_pattern = getnum(g, "real_pattern");
    o.tts = getnum(g, "tts");
    o.version = cJSON_GetObjectItemCaseSensitive(g, "version")->valuestring;
    const cJSON *voices = cJSON_GetObjectItemCaseSensitive(fx, "voices");
    const char *vnames[16];
    int vcounts[16];
    int nv = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, voices) {
        if (nv < 16) {
            vnames[nv] = v->string;
            vcounts[nv++] = (int)v->valuedouble;
        }
    }
    o.n_voices = nv;
    o.voice_names = vnames;
    o.voice_num_audio_tokens = vcounts;
    int rc = vox_tekken_gen_write(tek_path, &o, &err);
    VOX_CHECK(ts, rc == VOX_OK, "%s: generator: %s", name, err.msg);
    size_t tlen = 0;
    char *ttext = vox_read_file(tek_path, &tlen, &err);
    VOX_CHECK(ts, ttext != NULL, "%s: %s", name, err.msg);
    if (ttext) {
        char hash[32];
        snprintf(hash, sizeof hash, "%016llx",
                 (unsigned long long)fnv1a64((const unsigned char *)ttext, tlen));
        VOX_CHECK(ts, (int)tlen == getnum(fx, "file_size"), "%s: generated %zu bytes, fixture %d",
                  name, tlen, getnum(fx, "file_size"));
        VOX_CHECK(ts,
                  strcmp(hash, cJSON_GetObjectItemCaseSensitive(fx, "file_fnv1a64")->valuestring) == 0,
                  "%s: generated file hash %s differs from the one mistral-common read", name,
                  hash);
        free(ttext);
    }

    /* 2. load */
    vox_tekken *t = vox_tekken_load(tek_path, &err);
    VOX_CHECK(ts, t != NULL, "%s: load: %s", name, err.msg);
    if (!t) {
        cJSON_Delete(fx);
        return;
    }
    const cJSON *checks = cJSON_GetObjectItemCaseSensitive(fx, "checks");
    VOX_CHECK(ts, vox_tekken_n_special(t) == getnum(checks, "num_special_tokens"), "%s n_special",
              name);
    VOX_CHECK(ts, vox_tekken_vocab_size(t) == getnum(checks, "n_words"), "%s vocab_size", name);
    VOX_CHECK(ts,
              strcmp(vox_tekken_version(t),
                     cJSON_GetObjectItemCaseSensitive(checks, "version")->valuestring) == 0,
              "%s version %s", name, vox_tekken_version(t));
    const vox_tekken_audio *au = vox_tekken_audio_config(t);
    const cJSON *streaming = cJSON_GetObjectItemCaseSensitive(checks, "audio_is_streaming");
    VOX_CHECK(ts, au->present == (streaming != NULL), "%s audio present %d", name, au->present);
    if (streaming) {
        VOX_CHECK(ts, au->streaming == cJSON_IsTrue(streaming), "%s audio streaming", name);
        VOX_CHECK(ts, au->sampling_rate > 0 && au->frame_rate == 12.5, "%s audio rates", name);
    }
    if (au->streaming) {
        VOX_CHECK(ts, au->transcription_delay_ms == getnum(checks, "transcription_delay_ms"),
                  "%s delay %g", name, au->transcription_delay_ms);
        VOX_CHECK(ts, au->streaming_n_left_pad_tokens == 32 && au->num_mel_bins == 128 &&
                          au->hop_length == 160 && au->window_size == 400 &&
                          au->streaming_look_ahead_ms == 2.5 && au->streaming_look_back_ms == 52.5,
                  "%s audio block values", name);
    }
    VOX_CHECK(ts, au->n_voices == nv, "%s voices %d vs %d", name, au->n_voices, nv);
    for (int i = 0; i < nv; i++)
        VOX_CHECK(ts, vox_tekken_voice_num_audio_tokens(t, vnames[i]) == vcounts[i], "%s voice %s",
                  name, vnames[i]);
    VOX_CHECK(ts, vox_tekken_voice_num_audio_tokens(t, "nobody") == -1, "%s unknown voice", name);
    const cJSON *asid = cJSON_GetObjectItemCaseSensitive(checks, "audio_special_ids");
    cJSON_ArrayForEach(v, asid) {
        static const char *const map[][2] = {{"audio", "[AUDIO]"},
                                             {"begin_audio", "[BEGIN_AUDIO]"},
                                             {"streaming_pad", "[STREAMING_PAD]"},
                                             {"text_to_audio", "[NEXT_AUDIO_TEXT]"},
                                             {"audio_to_text", "[REPEAT_AUDIO_TEXT]"}};
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
            if (strcmp(v->string, map[k][0]) == 0) {
                int want = cJSON_IsNull(v) ? -1 : (int)v->valuedouble;
                VOX_CHECK(ts, vox_tekken_special_id(t, map[k][1]) == want, "%s audio id %s", name,
                          map[k][1]);
            }
    }

    /* 3. special lookup */
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(fx, "special");
    cJSON_ArrayForEach(v, sp) {
        int id = vox_tekken_special_id(t, v->string);
        VOX_CHECK(ts, id == (int)v->valuedouble, "%s special %s: %d vs %d", name, v->string, id,
                  (int)v->valuedouble);
        if (id >= 0)
            VOX_CHECK(ts, strcmp(vox_tekken_special_name(t, id), v->string) == 0 &&
                              vox_tekken_is_special(t, id),
                      "%s special name %d", name, id);
    }
    VOX_CHECK(ts, !vox_tekken_is_special(t, vox_tekken_n_special(t)) &&
                      vox_tekken_special_name(t, vox_tekken_n_special(t)) == NULL,
              "%s first normal id is not special", name);

    /* 4. encode */
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(fx, "encode");
    int n_enc = 0, enc_bad = 0;
    cJSON_ArrayForEach(v, enc) {
        size_t tl;
        unsigned char *text = unhex(cJSON_GetObjectItemCaseSensitive(v, "hex")->valuestring, &tl);
        size_t n_want;
        int32_t *want = json_ids(cJSON_GetObjectItemCaseSensitive(v, "ids"), &n_want);
        int32_t *got = NULL;
        size_t n_got = 0;
        rc = vox_tekken_encode(t, (const char *)text, tl, &got, &n_got, &err);
        int same = rc == VOX_OK && n_got == n_want &&
                   (n_want == 0 || memcmp(got, want, n_want * sizeof *want) == 0);
        if (!same && enc_bad++ < 8) {
            fprintf(stderr, "%s encode %d \"%s\": rc %d, got", name, n_enc, text, rc);
            for (size_t i = 0; i < n_got && i < 20; i++) fprintf(stderr, " %d", got[i]);
            fprintf(stderr, " | want");
            for (size_t i = 0; i < n_want && i < 20; i++) fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n");
        }
        VOX_CHECK(ts, same, "%s encode case %d", name, n_enc);
        free(got);
        free(want);
        free(text);
        n_enc++;
    }

    /* 5. decode (IGNORE, KEEP, RAISE) and streaming decode */
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(fx, "decode");
    int n_dec = 0, n_split = 0;
    cJSON_ArrayForEach(v, dec) {
        size_t n;
        int32_t *ids = json_ids(cJSON_GetObjectItemCaseSensitive(v, "ids"), &n);
        static const char *const keys[2] = {"ignore_hex", "keep_hex"};
        for (int pol = 0; pol < 2; pol++) {
            size_t wl;
            unsigned char *want =
                unhex(cJSON_GetObjectItemCaseSensitive(v, keys[pol])->valuestring, &wl);
            char *got = NULL;
            size_t gl = 0;
            rc = vox_tekken_decode(t, ids, n, (vox_tekken_special_policy)pol, &got, &gl, &err);
            VOX_CHECK(ts, rc == VOX_OK && gl == wl && memcmp(got, want, wl) == 0,
                      "%s decode case %d policy %d: rc %d len %zu vs %zu", name, n_dec, pol, rc,
                      gl, wl);
            size_t sl = 0;
            char *sg = stream_decode(t, ids, n, pol, &sl, &n_split);
            VOX_CHECK(ts, sg && sl == wl && memcmp(sg, want, wl) == 0,
                      "%s stream decode case %d policy %d", name, n_dec, pol);
            free(sg);
            free(got);
            free(want);
        }
        char *got = NULL;
        rc = vox_tekken_decode(t, ids, n, VOX_TEKKEN_SPECIAL_RAISE, &got, NULL, &err);
        int raise_ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "raise_ok"));
        VOX_CHECK(ts, (rc == VOX_OK) == raise_ok, "%s decode case %d RAISE: rc %d", name, n_dec,
                  rc);
        free(got);
        free(ids);
        n_dec++;
    }
    /* 6. pre-split spans (tiktoken's piece boundaries) */
    const cJSON *spl = cJSON_GetObjectItemCaseSensitive(fx, "split");
    int n_spl = 0, spl_bad = 0;
    cJSON_ArrayForEach(v, spl) {
        size_t tl;
        unsigned char *text = unhex(cJSON_GetObjectItemCaseSensitive(v, "hex")->valuestring, &tl);
        size_t n_want;
        int32_t *want = json_ids(cJSON_GetObjectItemCaseSensitive(v, "spans"), &n_want);
        size_t *got = NULL, n_got = 0;
        rc = vox_tekken_pieces(t, (const char *)text, tl, &got, &n_got, &err);
        int same = rc == VOX_OK && 2 * n_got == n_want;
        for (size_t i = 0; same && i < n_want; i++) same = got[i] == (size_t)want[i];
        if (!same && spl_bad++ < 8) {
            fprintf(stderr, "%s split %d (hex %s): got", name, n_spl,
                    cJSON_GetObjectItemCaseSensitive(v, "hex")->valuestring);
            for (size_t i = 0; i < 2 * n_got && i < 16; i++) fprintf(stderr, " %zu", got[i]);
            fprintf(stderr, " | want");
            for (size_t i = 0; i < n_want && i < 16; i++) fprintf(stderr, " %d", want[i]);
            fprintf(stderr, "\n");
        }
        VOX_CHECK(ts, same, "%s split case %d", name, n_spl);
        free(got);
        free(want);
        free(text);
        n_spl++;
    }
    /* 7. TTS prompt layout (mistral-common encode_speech_request): <s> [BEGIN_AUDIO]
     * [AUDIO] x N(voice) [NEXT_AUDIO_TEXT] text [REPEAT_AUDIO_TEXT] [BEGIN_AUDIO] */
    const cJSON *speech = cJSON_GetObjectItemCaseSensitive(fx, "speech");
    int n_speech = 0;
    cJSON_ArrayForEach(v, speech) {
        size_t tl, n_want;
        unsigned char *text = unhex(cJSON_GetObjectItemCaseSensitive(v, "hex")->valuestring, &tl);
        int32_t *want = json_ids(cJSON_GetObjectItemCaseSensitive(v, "ids"), &n_want);
        int32_t *tids = NULL;
        size_t nt = 0;
        rc = vox_tekken_encode(t, (const char *)text, tl, &tids, &nt, &err);
        int na = vox_tekken_voice_num_audio_tokens(
            t, cJSON_GetObjectItemCaseSensitive(v, "voice")->valuestring);
        size_t np = 0;
        int32_t *prompt = malloc(((size_t)(na > 0 ? na : 0) + nt + 8) * sizeof *prompt);
        prompt[np++] = vox_tekken_special_id(t, "<s>");
        prompt[np++] = vox_tekken_special_id(t, "[BEGIN_AUDIO]");
        for (int k = 0; k < na; k++) prompt[np++] = vox_tekken_special_id(t, "[AUDIO]");
        prompt[np++] = vox_tekken_special_id(t, "[NEXT_AUDIO_TEXT]");
        for (size_t k = 0; k < nt; k++) prompt[np++] = tids[k];
        prompt[np++] = vox_tekken_special_id(t, "[REPEAT_AUDIO_TEXT]");
        prompt[np++] = vox_tekken_special_id(t, "[BEGIN_AUDIO]");
        VOX_CHECK(ts, rc == VOX_OK && na > 0 && np == n_want &&
                          memcmp(prompt, want, np * sizeof *prompt) == 0,
                  "%s speech prompt %d: %zu vs %zu ids", name, n_speech, np, n_want);
        free(prompt);
        free(tids);
        free(want);
        free(text);
        n_speech++;
    }
    VOX_CHECK(ts, n_split == 0, "%s: %d streaming chunks ended inside a character", name,
              n_split);
    VOX_CHECK(ts, n_enc >= 200 && n_dec >= 100, "%s: %d encode, %d decode cases", name, n_enc,
              n_dec);
    if (strcmp(name, "tekken_real") == 0 || strcmp(name, "tekken_alt") == 0)
        VOX_CHECK(ts, n_spl >= 200, "%s: %d split cases", name, n_spl);
    if (nv > 0) VOX_CHECK(ts, n_speech >= 3, "%s: %d speech prompts", name, n_speech);
    printf("%s: %d encode, %d decode, %d split cases checked\n", name, n_enc, n_dec, n_spl);
    vox_tekken_free(t);
    cJSON_Delete(fx);
}

/* ---------------------------------------------------------------- error cases */

static char *replace_once(const char *s, const char *from, const char *to) {
    const char *p = strstr(s, from);
    if (!p) return NULL;
    size_t a = (size_t)(p - s), lf = strlen(from), lt = strlen(to), ls = strlen(s);
    char *o = malloc(ls - lf + lt + 1);
    memcpy(o, s, a);
    memcpy(o + a, to, lt);
    memcpy(o + a + lt, p + lf, ls - a - lf + 1);
    return o;
}

static void expect_parse_error(vox_test_state *ts, const char *base, const char *from,
                               const char *to, int code, const char *needle) {
    char *j = replace_once(base, from, to);
    VOX_CHECK(ts, j != NULL, "mutation '%s' not applicable", from);
    if (!j) return;
    vox_error err = {0};
    vox_tekken *t = vox_tekken_parse(j, strlen(j), "mut.json", &err);
    VOX_CHECK(ts, t == NULL && err.code == code && strstr(err.msg, needle),
              "mutation '%s' -> '%s': code %d msg '%s' (want %d, '%s')", from, to, err.code,
              err.msg, code, needle);
    if (t) vox_tekken_free(t);
    free(j);
}

static void check_errors(vox_test_state *ts) {
    vox_error err = {0};
    vox_tekken *t = vox_tekken_load("/nonexistent/dir/tekken.json", &err);
    VOX_CHECK(ts, t == NULL && err.code == VOX_ERR_IO && strstr(err.msg, "/nonexistent"),
              "missing file: %d %s", err.code, err.msg);

    /* a small valid file: 40 specials, 256 byte tokens + a few merges */
    char path[1024];
    snprintf(path, sizeof path, "%s/test_tekken_small.json", VOX_BINARY_DIR);
    vox_tekken_gen_opts o;
    vox_tekken_gen_defaults(&o);
    o.n_special = 40;
    o.default_vocab_size = 40 + 300;
    o.n_vocab_stored = 300;
    o.delay_ms = 0;
    o.version = "v13";
    VOX_CHECK(ts, vox_tekken_gen_write(path, &o, &err) == VOX_OK, "small gen: %s", err.msg);
    size_t len = 0;
    char *base = vox_read_file(path, &len, &err);
    VOX_CHECK(ts, base != NULL, "small read");
    if (!base) return;
    t = vox_tekken_parse(base, len, "small.json", &err);
    VOX_CHECK(ts, t != NULL, "small parse: %s", err.msg);
    if (t) {
        VOX_CHECK(ts, !vox_tekken_audio_config(t)->present, "small: no audio block");
        /* encode errors: invalid UTF-8 input */
        int32_t *ids = NULL;
        size_t n = 0;
        VOX_CHECK(ts, vox_tekken_encode(t, "a\xC3(", 3, &ids, &n, &err) == VOX_ERR_ARG &&
                          strstr(err.msg, "UTF-8"),
                  "invalid UTF-8 input: %s", err.msg);
        VOX_CHECK(ts, vox_tekken_encode(t, "\xED\xA0\x80", 3, &ids, &n, &err) == VOX_ERR_ARG,
                  "surrogate input rejected");
        VOX_CHECK(ts, vox_tekken_encode(t, "", 0, &ids, &n, &err) == VOX_OK && n == 0, "empty");
        free(ids);
        /* decode errors: ids out of range */
        int32_t bad[2] = {41, 340};
        char *s = NULL;
        VOX_CHECK(ts, vox_tekken_decode(t, bad, 2, VOX_TEKKEN_SPECIAL_IGNORE, &s, NULL, &err) ==
                              VOX_ERR_ARG && strstr(err.msg, "340"),
                  "id >= vocab_size: %s", err.msg);
        int32_t neg = -1;
        VOX_CHECK(ts, vox_tekken_decode(t, &neg, 1, VOX_TEKKEN_SPECIAL_IGNORE, &s, NULL, &err) ==
                          VOX_ERR_ARG,
                  "negative id");
        vox_tekken_stream st;
        vox_tekken_stream_init(&st, t, VOX_TEKKEN_SPECIAL_IGNORE);
        char small[2];
        size_t w;
        VOX_CHECK(ts, vox_tekken_stream_push(&st, 300, small, sizeof small, &w, &err) ==
                          VOX_ERR_ARG,
                  "stream buffer too small");
        size_t nb = 0;
        VOX_CHECK(ts, vox_tekken_token_bytes(t, 39, &nb) == NULL &&
                          vox_tekken_token_bytes(t, 40 + 'a', &nb)[0] == 'a' && nb == 1,
                  "token bytes");
        vox_tekken_free(t);
    }
    /* parse errors: each names the item */
    expect_parse_error(ts, base, "{", "[", VOX_ERR_FORMAT, "JSON");
    expect_parse_error(ts, base, "\"config\": {", "\"config\": {\"x\": }, \"y\": {",
                       VOX_ERR_FORMAT, "invalid JSON");
    expect_parse_error(ts, base, "\"config\"", "\"konfig\"", VOX_ERR_FORMAT, "config");
    expect_parse_error(ts, base, "\"pattern\"", "\"pat\"", VOX_ERR_FORMAT, "config.pattern");
    expect_parse_error(ts, base, "\"version\": \"v13\"", "\"version\": \"v99\"", VOX_ERR_FORMAT,
                       "config.version");
    expect_parse_error(ts, base, "\"default_vocab_size\"", "\"dvs\"", VOX_ERR_FORMAT,
                       "default_vocab_size");
    expect_parse_error(ts, base, "\"default_num_special_tokens\": 40",
                       "\"default_num_special_tokens\": \"40\"", VOX_ERR_FORMAT,
                       "default_num_special_tokens: expected an integer, found a string");
    expect_parse_error(ts, base, "\"default_vocab_size\": 340", "\"default_vocab_size\": 1e300",
                       VOX_ERR_FORMAT, "default_vocab_size: expected an integer");
    expect_parse_error(ts, base, "\"default_vocab_size\": 340", "\"default_vocab_size\": 340.5",
                       VOX_ERR_FORMAT, "default_vocab_size: expected an integer");
    expect_parse_error(ts, base, "\"default_vocab_size\": 340", "\"default_vocab_size\": 341",
                       VOX_ERR_FORMAT, "entries needed, found 300");
    expect_parse_error(ts, base, "\"default_vocab_size\": 340", "\"default_vocab_size\": 200",
                       VOX_ERR_FORMAT, ">= 256");
    expect_parse_error(ts, base, "\"vocab\"", "\"vocabulary\"", VOX_ERR_FORMAT, "vocab");
    expect_parse_error(ts, base, "{\"rank\": 7,", "{\"rank\": 8,", VOX_ERR_FORMAT,
                       "vocab[7].rank: expected 7, found 8");
    expect_parse_error(ts, base, "\"token_bytes\": \"QQ==\"", "\"token_bytes\": \"Qg==\"",
                       VOX_ERR_FORMAT, "vocab[65]: ranks 0..255 must be the single bytes");
    expect_parse_error(ts, base, "\"token_bytes\": \"QQ==\"", "\"token_bytes\": \"Q!==\"",
                       VOX_ERR_FORMAT, "invalid base64");
    expect_parse_error(ts, base, "\"token_bytes\": \"QQ==\"", "\"tb\": \"QQ==\"", VOX_ERR_FORMAT,
                       "vocab[65].token_bytes");
    expect_parse_error(ts, base, "\"token_str\": \"[INST]\"", "\"token_str\": \"<s>\"",
                       VOX_ERR_FORMAT, "\"<s>\" of rank 3 repeats rank 1");
    expect_parse_error(ts, base, "\"token_str\": \"<SPECIAL_38>\"", "\"token_str\": \"<SPECIAL_39>\"",
                       VOX_ERR_FORMAT, "\"<SPECIAL_39>\" of rank 39 repeats rank 38");
    /* fewer listed specials than default_num_special_tokens: fillers are added, and a listed
     * name equal to a filler name is a repeat (mistral-common asserts the same) */
    {
        char *j = replace_once(base, ",\n    {\"rank\": 39, \"token_str\": \"<SPECIAL_39>\", \"is_control\": true}", "");
        vox_tekken *d = j ? vox_tekken_parse(j, strlen(j), "fill.json", &err) : NULL;
        VOX_CHECK(ts, d && vox_tekken_special_id(d, "<SPECIAL_39>") == 39, "filler added: %s", err.msg);
        if (d) vox_tekken_free(d);
        char *k = j ? replace_once(j, "\"<SPECIAL_38>\"", "\"<SPECIAL_39>\"") : NULL;
        d = k ? vox_tekken_parse(k, strlen(k), "fill.json", &err) : NULL;
        VOX_CHECK(ts, !d && strstr(err.msg, "\"<SPECIAL_39>\" of rank 39 repeats rank 38"),
                  "filler clash: %s", err.msg);
        if (d) vox_tekken_free(d);
        free(j);
        free(k);
    }
    expect_parse_error(ts, base, "{\"rank\": 5, \"token_str\"", "{\"rank\": 6, \"token_str\"",
                       VOX_ERR_FORMAT, "special_tokens[5].rank: expected 5, found 6");
    expect_parse_error(ts, base, "\"special_tokens\"", "\"specials\"", VOX_ERR_FORMAT,
                       "special_tokens: required for version v13");
    expect_parse_error(ts, base, "\"pattern\": \"", "\"pattern\": \"(", VOX_ERR_FORMAT,
                       "PCRE2 cannot compile");
    /* a second copy of the byte token for 'A' at rank 256 would duplicate bytes */
    {
        char *p = strstr(base, "{\"rank\": 256, \"token_bytes\": \"");
        VOX_CHECK(ts, p != NULL, "rank 256 present");
        if (p) {
            char *q = strchr(p + 30, '"');
            size_t pre = (size_t)(p + 30 - base);
            char *j = malloc(strlen(base) + 16);
            memcpy(j, base, pre);
            strcpy(j + pre, "QQ==");
            strcat(j, q);
            vox_tekken *d = vox_tekken_parse(j, strlen(j), "dup.json", &err);
            VOX_CHECK(ts, d == NULL && strstr(err.msg, "vocab[256].token_bytes: same bytes as vocab[65]"),
                      "duplicate bytes: %s", err.msg);
            if (d) vox_tekken_free(d);
            free(j);
        }
    }
    /* without special_tokens a v7 file gets the 20 deprecated names and fillers */
    {
        char *j = replace_once(base, "\"version\": \"v13\"", "\"version\": \"v7\"");
        char *k = j ? replace_once(j, "\"special_tokens\"", "\"not_special_tokens\"") : NULL;
        vox_tekken *d = k ? vox_tekken_parse(k, strlen(k), "v7.json", &err) : NULL;
        VOX_CHECK(ts, d != NULL, "v7 without special_tokens: %s", err.msg);
        if (d) {
            VOX_CHECK(ts, vox_tekken_special_id(d, "[TOOL_CONTENT]") == 19 &&
                              vox_tekken_special_id(d, "<SPECIAL_20>") == 20 &&
                              vox_tekken_special_id(d, "[STREAMING_PAD]") == -1,
                      "deprecated specials");
            vox_tekken_free(d);
        }
        free(j);
        free(k);
    }
    /* generator option errors */
    o.n_special = 30;
    VOX_CHECK(ts, vox_tekken_gen_write(path, &o, &err) == VOX_ERR_ARG, "gen n_special too small");
    vox_tekken_gen_defaults(&o);
    o.delay_ms = 500;
    VOX_CHECK(ts, vox_tekken_gen_write(path, &o, &err) == VOX_ERR_ARG &&
                      strstr(err.msg, "multiple of 80"),
              "gen delay: %s", err.msg);
    vox_tekken_gen_defaults(&o);
    o.n_vocab_stored = 1000; /* < default_vocab_size - n_special = 1048 */
    VOX_CHECK(ts, vox_tekken_gen_write(path, &o, &err) == VOX_ERR_ARG, "gen sizes");
    free(base);
}

/* ---------------------------------------------------------------- speed and determinism */

static void check_speed(vox_test_state *ts) {
    char path[1024], path2[1024];
    snprintf(path, sizeof path, "%s/test_tekken_speed.json", VOX_BINARY_DIR);
    snprintf(path2, sizeof path2, "%s/test_tekken_speed2.json", VOX_BINARY_DIR);
    vox_error err = {0};
    vox_tekken_gen_opts o;
    vox_tekken_gen_defaults(&o);
    o.n_vocab_stored = 5000;
    o.default_vocab_size = 1000 + 4000;
    o.seed = 99;
    VOX_CHECK(ts, vox_tekken_gen_write(path, &o, &err) == VOX_OK, "speed gen: %s", err.msg);
    VOX_CHECK(ts, vox_tekken_gen_write(path2, &o, &err) == VOX_OK, "speed gen 2");
    size_t l1 = 0, l2 = 0;
    char *a = vox_read_file(path, &l1, &err), *b = vox_read_file(path2, &l2, &err);
    VOX_CHECK(ts, a && b && l1 == l2 && memcmp(a, b, l1) == 0, "generator deterministic");
    free(a);
    free(b);
    o.seed = 100;
    VOX_CHECK(ts, vox_tekken_gen_write(path2, &o, &err) == VOX_OK, "speed gen 3");
    b = vox_read_file(path2, &l2, &err);
    a = vox_read_file(path, &l1, &err);
    VOX_CHECK(ts, a && b && (l1 != l2 || memcmp(a, b, l1) != 0), "seed changes the file");
    free(a);
    free(b);
    vox_tekken *t = vox_tekken_load(path, &err);
    VOX_CHECK(ts, t != NULL, "speed load: %s", err.msg);
    if (!t) return;
    /* 100k chars of mixed text, then pathological single pieces */
    static const char *const parts[] = {"Hello, this is a test of the system. ", "Très bien! ",
                                        "你好，世界。", "😀👍🏽 ", "12345 ", "\n\n\t", "    ",
                                        "don't stop ", "ÀÉÎ "};
    size_t cap = 110000 * 4, n = 0;
    char *text = malloc(cap);
    uint64_t r = 1;
    while (n < 100000) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        const char *p = parts[(r >> 33) % (sizeof parts / sizeof parts[0])];
        size_t l = strlen(p);
        memcpy(text + n, p, l);
        n += l;
    }
    struct {
        const char *what;
        size_t len;
        int fill;
    } cases[] = {{"100k mixed text", n, 0}, {"100k spaces", 100000, ' '},
                 {"100k letters", 100000, 'a'}, {"100k digits", 100000, '7'},
                 {"100k newlines", 100000, '\n'}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (cases[c].fill) memset(text, cases[c].fill, cases[c].len);
        double t0 = vox_time_now();
        int32_t *ids = NULL;
        size_t n_ids = 0;
        int rc = vox_tekken_encode(t, text, cases[c].len, &ids, &n_ids, &err);
        double t1 = vox_time_now();
        char *back = NULL;
        size_t bl = 0;
        int rc2 = rc ? rc : vox_tekken_decode(t, ids, n_ids, VOX_TEKKEN_SPECIAL_IGNORE, &back, &bl, &err);
        VOX_CHECK(ts, rc == VOX_OK && rc2 == VOX_OK && bl == cases[c].len &&
                          memcmp(back, text, bl) == 0,
                  "%s: round trip", cases[c].what);
        /* generous bound for ASan on a shared 2-core machine; typical is ~10-50 ms */
        VOX_CHECK(ts, t1 - t0 < 5.0, "%s: encode took %.2f s", cases[c].what, t1 - t0);
        printf("%s: %zu bytes -> %zu ids, encode %.1f ms\n", cases[c].what, cases[c].len, n_ids,
               (t1 - t0) * 1e3);
        free(ids);
        free(back);
    }
    free(text);
    vox_tekken_free(t);
}

int main(void) {
    vox_test_state ts = {0};
    for (size_t i = 0; i < sizeof fixtures / sizeof fixtures[0]; i++) check_fixture(&ts, fixtures[i]);
    check_errors(&ts);
    check_speed(&ts);
    return vox_test_done(&ts, "test_tekken");
}
