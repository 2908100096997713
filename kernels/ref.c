/* ref.c - plain reference loops for every backend op (see vox_ref.h).
 *
 * Written for obviousness: one output element at a time, sums in double, per-element math from
 * vox_hd.h. Speed is irrelevant here; tests keep shapes small. */
#include "vox_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vox_hd.h"
#include "../audio/vox_mel_hd.h"

float vox_ref_mat_get(const vox_mat *w, int64_t r, int64_t c) {
    int64_t i = r * w->cols + c;
    switch (w->dtype) {
    case VOX_DT_F32: return ((const float *)w->data)[i];
    case VOX_DT_BF16: return vox_bf16_to_f32(((const uint16_t *)w->data)[i]);
    case VOX_DT_F16: return vox_f16_to_f32(((const uint16_t *)w->data)[i]);
    default: return NAN;
    }
}

void vox_ref_matmul(float *y, const float *x, const vox_mat *w, const float *bias, int n) {
    for (int i = 0; i < n; i++) {
        for (int64_t r = 0; r < w->rows; r++) {
            double acc = bias ? (double)bias[r] : 0.0;
            for (int64_t c = 0; c < w->cols; c++)
                acc += (double)x[(int64_t)i * w->cols + c] * (double)vox_ref_mat_get(w, r, c);
            y[(int64_t)i * w->rows + r] = (float)acc;
        }
    }
}

void vox_ref_rmsnorm(float *y, const float *x, const float *w, int n, int dim, float eps) {
    for (int i = 0; i < n; i++) {
        const float *xr = x + (int64_t)i * dim;
        float *yr = y + (int64_t)i * dim;
        double ss = 0.0;
        for (int d = 0; d < dim; d++) ss += (double)xr[d] * (double)xr[d];
        float inv = vox_rms_inv((float)ss, dim, eps);
        for (int d = 0; d < dim; d++) yr[d] = xr[d] * inv * (w ? w[d] : 1.0f);
    }
}

void vox_ref_rope(float *x, int n, int n_heads, int head_dim, int64_t pos0, float theta) {
    for (int i = 0; i < n; i++) {
        int64_t pos = pos0 + i;
        for (int h = 0; h < n_heads; h++) {
            float *xh = x + ((int64_t)i * n_heads + h) * head_dim;
            for (int j = 0; j < head_dim / 2; j++)
                vox_rope_pair(&xh[2 * j], &xh[2 * j + 1], (int)pos,
                              vox_rope_inv_freq(j, head_dim, theta));
        }
    }
}

int vox_ref_kv_write(vox_kv *kv, const float *k, const float *v, int n, int64_t pos0) {
    if (pos0 != kv->end || n < 0) return VOX_ERR_ARG;
    for (int i = 0; i < n; i++) {
        int64_t slot = (pos0 + i) % kv->cap;
        memcpy(kv->k + slot * kv->kv_dim, k + (int64_t)i * kv->kv_dim,
               (size_t)kv->kv_dim * sizeof(float));
        memcpy(kv->v + slot * kv->kv_dim, v + (int64_t)i * kv->kv_dim,
               (size_t)kv->kv_dim * sizeof(float));
    }
    kv->end = pos0 + n;
    return VOX_OK;
}

/* q . k over one head, in double. */
static double dot_d(const float *a, const float *b, int n) {
    double s = 0.0;
    for (int d = 0; d < n; d++) s += (double)a[d] * (double)b[d];
    return s;
}

/* window counts the visible keys including the query's own (vox_attn_visible); slopes NULL:
 * no ALiBi bias. */
