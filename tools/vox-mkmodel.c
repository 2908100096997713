/* vox-mkmodel - write a random-weight Voxtral Realtime model directory in the exact upstream
 * layout (params.json, consolidated.safetensors, tekken.json). See tools/common/vox_mkmodel.h.
 *
 *   vox-mkmodel --kind realtime --out DIR [--seed N] [--full] [dims...] [--dry-run]
 *   vox-mkmodel --kind tts --out DIR [--seed N] [--full] [dims...] [--dry-run]
 *
 * Exit status: 0 ok, 1 failure while writing, 2 bad command line. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vox_mkmodel.h"

typedef struct {
    const char *flag;
    size_t off; /* offset of the int field in vox_mkmodel_rt_opts */
    const char *help;
} int_flag;

#define F(name, field, help) {name, offsetof(vox_mkmodel_rt_opts, field), help}
static const int_flag k_flags[] = {
    F("--dim", dim, "decoder width (dim)"),
    F("--layers", n_layers, "decoder layers (n_layers)"),
    F("--heads", n_heads, "decoder query heads (n_heads)"),
    F("--kv-heads", n_kv_heads, "decoder kv heads (n_kv_heads)"),
    F("--head-dim", head_dim, "decoder head_dim"),
    F("--hidden", hidden_dim, "decoder FFN hidden_dim"),
    F("--vocab", vocab_size, "vocab_size (incl. 1000 specials)"),
    F("--dec-window", sliding_window, "decoder sliding_window (tokens)"),
    F("--ada-dim", ada_dim, "ada_rms_norm_t_cond_dim"),
    F("--enc-dim", enc_dim, "encoder width"),
    F("--enc-layers", enc_layers, "encoder layers"),
    F("--enc-heads", enc_heads, "encoder heads (= kv heads)"),
    F("--enc-head-dim", enc_head_dim, "encoder head_dim"),
    F("--enc-hidden", enc_hidden, "encoder FFN hidden_dim"),
    F("--enc-window", enc_window, "encoder sliding_window (frames)"),
    F("--delay-ms", delay_ms, "tekken audio.transcription_delay_ms"),
};
#undef F
#define N_FLAGS ((int)(sizeof k_flags / sizeof k_flags[0]))

static void usage(FILE *fp) {
    vox_mkmodel_rt_opts t, f;
    vox_mkmodel_rt_defaults(&t, 0);
    vox_mkmodel_rt_defaults(&f, 1);
    fprintf(fp,
            "usage: vox-mkmodel --kind realtime --out DIR [options]\n"
            "Writes a random-weight Voxtral Realtime model (params.json, consolidated.safetensors\n"
            "in BF16 with the upstream tensor names, tekken.json) to DIR.\n\n"
            "  --kind realtime     model kind (realtime; --kind tts --help for TTS)\n"
            "  --out DIR           output directory (created)\n"
            "  --seed N            weight/tokenizer seed (default %llu)\n"
            "  --full              the released model's sizes (8.9 GB!) instead of the tiny model\n"
            "  --dry-run           print tensor count and bytes, write nothing\n"
            "  --help              this text\n\n"
            "  %-16s    %-36s %8s %8s\n", (unsigned long long)t.seed, "dims", "", "tiny", "--full");
    for (int i = 0; i < N_FLAGS; i++)
        fprintf(fp, "  %-16s N  %-36s %8d %8d\n", k_flags[i].flag, k_flags[i].help,
                *(const int *)((const char *)&t + k_flags[i].off),
                *(const int *)((const char *)&f + k_flags[i].off));
    fprintf(fp, "  %-16s X  %-36s %8g %8g\n", "--emb-std", "std of tok_embeddings", t.emb_std,
            f.emb_std);
    fprintf(fp, "  %-16s X  %-36s %8g %8g\n", "--special-scale",
            "scale of special-token embedding rows", t.special_scale, f.special_scale);
    fprintf(fp, "\nExplicit dims override the tiny or --full defaults. Special-token rows other\n"
                "than [STREAMING_PAD] (32) and [STREAMING_WORD] (33) are scaled so that a random\n"
                "model mostly emits text tokens.\n");
}

static int bad(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "vox-mkmodel: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, " (see --help)\n");
    return 2;
}

