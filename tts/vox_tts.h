/* vox_tts.h - Voxtral TTS (Voxtral-4B-TTS-2603): voices, prompt, backbone, flow-matching head,
 * sessions. spec/voxtral-tts.md sections 2-4, 7.
 *
 * Pipeline per request: prompt ids (vox_tts_prompt, as mistral-common encode_speech_request)
 * -> input embeddings (tok_embeddings, with the voice rows scattered into the [AUDIO]
 * positions) -> prefill of the Mistral backbone -> final-normed hidden h at the trailing
 * [BEGIN_AUDIO] -> per frame: semantic head (fp32 logits over ceil128(S+2) rows, id 0 and ids
 * >= S+2 masked, greedy argmax; 1 = END stops) -> flow matching (n_steps Euler steps over
 * linspace(0,1,n_steps+1), CFG v = a v(h) + (1-a) v(0), 3-token bidirectional transformer) ->
 * clamp, round half-to-even onto the FSQ grid, +2 -> next input = sum of the 37 code
 * embeddings -> one backbone decode step -> next h.
 *
 * Everything computes through be->ops (no BLAS/SIMD here). Noise x_0 ~ N(0, I) comes from a
 * per-session PRNG (xoshiro256** + Box-Muller, seedable) or from a caller-supplied table
 * (parity tests feed the reference's noise).
 *
 * Ownership: a vox_tts_model owns its mapped weights and device copies; sessions borrow the
 * model (it must outlive them) and own their KV caches and buffers, allocated at creation (no
 * allocation per frame). A model is immutable after load and shareable; a session is used by
 * one thread at a time. Voices (vox_tts_voice) are plain host buffers owned by the caller. */
#ifndef VOX_TTS_H
#define VOX_TTS_H

#include <stddef.h>
#include <stdint.h>

#include "vox_backend.h"
#include "vox_codec.h"
#include "vox_common.h"
#include "vox_tekken.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- voices ---------------------------------------------------------------------------- */

typedef struct {
    int rows;   /* N: [AUDIO] positions it fills (incl. the end-of-audio row) */
    int dim;    /* backbone width */
    float *emb; /* host [rows][dim], fp32 (converted from BF16/F16/F32) */
} vox_tts_voice;

/* Read a voice embedding: a torch.save zip (.pt: one 2-D BFloat16/Half/Float tensor, parsed
 * directly: zip central directory, stored entries, CRC-32, the pickle of
 * torch._utils._rebuild_tensor_v2 with its storage persistent id, shape, stride, offset) or a
 * safetensors file (tensor "embedding", else its only tensor). The format is chosen from the
 * file's first bytes. dim > 0: the column count must equal it. A corrupted file fails with one
 * line naming the file and what was expected versus found. */
int vox_tts_voice_load(const char *path, int dim, vox_tts_voice *out, vox_error *err);
void vox_tts_voice_free(vox_tts_voice *v);

/* ---- prompt ---------------------------------------------------------------------------- */

/* ids = [<s>, [BEGIN_AUDIO], [AUDIO] x n_audio, [NEXT_AUDIO_TEXT], text (no BOS/EOS),
 *        [REPEAT_AUDIO_TEXT], [BEGIN_AUDIO]]. *ids is malloc'ed (caller frees); *audio_pos is
 * the index of the first [AUDIO]. Special ids are looked up by name in the tokenizer. */
int vox_tts_prompt(const vox_tekken *tok, const char *text, int n_audio, int32_t **ids,
                   size_t *n_ids, int *audio_pos, vox_error *err);

/* ---- text ------------------------------------------------------------------------------
 * Long text into chunks, each spoken as one session (tts/text.c). Sentences end at . ! ?
 * followed by whitespace or the end of the text (so "3.14" and "e.g.x" do not end one), at
 * … 。 ！ ？ anywhere, and at newlines; a run of marks ("?!", "...") and the closing quotes or
 * brackets " ' ) ] after it stay with the sentence. No abbreviation list: "Dr. Smith" is two
 * sentences, which matters only where a chunk boundary falls between them. Sentences are
 * trimmed of ASCII whitespace and packed greedily into chunks of at most max bytes; a sentence
 * longer than max is cut after the last clause mark (, ; : ， 、 ； ：) in the last 3/4 of the
 * window, else after the last whitespace there, else at the last UTF-8 character boundary
 * (never inside a multi-byte character). Every chunk is non-empty, trimmed, <= max bytes, and
 * the chunks in order cover every non-whitespace byte exactly once. NUL bytes are ordinary
 * bytes here (callers that pass C strings to the prompt should replace them first). */

