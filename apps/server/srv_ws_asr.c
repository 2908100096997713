/* srv_ws_asr.c - streaming transcription over WebSocket in two wire protocols (docs/server.md
 * records what was checked upstream):
 *
 *  /v1/realtime (vLLM): session.created {id, created} on accept; client session.update {model}
 *    (required before a commit: else error model_not_validated), input_audio_buffer.append
 *    {audio: base64 PCM16 LE 16 kHz mono}, input_audio_buffer.commit (start) and commit
 *    {final: true} (end of audio); server transcription.delta {delta}, transcription.done {text,
 *    usage}, error {error: message, code}. After done the socket takes a new utterance.
 *
 *  /v1/audio/transcriptions/realtime (Mistral): ?model=; session.created {session: {request_id,
 *    model, audio_format: {encoding, sample_rate}, target_streaming_delay_ms}}; client
 *    session.update {session: {...}} -> session.updated (frozen once audio started);
 *    input_audio.append {audio}, input_audio.flush, input_audio.end; server
 *    transcription.text.delta {text}, transcription.done {model, text, language, usage},
 *    error {error: {message, code}}.
 *
 * Both add "words": [{"word", "start", "end"}] (seconds) and "start"/"end" of the delta's tokens
 * to every delta: an extra field their clients ignore. Any audio rate is resampled to 16 kHz. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"
#include "vox_resample.h"

enum { P_VLLM, P_MISTRAL };
/* A flush followed within this time by input_audio.end is folded into the end (the SDK's
 * transcribe_stream always sends flush then end: without folding, the flush's silence padding
 * would be decoded twice and the transcript would differ from the same audio as a file). */
#define FLUSH_HOLD_MS 50
/* Client audio queued ahead of the model beyond this many seconds pauses reading from the
 * socket (TCP backpressure) until the backlog is under half of it. */
#define BACKLOG_PAUSE_SEC 20.0
enum { ENC_S16, ENC_S32, ENC_F16, ENC_F32, ENC_MULAW, ENC_ALAW };
static const char *const enc_names[] = {"pcm_s16le", "pcm_s32le", "pcm_f16le",
                                        "pcm_f32le", "pcm_mulaw", "pcm_alaw"};
static const int enc_bytes[] = {2, 4, 2, 4, 1, 1};

typedef struct ws_asr {
    int proto;
    srv_job *job;
    int validated;     /* vLLM: session.update seen */
    int started;       /* vLLM: commit seen (events are forwarded) */
    int ended;         /* end of audio sent to the job */
    int audio_seen;    /* Mistral: settings frozen */
    int flush_pending; /* Mistral: input_audio.flush held briefly (see mistral_msg) */
    double flush_pending_t;
    char id[48];
    /* audio format */
    int enc, rate, delay_ms;
    vox_resampler *rs;
    unsigned char carry[4]; /* bytes of an incomplete sample from the last message */
    int n_carry;
    unsigned char *bytes;
    size_t bytes_cap;
    float *pcm, *pcm16;
    size_t pcm_cap, pcm16_cap;
} ws_asr;

/* ---- sending ------------------------------------------------------------------------------ */

static int send_buf(srv_conn *c, srv_buf *b) {
    int rc = b->oom ? -1 : srv_ws_send(c, b->p, b->len, 0);
    srv_buf_free(b);
    return rc;
}

/* vLLM: {"type":"error","error":msg,"code":code}; Mistral: {"type":"error","error":{"message",
 * "code": int}} (codes follow HTTP: 400 bad input, 404 model, 413 too large, 500, 503). */
static int send_error_uncounted(srv_conn *c, const char *vcode, int mcode, const char *msg) {
    ws_asr *a = c->state;
    srv_buf b = {0};
    SRV_BUF_LIT(&b, "{\"type\":\"error\",\"error\":");
    if (a->proto == P_VLLM) {
        srv_buf_json_str(&b, msg, strlen(msg));
        SRV_BUF_LIT(&b, ",\"code\":");
        srv_buf_json_str(&b, vcode, strlen(vcode));
        SRV_BUF_LIT(&b, "}");
    } else {
        SRV_BUF_LIT(&b, "{\"message\":");
        srv_buf_json_str(&b, msg, strlen(msg));
        srv_buf_printf(&b, ",\"code\":%d}}", mcode);
    }
    return send_buf(c, &b);
}

