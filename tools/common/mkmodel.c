/* mkmodel.c - random Voxtral Realtime model directories (see vox_mkmodel.h). */
#define _POSIX_C_SOURCE 200809L
#include "vox_mkmodel.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vox_backend.h"
#include "vox_hd.h"
#include "vox_st_write.h"
#include "vox_tekken_gen.h"

void vox_mkmodel_rt_defaults(vox_mkmodel_rt_opts *o, int full) {
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->downsample = 4;
    o->n_special = 1000;
    o->delay_ms = 480;
    o->sliding_window = 8192;
    o->enc_window = 750;
    o->ada_dim = 32;
    o->special_scale = 0.25;
    if (full) {
        /* spec/voxtral-realtime.md section 5 */
        o->dim = 3072;
        o->n_layers = 26;
        o->n_heads = 32;
        o->n_kv_heads = 8;
        o->head_dim = 128;
        o->hidden_dim = 9216;
        o->vocab_size = 131072;
        o->enc_dim = 1280;
        o->enc_layers = 32;
        o->enc_heads = 32;
        o->enc_head_dim = 64;
        o->enc_hidden = 5120;
        o->emb_std = 0.02;
    } else {
        /* q widths differ from the model widths, as in the real model (4096 vs 3072). */
        o->dim = 64;
        o->n_layers = 2;
        o->n_heads = 4;
        o->n_kv_heads = 2;
        o->head_dim = 32;
        o->hidden_dim = 192;
        o->vocab_size = 1384;
        o->enc_dim = 64;
        o->enc_layers = 2;
        o->enc_heads = 4;
        o->enc_head_dim = 32;
        o->enc_hidden = 256;
        o->emb_std = 0.05;
    }
}

int vox_mkmodel_rt_check(const vox_mkmodel_rt_opts *o, vox_error *err) {
    struct { const char *name; int v; } pos[] = {
        {"dim", o->dim}, {"layers", o->n_layers}, {"heads", o->n_heads},
        {"kv-heads", o->n_kv_heads}, {"head-dim", o->head_dim}, {"hidden", o->hidden_dim},
        {"vocab", o->vocab_size}, {"dec-window", o->sliding_window}, {"ada-dim", o->ada_dim},
        {"enc-dim", o->enc_dim}, {"enc-layers", o->enc_layers}, {"enc-heads", o->enc_heads},
        {"enc-head-dim", o->enc_head_dim}, {"enc-hidden", o->enc_hidden},
        {"enc-window", o->enc_window}, {"downsample", o->downsample},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0)
            return vox_set_error(err, VOX_ERR_ARG, "--%s: expected a positive integer, found %d",
                                 pos[i].name, pos[i].v);
    if (o->n_heads % o->n_kv_heads)
        return vox_set_error(err, VOX_ERR_ARG,
                             "--heads %d: expected a multiple of --kv-heads %d", o->n_heads,
                             o->n_kv_heads);
    if (o->head_dim % 2)
        return vox_set_error(err, VOX_ERR_ARG, "--head-dim %d: expected an even number (RoPE pairs)",
                             o->head_dim);
    if (o->enc_head_dim % 2)
        return vox_set_error(err, VOX_ERR_ARG,
                             "--enc-head-dim %d: expected an even number (RoPE pairs)",
                             o->enc_head_dim);
    if (o->dim % 2)
        return vox_set_error(err, VOX_ERR_ARG,
                             "--dim %d: expected an even number (time embedding cos/sin halves)",
                             o->dim);
    if (o->vocab_size <= o->n_special)
        return vox_set_error(err, VOX_ERR_ARG,
                             "--vocab %d: expected more than the %d special tokens", o->vocab_size,
                             o->n_special);
    if (o->delay_ms < 80 || o->delay_ms % 80)
        return vox_set_error(err, VOX_ERR_ARG,
                             "--delay-ms %d: expected a positive multiple of 80", o->delay_ms);
    if (!(o->emb_std > 0.0 && o->emb_std <= 100.0))
        return vox_set_error(err, VOX_ERR_ARG, "--emb-std %g: expected in (0, 100]", o->emb_std);
    if (!(o->special_scale >= 0.0 && o->special_scale <= 100.0))
        return vox_set_error(err, VOX_ERR_ARG, "--special-scale %g: expected in [0, 100]",
                             o->special_scale);
    /* safetensors element counts stay far below 2^53; refuse absurd sizes */
    if ((double)o->vocab_size * o->dim > 4e12 || (double)o->hidden_dim * o->dim > 4e12)
        return vox_set_error(err, VOX_ERR_ARG, "model dimensions are too large");
    return VOX_OK;
}

/* ---- tensor list ---------------------------------------------------------------------- */

enum { INIT_LINEAR, INIT_NORM, INIT_BIAS, INIT_EMB };

typedef struct {
    char name[128];
    int ndim;
    int64_t shape[3];
    int init;
    float amp;     /* uniform half-width: values in [-amp, amp) (+1 for norms) */
    uint64_t key;  /* per-tensor stream key */
    int64_t n_special;   /* INIT_EMB: rows below this are special tokens ... */
    float special_scale; /* ... scaled by this, except [STREAMING_PAD] 32, [STREAMING_WORD] 33 */
    int center_rows;     /* 2-D: subtract each row's mean (a linear after GELU) */
} mk_tensor;

