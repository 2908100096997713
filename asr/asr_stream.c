/* asr_stream.c - Voxtral Realtime stream sessions and the batched step (vox_asr.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asr_internal.h"

enum { ST_WAIT = 0, ST_RUN = 1, ST_DONE = 2 };

/* Buffers for one batched step; owned by the stream that is streams[0] of the step. */
typedef struct asr_batch {
    vox_lm_scratch enc_sc, dec_sc;
    int cap_enc_rows, cap_dec_rows, cap_streams;
    float *x_enc;                    /* [cap_enc_rows][enc_dim] */
    float *a1, *a2;                  /* [cap_enc_rows / ds][dec_dim] adapter hidden / output */
    float *x_dec;                    /* [cap_dec_rows][dec_dim] */
    float *h;                        /* [cap_streams][dec_dim] last rows */
    float *logits;                   /* [cap_streams][vocab] */
    vox_lm_seg *segs;                /* [cap_streams] host */
    int *k_tok, *dec_rows, *dec_idx; /* [cap_streams] host */
    int32_t *ids;                    /* [cap_dec_rows] host */
    int32_t *out_ids;                /* [cap_streams] host */
} asr_batch;

struct vox_asr_stream {
    const vox_asr_model *m;
    vox_backend *be;
    vox_asr_opts o;
    int n_delay, P;
    int32_t *prompt; /* [P] */

    /* audio -> mel */
    vox_mel_stream *ms;
    float *mel_buf; /* host [mel_cap][n_mels] pending frames from mel_head */
    size_t mel_cap, mel_n, mel_head;
    int64_t mel_done; /* frames handed to the conv stem */
    int64_t samples;  /* samples fed to the mel stream (incl. padding) */
    int mel_finished;

    /* conv stem tails (backend) */
    float *mel_in; /* [2 + mel_per_tok * max_chunk][n_mels], rows 0..1 = last 2 mel frames */
    float *c0_in;  /* [1 + mel_per_tok * max_chunk][enc_dim], row 0 = last conv0 output */

    /* encoder */
    vox_kv *enc_kv; /* [enc_layers] */
    int64_t enc_pos;

    /* adapter-token ring (backend) */
    float *adp; /* [adp_cap][dec_dim] */
    int64_t adp_cap, adp_end;
    int64_t n_final; /* total audio tokens once finished, else -1 */
    int64_t n_real;  /* audio tokens holding pushed audio (before the end padding) once ended,
                        else -1: tokens >= n_real are the end flush's zeros */

    /* decoder */
    vox_kv *dec_kv; /* [dec_layers] */
    float *fold;    /* [dec_layers][dec_dim] ffn_norm * (1 + ada(t_cond)) */
    float *t_cond;  /* host [dec_dim] */
    int state;
    int64_t a0;      /* audio token of decoder position 0 */
    int64_t dec_pos; /* next decoder position to run (RUN) */
    int64_t pos_limit;
    int32_t last_tok;
    int rut, draining, restart_flag;
    int64_t restarts, n_generated;

    /* output */
    vox_asr_token *q;
    size_t q_cap, q_head, q_n;
    vox_tekken_stream ts;
    char *text, *tmp_text;
    size_t text_len, text_cap, tmp_cap;
    int text_taken;

    vox_asr_taps taps;
    vox_asr_stats stats;
    asr_batch b;
};

#define OPC(call, what)                                                                            \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != VOX_OK) return vox_lm_op_error(be, rc_, (what), err);                           \
    } while (0)

void vox_asr_opts_default(vox_asr_opts *o) {
    memset(o, 0, sizeof *o);
    o->delay_ms = 0;
    o->watchdog = 1;
    o->rut_tokens = 250;
    o->max_chunk_tokens = 16;
    o->dec_ctx = 8192;
}

static void *balloc(vox_backend *be, size_t bytes, vox_error *err) {
    void *p = be->ops->alloc(be, bytes ? bytes : 4);
    if (!p) vox_set_error(err, VOX_ERR_NOMEM, "backend alloc of %zu bytes: %s", bytes, be->err.msg);
    return p;
}
static void bfree(vox_backend *be, void *p) {
    if (p) be->ops->free(be, p);
}

/* ---- batch buffers ---- */

static void batch_free(vox_backend *be, asr_batch *b) {
    vox_lm_scratch_free(&b->enc_sc);
    vox_lm_scratch_free(&b->dec_sc);
    bfree(be, b->x_enc);
    bfree(be, b->a1);
    bfree(be, b->a2);
    bfree(be, b->x_dec);
    bfree(be, b->h);
    bfree(be, b->logits);
    free(b->segs);
    free(b->k_tok);
    free(b->dec_rows);
    free(b->dec_idx);
    free(b->ids);
    free(b->out_ids);
    memset(b, 0, sizeof *b);
}

