/* test_audio_stream.c - vox_audio_stream: every format, streamed (no patch callback) and
 * seekable (patch), decoded back with vox_decode_mem (libav, independent of libsndfile's
 * encoders) to the right rate and length, with the right content; error paths. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sndfile.h>

#include "vox_audio_stream.h"
#include "vox_audio_write.h"
#include "vox_decode.h"
#include "vox_test.h"

static vox_test_state T;

typedef struct {
    unsigned char *p;
    size_t len, cap;
    int fail_after; /* > 0: the write callback fails once len would exceed it */
    int n_patches;
} membuf;

static int mb_write(void *ud, const void *p, size_t n) {
    membuf *m = ud;
    if (m->fail_after > 0 && m->len + n > (size_t)m->fail_after) return 1;
    if (m->len + n > m->cap) {
        size_t c = m->cap ? m->cap * 2 : 4096;
        while (c < m->len + n)
            c *= 2;
        unsigned char *q = realloc(m->p, c);
        if (!q) return 1;
        m->p = q;
        m->cap = c;
    }
    memcpy(m->p + m->len, p, n);
    m->len += n;
    return 0;
}

static int mb_patch(void *ud, uint64_t off, const void *p, size_t n) {
    membuf *m = ud;
    if (off + n > m->len) return 1;
    memcpy(m->p + off, p, n);
    m->n_patches++;
    return 0;
}

#define RATE 24000

/* a voiced-speech-like test signal: harmonics of 180 Hz under a slow envelope */
static float *make_signal(size_t n) {
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; x && i < n; i++) {
        double t = (double)i / RATE, env = 0.5 + 0.4 * sin(2 * M_PI * 1.5 * t);
        double v = 0;
        for (int h = 1; h <= 6; h++)
            v += sin(2 * M_PI * 180.0 * h * t + h) / h;
        x[i] = (float)(0.35 * env * v);
    }
    return x;
}

static double s16(float x) {
    double v = round((double)x * 32768.0);
    return (v > 32767 ? 32767 : v < -32768 ? -32768 : v) / 32768.0;
}

/* best normalized cross-correlation of y against x over lags 0..max_lag (y delayed) */
static double best_corr(const float *x, size_t nx, const float *y, size_t ny, size_t max_lag,
                        size_t *lag_out) {
    double best = -2;
    for (size_t lag = 0; lag <= max_lag; lag++) {
        double sxy = 0, sxx = 0, syy = 0;
        for (size_t i = 0; i < nx && i + lag < ny; i++) {
            sxy += (double)x[i] * y[i + lag];
            sxx += (double)x[i] * x[i];
            syy += (double)y[i + lag] * y[i + lag];
        }
        double c = sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
        if (c > best) best = c, *lag_out = lag;
    }
    return best;
}

/* frames libsndfile reads from the encoded bytes (virtual I/O over the membuf) */
typedef struct {
    const membuf *m;
    sf_count_t pos;
} rd_state;
static sf_count_t r_len(void *u) {
    return (sf_count_t)((rd_state *)u)->m->len;
}
static sf_count_t r_seek(sf_count_t off, int whence, void *u) {
    rd_state *r = u;
    sf_count_t np = whence == SEEK_SET ? off : whence == SEEK_CUR ? r->pos + off : r_len(u) + off;
    if (np < 0 || np > r_len(u)) return -1;
    return r->pos = np;
}
static sf_count_t r_read(void *p, sf_count_t n, void *u) {
    rd_state *r = u;
    sf_count_t k = r_len(u) - r->pos < n ? r_len(u) - r->pos : n;
    memcpy(p, r->m->p + r->pos, (size_t)k);
    r->pos += k;
    return k;
}
static sf_count_t r_write(const void *p, sf_count_t n, void *u) {
    (void)p, (void)n, (void)u;
    return 0;
}
static sf_count_t r_tell(void *u) {
    return ((rd_state *)u)->pos;
}
static long long sndfile_frames(const membuf *m) {
    rd_state r = {m, 0};
    SF_VIRTUAL_IO v = {r_len, r_seek, r_read, r_write, r_tell};
    SF_INFO si = {0};
    SNDFILE *f = sf_open_virtual(&v, SFM_READ, &si, &r);
    if (!f) return -1;
    float buf[4096];
    long long total = 0;
    sf_count_t k;
    while ((k = sf_readf_float(f, buf, 4096)) > 0)
        total += k;
    sf_close(f);
    return total;
}

