/* vox-selftest - run every backend op on random inputs and compare with an expectation.
 *
 *   vox-selftest --device cpu|cuda|auto [--threads N] [--seed S] [--verbose]
 *
 * On the CPU backend the expectation is the plain reference loops (kernels/vox_ref.h, sums in
 * double). On the CUDA backend it is the CPU backend (itself tested against the reference loops
 * by tests/test_ops.c and by `--device cpu`), so tolerances of inexact ops are doubled: both
 * sides may be off by the single-backend bound in opposite directions.
 *
 * Output: the backend's describe() line, then one line per op (memory, matmul, rmsnorm, rope,
 * kv_write, attention, attention_alibi, swiglu, silu, gelu, softmax, add, mul, scale, mul_rows, conv1d,
 * conv_transpose1d, embed, argmax, logmel): cases run, max abs error, max rel error (over elements
 * with |expected| > 1e-6), the tolerance, PASS or FAIL. Argument-error paths (bad dtype, ids
 * out of range, out-of-order ring writes, evicted ring) are checked on the op's line.
 *
 * Exit status: 0 all pass, 1 any failure, 2 the device cannot be created (one line on stderr
 * with the reason, e.g. the CUDA error text), 3 usage.
 *
 * Tolerances (u = 2^-24, k = 1 against the reference loops, 2 against the CPU backend):
 *   matmul, conv1d, conv_transpose1d  k ((K + 2) u sum|x w| + 1e-6), K terms per output
 *   add, mul, scale, mul_rows, silu, swiglu  k 1e-6 |ref|
 *   gelu                              k (1e-6 |ref| + 2e-7 |x|)  (erff near -1: absolute error)
 *   rmsnorm, softmax                  k 2e-6 |ref| (+ 1e-12 for softmax)
 *   rope                              k 1e-6 (|a| + |b|) per pair
 *   attention, attention_alibi        k 3e-5 absolute (values in [-1, 1])
 *   memory, kv_write, embed, argmax   exact
 *   logmel                            k 2e-5 absolute (features = log10(energy) / 4 of white
 *                                     noise; the reference is a direct DFT in double)
 * When the CPU backend runs its AVX-512 BF16 matvec (describe() says "matvec avx512bf16"), each
 * fp32 activation is split into two bf16 (hi + lo, 16 significant bits), so each product may
 * be off by 2^-16 |x w| more: the dot-product tolerances get that slack (as in test_ops.c). */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_backend.h"
#include "cpu/vox_blas.h"
#include "vox_hd.h"
#include "vox_mel.h"
#include "vox_mel_hd.h"
#include "vox_ref.h"
#include "vox_testdata.h"

#define U24 5.9604644775390625e-8 /* 2^-24 */

/* Random inputs come from vox_testdata.h (splitmix64, shared with tests/test_ops.c). */

static void *xcalloc(int64_t n, size_t sz) {
    void *p = calloc((size_t)(n > 0 ? n : 1), sz);
    if (!p) {
        fprintf(stderr, "vox-selftest: out of memory\n");
        exit(2);
    }
    return p;
}

/* ---- results: one per op ---- */

typedef struct {
    const char *name;
    const char *tol;
    long cases, fails;
    double max_abs, max_rel;
    char first[300]; /* the first failure */
} result;

typedef struct {
    vox_backend *be;  /* under test */
    vox_backend *cpu; /* expectation backend, or NULL: reference loops */
    vox_rng rng;
    int verbose;
    double k;     /* tolerance multiplier */
    double slack; /* extra relative slack per product of the CPU's AVX-512 BF16 matvec */
} st_t;

static void fail(result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(result *r, const char *fmt, ...) {
    r->fails++;
    if (r->first[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->first, sizeof r->first, fmt, ap);
    va_end(ap);
}

/* Compare got with exp: |got - exp| <= rel |exp| + abs + sk * scale[i] (scale may be NULL). */
static void cmp(st_t *st, result *r, const char *what, const float *got, const float *exp,
                int64_t n, double rel, double abs, const float *scale, double sk) {
    int64_t bad = -1;
    double worst = 0, worst_rel = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)exp[i]);
        double tol = rel * fabs((double)exp[i]) + abs + (scale ? sk * scale[i] : 0.0);
        if (!(e <= tol) && bad < 0) bad = i;
        if (e > worst || e != e) worst = e;
        if (fabs((double)exp[i]) > 1e-6 && e / fabs((double)exp[i]) > worst_rel)
            worst_rel = e / fabs((double)exp[i]);
    }
    r->cases++;
    if (worst > r->max_abs || worst != worst) r->max_abs = worst;
    if (worst_rel > r->max_rel) r->max_rel = worst_rel;
    if (bad >= 0)
        fail(r, "%s: element %lld is %.9g, expected %.9g", what, (long long)bad, got[bad],
             exp[bad]);
    if (st->verbose)
        printf("  %-16s %-52s max_abs %.3g %s\n", r->name, what, worst, bad >= 0 ? "FAIL" : "ok");
}

static void cmp_exact_bytes(st_t *st, result *r, const char *what, const void *got,
                            const void *exp, size_t bytes) {
    r->cases++;
    int ok = memcmp(got, exp, bytes) == 0;
    if (!ok) fail(r, "%s: contents differ", what);
    if (st->verbose) printf("  %-16s %-52s %s\n", r->name, what, ok ? "ok" : "FAIL");
}

static void check_rc(result *r, vox_backend *be, int rc, const char *what) {
    if (rc != VOX_OK) fail(r, "%s: rc %d: %s", what, rc, be->err.msg);
}

/* ---- device buffers: a small set freed together ---- */

#define DSET_MAX 16
typedef struct {
    vox_backend *be;
    void *p[DSET_MAX];
    int n, failed;
} dset;

/* Backend memory of `bytes`, holding host[0..bytes) when host != NULL (else zero). */
static void *dput(dset *d, const void *host, size_t bytes) {
    if (d->n >= DSET_MAX) {
        d->failed = 1;
        return NULL;
    }
    void *p = d->be->ops->alloc(d->be, bytes ? bytes : 4);
    if (!p) {
        d->failed = 1;
        return NULL;
    }
    d->p[d->n++] = p;
    if (host && bytes && d->be->ops->upload(d->be, p, host, bytes) != VOX_OK) d->failed = 1;
    return p;
}
static void dget(dset *d, void *host, const void *dev, size_t bytes) {
    if (!dev || d->be->ops->download(d->be, host, dev, bytes) != VOX_OK) d->failed = 1;
}
static void dfree(dset *d) {
    for (int i = 0; i < d->n; i++) d->be->ops->free(d->be, d->p[i]);
    d->n = 0;
}
static int dfinish(dset *d, result *r, const char *what) {
    int bad = d->failed;
    if (bad) fail(r, "%s: backend memory: %s", what, d->be->err.msg);
    dfree(d);
    d->failed = 0;
    return bad;
}

/* ---- weights ---- */

/* The same matrix in backend memory of b. */
static vox_mat wput(dset *d, const vox_test_wmat *w) {
    vox_mat m = w->m;
    m.data = dput(d, w->data, (size_t)(w->m.rows * w->m.cols) * vox_dtype_size(w->m.dtype));
    return m;
}

/* ---- op runners: host in, host out, on backend b ---- */

