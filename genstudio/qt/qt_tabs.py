"""The main window's tabs, in order: one line per tab, naming its key, title and widget class.

A line is "key | Title | module:Factory": the module is imported when the tab is first shown, so
startup pays only for the tab that opens. "module:ATTRIBUTE" naming a ready TabSpec also works.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from genstudio.qt.qt_context import StudioContext, TabSpec

TAB_SPECS: list[str] = [
    "models | Models | genstudio.qt.qt_models:QtModelsTab",
    "chat | Chat | genstudio.qt.qt_chat:QtChatTab",
    "image | Text to Image | genstudio.qt.qt_image:QtImageTab",
    "flow | Flow Density | genstudio.qt.qt_flow:QtFlowTab",
    "gan | GAN Faces | genstudio.qt.qt_gan:QtGanTab",
    "vae | VAE Explorer | genstudio.qt.qt_vae:QtVaeTab",
    "compare | Compare | genstudio.qt.qt_compare:QtCompareTab",
]


def _import(target: str):
    module, _, attribute = target.partition(":")
    if not module or not attribute:
        raise ValueError(f"{target!r} must look like 'module:attribute'")
    return getattr(importlib.import_module(module), attribute)


def _lazy_factory(target: str) -> Callable[[StudioContext], object]:
    def build(ctx: StudioContext):
        return _import(target)(ctx)

    build.__qualname__ = f"lazy[{target}]"
    return build


def load_tab_spec(line: str) -> TabSpec:
    """The TabSpec a TAB_SPECS line names; a "key | Title | module:Factory" line imports nothing yet."""
    if "|" in line:
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"tab {line!r} must look like 'key | Title | module:Factory'")
        key, title, target = parts
        return TabSpec(key=key, title=title, factory=_lazy_factory(target))
    spec = _import(line)
    if not isinstance(spec, TabSpec):
        raise TypeError(f"{line} is a {type(spec).__name__}, not a TabSpec")
    return spec
