/* lm_blocks.c - transformer building blocks (vox_lm.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_hd.h"
#include "vox_lm.h"

int vox_lm_op_error(vox_backend *be, int rc, const char *what, vox_error *err) {
    if (rc == VOX_OK) return VOX_OK;
    return vox_set_error(err, rc, "%s: %s", what, be->err.msg[0] ? be->err.msg : "backend op failed");
}

#define OP(call, what)                                                     \
    do {                                                                   \
        int rc_ = (call);                                                  \
        if (rc_ != VOX_OK) return vox_lm_op_error(be, rc_, (what), err);  \
    } while (0)

/* ---- store ---- */

void vox_lm_store_init(vox_lm_store *s, vox_backend *be) {
    memset(s, 0, sizeof *s);
    s->be = be;
    s->direct = be && be->name && strcmp(be->name, "cpu") == 0;
}

void vox_lm_store_free(vox_lm_store *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) s->be->ops->free(s->be, s->ptrs[i]);
    free(s->ptrs);
    s->ptrs = NULL;
    s->n = s->cap = 0;
}

void *vox_lm_store_alloc(vox_lm_store *s, size_t bytes, vox_error *err) {
    if (s->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 64;
        void **np = realloc(s->ptrs, (size_t)nc * sizeof *np);
        if (!np) {
            vox_set_error(err, VOX_ERR_NOMEM, "out of memory (weight list)");
            return NULL;
        }
        s->ptrs = np;
        s->cap = nc;
    }
    void *p = s->be->ops->alloc(s->be, bytes ? bytes : 1);
    if (!p) {
        vox_set_error(err, VOX_ERR_NOMEM, "backend alloc of %zu bytes failed: %s", bytes,
                      s->be->err.msg);
        return NULL;
    }
    s->ptrs[s->n++] = p;
    return p;
}

/* ---- weight loading ---- */

int vox_lm_load_mat(vox_lm_store *s, const vox_st_file *f, const char *name, int ndim,
                    const int64_t *shape, vox_mat *out, vox_error *err) {
    const vox_st_tensor *t;
    int rc = vox_st_get(f, name, -1, ndim, shape, &t, err);
    if (rc != VOX_OK) return rc;
    int64_t cols = 1;
    for (int i = 1; i < ndim; i++) cols *= shape[i];
    out->dtype = t->dtype;
    out->rows = shape[0];
    out->cols = cols;
    if (s->direct) {
        out->data = t->data;
        return VOX_OK;
    }
    void *p = vox_lm_store_alloc(s, t->nbytes, err);
    if (!p) return err ? err->code : VOX_ERR_NOMEM;
    rc = s->be->ops->upload(s->be, p, t->data, t->nbytes);
    if (rc != VOX_OK) return vox_lm_op_error(s->be, rc, name, err);
    out->data = p;
    return VOX_OK;
}

int vox_lm_load_vec(vox_lm_store *s, const vox_st_file *f, const char *name, int64_t n,
                    float **out, vox_error *err) {
    const vox_st_tensor *t;
    int rc = vox_st_get(f, name, -1, 1, &n, &t, err);
    if (rc != VOX_OK) return rc;
    float *host = malloc((size_t)n * sizeof(float));
    if (!host) return vox_set_error(err, VOX_ERR_NOMEM, "out of memory converting %s", name);
    const uint16_t *h = t->data;
    for (int64_t i = 0; i < n; i++) {
        if (t->dtype == VOX_DT_BF16) host[i] = vox_bf16_to_f32(h[i]);
        else if (t->dtype == VOX_DT_F16) host[i] = vox_f16_to_f32(h[i]);
        else memcpy(&host[i], (const char *)t->data + 4 * i, 4);
    }
    float *p = vox_lm_store_alloc(s, (size_t)n * sizeof(float), err);
    if (!p) {
        free(host);
        return err ? err->code : VOX_ERR_NOMEM;
    }
    rc = s->be->ops->upload(s->be, p, host, (size_t)n * sizeof(float));
    free(host);
    if (rc != VOX_OK) return vox_lm_op_error(s->be, rc, name, err);
    *out = p;
    return VOX_OK;
}

