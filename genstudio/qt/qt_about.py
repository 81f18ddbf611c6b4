"""The About dialog: genstudio, Python, Qt, PySide6 and ONNX Runtime versions, and every provider's probe result."""

from __future__ import annotations

import platform
import sys
from collections.abc import Generator
from typing import Any

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from genstudio import __version__
from genstudio.qt.qt_jobs import JobFailure, JobManager, QtJob
from genstudio.qt.qt_widgets import QtFitTable, QtKeyValues, label, status_icon
from genstudio.runtime import providers as prov
from genstudio.runtime.jobs import Progress


def facts_job() -> Generator[Progress, None, dict[str, Any]]:
    """ONNX Runtime's version and a probe session on every provider (imports onnxruntime: run it as a job)."""
    yield Progress(0, 2, "reading ONNX Runtime's version")
    versions = prov.versions()
    yield Progress(1, 2, "probing providers")
    return {"versions": versions, "probes": prov.probe_all()}


class QtAboutDialog(QDialog):
    """Versions are shown at once; ONNX Runtime's and the probes fill in when the job returns."""

    def __init__(self, jobs: JobManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About genstudio")
        self.setMinimumWidth(620)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(20, 20, 20, 14)
        outer.setSpacing(12)

        head = QHBoxLayout()
        head.setSpacing(16)
        icon = QLabel()
        icon.setPixmap(QApplication.windowIcon().pixmap(64, 64))
        head.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        text = QVBoxLayout()
        text.setSpacing(4)
        text.addWidget(label(f"genstudio {__version__}", "title"))
        text.addWidget(label("A desktop studio for generative models: LLM chat, diffusion, GANs, VAEs and flows "
                             "through ONNX Runtime, fully offline.", "muted", wrap=True))
        head.addLayout(text, 1)
        outer.addLayout(head)

        self.versions = QtKeyValues()
        self._rows = [
            ("genstudio", __version__),
            ("Python", f"{sys.version.split()[0]} ({platform.python_implementation()})"),
            ("Qt", qVersion()),
            ("PySide6", PySide6.__version__),
            ("ONNX Runtime", "checking…"),
            ("Platform", platform.platform()),
        ]
        self.versions.set_rows(self._rows)
        outer.addWidget(label("Versions", "heading"))
        outer.addWidget(self.versions)

        outer.addWidget(label("Execution providers", "heading"))
        self.probe_note = label("A tiny probe session is created and run on each provider…", "muted", wrap=True)
        self.probes = QtFitTable(["Provider", "Usable", "Detail", "ms"], stretch=2)
        self.probes.hide()
        outer.addWidget(self.probe_note)
        outer.addWidget(self.probes)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        outer.addWidget(buttons)

        self.job: QtJob | None = None
        try:
            self.job = jobs.start("about", facts_job())
        except RuntimeError as e:  # the studio is closing
            self.probe_note.setText(str(e))
            return
        self.job.succeeded.connect(self.show_facts)
        self.job.failed.connect(self._failed)

    def show_facts(self, facts: dict[str, Any]) -> None:
        v = facts["versions"]
        self.versions.set_value("ONNX Runtime", f"{v.get('onnxruntime', '?')} ({v.get('onnxruntime_package', '?')})")
        probes: list[prov.ProbeResult] = facts["probes"]
        self.probes.set_rows([[prov.short_name(r.provider).upper(), "yes" if r.usable else "no", r.detail,
                               f"{r.seconds * 1000:.0f}"] for r in probes], numeric=(3,))
        for row, r in enumerate(probes):
            self.probes.item(row, 1).setIcon(status_icon("ready" if r.usable else "error", 14))
        usable = [prov.short_name(r.provider).upper() for r in probes if r.usable]
        self.probe_note.setText(f"Usable here: {', '.join(usable) or 'none'}. Auto takes the first of "
                                "CUDA, DirectML, Core ML, CPU that passed its probe.")
        self.probes.show()

    def _failed(self, failure: JobFailure) -> None:
        self.versions.set_value("ONNX Runtime", f"unavailable ({failure.message})")
        self.probe_note.setText(f"The probes could not run: {failure.message}")

    def version_text(self, key: str) -> str:
        return self.versions.value(key)
