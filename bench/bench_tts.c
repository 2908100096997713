/* bench_tts.c - Voxtral TTS speed per generated frame against the memory-bandwidth limit.
 *
 * Usage: bench_tts --model DIR [--voice NAME] [--frames N (8)] [--steps N] [--batch B (1)]
 *                  [--threads T] [--text TEXT]
 *   meant for `vox-mkmodel --kind tts --full --out DIR` (8.0 GB of random BF16 weights in the
 *   released layout); never run by ctest. Timing is printed, never asserted.
 *
 * One session generates up to N frames, each decoded by the codec of the same checkpoint one
 * frame per call (as vox-tts streams). Per frame it prints, from vox_tts_session_stats and a
 * timer around vox_codec_decode:
 *   backbone   next-input embedding + one decode step of the Mistral backbone
 *   head       semantic head (semantic_codebook_output, fp32 logits, argmax)
 *   FM         flow matching: n_steps Euler steps, each one batch of 2 rows (cond + CFG uncond)
 *   codec      vox_codec_decode of that frame
 * each against its bandwidth limit = bytes of weights it must read / read bandwidth measured
 * in the same run (tools/common/bench_util.c, as bench_asr): backbone = layers.* + norm + the
 * KV cache at the mean position + 37 embedding rows; head = semantic_codebook_output; FM =
 * llm_projection + n_steps x (acoustic_transformer layers, input_projection,
 * acoustic_codebook_output, norm); codec = vox_bench_codec_decoder_bytes. Then the real-time
 * factor: time per frame / audio per frame (samples_per_frame / sampling_rate = 80 ms at the
 * released sizes), measured and at the bandwidth limit. --batch B > 1 also steps B sessions
 * together (one weight pass per step) and prints ms per step and per frame. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/vox_blas.h"
#include "vox_backend.h"
#include "vox_bench.h"
#include "vox_codec.h"
#include "vox_params.h"
#include "vox_safetensors.h"
#include "vox_tekken.h"
#include "vox_tts.h"

static void line(const char *what, double ms, double bytes, double bw) {
    double lim = 1e3 * bytes / bw;
    printf("  %-9s %9.1f ms/frame   limit %8.1f ms (%6.3f GB at %.1f GB/s)   ratio %5.2f\n", what,
           ms, lim, bytes / 1e9, bw / 1e9, ms / lim);
}

int main(int argc, char **argv) {
    vox_blas_ensure_core(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *model = NULL, *voice = NULL;
    const char *text = "The quick brown fox jumps over the lazy dog.";
    int frames = 8, batch = 1, threads = 0, steps = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--voice") && i + 1 < argc)
            voice = argv[++i];
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--text") && i + 1 < argc)
            text = argv[++i];
        else {
            printf("usage: bench_tts --model DIR [--voice NAME] [--frames N (8)] [--steps N] "
                   "[--batch B (1)] [--threads T] [--text TEXT]\n");
            return !strcmp(argv[i], "--help") ? 0 : 2;
        }
    }
    if (!model || frames < 1 || batch < 1 || batch > 64 || steps < 0) {
        fprintf(stderr, "bench_tts: --model DIR is required (e.g. from vox-mkmodel --kind tts "
                        "--full); frames >= 1, batch 1..64\n");
        return 2;
    }
    vox_error err = {0};
    char path[4096], blas[128];
    vox_backend *be = vox_cpu_backend_create(threads, &err);
    if (!be) {
        fprintf(stderr, "bench_tts: %s\n", err.msg);
        return 1;
    }
    printf("backend: %s; %s\n", be->ops->describe(be), vox_blas_describe(blas, sizeof blas));
    double t0 = vox_time_now();
    vox_tts_model *m = vox_tts_model_load(model, be, &err);
    snprintf(path, sizeof path, "%s/params.json", model);
    vox_params *pp = m ? vox_params_load(path, &err) : NULL;
    snprintf(path, sizeof path, "%s/consolidated.safetensors", model);
    vox_st_file *st = pp ? vox_st_open(path, &err) : NULL;
    vox_codec_model *cm = st ? vox_codec_load(be, pp, st, &err) : NULL;
    snprintf(path, sizeof path, "%s/tekken.json", model);
    vox_tekken *tok = cm ? vox_tekken_load(path, &err) : NULL;
    vox_tts_voice_list vl = {0};
    if (tok && !voice && !vox_tts_list_voices(model, tok, &vl, &err) && vl.n) voice = vl.v[0].name;
    vox_tts_voice v = {0};
    int rc = tok && voice ? vox_tts_model_voice(m, model, voice, &v, &err) : 1;
    if (rc) {
        fprintf(stderr, "bench_tts: %s\n", err.msg[0] ? err.msg : "no voice");
        return 1;
    }
    const vox_tts_config *c = vox_tts_model_config(m);
    const vox_codec_config *cc = vox_codec_get_config(cm);
    const int NS = steps ? steps : c->n_steps, NC = c->n_codebooks;
    printf("load: %.2f s (mmap'd; codec conv weights folded to fp32)\n", vox_time_now() - t0);
    printf("model: dim %d x %d layers, FM %d layers, %d Euler steps (model: %d), codec %d Hz, %d "
           "samples per frame; voice %s (%d rows)\n",
           c->dim, c->n_layers, c->ac_layers, NS, c->n_steps, cc->sampling_rate,
           cc->samples_per_frame, voice, v.rows);
    double bw = vox_bench_read_bw(be->n_threads, (size_t)5 << 29, 40);
    printf("read bandwidth: %.1f GB/s (%d threads, 2.5 GiB buffer, median of 40 x 64 MiB)\n",
           bw / 1e9, be->n_threads);
    if (!(bw > 0)) return 1;

    int32_t *ids = NULL;
    size_t n = 0;
    if (vox_tts_prompt(tok, text, v.rows, &ids, &n, NULL, &err)) {
        fprintf(stderr, "bench_tts: %s\n", err.msg);
        return 1;
    }
    vox_tts_session_opts so;
    vox_tts_session_defaults(&so);
    so.max_frames = frames;
    so.n_steps = steps;
    vox_tts_session *s = NULL;
    int32_t *codes = calloc((size_t)64 * NC, sizeof(int32_t)), *raw = calloc((size_t)NC, 4);
    float *pcm = malloc((size_t)cc->samples_per_frame * sizeof(float));
    vox_codec_state *cs = vox_codec_state_new(cm, 1, &err);
    double codec_sec = 0;
    int nf = 0, seed_tries = 0;
    /* a random model may predict END early: retry other seeds until a frame comes */
    while (nf == 0 && seed_tries < 4) {
        so.seed = (uint64_t)seed_tries++;
        vox_tts_session_free(s);
        s = vox_tts_session_new(m, ids, n, &v, &so, &err);
        if (!s || !cs || !codes || !raw || !pcm) {
            fprintf(stderr, "bench_tts: %s\n", err.msg);
            return 1;
        }
        vox_codec_state_reset(cs);
        codec_sec = 0;
        int done = 0;
        while (!done) {
            if (vox_tts_session_step(s, codes, &done, &err)) {
                fprintf(stderr, "bench_tts: %s\n", err.msg);
                return 1;
            }
            if (done) break;
            int nv = 0;
            int64_t np = 0;
            double tc = vox_time_now();
            if (vox_codec_ids_to_codes(cc, codes, 1, raw, &nv, &err) ||
                vox_codec_decode(cm, cs, raw, 1, pcm, &np, &err)) {
                fprintf(stderr, "bench_tts: codec: %s\n", err.msg);
                return 1;
            }
            codec_sec += vox_time_now() - tc;
            nf++;
        }
    }
    vox_tts_stats ts;
    vox_tts_session_stats(s, &ts);
    printf("prefill: %zu tokens in %.2f s\n", n, ts.prefill_sec);
    if (nf == 0) {
        printf("every seed predicted END at frame 0; nothing to time\n");
        return 1;
    }
    /* bytes per frame */
    const double kv_dim = (double)c->n_kv_heads * c->head_dim;
    double mean_pos = (double)n + (nf - 1) / 2.0;
    double kv_bytes = (double)c->n_layers * 2.0 * kv_dim * 4.0 * mean_pos; /* fp32 K and V */
    double bb = vox_bench_st_bytes(st, "layers.") + vox_bench_st_bytes(st, "norm.weight") +
                kv_bytes + (double)NC * c->dim * 2.0;
    double hb = vox_bench_st_bytes(st, "acoustic_transformer.semantic_codebook_output.");
    double fm_step = vox_bench_st_bytes(st, "acoustic_transformer.layers.") +
                     vox_bench_st_bytes(st, "acoustic_transformer.input_projection.") +
                     vox_bench_st_bytes(st, "acoustic_transformer.acoustic_codebook_output.") +
                     vox_bench_st_bytes(st, "acoustic_transformer.norm.");
    double fb = vox_bench_st_bytes(st, "acoustic_transformer.llm_projection.") + NS * fm_step;
    double cb = vox_bench_codec_decoder_bytes(st, "audio_tokenizer.");
    /* the END step (if any) ran head and FM too; the backbone ran once per emitted frame */
    double per_head = 1e3 * ts.head_sec / ts.steps, per_fm = 1e3 * ts.fm_sec / ts.steps;
    double per_bb = 1e3 * ts.backbone_sec / nf, per_codec = 1e3 * codec_sec / nf;
    double audio_ms = 1e3 * cc->samples_per_frame / cc->sampling_rate;
    printf("single session, %d frames (seed %d), per generated frame (%.0f ms of audio):\n", nf,
           seed_tries - 1, audio_ms);
    line("backbone", per_bb, bb, bw);
    line("head", per_head, hb, bw);
    line("FM", per_fm, fb, bw);
    line("codec", per_codec, cb, bw);
    double tot = per_bb + per_head + per_fm + per_codec;
    double tot_lim = 1e3 * (bb + hb + fb + cb) / bw;
    line("total", tot, bb + hb + fb + cb, bw);
    printf("real-time factor: %.2f (%.1f ms per %.0f ms frame); at the bandwidth limit %.2f\n",
           tot / audio_ms, tot, audio_ms, tot_lim / audio_ms);
    printf("FM per Euler step: %.1f ms (limit %.1f ms, %.3f GB)\n", per_fm / NS, 1e3 * fm_step / bw,
           fm_step / 1e9);
    vox_tts_session_free(s);

    if (batch > 1) {
        vox_tts_session **ss = calloc((size_t)batch, sizeof *ss);
        for (int b = 0; b < batch; b++) {
            so.seed = (uint64_t)b + 100;
            ss[b] = vox_tts_session_new(m, ids, n, &v, &so, &err);
            if (!ss[b]) {
                fprintf(stderr, "bench_tts: %s\n", err.msg);
                return 1;
            }
        }
        int done[64] = {0}, live = batch, k = 0, made = 0;
        t0 = vox_time_now();
        while (live > 0) {
            if (vox_tts_step_batch(ss, batch, codes, done, &err)) {
                fprintf(stderr, "bench_tts: %s\n", err.msg);
                return 1;
            }
            live = 0;
            for (int b = 0; b < batch; b++)
                live += !done[b];
            made += live;
            k++;
        }
        double wall = vox_time_now() - t0;
        vox_tts_session_stats(ss[0], &ts);
        printf("batched step, %d sessions: %d steps, %d frames; %.1f ms per step (backbone "
               "%.1f, head %.1f, FM %.1f), %.1f ms per frame (codec not included)\n",
               batch, k, made, 1e3 * wall / k, 1e3 * ts.backbone_sec / ts.steps,
               1e3 * ts.head_sec / ts.steps, 1e3 * ts.fm_sec / ts.steps,
               made ? 1e3 * wall / made : 0.0);
        for (int b = 0; b < batch; b++)
            vox_tts_session_free(ss[b]);
        free(ss);
    }
    free(codes);
    free(raw);
    free(pcm);
    free(ids);
    vox_codec_state_free(cs);
    vox_tts_voice_free(&v);
    vox_tts_voice_list_free(&vl);
    vox_tekken_free(tok);
    vox_codec_free(cm);
    vox_st_close(st);
    vox_params_free(pp);
    vox_tts_model_free(m);
    vox_backend_destroy(be);
    return 0;
}
