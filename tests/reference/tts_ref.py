#!/usr/bin/env python3
"""Golden outputs for the Voxtral TTS engine (backbone, semantic head, flow matching, prompt)
from the upstream reference code, float32 on CPU, one thread.

Usage:
    tts_ref.py MODEL_DIR OUT_DIR --vo-dir UNZIPPED_VLLM_OMNI_WHEEL [--steps N]

MODEL_DIR: a tiny model written by `vox-mkmodel --kind tts --out MODEL_DIR` (seed 1 defaults;
tests/test_tts.c regenerates the same directory and compares). --vo-dir: the vllm-omni wheel
unpacked (`pip download --no-deps vllm-omni==0.30.0` then `unzip`); it is never installed,
its two model files are imported with stub vllm modules (docs/tts.md, harness doc section 4).

Sources of truth:
  prompt ids      mistral_common MistralTokenizer.encode_speech_request on MODEL_DIR/tekken.json
  voice .pt       torch.save writes tests/fixtures/tts/voice_torch.pt (the reader's golden);
                  torch.load must read every voice_embedding/*.pt that vox-mkmodel wrote
  FM / frame      vllm_omni ... voxtral_tts_audio_generation.FlowMatchingAudioTransformer, with
                  torch.randn replaced by rows of a noise table that is saved in the fixture
  backbone / loop transformers MistralModel (eager, fp32, DynamicCache), wq/wk permuted from
                  Mistral's interleaved RoPE layout; the ~25-line frame loop is ours (harness
                  doc section 3.4: same semantics as VO / SGL)

Output: OUT_DIR/tts_ref.safetensors and OUT_DIR/meta.json (versions, sha256 of the upstream
files, cases, margins), plus the torch.save / safetensors voice files. Arrays:
  prompt_{v}_{t}          int32 [P]       ids for voice v, text TEXTS[t]
  voice_{name}            f32 [N, dim]    torch.load of MODEL_DIR/voice_embedding/{name}.pt
  voice_torch_values, voice_torch_f32_values   values of voice_torch.pt / voice_torch_f32.pt
  vel_x [3, n_ac], vel_h [3, dim], vel_t [3], vel_v, vel_v_uncond [3, n_ac]
  frame_h [4, dim], frame_noise [4, n_ac], frame_codes int32 [4, 1 + n_ac],
  frame_logits [4, semantic_rows] (raw head output; row 3 is built to give END)
  gen_{g}_case int32 [voice, text], gen_{g}_codes int32 [F, 1 + n_ac], gen_{g}_h [F', dim]
  (hidden before each frame), gen_{g}_noise [N_FRAMES_MAX, n_ac], gen_{g}_margins [F']

With --steps N the FM is built with acoustic_transformer_args.n_decoding_steps = N (vllm-omni
then integrates over torch.linspace(0, 1, N + 1)) and only OUT_DIR/steps{N}.safetensors and
steps{N}.json are written: n_steps int32 [1], the frame_* arrays and the gen_{g}_* arrays as
above (same inputs, seeds and cases); no voice files, no sglang-omni check (its FM hard-codes 7).
"""
import argparse
import copy
import hashlib
import importlib.abc
import importlib.machinery
import json
import logging
import os
import sys
import types

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

torch.set_num_threads(1)

TEXTS = ["Paris is a beautiful city!", "Hello, world.", "  Ça va? 123 fin  ", "a"]
N_FRAMES_MAX = 10
GEN_CASES = [(0, 0), (1, 0), (1, 1), (0, 3)]  # (voice index, text index)
CFG = 1.2


# ---------------------------------------------------------------- vllm stubs (harness doc 4)
class _Auto(type):
    def __getattr__(cls, name):
        return _fresh(name)

    def __class_getitem__(cls, item):
        return cls


def _fresh(name):
    c = _Auto(name, (), {})
    c.__class_getitem__ = classmethod(lambda cls, item: cls)
    return c


def _default_weight_loader(param, loaded):
    assert tuple(param.shape) == tuple(loaded.shape), (param.shape, loaded.shape)
    param.data.copy_(loaded)


