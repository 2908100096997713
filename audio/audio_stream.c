/* audio_stream.c - incremental encoding to a byte sink (vox_audio_stream.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sndfile.h>

#include "vox_audio_stream.h"

typedef enum { K_WAV, K_PCM, K_SND } kind;

#define BLK 4096

struct vox_audio_stream {
    kind k;
    const char *fmt; /* canonical name */
    int rate;
    int sf_int; /* K_SND: 16-bit integer input (FLAC) rather than float */
    SNDFILE *sf;
    vox_audio_stream_write_fn write;
    vox_audio_stream_patch_fn patch;
    void *ud;
    /* virtual file seen by libsndfile: pos = its write position, emitted = bytes sent */
    uint64_t pos, emitted;
    int io_failed; /* a write/patch callback failed */
    int finished;
    size_t n;                 /* samples accepted */
    unsigned char b[2 * BLK]; /* s16le scratch (wav, pcm) */
    int itmp[BLK];            /* left-aligned ints for libsndfile */
    float ftmp[BLK];
};

static const struct {
    const char *name, *alias, *mime;
} FORMATS[] = {
    {"wav", "wave", "audio/wav"}, {"flac", NULL, "audio/flac"}, {"mp3", NULL, "audio/mpeg"},
    {"opus", NULL, "audio/ogg"},  {"ogg", "oga", "audio/ogg"},  {"pcm", NULL, "audio/pcm"},
};
#define N_FORMATS (sizeof FORMATS / sizeof FORMATS[0])

const char *vox_audio_stream_format(const char *name) {
    for (size_t i = 0; name && i < N_FORMATS; i++)
        if (!strcasecmp(name, FORMATS[i].name) ||
            (FORMATS[i].alias && !strcasecmp(name, FORMATS[i].alias)))
            return FORMATS[i].name;
    return NULL;
}

const char *vox_audio_stream_format_for_path(const char *path) {
    const char *dot = path ? strrchr(path, '.') : NULL;
    if (!dot || strchr(dot, '/')) return NULL;
    const char *f = vox_audio_stream_format(dot + 1);
    return f && strcmp(f, "pcm") ? f : NULL; /* .pcm is not a file type we name */
}

const char *vox_audio_stream_mime(const char *format) {
    const char *f = vox_audio_stream_format(format);
    for (size_t i = 0; f && i < N_FORMATS; i++)
        if (!strcmp(f, FORMATS[i].name)) return FORMATS[i].mime;
    return NULL;
}

/* ---- byte output ------------------------------------------------------------------------- */

static int emit(vox_audio_stream *s, const void *p, size_t n) {
    if (!n) return 0;
    if (s->write(s->ud, p, n)) {
        s->io_failed = 1;
        return 1;
    }
    s->emitted += n;
    s->pos = s->emitted;
    return 0;
}

/* libsndfile virtual I/O over the sink. Writes at the end are sent; writes into what was
 * already sent are header rewrites: applied with patch() when there is one, else dropped. */
static sf_count_t v_len(void *u) {
    const vox_audio_stream *s = u;
    return (sf_count_t)s->emitted;
}
static sf_count_t v_seek(sf_count_t off, int whence, void *u) {
    vox_audio_stream *s = u;
    int64_t base = whence == SEEK_SET   ? 0
                   : whence == SEEK_CUR ? (int64_t)s->pos
                                        : (int64_t)s->emitted;
    int64_t np = base + off;
    if (np < 0 || (uint64_t)np > s->emitted) return -1; /* no holes in a stream */
    s->pos = (uint64_t)np;
    return np;
}
static sf_count_t v_read(void *p, sf_count_t n, void *u) {
    (void)p, (void)n, (void)u;
    return 0; /* write-only: nothing to read back */
}
/* A failed sink is NOT reported to libsndfile: its error paths leak encoder state (libvorbis
 * blocks, seen under ASan), so the bytes are swallowed from then on and io_failed makes every
 * later call of ours fail instead. */
