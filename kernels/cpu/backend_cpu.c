/* backend_cpu.c - the CPU backend: creation, memory, the op table and shared helpers.
 *
 * Memory is ordinary host memory (64-byte aligned, zero-filled), so any host pointer (an mmap'd
 * weight file, a stack array) is valid backend memory too. Ops run synchronously on the calling
 * thread plus the workers of a vox_pool; OpenBLAS runs its own threads, set to the same count.
 * The ops themselves live in ops_cpu.c (element-wise, norms, RoPE, embed, argmax), matmul_cpu.c
 * (matmul, conv1d, conv_transpose1d) and attn_cpu.c (KV ring and attention). */
#include "cpu_backend.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vox_blas.h"

#define CPU_ALIGN 64

/* ---- shared helpers ---- */

int cpu_arg_error(vox_backend *be, const char *op, const char *fmt, ...) {
    char msg[VOX_ERROR_MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vox_set_error(&be->err, VOX_ERR_ARG, "cpu %s: %s", op, msg);
}

int cpu_check_mat(vox_backend *be, const char *op, const vox_mat *w, const char *name) {
    if (!w) return cpu_arg_error(be, op, "%s is NULL", name);
    if (!w->data) return cpu_arg_error(be, op, "%s has no data", name);
    if (w->dtype != VOX_DT_F32 && w->dtype != VOX_DT_BF16 && w->dtype != VOX_DT_F16)
        return cpu_arg_error(be, op, "%s has dtype %s, expected F32, BF16 or F16", name,
                             vox_dtype_name(w->dtype));
    if (w->rows <= 0 || w->cols <= 0)
        return cpu_arg_error(be, op, "%s is [%lld x %lld], expected positive dims", name,
                             (long long)w->rows, (long long)w->cols);
    return VOX_OK;
}

/* Buffers of at least CPU_HUGE_MIN bytes are 2 MiB aligned and advised to use transparent
 * huge pages: a KV ring is read slot by slot with a stride of one slot (4-8 KiB), so with 4 KiB
 * pages every key is a TLB miss and the prefetchers stop at every page boundary. */
#define CPU_HUGE_PAGE ((size_t)2 << 20)
#define CPU_HUGE_MIN ((size_t)4 << 20)

static void *aligned_zalloc(size_t bytes) {
    size_t align = bytes >= CPU_HUGE_MIN ? CPU_HUGE_PAGE : CPU_ALIGN;
    size_t sz = (bytes + align - 1) / align * align;
    if (sz == 0) sz = align;
    if (sz < bytes) return NULL; /* overflow */
    void *p = aligned_alloc(align, sz);
    if (!p) return NULL;
    if (align == CPU_HUGE_PAGE) (void)madvise(p, sz, MADV_HUGEPAGE); /* advice only */
    memset(p, 0, sz);
    return p;
}

int cpu_scratch_reserve(vox_backend *be, cpu_scratch *s, size_t n, const char *what) {
    if (n <= s->cap) return VOX_OK;
    if (n > SIZE_MAX / sizeof(float))
        return vox_set_error(&be->err, VOX_ERR_NOMEM, "cpu %s: scratch of %zu floats too large",
                             what, n);
    /* grow geometrically so a slowly increasing size does not reallocate every call */
    size_t want = n < s->cap + s->cap / 2 ? s->cap + s->cap / 2 : n;
    float *p = aligned_zalloc(want * sizeof(float));
    if (!p) {
        want = n;
        p = aligned_zalloc(want * sizeof(float));
    }
    if (!p)
        return vox_set_error(&be->err, VOX_ERR_NOMEM,
                             "cpu %s: out of memory growing scratch to %zu bytes", what,
                             n * sizeof(float));
    free(s->p);
    s->p = p;
    s->cap = want;
    return VOX_OK;
}

void cpu_scratch_free(cpu_scratch *s) {
    free(s->p);
    s->p = NULL;
    s->cap = 0;
}

typedef struct {
    cpu_range_fn fn;
    void *ctx;
    int64_t n, align;
} par_ctx;

static void par_worker(void *vctx, int worker, int n_workers) {
    par_ctx *c = vctx;
    int64_t per = (c->n + n_workers - 1) / n_workers;
    per = (per + c->align - 1) / c->align * c->align;
    int64_t b = (int64_t)worker * per, e = b + per;
    if (e > c->n) e = c->n;
    if (b < e) c->fn(c->ctx, b, e);
}

void cpu_parallel_for(vox_backend *be, int64_t n, int64_t min_par, int64_t align,
                      cpu_range_fn fn, void *ctx) {
    cpu_impl *im = cpu_of(be);
    if (n <= 0) return;
    if (im->n_workers <= 1 || n < min_par) {
        fn(ctx, 0, n);
        return;
    }
    par_ctx c = {fn, ctx, n, align < 1 ? 1 : align};
    vox_pool_run(im->pool, par_worker, &c);
}

/* ---- lifecycle and memory ---- */

static void cpu_destroy(vox_backend *be) {
    if (!be) return;
    cpu_impl *im = be->impl;
    if (im) {
        if (im->pool) vox_pool_destroy(im->pool);
        cpu_scratch_free(&im->wbuf);
        cpu_scratch_free(&im->col);
        cpu_scratch_free(&im->att);
        cpu_scratch_free(&im->xbf);
        cpu_scratch_free(&im->mel);
        cpu_fft_plans_free(im);
        free(im);
    }
    free(be);
}

static const char *cpu_describe(vox_backend *be) { return cpu_of(be)->desc; }

static void *cpu_alloc(vox_backend *be, size_t bytes) {
    void *p = aligned_zalloc(bytes);
    if (!p) vox_set_error(&be->err, VOX_ERR_NOMEM, "cpu alloc: out of memory (%zu bytes)", bytes);
    return p;
}

static void cpu_free(vox_backend *be, void *p) {
    (void)be;
    free(p);
}

static int cpu_upload(vox_backend *be, void *dst, const void *src_host, size_t bytes) {
    if (bytes == 0) return VOX_OK;
    if (!dst || !src_host) return cpu_arg_error(be, "upload", "NULL pointer");
    memmove(dst, src_host, bytes);
    return VOX_OK;
}

static int cpu_download(vox_backend *be, void *dst_host, const void *src, size_t bytes) {
    if (bytes == 0) return VOX_OK;
    if (!dst_host || !src) return cpu_arg_error(be, "download", "NULL pointer");
    memmove(dst_host, src, bytes);
    return VOX_OK;
}

static int cpu_copy(vox_backend *be, void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return VOX_OK;
    if (!dst || !src) return cpu_arg_error(be, "copy", "NULL pointer");
    memmove(dst, src, bytes);
    return VOX_OK;
}

static int cpu_zero(vox_backend *be, void *dst, size_t bytes) {
    if (bytes == 0) return VOX_OK;
    if (!dst) return cpu_arg_error(be, "zero", "NULL pointer");
    memset(dst, 0, bytes);
    return VOX_OK;
}

static int cpu_sync(vox_backend *be) {
    (void)be;
    return VOX_OK;
}

static const vox_backend_ops cpu_ops = {
    .destroy = cpu_destroy,
    .describe = cpu_describe,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .matmul = cpu_matmul,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .kv_write = cpu_kv_write,
    .attention = cpu_attention,
    .attention_alibi = cpu_attention_alibi,
    .swiglu = cpu_swiglu,
    .silu = cpu_silu,
    .gelu = cpu_gelu,
    .softmax = cpu_softmax,
    .add = cpu_add,
    .mul = cpu_mul,
    .scale = cpu_scale,
    .mul_rows = cpu_mul_rows,
    .conv1d = cpu_conv1d,
    .conv_transpose1d = cpu_conv_transpose1d,
    .embed = cpu_embed,
    .argmax = cpu_argmax,
    .logmel = cpu_logmel,
};

vox_backend *vox_cpu_backend_create(int n_threads, vox_error *err) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > 256) n_threads = 256;
    vox_backend *be = calloc(1, sizeof *be);
    cpu_impl *im = calloc(1, sizeof *im);
    if (!be || !im) {
        free(be);
        free(im);
        vox_set_error(err, VOX_ERR_NOMEM, "cpu backend: out of memory");
        return NULL;
    }
    be->ops = &cpu_ops;
    be->name = "cpu";
    be->impl = im;
    im->pool = vox_pool_create(n_threads, err);
    if (!im->pool) {
        free(im);
        free(be);
        return NULL;
    }
    im->n_workers = vox_pool_size(im->pool);
    be->n_threads = im->n_workers;
    im->isa = vox_cpu_isa_select();
#if defined(__x86_64__)
    im->has_f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx2");
#endif
    im->wblock_floats = CPU_WBLOCK_FLOATS;
    im->col_floats = CPU_COL_FLOATS;
    vox_blas_set_threads(be->n_threads);
    char blas[128];
    snprintf(im->desc, sizeof im->desc, "cpu: %d thread%s, matvec %s, %s", be->n_threads,
             be->n_threads == 1 ? "" : "s", vox_cpu_isa_name(im->isa),
             vox_blas_describe(blas, sizeof blas));
    return be;
}
