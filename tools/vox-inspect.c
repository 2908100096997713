/* vox-inspect - open a model directory (params.json, consolidated.safetensors, tekken.json),
 * validate the container and print what it holds.
 *
 *   vox-inspect -m DIR [--tensors]
 *
 * Prints the model kind (realtime or tts, from the params.json layout), the main dims, the
 * tensor count and the bytes per dtype; --tensors lists every tensor. Exit status: 0 ok,
 * 1 a file is missing or invalid (one line on stderr), 2 bad command line. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vox_params.h"
#include "vox_safetensors.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: vox-inspect -m DIR [--tensors]\n"
            "  -m, --model DIR   model directory (params.json, consolidated.safetensors, tekken.json)\n"
            "  --tensors         list every tensor (name, dtype, shape, bytes)\n"
            "  -h, --help        this text\n");
}

typedef struct {
    const char *label;
    const char *key;
    int required;
} dim_key;

/* Print "label value" pairs for the keys present; fail on a required key missing/mistyped. */
static int print_dims(const vox_params *p, const char *title, const char *prefix,
                      const dim_key *keys, int n, vox_error *err) {
    printf("%-9s", title);
    int first = 1;
    for (int i = 0; i < n; i++) {
        char key[256];
        snprintf(key, sizeof key, "%s%s", prefix, keys[i].key);
        int64_t v = 0;
        if (!keys[i].required && !vox_params_has(p, key)) continue;
        if (vox_params_int(p, key, &v, err) != VOX_OK) {
            printf("\n");
            return err->code;
        }
        printf("%s%s %lld", first ? " " : ", ", keys[i].label, (long long)v);
        first = 0;
    }
    printf("\n");
    return VOX_OK;
}

