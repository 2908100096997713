/* decode.c - libavformat/libavcodec decoding + libswresample downmix/resample (vox_decode.h). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>

#include "vox_decode.h"

#define VOX_AVIO_BUF 65536

struct vox_decoder {
    char name[256];
    vox_decode_opts opts;
    vox_decode_info info;
    /* input */
    AVFormatContext *fmt;
    AVIOContext *avio; /* custom I/O (mem, fd), else NULL */
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    int fd;
    int input_empty; /* a regular file of 0 bytes */
    int own_fd;      /* 1: opened by vox_decoder_open, closed with the decoder */
    /* decoding */
    int stream;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    /* resampling: configured from the first frame, rebuilt if the stream changes format */
    SwrContext *swr;
    int swr_rate, swr_fmt;
    AVChannelLayout swr_layout;
    double *matrix; /* [swr_layout.nb_channels], 1/C each */
    /* pending output: buf[buf_pos .. buf_len) */
    float *buf;
    size_t buf_pos, buf_len, buf_cap;
    int demux_eof, done;
    int read_error; /* first av_read_frame error other than EOF */
    char bad_reason[96];
};

void vox_decode_global_init(int verbose) {
    av_log_set_level(verbose ? AV_LOG_WARNING : AV_LOG_QUIET);
}

static const char *averr(int e, char *b, size_t n) {
    if (av_strerror(e, b, n) < 0) snprintf(b, n, "libav error %d", e);
    return b;
}

/* ---- custom I/O ----------------------------------------------------------------------------- */
static int mem_read(void *opaque, uint8_t *b, int n) {
    vox_decoder *d = opaque;
    size_t left = d->mem_len - d->mem_pos;
    if (left == 0) return AVERROR_EOF;
    size_t k = (size_t)n < left ? (size_t)n : left;
    memcpy(b, d->mem + d->mem_pos, k);
    d->mem_pos += k;
    return (int)k;
}

static int64_t mem_seek(void *opaque, int64_t off, int whence) {
    vox_decoder *d = opaque;
    int64_t base;
    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE: return (int64_t)d->mem_len;
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = (int64_t)d->mem_pos; break;
    case SEEK_END: base = (int64_t)d->mem_len; break;
    default: return AVERROR(EINVAL);
    }
    int64_t p = base + off;
    if (p < 0 || p > (int64_t)d->mem_len) return AVERROR(EINVAL);
    d->mem_pos = (size_t)p;
    return p;
}

static int fd_read(void *opaque, uint8_t *b, int n) {
    vox_decoder *d = opaque;
    for (;;) {
        ssize_t k = read(d->fd, b, (size_t)n);
        if (k > 0) return (int)k;
        if (k == 0) return AVERROR_EOF;
        if (errno != EINTR) return AVERROR(errno);
    }
}

static int64_t fd_seek(void *opaque, int64_t off, int whence) {
    vox_decoder *d = opaque;
    if ((whence & ~AVSEEK_FORCE) == AVSEEK_SIZE) {
        struct stat st;
        return fstat(d->fd, &st) == 0 ? (int64_t)st.st_size : AVERROR(errno);
    }
    off_t r = lseek(d->fd, (off_t)off, whence & ~AVSEEK_FORCE);
    return r < 0 ? AVERROR(errno) : (int64_t)r;
}

/* ---- open ----------------------------------------------------------------------------------- */
void vox_decoder_close(vox_decoder *d) {
    if (!d) return;
    swr_free(&d->swr);
    av_channel_layout_uninit(&d->swr_layout);
    avcodec_free_context(&d->dec);
    av_packet_free(&d->pkt);
    av_frame_free(&d->frame);
    avformat_close_input(&d->fmt);
    if (d->avio) {
        av_freep(&d->avio->buffer);
        avio_context_free(&d->avio);
    }
    if (d->own_fd && d->fd >= 0) close(d->fd);
    free(d->matrix);
    free(d->buf);
    free(d);
}

