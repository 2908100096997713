/* mel.c - Voxtral log-mel front end on FFTW3 (single precision). See vox_mel.h. */
#include "vox_mel.h"

#include <fftw3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vox_backend.h"
#include "vox_mel_hd.h"

/* The one piece of process-wide state: it serialises FFTW's own (global, not thread-safe)
 * planner. Plans, once made, are used read-only. */
static pthread_mutex_t g_fftw_planner = PTHREAD_MUTEX_INITIALIZER;

void vox_fftw_planner_lock(void) {
    pthread_mutex_lock(&g_fftw_planner);
}
void vox_fftw_planner_unlock(void) {
    pthread_mutex_unlock(&g_fftw_planner);
}

struct vox_mel {
    vox_mel_config cfg;
    int n_bins;      /* n_fft / 2 + 1 */
    int pad;         /* n_fft / 2: centre padding on each side */
    float log_floor; /* global_log_mel_max - 8 */
    float *window;   /* [n_fft] periodic Hann */
    float *filters;  /* [n_mels][n_bins] Slaney bank (double-built, float-stored) */
    int *f_lo;       /* [n_mels] first non-zero bin of each filter */
    int *f_len;      /* [n_mels] number of bins from f_lo to the last non-zero one */
    fftwf_plan plan; /* r2c of size n_fft, made on fftwf_malloc'ed arrays */
};

/* Scratch for one frame; fftwf_malloc'ed so the alignment matches the plan's arrays. */
typedef struct mel_scratch {
    float *in;           /* [n_fft] windowed frame */
    fftwf_complex *spec; /* [n_bins] */
    float *pow;          /* [n_bins] */
} mel_scratch;

static void scratch_free(mel_scratch *s) {
    if (s->in) fftwf_free(s->in);
    if (s->spec) fftwf_free(s->spec);
    if (s->pow) fftwf_free(s->pow);
    s->in = NULL;
    s->spec = NULL;
    s->pow = NULL;
}

static int scratch_alloc(const vox_mel *m, mel_scratch *s, vox_error *err) {
    s->in = fftwf_malloc(sizeof(float) * (size_t)m->cfg.n_fft);
    s->spec = fftwf_malloc(sizeof(fftwf_complex) * (size_t)m->n_bins);
    s->pow = fftwf_malloc(sizeof(float) * (size_t)m->n_bins);
    if (!s->in || !s->spec || !s->pow) {
        scratch_free(s);
        return vox_set_error(err, VOX_ERR_NOMEM, "mel: out of memory for FFT scratch");
    }
    return VOX_OK;
}

/* Spectrum -> features of the frame already windowed into s->in. */
static void mel_finish_frame(const vox_mel *m, mel_scratch *s, float *out) {
    fftwf_execute_dft_r2c(m->plan, s->in, s->spec);
    for (int k = 0; k < m->n_bins; k++)
        s->pow[k] = vox_mel_power(s->spec[k][0], s->spec[k][1]);
    for (int j = 0; j < m->cfg.n_mels; j++) {
        const float *w = m->filters + (size_t)j * (size_t)m->n_bins + m->f_lo[j];
        const float *p = s->pow + m->f_lo[j];
        float e = 0.0f;
        for (int k = 0; k < m->f_len[j]; k++)
            e += w[k] * p[k];
        out[j] = vox_mel_log_scale(e, m->log_floor);
    }
}

/* Frame from n_fft contiguous samples (the stream path). */
static void mel_frame_contig(const vox_mel *m, mel_scratch *s, const float *x, float *out) {
    for (int i = 0; i < m->cfg.n_fft; i++)
        s->in[i] = m->window[i] * x[i];
    mel_finish_frame(m, s, out);
}

const vox_mel_config *vox_mel_get_config(const vox_mel *m) {
    return &m->cfg;
}
const float *vox_mel_filters(const vox_mel *m) {
    return m->filters;
}

void vox_mel_free(vox_mel *m) {
    if (!m) return;
    if (m->plan) {
        vox_fftw_planner_lock();
        fftwf_destroy_plan(m->plan);
        vox_fftw_planner_unlock();
    }
    free(m->window);
    free(m->filters);
    free(m->f_lo);
    free(m->f_len);
    free(m);
}

