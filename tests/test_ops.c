/* test_ops.c - every op of the CPU backend against the reference loops (kernels/vox_ref.h) and,
 * for attention and RoPE, against expectations computed here independently (all keys kept in a
 * flat array with absolute positions; a double-precision rotation).
 *
 * Random inputs from a fixed-seed generator. Each backend configuration runs every test:
 *   - the best SIMD path with 2 threads,
 *   - the scalar path (VOX_ISA=scalar) with 1 thread,
 *   - the best path with 3 threads (uneven splits over more workers than cores) and tiny
 *     conversion/im2col blocks (1000 and 3000 floats), so every block loop runs many blocks,
 *     the last one partial.
 *
 * Tolerances (u = 2^-24, the fp32 unit roundoff):
 *   matmul / conv: |y - ref| <= (K + 2) u sum_k |x_k w_k| + u |bias| + 1e-6, the worst-case
 *     bound for a K-term fp32 dot product in any summation order (the ref sums in double).
 *   element-wise (silu, gelu, swiglu, add, mul, scale): |y - ref| <= 1e-6 |ref| + 1e-30 (the
 *     same vox_hd.h math, so equal up to contraction differences).
 *   rmsnorm: 2e-6 relative (sum of squares in a different order, one rounding of the scale).
 *   softmax: 2e-6 relative + 1e-12 (fp32 exp, double sum).
 *   rope vs ref: 1e-6 (|a| + |b|) (same arithmetic); rope vs double rotation by the same fp32
 *     angle: 1e-6 (|a| + |b|) (cosf/sinf error only); vs the exact angle: also the angle's
 *     fp32 rounding, pos 2^-23 (|a| + |b|).
 *   attention, attention_alibi: |out - expected| <= 3e-5: outputs are convex combinations of
 *     values in [-1, 1]; errors come from fp32 scores (hd u |q||k|) and fp32 accumulation over
 *     <= 400 keys. ALiBi is also checked by hand on a case with a closed-form answer.
 *   mul_rows: exact (one fp32 product per element), against a loop here.
 *   embed, argmax: exact. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu_backend.h" /* white box: shrink the block sizes in one configuration */
#include "cpu/vox_cpu.h"
#include "vox_backend.h"
#include "vox_hd.h"
#include "vox_ref.h"
#include "vox_test.h"
#include "vox_testdata.h"

#define U24 5.9604644775390625e-8 /* 2^-24 */

static vox_test_state ts;

static const char *dt_name(vox_dtype d) { return vox_dtype_name(d); }

/* Compare with |y - ref| <= rel |ref| + abs_tol; report the first failure and the worst. */
static int close_rel(const char *what, const float *y, const float *ref, int64_t n, double rel,
                     double abs_tol) {
    double worst = 0;
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)y[i] - (double)ref[i]);
        double tol = rel * fabs((double)ref[i]) + abs_tol;
        if (!(err <= tol) && bad < 0) bad = i;
        if (err > worst) worst = err;
    }
    VOX_CHECK(&ts, bad < 0, "%s: element %lld is %.9g, expected %.9g (max |err| %.3g)", what,
              (long long)bad, bad >= 0 ? y[bad] : 0.0, bad >= 0 ? ref[bad] : 0.0, worst);
    return bad < 0;
}
/* Extra relative slack of dot products on the AVX-512 BF16 matvec path, which splits each fp32
 * activation into two bf16 (hi + lo) carrying 16 significant bits: |x - hi - lo| <= 2^-17 |x|,
 * so each product may be off by 2^-17 |x w| more than in fp32 (2^-16 with margin). 0 elsewhere. */
static double dot_slack;

/* |y - ref| <= ((K + 2) u + slack) absref + 1e-6, absref = sum |x w| (+ |bias|) per element. */
static int close_dot(const char *what, const float *y, const float *ref, const float *absref,
                     int64_t n, int64_t K) {
    int64_t bad = -1;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)y[i] - (double)ref[i]);
        double tol = ((double)(K + 2) * U24 + dot_slack) * absref[i] + 1e-6;
        if (!(err <= tol) && bad < 0) bad = i;
        if (err > worst) worst = err;
    }
    VOX_CHECK(&ts, bad < 0, "%s: element %lld is %.9g, expected %.9g (max |err| %.3g)", what,
              (long long)bad, bad >= 0 ? y[bad] : 0.0, bad >= 0 ? ref[bad] : 0.0, worst);
    return bad < 0;
}

/* ---- matmul ---- */
static void test_matmul(vox_backend *be, vox_rng *r) {
    static const vox_dtype dts[] = {VOX_DT_F32, VOX_DT_BF16, VOX_DT_F16};
    static const struct {
        int rows, cols;
    } shapes[] = {{37, 29}, {256, 300}, {67, 1031}, {5, 3}};
    static const int ns[] = {1, 2, 3, 5, 7, 8, 9, 13, 31, 64};
    for (size_t d = 0; d < 3; d++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                int n = ns[ni], rows = shapes[s].rows, cols = shapes[s].cols;
                int use_bias = (ni + s) % 2;
                vox_test_wmat w = vox_test_wmat_make(r, dts[d], rows, cols, 1.0f);
                vox_test_wmat wa = vox_test_wmat_abs(&w);
                float *x = vox_test_falloc((int64_t)n * cols), *xa = vox_test_falloc((int64_t)n * cols);
                float *b = vox_test_falloc(rows), *ba = vox_test_falloc(rows);
                float *y = vox_test_falloc((int64_t)n * rows), *ref = vox_test_falloc((int64_t)n * rows);
                float *absref = vox_test_falloc((int64_t)n * rows);
                vox_rng_fill(r, x, (int64_t)n * cols, 1.0f);
                vox_rng_fill(r, b, rows, 1.0f);
                vox_test_absv(xa, x, (int64_t)n * cols);
                vox_test_absv(ba, b, rows);
                int rc = be->ops->matmul(be, y, x, &w.m, use_bias ? b : NULL, n);
                VOX_CHECK(&ts, rc == VOX_OK, "matmul rc %d: %s", rc, be->err.msg);
                vox_ref_matmul(ref, x, &w.m, use_bias ? b : NULL, n);
                vox_ref_matmul(absref, xa, &wa.m, use_bias ? ba : NULL, n);
                char what[128];
                snprintf(what, sizeof what, "matmul %s n=%d [%d x %d] bias=%d", dt_name(dts[d]),
                         n, rows, cols, use_bias);
                close_dot(what, y, ref, absref, (int64_t)n * rows, cols);
                free(w.data), free(wa.data), free(x), free(xa), free(b), free(ba), free(y);
                free(ref), free(absref);
            }
    /* a weight larger than one conversion block (1 Mi floats), so bf16/f16 use several blocks,
     * the last one partial */
    for (size_t d = 0; d < 3; d++) {
        int n = 20, rows = 700, cols = 2001;
        vox_test_wmat w = vox_test_wmat_make(r, dts[d], rows, cols, 1.0f);
        vox_test_wmat wa = vox_test_wmat_abs(&w);
        float *x = vox_test_falloc((int64_t)n * cols), *xa = vox_test_falloc((int64_t)n * cols);
        float *y = vox_test_falloc((int64_t)n * rows), *ref = vox_test_falloc((int64_t)n * rows);
        float *absref = vox_test_falloc((int64_t)n * rows);
        vox_rng_fill(r, x, (int64_t)n * cols, 1.0f);
        vox_test_absv(xa, x, (int64_t)n * cols);
        int rc = be->ops->matmul(be, y, x, &w.m, NULL, n);
        VOX_CHECK(&ts, rc == VOX_OK, "matmul big rc %d: %s", rc, be->err.msg);
        vox_ref_matmul(ref, x, &w.m, NULL, n);
        vox_ref_matmul(absref, xa, &wa.m, NULL, n);
        char what[128];
        snprintf(what, sizeof what, "matmul %s n=%d [%d x %d] (several blocks)", dt_name(dts[d]),
                 n, rows, cols);
        close_dot(what, y, ref, absref, (int64_t)n * rows, cols);
        free(w.data), free(wa.data), free(x), free(xa), free(y), free(ref), free(absref);
    }
}

