/* model.c - Voxtral TTS backbone, semantic head, flow matching and sessions (see vox_tts.h). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_hd.h"
#include "vox_lm.h"
#include "vox_params.h"
#include "vox_safetensors.h"
#include "vox_tts.h"

#define FM_MAX_B 64

/* Euler schedule of the flow matching: n steps over ts = linspace(0, 1, n + 1) (host) and the
 * time rows t_proj[i] = time_projection(t_emb(ts[i])) for i < n (backend [n][ac_dim]). */
typedef struct {
    int n;
    float *ts;
    float *t_proj;
} fm_sched;

typedef struct {
    vox_mat wq, wk, wv, wo, w1, w2, w3; /* [out][in] */
    float *attn_norm, *ffn_norm;        /* backend [dim] fp32 */
} tts_layer;

struct vox_tts_model {
    vox_backend *be;
    vox_tts_config c;
    vox_st_file *st;
    vox_mat tok_emb;      /* [vocab][dim] */
    vox_mat audio_emb;    /* [audio_emb_rows][dim] */
    vox_lm_store store;   /* backbone weights (lm/ blocks) */
    vox_lm_dims dims;     /* backbone */
    vox_lm_layer *layers; /* [n_layers] */
    float *norm;          /* [dim] */
    /* acoustic transformer */
    vox_mat in_proj, time_proj, llm_proj, sem_out, ac_out;
    float *ac_norm;
    tts_layer *ac_layers; /* [ac_layers] */
    fm_sched sched;       /* the model's n_steps (t_proj owned through `owned`) */
    int32_t *cb_offset;   /* host [n_codebooks] */
    void **owned;         /* backend allocations to free */
    int n_owned, cap_owned;
    int mapped; /* weights point into the mapping (CPU backend) */
};

/* ---- workspace ---- */
typedef struct {
    vox_lm_scratch sc; /* backbone layer scratch (lm/) */
    int lm_rows, fm_b;
    float *x; /* LM activations [lm_rows][dim] (the layer scratch is sc) */
    float *fx, *fxn, *fq, *fk, *fv, *fatt, *fg, *fu; /* FM [6 fm_b][...] */
    float *llmp;                                     /* [2 fm_b][ac_dim] */
    float *xin;                                      /* [2 fm_b][n_ac] */
    float *vel;                                      /* [2 fm_b][n_ac] */
    float *hb;                                       /* [fm_b][dim] */
    float *logits;                                   /* [fm_b][semantic_rows] */
    float *cemb;                                     /* [n_codebooks][dim] */
    vox_kv fkv[2 * FM_MAX_B];
    /* host */
    float *h_logits, *h_x, *h_vel;
} tts_ws;

struct vox_tts_session {
    vox_tts_model *m;
    vox_tts_session_opts o;
    fm_sched own_sched;    /* when o.n_steps differs from the model's (freed with the session) */
    const fm_sched *sched; /* &m->sched or &own_sched */
    int64_t pos;           /* next absolute position */
    int frames, done;
    vox_tts_stats st;
    float *h;   /* backend [dim] */
    vox_kv *kv; /* [n_layers] */
    uint64_t rng[4];
    int have_spare;
    float spare;
    tts_ws ws;
};

#define OPS(m) ((m)->be->ops)
#define BECALL(m, call)                                                                            \
    do {                                                                                           \
        if ((call) != VOX_OK) return be_fail((m), err);                                            \
    } while (0)

static int be_fail(const vox_tts_model *m, vox_error *err) {
    return vox_set_error(err, m->be->err.code ? m->be->err.code : VOX_ERR_DEVICE, "%s",
                         m->be->err.msg);
}

static void *own(vox_tts_model *m, size_t bytes, vox_error *err) {
    if (m->n_owned == m->cap_owned) {
        int c = m->cap_owned ? 2 * m->cap_owned : 64;
        void **p = realloc(m->owned, (size_t)c * sizeof *p);
        if (!p) {
            vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
            return NULL;
        }
        m->owned = p;
        m->cap_owned = c;
    }
    void *p = OPS(m)->alloc(m->be, bytes ? bytes : 4);
    if (!p) {
        be_fail(m, err);
        return NULL;
    }
    m->owned[m->n_owned++] = p;
    return p;
}

static int get_mat(vox_tts_model *m, const char *name, int64_t rows, int64_t cols, vox_mat *out,
                   vox_error *err) {
    const vox_st_tensor *t;
    int64_t shape[2] = {rows, cols};
    int rc = vox_st_get(m->st, name, -1, 2, shape, &t, err);
    if (rc) return rc;
    *out = vox_st_mat(t);
    if (!m->mapped) {
        void *d = own(m, t->nbytes, err);
        if (!d) return VOX_ERR_NOMEM;
        if (OPS(m)->upload(m->be, d, t->data, t->nbytes)) return be_fail(m, err);
        out->data = d;
    }
    return VOX_OK;
}

static int get_vec(vox_tts_model *m, const char *name, int64_t n, float **out, vox_error *err) {
    const vox_st_tensor *t;
    int rc = vox_st_get(m->st, name, -1, 1, &n, &t, err);
    if (rc) return rc;
    float *h = vox_malloc((size_t)n * sizeof *h, err);
    if (!h) return VOX_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == VOX_DT_BF16)
            h[i] = vox_bf16_to_f32(((const uint16_t *)t->data)[i]);
        else if (t->dtype == VOX_DT_F16)
            h[i] = vox_f16_to_f32(((const uint16_t *)t->data)[i]);
        else
            h[i] = ((const float *)t->data)[i];
    }
    float *d = own(m, (size_t)n * sizeof *d, err);
    rc = d ? VOX_OK : VOX_ERR_NOMEM;
    if (!rc && OPS(m)->upload(m->be, d, h, (size_t)n * sizeof *d)) rc = be_fail(m, err);
    free(h);
    if (!rc) *out = d;
    return rc;
}

static int load_layer(vox_tts_model *m, const char *pfx, int i, int dim, int heads, int kvh, int hd,
                      int hidden, tts_layer *L, vox_error *err) {
    char n[160];
    int64_t Q = (int64_t)heads * hd, KV = (int64_t)kvh * hd;
    int rc;
#define M(field, suffix, r, c)                                                                     \
    snprintf(n, sizeof n, "%slayers.%d.%s", pfx, i, suffix);                                       \
    if ((rc = get_mat(m, n, r, c, &L->field, err))) return rc;
    M(wq, "attention.wq.weight", Q, dim)
    M(wk, "attention.wk.weight", KV, dim)
    M(wv, "attention.wv.weight", KV, dim)
    M(wo, "attention.wo.weight", dim, Q)
    M(w1, "feed_forward.w1.weight", hidden, dim)
    M(w2, "feed_forward.w2.weight", dim, hidden)
    M(w3, "feed_forward.w3.weight", hidden, dim)
#undef M
    snprintf(n, sizeof n, "%slayers.%d.attention_norm.weight", pfx, i);
    if ((rc = get_vec(m, n, dim, &L->attn_norm, err))) return rc;
    snprintf(n, sizeof n, "%slayers.%d.ffn_norm.weight", pfx, i);
    return get_vec(m, n, dim, &L->ffn_norm, err);
}