vox_mel *vox_mel_new(const vox_mel_config *cfg, vox_error *err) {
    if (!cfg) {
        vox_set_error(err, VOX_ERR_ARG, "vox_mel_new: NULL config");
        return NULL;
    }
    if (cfg->sample_rate <= 0 || cfg->n_fft < 2 || cfg->n_fft > (1 << 20) || cfg->hop < 1 ||
        cfg->n_mels < 1 || cfg->n_mels > 4096) {
        vox_set_error(err, VOX_ERR_ARG,
                      "mel config: expected sample_rate > 0, 2 <= n_fft <= 2^20, hop >= 1, "
                      "1 <= n_mels <= 4096; found %d, %d, %d, %d",
                      cfg->sample_rate, cfg->n_fft, cfg->hop, cfg->n_mels);
        return NULL;
    }
    if (!(cfg->f_min >= 0.0) || !(cfg->f_max > cfg->f_min) ||
        cfg->f_max > (double)(cfg->sample_rate / 2)) {
        vox_set_error(err, VOX_ERR_ARG,
                      "mel config: expected 0 <= f_min < f_max <= sample_rate/2 = %d Hz; found "
                      "f_min %g, f_max %g",
                      cfg->sample_rate / 2, cfg->f_min, cfg->f_max);
        return NULL;
    }
    if (!isfinite(cfg->global_log_mel_max)) {
        vox_set_error(err, VOX_ERR_ARG, "mel config: global_log_mel_max is not finite");
        return NULL;
    }
    vox_mel *m = vox_calloc(1, sizeof *m, err);
    if (!m) return NULL;
    m->cfg = *cfg;
    m->n_bins = cfg->n_fft / 2 + 1;
    m->pad = cfg->n_fft / 2;
    m->log_floor = (float)(cfg->global_log_mel_max - 8.0);
    int nb = m->n_bins, nm = cfg->n_mels;
    m->window = vox_malloc(sizeof(float) * (size_t)cfg->n_fft, err);
    m->filters = m->window ? vox_calloc((size_t)nm * (size_t)nb, sizeof(float), err) : NULL;
    m->f_lo = m->filters ? vox_calloc((size_t)nm, sizeof(int), err) : NULL;
    m->f_len = m->f_lo ? vox_calloc((size_t)nm, sizeof(int), err) : NULL;
    double *edges = m->f_len ? vox_malloc(sizeof(double) * (size_t)(nm + 2), err) : NULL;
    if (!edges) {
        vox_mel_free(m);
        return NULL;
    }
    for (int i = 0; i < cfg->n_fft; i++)
        m->window[i] = vox_mel_hann(i, cfg->n_fft);

    /* Filter edges: numpy linspace in mel (i * step + start, last = stop exactly), to Hz. */
    double mel_lo = vox_mel_hz_to_mel(cfg->f_min), mel_hi = vox_mel_hz_to_mel(cfg->f_max);
    double mstep = (mel_hi - mel_lo) / (double)(nm + 1);
    for (int i = 0; i < nm + 2; i++) {
        double mv = i == nm + 1 ? mel_hi : (double)i * mstep + mel_lo;
        edges[i] = vox_mel_mel_to_hz(mv);
    }
    /* Bin frequencies: linspace(0, sample_rate // 2, n_bins). */
    double fstop = (double)(cfg->sample_rate / 2);
    double fstep = fstop / (double)(nb - 1);
    for (int j = 0; j < nm; j++) {
        int lo = -1, hi = -1;
        for (int k = 0; k < nb; k++) {
            double f = k == nb - 1 ? fstop : (double)k * fstep;
            double w = vox_mel_tri_weight(f, edges[j], edges[j + 1], edges[j + 2]);
            float wf = (float)w;
            m->filters[(size_t)j * (size_t)nb + (size_t)k] = wf;
            if (wf != 0.0f) {
                if (lo < 0) lo = k;
                hi = k;
            }
        }
        m->f_lo[j] = lo < 0 ? 0 : lo;
        m->f_len[j] = lo < 0 ? 0 : hi - lo + 1;
    }
    free(edges);

    mel_scratch s = {0};
    if (scratch_alloc(m, &s, err) != VOX_OK) {
        vox_mel_free(m);
        return NULL;
    }
    vox_fftw_planner_lock();
    /* FFTW_ESTIMATE: deterministic plan choice (MEASURE may pick different codelets per run). */
    m->plan = fftwf_plan_dft_r2c_1d(cfg->n_fft, s.in, s.spec, FFTW_ESTIMATE);
    vox_fftw_planner_unlock();
    scratch_free(&s);
    if (!m->plan) {
        vox_set_error(err, VOX_ERR_DEVICE, "mel: FFTW could not plan an r2c FFT of size %d",
                      cfg->n_fft);
        vox_mel_free(m);
        return NULL;
    }
    return m;
}

