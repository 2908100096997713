/* test_asr_parity.c - the ASR engine against the upstream reference (transformers 5.23, float32,
 * CPU) on the fixtures in tests/fixtures/asr/ (made by tests/reference/run_asr_ref.sh).
 *
 * For every fixture: regenerate the tiny model with meta.json's mkmodel_cmd, run the offline path
 * (whole WAV, finish) and compare
 *   mel, conv_out, enc_out, adapter_out (stored as f16): max |ours - ref| <= TOL_ACT * max(1, max|ref|)
 *   t_cond (f32): max abs diff <= 1e-6; first 3 generated logits (f32): <= 1e-3 * max(1, max|ref|)
 *   greedy tokens: identical.
 * Then streaming with 10 ms, 20 ms, 80 ms and random chunks must give exactly the offline tokens;
 * 4 streams with different audio, delays and start times stepped together must give exactly the
 * tokens each gets alone; and bad inputs fail with one clear line. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vox_asr.h"
#include "vox_hd.h"
#include "vox_safetensors.h"
#include "vox_test.h"
#include "vox_wav.h"

#define TOL_ACT 3e-3 /* f16 storage (4.9e-4 relative) + float32 rounding through the layers */
#define TOL_LOGIT 1e-3

static vox_test_state T;
static char tmpdir[1024];

static int run_mkmodel(const char *cmd, const char *out) {
    /* cmd = "vox-mkmodel ARGS" with {out} */
    const char *args = strchr(cmd, ' ');
    char buf[4096], *p = buf;
    p += snprintf(p, sizeof buf, "'%s/bin/vox-mkmodel'", VOX_BINARY_DIR);
    for (const char *c = args; *c && p < buf + sizeof buf - 600; c++) {
        if (!strncmp(c, "{out}", 5)) {
            p += sprintf(p, "'%s'", out);
            c += 4;
        } else *p++ = *c;
    }
    strcpy(p, " >/dev/null");
    return system(buf);
}

static cJSON *read_json(const char *path) {
    vox_error e = {0};
    char *s = vox_read_file(path, NULL, &e);
    if (!s) return NULL;
    cJSON *j = cJSON_Parse(s);
    free(s);
    return j;
}

static float tget(const vox_st_tensor *t, int64_t i) {
    const uint16_t *h = t->data;
    if (t->dtype == VOX_DT_F16) return vox_f16_to_f32(h[i]);
    if (t->dtype == VOX_DT_F32) return ((const float *)t->data)[i];
    return NAN;
}

/* max |a - ref| and max |ref| over n; ref element i at ref index map(i). transpose: ref is
 * [cols][rows] and a is [rows][cols]. */
static double cmp(const char *what, const float *a, const vox_st_tensor *ref, int64_t rows, int64_t cols,
                  int transpose, double tol_rel) {
    double md = 0, mx = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            float rv = tget(ref, transpose ? c * rows + r : r * cols + c);
            double d = fabs((double)a[r * cols + c] - rv);
            if (!(d <= md)) md = d; /* NaN propagates */
            if (fabs(rv) > mx) mx = fabs(rv);
        }
    double lim = tol_rel * (mx > 1 ? mx : 1);
    printf("  %-12s max|diff| %.3g (max|ref| %.3g, limit %.3g)\n", what, md, mx, lim);
    VOX_CHECK(&T, md <= lim, "%s: max diff %g > %g", what, md, lim);
    return md;
}

typedef struct {
    int32_t *ids;
    int n;
} toks;

static void collect(vox_asr_stream *s, toks *t) {
    vox_asr_token buf[64];
    int k;
    while ((k = vox_asr_get_tokens(s, buf, 64)) > 0) {
        t->ids = realloc(t->ids, (size_t)(t->n + k) * sizeof(int32_t));
        for (int i = 0; i < k; i++) t->ids[t->n + i] = buf[i].id;
        t->n += k;
    }
}

