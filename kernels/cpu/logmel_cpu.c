/* logmel_cpu.c - the logmel op of the CPU backend (vox_backend.h): FFTW r2c per frame,
 * threaded over frames on the backend's pool.
 *
 * The arithmetic is audio/mel.c's, step for step: the same FFTW_ESTIMATE r2c plan of size
 * n_fft on 64-byte aligned arrays, vox_mel_power per bin, the mel sum in float over ascending
 * bins skipping zero weights (mel.c sums each filter over its non-zero span), then
 * vox_mel_log_scale. So on the same padded signal the op equals vox_mel_compute bit for bit.
 *
 * Plans: one r2c plan per n_fft, made on first use and kept in cpu_impl (CPU_FFT_PLANS slots;
 * a fifth size replaces the oldest) and destroyed with the backend. FFTW's planner is not
 * thread-safe, so creation and destruction hold vox_fftw_planner_lock (audio/vox_mel.h, the
 * one process-wide lock every FFTW user in vox takes). Executing a plan on other arrays
 * (fftwf_execute_dft_r2c) is thread-safe; each worker has its own slice of scratch. */
#include <fftw3.h>
#include <string.h>

#include "cpu_backend.h"
#include "vox_mel.h"
#include "vox_mel_hd.h"

/* floats per worker slice, rounded to 16 floats (64 bytes) so every slice keeps the plan's
 * alignment: in[n_fft] | spec[2 n_bins] | pow[n_bins] */
static size_t slice_floats(int n_fft) {
    size_t nb = (size_t)n_fft / 2 + 1;
    size_t a = ((size_t)n_fft + 15) / 16 * 16, b = (2 * nb + 15) / 16 * 16, c = (nb + 15) / 16 * 16;
    return a + b + c;
}

void cpu_fft_plans_free(cpu_impl *im) {
    int any = 0;
    for (int i = 0; i < CPU_FFT_PLANS; i++) any |= im->fft[i].plan != NULL;
    if (!any) return;
    vox_fftw_planner_lock();
    for (int i = 0; i < CPU_FFT_PLANS; i++) {
        if (im->fft[i].plan) fftwf_destroy_plan((fftwf_plan)im->fft[i].plan);
        im->fft[i].plan = NULL;
        im->fft[i].n = 0;
    }
    vox_fftw_planner_unlock();
}

static fftwf_plan get_plan(vox_backend *be, int n_fft) {
    cpu_impl *im = cpu_of(be);
    for (int i = 0; i < CPU_FFT_PLANS; i++)
        if (im->fft[i].plan && im->fft[i].n == n_fft) return (fftwf_plan)im->fft[i].plan;
    int slot = -1;
    for (int i = 0; i < CPU_FFT_PLANS && slot < 0; i++)
        if (!im->fft[i].plan) slot = i;
    if (slot < 0) slot = im->fft_next++ % CPU_FFT_PLANS;
    /* plan on arrays with the alignment the op runs on (the 64-byte scratch slices) */
    float *in = fftwf_malloc(sizeof(float) * (size_t)n_fft);
    fftwf_complex *out = fftwf_malloc(sizeof(fftwf_complex) * ((size_t)n_fft / 2 + 1));
    fftwf_plan p = NULL;
    if (in && out) {
        vox_fftw_planner_lock();
        if (im->fft[slot].plan) fftwf_destroy_plan((fftwf_plan)im->fft[slot].plan);
        im->fft[slot].plan = NULL;
        /* FFTW_ESTIMATE: deterministic plan choice, the same as audio/mel.c */
        p = fftwf_plan_dft_r2c_1d(n_fft, in, out, FFTW_ESTIMATE);
        vox_fftw_planner_unlock();
    }
    if (in) fftwf_free(in);
    if (out) fftwf_free(out);
    if (!p) {
        vox_set_error(&be->err, VOX_ERR_DEVICE, "cpu logmel: FFTW could not plan an r2c FFT of size %d",
                      n_fft);
        return NULL;
    }
    im->fft[slot].plan = p;
    im->fft[slot].n = n_fft;
    return p;
}

