"""The Text to Image tab: a prompt (completed from the model's words), guidance, scheduler, seed and batch; a live
preview of every denoising step; a filmstrip to revisit the steps, GIF export, a history of this session's
images, and PNGs that carry their settings (drop one on the tab to get them back).

Sampling runs as an engine job through ctx.jobs. The job is paced: before it yields step i + 1 it waits (at most
PACE_S) until the GUI has shown step i, so the preview shows every step even when a tiny model outruns the
screen, while a real model, whose steps take longer than a repaint, never waits.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QVBoxLayout, QWidget

from genstudio.engines.diffusion import DiffusionModel, DiffusionResult, DiffusionStep, ImageRequest
from genstudio.engines.diffusion.pipeline import MAX_BATCH, is_diffusion
from genstudio.qt.qt_context import StudioContext
from genstudio.qt.qt_image_widgets import QtGallery, QtPreviewPanel, QtPromptPanel, QtSamplingPanel
from genstudio.qt.qt_jobs import JobFailure, JobSlots, QtJob
from genstudio.qt.qt_widgets import QtCard, fill_model_box, is_open, label, scroll_area, set_role
from genstudio.runtime.imaging import make_grid, read_png_settings, save_gif, save_png
from genstudio.runtime.jobs import Progress

PREFERRED_MODEL = "diffusion-synthfaces"
EMPTY_TEXT = "No text-to-image model is installed.\nBuild one with\ngenstudio export diffusion --dataset synthfaces"
READY_TEXT = "Type a prompt and press Generate (Ctrl+Return).\nEvery denoising step shows here as it runs."
PACE_S = 0.25  # the longest a job waits for the GUI to show its previous step
GALLERY_MAX = 48  # generations kept in the history
FILM_BUDGET = 256 * 2**20  # bytes of step frames the history keeps; older generations keep only their images
IDLE_TEXT = "Ctrl+Return generates · Stop keeps the step it is on"
SEED_MAX = 2**31 - 1 - MAX_BATCH  # the seed box is 32-bit; image k uses seed + k
GIF_SIDE = 256  # a GIF frame is enlarged (whole pixels) until its longer side is at least this
GIF_FPS = 10


def to_rgb(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) uint8, or float in [0, 1], to uint8 (N, H, W, 3)."""
    x = np.asarray(images)
    if x.dtype != np.uint8:
        x = (np.clip(x.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    x = x.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x[..., :3])


def batch_grid(rgb: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) as one square-ish grid image with a thin white gap."""
    if len(rgb) == 1:
        return rgb[0]
    return make_grid(rgb, cols=int(np.ceil(np.sqrt(len(rgb)))), pad=max(1, rgb.shape[1] // 16))


@dataclass
class Generation:
    """One run: what it was asked, every step's frames, and (when it finished) the images."""

    key: int  # the run's number in this session
    settings: dict[str, Any]  # DiffusionResult.settings (also for a stopped run: what was asked)
    x0: list[np.ndarray] = field(default_factory=list)  # per step uint8 (B, C, H, W): the predicted clean image
    noisy: list[np.ndarray] = field(default_factory=list)  # per step uint8 (B, C, H, W): the sample after it
    images: np.ndarray | None = None  # (B, C, H, W) float in [0, 1]; None when the run was stopped
    seconds: float = 0.0
    unknown: list[str] = field(default_factory=list)
    shown: int = 0  # steps the preview has shown
    gate: threading.Event = field(default_factory=threading.Event, repr=False)  # set when a step was shown

    @property
    def total(self) -> int:
        return int(self.settings["steps"])

    def frames(self, mode: str) -> list[np.ndarray]:
        return self.noisy if mode == "noisy" and len(self.noisy) == len(self.x0) else self.x0


def paced(job, run: Generation):
    """Pass the engine's progress on, keeping every step's frames in `run`, and wait for the GUI to show a step
    before yielding the next (see the module's docstring). Returns the engine's DiffusionResult."""
    run.gate.set()
    try:
        while True:
            try:
                p = next(job)
            except StopIteration as stop:
                return stop.value
            step = p.preview
            if isinstance(step, DiffusionStep) and step.frame is not None:
                run.x0.append(step.frame)
                if step.noisy is not None:
                    run.noisy.append((step.noisy * 255.0 + 0.5).astype(np.uint8))
            run.gate.wait(PACE_S)
            run.gate.clear()
            yield p
    finally:
        job.close()


def gif_job(frames: list[np.ndarray], path: Path):
    """Write one batch grid per step as an animated GIF; returns the path as a string."""
    yield Progress(0, 1, f"writing a GIF of {len(frames)} steps")
    grids = [batch_grid(to_rgb(f)) for f in frames]
    scale = max(1, -(-GIF_SIDE // max(grids[0].shape[:2])))
    return str(save_gif(grids, path, fps=GIF_FPS, scale=scale, hold_last=1.5))


class QtImageTab(QWidget):
    generated = Signal(object)  # a DiffusionResult: a run ended
    step_shown = Signal(int)  # the preview shows this (0-based) step: live, or revisited on the filmstrip
    stopped = Signal(int)  # a run was stopped; the steps it had shown
    gif_saved = Signal(str)
    settings_restored = Signal(dict)

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.model: DiffusionModel | None = None
        self.run: Generation | None = None  # the running one
        self.current: Generation | None = None  # what the preview and the filmstrip show
        self.history: dict[int, Generation] = {}
        self.shown: np.ndarray | None = None  # uint8 (N, H, W, 3): what the preview shows
        self.last_step: DiffusionStep | None = None
        self._before: Generation | None = None
        self._queued = False  # Generate was pressed while a stopped run was ending: it starts when that one ends
        self._models_stale = False  # models were imported during a run: the picker is refilled when it ends
        self.too_long = ""  # why Generate is off, when a prompt is too long
        self._runs = 0
        self.slots = JobSlots(ctx.jobs, "image", on_failed=self._on_failed, on_progress=self._on_progress)
        self.setAcceptDrops(True)

        self.model_box = QComboBox()
        self.model_box.setMinimumContentsLength(24)
        self.model_box.setPlaceholderText("no model installed")
        self.model_info = label("", "muted", selectable=True)
        top = QHBoxLayout()
        for w in (label("Model"), self.model_box, self.model_info):
            top.addWidget(w)
        top.addStretch(1)
        top.addWidget(label("Drop a genstudio PNG here to restore its settings", "muted"))

        self._panels()
        controls = QWidget()
        column = QVBoxLayout(controls)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.prompt_card)
        column.addWidget(self.settings_card)
        column.addWidget(self.history_card, 1)
        left = scroll_area(controls, across=False)  # a short window scrolls the controls; the preview stays in view
        left.setFixedWidth(420 + left.verticalScrollBar().sizeHint().width())
        body = QHBoxLayout()
        body.addWidget(left)
        body.addWidget(self.preview_card, 1)
        self.status = label("", "muted", selectable=True, wrap=True)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(body, 1)
        lay.addWidget(self.status)
        self._connect()
        self.refresh_models()

    # -- layout ----------------------------------------------------------------------------------------
    def _panels(self) -> None:
        """Build the panels and name their controls on the tab (tests and the handlers use these names)."""
        pp = self.prompt_card = QtPromptPanel()
        self.prompt, self.negative, self.tokens = pp.prompt, pp.negative, pp.tokens
        self.prompt_warning, self.examples, self.class_box = pp.warning, pp.examples, pp.class_box
        sp = self.settings_card = QtSamplingPanel(seed_max=SEED_MAX, idle_text=IDLE_TEXT)
        self.steps, self.guidance, self.scheduler, self.seed = sp.steps, sp.guidance, sp.scheduler, sp.seed
        self.lock, self.batch, self.progress, self.progress_label = sp.lock, sp.batch, sp.progress, sp.progress_label
        self.generate_button, self.stop_button, self.unet = sp.generate_button, sp.stop_button, sp.unet
        self.history_card = QtCard("History")
        self.gallery = QtGallery()
        self.gallery.setMinimumHeight(100)
        self.gallery_note = label("Images of this session collect here; click one to see it and get its "
                                  "settings back.", "muted", wrap=True)
        self.history_card.body.addWidget(self.gallery_note)
        self.history_card.body.addWidget(self.gallery, 1)
        vp = self.preview_card = QtPreviewPanel()
        self.show_x0, self.show_noisy, self.view, self.film = vp.show_x0, vp.show_noisy, vp.view, vp.film
        self.scrub, self.scrub_label, self.save_button, self.gif_button = (vp.scrub, vp.scrub_label, vp.save_button,
                                                                          vp.gif_button)

    def _connect(self) -> None:
        self.prompt.textChanged.connect(self._check_prompt)
        self.negative.textChanged.connect(self._check_prompt)
        self.prompt.submitted.connect(self.generate)
        self.negative.submitted.connect(self.generate)
        self.class_box.activated.connect(self._pick_class)
        self.generate_button.clicked.connect(self.generate)
        self.stop_button.clicked.connect(self.stop)
        self.seed.valueChanged.connect(lambda _v: self.lock.setChecked(True))  # a seed typed in is kept
        self.gallery.picked.connect(self.show_generation)
        self.show_noisy.toggled.connect(self._mode_changed)
        self.film.step_clicked.connect(self.scrub.setValue)
        self.scrub.valueChanged.connect(self.show_step)
        self.view.clicked.connect(self._tile_clicked)
        self.save_button.clicked.connect(self._save_dialog)
        self.gif_button.clicked.connect(self._gif_dialog)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(keys), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self.generate)
        self.model_box.currentIndexChanged.connect(self._load)

    # -- models ----------------------------------------------------------------------------------------
    def is_settled(self) -> bool:
        """For `genstudio shot`: nothing runs (a model opens on the GUI thread: it reads only its manifest and
        tokenizer; the sessions start with the first run)."""
        return not self.slots.running()

    def refresh_models(self, *, keep: bool = False) -> None:
        """The registry's text-to-image models in the picker, and the chosen one loaded; keep=True (models imported on the
        Models tab) leaves the open model as it is when it is still listed."""
        entries = [e for e in self.ctx.registry.entries() if is_diffusion(e)]
        if not fill_model_box(self.model_box, entries, PREFERRED_MODEL):
            self.model = None
            self.view.set_message(EMPTY_TEXT)
            self.model_info.setText("")
            self.class_box.setVisible(False)
            for card in (self.prompt_card, self.settings_card):
                card.setEnabled(False)
            self.say("no text-to-image models")
            self._update_buttons()
            return
        if not (keep and is_open(self.model_box, self.model)):
            self._load()

    def models_changed(self) -> None:
        if self.run is not None:  # a refill mid-run could open another model under the running one
            self._models_stale = True
            return
        self.refresh_models(keep=True)

    def _load(self) -> None:
        name = self.model_box.currentData()
        if not name:
            return
        try:
            model = DiffusionModel(self.ctx.registry.get(name), self.ctx.pool)
            vocabulary = model.vocabulary  # reads the tokenizer: a broken one fails here, not mid-run
            steps_max = model.scheduler_config.num_train_timesteps  # likewise the scheduler config
            c, h, w = model.image_shape
            max_length = model.max_length
        except (ValueError, OSError, KeyError, TypeError) as e:
            self.model = None
            self.view.set_message(f"{name} cannot be opened:\n{e}")
            self.say(f"{name} cannot be opened: {e}", error=True)
            self._update_buttons()
            return
        self.model = model
        for card in (self.prompt_card, self.settings_card):
            card.setEnabled(True)
        self.model_info.setText(f"{w}×{h} {'colour' if c == 3 else 'greyscale'} · {len(vocabulary)} words · "
                                f"prompts up to {max_length} tokens"
                                + (f" · {model.dataset}" if model.dataset else ""))
        self.prompt.set_vocabulary(vocabulary)
        self.negative.set_vocabulary(vocabulary)
        menu = self.examples.menu()
        menu.clear()
        for text in model.example_prompts:
            menu.addAction(text, lambda t=text: self.prompt.set_text(t))
        self.examples.setEnabled(bool(model.example_prompts))
        self.class_box.clear()
        self.class_box.addItem("Class…", None)
        for caption in model.classes:
            self.class_box.addItem(caption, caption)
        self.class_box.setVisible(bool(model.classes))
        self.steps.setMaximum(steps_max)
        self.unet.clear()
        for precision in model.unet_precisions:
            self.unet.addItem(precision, precision)
        self.unet.setEnabled(self.unet.count() > 1)
        self.apply_defaults()
        if not self.prompt.text().strip() and model.example_prompts:
            self.prompt.set_text(model.example_prompts[0])
        if self.current is None:
            self.view.set_message(READY_TEXT)
        self._check_prompt()
        self.say(f"{model.entry.manifest.display_name} ready")

    def apply_defaults(self) -> None:
        """The model's manifest defaults into the controls (the seed stays random unless the user locks it)."""
        if self.model is None:
            return
        d = self.model.defaults
        self.steps.setValue(int(d.get("steps", 25)))
        self.guidance.set_decimal(float(d.get("guidance", 3.0)))
        self._set_scheduler(self.model.default_scheduler)
        self.unet.setCurrentIndex(max(0, self.unet.findData(self.model.default_unet)))
        self.batch.setValue(min(MAX_BATCH, max(1, int(d.get("batch", 4)))))
        self._set_seed(int(d.get("seed", 0)), lock=False)

    def _set_scheduler(self, name: str) -> bool:
        i = self.scheduler.findData(name)
        if i >= 0:
            self.scheduler.setCurrentIndex(i)
        return i >= 0

    def _set_seed(self, seed: int, *, lock: bool | None = None) -> None:
        self.seed.blockSignals(True)
        self.seed.setValue(seed)
        self.seed.blockSignals(False)
        if lock is not None:
            self.lock.setChecked(lock)

    # -- the prompt ------------------------------------------------------------------------------------
    def _pick_class(self, index: int) -> None:
        caption = self.class_box.itemData(index)
        if caption:
            self.prompt.set_text(caption)
        self.class_box.setCurrentIndex(0)

    def _check_prompt(self) -> None:
        """Unknown words and overlong prompts, as the model's tokenizer sees them, on every keystroke."""
        self.too_long = ""
        if self.model is None:
            self.tokens.setText("")
            self.prompt_warning.setVisible(False)
            self._update_buttons()
            return
        try:
            check = self.model.check_prompt(self.prompt.text())
            negative = self.model.check_prompt(self.negative.text())
        except Exception as e:  # noqa: BLE001 - a tokenizer failure is a message, not a dead tab
            self._warn(f"the tokenizer failed: {e}", error=True)
            return
        self.prompt.mark_unknown(check.unknown)
        self.negative.mark_unknown(negative.unknown)
        self.tokens.setText(f"{check.n_tokens} / {check.max_length} tokens")
        lines = []
        for c, what in ((check, "prompt"), (negative, "negative prompt")):
            if c.too_long:
                extra = c.n_tokens - c.max_length
                self.too_long = self.too_long or (f"The {what} has {c.n_tokens} tokens; the model reads "
                                                  f"{c.max_length}. Remove {extra} word{'s' * (extra > 1)}.")
        unknown = check.unknown + [w for w in negative.unknown if w not in check.unknown]
        if self.too_long:
            lines.append(self.too_long)
        if unknown:
            lines.append(f"Unknown words: {', '.join(unknown)} — they will be ignored as [UNK].")
        if lines:
            self._warn("\n".join(lines), error=bool(self.too_long))
        else:
            self.prompt_warning.setVisible(False)
        self._update_buttons()

    def _warn(self, text: str, *, error: bool) -> None:
        self.prompt_card.warn(text, error=error)

    def _stopping(self) -> bool:
        """A run is going and Stop was pressed: it ends at its next step."""
        job = self.slots.jobs.get("generate")
        return self.run is not None and job is not None and job.cancel_requested

    def _update_buttons(self) -> None:
        running = self.run is not None
        stopping = self._stopping()  # Generate then queues the next run behind the stopping one
        ok = self.model is not None and not self.too_long and (not running or stopping)
        self.generate_button.setEnabled(ok)
        self.generate_button.setToolTip(self.too_long or ("starts when the run has stopped" if stopping else
                                                          "running…" if running else "Ctrl+Return"))
        self.stop_button.setEnabled(running)
        done = self.current is not None
        self.save_button.setEnabled(done and self.current.images is not None and not running)
        self.gif_button.setEnabled(done and bool(self.current.x0) and not running)
        self.model_box.setEnabled(not running)

    # -- generating ------------------------------------------------------------------------------------
    @property
    def preview_mode(self) -> str:
        return "noisy" if self.show_noisy.isChecked() else "x0"

    def request(self) -> ImageRequest:
        """What the controls ask for (the seed as shown)."""
        return ImageRequest(self.prompt.text().strip(), self.negative.text().strip(), self.steps.value(),
                            self.guidance.decimal(), self.scheduler.currentData(), self.seed.value(),
                            self.batch.value(), preview="noisy",  # both views, so the toggle works mid-run
                            unet=self.unet.currentData())

    def generate(self) -> QtJob | None:
        if self.model is None:
            return None
        if self.run is not None:
            if self._stopping() and not self.too_long:  # Stop, then Generate at once: not lost, only deferred
                self._queued = True
                self.say("stopping…; the next run starts as soon as this one has stopped")
            return None
        if self.too_long:
            self.say(self.too_long, error=True)
            return None
        if not self.lock.isChecked():
            self._set_seed(random.randrange(0, SEED_MAX - self.batch.value() + 1))
        request = self.request()
        try:
            job = self.model.sample(request)
            settings = self.model.settings(self.model.resolve(request))
        except ValueError as e:
            self.say(str(e), error=True)
            return None
        self._runs += 1
        run = Generation(self._runs, settings)
        self._before = self.current  # shown again when the run ends before its first step
        self.run, self.current, self.last_step = run, run, None
        self.gallery.mark(None)
        self.film.set_frames([])
        self.scrub.blockSignals(True)
        self.scrub.setRange(0, 0)
        self.scrub.blockSignals(False)
        self.scrub.setEnabled(False)
        self.scrub_label.setText("")
        self.progress.setRange(0, run.total)
        self.progress.setValue(0)
        self.progress_label.setText(f"starting: {run.total} steps, seed {request.seed}")
        qt_job = self.slots.start("generate", paced(job, run), self._on_done)
        qt_job.cancelled.connect(lambda _last, j=qt_job, r=run: self._on_cancelled(j, r))
        self._update_buttons()
        self.say(f"generating {request.batch} image{'s' * (request.batch > 1)} with seed {request.seed}"
                 + (f" (images use seeds {request.seed}..{request.seed + request.batch - 1})"
                    if request.batch > 1 else ""))
        return qt_job

    def stop(self) -> None:
        job = self.slots.jobs.get("generate")
        if self.run is not None and job is not None and job.is_running():
            job.cancel()
            self.run.gate.set()  # do not let it wait for a preview that will not come
            self.say("stopping after this step…")
            self._update_buttons()

    def _after_run(self) -> None:
        """A run has ended: the models imported meanwhile join the picker, and the run asked for while it was
        stopping starts."""
        if self._models_stale:
            self._models_stale = False
            self.refresh_models(keep=True)
        if self._queued:
            self._queued = False
            self.generate()

    def _on_progress(self, p) -> None:
        step = getattr(p, "preview", None)
        if isinstance(step, DiffusionStep):
            self._show_live(step)
        elif getattr(p, "message", ""):
            self.say(p.message)

    def _show_live(self, step: DiffusionStep) -> None:
        run = self.run
        if run is None:
            return
        self.last_step = step
        frames = step.noisy if self.preview_mode == "noisy" and step.noisy is not None else step.x0
        if frames is not None:
            self._show(to_rgb(frames))
        n = step.index + 1
        run.shown = n
        rate = n / max(step.elapsed, 1e-9)
        self.progress.setValue(n)
        self.progress_label.setText(f"step {n}/{step.total} · {step.elapsed:.1f} s · {rate:.1f} steps/s")
        self.view.set_caption(f"step {n}/{step.total} · {self._mode_title()}")
        self.step_shown.emit(step.index)
        run.gate.set()

    def _on_done(self, result: DiffusionResult) -> None:
        run = self.run
        if run is None:
            return
        self.run = None
        run.images, run.seconds, run.unknown = result.images, result.seconds, list(result.unknown)
        run.settings, run.x0 = dict(result.settings), list(result.steps)
        if len(run.noisy) != len(run.x0):
            run.noisy = []
        self._remember(run)
        self._show_generation(run)
        n = run.total
        unknown = f" · ignored as [UNK]: {', '.join(run.unknown)}" if run.unknown else ""
        self.progress.setValue(n)  # also when its last step was not shown (Stop pressed as it ended)
        self.progress_label.setText(f"{n} step{'s' * (n > 1)} in {result.seconds:.1f} s · "
                                    f"{n / max(result.seconds, 1e-9):.1f} steps/s")
        self.say(f"{len(result.images)} image{'s' * (len(result.images) > 1)} in {result.seconds:.1f} s · seed "
                 f"{run.settings['seed']} · {run.settings['scheduler']}, {n} steps, guidance "
                 f"{run.settings['guidance']:g}{unknown} · click an image to select it")
        self._update_buttons()
        self.generated.emit(result)
        self._after_run()

    def _on_cancelled(self, job: QtJob, run: Generation) -> None:
        if self.slots.jobs.get("generate") is not job or self.run is not run:
            return
        self.run = None
        self._keep_shown(run)
        self.progress_label.setText(f"stopped at step {run.shown}/{run.total}" + self._pace_text(run))
        self.say(f"stopped at step {run.shown} of {run.total}; the preview keeps the last step (a stopped run "
                 "is not saved to the history)")
        self._update_buttons()
        self.stopped.emit(run.shown)
        self._after_run()

    def _keep_shown(self, run: Generation) -> None:
        """A run that ended without its images (stopped, failed): keep the steps it showed, on the filmstrip
        and the scrubber; with none shown, go back to what was there before it."""
        if not self._back_to_before(run):
            run.x0, run.noisy = run.x0[:run.shown], run.noisy[:run.shown]
            self._show_film(run, keep_preview=True)

    def _pace_text(self, run: Generation) -> str:
        """" · 1.2 s · 2.5 steps/s" for the steps of `run` the preview showed ("" before its first)."""
        s = self.last_step
        if not run.shown or s is None:
            return ""
        return f" · {s.elapsed:.1f} s · {run.shown / max(s.elapsed, 1e-9):.1f} steps/s"

    def _on_failed(self, failure: JobFailure) -> None:
        ended = self.run is not None and not self.slots.running("generate")
        if ended:
            run, self.run = self.run, None
            self._keep_shown(run)
            self.progress_label.setText(f"failed at step {run.shown}/{run.total}" if run.shown else "failed")
        self.say(f"failed: {failure.message}", error=True)
        self.ctx.show_status(f"Text to Image: {failure.message}")
        self._update_buttons()
        if ended:
            self._after_run()

    def _back_to_before(self, run: Generation) -> bool:
        """When a run ends with no step shown, show what was there before it; True when it did."""
        if run.shown:
            return False
        before, self._before = self._before, None
        if before is not None:
            self._show_generation(before)
        else:
            self.current = None
            self.view.set_message(READY_TEXT)
        return True

    # -- showing ---------------------------------------------------------------------------------------
    def _mode_title(self) -> str:
        return "noisy sample" if self.preview_mode == "noisy" else "predicted image"

    def _show(self, rgb: np.ndarray) -> None:
        self.shown = rgb
        self.view.set_images(rgb)

    def _show_film(self, gen: Generation, *, keep_preview: bool = False) -> None:
        """The filmstrip and the scrubber for `gen`: one position per step, then "final" when it finished."""
        frames = gen.frames(self.preview_mode)
        tile = self.view.selected or 0
        self.film.set_frames([to_rgb(f[tile:tile + 1])[0] for f in frames])
        last = len(frames) - (0 if gen.images is not None else 1)
        self.scrub.blockSignals(True)
        self.scrub.setRange(0, max(0, last))
        self.scrub.setValue(max(0, last))
        self.scrub.blockSignals(False)
        self.scrub.setEnabled(bool(frames))
        if keep_preview:
            self._label_position(max(0, last))
        else:
            self._display(max(0, last))

    def _label_position(self, k: int) -> None:
        gen = self.current
        if gen is None:
            return
        n = len(gen.x0)
        text = "final image" if gen.images is not None and k >= n else f"step {k + 1}/{gen.total}"
        self.scrub_label.setText(text)
        self.film.set_current(min(k, n - 1) if n else None)
        self.view.set_caption(text if text == "final image" else f"{text} · {self._mode_title()}")

    def _display(self, k: int) -> None:
        """Show position k of the current generation: step k, or the final images at len(steps)."""
        gen = self.current
        if gen is None:
            return
        frames = gen.frames(self.preview_mode)
        if gen.images is not None and k >= len(frames):
            self._show(to_rgb(gen.images))
        elif frames:
            self._show(to_rgb(frames[min(k, len(frames) - 1)]))
        self._label_position(k)

    def show_step(self, k: int) -> None:
        """Revisit step k (0-based) of the current generation in the preview; len(steps) is the final image."""
        if self.current is None or self.run is not None:
            return
        if self.scrub.value() != k:
            self.scrub.setValue(k)  # comes back here through valueChanged
            return
        self._display(k)
        if k < len(self.current.x0):
            self.step_shown.emit(k)

    def _mode_changed(self) -> None:
        if self.run is not None:
            if self.last_step is not None:
                s = self.last_step
                frames = s.noisy if self.preview_mode == "noisy" and s.noisy is not None else s.x0
                if frames is not None:
                    self._show(to_rgb(frames))
                self.view.set_caption(f"step {s.index + 1}/{s.total} · {self._mode_title()}")
            return
        self._refresh_film(show=True)

    def _refresh_film(self, *, show: bool) -> None:
        """Rebuild the filmstrip (another view or tile) at the scrubber's position, emitting nothing."""
        if self.current is None or self.run is not None or not self.current.x0:
            return
        k = self.scrub.value()
        self._show_film(self.current, keep_preview=True)
        self.scrub.blockSignals(True)
        self.scrub.setValue(k)
        self.scrub.blockSignals(False)
        if show:
            self._display(k)
        else:
            self._label_position(k)

    def _tile_clicked(self, i: int) -> None:
        self._refresh_film(show=False)
        if i >= 0 and self.current is not None:
            self.say(f"image {i + 1} selected: seed {int(self.current.settings['seed']) + i} · Save PNG saves it "
                     "alone (click it again to select the whole batch)")

    def _show_generation(self, gen: Generation) -> None:
        self.current = gen
        self.gallery.mark(gen.key if self.history.get(gen.key) is gen else None)  # the history shows what is shown
        self.view.select(None)
        self._show_film(gen)
        self._update_buttons()

    # -- history ---------------------------------------------------------------------------------------
    def _remember(self, gen: Generation) -> None:
        self.history[gen.key] = gen
        s = gen.settings
        tip = (f"{s['prompt'] or '(empty prompt)'}\nseed {s['seed']} · {s['scheduler']} · {s['steps']} steps · "
               f"guidance {s['guidance']:g}" + (f"\nnegative: {s['negative']}" if s.get("negative") else ""))
        self.gallery.add(gen.key, batch_grid(to_rgb(gen.images)), tip)
        self.gallery.mark(gen.key)
        while len(self.history) > GALLERY_MAX:
            oldest = min(self.history)
            del self.history[oldest]
            self.gallery.drop_key(oldest)
        used = 0
        for key in sorted(self.history, reverse=True):  # newest keep their filmstrips
            old = self.history[key]
            used += sum(f.nbytes for f in old.x0) + sum(f.nbytes for f in old.noisy)
            if used > FILM_BUDGET and old is not gen:
                old.x0, old.noisy = [], []
        self.gallery_note.setVisible(False)

    def show_generation(self, key: int) -> None:
        """Show a past generation and put its settings back into the controls."""
        gen = self.history.get(key)
        if gen is None:
            return
        if self.run is not None:
            self.gallery.mark(None)  # the click selected it, but the preview stays on the run
            self.say("a run is going: stop it or let it end first")
            return
        self._show_generation(gen)
        self.gallery.mark(key)
        self.restore_settings(gen.settings, source=f"generation {key}")

    # -- settings: restore, save, drop -----------------------------------------------------------------
    def restore_settings(self, s: dict[str, Any], *, source: str = "") -> bool:
        """Put saved settings (DiffusionResult.settings) into the controls; False, changing nothing, when they
        are not a text-to-image model's."""
        if self.run is not None:
            self.say("a run is going: stop it or let it end first; nothing changed", error=True)
            return False
        if s.get("family", "diffusion") != "diffusion" or "prompt" not in s:
            what = s.get("family") or "another"
            self.say(f"{source or 'these settings'} came from a {what} model, not a text-to-image one; nothing "
                     "changed", error=True)
            return False
        notes: list[str] = []
        name = s.get("model")
        if name and self.model is not None and name != self.model.name:
            i = self.model_box.findData(name)
            if i >= 0:
                self.model_box.setCurrentIndex(i)  # loads it
            else:
                notes.append(f"made with {name}, which is not installed: applied to {self.model.name}")
        try:
            self.prompt.set_text(str(s.get("prompt", "")))
            self.negative.set_text(str(s.get("negative", "")))
            if "steps" in s:
                self.steps.setValue(int(s["steps"]))
            if "guidance" in s:
                self.guidance.set_decimal(float(s["guidance"]))
            if "scheduler" in s and not self._set_scheduler(str(s["scheduler"])):
                notes.append(f"unknown sampler {s['scheduler']!r}")
            if "batch" in s:
                self.batch.setValue(int(s["batch"]))
            if "unet" in s:
                i = self.unet.findData(str(s["unet"]))
                if i >= 0:
                    self.unet.setCurrentIndex(i)
                else:
                    notes.append(f"made with the {s['unet']} UNet, which {self.model.name} does not have")
            if "seed" in s:
                seed = int(s["seed"])
                if seed > SEED_MAX:
                    notes.append(f"seed {seed} is beyond this box's {SEED_MAX}")
                self._set_seed(min(seed, SEED_MAX), lock=True)
        except (TypeError, ValueError, OverflowError) as e:  # OverflowError: beyond a box's int ("steps": 1e12)
            notes.append(f"a value could not be read ({e or type(e).__name__})")
        self._check_prompt()
        self.say(f"settings of {source or 'the image'} restored (seed locked)"
                 + (f" · {'; '.join(notes)}" if notes else ""), error=bool(notes))
        self.settings_restored.emit(dict(s))
        return True

    def restore_file(self, path: Path) -> bool:
        """The settings of a PNG saved by genstudio; a clear message, changing nothing, for any other file."""
        from PIL import Image, UnidentifiedImageError

        path = Path(path)
        try:
            with Image.open(path) as img:
                img.verify()
        except (OSError, UnidentifiedImageError, SyntaxError):
            self.say(f"{path.name} is not an image genstudio can read; nothing changed", error=True)
            return False
        settings = read_png_settings(path)
        if settings is None:
            self.say(f"{path.name} holds no generation settings (only PNGs saved by genstudio do); nothing "
                     "changed", error=True)
            return False
        return self.restore_settings(settings, source=path.name)

    def save_image(self, path: Path, index: int | None = None) -> Path | None:
        """Save image `index` of the current generation, or (None) the whole batch as one grid; the PNG text chunk
        holds the settings that make it again (for one image: its own seed, batch 1)."""
        gen = self.current
        if gen is None or gen.images is None:
            self.say("nothing finished to save yet", error=True)
            return None
        rgb = to_rgb(gen.images)
        settings = dict(gen.settings)
        if index is not None or len(rgb) == 1:
            k = index or 0
            image = rgb[k]
            settings.update(seed=int(settings["seed"]) + k, batch=1)
        else:
            image = batch_grid(rgb)
        out = save_png(image, Path(path), settings)
        self.say(f"wrote {out}")
        return out

    def _default_name(self, suffix: str) -> str:
        gen = self.current
        if gen is None:
            return f"image{suffix}"
        k = self.view.selected or 0
        return f"{gen.settings['model']}-seed{int(gen.settings['seed']) + k}{suffix}"

    def _save_dialog(self) -> None:
        if self.current is None or self.current.images is None:
            return
        default = str(self.ctx.output_dir() / self._default_name(".png"))
        path, _ = QFileDialog.getSaveFileName(self, "Save image", default, "PNG (*.png)")
        if path:
            try:
                self.save_image(Path(path), self.view.selected)
            except OSError as e:  # a read-only folder, a full disk: say so (File > Save Output has its own box)
                self.say(f"could not write {path}: {e}", error=True)

    def can_save_output(self) -> bool:
        return self.current is not None and self.current.images is not None

    def save_output(self, folder: Path) -> Path | None:
        """File ▸ Save Output: the selected image (or the batch) into the output folder, never overwriting."""
        folder = Path(folder)
        stem = self._default_name("")
        path, n = folder / f"{stem}.png", 1
        while path.exists():
            n += 1
            path = folder / f"{stem}-{n}.png"
        return self.save_image(path, self.view.selected)

    def save_gif(self, path: Path) -> QtJob | None:
        """Write the current generation's denoising (the preview's view, x0 or noisy) as a GIF, in a job."""
        gen = self.current
        if gen is None or not gen.x0 or self.run is not None:
            self.say("generate something first", error=True)
            return None
        return self.slots.start("gif", gif_job(list(gen.frames(self.preview_mode)), Path(path)), self._on_gif)

    def _on_gif(self, path: str) -> None:
        self.say(f"wrote {path}")
        self.gif_saved.emit(path)

    def _gif_dialog(self) -> None:
        default = str(self.ctx.output_dir() / self._default_name("-steps.gif"))
        path, _ = QFileDialog.getSaveFileName(self, "Save denoising GIF", default, "GIF (*.gif)")
        if path:
            self.save_gif(Path(path))

    def dragEnterEvent(self, event) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if not urls:
            return
        event.acceptProposedAction()
        if self.model is None:
            self.say("install a text-to-image model first; nothing changed", error=True)
            return
        self.restore_file(Path(urls[0].toLocalFile()))

    # -- misc ------------------------------------------------------------------------------------------
    def say(self, text: str, *, error: bool = False) -> None:
        set_role(self.status, "error" if error else "muted")
        self.status.setText(text)

    def closeEvent(self, event) -> None:
        self._queued = False
        if self.run is not None:
            self.run.gate.set()
        self.slots.cancel_all()
        super().closeEvent(event)

