/* attn_cpu.c - KV ring writes and attention for the CPU backend.
 *
 * Ring: position p lives in slot p % cap (vox_backend.h). kv_write copies rows in order.
 *
 * Attention is organised around how the ring sits in memory: one slot is a contiguous row of
 * all kv heads ([cap][kv_dim]), so the only streaming-friendly way to read it is slot after
 * slot for all heads at once. (Walking one head's 512-byte piece of every 4 KiB slot defeats
 * the prefetchers and misses the TLB on every key: measured 8x slower for a decode step.)
 *
 * Work unit (a task) = a block of queries x a contiguous split of the keys they can see:
 *   - rows = (query, head) pairs of the block, up to ATT_ROWS_MAX (all heads of 1-4 queries);
 *   - keys are visited in sub-blocks of ATT_KB slots: pass 1 dots each key row with every
 *     query row reading its kv head (rows sharing a kv head share the key load) and packs the
 *     value rows per kv head, pass 2 adds p * v into each row's accumulator, keeping 32-float
 *     slices of it in registers;
 *   - softmax is the online form: per row a running max m, sum l and accumulator acc; when a
 *     sub-block raises the max, l and acc are rescaled by exp(m_old - m_new);
 *   - a decode step (one query block) is split over the keys so every worker streams its own
 *     part of the ring; the partial (m, l, acc) of the splits are merged at the end:
 *     M = max m_s, out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s.
 * Query i at position qp sees key kp iff kp <= qp and (window <= 0 or kp > qp - window), so a
 * row's visible keys are one contiguous range of positions, and a block's rows together see
 * the union [first visible of the first query, position of the last query].
 *
 * Precision: dot products and accumulators in fp32, the sum l in double; exp is a polynomial
 * (about 2 ulp) in the AVX2 path and expf in the scalar path. Tasks are taken from an atomic
 * counter by the pool's workers; each worker has its own slice of scratch.
 *
 * Kernels: AVX2+FMA versions when the backend's ISA is avx2 or better, plain loops otherwise. */
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "cpu_backend.h"
#include "../vox_hd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define ATT_X86 1
#endif

/* ---- kv_write ---- */

int cpu_kv_write(vox_backend *be, vox_kv *kv, const float *k, const float *v, int n,
                 int64_t pos0) {
    const char *op = "kv_write";
    if (!kv || !kv->k || !kv->v) return cpu_arg_error(be, op, "NULL ring");
    if (kv->cap <= 0 || kv->kv_dim <= 0)
        return cpu_arg_error(be, op, "ring has cap = %lld, kv_dim = %d; expected > 0",
                             (long long)kv->cap, kv->kv_dim);
    if (n < 0) return cpu_arg_error(be, op, "n = %d, expected >= 0", n);
    if (pos0 != kv->end)
        return cpu_arg_error(be, op,
                             "pos0 = %lld but the ring ends at %lld (positions are written in "
                             "order, without gaps)",
                             (long long)pos0, (long long)kv->end);
    if (n == 0) return VOX_OK;
    if (!k || !v) return cpu_arg_error(be, op, "NULL k or v");
    size_t row = (size_t)kv->kv_dim * sizeof(float);
    /* with n > cap only the last cap rows survive: skip the ones that would be overwritten */
    int first = n > kv->cap ? n - (int)kv->cap : 0;
    for (int i = first; i < n; i++) {
        int64_t slot = (pos0 + i) % kv->cap;
        memcpy(kv->k + slot * kv->kv_dim, k + (int64_t)i * kv->kv_dim, row);
        memcpy(kv->v + slot * kv->kv_dim, v + (int64_t)i * kv->kv_dim, row);
    }
    kv->end = pos0 + n;
    return VOX_OK;
}

/* ---- kernels ---- */

