/* vox-mkcodec - write a random-weight Voxtral Codec model directory (params.json with
 * multimodal.audio_tokenizer_args, consolidated.safetensors with the audio_tokenizer.* tensors)
 * in the upstream layout.
 * Usage: vox-mkcodec OUTDIR [--full] [--seed N] [--bf16] [--patch-kernel K] [--encoder] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_mkcodec.h"

int main(int argc, char **argv) {
    const char *dir = NULL;
    int full = 0, bf16 = 0, pk = 0, enc = 0;
    unsigned long long seed = 1234;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--full"))
            full = 1;
        else if (!strcmp(argv[i], "--bf16"))
            bf16 = 1;
        else if (!strcmp(argv[i], "--encoder"))
            enc = 1;
        else if (!strcmp(argv[i], "--patch-kernel") && i + 1 < argc)
            pk = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else {
            fprintf(stderr, "usage: vox-mkcodec OUTDIR [--full] [--seed N] [--bf16] "
                            "[--patch-kernel K] [--encoder]\n");
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: vox-mkcodec OUTDIR [--full] [--seed N] [--bf16] [--patch-kernel K] "
                        "[--encoder]\n");
        return 2;
    }
    vox_mkcodec_opts o;
    vox_mkcodec_defaults(&o, full);
    o.seed = seed;
    if (bf16) o.dtype = VOX_DT_BF16;
    if (pk) o.patch_kernel = pk;
    o.with_encoder = enc;
    vox_error err = {0};
    if (vox_mkcodec_write_dir(dir, &o, &err)) {
        fprintf(stderr, "vox-mkcodec: %s\n", err.msg);
        return 1;
    }
    return 0;
}
