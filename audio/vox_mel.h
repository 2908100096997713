/* vox_mel.h - the Voxtral Realtime log-mel front end (CPU, FFTW3 single precision).
 *
 * Math (spec voxtral-realtime.md §1; matches transformers' VoxtralRealtimeFeatureExtractor):
 *   periodic Hann window of n_fft samples; r2c FFT of size n_fft (n_fft/2 + 1 bins); hop `hop`;
 *   power |X|^2; n_mels Slaney-scale triangles from f_min to f_max Hz with Slaney area norm
 *   (bank built in double, used as float); e = sum_k w[m][k] |X_k|^2;
 *   feature = (max(log10(max(e, 1e-10)), global_log_mel_max - 8) + 4) / 4.
 *   The per-element pieces are in vox_mel_hd.h.
 *
 * Frame grid: frame g covers signal samples [g*hop - n_fft/2, g*hop + n_fft/2), i.e. it is
 * centred on sample g*hop (torch.stft center=True). Offline the signal is padded by n_fft/2
 * samples at each end (reflect, as torch, or zeros) and the last STFT frame is dropped, so a
 * signal of n samples gives exactly n / hop frames (integer division).
 *
 * Layout: every output is TIME-MAJOR, out[frame][n_mels] (row = one 10 ms frame). The
 * transformers extractor returns [n_mels][T]; transpose to compare.
 *
 * Incremental: vox_mel_stream computes the same frames as vox_mel_compute(..., VOX_MEL_PAD_ZERO)
 * on the concatenation of everything fed, bit-identically, for any chunking. The stream starts
 * with the n_fft/2 zero samples of the centre padding already present and appends n_fft/2 zeros
 * at finish. Callers add the model's own padding (e.g. 40 960 zeros in front and the offline
 * right padding at the end) by feeding zeros. When the fed signal starts and ends with at least
 * n_fft/2 + 1 zeros (true for the Voxtral stream padding), reflect padding equals zero padding
 * and the stream is also bit-identical to VOX_MEL_PAD_REFLECT. A frame is emitted as soon as it
 * is final: when its last sample is present and the signal is long enough that it cannot be
 * the dropped last frame (frame g needs g*hop + max(n_fft/2, hop) samples fed).
 *
 * Ownership and threads: a vox_mel owns its window, filter bank and FFTW plan; it is immutable
 * after vox_mel_new, and vox_mel_compute may be called on one vox_mel from several threads at
 * once (each call uses its own scratch arrays with fftwf_execute_dft_r2c, which FFTW documents
 * as thread-safe). FFTW's planner is NOT thread-safe: vox_mel_new / vox_mel_free serialise
 * plan creation and destruction on one process-wide mutex inside mel.c (the only shared state;
 * it guards FFTW's own global planner). One vox_mel per model is enough. A vox_mel_stream
 * belongs to one thread at a time and borrows its vox_mel (which must outlive it). */
#ifndef VOX_MEL_H
#define VOX_MEL_H

#include <stddef.h>

#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Front-end settings. For Voxtral Realtime they come from params.json
 * multimodal.whisper_model_args.encoder_args.audio_encoding_args: sampling_rate,
 * num_mel_bins -> n_mels, hop_length -> hop, window_size -> n_fft, global_log_mel_max.
 * f_min 0 / f_max 8000 are fixed upstream (the feature extractor hard-codes them). */
typedef struct vox_mel_config {
    int sample_rate;           /* Hz, e.g. 16000 */
    int n_fft;                 /* FFT size = Hann window length, e.g. 400 */
    int hop;                   /* samples between frames, e.g. 160 */
    int n_mels;                /* mel filters, e.g. 128 */
    double f_min, f_max;       /* filter bank range in Hz, e.g. 0 and 8000 */
    double global_log_mel_max; /* fixed floor = this - 8, e.g. 1.5 */
} vox_mel_config;

/* Fill *cfg from a Voxtral Realtime params.json: the keys under
 * multimodal.whisper_model_args.encoder_args.audio_encoding_args (all required:
 * sampling_rate, num_mel_bins, hop_length, window_size, global_log_mel_max), f_min 0 and
 * f_max 8000 (fixed upstream). Defined in mel_params.c (needs lm/ vox_params). */
