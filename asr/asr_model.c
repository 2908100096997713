/* asr_model.c - loading and validating a Voxtral Realtime model directory (vox_asr.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr_internal.h"

#define ENC_PREFIX "mm_streams_embeddings.embedding_module.whisper_encoder."
#define MM_PREFIX "mm_streams_embeddings.embedding_module."

static int get_int(const vox_params *p, const char *key, int *out, vox_error *err) {
    int64_t v;
    int rc = vox_params_int(p, key, &v, err);
    if (rc != VOX_OK) return rc;
    if (v <= 0 || v > (1 << 30))
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: key '%s': expected a positive size, found %lld",
                             vox_params_path(p), key, (long long)v);
    *out = (int)v;
    return VOX_OK;
}

static int get_window(const vox_params *p, const char *key, int *out, vox_error *err) {
    int64_t v = 0;
    *out = 0;
    if (!vox_params_has(p, key)) return VOX_OK;
    const char *s;
    if (vox_params_str(p, key, &s, NULL) == VOX_OK) { /* may be a string in some files */
        char *end;
        long long x = strtoll(s, &end, 10);
        if (*end || x < 0)
            return vox_set_error(err, VOX_ERR_FORMAT, "%s: key '%s': expected an integer, found '%s'",
                                 vox_params_path(p), key, s);
        *out = (int)x;
        return VOX_OK;
    }
    int rc = vox_params_int(p, key, &v, err);
    if (rc != VOX_OK) return rc;
    *out = (int)v;
    return VOX_OK;
}

static int read_dims(vox_asr_model *m, const char *ppath, vox_error *err) {
    const vox_params *p = m->params;
    int rc;
    if (!vox_params_has(p, "multimodal.whisper_model_args")) {
        if (vox_params_has(p, "multimodal.audio_model_args") ||
            vox_params_has(p, "multimodal.audio_tokenizer_args"))
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: this is a Voxtral TTS model (multimodal.audio_model_args); "
                                 "expected a Voxtral Realtime ASR model "
                                 "(multimodal.whisper_model_args)", ppath);
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: key 'multimodal.whisper_model_args' missing: not a Voxtral "
                             "Realtime ASR model", ppath);
    }
#define EA "multimodal.whisper_model_args.encoder_args."
    vox_lm_dims *e = &m->enc, *d = &m->dec;
    double f;
    if ((rc = get_int(p, EA "dim", &e->dim, err)) || (rc = get_int(p, EA "n_layers", &m->info.enc_layers, err)) ||
        (rc = get_int(p, EA "head_dim", &e->head_dim, err)) || (rc = get_int(p, EA "hidden_dim", &e->hidden, err)) ||
        (rc = get_int(p, EA "n_heads", &e->n_heads, err)))
        return rc;
    int64_t kvh;
    if ((rc = vox_params_int_or(p, EA "n_kv_heads", e->n_heads, &kvh, err))) return rc;
    e->n_kv_heads = (int)kvh;
    if ((rc = vox_params_float_or(p, EA "norm_eps", 1e-5, &f, err))) return rc;
    e->eps = (float)f;
    if ((rc = vox_params_float(p, EA "rope_theta", &f, err))) return rc;
    e->theta = (float)f;
    if ((rc = get_window(p, EA "sliding_window", &e->window, err))) return rc;
    if ((rc = get_int(p, EA "audio_encoding_args.num_mel_bins", &m->n_mels, err)) ||
        (rc = get_int(p, EA "audio_encoding_args.hop_length", &m->hop, err)) ||
        (rc = get_int(p, EA "audio_encoding_args.sampling_rate", &m->info.sample_rate, err)))
        return rc;
    double frame_rate;
    if ((rc = vox_params_float(p, EA "audio_encoding_args.frame_rate", &frame_rate, err))) return rc;
    if ((rc = get_int(p, "multimodal.whisper_model_args.downsample_args.downsample_factor", &m->ds, err)))
        return rc;
    int ub = 1;
    if ((rc = vox_params_bool_or(p, EA "use_biases", 1, &ub, err))) return rc;
    if (!ub)
        return vox_set_error(err, VOX_ERR_UNSUPPORTED, "%s: encoder_args.use_biases false is not supported",
                             ppath);