static int parse_int(const char *s, long long lo, long long hi, long long *out) {
    if (!s || !*s) return 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* ---- --kind tts ---- */
#define T(name, field, help) {name, offsetof(vox_mkmodel_tts_opts, field), help}
static const int_flag k_tts_flags[] = {
    T("--dim", dim, "backbone width (dim)"),
    T("--layers", n_layers, "backbone layers"),
    T("--heads", n_heads, "backbone query heads"),
    T("--kv-heads", n_kv_heads, "backbone kv heads"),
    T("--head-dim", head_dim, "backbone head_dim"),
    T("--hidden", hidden_dim, "backbone FFN hidden_dim"),
    T("--vocab", vocab_size, "vocab_size (incl. 1000 specials)"),
    T("--ac-layers", ac_layers, "acoustic transformer layers"),
    T("--ac-heads", ac_heads, "acoustic transformer heads"),
    T("--ac-kv-heads", ac_kv_heads, "acoustic transformer kv heads"),
    T("--ac-head-dim", ac_head_dim, "acoustic transformer head_dim"),
    T("--ac-hidden", ac_hidden, "acoustic transformer FFN hidden"),
    T("--semantic-size", semantic_size, "semantic codebook entries"),
    T("--acoustic-levels", acoustic_levels, "FSQ levels per acoustic code"),
    T("--n-acoustic", n_acoustic, "acoustic codebooks"),
    T("--codec-dim", codec.dim, "codec transformer width"),
    T("--codec-hidden", codec.hidden_dim, "codec FFN hidden"),
    T("--codec-heads", codec.n_heads, "codec heads"),
    T("--codec-kv-heads", codec.n_kv_heads, "codec kv heads"),
    T("--codec-head-dim", codec.head_dim, "codec head_dim"),
    T("--semantic-dim", codec.semantic_dim, "codec semantic_dim"),
    T("--patch", codec.patch_size, "codec pretransform_patch_size"),
    T("--voices", n_voices, "voices written (released order)"),
};
#undef T
#define N_TTS_FLAGS ((int)(sizeof k_tts_flags / sizeof k_tts_flags[0]))

static void tts_usage(FILE *fp) {
    vox_mkmodel_tts_opts t, f;
    vox_mkmodel_tts_defaults(&t, 0);
    vox_mkmodel_tts_defaults(&f, 1);
    fprintf(fp,
            "usage: vox-mkmodel --kind tts --out DIR [options]\n"
            "Writes a random-weight Voxtral TTS model (params.json, consolidated.safetensors in\n"
            "BF16 with the upstream names, tekken.json, voice_embedding/<name>.pt) to DIR.\n\n"
            "  --seed N, --full, --dry-run, --emb-std X, --voice-rows N (rows of every voice)\n\n"
            "  %-18s    %-34s %8s %8s\n", "dims", "", "tiny", "--full");
    for (int i = 0; i < N_TTS_FLAGS; i++)
        fprintf(fp, "  %-18s N  %-34s %8d %8d\n", k_tts_flags[i].flag, k_tts_flags[i].help,
                *(const int *)((const char *)&t + k_tts_flags[i].off),
                *(const int *)((const char *)&f + k_tts_flags[i].off));
}

static int tts_main(int argc, char **argv) {
    const char *out = NULL;
    int full = 0, dry = 0, have_seed = 0, have_emb = 0;
    unsigned long long seed = 0;
    double emb_std = 0;
    long long voice_rows = 0;
    long long set_val[N_TTS_FLAGS];
    int set[N_TTS_FLAGS] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            tts_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--full")) {
            full = 1;
            continue;
        }
        if (!strcmp(a, "--dry-run")) {
            dry = 1;
            continue;
        }
        int fi = -1;
        for (int k = 0; k < N_TTS_FLAGS; k++)
            if (!strcmp(a, k_tts_flags[k].flag)) fi = k;
        int is_val = fi >= 0 || !strcmp(a, "--kind") || !strcmp(a, "--out") ||
                     !strcmp(a, "--seed") || !strcmp(a, "--emb-std") || !strcmp(a, "--voice-rows");
        if (!is_val) return bad("unknown option '%s'%s", a, "");
        if (i + 1 >= argc) return bad("option '%s' needs a value%s", a, "");
        const char *v = argv[++i];
        if (!strcmp(a, "--kind")) {
            continue;
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--seed")) {
            char *end = NULL;
            errno = 0;
            seed = strtoull(v, &end, 10);
            if (errno || !*v || *end || *v == '-')
                return bad("option '--seed': expected a non-negative integer, found '%s'%s", v, "");
            have_seed = 1;
        } else if (!strcmp(a, "--emb-std")) {
            char *end = NULL;
            errno = 0;
            emb_std = strtod(v, &end);
            if (errno || !*v || *end)
                return bad("option '%s': expected a number, found '%s'", a, v);
            have_emb = 1;
        } else if (!strcmp(a, "--voice-rows")) {
            if (!parse_int(v, 1, 100000, &voice_rows))
                return bad("option '%s': expected an integer in 1..100000, found '%s'", a, v);
        } else {
            long long x;
            if (!parse_int(v, 1, 1 << 30, &x))
                return bad("option '%s': expected a positive integer, found '%s'", a, v);
            set[fi] = 1;
            set_val[fi] = x;
        }
    }
    if (!out && !dry) return bad("missing --out DIR%s%s", "", "");
    vox_mkmodel_tts_opts o;
    vox_mkmodel_tts_defaults(&o, full);
    if (have_seed) o.seed = seed;
    if (have_emb) o.emb_std = emb_std;
    for (int k = 0; k < N_TTS_FLAGS; k++)
        if (set[k]) *(int *)((char *)&o + k_tts_flags[k].off) = (int)set_val[k];
    if (o.n_voices > VOX_MKMODEL_TTS_MAX_VOICES) o.n_voices = VOX_MKMODEL_TTS_MAX_VOICES + 1;
    for (int i = 0; i < o.n_voices && i < VOX_MKMODEL_TTS_MAX_VOICES; i++)
        if (voice_rows > 0) o.voice_rows[i] = (int)voice_rows;
        else if (o.voice_rows[i] <= 0) o.voice_rows[i] = 4 + 3 * i;
    vox_error err = {0};
    if (vox_mkmodel_tts_check(&o, &err) != VOX_OK) {
        fprintf(stderr, "vox-mkmodel: %s (see --help)\n", err.msg);
        return 2;
    }
    int n_t = 0;
    uint64_t n_b = 0;
    if (vox_mkmodel_tts_size(&o, &n_t, &n_b, &err) != VOX_OK) {
        fprintf(stderr, "vox-mkmodel: %s\n", err.msg);
        return 1;
    }
    printf("vox-mkmodel: tts dim %d x %d layers (heads %d/%d, head_dim %d, hidden %d, vocab %d), "
           "acoustic %d layers (heads %d/%d, head_dim %d, hidden %d), codebooks %d+%dx%d, %d voices\n",
           o.dim, o.n_layers, o.n_heads, o.n_kv_heads, o.head_dim, o.hidden_dim, o.vocab_size,
           o.ac_layers, o.ac_heads, o.ac_kv_heads, o.ac_head_dim, o.ac_hidden, o.semantic_size,
           o.n_acoustic, o.acoustic_levels, o.n_voices);
    printf("vox-mkmodel: codec dim %d, heads %d/%d, head_dim %d, hidden %d, semantic_dim %d, "
           "patch %d\n", o.codec.dim, o.codec.n_heads, o.codec.n_kv_heads, o.codec.head_dim,
           o.codec.hidden_dim, o.codec.semantic_dim, o.codec.patch_size);
    printf("vox-mkmodel: %d tensors, %llu bytes of BF16 data (%.2f GB)\n", n_t,
           (unsigned long long)n_b, (double)n_b / 1e9);
    if (dry) return 0;
    fflush(stdout);
    if (vox_mkmodel_tts_write(out, &o, &err) != VOX_OK) {
        fprintf(stderr, "vox-mkmodel: %s\n", err.msg);
        return 1;
    }
    printf("vox-mkmodel: wrote %s/{params.json,consolidated.safetensors,tekken.json,"
           "voice_embedding/}\n", out);
    return 0;
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--kind") && !strcmp(argv[i + 1], "tts")) return tts_main(argc, argv);
    const char *kind = NULL, *out = NULL;
    int full = 0, dry = 0, have_seed = 0;
    unsigned long long seed = 0;
    double emb_std = 0, special_scale = 0;
    int have_emb = 0, have_special = 0;
    long long set_val[N_FLAGS];
    int set[N_FLAGS] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--full")) {
            full = 1;
            continue;
        }
        if (!strcmp(a, "--dry-run")) {
            dry = 1;
            continue;
        }
        int fi = -1;
        for (int k = 0; k < N_FLAGS; k++)
            if (!strcmp(a, k_flags[k].flag)) fi = k;
        int is_val = fi >= 0 || !strcmp(a, "--kind") || !strcmp(a, "--out") ||
                     !strcmp(a, "--seed") || !strcmp(a, "--emb-std") || !strcmp(a, "--special-scale");
        if (!is_val) return bad("unknown option '%s'%s", a, "");
        if (i + 1 >= argc) return bad("option '%s' needs a value%s", a, "");
        const char *v = argv[++i];
        if (!strcmp(a, "--kind")) {
            kind = v;
        } else if (!strcmp(a, "--out")) {
            out = v;
        } else if (!strcmp(a, "--seed")) {
            char *end = NULL;
            errno = 0;
            seed = strtoull(v, &end, 10);
            if (errno || !*v || *end || *v == '-')
                return bad("option '--seed': expected a non-negative integer, found '%s'%s", v, "");
            have_seed = 1;
        } else if (!strcmp(a, "--emb-std") || !strcmp(a, "--special-scale")) {
            char *end = NULL;
            errno = 0;
            double x = strtod(v, &end);
            if (errno || !*v || *end)
                return bad("option '%s': expected a number, found '%s'", a, v);
            if (a[2] == 'e') {
                emb_std = x;
                have_emb = 1;
            } else {
                special_scale = x;
                have_special = 1;
            }
        } else {
            long long x;
            if (!parse_int(v, 1, 1 << 30, &x))
                return bad("option '%s': expected a positive integer, found '%s'", a, v);
            set[fi] = 1;
            set_val[fi] = x;
        }
    }
    if (!kind) return bad("missing --kind (realtime or tts)%s%s", "", "");
    if (strcmp(kind, "realtime") != 0)
        return bad("--kind '%s': expected 'realtime' or 'tts'%s", kind, "");
    if (!out && !dry) return bad("missing --out DIR%s%s", "", "");

    vox_mkmodel_rt_opts o;
    vox_mkmodel_rt_defaults(&o, full);
    if (have_seed) o.seed = seed;
    if (have_emb) o.emb_std = emb_std;
    if (have_special) o.special_scale = special_scale;
    for (int k = 0; k < N_FLAGS; k++)
        if (set[k]) *(int *)((char *)&o + k_flags[k].off) = (int)set_val[k];
    vox_error err = {0};
    if (vox_mkmodel_rt_check(&o, &err) != VOX_OK) {
        fprintf(stderr, "vox-mkmodel: %s (see --help)\n", err.msg);
        return 2;
    }
    int n_t = 0;
    uint64_t n_b = 0;
    vox_mkmodel_rt_size(&o, &n_t, &n_b);
    printf("vox-mkmodel: realtime dim %d x %d layers (heads %d/%d, head_dim %d, hidden %d, vocab %d), "
           "encoder %d x %d layers (heads %d, head_dim %d, hidden %d), windows enc %d dec %d, delay %d ms\n",
           o.dim, o.n_layers, o.n_heads, o.n_kv_heads, o.head_dim, o.hidden_dim, o.vocab_size,
           o.enc_dim, o.enc_layers, o.enc_heads, o.enc_head_dim, o.enc_hidden, o.enc_window,
           o.sliding_window, o.delay_ms);
    printf("vox-mkmodel: %d tensors, %llu bytes of BF16 data (%.2f GB)\n", n_t,
           (unsigned long long)n_b, (double)n_b / 1e9);
    if (dry) return 0;
    fflush(stdout);
    if (vox_mkmodel_rt_write(out, &o, &err) != VOX_OK) {
        fprintf(stderr, "vox-mkmodel: %s\n", err.msg);
        return 1;
    }
    printf("vox-mkmodel: wrote %s/{params.json,consolidated.safetensors,tekken.json}\n", out);
    return 0;
}
