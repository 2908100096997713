/* bench_matvec.c - the memory-bound matrix-vector product y = W x with bf16 weights, measured
 * against the machine's read bandwidth and against the plain baseline other C ports use
 * (weights converted to fp32 once, then OpenBLAS cblas_sgemv), all in one run.
 *
 * Shapes: [9216 x 3072] (a decoder FFN matrix) and [131072 x 3072] (the tied LM head).
 * The VM's L3 (260 MiB, shared with the host) would make a single small matrix look faster
 * than memory, so each shape is cycled through enough distinct copies that the working set
 * is over 2 GiB (WSET_BYTES): every call reads its weights from DRAM.
 *
 * Figures printed per shape:
 *   GB/s    weight bytes read per call / median time per call (bf16 for ours, fp32 for sgemv)
 *   read    the read bandwidth measured in this run on the same buffer: the same slices read
 *           by a streaming AVX2 sum on the same thread pool with the same software prefetch
 *   ratio   our GB/s / read GB/s
 *   speedup sgemv time per call / our time per call (the baseline reads twice the bytes)
 *
 * Usage: bench_matvec [--threads N] [--reps R] [--wset-gib G]
 * Timing figures are printed, never asserted. */
#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/vox_blas.h"
#include "cpu/vox_cpu.h"
#include "vox_backend.h"
#include "vox_hd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct {
    int threads, reps;
    double wset_gib;
} opts;

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* ---- read bandwidth: the pool's workers sum contiguous parts of one slice ---- */
typedef struct {
    const float *p;
    size_t n;      /* floats in the slice */
    double sum[64];
} bw_job;

#if defined(__x86_64__)
__attribute__((target("avx2"))) static double sum_avx2(const float *p, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm_prefetch((const char *)(p + i) + 8192, _MM_HINT_T0);
        _mm_prefetch((const char *)(p + i) + 8192 + 64, _MM_HINT_T0);
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    double s = 0;
    for (int k = 0; k < 8; k++) s += t[k];
    for (; i < n; i++) s += p[i];
    return s;
}
#endif

static void bw_worker(void *ctx, int w, int nw) {
    bw_job *j = ctx;
    size_t per = (j->n / (size_t)nw + 31) & ~(size_t)31;
    size_t b = (size_t)w * per, e = b + per > j->n ? j->n : b + per;
    if (b >= e) return;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) {
        j->sum[w] = sum_avx2(j->p + b, e - b);
        return;
    }
#endif
    double s = 0;
    for (size_t i = b; i < e; i++) s += j->p[i];
    j->sum[w] = s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median time to read one slice of `slice` bytes, cycling through a buffer of `total` bytes
 * (the same access pattern as the matrices: each call a different, cold slice). */
static double read_slice_time(vox_pool *pool, const float *buf, size_t total, size_t slice,
                              int calls) {
    int n_slices = (int)(total / slice);
    double *t = malloc(sizeof(double) * (size_t)calls);
    double sink = 0;
    for (int k = -n_slices; k < calls; k++) {
        int c = (k < 0 ? k + n_slices : k) % n_slices;
        bw_job j = {buf + (size_t)c * (slice / sizeof(float)), slice / sizeof(float), {0}};
        double t0 = vox_time_now();
        vox_pool_run(pool, bw_worker, &j);
        double dt = vox_time_now() - t0;
        if (k >= 0) t[k] = dt;
        sink += j.sum[0];
    }
    double m = median(t, calls);
    free(t);
    if (sink == 12345.678) printf(" "); /* keep the sums alive */
    return m;
}

static void *xalloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) {
        fprintf(stderr, "bench_matvec: out of memory allocating %.2f GiB\n", bytes / 1073741824.0);
        exit(1);
    }
    return p;
}

/* One shape: `copies` distinct bf16 matrices (working set >= wset_gib) used in turn by our
 * matvec; the same number of bytes read as plain slices (the bandwidth yardstick); then fp32
 * copies with cblas_sgemv. Every figure is the median over reps x copies calls. */
