/* vox-live - microphone (or a file played at real-time pace) to text as you speak.
 *
 * Threads: a producer thread reads audio (PortAudio capture through vox_pa, or a file through
 * vox_decoder paced to real time) in 100 ms blocks into a fixed ring; the main thread feeds the
 * ring's content to one vox_asr_stream and shows the text. When the ASR is slower than real
 * time the audio waits in the ring and the lag is shown; once the lag passes --max-lag the
 * oldest buffered audio is skipped and a visible marker "[... skipped N.N s ...]" is put in the
 * transcript (a ring overrun is reported the same way): nothing is dropped silently. With
 * --fast the producer is not paced and waits for ring space instead (tests, unpaced devices).
 *
 * Screen: on a terminal, committed lines are printed once and the current partial line is
 * redrawn in place (\r + ANSI erase) followed by "[elapsed, lag]"; otherwise only committed
 * lines are printed. A line is committed after sentence punctuation or when it gets long.
 * Ctrl-C (SIGINT) or the end of the input: the source stops, the audio it already delivered
 * (still in the ring) is transcribed, the stream is finished (flushed), the last line is
 * printed, --output gets the whole transcript; exit 0. No input device: one line, exit 1. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu/vox_blas.h"
#include "vox_asr.h"
#include "vox_audio_write.h"
#include "vox_backend.h"
#include "vox_decode.h"
#include "vox_pa.h"

#define PROG "vox-live"
#define LINE_MAX_BYTES 72

/* Set by the SIGINT handler (the only global: a signal flag). */
static volatile sig_atomic_t g_stop = 0;
static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    float *ring;           /* [cap] samples */
    size_t cap, head, len; /* read position, filled samples */
    size_t produced;       /* samples delivered by the source since start */
    size_t overrun;        /* samples the producer could not store (ring full, paced mode) */
    int eof, failed, stop;
    char err[VOX_ERROR_MSG_LEN];
    /* source */
    vox_pa_capture *cap_dev;
    vox_decoder *dec;
    int fast, rate;
    size_t limit; /* stop after this many samples (0: no limit) */
} audio_ring;

