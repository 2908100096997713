/* srv_sched.c - the scheduler thread: owns the models, steps every active ASR stream in one
 * vox_asr_step and every active TTS session in one vox_tts_step_batch, codec-decodes per TTS
 * job, and turns results into events.
 *
 * Locking: one mutex (sched->mu) guards every job's input queue, event queue and flags, the
 * job list and the ready list; critical sections only move pointers or copy PCM. The model
 * work itself runs unlocked on streams only this thread touches (vox_asr_stream,
 * vox_tts_session, vox_codec_state are scheduler-private). */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srv_internal.h"
#include "vox_params.h"
#include "vox_safetensors.h"
#include "vox_tekken.h"

enum { JOB_ASR = 0, JOB_TTS = 1 };
#define TTS_DEC_FRAMES 4    /* frames per codec decode call */
#define TTS_CHUNK_BYTES 400 /* text per TTS session: vox-tts's --chunk-chars default */
#define TTS_MAX_FRAMES 1000 /* frames per chunk: vox-tts's --max-frames default */

struct srv_job {
    srv *S;
    int kind;
    srv_conn *owner; /* NULL once closed */
    /* network -> scheduler (under mu) */
    float *in;
    size_t in_n, in_cap;
    int flush_req, end_req, closed;
    double audio_in; /* seconds accepted */
    /* scheduler -> network (under mu): event ring */
    srv_event *ev;
    size_t ev_head, ev_n, ev_cap;
    int in_ready;
    srv_job *ready_next;
    srv_job *next; /* scheduler's job list */
    /* scheduler private */
    int failed, finished, done_sent;
    /* ASR */
    vox_asr_stream *st;
    int ended, delay_ms;
    float *work;
    size_t work_cap;
    int32_t *wtok; /* ids of the word being built */
    size_t wtok_n, wtok_cap;
    double w_start, w_end, prev_end;
    srv_buf text; /* full transcript so far */
    int64_t n_text_tokens, n_tokens;
    /* TTS */
    char *tts_text, *tts_voice;
    srv_tts_opts tts_opts;
    vox_tts_session *ts;
    vox_codec_state *cs;
    vox_tts_voice voice;
    vox_tts_span *chunks; /* sentence chunks of tts_text, spoken in turn (as vox-tts) */
    size_t n_chunks, chunk;
    int64_t frames;
};

struct srv_sched {
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_job *jobs;
    int n_open; /* jobs not closed by their owner */
    int stop;
    srv_job *ready_head, *ready_tail;
    int wake_net;
    int no_wake; /* the lws context is going away: no more lws_cancel_service */
};

/* ---- events -------------------------------------------------------------------------------- */

void srv_event_clear(srv_event *ev) {
    free(ev->text);
    for (int i = 0; i < ev->n_words; i++)
        free(ev->words[i].word);
    free(ev->words);
    free(ev->pcm);
    memset(ev, 0, sizeof *ev);
}

/* Under mu: append ev (moved) and put the job on the ready list. */
static int push_event_locked(srv_sched *q, srv_job *j, srv_event *ev) {
    if (j->closed) {
        srv_event_clear(ev);
        return 0;
    }
    if (j->ev_n == j->ev_cap) {
        size_t cap = j->ev_cap ? j->ev_cap * 2 : 16;
        srv_event *ne = malloc(cap * sizeof *ne);
        if (!ne) {
            srv_event_clear(ev);
            return -1;
        }
        for (size_t i = 0; i < j->ev_n; i++)
            ne[i] = j->ev[(j->ev_head + i) % j->ev_cap];
        free(j->ev);
        j->ev = ne;
        j->ev_head = 0;
        j->ev_cap = cap;
    }
    j->ev[(j->ev_head + j->ev_n) % j->ev_cap] = *ev;
    j->ev_n++;
    memset(ev, 0, sizeof *ev);
    if (!j->in_ready) {
        j->in_ready = 1;
        j->ready_next = NULL;
        if (q->ready_tail)
            q->ready_tail->ready_next = j;
        else
            q->ready_head = j;
        q->ready_tail = j;
    }
    q->wake_net = 1;
    return 0;
}

static void push_event(srv_job *j, srv_event *ev) {
    srv_sched *q = j->S->sched;
    pthread_mutex_lock(&q->mu);
    push_event_locked(q, j, ev);
    pthread_mutex_unlock(&q->mu);
}

static void push_error(srv_job *j, int code, const char *msg) {
    srv_event ev = {0};
    ev.kind = SRV_EV_ERROR;
    ev.code = code;
    ev.text = strdup(msg);
    ev.len = ev.text ? strlen(ev.text) : 0;
    j->failed = 1;
    srv_count_error(j->S, SRV_ERR_PROCESSING);
    push_event(j, &ev);
}

