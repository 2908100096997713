/* matmul_cuda.cu - matmul, conv1d and conv_transpose1d of the CUDA backend.
 *
 * matmul y[n][rows] = x[n][cols] . W^T + b:
 *   n <= CU_GEMV_MAX_N (8)  our matrix-vector kernel: one warp per weight row reads the row once
 *                           (bf16/f16/f32 as stored, 16-byte loads when aligned), converts with
 *                           vox_hd.h and dots it with all n fp32 activation rows in fp32; warp
 *                           shuffle reduction. Memory-bound: the weights are read once.
 *   larger n                cublasGemmEx with fp32 A, B, C and CUBLAS_COMPUTE_32F (true fp32, no
 *                           TF32). An f32 W is used in place; a bf16/f16 W is converted block by
 *                           block (CU_WBLOCK_FLOATS, 64 MiB) into a scratch buffer first. The
 *                           activations are never rounded to bf16/f16: GemmEx needs both operands
 *                           of one type, and rounding x to bf16 would cost ~3 significant digits.
 * conv1d = im2col (time chunks) + the matmul path; a bf16/f16 W that fits one block is converted
 *   once for all chunks. conv_transpose1d = Z = x . W (GemmEx, W not transposed) then col2im
 *   y[t*stride + j][co] += Z[t][co*k + j], one thread per output element (a gather, no atomics).
 *
 * Row-major x . W^T in cuBLAS's column-major terms: y^T[rows][n] = op_T(W as [cols x rows]) x^T,
 * i.e. GemmEx(OP_T, OP_N, m = rows, n = n, k = cols, A = W, lda = cols, B = x, ldb = cols,
 * C = y, ldc = rows). */
#include <limits.h>

#include "cuda_backend.h"

#define CONV_THREADS 256
#define GEMV_THREADS 256 /* 8 warps = 8 weight rows per block */

/* ---- weight element access ---- */

template <int DT> __device__ __forceinline__ float wval(const void *w, int64_t i) {
    if (DT == VOX_DT_F32) return ((const float *)w)[i];
    if (DT == VOX_DT_BF16) return vox_bf16_to_f32(((const uint16_t *)w)[i]);
    return vox_f16_to_f32(((const uint16_t *)w)[i]);
}

/* ---- bf16/f16 -> fp32 conversion of rows r0 .. r0+nr-1 ---- */

template <int DT>
__global__ void convert_kernel(float *dst, const void *w, int64_t first, int64_t count) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride)
        dst[i] = wval<DT>(w, first + i);
}

static int convert_rows(vox_backend *be, const char *op, float *dst, const vox_mat *w,
                        int64_t r0, int64_t nr) {
    int64_t first = r0 * w->cols, count = nr * w->cols;
    cudaStream_t st = cu_of(be)->stream;
    unsigned g = cu_grid(count, CONV_THREADS);
    if (w->dtype == VOX_DT_BF16) CU_LAUNCH(convert_kernel<VOX_DT_BF16>, g, CONV_THREADS, 0, st, dst, w->data, first, count);
    else CU_LAUNCH(convert_kernel<VOX_DT_F16>, g, CONV_THREADS, 0, st, dst, w->data, first, count);
    return cu_check_launch(be, op);
}

/* ---- matrix-vector kernel ---- */

/* Lane l of the warp for row r handles columns c = l*V + 32*V*s + e (e < V), V elements per
 * 16-byte load (8 for bf16/f16, 4 for f32) when `vec`, else columns l + 32 s. */
