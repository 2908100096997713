/* vox-server - streaming speech recognition and synthesis over HTTP and WebSocket for many
 * clients at once (vLLM /v1/realtime, Mistral /v1/audio/transcriptions/realtime, OpenAI
 * /v1/audio/...). This file: options, signals, startup line. The server itself is apps/server/
 * (docs/server.md). Exit 0 after SIGTERM/SIGINT and the drain, 1 on a start failure, 2 usage. */
#define _POSIX_C_SOURCE 200809L
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/vox_blas.h"
#include "server/server.h"
#include "vox_decode.h"

#define PROG "vox-server"

/* Set by SIGTERM/SIGINT, read by the network loop (the only global: a signal flag). */
static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f) {
    fprintf(
        f,
        "usage: " PROG " -m ASR_MODEL_DIR [--tts-model DIR] [options]\n"
        "Serves a Voxtral Realtime model (and optionally a Voxtral TTS model) over HTTP and\n"
        "WebSocket on one port: WS /v1/realtime (vLLM protocol), WS\n"
        "/v1/audio/transcriptions/realtime (Mistral protocol), POST /v1/audio/transcriptions,\n"
        "POST /v1/audio/speech, WS /v1/audio/speech/stream, GET /health, /v1/models, /metrics.\n\n"
        "  -m, --model DIR          ASR model directory (required)\n"
        "  --tts-model DIR          TTS model directory (default: none)\n"
        "  --served-model-name N    ASR model id clients send (default: basename of DIR)\n"
        "  --tts-served-name N      TTS model id (default: basename of the TTS dir)\n"
        "  --host ADDR              bind address (default 127.0.0.1)\n"
        "  --port N                 port (default 8080; 0 = any free port, printed)\n"
        "  --max-sessions N         concurrent ASR streams + TTS requests (default 16)\n"
        "  --max-message BYTES      largest WebSocket message / HTTP body (default 16777216)\n"
        "  --max-audio-seconds S    audio per session or request (default 3600)\n"
        "  --idle-timeout S         close a WebSocket silent for S seconds (default 60; 0 off)\n"
        "  --grace S                on SIGTERM, time for in-flight sessions (default 10)\n"
        "  --max-out-queue BYTES    output queued to one client before it is dropped\n"
        "                           (default 8388608)\n"
        "  --no-watchdog            never restart a stream's decoder on a mid-stream EOS,\n"
        "                           a rut or the position limit (default: restart, as\n"
        "                           vox-transcribe and vox-live do)\n"
        "  --device D               cpu, cuda or auto (default auto)\n"
        "  --threads N              CPU threads (default: all online CPUs)\n"
        "  -v                       verbose diagnostics on stderr\n"
        "  -h, --help               this text\n");
}

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end = NULL;
    double x = strtod(v, &end);
    if (!end || *end || end == v || !(x >= lo && x <= hi)) {
        fprintf(stderr, PROG ": %s: '%s' is not a number in [%g, %g] (see --help)\n", opt, v, lo,
                hi);
        return -1;
    }
    *out = x;
    return 0;
}

int main(int argc, char **argv) {
    vox_blas_ensure_core(argc, argv);
    srv_config cfg = {0};
    cfg.host = "127.0.0.1";
    cfg.port = 8080;
    cfg.device = "auto";
    cfg.max_sessions = 16;
    cfg.max_message = 16u << 20;
    cfg.max_audio_sec = 3600;
    cfg.idle_timeout = 60;
    cfg.watchdog = 1;
    cfg.grace_sec = 10;
    cfg.max_out_queue = 8u << 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        double x;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has)
            cfg.model_dir = argv[++i];
        else if (!strcmp(a, "--tts-model") && has)
            cfg.tts_model_dir = argv[++i];
        else if (!strcmp(a, "--served-model-name") && has)
            cfg.served_name = argv[++i];
        else if (!strcmp(a, "--tts-served-name") && has)
            cfg.tts_served_name = argv[++i];
        else if (!strcmp(a, "--host") && has)
            cfg.host = argv[++i];
        else if (!strcmp(a, "--device") && has)
            cfg.device = argv[++i];
        else if (!strcmp(a, "--no-watchdog"))
            cfg.watchdog = 0;
        else if (!strcmp(a, "-v"))
            cfg.verbose = 1;
        else if (has && (!strcmp(a, "--port") || !strcmp(a, "--max-sessions") ||
                         !strcmp(a, "--max-message") || !strcmp(a, "--max-audio-seconds") ||
                         !strcmp(a, "--idle-timeout") || !strcmp(a, "--grace") ||
                         !strcmp(a, "--max-out-queue") || !strcmp(a, "--threads"))) {
            const char *v = argv[++i];
            if (!strcmp(a, "--port")) {
                if (parse_num(a, v, 0, 65535, &x)) return 2;
                cfg.port = (int)x;
            } else if (!strcmp(a, "--max-sessions")) {
                if (parse_num(a, v, 1, 4096, &x)) return 2;
                cfg.max_sessions = (int)x;
            } else if (!strcmp(a, "--max-message")) {
                if (parse_num(a, v, 1024, 1e10, &x)) return 2;
                cfg.max_message = (size_t)x;
            } else if (!strcmp(a, "--max-audio-seconds")) {
                if (parse_num(a, v, 0.1, 1e7, &x)) return 2;
                cfg.max_audio_sec = x;
            } else if (!strcmp(a, "--idle-timeout")) {
                if (parse_num(a, v, 0, 1e7, &x)) return 2;
                cfg.idle_timeout = x;
            } else if (!strcmp(a, "--grace")) {
                if (parse_num(a, v, 0, 1e5, &x)) return 2;
                cfg.grace_sec = x;
            } else if (!strcmp(a, "--max-out-queue")) {
                if (parse_num(a, v, 4096, 1e11, &x)) return 2;
                cfg.max_out_queue = (size_t)x;
            } else {
                if (parse_num(a, v, 0, 4096, &x)) return 2;
                cfg.threads = (int)x;
            }
        } else {
            fprintf(stderr, PROG ": unknown option or missing value '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!cfg.model_dir) {
        fprintf(stderr, PROG ": -m ASR_MODEL_DIR is required (see --help)\n");
        return 2;
    }
    vox_decode_global_init(cfg.verbose);
    /* lws's own lines only with -v until it listens (a busy port is our one line) */
    lws_set_log_level(cfg.verbose ? LLL_ERR | LLL_WARN | LLL_NOTICE : 0, NULL);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    vox_error e = {0};
    double t0 = vox_time_now();
    srv *S = srv_create(&cfg, &e);
    if (!S) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        return 1;
    }
    if (!cfg.verbose) lws_set_log_level(LLL_ERR, NULL);
    const srv_config *c = srv_cfg(S);
    fprintf(stderr, PROG ": listening on http://%s:%d (ws on the same port); ASR model '%s' (%s)",
            c->host, srv_bound_port(S), c->served_name, c->model_dir);
    if (srv_has_tts(S))
        fprintf(stderr, ", TTS model '%s' (%s)", c->tts_served_name, c->tts_model_dir);
    fprintf(stderr, "; max %d sessions; ready in %.1f s\n", c->max_sessions, vox_time_now() - t0);
    int rc = srv_run(S, &g_stop, &e);
    srv_destroy(S);
    fprintf(stderr, PROG ": stopped\n");
    return rc ? 1 : 0;
}