/* s[r] = dot(q[r], k) for r < nr, over hd elements. */
static void dots_scalar(const float *k, const float *const *q, int nr, int hd, float *s) {
    for (int r = 0; r < nr; r++) {
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        const float *qr = q[r];
        int d = 0;
        for (; d + 4 <= hd; d += 4) {
            a0 += qr[d] * k[d];
            a1 += qr[d + 1] * k[d + 1];
            a2 += qr[d + 2] * k[d + 2];
            a3 += qr[d + 3] * k[d + 3];
        }
        for (; d < hd; d++) a0 += qr[d] * k[d];
        s[r] = (a0 + a1) + (a2 + a3);
    }
}

/* s[i] = exp(s[i] - mx) for i < n; returns the sum. */
static double exp_sum_scalar(float *s, int n, float mx) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        s[i] = expf(s[i] - mx);
        sum += s[i];
    }
    return sum;
}

#ifdef ATT_X86
#define AVX2 __attribute__((target("avx2,fma")))

static AVX2 inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* FMA latency is 4-5 cycles and two can issue per cycle, so about ten independent
 * accumulator chains are needed to keep the units busy: four rows x two halves of the 16-float
 * step here, sharing each 8-float load of k between four rows. */
static AVX2 void dots_avx2(const float *k, const float *const *q, int nr, int hd, float *s) {
    int r = 0;
    int hd8 = hd & ~7, hd16 = hd & ~15;
    for (; r + 4 <= nr; r += 4) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        const float *q0 = q[r], *q1 = q[r + 1], *q2 = q[r + 2], *q3 = q[r + 3];
        int d = 0;
        for (; d < hd16; d += 16) {
            __m256 kd = _mm256_loadu_ps(k + d), ke = _mm256_loadu_ps(k + d + 8);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + d), kd, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q1 + d), kd, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q2 + d), kd, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q3 + d), kd, a3);
            b0 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + d + 8), ke, b0);
            b1 = _mm256_fmadd_ps(_mm256_loadu_ps(q1 + d + 8), ke, b1);
            b2 = _mm256_fmadd_ps(_mm256_loadu_ps(q2 + d + 8), ke, b2);
            b3 = _mm256_fmadd_ps(_mm256_loadu_ps(q3 + d + 8), ke, b3);
        }
        for (; d < hd8; d += 8) {
            __m256 kd = _mm256_loadu_ps(k + d);
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q0 + d), kd, a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q1 + d), kd, a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(q2 + d), kd, a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(q3 + d), kd, a3);
        }
        float t0 = hsum256(_mm256_add_ps(a0, b0)), t1 = hsum256(_mm256_add_ps(a1, b1));
        float t2 = hsum256(_mm256_add_ps(a2, b2)), t3 = hsum256(_mm256_add_ps(a3, b3));
        for (; d < hd; d++) {
            t0 += q0[d] * k[d];
            t1 += q1[d] * k[d];
            t2 += q2[d] * k[d];
            t3 += q3[d] * k[d];
        }
        s[r] = t0;
        s[r + 1] = t1;
        s[r + 2] = t2;
        s[r + 3] = t3;
    }
    for (; r < nr; r++) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *qr = q[r];
        int d = 0;
        for (; d + 32 <= hd8; d += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d), _mm256_loadu_ps(k + d), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d + 8), _mm256_loadu_ps(k + d + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d + 16), _mm256_loadu_ps(k + d + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d + 24), _mm256_loadu_ps(k + d + 24), a3);
        }
        for (; d < hd8; d += 8)
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(qr + d), _mm256_loadu_ps(k + d), a0);
        float t = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (d = hd8; d < hd; d++) t += qr[d] * k[d];
        s[r] = t;
    }
}

/* exp(x) for x in [-87.3, 88.3] (clamped outside): x = n ln2 + f with |f| <= ln2/2, e^f by
 * its Taylor polynomial to degree 7 (truncation < 6e-9 relative), times 2^n built in the
 * exponent field. About 2 ulp. */
