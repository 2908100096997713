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
 * --n N (1..VOX_GEMV_MAX_N, default 1) multiplies N input rows per call (the flow-matching
 * step of the TTS multiplies 6): the weights are still read once per call, so the GB/s figure
 * stays weight bytes / time; the baseline then is cblas_sgemm over the fp32 copies.
 *
 * Usage: bench_matvec [--threads N] [--reps R] [--wset-gib G] [--n N]
 * Timing figures are printed, never asserted. */
#include <cblas.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/vox_blas.h"
#include "cpu/vox_cpu.h"
#include "vox_bench.h"
#include "vox_backend.h"
#include "vox_hd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct {
    int threads, reps, n;
    double wset_gib;
} opts;

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
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
    int n = o->n;
    float *x = xalloc(n * cols * sizeof(float)), *y = xalloc(n * rows * sizeof(float));
    float *yref = xalloc(n * rows * sizeof(float));
    for (int64_t i = 0; i < n * cols; i++)
        x[i] = (float)((int64_t)(rng_next(&s) >> 40) - (1 << 23)) / (1 << 23);

    /* ours; the first pass over the copies warms page tables and is not counted */
    for (int k = -copies; k < calls; k++) {
        int c = (k < 0 ? k + copies : k) % copies;
        vox_mat m = {w + (size_t)c * rows * cols, VOX_DT_BF16, rows, cols};
        double t0 = vox_time_now();
        if (be->ops->matmul(be, y, x, &m, NULL, n) != VOX_OK) {
            fprintf(stderr, "bench_matvec: matmul: %s\n", be->err.msg);
            exit(1);
        }
        if (k >= 0) t[k] = vox_time_now() - t0;
    }
    double ours = vox_bench_median(t, calls);
    /* the read yardstick over the same buffer, slice = one matrix */
    double rd =
        vox_bench_read_slice_time(pool, (const float *)w, mat_bf16 * copies, mat_bf16, calls);

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
        const float *wc = wf + (size_t)c * rows * cols;
        if (n == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, (int)cols, 1.0f, wc, (int)cols, x,
                        1, 0.0f, yref, 1);
        else /* yref[n][rows] = x[n][cols] . W^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (int)rows, (int)cols, 1.0f, x,
                        (int)cols, wc, (int)cols, 0.0f, yref, (int)rows);
        if (k >= 0) t[k] = vox_time_now() - t0;
    }
    double ref = vox_bench_median(t, calls);
    /* the last calls of both used the same copy: compare the results */
    double maxd = 0, maxv = 0;
    for (int64_t i = 0; i < n * rows; i++) {
        double d = y[i] - yref[i], a = yref[i];
        if (d < 0) d = -d;
        if (a < 0) a = -a;
        if (d > maxd) maxd = d;
        if (a > maxv) maxv = a;
    }
    double g_ours = mat_bf16 / ours / 1e9, g_rd = mat_bf16 / rd / 1e9, g_ref = mat_f32 / ref / 1e9;
    printf(
        "[%lld x %lld] bf16, n %d, %d copies (%.2f GiB): ours %.3f ms = %.1f GB/s | read %.1f GB/s"
        " | ratio to read bw %.2f | %s fp32 %.3f ms = %.1f GB/s | speedup over baseline"
        " %.2fx | max|diff| %.2g of max|y| %.2g\n",
        (long long)rows, (long long)cols, n, copies, mat_bf16 * (double)copies / 1073741824.0,
        ours * 1e3, g_ours, g_rd, g_ours / g_rd, n == 1 ? "sgemv" : "sgemm", ref * 1e3, g_ref,
        ref / ours, maxd, maxv);
    fflush(stdout);
    free(wf);
    free(x);
    free(y);
    free(yref);
    free(t);
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_matvec [--threads N (2)] [--reps R (5)] [--wset-gib G (2.5)]"
               " [--n ROWS (1)]\n"
               "Measures bf16 matvec [9216x3072] and [131072x3072] against the read bandwidth\n"
               "and against fp32 OpenBLAS sgemv, in one run (medians over reps x copies calls).\n");
}

int main(int argc, char **argv) {
    vox_blas_ensure_core(argc, argv);
    opts o = {2, 5, 1, 2.5};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            o.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            o.reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--n") && i + 1 < argc)
            o.n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--wset-gib") && i + 1 < argc)
            o.wset_gib = atof(argv[++i]);
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (o.threads < 1 || o.threads > 64 || o.reps < 1 || o.wset_gib <= 0 || o.n < 1 ||
        o.n > VOX_GEMV_MAX_N) {
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