static void *producer(void *arg) {
    audio_ring *r = arg;
    sigset_t ss; /* SIGINT goes to the main thread, never interrupts a device read */
    sigemptyset(&ss);
    sigaddset(&ss, SIGINT);
    pthread_sigmask(SIG_BLOCK, &ss, NULL);
    size_t blk = (size_t)r->rate / 10; /* 100 ms */
    /* A paced file that fell behind the wall clock (the process was stalled) delivers the
     * missed audio at once, up to 5 s, as a device buffer would. */
    size_t stage_cap = blk * 50, have = 0;
    float *buf = malloc(stage_cap * sizeof *buf);
    vox_error e = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t total = 0;
    int done = !buf;
    if (!buf) snprintf(r->err, sizeof r->err, "out of memory");
    while (!done) {
        pthread_mutex_lock(&r->mu);
        int stop = r->stop;
        pthread_mutex_unlock(&r->mu);
        if (stop) break;
        size_t n = blk;
        if (r->limit && total + n > r->limit) n = r->limit - total;
        int rc = 0;
        if (n) {
            if (r->cap_dev)
                rc = vox_pa_capture_read(r->cap_dev, buf + have, n, &e);
            else
                rc = vox_decoder_read(r->dec, buf + have, n, &n, &e);
        }
        if (rc) {
            pthread_mutex_lock(&r->mu);
            snprintf(r->err, sizeof r->err, "%s", e.msg);
            r->failed = 1;
            pthread_mutex_unlock(&r->mu);
            n = 0;
        }
        if (n == 0) done = 1;
        total += n;
        have += n;
        if (!done && r->dec && !r->fast) { /* pace a file to real time */
            double due = (double)total / r->rate;
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            double el =
                (double)(now.tv_sec - t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - t0.tv_nsec);
            if (el > due + 0.1 && have + blk <= stage_cap) continue; /* behind: catch up */
            while (el < due && !stop) {
                double w = due - el;
                if (w > 0.05) w = 0.05;
                struct timespec ts = {0, (long)(w * 1e9)};
                nanosleep(&ts, NULL);
                pthread_mutex_lock(&r->mu);
                stop = r->stop;
                pthread_mutex_unlock(&r->mu);
                clock_gettime(CLOCK_MONOTONIC, &now);
                el = (double)(now.tv_sec - t0.tv_sec) + 1e-9 * (double)(now.tv_nsec - t0.tv_nsec);
            }
        }
        pthread_mutex_lock(&r->mu);
        if (r->fast)
            while (r->cap - r->len < have && !r->stop)
                pthread_cond_wait(&r->cv, &r->mu);
        for (size_t i = 0; i < have; i++) {
            if (r->len == r->cap) {
                r->overrun += have - i;
                break;
            }
            r->ring[(r->head + r->len) % r->cap] = buf[i];
            r->len++;
        }
        r->produced += have;
        have = 0;
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    pthread_mutex_lock(&r->mu);
    r->eof = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    free(buf);
    return NULL;
}

/* ---- transcript and screen ----------------------------------------------------------------- */
typedef struct {
    char *all; /* whole transcript */
    size_t len, cap;
    size_t line0; /* start of the current (uncommitted) line in all */
    int tty;
    int drawn; /* a status line is on screen */
} transcript;

static int tr_append(transcript *t, const char *s, size_t n) {
    if (t->len + n + 1 > t->cap) {
        size_t c = t->cap ? t->cap : 4096;
        while (c < t->len + n + 1)
            c *= 2;
        char *p = realloc(t->all, c);
        if (!p) return 1;
        t->all = p;
        t->cap = c;
    }
    memcpy(t->all + t->len, s, n);
    t->len += n;
    t->all[t->len] = 0;
    for (size_t i = t->len - n; i < t->len; i++)
        if (!t->all[i]) t->all[i] = ' ';
    return 0;
}

/* On a terminal, control bytes of the text (a random or broken model can emit any byte,
 * ESC included) are shown as spaces so they cannot drive the terminal. */
static void put_text(const transcript *t, const char *p, size_t n) {
    if (!t->tty) {
        fwrite(p, 1, n, stdout);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        fputc(c < 0x20 || c == 0x7f ? ' ' : c, stdout);
    }
}

static void clear_status(transcript *t) {
    if (t->tty && t->drawn) {
        fputs("\r\033[K", stdout);
        t->drawn = 0;
    }
}

/* Print all[a, b) trimmed as one line. */
static void print_line(transcript *t, size_t a, size_t b) {
    while (a < b && (t->all[a] == ' ' || t->all[a] == '\n'))
        a++;
    while (b > a && (t->all[b - 1] == ' ' || t->all[b - 1] == '\n'))
        b--;
    if (b <= a) return;
    clear_status(t);
    put_text(t, t->all + a, b - a);
    fputc('\n', stdout);
}

/* Commit lines of the current text: after . ? ! followed by a space, at a newline, or at the
 * last space (else a UTF-8 boundary) once the line is longer than LINE_MAX_BYTES. */
static void tr_commit(transcript *t) {
    for (;;) {
        size_t a = t->line0, cut = 0;
        for (size_t i = a; i + 1 < t->len; i++) {
            char c = t->all[i];
            if (c == '\n' || ((c == '.' || c == '?' || c == '!') && t->all[i + 1] == ' ')) {
                cut = i + 1;
                break;
            }
        }
        if (!cut && t->len - a > LINE_MAX_BYTES) {
            size_t lim = a + LINE_MAX_BYTES;
            for (size_t i = lim; i > a; i--)
                if (t->all[i] == ' ') {
                    cut = i;
                    break;
                }
            if (!cut) {
                cut = lim;
                while (cut > a && ((unsigned char)t->all[cut] & 0xC0) == 0x80)
                    cut--;
                if (cut == a) cut = lim;
            }
        }
        if (!cut) return;
        print_line(t, a, cut);
        t->line0 = cut;
    }
}

static void draw_status(transcript *t, double elapsed, double lag) {
    if (!t->tty) return;
    fputs("\r\033[K", stdout);
    size_t a = t->line0;
    while (a < t->len && t->all[a] == ' ')
        a++;
    put_text(t, t->all + a, t->len - a);
    fprintf(stdout, "%s\033[2m[%.1f s, lag %.1f s]\033[0m", t->len > a ? " " : "", elapsed, lag);
    fflush(stdout);
    t->drawn = 1;
}

/* Pop the stream's tokens (its queue would otherwise grow for as long as vox-live runs); with
 * --tokens their ids are written as vox-transcribe --tokens writes them (one line, spaces). */
static int drain_tokens(vox_asr_stream *s, FILE *tf, size_t *n_tok) {
    vox_asr_token tk[64];
    int k;
    while ((k = vox_asr_get_tokens(s, tk, 64)) > 0)
        for (int i = 0; i < k; i++, (*n_tok)++)
            if (tf && fprintf(tf, "%s%d", *n_tok ? " " : "", tk[i].id) < 0) return 1;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: " PROG " -m MODEL_DIR [options]\n"
               "Live transcription of the microphone (or of a file played at real-time pace).\n\n"
               "  -m, --model DIR       model directory (required)\n"
               "  --list-devices        list audio devices and exit\n"
               "  --input-device DEV    PortAudio input device: an index or a name from\n"
               "                        --list-devices (exact, else a unique part of it, e.g.\n"
               "                        'pulse'); default: the default input\n"
               "  --input FILE          play FILE (any format) through the same streaming path\n"
               "  --fast                with --input: do not pace to real time; never skip audio\n"
               "  --delay MS            transcription delay: 80..1200 in steps of 80, or 2400\n"
               "  --max-lag SEC         skip buffered audio (with a visible marker) once the\n"
               "                        transcript lags more than SEC behind (default 10)\n"
               "  --output FILE         write the final transcript to FILE\n"
               "  --tokens FILE         write the token id of every decoder step to FILE (as\n"
               "                        vox-transcribe --tokens)\n"
               "  --duration SEC        stop after SEC seconds of audio\n"
               "  --save-audio FILE     save the audio heard (.wav, .flac, .ogg, .opus, .mp3)\n"
               "  --device D            cpu, cuda or auto (default auto)\n"
               "  --threads N           CPU threads (default: all online CPUs)\n"
               "  -v                    verbose diagnostics on stderr\n"
               "  -h, --help            this text\n"
               "Ctrl-C stops: the audio already captured is transcribed, the stream flushed and\n"
               "the final transcript printed (exit 0).\n");
}