static vox_decoder *dec_new(const char *name, const vox_decode_opts *opts, vox_error *err) {
    if (!opts || opts->target_rate <= 0 || opts->raw_rate < 0 || opts->raw_channels < 0 ||
        opts->raw_channels > 64) {
        vox_set_error(err, VOX_ERR_ARG, "%s: bad decode options (target_rate must be > 0)",
                      name ? name : "(input)");
        return NULL;
    }
    vox_decoder *d = vox_calloc(1, sizeof *d, err);
    if (!d) return NULL;
    snprintf(d->name, sizeof d->name, "%s", name ? name : "(input)");
    d->opts = *opts;
    d->fd = -1;
    d->stream = -1;
    d->info.out_rate = opts->target_rate;
    d->info.declared_seconds = -1;
    snprintf(d->info.resampler, sizeof d->info.resampler, "none");
    return d;
}

static int setup_custom_io(vox_decoder *d, int (*rd)(void *, uint8_t *, int),
                           int64_t (*sk)(void *, int64_t, int), vox_error *err) {
    d->fmt = avformat_alloc_context();
    uint8_t *b = av_malloc(VOX_AVIO_BUF);
    if (!d->fmt || !b) {
        av_free(b);
        return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory (libav I/O context)", d->name);
    }
    d->avio = avio_alloc_context(b, VOX_AVIO_BUF, 0, d, rd, NULL, sk);
    if (!d->avio) {
        av_free(b);
        return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory (libav I/O context)", d->name);
    }
    if (!sk) d->avio->seekable = 0;
    d->fmt->pb = d->avio;
    d->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    return VOX_OK;
}

/* Open the container (url NULL = custom I/O already set up), find the audio stream, open the
 * decoder. On failure the caller closes d. */
