/* vox_cpu.h - internals of the CPU backend shared between its files (not a public API).
 *
 *   vox_pool     a fixed pthread pool; the calling thread is worker 0.
 *   vox_cpu_isa  the SIMD path for the matrix-vector kernels, chosen once by CPUID
 *                (override with env VOX_ISA=scalar|avx2|avx512|avx512bf16 for tests/benches).
 *   vox_cpu_gemv the memory-bound kernel: y[n][rows] = x[n][cols] W^T (+bias), n small.
 *   OpenBLAS     core detection / repair (see vox_blas_ensure_core in vox_blas.h). */
#ifndef VOX_CPU_H
#define VOX_CPU_H

#include "../vox_backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- thread pool ---- */
typedef struct vox_pool vox_pool;
/* fn(ctx, worker, n_workers) runs once on each worker 0..n_workers-1. */
typedef void (*vox_pool_fn)(void *ctx, int worker, int n_workers);
vox_pool *vox_pool_create(int n_threads, vox_error *err); /* n_threads >= 1, includes caller */
void vox_pool_run(vox_pool *pool, vox_pool_fn fn, void *ctx); /* returns when all are done */
int vox_pool_size(const vox_pool *pool);
void vox_pool_destroy(vox_pool *pool);

/* ---- SIMD path selection ---- */
typedef enum {
    VOX_ISA_SCALAR = 0,
    VOX_ISA_AVX2 = 1,       /* AVX2 + FMA */
    VOX_ISA_AVX512 = 2,     /* AVX-512F (+BW) */
    VOX_ISA_AVX512BF16 = 3  /* AVX-512 BF16 (vdpbf16ps) */
} vox_cpu_isa;

vox_cpu_isa vox_cpu_isa_detect(void);          /* best path this CPU supports */
int vox_cpu_isa_supported(vox_cpu_isa isa);    /* 1 if this CPU can run it */
const char *vox_cpu_isa_name(vox_cpu_isa isa); /* "scalar", "avx2", "avx512", "avx512bf16" */
/* Parse VOX_ISA from the environment (if set and supported) else detect. */
vox_cpu_isa vox_cpu_isa_select(void);

/* Largest n for which matmul uses vox_cpu_gemv rather than BLAS. */
#define VOX_GEMV_MAX_N 8

/* y[n][w.rows] = x[n][w.cols] . w^T + bias (bias may be NULL), threaded over row blocks.
 * w.dtype is VOX_DT_BF16, VOX_DT_F16 or VOX_DT_F32. 1 <= n <= VOX_GEMV_MAX_N.
 * scratch: vox_cpu_gemv_scratch(isa, w, n) bytes (16-byte aligned) owned by the caller, or NULL;
 * the AVX-512 BF16 path needs it (without it the AVX-512 path runs). */
void vox_cpu_gemv(vox_pool *pool, vox_cpu_isa isa, float *y, const float *x, const vox_mat *w,
                  const float *bias, int n, void *scratch);
size_t vox_cpu_gemv_scratch(vox_cpu_isa isa, const vox_mat *w, int n);

#ifdef __cplusplus
}
#endif
#endif /* VOX_CPU_H */
