/* test_codec.c - the Voxtral Codec decoder (codec/) against vllm-omni's
 * VoxtralTTSAudioTokenizer.decode (fp32, CPU; tests/reference/codec_ref.py), on the tiny random
 * codec that vox_mkcodec_defaults(&o, 0) describes (regenerated here with the same seed):
 *   - config: windows [2,4,8,16] and the ALiBi slopes of 6 heads as the reference reported;
 *   - every decoder block output and the PCM for T = 24 frames, and T = 1, 2 (padding edges);
 *   - incremental decoding in uneven chunks equals the whole-utterance decode;
 *   - ids -> codes (the +2 offset, END cut) and errors for out-of-range codes.
 * Tolerances: max |ours - ref| <= 3e-5 * max(1, max |ref|) per tensor (fp32, different summation
 * order than torch over <= 5 blocks); incremental vs whole: <= 1e-5 * max(1, max |whole|). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_backend.h"
#include "vox_codec.h"
#include "vox_mkcodec.h"
#include "vox_params.h"
#include "vox_safetensors.h"
#include "vox_test.h"

#define FIX VOX_SOURCE_DIR "/tests/fixtures/codec/"
#define TOL_REF 3e-5
#define TOL_INC 1e-5

static void *read_all(const char *path, size_t want, vox_test_state *ts) {
    vox_error err = {0};
    size_t len = 0;
    char *b = vox_read_file(path, &len, &err);
    VOX_CHECK(ts, b != NULL, "%s", err.msg);
    if (b && len != want) {
        VOX_CHECK(ts, 0, "%s: %zu bytes, expected %zu", path, len, want);
        free(b);
        return NULL;
    }
    return b;
}

static double max_abs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs(a[i]));
    return m;
}

static double max_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

typedef struct {
    float *buf; /* all block outputs, concatenated in block order */
    size_t used, cap;
    int n_taps;
} taps;

static void tap_fn(void *ctx, int block, const float *x, int t, int c) {
    taps *tp = ctx;
    (void)block;
    size_t n = (size_t)t * c;
    if (tp->used + n <= tp->cap) memcpy(tp->buf + tp->used, x, n * sizeof(float));
    tp->used += n;
    tp->n_taps++;
}