typedef struct {
    mk_tensor *t;
    int n, cap;
    uint64_t seed;
    double emb_std, special_scale;
    int n_special;
} mk_list;

static uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void add(mk_list *l, int init, int ndim, int64_t d0, int64_t d1, int64_t d2,
                const char *fmt, ...) __attribute__((format(printf, 7, 8)));

static void add(mk_list *l, int init, int ndim, int64_t d0, int64_t d1, int64_t d2,
                const char *fmt, ...) {
    if (l->n >= l->cap) return; /* cap is computed exactly; never happens */
    mk_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
    t->init = init;
    double fan_in = ndim == 3 ? (double)d1 * (double)d2 : ndim == 2 ? (double)d1 : 1.0;
    double sqrt3 = 1.7320508075688772;
    switch (init) {
    case INIT_LINEAR: t->amp = (float)(sqrt3 / sqrt(fan_in)); break;
    case INIT_NORM: t->amp = 0.2f; break;
    case INIT_BIAS: t->amp = (float)(0.1 * sqrt3); break;
    case INIT_EMB:
        t->amp = (float)(l->emb_std * sqrt3);
        t->n_special = l->n_special;
        t->special_scale = (float)l->special_scale;
        break;
    }
    t->key = splitmix64(l->seed ^ 0x766f782d6d6b6dull) ^ fnv1a(t->name);
}

#define P "mm_streams_embeddings.embedding_module."
#define W P "whisper_encoder."

static int list_tensors(const vox_mkmodel_rt_opts *o, mk_list *l, vox_error *err) {
    int n = 13 * o->enc_layers + 11 * o->n_layers + 9;
    l->t = vox_calloc((size_t)n, sizeof *l->t, err);
    if (!l->t) return VOX_ERR_NOMEM;
    l->cap = n;
    l->n = 0;
    l->seed = o->seed;
    l->emb_std = o->emb_std;
    l->special_scale = o->special_scale;
    l->n_special = o->n_special;
    const int64_t E = o->enc_dim, EQ = (int64_t)o->enc_heads * o->enc_head_dim, EH = o->enc_hidden;
    const int64_t D = o->dim, Q = (int64_t)o->n_heads * o->head_dim;
    const int64_t KV = (int64_t)o->n_kv_heads * o->head_dim, H = o->hidden_dim;
    const int64_t mel = 128; /* audio_encoding_args.num_mel_bins */

    add(l, INIT_EMB, 2, o->vocab_size, D, 0, P "tok_embeddings.weight");
    add(l, INIT_LINEAR, 3, E, mel, 3, W "conv_layers.0.conv.weight");
    add(l, INIT_BIAS, 1, E, 0, 0, W "conv_layers.0.conv.bias");
    add(l, INIT_LINEAR, 3, E, E, 3, W "conv_layers.1.conv.weight");
    add(l, INIT_BIAS, 1, E, 0, 0, W "conv_layers.1.conv.bias");
    for (int i = 0; i < o->enc_layers; i++) {
        const char *L = W "transformer.layers.";
        add(l, INIT_LINEAR, 2, EQ, E, 0, "%s%d.attention.wq.weight", L, i);
        add(l, INIT_BIAS, 1, EQ, 0, 0, "%s%d.attention.wq.bias", L, i);
        add(l, INIT_LINEAR, 2, EQ, E, 0, "%s%d.attention.wk.weight", L, i);
        add(l, INIT_LINEAR, 2, EQ, E, 0, "%s%d.attention.wv.weight", L, i);
        add(l, INIT_BIAS, 1, EQ, 0, 0, "%s%d.attention.wv.bias", L, i);
        add(l, INIT_LINEAR, 2, E, EQ, 0, "%s%d.attention.wo.weight", L, i);
        add(l, INIT_BIAS, 1, E, 0, 0, "%s%d.attention.wo.bias", L, i);
        add(l, INIT_NORM, 1, E, 0, 0, "%s%d.attention_norm.weight", L, i);
        add(l, INIT_NORM, 1, E, 0, 0, "%s%d.ffn_norm.weight", L, i);
        add(l, INIT_LINEAR, 2, EH, E, 0, "%s%d.feed_forward.w1.weight", L, i);
        add(l, INIT_LINEAR, 2, E, EH, 0, "%s%d.feed_forward.w2.weight", L, i);
        add(l, INIT_BIAS, 1, E, 0, 0, "%s%d.feed_forward.w2.bias", L, i);
        add(l, INIT_LINEAR, 2, EH, E, 0, "%s%d.feed_forward.w3.weight", L, i);
    }
    add(l, INIT_NORM, 1, E, 0, 0, W "transformer.norm.weight");
    add(l, INIT_LINEAR, 2, D, E * o->downsample, 0, P "audio_language_projection.0.weight");
    add(l, INIT_LINEAR, 2, D, D, 0, P "audio_language_projection.2.weight");
    /* GELU outputs have a positive mean; zero-mean rows keep that constant out of the adapter
     * output, so the decoder input varies with the audio instead of one fixed direction. */
    l->t[l->n - 1].center_rows = 1;
    for (int i = 0; i < o->n_layers; i++) {
        add(l, INIT_NORM, 1, D, 0, 0, "layers.%d.attention_norm.weight", i);
        add(l, INIT_NORM, 1, D, 0, 0, "layers.%d.ffn_norm.weight", i);
        add(l, INIT_LINEAR, 2, Q, D, 0, "layers.%d.attention.wq.weight", i);
        add(l, INIT_LINEAR, 2, KV, D, 0, "layers.%d.attention.wk.weight", i);
        add(l, INIT_LINEAR, 2, KV, D, 0, "layers.%d.attention.wv.weight", i);
        add(l, INIT_LINEAR, 2, D, Q, 0, "layers.%d.attention.wo.weight", i);
        add(l, INIT_LINEAR, 2, H, D, 0, "layers.%d.feed_forward.w1.weight", i);
        add(l, INIT_LINEAR, 2, D, H, 0, "layers.%d.feed_forward.w2.weight", i);
        add(l, INIT_LINEAR, 2, H, D, 0, "layers.%d.feed_forward.w3.weight", i);
        add(l, INIT_LINEAR, 2, o->ada_dim, D, 0, "layers.%d.ada_rms_norm_t_cond.0.weight", i);
        add(l, INIT_LINEAR, 2, D, o->ada_dim, 0, "layers.%d.ada_rms_norm_t_cond.2.weight", i);
    }
    add(l, INIT_NORM, 1, D, 0, 0, "norm.weight");
    if (l->n != n)
        return vox_set_error(err, VOX_ERR_ARG, "mkmodel: internal tensor count %d != %d", l->n, n);
    /* The ada up-projection starts smaller so that 1 + A(t_cond) stays near 1 (x0.5). The
     * residual branches (wo, w2) of both towers are scaled by 0.25 so the hidden states keep
     * the per-position input instead of the attention average over the identical left-pad
     * positions: measured on the reference (53 tokens of speech), 2-4 distinct greedy tokens
     * at gain 1-0.5, 8 at 0.25. */
    for (int i = 0; i < l->n; i++) {
        const char *nm = l->t[i].name;
        if (strstr(nm, "ada_rms_norm_t_cond.2.")) l->t[i].amp *= 0.5f;
        if (strstr(nm, ".attention.wo.weight") || strstr(nm, ".feed_forward.w2.weight"))
            l->t[i].amp *= 0.25f;
    }
    return VOX_OK;
}

