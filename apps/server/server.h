/* server.h - vox-server internals: the scheduler's job/event interface and the network core's
 * route/connection interface. Owner: helper `srv` (endpoint files may belong to others; see
 * docs/server.md).
 *
 * Threads:
 *  - network thread (main): the one lws context, all HTTP and WebSocket I/O, JSON parsing,
 *    base64, resampling of client audio. Never runs model code, never blocks.
 *  - scheduler thread (srv_sched.c): owns the models. Per iteration it steps every ASR job with
 *    pending work in one vox_asr_step (one pass over the weights), every active TTS job in one
 *    vox_tts_step_batch, codec-decodes per TTS job, and turns results into events.
 *
 * Jobs and events: a srv_job is created on the network thread (srv_asr_open / srv_tts_open),
 * fed there (srv_asr_push / flush / end), and its events are popped there (srv_job_pop). Input
 * and output travel through the job's mutex-protected queues; the scheduler never touches a
 * connection. When a job gets new events the scheduler marks it ready and calls
 * lws_cancel_service(); the network thread (LWS_CALLBACK_EVENT_WAIT_CANCELLED) takes each
 * ready owner with srv_next_ready() and calls its route's pump(). The owner pointer is always
 * the srv_conn of the connection that opened the job.
 *
 * Ownership: a srv_job is shared by both threads until srv_job_close(), after which only the
 * scheduler holds it and frees it (the caller must not touch it again). Event payloads
 * (text, words, pcm) are moved to the caller by srv_job_pop and freed by srv_event_clear.
 *
 * Routes: endpoint files register routes in tables (srv_ws_asr.c: srv_routes_asr_ws,
 * srv_status.c: srv_routes_status, srv_http.c: srv_routes_http); srv_core.c matches method +
 * exact path (query string excluded) and then calls the route's callbacks for that connection,
 * all on the network thread. Route callbacks must not block: decoding a large upload or other
 * long work belongs in a job (the scheduler) or in small pieces across pump() calls. The core
 * (not the route) owns the connection memory, its output queue and the size/idle limits. */
#ifndef VOX_SRV_SERVER_H
#define VOX_SRV_SERVER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "vox_common.h"

struct lws;

typedef struct srv srv;
typedef struct srv_job srv_job;
typedef struct srv_conn srv_conn;

/* ---- configuration (parsed in apps/vox-server.c) ------------------------------------------ */
typedef struct srv_config {
    const char *model_dir;     /* ASR model (required) */
    const char *tts_model_dir; /* TTS model or NULL */
    const char *served_name;   /* ASR model id in /v1/models and session.update (basename) */
    const char *tts_served_name;
    const char *host;     /* bind address, default 127.0.0.1 */
    int port;             /* default 8080; 0 = any free port (printed at startup) */
    const char *device;   /* cpu, cuda, auto */
    int threads;          /* CPU threads (0 = all) */
    int max_sessions;     /* concurrent jobs (ASR + TTS), default 16 */
    size_t max_message;   /* bytes of one WebSocket message / HTTP body, default 16 MiB */
    double max_audio_sec; /* audio per request/session, default 3600 */
    double idle_timeout;  /* seconds without client input before a session is closed, 60 */
    double grace_sec;     /* SIGTERM: time allowed to in-flight sessions, default 10 */
    size_t max_out_queue; /* bytes queued to one client before it is dropped, 8 MiB */
    int watchdog;         /* ASR decoder watchdog on live streams (vox_asr_opts), default 1 */
    int verbose;
} srv_config;

/* ---- scheduler jobs ------------------------------------------------------------------------- */
typedef struct srv_tts_opts {
    float cfg_alpha; /* <= 0: model default (1.2) */
    uint64_t seed;   /* flow-matching noise seed */
    int max_frames;  /* <= 0: default cap */
} srv_tts_opts;

typedef enum { SRV_EV_NONE, SRV_EV_TEXT, SRV_EV_PCM, SRV_EV_DONE, SRV_EV_ERROR } srv_ev_kind;

typedef struct srv_word {
    char *word;        /* utf-8, trimmed (owned by the event) */
    double start, end; /* seconds on the stream's audio timeline */
} srv_word;

typedef struct srv_event {
    srv_ev_kind kind;
    char *text;      /* TEXT: utf-8 delta (may be ""); DONE (ASR): full text; ERROR: message */
    size_t len;      /* bytes of text */
    double t0, t1;   /* TEXT: audio seconds of the tokens in this delta */
    srv_word *words; /* TEXT: words completed by this delta (a word is reported once, when
                        the next word starts or the stream ends) */
    int n_words;
    float *pcm; /* PCM: 24 kHz mono float (TTS) */
    size_t n;
    /* DONE: usage */
    int64_t prompt_tokens, completion_tokens; /* audio tokens in, text tokens / frames out */
    double audio_sec;                         /* DONE: seconds of audio in (ASR) or out (TTS) */
    int code;                                 /* ERROR: vox error code */
} srv_event;

