/* pa.c - PortAudio capture/playback with swresample conversion (vox_pa.h). */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <alsa/asoundlib.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <portaudio.h>

#include "vox_resample.h"

#include "vox_pa.h"

/* ---- stderr noise ----------------------------------------------------------------------- */
static void alsa_silent(const char *file, int line, const char *function, int e, const char *fmt,
                        ...) {
    (void)file, (void)line, (void)function, (void)e, (void)fmt;
}
static void jack_silent(const char *msg) {
    (void)msg;
}

void vox_pa_global_init(int verbose) {
    snd_lib_error_set_handler(verbose ? NULL : alsa_silent);
    if (verbose) return;
    const char *names[] = {"jack_set_error_function", "jack_set_info_function"};
    for (int i = 0; i < 2; i++) {
        void (*set)(void (*)(const char *));
        void *sym = dlsym(RTLD_DEFAULT, names[i]);
        if (!sym) continue;
        *(void **)(&set) = sym; /* POSIX-sanctioned object->function pointer conversion */
        set(jack_silent);
    }
}

static const char *pa_text(PaError e) {
    if (e == paUnanticipatedHostError) {
        const PaHostErrorInfo *h = Pa_GetLastHostErrorInfo();
        if (h && h->errorText && h->errorText[0]) return h->errorText;
    }
    return Pa_GetErrorText(e);
}

static int pa_init(vox_error *err) {
    PaError e = Pa_Initialize();
    if (e != paNoError)
        return vox_set_error(err, VOX_ERR_DEVICE, "PortAudio initialisation failed: %s",
                             pa_text(e));
    return VOX_OK;
}

int vox_pa_list_devices(vox_pa_device **devs, int *n, vox_error *err) {
    if (!devs || !n) return vox_set_error(err, VOX_ERR_ARG, "vox_pa_list_devices: NULL output");
    *devs = NULL;
    *n = 0;
    if (pa_init(err)) return err ? err->code : VOX_ERR_DEVICE;
    int rc = VOX_OK;
    int count = Pa_GetDeviceCount();
    if (count < 0) {
        rc = vox_set_error(err, VOX_ERR_DEVICE, "PortAudio cannot count devices: %s",
                           pa_text(count));
    } else if (count > 0) {
        vox_pa_device *d = vox_calloc((size_t)count, sizeof *d, err);
        if (!d) {
            rc = VOX_ERR_NOMEM;
        } else {
            PaDeviceIndex din = Pa_GetDefaultInputDevice(), dout = Pa_GetDefaultOutputDevice();
            for (int i = 0; i < count; i++) {
                const PaDeviceInfo *pi = Pa_GetDeviceInfo(i);
                const PaHostApiInfo *hi = pi ? Pa_GetHostApiInfo(pi->hostApi) : NULL;
                d[i].index = i;
                snprintf(d[i].name, sizeof d[i].name, "%s", pi && pi->name ? pi->name : "?");
                snprintf(d[i].host_api, sizeof d[i].host_api, "%s",
                         hi && hi->name ? hi->name : "?");
                d[i].max_input_channels = pi ? pi->maxInputChannels : 0;
                d[i].max_output_channels = pi ? pi->maxOutputChannels : 0;
                d[i].default_rate = pi ? pi->defaultSampleRate : 0;
                d[i].is_default_input = i == din;
                d[i].is_default_output = i == dout;
            }
            *devs = d;
            *n = count;
        }
    }
    Pa_Terminate();
    return rc;
}

