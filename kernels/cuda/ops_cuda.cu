/* ops_cuda.cu - the small ops of the CUDA backend: element-wise math, RMSNorm, RoPE, softmax,
 * embedding lookup and argmax. Per-element math comes from vox_hd.h, the same code the CPU
 * backend and the reference loops run (so the CPU tests cover it). Reductions follow the CPU
 * backend's precision: RMSNorm and softmax sum in double, argmax merges with
 * vox_argmax_better (first maximum, NaN never wins). */
#include "cuda_backend.h"

#define EW_THREADS 256
#define ROW_THREADS 256

/* ---- element-wise (grid-stride loops) ---- */

enum ew_kind { EW_SWIGLU, EW_SILU, EW_GELU, EW_ADD, EW_MUL, EW_SCALE };

template <int K>
__global__ void ew_kernel(float *y, const float *a, const float *b, float s, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float r;
        if (K == EW_SWIGLU) r = vox_swiglu(a[i], b[i]);
        else if (K == EW_SILU) r = vox_silu(a[i]);
        else if (K == EW_GELU) r = vox_gelu(a[i]);
        else if (K == EW_ADD) r = a[i] + b[i];
        else if (K == EW_MUL) r = a[i] * b[i];
        else r = a[i] * s;
        y[i] = r;
    }
}

template <int K>
static int ew_run(vox_backend *be, const char *op, float *y, const float *a, const float *b,
                  int need_b, float s, int64_t n) {
    if (n < 0) return cu_arg_error(be, op, "n = %lld, expected >= 0", (long long)n);
    if (n == 0) return VOX_OK;
    if (!y || !a || (need_b && !b)) return cu_arg_error(be, op, "NULL buffer");
    int rc = cu_enter(be, op);
    if (rc) return rc;
    CU_LAUNCH(ew_kernel<K>, cu_grid(n, EW_THREADS), EW_THREADS, 0, cu_of(be)->stream, y, a, b, s, n);
    return cu_check_launch(be, op);
}

int cu_swiglu(vox_backend *be, float *y, const float *gate, const float *up, int64_t n) {
    return ew_run<EW_SWIGLU>(be, "swiglu", y, gate, up, 1, 0.0f, n);
}
int cu_silu(vox_backend *be, float *y, const float *x, int64_t n) {
    return ew_run<EW_SILU>(be, "silu", y, x, NULL, 0, 0.0f, n);
}
int cu_gelu(vox_backend *be, float *y, const float *x, int64_t n) {
    return ew_run<EW_GELU>(be, "gelu", y, x, NULL, 0, 0.0f, n);
}
int cu_add(vox_backend *be, float *y, const float *a, const float *b, int64_t n) {
    return ew_run<EW_ADD>(be, "add", y, a, b, 1, 0.0f, n);
}
int cu_mul(vox_backend *be, float *y, const float *a, const float *b, int64_t n) {
    return ew_run<EW_MUL>(be, "mul", y, a, b, 1, 0.0f, n);
}
int cu_scale(vox_backend *be, float *y, const float *x, float s, int64_t n) {
    return ew_run<EW_SCALE>(be, "scale", y, x, NULL, 0, s, n);
}

/* ---- mul_rows: y[r][c] = x[r][c] * s[c] (grid-stride over rows * cols) ---- */

__global__ void mul_rows_kernel(float *y, const float *x, const float *sc, int64_t n,
                                int64_t cols) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = vox_mul_rows_elem(x, sc, i, cols);
}

int cu_mul_rows(vox_backend *be, float *y, const float *x, const float *s, int64_t rows,
                int64_t cols) {
    const char *op = "mul_rows";
    if (rows < 0 || cols < 0)
        return cu_arg_error(be, op, "rows = %lld, cols = %lld, expected >= 0", (long long)rows,
                            (long long)cols);
    if (rows == 0 || cols == 0) return VOX_OK;
    if (!y || !x || !s) return cu_arg_error(be, op, "NULL buffer");
    if (rows > INT64_MAX / cols)
        return cu_arg_error(be, op, "rows * cols overflows (%lld x %lld)", (long long)rows,
                            (long long)cols);
    int rc = cu_enter(be, op);
    if (rc) return rc;
    int64_t n = rows * cols;
    CU_LAUNCH(mul_rows_kernel, cu_grid(n, EW_THREADS), EW_THREADS, 0, cu_of(be)->stream, y, x, s,
              n, cols);
    return cu_check_launch(be, op);
}

/* ---- block reductions (blockDim.x = ROW_THREADS, a multiple of 32) ---- */

template <typename T> __device__ T block_sum(T v, T *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads(); /* sh may still be read by a previous reduction */
    if (lane == 0) sh[w] = v;
    __syncthreads();
    T r = 0;
    for (int i = 0; i < nw; i++) r += sh[i];
    return r;
}

