/* vox_audio_write.h - write float32 mono PCM to a file, format chosen by the extension (libsndfile).
 *
 *   .wav   RIFF/WAVE 16-bit PCM (or 32-bit float with VOX_AUDIO_WRITE_FLOAT)
 *   .flac  FLAC 16-bit (24-bit with VOX_AUDIO_WRITE_FLOAT: FLAC has no float)
 *   .ogg / .oga  Ogg Vorbis (libsndfile's libvorbis, SFC_SET_VBR_ENCODING_QUALITY 0.6 on 0 lowest .. 1 highest)
 *   .opus  Ogg Opus (libopus; Opus only accepts 8, 12, 16, 24 and 48 kHz: other rates -> error)
 *   .mp3   MPEG-1/2 Layer III (libsndfile's LAME; rates 8..48 kHz as MPEG allows)
 * The extension is matched case-insensitively; anything else is an error naming the file and
 * the accepted list. Samples are clamped to [-1, 1] (a lossy encoder or a 16-bit file would
 * clip or wrap otherwise) and NaN/Inf are REJECTED ("sample 12 is NaN"), never written.
 * n may be 0 for .wav/.flac (a valid empty file).
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