/* Resolve `device` to a PortAudio index with channels in the wanted direction. */
static int pick_device(int device, int input, PaDeviceIndex *out, const PaDeviceInfo **info,
                       vox_error *err) {
    const char *dir = input ? "input" : "output";
    int count = Pa_GetDeviceCount();
    if (count < 0)
        return vox_set_error(err, VOX_ERR_DEVICE, "PortAudio cannot count devices: %s",
                             pa_text(count));
    if (count == 0)
        return vox_set_error(err, VOX_ERR_DEVICE,
                             "no audio %s device found (PortAudio sees 0 devices)", dir);
    PaDeviceIndex d;
    if (device == VOX_PA_DEFAULT_DEVICE) {
        d = input ? Pa_GetDefaultInputDevice() : Pa_GetDefaultOutputDevice();
        if (d == paNoDevice)
            return vox_set_error(err, VOX_ERR_DEVICE,
                                 "no default audio %s device (PortAudio sees %d devices, none is "
                                 "a default %s)",
                                 dir, count, dir);
    } else if (device < 0 || device >= count) {
        return vox_set_error(err, VOX_ERR_ARG,
                             "audio device %d does not exist (PortAudio sees %d "
                             "devices, 0..%d)",
                             device, count, count - 1);
    } else {
        d = device;
    }
    const PaDeviceInfo *pi = Pa_GetDeviceInfo(d);
    if (!pi) return vox_set_error(err, VOX_ERR_DEVICE, "audio device %d: no device info", d);
    if ((input ? pi->maxInputChannels : pi->maxOutputChannels) < 1)
        return vox_set_error(err, VOX_ERR_ARG, "audio device %d '%s' has no %s channels", d,
                             pi->name, dir);
    *out = d;
    *info = pi;
    return VOX_OK;
}

/* swr converter between interleaved float streams: in_ch -> out_ch (one side is mono). */
static SwrContext *make_conv(int in_ch, int in_rate, int out_ch, int out_rate, vox_error *err) {
    return vox_swr_float(in_ch, in_rate, out_ch, out_rate, err);
}

/* Choose rate/channels for a stream: the wanted rate in mono if the device accepts it (and
 * flags allow), else the device's default rate with mono, else with min(max channels, 2). */
static int choose_format(PaStreamParameters *p, int input, int rate, int flags,
                         const PaDeviceInfo *pi, double *dev_rate) {
    int maxch = input ? pi->maxInputChannels : pi->maxOutputChannels;
    p->sampleFormat = paFloat32;
    p->channelCount = 1;
    const PaStreamParameters *ip = input ? p : NULL, *op = input ? NULL : p;
    if (!(flags & VOX_PA_DEVICE_RATE) &&
        Pa_IsFormatSupported(ip, op, rate) == paFormatIsSupported) {
        *dev_rate = rate;
        return 0;
    }
    *dev_rate = pi->defaultSampleRate > 0 ? pi->defaultSampleRate : 48000;
    if (Pa_IsFormatSupported(ip, op, *dev_rate) == paFormatIsSupported) return 0;
    p->channelCount = maxch >= 2 ? 2 : 1;
    return 0;
}

/* ---- capture ------------------------------------------------------------------------------ */
struct vox_pa_capture {
    PaStream *stream;
    int pa_ok;
    int rate, dev_ch;
    double dev_rate;
    char name[128];
    SwrContext *swr; /* NULL: the device delivers rate Hz mono directly */
    float *blk;      /* [blk_frames * dev_ch] one device read (swr only; else into pend) */
    unsigned long blk_frames;
    float *pend; /* converted samples not yet returned: pend[pos .. len) */
    size_t pend_pos, pend_len, pend_cap;
    size_t overflows;
};

void vox_pa_capture_close(vox_pa_capture *c) {
    if (!c) return;
    if (c->stream) {
        Pa_AbortStream(c->stream);
        Pa_CloseStream(c->stream);
    }
    if (c->pa_ok) Pa_Terminate();
    swr_free(&c->swr);
    free(c->blk);
    free(c->pend);
    free(c);
}

