/* vox-transcribe - offline transcription of audio files with a Voxtral Realtime model.
 *
 * Any input vox_decode reads (wav, flac, mp3, ogg/opus, m4a, webm, a video's audio track; any
 * rate and channel count), `-` for stdin, or headerless s16le 16 kHz mono with --raw. Several
 * inputs are advanced together through the batched step (vox_asr_step), --batch at a time.
 * Outputs: txt, json (schema docs/transcribe-json.schema.json), srt, vtt; stdout, -o FILE or
 * --output-dir DIR. Words come from token times, segments split at sentence punctuation,
 * pauses and a length limit (docs/apps.md). A bad input is reported in one line and skipped;
 * exit 0 all ok, 1 some input failed, 2 usage, 130 interrupted (SIGINT: what is done is
 * written). Progress on stderr only when stderr is a terminal. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu/vox_blas.h"
#include "vox_asr.h"
#include "vox_backend.h"
#include "vox_decode.h"
#include "vox_tekken.h"
#include "vox_transcript.h"

#define PROG "vox-transcribe"

/* Set by the SIGINT handler, read by the step loop (the only global: a signal flag). */
static volatile sig_atomic_t g_interrupted = 0;
static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

typedef enum { FMT_TXT, FMT_JSON, FMT_SRT, FMT_VTT } out_format;
static const char *fmt_ext[] = {"txt", "json", "srt", "vtt"};

typedef struct {
    int32_t id;
    double t; /* token time (vox_asr_token.t_sec) */
} tok_rec;

typedef struct {
    size_t tok0, tok1; /* [tok0, tok1) indices into the job's tokens (text tokens only inside) */
    double start, end;
    char *text;        /* decoded, leading whitespace removed */
} word_rec;

typedef struct {
    const char *path;  /* as given ("-" = stdin) */
    float *pcm;
    size_t n;
    double duration;
    vox_asr_stream *s;
    tok_rec *toks;
    size_t n_toks, cap_toks;
    int failed, done;
} job;

static void usage(FILE *f) {
    fprintf(f,
            "usage: " PROG " -m MODEL_DIR [options] FILE...\n"
            "Transcribes audio files (wav, flac, mp3, ogg/opus, m4a, webm, video audio; any rate\n"
            "and channels; '-' = stdin) with a Voxtral Realtime model directory\n"
            "(params.json, consolidated.safetensors, tekken.json).\n\n"
            "  -m, --model DIR       model directory (required)\n"
            "  -f, --format F        txt (default), json, srt or vtt\n"
            "  -o, --output FILE     write the output to FILE (one input only)\n"
            "  --output-dir DIR      one output per input: DIR/<name>.<format>\n"
            "  --raw                 inputs are headerless s16le 16 kHz mono PCM\n"
            "  --delay MS            transcription delay: 80..1200 in steps of 80, or 2400\n"
            "                        (default: tekken.json audio.transcription_delay_ms)\n"
            "  --tokens              print the token id of every decoder step instead of text\n"
            "  --batch N             inputs advanced together through the batched step (default 4)\n"
            "  --pause SEC           a gap of SEC between words ends a segment (default 1.0)\n"
            "  --max-segment SEC     split segments longer than SEC at a word (default 10)\n"
            "  --device D            cpu, cuda or auto (default auto)\n"
            "  --threads N           CPU threads (default: all online CPUs)\n"
            "  -v                    verbose diagnostics on stderr (timings, libav messages)\n"
            "  -h, --help            this text\n"
            "Exit status: 0 all inputs ok, 1 some input failed, 2 usage error, 130 interrupted.\n");
}

/* ---- output helpers ------------------------------------------------------------------------ */

