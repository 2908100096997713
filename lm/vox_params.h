/* vox_params.h - params.json of a model directory, with typed getters.
 *
 * Keys are dotted paths from the root object, e.g. "dim" or
 * "multimodal.whisper_model_args.encoder_args.n_layers". Getters with a default return it when
 * the key is absent (or JSON null); required getters fail with one line naming the file, the key
 * and the expected versus found type ("params.json: key 'dim': expected an integer, found a
 * string"). Integers must be integral JSON numbers; floats accept any number. Both upstream
 * layouts parse: Voxtral Realtime (multimodal.whisper_model_args...) and Voxtral TTS
 * (multimodal.audio_model_args, audio_tokenizer_args with comma-separated lists in strings).
 *
 * Ownership: the vox_params owns the parsed JSON; returned strings stay valid until
 * vox_params_free. Immutable after load; shareable between threads. */
#ifndef VOX_PARAMS_H
#define VOX_PARAMS_H

#include <stdint.h>

#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vox_params vox_params;

vox_params *vox_params_load(const char *path, vox_error *err);
/* Parse from memory; `name` is used in messages in place of a path. */
vox_params *vox_params_parse(const char *json, const char *name, vox_error *err);
void vox_params_free(vox_params *p);
const char *vox_params_path(const vox_params *p);

int vox_params_has(const vox_params *p, const char *key); /* present and not null */

int vox_params_int(const vox_params *p, const char *key, int64_t *out, vox_error *err);
int vox_params_float(const vox_params *p, const char *key, double *out, vox_error *err);
int vox_params_bool(const vox_params *p, const char *key, int *out, vox_error *err);
int vox_params_str(const vox_params *p, const char *key, const char **out, vox_error *err);

/* With defaults: absent/null -> def; present but mistyped -> error. */
int vox_params_int_or(const vox_params *p, const char *key, int64_t def, int64_t *out,
                      vox_error *err);
int vox_params_float_or(const vox_params *p, const char *key, double def, double *out,
                        vox_error *err);
int vox_params_bool_or(const vox_params *p, const char *key, int def, int *out, vox_error *err);

/* A list of integers given either as a JSON array or as a comma-separated string
 * ("2,2,2,2" in TTS audio_tokenizer_args). Returns the count in *n (<= cap). */
int vox_params_int_list(const vox_params *p, const char *key, int64_t *out, int cap, int *n,
                        vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_PARAMS_H */
