/* vox_resample.h - streaming float resampling with libswresample (soxr engine at 20-bit
 * precision = soxr "HQ" when FFmpeg has libsoxr, else swr's own filter), the converter vox_pa
 * uses for devices and vox-server for streamed audio. vox_decode sets up its own SwrContext
 * the same way (soxr first, then swr) but from the codec's sample format and channel layout.
 *
 * Ownership: a vox_resampler is owned by the caller and used by one thread at a time. */
#ifndef VOX_RESAMPLE_H
#define VOX_RESAMPLE_H

#include <stddef.h>

#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct SwrContext;

/* Converter between interleaved float streams, in_ch -> out_ch channels (one side mono: the
 * mono side is the average of / copied to the channels), in_rate -> out_rate. Tries the soxr
 * engine first, then swr's resampler. NULL + err when libswresample refuses. */
struct SwrContext *vox_swr_float(int in_ch, int in_rate, int out_ch, int out_rate, vox_error *err);

typedef struct vox_resampler vox_resampler;

/* Mono float in_rate -> out_rate. */
vox_resampler *vox_resampler_new(int in_rate, int out_rate, vox_error *err);
void vox_resampler_free(vox_resampler *r);
/* Upper bound of the samples the next vox_resampler_run(n) may write. */
size_t vox_resampler_max_out(vox_resampler *r, size_t n);
/* Convert n input samples (in == NULL, n == 0: flush the filter tail at the end of the
 * stream) into out (room for cap samples); *n_out = samples written. */
int vox_resampler_run(vox_resampler *r, const float *in, size_t n, float *out, size_t cap,
                      size_t *n_out, vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_RESAMPLE_H */
