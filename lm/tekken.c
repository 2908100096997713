/* tekken.c - Mistral tekken tokenizer (see vox_tekken.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "vox_tekken.h"
#include "tekken_unicode.h"

#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_RANK INT32_MAX

struct vox_tekken {
    char *name;            /* path or caller-given name, for messages */
    char *pattern;         /* config.pattern */
    char version[16];      /* config.version */
    int n_special;         /* default_num_special_tokens */
    int vocab_size;        /* default_vocab_size */
    int inner;             /* vocab_size - n_special: usable ranks */
    unsigned char *blob;   /* [off[inner]] token bytes, rank r at blob[off[r] .. off[r+1]) */
    size_t *off;           /* [inner + 1] */
    int max_tok_len;       /* longest token in bytes */
    int32_t *slots;        /* [n_slots] bytes -> rank hash, -1 = empty */
    size_t n_slots;        /* power of two */
    char **special;        /* [n_special] names, rank order */
    size_t max_special_len;
    vox_tekken_audio audio;
    char **voice_names;    /* [audio.n_voices] */
    int *voice_counts;     /* [audio.n_voices] */
    pcre2_code *re;
};

/* ------------------------------------------------------------------ helpers */

static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static int32_t lookup_rank(const vox_tekken *t, const unsigned char *p, size_t n) {
    if (n == 0 || n > (size_t)t->max_tok_len) return NO_RANK;
    if (n == 1) return p[0]; /* ranks 0..255 are the single bytes (validated at load) */
    size_t mask = t->n_slots - 1;
    size_t h = (size_t)hash_bytes(p, n) & mask;
    for (;;) {
        int32_t r = t->slots[h];
        if (r < 0) return NO_RANK;
        if (t->off[r + 1] - t->off[r] == n && memcmp(t->blob + t->off[r], p, n) == 0) return r;
        h = (h + 1) & mask;
    }
}

static const char *json_type(const cJSON *j) {
    if (!j) return "nothing";
    if (cJSON_IsNull(j)) return "null";
    if (cJSON_IsBool(j)) return "a boolean";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsObject(j)) return "an object";
    return "an unknown value";
}

static int get_int(const char *name, const cJSON *obj, const char *key, const char *where,
                   int64_t lo, int64_t hi, int *out, vox_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    /* range first: converting an out-of-range double to an integer is undefined */
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= -9.0e15 && j->valuedouble <= 9.0e15) ||
        j->valuedouble != (double)(int64_t)j->valuedouble)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: %s%s: expected an integer, found %s", name,
                             where, key,
                             cJSON_IsNumber(j) ? "a non-integral or huge number" : json_type(j));
    int64_t v = (int64_t)j->valuedouble;
    if (v < lo || v > hi)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: %s%s: expected an integer in [%lld, %lld], found %lld", name,
                             where, key, (long long)lo, (long long)hi, (long long)v);
    *out = (int)v;
    return VOX_OK;
}

/* Optional number: absent/null -> def. */
static int get_num_or(const char *name, const cJSON *obj, const char *key, const char *where,
                      double def, double *out, vox_error *err) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!j || cJSON_IsNull(j)) {
        *out = def;
        return VOX_OK;
    }
    if (!cJSON_IsNumber(j))
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: %s%s: expected a number, found %s", name,
                             where, key, json_type(j));
    *out = j->valuedouble;
    return VOX_OK;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* Known config.version values (mistral-common 1.13 TokenizerVersion). */
static int version_num(const char *v) {
    static const char *const known[] = {"v1", "v2", "v3", "v7", "v11", "v13", "v15"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(v, known[i]) == 0) return atoi(v + 1);
    return -1;
}

/* Special tokens implied for files without "special_tokens" (version <= v7), as
 * mistral-common's Tekkenizer.DEPRECATED_SPECIAL_TOKENS. */
static const char *const deprecated_specials[] = {
    "<unk>",         "<s>",          "</s>",          "[INST]",          "[/INST]",
    "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]",
    "[TOOL_CALLS]",  "[IMG]",        "<pad>",         "[IMG_BREAK]",     "[IMG_END]",
    "[PREFIX]",      "[MIDDLE]",     "[SUFFIX]",      "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]"};

void vox_tekken_free(vox_tekken *t) {
    if (!t) return;
    free(t->name);
    free(t->pattern);
    free(t->blob);
    free(t->off);
    free(t->slots);
    if (t->special)
        for (int i = 0; i < t->n_special; i++) free(t->special[i]);
    free(t->special);
    if (t->voice_names)
        for (int i = 0; i < t->audio.n_voices; i++) free(t->voice_names[i]);
    free(t->voice_names);
    free(t->voice_counts);
    if (t->re) pcre2_code_free(t->re);
    free(t);
}

/* ------------------------------------------------------------------ loading */

