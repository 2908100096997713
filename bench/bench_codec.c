/* bench_codec.c - Voxtral Codec decoder speed at the released dimensions (random weights from
 * vox_mkcodec_defaults(&o, 1): dim 1024, 8 layers, BF16), whole-utterance and incremental.
 *
 * Usage: bench_codec [--model DIR] [--frames N] [--chunk C] [--threads T] [--encoder]
 *   --encoder: the generated model also has encoder weights; the decoded PCM is re-encoded.
 *   Without --model a full-size random codec is written to $TMPDIR/vox_bench_codec (300 MB).
 * Prints ms per frame and the real-time factor (decode time / audio duration, 80 ms per frame
 * at the released sizes), and each against the memory-bandwidth limit: every decoder weight is
 * read once per vox_codec_decode call (vox_bench_codec_decoder_bytes: BF16 linear weights as
 * stored, the weight-normed convs as their folded fp32 copies), so the limit per frame is
 * bytes / read bandwidth (measured in the same run, tools/common/bench_util.c) / frames per
 * call. --model also takes a TTS model directory (its audio_tokenizer.* tensors). Timing figures
 * are printed, never asserted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/vox_blas.h"
#include "vox_backend.h"
#include "vox_bench.h"
#include "vox_codec.h"
#include "vox_mkcodec.h"
#include "vox_params.h"
#include "vox_safetensors.h"

int main(int argc, char **argv) {
    vox_blas_ensure_core(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *model = NULL;
    int frames = 50, chunk = 5, threads = 0, with_enc = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc)
            frames = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
            chunk = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--encoder"))
            with_enc = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: bench_codec [--model DIR] [--frames N] [--chunk C] [--threads T]\n");
            return 2;
        }
    }
    if (frames < 1 || chunk < 1) return 2;
    vox_error err = {0};
    char dir[1024];
    if (!model) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vox_bench_codec%s", tmp ? tmp : "/tmp",
                 with_enc ? "_enc" : "");
        vox_mkcodec_opts o;
        vox_mkcodec_defaults(&o, 1);
        o.with_encoder = with_enc;
        double t0 = vox_time_now();
        if (vox_mkcodec_write_dir(dir, &o, &err)) {
            fprintf(stderr, "bench_codec: %s\n", err.msg);
            return 1;
        }
        printf("wrote %s in %.1f s\n", dir, vox_time_now() - t0);
        model = dir;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/params.json", model);
    vox_params *p = vox_params_load(path, &err);
    snprintf(path, sizeof path, "%s/consolidated.safetensors", model);
    vox_st_file *st = p ? vox_st_open(path, &err) : NULL;
    vox_backend *be = st ? vox_cpu_backend_create(threads, &err) : NULL;
    double t0 = vox_time_now();
    vox_codec_model *m = be ? vox_codec_load(be, p, st, &err) : NULL;
    vox_codec_state *s_all = m ? vox_codec_state_new(m, frames, &err) : NULL;
    vox_codec_state *s_inc = s_all ? vox_codec_state_new(m, chunk, &err) : NULL;
    int status = 1;
    if (!s_inc) {
        fprintf(stderr, "bench_codec: %s\n", err.msg);
        goto out;
    }
    printf("backend: %s\nload (weight-norm folding): %.2f s\n", be->ops->describe(be),
           vox_time_now() - t0);
    const vox_codec_config *c = vox_codec_get_config(m);
    const int nc = 1 + c->acoustic_dim;
    float *pcm2 = NULL;
    int32_t *codes = malloc((size_t)frames * nc * sizeof(int32_t));
    float *pcm = malloc((size_t)frames * c->samples_per_frame * sizeof(float));
    pcm2 = malloc((size_t)frames * c->samples_per_frame * sizeof(float));
    if (!codes || !pcm || !pcm2) goto free_bufs;
    uint64_t r = 88172645463325252ull;
    for (int i = 0; i < frames * nc; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        codes[i] = (int32_t)(r % (uint64_t)(i % nc ? c->acoustic_size : c->semantic_size));
    }
    const double audio_s = (double)frames * c->samples_per_frame / c->sampling_rate;
    int64_t n = 0;
    t0 = vox_time_now();
    if (vox_codec_decode(m, s_all, codes, frames, pcm, &n, &err)) goto fail;
    double t_all = vox_time_now() - t0;
    t0 = vox_time_now();
    int64_t w = 0;
    for (int f = 0; f < frames; f += chunk) {
        int k = frames - f < chunk ? frames - f : chunk;
        if (vox_codec_decode(m, s_inc, codes + (int64_t)f * nc, k, pcm2 + w, &n, &err)) goto fail;
        w += n;
    }
    double t_inc = vox_time_now() - t0;
    double bytes = vox_bench_codec_decoder_bytes(st, "audio_tokenizer.");
    double bw = vox_bench_read_bw(be->n_threads, (size_t)5 << 29, 40);
    double lim_call = bw > 0 ? 1e3 * bytes / bw : 0; /* ms per decode call */
    printf("read bandwidth: %.1f GB/s (%d threads); decoder weights read per call: %.3f GB -> "
           "%.1f ms per call at the bandwidth limit\n",
           bw / 1e9, be->n_threads, bytes / 1e9, lim_call);
    int calls = (frames + chunk - 1) / chunk;
    printf("whole utterance: %d frames (%.2f s audio) in %.3f s: %.2f ms/frame, RTF %.3f; limit "
           "%.2f ms/frame: ratio %.2f\n",
           frames, audio_s, t_all, 1e3 * t_all / frames, t_all / audio_s, lim_call / frames,
           1e3 * t_all / lim_call);
    printf("incremental, %d frames per call: %.3f s: %.2f ms/frame, RTF %.3f; limit %.2f ms/frame: "
           "ratio %.2f\n",
           chunk, t_inc, 1e3 * t_inc / frames, t_inc / audio_s, lim_call * calls / frames,
           1e3 * t_inc / (lim_call * calls));
    double mx = 0, d = 0;
    for (int64_t i = 0; i < w; i++) {
        double a = pcm[i] < 0 ? -pcm[i] : pcm[i], e = pcm[i] - pcm2[i];
        if (!(a <= mx)) mx = a;
        if (e < 0) e = -e;
        if (!(e <= d)) d = e;
    }
    printf("max |pcm| %.4g, max |incremental - whole| %.3g (%lld samples)\n", mx, d, (long long)w);
    if (vox_codec_has_encoder(m)) {
        int32_t *ec = malloc((size_t)frames * nc * sizeof(int32_t));
        int nf = 0;
        t0 = vox_time_now();
        int erc = ec ? vox_codec_encode(m, pcm, w, ec, NULL, frames, &nf, &err) : VOX_ERR_NOMEM;
        double t_enc = vox_time_now() - t0;
        if (erc) {
            free(ec);
            goto fail;
        }
        printf("encoder: %d frames in %.3f s: %.2f ms/frame, RTF %.3f\n", nf, t_enc,
               1e3 * t_enc / nf, t_enc / audio_s);
        free(ec);
    }
    status = 0;
    goto free_bufs;
fail:
    fprintf(stderr, "bench_codec: %s\n", err.msg);
free_bufs:
    free(codes);
    free(pcm);
    free(pcm2);
out:
    vox_codec_state_free(s_inc);
    vox_codec_state_free(s_all);
    vox_codec_free(m);
    vox_backend_destroy(be);
    vox_st_close(st);
    vox_params_free(p);
    return status;
}
