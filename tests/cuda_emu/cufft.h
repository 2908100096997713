/* cufft.h (host emulation) - a batched real-to-complex FFT as a direct DFT in double, rounded
 * to float, plus the plan calls the CUDA backend makes (logmel). Proves the backend's
 * framing, layout and chunking, not cuFFT's own rounding. See cuda_runtime.h. */
#ifndef VOX_CUDA_EMU_CUFFT_H
#define VOX_CUDA_EMU_CUFFT_H
#include "cuda_runtime.h"

typedef enum {
    CUFFT_SUCCESS = 0,
    CUFFT_INVALID_PLAN = 1,
    CUFFT_ALLOC_FAILED = 2,
    CUFFT_INVALID_VALUE = 4,
    CUFFT_INTERNAL_ERROR = 5,
    CUFFT_EXEC_FAILED = 6,
    CUFFT_SETUP_FAILED = 7,
    CUFFT_INVALID_SIZE = 8
} cufftResult;
typedef enum { CUFFT_R2C = 0x2a } cufftType;
typedef float cufftReal;
struct cufftComplex {
    float x, y;
};
typedef struct emu_fft *cufftHandle;

cufftResult cufftPlanMany(cufftHandle *plan, int rank, int *n, int *inembed, int istride,
                          int idist, int *onembed, int ostride, int odist, cufftType type,
                          int batch);
cufftResult cufftSetStream(cufftHandle plan, cudaStream_t s);
cufftResult cufftExecR2C(cufftHandle plan, cufftReal *in, cufftComplex *out);
cufftResult cufftDestroy(cufftHandle plan);
#endif
