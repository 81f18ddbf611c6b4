"""Exports the PyTorch Llama to ONNX in the public decoder layout, and quantizes it to int4 (MatMulNBits)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from genstudio.export.llm.model import Llama, fused_export

OPSET = 18  # Gather quantization lifts the graph to 21; 17 would then fail to load (ReduceMean axes)


def io_names(n_layer: int) -> tuple[list[str], list[str]]:
    past = [f"past_key_values.{i}.{kv}" for i in range(n_layer) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(n_layer) for kv in ("key", "value")]
    return ["input_ids", "attention_mask", "position_ids", *past], ["logits", *present]


def export_onnx(model: Llama, path: Path, *, fused: bool = True) -> Path:
    """Trace with the TorchScript exporter (custom symbolics emit ONNX Runtime's fused kernels)."""
    cfg = model.cfg
    model.eval()
    inputs, outputs = io_names(cfg.n_layer)
    B, S, P = 1, 3, 2  # dummy batch, new tokens, past tokens; all three stay dynamic
    ids = torch.randint(0, cfg.vocab_size, (B, S))
    mask = torch.ones(B, P + S, dtype=torch.int64)
    pos = torch.arange(P, P + S).unsqueeze(0)
    past = [torch.randn(B, cfg.n_kv_head, P, cfg.head_dim) for _ in range(2 * cfg.n_layer)]
    dyn = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "total_sequence"},
           "position_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"}}
    for name in inputs[3:]:
        dyn[name] = {0: "batch", 2: "past_sequence"}
    for name in outputs[1:]:
        dyn[name] = {0: "batch", 2: "total_sequence"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad(), fused_export(fused):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (ids, mask, pos, *past), str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=dyn, opset_version=OPSET, do_constant_folding=True, dynamo=False,
                          custom_opsets={"com.microsoft": 1})
    return path


def quantize_int4(src: Path, dst: Path, *, gguf_model=None, block_size: int = 32, repack: bool = True,
                  accuracy_level: int = 4, head_bits: int = 4) -> dict:
    """Quantized weights in MatMulNBits / GatherBlockQuantized. With the GGUF at hand (repack=True), what the GGUF
    already holds quantized is carried over block for block (genstudio.export.llm.q4_repack): Q4_0/Q4_1 layer
    weights at 4 bits, a Q8_0 tied embedding and output head at 8 bits, as llama.cpp runs them. Everything
    else (or everything, with repack=False) goes through ONNX Runtime's own MatMulNBits quantizer: layers and
    embedding at 4 bits, the output head at `head_bits`. Returns what was done, for model.json."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    from genstudio.export.llm.q4_repack import repack_embedding, repack_linears

    model = onnx.load(str(src))
    repacked, embedding = 0, []
    if repack and gguf_model is not None:
        model, repacked = repack_linears(model, gguf_model, accuracy_level=accuracy_level)
        embedding = repack_embedding(model, gguf_model, accuracy_level=accuracy_level)
    corrections = [n.name for n in model.graph.node if n.name.endswith("MatMulBlockSum")]
    # the tied output head (a MatMul) at head_bits, then the embedding Gather (ONNX Runtime quantizes it at 4 bits)
    for bits, ops, axes in ((head_bits, ("MatMul",), (("MatMul", 0),)), (4, ("Gather",), (("Gather", 1),))):
        qcfg = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=False, accuracy_level=accuracy_level,
                                            bits=bits, op_types_to_quantize=ops, quant_axes=axes)
        q = MatMulNBitsQuantizer(model, nodes_to_exclude=corrections, algo_config=qcfg)
        q.process()
        model = q.model.model
    out = model
    ops: dict[str, int] = {}
    for n in out.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    onnx.save_model(out, str(dst))
    return {"block_size": block_size, "accuracy_level": accuracy_level, "repacked_q4_matmuls": repacked,
            "repacked_q8_embedding": embedding,
            "ort_quantizer": {"head_bits": head_bits, "embedding_bits": 4, "symmetric": False, "ops": ["MatMul", "Gather"],
                              "quantized": ops.get("MatMulNBits", 0) + ops.get("GatherBlockQuantized", 0)
                              - repacked - len(embedding)}}
