/* logmel_cuda.cu - the logmel op of the CUDA backend (vox_backend.h): cuFFT batched R2C.
 *
 * Frames go in chunks of up to `batch` frames (batch = min(CU_MEL_BATCH, 2^22 / n_fft)):
 *   1. lm_window: in[f][i] = window[i] x[(g0 + f) hop + i] (zero rows past n_frames, so the
 *      fixed-batch plan never reads stale data);
 *   2. cufftExecR2C on the chunk (plan made once per n_fft by cufftPlanMany, kept in cu_impl,
 *      bound to the backend's stream, destroyed with the backend);
 *   3. lm_power: pw[f][k] = vox_mel_power(re, im);
 *   4. lm_mel: y[g][m] = vox_mel_log_scale(sum_k filters[m][k] pw[f][k], log_floor), the sum in
 *      float over ascending k skipping zero weights, as the CPU op (one thread per output).
 * Per-element math is audio/vox_mel_hd.h, the same code the CPU backend runs. Scratch: one
 * growing device buffer (cu_impl.mel). */
#include "cuda_backend.h"

#include "../../audio/vox_mel_hd.h"

#define LM_THREADS 256

__global__ void lm_window(float *in, const float *x, const float *window, int64_t g0,
                          int64_t n_frames, int batch, int hop, int n_fft) {
    int64_t n = (int64_t)batch * n_fft, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += stride) {
        int64_t f = t / n_fft;
        int i = (int)(t - f * n_fft);
        int64_t g = g0 + f;
        in[t] = g < n_frames ? window[i] * x[g * hop + i] : 0.0f;
    }
}

__global__ void lm_power(float *pw, const float *spec, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += stride)
        pw[t] = vox_mel_power(spec[2 * t], spec[2 * t + 1]);
}

__global__ void lm_mel(float *y, const float *pw, const float *filters, int64_t frames,
                       int n_bins, int n_mels, float log_floor) {
    int64_t n = frames * n_mels, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += stride) {
        int64_t f = t / n_mels;
        int m = (int)(t - f * n_mels);
        const float *w = filters + (int64_t)m * n_bins;
        const float *p = pw + f * n_bins;
        float s = 0.0f;
        for (int k = 0; k < n_bins; k++) {
            float wk = w[k];
            if (wk != 0.0f) s += wk * p[k];
        }
        y[t] = vox_mel_log_scale(s, log_floor);
    }
}

static const char *fft_status_name(cufftResult r) {
    switch (r) {
    case CUFFT_SUCCESS: return "SUCCESS";
    case CUFFT_INVALID_PLAN: return "INVALID_PLAN";
    case CUFFT_ALLOC_FAILED: return "ALLOC_FAILED";
    case CUFFT_INVALID_VALUE: return "INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR: return "INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED: return "EXEC_FAILED";
    case CUFFT_SETUP_FAILED: return "SETUP_FAILED";
    case CUFFT_INVALID_SIZE: return "INVALID_SIZE";
    default: return "unknown";
    }
}

static int fft_error(vox_backend *be, const char *what, cufftResult r) {
    return vox_set_error(&be->err, VOX_ERR_DEVICE, "cuda logmel: %s: cuFFT status %s (%d)", what,
                         fft_status_name(r), (int)r);
}

void cu_fft_plans_free(cu_impl *im) {
    for (int i = 0; i < CU_FFT_PLANS; i++) {
        if (im->fft[i].n) (void)cufftDestroy(im->fft[i].plan);
        im->fft[i].n = 0;
    }
}