/* chunk: >0 fixed samples, 0 whole, -1 random sizes */
static toks run_stream(const vox_asr_model *m, int delay, const float *pcm, size_t n, long chunk) {
    toks t = {0};
    vox_error e = {0};
    vox_asr_stream *s = vox_asr_stream_create(m, delay, &e);
    VOX_CHECK(&T, s != NULL, "stream create: %s", e.msg);
    if (!s) return t;
    unsigned rng = 12345;
    size_t i = 0;
    while (i < n) {
        size_t k = n - i;
        if (chunk > 0 && (size_t)chunk < k) k = (size_t)chunk;
        if (chunk < 0) {
            rng = rng * 1103515245u + 12345u;
            size_t r = 1 + (rng >> 8) % 5000;
            if (r < k) k = r;
        }
        if (vox_asr_feed(s, pcm + i, k, &e)) {
            VOX_CHECK(&T, 0, "feed: %s", e.msg);
            break;
        }
        collect(s, &t);
        i += k;
    }
    VOX_CHECK(&T, vox_asr_finish(s, &e) == VOX_OK, "finish: %s", e.msg);
    collect(s, &t);
    vox_asr_stream_free(s);
    return t;
}

static int same(const toks *a, const int32_t *b, int nb) {
    if (a->n != nb) return 0;
    for (int i = 0; i < nb; i++)
        if (a->ids[i] != b[i]) return 0;
    return 1;
}

static void batch_test(const vox_asr_model *m, const float *sp, size_t nsp, const float *si, size_t nsi) {
    const int NS = 4;
    int delays[4] = {480, 960, 160, 2400};
    const float *au[4] = {sp, si, sp + 3000, sp};
    size_t an[4] = {nsp, nsi, nsp - 3000, nsp / 2};
    int start[4] = {0, 3, 7, 12}; /* in rounds of 1280 samples */
    toks alone[4], got[4];
    memset(got, 0, sizeof got);
    for (int i = 0; i < NS; i++) alone[i] = run_stream(m, delays[i], au[i], an[i], 1280);
    vox_error e = {0};
    vox_asr_stream *S[4];
    size_t fed[4] = {0};
    int fin[4] = {0};
    for (int i = 0; i < NS; i++) S[i] = vox_asr_stream_create(m, delays[i], &e);
    for (int round = 0; round < 10000; round++) {
        int all = 1;
        for (int i = 0; i < NS; i++) {
            if (round < start[i] || fin[i]) continue;
            size_t k = an[i] - fed[i] < 1280 ? an[i] - fed[i] : 1280;
            if (k) vox_asr_push(S[i], au[i] + fed[i], k, &e);
            fed[i] += k;
            if (fed[i] == an[i] && !fin[i]) {
                /* end the signal; the batch decodes the padding together with the others */
                VOX_CHECK(&T, vox_asr_end(S[i], &e) == VOX_OK, "end: %s", e.msg);
                fin[i] = 1;
            }
        }
        vox_asr_stream *act[4];
        int na = 0;
        for (int i = 0; i < NS; i++)
            if (round >= start[i] && !vox_asr_done(S[i])) act[na++] = S[i];
        int prog = 1;
        while (na && prog) {
            VOX_CHECK(&T, vox_asr_step(m, act, na, &prog, &e) == VOX_OK, "step: %s", e.msg);
        }
        for (int i = 0; i < NS; i++) {
            collect(S[i], &got[i]);
            if (fin[i] == 1 && vox_asr_done(S[i])) {
                int64_t before = got[i].n;
                vox_asr_finish(S[i], &e); /* nothing left: only completes */
                collect(S[i], &got[i]);
                VOX_CHECK(&T, got[i].n == before, "finish after batched end decoded more");
                fin[i] = 2;
            }
            if (fin[i] != 2) all = 0;
        }
        if (all) break;
    }
    for (int i = 0; i < NS; i++) {
        VOX_CHECK(&T, same(&got[i], alone[i].ids, alone[i].n), "batch stream %d: %d tokens vs %d alone", i,
                  got[i].n, alone[i].n);
        printf("  batch stream %d (delay %d ms, start %d): %d tokens, %s\n", i, delays[i], start[i], got[i].n,
               same(&got[i], alone[i].ids, alone[i].n) ? "identical to alone" : "DIFFERENT");
        free(alone[i].ids);
        free(got[i].ids);
        vox_asr_stream_free(S[i]);
    }
}