size_t vox_mel_n_frames(const vox_mel *m, size_t n) {
    return n / (size_t)m->cfg.hop;
}

int vox_mel_compute(const vox_mel *m, const float *x, size_t n, vox_mel_pad pad, float *out,
                    vox_error *err) {
    if (!m || (!x && n) || (!out && n >= (size_t)m->cfg.hop))
        return vox_set_error(err, VOX_ERR_ARG, "vox_mel_compute: NULL argument");
    if (pad != VOX_MEL_PAD_REFLECT && pad != VOX_MEL_PAD_ZERO)
        return vox_set_error(err, VOX_ERR_ARG, "vox_mel_compute: unknown padding mode %d",
                             (int)pad);
    size_t P = (size_t)m->pad;
    if (pad == VOX_MEL_PAD_REFLECT && n <= P)
        return vox_set_error(
            err, VOX_ERR_ARG,
            "mel: reflect padding needs more than %zu samples (n_fft/2), found %zu", P, n);
    size_t T = vox_mel_n_frames(m, n);
    if (T == 0) return VOX_OK;
    mel_scratch s = {0};
    if (scratch_alloc(m, &s, err) != VOX_OK) return err ? err->code : VOX_ERR_NOMEM;
    const int nfft = m->cfg.n_fft, nm = m->cfg.n_mels;
    const size_t hop = (size_t)m->cfg.hop;
    for (size_t g = 0; g < T; g++) {
        /* frame g = padded[g*hop, g*hop + n_fft) = x[g*hop - P, g*hop - P + n_fft) */
        size_t start = g * hop; /* index into the padded signal */
        if (start >= P && start - P + (size_t)nfft <= n) {
            for (int i = 0; i < nfft; i++)
                s.in[i] = m->window[i] * x[start - P + (size_t)i];
        } else {
            for (int i = 0; i < nfft; i++) {
                size_t q = start + (size_t)i; /* padded index; x index = q - P */
                float v;
                if (q < P) {
                    v = pad == VOX_MEL_PAD_REFLECT ? x[P - q] : 0.0f;
                } else if (q - P >= n) {
                    size_t over = q - P - n + 1; /* 1 for the first sample past the end */
                    v = pad == VOX_MEL_PAD_REFLECT ? x[n - 1 - over] : 0.0f;
                } else {
                    v = x[q - P];
                }
                s.in[i] = m->window[i] * v;
            }
        }
        mel_finish_frame(m, &s, out + g * (size_t)nm);
    }
    scratch_free(&s);
    return VOX_OK;
}

/* ---- incremental ------------------------------------------------------------------------ */
struct vox_mel_stream {
    const vox_mel *m; /* borrowed */
    mel_scratch s;
    float *buf; /* [cap] samples of the zero-prefixed signal, live range [off, off+len) */
    size_t cap, off, len;
    size_t need; /* samples from a frame's start that make it final: max(n_fft, P + hop) */
    size_t fed;  /* samples fed since reset */
    size_t done; /* frames emitted since reset (global index of the next frame) */
    int finished;
};

void vox_mel_stream_reset(vox_mel_stream *s) {
    if (!s) return;
    size_t P = (size_t)s->m->pad;
    memset(s->buf, 0, sizeof(float) * P);
    s->off = 0;
    s->len = P; /* the left centre padding */
    s->fed = 0;
    s->done = 0;
    s->finished = 0;
}

void vox_mel_stream_free(vox_mel_stream *s) {
    if (!s) return;
    scratch_free(&s->s);
    free(s->buf);
    free(s);
}

