/* text.c - long text into speakable chunks (vox_tts_split_text, see vox_tts.h).
 *
 * Two passes over the bytes: (1) sentences, each a span whose end is a sentence mark (runs of
 * marks and closing quotes/brackets included), trimmed of ASCII whitespace; (2) greedy packing
 * of consecutive sentences into chunks of at most max bytes (the bytes between packed
 * sentences are whitespace), cutting a sentence that alone exceeds max at the last clause mark
 * inside the limit, else the last whitespace, else the last UTF-8 character boundary. Linear in
 * the text length apart from the cut search, which is O(max) per cut. */
#include <stdlib.h>
#include <string.h>

#include "vox_tts.h"

static int is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Length of a sentence-ending mark at s (0 if none); a newline counts as one. The 3-byte marks
 * are … (U+2026), 。 (U+3002), ！ (U+FF01), ？ (U+FF1F). */
static size_t sentence_end(const char *s, size_t left) {
    unsigned char c = (unsigned char)*s;
    if (c == '.' || c == '!' || c == '?' || c == '\n') return 1;
    if (left >= 3 && (!memcmp(s, "\xe2\x80\xa6", 3) || !memcmp(s, "\xe3\x80\x82", 3) ||
                      !memcmp(s, "\xef\xbc\x81", 3) || !memcmp(s, "\xef\xbc\x9f", 3)))
        return 3;
    return 0;
}

/* Closing quote or bracket that stays with the sentence mark before it. */
static int is_closer(char c) {
    return c == '"' || c == '\'' || c == ')' || c == ']';
}

/* Length of a clause mark ending at s[i - 1] (0 if none): ASCII , ; : or the full-width
 * ， (U+FF0C) 、 (U+3001) ； (U+FF1B) ： (U+FF1A). */
static size_t clause_mark_before(const char *s, size_t i) {
    char c = s[i - 1];
    if (c == ',' || c == ';' || c == ':') return 1;
    if (i >= 3 && (!memcmp(s + i - 3, "\xef\xbc\x8c", 3) || !memcmp(s + i - 3, "\xe3\x80\x81", 3) ||
                   !memcmp(s + i - 3, "\xef\xbc\x9b", 3) || !memcmp(s + i - 3, "\xef\xbc\x9a", 3)))
        return 3;
    return 0;
}

typedef struct {
    vox_tts_span *v;
    size_t n, cap;
} span_list;

static int push(span_list *l, size_t off, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        vox_tts_span *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) return 1;
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n].off = off;
    l->v[l->n].len = len;
    l->n++;
    return 0;
}

static void trim(const char *t, size_t *off, size_t *len) {
    while (*len && is_ws((unsigned char)t[*off]))
        (*off)++, (*len)--;
    while (*len && is_ws((unsigned char)t[*off + *len - 1]))
        (*len)--;
}

/* First piece of a sentence s[len] longer than max (max >= 4): up to the last clause mark in
 * s[max/4 .. max], else the last whitespace there, else the last character boundary <= max
 * (a byte that is not a UTF-8 continuation byte 10xxxxxx starts a character; invalid UTF-8
 * without one in the last 4 bytes is cut at max). 1..max. */
static size_t cut_point(const char *s, size_t len, size_t max) {
    if (len <= max) return len;
    for (size_t i = max; i > max / 4; i--)
        if (clause_mark_before(s, i)) return i;
    for (size_t i = max; i > max / 4; i--)
        if (is_ws((unsigned char)s[i - 1])) return i;
    /* a character is at most 4 bytes: back up at most 3; in invalid UTF-8 (no start byte
     * there) cut at max rather than shrinking the piece to single bytes */
    size_t i = max;
    while (i > 1 && max - i < 3 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return ((unsigned char)s[i] & 0xC0) == 0x80 ? max : i;
}

int vox_tts_split_text(const char *t, size_t n, size_t max, vox_tts_span **chunks, size_t *n_chunks,
                       vox_error *err) {
    if (!chunks || !n_chunks || (!t && n))
        return vox_set_error(err, VOX_ERR_ARG, "vox_tts_split_text: NULL argument");
    *chunks = NULL;
    *n_chunks = 0;
    if (max < 4)
        return vox_set_error(err, VOX_ERR_ARG,
                             "vox_tts_split_text: max %zu bytes: expected >= 4 (one UTF-8 "
                             "character)",
                             max);
    span_list sent = {0}, out = {0};
    size_t start = 0, i = 0;
    while (i < n) {
        size_t e = sentence_end(t + i, n - i);
        if (!e) {
            i++;
            continue;
        }
        int ascii = e == 1 && t[i] != '\n';
        size_t j = i + e;
        while (j < n && t[j] != '\n' && sentence_end(t + j, n - j))
            j += sentence_end(t + j, n - j);
        while (j < n && is_closer(t[j]))
            j++;
        /* . ! ? end a sentence only before whitespace or the end ("3.14", "e.g.x" do not) */
        if (ascii && j < n && !is_ws((unsigned char)t[j])) {
            i = j;
            continue;
        }
        i = j;
        size_t o = start, l = i - start;
        trim(t, &o, &l);
        if (l && push(&sent, o, l)) goto oom;
        start = i;
    }
    {
        size_t o = start, l = n - start;
        trim(t, &o, &l);
        if (l && push(&sent, o, l)) goto oom;
    }
    size_t co = 0, cl = 0; /* the chunk being packed */
    for (size_t k = 0; k < sent.n; k++) {
        size_t o = sent.v[k].off, l = sent.v[k].len;
        if (cl && (o + l) - co <= max) {
            cl = o + l - co;
            continue;
        }
        if (cl && push(&out, co, cl)) goto oom;
        cl = 0;
        while (l > max) {
            size_t c = cut_point(t + o, l, max);
            size_t po = o, pl = c;
            trim(t, &po, &pl);
            if (pl && push(&out, po, pl)) goto oom;
            o += c;
            l -= c;
            trim(t, &o, &l);
        }
        if (l) {
            co = o;
            cl = l;
        }
    }
    if (cl && push(&out, co, cl)) goto oom;
    free(sent.v);
    *chunks = out.v;
    *n_chunks = out.n;
    return VOX_OK;
oom:
    free(sent.v);
    free(out.v);
    return vox_set_error(err, VOX_ERR_NOMEM, "vox_tts_split_text: out of memory");
}
