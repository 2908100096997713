/* vox_backend.h - the one interface every model (asr/, tts/, codec/, lm/) computes through.
 *
 * A backend owns device memory and runs ops on it. The CPU backend (always built) uses host
 * memory, OpenBLAS for matrix-matrix work and our threaded SIMD kernels for matrix-vector
 * work. The CUDA backend lives in libvox_cuda.so, dlopen'ed at run time, and implements the
 * same table with device memory, cuBLAS and our kernels.
 *
 * Memory and ownership
 *   - Every pointer passed to an op is *backend memory* (from ops->alloc, or for the CPU
 *     backend any host memory, e.g. an mmap'd weight) unless its name ends in _host.
 *   - Activations are fp32, row-major. Weights (vox_mat) are bf16, f16 or f32, row-major
 *     [rows][cols]. Weights used in a linear layer are [out][in], so y = x W^T (+ b).
 *   - Ops never allocate per call in steady state (a backend may grow a scratch buffer the
 *     first time a larger size is seen) and never free memory they did not allocate.
 *   - Ops are issued in order; results are visible to download() (which synchronises).
 *
 * Errors: every op returns VOX_OK or an error code and leaves one line in be->err.
 * Output buffers may alias inputs only where an op says "in place allowed". */
#ifndef VOX_BACKEND_H
#define VOX_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    VOX_DT_F32 = 0,
    VOX_DT_BF16 = 1,
    VOX_DT_F16 = 2,
    VOX_DT_I32 = 3,
    VOX_DT_I64 = 4,
    VOX_DT_U8 = 5
} vox_dtype;

size_t vox_dtype_size(vox_dtype t);
const char *vox_dtype_name(vox_dtype t); /* "F32", "BF16", ... as in safetensors */

/* A 2-D weight matrix in backend memory: element (r, c) at data[r * cols + c]. */
typedef struct vox_mat {
    const void *data;
    vox_dtype dtype; /* VOX_DT_F32, VOX_DT_BF16 or VOX_DT_F16 */
    int64_t rows;    /* out features */
    int64_t cols;    /* in features */
} vox_mat;

/* A ring KV cache for one attention layer of one stream. Position p lives in slot p % cap.
 * After positions 0..end-1 were written the ring holds max(0, end-cap) .. end-1.
 * A block of nq queries with sliding window W needs cap >= W + nq - 1. */
typedef struct vox_kv {
    float *k;     /* backend memory [cap][kv_dim], post-RoPE keys */
    float *v;     /* backend memory [cap][kv_dim] */
    int64_t cap;  /* slots */
    int kv_dim;   /* n_kv_heads * head_dim */
    int64_t end;  /* host-side: one past the last absolute position written */
} vox_kv;

typedef struct vox_backend vox_backend;

