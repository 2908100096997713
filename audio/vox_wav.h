/* vox_wav.h - RIFF/WAVE reading into float32 mono, and a 16-bit PCM writer.
 *
 * Reads: PCM integer 8 (unsigned), 16, 24 and 32 bit; IEEE float 32 and 64 bit; any number of
 * channels (averaged to mono in double, then rounded once to float); any sample rate (reported,
 * NOT resampled: callers that need 16 kHz must check `sample_rate` and reject or resample; a
 * general decoder/resampler is a separate module). WAVE_FORMAT_EXTENSIBLE (0xFFFE) is accepted
 * when its sub-format GUID is PCM or IEEE float. Integer samples are scaled by 1 / 2^(bits-1)
 * (16-bit: x / 32768, as soundfile and mistral-common read them), 8-bit as (x - 128) / 128.
 *
 * Errors (one line, always naming the file): cannot open; not a RIFF/WAVE file; no fmt or data
 * chunk; unsupported format tag / bit depth; data chunk longer than the file ("truncated");
 * data not a whole number of frames; 0 frames ("contains no audio"); NaN or Inf in a float WAV
 * (names the index of the first bad frame). A data size of 0xFFFFFFFF (streamed WAV) means
 * "to the end of the file".
 *
 * Ownership: vox_wav_read returns a malloc'ed buffer in *samples that the caller frees with
 * free(). Nothing here keeps state; all functions are thread-safe. */
#ifndef VOX_WAV_H
#define VOX_WAV_H

#include <stddef.h>

#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { VOX_WAV_PCM = 1, VOX_WAV_FLOAT = 3 };

typedef struct vox_wav_info {
    int sample_rate; /* Hz, as in the header */
    int channels;    /* channels in the file (the output is always mono) */
    int bits;        /* container bits per sample: 8, 16, 24, 32 or 64 */
    int format;      /* VOX_WAV_PCM or VOX_WAV_FLOAT (after resolving EXTENSIBLE) */
    size_t n_frames; /* samples per channel = length of the mono output */
} vox_wav_info;

/* Read `path` into *samples (float32 mono [n_frames], caller frees) and fill *info (may be
 * NULL). On error *samples is NULL and err names the file. */
int vox_wav_read(const char *path, float **samples, vox_wav_info *info, vox_error *err);

/* Same, from a memory image of a WAV file; `name` is used in messages in place of a path. */
int vox_wav_read_mem(const void *data, size_t len, const char *name, float **samples,
                     vox_wav_info *info, vox_error *err);

/* Write mono 16-bit PCM: each sample is clamped to [-1, 1], scaled by 32768, rounded to
 * nearest (ties away from zero) and clipped to [-32768, 32767]; NaN is written as 0.
 * n may be 0 (a valid header with an empty data chunk). */
int vox_wav_write_pcm16(const char *path, const float *samples, size_t n, int sample_rate,
                        vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_WAV_H */
