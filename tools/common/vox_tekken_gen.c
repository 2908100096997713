/* vox_tekken_gen.c - synthetic tekken.json writer (see vox_tekken_gen.h). */
#include "vox_tekken_gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char vox_tekken_real_pattern[] =
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static const char alt_pattern[] = " ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

/* Training corpus: our own text, English-heavy with some other scripts. */
static const char *const corpus_parts[] = {
    "The quick brown fox jumps over the lazy dog. This is a test of the speech to text system, "
    "and it should work in the real world as well as it does in the lab. When the model hears a "
    "word, it writes the word down a little later, about half a second after it was spoken. "
    "People often ask how fast the system is, and the answer depends on the machine that runs "
    "it. On a small computer the model may be slower than real time; on a large one it is much "
    "faster. We want to make sure that the text is correct, that the numbers are right, and "
    "that nothing is lost at the end of the stream. ",
    "Hello, this is a test. Can you hear me? Yes, I can hear you very well. Thank you for "
    "calling, how can I help you today? I would like to know more about the new service. "
    "There are many people who have been waiting for this for a long time. What do you think "
    "about the weather? It has been raining all week, but tomorrow should be sunny and warm. "
    "She said that she would come back before the end of the month, and then we will see. ",
    "In the beginning there was only sound, and then there were words. Every language has its "
    "own rhythm and its own music. Some languages are spoken quickly, others slowly. A good "
    "speech engine must listen to all of them, learn from them, and write them down without "
    "making mistakes. The first version of the program was written in a single weekend; the "
    "second version took much longer because we tested everything twice. ",
    "Mary had a little lamb, its fleece was white as snow, and everywhere that Mary went the "
    "lamb was sure to go. It followed her to school one day, which was against the rule. "
    "The children laughed and played to see a lamb at school. ",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 12 15 20 25 42 100 123 256 1000 2024 2026 3.14 98.6% "
    "$19.99 12:30 1/2 3-4 No. 7, room 101, call 555-0199. ",
    "Code: int main(void) { return 0; } if (x == 1 && y != 2) { printf(\"%d\\n\", x); } "
    "a = b + c * d / e - f; // comment\n/* block */ #include <stdio.h> [1, 2, 3] {\"key\": "
    "\"value\"} https://example.com/path?query=1&x=2 user@example.org ... !!! ??? --- *** ",
    "Le petit garçon a mangé une pomme. C'est la vie, mon ami. Où est la gare? Très bien, "
    "merci beaucoup. L'été dernier, nous sommes allés à la plage. Ça va? Je suis très content. "
    "Der schnelle braune Fuchs springt über den faulen Hund. Schöne Grüße aus München. Straße, "
    "Mädchen, Übung, Äpfel, größer. El niño está en la escuela. ¿Dónde está la biblioteca? "
    "¡Qué día tan bonito! Mañana será otro día. A canção é bonita. Não sei. Informação. ",
    "Это тест системы распознавания речи. Привет, как дела? Спасибо, хорошо. "
    "Αυτό είναι ένα τεστ. Γεια σου κόσμε. ",
    "你好，世界。这是一个语音识别系统的测试。我们今天去学校。中文和日本語も少し。"
    "こんにちは、元気ですか。ありがとうございます。東京は大きい都市です。안녕하세요. 감사합니다. "
    "مرحبا بالعالم. नमस्ते दुनिया. ",
    "Emoji: 😀 😃 😄 👍 🎉 ❤️ 🚀 🌍 ✨ 🙏 👋 🔥 😂 — “quotes” ‘single’ … • © ® ™ € £ ¥ ° ± × ÷ "
    "→ ← ↑ ↓ ≤ ≥ ≠ ∞ √ π Ω µ ß ø å æ œ ı ł ğ ş č ř ž ",
    "\n\nNew paragraph.\n\tIndented line.\r\nWindows line.\n    four spaces\n        eight "
    "spaces\n\n\n",
};

/* ---------------------------------------------------------------- small utilities */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t mix64(uint64_t x) {
    uint64_t s = x;
    return splitmix64(&s);
}

