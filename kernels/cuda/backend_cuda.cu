/* backend_cuda.cu - the CUDA backend: creation, memory, errors and the op table.
 *
 * Memory is device memory from cudaMalloc (zero-filled on the backend's stream). upload and
 * copy are asynchronous on the stream (an upload from pageable host memory returns once the
 * source has been staged, so the caller may reuse it); download synchronises the stream.
 * The ops live in ops_cuda.cu (element-wise, norms, RoPE, softmax, embed, argmax),
 * matmul_cuda.cu (matmul, conv1d, conv_transpose1d) and attn_cuda.cu (KV ring, attention).
 *
 * Creation without a usable GPU fails cleanly: cudaGetDeviceCount's error (e.g. 35, "CUDA
 * driver version is insufficient for CUDA runtime version" when there is no driver) is
 * reported in err, nothing stays allocated. */
#include "cuda_backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---- */

int cu_arg_error(vox_backend *be, const char *op, const char *fmt, ...) {
    char msg[VOX_ERROR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vox_set_error(&be->err, VOX_ERR_ARG, "cuda %s: %s", op, msg);
}

int cu_cuda_error(vox_backend *be, const char *op, const char *what, cudaError_t e) {
    return vox_set_error(&be->err, VOX_ERR_DEVICE, "cuda %s: %s: %s (CUDA error %d)", op, what,
                         cudaGetErrorString(e), (int)e);
}

static const char *blas_status_name(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "NOT_SUPPORTED";
    default: return "unknown";
    }
}

int cu_blas_error(vox_backend *be, const char *op, const char *what, cublasStatus_t s) {
    return vox_set_error(&be->err, VOX_ERR_DEVICE, "cuda %s: %s: cuBLAS status %s (%d)", op, what,
                         blas_status_name(s), (int)s);
}

int cu_check_launch(vox_backend *be, const char *op) {
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? VOX_OK : cu_cuda_error(be, op, "kernel launch", e);
}

int cu_enter(vox_backend *be, const char *op) {
    cudaError_t e = cudaSetDevice(cu_of(be)->device);
    return e == cudaSuccess ? VOX_OK : cu_cuda_error(be, op, "cudaSetDevice", e);
}

int cu_scratch_reserve(vox_backend *be, cu_scratch *s, size_t bytes, const char *op) {
    if (bytes <= s->cap) return VOX_OK;
    /* grow geometrically so a slowly increasing size does not reallocate every call */
    size_t want = bytes < s->cap + s->cap / 2 ? s->cap + s->cap / 2 : bytes;
    if (s->p) {
        cudaError_t e = cudaFree(s->p); /* waits for the work still using it */
        s->p = NULL;
        s->cap = 0;
        if (e != cudaSuccess) return cu_cuda_error(be, op, "cudaFree (scratch)", e);
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, want);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        want = bytes;
        e = cudaMalloc(&p, want);
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return vox_set_error(&be->err, VOX_ERR_NOMEM,
                             "cuda %s: cannot grow scratch to %zu bytes: %s", op, bytes,
                             cudaGetErrorString(e));
    }
    s->p = p;
    s->cap = want;
    return VOX_OK;
}

static void scratch_free(cu_scratch *s) {
    if (s->p) (void)cudaFree(s->p);
    s->p = NULL;
    s->cap = 0;
}

int cu_check_mat(vox_backend *be, const char *op, const vox_mat *w, const char *name) {
    if (!w) return cu_arg_error(be, op, "%s is NULL", name);
    if (!w->data) return cu_arg_error(be, op, "%s has no data", name);
    if (w->dtype != VOX_DT_F32 && w->dtype != VOX_DT_BF16 && w->dtype != VOX_DT_F16)
        return cu_arg_error(be, op, "%s has dtype %s, expected F32, BF16 or F16", name,
                            vox_dtype_name(w->dtype));
    if (w->rows <= 0 || w->cols <= 0)
        return cu_arg_error(be, op, "%s is [%lld x %lld], expected positive dims", name,
                            (long long)w->rows, (long long)w->cols);
    return VOX_OK;
}

