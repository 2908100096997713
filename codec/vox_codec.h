/* vox_codec.h - the Voxtral Codec decoder: quantizer codes (semantic VQ + acoustic FSQ per
 * 12.5 Hz frame) -> 24 kHz mono PCM, whole-utterance or incremental (spec/voxtral-tts.md 1).
 *
 * Pipeline (decoder blocks built from audio_tokenizer_args exactly as upstream builds them):
 *   dequantize  latent[t] = [codebook[sem] (semantic_dim) | fsq(ac_i) = ac_i*2/(L-1) - 1]
 *   block 0     CausalConv1d latent -> dim, kernels[0], replicate left padding
 *   stage i     Transformer (lengths[i] layers: pre-RMSNorm eps norm_eps, QK-RMSNorm over the
 *               full q / k widths eps qk_norm_eps, ALiBi + causal sliding window of w_i + 1 keys,
 *               SwiGLU, LayerScale on both branches); then, except after the last stage, a
 *               CausalConvTranspose1d (kernels[i+1], strides[i+1]) trimming k - s frames on
 *               the right (skipped when kernel == stride == 1, as upstream)
 *   output_proj CausalConv1d dim -> patch, patch_proj_kernel_size, reflect left padding
 *   unpatch     pcm[t * patch + h] = y[t][h]
 * Windows w_i replay upstream: attn_sliding_window_size halved per encoder stride 2, then
 * doubled per decoder stride 2. Weight norm is folded at load: W = g * v / ||v|| with the norm
 * over every axis but 0 (per output channel for Conv1d, per *input* channel for ConvTranspose).
 *
 * Encoder: vox_codec_encode (whole utterance) when the file has the encoder tensors; the
 * released checkpoint has none.
 *
 * Incremental decoding: every block is causal, so a state carries conv tails, ConvT overlap
 * sums and per-layer KV rings (w_i + chunk keys); decoding frames in chunks yields the same
 * samples as decoding them at once (up to float rounding).
 *
 * Ownership: vox_codec_model is immutable after load and shareable between threads; it
 * borrows the backend and the safetensors file (both must outlive it: linear weights may point
 * into the mapping) and owns its folded conv weights, norms and codebook. A vox_codec_state is
 * per utterance, used by one thread at a time, owned by the caller. */
#ifndef VOX_CODEC_H
#define VOX_CODEC_H

#include <stdint.h>

#include "vox_backend.h"
#include "vox_common.h"
#include "vox_params.h"
#include "vox_safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VOX_CODEC_MAX_STAGES 8

typedef struct vox_codec_config {
    int sampling_rate, patch_size, patch_kernel;
    int semantic_size, semantic_dim, acoustic_size, acoustic_dim;
    int latent_dim; /* semantic_dim + acoustic_dim */
    int dim, hidden_dim, head_dim, n_heads, n_kv_heads;
    float norm_eps, qk_norm_eps;
    int qk_norm, layer_scale;
    int n_stages;                       /* transformer stages */
    int n_layers[VOX_CODEC_MAX_STAGES]; /* decoder_transformer_lengths */
    int window[VOX_CODEC_MAX_STAGES];   /* sliding window w: keys i-w .. i */
    int kernel[VOX_CODEC_MAX_STAGES];   /* decoder_convs_kernels ([0]: first conv) */
    int stride[VOX_CODEC_MAX_STAGES];   /* decoder_convs_strides */
    int has_up[VOX_CODEC_MAX_STAGES];   /* a ConvTranspose follows stage i */
    int up_total;                       /* product of the ConvT strides */
    /* encoder (architecture only; its weights are absent from the released checkpoint) */
    int enc_n_stages;
    int enc_layers[VOX_CODEC_MAX_STAGES], enc_kernel[VOX_CODEC_MAX_STAGES];
    int enc_stride[VOX_CODEC_MAX_STAGES], enc_window[VOX_CODEC_MAX_STAGES];
    int enc_has_conv[VOX_CODEC_MAX_STAGES]; /* a CausalConv1d follows encoder stage i */
    int samples_per_frame;                  /* patch_size * up_total */
} vox_codec_config;

/* Read multimodal.audio_tokenizer_args (prefix `key`, NULL for the default
 * "multimodal.audio_tokenizer_args"); unsupported values (non-causal, channels != 1, biases,
 * first decoder stride != 1, kernel < stride) fail with one line naming the key. */