/* ---- rmsnorm ---- */
static void test_rmsnorm(vox_backend *be, vox_rng *r) {
    static const struct {
        int n, dim;
    } sh[] = {{1, 7}, {3, 1280}, {5, 3072}, {40, 1000}};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++)
        for (int use_w = 0; use_w < 2; use_w++) {
            int n = sh[s].n, dim = sh[s].dim;
            int64_t len = (int64_t)n * dim;
            float *x = vox_test_falloc(len), *w = vox_test_falloc(dim), *y = vox_test_falloc(len), *ref = vox_test_falloc(len);
            vox_rng_fill(r, x, len, 3.0f);
            vox_rng_fill(r, w, dim, 2.0f);
            int rc = be->ops->rmsnorm(be, y, x, use_w ? w : NULL, n, dim, 1e-5f);
            VOX_CHECK(&ts, rc == VOX_OK, "rmsnorm rc %d: %s", rc, be->err.msg);
            vox_ref_rmsnorm(ref, x, use_w ? w : NULL, n, dim, 1e-5f);
            char what[96];
            snprintf(what, sizeof what, "rmsnorm n=%d dim=%d w=%d", n, dim, use_w);
            close_rel(what, y, ref, len, 2e-6, 1e-30);
            /* in place */
            rc = be->ops->rmsnorm(be, x, x, use_w ? w : NULL, n, dim, 1e-5f);
            VOX_CHECK(&ts, rc == VOX_OK, "rmsnorm in place rc %d", rc);
            snprintf(what, sizeof what, "rmsnorm in place n=%d dim=%d w=%d", n, dim, use_w);
            close_rel(what, x, ref, len, 2e-6, 1e-30);
            free(x), free(w), free(y), free(ref);
        }
}

/* ---- rope ---- */
static void test_rope(vox_backend *be, vox_rng *r) {
    static const struct {
        int n, heads, hd;
        int64_t pos0;
        float theta;
    } sh[] = {{1, 1, 2, 0, 10000.0f},
              {3, 4, 64, 17, 1e6f},
              {9, 32, 128, 5000, 1e6f},
              {4, 3, 10, 100000, 10000.0f},
              {2, 8, 64, 100000, 1e6f}};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        int n = sh[s].n, H = sh[s].heads, hd = sh[s].hd;
        int64_t len = (int64_t)n * H * hd;
        float *x = vox_test_falloc(len), *orig = vox_test_falloc(len), *ref = vox_test_falloc(len);
        vox_rng_fill(r, orig, len, 1.0f);
        memcpy(x, orig, (size_t)len * sizeof(float));
        memcpy(ref, orig, (size_t)len * sizeof(float));
        int rc = be->ops->rope(be, x, n, H, hd, sh[s].pos0, sh[s].theta);
        VOX_CHECK(&ts, rc == VOX_OK, "rope rc %d: %s", rc, be->err.msg);
        vox_ref_rope(ref, n, H, hd, sh[s].pos0, sh[s].theta);
        /* independent: double rotation by the fp32 angle, and by the exact angle */
        int bad_ref = 0, bad_f = 0, bad_exact = 0;
        double worst_exact = 0;
        for (int i = 0; i < n; i++) {
            int64_t pos = sh[s].pos0 + i;
            for (int h = 0; h < H; h++)
                for (int j = 0; j < hd / 2; j++) {
                    int64_t at = ((int64_t)i * H + h) * hd + 2 * j;
                    double a = orig[at], b = orig[at + 1], mag = fabs(a) + fabs(b);
                    float invf = vox_rope_inv_freq(j, hd, sh[s].theta);
                    double angf = (double)((float)pos * invf);
                    double ange = (double)pos * pow((double)sh[s].theta, -2.0 * j / hd);
                    double ea = a * cos(angf) - b * sin(angf), eb = a * sin(angf) + b * cos(angf);
                    double xa = a * cos(ange) - b * sin(ange), xb = a * sin(ange) + b * cos(ange);
                    if (fabs(x[at] - ref[at]) > 1e-6 * mag || fabs(x[at + 1] - ref[at + 1]) > 1e-6 * mag)
                        bad_ref++;
                    if (fabs(x[at] - ea) > 1e-6 * mag || fabs(x[at + 1] - eb) > 1e-6 * mag) bad_f++;
                    double tol_e = ((double)pos * 2.0 * U24 + 1e-6) * mag;
                    double e1 = fmax(fabs(x[at] - xa), fabs(x[at + 1] - xb));
                    if (e1 > tol_e) bad_exact++;
                    if (e1 > worst_exact) worst_exact = e1;
                }
        }
        VOX_CHECK(&ts, bad_ref == 0, "rope n=%d H=%d hd=%d pos0=%lld: %d pairs differ from ref", n,
                  H, hd, (long long)sh[s].pos0, bad_ref);
        VOX_CHECK(&ts, bad_f == 0,
                  "rope n=%d H=%d hd=%d pos0=%lld: %d pairs differ from the double rotation", n, H,
                  hd, (long long)sh[s].pos0, bad_f);
        VOX_CHECK(&ts, bad_exact == 0,
                  "rope pos0=%lld: %d pairs beyond the fp32-angle bound of the exact rotation "
                  "(worst %.3g)",
                  (long long)sh[s].pos0, bad_exact, worst_exact);
        free(x), free(orig), free(ref);
    }
}

/* ---- kv ring + attention ---- */

/* Expected attention from flat arrays K[pos][kv_dim], V[pos][kv_dim] of every position ever
 * written: query i at qp = q_pos0 + i sees kp iff kp <= qp and (window <= 0 or kp > qp - window). */
