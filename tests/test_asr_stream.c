/* test_asr_stream.c - long-running stream behaviour of the ASR engine on a tiny random model:
 *   - a 90 s stream (speech repeated, small encoder and decoder windows) runs with rings rolling
 *     and the same tokens whether fed in 20 ms or 1 s chunks;
 *   - the watchdog restarts the decoder (rut of non-text tokens, decoder position limit) and the
 *     stream keeps producing one token per 80 ms of audio after each restart (no audio lost:
 *     audio-token indices stay contiguous except for the prompt re-run);
 *   - flush emits the pending tokens and the stream continues afterwards.
 * Expectations are structural (counts, contiguity, equality between chunkings), not model math:
 * the math is checked against the reference in test_asr_parity. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vox_asr.h"
#include "vox_test.h"
#include "vox_wav.h"

static vox_test_state T;

typedef struct {
    vox_asr_token *t;
    int n;
} toklist;

static void drain(vox_asr_stream *s, toklist *l) {
    vox_asr_token b[64];
    int k;
    while ((k = vox_asr_get_tokens(s, b, 64)) > 0) {
        l->t = realloc(l->t, (size_t)(l->n + k) * sizeof *l->t);
        memcpy(l->t + l->n, b, (size_t)k * sizeof *b);
        l->n += k;
    }
}

static toklist run(const vox_asr_model *m, const vox_asr_opts *o, const float *x, size_t n,
                   size_t chunk, int64_t *restarts) {
    toklist l = {0};
    vox_error e = {0};
    vox_asr_stream *s = vox_asr_stream_create_opts(m, o, &e);
    VOX_CHECK(&T, s != NULL, "create: %s", e.msg);
    if (!s) return l;
    for (size_t i = 0; i < n; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        VOX_CHECK(&T, vox_asr_feed(s, x + i, k, &e) == VOX_OK, "feed: %s", e.msg);
        drain(s, &l);
    }
    VOX_CHECK(&T, vox_asr_finish(s, &e) == VOX_OK, "finish: %s", e.msg);
    drain(s, &l);
    if (restarts) *restarts = vox_asr_stream_restarts(s);
    vox_asr_stream_free(s);
    return l;
}

/* The whole audio pushed and the end announced before any decoding (as vox-transcribe does). */
static toklist run_offline(const vox_asr_model *m, const vox_asr_opts *o, const float *x, size_t n,
                           int64_t *restarts) {
    toklist l = {0};
    vox_error e = {0};
    vox_asr_stream *s = vox_asr_stream_create_opts(m, o, &e);
    VOX_CHECK(&T, s != NULL, "create: %s", e.msg);
    if (!s) return l;
    VOX_CHECK(&T, vox_asr_push(s, x, n, &e) == VOX_OK, "push: %s", e.msg);
    VOX_CHECK(&T, vox_asr_finish(s, &e) == VOX_OK, "finish: %s", e.msg);
    drain(s, &l);
    if (restarts) *restarts = vox_asr_stream_restarts(s);
    vox_asr_stream_free(s);
    return l;
}

