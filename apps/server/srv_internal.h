/* srv_internal.h - the srv struct shared by srv_core.c, srv_sched.c and srv_status.c (not for
 * endpoint files: they use server.h only). */
#ifndef VOX_SRV_INTERNAL_H
#define VOX_SRV_INTERNAL_H

#include <pthread.h>

#include "server.h"
#include "vox_asr.h"
#include "vox_backend.h"
#include "vox_codec.h"
#include "vox_tts.h"

struct lws_context;

/* Step-time summary for /metrics: count, sum and fixed histogram buckets (seconds). */
#define SRV_HIST_N 10
typedef struct srv_hist {
    uint64_t count, bucket[SRV_HIST_N]; /* bucket[i]: observations <= srv_hist_le[i] */
    double sum;
} srv_hist;
extern const double srv_hist_le[SRV_HIST_N];
void srv_hist_add(srv_hist *h, double v);

typedef struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t sessions_total[2]; /* 0 ASR, 1 TTS: opened */
    uint64_t refused_busy;
    double audio_in_sec, audio_out_sec;
    uint64_t tokens_out, frames_out;
    uint64_t errors[SRV_ERR_COUNT];
    uint64_t http_requests, ws_connections;
    srv_hist asr_step, tts_step;
    int asr_queue, tts_queue; /* jobs with pending work at the last iteration */
} srv_metrics;

typedef struct srv_sched srv_sched;

struct srv {
    srv_config cfg;
    char served_name[256], tts_served_name[256];
    vox_backend *be;
    vox_asr_model *asr;
    const vox_asr_info *asr_info;
    /* TTS (optional) */
    vox_tts_model *tts;
    void *tts_params, *tts_st; /* vox_params *, vox_st_file * of the TTS dir (codec) */
    vox_codec_model *codec;
    vox_tekken *tts_tok;
    char **voices; /* NULL-terminated */
    char *default_voice;
    /* network */
    struct lws_context *ctx;
    srv_conn *conns; /* live connections (network thread only) */
    int n_conns;
    int bound_port;
    /* scheduler */
    srv_sched *sched;
    volatile int ready, draining;
    srv_metrics met;
    double started;
};

int srv_net_start(srv *S, vox_error *err); /* lws context + listen socket */
void srv_net_stop(srv *S);
int srv_sched_start(srv *S, vox_error *err);
void srv_sched_stop(srv *S);           /* joins the thread, frees every job */
void srv_sched_wake(srv *S);           /* new input for the scheduler */
void srv_sched_detach_network(srv *S); /* before the lws context is destroyed */
void srv_wake_network(srv *S);         /* lws_cancel_service */

#endif