template <int DT>
__global__ void gemv_kernel(float *y, const float *x, const void *w, const float *bias,
                            int rows, int cols, int n, int vec) {
    const int lane = threadIdx.x & 31;
    const int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    if (r >= rows) return;
    float acc[CU_GEMV_MAX_N];
#pragma unroll
    for (int j = 0; j < CU_GEMV_MAX_N; j++) acc[j] = 0.0f;
    const int64_t row0 = r * cols;
    if (vec) {
        const int V = DT == VOX_DT_F32 ? 4 : 8;
        for (int c = lane * V; c < cols; c += 32 * V) {
            float wv[8];
            uint4 raw = *(const uint4 *)((const char *)w + (row0 + c) * (DT == VOX_DT_F32 ? 4 : 2));
            if (DT == VOX_DT_F32) {
                wv[0] = __uint_as_float(raw.x);
                wv[1] = __uint_as_float(raw.y);
                wv[2] = __uint_as_float(raw.z);
                wv[3] = __uint_as_float(raw.w);
            } else {
                uint32_t u[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    uint16_t lo = (uint16_t)(u[e] & 0xffffu), hi = (uint16_t)(u[e] >> 16);
                    wv[2 * e] = DT == VOX_DT_BF16 ? vox_bf16_to_f32(lo) : vox_f16_to_f32(lo);
                    wv[2 * e + 1] = DT == VOX_DT_BF16 ? vox_bf16_to_f32(hi) : vox_f16_to_f32(hi);
                }
            }
#pragma unroll
            for (int j = 0; j < CU_GEMV_MAX_N; j++) {
                if (j < n) {
                    const float4 *xp = (const float4 *)(x + (int64_t)j * cols + c);
                    float4 a = xp[0];
                    float s = acc[j];
                    s += wv[0] * a.x;
                    s += wv[1] * a.y;
                    s += wv[2] * a.z;
                    s += wv[3] * a.w;
                    if (V == 8) {
                        float4 b = xp[1];
                        s += wv[4] * b.x;
                        s += wv[5] * b.y;
                        s += wv[6] * b.z;
                        s += wv[7] * b.w;
                    }
                    acc[j] = s;
                }
            }
        }
    } else {
        for (int c = lane; c < cols; c += 32) {
            float wv = wval<DT>(w, row0 + c);
#pragma unroll
            for (int j = 0; j < CU_GEMV_MAX_N; j++)
                if (j < n) acc[j] += wv * x[(int64_t)j * cols + c];
        }
    }
#pragma unroll
    for (int j = 0; j < CU_GEMV_MAX_N; j++) {
        float s = acc[j];
        for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        acc[j] = s;
    }
    if (lane == 0) {
        float b = bias ? bias[r] : 0.0f;
        for (int j = 0; j < n; j++) y[(int64_t)j * rows + r] = acc[j] + b;
    }
}

static int gemv(vox_backend *be, const char *op, float *y, const float *x, const vox_mat *w,
                const float *bias, int n) {
    int rows = (int)w->rows, cols = (int)w->cols;
    int V = w->dtype == VOX_DT_F32 ? 4 : 8; /* elements per 16-byte load */
    int vec = cols % V == 0 && ((uintptr_t)w->data % 16) == 0 && ((uintptr_t)x % 16) == 0;
    int64_t threads = (int64_t)rows * 32;
    unsigned g = (unsigned)((threads + GEMV_THREADS - 1) / GEMV_THREADS);
    cudaStream_t st = cu_of(be)->stream;
    if (w->dtype == VOX_DT_BF16)
        CU_LAUNCH(gemv_kernel<VOX_DT_BF16>, g, GEMV_THREADS, 0, st, y, x, w->data, bias, rows, cols, n, vec);
    else if (w->dtype == VOX_DT_F16)
        CU_LAUNCH(gemv_kernel<VOX_DT_F16>, g, GEMV_THREADS, 0, st, y, x, w->data, bias, rows, cols, n, vec);
    else
        CU_LAUNCH(gemv_kernel<VOX_DT_F32>, g, GEMV_THREADS, 0, st, y, x, w->data, bias, rows, cols, n, vec);
    return cu_check_launch(be, op);
}

/* ---- GEMM through cuBLAS ---- */

/* Column-major C[m][n] (ldc) = op(A) op(B) with fp32 everything, CUBLAS_COMPUTE_32F. */
static int gemm_f32(vox_backend *be, const char *op, cublasOperation_t ta, int m, int n, int k,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C,
                    int ldc) {
    const float alpha = 1.0f;
    cublasStatus_t s = cublasGemmEx(cu_of(be)->blas, ta, CUBLAS_OP_N, m, n, k, &alpha, A,
                                    CUDA_R_32F, lda, B, CUDA_R_32F, ldb, &beta, C, CUDA_R_32F,
                                    ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return s == CUBLAS_STATUS_SUCCESS ? VOX_OK : cu_blas_error(be, op, "cublasGemmEx", s);
}

__global__ void bias_kernel(float *y, const float *bias, int64_t n, int64_t cols) {
    int64_t total = n * cols, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride)
        y[t] += bias[t % cols];
}

