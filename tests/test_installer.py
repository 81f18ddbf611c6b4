"""The double-click bundle (installer/): desktop entry and file types, icons, the Chat tab's panel in an
executable without the export pipeline, and (slow) a real PyInstaller build run through installer/smoke.py."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALLER = ROOT / "installer"


def _load(name: str):
    """installer/NAME.py by its path (installer/ is no package; a PyPI package `installer` exists)."""
    spec = importlib.util.spec_from_file_location(f"genstudio_installer_{name}", INSTALLER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


smoke = _load("smoke")
icons = _load("icons")
make_icns, png_sizes = icons.make_icns, icons.png_sizes

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the .desktop entry is Linux's")


def fake_bundle(folder: Path) -> Path:
    """A folder shaped like dist/genstudio: an executable that records its arguments, and the icons."""
    folder.mkdir(parents=True)
    exe = folder / "genstudio"
    exe.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/args.txt"\n')
    exe.chmod(0o755)
    shutil.copytree(ROOT / "resources" / "icons", folder / "_internal" / "resources" / "icons")
    return folder


def install(data: Path, bundle: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_DATA_HOME=str(data))
    return subprocess.run(["sh", str(INSTALLER / "linux" / "install.sh"), str(bundle)], capture_output=True,
                          text=True, env=env, timeout=60)


# -- desktop entry, MIME types, icons ---------------------------------------------------------------------
@linux_only
def test_install_sh_writes_a_valid_entry_icons_and_mime_types_and_uninstall_removes_them(tmp_path):
    bundle = fake_bundle(tmp_path / "my apps" / "gen$studio")  # a space and a $ in the path
    data = tmp_path / "data"
    p = install(data, bundle)
    assert p.returncode == 0, p.stderr
    desktop = data / "applications" / "genstudio.desktop"
    text = desktop.read_text()
    assert "MimeType=application/x-onnx;application/x-genstudio-model;" in text
    assert "Icon=genstudio" in text and "Terminal=false" in text
    assert f"TryExec={bundle / 'genstudio'}" in text
    if shutil.which("desktop-file-validate"):
        v = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        assert v.returncode == 0 and "error" not in v.stdout, v.stdout
    # the Exec line, parsed as a desktop would, runs the bundle with `-- FILE`
    argv = smoke.desktop_exec(desktop, "/some where/model.onnx")
    assert argv == [str(bundle / "genstudio"), "--", "/some where/model.onnx"]
    subprocess.run(argv, check=True, timeout=30)
    assert (bundle / "args.txt").read_text().splitlines() == ["--", "/some where/model.onnx"]
    for size in png_sizes(ROOT / "resources" / "icons"):
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "genstudio.png").is_file()
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "mimetypes" / "application-x-onnx.png").is_file()
    assert (data / "mime" / "packages" / "genstudio-mime.xml").is_file()
    if shutil.which("update-mime-database"):
        globs = (data / "mime" / "globs2").read_text()
        assert "application/x-onnx:*.onnx" in globs
        assert "application/x-genstudio-model:model.json" in globs

    env = dict(os.environ, XDG_DATA_HOME=str(data))
    subprocess.run(["sh", str(INSTALLER / "linux" / "uninstall.sh")], check=True, env=env, capture_output=True)
    assert not desktop.exists()
    assert not list((data / "icons").rglob("genstudio.png"))
    assert not list((data / "icons").rglob("application-x-*.png"))
    assert not (data / "mime" / "packages" / "genstudio-mime.xml").exists()
    if shutil.which("update-mime-database"):
        assert "x-onnx" not in (data / "mime" / "globs2").read_text()


@linux_only
def test_install_sh_refuses_a_folder_without_the_executable(tmp_path):
    p = install(tmp_path / "data", tmp_path)
    assert p.returncode == 1 and "no genstudio executable" in p.stderr
    assert not (tmp_path / "data" / "applications").exists()


def test_mime_xml_is_well_formed_with_both_types():
    import xml.etree.ElementTree as ET

    ns = {"m": "http://www.freedesktop.org/standards/shared-mime-info"}
    root = ET.parse(INSTALLER / "linux" / "genstudio-mime.xml").getroot()
    types = {t.get("type"): [g.get("pattern") for g in t.findall("m:glob", ns)] for t in root.findall("m:mime-type", ns)}
    assert types == {"application/x-onnx": ["*.onnx"], "application/x-genstudio-model": ["model.json"]}


def test_icns_is_made_from_the_pngs(tmp_path):
    from PIL import Image

    out = make_icns(ROOT / "resources" / "icons", tmp_path / "genstudio.icns")
    assert out.read_bytes()[:4] == b"icns"
    with Image.open(out) as im:
        assert im.size == (512, 512) or max(im.info.get("sizes", [(0, 0)]))[0] >= 256


def test_inno_setup_script_installs_the_bundle_with_an_association():
    iss = (INSTALLER / "windows" / "genstudio.iss").read_text(encoding="utf-8")
    for needle in (r"dist\genstudio\*", "{group}\\genstudio", ".onnx", "ChangesAssociations=yes",
                   '""{app}\\{#MyAppExe}"" -- ""%1""', "UninstallDisplayIcon"):
        assert needle in iss, needle


# -- the Chat tab's first-run panel without the export pipeline -------------------------------------------
def test_missing_build_modules_uses_find_spec_without_importing():
    from genstudio.qt.qt_chat_build import BUILD_MODULES, missing_build_modules

    asked = []

    def find_spec(name):
        asked.append(name)
        return None if name == "torch" else object()

    assert missing_build_modules(find_spec) == ["torch"]
    assert asked == list(BUILD_MODULES)
    assert missing_build_modules() == []  # this test environment has the [export] extra


def test_build_panel_without_the_pipeline_shows_what_to_do(qtbot, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    from genstudio.qt.qt_chat_build import QtBuildPanel
    from genstudio.runtime import paths

    panel = QtBuildPanel(missing=["genstudio.export", "torch"])
    qtbot.addWidget(panel)
    assert not panel.can_build and not hasattr(panel, "build_button")
    text = panel.instructions.text()
    assert "make models" in text and "genstudio export llm --from-pypi" in text
    assert str(paths.user_models_dir()) in text and "torch" in text
    panel.start()  # nothing to start: no process, no crash
    assert panel.process is None and not panel.running()
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    panel.open_folder_button.click()
    assert opened == [str(paths.user_models_dir())] and paths.user_models_dir().is_dir()
    with qtbot.waitSignal(panel.look_again, timeout=1000):
        panel.look_again_button.click()
    panel.stop()


# -- the real bundle ---------------------------------------------------------------------------------------
@pytest.mark.slow
@linux_only
def test_bundle_builds_and_passes_the_smoke_steps(tmp_path):
    """`make installer` in a temp dist/work folder (about a minute here), then installer/smoke.py's steps."""
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip("PyInstaller is not installed (`make test` and `make installer` install it into .venv)")
    dist, work = tmp_path / "dist", tmp_path / "build"
    start = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
                        "--distpath", str(dist), "--workpath", str(work), str(INSTALLER / "genstudio.spec")],
                       capture_output=True, text=True, cwd=str(ROOT), timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    build_s = time.monotonic() - start
    bundle = dist / "genstudio"
    internal = bundle / "_internal"
    for absent in ("torch", "onnxscript", "gguf", "safetensors"):
        assert not (internal / absent).exists(), absent
    assert not list(internal.rglob("libonnxruntime_providers_cuda*"))
    assert (internal / "exported_models" / "flow-moons-spline" / "model.json").is_file()
    assert (bundle / "install.sh").is_file()
    failures = []
    tmp = tmp_path / "smoke"
    tmp.mkdir()
    for name, step in smoke.STEPS:
        try:
            step(bundle, tmp)
        except Exception as e:  # noqa: BLE001 - collect them all
            failures.append(f"{name}: {e}")
    assert not failures, "\n".join(failures)
    print(f"bundle built in {build_s:.0f} s")
