/* wav.c - RIFF/WAVE reader (float32 mono) and 16-bit PCM writer. See vox_wav.h. */
#include "vox_wav.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* A byte source: either a FILE or a memory image. */
typedef struct wav_src {
    FILE *f;
    const uint8_t *mem;
    uint64_t len; /* total bytes */
    uint64_t pos; /* current offset */
} wav_src;

static int src_read(wav_src *s, void *dst, size_t n) {
    if (s->pos + n > s->len) return -1;
    if (s->f) {
        if (fread(dst, 1, n, s->f) != n) return -1;
    } else {
        memcpy(dst, s->mem + s->pos, n);
    }
    s->pos += n;
    return 0;
}

static int src_seek(wav_src *s, uint64_t pos) {
    if (pos > s->len) return -1;
    if (s->f && fseeko(s->f, (off_t)pos, SEEK_SET) != 0) return -1;
    s->pos = pos;
    return 0;
}

static uint16_t rd16(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* KSDATAFORMAT_SUBTYPE_* GUIDs share these 14 bytes after the 2-byte format code. */
static const uint8_t k_guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                        0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};

/* One frame's channel average as double. */
static double frame_value(const uint8_t *p, int format, int bits, int channels) {
    double acc = 0.0;
    int bps = bits / 8;
    for (int c = 0; c < channels; c++, p += bps) {
        double v;
        if (format == VOX_WAV_FLOAT) {
            if (bits == 32) {
                uint32_t u = rd32(p);
                float f;
                memcpy(&f, &u, 4);
                v = f;
            } else {
                uint64_t u = (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
                double d;
                memcpy(&d, &u, 8);
                v = d;
            }
        } else if (bits == 8) {
            v = ((double)p[0] - 128.0) / 128.0;
        } else if (bits == 16) {
            v = (double)(int16_t)rd16(p) / 32768.0;
        } else if (bits == 24) {
            int32_t x = (int32_t)((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16));
            if (x & 0x800000) x -= 0x1000000;
            v = (double)x / 8388608.0;
        } else {
            v = (double)(int32_t)rd32(p) / 2147483648.0;
        }
        acc += v;
    }
    return channels == 1 ? acc : acc / channels;
}

static int wav_parse(wav_src *s, const char *name, float **samples, vox_wav_info *info,
                     vox_error *err) {
    uint8_t hdr[12];
    if (src_read(s, hdr, 12) != 0 || memcmp(hdr, "RIFF", 4) != 0 || memcmp(hdr + 8, "WAVE", 4) != 0)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: not a RIFF/WAVE file", name);

    int have_fmt = 0;
    int format = 0, channels = 0, bits = 0, block_align = 0;
    uint32_t rate = 0;
    for (;;) {
        uint8_t ch[8];
        if (src_read(s, ch, 8) != 0) {
            return vox_set_error(err, VOX_ERR_FORMAT, "%s: no %s chunk before the end of the file",
                                 name, have_fmt ? "'data'" : "'fmt '");
        }
        uint32_t sz = rd32(ch + 4);
        uint64_t body = s->pos;
        if (memcmp(ch, "fmt ", 4) == 0) {
            uint8_t f[40];
            memset(f, 0, sizeof f);
            if (sz < 16 || src_read(s, f, sz < 40 ? sz : 40) != 0)
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "%s: 'fmt ' chunk: expected at least 16 bytes, found %u", name,
                                     (unsigned)sz);
            format = rd16(f);
            channels = rd16(f + 2);
            rate = rd32(f + 4);
            block_align = rd16(f + 12);
            bits = rd16(f + 14);
            if (format == 0xFFFE) {
                if (sz < 40 || rd16(f + 16) < 22)
                    return vox_set_error(err, VOX_ERR_FORMAT,
                                         "%s: WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk: expected 40 "
                                         "bytes, found %u",
                                         name, (unsigned)sz);
                if (memcmp(f + 26, k_guid_tail, 14) != 0)
                    return vox_set_error(
                        err, VOX_ERR_UNSUPPORTED,
                        "%s: WAVE_FORMAT_EXTENSIBLE with an unknown sub-format GUID", name);
                format = rd16(f + 24);
            }
            if (format != VOX_WAV_PCM && format != VOX_WAV_FLOAT)
                return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                                     "%s: unsupported WAV format tag 0x%04x (expected PCM 1 or "
                                     "IEEE float 3)",
                                     name, (unsigned)format);
            if ((format == VOX_WAV_PCM && bits != 8 && bits != 16 && bits != 24 && bits != 32) ||
                (format == VOX_WAV_FLOAT && bits != 32 && bits != 64))
                return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                                     "%s: unsupported %s bit depth %d (expected %s)", name,
                                     format == VOX_WAV_PCM ? "PCM" : "float", bits,
                                     format == VOX_WAV_PCM ? "8, 16, 24 or 32" : "32 or 64");
            if (channels < 1)
                return vox_set_error(err, VOX_ERR_FORMAT, "%s: 0 channels in 'fmt '", name);
            if (block_align != channels * (bits / 8))
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "%s: block align %d, expected %d (channels %d x %d bytes)",
                                     name, block_align, channels * (bits / 8), channels, bits / 8);
            if (rate == 0 || rate > 1000000)
                return vox_set_error(err, VOX_ERR_FORMAT, "%s: implausible sample rate %u Hz", name,
                                     (unsigned)rate);
            have_fmt = 1;
        } else if (memcmp(ch, "data", 4) == 0) {
            if (!have_fmt)
                return vox_set_error(err, VOX_ERR_FORMAT, "%s: 'data' chunk before 'fmt '", name);
            uint64_t avail = s->len - body;
            uint64_t nbytes = sz;
            if (sz == 0xFFFFFFFFu) {
                nbytes = avail - avail % (uint64_t)block_align;
            } else if (nbytes > avail) {
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "%s: truncated: data chunk declares %llu bytes, the file has "
                                     "%llu",
                                     name, (unsigned long long)nbytes, (unsigned long long)avail);
            }
            if (nbytes % (uint64_t)block_align != 0)
                return vox_set_error(
                    err, VOX_ERR_FORMAT,
                    "%s: data chunk of %llu bytes is not a whole number of %d-byte "
                    "frames",
                    name, (unsigned long long)nbytes, block_align);
            uint64_t nf = nbytes / (uint64_t)block_align;
            if (nf == 0) return vox_set_error(err, VOX_ERR_FORMAT, "%s: contains no audio", name);
            if (nf > (uint64_t)(SIZE_MAX / sizeof(float)))
                return vox_set_error(err, VOX_ERR_NOMEM, "%s: %llu frames do not fit in memory",
                                     name, (unsigned long long)nf);
            float *out = malloc((size_t)nf * sizeof(float));
            if (!out)
                return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory for %llu frames", name,
                                     (unsigned long long)nf);
            enum { BLOCK = 1 << 16 };
            uint8_t *buf = NULL;
            if (s->f) {
                buf = malloc((size_t)BLOCK * (size_t)block_align);
                if (!buf) {
                    free(out);
                    return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory", name);
                }
            }
            for (uint64_t i = 0; i < nf;) {
                uint64_t m = nf - i < BLOCK ? nf - i : BLOCK;
                const uint8_t *p;
                if (s->f) {
                    if (src_read(s, buf, (size_t)(m * (uint64_t)block_align)) != 0) {
                        free(buf);
                        free(out);
                        return vox_set_error(err, VOX_ERR_IO, "%s: read error in the data chunk",
                                             name);
                    }
                    p = buf;
                } else {
                    p = s->mem + s->pos;
                    s->pos += m * (uint64_t)block_align;
                }
                for (uint64_t j = 0; j < m; j++, p += block_align) {
                    double v = frame_value(p, format, bits, channels);
                    if (format == VOX_WAV_FLOAT && !isfinite(v)) {
                        free(buf);
                        free(out);
                        return vox_set_error(err, VOX_ERR_FORMAT,
                                             "%s: float sample %llu is %s (NaN/Inf not allowed)",
                                             name, (unsigned long long)(i + j),
                                             isnan(v) ? "NaN" : "Inf");
                    }
                    out[i + j] = (float)v;
                }
                i += m;
            }
            free(buf);
            *samples = out;
            if (info) {
                info->sample_rate = (int)rate;
                info->channels = channels;
                info->bits = bits;
                info->format = format;
                info->n_frames = (size_t)nf;
            }
            return VOX_OK;
        }
        /* next chunk (chunks are padded to even sizes) */
        uint64_t next = body + sz + (sz & 1u);
        if (next > s->len) {
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: truncated: chunk '%.4s' declares %u bytes past the end", name,
                                 (const char *)ch, (unsigned)sz);
        }
        if (src_seek(s, next) != 0) return vox_set_error(err, VOX_ERR_IO, "%s: seek error", name);
    }
}

