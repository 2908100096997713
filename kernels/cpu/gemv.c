/* gemv.c - the memory-bound matrix-vector kernel: y[n][rows] = x[n][cols] . W^T (+ bias),
 * 1 <= n <= VOX_GEMV_MAX_N, W stored bf16, f16 or f32 and read exactly once per call.
 *
 * Work split: the pool workers claim chunks of contiguous rows (multiples of 12, about 8 per
 * worker) from an atomic counter, so each core streams its own parts of the weights and one
 * that starts late does not leave the others waiting. Within a range a block of R rows is
 * dotted with all n inputs at once (R_AVX2 / R_WIDE below: AVX-512 uses 2-4 rows for every n),
 * so every weight is loaded once per call whatever n is, each activation load serves R rows,
 * and R * n independent accumulators hide FMA latency.
 * Each row stream is prefetched PF_BYTES ahead: hardware prefetchers alone reach only about
 * 60% of the read bandwidth on the build machines (spec/build-environment.md section 9).
 *
 * Paths (vox_cpu_isa): scalar (any dtype; the reference for the others), AVX2+FMA (8 lanes),
 * AVX-512 (16 lanes, masked tails) and AVX-512 BF16 for bf16 weights. The BF16 path keeps fp32
 * accuracy for the activations: each x is split once per call into x_hi = bf16(x) and
 * x_lo = bf16(x - x_hi) (together 16 significant bits, relative error <= 2^-16), and
 * vdpbf16ps accumulates x_hi.w + x_lo.w in fp32 (two accumulators for n <= 2, one for more).
 * Products of two bf16 are exact in fp32, so the only extra error over the fp32 paths is that 2^-16
 * of x. Accumulation is fp32 in every path; lanes are summed at the end of each row. */
#include <stdatomic.h>
#include <string.h>

#include "cpu_backend.h"
#include "../vox_hd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define PF_BYTES 8192 /* software prefetch distance along each weight row */
#define GEMV_ALWAYS __attribute__((always_inline)) inline

typedef struct {
    float *y;
    const float *x;
    const uint16_t *xh, *xl; /* [n][cols] bf16 split of x (BF16 path only) */
    const vox_mat *w;
    const float *bias;
    int n;
    vox_cpu_isa isa;
    atomic_llong next; /* first row not yet claimed by a worker */
    int64_t chunk;     /* rows claimed at a time */
} gemv_job;

/* ---------------------------------------------------------------- scalar */

static float w_get(const vox_mat *w, int64_t i) {
    switch (w->dtype) {
    case VOX_DT_BF16: return vox_bf16_to_f32(((const uint16_t *)w->data)[i]);
    case VOX_DT_F16: return vox_f16_to_f32(((const uint16_t *)w->data)[i]);
    default: return ((const float *)w->data)[i];
    }
}

static void rows_scalar(const gemv_job *j, int64_t r0, int64_t r1) {
    int64_t cols = j->w->cols, rows = j->w->rows;
    for (int64_t r = r0; r < r1; r++) {
        for (int i = 0; i < j->n; i++) {
            const float *x = j->x + (int64_t)i * cols;
            float s[4] = {0, 0, 0, 0};
            int64_t c = 0;
            for (; c + 4 <= cols; c += 4)
                for (int k = 0; k < 4; k++)
                    s[k] += w_get(j->w, r * cols + c + k) * x[c + k];
            for (; c < cols; c++)
                s[0] += w_get(j->w, r * cols + c) * x[c];
            float v = (s[0] + s[1]) + (s[2] + s[3]);
            j->y[(int64_t)i * rows + r] = v + (j->bias ? j->bias[r] : 0.0f);
        }
    }
}

#if defined(__x86_64__)
/* ---------------------------------------------------------------- AVX2 */
#define T_AVX2 __attribute__((target("avx2,fma,f16c")))

