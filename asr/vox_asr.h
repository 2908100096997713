/* vox_asr.h - Voxtral Realtime speech recognition: model (weights) and stream sessions (state).
 *
 * Model: vox_asr_model_load(dir) reads DIR/params.json, DIR/consolidated.safetensors and
 * DIR/tekken.json; every dimension comes from params.json and every tensor is checked for name,
 * shape and float dtype (one line naming the file, tensor, expected vs found). A TTS model dir
 * is refused with one clear line. The model is immutable after load and may be shared by any
 * number of streams (and threads, each stream used by one thread at a time).
 * Ownership: the model borrows the backend (which must outlive it) and owns the mapping, the
 * uploaded weights, the mel front end and the tokenizer.
 *
 * Stream: one audio session. All state that changes lives here: incremental mel, conv tails,
 * encoder KV rings (absolute positions, sliding window), the adapter-token ring, the decoder KV
 * rings, the delay-folded FFN norm weights (per session, since the delay is per session), the
 * output token queue and the UTF-8 carry. Memory is flat for unbounded audio.
 *
 * Pipeline per stream (spec voxtral-realtime.md §1-4): 32 tokens of zeros are fed first; audio
 * -> log-mel (100 Hz) -> causal conv stem (50 Hz) -> encoder with sliding window -> final norm
 * -> 4-frame concat adapter (12.5 Hz) -> decoder input = adapter token p + embedding of the
 * token at p (prompt BOS + PAD x (32 + n_delay)); greedy argmax; one decoder step per 1280
 * samples. flush/finish append ((1280 - n % 1280) % 1280) + (n_delay + 11) * 1280 zeros.
 *
 * Watchdog (live streams; off while finishing): the decoder (never the audio) is restarted on
 * EOS mid-stream, after `rut_tokens` consecutive non-text tokens, or when the decoder position
 * reaches its limit. A restart re-runs the prompt on the adapter tokens starting
 * n_left_pad_tokens before the first audio token not yet decoded, so the prompt's delay region
 * covers exactly the audio that was not transcribed yet (nothing is dropped; text of the
 * delay window before a mid-stream EOS may be lost, as the model declared it finished). */
#ifndef VOX_ASR_H
#define VOX_ASR_H

#include <stddef.h>
#include <stdint.h>

#include "vox_backend.h"
#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vox_asr_model vox_asr_model;
typedef struct vox_asr_stream vox_asr_stream;

typedef struct vox_asr_info {
    int sample_rate;        /* 16000 */
    int samples_per_token;  /* 1280 */
    int n_mels;             /* 128 */
    int enc_dim, enc_layers, dec_dim, dec_layers, vocab;
    int enc_window, dec_window;
    int n_left_pad_tokens;  /* 32 */
    int default_delay_ms;   /* tekken.json audio.transcription_delay_ms */
    int bos, eos, pad, word; /* special ids from tekken.json */
    size_t weight_bytes;    /* bytes of all tensors */
    size_t enc_bytes;       /* conv stem + encoder + adapter tensors */
    size_t dec_bytes;       /* decoder tensors incl. the embedding / tied LM head */
} vox_asr_info;

vox_asr_model *vox_asr_model_load(const char *dir, vox_backend *be, vox_log_level log,
                                  vox_error *err);
void vox_asr_model_free(vox_asr_model *m);
const vox_asr_info *vox_asr_model_info(const vox_asr_model *m);
/* The model's tokenizer (vox_tekken.h), for callers that decode ids themselves. */
const struct vox_tekken *vox_asr_model_tokenizer(const vox_asr_model *m);

/* Delay in ms -> delay tokens: 80..1200 in steps of 80 ms and 2400 are accepted (the trained
 * set); anything else is VOX_ERR_ARG with one line. */
int vox_asr_delay_tokens(const vox_asr_model *m, int delay_ms, int *n_delay, vox_error *err);

typedef struct vox_asr_opts {
    int delay_ms;        /* <= 0: the model's default */
    int watchdog;        /* 1: restart the decoder on ruts / mid-stream EOS / limits (default) */
    int rut_tokens;      /* consecutive non-text tokens before a restart (default 250 = 20 s) */
    int max_chunk_tokens;/* audio tokens per encoder pass (default 16) */
    int64_t dec_ctx;     /* decoder ring positions when the model has no window or a window
                            larger than this (then also the restart position; default 8192) */
    int64_t max_dec_pos; /* restart the decoder at this position (0: model_max_length) */
} vox_asr_opts;

void vox_asr_opts_default(vox_asr_opts *o);

/* A new session with default options and delay_ms (<= 0: the model's default; other values
 * outside the trained set fail with one line, see vox_asr_delay_tokens). Caller frees. */
