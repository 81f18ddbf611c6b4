"""Test helper: tiny but valid text-to-image diffusion folders (and a tiny evaluator), built once per session.

The UNet is an "oracle": for a prompt it knows the clean image x0 = 0.9 tanh(W mean(text states) + b) and
returns the exact epsilon (x_t - alpha_t x0) / sigma_t at any (fractional) training timestep, plus
`gain * tanh(conv(x_t))`, a sample-dependent error. With gain 0 (diffusion-oracle) every scheduler must land
on x0 itself, so the whole pipeline is checkable in closed form; with gain 0.5 (diffusion-tiny) the seed
matters, as in a real model. Graphs are exported by torch (the text encoder with export.onnx_io.save_onnx).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
from session_dirs import session_dir

TINY = "diffusion-tiny"
ORACLE = "diffusion-oracle"
TINY_EVAL = "eval-fashion-mnist"
IMAGE_SHAPE = (1, 8, 8)
MAX_LENGTH = 8
TEXT_DIM = 16
CLASS_WORDS = ("top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot")
CLASSES = [f"a photo of a {w}" for w in CLASS_WORDS]
EVAL_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
WORDS = sorted({*"a an of photo with wearing and hair on background".split(), *CLASS_WORDS,
                *"smiling sad woman man red blue black sunglasses round glasses cap".split()})
SCHEDULER_CONFIG = {"num_train_timesteps": 1000, "beta_schedule": "linear", "beta_start": 0.0001,
                    "beta_end": 0.02, "prediction_type": "epsilon", "clip_sample": True, "clip_sample_range": 1.0}


def write_tokenizer(path: Path, words=WORDS) -> Path:
    """A WordLevel tokenizer.json as the export writes it: [PAD] = 0, [UNK] = 1, then the words; lowercase,
    split on whitespace, punctuation dropped."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(words)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Punctuation(behavior="removed")])
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def train_sigmas(config: dict = SCHEDULER_CONFIG) -> np.ndarray:
    betas = np.linspace(config["beta_start"], config["beta_end"], config["num_train_timesteps"])
    ac = np.cumprod(1.0 - betas)
    return np.sqrt((1.0 - ac) / ac)


def _modules(vocab_size: int, gain: float, seed: int):
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    c, h, w = IMAGE_SHAPE

    class TextEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(vocab_size, TEXT_DIM)
            self.proj = nn.Linear(TEXT_DIM, TEXT_DIM)

        def forward(self, input_ids):  # (B, L) int64
            return torch.tanh(self.proj(self.emb(input_ids)))  # (B, L, D)

    class OracleUnet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.to_image = nn.Linear(TEXT_DIM, c * h * w)
            nn.init.normal_(self.to_image.weight, std=1.5)
            self.conv = nn.Conv2d(c, c, 3, padding=1)
            self.register_buffer("sigmas", torch.tensor(train_sigmas(), dtype=torch.float32))
            self.gain = float(gain)  # > 0: exported as a constant; the oracle copy zeroes the conv instead

        def target(self, encoder_hidden_states):
            x0 = 0.9 * torch.tanh(self.to_image(encoder_hidden_states.mean(1)))  # (B, C*H*W)
            return x0.reshape(-1, c, h, w)

        def forward(self, sample, timestep, encoder_hidden_states):
            t = timestep.clamp(0.0, 999.0)
            lo = t.floor()
            frac = (t - lo).reshape(-1, 1, 1, 1)
            lo_i = lo.long()
            hi_i = (lo_i + 1).clamp(max=999)
            sigma = self.sigmas[lo_i].reshape(-1, 1, 1, 1) * (1 - frac) + self.sigmas[hi_i].reshape(-1, 1, 1, 1) * frac
            alpha = 1.0 / torch.sqrt(sigma * sigma + 1.0)  # VP alpha_t
            eps = (sample - alpha * self.target(encoder_hidden_states)) / (sigma * alpha)
            return eps + self.gain * torch.tanh(self.conv(sample))

    return TextEncoder().eval(), OracleUnet().eval()


def _export_unet(unet, path: Path) -> None:
    """The three-input UNet graph through the pipeline's own exporter."""
    import torch

    from genstudio.export.onnx_io import save_onnx

    c, h, w = IMAGE_SHAPE
    example = (torch.randn(2, c, h, w), torch.tensor([999.0, 10.5]), torch.randn(2, MAX_LENGTH, TEXT_DIM))
    save_onnx(unet, example, path, input_names=["sample", "timestep", "encoder_hidden_states"],
              output_names=["noise_pred"])


