/* mel_fixture.h - reading the log-mel fixture (tests/fixtures/mel/: meta.json, *.wav,
 * *.mel.f32) for test_mel.c and test_logmel.c. Header-only, test programs only.
 *
 * mel_fix_load parses meta.json and fills the mel configuration from its feature_extractor
 * block (the values of the real params.json audio_encoding_args); the caller owns the returned
 * cJSON tree (cJSON_Delete). Every failure is a VOX_CHECK failure in ts. */
#ifndef VOX_MEL_FIXTURE_H
#define VOX_MEL_FIXTURE_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_common.h"
#include "vox_mel.h"
#include "vox_test.h"

#define MEL_FIX VOX_SOURCE_DIR "/tests/fixtures/mel/"

static inline double mel_fix_jnum(const cJSON *o, const char *k, int *ok) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) {
        fprintf(stderr, "meta.json: missing number '%s'\n", k);
        *ok = 0;
        return 0.0;
    }
    return v->valuedouble;
}

/* A raw little-endian float32 file of exactly `want` values (malloc'ed), or NULL. */
static inline float *mel_fix_read_f32(const char *path, size_t want, vox_test_state *ts) {
    vox_error err = {0};
    size_t len = 0;
    char *b = vox_read_file(path, &len, &err);
    VOX_CHECK(ts, b != NULL, "%s", err.msg);
    if (!b) return NULL;
    VOX_CHECK(ts, len == want * sizeof(float), "%s: %zu bytes, expected %zu", path, len,
              want * sizeof(float));
    if (len != want * sizeof(float)) {
        free(b);
        return NULL;
    }
    float *f = malloc(len);
    if (f) memcpy(f, b, len); /* little-endian host assumed (x86-64 / aarch64) */
    free(b);
    return f;
}

/* meta.json -> *cfg; NULL (after a failed check) when the file or a value is missing. */
static inline cJSON *mel_fix_load(vox_mel_config *cfg, vox_test_state *ts) {
    vox_error err = {0};
    size_t mlen = 0;
    char *mtxt = vox_read_file(MEL_FIX "meta.json", &mlen, &err);
    VOX_CHECK(ts, mtxt != NULL, "%s", err.msg);
    if (!mtxt) return NULL;
    cJSON *meta = cJSON_Parse(mtxt);
    free(mtxt);
    const cJSON *fe = cJSON_GetObjectItemCaseSensitive(meta, "feature_extractor");
    int ok = meta && fe;
    memset(cfg, 0, sizeof *cfg);
    if (ok) {
        cfg->sample_rate = (int)mel_fix_jnum(fe, "sampling_rate", &ok);
        cfg->n_fft = (int)mel_fix_jnum(fe, "n_fft", &ok);
        cfg->hop = (int)mel_fix_jnum(fe, "hop_length", &ok);
        cfg->n_mels = (int)mel_fix_jnum(fe, "feature_size", &ok);
        cfg->global_log_mel_max = mel_fix_jnum(fe, "global_log_mel_max", &ok);
        cfg->f_min = mel_fix_jnum(meta, "f_min", &ok);
        cfg->f_max = mel_fix_jnum(meta, "f_max", &ok);
        VOX_CHECK(ts, (int)mel_fix_jnum(fe, "win_length", &ok) == cfg->n_fft,
                  "win_length != n_fft");
    }
    VOX_CHECK(ts, ok, "meta.json incomplete");
    if (!ok) {
        cJSON_Delete(meta);
        return NULL;
    }
    return meta;
}

#endif /* VOX_MEL_FIXTURE_H */
