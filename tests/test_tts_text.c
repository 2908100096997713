/* test_tts_text.c - vox_tts_split_text (tts/text.c) and vox_tts_voice_lang.
 *
 * Two kinds of checks:
 * - hand-worked cases: the chunk strings expected from the rules in vox_tts.h (sentence marks,
 *   "3.14", runs of marks and closing quotes, newlines, the abbreviation policy, clause-mark and
 *   space cuts and the 3/4 window, CJK full stops and full-width commas, the byte-boundary
 *   fallback), each written out by hand here;
 * - invariants on every output, including 100 000-byte texts (no punctuation, no spaces, CJK,
 *   4-byte emoji, invalid UTF-8) and 3000 random texts: every chunk is 1..max bytes, starts and
 *   ends on a UTF-8 character boundary of valid input, has no leading/trailing ASCII whitespace,
 *   chunks are in order and disjoint, and the bytes outside all chunks are whitespace (nothing
 *   spoken is lost or repeated). */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_mkmodel.h"
#include "vox_test.h"
#include "vox_tts.h"

static vox_test_state ts;

static int is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
static int is_cont(unsigned char c) {
    return (c & 0xC0) == 0x80;
}

/* Invariants; valid_utf8: also check the character boundaries. Returns failures. */
static int check_invariants(const char *what, const char *t, size_t n, size_t max,
                            const vox_tts_span *c, size_t nc, int valid_utf8) {
    int bad = 0;
    size_t prev_end = 0;
    for (size_t k = 0; k < nc && bad < 3; k++) {
        size_t o = c[k].off, l = c[k].len;
        const char *why = NULL;
        if (l < 1 || l > max)
            why = "length outside 1..max";
        else if (o < prev_end || o + l > n)
            why = "out of order or past the end";
        else if (is_ws((unsigned char)t[o]) || is_ws((unsigned char)t[o + l - 1]))
            why = "not trimmed";
        else if (valid_utf8 &&
                 (is_cont((unsigned char)t[o]) || (o + l < n && is_cont((unsigned char)t[o + l]))))
            why = "cuts a multi-byte character";
        else
            for (size_t i = prev_end; i < o; i++)
                if (!is_ws((unsigned char)t[i])) {
                    why = "a non-whitespace byte between chunks is lost";
                    break;
                }
        if (why) {
            bad++;
            VOX_CHECK(&ts, 0, "%s: chunk %zu (off %zu len %zu, max %zu): %s", what, k, o, l, max,
                      why);
        }
        prev_end = o + l;
    }
    for (size_t i = prev_end; i < n && !bad; i++)
        if (!is_ws((unsigned char)t[i])) {
            bad++;
            VOX_CHECK(&ts, 0, "%s: byte %zu after the last chunk is lost", what, i);
        }
    return bad;
}

/* Split t (NUL-terminated) at max and compare with the expected chunks (NULL-terminated). */
static void expect(const char *t, size_t max, const char *const *want) {
    vox_tts_span *c = NULL;
    size_t nc = 0;
    vox_error e = {0};
    int rc = vox_tts_split_text(t, strlen(t), max, &c, &nc, &e);
    VOX_CHECK(&ts, rc == 0, "split '%s': %s", t, e.msg);
    size_t nw = 0;
    while (want[nw])
        nw++;
    int ok = nc == nw;
    for (size_t k = 0; ok && k < nc; k++)
        ok = c[k].len == strlen(want[k]) && !memcmp(t + c[k].off, want[k], c[k].len);
    if (!ok) {
        fprintf(stderr, "split '%s' at %zu gave %zu chunks:", t, max, nc);
        for (size_t k = 0; k < nc; k++)
            fprintf(stderr, " [%.*s]", (int)c[k].len, t + c[k].off);
        fprintf(stderr, "\n");
    }
    VOX_CHECK(&ts, ok, "split '%s' at %zu: %zu chunks, expected %zu (see above)", t, max, nc, nw);
    if (!rc) check_invariants(t, t, strlen(t), max, c, nc, 1);
    free(c);
}

#define E(max, text, ...) expect(text, max, (const char *const[]){__VA_ARGS__, NULL})

