#!/usr/bin/env python3
"""Golden Voxtral Codec decoder outputs for codec/ (tests/test_codec.c), computed with the upstream
reference: vllm-omni's VoxtralTTSAudioTokenizer (voxtral_tts_audio_tokenizer.py) in float32 on
CPU, imported from a `pip download --no-deps` wheel with the vLLM names it imports stubbed
(spec/reference-harness-tts.md section 4), cross-checked against sglang-omni's independent copy
(sglang_omni/models/voxtral_tts/audio_tokenizer.py).

Usage (from the repository root, after building):
    /work/main/.venv-ref/bin/python tests/reference/codec_ref.py \
        --wheels DIR_WITH_vllm_omni-0.30.0_AND_sglang_omni-0.1.9_WHEELS [--mkcodec build/bin/vox-mkcodec]

    DIR is filled with `pip download --no-deps vllm-omni==0.30.0 sglang-omni==0.1.9 -d DIR`.
    Never `pip install` them: that pulls the CUDA vLLM / SGLang stacks.

Model: the tiny random codec written by `vox-mkcodec OUT` (default options and seed 1234; the C
test regenerates the same file with vox_mkcodec_defaults(&o, 0)): 6 heads (non-power-of-2
ALiBi rule), 3 kv heads, head_dim 12 != dim 48 / 6, lengths "2,1,1,2", windows 2/4/8/16,
F32 weights, cluster_usage[1] == 0 (clamp).

Outputs (tests/fixtures/codec/):
    codes.i32      int32 [T=24][1 + acoustic_dim], raw quantizer indices (no +2 offset)
    pcm_T24.f32    decode(codes[None].T) -> [T * 8 * patch] samples, float32
    pcm_T1.f32, pcm_T2.f32   decode of the first 1 / 2 frames alone (padding edges)
    blocks_T24.f32 the output of every decoder block and of output_proj for T=24, time-major
                   [t][c], concatenated in block order (shapes in meta.json)
    pcm_k11_T1.f32, pcm_k11_T3.f32  the same codes through `vox-mkcodec --patch-kernel 11`
                   (output conv left pad 10 > 8 rows of one frame: pad1d's short-input rule)
    enc_pcm.f32    encoder input (1523 samples); enc_{long,short}_{latent.f32,codes.i32}: the
                   encoder latent [T][latent] before quantization and the codes [T][37] for the
                   whole input and its first 40 samples (`vox-mkcodec --encoder` model)
    meta.json      shapes, max |VO - SGL|, sha256 of the upstream .py files, versions
"""
import argparse
import hashlib
import importlib.abc
import importlib.machinery
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import types
import zipfile

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "fixtures", "codec")
VO_TOK = "vllm_omni/model_executor/models/voxtral_tts/voxtral_tts_audio_tokenizer.py"
VO_GEN = "vllm_omni/model_executor/models/voxtral_tts/voxtral_tts_audio_generation.py"
SGL_TOK = "sglang_omni/models/voxtral_tts/audio_tokenizer.py"
SGL_AT = "sglang_omni/models/voxtral_tts/acoustic_transformer.py"


def unzip(wheel, dest):
    with zipfile.ZipFile(wheel) as z:
        z.extractall(dest)
    return dest


def find_wheel(d, prefix):
    for f in sorted(os.listdir(d)):
        if f.startswith(prefix) and f.endswith(".whl"):
            return os.path.join(d, f)
    raise SystemExit(f"no {prefix}*.whl in {d}")