static uint64_t hash_bytes(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---------------------------------------------------------------- token table */

typedef struct {
    unsigned char *bytes; /* [cap_bytes] concatenated token bytes */
    size_t n_bytes, cap_bytes;
    size_t *off;          /* [cap] */
    int *len;             /* [cap] */
    int n, cap;
    int *slots;           /* [n_slots] open addressing, -1 empty, else rank */
    size_t n_slots;       /* power of two */
} tok_table;

static int tt_find(const tok_table *t, const unsigned char *p, int n) {
    size_t mask = t->n_slots - 1;
    size_t h = (size_t)hash_bytes(p, (size_t)n) & mask;
    for (;;) {
        int r = t->slots[h];
        if (r < 0) return -1;
        if (t->len[r] == n && memcmp(t->bytes + t->off[r], p, (size_t)n) == 0) return r;
        h = (h + 1) & mask;
    }
}

/* Adds a token known to be absent; capacity was reserved up front. */
static int tt_add(tok_table *t, const unsigned char *p, int n, vox_error *err) {
    if (t->n_bytes + (size_t)n > t->cap_bytes) {
        size_t nc = t->cap_bytes * 2 + (size_t)n;
        unsigned char *nb = realloc(t->bytes, nc);
        if (!nb) return vox_set_error(err, VOX_ERR_NOMEM, "tekken gen: out of memory (token bytes)");
        t->bytes = nb;
        t->cap_bytes = nc;
    }
    memcpy(t->bytes + t->n_bytes, p, (size_t)n);
    t->off[t->n] = t->n_bytes;
    t->len[t->n] = n;
    t->n_bytes += (size_t)n;
    size_t mask = t->n_slots - 1;
    size_t h = (size_t)hash_bytes(p, (size_t)n) & mask;
    while (t->slots[h] >= 0) h = (h + 1) & mask;
    t->slots[h] = t->n;
    t->n++;
    return VOX_OK;
}

static void tt_free(tok_table *t) {
    free(t->bytes);
    free(t->off);
    free(t->len);
    free(t->slots);
}

/* ---------------------------------------------------------------- corpus words */

typedef struct {
    int *sym;        /* [n_sym_total] symbols of all words, word w at sym[start[w] ..] */
    int *start;      /* [n_words] */
    int *nsym;       /* [n_words] current symbol count */
    long *count;     /* [n_words] */
    int n_words;
} word_set;

/* Character classes of the simplified pre-splitter (mirrors the real pattern's alternatives
 * closely enough to learn realistic merges: leading space + letters, single digits,
 * punctuation runs, whitespace runs). */
enum { CH_LETTER, CH_DIGIT, CH_SPACE, CH_NL, CH_OTHER };

static int char_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    int l = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return (size_t)l <= n ? l : (int)n;
}

static int char_class(const unsigned char *s, int l) {
    unsigned c = s[0];
    if (l == 1) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return CH_LETTER;
        if (c >= '0' && c <= '9') return CH_DIGIT;
        if (c == '\n' || c == '\r') return CH_NL;
        if (c == ' ' || c == '\t') return CH_SPACE;
        return CH_OTHER;
    }
    if (l == 4) return CH_OTHER; /* emoji and other astral symbols */
    if (l == 3 && c == 0xE2) return CH_OTHER; /* general punctuation, arrows, math */
    if (l == 2 && c == 0xC2) return CH_OTHER; /* Latin-1 punctuation and symbols */
    if (l == 3 && c == 0xE3 && s[1] == 0x80) return CH_OTHER; /* CJK punctuation */
    if (l == 3 && c == 0xEF && s[1] == 0xBC) return CH_OTHER; /* fullwidth punctuation */
    return CH_LETTER;
}

