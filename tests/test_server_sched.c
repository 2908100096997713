/* test_server_sched.c - the vox-server scheduler through its job API (apps/server/server.h),
 * without the network: a TTS job's PCM events equal vox-tts's output for the same text (two
 * sentence chunks, split by the shared vox_tts_split_text), voice and seed (within 1.5 LSB of s16,
 * the WAV's rounding); two TTS jobs batched together each equal it (same tolerance: the batched
 * step is the same math per row); --max-sessions refuses the next job with a message naming the
 * option; an ASR job fed in 100 ms pieces ends with a DONE event whose text equals the concatenated
 * TEXT events and vox-transcribe's text; closing jobs mid-stream is clean (ASan build). Models are
 * generated with vox-mkmodel. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "server/server.h"
#include "vox_test.h"
#include "vox_wav.h"

static vox_test_state T;

static void nap(void) {
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
}

/* Pop events of j until DONE/ERROR (or 60 s): PCM appended to *pcm, TEXT to *text. */
static int drain(srv_job *j, float **pcm, size_t *n, char **text, srv_event *done) {
    size_t cap = 0, tl = 0;
    double t0 = vox_time_now();
    srv_event ev;
    while (vox_time_now() - t0 < 60) {
        if (!srv_job_pop(j, &ev)) {
            nap();
            continue;
        }
        if (ev.kind == SRV_EV_PCM && pcm) {
            if (*n + ev.n > cap) {
                cap = (*n + ev.n) * 2;
                *pcm = realloc(*pcm, cap * sizeof **pcm);
            }
            memcpy(*pcm + *n, ev.pcm, ev.n * sizeof *ev.pcm);
            *n += ev.n;
        } else if (ev.kind == SRV_EV_TEXT && text) {
            *text = realloc(*text, tl + ev.len + 1);
            memcpy(*text + tl, ev.text, ev.len);
            tl += ev.len;
            (*text)[tl] = 0;
        } else if (ev.kind == SRV_EV_DONE || ev.kind == SRV_EV_ERROR) {
            *done = ev;
            return ev.kind == SRV_EV_DONE ? 0 : -1;
        }
        srv_event_clear(&ev);
    }
    return -1;
}

static double max_diff_s16(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i] > 1 ? 1 : a[i] < -1 ? -1 : a[i];
        double d = x - b[i];
        if (d < 0) d = -d;
        if (d > m) m = d;
    }
    return m * 32768.0;
}

static char *read_text(const char *path) {
    char *t = vox_read_file(path, NULL, NULL);
    if (!t) return NULL;
    size_t n = strlen(t);
    while (n && (t[n - 1] == '\n' || t[n - 1] == ' '))
        t[--n] = 0;
    return t;
}

