/* codec.c - Voxtral Codec decoder: load, config, whole-utterance and incremental decode
 * (see vox_codec.h). All math goes through the backend ops (ALiBi attention is the backend's
 * attention_alibi, LayerScale its mul_rows), except the host-side dequantization table lookup. */
#include "vox_codec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_hd.h"

#define TK "audio_tokenizer."

typedef struct {
    vox_mat wq, wk, wv, wo, w1, w2, w3; /* [Q][D] [KV][D] [KV][D] [D][Q] [H][D] [D][H] [H][D] */
    float *q_norm, *k_norm;             /* backend [Q], [KV] */
    float *attn_norm, *ffn_norm;        /* backend [D] */
    float *attn_scale, *ffn_scale;      /* backend [D] (LayerScale) */
} cl_layer;

typedef struct {
    vox_mat w; /* folded f32; conv: [c_out][c_in*k]; transposed: [c_in][c_out*k] */
    int c_in, c_out, k, stride;
} cl_conv;

struct vox_codec_model {
    vox_backend *be;
    vox_codec_config c;
    cl_conv conv0;                          /* latent -> dim, replicate padding */
    cl_conv up[VOX_CODEC_MAX_STAGES];       /* ConvT after stage i (when has_up[i]) */
    cl_conv outp;                           /* dim -> patch, reflect padding */
    cl_layer *layers[VOX_CODEC_MAX_STAGES]; /* [n_layers[i]] */
    int block_of_stage[VOX_CODEC_MAX_STAGES], block_of_up[VOX_CODEC_MAX_STAGES], n_blocks;
    float *codebook_host; /* [semantic_size][semantic_dim] */
    int has_encoder;
    cl_conv inproj; /* patch -> dim, reflect padding */
    cl_layer *enc_layers[VOX_CODEC_MAX_STAGES];
    cl_conv enc_conv[VOX_CODEC_MAX_STAGES]; /* after encoder stage i (enc_has_conv[i]) */
    vox_mat codebook;                       /* backend f32 [semantic_size][semantic_dim] */
    float *cb_bias;                         /* backend [semantic_size]: -|c|^2 / 2 */
    float *slopes;                          /* backend [n_heads] ALiBi slopes */
    void **owned;                           /* backend allocations */
    int n_owned, cap_owned;
    int map_weights; /* CPU backend: linear weights point into the file */
};

/* ---- config ----------------------------------------------------------------------------- */

static int get_int(const vox_params *p, const char *pre, const char *k, int has_def, int64_t def,
                   int lo, int *out, vox_error *err) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", pre, k);
    int64_t v;
    int rc = has_def ? vox_params_int_or(p, key, def, &v, err) : vox_params_int(p, key, &v, err);
    if (rc) return rc;
    if (v < lo || v > (1 << 24))
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: key '%s': expected an integer >= %d, found %lld",
                             vox_params_path(p), key, lo, (long long)v);
    *out = (int)v;
    return VOX_OK;
}

static int get_bool(const vox_params *p, const char *pre, const char *k, int def, int *out,
                    vox_error *err) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", pre, k);
    return vox_params_bool_or(p, key, def, out, err);
}

static int get_float(const vox_params *p, const char *pre, const char *k, double def, float *out,
                     vox_error *err) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", pre, k);
    double v;
    int rc = vox_params_float_or(p, key, def, &v, err);
    if (rc) return rc;
    *out = (float)v;
    return VOX_OK;
}

static int get_list(const vox_params *p, const char *pre, const char *k, const char *def, int *out,
                    int *n, vox_error *err) {
    char key[256];
    snprintf(key, sizeof key, "%s.%s", pre, k);
    int64_t v[VOX_CODEC_MAX_STAGES];
    if (vox_params_has(p, key)) {
        int rc = vox_params_int_list(p, key, v, VOX_CODEC_MAX_STAGES, n, err);
        if (rc) return rc;
    } else {
        *n = 0;
        for (const char *s = def; *s;) {
            v[(*n)++] = strtol(s, (char **)&s, 10);
            if (*s == ',') s++;
        }
    }
    if (*n < 1)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: key '%s': expected a non-empty list",
                             vox_params_path(p), key);
    for (int i = 0; i < *n; i++) {
        if (v[i] < 1 || v[i] > 64)
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: key '%s': element %d: expected 1..64, found %lld",
                                 vox_params_path(p), key, i, (long long)v[i]);
        out[i] = (int)v[i];
    }
    return VOX_OK;
}