/* Next piece length starting at s (n bytes left). */
static size_t next_piece(const unsigned char *s, size_t n) {
    int l0 = char_len(s, n);
    int c0 = char_class(s, l0);
    size_t i = (size_t)l0;
    if (c0 == CH_LETTER || ((c0 == CH_SPACE || c0 == CH_OTHER) && i < n &&
                            char_class(s + i, char_len(s + i, n - i)) == CH_LETTER)) {
        while (i < n) {
            int l = char_len(s + i, n - i);
            if (char_class(s + i, l) != CH_LETTER) break;
            i += (size_t)l;
        }
        return i;
    }
    if (c0 == CH_DIGIT) return i;
    if (c0 == CH_OTHER || (s[0] == ' ' && i < n &&
                           char_class(s + i, char_len(s + i, n - i)) == CH_OTHER)) {
        while (i < n) {
            int l = char_len(s + i, n - i);
            if (char_class(s + i, l) != CH_OTHER) break;
            i += (size_t)l;
        }
        return i;
    }
    /* whitespace run */
    while (i < n) {
        int l = char_len(s + i, n - i);
        int c = char_class(s + i, l);
        if (c != CH_SPACE && c != CH_NL) break;
        i += (size_t)l;
    }
    return i;
}

typedef struct {
    size_t off; /* into the joined corpus */
    int len;
    long count;
} piece_ent;

static void ws_free(word_set *w) {
    free(w->sym);
    free(w->start);
    free(w->nsym);
    free(w->count);
}

/* Split the corpus into distinct pieces with seed-perturbed counts. */
static int build_words(word_set *w, uint64_t *rng, vox_error *err) {
    size_t total = 0;
    size_t n_parts = sizeof corpus_parts / sizeof corpus_parts[0];
    for (size_t p = 0; p < n_parts; p++) total += strlen(corpus_parts[p]);
    unsigned char *text = malloc(total + 1);
    size_t cap = 1024;
    piece_ent *ents = malloc(cap * sizeof *ents);
    size_t n_slots = 4096;
    while (n_slots < total) n_slots <<= 1;
    int *slots = malloc(n_slots * sizeof *slots);
    int rc = VOX_OK;
    size_t n_ents = 0;
    memset(w, 0, sizeof *w);
    if (!text || !ents || !slots) {
        rc = vox_set_error(err, VOX_ERR_NOMEM, "tekken gen: out of memory (corpus)");
        goto done;
    }
    for (size_t i = 0; i < n_slots; i++) slots[i] = -1;
    size_t pos = 0;
    for (size_t p = 0; p < n_parts; p++) {
        size_t l = strlen(corpus_parts[p]);
        memcpy(text + pos, corpus_parts[p], l);
        pos += l;
    }
    /* Repeat each part a seed-dependent number of times, so frequent pieces differ by seed. */
    for (size_t p = 0, base = 0; p < n_parts; p++) {
        size_t l = strlen(corpus_parts[p]);
        long reps = 1 + (long)(splitmix64(rng) % 3);
        size_t i = base;
        while (i < base + l) {
            size_t pl = next_piece(text + i, base + l - i);
            uint64_t h = hash_bytes(text + i, pl);
            size_t s = (size_t)h & (n_slots - 1);
            for (;;) {
                int e = slots[s];
                if (e < 0) {
                    if (n_ents == cap) {
                        cap *= 2;
                        piece_ent *ne = realloc(ents, cap * sizeof *ents);
                        if (!ne) {
                            rc = vox_set_error(err, VOX_ERR_NOMEM, "tekken gen: out of memory");
                            goto done;
                        }
                        ents = ne;
                    }
                    ents[n_ents].off = i;
                    ents[n_ents].len = (int)pl;
                    ents[n_ents].count = reps;
                    slots[s] = (int)n_ents++;
                    break;
                }
                if ((size_t)ents[e].len == pl && memcmp(text + ents[e].off, text + i, pl) == 0) {
                    ents[e].count += reps;
                    break;
                }
                s = (s + 1) & (n_slots - 1);
            }
            i += pl;
        }
        base += l;
    }
    size_t n_sym = 0;
    for (size_t e = 0; e < n_ents; e++) n_sym += (size_t)ents[e].len;
    w->sym = malloc((n_sym ? n_sym : 1) * sizeof *w->sym);
    w->start = malloc((n_ents ? n_ents : 1) * sizeof *w->start);
    w->nsym = malloc((n_ents ? n_ents : 1) * sizeof *w->nsym);
    w->count = malloc((n_ents ? n_ents : 1) * sizeof *w->count);
    if (!w->sym || !w->start || !w->nsym || !w->count) {
        rc = vox_set_error(err, VOX_ERR_NOMEM, "tekken gen: out of memory (words)");
        goto done;
    }
    size_t k = 0;
    for (size_t e = 0; e < n_ents; e++) {
        w->start[e] = (int)k;
        w->nsym[e] = ents[e].len;
        w->count[e] = ents[e].count;
        for (int b = 0; b < ents[e].len; b++) w->sym[k++] = text[ents[e].off + (size_t)b];
    }
    w->n_words = (int)n_ents;
done:
    free(text);
    free(ents);
    free(slots);
    if (rc != VOX_OK) ws_free(w);
    return rc;
}

