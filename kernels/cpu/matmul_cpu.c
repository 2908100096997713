/* matmul_cpu.c - matmul, conv1d and conv_transpose1d of the CPU backend.
 *
 * matmul y[n][rows] = x[n][cols] . W^T + b:
 *   n <= VOX_GEMV_MAX_N  vox_cpu_gemv (memory-bound; reads bf16/f16/f32 W directly, SIMD, pool);
 *                       bf16/f16 W up to GEMV_CHUNKED_MAX_N rows: the gemv in chunks of 8 rows.
 *   larger n            OpenBLAS sgemm, row-major, x . W^T. An f32 W is used in place. A bf16
 *                       or f16 W is converted block by block (CPU_WBLOCK_FLOATS of fp32, 1 Mi
 *                       elements: 341 rows of 3072) into a per-backend scratch buffer by
 *                       the pool's workers, then each block is one sgemm writing a column block
 *                       of y. OpenBLAS's threads are set to the backend's thread count; the
 *                       conversion and the sgemm alternate, so both use all cores.
 *                       Debian's OpenBLAS exports no bf16 GEMM, hence the conversion.
 * conv1d = im2col (time chunks, parallel) + the matmul path above: the column matrix
 *   col[t][ci*k + j] = x[t*stride + j - left_pad][ci] matches torch's [c_out][c_in][k] rows.
 * conv_transpose1d = one product Z[t][co*k + j] = sum_ci x[t][ci] w[ci][co*k + j] (x . W, W not
 *   transposed), then col2im: y[t*stride + j][co] += Z[t][co*k + j]. */
#include <cblas.h>
#include <limits.h>
#include <string.h>

#include "cpu_backend.h"
#include "vox_blas.h"
#include "../vox_hd.h"

/* ---- weight conversion ---- */

#if defined(__x86_64__)
#include <immintrin.h>
/* bf16 -> fp32 is a zero-extension and a 16-bit shift; f16 -> fp32 is vcvtph2ps (F16C), exact
 * like vox_f16_to_f32 for every finite, infinite and quiet-NaN input. */
static __attribute__((target("avx2"))) void cvt_bf16_avx2(float *d, const uint16_t *s,
                                                          int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(s + i));
        __m256i lo = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(a));
        __m256i hi = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(a, 1));
        _mm256_storeu_si256((__m256i *)(d + i), _mm256_slli_epi32(lo, 16));
        _mm256_storeu_si256((__m256i *)(d + i + 8), _mm256_slli_epi32(hi, 16));
    }
    for (; i < n; i++) d[i] = vox_bf16_to_f32(s[i]);
}
static __attribute__((target("avx,f16c"))) void cvt_f16_f16c(float *d, const uint16_t *s,
                                                             int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    for (; i < n; i++) d[i] = vox_f16_to_f32(s[i]);
}
#endif

typedef struct {
    float *dst;
    const vox_mat *w;
    int64_t r0;
    int simd; /* AVX2 + F16C available */
} conv_ctx;

static void convert_range(void *vc, int64_t b, int64_t e) {
    conv_ctx *c = vc;
    int64_t cols = c->w->cols;
    int64_t first = (c->r0 + b) * cols, count = (e - b) * cols;
    float *dst = c->dst + b * cols;
    const uint16_t *src = (const uint16_t *)c->w->data + first;
#if defined(__x86_64__)
    if (c->simd) {
        if (c->w->dtype == VOX_DT_BF16) cvt_bf16_avx2(dst, src, count);
        else cvt_f16_f16c(dst, src, count);
        return;
    }
#endif
    if (c->w->dtype == VOX_DT_BF16)
        for (int64_t i = 0; i < count; i++) dst[i] = vox_bf16_to_f32(src[i]);
    else
        for (int64_t i = 0; i < count; i++) dst[i] = vox_f16_to_f32(src[i]);
}

/* dst[nr][cols] = rows r0 .. r0+nr-1 of w (bf16 or f16) as fp32, split over the workers. */
static void convert_rows(vox_backend *be, float *dst, const vox_mat *w, int64_t r0, int64_t nr) {
    cpu_impl *im = cpu_of(be);
    conv_ctx c = {dst, w, r0, im->isa >= VOX_ISA_AVX2 && im->has_f16c};
    cpu_parallel_for(be, nr, 1 + 65536 / w->cols, 1, convert_range, &c);
}

