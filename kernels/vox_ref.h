/* vox_ref.h - plain reference loops for every backend op (ownership: kernels, helper C).
 *
 * These are the obviously-correct versions every backend (CPU, CUDA) is tested against, and
 * that tools/vox-selftest and the model tests use as their expectation. They work on host
 * memory only, favour clarity over speed (no threads, no SIMD, no blocking), accumulate sums in
 * double where rounding could matter, and take the same arguments in the same order as the
 * ops of vox_backend_ops (vox_backend.h) minus the backend. Per-element math (bf16/f16
 * conversion, SiLU, GELU, RoPE pair rotation, ring slot positions, attention visibility) comes
 * from vox_hd.h, so it is the same arithmetic the CUDA kernels run.
 *
 * Shapes are in brackets, row-major; n is the number of activation rows. Functions that can
 * reject their arguments return VOX_OK or VOX_ERR_ARG (no message); the others return nothing
 * and assume valid arguments (they are not argument validators: the backends are).
 * Only vox_ref_attention and vox_ref_attention_alibi allocate (a head_dim scratch of doubles); if that fails its output is
 * filled with NaN so a test cannot pass by accident. */
#ifndef VOX_REF_H
#define VOX_REF_H

#include <stddef.h>
#include <stdint.h>

#include "vox_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element (r, c) of a weight matrix converted to fp32 (bf16 and f16 via vox_hd.h). */
float vox_ref_mat_get(const vox_mat *w, int64_t r, int64_t c);

/* y[n][w.rows] = x[n][w.cols] . w^T + bias[w.rows] (bias may be NULL); double accumulation. */
void vox_ref_matmul(float *y, const float *x, const vox_mat *w, const float *bias, int n);

/* y[n][dim] = x * 1/sqrt(mean(x^2) + eps) * w[dim] (w may be NULL); mean in double, the scale
 * through vox_rms_inv. In place allowed. */
void vox_ref_rmsnorm(float *y, const float *x, const float *w, int n, int dim, float eps);

/* Interleaved-pair RoPE in place on x[n][n_heads * head_dim]: row i is at position pos0 + i,
 * pair j = (2j, 2j+1) of every head is rotated by vox_rope_pair with
 * vox_rope_inv_freq(j, head_dim, theta). head_dim must be even. */
void vox_ref_rope(float *x, int n, int n_heads, int head_dim, int64_t pos0, float theta);

/* Ring write: rows k[n][kv_dim], v[n][kv_dim] go to slots (pos0 + i) % kv->cap, then
 * kv->end = pos0 + n. Returns VOX_ERR_ARG (writing nothing) if pos0 != kv->end. kv is host
 * memory. */
int vox_ref_kv_write(vox_kv *kv, const float *k, const float *v, int n, int64_t pos0);

/* out[nq][n_heads*head_dim] = softmax(q k^T * scale) v over the keys the ring kv (host memory)
 * holds: every slot s is visited, its position is vox_ring_slot_pos(s, cap, end) and it counts
 * iff vox_attn_visible(query position, that position, window). Query i is at q_pos0 + i; query
 * head h reads kv head h / (n_heads / n_kv_heads). Scores, softmax and the weighted sum are in
 * double. A query that sees no key gets a zero output row. */
void vox_ref_attention(float *out, const float *q, int nq, int64_t q_pos0, const vox_kv *kv,
                       int n_heads, int n_kv_heads, int head_dim, int window, float scale);
/* vox_ref_attention plus the ALiBi bias slopes[h] * (kp - qp) (slopes[n_heads], host), with
 * keys qp - window .. qp visible (window + 1 keys; window <= 0: unlimited), as the backend's
 * attention_alibi. Two passes over the ring, scores and sums in double. */
void vox_ref_attention_alibi(float *out, const float *q, int nq, int64_t q_pos0,
                             const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim,
                             int window, float scale, const float *slopes);

/* Element-wise ops over n floats; all allow y to alias an input. */
void vox_ref_swiglu(float *y, const float *gate, const float *up, int64_t n); /* vox_swiglu */
void vox_ref_silu(float *y, const float *x, int64_t n);                       /* vox_silu */
void vox_ref_gelu(float *y, const float *x, int64_t n);                       /* vox_gelu */
void vox_ref_add(float *y, const float *a, const float *b, int64_t n);
void vox_ref_mul(float *y, const float *a, const float *b, int64_t n);
void vox_ref_scale(float *y, const float *x, float s, int64_t n);
/* y[rows][cols] = x[r][c] * s[c]; in place allowed. */
void vox_ref_mul_rows(float *y, const float *x, const float *s, int64_t rows, int64_t cols);

/* Row-wise softmax of x[rows][cols] (max subtracted, exp and sum in double). In place allowed. */
void vox_ref_softmax(float *y, const float *x, int rows, int cols);

/* 1-D convolution, time-major: x[t_in][c_in], w.rows = c_out, w.cols = c_in * k as torch's
 * [c_out][c_in][k], bias[c_out] or NULL, left_pad zero frames before x, stride >= 1;
 * y[t_out][c_out] with t_out = vox_ref_conv1d_out_len(...). Direct loops, double sums. */
void vox_ref_conv1d(float *y, const float *x, const vox_mat *w, const float *bias, int t_in,
                    int c_in, int c_out, int k, int stride, int left_pad);
/* t_out of conv1d: (t_in + left_pad - k) / stride + 1, or 0 when that is negative. */
int vox_ref_conv1d_out_len(int t_in, int k, int stride, int left_pad);

/* Transposed 1-D convolution, full output: x[t_in][c_in], w.rows = c_in, w.cols = c_out * k as
 * torch's [c_in][c_out][k]; y[(t_in - 1) * stride + k][c_out]; bias[c_out] or NULL.
 * y[t*stride + j][co] += x[t][ci] * w[ci][co][j]. Direct gather loops, double sums. */
void vox_ref_conv_transpose1d(float *y, const float *x, const vox_mat *w, const float *bias,
                              int t_in, int c_in, int c_out, int k, int stride);

/* y[n][table.cols] = row ids_host[i] of table converted to fp32. Returns VOX_ERR_ARG if an id
 * is outside [0, table.rows) (rows before it are already written). */
int vox_ref_embed(float *y, const vox_mat *table, const int32_t *ids_host, int n);

/* out_host[r] = index of the largest x[r][c]: the first one on ties; NaN never wins; a row of
 * only NaN gives 0. */
void vox_ref_argmax(int32_t *out_host, const float *x, int rows, int cols);

/* The logmel op (vox_backend.h) by a direct O(n_fft^2) DFT in double: frame g of the padded
 * x is windowed in double, X_k = sum_i v_i e^{-2 pi i k i / n_fft} for k <= n_fft/2, the
 * power |X_k|^2 and the mel sum sum_k filters[m][k] |X_k|^2 are in double, and only the
 * result goes through vox_mel_log_scale((float)e, log_floor). Independent of FFTW. */
void vox_ref_logmel(float *y, const float *x, int n_frames, int hop, int n_fft,
                    const float *window, const float *filters, int n_mels, float log_floor);

#ifdef __cplusplus
}
#endif
#endif /* VOX_REF_H */