int vox_codec_config_from_params(const vox_params *p, const char *key, vox_codec_config *c,
                                 vox_error *err) {
    const char *K = key ? key : "multimodal.audio_tokenizer_args";
    const char *path = vox_params_path(p);
    memset(c, 0, sizeof *c);
    int rc = 0, channels, causal, biases;
    rc = rc ? rc : get_int(p, K, "channels", 1, 1, 1, &channels, err);
    rc = rc ? rc : get_int(p, K, "sampling_rate", 1, 24000, 1, &c->sampling_rate, err);
    rc = rc ? rc : get_int(p, K, "pretransform_patch_size", 0, 0, 1, &c->patch_size, err);
    rc = rc ? rc : get_int(p, K, "patch_proj_kernel_size", 1, 7, 1, &c->patch_kernel, err);
    rc = rc ? rc : get_int(p, K, "semantic_codebook_size", 0, 0, 1, &c->semantic_size, err);
    rc = rc ? rc : get_int(p, K, "semantic_dim", 0, 0, 1, &c->semantic_dim, err);
    rc = rc ? rc : get_int(p, K, "acoustic_codebook_size", 0, 0, 2, &c->acoustic_size, err);
    rc = rc ? rc : get_int(p, K, "acoustic_dim", 0, 0, 0, &c->acoustic_dim, err);
    rc = rc ? rc : get_int(p, K, "dim", 0, 0, 1, &c->dim, err);
    rc = rc ? rc : get_int(p, K, "hidden_dim", 0, 0, 1, &c->hidden_dim, err);
    rc = rc ? rc : get_int(p, K, "head_dim", 0, 0, 1, &c->head_dim, err);
    rc = rc ? rc : get_int(p, K, "n_heads", 0, 0, 1, &c->n_heads, err);
    rc = rc ? rc : get_int(p, K, "n_kv_heads", 0, 0, 1, &c->n_kv_heads, err);
    rc = rc ? rc : get_float(p, K, "norm_eps", 1e-2, &c->norm_eps, err);
    rc = rc ? rc : get_float(p, K, "qk_norm_eps", 1e-6, &c->qk_norm_eps, err);
    rc = rc ? rc : get_bool(p, K, "qk_norm", 1, &c->qk_norm, err);
    rc = rc ? rc : get_bool(p, K, "layer_scale", 1, &c->layer_scale, err);
    rc = rc ? rc : get_bool(p, K, "causal", 1, &causal, err);
    rc = rc ? rc : get_bool(p, K, "use_biases", 0, &biases, err);
    int window, half, wn;
    rc = rc ? rc : get_int(p, K, "attn_sliding_window_size", 1, 16, 1, &window, err);
    rc = rc ? rc : get_bool(p, K, "half_attn_window_upon_downsampling", 1, &half, err);
    rc = rc ? rc : get_bool(p, K, "conv_weight_norm", 1, &wn, err);
    int el[VOX_CODEC_MAX_STAGES], ek[VOX_CODEC_MAX_STAGES], es[VOX_CODEC_MAX_STAGES];
    int nel, nek, nes, nk, ns;
    rc = rc ? rc : get_list(p, K, "encoder_transformer_lengths_str", "2,2,2,2", el, &nel, err);
    rc = rc ? rc : get_list(p, K, "encoder_convs_kernels_str", "4,4,4,3", ek, &nek, err);
    rc = rc ? rc : get_list(p, K, "encoder_convs_strides_str", "2,2,2,1", es, &nes, err);
    rc = rc ? rc
            : get_list(p, K, "decoder_transformer_lengths_str", "2,2,2,2", c->n_layers,
                       &c->n_stages, err);
    rc = rc ? rc : get_list(p, K, "decoder_convs_kernels_str", "3,4,4,4", c->kernel, &nk, err);
    rc = rc ? rc : get_list(p, K, "decoder_convs_strides_str", "1,2,2,2", c->stride, &ns, err);
    if (rc) return rc;
    if (channels != 1)
        return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                             "%s: key '%s.channels': expected 1, found %d", path, K, channels);
    if (!causal)
        return vox_set_error(err, VOX_ERR_UNSUPPORTED, "%s: key '%s.causal': expected true", path,
                             K);
    if (biases)
        return vox_set_error(err, VOX_ERR_UNSUPPORTED, "%s: key '%s.use_biases': expected false",
                             path, K);
    if (!wn)
        return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                             "%s: key '%s.conv_weight_norm': expected true", path, K);
    if (nel != nek || nel != nes || c->n_stages != nk || c->n_stages != ns)
        return vox_set_error(
            err, VOX_ERR_FORMAT,
            "%s: '%s': encoder/decoder lengths, kernels and strides lists differ in "
            "length",
            path, K);
    if (c->n_heads % c->n_kv_heads)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: '%s': n_heads %d not a multiple of n_kv_heads %d", path, K,
                             c->n_heads, c->n_kv_heads);
    if (c->stride[0] != 1)
        return vox_set_error(
            err, VOX_ERR_UNSUPPORTED,
            "%s: key '%s.decoder_convs_strides_str': expected a first stride of 1, "
            "found %d",
            path, K, c->stride[0]);
    /* windows: replay the encoder (halve per stride-2 conv), then double per decoder stride */
    int cur = window, enc_prod = 1;
    c->enc_n_stages = nel;
    for (int i = 0; i < nel; i++) {
        enc_prod *= es[i];
        int conv = ek[i] != 1 || es[i] != 1 || i == nel - 1;
        c->enc_layers[i] = el[i];
        c->enc_kernel[i] = ek[i];
        c->enc_stride[i] = es[i];
        c->enc_window[i] = cur;
        c->enc_has_conv[i] = conv;
        if (conv && ek[i] < es[i])
            return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                                 "%s: '%s': encoder conv %d: kernel %d < stride %d", path, K, i,
                                 ek[i], es[i]);
        if (conv && half && es[i] > 1) {
            if (es[i] != 2)
                return vox_set_error(
                    err, VOX_ERR_UNSUPPORTED,
                    "%s: '%s': encoder stride %d: only 2x downsampling halves windows", path, K,
                    es[i]);
            cur /= 2;
            if (cur < 2)
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "%s: '%s': sliding window %d falls below 2 in the encoder",
                                     path, K, window);
        }
    }
    c->up_total = 1;
    for (int i = 0; i < c->n_stages; i++) {
        c->window[i] = cur;
        if (i + 1 < c->n_stages && (c->kernel[i + 1] != 1 || c->stride[i + 1] != 1)) {
            c->has_up[i] = 1;
            if (c->kernel[i + 1] < c->stride[i + 1])
                return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                                     "%s: '%s': decoder conv %d: kernel %d < stride %d", path, K,
                                     i + 1, c->kernel[i + 1], c->stride[i + 1]);
            c->up_total *= c->stride[i + 1];
            if (half && c->stride[i + 1] > 1) {
                if (c->stride[i + 1] != 2)
                    return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                                         "%s: '%s': decoder stride %d: only 2x upsampling", path, K,
                                         c->stride[i + 1]);
                cur *= 2;
            }
        }
    }
    int dec_prod = 1;
    for (int i = 0; i < c->n_stages; i++)
        dec_prod *= c->stride[i];
    if (enc_prod != dec_prod)
        return vox_set_error(
            err, VOX_ERR_FORMAT,
            "%s: '%s': product of encoder strides %d != product of decoder strides %d", path, K,
            enc_prod, dec_prod);
    c->latent_dim = c->semantic_dim + c->acoustic_dim;
    c->samples_per_frame = c->patch_size * c->up_total;
    return VOX_OK;
}

float vox_codec_alibi_slope(int h, int n_heads) {
    int m = 1;
    while (m * 2 <= n_heads)
        m *= 2;
    if (m == n_heads || h < m) return (float)pow(pow(2.0, -8.0 / m), h);
    /* every other slope of the 2m rule: r2^(2 (h - m)), r2 = 2^(-8 / 2m) */
    return (float)pow(pow(2.0, -8.0 / (2 * m)), 2 * (h - m));
}

/* ---- load ------------------------------------------------------------------------------- */

static int be_fail(vox_backend *be, vox_error *err, int rc) {
    if (err) {
        *err = be->err;
        if (!err->code) err->code = rc;
    }
    return rc;
}

static void *dev_put(vox_codec_model *m, const void *host, size_t bytes, vox_error *err) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? 2 * m->cap_owned : 64;
        void **o = realloc(m->owned, (size_t)cap * sizeof *o);
        if (!o) {
            vox_set_error(err, VOX_ERR_NOMEM, "codec: out of memory");
            return NULL;
        }
        m->owned = o;
        m->cap_owned = cap;
    }
    void *d = m->be->ops->alloc(m->be, bytes);
    if (!d) {
        be_fail(m->be, err, VOX_ERR_NOMEM);
        return NULL;
    }
    m->owned[m->n_owned++] = d;
    if (host && m->be->ops->upload(m->be, d, host, bytes)) {
        be_fail(m->be, err, VOX_ERR_DEVICE);
        return NULL;
    }
    return d;
}

static void to_f32(const vox_st_tensor *t, float *dst) {
    if (t->dtype == VOX_DT_F32) {
        memcpy(dst, t->data, (size_t)t->numel * sizeof(float));
    } else if (t->dtype == VOX_DT_BF16) {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->numel; i++)
            dst[i] = vox_bf16_to_f32(s[i]);
    } else {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->numel; i++)
            dst[i] = vox_f16_to_f32(s[i]);
    }
}

