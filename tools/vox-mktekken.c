/* vox-mktekken - write a synthetic tekken.json (tools/common/vox_tekken_gen.h).
 *
 * usage: vox-mktekken OUT.json [--n-special N] [--vocab-size N] [--stored N] [--seed S]
 *                     [--delay-ms MS] [--alt-pattern] [--version V] [--tts]
 *                     [--voice NAME=N]... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_tekken_gen.h"

#define MAX_VOICES 64

static void usage(void) {
    fprintf(stderr,
            "usage: vox-mktekken OUT.json [--n-special N] [--vocab-size N] [--stored N]\n"
            "       [--seed S] [--delay-ms MS] [--alt-pattern] [--version V] [--tts]\n"
            "       [--voice NAME=N]...\n");
}

int main(int argc, char **argv) {
    vox_tekken_gen_opts o;
    vox_tekken_gen_defaults(&o);
    const char *out = NULL;
    char *names[MAX_VOICES];
    const char *cnames[MAX_VOICES];
    int counts[MAX_VOICES];
    int nv = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--alt-pattern")) {
            o.real_pattern = 0;
        } else if (!strcmp(a, "--tts")) {
            o.tts = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            if (!v) {
                usage();
                return 2;
            }
            i++;
            if (!strcmp(a, "--n-special")) o.n_special = atoi(v);
            else if (!strcmp(a, "--vocab-size")) o.default_vocab_size = atoi(v);
            else if (!strcmp(a, "--stored")) o.n_vocab_stored = atoi(v);
            else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 0);
            else if (!strcmp(a, "--delay-ms")) o.delay_ms = atoi(v);
            else if (!strcmp(a, "--version")) o.version = v;
            else if (!strcmp(a, "--voice")) {
                const char *eq = strchr(v, '=');
                if (!eq || nv == MAX_VOICES) {
                    usage();
                    return 2;
                }
                names[nv] = strndup(v, (size_t)(eq - v));
                cnames[nv] = names[nv];
                counts[nv] = atoi(eq + 1);
                nv++;
            } else {
                usage();
                return 2;
            }
        } else if (!out) {
            out = a;
        } else {
            usage();
            return 2;
        }
    }
    if (!out) {
        usage();
        return 2;
    }
    o.n_voices = nv;
    o.voice_names = cnames;
    o.voice_num_audio_tokens = counts;
    vox_error err = {0};
    int rc = vox_tekken_gen_write(out, &o, &err);
    for (int i = 0; i < nv; i++) free(names[i]);
    if (rc != VOX_OK) {
        fprintf(stderr, "vox-mktekken: %s\n", err.msg);
        return 1;
    }
    return 0;
}