/* Rows per converted block of w. */
static int64_t block_rows(vox_backend *be, const vox_mat *w) {
    int64_t rb = (int64_t)(cpu_of(be)->wblock_floats / (size_t)w->cols);
    if (rb < 1) rb = 1;
    if (rb > w->rows) rb = w->rows;
    return rb;
}

/* C[m][ldc] (first w.rows columns) = A[m][w.cols] . W^T. */
static int gemm_nt(vox_backend *be, float *C, int ldc, const float *A, int m, const vox_mat *w) {
    int rows = (int)w->rows, cols = (int)w->cols;
    vox_blas_set_threads(be->n_threads);
    if (w->dtype == VOX_DT_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, rows, cols, 1.0f, A, cols,
                    (const float *)w->data, cols, 0.0f, C, ldc);
        return VOX_OK;
    }
    cpu_impl *im = cpu_of(be);
    int64_t rb = block_rows(be, w);
    int rc = cpu_scratch_reserve(be, &im->wbuf, (size_t)(rb * cols), "matmul");
    if (rc) return rc;
    for (int64_t r0 = 0; r0 < rows; r0 += rb) {
        int64_t nr = rows - r0 < rb ? rows - r0 : rb;
        convert_rows(be, im->wbuf.p, w, r0, nr);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, (int)nr, cols, 1.0f, A, cols,
                    im->wbuf.p, cols, 0.0f, C + r0, ldc);
    }
    return VOX_OK;
}

typedef struct {
    float *y;
    const float *bias;
    int64_t cols;
} bias_ctx;

static void bias_rows(void *vc, int64_t b, int64_t e) {
    bias_ctx *c = vc;
    for (int64_t r = b; r < e; r++) {
        float *yr = c->y + r * c->cols;
        for (int64_t i = 0; i < c->cols; i++) yr[i] += c->bias[i];
    }
}

#define GEMV_CHUNKED_MAX_N 32

/* matmul without argument checks (also used by conv1d). */
static int matmul_impl(vox_backend *be, float *y, const float *x, const vox_mat *w,
                       const float *bias, int n) {
    cpu_impl *im = cpu_of(be);
    /* bf16/f16 weights with a few rows: chunks of <= VOX_GEMV_MAX_N rows through the gemv read
     * the weights ceil(n / 8) times, less traffic than converting them to fp32 for sgemm
     * (read 2 bytes, write 4, read 4 per weight) up to GEMV_CHUNKED_MAX_N rows (measured on
     * [3072 x 3072] bf16, 2 threads: 3.0 vs 8.1 ms at 12 rows, 7.4 vs 8.3 at 32, 11.7 vs 9.0 at 48). */
    int max_gemv = w->dtype == VOX_DT_F32 ? VOX_GEMV_MAX_N : GEMV_CHUNKED_MAX_N;
    if (n <= max_gemv) {
        int chunks = (n + VOX_GEMV_MAX_N - 1) / VOX_GEMV_MAX_N;
        for (int c = 0, r0 = 0; c < chunks; c++) {
            int nr = (n - r0) / (chunks - c); /* balanced: 13 rows -> 6 + 7 */
            size_t need = vox_cpu_gemv_scratch(im->isa, w, nr);
            if (need) {
                int rc = cpu_scratch_reserve(be, &im->xbf, (need + 3) / 4, "matmul");
                if (rc) return rc;
            }
            vox_cpu_gemv(im->pool, im->isa, y + (int64_t)r0 * w->rows, x + (int64_t)r0 * w->cols,
                         w, bias, nr, need ? im->xbf.p : NULL);
            r0 += nr;
        }
        return VOX_OK;
    }
    int rc = gemm_nt(be, y, (int)w->rows, x, n, w);
    if (rc) return rc;
    if (bias) {
        bias_ctx c = {y, bias, w->rows};
        cpu_parallel_for(be, n, 1 + 65536 / w->rows, 1, bias_rows, &c);
    }
    return VOX_OK;
}

int cpu_matmul(vox_backend *be, float *y, const float *x, const vox_mat *w, const float *bias,
               int n) {
    int rc = cpu_check_mat(be, "matmul", w, "w");
    if (rc) return rc;
    if (n < 0) return cpu_arg_error(be, "matmul", "n = %d, expected >= 0", n);
    if (w->rows > INT_MAX || w->cols > INT_MAX)
        return cpu_arg_error(be, "matmul", "w is [%lld x %lld], larger than BLAS int",
                             (long long)w->rows, (long long)w->cols);
    if (n == 0) return VOX_OK;
    if (!y || !x) return cpu_arg_error(be, "matmul", "NULL buffer");
    return matmul_impl(be, y, x, w, bias, n);
}

