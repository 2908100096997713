/* test_tts.c - Voxtral TTS against the upstream reference (tests/fixtures/tts, made by
 * tests/reference/tts_ref.py: mistral-common prompts, torch.save voices, vllm-omni's
 * FlowMatchingAudioTransformer, transformers MistralModel for the backbone, all fp32 CPU) on
 * the tiny model vox_mkmodel_tts_write makes with its defaults (seed 1), regenerated here.
 * Tolerances are stated at each check. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_backend.h"
#include "vox_codec.h"
#include "vox_params.h"
#include "vox_mkmodel.h"
#include "vox_safetensors.h"
#include "vox_tekken.h"
#include "vox_test.h"
#include "vox_tts.h"

/* must equal TEXTS in tests/reference/tts_ref.py */
static const char *const k_texts[] = {"Paris is a beautiful city!", "Hello, world.",
                                      "  \303\207a va? 123 fin  ", "a"};

static const vox_st_tensor *fx(vox_test_state *ts, const vox_st_file *f, const char *name) {
    const vox_st_tensor *t = vox_st_find(f, name);
    VOX_CHECK(ts, t != NULL, "fixture tensor '%s' missing", name);
    return t;
}

static double max_rel(const float *a, const float *b, size_t n) {
    double mx = 0, ref = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > mx) mx = d;
        if (fabs(b[i]) > ref) ref = fabs(b[i]);
    }
    return mx / (ref > 0 ? ref : 1);
}

static int write_bytes(const char *path, const unsigned char *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t w = fwrite(p, 1, n, fp);
    fclose(fp);
    return w == n ? 0 : -1;
}

static void corrupt_checks(vox_test_state *ts, const char *src) {
    size_t len = 0;
    vox_error err = {0};
    unsigned char *buf = (unsigned char *)vox_read_file(src, &len, &err);
    VOX_CHECK(ts, buf != NULL, "%s", err.msg);
    if (!buf) return;
    char path[512];
    snprintf(path, sizeof path, "%s/tts_corrupt.pt", VOX_BINARY_DIR);
    /* first byte of the tensor data: behind the local header of "<stem>/data/0" */
    size_t doff = len / 2;
    for (size_t i = 30; i + 18 < len; i++)
        if (!memcmp(buf + i, "voice_torch/data/0", 18)) {
            size_t h = i - 30;
            doff = i + 18 + (size_t)(buf[h + 28] | buf[h + 29] << 8) + 3;
            break;
        }
    struct {
        const char *what;
        size_t off;
        int trunc;
    } cases[] = {
        {"data byte flipped", doff, 0}, {"truncated", 0, 1}, {"pickle byte flipped", 70, 0}};
    for (int c = 0; c < 3; c++) {
        unsigned char *cp = malloc(len);
        memcpy(cp, buf, len);
        size_t n = len;
        if (cases[c].trunc)
            n = len - 30;
        else
            cp[cases[c].off] ^= 0x5a;
        write_bytes(path, cp, n);
        free(cp);
        vox_tts_voice v;
        memset(&err, 0, sizeof err);
        int rc = vox_tts_voice_load(path, 0, &v, &err);
        VOX_CHECK(ts, rc != VOX_OK && strstr(err.msg, "tts_corrupt.pt") && !strchr(err.msg, '\n'),
                  "%s: expected one-line error naming the file, got rc %d '%s'", cases[c].what, rc,
                  err.msg);
        printf("corrupt .pt (%s): %s\n", cases[c].what, err.msg);
        if (rc == VOX_OK) vox_tts_voice_free(&v);
    }
    /* deterministic mutation fuzz of the pickle with valid CRCs: every byte of data.pkl
     * xor 0x01 and 0xff; each load must succeed or fail with one line naming the file (and,
     * under ASan/UBSan, touch nothing out of bounds) */
    size_t lh = 0, ch = 0;
    int have_l = 0, have_c = 0;
    for (size_t i = 30; i + 20 < len; i++)
        if (!memcmp(buf + i, "voice_torch/data.pkl", 20)) {
            if (!have_l && buf[i - 30] == 'P' && buf[i - 28] == 3) {
                lh = i - 30;
                have_l = 1;
            } else if (i >= 46 && buf[i - 46] == 'P' && buf[i - 45] == 'K' && buf[i - 44] == 1) {
                ch = i - 46;
                have_c = 1;
            }
        }
    VOX_CHECK(ts, have_l && have_c, "fuzz: data.pkl headers not found");
    if (have_l && have_c) {
        /* sizes and CRC from the central directory (torch writes data descriptors, so the
         * local header's are 0) */
        size_t pn = (size_t)(buf[ch + 20] | buf[ch + 21] << 8);
        size_t p0 = lh + 30 + (size_t)(buf[lh + 26] | buf[lh + 27] << 8) +
                    (size_t)(buf[lh + 28] | buf[lh + 29] << 8);
        int ok = 0, rej = 0, bad = 0;
        const unsigned char xs[2] = {0x01, 0xff};
        for (size_t i = 0; i < pn; i++)
            for (int x = 0; x < 2; x++) {
                unsigned char *cp = malloc(len);
                memcpy(cp, buf, len);
                cp[p0 + i] ^= xs[x];
                uint32_t crc = 0xffffffffu;
                for (size_t j = 0; j < pn; j++) {
                    crc ^= cp[p0 + j];
                    for (int k = 0; k < 8; k++)
                        crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
                }
                crc ^= 0xffffffffu;
                for (int k = 0; k < 4; k++)
                    cp[ch + 16 + k] = (unsigned char)(crc >> (8 * k));
                write_bytes(path, cp, len);
                free(cp);
                vox_tts_voice v;
                memset(&err, 0, sizeof err);
                int rc = vox_tts_voice_load(path, 0, &v, &err);
                if (rc == VOX_OK) {
                    ok++;
                    vox_tts_voice_free(&v);
                } else if (strstr(err.msg, "tts_corrupt.pt") && !strchr(err.msg, '\n')) {
                    rej++;
                } else {
                    bad++;
                }
            }
        printf("pickle mutation fuzz: %d mutants, %d rejected with one line, %d still load "
               "(e.g. changed values or names), %d bad errors\n",
               ok + rej + bad, rej, ok, bad);
        VOX_CHECK(ts, bad == 0 && rej > 0, "fuzz: %d bad errors", bad);
    }
    free(buf);
    remove(path);
}