vox_pa_capture *vox_pa_capture_open(int device, int rate, int flags, vox_error *err) {
    if (rate <= 0) {
        vox_set_error(err, VOX_ERR_ARG, "audio capture: bad rate %d", rate);
        return NULL;
    }
    vox_pa_capture *c = vox_calloc(1, sizeof *c, err);
    if (!c) return NULL;
    c->rate = rate;
    if (pa_init(err)) goto fail;
    c->pa_ok = 1;
    PaDeviceIndex d;
    const PaDeviceInfo *pi;
    if (pick_device(device, 1, &d, &pi, err)) goto fail;
    snprintf(c->name, sizeof c->name, "%s", pi->name);
    PaStreamParameters p = {0};
    p.device = d;
    p.suggestedLatency = pi->defaultHighInputLatency;
    choose_format(&p, 1, rate, flags, pi, &c->dev_rate);
    c->dev_ch = p.channelCount;
    c->blk_frames = (unsigned long)(c->dev_rate / 10); /* 100 ms per device read */
    if (c->blk_frames < 64) c->blk_frames = 64;
    PaError e =
        Pa_OpenStream(&c->stream, &p, NULL, c->dev_rate, c->blk_frames, paClipOff, NULL, NULL);
    if (e != paNoError) {
        c->stream = NULL;
        vox_set_error(err, VOX_ERR_DEVICE,
                      "audio device %d '%s': cannot open capture (%d ch, %.0f "
                      "Hz): %s",
                      d, c->name, c->dev_ch, c->dev_rate, pa_text(e));
        goto fail;
    }
    if (c->dev_ch != 1 || (int)c->dev_rate != rate || c->dev_rate != (double)(int)c->dev_rate) {
        c->swr = make_conv(c->dev_ch, (int)c->dev_rate, 1, rate, err);
        c->blk = vox_malloc(c->blk_frames * (size_t)c->dev_ch * sizeof *c->blk, err);
        int cap = c->swr ? swr_get_out_samples(c->swr, (int)c->blk_frames) : 0;
        c->pend_cap = (size_t)(cap > 0 ? cap : 0) + 256;
        c->pend = vox_malloc(c->pend_cap * sizeof *c->pend, err);
        if (!c->swr || !c->blk || !c->pend) goto fail;
    } else {
        c->pend_cap = c->blk_frames;
        c->pend = vox_malloc(c->pend_cap * sizeof *c->pend, err);
        if (!c->pend) goto fail;
    }
    e = Pa_StartStream(c->stream);
    if (e != paNoError) {
        vox_set_error(err, VOX_ERR_DEVICE, "audio device %d '%s': cannot start capture: %s", d,
                      c->name, pa_text(e));
        goto fail;
    }
    return c;
fail:
    vox_pa_capture_close(c);
    return NULL;
}

static int cap_read_dev(vox_pa_capture *c, float *dst, unsigned long frames, vox_error *err) {
    PaError e = Pa_ReadStream(c->stream, dst, frames);
    if (e == paInputOverflowed) {
        c->overflows++;
        return VOX_OK;
    }
    if (e != paNoError)
        return vox_set_error(err, VOX_ERR_DEVICE, "audio capture from '%s' failed: %s", c->name,
                             pa_text(e));
    return VOX_OK;
}

int vox_pa_capture_read(vox_pa_capture *c, float *out, size_t n, vox_error *err) {
    if (!c || (!out && n)) return vox_set_error(err, VOX_ERR_ARG, "vox_pa_capture_read: NULL");
    size_t done = 0;
    while (done < n) {
        if (c->pend_pos < c->pend_len) {
            size_t k = c->pend_len - c->pend_pos;
            if (k > n - done) k = n - done;
            memcpy(out + done, c->pend + c->pend_pos, k * sizeof *out);
            c->pend_pos += k;
            done += k;
            continue;
        }
        if (!c->swr) { /* mono at the wanted rate: the block is the output */
            if (cap_read_dev(c, c->pend, c->blk_frames, err))
                return err ? err->code : VOX_ERR_DEVICE;
            c->pend_pos = 0;
            c->pend_len = c->blk_frames;
            continue;
        }
        if (cap_read_dev(c, c->blk, c->blk_frames, err)) return err ? err->code : VOX_ERR_DEVICE;
        int want = swr_get_out_samples(c->swr, (int)c->blk_frames);
        if (want > (int)c->pend_cap) { /* never after the first block: the bound is fixed */
            float *np = realloc(c->pend, (size_t)want * sizeof *np);
            if (!np) return vox_set_error(err, VOX_ERR_NOMEM, "audio capture: out of memory");
            c->pend = np;
            c->pend_cap = (size_t)want;
        }
        uint8_t *o = (uint8_t *)c->pend;
        const uint8_t *i = (const uint8_t *)c->blk;
        int got = swr_convert(c->swr, &o, (int)c->pend_cap, &i, (int)c->blk_frames);
        if (got < 0)
            return vox_set_error(err, VOX_ERR_DEVICE, "audio capture from '%s': resampling failed",
                                 c->name);
        c->pend_pos = 0;
        c->pend_len = (size_t)got;
    }
    return VOX_OK;
}

