"""The GAN Faces tab: a seeded grid of faces, live truncation, a selected face to enlarge, vary, edit along
attribute directions and save, and a morph strip between two faces with GIF export.

The grid (mapping + synthesis of every face) and a truncation change render through background jobs; a
truncation drag that outpaces the renderer coalesces to the newest value. Editing the selected face renders
one face on the GUI thread (about a millisecond and a half for the shipped model), so its sliders are live.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from genstudio.engines.gan import DEFAULT_TRUNCATION, GanModel, is_gan, nearby, seeded_z
from genstudio.qt.qt_context import StudioContext
from genstudio.qt.qt_gan_widgets import QtDirectionSliders, QtFaceGrid
from genstudio.qt.qt_images import QtImageView
from genstudio.qt.qt_jobs import JobFailure, JobSlots, QtJob
from genstudio.qt.qt_widgets import QtCard, fill_model_box, is_open, label, scroll_area
from genstudio.runtime.imaging import make_grid, ping_pong, save_gif, save_png, to_uint8
from genstudio.runtime.jobs import Progress

GRID_SIZES = (3, 4, 5, 6)  # faces per side
VARIATIONS = 8
PLAY_FPS = 12
EMPTY_TEXT = "No GAN model is installed.\nBuild one with\ngenstudio export gan --dataset synthfaces"


@dataclass
class Face:
    z: np.ndarray  # (z_dim,) the noise
    w: np.ndarray  # (w_dim,) mapped, before truncation
    seed: int
    index: int  # in its batch
    origin: str  # "seed 3, face 5" or "variation 2 of seed 3, face 5"
    edits: dict[str, float] = field(default_factory=dict)  # direction name -> slider amount
    in_grid: bool = True


def to_rgb(images: np.ndarray) -> np.ndarray:
    """float (N, C, H, W) in [0, 1] to uint8 (N, H, W, 3)."""
    u8 = to_uint8(images, value_range=(0.0, 1.0))
    return np.repeat(u8, 3, axis=-1) if u8.shape[-1] == 1 else u8


def _direction_tip(info: dict) -> str:
    """A slider's tooltip: how often its edits change the attribute, as the export measured them."""
    edit = info.get("edit_success") or {}
    parts = [f"at +2, {edit['into_at_plus_2']:.0%} of faces without it gain it" if "into_at_plus_2" in edit else "",
             f"at -2, {edit['out_of_at_minus_2']:.0%} of faces with it lose it" if "out_of_at_minus_2" in edit else ""]
    said = "; ".join(p for p in parts if p)
    return f"{said} (held-out samples, read by the evaluator)" if said else ""


def grid_job(model: GanModel, n: int, seed: int, psi: float):
    t0 = time.perf_counter()
    z = seeded_z(n, model.z_dim, seed)
    w = model.map(z)
    yield Progress(1, 2, f"mapped {n} latents")
    images = model.synthesize(model.truncate(w, psi))
    return z, w, images, time.perf_counter() - t0


def render_job(model: GanModel, w: np.ndarray, psi: float):
    t0 = time.perf_counter()
    yield Progress(0, 1, "rendering")
    images = model.synthesize(model.truncate(w, psi))
    return images, psi, time.perf_counter() - t0


def variations_job(model: GanModel, face: Face, n: int, strength: float, seed: int, psi: float):
    z = nearby(face.z, n, strength, seed)
    w = model.map(z)
    yield Progress(1, 2, f"{n} variations")
    return z, w, model.synthesize(model.truncate(w, psi))


def morph_job(model: GanModel, a: Face, b: Face, steps: int, psi: float):
    yield Progress(0, 1, f"morphing in {steps} steps")
    return model.morph(a.z, b.z, steps, psi)[1]


def gif_job(frames: np.ndarray, path: Path):
    yield Progress(0, 1, "writing GIF")
    loop = list(frames) + list(frames[-2:0:-1])  # there and back
    return str(save_gif(loop, path, fps=PLAY_FPS, scale=2, hold_last=0.08))


def _clamp(value: int, box) -> int:
    """A manifest's number within a box's range (a QSpinBox or QSlider raises past a C int)."""
    return min(max(value, box.minimum()), box.maximum())