/* The cached plan for n_fft (batch rows), made on first use. */
static int get_plan(vox_backend *be, int n_fft, int batch, cufftHandle *out) {
    cu_impl *im = cu_of(be);
    for (int i = 0; i < CU_FFT_PLANS; i++)
        if (im->fft[i].n == n_fft && im->fft[i].batch == batch) {
            *out = im->fft[i].plan;
            return VOX_OK;
        }
    int slot = -1;
    for (int i = 0; i < CU_FFT_PLANS && slot < 0; i++)
        if (!im->fft[i].n) slot = i;
    if (slot < 0) {
        slot = (int)(im->fft_next++ % CU_FFT_PLANS);
        (void)cudaStreamSynchronize(im->stream); /* the old plan may still be running */
        (void)cufftDestroy(im->fft[slot].plan);
        im->fft[slot].n = 0;
    }
    cufftHandle p = 0;
    int dims[1] = {n_fft};
    int n_bins = n_fft / 2 + 1;
    cufftResult r = cufftPlanMany(&p, 1, dims, NULL, 1, n_fft, NULL, 1, n_bins, CUFFT_R2C, batch);
    if (r != CUFFT_SUCCESS) return fft_error(be, "cufftPlanMany", r);
    r = cufftSetStream(p, im->stream);
    if (r != CUFFT_SUCCESS) {
        (void)cufftDestroy(p);
        return fft_error(be, "cufftSetStream", r);
    }
    im->fft[slot].plan = p;
    im->fft[slot].n = n_fft;
    im->fft[slot].batch = batch;
    *out = p;
    return VOX_OK;
}

int cu_logmel(vox_backend *be, float *y, const float *x, int n_frames, int hop, int n_fft,
              const float *window, const float *filters, int n_mels, float log_floor) {
    if (n_frames < 0 || hop < 1 || n_fft < 2 || n_mels < 1)
        return cu_arg_error(be, "logmel",
                            "expected n_frames >= 0, hop >= 1, n_fft >= 2, n_mels >= 1; found "
                            "%d, %d, %d, %d",
                            n_frames, hop, n_fft, n_mels);
    if (n_frames == 0) return VOX_OK;
    if (!y || !x || !window || !filters) return cu_arg_error(be, "logmel", "NULL buffer");
    int rc = cu_enter(be, "logmel");
    if (rc) return rc;
    cu_impl *im = cu_of(be);
    int n_bins = n_fft / 2 + 1;
    int64_t cap = ((int64_t)1 << 22) / n_fft;
    int batch = (int)(cap < 1 ? 1 : cap > CU_MEL_BATCH ? CU_MEL_BATCH : cap);
    cufftHandle plan = 0;
    if ((rc = get_plan(be, n_fft, batch, &plan))) return rc;
    /* in[batch][n_fft] | spec[batch][n_bins] complex | pw[batch][n_bins], each 256-byte aligned */
    size_t a = ((size_t)batch * n_fft * 4 + 255) / 256 * 256;
    size_t b = ((size_t)batch * n_bins * 8 + 255) / 256 * 256;
    size_t c = (size_t)batch * n_bins * 4;
    if ((rc = cu_scratch_reserve(be, &im->mel, a + b + c, "logmel"))) return rc;
    float *in = (float *)im->mel.p;
    float *spec = (float *)((char *)im->mel.p + a);
    float *pw = (float *)((char *)im->mel.p + a + b);
    cudaStream_t st = im->stream;
    for (int64_t g0 = 0; g0 < n_frames; g0 += batch) {
        int64_t nf = n_frames - g0 < batch ? n_frames - g0 : batch;
        CU_LAUNCH(lm_window, cu_grid((int64_t)batch * n_fft, LM_THREADS), LM_THREADS, 0, st, in,
                  x, window, g0, (int64_t)n_frames, batch, hop, n_fft);
        if ((rc = cu_check_launch(be, "logmel"))) return rc;
        cufftResult r = cufftExecR2C(plan, in, (cufftComplex *)spec);
        if (r != CUFFT_SUCCESS) return fft_error(be, "cufftExecR2C", r);
        CU_LAUNCH(lm_power, cu_grid(nf * n_bins, LM_THREADS), LM_THREADS, 0, st, pw, spec,
                  nf * n_bins);
        CU_LAUNCH(lm_mel, cu_grid(nf * n_mels, LM_THREADS), LM_THREADS, 0, st,
                  y + g0 * n_mels, pw, filters, nf, n_bins, n_mels, log_floor);
        if ((rc = cu_check_launch(be, "logmel"))) return rc;
    }
    return VOX_OK;
}