/* ---- conv1d: im2col + matmul ---- */

typedef struct {
    float *col;
    const float *x;
    int t0, t_in, c_in, k, stride, left_pad;
} im2col_ctx;

static void im2col_range(void *vc, int64_t b, int64_t e) {
    im2col_ctx *c = vc;
    int64_t width = (int64_t)c->c_in * c->k;
    for (int64_t t = b; t < e; t++) {
        float *row = c->col + t * width;
        for (int j = 0; j < c->k; j++) {
            int64_t ti = (int64_t)(c->t0 + t) * c->stride + j - c->left_pad;
            if (ti < 0 || ti >= c->t_in) {
                for (int ci = 0; ci < c->c_in; ci++) row[(int64_t)ci * c->k + j] = 0.0f;
            } else {
                const float *src = c->x + ti * c->c_in;
                for (int ci = 0; ci < c->c_in; ci++) row[(int64_t)ci * c->k + j] = src[ci];
            }
        }
    }
}

int cpu_conv1d(vox_backend *be, float *y, const float *x, const vox_mat *w, const float *bias,
               int t_in, int c_in, int c_out, int k, int stride, int left_pad) {
    const char *op = "conv1d";
    int rc = cpu_check_mat(be, op, w, "w");
    if (rc) return rc;
    if (t_in < 0 || c_in <= 0 || c_out <= 0 || k <= 0 || stride <= 0 || left_pad < 0)
        return cpu_arg_error(be, op,
                             "t_in = %d, c_in = %d, c_out = %d, k = %d, stride = %d, left_pad = %d"
                             " (expected t_in, left_pad >= 0 and the others > 0)",
                             t_in, c_in, c_out, k, stride, left_pad);
    if (w->rows != c_out || w->cols != (int64_t)c_in * k)
        return cpu_arg_error(be, op, "w is [%lld x %lld], expected [%d x %lld] (c_out x c_in*k)",
                             (long long)w->rows, (long long)w->cols, c_out,
                             (long long)c_in * k);
    if (w->cols > INT_MAX) return cpu_arg_error(be, op, "c_in * k larger than BLAS int");
    int64_t span = (int64_t)t_in + left_pad - k;
    int t_out = span < 0 ? 0 : (int)(span / stride + 1);
    if (t_out == 0) return VOX_OK;
    if (!y || !x) return cpu_arg_error(be, op, "NULL buffer");
    if (k == 1 && stride == 1 && left_pad == 0) /* x already is the column matrix */
        return matmul_impl(be, y, x, w, bias, t_out);
    cpu_impl *im = cpu_of(be);
    int64_t width = (int64_t)c_in * k;
    int64_t tc = (int64_t)(im->col_floats / (size_t)width);
    if (tc < 1) tc = 1;
    if (tc > t_out) tc = t_out;
    rc = cpu_scratch_reserve(be, &im->col, (size_t)(tc * width), op);
    if (rc) return rc;
    for (int t0 = 0; t0 < t_out; t0 += (int)tc) {
        int nt = t_out - t0 < tc ? t_out - t0 : (int)tc;
        im2col_ctx c = {im->col.p, x, t0, t_in, c_in, k, stride, left_pad};
        cpu_parallel_for(be, nt, 1 + 65536 / width, 1, im2col_range, &c);
        rc = matmul_impl(be, y + (int64_t)t0 * c_out, im->col.p, w, bias, nt);
        if (rc) return rc;
    }
    return VOX_OK;
}

/* ---- conv_transpose1d: x . W then col2im ---- */

