/* ops_cpu.c - the small ops of the CPU backend: element-wise math, RMSNorm, RoPE, softmax,
 * embedding lookup and argmax. Per-element math comes from vox_hd.h (the same code the CUDA
 * kernels and the reference loops run). Large inputs are split over the pool's workers in
 * contiguous ranges; small ones run on the calling thread. */
#include <math.h>
#include <string.h>

#include "cpu_backend.h"
#include "../vox_hd.h"

/* Below this many elements an element-wise op runs on one thread (pool wake-up costs a few
 * microseconds; 32 Ki floats of erff/expf take ~100 us). */
#define PAR_MIN_ELEMS 32768
#define PAR_ALIGN 16 /* 64-byte cache lines of floats */

/* ---- element-wise ---- */

typedef struct {
    float *y;
    const float *a, *b;
    float s;
    int64_t cols; /* mul_rows: length of the broadcast vector b */
} ew_ctx;

static void swiglu_range(void *vc, int64_t b, int64_t e) {
    ew_ctx *c = vc;
    for (int64_t i = b; i < e; i++) c->y[i] = vox_swiglu(c->a[i], c->b[i]);
}
static void silu_range(void *vc, int64_t b, int64_t e) {
    ew_ctx *c = vc;
    for (int64_t i = b; i < e; i++) c->y[i] = vox_silu(c->a[i]);
}
static void gelu_range(void *vc, int64_t b, int64_t e) {
    ew_ctx *c = vc;
    for (int64_t i = b; i < e; i++) c->y[i] = vox_gelu(c->a[i]);
}
static void add_range(void *vc, int64_t b, int64_t e) {
    ew_ctx *c = vc;
    float *y = c->y;
    const float *x0 = c->a, *x1 = c->b;
    for (int64_t i = b; i < e; i++) y[i] = x0[i] + x1[i];
}
static void mul_range(void *vc, int64_t b, int64_t e) {
    ew_ctx *c = vc;
    float *y = c->y;
    const float *x0 = c->a, *x1 = c->b;
    for (int64_t i = b; i < e; i++) y[i] = x0[i] * x1[i];
}
static void scale_range(void *vc, int64_t b, int64_t e) {
    ew_ctx *c = vc;
    float *y = c->y, s = c->s;
    const float *x0 = c->a;
    for (int64_t i = b; i < e; i++) y[i] = x0[i] * s;
}

static void mul_rows_range(void *vc, int64_t b, int64_t e) {
    ew_ctx *c = vc;
    for (int64_t i = b; i < e; i++) c->y[i] = vox_mul_rows_elem(c->a, c->b, i, c->cols);
}

static int ew_run(vox_backend *be, const char *op, float *y, const float *a, const float *b,
                  int need_b, float s, int64_t n, cpu_range_fn fn) {
    if (n < 0) return cpu_arg_error(be, op, "n = %lld, expected >= 0", (long long)n);
    if (n == 0) return VOX_OK;
    if (!y || !a || (need_b && !b)) return cpu_arg_error(be, op, "NULL buffer");
    ew_ctx c = {y, a, b, s, 0};
    cpu_parallel_for(be, n, PAR_MIN_ELEMS, PAR_ALIGN, fn, &c);
    return VOX_OK;
}

int cpu_swiglu(vox_backend *be, float *y, const float *gate, const float *up, int64_t n) {
    return ew_run(be, "swiglu", y, gate, up, 1, 0.0f, n, swiglu_range);
}
int cpu_silu(vox_backend *be, float *y, const float *x, int64_t n) {
    return ew_run(be, "silu", y, x, NULL, 0, 0.0f, n, silu_range);
}
int cpu_gelu(vox_backend *be, float *y, const float *x, int64_t n) {
    return ew_run(be, "gelu", y, x, NULL, 0, 0.0f, n, gelu_range);
}
int cpu_add(vox_backend *be, float *y, const float *a, const float *b, int64_t n) {
    return ew_run(be, "add", y, a, b, 1, 0.0f, n, add_range);
}
int cpu_mul(vox_backend *be, float *y, const float *a, const float *b, int64_t n) {
    return ew_run(be, "mul", y, a, b, 1, 0.0f, n, mul_range);
}
int cpu_scale(vox_backend *be, float *y, const float *x, float s, int64_t n) {
    return ew_run(be, "scale", y, x, NULL, 0, s, n, scale_range);
}

