/* vox-mkmodel - write a random-weight Voxtral Realtime model directory in the exact upstream
 * layout (params.json, consolidated.safetensors, tekken.json). See tools/common/vox_mkmodel.h.
 *
 *   vox-mkmodel --kind realtime --out DIR [--seed N] [--full] [dims...] [--dry-run]
 *   vox-mkmodel --kind tts --out DIR [--seed N] [--full] [--codec-encoder] [dims...] [--dry-run]
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

/* A number option outside the dims tables: *dst set and *have = 1 when given. Integral ones
 * must be whole numbers in [lo, hi]. */
typedef struct {
    const char *flag;
    double *dst;
    int *have;
    int integral;
    double lo, hi;
} num_flag;

#define MAX_DIM_FLAGS 64
typedef struct {
    const char *kind, *out;
    int full, dry, have_seed, codec_encoder;
    unsigned long long seed;
    int set[MAX_DIM_FLAGS];
    long long set_val[MAX_DIM_FLAGS];
} cli;

/* The command line of either kind: --kind, --out, --seed, --full, --dry-run, --help, the
 * integer dims of `flags` (recorded in c->set / c->set_val by index) and `nums`. Returns -1 to
 * go on, else the exit status (0 after --help, 2 on a bad option). */
static int parse_cli(int argc, char **argv, const int_flag *flags, int n_flags,
                     const num_flag *nums, int n_nums, void (*help)(FILE *), cli *c) {
    memset(c, 0, sizeof *c);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help(stdout);
            return 0;
        }
        if (!strcmp(a, "--full") || !strcmp(a, "--dry-run")) {
            *(a[2] == 'f' ? &c->full : &c->dry) = 1;
            continue;
        }
        if (!strcmp(a, "--codec-encoder")) {
            c->codec_encoder = 1;
            continue;
        }
        int fi = -1, ni = -1;
        for (int k = 0; k < n_flags; k++)
            if (!strcmp(a, flags[k].flag)) fi = k;
        for (int k = 0; k < n_nums; k++)
            if (!strcmp(a, nums[k].flag)) ni = k;
        int is_val = fi >= 0 || ni >= 0 || !strcmp(a, "--kind") || !strcmp(a, "--out") ||
                     !strcmp(a, "--seed");
        if (!is_val) return bad("unknown option '%s'%s", a, "");
        if (i + 1 >= argc) return bad("option '%s' needs a value%s", a, "");
        const char *v = argv[++i];
        if (!strcmp(a, "--kind")) {
            c->kind = v;
        } else if (!strcmp(a, "--out")) {
            c->out = v;
        } else if (!strcmp(a, "--seed")) {
            char *end = NULL;
            errno = 0;
            c->seed = strtoull(v, &end, 10);
            if (errno || !*v || *end || *v == '-')
                return bad("option '--seed': expected a non-negative integer, found '%s'%s", v, "");
            c->have_seed = 1;
        } else if (ni >= 0) {
            const num_flag *nf = &nums[ni];
            char *end = NULL;
            errno = 0;
            double x = strtod(v, &end);
            if (errno || !*v || *end) return bad("option '%s': expected a number, found '%s'", a, v);
            if (nf->integral && (x != (double)(long long)x || x < nf->lo || x > nf->hi)) {
                fprintf(stderr, "vox-mkmodel: option '%s': expected an integer in %g..%g, found "
                                "'%s' (see --help)\n", a, nf->lo, nf->hi, v);
                return 2;
            }
            *nf->dst = x;
            *nf->have = 1;
        } else {
            long long x;
            if (!parse_int(v, 1, 1 << 30, &x))
                return bad("option '%s': expected a positive integer, found '%s'", a, v);
            c->set[fi] = 1;
            c->set_val[fi] = x;
        }
    }
    return -1;
}