static int run_matmul(vox_backend *b, result *r, float *y, const float *x, const vox_test_wmat *w,
                      const float *bias, int n) {
    dset d = {b, {0}, 0, 0};
    float *dx = dput(&d, x, (size_t)n * w->m.cols * sizeof(float));
    vox_mat dw = wput(&d, w);
    float *db = bias ? dput(&d, bias, (size_t)w->m.rows * sizeof(float)) : NULL;
    float *dy = dput(&d, NULL, (size_t)n * w->m.rows * sizeof(float));
    int rc = d.failed ? VOX_OK : b->ops->matmul(b, dy, dx, &dw, db, n);
    check_rc(r, b, rc, "matmul");
    if (!d.failed) dget(&d, y, dy, (size_t)n * w->m.rows * sizeof(float));
    return dfinish(&d, r, "matmul") || rc;
}

static int run_conv1d(vox_backend *b, result *r, float *y, const float *x, const vox_test_wmat *w,
                      const float *bias, int t_in, int c_in, int c_out, int k, int stride,
                      int pad) {
    int t_out = vox_ref_conv1d_out_len(t_in, k, stride, pad);
    dset d = {b, {0}, 0, 0};
    float *dx = dput(&d, x, (size_t)t_in * c_in * sizeof(float));
    vox_mat dw = wput(&d, w);
    float *db = bias ? dput(&d, bias, (size_t)c_out * sizeof(float)) : NULL;
    float *dy = dput(&d, NULL, (size_t)t_out * c_out * sizeof(float));
    int rc = d.failed ? VOX_OK
                      : b->ops->conv1d(b, dy, dx, &dw, db, t_in, c_in, c_out, k, stride, pad);
    check_rc(r, b, rc, "conv1d");
    if (!d.failed) dget(&d, y, dy, (size_t)t_out * c_out * sizeof(float));
    return dfinish(&d, r, "conv1d") || rc;
}

static int run_convt(vox_backend *b, result *r, float *y, const float *x, const vox_test_wmat *w,
                     const float *bias, int t_in, int c_in, int c_out, int k, int stride) {
    int t_out = (t_in - 1) * stride + k;
    dset d = {b, {0}, 0, 0};
    float *dx = dput(&d, x, (size_t)t_in * c_in * sizeof(float));
    vox_mat dw = wput(&d, w);
    float *db = bias ? dput(&d, bias, (size_t)c_out * sizeof(float)) : NULL;
    float *dy = dput(&d, NULL, (size_t)t_out * c_out * sizeof(float));
    int rc = d.failed ? VOX_OK
                      : b->ops->conv_transpose1d(b, dy, dx, &dw, db, t_in, c_in, c_out, k, stride);
    check_rc(r, b, rc, "conv_transpose1d");
    if (!d.failed) dget(&d, y, dy, (size_t)t_out * c_out * sizeof(float));
    return dfinish(&d, r, "conv_transpose1d") || rc;
}

/* ---- memory ---- */

static void test_memory(st_t *st, result *r) {
    vox_backend *be = st->be;
    const int64_t n = 1000003; /* odd size */
    float *h = vox_test_falloc(n), *back = vox_test_falloc(n), *zero = vox_test_falloc(n);
    vox_rng_fill(&st->rng, h, n, 1.0f);
    dset d = {be, {0}, 0, 0};
    float *a = dput(&d, NULL, (size_t)n * sizeof(float));
    float *b = dput(&d, NULL, (size_t)n * sizeof(float));
    if (!d.failed) {
        dget(&d, back, a, (size_t)n * sizeof(float));
        cmp_exact_bytes(st, r, "alloc is zero-filled", back, zero, (size_t)n * sizeof(float));
        check_rc(r, be, be->ops->upload(be, a, h, (size_t)n * sizeof(float)), "upload");
        check_rc(r, be, be->ops->copy(be, b, a, (size_t)n * sizeof(float)), "copy");
        check_rc(r, be, be->ops->sync(be), "sync");
        dget(&d, back, b, (size_t)n * sizeof(float));
        cmp_exact_bytes(st, r, "upload, copy, download", back, h, (size_t)n * sizeof(float));
        /* zero a middle range at an odd byte offset */
        size_t off = 4 * 1001 + 1, len = 4 * 777 + 3;
        check_rc(r, be, be->ops->zero(be, (char *)b + off, len), "zero");
        memset((char *)h + off, 0, len);
        dget(&d, back, b, (size_t)n * sizeof(float));
        cmp_exact_bytes(st, r, "zero of a sub-range", back, h, (size_t)n * sizeof(float));
        /* a sub-range copy between buffers at offsets */
        check_rc(r, be, be->ops->copy(be, a + 5, b + 17, 4 * 999), "copy (offsets)");
        float part[999];
        dget(&d, part, a + 5, sizeof part);
        cmp_exact_bytes(st, r, "copy of a sub-range", part, h + 17, sizeof part);
    }
    dfinish(&d, r, "memory");
    free(h), free(back), free(zero);
}

/* ---- matmul ---- */

static void test_matmul(st_t *st, result *r) {
    static const vox_dtype dts[] = {VOX_DT_F32, VOX_DT_BF16, VOX_DT_F16};
    static const struct {
        int rows, cols;
    } shapes[] = {{37, 29}, {64, 256}, {67, 1031}, {5, 3}};
    static const int ns[] = {1, 2, 3, 8, 9, 33};
    for (size_t di = 0; di < 3; di++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                int n = ns[ni], rows = shapes[s].rows, cols = shapes[s].cols;
                int use_bias = (ni + s) % 2;
                vox_test_wmat w = vox_test_wmat_make(&st->rng, dts[di], rows, cols, 1.0f);
                vox_test_wmat wa = vox_test_wmat_abs(&w);
                float *x = vox_test_falloc((int64_t)n * cols), *xa = vox_test_falloc((int64_t)n * cols);
                float *b = vox_test_falloc(rows), *ba = vox_test_falloc(rows);
                float *y = vox_test_falloc((int64_t)n * rows), *ex = vox_test_falloc((int64_t)n * rows);
                float *absref = vox_test_falloc((int64_t)n * rows);
                vox_rng_fill(&st->rng, x, (int64_t)n * cols, 1.0f);
                vox_rng_fill(&st->rng, b, rows, 1.0f);
                vox_test_absv(xa, x, (int64_t)n * cols);
                vox_test_absv(ba, b, rows);
                const float *bias = use_bias ? b : NULL;
                int bad = run_matmul(st->be, r, y, x, &w, bias, n);
                if (st->cpu) bad |= run_matmul(st->cpu, r, ex, x, &w, bias, n);
                else vox_ref_matmul(ex, x, &w.m, bias, n);
                vox_ref_matmul(absref, xa, &wa.m, use_bias ? ba : NULL, n);
                char what[128];
                snprintf(what, sizeof what, "%s n=%d [%d x %d] bias=%d",
                         vox_dtype_name(dts[di]), n, rows, cols, use_bias);
                if (!bad)
                    cmp(st, r, what, y, ex, (int64_t)n * rows, 0.0, st->k * 1e-6, absref,
                        st->k * (cols + 2) * U24 + st->slack);
                free(w.data), free(wa.data), free(x), free(xa), free(b), free(ba), free(y);
                free(ex), free(absref);
            }
    /* an unsupported dtype is an argument error */
    static const int32_t dummy[4] = {0};
    vox_mat bad = {dummy, VOX_DT_I32, 2, 2};
    float y[4], x[4] = {0};
    int rc = st->be->ops->matmul(st->be, y, x, &bad, NULL, 1);
    r->cases++;
    if (rc != VOX_ERR_ARG) fail(r, "matmul with an I32 weight: rc %d, expected VOX_ERR_ARG", rc);
}