static int inspect(const char *dir, int list, vox_error *err) {
    char path[4096];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return vox_set_error(err, VOX_ERR_IO, "%s: not a directory", dir);

    snprintf(path, sizeof path, "%s/params.json", dir);
    vox_params *p = vox_params_load(path, err);
    if (!p) return err->code;

    int rc = VOX_OK;
    vox_st_file *f = NULL;
    const char *kind;
    if (vox_params_has(p, "multimodal.whisper_model_args"))
        kind = "realtime";
    else if (vox_params_has(p, "multimodal.audio_model_args") ||
             vox_params_has(p, "multimodal.audio_tokenizer_args"))
        kind = "tts";
    else {
        rc = vox_set_error(err, VOX_ERR_FORMAT,
                           "%s: cannot tell the model kind: expected "
                           "multimodal.whisper_model_args (realtime) or "
                           "multimodal.audio_model_args (tts)", path);
        goto done;
    }
    printf("model     %s\n", dir);
    printf("kind      %s\n", kind);
    static const dim_key dec[] = {
        {"dim", "dim", 1},           {"layers", "n_layers", 1},     {"heads", "n_heads", 1},
        {"kv_heads", "n_kv_heads", 1}, {"head_dim", "head_dim", 1}, {"hidden", "hidden_dim", 1},
        {"vocab", "vocab_size", 1},  {"window", "sliding_window", 0},
        {"ada_dim", "ada_rms_norm_t_cond_dim", 0},
    };
    rc = print_dims(p, "decoder", "", dec, (int)(sizeof dec / sizeof dec[0]), err);
    if (rc) goto done;
    int64_t n_layers = 0, enc_layers = 0;
    vox_params_int(p, "n_layers", &n_layers, NULL);
    if (!strcmp(kind, "realtime")) {
        static const dim_key enc[] = {
            {"dim", "dim", 1},       {"layers", "n_layers", 1},     {"heads", "n_heads", 1},
            {"kv_heads", "n_kv_heads", 0}, {"head_dim", "head_dim", 1}, {"hidden", "hidden_dim", 1},
            {"window", "sliding_window", 0},
        };
        rc = print_dims(p, "encoder", "multimodal.whisper_model_args.encoder_args.", enc,
                        (int)(sizeof enc / sizeof enc[0]), err);
        if (rc) goto done;
        static const dim_key ds[] = {{"downsample", "downsample_factor", 0}};
        rc = print_dims(p, "adapter", "multimodal.whisper_model_args.downsample_args.", ds, 1, err);
        if (rc) goto done;
        vox_params_int(p, "multimodal.whisper_model_args.encoder_args.n_layers", &enc_layers, NULL);
    } else {
        static const dim_key fm[] = {
            {"dim", "dim", 1}, {"layers", "n_layers", 1}, {"heads", "n_heads", 0},
            {"head_dim", "head_dim", 0}, {"hidden", "hidden_dim", 0},
        };
        static const dim_key codec[] = {
            {"dim", "dim", 0}, {"heads", "n_heads", 0}, {"head_dim", "head_dim", 0},
            {"hidden", "hidden_dim", 0}, {"sample_rate", "sampling_rate", 0},
            {"patch", "pretransform_patch_size", 0}, {"window", "attn_sliding_window_size", 0},
        };
        if (vox_params_has(p, "multimodal.audio_model_args.acoustic_transformer_args")) {
            rc = print_dims(p, "acoustic", "multimodal.audio_model_args.acoustic_transformer_args.",
                            fm, (int)(sizeof fm / sizeof fm[0]), err);
            if (rc) goto done;
        }
        if (vox_params_has(p, "multimodal.audio_tokenizer_args")) {
            rc = print_dims(p, "codec", "multimodal.audio_tokenizer_args.", codec,
                            (int)(sizeof codec / sizeof codec[0]), err);
            if (rc) goto done;
        }
    }

    snprintf(path, sizeof path, "%s/consolidated.safetensors", dir);
    f = vox_st_open(path, err);
    if (!f) {
        rc = err->code;
        goto done;
    }
    uint64_t by_dtype[6] = {0}, total = 0;
    int64_t params_total = 0;
    for (int i = 0; i < vox_st_count(f); i++) {
        const vox_st_tensor *t = vox_st_at(f, i);
        if ((unsigned)t->dtype < 6) by_dtype[t->dtype] += t->nbytes;
        total += t->nbytes;
        params_total += t->numel;
    }
    printf("tensors   %d, %lld elements, %llu bytes (%.2f GB):", vox_st_count(f),
           (long long)params_total, (unsigned long long)total, (double)total / 1e9);
    for (int d = 0; d < 6; d++)
        if (by_dtype[d])
            printf(" %s %llu", vox_dtype_name((vox_dtype)d), (unsigned long long)by_dtype[d]);
    printf("\n");
    if (!strcmp(kind, "realtime")) {
        /* spec/voxtral-realtime.md section 5: 13 per encoder layer + 11 per decoder layer + 9
         * (+1 if the head is not tied) */
        int tied = 1;
        vox_params_bool_or(p, "tied_embeddings", 1, &tied, NULL);
        int64_t want = 13 * enc_layers + 11 * n_layers + 9 + (tied ? 0 : 1);
        printf("layout    %lld tensors expected from params.json%s\n", (long long)want,
               want == vox_st_count(f) ? "" : " (MISMATCH)");
    }
    if (list) {
        for (int i = 0; i < vox_st_count(f); i++) {
            const vox_st_tensor *t = vox_st_at(f, i);
            char shape[160];
            size_t len = (size_t)snprintf(shape, sizeof shape, "[");
            for (int k = 0; k < t->ndim && len < sizeof shape; k++)
                len += (size_t)snprintf(shape + len, sizeof shape - len, "%s%lld", k ? ", " : "",
                                        (long long)t->shape[k]);
            if (len < sizeof shape) snprintf(shape + len, sizeof shape - len, "]");
            printf("  %-72s %-4s %-20s %zu\n", t->name, vox_dtype_name(t->dtype), shape,
                   t->nbytes);
        }
    }

    snprintf(path, sizeof path, "%s/tekken.json", dir);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = vox_set_error(err, VOX_ERR_IO, "%s: missing (the tokenizer file)", path);
        goto done;
    }
    printf("tokenizer %s, %lld bytes\n", path, (long long)st.st_size);
done:
    vox_st_close(f);
    vox_params_free(p);
    return rc;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    int list = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--tensors")) {
            list = 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vox-inspect: option '%s' needs a directory (see --help)\n", a);
                return 2;
            }
            dir = argv[++i];
        } else {
            fprintf(stderr, "vox-inspect: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "vox-inspect: missing -m DIR (see --help)\n");
        return 2;
    }
    vox_error err = {0};
    if (inspect(dir, list, &err) != VOX_OK) {
        fflush(stdout);
        fprintf(stderr, "vox-inspect: %s\n", err.msg);
        return 1;
    }
    return 0;
}
