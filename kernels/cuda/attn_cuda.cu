/* attn_cuda.cu - KV ring writes and attention for the CUDA backend.
 *
 * kv_write: position p lives in slot p % cap; a block of rows is at most two contiguous runs
 * of slots (before and after the wrap), copied with cudaMemcpyAsync on the stream. With
 * n > cap only the last cap rows are copied (the others would be overwritten).
 *
 * attention: grid (nq, n_heads, S). Block (i, h, s) handles query i, head h and split s of the
 * query's visible keys first .. qp (vox_attn_first_key), taken in position order; the ring slot
 * of position p is p % cap (the host checks that the ring still holds every needed position).
 * Each of the block's ATT_WARPS warps takes ATT_KU keys at a time (independent loads for
 * latency hiding): lane l holds dims l, l+32, ... of q and of its accumulator (a template on
 * the dims per lane, so head_dim 64 / 128 keep 2 / 4 floats each in registers); the dot products
 * are reduced with warp shuffles; softmax is the online form (running max m, sum l, accumulator
 * rescaled by exp(m_old - m_new)). The warps' (m, l, acc) are merged in shared memory. With one
 * split the block writes acc / l; otherwise it stores (acc, m, l) and merge_kernel combines the
 * splits: out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s. Splits are used when
 * nq * n_heads blocks would leave the GPU idle (decode steps, short streaming chunks).
 * attention_alibi is the same kernel with slopes set: each score gets vox_alibi_bias(slope_h,
 * qp, kp) and the window is widened by one key (vox_alibi_window_keys).
 * Precision: fp32 scores and accumulators, expf (not the fast intrinsic). */
#include "cuda_backend.h"

#include <limits.h>

#define ATT_WARPS 4
#define ATT_KU 4                       /* keys per warp per iteration */
#define ATT_MIN_KEYS_PER_SPLIT 128
#define ATT_MAX_SPLITS 64

/* ---- kv_write ---- */

int cu_kv_write(vox_backend *be, vox_kv *kv, const float *k, const float *v, int n,
                int64_t pos0) {
    const char *op = "kv_write";
    if (!kv || !kv->k || !kv->v) return cu_arg_error(be, op, "NULL ring");
    if (kv->cap <= 0 || kv->kv_dim <= 0)
        return cu_arg_error(be, op, "ring has cap = %lld, kv_dim = %d; expected > 0",
                            (long long)kv->cap, kv->kv_dim);
    if (n < 0) return cu_arg_error(be, op, "n = %d, expected >= 0", n);
    if (pos0 != kv->end)
        return cu_arg_error(be, op,
                            "pos0 = %lld but the ring ends at %lld (positions are written in "
                            "order, without gaps)",
                            (long long)pos0, (long long)kv->end);
    if (n == 0) return VOX_OK;
    if (!k || !v) return cu_arg_error(be, op, "NULL k or v");
    int rc = cu_enter(be, op);
    if (rc) return rc;
    cudaStream_t st = cu_of(be)->stream;
    size_t row = (size_t)kv->kv_dim * sizeof(float);
    int64_t first = n > kv->cap ? n - kv->cap : 0; /* rows that survive: first .. n-1 */
    int64_t i = first;
    while (i < n) {
        int64_t slot = (pos0 + i) % kv->cap;
        int64_t run = kv->cap - slot; /* slots until the wrap */
        if (run > n - i) run = n - i;
        cudaError_t e = cudaMemcpyAsync(kv->k + slot * kv->kv_dim, k + i * kv->kv_dim,
                                        (size_t)run * row, cudaMemcpyDeviceToDevice, st);
        if (e == cudaSuccess)
            e = cudaMemcpyAsync(kv->v + slot * kv->kv_dim, v + i * kv->kv_dim, (size_t)run * row,
                                cudaMemcpyDeviceToDevice, st);
        if (e != cudaSuccess) return cu_cuda_error(be, op, "cudaMemcpyAsync", e);
        i += run;
    }
    kv->end = pos0 + n;
    return VOX_OK;
}

/* ---- attention kernels ---- */

struct att_args {
    float *out;        /* [nq][n_heads * hd] */
    float *part;       /* [nq][n_heads][S][hd + 2] or NULL when S == 1 */
    const float *q;    /* [nq][n_heads * hd] */
    const float *k, *v; /* ring [cap][kv_dim] */
    int64_t cap, q_pos0;
    int kv_dim, n_heads, group, hd, window, S; /* window: visible keys incl. the query's */
    float scale;
    const float *slopes; /* [n_heads] ALiBi slopes (attention_alibi) or NULL */
};