void vox_mkmodel_rt_size(const vox_mkmodel_rt_opts *o, int *n_tensors, uint64_t *n_bytes) {
    const uint64_t E = (uint64_t)o->enc_dim, EQ = (uint64_t)o->enc_heads * o->enc_head_dim;
    const uint64_t EH = (uint64_t)o->enc_hidden, D = (uint64_t)o->dim;
    const uint64_t Q = (uint64_t)o->n_heads * o->head_dim, KV = (uint64_t)o->n_kv_heads * o->head_dim;
    const uint64_t H = (uint64_t)o->hidden_dim, A = (uint64_t)o->ada_dim;
    uint64_t enc_layer = 3 * EQ * E + 2 * EQ + E * EQ + E + 2 * E + 3 * EH * E + E;
    uint64_t enc = E * 128 * 3 + E + E * E * 3 + E + (uint64_t)o->enc_layers * enc_layer + E;
    uint64_t adapter = D * E * (uint64_t)o->downsample + D * D;
    uint64_t dec_layer = 2 * D + Q * D + 2 * KV * D + D * Q + 3 * H * D + 2 * A * D;
    uint64_t dec = (uint64_t)o->vocab_size * D + (uint64_t)o->n_layers * dec_layer + D;
    if (n_tensors) *n_tensors = 13 * o->enc_layers + 11 * o->n_layers + 9;
    if (n_bytes) *n_bytes = 2 * (enc + adapter + dec);
}

/* Uniform value of element e of tensor t (before centring). */
static inline float elem_value(const mk_tensor *t, float scale, int64_t e) {
    uint64_t r = splitmix64(t->key + (uint64_t)e * 0xd1b54a32d192ed03ull);
    float u = (float)((int64_t)(r >> 40) - 8388608); /* 24 bits, centred */
    float s = scale;
    if (t->init == INIT_EMB) {
        int64_t row = e / t->shape[1];
        if (row < t->n_special && row != 32 && row != 33) s *= t->special_scale;
    }
    return u * s;
}

static int gen_bf16(void *ctx, void *buf, int64_t first, int64_t n, vox_error *err) {
    (void)err;
    const mk_tensor *t = ctx;
    uint16_t *out = buf;
    const float scale = t->amp * (1.0f / 8388608.0f); /* 2^-23: u in [-1, 1) */
    const float base = t->init == INIT_NORM ? 1.0f : 0.0f;
    const int64_t cols = t->ndim >= 2 ? t->shape[1] : 1;
    int64_t cur_row = -1;
    float row_mean = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        int64_t e = first + i;
        float v = elem_value(t, scale, e);
        if (t->center_rows) {
            int64_t row = e / cols;
            if (row != cur_row) {
                double sum = 0.0;
                for (int64_t c = 0; c < cols; c++) sum += elem_value(t, scale, row * cols + c);
                row_mean = (float)(sum / (double)cols);
                cur_row = row;
            }
            v -= row_mean;
        }
        out[i] = vox_f32_to_bf16(base + v);
    }
    return VOX_OK;
}

/* ---- files ------------------------------------------------------------------------------ */

/* params.json with every key of the released file (spec/voxtral-realtime.md section 5), in
 * its order; dims from the options. */