/* ASR stream: delay_ms <= 0 = model default. NULL + err when max sessions reached (err->code
 * VOX_ERR_UNSUPPORTED, message says so), the delay is not accepted (VOX_ERR_ARG) or the
 * server is draining. */
srv_job *srv_asr_open(srv *S, int delay_ms, srv_conn *owner, vox_error *err);
/* Check a delay (ms) against the model's trained set; *n_delay = delay tokens. */
int srv_asr_check_delay(srv *S, int delay_ms, int *n_delay, vox_error *err);
/* Queue 16 kHz mono float PCM (copied). Fails after end or past --max-audio-seconds. */
int srv_asr_push(srv_job *j, const float *pcm, size_t n, vox_error *err);
/* Decode all audio sent so far (right padding appended), keep the stream open. */
int srv_asr_flush(srv_job *j, vox_error *err);
/* No more audio: a DONE event (full text) follows the last TEXT event. */
int srv_asr_end(srv_job *j, vox_error *err);
/* TTS request: text (copied), voice name (NULL = default). PCM events then DONE. */
srv_job *srv_tts_open(srv *S, const char *text, const char *voice, const srv_tts_opts *o,
                      srv_conn *owner, vox_error *err);
/* Pop the oldest event: 1 = got one (ownership of its payload moves to ev), 0 = none. */
int srv_job_pop(srv_job *j, srv_event *ev);
void srv_event_clear(srv_event *ev);
/* Seconds of audio accepted by the job so far. */
double srv_job_audio_in(const srv_job *j);
/* Seconds of audio queued for the job and not yet taken by the scheduler (backpressure). */
double srv_job_backlog(srv_job *j);
/* The owner is gone: the scheduler stops the job and frees it. j must not be used after. */
void srv_job_close(srv_job *j);

/* Network thread: the owner of a job that has new events since the last call, or NULL. */
srv_conn *srv_next_ready(srv *S);

/* ---- server state queries -------------------------------------------------------------- */
const srv_config *srv_cfg(const srv *S);
int srv_is_ready(const srv *S);    /* models loaded, scheduler running */
int srv_is_draining(const srv *S); /* SIGTERM received */
int srv_sessions(const srv *S);    /* jobs open now */
int srv_has_tts(const srv *S);
int srv_asr_sample_rate(const srv *S); /* 16000 */
int srv_tts_sample_rate(const srv *S); /* 24000, 0 without TTS */
/* Voice names of the TTS model (NULL-terminated, owned by S); NULL without TTS. */
const char *const *srv_tts_voices(const srv *S);

/* Metrics (counters are updated by both threads under the metrics lock). */
typedef enum {
    SRV_ERR_INVALID_JSON,
    SRV_ERR_INVALID_AUDIO,
    SRV_ERR_UNKNOWN_EVENT,
    SRV_ERR_MODEL,
    SRV_ERR_PROCESSING,
    SRV_ERR_LIMIT,
    SRV_ERR_BUSY,
    SRV_ERR_SLOW_CLIENT,
    SRV_ERR_OTHER,
    SRV_ERR_COUNT
} srv_err_kind;
void srv_count_error(srv *S, srv_err_kind k);
/* Prometheus text exposition of every metric, malloc'ed (caller frees). */
char *srv_metrics_text(srv *S, size_t *len);

/* ---- connections and routes (srv_core.c) ---------------------------------------------------- */
typedef struct srv_route srv_route;

struct srv_route {
    int ws;             /* 1: WebSocket endpoint (GET + upgrade), 0: plain HTTP */
    const char *method; /* HTTP: "GET" or "POST" (ignored for ws) */
    const char *path;   /* exact path, no query */
    /* HTTP: headers read (use srv_conn_header / srv_conn_query); WS: connection established.
     * Return 0 to go on, -1 to close the connection. */
    int (*open)(srv_conn *c);
    /* HTTP: a chunk of the request body (bounded in total by --max-message; the core answers
     * 413 beyond). WS: one complete message (bounded by --max-message), binary = 1 for a binary
     * frame. Return 0 / -1 (close). */
    int (*data)(srv_conn *c, const void *p, size_t n, int binary);
    /* HTTP only: the body is complete. */
    int (*body_end)(srv_conn *c);
    /* A job owned by c has events (or the route asked with srv_conn_pump_later). */
    int (*pump)(srv_conn *c);
    /* WS only: a message grew past --max-message (limit bytes). Queue the route's error event;
     * the core then discards the rest of the message and closes with status 1009. */
    void (*oversize)(srv_conn *c, size_t limit);
    /* The connection is gone (client closed, error, timeout) or, for HTTP, the response has
     * been written completely: free c->state, close jobs. Called once per open(). */
    void (*close)(srv_conn *c);
};

