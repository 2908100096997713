/* vox_testdata.h - deterministic random test data shared by tests/test_ops.c and
 * tools/vox-selftest.c (not part of libvox).
 *
 * vox_rng is splitmix64: the same seed gives the same numbers on every machine. Weights are made
 * in fp32 and stored in the requested dtype (bf16 rounded to nearest even, f16 by the compiler's
 * _Float16 conversion); vox_test_wmat_abs gives |W| as fp32, for error bounds of the form
 * sum |x w|. Allocation failure prints one line and exits 2 (test programs only).
 * Ownership: the caller frees vox_test_wmat.data and vox_test_falloc results with free(). */
#ifndef VOX_TESTDATA_H
#define VOX_TESTDATA_H

#include <stdint.h>

#include "vox_backend.h"

typedef struct {
    uint64_t s;
} vox_rng;

uint64_t vox_rng_u64(vox_rng *r);
float vox_rng_uni(vox_rng *r); /* uniform in [-1, 1) */
void vox_rng_fill(vox_rng *r, float *x, int64_t n, float amp); /* amp * uniform */

float *vox_test_falloc(int64_t n);      /* n zeroed floats (at least one) */
uint16_t vox_test_f32_to_f16(float f);  /* IEEE half bits */
void vox_test_absv(float *dst, const float *x, int64_t n);

typedef struct {
    vox_mat m;  /* host memory: m.data == data */
    void *data;
} vox_test_wmat;

/* rows x cols weights amp * uniform[-1, 1), stored as dt (F32, BF16 or F16). */
vox_test_wmat vox_test_wmat_make(vox_rng *r, vox_dtype dt, int64_t rows, int64_t cols, float amp);
/* |w| element-wise as an F32 matrix. */
vox_test_wmat vox_test_wmat_abs(const vox_test_wmat *w);

#endif /* VOX_TESTDATA_H */