static int batch_reserve(const vox_asr_model *m, vox_backend *be, asr_batch *b, int n_streams,
                         int enc_rows, int dec_rows, vox_error *err) {
    if (!b->enc_sc.be) {
        vox_lm_scratch_init(&b->enc_sc, be);
        vox_lm_scratch_init(&b->dec_sc, be);
    }
    int E = m->enc.dim, D = m->dec.dim;
    if (enc_rows > b->cap_enc_rows) {
        bfree(be, b->x_enc);
        bfree(be, b->a1);
        bfree(be, b->a2);
        b->cap_enc_rows = 0;
        int tr = enc_rows / m->ds + 1;
        if (!(b->x_enc = balloc(be, (size_t)enc_rows * E * 4, err)) ||
            !(b->a1 = balloc(be, (size_t)tr * D * 4, err)) ||
            !(b->a2 = balloc(be, (size_t)tr * D * 4, err)))
            return VOX_ERR_NOMEM;
        if (vox_lm_scratch_reserve(&b->enc_sc, &m->enc, enc_rows, err)) return VOX_ERR_NOMEM;
        b->cap_enc_rows = enc_rows;
    }
    if (dec_rows > b->cap_dec_rows) {
        bfree(be, b->x_dec);
        free(b->ids);
        b->ids = NULL;
        b->cap_dec_rows = 0;
        if (!(b->x_dec = balloc(be, (size_t)dec_rows * D * 4, err))) return VOX_ERR_NOMEM;
        if (!(b->ids = malloc((size_t)dec_rows * sizeof *b->ids)))
            return vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        if (vox_lm_scratch_reserve(&b->dec_sc, &m->dec, dec_rows, err)) return VOX_ERR_NOMEM;
        b->cap_dec_rows = dec_rows;
    }
    if (n_streams > b->cap_streams) {
        bfree(be, b->h);
        bfree(be, b->logits);
        free(b->segs);
        free(b->k_tok);
        free(b->dec_rows);
        free(b->dec_idx);
        free(b->out_ids);
        b->h = b->logits = NULL;
        b->segs = NULL;
        b->k_tok = b->dec_rows = b->dec_idx = NULL;
        b->out_ids = NULL;
        b->cap_streams = 0;
        size_t ns = (size_t)n_streams;
        if (!(b->h = balloc(be, ns * D * 4 + (size_t)(m->ada_dim + D) * 4, err)) ||
            !(b->logits = balloc(be, ns * (size_t)m->info.vocab * 4, err)))
            return VOX_ERR_NOMEM;
        b->segs = calloc(ns, sizeof *b->segs);
        b->k_tok = calloc(ns, sizeof(int));
        b->dec_rows = calloc(ns, sizeof(int));
        b->dec_idx = calloc(ns, sizeof(int));
        b->out_ids = calloc(ns, sizeof(int32_t));
        if (!b->segs || !b->k_tok || !b->dec_rows || !b->dec_idx || !b->out_ids)
            return vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        b->cap_streams = n_streams;
    }
    return VOX_OK;
}

/* ---- create / free ---- */

static int fold_ada(vox_asr_stream *s, vox_error *err) {
    const vox_asr_model *m = s->m;
    vox_backend *be = s->be;
    int D = m->dec.dim;
    float *cond = balloc(be, (size_t)(D + m->ada_dim + D) * 4, err);
    if (!cond) return VOX_ERR_NOMEM;
    vox_lm_time_embedding(s->t_cond, D, (double)s->n_delay, 10000.0);
    int rc = be->ops->upload(be, cond, s->t_cond, (size_t)D * 4);
    if (rc) {
        bfree(be, cond);
        return vox_lm_op_error(be, rc, "t_cond upload", err);
    }
    for (int l = 0; l < m->info.dec_layers && rc == VOX_OK; l++)
        rc = vox_lm_ada_fold(be, s->fold + (size_t)l * D, m->dec_layers[l].ffn_norm,
                             &m->ada_down[l], &m->ada_up[l], cond, cond + D, err);
    bfree(be, cond);
    return rc;
}

static int push_zeros(vox_asr_stream *s, size_t n, vox_error *err);

vox_asr_stream *vox_asr_stream_create(const vox_asr_model *m, int delay_ms, vox_error *err) {
    vox_asr_opts o;
    vox_asr_opts_default(&o);
    o.delay_ms = delay_ms;
    return vox_asr_stream_create_opts(m, &o, err);
}

