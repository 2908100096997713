#!/usr/bin/env python3
"""Golden outputs for the Voxtral Realtime ASR engine, computed with the upstream reference
(Hugging Face transformers' VoxtralRealtime, float32, eager attention, CPU, one thread).

Usage:
    asr_ref.py MODEL_DIR AUDIO.wav OUT [--delay-ms MS] [--act-dtype f16|f32] [--mkmodel-cmd STR]

MODEL_DIR holds the native (consolidated) layout: params.json, consolidated.safetensors, tekken.json,
e.g. as written by `vox-mkmodel --kind realtime`. OUT is a directory (meta.json + tensors.safetensors)
or, if it ends with ".npz", one numpy archive with the same arrays plus "meta_json".

What it does (see docs/reference-asr.md for the procedure and the traps):
  1. builds a transformers VoxtralRealtimeConfig from params.json, every size and both sliding
     windows taken from the file (never from class defaults);
  2. maps the native tensor names to the transformers module names and permutes q/k rows from
     Mistral's interleaved-pair RoPE layout to transformers' rotate-half layout (own code);
  3. pads the audio and builds the prompt as mistral-common does in OFFLINE streaming mode, with
     every value read from tekken.json's "audio" block, and cross-checks both against mistral-common
     itself when it can load the tekken.json;
  4. runs the feature extractor, conv stem, encoder, adapter, time embedding, and `generate`
     (greedy), and re-runs the decode as a no-cache greedy loop (full forward at every step);
     the two token sequences must agree, else the script fails.

Saved arrays (activations in --act-dtype, default float16; shapes without the batch axis):
  mel          [n_mels, T]       log-mel of the padded audio (T = padded_len / hop)
  conv_out     [T/2, E]          conv stem output (after both GELUs)
  enc_out      [T/2, E]          encoder output after the final RMSNorm
  adapter_out  [T/8, D]          audio-language adapter output (4 encoder frames concatenated)
  t_cond       [D]    float32    time embedding of n_delay
  logits_first [3, V] float32    raw logits of the first 3 generated tokens (positions P-1, P, P+1)
  prompt_ids   [P]    int32
  tokens       [N]    int32      greedy tokens after the prompt (from generate == no-cache loop)
  margins      [N]    float32    top1 - top2 logit at each generated step (near ties are fragile)
"""
import argparse
import json
import math
import os
import sys

import numpy as np

# Determinism: one thread, set before torch starts its pools.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch  # noqa: E402
import soundfile as sf  # noqa: E402
import safetensors  # noqa: E402
from safetensors.numpy import save_file as np_save_safetensors  # noqa: E402
from safetensors.torch import load_file as torch_load_safetensors  # noqa: E402
import transformers  # noqa: E402
from transformers.models.voxtral_realtime import (  # noqa: E402
    VoxtralRealtimeConfig,
    VoxtralRealtimeFeatureExtractor,
    VoxtralRealtimeForConditionalGeneration,
)

N_FIRST_LOGITS = 3


def die(msg):
    print(f"asr_ref: {msg}", file=sys.stderr)
    sys.exit(1)


# --------------------------------------------------------------------------------------------
# params.json -> transformers config
# --------------------------------------------------------------------------------------------
def need(d, key, where):
    if key not in d:
        die(f"{where}: missing key '{key}'")
    return d[key]