/* ATT_T = dims per lane: 2, 4, 8 or 16 (head_dim up to 64, 128, 256, 512). */
template <int ATT_T>
__global__ void __launch_bounds__(ATT_WARPS * 32) attn_kernel(att_args a) {
    CU_DYN_SHARED(float, sh); /* ATT_WARPS x (hd + 2) */
    const int i = blockIdx.x, h = blockIdx.y, s = blockIdx.z;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int hd = a.hd;
    const int64_t qp = a.q_pos0 + i;
    /* this split's keys: a contiguous part of first .. qp */
    const int64_t first = vox_attn_first_key(qp, a.window);
    const int64_t nk = qp - first + 1;
    const int64_t per = (nk + a.S - 1) / a.S;
    const int64_t k0 = first + (int64_t)s * per;
    int64_t k1 = k0 + per - 1;
    if (k1 > qp) k1 = qp;

    const float *qr = a.q + ((int64_t)i * a.n_heads + h) * hd;
    const int64_t koff = (int64_t)(h / a.group) * hd;
    float qv[ATT_T], acc[ATT_T];
#pragma unroll
    for (int t = 0; t < ATT_T; t++) {
        int d = lane + 32 * t;
        qv[t] = d < hd ? qr[d] : 0.0f;
        acc[t] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int64_t base = k0 + (int64_t)warp * ATT_KU; base <= k1; base += ATT_WARPS * ATT_KU) {
        float sc[ATT_KU];
        const float *vr[ATT_KU];
#pragma unroll
        for (int u = 0; u < ATT_KU; u++) {
            int64_t p = base + u;
            sc[u] = 0.0f;
            vr[u] = NULL;
            if (p <= k1 && vox_attn_visible(qp, p, a.window)) {
                int64_t slot = p % a.cap;
                const float *kr = a.k + slot * a.kv_dim + koff;
                vr[u] = a.v + slot * a.kv_dim + koff;
                float part = 0.0f;
#pragma unroll
                for (int t = 0; t < ATT_T; t++) {
                    int d = lane + 32 * t;
                    if (d < hd) part += qv[t] * kr[d];
                }
                sc[u] = part;
            }
        }
#pragma unroll
        for (int u = 0; u < ATT_KU; u++)
            for (int o = 16; o > 0; o >>= 1) sc[u] += __shfl_xor_sync(0xffffffffu, sc[u], o);
        float mx = m;
#pragma unroll
        for (int u = 0; u < ATT_KU; u++) {
            sc[u] = vr[u] ? sc[u] * a.scale : -INFINITY;
            if (vr[u] && a.slopes) sc[u] += vox_alibi_bias(a.slopes[h], qp, base + u);
            mx = fmaxf(mx, sc[u]);
        }
        if (mx == -INFINITY) continue; /* no visible key in this group (warp-uniform) */
        float corr = expf(m - mx);     /* 0 when m was -inf */
        l *= corr;
#pragma unroll
        for (int t = 0; t < ATT_T; t++) acc[t] *= corr;
#pragma unroll
        for (int u = 0; u < ATT_KU; u++) {
            if (!vr[u]) continue;
            float p = expf(sc[u] - mx);
            l += p;
#pragma unroll
            for (int t = 0; t < ATT_T; t++) {
                int d = lane + 32 * t;
                if (d < hd) acc[t] += p * vr[u][d];
            }
        }
        m = mx;
    }
    /* merge the warps */
    float *mine = sh + (size_t)warp * (hd + 2);
#pragma unroll
    for (int t = 0; t < ATT_T; t++) {
        int d = lane + 32 * t;
        if (d < hd) mine[d] = acc[t];
    }
    if (lane == 0) {
        mine[hd] = m;
        mine[hd + 1] = l;
    }
    __syncthreads();
    float M = -INFINITY;
    for (int w = 0; w < ATT_WARPS; w++) M = fmaxf(M, sh[(size_t)w * (hd + 2) + hd]);
    float L = 0.0f, wt[ATT_WARPS];
    for (int w = 0; w < ATT_WARPS; w++) {
        float mw = sh[(size_t)w * (hd + 2) + hd];
        wt[w] = mw == -INFINITY ? 0.0f : expf(mw - M);
        L += wt[w] * sh[(size_t)w * (hd + 2) + hd + 1];
    }
    if (a.S == 1) {
        float *o = a.out + ((int64_t)i * a.n_heads + h) * hd;
        float inv = L > 0.0f ? 1.0f / L : 0.0f;
        for (int d = threadIdx.x; d < hd; d += blockDim.x) {
            float sum = 0.0f;
            for (int w = 0; w < ATT_WARPS; w++) sum += wt[w] * sh[(size_t)w * (hd + 2) + d];
            o[d] = sum * inv;
        }
    } else {
        float *pr = a.part + (((int64_t)i * a.n_heads + h) * a.S + s) * (hd + 2);
        for (int d = threadIdx.x; d < hd; d += blockDim.x) {
            float sum = 0.0f;
            for (int w = 0; w < ATT_WARPS; w++) sum += wt[w] * sh[(size_t)w * (hd + 2) + d];
            pr[d] = sum;
        }
        if (threadIdx.x == 0) {
            pr[hd] = M;
            pr[hd + 1] = L;
        }
    }
}