static int open_common(vox_decoder *d, const char *url, vox_error *err) {
    char eb[128];
    const AVInputFormat *ifmt = NULL;
    AVDictionary *dopt = NULL;
    if (d->opts.raw_rate > 0) {
        ifmt = av_find_input_format("s16le");
        if (!ifmt)
            return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                                 "%s: this libavformat has no s16le demuxer", d->name);
        AVChannelLayout l;
        char desc[64];
        av_channel_layout_default(&l, d->opts.raw_channels > 0 ? d->opts.raw_channels : 1);
        av_channel_layout_describe(&l, desc, sizeof desc);
        av_channel_layout_uninit(&l);
        av_dict_set_int(&dopt, "sample_rate", d->opts.raw_rate, 0);
        av_dict_set(&dopt, "ch_layout", desc, 0);
    }
    int r = avformat_open_input(&d->fmt, url ? url : "", ifmt, &dopt);
    av_dict_free(&dopt);
    if (r < 0) {
        /* avformat_open_input frees a custom context on failure; our AVIO stays ours. */
        if (r == AVERROR(EIO) || r == AVERROR(ENOMEM))
            return vox_set_error(err, r == AVERROR(EIO) ? VOX_ERR_IO : VOX_ERR_NOMEM,
                                 "%s: cannot read: %s", d->name, averr(r, eb, sizeof eb));
        if (d->input_empty)
            return vox_set_error(err, VOX_ERR_FORMAT, "%s: not an audio file (the file is empty)",
                                 d->name);
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: not an audio file (libav: %s)", d->name,
                             averr(r, eb, sizeof eb));
    }
    r = avformat_find_stream_info(d->fmt, NULL);
    if (r < 0)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: not an audio file (libav: %s)", d->name,
                             averr(r, eb, sizeof eb));
    snprintf(d->info.container, sizeof d->info.container, "%s", d->fmt->iformat->name);

    const AVCodec *codec = NULL;
    r = av_find_best_stream(d->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
    if (r == AVERROR_STREAM_NOT_FOUND) {
        char list[160] = "";
        size_t o = 0;
        for (unsigned i = 0; i < d->fmt->nb_streams && o + 40 < sizeof list; i++) {
            const AVCodecParameters *p = d->fmt->streams[i]->codecpar;
            const char *t = av_get_media_type_string(p->codec_type);
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s %s", i ? ", " : "",
                                  t ? t : "unknown", avcodec_get_name(p->codec_id));
        }
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: not an audio file: no audio stream (%s: %s)",
                             d->name, d->info.container, o ? list : "no streams");
    }
    if (r < 0) {
        int s = -1;
        for (unsigned i = 0; i < d->fmt->nb_streams; i++)
            if (d->fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) s = (int)i;
        return vox_set_error(
            err, VOX_ERR_UNSUPPORTED, "%s: no decoder for audio codec '%s'", d->name,
            s >= 0 ? avcodec_get_name(d->fmt->streams[s]->codecpar->codec_id) : "?");
    }
    d->stream = r;
    AVStream *st = d->fmt->streams[r];
    for (unsigned i = 0; i < d->fmt->nb_streams; i++)
        if ((int)i != r) d->fmt->streams[i]->discard = AVDISCARD_ALL;
    d->dec = avcodec_alloc_context3(codec);
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (!d->dec || !d->pkt || !d->frame)
        return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory (decoder)", d->name);
    r = avcodec_parameters_to_context(d->dec, st->codecpar);
    if (r >= 0) r = avcodec_open2(d->dec, codec, NULL);
    if (r < 0)
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: cannot open the %s decoder: %s", d->name,
                             codec->name, averr(r, eb, sizeof eb));
    snprintf(d->info.codec, sizeof d->info.codec, "%s", codec->name);
    d->info.src_rate = d->dec->sample_rate;
    d->info.src_channels = d->dec->ch_layout.nb_channels;
    /* Declared duration, only when the container states it (not guessed from the bitrate). */
    if (d->fmt->duration_estimation_method != AVFMT_DURATION_FROM_BITRATE) {
        if (st->duration != AV_NOPTS_VALUE && st->duration > 0)
            d->info.declared_seconds = (double)st->duration * av_q2d(st->time_base);
        else if (d->fmt->nb_streams == 1 && d->fmt->duration != AV_NOPTS_VALUE &&
                 d->fmt->duration > 0) /* else it may be a longer video track's */
            d->info.declared_seconds = (double)d->fmt->duration / AV_TIME_BASE;
    }
    return VOX_OK;
}