static void bad_inputs(vox_backend *be, const char *mdir, const vox_asr_model *m) {
    vox_error e = {0};
    char path[2048], dir[1200];
    /* 0-sample WAV */
    snprintf(path, sizeof path, "%s/empty.wav", tmpdir);
    VOX_CHECK(&T, vox_wav_write_pcm16(path, NULL, 0, 16000, &e) == VOX_OK, "write empty wav: %s", e.msg);
    float *x = NULL;
    int rc = vox_wav_read(path, &x, NULL, &e);
    VOX_CHECK(&T, rc != VOX_OK && strstr(e.msg, "empty.wav"), "0-sample WAV: rc %d '%s'", rc, e.msg);
    printf("  0-sample WAV: %s\n", e.msg);
    free(x);
    /* no audio at all through the stream: padding only, no crash */
    vox_asr_stream *s = vox_asr_stream_create(m, 480, &e);
    VOX_CHECK(&T, s && vox_asr_finish(s, &e) == VOX_OK && vox_asr_done(s), "empty stream finish: %s", e.msg);
    vox_asr_stream_free(s);
    /* NaN samples */
    s = vox_asr_stream_create(m, 480, &e);
    float bad[100] = {0};
    bad[37] = NAN;
    rc = vox_asr_feed(s, bad, 100, &e);
    VOX_CHECK(&T, rc == VOX_ERR_ARG && strstr(e.msg, "37"), "NaN feed: rc %d '%s'", rc, e.msg);
    printf("  NaN samples: %s\n", e.msg);
    vox_asr_stream_free(s);
    /* bad delays */
    s = vox_asr_stream_create(m, 500, &e);
    VOX_CHECK(&T, s == NULL && strstr(e.msg, "500"), "delay 500: '%s'", e.msg);
    printf("  delay 500 ms: %s\n", e.msg);
    s = vox_asr_stream_create(m, 1280, &e);
    VOX_CHECK(&T, s == NULL, "delay 1280 must fail");
    /* TTS dir as ASR model */
    snprintf(dir, sizeof dir, "%s/tts", tmpdir);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/params.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"dim\": 64, \"n_layers\": 2, \"multimodal\": {\"audio_model_args\": {\"semantic_codebook_size\": 8},"
          " \"audio_tokenizer_args\": {\"channels\": 1}}}\n", f);
    fclose(f);
    vox_asr_model *tm = vox_asr_model_load(dir, be, VOX_LOG_QUIET, &e);
    VOX_CHECK(&T, tm == NULL && strstr(e.msg, "TTS"), "TTS dir: '%s'", e.msg);
    printf("  TTS dir: %s\n", e.msg);
    vox_asr_model_free(tm);
    /* params dims disagreeing with the tensors */
    snprintf(dir, sizeof dir, "%s/baddim", tmpdir);
    mkdir(dir, 0755);
    char src[2048];
    snprintf(src, sizeof src, "%s/consolidated.safetensors", mdir);
    snprintf(path, sizeof path, "%s/consolidated.safetensors", dir);
    VOX_CHECK(&T, symlink(src, path) == 0, "symlink");
    snprintf(src, sizeof src, "%s/tekken.json", mdir);
    snprintf(path, sizeof path, "%s/tekken.json", dir);
    VOX_CHECK(&T, symlink(src, path) == 0, "symlink");
    snprintf(src, sizeof src, "%s/params.json", mdir);
    cJSON *pj = read_json(src);
    cJSON_ReplaceItemInObject(pj, "hidden_dim", cJSON_CreateNumber(200));
    char *txt = cJSON_Print(pj);
    snprintf(path, sizeof path, "%s/params.json", dir);
    f = fopen(path, "w");
    fputs(txt, f);
    fclose(f);
    free(txt);
    cJSON_Delete(pj);
    tm = vox_asr_model_load(dir, be, VOX_LOG_QUIET, &e);
    VOX_CHECK(&T, tm == NULL && strstr(e.msg, "feed_forward") && strstr(e.msg, "200"), "bad dims: '%s'", e.msg);
    printf("  params dims vs tensors: %s\n", e.msg);
    vox_asr_model_free(tm);
}