static int write_params(const char *path, const vox_mkmodel_rt_opts *o, vox_error *err) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return vox_set_error(err, VOX_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    fprintf(fp,
            "{\n"
            "    \"dim\": %d,\n"
            "    \"n_layers\": %d,\n"
            "    \"head_dim\": %d,\n"
            "    \"hidden_dim\": %d,\n"
            "    \"n_heads\": %d,\n"
            "    \"n_kv_heads\": %d,\n"
            "    \"use_biases\": false,\n"
            "    \"causal\": true,\n"
            "    \"rope_theta\": 1000000.0,\n"
            "    \"norm_eps\": 1e-05,\n"
            "    \"vocab_size\": %d,\n"
            "    \"model_parallel\": 1,\n"
            "    \"tied_embeddings\": true,\n"
            "    \"sliding_window\": %d,\n"
            "    \"model_max_length\": 131072,\n"
            "    \"multimodal\": {\n"
            "        \"whisper_model_args\": {\n"
            "            \"encoder_args\": {\n"
            "                \"audio_encoding_args\": {\n"
            "                    \"sampling_rate\": 16000,\n"
            "                    \"frame_rate\": 12.5,\n"
            "                    \"num_mel_bins\": 128,\n"
            "                    \"hop_length\": 160,\n"
            "                    \"window_size\": 400,\n"
            "                    \"chunk_length_s\": null,\n"
            "                    \"global_log_mel_max\": 1.5,\n"
            "                    \"transcription_format\": \"streaming\"\n"
            "                },\n"
            "                \"dim\": %d,\n"
            "                \"n_layers\": %d,\n"
            "                \"head_dim\": %d,\n"
            "                \"hidden_dim\": %d,\n"
            "                \"n_heads\": %d,\n"
            "                \"vocab_size\": %d,\n"
            "                \"n_kv_heads\": %d,\n"
            "                \"use_biases\": true,\n"
            "                \"use_cache\": false,\n"
            "                \"rope_theta\": 1000000.0,\n"
            "                \"causal\": true,\n"
            "                \"norm_eps\": 1e-05,\n"
            "                \"pos_embed\": \"rope\",\n"
            "                \"max_source_positions\": null,\n"
            "                \"ffn_type\": \"swiglu\",\n"
            "                \"norm_type\": \"rms_norm\",\n"
            "                \"sliding_window\": %d\n"
            "            },\n"
            "            \"downsample_args\": {\n"
            "                \"downsample_factor\": %d\n"
            "            }\n"
            "        }\n"
            "    },\n"
            "    \"ada_rms_norm_t_cond\": true,\n"
            "    \"ada_rms_norm_t_cond_dim\": %d\n"
            "}\n",
            o->dim, o->n_layers, o->head_dim, o->hidden_dim, o->n_heads, o->n_kv_heads,
            o->vocab_size, o->sliding_window, o->enc_dim, o->enc_layers, o->enc_head_dim,
            o->enc_hidden, o->enc_heads, o->vocab_size, o->enc_heads, o->enc_window,
            o->downsample, o->ada_dim);
    int bad = ferror(fp);
    if (fclose(fp) != 0) bad = 1;
    if (bad) return vox_set_error(err, VOX_ERR_IO, "%s: write failed", path);
    return VOX_OK;
}

int vox_mkmodel_rt_write(const char *dir, const vox_mkmodel_rt_opts *o, vox_error *err) {
    if (!dir || !o) return vox_set_error(err, VOX_ERR_ARG, "vox_mkmodel_rt_write: NULL argument");
    int rc = vox_mkmodel_rt_check(o, err);
    if (rc) return rc;
    rc = vox_mkdir_p(dir, err);
    if (rc) return rc;
    size_t dl = strlen(dir);
    char *path = vox_malloc(dl + 64, err);
    if (!path) return VOX_ERR_NOMEM;

    snprintf(path, dl + 64, "%s/params.json", dir);
    rc = write_params(path, o, err);
    if (rc) goto done;

    vox_tekken_gen_opts to;
    vox_tekken_gen_defaults(&to);
    to.n_special = o->n_special;
    to.default_vocab_size = o->vocab_size;
    /* like the real file, store a few more vocab entries than are used */
    int regular = o->vocab_size - o->n_special;
    to.n_vocab_stored = regular + (regular / 8 > 64 ? regular / 8 : 64);
    if (to.n_vocab_stored < 256) to.n_vocab_stored = 256;
    to.seed = o->seed;
    to.delay_ms = o->delay_ms;
    snprintf(path, dl + 64, "%s/tekken.json", dir);
    rc = vox_tekken_gen_write(path, &to, err);
    if (rc) goto done;

    mk_list l = {0};
    rc = list_tensors(o, &l, err);
    vox_stw *w = rc ? NULL : vox_stw_new(err);
    if (!w) {
        free(l.t);
        if (!rc) rc = VOX_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < l.n && !rc; i++)
        rc = vox_stw_add_gen(w, l.t[i].name, VOX_DT_BF16, l.t[i].ndim, l.t[i].shape, gen_bf16,
                             &l.t[i], err);
    if (!rc) {
        snprintf(path, dl + 64, "%s/consolidated.safetensors", dir);
        rc = vox_stw_write(w, path, err);
    }
    vox_stw_free(w);
    free(l.t);
done:
    free(path);
    return rc;
}

/* ==== Voxtral TTS ======================================================================== */

#include "vox_pt_write.h"