static void flat_attention(float *out, const float *q, int nq, int64_t q_pos0, const float *K,
                           const float *V, int n_heads, int n_kv, int hd, int window, float scale) {
    int kv_dim = n_kv * hd, q_dim = n_heads * hd, group = n_heads / n_kv;
    double *acc = malloc((size_t)hd * sizeof(double));
    for (int i = 0; i < nq; i++) {
        int64_t qp = q_pos0 + i;
        int64_t lo = window > 0 ? qp - window + 1 : 0;
        if (lo < 0) lo = 0;
        for (int h = 0; h < n_heads; h++) {
            const float *qh = q + (int64_t)i * q_dim + (int64_t)h * hd;
            int kvh = h / group;
            double mx = -INFINITY;
            for (int64_t kp = lo; kp <= qp; kp++) {
                double s = 0;
                for (int d = 0; d < hd; d++) s += (double)qh[d] * K[kp * kv_dim + kvh * hd + d];
                s *= scale;
                if (s > mx) mx = s;
            }
            double sum = 0;
            for (int d = 0; d < hd; d++) acc[d] = 0;
            for (int64_t kp = lo; kp <= qp; kp++) {
                double s = 0;
                for (int d = 0; d < hd; d++) s += (double)qh[d] * K[kp * kv_dim + kvh * hd + d];
                double p = exp(s * scale - mx);
                sum += p;
                for (int d = 0; d < hd; d++) acc[d] += p * V[kp * kv_dim + kvh * hd + d];
            }
            for (int d = 0; d < hd; d++) out[(int64_t)i * q_dim + h * hd + d] = (float)(acc[d] / sum);
        }
    }
    free(acc);
}

/* Expected ALiBi attention, written from the codec's definition (vllm-omni): query qp sees keys
 * qp - window .. qp (window + 1 keys; window <= 0: all of 0 .. qp), score q.k * scale +
 * slope_h * (kp - qp); everything in double. */
static void flat_alibi(float *out, const float *q, int nq, int64_t q_pos0, const float *K,
                       const float *V, int n_heads, int n_kv, int hd, int window, float scale,
                       const float *slopes) {
    int kv_dim = n_kv * hd, q_dim = n_heads * hd, group = n_heads / n_kv;
    double *sc = malloc((size_t)(q_pos0 + nq) * sizeof(double));
    for (int i = 0; i < nq; i++) {
        int64_t qp = q_pos0 + i;
        int64_t lo = window > 0 && qp - window > 0 ? qp - window : 0;
        for (int h = 0; h < n_heads; h++) {
            const float *qh = q + (int64_t)i * q_dim + (int64_t)h * hd;
            const float *Kh = K + (h / group) * hd, *Vh = V + (h / group) * hd;
            double mx = -INFINITY, sum = 0;
            for (int64_t kp = lo; kp <= qp; kp++) {
                double d = 0;
                for (int e = 0; e < hd; e++) d += (double)qh[e] * Kh[kp * kv_dim + e];
                sc[kp] = d * scale + (double)slopes[h] * (double)(kp - qp);
                if (sc[kp] > mx) mx = sc[kp];
            }
            for (int64_t kp = lo; kp <= qp; kp++) sum += (sc[kp] = exp(sc[kp] - mx));
            for (int e = 0; e < hd; e++) {
                double a = 0;
                for (int64_t kp = lo; kp <= qp; kp++) a += sc[kp] * Vh[kp * kv_dim + e];
                out[(int64_t)i * q_dim + h * hd + e] = (float)(a / sum);
            }
        }
    }
    free(sc);
}

typedef struct {
    const char *name;
    int n_heads, n_kv, hd, window;
    int64_t cap;    /* 0: window + nq - 1 */
    int64_t total;  /* positions written in all */
    int nq_first;   /* first block (prefill) */
    int nq;         /* later blocks */
    int check_every;
} att_case;

/* alibi: run attention_alibi (slopes 2^(-8 (h+1) / heads), as the codec's) against flat_alibi;
 * a cap of 0 then means window + nq (one more key visible). */
static void run_att_case(vox_backend *be, vox_rng *r, const att_case *c, int alibi) {
    int kv_dim = c->n_kv * c->hd, q_dim = c->n_heads * c->hd;
    int64_t cap = c->cap ? c->cap
                         : (int64_t)c->window + (c->nq > c->nq_first ? c->nq : c->nq_first) - 1 +
                               (alibi ? 1 : 0);
    float *slopes = vox_test_falloc(c->n_heads);
    for (int h = 0; h < c->n_heads; h++) slopes[h] = (float)pow(2.0, -8.0 * (h + 1) / c->n_heads);
    float *K = vox_test_falloc(c->total * kv_dim), *V = vox_test_falloc(c->total * kv_dim);
    vox_rng_fill(r, K, c->total * kv_dim, 1.0f);
    vox_rng_fill(r, V, c->total * kv_dim, 1.0f);
    vox_kv kv = {vox_test_falloc(cap * kv_dim), vox_test_falloc(cap * kv_dim), cap, kv_dim, 0};
    vox_kv rkv = {vox_test_falloc(cap * kv_dim), vox_test_falloc(cap * kv_dim), cap, kv_dim, 0}; /* for vox_ref */
    int maxq = c->nq > c->nq_first ? c->nq : c->nq_first;
    float *q = vox_test_falloc((int64_t)maxq * q_dim), *out = vox_test_falloc((int64_t)maxq * q_dim);
    float *exp_flat = vox_test_falloc((int64_t)maxq * q_dim), *exp_ring = vox_test_falloc((int64_t)maxq * q_dim);
    float scale = 1.0f / sqrtf((float)c->hd);
    int64_t pos = 0;
    int blocks = 0, checked = 0, bad = 0;
    while (pos < c->total) {
        int nq = pos == 0 ? c->nq_first : c->nq;
        if (pos + nq > c->total) nq = (int)(c->total - pos);
        int rc = be->ops->kv_write(be, &kv, K + pos * kv_dim, V + pos * kv_dim, nq, pos);
        VOX_CHECK(&ts, rc == VOX_OK && kv.end == pos + nq, "%s: kv_write at %lld rc %d: %s",
                  c->name, (long long)pos, rc, be->err.msg);
        vox_ref_kv_write(&rkv, K + pos * kv_dim, V + pos * kv_dim, nq, pos);
        if (blocks % c->check_every == 0 || pos + nq >= c->total) {
            /* queries with a spread of magnitudes so softmax is neither flat nor one-hot */
            vox_rng_fill(r, q, (int64_t)nq * q_dim, 4.0f);
            if (alibi) {
                rc = be->ops->attention_alibi(be, out, q, nq, pos, &kv, c->n_heads, c->n_kv,
                                              c->hd, c->window, scale, slopes);
                flat_alibi(exp_flat, q, nq, pos, K, V, c->n_heads, c->n_kv, c->hd, c->window,
                           scale, slopes);
                vox_ref_attention_alibi(exp_ring, q, nq, pos, &rkv, c->n_heads, c->n_kv, c->hd,
                                        c->window, scale, slopes);
            } else {
                rc = be->ops->attention(be, out, q, nq, pos, &kv, c->n_heads, c->n_kv, c->hd,
                                        c->window, scale);
                flat_attention(exp_flat, q, nq, pos, K, V, c->n_heads, c->n_kv, c->hd,
                               c->window, scale);
                vox_ref_attention(exp_ring, q, nq, pos, &rkv, c->n_heads, c->n_kv, c->hd,
                                  c->window, scale);
            }
            VOX_CHECK(&ts, rc == VOX_OK, "%s: attention%s at %lld rc %d: %s", c->name,
                      alibi ? "_alibi" : "", (long long)pos, rc, be->err.msg);
            for (int64_t i = 0; i < (int64_t)nq * q_dim; i++) {
                if (!(fabsf(out[i] - exp_flat[i]) <= 3e-5f) ||
                    !(fabsf(exp_ring[i] - exp_flat[i]) <= 1e-6f)) {
                    if (!bad)
                        fprintf(stderr,
                                "%s: block at %lld nq=%d element %lld: cpu %.8g ring-ref %.8g "
                                "flat %.8g\n",
                                c->name, (long long)pos, nq, (long long)i, out[i], exp_ring[i],
                                exp_flat[i]);
                    bad++;
                }
            }
            checked++;
        }
        pos += nq;
        blocks++;
    }
    VOX_CHECK(&ts, bad == 0, "%s: %d attention%s outputs off (%d blocks checked)", c->name, bad,
              alibi ? "_alibi" : "", checked);
    free(slopes);
    free(K), free(V), free(kv.k), free(kv.v), free(rkv.k), free(rkv.v), free(q), free(out);
    free(exp_flat), free(exp_ring);
}