/* ---------------------------------------------------------------- BPE training */

typedef struct {
    uint64_t key; /* (a << 32) | b, or UINT64_MAX for empty */
    long count;
} pair_slot;

static int train(tok_table *t, word_set *w, int target, uint64_t seed, vox_error *err) {
    size_t n_slots = 1u << 16;
    pair_slot *ps = malloc(n_slots * sizeof *ps);
    size_t *used = malloc(n_slots * sizeof *used);
    unsigned char *buf = NULL;
    size_t buf_cap = 0;
    int rc = VOX_OK;
    if (!ps || !used) {
        rc = vox_set_error(err, VOX_ERR_NOMEM, "tekken gen: out of memory (pairs)");
        goto done;
    }
    for (size_t i = 0; i < n_slots; i++) ps[i].key = UINT64_MAX;
    while (t->n < target) {
        size_t n_used = 0;
        for (int wi = 0; wi < w->n_words; wi++) {
            const int *s = w->sym + w->start[wi];
            for (int j = 0; j + 1 < w->nsym[wi]; j++) {
                uint64_t key = ((uint64_t)(uint32_t)s[j] << 32) | (uint32_t)s[j + 1];
                size_t h = (size_t)mix64(key) & (n_slots - 1);
                while (ps[h].key != UINT64_MAX && ps[h].key != key) h = (h + 1) & (n_slots - 1);
                if (ps[h].key == UINT64_MAX) {
                    if (n_used + 1 >= n_slots / 2) break; /* table full enough: stop counting */
                    ps[h].key = key;
                    ps[h].count = 0;
                    used[n_used++] = h;
                }
                ps[h].count += w->count[wi];
            }
        }
        if (n_used == 0) break;
        uint64_t best = UINT64_MAX, best_tie = 0;
        long best_count = 0;
        for (size_t u = 0; u < n_used; u++) {
            const pair_slot *p = &ps[used[u]];
            uint64_t tie = mix64(p->key ^ seed);
            if (p->count > best_count || (p->count == best_count && tie < best_tie)) {
                best = p->key;
                best_count = p->count;
                best_tie = tie;
            }
        }
        for (size_t u = 0; u < n_used; u++) ps[used[u]].key = UINT64_MAX;
        int a = (int)(best >> 32), b = (int)(best & 0xFFFFFFFFu);
        int la = t->len[a], lb = t->len[b];
        if ((size_t)(la + lb) > buf_cap) {
            buf_cap = (size_t)(la + lb) * 2;
            unsigned char *nb = realloc(buf, buf_cap);
            if (!nb) {
                rc = vox_set_error(err, VOX_ERR_NOMEM, "tekken gen: out of memory");
                goto done;
            }
            buf = nb;
        }
        memcpy(buf, t->bytes + t->off[a], (size_t)la);
        memcpy(buf + la, t->bytes + t->off[b], (size_t)lb);
        int r = tt_find(t, buf, la + lb);
        if (r < 0) {
            r = t->n;
            if ((rc = tt_add(t, buf, la + lb, err)) != VOX_OK) goto done;
        }
        for (int wi = 0; wi < w->n_words; wi++) {
            int *s = w->sym + w->start[wi];
            int n = w->nsym[wi], o = 0;
            for (int j = 0; j < n; j++) {
                if (j + 1 < n && s[j] == a && s[j + 1] == b) {
                    s[o++] = r;
                    j++;
                } else {
                    s[o++] = s[j];
                }
            }
            w->nsym[wi] = o;
        }
    }
done:
    free(ps);
    free(used);
    free(buf);
    return rc;
}

