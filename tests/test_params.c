/* test_params.c - params.json getters on both upstream layouts (values typed in from
 * spec/voxtral-realtime.md section 5 and spec/voxtral-tts.md section 4.2), missing and mistyped
 * keys, defaults and comma-separated integer lists. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vox_params.h"
#include "vox_test.h"

/* The Voxtral Realtime params.json (key paths and values of the released file). */
static const char *k_realtime =
    "{\n"
    "  \"dim\": 3072, \"n_layers\": 26, \"head_dim\": 128, \"hidden_dim\": 9216,\n"
    "  \"n_heads\": 32, \"n_kv_heads\": 8, \"use_biases\": false, \"causal\": true,\n"
    "  \"rope_theta\": 1000000.0, \"norm_eps\": 1e-05, \"vocab_size\": 131072,\n"
    "  \"model_parallel\": 1, \"tied_embeddings\": true, \"sliding_window\": 8192,\n"
    "  \"model_max_length\": 131072,\n"
    "  \"multimodal\": {\n"
    "    \"whisper_model_args\": {\n"
    "      \"encoder_args\": {\n"
    "        \"audio_encoding_args\": {\"sampling_rate\": 16000, \"frame_rate\": 12.5,\n"
    "          \"num_mel_bins\": 128, \"hop_length\": 160, \"window_size\": 400,\n"
    "          \"chunk_length_s\": null, \"global_log_mel_max\": 1.5,\n"
    "          \"transcription_format\": \"streaming\"},\n"
    "        \"dim\": 1280, \"n_layers\": 32, \"head_dim\": 64, \"hidden_dim\": 5120,\n"
    "        \"n_heads\": 32, \"vocab_size\": 131072, \"n_kv_heads\": 32, \"use_biases\": true,\n"
    "        \"use_cache\": false, \"rope_theta\": 1000000.0, \"causal\": true, \"norm_eps\": 1e-05,\n"
    "        \"pos_embed\": \"rope\", \"max_source_positions\": null, \"ffn_type\": \"swiglu\",\n"
    "        \"norm_type\": \"rms_norm\", \"sliding_window\": 750\n"
    "      },\n"
    "      \"downsample_args\": {\"downsample_factor\": 4}\n"
    "    }\n"
    "  },\n"
    "  \"ada_rms_norm_t_cond\": true, \"ada_rms_norm_t_cond_dim\": 32\n"
    "}\n";

/* The Voxtral TTS params.json (spec/voxtral-tts.md 4.2; voice map shortened). */
static const char *k_tts =
    "{\"dim\": 3072, \"n_layers\": 26, \"head_dim\": 128, \"hidden_dim\": 9216, \"n_heads\": 32,\n"
    " \"n_kv_heads\": 8, \"rope_theta\": 1000000.0, \"norm_eps\": 1e-05, \"vocab_size\": 131072,\n"
    " \"max_seq_len\": 65536, \"max_position_embeddings\": 128000, \"model_type\": \"voxtral_tts\",\n"
    " \"tied_embeddings\": true, \"causal\": true,\n"
    " \"multimodal\": {\"bos_token_id\": 1,\n"
    "  \"audio_model_args\": {\"semantic_codebook_size\": 8192, \"acoustic_codebook_size\": 21,\n"
    "   \"n_acoustic_codebook\": 36,\n"
    "   \"audio_encoding_args\": {\"codebook_pattern\": \"parallel\",\n"
    "     \"interleave_audio_tokens_per_segment\": 8192, \"interleave_text_tokens_per_segment\": 8192,\n"
    "     \"single_trailing_segment\": false, \"num_codebooks\": 37, \"sampling_rate\": 24000,\n"
    "     \"frame_rate\": 12.5},\n"
    "   \"audio_token_id\": 24, \"begin_audio_token_id\": 25, \"input_embedding_concat_type\": \"sum\",\n"
    "   \"acoustic_transformer_args\": {\"input_dim\": 3072, \"dim\": 3072, \"n_layers\": 3,\n"
    "     \"head_dim\": 128, \"hidden_dim\": 9216, \"n_heads\": 32, \"n_kv_heads\": 8,\n"
    "     \"use_biases\": false, \"rope_theta\": 10000.0, \"sigma\": 1e-05, \"sigma_max\": 1.0},\n"
    "   \"p_uncond\": 0.0, \"text_feature_bugged\": false, \"condition_dropped_token_id\": 42},\n"
    "  \"audio_tokenizer_args\": {\"channels\": 1, \"sampling_rate\": 24000,\n"
    "   \"pretransform_patch_size\": 240, \"patch_proj_kernel_size\": 7,\n"
    "   \"semantic_codebook_size\": 8192, \"semantic_dim\": 256, \"acoustic_codebook_size\": 21,\n"
    "   \"acoustic_dim\": 36, \"conv_weight_norm\": true, \"causal\": true,\n"
    "   \"attn_sliding_window_size\": 16, \"half_attn_window_upon_downsampling\": true,\n"
    "   \"dim\": 1024, \"hidden_dim\": 4096, \"head_dim\": 128, \"n_heads\": 8, \"n_kv_heads\": 8,\n"
    "   \"qk_norm_eps\": 1e-06, \"qk_norm\": true, \"use_biases\": false, \"norm_eps\": 0.01,\n"
    "   \"layer_scale\": true, \"layer_scale_init\": 0.01,\n"
    "   \"decoder_transformer_lengths_str\": \"2,2,2,2\", \"decoder_convs_kernels_str\": \"3,4,4,4\",\n"
    "   \"decoder_convs_strides_str\": \"1,2,2,2\",\n"
    "   \"voice\": {\"casual_female\": 0, \"casual_male\": 1, \"neutral_male\": 4}}}}\n";

