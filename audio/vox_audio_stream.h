/* vox_audio_stream.h - encode float32 mono PCM incrementally to a byte sink (an HTTP response,
 * a file), format chosen by name.
 *
 * Formats: "wav" RIFF/WAVE 16-bit PCM (our own 44-byte header, see below); "flac" FLAC 16-bit;
 * "mp3" MPEG Layer III (LAME); "opus" Ogg Opus (rates 8/12/16/24/48 kHz only); "ogg" Ogg Vorbis
 * (quality 0.6 on libsndfile's 0..1 scale, as vox_audio_write); "pcm" headerless signed 16-bit
 * little-endian. flac/mp3/opus/ogg go through libsndfile's virtual I/O (sf_open_virtual), so
 * the same encoders and settings as vox_audio_write are used.
 *
 * Sample conversion as vox_audio_write: integer outputs are round(x * 32768) clipped to
 * [-32768, 32767] (int16 / 32768 input round-trips exactly); lossy outputs get x clamped to
 * [-1, 1]; a NaN/Inf sample is an error ("sample N is NaN") and nothing of that block is
 * written.
 *
 * Bytes go out through `write` as the encoder produces them, in order. Some encoders want to
 * go back and fix their header when they finish (WAV sizes; FLAC STREAMINFO with the sample
 * count and MD5; mp3's Xing/LAME frame with the frame count and encoder delay/padding). With a
 * `patch` callback (a seekable output such as a file) those rewrites are applied, and the
 * result is byte-identical to a file written in one go. Without one (a network stream) they
 * are dropped and the stream stays what a streaming reader can use:
 *   wav:  RIFF and data sizes 0xFFFFFFFF ("unknown, read to the end"). Chosen over 0 because
 *         readers that trust the sizes fail on 0 (Python's wave: "not a WAVE file" for a RIFF
 *         size 0, 0 frames for a data size 0), while with 0xFFFFFFFF ffmpeg/ffprobe and
 *         libsndfile read to the end of the data, sox too (with a "premature EOF" warning),
 *         and Python's wave reads every frame present (readframes stops at EOF; getnframes
 *         is meaningless). Browsers decode it as ffmpeg does.
 *   flac: STREAMINFO keeps total samples 0 and MD5 0, which the FLAC format defines as
 *         "unknown"; decoders read the frames to the end.
 *   mp3:  the first frame stays LAME's placeholder (a frame without the Xing tag), so decoders
 *         do not trim the encoder delay: the decoded length is n plus LAME's delay and padding
 *         (at most 3 frames of 1152 samples more, tested).
 *   opus, ogg: no rewrite is needed; the Ogg granule positions give the exact length.
 * The encoders buffer internally: mp3 emits about every frame, Ogg pages come out at ~4 KiB
 * (opus: ~1 s of speech), FLAC per 4096-sample block; wav and pcm emit every block at once.
 *
 * Ownership: the stream owns the encoder; ud is borrowed. write/patch return 0 on success,
 * nonzero on failure (the encoder then reports "output write failed"). Not thread-safe: one
 * stream per thread at a time; distinct streams are independent. */
#ifndef VOX_AUDIO_STREAM_H
#define VOX_AUDIO_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*vox_audio_stream_write_fn)(void *ud, const void *p, size_t n);
/* Overwrite n bytes at byte offset off (< bytes written so far) of the output. */
typedef int (*vox_audio_stream_patch_fn)(void *ud, uint64_t off, const void *p, size_t n);

typedef struct vox_audio_stream vox_audio_stream;

/* format: one of the names above (case-insensitive). patch may be NULL (streaming). Errors:
 * unknown format (the message lists the names), a rate the format cannot take, an encoder
 * that fails to start. */
vox_audio_stream *vox_audio_stream_open(const char *format, int sample_rate,
                                        vox_audio_stream_write_fn write,
                                        vox_audio_stream_patch_fn patch, void *ud, vox_error *err);
/* Append x[n]; n may be 0. */
int vox_audio_stream_write(vox_audio_stream *s, const float *x, size_t n, vox_error *err);
/* Flush the encoder and write its trailer (and patch headers when possible). The stream is
 * finished afterwards (writes fail); call it once, then vox_audio_stream_free. */
int vox_audio_stream_finish(vox_audio_stream *s, vox_error *err);
/* Frees without finishing when finish was not called (the output is then incomplete). */
void vox_audio_stream_free(vox_audio_stream *s);

size_t vox_audio_stream_samples(const vox_audio_stream *s); /* samples accepted */
uint64_t vox_audio_stream_bytes(const vox_audio_stream *s); /* bytes sent through write */

/* The canonical format name for a user-facing name ("WAV", "oga" -> "ogg", ...) or NULL. */
const char *vox_audio_stream_format(const char *name);
/* The format for a file name by its extension (".wav", ".flac", ".ogg"/".oga", ".opus",
 * ".mp3") or NULL. */
const char *vox_audio_stream_format_for_path(const char *path);
/* MIME type of a format name: audio/wav, audio/flac, audio/mpeg, audio/ogg (opus, ogg),
 * audio/pcm (pcm, with the rate in a parameter by the caller when needed); NULL if unknown. */
const char *vox_audio_stream_mime(const char *format);

#ifdef __cplusplus
}
#endif
#endif /* VOX_AUDIO_STREAM_H */