static int load_vocab(vox_tekken *t, const cJSON *vocab, vox_error *err) {
    const char *name = t->name;
    if (!cJSON_IsArray(vocab))
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: vocab: expected an array, found %s", name,
                             json_type(vocab));
    int n_vocab = cJSON_GetArraySize(vocab);
    if (n_vocab < t->inner)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: vocab: default_vocab_size %d - default_num_special_tokens %d "
                             "= %d entries needed, found %d",
                             name, t->vocab_size, t->n_special, t->inner, n_vocab);
    /* First pass: sizes. Only the first `inner` entries are used (and validated), as
     * mistral-common's _reload_mergeable_ranks(max_vocab=inner). */
    size_t total = 0;
    int r = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (r >= t->inner) break;
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(e, "token_bytes");
        if (!cJSON_IsString(b))
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: vocab[%d].token_bytes: expected a base64 string, found %s",
                                 name, r, json_type(b));
        total += strlen(b->valuestring) / 4 * 3 + 3;
        r++;
    }
    t->blob = malloc(total + 1);
    t->off = malloc(((size_t)t->inner + 1) * sizeof *t->off);
    t->n_slots = 1024;
    while (t->n_slots < (size_t)t->inner * 2) t->n_slots <<= 1;
    t->slots = malloc(t->n_slots * sizeof *t->slots);
    if (!t->blob || !t->off || !t->slots)
        return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory for %d vocab entries", name,
                             t->inner);
    for (size_t i = 0; i < t->n_slots; i++) t->slots[i] = -1;
    size_t pos = 0;
    r = 0;
    t->max_tok_len = 1;
    cJSON_ArrayForEach(e, vocab) {
        if (r >= t->inner) break;
        if (!cJSON_IsObject(e))
            return vox_set_error(err, VOX_ERR_FORMAT, "%s: vocab[%d]: expected an object, found %s",
                                 name, r, json_type(e));
        int rank;
        char where[48];
        snprintf(where, sizeof where, "vocab[%d].", r);
        int rc = get_int(name, e, "rank", where, 0, INT32_MAX, &rank, err);
        if (rc) return rc;
        if (rank != r)
            return vox_set_error(err, VOX_ERR_FORMAT, "%s: vocab[%d].rank: expected %d, found %d",
                                 name, r, r, rank);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(e, "token_bytes");
        long n = vox_b64_decode(b->valuestring, strlen(b->valuestring), t->blob + pos);
        if (n < 0)
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: vocab[%d].token_bytes: invalid base64 \"%.40s\"", name, r,
                                 b->valuestring);
        if (n == 0)
            return vox_set_error(err, VOX_ERR_FORMAT, "%s: vocab[%d].token_bytes: empty token",
                                 name, r);
        if (r < 256 && (n != 1 || t->blob[pos] != r))
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: vocab[%d]: ranks 0..255 must be the single bytes, found %ld "
                                 "bytes (first 0x%02x)",
                                 name, r, n, t->blob[pos]);
        t->off[r] = pos;
        if (n > t->max_tok_len) t->max_tok_len = (int)n;
        /* insert in the hash (duplicates are an error, as in mistral-common) */
        size_t mask = t->n_slots - 1;
        size_t h = (size_t)hash_bytes(t->blob + pos, (size_t)n) & mask;
        while (t->slots[h] >= 0) {
            int32_t o = t->slots[h];
            if (t->off[o + 1] - t->off[o] == (size_t)n &&
                memcmp(t->blob + t->off[o], t->blob + pos, (size_t)n) == 0)
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "%s: vocab[%d].token_bytes: same bytes as vocab[%d]", name, r,
                                     o);
            h = (h + 1) & mask;
        }
        pos += (size_t)n;
        t->off[r + 1] = pos;
        t->slots[h] = r;
        r++;
    }
    return VOX_OK;
}

static int load_specials(vox_tekken *t, const cJSON *root, vox_error *err) {
    const char *name = t->name;
    t->special = calloc((size_t)t->n_special, sizeof *t->special);
    if (!t->special) return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", name);
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(root, "special_tokens");
    int n_def = 0;
    if (!sp || cJSON_IsNull(sp)) {
        if (version_num(t->version) > 7)
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: special_tokens: required for version %s (> v7), found "
                                 "nothing",
                                 name, t->version);
        n_def = (int)(sizeof deprecated_specials / sizeof deprecated_specials[0]);
        if (n_def > t->n_special)
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: default_num_special_tokens %d < %d implied special tokens",
                                 name, t->n_special, n_def);
        for (int i = 0; i < n_def; i++)
            if (!(t->special[i] = dup_str(deprecated_specials[i])))
                return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", name);
    } else {
        if (!cJSON_IsArray(sp))
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: special_tokens: expected an array, found %s", name,
                                 json_type(sp));
        n_def = cJSON_GetArraySize(sp);
        if (n_def > t->n_special)
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: special_tokens: at most default_num_special_tokens = %d "
                                 "entries, found %d",
                                 name, t->n_special, n_def);
        int i = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, sp) {
            char where[48];
            snprintf(where, sizeof where, "special_tokens[%d].", i);
            if (!cJSON_IsObject(e))
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "%s: special_tokens[%d]: expected an object, found %s", name,
                                     i, json_type(e));
            int rank;
            int rc = get_int(name, e, "rank", where, 0, INT32_MAX, &rank, err);
            if (rc) return rc;
            /* mistral-common indexes special tokens by position and looks them up by rank:
             * both only agree when rank == position. */
            if (rank != i)
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "%s: special_tokens[%d].rank: expected %d, found %d", name, i,
                                     i, rank);
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "token_str");
            if (!cJSON_IsString(s) || !s->valuestring[0])
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "%s: special_tokens[%d].token_str: expected a non-empty "
                                     "string, found %s",
                                     name, i, json_type(s));
            const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "is_control");
            if (c && !cJSON_IsBool(c))
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "%s: special_tokens[%d].is_control: expected a boolean, "
                                     "found %s",
                                     name, i, json_type(c));
            if (!(t->special[i] = dup_str(s->valuestring)))
                return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", name);
            i++;
        }
    }
    for (int i = n_def; i < t->n_special; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "<SPECIAL_%d>", i);
        if (!(t->special[i] = dup_str(buf)))
            return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", name);
    }
    /* Names must be unique (after adding fillers, as mistral-common asserts). */
    size_t n_slots = 64;
    while (n_slots < (size_t)t->n_special * 2) n_slots <<= 1;
    int *slots = malloc(n_slots * sizeof *slots);
    if (!slots) return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < n_slots; i++) slots[i] = -1;
    int rc = VOX_OK;
    t->max_special_len = 0;
    for (int i = 0; i < t->n_special && rc == VOX_OK; i++) {
        size_t len = strlen(t->special[i]);
        if (len > t->max_special_len) t->max_special_len = len;
        size_t h = (size_t)hash_bytes((const unsigned char *)t->special[i], len) & (n_slots - 1);
        while (slots[h] >= 0) {
            if (strcmp(t->special[slots[h]], t->special[i]) == 0) {
                rc = vox_set_error(err, VOX_ERR_FORMAT,
                                   "%s: special_tokens: name \"%s\" of rank %d repeats rank %d",
                                   name, t->special[i], i, slots[h]);
                break;
            }
            h = (h + 1) & (n_slots - 1);
        }
        slots[h] = i;
    }
    free(slots);
    return rc;
}