typedef struct vox_backend_ops {
    void (*destroy)(vox_backend *be);
    /* One line describing the backend: device, threads, SIMD path, BLAS core. */
    const char *(*describe)(vox_backend *be);

    /* ---- memory ---- */
    void *(*alloc)(vox_backend *be, size_t bytes); /* zero-filled; NULL and be->err on failure */
    void (*free)(vox_backend *be, void *p);
    int (*upload)(vox_backend *be, void *dst, const void *src_host, size_t bytes);
    int (*download)(vox_backend *be, void *dst_host, const void *src, size_t bytes);
    int (*copy)(vox_backend *be, void *dst, const void *src, size_t bytes);
    int (*zero)(vox_backend *be, void *dst, size_t bytes);
    int (*sync)(vox_backend *be);

    /* ---- ops (shapes in brackets, n = rows of activations) ---- */

    /* y[n][w.rows] = x[n][w.cols] . w^T + bias[w.rows] (bias may be NULL). */
    int (*matmul)(vox_backend *be, float *y, const float *x, const vox_mat *w, const float *bias,
                  int n);
    /* y[n][dim] = x * rsqrt(mean(x^2) + eps) * w[dim] (w may be NULL: no weight).
     * In place allowed. */
    int (*rmsnorm)(vox_backend *be, float *y, const float *x, const float *w, int n, int dim,
                   float eps);
    /* Interleaved-pair RoPE in place on x[n][n_heads * head_dim]; row i is at absolute
     * position pos0 + i; pair j = (2j, 2j+1) rotates by pos * theta^(-2j/head_dim). */
    int (*rope)(vox_backend *be, float *x, int n, int n_heads, int head_dim, int64_t pos0,
                float theta);
    /* Store n rows k[n][kv_dim], v[n][kv_dim] at absolute positions pos0 .. pos0+n-1 and set
     * kv->end = pos0 + n. pos0 must equal kv->end (positions are written in order). */
    int (*kv_write)(vox_backend *be, vox_kv *kv, const float *k, const float *v, int n,
                    int64_t pos0);
    /* out[nq][n_heads*head_dim] = softmax(q k^T * scale + mask) v for queries at positions
     * q_pos0 .. q_pos0+nq-1 over the keys held by kv. Query head h uses kv head
     * h / (n_heads / n_kv_heads). Key kp is visible to query qp iff kp <= qp and
     * (window <= 0 or kp > qp - window). */
    int (*attention)(vox_backend *be, float *out, const float *q, int nq, int64_t q_pos0,
                     const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim, int window,
                     float scale);
    /* Like attention, plus an ALiBi bias: out = softmax(q k^T * scale + slopes[h] * (kp - qp) +
     * mask) v. Key kp is visible to query qp iff qp - window <= kp <= qp: window + 1 keys
     * (window <= 0: unlimited), the codec's convention (note: one more than attention's). The
     * ring must hold every visible key (cap >= window + nq). slopes[n_heads] is backend memory
     * (upload it once; ops never allocate per call). */
    int (*attention_alibi)(vox_backend *be, float *out, const float *q, int nq, int64_t q_pos0,
                           const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim,
                           int window, float scale, const float *slopes);
    /* y[i] = silu(gate[i]) * up[i], i < n. In place allowed (y == gate). */
    int (*swiglu)(vox_backend *be, float *y, const float *gate, const float *up, int64_t n);
    int (*silu)(vox_backend *be, float *y, const float *x, int64_t n); /* in place allowed */
    int (*gelu)(vox_backend *be, float *y, const float *x, int64_t n); /* erf form; in place */
    /* Row-wise softmax over cols (numerically stable). In place allowed. */
    int (*softmax)(vox_backend *be, float *y, const float *x, int rows, int cols);
    int (*add)(vox_backend *be, float *y, const float *a, const float *b, int64_t n);
    int (*mul)(vox_backend *be, float *y, const float *a, const float *b, int64_t n);
    int (*scale)(vox_backend *be, float *y, const float *x, float s, int64_t n);
    /* y[rows][cols] = x[r][c] * s[c] (a per-column scale broadcast over rows, e.g. LayerScale).
     * s[cols]. In place allowed (y == x). */
    int (*mul_rows)(vox_backend *be, float *y, const float *x, const float *s, int64_t rows,
                    int64_t cols);
    /* 1-D convolution over time, time-major activations.
     * x[t_in][c_in]; w.rows = c_out, w.cols = c_in * k laid out as torch's [c_out][c_in][k];
     * bias[c_out] or NULL; x is implicitly preceded by left_pad zero frames;
     * t_out = (t_in + left_pad - k) / stride + 1 (0 if negative); y[t_out][c_out]. */
    int (*conv1d)(vox_backend *be, float *y, const float *x, const vox_mat *w, const float *bias,
                  int t_in, int c_in, int c_out, int k, int stride, int left_pad);
    /* Transposed 1-D convolution, full output (no trimming): x[t_in][c_in];
     * w.rows = c_in, w.cols = c_out * k laid out as torch's [c_in][c_out][k];
     * t_out = (t_in - 1) * stride + k; y[t_out][c_out]; bias[c_out] or NULL. */
    int (*conv_transpose1d)(vox_backend *be, float *y, const float *x, const vox_mat *w,
                            const float *bias, int t_in, int c_in, int c_out, int k, int stride);
    /* y[n][table.cols] = table[ids_host[i]] (converted to fp32). Ids out of range: error. */
    int (*embed)(vox_backend *be, float *y, const vox_mat *table, const int32_t *ids_host, int n);
    /* out_host[r] = index of the largest x[r][c] (first on ties; NaN never wins). */
    int (*argmax)(vox_backend *be, int32_t *out_host, const float *x, int rows, int cols);
    /* Log-mel spectrogram (the Voxtral front end, audio/vox_mel.h, as one op). x is an already
     * padded signal of at least (n_frames - 1) * hop + n_fft samples; frame g is
     * x[g*hop .. g*hop + n_fft) (center=False framing: the caller pads). Per frame:
     * v_i = window[i] x[g*hop + i] (window[n_fft], e.g. periodic Hann), X = the n_fft-point real
     * FFT of v (n_bins = n_fft/2 + 1 bins), p_k = |X_k|^2 (vox_mel_power),
     * e_m = sum_k filters[m][k] p_k in float, k ascending, terms with a zero weight skipped
     * (filters[n_mels][n_bins]), y[g][m] = vox_mel_log_scale(e_m, log_floor) (audio/vox_mel_hd.h).
     * window and filters are backend memory (the caller uploads them once). y[n_frames][n_mels]
     * must not alias x. n_frames == 0 is a no-op. */
    int (*logmel)(vox_backend *be, float *y, const float *x, int n_frames, int hop, int n_fft,
                  const float *window, const float *filters, int n_mels, float log_floor);
} vox_backend_ops;

struct vox_backend {
    const vox_backend_ops *ops;
    const char *name; /* "cpu" or "cuda" */
    int n_threads;    /* CPU worker threads (1 for CUDA) */
    vox_error err;    /* the last error any op reported */
    void *impl;       /* backend-private state */
};

typedef enum { VOX_DEVICE_AUTO = 0, VOX_DEVICE_CPU = 1, VOX_DEVICE_CUDA = 2 } vox_device;

/* "auto", "cpu", "cuda" -> vox_device; returns VOX_ERR_ARG for anything else. */
int vox_device_parse(const char *s, vox_device *out, vox_error *err);

/* Create a backend. n_threads <= 0 means all online CPUs.
 *   VOX_DEVICE_CPU: the CPU backend.
 *   VOX_DEVICE_CUDA: libvox_cuda.so and a GPU, or NULL with err naming the CUDA error.
 *   VOX_DEVICE_AUTO: CUDA when a GPU answers, else the CPU backend after printing one line
 *     to stderr saying why (unless log == VOX_LOG_QUIET).
 * The caller owns the result and frees it with vox_backend_destroy. */
vox_backend *vox_backend_create(vox_device dev, int n_threads, vox_log_level log, vox_error *err);
void vox_backend_destroy(vox_backend *be);

vox_backend *vox_cpu_backend_create(int n_threads, vox_error *err);

/* Entry point exported (C linkage) by libvox_cuda.so. */
#define VOX_CUDA_ENTRY_NAME "vox_cuda_backend_create"
typedef vox_backend *(*vox_cuda_create_fn)(int device_index, vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_BACKEND_H */