/* ---- rmsnorm ---- */

static void test_rmsnorm(st_t *st, result *r) {
    static const struct {
        int n, dim;
    } sh[] = {{1, 7}, {3, 1280}, {5, 3072}, {17, 1000}};
    vox_backend *be = st->be;
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++)
        for (int use_w = 0; use_w < 2; use_w++) {
            int n = sh[s].n, dim = sh[s].dim;
            int64_t len = (int64_t)n * dim;
            float *x = vox_test_falloc(len), *w = vox_test_falloc(dim), *y = vox_test_falloc(len), *ex = vox_test_falloc(len);
            vox_rng_fill(&st->rng, x, len, 3.0f);
            vox_rng_fill(&st->rng, w, dim, 2.0f);
            dset d = {be, {0}, 0, 0};
            float *dx = dput(&d, x, (size_t)len * 4), *dw = dput(&d, w, (size_t)dim * 4);
            float *dy = dput(&d, NULL, (size_t)len * 4);
            if (!d.failed) {
                check_rc(r, be, be->ops->rmsnorm(be, dy, dx, use_w ? dw : NULL, n, dim, 1e-5f),
                         "rmsnorm");
                /* in place on x: must give the same */
                check_rc(r, be, be->ops->rmsnorm(be, dx, dx, use_w ? dw : NULL, n, dim, 1e-5f),
                         "rmsnorm in place");
                dget(&d, y, dy, (size_t)len * 4);
            }
            float *yi = vox_test_falloc(len);
            if (!d.failed) dget(&d, yi, dx, (size_t)len * 4);
            int bad = dfinish(&d, r, "rmsnorm");
            if (st->cpu) st->cpu->ops->rmsnorm(st->cpu, ex, x, use_w ? w : NULL, n, dim, 1e-5f);
            else vox_ref_rmsnorm(ex, x, use_w ? w : NULL, n, dim, 1e-5f);
            char what[96];
            snprintf(what, sizeof what, "n=%d dim=%d w=%d", n, dim, use_w);
            if (!bad) cmp(st, r, what, y, ex, len, st->k * 2e-6, 1e-30, NULL, 0);
            snprintf(what, sizeof what, "in place n=%d dim=%d w=%d", n, dim, use_w);
            if (!bad) cmp(st, r, what, yi, ex, len, st->k * 2e-6, 1e-30, NULL, 0);
            free(x), free(w), free(y), free(ex), free(yi);
        }
}

/* ---- rope ---- */

static void test_rope(st_t *st, result *r) {
    static const struct {
        int n, heads, hd;
        int64_t pos0;
        float theta;
    } sh[] = {{1, 1, 2, 0, 10000.0f},
              {3, 4, 64, 17, 1e6f},
              {9, 32, 128, 5000, 1e6f},
              {4, 3, 10, 100000, 10000.0f}};
    vox_backend *be = st->be;
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        int n = sh[s].n, H = sh[s].heads, hd = sh[s].hd;
        int64_t len = (int64_t)n * H * hd;
        float *x = vox_test_falloc(len), *ex = vox_test_falloc(len), *y = vox_test_falloc(len), *scale = vox_test_falloc(len);
        vox_rng_fill(&st->rng, x, len, 1.0f);
        memcpy(ex, x, (size_t)len * 4);
        for (int64_t i = 0; i < len; i += 2) scale[i] = scale[i + 1] = fabsf(x[i]) + fabsf(x[i + 1]);
        dset d = {be, {0}, 0, 0};
        float *dx = dput(&d, x, (size_t)len * 4);
        if (!d.failed) {
            check_rc(r, be, be->ops->rope(be, dx, n, H, hd, sh[s].pos0, sh[s].theta), "rope");
            dget(&d, y, dx, (size_t)len * 4);
        }
        int bad = dfinish(&d, r, "rope");
        if (st->cpu) st->cpu->ops->rope(st->cpu, ex, n, H, hd, sh[s].pos0, sh[s].theta);
        else vox_ref_rope(ex, n, H, hd, sh[s].pos0, sh[s].theta);
        char what[96];
        snprintf(what, sizeof what, "n=%d heads=%d hd=%d pos0=%lld", n, H, hd,
                 (long long)sh[s].pos0);
        if (!bad) cmp(st, r, what, y, ex, len, 0.0, 1e-30, scale, st->k * 1e-6);
        free(x), free(ex), free(y), free(scale);
    }
}

/* ---- kv_write and attention ---- */

typedef struct {
    int heads, kv_heads, hd, window;
    int64_t cap, total;
    const int *blocks; /* block sizes, cycled */
    int n_blocks;
} att_case;

/* A ring in backend memory of b (k and v from one dset). */
static int ring_make(dset *d, vox_kv *kv, int64_t cap, int kv_dim) {
    kv->cap = cap;
    kv->kv_dim = kv_dim;
    kv->end = 0;
    kv->k = dput(d, NULL, (size_t)(cap * kv_dim) * 4);
    kv->v = dput(d, NULL, (size_t)(cap * kv_dim) * 4);
    return d->failed;
}

/* alibi = 0: attention; 1: attention_alibi with slopes 2^(-8 (h+1) / heads) (the codec's),
 * whose window shows one key more, so its rings get one slot more (cap = window + nq). */