static int load_audio(vox_tekken *t, const cJSON *root, vox_error *err) {
    const char *name = t->name;
    vox_tekken_audio *a = &t->audio;
    memset(a, 0, sizeof *a);
    a->transcription_delay_ms = a->streaming_look_ahead_ms = a->streaming_look_back_ms = -1;
    a->streaming_n_left_pad_tokens = -1;
    const cJSON *au = cJSON_GetObjectItemCaseSensitive(root, "audio");
    if (!au || cJSON_IsNull(au)) return VOX_OK;
    if (!cJSON_IsObject(au))
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: audio: expected an object, found %s", name,
                             json_type(au));
    a->present = 1;
    int rc;
    if ((rc = get_int(name, au, "sampling_rate", "audio.", 1, INT32_MAX, &a->sampling_rate, err)))
        return rc;
    if ((rc = get_num_or(name, au, "frame_rate", "audio.", -1, &a->frame_rate, err))) return rc;
    if (!(a->frame_rate > 0))
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: audio.frame_rate: expected > 0, found %g",
                             name, a->frame_rate);
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(au, "audio_encoding_config");
    if (!cJSON_IsObject(enc))
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: audio.audio_encoding_config: expected an object, found %s", name,
                             json_type(enc));
    const char *w = "audio.audio_encoding_config.";
    if ((rc = get_int(name, enc, "num_mel_bins", w, 1, INT32_MAX, &a->num_mel_bins, err)) ||
        (rc = get_int(name, enc, "hop_length", w, 1, INT32_MAX, &a->hop_length, err)) ||
        (rc = get_int(name, enc, "window_size", w, 1, INT32_MAX, &a->window_size, err)))
        return rc;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(au, "transcription_format");
    if (fmt && !cJSON_IsNull(fmt)) {
        if (!cJSON_IsString(fmt) ||
            (strcmp(fmt->valuestring, "streaming") && strcmp(fmt->valuestring, "instruct")))
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: audio.transcription_format: expected \"streaming\" or "
                                 "\"instruct\", found %s",
                                 name, cJSON_IsString(fmt) ? fmt->valuestring : json_type(fmt));
        a->streaming = strcmp(fmt->valuestring, "streaming") == 0;
    }
    if ((rc = get_num_or(name, au, "transcription_delay_ms", "audio.", -1,
                         &a->transcription_delay_ms, err)) ||
        (rc = get_num_or(name, au, "streaming_look_ahead_ms", "audio.", -1,
                         &a->streaming_look_ahead_ms, err)) ||
        (rc = get_num_or(name, au, "streaming_look_back_ms", "audio.", -1,
                         &a->streaming_look_back_ms, err)))
        return rc;
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(au, "streaming_n_left_pad_tokens");
    if (lp && !cJSON_IsNull(lp) &&
        (rc = get_int(name, au, "streaming_n_left_pad_tokens", "audio.", 0, INT32_MAX,
                      &a->streaming_n_left_pad_tokens, err)))
        return rc;
    if (a->streaming && (a->transcription_delay_ms <= 0 || a->streaming_look_ahead_ms < 0 ||
                         a->streaming_look_back_ms < 0 || a->streaming_n_left_pad_tokens < 0))
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: audio: streaming format needs transcription_delay_ms > 0, "
                             "streaming_look_ahead_ms, streaming_look_back_ms and "
                             "streaming_n_left_pad_tokens",
                             name);
    const cJSON *vo = cJSON_GetObjectItemCaseSensitive(au, "voice_num_audio_tokens");
    if (vo && !cJSON_IsNull(vo)) {
        if (!cJSON_IsObject(vo))
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: audio.voice_num_audio_tokens: expected an object, found %s",
                                 name, json_type(vo));
        int nv = cJSON_GetArraySize(vo);
        t->voice_names = calloc((size_t)(nv ? nv : 1), sizeof *t->voice_names);
        t->voice_counts = calloc((size_t)(nv ? nv : 1), sizeof *t->voice_counts);
        if (!t->voice_names || !t->voice_counts)
            return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", name);
        const cJSON *e;
        cJSON_ArrayForEach(e, vo) {
            int i = a->n_voices;
            if (!cJSON_IsNumber(e) || !(e->valuedouble >= 1 && e->valuedouble <= INT32_MAX) ||
                e->valuedouble != (double)(int)e->valuedouble)
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "%s: audio.voice_num_audio_tokens.%s: expected a positive "
                                     "integer, found %s",
                                     name, e->string, json_type(e));
            if (!(t->voice_names[i] = dup_str(e->string)))
                return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", name);
            t->voice_counts[i] = (int)e->valuedouble;
            a->n_voices++;
        }
    }
    return VOX_OK;
}