vox_asr_stream *vox_asr_stream_create(const vox_asr_model *m, int delay_ms, vox_error *err);
vox_asr_stream *vox_asr_stream_create_opts(const vox_asr_model *m, const vox_asr_opts *o,
                                           vox_error *err);
void vox_asr_stream_free(vox_asr_stream *s);

/* Queue n samples (float, 16 kHz mono, any n incl. 0): only the log-mel front end runs, the
 * model runs in vox_asr_step. NaN/Inf: VOX_ERR_ARG (nothing queued). After finish: VOX_ERR_ARG. */
int vox_asr_push(vox_asr_stream *s, const float *pcm, size_t n, vox_error *err);
/* push + run the stream until it has nothing more to do (n = 1 batches). */
int vox_asr_feed(vox_asr_stream *s, const float *pcm, size_t n, vox_error *err);
/* Append the right padding, decode everything pending; the stream continues afterwards. */
int vox_asr_flush(vox_asr_stream *s, vox_error *err);
/* Append the right padding, end the signal, decode to the end (or EOS). Further feeds fail. */
int vox_asr_finish(vox_asr_stream *s, vox_error *err);
/* finish without decoding: append the right padding and end the signal; the remaining
 * decoding then happens in vox_asr_step (e.g. batched with other streams) and a later
 * vox_asr_finish only completes it. */
int vox_asr_end(vox_asr_stream *s, vox_error *err);
/* 1 when finished and nothing is left to decode. */
int vox_asr_done(const vox_asr_stream *s);

/* Advance each of n streams by what is ready: encoder on up to max_chunk_tokens new audio
 * tokens, then at most one decoder step (or the prompt prefill), all streams in one pass over
 * the weights (matmuls over one row per stream; attention per stream over its own rings).
 * All streams must belong to m. The batch's scratch buffers belong to streams[0] (grown the
 * first time a larger batch is seen). *progress (may be NULL) = number of streams that did
 * anything; 0 means every stream waits for audio (or is done). */
int vox_asr_step(const vox_asr_model *m, vox_asr_stream **streams, int n, int *progress,
                 vox_error *err);

/* One decoded token. */
typedef struct vox_asr_token {
    int32_t id;
    int64_t pos;      /* decoder input position whose logits produced it (since last restart) */
    int64_t audio_tok;/* absolute audio-token index of that position (incl. the 32 left pad) */
    double t_sec;     /* stream time of the audio it refers to: (audio_tok + 1 - n_delay -
                         n_left_pad) * 0.08 s, on the stream's timeline (incl. flush padding) */
    int restart;      /* 1 on the first token after a decoder restart */
} vox_asr_token;

/* Pop up to max tokens (oldest first); returns the count. */
int vox_asr_get_tokens(vox_asr_stream *s, vox_asr_token *out, int max);
/* Text of all tokens decoded since the last call (specials dropped, only complete UTF-8;
 * finish flushes an incomplete tail). Returns a pointer valid until the next call on s. Text is
 * kept independently of vox_asr_get_tokens. */
const char *vox_asr_get_text(vox_asr_stream *s, size_t *len);

int vox_asr_stream_delay_tokens(const vox_asr_stream *s);
int64_t vox_asr_stream_restarts(const vox_asr_stream *s);

/* Time spent by vox_asr_step calls in which this stream was streams[0] (the whole batch). */
typedef struct vox_asr_stats {
    double enc_sec;     /* conv stem + encoder + adapter */
    int64_t enc_frames; /* encoder frames computed (all streams of those batches) */
    double prefill_sec; /* decoder passes that contained a prompt prefill */
    int64_t prefills;
    double dec_sec;     /* decoder passes of single steps only */
    int64_t dec_passes; /* such passes (one token for each stream in the batch) */
} vox_asr_stats;
void vox_asr_stream_stats(const vox_asr_stream *s, vox_asr_stats *out);

/* Test taps: host arrays the stream fills as it computes (absolute row indices; rows beyond a
 * capacity are not stored). Any pointer may be NULL. */
typedef struct vox_asr_taps {
    float *mel; int64_t mel_cap;         /* [mel_cap][n_mels] */
    float *conv; int64_t conv_cap;       /* [conv_cap][enc_dim] */
    float *enc; int64_t enc_cap;         /* [enc_cap][enc_dim] */
    float *adapter; int64_t adapter_cap; /* [adapter_cap][dec_dim] */
    float *logits; int64_t logits_cap;   /* [logits_cap][vocab]: first generated steps */
    float *t_cond;                       /* [dec_dim] */
} vox_asr_taps;
void vox_asr_stream_set_taps(vox_asr_stream *s, const vox_asr_taps *t);

#ifdef __cplusplus
}
#endif
#endif /* VOX_ASR_H */