vox_asr_stream *vox_asr_stream_create_opts(const vox_asr_model *m, const vox_asr_opts *opts,
                                           vox_error *err) {
    if (!m || !opts) {
        vox_set_error(err, VOX_ERR_ARG, "vox_asr_stream_create: NULL argument");
        return NULL;
    }
    vox_asr_opts o = *opts;
    if (o.delay_ms <= 0) o.delay_ms = m->info.default_delay_ms;
    if (o.rut_tokens <= 0) o.rut_tokens = 250;
    if (o.max_chunk_tokens <= 0) o.max_chunk_tokens = 16;
    if (o.dec_ctx <= 0) o.dec_ctx = 8192;
    int n_delay;
    if (vox_asr_delay_tokens(m, o.delay_ms, &n_delay, err)) return NULL;
    if (m->enc.window <= 0) {
        vox_set_error(err, VOX_ERR_UNSUPPORTED,
                      "encoder without sliding_window is not supported for streaming");
        return NULL;
    }
    vox_asr_stream *s = calloc(1, sizeof *s);
    if (!s) {
        vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        return NULL;
    }
    vox_backend *be = m->be;
    s->m = m;
    s->be = be;
    s->o = o;
    s->n_delay = n_delay;
    int nl = m->info.n_left_pad_tokens;
    s->P = 1 + nl + n_delay;
    s->n_final = -1;
    s->n_real = -1;
    int E = m->enc.dim, D = m->dec.dim, C = o.max_chunk_tokens;
    int ne = m->info.enc_layers, nd = m->info.dec_layers;
    s->prompt = malloc((size_t)s->P * sizeof *s->prompt);
    s->t_cond = malloc((size_t)D * sizeof(float));
    s->enc_kv = calloc((size_t)ne, sizeof *s->enc_kv);
    s->dec_kv = calloc((size_t)nd, sizeof *s->dec_kv);
    if (!s->prompt || !s->t_cond || !s->enc_kv || !s->dec_kv) {
        vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        goto fail;
    }
    s->prompt[0] = m->info.bos;
    for (int i = 1; i < s->P; i++)
        s->prompt[i] = m->info.pad;
    if (!(s->ms = vox_mel_stream_new(m->mel, err))) goto fail;
    if (!(s->mel_in = balloc(be, (size_t)(2 + m->mel_per_tok * C) * m->n_mels * 4, err)) ||
        !(s->c0_in = balloc(be, (size_t)(1 + m->mel_per_tok * C) * E * 4, err)))
        goto fail;
    int64_t ecap = (int64_t)m->enc.window + (int64_t)m->ds * C - 1;
    for (int l = 0; l < ne; l++)
        if (vox_lm_kv_alloc(be, &s->enc_kv[l], ecap, m->enc.n_kv_heads * m->enc.head_dim, err))
            goto fail;
    s->adp_cap = nl + s->P + 3 * C;
    if (!(s->adp = balloc(be, (size_t)s->adp_cap * D * 4, err))) goto fail;
    int64_t dcap;
    if (m->dec.window > 0 && m->dec.window <= o.dec_ctx) {
        dcap = m->dec.window + s->P - 1;
        s->pos_limit = m->max_pos;
    } else {
        dcap = o.dec_ctx + s->P;
        s->pos_limit = o.dec_ctx < m->max_pos ? o.dec_ctx : m->max_pos;
    }
    if (o.max_dec_pos > 0 && o.max_dec_pos < s->pos_limit) s->pos_limit = o.max_dec_pos;
    if (s->pos_limit <= s->P) {
        vox_set_error(err, VOX_ERR_ARG,
                      "decoder position limit %lld must exceed the prompt length %d",
                      (long long)s->pos_limit, s->P);
        goto fail;
    }
    for (int l = 0; l < nd; l++)
        if (vox_lm_kv_alloc(be, &s->dec_kv[l], dcap, m->dec.n_kv_heads * m->dec.head_dim, err))
            goto fail;
    if (!(s->fold = balloc(be, (size_t)nd * D * 4, err))) goto fail;
    if (fold_ada(s, err)) goto fail;
    vox_tekken_stream_init(&s->ts, m->tok, VOX_TEKKEN_SPECIAL_IGNORE);
    s->tmp_cap = vox_tekken_stream_max_out(m->tok) + 8;
    if (!(s->tmp_text = malloc(s->tmp_cap))) {
        vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        goto fail;
    }
    s->state = ST_WAIT;
    s->a0 = 0;
    /* stream-start padding: n_left_pad_tokens of zeros */
    if (push_zeros(s, (size_t)nl * m->info.samples_per_token, err)) goto fail;
    return s;
fail:
    vox_asr_stream_free(s);
    return NULL;
}