int main(void) {
    char dir[1024], cmd[2048], wav[1024];
    snprintf(dir, sizeof dir, "%s/test_asr_stream_XXXXXX", VOX_BINARY_DIR);
    if (!mkdtemp(dir)) return 1;
    snprintf(cmd, sizeof cmd,
             "'%s/bin/vox-mkmodel' --kind realtime --out '%s/m' --seed 22 --dim 96 --heads 8 "
             "--kv-heads 2 "
             "--enc-window 16 --dec-window 16 >/dev/null",
             VOX_BINARY_DIR, dir);
    VOX_CHECK(&T, system(cmd) == 0, "mkmodel");
    vox_error e = {0};
    vox_backend *be = vox_backend_create(VOX_DEVICE_CPU, 2, VOX_LOG_QUIET, &e);
    snprintf(cmd, sizeof cmd, "%s/m", dir);
    vox_asr_model *m = be ? vox_asr_model_load(cmd, be, VOX_LOG_QUIET, &e) : NULL;
    VOX_CHECK(&T, m != NULL, "load: %s", e.msg);
    snprintf(wav, sizeof wav, "%s/tests/fixtures/asr/speech.wav", VOX_SOURCE_DIR);
    float *sp = NULL;
    vox_wav_info wi;
    VOX_CHECK(&T, vox_wav_read(wav, &sp, &wi, &e) == VOX_OK, "wav: %s", e.msg);
    if (!m || !sp) return vox_test_done(&T, "test_asr_stream");

    /* 90 s: speech, 0.5 s gap, repeated */
    size_t gap = 8000, per = wi.n_frames + gap, n = 0, N = 90 * 16000;
    float *x = calloc(N, sizeof *x);
    for (n = 0; n + per <= N; n += per)
        memcpy(x + n, sp, wi.n_frames * sizeof *x);
    n = N;
    int spt = vox_asr_model_info(m)->samples_per_token;
    int64_t n_tok = 32 + (int64_t)(n + spt - 1) / spt + 6 + 11; /* audio tokens after finish */

    vox_asr_opts o;
    vox_asr_opts_default(&o);
    o.watchdog = 0;
    int64_t r0 = 0, r1 = 0, r2 = 0;
    toklist a = run(m, &o, x, n, 320, &r0);
    toklist b = run(m, &o, x, n, 16000, NULL);
    int eq = a.n == b.n;
    for (int i = 0; eq && i < a.n; i++)
        eq = a.t[i].id == b.t[i].id && a.t[i].audio_tok == b.t[i].audio_tok;
    printf("90 s stream, no watchdog: %d tokens (20 ms chunks) vs %d (1 s chunks): %s\n", a.n, b.n,
           eq ? "identical" : "DIFFERENT");
    VOX_CHECK(&T, eq, "chunkings differ");
    int eos_early = a.n > 0 && a.t[a.n - 1].id == vox_asr_model_info(m)->eos;
    VOX_CHECK(&T, eos_early || a.n == n_tok - 39, "expected %lld tokens, got %d",
              (long long)(n_tok - 39), a.n);

    /* watchdog: force ruts (2 non-text tokens) and a decoder position limit of 48 */
    o.watchdog = 1;
    o.rut_tokens = 3;
    o.max_dec_pos = 48;
    toklist c = run(m, &o, x, n, 1280, &r1);
    int contiguous = 1, restarts_seen = 0;
    for (int i = 1; i < c.n; i++) {
        if (c.t[i].restart) {
            restarts_seen++;
            /* the re-run prompt covers the audio from where the decoder stopped */
            if (c.t[i].audio_tok > c.t[i - 1].audio_tok + 1 + 32 + 6 + 1) contiguous = 0;
        } else if (c.t[i].audio_tok != c.t[i - 1].audio_tok + 1)
            contiguous = 0;
    }
    printf("watchdog (rut 3, limit 48): %d tokens, last audio token %lld of %lld, %lld restarts, "
           "token times contiguous: %s\n",
           c.n, c.n ? (long long)c.t[c.n - 1].audio_tok : -1LL, (long long)n_tok, (long long)r1,
           contiguous ? "yes" : "NO");
    VOX_CHECK(&T, r1 > 0 && restarts_seen == r1, "restarts %lld, seen %d", (long long)r1,
              restarts_seen);
    VOX_CHECK(&T, contiguous, "audio tokens skipped across restarts");
    VOX_CHECK(&T, c.n > 0 && c.t[c.n - 1].audio_tok >= n_tok - 2 - 40,
              "decoding did not reach the end (within one prompt)");
    /* the watchdog's restarts depend on the audio, not on its pacing: the same restarts and
     * tokens when the whole audio and its end are known before decoding starts */
    int64_t r3 = 0;
    toklist d = run_offline(m, &o, x, n, &r3);
    int same = d.n == c.n && r3 == r1;
    for (int i = 0; same && i < c.n; i++)
        same = c.t[i].id == d.t[i].id && c.t[i].audio_tok == d.t[i].audio_tok &&
               c.t[i].restart == d.t[i].restart;
    printf("watchdog, whole audio and end known first: %d tokens, %lld restarts: %s\n", d.n,
           (long long)r3, same ? "identical to the 80 ms stream" : "DIFFERENT");
    VOX_CHECK(&T, same,
              "watchdog restarts depend on pacing (%d vs %d tokens, %lld vs %lld restarts)", d.n,
              c.n, (long long)r3, (long long)r1);

    /* flush mid-stream and continue */
    vox_asr_opts_default(&o);
    vox_asr_stream *s = vox_asr_stream_create_opts(m, &o, &e);
    toklist f = {0};
    VOX_CHECK(&T, vox_asr_feed(s, sp, wi.n_frames, &e) == VOX_OK, "feed");
    VOX_CHECK(&T, vox_asr_flush(s, &e) == VOX_OK, "flush: %s", e.msg);
    drain(s, &f);
    int after_flush = f.n;
    int64_t last = f.n ? f.t[f.n - 1].audio_tok : -1;
    int64_t want_last = 32 + (int64_t)(wi.n_frames + spt - 1) / spt + 6 + 11 - 2;
    VOX_CHECK(&T,
              after_flush > 0 &&
                  (last >= want_last - 1 || f.t[f.n - 1].id == vox_asr_model_info(m)->eos ||
                   vox_asr_stream_restarts(s) > 0),
              "flush did not decode the padding (last audio token %lld, want >= %lld)",
              (long long)last, (long long)want_last - 1);
    VOX_CHECK(&T, vox_asr_feed(s, sp, wi.n_frames, &e) == VOX_OK, "feed after flush: %s", e.msg);
    VOX_CHECK(&T, vox_asr_finish(s, &e) == VOX_OK, "finish");
    drain(s, &f);
    r2 = vox_asr_stream_restarts(s);
    printf(
        "flush: %d tokens at flush (last audio token %lld), %d after continuing, %lld restarts\n",
        after_flush, (long long)last, f.n - after_flush, (long long)r2);
    VOX_CHECK(&T, f.n > after_flush + 40, "stream did not continue after flush");
    vox_asr_stream_free(s);

    free(a.t), free(b.t), free(c.t), free(d.t), free(f.t);
    free(x);
    free(sp);
    vox_asr_model_free(m);
    vox_backend_destroy(be);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return vox_test_done(&T, "test_asr_stream");
}
