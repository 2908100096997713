/* vox_mel_hd.h - per-element math of the Voxtral log-mel front end, shared by the CPU code
 * (audio/mel.c, the CPU backend's logmel op, vox_ref_logmel) and its cuFFT twin
 * (kernels/cuda/logmel_cuda.cu). Every helper is `static inline VOX_HD` (from
 * kernels/vox_hd.h), so the CPU tests exercise exactly the arithmetic a GPU kernel would run.
 *
 * The filter-bank helpers work in double (the bank is built once, in double, then rounded to
 * float); the per-frame helpers work in float. Nothing here allocates or touches global state. */
#ifndef VOX_MEL_HD_H
#define VOX_MEL_HD_H

#include <math.h>

#include "vox_hd.h"

/* Periodic Hann window of length n (torch.hann_window(n)): 0.5 - 0.5 cos(2 pi i / n). */
static inline VOX_HD float vox_mel_hann(int i, int n) {
    return (float)(0.5 - 0.5 * cos(2.0 * 3.14159265358979323846 * (double)i / (double)n));
}

/* Slaney mel scale: linear 3f/200 below 1 kHz, 15 + 27 ln(f/1000) / ln 6.4 above. */
static inline VOX_HD double vox_mel_hz_to_mel(double f) {
    if (f >= 1000.0) return 15.0 + log(f / 1000.0) * (27.0 / log(6.4));
    return 3.0 * f / 200.0;
}
static inline VOX_HD double vox_mel_mel_to_hz(double m) {
    if (m >= 15.0) return 1000.0 * exp((log(6.4) / 27.0) * (m - 15.0));
    return 200.0 * m / 3.0;
}

/* Weight of FFT bin frequency `f` (Hz) in the Slaney-normalised triangle with edges lo, c, hi
 * (Hz): max(0, min((f-lo)/(c-lo), (hi-f)/(hi-c))) * 2/(hi-lo). */
static inline VOX_HD double vox_mel_tri_weight(double f, double lo, double c, double hi) {
    double down = (f - lo) / (c - lo);
    double up = (hi - f) / (hi - c);
    double w = down < up ? down : up;
    if (!(w > 0.0)) return 0.0;
    return w * (2.0 / (hi - lo));
}

/* Power spectrum of one bin. */
static inline VOX_HD float vox_mel_power(float re, float im) {
    return re * re + im * im;
}

/* mel energy -> model feature: (max(log10(max(e, 1e-10)), log_floor) + 4) / 4, with
 * log_floor = global_log_mel_max - 8 (a fixed floor, not a per-utterance max). Digital silence
 * (e == 0) gives (log_floor + 4) / 4, e.g. -0.625 for global_log_mel_max 1.5. */
static inline VOX_HD float vox_mel_log_scale(float e, float log_floor) {
    float l = log10f(e > 1e-10f ? e : 1e-10f);
    if (l < log_floor) l = log_floor;
    return (l + 4.0f) / 4.0f;
}

#endif /* VOX_MEL_HD_H */