/* ---- lifecycle and memory ---- */

static void cu_destroy(vox_backend *be) {
    if (!be) return;
    cu_impl *im = cu_of(be);
    if (im) {
        (void)cudaSetDevice(im->device);
        if (im->stream) (void)cudaStreamSynchronize(im->stream);
        scratch_free(&im->wbuf);
        scratch_free(&im->col);
        scratch_free(&im->att);
        scratch_free(&im->ids);
        scratch_free(&im->idx);
        scratch_free(&im->mel);
        cu_fft_plans_free(im);
        if (im->blas) (void)cublasDestroy(im->blas);
        if (im->stream) (void)cudaStreamDestroy(im->stream);
        free(im);
    }
    free(be);
}

static const char *cu_describe(vox_backend *be) { return cu_of(be)->desc; }

static void *cu_alloc(vox_backend *be, size_t bytes) {
    if (cu_enter(be, "alloc")) return NULL;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        vox_set_error(&be->err, VOX_ERR_NOMEM, "cuda alloc: cannot allocate %zu bytes: %s",
                      bytes, cudaGetErrorString(e));
        return NULL;
    }
    e = cudaMemsetAsync(p, 0, bytes, cu_of(be)->stream);
    if (e != cudaSuccess) {
        cu_cuda_error(be, "alloc", "cudaMemsetAsync", e);
        (void)cudaFree(p);
        return NULL;
    }
    return p;
}

static void cu_free(vox_backend *be, void *p) {
    if (!p) return;
    (void)cudaSetDevice(cu_of(be)->device);
    cudaError_t e = cudaFree(p);
    if (e != cudaSuccess) cu_cuda_error(be, "free", "cudaFree", e);
}

static int memop(vox_backend *be, const char *op, void *dst, const void *src, size_t bytes,
                 cudaMemcpyKind kind) {
    if (bytes == 0) return VOX_OK;
    if (!dst || !src) return cu_arg_error(be, op, "NULL pointer");
    int rc = cu_enter(be, op);
    if (rc) return rc;
    cudaStream_t st = cu_of(be)->stream;
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, st);
    if (e != cudaSuccess) return cu_cuda_error(be, op, "cudaMemcpyAsync", e);
    if (kind == cudaMemcpyDeviceToHost) {
        e = cudaStreamSynchronize(st);
        if (e != cudaSuccess) return cu_cuda_error(be, op, "cudaStreamSynchronize", e);
    }
    return VOX_OK;
}

static int cu_upload(vox_backend *be, void *dst, const void *src_host, size_t bytes) {
    return memop(be, "upload", dst, src_host, bytes, cudaMemcpyHostToDevice);
}
static int cu_download(vox_backend *be, void *dst_host, const void *src, size_t bytes) {
    return memop(be, "download", dst_host, src, bytes, cudaMemcpyDeviceToHost);
}
static int cu_copy(vox_backend *be, void *dst, const void *src, size_t bytes) {
    return memop(be, "copy", dst, src, bytes, cudaMemcpyDeviceToDevice);
}

static int cu_zero(vox_backend *be, void *dst, size_t bytes) {
    if (bytes == 0) return VOX_OK;
    if (!dst) return cu_arg_error(be, "zero", "NULL pointer");
    int rc = cu_enter(be, "zero");
    if (rc) return rc;
    cudaError_t e = cudaMemsetAsync(dst, 0, bytes, cu_of(be)->stream);
    return e == cudaSuccess ? VOX_OK : cu_cuda_error(be, "zero", "cudaMemsetAsync", e);
}

static int cu_sync(vox_backend *be) {
    int rc = cu_enter(be, "sync");
    if (rc) return rc;
    cudaError_t e = cudaStreamSynchronize(cu_of(be)->stream);
    return e == cudaSuccess ? VOX_OK : cu_cuda_error(be, "sync", "cudaStreamSynchronize", e);
}

/* Positional, in the order of vox_backend_ops (C++ has no designated initializers before
 * C++20); keep in sync with vox_backend.h. */
