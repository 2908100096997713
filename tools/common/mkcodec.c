/* mkcodec.c - random Voxtral Codec weights in the upstream layout (see vox_mkcodec.h). */
#define _POSIX_C_SOURCE 200809L
#include "vox_mkcodec.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vox_hd.h"

enum { G_WN_G, G_WN_V, G_LINEAR, G_NORM, G_SCALE, G_USAGE, G_ESUM };

typedef struct {
    char name[160];
    int kind;
    int ndim;
    int64_t shape[3];
    float amp;     /* G_LINEAR: uniform half-width */
    uint64_t key;  /* per-tensor stream */
    uint64_t ukey; /* G_ESUM: the cluster_usage stream */
    int64_t cols;  /* G_ESUM: row length */
    vox_dtype dtype;
} mc_tensor;

struct vox_mkcodec_gen {
    mc_tensor *t;
    int n, cap;
};

void vox_mkcodec_gen_free(vox_mkcodec_gen *g) {
    if (!g) return;
    free(g->t);
    free(g);
}

void vox_mkcodec_defaults(vox_mkcodec_opts *o, int full) {
    memset(o, 0, sizeof *o);
    o->seed = 1234;
    o->norm_eps = 0.01;
    o->qk_norm_eps = 1e-6;
    o->layer_scale_init = 0.01;
    o->window = 16;
    snprintf(o->kernels, sizeof o->kernels, "3,4,4,4");
    snprintf(o->strides, sizeof o->strides, "1,2,2,2");
    snprintf(o->enc_lengths, sizeof o->enc_lengths, full ? "2,2,2,2" : "1,1,1,1");
    snprintf(o->enc_kernels, sizeof o->enc_kernels, "4,4,4,3");
    snprintf(o->enc_strides, sizeof o->enc_strides, "2,2,2,1");
    if (full) {
        o->dtype = VOX_DT_BF16;
        o->patch_size = 240;
        o->patch_kernel = 7;
        o->semantic_size = 8192;
        o->semantic_dim = 256;
        o->acoustic_size = 21;
        o->acoustic_dim = 36;
        o->dim = 1024;
        o->hidden_dim = 4096;
        o->head_dim = 128;
        o->n_heads = 8;
        o->n_kv_heads = 8;
        snprintf(o->lengths, sizeof o->lengths, "2,2,2,2");
    } else {
        o->dtype = VOX_DT_F32;
        o->patch_size = 8;
        o->patch_kernel = 7;
        o->semantic_size = 64;
        o->semantic_dim = 8;
        o->acoustic_size = 9;
        o->acoustic_dim = 5;
        o->dim = 48;
        o->hidden_dim = 80;
        o->head_dim = 12; /* != dim / n_heads */
        o->n_heads = 6;   /* not a power of two: the interleaved ALiBi slope rule */
        o->n_kv_heads = 3;
        snprintf(o->lengths, sizeof o->lengths, "2,1,1,2");
    }
}

static int parse_list(const char *s, int *out, int cap, int *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 64 || *n >= cap) return -1;
        out[(*n)++] = (int)v;
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return *n > 0 ? 0 : -1;
}

int vox_mkcodec_check(const vox_mkcodec_opts *o, vox_error *err) {
    if (o->dtype != VOX_DT_F32 && o->dtype != VOX_DT_BF16)
        return vox_set_error(err, VOX_ERR_ARG, "mkcodec: dtype must be F32 or BF16");
    const int pos[] = {o->patch_size,    o->patch_kernel, o->semantic_size, o->semantic_dim,
                       o->acoustic_size, o->acoustic_dim, o->dim,           o->hidden_dim,
                       o->head_dim,      o->n_heads,      o->n_kv_heads,    o->window};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i] <= 0) return vox_set_error(err, VOX_ERR_ARG, "mkcodec: option %zu <= 0", i);
    if (o->n_heads % o->n_kv_heads)
        return vox_set_error(err, VOX_ERR_ARG,
                             "mkcodec: n_heads %d not a multiple of n_kv_heads %d", o->n_heads,
                             o->n_kv_heads);
    if (o->semantic_size < 2)
        return vox_set_error(err, VOX_ERR_ARG, "mkcodec: semantic_size must be >= 2");
    int a[16], b[16], c[16], na, nb, nc;
    if (parse_list(o->lengths, a, 16, &na) || parse_list(o->kernels, b, 16, &nb) ||
        parse_list(o->strides, c, 16, &nc) || na != nb || na != nc ||
        parse_list(o->enc_lengths, a, 16, &na) || parse_list(o->enc_kernels, b, 16, &nb) ||
        parse_list(o->enc_strides, c, 16, &nc) || na != nb || na != nc)
        return vox_set_error(err, VOX_ERR_ARG,
                             "mkcodec: lengths/kernels/strides '%s' '%s' '%s': expected comma "
                             "lists of equal length",
                             o->lengths, o->kernels, o->strides);
    return VOX_OK;
}

