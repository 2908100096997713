/* test_tts_voice_ref.c - voices from reference audio (vox_tts_voice_from_{codes,audio,file}).
 *
 * A tiny TTS model whose codec carries encoder weights (vox_mkmodel_tts_write with
 * codec.with_encoder, = vox-mkmodel --kind tts --codec-encoder) encodes the espeak-ng clip
 * tests/fixtures/asr/speech.wav (16 kHz, resampled to 24 kHz by audio/). Independent
 * expectation: the codes from vox_codec_encode (parity-tested against vllm-omni in test_codec),
 * +2, with one EOA frame [1, 0 x n_ac] appended, each frame summed here in double over the 37
 * rows of mm_audio_embeddings.audio_codebook_embeddings.embeddings.weight read straight from
 * the safetensors file (BF16 bits widened here), with the offsets 0, S+2, S+2+(L+2), ...
 * computed here from params.json. Tolerance: 1e-5 x max(1, |row|) (fp32 vs double sums of 37
 * terms). Then a session speaks with the voice, and the error paths give one line each. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_backend.h"
#include "vox_codec.h"
#include "vox_decode.h"
#include "vox_mkmodel.h"
#include "vox_params.h"
#include "vox_safetensors.h"
#include "vox_tekken.h"
#include "vox_test.h"
#include "vox_tts.h"

static float bf16(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* params.json, the safetensors file and the codec of a model directory (NULLs on failure). */
static vox_codec_model *open_codec(vox_backend *be, const char *dir, vox_params **pp,
                                   vox_st_file **st, vox_error *err) {
    char path[700];
    snprintf(path, sizeof path, "%s/params.json", dir);
    *pp = vox_params_load(path, err);
    snprintf(path, sizeof path, "%s/consolidated.safetensors", dir);
    *st = *pp ? vox_st_open(path, err) : NULL;
    return *st && be ? vox_codec_load(be, *pp, *st, err) : NULL;
}