/* Encode x[n] in uneven pushes (incl. empty ones); returns bytes emitted before finish. */
static int encode(const char *fmt, const float *x, size_t n, int with_patch, membuf *m,
                  size_t *before_finish, vox_error *e) {
    memset(m, 0, sizeof *m);
    vox_audio_stream *s =
        vox_audio_stream_open(fmt, RATE, mb_write, with_patch ? mb_patch : NULL, m, e);
    if (!s) return 1;
    static const size_t pushes[] = {1, 0, 1919, 1920, 7, 4096, 5000, 333};
    size_t done = 0;
    int rc = 0;
    for (size_t k = 0; done < n && !rc; k++) {
        size_t c = pushes[k % 8];
        if (c > n - done) c = n - done;
        rc = vox_audio_stream_write(s, x + done, c, e);
        done += c;
    }
    *before_finish = (size_t)vox_audio_stream_bytes(s);
    if (!rc) rc = vox_audio_stream_finish(s, e);
    if (!rc && vox_audio_stream_samples(s) != n) rc = vox_set_error(e, 1, "sample count");
    vox_audio_stream_free(s);
    return rc;
}

static void check_format(const char *fmt, int with_patch, const float *x, size_t n) {
    membuf m;
    size_t early = 0;
    vox_error e = {0};
    const char *mode = with_patch ? "patched" : "streamed";
    int rc = encode(fmt, x, n, with_patch, &m, &early, &e);
    VOX_CHECK(&T, rc == 0, "%s %s: encode: %s", fmt, mode, e.msg);
    if (rc) {
        free(m.p);
        return;
    }
    /* incremental: bytes left before finish (the encoders buffer at most ~1 s) */
    VOX_CHECK(&T, early > 0, "%s %s: no bytes before finish", fmt, mode);
    int lossless = !strcmp(fmt, "wav") || !strcmp(fmt, "flac") || !strcmp(fmt, "pcm");
    vox_decode_opts o = {RATE, 0, 0};
    if (!strcmp(fmt, "pcm")) o.raw_rate = RATE, o.raw_channels = 1;
    float *y = NULL;
    size_t ny = 0;
    vox_decode_info info;
    rc = vox_decode_mem(m.p, m.len, fmt, &o, &y, &ny, &info, &e);
    VOX_CHECK(&T, rc == 0, "%s %s: decode: %s", fmt, mode, e.msg);
    if (!rc) {
        /* libopus always decodes at 48 kHz; the encoder's rate is OpusHead's input rate */
        int opus = !strcmp(fmt, "opus");
        VOX_CHECK(&T, info.src_rate == (opus ? 48000 : RATE), "%s %s: rate %d", fmt, mode,
                  info.src_rate);
        if (opus)
            VOX_CHECK(&T,
                      m.len > 44 && !memcmp(m.p + 28, "OpusHead", 8) &&
                          (m.p[40] | m.p[41] << 8 | m.p[42] << 16) == RATE,
                      "opus %s: OpusHead input rate", mode);
        VOX_CHECK(&T, info.src_channels == 1, "%s %s: channels %d", fmt, mode, info.src_channels);
        VOX_CHECK(&T, !info.truncated, "%s %s: decoder says truncated: %s", fmt, mode,
                  info.warning);
        /* length: exact except streamed mp3, which keeps LAME's delay+padding (no Xing/LAME
         * frame to trim them): more than n, by less than 2 frames of 1152 + 1 frame slack */
        int mp3s = !strcmp(fmt, "mp3") && !with_patch;
        if (!strcmp(fmt, "ogg")) {
            /* libav's Vorbis path ignores the last page's granule position (ends up to a
             * block off either way: seen -256 here, +379 on a plain sine), so the exact length
             * is checked with libvorbisfile (libsndfile) below and libav within 1 long block */
            VOX_CHECK(&T, ny + 1024 >= n && ny <= n + 1024, "ogg %s: %zu samples for %zu", mode, ny,
                      n);
            VOX_CHECK(&T, sndfile_frames(&m) == (long long)n, "ogg %s: libsndfile reads %lld", mode,
                      sndfile_frames(&m));
        } else if (mp3s)
            VOX_CHECK(&T, ny >= n && ny <= n + 3 * 1152, "%s %s: %zu samples for %zu", fmt, mode,
                      ny, n);
        else
            VOX_CHECK(&T, ny == n, "%s %s: %zu samples decoded for %zu", fmt, mode, ny, n);
        if (lossless) {
            size_t bad = 0;
            for (size_t i = 0; i < n && i < ny; i++)
                bad += y[i] != (float)s16(x[i]);
            VOX_CHECK(&T, bad == 0, "%s %s: %zu samples differ from round(x*32768)/32768", fmt,
                      mode, bad);
        } else {
            /* lossy: the waveform survives (normalized correlation >= 0.97 at the best lag,
             * lag 0 when the container trims the encoder delay) */
            size_t lag = 0;
            double c = best_corr(x, n, y, ny, mp3s ? 3000 : 0, &lag);
            VOX_CHECK(&T, c >= 0.97, "%s %s: correlation %.4f at lag %zu", fmt, mode, c, lag);
        }
        free(y);
    }
    if (!strcmp(fmt, "wav")) {
        uint32_t rs = (uint32_t)m.p[4] | (uint32_t)m.p[5] << 8 | (uint32_t)m.p[6] << 16 |
                      (uint32_t)m.p[7] << 24;
        uint32_t ds = (uint32_t)m.p[40] | (uint32_t)m.p[41] << 8 | (uint32_t)m.p[42] << 16 |
                      (uint32_t)m.p[43] << 24;
        if (with_patch)
            VOX_CHECK(&T, ds == n * 2 && rs == 36 + n * 2 && m.len == 44 + 2 * n,
                      "wav patched: sizes %u %u", rs, ds);
        else
            VOX_CHECK(&T, ds == UINT32_MAX && rs == UINT32_MAX, "wav streamed: sizes %u %u", rs,
                      ds);
        /* libsndfile reads the streamed header as "to the end of the file" */
        char path[] = "/tmp/vox_test_audio_stream_XXXXXX";
        int fd = mkstemp(path);
        FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
        if (f) {
            fwrite(m.p, 1, m.len, f);
            fclose(f);
            SF_INFO si = {0};
            SNDFILE *sf = sf_open(path, SFM_READ, &si);
            VOX_CHECK(&T, sf && si.frames == (sf_count_t)n && si.samplerate == RATE,
                      "wav %s: libsndfile reads %lld frames", mode,
                      sf ? (long long)si.frames : -1LL);
            if (sf) sf_close(sf);
            remove(path);
        }
    }
    /* with patches applied, flac and mp3 equal what vox_audio_write puts in a file */
    if (with_patch && (!strcmp(fmt, "flac") || !strcmp(fmt, "mp3"))) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/vox_test_audio_stream_%d.%s", (int)getpid(), fmt);
        rc = vox_audio_write(path, x, n, RATE, 0, &e);
        size_t fl = 0;
        char *fb = rc ? NULL : vox_read_file(path, &fl, &e);
        VOX_CHECK(&T, fb && fl == m.len && !memcmp(fb, m.p, fl),
                  "%s patched: %zu bytes vs vox_audio_write's %zu (%d patches)", fmt, m.len, fl,
                  m.n_patches);
        free(fb);
        remove(path);
    }
    free(m.p);
}