class _Registry:
    def register_processor(self, *a, **k):
        return lambda cls: cls


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        special = {
            "default_weight_loader": _default_weight_loader,
            "init_logger": logging.getLogger,
            "MULTIMODAL_REGISTRY": _Registry(),
            "current_omni_platform": types.SimpleNamespace(device_type="cpu"),
        }
        v = special.get(name)
        if v is None:
            v = _fresh(name)
        setattr(self, name, v)
        return v


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    PREFIXES = ("vllm.", "vllm_omni.platforms", "vllm_omni.quantization")

    def find_spec(self, fullname, path, target=None):
        if fullname == "vllm" or fullname.startswith(self.PREFIXES):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        m = _StubModule(spec.name)
        m.__path__ = []
        return m

    def exec_module(self, module):
        pass


def import_vo(vo_dir):
    sys.path.insert(0, vo_dir)
    base = os.path.join(vo_dir, "vllm_omni")
    for pkg, sub in [("vllm_omni", ""), ("vllm_omni.model_executor", "model_executor"),
                     ("vllm_omni.model_executor.models", "model_executor/models"),
                     ("vllm_omni.model_executor.models.voxtral_tts",
                      "model_executor/models/voxtral_tts")]:
        m = types.ModuleType(pkg)
        m.__path__ = [os.path.join(base, sub)]
        sys.modules[pkg] = m
    sys.meta_path.insert(0, _Finder())
    import importlib
    gen = importlib.import_module(
        "vllm_omni.model_executor.models.voxtral_tts.voxtral_tts_audio_generation")
    return gen, os.path.join(base, "model_executor/models/voxtral_tts",
                             "voxtral_tts_audio_generation.py")


def import_sgl_fm(sgl_dir, amargs, W):
    sys.path.insert(0, sgl_dir)
    base = os.path.join(sgl_dir, "sglang_omni")
    for pkg, sub in [("sglang_omni", ""), ("sglang_omni.models", "models"),
                     ("sglang_omni.models.voxtral_tts", "models/voxtral_tts")]:
        m = types.ModuleType(pkg)
        m.__path__ = [os.path.join(base, sub)]
        sys.modules[pkg] = m
    wl = types.ModuleType("sglang_omni.models.weight_loader")
    wl.default_weight_loader = _default_weight_loader
    sys.modules["sglang_omni.models.weight_loader"] = wl
    import importlib
    at = importlib.import_module("sglang_omni.models.voxtral_tts.acoustic_transformer")
    fm = at.FlowMatchingAudioTransformer(copy.deepcopy(amargs))
    sd = {k[len("acoustic_transformer."):]: v for k, v in W.items()
          if k.startswith("acoustic_transformer.")}
    missing, unexpected = fm.load_state_dict(sd, strict=False)
    assert not unexpected and all("inv_freq" in k for k in missing), (missing, unexpected)
    return fm.float().eval(), os.path.join(base, "models/voxtral_tts/acoustic_transformer.py")


# ---------------------------------------------------------------- helpers
def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class NoiseFeed:
    """Replaces torch.randn inside decode_one_frame: returns the next rows of a saved table."""

    def __init__(self, table):
        self.table = torch.from_numpy(table)
        self.pos = 0
        self.orig = torch.randn

    def __enter__(self):
        def fake(*shape, dtype=None, device=None, **kw):
            if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)):
                shape = tuple(shape[0])
            B, C = shape
            assert C == self.table.shape[1]
            out = self.table[self.pos:self.pos + B].clone()
            assert out.shape[0] == B, "noise table exhausted"
            self.pos += B
            return out.to(dtype or torch.float32)
        torch.randn = fake
        return self

    def __exit__(self, *a):
        torch.randn = self.orig


def permute_rope(w, n_heads, head_dim):
    # Mistral native (interleaved pairs) -> HF rotate-half, as vLLM maybe_remap_mistral
    dim_in = w.shape[1]
    return w.view(n_heads, head_dim // 2, 2, dim_in).transpose(1, 2).reshape(n_heads * head_dim,
                                                                             dim_in)