static int get_t(const vox_st_file *st, const char *name, int ndim, int64_t d0, int64_t d1,
                 int64_t d2, const vox_st_tensor **t, vox_error *err) {
    int64_t shape[3] = {d0, d1, d2};
    return vox_st_get(st, name, -1, ndim, shape, t, err);
}

static float *vec_f32(vox_codec_model *m, const vox_st_file *st, const char *name, int64_t n,
                      vox_error *err) {
    const vox_st_tensor *t;
    if (get_t(st, name, 1, n, 0, 0, &t, err)) return NULL;
    float *h = vox_malloc((size_t)n * sizeof(float), err);
    if (!h) return NULL;
    to_f32(t, h);
    float *d = dev_put(m, h, (size_t)n * sizeof(float), err);
    free(h);
    return d;
}

static int mat(vox_codec_model *m, const vox_st_file *st, const char *name, int64_t rows,
               int64_t cols, vox_mat *out, vox_error *err) {
    const vox_st_tensor *t;
    int rc = get_t(st, name, 2, rows, cols, 0, &t, err);
    if (rc) return rc;
    *out = vox_st_mat(t);
    if (!m->map_weights) {
        void *d = dev_put(m, t->data, t->nbytes, err);
        if (!d) return err ? err->code : VOX_ERR_NOMEM;
        out->data = d;
    }
    return VOX_OK;
}

/* Weight-normed conv `pre`.conv.parametrizations.weight.original{0,1}: g [d0,1,1], v [d0,d1,k];
 * W = g * v / ||v|| per row of dim 0. */
static int conv(vox_codec_model *m, const vox_st_file *st, const char *pre, int d0, int d1, int k,
                cl_conv *c, vox_error *err) {
    char name[256];
    const vox_st_tensor *tg, *tv;
    snprintf(name, sizeof name, "%s.conv.parametrizations.weight.original0", pre);
    int rc = get_t(st, name, 3, d0, 1, 1, &tg, err);
    if (rc) return rc;
    snprintf(name, sizeof name, "%s.conv.parametrizations.weight.original1", pre);
    rc = get_t(st, name, 3, d0, d1, k, &tv, err);
    if (rc) return rc;
    const int64_t cols = (int64_t)d1 * k;
    float *g = vox_malloc((size_t)d0 * sizeof(float), err);
    float *w = vox_malloc((size_t)d0 * (size_t)cols * sizeof(float), err);
    if (!g || !w) {
        free(g);
        free(w);
        return VOX_ERR_NOMEM;
    }
    to_f32(tg, g);
    to_f32(tv, w);
    for (int r = 0; r < d0; r++) {
        float *row = w + (int64_t)r * cols;
        double ss = 0.0;
        for (int64_t i = 0; i < cols; i++)
            ss += (double)row[i] * row[i];
        const float f = (float)((double)g[r] / sqrt(ss));
        for (int64_t i = 0; i < cols; i++)
            row[i] *= f;
    }
    void *d = dev_put(m, w, (size_t)d0 * (size_t)cols * sizeof(float), err);
    free(g);
    free(w);
    if (!d) return err ? err->code : VOX_ERR_NOMEM;
    c->w = (vox_mat){.data = d, .dtype = VOX_DT_F32, .rows = d0, .cols = cols};
    c->k = k;
    return VOX_OK;
}

static int layer(vox_codec_model *m, const vox_st_file *st, const char *group, int blk, int l,
                 cl_layer *L, vox_error *err) {
    const vox_codec_config *c = &m->c;
    const int64_t D = c->dim, Q = (int64_t)c->n_heads * c->head_dim;
    const int64_t KV = (int64_t)c->n_kv_heads * c->head_dim, H = c->hidden_dim;
    char p[128], n[256];
    snprintf(p, sizeof p, TK "%s.%d.layers.%d.", group, blk, l);
#define NM(s) (snprintf(n, sizeof n, "%s%s", p, s), n)
    int rc = 0;
    rc = rc ? rc : mat(m, st, NM("attention.wq.weight"), Q, D, &L->wq, err);
    rc = rc ? rc : mat(m, st, NM("attention.wk.weight"), KV, D, &L->wk, err);
    rc = rc ? rc : mat(m, st, NM("attention.wv.weight"), KV, D, &L->wv, err);
    rc = rc ? rc : mat(m, st, NM("attention.wo.weight"), D, Q, &L->wo, err);
    rc = rc ? rc : mat(m, st, NM("feed_forward.w1.weight"), H, D, &L->w1, err);
    rc = rc ? rc : mat(m, st, NM("feed_forward.w2.weight"), D, H, &L->w2, err);
    rc = rc ? rc : mat(m, st, NM("feed_forward.w3.weight"), H, D, &L->w3, err);
    if (rc) return rc;
    if (!(L->attn_norm = vec_f32(m, st, NM("attention_norm.weight"), D, err))) return err->code;
    if (!(L->ffn_norm = vec_f32(m, st, NM("ffn_norm.weight"), D, err))) return err->code;
    if (c->qk_norm) {
        if (!(L->q_norm = vec_f32(m, st, NM("attention.q_norm.weight"), Q, err))) return err->code;
        if (!(L->k_norm = vec_f32(m, st, NM("attention.k_norm.weight"), KV, err))) return err->code;
    }
    if (c->layer_scale) {
        if (!(L->attn_scale = vec_f32(m, st, NM("attention_scale"), D, err))) return err->code;
        if (!(L->ffn_scale = vec_f32(m, st, NM("ffn_scale"), D, err))) return err->code;
    }
#undef NM
    return VOX_OK;
}