/* Run a session with the reference's noise table to the end; returns the frame count (codes
 * into out[(max_frames)][NC]) or -1. */
static int run_session(vox_test_state *ts, vox_tts_model *m, const int32_t *ids, size_t n,
                       const vox_tts_voice *v, const vox_st_tensor *nz, int n_steps, int32_t *out) {
    vox_error err = {0};
    vox_tts_session_opts so;
    vox_tts_session_defaults(&so);
    so.max_frames = (int)nz->shape[0];
    so.noise_host = nz->data;
    so.noise_frames = (int)nz->shape[0];
    so.n_steps = n_steps;
    vox_tts_session *s = vox_tts_session_new(m, ids, n, v, &so, &err);
    VOX_CHECK(ts, s != NULL, "session (steps %d): %s", n_steps, err.msg);
    if (!s) return -1;
    int NC = vox_tts_model_config(m)->n_codebooks, f = 0, done = 0;
    while (!done) {
        if (vox_tts_session_step(s, out + (size_t)f * NC, &done, &err)) {
            VOX_CHECK(ts, 0, "step: %s", err.msg);
            f = -1;
            break;
        }
        if (!done) f++;
    }
    vox_tts_session_free(s);
    return f;
}

/* --steps: tests/fixtures/tts/steps3.safetensors is the reference (vllm-omni FM built with
 * n_decoding_steps = 3) for the same frame inputs and generations as tts_ref.safetensors. */
