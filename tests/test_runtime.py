"""Runtime: provider probes and fallback, manifests, the registry, the session pool, the job contract."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from conftest import make_model_folder, make_tiny_onnx

from genstudio.runtime import providers as prov
from genstudio.runtime.jobs import Cancelled, Progress, drive
from genstudio.runtime.manifest import Manifest, ManifestError
from genstudio.runtime.registry import ModelNotFound, ModelNotReady, Registry, check_folder
from genstudio.runtime.sessions import SessionConfig, SessionPool


# -- providers -------------------------------------------------------------------------------------
def test_cpu_probe_runs_a_real_session():
    r = prov.probe(prov.CPU, refresh=True)
    assert r.usable and r.detail == "probe session ran"


def test_a_provider_that_cannot_run_is_not_usable():
    # No GPU here: CUDA is listed by the package but its session falls back, so the probe says no.
    assert not prov.probe(prov.CUDA).usable
    assert not prov.probe("NoSuchExecutionProvider").usable


def test_auto_resolves_to_a_usable_provider():
    assert prov.probe(prov.resolve("auto")).usable


def test_unknown_provider_name_is_an_error():
    with pytest.raises(prov.ProviderError):
        prov.resolve("quantum")


def test_named_missing_provider_falls_back_to_cpu_and_says_so(tmp_path, monkeypatch):
    path = make_tiny_onnx(tmp_path / "m.onnx")
    monkeypatch.setitem(prov._cache, prov.CUDA, prov.ProbeResult(prov.CUDA, False, "no CUDA driver", 0.0))
    seen = []
    pool = SessionPool(SessionConfig(provider="cuda"), on_fallback=seen.append)
    s = pool.get(path)
    assert s.provider == prov.CPU and s.requested == prov.CUDA
    assert s.fallback and "no CUDA driver" in s.fallback
    assert seen == [s]
    (y,) = s.run(None, {"x": np.ones((2, 4), np.float32)})
    np.testing.assert_allclose(y, [[2, 3, 4, 5]] * 2)


# -- manifests -------------------------------------------------------------------------------------
GOOD = {"family": "gan", "name": "faces", "version": "1", "files": [{"path": "g.onnx", "role": "generator"}]}


@pytest.mark.parametrize("change, needle", [
    ({"family": "wizard"}, "family 'wizard'"),
    ({"name": "../up"}, "name '../up'"),
    ({"files": []}, "non-empty list"),
    ({"files": [{"path": "../g.onnx", "role": "g"}]}, "relative path inside"),
    ({"files": [{"path": "/abs/g.onnx", "role": "g"}]}, "relative path inside"),
    ({"files": [{"role": "g"}]}, "files[0]"),
    ({"metrics": [1, 2]}, "'metrics' must be a dict"),
    ({"schema": 99}, "newer than this studio"),
])
def test_manifest_errors_name_the_field(change, needle):
    with pytest.raises(ManifestError, match=None) as info:
        Manifest.from_dict({**GOOD, **change})
    assert needle in str(info.value)


def test_manifest_missing_key_and_bad_json(tmp_path):
    with pytest.raises(ManifestError, match="missing 'version'"):
        Manifest.from_dict({k: v for k, v in GOOD.items() if k != "version"})
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.load(tmp_path)


def test_manifest_round_trip(tmp_path):
    m = Manifest.from_dict({**GOOD, "metrics": {"fid": 12.5}, "defaults": {"n": 16}})
    m.save(tmp_path)
    again = Manifest.load(tmp_path)
    assert again == m and again.file_for("generator").path == "g.onnx"
    assert not list(tmp_path.glob("*.tmp"))


# -- registry --------------------------------------------------------------------------------------
def test_registry_lists_ready_and_broken_folders_with_reasons(models_root):
    make_model_folder(models_root / "good", name="good")
    broken = models_root / "broken"
    broken.mkdir()
    (broken / "model.json").write_text(json.dumps({**GOOD, "name": "broken"}))  # g.onnx is missing
    bare = models_root / "bare"
    make_tiny_onnx(bare / "x.onnx")  # onnx files but no manifest
    (models_root / "notes").mkdir()  # not a model folder at all
    entries = {e.folder.name: e for e in Registry().scan()}
    assert set(entries) == {"good", "broken", "bare"}
    assert entries["good"].ready and entries["good"].status == "ready"
    assert entries["broken"].error == "g.onnx (generator) is missing"
    assert "no model.json" in entries["bare"].error
    with pytest.raises(ModelNotFound, match="ready models: good"):
        Registry().get("nothing")


def test_duplicate_names_are_reported(models_root):
    make_model_folder(models_root / "a", name="same")
    make_model_folder(models_root / "b", name="same")
    errors = [e.error for e in Registry().scan()]
    assert errors[0] is None and "already named 'same'" in errors[1]


def test_deep_scan_runs_the_safety_checks(models_root):
    folder = make_model_folder(models_root / "m", name="m")
    (folder / "model.onnx").write_bytes(b"\x08\x01garbage")
    entry = check_folder(folder, deep=True)
    assert not entry.ready and entry.error.startswith("model.onnx: not a valid ONNX model")


def test_scan_lists_unreadable_folders_with_a_reason_instead_of_crashing(models_root, monkeypatch):
    import os
    from pathlib import Path

    make_model_folder(models_root / "good", name="good")
    (models_root / "deep").mkdir()
    (models_root / "deep" / "model.json").write_text("[" * 100_000 + "]" * 100_000)  # RecursionError in json
    long = models_root / "long"
    long.mkdir()
    (long / "model.json").write_text(json.dumps({**GOOD, "name": "long", "files": [
        {"path": "a" * 5000 + ".onnx", "role": "generator"}]}))  # ENAMETOOLONG from stat
    loop = models_root / "loop"
    loop.mkdir()
    (loop / "model.json").write_text(json.dumps({**GOOD, "name": "loop"}))
    os.symlink("h.onnx", loop / "g.onnx")
    os.symlink("g.onnx", loop / "h.onnx")  # a symlink loop: RuntimeError from Path.resolve on 3.11
    locked = models_root / "locked"
    locked.mkdir()
    (locked / "model.json").write_text(json.dumps({**GOOD, "name": "locked"}))
    real_read = Path.read_text

    def read_text(self, *a, **k):  # chmod 000 does not stop root, so refuse the read by hand
        if self.parent.name == "locked":
            raise PermissionError(13, "Permission denied")
        return real_read(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", read_text)
    entries = {e.folder.name: e for e in Registry().scan()}
    assert entries["good"].ready
    assert "nests too deeply" in entries["deep"].error
    assert "cannot be checked" in entries["long"].error
    assert "cannot be checked" in entries["loop"].error
    assert "cannot be read: Permission denied" in entries["locked"].error


def test_import_folder_and_bare_onnx(models_root, tmp_path):
    reg = Registry()
    src = make_model_folder(tmp_path / "src", name="imported")
    entry = reg.import_path(src)
    assert entry.ready and entry.source == "user"
    bare = make_tiny_onnx(tmp_path / "My Graph.onnx")
    entry2 = reg.import_path(bare)
    assert entry2.name == "My-Graph" and entry2.family == "onnx" and entry2.ready
    assert {e.name for e in reg.scan()} == {"imported", "My-Graph"}
    with pytest.raises(ModelNotReady, match="already installed"):
        reg.import_path(src)


def test_import_refuses_a_bad_file_and_copies_nothing(models_root, tmp_path):
    from genstudio.runtime import paths
    from genstudio.runtime.safety import UnsafeModelError

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx at all")
    with pytest.raises(UnsafeModelError):
        Registry().import_path(bad)
    assert not paths.user_models_dir().exists() or not any(paths.user_models_dir().iterdir())


# -- sessions --------------------------------------------------------------------------------------
def test_sessions_are_cached_locked_and_unloaded(tmp_path):
    folder = make_model_folder(tmp_path / "m")
    pool = SessionPool(SessionConfig(provider="cpu", threads=1))
    a = pool.get(folder / "model.onnx", root=folder)
    assert pool.get(folder / "model.onnx", root=folder) is a
    assert pool.providers_in_use() == [prov.CPU]
    results = []

    def work():
        results.append(a.run(["y"], {"x": np.ones((1, 4), np.float32)})[0])

    threads = [threading.Thread(target=work) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(results) == 4
    assert pool.unload(folder) == 1 and pool.loaded() == []
    b = pool.get(folder / "model.onnx", root=folder)
    pool.set_config(SessionConfig(provider="cpu", threads=2))  # a new config frees every session
    assert pool.loaded() == [] and b is not pool.get(folder / "model.onnx", root=folder)


def test_a_broken_file_never_reaches_onnxruntime(tmp_path):
    from genstudio.runtime.safety import UnsafeModelError

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(UnsafeModelError):
        SessionPool().get(bad)


# -- the job contract ------------------------------------------------------------------------------
def counting_job(n, seen):
    for i in range(n):
        seen.append(i)
        yield Progress(i + 1, n)
    return "done"


def test_drive_returns_the_result_and_reports_progress():
    seen, reports = [], []
    assert drive(counting_job(5, seen), on_progress=reports.append) == "done"
    assert [r.step for r in reports] == [1, 2, 3, 4, 5]


def test_drive_stops_at_the_next_yield():
    seen = []
    with pytest.raises(Cancelled) as info:
        drive(counting_job(100, seen), should_stop=lambda: len(seen) >= 3)
    assert len(seen) == 3 and info.value.last.step == 3


def test_import_that_fails_midway_leaves_nothing(models_root, tmp_path, monkeypatch):
    import shutil as _shutil

    from genstudio.runtime import paths

    def full_disk(real):
        def copy(*args, **kwargs):
            real(*args, **kwargs)
            raise OSError(28, "No space left on device")
        return copy

    src = make_model_folder(tmp_path / "src", name="half")
    bare = make_tiny_onnx(tmp_path / "bare.onnx")
    monkeypatch.setattr(_shutil, "copytree", full_disk(_shutil.copytree))
    monkeypatch.setattr(_shutil, "copy2", full_disk(_shutil.copy2))
    for path in (src, bare):
        with pytest.raises(OSError, match="No space left"):
            Registry().import_path(path)
        assert not any(paths.user_models_dir().iterdir())


def test_a_png_or_gif_that_fails_midway_leaves_no_part_file(tmp_path, monkeypatch):
    from PIL import Image

    from genstudio.runtime.imaging import save_gif, save_png

    def full_disk(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"\x89PNG half")  # some bytes reach the disk before it fills
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full_disk)
    image = np.zeros((8, 8, 3), np.uint8)
    for write, name in ((lambda p: save_png(image, p), "face.png"), (lambda p: save_gif([image, image], p), "m.gif")):
        with pytest.raises(OSError, match="No space"):
            write(tmp_path / name)
        assert list(tmp_path.iterdir()) == [], name  # neither the real name nor a .part