int vox_codec_config_from_params(const vox_params *p, const char *key, vox_codec_config *c,
                                 vox_error *err);

typedef struct vox_codec_model vox_codec_model;

/* Load the `audio_tokenizer.*` decoder and quantizer tensors of st (any float dtype) and check
 * every name and shape. */
vox_codec_model *vox_codec_load(vox_backend *be, const vox_params *p, const vox_st_file *st,
                                vox_error *err);
void vox_codec_free(vox_codec_model *m);
const vox_codec_config *vox_codec_get_config(const vox_codec_model *m);

/* 1 when the file had the encoder tensors (audio_tokenizer.input_proj.*, encoder_blocks.*). */
int vox_codec_has_encoder(const vox_codec_model *m);

/* Frames the encoder produces for n_samples of 24 kHz audio (before any EOA frame). */
int64_t vox_codec_encode_frames(const vox_codec_model *m, int64_t n_samples);

/* Encode a whole utterance, as upstream _tokenize_audio (fp32 here, bf16 autocast upstream):
 * zero-pad to a multiple of patch_size, input_proj (reflect padding), per stage a Transformer
 * and a strided CausalConv1d (replicate padding both sides), then quantize: semantic = argmin
 * L2 distance to the codebook, acoustic = round_half_even((tanh(x) + 1) / 2 * (L - 1)).
 * codes_host[frames][1 + acoustic_dim] raw indices (no +2, no EOA); latent_host (or NULL)
 * receives the pre-quantization latent [frames][latent_dim]. max_frames bounds both outputs.
 * Scratch is allocated per call. VOX_ERR_UNSUPPORTED without encoder weights. */
int vox_codec_encode(const vox_codec_model *m, const float *pcm_host, int64_t n_samples,
                     int32_t *codes_host, float *latent_host, int max_frames, int *n_frames,
                     vox_error *err);

/* ALiBi slope of head h for n heads, upstream's rule: r^h with r = 2^(-8/n) when n is a power
 * of two; otherwise the m = 2^floor(log2 n) slopes, then every other slope of the 2m rule. */
float vox_codec_alibi_slope(int h, int n_heads);

typedef struct vox_codec_state vox_codec_state;

/* A decode state accepting up to max_frames frames per vox_codec_decode call. */
vox_codec_state *vox_codec_state_new(const vox_codec_model *m, int max_frames, vox_error *err);
void vox_codec_state_free(vox_codec_state *s);
void vox_codec_state_reset(vox_codec_state *s); /* start a new utterance */

/* Decode n (1 .. max_frames) frames of raw quantizer codes codes_host[n][1 + acoustic_dim]
 * (semantic in [0, semantic_size), acoustic in [0, acoustic_size); no +2 offset) and append
 * the PCM to pcm_host, which must hold n * samples_per_frame floats; *n_out = samples written.
 * Normally *n_out = n * samples_per_frame; only when the output conv's reflect padding still
 * lacks patch_kernel frames are samples held back until enough frames or vox_codec_finish. */
int vox_codec_decode(const vox_codec_model *m, vox_codec_state *s, const int32_t *codes_host, int n,
                     float *pcm_host, int64_t *n_out, vox_error *err);
/* End of utterance: write any held-back samples (at most samples_per_frame * max_frames). */
int vox_codec_finish(const vox_codec_model *m, vox_codec_state *s, float *pcm_host, int64_t *n_out,
                     vox_error *err);

/* Debug tap: called after each decoder block (index as in decoder_blocks.N; the output conv
 * is reported as index n_blocks) with the block's output x[t][c] in backend memory. */
typedef void (*vox_codec_tap_fn)(void *ctx, int block, const float *x, int t, int c);
void vox_codec_state_set_tap(vox_codec_state *s, vox_codec_tap_fn fn, void *ctx);

/* LM audio-token frames (ids with the +2 offset, [n][1 + acoustic_dim]) to raw codes, as
 * upstream's decode_helper_batch_async: stop at the first frame whose semantic id is END (1);
 * *n_valid = frames before it. Any other id outside the code range is an error. */
int vox_codec_ids_to_codes(const vox_codec_config *c, const int32_t *ids, int n, int32_t *codes,
                           int *n_valid, vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_CODEC_H */
