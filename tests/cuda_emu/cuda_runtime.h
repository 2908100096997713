/* cuda_runtime.h (host emulation) - just enough of the CUDA runtime for the kernels/cuda sources to
 * build with g++ and run every kernel on the CPU: each block's threads are coroutines
 * (ucontext) run one at a time; __syncthreads and the warp shuffles are barriers between them.
 * Device memory is host memory (filled with 0xff on allocation so nothing relies on garbage
 * being zero). For testing the CUDA backend's index math on machines without a GPU; it proves
 * nothing about races, timing or the real device's rounding of expf/erff. Ownership: tests. */
#ifndef VOX_CUDA_EMU_RUNTIME_H
#define VOX_CUDA_EMU_RUNTIME_H
#define VOX_CUDA_EMU 1

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct uint4 {
    unsigned x, y, z, w;
};
struct float4 {
    float x, y, z, w;
};

struct emu_idx {
    unsigned x, y, z;
};
emu_idx &emu_thread_idx();
extern emu_idx emu_block_idx;
extern dim3 emu_block_dim, emu_grid_dim;
extern void *emu_dyn_shared;
#define threadIdx (emu_thread_idx())
#define blockIdx emu_block_idx
#define blockDim emu_block_dim
#define gridDim emu_grid_dim

void emu_launch(dim3 grid, dim3 block, size_t shmem, const std::function<void()> &body);
#define CU_LAUNCH(kern, grid, block, shmem, stream, ...) \
    ((void)(stream), emu_launch((grid), (block), (shmem), [&]() { kern(__VA_ARGS__); }))
#define CU_DYN_SHARED(type, name) type *name = (type *)emu_dyn_shared

void __syncthreads();
double emu_shfl_xor(double v, int lane_mask); /* all 32 lanes of the warp take part */
template <typename T> static inline T __shfl_xor_sync(unsigned, T v, int o) {
    return (T)emu_shfl_xor((double)v, o);
}
static inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

typedef enum {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidDevice = 101
} cudaError_t;
typedef enum {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3
} cudaMemcpyKind;
typedef struct emu_stream *cudaStream_t;
#define cudaStreamNonBlocking 1u
struct cudaDeviceProp {
    char name[256];
    int major, minor, multiProcessorCount;
    size_t totalGlobalMem;
};

cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k,
                            cudaStream_t s);
cudaError_t cudaMemsetAsync(void *dst, int v, size_t bytes, cudaStream_t s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaGetLastError();
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaDriverGetVersion(int *v);

#endif
