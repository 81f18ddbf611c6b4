"""The Flow Density tab: a 2-D flow's exact p(x) beside its training data, samples, and the layer-by-layer warp.

Everything heavy (loading, the 256x256 density grid, sampling, the trajectories) runs as an engine job
through ctx.jobs; the GUI thread only colours arrays and paints. Animation interpolates linearly between
consecutive layers, so the Gaussian base visibly flows into the data.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from genstudio.engines.flow import FlowModel, FlowView, is_2d_flow, load_view
from genstudio.engines.flow_render import colorize, histogram, scale_counts, scale_log_density
from genstudio.qt.qt_context import StudioContext, TabSpec
from genstudio.qt.qt_flow_view import QtDensityPlot
from genstudio.qt.qt_jobs import JobFailure, JobSlots, QtJob
from genstudio.qt.qt_widgets import fill_model_box, is_open

SUBSTEPS = 20  # slider positions between two layers (the animation moves through them smoothly)
ANIMATION_S = 4.0  # seconds from the base to the data layer
FPS = 30
HIST_BINS = 128
PREFERRED_MODEL = "flow-icon-spline"  # shown first when installed: the app icon, learned
EMPTY_TEXT = ("No 2-D flow model is installed.\nBuild them with\n"
              "genstudio export flow --density all --arch all")
HOVER_TEXT = "Move the cursor over a plot to read log p(x)."


class QtFlowTab(QWidget):
    view_ready = Signal()  # a model's view arrived (density, samples, trajectories)
    samples_ready = Signal()  # new samples arrived after a count or seed change

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.model: FlowModel | None = None
        self.view: FlowView | None = None
        reporting = JobSlots.reporting(ctx.jobs, "flow", "Flow", lambda text: self.status.setText(text),
                                       ctx.show_status)
        self._report_failure = reporting.on_failed
        self.slots = JobSlots(ctx.jobs, "flow", on_failed=self._on_failed, on_progress=reporting.on_progress)
        self._position = 0.0  # the layer shown, fractional: 0 = Gaussian base, L = data
        self._hover: tuple[float, float] | None = None  # where log p(x) was last read, in data coordinates

        self.model_box = QComboBox()
        self.model_box.setMinimumContentsLength(24)
        self.scale_box = QComboBox()
        self.scale_box.addItems(["Log scale", "Linear scale"])
        self.count = QSpinBox(minimum=0, maximum=20000, singleStep=250, value=1000)
        self.count.setKeyboardTracking(False)
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.seed.setKeyboardTracking(False)
        self.show_points = QCheckBox("Samples", checked=True)
        self.show_grid = QCheckBox("Warped grid", checked=True)
        top = QHBoxLayout()
        for w in (QLabel("Model"), self.model_box, self.scale_box, QLabel("Samples"), self.count,
                  QLabel("Seed"), self.seed, self.show_points, self.show_grid):
            top.addWidget(w)
        top.addStretch(1)

        self.density = QtDensityPlot("Model density p(x)")
        self.data = QtDensityPlot("Training data (histogram)")
        plots = QHBoxLayout()
        plots.addWidget(self.density, 1)
        plots.addWidget(self.data, 1)

        self.play = QPushButton("Play")
        self.play.setCheckable(True)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.layer_label = QLabel("")
        self.layer_label.setMinimumWidth(240)
        anim = QHBoxLayout()
        anim.addWidget(self.play)
        anim.addWidget(self.slider, 1)
        anim.addWidget(self.layer_label)

        self.cursor_label = QLabel(HOVER_TEXT)
        self.cursor_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.quality_label = QLabel("")
        self.quality_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status = QLabel("")
        info = QHBoxLayout()
        info.addWidget(self.cursor_label, 1)
        info.addWidget(self.quality_label)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(plots, 1)
        lay.addLayout(anim)
        lay.addLayout(info)
        lay.addWidget(self.status)

        self.timer = QTimer(self, interval=int(1000 / FPS))
        self.timer.timeout.connect(self._tick)
        self.model_box.currentIndexChanged.connect(self._load)
        self.scale_box.currentIndexChanged.connect(self._recolour)
        self.count.valueChanged.connect(self._resample)
        self.seed.valueChanged.connect(self._resample)
        self.show_points.toggled.connect(self._show_position)
        self.show_grid.toggled.connect(self._show_position)
        self.slider.valueChanged.connect(self._on_slider)
        self.play.toggled.connect(self._on_play)
        self.density.hovered.connect(self._on_hover)
        self.data.hovered.connect(self._on_hover)
        self.refresh_models()

    # -- models --------------------------------------------------------------------------------------
    def refresh_models(self, *, keep: bool = False) -> None:
        """The registry's 2-D flows in the picker, and the chosen one loaded; keep=True (models imported on the
        Models tab) leaves the open model as it is when it is still listed."""
        entries = [e for e in self.ctx.registry.entries() if is_2d_flow(e)]
        if not fill_model_box(self.model_box, entries, PREFERRED_MODEL):
            self.slots.cancel_all()
            self._clear(EMPTY_TEXT)  # also when the last one went from the disk (a rescan) while open
            self.status.setText("no 2-D flow models")
            return
        if not (keep and is_open(self.model_box, self.model)):
            self._load()

    def models_changed(self) -> None:
        self.refresh_models(keep=True)

    def _start(self, name: str, gen, on_done) -> QtJob:
        return self.slots.start("work", gen, on_done, name=name)  # one slot: a new load replaces a resample

    def _load(self) -> None:
        name = self.model_box.currentData()
        if not name:
            return
        entry = self.ctx.registry.get(name)
        self.status.setText(f"loading {name} ...")
        self.ctx.show_status(f"Flow: loading {name}")
        self._start("flow view", load_view(entry, self.ctx.pool, n_grid=256, n_samples=self.count.value(),
                                           seed=self.seed.value()), self._on_view)

    def _resample(self) -> None:
        if self.model is None or self.view is None or self.model.name != self.model_box.currentData():
            self._load()  # a load is under way (it shares the job slot): restart it with the new count and seed
            return
        self.status.setText("sampling ...")
        self._start("flow samples", self.model.sample_job(self.count.value(), self.seed.value()),
                    self._on_samples)

    # -- job results (GUI thread) ------------------------------------------------------------------
    def _on_view(self, result: tuple[FlowModel, FlowView]) -> None:
        self.model, self.view = result
        n_layers = self.view.sample_layers.shape[0] - 1
        self.slider.blockSignals(True)
        self.slider.setRange(0, n_layers * SUBSTEPS)
        self.slider.setValue(n_layers * SUBSTEPS)
        self.slider.blockSignals(False)
        self._position = float(n_layers)
        self._recolour()
        self._show_quality()
        self._show_position()
        self._show_reading()  # the reading under the plots is this model's, not the one shown before
        g = self.view.grid
        self.status.setText(f"{self.model.name}: {g.n}x{g.n} density in {g.seconds * 1000:.0f} ms, "
                            f"integral over the range {g.integral():.4f}")
        self.ctx.show_status(f"Flow: {self.model.name} ready")
        self.view_ready.emit()

    def _on_failed(self, failure: JobFailure) -> None:
        self._report_failure(failure)
        if self.model is not None and self.model.name == self.model_box.currentData():
            return  # a resample failed: the model shown is still the one picked
        # a load failed: what is shown (if anything) is the previous model's, under the new one's name
        self._clear(f"{self.model_box.currentText()} could not be loaded.\n{failure.message}")

    def _clear(self, message: str) -> None:
        """No model shown: `message` on the density plot, and nothing of the previous model's left."""
        self.play.setChecked(False)
        self.model, self.view = None, None
        for plot in (self.density, self.data):
            plot.set_picture(None)
            plot.set_points(None)
            plot.set_lines(None)
        self.density.set_message(message)
        self.slider.blockSignals(True)
        self.slider.setRange(0, 0)
        self.slider.blockSignals(False)
        self.layer_label.setText("")
        self.quality_label.setText("")
        self._show_reading()

    def _on_samples(self, layers: np.ndarray) -> None:
        if self.view is None:
            return
        self.view.sample_layers = layers
        self.view.samples = layers[-1]
        self.view.seed = self.seed.value()
        self._show_position()
        self.status.setText(f"{layers.shape[1]} samples, seed {self.seed.value()}")
        self.samples_ready.emit()

    # -- drawing -------------------------------------------------------------------------------------
    @property
    def scale(self) -> str:
        return "log" if self.scale_box.currentIndex() == 0 else "linear"

    def _recolour(self) -> None:
        if self.view is None or self.model is None:
            return
        values, lo, hi = scale_log_density(self.view.grid.log_p, self.scale)
        self.density.set_picture(colorize(values), self.view.grid.range)
        if self.scale == "log":
            self.density.set_bar(f"{lo:.1f}", f"{hi:.1f}", "log p(x)")
        else:
            self.density.set_bar("0", f"{hi:.3g}", "p(x)")
        counts = histogram(self.view.train, self.model.range, HIST_BINS)
        self.data.set_picture(colorize(scale_counts(counts, self.scale)), self.model.range)
        per_bin = "points per bin" + (" (log)" if self.scale == "log" else "")
        self.data.set_bar("0", f"{int(counts.max())}", per_bin)

    def _show_quality(self) -> None:
        assert self.view is not None and self.model is not None
        nll = self.view.heldout_nll
        h, exact = self.model.true_entropy
        text = f"held-out NLL {nll:.3f} nats"
        if h is not None:
            text += f"  ·  true entropy {h:.3f} nats ({'exact' if exact else 'estimate'})  ·  gap {nll - h:.3f}"
        else:
            text += "  ·  true entropy unknown"
        self.quality_label.setText(text)

    def interpolated(self, layers: np.ndarray, position: float) -> np.ndarray:
        """Points between layer floor(position) and the next one, linearly."""
        last = layers.shape[0] - 1
        position = min(max(position, 0.0), float(last))
        k = min(int(math.floor(position)), last - 1) if last > 0 else 0
        f = position - k
        if last == 0:
            return layers[0]
        return (1.0 - f) * layers[k] + f * layers[k + 1]

    def _show_position(self) -> None:
        if self.view is None:
            return
        n_layers = self.view.sample_layers.shape[0] - 1
        t = self._position
        self.density.set_points(self.interpolated(self.view.sample_layers, t) if self.show_points.isChecked()
                                else None)
        self.density.set_lines(self.interpolated(self.view.grid_lines, t) if self.show_grid.isChecked() else None)
        self.density.set_image_opacity(0.25 + 0.75 * (t / n_layers if n_layers else 1.0))
        names = self.model.layer_names if self.model else []
        k = min(int(math.ceil(t)), n_layers)
        what = "Gaussian base" if t == 0 else (names[k - 1] if 0 < k <= len(names) else "")
        where = "data" if t >= n_layers else what
        self.layer_label.setText(f"layer {t:.2f} / {n_layers}  ·  {where}")

    # -- animation -----------------------------------------------------------------------------------
    def _on_slider(self, value: int) -> None:
        self._position = value / SUBSTEPS
        self._show_position()

    def _on_play(self, playing: bool) -> None:
        if playing and self.view is not None:
            if self.slider.value() >= self.slider.maximum():
                self.slider.setValue(0)
            self.play.setText("Pause")
            self.timer.start()
        else:
            self.timer.stop()
            self.play.setText("Play")
            if playing:
                self.play.setChecked(False)

    def _tick(self) -> None:
        if self.view is None:
            self.play.setChecked(False)
            return
        n_layers = self.view.sample_layers.shape[0] - 1
        step = max(1, round(n_layers * SUBSTEPS / (ANIMATION_S * FPS)))
        value = min(self.slider.value() + step, self.slider.maximum())
        self.slider.setValue(value)
        if value >= self.slider.maximum():
            self.play.setChecked(False)

    # -- cursor ------------------------------------------------------------------------------------------
    def _on_hover(self, x: float, y: float) -> None:
        if self.view is None or math.isnan(x):
            return  # leaving a plot keeps the last reading
        if self.view.grid.value_at(x, y) is None:
            return
        self._hover = (x, y)
        self._show_reading()

    def _show_reading(self) -> None:
        """log p(x) of the model shown at the last cursor position, or the hint when there is none."""
        v = None if self.view is None or self._hover is None else self.view.grid.value_at(*self._hover)
        if v is None:
            self.cursor_label.setText(HOVER_TEXT)
            return
        x, y = self._hover
        try:
            p = math.exp(v)
        except OverflowError:  # log p above ~709 nats: a (near-)singular density
            p = math.inf
        self.cursor_label.setText(f"log p(x) = {v:.3f}   p(x) = {p:.4g}   at x = ({x:.2f}, {y:.2f})")

    def is_settled(self) -> bool:
        """True when no job is under way (what `genstudio shot` waits for)."""
        return not self.slots.running()

    def closeEvent(self, event) -> None:
        self.timer.stop()
        self.slots.cancel_all()
        super().closeEvent(event)


FLOW_TAB = TabSpec(key="flow", title="Flow Density", factory=QtFlowTab)
