"""Guards against a Qt binding that leaks or steals references on signal emission (PySide6 6.12.0 did)."""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    bare = Signal()
    carrying = Signal(object)


def test_emitting_signals_keeps_bool_refcounts():
    e = _Emitter()
    received = []
    e.carrying.connect(received.append)
    before = sys.getrefcount(True)
    for i in range(200):
        e.bare.emit()
        e.carrying.emit(i)
    # A few references may come and go elsewhere; a steal would show as -400.
    assert sys.getrefcount(True) - before > -20
    assert len(received) == 200
