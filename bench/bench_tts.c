/* bench_tts.c - Voxtral TTS backbone + flow-matching speed on a model directory.
 *
 * Usage: bench_tts --model DIR [--voice NAME] [--frames N] [--batch B] [--threads T]
 *   e.g. on `vox-mkmodel --kind tts --full --layers 1 --vocab 2048 --voices 1 --out DIR`
 *   (the released FM transformer, one backbone layer) or a real --full model.
 * Prints prefill time, ms per frame for the FM head alone (7 Euler steps, CFG batch of 2) and
 * for whole steps (FM + backbone decode), single and batched. Timing is printed, never
 * asserted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_backend.h"
#include "vox_tekken.h"
#include "vox_tts.h"

int main(int argc, char **argv) {
    const char *model = NULL, *voice = "casual_female";
    int frames = 8, batch = 4, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--voice") && i + 1 < argc)
            voice = argv[++i];
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_tts --model DIR [--voice NAME] [--frames N] [--batch B] "
                            "[--threads T]\n");
            return 2;
        }
    }
    if (!model || frames < 1 || batch < 1 || batch > 64) {
        fprintf(stderr, "bench_tts: --model DIR is required (frames >= 1, batch 1..64)\n");
        return 2;
    }
    vox_error err = {0};
    char path[4096];
    vox_backend *be = vox_cpu_backend_create(threads, &err);
    vox_tts_model *m = be ? vox_tts_model_load(model, be, &err) : NULL;
    snprintf(path, sizeof path, "%s/tekken.json", model);
    vox_tekken *tok = m ? vox_tekken_load(path, &err) : NULL;
    vox_tts_voice v = {0};
    int rc = tok ? vox_tts_model_voice(m, model, voice, &v, &err) : 1;
    if (rc) {
        fprintf(stderr, "bench_tts: %s\n", err.msg);
        vox_tekken_free(tok);
        vox_tts_model_free(m);
        if (be) vox_backend_destroy(be);
        return 1;
    }
    const vox_tts_config *c = vox_tts_model_config(m);
    printf("bench_tts: %s; dim %d x %d layers, FM %d layers, voice %s (%d rows)\n",
           be->ops->describe(be), c->dim, c->n_layers, c->ac_layers, voice, v.rows);
    int32_t *ids = NULL;
    size_t n = 0;
    vox_tts_prompt(tok, "The quick brown fox jumps over the lazy dog.", v.rows, &ids, &n, NULL,
                   &err);
    vox_tts_session_opts so;
    vox_tts_session_defaults(&so);
    so.max_frames = frames;
    vox_tts_session **ss = calloc((size_t)batch, sizeof *ss);
    double t0 = vox_time_now();
    for (int b = 0; b < batch; b++) {
        so.seed = (uint64_t)b + 1;
        ss[b] = vox_tts_session_new(m, ids, n, &v, &so, &err);
        if (!ss[b]) {
            fprintf(stderr, "bench_tts: %s\n", err.msg);
            return 1;
        }
    }
    double t1 = vox_time_now();
    printf("prefill: %zu tokens, %.1f ms per session\n", n, 1e3 * (t1 - t0) / batch);
    /* FM head alone on random-ish hidden states */
    float *h = calloc((size_t)batch * c->dim, sizeof(float)), *nz =
        calloc((size_t)batch * c->n_acoustic, sizeof(float));
    int32_t *codes = calloc((size_t)batch * c->n_codebooks, sizeof(int32_t));
    for (int i = 0; i < batch * c->dim; i++) h[i] = (float)((i * 7919) % 200 - 100) / 100.0f;
    t0 = vox_time_now();
    vox_tts_frame(m, h, nz, 1.2f, 0, 1, codes, NULL, &err);
    t1 = vox_time_now();
    vox_tts_frame(m, h, nz, 1.2f, 0, batch, codes, NULL, &err);
    double t2 = vox_time_now();
    printf("FM head: %.1f ms per frame (B=1), %.1f ms per frame (B=%d)\n", 1e3 * (t1 - t0),
           1e3 * (t2 - t1) / batch, batch);
    int done[64] = {0}, nf = 0;
    t0 = vox_time_now();
    while (!done[0] && nf < frames) {
        if (vox_tts_session_step(ss[0], codes, &done[0], &err)) break;
        nf++;
    }
    t1 = vox_time_now();
    printf("single session: %d frames, %.1f ms per frame (RTF %.2f at 80 ms per frame)\n", nf,
           nf ? 1e3 * (t1 - t0) / nf : 0.0, nf ? (t1 - t0) / nf / 0.08 : 0.0);
    if (batch > 1) {
        int steps = 0, live = batch - 1;
        memset(done, 0, sizeof done);
        t0 = vox_time_now();
        while (live > 0 && steps < frames) {
            if (vox_tts_step_batch(ss + 1, batch - 1, codes, done, &err)) break;
            live = 0;
            for (int b = 0; b < batch - 1; b++) live += !done[b];
            steps++;
        }
        t1 = vox_time_now();
        printf("batched step (%d sessions): %d steps, %.1f ms per step, %.1f ms per frame\n",
               batch - 1, steps, steps ? 1e3 * (t1 - t0) / steps : 0.0,
               steps ? 1e3 * (t1 - t0) / steps / (batch - 1) : 0.0);
    }
    for (int b = 0; b < batch; b++) vox_tts_session_free(ss[b]);
    free(ss);
    free(h);
    free(nz);
    free(codes);
    free(ids);
    vox_tts_voice_free(&v);
    vox_tekken_free(tok);
    vox_tts_model_free(m);
    vox_backend_destroy(be);
    return 0;
}