static int is_space(unsigned char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static char *trim_dup(const char *s, size_t len) {
    while (len && is_space((unsigned char)*s)) s++, len--;
    while (len && is_space((unsigned char)s[len - 1])) len--;
    char *r = malloc(len + 1);
    if (!r) return NULL;
    memcpy(r, s, len);
    r[len] = 0;
    /* an embedded NUL would cut the C string: replace by a space */
    for (size_t i = 0; i < len; i++)
        if (!r[i]) r[i] = ' ';
    return r;
}

/* Decoded, trimmed text of the text tokens in toks[a, b). */
static char *decode_range(const vox_tekken *tk, const tok_rec *toks, size_t a, size_t b,
                          int32_t *scratch) {
    size_t n = 0;
    for (size_t i = a; i < b; i++)
        if (!vox_tekken_is_special(tk, toks[i].id)) scratch[n++] = toks[i].id;
    char *out = NULL;
    size_t len = 0;
    vox_error e = {0};
    if (vox_tekken_decode(tk, scratch, n, VOX_TEKKEN_SPECIAL_IGNORE, &out, &len, &e)) return NULL;
    char *r = trim_dup(out, len);
    free(out);
    return r;
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* Words: a text token whose bytes start with whitespace begins a new word (the first text token
 * always does). A token covers the 80 ms of audio ending at its time t, so a word spans
 * [t(first) - 0.08, t(last)], clamped to [0, duration] and made monotonic. */
static word_rec *build_words(const vox_tekken *tk, const job *j, double tok_sec, size_t *n_words,
                             int32_t *scratch) {
    word_rec *w = calloc(j->n_toks + 1, sizeof *w);
    size_t nw = 0;
    if (!w) return NULL;
    for (size_t i = 0; i < j->n_toks; i++) {
        int32_t id = j->toks[i].id;
        if (vox_tekken_is_special(tk, id)) continue;
        size_t blen = 0;
        const unsigned char *b = vox_tekken_token_bytes(tk, id, &blen);
        int starts = nw == 0 || (blen && is_space(b[0]));
        if (starts) {
            w[nw].tok0 = i;
            nw++;
        }
        w[nw - 1].tok1 = i + 1;
    }
    double prev_end = 0;
    size_t out = 0;
    for (size_t k = 0; k < nw; k++) {
        char *txt = decode_range(tk, j->toks, w[k].tok0, w[k].tok1, scratch);
        if (!txt || !txt[0]) { /* whitespace-only token: attach nothing */
            free(txt);
            continue;
        }
        double s = clampd(j->toks[w[k].tok0].t - tok_sec, 0, j->duration);
        double e = clampd(j->toks[w[k].tok1 - 1].t, 0, j->duration);
        if (s < prev_end) s = prev_end;
        if (e < s) e = s;
        prev_end = e;
        w[out] = w[k];
        w[out].start = s;
        w[out].end = e;
        w[out].text = txt;
        out++;
    }
    *n_words = out;
    return w;
}

/* vox_transcript callback: a segment's text decoded from its token range (so the whitespace
 * between words is the tokens' own). */
typedef struct {
    const vox_tekken *tk;
    const job *j;
    const word_rec *w;
    int32_t *scratch;
} seg_text_ctx;

static char *seg_text(void *ud, const vox_tr_word *tw, const vox_tr_seg *s) {
    const seg_text_ctx *c = ud;
    (void)tw;
    char *r = decode_range(c->tk, c->j->toks, c->w[s->w0].tok0, c->w[s->w1 - 1].tok1, c->scratch);
    return r ? r : strdup("");
}

static int write_output(FILE *f, out_format fmt, const vox_tekken *tk, const job *j,
                        double tok_sec, const vox_tr_seg_opts *so, int delay_ms, int partial) {
    int32_t *scratch = malloc((j->n_toks + 1) * sizeof *scratch);
    if (!scratch) return 1;
    char *text = decode_range(tk, j->toks, 0, j->n_toks, scratch);
    size_t nw = 0;
    word_rec *w = text ? build_words(tk, j, tok_sec, &nw, scratch) : NULL;
    vox_tr_seg *seg = w ? calloc(nw + 1, sizeof *seg) : NULL;
    vox_tr_word *tw = seg ? calloc(nw + 1, sizeof *tw) : NULL;
    if (!text || !w || !seg || !tw) {
        free(scratch);
        free(text);
        if (w)
            for (size_t k = 0; k < nw; k++) free(w[k].text);
        free(w);
        free(seg);
        free(tw);
        return 1;
    }
    for (size_t k = 0; k < nw; k++) tw[k] = (vox_tr_word){w[k].text, w[k].start, w[k].end};
    size_t ns = vox_tr_segments(tw, nw, so, seg);
    seg_text_ctx sc = {tk, j, w, scratch};
    int rc = 0;
    if (fmt == FMT_TXT) {
        fprintf(f, "%s\n", text);
    } else if (fmt == FMT_JSON) {
        fputs("{\"file\":", f);
        vox_tr_json_str(f, j->path);
        fprintf(f, ",\"duration\":%.3f,\"delay_ms\":%d,\"complete\":%s,\"text\":", j->duration,
                delay_ms, partial ? "false" : "true");
        vox_tr_json_str(f, text);
        fputs(",\"segments\":[", f);
        for (size_t s = 0; s < ns; s++) {
            char *st = seg_text(&sc, tw, &seg[s]);
            fprintf(f, "%s{\"id\":%zu,\"start\":%.3f,\"end\":%.3f,\"text\":", s ? "," : "", s,
                    w[seg[s].w0].start, w[seg[s].w1 - 1].end);
            vox_tr_json_str(f, st ? st : "");
            fprintf(f, ",\"first_word\":%zu,\"n_words\":%zu}", seg[s].w0, seg[s].w1 - seg[s].w0);
            free(st);
        }
        fputs("],\"words\":[", f);
        for (size_t k = 0; k < nw; k++) {
            fputs(k ? ",{\"word\":" : "{\"word\":", f);
            vox_tr_json_str(f, w[k].text);
            fprintf(f, ",\"start\":%.3f,\"end\":%.3f}", w[k].start, w[k].end);
        }
        fputs("],\"tokens\":[", f);
        for (size_t i = 0; i < j->n_toks; i++)
            fprintf(f, "%s{\"id\":%d,\"t\":%.3f,\"special\":%s}", i ? "," : "", j->toks[i].id,
                    j->toks[i].t, vox_tekken_is_special(tk, j->toks[i].id) ? "true" : "false");
        fputs("]}\n", f);
    } else {
        rc = vox_tr_write_subs(f, fmt == FMT_VTT, tw, seg, ns, seg_text, &sc);
    }
    for (size_t k = 0; k < nw; k++) free(w[k].text);
    free(w);
    free(seg);
    free(tw);
    free(text);
    free(scratch);
    return rc || ferror(f) ? 1 : 0;
}

static int collect_tokens(job *j) {
    vox_asr_token tk[64];
    int k;
    while ((k = vox_asr_get_tokens(j->s, tk, 64)) > 0) {
        if (j->n_toks + (size_t)k > j->cap_toks) {
            size_t cap = j->cap_toks ? j->cap_toks * 2 : 256;
            while (cap < j->n_toks + (size_t)k) cap *= 2;
            tok_rec *nt = realloc(j->toks, cap * sizeof *nt);
            if (!nt) return 1;
            j->toks = nt;
            j->cap_toks = cap;
        }
        for (int i = 0; i < k; i++) {
            j->toks[j->n_toks].id = tk[i].id;
            j->toks[j->n_toks].t = tk[i].t_sec;
            j->n_toks++;
        }
    }
    return 0;
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* DIR/<basename without extension>.<ext>; "-" is "stdin". */
static char *out_path(const char *dir, const char *in, const char *ext) {
    const char *b = strcmp(in, "-") ? base_name(in) : "stdin";
    size_t bl = strlen(b);
    const char *dot = strrchr(b, '.');
    if (dot && dot != b) bl = (size_t)(dot - b);
    size_t n = strlen(dir) + bl + strlen(ext) + 3;
    char *r = malloc(n);
    if (r) snprintf(r, n, "%s/%.*s.%s", dir, (int)bl, b, ext);
    return r;
}

int main(int argc, char **argv) {
    vox_blas_ensure_core(argc, argv);
    const char *model = NULL, *dev_s = "auto", *out_file = NULL, *out_dir = NULL;
    int delay = 0, tokens = 0, threads = 0, verbose = 0, raw = 0, batch = 4;
    out_format fmt = FMT_TXT;
    vox_tr_seg_opts so = {1.0, 10.0};
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    int nf = 0, n_stdin = 0;
    if (!files) return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(files);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) model = argv[++i];
        else if ((!strcmp(a, "-f") || !strcmp(a, "--format")) && has) {
            const char *v = argv[++i];
            int k;
            for (k = 0; k < 4 && strcmp(v, fmt_ext[k]); k++) {}
            if (k == 4) {
                fprintf(stderr, PROG ": unknown format '%s' (txt, json, srt, vtt)\n", v);
                free(files);
                return 2;
            }
            fmt = (out_format)k;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has) out_file = argv[++i];
        else if (!strcmp(a, "--output-dir") && has) out_dir = argv[++i];
        else if (!strcmp(a, "--delay") && has) delay = atoi(argv[++i]);
        else if (!strcmp(a, "--tokens")) tokens = 1;
        else if (!strcmp(a, "--raw")) raw = 1;
        else if (!strcmp(a, "--batch") && has) batch = atoi(argv[++i]);
        else if (!strcmp(a, "--pause") && has) so.pause_sec = atof(argv[++i]);
        else if (!strcmp(a, "--max-segment") && has) so.max_seg_sec = atof(argv[++i]);
        else if (!strcmp(a, "--device") && has) dev_s = argv[++i];
        else if (!strcmp(a, "--threads") && has) threads = atoi(argv[++i]);
        else if (!strcmp(a, "-v")) verbose = 1;
        else if (!strcmp(a, "-")) {
            files[nf++] = a;
            n_stdin++;
        } else if (a[0] == '-') {
            fprintf(stderr, PROG ": unknown option or missing value '%s' (see --help)\n", a);
            free(files);
            return 2;
        } else files[nf++] = a;
    }
    const char *uerr = NULL;
    if (!model) uerr = "-m MODEL_DIR is required";
    else if (nf == 0) uerr = "no input files";
    else if (n_stdin > 1) uerr = "'-' (stdin) may be given only once";
    else if (out_file && out_dir) uerr = "-o and --output-dir exclude each other";
    else if (out_file && nf > 1) uerr = "-o FILE takes one input; use --output-dir DIR for several";
    else if (batch < 1) uerr = "--batch must be >= 1";
    else if (!(so.pause_sec > 0) || !(so.max_seg_sec > 0)) uerr = "--pause and --max-segment must be > 0";
    if (uerr) {
        fprintf(stderr, PROG ": %s (see --help)\n", uerr);
        free(files);
        return 2;
    }
    vox_decode_global_init(verbose);
    vox_error e = {0};
    vox_device dev;
    if (vox_device_parse(dev_s, &dev, &e)) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        free(files);
        return 2;
    }
    if (out_dir) {
        struct stat st;
        if (stat(out_dir, &st) || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, PROG ": --output-dir %s: not a directory\n", out_dir);
            free(files);
            return 2;
        }
    }
    if (out_dir) /* two inputs must not write the same output file */
        for (int a = 0; a < nf; a++)
            for (int b = a + 1; b < nf; b++) {
                char *pa = out_path(out_dir, files[a], "x"), *pb = out_path(out_dir, files[b], "x");
                int same = pa && pb && !strcmp(pa, pb);
                free(pa);
                free(pb);
                if (same) {
                    fprintf(stderr, PROG ": --output-dir: %s and %s would both write %s/<name>.%s "
                            "(see --help)\n", files[a], files[b], out_dir,
                            tokens ? "tokens" : fmt_ext[fmt]);
                    free(files);
                    return 2;
                }
            }
    vox_log_level log = verbose ? VOX_LOG_VERBOSE : VOX_LOG_INFO;
    vox_backend *be = vox_backend_create(dev, threads, log, &e);
    if (!be) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        free(files);
        return 1;
    }
    if (verbose) fprintf(stderr, PROG ": backend %s\n", be->ops->describe(be));
    double t0 = vox_time_now();
    vox_asr_model *m = vox_asr_model_load(model, be, log, &e);
    if (!m) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        vox_backend_destroy(be);
        free(files);
        return 1;
    }
    const vox_asr_info *mi = vox_asr_model_info(m);
    const vox_tekken *tk = vox_asr_model_tokenizer(m);
    double tok_sec = (double)mi->samples_per_token / mi->sample_rate;
    if (verbose) fprintf(stderr, PROG ": model loaded in %.2f s\n", vox_time_now() - t0);
    {
        int nd;
        if (vox_asr_delay_tokens(m, delay > 0 ? delay : mi->default_delay_ms, &nd, &e)) {
            fprintf(stderr, PROG ": %s\n", e.msg);
            vox_asr_model_free(m);
            vox_backend_destroy(be);
            free(files);
            return 2;
        }
    }
    int delay_used = delay > 0 ? delay : mi->default_delay_ms;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    int progress_tty = isatty(STDERR_FILENO);
    FILE *single_out = stdout;
    if (out_file && strcmp(out_file, "-")) {
        single_out = fopen(out_file, "w");
        if (!single_out) {
            fprintf(stderr, PROG ": %s: cannot open for writing: %s\n", out_file, strerror(errno));
            vox_asr_model_free(m);
            vox_backend_destroy(be);
            free(files);
            return 1;
        }
    }

    int status = 0;
    job *jobs = calloc((size_t)batch, sizeof *jobs);
    vox_asr_stream **active = calloc((size_t)batch, sizeof *active);
    if (!jobs || !active) {
        fprintf(stderr, PROG ": out of memory\n");
        status = 1;
        nf = 0;
    }
    vox_decode_opts dopt = {mi->sample_rate, raw ? 16000 : 0, 1};
    double total_audio = 0, wall0 = vox_time_now();
    int interrupted = 0;
    for (int f0 = 0; f0 < nf && !interrupted; f0 += batch) {
        int nb = nf - f0 < batch ? nf - f0 : batch;
        /* decode this batch's inputs and queue their audio */
        double batch_audio = 0;
        for (int b = 0; b < nb; b++) {
            job *j = &jobs[b];
            memset(j, 0, sizeof *j);
            j->path = files[f0 + b];
            vox_decode_info di;
            int rc = strcmp(j->path, "-")
                         ? vox_decode_file(j->path, &dopt, &j->pcm, &j->n, &di, &e)
                         : vox_decode_fd(STDIN_FILENO, "stdin", &dopt, &j->pcm, &j->n, &di, &e);
            if (rc) {
                fprintf(stderr, PROG ": %s\n", e.msg);
                j->failed = 1;
                continue;
            }
            if (di.warning[0]) fprintf(stderr, PROG ": warning: %s\n", di.warning);
            j->duration = (double)j->n / mi->sample_rate;
            if (verbose)
                fprintf(stderr, PROG ": %s: %s/%s %d Hz %d ch, %.2f s\n", j->path, di.container,
                        di.codec, di.src_rate, di.src_channels, j->duration);
            j->s = vox_asr_stream_create(m, delay, &e);
            /* end the signal now (vox_asr_end): the right padding is then decoded by the
             * batched step too, and vox_asr_finish below only completes the stream */
            if (!j->s || vox_asr_push(j->s, j->pcm, j->n, &e) || vox_asr_end(j->s, &e)) {
                fprintf(stderr, PROG ": %s: %s\n", j->path, e.msg);
                j->failed = 1;
                continue;
            }
            batch_audio += j->duration;
        }
        /* step every live stream together until none progresses, then finish each */
        double last_draw = 0;
        for (;;) {
            int na = 0;
            for (int b = 0; b < nb; b++)
                if (!jobs[b].failed && !jobs[b].done) active[na++] = jobs[b].s;
            if (!na) break;
            if (g_interrupted) {
                interrupted = 1;
                break;
            }
            int prog = 0;
            if (vox_asr_step(m, active, na, &prog, &e)) {
                fprintf(stderr, PROG ": %s\n", e.msg);
                for (int b = 0; b < nb; b++)
                    if (!jobs[b].failed && !jobs[b].done) jobs[b].failed = 1;
                break;
            }
            double done_sec = total_audio;
            for (int b = 0; b < nb; b++) {
                job *j = &jobs[b];
                if (j->failed) continue;
                if (collect_tokens(j)) {
                    fprintf(stderr, PROG ": %s: out of memory\n", j->path);
                    j->failed = 1;
                    continue;
                }
                if (!prog && !j->done) {
                    if (vox_asr_finish(j->s, &e) || collect_tokens(j)) {
                        fprintf(stderr, PROG ": %s: %s\n", j->path, e.msg);
                        j->failed = 1;
                        continue;
                    }
                    j->done = 1;
                }
                double t = j->done ? j->duration : j->n_toks ? j->toks[j->n_toks - 1].t : 0;
                done_sec += clampd(t, 0, j->duration);
            }
            double now = vox_time_now();
            if (progress_tty && now - last_draw > 0.2) {
                double tot = total_audio + batch_audio;
                fprintf(stderr, "\r\033[K" PROG ": %d/%d files, %3.0f%% of %.1f s audio, %.1fx real time",
                        f0 + nb, nf, tot > 0 ? 100.0 * done_sec / tot : 100.0, tot,
                        now > wall0 ? done_sec / (now - wall0) : 0.0);
                last_draw = now;
            }
        }
        if (progress_tty) fputs("\r\033[K", stderr);
        total_audio += batch_audio;
        /* outputs, in input order */
        for (int b = 0; b < nb; b++) {
            job *j = &jobs[b];
            if (j->failed) status = 1;
            else {
                if (interrupted && collect_tokens(j)) j->failed = 1;
                FILE *f = single_out;
                char *op = NULL;
                if (out_dir) {
                    op = out_path(out_dir, j->path, tokens ? "tokens" : fmt_ext[fmt]);
                    f = op ? fopen(op, "w") : NULL;
                    if (!f) {
                        fprintf(stderr, PROG ": %s: cannot open for writing: %s\n", op ? op : "?",
                                strerror(errno));
                        status = 1;
                        free(op);
                        op = NULL;
                    }
                }
                if (f) {
                    int wrc = 0;
                    if (tokens) {
                        for (size_t i = 0; i < j->n_toks; i++)
                            fprintf(f, "%s%d", i ? " " : "", j->toks[i].id);
                        fputc('\n', f);
                    } else {
                        wrc = write_output(f, fmt, tk, j, tok_sec, &so, delay_used, !j->done);
                    }
                    if (out_dir && fclose(f)) wrc = 1;
                    if (wrc) {
                        fprintf(stderr, PROG ": %s: writing the output failed\n",
                                op ? op : j->path);
                        status = 1;
                    }
                    free(op);
                }
                if (verbose && j->done) {
                    vox_asr_stats st;
                    vox_asr_stream_stats(j->s, &st);
                    fprintf(stderr, PROG ": %s: %.2f s of audio, %zu tokens", j->path,
                            j->duration, j->n_toks);
                    if (b == 0) /* the batch's time is accounted to its first stream */
                        fprintf(stderr, "; batch: encoder %.2f s (%lld frames), prefill %.2f s, "
                                "decoder %lld passes %.1f ms/pass", st.enc_sec,
                                (long long)st.enc_frames, st.prefill_sec, (long long)st.dec_passes,
                                st.dec_passes ? 1e3 * st.dec_sec / (double)st.dec_passes : 0.0);
                    fputc('\n', stderr);
                }
            }
            vox_asr_stream_free(j->s);
            free(j->pcm);
            free(j->toks);
            memset(j, 0, sizeof *j);
        }
    }
    if (verbose && !interrupted)
        fprintf(stderr, PROG ": %.2f s of audio in %.2f s (%.1fx real time)\n", total_audio,
                vox_time_now() - wall0, total_audio / (vox_time_now() - wall0 + 1e-9));
    if (interrupted) fprintf(stderr, PROG ": interrupted; partial results written\n");
    if (single_out != stdout && fclose(single_out)) {
        fprintf(stderr, PROG ": %s: writing the output failed\n", out_file);
        status = 1;
    }
    fflush(stdout);
    free(jobs);
    free(active);
    vox_asr_model_free(m);
    vox_backend_destroy(be);
    free(files);
    return interrupted ? 130 : status;
}