static T_AVX2 GEMV_ALWAYS __m256 ld8_avx2(const void *w, int64_t i, int dt) {
    if (dt == VOX_DT_BF16) {
        __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    if (dt == VOX_DT_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    return _mm256_loadu_ps((const float *)w + i);
}

static T_AVX2 GEMV_ALWAYS float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* R rows starting at r0, N inputs; dt, R and N are constants after inlining. */
static T_AVX2 GEMV_ALWAYS void blk_avx2(const gemv_job *j, int64_t r0, int dt, int R, int N) {
    int64_t cols = j->w->cols, rows = j->w->rows;
    int64_t esz = dt == VOX_DT_F32 ? 4 : 2;
    const char *base = (const char *)j->w->data;
    __m256 acc[4][8];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int i = 0; i < N; i++)
            acc[r][i] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        if (esz == 4 || (c & 31) == 0)
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                _mm_prefetch(base + ((r0 + r) * cols + c) * esz + PF_BYTES, _MM_HINT_T0);
        __m256 xv[8];
#pragma GCC unroll 8
        for (int i = 0; i < N; i++)
            xv[i] = _mm256_loadu_ps(j->x + (int64_t)i * cols + c);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m256 wv = ld8_avx2(base, (r0 + r) * cols + c, dt);
#pragma GCC unroll 8
            for (int i = 0; i < N; i++)
                acc[r][i] = _mm256_fmadd_ps(wv, xv[i], acc[r][i]);
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int i = 0; i < N; i++) {
            float v = hsum8(acc[r][i]);
            const float *x = j->x + (int64_t)i * cols;
            for (int64_t t = c; t < cols; t++)
                v += w_get(j->w, (r0 + r) * cols + t) * x[t];
            j->y[(int64_t)i * rows + r0 + r] = v + (j->bias ? j->bias[r0 + r] : 0.0f);
        }
}

/* ---------------------------------------------------------------- AVX-512 */
#define T_512 __attribute__((target("avx512f,avx512bw,avx512vl,fma,f16c")))

static T_512 GEMV_ALWAYS __m512 ld16_512(const void *w, int64_t i, int dt, __mmask16 m) {
    if (dt == VOX_DT_BF16) {
        __m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    if (dt == VOX_DT_F16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + i));
    return _mm512_maskz_loadu_ps(m, (const float *)w + i);
}

static T_512 GEMV_ALWAYS void step_512(const gemv_job *j, int64_t r0, int64_t c, __mmask16 m,
                                       __m512 acc[4][8], int dt, int R, int N) {
    int64_t cols = j->w->cols;
    __m512 wv[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        wv[r] = ld16_512(j->w->data, (r0 + r) * cols + c, dt, m);
#pragma GCC unroll 8
    for (int i = 0; i < N; i++) {
        __m512 xv = _mm512_maskz_loadu_ps(m, j->x + (int64_t)i * cols + c);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            acc[r][i] = _mm512_fmadd_ps(wv[r], xv, acc[r][i]);
    }
}

static T_512 GEMV_ALWAYS void blk_512(const gemv_job *j, int64_t r0, int dt, int R, int N) {
    int64_t cols = j->w->cols, rows = j->w->rows;
    int64_t esz = dt == VOX_DT_F32 ? 4 : 2;
    const char *base = (const char *)j->w->data;
    __m512 acc[4][8];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int i = 0; i < N; i++)
            acc[r][i] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        if (esz == 4 || (c & 31) == 0)
#pragma GCC unroll 4
            for (int r = 0; r < R; r++)
                _mm_prefetch(base + ((r0 + r) * cols + c) * esz + PF_BYTES, _MM_HINT_T0);
        step_512(j, r0, c, 0xffff, acc, dt, R, N);
    }
    if (c < cols) step_512(j, r0, c, (__mmask16)((1u << (cols - c)) - 1u), acc, dt, R, N);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int i = 0; i < N; i++)
            j->y[(int64_t)i * rows + r0 + r] =
                _mm512_reduce_add_ps(acc[r][i]) + (j->bias ? j->bias[r0 + r] : 0.0f);
}

/* ---------------------------------------------------------------- AVX-512 BF16 */
#define T_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))

/* One 32-column step. With S (split) the hi and lo products go to separate accumulators (n <= 2:
 * few chains, so two per (row, input) hide the dpbf16 latency); otherwise both go to one
 * accumulator, which keeps R * N <= 24 accumulators in registers for R rows sharing each x
 * load: the R weight vectors are loaded first, then x_hi[i] is dotted with the R rows, then
 * x_lo[i]. */