/* Store the given dims into the options struct at base. */
static void apply_dims(const cli *c, const int_flag *flags, int n_flags, void *base) {
    for (int k = 0; k < n_flags; k++)
        if (c->set[k]) *(int *)((char *)base + flags[k].off) = (int)c->set_val[k];
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
            "  --seed N, --full, --dry-run, --emb-std X, --voice-rows N (rows of every voice)\n"
            "  --codec-encoder   also write the codec encoder (input_proj.*, encoder_blocks.*,\n"
            "                    encoder_*_str keys; absent from the released checkpoint) so\n"
            "                    vox-tts --ref can make a voice from audio\n\n"
            "  %-18s    %-34s %8s %8s\n", "dims", "", "tiny", "--full");
    for (int i = 0; i < N_TTS_FLAGS; i++)
        fprintf(fp, "  %-18s N  %-34s %8d %8d\n", k_tts_flags[i].flag, k_tts_flags[i].help,
                *(const int *)((const char *)&t + k_tts_flags[i].off),
                *(const int *)((const char *)&f + k_tts_flags[i].off));
}

_Static_assert(N_FLAGS <= MAX_DIM_FLAGS && N_TTS_FLAGS <= MAX_DIM_FLAGS, "cli.set too small");

static int tts_main(int argc, char **argv) {
    int have_emb = 0, have_rows = 0;
    double emb_std = 0, voice_rows = 0;
    const num_flag nums[] = {{"--emb-std", &emb_std, &have_emb, 0, 0, 0},
                             {"--voice-rows", &voice_rows, &have_rows, 1, 1, 100000}};
    cli c;
    int rc = parse_cli(argc, argv, k_tts_flags, N_TTS_FLAGS, nums, 2, tts_usage, &c);
    if (rc >= 0) return rc;
    const char *out = c.out;
    if (!out && !c.dry) return bad("missing --out DIR%s%s", "", "");
    vox_mkmodel_tts_opts o;
    vox_mkmodel_tts_defaults(&o, c.full);
    if (c.have_seed) o.seed = c.seed;
    if (have_emb) o.emb_std = emb_std;
    o.codec.with_encoder = c.codec_encoder;
    apply_dims(&c, k_tts_flags, N_TTS_FLAGS, &o);
    if (o.n_voices > VOX_MKMODEL_TTS_MAX_VOICES) o.n_voices = VOX_MKMODEL_TTS_MAX_VOICES + 1;
    for (int i = 0; i < o.n_voices && i < VOX_MKMODEL_TTS_MAX_VOICES; i++)
        if (have_rows) o.voice_rows[i] = (int)voice_rows;
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
           "patch %d, %s\n", o.codec.dim, o.codec.n_heads, o.codec.n_kv_heads, o.codec.head_dim,
           o.codec.hidden_dim, o.codec.semantic_dim, o.codec.patch_size,
           o.codec.with_encoder ? "with encoder" : "decoder only");
    printf("vox-mkmodel: %d tensors, %llu bytes of BF16 data (%.2f GB)\n", n_t,
           (unsigned long long)n_b, (double)n_b / 1e9);
    if (c.dry) return 0;
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
    int have_emb = 0, have_special = 0;
    double emb_std = 0, special_scale = 0;
    const num_flag nums[] = {{"--emb-std", &emb_std, &have_emb, 0, 0, 0},
                             {"--special-scale", &special_scale, &have_special, 0, 0, 0}};
    cli c;
    int rc = parse_cli(argc, argv, k_flags, N_FLAGS, nums, 2, usage, &c);
    if (rc >= 0) return rc;
    const char *kind = c.kind, *out = c.out;
    if (!kind) return bad("missing --kind (realtime or tts)%s%s", "", "");
    if (strcmp(kind, "realtime") != 0)
        return bad("--kind '%s': expected 'realtime' or 'tts'%s", kind, "");
    if (!out && !c.dry) return bad("missing --out DIR%s%s", "", "");
    if (c.codec_encoder) return bad("--codec-encoder is a --kind tts option%s%s", "", "");

    vox_mkmodel_rt_opts o;
    vox_mkmodel_rt_defaults(&o, c.full);
    if (c.have_seed) o.seed = c.seed;
    if (have_emb) o.emb_std = emb_std;
    if (have_special) o.special_scale = special_scale;
    apply_dims(&c, k_flags, N_FLAGS, &o);
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
    if (c.dry) return 0;
    fflush(stdout);
    if (vox_mkmodel_rt_write(out, &o, &err) != VOX_OK) {
        fprintf(stderr, "vox-mkmodel: %s\n", err.msg);
        return 1;
    }
    printf("vox-mkmodel: wrote %s/{params.json,consolidated.safetensors,tekken.json}\n", out);
    return 0;
}