vox_decoder *vox_decoder_open(const char *path, const vox_decode_opts *opts, vox_error *err) {
    if (!path) {
        vox_set_error(err, VOX_ERR_ARG, "vox_decoder_open: NULL path");
        return NULL;
    }
    vox_decoder *d = dec_new(path, opts, err);
    if (!d) return NULL;
    struct stat st;
    if (stat(path, &st) != 0) {
        vox_set_error(err, VOX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        vox_set_error(err, VOX_ERR_IO, "%s: is a directory, not an audio file", path);
        goto fail;
    }
    /* Open ourselves so that permission errors read like every other vox error, and so a
     * path is never interpreted as a libav protocol URL ("http:", "pipe:", ...). */
    d->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (d->fd < 0) {
        vox_set_error(err, VOX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    d->own_fd = 1;
    d->input_empty = S_ISREG(st.st_mode) && st.st_size == 0;
    if (setup_custom_io(d, fd_read, S_ISREG(st.st_mode) ? fd_seek : NULL, err)) goto fail;
    if (open_common(d, path, err)) goto fail;
    return d;
fail:
    vox_decoder_close(d);
    return NULL;
}

vox_decoder *vox_decoder_open_mem(const void *data, size_t len, const char *name,
                                  const vox_decode_opts *opts, vox_error *err) {
    vox_decoder *d = dec_new(name, opts, err);
    if (!d) return NULL;
    if (!data && len) {
        vox_set_error(err, VOX_ERR_ARG, "%s: NULL buffer", d->name);
        goto fail;
    }
    if (len == 0) {
        vox_set_error(err, VOX_ERR_FORMAT, "%s: contains no audio (empty input)", d->name);
        goto fail;
    }
    d->mem = data;
    d->mem_len = len;
    if (setup_custom_io(d, mem_read, mem_seek, err)) goto fail;
    if (open_common(d, NULL, err)) goto fail;
    return d;
fail:
    vox_decoder_close(d);
    return NULL;
}

vox_decoder *vox_decoder_open_fd(int fd, const char *name, const vox_decode_opts *opts,
                                 vox_error *err) {
    vox_decoder *d = dec_new(name, opts, err);
    if (!d) return NULL;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        vox_set_error(err, VOX_ERR_IO, "%s: cannot read: bad file descriptor", d->name);
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        vox_set_error(err, VOX_ERR_IO, "%s: is a directory, not an audio file", d->name);
        goto fail;
    }
    d->fd = fd;
    d->input_empty = S_ISREG(st.st_mode) && st.st_size == 0;
    int seekable = S_ISREG(st.st_mode) && lseek(fd, 0, SEEK_CUR) >= 0;
    if (setup_custom_io(d, fd_read, seekable ? fd_seek : NULL, err)) goto fail;
    if (open_common(d, NULL, err)) goto fail;
    return d;
fail:
    vox_decoder_close(d);
    return NULL;
}

/* ---- decoding ------------------------------------------------------------------------------- */
static int buf_reserve(vox_decoder *d, size_t extra, vox_error *err) {
    if (d->buf_pos > 0) { /* compact: pending samples to the front */
        memmove(d->buf, d->buf + d->buf_pos, (d->buf_len - d->buf_pos) * sizeof *d->buf);
        d->buf_len -= d->buf_pos;
        d->buf_pos = 0;
    }
    if (d->buf_len + extra <= d->buf_cap) return VOX_OK;
    size_t cap = d->buf_cap ? d->buf_cap : 8192;
    while (cap < d->buf_len + extra)
        cap *= 2;
    float *nb = realloc(d->buf, cap * sizeof *nb);
    if (!nb)
        return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory (%zu samples)", d->name, cap);
    d->buf = nb;
    d->buf_cap = cap;
    return VOX_OK;
}

/* Drain swr's delay line into the buffer. */
static int swr_drain(vox_decoder *d, vox_error *err) {
    if (!d->swr) return VOX_OK;
    for (;;) {
        int want = swr_get_out_samples(d->swr, 0);
        if (want <= 0) return VOX_OK;
        if (buf_reserve(d, (size_t)want, err)) return err ? err->code : VOX_ERR_NOMEM;
        uint8_t *o = (uint8_t *)(d->buf + d->buf_len);
        int got = swr_convert(d->swr, &o, want, NULL, 0);
        if (got < 0) {
            char eb[128];
            return vox_set_error(err, VOX_ERR_FORMAT, "%s: resampler flush failed: %s", d->name,
                                 averr(got, eb, sizeof eb));
        }
        d->buf_len += (size_t)got;
        if (got == 0) return VOX_OK;
    }
}

static int swr_setup(vox_decoder *d, const AVFrame *f, vox_error *err) {
    char eb[128];
    AVChannelLayout in = {0};
    int r;
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC || f->ch_layout.nb_channels <= 0) {
        int c =
            f->ch_layout.nb_channels > 0 ? f->ch_layout.nb_channels : d->dec->ch_layout.nb_channels;
        if (c <= 0)
            return vox_set_error(err, VOX_ERR_FORMAT, "%s: decoded audio has no channels", d->name);
        av_channel_layout_default(&in, c);
    } else if ((r = av_channel_layout_copy(&in, &f->ch_layout)) < 0) {
        return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory (channel layout)", d->name);
    }
    int c = in.nb_channels;
    if (f->sample_rate <= 0) {
        av_channel_layout_uninit(&in);
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: decoded audio has sample rate %d", d->name,
                             f->sample_rate);
    }
    double *m = realloc(d->matrix, (size_t)c * sizeof *m);
    if (!m) {
        av_channel_layout_uninit(&in);
        return vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory (downmix matrix)", d->name);
    }
    d->matrix = m;
    for (int i = 0; i < c; i++)
        m[i] = 1.0 / c;
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    int resample = f->sample_rate != d->opts.target_rate;
    for (int attempt = resample ? 0 : 1; attempt < 2; attempt++) {
        swr_free(&d->swr);
        r = swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_FLT, d->opts.target_rate, &in,
                                (enum AVSampleFormat)f->format, f->sample_rate, 0, NULL);
        if (r >= 0 && attempt == 0) {
            r = av_opt_set_int(d->swr, "resampler", SWR_ENGINE_SOXR, 0);
            if (r >= 0) r = av_opt_set_double(d->swr, "precision", 20.0, 0);
        }
        if (r >= 0) r = swr_set_matrix(d->swr, m, c);
        if (r >= 0) r = swr_init(d->swr);
        if (r >= 0) {
            snprintf(d->info.resampler, sizeof d->info.resampler, "%s",
                     !resample      ? "none"
                     : attempt == 0 ? "soxr-hq"
                                    : "swr");
            break;
        }
    }
    if (r < 0) {
        swr_free(&d->swr);
        av_channel_layout_uninit(&in);
        return vox_set_error(err, VOX_ERR_UNSUPPORTED,
                             "%s: cannot convert %d Hz %d-channel %s to %d Hz mono: %s", d->name,
                             f->sample_rate, c, av_get_sample_fmt_name(f->format),
                             d->opts.target_rate, averr(r, eb, sizeof eb));
    }
    av_channel_layout_uninit(&d->swr_layout);
    d->swr_layout = in; /* moved */
    d->swr_rate = f->sample_rate;
    d->swr_fmt = f->format;
    return VOX_OK;
}