static void test_attention(st_t *st, result *rkv, result *ra, int alibi) {
    static const int b1[] = {64, 1, 17, 1, 1, 5};
    static const int b2[] = {4, 1, 1, 3, 2, 1};
    static const int b3[] = {8, 1, 1, 3};
    static const int b4[] = {1};
    const att_case cases[] = {
        /* ALiBi-codec-like: 8 MHA heads of 64, window 16, mixed blocks */
        {8, 8, 64, 16, 16 + 8 - 1, 120, b3, 4},
        /* MHA, unlimited window, long history: key splits on a GPU */
        {4, 4, 64, 0, 1024, 700, b1, 6},
        /* GQA 4:1, odd head size, window 16 with blocks of up to 4: the ring wraps ~20 times */
        {8, 2, 36, 16, 16 + 4 - 1, 330, b2, 6},
        /* decoder-like GQA 32/8, head_dim 128, window 100 */
        {32, 8, 128, 100, 100 + 8 - 1, 230, b3, 4},
        /* GQA 16:1 small head, window 5, single steps, cap exactly the window */
        {16, 1, 8, 5, 5, 200, b4, 1},
    };
    vox_backend *be = st->be;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        att_case cc = cases[ci];
        if (alibi) cc.cap++; /* window + 1 keys visible */
        const att_case *c = &cc;
        int kv_dim = c->kv_heads * c->hd, q_dim = c->heads * c->hd;
        int max_nq = 0;
        for (int i = 0; i < c->n_blocks; i++)
            if (c->blocks[i] > max_nq) max_nq = c->blocks[i];
        float scale = 1.0f / sqrtf((float)c->hd);
        /* expectation ring: host memory (reference loops and the CPU backend both take it) */
        vox_kv ek = {vox_test_falloc(c->cap * kv_dim), vox_test_falloc(c->cap * kv_dim), c->cap, kv_dim, 0};
        float *ring_back = vox_test_falloc(c->cap * kv_dim);
        float *q = vox_test_falloc((int64_t)max_nq * q_dim), *kk = vox_test_falloc((int64_t)max_nq * kv_dim);
        float *vv = vox_test_falloc((int64_t)max_nq * kv_dim);
        float *o = vox_test_falloc((int64_t)max_nq * q_dim), *eo = vox_test_falloc((int64_t)max_nq * q_dim);
        float *slopes = vox_test_falloc(c->heads);
        for (int h = 0; h < c->heads; h++)
            slopes[h] = (float)pow(2.0, -8.0 * (h + 1) / c->heads);
        dset d = {be, {0}, 0, 0};
        vox_kv dk;
        ring_make(&d, &dk, c->cap, kv_dim);
        float *dslopes = dput(&d, slopes, (size_t)c->heads * 4);
        float *dq = dput(&d, NULL, (size_t)max_nq * q_dim * 4);
        float *dkk = dput(&d, NULL, (size_t)max_nq * kv_dim * 4);
        float *dvv = dput(&d, NULL, (size_t)max_nq * kv_dim * 4);
        float *dout = dput(&d, NULL, (size_t)max_nq * q_dim * 4);
        double worst = 0;
        int64_t pos = 0;
        int bi = 0, first_bad = 1;
        while (!d.failed && pos < c->total) {
            int nq = c->blocks[bi++ % c->n_blocks];
            if (pos + nq > c->total) nq = (int)(c->total - pos);
            vox_rng_fill(&st->rng, q, (int64_t)nq * q_dim, 1.0f);
            vox_rng_fill(&st->rng, kk, (int64_t)nq * kv_dim, 1.0f);
            vox_rng_fill(&st->rng, vv, (int64_t)nq * kv_dim, 1.0f);
            be->ops->upload(be, dq, q, (size_t)nq * q_dim * 4);
            be->ops->upload(be, dkk, kk, (size_t)nq * kv_dim * 4);
            be->ops->upload(be, dvv, vv, (size_t)nq * kv_dim * 4);
            check_rc(rkv, be, be->ops->kv_write(be, &dk, dkk, dvv, nq, pos), "kv_write");
            int erc = st->cpu ? st->cpu->ops->kv_write(st->cpu, &ek, kk, vv, nq, pos)
                              : vox_ref_kv_write(&ek, kk, vv, nq, pos);
            if (erc) fail(rkv, "expectation kv_write rc %d", erc);
            if (alibi) {
                check_rc(ra, be,
                         be->ops->attention_alibi(be, dout, dq, nq, pos, &dk, c->heads,
                                                  c->kv_heads, c->hd, c->window, scale, dslopes),
                         "attention_alibi");
                if (st->cpu)
                    st->cpu->ops->attention_alibi(st->cpu, eo, q, nq, pos, &ek, c->heads,
                                                  c->kv_heads, c->hd, c->window, scale, slopes);
                else
                    vox_ref_attention_alibi(eo, q, nq, pos, &ek, c->heads, c->kv_heads, c->hd,
                                            c->window, scale, slopes);
            } else {
                check_rc(ra, be,
                         be->ops->attention(be, dout, dq, nq, pos, &dk, c->heads, c->kv_heads,
                                            c->hd, c->window, scale),
                         "attention");
                if (st->cpu)
                    st->cpu->ops->attention(st->cpu, eo, q, nq, pos, &ek, c->heads, c->kv_heads,
                                            c->hd, c->window, scale);
                else
                    vox_ref_attention(eo, q, nq, pos, &ek, c->heads, c->kv_heads, c->hd,
                                      c->window, scale);
            }
            dget(&d, o, dout, (size_t)nq * q_dim * 4);
            double tol = st->k * 3e-5;
            for (int64_t i = 0; i < (int64_t)nq * q_dim; i++) {
                double e = fabs((double)o[i] - eo[i]);
                if (e > worst || e != e) worst = e;
                if (!(e <= tol) && first_bad) {
                    first_bad = 0;
                    fail(ra, "heads %d/%d hd %d window %d: query %lld dim %lld is %.7g, expected "
                         "%.7g",
                         c->heads, c->kv_heads, c->hd, c->window,
                         (long long)(pos + i / q_dim), (long long)(i % q_dim), o[i], eo[i]);
                }
            }
            pos += nq;
        }
        ra->cases++;
        if (worst > ra->max_abs || worst != worst) ra->max_abs = worst;
        if (st->verbose)
            printf("  %-16s heads %d/%d hd %d window %d cap %lld positions %lld: max_abs %.3g\n",
                   ra->name, c->heads, c->kv_heads, c->hd, c->window, (long long)c->cap,
                   (long long)c->total, worst);
        /* the ring contents and end match the expectation exactly */
        if (!d.failed) {
            char what[96];
            snprintf(what, sizeof what, "ring k cap %lld after %lld positions", (long long)c->cap,
                     (long long)pos);
            dget(&d, ring_back, dk.k, (size_t)(c->cap * kv_dim) * 4);
            cmp_exact_bytes(st, rkv, what, ring_back, ek.k, (size_t)(c->cap * kv_dim) * 4);
            dget(&d, ring_back, dk.v, (size_t)(c->cap * kv_dim) * 4);
            snprintf(what, sizeof what, "ring v cap %lld after %lld positions", (long long)c->cap,
                     (long long)pos);
            cmp_exact_bytes(st, rkv, what, ring_back, ek.v, (size_t)(c->cap * kv_dim) * 4);
            rkv->cases++;
            if (dk.end != ek.end)
                fail(rkv, "ring end %lld, expected %lld", (long long)dk.end, (long long)ek.end);
            /* errors: a gap in positions; attention needing an evicted key */
            int64_t end0 = dk.end;
            int rc = be->ops->kv_write(be, &dk, dkk, dvv, 1, dk.end + 1);
            rkv->cases++;
            if (rc != VOX_ERR_ARG || dk.end != end0)
                fail(rkv, "kv_write with a gap: rc %d, expected VOX_ERR_ARG and end unchanged", rc);
            if (c->window > 0 && dk.end > c->cap) {
                rc = alibi ? be->ops->attention_alibi(be, dout, dq, 1, dk.end - c->cap - 1, &dk,
                                                      c->heads, c->kv_heads, c->hd, c->window,
                                                      scale, dslopes)
                           : be->ops->attention(be, dout, dq, 1, dk.end - c->cap - 1, &dk,
                                                c->heads, c->kv_heads, c->hd, c->window, scale);
                ra->cases++;
                if (rc != VOX_ERR_ARG)
                    fail(ra, "%s over an evicted ring position: rc %d, expected "
                         "VOX_ERR_ARG", ra->name, rc);
            }
            if (alibi && c->window > 0 && dk.end > c->window + 1) {
                /* one slot short of window + nq: the oldest visible key is gone */
                vox_kv short_ring = dk;
                short_ring.cap = c->window; /* holds end - window .. end - 1 */
                rc = be->ops->attention_alibi(be, dout, dq, 1, dk.end - 1, &short_ring, c->heads,
                                              c->kv_heads, c->hd, c->window, scale, dslopes);
                ra->cases++;
                if (rc != VOX_ERR_ARG)
                    fail(ra, "attention_alibi with cap = window: rc %d, expected VOX_ERR_ARG",
                         rc);
                rc = be->ops->attention_alibi(be, dout, dq, 1, dk.end - 1, &dk, c->heads,
                                              c->kv_heads, c->hd, c->window, scale, NULL);
                ra->cases++;
                if (rc != VOX_ERR_ARG)
                    fail(ra, "attention_alibi with NULL slopes: rc %d, expected VOX_ERR_ARG", rc);
            }
        }
        dfinish(&d, ra, ra->name);
        free(ek.k), free(ek.v), free(ring_back), free(q), free(kk), free(vv), free(o), free(eo);
        free(slopes);
    }
    /* a large block written at once: n > cap keeps only the last cap rows */
    if (!alibi) {
        int kv_dim = 12, n = 23;
        int64_t cap = 7;
        vox_kv ek = {vox_test_falloc(cap * kv_dim), vox_test_falloc(cap * kv_dim), cap, kv_dim, 0};
        float *kk = vox_test_falloc((int64_t)n * kv_dim), *vv = vox_test_falloc((int64_t)n * kv_dim);
        float *back = vox_test_falloc(cap * kv_dim);
        vox_rng_fill(&st->rng, kk, (int64_t)n * kv_dim, 1.0f);
        vox_rng_fill(&st->rng, vv, (int64_t)n * kv_dim, 1.0f);
        dset d = {be, {0}, 0, 0};
        vox_kv dk;
        ring_make(&d, &dk, cap, kv_dim);
        float *dkk = dput(&d, kk, (size_t)n * kv_dim * 4), *dvv = dput(&d, vv, (size_t)n * kv_dim * 4);
        if (!d.failed) {
            check_rc(rkv, be, be->ops->kv_write(be, &dk, dkk, dvv, 3, 0), "kv_write");
            check_rc(rkv, be, be->ops->kv_write(be, &dk, dkk + 3 * kv_dim, dvv + 3 * kv_dim, n - 3, 3),
                     "kv_write n > cap");
            if (st->cpu) {
                st->cpu->ops->kv_write(st->cpu, &ek, kk, vv, 3, 0);
                st->cpu->ops->kv_write(st->cpu, &ek, kk + 3 * kv_dim, vv + 3 * kv_dim, n - 3, 3);
            } else {
                vox_ref_kv_write(&ek, kk, vv, 3, 0);
                vox_ref_kv_write(&ek, kk + 3 * kv_dim, vv + 3 * kv_dim, n - 3, 3);
            }
            dget(&d, back, dk.k, (size_t)(cap * kv_dim) * 4);
            cmp_exact_bytes(st, rkv, "ring k, one block longer than cap", back, ek.k,
                            (size_t)(cap * kv_dim) * 4);
            dget(&d, back, dk.v, (size_t)(cap * kv_dim) * 4);
            cmp_exact_bytes(st, rkv, "ring v, one block longer than cap", back, ek.v,
                            (size_t)(cap * kv_dim) * 4);
        }
        dfinish(&d, rkv, "kv_write");
        free(ek.k), free(ek.v), free(kk), free(vv), free(back);
    }
}