void vox_asr_stream_free(vox_asr_stream *s) {
    if (!s) return;
    vox_backend *be = s->be;
    batch_free(be, &s->b);
    vox_mel_stream_free(s->ms);
    free(s->mel_buf);
    bfree(be, s->mel_in);
    bfree(be, s->c0_in);
    if (s->enc_kv)
        for (int l = 0; l < s->m->info.enc_layers; l++)
            vox_lm_kv_free(be, &s->enc_kv[l]);
    if (s->dec_kv)
        for (int l = 0; l < s->m->info.dec_layers; l++)
            vox_lm_kv_free(be, &s->dec_kv[l]);
    free(s->enc_kv);
    free(s->dec_kv);
    bfree(be, s->adp);
    bfree(be, s->fold);
    free(s->t_cond);
    free(s->prompt);
    free(s->q);
    free(s->text);
    free(s->tmp_text);
    free(s);
}

void vox_asr_stream_set_taps(vox_asr_stream *s, const vox_asr_taps *t) {
    if (t)
        s->taps = *t;
    else
        memset(&s->taps, 0, sizeof s->taps);
    if (s->taps.t_cond) memcpy(s->taps.t_cond, s->t_cond, (size_t)s->m->dec.dim * sizeof(float));
}

void vox_asr_stream_stats(const vox_asr_stream *s, vox_asr_stats *out) {
    *out = s->stats;
}

int vox_asr_stream_delay_tokens(const vox_asr_stream *s) {
    return s->n_delay;
}
int64_t vox_asr_stream_restarts(const vox_asr_stream *s) {
    return s->restarts;
}

/* ---- audio in ---- */

static int mel_take(vox_asr_stream *s, const float *x, size_t n, int finish, vox_error *err) {
    const vox_asr_model *m = s->m;
    size_t nf =
        finish ? vox_mel_stream_frames_at_finish(s->ms) : vox_mel_stream_frames_for(s->ms, n);
    /* compact, then grow */
    if (s->mel_head > 0 && (s->mel_head >= s->mel_n / 2 || s->mel_n + nf > s->mel_cap)) {
        memmove(s->mel_buf, s->mel_buf + s->mel_head * m->n_mels,
                (s->mel_n - s->mel_head) * m->n_mels * sizeof(float));
        s->mel_n -= s->mel_head;
        s->mel_head = 0;
    }
    if (s->mel_n + nf > s->mel_cap) {
        size_t nc = s->mel_cap ? s->mel_cap : 256;
        while (nc < s->mel_n + nf)
            nc *= 2;
        float *nb = realloc(s->mel_buf, nc * m->n_mels * sizeof(float));
        if (!nb) return vox_set_error(err, VOX_ERR_NOMEM, "out of memory (mel buffer)");
        s->mel_buf = nb;
        s->mel_cap = nc;
    }
    size_t got = 0;
    float *out = s->mel_buf + s->mel_n * m->n_mels;
    int rc = finish ? vox_mel_stream_finish(s->ms, out, nf, &got, err)
                    : vox_mel_stream_feed(s->ms, x, n, out, nf, &got, err);
    if (rc) return rc;
    s->mel_n += got;
    if (!finish) s->samples += (int64_t)n;
    return VOX_OK;
}

static int push_zeros(vox_asr_stream *s, size_t n, vox_error *err) {
    float z[1024] = {0};
    while (n > 0) {
        size_t k = n < 1024 ? n : 1024;
        int rc = mel_take(s, z, k, 0, err);
        if (rc) return rc;
        n -= k;
    }
    return VOX_OK;
}

int vox_asr_push(vox_asr_stream *s, const float *pcm, size_t n, vox_error *err) {
    if (!s || (n && !pcm)) return vox_set_error(err, VOX_ERR_ARG, "vox_asr_push: NULL argument");
    if (s->mel_finished)
        return vox_set_error(err, VOX_ERR_ARG, "vox_asr_push: stream already finished");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pcm[i]))
            return vox_set_error(err, VOX_ERR_ARG,
                                 "vox_asr_push: sample %zu is %s (expected finite PCM)", i,
                                 isnan(pcm[i]) ? "NaN" : "infinite");
    return mel_take(s, pcm, n, 0, err);
}

static int run_until_idle(vox_asr_stream *s, vox_error *err) {
    for (;;) {
        int prog = 0;
        int rc = vox_asr_step(s->m, &s, 1, &prog, err);
        if (rc) return rc;
        if (!prog) return VOX_OK;
    }
}

int vox_asr_feed(vox_asr_stream *s, const float *pcm, size_t n, vox_error *err) {
    int rc = vox_asr_push(s, pcm, n, err);
    return rc ? rc : run_until_idle(s, err);
}