static void bench_shape(vox_backend *be, vox_pool *pool, int64_t rows, int64_t cols,
                        const opts *o) {
    size_t mat_bf16 = (size_t)(rows * cols) * 2, mat_f32 = mat_bf16 * 2;
    int copies = (int)((o->wset_gib * 1073741824.0) / (double)mat_bf16 + 0.999);
    if (copies < 2) copies = 2;
    int calls = o->reps * copies;
    double *t = malloc(sizeof(double) * (size_t)calls);
    uint16_t *w = xalloc(mat_bf16 * copies);
    uint64_t s = 0x9e3779b97f4a7c15ull + (uint64_t)rows;
    for (size_t i = 0; i < (size_t)(rows * cols) * copies; i++)
        w[i] = vox_f32_to_bf16((float)((int64_t)(rng_next(&s) >> 40) - (1 << 23)) / (1 << 25));
    float *x = xalloc(cols * sizeof(float)), *y = xalloc(rows * sizeof(float));
    float *yref = xalloc(rows * sizeof(float));
    for (int64_t i = 0; i < cols; i++)
        x[i] = (float)((int64_t)(rng_next(&s) >> 40) - (1 << 23)) / (1 << 23);

    /* ours; the first pass over the copies warms page tables and is not counted */
    for (int k = -copies; k < calls; k++) {
        int c = (k < 0 ? k + copies : k) % copies;
        vox_mat m = {w + (size_t)c * rows * cols, VOX_DT_BF16, rows, cols};
        double t0 = vox_time_now();
        if (be->ops->matmul(be, y, x, &m, NULL, 1) != VOX_OK) {
            fprintf(stderr, "bench_matvec: matmul: %s\n", be->err.msg);
            exit(1);
        }
        if (k >= 0) t[k] = vox_time_now() - t0;
    }
    double ours = median(t, calls);
    /* the read yardstick over the same buffer, slice = one matrix */
    double rd = read_slice_time(pool, (const float *)w, mat_bf16 * copies, mat_bf16, calls);

    /* baseline: the same values as fp32 copies (converted once, as at load) + sgemv */
    free(w);
    float *wf = xalloc(mat_f32 * copies);
    s = 0x9e3779b97f4a7c15ull + (uint64_t)rows;
    for (size_t i = 0; i < (size_t)(rows * cols) * copies; i++)
        wf[i] = vox_bf16_to_f32(
            vox_f32_to_bf16((float)((int64_t)(rng_next(&s) >> 40) - (1 << 23)) / (1 << 25)));
    for (int k = -copies; k < calls; k++) {
        int c = (k < 0 ? k + copies : k) % copies;
        double t0 = vox_time_now();
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)cols, 1.0f,
                    wf + (size_t)c * rows * cols, (int)cols, x, 1, 0.0f, yref, 1);
        if (k >= 0) t[k] = vox_time_now() - t0;
    }
    double ref = median(t, calls);
    /* the last calls of both used the same copy: compare the results */
    double maxd = 0, maxv = 0;
    for (int64_t i = 0; i < rows; i++) {
        double d = y[i] - yref[i], a = yref[i];
        if (d < 0) d = -d;
        if (a < 0) a = -a;
        if (d > maxd) maxd = d;
        if (a > maxv) maxv = a;
    }
    double g_ours = mat_bf16 / ours / 1e9, g_rd = mat_bf16 / rd / 1e9, g_ref = mat_f32 / ref / 1e9;
    printf("[%lld x %lld] bf16, %d copies (%.2f GiB): ours %.3f ms = %.1f GB/s | read %.1f GB/s"
           " | ratio to read bw %.2f | sgemv fp32 %.3f ms = %.1f GB/s | speedup over baseline"
           " %.2fx | max|diff| %.2g of max|y| %.2g\n",
           (long long)rows, (long long)cols, copies, mat_bf16 * (double)copies / 1073741824.0,
           ours * 1e3, g_ours, g_rd, g_ours / g_rd, ref * 1e3, g_ref, ref / ours, maxd, maxv);
    fflush(stdout);
    free(wf);
    free(x);
    free(y);
    free(yref);
    free(t);
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_matvec [--threads N (2)] [--reps R (5)] [--wset-gib G (2.5)]\n"
               "Measures bf16 matvec [9216x3072] and [131072x3072] against the read bandwidth\n"
               "and against fp32 OpenBLAS sgemv, in one run (medians over reps x copies calls).\n");
}

int main(int argc, char **argv) {
    vox_blas_ensure_core(argc, argv);
    opts o = {2, 5, 2.5};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) o.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) o.reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--wset-gib") && i + 1 < argc) o.wset_gib = atof(argv[++i]);
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.threads < 1 || o.threads > 64 || o.reps < 1 || o.wset_gib <= 0) {
        usage(stderr);
        return 2;
    }
    vox_error err = {0};
    vox_backend *be = vox_backend_create(VOX_DEVICE_CPU, o.threads, VOX_LOG_INFO, &err);
    vox_pool *pool = be ? vox_pool_create(o.threads, &err) : NULL;
    if (!be || !pool) {
        fprintf(stderr, "bench_matvec: %s\n", err.msg);
        return 1;
    }
    vox_blas_set_threads(o.threads);
    printf("backend: %s\n", be->ops->describe(be));
    bench_shape(be, pool, 9216, 3072, &o);
    bench_shape(be, pool, 131072, 3072, &o);
    vox_pool_destroy(pool);
    vox_backend_destroy(be);
    return 0;
}