char *vox_mkcodec_params_json(const vox_mkcodec_opts *o, vox_error *err) {
    size_t cap = 4096;
    char *s = vox_malloc(cap, err);
    if (!s) return NULL;
    int n = snprintf(
        s, cap,
        "{\"channels\": 1, \"sampling_rate\": 24000, \"pretransform_patch_size\": %d, "
        "\"patch_proj_kernel_size\": %d, \"semantic_codebook_size\": %d, \"semantic_dim\": %d, "
        "\"acoustic_codebook_size\": %d, \"acoustic_dim\": %d, \"conv_weight_norm\": true, "
        "\"causal\": true, \"attn_sliding_window_size\": %d, "
        "\"half_attn_window_upon_downsampling\": true, \"dim\": %d, \"hidden_dim\": %d, "
        "\"head_dim\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, \"qk_norm_eps\": %.17g, "
        "\"qk_norm\": true, \"use_biases\": false, \"norm_eps\": %.17g, \"layer_scale\": true, "
        "\"layer_scale_init\": %.17g, \"decoder_transformer_lengths_str\": \"%s\", "
        "\"decoder_convs_kernels_str\": \"%s\", \"decoder_convs_strides_str\": \"%s\"}",
        o->patch_size, o->patch_kernel, o->semantic_size, o->semantic_dim, o->acoustic_size,
        o->acoustic_dim, o->window, o->dim, o->hidden_dim, o->head_dim, o->n_heads, o->n_kv_heads,
        o->qk_norm_eps, o->norm_eps, o->layer_scale_init, o->lengths, o->kernels, o->strides);
    if (n > 0 && (size_t)n < cap && o->with_encoder) {
        n--; /* drop the closing brace */
        n += snprintf(
            s + n, cap - (size_t)n,
            ", \"encoder_transformer_lengths_str\": \"%s\", \"encoder_convs_kernels_str\": "
            "\"%s\", \"encoder_convs_strides_str\": \"%s\"}",
            o->enc_lengths, o->enc_kernels, o->enc_strides);
    }
    if (n < 0 || (size_t)n >= cap) {
        free(s);
        vox_set_error(err, VOX_ERR_ARG, "mkcodec: params JSON too long");
        return NULL;
    }
    return s;
}

static uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* uniform in [0, 1) from (key, index) */
static double u01(uint64_t key, int64_t e) {
    uint64_t r = splitmix64(key + (uint64_t)e * 0xd1b54a32d192ed03ull);
    return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

static float usage_value(uint64_t ukey, int64_t row) {
    if (row == 1) return 0.0f;
    return (float)(0.5 + 2.5 * u01(ukey, row));
}

static float value(const mc_tensor *t, int64_t e) {
    double u = u01(t->key, e);
    switch (t->kind) {
    case G_WN_G: {
        double m = 0.5 + u01(t->key ^ 0x5a5a5a5aull, e);
        return (float)(u < 0.5 ? -m : m);
    }
    case G_WN_V: return (float)(2.0 * u - 1.0);
    case G_LINEAR: return (float)(t->amp * (2.0 * u - 1.0));
    case G_NORM: return (float)(0.8 + 0.4 * u);
    case G_SCALE: {
        double m = 0.1 + 0.4 * u01(t->key ^ 0x5a5a5a5aull, e);
        return (float)(u < 0.5 ? -m : m);
    }
    case G_USAGE: return usage_value(t->key, e);
    case G_ESUM: {
        int64_t row = e / t->cols;
        float us = usage_value(t->ukey, row);
        if (row == 1) us = 1e-5f;
        return (float)(us * (2.0 * u - 1.0));
    }
    }
    return 0.0f;
}

static int gen_fn(void *ctx, void *buf, int64_t first, int64_t n, vox_error *err) {
    (void)err;
    const mc_tensor *t = ctx;
    if (t->dtype == VOX_DT_F32) {
        float *o = buf;
        for (int64_t i = 0; i < n; i++)
            o[i] = value(t, first + i);
    } else {
        uint16_t *o = buf;
        for (int64_t i = 0; i < n; i++)
            o[i] = vox_f32_to_bf16(value(t, first + i));
    }
    return VOX_OK;
}

static mc_tensor *add(vox_mkcodec_gen *g, const vox_mkcodec_opts *o, int kind, int ndim, int64_t d0,
                      int64_t d1, int64_t d2, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

static mc_tensor *add(vox_mkcodec_gen *g, const vox_mkcodec_opts *o, int kind, int ndim, int64_t d0,
                      int64_t d1, int64_t d2, const char *fmt, ...) {
    if (g->n >= g->cap) return NULL;
    mc_tensor *t = &g->t[g->n++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->kind = kind;
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->shape[2] = d2;
    t->dtype = o->dtype;
    if (kind == G_LINEAR) t->amp = (float)(sqrt(3.0) / sqrt((double)d1));
    t->key = splitmix64(o->seed ^ 0x766f782d636f6463ull) ^ fnv1a(t->name);
    return t;
}

#define P "audio_tokenizer."

static void add_layers(vox_mkcodec_gen *g, const vox_mkcodec_opts *o, const char *group, int blk,
                       int n_layers) {
    const int64_t D = o->dim, Q = (int64_t)o->n_heads * o->head_dim;
    const int64_t KV = (int64_t)o->n_kv_heads * o->head_dim, H = o->hidden_dim;
    for (int l = 0; l < n_layers; l++) {
        char p[96];
        snprintf(p, sizeof p, P "%s.%d.layers.%d.", group, blk, l);
        add(g, o, G_LINEAR, 2, Q, D, 0, "%sattention.wq.weight", p);
        add(g, o, G_LINEAR, 2, KV, D, 0, "%sattention.wk.weight", p);
        add(g, o, G_LINEAR, 2, KV, D, 0, "%sattention.wv.weight", p);
        add(g, o, G_LINEAR, 2, D, Q, 0, "%sattention.wo.weight", p);
        add(g, o, G_NORM, 1, Q, 0, 0, "%sattention.q_norm.weight", p);
        add(g, o, G_NORM, 1, KV, 0, 0, "%sattention.k_norm.weight", p);
        add(g, o, G_NORM, 1, D, 0, 0, "%sattention_norm.weight", p);
        add(g, o, G_NORM, 1, D, 0, 0, "%sffn_norm.weight", p);
        add(g, o, G_LINEAR, 2, H, D, 0, "%sfeed_forward.w1.weight", p);
        add(g, o, G_LINEAR, 2, D, H, 0, "%sfeed_forward.w2.weight", p);
        add(g, o, G_LINEAR, 2, H, D, 0, "%sfeed_forward.w3.weight", p);
        add(g, o, G_SCALE, 1, D, 0, 0, "%sattention_scale", p);
        add(g, o, G_SCALE, 1, D, 0, 0, "%sffn_scale", p);
    }
}
#define WN ".conv.parametrizations.weight.original"

int vox_mkcodec_add_tensors(vox_stw *w, const vox_mkcodec_opts *o, vox_mkcodec_gen **out,
                            vox_error *err) {
    *out = NULL;
    int rc = vox_mkcodec_check(o, err);
    if (rc) return rc;
    int len[16], ker[16], str[16], n;
    parse_list(o->lengths, len, 16, &n);
    parse_list(o->kernels, ker, 16, &n);
    parse_list(o->strides, str, 16, &n);
    int cap = 2 + 2 + 4;
    for (int i = 0; i < n; i++)
        cap += 13 * len[i] + 2;
    int elen[16], eker[16], estr[16], en = 0;
    if (o->with_encoder) {
        parse_list(o->enc_lengths, elen, 16, &en);
        parse_list(o->enc_kernels, eker, 16, &en);
        parse_list(o->enc_strides, estr, 16, &en);
        cap += 2;
        for (int i = 0; i < en; i++)
            cap += 13 * elen[i] + 2;
    }
    vox_mkcodec_gen *g = vox_calloc(1, sizeof *g, err);
    if (!g) return VOX_ERR_NOMEM;
    g->t = vox_calloc((size_t)cap, sizeof *g->t, err);
    if (!g->t) {
        free(g);
        return VOX_ERR_NOMEM;
    }
    g->cap = cap;
    const int64_t D = o->dim;
    const int64_t latent = o->semantic_dim + o->acoustic_dim;
    if (o->with_encoder) {
        add(g, o, G_WN_G, 3, D, 1, 1, P "input_proj" WN "0");
        add(g, o, G_WN_V, 3, D, o->patch_size, o->patch_kernel, P "input_proj" WN "1");
        int eb = 0;
        for (int i = 0; i < en; i++) {
            add_layers(g, o, "encoder_blocks", eb++, elen[i]);
            int last = i == en - 1;
            if (eker[i] != 1 || estr[i] != 1 || last) {
                int64_t out = last ? latent : D;
                add(g, o, G_WN_G, 3, out, 1, 1, P "encoder_blocks.%d" WN "0", eb);
                add(g, o, G_WN_V, 3, out, D, eker[i], P "encoder_blocks.%d" WN "1", eb);
                eb++;
            }
        }
    }
    int blk = 0;
    add(g, o, G_WN_G, 3, D, 1, 1, P "decoder_blocks.%d" WN "0", blk);
    add(g, o, G_WN_V, 3, D, latent, ker[0], P "decoder_blocks.%d" WN "1", blk);
    blk++;
    for (int i = 0; i < n; i++) {
        add_layers(g, o, "decoder_blocks", blk, len[i]);
        blk++;
        if (i + 1 < n && (ker[i + 1] != 1 || str[i + 1] != 1)) {
            add(g, o, G_WN_G, 3, D, 1, 1, P "decoder_blocks.%d" WN "0", blk);
            add(g, o, G_WN_V, 3, D, D, ker[i + 1], P "decoder_blocks.%d" WN "1", blk);
            blk++;
        }
    }
    add(g, o, G_WN_G, 3, o->patch_size, 1, 1, P "output_proj" WN "0");
    add(g, o, G_WN_V, 3, o->patch_size, D, o->patch_kernel, P "output_proj" WN "1");
    mc_tensor *u = add(g, o, G_USAGE, 1, o->semantic_size, 0, 0,
                       P "quantizer.semantic_codebook.cluster_usage");
    mc_tensor *es = add(g, o, G_ESUM, 2, o->semantic_size, o->semantic_dim, 0,
                        P "quantizer.semantic_codebook.embedding_sum");
    es->ukey = u->key;
    es->cols = o->semantic_dim;
    for (int i = 0; i < g->n; i++) {
        rc = vox_stw_add_gen(w, g->t[i].name, g->t[i].dtype, g->t[i].ndim, g->t[i].shape, gen_fn,
                             &g->t[i], err);
        if (rc) {
            vox_mkcodec_gen_free(g);
            return rc;
        }
    }
    *out = g;
    return VOX_OK;
}

static int mkdir_p(const char *dir, vox_error *err) {
    size_t l = strlen(dir);
    if (l == 0 || l >= 4096)
        return vox_set_error(err, VOX_ERR_ARG, "bad output directory '%s'", dir);
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
    return VOX_OK;
}

int vox_mkcodec_write_dir(const char *dir, const vox_mkcodec_opts *o, vox_error *err) {
    int rc = vox_mkcodec_check(o, err);
    if (rc) return rc;
    rc = mkdir_p(dir, err);
    if (rc) return rc;
    char path[4200];
    char *js = vox_mkcodec_params_json(o, err);
    if (!js) return VOX_ERR_NOMEM;
    snprintf(path, sizeof path, "%s/params.json", dir);
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        free(js);
        return vox_set_error(err, VOX_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    int bad = fprintf(fp, "{\"multimodal\": {\"audio_tokenizer_args\": %s}}\n", js) < 0;
    bad |= fclose(fp) != 0;
    free(js);
    if (bad) return vox_set_error(err, VOX_ERR_IO, "%s: write failed", path);
    vox_stw *w = vox_stw_new(err);
    if (!w) return VOX_ERR_NOMEM;
    vox_mkcodec_gen *g = NULL;
    rc = vox_mkcodec_add_tensors(w, o, &g, err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/consolidated.safetensors", dir);
        rc = vox_stw_write(w, path, err);
    }
    vox_mkcodec_gen_free(g);
    vox_stw_free(w);
    return rc;
}
