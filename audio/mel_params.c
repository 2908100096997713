/* mel_params.c - vox_mel_config from params.json. Kept apart from mel.c so that users of the
 * mel code alone do not pull in the params layer. See vox_mel.h. */
#include "vox_mel.h"
#include "vox_params.h"

#define VOX_AEA "multimodal.whisper_model_args.encoder_args.audio_encoding_args."

int vox_mel_config_from_params(const vox_params *p, vox_mel_config *cfg, vox_error *err) {
    if (!p || !cfg)
        return vox_set_error(err, VOX_ERR_ARG, "vox_mel_config_from_params: NULL argument");
    int64_t sr = 0, nm = 0, hop = 0, win = 0;
    double lmax = 0.0;
    int rc;
    if ((rc = vox_params_int(p, VOX_AEA "sampling_rate", &sr, err)) != VOX_OK) return rc;
    if ((rc = vox_params_int(p, VOX_AEA "num_mel_bins", &nm, err)) != VOX_OK) return rc;
    if ((rc = vox_params_int(p, VOX_AEA "hop_length", &hop, err)) != VOX_OK) return rc;
    if ((rc = vox_params_int(p, VOX_AEA "window_size", &win, err)) != VOX_OK) return rc;
    if ((rc = vox_params_float(p, VOX_AEA "global_log_mel_max", &lmax, err)) != VOX_OK) return rc;
    if (sr <= 0 || sr > 1000000 || nm <= 0 || nm > 4096 || hop <= 0 || win < 2 || win > (1 << 20))
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: audio_encoding_args out of range: sampling_rate %lld, "
                             "num_mel_bins %lld, hop_length %lld, window_size %lld",
                             vox_params_path(p), (long long)sr, (long long)nm, (long long)hop,
                             (long long)win);
    cfg->sample_rate = (int)sr;
    cfg->n_mels = (int)nm;
    cfg->hop = (int)hop;
    cfg->n_fft = (int)win;
    cfg->global_log_mel_max = lmax;
    cfg->f_min = 0.0;    /* VoxtralRealtimeFeatureExtractor: min_frequency=0.0 */
    cfg->f_max = 8000.0; /* VoxtralRealtimeFeatureExtractor: max_frequency=8000.0 */
    return VOX_OK;
}