static int check_finite(vox_decoder *d, const AVFrame *f, vox_error *err) {
    enum AVSampleFormat fmt = (enum AVSampleFormat)f->format;
    int planar = av_sample_fmt_is_planar(fmt);
    enum AVSampleFormat packed = av_get_packed_sample_fmt(fmt);
    if (packed != AV_SAMPLE_FMT_FLT && packed != AV_SAMPLE_FMT_DBL) return VOX_OK;
    int c = f->ch_layout.nb_channels > 0 ? f->ch_layout.nb_channels : 1;
    size_t n = (size_t)f->nb_samples;
    for (int p = 0; p < (planar ? c : 1); p++) {
        size_t cnt = planar ? n : n * (size_t)c;
        for (size_t i = 0; i < cnt; i++) {
            double v = packed == AV_SAMPLE_FMT_FLT ? ((const float *)f->extended_data[p])[i]
                                                   : ((const double *)f->extended_data[p])[i];
            if (!isfinite(v)) {
                size_t frame = planar ? i : i / (size_t)c;
                int ch = planar ? p : (int)(i % (size_t)c);
                return vox_set_error(err, VOX_ERR_FORMAT,
                                     "%s: float sample at input frame %zu, channel %d is %s "
                                     "(NaN/Inf not allowed)",
                                     d->name, d->info.in_frames + frame, ch,
                                     isnan(v) ? "NaN" : "Inf");
            }
        }
    }
    return VOX_OK;
}

static int take_frame(vox_decoder *d, const AVFrame *f, vox_error *err) {
    if (f->nb_samples <= 0) return VOX_OK;
    int r = check_finite(d, f, err);
    if (r) return r;
    if (!d->swr || f->sample_rate != d->swr_rate || f->format != d->swr_fmt ||
        (f->ch_layout.nb_channels > 0 && f->ch_layout.nb_channels != d->swr_layout.nb_channels)) {
        if ((r = swr_drain(d, err))) return r;
        if ((r = swr_setup(d, f, err))) return r;
        if (d->info.in_frames == 0) {
            d->info.src_rate = f->sample_rate;
            d->info.src_channels = d->swr_layout.nb_channels;
        }
    }
    int want = swr_get_out_samples(d->swr, f->nb_samples);
    if (want < 0) want = 0;
    if ((r = buf_reserve(d, (size_t)want + 1, err))) return r;
    uint8_t *o = (uint8_t *)(d->buf + d->buf_len);
    int got = swr_convert(d->swr, &o, want, (const uint8_t **)f->extended_data, f->nb_samples);
    if (got < 0) {
        char eb[128];
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: resampling failed: %s", d->name,
                             averr(got, eb, sizeof eb));
    }
    d->buf_len += (size_t)got;
    d->info.in_frames += (size_t)f->nb_samples;
    return VOX_OK;
}