int vox_wav_read_mem(const void *data, size_t len, const char *name, float **samples,
                     vox_wav_info *info, vox_error *err) {
    if (!samples) return vox_set_error(err, VOX_ERR_ARG, "vox_wav_read_mem: samples is NULL");
    *samples = NULL;
    if (!name) name = "(memory)";
    if (!data && len) return vox_set_error(err, VOX_ERR_ARG, "%s: NULL data", name);
    wav_src s = {NULL, data, len, 0};
    return wav_parse(&s, name, samples, info, err);
}

int vox_wav_read(const char *path, float **samples, vox_wav_info *info, vox_error *err) {
    if (!samples || !path) return vox_set_error(err, VOX_ERR_ARG, "vox_wav_read: NULL argument");
    *samples = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return vox_set_error(err, VOX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    wav_src s = {f, NULL, 0, 0};
    off_t end = -1;
    if (fseeko(f, 0, SEEK_END) == 0) end = ftello(f);
    if (end < 0 || fseeko(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return vox_set_error(err, VOX_ERR_IO, "%s: cannot seek (not a regular file?)", path);
    }
    s.len = (uint64_t)end;
    int rc = wav_parse(&s, path, samples, info, err);
    fclose(f);
    return rc;
}

static void put16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
    put16(p, v);
    put16(p + 2, v >> 16);
}

int vox_wav_write_pcm16(const char *path, const float *samples, size_t n, int sample_rate,
                        vox_error *err) {
    if (!path || (!samples && n) || sample_rate <= 0)
        return vox_set_error(err, VOX_ERR_ARG, "vox_wav_write_pcm16: invalid argument");
    if (n > (0xFFFFFFFFu - 36u) / 2u)
        return vox_set_error(err, VOX_ERR_ARG, "%s: %zu samples exceed the 4 GB WAV limit", path,
                             n);
    FILE *f = fopen(path, "wb");
    if (!f) return vox_set_error(err, VOX_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    uint8_t h[44];
    uint32_t data_bytes = (uint32_t)(n * 2);
    memcpy(h, "RIFF", 4);
    put32(h + 4, 36u + data_bytes);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(h + 16, 16);
    put16(h + 20, VOX_WAV_PCM);
    put16(h + 22, 1);
    put32(h + 24, (uint32_t)sample_rate);
    put32(h + 28, (uint32_t)sample_rate * 2u);
    put16(h + 32, 2);
    put16(h + 34, 16);
    memcpy(h + 36, "data", 4);
    put32(h + 40, data_bytes);
    int ok = fwrite(h, 1, 44, f) == 44;
    uint8_t buf[4096];
    for (size_t i = 0; ok && i < n;) {
        size_t m = n - i < sizeof buf / 2 ? n - i : sizeof buf / 2;
        for (size_t j = 0; j < m; j++) {
            float x = samples[i + j];
            long q;
            if (!(x == x)) {
                q = 0;
            } else {
                double d = (double)x * 32768.0;
                q = d >= 32767.0 ? 32767 : d <= -32768.0 ? -32768 : lround(d);
            }
            put16(buf + 2 * j, (uint16_t)(int16_t)q);
        }
        ok = fwrite(buf, 2, m, f) == m;
        i += m;
    }
    if (fclose(f) != 0) ok = 0;
    if (!ok) return vox_set_error(err, VOX_ERR_IO, "%s: write error", path);
    return VOX_OK;
}
