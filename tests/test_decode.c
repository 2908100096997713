/* test_decode.c - vox_decode (libav + swresample) against independent encoders/resamplers.
 *
 * One espeak-ng sentence is converted by sox to a 16 kHz mono 16-bit WAV (the reference, read
 * with our own WAV reader), then re-encoded AT TEST TIME by ffmpeg/sox (independent tools) into
 * every container/codec/rate/channel variant. Each is decoded to 16 kHz mono and compared to the
 * reference: length and SNR / correlation at the best lag within +-200 samples, thresholds
 * stated per case (see docs/audio.md "Decoder accuracy"). Resampled cases are also compared to
 * sox's own resampling of the same file. Then memory/fd/pipe/raw inputs, incremental reads and
 * every error path. */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vox_audio_write.h"
#include "vox_decode.h"
#include "vox_test.h"
#include "vox_wav.h"

static char g_dir[512];

static const char *tmp(const char *name) {
    static char paths[16][600];
    static int k;
    char *p = paths[k++ % 16];
    snprintf(p, 600, "%s/%s", g_dir, name);
    return p;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static int sh(const char *fmt, ...) {
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[2800];
    snprintf(full, sizeof full, "cd '%s' && %s >/dev/null 2>&1", g_dir, cmd);
    int rc = system(full);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

static const vox_decode_opts k16 = {16000, 0, 0};

typedef struct {
    double snr_db, corr;
    int lag;
} cmp_t;

/* Best lag of y against x in [-maxlag, maxlag] (by correlation), then SNR (no gain fit) and
 * normalised correlation over the overlap. */
static cmp_t compare(const float *x, size_t nx, const float *y, size_t ny, int maxlag) {
    cmp_t best = {-1e9, -2, 0};
    for (int lag = -maxlag; lag <= maxlag; lag++) {
        double sxy = 0, sxx = 0, syy = 0, se = 0;
        for (size_t i = 0; i < nx; i++) {
            long j = (long)i + lag;
            double a = x[i], b = (j >= 0 && (size_t)j < ny) ? y[j] : 0.0;
            sxy += a * b;
            sxx += a * a;
            syy += b * b;
            se += (a - b) * (a - b);
        }
        double c = (sxx > 0 && syy > 0) ? sxy / sqrt(sxx * syy) : 0;
        if (c > best.corr) {
            best.corr = c;
            best.lag = lag;
            best.snr_db = se > 0 ? 10 * log10(sxx / se) : 999;
        }
    }
    return best;
}

static float *g_ref;
static size_t g_nref;

/* Decode `file` (in g_dir) and compare with `ref` (g_ref if NULL). */
static void check_variant(vox_test_state *ts, const char *file, const float *ref, size_t nref,
                          size_t len_tol, double min_snr, double min_corr, int max_lag) {
    if (!ref) {
        ref = g_ref;
        nref = g_nref;
    }
    float *y = NULL;
    size_t ny = 0;
    vox_decode_info info;
    vox_error err = {0};
    int rc = vox_decode_file(tmp(file), &k16, &y, &ny, &info, &err);
    VOX_CHECK(ts, rc == VOX_OK, "%s: %s", file, err.msg);
    if (rc) return;
    cmp_t c = compare(ref, nref, y, ny, 200);
    long dl = (long)ny - (long)nref;
    printf("  %-14s %-10s %5d Hz %dch %-8s -> %zu samples (ref %+ld), lag %+d, SNR %6.2f dB, "
           "corr %.5f%s%s\n",
           file, info.codec, info.src_rate, info.src_channels, info.resampler, ny, dl, c.lag,
           c.snr_db, c.corr, info.truncated ? " WARN " : "", info.warning);
    VOX_CHECK(ts, (size_t)labs(dl) <= len_tol, "%s: length %zu vs %zu (tol %zu)", file, ny, nref,
              len_tol);
    VOX_CHECK(ts, c.snr_db >= min_snr, "%s: SNR %.2f dB < %.1f", file, c.snr_db, min_snr);
    VOX_CHECK(ts, c.corr >= min_corr, "%s: corr %.5f < %.4f", file, c.corr, min_corr);
    VOX_CHECK(ts, abs(c.lag) <= max_lag, "%s: lag %d > %d", file, c.lag, max_lag);
    VOX_CHECK(ts, !info.truncated, "%s: unexpected warning %s", file, info.warning);
    VOX_CHECK(ts, info.out_rate == 16000 && info.out_samples == ny, "%s: info", file);
    free(y);
}

static void expect_error(vox_test_state *ts, const char *path, const char *what) {
    float *y = (float *)1;
    size_t n = 7;
    vox_error err = {0};
    int rc = vox_decode_file(path, &k16, &y, &n, NULL, &err);
    VOX_CHECK(ts, rc != VOX_OK && y == NULL && n == 0, "%s: expected error (%s), rc %d", path, what,
              rc);
    VOX_CHECK(ts, strstr(err.msg, path) != NULL, "error does not name the file: '%s'", err.msg);
    VOX_CHECK(ts, strstr(err.msg, what) != NULL, "error '%s' lacks '%s'", err.msg, what);
    printf("  %-22s -> %s\n", strrchr(path, '/') ? strrchr(path, '/') + 1 : path, err.msg);
    if (rc == VOX_OK) free(y);
}

static int read_ref(const char *file, float **x, size_t *n, int want_rate) {
    vox_wav_info wi;
    vox_error err = {0};
    if (vox_wav_read(tmp(file), x, &wi, &err) || wi.sample_rate != want_rate) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    *n = wi.n_frames;
    return 0;
}

static void *slurp(const char *path, size_t *n) {
    vox_error err = {0};
    return vox_read_file(path, n, &err);
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int main(void) {
    vox_test_state ts = {0};
    vox_decode_global_init(0);
    snprintf(g_dir, sizeof g_dir, "%s/test_decode.XXXXXX", VOX_BINARY_DIR);
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (sh("espeak-ng -v en-us -s 160 -w s22.wav 'Hello world, this is a speech recognition "
           "test of the audio decoder.'") ||
        sh("sox -D s22.wav -r 16000 -c 1 -b 16 ref.wav") ||
        read_ref("ref.wav", &g_ref, &g_nref, 16000)) {
        printf("skip: espeak-ng/sox unavailable\n");
        return 0;
    }
    printf("reference: %zu samples at 16 kHz (%.3f s)\n", g_nref, g_nref / 16000.0);

    /* ---- mistral-common's own path (soundfile + channel mean + soxr HQ), committed goldens
     * from tests/reference/decode_ref.py: tolerance 1e-5 absolute (measured: 0, bit-identical;
     * the slack is for a different libsoxr build or SIMD path) ---- */
    {
        const char *names[] = {"e22.wav", "e44st.flac"};
        for (int k = 0; k < 2; k++) {
            char in[700], ref[720];
            snprintf(in, sizeof in, "%s/tests/fixtures/decode/%s", VOX_SOURCE_DIR, names[k]);
            snprintf(ref, sizeof ref, "%s.ref16.f32", in);
            size_t rb = 0;
            float *r = slurp(ref, &rb);
            float *y = NULL;
            size_t ny = 0;
            vox_decode_info info;
            vox_error err = {0};
            int rc = vox_decode_file(in, &k16, &y, &ny, &info, &err);
            size_t nr = rb / sizeof(float);
            double mx = 0;
            for (size_t i = 0; rc == 0 && r && i < ny && i < nr; i++) {
                double dd = fabs((double)y[i] - r[i]);
                if (dd > mx) mx = dd;
            }
            printf("  %-11s %5d Hz %dch %-8s vs mistral-common (soxr HQ): %zu samples (ref %zu), "
                   "max |diff| %.3g\n",
                   names[k], info.src_rate, info.src_channels, info.resampler, ny, nr, mx);
            VOX_CHECK(&ts, rc == 0 && r && ny == nr && mx <= 1e-5,
                      "%s vs mistral-common: rc %d (%s), n %zu vs %zu, max diff %g", names[k], rc,
                      err.msg, ny, nr, mx);
            free(r);
            free(y);
        }
    }

    /* ---- variants made by independent tools ---- */
    int bad = 0;
    bad |= sh("ffmpeg -y -i ref.wav -c:a flac x.flac");
    bad |= sh("ffmpeg -y -i ref.wav -c:a libmp3lame -b:a 64k x.mp3");
    bad |= sh("ffmpeg -y -i ref.wav -c:a libopus -b:a 48k x.opus");
    bad |= sh("ffmpeg -y -i ref.wav -c:a libvorbis -q:a 5 x.ogg");
    bad |= sh("ffmpeg -y -i ref.wav -c:a aac -b:a 96k x.m4a");
    bad |= sh("sox -D ref.wav -r 8000 x8k.wav && sox -D x8k.wav -r 16000 x8k_sox16.wav");
    bad |= sh(
        "sox -D ref.wav -r 48000 -c 2 x48st.wav && sox -D x48st.wav -r 16000 -c 1 x48_sox16.wav");
    bad |= sh("sox -D -M ref.wav ref.wav ref.wav ref.wav ref.wav ref.wav -r 44100 x6ch.wav");
    bad |= sh("ffmpeg -y -i x8k.wav -c:a libmp3lame -b:a 32k x8k.mp3");
    bad |= sh("ffmpeg -y -i x6ch.wav -c:a flac x6ch.flac");
    bad |=
        sh("sox -D ref.wav -n trim 0 0 ; sox -D -n -r 16000 -c 1 -b 16 zero.wav trim 0 0 || true");
    bad |= sh("sox -D -n -r 16000 -c 1 -b 16 sil.wav trim 0 1 && sox -D -M ref.wav sil.wav "
              "-c 2 lr.wav trim 0 %zus",
              g_nref);
    bad |= sh("ffmpeg -y -f lavfi -i testsrc=size=64x48:rate=5 -i ref.wav -shortest -map 0:v "
              "-map 1:a -c:v libvpx -deadline realtime -b:v 50k -c:a libopus -b:a 48k x.webm");
    bad |= sh("ffmpeg -y -f lavfi -i testsrc=size=64x48:rate=5 -i ref.wav -shortest -map 0:v "
              "-map 1:a -c:v mpeg4 -c:a aac -b:a 96k xv.mp4");
    bad |= sh("ffmpeg -y -f lavfi -i testsrc=size=64x48:rate=5 -t 1 -c:v mpeg4 videoonly.mp4");
    VOX_CHECK(&ts, bad == 0, "making test files failed");

    /* lossless, same rate: bit-identical to our WAV reader */
    {
        const char *exact[] = {"ref.wav", "x.flac"};
        for (int k = 0; k < 2; k++) {
            float *y = NULL;
            size_t ny = 0;
            vox_error err = {0};
            vox_decode_info info;
            int rc = vox_decode_file(tmp(exact[k]), &k16, &y, &ny, &info, &err);
            int same = rc == 0 && ny == g_nref && memcmp(y, g_ref, ny * sizeof *y) == 0;
            printf("  %-14s %-10s -> %zu samples, bit-identical to vox_wav_read: %s\n", exact[k],
                   info.codec, ny, same ? "yes" : "no");
            VOX_CHECK(&ts, same, "%s: not bit-identical (%s)", exact[k], err.msg);
            free(y);
        }
    }
    /* stereo L = speech, R = silence: equal-weight average = speech / 2, exactly */
    {
        float *y = NULL;
        size_t ny = 0;
        vox_error err = {0};
        int rc = vox_decode_file(tmp("lr.wav"), &k16, &y, &ny, NULL, &err);
        size_t bad_i = 0;
        int ok = rc == 0 && ny == g_nref;
        for (size_t i = 0; ok && i < ny; i++)
            if (y[i] != g_ref[i] * 0.5f) ok = 0, bad_i = i;
        printf("  lr.wav (L speech, R silence) -> (L+R)/2 exactly: %s\n", ok ? "yes" : "no");
        VOX_CHECK(&ts, ok, "lr.wav: not (L+R)/2 (rc %d n %zu, first bad %zu) %s", rc, ny, bad_i,
                  err.msg);
        free(y);
    }
    /* resampling: vs the reference and vs sox's own resampler */
    check_variant(&ts, "x48st.wav", NULL, 0, 1, 40.0, 0.9999, 0);
    check_variant(&ts, "x6ch.flac", NULL, 0, 1, 40.0, 0.9999, 0);
    {
        float *s8 = NULL, *s48 = NULL;
        size_t n8 = 0, n48 = 0;
        if (read_ref("x8k_sox16.wav", &s8, &n8, 16000) == 0) {
            check_variant(&ts, "x8k.wav", s8, n8, 2, 35.0, 0.9998, 0);
            check_variant(&ts, "x8k.mp3", s8, n8, 1100, 15.0, 0.99, 2); /* no false warning */
            /* 8 kHz loses everything above 4 kHz: vs the full-band reference much lower */
            check_variant(&ts, "x8k.wav", NULL, 0, 2, 14.0, 0.98, 0);
        }
        if (read_ref("x48_sox16.wav", &s48, &n48, 16000) == 0)
            check_variant(&ts, "x48st.wav", s48, n48, 1, 35.0, 0.9998, 0);
        free(s8);
        free(s48);
    }
    /* lossy codecs: perceptual coders keep the sound, not the waveform (see docs) */
    check_variant(&ts, "x.mp3", NULL, 0, 1100, 15.0, 0.99, 2);
    check_variant(&ts, "x.opus", NULL, 0, 1100, 15.0, 0.99, 2);
    check_variant(&ts, "x.ogg", NULL, 0, 1100, 15.0, 0.99, 2);
    check_variant(&ts, "x.m4a", NULL, 0, 1100, 15.0, 0.99, 2);
    check_variant(&ts, "x.webm", NULL, 0, 1100, 15.0, 0.99, 2);
    check_variant(&ts, "xv.mp4", NULL, 0, 1100, 15.0, 0.99, 2);

    /* ---- memory, fd, pipe, raw, incremental ---- */
    {
        float *a = NULL, *b = NULL;
        size_t na = 0, nb = 0, len = 0;
        vox_error err = {0};
        vox_decode_file(tmp("x.mp3"), &k16, &a, &na, NULL, &err);
        void *img = slurp(tmp("x.mp3"), &len);
        int rc = img ? vox_decode_mem(img, len, "upload.mp3", &k16, &b, &nb, NULL, &err) : -1;
        VOX_CHECK(&ts, rc == 0 && na == nb && na > 0 && memcmp(a, b, na * sizeof *a) == 0,
                  "mem decode differs from file decode (%s)", err.msg);
        free(b);
        b = NULL;
        /* incremental in odd chunks == whole */
        vox_decoder *d = vox_decoder_open(tmp("x.mp3"), &k16, &err);
        VOX_CHECK(&ts, d != NULL, "open: %s", err.msg);
        float chunk[777];
        size_t tot = 0, got = 0;
        int same = 1;
        while (d && vox_decoder_read(d, chunk, 777, &got, &err) == 0 && got > 0) {
            if (tot + got > na || memcmp(chunk, a + tot, got * sizeof *a) != 0) same = 0;
            tot += got;
        }
        VOX_CHECK(&ts, same && tot == na, "incremental: %zu samples vs %zu, same %d", tot, na,
                  same);
        printf("  incremental (777-sample reads) == whole: %s; memory == file: %s\n",
               same && tot == na ? "yes" : "no", rc == 0 && na == nb ? "yes" : "no");
        vox_decoder_close(d);
        free(img);
        free(a);
    }
    {
        /* fd of a regular file, and a pipe (non-seekable) carrying a WAV: like `-` */
        float *y = NULL;
        size_t ny = 0;
        vox_error err = {0};
        int fd = open(tmp("ref.wav"), O_RDONLY);
        int rc = vox_decode_fd(fd, "fd", &k16, &y, &ny, NULL, &err);
        VOX_CHECK(&ts, rc == 0 && ny == g_nref && memcmp(y, g_ref, ny * 4) == 0, "fd: %s", err.msg);
        VOX_CHECK(&ts, fcntl(fd, F_GETFD) != -1, "fd was closed by the decoder");
        close(fd);
        free(y);
        char cmd[700];
        snprintf(cmd, sizeof cmd, "cat '%s'", tmp("x48st.wav"));
        FILE *p = popen(cmd, "r");
        y = NULL;
        rc = p ? vox_decode_fd(fileno(p), "-", &k16, &y, &ny, NULL, &err) : -1;
        if (p) pclose(p);
        cmp_t c = rc == 0 ? compare(g_ref, g_nref, y, ny, 0) : (cmp_t){0, 0, 0};
        printf("  pipe 48 kHz stereo WAV -> %zu samples, SNR %.2f dB\n", ny, c.snr_db);
        VOX_CHECK(&ts, rc == 0 && labs((long)ny - (long)g_nref) <= 1 && c.snr_db > 40, "pipe: %s",
                  err.msg);
        free(y);
        /* raw s16le at 16 kHz from a pipe: exactly the reference */
        sh("sox -D ref.wav -t raw -e signed -b 16 -L ref.raw && sox -D x8k.wav -t raw -e signed -b "
           "16 -L x8k.raw");
        snprintf(cmd, sizeof cmd, "cat '%s'", tmp("ref.raw"));
        p = popen(cmd, "r");
        vox_decode_opts raw = {16000, 16000, 1};
        y = NULL;
        rc = p ? vox_decode_fd(fileno(p), "-", &raw, &y, &ny, NULL, &err) : -1;
        if (p) pclose(p);
        VOX_CHECK(&ts, rc == 0 && ny == g_nref && memcmp(y, g_ref, ny * 4) == 0, "raw: %s (n %zu)",
                  err.msg, ny);
        free(y);
        /* raw 8 kHz == the 8 kHz WAV through the same resampler */
        float *w = NULL;
        size_t nw = 0;
        vox_decode_file(tmp("x8k.wav"), &k16, &w, &nw, NULL, &err);
        raw.raw_rate = 8000;
        y = NULL;
        rc = vox_decode_file(tmp("x8k.raw"), &raw, &y, &ny, NULL, &err);
        VOX_CHECK(&ts, rc == 0 && ny == nw && nw > 0 && memcmp(y, w, ny * 4) == 0, "raw 8k: %s",
                  err.msg);
        printf("  raw s16le pipe == reference: %s, raw 8 kHz == 8 kHz WAV: %s\n", "checked",
               rc == 0 && ny == nw ? "yes" : "no");
        free(y);
        free(w);
    }

    /* ---- errors and warnings ---- */
    expect_error(&ts, tmp("missing.wav"), "No such file");
    expect_error(&ts, g_dir, "is a directory");
    {
        FILE *f = fopen(tmp("text.wav"), "w");
        if (f) {
            for (int i = 0; i < 40; i++)
                fprintf(f, "this is a text file, line %d\n", i);
            fclose(f);
        }
        fclose(fopen(tmp("empty.mp3"), "w"));
    }
    expect_error(&ts, tmp("text.wav"), "not an audio file");
    expect_error(&ts, tmp("empty.mp3"), "not an audio file");
    expect_error(&ts, tmp("videoonly.mp4"), "no audio stream (mov,mp4");
    expect_error(&ts, tmp("zero.wav"), "contains no audio");
    {
        /* NaN in a float WAV (32-bit IEEE, 1 channel, 16 kHz) */
        uint8_t b[44 + 16] = {0};
        memcpy(b, "RIFF", 4);
        put32(b + 4, 36 + 16);
        memcpy(b + 8, "WAVEfmt ", 8);
        put32(b + 16, 16);
        b[20] = 3, b[22] = 1;
        put32(b + 24, 16000);
        put32(b + 28, 64000);
        b[32] = 4, b[34] = 32;
        memcpy(b + 36, "data", 4);
        put32(b + 40, 16);
        float v[4] = {0.1f, 0.2f, NAN, 0.3f};
        memcpy(b + 44, v, 16);
        FILE *f = fopen(tmp("nan.wav"), "wb");
        if (f) fwrite(b, 1, sizeof b, f), fclose(f);
        expect_error(&ts, tmp("nan.wav"), "input frame 2, channel 0 is NaN");
        v[2] = INFINITY;
        memcpy(b + 44, v, 16);
        float *y = NULL;
        size_t ny = 0;
        vox_error err = {0};
        int rc = vox_decode_mem(b, sizeof b, "upload.wav", &k16, &y, &ny, NULL, &err);
        VOX_CHECK(&ts,
                  rc != 0 && strstr(err.msg, "upload.wav: float sample at input frame 2, "
                                             "channel 0 is Inf"),
                  "Inf: '%s'", err.msg);
        printf("  %-22s -> %s\n", "upload.wav (memory)", err.msg);
    }
    /* truncated mp3: decode what is decodable, warn */
    {
        size_t len = 0;
        uint8_t *img = slurp(tmp("x.mp3"), &len);
        FILE *f = fopen(tmp("trunc.mp3"), "wb");
        if (f && img) fwrite(img, 1, len / 2 + 77, f);
        if (f) fclose(f);
        free(img);
        float *y = NULL;
        size_t ny = 0;
        vox_decode_info info;
        vox_error err = {0};
        int rc = vox_decode_file(tmp("trunc.mp3"), &k16, &y, &ny, &info, &err);
        printf("  trunc.mp3 -> rc %d, %zu samples (%.0f%% of full), warning: %s\n", rc, ny,
               100.0 * ny / g_nref, info.warning);
        VOX_CHECK(&ts, rc == 0 && ny > g_nref * 4 / 10 && ny < g_nref * 6 / 10,
                  "trunc.mp3: rc %d n %zu (%s)", rc, ny, err.msg);
        VOX_CHECK(&ts,
                  info.truncated && strstr(info.warning, "trunc.mp3") &&
                      strstr(info.warning, "truncated"),
                  "trunc.mp3: no truncation warning ('%s')", info.warning);
        free(y);
        /* truncated WAV (data chunk declares more than present): every complete frame */
        img = slurp(tmp("ref.wav"), &len);
        f = fopen(tmp("trunc.wav"), "wb");
        if (f && img) fwrite(img, 1, len - 8000, f);
        if (f) fclose(f);
        free(img);
        y = NULL;
        rc = vox_decode_file(tmp("trunc.wav"), &k16, &y, &ny, &info, &err);
        printf("  trunc.wav -> rc %d, %zu samples, declared %.3f s, warning: %s\n", rc, ny,
               info.declared_seconds, info.warning);
        VOX_CHECK(&ts, rc == 0 && ny == g_nref - 4000 && memcmp(y, g_ref, ny * 4) == 0,
                  "trunc.wav: rc %d n %zu", rc, ny);
        /* libav's wav demuxer clamps the data size to the file and states no duration, so
         * this truncation is NOT detected (documented; vox_wav_read reports it as an error). */
        VOX_CHECK(&ts, !info.truncated, "trunc.wav: warning '%s'", info.warning);
        free(y);
    }

    /* ---- vox_audio_write: our writer, checked by ffprobe (independent) and read back ---- */
    {
        const char *outs[] = {"w.wav", "w.flac", "w.ogg", "w.opus", "w.mp3"};
        /* lossless: exact (the reference is 16-bit already); lossy: as the ffmpeg encodes */
        const double min_snr[] = {999, 999, 15.0, 15.0, 15.0};
        for (int k = 0; k < 5; k++) {
            vox_error err = {0};
            int rc = vox_audio_write(tmp(outs[k]), g_ref, g_nref, 16000, 0, &err);
            VOX_CHECK(&ts, rc == 0, "write %s: %s", outs[k], err.msg);
            if (rc) continue;
            char cmd[800];
            snprintf(cmd, sizeof cmd,
                     "ffprobe -v error -show_entries stream=sample_rate,channels -of csv=p=0 "
                     "'%s' | grep -qx '%s,1'",
                     tmp(outs[k]), k == 3 ? "48000" : "16000"); /* Opus always decodes at 48k */
            VOX_CHECK(&ts, system(cmd) == 0, "%s: ffprobe does not see 16 kHz mono", outs[k]);
            float *y = NULL;
            size_t ny = 0;
            vox_decode_info info;
            rc = vox_decode_file(tmp(outs[k]), &k16, &y, &ny, &info, &err);
            VOX_CHECK(&ts, rc == 0, "read back %s: %s", outs[k], err.msg);
            if (rc) continue;
            if (min_snr[k] > 900) {
                int same = ny == g_nref && memcmp(y, g_ref, ny * sizeof *y) == 0;
                printf("  vox_audio_write %-7s -> %s, read back bit-identical: %s\n", outs[k],
                       info.codec, same ? "yes" : "no");
                VOX_CHECK(&ts, same, "%s: not bit-identical (n %zu)", outs[k], ny);
            } else {
                cmp_t c = compare(g_ref, g_nref, y, ny, 200);
                printf("  vox_audio_write %-7s -> %s %d Hz, %zu samples (ref %+ld), lag %+d, SNR "
                       "%.2f dB, corr %.5f\n",
                       outs[k], info.codec, info.src_rate, ny, (long)ny - (long)g_nref, c.lag,
                       c.snr_db, c.corr);
                VOX_CHECK(&ts,
                          c.snr_db >= min_snr[k] && c.corr >= 0.99 && abs(c.lag) <= 2 &&
                              labs((long)ny - (long)g_nref) <= 1100,
                          "%s: SNR %.2f corr %.4f lag %d n %zu", outs[k], c.snr_db, c.corr, c.lag,
                          ny);
            }
            free(y);
        }
        /* float WAV keeps values beyond 16 bits; clamping to [-1, 1]; errors */
        float v[5] = {0.123456789f, -2.0f, 2.0f, 1e-6f, -0.5f};
        vox_error err = {0};
        int rc = vox_audio_write(tmp("f.wav"), v, 5, 24000, VOX_AUDIO_WRITE_FLOAT, &err);
        float *y = NULL;
        size_t ny = 0;
        vox_wav_info wi;
        if (rc == 0) rc = vox_wav_read(tmp("f.wav"), &y, &wi, &err);
        VOX_CHECK(&ts,
                  rc == 0 && wi.format == VOX_WAV_FLOAT && wi.sample_rate == 24000 &&
                      wi.n_frames == 5 && y[0] == v[0] && y[1] == -1.0f && y[2] == 1.0f &&
                      y[3] == v[3] && y[4] == v[4],
                  "float wav round trip (%s)", err.msg);
        free(y);
        (void)ny;
        v[3] = NAN;
        rc = vox_audio_write(tmp("nan_out.wav"), v, 5, 24000, 0, &err);
        VOX_CHECK(&ts,
                  rc != 0 && strstr(err.msg, "sample 3 is NaN") &&
                      access(tmp("nan_out.wav"), F_OK) != 0,
                  "NaN write: '%s'", err.msg);
        printf("  write NaN -> %s\n", err.msg);
        rc = vox_audio_write(tmp("out.xyz"), v, 3, 24000, 0, &err);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG && strstr(err.msg, "out.xyz: unknown output format"),
                  "bad extension: '%s'", err.msg);
        printf("  write out.xyz -> %s\n", err.msg);
        rc = vox_audio_write(tmp("r.opus"), g_ref, 100, 22050, 0, &err);
        VOX_CHECK(&ts, rc != 0 && strstr(err.msg, "r.opus"), "opus at 22050 accepted");
        printf("  write opus at 22050 Hz -> %s\n", err.msg);
        rc = vox_audio_write(tmp("nodir/x.wav"), g_ref, 100, 16000, 0, &err);
        VOX_CHECK(&ts, rc == VOX_ERR_IO && strstr(err.msg, "nodir/x.wav: cannot write"),
                  "bad dir: '%s'", err.msg);
        VOX_CHECK(&ts,
                  vox_audio_write_supported("a.MP3") && !vox_audio_write_supported("a.txt") &&
                      !vox_audio_write_supported("dir.wav/a"),
                  "vox_audio_write_supported");
    }

    if (ts.failed == 0) sh("rm -rf '%s'", g_dir);
    free(g_ref);
    return vox_test_done(&ts, "test_decode");
}