typedef struct {
    size_t off, len; /* bytes [off, off + len) of the text */
} vox_tts_span;

/* *chunks is malloc'ed (caller frees; NULL with *n_chunks = 0 for empty or all-whitespace
 * text). max >= 4 (one UTF-8 character), else VOX_ERR_ARG. */
int vox_tts_split_text(const char *text, size_t n, size_t max, vox_tts_span **chunks,
                       size_t *n_chunks, vox_error *err);

/* ---- preset voices of a model directory (tts/voice_list.c) ------------------------------ */

typedef struct {
    char *name;   /* voice_embedding/<name>.pt */
    char lang[3]; /* two-letter language prefix of the name ("pt_male" -> "pt"), else "" */
} vox_tts_voice_info;

typedef struct {
    vox_tts_voice_info *v;
    int n;
} vox_tts_voice_list;

/* Names from dir/params.json multimodal.audio_tokenizer_args.voice (name -> index, listed by
 * index); when that map is absent or empty, tekken.json's audio.voice_num_audio_tokens in file
 * order (tok, or dir/tekken.json loaded here when tok is NULL). Reads no weights. A params.json
 * that is not a TTS model's fails with VOX_ERR_UNSUPPORTED and a line saying what it is (e.g. "a
 * Voxtral Realtime (ASR) model"). The list is empty when neither source names a voice. */
int vox_tts_list_voices(const char *dir, const vox_tekken *tok, vox_tts_voice_list *out,
                        vox_error *err);
void vox_tts_voice_list_free(vox_tts_voice_list *l);
/* lang = the two-letter lowercase prefix before '_' of name; returns 1 if it has one, else 0
 * (lang = ""). */
int vox_tts_voice_lang(const char *name, char lang[3]);

/* ---- model ----------------------------------------------------------------------------- */

typedef struct {
    /* backbone (params.json top level) */
    int dim, n_layers, n_heads, n_kv_heads, head_dim, hidden_dim, vocab_size;
    float norm_eps, rope_theta;
    /* multimodal.audio_model_args */
    int semantic_size;   /* S */
    int acoustic_levels; /* L */
    int n_acoustic;      /* n_ac (= codec acoustic_dim) */
    int n_codebooks;     /* 1 + n_ac */
    int audio_token_id, begin_audio_token_id;
    int semantic_rows;  /* rows of semantic_codebook_output (ceil128(S+2)) */
    int audio_emb_rows; /* rows of the audio codebook embedding table */
    /* acoustic_transformer_args */
    int ac_dim, ac_layers, ac_heads, ac_kv_heads, ac_head_dim, ac_hidden;
    float ac_norm_eps;
    int n_steps; /* n_decoding_steps (absent: 7) */
} vox_tts_config;

typedef struct vox_tts_model vox_tts_model;

/* Load dir/params.json and dir/consolidated.safetensors (backbone + acoustic transformer;
 * the codec tensors are not read here). Every tensor is checked for name, dtype and shape. */
vox_tts_model *vox_tts_model_load(const char *dir, vox_backend *be, vox_error *err);
void vox_tts_model_free(vox_tts_model *m);
const vox_tts_config *vox_tts_model_config(const vox_tts_model *m);

/* Load dir/voice_embedding/<name>.pt for this model (columns checked against dim). */
int vox_tts_model_voice(const vox_tts_model *m, const char *dir, const char *name,
                        vox_tts_voice *out, vox_error *err);

/* ---- voices from reference audio (tts/voice_ref.c; docs/tts.md) -------------------------
 * As vllm-omni's encode_waveforms + encode_tokens: row t (t < F) = sum over the 37 codebooks k
 * of audio_codebook_embeddings[offset_k + code_k + 2], the same embedding sum generation uses
 * for its next input; one more row for the EOA frame [END = 1, EMPTY = 0 x n_ac]. F + 1 rows,
 * the count of [AUDIO] tokens the prompt must carry (mistral-common: ceil(seconds x 12.5) + 1).
 * out->emb is malloc'ed (vox_tts_voice_free). */

/* codes[n_frames][1 + n_ac]: raw codec indices (no +2; semantic < S, acoustic < L), as
 * vox_codec_encode returns them. n_frames may be 0 (then only the EOA row). */
int vox_tts_voice_from_codes(const vox_tts_model *m, const int32_t *codes, int n_frames,
                             vox_tts_voice *out, vox_error *err);
/* pcm[n]: mono float at the codec's sampling_rate (24 kHz); encoded whole by cm's encoder.
 * VOX_ERR_UNSUPPORTED when cm has no encoder weights (the released checkpoint). */
