"""The model checker refuses each crafted file with one clear sentence, and the test process lives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import make_tiny_onnx
from onnx import TensorProto, helper

from genstudio.runtime import safety
from genstudio.runtime.safety import UnsafeModelError, ensure_safe


def external_model(folder: Path, location: str, *, offset: int = 0, length: int | None = 16,
                   write_data: bool = True, domain: str = "") -> Path:
    """y = x + w where w (4 floats) lives in external data at `location`."""
    folder.mkdir(parents=True, exist_ok=True)
    w = TensorProto()
    w.name = "w"
    w.data_type = TensorProto.FLOAT
    w.dims.extend([4])
    w.data_location = TensorProto.EXTERNAL
    entries = {"location": location, "offset": str(offset)}
    if length is not None:
        entries["length"] = str(length)
    for k, v in entries.items():
        e = w.external_data.add()
        e.key, e.value = k, v
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    node = helper.make_node("Add", ["x", "w"], ["y"], domain=domain)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(helper.make_graph([node], "ext", [x], [y], initializer=[w]), opset_imports=opsets)
    model.ir_version = 8
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    if write_data and not os.path.isabs(location) and ".." not in location:
        (folder / location).write_bytes(np.arange(4, dtype=np.float32).tobytes())
    return path


def refused(path: Path, root: Path | None = None) -> str:
    with pytest.raises(UnsafeModelError) as info:
        safety.inspect(path, root=root)
    msg = str(info.value)
    assert msg and "\n" not in msg
    return msg


def test_a_good_model_with_external_data_passes(tmp_path):
    path = external_model(tmp_path / "m", "weights.bin")
    report = ensure_safe(path)
    assert report.external_files == ["weights.bin"]
    assert report.parameters == 4
    assert report.op_histogram == {"Add": 1}
    assert [i["name"] for i in report.inputs] == ["x"]


def test_dotdot_location(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    path = external_model(tmp_path / "m", "../secret.bin")
    assert "'..'" in refused(path)


def test_absolute_location(tmp_path):
    target = tmp_path / "abs.bin"
    target.write_bytes(b"\0" * 16)
    path = external_model(tmp_path / "m", str(target))
    assert "absolute path" in refused(path)


def test_symlink_leaving_the_folder(tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 16)
    path = external_model(tmp_path / "m", "weights.bin", write_data=False)
    os.symlink(outside, tmp_path / "m" / "weights.bin")
    assert "leaves the model folder" in refused(path)


def test_hard_link_to_a_file_elsewhere(tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 16)
    path = external_model(tmp_path / "m", "weights.bin", write_data=False)
    os.link(outside, tmp_path / "m" / "weights.bin")
    assert "hard links" in refused(path)


def test_offset_past_the_end_of_the_data(tmp_path):
    path = external_model(tmp_path / "m", "weights.bin", offset=4096)
    assert "the file holds 16" in refused(path)


def test_length_that_does_not_match_the_tensor(tmp_path):
    path = external_model(tmp_path / "m", "weights.bin", length=8)
    assert "does not match" in refused(path)


def test_unknown_op_domain(tmp_path):
    path = external_model(tmp_path / "m", "weights.bin", domain="evil.custom.ops")
    assert "evil.custom.ops" in refused(path)


def test_truncated_protobuf(tmp_path):
    good = make_tiny_onnx(tmp_path / "good.onnx")
    data = good.read_bytes()
    bad = tmp_path / "truncated.onnx"
    bad.write_bytes(data[: len(data) // 2])
    assert "not a valid ONNX model" in refused(bad)


def test_random_bytes(tmp_path):
    bad = tmp_path / "random.onnx"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert "not a valid ONNX model" in refused(bad)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    assert "empty" in refused(tmp_path / "empty.onnx")
    assert "does not exist" in refused(tmp_path / "nothing.onnx")


def test_checker_rejects_an_invalid_graph(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    node = helper.make_node("NoSuchOp", ["x"], ["y"])
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    assert "checker" in refused(path)


def test_a_parser_crash_is_an_error_not_a_dead_process(tmp_path, monkeypatch):
    path = make_tiny_onnx(tmp_path / "m.onnx")
    # Stand in for a parser that dies on a signal: the child kills itself.
    monkeypatch.setattr(safety, "_child_command",
                        lambda p, r: [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    assert "crashed" in refused(path)


def test_a_hanging_parser_is_stopped(tmp_path, monkeypatch):
    path = make_tiny_onnx(tmp_path / "m.onnx")
    monkeypatch.setattr(safety, "_child_command", lambda p, r: [sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(UnsafeModelError, match="longer than"):
        safety.inspect(path, timeout=1.0)


def test_cache_rechecks_external_data(tmp_path):
    path = external_model(tmp_path / "m", "weights.bin")
    ensure_safe(path)
    (tmp_path / "m" / "weights.bin").write_bytes(b"\0" * 4)  # shrunk after the first check
    with pytest.raises(UnsafeModelError, match="the file holds 4"):
        ensure_safe(path)


@pytest.mark.parametrize("case", ["dotdot", "absolute", "offset", "domain", "truncated", "random"])
def test_cli_check_rejects_each_crafted_file(tmp_path, case):
    folder = tmp_path / case
    if case == "dotdot":
        (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
        path = external_model(folder, "../secret.bin")
    elif case == "absolute":
        (tmp_path / "abs.bin").write_bytes(b"\0" * 16)
        path = external_model(folder, str(tmp_path / "abs.bin"))
    elif case == "offset":
        path = external_model(folder, "weights.bin", offset=999)
    elif case == "domain":
        path = external_model(folder, "weights.bin", domain="x.y")
    elif case == "truncated":
        path = folder / "t.onnx"
        data = make_tiny_onnx(tmp_path / "good.onnx").read_bytes()
        folder.mkdir()
        path.write_bytes(data[:40])
    else:
        folder.mkdir()
        path = folder / "r.onnx"
        path.write_bytes(os.urandom(2048))
    proc = subprocess.run([sys.executable, "-m", "genstudio", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]


def test_cli_check_accepts_a_good_file(tmp_path):
    path = make_tiny_onnx(tmp_path / "ok.onnx")
    proc = subprocess.run([sys.executable, "-m", "genstudio", "check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ok:")


def test_external_model_loads_in_onnxruntime_after_the_check(tmp_path):
    from genstudio.runtime.sessions import SessionConfig, create_session

    path = external_model(tmp_path / "m", "weights.bin")
    loaded = create_session(path, SessionConfig(provider="cpu"))
    (y,) = loaded.run(None, {"x": np.ones(4, np.float32)})
    np.testing.assert_allclose(y, [1, 2, 3, 4])
    assert onnx.load(str(path), load_external_data=False).graph.initializer[0].name == "w"
