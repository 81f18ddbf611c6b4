"""ONNX export of the flows (opset 18, dynamic batch) and the PyTorch-vs-ONNX Runtime parity check.

2-D flows ship two graphs:
    log_density.onnx   x (N, 2) -> log_prob (N,)
    sample.onnx        z (N, 2) -> x (N, 2), layers (L+1, N, 2)   every intermediate, base side first
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from genstudio.export.onnx_io import ort_session, save_onnx

LOG_DENSITY_FILE = "log_density.onnx"
SAMPLE_FILE = "sample.onnx"


class LogDensityGraph(nn.Module):
    """x -> log p(x), for any flow with `log_prob`."""

    def __init__(self, flow: nn.Module) -> None:
        super().__init__()
        self.flow = flow

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flow.log_prob(x)


class SampleLayersGraph(nn.Module):
    """z -> (x, every layer's output) for a 2-D flow."""

    def __init__(self, flow: nn.Module) -> None:
        super().__init__()
        self.flow = flow

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.flow.sample_layers(z)


def export_flow2d(flow: nn.Module, folder: Path) -> dict[str, str]:
    """Write both graphs of a 2-D flow into `folder`; returns {role: file name}."""
    example = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    save_onnx(LogDensityGraph(flow), example, Path(folder) / LOG_DENSITY_FILE,
              input_name="x", output_names=["log_prob"])
    save_onnx(SampleLayersGraph(flow), example, Path(folder) / SAMPLE_FILE,
              input_name="z", output_names=["x", "layers"])
    return {"log_density": LOG_DENSITY_FILE, "sample": SAMPLE_FILE}


def parity_flow2d(flow: nn.Module, folder: Path, x: np.ndarray, z: np.ndarray) -> dict[str, float]:
    """Max abs differences between PyTorch and ONNX Runtime on the same inputs (float32 both sides)."""
    folder = Path(folder)
    flow = flow.eval()
    with torch.no_grad():
        lp_torch = flow.log_prob(torch.from_numpy(x)).numpy()
        xs_torch, layers_torch = (t.numpy() for t in flow.sample_layers(torch.from_numpy(z)))
    lp_ort = ort_session(folder / LOG_DENSITY_FILE).run(None, {"x": x})[0]
    xs_ort, layers_ort = ort_session(folder / SAMPLE_FILE).run(None, {"z": z})
    return {
        "max_abs_diff_log_prob": float(np.abs(lp_torch - lp_ort).max()),
        "max_abs_diff_samples": float(np.abs(xs_torch - xs_ort).max()),
        "max_abs_diff_layers": float(np.abs(layers_torch - layers_ort).max()),
        "n_points": int(len(x)),
    }