static int load_all(vox_codec_model *m, const vox_st_file *st, vox_error *err) {
    const vox_codec_config *c = &m->c;
    int rc =
        conv(m, st, TK "decoder_blocks.0", c->dim, c->latent_dim, c->kernel[0], &m->conv0, err);
    if (rc) return rc;
    m->conv0.c_in = c->latent_dim;
    m->conv0.c_out = c->dim;
    m->conv0.stride = 1;
    int blk = 1;
    for (int i = 0; i < c->n_stages; i++) {
        m->block_of_stage[i] = blk;
        m->layers[i] = vox_calloc((size_t)c->n_layers[i], sizeof(cl_layer), err);
        if (!m->layers[i]) return VOX_ERR_NOMEM;
        for (int l = 0; l < c->n_layers[i]; l++)
            if ((rc = layer(m, st, "decoder_blocks", blk, l, &m->layers[i][l], err))) return rc;
        blk++;
        if (c->has_up[i]) {
            char pre[64];
            snprintf(pre, sizeof pre, TK "decoder_blocks.%d", blk);
            if ((rc = conv(m, st, pre, c->dim, c->dim, c->kernel[i + 1], &m->up[i], err)))
                return rc;
            m->up[i].c_in = m->up[i].c_out = c->dim;
            m->up[i].stride = c->stride[i + 1];
            m->block_of_up[i] = blk++;
        }
    }
    m->n_blocks = blk;
    rc = conv(m, st, TK "output_proj", c->patch_size, c->dim, c->patch_kernel, &m->outp, err);
    if (rc) return rc;
    m->outp.c_in = c->dim;
    m->outp.c_out = c->patch_size;
    m->outp.stride = 1;
    /* semantic codebook = embedding_sum / clamp(cluster_usage, 1e-5) */
    const vox_st_tensor *es, *cu;
    rc = get_t(st, TK "quantizer.semantic_codebook.embedding_sum", 2, c->semantic_size,
               c->semantic_dim, 0, &es, err);
    rc = rc ? rc
            : get_t(st, TK "quantizer.semantic_codebook.cluster_usage", 1, c->semantic_size, 0, 0,
                    &cu, err);
    if (rc) return rc;
    m->codebook_host = vox_malloc((size_t)es->numel * sizeof(float), err);
    float *usage = vox_malloc((size_t)cu->numel * sizeof(float), err);
    if (!m->codebook_host || !usage) {
        free(usage);
        return VOX_ERR_NOMEM;
    }
    to_f32(es, m->codebook_host);
    to_f32(cu, usage);
    for (int r = 0; r < c->semantic_size; r++) {
        const float u = usage[r] > 1e-5f ? usage[r] : 1e-5f;
        for (int j = 0; j < c->semantic_dim; j++)
            m->codebook_host[(int64_t)r * c->semantic_dim + j] /= u;
    }
    free(usage);
    if (vox_st_find(st, TK "input_proj.conv.parametrizations.weight.original0")) {
        m->has_encoder = 1;
        rc = conv(m, st, TK "input_proj", c->dim, c->patch_size, c->patch_kernel, &m->inproj, err);
        if (rc) return rc;
        m->inproj.c_in = c->patch_size;
        m->inproj.c_out = c->dim;
        m->inproj.stride = 1;
        int eb = 0;
        for (int i = 0; i < c->enc_n_stages; i++) {
            m->enc_layers[i] = vox_calloc((size_t)c->enc_layers[i], sizeof(cl_layer), err);
            if (!m->enc_layers[i]) return VOX_ERR_NOMEM;
            for (int l = 0; l < c->enc_layers[i]; l++)
                if ((rc = layer(m, st, "encoder_blocks", eb, l, &m->enc_layers[i][l], err)))
                    return rc;
            eb++;
            if (c->enc_has_conv[i]) {
                char pre[64];
                const int out = i == c->enc_n_stages - 1 ? c->latent_dim : c->dim;
                snprintf(pre, sizeof pre, TK "encoder_blocks.%d", eb++);
                rc = conv(m, st, pre, out, c->dim, c->enc_kernel[i], &m->enc_conv[i], err);
                if (rc) return rc;
                m->enc_conv[i].c_in = c->dim;
                m->enc_conv[i].c_out = out;
                m->enc_conv[i].stride = c->enc_stride[i];
            }
        }
        const size_t cbn = (size_t)c->semantic_size * c->semantic_dim;
        void *cb = dev_put(m, m->codebook_host, cbn * sizeof(float), err);
        float *bias = vox_malloc((size_t)c->semantic_size * sizeof(float), err);
        if (!cb || !bias) {
            free(bias);
            return err && err->code ? err->code : VOX_ERR_NOMEM;
        }
        for (int r = 0; r < c->semantic_size; r++) {
            double ss = 0;
            for (int j = 0; j < c->semantic_dim; j++) {
                const double v = m->codebook_host[(int64_t)r * c->semantic_dim + j];
                ss += v * v;
            }
            bias[r] = (float)(-0.5 * ss);
        }
        m->cb_bias = dev_put(m, bias, (size_t)c->semantic_size * sizeof(float), err);
        free(bias);
        if (!m->cb_bias) return err && err->code ? err->code : VOX_ERR_NOMEM;
        m->codebook = (vox_mat){
            .data = cb, .dtype = VOX_DT_F32, .rows = c->semantic_size, .cols = c->semantic_dim};
    }
    float *slopes = vox_malloc((size_t)c->n_heads * sizeof(float), err);
    if (!slopes) return VOX_ERR_NOMEM;
    for (int h = 0; h < c->n_heads; h++)
        slopes[h] = vox_codec_alibi_slope(h, c->n_heads);
    m->slopes = dev_put(m, slopes, (size_t)c->n_heads * sizeof(float), err);
    free(slopes);
    if (!m->slopes) return err && err->code ? err->code : VOX_ERR_NOMEM;
    return VOX_OK;
}

vox_codec_model *vox_codec_load(vox_backend *be, const vox_params *p, const vox_st_file *st,
                                vox_error *err) {
    if (!be || !p || !st) {
        vox_set_error(err, VOX_ERR_ARG, "vox_codec_load: NULL argument");
        return NULL;
    }
    vox_codec_model *m = vox_calloc(1, sizeof *m, err);
    if (!m) return NULL;
    m->be = be;
    m->map_weights = strcmp(be->name, "cpu") == 0;
    int rc = vox_codec_config_from_params(p, NULL, &m->c, err);
    if (!rc) rc = load_all(m, st, err);
    if (rc) {
        vox_codec_free(m);
        return NULL;
    }
    return m;
}

void vox_codec_free(vox_codec_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++)
        m->be->ops->free(m->be, m->owned[i]);
    free(m->owned);
    for (int i = 0; i < VOX_CODEC_MAX_STAGES; i++) {
        free(m->layers[i]);
        free(m->enc_layers[i]);
    }
    free(m->codebook_host);
    free(m);
}

const vox_codec_config *vox_codec_get_config(const vox_codec_model *m) {
    return &m->c;
}

/* ---- state ------------------------------------------------------------------------------ */

struct vox_codec_state {
    const vox_codec_model *m;
    vox_backend *be;
    int max_frames;
    int t_max[VOX_CODEC_MAX_STAGES];    /* rows per call at stage i */
    int t_out_max;                      /* rows per call at the output conv */
    float *lat_host;                    /* [max_frames][latent] */
    float *lat;                         /* backend [max_frames][latent] */
    float *cbuf;                        /* backend [pad0 + max_frames][latent] */
    float *tail0;                       /* backend [pad0][latent] */
    float *xa, *xb;                     /* backend [rows][dim], ping-pong, rows >= conv-T full */
    float *h, *o;                       /* backend [t][dim] */
    float *q, *att;                     /* backend [t][Q] */
    float *k, *v;                       /* backend [t][KV] */
    float *g, *u;                       /* backend [t][hidden] */
    float *carry[VOX_CODEC_MAX_STAGES]; /* backend [k - s][dim] ConvT overlap */
    vox_kv *kv[VOX_CODEC_MAX_STAGES];   /* [n_layers[i]] rings */
    int64_t pos[VOX_CODEC_MAX_STAGES];  /* stage positions consumed */
    float *obuf;                        /* backend [2 pad + t_out_max + 1][dim] */
    float *otail;                       /* backend [pad][dim] */
    float *pend;                        /* backend [pad + 1][dim] reflect priming */
    int n_pend;
    float *oy;     /* backend [t_out_max + pad + 1][patch] */
    int primed0, primedo;
    vox_codec_tap_fn tap;
    void *tap_ctx;
    void **owned;
    int n_owned;
};