static T_BF16 GEMV_ALWAYS void step_bf16(const gemv_job *j, int64_t r0, int64_t c, __mmask32 m,
                                         __m512 ah[4][8], __m512 al[4][8], int R, int N, int S) {
    int64_t cols = j->w->cols;
    const uint16_t *w = j->w->data;
    if (S) { /* n <= 2: the 2n activation vectors stay in registers, one weight load per row */
        __m512bh xh[2], xl[2];
#pragma GCC unroll 2
        for (int i = 0; i < N; i++) {
            xh[i] = (__m512bh)_mm512_maskz_loadu_epi16(m, j->xh + (int64_t)i * cols + c);
            xl[i] = (__m512bh)_mm512_maskz_loadu_epi16(m, j->xl + (int64_t)i * cols + c);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w + (r0 + r) * cols + c);
#pragma GCC unroll 2
            for (int i = 0; i < N; i++) {
                ah[r][i] = _mm512_dpbf16_ps(ah[r][i], xh[i], wv);
                al[r][i] = _mm512_dpbf16_ps(al[r][i], xl[i], wv);
            }
        }
        return;
    }
    __m512bh wv[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
        wv[r] = (__m512bh)_mm512_maskz_loadu_epi16(m, w + (r0 + r) * cols + c);
#pragma GCC unroll 8
    for (int i = 0; i < N; i++) {
        __m512bh xh = (__m512bh)_mm512_maskz_loadu_epi16(m, j->xh + (int64_t)i * cols + c);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            ah[r][i] = _mm512_dpbf16_ps(ah[r][i], xh, wv[r]);
        __m512bh xl = (__m512bh)_mm512_maskz_loadu_epi16(m, j->xl + (int64_t)i * cols + c);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            ah[r][i] = _mm512_dpbf16_ps(ah[r][i], xl, wv[r]);
    }
}

static T_BF16 GEMV_ALWAYS void blk_bf16(const gemv_job *j, int64_t r0, int R, int N) {
    int64_t cols = j->w->cols, rows = j->w->rows;
    const char *base = (const char *)j->w->data;
    const int S = N <= 2;
    __m512 ah[4][8], al[4][8];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int i = 0; i < N; i++)
            ah[r][i] = al[r][i] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
#pragma GCC unroll 4
        for (int r = 0; r < R; r++)
            _mm_prefetch(base + ((r0 + r) * cols + c) * 2 + PF_BYTES, _MM_HINT_T0);
        step_bf16(j, r0, c, 0xffffffffu, ah, al, R, N, S);
    }
    if (c < cols) step_bf16(j, r0, c, (__mmask32)((1ull << (cols - c)) - 1ull), ah, al, R, N, S);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int i = 0; i < N; i++) {
            __m512 a = S ? _mm512_add_ps(ah[r][i], al[r][i]) : ah[r][i];
            j->y[(int64_t)i * rows + r0 + r] =
                _mm512_reduce_add_ps(a) + (j->bias ? j->bias[r0 + r] : 0.0f);
        }
}

#define BLK_AVX2(j, r, dt, R, N)                                                                   \
    do {                                                                                           \
        if (dt == VOX_DT_BF16)                                                                     \
            blk_avx2(j, r, VOX_DT_BF16, R, N);                                                     \
        else if (dt == VOX_DT_F16)                                                                 \
            blk_avx2(j, r, VOX_DT_F16, R, N);                                                      \
        else                                                                                       \
            blk_avx2(j, r, VOX_DT_F32, R, N);                                                      \
    } while (0)
#define BLK_512(j, r, dt, R, N)                                                                    \
    do {                                                                                           \
        if (dt == VOX_DT_BF16)                                                                     \
            blk_512(j, r, VOX_DT_BF16, R, N);                                                      \
        else if (dt == VOX_DT_F16)                                                                 \
            blk_512(j, r, VOX_DT_F16, R, N);                                                       \
        else                                                                                       \
            blk_512(j, r, VOX_DT_F32, R, N);                                                       \
    } while (0)
#define BLK_BF16(j, r, dt, R, N) blk_bf16(j, r, R, N)

/* Rows per block for n inputs. AVX2 (16 registers): 4 rows for n = 1, 2 for n = 2, else 1.
 * AVX-512 (32 registers): also blocks of rows for n >= 3 (4 rows up to n = 6, 3 for n = 7, 8:
 * <= 24 accumulators), so one activation load serves R weight rows. With one row per block
 * the n >= 3 kernels load n activation vectors (hi and lo for BF16) per weight vector, from L2
 * once n * cols floats outgrow L1, and were load-bound at a quarter of the FMA rate. */
#define R_AVX2(NN) ((NN) == 1 ? 4 : (NN) == 2 ? 2 : 1)
#define R_WIDE(NN) ((NN) == 2 ? 2 : (NN) <= 6 ? 4 : 3)

/* One specialised function per n, so R, N and dtype are constants inside. */
#define DEF_N(NAME, BLK, T, RB, NN)                                                                \
    static T void NAME##_##NN(const gemv_job *j, int64_t r0, int64_t r1) {                         \
        int dt = j->w->dtype;                                                                      \
        int64_t r = r0;                                                                            \
        (void)dt;                                                                                  \
        if (RB(NN) > 1)                                                                            \
            for (; r + RB(NN) <= r1; r += RB(NN))                                                  \
                BLK(j, r, dt, RB(NN), NN);                                                         \
        for (; r < r1; r++)                                                                        \
            BLK(j, r, dt, 1, NN);                                                                  \
    }