static void hand_cases(void) {
    /* sentences and packing */
    E(400, "Hello there. How are you?", "Hello there. How are you?");
    E(16, "Hello there. How are you?", "Hello there.", "How are you?");
    E(25, "Hello there. How are you?", "Hello there. How are you?"); /* exactly max */
    E(24, "Hello there. How are you?", "Hello there.", "How are you?");
    E(20, "Version 3.14 is out. Yes!", "Version 3.14 is out.", "Yes!");
    E(8, "e.g.x y", "e.g.x y");              /* '.' before a letter ends nothing */
    E(8, "Wait... what", "Wait...", "what"); /* a run of marks stays together */
    E(12, "Really?! Yes.", "Really?!", "Yes.");
    E(16, "He said \"Stop!\" Then left.", "He said \"Stop!\"", "Then left.");
    E(16, "(As planned.) Go on.", "(As planned.)", "Go on.");
    E(12, "First line\nsecond line", "First line", "second line");
    E(400, "First line\nsecond line", "First line\nsecond line"); /* packed, newline kept */
    E(16, "Wait\xe2\x80\xa6 what? Really!", "Wait\xe2\x80\xa6 what?", "Really!");
    E(400, "  \t\n  ", NULL);
    E(400, "", NULL);
    E(400, "  padded  ", "padded");
    /* abbreviation policy: no list, a '.' before whitespace ends a sentence */
    E(10, "Dr. Smith is here.", "Dr.", "Smith is", "here.");
    E(400, "Dr. Smith is here.", "Dr. Smith is here.");
    E(10, "U.S.A. is big.", "U.S.A.", "is big.");
    /* over-long sentences: clause mark, else space, inside the last 3/4 of the window */
    E(16, "one two three, four five six seven eight", "one two three,", "four five six",
      "seven eight");
    E(16, "a, bbbbbbbbbbbbbbbbbbbb", "a, bbbbbbbbbbbbb", "bbbbbbb"); /* ", " before max/4 */
    E(10, "aaaaaaaaaaaaaaaaaaaaaaaaa", "aaaaaaaaaa", "aaaaaaaaaa", "aaaaa");
    E(12, "alpha;beta:gamma delta", "alpha;beta:", "gamma delta");
    /* CJK: 。 ends a sentence anywhere (no space needed), ， is a clause mark, never mid-char */
    E(24, "今日は晴れです。明日は雨です。", "今日は晴れです。", "明日は雨です。");
    E(48, "今日は晴れです。明日は雨です。", "今日は晴れです。明日は雨です。");
    E(20, "一二三四五，六七八九十", "一二三四五，", "六七八九十");
    E(10, "一二三四五六七", "一二三", "四五六", "七"); /* 10 bytes -> 9 (3 characters) */
    E(6, "\xf0\x9f\x98\x80\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"); /* 😀😀 */
    E(18, "本当？はい！", "本当？はい！");
    E(17, "本当？はい！", "本当？", "はい！");
    E(9, "本当？はい！", "本当？", "はい！");
}