static const char *const k_tts_voices[VOX_MKMODEL_TTS_MAX_VOICES] = {
    "casual_female", "casual_male", "cheerful_female", "neutral_female", "neutral_male",
    "pt_male",       "pt_female",   "nl_male",         "nl_female",      "it_male",
    "it_female",     "fr_male",     "fr_female",       "es_male",        "es_female",
    "de_male",       "de_female",   "ar_male",         "hi_male",        "hi_female"};
/* spec/voxtral-tts.md section 4.4 (rows of the released presets, same order) */
static const int k_tts_voice_rows[VOX_MKMODEL_TTS_MAX_VOICES] = {
    214, 147, 132, 218, 169, 144, 175, 138, 146, 168, 172, 97, 97, 208, 138, 163, 147, 67, 94, 86};

const char *vox_mkmodel_tts_voice_name(int i) {
    return i >= 0 && i < VOX_MKMODEL_TTS_MAX_VOICES ? k_tts_voices[i] : NULL;
}

void vox_mkmodel_tts_defaults(vox_mkmodel_tts_opts *o, int full) {
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->n_special = 1000;
    o->acoustic_levels = 21;
    o->n_acoustic = 36;
    vox_mkcodec_defaults(&o->codec, full);
    o->codec.dtype = VOX_DT_BF16;
    if (full) {
        o->dim = 3072;
        o->n_layers = 26;
        o->n_heads = 32;
        o->n_kv_heads = 8;
        o->head_dim = 128;
        o->hidden_dim = 9216;
        o->vocab_size = 131072;
        o->ac_layers = 3;
        o->ac_heads = 32;
        o->ac_kv_heads = 8;
        o->ac_head_dim = 128;
        o->ac_hidden = 9216;
        o->semantic_size = 8192;
        o->n_voices = VOX_MKMODEL_TTS_MAX_VOICES;
        for (int i = 0; i < o->n_voices; i++) o->voice_rows[i] = k_tts_voice_rows[i];
        o->emb_std = 0.02;
    } else {
        /* q width (heads x head_dim) differs from dim and kv heads are grouped, as in the
         * real model */
        o->dim = 64;
        o->n_layers = 2;
        o->n_heads = 4;
        o->n_kv_heads = 2;
        o->head_dim = 32;
        o->hidden_dim = 160;
        o->vocab_size = 1384;
        o->ac_layers = 2;
        o->ac_heads = 4;
        o->ac_kv_heads = 2;
        o->ac_head_dim = 24;
        o->ac_hidden = 128;
        o->semantic_size = 60;
        o->n_voices = 2;
        o->voice_rows[0] = 6;
        o->voice_rows[1] = 9;
        o->emb_std = 0.2;
    }
}

/* The codec options with the fields shared with the LM side taken from the TTS options. */
static void tts_codec_opts(const vox_mkmodel_tts_opts *o, vox_mkcodec_opts *co) {
    *co = o->codec;
    co->semantic_size = o->semantic_size;
    co->acoustic_size = o->acoustic_levels;
    co->acoustic_dim = o->n_acoustic;
    co->seed = o->seed ^ 0x636f646563ull;
    co->dtype = VOX_DT_BF16;
}

int vox_mkmodel_tts_check(const vox_mkmodel_tts_opts *o, vox_error *err) {
    struct { const char *name; int v; } pos[] = {
        {"dim", o->dim}, {"layers", o->n_layers}, {"heads", o->n_heads},
        {"kv-heads", o->n_kv_heads}, {"head-dim", o->head_dim}, {"hidden", o->hidden_dim},
        {"vocab", o->vocab_size}, {"ac-layers", o->ac_layers}, {"ac-heads", o->ac_heads},
        {"ac-kv-heads", o->ac_kv_heads}, {"ac-head-dim", o->ac_head_dim},
        {"ac-hidden", o->ac_hidden}, {"semantic-size", o->semantic_size},
        {"acoustic-levels", o->acoustic_levels}, {"n-acoustic", o->n_acoustic},
        {"voices", o->n_voices},
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0)
            return vox_set_error(err, VOX_ERR_ARG, "--%s: expected a positive integer, found %d",
                                 pos[i].name, pos[i].v);
    if (o->n_heads % o->n_kv_heads || o->ac_heads % o->ac_kv_heads)
        return vox_set_error(err, VOX_ERR_ARG, "heads: expected a multiple of the kv heads");
    if (o->head_dim % 2)
        return vox_set_error(err, VOX_ERR_ARG, "--head-dim %d: expected an even number (RoPE pairs)",
                             o->head_dim);
    if (o->dim % 2)
        return vox_set_error(err, VOX_ERR_ARG,
                             "--dim %d: expected an even number (time embedding cos/sin halves)",
                             o->dim);
    if (o->vocab_size <= o->n_special)
        return vox_set_error(err, VOX_ERR_ARG, "--vocab %d: expected more than the %d specials",
                             o->vocab_size, o->n_special);
    if (o->n_voices > VOX_MKMODEL_TTS_MAX_VOICES)
        return vox_set_error(err, VOX_ERR_ARG, "--voices %d: expected at most %d", o->n_voices,
                             VOX_MKMODEL_TTS_MAX_VOICES);
    for (int i = 0; i < o->n_voices; i++)
        if (o->voice_rows[i] < 1 || o->voice_rows[i] > 100000)
            return vox_set_error(err, VOX_ERR_ARG, "voice %d rows %d: expected 1..100000", i,
                                 o->voice_rows[i]);
    if (!(o->emb_std > 0.0 && o->emb_std <= 100.0))
        return vox_set_error(err, VOX_ERR_ARG, "--emb-std %g: expected in (0, 100]", o->emb_std);
    if ((double)o->vocab_size * o->dim > 4e12 || (double)o->hidden_dim * o->dim > 4e12)
        return vox_set_error(err, VOX_ERR_ARG, "model dimensions are too large");
    vox_mkcodec_opts co;
    tts_codec_opts(o, &co);
    return vox_mkcodec_check(&co, err);
}

