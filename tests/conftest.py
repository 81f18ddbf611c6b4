"""Shared fixtures: a private GENSTUDIO_HOME for every test session, and small real ONNX model folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory, monkeypatch):
    """User folders (models, data, outputs, settings) live in a temp folder, never the real ones."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("GENSTUDIO_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    return home


def make_tiny_onnx(path: Path, *, scale: float = 2.0) -> Path:
    """y = x * scale + bias over a [batch, 4] float input: real, small, and checkable."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    w = numpy_helper.from_array(np.full((4,), scale, np.float32), "w")
    b = numpy_helper.from_array(np.arange(4, dtype=np.float32), "b")
    nodes = [helper.make_node("Mul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="genstudio-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return path


def make_model_folder(folder: Path, *, name: str = "tiny", family: str = "onnx") -> Path:
    from genstudio.runtime.manifest import Manifest, ModelFile

    make_tiny_onnx(folder / "model.onnx")
    Manifest(family=family, name=name, version="1", title="Tiny test model",
             files=[ModelFile("model.onnx", "model")], license="MIT", data_source="none (made by the test)",
             metrics={"note": "test"}).save(folder)
    return folder


def copy_model(src: Path, dest: Path, **manifest) -> Path:
    """A copy of model folder `src` at `dest`, named after the folder (model.json's other fields as given)."""
    import json
    import shutil

    shutil.copytree(src, dest)
    data = json.loads((dest / "model.json").read_text())
    (dest / "model.json").write_text(json.dumps({**data, "name": dest.name, **manifest}))
    return dest


@pytest.fixture
def tiny_model_folder(tmp_path) -> Path:
    return make_model_folder(tmp_path / "models" / "tiny")


@pytest.fixture
def models_root(tmp_path, monkeypatch) -> Path:
    """An empty shipped-models root that the registry scans instead of exported_models/."""
    root = tmp_path / "shipped"
    root.mkdir()
    monkeypatch.setenv("GENSTUDIO_MODELS", str(root))
    return root
