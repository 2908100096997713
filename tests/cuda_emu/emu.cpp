/* emu.cpp - the host emulation behind cuda_runtime.h / cublas_v2.h (see there).
 *
 * emu_launch runs the blocks one after another; inside a block every thread is a ucontext
 * coroutine with its own stack, resumed round-robin by the scheduler. A barrier (block-wide
 * for __syncthreads, warp-wide for shuffles) counts arrivals against the threads still alive
 * in its group and releases when they are equal; a full round without any arrival, release or
 * exit is a deadlock (e.g. a barrier in divergent code) and aborts with a message. */
#include <stdio.h>
#include <ucontext.h>

#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "cufft.h"

emu_idx emu_block_idx;
dim3 emu_block_dim, emu_grid_dim;
void *emu_dyn_shared;

namespace {
struct barrier {
    int arrived = 0, live = 0;
    unsigned gen = 0;
};
struct thread {
    ucontext_t ctx;
    emu_idx tid;
    int done;
};
const size_t STACK = 256 * 1024;
std::vector<thread> threads;
std::vector<char *> stacks;
std::vector<barrier> warps;
barrier blockbar;
std::vector<double> slots;
const std::function<void()> *body;
ucontext_t sched;
int cur;
unsigned long events;

void yield() { swapcontext(&threads[cur].ctx, &sched); }

void arrive(barrier &b) {
    events++;
    if (++b.arrived == b.live) {
        b.arrived = 0;
        b.gen++;
        return;
    }
    unsigned g = b.gen;
    while (b.gen == g) yield();
}

void leave(barrier &b) {
    b.live--;
    if (b.arrived > 0 && b.arrived == b.live) {
        b.arrived = 0;
        b.gen++;
    }
}

void entry() {
    (*body)();
    threads[cur].done = 1;
    events++;
    leave(blockbar);
    leave(warps[cur / 32]);
}
} // namespace

emu_idx &emu_thread_idx() { return threads[cur].tid; }

void __syncthreads() { arrive(blockbar); }

double emu_shfl_xor(double v, int o) {
    slots[cur] = v;
    arrive(warps[cur / 32]);
    int partner = (cur & ~31) | ((cur & 31) ^ o);
    double r = slots[partner];
    arrive(warps[cur / 32]);
    return r;
}

void emu_launch(dim3 grid, dim3 block, size_t shmem, const std::function<void()> &fn) {
    int nt = (int)(block.x * block.y * block.z);
    emu_grid_dim = grid;
    emu_block_dim = block;
    body = &fn;
    threads.resize(nt);
    slots.assign(nt, 0.0);
    while ((int)stacks.size() < nt) stacks.push_back((char *)malloc(STACK));
    std::vector<char> dyn(shmem ? shmem : 1, (char)0xff);
    emu_dyn_shared = dyn.data();
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                emu_block_idx = {bx, by, bz};
                int nw = (nt + 31) / 32;
                warps.assign(nw, barrier());
                for (int w = 0; w < nw; w++) warps[w].live = nt - 32 * w < 32 ? nt - 32 * w : 32;
                blockbar = barrier();
                blockbar.live = nt;
                for (int i = 0; i < nt; i++) {
                    thread &t = threads[i];
                    t.tid = {(unsigned)i % block.x, (unsigned)(i / block.x) % block.y,
                             (unsigned)(i / (block.x * block.y))};
                    t.done = 0;
                    getcontext(&t.ctx);
                    t.ctx.uc_stack.ss_sp = stacks[i];
                    t.ctx.uc_stack.ss_size = STACK;
                    t.ctx.uc_link = &sched;
                    makecontext(&t.ctx, entry, 0);
                }
                int alive = nt;
                while (alive > 0) {
                    unsigned long before = events;
                    alive = 0;
                    for (int i = 0; i < nt; i++) {
                        if (threads[i].done) continue;
                        cur = i;
                        swapcontext(&sched, &threads[i].ctx);
                        if (!threads[i].done) alive++;
                    }
                    if (alive > 0 && events == before) {
                        fprintf(stderr, "cuda emu: deadlock in block (%u,%u,%u)\n", bx, by, bz);
                        abort();
                    }
                }
            }
}

