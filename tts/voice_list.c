/* voice_list.c - the preset voices of a model directory with their language (see vox_tts.h).
 *
 * Source of the names: params.json multimodal.audio_tokenizer_args.voice, an object mapping
 * name -> index (the released checkpoint's 20 voices), ordered by index; when that map is absent
 * or empty, tekken.json's audio.voice_num_audio_tokens in file order. The language is the
 * two-letter lowercase prefix before '_' ("pt_male" -> "pt"); the released English voices have
 * none ("casual_female"). */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_tts.h"

int vox_tts_voice_lang(const char *name, char lang[3]) {
    lang[0] = 0;
    if (name && strlen(name) > 3 && name[2] == '_' && name[0] >= 'a' && name[0] <= 'z' &&
        name[1] >= 'a' && name[1] <= 'z') {
        lang[0] = name[0];
        lang[1] = name[1];
        lang[2] = 0;
        return 1;
    }
    return 0;
}

void vox_tts_voice_list_free(vox_tts_voice_list *l) {
    if (!l) return;
    for (int i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int cmp_idx(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return x->valuedouble < y->valuedouble ? -1 : x->valuedouble > y->valuedouble;
}

static int add(vox_tts_voice_list *l, const char *name, vox_error *err) {
    vox_tts_voice_info *nv = realloc(l->v, (size_t)(l->n + 1) * sizeof *nv);
    if (!nv) return vox_set_error(err, VOX_ERR_NOMEM, "voice list: out of memory");
    l->v = nv;
    nv[l->n].name = strdup(name);
    if (!nv[l->n].name) return vox_set_error(err, VOX_ERR_NOMEM, "voice list: out of memory");
    vox_tts_voice_lang(name, nv[l->n].lang);
    l->n++;
    return VOX_OK;
}

int vox_tts_list_voices(const char *dir, const vox_tekken *tok, vox_tts_voice_list *out,
                        vox_error *err) {
    if (!dir || !out) return vox_set_error(err, VOX_ERR_ARG, "vox_tts_list_voices: NULL argument");
    out->v = NULL;
    out->n = 0;
    size_t cap = strlen(dir) + 32;
    char *path = vox_malloc(cap, err);
    if (!path) return VOX_ERR_NOMEM;
    snprintf(path, cap, "%s/params.json", dir);
    char *js = vox_read_file(path, NULL, err);
    int read_ok = js != NULL;
    cJSON *root = js ? cJSON_Parse(js) : NULL;
    free(js);
    int rc = VOX_OK;
    if (!read_ok) {
        rc = err ? err->code : VOX_ERR_IO;
    } else if (!root) {
        rc = vox_set_error(err, VOX_ERR_FORMAT, "%s: not valid JSON", path);
    }
    cJSON *mm = root ? cJSON_GetObjectItemCaseSensitive(root, "multimodal") : NULL;
    if (!rc && !cJSON_GetObjectItemCaseSensitive(mm, "audio_model_args")) {
        int asr = cJSON_GetObjectItemCaseSensitive(mm, "whisper_model_args") != NULL;
        rc = vox_set_error(err, VOX_ERR_UNSUPPORTED,
                           "%s: %s, not a Voxtral TTS model (no multimodal.audio_model_args)", dir,
                           asr ? "a Voxtral Realtime (ASR) model" : "unknown model kind");
    }
    cJSON *at = mm ? cJSON_GetObjectItemCaseSensitive(mm, "audio_tokenizer_args") : NULL;
    cJSON *vm = at ? cJSON_GetObjectItemCaseSensitive(at, "voice") : NULL;
    int nv = !rc && cJSON_IsObject(vm) ? cJSON_GetArraySize(vm) : 0;
    if (nv > 0) {
        cJSON **items = vox_calloc((size_t)nv, sizeof *items, err);
        int k = 0;
        if (!items) rc = VOX_ERR_NOMEM;
        for (cJSON *it = vm->child; !rc && it; it = it->next) {
            if (!cJSON_IsNumber(it) || !it->string)
                rc = vox_set_error(err, VOX_ERR_FORMAT,
                                   "%s: audio_tokenizer_args.voice: entry '%s': expected a "
                                   "number (the voice index)",
                                   path, it->string ? it->string : "?");
            else
                items[k++] = it;
        }
        if (!rc) qsort(items, (size_t)k, sizeof *items, cmp_idx);
        for (int i = 0; !rc && i < k; i++)
            rc = add(out, items[i]->string, err);
        free(items);
    }
    cJSON_Delete(root);
    if (!rc && out->n == 0) { /* no params voice map: tekken.json's list */
        vox_tekken *own = NULL;
        if (!tok) {
            snprintf(path, cap, "%s/tekken.json", dir);
            tok = own = vox_tekken_load(path, err);
            if (!own) rc = err ? err->code : VOX_ERR_IO;
        }
        int n = rc ? 0 : vox_tekken_audio_config(tok)->n_voices;
        for (int i = 0; !rc && i < n; i++)
            rc = add(out, vox_tekken_voice_name(tok, i), err);
        vox_tekken_free(own);
    }
    free(path);
    if (rc) vox_tts_voice_list_free(out);
    return rc;
}
