/* vox_mkcodec.h - random-weight Voxtral Codec (decoder + quantizer buffers) in the exact upstream
 * layout: the `audio_tokenizer.*` tensors of consolidated.safetensors and the params.json
 * `multimodal.audio_tokenizer_args` object (spec/voxtral-tts.md sections 1.4, 4.2, 4.3).
 *
 * Tensors (P = "audio_tokenizer."), decoder block list built like upstream:
 *   P decoder_blocks.0.conv.parametrizations.weight.original0 [dim,1,1] (g), original1
 *     [dim, semantic_dim+acoustic_dim, kernels[0]] (v);
 *   for each stage i: a Transformer block with lengths[i] layers (attention.wq [H*hd,dim],
 *     wk/wv [KV*hd,dim], wo [dim,H*hd], attention.q_norm [H*hd], k_norm [KV*hd],
 *     attention_norm, ffn_norm [dim], feed_forward.w1/w3 [hidden,dim], w2 [dim,hidden],
 *     attention_scale, ffn_scale [dim]); then, unless it is the last stage or
 *     kernels[i+1] == strides[i+1] == 1, a ConvTranspose1d g [dim,1,1], v [dim,dim,kernels[i+1]];
 *   P output_proj.conv.parametrizations.weight.original0 [patch,1,1], original1
 *     [patch, dim, patch_kernel];
 *   P quantizer.semantic_codebook.embedding_sum [S, semantic_dim], cluster_usage [S].
 * With with_encoder also: P input_proj (weight norm, g [dim,1,1], v [dim, patch, patch_kernel]);
 *   for each encoder stage i: a Transformer block (enc_lengths[i] layers, names as above), then
 *   unless enc_kernels[i] == enc_strides[i] == 1 (and it is not the last stage) a Conv1d
 *   g [out,1,1], v [out, dim, enc_kernels[i]] with out = latent for the last stage, else dim.
 *
 * Values are deterministic functions of (seed, tensor name, element index). Init: weight-norm
 * g = +-U[0.5, 1.5] (both signs), v = U[-1, 1]; linear weights uniform with std 1/sqrt(fan_in);
 * norm weights U[0.8, 1.2]; LayerScale vectors +-U[0.1, 0.5] (larger than the upstream 0.01
 * init so the transformer branches matter in tests); cluster_usage U[0.5, 3] except entry 1,
 * which is 0 (exercises the clamp(1e-5)), with its embedding_sum row scaled by 1e-5;
 * embedding_sum = usage * U[-1, 1].
 *
 * Ownership: plain value structs; vox_mkcodec_gen holds the generator contexts that must outlive
 * vox_stw_write. No global state. */
#ifndef VOX_MKCODEC_H
#define VOX_MKCODEC_H

#include <stdint.h>

#include "vox_backend.h"
#include "vox_common.h"
#include "vox_st_write.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t seed;
    vox_dtype dtype; /* of every tensor: VOX_DT_F32, VOX_DT_BF16 or VOX_DT_F16 */
    int patch_size, patch_kernel;
    int semantic_size, semantic_dim, acoustic_size, acoustic_dim;
    int dim, hidden_dim, head_dim, n_heads, n_kv_heads;
    int window; /* attn_sliding_window_size (encoder start; decoder windows derive from it) */
    double norm_eps, qk_norm_eps, layer_scale_init;
    char lengths[64], kernels[64], strides[64]; /* decoder_*_str */
    /* encoder (not in the released checkpoint): with_encoder adds input_proj.* and
     * encoder_blocks.* tensors and writes the encoder_*_str keys */
    int with_encoder;
    char enc_lengths[64], enc_kernels[64], enc_strides[64];
} vox_mkcodec_opts;

/* full = 0: a tiny codec (~100 KB, non-power-of-2 heads, GQA, head_dim != dim / n_heads);
 * full = 1: the released sizes (151.58M parameters, BF16). */
void vox_mkcodec_defaults(vox_mkcodec_opts *o, int full);

int vox_mkcodec_check(const vox_mkcodec_opts *o, vox_error *err);

/* The audio_tokenizer_args object as JSON text ("{...}"), heap string the caller frees. */
char *vox_mkcodec_params_json(const vox_mkcodec_opts *o, vox_error *err);

typedef struct vox_mkcodec_gen vox_mkcodec_gen;

/* Add every codec tensor to w (generated while w is written). *gen receives the contexts;
 * free it with vox_mkcodec_gen_free after vox_stw_write. */
int vox_mkcodec_add_tensors(vox_stw *w, const vox_mkcodec_opts *o, vox_mkcodec_gen **gen,
                            vox_error *err);
void vox_mkcodec_gen_free(vox_mkcodec_gen *g);

/* Write a codec-only model directory: dir/params.json = {"multimodal": {"audio_tokenizer_args":
 * {...}}} and dir/consolidated.safetensors (dir is created if missing). */
int vox_mkcodec_write_dir(const char *dir, const vox_mkcodec_opts *o, vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_MKCODEC_H */
