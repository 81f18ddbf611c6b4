"""Carries a GGUF's quantized blocks into ONNX Runtime's ops as they are: Q4_0/Q4_1 layers, a Q8_0 embedding.

A Q4_1 block is w = d * q + m (32 weights along K, q in 0..15). MatMulNBits computes (q - zp) * scale with an
integer zero point, so we store scale = d, zp = round(-m / d) and q unchanged; what the integer zero point
cannot hold, the residual r = m + zp * d (|r| <= d / 2, one number per block), is added back by a correction:
Y += BlockSum(A) @ R^T, where BlockSum sums A over each 32-wide block (nb numbers per row). To keep the op count
low the correction rides in the same MatMulNBits: A is extended with its block sums (one small MatMul against a
0/1 block matrix, one Concat) and the weights with R, itself 4-bit (its error is ~1/15 of the residual's).
Re-quantizing the dequantized weights instead (ONNX Runtime's RTN quantizer) shifts every block by r, which
costs this 135M model about 25% perplexity; the correction makes the int4 graph compute the GGUF's weights.
A Q8_0 tied embedding (w = d * q) goes over exactly at 8 bits: GatherBlockQuantized for the lookup and
MatMulNBits for the output head, both with q + 128 and zero point 128.
"""

from __future__ import annotations

import re

import gguf
import numpy as np
import onnx
from onnx import helper, numpy_helper

from genstudio.export.llm.gguf_load import GGUFModel, unpermute

BLOCK = 32
_LINEAR = re.compile(r"^/layers\.(\d+)/(attn/qkv|attn/proj|mlp/gate_up|mlp/down)/MatMul$")
_PARTS = {"attn/qkv": ("attn_q", "attn_k", "attn_v"), "attn/proj": ("attn_output",),
          "mlp/gate_up": ("ffn_gate", "ffn_up"), "mlp/down": ("ffn_down",)}
_Q4 = {gguf.GGMLQuantizationType.Q4_0, gguf.GGMLQuantizationType.Q4_1}