/* ---- element-wise and softmax ---- */

enum { EW_SWIGLU, EW_SILU, EW_GELU, EW_ADD, EW_MUL, EW_SCALE, EW_SOFTMAX };

static void test_elementwise(st_t *st, result *r, int kind) {
    static const int64_t sizes[] = {1, 7, 1000, 65537};
    vox_backend *be = st->be;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int64_t n = sizes[si];
        int cols = kind == EW_SOFTMAX ? (int)(n < 1000 ? n : 1000 + (int)si) : 0;
        int rows = kind == EW_SOFTMAX ? (int)(n / cols) : 0;
        if (kind == EW_SOFTMAX) n = (int64_t)rows * cols;
        float *a = vox_test_falloc(n), *b = vox_test_falloc(n), *y = vox_test_falloc(n), *yi = vox_test_falloc(n), *ex = vox_test_falloc(n);
        float *xs = vox_test_falloc(n);
        float amp = kind == EW_SOFTMAX ? 20.0f : 8.0f;
        vox_rng_fill(&st->rng, a, n, amp);
        vox_rng_fill(&st->rng, b, n, 4.0f);
        vox_test_absv(xs, a, n);
        float s = 0.731f;
        dset d = {be, {0}, 0, 0};
        float *da = dput(&d, a, (size_t)n * 4), *db = dput(&d, b, (size_t)n * 4);
        float *dy = dput(&d, NULL, (size_t)n * 4);
        const vox_backend_ops *o = be->ops;
        if (!d.failed) {
            /* out of place, then in place on a */
            for (int pass = 0; pass < 2; pass++) {
                float *out = pass ? da : dy;
                int rc;
                switch (kind) {
                case EW_SWIGLU: rc = o->swiglu(be, out, da, db, n); break;
                case EW_SILU: rc = o->silu(be, out, da, n); break;
                case EW_GELU: rc = o->gelu(be, out, da, n); break;
                case EW_ADD: rc = o->add(be, out, da, db, n); break;
                case EW_MUL: rc = o->mul(be, out, da, db, n); break;
                case EW_SCALE: rc = o->scale(be, out, da, s, n); break;
                default: rc = o->softmax(be, out, da, rows, cols); break;
                }
                check_rc(r, be, rc, r->name);
                dget(&d, pass ? yi : y, out, (size_t)n * 4);
            }
        }
        int bad = dfinish(&d, r, r->name);
        if (st->cpu) {
            vox_backend *c = st->cpu;
            switch (kind) {
            case EW_SWIGLU: c->ops->swiglu(c, ex, a, b, n); break;
            case EW_SILU: c->ops->silu(c, ex, a, n); break;
            case EW_GELU: c->ops->gelu(c, ex, a, n); break;
            case EW_ADD: c->ops->add(c, ex, a, b, n); break;
            case EW_MUL: c->ops->mul(c, ex, a, b, n); break;
            case EW_SCALE: c->ops->scale(c, ex, a, s, n); break;
            default: c->ops->softmax(c, ex, a, rows, cols); break;
            }
        } else {
            switch (kind) {
            case EW_SWIGLU: vox_ref_swiglu(ex, a, b, n); break;
            case EW_SILU: vox_ref_silu(ex, a, n); break;
            case EW_GELU: vox_ref_gelu(ex, a, n); break;
            case EW_ADD: vox_ref_add(ex, a, b, n); break;
            case EW_MUL: vox_ref_mul(ex, a, b, n); break;
            case EW_SCALE: vox_ref_scale(ex, a, s, n); break;
            default: vox_ref_softmax(ex, a, rows, cols); break;
            }
        }
        double rel = kind == EW_SOFTMAX ? 2e-6 : 1e-6, abs = kind == EW_SOFTMAX ? 1e-12 : 1e-30;
        const float *scale = kind == EW_GELU ? xs : NULL;
        double sk = kind == EW_GELU ? st->k * 2e-7 : 0.0;
        char what[64];
        if (kind == EW_SOFTMAX) snprintf(what, sizeof what, "rows=%d cols=%d", rows, cols);
        else snprintf(what, sizeof what, "n=%lld", (long long)n);
        if (!bad) {
            cmp(st, r, what, y, ex, n, st->k * rel, abs, scale, sk);
            strncat(what, " in place", sizeof what - strlen(what) - 1);
            cmp(st, r, what, yi, ex, n, st->k * rel, abs, scale, sk);
        }
        free(a), free(b), free(y), free(yi), free(ex), free(xs);
    }
}

/* ---- mul_rows ---- */