static size_t right_pad(const vox_asr_stream *s) {
    int64_t t = s->m->info.samples_per_token;
    return (size_t)(((t - s->samples % t) % t) + (int64_t)(s->n_delay + 11) * t);
}

int vox_asr_flush(vox_asr_stream *s, vox_error *err) {
    if (!s) return vox_set_error(err, VOX_ERR_ARG, "vox_asr_flush: NULL stream");
    if (s->mel_finished) return VOX_OK;
    int rc = push_zeros(s, right_pad(s), err);
    if (rc) return rc;
    s->draining = 1;
    rc = run_until_idle(s, err);
    s->draining = 0;
    return rc;
}

int vox_asr_end(vox_asr_stream *s, vox_error *err) {
    if (!s) return vox_set_error(err, VOX_ERR_ARG, "vox_asr_end: NULL stream");
    if (s->mel_finished) return VOX_OK;
    int64_t t = s->m->info.samples_per_token;
    s->n_real = (s->samples + t - 1) / t;
    int rc = push_zeros(s, right_pad(s), err);
    if (!rc) rc = mel_take(s, NULL, 0, 1, err);
    if (rc) return rc;
    s->mel_finished = 1;
    s->n_final = s->adp_end + (int64_t)((s->mel_n - s->mel_head) / (size_t)s->m->mel_per_tok);
    return VOX_OK;
}

int vox_asr_finish(vox_asr_stream *s, vox_error *err) {
    if (!s) return vox_set_error(err, VOX_ERR_ARG, "vox_asr_finish: NULL stream");
    int rc = vox_asr_end(s, err);
    if (rc) return rc;
    rc = run_until_idle(s, err);
    if (rc) return rc;
    /* flush an incomplete UTF-8 tail */
    size_t len = 0;
    rc = vox_tekken_stream_flush(&s->ts, s->tmp_text, s->tmp_cap, &len, err);
    if (rc) return rc;
    if (len) {
        if (s->text_taken) s->text_len = 0, s->text_taken = 0;
        if (s->text_len + len + 1 > s->text_cap) {
            size_t nc = (s->text_len + len + 1) * 2;
            char *nt = realloc(s->text, nc);
            if (!nt) return vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
            s->text = nt;
            s->text_cap = nc;
        }
        memcpy(s->text + s->text_len, s->tmp_text, len);
        s->text_len += len;
        s->text[s->text_len] = 0;
    }
    s->state = ST_DONE;
    return VOX_OK;
}

int vox_asr_done(const vox_asr_stream *s) {
    if (s->state == ST_DONE) return 1;
    /* ended and nothing left to decode (the last audio position is never decoded) */
    if (s->n_final < 0 || s->mel_n > s->mel_head) return 0;
    int64_t a = s->state == ST_WAIT ? s->a0 + s->P - 1 : s->a0 + s->dec_pos;
    return a > s->n_final - 2;
}

/* ---- output ---- */

static int emit(vox_asr_stream *s, int32_t id, int64_t pos, int64_t a, vox_error *err) {
    if (s->q_n == s->q_cap) {
        size_t nc = s->q_cap ? 2 * s->q_cap : 64;
        vox_asr_token *nq = malloc(nc * sizeof *nq);
        if (!nq) return vox_set_error(err, VOX_ERR_NOMEM, "out of memory (token queue)");
        for (size_t i = 0; i < s->q_n; i++)
            nq[i] = s->q[(s->q_head + i) % s->q_cap];
        free(s->q);
        s->q = nq;
        s->q_cap = nc;
        s->q_head = 0;
    }
    vox_asr_token *t = &s->q[(s->q_head + s->q_n) % s->q_cap];
    s->q_n++;
    t->id = id;
    t->pos = pos;
    t->audio_tok = a;
    t->t_sec = (double)(a + 1 - s->n_delay - s->m->info.n_left_pad_tokens) *
               (double)s->m->info.samples_per_token / (double)s->m->info.sample_rate;
    t->restart = s->restart_flag;
    s->restart_flag = 0;
    size_t len = 0;
    int rc = vox_tekken_stream_push(&s->ts, id, s->tmp_text, s->tmp_cap, &len, err);
    if (rc) return rc;
    if (s->text_taken) s->text_len = 0, s->text_taken = 0;
    if (s->text_len + len + 1 > s->text_cap) {
        size_t nc = (s->text_len + len + 1) * 2 + 64;
        char *nt = realloc(s->text, nc);
        if (!nt) return vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        s->text = nt;
        s->text_cap = nc;
    }
    memcpy(s->text + s->text_len, s->tmp_text, len);
    s->text_len += len;
    s->text[s->text_len] = 0;
    return VOX_OK;
}