/* Fill up with seeded concatenations of two existing tokens (each <= 16 bytes). */
static int fill_random(tok_table *t, int target, uint64_t *rng, vox_error *err) {
    unsigned char buf[32];
    long attempts = 0;
    int base = t->n;
    while (t->n < target) {
        if (++attempts > 1000L * (long)target + 100000L)
            return vox_set_error(err, VOX_ERR_ARG, "tekken gen: cannot make %d distinct tokens",
                                 target);
        /* Prefer learnt tokens as parts so fillers look like word pieces. */
        int a = (int)(splitmix64(rng) % (uint64_t)base);
        int b = (int)(splitmix64(rng) % (uint64_t)t->n);
        if (a < 256 && (splitmix64(rng) & 3)) a = 256 + (int)(splitmix64(rng) % (uint64_t)(base - 256 > 0 ? base - 256 : 1));
        if (a >= t->n) a = t->n - 1;
        int la = t->len[a], lb = t->len[b];
        if (la + lb > 16) continue;
        memcpy(buf, t->bytes + t->off[a], (size_t)la);
        memcpy(buf + la, t->bytes + t->off[b], (size_t)lb);
        if (tt_find(t, buf, la + lb) >= 0) continue;
        int rc = tt_add(t, buf, la + lb, err);
        if (rc != VOX_OK) return rc;
    }
    return VOX_OK;
}

/* ---------------------------------------------------------------- JSON output */

static void put_json_string(FILE *f, const unsigned char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\r') {
            fputs("\\r", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc((int)c, f);
        }
    }
    fputc('"', f);
}

static void put_base64(FILE *f, const unsigned char *s, size_t n) {
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    fputc('"', f);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n) v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n) v |= s[i + 2];
        fputc(tbl[(v >> 18) & 63], f);
        fputc(tbl[(v >> 12) & 63], f);
        fputc(i + 1 < n ? tbl[(v >> 6) & 63] : '=', f);
        fputc(i + 2 < n ? tbl[v & 63] : '=', f);
    }
    fputc('"', f);
}

typedef struct {
    int rank;
    const char *name;
} named_special;

static const named_special specials_common[] = {
    {0, "<unk>"},
    {1, "<s>"},
    {2, "</s>"},
    {3, "[INST]"},
    {4, "[/INST]"},
    {5, "[AVAILABLE_TOOLS]"},
    {6, "[/AVAILABLE_TOOLS]"},
    {7, "[TOOL_RESULTS]"},
    {8, "[/TOOL_RESULTS]"},
    {9, "[TOOL_CALLS]"},
    {10, "[IMG]"},
    {11, "<pad>"},
    {12, "[IMG_BREAK]"},
    {13, "[IMG_END]"},
    {14, "[PREFIX]"},
    {15, "[MIDDLE]"},
    {16, "[SUFFIX]"},
    {17, "[SYSTEM_PROMPT]"},
    {18, "[/SYSTEM_PROMPT]"},
    {19, "[TOOL_CONTENT]"},
    {24, "[AUDIO]"},
    {25, "[BEGIN_AUDIO]"},
    {32, "[STREAMING_PAD]"},
    {33, "[STREAMING_WORD]"},
};
static const named_special specials_rt[] = {{34, "[REPEAT_AUDIO_TEXT]"}};
static const named_special specials_tts[] = {
    {26, "[OUTPUT_AUDIO]"}, {34, "[TRANSCRIBE]"}, {35, "[REPEAT_AUDIO_TEXT]"},
    {36, "[NEXT_AUDIO_TEXT]"}};

static const char *special_name(int rank, int tts) {
    for (size_t i = 0; i < sizeof specials_common / sizeof specials_common[0]; i++)
        if (specials_common[i].rank == rank) return specials_common[i].name;
    const named_special *x = tts ? specials_tts : specials_rt;
    size_t nx = tts ? sizeof specials_tts / sizeof specials_tts[0]
                    : sizeof specials_rt / sizeof specials_rt[0];
    for (size_t i = 0; i < nx; i++)
        if (x[i].rank == rank) return x[i].name;
    return NULL;
}

