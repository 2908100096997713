/* vox_decode.h - decode any audio FFmpeg's libav can read to float32 mono at a target rate.
 *
 * Inputs: anything libavformat probes (wav, flac, mp3, ogg/opus/vorbis, m4a/aac, webm/mkv, the
 * audio track of a video file), from a path, a memory image (an HTTP upload) or a file
 * descriptor (stdin `-`, pipes: probed like a file, read sequentially when not seekable). With
 * `raw_rate > 0` the input is NOT probed: it is headerless signed 16-bit little-endian PCM with
 * `raw_channels` interleaved channels at `raw_rate` Hz.
 *
 * Conversion: the best audio stream (av_find_best_stream) is decoded; all its channels are
 * AVERAGED with equal weights 1/C (the same downmix as vox_wav_read and mistral-common, not
 * libswresample's default -3 dB matrix); the mono signal is resampled to `target_rate` with
 * libswresample using the soxr engine at 20-bit precision (= soxr "HQ", as the Python references
 * use) when FFmpeg was built with libsoxr, else swr's own resampler (filter 32 taps, noted in
 * vox_decode_info.resampler). When the source rate equals target_rate no resampling happens and
 * 16-bit input gives exactly int16 / 32768 (bit-identical to vox_wav_read for mono 16-bit).
 *
 * Errors (return code + one line naming the file; `name` is used for memory/fd inputs):
 *   missing file ("cannot open: No such file or directory"), a directory ("is a directory"),
 *   not audio ("not an audio file: <libav reason>", or "no audio stream (streams: video h264)"),
 *   0-second audio ("contains no audio"), NaN/Inf in float input: REJECTED
 *   ("float sample at input frame N, channel c is NaN (NaN/Inf not allowed)"), never sanitized,
 *   as vox_wav_read does: a NaN smears through the resampler and silently hides a broken file.
 * Truncation is a WARNING, not an error: everything decodable is returned and info.truncated is
 *   set with a one-line reason in info.warning when (a) a packet failed to decode (it is skipped;
 *   info.n_bad_packets counts them), (b) the demuxer stopped with a read error other than end of
 *   file, or (c) the decoded input is shorter than the container's declared duration by more
 *   than 0.1 s + 1 % + 4 codec frames (mp3 with a Xing/Info frame count, flac STREAMINFO, mp4
 *   headers, ...; containers include encoder delay/padding in that duration, hence the frames).
 *   Only if nothing at all decodes is it an error ("contains no audio" / "not an audio file").
 *   NOT detected (libav gives no sign): a truncated mp3 without a Xing/Info header, a WAV whose
 *   data chunk declares more than the file holds (docs/audio.md).
 *
 * Logging and global state: libav logs to stderr through a process-wide level. Programs call
 * vox_decode_global_init(verbose) once at start: it only calls av_log_set_level (AV_LOG_QUIET
 * unless verbose, then AV_LOG_WARNING). This is the single piece of global state this module
 * touches; nothing else here is global and decoders on different threads are independent.
 *
 * Ownership: a vox_decoder owns its libav contexts and buffers; for vox_decoder_open_mem the
 * caller's buffer is borrowed and must outlive the decoder; for vox_decoder_open_fd the fd is
 * borrowed (not closed). vox_decode_* return a malloc'ed sample buffer the caller free()s. */
#ifndef VOX_DECODE_H
#define VOX_DECODE_H

#include <stddef.h>

#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vox_decode_opts {
    int target_rate;  /* output rate in Hz, e.g. 16000 (> 0) */
    int raw_rate;     /* > 0: input is raw s16le at this rate, no probing; 0: probe */
    int raw_channels; /* channels of the raw input (0 means 1) */
} vox_decode_opts;

#define VOX_DECODE_WARN_LEN 400

typedef struct vox_decode_info {
    int src_rate;            /* Hz of the decoded stream (first frame) */
    int src_channels;        /* channels of the decoded stream */
    int out_rate;            /* = opts.target_rate */
    char codec[32];          /* libavcodec decoder name, e.g. "mp3float", "opus", "pcm_s16le" */
    char container[32];      /* libavformat demuxer name, e.g. "wav", "ogg", "mov,mp4,..." */
    char resampler[16];      /* "soxr-hq", "swr" or "none" (rates equal) */
    double declared_seconds; /* duration stated by the container, -1 if unknown */
    size_t in_frames;        /* source frames decoded so far (per channel) */
    size_t out_samples;      /* output samples delivered so far */
    int n_bad_packets;       /* packets the decoder rejected and that were skipped */
    int truncated;           /* 1 once truncation was detected (see above); set by EOF */
    char warning[VOX_DECODE_WARN_LEN]; /* one line when truncated, else "" */
} vox_decode_info;

/* Silence (verbose == 0) or enable (verbose != 0) libav's own stderr logging. Process-wide:
 * call once from the program, never from library code. */
void vox_decode_global_init(int verbose);

/* ---- incremental ------------------------------------------------------------------------ */
typedef struct vox_decoder vox_decoder;

vox_decoder *vox_decoder_open(const char *path, const vox_decode_opts *opts, vox_error *err);
/* Borrow data[len] (must outlive the decoder); `name` appears in messages. */
vox_decoder *vox_decoder_open_mem(const void *data, size_t len, const char *name,
                                  const vox_decode_opts *opts, vox_error *err);
/* Read from fd (borrowed, not closed; for a FILE* pass fileno(f) before any stdio read on it).
 * Seekable regular files are seekable; pipes are read sequentially. */
vox_decoder *vox_decoder_open_fd(int fd, const char *name, const vox_decode_opts *opts,
                                 vox_error *err);

/* Write up to `max` (> 0) resampled mono samples to out; *n_out = count. *n_out < max only at the end
 * of the input; *n_out == 0 means end of input (info then final). Errors: NaN/Inf input,
 * allocation failure, "contains no audio" (end reached and nothing was decoded). */
int vox_decoder_read(vox_decoder *d, float *out, size_t max, size_t *n_out, vox_error *err);
const vox_decode_info *vox_decoder_info(const vox_decoder *d);
void vox_decoder_close(vox_decoder *d);

/* ---- whole input -------------------------------------------------------------------------- */
/* Decode everything into *samples (malloc'ed float[*n], caller frees); info may be NULL. On
 * error *samples is NULL and *n is 0. A truncation warning is in info->warning (rc VOX_OK). */
int vox_decode_file(const char *path, const vox_decode_opts *opts, float **samples, size_t *n,
                    vox_decode_info *info, vox_error *err);
int vox_decode_mem(const void *data, size_t len, const char *name, const vox_decode_opts *opts,
                   float **samples, size_t *n, vox_decode_info *info, vox_error *err);
int vox_decode_fd(int fd, const char *name, const vox_decode_opts *opts, float **samples, size_t *n,
                  vox_decode_info *info, vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_DECODE_H */
