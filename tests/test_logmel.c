/* test_logmel.c - the backend logmel op (vox_backend.h) and vox_mel_compute_backend.
 *
 *   1. On the mel fixture wavs (tests/fixtures/mel/, config from meta.json):
 *      vox_mel_compute_backend on the CPU backend (2 threads) equals audio/'s offline
 *      vox_mel_compute, REFLECT and ZERO padding. Same FFTW plan (FFTW_ESTIMATE, same size,
 *      aligned arrays) and the same float arithmetic in the same order, so the expectation is
 *      bit-equality; the asserted tolerance is TOL_SAME = 0 (max |diff| is printed). Both are
 *      also checked against the transformers fixture (*.mel.f32) within test_mel.c's 1e-4.
 *   2. Digital silence gives exactly -0.625 (= (global_log_mel_max - 8 + 4) / 4) everywhere.
 *   3. The op itself on random signals, odd and even n_fft, 1 and 3 threads, against the direct
 *      double-precision DFT of vox_ref_logmel (kernels/ref.c, no FFTW): |diff| <= TOL_DFT. Five
 *      FFT sizes cycle through the four cached plans twice (plan replacement).
 *   4. Argument errors (n_fft < 2, hop < 1, NULL buffers) return VOX_ERR_ARG; n_frames 0 is a
 *      no-op. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_backend.h"
#include "vox_common.h"
#include "vox_mel.h"
#include "vox_mel_hd.h"
#include "vox_ref.h"
#include "vox_test.h"
#include "vox_wav.h"
#include "vox_testdata.h"
#include "mel_fixture.h"

#define FIX MEL_FIX
#define TOL_SAME 0.0 /* CPU op vs vox_mel_compute: same FFTW math, bit-equal */
#define TOL_REF 1e-4 /* vs the float32 transformers fixture (as test_mel.c) */
/* CPU op (float FFTW, float mel sum) vs the double DFT on white noise with amplitude 1: the
 * float spectrum error is ~1e-7 of the frame energy, the band energies are within a few
 * orders of the total, so log10 moves by < 1e-5; features are log10 / 4. */
#define TOL_DFT 2e-5

static double max_diff(const float *a, const float *b, size_t n, size_t *n_diff) {
    double m = 0.0;
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d;
        c += a[i] != b[i];
    }
    if (n_diff) *n_diff = c;
    return m;
}

static void fixtures(vox_test_state *ts, vox_backend *be, const vox_mel *mel) {
    vox_error err = {0};
    const vox_mel_config *cfg = vox_mel_get_config(mel);
    const size_t nm = (size_t)cfg->n_mels;
    static const char *names[] = {"speech", "sine", "click", "silence"};
    for (int t = 0; t < 4; t++) {
        char wav[600], ref[600];
        snprintf(wav, sizeof wav, FIX "%s.wav", names[t]);
        snprintf(ref, sizeof ref, FIX "%s.mel.f32", names[t]);
        float *x = NULL;
        vox_wav_info wi = {0};
        int rc = vox_wav_read(wav, &x, &wi, &err);
        VOX_CHECK(ts, rc == VOX_OK, "%s: %s", wav, err.msg);
        if (rc != VOX_OK) continue;
        size_t n = wi.n_frames, T = vox_mel_n_frames(mel, n);
        float *a = malloc(T * nm * sizeof(float)), *b = malloc(T * nm * sizeof(float));
        for (int pad = 0; pad < 2 && a && b; pad++) {
            vox_mel_pad pm = pad ? VOX_MEL_PAD_ZERO : VOX_MEL_PAD_REFLECT;
            memset(b, 0xff, T * nm * sizeof(float)); /* NaN until written */
            int r1 = vox_mel_compute(mel, x, n, pm, a, &err);
            VOX_CHECK(ts, r1 == VOX_OK, "vox_mel_compute %s: %s", names[t], err.msg);
            int r2 = vox_mel_compute_backend(mel, be, x, n, pm, b, &err);
            VOX_CHECK(ts, r2 == VOX_OK, "vox_mel_compute_backend %s: %s", names[t], err.msg);
            if (r1 || r2) continue;
            size_t nd = 0;
            double d = max_diff(a, b, T * nm, &nd);
            printf("%-8s %-7s %4zu frames: cpu op vs vox_mel_compute max |diff| %.3g (%zu of %zu "
                   "values differ)\n",
                   names[t], pad ? "zero" : "reflect", T, d, nd, T * nm);
            VOX_CHECK(ts, d <= TOL_SAME, "%s %s: max |diff| %.3g > %g", names[t],
                      pad ? "zero" : "reflect", d, TOL_SAME);
            if (t == 3) {
                size_t bad = 0;
                for (size_t i = 0; i < T * nm; i++) bad += b[i] != -0.625f;
                VOX_CHECK(ts, bad == 0 && T > 0, "silence: %zu of %zu values are not -0.625", bad,
                          T * nm);
                printf("silence  %-7s: all %zu values == -0.625 exactly: %s\n",
                       pad ? "zero" : "reflect", T * nm, bad ? "NO" : "yes");
            } else if (pad == 0) {
                float *r = mel_fix_read_f32(ref, T * nm, ts);
                if (r) {
                    double dr = max_diff(b, r, T * nm, NULL);
                    printf("%-8s reflect: cpu op vs transformers fixture max |diff| %.3g\n",
                           names[t], dr);
                    VOX_CHECK(ts, dr <= TOL_REF, "%s: vs fixture %.3g > %g", names[t], dr,
                              TOL_REF);
                    free(r);
                }
            }
        }
        free(a);
        free(b);
        free(x);
    }
}