int main(void) {
    vox_test_state ts = {0};
    vox_error err = {0};
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/test_codec_model", VOX_BINARY_DIR);
    vox_mkcodec_opts o;
    vox_mkcodec_defaults(&o, 0);
    int rc = vox_mkcodec_write_dir(dir, &o, &err);
    VOX_CHECK(&ts, rc == 0, "mkcodec: %s", err.msg);
    if (rc) return vox_test_done(&ts, "test_codec");
    char path[1200];
    snprintf(path, sizeof path, "%s/params.json", dir);
    vox_params *p = vox_params_load(path, &err);
    snprintf(path, sizeof path, "%s/consolidated.safetensors", dir);
    vox_st_file *st = p ? vox_st_open(path, &err) : NULL;
    vox_backend *be = st ? vox_cpu_backend_create(2, &err) : NULL;
    vox_codec_model *m = be ? vox_codec_load(be, p, st, &err) : NULL;
    VOX_CHECK(&ts, m != NULL, "load: %s", err.msg);
    if (!m) goto out;
    const vox_codec_config *c = vox_codec_get_config(m);

    /* config against the reference's decoder_windows / alibi_slopes (meta.json) */
    const int want_w[4] = {2, 4, 8, 16};
    VOX_CHECK(&ts, c->n_stages == 4, "n_stages %d", c->n_stages);
    for (int i = 0; i < 4 && i < c->n_stages; i++)
        VOX_CHECK(&ts, c->window[i] == want_w[i], "window[%d] = %d, want %d", i, c->window[i],
                  want_w[i]);
    const float want_s[6] = {1.0f, 0.25f, 0.0625f, 0.015625f, 1.0f, 0.25f};
    for (int h = 0; h < 6; h++)
        VOX_CHECK(&ts, vox_codec_alibi_slope(h, c->n_heads) == want_s[h], "slope %d = %g, want %g",
                  h, vox_codec_alibi_slope(h, c->n_heads), want_s[h]);
    VOX_CHECK(&ts, vox_codec_alibi_slope(7, 8) == 0.0078125f, "8-head slope 7");
    VOX_CHECK(&ts, vox_codec_alibi_slope(3, 4) == 0.015625f, "4-head slope 3");
    VOX_CHECK(&ts, c->samples_per_frame == 64, "samples_per_frame %d", c->samples_per_frame);

    const int T = 24, NC = 1 + c->acoustic_dim, SPF = c->samples_per_frame;
    int32_t *codes = read_all(FIX "codes.i32", (size_t)T * NC * 4, &ts);
    float *ref24 = read_all(FIX "pcm_T24.f32", (size_t)T * SPF * 4, &ts);
    float *ref1 = read_all(FIX "pcm_T1.f32", (size_t)SPF * 4, &ts);
    float *ref2 = read_all(FIX "pcm_T2.f32", (size_t)2 * SPF * 4, &ts);
    /* block outputs: conv0 [24][48], T [24][48], up [48][48], T [48][48], up [96][48], T [96][48],
     * up [192][48], T [192][48], output conv [192][8] (meta.json "blocks") */
    const int brow[9] = {24, 24, 48, 48, 96, 96, 192, 192, 192};
    const int bcol[9] = {48, 48, 48, 48, 48, 48, 48, 48, 8};
    size_t bsz = 0;
    for (int i = 0; i < 9; i++)
        bsz += (size_t)brow[i] * bcol[i];
    float *refb = read_all(FIX "blocks_T24.f32", bsz * 4, &ts);
    float *pcm = calloc((size_t)T * SPF, sizeof(float));
    float *inc = calloc((size_t)T * SPF, sizeof(float));
    taps tp = {calloc(bsz, sizeof(float)), 0, bsz, 0};
    if (!codes || !ref24 || !ref1 || !ref2 || !refb || !pcm || !inc || !tp.buf) goto done;

    /* whole utterance, with taps */
    vox_codec_state *s = vox_codec_state_new(m, T, &err);
    VOX_CHECK(&ts, s != NULL, "state: %s", err.msg);
    if (!s) goto done;
    vox_codec_state_set_tap(s, tap_fn, &tp);
    int64_t n_out = 0, n2 = 0;
    rc = vox_codec_decode(m, s, codes, T, pcm, &n_out, &err);
    VOX_CHECK(&ts, rc == 0 && n_out == (int64_t)T * SPF, "decode: rc %d n_out %lld: %s", rc,
              (long long)n_out, err.msg);
    rc = vox_codec_finish(m, s, pcm, &n2, &err);
    VOX_CHECK(&ts, rc == 0 && n2 == 0, "finish after a primed decode: %lld", (long long)n2);
    VOX_CHECK(&ts, tp.n_taps == 9 && tp.used == bsz, "taps %d, %zu floats", tp.n_taps, tp.used);
    if (tp.used == bsz) {
        size_t off = 0;
        for (int i = 0; i < 9; i++) {
            size_t n = (size_t)brow[i] * bcol[i];
            double mx = max_abs(refb + off, n), d = max_diff(tp.buf + off, refb + off, n);
            VOX_CHECK(&ts, d <= TOL_REF * fmax(1.0, mx), "block %d: max diff %.3g (max |ref| %.3g)",
                      i, d, mx);
            printf("block %d [%d][%d]: max |ref| %.4f, max diff %.3g\n", i, brow[i], bcol[i], mx,
                   d);
            off += n;
        }
    }
    double mx24 = max_abs(ref24, (size_t)T * SPF), d24 = max_diff(pcm, ref24, (size_t)T * SPF);
    VOX_CHECK(&ts, d24 <= TOL_REF * fmax(1.0, mx24), "pcm T24: max diff %.3g", d24);
    printf("pcm T=24: max |ref| %.4f, max diff %.3g\n", mx24, d24);
    vox_codec_state_set_tap(s, NULL, NULL);

    /* T = 1 and T = 2 alone */
    for (int nf = 1; nf <= 2; nf++) {
        const float *ref = nf == 1 ? ref1 : ref2;
        vox_codec_state_reset(s);
        rc = vox_codec_decode(m, s, codes, nf, inc, &n_out, &err);
        double d = max_diff(inc, ref, (size_t)nf * SPF), mx = max_abs(ref, (size_t)nf * SPF);
        VOX_CHECK(&ts, rc == 0 && n_out == (int64_t)nf * SPF && d <= TOL_REF * fmax(1.0, mx),
                  "pcm T%d: rc %d, max diff %.3g", nf, rc, d);
        printf("pcm T=%d: max diff %.3g\n", nf, d);
    }
    vox_codec_state_free(s);

    /* incremental in uneven chunks (max 5 frames per call) == whole */
    s = vox_codec_state_new(m, 5, &err);
    VOX_CHECK(&ts, s != NULL, "state: %s", err.msg);
    if (s) {
        for (int pass = 0; pass < 2; pass++) { /* the second pass checks reset */
            const int chunks[] = {1, 3, 2, 5, 1, 4, 5, 3};
            int f = 0;
            int64_t w = 0;
            memset(inc, 0, (size_t)T * SPF * sizeof(float));
            for (int ci = 0; f < T; ci++) {
                int nf = chunks[ci % 8];
                if (nf > T - f) nf = T - f;
                rc = vox_codec_decode(m, s, codes + (int64_t)f * NC, nf, inc + w, &n_out, &err);
                VOX_CHECK(&ts, rc == 0 && n_out == (int64_t)nf * SPF, "chunk at %d: %s", f,
                          err.msg);
                if (rc) break;
                w += n_out;
                f += nf;
            }
            double d = max_diff(inc, pcm, (size_t)T * SPF);
            VOX_CHECK(&ts, w == (int64_t)T * SPF && d <= TOL_INC * fmax(1.0, mx24),
                      "incremental pass %d: %lld samples, max diff vs whole %.3g", pass,
                      (long long)w, d);
            printf("incremental (chunks 1,3,2,5,1,4,5,3) pass %d: max diff vs whole %.3g, vs ref "
                   "%.3g\n",
                   pass, d, max_diff(inc, ref24, (size_t)T * SPF));
            vox_codec_state_reset(s);
        }
        /* errors */
        int32_t bad[64];
        memcpy(bad, codes, (size_t)NC * sizeof(int32_t));
        bad[0] = c->semantic_size;
        rc = vox_codec_decode(m, s, bad, 1, inc, &n_out, &err);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG && strstr(err.msg, "semantic code"), "bad semantic: %s",
                  err.msg);
        bad[0] = 0;
        bad[2] = c->acoustic_size;
        rc = vox_codec_decode(m, s, bad, 1, inc, &n_out, &err);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG && strstr(err.msg, "acoustic code"), "bad acoustic: %s",
                  err.msg);
        rc = vox_codec_decode(m, s, codes, 6, inc, &n_out, &err);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG, "n > max_frames accepted");
        vox_codec_state_free(s);
    }

    /* LM ids -> codes: +2 offset removed, stop at END (semantic id 1) */
    {
        int32_t ids[3 * 64], out[3 * 64];
        for (int f = 0; f < 3; f++)
            for (int j = 0; j < NC; j++)
                ids[f * NC + j] = codes[f * NC + j] + 2;
        ids[2 * NC] = 1;
        for (int j = 1; j < NC; j++)
            ids[2 * NC + j] = 0;
        int nv = -1;
        rc = vox_codec_ids_to_codes(c, ids, 3, out, &nv, &err);
        VOX_CHECK(&ts, rc == 0 && nv == 2 && !memcmp(out, codes, (size_t)2 * NC * 4),
                  "ids_to_codes: rc %d, n_valid %d", rc, nv);
        ids[NC + 1] = 0; /* EMPTY inside a frame */
        rc = vox_codec_ids_to_codes(c, ids, 3, out, &nv, &err);
        VOX_CHECK(&ts, rc == VOX_ERR_ARG && nv == 1, "EMPTY acoustic id accepted");
    }

    /* patch_proj_kernel_size 11: left pad 10 > the 8 output-conv rows of one frame, so one frame
     * alone takes pad1d's short-input rule (zeros appended before reflecting) and a stream must
     * hold its first frame back until 11 rows exist */
    {
        vox_mkcodec_opts o3 = o;
        o3.patch_kernel = 11;
        char dir3[1100];
        snprintf(dir3, sizeof dir3, "%s/test_codec_model_k11", VOX_BINARY_DIR);
        rc = vox_mkcodec_write_dir(dir3, &o3, &err);
        snprintf(path, sizeof path, "%s/params.json", dir3);
        vox_params *p3 = rc ? NULL : vox_params_load(path, &err);
        snprintf(path, sizeof path, "%s/consolidated.safetensors", dir3);
        vox_st_file *st3 = p3 ? vox_st_open(path, &err) : NULL;
        vox_codec_model *m3 = st3 ? vox_codec_load(be, p3, st3, &err) : NULL;
        VOX_CHECK(&ts, m3 != NULL, "k11 load: %s", err.msg);
        float *r1 = read_all(FIX "pcm_k11_T1.f32", (size_t)SPF * 4, &ts);
        float *r3 = read_all(FIX "pcm_k11_T3.f32", (size_t)3 * SPF * 4, &ts);
        vox_codec_state *s3 = m3 ? vox_codec_state_new(m3, 3, &err) : NULL;
        if (s3 && r1 && r3) {
            /* one frame: nothing until finish */
            int64_t a = -1, b = -1;
            rc = vox_codec_decode(m3, s3, codes, 1, inc, &a, &err);
            int rc2 = vox_codec_finish(m3, s3, inc, &b, &err);
            double d = max_diff(inc, r1, (size_t)SPF);
            VOX_CHECK(&ts, rc == 0 && rc2 == 0 && a == 0 && b == SPF && d <= TOL_REF * 2,
                      "k11 T1: decode %lld + finish %lld samples, max diff %.3g", (long long)a,
                      (long long)b, d);
            printf("k11 T=1 (short reflect rule): max diff %.3g\n", d);
            /* three frames at once, and one by one */
            vox_codec_state_reset(s3);
            rc = vox_codec_decode(m3, s3, codes, 3, inc, &a, &err);
            d = max_diff(inc, r3, (size_t)3 * SPF);
            VOX_CHECK(&ts, rc == 0 && a == 3 * SPF && d <= TOL_REF * 2, "k11 T3: %lld, diff %.3g",
                      (long long)a, d);
            printf("k11 T=3: max diff %.3g\n", d);
            vox_codec_state_reset(s3);
            int64_t w = 0, got[3];
            for (int f = 0; f < 3; f++) {
                rc = vox_codec_decode(m3, s3, codes + (int64_t)f * NC, 1, inc + w, &got[f], &err);
                w += got[f];
            }
            rc2 = vox_codec_finish(m3, s3, inc + w, &b, &err);
            d = max_diff(inc, r3, (size_t)3 * SPF);
            VOX_CHECK(&ts,
                      got[0] == 0 && got[1] == 2 * SPF && got[2] == SPF && b == 0 &&
                          d <= TOL_REF * 2,
                      "k11 frame by frame: %lld %lld %lld + %lld samples, diff %.3g",
                      (long long)got[0], (long long)got[1], (long long)got[2], (long long)b, d);
            printf("k11 frame by frame (first frame held back): max diff %.3g\n", d);
        }
        vox_codec_state_free(s3);
        free(r1);
        free(r3);
        vox_codec_free(m3);
        vox_st_close(st3);
        vox_params_free(p3);
    }

    /* encoder (vox-mkcodec --encoder) against upstream _forward_encoder + quantizer.encode: the
     * latent within TOL_REF, codes exactly (the reference's smallest semantic distance margin
     * is 3.7e-3 and FSQ distance to a rounding boundary 5.8e-3, meta.json, far above fp32
     * noise); the released-style model (no encoder tensors) refuses to encode */
    {
        int nf0 = -1;
        rc = vox_codec_encode(m, ref24, 100, codes, NULL, 8, &nf0, &err);
        VOX_CHECK(&ts, rc == VOX_ERR_UNSUPPORTED && !vox_codec_has_encoder(m),
                  "encode without encoder weights: rc %d", rc);
        vox_mkcodec_opts o4 = o;
        o4.with_encoder = 1;
        char dir4[1100];
        snprintf(dir4, sizeof dir4, "%s/test_codec_model_enc", VOX_BINARY_DIR);
        rc = vox_mkcodec_write_dir(dir4, &o4, &err);
        snprintf(path, sizeof path, "%s/params.json", dir4);
        vox_params *p4 = rc ? NULL : vox_params_load(path, &err);
        snprintf(path, sizeof path, "%s/consolidated.safetensors", dir4);
        vox_st_file *st4 = p4 ? vox_st_open(path, &err) : NULL;
        vox_codec_model *m4 = st4 ? vox_codec_load(be, p4, st4, &err) : NULL;
        VOX_CHECK(&ts, m4 != NULL && vox_codec_has_encoder(m4), "encoder load: %s", err.msg);
        const int n_pcm = 1523, LD = c->latent_dim;
        float *wav = read_all(FIX "enc_pcm.f32", (size_t)n_pcm * 4, &ts);
        for (int cs = 0; cs < 2 && m4 && wav; cs++) {
            const int ns = cs == 0 ? n_pcm : 40, want_t = cs == 0 ? 24 : 1;
            const char *nm = cs == 0 ? "long" : "short";
            char f1[1200], f2[1200];
            snprintf(f1, sizeof f1, FIX "enc_%s_latent.f32", nm);
            snprintf(f2, sizeof f2, FIX "enc_%s_codes.i32", nm);
            float *rl = read_all(f1, (size_t)want_t * LD * 4, &ts);
            int32_t *rcod = read_all(f2, (size_t)want_t * NC * 4, &ts);
            float *lat = calloc((size_t)want_t * LD, sizeof(float));
            int32_t *cod = calloc((size_t)want_t * NC, sizeof(int32_t));
            int nf = -1;
            VOX_CHECK(&ts, vox_codec_encode_frames(m4, ns) == want_t, "encode_frames(%d)", ns);
            rc = (rl && rcod && lat && cod)
                     ? vox_codec_encode(m4, wav, ns, cod, lat, want_t, &nf, &err)
                     : -1;
            VOX_CHECK(&ts, rc == 0 && nf == want_t, "encode %s: rc %d nf %d: %s", nm, rc, nf,
                      err.msg);
            if (rc == 0) {
                double mx = max_abs(rl, (size_t)want_t * LD);
                double d = max_diff(lat, rl, (size_t)want_t * LD);
                int same = !memcmp(cod, rcod, (size_t)want_t * NC * 4);
                VOX_CHECK(&ts, d <= TOL_REF * fmax(1.0, mx), "encoder latent %s: diff %.3g", nm, d);
                VOX_CHECK(&ts, same, "encoder codes %s differ", nm);
                printf(
                    "encoder %s (%d samples -> %d frames): latent max |ref| %.3f, max diff %.3g; "
                    "codes %s\n",
                    nm, ns, nf, mx, d, same ? "identical" : "DIFFER");
            }
            free(rl);
            free(rcod);
            free(lat);
            free(cod);
        }
        free(wav);
        vox_codec_free(m4);
        vox_st_close(st4);
        vox_params_free(p4);
    }

    /* a missing tensor names itself */
    {
        vox_mkcodec_opts o2 = o;
        snprintf(o2.lengths, sizeof o2.lengths, "2,1,1,1"); /* file has fewer layers than params */
        char dir2[1100];
        snprintf(dir2, sizeof dir2, "%s/test_codec_model_short", VOX_BINARY_DIR);
        rc = vox_mkcodec_write_dir(dir2, &o2, &err);
        VOX_CHECK(&ts, rc == 0, "mkcodec: %s", err.msg);
        snprintf(path, sizeof path, "%s/consolidated.safetensors", dir2);
        vox_st_file *st2 = vox_st_open(path, &err);
        vox_codec_model *m2 = st2 ? vox_codec_load(be, p, st2, &err) : NULL;
        VOX_CHECK(&ts, m2 == NULL && strstr(err.msg, "decoder_blocks.7.layers.1"),
                  "load of a short file: %s", err.msg);
        vox_codec_free(m2);
        vox_st_close(st2);
    }

done:
    free(codes);
    free(ref24);
    free(ref1);
    free(ref2);
    free(refb);
    free(pcm);
    free(inc);
    free(tp.buf);
out:
    vox_codec_free(m);
    vox_backend_destroy(be);
    vox_st_close(st);
    vox_params_free(p);
    return vox_test_done(&ts, "test_codec");
}