static void one_fixture(vox_backend *be, const char *fixdir, const char *name, int do_extra) {
    char path[2048], mdir[1200];
    snprintf(path, sizeof path, "%s/%s/meta.json", fixdir, name);
    cJSON *meta = read_json(path);
    VOX_CHECK(&T, meta != NULL, "%s unreadable", path);
    if (!meta) return;
    printf("%s:\n", name);
    const char *cmd = cJSON_GetObjectItem(meta, "mkmodel_cmd")->valuestring;
    snprintf(mdir, sizeof mdir, "%s/model_%s", tmpdir, name);
    VOX_CHECK(&T, run_mkmodel(cmd, mdir) == 0, "mkmodel failed: %s", cmd);
    vox_error e = {0};
    vox_asr_model *m = vox_asr_model_load(mdir, be, VOX_LOG_QUIET, &e);
    VOX_CHECK(&T, m != NULL, "load %s: %s", mdir, e.msg);
    if (!m) {
        cJSON_Delete(meta);
        return;
    }
    const vox_asr_info *inf = vox_asr_model_info(m);
    cJSON *audio = cJSON_GetObjectItem(meta, "audio");
    int delay = (int)cJSON_GetObjectItem(audio, "delay_ms")->valuedouble;
    int64_t TM = (int64_t)cJSON_GetObjectItem(audio, "mel_frames")->valuedouble;
    snprintf(path, sizeof path, "%s/%s", fixdir, cJSON_GetObjectItem(meta, "audio_file")->valuestring);
    float *pcm = NULL;
    vox_wav_info wi;
    VOX_CHECK(&T, vox_wav_read(path, &pcm, &wi, &e) == VOX_OK, "wav: %s", e.msg);
    snprintf(path, sizeof path, "%s/%s/tensors.safetensors", fixdir, name);
    vox_st_file *ref = vox_st_open(path, &e);
    VOX_CHECK(&T, ref != NULL, "fixture: %s", e.msg);
    int E = inf->enc_dim, D = inf->dec_dim, V = inf->vocab, NM = inf->n_mels;
    vox_asr_taps tp = {0};
    tp.mel = calloc((size_t)TM * NM, 4), tp.mel_cap = TM;
    tp.conv = calloc((size_t)(TM / 2) * E, 4), tp.conv_cap = TM / 2;
    tp.enc = calloc((size_t)(TM / 2) * E, 4), tp.enc_cap = TM / 2;
    tp.adapter = calloc((size_t)(TM / 8) * D, 4), tp.adapter_cap = TM / 8;
    tp.logits = calloc((size_t)3 * V, 4), tp.logits_cap = 3;
    tp.t_cond = calloc((size_t)D, 4);

    vox_asr_stream *s = vox_asr_stream_create(m, delay, &e);
    VOX_CHECK(&T, s != NULL, "create: %s", e.msg);
    toks off = {0};
    if (s && pcm && ref) {
        vox_asr_stream_set_taps(s, &tp);
        VOX_CHECK(&T, vox_asr_feed(s, pcm, wi.n_frames, &e) == VOX_OK, "feed: %s", e.msg);
        VOX_CHECK(&T, vox_asr_finish(s, &e) == VOX_OK, "finish: %s", e.msg);
        collect(s, &off);
        {
            size_t len;
            const char *txt = vox_asr_get_text(s, &len);
            cJSON *jt = cJSON_GetObjectItem(meta, "text");
            if (cJSON_IsString(jt)) {
                const char *r = jt->valuestring;
                size_t rl = strlen(r);
                while (len && *txt == ' ') txt++, len--;
                while (rl && *r == ' ') r++, rl--;
                while (len && txt[len - 1] == ' ') len--;
                while (rl && r[rl - 1] == ' ') rl--;
                int ok = len == rl && !memcmp(txt, r, rl);
                printf("  text: %zu bytes, %s mistral-common's decode\n", len, ok ? "equal to" : "DIFFERENT from");
                VOX_CHECK(&T, ok, "%s: text differs from mistral-common's decode", name);
            }
        }
        cmp("mel", tp.mel, vox_st_find(ref, "mel"), TM, NM, 1, 1e-3);
        cmp("conv_out", tp.conv, vox_st_find(ref, "conv_out"), TM / 2, E, 0, TOL_ACT);
        cmp("enc_out", tp.enc, vox_st_find(ref, "enc_out"), TM / 2, E, 0, TOL_ACT);
        cmp("adapter_out", tp.adapter, vox_st_find(ref, "adapter_out"), TM / 8, D, 0, TOL_ACT);
        cmp("t_cond", tp.t_cond, vox_st_find(ref, "t_cond"), 1, D, 0, 1e-6);
        const vox_st_tensor *lt = vox_st_find(ref, "logits_first");
        int nl = (int)lt->shape[0] < off.n ? (int)lt->shape[0] : off.n;
        cmp("logits", tp.logits, lt, nl, V, 0, TOL_LOGIT);
        const vox_st_tensor *rt = vox_st_find(ref, "tokens");
        int32_t *rids = (int32_t *)rt->data;
        int nref = (int)rt->numel, first = -1;
        for (int i = 0; i < nref && i < off.n; i++)
            if (rids[i] != off.ids[i]) {
                first = i;
                break;
            }
        printf("  tokens: %d ours, %d reference, first difference at %d\n", off.n, nref, first);
        VOX_CHECK(&T, off.n == nref && first < 0, "%s: greedy tokens differ (first at %d, n %d vs %d)", name,
                  first, off.n, nref);
        /* streaming chunkings */
        long chunks[5] = {160, 320, 1280, -1, 7};
        const char *cn[5] = {"10 ms", "20 ms", "80 ms", "random", "7 samples"};
        for (int c = 0; c < (do_extra ? 5 : 4); c++) {
            toks st = run_stream(m, delay, pcm, wi.n_frames, chunks[c]);
            int ok = same(&st, off.ids, off.n);
            printf("  streaming %-9s: %d tokens, %s\n", cn[c], st.n, ok ? "identical to offline" : "DIFFERENT");
            VOX_CHECK(&T, ok, "%s: streaming %s differs from offline", name, cn[c]);
            free(st.ids);
        }
    }
    if (do_extra && pcm) {
        /* second audio: silence of the m1 fixtures */
        snprintf(path, sizeof path, "%s/silence.wav", fixdir);
        float *si = NULL;
        vox_wav_info wi2;
        if (vox_wav_read(path, &si, &wi2, &e) == VOX_OK) batch_test(m, pcm, wi.n_frames, si, wi2.n_frames);
        free(si);
        bad_inputs(be, mdir, m);
    }
    free(off.ids);
    vox_asr_stream_free(s);
    free(tp.mel), free(tp.conv), free(tp.enc), free(tp.adapter), free(tp.logits), free(tp.t_cond);
    vox_st_close(ref);
    free(pcm);
    vox_asr_model_free(m);
    cJSON_Delete(meta);
}

