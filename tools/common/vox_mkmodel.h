/* vox_mkmodel.h - random-weight Voxtral Realtime model directories in the exact upstream layout
 * (params.json, consolidated.safetensors, tekken.json), used by vox-mkmodel and by tests.
 *
 * Tensor names, shapes and dtype (BF16) follow spec/voxtral-realtime.md section 5: encoder
 * (conv stem, layers with wq/wv/wo/w2 biases and no wk bias, final norm), adapter, tied
 * embeddings (no output.weight), decoder layers with the ada-norm MLP, final norm:
 * 13 * enc_layers + 11 * layers + 9 tensors (711 at full size).
 *
 * Weights are deterministic functions of (seed, tensor name, element index), generated while
 * writing, so a full-size model (8.9 GB) is written with a few MB of memory. Init: linear
 * weights uniform with std gain/sqrt(fan_in); norms uniform in [0.8, 1.2]; biases std 0.1;
 * embeddings std emb_std (small against the adapter output, so greedy sequences depend on the
 * audio; docs/reference-asr.md "Random tied models copy their input token").
 *
 * Ownership: plain value structs; nothing retained. No global state. */
#ifndef VOX_MKMODEL_H
#define VOX_MKMODEL_H

#include <stdint.h>

#include "vox_common.h"
#include "vox_mkcodec.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t seed;
    /* decoder (top-level params.json keys) */
    int dim, n_layers, n_heads, n_kv_heads, head_dim, hidden_dim, vocab_size, sliding_window;
    int ada_dim; /* ada_rms_norm_t_cond_dim */
    /* encoder (multimodal.whisper_model_args.encoder_args) */
    int enc_dim, enc_layers, enc_heads, enc_head_dim, enc_hidden, enc_window;
    int downsample; /* downsample_args.downsample_factor */
    int n_special;  /* tekken default_num_special_tokens */
    int delay_ms;   /* tekken audio.transcription_delay_ms */
    double emb_std; /* std of tok_embeddings */
    double special_scale; /* tok_embeddings rows of special tokens other than 32/33 are scaled by
                             this, so a random model mostly emits text tokens (a trained one
                             emits few specials besides [STREAMING_PAD]/[STREAMING_WORD]) */
} vox_mkmodel_rt_opts;

/* Tiny defaults (full = 0: a < 2 MB model) or the released model's sizes (full = 1). */
void vox_mkmodel_rt_defaults(vox_mkmodel_rt_opts *o, int full);

/* Check the options; one line naming the bad option on failure (VOX_ERR_ARG). */
int vox_mkmodel_rt_check(const vox_mkmodel_rt_opts *o, vox_error *err);

/* Tensor count and total data bytes of consolidated.safetensors. */
void vox_mkmodel_rt_size(const vox_mkmodel_rt_opts *o, int *n_tensors, uint64_t *n_bytes);

/* Write dir/params.json, dir/consolidated.safetensors, dir/tekken.json (dir is created). */
int vox_mkmodel_rt_write(const char *dir, const vox_mkmodel_rt_opts *o, vox_error *err);

/* ---- Voxtral TTS (spec/voxtral-tts.md sections 2-4) ------------------------------------
 * consolidated.safetensors holds, in BF16 with the upstream names: the Mistral backbone
 * (mm_audio_embeddings.tok_embeddings.weight [vocab, dim],
 * mm_audio_embeddings.audio_codebook_embeddings.embeddings.weight [ceil128(S+2 + n_ac*(L+2)),
 * dim], layers.* (9 tensors each), norm.weight), the flow-matching transformer
 * (acoustic_transformer.{input_projection [dim, n_ac], time_projection, llm_projection
 * [dim, dim], semantic_codebook_output [ceil128(S+2), dim], acoustic_codebook_output
 * [n_ac, dim], norm, layers.* (9 each)}: 6 + 9 * ac_layers = 33 at full size) and the codec
 * decoder (audio_tokenizer.*, from vox_mkcodec_add_tensors: 116 at full size). The acoustic
 * transformer width equals dim (its semantic head reads the backbone hidden state).
 * voice_embedding/<name>.pt (torch zip format, BF16 [N, dim]): row r is the sum of the 37
 * codebook-embedding rows of a random code frame; the last row is the end-of-audio frame
 * [END=1, EMPTY=0 x n_ac], as the real presets are built. */
#define VOX_MKMODEL_TTS_MAX_VOICES 20

typedef struct {
    uint64_t seed;
    int dim, n_layers, n_heads, n_kv_heads, head_dim, hidden_dim, vocab_size;
    int n_special;
    int ac_layers, ac_heads, ac_kv_heads, ac_head_dim, ac_hidden; /* acoustic transformer */
    int semantic_size;  /* S: semantic codebook entries (8192) */
    int acoustic_levels; /* L: FSQ levels (21) */
    int n_acoustic;      /* acoustic codebooks (36) */
    /* codec (multimodal.audio_tokenizer_args and the audio_tokenizer.* tensors, written by
     * tools/common/vox_mkcodec.h); its semantic_size, acoustic_size, acoustic_dim, seed and
     * dtype (BF16) are overwritten from the fields above when the model is written */
    vox_mkcodec_opts codec;
    int n_voices;        /* voices written (first n of the released list) */
    int voice_rows[VOX_MKMODEL_TTS_MAX_VOICES]; /* rows per voice (N incl. the EOA row) */
    double emb_std;      /* std of tok_embeddings and the audio codebook embeddings */
} vox_mkmodel_tts_opts;

void vox_mkmodel_tts_defaults(vox_mkmodel_tts_opts *o, int full);
int vox_mkmodel_tts_check(const vox_mkmodel_tts_opts *o, vox_error *err);
/* Tensors and data bytes of consolidated.safetensors (codec included). */
int vox_mkmodel_tts_size(const vox_mkmodel_tts_opts *o, int *n_tensors, uint64_t *n_bytes,
                         vox_error *err);
/* Name of released voice i (0..19, params.json order). */
const char *vox_mkmodel_tts_voice_name(int i);
/* Write params.json, consolidated.safetensors, tekken.json, voice_embedding/<name>.pt. */
int vox_mkmodel_tts_write(const char *dir, const vox_mkmodel_tts_opts *o, vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_MKMODEL_H */
