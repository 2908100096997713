/* audio_write.c - vox_audio_write via libsndfile (vox_audio_write.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sndfile.h>

#include "vox_audio_write.h"

static int format_for(const char *path, int flags) {
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot || strchr(dot, '/')) return 0;
    const char *e = dot + 1;
    if (!strcasecmp(e, "wav"))
        return SF_FORMAT_WAV |
               ((flags & VOX_AUDIO_WRITE_FLOAT) ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16);
    if (!strcasecmp(e, "flac"))
        return SF_FORMAT_FLAC |
               ((flags & VOX_AUDIO_WRITE_FLOAT) ? SF_FORMAT_PCM_24 : SF_FORMAT_PCM_16);
    if (!strcasecmp(e, "ogg") || !strcasecmp(e, "oga")) return SF_FORMAT_OGG | SF_FORMAT_VORBIS;
    if (!strcasecmp(e, "opus")) return SF_FORMAT_OGG | SF_FORMAT_OPUS;
    if (!strcasecmp(e, "mp3")) return SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
    return 0;
}

int vox_audio_write_supported(const char *path) {
    return format_for(path, 0) != 0;
}

int vox_audio_write(const char *path, const float *samples, size_t n, int sample_rate, int flags,
                    vox_error *err) {
    if (!path) return vox_set_error(err, VOX_ERR_ARG, "vox_audio_write: NULL path");
    if ((!samples && n) || sample_rate <= 0)
        return vox_set_error(err, VOX_ERR_ARG, "%s: bad samples or sample rate %d", path,
                             sample_rate);
    int fmt = format_for(path, flags);
    if (!fmt)
        return vox_set_error(
            err, VOX_ERR_ARG,
            "%s: unknown output format (expected .wav, .flac, .ogg, .opus or .mp3)", path);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(samples[i]))
            return vox_set_error(err, VOX_ERR_ARG, "%s: sample %zu is %s (NaN/Inf not written)",
                                 path, i, isnan(samples[i]) ? "NaN" : "Inf");
    SF_INFO si = {0};
    si.samplerate = sample_rate;
    si.channels = 1;
    si.format = fmt;
    if (!sf_format_check(&si))
        return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                             "%s: libsndfile cannot write this format "
                             "at %d Hz mono",
                             path, sample_rate);
    SNDFILE *f = sf_open(path, SFM_WRITE, &si);
    if (!f) return vox_set_error(err, VOX_ERR_IO, "%s: cannot write: %s", path, sf_strerror(NULL));
    if ((fmt & SF_FORMAT_TYPEMASK) == SF_FORMAT_OGG &&
        (fmt & SF_FORMAT_SUBMASK) == SF_FORMAT_VORBIS) {
        double q = 0.6; /* libsndfile's scale: 0 = lowest ... 1 = highest quality */
        sf_command(f, SFC_SET_VBR_ENCODING_QUALITY, &q, sizeof q);
    }
    /* Integer PCM is converted here, not by libsndfile (which scales floats by 32767 for
     * 16-bit): x * 2^(bits-1), rounded to nearest, clipped, so that int16 / 32768 input (what
     * every reader returns) is written back bit-exactly. Fixed-size blocks, no allocation. */
    int sub = fmt & SF_FORMAT_SUBMASK;
    int ibits = sub == SF_FORMAT_PCM_16 ? 16 : sub == SF_FORMAT_PCM_24 ? 24 : 0;
    float blk[4096];
    int iblk[4096];
    size_t done = 0;
    int rc = VOX_OK;
    while (done < n) {
        size_t k = n - done < 4096 ? n - done : 4096;
        sf_count_t w;
        if (ibits) {
            double scale = ibits == 16 ? 32768.0 : 8388608.0;
            for (size_t i = 0; i < k; i++) {
                double v = round((double)samples[done + i] * scale);
                v = v > scale - 1 ? scale - 1 : v < -scale ? -scale : v;
                iblk[i] = (int)v * (1 << (32 - ibits)); /* libsndfile ints are left-aligned */
            }
            w = sf_writef_int(f, iblk, (sf_count_t)k);
        } else {
            for (size_t i = 0; i < k; i++) {
                float v = samples[done + i];
                blk[i] = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
            }
            w = sf_writef_float(f, blk, (sf_count_t)k);
        }
        if (w != (sf_count_t)k) {
            rc = vox_set_error(err, VOX_ERR_IO, "%s: write failed: %s", path, sf_strerror(f));
            break;
        }
        done += k;
    }
    if (sf_close(f) != 0 && rc == VOX_OK)
        rc = vox_set_error(err, VOX_ERR_IO, "%s: write failed at close", path);
    if (rc) remove(path);
    return rc;
}