static int load_lm_layer(vox_tts_model *m, int i, vox_lm_layer *L, vox_error *err) {
    const vox_tts_config *c = &m->c;
    const int64_t D = c->dim, Q = (int64_t)c->n_heads * c->head_dim;
    const int64_t KV = (int64_t)c->n_kv_heads * c->head_dim, H = c->hidden_dim;
    char n[128];
    int rc = VOX_OK;
#define LIN(field, suffix, r, cc)                                                                  \
    if (!rc) {                                                                                     \
        snprintf(n, sizeof n, "layers.%d.%s", i, suffix);                                          \
        rc = vox_lm_load_linear(&m->store, m->st, n, r, cc, 0, &L->field, err);                    \
    }
    LIN(wq, "attention.wq", Q, D)
    LIN(wk, "attention.wk", KV, D)
    LIN(wv, "attention.wv", KV, D)
    LIN(wo, "attention.wo", D, Q)
    LIN(w1, "feed_forward.w1", H, D)
    LIN(w2, "feed_forward.w2", D, H)
    LIN(w3, "feed_forward.w3", H, D)
#undef LIN
    float *an = NULL, *fn = NULL;
    if (!rc) {
        snprintf(n, sizeof n, "layers.%d.attention_norm.weight", i);
        rc = vox_lm_load_vec(&m->store, m->st, n, D, &an, err);
    }
    if (!rc) {
        snprintf(n, sizeof n, "layers.%d.ffn_norm.weight", i);
        rc = vox_lm_load_vec(&m->store, m->st, n, D, &fn, err);
    }
    L->attn_norm = an;
    L->ffn_norm = fn;
    return rc;
}

static int read_config(const vox_params *p, vox_tts_config *c, vox_error *err) {
    int64_t v;
    double f;
    int rc = VOX_OK;
#define I(key, field)                                                                              \
    if (!rc && !(rc = vox_params_int(p, key, &v, err))) {                                          \
        if (v <= 0 || v > (1 << 28))                                                               \
            rc = vox_set_error(err, VOX_ERR_FORMAT,                                                \
                               "%s: key '%s': expected a positive size, found %lld",               \
                               vox_params_path(p), key, (long long)v);                             \
        else                                                                                       \
            c->field = (int)v;                                                                     \
    }
    I("dim", dim)
    I("n_layers", n_layers)
    I("n_heads", n_heads)
    I("n_kv_heads", n_kv_heads)
    I("head_dim", head_dim)
    I("hidden_dim", hidden_dim)
    I("vocab_size", vocab_size)
#define A "multimodal.audio_model_args."
    I(A "semantic_codebook_size", semantic_size)
    I(A "acoustic_codebook_size", acoustic_levels) I(A "n_acoustic_codebook", n_acoustic)
        I(A "audio_token_id", audio_token_id) I(A "begin_audio_token_id", begin_audio_token_id)
            I(A "acoustic_transformer_args.dim", ac_dim)
                I(A "acoustic_transformer_args.n_layers", ac_layers)
                    I(A "acoustic_transformer_args.n_heads", ac_heads)
                        I(A "acoustic_transformer_args.n_kv_heads", ac_kv_heads)
                            I(A "acoustic_transformer_args.head_dim", ac_head_dim)
                                I(A "acoustic_transformer_args.hidden_dim", ac_hidden)
#undef I
                                    if (rc) return rc;
    if ((rc = vox_params_float_or(p, "norm_eps", 1e-5, &f, err))) return rc;
    c->norm_eps = (float)f;
    if ((rc = vox_params_float_or(p, "rope_theta", 1e6, &f, err))) return rc;
    c->rope_theta = (float)f;
    if ((rc = vox_params_float_or(p, A "acoustic_transformer_args.norm_eps", 1e-5, &f, err)))
        return rc;
    c->ac_norm_eps = (float)f;
    if ((rc = vox_params_int(p, A "acoustic_transformer_args.input_dim", &v, err))) return rc;
    if (v != c->dim || c->ac_dim != c->dim)
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: acoustic_transformer_args input_dim %lld / dim %d: expected both "
                             "equal to the backbone dim %d",
                             vox_params_path(p), (long long)v, c->ac_dim, c->dim);
    if ((rc = vox_params_int_or(p, A "acoustic_transformer_args.n_decoding_steps", 7, &v, err)))
        return rc;
    if (v < 1 || v > 1000)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: n_decoding_steps %lld: expected 1..1000",
                             vox_params_path(p), (long long)v);
    c->n_steps = (int)v;
#undef A
    if (c->n_heads % c->n_kv_heads || c->ac_heads % c->ac_kv_heads || c->head_dim % 2)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: head counts/head_dim inconsistent",
                             vox_params_path(p));
    c->n_codebooks = c->n_acoustic + 1;
    c->semantic_rows = (c->semantic_size + 2 + 127) / 128 * 128;
    c->audio_emb_rows =
        (c->semantic_size + 2 + c->n_acoustic * (c->acoustic_levels + 2) + 127) / 128 * 128;
    return VOX_OK;
}

/* ts = torch.linspace(0, 1, n + 1) in fp32 bit for bit as ATen computes it: step = fp32(1 / n);
 * the first half step * i, the second half 1 - step * (n - i) rounded once (a fused
 * multiply-add; two roundings differ from torch at n = 9, 13, ...; checked against torch 2.15
 * for n = 1..299), so ts[n] is exactly 1. Then
 * t_proj[i] = time_projection(t_emb(ts[i])) for i < n into the caller's backend buffer
 * s->t_proj [n][ac_dim]; s->ts is malloc'ed here. */
static int sched_fill(vox_tts_model *m, int n, fm_sched *s, vox_error *err) {
    const vox_tts_config *c = &m->c;
    s->n = n;
    s->ts = vox_malloc(((size_t)n + 1) * sizeof(float), err);
    if (!s->ts) return VOX_ERR_NOMEM;
    const float step = 1.0f / (float)n;
    const int half = (n + 1) / 2;
    for (int i = 0; i <= n; i++)
        s->ts[i] = i < half ? step * (float)i : fmaf(-step, (float)(n - i), 1.0f);
    size_t tb = (size_t)n * (size_t)c->ac_dim * sizeof(float);
    float *temb = vox_malloc(tb, err);
    float *demb = temb ? OPS(m)->alloc(m->be, tb) : NULL;
    int rc = demb ? VOX_OK : temb ? be_fail(m, err) : VOX_ERR_NOMEM;
    for (int i = 0; !rc && i < n; i++)
        vox_lm_time_embedding(temb + (size_t)i * c->ac_dim, c->ac_dim, s->ts[i], 10000.0);
    if (!rc && (OPS(m)->upload(m->be, demb, temb, tb) ||
                OPS(m)->matmul(m->be, s->t_proj, demb, &m->time_proj, NULL, n)))
        rc = be_fail(m, err);
    if (demb) OPS(m)->free(m->be, demb);
    free(temb);
    return rc;
}

