/* cpu_backend.h - private state and helpers shared by the files of the CPU backend
 * (backend_cpu.c, ops_cpu.c, matmul_cpu.c, attn_cpu.c). Ownership: kernels/cpu, helper C.
 * Not a public API: models only see vox_backend.h. */
#ifndef VOX_CPU_BACKEND_H
#define VOX_CPU_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../vox_backend.h"
#include "vox_cpu.h"

/* A scratch buffer that only grows (no per-call malloc in steady state). */
typedef struct cpu_scratch {
    float *p;
    size_t cap; /* floats */
} cpu_scratch;

#define CPU_FFT_PLANS 4 /* FFTW plans kept by logmel (cpu_impl.fft) */

typedef struct cpu_impl {
    vox_pool *pool;
    int n_workers;    /* vox_pool_size(pool) */
    vox_cpu_isa isa;  /* SIMD path for gemv and our own kernels */
    int has_f16c;     /* the CPU converts f16 in hardware (weight conversion) */
    cpu_scratch wbuf; /* a block of weight rows converted to fp32 */
    cpu_scratch col;  /* im2col (conv1d) and column buffers (conv_transpose1d) */
    cpu_scratch att;  /* attention: n_workers slices */
    cpu_scratch xbf;  /* gemv: bf16 hi/lo split of the activations */
    cpu_scratch mel;  /* logmel: filter spans, then n_workers FFT slices */
    struct {
        void *plan; /* fftwf_plan (r2c of size n), owned; NULL when the slot is free */
        int n;
    } fft[CPU_FFT_PLANS]; /* logmel: cached FFTW plans, one per n_fft */
    unsigned fft_next; /* logmel: next slot to replace when all are taken */
    /* block sizes (floats) of the converted-weight and im2col/col2im buffers; set at creation
     * (CPU_WBLOCK_FLOATS, CPU_COL_FLOATS); tests shrink them to exercise the block loops */
    size_t wblock_floats, col_floats;
    char desc[256];
} cpu_impl;

#define CPU_WBLOCK_FLOATS ((size_t)1 << 20) /* converted weight block: 4 MiB */
#define CPU_COL_FLOATS ((size_t)1 << 22)    /* im2col / col2im chunk: 16 MiB */

static inline cpu_impl *cpu_of(vox_backend *be) { return (cpu_impl *)be->impl; }

/* Make s hold at least n floats (64-byte aligned); VOX_OK or VOX_ERR_NOMEM in be->err. */
int cpu_scratch_reserve(vox_backend *be, cpu_scratch *s, size_t n, const char *what);
void cpu_scratch_free(cpu_scratch *s);

/* Run fn(ctx, begin, end) over [0, n) split into one contiguous range per worker (ranges are
 * multiples of `align`, except the last). Runs inline when n < min_par or one worker. */
typedef void (*cpu_range_fn)(void *ctx, int64_t begin, int64_t end);
void cpu_parallel_for(vox_backend *be, int64_t n, int64_t min_par, int64_t align,
                      cpu_range_fn fn, void *ctx);

/* Argument errors: VOX_ERR_ARG with "cpu <op>: <message>" in be->err. */
int cpu_arg_error(vox_backend *be, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Validate a weight matrix (non-NULL, data, float dtype, positive dims). */
int cpu_check_mat(vox_backend *be, const char *op, const vox_mat *w, const char *name);

/* ---- ops, one definition each, wired into the table in backend_cpu.c ---- */
int cpu_matmul(vox_backend *be, float *y, const float *x, const vox_mat *w, const float *bias,
               int n);
int cpu_conv1d(vox_backend *be, float *y, const float *x, const vox_mat *w, const float *bias,
               int t_in, int c_in, int c_out, int k, int stride, int left_pad);
int cpu_conv_transpose1d(vox_backend *be, float *y, const float *x, const vox_mat *w,
                         const float *bias, int t_in, int c_in, int c_out, int k, int stride);
int cpu_kv_write(vox_backend *be, vox_kv *kv, const float *k, const float *v, int n,
                 int64_t pos0);
int cpu_attention(vox_backend *be, float *out, const float *q, int nq, int64_t q_pos0,
                  const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim, int window,
                  float scale);
int cpu_attention_alibi(vox_backend *be, float *out, const float *q, int nq, int64_t q_pos0,
                        const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim, int window,
                        float scale, const float *slopes);
int cpu_rmsnorm(vox_backend *be, float *y, const float *x, const float *w, int n, int dim,
                float eps);
int cpu_rope(vox_backend *be, float *x, int n, int n_heads, int head_dim, int64_t pos0,
             float theta);
int cpu_swiglu(vox_backend *be, float *y, const float *gate, const float *up, int64_t n);
int cpu_silu(vox_backend *be, float *y, const float *x, int64_t n);
int cpu_gelu(vox_backend *be, float *y, const float *x, int64_t n);
int cpu_softmax(vox_backend *be, float *y, const float *x, int rows, int cols);
int cpu_add(vox_backend *be, float *y, const float *a, const float *b, int64_t n);
int cpu_mul(vox_backend *be, float *y, const float *a, const float *b, int64_t n);
int cpu_scale(vox_backend *be, float *y, const float *x, float s, int64_t n);
int cpu_mul_rows(vox_backend *be, float *y, const float *x, const float *s, int64_t rows,
                 int64_t cols);
int cpu_embed(vox_backend *be, float *y, const vox_mat *table, const int32_t *ids_host, int n);
int cpu_argmax(vox_backend *be, int32_t *out_host, const float *x, int rows, int cols);
int cpu_logmel(vox_backend *be, float *y, const float *x, int n_frames, int hop, int n_fft,
               const float *window, const float *filters, int n_mels, float log_floor);
/* Destroy the cached FFTW plans (under vox_fftw_planner_lock); logmel_cpu.c. */
void cpu_fft_plans_free(cpu_impl *im);

#endif /* VOX_CPU_BACKEND_H */