static void test_mul_rows(st_t *st, result *r) {
    static const int64_t sh[][2] = {{1, 1}, {3, 7}, {17, 1000}, {65, 1031}};
    vox_backend *be = st->be;
    for (size_t si = 0; si < sizeof sh / sizeof sh[0]; si++) {
        int64_t rows = sh[si][0], cols = sh[si][1], n = rows * cols;
        float *x = vox_test_falloc(n), *sv = vox_test_falloc(cols), *y = vox_test_falloc(n), *yi = vox_test_falloc(n), *ex = vox_test_falloc(n);
        vox_rng_fill(&st->rng, x, n, 8.0f);
        vox_rng_fill(&st->rng, sv, cols, 2.0f);
        dset d = {be, {0}, 0, 0};
        float *dx = dput(&d, x, (size_t)n * 4), *ds = dput(&d, sv, (size_t)cols * 4);
        float *dy = dput(&d, NULL, (size_t)n * 4);
        if (!d.failed) {
            check_rc(r, be, be->ops->mul_rows(be, dy, dx, ds, rows, cols), "mul_rows");
            dget(&d, y, dy, (size_t)n * 4);
            check_rc(r, be, be->ops->mul_rows(be, dx, dx, ds, rows, cols), "mul_rows in place");
            dget(&d, yi, dx, (size_t)n * 4);
            int rc = be->ops->mul_rows(be, dy, dx, NULL, rows, cols);
            r->cases++;
            if (rc != VOX_ERR_ARG) fail(r, "mul_rows with NULL s: rc %d, expected VOX_ERR_ARG", rc);
        }
        int bad = dfinish(&d, r, r->name);
        if (st->cpu) st->cpu->ops->mul_rows(st->cpu, ex, x, sv, rows, cols);
        else vox_ref_mul_rows(ex, x, sv, rows, cols);
        char what[64];
        snprintf(what, sizeof what, "rows=%lld cols=%lld", (long long)rows, (long long)cols);
        if (!bad) {
            cmp(st, r, what, y, ex, n, st->k * 1e-6, 1e-30, NULL, 0.0);
            strncat(what, " in place", sizeof what - strlen(what) - 1);
            cmp(st, r, what, yi, ex, n, st->k * 1e-6, 1e-30, NULL, 0.0);
        }
        free(x), free(sv), free(y), free(yi), free(ex);
    }
}

/* ---- conv1d, conv_transpose1d ---- */

static void test_conv1d(st_t *st, result *r) {
    static const struct {
        int t_in, c_in, c_out, k, stride, pad;
    } sh[] = {{17, 5, 7, 3, 1, 2},   {50, 16, 12, 4, 2, 0}, {9, 8, 6, 1, 1, 0},
              {6, 3, 4, 3, 2, 2},    {128, 20, 24, 3, 2, 1}, {2, 3, 3, 5, 1, 0}};
    static const vox_dtype dts[] = {VOX_DT_F32, VOX_DT_BF16, VOX_DT_F16};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++)
        for (size_t di = 0; di < 3; di++) {
            int t_in = sh[s].t_in, c_in = sh[s].c_in, c_out = sh[s].c_out, k = sh[s].k;
            int stride = sh[s].stride, pad = sh[s].pad;
            int t_out = vox_ref_conv1d_out_len(t_in, k, stride, pad);
            vox_test_wmat w = vox_test_wmat_make(&st->rng, dts[di], c_out, (int64_t)c_in * k, 1.0f);
            vox_test_wmat wa = vox_test_wmat_abs(&w);
            float *x = vox_test_falloc((int64_t)t_in * c_in), *xa = vox_test_falloc((int64_t)t_in * c_in);
            float *b = vox_test_falloc(c_out), *ba = vox_test_falloc(c_out);
            float *y = vox_test_falloc((int64_t)t_out * c_out), *ex = vox_test_falloc((int64_t)t_out * c_out);
            float *absref = vox_test_falloc((int64_t)t_out * c_out);
            vox_rng_fill(&st->rng, x, (int64_t)t_in * c_in, 1.0f);
            vox_rng_fill(&st->rng, b, c_out, 1.0f);
            vox_test_absv(xa, x, (int64_t)t_in * c_in);
            vox_test_absv(ba, b, c_out);
            const float *bias = (s + di) % 2 ? b : NULL;
            int bad = run_conv1d(st->be, r, y, x, &w, bias, t_in, c_in, c_out, k, stride, pad);
            if (st->cpu)
                bad |= run_conv1d(st->cpu, r, ex, x, &w, bias, t_in, c_in, c_out, k, stride, pad);
            else vox_ref_conv1d(ex, x, &w.m, bias, t_in, c_in, c_out, k, stride, pad);
            vox_ref_conv1d(absref, xa, &wa.m, bias ? ba : NULL, t_in, c_in, c_out, k, stride, pad);
            char what[128];
            snprintf(what, sizeof what, "%s t_in=%d c_in=%d c_out=%d k=%d stride=%d pad=%d",
                     vox_dtype_name(dts[di]), t_in, c_in, c_out, k, stride, pad);
            if (!bad)
                cmp(st, r, what, y, ex, (int64_t)t_out * c_out, 0.0, st->k * 1e-6, absref,
                    st->k * ((int64_t)c_in * k + 2) * U24 + st->slack);
            free(w.data), free(wa.data), free(x), free(xa), free(b), free(ba), free(y), free(ex);
            free(absref);
        }
}

static void test_convt(st_t *st, result *r) {
    static const struct {
        int t_in, c_in, c_out, k, stride;
    } sh[] = {{9, 6, 5, 4, 2}, {20, 16, 8, 8, 4}, {1, 3, 2, 3, 1}, {13, 7, 9, 3, 3}, {40, 24, 12, 4, 2}};
    static const vox_dtype dts[] = {VOX_DT_F32, VOX_DT_BF16, VOX_DT_F16};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++)
        for (size_t di = 0; di < 3; di++) {
            int t_in = sh[s].t_in, c_in = sh[s].c_in, c_out = sh[s].c_out, k = sh[s].k;
            int stride = sh[s].stride, t_out = (t_in - 1) * stride + k;
            vox_test_wmat w = vox_test_wmat_make(&st->rng, dts[di], c_in, (int64_t)c_out * k, 1.0f);
            vox_test_wmat wa = vox_test_wmat_abs(&w);
            float *x = vox_test_falloc((int64_t)t_in * c_in), *xa = vox_test_falloc((int64_t)t_in * c_in);
            float *b = vox_test_falloc(c_out), *ba = vox_test_falloc(c_out);
            float *y = vox_test_falloc((int64_t)t_out * c_out), *ex = vox_test_falloc((int64_t)t_out * c_out);
            float *absref = vox_test_falloc((int64_t)t_out * c_out);
            vox_rng_fill(&st->rng, x, (int64_t)t_in * c_in, 1.0f);
            vox_rng_fill(&st->rng, b, c_out, 1.0f);
            vox_test_absv(xa, x, (int64_t)t_in * c_in);
            vox_test_absv(ba, b, c_out);
            const float *bias = (s + di) % 2 ? b : NULL;
            int bad = run_convt(st->be, r, y, x, &w, bias, t_in, c_in, c_out, k, stride);
            if (st->cpu) bad |= run_convt(st->cpu, r, ex, x, &w, bias, t_in, c_in, c_out, k, stride);
            else vox_ref_conv_transpose1d(ex, x, &w.m, bias, t_in, c_in, c_out, k, stride);
            vox_ref_conv_transpose1d(absref, xa, &wa.m, bias ? ba : NULL, t_in, c_in, c_out, k,
                                     stride);
            /* a sum over at most ceil(k / stride) * c_in terms per output */
            int64_t K = (int64_t)((k + stride - 1) / stride) * c_in;
            char what[128];
            snprintf(what, sizeof what, "%s t_in=%d c_in=%d c_out=%d k=%d stride=%d",
                     vox_dtype_name(dts[di]), t_in, c_in, c_out, k, stride);
            if (!bad)
                cmp(st, r, what, y, ex, (int64_t)t_out * c_out, 0.0, st->k * 1e-6, absref,
                    st->k * (K + 2) * U24 + st->slack);
            free(w.data), free(wa.data), free(x), free(xa), free(b), free(ba), free(y), free(ex);
            free(absref);
        }
}