/* The op on random data against vox_ref_logmel. */
static void op_vs_dft(vox_test_state *ts, vox_backend *be, vox_rng *rng, int n_fft, int hop,
                      int n_mels, int n_frames, double *worst) {
    int nb = n_fft / 2 + 1;
    size_t nx = (size_t)(n_frames - 1) * hop + n_fft + 3; /* a little slack past the end */
    float *x = malloc(nx * 4), *win = malloc((size_t)n_fft * 4);
    float *fb = calloc((size_t)n_mels * nb, 4);
    float *y = malloc((size_t)n_frames * n_mels * 4), *e = malloc((size_t)n_frames * n_mels * 4);
    if (!x || !win || !fb || !y || !e) goto out;
    for (size_t i = 0; i < nx; i++) x[i] = vox_rng_uni(rng);
    for (int i = 0; i < 3 * n_fft && (size_t)i < nx; i++) x[i] = 0.0f; /* frames at the floor */
    for (int i = 0; i < n_fft; i++) win[i] = vox_mel_hann(i, n_fft);
    /* a banded bank: filter m covers a random span of bins with positive weights */
    for (int m = 0; m < n_mels; m++) {
        int lo = (int)((vox_rng_uni(rng) + 1.0f) * 0.5f * (float)(nb - 1)), len = 1 + m % 5;
        for (int k = lo; k < lo + len && k < nb; k++) fb[(size_t)m * nb + k] = 0.5f + 0.5f * vox_rng_uni(rng);
    }
    vox_ref_logmel(e, x, n_frames, hop, n_fft, win, fb, n_mels, -6.5f);
    int rc = be->ops->logmel(be, y, x, n_frames, hop, n_fft, win, fb, n_mels, -6.5f);
    VOX_CHECK(ts, rc == VOX_OK, "logmel n_fft %d: %s", n_fft, be->err.msg);
    if (rc == VOX_OK) {
        double d = max_diff(y, e, (size_t)n_frames * n_mels, NULL);
        if (d > *worst || d != d) *worst = d;
        VOX_CHECK(ts, d <= TOL_DFT, "logmel n_fft %d hop %d mels %d frames %d (%d threads): max "
                  "|diff| vs DFT %.3g > %g", n_fft, hop, n_mels, n_frames, be->n_threads, d, TOL_DFT);
        VOX_CHECK(ts, y[0] == (-6.5f + 4.0f) / 4.0f, "a silent frame gives %.9g", y[0]);
    }
out:
    free(x), free(win), free(fb), free(y), free(e);
}

int main(void) {
    vox_test_state ts = {0};
    vox_error err = {0};
    vox_mel_config cfg;
    cJSON *meta = mel_fix_load(&cfg, &ts);
    int ok = meta != NULL;
    vox_mel *mel = ok ? vox_mel_new(&cfg, &err) : NULL;
    VOX_CHECK(&ts, !ok || mel, "vox_mel_new: %s", err.msg);
    vox_backend *be = vox_cpu_backend_create(2, &err);
    VOX_CHECK(&ts, be != NULL, "cpu backend: %s", err.msg);
    if (mel && be) fixtures(&ts, be, mel);

    vox_rng rng = {0x9e3779b97f4a7c15ull};
    vox_backend *be1 = vox_cpu_backend_create(1, &err), *be3 = vox_cpu_backend_create(3, &err);
    VOX_CHECK(&ts, be1 && be3, "cpu backends: %s", err.msg);
    if (be1 && be3) {
        static const struct {
            int n_fft, hop, n_mels, frames;
        } sh[] = {{16, 4, 3, 9}, {15, 5, 4, 7}, {64, 16, 8, 40}, {400, 160, 20, 12}, {97, 31, 6, 11}};
        double worst = 0.0;
        for (int rep = 0; rep < 2; rep++)
            for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
                op_vs_dft(&ts, rep ? be3 : be1, &rng, sh[s].n_fft, sh[s].hop, sh[s].n_mels,
                          sh[s].frames, &worst);
            }
        printf("cpu op vs direct double DFT (5 sizes x 1/3 threads): max |diff| %.3g (tol %g)\n",
               worst, TOL_DFT);
        /* argument errors and the no-op */
        float buf[64] = {0};
        VOX_CHECK(&ts, be1->ops->logmel(be1, buf, buf, 1, 1, 1, buf, buf, 1, 0.f) == VOX_ERR_ARG,
                  "n_fft 1 accepted");
        VOX_CHECK(&ts, be1->ops->logmel(be1, buf, buf, 1, 0, 8, buf, buf, 1, 0.f) == VOX_ERR_ARG,
                  "hop 0 accepted");
        VOX_CHECK(&ts, be1->ops->logmel(be1, buf, NULL, 1, 1, 8, buf, buf, 1, 0.f) == VOX_ERR_ARG,
                  "NULL x accepted");
        VOX_CHECK(&ts, be1->ops->logmel(be1, NULL, NULL, 0, 1, 8, NULL, NULL, 1, 0.f) == VOX_OK,
                  "0 frames: %s", be1->err.msg);
    }
    if (mel && be) {
        float o[4];
        VOX_CHECK(&ts, vox_mel_compute_backend(mel, be, o, 10, VOX_MEL_PAD_REFLECT, o, &err) ==
                           VOX_ERR_ARG,
                  "reflect on 10 samples accepted");
    }
    vox_backend_destroy(be3);
    vox_backend_destroy(be1);
    vox_backend_destroy(be);
    vox_mel_free(mel);
    cJSON_Delete(meta);
    return vox_test_done(&ts, "test_logmel");
}