/* A schedule of n steps owned by the caller (sched_free); the model's own when n matches. */
static int sched_new(vox_tts_model *m, int n, fm_sched *s, vox_error *err) {
    memset(s, 0, sizeof *s);
    if (n < 1 || n > 1000)
        return vox_set_error(err, VOX_ERR_ARG, "flow-matching steps %d: expected 1..1000", n);
    s->t_proj = OPS(m)->alloc(m->be, (size_t)n * m->c.ac_dim * sizeof(float));
    if (!s->t_proj) return be_fail(m, err);
    int rc = sched_fill(m, n, s, err);
    return rc;
}

static void sched_free(vox_tts_model *m, fm_sched *s) {
    if (s->t_proj) OPS(m)->free(m->be, s->t_proj);
    free(s->ts);
    memset(s, 0, sizeof *s);
}

void vox_tts_model_free(vox_tts_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++)
        OPS(m)->free(m->be, m->owned[i]);
    free(m->owned);
    vox_lm_store_free(&m->store);
    free(m->layers);
    free(m->ac_layers);
    free(m->sched.ts);
    free(m->cb_offset);
    vox_st_close(m->st);
    free(m);
}

const vox_tts_config *vox_tts_model_config(const vox_tts_model *m) {
    return &m->c;
}

vox_tts_model *vox_tts_model_load(const char *dir, vox_backend *be, vox_error *err) {
    if (!dir || !be) {
        vox_set_error(err, VOX_ERR_ARG, "vox_tts_model_load: NULL argument");
        return NULL;
    }
    size_t cap = strlen(dir) + 64;
    char *path = vox_malloc(cap, err);
    vox_tts_model *m = path ? vox_calloc(1, sizeof *m, err) : NULL;
    if (!m) {
        free(path);
        return NULL;
    }
    m->be = be;
    m->mapped = !strcmp(be->name, "cpu");
    vox_lm_store_init(&m->store, be);
    int rc;
    snprintf(path, cap, "%s/params.json", dir);
    vox_params *p = vox_params_load(path, err);
    rc = p ? read_config(p, &m->c, err) : VOX_ERR_FORMAT;
    vox_params_free(p);
    if (!rc) {
        snprintf(path, cap, "%s/consolidated.safetensors", dir);
        m->st = vox_st_open(path, err);
        if (!m->st) rc = VOX_ERR_FORMAT;
    }
    free(path);
    const vox_tts_config *c = &m->c;
    if (!rc)
        rc = get_mat(m, "mm_audio_embeddings.tok_embeddings.weight", c->vocab_size, c->dim,
                     &m->tok_emb, err);
    if (!rc)
        rc = get_mat(m, "mm_audio_embeddings.audio_codebook_embeddings.embeddings.weight",
                     c->audio_emb_rows, c->dim, &m->audio_emb, err);
    if (!rc) {
        m->layers = vox_calloc((size_t)c->n_layers, sizeof *m->layers, err);
        m->ac_layers = vox_calloc((size_t)c->ac_layers, sizeof *m->ac_layers, err);
        m->cb_offset = vox_calloc((size_t)c->n_codebooks, sizeof(int32_t), err);
        if (!m->layers || !m->ac_layers || !m->cb_offset) rc = VOX_ERR_NOMEM;
    }
    m->dims.dim = c->dim;
    m->dims.n_heads = c->n_heads;
    m->dims.n_kv_heads = c->n_kv_heads;
    m->dims.head_dim = c->head_dim;
    m->dims.hidden = c->hidden_dim;
    m->dims.eps = c->norm_eps;
    m->dims.theta = c->rope_theta;
    m->dims.window = 0; /* no sliding window in the TTS backbone */
    for (int i = 0; !rc && i < c->n_layers; i++)
        rc = load_lm_layer(m, i, &m->layers[i], err);
    if (!rc) rc = vox_lm_load_vec(&m->store, m->st, "norm.weight", c->dim, &m->norm, err);
    const char *A = "acoustic_transformer.";
    char n[128];
#define AM(field, nm, r, cc)                                                                       \
    if (!rc) {                                                                                     \
        snprintf(n, sizeof n, "%s%s", A, nm);                                                      \
        rc = get_mat(m, n, r, cc, &m->field, err);                                                 \
    }
    AM(in_proj, "input_projection.weight", c->ac_dim, c->n_acoustic)
    AM(time_proj, "time_projection.weight", c->ac_dim, c->ac_dim)
    AM(llm_proj, "llm_projection.weight", c->ac_dim, c->dim)
    AM(sem_out, "semantic_codebook_output.weight", c->semantic_rows, c->dim)
    AM(ac_out, "acoustic_codebook_output.weight", c->n_acoustic, c->ac_dim)
#undef AM
    if (!rc) rc = get_vec(m, "acoustic_transformer.norm.weight", c->ac_dim, &m->ac_norm, err);
    for (int i = 0; !rc && i < c->ac_layers; i++)
        rc = load_layer(m, A, i, c->ac_dim, c->ac_heads, c->ac_kv_heads, c->ac_head_dim,
                        c->ac_hidden, &m->ac_layers[i], err);
    /* flow-matching constants: the codebook offsets and the model's Euler schedule */
    if (!rc) {
        m->cb_offset[0] = 0;
        for (int k = 1; k < c->n_codebooks; k++)
            m->cb_offset[k] = c->semantic_size + 2 + (c->acoustic_levels + 2) * (k - 1);
        m->sched.t_proj = own(m, (size_t)c->n_steps * c->ac_dim * sizeof(float), err);
        rc = m->sched.t_proj ? sched_fill(m, c->n_steps, &m->sched, err) : VOX_ERR_NOMEM;
    }
    if (rc) {
        vox_tts_model_free(m);
        return NULL;
    }
    return m;
}

int vox_tts_model_voice(const vox_tts_model *m, const char *dir, const char *name,
                        vox_tts_voice *out, vox_error *err) {
    if (!m || !dir || !name || !out)
        return vox_set_error(err, VOX_ERR_ARG, "vox_tts_model_voice: NULL argument");
    if (strchr(name, '/') || !*name)
        return vox_set_error(err, VOX_ERR_ARG, "voice name '%s': expected a plain name", name);
    size_t cap = strlen(dir) + strlen(name) + 32;
    char *path = vox_malloc(cap, err);
    if (!path) return VOX_ERR_NOMEM;
    snprintf(path, cap, "%s/voice_embedding/%s.pt", dir, name);
    int rc = vox_tts_voice_load(path, m->c.dim, out, err);
    free(path);
    return rc;
}

/* ---- workspace ---- */

