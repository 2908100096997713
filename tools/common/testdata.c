/* testdata.c - deterministic random test data (see vox_testdata.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_hd.h"
#include "vox_ref.h"
#include "vox_testdata.h"

uint64_t vox_rng_u64(vox_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float vox_rng_uni(vox_rng *r) {
    return (float)((double)(vox_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

void vox_rng_fill(vox_rng *r, float *x, int64_t n, float amp) {
    for (int64_t i = 0; i < n; i++) x[i] = amp * vox_rng_uni(r);
}

static void *test_calloc(int64_t n, size_t sz) {
    void *p = calloc((size_t)(n > 0 ? n : 1), sz);
    if (!p) {
        fprintf(stderr, "out of memory allocating test data (%lld x %zu bytes)\n", (long long)n,
                sz);
        exit(2);
    }
    return p;
}

float *vox_test_falloc(int64_t n) { return test_calloc(n, sizeof(float)); }

uint16_t vox_test_f32_to_f16(float f) {
    _Float16 h = (_Float16)f;
    uint16_t b;
    memcpy(&b, &h, 2);
    return b;
}

void vox_test_absv(float *dst, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = fabsf(x[i]);
}

vox_test_wmat vox_test_wmat_make(vox_rng *r, vox_dtype dt, int64_t rows, int64_t cols, float amp) {
    vox_test_wmat w;
    int64_t n = rows * cols;
    w.data = test_calloc(n, vox_dtype_size(dt));
    for (int64_t i = 0; i < n; i++) {
        float v = amp * vox_rng_uni(r);
        if (dt == VOX_DT_F32) ((float *)w.data)[i] = v;
        else if (dt == VOX_DT_BF16) ((uint16_t *)w.data)[i] = vox_f32_to_bf16(v);
        else ((uint16_t *)w.data)[i] = vox_test_f32_to_f16(v);
    }
    w.m.data = w.data;
    w.m.dtype = dt;
    w.m.rows = rows;
    w.m.cols = cols;
    return w;
}

vox_test_wmat vox_test_wmat_abs(const vox_test_wmat *w) {
    vox_test_wmat a;
    int64_t n = w->m.rows * w->m.cols;
    float *d = vox_test_falloc(n);
    for (int64_t i = 0; i < n; i++)
        d[i] = fabsf(vox_ref_mat_get(&w->m, i / w->m.cols, i % w->m.cols));
    a.data = d;
    a.m.data = d;
    a.m.dtype = VOX_DT_F32;
    a.m.rows = w->m.rows;
    a.m.cols = w->m.cols;
    return a;
}
