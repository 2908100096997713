/* vox-transcribe - offline transcription of audio files with a Voxtral Realtime model (any
 * format libav reads, resampled to the model rate; "-" reads stdin).
 * Transcript on stdout, diagnostics on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_asr.h"
#include "vox_backend.h"
#include "cpu/vox_blas.h"
#include "vox_decode.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: vox-transcribe -m MODEL_DIR [options] FILE...\n"
            "Transcribes audio files (wav, flac, mp3, ogg, m4a, ...; resampled to 16 kHz;\n"
            "\"-\" = stdin) with a Voxtral Realtime model directory\n"
            "(params.json, consolidated.safetensors, tekken.json).\n\n"
            "  -m, --model DIR     model directory (required)\n"
            "  --delay MS          transcription delay: 80..1200 in steps of 80, or 2400\n"
            "                      (default: tekken.json audio.transcription_delay_ms, 480)\n"
            "  --tokens            print the raw token id of every decoder step instead of text\n"
            "  --device D          cpu, cuda or auto (default auto)\n"
            "  --threads N         CPU threads (default: all online CPUs)\n"
            "  -v                  verbose diagnostics on stderr (timings)\n"
            "  -h, --help          this text\n");
}

int main(int argc, char **argv) {
    vox_blas_ensure_core(argc, argv);
    const char *model = NULL, *dev_s = "auto";
    int delay = 0, tokens = 0, threads = 0, verbose = 0;
    const char *files[256];
    int nf = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && i + 1 < argc) model = argv[++i];
        else if (!strcmp(a, "--delay") && i + 1 < argc) delay = atoi(argv[++i]);
        else if (!strcmp(a, "--tokens")) tokens = 1;
        else if (!strcmp(a, "--device") && i + 1 < argc) dev_s = argv[++i];
        else if (!strcmp(a, "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(a, "-v")) verbose = 1;
        else if (a[0] == '-') {
            fprintf(stderr, "vox-transcribe: unknown option '%s' (see --help)\n", a);
            return 2;
        } else if (nf < 256) files[nf++] = a;
    }
    if (!model || nf == 0) {
        usage(stderr);
        return 2;
    }
    vox_decode_global_init(verbose);
    vox_error e = {0};
    vox_device dev;
    if (vox_device_parse(dev_s, &dev, &e)) {
        fprintf(stderr, "vox-transcribe: %s\n", e.msg);
        return 2;
    }
    vox_log_level log = verbose ? VOX_LOG_VERBOSE : VOX_LOG_INFO;
    vox_backend *be = vox_backend_create(dev, threads, log, &e);
    if (!be) {
        fprintf(stderr, "vox-transcribe: %s\n", e.msg);
        return 1;
    }
    if (verbose) fprintf(stderr, "vox-transcribe: backend %s\n", be->ops->describe(be));
    double t0 = vox_time_now();
    vox_asr_model *m = vox_asr_model_load(model, be, log, &e);
    if (!m) {
        fprintf(stderr, "vox-transcribe: %s\n", e.msg);
        vox_backend_destroy(be);
        return 1;
    }
    if (verbose) fprintf(stderr, "vox-transcribe: model loaded in %.2f s\n", vox_time_now() - t0);
    int status = 0;
    for (int f = 0; f < nf; f++) {
        float *pcm = NULL;
        struct {
            size_t n_frames;
            int sample_rate;
        } wi;
        vox_decode_opts dopt = {vox_asr_model_info(m)->sample_rate, 0, 0};
        vox_decode_info dinf;
        int drc = !strcmp(files[f], "-") ? vox_decode_fd(0, "stdin", &dopt, &pcm, &wi.n_frames, &dinf, &e)
                                         : vox_decode_file(files[f], &dopt, &pcm, &wi.n_frames, &dinf, &e);
        if (drc) {
            fprintf(stderr, "vox-transcribe: %s\n", e.msg);
            status = 1;
            continue;
        }
        wi.sample_rate = dopt.target_rate;
        if (dinf.truncated) fprintf(stderr, "vox-transcribe: warning: %s\n", dinf.warning);
        if (verbose)
            fprintf(stderr, "vox-transcribe: %s: %s/%s %d Hz x %d -> %d Hz (%s)\n", files[f], dinf.container,
                    dinf.codec, dinf.src_rate, dinf.src_channels, dinf.out_rate, dinf.resampler);
        vox_asr_stream *s = vox_asr_stream_create(m, delay, &e);
        double t1 = vox_time_now();
        int rc = s ? vox_asr_feed(s, pcm, wi.n_frames, &e) : 1;
        if (!rc) rc = vox_asr_finish(s, &e);
        if (rc) {
            fprintf(stderr, "vox-transcribe: %s: %s\n", files[f], e.msg);
            status = 1;
        } else if (tokens) {
            vox_asr_token tk[64];
            int k, first = 1;
            while ((k = vox_asr_get_tokens(s, tk, 64)) > 0)
                for (int i = 0; i < k; i++) {
                    printf("%s%d", first ? "" : " ", tk[i].id);
                    first = 0;
                }
            printf("\n");
        } else {
            size_t len;
            const char *txt = vox_asr_get_text(s, &len);
            /* strip surrounding spaces, as the reference decode does */
            while (len && (*txt == ' ' || *txt == '\n')) txt++, len--;
            while (len && (txt[len - 1] == ' ' || txt[len - 1] == '\n')) len--;
            fwrite(txt, 1, len, stdout);
            printf("\n");
        }
        if (verbose && !rc) {
            vox_asr_stats st;
            vox_asr_stream_stats(s, &st);
            double dur = (double)wi.n_frames / wi.sample_rate, wall = vox_time_now() - t1;
            fprintf(stderr, "vox-transcribe: %s: %.2f s of audio in %.2f s (RTF %.3f); encoder %.2f s "
                    "(%lld frames), prefill %.2f s, decoder %lld steps %.1f ms/step\n", files[f], dur, wall,
                    wall / dur, st.enc_sec, (long long)st.enc_frames, st.prefill_sec, (long long)st.dec_passes,
                    st.dec_passes ? 1e3 * st.dec_sec / (double)st.dec_passes : 0.0);
        }
        vox_asr_stream_free(s);
        free(pcm);
    }
    vox_asr_model_free(m);
    vox_backend_destroy(be);
    return status;
}