static void ws_free(vox_tts_model *m, tts_ws *w) {
    vox_lm_scratch_free(&w->sc);
    float **bufs[] = {&w->x,  &w->fx,   &w->fxn, &w->fq,  &w->fk, &w->fv,     &w->fatt, &w->fg,
                      &w->fu, &w->llmp, &w->xin, &w->vel, &w->hb, &w->logits, &w->cemb};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        if (*bufs[i]) OPS(m)->free(m->be, *bufs[i]);
        *bufs[i] = NULL;
    }
    for (int i = 0; i < 2 * FM_MAX_B; i++) {
        if (w->fkv[i].k) OPS(m)->free(m->be, w->fkv[i].k);
        if (w->fkv[i].v) OPS(m)->free(m->be, w->fkv[i].v);
        w->fkv[i].k = w->fkv[i].v = NULL;
    }
    free(w->h_logits);
    free(w->h_x);
    free(w->h_vel);
    w->h_logits = w->h_x = w->h_vel = NULL;
    w->lm_rows = w->fm_b = 0;
}

static float *balloc(vox_tts_model *m, size_t n, int *bad) {
    float *p = OPS(m)->alloc(m->be, (n ? n : 1) * sizeof(float));
    if (!p) *bad = 1;
    return p;
}

/* Grow to lm_rows backbone rows and fm_b flow-matching frames (never shrinks). */
static int ws_reserve(vox_tts_model *m, tts_ws *w, int lm_rows, int fm_b, vox_error *err) {
    const vox_tts_config *c = &m->c;
    int bad = 0;
    if (fm_b > FM_MAX_B)
        return vox_set_error(err, VOX_ERR_ARG, "batch of %d frames: at most %d", fm_b, FM_MAX_B);
    if (lm_rows > w->lm_rows) {
        if (!w->sc.be) vox_lm_scratch_init(&w->sc, m->be);
        if (w->x) OPS(m)->free(m->be, w->x);
        w->x = balloc(m, (size_t)lm_rows * c->dim, &bad);
        if (!bad && vox_lm_scratch_reserve(&w->sc, &m->dims, lm_rows, err) != VOX_OK) {
            ws_free(m, w);
            return err ? err->code : VOX_ERR_NOMEM;
        }
        w->lm_rows = lm_rows;
    }
    if (!bad && fm_b > w->fm_b) {
        float **b[] = {&w->fx, &w->fxn,  &w->fq,  &w->fk,  &w->fv, &w->fatt,   &w->fg,
                       &w->fu, &w->llmp, &w->xin, &w->vel, &w->hb, &w->logits, &w->cemb};
        for (int i = 0; i < 14; i++)
            if (*b[i]) OPS(m)->free(m->be, *b[i]);
        size_t R = 6 * (size_t)fm_b, AQ = (size_t)c->ac_heads * c->ac_head_dim;
        size_t AKV = (size_t)c->ac_kv_heads * c->ac_head_dim;
        w->fx = balloc(m, R * c->ac_dim, &bad);
        w->fxn = balloc(m, R * c->ac_dim, &bad);
        w->fq = balloc(m, R * AQ, &bad);
        w->fk = balloc(m, R * AKV, &bad);
        w->fv = balloc(m, R * AKV, &bad);
        w->fatt = balloc(m, R * AQ, &bad);
        w->fg = balloc(m, R * c->ac_hidden, &bad);
        w->fu = balloc(m, R * c->ac_hidden, &bad);
        w->llmp = balloc(m, 2 * (size_t)fm_b * c->ac_dim, &bad);
        w->xin = balloc(m, 2 * (size_t)fm_b * c->n_acoustic, &bad);
        w->vel = balloc(m, 2 * (size_t)fm_b * c->n_acoustic, &bad);
        w->hb = balloc(m, (size_t)fm_b * c->dim, &bad);
        w->logits = balloc(m, (size_t)fm_b * c->semantic_rows, &bad);
        w->cemb = balloc(m, (size_t)c->n_codebooks * c->dim, &bad);
        for (int i = w->fm_b * 2; i < 2 * fm_b && !bad; i++) {
            w->fkv[i].cap = 3;
            w->fkv[i].kv_dim = (int)AKV;
            w->fkv[i].k = balloc(m, 3 * AKV, &bad);
            w->fkv[i].v = balloc(m, 3 * AKV, &bad);
        }
        free(w->h_logits);
        free(w->h_x);
        free(w->h_vel);
        w->h_logits = malloc((size_t)fm_b * c->semantic_rows * sizeof(float));
        w->h_x = malloc(2 * (size_t)fm_b * c->n_acoustic * sizeof(float));
        w->h_vel = malloc(2 * (size_t)fm_b * c->n_acoustic * sizeof(float));
        if (!w->h_logits || !w->h_x || !w->h_vel) bad = 1;
        w->fm_b = fm_b;
    }
    if (bad) {
        ws_free(m, w);
        return vox_set_error(err, VOX_ERR_NOMEM, "TTS workspace: out of memory");
    }
    return VOX_OK;
}

/* ---- backbone ----
 * x[n][dim] (in w->x) = input embeddings of n rows made of segments: segment s has seg_n[s]
 * rows at absolute positions seg_pos[s].., with KV caches seg_kv[s][n_layers]. On return w->x
 * holds the final-normed hidden states. */
static int lm_forward(vox_tts_model *m, tts_ws *w, int n, int nseg, const int *seg_n,
                      const int64_t *seg_pos, vox_kv *const *seg_kv, vox_error *err) {
    const vox_tts_config *c = &m->c;
    vox_lm_seg segs[FM_MAX_B];
    if (nseg < 1 || nseg > FM_MAX_B)
        return vox_set_error(err, VOX_ERR_ARG, "backbone batch of %d segments", nseg);
    for (int l = 0; l < c->n_layers; l++) {
        int r0 = 0;
        for (int s = 0; s < nseg; s++) {
            segs[s].row0 = r0;
            segs[s].n_rows = seg_n[s];
            segs[s].pos0 = seg_pos[s];
            segs[s].kv = &seg_kv[s][l];
            segs[s].ffn_norm = NULL;
            r0 += seg_n[s];
        }
        int rc =
            vox_lm_layer_forward(m->be, &m->dims, &m->layers[l], w->x, n, segs, nseg, &w->sc, err);
        if (rc) return rc;
    }
    BECALL(m, OPS(m)->rmsnorm(m->be, w->x, w->x, m->norm, n, c->dim, c->norm_eps));
    return VOX_OK;
}

/* ---- flow matching ----
 * nb sequences: w->xin[nb][n_ac] (x_t), w->llmp[nb][ac_dim] (llm_projection(h)), time step
 * row tp[ac_dim] (backend). Velocity into w->vel[nb][n_ac]. */
