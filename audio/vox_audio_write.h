/* vox_audio_write.h - write float32 mono PCM to a file, format chosen by the extension
 * (libsndfile).
 *
 * Formats by extension (case-insensitive): ".wav" RIFF/WAVE 16-bit PCM (32-bit float with
 * VOX_AUDIO_WRITE_FLOAT); ".flac" FLAC 16-bit (24-bit with VOX_AUDIO_WRITE_FLOAT: FLAC has no
 * float); ".ogg" or ".oga" Ogg Vorbis (libvorbis, SFC_SET_VBR_ENCODING_QUALITY 0.6 on libsndfile's
 * scale 0 lowest to 1 highest); ".opus" Ogg Opus (libopus; Opus accepts only 8, 12, 16, 24 and
 * 48 kHz, other rates are an error); ".mp3" MPEG Layer III (LAME; the MPEG rates 8 to 48 kHz).
 * Any other extension is an error naming the file and the accepted list.
 *
 * Integer PCM (16/24-bit) is x * 2^(bits-1) rounded to nearest and clipped, as
 * vox_wav_write_pcm16, so int16 / 32768 input round-trips exactly (libsndfile's own float
 * conversion would scale by 32767). Float and lossy outputs get samples clamped to [-1, 1].
 * NaN/Inf are REJECTED ("sample 12 is NaN") and nothing is written; a failed write removes the
 * partial file. n may be 0 for .wav/.flac (a valid empty file).
 *
 * libsndfile is used for every format: the Debian build (1.2.0) has vorbis, opus and mpeg
 * (lame + mpg123) compiled in, so no libavcodec encoder is needed. Stateless and thread-safe. */
#ifndef VOX_AUDIO_WRITE_H
#define VOX_AUDIO_WRITE_H

#include <stddef.h>

#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { VOX_AUDIO_WRITE_FLOAT = 1 }; /* flags: float WAV / 24-bit FLAC instead of 16-bit */

int vox_audio_write(const char *path, const float *samples, size_t n, int sample_rate, int flags,
                    vox_error *err);

/* 1 if the extension of `path` is one vox_audio_write accepts. */
int vox_audio_write_supported(const char *path);

#ifdef __cplusplus
}
#endif
#endif /* VOX_AUDIO_WRITE_H */