/* ---- embed, argmax ---- */

static void test_embed(st_t *st, result *r) {
    static const vox_dtype dts[] = {VOX_DT_F32, VOX_DT_BF16, VOX_DT_F16};
    vox_backend *be = st->be;
    for (size_t di = 0; di < 3; di++) {
        int rows = 50, cols = 37, n = 11;
        vox_test_wmat w = vox_test_wmat_make(&st->rng, dts[di], rows, cols, 2.0f);
        int32_t ids[11];
        for (int i = 0; i < n; i++) ids[i] = (int32_t)(vox_rng_u64(&st->rng) % (uint64_t)rows);
        ids[0] = 0;
        ids[n - 1] = rows - 1;
        float *y = vox_test_falloc((int64_t)n * cols), *ex = vox_test_falloc((int64_t)n * cols);
        dset d = {be, {0}, 0, 0};
        vox_mat dw = wput(&d, &w);
        float *dy = dput(&d, NULL, (size_t)n * cols * 4);
        if (!d.failed) {
            check_rc(r, be, be->ops->embed(be, dy, &dw, ids, n), "embed");
            dget(&d, y, dy, (size_t)n * cols * 4);
            /* ids rows and -1 are argument errors */
            int32_t bad_ids[2] = {3, rows};
            int rc = be->ops->embed(be, dy, &dw, bad_ids, 2);
            r->cases++;
            if (rc != VOX_ERR_ARG) fail(r, "embed id %d of %d rows: rc %d, expected VOX_ERR_ARG", rows, rows, rc);
            bad_ids[1] = -1;
            rc = be->ops->embed(be, dy, &dw, bad_ids, 2);
            r->cases++;
            if (rc != VOX_ERR_ARG) fail(r, "embed id -1: rc %d, expected VOX_ERR_ARG", rc);
        }
        int bad = dfinish(&d, r, "embed");
        if (st->cpu) st->cpu->ops->embed(st->cpu, ex, &w.m, ids, n);
        else vox_ref_embed(ex, &w.m, ids, n);
        char what[64];
        snprintf(what, sizeof what, "%s [%d x %d] n=%d", vox_dtype_name(dts[di]), rows, cols, n);
        if (!bad) cmp(st, r, what, y, ex, (int64_t)n * cols, 0.0, 0.0, NULL, 0);
        free(w.data), free(y), free(ex);
    }
}

static void test_argmax(st_t *st, result *r) {
    static const struct {
        int rows, cols;
    } sh[] = {{1, 1}, {3, 7}, {9, 1000}, {4, 131073}};
    vox_backend *be = st->be;
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        int rows = sh[s].rows, cols = sh[s].cols;
        int64_t n = (int64_t)rows * cols;
        float *x = vox_test_falloc(n);
        /* few distinct values so ties are common; some NaN; row 1 all NaN when rows > 1 */
        for (int64_t i = 0; i < n; i++) {
            uint64_t u = vox_rng_u64(&st->rng);
            x[i] = (float)(int)(u % 9) - 4.0f;
            if (u % 13 == 0) x[i] = NAN;
        }
        if (rows > 1)
            for (int c = 0; c < cols; c++) x[cols + c] = NAN;
        if (rows > 2) x[2 * (int64_t)cols] = NAN; /* a NaN first element */
        int32_t *out = xcalloc(rows, sizeof(int32_t)), *ex = xcalloc(rows, sizeof(int32_t));
        dset d = {be, {0}, 0, 0};
        float *dx = dput(&d, x, (size_t)n * 4);
        if (!d.failed) check_rc(r, be, be->ops->argmax(be, out, dx, rows, cols), "argmax");
        int bad = dfinish(&d, r, "argmax");
        if (st->cpu) st->cpu->ops->argmax(st->cpu, ex, x, rows, cols);
        else vox_ref_argmax(ex, x, rows, cols);
        char what[64];
        snprintf(what, sizeof what, "rows=%d cols=%d (ties, NaN)", rows, cols);
        if (!bad) cmp_exact_bytes(st, r, what, out, ex, (size_t)rows * sizeof(int32_t));
        free(x), free(out), free(ex);
    }
}

/* ---- logmel ---- */

static void test_logmel(st_t *st, result *r) {
    static const struct {
        int n_fft, hop, n_mels, frames, real_bank;
    } sh[] = {{400, 160, 128, 37, 1}, {16, 4, 3, 9, 0}, {15, 5, 4, 7, 0}, {97, 31, 6, 700, 0},
              {512, 128, 40, 5, 0}};
    vox_backend *be = st->be;
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        int nf = sh[s].n_fft, hop = sh[s].hop, nm = sh[s].n_mels, T = sh[s].frames;
        int nb = nf / 2 + 1;
        int64_t nx = (int64_t)(T - 1) * hop + nf;
        float *x = vox_test_falloc(nx), *win = vox_test_falloc(nf), *fb = vox_test_falloc((int64_t)nm * nb);
        float *y = vox_test_falloc((int64_t)T * nm), *ex = vox_test_falloc((int64_t)T * nm);
        vox_rng_fill(&st->rng, x, nx, 1.0f);
        for (int64_t i = 0; i < nx && i < 2 * nf; i++) x[i] = 0.0f; /* frames at the floor */
        for (int i = 0; i < nf; i++) win[i] = vox_mel_hann(i, nf);
        vox_mel *mel = NULL;
        if (sh[s].real_bank) { /* the Voxtral Slaney bank (16 kHz, 0..8 kHz) */
            vox_mel_config cfg = {16000, nf, hop, nm, 0.0, 8000.0, 1.5};
            vox_error e = {0};
            mel = vox_mel_new(&cfg, &e);
            if (!mel) fail(r, "vox_mel_new: %s", e.msg);
            else memcpy(fb, vox_mel_filters(mel), sizeof(float) * (size_t)nm * (size_t)nb);
        } else { /* banded random filters */
            for (int m = 0; m < nm; m++) {
                int lo = (int)(vox_rng_u64(&st->rng) % (uint64_t)nb), len = 1 + m % 5;
                for (int k = lo; k < lo + len && k < nb; k++)
                    fb[(int64_t)m * nb + k] = 0.5f + 0.5f * vox_rng_uni(&st->rng);
            }
        }
        float lfloor = -6.5f;
        dset d = {be, {0}, 0, 0};
        float *dx = dput(&d, x, (size_t)nx * 4), *dw = dput(&d, win, (size_t)nf * 4);
        float *df = dput(&d, fb, (size_t)nm * nb * 4), *dy = dput(&d, NULL, (size_t)T * nm * 4);
        if (!d.failed) {
            check_rc(r, be, be->ops->logmel(be, dy, dx, T, hop, nf, dw, df, nm, lfloor), "logmel");
            dget(&d, y, dy, (size_t)T * nm * 4);
            int rc = be->ops->logmel(be, dy, dx, T, hop, 1, dw, df, nm, lfloor);
            r->cases++;
            if (rc != VOX_ERR_ARG) fail(r, "logmel n_fft 1: rc %d, expected VOX_ERR_ARG", rc);
        }
        int bad = dfinish(&d, r, "logmel");
        if (st->cpu) check_rc(r, st->cpu, st->cpu->ops->logmel(st->cpu, ex, x, T, hop, nf, win, fb,
                                                               nm, lfloor), "logmel (cpu)");
        else vox_ref_logmel(ex, x, T, hop, nf, win, fb, nm, lfloor);
        char what[80];
        snprintf(what, sizeof what, "n_fft=%d hop=%d mels=%d frames=%d%s", nf, hop, nm, T,
                 sh[s].real_bank ? " slaney" : "");
        if (!bad) cmp(st, r, what, y, ex, (int64_t)T * nm, 0.0, st->k * 2e-5, NULL, 0);
        vox_mel_free(mel);
        free(x), free(win), free(fb), free(y), free(ex);
    }
}