static int fm_velocity(vox_tts_model *m, tts_ws *w, int nb, const float *tp, vox_error *err) {
    const vox_tts_config *c = &m->c;
    vox_backend *be = m->be;
    const int D = c->ac_dim, AQ = c->ac_heads * c->ac_head_dim;
    const int AKV = c->ac_kv_heads * c->ac_head_dim, R = 3 * nb;
    const float scale = 1.0f / sqrtf((float)c->ac_head_dim);
    /* token rows: [3 s + 0] input_projection(x_t), [3 s + 1] t_proj, [3 s + 2] llm_proj */
    BECALL(m, OPS(m)->matmul(be, w->fxn, w->xin, &m->in_proj, NULL, nb));
    for (int s = 0; s < nb; s++) {
        BECALL(m, OPS(m)->copy(be, w->fx + (size_t)(3 * s) * D, w->fxn + (size_t)s * D,
                               (size_t)D * sizeof(float)));
        BECALL(m, OPS(m)->copy(be, w->fx + (size_t)(3 * s + 1) * D, tp, (size_t)D * sizeof(float)));
        BECALL(m, OPS(m)->copy(be, w->fx + (size_t)(3 * s + 2) * D, w->llmp + (size_t)s * D,
                               (size_t)D * sizeof(float)));
    }
    for (int l = 0; l < c->ac_layers; l++) {
        const tts_layer *L = &m->ac_layers[l];
        BECALL(m, OPS(m)->rmsnorm(be, w->fxn, w->fx, L->attn_norm, R, D, c->ac_norm_eps));
        BECALL(m, OPS(m)->matmul(be, w->fq, w->fxn, &L->wq, NULL, R));
        BECALL(m, OPS(m)->matmul(be, w->fk, w->fxn, &L->wk, NULL, R));
        BECALL(m, OPS(m)->matmul(be, w->fv, w->fxn, &L->wv, NULL, R));
        for (int s = 0; s < nb; s++) {
            /* bidirectional over the 3 tokens, no positions: keys at 0..2, every query asks
             * from position 2 (sees all three keys) */
            vox_kv *kv = &w->fkv[s];
            kv->end = 0;
            BECALL(m, OPS(m)->kv_write(be, kv, w->fk + (size_t)(3 * s) * AKV,
                                       w->fv + (size_t)(3 * s) * AKV, 3, 0));
            for (int j = 0; j < 3; j++)
                BECALL(m, OPS(m)->attention(be, w->fatt + (size_t)(3 * s + j) * AQ,
                                            w->fq + (size_t)(3 * s + j) * AQ, 1, 2, kv, c->ac_heads,
                                            c->ac_kv_heads, c->ac_head_dim, 0, scale));
        }
        BECALL(m, OPS(m)->matmul(be, w->fxn, w->fatt, &L->wo, NULL, R));
        BECALL(m, OPS(m)->add(be, w->fx, w->fx, w->fxn, (int64_t)R * D));
        BECALL(m, OPS(m)->rmsnorm(be, w->fxn, w->fx, L->ffn_norm, R, D, c->ac_norm_eps));
        BECALL(m, OPS(m)->matmul(be, w->fg, w->fxn, &L->w1, NULL, R));
        BECALL(m, OPS(m)->matmul(be, w->fu, w->fxn, &L->w3, NULL, R));
        BECALL(m, OPS(m)->swiglu(be, w->fg, w->fg, w->fu, (int64_t)R * c->ac_hidden));
        BECALL(m, OPS(m)->matmul(be, w->fxn, w->fg, &L->w2, NULL, R));
        BECALL(m, OPS(m)->add(be, w->fx, w->fx, w->fxn, (int64_t)R * D));
    }
    /* only token 0 of each sequence feeds the velocity head */
    for (int s = 0; s < nb; s++)
        BECALL(m, OPS(m)->copy(be, w->fxn + (size_t)s * D, w->fx + (size_t)(3 * s) * D,
                               (size_t)D * sizeof(float)));
    BECALL(m, OPS(m)->rmsnorm(be, w->fxn, w->fxn, m->ac_norm, nb, D, c->ac_norm_eps));
    BECALL(m, OPS(m)->matmul(be, w->vel, w->fxn, &m->ac_out, NULL, nb));
    return VOX_OK;
}

/* Semantic head + FM (schedule sc) for B frames from hb[B][dim] (backend; w->hb or rows of
 * it); noise[B][n_ac] host. tsec (or NULL): += seconds of the head [0] and of the FM [1] (each
 * ends in a download, which synchronises). */
static int frames_from_hb(vox_tts_model *m, tts_ws *w, const float *hb, int B, const float *noise,
                          const float *alpha, const fm_sched *sc, int32_t *codes, float *logits_out,
                          double *tsec, vox_error *err) {
    double t0 = vox_time_now();
    const vox_tts_config *c = &m->c;
    vox_backend *be = m->be;
    const int NA = c->n_acoustic, SR = c->semantic_rows, S2 = c->semantic_size + 2;
    const int NC = c->n_codebooks;
    BECALL(m, OPS(m)->matmul(be, w->logits, hb, &m->sem_out, NULL, B));
    BECALL(m, OPS(m)->download(be, w->h_logits, w->logits, (size_t)B * SR * sizeof(float)));
    int any = 0;
    for (int b = 0; b < B; b++) {
        float *lg = w->h_logits + (size_t)b * SR;
        lg[0] = -INFINITY; /* EMPTY */
        for (int j = S2; j < SR; j++)
            lg[j] = -INFINITY;
        int best = 1;
        for (int j = 1; j < S2; j++)
            if (lg[j] > lg[best]) best = j;
        codes[(size_t)b * NC] = best;
        if (best != 1) any = 1;
        if (logits_out) memcpy(logits_out + (size_t)b * SR, lg, (size_t)SR * sizeof(float));
    }
    double t1 = vox_time_now();
    float *x = w->h_x; /* [B][NA] current sample (host) */
    memcpy(x, noise, (size_t)B * NA * sizeof(float));
    if (any) {
        /* cond rows 0..B-1 = llm_projection(h), uncond rows B..2B-1 = llm_projection(0) = 0 */
        BECALL(m, OPS(m)->matmul(be, w->llmp, hb, &m->llm_proj, NULL, B));
        BECALL(m, OPS(m)->zero(be, w->llmp + (size_t)B * c->ac_dim,
                               (size_t)B * c->ac_dim * sizeof(float)));
        for (int s = 0; s < sc->n; s++) {
            float dt = sc->ts[s + 1] - sc->ts[s];
            BECALL(m, OPS(m)->upload(be, w->xin, x, (size_t)B * NA * sizeof(float)));
            BECALL(m,
                   OPS(m)->upload(be, w->xin + (size_t)B * NA, x, (size_t)B * NA * sizeof(float)));
            int rc = fm_velocity(m, w, 2 * B, sc->t_proj + (size_t)s * c->ac_dim, err);
            if (rc) return rc;
            BECALL(m, OPS(m)->download(be, w->h_vel, w->vel, 2 * (size_t)B * NA * sizeof(float)));
            for (int i = 0; i < B * NA; i++) {
                float a = alpha[i / NA];
                float v = a * w->h_vel[i] + (1.0f - a) * w->h_vel[B * NA + i];
                x[i] = x[i] + v * dt;
            }
        }
    }
    for (int b = 0; b < B; b++) {
        int end = codes[(size_t)b * NC] == 1;
        for (int k = 0; k < NA; k++) {
            float v = x[(size_t)b * NA + k];
            v = v < -1.0f ? -1.0f : v > 1.0f ? 1.0f : v;
            float sc = (v + 1.0f) / 2.0f * (float)(c->acoustic_levels - 1);
            int q = (int)rintf(sc); /* half to even, as torch.round */
            codes[(size_t)b * NC + 1 + k] = (end ? 0 : q) + 2;
        }
    }
    if (tsec) {
        tsec[0] += t1 - t0;
        tsec[1] += vox_time_now() - t1;
    }
    return VOX_OK;
}