int vox_tts_voice_from_audio(const vox_tts_model *m, const vox_codec_model *cm, const float *pcm,
                             int64_t n, vox_tts_voice *out, vox_error *err);
/* Any file audio/vox_decode.h reads (any rate and channel count: averaged to mono, resampled to
 * the codec rate with soxr HQ, as mistral-common does), then vox_tts_voice_from_audio. */
int vox_tts_voice_from_file(const vox_tts_model *m, const vox_codec_model *cm, const char *path,
                            vox_tts_voice *out, vox_error *err);

/* ---- flow-matching head (direct entry points, host buffers; for tests and tools) ---------
 * h: [B][dim] backbone hidden states. Codes per frame: [1 + n_ac] with the +2 offset. */

/* Velocity of the FM transformer for x[B][n_ac] at time t with condition h[B][dim]
 * (h == NULL: the zero condition). v: [B][n_ac]. B <= 64. */
int vox_tts_fm_velocity(vox_tts_model *m, const float *x_host, const float *h_host, float t, int B,
                        float *v_host, vox_error *err);
/* One frame from h: semantic argmax, then (unless END) the Euler/CFG integration from
 * noise[B][n_ac] in n_steps steps (0 = the model's n_steps; else 1..1000, over
 * linspace(0, 1, n_steps + 1)). logits_host: optional [B][semantic_rows] masked fp32 logits. */
int vox_tts_frame(vox_tts_model *m, const float *h_host, const float *noise_host, float cfg_alpha,
                  int n_steps, int B, int32_t *codes_host, float *logits_host, vox_error *err);

/* ---- sessions -------------------------------------------------------------------------- */

typedef struct {
    uint64_t seed;           /* PRNG seed of the flow-matching noise */
    float cfg_alpha;         /* 1.2 upstream default; <= 0 means 1.2 */
    int max_frames;          /* frame cap (> 0) */
    const float *noise_host; /* optional [noise_frames][n_ac]: used instead of the PRNG */
    int noise_frames;
    int n_steps; /* flow-matching Euler steps, 1..1000; 0 = the model's n_steps (params.json
                    n_decoding_steps, else 7). The time table of a count other than the model's
                    is built once per session. */
} vox_tts_session_opts;

void vox_tts_session_defaults(vox_tts_session_opts *o);

typedef struct vox_tts_session vox_tts_session;

/* Prompt ids with the voice rows scattered into the n_audio [AUDIO] positions starting at
 * audio_pos (voice->rows must equal the count of [AUDIO] ids). Runs the prefill. */
vox_tts_session *vox_tts_session_new(vox_tts_model *m, const int32_t *ids, size_t n_ids,
                                     const vox_tts_voice *voice, const vox_tts_session_opts *o,
                                     vox_error *err);
void vox_tts_session_free(vox_tts_session *s);

/* Produce the next frame: codes[1 + n_ac] (+2 offset). *done = 1 (codes untouched) when END
 * was predicted or max_frames were produced. */
int vox_tts_session_step(vox_tts_session *s, int32_t *codes, int *done, vox_error *err);
/* The same for n (1..64) sessions of one model at once: the semantic head and FM run as one
 * batch (each session keeps its own cfg_alpha and noise; sessions with different step counts
 * run as one FM batch per count), the backbone decode as one batch of
 * rows with per-session KV caches; codes[n][1 + n_ac], done[n]. Sessions already done are
 * skipped. Uses (and, the first time a larger batch is seen, grows) the workspace of s[0]; none
 * of the sessions may be in use by another thread meanwhile. */
int vox_tts_step_batch(vox_tts_session **s, int n, int32_t *codes, int *done, vox_error *err);
/* Time spent, measured on the host around the calls (a backend sync ends each part): the
 * prefill at creation; per step the semantic head (matmul, logits download, argmax), the flow
 * matching (all Euler steps with the CFG batch, llm_projection) and the backbone (next-input
 * embedding + one decode step). In a batched step every session is charged the batch's whole
 * time for each part (they ran together). steps counts the steps the session took part in,
 * including the one that predicted END. */
typedef struct {
    int steps;
    double prefill_sec, head_sec, fm_sec, backbone_sec;
} vox_tts_stats;
void vox_tts_session_stats(const vox_tts_session *s, vox_tts_stats *st);
/* Host copy of the current hidden state h [dim] (the one the next frame is made from). */
int vox_tts_session_hidden(const vox_tts_session *s, float *h_host, vox_error *err);
int vox_tts_session_frames(const vox_tts_session *s);

#ifdef __cplusplus
}
#endif
#endif /* VOX_TTS_H */
