/* srv_status.c - GET /health, GET /v1/models, GET /metrics (Prometheus text format 0.0.4),
 * and the metric counters shared by the other files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srv_internal.h"

const double srv_hist_le[SRV_HIST_N] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,  0.1,    0.25,  0.5,  1.0};

void srv_hist_add(srv_hist *h, double v) {
    h->count++;
    h->sum += v;
    for (int i = 0; i < SRV_HIST_N; i++)
        if (v <= srv_hist_le[i]) h->bucket[i]++;
}

void srv_count_error(srv *S, srv_err_kind k) {
    if (k < 0 || k >= SRV_ERR_COUNT) k = SRV_ERR_OTHER;
    pthread_mutex_lock(&S->met.mu);
    S->met.errors[k]++;
    pthread_mutex_unlock(&S->met.mu);
}

static const char *const err_names[SRV_ERR_COUNT] = {
    "invalid_json", "invalid_audio", "unknown_event", "model", "processing",
    "limit",        "busy",          "slow_client",   "other"};

static void hist_text(srv_buf *b, const char *name, const char *help, const srv_hist *h) {
    srv_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < SRV_HIST_N; i++)
        srv_buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, srv_hist_le[i],
                       (unsigned long long)h->bucket[i]);
    srv_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                   (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count);
}

char *srv_metrics_text(srv *S, size_t *len) {
    srv_buf b = {0};
    int sessions = srv_sessions(S);
    pthread_mutex_lock(&S->met.mu);
    srv_metrics m = S->met; /* snapshot (the mutex copy is not used) */
    pthread_mutex_unlock(&S->met.mu);
    srv_buf_printf(&b,
                   "# HELP vox_up 1 when the models are loaded and the server accepts sessions\n"
                   "# TYPE vox_up gauge\nvox_up %d\n",
                   S->ready && !S->draining);
    srv_buf_printf(&b,
                   "# HELP vox_sessions_active Sessions (ASR streams and TTS requests) open now\n"
                   "# TYPE vox_sessions_active gauge\nvox_sessions_active %d\n"
                   "# HELP vox_sessions_max The --max-sessions limit\n"
                   "# TYPE vox_sessions_max gauge\nvox_sessions_max %d\n",
                   sessions, S->cfg.max_sessions);
    srv_buf_printf(&b,
                   "# HELP vox_sessions_total Sessions opened\n# TYPE vox_sessions_total counter\n"
                   "vox_sessions_total{kind=\"asr\"} %llu\nvox_sessions_total{kind=\"tts\"} %llu\n",
                   (unsigned long long)m.sessions_total[0],
                   (unsigned long long)m.sessions_total[1]);
    srv_buf_printf(&b,
                   "# HELP vox_sessions_refused_total Sessions refused because all were in use\n"
                   "# TYPE vox_sessions_refused_total counter\nvox_sessions_refused_total %llu\n",
                   (unsigned long long)m.refused_busy);
    srv_buf_printf(&b,
                   "# HELP vox_connections Open HTTP and WebSocket connections\n"
                   "# TYPE vox_connections gauge\nvox_connections %d\n"
                   "# HELP vox_http_requests_total HTTP requests received\n"
                   "# TYPE vox_http_requests_total counter\nvox_http_requests_total %llu\n"
                   "# HELP vox_ws_connections_total WebSocket connections accepted\n"
                   "# TYPE vox_ws_connections_total counter\nvox_ws_connections_total %llu\n",
                   S->n_conns, (unsigned long long)m.http_requests,
                   (unsigned long long)m.ws_connections);
    srv_buf_printf(&b,
                   "# HELP vox_audio_in_seconds_total Seconds of client audio accepted (ASR)\n"
                   "# TYPE vox_audio_in_seconds_total counter\nvox_audio_in_seconds_total %.3f\n"
                   "# HELP vox_audio_out_seconds_total Seconds of audio generated (TTS)\n"
                   "# TYPE vox_audio_out_seconds_total counter\nvox_audio_out_seconds_total %.3f\n",
                   m.audio_in_sec, m.audio_out_sec);
    srv_buf_printf(&b,
                   "# HELP vox_text_tokens_total Text tokens produced (ASR)\n"
                   "# TYPE vox_text_tokens_total counter\nvox_text_tokens_total %llu\n"
                   "# HELP vox_tts_frames_total Audio frames generated (TTS, 80 ms each)\n"
                   "# TYPE vox_tts_frames_total counter\nvox_tts_frames_total %llu\n",
                   (unsigned long long)m.tokens_out, (unsigned long long)m.frames_out);
    srv_buf_printf(&b,
                   "# HELP vox_queue_length Jobs with work pending at the last scheduler pass\n"
                   "# TYPE vox_queue_length gauge\nvox_queue_length{kind=\"asr_input\"} %d\n"
                   "vox_queue_length{kind=\"tts_active\"} %d\n",
                   m.asr_queue, m.tts_queue);
    hist_text(&b, "vox_asr_step_seconds", "Time of one batched ASR step (all active streams)",
              &m.asr_step);
    hist_text(&b, "vox_tts_step_seconds", "Time of one batched TTS step (all active sessions)",
              &m.tts_step);
    srv_buf_printf(&b, "# HELP vox_errors_total Errors reported to clients, by kind\n"
                       "# TYPE vox_errors_total counter\n");
    for (int i = 0; i < SRV_ERR_COUNT; i++)
        srv_buf_printf(&b, "vox_errors_total{kind=\"%s\"} %llu\n", err_names[i],
                       (unsigned long long)m.errors[i]);
    if (b.oom) {
        srv_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

/* ---- routes --------------------------------------------------------------------------------- */

static int health_open(srv_conn *c) {
    srv *S = c->S;
    srv_buf b = {0};
    const char *st = S->draining ? "draining" : S->ready ? "ready" : "loading";
    srv_buf_printf(&b, "{\"status\":\"%s\",\"sessions\":{\"in_use\":%d,\"max\":%d},\"models\":[",
                   st, srv_sessions(S), S->cfg.max_sessions);
    srv_buf_json_str(&b, S->served_name, strlen(S->served_name));
    if (S->tts) {
        SRV_BUF_LIT(&b, ",");
        srv_buf_json_str(&b, S->tts_served_name, strlen(S->tts_served_name));
    }
    srv_buf_printf(&b, "],\"uptime_s\":%.1f}", vox_time_now() - S->started);
    int rc = b.oom ? -1
                   : srv_http_reply(c, S->ready && !S->draining ? 200 : 503, "application/json",
                                    b.p, b.len);
    srv_buf_free(&b);
    return rc;
}

static void model_obj(srv_buf *b, const char *id, long created) {
    SRV_BUF_LIT(b, "{\"id\":");
    srv_buf_json_str(b, id, strlen(id));
    srv_buf_printf(b, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":\"vox\"}", created);
}

static int models_open(srv_conn *c) {
    srv *S = c->S;
    srv_buf b = {0};
    long created = (long)time(NULL) - (long)(vox_time_now() - S->started);
    SRV_BUF_LIT(&b, "{\"object\":\"list\",\"data\":[");
    model_obj(&b, S->served_name, created);
    if (S->tts) {
        SRV_BUF_LIT(&b, ",");
        model_obj(&b, S->tts_served_name, created);
    }
    SRV_BUF_LIT(&b, "]}");
    int rc = b.oom ? -1 : srv_http_reply(c, 200, "application/json", b.p, b.len);
    srv_buf_free(&b);
    return rc;
}

static int metrics_open(srv_conn *c) {
    size_t n = 0;
    char *t = srv_metrics_text(c->S, &n);
    if (!t) return srv_http_error(c, 500, "server_error", "out of memory");
    int rc = srv_http_reply(c, 200, "text/plain; version=0.0.4", t, n);
    free(t);
    return rc;
}

const srv_route srv_routes_status[] = {
    {0, "GET", "/health", health_open, NULL, NULL, NULL, NULL, NULL},
    {0, "GET", "/v1/models", models_open, NULL, NULL, NULL, NULL, NULL},
    {0, "GET", "/metrics", metrics_open, NULL, NULL, NULL, NULL, NULL},
    {0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