int srv_job_pop(srv_job *j, srv_event *ev) {
    srv_sched *q = j->S->sched;
    int got = 0;
    pthread_mutex_lock(&q->mu);
    if (j->ev_n) {
        *ev = j->ev[j->ev_head];
        j->ev_head = (j->ev_head + 1) % j->ev_cap;
        j->ev_n--;
        got = 1;
    }
    pthread_mutex_unlock(&q->mu);
    if (!got) memset(ev, 0, sizeof *ev);
    return got;
}

srv_conn *srv_next_ready(srv *S) {
    srv_sched *q = S->sched;
    srv_conn *c = NULL;
    if (!q) return NULL;
    pthread_mutex_lock(&q->mu);
    while (!c && q->ready_head) {
        srv_job *j = q->ready_head;
        q->ready_head = j->ready_next;
        if (!q->ready_head) q->ready_tail = NULL;
        j->in_ready = 0;
        j->ready_next = NULL;
        c = j->owner;
    }
    pthread_mutex_unlock(&q->mu);
    return c;
}

/* ---- opening, feeding, closing (network thread) -------------------------------------------- */

static srv_job *job_new(srv *S, int kind, srv_conn *owner, vox_error *err) {
    srv_sched *q = S->sched;
    if (!S->ready) {
        vox_set_error(err, VOX_ERR_UNSUPPORTED, "server is still loading");
        return NULL;
    }
    if (S->draining) {
        vox_set_error(err, VOX_ERR_UNSUPPORTED, "server is shutting down");
        return NULL;
    }
    srv_job *j = calloc(1, sizeof *j);
    if (!j) {
        vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        return NULL;
    }
    j->S = S;
    j->kind = kind;
    j->owner = owner;
    pthread_mutex_lock(&q->mu);
    if (q->n_open >= S->cfg.max_sessions) {
        pthread_mutex_unlock(&q->mu);
        free(j);
        pthread_mutex_lock(&S->met.mu);
        S->met.refused_busy++;
        pthread_mutex_unlock(&S->met.mu);
        srv_count_error(S, SRV_ERR_BUSY);
        vox_set_error(err, VOX_ERR_UNSUPPORTED,
                      "server busy: all %d sessions are in use (--max-sessions), retry later",
                      S->cfg.max_sessions);
        return NULL;
    }
    q->n_open++;
    pthread_mutex_unlock(&q->mu);
    pthread_mutex_lock(&S->met.mu);
    S->met.sessions_total[kind]++;
    pthread_mutex_unlock(&S->met.mu);
    return j;
}

/* Under mu: hand a new job to the scheduler. */
static void job_submit(srv_job *j) {
    srv_sched *q = j->S->sched;
    pthread_mutex_lock(&q->mu);
    j->next = q->jobs;
    q->jobs = j;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

int srv_asr_check_delay(srv *S, int delay_ms, int *n_delay, vox_error *err) {
    return vox_asr_delay_tokens(S->asr, delay_ms > 0 ? delay_ms : S->asr_info->default_delay_ms,
                                n_delay, err);
}

srv_job *srv_asr_open(srv *S, int delay_ms, srv_conn *owner, vox_error *err) {
    if (delay_ms > 0) {
        int nd;
        if (vox_asr_delay_tokens(S->asr, delay_ms, &nd, err)) return NULL;
    }
    srv_job *j = job_new(S, JOB_ASR, owner, err);
    if (!j) return NULL;
    /* the stream itself is created by the scheduler thread: the backend's allocations are
     * not made from two threads at once */
    j->delay_ms = delay_ms;
    job_submit(j);
    return j;
}

int srv_asr_push(srv_job *j, const float *pcm, size_t n, vox_error *err) {
    srv *S = j->S;
    srv_sched *q = S->sched;
    if (j->kind != JOB_ASR) return vox_set_error(err, VOX_ERR_ARG, "not an ASR job");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pcm[i]))
            return vox_set_error(err, VOX_ERR_ARG, "audio sample %zu is not a finite number", i);
    double sec = (double)n / S->asr_info->sample_rate;
    pthread_mutex_lock(&q->mu);
    int rc = VOX_OK;
    if (j->end_req)
        rc = vox_set_error(err, VOX_ERR_ARG, "audio after the end of the stream");
    else if (j->audio_in + sec > S->cfg.max_audio_sec)
        rc = vox_set_error(err, VOX_ERR_ARG,
                           "audio longer than the limit of %.0f s per session "
                           "(--max-audio-seconds)",
                           S->cfg.max_audio_sec);
    else if (n) {
        if (j->in_n + n > j->in_cap) {
            size_t cap = j->in_cap ? j->in_cap : 16384;
            while (cap < j->in_n + n)
                cap *= 2;
            float *ni = realloc(j->in, cap * sizeof *ni);
            if (!ni)
                rc = vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
            else {
                j->in = ni;
                j->in_cap = cap;
            }
        }
        if (!rc) {
            memcpy(j->in + j->in_n, pcm, n * sizeof *pcm);
            j->in_n += n;
            j->audio_in += sec;
            pthread_cond_signal(&q->cv);
        }
    }
    pthread_mutex_unlock(&q->mu);
    if (!rc) {
        pthread_mutex_lock(&S->met.mu);
        S->met.audio_in_sec += sec;
        pthread_mutex_unlock(&S->met.mu);
    }
    return rc;
}