static void *st_alloc(vox_codec_state *s, size_t bytes, vox_error *err) {
    void *d = s->be->ops->alloc(s->be, bytes ? bytes : sizeof(float));
    if (!d) {
        be_fail(s->be, err, VOX_ERR_NOMEM);
        return NULL;
    }
    s->owned[s->n_owned++] = d;
    return d;
}

void vox_codec_state_free(vox_codec_state *s) {
    if (!s) return;
    for (int i = 0; i < s->n_owned; i++)
        s->be->ops->free(s->be, s->owned[i]);
    free(s->owned);
    for (int i = 0; i < VOX_CODEC_MAX_STAGES; i++)
        free(s->kv[i]);
    free(s->lat_host);
    free(s);
}

void vox_codec_state_reset(vox_codec_state *s) {
    const vox_codec_config *c = &s->m->c;
    for (int i = 0; i < c->n_stages; i++) {
        s->pos[i] = 0;
        for (int l = 0; l < c->n_layers[i]; l++)
            s->kv[i][l].end = 0;
        if (c->has_up[i])
            s->be->ops->zero(s->be, s->carry[i],
                             (size_t)(c->kernel[i + 1] - c->stride[i + 1]) * c->dim *
                                 sizeof(float));
    }
    s->primed0 = s->primedo = 0;
    s->n_pend = 0;
}

vox_codec_state *vox_codec_state_new(const vox_codec_model *m, int max_frames, vox_error *err) {
    if (!m || max_frames < 1) {
        vox_set_error(err, VOX_ERR_ARG, "vox_codec_state_new: max_frames = %d, expected >= 1",
                      max_frames);
        return NULL;
    }
    const vox_codec_config *c = &m->c;
    vox_codec_state *s = vox_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->m = m;
    s->be = m->be;
    s->max_frames = max_frames;
    int n_alloc = 32 + 3 * VOX_CODEC_MAX_STAGES * 2;
    for (int i = 0; i < c->n_stages; i++)
        n_alloc += 2 * c->n_layers[i];
    s->owned = vox_calloc((size_t)n_alloc, sizeof(void *), err);
    if (!s->owned) goto fail;
    int64_t t = max_frames, rows = max_frames;
    for (int i = 0; i < c->n_stages; i++) {
        s->t_max[i] = (int)t;
        if (t > rows) rows = t;
        if (c->has_up[i]) {
            int64_t full = (t - 1) * c->stride[i + 1] + c->kernel[i + 1];
            if (full > rows) rows = full;
            t *= c->stride[i + 1];
        }
    }
    s->t_out_max = (int)t;
    const int P = c->patch_kernel - 1, P0 = c->kernel[0] - 1;
    const size_t D = (size_t)c->dim, Q = (size_t)c->n_heads * c->head_dim;
    const size_t KV = (size_t)c->n_kv_heads * c->head_dim, H = (size_t)c->hidden_dim;
    const size_t tr = (size_t)rows, fl = sizeof(float);
    s->lat_host = vox_malloc((size_t)max_frames * c->latent_dim * fl, err);
    if (!s->lat_host) goto fail;
    if (!(s->lat = st_alloc(s, (size_t)max_frames * c->latent_dim * fl, err))) goto fail;
    if (!(s->cbuf = st_alloc(s, (size_t)(P0 + max_frames) * c->latent_dim * fl, err))) goto fail;
    if (!(s->tail0 = st_alloc(s, (size_t)P0 * c->latent_dim * fl, err))) goto fail;
    if (!(s->xa = st_alloc(s, tr * D * fl, err))) goto fail;
    if (!(s->xb = st_alloc(s, tr * D * fl, err))) goto fail;
    if (!(s->h = st_alloc(s, tr * D * fl, err))) goto fail;
    if (!(s->o = st_alloc(s, tr * D * fl, err))) goto fail;
    if (!(s->q = st_alloc(s, tr * Q * fl, err))) goto fail;
    if (!(s->att = st_alloc(s, tr * Q * fl, err))) goto fail;
    if (!(s->k = st_alloc(s, tr * KV * fl, err))) goto fail;
    if (!(s->v = st_alloc(s, tr * KV * fl, err))) goto fail;
    if (!(s->g = st_alloc(s, tr * H * fl, err))) goto fail;
    if (!(s->u = st_alloc(s, tr * H * fl, err))) goto fail;
    for (int i = 0; i < c->n_stages; i++) {
        if (c->has_up[i] && !(s->carry[i] = st_alloc(
                                  s, (size_t)(c->kernel[i + 1] - c->stride[i + 1]) * D * fl, err)))
            goto fail;
        s->kv[i] = vox_calloc((size_t)c->n_layers[i], sizeof(vox_kv), err);
        if (!s->kv[i]) goto fail;
        const int64_t cap = c->window[i] + s->t_max[i];
        for (int l = 0; l < c->n_layers[i]; l++) {
            vox_kv *kv = &s->kv[i][l];
            kv->cap = cap;
            kv->kv_dim = (int)KV;
            if (!(kv->k = st_alloc(s, (size_t)cap * KV * fl, err))) goto fail;
            if (!(kv->v = st_alloc(s, (size_t)cap * KV * fl, err))) goto fail;
        }
    }
    const size_t orows = (size_t)(2 * P + s->t_out_max + 1);
    if (!(s->obuf = st_alloc(s, orows * D * fl, err))) goto fail;
    if (!(s->otail = st_alloc(s, (size_t)P * D * fl, err))) goto fail;
    if (!(s->pend = st_alloc(s, (size_t)(P + 1) * D * fl, err))) goto fail;
    if (!(s->oy = st_alloc(s, orows * (size_t)c->patch_size * fl, err))) goto fail;
    vox_codec_state_reset(s);
    return s;
fail:
    vox_codec_state_free(s);
    return NULL;
}

void vox_codec_state_set_tap(vox_codec_state *s, vox_codec_tap_fn fn, void *ctx) {
    s->tap = fn;
    s->tap_ctx = ctx;
}

/* ---- decode ----------------------------------------------------------------------------- */

#define CK(call)                                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_) return be_fail(be, err, rc_);                                                     \
    } while (0)

typedef struct {
    float *h, *o;   /* backend [chunk][dim] */
    float *q, *att; /* backend [chunk][Q] */
    float *k, *v;   /* backend [chunk][KV] */
    float *g, *u;   /* backend [chunk][hidden] */
} cl_scratch;

/* n_layers transformer layers in place on x[t][dim] at positions *pos .., in chunks of at most
 * `chunk` rows (each ring holds window + chunk keys); *pos advances by t. */