static sf_count_t v_write(const void *p, sf_count_t n, void *u) {
    vox_audio_stream *s = u;
    const unsigned char *b = p;
    uint64_t len = (uint64_t)n;
    if (s->io_failed) return n;
    if (s->pos < s->emitted) {
        uint64_t k = s->emitted - s->pos < len ? s->emitted - s->pos : len;
        if (s->patch && s->patch(s->ud, s->pos, b, (size_t)k)) {
            s->io_failed = 1;
            return n;
        }
        s->pos += k;
        b += k;
        len -= k;
    }
    if (len) emit(s, b, (size_t)len); /* sets io_failed on failure */
    return n;
}
static sf_count_t v_tell(void *u) {
    const vox_audio_stream *s = u;
    return (sf_count_t)s->pos;
}

static void put_le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

/* 44-byte RIFF/WAVE header, 16-bit PCM mono; data_bytes UINT32_MAX = unknown (streaming). */
static void wav_header(unsigned char h[44], int rate, uint32_t data_bytes) {
    memcpy(h, "RIFF", 4);
    put_le32(h + 4, data_bytes == UINT32_MAX ? UINT32_MAX : 36 + data_bytes);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le32(h + 16, 16);
    h[20] = 1, h[21] = 0; /* PCM */
    h[22] = 1, h[23] = 0; /* mono */
    put_le32(h + 24, (uint32_t)rate);
    put_le32(h + 28, (uint32_t)rate * 2); /* bytes per second */
    h[32] = 2, h[33] = 0;                 /* block align */
    h[34] = 16, h[35] = 0;                /* bits */
    memcpy(h + 36, "data", 4);
    put_le32(h + 40, data_bytes);
}

/* ---- API ------------------------------------------------------------------------------------ */

vox_audio_stream *vox_audio_stream_open(const char *format, int rate,
                                        vox_audio_stream_write_fn write,
                                        vox_audio_stream_patch_fn patch, void *ud, vox_error *err) {
    const char *f = vox_audio_stream_format(format);
    if (!f) {
        vox_set_error(err, VOX_ERR_ARG,
                      "unknown audio format '%.40s' (expected wav, flac, mp3, opus, ogg or pcm)",
                      format ? format : "(null)");
        return NULL;
    }
    if (!write || rate <= 0) {
        vox_set_error(err, VOX_ERR_ARG, "audio stream: no write callback or bad rate %d", rate);
        return NULL;
    }
    vox_audio_stream *s = vox_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->fmt = f;
    s->rate = rate;
    s->write = write;
    s->patch = patch;
    s->ud = ud;
    if (!strcmp(f, "pcm")) {
        s->k = K_PCM;
        return s;
    }
    if (!strcmp(f, "wav")) {
        s->k = K_WAV;
        unsigned char h[44];
        wav_header(h, rate, UINT32_MAX);
        if (emit(s, h, 44)) {
            vox_set_error(err, VOX_ERR_IO, "wav stream: output write failed");
            free(s);
            return NULL;
        }
        return s;
    }
    s->k = K_SND;
    SF_INFO si = {0};
    si.samplerate = rate;
    si.channels = 1;
    if (!strcmp(f, "flac"))
        si.format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
    else if (!strcmp(f, "mp3"))
        si.format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
    else if (!strcmp(f, "opus"))
        si.format = SF_FORMAT_OGG | SF_FORMAT_OPUS;
    else
        si.format = SF_FORMAT_OGG | SF_FORMAT_VORBIS;
    s->sf_int = !strcmp(f, "flac");
    if (!sf_format_check(&si)) {
        vox_set_error(err, VOX_ERR_UNSUPPORTED,
                      "%s: libsndfile cannot encode this format at %d Hz mono%s", f, rate,
                      !strcmp(f, "opus") ? " (Opus takes 8, 12, 16, 24 or 48 kHz)" : "");
        free(s);
        return NULL;
    }
    SF_VIRTUAL_IO vio = {v_len, v_seek, v_read, v_write, v_tell};
    s->sf = sf_open_virtual(&vio, SFM_WRITE, &si, s);
    if (!s->sf) {
        vox_set_error(err, s->io_failed ? VOX_ERR_IO : VOX_ERR_UNSUPPORTED,
                      "%s stream at %d Hz: cannot start the encoder: %s", f, rate,
                      s->io_failed ? "output write failed" : sf_strerror(NULL));
        free(s);
        return NULL;
    }
    if (s->io_failed) { /* the header could not be written */
        vox_set_error(err, VOX_ERR_IO, "%s stream: output write failed", f);
        vox_audio_stream_free(s);
        return NULL;
    }
    if ((si.format & SF_FORMAT_SUBMASK) == SF_FORMAT_VORBIS) {
        double q = 0.6; /* as vox_audio_write */
        sf_command(s->sf, SFC_SET_VBR_ENCODING_QUALITY, &q, sizeof q);
    }
    return s;
}