static void check_big(const char *what, const char *t, size_t n, size_t max, int valid_utf8,
                      size_t want_chunks) {
    vox_tts_span *c = NULL;
    size_t nc = 0;
    vox_error e = {0};
    int rc = vox_tts_split_text(t, n, max, &c, &nc, &e);
    VOX_CHECK(&ts, rc == 0, "%s: %s", what, e.msg);
    int bad = check_invariants(what, t, n, max, c, nc, valid_utf8);
    VOX_CHECK(&ts, bad == 0, "%s: invariants", what);
    if (want_chunks)
        VOX_CHECK(&ts, nc == want_chunks, "%s: %zu chunks, expected %zu", what, nc, want_chunks);
    printf("%s: %zu bytes -> %zu chunks\n", what, n, nc);
    free(c);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static void big_cases(void) {
    enum { N = 100000 };
    char *t = malloc(N + 8);
    /* no punctuation, words and spaces: every cut falls after a space (<= 400 bytes) */
    size_t n = 0;
    while (n < N) {
        int wl = 1 + (int)(rnd() % 9);
        for (int i = 0; i < wl && n < N; i++)
            t[n++] = (char)('a' + rnd() % 26);
        if (n < N) t[n++] = ' ';
    }
    check_big("100000 bytes of words, no punctuation", t, N, 400, 1, 0);
    {
        vox_tts_span *c = NULL;
        size_t nc = 0;
        vox_tts_split_text(t, N, 400, &c, &nc, NULL);
        int at_word = 1;
        for (size_t k = 0; k < nc; k++) {
            size_t end = c[k].off + c[k].len;
            if (end < N && t[end] != ' ') at_word = 0;
            if (k + 1 < nc && c[k].len < 300) at_word = 0; /* cut within the last 3/4 */
        }
        VOX_CHECK(&ts, at_word && nc > 0, "words: every chunk ends before a space and is >= 300");
        free(c);
    }
    /* no punctuation, no spaces: byte-exact pieces of max */
    memset(t, 'x', N);
    check_big("100000 bytes without spaces", t, N, 400, 1, 250);
    /* CJK without punctuation: 3-byte characters, 133 per 400-byte chunk */
    for (n = 0; n + 3 <= N; n += 3)
        memcpy(t + n, "\xe8\xaa\x9e", 3); /* 語 */
    check_big("99999 bytes of CJK", t, n, 400, 1, (n / 3 + 132) / 133);
    /* 4-byte emoji, max 7: one per chunk */
    for (n = 0; n + 4 <= N; n += 4)
        memcpy(t + n, "\xf0\x9f\x98\x80", 4);
    check_big("100000 bytes of emoji at max 7", t, n, 7, 1, n / 4);
    /* mixed CJK sentences with 。 and full-width commas */
    const char *pieces[] = {"今日は", "晴れ", "です", "。", "，", "明日", "、", "！", "雨"};
    for (n = 0; n < N - 16;) {
        const char *p = pieces[rnd() % 9];
        memcpy(t + n, p, strlen(p));
        n += strlen(p);
    }
    check_big("CJK sentences", t, n, 100, 1, 0);
    /* invalid UTF-8 (continuation bytes only): still progresses, lengths within max */
    memset(t, 0x80, N);
    check_big("100000 continuation bytes", t, N, 400, 0, 250);
    free(t);
}

/* Random texts over an alphabet of pieces that exercise every rule. */
static void fuzz(void) {
    const char *pieces[] = {"word",
                            "a",
                            " ",
                            "  ",
                            ".",
                            "!",
                            "?",
                            "\n",
                            "\t",
                            "\xe2\x80\xa6",
                            "\xe3\x80\x82",
                            "\xef\xbc\x81",
                            "\xef\xbc\x9f",
                            "\xef\xbc\x8c",
                            ",",
                            ";",
                            ":",
                            "\"",
                            "'",
                            ")",
                            "]",
                            "3.14",
                            "\xe8\xaa\x9e",
                            "\xf0\x9f\x98\x80",
                            "\xc3\xa9",
                            "Dr.",
                            "\r\n"};
    const int np = (int)(sizeof pieces / sizeof pieces[0]);
    char t[2048];
    int bad_runs = 0;
    for (int it = 0; it < 3000; it++) {
        size_t n = 0, want = rnd() % 600;
        while (n < want) {
            const char *p = pieces[rnd() % (unsigned)np];
            size_t l = strlen(p);
            memcpy(t + n, p, l);
            n += l;
        }
        size_t max = 4 + rnd() % 60;
        vox_tts_span *c = NULL;
        size_t nc = 0;
        if (vox_tts_split_text(t, n, max, &c, &nc, NULL) ||
            check_invariants("fuzz", t, n, max, c, nc, 1))
            bad_runs++;
        free(c);
    }
    VOX_CHECK(&ts, bad_runs == 0, "fuzz: %d of 3000 random texts broke an invariant", bad_runs);
    /* NUL bytes are ordinary bytes (not whitespace, not a closing quote) */
    const char nul[] = "Hi!\0 Yo.";
    vox_tts_span *c = NULL;
    size_t nc = 0;
    vox_tts_split_text(nul, sizeof nul - 1, 5, &c, &nc, NULL);
    VOX_CHECK(&ts, nc == 2 && c[0].len == 4 && c[1].off == 5 && c[1].len == 3,
              "NUL: 'Hi!\\0' (cut at the space) + 'Yo.', got %zu chunks", nc);
    free(c);
}

static void errors(void) {
    vox_tts_span *c = (vox_tts_span *)1;
    size_t nc = 7;
    vox_error e = {0};
    int rc = vox_tts_split_text("abc", 3, 3, &c, &nc, &e);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG && c == NULL && nc == 0 && strstr(e.msg, ">= 4"),
              "max 3 refused (%s)", e.msg);
    rc = vox_tts_split_text(NULL, 5, 400, &c, &nc, &e);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG, "NULL text refused");
    rc = vox_tts_split_text(NULL, 0, 400, &c, &nc, &e);
    VOX_CHECK(&ts, rc == 0 && nc == 0, "NULL, 0 bytes = empty");
}

