"""The model checker's child process: parse an ONNX file, walk every graph, print one JSON line.

Run as `genstudio __inspect__ FILE ROOT` (or `python -m genstudio __inspect__ ...`). Memory is capped
before parsing, so a file built to exhaust memory fails here, not in the studio.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def _limit_memory(file_size: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: the timeout in the parent still bounds the child
        return
    cap = max(6 * 1024**3, 4 * file_size + 3 * 1024**3)
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard == resource.RLIM_INFINITY or hard > cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, hard if hard != resource.RLIM_INFINITY else cap))
    except (ValueError, OSError):
        pass


def _dims(type_proto) -> tuple[str, list]:
    from onnx import helper

    t = type_proto.tensor_type
    if not type_proto.HasField("tensor_type"):
        return (type_proto.WhichOneof("value") or "unknown", [])
    try:
        dtype = str(helper.tensor_dtype_to_np_dtype(t.elem_type))
    except Exception:
        dtype = f"elem_type {t.elem_type}"
    if not t.HasField("shape"):
        return dtype, []
    shape = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            shape.append(int(d.dim_value))
        elif d.HasField("dim_param"):
            shape.append(d.dim_param)
        else:
            shape.append(None)
    return dtype, shape


def _tensor_bytes(tensor) -> int | None:
    from onnx import helper

    n = 1
    for d in tensor.dims:
        n *= int(d)
    try:
        itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except Exception:
        return None
    if tensor.data_type in (22, 23):  # INT4 / UINT4 pack two per byte
        return (n + 1) // 2
    return n * itemsize


class Rejected(Exception):
    pass


def analyse(path: Path, root: Path) -> dict:
    import onnx
    from onnx import AttributeProto, TensorProto

    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as e:
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise Rejected(f"not a valid ONNX model: the protobuf does not parse ({msg})") from None
    if model.ir_version <= 0:
        raise Rejected("not a valid ONNX model: no IR version (is this an ONNX file at all?)")
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise Rejected("not a valid ONNX model: it holds no graph")
    if not model.opset_import:
        raise Rejected("not a valid ONNX model: no opset is imported")

    local_functions = {(f.domain, f.name) for f in model.functions}
    local_domains = {f.domain for f in model.functions}
    allowed = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}
    for op in model.opset_import:
        if op.domain not in allowed and op.domain not in local_domains:
            raise Rejected(f"op domain {op.domain!r} is not allowed (only the standard domains and com.microsoft)")

    ops: Counter = Counter()
    params = 0
    external = []

    def visit_tensor(t: TensorProto, owner: str) -> None:
        nonlocal params
        n = 1
        for d in t.dims:
            n *= int(d)
        params += n
        if t.data_location == TensorProto.EXTERNAL:
            kv = {e.key: e.value for e in t.external_data}
            loc = kv.get("location", "")
            try:
                offset = int(kv.get("offset", 0))
                length = int(kv["length"]) if "length" in kv else None
            except ValueError:
                raise Rejected(f"tensor {t.name or owner!r}: external data offset or length is not a number") from None
            expected = _tensor_bytes(t)
            if length is None:
                length = expected if expected is not None else 0
            elif expected is not None and length != expected:
                raise Rejected(f"tensor {t.name or owner!r}: external data length {length} does not match its "
                               f"shape and type ({expected} bytes)")
            external.append({"tensor": t.name or owner, "location": loc, "offset": offset, "length": length})

    def visit_graph(g, depth: int = 0) -> None:
        if depth > 64:
            raise Rejected("subgraphs are nested more than 64 deep")
        for t in g.initializer:
            visit_tensor(t, g.name)
        for st in g.sparse_initializer:
            visit_tensor(st.values, g.name)
        for node in g.node:
            domain = node.domain or ""
            if domain not in allowed and (domain, node.op_type) not in local_functions:
                raise Rejected(f"node {node.name or node.op_type!r} uses op domain {domain!r}, which is not allowed "
                               "(only the standard domains and com.microsoft)")
            ops[f"{domain}.{node.op_type}" if domain not in ("", "ai.onnx") else node.op_type] += 1
            for a in node.attribute:
                if a.type == AttributeProto.TENSOR:
                    visit_tensor(a.t, node.name)
                elif a.type == AttributeProto.TENSORS:
                    for t in a.tensors:
                        visit_tensor(t, node.name)
                elif a.type == AttributeProto.GRAPH:
                    visit_graph(a.g, depth + 1)
                elif a.type == AttributeProto.GRAPHS:
                    for sub in a.graphs:
                        visit_graph(sub, depth + 1)

    visit_graph(model.graph)
    for f in model.functions:
        for node in f.node:
            domain = node.domain or ""
            if domain not in allowed and (domain, node.op_type) not in local_functions:
                raise Rejected(f"function {f.name!r} uses op domain {domain!r}, which is not allowed")

    # The external data must be safe before the checker reads anything beside the file.
    from genstudio.runtime.safety import ExternalRef, UnsafeModelError, check_external

    for ref in external:
        try:
            check_external(ExternalRef(**ref), root)
        except UnsafeModelError as e:
            raise Rejected(str(e)) from None

    try:
        onnx.checker.check_model(model if not external else str(path))
    except Exception as e:
        msg = str(e).strip().splitlines()
        raise Rejected(f"the ONNX checker rejects it: {msg[0][:300] if msg else type(e).__name__}") from None

    init_names = {t.name for t in model.graph.initializer}
    inputs = []
    for vi in model.graph.input:
        if vi.name in init_names:
            continue
        dtype, shape = _dims(vi.type)
        inputs.append({"name": vi.name, "dtype": dtype, "shape": shape})
    outputs = []
    for vi in model.graph.output:
        dtype, shape = _dims(vi.type)
        outputs.append({"name": vi.name, "dtype": dtype, "shape": shape})
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "ir_version": int(model.ir_version),
        "opsets": {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": inputs,
        "outputs": outputs,
        "op_histogram": dict(ops.most_common()),
        "parameters": params,
        "external": external,
        "external_bytes": sum(r["length"] for r in external),
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(json.dumps({"ok": False, "error": "usage: __inspect__ FILE ROOT"}))
        return 2
    path, root = Path(argv[0]), Path(argv[1])
    try:
        _limit_memory(path.stat().st_size)
        report = analyse(path, root)
        answer = {"ok": True, "report": report}
    except Rejected as e:
        answer = {"ok": False, "error": str(e)}
    except MemoryError:
        answer = {"ok": False, "error": "the file needs more memory to parse than a model may use"}
    except RecursionError:
        answer = {"ok": False, "error": "the file is nested too deeply to parse"}
    except Exception as e:  # anything else is a refusal with its reason, never a crash
        answer = {"ok": False, "error": f"the checker failed: {type(e).__name__}: {str(e)[:300]}"}
    sys.stdout.write("\n" + json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
