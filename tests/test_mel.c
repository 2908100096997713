/* test_mel.c - the log-mel front end against transformers' VoxtralRealtimeFeatureExtractor
 * (fixtures from tests/reference/mel_ref.py, float32, time-major), plus exact properties:
 * digital silence == (global_log_mel_max - 8 + 4) / 4, the frame count n / hop, the 255 frames
 * inside the 40 960-sample stream padding, and incremental == offline bit for bit for several
 * chunkings. The configuration is read from the fixture's meta.json (the values of the real
 * params.json audio_encoding_args), never assumed here. */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_common.h"
#include "vox_mel.h"
#include "vox_test.h"
#include "vox_wav.h"
#include "mel_fixture.h"

#define FIX MEL_FIX

/* Absolute tolerance against the float32 torch reference. Both sides are float32 with different
 * FFTs (FFTW vs pocketfft) and |X|^2 vs |X|.abs()**2; the reference itself differs from a
 * float64 computation by up to 2.7e-5 (meta.json max_abs_hf_vs_f64). */
#define TOL_REF 1e-4

/* Feed `x` in chunks (chunk > 0: fixed size; chunk == 0: pseudo-random 1..3000) and finish;
 * returns the frames in a malloc'ed [T][n_mels] buffer and T in *nt. */
static float *run_stream(vox_mel_stream *s, const float *x, size_t n, size_t chunk, size_t nm,
                         size_t *nt, vox_test_state *ts) {
    vox_error err = {0};
    vox_mel_stream_reset(s);
    size_t cap = n / 160 + 16, T = 0;
    float *out = malloc(cap * nm * sizeof(float));
    uint32_t rng = 12345u;
    size_t i = 0;
    int ok = 1, fails = 0;
    while (i < n && ok) {
        size_t k = chunk;
        if (chunk == 0) {
            rng = rng * 1664525u + 1013904223u;
            k = 1 + (rng >> 8) % 3000;
        }
        if (k > n - i) k = n - i;
        size_t want = vox_mel_stream_frames_for(s, k), got = 0;
        if (T + want > cap) break;
        ok = vox_mel_stream_feed(s, x + i, k, out + T * nm, cap - T, &got, &err) == VOX_OK;
        if (!ok || got != want) {
            fails++;
            fprintf(stderr, "stream feed: rc ok %d, got %zu frames, predicted %zu: %s\n", ok, got,
                    want, err.msg);
        }
        T += got;
        i += k;
    }
    VOX_CHECK(ts, fails == 0, "%d stream feeds failed or mispredicted their frame count", fails);
    size_t want = vox_mel_stream_frames_at_finish(s), got = 0;
    ok = ok && T + want <= cap &&
         vox_mel_stream_finish(s, out + T * nm, cap - T, &got, &err) == VOX_OK;
    VOX_CHECK(ts, ok && got == want, "stream finish: got %zu, predicted %zu: %s", got, want,
              err.msg);
    T += got;
    *nt = T;
    return out;
}

/* Thread worker: makes its own vox_mel (plans under the planner lock) and computes with both
 * its own and the shared one; results must equal the single-threaded output bit for bit. */
typedef struct worker {
    const vox_mel *shared;
    const vox_mel_config *cfg;
    const float *x;
    size_t n, T, nm;
    const float *expect;
    int ok;
} worker;

static void *worker_main(void *arg) {
    worker *w = arg;
    vox_error err = {0};
    w->ok = 0;
    float *o = malloc(w->T * w->nm * sizeof(float));
    for (int rep = 0; rep < 3 && o; rep++) {
        vox_mel *own = vox_mel_new(w->cfg, &err);
        if (!own) break;
        int ok = vox_mel_compute(w->shared, w->x, w->n, VOX_MEL_PAD_REFLECT, o, &err) == VOX_OK &&
                 memcmp(o, w->expect, w->T * w->nm * sizeof(float)) == 0;
        ok = ok && vox_mel_compute(own, w->x, w->n, VOX_MEL_PAD_REFLECT, o, &err) == VOX_OK &&
             memcmp(o, w->expect, w->T * w->nm * sizeof(float)) == 0;
        vox_mel_free(own);
        if (!ok) break;
        if (rep == 2) w->ok = 1;
    }
    free(o);
    return NULL;
}