static void langs(void) {
    char l[3];
    VOX_CHECK(&ts, vox_tts_voice_lang("pt_male", l) == 1 && !strcmp(l, "pt"), "pt_male -> pt");
    VOX_CHECK(&ts, vox_tts_voice_lang("casual_female", l) == 0 && l[0] == 0, "casual_female");
    VOX_CHECK(&ts, vox_tts_voice_lang("Fr_male", l) == 0, "uppercase prefix is no language");
    VOX_CHECK(&ts, vox_tts_voice_lang("de_", l) == 0, "prefix alone is no voice name");
}

/* vox_tts_list_voices on a generated tiny model: params.json order, the tekken.json fallback,
 * an ASR params.json, a missing directory. */
static void voices(void) {
    char dir[] = "/tmp/vox_tts_text_XXXXXX";
    if (!mkdtemp(dir)) {
        VOX_CHECK(&ts, 0, "mkdtemp failed");
        return;
    }
    vox_mkmodel_tts_opts o;
    vox_mkmodel_tts_defaults(&o, 0);
    o.n_voices = 4;
    for (int i = 0; i < 4; i++)
        o.voice_rows[i] = 3 + i;
    vox_error e = {0};
    int rc = vox_mkmodel_tts_write(dir, &o, &e);
    VOX_CHECK(&ts, rc == 0, "mkmodel: %s", e.msg);
    char path[512];
    snprintf(path, sizeof path, "%s/params.json", dir);
    char *js = vox_read_file(path, NULL, &e);
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    free(js);
    cJSON *vm = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "multimodal"),
                                         "audio_tokenizer_args"),
        "voice");
    VOX_CHECK(&ts, cJSON_GetArraySize(vm) == 4, "params.json voice map of 4");
    /* reverse the indices: the list must follow them, not the file order */
    int k = 0;
    const char *names[4] = {0};
    for (cJSON *it = vm ? vm->child : NULL; it; it = it->next, k++) {
        names[k] = vox_mkmodel_tts_voice_name(k);
        cJSON_SetNumberValue(it, 3 - k);
    }
    FILE *f = fopen(path, "wb");
    char *out = cJSON_Print(root);
    fputs(out, f);
    fclose(f);
    free(out);
    vox_tts_voice_list l = {0};
    rc = vox_tts_list_voices(dir, NULL, &l, &e);
    int ok = rc == 0 && l.n == 4;
    for (int i = 0; ok && i < 4; i++)
        ok = !strcmp(l.v[i].name, names[3 - i]);
    VOX_CHECK(&ts, ok, "voices listed by params.json index (%s)", rc ? e.msg : "");
    vox_tts_voice_list_free(&l);
    /* no map: tekken.json's voice_num_audio_tokens, in file order (= the released order) */
    cJSON_DeleteItemFromObjectCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "multimodal"),
                                         "audio_tokenizer_args"),
        "voice");
    f = fopen(path, "wb");
    out = cJSON_Print(root);
    fputs(out, f);
    fclose(f);
    free(out);
    rc = vox_tts_list_voices(dir, NULL, &l, &e);
    ok = rc == 0 && l.n == 4;
    for (int i = 0; ok && i < 4; i++)
        ok = !strcmp(l.v[i].name, vox_mkmodel_tts_voice_name(i));
    VOX_CHECK(&ts, ok, "voices from tekken.json without a params map (%s)", rc ? e.msg : "");
    vox_tts_voice_list_free(&l);
    /* an ASR params.json */
    f = fopen(path, "wb");
    fputs("{\"dim\": 8, \"multimodal\": {\"whisper_model_args\": {}}}", f);
    fclose(f);
    rc = vox_tts_list_voices(dir, NULL, &l, &e);
    VOX_CHECK(&ts, rc == VOX_ERR_UNSUPPORTED && strstr(e.msg, "Voxtral Realtime (ASR)") && l.n == 0,
              "ASR params.json: %s", e.msg);
    f = fopen(path, "wb");
    fputs("{\"dim\": ", f);
    fclose(f);
    rc = vox_tts_list_voices(dir, NULL, &l, &e);
    VOX_CHECK(&ts, rc == VOX_ERR_FORMAT && strstr(e.msg, "not valid JSON"), "bad JSON: %s", e.msg);
    cJSON_Delete(root);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    VOX_CHECK(&ts, system(cmd) == 0, "cleanup");
    rc = vox_tts_list_voices(dir, NULL, &l, &e);
    VOX_CHECK(&ts, rc == VOX_ERR_IO && strstr(e.msg, "params.json: cannot open"), "missing: %s",
              e.msg);
}

int main(void) {
    hand_cases();
    big_cases();
    fuzz();
    errors();
    langs();
    voices();
    return vox_test_done(&ts, "test_tts_text");
}
