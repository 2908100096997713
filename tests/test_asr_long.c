/* test_asr_long.c - an hour-long live stream through a tiny random Voxtral Realtime model keeps
 * its resident memory flat and keeps producing one token per 80 ms of audio.
 *
 * Audio is synthesized here: the espeak-ng fixture sentence, then 1.7 s of low noise, again and
 * again, fed in 20 ms chunks as a microphone would. Small windows (encoder 16 frames, decoder 32
 * positions) make every ring wrap thousands of times, and the watchdog restarts the decoder on
 * its own when a rut or the position limit comes.
 *
 * Expectations (structural; the math is checked against the reference in test_asr_parity):
 *   - every 80 ms of audio yields exactly one token (token count == audio tokens decoded);
 *   - audio-token indices never go backwards, and every minute has tokens;
 *   - RSS after minute 1 and at the end differ by less than 2 MiB (the rings and queues are
 *     fixed-size; a leak of even one token's text per step would exceed that over an hour).
 * VOX_LONG_MINUTES sets the length (default 60; the sanitizer CI job uses fewer, as ASan's own
 * allocator bookkeeping makes RSS figures meaningless and its speed would make an hour slow). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vox_asr.h"
#include "vox_test.h"
#include "vox_wav.h"

static vox_test_state T;

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1) break;
    fclose(f);
    return v;
}

int main(void) {
    int minutes = 60;
    const char *env = getenv("VOX_LONG_MINUTES");
    if (env && atoi(env) > 0) minutes = atoi(env);

    char dir[512], cmd[2048], path[1100];
    snprintf(dir, sizeof dir, "%s/test_asr_long_XXXXXX", VOX_BINARY_DIR);
    if (!mkdtemp(dir)) return 1;
    snprintf(cmd, sizeof cmd,
             "'%s/bin/vox-mkmodel' --kind realtime --out '%s/m' --seed 11 --enc-window 16 "
             "--dec-window 32 >/dev/null",
             VOX_BINARY_DIR, dir);
    VOX_CHECK(&T, system(cmd) == 0, "mkmodel");

    vox_error e = {0};
    vox_backend *be = vox_backend_create(VOX_DEVICE_CPU, 2, VOX_LOG_QUIET, &e);
    snprintf(path, sizeof path, "%s/m", dir);
    vox_asr_model *m = be ? vox_asr_model_load(path, be, VOX_LOG_QUIET, &e) : NULL;
    VOX_CHECK(&T, m != NULL, "load: %s", e.msg);

    snprintf(path, sizeof path, "%s/tests/fixtures/asr/speech.wav", VOX_SOURCE_DIR);
    float *speech = NULL;
    vox_wav_info wi = {0};
    int rc = vox_wav_read(path, &speech, &wi, &e);
    VOX_CHECK(&T, rc == VOX_OK, "wav: %s", e.msg);
    if (!m || rc != VOX_OK) return vox_test_done(&T, "test_asr_long");

    /* one period: the sentence, then 1.7 s of noise at -50 dBFS */
    size_t gap = 27200, period = wi.n_frames + gap;
    float *loop = calloc(period, sizeof *loop);
    memcpy(loop, speech, wi.n_frames * sizeof *loop);
    uint32_t r = 12345;
    for (size_t i = wi.n_frames; i < period; i++) {
        r = r * 1664525u + 1013904223u;
        loop[i] = 0.003f * ((float)(r >> 8) / 8388608.0f - 1.0f);
    }

    vox_asr_stream *s = vox_asr_stream_create(m, 480, &e);
    VOX_CHECK(&T, s != NULL, "create: %s", e.msg);
    const size_t chunk = 320; /* 20 ms */
    const size_t per_min = 16000 * 60;
    size_t total = per_min * (size_t)minutes, fed = 0, pos = 0;
    int64_t n_tok = 0, last_audio = -1, backwards = 0, empty_minutes = 0, tok_this_min = 0;
    long rss1 = -1, rss_mid = -1;
    vox_asr_token tb[256];
    double t0 = vox_time_now();
    while (s && fed < total) {
        float buf[320];
        for (size_t i = 0; i < chunk; i++) {
            buf[i] = loop[pos];
            pos = (pos + 1) % period;
        }
        if (vox_asr_feed(s, buf, chunk, &e) != VOX_OK) {
            VOX_CHECK(&T, 0, "feed at %.1f s: %s", fed / 16000.0, e.msg);
            break;
        }
        fed += chunk;
        int k;
        while ((k = vox_asr_get_tokens(s, tb, 256)) > 0) {
            for (int i = 0; i < k; i++) {
                if (tb[i].audio_tok < last_audio) backwards++;
                last_audio = tb[i].audio_tok;
            }
            n_tok += k;
            tok_this_min += k;
        }
        size_t len;
        (void)vox_asr_get_text(s, &len); /* a live client reads the text too */
        if (fed % per_min == 0) {
            int min = (int)(fed / per_min);
            if (tok_this_min == 0) empty_minutes++;
            long rss = rss_kib();
            if (min == 1) rss1 = rss;
            if (min == (minutes + 1) / 2) rss_mid = rss;
            if (min == 1 || min == (minutes + 1) / 2 || min == minutes)
                printf("minute %3d: RSS %ld KiB, %lld tokens so far (%lld this minute), %lld "
                       "decoder restarts, %.1f s wall\n",
                       min, rss, (long long)n_tok, (long long)tok_this_min,
                       (long long)vox_asr_stream_restarts(s), vox_time_now() - t0);
            fflush(stdout);
            tok_this_min = 0;
        }
    }
    long rss_end = rss_kib();
    /* every whole 80 ms of fed audio has been stepped except the decoder's look-ahead: the
     * stream decodes position p once audio token p exists, so the count trails the audio by
     * less than the delay plus one chunk of encoder work */
    int64_t audio_tokens = (int64_t)(fed / 1280);
    VOX_CHECK(&T, n_tok > audio_tokens - 64 && n_tok <= audio_tokens + 32,
              "%lld tokens for %lld audio tokens", (long long)n_tok, (long long)audio_tokens);
    VOX_CHECK(&T, backwards == 0, "audio-token index went backwards %lld times",
              (long long)backwards);
    VOX_CHECK(&T, empty_minutes == 0, "%lld minutes without tokens", (long long)empty_minutes);
#if !defined(__SANITIZE_ADDRESS__)
    VOX_CHECK(&T, rss1 > 0 && rss_end - rss1 < 2048,
              "RSS grew from %ld KiB (minute 1) to %ld KiB (end)", rss1, rss_end);
#endif
    printf("%d minutes: RSS at minute 1 / %d / %d: %ld / %ld / %ld KiB; %lld tokens\n", minutes,
           (minutes + 1) / 2, minutes, rss1, rss_mid, rss_end, (long long)n_tok);

    vox_asr_stream_free(s);
    free(loop);
    free(speech);
    vox_asr_model_free(m);
    vox_backend_destroy(be);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    return vox_test_done(&T, "test_asr_long");
}
