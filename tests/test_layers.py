"""The layers of ARCHITECTURE.md hold: import-linter's contracts are kept, and a break is caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(exe), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def test_import_contracts_are_kept():
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_a_runtime_module_importing_qt_breaks_a_contract(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "genstudio", copy / "genstudio", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    (copy / "genstudio" / "runtime" / "leak.py").write_text("import PySide6.QtWidgets\nimport torch\n")
    proc = lint_imports(copy)
    assert proc.returncode != 0
    assert "genstudio.runtime.leak -> PySide6" in proc.stdout