static void test_errors(const float *x) {
    vox_error e = {0};
    membuf m = {0};
    VOX_CHECK(&T,
              !vox_audio_stream_open("aac", RATE, mb_write, NULL, &m, &e) &&
                  strstr(e.msg, "unknown audio format 'aac'") && strstr(e.msg, "opus"),
              "unknown format: %s", e.msg);
    VOX_CHECK(
        &T, !vox_audio_stream_open("opus", 44100, mb_write, NULL, &m, &e) && strstr(e.msg, "44100"),
        "opus at 44.1 kHz: %s", e.msg);
    vox_audio_stream *s = vox_audio_stream_open("WAV", RATE, mb_write, NULL, &m, &e);
    VOX_CHECK(&T, s != NULL, "WAV (upper case): %s", e.msg);
    float bad[3] = {0.1f, NAN, 0.2f};
    VOX_CHECK(&T, s && vox_audio_stream_write(s, bad, 3, &e) && strstr(e.msg, "sample 1 is NaN"),
              "NaN: %s", e.msg);
    VOX_CHECK(&T, s && m.len == 44, "nothing of the NaN block written (%zu bytes)", m.len);
    VOX_CHECK(&T, s && !vox_audio_stream_finish(s, &e), "finish: %s", e.msg);
    VOX_CHECK(&T, s && vox_audio_stream_write(s, x, 10, &e) && strstr(e.msg, "finished"),
              "write after finish: %s", e.msg);
    vox_audio_stream_free(s);
    free(m.p);
    /* the sink fails part way: every format reports it (mp3 at the latest at finish) */
    const char *fmts[] = {"wav", "pcm", "flac", "mp3", "opus", "ogg"};
    for (int k = 0; k < 6; k++) {
        memset(&m, 0, sizeof m);
        m.fail_after = 300;
        s = vox_audio_stream_open(fmts[k], RATE, mb_write, NULL, &m, &e);
        int rc = s ? 0 : 1;
        for (int r = 0; r < 20 && !rc; r++)
            rc = vox_audio_stream_write(s, x, 4800, &e);
        if (!rc) rc = vox_audio_stream_finish(s, &e);
        VOX_CHECK(&T, rc && strstr(e.msg, "write failed"), "%s: failing sink: rc %d '%s'", fmts[k],
                  rc, e.msg);
        vox_audio_stream_free(s);
        free(m.p);
    }
    /* free without finish (a client that went away) leaks nothing (ASan) */
    memset(&m, 0, sizeof m);
    s = vox_audio_stream_open("flac", RATE, mb_write, NULL, &m, &e);
    if (s) vox_audio_stream_write(s, x, 1000, &e);
    vox_audio_stream_free(s);
    free(m.p);
    VOX_CHECK(&T,
              !strcmp(vox_audio_stream_format_for_path("a/b.OGA"), "ogg") &&
                  !vox_audio_stream_format_for_path("x.pcm") &&
                  !vox_audio_stream_format_for_path("dir.wav/x") &&
                  !strcmp(vox_audio_stream_mime("mp3"), "audio/mpeg"),
              "format names");
}

int main(void) {
    vox_decode_global_init(0);
    size_t n = RATE * 13 / 10 + 37; /* 1.3 s + a partial block */
    float *x = make_signal(n);
    if (!x) return 1;
    const char *fmts[] = {"wav", "pcm", "flac", "mp3", "opus", "ogg"};
    for (int k = 0; k < 6; k++)
        for (int p = 0; p < 2; p++)
            check_format(fmts[k], p, x, n);
    test_errors(x);
    free(x);
    return vox_test_done(&T, "test_audio_stream");
}