static void test_attention(vox_backend *be, vox_rng *r) {
    static const att_case cases[] = {
        /* name, heads, kv heads, hd, window, cap, total, first block, later blocks, check */
        {"MHA unlimited, nq=1 steps", 4, 4, 16, 0, 64, 40, 1, 1, 1},
        {"MHA unlimited, prefill 13 then nq=5", 4, 4, 16, 0, 64, 43, 13, 5, 1},
        {"GQA 4:1 hd36 window > history", 8, 2, 36, 100, 0, 60, 7, 1, 1},
        {"GQA 4:1 hd36 window < history", 8, 2, 36, 16, 0, 90, 5, 5, 1},
        {"GQA 4:1 wrapped ring, nq=4, thousands", 8, 2, 36, 24, 0, 3001, 4, 4, 1},
        {"MHA wrapped ring, nq=1 decode, thousands", 3, 3, 8, 11, 0, 2500, 1, 1, 7},
        {"MHA hd64 window 40, nq=4 (encoder-like)", 8, 8, 64, 40, 0, 200, 4, 4, 3},
        {"GQA 32:8 hd128 window 300 (decoder-like)", 32, 8, 128, 300, 0, 400, 37, 1, 20},
        {"GQA 16:1 hd8 (more heads than rows per task)", 16, 1, 8, 0, 300, 120, 9, 3, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_att_case(be, r, &cases[i], 0);

    /* error cases: out-of-order write, queries beyond the ring, a ring too small, dims */
    int kv_dim = 8;
    vox_kv kv = {vox_test_falloc(4 * kv_dim), vox_test_falloc(4 * kv_dim), 4, kv_dim, 0};
    float k[3 * 8], v[3 * 8], q[3 * 8], out[3 * 8];
    vox_rng_fill(r, k, 24, 1), vox_rng_fill(r, v, 24, 1), vox_rng_fill(r, q, 24, 1);
    int rc = be->ops->kv_write(be, &kv, k, v, 2, 1);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG && kv.end == 0, "kv_write with a gap: rc %d end %lld", rc,
              (long long)kv.end);
    VOX_CHECK(&ts, strstr(be->err.msg, "pos0 = 1") != NULL, "kv_write error message: %s",
              be->err.msg);
    rc = be->ops->kv_write(be, &kv, k, v, 3, 0);
    VOX_CHECK(&ts, rc == VOX_OK && kv.end == 3, "kv_write 0..2 rc %d", rc);
    rc = be->ops->kv_write(be, &kv, k, v, 1, 2);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG && kv.end == 3, "kv_write rewriting 2: rc %d", rc);
    rc = be->ops->attention(be, out, q, 2, 2, &kv, 1, 1, 8, 0, 1.0f);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG, "attention for a query whose key is not written: rc %d",
              rc);
    rc = be->ops->attention(be, out, q, 1, 2, &kv, 2, 2, 8, 0, 1.0f);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG, "attention with kv_dim mismatch: rc %d", rc);
    rc = be->ops->attention(be, out, q, 1, 2, &kv, 3, 2, 4, 0, 1.0f);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG, "attention with n_heads %% n_kv_heads != 0: rc %d", rc);
    rc = be->ops->kv_write(be, &kv, k, v, 3, 3); /* end 6 > cap 4: holds 2..5 */
    VOX_CHECK(&ts, rc == VOX_OK && kv.end == 6, "kv_write 3..5 rc %d", rc);
    rc = be->ops->attention(be, out, q, 1, 5, &kv, 1, 1, 8, 0, 1.0f);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG, "unlimited window over an evicted ring: rc %d", rc);
    rc = be->ops->attention(be, out, q, 2, 4, &kv, 1, 1, 8, 4, 1.0f);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG, "window 4, nq 2 needs cap 5 > 4: rc %d", rc);
    rc = be->ops->attention(be, out, q, 1, 5, &kv, 1, 1, 8, 4, 1.0f);
    VOX_CHECK(&ts, rc == VOX_OK, "window 4, nq 1, cap 4: rc %d: %s", rc, be->err.msg);
    free(kv.k), free(kv.v);
}