int main(void) {
    vox_test_state ts = {0};
    vox_error err = {0};
    char dir[512], path[700];
    snprintf(dir, sizeof dir, "%s/tts_voice_ref_model", VOX_BINARY_DIR);
    vox_mkmodel_tts_opts mo;
    vox_mkmodel_tts_defaults(&mo, 0);
    mo.codec.with_encoder = 1;
    int rc = vox_mkmodel_tts_write(dir, &mo, &err);
    VOX_CHECK(&ts, rc == 0, "mkmodel: %s", err.msg);
    if (rc) return vox_test_done(&ts, "test_tts_voice_ref");

    vox_backend *be = vox_cpu_backend_create(1, &err);
    vox_tts_model *m = be ? vox_tts_model_load(dir, be, &err) : NULL;
    vox_params *pp = NULL;
    vox_st_file *st = NULL;
    vox_codec_model *cm = open_codec(be, dir, &pp, &st, &err);
    VOX_CHECK(&ts, m && cm, "load: %s", err.msg);
    if (!m || !cm) return vox_test_done(&ts, "test_tts_voice_ref");
    VOX_CHECK(&ts, vox_codec_has_encoder(cm), "the model's codec has encoder weights");
    const vox_tts_config *c = vox_tts_model_config(m);
    const int NC = c->n_codebooks, D = c->dim;

    /* the clip at the codec rate */
    snprintf(path, sizeof path, "%s/tests/fixtures/asr/speech.wav", VOX_SOURCE_DIR);
    vox_decode_opts dopt = {0};
    dopt.target_rate = vox_codec_get_config(cm)->sampling_rate;
    float *pcm = NULL;
    size_t n = 0;
    rc = vox_decode_file(path, &dopt, &pcm, &n, NULL, &err);
    VOX_CHECK(&ts, rc == 0 && n > 0, "decode: %s", err.msg);

    /* independent rows */
    int64_t F = vox_codec_encode_frames(cm, (int64_t)n);
    int32_t *codes = calloc((size_t)F * NC, 4);
    int got = 0;
    rc = vox_codec_encode(cm, pcm, (int64_t)n, codes, NULL, (int)F, &got, &err);
    VOX_CHECK(&ts, rc == 0 && got == F, "encode: %s (%d of %lld frames)", err.msg, got,
              (long long)F);
    int64_t S = 0, L = 0;
    vox_params_int(pp, "multimodal.audio_model_args.semantic_codebook_size", &S, &err);
    vox_params_int(pp, "multimodal.audio_model_args.acoustic_codebook_size", &L, &err);
    const vox_st_tensor *tab =
        vox_st_find(st, "mm_audio_embeddings.audio_codebook_embeddings.embeddings.weight");
    VOX_CHECK(&ts, tab && tab->dtype == VOX_DT_BF16 && tab->shape[1] == D, "embedding table");
    double *want = calloc((size_t)(F + 1) * D, sizeof(double));
    for (int64_t f = 0; tab && f <= F; f++)
        for (int k = 0; k < NC; k++) {
            int64_t off = k == 0 ? 0 : S + 2 + (L + 2) * (k - 1);
            int64_t id = f < F ? codes[f * NC + k] + 2 : (k == 0 ? 1 : 0);
            const uint16_t *row = (const uint16_t *)tab->data + (off + id) * D;
            for (int d = 0; d < D; d++)
                want[f * D + d] += bf16(row[d]);
        }

    vox_tts_voice v = {0}, vf = {0};
    rc = vox_tts_voice_from_audio(m, cm, pcm, (int64_t)n, &v, &err);
    VOX_CHECK(&ts, rc == 0, "voice_from_audio: %s", err.msg);
    VOX_CHECK(&ts, v.rows == F + 1 && v.dim == D, "rows %d (expected %lld + 1 EOA), dim %d", v.rows,
              (long long)F, v.dim);
    double worst = 0;
    for (int64_t i = 0; !rc && v.rows == F + 1 && i < (F + 1) * D; i++) {
        double e = fabs(v.emb[i] - want[i]) / fmax(1.0, fabs(want[i]));
        if (e > worst) worst = e;
    }
    printf("voice from %zu samples (%.2f s): %d rows = %lld encoded frames + EOA; max rel err vs "
           "the independent sum %.2e\n",
           n, (double)n / dopt.target_rate, v.rows, (long long)F, worst);
    VOX_CHECK(&ts, worst <= 1e-5, "rows differ from the independent sum: %.3g", worst);

    /* from the file = from the decoded samples (exact) */
    snprintf(path, sizeof path, "%s/tests/fixtures/asr/speech.wav", VOX_SOURCE_DIR);
    rc = vox_tts_voice_from_file(m, cm, path, &vf, &err);
    VOX_CHECK(&ts,
              rc == 0 && vf.rows == v.rows &&
                  !memcmp(vf.emb, v.emb, (size_t)v.rows * D * sizeof(float)),
              "voice_from_file differs from voice_from_audio (%s)", err.msg);
    vox_tts_voice_free(&vf);

    /* codes -> voice: no frames = the EOA row alone */
    rc = vox_tts_voice_from_codes(m, codes, 0, &vf, &err);
    worst = 0;
    for (int d = 0; !rc && d < D; d++)
        worst = fmax(worst, fabs(vf.emb[d] - want[F * D + d]));
    VOX_CHECK(&ts, rc == 0 && vf.rows == 1 && worst <= 1e-5, "0 frames -> EOA row (%s)", err.msg);
    vox_tts_voice_free(&vf);

    /* the voice speaks: prompt with rows [AUDIO] tokens, a few frames */
    snprintf(path, sizeof path, "%s/tekken.json", dir);
    vox_tekken *tok = vox_tekken_load(path, &err);
    int32_t *ids = NULL;
    size_t nid = 0;
    rc = tok ? vox_tts_prompt(tok, "Hello there.", v.rows, &ids, &nid, NULL, &err) : 1;
    vox_tts_session_opts so;
    vox_tts_session_defaults(&so);
    so.max_frames = 5;
    vox_tts_session *s = rc ? NULL : vox_tts_session_new(m, ids, nid, &v, &so, &err);
    VOX_CHECK(&ts, s != NULL, "session with the reference voice: %s", err.msg);
    int frames = 0, done = 0;
    int32_t fc[256];
    while (s && !done && NC <= 256) {
        if (vox_tts_session_step(s, fc, &done, &err)) break;
        frames += !done;
    }
    printf("session with the reference voice: %zu prompt tokens, %d frames\n", nid, frames);
    VOX_CHECK(&ts, s && done, "session ran to its end (%s)", err.msg);
    vox_tts_session_free(s);
    free(ids);

    /* errors */
    codes[1] = (int32_t)L; /* acoustic code out of range */
    rc = vox_tts_voice_from_codes(m, codes, 1, &vf, &err);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG && strstr(err.msg, "outside"), "bad code: %s", err.msg);
    rc = vox_tts_voice_from_audio(m, cm, pcm, 0, &vf, &err);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG && strstr(err.msg, "no samples"), "empty audio: %s", err.msg);
    rc = vox_tts_voice_from_file(m, cm, "/nonexistent/ref.wav", &vf, &err);
    VOX_CHECK(&ts, rc != 0 && strstr(err.msg, "/nonexistent/ref.wav"), "missing file: %s", err.msg);
    printf("missing file: %s\n", err.msg);
    /* a checkpoint without encoder (the released layout) */
    char dir2[512];
    snprintf(dir2, sizeof dir2, "%s/tts_voice_ref_model_noenc", VOX_BINARY_DIR);
    mo.codec.with_encoder = 0;
    rc = vox_mkmodel_tts_write(dir2, &mo, &err);
    vox_params *pp2 = NULL;
    vox_st_file *st2 = NULL;
    vox_codec_model *cm2 = rc ? NULL : open_codec(be, dir2, &pp2, &st2, &err);
    rc = cm2 ? vox_tts_voice_from_audio(m, cm2, pcm, (int64_t)n, &vf, &err) : -1;
    VOX_CHECK(&ts, rc == VOX_ERR_UNSUPPORTED && strstr(err.msg, "no codec encoder"),
              "no encoder: %s", err.msg);
    printf("no encoder: %s\n", err.msg);
    vox_codec_free(cm2);
    vox_st_close(st2);
    vox_params_free(pp2);

    vox_tts_voice_free(&v);
    vox_tekken_free(tok);
    free(want);
    free(codes);
    free(pcm);
    vox_codec_free(cm);
    vox_st_close(st);
    vox_params_free(pp);
    vox_tts_model_free(m);
    vox_backend_destroy(be);
    return vox_test_done(&ts, "test_tts_voice_ref");
}
