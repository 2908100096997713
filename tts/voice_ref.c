/* voice_ref.c - a voice from reference audio through the codec encoder (see vox_tts.h).
 *
 * Upstream path (vllm-omni 0.30.0 + mistral-common 1.13.1, docs/tts.md "Voices from reference
 * audio"): the clip is decoded, averaged to mono and resampled to the codec rate (soxr HQ);
 * the codec encoder quantizes it to ceil(samples / samples_per_frame) frames; +2 is added to
 * every code and one EOA frame [END, EMPTY x n_ac] is appended; each frame becomes the sum of
 * its 37 codebook-embedding rows. The prompt then holds one [AUDIO] per row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_decode.h"
#include "vox_tts.h"

int vox_tts_voice_from_audio(const vox_tts_model *m, const vox_codec_model *cm, const float *pcm,
                             int64_t n, vox_tts_voice *out, vox_error *err) {
    if (!m || !cm || !out || (n > 0 && !pcm))
        return vox_set_error(err, VOX_ERR_ARG, "vox_tts_voice_from_audio: NULL argument");
    memset(out, 0, sizeof *out);
    if (n <= 0) return vox_set_error(err, VOX_ERR_ARG, "reference audio: no samples");
    const vox_tts_config *c = vox_tts_model_config(m);
    const vox_codec_config *cc = vox_codec_get_config(cm);
    if (cc->acoustic_dim != c->n_acoustic || cc->semantic_size != c->semantic_size ||
        cc->acoustic_size != c->acoustic_levels)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "codec codebooks (semantic %d, %d x %d levels) do not match the TTS "
                             "model's (semantic %d, %d x %d levels)",
                             cc->semantic_size, cc->acoustic_dim, cc->acoustic_size,
                             c->semantic_size, c->n_acoustic, c->acoustic_levels);
    if (!vox_codec_has_encoder(cm))
        return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                             "this checkpoint has no codec encoder weights (input_proj.*, "
                             "encoder_blocks.*), so it cannot make a voice from audio");
    int64_t nf = vox_codec_encode_frames(cm, n);
    if (nf < 1 || nf > (1 << 22))
        return vox_set_error(err, VOX_ERR_ARG, "reference audio of %lld samples: %lld frames",
                             (long long)n, (long long)nf);
    int32_t *codes = vox_malloc((size_t)nf * c->n_codebooks * sizeof(int32_t), err);
    if (!codes) return VOX_ERR_NOMEM;
    int got = 0;
    int rc = vox_codec_encode(cm, pcm, n, codes, NULL, (int)nf, &got, err);
    if (!rc) rc = vox_tts_voice_from_codes(m, codes, got, out, err);
    free(codes);
    return rc;
}

int vox_tts_voice_from_file(const vox_tts_model *m, const vox_codec_model *cm, const char *path,
                            vox_tts_voice *out, vox_error *err) {
    if (!path || !cm) return vox_set_error(err, VOX_ERR_ARG, "vox_tts_voice_from_file: NULL");
    if (out) memset(out, 0, sizeof *out);
    vox_decode_opts o = {0};
    o.target_rate = vox_codec_get_config(cm)->sampling_rate;
    float *pcm = NULL;
    size_t n = 0;
    int rc = vox_decode_file(path, &o, &pcm, &n, NULL, err);
    if (!rc) {
        rc = vox_tts_voice_from_audio(m, cm, pcm, (int64_t)n, out, err);
        if (rc && err) { /* name the file in the message */
            char msg[VOX_ERROR_MSG_LEN];
            snprintf(msg, sizeof msg, "%s", err->msg);
            vox_set_error(err, rc, "%s: %s", path, msg);
        }
    }
    free(pcm);
    return rc;
}