int cpu_mul_rows(vox_backend *be, float *y, const float *x, const float *s, int64_t rows,
                 int64_t cols) {
    const char *op = "mul_rows";
    if (rows < 0 || cols < 0)
        return cpu_arg_error(be, op, "rows = %lld, cols = %lld, expected >= 0", (long long)rows,
                             (long long)cols);
    if (rows == 0 || cols == 0) return VOX_OK;
    if (!y || !x || !s) return cpu_arg_error(be, op, "NULL buffer");
    if (rows > INT64_MAX / cols)
        return cpu_arg_error(be, op, "rows * cols overflows (%lld x %lld)", (long long)rows,
                             (long long)cols);
    ew_ctx c = {y, x, s, 0.0f, cols};
    cpu_parallel_for(be, rows * cols, PAR_MIN_ELEMS, PAR_ALIGN, mul_rows_range, &c);
    return VOX_OK;
}

/* ---- RMSNorm: rows in parallel, sum of squares in double ---- */

typedef struct {
    float *y;
    const float *x, *w;
    int dim;
    float eps;
} rms_ctx;

static void rms_rows(void *vc, int64_t b, int64_t e) {
    rms_ctx *c = vc;
    int dim = c->dim;
    for (int64_t r = b; r < e; r++) {
        const float *xr = c->x + r * dim;
        float *yr = c->y + r * dim;
        /* four independent double partial sums (no serial dependency on one adder) */
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int d = 0;
        for (; d + 4 <= dim; d += 4) {
            s0 += (double)xr[d] * xr[d];
            s1 += (double)xr[d + 1] * xr[d + 1];
            s2 += (double)xr[d + 2] * xr[d + 2];
            s3 += (double)xr[d + 3] * xr[d + 3];
        }
        for (; d < dim; d++) s0 += (double)xr[d] * xr[d];
        float inv = vox_rms_inv((float)((s0 + s1) + (s2 + s3)), dim, c->eps);
        if (c->w)
            for (d = 0; d < dim; d++) yr[d] = xr[d] * inv * c->w[d];
        else
            for (d = 0; d < dim; d++) yr[d] = xr[d] * inv;
    }
}

int cpu_rmsnorm(vox_backend *be, float *y, const float *x, const float *w, int n, int dim,
                float eps) {
    if (n < 0 || dim <= 0)
        return cpu_arg_error(be, "rmsnorm", "n = %d, dim = %d; expected n >= 0, dim > 0", n, dim);
    if (n == 0) return VOX_OK;
    if (!y || !x) return cpu_arg_error(be, "rmsnorm", "NULL buffer");
    rms_ctx c = {y, x, w, dim, eps};
    cpu_parallel_for(be, n, 1 + PAR_MIN_ELEMS / dim, 1, rms_rows, &c);
    return VOX_OK;
}

/* ---- RoPE: per row, each pair's cos/sin computed once and applied to all heads ---- */

#define ROPE_MAX_PAIRS 1024

typedef struct {
    float *x;
    int n_heads, head_dim;
    int64_t pos0;
    const float *inv_freq;
} rope_ctx;

static void rope_rows(void *vc, int64_t b, int64_t e) {
    rope_ctx *c = vc;
    int half = c->head_dim / 2, row = c->n_heads * c->head_dim;
    for (int64_t i = b; i < e; i++) {
        int pos = (int)(c->pos0 + i);
        float *xr = c->x + i * row;
        for (int j = 0; j < half; j++) {
            /* the arithmetic of vox_rope_pair, with cos/sin shared by the heads */
            float cs, sn;
            vox_rope_cs(pos, c->inv_freq[j], &cs, &sn);
            for (int h = 0; h < c->n_heads; h++) {
                float *p = xr + (int64_t)h * c->head_dim + 2 * j;
                vox_rope_rotate(&p[0], &p[1], cs, sn);
            }
        }
    }
}

int cpu_rope(vox_backend *be, float *x, int n, int n_heads, int head_dim, int64_t pos0,
             float theta) {
    if (n < 0 || n_heads <= 0 || head_dim <= 0 || head_dim % 2 || head_dim / 2 > ROPE_MAX_PAIRS)
        return cpu_arg_error(be, "rope",
                             "n = %d, n_heads = %d, head_dim = %d; expected n >= 0, n_heads > 0, "
                             "even head_dim in 2..%d",
                             n, n_heads, head_dim, 2 * ROPE_MAX_PAIRS);
    if (pos0 < 0 || pos0 + n > INT32_MAX)
        return cpu_arg_error(be, "rope", "positions %lld..%lld outside 0..%d", (long long)pos0,
                             (long long)(pos0 + n - 1), INT32_MAX);
    if (n == 0) return VOX_OK;
    if (!x) return cpu_arg_error(be, "rope", "NULL buffer");
    float inv_freq[ROPE_MAX_PAIRS];
    for (int j = 0; j < head_dim / 2; j++) inv_freq[j] = vox_rope_inv_freq(j, head_dim, theta);
    rope_ctx c = {x, n_heads, head_dim, pos0, inv_freq};
    cpu_parallel_for(be, n, 1 + 4096 / (n_heads * head_dim / 2 + 1), 1, rope_rows, &c);
    return VOX_OK;
}