#define RT_ENC "multimodal.whisper_model_args.encoder_args."
#define TTS_AM "multimodal.audio_model_args."
#define TTS_AT "multimodal.audio_tokenizer_args."

static int64_t geti(vox_test_state *ts, const vox_params *p, const char *key) {
    int64_t v = -999;
    vox_error err = {0};
    int rc = vox_params_int(p, key, &v, &err);
    VOX_CHECK(ts, rc == VOX_OK, "int %s: %s", key, err.msg);
    return v;
}

static double getf(vox_test_state *ts, const vox_params *p, const char *key) {
    double v = -999;
    vox_error err = {0};
    int rc = vox_params_float(p, key, &v, &err);
    VOX_CHECK(ts, rc == VOX_OK, "float %s: %s", key, err.msg);
    return v;
}

static void test_realtime(vox_test_state *ts) {
    vox_error err = {0};
    vox_params *p = vox_params_parse(k_realtime, "rt/params.json", &err);
    VOX_CHECK(ts, p != NULL, "parse realtime: %s", err.msg);
    if (!p) return;
    VOX_CHECK(ts, strcmp(vox_params_path(p), "rt/params.json") == 0, "name");
    VOX_CHECK(ts, geti(ts, p, "dim") == 3072, "dim");
    VOX_CHECK(ts, geti(ts, p, "n_layers") == 26, "n_layers");
    VOX_CHECK(ts, geti(ts, p, "n_kv_heads") == 8, "n_kv_heads");
    VOX_CHECK(ts, geti(ts, p, "vocab_size") == 131072, "vocab");
    VOX_CHECK(ts, geti(ts, p, "sliding_window") == 8192, "window");
    /* 1000000.0 is an integral number: accepted as int and as float */
    VOX_CHECK(ts, geti(ts, p, "rope_theta") == 1000000, "rope_theta as int");
    VOX_CHECK(ts, getf(ts, p, "rope_theta") == 1e6, "rope_theta");
    VOX_CHECK(ts, fabs(getf(ts, p, "norm_eps") - 1e-5) < 1e-18, "norm_eps");
    VOX_CHECK(ts, getf(ts, p, "dim") == 3072.0, "int as float");
    VOX_CHECK(ts, geti(ts, p, RT_ENC "dim") == 1280, "enc dim");
    VOX_CHECK(ts, geti(ts, p, RT_ENC "n_layers") == 32, "enc layers");
    VOX_CHECK(ts, geti(ts, p, RT_ENC "head_dim") == 64, "enc head_dim");
    VOX_CHECK(ts, geti(ts, p, RT_ENC "sliding_window") == 750, "enc window");
    VOX_CHECK(ts, geti(ts, p, RT_ENC "audio_encoding_args.hop_length") == 160, "hop");
    VOX_CHECK(ts, getf(ts, p, RT_ENC "audio_encoding_args.frame_rate") == 12.5, "frame rate");
    VOX_CHECK(ts, getf(ts, p, RT_ENC "audio_encoding_args.global_log_mel_max") == 1.5, "mel max");
    VOX_CHECK(ts, geti(ts, p, "multimodal.whisper_model_args.downsample_args.downsample_factor") == 4,
              "downsample");
    VOX_CHECK(ts, geti(ts, p, "ada_rms_norm_t_cond_dim") == 32, "ada dim");

    int b = -1;
    VOX_CHECK(ts, vox_params_bool(p, "tied_embeddings", &b, &err) == 0 && b == 1, "tied");
    VOX_CHECK(ts, vox_params_bool(p, "use_biases", &b, &err) == 0 && b == 0, "use_biases");
    VOX_CHECK(ts, vox_params_bool(p, RT_ENC "use_biases", &b, &err) == 0 && b == 1, "enc biases");
    const char *s = NULL;
    VOX_CHECK(ts, vox_params_str(p, RT_ENC "ffn_type", &s, &err) == 0 && s && !strcmp(s, "swiglu"),
              "ffn_type");
    VOX_CHECK(ts, vox_params_str(p, RT_ENC "audio_encoding_args.transcription_format", &s, &err) ==
                      0 && !strcmp(s, "streaming"), "transcription_format");

    /* has(): present, absent, null, inside a non-object */
    VOX_CHECK(ts, vox_params_has(p, "dim"), "has dim");
    VOX_CHECK(ts, vox_params_has(p, "multimodal.whisper_model_args"), "has object");
    VOX_CHECK(ts, !vox_params_has(p, "nope"), "has absent");
    VOX_CHECK(ts, !vox_params_has(p, RT_ENC "max_source_positions"), "has null");
    VOX_CHECK(ts, !vox_params_has(p, "dim.x"), "has under a number");
    VOX_CHECK(ts, !vox_params_has(p, "multimodal..x") && !vox_params_has(p, ""), "bad keys");

    /* defaults: absent and null give the default; present gives the value */
    int64_t v = 0;
    VOX_CHECK(ts, vox_params_int_or(p, RT_ENC "max_source_positions", 1500, &v, &err) == 0 &&
                      v == 1500, "null -> default");
    VOX_CHECK(ts, vox_params_int_or(p, "max_seq_len", 77, &v, &err) == 0 && v == 77,
              "absent -> default");
    VOX_CHECK(ts, vox_params_int_or(p, "dim", 77, &v, &err) == 0 && v == 3072, "present");
    double d = 0;
    VOX_CHECK(ts, vox_params_float_or(p, RT_ENC "audio_encoding_args.chunk_length_s", 30.0, &d,
                                      &err) == 0 && d == 30.0, "float null -> default");
    VOX_CHECK(ts, vox_params_bool_or(p, "absent.deeper.key", 1, &b, &err) == 0 && b == 1,
              "bool absent path -> default");

    /* errors: exact messages */
    int rc = vox_params_int(p, RT_ENC "ffn_type", &v, &err);
    VOX_CHECK(ts, rc == VOX_ERR_FORMAT &&
                      !strcmp(err.msg, "rt/params.json: key '" RT_ENC
                                       "ffn_type': expected an integer, found a string"),
              "int of a string: %s", err.msg);
    rc = vox_params_int(p, "norm_eps", &v, &err);
    VOX_CHECK(ts, rc == VOX_ERR_FORMAT &&
                      strstr(err.msg, "key 'norm_eps': expected an integer, found a non-integral "
                                      "number (1e-05)"), "int of 1e-5: %s", err.msg);
    rc = vox_params_int(p, "n_experts", &v, &err);
    VOX_CHECK(ts, rc == VOX_ERR_NOTFOUND &&
                      !strcmp(err.msg, "rt/params.json: key 'n_experts' is missing"),
              "missing int: %s", err.msg);
    rc = vox_params_int(p, RT_ENC "max_source_positions", &v, &err);
    VOX_CHECK(ts, rc == VOX_ERR_NOTFOUND, "null required: %s", err.msg);
    rc = vox_params_bool(p, "dim", &b, &err);
    VOX_CHECK(ts, rc == VOX_ERR_FORMAT && strstr(err.msg, "key 'dim': expected a boolean, found an "
                                                          "integer"), "bool of int: %s", err.msg);
    rc = vox_params_str(p, "multimodal", &s, &err);
    VOX_CHECK(ts, rc == VOX_ERR_FORMAT && strstr(err.msg, "expected a string, found an object"),
              "str of object: %s", err.msg);
    rc = vox_params_float(p, "causal", &d, &err);
    VOX_CHECK(ts, rc == VOX_ERR_FORMAT && strstr(err.msg, "expected a number, found a boolean"),
              "float of bool: %s", err.msg);
    rc = vox_params_int_or(p, "dim.sub", 5, &v, &err);
    VOX_CHECK(ts, rc == VOX_ERR_FORMAT && strstr(err.msg, "key 'dim.sub': 'dim' is not an object"),
              "path through a number: %s", err.msg);
    rc = vox_params_int_or(p, "tied_embeddings", 5, &v, &err);
    VOX_CHECK(ts, rc == VOX_ERR_FORMAT, "default getter on a mistyped value must fail");
    vox_params_free(p);
}