/* One block per (query, head): combine the S partial (acc, m, l). */
__global__ void merge_kernel(att_args a) {
    const int i = blockIdx.x, h = blockIdx.y, hd = a.hd, S = a.S;
    const float *pr = a.part + ((int64_t)i * a.n_heads + h) * S * (hd + 2);
    float M = -INFINITY;
    for (int s = 0; s < S; s++) M = fmaxf(M, pr[(size_t)s * (hd + 2) + hd]);
    double L = 0.0;
    for (int s = 0; s < S; s++) {
        float ms = pr[(size_t)s * (hd + 2) + hd];
        if (ms != -INFINITY) L += (double)expf(ms - M) * pr[(size_t)s * (hd + 2) + hd + 1];
    }
    float inv = L > 0.0 ? (float)(1.0 / L) : 0.0f;
    float *o = a.out + ((int64_t)i * a.n_heads + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float sum = 0.0f;
        for (int s = 0; s < S; s++) {
            float ms = pr[(size_t)s * (hd + 2) + hd];
            if (ms != -INFINITY) sum += expf(ms - M) * pr[(size_t)s * (hd + 2) + d];
        }
        o[d] = sum * inv;
    }
}

/* Shared by attention and attention_alibi: `window` counts the visible keys including the
 * query's own (vox_attn_visible); slopes NULL means no bias. */