#undef EA
    if ((rc = get_int(p, "dim", &d->dim, err)) || (rc = get_int(p, "n_layers", &m->info.dec_layers, err)) ||
        (rc = get_int(p, "head_dim", &d->head_dim, err)) || (rc = get_int(p, "hidden_dim", &d->hidden, err)) ||
        (rc = get_int(p, "n_heads", &d->n_heads, err)) || (rc = get_int(p, "n_kv_heads", &d->n_kv_heads, err)) ||
        (rc = get_int(p, "vocab_size", &m->info.vocab, err)))
        return rc;
    if ((rc = vox_params_float_or(p, "norm_eps", 1e-5, &f, err))) return rc;
    d->eps = (float)f;
    if ((rc = vox_params_float(p, "rope_theta", &f, err))) return rc;
    d->theta = (float)f;
    if ((rc = get_window(p, "sliding_window", &d->window, err))) return rc;
    int tied = 1;
    if ((rc = vox_params_bool_or(p, "tied_embeddings", 1, &tied, err))) return rc;
    if (!tied)
        return vox_set_error(err, VOX_ERR_UNSUPPORTED, "%s: tied_embeddings false is not supported", ppath);
    int ada = 1;
    if ((rc = vox_params_bool_or(p, "ada_rms_norm_t_cond", 1, &ada, err))) return rc;
    if (!ada)
        return vox_set_error(err, VOX_ERR_UNSUPPORTED, "%s: ada_rms_norm_t_cond false is not supported", ppath);
    int64_t v;
    if ((rc = vox_params_int_or(p, "ada_rms_norm_t_cond_dim", 32, &v, err))) return rc;
    m->ada_dim = (int)v;
    if ((rc = vox_params_int_or(p, "model_max_length", 131072, &v, err))) return rc;
    m->max_pos = v;

    if (e->n_heads % e->n_kv_heads || d->n_heads % d->n_kv_heads || e->head_dim % 2 || d->head_dim % 2)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: heads/kv heads/head_dim inconsistent", ppath);
    int spt = (int)((double)m->info.sample_rate / frame_rate + 0.5);
    m->mel_per_tok = spt / m->hop;
    if (m->mel_per_tok * m->hop != spt || m->mel_per_tok != 2 * m->ds)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: %d samples per token / hop %d does not equal 2 x downsample_factor %d",
                             ppath, spt, m->hop, m->ds);
    m->info.samples_per_token = spt;
    m->info.n_mels = m->n_mels;
    m->info.enc_dim = e->dim;
    m->info.dec_dim = d->dim;
    m->info.enc_window = e->window;
    m->info.dec_window = d->window;
    return VOX_OK;
}

static int load_layer(vox_asr_model *m, const char *pre, const vox_lm_dims *d, int enc,
                      vox_lm_layer *L, vox_error *err) {
    char n[512];
    int rc;
    int64_t qd = (int64_t)d->n_heads * d->head_dim, kvd = (int64_t)d->n_kv_heads * d->head_dim;
    float *w;
    snprintf(n, sizeof n, "%sattention_norm.weight", pre);
    if ((rc = vox_lm_load_vec(&m->store, m->st, n, d->dim, &w, err))) return rc;
    L->attn_norm = w;
    snprintf(n, sizeof n, "%sffn_norm.weight", pre);
    if ((rc = vox_lm_load_vec(&m->store, m->st, n, d->dim, &w, err))) return rc;
    L->ffn_norm = w;
    struct { const char *name; vox_lm_linear *lin; int64_t out, in; int bias; } t[] = {
        {"attention.wq", &L->wq, qd, d->dim, enc},  {"attention.wk", &L->wk, kvd, d->dim, 0},
        {"attention.wv", &L->wv, kvd, d->dim, enc}, {"attention.wo", &L->wo, d->dim, qd, enc},
        {"feed_forward.w1", &L->w1, d->hidden, d->dim, 0},
        {"feed_forward.w3", &L->w3, d->hidden, d->dim, 0},
        {"feed_forward.w2", &L->w2, d->dim, d->hidden, enc},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        snprintf(n, sizeof n, "%s%s", pre, t[i].name);
        if ((rc = vox_lm_load_linear(&m->store, m->st, n, t[i].out, t[i].in, t[i].bias, t[i].lin, err)))
            return rc;
    }
    return VOX_OK;
}

