/* vox_pa.h - microphone capture and speaker playback through PortAudio (blocking API).
 *
 * Capture delivers float32 mono at the requested rate (16 kHz for ASR). The stream is opened
 * at that rate in mono when the device accepts it (Pa_IsFormatSupported); otherwise, or with
 * VOX_PA_DEVICE_RATE, at the device's default rate and channel count (at most 2), and our
 * side averages the channels and resamples with libswresample (soxr HQ when available, as
 * vox_decode). Reads are blocking (Pa_ReadStream, no callback thread): vox_pa_capture_read
 * returns exactly the number of samples asked for. The device is always read in whole blocks of
 * 100 ms (the stream's framesPerBuffer) and the remainder kept for the next call, so callers may
 * use any read size. (With the unpaced ALSA file plugin of the tests, reads of arbitrary sizes
 * or 20/80 ms blocks showed phase jumps in the captured tone; 100 ms blocks were clean, see
 * docs/audio.md.) Nothing is dropped silently: when
 * PortAudio reports that input was lost (paInputOverflowed, i.e. the caller did not read fast
 * enough) the read still succeeds and the loss is COUNTED in vox_pa_capture_overflows(); the
 * caller decides whether to warn or stop.
 *
 * Playback takes float32 mono at its rate (24 kHz for TTS), resampled the same way when the
 * device refuses that rate; underflows (the caller wrote too slowly, the device played
 * silence) are counted. vox_pa_playback_close drains what was written before returning.
 *
 * Device errors (one line): "no audio input device found (PortAudio sees 0 devices)",
 * "no default audio input device (PortAudio sees 2 devices, none is an input)",
 * "audio device 7 does not exist (PortAudio sees 2 devices)", "audio device 1 'x' has no input
 * channels", and PortAudio's own text for open/start failures, always naming the device.
 *
 * Global state: PortAudio is initialised per object (Pa_Initialize/Pa_Terminate are
 * reference-counted by PortAudio). ALSA and JACK print diagnostics to stderr while PortAudio
 * probes devices ("ALSA lib pcm.c: Unknown PCM ...", "jack server is not running"). Programs
 * call vox_pa_global_init(verbose) once at start: with verbose == 0 it installs a silent
 * libasound error handler (snd_lib_error_set_handler) and, if libjack is loaded in the process
 * (PortAudio's JACK host API), silent jack error/info functions looked up with dlsym (no link
 * dependency on libjack). These handlers are process-wide library settings and the only global
 * state this module touches; verbose != 0 restores the defaults.
 *
 * Ownership: each vox_pa_capture / vox_pa_playback owns its PortAudio stream and scratch
 * buffers (allocated at open, none per read) and belongs to one thread at a time. PortAudio's
 * Pa_Initialize/Pa_Terminate are not thread-safe: open and close these objects (and list
 * devices) from one thread; reads/writes on different objects may run on different threads. */
#ifndef VOX_PA_H
#define VOX_PA_H

#include <stddef.h>

#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

void vox_pa_global_init(int verbose);

typedef struct vox_pa_device {
    int index;         /* PortAudio device index (pass to the open functions) */
    char name[128];    /* device name */
    char host_api[32]; /* "ALSA", "JACK Audio Connection Kit", "OSS", ... */
    int max_input_channels, max_output_channels;
    double default_rate; /* Hz */
    int is_default_input, is_default_output;
} vox_pa_device;

/* All devices into *devs (malloc'ed [*n], caller frees; NULL and 0 when there are none, which
 * is not an error). */
int vox_pa_list_devices(vox_pa_device **devs, int *n, vox_error *err);

/* Resolve a device given by the user: `spec` all digits is an index (checked to exist); else
 * the device whose name equals spec, else the only device whose name contains spec (both
 * case-sensitive, among devices with channels in the wanted direction: input != 0 capture).
 * Errors name spec and what went wrong: "no audio input device named 'x' (PortAudio sees 2
 * devices: 'pulse', 'default')", "audio input device name 'p' is ambiguous: 'pulse',
 * 'pipewire'". On success *index is a PortAudio index for the open functions. */
int vox_pa_find_device(const char *spec, int input, int *index, vox_error *err);

enum { VOX_PA_DEFAULT_DEVICE = -1 };
enum {
    VOX_PA_DEVICE_RATE = 1, /* flag: always open at the device's default rate + resample */
    VOX_PA_NO_START = 2     /* capture flag: open only; vox_pa_capture_start starts the stream */
};

/* ---- capture ------------------------------------------------------------------------------ */
typedef struct vox_pa_capture vox_pa_capture;

/* Open and start capture from `device` (VOX_PA_DEFAULT_DEVICE or an index) delivering mono
 * float32 at `rate` Hz. With VOX_PA_NO_START the device is opened (so a missing or unusable
 * device is reported at once) but not started: audio is recorded from vox_pa_capture_start on,
 * so a slow step between open and the first read (loading a model) cannot overflow the
 * device buffer. */
vox_pa_capture *vox_pa_capture_open(int device, int rate, int flags, vox_error *err);
/* Start a stream opened with VOX_PA_NO_START (no-op if it runs already); reading a stream
 * that was not started is an error. Call it on the thread that opened the stream. */
int vox_pa_capture_start(vox_pa_capture *c, vox_error *err);
/* Block until n samples (at the requested rate) are in out. */
int vox_pa_capture_read(vox_pa_capture *c, float *out, size_t n, vox_error *err);
/* Times PortAudio reported lost input since open. */
size_t vox_pa_capture_overflows(const vox_pa_capture *c);
/* Rate and channels the device stream actually runs at, and the device name. */
double vox_pa_capture_device_rate(const vox_pa_capture *c);
int vox_pa_capture_device_channels(const vox_pa_capture *c);
const char *vox_pa_capture_device_name(const vox_pa_capture *c);
/* The stream's input latency in seconds as PortAudio reports it (Pa_GetStreamInfo): how long
 * a sample may wait in the device/driver buffers before a read returns it. */
double vox_pa_capture_latency(const vox_pa_capture *c);
void vox_pa_capture_close(vox_pa_capture *c);

/* ---- playback ----------------------------------------------------------------------------- */
typedef struct vox_pa_playback vox_pa_playback;

vox_pa_playback *vox_pa_playback_open(int device, int rate, int flags, vox_error *err);
int vox_pa_playback_write(vox_pa_playback *p, const float *x, size_t n, vox_error *err);
size_t vox_pa_playback_underflows(const vox_pa_playback *p);
double vox_pa_playback_device_rate(const vox_pa_playback *p);
/* Plays what is still buffered, then closes. Returns the first error of the final drain. */
int vox_pa_playback_close(vox_pa_playback *p, vox_error *err);

/* Convenience: open the default/given output, play x[n] at rate, drain, close. */
int vox_pa_play(int device, const float *x, size_t n, int rate, vox_error *err);

#ifdef __cplusplus
}
#endif
#endif /* VOX_PA_H */