static void test_tts(vox_test_state *ts) {
    vox_error err = {0};
    vox_params *p = vox_params_parse(k_tts, "tts/params.json", &err);
    VOX_CHECK(ts, p != NULL, "parse tts: %s", err.msg);
    if (!p) return;
    VOX_CHECK(ts, geti(ts, p, "max_seq_len") == 65536, "max_seq_len");
    VOX_CHECK(ts, geti(ts, p, "multimodal.bos_token_id") == 1, "bos");
    VOX_CHECK(ts, geti(ts, p, TTS_AM "n_acoustic_codebook") == 36, "n_acoustic");
    VOX_CHECK(ts, geti(ts, p, TTS_AM "audio_encoding_args.num_codebooks") == 37, "num_codebooks");
    VOX_CHECK(ts, geti(ts, p, TTS_AM "acoustic_transformer_args.n_layers") == 3, "fm layers");
    VOX_CHECK(ts, getf(ts, p, TTS_AM "acoustic_transformer_args.sigma") == 1e-5, "sigma");
    VOX_CHECK(ts, geti(ts, p, TTS_AT "attn_sliding_window_size") == 16, "codec window");
    VOX_CHECK(ts, getf(ts, p, TTS_AT "norm_eps") == 0.01, "codec eps");
    VOX_CHECK(ts, geti(ts, p, TTS_AT "voice.neutral_male") == 4, "voice index");
    const char *s = NULL;
    VOX_CHECK(ts, vox_params_str(p, "model_type", &s, &err) == 0 && !strcmp(s, "voxtral_tts"),
              "model_type");
    int64_t v = 0;
    VOX_CHECK(ts, vox_params_int_or(p, TTS_AM "n_decoding_steps", 7, &v, &err) == 0 && v == 7,
              "n_decoding_steps default");

    int64_t list[8] = {0};
    int n = -1;
    VOX_CHECK(ts, vox_params_int_list(p, TTS_AT "decoder_convs_kernels_str", list, 8, &n, &err) ==
                      0 && n == 4 && list[0] == 3 && list[1] == 4 && list[2] == 4 && list[3] == 4,
              "kernels list: %s", err.msg);
    VOX_CHECK(ts, vox_params_int_list(p, TTS_AT "decoder_convs_strides_str", list, 8, &n, &err) ==
                      0 && n == 4 && list[0] == 1 && list[3] == 2, "strides list");
    int rc = vox_params_int_list(p, TTS_AT "decoder_transformer_lengths_str", list, 3, &n, &err);
    VOX_CHECK(ts, rc == VOX_ERR_FORMAT && strstr(err.msg, "expected at most 3 integers"),
              "list over cap: %s", err.msg);
    rc = vox_params_int_list(p, TTS_AT "encoder_convs_kernels_str", list, 8, &n, &err);
    VOX_CHECK(ts, rc == VOX_ERR_NOTFOUND && strstr(err.msg, "is missing"), "absent list: %s",
              err.msg);
    rc = vox_params_int_list(p, TTS_AT "dim", list, 8, &n, &err);
    VOX_CHECK(ts, rc == VOX_ERR_FORMAT && strstr(err.msg, "expected an integer list"),
              "list of a number: %s", err.msg);
    vox_params_free(p);

    /* lists as arrays, with spaces, empty, malformed */
    p = vox_params_parse("{\"a\": [1, -2, 3], \"b\": \" 5 , 6,7 \", \"c\": \"\", \"d\": \"1,,2\","
                         " \"e\": \"1,x\", \"f\": [1, 2.5], \"g\": \"3,\"}", "lists", &err);
    VOX_CHECK(ts, p != NULL, "parse lists: %s", err.msg);
    if (!p) return;
    VOX_CHECK(ts, vox_params_int_list(p, "a", list, 8, &n, &err) == 0 && n == 3 && list[1] == -2,
              "array list");
    VOX_CHECK(ts, vox_params_int_list(p, "b", list, 8, &n, &err) == 0 && n == 3 && list[0] == 5 &&
                      list[2] == 7, "spaced list: %s", err.msg);
    VOX_CHECK(ts, vox_params_int_list(p, "c", list, 8, &n, &err) == 0 && n == 0, "empty list");
    VOX_CHECK(ts, vox_params_int_list(p, "d", list, 8, &n, &err) == VOX_ERR_FORMAT &&
                      strstr(err.msg, "lists: key 'd': expected comma-separated integers, found "
                                      "\"1,,2\""), "empty element: %s", err.msg);
    VOX_CHECK(ts, vox_params_int_list(p, "e", list, 8, &n, &err) == VOX_ERR_FORMAT, "1,x");
    VOX_CHECK(ts, vox_params_int_list(p, "g", list, 8, &n, &err) == VOX_ERR_FORMAT, "trailing ,");
    VOX_CHECK(ts, vox_params_int_list(p, "f", list, 8, &n, &err) == VOX_ERR_FORMAT &&
                      strstr(err.msg, "element 1: expected an integer, found a non-integral"),
              "2.5 in array: %s", err.msg);
    vox_params_free(p);
}