int main(void) {
    vox_test_state ts = {0};
    vox_error err = {0};

    /* ---- configuration from the fixture meta (= real params.json audio_encoding_args) */
    vox_mel_config cfg;
    cJSON *meta = mel_fix_load(&cfg, &ts);
    if (!meta) return vox_test_done(&ts, "test_mel");
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(meta, "inputs");
    int ok = inputs != NULL;
    VOX_CHECK(&ts, ok, "meta.json has no inputs");
    if (!ok) {
        cJSON_Delete(meta);
        return vox_test_done(&ts, "test_mel");
    }
    vox_mel *mel = vox_mel_new(&cfg, &err);
    VOX_CHECK(&ts, mel != NULL, "vox_mel_new: %s", err.msg);
    if (!mel) {
        cJSON_Delete(meta);
        return vox_test_done(&ts, "test_mel");
    }
    const size_t nm = (size_t)cfg.n_mels, hop = (size_t)cfg.hop;
    /* the silence value, computed in float exactly as specified: ((max - 8) + 4) / 4 */
    const float floor_val = ((float)(cfg.global_log_mel_max - 8.0) + 4.0f) / 4.0f;
    VOX_CHECK(&ts, floor_val == (float)mel_fix_jnum(meta, "floor_value", &ok), "floor value %.9g vs meta",
              floor_val);

    /* ---- against the reference */
    static const char *names[] = {"speech", "sine", "click"};
    float *speech = NULL;
    size_t n_speech = 0;
    for (int t = 0; t < 3; t++) {
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(inputs, names[t]);
        char wav[600], ref[600];
        snprintf(wav, sizeof wav, FIX "%s.wav", names[t]);
        snprintf(ref, sizeof ref, FIX "%s.mel.f32", names[t]);
        float *x = NULL;
        vox_wav_info wi = {0};
        int rc = vox_wav_read(wav, &x, &wi, &err);
        VOX_CHECK(&ts, rc == VOX_OK && in, "%s: %s", wav, err.msg);
        if (rc != VOX_OK || !in) continue;
        VOX_CHECK(&ts, wi.sample_rate == cfg.sample_rate, "%s: rate %d", wav, wi.sample_rate);
        size_t n = wi.n_frames, T = vox_mel_n_frames(mel, n);
        VOX_CHECK(&ts,
                  (double)n == mel_fix_jnum(in, "n_samples", &ok) && (double)T == mel_fix_jnum(in, "frames", &ok),
                  "%s: %zu samples / %zu frames vs meta", names[t], n, T);
        float *r = mel_fix_read_f32(ref, T * nm, &ts);
        float *o = malloc(T * nm * sizeof(float));
        rc = vox_mel_compute(mel, x, n, VOX_MEL_PAD_REFLECT, o, &err);
        VOX_CHECK(&ts, rc == VOX_OK, "compute %s: %s", names[t], err.msg);
        if (r && rc == VOX_OK) {
            double maxd = 0.0, sumd = 0.0;
            size_t at = 0, n_floor_ref = 0, n_floor_match = 0;
            for (size_t i = 0; i < T * nm; i++) {
                double d = fabs((double)o[i] - (double)r[i]);
                sumd += d;
                if (d > maxd) maxd = d, at = i;
                if (r[i] == floor_val) n_floor_ref++, n_floor_match += o[i] == floor_val;
            }
            printf(
                "%-6s: %zu samples, %zu frames: max |ours - transformers| = %.3g (frame %zu, mel "
                "%zu), mean %.3g; floor cells %zu/%zu identical\n",
                names[t], n, T, maxd, at / nm, at % nm, sumd / (double)(T * nm), n_floor_match,
                n_floor_ref);
            VOX_CHECK(&ts, maxd <= TOL_REF, "%s: max error %.3g > %.1g", names[t], maxd, TOL_REF);
        }
        /* zero padding differs from reflect only in the frames touching the ends */
        float *oz = malloc(T * nm * sizeof(float));
        vox_mel_compute(mel, x, n, VOX_MEL_PAD_ZERO, oz, &err);
        size_t edge = ((size_t)cfg.n_fft / 2 + hop - 1) / hop; /* frames with a padded sample */
        int inner_same = 1;
        for (size_t g = edge; g + edge + 1 < T; g++)
            inner_same &= memcmp(o + g * nm, oz + g * nm, nm * sizeof(float)) == 0;
        VOX_CHECK(&ts, inner_same, "%s: zero and reflect padding differ away from the ends",
                  names[t]);
        free(oz);
        free(r);
        free(o);
        if (t == 0) {
            speech = x;
            n_speech = n;
        } else {
            free(x);
        }
    }

    /* ---- digital silence: exactly the floor value everywhere */
    {
        float *x = NULL;
        vox_wav_info wi = {0};
        int rc = vox_wav_read(FIX "silence.wav", &x, &wi, &err);
        VOX_CHECK(&ts, rc == VOX_OK, "%s", err.msg);
        if (rc == VOX_OK) {
            size_t T = vox_mel_n_frames(mel, wi.n_frames);
            VOX_CHECK(&ts, T == wi.n_frames / hop && T == 100, "1 s of silence: %zu frames", T);
            float *o = malloc(T * nm * sizeof(float));
            vox_mel_compute(mel, x, wi.n_frames, VOX_MEL_PAD_REFLECT, o, &err);
            size_t bad = 0;
            for (size_t i = 0; i < T * nm; i++)
                bad += o[i] != -0.625f || o[i] != floor_val;
            VOX_CHECK(&ts, bad == 0, "silence: %zu of %zu values are not exactly -0.625", bad,
                      T * nm);
            printf("silence: %zu frames, all %zu values == %.9g exactly: %s\n", T, T * nm,
                   floor_val, bad ? "NO" : "yes");
            free(o);
        }
        free(x);
    }

    /* ---- frame count n / hop, and short inputs */
    {
        static const size_t lens[] = {0, 1, 159, 160, 161, 200, 201, 319, 320, 400, 16000, 79360};
        float *z = calloc(79360, sizeof(float));
        float *o = malloc((79360 / 160 + 1) * nm * sizeof(float));
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            size_t n = lens[i], T = vox_mel_n_frames(mel, n);
            VOX_CHECK(&ts, T == n / hop, "n_frames(%zu) = %zu", n, T);
            int rz = vox_mel_compute(mel, z, n, VOX_MEL_PAD_ZERO, o, &err);
            int rr = vox_mel_compute(mel, z, n, VOX_MEL_PAD_REFLECT, o, &err);
            VOX_CHECK(&ts, rz == VOX_OK, "zero pad n=%zu: %s", n, err.msg);
            VOX_CHECK(&ts, (rr == VOX_OK) == (n > (size_t)cfg.n_fft / 2),
                      "reflect n=%zu: rc %d (needs n > n_fft/2)", n, rr);
        }
        VOX_CHECK(&ts, vox_mel_n_frames(mel, 79360) == 496 && vox_mel_n_frames(mel, 16000) == 100,
                  "spec: 79 360 samples -> 496 frames, 1 s -> 100");
        free(z);
        free(o);
    }

    /* ---- incremental == offline, bit for bit */
    vox_mel_stream *st = vox_mel_stream_new(mel, &err);
    VOX_CHECK(&ts, st != NULL, "stream: %s", err.msg);
    if (st && speech) {
        /* the Voxtral offline stream layout: 40 960 zeros, audio, zeros to a whole 1280-sample
         * token plus 17 tokens (values from the spec, only to make the test signal) */
        size_t left = 40960, tok = 1280;
        size_t right = (tok - n_speech % tok) % tok + 17 * tok;
        size_t np = left + n_speech + right;
        float *padded = calloc(np, sizeof(float));
        memcpy(padded + left, speech, n_speech * sizeof(float));
        size_t T = vox_mel_n_frames(mel, np);
        float *off_r = malloc(T * nm * sizeof(float)), *off_z = malloc(T * nm * sizeof(float));
        vox_mel_compute(mel, padded, np, VOX_MEL_PAD_REFLECT, off_r, &err);
        vox_mel_compute(mel, padded, np, VOX_MEL_PAD_ZERO, off_z, &err);
        VOX_CHECK(&ts, memcmp(off_r, off_z, T * nm * sizeof(float)) == 0,
                  "zero-edged signal: reflect != zero padding");
        /* frames inside the left padding: (left - n_fft/2) / hop + 1 = 255 exactly at the floor */
        size_t n_sil = (left - (size_t)cfg.n_fft / 2) / hop + 1, bad = 0;
        for (size_t i = 0; i < n_sil * nm; i++)
            bad += off_r[i] != floor_val;
        VOX_CHECK(&ts, n_sil == 255 && bad == 0, "left-pad frames: %zu, %zu not at the floor",
                  n_sil, bad);
        VOX_CHECK(&ts, T == np / hop && T % 8 == 0, "padded: %zu frames", T);

        static const size_t chunks[] = {1, 160, 320, 1280, 7, 0, 100000};
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            size_t Ts = 0;
            float *so = run_stream(st, padded, np, chunks[c], nm, &Ts, &ts);
            int same = Ts == T && memcmp(so, off_r, T * nm * sizeof(float)) == 0;
            VOX_CHECK(&ts, same,
                      "padded speech, chunk %zu: stream %zu frames vs offline %zu, not "
                      "bit-identical",
                      chunks[c], Ts, T);
            printf("stream chunk %-6zu%s: %zu frames, bit-identical to offline: %s\n", chunks[c],
                   chunks[c] ? "" : "(rand)", Ts, same ? "yes" : "NO");
            free(so);
        }
        /* an unpadded signal (non-zero edges): stream == offline ZERO padding */
        size_t Tu = vox_mel_n_frames(mel, n_speech);
        float *ou = malloc(Tu * nm * sizeof(float));
        vox_mel_compute(mel, speech, n_speech, VOX_MEL_PAD_ZERO, ou, &err);
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            size_t Ts = 0;
            float *so = run_stream(st, speech, n_speech, chunks[c], nm, &Ts, &ts);
            VOX_CHECK(&ts, Ts == Tu && memcmp(so, ou, Tu * nm * sizeof(float)) == 0,
                      "raw speech, chunk %zu: not bit-identical to offline zero padding",
                      chunks[c]);
            free(so);
        }
        /* every length around the frame boundaries: frame count and identity */
        for (size_t n = 0; n <= 3 * 160 + 250; n += 7) {
            size_t Ts = 0;
            float *so = run_stream(st, speech + 3000, n, 13, nm, &Ts, &ts);
            float *oo = malloc((n / hop + 1) * nm * sizeof(float));
            vox_mel_compute(mel, speech + 3000, n, VOX_MEL_PAD_ZERO, oo, &err);
            VOX_CHECK(&ts, Ts == n / hop && memcmp(so, oo, Ts * nm * sizeof(float)) == 0,
                      "short stream n=%zu: %zu frames, expected %zu", n, Ts, n / hop);
            free(so);
            free(oo);
        }
        /* capacity errors consume nothing; feed after finish fails */
        vox_mel_stream_reset(st);
        float one[128 * 4];
        size_t got = 9;
        size_t want = vox_mel_stream_frames_for(st, 2000);
        int rc = vox_mel_stream_feed(st, padded, 2000, one, want - 1, &got, &err);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG && got == 0 && vox_mel_stream_samples_fed(st) == 0,
                  "short output buffer must be refused (rc %d)", rc);
        rc = vox_mel_stream_finish(st, one, 4, &got, &err);
        VOX_CHECK(&ts, rc == VOX_OK && got == 0, "finish of an empty stream: rc %d, %zu frames", rc,
                  got);
        rc = vox_mel_stream_feed(st, padded, 10, one, 4, &got, &err);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG, "feed after finish must fail");
        free(ou);
        free(off_r);
        free(off_z);
        free(padded);
    }
    vox_mel_stream_free(st);

    /* ---- threads: one shared vox_mel, concurrent plan creation and computation */
    if (speech) {
        size_t T = vox_mel_n_frames(mel, n_speech);
        float *expect = malloc(T * nm * sizeof(float));
        vox_mel_compute(mel, speech, n_speech, VOX_MEL_PAD_REFLECT, expect, &err);
        worker w[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) {
            w[i] = (worker){mel, &cfg, speech, n_speech, T, nm, expect, 0};
            pthread_create(&th[i], NULL, worker_main, &w[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        VOX_CHECK(&ts, w[0].ok && w[1].ok, "threads: results differ from the single-threaded run");
        free(expect);
    }

    /* ---- bad configurations are refused with a message */
    {
        vox_mel_config b = cfg;
        b.f_max = cfg.sample_rate;
        vox_mel *m2 = vox_mel_new(&b, &err);
        VOX_CHECK(&ts, m2 == NULL && err.code == VOX_ERR_ARG && strstr(err.msg, "f_max"),
                  "f_max above Nyquist: %s", err.msg);
        b = cfg;
        b.hop = 0;
        m2 = vox_mel_new(&b, &err);
        VOX_CHECK(&ts, m2 == NULL && strstr(err.msg, "hop"), "hop 0: %s", err.msg);
    }

    free(speech);
    vox_mel_free(mel);
    cJSON_Delete(meta);
    return vox_test_done(&ts, "test_mel");
}
