"""The VAE Explorer tab: a latent map you drag through (decoded live), encode, interpolate, A - B + C, sliders, KL.

Loading, the decoded mosaic, encoding, interpolation and GIF export run as engine jobs through ctx.jobs.
The per-drag decode runs on the GUI thread when one batch-1 decode measures under LIVE_DECODE_MS on this
machine (a fraction of a millisecond for the shipped models); otherwise through a newest-wins job.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from genstudio.engines.vae import VaeModel, arithmetic, axis_plane, is_vae, pca_plane
from genstudio.engines.vae_view import (
    VaeView,
    decode_mosaic,
    interpolation_frames,
    save_interpolation_gif,
    to_rgb_u8,
)
from genstudio.qt.qt_context import StudioContext, TabSpec
from genstudio.qt.qt_jobs import JobFailure, JobSlots, QtJob
from genstudio.qt.qt_vae_encode import VaeEncodeMixin
from genstudio.qt.qt_vae_map import QtLatentMap
from genstudio.qt.qt_vae_panels import POINTS, QtDecodePanel, QtEncodePanel, QtPointsPanel
from genstudio.qt.qt_widgets import fill_model_box, is_open, scroll_area

LIVE_DECODE_MS = 5.0  # decode on the GUI thread when one decode takes less than this
MOSAIC_GRID = 16  # decoded tiles per side of the map's background
PLAY_FPS = 12
EMPTY_TEXT = "No VAE model is installed.\nBuild one with\ngenstudio export vae --dataset fashion-mnist"


class QtVaeTab(VaeEncodeMixin, QWidget):
    view_ready = Signal()  # a model's map arrived
    decoded = Signal(float)  # the cursor's image was decoded; milliseconds it took
    encoded = Signal()  # an image was encoded and placed on the map
    interpolated = Signal()  # an interpolation path arrived
    gif_saved = Signal(str)

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.view: VaeView | None = None
        # one job per kind, newest wins: load, mosaic, decode, encode, interpolate, gif
        self.slots = JobSlots.reporting(ctx.jobs, "vae", "VAE", lambda text: self.status.setText(text),
                                          ctx.show_status)
        self.current: np.ndarray | None = None  # the cursor's latent point
        self.points: dict[str, np.ndarray] = {}
        self.path: np.ndarray | None = None  # (K, latent) interpolation path
        self.frames: np.ndarray | None = None  # uint8 (K, H, W, 3)
        self.current_image: np.ndarray | None = None
        self.decode_times: list[float] = []  # ms of the recent live decodes
        self._play_index = 0
        self.setAcceptDrops(True)

        self.model_box = QComboBox()
        self.model_box.setMinimumContentsLength(22)
        self.colour_box = QComboBox()
        self.colour_box.setMinimumContentsLength(16)
        self.plane_box = QComboBox()
        self.plane_box.addItem("Principal components", "pca")
        self.plane_box.addItem("Two latent axes", "axes")
        self.axis_u = QSpinBox(minimum=1, maximum=1, value=1, prefix="z")
        self.axis_v = QSpinBox(minimum=1, maximum=2, value=2, prefix="z")
        self.show_mosaic = QCheckBox("Decoded background", checked=True)
        self.show_points = QCheckBox("Held-out codes", checked=True)
        top = QHBoxLayout()
        for w in (QLabel("Model"), self.model_box, QLabel("Colour by"), self.colour_box, QLabel("Plane"),
                  self.plane_box, self.axis_u, self.axis_v, self.show_mosaic, self.show_points):
            top.addWidget(w)
        top.addStretch(1)

        self.map = QtLatentMap()
        self.decode_panel = QtDecodePanel()
        self.encode_panel = QtEncodePanel()
        self.points_panel = QtPointsPanel()
        upper = QHBoxLayout()
        upper.addWidget(self.decode_panel, 3)
        upper.addWidget(self.encode_panel, 2)
        side_widget = QWidget()
        side = QVBoxLayout(side_widget)
        side.setContentsMargins(0, 0, 0, 0)
        side.addLayout(upper, 5)
        side.addWidget(self.points_panel, 4)
        side.addWidget(self.points_panel.kl)
        side_scroll = scroll_area(side_widget, across=False)  # a short window scrolls the panels, not squeezes them
        side_scroll.setMinimumWidth(side_widget.minimumSizeHint().width()
                                    + side_scroll.verticalScrollBar().sizeHint().width())
        side_scroll.setMaximumWidth(620)  # the map takes the rest: it is the point of the tab
        body = QHBoxLayout()
        body.addWidget(self.map, 1)
        body.addWidget(side_scroll)
        self.status = QLabel("")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(body, 1)
        lay.addWidget(self.status)

        self.timer = QTimer(self, interval=int(1000 / PLAY_FPS))
        self.timer.timeout.connect(self._tick)
        self.model_box.currentIndexChanged.connect(self._load)
        self.colour_box.currentIndexChanged.connect(self._recolour)
        self.plane_box.currentIndexChanged.connect(self._plane_changed)
        self.axis_u.valueChanged.connect(self._plane_changed)
        self.axis_v.valueChanged.connect(self._plane_changed)
        self.show_mosaic.toggled.connect(self._layers)
        self.show_points.toggled.connect(self._layers)
        self.map.cursor_moved.connect(self.move_cursor)
        self.decode_panel.save.clicked.connect(self._save_image)
        self.encode_panel.open.clicked.connect(self._open_image)
        self.encode_panel.encode_sample.clicked.connect(lambda: self.encode_heldout(self.encode_panel.sample.value()))
        pp = self.points_panel
        for name in POINTS:
            pp.set_buttons[name].clicked.connect(lambda _=False, n=name: self.set_point(n))
        pp.arithmetic.clicked.connect(self.apply_arithmetic)
        pp.interpolate.clicked.connect(self.interpolate)
        pp.play.toggled.connect(self._on_play)
        pp.save_gif.clicked.connect(self._save_gif_dialog)
        pp.sliders.changed.connect(self._slider_moved)
        # what acts on the open model: disabled while none is (loading, or a folder that cannot be opened)
        self.model_controls: tuple[QWidget, ...] = (
            self.colour_box, self.plane_box, self.axis_u, self.axis_v, self.show_mosaic, self.show_points, self.map,
            self.decode_panel, self.encode_panel, self.points_panel)
        self.refresh_models()

    # -- jobs ------------------------------------------------------------------------------------------
    def _start(self, kind: str, gen, on_done) -> QtJob:
        """A job on the open view: its result is dropped when another model (or none) is open by then; a
        cancelled job past its last yield still succeeds."""
        view = self.view
        return self.slots.start(kind, gen, lambda result: on_done(result) if self.view is view else None)

    def is_settled(self) -> bool:
        """For `genstudio shot`: the map is drawn and no job is running."""
        return not self.model_box.count() or (self.view is not None
                                              and not self.slots.running())

    # -- models ----------------------------------------------------------------------------------------
    def refresh_models(self, *, keep: bool = False) -> None:
        """The registry's VAEs in the picker, and the chosen one loaded; keep=True (models imported on the
        Models tab) leaves the open model as it is when it is still listed."""
        entries = [e for e in self.ctx.registry.entries() if is_vae(e)]
        if not fill_model_box(self.model_box, entries):
            self._clear_view(EMPTY_TEXT)  # also when the last one went from the disk (a rescan) while open
            self.status.setText("no VAE models")
            return
        if not (keep and is_open(self.model_box, self.model)):
            self._load()

    def models_changed(self) -> None:
        self.refresh_models(keep=True)

    def _load(self) -> None:
        from genstudio.engines.vae_view import load_view

        name = self.model_box.currentData()
        if not name:
            return
        self._clear_view(f"opening {name} …")
        self.status.setText(f"loading {name} ...")
        job = self._start("load", load_view(self.ctx.registry.get(name), self.ctx.pool, MOSAIC_GRID), self._on_view)
        job.failed.connect(lambda failure, j=job: self._on_load_failed(name, j, failure))

    def _clear_view(self, message: str) -> None:
        """No model is open: nothing of the previous one stays on screen, usable or running (its map, points
        and images would belong to no open model)."""
        self.view = None
        self.timer.stop()
        self.points_panel.play.setChecked(False)
        self.slots.cancel_all(keep=("gif",))  # a GIF being written goes on
        self.points, self.path, self.frames, self.current, self.current_image = {}, None, None, None, None
        self.map.set_message(message)
        pp = self.points_panel
        for view in (self.decode_panel.view, self.encode_panel.original, self.encode_panel.recon, pp.result, pp.strip,
                     *pp.thumbs.values()):
            view.set_image(None)
        self.decode_panel.view.set_caption("")
        self.decode_panel.info.setText("")
        pp.sliders.set_dims(0)
        pp.kl.set_kl(np.zeros(0, np.float32))
        for w in self.model_controls:
            w.setEnabled(False)

    def _on_load_failed(self, name: str, job: QtJob, failure: JobFailure) -> None:
        if self.slots.jobs.get("load") is job:
            self.map.set_message(f"{name} cannot be opened:\n{failure.message}")

    @property
    def model(self) -> VaeModel | None:
        return self.view.model if self.view else None

    def _on_view(self, view: VaeView) -> None:
        self.view = view
        for w in self.model_controls:
            w.setEnabled(True)
        d = view.model.latent_dim
        self.colour_box.blockSignals(True)
        self.colour_box.clear()
        for head in view.heldout.heads:
            self.colour_box.addItem(head.replace("_", " "), head)
        preferred = self.colour_box.findData(view.model.entry.manifest.defaults.get("colour_by"))
        self.colour_box.setCurrentIndex(max(preferred, 0))
        self.colour_box.blockSignals(False)
        for box in (self.plane_box, self.axis_u, self.axis_v):
            box.setEnabled(d > 2)
        for box, value in ((self.axis_u, 1), (self.axis_v, 2)):
            box.blockSignals(True)
            box.setMaximum(d)
            box.setValue(value)
            box.blockSignals(False)
        self.axis_u.setVisible(self.plane_box.currentData() == "axes" and d > 2)
        self.axis_v.setVisible(self.plane_box.currentData() == "axes" and d > 2)
        self.points_panel.kl.set_kl(view.kl)
        self.points_panel.sliders.set_dims(d, view.kl)
        n_images = 0 if view.heldout.images is None else len(view.heldout.images)
        self.encode_panel.sample.setMaximum(max(0, n_images - 1))
        self.encode_panel.encode_sample.setEnabled(n_images > 0)
        self.points, self.path, self.frames, self.current = {}, None, None, None  # the old model's points
        self.points_panel.result.set_image(None)
        self.encode_panel.original.set_image(None)
        self.encode_panel.recon.set_image(None)
        self._show_plane()
        self._seed_points()
        mode = "live on the GUI thread" if self.live else "through a background job"
        self.status.setText(f"{view.model.name}: {d}-D latent, {len(view.heldout.codes)} held-out codes; "
                            f"one decode takes {view.decode_ms:.2f} ms here, so dragging decodes {mode}")
        self.view_ready.emit()

    @property
    def live(self) -> bool:
        return self.view is not None and self.view.decode_ms < LIVE_DECODE_MS

    def _seed_points(self) -> None:
        """Start with A, B, C on held-out codes of three different classes and the path A -> B drawn."""
        assert self.view is not None
        held = self.view.heldout
        first = held.labels[:, 0] if held.labels.size else np.zeros(len(held.codes), int)
        picks: list[int] = []
        for i, k in enumerate(first.tolist()):
            if all(first[j] != k for j in picks):
                picks.append(i)
            if len(picks) == 3:
                break
        for name, i in zip(POINTS, picks, strict=False):
            self._store_point(name, held.codes[i])
        self.set_current(held.codes[picks[0]] if picks else np.zeros(self.view.model.latent_dim, np.float32))
        if len(self.points) == len(POINTS):
            self.apply_arithmetic()
        if "A" in self.points and "B" in self.points:
            self.interpolate()
        if held.images is not None and len(held.images):
            self.encode_panel.sample.setValue(min(5, len(held.images) - 1))
            self.encode_heldout(self.encode_panel.sample.value())  # show what encoding does before anyone asks

    # -- the map ---------------------------------------------------------------------------------------
    def _show_plane(self) -> None:
        assert self.view is not None
        self.map.set_mosaic(self.view.mosaic, self.view.plane.extent, self.view.plane.names)
        self._recolour()
        self._refresh_overlay()

    def _recolour(self) -> None:
        if self.view is None:
            return
        held = self.view.heldout
        head = self.colour_box.currentData()
        heads = list(held.heads)
        col = heads.index(head) if head in heads else 0
        classes = held.labels[:, col].astype(int) if held.labels.size else None
        legend = held.heads[heads[col]] if heads else []
        self.map.set_points(self.view.plane.project(held.codes), classes, legend)

    def _layers(self) -> None:
        self.map.set_layers(mosaic=self.show_mosaic.isChecked(), points=self.show_points.isChecked())

    def _plane_changed(self) -> None:
        if self.view is None or self.view.model.latent_dim <= 2:
            return
        axes = self.plane_box.currentData() == "axes"
        self.axis_u.setVisible(axes)
        self.axis_v.setVisible(axes)
        codes = self.view.heldout.codes
        if axes:
            i, j = self.axis_u.value() - 1, self.axis_v.value() - 1
            if i == j:
                self.status.setText("pick two different axes")
                return
            plane, explained = axis_plane(codes, i, j), None
        else:
            plane, explained = pca_plane(codes)
        self.view.plane, self.view.explained = plane, explained
        self.status.setText("decoding the map ...")
        self._start("mosaic", decode_mosaic(self.view.model, plane, MOSAIC_GRID), self._on_mosaic)

    def _on_mosaic(self, mosaic: np.ndarray) -> None:
        if self.view is None:
            return
        self.view.mosaic = mosaic
        self._show_plane()
        p = self.view.plane
        extra = ""
        if self.view.explained is not None:
            extra = f" ({self.view.explained[0] * 100:.0f}% and {self.view.explained[1] * 100:.0f}% of the codes' variance)"
        self.status.setText(f"map: plane {p.names[0]} x {p.names[1]} through the codes' mean{extra}")

    def _refresh_overlay(self) -> None:
        if self.view is None:
            return
        plane = self.view.plane
        if self.current is not None:
            u, v = plane.project(self.current)[0].tolist()
            self.map.set_cursor(u, v)
        self.map.set_markers({n: tuple(plane.project(z)[0].tolist()) for n, z in self.points.items()})
        self.map.set_path(None if self.path is None else plane.project(self.path))

    # -- the cursor --------------------------------------------------------------------------------------
    def move_cursor(self, u: float, v: float) -> None:
        """A point on the map: the cursor's latent point becomes the plane's point (u, v), decoded."""
        if self.view is None:
            return
        self.set_current(self.view.plane.to_latent(np.array([[u, v]], np.float32))[0])

    def set_current(self, z: np.ndarray) -> None:
        self.current = np.asarray(z, np.float32).copy()
        self.points_panel.sliders.set_point(self.current)
        self._refresh_overlay()
        self._decode_current()

    def _slider_moved(self, dim: int, value: float) -> None:
        if self.current is None:
            return
        self.current[dim] = value
        self.points_panel.kl.current = dim
        self._refresh_overlay()
        self._decode_current()

    def _decode_current(self) -> None:
        if self.view is None or self.current is None:
            return
        z = self.current[None].copy()
        if self.live:
            t0 = time.perf_counter()
            image = to_rgb_u8(self.view.model.decode(z))[0]
            self._show_decoded(image, (time.perf_counter() - t0) * 1000.0)
        else:
            model = self.view.model
            t0 = time.perf_counter()

            def job():
                image = to_rgb_u8(model.decode(z))[0]
                yield None
                return image

            self._start("decode", job(), lambda image: self._show_decoded(image, (time.perf_counter() - t0) * 1000.0))

    def _show_decoded(self, image: np.ndarray, ms: float) -> None:
        self.current_image = image
        self.decode_panel.view.set_image(image)
        self.decode_times = (self.decode_times + [ms])[-50:]
        z = self.current
        coords = ", ".join(f"{v:+.2f}" for v in z[:6]) + (" …" if len(z) > 6 else "") if z is not None else ""
        self.decode_panel.view.set_caption(f"z = ({coords})")
        self.decode_panel.info.setText(f"decode {ms:.2f} ms (median {float(np.median(self.decode_times)):.2f})")
        self.decoded.emit(ms)

    # -- points, interpolation, arithmetic ----------------------------------------------------------------
    def _store_point(self, name: str, z: np.ndarray) -> None:
        assert self.view is not None
        self.points[name] = np.asarray(z, np.float32).copy()
        self.points_panel.thumbs[name].set_image(to_rgb_u8(self.view.model.decode(self.points[name][None]))[0])

    def set_point(self, name: str) -> None:
        if self.current is None:
            return
        self._store_point(name, self.current)
        self._refresh_overlay()

    def apply_arithmetic(self) -> None:
        if self.view is None or not all(n in self.points for n in POINTS):
            self.status.setText("set A, B and C first")
            return
        z = arithmetic(self.points["A"], self.points["B"], self.points["C"])
        self.points_panel.result.set_image(to_rgb_u8(self.view.model.decode(z[None]))[0])
        self.points["A-B+C"] = z
        self.set_current(z)
        self.status.setText("A − B + C: the cursor moved to the result (it may lie off the plane; "
                            "the map shows its projection)")

    def interpolate(self) -> None:
        if self.view is None or "A" not in self.points or "B" not in self.points:
            self.status.setText("set A and B first")
            return
        pp = self.points_panel
        gen = interpolation_frames(self.view.model, self.points["A"], self.points["B"], pp.steps.value(),
                                   pp.mode.currentData())
        self._start("interpolate", gen, self._on_interpolated)

    def _on_interpolated(self, result: tuple[np.ndarray, np.ndarray]) -> None:
        from genstudio.runtime.imaging import make_grid

        self.path, self.frames = result
        self.points_panel.strip.set_image(make_grid(self.frames, cols=len(self.frames), pad=1))
        self._refresh_overlay()
        self.status.setText(f"interpolated A → B in {len(self.path)} steps "
                            f"({self.points_panel.mode.currentText().lower()})")
        self.interpolated.emit()

    def _on_play(self, playing: bool) -> None:
        if playing and self.path is not None:
            self._play_index = 0
            self.points_panel.play.setText("Stop")
            self.timer.start()
        else:
            self.timer.stop()
            self.points_panel.play.setText("Play")
            if playing:
                self.points_panel.play.setChecked(False)

    def _tick(self) -> None:
        from genstudio.runtime.imaging import ping_pong

        if self.path is None:
            self.points_panel.play.setChecked(False)
            return
        self.set_current(self.path[ping_pong(self._play_index, len(self.path))])
        self._play_index += 1

    def save_gif(self, path: Path) -> QtJob | None:
        if self.frames is None:
            self.status.setText("interpolate first")
            return None
        return self.slots.start("gif", save_interpolation_gif(self.frames, Path(path)), self._on_gif)  # any view's

    def _on_gif(self, path: str) -> None:
        self.status.setText(f"wrote {path}")
        self.gif_saved.emit(path)

    def _save_gif_dialog(self) -> None:
        default = str(self.ctx.output_dir() / "vae-interpolation.gif")
        path, _ = QFileDialog.getSaveFileName(self, "Save interpolation", default, "GIF (*.gif)")
        if path:
            self.save_gif(Path(path))

    def _save_image(self) -> None:
        from genstudio.runtime.imaging import save_png

        if self.current_image is None or self.current is None:
            return
        default = str(self.ctx.output_dir() / "vae-decoded.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save decoded image", default, "PNG (*.png)")
        if path:
            try:
                save_png(self.current_image, Path(path), {"family": "vae", "model": self.model.name,
                                                         "z": self.current.tolist()})
            except OSError as e:  # a read-only folder, a full disk: said in the tab, not only on stderr
                self.status.setText(f"could not write {path}: {e}")
                self.ctx.show_status(f"VAE: could not write {path}: {e}")
                return
            self.status.setText(f"wrote {path}")

    def closeEvent(self, event) -> None:
        self.timer.stop()
        self.slots.cancel_all()
        super().closeEvent(event)


VAE_TAB = TabSpec(key="vae", title="VAE Explorer", factory=QtVaeTab)
