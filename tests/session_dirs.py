"""Temp folders for the cached tiny models and datasets: made once per test process, removed when it exits."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path


def session_dir(prefix: str) -> Path:
    """A fresh folder under the system temp dir that is deleted when this (worker) process exits."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