/* Z[m][w.cols] = A[m][w.rows] . W for an f32 W or a converted block sequence. */
static int gemm_nn(vox_backend *be, float *Z, const float *A, int m, const vox_mat *w,
                   int *w_cached) {
    int rows = (int)w->rows, cols = (int)w->cols;
    vox_blas_set_threads(be->n_threads);
    if (w->dtype == VOX_DT_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, cols, rows, 1.0f, A, rows,
                    (const float *)w->data, cols, 0.0f, Z, cols);
        return VOX_OK;
    }
    cpu_impl *im = cpu_of(be);
    int64_t rb = block_rows(be, w);
    int rc = cpu_scratch_reserve(be, &im->wbuf, (size_t)(rb * cols), "conv_transpose1d");
    if (rc) return rc;
    for (int64_t r0 = 0; r0 < rows; r0 += rb) {
        int64_t nr = rows - r0 < rb ? rows - r0 : rb;
        /* when the whole W fits one block it stays converted across time chunks */
        if (!(rb == rows && *w_cached)) convert_rows(be, im->wbuf.p, w, r0, nr);
        if (rb == rows) *w_cached = 1;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, cols, (int)nr, 1.0f, A + r0,
                    rows, im->wbuf.p, cols, r0 == 0 ? 0.0f : 1.0f, Z, cols);
    }
    return VOX_OK;
}

typedef struct {
    float *y;
    const float *z;
    int t0, nt, c_out, k, stride;
} col2im_ctx;

/* Adds the chunk's contributions to output rows [b, e) of y (indices relative to the first
 * output row the chunk touches), so workers own disjoint output rows. */
static void col2im_range(void *vc, int64_t b, int64_t e) {
    col2im_ctx *c = vc;
    int64_t base = (int64_t)c->t0 * c->stride, zw = (int64_t)c->c_out * c->k;
    for (int64_t ro = b; ro < e; ro++) {
        float *yr = c->y + (base + ro) * c->c_out;
        for (int j = 0; j < c->k; j++) {
            int64_t num = ro - j; /* ro = tl * stride + j with tl the chunk-local input frame */
            if (num < 0 || num % c->stride) continue;
            int64_t tl = num / c->stride;
            if (tl >= c->nt) continue;
            const float *zr = c->z + tl * zw + j;
            for (int co = 0; co < c->c_out; co++) yr[co] += zr[(int64_t)co * c->k];
        }
    }
}

int cpu_conv_transpose1d(vox_backend *be, float *y, const float *x, const vox_mat *w,
                         const float *bias, int t_in, int c_in, int c_out, int k, int stride) {
    const char *op = "conv_transpose1d";
    int rc = cpu_check_mat(be, op, w, "w");
    if (rc) return rc;
    if (t_in < 0 || c_in <= 0 || c_out <= 0 || k <= 0 || stride <= 0)
        return cpu_arg_error(be, op,
                             "t_in = %d, c_in = %d, c_out = %d, k = %d, stride = %d (expected "
                             "t_in >= 0 and the others > 0)",
                             t_in, c_in, c_out, k, stride);
    if (w->rows != c_in || w->cols != (int64_t)c_out * k)
        return cpu_arg_error(be, op, "w is [%lld x %lld], expected [%d x %lld] (c_in x c_out*k)",
                             (long long)w->rows, (long long)w->cols, c_in,
                             (long long)c_out * k);
    if (w->cols > INT_MAX) return cpu_arg_error(be, op, "c_out * k larger than BLAS int");
    if (t_in == 0) return VOX_OK;
    if (!y || !x) return cpu_arg_error(be, op, "NULL buffer");
    int64_t t_out = (int64_t)(t_in - 1) * stride + k;
    for (int64_t t = 0; t < t_out; t++) {
        float *yr = y + t * c_out;
        if (bias) memcpy(yr, bias, (size_t)c_out * sizeof(float));
        else memset(yr, 0, (size_t)c_out * sizeof(float));
    }
    cpu_impl *im = cpu_of(be);
    int64_t zw = (int64_t)c_out * k;
    int64_t tc = (int64_t)(im->col_floats / (size_t)zw);
    if (tc < 1) tc = 1;
    if (tc > t_in) tc = t_in;
    rc = cpu_scratch_reserve(be, &im->col, (size_t)(tc * zw), op);
    if (rc) return rc;
    int w_cached = 0;
    for (int t0 = 0; t0 < t_in; t0 += (int)tc) {
        int nt = t_in - t0 < tc ? t_in - t0 : (int)tc;
        rc = gemm_nn(be, im->col.p, x + (int64_t)t0 * c_in, nt, w, &w_cached);
        if (rc) return rc;
        col2im_ctx c = {y, im->col.p, t0, nt, c_out, k, stride};
        int64_t span = (int64_t)(nt - 1) * stride + k; /* output rows this chunk touches */
        cpu_parallel_for(be, span, 1 + 65536 / c_out, 1, col2im_range, &c);
    }
    return VOX_OK;
}
