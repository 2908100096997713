/* vox_tekken_gen.h - writes synthetic but structurally real tekken.json tokenizer files.
 *
 * The file has the layout of Mistral's real tekken.json (mistral-common Tekkenizer.from_file):
 *   config {pattern, num_vocab_tokens, default_vocab_size, default_num_special_tokens, version}
 *   vocab [{rank, token_bytes (base64), token_str (string, or null if not valid UTF-8)}]
 *   special_tokens [{rank, token_str, is_control}]   (all n_special entries, rank order)
 *   audio {...}                                      (optional: realtime ASR or TTS block)
 * Vocab ranks 0..255 are the single bytes; every further token is the concatenation of two
 * lower-ranked tokens, learnt by byte-pair training (most frequent pair first) on a small
 * built-in multilingual corpus whose word counts are perturbed by the seed, then (if more
 * entries are requested than the corpus can give) seeded concatenations of existing tokens.
 * The output is a pure function of the options: same options, byte-identical file.
 *
 * Named special tokens (the rest are fillers "<SPECIAL_n>", n = rank):
 *   0 <unk>, 1 <s>, 2 </s>, 3 [INST], 4 [/INST], 5 [AVAILABLE_TOOLS], 6 [/AVAILABLE_TOOLS],
 *   7 [TOOL_RESULTS], 8 [/TOOL_RESULTS], 9 [TOOL_CALLS], 10 [IMG], 11 <pad>, 12 [IMG_BREAK],
 *   13 [IMG_END], 14 [PREFIX], 15 [MIDDLE], 16 [SUFFIX], 17 [SYSTEM_PROMPT],
 *   18 [/SYSTEM_PROMPT], 19 [TOOL_CONTENT], 24 [AUDIO], 25 [BEGIN_AUDIO],
 *   32 [STREAMING_PAD], 33 [STREAMING_WORD], and
 *   realtime (tts == 0): 34 [REPEAT_AUDIO_TEXT];
 *   TTS (tts != 0): 26 [OUTPUT_AUDIO], 34 [TRANSCRIBE], 35 [REPEAT_AUDIO_TEXT],
 *   36 [NEXT_AUDIO_TEXT] ([TRANSCRIBE] because mistral-common's InstructTokenizerV7 requires
 *   it for a non-streaming audio block; its rank 34 is inferred, not from a real file).
 * (spec/voxtral-realtime.md section 6, spec/voxtral-tts.md section 2.2, mistral-common
 * Tekkenizer.DEPRECATED_SPECIAL_TOKENS.) n_special must exceed the highest named rank.
 *
 * Ownership: the options struct and the strings it points to belong to the caller; nothing
 * is retained after vox_tekken_gen_write returns. No global state. */
#ifndef VOX_TEKKEN_GEN_H
#define VOX_TEKKEN_GEN_H

#include <stdint.h>

#include "vox_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n_special;          /* config.default_num_special_tokens (default 1000) */
    int default_vocab_size; /* config.default_vocab_size: total ids incl. specials (default 2048) */
    int n_vocab_stored;     /* vocab entries written (= num_vocab_tokens), must be
                               >= default_vocab_size - n_special and >= 256; the real file
                               stores more than it uses (default 1100) */
    uint64_t seed;          /* perturbs corpus counts / tie-breaks / filler merges (default 1) */
    int delay_ms;           /* audio.transcription_delay_ms of the realtime block (default 480);
                               <= 0: no realtime "audio" block. Must be a multiple of 80. */
    int real_pattern;       /* 1: the real tekken pattern (default); 0: a GPT-2-like pattern
                               " ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+" */
    /* --- additive fields (zeroed/defaulted by vox_tekken_gen_defaults) --- */
    const char *version;    /* config.version; NULL -> "v7" */
    int tts;                /* 1: TTS special-token set and a TTS "audio" block (24 kHz,
                               frame_rate 12.5, audio_encoding_config 128/240/960 (inferred),
                               voice_num_audio_tokens); the realtime block is then not written */
    int n_voices;           /* TTS: number of voices in voice_num_audio_tokens */
    const char *const *voice_names; /* [n_voices] */
    const int *voice_num_audio_tokens; /* [n_voices], each > 0 */
} vox_tekken_gen_opts;

/* Fill *o with the defaults listed above. */
void vox_tekken_gen_defaults(vox_tekken_gen_opts *o);

/* Write a tekken.json to path. Returns VOX_OK or an error code (bad options, I/O). */
int vox_tekken_gen_write(const char *path, const vox_tekken_gen_opts *o, vox_error *err);

/* The real tekken pattern string (mistral-common tekken files, config.pattern). */
extern const char vox_tekken_real_pattern[];

#ifdef __cplusplus
}
#endif
#endif /* VOX_TEKKEN_GEN_H */