int vox_lm_load_linear(vox_lm_store *s, const vox_st_file *f, const char *prefix, int64_t out,
                       int64_t in, int with_bias, vox_lm_linear *lin, vox_error *err) {
    char name[512];
    int64_t shape[2] = {out, in};
    snprintf(name, sizeof name, "%s.weight", prefix);
    int rc = vox_lm_load_mat(s, f, name, 2, shape, &lin->w, err);
    if (rc != VOX_OK) return rc;
    lin->b = NULL;
    if (with_bias) {
        float *b = NULL;
        snprintf(name, sizeof name, "%s.bias", prefix);
        rc = vox_lm_load_vec(s, f, name, out, &b, err);
        if (rc != VOX_OK) return rc;
        lin->b = b;
    }
    return VOX_OK;
}

/* ---- scratch ---- */

void vox_lm_scratch_init(vox_lm_scratch *sc, vox_backend *be) {
    memset(sc, 0, sizeof *sc);
    sc->be = be;
}

void vox_lm_scratch_free(vox_lm_scratch *sc) {
    if (!sc || !sc->be) return;
    float **bufs[7] = {&sc->xn, &sc->q, &sc->k, &sc->v, &sc->att, &sc->h1, &sc->h3};
    for (int i = 0; i < 7; i++) {
        if (*bufs[i]) sc->be->ops->free(sc->be, *bufs[i]);
        *bufs[i] = NULL;
        sc->cap_floats[i] = 0;
    }
    sc->cap_rows = 0;
}

int vox_lm_scratch_reserve(vox_lm_scratch *sc, const vox_lm_dims *d, int n_rows, vox_error *err) {
    size_t qd = (size_t)d->n_heads * d->head_dim, kvd = (size_t)d->n_kv_heads * d->head_dim;
    size_t need[7] = {(size_t)d->dim, qd, kvd, kvd, qd, (size_t)d->hidden, (size_t)d->hidden};
    float **bufs[7] = {&sc->xn, &sc->q, &sc->k, &sc->v, &sc->att, &sc->h1, &sc->h3};
    for (int i = 0; i < 7; i++) {
        size_t want = need[i] * (size_t)n_rows;
        if (want <= sc->cap_floats[i]) continue;
        if (*bufs[i]) sc->be->ops->free(sc->be, *bufs[i]);
        *bufs[i] = sc->be->ops->alloc(sc->be, want * sizeof(float));
        if (!*bufs[i]) {
            sc->cap_floats[i] = 0;
            return vox_set_error(err, VOX_ERR_NOMEM, "scratch of %zu floats: %s", want,
                                 sc->be->err.msg);
        }
        sc->cap_floats[i] = want;
    }
    if (n_rows > sc->cap_rows) sc->cap_rows = n_rows;
    return VOX_OK;
}

static int scratch_fits(const vox_lm_scratch *sc, const vox_lm_dims *d, int n_rows) {
    size_t qd = (size_t)d->n_heads * d->head_dim, kvd = (size_t)d->n_kv_heads * d->head_dim;
    size_t need[7] = {(size_t)d->dim, qd, kvd, kvd, qd, (size_t)d->hidden, (size_t)d->hidden};
    for (int i = 0; i < 7; i++)
        if (need[i] * (size_t)n_rows > sc->cap_floats[i]) return 0;
    return 1;
}

/* ---- layer ---- */

