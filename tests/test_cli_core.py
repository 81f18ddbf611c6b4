"""The studio-wide CLI: --version, models, doctor, check on folders, export missing."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import make_model_folder

from genstudio import __version__
from genstudio.cli import main


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genstudio", *args], capture_output=True, text=True)


def test_version():
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"genstudio {__version__}"


def test_doctor_reports_the_cpu_provider_usable():
    proc = run("doctor", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    cpu = [p for p in info["providers"] if p["provider"] == "CPUExecutionProvider"]
    assert cpu and cpu[0]["usable"]
    assert info["auto_provider"] in {p["provider"] for p in info["providers"] if p["usable"]}


def test_models_json_lists_status(models_root, capsys):
    make_model_folder(models_root / "tiny", name="tiny")
    broken = models_root / "broken"
    broken.mkdir()
    (broken / "model.json").write_text("[]")
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["tiny"]["status"] == "ready" and rows["tiny"]["size_bytes"] > 0
    assert rows["broken"]["status"] == "error" and "JSON object" in rows["broken"]["error"]


def test_check_folder(tmp_path, capsys):
    folder = make_model_folder(tmp_path / "m", name="m")
    assert main(["check", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("ok: m (onnx)")
    (folder / "model.onnx").unlink()
    assert main(["check", str(folder)]) == 2
    assert "model.onnx (model) is missing" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "nowhere")]) == 2


def test_export_missing_runs(capsys):
    assert main(["export", "missing"]) == 0