int vox_tts_frame(vox_tts_model *m, const float *h_host, const float *noise_host, float cfg_alpha,
                  int n_steps, int B, int32_t *codes_host, float *logits_host, vox_error *err) {
    if (!m || !h_host || !noise_host || !codes_host || B < 1 || n_steps < 0)
        return vox_set_error(err, VOX_ERR_ARG, "vox_tts_frame: bad argument");
    tts_ws w;
    memset(&w, 0, sizeof w);
    fm_sched own_sc = {0};
    const fm_sched *sc = &m->sched;
    int rc = VOX_OK;
    if (n_steps && n_steps != m->sched.n) {
        rc = sched_new(m, n_steps, &own_sc, err);
        sc = &own_sc;
    }
    if (!rc) rc = ws_reserve(m, &w, 1, B, err);
    if (!rc && OPS(m)->upload(m->be, w.hb, h_host, (size_t)B * m->c.dim * sizeof(float)))
        rc = be_fail(m, err);
    float alpha[FM_MAX_B];
    for (int b = 0; b < B && b < FM_MAX_B; b++)
        alpha[b] = cfg_alpha;
    if (!rc)
        rc = frames_from_hb(m, &w, w.hb, B, noise_host, alpha, sc, codes_host, logits_host, NULL,
                            err);
    ws_free(m, &w);
    sched_free(m, &own_sc);
    return rc;
}

int vox_tts_fm_velocity(vox_tts_model *m, const float *x_host, const float *h_host, float t, int B,
                        float *v_host, vox_error *err) {
    if (!m || !x_host || !v_host || B < 1 || B > FM_MAX_B)
        return vox_set_error(err, VOX_ERR_ARG, "vox_tts_fm_velocity: bad argument");
    const vox_tts_config *c = &m->c;
    tts_ws w;
    memset(&w, 0, sizeof w);
    int rc = ws_reserve(m, &w, 1, B, err);
    size_t tb = (size_t)c->ac_dim * sizeof(float);
    float *temb = rc ? NULL : vox_malloc(tb, err);
    float *dt = temb ? OPS(m)->alloc(m->be, tb) : NULL;
    float *dp = dt ? OPS(m)->alloc(m->be, tb) : NULL;
    if (!rc && !dp) rc = temb ? be_fail(m, err) : VOX_ERR_NOMEM;
    if (!rc) {
        vox_lm_time_embedding(temb, c->ac_dim, t, 10000.0);
        if (OPS(m)->upload(m->be, dt, temb, tb) ||
            OPS(m)->matmul(m->be, dp, dt, &m->time_proj, NULL, 1) ||
            OPS(m)->upload(m->be, w.xin, x_host, (size_t)B * c->n_acoustic * sizeof(float)))
            rc = be_fail(m, err);
    }
    if (!rc) {
        if (h_host) {
            if (OPS(m)->upload(m->be, w.hb, h_host, (size_t)B * c->dim * sizeof(float)) ||
                OPS(m)->matmul(m->be, w.llmp, w.hb, &m->llm_proj, NULL, B))
                rc = be_fail(m, err);
        } else if (OPS(m)->zero(m->be, w.llmp, (size_t)B * c->ac_dim * sizeof(float))) {
            rc = be_fail(m, err);
        }
    }
    if (!rc) rc = fm_velocity(m, &w, B, dp, err);
    if (!rc && OPS(m)->download(m->be, v_host, w.vel, (size_t)B * c->n_acoustic * sizeof(float)))
        rc = be_fail(m, err);
    if (dt) OPS(m)->free(m->be, dt);
    if (dp) OPS(m)->free(m->be, dp);
    free(temb);
    ws_free(m, &w);
    return rc;
}

/* ---- sessions ---- */