/* Rows per converted block of w. */
static int64_t block_rows(vox_backend *be, const vox_mat *w) {
    int64_t rb = (int64_t)(cu_of(be)->wblock_floats / (size_t)w->cols);
    if (rb < 1) rb = 1;
    if (rb > w->rows) rb = w->rows;
    return rb;
}

/* matmul without argument checks (also used by conv1d). wf32: w already converted to fp32 in
 * device memory, or NULL. */
static int matmul_impl(vox_backend *be, const char *op, float *y, const float *x,
                       const vox_mat *w, const float *bias, int n, const float *wf32) {
    if (n <= CU_GEMV_MAX_N) return gemv(be, op, y, x, w, bias, n);
    int rows = (int)w->rows, cols = (int)w->cols, rc;
    if (w->dtype == VOX_DT_F32 || wf32) {
        const float *W = wf32 ? wf32 : (const float *)w->data;
        rc = gemm_f32(be, op, CUBLAS_OP_T, rows, n, cols, W, cols, x, cols, 0.0f, y, rows);
        if (rc) return rc;
    } else {
        cu_impl *im = cu_of(be);
        int64_t rb = block_rows(be, w);
        rc = cu_scratch_reserve(be, &im->wbuf, (size_t)(rb * cols) * sizeof(float), op);
        if (rc) return rc;
        float *wb = (float *)im->wbuf.p;
        for (int64_t r0 = 0; r0 < rows; r0 += rb) {
            int64_t nr = rows - r0 < rb ? rows - r0 : rb;
            if ((rc = convert_rows(be, op, wb, w, r0, nr))) return rc;
            rc = gemm_f32(be, op, CUBLAS_OP_T, (int)nr, n, cols, wb, cols, x, cols, 0.0f, y + r0,
                          rows);
            if (rc) return rc;
        }
    }
    if (bias) {
        CU_LAUNCH(bias_kernel, cu_grid((int64_t)n * rows, CONV_THREADS), CONV_THREADS, 0,
                      cu_of(be)->stream, y, bias, n, rows);
        return cu_check_launch(be, op);
    }
    return VOX_OK;
}

int cu_matmul(vox_backend *be, float *y, const float *x, const vox_mat *w, const float *bias,
              int n) {
    int rc = cu_check_mat(be, "matmul", w, "w");
    if (rc) return rc;
    if (n < 0) return cu_arg_error(be, "matmul", "n = %d, expected >= 0", n);
    if (w->rows > INT_MAX || w->cols > INT_MAX)
        return cu_arg_error(be, "matmul", "w is [%lld x %lld], larger than cuBLAS int",
                            (long long)w->rows, (long long)w->cols);
    if (n == 0) return VOX_OK;
    if (!y || !x) return cu_arg_error(be, "matmul", "NULL buffer");
    if ((rc = cu_enter(be, "matmul"))) return rc;
    return matmul_impl(be, "matmul", y, x, w, bias, n, NULL);
}

/* ---- conv1d: im2col + matmul ---- */

__global__ void im2col_kernel(float *col, const float *x, int t0, int nt, int t_in, int c_in,
                              int k, int stride, int left_pad) {
    int64_t width = (int64_t)c_in * k, total = (int64_t)nt * width;
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        int64_t t = i / width, rem = i % width;
        int ci = (int)(rem / k), j = (int)(rem % k);
        int64_t ti = (int64_t)(t0 + t) * stride + j - left_pad;
        col[i] = ti < 0 || ti >= t_in ? 0.0f : x[ti * c_in + ci];
    }
}

