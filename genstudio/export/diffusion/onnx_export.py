"""ONNX export of the two graphs (per-component folders, diffusers-style) and the parity check.

    text_encoder/model.onnx   input_ids int64 (B, T) -> hidden float32 (B, T, text_dim)
    unet/model.onnx           sample (B, C, H, W), timestep float32 (B,), encoder_hidden_states (B, T, text_dim)
                              -> noise_pred (B, C, H, W)

The batch axis is dynamic; T, C, H and W are fixed. The timestep is the training timestep as a float
(0..999), so a scheduler may pass fractional ones. Both graphs are exported from `for_inference` copies of the
modules: the same function, written so that ONNX Runtime fuses more of it.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from genstudio.export.diffusion.text_encoder import TextEncoder
from genstudio.export.diffusion.unet import UNet
from genstudio.export.onnx_io import ort_session, save_onnx

TEXT_ENCODER_FILE, UNET_FILE = "text_encoder/model.onnx", "unet/model.onnx"


class _RowsLinear(nn.Module):
    """An nn.Linear applied to the rows of a 2-D view of its input. A linear layer on (B, N, C) exports as MatMul
    then a separate Add of the bias; on rows it is one Gemm with the bias inside."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return self.linear(x)
        return self.linear(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], self.linear.out_features)


class _FusableGelu(nn.Module):
    """The exact GELU, x (1 + erf(x / sqrt 2)) / 2, multiplied in the order ONNX Runtime's GELU fusion matches: x
    times (1 + erf) first, then the half. The exporter writes 0.5 (1 + erf) first, which stays five separate ops
    (an erf and four passes over the feed-forward's widest tensor)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * (torch.erf(x / math.sqrt(2.0)) + 1.0)) * 0.5


def for_inference(module: nn.Module) -> nn.Module:
    """A copy of `module` (the text encoder or the UNet) that computes the same function (to float rounding) with
    its linear layers as row-wise Gemms and its GELUs in a fusable order; the original is left as it was."""
    replaced: dict[int, nn.Module] = {}  # a module reached from two parents is replaced once, by one wrapper

    def rewrite(m: nn.Module) -> None:
        for name, child in m.named_children():
            if id(child) in replaced:
                setattr(m, name, replaced[id(child)])
            elif type(child) is nn.Linear:  # not subclasses, whose owners may read .weight directly
                replaced[id(child)] = _RowsLinear(child)
                setattr(m, name, replaced[id(child)])
            elif type(child) is nn.GELU and child.approximate == "none":
                replaced[id(child)] = _FusableGelu()
                setattr(m, name, replaced[id(child)])
            elif not isinstance(child, (_RowsLinear, _FusableGelu)):
                rewrite(child)

    arranged = copy.deepcopy(module).eval()
    rewrite(arranged)
    return arranged


class UNetGraph(nn.Module):
    """The UNet with diffusers' input and output names."""

    def __init__(self, unet: UNet) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor,
                encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        return self.unet(sample, timestep, encoder_hidden_states)


def export_graphs(text_encoder: TextEncoder, unet: UNet, folder: Path) -> dict[str, str]:
    """Write both graphs (from `for_inference` copies) under `folder`; returns {role: relative path}."""
    folder = Path(folder)
    t, u = text_encoder.cfg, unet.cfg
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, t.vocab_size, (2, t.max_length), generator=gen)
    save_onnx(for_inference(text_encoder), (ids,), folder / TEXT_ENCODER_FILE, input_names=["input_ids"],
               output_names=["hidden"])
    args = (torch.randn(2, u.channels, u.size, u.size, generator=gen), torch.tensor([10.0, 500.5]),
            torch.randn(2, t.max_length, t.dim, generator=gen))
    save_onnx(UNetGraph(for_inference(unet)), args, folder / UNET_FILE,
               input_names=["sample", "timestep", "encoder_hidden_states"], output_names=["noise_pred"])
    return {"text_encoder": TEXT_ENCODER_FILE, "unet": UNET_FILE}


def check_parity(text_encoder: TextEncoder, unet: UNet, folder: Path, input_ids: np.ndarray,
                 seed: int = 7) -> dict:
    """Max |PyTorch - ONNX Runtime| of the hidden states of `input_ids`, and of the noise predicted for
    seeded samples at spread timesteps (fractional ones too) conditioned on those same hidden states."""
    folder = Path(folder)
    n = len(input_ids)
    rng = np.random.default_rng(seed)
    u = unet.cfg
    sample = rng.standard_normal((n, u.channels, u.size, u.size)).astype(np.float32)
    timestep = np.minimum(np.linspace(0.0, 999.0, n) + 0.25 * (np.arange(n) % 2), 999.0).astype(np.float32)
    with torch.no_grad():
        hidden_t = text_encoder(torch.from_numpy(input_ids)).numpy()
        eps_t = unet(torch.from_numpy(sample), torch.from_numpy(timestep), torch.from_numpy(hidden_t)).numpy()
    hidden_o = ort_session(folder / TEXT_ENCODER_FILE).run(None, {"input_ids": input_ids})[0]
    eps_o = ort_session(folder / UNET_FILE).run(None, {"sample": sample, "timestep": timestep,
                                                       "encoder_hidden_states": hidden_t})[0]
    return {"max_abs_diff_text_encoder_hidden": float(np.abs(hidden_t - hidden_o).max()),
            "max_abs_diff_unet_noise_pred": float(np.abs(eps_t - eps_o).max()), "n": n,
            "method": (f"{n} prompts (the example prompts and the empty one, padded); samples ~ N(0, I) (numpy seed "
                       f"{seed}) at timesteps spread over 0..999, some fractional, conditioned on the PyTorch hidden "
                       "states; float32 both sides")}