static int transformer(const vox_codec_model *m, const cl_layer *layers, int n_layers, int window,
                       vox_kv *rings, int64_t *pos, float *x, int t, int chunk, cl_scratch *w,
                       vox_error *err) {
    const vox_codec_config *c = &m->c;
    vox_backend *be = m->be;
    const vox_backend_ops *op = be->ops;
    const int D = c->dim, Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
    const int H = c->hidden_dim;
    const float scale = 1.0f / sqrtf((float)c->head_dim);
    for (int r0 = 0; r0 < t; r0 += chunk) {
        const int n = t - r0 < chunk ? t - r0 : chunk;
        float *xc = x + (int64_t)r0 * D;
        for (int l = 0; l < n_layers; l++) {
            const cl_layer *L = &layers[l];
            vox_kv *kv = &rings[l];
            CK(op->rmsnorm(be, w->h, xc, L->attn_norm, n, D, c->norm_eps));
            CK(op->matmul(be, w->q, w->h, &L->wq, NULL, n));
            CK(op->matmul(be, w->k, w->h, &L->wk, NULL, n));
            CK(op->matmul(be, w->v, w->h, &L->wv, NULL, n));
            if (c->qk_norm) {
                CK(op->rmsnorm(be, w->q, w->q, L->q_norm, n, Q, c->qk_norm_eps));
                CK(op->rmsnorm(be, w->k, w->k, L->k_norm, n, KV, c->qk_norm_eps));
            }
            CK(op->kv_write(be, kv, w->k, w->v, n, *pos));
            CK(op->attention_alibi(be, w->att, w->q, n, *pos, kv, c->n_heads, c->n_kv_heads,
                                   c->head_dim, window, scale, m->slopes));
            CK(op->matmul(be, w->o, w->att, &L->wo, NULL, n));
            if (c->layer_scale) CK(op->mul_rows(be, w->o, w->o, L->attn_scale, n, D));
            CK(op->add(be, xc, xc, w->o, (int64_t)n * D));
            CK(op->rmsnorm(be, w->h, xc, L->ffn_norm, n, D, c->norm_eps));
            CK(op->matmul(be, w->g, w->h, &L->w1, NULL, n));
            CK(op->matmul(be, w->u, w->h, &L->w3, NULL, n));
            CK(op->swiglu(be, w->g, w->g, w->u, (int64_t)n * H));
            CK(op->matmul(be, w->o, w->g, &L->w2, NULL, n));
            if (c->layer_scale) CK(op->mul_rows(be, w->o, w->o, L->ffn_scale, n, D));
            CK(op->add(be, xc, xc, w->o, (int64_t)n * D));
        }
        *pos += n;
    }
    return VOX_OK;
}

static void tap(vox_codec_state *s, int block, const float *x, int t, int c) {
    if (s->tap && t > 0) s->tap(s->tap_ctx, block, x, t, c);
}

/* Output conv over rows buf[0 .. P + m) (P padding rows first) -> m outputs, downloaded. */
static int out_conv(const vox_codec_model *m, vox_codec_state *s, int mrows, float *pcm,
                    int64_t *n_out, vox_error *err) {
    vox_backend *be = m->be;
    const vox_codec_config *c = &m->c;
    const int P = c->patch_kernel - 1;
    CK(be->ops->conv1d(be, s->oy, s->obuf, &m->outp.w, NULL, P + mrows, c->dim, c->patch_size,
                       c->patch_kernel, 1, 0));
    tap(s, m->n_blocks, s->oy, mrows, c->patch_size);
    CK(be->ops->download(be, pcm, s->oy, (size_t)mrows * c->patch_size * sizeof(float)));
    *n_out = (int64_t)mrows * c->patch_size;
    return VOX_OK;
}

int vox_codec_decode(const vox_codec_model *m, vox_codec_state *s, const int32_t *codes, int n,
                     float *pcm, int64_t *n_out, vox_error *err) {
    *n_out = 0;
    if (!m || !s || s->m != m || !codes || !pcm || n < 1 || n > s->max_frames)
        return vox_set_error(err, VOX_ERR_ARG,
                             "vox_codec_decode: n = %d frames, expected 1 .. %d (max_frames)", n,
                             s ? s->max_frames : 0);
    const vox_codec_config *c = &m->c;
    vox_backend *be = m->be;
    const vox_backend_ops *op = be->ops;
    const int nc = 1 + c->acoustic_dim, LD = c->latent_dim, D = c->dim;
    const size_t fl = sizeof(float);
    /* dequantize on the host: [codebook row | FSQ levels] */
    for (int f = 0; f < n; f++) {
        const int32_t *cf = codes + (int64_t)f * nc;
        float *row = s->lat_host + (int64_t)f * LD;
        if (cf[0] < 0 || cf[0] >= c->semantic_size)
            return vox_set_error(err, VOX_ERR_ARG,
                                 "vox_codec_decode: frame %d: semantic code %d, expected 0 .. %d",
                                 f, cf[0], c->semantic_size - 1);
        memcpy(row, m->codebook_host + (int64_t)cf[0] * c->semantic_dim,
               (size_t)c->semantic_dim * fl);
        for (int a = 0; a < c->acoustic_dim; a++) {
            const int32_t q = cf[1 + a];
            if (q < 0 || q >= c->acoustic_size)
                return vox_set_error(
                    err, VOX_ERR_ARG,
                    "vox_codec_decode: frame %d: acoustic code %d = %d, expected 0 "
                    ".. %d",
                    f, a, q, c->acoustic_size - 1);
            row[c->semantic_dim + a] = (float)(2 * q) / (float)(c->acoustic_size - 1) - 1.0f;
        }
    }
    CK(op->upload(be, s->lat, s->lat_host, (size_t)n * LD * fl));
    /* block 0: causal conv, replicate left padding (P0 copies of frame 0) */
    const int P0 = c->kernel[0] - 1;
    if (!s->primed0) {
        for (int r = 0; r < P0; r++)
            CK(op->copy(be, s->tail0 + (int64_t)r * LD, s->lat, (size_t)LD * fl));
        s->primed0 = 1;
    }
    CK(op->copy(be, s->cbuf, s->tail0, (size_t)P0 * LD * fl));
    CK(op->copy(be, s->cbuf + (int64_t)P0 * LD, s->lat, (size_t)n * LD * fl));
    CK(op->conv1d(be, s->xa, s->cbuf, &m->conv0.w, NULL, P0 + n, LD, D, c->kernel[0], 1, 0));
    CK(op->copy(be, s->tail0, s->cbuf + (int64_t)n * LD, (size_t)P0 * LD * fl));
    tap(s, 0, s->xa, n, D);
    float *x = s->xa, *y = s->xb;
    int t = n;
    for (int i = 0; i < c->n_stages; i++) {
        cl_scratch w = {s->h, s->o, s->q, s->att, s->k, s->v, s->g, s->u};
        int rc = transformer(m, m->layers[i], c->n_layers[i], c->window[i], s->kv[i], &s->pos[i], x,
                             t, s->t_max[i], &w, err);
        if (rc) return rc;
        tap(s, m->block_of_stage[i], x, t, D);
        if (!c->has_up[i]) continue;
        const int k = c->kernel[i + 1], st = c->stride[i + 1], ov = k - st;
        CK(op->conv_transpose1d(be, y, x, &m->up[i].w, NULL, t, D, D, k, st));
        if (ov > 0) {
            CK(op->add(be, y, y, s->carry[i], (int64_t)ov * D));
            CK(op->copy(be, s->carry[i], y + (int64_t)t * st * D, (size_t)ov * D * fl));
        }
        t *= st;
        float *tmp = x;
        x = y;
        y = tmp;
        tap(s, m->block_of_up[i], x, t, D);
    }
    /* output conv, reflect left padding */
    const int P = c->patch_kernel - 1;
    if (s->primedo || P == 0) {
        CK(op->copy(be, s->obuf, s->otail, (size_t)P * D * fl));
        CK(op->copy(be, s->obuf + (int64_t)P * D, x, (size_t)t * D * fl));
        CK(op->copy(be, s->otail, s->obuf + (int64_t)t * D, (size_t)P * D * fl));
        s->primedo = 1;
        return out_conv(m, s, t, pcm, n_out, err);
    }
    /* not primed: rows so far = pending + x */
    const int mrows = s->n_pend + t;
    float *comb = s->obuf + (int64_t)P * D;
    CK(op->copy(be, comb, s->pend, (size_t)s->n_pend * D * fl));
    CK(op->copy(be, comb + (int64_t)s->n_pend * D, x, (size_t)t * D * fl));
    if (mrows < P + 1) {
        CK(op->copy(be, s->pend, comb, (size_t)mrows * D * fl));
        s->n_pend = mrows;
        return VOX_OK;
    }
    for (int j = 0; j < P; j++)
        CK(op->copy(be, s->obuf + (int64_t)j * D, comb + (int64_t)(P - j) * D, (size_t)D * fl));
    CK(op->copy(be, s->otail, s->obuf + (int64_t)mrows * D, (size_t)P * D * fl));
    s->primedo = 1;
    s->n_pend = 0;
    return out_conv(m, s, mrows, pcm, n_out, err);
}