static int64_t ceil128(int64_t n) { return (n + 127) / 128 * 128; }

static int tts_n_lm_tensors(const vox_mkmodel_tts_opts *o) {
    return 3 + 9 * o->n_layers + 6 + 9 * o->ac_layers;
}


static int tts_list(const vox_mkmodel_tts_opts *o, mk_list *l, vox_error *err) {
    int n = tts_n_lm_tensors(o);
    l->t = vox_calloc((size_t)n, sizeof *l->t, err);
    if (!l->t) return VOX_ERR_NOMEM;
    l->cap = n;
    l->n = 0;
    l->seed = o->seed;
    l->emb_std = o->emb_std;
    l->special_scale = 1.0;
    l->n_special = o->n_special;
    const int64_t D = o->dim, Q = (int64_t)o->n_heads * o->head_dim;
    const int64_t KV = (int64_t)o->n_kv_heads * o->head_dim, H = o->hidden_dim;
    const int64_t S2 = o->semantic_size + 2, L2 = o->acoustic_levels + 2;
    add(l, INIT_EMB, 2, o->vocab_size, D, 0, "mm_audio_embeddings.tok_embeddings.weight");
    add(l, INIT_EMB, 2, ceil128(S2 + (int64_t)o->n_acoustic * L2), D, 0,
        "mm_audio_embeddings.audio_codebook_embeddings.embeddings.weight");
    for (int i = 0; i < o->n_layers; i++) {
        add(l, INIT_LINEAR, 2, Q, D, 0, "layers.%d.attention.wq.weight", i);
        add(l, INIT_LINEAR, 2, KV, D, 0, "layers.%d.attention.wk.weight", i);
        add(l, INIT_LINEAR, 2, KV, D, 0, "layers.%d.attention.wv.weight", i);
        add(l, INIT_LINEAR, 2, D, Q, 0, "layers.%d.attention.wo.weight", i);
        add(l, INIT_NORM, 1, D, 0, 0, "layers.%d.attention_norm.weight", i);
        add(l, INIT_LINEAR, 2, H, D, 0, "layers.%d.feed_forward.w1.weight", i);
        add(l, INIT_LINEAR, 2, D, H, 0, "layers.%d.feed_forward.w2.weight", i);
        add(l, INIT_LINEAR, 2, H, D, 0, "layers.%d.feed_forward.w3.weight", i);
        add(l, INIT_NORM, 1, D, 0, 0, "layers.%d.ffn_norm.weight", i);
    }
    add(l, INIT_NORM, 1, D, 0, 0, "norm.weight");
    const char *A = "acoustic_transformer.";
    const int64_t AQ = (int64_t)o->ac_heads * o->ac_head_dim;
    const int64_t AKV = (int64_t)o->ac_kv_heads * o->ac_head_dim, AH = o->ac_hidden;
    add(l, INIT_LINEAR, 2, D, o->n_acoustic, 0, "%sinput_projection.weight", A);
    add(l, INIT_LINEAR, 2, D, D, 0, "%stime_projection.weight", A);
    add(l, INIT_LINEAR, 2, D, D, 0, "%sllm_projection.weight", A);
    add(l, INIT_LINEAR, 2, ceil128(S2), D, 0, "%ssemantic_codebook_output.weight", A);
    add(l, INIT_LINEAR, 2, o->n_acoustic, D, 0, "%sacoustic_codebook_output.weight", A);
    add(l, INIT_NORM, 1, D, 0, 0, "%snorm.weight", A);
    for (int i = 0; i < o->ac_layers; i++) {
        add(l, INIT_LINEAR, 2, AQ, D, 0, "%slayers.%d.attention.wq.weight", A, i);
        add(l, INIT_LINEAR, 2, AKV, D, 0, "%slayers.%d.attention.wk.weight", A, i);
        add(l, INIT_LINEAR, 2, AKV, D, 0, "%slayers.%d.attention.wv.weight", A, i);
        add(l, INIT_LINEAR, 2, D, AQ, 0, "%slayers.%d.attention.wo.weight", A, i);
        add(l, INIT_NORM, 1, D, 0, 0, "%slayers.%d.attention_norm.weight", A, i);
        add(l, INIT_LINEAR, 2, AH, D, 0, "%slayers.%d.feed_forward.w1.weight", A, i);
        add(l, INIT_LINEAR, 2, D, AH, 0, "%slayers.%d.feed_forward.w2.weight", A, i);
        add(l, INIT_LINEAR, 2, AH, D, 0, "%slayers.%d.feed_forward.w3.weight", A, i);
        add(l, INIT_NORM, 1, D, 0, 0, "%slayers.%d.ffn_norm.weight", A, i);
    }
    if (l->n != n)
        return vox_set_error(err, VOX_ERR_ARG, "mkmodel: internal tensor count %d != %d", l->n, n);
    /* The semantic head scores the backbone hidden state: a larger gain spreads the
     * random logits so the greedy argmax is not a near-tie. */
    for (int i = 0; i < l->n; i++)
        if (strstr(l->t[i].name, "semantic_codebook_output")) l->t[i].amp *= 4.0f;
    return VOX_OK;
}

