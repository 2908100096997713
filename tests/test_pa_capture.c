/* test_pa_capture.c - drives vox_pa for tests/test_pa.sh, which sets up the ALSA configuration
 * (file plugin feeding a known tone, an output file, or no devices at all) in the environment.
 *
 *   test_pa_capture list                    print the devices
 *   test_pa_capture capture RATE N [devrate]  capture N samples at RATE (devrate: force the
 *                                           device's default rate + our resampler); prints rms,
 *                                           frequency (positive zero crossings), overflows
 *   test_pa_capture play RATE SECONDS [devrate]  play a 440 Hz sine of amplitude 0.5
 *   test_pa_capture find SPEC               vox_pa_find_device(SPEC) for an input: "index N"
 *   test_pa_capture nostart                 VOX_PA_NO_START: a read before start, start twice,
 *                                           a read after
 * Failures print "error: <message>" on stdout and exit 2.
 *
 * Without arguments (as ctest runs it) it only checks argument errors, which need no device,
 * and prints that the device scenarios are in test_pa.sh. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_pa.h"
#include "vox_test.h"

static int fail(const vox_error *e) {
    printf("error: %s\n", e->msg);
    return 2;
}

int main(int argc, char **argv) {
    vox_pa_global_init(getenv("VOX_PA_VERBOSE") != NULL);
    vox_error err = {0};
    if (argc < 2) {
        vox_test_state ts = {0};
        vox_pa_capture *c = vox_pa_capture_open(VOX_PA_DEFAULT_DEVICE, 0, 0, &err);
        VOX_CHECK(&ts, c == NULL && err.code == VOX_ERR_ARG, "rate 0 accepted");
        vox_pa_playback *p = vox_pa_playback_open(VOX_PA_DEFAULT_DEVICE, -5, 0, &err);
        VOX_CHECK(&ts, p == NULL && err.code == VOX_ERR_ARG, "rate -5 accepted");
        c = vox_pa_capture_open(100000, 16000, 0, &err);
        VOX_CHECK(&ts,
                  c == NULL && (strstr(err.msg, "audio device 100000 does not exist") ||
                                strstr(err.msg, "no audio input device found")),
                  "device 100000: '%s'", err.msg);
        printf("  device 100000 -> %s\n", err.msg);
        printf("(device scenarios with ALSA plugins: tests/test_pa.sh)\n");
        return vox_test_done(&ts, "test_pa_capture");
    }
    if (!strcmp(argv[1], "list")) {
        vox_pa_device *d = NULL;
        int n = 0;
        if (vox_pa_list_devices(&d, &n, &err)) return fail(&err);
        printf("devices %d\n", n);
        for (int i = 0; i < n; i++)
            printf("  %d '%s' [%s] in %d out %d rate %.0f%s%s\n", d[i].index, d[i].name,
                   d[i].host_api, d[i].max_input_channels, d[i].max_output_channels,
                   d[i].default_rate, d[i].is_default_input ? " default-in" : "",
                   d[i].is_default_output ? " default-out" : "");
        free(d);
        return 0;
    }
    if (!strcmp(argv[1], "find") && argc >= 3) { /* vox_pa_find_device for an input */
        int idx = -1;
        if (vox_pa_find_device(argv[2], 1, &idx, &err)) return fail(&err);
        printf("index %d\n", idx);
        return 0;
    }
    if (!strcmp(argv[1], "nostart")) { /* VOX_PA_NO_START: read before start fails, after works */
        vox_pa_capture *c =
            vox_pa_capture_open(VOX_PA_DEFAULT_DEVICE, 16000, VOX_PA_NO_START, &err);
        if (!c) return fail(&err);
        float x[1600];
        int before = vox_pa_capture_read(c, x, 1600, &err);
        printf("before start: %s\n", before ? err.msg : "read ok");
        int rc = vox_pa_capture_start(c, &err) || vox_pa_capture_start(c, &err) ||
                 vox_pa_capture_read(c, x, 1600, &err);
        printf("after start: %s\n", rc ? err.msg : "read ok");
        vox_pa_capture_close(c);
        return rc ? 2 : 0;
    }
    if (!strcmp(argv[1], "capture") && argc >= 4) {
        int rate = atoi(argv[2]);
        size_t n = (size_t)atol(argv[3]);
        int flags = argc > 4 && !strcmp(argv[4], "devrate") ? VOX_PA_DEVICE_RATE : 0;
        vox_pa_capture *c = vox_pa_capture_open(VOX_PA_DEFAULT_DEVICE, rate, flags, &err);
        if (!c) return fail(&err);
        float *x = malloc(n * sizeof *x);
        if (!x) return 3;
        /* read in uneven pieces to exercise the pending buffer */
        size_t done = 0, piece = 1;
        int rc = 0;
        while (done < n && rc == 0) {
            size_t k = piece < n - done ? piece : n - done;
            rc = vox_pa_capture_read(c, x + done, k, &err);
            done += k;
            piece = piece * 3 + 1;
        }
        if (rc) {
            free(x);
            vox_pa_capture_close(c);
            return fail(&err);
        }
        /* skip the first 10 % (resampler start-up) */
        /* frequency: (crossings - 1) / time between the first and the last positive-going
         * zero crossing, crossing times linearly interpolated between samples */
        double s = 0, t0 = -1, t1 = -1;
        size_t z = 0, from = n / 10;
        for (size_t i = from; i < n; i++) {
            s += (double)x[i] * x[i];
            if (i > from && x[i - 1] < 0 && x[i] >= 0) {
                double t = (double)(i - 1) + x[i - 1] / (double)(x[i - 1] - x[i]);
                if (t0 < 0) t0 = t;
                t1 = t;
                z++;
            }
        }
        double freq = z > 1 ? (double)(z - 1) * rate / (t1 - t0) : 0.0;
        const char *dump = getenv("VOX_PA_DUMP"); /* debugging: raw float32 of the capture */
        FILE *df = dump ? fopen(dump, "wb") : NULL;
        if (df) fwrite(x, sizeof *x, n, df), fclose(df);
        printf("capture device '%s' at %.0f Hz %d ch -> %d Hz: n %zu rms %.5f freq %.1f "
               "overflows %zu\n",
               vox_pa_capture_device_name(c), vox_pa_capture_device_rate(c),
               vox_pa_capture_device_channels(c), rate, n, sqrt(s / (double)(n - from)), freq,
               vox_pa_capture_overflows(c));
        free(x);
        vox_pa_capture_close(c);
        return 0;
    }
    if (!strcmp(argv[1], "play") && argc >= 4) {
        int rate = atoi(argv[2]);
        size_t n = (size_t)(atof(argv[3]) * rate);
        float *x = malloc((n ? n : 1) * sizeof *x);
        if (!x) return 3;
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(0.5 * sin(2 * M_PI * 440.0 * i / rate));
        int flags = argc > 4 && !strcmp(argv[4], "devrate") ? VOX_PA_DEVICE_RATE : 0;
        vox_pa_playback *p = vox_pa_playback_open(VOX_PA_DEFAULT_DEVICE, rate, flags, &err);
        if (!p) {
            free(x);
            return fail(&err);
        }
        double dr = vox_pa_playback_device_rate(p);
        int rc = vox_pa_playback_write(p, x, n, &err);
        size_t under = vox_pa_playback_underflows(p);
        vox_error e2 = {0};
        int rc2 = vox_pa_playback_close(p, &e2);
        free(x);
        if (rc) return fail(&err);
        if (rc2) return fail(&e2);
        printf("played %zu samples at %d Hz (device %.0f Hz), underflows %zu\n", n, rate, dr,
               under);
        return 0;
    }
    fprintf(stderr,
            "usage: test_pa_capture [list | capture RATE N [devrate] | play RATE SEC [devrate]]\n");
    return 2;
}