int vox_asr_get_tokens(vox_asr_stream *s, vox_asr_token *out, int max) {
    int k = 0;
    while (k < max && s->q_n > 0) {
        out[k++] = s->q[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_n--;
    }
    return k;
}

const char *vox_asr_get_text(vox_asr_stream *s, size_t *len) {
    if (s->text_taken) s->text_len = 0;
    s->text_taken = 1;
    if (len) *len = s->text_len;
    return s->text ? s->text : "";
}

/* ---- the step ---- */

static int64_t need_audio(const vox_asr_stream *s) {
    return s->state == ST_WAIT ? s->a0 + s->P - 1 : s->a0 + s->dec_pos;
}

/* Whole audio tokens of pending mel this stream's encoder may take now. */
static int enc_tokens_ready(const vox_asr_stream *s) {
    const vox_asr_model *m = s->m;
    if (s->state == ST_DONE) return 0;
    int64_t k = (int64_t)((s->mel_n - s->mel_head) / (size_t)m->mel_per_tok);
    if (k > s->o.max_chunk_tokens) k = s->o.max_chunk_tokens;
    int64_t ahead = s->adp_end - need_audio(s);
    if (ahead >= 2 * s->o.max_chunk_tokens) return 0;
    int64_t keep = s->state == ST_WAIT ? s->a0 : s->a0 + s->dec_pos - m->info.n_left_pad_tokens;
    if (keep < 0) keep = 0;
    int64_t room = s->adp_cap - (s->adp_end - keep);
    if (k > room) k = room;
    return k > 0 ? (int)k : 0;
}

static void tap_rows(vox_backend *be, float *dst, int64_t cap, int64_t row0, const float *src,
                     int64_t n, int width) {
    if (!dst) return;
    for (int64_t i = 0; i < n; i++)
        if (row0 + i >= 0 && row0 + i < cap)
            be->ops->download(be, dst + (row0 + i) * width, src + i * width, (size_t)width * 4);
}

/* conv stem of k tokens of s into x[4k][E]. */
static int conv_stem(vox_asr_stream *s, int k, float *x, vox_error *err) {
    const vox_asr_model *m = s->m;
    vox_backend *be = s->be;
    int nm = m->n_mels, E = m->enc.dim, nf = k * m->mel_per_tok;
    const float *src = s->mel_buf + s->mel_head * nm;
    if (s->taps.mel)
        for (int i = 0; i < nf; i++)
            if (s->mel_done + i < s->taps.mel_cap)
                memcpy(s->taps.mel + (s->mel_done + i) * nm, src + (size_t)i * nm, (size_t)nm * 4);
    OPC(be->ops->upload(be, s->mel_in + 2 * nm, src, (size_t)nf * nm * 4), "mel upload");
    OPC(be->ops->conv1d(be, s->c0_in + E, s->mel_in, &m->conv0_w, m->conv0_b, nf + 2, nm, E, 3, 1,
                        0),
        "conv0");
    OPC(be->ops->gelu(be, s->c0_in + E, s->c0_in + E, (int64_t)nf * E), "conv0 gelu");
    OPC(be->ops->conv1d(be, x, s->c0_in, &m->conv1_w, m->conv1_b, nf + 1, E, E, 3, 2, 0), "conv1");
    OPC(be->ops->gelu(be, x, x, (int64_t)(nf / 2) * E), "conv1 gelu");
    /* carry the tails */
    OPC(be->ops->copy(be, s->mel_in, s->mel_in + (size_t)nf * nm, (size_t)2 * nm * 4), "mel tail");
    OPC(be->ops->copy(be, s->c0_in, s->c0_in + (size_t)nf * E, (size_t)E * 4), "conv tail");
    tap_rows(be, s->taps.conv, s->taps.conv_cap, s->enc_pos, x, nf / 2, E);
    s->mel_head += (size_t)nf;
    s->mel_done += nf;
    return VOX_OK;
}

static void restart_decoder(vox_asr_stream *s) {
    int64_t a_next = s->a0 + (s->state == ST_RUN ? s->dec_pos : 0);
    int64_t a0 = a_next - s->m->info.n_left_pad_tokens;
    int64_t oldest = s->adp_end - s->adp_cap;
    if (a0 < oldest) a0 = oldest;
    if (a0 < 0) a0 = 0;
    s->a0 = a0;
    s->dec_pos = 0;
    s->state = ST_WAIT;
    s->rut = 0;
    for (int l = 0; l < s->m->info.dec_layers; l++)
        vox_lm_kv_reset(&s->dec_kv[l]);
    s->restarts++;
    s->restart_flag = 1;
}

/* Rows this stream's decoder runs now (0: nothing to do). */
static int dec_rows_ready(vox_asr_stream *s) {
    if (s->state == ST_DONE) return 0;
    int64_t a = need_audio(s);
    if (a >= s->adp_end) return 0;
    /* offline rule (as the reference's max_length): the last audio token is never decoded */
    if (s->n_final >= 0 && a > s->n_final - 2) return 0;
    return s->state == ST_WAIT ? s->P : 1;
}

int vox_asr_step(const vox_asr_model *m, vox_asr_stream **S, int n, int *progress, vox_error *err) {
    if (progress) *progress = 0;
    if (!m || !S || n <= 0) return vox_set_error(err, VOX_ERR_ARG, "vox_asr_step: bad arguments");
    for (int i = 0; i < n; i++)
        if (!S[i] || S[i]->m != m)
            return vox_set_error(err, VOX_ERR_ARG,
                                 "vox_asr_step: stream %d is NULL or of another model", i);
    vox_backend *be = m->be;
    asr_batch *b = &S[0]->b;
    int E = m->enc.dim, D = m->dec.dim, V = m->info.vocab;
    int nprog = 0;
    if (batch_reserve(m, be, b, n, 0, 0, err)) return err ? err->code : VOX_ERR_NOMEM;

    /* ---- encoder: every stream's ready tokens in one pass ---- */
    int enc_rows = 0, tok_rows = 0;
    for (int i = 0; i < n; i++) {
        b->k_tok[i] = enc_tokens_ready(S[i]);
        enc_rows += b->k_tok[i] * m->ds;
    }
    double t_enc = vox_time_now();
    if (enc_rows > 0) {
        if (batch_reserve(m, be, b, n, enc_rows, 0, err)) return err ? err->code : VOX_ERR_NOMEM;
        int ns = 0, row = 0;
        for (int i = 0; i < n; i++) {
            int k = b->k_tok[i];
            if (!k) continue;
            int rc = conv_stem(S[i], k, b->x_enc + (size_t)row * E, err);
            if (rc) return rc;
            b->segs[ns] = (vox_lm_seg){row, k * m->ds, S[i]->enc_pos, NULL, NULL};
            b->dec_idx[ns] = i;
            ns++;
            row += k * m->ds;
        }
        for (int l = 0; l < m->info.enc_layers; l++) {
            for (int g = 0; g < ns; g++)
                b->segs[g].kv = &S[b->dec_idx[g]]->enc_kv[l];
            int rc = vox_lm_layer_forward(be, &m->enc, &m->enc_layers[l], b->x_enc, enc_rows,
                                          b->segs, ns, &b->enc_sc, err);
            if (rc) return rc;
        }
        OPC(be->ops->rmsnorm(be, b->x_enc, b->x_enc, m->enc_norm, enc_rows, E, m->enc.eps),
            "encoder norm");
        tok_rows = enc_rows / m->ds;
        vox_mat a0 = m->adapt0;
        OPC(be->ops->matmul(be, b->a1, b->x_enc, &a0, NULL, tok_rows), "adapter 0");
        OPC(be->ops->gelu(be, b->a1, b->a1, (int64_t)tok_rows * D), "adapter gelu");
        OPC(be->ops->matmul(be, b->a2, b->a1, &m->adapt2, NULL, tok_rows), "adapter 2");
        int trow = 0;
        for (int g = 0; g < ns; g++) {
            vox_asr_stream *s = S[b->dec_idx[g]];
            int k = b->k_tok[b->dec_idx[g]];
            tap_rows(be, s->taps.enc, s->taps.enc_cap, s->enc_pos,
                     b->x_enc + (size_t)b->segs[g].row0 * E, (int64_t)k * m->ds, E);
            tap_rows(be, s->taps.adapter, s->taps.adapter_cap, s->adp_end, b->a2 + (size_t)trow * D,
                     k, D);
            for (int j = 0; j < k; j++) {
                int64_t slot = (s->adp_end + j) % s->adp_cap;
                OPC(be->ops->copy(be, s->adp + slot * D, b->a2 + (size_t)(trow + j) * D,
                                  (size_t)D * 4),
                    "adapter ring");
            }
            s->adp_end += k;
            s->enc_pos += (int64_t)k * m->ds;
            trow += k;
        }
        nprog += ns;
        S[0]->stats.enc_sec += vox_time_now() - t_enc;
        S[0]->stats.enc_frames += enc_rows;
    }

    /* ---- decoder: prefill or one step per stream, one pass ---- */
    int dec_rows = 0, ns = 0;
    for (int i = 0; i < n; i++) {
        int r = dec_rows_ready(S[i]);
        b->dec_rows[i] = r;
        dec_rows += r;
    }
    double t_dec = vox_time_now();
    if (dec_rows > 0) {
        if (batch_reserve(m, be, b, n, 0, dec_rows, err)) return err ? err->code : VOX_ERR_NOMEM;
        int row = 0;
        for (int i = 0; i < n; i++) {
            vox_asr_stream *s = S[i];
            int r = b->dec_rows[i];
            if (!r) continue;
            int64_t pos0 = s->state == ST_WAIT ? 0 : s->dec_pos;
            for (int j = 0; j < r; j++)
                b->ids[row + j] = s->state == ST_WAIT ? s->prompt[j] : s->last_tok;
            OPC(be->ops->embed(be, b->x_dec + (size_t)row * D, &m->tok_emb, b->ids + row, r),
                "embed");
            for (int j = 0; j < r; j++) {
                int64_t slot = (s->a0 + pos0 + j) % s->adp_cap;
                float *xr = b->x_dec + (size_t)(row + j) * D;
                OPC(be->ops->add(be, xr, xr, s->adp + slot * D, D), "audio + text");
            }
            b->segs[ns] = (vox_lm_seg){row, r, pos0, NULL, NULL};
            b->dec_idx[ns] = i;
            ns++;
            row += r;
        }
        for (int l = 0; l < m->info.dec_layers; l++) {
            for (int g = 0; g < ns; g++) {
                vox_asr_stream *s = S[b->dec_idx[g]];
                b->segs[g].kv = &s->dec_kv[l];
                b->segs[g].ffn_norm = s->fold + (size_t)l * D;
            }
            int rc = vox_lm_layer_forward(be, &m->dec, &m->dec_layers[l], b->x_dec, dec_rows,
                                          b->segs, ns, &b->dec_sc, err);
            if (rc) return rc;
        }
        for (int g = 0; g < ns; g++) {
            const vox_lm_seg *sg = &b->segs[g];
            OPC(be->ops->copy(be, b->h + (size_t)g * D,
                              b->x_dec + (size_t)(sg->row0 + sg->n_rows - 1) * D, (size_t)D * 4),
                "last row");
        }
        OPC(be->ops->rmsnorm(be, b->h, b->h, m->dec_norm, ns, D, m->dec.eps), "final norm");
        OPC(be->ops->matmul(be, b->logits, b->h, &m->tok_emb, NULL, ns), "lm head");
        OPC(be->ops->argmax(be, b->out_ids, b->logits, ns, V), "argmax");
        for (int g = 0; g < ns; g++) {
            vox_asr_stream *s = S[b->dec_idx[g]];
            int64_t pos = b->segs[g].pos0 + b->segs[g].n_rows - 1;
            int32_t tok = b->out_ids[g];
            if (s->taps.logits && s->n_generated < s->taps.logits_cap)
                be->ops->download(be, s->taps.logits + s->n_generated * V,
                                  b->logits + (size_t)g * V, (size_t)V * 4);
            int rc = emit(s, tok, pos, s->a0 + pos, err);
            if (rc) return rc;
            s->n_generated++;
            s->state = ST_RUN;
            s->dec_pos = pos + 1;
            s->last_tok = tok;
            s->rut = tok < vox_tekken_n_special(m->tok) ? s->rut + 1 : 0;
            /* The watchdog acts only while the decoder is inside pushed audio, never in the
             * end flush's zeros. Whether a token lies there depends on the audio alone (before
             * vox_asr_end no token can: the decoder never runs ahead of the audio), so a paced
             * live stream restarts exactly where a stream given the whole file at once does. */
            int in_audio = s->n_real < 0 || s->a0 + pos < s->n_real;
            int wd = s->o.watchdog && in_audio;
            if (tok == m->info.eos) {
                if (wd)
                    restart_decoder(s);
                else
                    s->state = ST_DONE;
            } else if (wd && !s->draining &&
                       (s->rut >= s->o.rut_tokens || s->dec_pos >= s->pos_limit)) {
                restart_decoder(s);
            } else if (s->dec_pos >= s->pos_limit) {
                s->state = ST_DONE; /* the context is full (no watchdog, or in the end flush) */
            }
        }
        nprog += ns;
        double dt = vox_time_now() - t_dec;
        if (dec_rows > ns) {
            S[0]->stats.prefill_sec += dt;
            S[0]->stats.prefills++;
        } else {
            S[0]->stats.dec_sec += dt;
            S[0]->stats.dec_passes++;
        }
    }
    if (progress) *progress = nprog;
    return VOX_OK;
}