vox_mel_stream *vox_mel_stream_new(const vox_mel *m, vox_error *err) {
    if (!m) {
        vox_set_error(err, VOX_ERR_ARG, "vox_mel_stream_new: NULL mel");
        return NULL;
    }
    vox_mel_stream *s = vox_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->m = m;
    size_t nfft = (size_t)m->cfg.n_fft, P = (size_t)m->pad, hop = (size_t)m->cfg.hop;
    s->need = nfft > P + hop ? nfft : P + hop;
    /* room for one frame's look-ahead, the right padding and a block of new samples */
    s->cap = s->need + P + (nfft > 4096 ? nfft : 4096);
    s->buf = vox_malloc(sizeof(float) * s->cap, err);
    if (!s->buf || scratch_alloc(m, &s->s, err) != VOX_OK) {
        vox_mel_stream_free(s);
        return NULL;
    }
    vox_mel_stream_reset(s);
    return s;
}

/* Total frames final once `fed` samples have been fed (before finish). */
static size_t frames_final(const vox_mel_stream *s, size_t fed) {
    size_t have = (size_t)s->m->pad + fed;
    if (have < s->need) return 0;
    return (have - s->need) / (size_t)s->m->cfg.hop + 1;
}

size_t vox_mel_stream_frames_for(const vox_mel_stream *s, size_t n) {
    if (!s || s->finished) return 0;
    return frames_final(s, s->fed + n) - s->done;
}

size_t vox_mel_stream_frames_at_finish(const vox_mel_stream *s) {
    if (!s || s->finished) return 0;
    return s->fed / (size_t)s->m->cfg.hop - s->done;
}

size_t vox_mel_stream_frames_done(const vox_mel_stream *s) {
    return s ? s->done : 0;
}
size_t vox_mel_stream_samples_fed(const vox_mel_stream *s) {
    return s ? s->fed : 0;
}

static void stream_compact(vox_mel_stream *s) {
    if (s->off) {
        memmove(s->buf, s->buf + s->off, sizeof(float) * s->len);
        s->off = 0;
    }
}

/* Emit frames while the buffer holds at least `need` samples from the next frame's start and
 * fewer than `limit` frames have been emitted in total. */
static size_t stream_emit(vox_mel_stream *s, size_t need, size_t limit, float *out) {
    const size_t hop = (size_t)s->m->cfg.hop, nm = (size_t)s->m->cfg.n_mels;
    size_t k = 0;
    while (s->len >= need && s->done < limit) {
        mel_frame_contig(s->m, &s->s, s->buf + s->off, out + k * nm);
        s->off += hop;
        s->len -= hop;
        s->done++;
        k++;
    }
    return k;
}

int vox_mel_stream_feed(vox_mel_stream *s, const float *x, size_t n, float *out, size_t max_frames,
                        size_t *n_out, vox_error *err) {
    if (n_out) *n_out = 0;
    if (!s || (!x && n))
        return vox_set_error(err, VOX_ERR_ARG, "vox_mel_stream_feed: NULL argument");
    if (s->finished)
        return vox_set_error(err, VOX_ERR_ARG, "mel stream: feed after finish (call reset first)");
    size_t want = vox_mel_stream_frames_for(s, n);
    if (want > max_frames || (want && !out))
        return vox_set_error(err, VOX_ERR_ARG,
                             "mel stream: feeding %zu samples emits %zu frames, output holds %zu",
                             n, want, out ? max_frames : (size_t)0);
    size_t total = 0;
    while (n > 0) {
        if (s->off + s->len == s->cap) stream_compact(s);
        size_t room = s->cap - s->off - s->len;
        size_t k = n < room ? n : room;
        memcpy(s->buf + s->off + s->len, x, sizeof(float) * k);
        s->len += k;
        s->fed += k;
        x += k;
        n -= k;
        total += stream_emit(s, s->need, SIZE_MAX, out + total * (size_t)s->m->cfg.n_mels);
    }
    if (n_out) *n_out = total;
    return VOX_OK;
}

