/* alibi_attn_ref.c - CPU reference of ALiBi sliding-window attention (see vox_codec_ops.h). */
#include <math.h>
#include <string.h>

#include "vox_codec_ops.h"

int vox_codec_alibi_attention_ref(vox_backend *be, float *out, const float *q, int nq,
                                  int64_t q_pos0, const vox_kv *kv, int n_heads, int n_kv_heads,
                                  int head_dim, int window, float scale, const float *slopes_host,
                                  float *scores_host) {
    if (!out || !q || !kv || !kv->k || !kv->v || !slopes_host || !scores_host || nq < 0 ||
        n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads || head_dim <= 0 ||
        kv->kv_dim != n_kv_heads * head_dim)
        return vox_set_error(&be->err, VOX_ERR_ARG,
                             "codec alibi_attention: bad arguments (heads %d/%d, head_dim %d, "
                             "kv_dim %d)",
                             n_heads, n_kv_heads, head_dim, kv ? kv->kv_dim : -1);
    const int64_t first_needed = window > 0 ? q_pos0 - window : 0;
    const int64_t held = kv->end - kv->cap > 0 ? kv->end - kv->cap : 0;
    if ((first_needed > 0 ? first_needed : 0) < held || q_pos0 + nq > kv->end)
        return vox_set_error(&be->err, VOX_ERR_ARG,
                             "codec alibi_attention: ring holds %lld..%lld, queries %lld..%lld "
                             "need keys from %lld",
                             (long long)held, (long long)kv->end - 1, (long long)q_pos0,
                             (long long)(q_pos0 + nq - 1), (long long)first_needed);
    const int rep = n_heads / n_kv_heads;
    const int qd = n_heads * head_dim;
    for (int i = 0; i < nq; i++) {
        const int64_t qp = q_pos0 + i;
        int64_t k0 = window > 0 ? qp - window : 0;
        if (k0 < 0) k0 = 0;
        const int nk = (int)(qp - k0 + 1);
        for (int h = 0; h < n_heads; h++) {
            const float *qh = q + (int64_t)i * qd + (int64_t)h * head_dim;
            const int kh = h / rep;
            float mx = -INFINITY;
            for (int j = 0; j < nk; j++) {
                const int64_t kp = k0 + j;
                const float *kr = kv->k + (kp % kv->cap) * kv->kv_dim + (int64_t)kh * head_dim;
                float d = 0.0f;
                for (int e = 0; e < head_dim; e++)
                    d += qh[e] * kr[e];
                float s = d * scale + vox_alibi_bias(slopes_host[h], qp, kp);
                scores_host[j] = s;
                if (s > mx) mx = s;
            }
            float sum = 0.0f;
            for (int j = 0; j < nk; j++) {
                scores_host[j] = expf(scores_host[j] - mx);
                sum += scores_host[j];
            }
            float *oh = out + (int64_t)i * qd + (int64_t)h * head_dim;
            memset(oh, 0, (size_t)head_dim * sizeof(float));
            for (int j = 0; j < nk; j++) {
                const int64_t kp = k0 + j;
                const float *vr = kv->v + (kp % kv->cap) * kv->kv_dim + (int64_t)kh * head_dim;
                const float p = scores_host[j] / sum;
                for (int e = 0; e < head_dim; e++)
                    oh[e] += p * vr[e];
            }
        }
    }
    return VOX_OK;
}