static int set_flag(srv_job *j, int end, vox_error *err) {
    srv_sched *q = j->S->sched;
    int rc = VOX_OK;
    pthread_mutex_lock(&q->mu);
    if (j->kind != JOB_ASR)
        rc = vox_set_error(err, VOX_ERR_ARG, "not an ASR job");
    else if (j->end_req)
        rc = vox_set_error(err, VOX_ERR_ARG, "the stream has already ended");
    else if (end)
        j->end_req = 1;
    else
        j->flush_req = 1;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return rc;
}

int srv_asr_flush(srv_job *j, vox_error *err) {
    return set_flag(j, 0, err);
}
int srv_asr_end(srv_job *j, vox_error *err) {
    return set_flag(j, 1, err);
}

double srv_job_audio_in(const srv_job *j) {
    return j->audio_in;
}

double srv_job_backlog(srv_job *j) {
    pthread_mutex_lock(&j->S->sched->mu);
    double s = (double)j->in_n / j->S->asr_info->sample_rate;
    pthread_mutex_unlock(&j->S->sched->mu);
    return s;
}

srv_job *srv_tts_open(srv *S, const char *text, const char *voice, const srv_tts_opts *o,
                      srv_conn *owner, vox_error *err) {
    if (!S->tts) {
        vox_set_error(err, VOX_ERR_UNSUPPORTED, "no TTS model loaded (start with --tts-model)");
        return NULL;
    }
    if (!text || !text[0]) {
        vox_set_error(err, VOX_ERR_ARG, "empty text");
        return NULL;
    }
    if (voice && voice[0]) {
        int ok = 0;
        for (char **v = S->voices; v && *v; v++)
            ok |= !strcmp(*v, voice);
        if (!ok) {
            vox_set_error(err, VOX_ERR_NOTFOUND,
                          "unknown voice '%s' (GET /v1/audio/voices lists them)", voice);
            return NULL;
        }
    }
    vox_tts_span *ch = NULL;
    size_t nch = 0;
    if (vox_tts_split_text(text, strlen(text), TTS_CHUNK_BYTES, &ch, &nch, err)) return NULL;
    if (!nch) {
        free(ch);
        vox_set_error(err, VOX_ERR_ARG, "empty text (only whitespace)");
        return NULL;
    }
    srv_job *j = job_new(S, JOB_TTS, owner, err);
    if (!j) {
        free(ch);
        return NULL;
    }
    j->chunks = ch;
    j->n_chunks = nch;
    j->tts_text = strdup(text);
    j->tts_voice = strdup(voice && voice[0] ? voice : S->default_voice);
    if (o) j->tts_opts = *o;
    if (!j->tts_text || !j->tts_voice) {
        free(j->tts_text);
        free(j->tts_voice);
        free(j->chunks);
        pthread_mutex_lock(&S->sched->mu);
        S->sched->n_open--;
        pthread_mutex_unlock(&S->sched->mu);
        free(j);
        vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        return NULL;
    }
    job_submit(j);
    return j;
}