static void note_bad(vox_decoder *d, int e) {
    if (d->info.n_bad_packets++ == 0) averr(e, d->bad_reason, sizeof d->bad_reason);
}

/* Seconds the decoded length may fall short of the declared duration without a warning:
 * 0.1 s + 1 % + 4 codec frames. Containers count encoder delay and end padding in their
 * duration (mp3 Xing frame counts: 1681 samples = 0.105 s for a 16 kHz LAME file), which at
 * low rates is several frames (576-sample MPEG-2 frames at 8 kHz are 72 ms each). */
static double truncation_margin(const vox_decoder *d) {
    double m = 0.1 + 0.01 * d->info.declared_seconds;
    if (d->dec->frame_size > 0 && d->info.src_rate > 0)
        m += 4.0 * d->dec->frame_size / d->info.src_rate;
    return m;
}

static int finish(vox_decoder *d, vox_error *err) {
    int r = swr_drain(d, err);
    if (r) return r;
    d->done = 1;
    vox_decode_info *in = &d->info;
    double got_s = in->src_rate > 0 ? (double)in->in_frames / in->src_rate : 0.0;
    if (in->in_frames == 0) {
        if (in->n_bad_packets > 0)
            return vox_set_error(err, VOX_ERR_FORMAT,
                                 "%s: not an audio file: nothing decodable (%d %s packets "
                                 "failed: %s)",
                                 d->name, in->n_bad_packets, in->codec, d->bad_reason);
        return vox_set_error(err, VOX_ERR_FORMAT, "%s: contains no audio", d->name);
    }
    if (in->n_bad_packets > 0) {
        in->truncated = 1;
        snprintf(in->warning, sizeof in->warning,
                 "%.200s: truncated or damaged: %d packet(s) failed to decode (%s), decoded %.3f s",
                 d->name, in->n_bad_packets, d->bad_reason, got_s);
    } else if (d->read_error) {
        char eb[128];
        in->truncated = 1;
        snprintf(in->warning, sizeof in->warning, "%.200s: truncated: read error (%s) after %.3f s",
                 d->name, averr(d->read_error, eb, sizeof eb), got_s);
    } else if (in->declared_seconds > 0 && got_s < in->declared_seconds - truncation_margin(d)) {
        in->truncated = 1;
        snprintf(in->warning, sizeof in->warning,
                 "%.200s: truncated: the container declares %.3f s, decoded %.3f s", d->name,
                 in->declared_seconds, got_s);
    }
    return VOX_OK;
}

/* Decode until at least `need` samples are pending or the input is finished. */
static int pump(vox_decoder *d, size_t need, vox_error *err) {
    while (!d->done && d->buf_len - d->buf_pos < need) {
        int r = avcodec_receive_frame(d->dec, d->frame);
        if (r == 0) {
            r = take_frame(d, d->frame, err);
            av_frame_unref(d->frame);
            if (r) return r;
            continue;
        }
        if (r == AVERROR_EOF) {
            if ((r = finish(d, err))) return r;
            break;
        }
        if (r != AVERROR(EAGAIN)) note_bad(d, r); /* decode error on receive: skip the packet */
        if (d->demux_eof) { /* EAGAIN after the flush packet: should not happen */
            if ((r = finish(d, err))) return r;
            break;
        }
        r = av_read_frame(d->fmt, d->pkt);
        if (r < 0) {
            if (r != AVERROR_EOF && !d->read_error) d->read_error = r;
            d->demux_eof = 1;
            avcodec_send_packet(d->dec, NULL);
            continue;
        }
        if (d->pkt->stream_index == d->stream) {
            int s = avcodec_send_packet(d->dec, d->pkt);
            if (s < 0 && s != AVERROR(EAGAIN) && s != AVERROR_EOF) note_bad(d, s);
        }
        av_packet_unref(d->pkt);
    }
    return VOX_OK;
}