def write_voice_fixtures(out_dir, out):
    g = torch.Generator().manual_seed(7)
    vt = (torch.randn(5, 12, generator=g) * 3).to(torch.bfloat16)
    torch.save(vt, os.path.join(out_dir, "voice_torch.pt"))
    out["voice_torch_values"] = vt.float().numpy()
    # not a single tensor: the reader must refuse it with one clear line
    torch.save({"embedding": vt}, os.path.join(out_dir, "voice_dict.pt"))
    # safetensors voice (the mlx-community layout: key "embedding"), written by safetensors
    from safetensors.torch import save_file as torch_save_st
    torch_save_st({"embedding": vt}, os.path.join(out_dir, "voice_st.safetensors"))
    vt32 = torch.randn(3, 4, generator=g)
    torch.save(vt32, os.path.join(out_dir, "voice_torch_f32.pt"))
    out["voice_torch_f32_values"] = vt32.numpy()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--vo-dir", required=True)
    ap.add_argument("--sgl-dir", help="unzipped sglang-omni wheel: cross-check of the FM")
    ap.add_argument("--steps", type=int, help="Euler step count other than the model's")
    a = ap.parse_args()
    md = a.model_dir
    params = json.load(open(os.path.join(md, "params.json")))
    W = load_file(os.path.join(md, "consolidated.safetensors"))
    W = {k: v.float() for k, v in W.items()}
    out = {}
    meta = {"torch": torch.__version__}

    # ---- (d) prompt ids via mistral-common
    import mistral_common
    from mistral_common.protocol.speech.request import SpeechRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    meta["mistral_common"] = mistral_common.__version__
    tok = MistralTokenizer.from_file(os.path.join(md, "tekken.json"))
    voices = list(params["multimodal"]["audio_tokenizer_args"]["voice"].keys())
    cases = []
    for vi, v in enumerate(voices):
        for ti, t in enumerate(TEXTS):
            ids = tok.encode_speech_request(SpeechRequest(input=t, voice=v)).tokens
            out[f"prompt_{vi}_{ti}"] = np.array(ids, dtype=np.int32)
            cases.append({"voice": v, "text": t, "key": f"prompt_{vi}_{ti}"})
    meta["prompts"] = cases

    # ---- voice files: ours must load in torch; torch's own file is the C reader's golden
    for v in voices:
        t = torch.load(os.path.join(md, "voice_embedding", v + ".pt"), map_location="cpu")
        assert t.dtype == torch.bfloat16 and t.dim() == 2 and t.shape[1] == params["dim"], t.shape
        out[f"voice_{v}"] = t.float().numpy()
    if not a.steps:
        write_voice_fixtures(a.out_dir, out)

    # ---- FM transformer from vllm-omni
    gen, gen_path = import_vo(a.vo_dir)
    meta["vo_file_sha256"] = sha256(gen_path)
    amargs_orig = copy.deepcopy(params["multimodal"]["audio_model_args"])
    amargs = copy.deepcopy(params["multimodal"]["audio_model_args"])
    amargs["acoustic_transformer_args"].setdefault("n_decoding_steps", 7)
    if a.steps:
        amargs["acoustic_transformer_args"]["n_decoding_steps"] = a.steps
    fm = gen.FlowMatchingAudioTransformer(amargs)
    before = {k: p.detach().clone() for k, p in fm.named_parameters()}
    used = set()
    for k, v in W.items():
        if k.startswith("acoustic_transformer."):
            name = fm.load_weight((k[len("acoustic_transformer."):], v))
            used.add(name)
    params_names = set(dict(fm.named_parameters()).keys())
    assert params_names <= used, params_names - used
    for k, p in fm.named_parameters():
        assert not torch.equal(p, before[k]) or p.numel() < 2, f"{k} not loaded"
    fm = fm.float().eval()
    D = params["dim"]
    n_ac = amargs["n_acoustic_codebook"]
    rng = np.random.default_rng(1234)

    with torch.no_grad():
        # velocity at fixed (x, h, t), cond and uncond
        B = 3
        x = rng.standard_normal((B, n_ac)).astype(np.float32)
        h = rng.standard_normal((B, D)).astype(np.float32)
        ts = np.array([0.0, 3.0 / 7.0, 0.9], dtype=np.float32)
        vs, vus = [], []
        for i in range(B):
            tt = torch.tensor([[ts[i]]])
            tproj = fm.time_projection(fm.time_embedding(tt))
            xt = torch.from_numpy(x[i:i + 1])
            ht = torch.from_numpy(h[i:i + 1])
            vs.append(fm._predict_velocity(x_t=xt, llm_proj=fm.llm_projection(ht), t_proj=tproj))
            vus.append(fm._predict_velocity(x_t=xt, llm_proj=fm.llm_projection(ht * 0),
                                            t_proj=tproj))
        out["vel_x"], out["vel_h"], out["vel_t"] = x, h, ts
        out["vel_v"] = torch.cat(vs).numpy()
        out["vel_v_uncond"] = torch.cat(vus).numpy()

        # one full frame for fixed h and noise; row 3 is built to give END
        B = 4
        hf = rng.standard_normal((B, D)).astype(np.float32)
        hf[3] = 8.0 * fm.semantic_codebook_output.weight[1].numpy() / \
            np.linalg.norm(fm.semantic_codebook_output.weight[1].numpy()) * np.sqrt(D) / 2
        noise = rng.standard_normal((B, n_ac)).astype(np.float32)
        logits = {}
        hk = fm.semantic_codebook_output.register_forward_hook(
            lambda m, i, o: logits.__setitem__("l", o.detach().float().clone()))
        with NoiseFeed(noise):
            codes = fm.forward(torch.from_numpy(hf), cfg_alpha=torch.full((B,), CFG))
        hk.remove()
        out["frame_h"], out["frame_noise"] = hf, noise
        out["frame_codes"] = codes.numpy().astype(np.int32)
        out["frame_logits"] = logits["l"].numpy()
        meta["frame_end_row_is_end"] = bool(codes[3, 0].item() == 1)

        # cross-check: sglang-omni's independent copy of the FM (hard-coded 7 steps, cfg 1.2)
        if a.sgl_dir and not a.steps:
            sfm, sgl_path = import_sgl_fm(a.sgl_dir, amargs_orig, W)
            meta["sgl_file_sha256"] = sha256(sgl_path)
            with NoiseFeed(noise):
                scodes = sfm.forward(torch.from_numpy(hf))
            meta["sgl_frame_codes_equal"] = int((scodes == codes).sum().item())
            meta["sgl_frame_codes_total"] = int(codes.numel())
            assert torch.equal(scodes, codes), "sglang-omni FM disagrees with vllm-omni"

    # ---- backbone: transformers MistralModel
    from transformers import DynamicCache, MistralConfig, MistralModel
    import transformers
    meta["transformers"] = transformers.__version__
    cfg = MistralConfig(vocab_size=params["vocab_size"], hidden_size=D,
                        intermediate_size=params["hidden_dim"],
                        num_hidden_layers=params["n_layers"],
                        num_attention_heads=params["n_heads"],
                        num_key_value_heads=params["n_kv_heads"], head_dim=params["head_dim"],
                        rms_norm_eps=params["norm_eps"], rope_theta=params["rope_theta"],
                        max_position_embeddings=4096, sliding_window=None,
                        attn_implementation="eager", tie_word_embeddings=False)
    lm = MistralModel(cfg).float().eval()
    sd = {"embed_tokens.weight": W["mm_audio_embeddings.tok_embeddings.weight"],
          "norm.weight": W["norm.weight"]}
    nh, nkv, hd = params["n_heads"], params["n_kv_heads"], params["head_dim"]
    for i in range(params["n_layers"]):
        p = f"layers.{i}."
        sd[p + "self_attn.q_proj.weight"] = permute_rope(W[p + "attention.wq.weight"], nh, hd)
        sd[p + "self_attn.k_proj.weight"] = permute_rope(W[p + "attention.wk.weight"], nkv, hd)
        sd[p + "self_attn.v_proj.weight"] = W[p + "attention.wv.weight"]
        sd[p + "self_attn.o_proj.weight"] = W[p + "attention.wo.weight"]
        sd[p + "mlp.gate_proj.weight"] = W[p + "feed_forward.w1.weight"]
        sd[p + "mlp.up_proj.weight"] = W[p + "feed_forward.w3.weight"]
        sd[p + "mlp.down_proj.weight"] = W[p + "feed_forward.w2.weight"]
        sd[p + "input_layernorm.weight"] = W[p + "attention_norm.weight"]
        sd[p + "post_attention_layernorm.weight"] = W[p + "ffn_norm.weight"]
    missing, unexpected = lm.load_state_dict(sd, strict=False)
    assert not unexpected and all("rotary" in k for k in missing), (missing, unexpected)

    cb = W["mm_audio_embeddings.audio_codebook_embeddings.embeddings.weight"]
    S2 = amargs["semantic_codebook_size"] + 2
    L2 = amargs["acoustic_codebook_size"] + 2
    offs = torch.tensor([0] + [S2 + L2 * k for k in range(n_ac)])
    tok_emb = W["mm_audio_embeddings.tok_embeddings.weight"]
    audio_id = amargs["audio_token_id"]

    gens = []
    for gi, (vi, ti) in enumerate(GEN_CASES):
        v = voices[vi]
        ids = torch.tensor(out[f"prompt_{vi}_{ti}"].astype(np.int64))
        voice = torch.from_numpy(out[f"voice_{v}"])
        emb = tok_emb[ids].clone()
        pos = (ids == audio_id).nonzero().squeeze(1)
        assert pos.numel() == voice.shape[0]
        emb[pos] = voice
        gnoise = np.random.default_rng(100 + gi).standard_normal(
            (N_FRAMES_MAX, n_ac)).astype(np.float32)
        cache = DynamicCache()
        with torch.no_grad(), NoiseFeed(gnoise):
            o = lm(inputs_embeds=emb[None], past_key_values=cache, use_cache=True)
            h = o.last_hidden_state[0, -1:]
            P = ids.numel()
            frames, hs, margins = [], [], []
            for f in range(N_FRAMES_MAX):
                hs.append(h[0].numpy().copy())
                lg = fm.semantic_codebook_output(h).float()
                lg[:, 0] = -float("inf")
                lg[:, S2:] = -float("inf")
                top = torch.topk(lg[0], 2).values
                margins.append(float(top[0] - top[1]))
                c = fm.forward(h, cfg_alpha=torch.full((1,), CFG))
                if c[0, 0].item() == 1:
                    break
                frames.append(c[0].numpy().astype(np.int32))
                e = cb[c[0] + offs].sum(0)
                o = lm(inputs_embeds=e[None, None], past_key_values=cache, use_cache=True,
                       position_ids=torch.tensor([[P + f]]))
                h = o.last_hidden_state[0, -1:]
        key = f"gen_{gi}"
        out[key + "_case"] = np.array([vi, ti], dtype=np.int32)
        out[key + "_codes"] = np.array(frames, dtype=np.int32).reshape(-1, n_ac + 1)
        out[key + "_h"] = np.array(hs, dtype=np.float32)
        out[key + "_noise"] = gnoise
        out[key + "_margins"] = np.array(margins, dtype=np.float32)
        gens.append({"voice": v, "text": TEXTS[ti], "key": key, "frames": len(frames),
                     "ended": len(frames) < N_FRAMES_MAX, "min_margin": min(margins)})
    meta["generations"] = gens
    meta["cfg_alpha"] = CFG
    meta["n_frames_max"] = N_FRAMES_MAX
    meta["n_decoding_steps"] = fm._n_steps
    name, meta_name = "tts_ref.safetensors", "meta.json"
    if a.steps:
        name, meta_name = f"steps{a.steps}.safetensors", f"steps{a.steps}.json"
        out = {k: v for k, v in out.items() if k.startswith(("frame_", "gen_"))}
        out["n_steps"] = np.array([a.steps], dtype=np.int32)
        meta = {k: v for k, v in meta.items() if not k.startswith(("prompts", "sgl_"))}
    save_file({k: np.ascontiguousarray(v) for k, v in out.items()}, os.path.join(a.out_dir, name))
    json.dump(meta, open(os.path.join(a.out_dir, meta_name), "w"), indent=1)
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
