/* test_wav.c - WAV reader/writer: formats written by sox at test time (the independent
 * writer) and by our writer, channel averaging, headers, and every error path. Expected sample
 * values are exact: every variant is a lossless re-encoding of one 16-bit file, so each read
 * must equal int16 / 32768 bit for bit. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int sh(const char *cmd) {
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* Expect an error whose message names `path` and contains `what`. */
static void expect_error(vox_test_state *ts, const char *path, const char *what) {
    float *x = (float *)1;
    vox_error err = {0};
    int rc = vox_wav_read(path, &x, NULL, &err);
    VOX_CHECK(ts, rc != VOX_OK && x == NULL, "%s: expected an error (%s), got rc %d", path, what,
              rc);
    VOX_CHECK(ts, strstr(err.msg, path) != NULL, "error does not name the file: '%s'", err.msg);
    VOX_CHECK(ts, strstr(err.msg, what) != NULL, "error '%s' lacks '%s'", err.msg, what);
    printf("  %-22s -> %s\n", strrchr(path, '/') + 1, err.msg);
    free(x == (float *)1 ? NULL : x);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

static void put16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

/* A minimal WAV image: RIFF, fmt (16 bytes), optional odd-sized LIST chunk, data. */
static size_t make_wav(uint8_t *b, int tag, int ch, int rate, int bits, const void *data,
                       uint32_t nbytes, int with_list) {
    size_t o = 0;
    memcpy(b, "RIFF", 4);
    memcpy(b + 8, "WAVEfmt ", 8);
    put32(b + 16, 16);
    put16(b + 20, (unsigned)tag);
    put16(b + 22, (unsigned)ch);
    put32(b + 24, (uint32_t)rate);
    put32(b + 28, (uint32_t)(rate * ch * bits / 8));
    put16(b + 32, (unsigned)(ch * bits / 8));
    put16(b + 34, (unsigned)bits);
    o = 36;
    if (with_list) {
        memcpy(b + o, "LIST", 4);
        put32(b + o + 4, 3);
        memcpy(b + o + 8, "abc\0", 4); /* 3 bytes + pad byte */
        o += 12;
    }
    memcpy(b + o, "data", 4);
    put32(b + o + 4, nbytes);
    memcpy(b + o + 8, data, nbytes);
    o += 8 + nbytes;
    put32(b + 4, (uint32_t)(o - 8));
    return o;
}

int main(void) {
    vox_test_state ts = {0};
    vox_error err = {0};
    snprintf(g_dir, sizeof g_dir, "%s/test_wav_tmp", VOX_BINARY_DIR);
    mkdir(g_dir, 0755);

    /* ---- our writer -> our reader: exact int16 / 32768 */
    enum { N = 1601 };
    float src[N];
    for (int i = 0; i < N; i++)
        src[i] = 0.8f * sinf(0.05f * (float)i) + (i == 7 ? 2.0f : 0.0f);
    char ref[600];
    snprintf(ref, sizeof ref, "%s", tmp("ref.wav"));
    VOX_CHECK(&ts, vox_wav_write_pcm16(ref, src, N, 16000, &err) == VOX_OK, "write: %s", err.msg);
    float *a = NULL;
    vox_wav_info ia = {0};
    VOX_CHECK(&ts, vox_wav_read(ref, &a, &ia, &err) == VOX_OK, "read ref: %s", err.msg);
    if (!a) return vox_test_done(&ts, "test_wav");
    VOX_CHECK(&ts,
              ia.n_frames == N && ia.sample_rate == 16000 && ia.channels == 1 && ia.bits == 16 &&
                  ia.format == VOX_WAV_PCM,
              "ref info: %zu frames %d Hz %d ch %d bits", ia.n_frames, ia.sample_rate, ia.channels,
              ia.bits);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        double q = (double)src[i] * 32768.0;
        q = q >= 32767.0 ? 32767.0 : q <= -32768.0 ? -32768.0 : (double)lround(q);
        if (a[i] != (float)(q / 32768.0)) bad++;
    }
    VOX_CHECK(&ts, bad == 0,
              "writer/reader round trip: %d samples differ from round(x*32768)/32768", bad);
    VOX_CHECK(&ts, a[7] == 32767.0f / 32768.0f, "clipping: sample 7 = %.9g", a[7]);

    /* ---- lossless re-encodings by sox (24-bit is WAVE_FORMAT_EXTENSIBLE, float has 'fact') */
    static const struct {
        const char *name, *args;
        int bits, format;
    } var[] = {
        {"f32.wav", "-e floating-point -b 32", 32, VOX_WAV_FLOAT},
        {"f64.wav", "-e floating-point -b 64", 64, VOX_WAV_FLOAT},
        {"s24.wav", "-e signed-integer -b 24", 24, VOX_WAV_PCM},
        {"s32.wav", "-e signed-integer -b 32", 32, VOX_WAV_PCM},
        {"s16x.wav", "-e signed-integer -b 16 -c 3", 16, VOX_WAV_PCM}, /* 3 ch: EXTENSIBLE */
    };
    for (size_t v = 0; v < sizeof var / sizeof var[0]; v++) {
        char cmd[1600];
        snprintf(cmd, sizeof cmd, "sox -D '%s' %s '%s'", ref, var[v].args, tmp(var[v].name));
        if (sh(cmd) != 0) {
            VOX_CHECK(&ts, 0, "sox failed for %s", var[v].name);
            continue;
        }
        if (strstr(var[v].name, "s24") || strstr(var[v].name, "s16x")) {
            /* sox writes these as WAVE_FORMAT_EXTENSIBLE: make sure the path is exercised */
            uint8_t h[22] = {0};
            FILE *f = fopen(tmp(var[v].name), "rb");
            size_t got = f ? fread(h, 1, 22, f) : 0;
            if (f) fclose(f);
            VOX_CHECK(&ts, got == 22 && h[20] == 0xFE && h[21] == 0xFF,
                      "%s: expected a WAVE_FORMAT_EXTENSIBLE header from sox", var[v].name);
        }
        float *b = NULL;
        vox_wav_info ib = {0};
        int rc = vox_wav_read(tmp(var[v].name), &b, &ib, &err);
        VOX_CHECK(&ts, rc == VOX_OK, "%s: %s", var[v].name, err.msg);
        if (rc != VOX_OK) continue;
        VOX_CHECK(&ts,
                  ib.n_frames == N && ib.bits == var[v].bits && ib.format == var[v].format &&
                      ib.sample_rate == 16000,
                  "%s info: %zu frames, %d bits, format %d", var[v].name, ib.n_frames, ib.bits,
                  ib.format);
        int d = 0;
        for (int i = 0; i < N && ib.n_frames == N; i++)
            d += b[i] != a[i];
        VOX_CHECK(&ts, d == 0, "%s: %d samples differ from the 16-bit original (exact expected)",
                  var[v].name, d);
        free(b);
    }

    /* ---- 8-bit unsigned: exact for values that are multiples of 1/128 */
    {
        float s8[64];
        for (int i = 0; i < 64; i++)
            s8[i] = (float)((i % 17) - 8) / 128.0f;
        const char *p16 = tmp("for8.wav"), *p8 = tmp("u8.wav");
        vox_wav_write_pcm16(p16, s8, 64, 16000, &err);
        char cmd[1300];
        snprintf(cmd, sizeof cmd, "sox -D '%s' -e unsigned-integer -b 8 '%s'", p16, p8);
        float *b = NULL;
        vox_wav_info ib = {0};
        int rc = sh(cmd) == 0 ? vox_wav_read(p8, &b, &ib, &err) : -1;
        VOX_CHECK(&ts, rc == VOX_OK && ib.bits == 8 && ib.n_frames == 64, "u8: rc %d %s", rc,
                  err.msg);
        int d = 0;
        for (int i = 0; rc == VOX_OK && i < 64; i++)
            d += b[i] != s8[i];
        VOX_CHECK(&ts, d == 0, "u8: %d samples differ", d);
        free(b);
    }

    /* ---- stereo: channel average (sox -M merges two mono files into L/R) */
    {
        float s2[N];
        for (int i = 0; i < N; i++)
            s2[i] = 0.3f * cosf(0.011f * (float)i);
        const char *p2 = tmp("other.wav"), *ps = tmp("stereo.wav");
        vox_wav_write_pcm16(p2, s2, N, 16000, &err);
        float *r2 = NULL;
        vox_wav_read(p2, &r2, NULL, &err);
        char cmd[1900];
        snprintf(cmd, sizeof cmd, "sox -D -M '%s' '%s' '%s'", ref, p2, ps);
        float *b = NULL;
        vox_wav_info ib = {0};
        int rc = sh(cmd) == 0 ? vox_wav_read(ps, &b, &ib, &err) : -1;
        VOX_CHECK(&ts, rc == VOX_OK && ib.channels == 2 && ib.n_frames == N,
                  "stereo: rc %d ch %d %s", rc, ib.channels, err.msg);
        int d = 0;
        for (int i = 0; rc == VOX_OK && r2 && i < N; i++)
            d += b[i] != (float)(((double)a[i] + (double)r2[i]) / 2.0);
        VOX_CHECK(&ts, d == 0, "stereo: %d frames differ from (L + R) / 2", d);
        free(b);
        free(r2);
    }

    /* ---- 8 kHz: the rate is reported, samples not resampled */
    {
        const char *p = tmp("r8k.wav");
        VOX_CHECK(&ts, vox_wav_write_pcm16(p, src, 800, 8000, &err) == VOX_OK, "%s", err.msg);
        float *b = NULL;
        vox_wav_info ib = {0};
        VOX_CHECK(&ts,
                  vox_wav_read(p, &b, &ib, &err) == VOX_OK && ib.sample_rate == 8000 &&
                      ib.n_frames == 800,
                  "8 kHz: rate %d frames %zu", ib.sample_rate, ib.n_frames);
        free(b);
        char cmd[1300];
        snprintf(cmd, sizeof cmd, "sox -D '%s' -r 8000 '%s'", ref, tmp("sox8k.wav"));
        b = NULL;
        int rc = sh(cmd) == 0 ? vox_wav_read(tmp("sox8k.wav"), &b, &ib, &err) : -1;
        VOX_CHECK(&ts,
                  rc == VOX_OK && ib.sample_rate == 8000 &&
                      (ib.n_frames == 800 || ib.n_frames == 801),
                  "sox 8 kHz: rc %d rate %d frames %zu", rc, ib.sample_rate, ib.n_frames);
        free(b);
    }

    /* ---- in-memory images: odd-sized chunk skipping, unsupported tag, NaN/Inf */
    {
        uint8_t img[512];
        int16_t pcm[5] = {0, 16384, -16384, 32767, -32768};
        size_t len = make_wav(img, 1, 1, 22050, 16, pcm, sizeof pcm, 1);
        float *b = NULL;
        vox_wav_info ib = {0};
        int rc = vox_wav_read_mem(img, len, "mem.wav", &b, &ib, &err);
        VOX_CHECK(&ts, rc == VOX_OK && ib.n_frames == 5 && ib.sample_rate == 22050, "mem: %s",
                  err.msg);
        VOX_CHECK(&ts, rc == VOX_OK && b[1] == 0.5f && b[2] == -0.5f && b[4] == -1.0f,
                  "mem samples after an odd LIST chunk");
        free(b);

        len = make_wav(img, 2, 1, 16000, 16, pcm, sizeof pcm, 0);
        write_bytes(tmp("adpcm.wav"), img, len);
        expect_error(&ts, tmp("adpcm.wav"), "unsupported WAV format tag 0x0002");

        float fl[6] = {0.1f, -0.2f, 0.3f, 0.0f, 0.5f, 0.25f};
        fl[4] = NAN;
        len = make_wav(img, 3, 1, 16000, 32, fl, sizeof fl, 0);
        write_bytes(tmp("nan.wav"), img, len);
        expect_error(&ts, tmp("nan.wav"), "float sample 4 is NaN");
        fl[4] = 0.5f;
        fl[2] = -INFINITY;
        len = make_wav(img, 3, 1, 16000, 32, fl, sizeof fl, 0);
        write_bytes(tmp("inf.wav"), img, len);
        expect_error(&ts, tmp("inf.wav"), "float sample 2 is Inf");
        /* stereo float: the index is the frame index */
        fl[2] = 0.0f;
        fl[5] = NAN;
        len = make_wav(img, 3, 2, 16000, 32, fl, sizeof fl, 0);
        write_bytes(tmp("nan2.wav"), img, len);
        expect_error(&ts, tmp("nan2.wav"), "float sample 2 is NaN");

        len = make_wav(img, 1, 1, 16000, 12, pcm, 6, 0);
        write_bytes(tmp("b12.wav"), img, len);
        expect_error(&ts, tmp("b12.wav"), "unsupported PCM bit depth 12");

        len = make_wav(img, 1, 2, 16000, 16, pcm, 6, 0); /* 6 bytes, 4-byte frames */
        write_bytes(tmp("partial.wav"), img, len);
        expect_error(&ts, tmp("partial.wav"), "not a whole number");
    }

    /* ---- sox a-law: a real unsupported format */
    {
        char cmd[1300];
        snprintf(cmd, sizeof cmd, "sox -D '%s' -e a-law '%s'", ref, tmp("alaw.wav"));
        if (sh(cmd) == 0) expect_error(&ts, tmp("alaw.wav"), "unsupported WAV format tag 0x0006");
    }

    /* ---- error paths on files */
    {
        const char *p0 = tmp("empty.wav");
        VOX_CHECK(&ts, vox_wav_write_pcm16(p0, NULL, 0, 16000, &err) == VOX_OK, "write 0: %s",
                  err.msg);
        expect_error(&ts, p0, "contains no audio");

        const char *pt = tmp("trunc.wav");
        vox_wav_write_pcm16(pt, src, N, 16000, &err);
        VOX_CHECK(&ts, truncate(pt, 44 + 2 * N - 100) == 0, "truncate()");
        expect_error(&ts, pt, "truncated");

        const char *ptxt = tmp("text.wav");
        const char *txt = "this is not audio, just a text file with a .wav name\n";
        write_bytes(ptxt, txt, strlen(txt));
        expect_error(&ts, ptxt, "not a RIFF/WAVE file");

        const char *pz = tmp("zero_bytes.wav");
        write_bytes(pz, "", 0);
        expect_error(&ts, pz, "not a RIFF/WAVE file");

        expect_error(&ts, tmp("does_not_exist.wav"), "cannot open");

        /* header only, no data chunk */
        uint8_t img[64];
        int16_t one = 1;
        size_t len = make_wav(img, 1, 1, 16000, 16, &one, 2, 0);
        write_bytes(tmp("nodata.wav"), img, 36);
        (void)len;
        expect_error(&ts, tmp("nodata.wav"), "no 'data' chunk");
    }

    free(a);
    return vox_test_done(&ts, "test_wav");
}
