/* test_mkmodel_weights.c - the random model written by vox_mkmodel_rt_write (the code behind
 * vox-mkmodel) read back through the library: params.json values equal the options, every
 * tensor of the spec/voxtral-realtime.md section 5 table exists with its shape in BF16, and
 * the weight statistics match the documented init (tolerances stated per check). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_hd.h"
#include "vox_mkmodel.h"
#include "vox_params.h"
#include "vox_safetensors.h"
#include "vox_test.h"

static void stats(const vox_st_tensor *t, int64_t first, int64_t n, double *mean, double *std) {
    const uint16_t *d = t->data;
    double s = 0, s2 = 0;
    for (int64_t i = first; i < first + n; i++) {
        double v = vox_bf16_to_f32(d[i]);
        s += v;
        s2 += v * v;
    }
    *mean = s / (double)n;
    *std = sqrt(s2 / (double)n - *mean * *mean);
}

static const vox_st_tensor *need(vox_test_state *ts, const vox_st_file *f, const char *name,
                                 int ndim, int64_t d0, int64_t d1, int64_t d2) {
    int64_t shape[3] = {d0, d1, d2};
    const vox_st_tensor *t = NULL;
    vox_error err = {0};
    int rc = vox_st_get(f, name, VOX_DT_BF16, ndim, shape, &t, &err);
    VOX_CHECK(ts, rc == VOX_OK, "%s", err.msg);
    return t;
}

int main(void) {
    vox_test_state ts = {0};
    char dir[] = "/tmp/vox_test_mkw_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    vox_mkmodel_rt_opts o;
    vox_mkmodel_rt_defaults(&o, 0);
    /* non-default, mutually distinct sizes so a swapped dim cannot pass */
    o.seed = 7;
    o.dim = 48;
    o.n_layers = 3;
    o.n_heads = 6;
    o.n_kv_heads = 3;
    o.head_dim = 10;
    o.hidden_dim = 136;
    o.vocab_size = 1300;
    o.ada_dim = 12;
    o.enc_dim = 40;
    o.enc_layers = 2;
    o.enc_heads = 4;
    o.enc_head_dim = 14;
    o.enc_hidden = 88;
    o.enc_window = 20;
    o.sliding_window = 30;
    o.delay_ms = 160;
    vox_error err = {0};
    int rc = vox_mkmodel_rt_write(dir, &o, &err);
    VOX_CHECK(&ts, rc == VOX_OK, "write: %s", err.msg);
    if (rc) return vox_test_done(&ts, "test_mkmodel_weights");

    char path[256];
    snprintf(path, sizeof path, "%s/params.json", dir);
    vox_params *p = vox_params_load(path, &err);
    VOX_CHECK(&ts, p != NULL, "params: %s", err.msg);
    struct { const char *key; int64_t want; } keys[] = {
        {"dim", 48}, {"n_layers", 3}, {"n_heads", 6}, {"n_kv_heads", 3}, {"head_dim", 10},
        {"hidden_dim", 136}, {"vocab_size", 1300}, {"sliding_window", 30},
        {"ada_rms_norm_t_cond_dim", 12},
        {"multimodal.whisper_model_args.encoder_args.dim", 40},
        {"multimodal.whisper_model_args.encoder_args.n_layers", 2},
        {"multimodal.whisper_model_args.encoder_args.n_heads", 4},
        {"multimodal.whisper_model_args.encoder_args.n_kv_heads", 4},
        {"multimodal.whisper_model_args.encoder_args.head_dim", 14},
        {"multimodal.whisper_model_args.encoder_args.hidden_dim", 88},
        {"multimodal.whisper_model_args.encoder_args.sliding_window", 20},
        {"multimodal.whisper_model_args.encoder_args.audio_encoding_args.num_mel_bins", 128},
        {"multimodal.whisper_model_args.downsample_args.downsample_factor", 4},
    };
    for (size_t i = 0; p && i < sizeof keys / sizeof keys[0]; i++) {
        int64_t v = -1;
        rc = vox_params_int(p, keys[i].key, &v, &err);
        VOX_CHECK(&ts, rc == 0 && v == keys[i].want, "%s = %lld, want %lld (%s)", keys[i].key,
                  (long long)v, (long long)keys[i].want, rc ? err.msg : "");
    }
    int b = 0;
    VOX_CHECK(&ts, p && vox_params_bool(p, "tied_embeddings", &b, &err) == 0 && b == 1, "tied");
    vox_params_free(p);

    snprintf(path, sizeof path, "%s/consolidated.safetensors", dir);
    vox_st_file *f = vox_st_open(path, &err);
    VOX_CHECK(&ts, f != NULL, "open: %s", err.msg);
    if (!f) return vox_test_done(&ts, "test_mkmodel_weights");
    VOX_CHECK(&ts, vox_st_count(f) == 13 * 2 + 11 * 3 + 9, "count %d", vox_st_count(f));

    const char *P = "mm_streams_embeddings.embedding_module.";
    char n[256];
    const int64_t E = 40, EQ = 4 * 14, EH = 88, D = 48, Q = 6 * 10, KV = 3 * 10, H = 136, A = 12;
    snprintf(n, sizeof n, "%stok_embeddings.weight", P);
    const vox_st_tensor *emb = need(&ts, f, n, 2, 1300, D, 0);
    snprintf(n, sizeof n, "%swhisper_encoder.conv_layers.0.conv.weight", P);
    const vox_st_tensor *conv0 = need(&ts, f, n, 3, E, 128, 3);
    snprintf(n, sizeof n, "%swhisper_encoder.conv_layers.0.conv.bias", P);
    const vox_st_tensor *cb = need(&ts, f, n, 1, E, 0, 0);
    snprintf(n, sizeof n, "%swhisper_encoder.conv_layers.1.conv.weight", P);
    need(&ts, f, n, 3, E, E, 3);
    for (int l = 0; l < 2; l++) {
        const char *fmt[][4] = {
            {"attention.wq.weight", "2"}, {"attention.wq.bias", "1"}, {"attention.wk.weight", "2"},
            {"attention.wv.weight", "2"}, {"attention.wv.bias", "1"}, {"attention.wo.weight", "2o"},
            {"attention.wo.bias", "1o"}, {"attention_norm.weight", "1o"}, {"ffn_norm.weight", "1o"},
            {"feed_forward.w1.weight", "2h"}, {"feed_forward.w2.weight", "2d"},
            {"feed_forward.w2.bias", "1o"}, {"feed_forward.w3.weight", "2h"},
        };
        for (int k = 0; k < 13; k++) {
            snprintf(n, sizeof n, "%swhisper_encoder.transformer.layers.%d.%s", P, l, fmt[k][0]);
            const char *s = fmt[k][1];
            if (!strcmp(s, "2")) need(&ts, f, n, 2, EQ, E, 0);
            if (!strcmp(s, "1")) need(&ts, f, n, 1, EQ, 0, 0);
            if (!strcmp(s, "2o")) need(&ts, f, n, 2, E, EQ, 0);
            if (!strcmp(s, "1o")) need(&ts, f, n, 1, E, 0, 0);
            if (!strcmp(s, "2h")) need(&ts, f, n, 2, EH, E, 0);
            if (!strcmp(s, "2d")) need(&ts, f, n, 2, E, EH, 0);
        }
        snprintf(n, sizeof n, "%swhisper_encoder.transformer.layers.%d.attention.wk.bias", P, l);
        VOX_CHECK(&ts, vox_st_find(f, n) == NULL, "%s must not exist", n);
    }
    snprintf(n, sizeof n, "%swhisper_encoder.transformer.norm.weight", P);
    need(&ts, f, n, 1, E, 0, 0);
    snprintf(n, sizeof n, "%saudio_language_projection.0.weight", P);
    const vox_st_tensor *ad0 = need(&ts, f, n, 2, D, 4 * E, 0);
    snprintf(n, sizeof n, "%saudio_language_projection.2.weight", P);
    const vox_st_tensor *ad2 = need(&ts, f, n, 2, D, D, 0);
    const vox_st_tensor *wq0 = NULL, *norm0 = NULL;
    for (int l = 0; l < 3; l++) {
        snprintf(n, sizeof n, "layers.%d.attention_norm.weight", l);
        const vox_st_tensor *t = need(&ts, f, n, 1, D, 0, 0);
        if (l == 0) norm0 = t;
        snprintf(n, sizeof n, "layers.%d.ffn_norm.weight", l);
        need(&ts, f, n, 1, D, 0, 0);
        snprintf(n, sizeof n, "layers.%d.attention.wq.weight", l);
        t = need(&ts, f, n, 2, Q, D, 0);
        if (l == 0) wq0 = t;
        snprintf(n, sizeof n, "layers.%d.attention.wk.weight", l);
        need(&ts, f, n, 2, KV, D, 0);
        snprintf(n, sizeof n, "layers.%d.attention.wv.weight", l);
        need(&ts, f, n, 2, KV, D, 0);
        snprintf(n, sizeof n, "layers.%d.attention.wo.weight", l);
        need(&ts, f, n, 2, D, Q, 0);
        snprintf(n, sizeof n, "layers.%d.feed_forward.w1.weight", l);
        need(&ts, f, n, 2, H, D, 0);
        snprintf(n, sizeof n, "layers.%d.feed_forward.w2.weight", l);
        need(&ts, f, n, 2, D, H, 0);
        snprintf(n, sizeof n, "layers.%d.feed_forward.w3.weight", l);
        need(&ts, f, n, 2, H, D, 0);
        snprintf(n, sizeof n, "layers.%d.ada_rms_norm_t_cond.0.weight", l);
        need(&ts, f, n, 2, A, D, 0);
        snprintf(n, sizeof n, "layers.%d.ada_rms_norm_t_cond.2.weight", l);
        need(&ts, f, n, 2, D, A, 0);
    }
    need(&ts, f, "norm.weight", 1, D, 0, 0);
    VOX_CHECK(&ts, vox_st_find(f, "output.weight") == NULL, "tied: no output.weight");

    /* Statistics. Uniform init: std = 1/sqrt(fan_in); sampling error of a std over N values
     * is ~ std/sqrt(2N), so 15 % is > 5 sigma for N >= 500. */
    double m, s;
    if (wq0) {
        stats(wq0, 0, wq0->numel, &m, &s);
        VOX_CHECK(&ts, fabs(s - 1.0 / sqrt((double)D)) < 0.15 / sqrt((double)D) &&
                           fabs(m) < 0.1 / sqrt((double)D), "wq std %g mean %g", s, m);
    }
    if (conv0) {
        stats(conv0, 0, conv0->numel, &m, &s);
        VOX_CHECK(&ts, fabs(s * sqrt(384.0) - 1.0) < 0.15, "conv0 std %g (fan_in 128*3)", s);
    }
    if (cb) {
        /* biases: std 0.1; only 40 values, so 40 % */
        stats(cb, 0, cb->numel, &m, &s);
        VOX_CHECK(&ts, s > 0.06 && s < 0.14, "conv bias std %g", s);
    }
    if (norm0) {
        /* norms in [0.8, 1.2] (bf16 rounding of values near 1 is <= 2^-8) */
        const uint16_t *d = norm0->data;
        int ok = 1;
        for (int64_t i = 0; i < norm0->numel; i++) {
            float v = vox_bf16_to_f32(d[i]);
            ok &= v >= 0.8f - 0.004f && v <= 1.2f + 0.004f;
        }
        stats(norm0, 0, norm0->numel, &m, &s);
        VOX_CHECK(&ts, ok && fabs(m - 1.0) < 0.05 && s > 0.05, "norm weights mean %g std %g", m, s);
    }
    if (emb) {
        /* text rows (>= 1000): std emb_std; special rows other than 32/33: x special_scale */
        stats(emb, 1000 * D, 300 * D, &m, &s);
        VOX_CHECK(&ts, fabs(s / o.emb_std - 1.0) < 0.05, "text embedding std %g, want %g", s,
                  o.emb_std);
        stats(emb, 100 * D, 800 * D, &m, &s);
        VOX_CHECK(&ts, fabs(s / (o.emb_std * o.special_scale) - 1.0) < 0.05,
                  "special embedding std %g, want %g", s, o.emb_std * o.special_scale);
        stats(emb, 32 * D, 2 * D, &m, &s);
        VOX_CHECK(&ts, fabs(s / o.emb_std - 1.0) < 0.25, "[STREAMING_PAD]/[WORD] rows std %g", s);
        /* the audio path must dominate: adapter output ~ 0.6 rms vs the embedding */
        VOX_CHECK(&ts, o.emb_std <= 0.1, "emb_std %g is not small", o.emb_std);
    }
    if (ad2) {
        /* zero-mean rows (up to bf16 rounding: |mean| <= 2^-9 * max|w|) */
        double worst = 0;
        for (int64_t r = 0; r < D; r++) {
            stats(ad2, r * D, D, &m, &s);
            if (fabs(m) > worst) worst = fabs(m);
        }
        VOX_CHECK(&ts, worst < 2e-3, "adapter.2 row mean up to %g", worst);
    }
    if (ad0) {
        stats(ad0, 0, ad0->numel, &m, &s);
        VOX_CHECK(&ts, fabs(s * sqrt(160.0) - 1.0) < 0.15, "adapter.0 std %g (fan_in 4*40)", s);
    }
    int nt = 0;
    uint64_t nb = 0;
    vox_mkmodel_rt_size(&o, &nt, &nb);
    uint64_t sum = 0;
    for (int i = 0; i < vox_st_count(f); i++) sum += vox_st_at(f, i)->nbytes;
    VOX_CHECK(&ts, nt == vox_st_count(f) && nb == sum, "size(): %d tensors %llu bytes vs file %llu",
              nt, (unsigned long long)nb, (unsigned long long)sum);
    vox_st_close(f);

    /* Full-size bookkeeping without writing: 711 tensors, 4.43 G parameters (spec section 5). */
    vox_mkmodel_rt_defaults(&o, 1);
    vox_mkmodel_rt_size(&o, &nt, &nb);
    VOX_CHECK(&ts, nt == 711, "full: %d tensors, want 711", nt);
    VOX_CHECK(&ts, fabs((double)nb / 2 / 4.430e9 - 1.0) < 0.001, "full: %llu bytes, want 8.86 GB",
              (unsigned long long)nb);

    /* Bad options are refused with the option's name. */
    vox_mkmodel_rt_defaults(&o, 0);
    o.n_kv_heads = 3;
    rc = vox_mkmodel_rt_check(&o, &err);
    VOX_CHECK(&ts, rc == VOX_ERR_ARG && strstr(err.msg, "--heads 4: expected a multiple of "
                                                        "--kv-heads 3"), "check: %s", err.msg);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return vox_test_done(&ts, "test_mkmodel_weights");
}