static int send_error(srv_conn *c, srv_err_kind kind, const char *vcode, int mcode,
                      const char *msg) {
    srv_count_error(c->S, kind);
    return send_error_uncounted(c, vcode, mcode, msg);
}

static void session_json(srv_conn *c, srv_buf *b, const char *type) {
    ws_asr *a = c->state;
    const char *model = srv_cfg(c->S)->served_name;
    srv_buf_printf(b, "{\"type\":\"%s\",\"session\":{\"request_id\":\"%s\",\"model\":", type,
                   a->id);
    srv_buf_json_str(b, model, strlen(model));
    srv_buf_printf(b,
                   ",\"audio_format\":{\"encoding\":\"%s\",\"sample_rate\":%d},"
                   "\"target_streaming_delay_ms\":",
                   enc_names[a->enc], a->rate);
    if (a->delay_ms > 0)
        srv_buf_printf(b, "%d", a->delay_ms);
    else
        SRV_BUF_LIT(b, "null");
    SRV_BUF_LIT(b, "}}");
}

static void words_json(srv_buf *b, const srv_event *ev) {
    srv_buf_printf(b, ",\"start\":%.3f,\"end\":%.3f,\"words\":[", ev->t0, ev->t1);
    for (int i = 0; i < ev->n_words; i++) {
        if (i) SRV_BUF_LIT(b, ",");
        SRV_BUF_LIT(b, "{\"word\":");
        srv_buf_json_str(b, ev->words[i].word, strlen(ev->words[i].word));
        srv_buf_printf(b, ",\"start\":%.3f,\"end\":%.3f}", ev->words[i].start, ev->words[i].end);
    }
    SRV_BUF_LIT(b, "]");
}

/* ---- audio ----------------------------------------------------------------------------------- */

