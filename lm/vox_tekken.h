/* vox_tekken.h - Mistral "tekken" tokenizer (tekken.json): load, encode, decode, streaming decode.
 *
 * Semantics follow mistral-common's Tekkenizer (which wraps tiktoken):
 *  - ids 0 .. n_special-1 are special tokens (rank = id); id >= n_special is the vocab entry of
 *    rank id - n_special. Only ranks < default_vocab_size - n_special exist (the file may store
 *    more vocab entries than it uses; the rest are ignored, as mistral-common does).
 *  - encode: split the UTF-8 text with config.pattern (PCRE2, UTF + UCP), then byte-level BPE
 *    per piece (tiktoken: a piece that is itself a token is one token; otherwise repeatedly
 *    merge the adjacent pair whose concatenation has the lowest rank, leftmost on ties).
 *    No BOS/EOS is added (mistral-common encode(s, bos=False, eos=False)); special-token names
 *    in the text are plain text.
 *  - decode: consecutive normal tokens form a group whose bytes are decoded as UTF-8 with
 *    Python's errors="replace" (one U+FFFD per maximal invalid subpart); a special token ends
 *    the group and is dropped (IGNORE), written as its name (KEEP) or is an error (RAISE).
 *    The streaming decoder gives exactly the same text, emitting only complete characters.
 *
 * Ownership: vox_tekken_load returns a tokenizer the caller frees with vox_tekken_free; all
 * strings and pointers returned by getters stay valid until then. The tokenizer is immutable
 * after load and may be shared between threads (each thread its own vox_tekken_stream).
 * Buffers returned by vox_tekken_encode / vox_tekken_decode are malloc'ed and owned by the
 * caller (free()). A vox_tekken_stream is a plain caller-owned struct; it allocates nothing. */
#ifndef VOX_TEKKEN_H
#define VOX_TEKKEN_H

#include <stddef.h>
#include <stdint.h>

#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vox_tekken vox_tekken;

typedef enum {
    VOX_TEKKEN_SPECIAL_IGNORE = 0, /* drop special tokens (mistral-common default) */
    VOX_TEKKEN_SPECIAL_KEEP = 1,   /* write their names ("[STREAMING_PAD]") */
    VOX_TEKKEN_SPECIAL_RAISE = 2   /* a special token is an error (VOX_ERR_ARG) */
} vox_tekken_special_policy;

/* The optional "audio" block of tekken.json. Fields absent in the file are 0 / -1. */
typedef struct {
    int present;                 /* 1 if the file has an "audio" object */
    int sampling_rate;           /* Hz */
    double frame_rate;           /* tokens per second (12.5) */
    int num_mel_bins, hop_length, window_size; /* audio_encoding_config */
    int streaming;               /* transcription_format == "streaming" */
    double transcription_delay_ms;   /* -1 if absent/null */
    double streaming_look_ahead_ms;  /* -1 if absent/null */
    double streaming_look_back_ms;   /* -1 if absent/null */
    int streaming_n_left_pad_tokens; /* -1 if absent/null */
    int n_voices;                /* entries of voice_num_audio_tokens (TTS) */
} vox_tekken_audio;

/* Load and validate a tekken.json. On failure returns NULL and err names the file, the item
 * and expected vs found. */
vox_tekken *vox_tekken_load(const char *path, vox_error *err);
/* Same from memory; `name` stands for the path in messages. */
vox_tekken *vox_tekken_parse(const char *json, size_t len, const char *name, vox_error *err);
void vox_tekken_free(vox_tekken *t);

int vox_tekken_n_special(const vox_tekken *t);  /* default_num_special_tokens */
int vox_tekken_vocab_size(const vox_tekken *t); /* default_vocab_size: all valid ids */
const char *vox_tekken_version(const vox_tekken *t);  /* config.version, e.g. "v7" */
const char *vox_tekken_pattern(const vox_tekken *t);  /* config.pattern */
const vox_tekken_audio *vox_tekken_audio_config(const vox_tekken *t);
/* TTS voices (audio.voice_num_audio_tokens), i in [0, n_voices). */
const char *vox_tekken_voice_name(const vox_tekken *t, int i);
/* Number of audio tokens of a voice, or -1 if unknown. */
int vox_tekken_voice_num_audio_tokens(const vox_tekken *t, const char *name);

/* Special token id by name ("</s>", "[STREAMING_PAD]"), or -1 if the file has no such token. */
int vox_tekken_special_id(const vox_tekken *t, const char *name);
/* Name of a special id, or NULL if id is not special. */
const char *vox_tekken_special_name(const vox_tekken *t, int id);
int vox_tekken_is_special(const vox_tekken *t, int id);
/* Raw bytes of a normal token id (not NUL-terminated), or NULL for special / out-of-range. */
const unsigned char *vox_tekken_token_bytes(const vox_tekken *t, int id, size_t *len);

/* Encode len bytes of UTF-8 text (invalid UTF-8 is an error). *ids is malloc'ed (caller
 * frees; non-NULL even when *n_ids == 0). */
int vox_tekken_encode(const vox_tekken *t, const char *text, size_t len, int32_t **ids,
                      size_t *n_ids, vox_error *err);

/* The pre-split alone: byte spans [start, end) of the pattern's pieces, as pairs in *spans
 * (malloc'ed, 2 * *n_pieces entries; caller frees). For debugging and tests. */
int vox_tekken_pieces(const vox_tekken *t, const char *text, size_t len, size_t **spans,
                      size_t *n_pieces, vox_error *err);

/* Decode ids to UTF-8. *out is malloc'ed and NUL-terminated (the text itself may contain NUL
 * bytes: use *out_len). Ids outside [0, vocab_size) are an error. */
int vox_tekken_decode(const vox_tekken *t, const int32_t *ids, size_t n_ids,
                      vox_tekken_special_policy policy, char **out, size_t *out_len,
                      vox_error *err);

/* Streaming decoder: feed ids one at a time; each call appends only complete UTF-8 (and
 * U+FFFD for invalid bytes) to out. Concatenating every push and the final flush equals
 * vox_tekken_decode of the whole sequence. */
typedef struct {
    const vox_tekken *tok;
    vox_tekken_special_policy policy;
    unsigned char buf[4]; /* bytes of the incomplete character */
    int have;             /* bytes in buf */
    int need;             /* continuation bytes still expected (0: none pending) */
    unsigned char lo, hi; /* allowed range of the next continuation byte */
} vox_tekken_stream;

void vox_tekken_stream_init(vox_tekken_stream *s, const vox_tekken *t,
                            vox_tekken_special_policy policy);
/* Bytes of out needed for any single push or flush on this tokenizer. */
size_t vox_tekken_stream_max_out(const vox_tekken *t);
/* Feed one id; writes *out_len bytes to out (cap >= vox_tekken_stream_max_out, else
 * VOX_ERR_ARG). No NUL terminator. */
int vox_tekken_stream_push(vox_tekken_stream *s, int32_t id, char *out, size_t cap,
                           size_t *out_len, vox_error *err);
/* End of input: an incomplete trailing character becomes U+FFFD. The stream is then reset. */
int vox_tekken_stream_flush(vox_tekken_stream *s, char *out, size_t cap, size_t *out_len,
                            vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_TEKKEN_H */