/* Per-connection data, owned by the core (it is lws's per-session user memory). */
struct srv_conn {
    struct lws *wsi;
    srv *S;
    const srv_route *route;
    void *state;    /* the route's own state */
    double last_rx; /* vox_time_now() of the last client input (idle timeout) */
    int closing;    /* close after the output queue is written */
    /* private to the core: */
    struct srv_outq *out;
    unsigned char *rx;
    size_t rx_len, rx_cap;
    int rx_binary, rx_skip, http_status_sent, http_chunked, http_done;
    int close_status, pump_pending, rx_paused, body_done;
    int64_t body_len;
    char uri[512];
    srv_conn *next, *prev; /* the core's list of live connections */
};

/* Request line / headers (HTTP and the WS upgrade request). */
const char *srv_conn_path(const srv_conn *c);
/* Copy header `name` ("content-type:" style lws token names are not needed: a lower-case
 * name without colon, e.g. "content-type") into buf; returns its length or -1 if absent. */
int srv_conn_header(srv_conn *c, const char *name, char *buf, size_t cap);
/* Value of query parameter `key` (url-decoded) into buf; -1 when absent. */
int srv_conn_query(srv_conn *c, const char *key, char *buf, size_t cap);

/* WS output: queue one text / binary message (copied). When the per-connection output queue
 * would exceed --max-out-queue the client is too slow: the connection is dropped (returns -1;
 * the route's close() follows). */
int srv_ws_send(srv_conn *c, const void *p, size_t n, int binary);
/* Queue a text message and then close the connection with status 1000 (normal) or 1008/1009. */
int srv_ws_send_close(srv_conn *c, const void *p, size_t n, int close_status);

/* HTTP output. Either one whole response ... */
int srv_http_reply(srv_conn *c, int status, const char *content_type, const void *body, size_t n);
/* ... or a streamed one: start (chunked transfer encoding), send pieces, end. */
int srv_http_stream_start(srv_conn *c, int status, const char *content_type);
int srv_http_stream_send(srv_conn *c, const void *p, size_t n);
int srv_http_stream_end(srv_conn *c);
/* JSON error body {"error":{"message","type","code"}} with status (OpenAI shape). */
int srv_http_error(srv_conn *c, int status, const char *type, const char *message);
/* Bytes queued to the client and not yet written. */
size_t srv_conn_queued(const srv_conn *c);
/* Ask for a pump() call from the network loop soon (e.g. after partial progress). */
void srv_conn_pump_later(srv_conn *c);
/* Stop (1) or resume (0) reading from the client (lws rx flow control). While paused the
 * core calls pump() about once a second, so the route can resume when its backlog shrank. */
void srv_conn_rx_pause(srv_conn *c, int pause);
/* Ask for a pump() call after ms milliseconds (one pending timer per connection). */
void srv_conn_pump_after(srv_conn *c, int ms);

/* Route tables, each terminated by an entry with path == NULL. */
extern const srv_route srv_routes_status[]; /* srv_status.c: /health, /v1/models, /metrics */
extern const srv_route srv_routes_asr_ws[]; /* srv_ws_asr.c: /v1/realtime, Mistral realtime */
extern const srv_route srv_routes_http[];   /* srv_http.c (helper srvhttp): POST /v1/audio/...,
                                               WS /v1/audio/speech/stream, GET / */

/* ---- lifecycle (srv_core.c + srv_sched.c) --------------------------------------------------- */
srv *srv_create(const srv_config *cfg, vox_error *err); /* loads models, starts the scheduler */
/* Runs the network loop until *stop becomes nonzero (then drains for grace_sec) . */
int srv_run(srv *S, volatile sig_atomic_t *stop, vox_error *err);
void srv_destroy(srv *S);
int srv_bound_port(const srv *S);

/* ---- small helpers (srv_util.c) ------------------------------------------------------------- */
/* Base64-encode n bytes into out (4 * ((n + 2) / 3) + 1 bytes, NUL-terminated). */
size_t srv_b64_encode(const void *in, size_t n, char *out);
/* Append s JSON-escaped (with quotes) to a growing buffer. */
typedef struct srv_buf {
    char *p;
    size_t len, cap;
    int oom;
} srv_buf;
void srv_buf_add(srv_buf *b, const void *p, size_t n);
#define SRV_BUF_LIT(b, lit) srv_buf_add((b), (lit), sizeof(lit) - 1) /* a string literal */
void srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void srv_buf_json_str(srv_buf *b, const char *s, size_t n);
void srv_buf_free(srv_buf *b);

#endif /* VOX_SRV_SERVER_H */
