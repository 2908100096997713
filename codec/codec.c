/* codec.c - Voxtral Codec decoder: load, config, whole-utterance and incremental decode
 * (see vox_codec.h). All math goes through the backend ops, except the ALiBi attention
 * (vox_codec_ops.h, a CPU reference until the backend has the op) and the host-side
 * dequantization table lookup. */
#include "vox_codec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_codec_ops.h"
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
    float *slopes_host;   /* [n_heads] */
    void **owned;         /* backend allocations */
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
    for (int i = 0; i < nel; i++) {
        enc_prod *= es[i];
        int conv = ek[i] != 1 || es[i] != 1 || i == nel - 1;
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

static int layer(vox_codec_model *m, const vox_st_file *st, int blk, int l, cl_layer *L,
                 vox_error *err) {
    const vox_codec_config *c = &m->c;
    const int64_t D = c->dim, Q = (int64_t)c->n_heads * c->head_dim;
    const int64_t KV = (int64_t)c->n_kv_heads * c->head_dim, H = c->hidden_dim;
    char p[128], n[256];
    snprintf(p, sizeof p, TK "decoder_blocks.%d.layers.%d.", blk, l);
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
            if ((rc = layer(m, st, blk, l, &m->layers[i][l], err))) return rc;
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
    m->slopes_host = vox_malloc((size_t)c->n_heads * sizeof(float), err);
    if (!m->slopes_host) return VOX_ERR_NOMEM;
    for (int h = 0; h < c->n_heads; h++)
        m->slopes_host[h] = vox_codec_alibi_slope(h, c->n_heads);
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
    if (!rc && !m->map_weights)
        rc =
            vox_set_error(err, VOX_ERR_UNSUPPORTED,
                          "codec: backend '%s' has no ALiBi attention op yet (CPU only)", be->name);
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
    for (int i = 0; i < VOX_CODEC_MAX_STAGES; i++)
        free(m->layers[i]);
    free(m->codebook_host);
    free(m->slopes_host);
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
    float *scores; /* host [max cap] */
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
    free(s->scores);
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
    int64_t t = max_frames, rows = max_frames, cap_max = 1;
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
        if (cap > cap_max) cap_max = cap;
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
    s->scores = vox_malloc((size_t)cap_max * fl, err);
    if (!s->scores) goto fail;
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

static int transformer(const vox_codec_model *m, vox_codec_state *s, int i, float *x, int t,
                       vox_error *err) {
    const vox_codec_config *c = &m->c;
    vox_backend *be = m->be;
    const vox_backend_ops *op = be->ops;
    const int D = c->dim, Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
    const int H = c->hidden_dim;
    const float scale = 1.0f / sqrtf((float)c->head_dim);
    for (int l = 0; l < c->n_layers[i]; l++) {
        const cl_layer *L = &m->layers[i][l];
        vox_kv *kv = &s->kv[i][l];
        CK(op->rmsnorm(be, s->h, x, L->attn_norm, t, D, c->norm_eps));
        CK(op->matmul(be, s->q, s->h, &L->wq, NULL, t));
        CK(op->matmul(be, s->k, s->h, &L->wk, NULL, t));
        CK(op->matmul(be, s->v, s->h, &L->wv, NULL, t));
        if (c->qk_norm) {
            CK(op->rmsnorm(be, s->q, s->q, L->q_norm, t, Q, c->qk_norm_eps));
            CK(op->rmsnorm(be, s->k, s->k, L->k_norm, t, KV, c->qk_norm_eps));
        }
        CK(op->kv_write(be, kv, s->k, s->v, t, s->pos[i]));
        CK(op->sync(be));
        CK(vox_codec_alibi_attention_ref(be, s->att, s->q, t, s->pos[i], kv, c->n_heads,
                                         c->n_kv_heads, c->head_dim, c->window[i], scale,
                                         m->slopes_host, s->scores));
        CK(op->matmul(be, s->o, s->att, &L->wo, NULL, t));
        if (c->layer_scale)
            for (int r = 0; r < t; r++)
                CK(op->mul(be, s->o + (int64_t)r * D, s->o + (int64_t)r * D, L->attn_scale, D));
        CK(op->add(be, x, x, s->o, (int64_t)t * D));
        CK(op->rmsnorm(be, s->h, x, L->ffn_norm, t, D, c->norm_eps));
        CK(op->matmul(be, s->g, s->h, &L->w1, NULL, t));
        CK(op->matmul(be, s->u, s->h, &L->w3, NULL, t));
        CK(op->swiglu(be, s->g, s->g, s->u, (int64_t)t * H));
        CK(op->matmul(be, s->o, s->g, &L->w2, NULL, t));
        if (c->layer_scale)
            for (int r = 0; r < t; r++)
                CK(op->mul(be, s->o + (int64_t)r * D, s->o + (int64_t)r * D, L->ffn_scale, D));
        CK(op->add(be, x, x, s->o, (int64_t)t * D));
    }
    s->pos[i] += t;
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
        int rc = transformer(m, s, i, x, t, err);
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
