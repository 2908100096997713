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
    const vox_mkmodel_rt_opts *o;
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
        t->amp = (float)(l->o->emb_std * sqrt3);
        t->n_special = l->o->n_special;
        t->special_scale = (float)l->o->special_scale;
        break;
    }
    t->key = splitmix64(l->o->seed ^ 0x766f782d6d6b6dull) ^ fnv1a(t->name);
}

#define P "mm_streams_embeddings.embedding_module."
#define W P "whisper_encoder."

static int list_tensors(const vox_mkmodel_rt_opts *o, mk_list *l, vox_error *err) {
    int n = 13 * o->enc_layers + 11 * o->n_layers + 9;
    l->t = vox_calloc((size_t)n, sizeof *l->t, err);
    if (!l->t) return VOX_ERR_NOMEM;
    l->cap = n;
    l->n = 0;
    l->o = o;
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

static int mkdir_p(const char *dir, vox_error *err) {
    size_t l = strlen(dir);
    if (l == 0 || l >= 4096) return vox_set_error(err, VOX_ERR_ARG, "bad output directory '%s'", dir);
    char buf[4096];
    memcpy(buf, dir, l + 1);
    for (size_t i = 1; i <= l; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return vox_set_error(err, VOX_ERR_IO, "%s: cannot create directory: %s", buf,
                                     strerror(errno));
            buf[i] = c;
        }
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return vox_set_error(err, VOX_ERR_IO, "%s: not a directory", dir);
    return VOX_OK;
}

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
    rc = mkdir_p(dir, err);
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