int vox_mkmodel_tts_size(const vox_mkmodel_tts_opts *o, int *n_tensors, uint64_t *n_bytes,
                         vox_error *err) {
    int rc = vox_mkmodel_tts_check(o, err);
    if (rc) return rc;
    mk_list l = {0};
    vox_stw *w = NULL;
    vox_mkcodec_gen *cg = NULL;
    rc = tts_list(o, &l, err);
    if (!rc) {
        w = vox_stw_new(err);
        if (!w) rc = VOX_ERR_NOMEM;
    }
    for (int i = 0; !rc && i < l.n; i++)
        rc = vox_stw_add_gen(w, l.t[i].name, VOX_DT_BF16, l.t[i].ndim, l.t[i].shape, gen_bf16,
                             &l.t[i], err);
    vox_mkcodec_opts co;
    tts_codec_opts(o, &co);
    if (!rc) rc = vox_mkcodec_add_tensors(w, &co, &cg, err);
    if (!rc) {
        if (n_tensors) *n_tensors = vox_stw_count(w);
        if (n_bytes) *n_bytes = vox_stw_data_bytes(w);
    }
    vox_mkcodec_gen_free(cg);
    vox_stw_free(w);
    free(l.t);
    return rc;
}

static int write_tts_params(const char *path, const vox_mkmodel_tts_opts *o, vox_error *err) {
    vox_mkcodec_opts co;
    tts_codec_opts(o, &co);
    char *codec_json = vox_mkcodec_params_json(&co, err); /* "{...}" */
    if (!codec_json) return err ? err->code : VOX_ERR_NOMEM;
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        free(codec_json);
        return vox_set_error(err, VOX_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    fprintf(fp,
            "{\n"
            "    \"dim\": %d,\n"
            "    \"n_layers\": %d,\n"
            "    \"head_dim\": %d,\n"
            "    \"hidden_dim\": %d,\n"
            "    \"n_heads\": %d,\n"
            "    \"n_kv_heads\": %d,\n"
            "    \"rope_theta\": 1000000.0,\n"
            "    \"norm_eps\": 1e-05,\n"
            "    \"vocab_size\": %d,\n"
            "    \"max_seq_len\": 65536,\n"
            "    \"max_position_embeddings\": 128000,\n"
            "    \"tied_embeddings\": true,\n"
            "    \"causal\": true,\n"
            "    \"use_biases\": false,\n"
            "    \"model_type\": \"voxtral_tts\",\n"
            "    \"multimodal\": {\n"
            "        \"bos_token_id\": 1,\n"
            "        \"audio_model_args\": {\n"
            "            \"semantic_codebook_size\": %d,\n"
            "            \"acoustic_codebook_size\": %d,\n"
            "            \"n_acoustic_codebook\": %d,\n"
            "            \"audio_encoding_args\": {\n"
            "                \"codebook_pattern\": \"parallel\",\n"
            "                \"interleave_audio_tokens_per_segment\": 8192,\n"
            "                \"interleave_text_tokens_per_segment\": 8192,\n"
            "                \"single_trailing_segment\": false,\n"
            "                \"num_codebooks\": %d,\n"
            "                \"sampling_rate\": 24000,\n"
            "                \"frame_rate\": 12.5\n"
            "            },\n"
            "            \"audio_token_id\": 24,\n"
            "            \"begin_audio_token_id\": 25,\n"
            "            \"input_embedding_concat_type\": \"sum\",\n"
            "            \"acoustic_transformer_args\": {\n"
            "                \"input_dim\": %d,\n"
            "                \"dim\": %d,\n"
            "                \"n_layers\": %d,\n"
            "                \"head_dim\": %d,\n"
            "                \"hidden_dim\": %d,\n"
            "                \"n_heads\": %d,\n"
            "                \"n_kv_heads\": %d,\n"
            "                \"use_biases\": false,\n"
            "                \"rope_theta\": 10000.0,\n"
            "                \"sigma\": 1e-05,\n"
            "                \"sigma_max\": 1.0\n"
            "            },\n"
            "            \"p_uncond\": 0.0,\n"
            "            \"text_feature_bugged\": false,\n"
            "            \"condition_dropped_token_id\": 42\n"
            "        },\n"
            "        \"audio_tokenizer_args\": %.*s, \"voice\": {",
            o->dim, o->n_layers, o->head_dim, o->hidden_dim, o->n_heads, o->n_kv_heads,
            o->vocab_size, o->semantic_size, o->acoustic_levels, o->n_acoustic, o->n_acoustic + 1,
            o->dim, o->dim, o->ac_layers, o->ac_head_dim, o->ac_hidden, o->ac_heads,
            o->ac_kv_heads, (int)(strlen(codec_json) - 1), codec_json);
    for (int i = 0; i < o->n_voices; i++)
        fprintf(fp, "%s\n            \"%s\": %d", i ? "," : "", k_tts_voices[i], i);
    fprintf(fp, "\n        }}\n    }\n}\n");
    free(codec_json);
    int bad = ferror(fp);
    if (fclose(fp) != 0) bad = 1;
    if (bad) return vox_set_error(err, VOX_ERR_IO, "%s: write failed", path);
    return VOX_OK;
}

/* BF16 value of element e of a generated tensor, exactly as written to the file. */
static float tensor_elem_bf16(const mk_tensor *t, int64_t e) {
    const float scale = t->amp * (1.0f / 8388608.0f);
    const float base = t->init == INIT_NORM ? 1.0f : 0.0f;
    return vox_bf16_to_f32(vox_f32_to_bf16(base + elem_value(t, scale, e)));
}

static int write_voice(const char *path, const vox_mkmodel_tts_opts *o, const mk_tensor *cb,
                       int vi, int rows, vox_error *err) {
    const int64_t D = o->dim, S2 = o->semantic_size + 2, L2 = o->acoustic_levels + 2;
    uint16_t *buf = vox_malloc((size_t)rows * (size_t)D * sizeof *buf, err);
    float *acc = vox_malloc((size_t)D * sizeof *acc, err);
    if (!buf || !acc) {
        free(buf);
        free(acc);
        return VOX_ERR_NOMEM;
    }
    uint64_t st = splitmix64(o->seed ^ 0x766f6963650000ull ^ (uint64_t)vi);
    for (int r = 0; r < rows; r++) {
        for (int64_t d = 0; d < D; d++) acc[d] = 0.0f;
        for (int k = 0; k <= o->n_acoustic; k++) {
            int64_t code;
            if (r == rows - 1) {
                code = k == 0 ? 1 : 0; /* end-of-audio frame: END, EMPTY x n_ac */
            } else {
                st = splitmix64(st);
                code = 2 + (int64_t)(st % (uint64_t)(k == 0 ? o->semantic_size : o->acoustic_levels));
            }
            int64_t row = k == 0 ? code : S2 + L2 * (k - 1) + code;
            for (int64_t d = 0; d < D; d++) acc[d] += tensor_elem_bf16(cb, row * D + d);
        }
        for (int64_t d = 0; d < D; d++) buf[(size_t)r * (size_t)D + (size_t)d] = vox_f32_to_bf16(acc[d]);
    }
    int64_t shape[2] = {rows, D};
    int rc = vox_pt_write(path, VOX_DT_BF16, 2, shape, buf, err);
    free(buf);
    free(acc);
    return rc;
}

int vox_mkmodel_tts_write(const char *dir, const vox_mkmodel_tts_opts *o, vox_error *err) {
    if (!dir || !o) return vox_set_error(err, VOX_ERR_ARG, "vox_mkmodel_tts_write: NULL argument");
    int rc = vox_mkmodel_tts_check(o, err);
    if (rc) return rc;
    rc = vox_mkdir_p(dir, err);
    if (rc) return rc;
    size_t dl = strlen(dir), cap = dl + 96;
    char *path = vox_malloc(cap, err);
    if (!path) return VOX_ERR_NOMEM;
    mk_list l = {0};
    vox_stw *w = NULL;

    snprintf(path, cap, "%s/params.json", dir);
    rc = write_tts_params(path, o, err);
    if (rc) goto done;

    vox_tekken_gen_opts to;
    vox_tekken_gen_defaults(&to);
    to.n_special = o->n_special;
    to.default_vocab_size = o->vocab_size;
    int regular = o->vocab_size - o->n_special;
    to.n_vocab_stored = regular + (regular / 8 > 64 ? regular / 8 : 64);
    if (to.n_vocab_stored < 256) to.n_vocab_stored = 256;
    to.seed = o->seed;
    to.delay_ms = 0;
    to.tts = 1;
    to.n_voices = o->n_voices;
    to.voice_names = k_tts_voices;
    to.voice_num_audio_tokens = o->voice_rows;
    snprintf(path, cap, "%s/tekken.json", dir);
    rc = vox_tekken_gen_write(path, &to, err);
    if (rc) goto done;

    rc = tts_list(o, &l, err);
    if (rc) goto done;
    snprintf(path, cap, "%s/voice_embedding", dir);
    rc = vox_mkdir_p(path, err);
    for (int i = 0; i < o->n_voices && !rc; i++) {
        snprintf(path, cap, "%s/voice_embedding/%s.pt", dir, k_tts_voices[i]);
        rc = write_voice(path, o, &l.t[1], i, o->voice_rows[i], err);
    }
    if (rc) goto done;

    w = vox_stw_new(err);
    if (!w) {
        rc = VOX_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < l.n && !rc; i++)
        rc = vox_stw_add_gen(w, l.t[i].name, VOX_DT_BF16, l.t[i].ndim, l.t[i].shape, gen_bf16,
                             &l.t[i], err);
    vox_mkcodec_opts co;
    tts_codec_opts(o, &co);
    vox_mkcodec_gen *cg = NULL;
    if (!rc) rc = vox_mkcodec_add_tensors(w, &co, &cg, err); /* audio_tokenizer.* */
    if (!rc) {
        snprintf(path, cap, "%s/consolidated.safetensors", dir);
        rc = vox_stw_write(w, path, err);
    }
    vox_mkcodec_gen_free(cg);
done:
    vox_stw_free(w);
    free(l.t);
    free(path);
    return rc;
}