static int attention_impl(vox_backend *be, const char *op, float *out, const float *q, int nq,
                          int64_t q_pos0, const vox_kv *kv, int n_heads, int n_kv_heads,
                          int head_dim, int window, float scale, const float *slopes) {
    if (!kv || !kv->k || !kv->v) return cu_arg_error(be, op, "NULL ring");
    if (nq < 0 || n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0 || n_heads % n_kv_heads)
        return cu_arg_error(be, op,
                            "nq = %d, n_heads = %d, n_kv_heads = %d, head_dim = %d (expected "
                            "nq >= 0, positive heads, n_heads a multiple of n_kv_heads)",
                            nq, n_heads, n_kv_heads, head_dim);
    if (head_dim > CU_ATT_MAX_HD)
        return cu_arg_error(be, op, "head_dim = %d, this backend supports up to %d", head_dim,
                            CU_ATT_MAX_HD);
    if (n_heads > 65535)
        return cu_arg_error(be, op, "n_heads = %d, nq = %d: too many for one launch", n_heads,
                            nq);
    if ((int64_t)n_kv_heads * head_dim != kv->kv_dim)
        return cu_arg_error(be, op, "n_kv_heads * head_dim = %lld but the ring has kv_dim = %d",
                            (long long)n_kv_heads * head_dim, kv->kv_dim);
    if (kv->cap <= 0) return cu_arg_error(be, op, "ring cap = %lld", (long long)kv->cap);
    if (nq == 0) return VOX_OK;
    if (!out || !q) return cu_arg_error(be, op, "NULL buffer");
    if (q_pos0 < 0 || q_pos0 + nq > kv->end)
        return cu_arg_error(be, op,
                            "queries at positions %lld..%lld but the ring holds keys up to "
                            "%lld (write k/v of every query before attention)",
                            (long long)q_pos0, (long long)(q_pos0 + nq - 1),
                            (long long)kv->end - 1);
    int64_t start = kv->end > kv->cap ? kv->end - kv->cap : 0;
    int64_t need = vox_attn_first_key(q_pos0, window);
    if (need < start)
        return cu_arg_error(be, op,
                            "query at %lld with window %d needs key %lld but the ring (cap %lld)"
                            " holds %lld..%lld; cap must cover every visible key of the block",
                            (long long)q_pos0, window, (long long)need, (long long)kv->cap,
                            (long long)start, (long long)kv->end - 1);
    int rc = cu_enter(be, op);
    if (rc) return rc;
    cu_impl *im = cu_of(be);

    /* key splits: enough blocks to fill the GPU twice, at least ATT_MIN_KEYS_PER_SPLIT keys each */
    int64_t blocks = (int64_t)nq * n_heads;
    int64_t last = q_pos0 + nq - 1;
    int64_t max_keys = last - vox_attn_first_key(last, window) + 1;
    int S = 1;
    int64_t want = (2 * (int64_t)im->n_sm + blocks - 1) / blocks;
    int64_t by_keys = max_keys / ATT_MIN_KEYS_PER_SPLIT;
    if (want > 1 && by_keys > 1) {
        int64_t s = want < by_keys ? want : by_keys;
        S = (int)(s < ATT_MAX_SPLITS ? s : ATT_MAX_SPLITS);
    }
    att_args a;
    a.out = out;
    a.part = NULL;
    a.q = q;
    a.k = kv->k;
    a.v = kv->v;
    a.cap = kv->cap;
    a.q_pos0 = q_pos0;
    a.kv_dim = kv->kv_dim;
    a.n_heads = n_heads;
    a.group = n_heads / n_kv_heads;
    a.hd = head_dim;
    a.window = window;
    a.S = S;
    a.scale = scale;
    a.slopes = slopes;
    if (S > 1) {
        size_t bytes = (size_t)blocks * S * (head_dim + 2) * sizeof(float);
        if ((rc = cu_scratch_reserve(be, &im->att, bytes, op))) return rc;
        a.part = (float *)im->att.p;
    }
    size_t shmem = (size_t)ATT_WARPS * (head_dim + 2) * sizeof(float);
    dim3 grid((unsigned)nq, (unsigned)n_heads, (unsigned)S);
    if (head_dim <= 64) CU_LAUNCH(attn_kernel<2>, grid, ATT_WARPS * 32, shmem, im->stream, a);
    else if (head_dim <= 128) CU_LAUNCH(attn_kernel<4>, grid, ATT_WARPS * 32, shmem, im->stream, a);
    else if (head_dim <= 256) CU_LAUNCH(attn_kernel<8>, grid, ATT_WARPS * 32, shmem, im->stream, a);
    else CU_LAUNCH(attn_kernel<16>, grid, ATT_WARPS * 32, shmem, im->stream, a);
    if ((rc = cu_check_launch(be, op))) return rc;
    if (S > 1) {
        CU_LAUNCH(merge_kernel, dim3((unsigned)nq, (unsigned)n_heads), 128, 0, im->stream, a);
        if ((rc = cu_check_launch(be, op))) return rc;
    }
    return VOX_OK;
}

int cu_attention(vox_backend *be, float *out, const float *q, int nq, int64_t q_pos0,
                 const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim, int window,
                 float scale) {
    return attention_impl(be, "attention", out, q, nq, q_pos0, kv, n_heads, n_kv_heads, head_dim,
                          window, scale, NULL);
}

/* ALiBi: keys qp - window .. qp are window + 1 keys, i.e. the plain op's window + 1; slopes is
 * device memory [n_heads]. */
int cu_attention_alibi(vox_backend *be, float *out, const float *q, int nq, int64_t q_pos0,
                       const vox_kv *kv, int n_heads, int n_kv_heads, int head_dim, int window,
                       float scale, const float *slopes) {
    const char *op = "attention_alibi";
    if (!slopes) return cu_arg_error(be, op, "NULL slopes");
    if (window == INT_MAX) return cu_arg_error(be, op, "window = %d is too large", window);
    return attention_impl(be, op, out, q, nq, q_pos0, kv, n_heads, n_kv_heads, head_dim,
                          vox_alibi_window_keys(window), scale, slopes);
}