def q4_blocks(g: GGUFModel, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(q uint8 (N, nb, 32), d float32 (N, nb), m float32 (N, nb)) of a Q4_0/Q4_1 tensor, or None for other types."""
    t = g._tensors[name]
    if t.tensor_type not in _Q4:
        return None
    n_rows, k = int(t.shape[1]), int(t.shape[0])
    nb = k // BLOCK
    size = 20 if t.tensor_type == gguf.GGMLQuantizationType.Q4_1 else 18
    raw = np.asarray(t.data, dtype=np.uint8).reshape(n_rows, nb, size)
    d = raw[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    if size == 20:
        m = raw[..., 2:4].copy().view(np.float16)[..., 0].astype(np.float32)
        qs = raw[..., 4:]
    else:  # Q4_0: w = d * (q - 8)
        m = -8.0 * d
        qs = raw[..., 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1)  # byte j holds elements j and j + 16
    return q, d, m


def _linear_blocks(g: GGUFModel, layer: int, part: str):
    cfg = g.config
    pieces = []
    for stem in _PARTS[part]:
        b = q4_blocks(g, f"blk.{layer}.{stem}.weight")
        if b is None:
            return None
        if stem == "attn_q":
            b = tuple(unpermute(x, cfg.n_head) for x in b)
        elif stem == "attn_k":
            b = tuple(unpermute(x, cfg.n_kv_head) for x in b)
        pieces.append(b)
    return tuple(np.concatenate([p[i] for p in pieces], axis=0) for i in range(3))


def _pack_nibbles(x: np.ndarray) -> np.ndarray:
    """Pairs along the last axis -> one byte (first in the low nibble); pads an odd count with 0."""
    if x.shape[-1] % 2:
        x = np.concatenate([x, np.zeros(x.shape[:-1] + (1,), x.dtype)], axis=-1)
    return (x[..., 0::2] | (x[..., 1::2] << 4)).astype(np.uint8)


def _quantize_rows(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, nb) residuals -> 4-bit blocks of 32 along nb: q (N, nbr, 32), scale (N, nbr), zp (N, nbr)."""
    n, nb = r.shape
    nbr = -(-nb // BLOCK)
    padded = np.zeros((n, nbr * BLOCK), np.float32)
    padded[:, :nb] = r
    blocks = padded.reshape(n, nbr, BLOCK)
    lo = np.minimum(blocks.min(-1), 0.0)
    hi = np.maximum(blocks.max(-1), 0.0)
    scale = np.where(hi > lo, (hi - lo) / 15.0, 1.0).astype(np.float32)
    zp = np.clip(np.round(-lo / scale), 0, 15)
    q = np.clip(np.round(blocks / scale[..., None]) + zp[..., None], 0, 15)
    return q.astype(np.uint8), scale, zp.astype(np.uint8)


def repack_linears(model: onnx.ModelProto, g: GGUFModel, *, accuracy_level: int = 4,
                   correct: bool = True) -> tuple[onnx.ModelProto, int]:
    """Replace every layer MatMul whose GGUF weights are Q4_0/Q4_1 by MatMulNBits (+ the offset correction)."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_nodes, new_inits, drop, count, made = [], [], set(), 0, set()
    for node in graph.node:
        m = _LINEAR.match(node.name)
        blocks = _linear_blocks(g, int(m.group(1)), m.group(2)) if (m and node.op_type == "MatMul") else None
        if blocks is None:
            new_nodes.append(node)
            continue
        q, d, mins = blocks
        n, nb = d.shape
        k = nb * BLOCK
        a, w = node.input
        if w not in inits or tuple(inits[w].dims) != (k, n):
            raise ValueError(f"{node.name}: weight {w} is not a ({k}, {n}) initializer")
        safe = np.where(d != 0, d, 1.0)
        zp = np.clip(np.round(-mins / safe), 0, 15).astype(np.uint8)
        zp = np.where(d != 0, zp, 0).astype(np.uint8)
        scale = np.where(d != 0, d, 1.0).astype(np.float32)
        q = np.where((d != 0)[..., None], q, 0).astype(np.uint8)  # a d == 0 block is all m: the correction holds it
        resid = (mins + zp.astype(np.float32) * scale).astype(np.float32)  # (N, nb)
        resid = np.where(d != 0, resid, mins)
        p = node.name.strip("/").replace("/", "_")
        if correct:  # weights [Wq ; R] over inputs [A, BlockSum(A)]
            rq, rscale, rzp = _quantize_rows(resid)  # (N, nbr, 32), (N, nbr), (N, nbr)
            q = np.concatenate([q, rq], axis=1)
            scale = np.concatenate([scale, rscale], axis=1)
            zp = np.concatenate([zp, rzp], axis=1)
            ones = f"blocksum_{k}"  # a 0/1 (K, nb) matrix, shared by every linear with this K
            if ones not in made:
                made.add(ones)
                new_inits.append(numpy_helper.from_array(
                    np.kron(np.eye(nb, dtype=np.float32), np.ones((BLOCK, 1), np.float32)), ones))
            new_nodes += [
                helper.make_node("MatMul", [a, ones], [f"{p}_bsum"], name=f"{node.name}BlockSum"),  # (B, S, nb)
                helper.make_node("Concat", [a, f"{p}_bsum"], [f"{p}_ext"], axis=-1, name=f"{node.name}Extend"),
            ]
            a = f"{p}_ext"
        new_inits += [numpy_helper.from_array(_pack_nibbles(q), f"{p}_B"),  # (N, blocks, 16)
                      numpy_helper.from_array(scale.reshape(-1).astype(np.float32), f"{p}_scales"),
                      numpy_helper.from_array(_pack_nibbles(zp).reshape(-1), f"{p}_zp")]
        new_nodes.append(helper.make_node("MatMulNBits", [a, f"{p}_B", f"{p}_scales", f"{p}_zp"], [node.output[0]],
                                          name=f"{node.name}NBits", domain="com.microsoft",
                                          K=k + (nb if correct else 0), N=n, bits=4, block_size=BLOCK,
                                          accuracy_level=accuracy_level))
        drop.add(w)
        count += 1
    del graph.node[:]
    graph.node.extend(new_nodes)
    keep = [i for i in graph.initializer if i.name not in drop]
    del graph.initializer[:]
    graph.initializer.extend(keep + new_inits)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model, count


def q8_blocks(g: GGUFModel, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(q int8 (N, nb, 32), d float32 (N, nb)) of a Q8_0 tensor (w = d * q), or None for other types."""
    t = g._tensors[name]
    if t.tensor_type != gguf.GGMLQuantizationType.Q8_0:
        return None
    n_rows, k = int(t.shape[1]), int(t.shape[0])
    raw = np.asarray(t.data, dtype=np.uint8).reshape(n_rows, k // BLOCK, 34)
    d = raw[..., 0:2].copy().view(np.float16)[..., 0].astype(np.float32)
    q = raw[..., 2:].copy().view(np.int8)
    return q, d


def repack_embedding(model: onnx.ModelProto, g: GGUFModel, *, accuracy_level: int = 4) -> list[str]:
    """A Q8_0 token embedding, tied or not, carried over exactly at 8 bits: the Gather becomes
    GatherBlockQuantized and the tied output head MatMulNBits (q + 128, zero point 128, scale d)."""
    blocks = q8_blocks(g, "token_embd.weight")
    if blocks is None or not g.config.tied_embeddings:
        return []
    q, d = blocks
    v, nb, _ = q.shape
    dim = nb * BLOCK
    data = (q.astype(np.int16) + 128).astype(np.uint8)  # (V, nb, 32)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    done, drop, new_nodes = [], set(), []
    new_inits = [numpy_helper.from_array(data.reshape(v, dim), "token_embd_q8"),
                 numpy_helper.from_array(d, "token_embd_scales"),
                 numpy_helper.from_array(np.full((v, nb), 128, np.uint8), "token_embd_zp")]
    for node in graph.node:
        w = node.input[0] if node.op_type == "Gather" else (node.input[1] if node.op_type == "MatMul" else None)
        shape = tuple(inits[w].dims) if w in inits else None
        if node.op_type == "Gather" and shape == (v, dim):
            new_nodes.append(helper.make_node(
                "GatherBlockQuantized", ["token_embd_q8", node.input[1], "token_embd_scales", "token_embd_zp"],
                list(node.output), name=node.name + "Q8", domain="com.microsoft", bits=8, block_size=BLOCK,
                gather_axis=0, quantize_axis=1))
        elif node.op_type == "MatMul" and shape == (dim, v):
            if "head_zp" not in {i.name for i in new_inits}:
                new_inits += [numpy_helper.from_array(data, "head_B"),  # (N = V, nb, 32)
                              numpy_helper.from_array(d.reshape(-1), "head_scales"),
                              numpy_helper.from_array(np.full(v * nb, 128, np.uint8), "head_zp")]
            new_nodes.append(helper.make_node(
                "MatMulNBits", [node.input[0], "head_B", "head_scales", "head_zp"], list(node.output),
                name=node.name + "NBits", domain="com.microsoft", K=dim, N=v, bits=8, block_size=BLOCK,
                accuracy_level=accuracy_level))
        else:
            new_nodes.append(node)
            continue
        drop.add(w)
        done.append(node.name)
    if not done:
        return []
    del graph.node[:]
    graph.node.extend(new_nodes)
    keep = [i for i in graph.initializer if i.name not in drop]
    del graph.initializer[:]
    graph.initializer.extend(keep + new_inits)
    return done