static int16_t to_s16(float x) {
    double v = round((double)x * 32768.0);
    v = v > 32767.0 ? 32767.0 : v < -32768.0 ? -32768.0 : v;
    return (int16_t)v;
}

int vox_audio_stream_write(vox_audio_stream *s, const float *x, size_t n, vox_error *err) {
    if (!s || (!x && n)) return vox_set_error(err, VOX_ERR_ARG, "audio stream: bad arguments");
    if (s->finished) return vox_set_error(err, VOX_ERR_ARG, "%s stream: already finished", s->fmt);
    if (s->io_failed)
        return vox_set_error(err, VOX_ERR_IO, "%s stream: output write failed", s->fmt);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return vox_set_error(err, VOX_ERR_ARG, "%s stream: sample %zu is %s (not written)",
                                 s->fmt, s->n + i, isnan(x[i]) ? "NaN" : "Inf");
    for (size_t i = 0; i < n;) {
        size_t k = n - i < BLK ? n - i : BLK;
        if (s->k != K_SND) {
            for (size_t j = 0; j < k; j++) {
                uint16_t q = (uint16_t)to_s16(x[i + j]);
                s->b[2 * j] = (unsigned char)(q & 0xff); /* little-endian on any host */
                s->b[2 * j + 1] = (unsigned char)(q >> 8);
            }
            if (emit(s, s->b, 2 * k))
                return vox_set_error(err, VOX_ERR_IO, "%s stream: output write failed", s->fmt);
        } else {
            sf_count_t w;
            if (s->sf_int) {
                for (size_t j = 0; j < k; j++)
                    s->itmp[j] = (int)to_s16(x[i + j]) * 65536; /* libsndfile ints: left-aligned */
                w = sf_writef_int(s->sf, s->itmp, (sf_count_t)k);
            } else {
                for (size_t j = 0; j < k; j++) {
                    float v = x[i + j];
                    s->ftmp[j] = v > 1.0f ? 1.0f : v < -1.0f ? -1.0f : v;
                }
                w = sf_writef_float(s->sf, s->ftmp, (sf_count_t)k);
            }
            if (w != (sf_count_t)k || s->io_failed)
                return vox_set_error(err, VOX_ERR_IO, "%s stream: %s", s->fmt,
                                     s->io_failed ? "output write failed" : sf_strerror(s->sf));
        }
        s->n += k;
        i += k;
    }
    return VOX_OK;
}

int vox_audio_stream_finish(vox_audio_stream *s, vox_error *err) {
    if (!s) return vox_set_error(err, VOX_ERR_ARG, "audio stream: NULL");
    if (s->finished) return vox_set_error(err, VOX_ERR_ARG, "%s stream: already finished", s->fmt);
    s->finished = 1;
    int rc = VOX_OK;
    if (s->k == K_SND) {
        int c = sf_close(s->sf);
        s->sf = NULL;
        if (c || s->io_failed)
            rc = vox_set_error(err, VOX_ERR_IO, "%s stream: %s", s->fmt,
                               s->io_failed ? "output write failed" : "encoder failed at close");
    } else if (s->k == K_WAV && s->patch) {
        uint64_t data = (uint64_t)s->n * 2;
        if (data > UINT32_MAX - 36) data = UINT32_MAX; /* > 4 GiB: leave "unknown" */
        unsigned char h[44];
        wav_header(h, s->rate, (uint32_t)data);
        if (s->patch(s->ud, 0, h, 44))
            rc = vox_set_error(err, VOX_ERR_IO, "wav stream: output write failed (header)");
    }
    return rc;
}

void vox_audio_stream_free(vox_audio_stream *s) {
    if (!s) return;
    if (s->sf) sf_close(s->sf);
    free(s);
}

size_t vox_audio_stream_samples(const vox_audio_stream *s) {
    return s ? s->n : 0;
}
uint64_t vox_audio_stream_bytes(const vox_audio_stream *s) {
    return s ? s->emitted : 0;
}