def build_config(params):
    """Every dimension comes from params.json. Keys and meaning follow the consolidated format."""
    mm = need(params, "multimodal", "params.json")
    wma = need(mm, "whisper_model_args", "params.json multimodal")
    enc = need(wma, "encoder_args", "params.json multimodal.whisper_model_args")
    aea = need(enc, "audio_encoding_args", "params.json encoder_args")
    ds = wma.get("downsample_args", {}).get("downsample_factor", None)
    if ds is None:
        die("params.json: missing multimodal.whisper_model_args.downsample_args.downsample_factor")

    # Architecture switches the transformers classes hard-code: refuse anything else.
    for key, want in (("ffn_type", "swiglu"), ("norm_type", "rms_norm"), ("pos_embed", "rope")):
        if key in enc and enc[key] != want:
            die(f"params.json encoder_args.{key}: expected {want!r}, found {enc[key]!r}")
    if enc.get("causal", True) is not True or params.get("causal", True) is not True:
        die("params.json: only causal encoder/decoder are supported")
    if enc.get("use_biases", True) is not True:
        die("params.json encoder_args.use_biases: transformers' encoder always has q/v/o/down biases")
    if params.get("use_biases", False):
        die("params.json use_biases: transformers' decoder has no biases")
    if int(enc.get("n_kv_heads", enc["n_heads"])) != int(enc["n_heads"]):
        die("params.json encoder_args.n_kv_heads must equal n_heads (transformers' encoder is MHA)")
    if not params.get("ada_rms_norm_t_cond", True):
        die("params.json ada_rms_norm_t_cond is false: the model needs the delay conditioning")

    if "sliding_window" not in enc:
        die("params.json encoder_args.sliding_window is missing (the upstream converter would silently use 750)")
    enc_window = int(enc["sliding_window"])
    dec_window = params.get("sliding_window", None)
    dec_window = None if dec_window is None else int(dec_window)  # may be a string in some files
    tied = bool(params.get("tied_embeddings", True))
    hop = int(aea["hop_length"])
    sr = int(aea["sampling_rate"])
    frame_rate = float(aea["frame_rate"])
    # mel frames per decoder token; the conv stem halves the rate and the adapter groups `ds` frames
    per_tok = int(sr // frame_rate) // hop
    if per_tok != 2 * int(ds):
        die(f"params.json: {sr}/{frame_rate}/{hop} = {per_tok} mel frames per token but the stem gives 2*{ds}")

    audio_config = dict(
        hidden_size=int(enc["dim"]),
        intermediate_size=int(enc["hidden_dim"]),
        num_hidden_layers=int(enc["n_layers"]),
        num_attention_heads=int(enc["n_heads"]),
        head_dim=int(enc["head_dim"]),
        num_mel_bins=int(aea["num_mel_bins"]),
        sliding_window=enc_window,
        rms_norm_eps=float(enc.get("norm_eps", 1e-5)),
        hidden_act="silu",
        rope_parameters={"rope_type": "default", "rope_theta": float(enc["rope_theta"])},
        max_position_embeddings=int(params.get("model_max_length", 131072)),
        vocab_size=int(enc.get("vocab_size", params["vocab_size"])),
    )
    text_config = dict(
        vocab_size=int(params["vocab_size"]),
        hidden_size=int(params["dim"]),
        intermediate_size=int(params["hidden_dim"]),
        num_hidden_layers=int(params["n_layers"]),
        num_attention_heads=int(params["n_heads"]),
        num_key_value_heads=int(params["n_kv_heads"]),
        head_dim=int(params["head_dim"]),
        rms_norm_eps=float(params.get("norm_eps", 1e-5)),
        sliding_window=dec_window,
        rope_parameters={"rope_type": "default", "rope_theta": float(params["rope_theta"])},
        max_position_embeddings=int(params.get("model_max_length", params.get("max_seq_len", 131072))),
        tie_word_embeddings=tied,
        hidden_act="silu",
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
    )
    cfg = VoxtralRealtimeConfig(
        audio_config=audio_config,
        text_config=text_config,
        projector_hidden_act="gelu",
        downsample_factor=int(ds),
        audio_length_per_tok=per_tok,
        default_num_delay_tokens=6,
        tie_word_embeddings=tied,
    )
    cfg._attn_implementation = "eager"
    cfg.audio_config._attn_implementation = "eager"
    cfg.text_config._attn_implementation = "eager"
    ada_dim = int(params.get("ada_rms_norm_t_cond_dim", 32))
    fe_args = dict(
        feature_size=int(aea["num_mel_bins"]),
        sampling_rate=sr,
        hop_length=hop,
        n_fft=int(aea["window_size"]),
        win_length=int(aea["window_size"]),
        global_log_mel_max=float(aea.get("global_log_mel_max", 1.5)),
    )
    return cfg, ada_dim, fe_args


def check_config_took(cfg, model, params):
    """The dict sub-configs are merged over the 4B defaults: make sure nothing default leaked in."""
    tc, ac = cfg.text_config, cfg.audio_config
    enc = params["multimodal"]["whisper_model_args"]["encoder_args"]
    checks = [
        ("text hidden", tc.hidden_size, params["dim"]), ("text head_dim", tc.head_dim, params["head_dim"]),
        ("text vocab", tc.vocab_size, params["vocab_size"]), ("text layers", tc.num_hidden_layers, params["n_layers"]),
        ("enc hidden", ac.hidden_size, enc["dim"]), ("enc head_dim", ac.head_dim, enc["head_dim"]),
        ("enc window", ac.sliding_window, int(enc["sliding_window"])),
        ("text window", tc.sliding_window,
         None if params.get("sliding_window") is None else int(params["sliding_window"])),
    ]
    for name, got, want in checks:
        if got != want:
            die(f"config: {name} is {got}, params.json says {want}")
    # RoPE frequencies actually used by the modules
    for name, rot, theta, hd in (
        ("decoder", model.model.language_model.rotary_emb, float(params["rope_theta"]), int(params["head_dim"])),
        ("encoder", model.model.audio_tower.rotary_emb, float(enc["rope_theta"]), int(enc["head_dim"])),
    ):
        want = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        if not torch.allclose(rot.inv_freq.double(), want, rtol=1e-6, atol=0):
            die(f"config: {name} RoPE inv_freq does not match theta={theta}, head_dim={hd}")
    for m in (model.model.audio_tower, model.model.language_model):
        if m.config._attn_implementation != "eager":
            die(f"config: attention implementation is {m.config._attn_implementation}, wanted eager")


# --------------------------------------------------------------------------------------------
# native tensors -> transformers state dict
# --------------------------------------------------------------------------------------------
def rope_rows_to_rotate_half(w, n_heads, head_dim):
    """Reorder output rows of a q/k projection (weight [H*hd, in] or bias [H*hd]).

    Mistral's consolidated weights rotate interleaved pairs (2i, 2i+1) of each head; transformers
    rotates (i, i + hd/2). Row 2i of a head must move to i and row 2i+1 to hd/2 + i, i.e. view each
    head's rows as [hd/2, 2] and transpose to [2, hd/2]."""
    rest = w.shape[1:]
    w = w.reshape(n_heads, head_dim // 2, 2, *rest)
    w = w.transpose(1, 2)
    return w.reshape(n_heads * head_dim, *rest).contiguous()


def native_to_hf(sd, cfg, ada_dim):
    tc, ac = cfg.text_config, cfg.audio_config
    P = "mm_streams_embeddings.embedding_module."
    W = P + "whisper_encoder."
    out = {}
    used = set()

    def take(name):
        if name not in sd:
            die(f"consolidated.safetensors: missing tensor '{name}'")
        used.add(name)
        return sd[name].to(torch.float32)

    emb_name = P + "tok_embeddings.weight" if (P + "tok_embeddings.weight") in sd else "tok_embeddings.weight"
    out["model.language_model.embed_tokens.weight"] = take(emb_name)
    out["model.language_model.norm.weight"] = take("norm.weight")
    if tc.tie_word_embeddings:
        if "output.weight" in sd:
            die("consolidated.safetensors: has output.weight but params.json says tied_embeddings")
        out["lm_head.weight"] = out["model.language_model.embed_tokens.weight"]
    else:
        out["lm_head.weight"] = take("output.weight")

    for i in range(tc.num_hidden_layers):
        s, d = f"layers.{i}.", f"model.language_model.layers.{i}."
        out[d + "input_layernorm.weight"] = take(s + "attention_norm.weight")
        out[d + "post_attention_layernorm.weight"] = take(s + "ffn_norm.weight")
        out[d + "self_attn.q_proj.weight"] = rope_rows_to_rotate_half(
            take(s + "attention.wq.weight"), tc.num_attention_heads, tc.head_dim)
        out[d + "self_attn.k_proj.weight"] = rope_rows_to_rotate_half(
            take(s + "attention.wk.weight"), tc.num_key_value_heads, tc.head_dim)
        out[d + "self_attn.v_proj.weight"] = take(s + "attention.wv.weight")
        out[d + "self_attn.o_proj.weight"] = take(s + "attention.wo.weight")
        out[d + "mlp.gate_proj.weight"] = take(s + "feed_forward.w1.weight")
        out[d + "mlp.down_proj.weight"] = take(s + "feed_forward.w2.weight")
        out[d + "mlp.up_proj.weight"] = take(s + "feed_forward.w3.weight")
        a0 = take(s + "ada_rms_norm_t_cond.0.weight")
        a2 = take(s + "ada_rms_norm_t_cond.2.weight")
        if a0.shape != (ada_dim, tc.hidden_size) or a2.shape != (tc.hidden_size, ada_dim):
            die(f"{s}ada_rms_norm_t_cond: shapes {tuple(a0.shape)}/{tuple(a2.shape)}, expected "
                f"[{ada_dim},{tc.hidden_size}]/[{tc.hidden_size},{ada_dim}]")
        out[d + "ada_rms_norm.linear1.weight"] = a0
        out[d + "ada_rms_norm.linear2.weight"] = a2

    out["model.audio_tower.embedder.conv1.weight"] = take(W + "conv_layers.0.conv.weight")
    out["model.audio_tower.embedder.conv1.bias"] = take(W + "conv_layers.0.conv.bias")
    out["model.audio_tower.embedder.conv2.weight"] = take(W + "conv_layers.1.conv.weight")
    out["model.audio_tower.embedder.conv2.bias"] = take(W + "conv_layers.1.conv.bias")
    out["model.audio_tower.norm.weight"] = take(W + "transformer.norm.weight")
    for j in range(ac.num_hidden_layers):
        s, d = W + f"transformer.layers.{j}.", f"model.audio_tower.layers.{j}."
        H, hd = ac.num_attention_heads, ac.head_dim
        out[d + "self_attn_layer_norm.weight"] = take(s + "attention_norm.weight")
        out[d + "final_layer_norm.weight"] = take(s + "ffn_norm.weight")
        out[d + "self_attn.q_proj.weight"] = rope_rows_to_rotate_half(take(s + "attention.wq.weight"), H, hd)
        out[d + "self_attn.q_proj.bias"] = rope_rows_to_rotate_half(take(s + "attention.wq.bias"), H, hd)
        out[d + "self_attn.k_proj.weight"] = rope_rows_to_rotate_half(take(s + "attention.wk.weight"), H, hd)
        out[d + "self_attn.v_proj.weight"] = take(s + "attention.wv.weight")
        out[d + "self_attn.v_proj.bias"] = take(s + "attention.wv.bias")
        out[d + "self_attn.o_proj.weight"] = take(s + "attention.wo.weight")
        out[d + "self_attn.o_proj.bias"] = take(s + "attention.wo.bias")
        out[d + "mlp.gate_proj.weight"] = take(s + "feed_forward.w1.weight")
        out[d + "mlp.down_proj.weight"] = take(s + "feed_forward.w2.weight")
        out[d + "mlp.down_proj.bias"] = take(s + "feed_forward.w2.bias")
        out[d + "mlp.up_proj.weight"] = take(s + "feed_forward.w3.weight")

    out["model.multi_modal_projector.linear_1.weight"] = take(P + "audio_language_projection.0.weight")
    out["model.multi_modal_projector.linear_2.weight"] = take(P + "audio_language_projection.2.weight")

    unused = sorted(set(sd) - used)
    if unused:
        die(f"consolidated.safetensors: {len(unused)} tensors not used by the reference, e.g. {unused[:3]}")
    return out


def resize_ada(model, ada_dim):
    """transformers hard-codes the ada-norm bottleneck at 32; rebuild it for other sizes."""
    if ada_dim == 32:
        return
    for layer in model.model.language_model.layers:
        D = layer.ada_rms_norm.linear1.in_features
        layer.ada_rms_norm.linear1 = torch.nn.Linear(D, ada_dim, bias=False)
        layer.ada_rms_norm.linear2 = torch.nn.Linear(ada_dim, D, bias=False)


def load_model(model_dir, cfg, ada_dim):
    sd = torch_load_safetensors(os.path.join(model_dir, "consolidated.safetensors"))
    dtypes = sorted({str(t.dtype).replace("torch.", "") for t in sd.values()})
    model = VoxtralRealtimeForConditionalGeneration(cfg)
    resize_ada(model, ada_dim)
    model = model.float().eval()
    new = native_to_hf(sd, cfg, ada_dim)
    want = set(model.state_dict().keys())
    got = set(new.keys())
    if want != got:
        die(f"state dict mismatch: missing {sorted(want - got)[:5]}, unexpected {sorted(got - want)[:5]}")
    model.load_state_dict(new, strict=True)
    if cfg.text_config.tie_word_embeddings:
        model.tie_weights()
        if not torch.equal(model.lm_head.weight, model.model.language_model.embed_tokens.weight):
            die("lm_head is not tied to embed_tokens after loading")
    return model, sd, dtypes


def check_rope_permutation(sd, cfg):
    """Independent check of the row permutation: interleaved-pair RoPE on the native q equals
    rotate-half RoPE on the permuted q, for a random input at a few positions (float64 numpy)."""
    rng = np.random.default_rng(0)
    worst = 0.0
    for name, H, hd, theta in (
        ("layers.0.attention.wq.weight", cfg.text_config.num_attention_heads, cfg.text_config.head_dim,
         cfg.text_config.rope_parameters["rope_theta"]),
        ("mm_streams_embeddings.embedding_module.whisper_encoder.transformer.layers.0.attention.wq.weight",
         cfg.audio_config.num_attention_heads, cfg.audio_config.head_dim,
         cfg.audio_config.rope_parameters["rope_theta"]),
    ):
        w = sd[name].to(torch.float64).numpy()
        wp = rope_rows_to_rotate_half(torch.from_numpy(w), H, hd).numpy()
        x = rng.standard_normal(w.shape[1])
        inv = theta ** (-np.arange(0, hd, 2) / hd)
        for pos in (0, 1, 7, 123):
            c, s = np.cos(pos * inv), np.sin(pos * inv)
            q = (w @ x).reshape(H, hd)
            a, b = q[:, 0::2], q[:, 1::2]
            inter = np.stack([a * c - b * s, a * s + b * c], axis=-1).reshape(H, hd)  # native, interleaved
            qp = (wp @ x).reshape(H, hd)
            lo, hi = qp[:, : hd // 2], qp[:, hd // 2:]
            half = np.concatenate([lo * c - hi * s, hi * c + lo * s], axis=-1)   # permuted, rotate-half
            back = half.reshape(H, 2, hd // 2).transpose(0, 2, 1).reshape(H, hd)  # undo the permutation
            worst = max(worst, float(np.abs(back - inter).max()))
    if worst > 1e-9:
        die(f"RoPE permutation check failed: max diff {worst}")
    return worst


# --------------------------------------------------------------------------------------------
# tekken.json audio block, padding and prompt
# --------------------------------------------------------------------------------------------
def tekken_info(path):
    with open(path, "r", encoding="utf-8") as f:
        tek = json.load(f)
    audio = need(tek, "audio", "tekken.json")
    specials = {s["token_str"]: int(s["rank"]) for s in tek.get("special_tokens", [])}
    for tok in ("<s>", "</s>", "[STREAMING_PAD]"):
        if tok not in specials:
            die(f"tekken.json: special token {tok} not found")
    return tek, audio, specials


def n_tokens_for_samples(n_samples, hop, per_tok):
    """mistral-common's samples -> frames -> tokens rounding (AudioConfig.num_audio_tokens)."""
    if n_samples % hop != 0:
        frames = math.ceil(n_samples / hop - 1)
    else:
        frames = n_samples // hop
    return math.ceil(frames / per_tok)


def own_padding(n_samples, audio, delay_ms):
    sr = int(audio["sampling_rate"])
    hop = int(audio["audio_encoding_config"]["hop_length"])
    tok = int(sr // float(audio["frame_rate"]))          # samples per decoder token (1280)
    per_tok = tok // hop                                   # mel frames per token (8)
    frame_ms = 1000.0 / float(audio["frame_rate"])
    if delay_ms <= 0 or abs(delay_ms / frame_ms - round(delay_ms / frame_ms)) > 1e-9:
        die(f"delay {delay_ms} ms is not a positive multiple of {frame_ms} ms")
    n_delay = n_tokens_for_samples(int(delay_ms / 1000.0 * sr), hop, per_tok)
    left = int(audio["streaming_n_left_pad_tokens"]) * tok
    right = ((tok - n_samples % tok) % tok) + (n_delay + 1 + 10) * tok   # 10 = offline buffer tokens
    return dict(sr=sr, hop=hop, tok=tok, per_tok=per_tok, n_delay=n_delay, left=left, right=right,
                n_left_tokens=int(audio["streaming_n_left_pad_tokens"]))


def mistral_common_crosscheck(model_dir, wav_path, delay_ms, padded, prompt):
    """Ask mistral-common itself (OFFLINE streaming transcription request) for the prompt and padded
    audio. Returns a status string; raises SystemExit on a disagreement."""
    try:
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
        from mistral_common.protocol.transcription.request import TranscriptionRequest, StreamingMode
        mt = MistralTokenizer.from_file(os.path.join(model_dir, "tekken.json"))
        with open(wav_path, "rb") as f:
            wav_bytes = f.read()
        req = TranscriptionRequest(audio=wav_bytes, streaming=StreamingMode.OFFLINE,
                                   target_streaming_delay_ms=int(delay_ms))
        tk = mt.instruct_tokenizer.encode_transcription(req)
    except Exception as e:  # a tekken.json mistral-common cannot load: report, do not fail
        return f"not run: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
    mc_ids = list(tk.tokens)
    mc_audio = np.asarray(tk.audios[0].audio_array, dtype=np.float32)
    if mc_ids != prompt:
        die(f"prompt differs from mistral-common's: ours {prompt[:5]}..({len(prompt)}), theirs "
            f"{mc_ids[:5]}..({len(mc_ids)})")
    if mc_audio.shape != padded.shape or not np.array_equal(mc_audio, padded):
        die(f"padded audio differs from mistral-common's: ours {padded.shape}, theirs {mc_audio.shape}")
    return "ok: prompt ids and padded samples identical"


# --------------------------------------------------------------------------------------------
# independent log-mel (float64 numpy) to check the feature extractor
# --------------------------------------------------------------------------------------------
def slaney_hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    lin = 3.0 * f / 200.0
    log = 15.0 + 27.0 * np.log(np.maximum(f, 1e-10) / 1000.0) / np.log(6.4)
    return np.where(f >= 1000.0, log, lin)


def slaney_mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    lin = 200.0 * m / 3.0
    log = 1000.0 * np.exp(np.log(6.4) * (m - 15.0) / 27.0)
    return np.where(m >= 15.0, log, lin)


def own_logmel(x, sr, n_fft, hop, n_mels, log_max):
    n_bins = n_fft // 2 + 1
    fft_freqs = np.linspace(0, sr / 2, n_bins)
    mel_pts = np.linspace(slaney_hz_to_mel(0.0), slaney_hz_to_mel(8000.0), n_mels + 2)
    hz = slaney_mel_to_hz(mel_pts)
    fb = np.zeros((n_mels, n_bins))
    for m in range(n_mels):
        lo, c, hi = hz[m], hz[m + 1], hz[m + 2]
        up = (fft_freqs - lo) / (c - lo)
        down = (hi - fft_freqs) / (hi - c)
        fb[m] = np.maximum(0.0, np.minimum(up, down)) * (2.0 / (hi - lo))
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)   # periodic Hann
    xp = np.pad(x.astype(np.float64), (n_fft // 2, n_fft // 2), mode="reflect")
    n_frames = 1 + (len(xp) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.abs(np.fft.rfft(xp[idx] * win, axis=1)) ** 2
    spec = spec[:-1]                                                 # drop the last frame
    mel = fb @ spec.T
    logm = np.log10(np.maximum(mel, 1e-10))
    logm = np.maximum(logm, log_max - 8.0)
    return (logm + 4.0) / 4.0


def window_effects(model, mel, seq, n_delay, per_tok):
    """Show that each sliding window really acts (guards against a silently dropped window):
    recompute with that window lifted and report the largest change. A window longer than the
    sequence must change nothing; a shorter one must change something, else the script fails."""
    core = model.model
    res = {}
    with torch.no_grad():
        enc = core.audio_tower(input_features=mel, use_cache=False).last_hidden_state
        L = len(seq)
        ids = torch.tensor([seq])
        feats = mel[..., : per_tok * L]
        logits = model(input_ids=ids, input_features=feats, num_delay_tokens=n_delay, use_cache=False).logits
        for name, sub, n in (("encoder", core.audio_tower, enc.shape[1]), ("decoder", core.language_model, L)):
            w = sub.config.sliding_window
            if w is None:
                res[name] = {"window": None, "positions": n, "maxabs_change_without_window": 0.0}
                continue
            sub.config.sliding_window = 1 << 30
            try:
                if name == "encoder":
                    alt = core.audio_tower(input_features=mel, use_cache=False).last_hidden_state
                    diff = float((alt - enc).abs().max())
                else:
                    alt = model(input_ids=ids, input_features=feats, num_delay_tokens=n_delay,
                                use_cache=False).logits
                    diff = float((alt - logits).abs().max())
            finally:
                sub.config.sliding_window = w
            if n > w and diff == 0.0:
                die(f"{name} window {w} has no effect over {n} positions")
            if n <= w and diff != 0.0:
                die(f"{name} window {w} changes the result over only {n} positions")
            res[name] = {"window": w, "positions": n, "maxabs_change_without_window": diff}
    return res


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("audio")
    ap.add_argument("out")
    ap.add_argument("--delay-ms", type=float, default=None,
                    help="transcription delay (default: tekken.json audio.transcription_delay_ms)")
    ap.add_argument("--act-dtype", choices=("f16", "f32"), default="f16",
                    help="dtype of the saved activations mel/conv_out/enc_out/adapter_out")
    ap.add_argument("--mkmodel-cmd", default=None, help="command line that made MODEL_DIR (stored in meta)")
    ap.add_argument("--name", default=None, help="fixture name stored in meta")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)

    with open(os.path.join(args.model_dir, "params.json"), "r", encoding="utf-8") as f:
        params = json.load(f)
    tek, tek_audio, specials = tekken_info(os.path.join(args.model_dir, "tekken.json"))
    cfg, ada_dim, fe_args = build_config(params)
    delay_ms = float(tek_audio["transcription_delay_ms"]) if args.delay_ms is None else float(args.delay_ms)

    # ---- audio, padding, prompt
    wav, wav_sr = sf.read(args.audio, dtype="float32", always_2d=True)
    if wav.shape[1] != 1:
        die(f"{args.audio}: {wav.shape[1]} channels, expected mono")
    wav = wav[:, 0]
    pad = own_padding(len(wav), tek_audio, delay_ms)
    if wav_sr != pad["sr"]:
        die(f"{args.audio}: sample rate {wav_sr}, expected {pad['sr']} (resample first)")
    if fe_args["sampling_rate"] != pad["sr"] or fe_args["hop_length"] != pad["hop"]:
        die("params.json audio_encoding_args and tekken.json audio disagree on sample rate / hop")
    padded = np.concatenate([np.zeros(pad["left"], np.float32), wav, np.zeros(pad["right"], np.float32)])
    bos, eos, spad = specials["<s>"], specials["</s>"], specials["[STREAMING_PAD]"]
    n_delay = pad["n_delay"]
    prompt = [bos] + [spad] * (pad["n_left_tokens"] + n_delay)
    mc_status = mistral_common_crosscheck(args.model_dir, args.audio, delay_ms, padded, prompt)
    print(f"asr_ref: mistral-common cross-check: {mc_status}", file=sys.stderr)

    # ---- log-mel
    fe = VoxtralRealtimeFeatureExtractor(**fe_args)
    mel = fe(padded, sampling_rate=pad["sr"], return_tensors="pt").input_features.to(torch.float32)  # [1,128,T]
    T = mel.shape[-1]
    if T * pad["hop"] != len(padded) or T % pad["per_tok"] != 0:
        die(f"mel has {T} frames for {len(padded)} samples (expected a multiple of {pad['per_tok']})")
    own = own_logmel(padded, pad["sr"], fe_args["n_fft"], pad["hop"], fe_args["feature_size"],
                     fe_args["global_log_mel_max"])
    mel_vs_own = float(np.abs(own - mel[0].double().numpy()).max())
    if mel_vs_own > 1e-3:
        die(f"feature extractor and own float64 log-mel differ by {mel_vs_own}")
    # frames whose whole window lies in the left zero padding must be exactly the floor value
    floor = (fe_args["global_log_mel_max"] - 8.0 + 4.0) / 4.0
    n_silent = (pad["left"] - fe_args["n_fft"] // 2) // pad["hop"] + 1
    if not torch.all(mel[0, :, :n_silent] == floor):
        die(f"left-pad mel frames are not exactly {floor}")
    all_silent = bool(not np.any(wav))
    if all_silent and not torch.all(mel == floor):
        die(f"digital silence input but mel is not exactly {floor} everywhere")

    # ---- model
    model, sd, native_dtypes = load_model(args.model_dir, cfg, ada_dim)
    check_config_took(cfg, model, params)
    rope_check = check_rope_permutation(sd, cfg)
    core = model.model
    n_prompt = len(prompt)
    ids = torch.tensor([prompt], dtype=torch.long)

    with torch.no_grad():
        conv_out = core.audio_tower.embedder(mel)                                         # [1, T/2, E]
        enc_out = core.audio_tower(input_features=mel, use_cache=False).last_hidden_state  # [1, T/2, E]
        adapter = core.get_audio_features(input_features=mel, use_cache=False).pooler_output  # [1, T/8, D]
        # the encoder must start from the conv stem output we save
        enc_from_conv = core.audio_tower(inputs_embeds=conv_out, use_cache=False).last_hidden_state
        if not torch.equal(enc_from_conv, enc_out):
            die("encoder output from input_features and from the saved conv stem output differ")
        t_cond = core.time_embedding(torch.full((1,), float(n_delay)))                    # [D]

        # first-step logits by a direct forward over the prompt (audio limited to the prompt length)
        direct = model(input_ids=ids, input_features=mel[..., : pad["per_tok"] * n_prompt],
                       num_delay_tokens=n_delay, use_cache=False).logits[0, -1]

        gen = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), input_features=mel,
            num_delay_tokens=n_delay, do_sample=False, output_logits=True, return_dict_in_generate=True,
            eos_token_id=eos, pad_token_id=specials.get("<pad>", eos),
        )
        seq = gen.sequences[0].tolist()
        if seq[:n_prompt] != prompt:
            die("generate changed the prompt")
        tokens = seq[n_prompt:]
        gen_logits = torch.stack([lg[0] for lg in gen.logits]).float()                   # [N, V]
        n_max = T // pad["per_tok"] - n_prompt
        stopped_by_eos = len(tokens) < n_max
        if stopped_by_eos and tokens[-1] != eos:
            die(f"generate stopped after {len(tokens)} of {n_max} tokens without EOS")
        if len(tokens) > n_max:
            die(f"generate produced {len(tokens)} tokens, more than the audio allows ({n_max})")

        # no-cache greedy loop: a full forward over prompt + generated tokens at every step
        loop_tokens, loop_logits = [], []
        cur = list(prompt)
        for _ in range(n_max):
            L = len(cur)
            lg = model(input_ids=torch.tensor([cur]), input_features=mel[..., : pad["per_tok"] * L],
                       num_delay_tokens=n_delay, use_cache=False).logits[0, -1].float()
            nxt = int(torch.argmax(lg))
            loop_tokens.append(nxt)
            loop_logits.append(lg)
            cur.append(nxt)
            if nxt == eos:
                break
        loop_logits = torch.stack(loop_logits)

    if loop_tokens != tokens:
        first = next((i for i, (a, b) in enumerate(zip(loop_tokens, tokens)) if a != b), min(len(tokens), len(loop_tokens)))
        die(f"generate and the no-cache greedy loop disagree at step {first}: "
            f"{tokens[first:first + 5]} vs {loop_tokens[first:first + 5]}")
    cache_vs_nocache = float((gen_logits - loop_logits).abs().max())
    first_vs_direct = float((gen_logits[0] - direct).abs().max())
    scale = float(loop_logits.abs().max())
    if cache_vs_nocache > 1e-4 * max(1.0, scale) or first_vs_direct > 1e-4 * max(1.0, scale):
        die(f"logits differ: cache vs no-cache {cache_vs_nocache}, first step vs direct {first_vs_direct}")
    top2 = torch.topk(loop_logits, 2, dim=-1).values
    margins = (top2[:, 0] - top2[:, 1]).numpy().astype(np.float32)
    window_effect = window_effects(model, mel, cur, n_delay, pad["per_tok"])

    # ---- report and save
    n_distinct = len(set(tokens))
    text = None
    try:
        from mistral_common.tokens.tokenizers.tekken import Tekkenizer
        from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy
        tkz = Tekkenizer.from_file(os.path.join(args.model_dir, "tekken.json"))
        text = tkz.decode(tokens, special_token_policy=SpecialTokenPolicy.IGNORE)
    except Exception as e:
        print(f"asr_ref: tekken decode not available: {e}", file=sys.stderr)

    adt = np.float16 if args.act_dtype == "f16" else np.float32
    arrays = {
        "mel": mel[0].numpy().astype(adt),
        "conv_out": conv_out[0].numpy().astype(adt),
        "enc_out": enc_out[0].numpy().astype(adt),
        "adapter_out": adapter[0].numpy().astype(adt),
        "t_cond": t_cond.numpy().astype(np.float32),
        "logits_first": gen_logits[:N_FIRST_LOGITS].numpy().astype(np.float32),
        "prompt_ids": np.asarray(prompt, dtype=np.int32),
        "tokens": np.asarray(tokens, dtype=np.int32),
        "margins": margins,
    }
    tc, ac = cfg.text_config, cfg.audio_config
    meta = {
        "name": args.name,
        "generator": "tests/reference/asr_ref.py",
        "mkmodel_cmd": args.mkmodel_cmd,
        "audio_file": os.path.basename(args.audio),
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "transformers": transformers.__version__, "numpy": np.__version__,
                     "safetensors": safetensors.__version__, "soundfile": sf.__version__,
                     "mistral_common": _mc_version()},
        "settings": {"dtype": "float32", "attn_implementation": "eager", "torch_threads": 1, "device": "cpu",
                     "saved_activation_dtype": "float16" if adt == np.float16 else "float32"},
        "model": {
            "native_dtypes": native_dtypes,
            "text": {"dim": tc.hidden_size, "n_layers": tc.num_hidden_layers, "n_heads": tc.num_attention_heads,
                     "n_kv_heads": tc.num_key_value_heads, "head_dim": tc.head_dim, "hidden_dim": tc.intermediate_size,
                     "vocab_size": tc.vocab_size, "sliding_window": tc.sliding_window,
                     "rope_theta": tc.rope_parameters["rope_theta"], "norm_eps": tc.rms_norm_eps,
                     "tied": tc.tie_word_embeddings, "ada_dim": ada_dim},
            "encoder": {"dim": ac.hidden_size, "n_layers": ac.num_hidden_layers, "n_heads": ac.num_attention_heads,
                        "head_dim": ac.head_dim, "hidden_dim": ac.intermediate_size,
                        "sliding_window": ac.sliding_window, "rope_theta": ac.rope_parameters["rope_theta"],
                        "norm_eps": ac.rms_norm_eps},
            "downsample_factor": cfg.downsample_factor,
            "feature_extractor": fe_args,
        },
        "hf_config": json.loads(cfg.to_json_string(use_diff=False)),
        "audio": {"n_samples": int(len(wav)), "sample_rate": pad["sr"], "delay_ms": delay_ms,
                  "n_delay_tokens": n_delay, "left_pad_samples": pad["left"], "right_pad_samples": pad["right"],
                  "padded_len": int(len(padded)), "mel_frames": int(T), "samples_per_token": pad["tok"],
                  "mel_frames_per_token": pad["per_tok"]},
        "prompt_ids": prompt,
        "special_ids": {"bos": bos, "eos": eos, "streaming_pad": spad},
        "tokens": tokens,
        "n_tokens": len(tokens),
        "n_tokens_max": n_max,
        "stopped_by_eos": stopped_by_eos,
        "text": text,
        "checks": {
            "mistral_common": mc_status,
            "mel_vs_own_float64_maxabs": mel_vs_own,
            "left_pad_mel_frames_equal_floor": {"frames": int(n_silent), "value": floor},
            "input_all_zero_and_whole_mel_equals_floor": all_silent,
            "rope_permutation_maxabs": rope_check,
            "generate_equals_nocache_loop": True,
            "logits_cache_vs_nocache_maxabs": cache_vs_nocache,
            "first_logits_generate_vs_direct_maxabs": first_vs_direct,
            "logit_absmax": scale,
            "min_margin": float(margins.min()) if len(margins) else None,
            "sliding_window_effect": window_effect,
            "n_distinct_tokens": n_distinct,
        },
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
    }
    # safetensors' numpy writer stores the raw buffer and ignores strides: astype(order="K") of a
    # permuted tensor (the conv stem output is [E, T] underneath) keeps a Fortran layout, which
    # would be saved transposed. Force C order.
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    if args.out.endswith(".npz"):
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        np.savez_compressed(args.out, meta_json=np.asarray(json.dumps(meta)), **arrays)
    else:
        os.makedirs(args.out, exist_ok=True)
        np_save_safetensors(arrays, os.path.join(args.out, "tensors.safetensors"),
                            metadata={"generator": "tests/reference/asr_ref.py"})
        with open(os.path.join(args.out, "meta.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=1, ensure_ascii=True)
            f.write("\n")
    print(f"asr_ref: {args.out}: {len(tokens)}/{n_max} tokens ({n_distinct} distinct), eos={stopped_by_eos}, "
          f"min margin {meta['checks']['min_margin']:.4g}, cache-vs-nocache {cache_vs_nocache:.3g}, "
          f"mel-vs-own {mel_vs_own:.3g}; mistral-common: {mc_status}")


def _mc_version():
    try:
        import mistral_common
        return mistral_common.__version__
    except Exception:
        return None


if __name__ == "__main__":
    main()
