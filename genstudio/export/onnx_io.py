"""ONNX helpers every family's export shares: a quiet dynamo export with a dynamic batch, a CPU
session for parity checks, and the versions recorded in a manifest."""

from __future__ import annotations

import contextlib
import io
import logging
import platform
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn

OPSET = 18  # 18 or later: a graph at 17 fails to load once its Gather ops are quantised


def save_onnx(module: nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], path: Path, *,
              input_name: str | None = None, input_names: Sequence[str] = (), output_names: Sequence[str],
              dynamic_shapes: tuple[dict, ...] | None = None, opset: int = OPSET,
              producer: str = "genstudio.export") -> Path:
    """Export with the dynamo exporter, quietly, and write the graph atomically. `example` is one input
    tensor (named `input_name`) or a tuple of them (named `input_names`); by default axis 0 of every input
    is one shared dynamic batch, else `dynamic_shapes` holds per input {axis: torch.export.Dim}."""
    import onnx

    args = example if isinstance(example, tuple) else (example,)
    names = list(input_names) or ([input_name] if input_name else [])
    if len(names) != len(args):
        raise ValueError(f"{len(args)} example inputs but {len(names)} input names")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    if dynamic_shapes is None:
        batch = batch_dim()
        dynamic_shapes = tuple({0: batch} for _ in args)
    quiet = io.StringIO()
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, args, dynamo=True, opset_version=opset, verbose=False,
                                        input_names=names, output_names=list(output_names),
                                        dynamic_shapes=dynamic_shapes, external_data=False)
    finally:
        exporter_log.setLevel(level)
    program.optimize()
    proto = program.model_proto
    for node in proto.graph.node:  # the exporter's per-node notes hold stack traces with local paths
        del node.metadata_props[:]
        node.doc_string = ""
    del proto.graph.value_info[:]  # intermediate shapes; ONNX Runtime infers them again
    proto.producer_name = producer
    onnx.checker.check_model(proto)
    tmp = path.with_name(path.name + ".part")
    onnx.save_model(proto, str(tmp))
    tmp.replace(path)
    return path


def batch_dim() -> torch.export.Dim:
    """The dynamic batch axis every exported graph has."""
    return torch.export.Dim("batch", min=1, max=1 << 20)


def ort_session(path: Path, threads: int = 0):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def versions() -> dict:
    import onnx
    import onnxruntime

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(), "opset": OPSET}