/* ---- runtime ---- */

static cudaError_t last_error = cudaSuccess;
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "host emulation");
    p->major = 8;
    p->minor = 0;
    p->multiProcessorCount = 4; /* small, so attention uses key splits in the tests */
    p->totalGlobalMem = (size_t)1 << 30;
    return cudaSuccess;
}
cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = malloc(bytes ? bytes : 1);
    if (!*p) return last_error = cudaErrorMemoryAllocation;
    memset(*p, 0xff, bytes); /* device memory is not zeroed */
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind,
                            cudaStream_t) {
    memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *dst, int v, size_t bytes, cudaStream_t) {
    memset(dst, v, bytes);
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    *s = (cudaStream_t)malloc(1);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    free(s);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaGetLastError() {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated error"; }
cudaError_t cudaRuntimeGetVersion(int *v) {
    *v = 13000;
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *v) {
    *v = 0;
    return cudaSuccess;
}

/* ---- cuBLAS ---- */

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = (cublasHandle_t)malloc(1);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasGetVersion(cublasHandle_t, int *v) {
    *v = 130100;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType at,
                            int lda, const void *B, cudaDataType bt, int ldb, const void *beta,
                            void *C, cudaDataType ct, int ldc, cublasComputeType_t comp,
                            cublasGemmAlgo_t) {
    if (at != CUDA_R_32F || bt != CUDA_R_32F || ct != CUDA_R_32F || comp != CUBLAS_COMPUTE_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m < 0 || n < 0 || k < 0 || lda < (ta == CUBLAS_OP_N ? m : k) ||
        ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m)
        return CUBLAS_STATUS_INVALID_VALUE;
    const float *a = (const float *)A, *b = (const float *)B;
    float *c = (float *)C, al = *(const float *)alpha, be = *(const float *)beta;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++) {
                float av = ta == CUBLAS_OP_N ? a[i + (size_t)p * lda] : a[p + (size_t)i * lda];
                float bv = tb == CUBLAS_OP_N ? b[p + (size_t)j * ldb] : b[j + (size_t)p * ldb];
                s += av * bv;
            }
            float *cij = c + i + (size_t)j * ldc;
            *cij = be == 0.0f ? al * s : al * s + be * *cij; /* beta 0: C is not read */
        }
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- cuFFT: basic layout only (inembed/onembed NULL), rank 1, R2C ---- */

struct emu_fft {
    int n, batch;
};
cufftResult cufftPlanMany(cufftHandle *plan, int rank, int *n, int *inembed, int, int,
                          int *onembed, int, int, cufftType type, int batch) {
    if (rank != 1 || !n || n[0] < 1 || inembed || onembed || type != CUFFT_R2C || batch < 1)
        return CUFFT_INVALID_VALUE;
    emu_fft *f = (emu_fft *)malloc(sizeof *f);
    if (!f) return CUFFT_ALLOC_FAILED;
    f->n = n[0];
    f->batch = batch;
    *plan = f;
    return CUFFT_SUCCESS;
}
cufftResult cufftSetStream(cufftHandle plan, cudaStream_t) {
    return plan ? CUFFT_SUCCESS : CUFFT_INVALID_PLAN;
}
cufftResult cufftExecR2C(cufftHandle plan, cufftReal *in, cufftComplex *out) {
    if (!plan) return CUFFT_INVALID_PLAN;
    const int n = plan->n, nb = n / 2 + 1;
    const double two_pi = 6.283185307179586476925286766559;
    for (int b = 0; b < plan->batch; b++) {
        const float *x = in + (size_t)b * n;
        cufftComplex *X = out + (size_t)b * nb;
        for (int k = 0; k < nb; k++) {
            double re = 0.0, im = 0.0;
            for (int i = 0; i < n; i++) {
                double a = two_pi * (double)(((int64_t)i * k) % n) / (double)n;
                re += (double)x[i] * cos(a);
                im -= (double)x[i] * sin(a);
            }
            X[k].x = (float)re;
            X[k].y = (float)im;
        }
    }
    return CUFFT_SUCCESS;
}
cufftResult cufftDestroy(cufftHandle plan) {
    free(plan);
    return CUFFT_SUCCESS;
}