int cu_conv1d(vox_backend *be, float *y, const float *x, const vox_mat *w, const float *bias,
              int t_in, int c_in, int c_out, int k, int stride, int left_pad) {
    const char *op = "conv1d";
    int rc = cu_check_mat(be, op, w, "w");
    if (rc) return rc;
    if (t_in < 0 || c_in <= 0 || c_out <= 0 || k <= 0 || stride <= 0 || left_pad < 0)
        return cu_arg_error(be, op,
                            "t_in = %d, c_in = %d, c_out = %d, k = %d, stride = %d, left_pad = %d"
                            " (expected t_in, left_pad >= 0 and the others > 0)",
                            t_in, c_in, c_out, k, stride, left_pad);
    if (w->rows != c_out || w->cols != (int64_t)c_in * k)
        return cu_arg_error(be, op, "w is [%lld x %lld], expected [%d x %lld] (c_out x c_in*k)",
                            (long long)w->rows, (long long)w->cols, c_out, (long long)c_in * k);
    if (w->cols > INT_MAX) return cu_arg_error(be, op, "c_in * k larger than cuBLAS int");
    int64_t span = (int64_t)t_in + left_pad - k;
    int t_out = span < 0 ? 0 : (int)(span / stride + 1);
    if (t_out == 0) return VOX_OK;
    if (!y || !x) return cu_arg_error(be, op, "NULL buffer");
    if ((rc = cu_enter(be, op))) return rc;
    if (k == 1 && stride == 1 && left_pad == 0) /* x already is the column matrix */
        return matmul_impl(be, op, y, x, w, bias, t_out, NULL);
    cu_impl *im = cu_of(be);
    int64_t width = (int64_t)c_in * k;
    int64_t tc = (int64_t)(im->col_floats / (size_t)width);
    if (tc < 1) tc = 1;
    if (tc > t_out) tc = t_out;
    rc = cu_scratch_reserve(be, &im->col, (size_t)(tc * width) * sizeof(float), op);
    if (rc) return rc;
    /* a converted W that fits one block serves every chunk */
    const float *wf32 = NULL;
    if (w->dtype != VOX_DT_F32 && t_out > CU_GEMV_MAX_N &&
        (size_t)(w->rows * w->cols) <= im->wblock_floats) {
        rc = cu_scratch_reserve(be, &im->wbuf, (size_t)(w->rows * w->cols) * sizeof(float), op);
        if (rc) return rc;
        if ((rc = convert_rows(be, op, (float *)im->wbuf.p, w, 0, w->rows))) return rc;
        wf32 = (const float *)im->wbuf.p;
    }
    for (int t0 = 0; t0 < t_out; t0 += (int)tc) {
        int nt = t_out - t0 < tc ? t_out - t0 : (int)tc;
        CU_LAUNCH(im2col_kernel, cu_grid((int64_t)nt * width, CONV_THREADS), CONV_THREADS, 0, im->stream,
            (float *)im->col.p, x, t0, nt, t_in, c_in, k, stride, left_pad);
        if ((rc = cu_check_launch(be, op))) return rc;
        rc = matmul_impl(be, op, y + (int64_t)t0 * c_out, (const float *)im->col.p, w, bias, nt,
                         nt > CU_GEMV_MAX_N ? wf32 : NULL);
        if (rc) return rc;
    }
    return VOX_OK;
}

/* ---- conv_transpose1d: x . W then col2im ---- */

__global__ void fill_rows_kernel(float *y, const float *bias, int64_t rows, int64_t cols) {
    int64_t total = rows * cols, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += stride)
        y[t] = bias ? bias[t % cols] : 0.0f;
}

/* Output rows base .. base+span-1 of y gather the chunk's Z[nt][c_out*k]: row ro (relative)
 * receives Z[tl][co*k + j] for every ro = tl*stride + j with tl < nt. */
__global__ void col2im_kernel(float *y, const float *z, int64_t base, int64_t span, int nt,
                              int c_out, int k, int stride) {
    int64_t total = span * c_out, step = (int64_t)gridDim.x * blockDim.x;
    int64_t zw = (int64_t)c_out * k;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        int64_t ro = i / c_out;
        int co = (int)(i % c_out);
        float s = 0.0f;
        for (int j = 0; j < k; j++) {
            int64_t num = ro - j;
            if (num < 0 || num % stride) continue;
            int64_t tl = num / stride;
            if (tl >= nt) continue;
            s += z[tl * zw + (int64_t)co * k + j];
        }
        y[(base + ro) * c_out + co] += s;
    }
}