static void steps_checks(vox_test_state *ts, vox_tts_model *m, const vox_tekken *tok,
                         const vox_tts_voice *voices, const vox_st_file *ref) {
    char path[600];
    vox_error err = {0};
    snprintf(path, sizeof path, "%s/tests/fixtures/tts/steps3.safetensors", VOX_SOURCE_DIR);
    vox_st_file *r3 = vox_st_open(path, &err);
    VOX_CHECK(ts, r3 != NULL, "%s", err.msg);
    if (!r3) return;
    const vox_tts_config *c = vox_tts_model_config(m);
    const int NC = c->n_codebooks;
    const vox_st_tensor *ns = fx(ts, r3, "n_steps");
    int N = ns ? ((const int32_t *)ns->data)[0] : 0;
    VOX_CHECK(ts, N > 0 && N != c->n_steps, "fixture steps %d vs model %d", N, c->n_steps);
    /* one frame: codes == the reference at N steps, and != the model's default (acoustic) */
    const vox_st_tensor *h = fx(ts, r3, "frame_h"), *nz = fx(ts, r3, "frame_noise"),
                        *cd = fx(ts, r3, "frame_codes"), *cd7 = fx(ts, ref, "frame_codes");
    if (h && nz && cd && cd7 && N > 0) {
        int B = (int)h->shape[0];
        int32_t *a = calloc((size_t)B * NC, 4), *d = calloc((size_t)B * NC, 4);
        int rc = vox_tts_frame(m, h->data, nz->data, 1.2f, N, B, a, NULL, &err);
        VOX_CHECK(ts, rc == VOX_OK, "%s", err.msg);
        rc = vox_tts_frame(m, h->data, nz->data, 1.2f, c->n_steps, B, d, NULL, &err);
        int same = 0, diff_default = 0, same7 = 0;
        for (int i = 0; i < B * NC; i++) {
            same += a[i] == ((const int32_t *)cd->data)[i];
            diff_default += a[i] != d[i];
            same7 += d[i] == ((const int32_t *)cd7->data)[i];
        }
        printf("frame at %d steps vs vllm-omni (n_decoding_steps %d): %d/%d codes equal; %d codes "
               "differ from %d steps; explicit %d steps = default: %d/%d\n",
               N, N, same, B * NC, diff_default, c->n_steps, c->n_steps, same7, B * NC);
        VOX_CHECK(ts, same == B * NC, "frame at %d steps: %d/%d codes equal", N, same, B * NC);
        VOX_CHECK(ts, diff_default > 0, "%d steps gave the same codes as %d", N, c->n_steps);
        VOX_CHECK(ts, same7 == B * NC, "n_steps = model's: codes differ from the default");
        free(a);
        free(d);
    }
    /* generations with so.n_steps = N == the reference; so.n_steps = model's == default */
    int32_t *codes = calloc((size_t)64 * NC, 4);
    /* a batch mixing the step counts: gen 0 at N, gen 2 at the default, gen 3 at N (the
     * step groups are not contiguous in the batch) */
    vox_tts_session *mix[3] = {NULL, NULL, NULL};
    int mix_f[3] = {0, 0, 0};
    const int32_t *mix_codes[3] = {NULL, NULL, NULL};
    for (int gi = 0; gi < 8; gi++) {
        char key[64];
        snprintf(key, sizeof key, "gen_%d_case", gi);
        const vox_st_tensor *cs = vox_st_find(r3, key);
        if (!cs) break;
        int vi = ((const int32_t *)cs->data)[0], ti = ((const int32_t *)cs->data)[1];
        snprintf(key, sizeof key, "gen_%d_codes", gi);
        const vox_st_tensor *g3 = fx(ts, r3, key), *g7 = fx(ts, ref, key);
        snprintf(key, sizeof key, "gen_%d_noise", gi);
        const vox_st_tensor *gn = fx(ts, r3, key);
        if (!g3 || !g7 || !gn || vi < 0 || vi > 1 || ti < 0 || ti > 3 || gn->shape[0] > 64)
            continue;
        int32_t *ids = NULL;
        size_t n = 0;
        if (vox_tts_prompt(tok, k_texts[ti], voices[vi].rows, &ids, &n, NULL, &err)) continue;
        int f = run_session(ts, m, ids, n, &voices[vi], gn, N, codes);
        int F = (int)g3->shape[0];
        int ok3 = f == F && !memcmp(codes, g3->data, (size_t)F * NC * 4);
        f = run_session(ts, m, ids, n, &voices[vi], gn, c->n_steps, codes);
        int F7 = (int)g7->shape[0];
        int ok7 = f == F7 && !memcmp(codes, g7->data, (size_t)F7 * NC * 4);
        printf("generation %d at %d steps: %d frames, codes %s; at n_steps = %d: %s\n", gi, N, F,
               ok3 ? "identical to the reference" : "DIFFER", c->n_steps,
               ok7 ? "identical to the default" : "DIFFER");
        VOX_CHECK(ts, ok3, "generation %d at %d steps differs from the reference", gi, N);
        VOX_CHECK(ts, ok7, "generation %d with n_steps = model's differs from the default", gi);
        if (F > 0 && F == F7)
            VOX_CHECK(ts, memcmp(g3->data, g7->data, (size_t)F * NC * 4),
                      "generation %d: the reference codes at %d and %d steps are equal", gi, N,
                      c->n_steps);
        if ((gi == 0 || gi == 2 || gi == 3) && F > 0 && F7 > 0) {
            int k = gi == 0 ? 0 : gi == 2 ? 1 : 2;
            vox_tts_session_opts so;
            vox_tts_session_defaults(&so);
            so.max_frames = (int)gn->shape[0];
            so.noise_host = gn->data;
            so.noise_frames = (int)gn->shape[0];
            so.n_steps = k == 1 ? 0 : N;
            mix[k] = vox_tts_session_new(m, ids, n, &voices[vi], &so, &err);
            mix_f[k] = k == 1 ? F7 : F;
            mix_codes[k] = (const int32_t *)(k == 1 ? g7->data : g3->data);
        }
        free(ids);
    }
    if (mix[0] && mix[1] && mix[2]) {
        int32_t bc[3 * 64];
        int done[3] = {0, 0, 0}, fr[3] = {0, 0, 0}, ok = NC <= 64;
        while (ok && (!done[0] || !done[1] || !done[2])) {
            if (vox_tts_step_batch(mix, 3, bc, done, &err)) {
                VOX_CHECK(ts, 0, "%s", err.msg);
                ok = 0;
                break;
            }
            for (int i = 0; i < 3; i++)
                if (!done[i]) {
                    if (fr[i] >= mix_f[i] ||
                        memcmp(bc + (size_t)i * NC, mix_codes[i] + (size_t)fr[i] * NC,
                               (size_t)NC * 4))
                        ok = 0;
                    fr[i]++;
                }
        }
        ok = ok && fr[0] == mix_f[0] && fr[1] == mix_f[1] && fr[2] == mix_f[2];
        printf("batched step with %d, %d and %d steps: %s\n", N, c->n_steps, N,
               ok ? "identical to the references" : "DIFFERS");
        VOX_CHECK(ts, ok, "mixed-steps batch differs");
    } else {
        VOX_CHECK(ts, 0, "mixed-steps batch: sessions missing");
    }
    for (int i = 0; i < 3; i++)
        vox_tts_session_free(mix[i]);
    /* bad counts */
    vox_tts_session_opts so;
    vox_tts_session_defaults(&so);
    so.n_steps = 1001;
    int32_t ids1[1] = {0};
    VOX_CHECK(ts,
              vox_tts_session_new(m, ids1, 1, NULL, &so, &err) == NULL &&
                  strstr(err.msg, "n_steps 1001"),
              "n_steps 1001 refused: %s", err.msg);
    free(codes);
    vox_st_close(r3);
}