static int load_weights(vox_asr_model *m, vox_error *err) {
    int rc;
    const vox_lm_dims *e = &m->enc, *d = &m->dec;
    int ne = m->info.enc_layers, nd = m->info.dec_layers;
    m->enc_layers = calloc((size_t)ne, sizeof *m->enc_layers);
    m->dec_layers = calloc((size_t)nd, sizeof *m->dec_layers);
    m->ada_down = calloc((size_t)nd, sizeof *m->ada_down);
    m->ada_up = calloc((size_t)nd, sizeof *m->ada_up);
    if (!m->enc_layers || !m->dec_layers || !m->ada_down || !m->ada_up)
        return vox_set_error(err, VOX_ERR_NOMEM, "out of memory (layer tables)");
    int64_t s0[3] = {e->dim, m->n_mels, 3}, s1[3] = {e->dim, e->dim, 3};
    if ((rc = vox_lm_load_mat(&m->store, m->st, ENC_PREFIX "conv_layers.0.conv.weight", 3, s0, &m->conv0_w, err)) ||
        (rc = vox_lm_load_vec(&m->store, m->st, ENC_PREFIX "conv_layers.0.conv.bias", e->dim, &m->conv0_b, err)) ||
        (rc = vox_lm_load_mat(&m->store, m->st, ENC_PREFIX "conv_layers.1.conv.weight", 3, s1, &m->conv1_w, err)) ||
        (rc = vox_lm_load_vec(&m->store, m->st, ENC_PREFIX "conv_layers.1.conv.bias", e->dim, &m->conv1_b, err)) ||
        (rc = vox_lm_load_vec(&m->store, m->st, ENC_PREFIX "transformer.norm.weight", e->dim, &m->enc_norm, err)))
        return rc;
    char pre[256];
    for (int l = 0; l < ne; l++) {
        snprintf(pre, sizeof pre, ENC_PREFIX "transformer.layers.%d.", l);
        if ((rc = load_layer(m, pre, e, 1, &m->enc_layers[l], err))) return rc;
    }
    int64_t sa0[2] = {d->dim, (int64_t)m->ds * e->dim}, sa2[2] = {d->dim, d->dim};
    int64_t se[2] = {m->info.vocab, d->dim};
    if ((rc = vox_lm_load_mat(&m->store, m->st, MM_PREFIX "audio_language_projection.0.weight", 2, sa0, &m->adapt0, err)) ||
        (rc = vox_lm_load_mat(&m->store, m->st, MM_PREFIX "audio_language_projection.2.weight", 2, sa2, &m->adapt2, err)) ||
        (rc = vox_lm_load_mat(&m->store, m->st, MM_PREFIX "tok_embeddings.weight", 2, se, &m->tok_emb, err)) ||
        (rc = vox_lm_load_vec(&m->store, m->st, "norm.weight", d->dim, &m->dec_norm, err)))
        return rc;
    for (int l = 0; l < nd; l++) {
        snprintf(pre, sizeof pre, "layers.%d.", l);
        if ((rc = load_layer(m, pre, d, 0, &m->dec_layers[l], err))) return rc;
        char n[300];
        int64_t sd[2] = {m->ada_dim, d->dim}, su[2] = {d->dim, m->ada_dim};
        snprintf(n, sizeof n, "layers.%d.ada_rms_norm_t_cond.0.weight", l);
        if ((rc = vox_lm_load_mat(&m->store, m->st, n, 2, sd, &m->ada_down[l], err))) return rc;
        snprintf(n, sizeof n, "layers.%d.ada_rms_norm_t_cond.2.weight", l);
        if ((rc = vox_lm_load_mat(&m->store, m->st, n, 2, su, &m->ada_up[l], err))) return rc;
    }
    /* every tensor must have been expected: 4 conv + 1 norm + 13/enc layer + 2 adapter + 1
     * embedding + 1 norm + 11/dec layer */
    int want = 4 + 1 + 13 * ne + 2 + 1 + 1 + 11 * nd;
    int have = vox_st_count(m->st);
    if (have != want) {
        for (int i = 0; i < have; i++) {
            const char *nm = vox_st_at(m->st, i)->name;
            if (!strcmp(nm, "output.weight"))
                return vox_set_error(err, VOX_ERR_FORMAT, "%s: tensor 'output.weight' present but "
                                     "params.json says tied_embeddings", vox_st_path(m->st));
        }
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: %d tensors, expected %d for %d encoder and %d decoder layers "
                             "(params.json)", vox_st_path(m->st), have, want, ne, nd);
    }
    for (int i = 0; i < have; i++) {
        const vox_st_tensor *t = vox_st_at(m->st, i);
        m->info.weight_bytes += t->nbytes;
        if (!strncmp(t->name, ENC_PREFIX, strlen(ENC_PREFIX)) ||
            !strncmp(t->name, MM_PREFIX "audio_language_projection", strlen(MM_PREFIX "audio_language_projection")))
            m->info.enc_bytes += t->nbytes;
        else
            m->info.dec_bytes += t->nbytes;
    }
    return VOX_OK;
}

