/* bench_asr - speed of the Voxtral Realtime engine on a model directory (meant for the full-size
 * random model from `vox-mkmodel --kind realtime --full`; never run by ctest).
 *
 * Prints: load time; encoder ms per second of audio; prompt prefill ms; decoder ms per step for
 * 1, 4 and 8 sessions stepped together (one weight pass per step), and the ratio of the measured
 * decoder step to the memory-bandwidth limit (decoder + LM-head weight bytes / measured read
 * bandwidth). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/vox_blas.h"
#include "vox_asr.h"
#include "vox_backend.h"
#include "vox_bench.h"

static void fill_audio(float *x, size_t n, unsigned seed) {
    /* a few chirps and noise, not silence */
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        double t = (double)i / 16000.0;
        x[i] = (float)(0.2 * __builtin_sin(2 * 3.14159265 * (200 + 150 * t) * t) +
                       0.02 * ((double)(seed >> 8) / 16777216.0 - 0.5));
    }
}

int main(int argc, char **argv) {
    vox_blas_ensure_core(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *dir = NULL;
    double seconds = 2.0;
    int steps = 3, threads = 0, maxn = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-sessions") && i + 1 < argc) maxn = atoi(argv[++i]);
        else {
            printf("usage: bench_asr -m MODEL_DIR [--seconds S (2)] [--steps N (3)] [--threads N] "
                   "[--max-sessions N (8)]\n");
            return !strcmp(argv[i], "--help") ? 0 : 2;
        }
    }
    if (!dir) {
        printf("bench_asr: no model (-m DIR, e.g. from vox-mkmodel --kind realtime --full); nothing to do\n");
        return 0;
    }
    vox_error e = {0};
    vox_backend *be = vox_backend_create(VOX_DEVICE_CPU, threads, VOX_LOG_INFO, &e);
    if (!be) {
        fprintf(stderr, "bench_asr: %s\n", e.msg);
        return 1;
    }
    char blas[128];
    printf("backend: %s; %s\n", be->ops->describe(be), vox_blas_describe(blas, sizeof blas));
    double t0 = vox_time_now();
    vox_asr_model *m = vox_asr_model_load(dir, be, VOX_LOG_QUIET, &e);
    if (!m) {
        fprintf(stderr, "bench_asr: %s\n", e.msg);
        return 1;
    }
    const vox_asr_info *inf = vox_asr_model_info(m);
    printf("load: %.2f s (%.2f GB of weights, mmap'd)\n", vox_time_now() - t0, (double)inf->weight_bytes / 1e9);
    /* the yardstick: read bandwidth on the backend's thread count, 2.5 GiB, median of 40 slices */
    double bw = vox_bench_read_bw(be->n_threads, (size_t)5 << 29, 40);
    printf("read bandwidth: %.1f GB/s (%d threads)\n", bw / 1e9, be->n_threads);
    size_t n_audio = (size_t)(seconds * inf->sample_rate);
    float *x = malloc(n_audio * sizeof *x);
    fill_audio(x, n_audio, 7);

    vox_asr_opts o;
    vox_asr_opts_default(&o);
    o.dec_ctx = 512; /* keep the decoder rings small (KV of a full window is 1.7 GB per session) */
    o.watchdog = 0;

    /* single stream: encoder and prefill */
    vox_asr_stream *s = vox_asr_stream_create_opts(m, &o, &e);
    if (!s || vox_asr_feed(s, x, n_audio, &e)) {
        fprintf(stderr, "bench_asr: %s\n", e.msg);
        return 1;
    }
    vox_asr_stats st;
    vox_asr_stream_stats(s, &st);
    double enc_audio_s = (double)st.enc_frames / 50.0; /* incl. the 2.56 s of left padding */
    printf("encoder: %.1f ms per s of audio (%lld frames in %.2f s)\n", 1e3 * st.enc_sec / enc_audio_s,
           (long long)st.enc_frames, st.enc_sec);
    if (st.prefills) printf("prefill: %.1f ms (prompt of %d positions)\n", 1e3 * st.prefill_sec / (double)st.prefills,
                            1 + inf->n_left_pad_tokens + vox_asr_stream_delay_tokens(s));
    if (st.dec_passes) printf("decoder (1 session, during feed): %.1f ms/step\n", 1e3 * st.dec_sec / (double)st.dec_passes);
    vox_asr_stream_free(s);

    /* batched decoder steps */
    /* bytes read per decoder step: every decoder matrix once, the tied embedding as LM head */
    double dec_bytes = (double)inf->dec_bytes;
    int ns_list[3] = {1, 4, 8};
    for (int li = 0; li < 3; li++) {
        int n = ns_list[li];
        if (n > maxn) break;
        vox_asr_stream **S = calloc((size_t)n, sizeof *S);
        for (int i = 0; i < n; i++) {
            S[i] = vox_asr_stream_create_opts(m, &o, &e);
            if (!S[i]) {
                fprintf(stderr, "bench_asr: %s\n", e.msg);
                return 1;
            }
            /* enough audio for the prompt */
            size_t pre = (size_t)(vox_asr_stream_delay_tokens(S[i]) + 2) * inf->samples_per_token;
            vox_asr_push(S[i], x, pre < n_audio ? pre : n_audio, &e);
        }
        int prog = 1;
        while (prog) vox_asr_step(m, S, n, &prog, &e); /* encoder + prefills */
        vox_asr_stats s0;
        vox_asr_stream_stats(S[0], &s0);
        double wall = 0;
        for (int k = 0; k < steps; k++) {
            for (int i = 0; i < n; i++) vox_asr_push(S[i], x + (size_t)k * inf->samples_per_token % (n_audio - 1280), (size_t)inf->samples_per_token, &e);
            double t1 = vox_time_now();
            prog = 1;
            while (prog) vox_asr_step(m, S, n, &prog, &e);
            wall += vox_time_now() - t1;
        }
        vox_asr_stats s1;
        vox_asr_stream_stats(S[0], &s1);
        int64_t passes = s1.dec_passes - s0.dec_passes;
        double dms = passes ? 1e3 * (s1.dec_sec - s0.dec_sec) / (double)passes : 0;
        double limit_ms = 1e3 * dec_bytes / bw;
        printf("decoder, %d session%s: %.1f ms/step (%.1f ms per session-token), step incl. encoder %.1f ms; "
               "bandwidth limit %.1f ms (%.2f GB at %.1f GB/s): ratio %.2f\n",
               n, n > 1 ? "s" : "", dms, dms / n, 1e3 * wall / steps, limit_ms, dec_bytes / 1e9, bw / 1e9,
               dms / limit_ms);
        for (int i = 0; i < n; i++) vox_asr_stream_free(S[i]);
        free(S);
    }
    free(x);
    vox_asr_model_free(m);
    vox_backend_destroy(be);
    return 0;
}