static void test_bad_files(vox_test_state *ts) {
    vox_error err = {0};
    vox_params *p = vox_params_parse("{\"dim\": 3072,\n \"n_layers\": }", "bad.json", &err);
    VOX_CHECK(ts, !p && err.code == VOX_ERR_FORMAT && strstr(err.msg, "bad.json: not valid JSON") &&
                      strstr(err.msg, "line 2"), "invalid JSON: %s", err.msg);
    p = vox_params_parse("[1, 2]", "arr.json", &err);
    VOX_CHECK(ts, !p && strstr(err.msg, "arr.json: expected a JSON object at the top, found an "
                                        "array"), "array root: %s", err.msg);
    p = vox_params_parse("{} {}", "two.json", &err);
    VOX_CHECK(ts, !p && strstr(err.msg, "trailing text"), "two values: %s", err.msg);

    char dir[] = "/tmp/vox_test_params_XXXXXX";
    if (!mkdtemp(dir)) return;
    char path[128];
    snprintf(path, sizeof path, "%s/params.json", dir);
    p = vox_params_load(path, &err);
    VOX_CHECK(ts, !p && err.code == VOX_ERR_IO && strstr(err.msg, path), "absent file: %s",
              err.msg);
    FILE *fp = fopen(path, "wb");
    if (fp) {
        fputs(k_realtime, fp);
        fclose(fp);
    }
    p = vox_params_load(path, &err);
    VOX_CHECK(ts, p && !strcmp(vox_params_path(p), path), "load from file: %s", err.msg);
    int64_t v = 0;
    int rc = vox_params_int(p, "hidden_dim", &v, &err);
    VOX_CHECK(ts, rc == 0 && v == 9216, "file hidden_dim");
    rc = vox_params_int(p, "missing", &v, &err);
    VOX_CHECK(ts, rc && strncmp(err.msg, path, strlen(path)) == 0, "message names the file: %s",
              err.msg);
    vox_params_free(p);
    remove(path);
    rmdir(dir);
}

int main(void) {
    vox_test_state ts = {0};
    test_realtime(&ts);
    test_tts(&ts);
    test_bad_files(&ts);
    return vox_test_done(&ts, "test_params");
}
