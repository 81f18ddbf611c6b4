"""The Chat tab's side panel: system prompt, sampling settings with the model's defaults and a reset, context meter."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from genstudio.engines.llm.sampling import SamplingSettings
from genstudio.qt.qt_widgets import label


class QtSamplingPanel(QWidget):
    changed = Signal()  # a sampling value changed (the tab saves it with the conversation)
    system_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.defaults = SamplingSettings()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(label("System prompt", "heading"))
        self.system = QPlainTextEdit()
        self.system.setPlaceholderText("The model's default system prompt")
        self.system.setMaximumHeight(110)
        self.system.textChanged.connect(lambda: self.system_changed.emit(self.system.toPlainText()))
        lay.addWidget(self.system)
        lay.addWidget(label("Sampling", "heading"))
        form = QFormLayout()
        self.temperature = self._double(0, 2, 0.05, 2)
        self.top_k = self._int(0, 1000)
        self.top_p = self._double(0.01, 1, 0.05, 2)
        self.min_p = self._double(0, 0.99, 0.01, 2)
        self.repetition_penalty = self._double(0.5, 2, 0.05, 2)
        self.max_new_tokens = self._int(1, 8192)
        self.seed = self._int(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        for name, w in (("Temperature", self.temperature), ("Top-k (0: off)", self.top_k), ("Top-p", self.top_p),
                        ("Min-p", self.min_p), ("Repetition penalty", self.repetition_penalty),
                        ("Max new tokens", self.max_new_tokens), ("Seed", self.seed)):
            form.addRow(name, w)
        lay.addLayout(form)
        self.reset_button = QPushButton("Reset to the model's defaults")
        self.reset_button.clicked.connect(self.reset)
        lay.addWidget(self.reset_button)
        lay.addWidget(label("Context", "heading"))
        self.meter = QProgressBar()
        self.meter.setFormat("%v / %m tokens")
        self.meter.setRange(0, 2048)
        self.meter.setValue(0)
        lay.addWidget(self.meter)
        self.meter_label = label("", "muted")
        lay.addWidget(self.meter_label)
        lay.addStretch(1)
        self._silent = False

    def _double(self, lo, hi, step, decimals) -> QDoubleSpinBox:
        w = QDoubleSpinBox()
        w.setRange(lo, hi)
        w.setSingleStep(step)
        w.setDecimals(decimals)
        w.valueChanged.connect(self._emit)
        return w

    def _int(self, lo, hi) -> QSpinBox:
        w = QSpinBox()
        w.setRange(lo, hi)
        w.valueChanged.connect(self._emit)
        return w

    def _emit(self, *_a) -> None:
        if not self._silent:
            self.changed.emit()

    def set_defaults(self, defaults: SamplingSettings) -> None:
        self.defaults = defaults

    def settings(self) -> SamplingSettings:
        return self.defaults.with_(
            temperature=round(self.temperature.value(), 4), top_k=self.top_k.value(), top_p=round(self.top_p.value(), 4),
            min_p=round(self.min_p.value(), 4), repetition_penalty=round(self.repetition_penalty.value(), 4),
            max_new_tokens=self.max_new_tokens.value(), seed=None if self.seed.value() < 0 else self.seed.value())

    def set_settings(self, s: SamplingSettings) -> None:
        self._silent = True
        try:
            self.temperature.setValue(s.temperature)
            self.top_k.setValue(s.top_k)
            self.top_p.setValue(s.top_p)
            self.min_p.setValue(s.min_p)
            self.repetition_penalty.setValue(s.repetition_penalty)
            self.max_new_tokens.setValue(s.max_new_tokens)
            self.seed.setValue(-1 if s.seed is None else s.seed)
        finally:
            self._silent = False

    def reset(self) -> None:
        self.set_settings(self.defaults)
        self.changed.emit()

    def changed_values(self) -> dict:
        """Only the values that differ from the model's defaults (what a conversation stores)."""
        now, base = self.settings().to_dict(), self.defaults.to_dict()
        return {k: v for k, v in now.items() if base.get(k) != v}

    def set_system(self, text: str) -> None:
        self.system.blockSignals(True)
        self.system.setPlainText(text)
        self.system.blockSignals(False)

    def set_context(self, used: int, window: int) -> None:
        self.meter.setRange(0, max(1, window))
        self.meter.setValue(min(used, window))
        self.meter.setToolTip(f"{used} of {window} tokens of the context window in use")
        self.meter_label.setText(f"{used:,} of {window:,} tokens in use")