int vox_codec_finish(const vox_codec_model *m, vox_codec_state *s, float *pcm, int64_t *n_out,
                     vox_error *err) {
    *n_out = 0;
    if (!m || !s || s->m != m || !pcm)
        return vox_set_error(err, VOX_ERR_ARG, "vox_codec_finish: NULL");
    if (s->primedo || s->n_pend == 0) return VOX_OK;
    /* upstream pad1d: an input no longer than the pad is first extended with zeros to pad + 1
     * rows, reflected, and cut back */
    vox_backend *be = m->be;
    const vox_codec_config *c = &m->c;
    const int P = c->patch_kernel - 1, D = c->dim, mr = s->n_pend;
    const size_t fl = sizeof(float);
    float *comb = s->obuf + (int64_t)P * D;
    CK(be->ops->copy(be, comb, s->pend, (size_t)mr * D * fl));
    for (int j = 0; j < P; j++) {
        float *dst = s->obuf + (int64_t)j * D;
        const int src = P - j; /* row of the zero-extended input */
        if (src < mr)
            CK(be->ops->copy(be, dst, comb + (int64_t)src * D, (size_t)D * fl));
        else
            CK(be->ops->zero(be, dst, (size_t)D * fl));
    }
    s->n_pend = 0;
    s->primedo = 1;
    return out_conv(m, s, mr, pcm, n_out, err);
}

int vox_codec_ids_to_codes(const vox_codec_config *c, const int32_t *ids, int n, int32_t *codes,
                           int *n_valid, vox_error *err) {
    const int nc = 1 + c->acoustic_dim;
    *n_valid = 0;
    for (int f = 0; f < n; f++) {
        const int32_t *in = ids + (int64_t)f * nc;
        if (in[0] == 1) return VOX_OK; /* END_AUDIO */
        for (int j = 0; j < nc; j++) {
            const int lim = j == 0 ? c->semantic_size : c->acoustic_size;
            const int v = in[j] - 2;
            if (v < 0 || v >= lim)
                return vox_set_error(err, VOX_ERR_ARG,
                                     "audio frame %d codebook %d: id %d, expected 2 .. %d", f, j,
                                     in[j], lim + 1);
            codes[(int64_t)f * nc + j] = v;
        }
        *n_valid = f + 1;
    }
    return VOX_OK;
}

/* ---- encoder (whole utterance) ----------------------------------------------------------- */

int vox_codec_has_encoder(const vox_codec_model *m) {
    return m && m->has_encoder;
}

int64_t vox_codec_encode_frames(const vox_codec_model *m, int64_t n_samples) {
    const vox_codec_config *c = &m->c;
    int64_t t = (n_samples + c->patch_size - 1) / c->patch_size;
    for (int i = 0; i < c->enc_n_stages; i++)
        if (c->enc_has_conv[i]) t = (t + c->enc_stride[i] - 1) / c->enc_stride[i];
    return t;
}

#define ENC_CHUNK 64

typedef struct {
    vox_backend *be;
    void *p[64];
    int n;
} enc_mem;

static void *enc_alloc(enc_mem *em, size_t bytes, vox_error *err) {
    if (em->n == 64) {
        vox_set_error(err, VOX_ERR_NOMEM, "codec encode: too many buffers");
        return NULL;
    }
    void *d = em->be->ops->alloc(em->be, bytes ? bytes : sizeof(float));
    if (!d) {
        be_fail(em->be, err, VOX_ERR_NOMEM);
        return NULL;
    }
    return em->p[em->n++] = d;
}