/* ---- softmax: rows in parallel; max-subtracted, exp in float, sum in double ---- */

typedef struct {
    float *y;
    const float *x;
    int cols;
} sm_ctx;

static void softmax_rows(void *vc, int64_t b, int64_t e) {
    sm_ctx *c = vc;
    int cols = c->cols;
    for (int64_t r = b; r < e; r++) {
        const float *xr = c->x + r * cols;
        float *yr = c->y + r * cols;
        float mx = xr[0];
        for (int i = 1; i < cols; i++)
            if (xr[i] > mx) mx = xr[i];
        double sum = 0.0;
        for (int i = 0; i < cols; i++) {
            float ex = expf(xr[i] - mx);
            yr[i] = ex;
            sum += ex;
        }
        float inv = (float)(1.0 / sum);
        for (int i = 0; i < cols; i++) yr[i] *= inv;
    }
}

int cpu_softmax(vox_backend *be, float *y, const float *x, int rows, int cols) {
    if (rows < 0 || cols <= 0)
        return cpu_arg_error(be, "softmax", "rows = %d, cols = %d; expected rows >= 0, cols > 0",
                             rows, cols);
    if (rows == 0) return VOX_OK;
    if (!y || !x) return cpu_arg_error(be, "softmax", "NULL buffer");
    sm_ctx c = {y, x, cols};
    cpu_parallel_for(be, rows, 1 + PAR_MIN_ELEMS / cols, 1, softmax_rows, &c);
    return VOX_OK;
}

/* ---- embedding lookup ---- */

int cpu_embed(vox_backend *be, float *y, const vox_mat *table, const int32_t *ids_host, int n) {
    int rc = cpu_check_mat(be, "embed", table, "table");
    if (rc) return rc;
    if (n < 0) return cpu_arg_error(be, "embed", "n = %d, expected >= 0", n);
    if (n == 0) return VOX_OK;
    if (!y || !ids_host) return cpu_arg_error(be, "embed", "NULL buffer");
    for (int i = 0; i < n; i++) /* check every id before writing anything */
        if (ids_host[i] < 0 || ids_host[i] >= table->rows)
            return cpu_arg_error(be, "embed", "id %d at index %d is outside the table [0, %lld)",
                                 (int)ids_host[i], i, (long long)table->rows);
    int64_t cols = table->cols;
    for (int i = 0; i < n; i++) {
        float *yr = y + (int64_t)i * cols;
        int64_t off = (int64_t)ids_host[i] * cols;
        if (table->dtype == VOX_DT_F32) {
            memcpy(yr, (const float *)table->data + off, (size_t)cols * sizeof(float));
        } else if (table->dtype == VOX_DT_BF16) {
            const uint16_t *src = (const uint16_t *)table->data + off;
            for (int64_t c = 0; c < cols; c++) yr[c] = vox_bf16_to_f32(src[c]);
        } else {
            const uint16_t *src = (const uint16_t *)table->data + off;
            for (int64_t c = 0; c < cols; c++) yr[c] = vox_f16_to_f32(src[c]);
        }
    }
    return VOX_OK;
}

/* ---- argmax: first maximum, NaN skipped, all-NaN row -> 0 ---- */

int cpu_argmax(vox_backend *be, int32_t *out_host, const float *x, int rows, int cols) {
    if (rows < 0 || cols <= 0)
        return cpu_arg_error(be, "argmax", "rows = %d, cols = %d; expected rows >= 0, cols > 0",
                             rows, cols);
    if (rows == 0) return VOX_OK;
    if (!out_host || !x) return cpu_arg_error(be, "argmax", "NULL buffer");
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (int64_t)r * cols;
        int best = -1;
        float bv = 0.0f;
        for (int c = 0; c < cols; c++) {
            float v = xr[c];
            /* a NaN never wins; later equal values do not replace the first maximum */
            if (vox_argmax_better(v, c, bv, best)) {
                best = c;
                bv = v;
            }
        }
        out_host[r] = best < 0 ? 0 : best;
    }
    return VOX_OK;
}