size_t vox_pa_capture_overflows(const vox_pa_capture *c) {
    return c ? c->overflows : 0;
}
double vox_pa_capture_device_rate(const vox_pa_capture *c) {
    return c ? c->dev_rate : 0;
}
int vox_pa_capture_device_channels(const vox_pa_capture *c) {
    return c ? c->dev_ch : 0;
}
const char *vox_pa_capture_device_name(const vox_pa_capture *c) {
    return c ? c->name : "";
}

/* ---- playback ----------------------------------------------------------------------------- */
struct vox_pa_playback {
    PaStream *stream;
    int pa_ok;
    int rate, dev_ch;
    double dev_rate;
    char name[128];
    SwrContext *swr;
    float *conv; /* [conv_cap * dev_ch] converted block */
    size_t conv_cap;
    size_t in_block; /* input samples converted per step */
    size_t underflows;
};

static int play_dev(vox_pa_playback *p, const float *x, unsigned long frames, vox_error *err) {
    if (frames == 0) return VOX_OK;
    PaError e = Pa_WriteStream(p->stream, x, frames);
    if (e == paOutputUnderflowed) {
        p->underflows++;
        return VOX_OK;
    }
    if (e != paNoError)
        return vox_set_error(err, VOX_ERR_DEVICE, "audio playback to '%s' failed: %s", p->name,
                             pa_text(e));
    return VOX_OK;
}

static void playback_free(vox_pa_playback *p) {
    if (!p) return;
    if (p->stream) {
        Pa_AbortStream(p->stream);
        Pa_CloseStream(p->stream);
    }
    if (p->pa_ok) Pa_Terminate();
    swr_free(&p->swr);
    free(p->conv);
    free(p);
}

vox_pa_playback *vox_pa_playback_open(int device, int rate, int flags, vox_error *err) {
    if (rate <= 0) {
        vox_set_error(err, VOX_ERR_ARG, "audio playback: bad rate %d", rate);
        return NULL;
    }
    vox_pa_playback *p = vox_calloc(1, sizeof *p, err);
    if (!p) return NULL;
    p->rate = rate;
    if (pa_init(err)) goto fail;
    p->pa_ok = 1;
    PaDeviceIndex d;
    const PaDeviceInfo *pi;
    if (pick_device(device, 0, &d, &pi, err)) goto fail;
    snprintf(p->name, sizeof p->name, "%s", pi->name);
    PaStreamParameters sp = {0};
    sp.device = d;
    sp.suggestedLatency = pi->defaultHighOutputLatency;
    choose_format(&sp, 0, rate, flags, pi, &p->dev_rate);
    p->dev_ch = sp.channelCount;
    unsigned long frames = (unsigned long)(p->dev_rate / 50);
    PaError e = Pa_OpenStream(&p->stream, NULL, &sp, p->dev_rate, frames, paClipOff, NULL, NULL);
    if (e != paNoError) {
        p->stream = NULL;
        vox_set_error(err, VOX_ERR_DEVICE,
                      "audio device %d '%s': cannot open playback (%d ch, "
                      "%.0f Hz): %s",
                      d, p->name, p->dev_ch, p->dev_rate, pa_text(e));
        goto fail;
    }
    if (p->dev_ch != 1 || (int)p->dev_rate != rate) {
        p->swr = make_conv(1, rate, p->dev_ch, (int)p->dev_rate, err);
        if (!p->swr) goto fail;
        p->in_block = (size_t)rate / 50 + 1;
        int cap = swr_get_out_samples(p->swr, (int)p->in_block);
        p->conv_cap = (size_t)(cap > 0 ? cap : 0) + 256;
        p->conv = vox_malloc(p->conv_cap * (size_t)p->dev_ch * sizeof *p->conv, err);
        if (!p->conv) goto fail;
    }
    e = Pa_StartStream(p->stream);
    if (e != paNoError) {
        vox_set_error(err, VOX_ERR_DEVICE, "audio device %d '%s': cannot start playback: %s", d,
                      p->name, pa_text(e));
        goto fail;
    }
    return p;
fail:
    playback_free(p);
    return NULL;
}