static void test_attention_alibi(vox_backend *be, vox_rng *r) {
    static const att_case cases[] = {
        /* name, heads, kv heads, hd, window, cap, total, first block, later blocks, check */
        {"alibi codec-like MHA hd64 window 16, chunks of 8", 8, 8, 64, 16, 0, 150, 8, 8, 1},
        {"alibi window 2, nq=1 decode, cap = window + 1", 4, 4, 16, 2, 0, 60, 1, 1, 1},
        {"alibi GQA 4:1 hd36 window 24, wrapped, nq=5", 8, 2, 36, 24, 0, 700, 5, 5, 3},
        {"alibi unlimited window, prefill 20 then nq=3", 4, 4, 16, 0, 128, 90, 20, 3, 1},
        {"alibi window > history", 2, 1, 8, 100, 0, 40, 7, 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_att_case(be, r, &cases[i], 1);

    /* closed form: one head of size 1, q = 0 (scores are the bias alone), v[kp] = kp, slope ln 2,
     * window 2: query 5 sees keys 3, 4, 5 with weights 1/4, 1/2, 1, so the output is
     * (3/4 + 4/2 + 5) / (7/4) = 31/7 */
    {
        vox_kv kv = {vox_test_falloc(3), vox_test_falloc(3), 3, 1, 0};
        float kk[6] = {0}, vv[6] = {0, 1, 2, 3, 4, 5}, q0 = 0.0f, o = 0.0f;
        float slope = 0.69314718055994531f;
        int rc = be->ops->kv_write(be, &kv, kk, vv, 6, 0);
        rc = rc ? rc : be->ops->attention_alibi(be, &o, &q0, 1, 5, &kv, 1, 1, 1, 2, 1.0f, &slope);
        VOX_CHECK(&ts, rc == VOX_OK && fabs(o - 31.0 / 7.0) < 1e-5,
                  "alibi closed form: rc %d out %.7g, want %.7g", rc, o, 31.0 / 7.0);
        /* the same ring is one slot short for window 3 (needs keys 2..5) */
        rc = be->ops->attention_alibi(be, &o, &q0, 1, 5, &kv, 1, 1, 1, 3, 1.0f, &slope);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG, "alibi window 3 over a ring of 3: rc %d", rc);
        rc = be->ops->attention_alibi(be, &o, &q0, 1, 5, &kv, 1, 1, 1, 2, 1.0f, NULL);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG, "alibi with NULL slopes: rc %d", rc);
        free(kv.k), free(kv.v);
    }
}

/* ---- mul_rows ---- */
static void test_mul_rows(vox_backend *be, vox_rng *r) {
    static const int64_t sh[][2] = {{1, 1}, {1, 9}, {5, 3}, {33, 1024}, {129, 777}};
    for (size_t si = 0; si < sizeof sh / sizeof sh[0]; si++) {
        int64_t rows = sh[si][0], cols = sh[si][1], n = rows * cols;
        float *x = vox_test_falloc(n), *sv = vox_test_falloc(cols), *y = vox_test_falloc(n), *want = vox_test_falloc(n);
        vox_rng_fill(r, x, n, 8.0f);
        vox_rng_fill(r, sv, cols, 2.0f);
        for (int64_t i = 0; i < rows; i++)
            for (int64_t c = 0; c < cols; c++) want[i * cols + c] = x[i * cols + c] * sv[c];
        int rc = be->ops->mul_rows(be, y, x, sv, rows, cols);
        VOX_CHECK(&ts, rc == VOX_OK && memcmp(y, want, (size_t)n * 4) == 0,
                  "mul_rows %lldx%lld: rc %d, output %s", (long long)rows, (long long)cols, rc,
                  memcmp(y, want, (size_t)n * 4) ? "differs" : "equal");
        vox_ref_mul_rows(y, x, sv, rows, cols);
        VOX_CHECK(&ts, memcmp(y, want, (size_t)n * 4) == 0, "vox_ref_mul_rows %lldx%lld",
                  (long long)rows, (long long)cols);
        rc = be->ops->mul_rows(be, x, x, sv, rows, cols);
        VOX_CHECK(&ts, rc == VOX_OK && memcmp(x, want, (size_t)n * 4) == 0,
                  "mul_rows in place %lldx%lld: rc %d", (long long)rows, (long long)cols, rc);
        free(x), free(sv), free(y), free(want);
    }
    float a = 1.0f, b = 2.0f;
    VOX_CHECK(&ts, be->ops->mul_rows(be, &a, &a, NULL, 1, 1) == VOX_ERR_ARG, "mul_rows NULL s");
    VOX_CHECK(&ts, be->ops->mul_rows(be, &a, &a, &b, -1, 1) == VOX_ERR_ARG, "mul_rows rows < 0");
    VOX_CHECK(&ts, be->ops->mul_rows(be, NULL, NULL, NULL, 0, 5) == VOX_OK,
              "mul_rows with 0 rows is a no-op");
}

/* ---- element-wise ---- */
static void test_elementwise(vox_backend *be, vox_rng *r) {
    static const int64_t ns[] = {1, 7, 1000, 100003};
    for (size_t s = 0; s < 4; s++) {
        int64_t n = ns[s];
        float *a = vox_test_falloc(n), *b = vox_test_falloc(n), *y = vox_test_falloc(n), *ref = vox_test_falloc(n), *t = vox_test_falloc(n);
        vox_rng_fill(r, a, n, 8.0f);
        vox_rng_fill(r, b, n, 8.0f);
        char what[64];
#define EW_CHECK(NAME, CALL, REFCALL, INPLACE_CALL)                                          \
    do {                                                                                     \
        int rc_ = (CALL);                                                                    \
        VOX_CHECK(&ts, rc_ == VOX_OK, NAME " rc %d: %s", rc_, be->err.msg);                  \
        REFCALL;                                                                             \
        snprintf(what, sizeof what, NAME " n=%lld", (long long)n);                           \
        close_rel(what, y, ref, n, 1e-6, 1e-30);                                             \
        memcpy(t, a, (size_t)n * sizeof(float));                                             \
        rc_ = (INPLACE_CALL);                                                                \
        VOX_CHECK(&ts, rc_ == VOX_OK, NAME " in place rc %d", rc_);                          \
        snprintf(what, sizeof what, NAME " in place n=%lld", (long long)n);                  \
        close_rel(what, t, ref, n, 1e-6, 1e-30);                                             \
    } while (0)
        EW_CHECK("swiglu", be->ops->swiglu(be, y, a, b, n), vox_ref_swiglu(ref, a, b, n),
                 be->ops->swiglu(be, t, t, b, n));
        EW_CHECK("silu", be->ops->silu(be, y, a, n), vox_ref_silu(ref, a, n),
                 be->ops->silu(be, t, t, n));
        EW_CHECK("gelu", be->ops->gelu(be, y, a, n), vox_ref_gelu(ref, a, n),
                 be->ops->gelu(be, t, t, n));
        EW_CHECK("add", be->ops->add(be, y, a, b, n), vox_ref_add(ref, a, b, n),
                 be->ops->add(be, t, t, b, n));
        EW_CHECK("mul", be->ops->mul(be, y, a, b, n), vox_ref_mul(ref, a, b, n),
                 be->ops->mul(be, t, t, b, n));
        EW_CHECK("scale", be->ops->scale(be, y, a, -0.37f, n), vox_ref_scale(ref, a, -0.37f, n),
                 be->ops->scale(be, t, t, -0.37f, n));
#undef EW_CHECK
        free(a), free(b), free(y), free(ref), free(t);
    }
    /* independent spot values: gelu(1) = 0.841344746, silu(1) = 0.731058579 */
    float one = 1.0f, g, sl;
    be->ops->gelu(be, &g, &one, 1);
    be->ops->silu(be, &sl, &one, 1);
    VOX_CHECK(&ts, fabs(g - 0.841344746) < 1e-6 && fabs(sl - 0.731058579) < 1e-6,
              "gelu(1) = %.9g, silu(1) = %.9g", g, sl);
}