static void ref_attention(float *out, const float *q, int nq, int64_t q_pos0, const vox_kv *kv,
                          int n_heads, int n_kv_heads, int head_dim, int window, float scale,
                          const float *slopes) {
    int q_dim = n_heads * head_dim;
    double *acc = malloc((size_t)(head_dim > 0 ? head_dim : 1) * sizeof(double));
    if (!acc) {
        for (int64_t i = 0; i < (int64_t)nq * q_dim; i++) out[i] = NAN;
        return;
    }
    int group = n_heads / n_kv_heads; /* query heads per kv head */
    for (int i = 0; i < nq; i++) {
        int64_t qp = q_pos0 + i;
        for (int h = 0; h < n_heads; h++) {
            const float *qh = q + (int64_t)i * q_dim + (int64_t)h * head_dim;
            int64_t koff = (int64_t)(h / group) * head_dim; /* column of kv head in a row */
            /* pass 1: the largest visible score */
            double mx = -INFINITY;
            int any = 0;
            for (int64_t s = 0; s < kv->cap; s++) {
                int64_t kp = vox_ring_slot_pos(s, kv->cap, kv->end);
                if (!vox_attn_visible(qp, kp, window)) continue;
                double sc = dot_d(qh, kv->k + s * kv->kv_dim + koff, head_dim) * (double)scale;
                if (slopes) sc += (double)vox_alibi_bias(slopes[h], qp, kp);
                if (!any || sc > mx) mx = sc;
                any = 1;
            }
            /* pass 2: weights exp(score - max), their sum and the weighted sum of values */
            double sum = 0.0;
            for (int d = 0; d < head_dim; d++) acc[d] = 0.0;
            for (int64_t s = 0; any && s < kv->cap; s++) {
                int64_t kp = vox_ring_slot_pos(s, kv->cap, kv->end);
                if (!vox_attn_visible(qp, kp, window)) continue;
                double sc = dot_d(qh, kv->k + s * kv->kv_dim + koff, head_dim) * (double)scale;
                if (slopes) sc += (double)vox_alibi_bias(slopes[h], qp, kp);
                double p = exp(sc - mx);
                sum += p;
                const float *vr = kv->v + s * kv->kv_dim + koff;
                for (int d = 0; d < head_dim; d++) acc[d] += p * (double)vr[d];
            }
            float *oh = out + (int64_t)i * q_dim + (int64_t)h * head_dim;
            for (int d = 0; d < head_dim; d++) oh[d] = any ? (float)(acc[d] / sum) : 0.0f;
        }
    }
    free(acc);
}

void vox_ref_attention(float *out, const float *q, int nq, int64_t q_pos0, const vox_kv *kv,
                       int n_heads, int n_kv_heads, int head_dim, int window, float scale) {
    ref_attention(out, q, nq, q_pos0, kv, n_heads, n_kv_heads, head_dim, window, scale, NULL);
}

void vox_ref_attention_alibi(float *out, const float *q, int nq, int64_t q_pos0,
                             const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim,
                             int window, float scale, const float *slopes) {
    ref_attention(out, q, nq, q_pos0, kv, n_heads, n_kv_heads, head_dim,
                  vox_alibi_window_keys(window), scale, slopes);
}

void vox_ref_swiglu(float *y, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = vox_swiglu(gate[i], up[i]);
}

void vox_ref_silu(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = vox_silu(x[i]);
}

void vox_ref_gelu(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = vox_gelu(x[i]);
}

void vox_ref_add(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void vox_ref_mul(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] * b[i];
}

void vox_ref_scale(float *y, const float *x, float s, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * s;
}

void vox_ref_mul_rows(float *y, const float *x, const float *s, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) y[r * cols + c] = x[r * cols + c] * s[c];
}

void vox_ref_softmax(float *y, const float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (int64_t)r * cols;
        float *yr = y + (int64_t)r * cols;
        double mx = -INFINITY;
        for (int c = 0; c < cols; c++)
            if ((double)xr[c] > mx) mx = xr[c];
        double sum = 0.0;
        for (int c = 0; c < cols; c++) sum += exp((double)xr[c] - mx);
        for (int c = 0; c < cols; c++) yr[c] = (float)(exp((double)xr[c] - mx) / sum);
    }
}

int vox_ref_conv1d_out_len(int t_in, int k, int stride, int left_pad) {
    int span = t_in + left_pad - k;
    return span < 0 ? 0 : span / stride + 1;
}