# ---- stubs for the vLLM names the VO files import at module top ----------------------------
class _Auto(types.ModuleType):
    """A module whose unknown attributes are fresh generic-subscriptable classes."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        cls = type(name, (), {"__class_getitem__": classmethod(lambda c, k: c)})
        setattr(self, name, cls)
        return cls


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    PREFIXES = ("vllm", "vllm_omni.platforms", "vllm_omni.quantization")

    def find_spec(self, name, path, target=None):
        if name == "vllm" or any(name == p or name.startswith(p + ".") for p in self.PREFIXES):
            if name.startswith("vllm_omni.") or name == "vllm" or name.startswith("vllm."):
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        m = _Auto(spec.name)
        m.__path__ = []
        return m

    def exec_module(self, module):
        pass


def default_weight_loader(param, loaded):
    assert tuple(param.shape) == tuple(loaded.shape), (param.shape, loaded.shape)
    with torch.no_grad():
        param.data.copy_(loaded)


def install_vo(root):
    sys.path.insert(0, root)
    for pkg in ["vllm_omni", "vllm_omni.model_executor", "vllm_omni.model_executor.models",
                "vllm_omni.model_executor.models.voxtral_tts"]:
        m = types.ModuleType(pkg)
        m.__path__ = [os.path.join(root, *pkg.split("."))]
        sys.modules[pkg] = m
    sys.meta_path.insert(0, _Finder())
    import vllm.logger
    import vllm.model_executor.model_loader.weight_utils as wu
    import vllm.multimodal
    import vllm_omni.platforms

    vllm.logger.init_logger = logging.getLogger
    wu.default_weight_loader = default_weight_loader
    vllm.multimodal.MULTIMODAL_REGISTRY = types.SimpleNamespace(
        register_processor=lambda *a, **k: (lambda c: c))
    vllm_omni.platforms.current_omni_platform = types.SimpleNamespace(device_type="cpu")
    import vllm_omni.model_executor.models.voxtral_tts.voxtral_tts_audio_tokenizer as tok

    assert tok.default_weight_loader is default_weight_loader
    assert not tok.HAS_FLASH_ATTN
    return tok


def install_sgl(root):
    sys.path.insert(0, root)
    for pkg in ["sglang_omni", "sglang_omni.models", "sglang_omni.models.voxtral_tts"]:
        m = types.ModuleType(pkg)
        m.__path__ = [os.path.join(root, *pkg.split("."))]
        sys.modules[pkg] = m
    wl = types.ModuleType("sglang_omni.models.weight_loader")
    wl.default_weight_loader = default_weight_loader
    sys.modules["sglang_omni.models.weight_loader"] = wl
    import sglang_omni.models.voxtral_tts.audio_tokenizer as tok

    return tok


def load(model, weights):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n = 0
    for name, t in weights.items():
        assert name.startswith("audio_tokenizer."), name
        model.load_weight((name[len("audio_tokenizer."):], t))
        n += 1
    model.float().eval()
    # every parameter of the decoder path must have been overwritten
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith(("decoder_blocks.", "output_proj.")):
            assert not torch.equal(v, after[k]), f"{k} not loaded"
    return n


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheels", required=True)
    ap.add_argument("--mkcodec", default=os.path.join(ROOT, "build", "bin", "vox-mkcodec"))
    ap.add_argument("--frames", type=int, default=24)
    a = ap.parse_args()
    torch.manual_seed(0)
    tmp = tempfile.mkdtemp(prefix="codec_ref_")
    model_dir = os.path.join(tmp, "model")
    subprocess.run([a.mkcodec, model_dir], check=True)
    with open(os.path.join(model_dir, "params.json")) as f:
        targs = json.load(f)["multimodal"]["audio_tokenizer_args"]
    weights = load_file(os.path.join(model_dir, "consolidated.safetensors"))

    vo_root = unzip(find_wheel(a.wheels, "vllm_omni-"), os.path.join(tmp, "vo"))
    sgl_root = unzip(find_wheel(a.wheels, "sglang_omni-"), os.path.join(tmp, "sgl"))
    vo = install_vo(vo_root)
    sgl = install_sgl(sgl_root)

    audio_model_args = {
        "semantic_codebook_size": targs["semantic_codebook_size"],
        "acoustic_codebook_size": targs["acoustic_codebook_size"],
        "n_acoustic_codebook": targs["acoustic_dim"],
        "acoustic_transformer_args": {"input_dim": 16},
    }
    cfg = types.SimpleNamespace(model_config=types.SimpleNamespace(hf_config=types.SimpleNamespace(
        audio_config={"codec_args": dict(targs), "audio_model_args": audio_model_args},
        text_config=types.SimpleNamespace(hidden_size=16))))
    m_vo = vo.VoxtralTTSAudioTokenizer(vllm_config=cfg, prefix="")
    n_vo = load(m_vo, weights)
    m_sgl = sgl.VoxtralTTSAudioTokenizer(dict(targs), {"audio_model_args": audio_model_args})
    n_sgl = load(m_sgl, weights)
    windows = [blk.args.attn_sliding_window_size for blk in m_vo.decoder_blocks
               if isinstance(blk, vo.Transformer)]
    slopes = m_vo.decoder_blocks[1].layers["0"].attention.alibi_slopes.tolist()

    S, L, A = targs["semantic_codebook_size"], targs["acoustic_codebook_size"], targs["acoustic_dim"]
    T = a.frames
    rng = np.random.default_rng(20261202)
    codes = np.zeros((T, 1 + A), dtype=np.int32)
    codes[:, 0] = rng.integers(0, S, T)
    codes[:, 1:] = rng.integers(0, L, (T, A))
    codes[3, 0] = 1            # the zero-usage codebook row (clamp 1e-5)
    codes[0, 0] = S - 1        # edges
    codes[5, 1:] = 0
    codes[6, 1:] = L - 1

    # hooks on every decoder block and on output_proj (outputs are [b, t, d] for transformers,
    # [b, d, t] for the conv blocks)
    captured = []

    def hook(mod, inp, out):
        o = out.detach()
        if o.dim() == 3 and isinstance(mod, (vo.CausalConv1d, vo.CausalConvTranspose1d)):
            o = o.transpose(1, 2)
        captured.append((type(mod).__name__, o[0].contiguous().numpy().copy()))

    hooks = [b.register_forward_hook(hook) for b in m_vo.decoder_blocks]
    hooks.append(m_vo.output_proj.register_forward_hook(hook))

    outs = {}
    with torch.no_grad():
        for n in (T, 1, 2):
            captured.clear()
            c = torch.from_numpy(codes[:n].T.copy()).long()[None]
            y_vo = m_vo.decode(c, torch.float32)[0, 0].numpy().copy()
            y_sgl = m_sgl.decode(c, torch.float32)[0, 0].numpy().copy()
            assert y_vo.shape == (n * 8 * targs["pretransform_patch_size"],), y_vo.shape
            outs[n] = (y_vo, float(np.abs(y_vo - y_sgl).max()))
            if n == T:
                blocks = list(captured)
    for h in hooks:
        h.remove()

    os.makedirs(OUT, exist_ok=True)
    codes.tofile(os.path.join(OUT, "codes.i32"))
    for n, (y, _) in outs.items():
        y.astype("<f4").tofile(os.path.join(OUT, f"pcm_T{n}.f32"))
    np.concatenate([b.reshape(-1) for _, b in blocks]).astype("<f4").tofile(
        os.path.join(OUT, "blocks_T24.f32"))

    import einops

    # second model: patch_proj_kernel_size 11 (left pad 10 > 8 rows per frame), so a 1-frame
    # decode takes pad1d's short-input path (zero extension before the reflection)
    model_k11 = os.path.join(tmp, "model_k11")
    subprocess.run([a.mkcodec, model_k11, "--patch-kernel", "11"], check=True)
    with open(os.path.join(model_k11, "params.json")) as f:
        targs11 = json.load(f)["multimodal"]["audio_tokenizer_args"]
    assert targs11["patch_proj_kernel_size"] == 11
    cfg.model_config.hf_config.audio_config["codec_args"] = dict(targs11)
    m11 = vo.VoxtralTTSAudioTokenizer(vllm_config=cfg, prefix="")
    load(m11, load_file(os.path.join(model_k11, "consolidated.safetensors")))
    m11s = sgl.VoxtralTTSAudioTokenizer(dict(targs11), {"audio_model_args": audio_model_args})
    load(m11s, load_file(os.path.join(model_k11, "consolidated.safetensors")))
    k11 = {}
    with torch.no_grad():
        for n in (1, 3):
            c = torch.from_numpy(codes[:n].T.copy()).long()[None]
            y = m11.decode(c, torch.float32)[0, 0].numpy().copy()
            ys = m11s.decode(c, torch.float32)[0, 0].numpy().copy()
            y.astype("<f4").tofile(os.path.join(OUT, f"pcm_k11_T{n}.f32"))
            k11[f"T{n}"] = {"samples": int(y.size), "max_abs": float(np.abs(y).max()),
                            "max_abs_vo_minus_sgl": float(np.abs(y - ys).max())}

    # encoder (not in the released checkpoint): `vox-mkcodec --encoder`, fp32 _forward_encoder
    # (upstream _tokenize_audio runs it under bf16 autocast; the math is the same) and
    # quantizer.encode; a long input (24 frames after padding) and a 40-sample one (5 patches
    # <= input_proj's left pad 6: pad1d's short-input rule)
    model_enc = os.path.join(tmp, "model_enc")
    subprocess.run([a.mkcodec, model_enc, "--encoder"], check=True)
    with open(os.path.join(model_enc, "params.json")) as f:
        targs_e = json.load(f)["multimodal"]["audio_tokenizer_args"]
    cfg.model_config.hf_config.audio_config["codec_args"] = dict(targs_e)
    me = vo.VoxtralTTSAudioTokenizer(vllm_config=cfg, prefix="")
    load(me, load_file(os.path.join(model_enc, "consolidated.safetensors")))
    assert me.encoder_loaded
    P = targs_e["pretransform_patch_size"]
    n_long = T * 8 * P - 13
    tt = np.arange(n_long) / 24000.0
    wav = (0.5 * np.sin(2 * np.pi * 440 * tt) + 0.3 * np.sin(2 * np.pi * 1234 * tt + 1.0)
           + 0.05 * np.random.default_rng(7).standard_normal(n_long)).astype(np.float32)
    wav.astype("<f4").tofile(os.path.join(OUT, "enc_pcm.f32"))
    enc = {}
    with torch.no_grad():
        for name, x in (("long", wav), ("short", wav[:40])):
            xx = torch.from_numpy(x.copy())[None, None]
            if xx.shape[-1] % P:
                xx = torch.nn.functional.pad(xx, (0, P - xx.shape[-1] % P))
            lat = me._forward_encoder(xx)            # [1, latent, T]
            cod = me.quantizer.encode(lat)           # [1, 37, T]
            lat_t = lat[0].T.contiguous().numpy()
            cod_t = cod[0].T.contiguous().numpy().astype(np.int32)
            lat_t.astype("<f4").tofile(os.path.join(OUT, f"enc_{name}_latent.f32"))
            cod_t.tofile(os.path.join(OUT, f"enc_{name}_codes.i32"))
            # distance margin of the semantic argmin and FSQ distance to a rounding boundary
            sem = lat[0, :targs_e["semantic_dim"]].T
            dist = torch.cdist(sem, me.quantizer.semantic_codebook.embedding)
            top2 = dist.topk(2, largest=False).values
            sc = (torch.tanh(lat[0, targs_e["semantic_dim"]:]) + 1) / 2 * (targs_e["acoustic_codebook_size"] - 1)
            enc[name] = {"samples": int(x.size), "frames": int(lat_t.shape[0]),
                         "min_semantic_margin": float((top2[:, 1] - top2[:, 0]).min()),
                         "min_fsq_boundary_distance": float((sc - sc.floor() - 0.5).abs().min())}

    meta = {
        "model": "vox-mkcodec defaults (vox_mkcodec_defaults(&o, 0), seed 1234, F32)",
        "audio_tokenizer_args": targs,
        "frames": T,
        "codes_shape": list(codes.shape),
        "decoder_windows": windows,
        "alibi_slopes": slopes,
        "blocks": [{"type": t, "shape": list(b.shape)} for t, b in blocks],
        "pcm": {f"T{n}": {"samples": int(y.size), "max_abs": float(np.abs(y).max()),
                          "rms": float(np.sqrt(np.mean(y.astype(np.float64) ** 2))),
                          "max_abs_vo_minus_sgl": d} for n, (y, d) in outs.items()},
        "patch_kernel_11": {"args": "vox-mkcodec --patch-kernel 11", "pcm": k11},
        "encoder": {"args": "vox-mkcodec --encoder", "cases": enc},
        "tensors_loaded": {"vo": n_vo, "sgl": n_sgl},
        "upstream": {
            "vllm-omni": "0.30.0 (pip download --no-deps)",
            "sglang-omni": "0.1.9 (pip download --no-deps)",
            "sha256": {p: sha256(os.path.join(vo_root, p)) for p in (VO_TOK, VO_GEN)}
            | {p: sha256(os.path.join(sgl_root, p)) for p in (SGL_TOK, SGL_AT)},
        },
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "einops": einops.__version__},
    }
    with open(os.path.join(OUT, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps({"windows": windows, "slopes": slopes, "pcm": meta["pcm"]}, indent=1))


if __name__ == "__main__":
    main()
