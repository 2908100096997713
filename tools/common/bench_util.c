/* bench_util.c - shared measuring code of the bench/ programs (see vox_bench.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_bench.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---- read bandwidth: the pool's workers sum contiguous parts of one slice ---- */
typedef struct {
    const float *p;
    size_t n; /* floats in the slice */
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
    for (int k = 0; k < 8; k++)
        s += t[k];
    for (; i < n; i++)
        s += p[i];
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
    for (size_t i = b; i < e; i++)
        s += j->p[i];
    j->sum[w] = s;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
double vox_bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median time to read one slice of `slice` bytes, cycling through a buffer of `total` bytes
 * (the same access pattern as the matrices: each call a different, cold slice). */
double vox_bench_read_slice_time(vox_pool *pool, const float *buf, size_t total, size_t slice,
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
    double m = vox_bench_median(t, calls);
    free(t);
    if (sink == 12345.678) printf(" "); /* keep the sums alive */
    return m;
}

double vox_bench_read_bw(int threads, size_t bytes, int calls) {
    vox_error err = {0};
    vox_pool *pool = vox_pool_create(threads, &err);
    if (!pool) return 0;
    bytes &= ~(size_t)4095;
    float *buf = NULL;
    if (posix_memalign((void **)&buf, 64, bytes) != 0) {
        vox_pool_destroy(pool);
        return 0;
    }
    memset(buf, 0, bytes); /* touch every page */
    size_t slice = (size_t)64 << 20;
    if (slice > bytes) slice = bytes;
    double t = vox_bench_read_slice_time(pool, buf, bytes, slice, calls);
    free(buf);
    vox_pool_destroy(pool);
    return t > 0 ? (double)slice / t : 0;
}

double vox_bench_st_bytes(const vox_st_file *f, const char *prefix) {
    double b = 0;
    size_t pl = strlen(prefix);
    for (int i = 0; i < vox_st_count(f); i++) {
        const vox_st_tensor *t = vox_st_at(f, i);
        if (!strncmp(t->name, prefix, pl)) b += (double)t->nbytes;
    }
    return b;
}

double vox_bench_codec_decoder_bytes(const vox_st_file *f, const char *prefix) {
    char dec[128], out[128];
    snprintf(dec, sizeof dec, "%sdecoder_blocks.", prefix);
    snprintf(out, sizeof out, "%soutput_proj.", prefix);
    double b = 0;
    for (int i = 0; i < vox_st_count(f); i++) {
        const vox_st_tensor *t = vox_st_at(f, i);
        if (strncmp(t->name, dec, strlen(dec)) && strncmp(t->name, out, strlen(out))) continue;
        if (strstr(t->name, ".parametrizations.weight.original0")) continue; /* folded into W */
        if (strstr(t->name, ".parametrizations.weight.original1"))
            b += 4.0 * (double)t->numel; /* folded fp32 conv weight */
        else
            b += (double)t->nbytes;
    }
    return b;
}