void vox_tekken_gen_defaults(vox_tekken_gen_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_special = 1000;
    o->default_vocab_size = 2048;
    o->n_vocab_stored = 1100;
    o->seed = 1;
    o->delay_ms = 480;
    o->real_pattern = 1;
    o->version = NULL;
    o->tts = 0;
}

static int check_opts(const vox_tekken_gen_opts *o, vox_error *err) {
    int max_named = o->tts ? 36 : 34;
    if (o->n_special <= max_named)
        return vox_set_error(err, VOX_ERR_ARG,
                             "tekken gen: n_special %d must be > %d (highest named special rank)",
                             o->n_special, max_named);
    if (o->n_vocab_stored < 256)
        return vox_set_error(err, VOX_ERR_ARG, "tekken gen: n_vocab_stored %d must be >= 256",
                             o->n_vocab_stored);
    if (o->default_vocab_size < o->n_special + 256 ||
        o->default_vocab_size - o->n_special > o->n_vocab_stored)
        return vox_set_error(err, VOX_ERR_ARG,
                             "tekken gen: default_vocab_size %d must be in [n_special+256, "
                             "n_special+n_vocab_stored] = [%d, %d]",
                             o->default_vocab_size, o->n_special + 256,
                             o->n_special + o->n_vocab_stored);
    if (o->n_vocab_stored > 4000000)
        return vox_set_error(err, VOX_ERR_ARG, "tekken gen: n_vocab_stored %d too large",
                             o->n_vocab_stored);
    if (!o->tts && o->delay_ms > 0 && o->delay_ms % 80 != 0)
        return vox_set_error(err, VOX_ERR_ARG,
                             "tekken gen: delay_ms %d must be a multiple of 80 (one frame)",
                             o->delay_ms);
    if (o->tts && o->n_voices > 0 && (!o->voice_names || !o->voice_num_audio_tokens))
        return vox_set_error(err, VOX_ERR_ARG, "tekken gen: n_voices %d without names/counts",
                             o->n_voices);
    for (int i = 0; o->tts && i < o->n_voices; i++) {
        if (!o->voice_names[i] || !o->voice_names[i][0] || o->voice_num_audio_tokens[i] <= 0)
            return vox_set_error(err, VOX_ERR_ARG, "tekken gen: voice %d: empty name or count <= 0",
                                 i);
    }
    return VOX_OK;
}