def write_diffusion_folder(folder: Path, *, name: str = TINY, gain: float = 0.5, seed: int = 0,
                           defaults: dict | None = None, graphs_from: Path | None = None) -> Path:
    """One model folder with the shipped layout: model.json, text_encoder/, unet/, tokenizer/, scheduler/.

    graphs_from: copy the text encoder and the UNet of that folder instead of exporting again (fast); with
    gain 0 the UNet's conv is zeroed, which makes it the exact oracle."""
    import shutil

    import onnx
    import torch
    from onnx import numpy_helper

    from genstudio.export.onnx_io import save_onnx
    from genstudio.runtime.manifest import Manifest, ModelFile

    folder = Path(folder)
    tok = write_tokenizer(folder / "tokenizer" / "tokenizer.json")
    vocab_size = len(WORDS) + 2
    if graphs_from is None:
        encoder, unet = _modules(vocab_size, gain if gain else 0.5, seed)
        save_onnx(encoder, torch.zeros(2, MAX_LENGTH, dtype=torch.int64), folder / "text_encoder" / "model.onnx",
                  input_name="input_ids", output_names=["hidden"])
        _export_unet(unet, folder / "unet" / "model.onnx")
    else:
        for part in ("text_encoder", "unet"):
            (folder / part).mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(graphs_from) / part / "model.onnx", folder / part / "model.onnx")
    if gain == 0.0:  # zero the error term: eps is exact
        proto = onnx.load(str(folder / "unet" / "model.onnx"))
        for init in proto.graph.initializer:
            if init.name in ("conv.weight", "conv.bias"):
                init.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(init)), init.name))
        onnx.save_model(proto, str(folder / "unet" / "model.onnx"))
    (folder / "scheduler").mkdir(parents=True, exist_ok=True)
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER_CONFIG, indent=2))
    c, h, w = IMAGE_SHAPE
    Manifest(family="diffusion", name=name, version="1", title=f"Tiny diffusion ({name})",
             files=[ModelFile("text_encoder/model.onnx", "text_encoder"), ModelFile("unet/model.onnx", "unet"),
                    ModelFile(str(tok.relative_to(folder)), "tokenizer"),
                    ModelFile("scheduler/scheduler_config.json", "scheduler")],
             io={"text_encoder": {"inputs": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", MAX_LENGTH]}],
                                  "outputs": [{"name": "hidden", "dtype": "float32",
                                               "shape": ["batch", MAX_LENGTH, TEXT_DIM]}]},
                 "unet": {"inputs": [{"name": "sample", "dtype": "float32", "shape": ["batch", c, h, w]},
                                     {"name": "timestep", "dtype": "float32", "shape": ["batch"]},
                                     {"name": "encoder_hidden_states", "dtype": "float32",
                                      "shape": ["batch", MAX_LENGTH, TEXT_DIM]}],
                          "outputs": [{"name": "noise_pred", "dtype": "float32", "shape": ["batch", c, h, w]}]}},
             defaults=defaults or {"steps": 10, "guidance": 3.0, "scheduler": "ddim", "seed": 0, "batch": 4},
             license="MIT", data_source="none (random weights, made by the test)",
             extra={"dataset": "fashion-mnist", "image_shape": list(IMAGE_SHAPE), "value_range": [-1.0, 1.0],
                    "max_length": MAX_LENGTH, "text_dim": TEXT_DIM, "vocab_size": vocab_size,
                    "prediction": "epsilon", "example_prompts": CLASSES[:3], "classes": CLASSES,
                    "oracle_gain": gain}).save(folder)
    return folder


def write_eval_folder(folder: Path, *, seed: int = 0) -> Path:
    """A tiny eval-fashion-mnist: features (N, 16) = tanh(W x + b) and 10-class logits of 8x8 images, with
    reference statistics of uniform noise images. Built with onnx.helper (no export: fast)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from genstudio.runtime.manifest import Manifest, ModelFile

    rng = np.random.default_rng(seed)
    c, h, w = IMAGE_SHAPE
    d = c * h * w
    w1 = (rng.standard_normal((d, 16)) / np.sqrt(d)).astype(np.float32)
    b1 = np.zeros(16, np.float32)
    w2 = rng.standard_normal((16, 10)).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", c, h, w])
    outs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16]),
            helper.make_tensor_value_info("logits_class", TensorProto.FLOAT, ["batch", 10])]
    nodes = [helper.make_node("Flatten", ["x"], ["flat"], axis=1),
             helper.make_node("Gemm", ["flat", "w1", "b1"], ["pre"]),
             helper.make_node("Tanh", ["pre"], ["features"]),
             helper.make_node("Gemm", ["features", "w2", "b2"], ["logits_class"])]
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
    model = helper.make_model(helper.make_graph(nodes, "tiny-eval", [x], outs, initializer=inits),
                              opset_imports=[helper.make_opsetid("", 18)], producer_name="genstudio-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(folder / "evaluator.onnx"))
    real = rng.random((200, d))
    feats = np.tanh(real @ w1 + b1)
    np.savez(folder / "reference.npz", mu=feats.mean(0), sigma=np.cov(feats, rowvar=False),
             features=feats.astype(np.float16), labels=(feats @ w2 + b2).argmax(1)[:, None].astype(np.uint8))
    Manifest(family="evaluator", name=TINY_EVAL, version="1", title="Tiny evaluator",
             files=[ModelFile("evaluator.onnx", "evaluator"), ModelFile("reference.npz", "reference")],
             license="MIT", data_source="none",
             metrics={"fid_train_vs_test": 0.5},
             extra={"dataset": "fashion-mnist", "image_size": h, "channels": c, "value_range": [0.0, 1.0],
                    "fit": "resize", "feature_name": "tiny-eval", "feature_dim": 16,
                    "heads": {"class": EVAL_CLASSES}}).save(folder)
    return folder


@functools.cache
def tiny_diffusion_root() -> Path:
    """A models root holding diffusion-tiny (gain 0.5), diffusion-oracle (gain 0) and the tiny evaluator."""
    import torch

    torch.set_num_threads(1)
    root = session_dir("genstudio-diffusion-tiny-")
    write_diffusion_folder(root / TINY, name=TINY, gain=0.5)
    write_diffusion_folder(root / ORACLE, name=ORACLE, gain=0.0, graphs_from=root / TINY)
    write_eval_folder(root / TINY_EVAL)
    return root