static int load_tokenizer(vox_asr_model *m, const char *dir, vox_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tekken.json", dir);
    m->tok = vox_tekken_load(path, err);
    if (!m->tok) return err ? err->code : VOX_ERR_IO;
    const vox_tekken_audio *a = vox_tekken_audio_config(m->tok);
    if (!a->present)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: no \"audio\" block", path);
    m->info.n_left_pad_tokens = a->streaming_n_left_pad_tokens >= 0 ? a->streaming_n_left_pad_tokens : 32;
    m->info.default_delay_ms = a->transcription_delay_ms > 0 ? (int)(a->transcription_delay_ms + 0.5) : 480;
    if (a->sampling_rate > 0 && a->sampling_rate != m->info.sample_rate)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: audio.sampling_rate %d, params.json says %d",
                             path, a->sampling_rate, m->info.sample_rate);
    m->info.bos = vox_tekken_special_id(m->tok, "<s>");
    m->info.eos = vox_tekken_special_id(m->tok, "</s>");
    m->info.pad = vox_tekken_special_id(m->tok, "[STREAMING_PAD]");
    m->info.word = vox_tekken_special_id(m->tok, "[STREAMING_WORD]");
    if (m->info.bos < 0 || m->info.eos < 0 || m->info.pad < 0)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: special token <s>, </s> or [STREAMING_PAD] missing",
                             path);
    if (vox_tekken_vocab_size(m->tok) != m->info.vocab)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: vocab size %d, params.json says %d", path,
                             vox_tekken_vocab_size(m->tok), m->info.vocab);
    return VOX_OK;
}

vox_asr_model *vox_asr_model_load(const char *dir, vox_backend *be, vox_log_level log,
                                  vox_error *err) {
    if (!dir || !be) {
        vox_set_error(err, VOX_ERR_ARG, "vox_asr_model_load: NULL argument");
        return NULL;
    }
    vox_asr_model *m = calloc(1, sizeof *m);
    if (!m) {
        vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->be = be;
    m->log = log;
    vox_lm_store_init(&m->store, be);
    char path[4096];
    double t0 = vox_time_now();
    snprintf(path, sizeof path, "%s/params.json", dir);
    m->params = vox_params_load(path, err);
    if (!m->params || read_dims(m, path, err)) goto fail;
    snprintf(path, sizeof path, "%s/consolidated.safetensors", dir);
    m->st = vox_st_open(path, err);
    if (!m->st || load_weights(m, err)) goto fail;
    if (load_tokenizer(m, dir, err)) goto fail;
    vox_mel_config mc;
    if (vox_mel_config_from_params(m->params, &mc, err)) goto fail;
    if (mc.n_mels != m->n_mels || mc.hop != m->hop) {
        vox_set_error(err, VOX_ERR_FORMAT, "%s/params.json: mel config disagrees", dir);
        goto fail;
    }
    m->mel = vox_mel_new(&mc, err);
    if (!m->mel) goto fail;
    if (log >= VOX_LOG_VERBOSE)
        fprintf(stderr, "vox_asr: loaded %s: encoder %d x %d (window %d), decoder %d x %d (window %d), "
                "vocab %d, %.1f MB in %.2f s\n", dir, m->info.enc_layers, m->enc.dim, m->enc.window,
                m->info.dec_layers, m->dec.dim, m->dec.window, m->info.vocab,
                (double)m->info.weight_bytes / 1e6, vox_time_now() - t0);
    return m;
fail:
    vox_asr_model_free(m);
    return NULL;
}

void vox_asr_model_free(vox_asr_model *m) {
    if (!m) return;
    vox_lm_store_free(&m->store);
    free(m->enc_layers);
    free(m->dec_layers);
    free(m->ada_down);
    free(m->ada_up);
    vox_mel_free(m->mel);
    vox_tekken_free(m->tok);
    vox_st_close(m->st);
    vox_params_free(m->params);
    free(m);
}

const vox_asr_info *vox_asr_model_info(const vox_asr_model *m) { return &m->info; }
const struct vox_tekken *vox_asr_model_tokenizer(const vox_asr_model *m) { return m->tok; }

int vox_asr_delay_tokens(const vox_asr_model *m, int delay_ms, int *n_delay, vox_error *err) {
    int tok_ms = m->info.samples_per_token * 1000 / m->info.sample_rate; /* 80 */
    int ok = delay_ms > 0 && delay_ms % tok_ms == 0 &&
             (delay_ms <= 15 * tok_ms || delay_ms == 30 * tok_ms);
    if (!ok)
        return vox_set_error(err, VOX_ERR_ARG,
                             "delay %d ms not supported: expected %d..%d ms in steps of %d ms, or %d ms",
                             delay_ms, tok_ms, 15 * tok_ms, tok_ms, 30 * tok_ms);
    /* mistral-common: samples -> mel frames -> ceil(frames / per_tok) */
    int64_t samples = (int64_t)delay_ms * m->info.sample_rate / 1000;
    int64_t frames = samples / m->hop; /* divides: multiples of one token */
    *n_delay = (int)((frames + m->mel_per_tok - 1) / m->mel_per_tok);
    return VOX_OK;
}