int main(void) {
    vox_test_state ts = {0};
    vox_error err = {0};
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/tts_tiny_model", VOX_BINARY_DIR);
    vox_mkmodel_tts_opts mo;
    vox_mkmodel_tts_defaults(&mo, 0);
    int rc = vox_mkmodel_tts_write(dir, &mo, &err);
    VOX_CHECK(&ts, rc == VOX_OK, "mkmodel: %s", err.msg);
    snprintf(path, sizeof path, "%s/tests/fixtures/tts/tts_ref.safetensors", VOX_SOURCE_DIR);
    vox_st_file *ref = vox_st_open(path, &err);
    VOX_CHECK(&ts, ref != NULL, "%s", err.msg);
    if (rc || !ref) return vox_test_done(&ts, "test_tts");

    /* ---- prompt ids == mistral-common encode_speech_request (exact) ---- */
    snprintf(path, sizeof path, "%s/tekken.json", dir);
    vox_tekken *tok = vox_tekken_load(path, &err);
    VOX_CHECK(&ts, tok != NULL, "%s", err.msg);
    int n_prompt_ok = 0, n_prompt = 0;
    for (int vi = 0; tok && vi < mo.n_voices; vi++)
        for (int ti = 0; ti < 4; ti++) {
            char key[64];
            snprintf(key, sizeof key, "prompt_%d_%d", vi, ti);
            const vox_st_tensor *t = fx(&ts, ref, key);
            int na = vox_tekken_voice_num_audio_tokens(tok, vox_mkmodel_tts_voice_name(vi));
            int32_t *ids = NULL;
            size_t n = 0;
            int ap = -1;
            rc = vox_tts_prompt(tok, k_texts[ti], na, &ids, &n, &ap, &err);
            VOX_CHECK(&ts, rc == VOX_OK, "%s", err.msg);
            n_prompt++;
            if (t && !rc && (int64_t)n == t->numel && !memcmp(ids, t->data, n * 4))
                n_prompt_ok++;
            else
                VOX_CHECK(&ts, 0, "%s: prompt ids differ from mistral-common", key);
            free(ids);
        }
    printf("prompt parity vs mistral-common: %d/%d exact\n", n_prompt_ok, n_prompt);

    /* ---- voices: torch.save files and ours (exact values) ---- */
    const char *tv[2] = {"voice_torch.pt", "voice_torch_f32.pt"};
    const char *tk[2] = {"voice_torch_values", "voice_torch_f32_values"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/tests/fixtures/tts/%s", VOX_SOURCE_DIR, tv[i]);
        vox_tts_voice v;
        rc = vox_tts_voice_load(path, 0, &v, &err);
        VOX_CHECK(&ts, rc == VOX_OK, "%s", err.msg);
        const vox_st_tensor *t = fx(&ts, ref, tk[i]);
        if (!rc && t)
            VOX_CHECK(&ts,
                      v.rows == t->shape[0] && v.dim == t->shape[1] &&
                          !memcmp(v.emb, t->data, t->nbytes),
                      "%s: values differ from torch's", tv[i]);
        if (!rc) vox_tts_voice_free(&v);
        if (i == 0) corrupt_checks(&ts, path);
    }
    /* not a tensor (torch.save of a dict): one clear line */
    {
        snprintf(path, sizeof path, "%s/tests/fixtures/tts/voice_dict.pt", VOX_SOURCE_DIR);
        vox_tts_voice v;
        rc = vox_tts_voice_load(path, 0, &v, &err);
        VOX_CHECK(&ts, rc != VOX_OK && strstr(err.msg, "voice_dict.pt"), "dict .pt accepted: '%s'",
                  err.msg);
        printf("dict .pt: %s\n", err.msg);
        if (rc == VOX_OK) vox_tts_voice_free(&v);
        /* safetensors voice written by the safetensors package */
        snprintf(path, sizeof path, "%s/tests/fixtures/tts/voice_st.safetensors", VOX_SOURCE_DIR);
        rc = vox_tts_voice_load(path, 12, &v, &err);
        const vox_st_tensor *t = fx(&ts, ref, "voice_torch_values");
        VOX_CHECK(&ts, rc == VOX_OK && t && v.rows == 5 && !memcmp(v.emb, t->data, t->nbytes),
                  "safetensors voice: %s", err.msg);
        if (rc == VOX_OK) vox_tts_voice_free(&v);
        rc = vox_tts_voice_load(path, 13, &v, &err);
        VOX_CHECK(&ts, rc != VOX_OK, "wrong dim accepted");
        printf("safetensors voice with dim 13: %s\n", err.msg);
    }
    vox_tts_voice voices[2];
    memset(voices, 0, sizeof voices);

    /* ---- model ---- */
    vox_backend *be = vox_cpu_backend_create(1, &err);
    VOX_CHECK(&ts, be != NULL, "%s", err.msg);
    vox_tts_model *m = be ? vox_tts_model_load(dir, be, &err) : NULL;
    VOX_CHECK(&ts, m != NULL, "model load: %s", err.msg);
    if (!m) goto out;
    const vox_tts_config *c = vox_tts_model_config(m);
    for (int vi = 0; vi < 2; vi++) {
        rc = vox_tts_model_voice(m, dir, vox_mkmodel_tts_voice_name(vi), &voices[vi], &err);
        VOX_CHECK(&ts, rc == VOX_OK, "%s", err.msg);
        char key[64];
        snprintf(key, sizeof key, "voice_%s", vox_mkmodel_tts_voice_name(vi));
        const vox_st_tensor *t = fx(&ts, ref, key);
        if (!rc && t)
            VOX_CHECK(&ts,
                      (int64_t)voices[vi].rows * c->dim == t->numel &&
                          !memcmp(voices[vi].emb, t->data, t->nbytes),
                      "%s: our .pt read differently by torch.load", key);
    }

    /* ---- FM velocity at fixed (x, h, t): rel. max error <= 1e-4 ---- */
    {
        const vox_st_tensor *x = fx(&ts, ref, "vel_x"), *h = fx(&ts, ref, "vel_h"),
                            *t = fx(&ts, ref, "vel_t"), *v = fx(&ts, ref, "vel_v"),
                            *vu = fx(&ts, ref, "vel_v_uncond");
        if (x && h && t && v && vu) {
            int B = (int)x->shape[0], NA = c->n_acoustic;
            float out[64 * 64];
            double e1 = 0, e2 = 0;
            for (int b = 0; b < B; b++) {
                const float *xb = (const float *)x->data + (size_t)b * NA;
                const float *hb = (const float *)h->data + (size_t)b * c->dim;
                float tb = ((const float *)t->data)[b];
                rc = vox_tts_fm_velocity(m, xb, hb, tb, 1, out, &err);
                VOX_CHECK(&ts, rc == VOX_OK, "%s", err.msg);
                double e = max_rel(out, (const float *)v->data + (size_t)b * NA, (size_t)NA);
                if (e > e1) e1 = e;
                rc = vox_tts_fm_velocity(m, xb, NULL, tb, 1, out, &err);
                e = max_rel(out, (const float *)vu->data + (size_t)b * NA, (size_t)NA);
                if (e > e2) e2 = e;
            }
            printf("FM velocity vs vllm-omni: max rel err cond %.2e, uncond %.2e\n", e1, e2);
            VOX_CHECK(&ts, e1 <= 1e-4 && e2 <= 1e-4, "velocity error %.3g / %.3g > 1e-4", e1, e2);
        }
    }

    /* ---- one frame (semantic + acoustic) for fixed h and noise ---- */
    {
        const vox_st_tensor *h = fx(&ts, ref, "frame_h"), *nz = fx(&ts, ref, "frame_noise"),
                            *cd = fx(&ts, ref, "frame_codes"), *lg = fx(&ts, ref, "frame_logits");
        if (h && nz && cd && lg) {
            int B = (int)h->shape[0], NC = c->n_codebooks, SR = c->semantic_rows;
            int32_t *codes = calloc((size_t)B * NC, 4);
            float *logits = calloc((size_t)B * SR, 4);
            rc = vox_tts_frame(m, h->data, nz->data, 1.2f, 0, B, codes, logits, &err);
            VOX_CHECK(&ts, rc == VOX_OK, "%s", err.msg);
            int same = 0;
            for (int i = 0; i < B * NC; i++)
                same += codes[i] == ((const int32_t *)cd->data)[i];
            /* raw (unmasked) logits from the hook: compare the unmasked range 1..S+1 */
            double le = 0, lref = 0;
            for (int b = 0; b < B; b++)
                for (int j = 1; j < c->semantic_size + 2; j++) {
                    double d =
                        fabs((double)logits[b * SR + j] - ((const float *)lg->data)[b * SR + j]);
                    if (d > le) le = d;
                    if (fabs(((const float *)lg->data)[b * SR + j]) > lref)
                        lref = fabs(((const float *)lg->data)[b * SR + j]);
                }
            printf("frame vs vllm-omni: %d/%d codes equal, semantic logits max abs err %.2e "
                   "(max |logit| %.2f), END row semantic %d\n",
                   same, B * NC, le, lref, codes[3 * NC]);
            VOX_CHECK(&ts, same == B * NC, "frame codes differ (%d of %d equal)", same, B * NC);
            VOX_CHECK(&ts, le <= 1e-4 * lref, "semantic logits error %.3g", le);
            VOX_CHECK(&ts, codes[3 * NC] == 1 && codes[3 * NC + 1] == 2, "END frame codes");
            free(codes);
            free(logits);
        }
    }

    /* ---- full generation with the reference's noise: codes exact, h rel err <= 1e-3 ---- */
#define MAXG 8
    vox_tts_session *ss[MAXG] = {NULL};
    int gen_frames[MAXG] = {0}, ng = 0;
    int32_t *gen_codes[MAXG] = {NULL};
    for (int gi = 0; gi < MAXG && tok; gi++) {
        char key[64];
        snprintf(key, sizeof key, "gen_%d_case", gi);
        const vox_st_tensor *cs = vox_st_find(ref, key);
        if (!cs) break;
        ng = gi + 1;
        int vi = ((const int32_t *)cs->data)[0], ti = ((const int32_t *)cs->data)[1];
        snprintf(key, sizeof key, "gen_%d_codes", gi);
        const vox_st_tensor *cd = fx(&ts, ref, key);
        snprintf(key, sizeof key, "gen_%d_h", gi);
        const vox_st_tensor *hh = fx(&ts, ref, key);
        snprintf(key, sizeof key, "gen_%d_noise", gi);
        const vox_st_tensor *nz = fx(&ts, ref, key);
        if (!cd || !hh || !nz || vi < 0 || vi > 1 || ti < 0 || ti > 3) continue;
        int32_t *ids = NULL;
        size_t n = 0;
        rc = vox_tts_prompt(tok, k_texts[ti], voices[vi].rows, &ids, &n, NULL, &err);
        vox_tts_session_opts so;
        vox_tts_session_defaults(&so);
        so.max_frames = (int)nz->shape[0];
        so.noise_host = nz->data;
        so.noise_frames = (int)nz->shape[0];
        vox_tts_session *s = rc ? NULL : vox_tts_session_new(m, ids, n, &voices[vi], &so, &err);
        VOX_CHECK(&ts, s != NULL, "session: %s", err.msg);
        if (!s) {
            free(ids);
            continue;
        }
        int NC = c->n_codebooks, F = (int)cd->shape[0], nh = (int)hh->shape[0];
        int32_t *codes = calloc((size_t)(so.max_frames + 1) * NC, 4);
        float *h = malloc((size_t)c->dim * 4);
        double he = 0;
        int f = 0, done = 0;
        while (!done) {
            if (f < nh) {
                vox_tts_session_hidden(s, h, &err);
                double e = max_rel(h, (const float *)hh->data + (size_t)f * c->dim, (size_t)c->dim);
                if (e > he) he = e;
            }
            rc = vox_tts_session_step(s, codes + (size_t)f * NC, &done, &err);
            VOX_CHECK(&ts, rc == VOX_OK, "%s", err.msg);
            if (rc) break;
            if (!done) f++;
        }
        int same = f == F && !memcmp(codes, cd->data, (size_t)F * NC * 4);
        printf("generation %d (voice %d, text %d) vs reference: %d frames (ref %d%s), codes %s, "
               "h max rel err %.2e\n",
               gi, vi, ti, f, F, F < so.max_frames ? ", END" : ", cap",
               same ? "identical" : "DIFFER", he);
        VOX_CHECK(&ts, same, "generation %d: codes differ from the reference", gi);
        VOX_CHECK(&ts, he <= 1e-3, "generation %d: hidden state error %.3g > 1e-3", gi, he);
        gen_frames[gi] = f;
        gen_codes[gi] = codes;
        free(h);
        vox_tts_session_free(s);
        ss[gi] = vox_tts_session_new(m, ids, n, &voices[vi], &so, &err); /* for the batch run */
        free(ids);
    }
    /* ---- batched step of all sessions == the single-session runs (exact) ---- */
    int all = ng > 1;
    for (int i = 0; i < ng; i++)
        all = all && ss[i] && gen_codes[i];
    if (all) {
        int NC = c->n_codebooks;
        int32_t *bc = calloc((size_t)ng * NC, 4);
        int done[MAXG] = {0}, fr[MAXG] = {0}, ok = 1, left = ng;
        while (left > 0) {
            rc = vox_tts_step_batch(ss, ng, bc, done, &err);
            VOX_CHECK(&ts, rc == VOX_OK, "%s", err.msg);
            if (rc) break;
            left = 0;
            for (int i = 0; i < ng; i++)
                if (!done[i]) {
                    left++;
                    if (fr[i] >= gen_frames[i] ||
                        memcmp(bc + (size_t)i * NC, gen_codes[i] + (size_t)fr[i] * NC,
                               (size_t)NC * 4))
                        ok = 0;
                    fr[i]++;
                }
        }
        for (int i = 0; i < ng; i++)
            ok = ok && fr[i] == gen_frames[i];
        printf("batched step (%d sessions): %s\n", ng, ok ? "identical to single runs" : "DIFFERS");
        VOX_CHECK(&ts, ok, "batched step differs from single-session steps");
        free(bc);
    }
    if (tok) steps_checks(&ts, m, tok, voices, ref);
    /* ---- integration: the generated model's codec decodes generation 0 (codec parity is
     * test_codec's; here: the TTS layout loads and the codes are in the codec's range) ---- */
    if (gen_codes[0] && gen_frames[0] > 0) {
        snprintf(path, sizeof path, "%s/params.json", dir);
        vox_params *pp = vox_params_load(path, &err);
        snprintf(path, sizeof path, "%s/consolidated.safetensors", dir);
        vox_st_file *st = pp ? vox_st_open(path, &err) : NULL;
        vox_codec_model *cm = st ? vox_codec_load(be, pp, st, &err) : NULL;
        VOX_CHECK(&ts, cm != NULL, "codec load from the TTS model: %s", err.msg);
        if (cm) {
            const vox_codec_config *cc = vox_codec_get_config(cm);
            int F = gen_frames[0], NC = c->n_codebooks;
            int32_t *raw = calloc((size_t)F * NC, 4);
            float *pcm = calloc((size_t)F * cc->samples_per_frame + 1, 4);
            int nv = 0;
            int64_t no = 0, no2 = 0;
            rc = vox_codec_ids_to_codes(cc, gen_codes[0], F, raw, &nv, &err);
            VOX_CHECK(&ts, rc == VOX_OK && nv == F, "ids_to_codes: %s", err.msg);
            vox_codec_state *cs = rc ? NULL : vox_codec_state_new(cm, F, &err);
            if (cs) {
                rc = vox_codec_decode(cm, cs, raw, F, pcm, &no, &err);
                if (!rc) rc = vox_codec_finish(cm, cs, pcm + no, &no2, &err);
                VOX_CHECK(&ts, rc == VOX_OK, "codec decode: %s", err.msg);
                int finite = 1;
                for (int64_t i = 0; i < no + no2; i++)
                    finite = finite && isfinite(pcm[i]);
                VOX_CHECK(&ts, no + no2 == (int64_t)F * cc->samples_per_frame && finite,
                          "codec: %lld samples (expected %lld), finite %d", (long long)(no + no2),
                          (long long)F * cc->samples_per_frame, finite);
                printf("codec integration: %d frames -> %lld samples\n", F, (long long)(no + no2));
                vox_codec_state_free(cs);
            }
            free(raw);
            free(pcm);
            vox_codec_free(cm);
        }
        vox_st_close(st);
        vox_params_free(pp);
    }
    for (int i = 0; i < MAXG; i++) {
        vox_tts_session_free(ss[i]);
        free(gen_codes[i]);
    }
    /* ---- seeded PRNG sessions: same seed, same codes ---- */
    if (tok) {
        int32_t *ids = NULL;
        size_t n = 0;
        vox_tts_prompt(tok, k_texts[1], voices[0].rows, &ids, &n, NULL, &err);
        vox_tts_session_opts so;
        vox_tts_session_defaults(&so);
        so.seed = 42;
        so.max_frames = 4;
        int32_t a[4 * 64], b[4 * 64];
        int fa = 0, fb = 0;
        for (int run = 0; run < 2; run++) {
            vox_tts_session *s = vox_tts_session_new(m, ids, n, &voices[0], &so, &err);
            VOX_CHECK(&ts, s != NULL, "%s", err.msg);
            int done = 0, *fp = run ? &fb : &fa;
            while (s && !done &&
                   vox_tts_session_step(s, (run ? b : a) + *fp * c->n_codebooks, &done, &err) ==
                       VOX_OK)
                if (!done) (*fp)++;
            vox_tts_session_free(s);
        }
        VOX_CHECK(&ts, fa == fb && !memcmp(a, b, (size_t)fa * c->n_codebooks * 4),
                  "same seed gave different codes");
        /* per-session cfg_alpha inside a batch == single runs with that alpha */
        vox_tts_session_opts so2 = so;
        so2.cfg_alpha = 2.0f;
        int32_t c2[4 * 64];
        int f2 = 0, d2 = 0;
        vox_tts_session *s2 = vox_tts_session_new(m, ids, n, &voices[0], &so2, &err);
        while (s2 && !d2 && vox_tts_session_step(s2, c2 + f2 * c->n_codebooks, &d2, &err) == VOX_OK)
            if (!d2) f2++;
        vox_tts_session_free(s2);
        vox_tts_session *pair[2] = {vox_tts_session_new(m, ids, n, &voices[0], &so, &err),
                                    vox_tts_session_new(m, ids, n, &voices[0], &so2, &err)};
        int pd[2] = {0, 0}, pf[2] = {0, 0}, same = pair[0] && pair[1];
        int32_t pc[2 * 64];
        while (same && !(pd[0] && pd[1])) {
            if (vox_tts_step_batch(pair, 2, pc, pd, &err) != VOX_OK) {
                same = 0;
                break;
            }
            for (int i = 0; i < 2; i++)
                if (!pd[i]) {
                    const int32_t *want = (i ? c2 : a) + pf[i] * c->n_codebooks;
                    if (pf[i] >= (i ? f2 : fa) ||
                        memcmp(pc + i * c->n_codebooks, want, (size_t)c->n_codebooks * 4))
                        same = 0;
                    pf[i]++;
                }
        }
        same = same && pf[0] == fa && pf[1] == f2;
        int differ = f2 != fa || memcmp(a, c2, (size_t)fa * c->n_codebooks * 4);
        printf("cfg_alpha 1.2 vs 2.0 in one batch: %s; the two alphas %s\n",
               same ? "equal to single runs" : "DIFFER from single runs",
               differ ? "give different codes" : "give the same codes");
        VOX_CHECK(&ts, same, "mixed-alpha batch differs from single runs");
        VOX_CHECK(&ts, differ, "cfg_alpha has no effect");
        vox_tts_session_free(pair[0]);
        vox_tts_session_free(pair[1]);
        free(ids);
    }
out:
    for (int i = 0; i < 2; i++)
        vox_tts_voice_free(&voices[i]);
    vox_tts_model_free(m);
    if (be) vox_backend_destroy(be);
    vox_tekken_free(tok);
    vox_st_close(ref);
    return vox_test_done(&ts, "test_tts");
}