/* ---- softmax ---- */
static void test_softmax(vox_backend *be, vox_rng *r) {
    static const struct {
        int rows, cols;
    } sh[] = {{1, 1}, {3, 17}, {64, 500}, {2, 131072}};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        int64_t len = (int64_t)sh[s].rows * sh[s].cols;
        float *x = vox_test_falloc(len), *y = vox_test_falloc(len), *ref = vox_test_falloc(len);
        vox_rng_fill(r, x, len, 20.0f);
        int rc = be->ops->softmax(be, y, x, sh[s].rows, sh[s].cols);
        VOX_CHECK(&ts, rc == VOX_OK, "softmax rc %d", rc);
        vox_ref_softmax(ref, x, sh[s].rows, sh[s].cols);
        char what[64];
        snprintf(what, sizeof what, "softmax %dx%d", sh[s].rows, sh[s].cols);
        close_rel(what, y, ref, len, 2e-6, 1e-12);
        rc = be->ops->softmax(be, x, x, sh[s].rows, sh[s].cols);
        snprintf(what, sizeof what, "softmax in place %dx%d", sh[s].rows, sh[s].cols);
        close_rel(what, x, ref, len, 2e-6, 1e-12);
        free(x), free(y), free(ref);
    }
}

/* ---- conv1d and conv_transpose1d ---- */
static void test_conv(vox_backend *be, vox_rng *r) {
    static const vox_dtype dts[] = {VOX_DT_F32, VOX_DT_BF16, VOX_DT_F16};
    static const struct {
        int c_in, c_out, k;
    } ch[] = {{5, 7, 3}, {128, 64, 3}, {3, 4, 1}, {6, 5, 7}};
    static const int t_ins[] = {1, 2, 9, 40};
    for (size_t c = 0; c < sizeof ch / sizeof ch[0]; c++)
        for (int stride = 1; stride <= 2; stride++)
            for (int pad = 0; pad <= 2; pad++)
                for (size_t ti = 0; ti < 4; ti++) {
                    int c_in = ch[c].c_in, c_out = ch[c].c_out, k = ch[c].k, t_in = t_ins[ti];
                    vox_dtype dt = dts[(c + ti + (size_t)pad) % 3];
                    int t_out = vox_ref_conv1d_out_len(t_in, k, stride, pad);
                    vox_test_wmat w = vox_test_wmat_make(r, dt, c_out, (int64_t)c_in * k, 1.0f);
                    vox_test_wmat wa = vox_test_wmat_abs(&w);
                    float *x = vox_test_falloc((int64_t)t_in * c_in), *xa = vox_test_falloc((int64_t)t_in * c_in);
                    float *b = vox_test_falloc(c_out), *ba = vox_test_falloc(c_out);
                    int64_t ny = (int64_t)t_out * c_out;
                    float *y = vox_test_falloc(ny + 1), *ref = vox_test_falloc(ny + 1), *absref = vox_test_falloc(ny + 1);
                    vox_rng_fill(r, x, (int64_t)t_in * c_in, 1.0f);
                    vox_rng_fill(r, b, c_out, 1.0f);
                    vox_test_absv(xa, x, (int64_t)t_in * c_in);
                    vox_test_absv(ba, b, c_out);
                    y[ny] = 12345.0f; /* guard after the output */
                    int use_b = (int)(ti % 2);
                    int rc = be->ops->conv1d(be, y, x, &w.m, use_b ? b : NULL, t_in, c_in, c_out,
                                             k, stride, pad);
                    VOX_CHECK(&ts, rc == VOX_OK, "conv1d rc %d: %s", rc, be->err.msg);
                    vox_ref_conv1d(ref, x, &w.m, use_b ? b : NULL, t_in, c_in, c_out, k, stride,
                                   pad);
                    vox_ref_conv1d(absref, xa, &wa.m, use_b ? ba : NULL, t_in, c_in, c_out, k,
                                   stride, pad);
                    char what[128];
                    snprintf(what, sizeof what, "conv1d %s t_in=%d c=%d->%d k=%d s=%d pad=%d",
                             dt_name(dt), t_in, c_in, c_out, k, stride, pad);
                    close_dot(what, y, ref, absref, ny, (int64_t)c_in * k);
                    VOX_CHECK(&ts, y[ny] == 12345.0f, "%s wrote past t_out = %d", what, t_out);
                    free(w.data), free(wa.data), free(x), free(xa), free(b), free(ba);
                    free(y), free(ref), free(absref);
                }
    /* the t_out formula: t_in=9, k=3, stride 2, pad 1 -> (9+1-3)/2+1 = 4 */
    VOX_CHECK(&ts, vox_ref_conv1d_out_len(9, 3, 2, 1) == 4 && vox_ref_conv1d_out_len(1, 3, 1, 0) == 0,
              "conv1d output length formula");

    static const struct {
        int c_in, c_out, k, stride;
    } tc[] = {{6, 5, 4, 2}, {5, 3, 8, 4}, {4, 6, 3, 2}, {64, 48, 4, 2}, {7, 2, 2, 4}, {5, 40, 4, 2}};
    static const int tt[] = {1, 5, 33};
    for (size_t c = 0; c < sizeof tc / sizeof tc[0]; c++)
        for (size_t ti = 0; ti < 3; ti++) {
            int c_in = tc[c].c_in, c_out = tc[c].c_out, k = tc[c].k, s = tc[c].stride;
            int t_in = tt[ti], t_out = (t_in - 1) * s + k;
            vox_dtype dt = dts[(c + ti) % 3];
            vox_test_wmat w = vox_test_wmat_make(r, dt, c_in, (int64_t)c_out * k, 1.0f);
            vox_test_wmat wa = vox_test_wmat_abs(&w);
            float *x = vox_test_falloc((int64_t)t_in * c_in), *xa = vox_test_falloc((int64_t)t_in * c_in);
            float *b = vox_test_falloc(c_out), *ba = vox_test_falloc(c_out);
            int64_t ny = (int64_t)t_out * c_out;
            float *y = vox_test_falloc(ny + 1), *ref = vox_test_falloc(ny), *absref = vox_test_falloc(ny);
            vox_rng_fill(r, x, (int64_t)t_in * c_in, 1.0f);
            vox_rng_fill(r, b, c_out, 1.0f);
            vox_rng_fill(r, y, ny, 100.0f); /* garbage: the op must overwrite, not accumulate */
            y[ny] = 12345.0f;
            vox_test_absv(xa, x, (int64_t)t_in * c_in);
            vox_test_absv(ba, b, c_out);
            int use_b = (int)((c + ti) % 2);
            int rc = be->ops->conv_transpose1d(be, y, x, &w.m, use_b ? b : NULL, t_in, c_in,
                                               c_out, k, s);
            VOX_CHECK(&ts, rc == VOX_OK, "conv_transpose1d rc %d: %s", rc, be->err.msg);
            vox_ref_conv_transpose1d(ref, x, &w.m, use_b ? b : NULL, t_in, c_in, c_out, k, s);
            vox_ref_conv_transpose1d(absref, xa, &wa.m, use_b ? ba : NULL, t_in, c_in, c_out, k, s);
            char what[128];
            snprintf(what, sizeof what, "conv_transpose1d %s t_in=%d c=%d->%d k=%d s=%d",
                     dt_name(dt), t_in, c_in, c_out, k, s);
            close_dot(what, y, ref, absref, ny, (int64_t)c_in * ((k + s - 1) / s));
            VOX_CHECK(&ts, y[ny] == 12345.0f, "%s wrote past t_out = %d", what, t_out);
            free(w.data), free(wa.data), free(x), free(xa), free(b), free(ba);
            free(y), free(ref), free(absref);
        }
    /* independent check of the layout: c_in = c_out = 1, k = 2, stride 2, w = [1, 10]:
     * x = [1, 2] -> y = [1, 10, 2, 20] */
    {
        float w[2] = {1.0f, 10.0f}, x[2] = {1.0f, 2.0f}, y[4];
        vox_mat m = {w, VOX_DT_F32, 1, 2};
        int rc = be->ops->conv_transpose1d(be, y, x, &m, NULL, 2, 1, 1, 2, 2);
        VOX_CHECK(&ts, rc == VOX_OK && y[0] == 1 && y[1] == 10 && y[2] == 2 && y[3] == 20,
                  "conv_transpose1d layout: %g %g %g %g", y[0], y[1], y[2], y[3]);
        /* conv1d, c_in = 2, c_out = 1, k = 2: w[0][ci][j] = {{1, 2}, {3, 4}}, left pad 1:
         * x = [[1, 0], [0, 1]] -> y0 = pad,x0: 2*1 = 2; y1 = x0,x1: 1*1 + 4*1 = 5 */
        float w2[4] = {1, 2, 3, 4}, x2[4] = {1, 0, 0, 1}, y2[2];
        vox_mat m2 = {w2, VOX_DT_F32, 1, 4};
        rc = be->ops->conv1d(be, y2, x2, &m2, NULL, 2, 2, 1, 2, 1, 1);
        VOX_CHECK(&ts, rc == VOX_OK && y2[0] == 2 && y2[1] == 5, "conv1d layout: %g %g", y2[0],
                  y2[1]);
    }
    /* dims that do not match the weight */
    {
        float w[12] = {0}, x[8] = {0}, y[16];
        vox_mat m = {w, VOX_DT_F32, 3, 4};
        int rc = be->ops->conv1d(be, y, x, &m, NULL, 4, 2, 3, 3, 1, 0);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG, "conv1d with w.cols != c_in*k: rc %d", rc);
        rc = be->ops->conv_transpose1d(be, y, x, &m, NULL, 2, 4, 3, 1, 1);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG, "conv_transpose1d with w.rows != c_in: rc %d", rc);
    }
}