typedef struct {
    float *y;
    const float *x, *window, *filters;
    const int *rng; /* [n_mels][2]: first non-zero bin, count */
    fftwf_plan plan;
    float *scratch;
    size_t slice;
    int64_t n_frames;
    int hop, n_fft, n_bins, n_mels;
    float log_floor;
} lm_ctx;

static void lm_worker(void *vctx, int worker, int n_workers) {
    lm_ctx *c = vctx;
    int64_t per = (c->n_frames + n_workers - 1) / n_workers;
    int64_t b = (int64_t)worker * per, e = b + per;
    if (e > c->n_frames) e = c->n_frames;
    float *in = c->scratch + (size_t)worker * c->slice;
    float *spec = in + ((size_t)c->n_fft + 15) / 16 * 16;
    float *pw = spec + (2 * (size_t)c->n_bins + 15) / 16 * 16;
    for (int64_t g = b; g < e; g++) {
        const float *xf = c->x + g * (int64_t)c->hop;
        for (int i = 0; i < c->n_fft; i++) in[i] = c->window[i] * xf[i];
        fftwf_execute_dft_r2c(c->plan, in, (fftwf_complex *)spec);
        for (int k = 0; k < c->n_bins; k++) pw[k] = vox_mel_power(spec[2 * k], spec[2 * k + 1]);
        float *yr = c->y + g * (int64_t)c->n_mels;
        for (int m = 0; m < c->n_mels; m++) {
            int lo = c->rng[2 * m], len = c->rng[2 * m + 1];
            const float *w = c->filters + (size_t)m * (size_t)c->n_bins + lo;
            const float *p = pw + lo;
            float s = 0.0f;
            for (int k = 0; k < len; k++) s += w[k] * p[k];
            yr[m] = vox_mel_log_scale(s, c->log_floor);
        }
    }
}

int cpu_logmel(vox_backend *be, float *y, const float *x, int n_frames, int hop, int n_fft,
               const float *window, const float *filters, int n_mels, float log_floor) {
    if (n_frames < 0 || hop < 1 || n_fft < 2 || n_mels < 1)
        return cpu_arg_error(be, "logmel",
                             "expected n_frames >= 0, hop >= 1, n_fft >= 2, n_mels >= 1; found "
                             "%d, %d, %d, %d",
                             n_frames, hop, n_fft, n_mels);
    if (n_frames == 0) return VOX_OK;
    if (!y || !x || !window || !filters) return cpu_arg_error(be, "logmel", "NULL buffer");
    cpu_impl *im = cpu_of(be);
    int n_bins = n_fft / 2 + 1;
    fftwf_plan plan = get_plan(be, n_fft);
    if (!plan) return VOX_ERR_DEVICE;
    int nw = im->n_workers < 1 ? 1 : im->n_workers;
    if (n_frames < 4) nw = 1;
    size_t slice = slice_floats(n_fft);
    size_t rng_floats = (2 * (size_t)n_mels + 15) / 16 * 16; /* ints stored in float slots */
    int rc = cpu_scratch_reserve(be, &im->mel, rng_floats + slice * (size_t)nw, "logmel");
    if (rc) return rc;
    int *rng = (int *)(void *)im->mel.p;
    /* non-zero span of every filter (the bank may differ per call; this is n_mels*n_bins reads) */
    for (int m = 0; m < n_mels; m++) {
        const float *w = filters + (size_t)m * (size_t)n_bins;
        int lo = -1, hi = -1;
        for (int k = 0; k < n_bins; k++)
            if (w[k] != 0.0f) {
                if (lo < 0) lo = k;
                hi = k;
            }
        rng[2 * m] = lo < 0 ? 0 : lo;
        rng[2 * m + 1] = lo < 0 ? 0 : hi - lo + 1;
    }
    lm_ctx c = {y,    x,        window, filters, rng,    plan,   im->mel.p + rng_floats,
                slice, n_frames, hop,    n_fft,   n_bins, n_mels, log_floor};
    if (nw == 1) lm_worker(&c, 0, 1);
    else vox_pool_run(im->pool, lm_worker, &c);
    return VOX_OK;
}