int vox_mel_stream_finish(vox_mel_stream *s, float *out, size_t max_frames, size_t *n_out,
                          vox_error *err) {
    if (n_out) *n_out = 0;
    if (!s) return vox_set_error(err, VOX_ERR_ARG, "vox_mel_stream_finish: NULL stream");
    if (s->finished)
        return vox_set_error(err, VOX_ERR_ARG,
                             "mel stream: finish called twice (call reset first)");
    size_t want = vox_mel_stream_frames_at_finish(s);
    if (want > max_frames || (want && !out))
        return vox_set_error(err, VOX_ERR_ARG,
                             "mel stream: finish emits %zu frames, output holds %zu", want,
                             out ? max_frames : (size_t)0);
    size_t P = (size_t)s->m->pad;
    stream_compact(s);
    /* after a feed fewer than `need` samples remain, so the right padding fits (cap >= need+P) */
    memset(s->buf + s->len, 0, sizeof(float) * P);
    s->len += P;
    size_t limit = s->fed / (size_t)s->m->cfg.hop; /* the last STFT frame is dropped */
    size_t k = stream_emit(s, (size_t)s->m->cfg.n_fft, limit, out);
    s->finished = 1;
    if (n_out) *n_out = k;
    return VOX_OK;
}

/* ---- through a backend's logmel op ------------------------------------------------------- */
int vox_mel_compute_backend(const vox_mel *m, vox_backend *be, const float *x, size_t n,
                            vox_mel_pad pad, float *out, vox_error *err) {
    if (!m || !be || (!x && n) || (!out && n >= (size_t)m->cfg.hop))
        return vox_set_error(err, VOX_ERR_ARG, "vox_mel_compute_backend: NULL argument");
    if (pad != VOX_MEL_PAD_REFLECT && pad != VOX_MEL_PAD_ZERO)
        return vox_set_error(err, VOX_ERR_ARG, "vox_mel_compute_backend: unknown padding mode %d",
                             (int)pad);
    size_t P = (size_t)m->pad;
    if (pad == VOX_MEL_PAD_REFLECT && n <= P)
        return vox_set_error(
            err, VOX_ERR_ARG,
            "mel: reflect padding needs more than %zu samples (n_fft/2), found %zu", P, n);
    size_t T = vox_mel_n_frames(m, n);
    if (T == 0) return VOX_OK;
    if (T > (size_t)INT32_MAX)
        return vox_set_error(err, VOX_ERR_ARG, "mel: %zu frames, the logmel op takes at most %d",
                             T, INT32_MAX);
    const int nfft = m->cfg.n_fft, nm = m->cfg.n_mels, nb = m->n_bins;
    size_t np = n + 2 * P; /* >= (T - 1) * hop + n_fft since T * hop <= n */
    float *xp = vox_malloc(sizeof(float) * np, err);
    if (!xp) return err ? err->code : VOX_ERR_NOMEM;
    for (size_t q = 0; q < np; q++) {
        float v;
        if (q < P) v = pad == VOX_MEL_PAD_REFLECT ? x[P - q] : 0.0f;
        else if (q - P >= n) v = pad == VOX_MEL_PAD_REFLECT ? x[n - 1 - (q - P - n + 1)] : 0.0f;
        else v = x[q - P];
        xp[q] = v;
    }
    const vox_backend_ops *o = be->ops;
    size_t out_bytes = sizeof(float) * T * (size_t)nm;
    float *dx = o->alloc(be, sizeof(float) * np);
    float *dw = dx ? o->alloc(be, sizeof(float) * (size_t)nfft) : NULL;
    float *df = dw ? o->alloc(be, sizeof(float) * (size_t)nm * (size_t)nb) : NULL;
    float *dy = df ? o->alloc(be, out_bytes) : NULL;
    int rc = dy ? VOX_OK : VOX_ERR_NOMEM;
    if (rc == VOX_OK) rc = o->upload(be, dx, xp, sizeof(float) * np);
    if (rc == VOX_OK) rc = o->upload(be, dw, m->window, sizeof(float) * (size_t)nfft);
    if (rc == VOX_OK) rc = o->upload(be, df, m->filters, sizeof(float) * (size_t)nm * (size_t)nb);
    if (rc == VOX_OK)
        rc = o->logmel(be, dy, dx, (int)T, m->cfg.hop, nfft, dw, df, nm, m->log_floor);
    if (rc == VOX_OK) rc = o->download(be, out, dy, out_bytes);
    if (rc != VOX_OK && err) *err = be->err;
    o->free(be, dy);
    o->free(be, df);
    o->free(be, dw);
    o->free(be, dx);
    free(xp);
    return rc;
}