/* ------------------------------------------------------------------ pattern rewrite
 *
 * tiktoken (Rust regex engine) and PCRE2 disagree on two things the tekken patterns use:
 * characters assigned in newer Unicode versions than PCRE2's tables (tiktoken has them in
 * \p{L}, \p{N}, \p{M}, ...), and \s, where PCRE2 also matches U+180E. The pattern is
 * rewritten before compiling: \p{X} gets the extra ranges of tekken_unicode.h (measured from
 * tiktoken by tests/reference/tok_unicode.py) and \s / \S become the explicit Unicode
 * White_Space set. Inside a character class \P{X} and \S are kept as they are (not used by
 * the tekken patterns). */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->n + n + 1) c *= 2;
        char *np = realloc(b->p, c);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_str(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* Unicode White_Space (unchanged since Unicode 6.3), as class members. */
static const char ws_members[] =
    "\\x{9}-\\x{D}\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}";

static const vox_tekken_extra_class *extra_class(const char *name, size_t n) {
    for (size_t i = 0; i < sizeof vox_tekken_extra_classes / sizeof vox_tekken_extra_classes[0];
         i++) {
        const vox_tekken_extra_class *c = &vox_tekken_extra_classes[i];
        if (strlen(c->name) == n && memcmp(c->name, name, n) == 0) return c->n > 0 ? c : NULL;
    }
    return NULL;
}

static void sb_ranges(strbuf *b, const vox_tekken_extra_class *c) {
    char tmp[48];
    for (int i = 0; i < c->n; i++) {
        if (c->r[i].lo == c->r[i].hi)
            snprintf(tmp, sizeof tmp, "\\x{%X}", (unsigned)c->r[i].lo);
        else
            snprintf(tmp, sizeof tmp, "\\x{%X}-\\x{%X}", (unsigned)c->r[i].lo,
                     (unsigned)c->r[i].hi);
        sb_str(b, tmp);
    }
}

static char *rewrite_pattern(const char *p) {
    strbuf b = {0};
    int in_class = 0;
    size_t i = 0;
    sb_put(&b, "", 0);
    while (p[i]) {
        char c = p[i];
        if (c == '\\' && p[i + 1]) {
            char e = p[i + 1];
            if (e == 's' || e == 'S') {
                if (!in_class) {
                    sb_str(&b, e == 's' ? "[" : "[^");
                    sb_str(&b, ws_members);
                    sb_str(&b, "]");
                } else if (e == 's') {
                    sb_str(&b, ws_members);
                } else {
                    sb_put(&b, p + i, 2);
                }
                i += 2;
                continue;
            }
            if (e == 'p' || e == 'P') {
                size_t name_at, name_len, end;
                if (p[i + 2] == '{') {
                    const char *close = strchr(p + i + 3, '}');
                    if (!close) { /* malformed: leave it to PCRE2 to report */
                        sb_put(&b, p + i, 2);
                        i += 2;
                        continue;
                    }
                    name_at = i + 3;
                    name_len = (size_t)(close - (p + name_at));
                    end = (size_t)(close - p) + 1;
                } else {
                    name_at = i + 2;
                    name_len = p[i + 2] ? 1 : 0;
                    end = i + 2 + name_len;
                }
                const vox_tekken_extra_class *x = extra_class(p + name_at, name_len);
                if (!x || (in_class && e == 'P')) {
                    sb_put(&b, p + i, end - i);
                } else {
                    if (!in_class) sb_str(&b, e == 'p' ? "[" : "[^");
                    sb_str(&b, "\\p{");
                    sb_put(&b, p + name_at, name_len);
                    sb_str(&b, "}");
                    sb_ranges(&b, x);
                    if (!in_class) sb_str(&b, "]");
                }
                i = end;
                continue;
            }
            if (e == 'Q') { /* literal text up to \E */
                const char *q = strstr(p + i + 2, "\\E");
                size_t end = q ? (size_t)(q - p) + 2 : strlen(p);
                sb_put(&b, p + i, end - i);
                i = end;
                continue;
            }
            sb_put(&b, p + i, 2);
            i += 2;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            sb_put(&b, p + i++, 1);
            if (p[i] == '^') sb_put(&b, p + i++, 1);
            if (p[i] == ']') sb_put(&b, p + i++, 1);
            continue;
        }
        if (in_class && c == '[' && p[i + 1] == ':') {
            const char *q = strstr(p + i + 2, ":]");
            size_t end = q ? (size_t)(q - p) + 2 : i + 1;
            sb_put(&b, p + i, end - i);
            i = end;
            continue;
        }
        if (in_class && c == ']') in_class = 0;
        sb_put(&b, p + i++, 1);
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static int compile_pattern(vox_tekken *t, vox_error *err) {
    int ec = 0;
    PCRE2_SIZE eo = 0;
    char *pat = rewrite_pattern(t->pattern);
    if (!pat) return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", t->name);
    t->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec,
                          &eo, NULL);
    free(pat);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: config.pattern: PCRE2 cannot compile it (offset %zu of the "
                             "rewritten pattern): %s",
                             t->name, (size_t)eo, (const char *)msg);
    }
    /* JIT is an optimisation only; the interpreter gives the same matches. */
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
    return VOX_OK;
}

vox_tekken *vox_tekken_parse(const char *json, size_t len, const char *name, vox_error *err) {
    if (!json || !name) {
        vox_set_error(err, VOX_ERR_ARG, "vox_tekken_parse: NULL argument");
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = (at && at >= json && at <= json + len) ? (size_t)(at - json) : 0;
        vox_set_error(err, VOX_ERR_FORMAT, "%s: invalid JSON near byte %zu", name, off);
        return NULL;
    }
    vox_tekken *t = calloc(1, sizeof *t);
    int rc = VOX_OK;
    if (!t || !(t->name = dup_str(name))) {
        rc = vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        rc = vox_set_error(err, VOX_ERR_FORMAT, "%s: expected a JSON object at the top, found %s",
                           name, json_type(root));
        goto fail;
    }
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    if (!cJSON_IsObject(cfg)) {
        rc = vox_set_error(err, VOX_ERR_FORMAT, "%s: config: expected an object, found %s", name,
                           json_type(cfg));
        goto fail;
    }
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(cfg, "pattern");
    if (!cJSON_IsString(pat)) {
        rc = vox_set_error(err, VOX_ERR_FORMAT, "%s: config.pattern: expected a string, found %s",
                           name, json_type(pat));
        goto fail;
    }
    if (!(t->pattern = dup_str(pat->valuestring))) {
        rc = vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(cfg, "version");
    if (!cJSON_IsString(ver) || version_num(ver->valuestring) < 0) {
        rc = vox_set_error(err, VOX_ERR_FORMAT,
                           "%s: config.version: expected one of v1 v2 v3 v7 v11 v13 v15, found %s",
                           name, cJSON_IsString(ver) ? ver->valuestring : json_type(ver));
        goto fail;
    }
    snprintf(t->version, sizeof t->version, "%s", ver->valuestring);
    if ((rc = get_int(name, cfg, "default_num_special_tokens", "config.", 1, 1 << 24,
                      &t->n_special, err)) ||
        (rc = get_int(name, cfg, "default_vocab_size", "config.", 1, INT32_MAX, &t->vocab_size,
                      err)))
        goto fail;
    const cJSON *nvt = cJSON_GetObjectItemCaseSensitive(cfg, "num_vocab_tokens");
    if (nvt && !cJSON_IsNumber(nvt)) {
        rc = vox_set_error(err, VOX_ERR_FORMAT,
                           "%s: config.num_vocab_tokens: expected an integer, found %s", name,
                           json_type(nvt));
        goto fail;
    }
    t->inner = t->vocab_size - t->n_special;
    if (t->inner < 256) {
        rc = vox_set_error(err, VOX_ERR_FORMAT,
                           "%s: config: default_vocab_size %d - default_num_special_tokens %d "
                           "must be >= 256 (the byte tokens), found %d",
                           name, t->vocab_size, t->n_special, t->inner);
        goto fail;
    }
    if ((rc = load_vocab(t, cJSON_GetObjectItemCaseSensitive(root, "vocab"), err)) ||
        (rc = load_specials(t, root, err)) || (rc = load_audio(t, root, err)) ||
        (rc = compile_pattern(t, err)))
        goto fail;
    cJSON_Delete(root);
    return t;
fail:
    (void)rc;
    cJSON_Delete(root);
    vox_tekken_free(t);
    return NULL;
}

vox_tekken *vox_tekken_load(const char *path, vox_error *err) {
    if (!path) {
        vox_set_error(err, VOX_ERR_ARG, "vox_tekken_load: NULL path");
        return NULL;
    }
    size_t len = 0;
    char *buf = vox_read_file(path, &len, err);
    if (!buf) return NULL;
    vox_tekken *t = vox_tekken_parse(buf, len, path, err);
    free(buf);
    return t;
}

/* ------------------------------------------------------------------ getters */

int vox_tekken_n_special(const vox_tekken *t) { return t->n_special; }
int vox_tekken_vocab_size(const vox_tekken *t) { return t->vocab_size; }
const char *vox_tekken_version(const vox_tekken *t) { return t->version; }
const char *vox_tekken_pattern(const vox_tekken *t) { return t->pattern; }
const vox_tekken_audio *vox_tekken_audio_config(const vox_tekken *t) { return &t->audio; }

const char *vox_tekken_voice_name(const vox_tekken *t, int i) {
    return (i >= 0 && i < t->audio.n_voices) ? t->voice_names[i] : NULL;
}

int vox_tekken_voice_num_audio_tokens(const vox_tekken *t, const char *name) {
    for (int i = 0; name && i < t->audio.n_voices; i++)
        if (strcmp(t->voice_names[i], name) == 0) return t->voice_counts[i];
    return -1;
}

int vox_tekken_special_id(const vox_tekken *t, const char *name) {
    for (int i = 0; name && i < t->n_special; i++)
        if (strcmp(t->special[i], name) == 0) return i;
    return -1;
}

const char *vox_tekken_special_name(const vox_tekken *t, int id) {
    return (id >= 0 && id < t->n_special) ? t->special[id] : NULL;
}

int vox_tekken_is_special(const vox_tekken *t, int id) { return id >= 0 && id < t->n_special; }

const unsigned char *vox_tekken_token_bytes(const vox_tekken *t, int id, size_t *len) {
    if (id < t->n_special || id >= t->vocab_size) {
        if (len) *len = 0;
        return NULL;
    }
    int r = id - t->n_special;
    if (len) *len = t->off[r + 1] - t->off[r];
    return t->blob + t->off[r];
}

/* ------------------------------------------------------------------ encoding */

typedef struct {
    int32_t rank;
    int32_t start; /* byte offset of the left part */
    int32_t end;   /* end of the right part when pushed (validity check) */
} heap_ent;

static int heap_less(const heap_ent *a, const heap_ent *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->start < b->start);
}

static void heap_push(heap_ent *h, size_t *n, heap_ent e) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static heap_ent heap_pop(heap_ent *h, size_t *n) {
    heap_ent top = h[0];
    heap_ent last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const heap_ent *best = &last;
        if (l < *n && heap_less(&h[l], best)) {
            m = l;
            best = &h[l];
        }
        if (r < *n && heap_less(&h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n > 0) h[i] = last;
    return top;
}

typedef struct {
    int32_t *nxt, *prv;  /* [cap + 1] part links by start offset */
    unsigned char *alive;/* [cap] */
    heap_ent *heap;      /* [3 * cap] */
    size_t cap;
} bpe_scratch;

static int scratch_reserve(bpe_scratch *s, size_t n, vox_error *err) {
    if (n <= s->cap) return VOX_OK;
    size_t c = s->cap ? s->cap : 64;
    while (c < n) c *= 2;
    int32_t *nx = realloc(s->nxt, (c + 1) * sizeof *nx);
    if (nx) s->nxt = nx;
    int32_t *pv = realloc(s->prv, (c + 1) * sizeof *pv);
    if (pv) s->prv = pv;
    unsigned char *al = realloc(s->alive, c + 1);
    if (al) s->alive = al;
    heap_ent *hp = realloc(s->heap, 3 * c * sizeof *hp);
    if (hp) s->heap = hp;
    if (!nx || !pv || !al || !hp)
        return vox_set_error(err, VOX_ERR_NOMEM, "tekken encode: out of memory (piece %zu bytes)",
                             n);
    s->cap = c;
    return VOX_OK;
}

/* Rank of the bytes p[a .. b). */
static int32_t span_rank(const vox_tekken *t, const unsigned char *p, int32_t a, int32_t b) {
    return lookup_rank(t, p + a, (size_t)(b - a));
}

/* tiktoken byte-pair merge of one piece; appends ids to out. Equivalent to repeatedly merging
 * the lowest-rank adjacent pair (leftmost on ties), done with a heap in O(n log n). */
static int bpe_piece(const vox_tekken *t, const unsigned char *p, size_t n, bpe_scratch *s,
                     int32_t *out, size_t *n_out, vox_error *err) {
    int32_t whole = lookup_rank(t, p, n);
    if (whole != NO_RANK) {
        out[(*n_out)++] = whole + t->n_special;
        return VOX_OK;
    }
    int rc = scratch_reserve(s, n, err);
    if (rc) return rc;
    int32_t N = (int32_t)n;
    size_t hn = 0;
    for (int32_t i = 0; i < N; i++) {
        s->nxt[i] = i + 1;
        s->prv[i] = i - 1;
        s->alive[i] = 1;
    }
    for (int32_t i = 0; i + 1 < N; i++) {
        int32_t r = span_rank(t, p, i, i + 2);
        if (r != NO_RANK) heap_push(s->heap, &hn, (heap_ent){r, i, i + 2});
    }
    while (hn > 0) {
        heap_ent e = heap_pop(s->heap, &hn);
        int32_t a = e.start;
        if (!s->alive[a]) continue;
        int32_t b = s->nxt[a];
        if (b >= N || s->nxt[b] != e.end) continue; /* stale: a neighbour changed */
        /* merge part b into a */
        s->alive[b] = 0;
        int32_t c = s->nxt[b];
        s->nxt[a] = c;
        if (c < N) s->prv[c] = a;
        if (c < N) {
            int32_t r = span_rank(t, p, a, s->nxt[c]);
            if (r != NO_RANK) heap_push(s->heap, &hn, (heap_ent){r, a, s->nxt[c]});
        }
        int32_t z = s->prv[a];
        if (z >= 0) {
            int32_t r = span_rank(t, p, z, c);
            if (r != NO_RANK) heap_push(s->heap, &hn, (heap_ent){r, z, c});
        }
    }
    for (int32_t i = 0; i < N; i = s->nxt[i]) {
        int32_t r = span_rank(t, p, i, s->nxt[i]);
        if (r == NO_RANK) /* cannot happen: single bytes always have a rank */
            return vox_set_error(err, VOX_ERR_FORMAT, "%s: internal: unranked BPE part", t->name);
        out[(*n_out)++] = r + t->n_special;
    }
    return VOX_OK;
}

int vox_tekken_encode(const vox_tekken *t, const char *text, size_t len, int32_t **ids,
                      size_t *n_ids, vox_error *err) {
    if (!t || (!text && len) || !ids || !n_ids)
        return vox_set_error(err, VOX_ERR_ARG, "vox_tekken_encode: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    if (len > (size_t)INT32_MAX / 4)
        return vox_set_error(err, VOX_ERR_ARG, "tekken encode: input of %zu bytes is too long",
                             len);
    const unsigned char *u = (const unsigned char *)(text ? text : "");
    size_t bad = vox_utf8_check(u, len);
    if (bad != len)
        return vox_set_error(err, VOX_ERR_ARG,
                             "tekken encode: input is not valid UTF-8 at byte %zu (0x%02x)", bad,
                             u[bad]);
    int32_t *out = malloc((len ? len : 1) * sizeof *out); /* <= one token per byte */
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    bpe_scratch s = {0};
    int rc = VOX_OK;
    size_t n_out = 0;
    if (!out || !md) {
        rc = vox_set_error(err, VOX_ERR_NOMEM, "tekken encode: out of memory (%zu bytes)", len);
        goto done;
    }
    size_t pos = 0;
    while (pos < len) {
        int m = pcre2_match(t->re, u, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) break; /* tiktoken drops text no alternative matches */
        if (m < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(m, msg, sizeof msg);
            rc = vox_set_error(err, VOX_ERR_FORMAT, "%s: config.pattern: match failed: %s",
                               t->name, (const char *)msg);
            goto done;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (b > a) {
            if ((rc = bpe_piece(t, u + a, b - a, &s, out, &n_out, err))) goto done;
            pos = b;
        } else { /* empty match: step over one character */
            pos = b + 1;
            while (pos < len && (u[pos] & 0xC0) == 0x80) pos++;
        }
    }
done:
    if (md) pcre2_match_data_free(md);
    free(s.nxt);
    free(s.prv);
    free(s.alive);
    free(s.heap);
    if (rc) {
        free(out);
        return rc;
    }
    *ids = out;
    *n_ids = n_out;
    return VOX_OK;
}

int vox_tekken_pieces(const vox_tekken *t, const char *text, size_t len, size_t **spans,
                      size_t *n_pieces, vox_error *err) {
    if (!t || (!text && len) || !spans || !n_pieces)
        return vox_set_error(err, VOX_ERR_ARG, "vox_tekken_pieces: NULL argument");
    *spans = NULL;
    *n_pieces = 0;
    const unsigned char *u = (const unsigned char *)(text ? text : "");
    size_t bad = vox_utf8_check(u, len);
    if (bad != len)
        return vox_set_error(err, VOX_ERR_ARG,
                             "tekken split: input is not valid UTF-8 at byte %zu (0x%02x)", bad,
                             u[bad]);
    size_t *out = malloc((2 * len + 2) * sizeof *out);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    int rc = VOX_OK;
    size_t n = 0, pos = 0;
    if (!out || !md) {
        rc = vox_set_error(err, VOX_ERR_NOMEM, "tekken split: out of memory");
        goto done;
    }
    while (pos < len) {
        int m = pcre2_match(t->re, u, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            rc = vox_set_error(err, VOX_ERR_FORMAT, "%s: config.pattern: match failed (%d)",
                               t->name, m);
            goto done;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] > ov[0]) {
            out[2 * n] = ov[0];
            out[2 * n + 1] = ov[1];
            n++;
            pos = ov[1];
        } else {
            pos = ov[1] + 1;
            while (pos < len && (u[pos] & 0xC0) == 0x80) pos++;
        }
    }
done:
    if (md) pcre2_match_data_free(md);
    if (rc) {
        free(out);
        return rc;
    }
    *spans = out;
    *n_pieces = n;
    return VOX_OK;
}

/* ------------------------------------------------------------------ decoding */

static const unsigned char fffd[3] = {0xEF, 0xBF, 0xBD};

/* One byte through the UTF-8 state machine with Python's errors="replace" semantics
 * (U+FFFD per maximal subpart of an ill-formed sequence). Returns bytes written to o. */
static size_t utf8_feed(vox_tekken_stream *s, unsigned c, unsigned char *o) {
    size_t w = 0;
    if (s->need > 0) {
        if (c >= s->lo && c <= s->hi) {
            s->buf[s->have++] = (unsigned char)c;
            s->lo = 0x80;
            s->hi = 0xBF;
            if (--s->need == 0) {
                memcpy(o, s->buf, (size_t)s->have);
                w = (size_t)s->have;
                s->have = 0;
            }
            return w;
        }
        memcpy(o, fffd, 3); /* the incomplete prefix is one maximal subpart */
        w = 3;
        s->need = 0;
        s->have = 0;
        /* c is then processed as a fresh byte */
    }
    if (c < 0x80) {
        o[w++] = (unsigned char)c;
    } else if (c >= 0xC2 && c <= 0xF4) {
        s->buf[0] = (unsigned char)c;
        s->have = 1;
        s->lo = 0x80;
        s->hi = 0xBF;
        if (c <= 0xDF) {
            s->need = 1;
        } else if (c <= 0xEF) {
            s->need = 2;
            if (c == 0xE0) s->lo = 0xA0;
            if (c == 0xED) s->hi = 0x9F;
        } else {
            s->need = 3;
            if (c == 0xF0) s->lo = 0x90;
            if (c == 0xF4) s->hi = 0x8F;
        }
    } else {
        memcpy(o + w, fffd, 3);
        w += 3;
    }
    return w;
}

static size_t utf8_end(vox_tekken_stream *s, unsigned char *o) {
    if (s->need == 0) return 0;
    s->need = 0;
    s->have = 0;
    memcpy(o, fffd, 3);
    return 3;
}

void vox_tekken_stream_init(vox_tekken_stream *s, const vox_tekken *t,
                            vox_tekken_special_policy policy) {
    memset(s, 0, sizeof *s);
    s->tok = t;
    s->policy = policy;
}

size_t vox_tekken_stream_max_out(const vox_tekken *t) {
    size_t a = 3 * ((size_t)t->max_tok_len + 1) + 3;
    size_t b = 3 + t->max_special_len;
    return a > b ? a : b;
}

/* Core of push, writing into o (enough room checked by callers). */
static int stream_push(vox_tekken_stream *s, int32_t id, unsigned char *o, size_t *w,
                       vox_error *err) {
    const vox_tekken *t = s->tok;
    *w = 0;
    if (id < 0 || id >= t->vocab_size)
        return vox_set_error(err, VOX_ERR_ARG, "tekken decode: id %d outside [0, %d)", (int)id,
                             t->vocab_size);
    if (id < t->n_special) {
        if (s->policy == VOX_TEKKEN_SPECIAL_RAISE)
            return vox_set_error(err, VOX_ERR_ARG,
                                 "tekken decode: special token %d (%s) not allowed by policy",
                                 (int)id, t->special[id]);
        size_t n = utf8_end(s, o); /* a special token ends the byte group */
        if (s->policy == VOX_TEKKEN_SPECIAL_KEEP) {
            size_t l = strlen(t->special[id]);
            memcpy(o + n, t->special[id], l);
            n += l;
        }
        *w = n;
        return VOX_OK;
    }
    int r = id - t->n_special;
    size_t n = 0;
    for (size_t i = t->off[r]; i < t->off[r + 1]; i++) n += utf8_feed(s, t->blob[i], o + n);
    *w = n;
    return VOX_OK;
}

int vox_tekken_stream_push(vox_tekken_stream *s, int32_t id, char *out, size_t cap,
                           size_t *out_len, vox_error *err) {
    if (!s || !s->tok || !out || !out_len)
        return vox_set_error(err, VOX_ERR_ARG, "vox_tekken_stream_push: NULL argument");
    *out_len = 0;
    if (cap < vox_tekken_stream_max_out(s->tok))
        return vox_set_error(err, VOX_ERR_ARG,
                             "vox_tekken_stream_push: buffer of %zu bytes, need %zu", cap,
                             vox_tekken_stream_max_out(s->tok));
    return stream_push(s, id, (unsigned char *)out, out_len, err);
}

int vox_tekken_stream_flush(vox_tekken_stream *s, char *out, size_t cap, size_t *out_len,
                            vox_error *err) {
    if (!s || !out || !out_len)
        return vox_set_error(err, VOX_ERR_ARG, "vox_tekken_stream_flush: NULL argument");
    *out_len = 0;
    if (cap < 3)
        return vox_set_error(err, VOX_ERR_ARG, "vox_tekken_stream_flush: buffer of %zu bytes",
                             cap);
    *out_len = utf8_end(s, (unsigned char *)out);
    return VOX_OK;
}

int vox_tekken_decode(const vox_tekken *t, const int32_t *ids, size_t n_ids,
                      vox_tekken_special_policy policy, char **out, size_t *out_len,
                      vox_error *err) {
    if (!t || (!ids && n_ids) || !out)
        return vox_set_error(err, VOX_ERR_ARG, "vox_tekken_decode: NULL argument");
    *out = NULL;
    if (out_len) *out_len = 0;
    /* Output bound: every byte may become U+FFFD (3 bytes), plus one flush per group. */
    size_t cap = 4;
    for (size_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->vocab_size)
            return vox_set_error(err, VOX_ERR_ARG, "tekken decode: ids[%zu] = %d outside [0, %d)",
                                 i, (int)id, t->vocab_size);
        if (id < t->n_special)
            cap += 3 + strlen(t->special[id]);
        else
            cap += 3 * (t->off[id - t->n_special + 1] - t->off[id - t->n_special]);
    }
    unsigned char *buf = malloc(cap);
    if (!buf) return vox_set_error(err, VOX_ERR_NOMEM, "tekken decode: out of memory");
    vox_tekken_stream s;
    vox_tekken_stream_init(&s, t, policy);
    size_t n = 0;
    for (size_t i = 0; i < n_ids; i++) {
        size_t w;
        int rc = stream_push(&s, ids[i], buf + n, &w, err);
        if (rc) {
            free(buf);
            return rc;
        }
        n += w;
    }
    n += utf8_end(&s, buf + n);
    buf[n] = 0;
    *out = (char *)buf;
    if (out_len) *out_len = n;
    return VOX_OK;
}