static AVX2 inline __m256 exp256(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.33f));
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* f = x - n ln2, ln2 split in a part exact in float and a correction */
    __m256 f = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    f = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), f);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
                                  23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static AVX2 double exp_sum_avx2(float *s, int n, float mx) {
    __m256 m = _mm256_set1_ps(mx);
    __m256d sum0 = _mm256_setzero_pd(), sum1 = sum0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + i), m));
        _mm256_storeu_ps(s + i, e);
        sum0 = _mm256_add_pd(sum0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        sum1 = _mm256_add_pd(sum1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(sum0, sum1));
    double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    if (i < n) {
        /* tail through the same polynomial, so every weight has the same rounding */
        float tmp[8] = {0};
        int rest = n - i;
        for (int j = 0; j < rest; j++) tmp[j] = s[i + j] - mx;
        float out[8];
        _mm256_storeu_ps(out, exp256(_mm256_loadu_ps(tmp)));
        for (int j = 0; j < rest; j++) {
            s[i + j] = out[j];
            sum += out[j];
        }
    }
    return sum;
}

#endif /* ATT_X86 */

/* acc[d] += sum_j p[j] * v[j * hd + d], d < hd, j < n (v packed: n rows of hd). */
static void pv_scalar(float *acc, const float *p, const float *v, int n, int hd) {
    for (int j = 0; j < n; j++)
        for (int d = 0; d < hd; d++) acc[d] += p[j] * v[(int64_t)j * hd + d];
}

#ifdef ATT_X86
/* The accumulator is kept in registers 32 floats at a time while the n packed value rows pass;
 * even and odd keys go to separate accumulators (8 independent FMA chains), added at the end. */
static AVX2 void pv_avx2(float *acc, const float *p, const float *v, int n, int hd) {
    int d = 0;
    for (; d + 32 <= hd; d += 32) {
        __m256 a0 = _mm256_loadu_ps(acc + d), a1 = _mm256_loadu_ps(acc + d + 8);
        __m256 a2 = _mm256_loadu_ps(acc + d + 16), a3 = _mm256_loadu_ps(acc + d + 24);
        __m256 b0 = _mm256_setzero_ps(), b1 = b0, b2 = b0, b3 = b0;
        int j = 0;
        for (; j + 2 <= n; j += 2) {
            const float *va = v + (int64_t)j * hd + d, *vb = va + hd;
            __m256 pa = _mm256_set1_ps(p[j]), pb = _mm256_set1_ps(p[j + 1]);
            a0 = _mm256_fmadd_ps(pa, _mm256_loadu_ps(va), a0);
            a1 = _mm256_fmadd_ps(pa, _mm256_loadu_ps(va + 8), a1);
            a2 = _mm256_fmadd_ps(pa, _mm256_loadu_ps(va + 16), a2);
            a3 = _mm256_fmadd_ps(pa, _mm256_loadu_ps(va + 24), a3);
            b0 = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb), b0);
            b1 = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 8), b1);
            b2 = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 16), b2);
            b3 = _mm256_fmadd_ps(pb, _mm256_loadu_ps(vb + 24), b3);
        }
        if (j < n) {
            const float *va = v + (int64_t)j * hd + d;
            __m256 pa = _mm256_set1_ps(p[j]);
            a0 = _mm256_fmadd_ps(pa, _mm256_loadu_ps(va), a0);
            a1 = _mm256_fmadd_ps(pa, _mm256_loadu_ps(va + 8), a1);
            a2 = _mm256_fmadd_ps(pa, _mm256_loadu_ps(va + 16), a2);
            a3 = _mm256_fmadd_ps(pa, _mm256_loadu_ps(va + 24), a3);
        }
        _mm256_storeu_ps(acc + d, _mm256_add_ps(a0, b0));
        _mm256_storeu_ps(acc + d + 8, _mm256_add_ps(a1, b1));
        _mm256_storeu_ps(acc + d + 16, _mm256_add_ps(a2, b2));
        _mm256_storeu_ps(acc + d + 24, _mm256_add_ps(a3, b3));
    }
    for (; d + 8 <= hd; d += 8) {
        __m256 a0 = _mm256_loadu_ps(acc + d), b0 = _mm256_setzero_ps();
        int j = 0;
        for (; j + 2 <= n; j += 2) {
            const float *va = v + (int64_t)j * hd + d;
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(va), a0);
            b0 = _mm256_fmadd_ps(_mm256_set1_ps(p[j + 1]), _mm256_loadu_ps(va + hd), b0);
        }
        if (j < n)
            a0 = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(v + (int64_t)j * hd + d), a0);
        _mm256_storeu_ps(acc + d, _mm256_add_ps(a0, b0));
    }
    for (; d < hd; d++) {
        float a = acc[d];
        for (int j = 0; j < n; j++) a += p[j] * v[(int64_t)j * hd + d];
        acc[d] = a;
    }
}
#endif