/* Convert x[n] (NULL = flush) through swr and write. */
static int play_conv(vox_pa_playback *p, const float *x, size_t n, vox_error *err) {
    for (;;) {
        int want = swr_get_out_samples(p->swr, (int)n);
        if (want > (int)p->conv_cap) {
            float *nc = realloc(p->conv, (size_t)want * (size_t)p->dev_ch * sizeof *nc);
            if (!nc) return vox_set_error(err, VOX_ERR_NOMEM, "audio playback: out of memory");
            p->conv = nc;
            p->conv_cap = (size_t)want;
        }
        uint8_t *o = (uint8_t *)p->conv;
        const uint8_t *i = (const uint8_t *)x;
        int got = swr_convert(p->swr, &o, (int)p->conv_cap, x ? &i : NULL, (int)n);
        if (got < 0)
            return vox_set_error(err, VOX_ERR_DEVICE, "audio playback to '%s': resampling failed",
                                 p->name);
        if (play_dev(p, p->conv, (unsigned long)got, err)) return err ? err->code : VOX_ERR_DEVICE;
        if (x || got == 0) return VOX_OK;
    }
}

int vox_pa_playback_write(vox_pa_playback *p, const float *x, size_t n, vox_error *err) {
    if (!p || (!x && n)) return vox_set_error(err, VOX_ERR_ARG, "vox_pa_playback_write: NULL");
    size_t done = 0;
    while (done < n) {
        size_t k = n - done;
        if (p->swr) {
            if (k > p->in_block) k = p->in_block;
            if (play_conv(p, x + done, k, err)) return err ? err->code : VOX_ERR_DEVICE;
        } else {
            if (k > 1u << 20) k = 1u << 20;
            if (play_dev(p, x + done, (unsigned long)k, err))
                return err ? err->code : VOX_ERR_DEVICE;
        }
        done += k;
    }
    return VOX_OK;
}

size_t vox_pa_playback_underflows(const vox_pa_playback *p) {
    return p ? p->underflows : 0;
}
double vox_pa_playback_device_rate(const vox_pa_playback *p) {
    return p ? p->dev_rate : 0;
}

int vox_pa_playback_close(vox_pa_playback *p, vox_error *err) {
    if (!p) return VOX_OK;
    int rc = VOX_OK;
    if (p->swr) rc = play_conv(p, NULL, 0, err);
    if (p->stream) {
        PaError e = Pa_StopStream(p->stream); /* returns after the buffered audio played */
        if (e != paNoError && rc == VOX_OK)
            rc = vox_set_error(err, VOX_ERR_DEVICE, "audio playback to '%s': stop failed: %s",
                               p->name, pa_text(e));
        Pa_CloseStream(p->stream);
        p->stream = NULL;
    }
    playback_free(p);
    return rc;
}

int vox_pa_play(int device, const float *x, size_t n, int rate, vox_error *err) {
    vox_pa_playback *p = vox_pa_playback_open(device, rate, 0, err);
    if (!p) return err ? err->code : VOX_ERR_DEVICE;
    int rc = vox_pa_playback_write(p, x, n, err);
    vox_error e2 = {0};
    int rc2 = vox_pa_playback_close(p, &e2);
    if (rc == VOX_OK && rc2 != VOX_OK) {
        if (err) *err = e2;
        rc = rc2;
    }
    return rc;
}
