"""Where genstudio keeps things: the shipped models folder and the user's folders (platformdirs)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "genstudio"

# GENSTUDIO_HOME moves every user folder under one directory (tests, portable installs).
_HOME_ENV = "GENSTUDIO_HOME"


def install_root() -> Path:
    """The folder that holds `exported_models/`, `ui/` and `resources/`: the checkout or the bundle."""
    frozen = getattr(sys, "_MEIPASS", None)  # set inside a PyInstaller bundle
    if frozen:
        return Path(frozen)
    return Path(__file__).resolve().parents[2]


def shipped_models_dir() -> Path:
    env = os.environ.get("GENSTUDIO_MODELS")
    return Path(env) if env else install_root() / "exported_models"


def ui_dir() -> Path:
    return install_root() / "ui"


def resources_dir() -> Path:
    return install_root() / "resources"


def _user_dir(kind: str) -> Path:
    home = os.environ.get(_HOME_ENV)
    if home:
        path = Path(home) / kind
    elif kind == "data":
        path = platformdirs.user_data_path(APP_NAME, appauthor=False)
    elif kind == "cache":
        path = platformdirs.user_cache_path(APP_NAME, appauthor=False)
    else:
        raise ValueError(kind)
    return path


def user_data_dir() -> Path:
    return _user_dir("data")


def user_models_dir() -> Path:
    """Models the user imported or built; scanned beside the shipped ones."""
    return user_data_dir() / "models"


def user_cache_dir() -> Path:
    return _user_dir("cache")


def default_output_dir() -> Path:
    home = os.environ.get(_HOME_ENV)
    if home:
        return Path(home) / "outputs"
    return platformdirs.user_pictures_path() / APP_NAME
