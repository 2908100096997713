/* resample.c - vox_resample.h: the libswresample float converter shared by vox_pa and the
 * server's streamed client audio. */
#include <stdlib.h>

#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>

#include "vox_resample.h"

struct SwrContext *vox_swr_float(int in_ch, int in_rate, int out_ch, int out_rate, vox_error *err) {
    AVChannelLayout il, ol;
    av_channel_layout_default(&il, in_ch);
    av_channel_layout_default(&ol, out_ch);
    double m[4]; /* out_ch x in_ch, at most 2 x 1 or 1 x 2 (or 1 x 1) */
    for (int o = 0; o < out_ch; o++)
        for (int i = 0; i < in_ch; i++)
            m[o * in_ch + i] = out_ch == 1 ? 1.0 / in_ch : 1.0;
    SwrContext *s = NULL;
    int r = -1;
    for (int attempt = in_rate != out_rate ? 0 : 1; attempt < 2; attempt++) {
        swr_free(&s);
        r = swr_alloc_set_opts2(&s, &ol, AV_SAMPLE_FMT_FLT, out_rate, &il, AV_SAMPLE_FMT_FLT,
                                in_rate, 0, NULL);
        if (r >= 0 && attempt == 0) {
            r = av_opt_set_int(s, "resampler", SWR_ENGINE_SOXR, 0);
            if (r >= 0) r = av_opt_set_double(s, "precision", 20.0, 0);
        }
        if (r >= 0) r = swr_set_matrix(s, m, in_ch);
        if (r >= 0) r = swr_init(s);
        if (r >= 0) break;
    }
    av_channel_layout_uninit(&il);
    av_channel_layout_uninit(&ol);
    if (r < 0) {
        swr_free(&s);
        vox_set_error(err, VOX_ERR_UNSUPPORTED,
                      "cannot convert %d Hz %d-channel audio to %d Hz %d-channel", in_rate, in_ch,
                      out_rate, out_ch);
    }
    return s;
}

struct vox_resampler {
    SwrContext *swr;
};

vox_resampler *vox_resampler_new(int in_rate, int out_rate, vox_error *err) {
    if (in_rate <= 0 || out_rate <= 0) {
        vox_set_error(err, VOX_ERR_ARG, "sample rates must be > 0 (got %d -> %d)", in_rate,
                      out_rate);
        return NULL;
    }
    vox_resampler *r = calloc(1, sizeof *r);
    if (!r) {
        vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        return NULL;
    }
    r->swr = vox_swr_float(1, in_rate, 1, out_rate, err);
    if (!r->swr) {
        free(r);
        return NULL;
    }
    return r;
}

void vox_resampler_free(vox_resampler *r) {
    if (!r) return;
    swr_free(&r->swr);
    free(r);
}

size_t vox_resampler_max_out(vox_resampler *r, size_t n) {
    int k = swr_get_out_samples(r->swr, (int)n);
    return k > 0 ? (size_t)k : 0;
}

int vox_resampler_run(vox_resampler *r, const float *in, size_t n, float *out, size_t cap,
                      size_t *n_out, vox_error *err) {
    *n_out = 0;
    if (n > (size_t)1 << 30 || cap > (size_t)1 << 30)
        return vox_set_error(err, VOX_ERR_ARG, "resampler: block too large");
    const uint8_t *i = (const uint8_t *)in;
    uint8_t *o = (uint8_t *)out;
    int got = swr_convert(r->swr, &o, (int)cap, in ? &i : NULL, (int)n);
    if (got < 0) return vox_set_error(err, VOX_ERR_FORMAT, "resampler: conversion failed");
    *n_out = (size_t)got;
    return VOX_OK;
}
