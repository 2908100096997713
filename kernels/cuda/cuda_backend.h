/* cuda_backend.h - private state and helpers shared by the files of the CUDA backend
 * (backend_cuda.cu, ops_cuda.cu, matmul_cuda.cu, attn_cuda.cu). Ownership: kernels/cuda.
 * Not a public API: models only see vox_backend.h; libvox_cuda.so exports one symbol,
 * vox_cuda_backend_create (VOX_CUDA_ENTRY_NAME).
 *
 * All work is issued on one non-blocking stream per backend, in call order; cuBLAS runs on the
 * same stream. Only the CUDA runtime API is used (never the driver API / -lcuda): the runtime
 * loads the driver itself and reports its absence as an error. */
#ifndef VOX_CUDA_BACKEND_H
#define VOX_CUDA_BACKEND_H

#include <cublas_v2.h>
#include <cufft.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "../vox_backend.h"
#include "../vox_hd.h"

/* Kernel launches and dynamic shared memory go through these two macros so the same sources
 * also build against the host emulation in tests/cuda_emu/ (whose cuda_runtime.h defines
 * VOX_CUDA_EMU and its own versions), which runs every kernel on the CPU for testing on
 * machines without a GPU. */
#ifndef VOX_CUDA_EMU
#define CU_LAUNCH(kern, grid, block, shmem, stream, ...) \
    kern<<<(grid), (block), (shmem), (stream)>>>(__VA_ARGS__)
#define CU_DYN_SHARED(type, name) extern __shared__ type name[]
#endif

/* A device scratch buffer that only grows (no per-call cudaMalloc in steady state). */
struct cu_scratch {
    void *p;
    size_t cap; /* bytes */
};

#define CU_FFT_PLANS 4   /* cuFFT plans kept by logmel (cu_impl.fft) */
#define CU_MEL_BATCH 512 /* frames per logmel chunk (fewer for n_fft > 8192) */

struct cu_impl {
    int device;
    int n_sm;              /* multiprocessors (sizes the attention key splits) */
    cudaStream_t stream;   /* every op runs here, in issue order */
    cublasHandle_t blas;   /* bound to stream */
    cu_scratch wbuf;       /* a block of weight rows converted to fp32 */
    cu_scratch col;        /* im2col (conv1d), x.W columns (conv_transpose1d) */
    cu_scratch att;        /* attention partials of the key splits */
    cu_scratch ids;        /* embed: the ids, uploaded */
    cu_scratch idx;        /* argmax: the indices before download */
    cu_scratch mel;        /* logmel: windowed frames, spectra and powers of one chunk */
    struct {
        cufftHandle plan;  /* batched R2C of size n (batch rows), owned */
        int n, batch;      /* n == 0: free slot */
    } fft[CU_FFT_PLANS];   /* logmel: cached cuFFT plans */
    unsigned fft_next;     /* logmel: next slot to replace when all are taken */
    size_t wblock_floats;  /* floats per converted weight block (CU_WBLOCK_FLOATS) */
    size_t col_floats;     /* floats per im2col / column chunk (CU_COL_FLOATS) */
    char desc[768];
};

#define CU_WBLOCK_FLOATS ((size_t)1 << 24) /* 64 MiB of fp32 weight rows */
#define CU_COL_FLOATS ((size_t)1 << 24)    /* 64 MiB im2col / column chunk */

/* Largest n handled by the matrix-vector kernel (one pass over the weights for all rows). */
#define CU_GEMV_MAX_N 8
/* Largest head_dim of the attention kernel (16 floats per lane). */
#define CU_ATT_MAX_HD 512

static inline cu_impl *cu_of(vox_backend *be) { return (cu_impl *)be->impl; }

/* VOX_ERR_ARG with "cuda <op>: <message>". */
int cu_arg_error(vox_backend *be, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* VOX_ERR_DEVICE with "cuda <op>: <what>: <CUDA error text>". */
int cu_cuda_error(vox_backend *be, const char *op, const char *what, cudaError_t e);
/* VOX_ERR_DEVICE with "cuda <op>: <what>: cuBLAS status <name>". */
int cu_blas_error(vox_backend *be, const char *op, const char *what, cublasStatus_t s);
/* After kernel launches: VOX_OK, or the launch error as cu_cuda_error. */
int cu_check_launch(vox_backend *be, const char *op);
/* Make the backend's device current for the calling thread. */
int cu_enter(vox_backend *be, const char *op);
/* Make s hold at least `bytes` (device memory; contents not kept). */
int cu_scratch_reserve(vox_backend *be, cu_scratch *s, size_t bytes, const char *op);
/* Validate a weight matrix (non-NULL, data, float dtype, positive dims). */
int cu_check_mat(vox_backend *be, const char *op, const vox_mat *w, const char *name);

/* Grid size for n elements at `threads` per block, capped (kernels use grid-stride loops). */
static inline unsigned cu_grid(int64_t n, int threads) {
    int64_t g = (n + threads - 1) / threads;
    if (g < 1) g = 1;
    if (g > 65535 * 8) g = 65535 * 8;
    return (unsigned)g;
}

/* ---- ops, wired into the table in backend_cuda.cu ---- */
int cu_matmul(vox_backend *be, float *y, const float *x, const vox_mat *w, const float *bias,
              int n);
int cu_conv1d(vox_backend *be, float *y, const float *x, const vox_mat *w, const float *bias,
              int t_in, int c_in, int c_out, int k, int stride, int left_pad);
int cu_conv_transpose1d(vox_backend *be, float *y, const float *x, const vox_mat *w,
                        const float *bias, int t_in, int c_in, int c_out, int k, int stride);
int cu_kv_write(vox_backend *be, vox_kv *kv, const float *k, const float *v, int n,
                int64_t pos0);
int cu_attention(vox_backend *be, float *out, const float *q, int nq, int64_t q_pos0,
                 const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim, int window,
                 float scale);
int cu_attention_alibi(vox_backend *be, float *out, const float *q, int nq, int64_t q_pos0,
                       const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim, int window,
                       float scale, const float *slopes);
int cu_rmsnorm(vox_backend *be, float *y, const float *x, const float *w, int n, int dim,
               float eps);
int cu_rope(vox_backend *be, float *x, int n, int n_heads, int head_dim, int64_t pos0,
            float theta);
int cu_swiglu(vox_backend *be, float *y, const float *gate, const float *up, int64_t n);
int cu_silu(vox_backend *be, float *y, const float *x, int64_t n);
int cu_gelu(vox_backend *be, float *y, const float *x, int64_t n);
int cu_softmax(vox_backend *be, float *y, const float *x, int rows, int cols);
int cu_add(vox_backend *be, float *y, const float *a, const float *b, int64_t n);
int cu_mul(vox_backend *be, float *y, const float *a, const float *b, int64_t n);
int cu_scale(vox_backend *be, float *y, const float *x, float s, int64_t n);
int cu_mul_rows(vox_backend *be, float *y, const float *x, const float *s, int64_t rows,
                int64_t cols);
int cu_embed(vox_backend *be, float *y, const vox_mat *table, const int32_t *ids_host, int n);
int cu_argmax(vox_backend *be, int32_t *out_host, const float *x, int rows, int cols);
int cu_logmel(vox_backend *be, float *y, const float *x, int n_frames, int hop, int n_fft,
              const float *window, const float *filters, int n_mels, float log_floor);
/* Destroy the cached cuFFT plans (logmel_cuda.cu). */
void cu_fft_plans_free(cu_impl *im);

#endif /* VOX_CUDA_BACKEND_H */