__device__ float block_max(float v, float *sh) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) sh[w] = v;
    __syncthreads();
    float r = sh[0];
    for (int i = 1; i < nw; i++) r = fmaxf(r, sh[i]);
    return r;
}

/* ---- RMSNorm: one block per row, sum of squares in double ---- */

__global__ void rmsnorm_kernel(float *y, const float *x, const float *w, int dim, float eps) {
    __shared__ double sh[32];
    const float *xr = x + (int64_t)blockIdx.x * dim;
    float *yr = y + (int64_t)blockIdx.x * dim;
    double ss = 0.0;
    for (int d = threadIdx.x; d < dim; d += blockDim.x) ss += (double)xr[d] * (double)xr[d];
    ss = block_sum<double>(ss, sh); /* every read of x happens before this barrier */
    float inv = vox_rms_inv((float)ss, dim, eps);
    if (w)
        for (int d = threadIdx.x; d < dim; d += blockDim.x) yr[d] = xr[d] * inv * w[d];
    else
        for (int d = threadIdx.x; d < dim; d += blockDim.x) yr[d] = xr[d] * inv;
}

int cu_rmsnorm(vox_backend *be, float *y, const float *x, const float *w, int n, int dim,
               float eps) {
    if (n < 0 || dim <= 0)
        return cu_arg_error(be, "rmsnorm", "n = %d, dim = %d; expected n >= 0, dim > 0", n, dim);
    if (n == 0) return VOX_OK;
    if (!y || !x) return cu_arg_error(be, "rmsnorm", "NULL buffer");
    if (n > INT32_MAX / 2) return cu_arg_error(be, "rmsnorm", "n = %d too large", n);
    int rc = cu_enter(be, "rmsnorm");
    if (rc) return rc;
    CU_LAUNCH(rmsnorm_kernel, n, ROW_THREADS, 0, cu_of(be)->stream, y, x, w, dim, eps);
    return cu_check_launch(be, "rmsnorm");
}

/* ---- RoPE: one thread per (row, pair); cos/sin once, applied to every head ---- */

__global__ void rope_kernel(float *x, int n, int n_heads, int head_dim, int64_t pos0,
                            float theta) {
    int half = head_dim / 2;
    int64_t total = (int64_t)n * half, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        int64_t i = t / half;
        int j = (int)(t % half);
        float c, s;
        vox_rope_cs((int)(pos0 + i), vox_rope_inv_freq(j, head_dim, theta), &c, &s);
        float *xr = x + i * (int64_t)n_heads * head_dim + 2 * j;
        for (int h = 0; h < n_heads; h++)
            vox_rope_rotate(&xr[(int64_t)h * head_dim], &xr[(int64_t)h * head_dim + 1], c, s);
    }
}

int cu_rope(vox_backend *be, float *x, int n, int n_heads, int head_dim, int64_t pos0,
            float theta) {
    if (n < 0 || n_heads <= 0 || head_dim <= 0 || head_dim % 2)
        return cu_arg_error(be, "rope",
                            "n = %d, n_heads = %d, head_dim = %d; expected n >= 0, n_heads > 0, "
                            "even head_dim > 0",
                            n, n_heads, head_dim);
    if (pos0 < 0 || pos0 + n > INT32_MAX)
        return cu_arg_error(be, "rope", "positions %lld..%lld outside 0..%d", (long long)pos0,
                            (long long)(pos0 + n - 1), INT32_MAX);
    if (n == 0) return VOX_OK;
    if (!x) return cu_arg_error(be, "rope", "NULL buffer");
    int rc = cu_enter(be, "rope");
    if (rc) return rc;
    int64_t total = (int64_t)n * (head_dim / 2);
    CU_LAUNCH(rope_kernel, cu_grid(total, EW_THREADS), EW_THREADS, 0, cu_of(be)->stream,
        x, n, n_heads, head_dim, pos0, theta);
    return cu_check_launch(be, "rope");
}

/* ---- softmax: one block per row; max-subtracted, exp in float, sum in double ---- */

__global__ void softmax_kernel(float *y, const float *x, int cols) {
    __shared__ float shm[32];
    __shared__ double shs[32];
    const float *xr = x + (int64_t)blockIdx.x * cols;
    float *yr = y + (int64_t)blockIdx.x * cols;
    float mx = -INFINITY;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) mx = fmaxf(mx, xr[c]);
    mx = block_max(mx, shm); /* every thread has read its x before any y is written */
    double sum = 0.0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float e = expf(xr[c] - mx);
        yr[c] = e;
        sum += e;
    }
    sum = block_sum<double>(sum, shs);
    float inv = (float)(1.0 / sum);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) yr[c] *= inv;
}

