/* vox-tts - text to speech with a Voxtral TTS model directory (params.json,
 * consolidated.safetensors, tekken.json, voice_embedding/<name>.pt).
 *
 * Text from the arguments, -f FILE or stdin; split into chunks of at most --chunk-chars bytes
 * by vox_tts_split_text (sentence ends, then clause marks, spaces, UTF-8 boundaries; the rules
 * are in vox_tts.h); voices listed by vox_tts_list_voices; --ref AUDIO through
 * vox_tts_voice_from_file (codec encoder). Each chunk is one tts session (prompt + prefill +
 * frames); each frame's codes are decoded through the codec as it arrives and the PCM goes out
 * at once through vox_audio_stream (audio/): WAV, FLAC, MP3, Ogg Vorbis, Opus with the
 * settings of vox_audio_write, headers patched at the end (the file is seekable), raw s16le on
 * stdout (-o -), and --play (PortAudio).
 * Exit: 0 ok, 1 runtime failure (model, voice file, output), 2 usage, 130 interrupted (SIGINT:
 * the audio made so far is written). Diagnostics on stderr. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu/vox_blas.h"
#include "vox_audio_stream.h"
#include "vox_audio_write.h"
#include "vox_backend.h"
#include "vox_codec.h"
#include "vox_decode.h"
#include "vox_pa.h"
#include "vox_params.h"
#include "vox_safetensors.h"
#include "vox_tekken.h"
#include "vox_tts.h"

#define PROG "vox-tts"

/* Set by the SIGINT handler, read by the frame loop (the only global: a signal flag). */
static volatile sig_atomic_t g_interrupted = 0;
static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: " PROG " -m MODEL_DIR [options] [TEXT...]\n"
            "Speaks TEXT (the arguments joined by spaces; else -f FILE; else stdin) with a\n"
            "Voxtral TTS model directory. Output: 24 kHz mono.\n\n"
            "  -m, --model DIR       model directory (required)\n"
            "  -f, --file FILE       read the text from FILE\n"
            "  -o, --output FILE     .wav, .flac, .mp3, .ogg/.oga or .opus by extension;\n"
            "                        '-' = raw s16le PCM on stdout\n"
            "  --play                play through the default audio output (PortAudio)\n"
            "  --voice NAME          preset voice (default: the first voice of params.json)\n"
            "  --list-voices         print the voice names (and language prefix) and exit\n"
            "  --voice-file F        voice embedding from a .pt or .safetensors file\n"
            "  --ref AUDIO           clone a voice from reference audio (any format/rate; needs\n"
            "                        codec encoder weights; the released checkpoint has none)\n"
            "  --seed N              flow-matching noise seed (default 0; chunk i uses N + i)\n"
            "  --cfg A               classifier-free guidance alpha (default 1.2)\n"
            "  --steps N             flow-matching Euler steps (default: params.json, else 7)\n"
            "  --max-frames N        frame cap per chunk (default 1000 = 80 s)\n"
            "  --chunk-chars N       max bytes of text per chunk (default 400)\n"
            "  --device D            cpu, cuda or auto (default auto)\n"
            "  --threads N           CPU threads (default: all online CPUs)\n"
            "  -v                    verbose diagnostics on stderr (chunks, frames, timings)\n"
            "  -h, --help            this text\n"
            "Exit status: 0 ok, 1 runtime failure, 2 usage error, 130 interrupted.\n");
}

/* ---- text --------------------------------------------------------------------------------- */

static char *read_stream(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b) return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
        size_t k = fread(b + n, 1, 4096, f);
        n += k;
        if (k < 4096) break;
    }
    if (ferror(f)) {
        free(b);
        return NULL;
    }
    b[n] = 0;
    *len = n;
    return b;
}

/* ---- output ------------------------------------------------------------------------------- */

typedef struct {
    const char *path;     /* file name, "stdout" for -o - */
    FILE *f;              /* the output file or stdout; NULL without -o */
    int is_stdout;
    int werr;             /* errno of the last failed write */
    vox_audio_stream *as; /* encoder writing into f */
    size_t n;             /* samples written */
    vox_pa_playback *pb;
    int rate;
} sink;

/* vox_audio_stream callbacks over the FILE: append, and rewrite bytes already written (header
 * fix-ups at the end; never used for stdout, which may be a pipe). */
static int sink_fwrite(void *ud, const void *p, size_t n) {
    sink *s = ud;
    errno = 0;
    if (fwrite(p, 1, n, s->f) != n || (s->is_stdout && fflush(s->f))) {
        s->werr = errno ? errno : EIO;
        return 1;
    }
    return 0;
}