int cu_conv_transpose1d(vox_backend *be, float *y, const float *x, const vox_mat *w,
                        const float *bias, int t_in, int c_in, int c_out, int k, int stride) {
    const char *op = "conv_transpose1d";
    int rc = cu_check_mat(be, op, w, "w");
    if (rc) return rc;
    if (t_in < 0 || c_in <= 0 || c_out <= 0 || k <= 0 || stride <= 0)
        return cu_arg_error(be, op,
                            "t_in = %d, c_in = %d, c_out = %d, k = %d, stride = %d (expected "
                            "t_in >= 0 and the others > 0)",
                            t_in, c_in, c_out, k, stride);
    if (w->rows != c_in || w->cols != (int64_t)c_out * k)
        return cu_arg_error(be, op, "w is [%lld x %lld], expected [%d x %lld] (c_in x c_out*k)",
                            (long long)w->rows, (long long)w->cols, c_in, (long long)c_out * k);
    if (w->cols > INT_MAX) return cu_arg_error(be, op, "c_out * k larger than cuBLAS int");
    if (t_in == 0) return VOX_OK;
    if (!y || !x) return cu_arg_error(be, op, "NULL buffer");
    if ((rc = cu_enter(be, op))) return rc;
    cu_impl *im = cu_of(be);
    int64_t t_out = (int64_t)(t_in - 1) * stride + k;
    CU_LAUNCH(fill_rows_kernel, cu_grid(t_out * c_out, CONV_THREADS), CONV_THREADS, 0, im->stream,
        y, bias, t_out, c_out);
    if ((rc = cu_check_launch(be, op))) return rc;
    int zw = (int)w->cols;
    int64_t tc = (int64_t)(im->col_floats / (size_t)zw);
    if (tc < 1) tc = 1;
    if (tc > t_in) tc = t_in;
    rc = cu_scratch_reserve(be, &im->col, (size_t)(tc * zw) * sizeof(float), op);
    if (rc) return rc;
    float *Z = (float *)im->col.p;
    int64_t rb = w->dtype == VOX_DT_F32 ? w->rows : block_rows(be, w);
    if (w->dtype != VOX_DT_F32) {
        rc = cu_scratch_reserve(be, &im->wbuf, (size_t)(rb * zw) * sizeof(float), op);
        if (rc) return rc;
    }
    int w_cached = 0;
    for (int t0 = 0; t0 < t_in; t0 += (int)tc) {
        int nt = t_in - t0 < tc ? t_in - t0 : (int)tc;
        const float *xc = x + (int64_t)t0 * c_in;
        /* Z^T[zw][nt] = W^T-as-column-major [zw x c_in] . x^T [c_in x nt], over row blocks of W */
        for (int64_t r0 = 0; r0 < c_in; r0 += rb) {
            int64_t nr = c_in - r0 < rb ? c_in - r0 : rb;
            const float *Wb;
            if (w->dtype == VOX_DT_F32) {
                Wb = (const float *)w->data + r0 * zw;
            } else {
                /* when the whole W fits one block it stays converted across time chunks */
                if (!(rb == c_in && w_cached))
                    if ((rc = convert_rows(be, op, (float *)im->wbuf.p, w, r0, nr))) return rc;
                if (rb == c_in) w_cached = 1;
                Wb = (const float *)im->wbuf.p;
            }
            rc = gemm_f32(be, op, CUBLAS_OP_N, zw, nt, (int)nr, Wb, zw, xc + r0, c_in,
                          r0 == 0 ? 0.0f : 1.0f, Z, zw);
            if (rc) return rc;
        }
        int64_t span = (int64_t)(nt - 1) * stride + k; /* output rows this chunk touches */
        CU_LAUNCH(col2im_kernel, cu_grid(span * c_out, CONV_THREADS), CONV_THREADS, 0, im->stream,
            y, Z, (int64_t)t0 * stride, span, nt, c_out, k, stride);
        if ((rc = cu_check_launch(be, op))) return rc;
    }
    return VOX_OK;
}
