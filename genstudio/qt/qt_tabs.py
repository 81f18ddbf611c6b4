"""The main window's tabs, in order: one "module:attribute" line per tab, naming a TabSpec."""

from __future__ import annotations

import importlib

from genstudio.qt.qt_context import TabSpec

# One line per tab. Each names a TabSpec (key, title, factory); modules are imported when the window builds.
TAB_SPECS: list[str] = [
    "genstudio.qt.qt_models:MODELS_TAB",
    "genstudio.qt.qt_chat:CHAT_TAB",
    "genstudio.qt.qt_flow:FLOW_TAB",
    "genstudio.qt.qt_vae:VAE_TAB",
]


def load_tab_spec(line: str) -> TabSpec:
    """Import the module and return the TabSpec that `line` ("module:attribute") names."""
    module, _, attribute = line.partition(":")
    if not module or not attribute:
        raise ValueError(f"tab {line!r} must look like 'module:attribute'")
    spec = getattr(importlib.import_module(module), attribute)
    if not isinstance(spec, TabSpec):
        raise TypeError(f"{line} is a {type(spec).__name__}, not a TabSpec")
    return spec