static int sink_patch(void *ud, uint64_t off, const void *p, size_t n) {
    sink *s = ud;
    errno = 0;
    if (fflush(s->f) || fseeko(s->f, (off_t)off, SEEK_SET) || fwrite(p, 1, n, s->f) != n ||
        fflush(s->f) || fseeko(s->f, 0, SEEK_END)) {
        s->werr = errno ? errno : EIO;
        return 1;
    }
    return 0;
}

/* Append x[n] to every output. */
static int sink_write(sink *s, const float *x, size_t n, vox_error *e) {
    if (s->as && vox_audio_stream_write(s->as, x, n, e)) {
        if (e->code == VOX_ERR_IO)
            vox_set_error(e, VOX_ERR_IO, "%s: write failed: %s", s->path, strerror(s->werr));
        return e->code;
    }
    if (s->pb && vox_pa_playback_write(s->pb, x, n, e)) return e->code ? e->code : VOX_ERR_DEVICE;
    s->n += n;
    return 0;
}

/* ---- main --------------------------------------------------------------------------------- */

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    vox_blas_ensure_core(argc, argv);
    const char *model = NULL, *text_file = NULL, *out_path = NULL, *voice = NULL,
               *voice_file = NULL, *ref = NULL, *dev_s = "auto";
    int play = 0, list = 0, verbose = 0;
    long seed = 0, steps = 0, max_frames = 1000, chunk_chars = 400, threads = 0;
    double cfg = 1.2;
    const char **words = calloc((size_t)argc + 1, sizeof *words);
    int nw = 0;
    if (!words) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(words);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) model = argv[++i];
        else if ((!strcmp(a, "-f") || !strcmp(a, "--file")) && has) text_file = argv[++i];
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has) out_path = argv[++i];
        else if (!strcmp(a, "--play")) play = 1;
        else if (!strcmp(a, "--voice") && has) voice = argv[++i];
        else if (!strcmp(a, "--list-voices")) list = 1;
        else if (!strcmp(a, "--voice-file") && has) voice_file = argv[++i];
        else if (!strcmp(a, "--ref") && has) ref = argv[++i];
        else if (!strcmp(a, "--seed") && has) bad = parse_int(argv[++i], 0, 0x7fffffffL, &seed);
        else if (!strcmp(a, "--cfg") && has) {
            char *end;
            cfg = strtod(argv[++i], &end);
            bad = *end || end == argv[i] || !(cfg > 0) || cfg > 100;
        } else if (!strcmp(a, "--steps") && has) bad = parse_int(argv[++i], 1, 1000, &steps);
        else if (!strcmp(a, "--max-frames") && has)
            bad = parse_int(argv[++i], 1, 1000000, &max_frames);
        else if (!strcmp(a, "--chunk-chars") && has)
            bad = parse_int(argv[++i], 16, 1000000, &chunk_chars);
        else if (!strcmp(a, "--device") && has) dev_s = argv[++i];
        else if (!strcmp(a, "--threads") && has) bad = parse_int(argv[++i], 0, 4096, &threads);
        else if (!strcmp(a, "-v")) verbose = 1;
        else if (!strcmp(a, "--")) {
            while (++i < argc) words[nw++] = argv[i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, PROG ": unknown option or missing value '%s' (see --help)\n", a);
            free(words);
            return 2;
        } else words[nw++] = a;
        if (bad) {
            fprintf(stderr, PROG ": bad value '%s' for %s (see --help)\n", argv[i], a);
            free(words);
            return 2;
        }
    }
    const char *uerr = NULL;
    if (!model) uerr = "-m MODEL_DIR is required";
    else if (!list && !out_path && !play) uerr = "no output: give -o FILE, -o - or --play";
    else if (!!voice + !!voice_file + !!ref > 1)
        uerr = "--voice, --voice-file and --ref exclude each other";
    else if (nw && text_file) uerr = "TEXT arguments and -f FILE exclude each other";
    else if (out_path && strcmp(out_path, "-") && !vox_audio_write_supported(out_path))
        uerr = "-o: unsupported extension (.wav, .flac, .mp3, .ogg, .oga, .opus, or '-')";
    if (uerr) {
        fprintf(stderr, PROG ": %s (see --help)\n", uerr);
        free(words);
        return 2;
    }

    /* model kind and voices (no weights needed) */
    vox_error e = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/tekken.json", model);
    vox_tts_voice_list vl = {0};
    vox_tekken *tok = NULL;
    int prc = vox_tts_list_voices(model, NULL, &vl, &e);
    if (!prc && !(tok = vox_tekken_load(path, &e))) prc = e.code ? e.code : 1;
    if (prc) {
        int asr = prc == VOX_ERR_UNSUPPORTED && strstr(e.msg, "(ASR)");
        fprintf(stderr, PROG ": %s%s\n", e.msg, asr ? "; use vox-transcribe" : "");
        vox_tts_voice_list_free(&vl);
        free(words);
        return prc == VOX_ERR_UNSUPPORTED ? 2 : 1;
    }
    int status = 0;
    char *text = NULL;
    vox_tts_span *chunks = NULL;
    size_t n_chunks = 0;
    vox_backend *be = NULL;
    vox_tts_model *tm = NULL;
    vox_params *pp = NULL;
    vox_st_file *st = NULL;
    vox_codec_model *cm = NULL;
    vox_codec_state *cs = NULL;
    vox_tts_voice tv = {0};
    sink out = {0};
    float *pcm = NULL;
    int32_t *ids = NULL;
    int interrupted = 0;
    out.rate = 24000;

    if (list) {
        for (int i = 0; i < vl.n; i++) {
            if (vl.v[i].lang[0]) printf("%s\t%s\n", vl.v[i].name, vl.v[i].lang);
            else printf("%s\n", vl.v[i].name);
        }
        goto done;
    }
    if (!voice && !voice_file && !ref) {
        if (vl.n == 0) {
            fprintf(stderr, PROG ": %s has no voices (params.json voice map and tekken.json "
                            "voice_num_audio_tokens are empty); use --voice-file F\n", model);
            status = 2;
            goto done;
        }
        voice = vl.v[0].name;
    }
    if (voice) {
        int found = 0;
        for (int i = 0; i < vl.n && !found; i++) found = !strcmp(vl.v[i].name, voice);
        if (!found) {
            fprintf(stderr, PROG ": unknown voice '%s' (voices:", voice);
            for (int i = 0; i < vl.n; i++) fprintf(stderr, "%s %s", i ? "," : "", vl.v[i].name);
            fprintf(stderr, ")\n");
            status = 2;
            goto done;
        }
    }

    /* text */
    size_t tlen = 0;
    if (nw) {
        size_t n = 1;
        for (int i = 0; i < nw; i++) n += strlen(words[i]) + 1;
        text = malloc(n);
        if (text) {
            text[0] = 0;
            for (int i = 0; i < nw; i++) {
                if (i) strcat(text, " ");
                strcat(text, words[i]);
            }
            tlen = strlen(text);
        }
    } else if (text_file) {
        FILE *f = fopen(text_file, "rb");
        if (!f) {
            fprintf(stderr, PROG ": %s: cannot open: %s\n", text_file, strerror(errno));
            status = 1;
            goto done;
        }
        text = read_stream(f, &tlen);
        fclose(f);
    } else {
        text = read_stream(stdin, &tlen);
    }
    if (!text) {
        fprintf(stderr, PROG ": reading the text failed\n");
        status = 1;
        goto done;
    }
    for (size_t i = 0; i < tlen; i++)
        if (!text[i]) text[i] = ' ';
    if (vox_tts_split_text(text, tlen, (size_t)chunk_chars, &chunks, &n_chunks, &e)) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        status = 1;
        goto done;
    }
    if (n_chunks == 0) {
        fprintf(stderr, PROG ": empty text (give TEXT, -f FILE or text on stdin)\n");
        status = 2;
        goto done;
    }

    /* output opened before the model loads: an unwritable path fails at once. The rate is
     * the codec's: read it now (params.json) so the stream starts before the model loads. */
    if (out_path) {
        const char *fmt = "pcm";
        if (!strcmp(out_path, "-")) {
            if (isatty(STDOUT_FILENO)) {
                fprintf(stderr, PROG ": -o -: stdout is a terminal; redirect it (raw s16le PCM)\n");
                status = 2;
                goto done;
            }
            out.f = stdout;
            out.is_stdout = 1;
            out.path = "stdout";
        } else {
            fmt = vox_audio_stream_format_for_path(out_path);
            out.path = out_path;
            out.f = fopen(out_path, "wb");
            if (!out.f) {
                fprintf(stderr, PROG ": %s: cannot open for writing: %s\n", out_path,
                        strerror(errno));
                status = 1;
                goto done;
            }
        }
        snprintf(path, sizeof path, "%s/params.json", model);
        vox_params *p0 = vox_params_load(path, &e);
        vox_codec_config c0;
        if (!p0 || vox_codec_config_from_params(p0, NULL, &c0, &e)) {
            fprintf(stderr, PROG ": %s\n", e.msg);
            vox_params_free(p0);
            status = 1;
            goto done;
        }
        vox_params_free(p0);
        out.rate = c0.sampling_rate;
        out.as = vox_audio_stream_open(fmt, out.rate, sink_fwrite, out.is_stdout ? NULL : sink_patch,
                                       &out, &e);
        if (!out.as) {
            if (e.code == VOX_ERR_IO)
                fprintf(stderr, PROG ": %s: write failed: %s\n", out.path, strerror(out.werr));
            else fprintf(stderr, PROG ": %s: %s\n", out.path, e.msg);
            status = e.code == VOX_ERR_IO ? 1 : 2;
            goto done;
        }
    }

    /* backend, tts model, codec */
    vox_device dev;
    if (vox_device_parse(dev_s, &dev, &e)) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        status = 2;
        goto done;
    }
    be = vox_backend_create(dev, (int)threads, verbose ? VOX_LOG_VERBOSE : VOX_LOG_INFO, &e);
    if (!be) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        status = 1;
        goto done;
    }
    if (verbose) fprintf(stderr, PROG ": backend %s\n", be->ops->describe(be));
    double t0 = vox_time_now();
    tm = vox_tts_model_load(model, be, &e);
    if (!tm) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        status = 1;
        goto done;
    }
    const vox_tts_config *tc = vox_tts_model_config(tm);
    snprintf(path, sizeof path, "%s/params.json", model);
    pp = vox_params_load(path, &e);
    snprintf(path, sizeof path, "%s/consolidated.safetensors", model);
    st = pp ? vox_st_open(path, &e) : NULL;
    cm = st ? vox_codec_load(be, pp, st, &e) : NULL;
    if (!cm) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        status = 1;
        goto done;
    }
    const vox_codec_config *cc = vox_codec_get_config(cm);
    out.rate = cc->sampling_rate;
    if (verbose)
        fprintf(stderr, PROG ": model loaded in %.2f s (dim %d, %d layers, %d FM steps, %d Hz, "
                        "%d samples per frame)\n", vox_time_now() - t0, tc->dim, tc->n_layers,
                steps ? (int)steps : tc->n_steps, cc->sampling_rate, cc->samples_per_frame);
    if (ref) {
        if (!vox_codec_has_encoder(cm)) {
            fprintf(stderr, PROG ": --ref: this checkpoint has no codec encoder weights, so it "
                            "cannot clone a voice from audio; use --voice NAME (list with "
                            "--list-voices)\n");
            status = 2;
            goto done;
        }
        double tr = vox_time_now();
        vox_decode_global_init(verbose);
        if (vox_tts_voice_from_file(tm, cm, ref, &tv, &e)) {
            fprintf(stderr, PROG ": --ref: %s\n", e.msg);
            status = 1;
            goto done;
        }
        if (verbose)
            fprintf(stderr, PROG ": voice from %s: %d rows (%d encoded frames + EOA) in %.2f s\n",
                    ref, tv.rows, tv.rows - 1, vox_time_now() - tr);
    } else if (voice_file) {
        if (vox_tts_voice_load(voice_file, tc->dim, &tv, &e)) {
            fprintf(stderr, PROG ": %s\n", e.msg);
            status = 1;
            goto done;
        }
    } else if (vox_tts_model_voice(tm, model, voice, &tv, &e)) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        status = 1;
        goto done;
    }

    enum { DEC_FRAMES = 16 }; /* codec state capacity; frames are decoded one at a time */
    cs = vox_codec_state_new(cm, DEC_FRAMES, &e);
    pcm = malloc((size_t)DEC_FRAMES * (size_t)cc->samples_per_frame * sizeof *pcm);
    if (!cs || !pcm) {
        fprintf(stderr, PROG ": %s\n", cs ? "out of memory" : e.msg);
        status = 1;
        goto done;
    }
    if (play) {
        vox_pa_global_init(verbose);
        out.pb = vox_pa_playback_open(VOX_PA_DEFAULT_DEVICE, out.rate, 0, &e);
        if (!out.pb) {
            fprintf(stderr, PROG ": --play: %s\n", e.msg);
            status = 1;
            goto done;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    int NC = tc->n_codebooks;
    int32_t codes[2][64 + 1];
    int32_t *lm_codes = NC <= 65 ? codes[0] : malloc((size_t)NC * 2 * sizeof(int32_t));
    int32_t *raw_codes = NC <= 65 ? codes[1] : lm_codes + NC;
    if (!lm_codes) {
        fprintf(stderr, PROG ": out of memory\n");
        status = 1;
        goto done;
    }
    long long total_frames = 0;
    double tg = vox_time_now(), t_first = -1;
    for (size_t ci = 0; ci < n_chunks && !status && !interrupted; ci++) {
        char *ct = strndup(text + chunks[ci].off, chunks[ci].len);
        size_t n_ids = 0;
        vox_tts_session *s = NULL;
        int rc = ct ? vox_tts_prompt(tok, ct, tv.rows, &ids, &n_ids, NULL, &e)
                    : vox_set_error(&e, VOX_ERR_NOMEM, "out of memory");
        free(ct);
        if (!rc) {
            vox_tts_session_opts so;
            vox_tts_session_defaults(&so);
            so.seed = (uint64_t)seed + ci;
            so.cfg_alpha = (float)cfg;
            so.max_frames = (int)max_frames;
            so.n_steps = (int)steps; /* 0 = the model's */
            s = vox_tts_session_new(tm, ids, n_ids, &tv, &so, &e);
            rc = s ? 0 : 1;
        }
        free(ids);
        ids = NULL;
        vox_codec_state_reset(cs);
        int done = 0, frames = 0;
        while (!rc && !done) {
            if (g_interrupted) {
                interrupted = 1;
                break;
            }
            rc = vox_tts_session_step(s, lm_codes, &done, &e);
            if (rc || done) break;
            int nv = 0;
            int64_t np = 0;
            rc = vox_codec_ids_to_codes(cc, lm_codes, 1, raw_codes, &nv, &e);
            if (!rc && nv == 1) rc = vox_codec_decode(cm, cs, raw_codes, 1, pcm, &np, &e);
            if (!rc && np > 0) rc = sink_write(&out, pcm, (size_t)np, &e);
            if (!rc && t_first < 0 && np > 0) t_first = vox_time_now() - tg;
            frames++;
        }
        if (!rc) {
            int64_t np = 0;
            rc = vox_codec_finish(cm, cs, pcm, &np, &e);
            if (!rc && np > 0) rc = sink_write(&out, pcm, (size_t)np, &e);
        }
        vox_tts_session_free(s);
        if (rc) {
            fprintf(stderr, PROG ": chunk %zu: %s\n", ci + 1, e.msg);
            status = 1;
        }
        total_frames += frames;
        if (verbose)
            fprintf(stderr, PROG ": chunk %zu/%zu: %zu bytes, %zu prompt tokens, %d frames%s\n",
                    ci + 1, n_chunks, chunks[ci].len, n_ids, frames,
                    frames >= max_frames ? " (--max-frames cap)" : "");
    }
    if (lm_codes != codes[0]) free(lm_codes);
    if (verbose) {
        double wall = vox_time_now() - tg, sec = (double)out.n / out.rate;
        fprintf(stderr, PROG ": frames generated: %lld; samples per frame: %d; samples: %zu "
                        "(%.2f s of audio in %.2f s, first audio after %.2f s)\n",
                total_frames, cc->samples_per_frame, out.n, sec, wall, t_first < 0 ? 0 : t_first);
    }
    if (interrupted) fprintf(stderr, PROG ": interrupted; the audio made so far is written\n");

done:
    if (out.as && vox_audio_stream_finish(out.as, &e)) {
        if (e.code == VOX_ERR_IO)
            fprintf(stderr, PROG ": %s: write failed: %s\n", out.path, strerror(out.werr));
        else fprintf(stderr, PROG ": %s: %s\n", out.path, e.msg);
        if (!status) status = 1;
    }
    vox_audio_stream_free(out.as);
    if (out.f && (out.is_stdout ? fflush(out.f) : fclose(out.f))) {
        fprintf(stderr, PROG ": %s: write failed: %s\n", out.path, strerror(errno));
        if (!status) status = 1;
    }
    if (out.f && !out.is_stdout && status && !interrupted) remove(out.path);
    if (out.pb && vox_pa_playback_close(out.pb, &e)) {
        fprintf(stderr, PROG ": --play: %s\n", e.msg);
        if (!status) status = 1;
    }
    free(pcm);
    free(ids);
    vox_codec_state_free(cs);
    vox_tts_voice_free(&tv);
    vox_codec_free(cm);
    vox_st_close(st);
    vox_params_free(pp);
    vox_tts_model_free(tm);
    vox_backend_destroy(be);
    free(chunks);
    free(text);
    vox_tekken_free(tok);
    vox_tts_voice_list_free(&vl);
    free(words);
    return interrupted ? 130 : status;
}
