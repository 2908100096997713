/* vox_codec_ops.h - ops the codec needs that the backend interface does not have yet.
 *
 * vox_codec_alibi_attention_ref: causal sliding-window attention over a vox_kv ring with an
 * ALiBi bias, as a plain CPU loop on host memory. It is the reference version of a backend op
 * still to be added (with a CUDA twin); until then the codec requires host-visible KV rings
 * (the CPU backend). Per-element math is in VOX_HD helpers so the CUDA twin can share it.
 *
 * Ownership: no state; the caller owns every buffer. */
#ifndef VOX_CODEC_OPS_H
#define VOX_CODEC_OPS_H

#include <stdint.h>

#include "vox_backend.h"
#include "vox_hd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ALiBi bias for query position qp, key position kp: slope * (kp - qp) (<= 0 for visible keys). */
static inline VOX_HD float vox_alibi_bias(float slope, int64_t qp, int64_t kp) {
    return slope * (float)(kp - qp);
}

/* out[nq][n_heads*head_dim] = softmax(q k^T * scale + slope_h * (kp - qp) + mask) v for queries
 * at positions q_pos0 .. q_pos0+nq-1. Key kp is visible to qp iff qp - window <= kp <= qp
 * (window + 1 keys; window <= 0: unlimited). Query head h uses kv head h / (n_heads /
 * n_kv_heads). slopes_host[n_heads]. scores_host: scratch of kv->cap floats. Every visible key
 * must be held by the ring (cap >= window + nq), else VOX_ERR_ARG. */
int vox_codec_alibi_attention_ref(vox_backend *be, float *out, const float *q, int nq,
                                  int64_t q_pos0, const vox_kv *kv, int n_heads, int n_kv_heads,
                                  int head_dim, int window, float scale, const float *slopes_host,
                                  float *scores_host);

#ifdef __cplusplus
}
#endif
#endif /* VOX_CODEC_OPS_H */