int vox_decoder_read(vox_decoder *d, float *out, size_t max, size_t *n_out, vox_error *err) {
    if (n_out) *n_out = 0;
    if (!d || !n_out || (!out && max))
        return vox_set_error(err, VOX_ERR_ARG, "vox_decoder_read: NULL argument");
    int r = pump(d, max, err);
    if (r) return r;
    size_t k = d->buf_len - d->buf_pos;
    if (k > max) k = max;
    if (k) memcpy(out, d->buf + d->buf_pos, k * sizeof *out);
    d->buf_pos += k;
    d->info.out_samples += k;
    *n_out = k;
    return VOX_OK;
}

const vox_decode_info *vox_decoder_info(const vox_decoder *d) {
    return d ? &d->info : NULL;
}

/* ---- whole input ---------------------------------------------------------------------------- */
static int decode_all(vox_decoder *d, float **samples, size_t *n, vox_decode_info *info,
                      vox_error *err) {
    size_t len = 0, cap = 0;
    float *x = NULL;
    int r = VOX_OK;
    for (;;) {
        if (cap - len < 65536) {
            size_t nc = cap ? cap * 2 : 262144;
            float *nx = realloc(x, nc * sizeof *nx);
            if (!nx) {
                r = vox_set_error(err, VOX_ERR_NOMEM, "%s: out of memory (%zu samples)", d->name,
                                  nc);
                break;
            }
            x = nx;
            cap = nc;
        }
        size_t got = 0;
        if ((r = vox_decoder_read(d, x + len, cap - len, &got, err))) break;
        if (got == 0) break;
        len += got;
    }
    if (info) *info = d->info;
    if (r) {
        free(x);
        return r;
    }
    *samples = x;
    *n = len;
    return VOX_OK;
}

static int decode_with(vox_decoder *d, float **samples, size_t *n, vox_decode_info *info,
                       vox_error *err) {
    if (!d) return err ? err->code : VOX_ERR_IO;
    int r = decode_all(d, samples, n, info, err);
    vox_decoder_close(d);
    return r;
}

static void out_reset(float **samples, size_t *n) {
    if (samples) *samples = NULL;
    if (n) *n = 0;
}

int vox_decode_file(const char *path, const vox_decode_opts *opts, float **samples, size_t *n,
                    vox_decode_info *info, vox_error *err) {
    out_reset(samples, n);
    if (!samples || !n) return vox_set_error(err, VOX_ERR_ARG, "vox_decode_file: NULL output");
    return decode_with(vox_decoder_open(path, opts, err), samples, n, info, err);
}

int vox_decode_mem(const void *data, size_t len, const char *name, const vox_decode_opts *opts,
                   float **samples, size_t *n, vox_decode_info *info, vox_error *err) {
    out_reset(samples, n);
    if (!samples || !n) return vox_set_error(err, VOX_ERR_ARG, "vox_decode_mem: NULL output");
    return decode_with(vox_decoder_open_mem(data, len, name, opts, err), samples, n, info, err);
}

int vox_decode_fd(int fd, const char *name, const vox_decode_opts *opts, float **samples, size_t *n,
                  vox_decode_info *info, vox_error *err) {
    out_reset(samples, n);
    if (!samples || !n) return vox_set_error(err, VOX_ERR_ARG, "vox_decode_fd: NULL output");
    return decode_with(vox_decoder_open_fd(fd, name, opts, err), samples, n, info, err);
}
