/* transcript.c - segments and subtitle text of timed words (vox_transcript.h). */
#include <stdlib.h>
#include <string.h>

#include "vox_transcript.h"

int vox_tr_ends_sentence(const char *t) {
    size_t n = strlen(t);
    if (!n) return 0;
    unsigned char c = (unsigned char)t[n - 1];
    if (c == '.' || c == '?' || c == '!' || c == ';') return 1;
    /* full-width / ideographic 。！？ and the ellipsis … (3-byte UTF-8) */
    if (n >= 3) {
        const char *e = t + n - 3;
        if (!memcmp(e, "\xe3\x80\x82", 3) || !memcmp(e, "\xef\xbc\x81", 3) ||
            !memcmp(e, "\xef\xbc\x9f", 3) || !memcmp(e, "\xe2\x80\xa6", 3))
            return 1;
    }
    return 0;
}

size_t vox_tr_segments(const vox_tr_word *w, size_t nw, const vox_tr_seg_opts *so,
                       vox_tr_seg *seg) {
    size_t ns = 0;
    for (size_t k = 0; k < nw; k++) {
        int new_seg = k == 0;
        if (k > 0) {
            const vox_tr_seg *cur = &seg[ns - 1];
            if (vox_tr_ends_sentence(w[k - 1].text))
                new_seg = 1;
            else if (w[k].start - w[k - 1].end > so->pause_sec)
                new_seg = 1;
            else if (w[k].end - w[cur->w0].start > so->max_seg_sec)
                new_seg = 1;
        }
        if (new_seg) seg[ns++].w0 = k;
        seg[ns - 1].w1 = k + 1;
    }
    return ns;
}

char *vox_tr_join_words(const vox_tr_word *w, const vox_tr_seg *s) {
    size_t n = 1;
    for (size_t k = s->w0; k < s->w1; k++)
        n += strlen(w[k].text) + 1;
    char *r = malloc(n), *p = r;
    if (!r) return NULL;
    for (size_t k = s->w0; k < s->w1; k++) {
        if (k > s->w0) *p++ = ' ';
        size_t l = strlen(w[k].text);
        memcpy(p, w[k].text, l);
        p += l;
    }
    *p = 0;
    return r;
}

static void sub_time(FILE *f, double t, char sep) {
    if (t < 0) t = 0;
    long ms = (long)(t * 1000.0 + 0.5);
    fprintf(f, "%02ld:%02ld:%02ld%c%03ld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, sep,
            ms % 1000);
}

int vox_tr_write_subs(FILE *f, int vtt, const vox_tr_word *w, const vox_tr_seg *seg, size_t ns,
                      vox_tr_seg_text_fn seg_text, void *ud) {
    if (vtt) fputs("WEBVTT\n\n", f);
    for (size_t s = 0; s < ns; s++) {
        char *st = seg_text ? seg_text(ud, w, &seg[s]) : vox_tr_join_words(w, &seg[s]);
        if (!st) return 1;
        double a = w[seg[s].w0].start, b = w[seg[s].w1 - 1].end;
        if (b <= a) b = a + 0.001; /* cues need a positive length */
        if (!vtt) fprintf(f, "%zu\n", s + 1);
        sub_time(f, a, vtt ? '.' : ',');
        fputs(" --> ", f);
        sub_time(f, b, vtt ? '.' : ',');
        /* a cue text may not contain an empty line (nor "-->" in VTT): newlines -> spaces */
        for (char *p = st; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
        if (vtt)
            for (char *p; (p = strstr(st, "-->"));)
                p[2] = ' ';
        fprintf(f, "\n%s\n\n", st);
        free(st);
    }
    return ferror(f) ? 1 : 0;
}

void vox_tr_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"')
            fputs("\\\"", f);
        else if (*p == '\\')
            fputs("\\\\", f);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\r')
            fputs("\\r", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}