/* ---- attention ---- */

#define ATT_ROWS_MAX 128 /* (query, head) rows per task */
#define ATT_KB 32        /* keys per sub-block */
#define ATT_MIN_SPLIT 128 /* fewest keys worth a split of their own */

typedef struct {
    float *out;
    const float *q;
    const vox_kv *kv;
    int nq, n_heads, n_kv_heads, head_dim, window, group;
    int64_t q_pos0;
    float scale;
    const float *slopes;    /* [n_heads] ALiBi slopes, or NULL for no bias */
    int nqb;                /* queries per block */
    int n_blocks, n_splits; /* tasks = n_blocks * n_splits */
    size_t slice;           /* floats of scratch per worker */
    float *scratch;         /* n_workers slices */
    float *part;            /* n_splits > 1: per task [rows][head_dim + 2] (acc, m, l) */
    int use_avx2;
    atomic_int next;
} att_ctx;

/* First visible key position for a query at qp. */
static int64_t first_visible(int64_t qp, int window) { return vox_attn_first_key(qp, window); }

static void att_task(att_ctx *c, int task, float *scratch) {
    const vox_kv *kv = c->kv;
    int hd = c->head_dim, H = c->n_heads, G = c->group, KVH = c->n_kv_heads;
    int blk = task / c->n_splits, split = task % c->n_splits;
    int i0 = blk * c->nqb;
    int nqq = c->nq - i0 < c->nqb ? c->nq - i0 : c->nqb;
    int rows = nqq * H; /* row r = (query i0 + r / H, head r % H) */
    int per_kvh = nqq * G;

    /* this split's share of the block's key range */
    int64_t qp0 = c->q_pos0 + i0;
    int64_t lo = first_visible(qp0, c->window), hi = qp0 + nqq - 1, nk = hi - lo + 1;
    int64_t k_begin = lo + nk * split / c->n_splits, k_end = lo + nk * (split + 1) / c->n_splits;

    float *sc = scratch;                          /* [rows][ATT_KB] scores, then weights */
    float *acc = scratch + (size_t)rows * ATT_KB; /* [rows][hd] */
    float *vpack = acc + (size_t)rows * hd;       /* [n_kv_heads][ATT_KB][hd] */
    float m[ATT_ROWS_MAX];
    double l[ATT_ROWS_MAX];
    int64_t rlo[ATT_ROWS_MAX], rhi[ATT_ROWS_MAX];
    int jb[ATT_ROWS_MAX], je[ATT_ROWS_MAX];
    /* rows grouped by kv head: group kvh holds the rows of heads kvh*G .. kvh*G+G-1 */
    const float *gq[ATT_ROWS_MAX];
    int grow[ATT_ROWS_MAX];
    int q_dim = H * hd;
    for (int r = 0; r < rows; r++) {
        int qi = r / H, h = r % H;
        rhi[r] = qp0 + qi;
        rlo[r] = first_visible(rhi[r], c->window);
        m[r] = -INFINITY;
        l[r] = 0.0;
        int kvh = h / G, at = kvh * per_kvh + qi * G + h % G;
        gq[at] = c->q + (int64_t)(i0 + qi) * q_dim + (int64_t)h * hd;
        grow[at] = r;
    }
    memset(acc, 0, (size_t)rows * hd * sizeof(float));

    const float *krow[ATT_KB], *vrow[ATT_KB];
    float dots[ATT_ROWS_MAX];
    int64_t slot = k_begin % kv->cap;
    for (int64_t kb0 = k_begin; kb0 < k_end; kb0 += ATT_KB) {
        int nkb = k_end - kb0 < ATT_KB ? (int)(k_end - kb0) : ATT_KB;
        for (int j = 0; j < nkb; j++) {
            krow[j] = kv->k + slot * kv->kv_dim;
            vrow[j] = kv->v + slot * kv->kv_dim;
            if (++slot == kv->cap) slot = 0;
        }
        /* pass 1: scores of every row against every key of the sub-block; each key row is
         * read once, in order, for all kv heads. The value rows are packed per kv head
         * meanwhile: pass 2 reads one head's slice of each, and slices 4-8 KiB apart alias to
         * the same L1 sets (the unpacked version ran 3x slower). */
        for (int j = 0; j < nkb; j++) {
            for (int kvh = 0; kvh < KVH; kvh++) {
                const float *kp = krow[j] + (int64_t)kvh * hd;
                const float *const *qs = gq + kvh * per_kvh;
#ifdef ATT_X86
                if (c->use_avx2) dots_avx2(kp, qs, per_kvh, hd, dots + kvh * per_kvh);
                else
#endif
                    dots_scalar(kp, qs, per_kvh, hd, dots + kvh * per_kvh);
                memcpy(vpack + ((size_t)kvh * ATT_KB + j) * hd, vrow[j] + (int64_t)kvh * hd,
                       (size_t)hd * sizeof(float));
            }
            if (c->slopes) {
                for (int x = 0; x < rows; x++) {
                    int r = grow[x];
                    sc[(size_t)r * ATT_KB + j] =
                        dots[x] * c->scale + vox_alibi_bias(c->slopes[r % H], rhi[r], kb0 + j);
                }
            } else {
                for (int x = 0; x < rows; x++)
                    sc[(size_t)grow[x] * ATT_KB + j] = dots[x] * c->scale;
            }
        }
        /* online softmax update of each row over its visible part of the sub-block */
        for (int r = 0; r < rows; r++) {
            int b = rlo[r] > kb0 ? (int)(rlo[r] - kb0) : 0;
            int e = rhi[r] - kb0 + 1 < nkb ? (int)(rhi[r] - kb0 + 1) : nkb;
            jb[r] = b;
            je[r] = e;
            if (e <= b) continue;
            float *sr = sc + (size_t)r * ATT_KB;
            float mb = sr[b];
            for (int j = b + 1; j < e; j++)
                if (sr[j] > mb) mb = sr[j];
            if (mb > m[r]) {
                if (m[r] != -INFINITY) {
                    float corr = expf(m[r] - mb);
                    l[r] *= corr;
                    float *ar = acc + (size_t)r * hd;
                    for (int d = 0; d < hd; d++) ar[d] *= corr;
                }
                m[r] = mb;
            }
#ifdef ATT_X86
            if (c->use_avx2) l[r] += exp_sum_avx2(sr + b, e - b, m[r]);
            else
#endif
                l[r] += exp_sum_scalar(sr + b, e - b, m[r]);
        }
        /* pass 2: acc += sum_j p_j v_j */
        for (int r = 0; r < rows; r++) {
            if (je[r] <= jb[r]) continue;
            const float *vp = vpack + ((size_t)((r % H) / G) * ATT_KB + jb[r]) * hd;
            float *ar = acc + (size_t)r * hd;
            const float *pr = sc + (size_t)r * ATT_KB + jb[r];
#ifdef ATT_X86
            if (c->use_avx2) pv_avx2(ar, pr, vp, je[r] - jb[r], hd);
            else
#endif
                pv_scalar(ar, pr, vp, je[r] - jb[r], hd);
        }
    }

    if (c->n_splits == 1) {
        for (int r = 0; r < rows; r++) {
            float *o = c->out + (int64_t)(i0 + r / H) * q_dim + (int64_t)(r % H) * hd;
            float inv = (float)(1.0 / l[r]);
            const float *ar = acc + (size_t)r * hd;
            for (int d = 0; d < hd; d++) o[d] = ar[d] * inv;
        }
    } else {
        float *pt = c->part + (size_t)task * ATT_ROWS_MAX * (hd + 2);
        for (int r = 0; r < rows; r++) {
            float *pr = pt + (size_t)r * (hd + 2);
            memcpy(pr, acc + (size_t)r * hd, (size_t)hd * sizeof(float));
            pr[hd] = m[r];
            pr[hd + 1] = (float)l[r];
        }
    }
}