void vox_ref_conv1d(float *y, const float *x, const vox_mat *w, const float *bias, int t_in,
                    int c_in, int c_out, int k, int stride, int left_pad) {
    int t_out = vox_ref_conv1d_out_len(t_in, k, stride, left_pad);
    for (int t = 0; t < t_out; t++) {
        for (int co = 0; co < c_out; co++) {
            double acc = bias ? (double)bias[co] : 0.0;
            for (int ci = 0; ci < c_in; ci++) {
                for (int j = 0; j < k; j++) {
                    /* padded input frame t*stride + j is real frame t*stride + j - left_pad */
                    int ti = t * stride + j - left_pad;
                    if (ti < 0 || ti >= t_in) continue;
                    acc += (double)x[(int64_t)ti * c_in + ci] *
                           (double)vox_ref_mat_get(w, co, (int64_t)ci * k + j);
                }
            }
            y[(int64_t)t * c_out + co] = (float)acc;
        }
    }
}

void vox_ref_conv_transpose1d(float *y, const float *x, const vox_mat *w, const float *bias,
                              int t_in, int c_in, int c_out, int k, int stride) {
    int t_out = (t_in - 1) * stride + k;
    for (int to = 0; to < t_out; to++) {
        for (int co = 0; co < c_out; co++) {
            double acc = bias ? (double)bias[co] : 0.0;
            /* every (t, j) with t*stride + j == to contributes */
            for (int j = 0; j < k; j++) {
                int num = to - j;
                if (num < 0 || num % stride != 0) continue;
                int t = num / stride;
                if (t >= t_in) continue;
                for (int ci = 0; ci < c_in; ci++)
                    acc += (double)x[(int64_t)t * c_in + ci] *
                           (double)vox_ref_mat_get(w, ci, (int64_t)co * k + j);
            }
            y[(int64_t)to * c_out + co] = (float)acc;
        }
    }
}

int vox_ref_embed(float *y, const vox_mat *table, const int32_t *ids_host, int n) {
    for (int i = 0; i < n; i++) {
        int32_t id = ids_host[i];
        if (id < 0 || id >= table->rows) return VOX_ERR_ARG;
        for (int64_t c = 0; c < table->cols; c++)
            y[(int64_t)i * table->cols + c] = vox_ref_mat_get(table, id, c);
    }
    return VOX_OK;
}

void vox_ref_argmax(int32_t *out_host, const float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (int64_t)r * cols;
        int32_t best = -1;
        for (int c = 0; c < cols; c++) {
            if (isnan(xr[c])) continue;
            if (best < 0 || xr[c] > xr[best]) best = c;
        }
        out_host[r] = best < 0 ? 0 : best;
    }
}

void vox_ref_logmel(float *y, const float *x, int n_frames, int hop, int n_fft,
                    const float *window, const float *filters, int n_mels, float log_floor) {
    const double two_pi = 6.283185307179586476925286766559;
    int n_bins = n_fft / 2 + 1;
    double *e = malloc(sizeof(double) * (size_t)n_mels);
    for (int g = 0; g < n_frames; g++) {
        float *yr = y + (int64_t)g * n_mels;
        if (!e) {
            for (int m = 0; m < n_mels; m++) yr[m] = NAN;
            continue;
        }
        const float *xf = x + (int64_t)g * hop;
        for (int m = 0; m < n_mels; m++) e[m] = 0.0;
        for (int k = 0; k < n_bins; k++) {
            double re = 0.0, im = 0.0;
            for (int i = 0; i < n_fft; i++) {
                double v = (double)window[i] * (double)xf[i];
                /* angle from (i k) mod n_fft: exact argument reduction */
                double a = two_pi * (double)(((int64_t)i * k) % n_fft) / (double)n_fft;
                re += v * cos(a);
                im -= v * sin(a);
            }
            double p = re * re + im * im;
            for (int m = 0; m < n_mels; m++) e[m] += (double)filters[(int64_t)m * n_bins + k] * p;
        }
        for (int m = 0; m < n_mels; m++) yr[m] = vox_mel_log_scale((float)e[m], log_floor);
    }
    free(e);
}