/* ---- main ---- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: vox-selftest [--device cpu|cuda|auto] [--threads N] [--seed S] [--verbose]\n"
            "  Runs every backend op on random inputs and compares with the reference loops\n"
            "  (cpu) or with the CPU backend (cuda); one line per op.\n"
            "  --device D   backend to test (default auto: CUDA when a GPU answers, else cpu)\n"
            "  --threads N  CPU worker threads (default 0 = all online CPUs)\n"
            "  --seed S     random seed (default 1)\n"
            "  --verbose    one line per case\n"
            "  exit status: 0 all pass, 1 a failure, 2 the device cannot be created\n");
}

int main(int argc, char **argv) {
    vox_blas_ensure_core(argc, argv);
    const char *dev_name = "auto";
    int threads = 0, verbose = 0;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
            dev_name = argv[++i];
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
            verbose = 1;
        } else {
            fprintf(stderr, "vox-selftest: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 3;
        }
    }
    vox_error err = {0};
    vox_device dev;
    if (vox_device_parse(dev_name, &dev, &err) != VOX_OK) {
        fprintf(stderr, "vox-selftest: %s\n", err.msg);
        return 3;
    }
    vox_backend *be = vox_backend_create(dev, threads, VOX_LOG_INFO, &err);
    if (!be) {
        fprintf(stderr, "vox-selftest: %s\n", err.msg);
        return 2;
    }
    st_t st;
    memset(&st, 0, sizeof st);
    st.be = be;
    st.rng.s = seed;
    st.verbose = verbose;
    st.k = 1.0;
    printf("%s\n", be->ops->describe(be));
    vox_backend *cpu_side = be;
    if (strcmp(be->name, "cpu") != 0) {
        st.cpu = vox_cpu_backend_create(threads, &err);
        if (!st.cpu) {
            fprintf(stderr, "vox-selftest: CPU backend for the expectation: %s\n", err.msg);
            vox_backend_destroy(be);
            return 2;
        }
        st.k = 2.0;
        cpu_side = st.cpu;
        printf("expectation: %s\n", st.cpu->ops->describe(st.cpu));
    } else {
        printf("expectation: reference loops (kernels/vox_ref.h)\n");
    }

    if (strstr(cpu_side->ops->describe(cpu_side), "matvec avx512bf16,")) st.slack = 1.0 / 65536;

    result res[] = {
        {"memory", "exact", 0, 0, 0, 0, ""},
        {"matmul", "k((K+2)u*sum|xw| + 1e-6)", 0, 0, 0, 0, ""},
        {"rmsnorm", "k*2e-6 rel", 0, 0, 0, 0, ""},
        {"rope", "k*1e-6 (|a|+|b|)", 0, 0, 0, 0, ""},
        {"kv_write", "exact", 0, 0, 0, 0, ""},
        {"attention", "k*3e-5 abs", 0, 0, 0, 0, ""},
        {"attention_alibi", "k*3e-5 abs", 0, 0, 0, 0, ""},
        {"swiglu", "k*1e-6 rel", 0, 0, 0, 0, ""},
        {"silu", "k*1e-6 rel", 0, 0, 0, 0, ""},
        {"gelu", "k(1e-6 rel + 2e-7|x|)", 0, 0, 0, 0, ""},
        {"softmax", "k*2e-6 rel + 1e-12", 0, 0, 0, 0, ""},
        {"add", "k*1e-6 rel", 0, 0, 0, 0, ""},
        {"mul", "k*1e-6 rel", 0, 0, 0, 0, ""},
        {"scale", "k*1e-6 rel", 0, 0, 0, 0, ""},
        {"mul_rows", "k*1e-6 rel", 0, 0, 0, 0, ""},
        {"conv1d", "k((K+2)u*sum|xw| + 1e-6)", 0, 0, 0, 0, ""},
        {"conv_transpose1d", "k((K+2)u*sum|xw| + 1e-6)", 0, 0, 0, 0, ""},
        {"embed", "exact", 0, 0, 0, 0, ""},
        {"argmax", "exact", 0, 0, 0, 0, ""},
        {"logmel", "k*2e-5 abs", 0, 0, 0, 0, ""},
    };
    int n_res = (int)(sizeof res / sizeof res[0]);
    test_memory(&st, &res[0]);
    test_matmul(&st, &res[1]);
    test_rmsnorm(&st, &res[2]);
    test_rope(&st, &res[3]);
    test_attention(&st, &res[4], &res[5], 0);
    test_attention(&st, &res[4], &res[6], 1);
    test_elementwise(&st, &res[7], EW_SWIGLU);
    test_elementwise(&st, &res[8], EW_SILU);
    test_elementwise(&st, &res[9], EW_GELU);
    test_elementwise(&st, &res[10], EW_SOFTMAX);
    test_elementwise(&st, &res[11], EW_ADD);
    test_elementwise(&st, &res[12], EW_MUL);
    test_elementwise(&st, &res[13], EW_SCALE);
    test_mul_rows(&st, &res[14]);
    test_conv1d(&st, &res[15]);
    test_convt(&st, &res[16]);
    test_embed(&st, &res[17]);
    test_argmax(&st, &res[18]);
    test_logmel(&st, &res[19]);

    printf("tolerance k = %g (%s), u = 2^-24, bf16 matvec slack %g, seed %llu\n", st.k,
           st.cpu ? "two backends compared" : "against the reference", st.slack,
           (unsigned long long)seed);
    printf("%-17s %6s %12s %12s  %-26s %s\n", "op", "cases", "max_abs_err", "max_rel_err",
           "tolerance", "result");
    int failed = 0;
    for (int i = 0; i < n_res; i++) {
        result *r = &res[i];
        int ok = r->fails == 0 && r->cases > 0;
        if (!ok) failed++;
        printf("%-17s %6ld %12.3e %12.3e  %-26s %s\n", r->name, r->cases, r->max_abs, r->max_rel,
               r->tol, ok ? "PASS" : "FAIL");
        if (!ok)
            printf("  %s: %ld failure%s; first: %s\n", r->name, r->fails, r->fails == 1 ? "" : "s",
                   r->first[0] ? r->first : "no case ran");
    }
    printf("%d ops: %d passed, %d failed\n", n_res, n_res - failed, failed);
    if (st.cpu) vox_backend_destroy(st.cpu);
    vox_backend_destroy(be);
    return failed ? 1 : 0;
}