static const vox_backend_ops cu_ops = {
    cu_destroy,   cu_describe, cu_alloc,     cu_free,     cu_upload,  cu_download,
    cu_copy,      cu_zero,     cu_sync,      cu_matmul,   cu_rmsnorm, cu_rope,
    cu_kv_write,  cu_attention, cu_attention_alibi, cu_swiglu,   cu_silu,     cu_gelu,
    cu_softmax,   cu_add,      cu_mul,      cu_scale,    cu_mul_rows, cu_conv1d,
    cu_conv_transpose1d,       cu_embed,     cu_argmax,   cu_logmel,
};

extern "C" __attribute__((visibility("default"))) vox_backend *
vox_cuda_backend_create(int device_index, vox_error *err) {
    int count = 0; /* left unchanged when the call fails */
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        vox_set_error(err, VOX_ERR_DEVICE, "CUDA unavailable: cudaGetDeviceCount: %s",
                      cudaGetErrorString(e));
        return NULL;
    }
    if (count <= 0) {
        vox_set_error(err, VOX_ERR_DEVICE, "CUDA unavailable: no CUDA device found");
        return NULL;
    }
    if (device_index < 0 || device_index >= count) {
        vox_set_error(err, VOX_ERR_DEVICE,
                      "CUDA unavailable: device %d requested, expected 0..%d (%d device%s)",
                      device_index, count - 1, count, count == 1 ? "" : "s");
        return NULL;
    }
    cudaDeviceProp prop;
    if ((e = cudaSetDevice(device_index)) != cudaSuccess ||
        (e = cudaGetDeviceProperties(&prop, device_index)) != cudaSuccess) {
        (void)cudaGetLastError();
        vox_set_error(err, VOX_ERR_DEVICE, "CUDA unavailable: device %d: %s", device_index,
                      cudaGetErrorString(e));
        return NULL;
    }
    vox_backend *be = (vox_backend *)calloc(1, sizeof *be);
    cu_impl *im = (cu_impl *)calloc(1, sizeof *im);
    if (!be || !im) {
        free(be);
        free(im);
        vox_set_error(err, VOX_ERR_NOMEM, "cuda backend: out of memory");
        return NULL;
    }
    be->ops = &cu_ops;
    be->name = "cuda";
    be->n_threads = 1;
    be->impl = im;
    im->device = device_index;
    im->n_sm = prop.multiProcessorCount > 0 ? prop.multiProcessorCount : 1;
    im->wblock_floats = CU_WBLOCK_FLOATS;
    im->col_floats = CU_COL_FLOATS;
    e = cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        im->stream = NULL;
        vox_set_error(err, VOX_ERR_DEVICE, "CUDA unavailable: cudaStreamCreate: %s",
                      cudaGetErrorString(e));
        cu_destroy(be);
        return NULL;
    }
    cublasStatus_t bs = cublasCreate(&im->blas);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetStream(im->blas, im->stream);
    /* CUBLAS_COMPUTE_32F products stay in true fp32 (no TF32) with the default math mode */
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetMathMode(im->blas, CUBLAS_DEFAULT_MATH);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        vox_set_error(err, VOX_ERR_DEVICE, "CUDA unavailable: cublasCreate: status %s",
                      blas_status_name(bs));
        cu_destroy(be);
        return NULL;
    }
    int blas_ver = 0, rt_ver = 0, drv_ver = 0;
    (void)cublasGetVersion(im->blas, &blas_ver);
    (void)cudaRuntimeGetVersion(&rt_ver);
    (void)cudaDriverGetVersion(&drv_ver);
    snprintf(im->desc, sizeof im->desc,
             "cuda: device %d %.200s (sm_%d%d, %d SMs, %.1f GiB), runtime %d.%d, driver %d.%d, "
             "cuBLAS %d.%d.%d",
             device_index, prop.name, prop.major, prop.minor, im->n_sm,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), rt_ver / 1000,
             (rt_ver % 1000) / 10, drv_ver / 1000, (drv_ver % 1000) / 10, blas_ver / 10000,
             (blas_ver / 100) % 100, blas_ver % 100);
    return be;
}