static float f16_to_f32(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, u;
    if (e == 0) {
        if (!m)
            u = s;
        else { /* subnormal: normalize */
            e = 127 - 15 + 1;
            while (!(m & 1024))
                m <<= 1, e--;
            u = s | e << 23 | (m & 1023) << 13;
        }
    } else if (e == 31)
        u = s | 0xff << 23 | m << 13;
    else
        u = s | (e + 127 - 15) << 23 | m << 13;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* G.711 expansions to 16-bit linear, scaled to [-1, 1). */
static float mulaw(unsigned char u) {
    u = (unsigned char)~u;
    int t = ((u & 0x0f) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return (float)((u & 0x80) ? 0x84 - t : t - 0x84) / 32768.0f;
}
static float alaw(unsigned char a) {
    a ^= 0x55;
    int t = (a & 0x0f) << 4, seg = (a & 0x70) >> 4;
    if (seg == 0)
        t += 8;
    else if (seg == 1)
        t += 0x108;
    else
        t = (t + 0x108) << (seg - 1);
    return (float)((a & 0x80) ? t : -t) / 32768.0f;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Base64 text -> samples at 16 kHz pushed into the job. msg gets the reason on failure; *kind:
 * 0 bad audio, 1 other, 2 busy, 3 limit. */
#define FAIL(k, ...) (snprintf(msg, mcap, __VA_ARGS__), *kind = (k), -1)
static int push_audio(srv_conn *c, const char *b64, size_t n, char *msg, size_t mcap, int *kind) {
    ws_asr *a = c->state;
    vox_error e = {0};
    *kind = 0;
    if (grow((void **)&a->bytes, &a->bytes_cap, n / 4 * 3 + 8, 1)) return FAIL(0, "out of memory");
    memcpy(a->bytes, a->carry, (size_t)a->n_carry);
    long nb = vox_b64_decode(b64, n, a->bytes + a->n_carry);
    if (nb < 0) return FAIL(0, "audio is not valid base64");
    if (nb == 0) return FAIL(0, "Can't process empty audio.");
    size_t tot = (size_t)nb + (size_t)a->n_carry, bps = (size_t)enc_bytes[a->enc];
    if (a->proto == P_VLLM && tot % 2) return FAIL(0, "PCM16 audio with an odd number of bytes");
    size_t ns = tot / bps;
    a->n_carry = (int)(tot - ns * bps);
    memcpy(a->carry, a->bytes + ns * bps, (size_t)a->n_carry);
    if (grow((void **)&a->pcm, &a->pcm_cap, ns + 1, sizeof(float))) return FAIL(0, "out of memory");
    const unsigned char *p = a->bytes;
    for (size_t i = 0; i < ns; i++, p += bps) {
        float v;
        switch (a->enc) {
        case ENC_S16: v = (float)(int16_t)(p[0] | p[1] << 8) / 32768.0f; break;
        case ENC_S32:
            v = (float)((double)(int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                                          (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24) /
                        2147483648.0);
            break;
        case ENC_F16: v = f16_to_f32((uint16_t)(p[0] | p[1] << 8)); break;
        case ENC_F32: {
            uint32_t u =
                (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            memcpy(&v, &u, sizeof v);
            break;
        }
        case ENC_MULAW: v = mulaw(p[0]); break;
        default: v = alaw(p[0]); break;
        }
        if (!(v == v) || v > 1e6f || v < -1e6f) return FAIL(0, "audio contains NaN or Inf");
        a->pcm[i] = v;
    }
    const float *out = a->pcm;
    size_t nout = ns;
    int target = srv_asr_sample_rate(c->S);
    if (a->rate != target) {
        if (!a->rs && !(a->rs = vox_resampler_new(a->rate, target, &e)))
            return FAIL(1, "cannot resample this rate");
        size_t cap = vox_resampler_max_out(a->rs, ns) + 16;
        if (grow((void **)&a->pcm16, &a->pcm16_cap, cap, sizeof(float)))
            return FAIL(0, "out of memory");
        if (vox_resampler_run(a->rs, a->pcm, ns, a->pcm16, cap, &nout, &e))
            return FAIL(0, "resampling failed");
        out = a->pcm16;
    }
    if (!a->job) {
        a->job = srv_asr_open(c->S, a->delay_ms, c, &e);
        if (!a->job) return FAIL(e.code == VOX_ERR_UNSUPPORTED ? 2 : 1, "%s", e.msg);
    }
    if (srv_asr_push(a->job, out, nout, &e)) return FAIL(3, "%s", e.msg);
    if (srv_job_backlog(a->job) > BACKLOG_PAUSE_SEC) srv_conn_rx_pause(c, 1);
    return 0;
}
#undef FAIL

/* End of the stream: flush the resampler tail into the job, then srv_asr_end. */
static int end_audio(srv_conn *c, vox_error *e) {
    ws_asr *a = c->state;
    if (!a->job) {
        a->job = srv_asr_open(c->S, a->delay_ms, c, e);
        if (!a->job) return -1;
    }
    if (a->rs) {
        size_t cap = 4096, n = 0;
        if (!grow((void **)&a->pcm16, &a->pcm16_cap, cap, sizeof(float)) &&
            !vox_resampler_run(a->rs, NULL, 0, a->pcm16, cap, &n, e) && n)
            srv_asr_push(a->job, a->pcm16, n, e);
        vox_resampler_free(a->rs);
        a->rs = NULL;
    }
    a->ended = 1;
    a->n_carry = 0;
    return srv_asr_end(a->job, e);
}

/* ---- connection callbacks -------------------------------------------------------------------- */

static void make_id(char *out, size_t cap, const char *prefix, const void *salt) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)(uintptr_t)salt;
    /* splitmix64 to spread the bits */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    snprintf(out, cap, "%s%016llx", prefix, (unsigned long long)x);
}

static int open_common(srv_conn *c, int proto) {
    ws_asr *a = calloc(1, sizeof *a);
    if (!a) return -1;
    c->state = a;
    a->proto = proto;
    a->enc = ENC_S16;
    a->rate = srv_asr_sample_rate(c->S);
    make_id(a->id, sizeof a->id, proto == P_VLLM ? "sess-" : "", c);
    if (srv_sessions(c->S) >= srv_cfg(c->S)->max_sessions) {
        char m[160];
        snprintf(m, sizeof m,
                 "server busy: all %d sessions are in use (--max-sessions), retry later",
                 srv_cfg(c->S)->max_sessions);
        send_error(c, SRV_ERR_BUSY, "server_busy", 503, m);
        srv_ws_send_close(c, NULL, 0, 1013);
        return 0;
    }
    return 1;
}

static int vllm_open(srv_conn *c) {
    int rc = open_common(c, P_VLLM);
    if (rc <= 0) return rc;
    ws_asr *a = c->state;
    srv_buf b = {0};
    srv_buf_printf(&b, "{\"type\":\"session.created\",\"id\":\"%s\",\"created\":%lld}", a->id,
                   (long long)time(NULL));
    return send_buf(c, &b);
}

static int mistral_open(srv_conn *c) {
    int rc = open_common(c, P_MISTRAL);
    if (rc <= 0) return rc;
    char model[256];
    if (srv_conn_query(c, "model", model, sizeof model) > 0 &&
        strcmp(model, srv_cfg(c->S)->served_name)) {
        char m[400];
        snprintf(m, sizeof m, "model '%s' is not served here (GET /v1/models lists '%s')", model,
                 srv_cfg(c->S)->served_name);
        send_error(c, SRV_ERR_MODEL, "model_not_found", 404, m);
        return srv_ws_send_close(c, NULL, 0, 1008) ? -1 : 0;
    }
    srv_buf b = {0};
    session_json(c, &b, "session.created");
    return send_buf(c, &b);
}

static void job_done(ws_asr *a) {
    /* (a paused connection is resumed by the next pump: the job is gone) */
    srv_job_close(a->job);
    a->job = NULL;
    a->started = a->ended = a->audio_seen = 0;
    a->n_carry = 0;
    vox_resampler_free(a->rs);
    a->rs = NULL;
}

static int apply_flush(srv_conn *c) {
    ws_asr *a = c->state;
    vox_error e = {0};
    a->flush_pending = 0;
    if (a->job && !a->ended && srv_asr_flush(a->job, &e))
        return send_error(c, SRV_ERR_PROCESSING, "", 500, e.msg);
    return 0;
}

static int asr_pump(srv_conn *c) {
    ws_asr *a = c->state;
    if (c->rx_paused && (!a || !a->job || srv_job_backlog(a->job) < BACKLOG_PAUSE_SEC / 2))
        srv_conn_rx_pause(c, 0);
    if (a && a->flush_pending) {
        if (vox_time_now() - a->flush_pending_t >= (FLUSH_HOLD_MS - 1) * 1e-3)
            apply_flush(c);
        else
            srv_conn_pump_after(c, FLUSH_HOLD_MS);
    }
    if (!a || !a->job || (a->proto == P_VLLM && !a->started)) return 0;
    srv_event ev;
    while (a->job && srv_job_pop(a->job, &ev)) {
        srv_buf b = {0};
        if (ev.kind == SRV_EV_TEXT) {
            if (a->proto == P_VLLM)
                SRV_BUF_LIT(&b, "{\"type\":\"transcription.delta\",\"delta\":");
            else
                SRV_BUF_LIT(&b, "{\"type\":\"transcription.text.delta\",\"text\":");
            srv_buf_json_str(&b, ev.text ? ev.text : "", ev.len);
            words_json(&b, &ev);
            SRV_BUF_LIT(&b, "}");
        } else if (ev.kind == SRV_EV_DONE) {
            long long pt = ev.prompt_tokens, ct = ev.completion_tokens;
            if (a->proto == P_VLLM) {
                SRV_BUF_LIT(&b, "{\"type\":\"transcription.done\",\"text\":");
                srv_buf_json_str(&b, ev.text ? ev.text : "", ev.len);
            } else {
                const char *model = srv_cfg(c->S)->served_name;
                SRV_BUF_LIT(&b, "{\"type\":\"transcription.done\",\"model\":");
                srv_buf_json_str(&b, model, strlen(model));
                SRV_BUF_LIT(&b, ",\"text\":");
                srv_buf_json_str(&b, ev.text ? ev.text : "", ev.len);
                SRV_BUF_LIT(&b, ",\"language\":null");
            }
            srv_buf_printf(&b,
                           ",\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                           "\"total_tokens\":%lld",
                           pt, ct, pt + ct);
            if (a->proto == P_MISTRAL)
                srv_buf_printf(&b, ",\"prompt_audio_seconds\":%lld",
                               (long long)(ev.audio_sec + 0.999));
            srv_buf_printf(&b, "},\"audio_seconds\":%.3f}", ev.audio_sec);
        } else if (ev.kind == SRV_EV_ERROR) {
            int rc = send_error(c, SRV_ERR_PROCESSING, "processing_error", 500,
                                ev.text ? ev.text : "processing failed");
            srv_event_clear(&ev);
            job_done(a);
            return rc;
        }
        int done = ev.kind == SRV_EV_DONE;
        srv_event_clear(&ev);
        if (b.len && send_buf(c, &b)) return -1;
        srv_buf_free(&b);
        if (done) job_done(a);
    }
    return 0;
}

/* input_audio_buffer.append (vLLM) / input_audio.append (Mistral): {"audio": base64}. The
 * error codes per protocol: vLLM invalid_audio / server_busy / processing_error, Mistral
 * 400 / 503 / 413 (limit) / 500. */
static int on_append(srv_conn *c, cJSON *root, const char *end_name) {
    ws_asr *a = c->state;
    int v = a->proto == P_VLLM;
    cJSON *au = cJSON_GetObjectItemCaseSensitive(root, "audio");
    char msg[VOX_ERROR_MSG_LEN];
    if (!cJSON_IsString(au) || a->ended) {
        if (a->ended)
            snprintf(msg, sizeof msg, "audio after %s; wait for transcription.done", end_name);
        else
            snprintf(msg, sizeof msg, "the append message needs \"audio\" (a base64 string)");
        return send_error(c, SRV_ERR_INVALID_AUDIO, "invalid_audio", 400, msg);
    }
    if (!v) {
        a->audio_seen = 1;
        if (a->flush_pending) apply_flush(c); /* the flush covers the audio before this */
    }
    int kind = 0;
    if (!push_audio(c, au->valuestring, strlen(au->valuestring), msg, sizeof msg, &kind)) return 0;
    static const srv_err_kind ek[] = {SRV_ERR_INVALID_AUDIO, SRV_ERR_PROCESSING, SRV_ERR_BUSY,
                                      SRV_ERR_LIMIT};
    static const char *const vc[] = {"invalid_audio", "processing_error", "server_busy",
                                     "invalid_audio"};
    static const int mc[] = {400, 500, 503, 413};
    return send_error(c, ek[kind], vc[kind], mc[kind], msg);
}

/* ---- vLLM messages -----------------------------------------------------------------------------
 */

static int vllm_msg(srv_conn *c, cJSON *root, const char *type) {
    ws_asr *a = c->state;
    vox_error e = {0};
    if (!strcmp(type, "session.update")) {
        cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model");
        if (!cJSON_IsString(m))
            return send_error(c, SRV_ERR_MODEL, "processing_error", 0,
                              "session.update needs \"model\" (a string)");
        if (strcmp(m->valuestring, srv_cfg(c->S)->served_name)) {
            char msg[400];
            snprintf(msg, sizeof msg, "The model `%s` does not exist (served: `%s`).",
                     m->valuestring, srv_cfg(c->S)->served_name);
            return send_error(c, SRV_ERR_MODEL, "model_not_found", 0, msg);
        }
        a->validated = 1;
        return 0;
    }
    if (!strcmp(type, "input_audio_buffer.append")) return on_append(c, root, "commit final:true");
    if (!strcmp(type, "input_audio_buffer.commit")) {
        if (!a->validated)
            return send_error(c, SRV_ERR_MODEL, "model_not_validated", 0,
                              "Model not validated. Make sure to validate the model by sending a "
                              "session.update event.");
        cJSON *fin = cJSON_GetObjectItemCaseSensitive(root, "final");
        if (fin && !cJSON_IsBool(fin))
            return send_error(c, SRV_ERR_INVALID_JSON, "invalid_json", 0,
                              "\"final\" must be true or false");
        if (!a->job) {
            a->job = srv_asr_open(c->S, 0, c, &e);
            if (!a->job)
                return send_error(
                    c, e.code == VOX_ERR_UNSUPPORTED ? SRV_ERR_BUSY : SRV_ERR_PROCESSING,
                    e.code == VOX_ERR_UNSUPPORTED ? "server_busy" : "processing_error", 0, e.msg);
        }
        a->started = 1;
        if (cJSON_IsTrue(fin) && !a->ended && end_audio(c, &e))
            return send_error(c, SRV_ERR_PROCESSING, "processing_error", 0, e.msg);
        return asr_pump(c);
    }
    char msg[200];
    snprintf(msg, sizeof msg, "Unknown event type: %.100s", type);
    return send_error(c, SRV_ERR_UNKNOWN_EVENT, "unknown_event", 0, msg);
}

/* ---- Mistral messages ---------------------------------------------------------------------- */

static int mistral_update(srv_conn *c, cJSON *sess) {
    ws_asr *a = c->state;
    if (!cJSON_IsObject(sess))
        return send_error(c, SRV_ERR_INVALID_JSON, "", 400,
                          "session.update needs \"session\": {...}");
    if (a->audio_seen || a->job)
        return send_error(c, SRV_ERR_INVALID_JSON, "", 400,
                          "session settings cannot change after audio started");
    int enc = a->enc, rate = a->rate, delay = a->delay_ms;
    cJSON *af = cJSON_GetObjectItemCaseSensitive(sess, "audio_format");
    if (af && !cJSON_IsNull(af)) {
        cJSON *en = cJSON_GetObjectItemCaseSensitive(af, "encoding");
        cJSON *sr = cJSON_GetObjectItemCaseSensitive(af, "sample_rate");
        if (!cJSON_IsObject(af) || !cJSON_IsString(en) || !cJSON_IsNumber(sr))
            return send_error(
                c, SRV_ERR_INVALID_JSON, "", 400,
                "audio_format needs \"encoding\" (string) and \"sample_rate\" (number)");
        int k;
        for (k = 0; k < 6 && strcmp(enc_names[k], en->valuestring); k++) {
        }
        if (k == 6) {
            char m[300];
            snprintf(m, sizeof m,
                     "unsupported encoding '%.60s' (pcm_s16le, pcm_s32le, pcm_f16le, pcm_f32le, "
                     "pcm_mulaw, pcm_alaw)",
                     en->valuestring);
            return send_error(c, SRV_ERR_INVALID_AUDIO, "", 400, m);
        }
        if (sr->valuedouble < 1000 || sr->valuedouble > 384000 ||
            sr->valuedouble != (double)(int)sr->valuedouble)
            return send_error(c, SRV_ERR_INVALID_AUDIO, "", 400,
                              "sample_rate must be an integer in [1000, 384000]");
        enc = k;
        rate = (int)sr->valuedouble;
    }
    cJSON *d = cJSON_GetObjectItemCaseSensitive(sess, "target_streaming_delay_ms");
    if (d && !cJSON_IsNull(d)) {
        int nd;
        vox_error e = {0};
        if (!cJSON_IsNumber(d))
            return send_error(c, SRV_ERR_INVALID_JSON, "", 400,
                              "target_streaming_delay_ms must be a number");
        if (srv_asr_check_delay(c->S, (int)d->valuedouble, &nd, &e))
            return send_error(c, SRV_ERR_INVALID_JSON, "", 400, e.msg);
        delay = (int)d->valuedouble;
    }
    cJSON *dz = cJSON_GetObjectItemCaseSensitive(sess, "diarize");
    if (cJSON_IsTrue(dz))
        return send_error(c, SRV_ERR_INVALID_JSON, "", 400,
                          "diarize is not supported by this server");
    cJSON *td = cJSON_GetObjectItemCaseSensitive(sess, "turn_detection");
    if (td && !cJSON_IsNull(td))
        return send_error(c, SRV_ERR_INVALID_JSON, "", 400,
                          "turn_detection is not supported by this server");
    a->enc = enc;
    a->rate = rate;
    a->delay_ms = delay;
    srv_buf b = {0};
    session_json(c, &b, "session.updated");
    return send_buf(c, &b);
}

static int mistral_msg(srv_conn *c, cJSON *root, const char *type) {
    ws_asr *a = c->state;
    vox_error e = {0};
    if (!strcmp(type, "session.update"))
        return mistral_update(c, cJSON_GetObjectItemCaseSensitive(root, "session"));
    if (!strcmp(type, "input_audio.append")) return on_append(c, root, "input_audio.end");
    if (!strcmp(type, "input_audio.flush")) {
        if (!a->job || a->ended || a->flush_pending) return 0; /* nothing to finalize */
        a->flush_pending = 1;
        a->flush_pending_t = vox_time_now();
        srv_conn_pump_after(c, FLUSH_HOLD_MS);
        return 0;
    }
    if (!strcmp(type, "input_audio.end")) {
        a->flush_pending = 0; /* the end decodes everything the flush would have */
        if (a->ended) return 0;
        if (end_audio(c, &e))
            return send_error(c, e.code == VOX_ERR_UNSUPPORTED ? SRV_ERR_BUSY : SRV_ERR_PROCESSING,
                              "", e.code == VOX_ERR_UNSUPPORTED ? 503 : 500, e.msg);
        return 0;
    }
    char msg[200];
    snprintf(msg, sizeof msg, "unknown message type '%.100s'", type);
    return send_error(c, SRV_ERR_UNKNOWN_EVENT, "", 400, msg);
}

static int asr_data(srv_conn *c, const void *p, size_t n, int binary) {
    ws_asr *a = c->state;
    if (!a) return 0;
    if (binary)
        return send_error(c, SRV_ERR_INVALID_JSON, "invalid_json", 400,
                          "binary frame: this endpoint takes JSON text messages");
    /* RFC 6455 text frames are UTF-8; never echo invalid bytes back in an error message */
    if (vox_utf8_check(p, n) != n)
        return send_error(c, SRV_ERR_INVALID_JSON, "invalid_json", 400,
                          "text message is not valid UTF-8");
    cJSON *root = cJSON_ParseWithLength(p, n);
    if (!root) return send_error(c, SRV_ERR_INVALID_JSON, "invalid_json", 400, "Invalid JSON");
    int rc;
    cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (!cJSON_IsObject(root))
        rc = send_error(c, SRV_ERR_INVALID_JSON, "invalid_json", 400, "expected a JSON object");
    else if (!cJSON_IsString(t)) {
        rc = send_error(c, SRV_ERR_UNKNOWN_EVENT, "unknown_event", 400,
                        a->proto == P_VLLM ? "Unknown event type: None"
                                           : "message needs \"type\" (a string)");
    } else if (a->proto == P_VLLM)
        rc = vllm_msg(c, root, t->valuestring);
    else
        rc = mistral_msg(c, root, t->valuestring);
    cJSON_Delete(root);
    return rc < 0 && c->closing ? -1 : 0;
}

static void asr_oversize(srv_conn *c, size_t limit) {
    char m[160];
    snprintf(m, sizeof m, "message larger than the limit of %zu bytes (--max-message)", limit);
    /* the core counts it as a limit error */
    if (c->state) send_error_uncounted(c, "invalid_audio", 413, m);
}

static void asr_close(srv_conn *c) {
    ws_asr *a = c->state;
    if (!a) return;
    srv_job_close(a->job); /* an abrupt disconnect mid-stream frees the job in the scheduler */
    vox_resampler_free(a->rs);
    free(a->bytes);
    free(a->pcm);
    free(a->pcm16);
    free(a);
    c->state = NULL;
}

const srv_route srv_routes_asr_ws[] = {
    {1, "GET", "/v1/realtime", vllm_open, asr_data, NULL, asr_pump, asr_oversize, asr_close},
    {1, "GET", "/v1/audio/transcriptions/realtime", mistral_open, asr_data, NULL, asr_pump,
     asr_oversize, asr_close},
    {0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