int vox_tekken_gen_write(const char *path, const vox_tekken_gen_opts *o, vox_error *err) {
    if (!path || !o) return vox_set_error(err, VOX_ERR_ARG, "tekken gen: NULL path or options");
    int rc = check_opts(o, err);
    if (rc != VOX_OK) return rc;

    tok_table t;
    memset(&t, 0, sizeof t);
    word_set w;
    memset(&w, 0, sizeof w);
    FILE *f = NULL;
    uint64_t rng = o->seed ^ 0x74656b6b656eull;
    int target = o->n_vocab_stored;

    t.cap = target;
    t.off = malloc((size_t)target * sizeof *t.off);
    t.len = malloc((size_t)target * sizeof *t.len);
    t.cap_bytes = (size_t)target * 8 + 256;
    t.bytes = malloc(t.cap_bytes);
    t.n_slots = 1024;
    while (t.n_slots < (size_t)target * 2) t.n_slots <<= 1;
    t.slots = malloc(t.n_slots * sizeof *t.slots);
    if (!t.off || !t.len || !t.bytes || !t.slots) {
        rc = vox_set_error(err, VOX_ERR_NOMEM, "tekken gen: out of memory (%d tokens)", target);
        goto done;
    }
    for (size_t i = 0; i < t.n_slots; i++) t.slots[i] = -1;
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        if ((rc = tt_add(&t, &c, 1, err)) != VOX_OK) goto done;
    }
    if ((rc = build_words(&w, &rng, err)) != VOX_OK) goto done;
    if ((rc = train(&t, &w, target, o->seed, err)) != VOX_OK) goto done;
    if ((rc = fill_random(&t, target, &rng, err)) != VOX_OK) goto done;

    f = fopen(path, "wb");
    if (!f) {
        rc = vox_set_error(err, VOX_ERR_IO, "tekken gen: cannot create %s: %s", path,
                           strerror(errno));
        goto done;
    }
    fputs("{\n  \"config\": {\n    \"pattern\": ", f);
    const char *pat = o->real_pattern ? vox_tekken_real_pattern : alt_pattern;
    put_json_string(f, (const unsigned char *)pat, strlen(pat));
    fprintf(f,
            ",\n    \"num_vocab_tokens\": %d,\n    \"default_vocab_size\": %d,\n"
            "    \"default_num_special_tokens\": %d,\n    \"version\": ",
            t.n, o->default_vocab_size, o->n_special);
    const char *ver = o->version ? o->version : "v7";
    put_json_string(f, (const unsigned char *)ver, strlen(ver));
    fputs("\n  },\n  \"vocab\": [\n", f);
    for (int r = 0; r < t.n; r++) {
        const unsigned char *p = t.bytes + t.off[r];
        size_t n = (size_t)t.len[r];
        fprintf(f, "    {\"rank\": %d, \"token_bytes\": ", r);
        put_base64(f, p, n);
        fputs(", \"token_str\": ", f);
        if (vox_utf8_check(p, n) == n)
            put_json_string(f, p, n);
        else
            fputs("null", f);
        fputs(r + 1 < t.n ? "},\n" : "}\n", f);
    }
    fputs("  ],\n  \"special_tokens\": [\n", f);
    for (int r = 0; r < o->n_special; r++) {
        const char *name = special_name(r, o->tts);
        char filler[32];
        if (!name) {
            snprintf(filler, sizeof filler, "<SPECIAL_%d>", r);
            name = filler;
        }
        fprintf(f, "    {\"rank\": %d, \"token_str\": ", r);
        put_json_string(f, (const unsigned char *)name, strlen(name));
        fputs(r + 1 < o->n_special ? ", \"is_control\": true},\n" : ", \"is_control\": true}\n", f);
    }
    fputs("  ]", f);
    if (o->tts) {
        fputs(",\n  \"audio\": {\n    \"sampling_rate\": 24000,\n    \"frame_rate\": 12.5,\n"
              "    \"audio_encoding_config\": {\"num_mel_bins\": 128, \"hop_length\": 240, "
              "\"window_size\": 960},\n    \"voice_num_audio_tokens\": {",
              f);
        for (int i = 0; i < o->n_voices; i++) {
            if (i) fputs(", ", f);
            put_json_string(f, (const unsigned char *)o->voice_names[i],
                            strlen(o->voice_names[i]));
            fprintf(f, ": %d", o->voice_num_audio_tokens[i]);
        }
        fputs("}\n  }", f);
    } else if (o->delay_ms > 0) {
        fprintf(f,
                ",\n  \"audio\": {\n    \"sampling_rate\": 16000,\n    \"frame_rate\": 12.5,\n"
                "    \"audio_encoding_config\": {\"num_mel_bins\": 128, \"hop_length\": 160, "
                "\"window_size\": 400},\n    \"chunk_length_s\": null,\n"
                "    \"transcription_format\": \"streaming\",\n"
                "    \"transcription_delay_ms\": %d,\n    \"streaming_look_ahead_ms\": 2.5,\n"
                "    \"streaming_look_back_ms\": 52.5,\n    \"streaming_n_left_pad_tokens\": 32\n  }",
                o->delay_ms);
    }
    fputs("\n}\n", f);
    if (ferror(f)) {
        rc = vox_set_error(err, VOX_ERR_IO, "tekken gen: write error on %s", path);
        goto done;
    }
done:
    if (f && fclose(f) != 0 && rc == VOX_OK)
        rc = vox_set_error(err, VOX_ERR_IO, "tekken gen: cannot close %s: %s", path,
                           strerror(errno));
    ws_free(&w);
    tt_free(&t);
    return rc;
}