int cu_softmax(vox_backend *be, float *y, const float *x, int rows, int cols) {
    if (rows < 0 || cols <= 0)
        return cu_arg_error(be, "softmax", "rows = %d, cols = %d; expected rows >= 0, cols > 0",
                            rows, cols);
    if (rows == 0) return VOX_OK;
    if (!y || !x) return cu_arg_error(be, "softmax", "NULL buffer");
    int rc = cu_enter(be, "softmax");
    if (rc) return rc;
    CU_LAUNCH(softmax_kernel, rows, ROW_THREADS, 0, cu_of(be)->stream, y, x, cols);
    return cu_check_launch(be, "softmax");
}

/* ---- embedding lookup: ids checked on the host, uploaded to scratch ---- */

__global__ void embed_kernel(float *y, const void *table, int dtype, const int32_t *ids, int n,
                             int64_t cols) {
    int64_t total = (int64_t)n * cols, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride) {
        int64_t i = t / cols, c = t % cols;
        int64_t src = (int64_t)ids[i] * cols + c;
        float v;
        if (dtype == VOX_DT_F32) v = ((const float *)table)[src];
        else if (dtype == VOX_DT_BF16) v = vox_bf16_to_f32(((const uint16_t *)table)[src]);
        else v = vox_f16_to_f32(((const uint16_t *)table)[src]);
        y[t] = v;
    }
}

int cu_embed(vox_backend *be, float *y, const vox_mat *table, const int32_t *ids_host, int n) {
    int rc = cu_check_mat(be, "embed", table, "table");
    if (rc) return rc;
    if (n < 0) return cu_arg_error(be, "embed", "n = %d, expected >= 0", n);
    if (n == 0) return VOX_OK;
    if (!y || !ids_host) return cu_arg_error(be, "embed", "NULL buffer");
    for (int i = 0; i < n; i++) /* check every id before writing anything */
        if (ids_host[i] < 0 || ids_host[i] >= table->rows)
            return cu_arg_error(be, "embed", "id %d at index %d is outside the table [0, %lld)",
                                (int)ids_host[i], i, (long long)table->rows);
    if ((rc = cu_enter(be, "embed"))) return rc;
    cu_impl *im = cu_of(be);
    rc = cu_scratch_reserve(be, &im->ids, (size_t)n * sizeof(int32_t), "embed");
    if (rc) return rc;
    cudaError_t e = cudaMemcpyAsync(im->ids.p, ids_host, (size_t)n * sizeof(int32_t),
                                    cudaMemcpyHostToDevice, im->stream);
    if (e != cudaSuccess) return cu_cuda_error(be, "embed", "upload of the ids", e);
    int64_t total = (int64_t)n * table->cols;
    CU_LAUNCH(embed_kernel, cu_grid(total, EW_THREADS), EW_THREADS, 0, im->stream,
        y, table->data, (int)table->dtype, (const int32_t *)im->ids.p, n, table->cols);
    return cu_check_launch(be, "embed");
}

/* ---- argmax: one block per row, (value, index) merged with vox_argmax_better ---- */

__global__ void argmax_kernel(int32_t *out, const float *x, int cols) {
    __shared__ float sv[ROW_THREADS];
    __shared__ int sidx[ROW_THREADS];
    const float *xr = x + (int64_t)blockIdx.x * cols;
    float bv = 0.0f;
    int bi = -1;
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        if (vox_argmax_better(xr[c], c, bv, bi)) {
            bv = xr[c];
            bi = c;
        }
    sv[threadIdx.x] = bv;
    sidx[threadIdx.x] = bi;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half >>= 1) {
        if ((int)threadIdx.x < half) {
            int o = threadIdx.x + half;
            if (vox_argmax_better(sv[o], sidx[o], sv[threadIdx.x], sidx[threadIdx.x])) {
                sv[threadIdx.x] = sv[o];
                sidx[threadIdx.x] = sidx[o];
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = sidx[0] < 0 ? 0 : sidx[0];
}

int cu_argmax(vox_backend *be, int32_t *out_host, const float *x, int rows, int cols) {
    if (rows < 0 || cols <= 0)
        return cu_arg_error(be, "argmax", "rows = %d, cols = %d; expected rows >= 0, cols > 0",
                            rows, cols);
    if (rows == 0) return VOX_OK;
    if (!out_host || !x) return cu_arg_error(be, "argmax", "NULL buffer");
    int rc = cu_enter(be, "argmax");
    if (rc) return rc;
    cu_impl *im = cu_of(be);
    rc = cu_scratch_reserve(be, &im->idx, (size_t)rows * sizeof(int32_t), "argmax");
    if (rc) return rc;
    CU_LAUNCH(argmax_kernel, rows, ROW_THREADS, 0, im->stream, (int32_t *)im->idx.p, x, cols);
    if ((rc = cu_check_launch(be, "argmax"))) return rc;
    cudaError_t e = cudaMemcpyAsync(out_host, im->idx.p, (size_t)rows * sizeof(int32_t),
                                    cudaMemcpyDeviceToHost, im->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(im->stream);
    return e == cudaSuccess ? VOX_OK : cu_cuda_error(be, "argmax", "download of the indices", e);
}