int main(void) {
    char fixdir[1024];
    snprintf(fixdir, sizeof fixdir, "%s/tests/fixtures/asr", VOX_SOURCE_DIR);
    snprintf(tmpdir, sizeof tmpdir, "%s/test_asr_tmp_XXXXXX", VOX_BINARY_DIR);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    vox_error e = {0};
    vox_backend *be = vox_backend_create(VOX_DEVICE_CPU, 2, VOX_LOG_QUIET, &e);
    if (!be) {
        fprintf(stderr, "backend: %s\n", e.msg);
        return 1;
    }
    snprintf(fixdir + strlen(fixdir), sizeof fixdir - strlen(fixdir), "%s", "");
    char ip[1100];
    snprintf(ip, sizeof ip, "%s/index.json", fixdir);
    cJSON *idx = read_json(ip);
    VOX_CHECK(&T, idx != NULL, "index.json");
    cJSON *fx = idx ? cJSON_GetObjectItem(idx, "fixtures") : NULL;
    int i = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, fx) {
        const char *name = cJSON_GetObjectItem(it, "name")->valuestring;
        one_fixture(be, fixdir, name, i == 0);
        i++;
    }
    cJSON_Delete(idx);
    vox_backend_destroy(be);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return vox_test_done(&T, "test_asr_parity");
}