struct vox_params;
int vox_mel_config_from_params(const struct vox_params *p, vox_mel_config *cfg, vox_error *err);

typedef enum { VOX_MEL_PAD_REFLECT = 0, VOX_MEL_PAD_ZERO = 1 } vox_mel_pad;

typedef struct vox_mel vox_mel;

vox_mel *vox_mel_new(const vox_mel_config *cfg, vox_error *err);
void vox_mel_free(vox_mel *m);
const vox_mel_config *vox_mel_get_config(const vox_mel *m);

/* Frames produced offline for n samples: n / hop. */
size_t vox_mel_n_frames(const vox_mel *m, size_t n);

/* Offline log-mel of x[n] into out[vox_mel_n_frames(n)][n_mels] (time-major). REFLECT padding
 * (torch's default) needs n > n_fft/2; ZERO padding accepts any n (n < hop gives 0 frames). */
int vox_mel_compute(const vox_mel *m, const float *x, size_t n, vox_mel_pad pad, float *out,
                    vox_error *err);

/* The same offline log-mel computed by a backend's logmel op (vox_backend.h): x[n] (host) is
 * padded on the host exactly as vox_mel_compute pads it (n_fft/2 samples each side, REFLECT or
 * ZERO, same argument rules), then the padded signal, the window and the filter bank are
 * uploaded, the op runs on vox_mel_n_frames(n) frames and the result is downloaded into
 * out[frames][n_mels] (host, time-major). Device buffers are allocated and freed per call: this
 * is for offline and batched use (whole files, GPU), not the per-chunk stream path. On the CPU
 * backend the result is bit-identical to vox_mel_compute (same FFTW plan and arithmetic); on
 * CUDA (cuFFT) it agrees to float rounding of the spectrum. */
struct vox_backend;
int vox_mel_compute_backend(const vox_mel *m, struct vox_backend *be, const float *x, size_t n,
                            vox_mel_pad pad, float *out, vox_error *err);

/* The Slaney filter bank as used, [n_mels][n_fft/2 + 1] float (row m = filter m). */
const float *vox_mel_filters(const vox_mel *m);

/* FFTW's planner (plan creation/destruction, wisdom) is process-global and not thread-safe.
 * Every vox_ module that plans FFTW transforms takes this lock around planner calls. */
void vox_fftw_planner_lock(void);
void vox_fftw_planner_unlock(void);

/* ---- incremental ---------------------------------------------------------------------- */
typedef struct vox_mel_stream vox_mel_stream;

vox_mel_stream *vox_mel_stream_new(const vox_mel *m, vox_error *err);
void vox_mel_stream_free(vox_mel_stream *s);
/* Back to the initial state (nothing fed, not finished). */
void vox_mel_stream_reset(vox_mel_stream *s);

/* Exact number of frames the next vox_mel_stream_feed(s, n samples) will emit. */
size_t vox_mel_stream_frames_for(const vox_mel_stream *s, size_t n);
/* Exact number of frames vox_mel_stream_finish will emit now. */
size_t vox_mel_stream_frames_at_finish(const vox_mel_stream *s);

/* Append x[n] (any n, including 0) and write every newly final frame to out[][n_mels];
 * *n_out = frames written. max_frames is the capacity of out in frames; if it is smaller than
 * vox_mel_stream_frames_for(s, n) nothing is consumed and VOX_ERR_ARG is returned. */
int vox_mel_stream_feed(vox_mel_stream *s, const float *x, size_t n, float *out, size_t max_frames,
                        size_t *n_out, vox_error *err);
/* End of signal: append the n_fft/2 zero samples of the right centre padding, emit the
 * remaining frames (the last STFT frame is dropped, as offline). Afterwards feed and finish
 * fail until vox_mel_stream_reset. */
int vox_mel_stream_finish(vox_mel_stream *s, float *out, size_t max_frames, size_t *n_out,
                          vox_error *err);
/* Frames emitted so far (= the global index of the next frame) and samples fed so far. */
size_t vox_mel_stream_frames_done(const vox_mel_stream *s);
size_t vox_mel_stream_samples_fed(const vox_mel_stream *s);

#ifdef __cplusplus
}
#endif
#endif /* VOX_MEL_H */
