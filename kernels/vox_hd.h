/* vox_hd.h - per-element math shared by the CPU backend, the CUDA backend and the reference
 * loops. Every helper is `static inline VOX_HD`, i.e. __host__ __device__ under nvcc, so the
 * CPU unit tests exercise exactly the arithmetic the GPU kernels run.
 *
 * Conventions: all activations are fp32. bf16 is stored as uint16_t (the top half of an
 * IEEE fp32). Nothing here allocates or touches global state. */
#ifndef VOX_HD_H
#define VOX_HD_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define VOX_HD __host__ __device__
#else
#define VOX_HD
#endif

/* bf16 -> fp32 is exact: the bf16 bits are the high 16 bits of the fp32. */
static inline VOX_HD float vox_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

/* fp32 -> bf16 with round-to-nearest-even; NaN stays a (quiet) NaN. */
static inline VOX_HD uint16_t vox_f32_to_bf16(float f) {
    union { uint32_t u; float f; } v;
    v.f = f;
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x0040u);
    uint32_t lsb = (v.u >> 16) & 1u;
    return (uint16_t)((v.u + 0x7fffu + lsb) >> 16);
}

/* IEEE half -> fp32 (handles subnormals, inf, nan). */
static inline VOX_HD float vox_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    union { uint32_t u; float f; } v;
    if (exp == 0) {
        /* zero or subnormal: value = mant * 2^-24 */
        float m = (float)mant * 5.9604644775390625e-8f;
        return sign ? -m : m;
    } else if (exp == 31) {
        v.u = sign | 0x7f800000u | (mant << 13);
    } else {
        v.u = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    return v.f;
}

/* SiLU(x) = x * sigmoid(x). */
static inline VOX_HD float vox_silu(float x) { return x / (1.0f + expf(-x)); }

/* GELU, exact erf form: 0.5 x (1 + erf(x / sqrt 2)). */
static inline VOX_HD float vox_gelu(float x) {
    return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
}

/* SwiGLU element: silu(gate) * up. */
static inline VOX_HD float vox_swiglu(float gate, float up) { return vox_silu(gate) * up; }

/* RMSNorm scale for a row: 1 / sqrt(mean(x^2) + eps), given sum of squares over dim. */
static inline VOX_HD float vox_rms_inv(float sumsq, int dim, float eps) {
    return 1.0f / sqrtf(sumsq / (float)dim + eps);
}

/* RoPE inverse frequency for pair j of a head of size head_dim: theta^(-2j/head_dim).
 * Computed in double and rounded once, as torch computes it in fp32 from an exact power. */
static inline VOX_HD float vox_rope_inv_freq(int j, int head_dim, float theta) {
    return (float)(1.0 / pow((double)theta, (double)(2 * j) / (double)head_dim));
}

/* cos and sin of the RoPE angle pos * inv_freq (fp32 product, as the reference does). */
static inline VOX_HD void vox_rope_cs(int pos, float inv_freq, float *c, float *s) {
    float ang = (float)pos * inv_freq;
    *c = cosf(ang);
    *s = sinf(ang);
}

/* Rotate the pair (*x0, *x1) by the angle whose cos and sin are c and s, in place. Backends
 * that share one angle between heads compute vox_rope_cs once and call this per head. */
static inline VOX_HD void vox_rope_rotate(float *x0, float *x1, float c, float s) {
    float a = *x0, b = *x1;
    *x0 = a * c - b * s;
    *x1 = a * s + b * c;
}

/* Rotate one interleaved pair (x0, x1) = (x[2j], x[2j+1]) by angle pos * inv_freq (fp32
 * product, as the reference does), in place. */
static inline VOX_HD void vox_rope_pair(float *x0, float *x1, int pos, float inv_freq) {
    float c, s;
    vox_rope_cs(pos, inv_freq, &c, &s);
    vox_rope_rotate(x0, x1, c, s);
}

/* Key position held by ring slot `slot` of a ring with `cap` slots when positions
 * 0..end-1 have been written (each position p lives in slot p % cap). Returns -1 when the
 * slot holds nothing valid. The ring then holds positions max(0, end-cap) .. end-1. */
static inline VOX_HD int64_t vox_ring_slot_pos(int64_t slot, int64_t cap, int64_t end) {
    if (end <= 0) return -1;
    int64_t last = end - 1;
    int64_t back = (last - slot) % cap;
    if (back < 0) back += cap;
    int64_t p = last - back;
    return p >= 0 ? p : -1;
}

/* Is key position kp visible to query position qp under causal attention with a sliding
 * window of `window` keys including the query itself (window <= 0: unlimited)? */
static inline VOX_HD int vox_attn_visible(int64_t qp, int64_t kp, int window) {
    if (kp < 0 || kp > qp) return 0;
    return window <= 0 || kp > qp - window;
}

/* First key position visible to a query at qp with a window of `window` keys (<= 0:
 * unlimited): the visible keys of qp are exactly first .. qp. */
static inline VOX_HD int64_t vox_attn_first_key(int64_t qp, int window) {
    int64_t lo = window > 0 ? qp - window + 1 : 0;
    return lo < 0 ? 0 : lo;
}

/* ALiBi bias added to the score of key position kp for a query at qp: slope * (kp - qp), i.e.
 * <= 0 for every visible key (kp <= qp). fp32 product of the exact integer distance. */
static inline VOX_HD float vox_alibi_bias(float slope, int64_t qp, int64_t kp) {
    return slope * (float)(kp - qp);
}

/* ALiBi attention (attention_alibi) shows keys qp - window .. qp, window + 1 of them (the codec's
 * convention); in the terms of vox_attn_visible / vox_attn_first_key, whose window counts the
 * keys including the query's own, that is window + 1 (window <= 0 stays unlimited). */
static inline VOX_HD int vox_alibi_window_keys(int window) { return window > 0 ? window + 1 : window; }

/* Row-broadcast multiply element (r, c) of y = x * s[c] (LayerScale): index i of the flattened
 * [rows][cols] array uses s[i % cols]. */
static inline VOX_HD float vox_mul_rows_elem(const float *x, const float *s, int64_t i,
                                             int64_t cols) {
    return x[i] * s[i % cols];
}

/* Argmax order: does candidate (v, i) beat the current best (bv, bi)? bi < 0 means "no best
 * yet". A NaN never wins; a larger value wins; on equal values the smaller index wins (the
 * first maximum), so the result does not depend on the order candidates are merged in. */
static inline VOX_HD int vox_argmax_better(float v, int64_t i, float bv, int64_t bi) {
    if (v != v || i < 0) return 0;
    if (bi < 0) return 1;
    return v > bv || (v == bv && i < bi);
}

#endif /* VOX_HD_H */