static void att_worker(void *vc, int worker, int n_workers) {
    (void)n_workers;
    att_ctx *c = vc;
    float *scratch = c->scratch + (size_t)worker * c->slice;
    int n_tasks = c->n_blocks * c->n_splits;
    for (;;) {
        int t = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (t >= n_tasks) break;
        att_task(c, t, scratch);
    }
}

/* Merge the key splits of every block (n_splits > 1). */
static void att_merge(att_ctx *c) {
    int hd = c->head_dim, H = c->n_heads, S = c->n_splits, q_dim = H * hd;
    for (int blk = 0; blk < c->n_blocks; blk++) {
        int i0 = blk * c->nqb;
        int nqq = c->nq - i0 < c->nqb ? c->nq - i0 : c->nqb;
        for (int r = 0; r < nqq * H; r++) {
            float M = -INFINITY;
            for (int s = 0; s < S; s++) {
                float ms = c->part[((size_t)(blk * S + s) * ATT_ROWS_MAX + r) * (hd + 2) + hd];
                if (ms > M) M = ms;
            }
            float *o = c->out + (int64_t)(i0 + r / H) * q_dim + (int64_t)(r % H) * hd;
            double L = 0.0;
            for (int d = 0; d < hd; d++) o[d] = 0.0f;
            for (int s = 0; s < S; s++) {
                const float *pr = c->part + ((size_t)(blk * S + s) * ATT_ROWS_MAX + r) * (hd + 2);
                if (pr[hd] == -INFINITY) continue; /* this split had no key for the row */
                float w = expf(pr[hd] - M);
                L += (double)w * pr[hd + 1];
                for (int d = 0; d < hd; d++) o[d] += w * pr[d];
            }
            float inv = (float)(1.0 / L);
            for (int d = 0; d < hd; d++) o[d] *= inv;
        }
    }
}