/* ---- embed ---- */
static void test_embed(vox_backend *be, vox_rng *r) {
    static const vox_dtype dts[] = {VOX_DT_F32, VOX_DT_BF16, VOX_DT_F16};
    for (size_t d = 0; d < 3; d++) {
        int rows = 50, cols = 37, n = 6;
        vox_test_wmat t = vox_test_wmat_make(r, dts[d], rows, cols, 2.0f);
        int32_t ids[6] = {0, 49, 7, 7, 23, 1};
        float *y = vox_test_falloc((int64_t)n * cols), *ref = vox_test_falloc((int64_t)n * cols);
        int rc = be->ops->embed(be, y, &t.m, ids, n);
        VOX_CHECK(&ts, rc == VOX_OK, "embed rc %d: %s", rc, be->err.msg);
        int rrc = vox_ref_embed(ref, &t.m, ids, n);
        VOX_CHECK(&ts, rrc == VOX_OK && memcmp(y, ref, (size_t)n * cols * sizeof(float)) == 0,
                  "embed %s differs from the reference", dt_name(dts[d]));
        int32_t bad_ids[3] = {3, 50, 2};
        rc = be->ops->embed(be, y, &t.m, bad_ids, 3);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG && strstr(be->err.msg, "50") != NULL,
                  "embed with id 50 of 50 rows: rc %d msg '%s'", rc, be->err.msg);
        VOX_CHECK(&ts, vox_ref_embed(ref, &t.m, bad_ids, 3) == VOX_ERR_ARG,
                  "ref embed out of range");
        int32_t neg[1] = {-1};
        rc = be->ops->embed(be, y, &t.m, neg, 1);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG && strstr(be->err.msg, "-1") != NULL,
                  "embed with id -1: rc %d msg '%s'", rc, be->err.msg);
        free(t.data), free(y), free(ref);
    }
    /* independent: bf16 0x3f80 is 1.0, 0xc000 is -2.0; f16 0x3c00 is 1.0, 0x3555 ~ 0.333 */
    uint16_t tb[4] = {0x3f80, 0xc000, 0x0000, 0x4049};
    uint16_t th[4] = {0x3c00, 0x3555, 0x8000, 0x7bff};
    vox_mat mb = {tb, VOX_DT_BF16, 2, 2}, mh = {th, VOX_DT_F16, 2, 2};
    int32_t ids[2] = {1, 0};
    float y[4];
    be->ops->embed(be, y, &mb, ids, 2);
    VOX_CHECK(&ts, y[0] == 0.0f && y[1] == 3.140625f && y[2] == 1.0f && y[3] == -2.0f,
              "bf16 embed values %g %g %g %g", y[0], y[1], y[2], y[3]);
    be->ops->embed(be, y, &mh, ids, 2);
    VOX_CHECK(&ts, y[0] == 0.0f && signbit(y[0]) && y[1] == 65504.0f && y[2] == 1.0f &&
                       fabsf(y[3] - 0.33325195f) < 1e-8f,
              "f16 embed values %g %g %g %.9g", y[0], y[1], y[2], y[3]);
}