void vox_tts_session_defaults(vox_tts_session_opts *o) {
    memset(o, 0, sizeof *o);
    o->seed = 0;
    o->cfg_alpha = 1.2f;
    o->max_frames = 2048;
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}
static uint64_t xoshiro(uint64_t *s) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}
static float gauss(vox_tts_session *s) {
    if (s->have_spare) {
        s->have_spare = 0;
        return s->spare;
    }
    double u1 = ((double)(xoshiro(s->rng) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    double u2 = (double)(xoshiro(s->rng) >> 11) * 0x1.0p-53;
    double r = sqrt(-2.0 * log(u1)), a = 6.283185307179586 * u2;
    s->spare = (float)(r * sin(a));
    s->have_spare = 1;
    return (float)(r * cos(a));
}

void vox_tts_session_free(vox_tts_session *s) {
    if (!s) return;
    vox_tts_model *m = s->m;
    if (s->kv)
        for (int l = 0; l < m->c.n_layers; l++) {
            if (s->kv[l].k) OPS(m)->free(m->be, s->kv[l].k);
            if (s->kv[l].v) OPS(m)->free(m->be, s->kv[l].v);
        }
    free(s->kv);
    if (s->h) OPS(m)->free(m->be, s->h);
    sched_free(m, &s->own_sched);
    ws_free(m, &s->ws);
    free(s);
}

vox_tts_session *vox_tts_session_new(vox_tts_model *m, const int32_t *ids, size_t n_ids,
                                     const vox_tts_voice *voice, const vox_tts_session_opts *o,
                                     vox_error *err) {
    if (!m || !ids || n_ids < 1 || n_ids > (1u << 24)) {
        vox_set_error(err, VOX_ERR_ARG, "vox_tts_session_new: bad argument");
        return NULL;
    }
    const vox_tts_config *c = &m->c;
    vox_tts_session_opts def;
    vox_tts_session_defaults(&def);
    if (!o) o = &def;
    if (o->max_frames < 1) {
        vox_set_error(err, VOX_ERR_ARG, "max_frames %d: expected > 0", o->max_frames);
        return NULL;
    }
    if (o->n_steps < 0 || o->n_steps > 1000) {
        vox_set_error(err, VOX_ERR_ARG, "n_steps %d: expected 1..1000 (0 = the model's %d)",
                      o->n_steps, c->n_steps);
        return NULL;
    }
    int n_audio = 0, first = -1;
    for (size_t i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= c->vocab_size) {
            vox_set_error(err, VOX_ERR_ARG, "prompt id %d at %zu: expected 0..%d", ids[i], i,
                          c->vocab_size - 1);
            return NULL;
        }
        if (ids[i] == c->audio_token_id) {
            if (first < 0) first = (int)i;
            n_audio++;
        }
    }
    int vrows = voice ? voice->rows : 0;
    if (n_audio != vrows || (voice && voice->dim != c->dim)) {
        vox_set_error(err, VOX_ERR_ARG,
                      "prompt has %d [AUDIO] tokens; the voice has %d rows of %d (expected equal "
                      "counts and dim %d)",
                      n_audio, vrows, voice ? voice->dim : 0, c->dim);
        return NULL;
    }
    vox_tts_session *s = vox_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->m = m;
    s->o = *o;
    if (!(s->o.cfg_alpha > 0.0f)) s->o.cfg_alpha = 1.2f;
    uint64_t z = o->seed;
    for (int i = 0; i < 4; i++) {
        z += 0x9e3779b97f4a7c15ull;
        uint64_t q = z;
        q = (q ^ (q >> 30)) * 0xbf58476d1ce4e5b9ull;
        q = (q ^ (q >> 27)) * 0x94d049bb133111ebull;
        s->rng[i] = q ^ (q >> 31);
    }
    s->sched = &m->sched;
    int rc = VOX_OK;
    if (o->n_steps && o->n_steps != m->sched.n) {
        rc = sched_new(m, o->n_steps, &s->own_sched, err);
        s->sched = &s->own_sched;
    }
    s->o.n_steps = s->sched->n;
    if (!rc) rc = ws_reserve(m, &s->ws, (int)n_ids, 1, err);
    int64_t cap = (int64_t)n_ids + o->max_frames;
    const int KV = c->n_kv_heads * c->head_dim;
    if (!rc) {
        s->kv = vox_calloc((size_t)c->n_layers, sizeof *s->kv, err);
        s->h = OPS(m)->alloc(m->be, (size_t)c->dim * sizeof(float));
        if (!s->kv || !s->h) rc = VOX_ERR_NOMEM;
    }
    for (int l = 0; !rc && l < c->n_layers; l++) {
        s->kv[l].cap = cap;
        s->kv[l].kv_dim = KV;
        s->kv[l].k = OPS(m)->alloc(m->be, (size_t)cap * KV * sizeof(float));
        s->kv[l].v = OPS(m)->alloc(m->be, (size_t)cap * KV * sizeof(float));
        if (!s->kv[l].k || !s->kv[l].v) rc = be_fail(m, err);
    }
    tts_ws *w = &s->ws;
    if (!rc && OPS(m)->embed(m->be, w->x, &m->tok_emb, ids, (int)n_ids)) rc = be_fail(m, err);
    for (size_t i = 0, r = 0; !rc && i < n_ids; i++)
        if (ids[i] == c->audio_token_id) {
            if (OPS(m)->upload(m->be, w->x + i * (size_t)c->dim, voice->emb + r * (size_t)c->dim,
                               (size_t)c->dim * sizeof(float)))
                rc = be_fail(m, err);
            r++;
        }
    double tp = vox_time_now();
    if (!rc) {
        int nn = (int)n_ids;
        int64_t p0 = 0;
        vox_kv *kvs = s->kv;
        rc = lm_forward(m, w, nn, 1, &nn, &p0, &kvs, err);
    }
    if (!rc && OPS(m)->sync(m->be)) rc = be_fail(m, err);
    s->st.prefill_sec = vox_time_now() - tp;
    if (!rc && OPS(m)->copy(m->be, s->h, w->x + (n_ids - 1) * (size_t)c->dim,
                            (size_t)c->dim * sizeof(float)))
        rc = be_fail(m, err);
    s->pos = (int64_t)n_ids;
    (void)first;
    if (rc) {
        vox_tts_session_free(s);
        return NULL;
    }
    return s;
}

/* The backbone input of one audio frame: dst[dim] = sum over the 37 codebooks k of
 * audio_codebook_embeddings[offset_k + ids[k]] (ids with the +2 offset, or the specials 0/1;
 * unpadded offsets 0, S+2, S+2+(L+2), ...). cemb: backend scratch [n_codebooks][dim]. The
 * generation's next input and the rows of a voice made from reference audio both come from
 * here (upstream: MultiVocabEmbeddings + sum over codebooks in both places). */
static int frame_embedding(const vox_tts_model *m, const int32_t *ids, float *cemb, float *dst,
                           vox_error *err) {
    const int NC = m->c.n_codebooks, D = m->c.dim;
    int32_t rows[256];
    if (NC > 256)
        return vox_set_error(err, VOX_ERR_UNSUPPORTED, "more than 255 acoustic codebooks");
    for (int k = 0; k < NC; k++)
        rows[k] = m->cb_offset[k] + ids[k];
    BECALL(m, OPS(m)->embed(m->be, cemb, &m->audio_emb, rows, NC));
    BECALL(m, OPS(m)->copy(m->be, dst, cemb, (size_t)D * sizeof(float)));
    for (int k = 1; k < NC; k++)
        BECALL(m, OPS(m)->add(m->be, dst, dst, cemb + (size_t)k * D, D));
    return VOX_OK;
}

int vox_tts_voice_from_codes(const vox_tts_model *m, const int32_t *codes, int n_frames,
                             vox_tts_voice *out, vox_error *err) {
    if (!m || !out || n_frames < 0 || (n_frames && !codes))
        return vox_set_error(err, VOX_ERR_ARG, "vox_tts_voice_from_codes: bad argument");
    memset(out, 0, sizeof *out);
    const vox_tts_config *c = &m->c;
    const int NC = c->n_codebooks, D = c->dim;
    for (int f = 0; f < n_frames; f++)
        for (int k = 0; k < NC; k++) {
            int32_t v = codes[(size_t)f * NC + k], hi = k ? c->acoustic_levels : c->semantic_size;
            if (v < 0 || v >= hi)
                return vox_set_error(err, VOX_ERR_ARG,
                                     "reference frame %d, codebook %d: code %d outside 0..%d", f, k,
                                     v, hi - 1);
        }
    int rows = n_frames + 1;
    out->emb = vox_malloc((size_t)rows * D * sizeof(float), err);
    int32_t *ids = vox_malloc((size_t)NC * sizeof(int32_t), err);
    float *cemb = ids ? OPS(m)->alloc(m->be, (size_t)NC * D * sizeof(float)) : NULL;
    float *row = cemb ? OPS(m)->alloc(m->be, (size_t)D * sizeof(float)) : NULL;
    int rc = !out->emb || !ids ? VOX_ERR_NOMEM : !row ? be_fail(m, err) : VOX_OK;
    for (int f = 0; !rc && f < rows; f++) {
        /* encoded frames: code + 2; the last row: the EOA frame [END = 1, EMPTY = 0 x n_ac] */
        for (int k = 0; k < NC; k++)
            ids[k] = f < n_frames ? codes[(size_t)f * NC + k] + 2 : (k == 0 ? 1 : 0);
        rc = frame_embedding(m, ids, cemb, row, err);
        if (!rc &&
            OPS(m)->download(m->be, out->emb + (size_t)f * D, row, (size_t)D * sizeof(float)))
            rc = be_fail(m, err);
    }
    if (row) OPS(m)->free(m->be, row);
    if (cemb) OPS(m)->free(m->be, cemb);
    free(ids);
    if (rc) {
        free(out->emb);
        out->emb = NULL;
        return rc;
    }
    out->rows = rows;
    out->dim = D;
    return VOX_OK;
}

int vox_tts_step_batch(vox_tts_session **ss, int n, int32_t *codes, int *done, vox_error *err) {
    if (!ss || n < 1 || n > FM_MAX_B || !codes || !done)
        return vox_set_error(err, VOX_ERR_ARG, "vox_tts_step_batch: bad argument (n = %d)", n);
    vox_tts_model *m = ss[0]->m;
    const vox_tts_config *c = &m->c;
    const int NC = c->n_codebooks, NA = c->n_acoustic, D = c->dim;
    vox_tts_session *act[FM_MAX_B];
    int idx[FM_MAX_B], B = 0;
    for (int i = 0; i < n; i++) {
        if (ss[i]->m != m) return vox_set_error(err, VOX_ERR_ARG, "sessions of different models");
        if (ss[i]->frames >= ss[i]->o.max_frames) ss[i]->done = 1;
        done[i] = ss[i]->done;
        if (!ss[i]->done) {
            act[B] = ss[i];
            idx[B++] = i;
        }
    }
    if (B == 0) return VOX_OK;
    /* group the sessions by step count (stable order otherwise): each group is one FM batch
     * (sessions with equal counts have equal schedules) */
    for (int b = 1; b < B; b++) {
        int k = b - 1; /* the last earlier session with the same schedule */
        while (k >= 0 && act[k]->sched->n != act[b]->sched->n)
            k--;
        int j = k + 1; /* move b there (k < 0: a new group, stays) */
        if (k < 0) j = b;
        if (j < b) {
            vox_tts_session *sb = act[b];
            int ib = idx[b];
            memmove(act + j + 1, act + j, (size_t)(b - j) * sizeof *act);
            memmove(idx + j + 1, idx + j, (size_t)(b - j) * sizeof *idx);
            act[j] = sb;
            idx[j] = ib;
        }
    }
    tts_ws *w = &ss[0]->ws;
    int rc = ws_reserve(m, w, B, B, err);
    if (rc) return rc;
    float noise[FM_MAX_B * 64];
    float *nz = NA * B <= (int)(sizeof noise / sizeof noise[0]) ? noise : w->h_x + B * NA;
    /* h_x has room for 2 B NA floats: the second half holds the noise when NA > 64 */
    for (int b = 0; b < B; b++) {
        vox_tts_session *s = act[b];
        BECALL(m, OPS(m)->copy(m->be, w->hb + (size_t)b * D, s->h, (size_t)D * sizeof(float)));
        for (int k = 0; k < NA; k++) {
            float v;
            if (s->o.noise_host) {
                if (s->frames >= s->o.noise_frames)
                    return vox_set_error(err, VOX_ERR_ARG,
                                         "noise table of %d frames exhausted at frame %d",
                                         s->o.noise_frames, s->frames);
                v = s->o.noise_host[(size_t)s->frames * NA + k];
            } else {
                v = gauss(s);
            }
            nz[(size_t)b * NA + k] = v;
        }
    }
    int32_t bc[FM_MAX_B * 64];
    int32_t *bcodes = NC * B <= (int)(sizeof bc / sizeof bc[0]) ? bc : NULL;
    if (!bcodes) return vox_set_error(err, VOX_ERR_UNSUPPORTED, "more than 63 acoustic codebooks");
    float alpha[FM_MAX_B];
    for (int b = 0; b < B; b++)
        alpha[b] = act[b]->o.cfg_alpha;
    double tsec[2] = {0, 0};
    for (int g0 = 0, g1; g0 < B; g0 = g1) {
        for (g1 = g0 + 1; g1 < B && act[g1]->sched->n == act[g0]->sched->n; g1++)
            ;
        rc = frames_from_hb(m, w, w->hb + (size_t)g0 * D, g1 - g0, nz + (size_t)g0 * NA, alpha + g0,
                            act[g0]->sched, bcodes + (size_t)g0 * NC, NULL, tsec, err);
        if (rc) return rc;
    }
    for (int b = 0; b < B; b++) {
        act[b]->st.steps++;
        act[b]->st.head_sec += tsec[0];
        act[b]->st.fm_sec += tsec[1];
    }
    double tb = vox_time_now();
    int nseg = 0, seg_n[FM_MAX_B];
    int64_t seg_pos[FM_MAX_B];
    vox_kv *seg_kv[FM_MAX_B];
    vox_tts_session *segs[FM_MAX_B];
    for (int b = 0; b < B; b++) {
        vox_tts_session *s = act[b];
        const int32_t *fc = bcodes + (size_t)b * NC;
        if (fc[0] == 1) {
            s->done = 1;
            done[idx[b]] = 1;
            continue;
        }
        memcpy(codes + (size_t)idx[b] * NC, fc, (size_t)NC * sizeof(int32_t));
        s->frames++;
        rc = frame_embedding(m, fc, w->cemb, w->x + (size_t)nseg * D, err);
        if (rc) return rc;
        seg_n[nseg] = 1;
        seg_pos[nseg] = s->pos;
        seg_kv[nseg] = s->kv;
        segs[nseg++] = s;
    }
    if (nseg == 0) return VOX_OK;
    rc = lm_forward(m, w, nseg, nseg, seg_n, seg_pos, seg_kv, err);
    if (rc) return rc;
    for (int i = 0; i < nseg; i++) {
        BECALL(m, OPS(m)->copy(m->be, segs[i]->h, w->x + (size_t)i * D, (size_t)D * sizeof(float)));
        segs[i]->pos++;
    }
    BECALL(m, OPS(m)->sync(m->be));
    tb = vox_time_now() - tb;
    for (int i = 0; i < nseg; i++)
        segs[i]->st.backbone_sec += tb;
    return VOX_OK;
}

void vox_tts_session_stats(const vox_tts_session *s, vox_tts_stats *st) {
    *st = s->st;
}

int vox_tts_session_step(vox_tts_session *s, int32_t *codes, int *done, vox_error *err) {
    if (!s) return vox_set_error(err, VOX_ERR_ARG, "vox_tts_session_step: NULL session");
    return vox_tts_step_batch(&s, 1, codes, done, err);
}

int vox_tts_session_hidden(const vox_tts_session *s, float *h_host, vox_error *err) {
    if (s->m->be->ops->download(s->m->be, h_host, s->h, (size_t)s->m->c.dim * sizeof(float)))
        return be_fail(s->m, err);
    return VOX_OK;
}

int vox_tts_session_frames(const vox_tts_session *s) {
    return s->frames;
}