int main(void) {
    char dir[] = "/tmp/vox_srv_sched_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char cmd[4096], path[4096];
    const char *wav = VOX_SOURCE_DIR "/tests/fixtures/asr/speech.wav";
    /* about 700 bytes = two chunks of vox-tts's 400-byte default: the job must split as vox-tts
     * does */
    const char *text = "Hello world. This is a test of a longer text that the server speaks as "
                       "several sessions, one per chunk of sentences, exactly as vox-tts does. "
                       "The first chunk ends somewhere in here, after a few sentences of filler "
                       "words that make it long enough. Another sentence follows; it has a "
                       "semicolon and a comma, and goes on for a while. Yet another one. And one "
                       "more, so that the second chunk fills up as well, with words and words and "
                       "words and words. Is this the third chunk already? Perhaps it is. The end "
                       "of the text comes here, after about seven hundred bytes of it, which "
                       "is two chunks in all, each a session with its own seed, spoken in turn "
                       "and joined into one stream of samples at twenty-four kilohertz.";
    snprintf(
        cmd, sizeof cmd,
        "%s/bin/vox-mkmodel --kind realtime --out %s/asr --seed 11 --enc-window 16 >/dev/null && "
        "%s/bin/vox-mkmodel --kind tts --out %s/tts >/dev/null && "
        "%s/bin/vox-tts -m %s/tts --device cpu --seed 5 -o %s/ref.wav '%s' 2>/dev/null && "
        "%s/bin/vox-transcribe -m %s/asr --device cpu %s >%s/ref.txt 2>/dev/null",
        VOX_BINARY_DIR, dir, VOX_BINARY_DIR, dir, VOX_BINARY_DIR, dir, dir, text, VOX_BINARY_DIR,
        dir, wav, dir);
    lws_set_log_level(LLL_ERR, NULL);
    int rc = system(cmd);
    VOX_CHECK(&T, rc == 0, "generating models / references failed: %s", cmd);
    if (rc) return vox_test_done(&T, "test_server_sched");

    char asr_dir[4200], tts_dir[4200];
    snprintf(asr_dir, sizeof asr_dir, "%s/asr", dir);
    snprintf(tts_dir, sizeof tts_dir, "%s/tts", dir);
    srv_config cfg = {0};
    cfg.model_dir = asr_dir;
    cfg.tts_model_dir = tts_dir;
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.device = "cpu";
    cfg.threads = 1;
    cfg.max_sessions = 3;
    cfg.max_message = 1 << 20;
    cfg.max_audio_sec = 60;
    cfg.max_out_queue = 1 << 20;
    vox_error e = {0};
    srv *S = srv_create(&cfg, &e);
    VOX_CHECK(&T, S != NULL, "srv_create: %s", e.msg);
    if (!S) return vox_test_done(&T, "test_server_sched");
    VOX_CHECK(&T, srv_has_tts(S) && srv_tts_sample_rate(S) == 24000, "TTS at 24 kHz");

    float *ref = NULL;
    vox_wav_info wi;
    snprintf(path, sizeof path, "%s/ref.wav", dir);
    VOX_CHECK(&T, vox_wav_read(path, &ref, &wi, &e) == 0, "read %s: %s", path, e.msg);
    size_t nref = ref ? wi.n_frames : 0;

    /* one TTS job vs vox-tts */
    srv_tts_opts o = {0};
    o.seed = 5;
    srv_job *j = srv_tts_open(S, text, NULL, &o, NULL, &e);
    VOX_CHECK(&T, j != NULL, "srv_tts_open: %s", e.msg);
    float *pcm = NULL;
    size_t n = 0;
    srv_event done = {0};
    if (j) {
        VOX_CHECK(&T, drain(j, &pcm, &n, NULL, &done) == 0, "TTS job failed: %s",
                  done.text ? done.text : "timeout");
        VOX_CHECK(&T, n == nref, "TTS samples %zu, vox-tts %zu", n, nref);
        if (n == nref && n) {
            double d = max_diff_s16(pcm, ref, n);
            VOX_CHECK(&T, d <= 1.5, "TTS PCM differs from vox-tts by %.2f LSB (tolerance 1.5)", d);
        }
        VOX_CHECK(&T, done.audio_sec > 0 && done.completion_tokens > 0, "DONE usage");
        srv_event_clear(&done);
        srv_job_close(j);
    }
    /* two at once (batched), and the third session slot taken by an ASR job */
    srv_job *a = srv_tts_open(S, text, NULL, &o, NULL, &e);
    srv_job *b = srv_tts_open(S, text, NULL, &o, NULL, &e);
    srv_job *c = srv_asr_open(S, 0, NULL, &e);
    VOX_CHECK(&T, a && b && c, "three jobs: %s", e.msg);
    srv_job *x = srv_asr_open(S, 0, NULL, &e);
    VOX_CHECK(&T, x == NULL && strstr(e.msg, "--max-sessions"),
              "a fourth job must be refused naming --max-sessions: %s", x ? "(opened)" : e.msg);
    VOX_CHECK(&T, srv_sessions(S) == 3, "sessions %d", srv_sessions(S));
    VOX_CHECK(&T,
              srv_tts_open(S, "x", "no-such-voice", &o, NULL, &e) == NULL &&
                  strstr(e.msg, "no-such-voice"),
              "unknown voice: %s", e.msg);
    /* feed the ASR job while the TTS jobs run */
    float *sp = NULL;
    vox_wav_info si;
    VOX_CHECK(&T, vox_wav_read(wav, &sp, &si, &e) == 0, "read %s", wav);
    if (c && sp) {
        for (size_t i = 0; i < si.n_frames; i += 1600) {
            size_t k = si.n_frames - i < 1600 ? si.n_frames - i : 1600;
            VOX_CHECK(&T, srv_asr_push(c, sp + i, k, &e) == 0, "push: %s", e.msg);
        }
        VOX_CHECK(&T, srv_asr_end(c, &e) == 0, "end: %s", e.msg);
        VOX_CHECK(&T, srv_asr_push(c, sp, 10, &e) != 0, "push after end must fail");
    }
    for (int k = 0; k < 2; k++) {
        srv_job *t = k ? b : a;
        if (!t) continue;
        float *p2 = NULL;
        size_t n2 = 0;
        srv_event d2 = {0};
        VOX_CHECK(&T, drain(t, &p2, &n2, NULL, &d2) == 0, "batched TTS job %d failed", k);
        VOX_CHECK(&T, n2 == nref, "batched TTS samples %zu, vox-tts %zu", n2, nref);
        if (n2 == nref && n2) {
            double d = max_diff_s16(p2, ref, n2);
            VOX_CHECK(&T, d <= 1.5, "batched TTS PCM differs from vox-tts by %.2f LSB", d);
        }
        srv_event_clear(&d2);
        free(p2);
        srv_job_close(t);
    }
    if (c) {
        char *txt = NULL;
        srv_event d3 = {0};
        VOX_CHECK(&T, drain(c, NULL, NULL, &txt, &d3) == 0, "ASR job failed");
        snprintf(path, sizeof path, "%s/ref.txt", dir);
        char *want = read_text(path);
        /* vox-transcribe trims the text and prints NUL as a space */
        char *got = d3.text ? strdup(d3.text) : NULL;
        if (got) {
            for (size_t i = 0; i < d3.len; i++)
                if (!got[i]) got[i] = ' ';
            char *s = got;
            while (*s == ' ' || *s == '\n')
                s++;
            size_t l = strlen(s);
            while (l && (s[l - 1] == ' ' || s[l - 1] == '\n'))
                s[--l] = 0;
            VOX_CHECK(&T, want && !strcmp(s, want), "ASR DONE text differs from vox-transcribe");
        }
        VOX_CHECK(&T, txt && d3.text && !strcmp(txt, d3.text), "TEXT events concatenate to DONE");
        VOX_CHECK(&T, d3.audio_sec > 3.4 && d3.audio_sec < 3.5, "audio_sec %.3f", d3.audio_sec);
        free(got);
        free(want);
        free(txt);
        srv_event_clear(&d3);
        srv_job_close(c);
    }
    /* close jobs mid-stream: the scheduler frees them */
    srv_job *m1 = srv_tts_open(S, text, NULL, &o, NULL, &e);
    srv_job *m2 = srv_asr_open(S, 0, NULL, &e);
    if (m2 && sp) srv_asr_push(m2, sp, si.n_frames / 2, &e);
    nap();
    srv_job_close(m1);
    srv_job_close(m2);
    for (int i = 0; i < 500 && srv_sessions(S); i++)
        nap();
    VOX_CHECK(&T, srv_sessions(S) == 0, "sessions after close: %d", srv_sessions(S));
    srv_destroy(S);
    free(pcm);
    free(ref);
    free(sp);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) fprintf(stderr, "cannot remove %s\n", dir);
    return vox_test_done(&T, "test_server_sched");
}