#define DEF_ALL(NAME, BLK, T, RB)                                                                  \
    DEF_N(NAME, BLK, T, RB, 1)                                                                     \
    DEF_N(NAME, BLK, T, RB, 2)                                                                     \
    DEF_N(NAME, BLK, T, RB, 3)                                                                     \
    DEF_N(NAME, BLK, T, RB, 4) DEF_N(NAME, BLK, T, RB, 5) DEF_N(NAME, BLK, T, RB, 6)               \
        DEF_N(NAME, BLK, T, RB, 7)                                                                 \
            DEF_N(NAME, BLK, T, RB, 8) static void (*const NAME##_tab[VOX_GEMV_MAX_N + 1])(        \
                const gemv_job *, int64_t, int64_t) = {NULL,     NAME##_1, NAME##_2,               \
                                                       NAME##_3, NAME##_4, NAME##_5,               \
                                                       NAME##_6, NAME##_7, NAME##_8};

DEF_ALL(rows_avx2, BLK_AVX2, T_AVX2, R_AVX2)
DEF_ALL(rows_512, BLK_512, T_512, R_WIDE)
DEF_ALL(rows_bf16, BLK_BF16, T_BF16, R_WIDE)

/* fp32 -> (hi, lo) bf16 split of the activations, see the header comment. */
static void split_bf16(uint16_t *hi, uint16_t *lo, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = vox_f32_to_bf16(x[i]);
        hi[i] = h;
        lo[i] = vox_f32_to_bf16(x[i] - vox_bf16_to_f32(h));
    }
}
#endif /* __x86_64__ */

static void run_rows(const gemv_job *j, int64_t r0, int64_t r1) {
#if defined(__x86_64__)
    switch (j->isa) {
    case VOX_ISA_AVX512BF16:
        if (j->xh) {
            rows_bf16_tab[j->n](j, r0, r1);
            return;
        }
        __attribute__((fallthrough)); /* not bf16 weights: the AVX-512 path */
    case VOX_ISA_AVX512: rows_512_tab[j->n](j, r0, r1); return;
    case VOX_ISA_AVX2: rows_avx2_tab[j->n](j, r0, r1); return;
    default: break;
    }
#endif
    rows_scalar(j, r0, r1);
}

/* Workers claim chunks of rows from a shared counter, so a worker that starts late (woken
 * from its spin) or runs slower does not leave the others waiting at the end. */
static void gemv_worker(void *ctx, int worker, int n_workers) {
    gemv_job *j = ctx;
    int64_t rows = j->w->rows;
    (void)worker;
    (void)n_workers;
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&j->next, j->chunk, memory_order_relaxed);
        if (b >= rows) return;
        int64_t e = b + j->chunk < rows ? b + j->chunk : rows;
        run_rows(j, b, e);
    }
}

size_t vox_cpu_gemv_scratch(vox_cpu_isa isa, const vox_mat *w, int n) {
    if (isa == VOX_ISA_AVX512BF16 && w->dtype == VOX_DT_BF16)
        return (size_t)2 * (size_t)n * (size_t)w->cols * sizeof(uint16_t);
    return 0;
}

void vox_cpu_gemv(vox_pool *pool, vox_cpu_isa isa, float *y, const float *x, const vox_mat *w,
                  const float *bias, int n, void *scratch) {
    gemv_job j = {y, x, NULL, NULL, w, bias, n, isa, 0, 0};
#if defined(__x86_64__)
    if (vox_cpu_gemv_scratch(isa, w, n) && scratch) {
        uint16_t *hi = scratch, *lo = hi + (int64_t)n * w->cols;
        split_bf16(hi, lo, x, (int64_t)n * w->cols);
        j.xh = hi;
        j.xl = lo;
    }
#else
    (void)scratch;
#endif
    /* small matrices: threads cost more than they save */
    if (vox_pool_size(pool) > 1 && w->rows >= 8 && w->rows * w->cols >= 65536) {
        int64_t per = w->rows / (8 * vox_pool_size(pool)); /* ~8 chunks per worker */
        j.chunk = per < 12 ? 12 : (per + 11) / 12 * 12;
        vox_pool_run(pool, gemv_worker, &j);
    } else
        run_rows(&j, 0, w->rows);
}
