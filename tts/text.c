/* text.c - splitting text into TTS chunks (vox_tts.h: vox_tts_split_text), shared by vox-tts
 * and vox-server. */
#include <stdlib.h>
#include <string.h>

#include "vox_tts.h"

static int is_ws(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Length of a sentence-ending mark at s (0 if none); newlines count as ends. */
static size_t sentence_end(const char *s, size_t left) {
    unsigned char c = (unsigned char)*s;
    if (c == '.' || c == '!' || c == '?' || c == '\n') return 1;
    if (left >= 3 && (!memcmp(s, "\xe2\x80\xa6", 3) || !memcmp(s, "\xe3\x80\x82", 3) ||
                      !memcmp(s, "\xef\xbc\x81", 3) || !memcmp(s, "\xef\xbc\x9f", 3)))
        return 3;
    return 0;
}

static int span_push(vox_tts_text_chunks *l, size_t off, size_t len) {
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

/* Trim whitespace of [*off, *off + *len). */
static void trim_span(const char *t, size_t *off, size_t *len) {
    while (*len && is_ws((unsigned char)t[*off]))
        (*off)++, (*len)--;
    while (*len && is_ws((unsigned char)t[*off + *len - 1]))
        (*len)--;
}

/* Cut a sentence longer than max: at the last , ; : within max, else the last space, else the
 * last UTF-8 character boundary. Returns the length of the first piece (1..max). */
static size_t cut_point(const char *s, size_t len, size_t max) {
    if (len <= max) return len;
    for (size_t i = max; i > max / 4; i--) {
        char c = s[i - 1];
        if (c == ',' || c == ';' || c == ':') return i;
    }
    for (size_t i = max; i > max / 4; i--)
        if (is_ws((unsigned char)s[i - 1])) return i;
    size_t i = max;
    while (i > 1 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

int vox_tts_split_text(const char *t, size_t n, size_t max, vox_tts_text_chunks *out,
                       vox_error *err) {
    vox_tts_text_chunks sent = {0};
    if (max < 4) return vox_set_error(err, VOX_ERR_ARG, "chunk size %zu < 4 bytes", max);
    size_t start = 0, i = 0;
    while (i < n) {
        size_t e = sentence_end(t + i, n - i);
        if (e) {
            int ascii = e == 1 && t[i] != '\n';
            size_t j = i + e;
            while (j < n && t[j] != '\n' && sentence_end(t + j, n - j))
                j += sentence_end(t + j, n - j);
            while (j < n && strchr("\"')]", t[j]))
                j++; /* closing quotes/brackets stay */
            /* . ! ? end a sentence only before whitespace or the end ("3.14", "e.g.x" do not) */
            if (ascii && j < n && !is_ws((unsigned char)t[j])) {
                i = j;
                continue;
            }
            i = j;
            size_t o = start, l = i - start;
            trim_span(t, &o, &l);
            if (l && span_push(&sent, o, l)) goto oom;
            start = i;
        } else {
            i++;
        }
    }
    {
        size_t o = start, l = n - start;
        trim_span(t, &o, &l);
        if (l && span_push(&sent, o, l)) goto oom;
    }
    size_t co = 0, cl = 0; /* current chunk */
    for (size_t k = 0; k < sent.n; k++) {
        size_t o = sent.v[k].off, l = sent.v[k].len;
        if (cl && (o + l) - co <= max) { /* pack (the gap between sentences is whitespace) */
            cl = o + l - co;
            continue;
        }
        if (cl && span_push(out, co, cl)) goto oom;
        cl = 0;
        while (l > max) {
            size_t c = cut_point(t + o, l, max);
            size_t po = o, pl = c;
            trim_span(t, &po, &pl);
            if (pl && span_push(out, po, pl)) goto oom;
            o += c;
            l -= c;
            trim_span(t, &o, &l);
        }
        if (l) {
            co = o;
            cl = l;
        }
    }
    if (cl && span_push(out, co, cl)) goto oom;
    free(sent.v);
    return VOX_OK;
oom:
    free(sent.v);
    return vox_set_error(err, VOX_ERR_NOMEM, "out of memory splitting the text");
}