static int list_devices(void) {
    vox_pa_device *d = NULL;
    int n = 0;
    vox_error e = {0};
    if (vox_pa_list_devices(&d, &n, &e)) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        return 1;
    }
    if (!n) printf("no audio devices found\n");
    for (int i = 0; i < n; i++)
        printf("%3d  %-40s %-6s in %d out %d  %.0f Hz%s%s\n", d[i].index, d[i].name, d[i].host_api,
               d[i].max_input_channels, d[i].max_output_channels, d[i].default_rate,
               d[i].is_default_input ? "  default-input" : "",
               d[i].is_default_output ? "  default-output" : "");
    free(d);
    return 0;
}

int main(int argc, char **argv) {
    vox_blas_ensure_core(argc, argv);
    const char *model = NULL, *dev_s = "auto", *input = NULL, *out_file = NULL, *save = NULL;
    const char *in_dev_s = NULL, *tok_file = NULL;
    int delay = 0, threads = 0, verbose = 0, fast = 0, in_dev = VOX_PA_DEFAULT_DEVICE, list = 0;
    double max_lag = 10, duration = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has)
            model = argv[++i];
        else if (!strcmp(a, "--list-devices"))
            list = 1;
        else if (!strcmp(a, "--input-device") && has)
            in_dev_s = argv[++i];
        else if (!strcmp(a, "--input") && has)
            input = argv[++i];
        else if (!strcmp(a, "--fast"))
            fast = 1;
        else if (!strcmp(a, "--delay") && has)
            delay = atoi(argv[++i]);
        else if (!strcmp(a, "--max-lag") && has)
            max_lag = atof(argv[++i]);
        else if (!strcmp(a, "--duration") && has)
            duration = atof(argv[++i]);
        else if (!strcmp(a, "--output") && has)
            out_file = argv[++i];
        else if (!strcmp(a, "--tokens") && has)
            tok_file = argv[++i];
        else if (!strcmp(a, "--save-audio") && has)
            save = argv[++i];
        else if (!strcmp(a, "--device") && has)
            dev_s = argv[++i];
        else if (!strcmp(a, "--threads") && has)
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "-v"))
            verbose = 1;
        else {
            fprintf(stderr, PROG ": unknown option or missing value '%s' (see --help)\n", a);
            return 2;
        }
    }
    vox_pa_global_init(verbose);
    vox_decode_global_init(verbose);
    if (list) return list_devices();
    if (!model || !(max_lag > 0) || (save && !vox_audio_write_supported(save))) {
        fprintf(stderr, PROG ": %s (see --help)\n",
                !model           ? "-m MODEL_DIR is required"
                : !(max_lag > 0) ? "--max-lag must be > 0"
                                 : "--save-audio: unsupported extension");
        return 2;
    }
    vox_error e = {0};
    vox_device dev;
    if (vox_device_parse(dev_s, &dev, &e)) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        return 2;
    }
    audio_ring r;
    memset(&r, 0, sizeof r);
    r.rate = 16000;
    r.fast = fast;
    r.limit = (size_t)(duration * r.rate);
    /* open the source first: no microphone is reported before the model is loaded */
    if (input) {
        vox_decode_opts o = {r.rate, 0, 1};
        r.dec = vox_decoder_open(input, &o, &e);
    } else if (!in_dev_s || !vox_pa_find_device(in_dev_s, 1, &in_dev, &e)) {
        /* opened now (a missing device is reported before the model loads), started just
         * before the audio thread reads it, so loading cannot overflow the device buffer */
        r.cap_dev = vox_pa_capture_open(in_dev, r.rate, VOX_PA_NO_START, &e);
    }
    if (!r.dec && !r.cap_dev) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        return 1;
    }
    FILE *tf = NULL; /* --tokens, opened before the model loads: a bad path fails at once */
    if (tok_file && !(tf = fopen(tok_file, "w"))) {
        fprintf(stderr, PROG ": %s: cannot write the tokens: %s\n", tok_file, strerror(errno));
        if (r.dec) vox_decoder_close(r.dec);
        if (r.cap_dev) vox_pa_capture_close(r.cap_dev);
        return 1;
    }
    int status = 0;
    vox_log_level log = verbose ? VOX_LOG_VERBOSE : VOX_LOG_INFO;
    vox_backend *be = vox_backend_create(dev, threads, log, &e);
    vox_asr_model *m = be ? vox_asr_model_load(model, be, log, &e) : NULL;
    vox_asr_stream *s = m ? vox_asr_stream_create(m, delay, &e) : NULL;
    r.cap = (size_t)((max_lag + 5) * r.rate);
    r.ring = s ? malloc(r.cap * sizeof *r.ring) : NULL;
    size_t chunk_max = (size_t)r.rate; /* feed at most 1 s per screen update */
    float *chunk = r.ring ? malloc(chunk_max * sizeof *chunk) : NULL;
    if (!chunk) {
        fprintf(stderr, PROG ": %s\n", s ? "out of memory" : e.msg);
        free(r.ring);
        vox_asr_stream_free(s);
        vox_asr_model_free(m);
        if (be) vox_backend_destroy(be);
        if (r.dec) vox_decoder_close(r.dec);
        if (r.cap_dev) vox_pa_capture_close(r.cap_dev);
        if (tf) fclose(tf);
        return 1;
    }
    float *saved = NULL;
    size_t n_saved = 0, cap_saved = 0;
    transcript t;
    memset(&t, 0, sizeof t);
    t.tty = isatty(STDOUT_FILENO);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    pthread_t th;
    int th_ok = 0;
    if (r.cap_dev) {
        if (vox_pa_capture_start(r.cap_dev, &e)) {
            fprintf(stderr, PROG ": %s\n", e.msg);
            status = 1;
        } else { /* one line saying what is recorded (tests wait for it before playing) */
            fprintf(stderr, PROG ": listening on '%s' (device %.0f Hz, %d ch, latency %.2f s)\n",
                    vox_pa_capture_device_name(r.cap_dev), vox_pa_capture_device_rate(r.cap_dev),
                    vox_pa_capture_device_channels(r.cap_dev), vox_pa_capture_latency(r.cap_dev));
        }
    }
    if (!status && pthread_create(&th, NULL, producer, &r)) {
        fprintf(stderr, PROG ": cannot start the audio thread\n");
        status = 1;
    }
    th_ok = !status;
    size_t fed = 0, skipped = 0, overrun_seen = 0, n_tok = 0;
    int src_failed = 0;
    char marker[96];
    int stopping = 0;
    while (!status) {
        size_t n = 0, over;
        int eof;
        pthread_mutex_lock(&r.mu);
        if (g_stop && !stopping) { /* Ctrl-C: stop the source, transcribe what it delivered */
            r.stop = 1;
            stopping = 1;
            pthread_cond_broadcast(&r.cv);
        }
        if (!r.len && !r.eof) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100000000L;
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&r.cv, &r.mu, &ts);
        }
        size_t skip = 0;
        if (!fast && r.len > (size_t)(max_lag * r.rate)) { /* too far behind: skip the oldest */
            skip = r.len - (size_t)r.rate / 10;
            r.head = (r.head + skip) % r.cap;
            r.len -= skip;
        }
        n = r.len < chunk_max ? r.len : chunk_max;
        for (size_t i = 0; i < n; i++)
            chunk[i] = r.ring[(r.head + i) % r.cap];
        r.head = (r.head + n) % r.cap;
        r.len -= n;
        eof = r.eof && !r.len;
        over = r.overrun;
        src_failed = r.failed;
        pthread_cond_broadcast(&r.cv);
        pthread_mutex_unlock(&r.mu);
        if (over > overrun_seen) skip += over - overrun_seen, overrun_seen = over;
        if (skip) { /* flush: the text of the audio before the gap comes before the marker */
            size_t len;
            const char *txt;
            if (vox_asr_flush(s, &e)) {
                fprintf(stderr, PROG ": %s\n", e.msg);
                status = 1;
                break;
            }
            txt = vox_asr_get_text(s, &len);
            if (len && tr_append(&t, txt, len)) status = 1;
            if (drain_tokens(s, tf, &n_tok)) status = 1;
            skipped += skip;
            snprintf(marker, sizeof marker, " [... skipped %.1f s ...] ", (double)skip / r.rate);
            if (tr_append(&t, marker, strlen(marker))) status = 1;
        }
        if (n) {
            if (save) {
                if (n_saved + n > cap_saved) {
                    size_t c = cap_saved ? cap_saved * 2 : (size_t)r.rate * 60;
                    while (c < n_saved + n)
                        c *= 2;
                    float *p = realloc(saved, c * sizeof *p);
                    if (!p) {
                        fprintf(stderr, PROG ": out of memory for --save-audio\n");
                        status = 1;
                        break;
                    }
                    saved = p;
                    cap_saved = c;
                }
                memcpy(saved + n_saved, chunk, n * sizeof *chunk);
                n_saved += n;
            }
            if (vox_asr_feed(s, chunk, n, &e)) {
                fprintf(stderr, PROG ": %s\n", e.msg);
                status = 1;
                break;
            }
            fed += n;
            size_t len;
            const char *txt = vox_asr_get_text(s, &len);
            if (len && tr_append(&t, txt, len)) status = 1;
            if (drain_tokens(s, tf, &n_tok)) status = 1;
            tr_commit(&t);
        }
        pthread_mutex_lock(&r.mu);
        size_t buffered = r.len;
        pthread_mutex_unlock(&r.mu);
        draw_status(&t, (double)(fed + skipped + buffered) / r.rate, (double)buffered / r.rate);
        if (eof) break;
    }
    /* stop the source, then finish the stream (flush) and print the rest */
    pthread_mutex_lock(&r.mu);
    r.stop = 1;
    pthread_cond_broadcast(&r.cv);
    pthread_mutex_unlock(&r.mu);
    if (th_ok) pthread_join(th, NULL);
    if (src_failed) fprintf(stderr, PROG ": audio input: %s\n", r.err);
    if (!status) {
        if (vox_asr_finish(s, &e)) {
            fprintf(stderr, PROG ": %s\n", e.msg);
            status = 1;
        } else {
            size_t len;
            const char *txt = vox_asr_get_text(s, &len);
            if (len && tr_append(&t, txt, len)) status = 1;
            if (drain_tokens(s, tf, &n_tok)) status = 1;
        }
    }
    if (tf && ((fputc('\n', tf) == EOF) | (fclose(tf) != 0))) {
        fprintf(stderr, PROG ": %s: cannot write the tokens\n", tok_file);
        status = 1;
    }
    tr_commit(&t);
    print_line(&t, t.line0, t.len);
    clear_status(&t);
    fflush(stdout);
    if (out_file) {
        FILE *f = fopen(out_file, "w");
        size_t a = 0, b = t.len;
        while (a < b && (t.all[a] == ' ' || t.all[a] == '\n'))
            a++;
        while (b > a && (t.all[b - 1] == ' ' || t.all[b - 1] == '\n'))
            b--;
        if (!f || (b > a && fwrite(t.all + a, 1, b - a, f) != b - a) || fputc('\n', f) == EOF ||
            fclose(f)) {
            fprintf(stderr, PROG ": %s: cannot write the transcript\n", out_file);
            status = 1;
        }
    }
    if (save && vox_audio_write(save, saved, n_saved, r.rate, 0, &e)) {
        fprintf(stderr, PROG ": %s\n", e.msg);
        status = 1;
    }
    fprintf(stderr, PROG ": %.1f s of audio transcribed%s", (double)fed / r.rate,
            g_stop ? " (stopped by Ctrl-C)" : "");
    if (skipped) fprintf(stderr, ", %.1f s skipped", (double)skipped / r.rate);
    if (r.cap_dev) /* reported even when 0: tests and users can see nothing was lost */
        fprintf(stderr, ", %zu device overflows", vox_pa_capture_overflows(r.cap_dev));
    fputc('\n', stderr);
    free(saved);
    free(t.all);
    free(chunk);
    free(r.ring);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
    vox_asr_stream_free(s);
    vox_asr_model_free(m);
    vox_backend_destroy(be);
    if (r.dec) vox_decoder_close(r.dec);
    if (r.cap_dev) vox_pa_capture_close(r.cap_dev);
    return status ? 1 : src_failed ? 1 : 0;
}