static int encode_run(const vox_codec_model *m, enc_mem *em, const float *pcm, int64_t n_samples,
                      int32_t *codes, float *latent, int64_t T, vox_error *err) {
    const vox_codec_config *c = &m->c;
    vox_backend *be = m->be;
    const vox_backend_ops *op = be->ops;
    const int P = c->patch_size, PI = c->patch_kernel - 1, D = c->dim, LD = c->latent_dim;
    const int64_t T0 = (n_samples + P - 1) / P;
    const size_t fl = sizeof(float);
    int kmax = c->patch_kernel;
    for (int i = 0; i < c->enc_n_stages; i++)
        if (c->enc_kernel[i] > kmax) kmax = c->enc_kernel[i];
    const int64_t rows = T0 + 2 * kmax + 2;
    const int64_t width = D > P ? (D > LD ? D : LD) : (P > LD ? P : LD);
    float *bx = enc_alloc(em, (size_t)rows * width * fl, err);
    float *by = bx ? enc_alloc(em, (size_t)rows * width * fl, err) : NULL;
    const size_t C = ENC_CHUNK, Q = (size_t)c->n_heads * c->head_dim;
    const size_t KV = (size_t)c->n_kv_heads * c->head_dim;
    cl_scratch w = {0};
    if (!by || !(w.h = enc_alloc(em, C * D * fl, err)) || !(w.o = enc_alloc(em, C * D * fl, err)) ||
        !(w.q = enc_alloc(em, C * Q * fl, err)) || !(w.att = enc_alloc(em, C * Q * fl, err)) ||
        !(w.k = enc_alloc(em, C * KV * fl, err)) || !(w.v = enc_alloc(em, C * KV * fl, err)) ||
        !(w.g = enc_alloc(em, C * c->hidden_dim * fl, err)) ||
        !(w.u = enc_alloc(em, C * c->hidden_dim * fl, err)))
        return err && err->code ? err->code : VOX_ERR_NOMEM;
    int max_layers = 1, max_window = 1;
    for (int i = 0; i < c->enc_n_stages; i++) {
        if (c->enc_layers[i] > max_layers) max_layers = c->enc_layers[i];
        if (c->enc_window[i] > max_window) max_window = c->enc_window[i];
    }
    const int64_t cap = max_window + (int64_t)C;
    vox_kv rings[16];
    if (max_layers > 16)
        return vox_set_error(err, VOX_ERR_UNSUPPORTED, "codec encode: %d layers per stage > 16",
                             max_layers);
    for (int l = 0; l < max_layers; l++) {
        rings[l] = (vox_kv){.cap = cap, .kv_dim = (int)KV};
        if (!(rings[l].k = enc_alloc(em, (size_t)cap * KV * fl, err)) ||
            !(rings[l].v = enc_alloc(em, (size_t)cap * KV * fl, err)))
            return err && err->code ? err->code : VOX_ERR_NOMEM;
    }
    float *host = vox_malloc((size_t)(PI + (T0 > PI ? T0 : PI + 1)) * P * fl, err);
    float *sem =
        host ? vox_malloc((size_t)T * (c->semantic_dim > LD ? c->semantic_dim : LD) * fl, err)
             : NULL;
    float *lat = sem ? (latent ? latent : vox_malloc((size_t)T * LD * fl, err)) : NULL;
    int32_t *ids = lat ? vox_malloc((size_t)T * sizeof(int32_t), err) : NULL;
    float *dsem = NULL, *dsc = NULL;
    int rc = ids ? VOX_OK : VOX_ERR_NOMEM;
    if (!rc && (!(dsem = enc_alloc(em, (size_t)T * c->semantic_dim * fl, err)) ||
                !(dsc = enc_alloc(em, (size_t)T * c->semantic_size * fl, err))))
        rc = err && err->code ? err->code : VOX_ERR_NOMEM;
    if (rc) goto done;
    /* patches, zero-padded to T0 * P samples; reflect left padding of input_proj (pad1d: an
     * input of <= PI rows is first extended with zero rows to PI + 1) */
    {
        const int64_t ext = T0 > PI ? T0 : PI + 1; /* rows of the (zero-extended) input */
        float *xin = host + (int64_t)PI * P;
        memset(xin, 0, (size_t)ext * P * fl);
        memcpy(xin, pcm, (size_t)n_samples * fl);
        for (int j = 0; j < PI; j++)
            memcpy(host + (int64_t)j * P, xin + (int64_t)(PI - j) * P, (size_t)P * fl);
        if ((rc = op->upload(be, bx, host, (size_t)(PI + T0) * P * fl))) goto be_err;
        if ((rc = op->conv1d(be, by, bx, &m->inproj.w, NULL, (int)(PI + T0), P, D, c->patch_kernel,
                             1, 0)))
            goto be_err;
    }
    float *x = by, *y = bx;
    int64_t L = T0;
    for (int i = 0; i < c->enc_n_stages; i++) {
        for (int l = 0; l < c->enc_layers[i]; l++)
            rings[l].end = 0;
        int64_t pos = 0;
        rc = transformer(m, m->enc_layers[i], c->enc_layers[i], c->enc_window[i], rings, &pos, x,
                         (int)L, (int)C, &w, err);
        if (rc) goto done;
        if (!c->enc_has_conv[i]) continue;
        /* CausalConv1d, replicate: pad_left = k - s copies of row 0, extra right copies of the
         * last row up to ceil(L / s) * s rows */
        const cl_conv *cv = &m->enc_conv[i];
        const int k = cv->k, s = cv->stride, pl = k - s;
        const int64_t nf = (L + s - 1) / s, extra = nf * s - L;
        for (int r = 0; r < pl; r++)
            if ((rc = op->copy(be, y + (int64_t)r * D, x, (size_t)D * fl))) goto be_err;
        if ((rc = op->copy(be, y + (int64_t)pl * D, x, (size_t)L * D * fl))) goto be_err;
        for (int64_t r = 0; r < extra; r++)
            if ((rc = op->copy(be, y + (pl + L + r) * D, x + (L - 1) * D, (size_t)D * fl)))
                goto be_err;
        if ((rc = op->conv1d(be, x, y, &cv->w, NULL, (int)(pl + L + extra), D, cv->c_out, k, s, 0)))
            goto be_err;
        L = nf;
    }
    if (L != T) {
        rc = vox_set_error(err, VOX_ERR_FORMAT, "codec encode: %lld frames, expected %lld",
                           (long long)L, (long long)T);
        goto done;
    }
    if ((rc = op->download(be, lat, x, (size_t)T * LD * fl))) goto be_err;
    /* semantic: argmax of x.c - |c|^2 / 2 == argmin |x - c| */
    for (int64_t t = 0; t < T; t++)
        memcpy(sem + t * c->semantic_dim, lat + t * LD, (size_t)c->semantic_dim * fl);
    if ((rc = op->upload(be, dsem, sem, (size_t)T * c->semantic_dim * fl))) goto be_err;
    if ((rc = op->matmul(be, dsc, dsem, &m->codebook, m->cb_bias, (int)T))) goto be_err;
    if ((rc = op->argmax(be, ids, dsc, (int)T, c->semantic_size))) goto be_err;
    const int nc = 1 + c->acoustic_dim;
    for (int64_t t = 0; t < T; t++) {
        codes[t * nc] = ids[t];
        for (int a = 0; a < c->acoustic_dim; a++) {
            const float v = tanhf(lat[t * LD + c->semantic_dim + a]);
            const float sc = (v + 1.0f) / 2.0f * (float)(c->acoustic_size - 1);
            codes[t * nc + 1 + a] = (int32_t)nearbyintf(sc); /* half to even, as torch.round */
        }
    }
    goto done;
be_err:
    be_fail(be, err, rc);
done:
    free(host);
    free(sem);
    if (lat != latent) free(lat);
    free(ids);
    return rc;
}

int vox_codec_encode(const vox_codec_model *m, const float *pcm, int64_t n_samples, int32_t *codes,
                     float *latent, int max_frames, int *n_frames, vox_error *err) {
    *n_frames = 0;
    if (!m || !pcm || !codes || n_samples < 1)
        return vox_set_error(err, VOX_ERR_ARG, "vox_codec_encode: NULL input or no samples");
    if (!m->has_encoder)
        return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                             "vox_codec_encode: the model file has no encoder weights "
                             "(audio_tokenizer.input_proj.*; absent from the released checkpoint)");
    const int64_t T = vox_codec_encode_frames(m, n_samples);
    if (T > max_frames || T > (1 << 24))
        return vox_set_error(err, VOX_ERR_ARG, "vox_codec_encode: %lld frames, max_frames %d",
                             (long long)T, max_frames);
    enc_mem em = {.be = m->be};
    int rc = encode_run(m, &em, pcm, n_samples, codes, latent, T, err);
    for (int i = 0; i < em.n; i++)
        m->be->ops->free(m->be, em.p[i]);
    if (!rc) *n_frames = (int)T;
    return rc;
}