/* Shared by attention and attention_alibi: `window` counts the visible keys including the
 * query's own (vox_attn_visible); slopes NULL means no bias. */
static int attention_impl(vox_backend *be, const char *op, float *out, const float *q, int nq,
                          int64_t q_pos0, const vox_kv *kv, int n_heads, int n_kv_heads,
                          int head_dim, int window, float scale, const float *slopes) {
    if (!kv || !kv->k || !kv->v) return cpu_arg_error(be, op, "NULL ring");
    if (nq < 0 || n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0 || n_heads % n_kv_heads)
        return cpu_arg_error(be, op,
                             "nq = %d, n_heads = %d, n_kv_heads = %d, head_dim = %d (expected "
                             "nq >= 0, positive heads, n_heads a multiple of n_kv_heads)",
                             nq, n_heads, n_kv_heads, head_dim);
    if (n_heads > ATT_ROWS_MAX)
        return cpu_arg_error(be, op, "n_heads = %d, this backend supports up to %d", n_heads,
                             ATT_ROWS_MAX);
    if ((int64_t)n_kv_heads * head_dim != kv->kv_dim)
        return cpu_arg_error(be, op, "n_kv_heads * head_dim = %lld but the ring has kv_dim = %d",
                             (long long)n_kv_heads * head_dim, kv->kv_dim);
    if (kv->cap <= 0) return cpu_arg_error(be, op, "ring cap = %lld", (long long)kv->cap);
    if (nq == 0) return VOX_OK;
    if (!out || !q) return cpu_arg_error(be, op, "NULL buffer");
    if (q_pos0 < 0 || q_pos0 + nq > kv->end)
        return cpu_arg_error(be, op,
                             "queries at positions %lld..%lld but the ring holds keys up to "
                             "%lld (write k/v of every query before attention)",
                             (long long)q_pos0, (long long)(q_pos0 + nq - 1),
                             (long long)kv->end - 1);
    int64_t start = kv->end > kv->cap ? kv->end - kv->cap : 0;
    int64_t need = first_visible(q_pos0, window);
    if (need < start)
        return cpu_arg_error(be, op,
                             "query at %lld with window %d needs key %lld but the ring (cap %lld)"
                             " holds %lld..%lld; cap must cover every visible key of the block",
                             (long long)q_pos0, window, (long long)need, (long long)kv->cap,
                             (long long)start, (long long)kv->end - 1);

    cpu_impl *im = cpu_of(be);
    att_ctx c;
    memset(&c, 0, sizeof c);
    c.out = out;
    c.q = q;
    c.kv = kv;
    c.nq = nq;
    c.n_heads = n_heads;
    c.n_kv_heads = n_kv_heads;
    c.head_dim = head_dim;
    c.window = window;
    c.group = n_heads / n_kv_heads;
    c.q_pos0 = q_pos0;
    c.scale = scale;
    c.slopes = slopes;
    c.nqb = ATT_ROWS_MAX / n_heads;
    if (c.nqb > nq) c.nqb = nq;
    c.n_blocks = (nq + c.nqb - 1) / c.nqb;
    /* few blocks (decode, streaming chunks): split their keys so all workers stream the ring */
    c.n_splits = 1;
    int target = 4 * im->n_workers;
    if (im->n_workers > 1 && c.n_blocks < target) {
        int64_t keys0 = q_pos0 + c.nqb - first_visible(q_pos0, window); /* block 0's range */
        int64_t by_keys = keys0 / ATT_MIN_SPLIT;
        int want = (target + c.n_blocks - 1) / c.n_blocks;
        c.n_splits = by_keys < want ? (int)(by_keys > 1 ? by_keys : 1) : want;
    }
    size_t rows = (size_t)c.nqb * n_heads;
    c.slice = (rows * (ATT_KB + (size_t)head_dim) + (size_t)ATT_KB * kv->kv_dim + 15) & ~(size_t)15;
    size_t part = c.n_splits > 1
                      ? (size_t)c.n_blocks * c.n_splits * ATT_ROWS_MAX * ((size_t)head_dim + 2)
                      : 0;
    int rc = cpu_scratch_reserve(be, &im->att, c.slice * (size_t)im->n_workers + part, op);
    if (rc) return rc;
    c.scratch = im->att.p;
    c.part = part ? im->att.p + c.slice * (size_t)im->n_workers : NULL;
    c.use_avx2 = im->isa >= VOX_ISA_AVX2;
    atomic_init(&c.next, 0);
    if (im->n_workers <= 1 || c.n_blocks * c.n_splits == 1) att_worker(&c, 0, 1);
    else vox_pool_run(im->pool, att_worker, &c);
    if (c.n_splits > 1) att_merge(&c);
    return VOX_OK;
}

int cpu_attention(vox_backend *be, float *out, const float *q, int nq, int64_t q_pos0,
                  const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim, int window,
                  float scale) {
    return attention_impl(be, "attention", out, q, nq, q_pos0, kv, n_heads, n_kv_heads, head_dim,
                          window, scale, NULL);
}

/* ALiBi: keys qp - window .. qp are window + 1 keys, i.e. the plain op's window + 1. */
int cpu_attention_alibi(vox_backend *be, float *out, const float *q, int nq, int64_t q_pos0,
                        const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim, int window,
                        float scale, const float *slopes) {
    const char *op = "attention_alibi";
    if (!slopes) return cpu_arg_error(be, op, "NULL slopes");
    if (window == INT_MAX) return cpu_arg_error(be, op, "window = %d is too large", window);
    return attention_impl(be, op, out, q, nq, q_pos0, kv, n_heads, n_kv_heads, head_dim,
                          vox_alibi_window_keys(window), scale, slopes);
}
