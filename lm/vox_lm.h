/* vox_lm.h - transformer building blocks shared by the ASR encoder, the ASR decoder and TTS.
 *
 * Everything computes through the backend ops (vox_backend.h); nothing here calls BLAS or SIMD.
 *
 * Weights versus state
 *   - vox_lm_linear / vox_lm_layer hold weights only. They point into backend memory owned by a
 *     vox_lm_store (the model's list of uploaded buffers; CPU backend: weight matrices point
 *     straight into the mmap'd safetensors file and are never copied). Immutable after load.
 *   - Per-stream state is a vox_kv ring per layer (absolute positions, post-RoPE keys), owned by
 *     the caller (vox_lm_kv_alloc / vox_lm_kv_free).
 *   - vox_lm_scratch holds activation buffers for up to cap_rows rows; owned by the caller,
 *     grown only when a larger batch is seen (vox_lm_scratch_reserve), never per token.
 *
 * Batching: one layer forward runs over x[n_rows][dim] where the rows are split into segments
 * (vox_lm_seg), each a run of consecutive positions of one stream with its own KV ring and, for
 * Ada RMS-Norm models, its own (pre-folded) FFN norm weight. Matmuls run over all rows at once
 * (one pass over the weights for every stream); RoPE, the KV write and attention run per segment.
 */
#ifndef VOX_LM_H
#define VOX_LM_H

#include <stdint.h>

#include "vox_backend.h"
#include "vox_common.h"
#include "vox_safetensors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- weight storage ---- */

/* A list of backend allocations owned by a model (freed together). */
typedef struct vox_lm_store {
    vox_backend *be;
    void **ptrs;
    int n, cap;
    int direct; /* 1: the backend reads host memory, so mmap'd matrices are used in place */
} vox_lm_store;

void vox_lm_store_init(vox_lm_store *s, vox_backend *be);
void vox_lm_store_free(vox_lm_store *s);
/* Zero-filled backend buffer of `bytes`, owned by the store. */
void *vox_lm_store_alloc(vox_lm_store *s, size_t bytes, vox_error *err);

/* y = x W^T (+ b). */
typedef struct vox_lm_linear {
    vox_mat w;      /* [out][in] */
    const float *b; /* [out] fp32 backend memory, or NULL */
} vox_lm_linear;

/* Look up tensor `name` in f, require a float dtype and exactly the given shape (the product of
 * dims 1.. is the matrix cols, so conv weights [c_out][c_in][k] load as [c_out][c_in*k]).
 * The matrix stays in its file dtype (bf16/f16/f32); the CPU backend uses it in place. */
int vox_lm_load_mat(vox_lm_store *s, const vox_st_file *f, const char *name, int ndim,
                    const int64_t *shape, vox_mat *out, vox_error *err);
/* A 1-D float tensor [n] converted to fp32 backend memory. */
int vox_lm_load_vec(vox_lm_store *s, const vox_st_file *f, const char *name, int64_t n,
                    float **out, vox_error *err);
/* A linear layer "<prefix>.weight" [out][in] and, when with_bias, "<prefix>.bias" [out]. */
int vox_lm_load_linear(vox_lm_store *s, const vox_st_file *f, const char *prefix, int64_t out,
                       int64_t in, int with_bias, vox_lm_linear *lin, vox_error *err);

/* ---- transformer layer ---- */

typedef struct vox_lm_dims {
    int dim;        /* residual width */
    int n_heads;    /* query heads */
    int n_kv_heads; /* key/value heads (GQA: n_heads % n_kv_heads == 0) */
    int head_dim;
    int hidden;     /* SwiGLU hidden width */
    float eps;      /* RMSNorm eps */
    float theta;    /* RoPE theta */
    int window;     /* sliding window in positions including the query (<= 0: none) */
} vox_lm_dims;

/* Pre-norm layer: x += Wo Attn(RoPE(Wq n1(x)), RoPE(Wk n1(x)), Wv n1(x));
 *                 x += W2 (silu(W1 n2(x)) * W3 n2(x)). */
typedef struct vox_lm_layer {
    const float *attn_norm; /* [dim] */
    vox_lm_linear wq;       /* [n_heads*head_dim][dim] */
    vox_lm_linear wk;       /* [n_kv_heads*head_dim][dim] */
    vox_lm_linear wv;       /* [n_kv_heads*head_dim][dim] */
    vox_lm_linear wo;       /* [dim][n_heads*head_dim] */
    const float *ffn_norm;  /* [dim]; a segment may override it (Ada RMS-Norm folding) */
    vox_lm_linear w1;       /* gate [hidden][dim] */
    vox_lm_linear w3;       /* up [hidden][dim] */
    vox_lm_linear w2;       /* down [dim][hidden] */
} vox_lm_layer;

/* One stream's run of rows inside a batch. */
typedef struct vox_lm_seg {
    int row0;               /* first row in x */
    int n_rows;             /* consecutive positions pos0 .. pos0+n_rows-1 */
    int64_t pos0;           /* absolute position of the first row (== kv->end) */
    vox_kv *kv;             /* this stream's ring for the layer being run */
    const float *ffn_norm;  /* [dim] override of layer->ffn_norm, or NULL */
} vox_lm_seg;

typedef struct vox_lm_scratch {
    vox_backend *be;
    int cap_rows;
    size_t cap_floats[7];
    float *xn, *q, *k, *v, *att, *h1, *h3; /* [cap_rows][...] backend memory */
} vox_lm_scratch;

void vox_lm_scratch_init(vox_lm_scratch *sc, vox_backend *be);
/* Make room for n_rows rows of a model with dims d (grows, never shrinks). */
int vox_lm_scratch_reserve(vox_lm_scratch *sc, const vox_lm_dims *d, int n_rows, vox_error *err);
void vox_lm_scratch_free(vox_lm_scratch *sc);

/* x[n_rows][dim] (backend memory) through one layer, in place. segs cover rows 0..n_rows-1. */
int vox_lm_layer_forward(vox_backend *be, const vox_lm_dims *d, const vox_lm_layer *L, float *x,
                         int n_rows, const vox_lm_seg *segs, int n_segs, vox_lm_scratch *sc,
                         vox_error *err);

/* ---- KV rings ---- */

/* A ring of cap slots for kv_dim values (k and v in backend memory, zeroed, end = 0). */
int vox_lm_kv_alloc(vox_backend *be, vox_kv *kv, int64_t cap, int kv_dim, vox_error *err);
void vox_lm_kv_free(vox_backend *be, vox_kv *kv);
/* Forget every position (end = 0); the memory is kept. */
void vox_lm_kv_reset(vox_kv *kv);

/* ---- Ada RMS-Norm ---- */

/* folded[dim] = norm_w * (1 + up . gelu(down . cond)) with down [ada][dim], up [dim][ada];
 * tmp needs ada + dim floats of backend memory. cond, norm_w, folded: backend memory. */
int vox_lm_ada_fold(vox_backend *be, float *folded, const float *norm_w, const vox_mat *down,
                    const vox_mat *up, const float *cond, float *tmp, vox_error *err);

/* Sinusoidal time embedding [dim] (dim even) of t, cos half first: e_i = t * exp(-ln(theta) *
 * i / (dim/2)), out = [cos(e), sin(e)]. Host memory. */
void vox_lm_time_embedding(float *out_host, int dim, double t, double theta);

/* Turn a backend op failure into err (copies be->err). Returns the code. */
int vox_lm_op_error(vox_backend *be, int rc, const char *what, vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_LM_H */