class QtGanTab(QWidget):
    grid_ready = Signal()  # a batch arrived
    face_rendered = Signal(float)  # the selected face was rendered; milliseconds
    morphed = Signal()
    gif_saved = Signal(str)

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.model: GanModel | None = None
        self.faces: list[Face] = []
        self.selected: Face | None = None
        self.b_index: int | None = None
        self.variations: list[Face] = []
        self.morph_frames: np.ndarray | None = None  # uint8 (K, H, W, 3)
        self.render_times: list[float] = []
        self._pending_psi: float | None = None
        self._play_index = 0
        self._vary_count = 0
        self.slots = JobSlots.reporting(ctx.jobs, "gan", "GAN", lambda text: self.status.setText(text),
                                          ctx.show_status)

        self.model_box = QComboBox()
        self.model_box.setMinimumContentsLength(22)
        self.size_box = QComboBox()
        for k in GRID_SIZES:
            self.size_box.addItem(f"{k} × {k}", k)
        self.size_box.setCurrentIndex(GRID_SIZES.index(4))
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.seed.setMaximumWidth(120)
        self.seed.setToolTip("the batch's seed: the same seed gives the same faces")
        self.new_batch = QPushButton("New batch  (N)")
        self.new_batch.setToolTip("the next seed's faces (key N)")
        self.psi = QSlider(Qt.Orientation.Horizontal)
        self.psi.setRange(0, 100)
        self.psi.setMinimumWidth(160)
        self.psi.setToolTip("truncation ψ: 1 samples the whole distribution, 0 gives the mean face")
        self.psi_label = label(f"ψ {DEFAULT_TRUNCATION:.2f}", "muted")
        self.save_grid = QPushButton("Save grid…")
        top = QHBoxLayout()
        for w in (label("Model"), self.model_box, label("Faces"), self.size_box, label("Seed"), self.seed,
                  self.new_batch, label("Truncation"), self.psi, self.psi_label, self.save_grid):
            top.addWidget(w)
        top.addStretch(1)

        self.grid = QtFaceGrid()
        side = QWidget()
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(0, 0, 0, 0)
        side_lay.addWidget(self._face_card(), 5)
        side_lay.addWidget(self._edit_card(), 4)
        side_lay.addWidget(self._morph_card(), 3)
        side_scroll = scroll_area(side, across=False)  # a short window scrolls the cards, not squeezes them together
        side_scroll.setMaximumWidth(560)
        body = QHBoxLayout()
        body.addWidget(self.grid, 1)
        body.addWidget(side_scroll)
        self.status = label("", "muted", selectable=True)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(body, 1)
        lay.addWidget(self.status)

        self.timer = QTimer(self, interval=int(1000 / PLAY_FPS))
        self.timer.timeout.connect(self._tick)
        shortcut = QShortcut(QKeySequence(Qt.Key.Key_N), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.next_batch)
        self.model_box.currentIndexChanged.connect(self._load)
        self.size_box.currentIndexChanged.connect(self.sample)
        self.seed.valueChanged.connect(self.sample)
        self.new_batch.clicked.connect(self.next_batch)
        self.psi.valueChanged.connect(self._psi_moved)
        self.save_grid.clicked.connect(self._save_grid_dialog)
        self.grid.selected.connect(lambda i: self.select(self.faces[i]))
        self.grid.marked_b.connect(self.mark_b)
        self.grid.save_requested.connect(lambda i: self._save_face_dialog(self.faces[i]))
        self.vary_grid.selected.connect(lambda i: self.select(self.variations[i]))
        self.vary_grid.marked_b.connect(lambda i: self.status.setText("mark B on the main grid"))
        self.vary_grid.save_requested.connect(lambda i: self._save_face_dialog(self.variations[i]))
        self.sliders.changed.connect(self._edit_moved)
        # what acts on the open model: disabled while none is (a folder that cannot be opened)
        self.model_controls: tuple[QWidget, ...] = (
            self.size_box, self.seed, self.new_batch, self.psi, self.save_grid, self.grid, self.save_face_button,
            self.vary, self.strength, self.vary_grid, self.sliders, self.reset_edits, self.steps, self.morph_button,
            self.play, self.save_morph)
        self.refresh_models()

    # -- layout ----------------------------------------------------------------------------------------
    def _face_card(self) -> QtCard:
        card = QtCard("Selected face")
        self.face_view = QtImageView(minimum=150, smooth=True)
        self.face_info = label("", "muted", selectable=True, wrap=True)
        self.save_face_button = QPushButton("Save PNG…")
        self.save_face_button.setToolTip("save the face; its seed, latent and edits go into the PNG")
        self.vary = QPushButton("Vary")
        self.vary.setToolTip(f"{VARIATIONS} faces near this one (small moves around its latent)")
        self.strength = QSpinBox(minimum=5, maximum=100, value=30, suffix="%")
        self.strength.setToolTip("how far the variations move")
        self.vary_grid = QtFaceGrid(columns=VARIATIONS, minimum_tile=28, badges=False)
        self.vary_grid.setMaximumHeight(72)
        self.vary_grid.set_message("Vary shows faces near this one here")
        row = QHBoxLayout()
        for w in (self.save_face_button, self.vary, self.strength):
            row.addWidget(w)
        row.addStretch(1)
        card.body.addWidget(self.face_view, 1)
        card.body.addWidget(self.face_info)
        card.body.addLayout(row)
        card.body.addWidget(self.vary_grid)
        self.save_face_button.clicked.connect(lambda: self.selected and self._save_face_dialog(self.selected))
        self.vary.clicked.connect(self.make_variations)
        return card

    def _edit_card(self) -> QtCard:
        card = QtCard("Attribute directions")
        self.sliders = QtDirectionSliders()
        scroll = scroll_area(self.sliders)
        self.edit_note = label("", "muted", wrap=True)
        self.reset_edits = QPushButton("Reset edits")
        self.reset_edits.clicked.connect(self._reset_edits)
        card.body.addWidget(scroll, 1)
        row = QHBoxLayout()
        row.addWidget(self.edit_note, 1)
        row.addWidget(self.reset_edits)
        card.body.addLayout(row)
        return card

    def _morph_card(self) -> QtCard:
        card = QtCard("Morph A → B")
        self.morph_strip = QtImageView(minimum=40, smooth=True)
        self.morph_preview = QtImageView(minimum=72, smooth=True)
        self.morph_preview.setMaximumWidth(110)
        self.steps = QSpinBox(minimum=3, maximum=40, value=10, suffix=" steps")
        self.morph_button = QPushButton("Morph")
        self.morph_button.setToolTip("spherical interpolation from the selected face (A) to B; Shift+click a face "
                                     "to make it B")
        self.play = QPushButton("Play", checkable=True)
        self.save_morph = QPushButton("Save GIF…")
        row = QHBoxLayout()
        for w in (self.steps, self.morph_button, self.play, self.save_morph):
            row.addWidget(w)
        row.addStretch(1)
        strip_row = QHBoxLayout()
        strip_row.addWidget(self.morph_strip, 1)
        strip_row.addWidget(self.morph_preview)
        card.body.addLayout(strip_row, 1)
        card.body.addLayout(row)
        self.morph_button.clicked.connect(self.make_morph)
        self.play.toggled.connect(self._on_play)
        self.save_morph.clicked.connect(self._save_gif_dialog)
        return card

    # -- jobs and models ----------------------------------------------------------------------------------
    def _start(self, kind: str, gen, on_done) -> QtJob:
        """A job on the open model: its result is dropped when another model (or none) is open by then; a
        cancelled job past its last yield still succeeds."""
        model = self.model
        return self.slots.start(kind, gen, lambda result: on_done(result) if self.model is model else None)

    def is_settled(self) -> bool:
        """For `genstudio shot`: faces are drawn (or the model could not be opened) and no job is running."""
        return not self.model_box.count() or ((bool(self.faces) or self.model is None) and not self.slots.running())

    def refresh_models(self, *, keep: bool = False) -> None:
        """The registry's GAN models in the picker, and the chosen one loaded; keep=True (models imported on the
        Models tab) leaves the open model as it is when it is still listed."""
        entries = [e for e in self.ctx.registry.entries() if is_gan(e)]
        if not fill_model_box(self.model_box, entries, "gan-synthfaces"):
            self._clear(EMPTY_TEXT)  # also when the last one went from the disk (a rescan) while open
            self.status.setText("no GAN models")
            return
        if not (keep and is_open(self.model_box, self.model)):
            self._load()

    def models_changed(self) -> None:
        self.refresh_models(keep=True)

    def _load(self) -> None:
        name = self.model_box.currentData()
        if not name:
            return
        try:
            model = GanModel(self.ctx.registry.get(name), self.ctx.pool, batch=64)
            # what the tab reads from the folder, read now: a bad value or file refuses the model, not the tab
            d = model.entry.manifest.defaults
            psi = _clamp(round(100 * model.default_truncation), self.psi)  # round: nan and inf raise here
            steps = _clamp(int(d.get("morph_steps", 10)), self.steps)
            strength = _clamp(round(100 * float(d.get("variation_strength", 0.3))), self.strength)
            _ = (model.z_dim, model.image_shape, model.w_avg)  # each raises for a bad value or file
            directions = model.directions
        except (ValueError, OSError, KeyError, TypeError, IndexError, OverflowError) as e:
            self._close_model(name, str(e))
            return
        self.slots.cancel("truncate", "vary", "morph")  # the previous model's (a GIF being written goes on)
        self.model = model
        for w in self.model_controls:
            w.setEnabled(True)
        self.psi.blockSignals(True)
        self.psi.setValue(psi)
        self.psi.blockSignals(False)
        self.psi_label.setText(f"ψ {self.truncation:.2f}")
        self.steps.setValue(steps)
        self.strength.setValue(strength)
        info = {x["name"]: x for x in self.model.extra.get("directions", [])}
        tips = {n: _direction_tip(info[n]) for n in directions if n in info}
        self.sliders.set_directions(list(directions), tips)
        self.edit_note.setText("Drag to edit the selected face." if directions else
                               "This model ships no attribute directions.")
        self.faces, self.selected, self.b_index, self.variations, self.morph_frames = [], None, None, [], None
        for view in (self.face_view, self.morph_strip, self.morph_preview):
            view.set_image(None)
        self.face_info.setText("")
        self.grid.set_message(f"sampling {name} …")  # the previous model's faces are not this one's
        self.vary_grid.set_message("Vary shows faces near this one here")
        self.sample()

    def _close_model(self, name: str, error: str) -> None:
        """`name` cannot be opened: no model is open, and nothing of the previous one stays on screen, usable
        or running (its faces, sliders and morph would belong to no open model)."""
        self._clear(f"{name} cannot be opened:\n{error}")
        self._say_error(f"{name} cannot be opened: {error}")

    def _clear(self, message: str) -> None:
        """No model open: `message` on the grid, every face, slider and job of the previous one gone."""
        self.model = None
        self.slots.cancel_all()
        self.play.setChecked(False)
        self.faces, self.selected, self.b_index, self.variations, self.morph_frames = [], None, None, [], None
        for view in (self.face_view, self.morph_strip, self.morph_preview):
            view.set_image(None)
        self.face_info.setText("")
        self.sliders.set_directions([])
        self.edit_note.setText("")
        self.vary_grid.set_message("")
        self.grid.set_message(message)
        for w in self.model_controls:
            w.setEnabled(False)

    @property
    def truncation(self) -> float:
        return self.psi.value() / 100.0

    # -- the grid -----------------------------------------------------------------------------------------
    def next_batch(self) -> None:
        self.seed.setValue(self.seed.value() + 1)  # valueChanged samples

    def sample(self) -> None:
        if self.model is None:
            return
        k = int(self.size_box.currentData())
        self.status.setText(f"sampling {k * k} faces (seed {self.seed.value()}) …")
        self._pending_psi = None
        model = self.model
        job = self._start("grid", grid_job(model, k * k, self.seed.value(), self.truncation), self._on_grid)
        job.failed.connect(lambda failure, j=job: self._on_grid_failed(model, j, failure))

    def _on_grid_failed(self, model: GanModel, job: QtJob, failure: JobFailure) -> None:
        """A model whose first batch fails (a broken graph file is read only here) is not open."""
        if self.slots.jobs.get("grid") is job and self.model is model and not self.faces:
            self._close_model(model.name, failure.message)

    def _on_grid(self, result) -> None:
        z, w, images, seconds = result
        seed, k = self.seed.value(), int(self.size_box.currentData())
        self.faces = [Face(z[i], w[i], seed, i, f"seed {seed}, face {i}") for i in range(len(z))]
        self.grid.set_images(to_rgb(images), columns=k)
        self.select(self.faces[0])
        self.mark_b(len(self.faces) - 1)
        self.make_morph()  # show what a morph is before anyone asks
        m = self.model.entry.manifest.metrics if self.model else {}
        fid = f" · FID {m['fid']:.1f}" if "fid" in m else ""
        self.status.setText(f"{len(z)} faces in {seconds * 1000:.0f} ms (mapping + synthesis){fid} · click a face "
                            "to select it, Shift+click to make it B, right-click to save")
        self.grid_ready.emit()

    def _psi_moved(self) -> None:
        self.psi_label.setText(f"ψ {self.truncation:.2f}")
        if self.model is None or not self.faces:
            return
        self._render_selected()
        if self.slots.running("truncate"):
            self._pending_psi = self.truncation  # coalesce: the newest value renders when this one ends
            return
        self._start_truncate()

    def _start_truncate(self) -> None:
        self._pending_psi = None
        w = np.stack([f.w for f in self.faces])
        self._start("truncate", render_job(self.model, w, self.truncation), self._on_truncated)

    def _on_truncated(self, result) -> None:
        images, psi, seconds = result
        rgb = to_rgb(images)
        for i, face in enumerate(self.faces):
            if face is self.selected and face.edits:
                continue  # the selected face keeps its edits, rendered by _render_selected
            self.grid.set_image(i, rgb[i])
        self.status.setText(f"truncation ψ {psi:.2f}: {len(images)} faces in {seconds * 1000:.0f} ms")
        if self._pending_psi is not None:
            self._start_truncate()

    # -- the selected face ----------------------------------------------------------------------------------
    def select(self, face: Face) -> None:
        self.selected = face
        self.grid.set_mark("A", face.index if face.in_grid else None)
        self.sliders.show_amounts(face.edits)
        self._render_selected()

    def face_w(self, face: Face) -> np.ndarray:
        """What is rendered for a face: truncated, then edited."""
        assert self.model is not None
        w = self.model.truncate(face.w[None], self.truncation)
        return self.model.edit(w, face.edits) if face.edits else w

    def _render_selected(self) -> None:
        face = self.selected
        if self.model is None or face is None:
            return
        t0 = time.perf_counter()
        image = to_rgb(self.model.synthesize(self.face_w(face)))[0]
        ms = (time.perf_counter() - t0) * 1000.0
        self.render_times = (self.render_times + [ms])[-50:]
        self.face_view.set_image(image)
        if face.in_grid and 0 <= face.index < len(self.faces) and self.faces[face.index] is face:
            self.grid.set_image(face.index, image)
        edits = ", ".join(f"{n} {a:+.1f}" for n, a in face.edits.items()) or "none"
        self.face_info.setText(f"{face.origin} · ψ {self.truncation:.2f} · edits: {edits} · "
                               f"rendered in {ms:.1f} ms")
        self.face_rendered.emit(ms)

    def _edit_moved(self, name: str, amount: float) -> None:
        if self.selected is None:
            return
        if abs(amount) < 1e-9:
            self.selected.edits.pop(name, None)
        else:
            self.selected.edits[name] = amount
        self._render_selected()

    def _reset_edits(self) -> None:
        if self.selected is not None:
            self.selected.edits.clear()
            self.sliders.reset()
            self._render_selected()

    def make_variations(self) -> None:
        if self.model is None or self.selected is None:
            return
        self._vary_count += 1
        base = self.selected
        gen = variations_job(self.model, base, VARIATIONS, self.strength.value() / 100.0, self._vary_count,
                             self.truncation)
        self._start("vary", gen, lambda result: self._on_variations(base, result))

    def _on_variations(self, base: Face, result) -> None:
        z, w, images = result
        self.variations = [Face(z[i], w[i], base.seed, base.index, f"variation {i + 1} of {base.origin}",
                                in_grid=False) for i in range(len(z))]
        self.vary_grid.set_images(to_rgb(images), columns=len(z))
        self.status.setText(f"{len(z)} variations of {base.origin}: click one to select it")

    # -- morph ----------------------------------------------------------------------------------------------
    def mark_b(self, i: int) -> None:
        self.b_index = i
        self.grid.set_mark("B", i)
        self.status.setText(f"B is {self.faces[i].origin}; press Morph")

    def make_morph(self) -> None:
        if self.model is None or self.selected is None:
            return
        if self.b_index is None:
            self.status.setText("Shift+click a face (or right-click it) to make it B, then press Morph")
            return
        a, b = self.selected, self.faces[self.b_index]
        self._start("morph", morph_job(self.model, a, b, self.steps.value(), self.truncation), self._on_morph)

    def _on_morph(self, images: np.ndarray) -> None:
        self.morph_frames = to_rgb(images)
        self.morph_strip.set_image(make_grid(self.morph_frames, cols=len(self.morph_frames), pad=1))
        self.morph_preview.set_image(self.morph_frames[0])
        self.status.setText(f"morph in {len(self.morph_frames)} steps (slerp in z, ψ {self.truncation:.2f}; "
                            "edits are not applied)")
        self.morphed.emit()

    def _on_play(self, playing: bool) -> None:
        if playing and self.morph_frames is not None:
            self._play_index = 0
            self.play.setText("Stop")
            self.timer.start()
        else:
            self.timer.stop()
            self.play.setText("Play")
            if playing:
                self.play.setChecked(False)

    def _tick(self) -> None:
        frames = self.morph_frames
        if frames is None:
            self.play.setChecked(False)
            return
        self.morph_preview.set_image(frames[ping_pong(self._play_index, len(frames))])
        self._play_index += 1

    def save_gif(self, path: Path):
        if self.morph_frames is None:
            self.status.setText("make a morph first")
            return None
        return self.slots.start("gif", gif_job(self.morph_frames, Path(path)), self._on_gif)

    def _on_gif(self, path: str) -> None:
        self.status.setText(f"wrote {path}")
        self.gif_saved.emit(path)

    def _save_gif_dialog(self) -> None:
        default = str(self.ctx.output_dir() / "gan-morph.gif")
        path, _ = QFileDialog.getSaveFileName(self, "Save morph", default, "GIF (*.gif)")
        if path:
            self.save_gif(Path(path))

    # -- saving ---------------------------------------------------------------------------------------------
    def face_settings(self, face: Face) -> dict:
        assert self.model is not None
        m = self.model.entry.manifest
        return {"family": "gan", "model": m.name, "version": m.version, "seed": face.seed, "index": face.index,
                "origin": face.origin, "truncation": self.truncation, "edits": dict(face.edits),
                "z": [round(float(v), 6) for v in face.z], "w": [round(float(v), 6) for v in self.face_w(face)[0]]}

    def save_face(self, face: Face, path: Path) -> Path:
        assert self.model is not None
        image = to_rgb(self.model.synthesize(self.face_w(face)))[0]
        out = save_png(image, Path(path), self.face_settings(face))
        self.status.setText(f"wrote {out}")
        return out

    def _save_face_dialog(self, face: Face) -> None:
        default = str(self.ctx.output_dir() / f"gan-seed{face.seed}-face{face.index}.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save face", default, "PNG (*.png)")
        if path:
            try:
                self.save_face(face, Path(path))
            except OSError as e:  # a read-only folder, a full disk: said in the tab, not only on stderr
                self._say_error(f"could not write {path}: {e}")

    def save_grid_png(self, path: Path) -> Path:
        assert self.model is not None
        w = np.concatenate([self.face_w(f) for f in self.faces])
        images = to_rgb(self.model.synthesize(w))
        settings = {"family": "gan", "model": self.model.name, "seed": self.seed.value(), "n": len(self.faces),
                    "truncation": self.truncation,
                    "edits": {str(f.index): f.edits for f in self.faces if f.edits}}
        out = save_png(make_grid(images, cols=int(self.size_box.currentData())), Path(path), settings)
        self.status.setText(f"wrote {out}")
        return out

    def _save_grid_dialog(self) -> None:
        if self.model is None or not self.faces:
            return
        default = str(self.ctx.output_dir() / f"gan-seed{self.seed.value()}-grid.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save grid", default, "PNG (*.png)")
        if path:
            try:
                self.save_grid_png(Path(path))
            except OSError as e:
                self._say_error(f"could not write {path}: {e}")

    def _say_error(self, text: str) -> None:
        self.status.setText(text)
        self.ctx.show_status(f"GAN: {text}")

    def closeEvent(self, event) -> None:
        self.timer.stop()
        self.slots.cancel_all()
        super().closeEvent(event)