void srv_job_close(srv_job *j) {
    if (!j) return;
    srv_sched *q = j->S->sched;
    pthread_mutex_lock(&q->mu);
    if (!j->closed) {
        j->closed = 1;
        j->owner = NULL;
        q->n_open--;
        /* unlink from the ready list */
        if (j->in_ready) {
            srv_job **pp = &q->ready_head, *prev = NULL;
            while (*pp && *pp != j)
                prev = *pp, pp = &(*pp)->ready_next;
            if (*pp) {
                *pp = j->ready_next;
                if (q->ready_tail == j) q->ready_tail = prev;
            }
            j->in_ready = 0;
        }
    }
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

int srv_sessions(const srv *S) {
    if (!S->sched) return 0;
    pthread_mutex_lock(&S->sched->mu);
    int n = S->sched->n_open;
    pthread_mutex_unlock(&S->sched->mu);
    return n;
}

/* ---- scheduler-side job work ---------------------------------------------------------------- */

static void job_free(srv_job *j) {
    vox_asr_stream_free(j->st);
    vox_tts_session_free(j->ts);
    vox_codec_state_free(j->cs);
    vox_tts_voice_free(&j->voice);
    for (size_t i = 0; i < j->ev_n; i++)
        srv_event_clear(&j->ev[(j->ev_head + i) % j->ev_cap]);
    free(j->ev);
    free(j->in);
    free(j->work);
    free(j->wtok);
    srv_buf_free(&j->text);
    free(j->tts_text);
    free(j->tts_voice);
    free(j->chunks);
    free(j);
}

static int is_ws(unsigned char c) {
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* Complete the word in j->wtok: decode, trim, add to (words, nw). Times as vox-transcribe: a
 * word spans [t(first) - 80 ms, t(last)], clamped to [0, audio] and monotonic. */
static void word_complete(srv_job *j, srv_word **words, int *nw, int *cap) {
    if (!j->wtok_n) return;
    const vox_tekken *tk = vox_asr_model_tokenizer(j->S->asr);
    char *out = NULL;
    size_t len = 0;
    vox_error e = {0};
    int rc = vox_tekken_decode(tk, j->wtok, j->wtok_n, VOX_TEKKEN_SPECIAL_IGNORE, &out, &len, &e);
    j->wtok_n = 0;
    if (rc) return;
    size_t a = 0, b = len;
    while (a < b && is_ws((unsigned char)out[a]))
        a++;
    while (b > a && is_ws((unsigned char)out[b - 1]))
        b--;
    if (a == b) {
        free(out);
        return;
    }
    for (size_t i = a; i < b; i++)
        if (!out[i]) out[i] = ' ';
    memmove(out, out + a, b - a);
    out[b - a] = 0;
    double dur = j->audio_in;
    double s = j->w_start < 0 ? 0 : j->w_start > dur ? dur : j->w_start;
    double en = j->w_end < 0 ? 0 : j->w_end > dur ? dur : j->w_end;
    if (s < j->prev_end) s = j->prev_end;
    if (en < s) en = s;
    j->prev_end = en;
    if (*nw == *cap) {
        int nc = *cap ? *cap * 2 : 4;
        srv_word *nwp = realloc(*words, (size_t)nc * sizeof *nwp);
        if (!nwp) {
            free(out);
            return;
        }
        *words = nwp;
        *cap = nc;
    }
    (*words)[*nw].word = out;
    (*words)[*nw].start = s;
    (*words)[*nw].end = en;
    (*nw)++;
}

/* Pop the stream's new tokens and text into one TEXT event (and DONE when finished). */
static void asr_collect(srv_job *j, int final) {
    const vox_tekken *tk = vox_asr_model_tokenizer(j->S->asr);
    double tok_sec = (double)j->S->asr_info->samples_per_token / j->S->asr_info->sample_rate;
    vox_asr_token tb[64];
    int k;
    srv_word *words = NULL;
    int nw = 0, wcap = 0;
    double t0 = -1, t1 = -1;
    while ((k = vox_asr_get_tokens(j->st, tb, 64)) > 0) {
        for (int i = 0; i < k; i++) {
            j->n_tokens++;
            int32_t id = tb[i].id;
            if (vox_tekken_is_special(tk, id)) continue;
            j->n_text_tokens++;
            if (t0 < 0) t0 = tb[i].t_sec - tok_sec;
            t1 = tb[i].t_sec;
            size_t blen = 0;
            const unsigned char *bytes = vox_tekken_token_bytes(tk, id, &blen);
            if (j->wtok_n && blen && is_ws(bytes[0])) word_complete(j, &words, &nw, &wcap);
            if (j->wtok_n == j->wtok_cap) {
                size_t nc = j->wtok_cap ? j->wtok_cap * 2 : 32;
                int32_t *nt = realloc(j->wtok, nc * sizeof *nt);
                if (!nt) continue;
                j->wtok = nt;
                j->wtok_cap = nc;
            }
            if (!j->wtok_n) j->w_start = tb[i].t_sec - tok_sec;
            j->w_end = tb[i].t_sec;
            j->wtok[j->wtok_n++] = id;
        }
    }
    if (final) word_complete(j, &words, &nw, &wcap);
    size_t len = 0;
    const char *txt = vox_asr_get_text(j->st, &len);
    if (len || nw) {
        srv_event ev = {0};
        ev.kind = SRV_EV_TEXT;
        ev.text = malloc(len + 1);
        if (ev.text) {
            memcpy(ev.text, txt, len);
            ev.text[len] = 0;
            ev.len = len;
        }
        srv_buf_add(&j->text, txt, len);
        ev.t0 = t0 < 0 ? 0 : t0;
        ev.t1 = t1 < 0 ? 0 : t1;
        ev.words = words;
        ev.n_words = nw;
        push_event(j, &ev);
        pthread_mutex_lock(&j->S->met.mu);
        j->S->met.tokens_out += (uint64_t)j->n_text_tokens;
        pthread_mutex_unlock(&j->S->met.mu);
    } else {
        free(words);
    }
    if (final && !j->done_sent) {
        srv_event ev = {0};
        ev.kind = SRV_EV_DONE;
        ev.text = malloc(j->text.len + 1);
        if (ev.text) {
            if (j->text.len) memcpy(ev.text, j->text.p, j->text.len);
            ev.text[j->text.len] = 0;
            ev.len = j->text.len;
        }
        ev.audio_sec = j->audio_in;
        ev.prompt_tokens = (int64_t)ceil(j->audio_in / tok_sec);
        ev.completion_tokens = j->n_text_tokens;
        j->done_sent = 1;
        push_event(j, &ev);
    }
}

/* Move queued input into the stream and act on flush/end requests. */
static void asr_take_input(srv_sched *q, srv_job *j) {
    if (!j->st) {
        vox_error e0 = {0};
        /* watchdog on by default: its restarts depend on the audio alone, not on how far it
         * has arrived, so a live stream still decodes exactly as vox-transcribe does */
        vox_asr_opts ao;
        vox_asr_opts_default(&ao);
        ao.delay_ms = j->delay_ms;
        ao.watchdog = j->S->cfg.watchdog;
        j->st = vox_asr_stream_create_opts(j->S->asr, &ao, &e0);
        if (!j->st) {
            push_error(j, e0.code, e0.msg);
            return;
        }
    }
    pthread_mutex_lock(&q->mu);
    float *in = j->in;
    size_t n = j->in_n, cap = j->in_cap;
    int flush = j->flush_req, end = j->end_req && !j->ended;
    /* swap buffers: the network side gets the scheduler's spare buffer */
    j->in = j->work;
    j->in_cap = j->work_cap;
    j->in_n = 0;
    j->work = in;
    j->work_cap = cap;
    j->flush_req = 0;
    pthread_mutex_unlock(&q->mu);
    vox_error e = {0};
    if (n && vox_asr_push(j->st, in, n, &e)) {
        push_error(j, e.code, e.msg);
        return;
    }
    if (flush && !j->ended) {
        if (vox_asr_flush(j->st, &e)) {
            push_error(j, e.code, e.msg);
            return;
        }
        asr_collect(j, 0);
    }
    if (end) {
        j->ended = 1;
        if (vox_asr_end(j->st, &e)) push_error(j, e.code, e.msg);
    }
}

/* ---- TTS ----------------------------------------------------------------------------------------
 */

/* Start the session of chunk j->chunk: prompt, prefill; the codec state is reset per chunk
 * (each chunk is its own utterance, as in vox-tts), noise seed = seed + chunk index. */
static int tts_start(srv_job *j, vox_error *e) {
    srv *S = j->S;
    if (!j->voice.emb &&
        vox_tts_model_voice(S->tts, S->cfg.tts_model_dir, j->tts_voice, &j->voice, e))
        return -1;
    if (!j->cs && !(j->cs = vox_codec_state_new(S->codec, TTS_DEC_FRAMES, e))) return -1;
    vox_codec_state_reset(j->cs);
    const vox_tts_span *sp = &j->chunks[j->chunk];
    char *ct = strndup(j->tts_text + sp->off, sp->len);
    if (!ct) return vox_set_error(e, VOX_ERR_NOMEM, "out of memory");
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int rc = vox_tts_prompt(S->tts_tok, ct, j->voice.rows, &ids, &n_ids, NULL, e);
    free(ct);
    if (rc) return -1;
    vox_tts_session_opts so;
    vox_tts_session_defaults(&so);
    if (j->tts_opts.cfg_alpha > 0) so.cfg_alpha = j->tts_opts.cfg_alpha;
    so.seed = j->tts_opts.seed + j->chunk;
    so.max_frames = j->tts_opts.max_frames > 0 ? j->tts_opts.max_frames : TTS_MAX_FRAMES;
    j->ts = vox_tts_session_new(S->tts, ids, n_ids, &j->voice, &so, e);
    free(ids);
    return j->ts ? 0 : -1;
}

static void tts_pcm_event(srv_job *j, float *pcm, int64_t n) {
    if (n <= 0) return;
    srv_event ev = {0};
    ev.kind = SRV_EV_PCM;
    ev.pcm = malloc((size_t)n * sizeof *ev.pcm);
    if (!ev.pcm) return;
    memcpy(ev.pcm, pcm, (size_t)n * sizeof *pcm);
    ev.n = (size_t)n;
    push_event(j, &ev);
    double sec = (double)n / vox_codec_get_config(j->S->codec)->sampling_rate;
    pthread_mutex_lock(&j->S->met.mu);
    j->S->met.audio_out_sec += sec;
    pthread_mutex_unlock(&j->S->met.mu);
}

/* One batched TTS step over the active jobs; codec-decodes each job's new frame. */
static void tts_step(srv *S, srv_job **jobs, int n, float *pcm, int32_t *codes, int32_t *raw,
                     int *done, vox_tts_session **ss) {
    const vox_codec_config *cc = vox_codec_get_config(S->codec);
    const vox_tts_config *tc = vox_tts_model_config(S->tts);
    int ncb = tc->n_codebooks;
    for (int i = 0; i < n; i++)
        ss[i] = jobs[i]->ts;
    vox_error e = {0};
    double t0 = vox_time_now();
    if (vox_tts_step_batch(ss, n, codes, done, &e)) {
        for (int i = 0; i < n; i++)
            push_error(jobs[i], e.code, e.msg);
        return;
    }
    double dt = vox_time_now() - t0;
    pthread_mutex_lock(&S->met.mu);
    srv_hist_add(&S->met.tts_step, dt);
    S->met.frames_out += (uint64_t)n;
    pthread_mutex_unlock(&S->met.mu);
    for (int i = 0; i < n; i++) {
        srv_job *j = jobs[i];
        int64_t np = 0;
        int nv = 0;
        if (!done[i]) {
            if (vox_codec_ids_to_codes(cc, codes + (size_t)i * ncb, 1, raw, &nv, &e)) {
                push_error(j, e.code, e.msg);
                continue;
            }
            if (nv == 1) {
                if (vox_codec_decode(S->codec, j->cs, raw, 1, pcm, &np, &e)) {
                    push_error(j, e.code, e.msg);
                    continue;
                }
                j->frames++;
                tts_pcm_event(j, pcm, np);
            }
        }
        if (done[i] || nv == 0) {
            if (vox_codec_finish(S->codec, j->cs, pcm, &np, &e)) {
                push_error(j, e.code, e.msg);
                continue;
            }
            tts_pcm_event(j, pcm, np);
            vox_tts_session_free(j->ts);
            j->ts = NULL;
            if (++j->chunk < j->n_chunks) continue; /* next chunk starts on the next pass */
            srv_event ev = {0};
            ev.kind = SRV_EV_DONE;
            ev.completion_tokens = j->frames;
            ev.audio_sec = (double)j->frames * cc->samples_per_frame / cc->sampling_rate;
            j->finished = 1;
            j->done_sent = 1;
            push_event(j, &ev);
        }
    }
}

/* ---- the thread --------------------------------------------------------------------------------
 */

static void *sched_main(void *arg) {
    srv *S = arg;
    srv_sched *q = S->sched;
    int cap = S->cfg.max_sessions > 0 ? S->cfg.max_sessions : 1;
    srv_job **act = calloc((size_t)cap, sizeof *act);
    vox_asr_stream **streams = calloc((size_t)cap, sizeof *streams);
    srv_job **tj = calloc((size_t)cap, sizeof *tj);
    vox_tts_session **ts = calloc((size_t)cap, sizeof *ts);
    int *tdone = calloc((size_t)cap, sizeof *tdone);
    int32_t *codes = NULL, *raw = NULL;
    float *pcm = NULL;
    if (S->tts) {
        const vox_tts_config *tc = vox_tts_model_config(S->tts);
        const vox_codec_config *cc = vox_codec_get_config(S->codec);
        codes = calloc((size_t)cap * (size_t)tc->n_codebooks, sizeof *codes);
        raw = calloc((size_t)tc->n_codebooks, sizeof *raw);
        pcm = calloc((size_t)cc->samples_per_frame * TTS_DEC_FRAMES, sizeof *pcm);
    }
    if (!act || !streams || !tj || !ts || !tdone || (S->tts && (!codes || !raw || !pcm))) {
        fprintf(stderr, "vox-server: scheduler: out of memory\n");
        goto out;
    }
    double last_wake = 0, last_trim = 0;
    int idle = 0, trim_pending = 0;
    for (;;) {
        /* 1. reap closed jobs, collect the active ones */
        pthread_mutex_lock(&q->mu);
        if (q->stop) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        if (idle) {
            struct timespec ts_;
            clock_gettime(CLOCK_REALTIME, &ts_);
            ts_.tv_nsec += 200 * 1000000L;
            if (ts_.tv_nsec >= 1000000000L) ts_.tv_sec++, ts_.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&q->cv, &q->mu, &ts_);
        }
        srv_job *dead = NULL;
        for (srv_job **pp = &q->jobs; *pp;) {
            srv_job *j = *pp;
            if (j->closed) {
                *pp = j->next;
                j->next = dead;
                dead = j;
            } else
                pp = &j->next;
        }
        int na = 0, nt = 0, waiting_in = 0;
        for (srv_job *j = q->jobs; j; j = j->next) {
            if (j->failed || j->done_sent) continue;
            if (j->kind == JOB_ASR && na < cap)
                act[na++] = j;
            else if (j->kind == JOB_TTS && nt < cap)
                tj[nt++] = j;
            if (j->in_n || j->flush_req || (j->end_req && !j->ended)) waiting_in++;
        }
        pthread_mutex_unlock(&q->mu);
        trim_pending |= dead != NULL;
        while (dead) {
            srv_job *nx = dead->next;
            job_free(dead);
            dead = nx;
        }
        /* streams are allocated and freed here, in this thread's malloc arena, which glibc
         * does not give back by itself: without the trim, RSS climbs by the size of every
         * session ever opened (1000 connect/disconnect cycles: +345 MB). At most 4 per s. */
        if (trim_pending && vox_time_now() - last_trim > 0.25) {
            malloc_trim(0);
            trim_pending = 0;
            last_trim = vox_time_now();
        }
        pthread_mutex_lock(&S->met.mu);
        S->met.asr_queue = waiting_in;
        S->met.tts_queue = nt;
        pthread_mutex_unlock(&S->met.mu);

        /* 2. ASR: input into streams, one batched step, tokens out */
        int worked = 0;
        int ns = 0;
        for (int i = 0; i < na; i++) {
            asr_take_input(q, act[i]);
            if (!act[i]->failed) streams[ns] = act[i]->st, act[ns++] = act[i];
        }
        if (ns) {
            int prog = 0;
            vox_error e = {0};
            double t0 = vox_time_now();
            int rc = vox_asr_step(S->asr, streams, ns, &prog, &e);
            double dt = vox_time_now() - t0;
            if (rc) {
                fprintf(stderr, "vox-server: ASR step failed: %s\n", e.msg);
                for (int i = 0; i < ns; i++)
                    push_error(act[i], e.code, e.msg);
            } else {
                if (prog) {
                    pthread_mutex_lock(&S->met.mu);
                    srv_hist_add(&S->met.asr_step, dt);
                    pthread_mutex_unlock(&S->met.mu);
                    worked = 1;
                }
                for (int i = 0; i < ns; i++) {
                    srv_job *j = act[i];
                    int fin = 0;
                    if (j->ended && (vox_asr_done(j->st) || !prog)) {
                        if (vox_asr_finish(j->st, &e)) {
                            push_error(j, e.code, e.msg);
                            continue;
                        }
                        fin = 1;
                    }
                    asr_collect(j, fin);
                }
            }
        }
        /* 3. TTS: start new sessions (prefill), one batched step */
        int nts = 0;
        for (int i = 0; i < nt; i++) {
            srv_job *j = tj[i];
            if (!j->ts) {
                vox_error e = {0};
                if (tts_start(j, &e)) {
                    push_error(j, e.code, e.msg);
                    continue;
                }
                worked = 1;
            }
            tj[nts++] = j;
        }
        for (int b = 0; b < nts; b += 64) {
            int nb = nts - b < 64 ? nts - b : 64;
            tts_step(S, tj + b, nb, pcm, codes, raw, tdone, ts);
            worked = 1;
        }
        /* 4. wake the network loop when events are waiting (and once a second for timers) */
        pthread_mutex_lock(&q->mu);
        int wake = q->wake_net;
        q->wake_net = 0;
        idle = !worked && !waiting_in;
        double now = vox_time_now();
        /* under the lock: srv_sched_detach_network() must not race a wake-up */
        if ((wake || now - last_wake > 1.0) && !q->no_wake) {
            srv_wake_network(S);
            last_wake = now;
        }
        pthread_mutex_unlock(&q->mu);
    }
out:
    free(act);
    free(streams);
    free(tj);
    free(ts);
    free(tdone);
    free(codes);
    free(raw);
    free(pcm);
    return NULL;
}

int srv_sched_start(srv *S, vox_error *err) {
    srv_sched *q = calloc(1, sizeof *q);
    if (!q) return vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    S->sched = q;
    if (pthread_create(&q->th, NULL, sched_main, S)) {
        S->sched = NULL;
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
        free(q);
        return vox_set_error(err, VOX_ERR_IO, "cannot start the scheduler thread: %s",
                             strerror(errno));
    }
    q->started = 1;
    return VOX_OK;
}

void srv_sched_detach_network(srv *S) {
    if (!S->sched) return;
    pthread_mutex_lock(&S->sched->mu);
    S->sched->no_wake = 1;
    pthread_mutex_unlock(&S->sched->mu);
}

void srv_sched_wake(srv *S) {
    if (!S->sched) return;
    pthread_mutex_lock(&S->sched->mu);
    pthread_cond_signal(&S->sched->cv);
    pthread_mutex_unlock(&S->sched->mu);
}

void srv_sched_stop(srv *S) {
    srv_sched *q = S->sched;
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if (q->started) pthread_join(q->th, NULL);
    while (q->jobs) {
        srv_job *nx = q->jobs->next;
        job_free(q->jobs);
        q->jobs = nx;
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
    S->sched = NULL;
}

/* ---- server lifecycle ---------------------------------------------------------------------------
 */

const srv_config *srv_cfg(const srv *S) {
    return &S->cfg;
}
int srv_is_ready(const srv *S) {
    return S->ready;
}
int srv_is_draining(const srv *S) {
    return S->draining;
}
int srv_has_tts(const srv *S) {
    return S->tts != NULL;
}
int srv_asr_sample_rate(const srv *S) {
    return S->asr_info->sample_rate;
}
int srv_tts_sample_rate(const srv *S) {
    return S->codec ? vox_codec_get_config(S->codec)->sampling_rate : 0;
}
const char *const *srv_tts_voices(const srv *S) {
    return (const char *const *)S->voices;
}

/* Voice names in vox-tts's order (its default is the first): vox_tts_list_voices. */
static int load_voices(srv *S, vox_error *err) {
    vox_tts_voice_list vl = {0};
    if (vox_tts_list_voices(S->cfg.tts_model_dir, S->tts_tok, &vl, err)) return err->code;
    if (vl.n == 0) {
        vox_tts_voice_list_free(&vl);
        return vox_set_error(err, VOX_ERR_FORMAT,
                             "%s: no voices (params.json voice map and tekken.json voice list "
                             "are empty)",
                             S->cfg.tts_model_dir);
    }
    S->voices = calloc((size_t)vl.n + 1, sizeof *S->voices);
    int k = 0;
    for (int i = 0; S->voices && i < vl.n; i++)
        if ((S->voices[k] = strdup(vl.v[i].name))) k++;
    vox_tts_voice_list_free(&vl);
    if (!k) return vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
    S->default_voice = S->voices[0];
    return VOX_OK;
}

static int load_tts(srv *S, vox_log_level log, vox_error *err) {
    (void)log;
    char path[4096];
    const char *dir = S->cfg.tts_model_dir;
    S->tts = vox_tts_model_load(dir, S->be, err);
    if (!S->tts) return err->code ? err->code : VOX_ERR_FORMAT;
    snprintf(path, sizeof path, "%s/tekken.json", dir);
    if (!(S->tts_tok = vox_tekken_load(path, err))) return err->code;
    snprintf(path, sizeof path, "%s/params.json", dir);
    vox_params *pp = vox_params_load(path, err);
    S->tts_params = pp;
    if (!pp) return err->code;
    snprintf(path, sizeof path, "%s/consolidated.safetensors", dir);
    vox_st_file *st = vox_st_open(path, err);
    S->tts_st = st;
    if (!st) return err->code;
    if (!(S->codec = vox_codec_load(S->be, pp, st, err))) return err->code;
    return load_voices(S, err);
}

static void base_name(const char *dir, char *out, size_t cap) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t a = n;
    while (a > 0 && dir[a - 1] != '/')
        a--;
    snprintf(out, cap, "%.*s", (int)(n - a), dir + a);
}

srv *srv_create(const srv_config *cfg, vox_error *err) {
    srv *S = calloc(1, sizeof *S);
    if (!S) {
        vox_set_error(err, VOX_ERR_NOMEM, "out of memory");
        return NULL;
    }
    S->cfg = *cfg;
    S->started = vox_time_now();
    pthread_mutex_init(&S->met.mu, NULL);
    if (cfg->served_name && cfg->served_name[0])
        snprintf(S->served_name, sizeof S->served_name, "%s", cfg->served_name);
    else
        base_name(cfg->model_dir, S->served_name, sizeof S->served_name);
    if (cfg->tts_model_dir) {
        if (cfg->tts_served_name && cfg->tts_served_name[0])
            snprintf(S->tts_served_name, sizeof S->tts_served_name, "%s", cfg->tts_served_name);
        else
            base_name(cfg->tts_model_dir, S->tts_served_name, sizeof S->tts_served_name);
    }
    S->cfg.served_name = S->served_name;
    S->cfg.tts_served_name = cfg->tts_model_dir ? S->tts_served_name : NULL;
    vox_log_level log = cfg->verbose ? VOX_LOG_VERBOSE : VOX_LOG_INFO;
    vox_device dev;
    if (vox_device_parse(cfg->device ? cfg->device : "auto", &dev, err)) goto fail;
    S->be = vox_backend_create(dev, cfg->threads, log, err);
    if (!S->be) goto fail;
    S->asr = vox_asr_model_load(cfg->model_dir, S->be, log, err);
    if (!S->asr) goto fail;
    S->asr_info = vox_asr_model_info(S->asr);
    if (cfg->tts_model_dir && load_tts(S, log, err)) goto fail;
    /* listen before the scheduler starts: a busy port fails fast */
    if (srv_net_start(S, err)) goto fail;
    if (srv_sched_start(S, err)) goto fail;
    S->ready = 1;
    return S;
fail:
    srv_destroy(S);
    return NULL;
}

void srv_destroy(srv *S) {
    if (!S) return;
    srv_net_stop(S); /* closes every connection: their jobs are closed */
    srv_sched_stop(S);
    if (S->voices)
        for (char **v = S->voices; *v; v++)
            free(*v);
    free(S->voices);
    vox_codec_free(S->codec);
    vox_st_close(S->tts_st);
    vox_params_free(S->tts_params);
    vox_tekken_free(S->tts_tok);
    vox_tts_model_free(S->tts);
    vox_asr_model_free(S->asr);
    if (S->be) vox_backend_destroy(S->be);
    pthread_mutex_destroy(&S->met.mu);
    free(S);
}
