/* vox_transcript.h - segments and subtitle/JSON text of a transcript given as timed words,
 * shared by vox-transcribe and vox-server's POST /v1/audio/transcriptions.
 *
 * Words are trimmed UTF-8 strings with [start, end] in seconds (built from token times by the
 * caller: a text token starting with whitespace begins a word; a token covers the 80 ms ending
 * at its time). Segments: a segment ends after a word ending in sentence punctuation (. ? ! ;
 * and the full-width 。！？ and …), before a word starting more than pause_sec after the
 * previous word's end, or before a word that would make it longer than max_seg_sec.
 *
 * Subtitles: SubRip cues "N\nHH:MM:SS,mmm --> HH:MM:SS,mmm\ntext\n\n" and WebVTT "WEBVTT\n\n"
 * then cues with '.' before the milliseconds; a cue lasts at least 1 ms; newlines in cue text
 * become spaces and (VTT) "-->" becomes "-- ". Times are rounded to the millisecond.
 *
 * Stateless; nothing is owned: the writers only read the caller's arrays. */
#ifndef VOX_TRANSCRIPT_H
#define VOX_TRANSCRIPT_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vox_tr_word {
    const char *text; /* trimmed, non-empty */
    double start, end;
} vox_tr_word;

typedef struct vox_tr_seg {
    size_t w0, w1; /* [w0, w1) word indices */
} vox_tr_seg;

typedef struct vox_tr_seg_opts {
    double pause_sec;   /* gap between words that ends a segment (vox-transcribe: 1.0) */
    double max_seg_sec; /* segment length limit, split at the next word (vox-transcribe: 10) */
} vox_tr_seg_opts;

/* 1 if the (trimmed) text ends a sentence. */
int vox_tr_ends_sentence(const char *t);

/* Segments of w[nw] into seg (room for nw entries); returns their count. */
size_t vox_tr_segments(const vox_tr_word *w, size_t nw, const vox_tr_seg_opts *o, vox_tr_seg *seg);

/* Text of segment s, malloc'ed (NULL = out of memory). The default (seg_text NULL in the
 * writers) joins the segment's words with single spaces. */
typedef char *(*vox_tr_seg_text_fn)(void *ud, const vox_tr_word *w, const vox_tr_seg *s);
char *vox_tr_join_words(const vox_tr_word *w, const vox_tr_seg *s);

/* SubRip (vtt 0) or WebVTT (vtt 1) to f. Returns 0, or 1 on out of memory / write error. */
int vox_tr_write_subs(FILE *f, int vtt, const vox_tr_word *w, const vox_tr_seg *seg, size_t ns,
                      vox_tr_seg_text_fn seg_text, void *ud);

/* s as a JSON string literal with quotes (", \, control bytes escaped; UTF-8 passed through). */
void vox_tr_json_str(FILE *f, const char *s);

#ifdef __cplusplus
}
#endif
#endif /* VOX_TRANSCRIPT_H */