int vox_lm_layer_forward(vox_backend *be, const vox_lm_dims *d, const vox_lm_layer *L, float *x,
                         int n_rows, const vox_lm_seg *segs, int n_segs, vox_lm_scratch *sc,
                         vox_error *err) {
    const vox_backend_ops *o = be->ops;
    if (!scratch_fits(sc, d, n_rows))
        return vox_set_error(err, VOX_ERR_ARG, "layer forward: scratch too small for %d rows",
                             n_rows);
    int qd = d->n_heads * d->head_dim, kvd = d->n_kv_heads * d->head_dim;
    float scale = 1.0f / sqrtf((float)d->head_dim);

    /* attention branch */
    OP(o->rmsnorm(be, sc->xn, x, L->attn_norm, n_rows, d->dim, d->eps), "attention_norm");
    OP(o->matmul(be, sc->q, sc->xn, &L->wq.w, L->wq.b, n_rows), "wq");
    OP(o->matmul(be, sc->k, sc->xn, &L->wk.w, L->wk.b, n_rows), "wk");
    OP(o->matmul(be, sc->v, sc->xn, &L->wv.w, L->wv.b, n_rows), "wv");
    for (int s = 0; s < n_segs; s++) {
        const vox_lm_seg *g = &segs[s];
        float *q = sc->q + (size_t)g->row0 * qd;
        float *k = sc->k + (size_t)g->row0 * kvd;
        float *v = sc->v + (size_t)g->row0 * kvd;
        float *a = sc->att + (size_t)g->row0 * qd;
        OP(o->rope(be, q, g->n_rows, d->n_heads, d->head_dim, g->pos0, d->theta), "rope q");
        OP(o->rope(be, k, g->n_rows, d->n_kv_heads, d->head_dim, g->pos0, d->theta), "rope k");
        OP(o->kv_write(be, g->kv, k, v, g->n_rows, g->pos0), "kv_write");
        OP(o->attention(be, a, q, g->n_rows, g->pos0, g->kv, d->n_heads, d->n_kv_heads,
                        d->head_dim, d->window, scale),
           "attention");
    }
    OP(o->matmul(be, sc->xn, sc->att, &L->wo.w, L->wo.b, n_rows), "wo");
    OP(o->add(be, x, x, sc->xn, (int64_t)n_rows * d->dim), "residual");

    /* feed-forward branch (per-segment norm weight for Ada RMS-Norm) */
    for (int s = 0; s < n_segs; s++) {
        const vox_lm_seg *g = &segs[s];
        const float *w = g->ffn_norm ? g->ffn_norm : L->ffn_norm;
        size_t off = (size_t)g->row0 * d->dim;
        OP(o->rmsnorm(be, sc->xn + off, x + off, w, g->n_rows, d->dim, d->eps), "ffn_norm");
    }
    OP(o->matmul(be, sc->h1, sc->xn, &L->w1.w, L->w1.b, n_rows), "w1");
    OP(o->matmul(be, sc->h3, sc->xn, &L->w3.w, L->w3.b, n_rows), "w3");
    OP(o->swiglu(be, sc->h1, sc->h1, sc->h3, (int64_t)n_rows * d->hidden), "swiglu");
    OP(o->matmul(be, sc->xn, sc->h1, &L->w2.w, L->w2.b, n_rows), "w2");
    OP(o->add(be, x, x, sc->xn, (int64_t)n_rows * d->dim), "residual");
    return VOX_OK;
}

/* ---- KV ---- */

int vox_lm_kv_alloc(vox_backend *be, vox_kv *kv, int64_t cap, int kv_dim, vox_error *err) {
    memset(kv, 0, sizeof *kv);
    size_t bytes = (size_t)cap * (size_t)kv_dim * sizeof(float);
    kv->k = be->ops->alloc(be, bytes);
    kv->v = kv->k ? be->ops->alloc(be, bytes) : NULL;
    if (!kv->k || !kv->v) {
        vox_lm_kv_free(be, kv);
        return vox_set_error(err, VOX_ERR_NOMEM, "KV ring of %lld x %d floats: %s",
                             (long long)cap, kv_dim, be->err.msg);
    }
    kv->cap = cap;
    kv->kv_dim = kv_dim;
    kv->end = 0;
    return VOX_OK;
}

void vox_lm_kv_free(vox_backend *be, vox_kv *kv) {
    if (!kv) return;
    if (kv->k) be->ops->free(be, kv->k);
    if (kv->v) be->ops->free(be, kv->v);
    kv->k = kv->v = NULL;
    kv->cap = 0;
    kv->end = 0;
}

void vox_lm_kv_reset(vox_kv *kv) { kv->end = 0; }

/* ---- Ada RMS-Norm ---- */

int vox_lm_ada_fold(vox_backend *be, float *folded, const float *norm_w, const vox_mat *down,
                    const vox_mat *up, const float *cond, float *tmp, vox_error *err) {
    const vox_backend_ops *o = be->ops;
    int64_t ada = down->rows, dim = up->rows;
    float *h = tmp, *a = tmp + ada;
    OP(o->matmul(be, h, cond, down, NULL, 1), "ada down");
    OP(o->gelu(be, h, h, ada), "ada gelu");
    OP(o->matmul(be, a, h, up, NULL, 1), "ada up");
    /* w * (1 + a) = w + w * a */
    OP(o->mul(be, folded, norm_w, a, dim), "ada fold");
    OP(o->add(be, folded, folded, norm_w, dim), "ada fold");
    return VOX_OK;
}

void vox_lm_time_embedding(float *out, int dim, double t, double theta) {
    int half = dim / 2;
    for (int i = 0; i < half; i++) {
        /* as the reference: inv_freq in fp32, product t * inv_freq in fp32 */
        float inv = (float)exp(-log(theta) * (double)i / (double)half);
        float e = (float)t * inv;
        out[i] = cosf(e);
        out[half + i] = sinf(e);
    }
}