/* ---- argmax ---- */
static void test_argmax(vox_backend *be, vox_rng *r) {
    float x[5 * 6] = {
        1, 3, 3, 2, 3, 0,                            /* tie: first 3 at 1 */
        NAN, -5, -4, NAN, -4, -9,                    /* NaN first: -4 at 2 */
        NAN, NAN, NAN, NAN, NAN, NAN,                /* all NaN: 0 */
        -INFINITY, -INFINITY, -INFINITY, -1e30f, -INFINITY, -INFINITY, /* 3 */
        0, 0, 0, 0, 0, INFINITY,                     /* 5 */
    };
    int32_t out[5], ref[5];
    int rc = be->ops->argmax(be, out, x, 5, 6);
    vox_ref_argmax(ref, x, 5, 6);
    VOX_CHECK(&ts, rc == VOX_OK && out[0] == 1 && out[1] == 2 && out[2] == 0 && out[3] == 3 &&
                       out[4] == 5,
              "argmax special rows: %d %d %d %d %d", out[0], out[1], out[2], out[3], out[4]);
    VOX_CHECK(&ts, memcmp(out, ref, sizeof out) == 0, "argmax ref disagrees on special rows");
    float neg[3] = {-INFINITY, -INFINITY, -INFINITY};
    rc = be->ops->argmax(be, out, neg, 1, 3);
    VOX_CHECK(&ts, rc == VOX_OK && out[0] == 0, "argmax all -inf: %d", out[0]);
    int rows = 7, cols = 131072;
    float *big = vox_test_falloc((int64_t)rows * cols);
    vox_rng_fill(r, big, (int64_t)rows * cols, 10.0f);
    int32_t bo[7], br[7];
    be->ops->argmax(be, bo, big, rows, cols);
    vox_ref_argmax(br, big, rows, cols);
    VOX_CHECK(&ts, memcmp(bo, br, sizeof bo) == 0, "argmax random rows differ from ref");
    free(big);
}

/* ---- argument validation ---- */
static void test_errors(vox_backend *be) {
    float a[16] = {0}, y[16];
    vox_mat w = {a, VOX_DT_F32, 4, 4};
    VOX_CHECK(&ts, be->ops->matmul(be, y, a, NULL, NULL, 1) == VOX_ERR_ARG, "matmul NULL w");
    VOX_CHECK(&ts, be->ops->matmul(be, y, a, &w, NULL, -1) == VOX_ERR_ARG, "matmul n < 0");
    VOX_CHECK(&ts, strncmp(be->err.msg, "cpu matmul", 10) == 0, "error message '%s'", be->err.msg);
    VOX_CHECK(&ts, be->ops->matmul(be, y, a, &w, NULL, 0) == VOX_OK, "matmul n = 0 is a no-op");
    vox_mat wbad = {a, VOX_DT_I32, 4, 4};
    VOX_CHECK(&ts, be->ops->matmul(be, y, a, &wbad, NULL, 1) == VOX_ERR_ARG, "matmul I32 w");
    VOX_CHECK(&ts, be->ops->rmsnorm(be, y, a, NULL, 1, 0, 1e-5f) == VOX_ERR_ARG, "rmsnorm dim 0");
    VOX_CHECK(&ts, be->ops->rope(be, a, 1, 1, 3, 0, 1e4f) == VOX_ERR_ARG, "rope odd head_dim");
    VOX_CHECK(&ts, be->ops->add(be, y, a, NULL, 4) == VOX_ERR_ARG, "add NULL b");
    VOX_CHECK(&ts, be->ops->softmax(be, y, a, 1, 0) == VOX_ERR_ARG, "softmax cols 0");
    VOX_CHECK(&ts, be->ops->argmax(be, NULL, a, 1, 4) == VOX_ERR_ARG, "argmax NULL out");
}

static void test_memory(vox_backend *be) {
    float *p = be->ops->alloc(be, 1000 * sizeof(float));
    VOX_CHECK(&ts, p != NULL && ((uintptr_t)p % 64) == 0, "alloc aligned");
    int zero = 1;
    for (int i = 0; p && i < 1000; i++) zero &= p[i] == 0.0f;
    VOX_CHECK(&ts, zero, "alloc zero-filled");
    float src[4] = {1, 2, 3, 4}, dst[4] = {0};
    be->ops->upload(be, p, src, sizeof src);
    be->ops->copy(be, p + 4, p, sizeof src);
    be->ops->zero(be, p, sizeof src);
    be->ops->sync(be);
    be->ops->download(be, dst, p + 4, sizeof dst);
    VOX_CHECK(&ts, memcmp(src, dst, sizeof src) == 0 && p[0] == 0.0f, "upload/copy/download");
    be->ops->free(be, p);
    const char *d = be->ops->describe(be);
    VOX_CHECK(&ts, d && strncmp(d, "cpu: ", 5) == 0 && strstr(d, "OpenBLAS") != NULL,
              "describe: '%s'", d ? d : "(null)");
    VOX_CHECK(&ts, strcmp(be->name, "cpu") == 0, "name '%s'", be->name);
}

static void run_all(vox_backend *be, uint64_t seed) {
    vox_rng r = {seed};
    printf("backend: %s\n", be->ops->describe(be));
    fflush(stdout);
    test_memory(be);
    test_matmul(be, &r);
    test_rmsnorm(be, &r);
    test_rope(be, &r);
    test_attention(be, &r);
    test_attention_alibi(be, &r);
    test_elementwise(be, &r);
    test_mul_rows(be, &r);
    test_softmax(be, &r);
    test_conv(be, &r);
    test_embed(be, &r);
    test_argmax(be, &r);
    test_errors(be);
}

int main(void) {
    static const struct {
        const char *isa; /* NULL: best */
        int threads;
        int tiny_blocks;
    } cfg[] = {{NULL, 2, 0},      {"scalar", 1, 0}, {NULL, 3, 1},
               {"avx2", 2, 0},    {"avx512", 2, 0}, {"avx512bf16", 2, 0}};
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++) {
        if (cfg[i].isa) setenv("VOX_ISA", cfg[i].isa, 1);
        else unsetenv("VOX_ISA");
        vox_error err = {0};
        vox_backend *be = vox_cpu_backend_create(cfg[i].threads, &err);
        VOX_CHECK(&ts, be != NULL, "vox_cpu_backend_create: %s", err.msg);
        if (!be) continue;
        VOX_CHECK(&ts, be->n_threads == cfg[i].threads, "n_threads %d, asked %d", be->n_threads,
                  cfg[i].threads);
        char want[32];
        snprintf(want, sizeof want, "matvec %s,", cfg[i].isa ? cfg[i].isa : "");
        if (cfg[i].isa && !strstr(be->ops->describe(be), want)) {
            printf("skip: this CPU has no %s path\n", cfg[i].isa);
            vox_backend_destroy(be);
            continue;
        }
        dot_slack = strstr(be->ops->describe(be), "matvec avx512bf16,") ? 1.0 / 65536 : 0.0;
        if (cfg[i].tiny_blocks) {
            cpu_of(be)->wblock_floats = 1000;
            cpu_of(be)->col_floats = 3000;
        }
        run_all(be, 0x5eed0000u + i);
        vox_backend_destroy(be);
    }
    unsetenv("VOX_ISA");
    return vox_test_done(&ts, "test_ops");
}
