"""Widgets of the Text to Image tab: the prompt box (word completion, unknown words underlined), the batch view,
the filmstrip of denoising steps, the history of generations, and the tab's three panels (prompt, sampling,
preview) that hold them; the tab (qt_image.py) wires them to the engine."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, QStringListModel, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QIcon,
    QImage,
    QKeyEvent,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QCompleter,
    QGridLayout,
    QHBoxLayout,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QTextEdit,
    QWidget,
)

from genstudio.engines.diffusion import SCHEDULERS
from genstudio.engines.diffusion.pipeline import MAX_BATCH
from genstudio.qt.qt_images import rgb_to_qimage
from genstudio.qt.qt_widgets import QtCard, label

WORD = re.compile(r"\w+")  # how the prompt box finds words (the tokenizer splits on spaces and drops punctuation)
_TRAILING_WORD = re.compile(r"\w+$")
SELECTED = QColor("#2f6feb")
SCHEDULER_HINTS = {"ddpm": "ancestral, needs many steps", "ddim": "deterministic", "euler_a": "ancestral",
                   "dpmpp_2m": "fast, deterministic"}
# a checked toggle in either theme (the themes style checked buttons only in the toolbar)
TOGGLE_STYLE = ("QPushButton:checked { background: palette(highlight); color: palette(highlighted-text); "
                "border-color: palette(highlight); }")


class QtDecimalSpinBox(QSpinBox):
    """A spin box of decimals that is a QSpinBox underneath (so the theme styles it like the others): the value
    is held in units of 10^-decimals."""

    def __init__(self, minimum: float, maximum: float, step: float, decimals: int = 1,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scale = 10 ** decimals
        self.decimals = decimals
        self.setRange(round(minimum * self.scale), round(maximum * self.scale))
        self.setSingleStep(max(1, round(step * self.scale)))

    def textFromValue(self, v: int) -> str:  # noqa: N802 - Qt's name
        return f"{v / self.scale:.{self.decimals}f}"

    def valueFromText(self, text: str) -> int:  # noqa: N802 - Qt's name
        try:
            return round(float(text.strip().replace(",", ".")) * self.scale)
        except (ValueError, OverflowError):
            return self.value()

    def validate(self, text: str, pos: int):
        from PySide6.QtGui import QValidator

        t = text.strip().replace(",", ".")
        if t in ("", ".", "-"):
            return QValidator.State.Intermediate, text, pos
        try:
            v = round(float(t) * self.scale)
        except (ValueError, OverflowError):  # not a number, nan or inf (pasted): raising here would crash Qt
            return QValidator.State.Invalid, text, pos
        ok = self.minimum() <= v <= self.maximum()
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, pos

    def decimal(self) -> float:
        return self.value() / self.scale

    def set_decimal(self, v: float) -> None:
        self.setValue(round(float(v) * self.scale))


class QtPromptEdit(QPlainTextEdit):
    """A prompt of a few lines. The word under the cursor completes from the model's vocabulary; words the
    model does not know are underlined; Return (or Ctrl+Return) submits, and a pasted text loses its newlines."""

    submitted = Signal()

    def __init__(self, placeholder: str = "", lines: int = 3, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        line = self.fontMetrics().lineSpacing()
        self.setFixedHeight(int(line * lines + 2 * self.frameWidth() + self.document().documentMargin() * 2 + 6))
        self.words = QStringListModel(self)
        self.completer = QCompleter(self.words, self)
        self.completer.setWidget(self)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setModelSorting(QCompleter.ModelSorting.CaseInsensitivelySortedModel)
        self.completer.setMaxVisibleItems(8)
        self.completer.activated.connect(self.insert_completion)
        self._marked: set[str] = set()

    def text(self) -> str:
        return self.toPlainText()

    def set_text(self, text: str) -> None:
        self.setPlainText(text)
        self.moveCursor(QTextCursor.MoveOperation.End)

    def set_vocabulary(self, words: Sequence[str]) -> None:
        self.words.setStringList(list(words))

    # -- completion ------------------------------------------------------------------------------------
    def current_word(self) -> str:
        """The part of a word just before the cursor ("" when the cursor follows a space)."""
        cursor = self.textCursor()
        before = self.toPlainText()[:cursor.position()]
        m = _TRAILING_WORD.search(before)
        return m.group(0) if m else ""

    def insert_completion(self, word: str) -> None:
        """Replace the word being typed with `word` and a space."""
        prefix = self.current_word()
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.Left, QTextCursor.MoveMode.KeepAnchor, len(prefix))
        cursor.insertText(word + " ")
        self.setTextCursor(cursor)
        self.completer.popup().hide()

    def update_completion(self) -> None:
        prefix = self.current_word()
        popup = self.completer.popup()
        if not prefix:
            popup.hide()
            return
        self.completer.setCompletionPrefix(prefix)
        count = self.completer.completionCount()
        if count == 0 or (count == 1 and self.completer.currentCompletion().lower() == prefix.lower()):
            popup.hide()
            return
        popup.setCurrentIndex(self.completer.completionModel().index(0, 0))
        rect = self.cursorRect()
        rect.setWidth(popup.sizeHintForColumn(0) + popup.verticalScrollBar().sizeHint().width() + 16)
        self.completer.complete(rect)

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        key = e.key()
        popup = self.completer.popup()
        if popup.isVisible() and key in (Qt.Key.Key_Enter, Qt.Key.Key_Return, Qt.Key.Key_Escape, Qt.Key.Key_Tab,
                                         Qt.Key.Key_Backtab):
            e.ignore()  # the completer takes these
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.submitted.emit()
            e.accept()
            return
        super().keyPressEvent(e)
        if e.text() and (e.text().isprintable() or key == Qt.Key.Key_Backspace) and \
                not e.modifiers() & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            self.update_completion()
        else:
            popup.hide()

    def canInsertFromMimeData(self, source) -> bool:  # noqa: N802 - Qt's name
        """Not a dropped file: it goes on to the tab (a PNG restores its settings) instead of in as its URL."""
        if any(u.isLocalFile() for u in source.urls()):
            return False
        return super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source) -> None:  # noqa: N802 - Qt's name
        if source.hasText():
            self.insertPlainText(" ".join(source.text().split()))
        else:
            super().insertFromMimeData(source)

    # -- unknown words ---------------------------------------------------------------------------------
    def mark_unknown(self, words: Sequence[str]) -> None:
        """Underline every occurrence of these (lowercase) words with a red wavy line."""
        marked = {w.lower() for w in words}
        if marked == self._marked and not marked:
            return
        self._marked = marked
        fmt = QTextCharFormat()
        fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        fmt.setUnderlineColor(QColor("#cf222e"))
        selections = []
        for m in WORD.finditer(self.toPlainText()):
            if m.group(0).lower() in marked:
                sel = QTextEdit.ExtraSelection()
                cursor = QTextCursor(self.document())
                cursor.setPosition(m.start())
                cursor.setPosition(m.end(), QTextCursor.MoveMode.KeepAnchor)
                sel.cursor, sel.format = cursor, fmt
                selections.append(sel)
        self.setExtraSelections(selections)

    def marked_count(self) -> int:
        return len(self.extraSelections())


def tile_grid(n: int, width: float, height: float, gap: float, columns: int | None = None) -> list[QRectF]:
    """n square tiles, as large as fit in width x height, centred; `columns` defaults to a square-ish grid."""
    if n <= 0:
        return []
    cols = columns or int(np.ceil(np.sqrt(n)))
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    side = max(4.0, min((width - gap * (cols - 1)) / cols, (height - gap * (rows - 1)) / rows))
    x0 = (width - (side * cols + gap * (cols - 1))) / 2
    y0 = (height - (side * rows + gap * (rows - 1))) / 2
    return [QRectF(x0 + (i % cols) * (side + gap), y0 + (i // cols) * (side + gap), side, side) for i in range(n)]


class QtBatchView(QWidget):
    """The images of a batch, smoothly upscaled in a grid; click one to select it (again to clear), or show a
    message when there is nothing to show."""

    clicked = Signal(int)  # the tile index, or -1 for "no tile selected"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images: list[QImage] = []
        self.selected: int | None = None
        self.message = ""
        self.caption = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 200)

    def sizeHint(self) -> QSize:
        return QSize(640, 640)

    def set_images(self, rgb: np.ndarray) -> None:
        """uint8 (N, H, W, 3); the selection stays when the count is unchanged."""
        if len(rgb) != len(self.images) or len(rgb) < 2:
            self.selected = None
        self.images = [rgb_to_qimage(x) for x in rgb]
        self.message = ""
        self.update()

    def set_message(self, text: str) -> None:
        self.images, self.selected, self.message = [], None, text
        self.update()

    def set_caption(self, text: str) -> None:
        self.caption = text
        self.update()

    def select(self, i: int | None) -> None:
        self.selected = i if i is not None and 0 <= i < len(self.images) and len(self.images) > 1 else None
        self.update()

    def _area(self) -> QRectF:
        cap = self.fontMetrics().height() + 8 if self.caption else 0
        return QRectF(0, 0, self.width(), self.height() - cap)

    def tile_rects(self) -> list[QRectF]:
        area = self._area()
        gap = 8.0 if len(self.images) > 1 else 0.0
        return tile_grid(len(self.images), area.width(), area.height(), gap)

    def mousePressEvent(self, event) -> None:
        pos: QPointF = event.position()
        for i, r in enumerate(self.tile_rects()):
            if r.contains(pos):
                self.select(None if self.selected == i else i)
                self.clicked.emit(-1 if self.selected is None else i)
                return

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        muted = self.palette().color(QPalette.ColorRole.PlaceholderText)
        if not self.images:
            area = self._area()
            side = min(area.width(), area.height()) * 0.92
            box = QRectF((area.width() - side) / 2, (area.height() - side) / 2, side, side)
            p.setPen(QPen(self.palette().color(QPalette.ColorRole.Mid), 1, Qt.PenStyle.DashLine))
            p.drawRoundedRect(box, 8, 8)
            p.setPen(muted)
            p.drawText(box.adjusted(24, 24, -24, -24), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.message)
            return
        edge = QPen(self.palette().color(QPalette.ColorRole.Mid), 1)
        for i, (r, img) in enumerate(zip(self.tile_rects(), self.images, strict=True)):
            p.drawImage(r, img)
            p.setPen(edge)
            p.drawRect(r.adjusted(-0.5, -0.5, 0.5, 0.5))
            if self.selected == i:
                p.setPen(QPen(SELECTED, 3))
                p.drawRect(r.adjusted(1.5, 1.5, -1.5, -1.5))
        if self.caption:
            fm = p.fontMetrics()
            p.setPen(muted)
            p.drawText(QRectF(0, self.height() - fm.height() - 4, self.width(), fm.height() + 4),
                       Qt.AlignmentFlag.AlignCenter, fm.elidedText(self.caption, Qt.TextElideMode.ElideMiddle,
                                                                   self.width()))


class QtFilmstrip(QWidget):
    """Thumbnails of the denoising steps in a row (evenly spaced ones when they do not all fit), the current
    step framed; a click picks the nearest step."""

    step_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.frames: list[QImage] = []
        self.current: int | None = None
        self.setMinimumHeight(56)
        self.setMaximumHeight(84)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def sizeHint(self) -> QSize:
        return QSize(640, 72)

    def set_frames(self, rgb: Sequence[np.ndarray]) -> None:
        """One uint8 (H, W, 3) image per step."""
        self.frames = [rgb_to_qimage(f) for f in rgb]
        if self.current is not None and self.current >= len(self.frames):
            self.current = None
        self.update()

    def set_current(self, i: int | None) -> None:
        self.current = i
        self.update()

    def visible_steps(self) -> list[int]:
        """The steps that get a thumbnail: all when they fit, else evenly spaced ones with the first and last."""
        n = len(self.frames)
        if not n:
            return []
        side = max(8, self.height() - 8)
        fit = max(2, int((self.width() + 4) // (side + 4)))
        if n <= fit:
            return list(range(n))
        return sorted({int(round(k)) for k in np.linspace(0, n - 1, fit)})

    def _rects(self) -> list[tuple[int, QRectF]]:
        steps = self.visible_steps()
        if not steps:
            return []
        side = min(max(8.0, self.height() - 8.0), (self.width() - 4.0 * (len(steps) - 1)) / len(steps))
        total = side * len(steps) + 4.0 * (len(steps) - 1)
        x0, y0 = (self.width() - total) / 2, (self.height() - side) / 2
        return [(s, QRectF(x0 + k * (side + 4.0), y0, side, side)) for k, s in enumerate(steps)]

    def mousePressEvent(self, event) -> None:
        rects = self._rects()
        if not rects:
            return
        x = event.position().x()
        step = min(rects, key=lambda sr: abs(sr[1].center().x() - x))[0]
        self.step_clicked.emit(step)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        rects = self._rects()
        if not rects:
            p.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Every denoising step appears here after a run")
            return
        shown = [s for s, _ in rects]
        mark = None if self.current is None else min(shown, key=lambda s: abs(s - self.current))
        for s, r in rects:
            p.drawImage(r, self.frames[s])
            if s == mark:
                p.setPen(QPen(SELECTED, 3))
                p.drawRect(r.adjusted(1.5, 1.5, -1.5, -1.5))


class QtGallery(QListWidget):
    """Past generations as thumbnails, newest first; `picked(key)` when one is clicked."""

    picked = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, icon_side: int = 84) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setIconSize(QSize(icon_side, icon_side))
        self.setGridSize(QSize(icon_side + 12, icon_side + 12))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWrapping(True)
        self.setSpacing(2)
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.icon_side = icon_side
        self.itemClicked.connect(lambda item: self.picked.emit(int(item.data(Qt.ItemDataRole.UserRole))))

    def add(self, key: int, rgb: np.ndarray, tooltip: str) -> QListWidgetItem:
        """Put a generation (uint8 (H, W, 3) thumbnail) first."""
        pix = QPixmap.fromImage(rgb_to_qimage(rgb)).scaled(
            self.icon_side, self.icon_side, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation)
        item = QListWidgetItem(QIcon(pix), "")
        item.setData(Qt.ItemDataRole.UserRole, key)
        item.setToolTip(tooltip)
        item.setSizeHint(QSize(self.icon_side + 8, self.icon_side + 8))
        self.insertItem(0, item)
        return item

    def keys(self) -> list[int]:
        return [int(self.item(r).data(Qt.ItemDataRole.UserRole)) for r in range(self.count())]

    def drop_key(self, key: int) -> None:
        for r in range(self.count()):
            if int(self.item(r).data(Qt.ItemDataRole.UserRole)) == key:
                self.takeItem(r)
                return

    def mark(self, key: int | None) -> None:
        """Select the item of `key` (None clears) without emitting `picked`."""
        self.blockSignals(True)
        self.clearSelection()
        for r in range(self.count()):
            if key is not None and int(self.item(r).data(Qt.ItemDataRole.UserRole)) == key:
                self.setCurrentRow(r)
        self.blockSignals(False)


class QtPromptPanel(QtCard):
    """The prompt (with a token count and the warning line), Examples and the class picker, the negative prompt."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        head = QHBoxLayout()
        head.addWidget(label("Prompt", "heading"))
        head.addStretch(1)
        self.tokens = label("", "muted")
        head.addWidget(self.tokens)
        self.body.addLayout(head)
        self.prompt = QtPromptEdit("what to draw, in the model's words", lines=3)
        self.prompt.setAccessibleName("Prompt")
        self.warning = label("", wrap=True)
        self.warning.setVisible(False)
        self.examples = QPushButton("Examples")
        self.examples.setToolTip("prompts the model was shown off with")
        self.examples.setMenu(QMenu(self.examples))
        self.examples.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.class_box = QComboBox()
        self.class_box.setToolTip("the model's classes: pick one to prompt for it")
        self.class_box.setMinimumContentsLength(14)
        row = QHBoxLayout()
        row.addWidget(self.examples)
        row.addWidget(self.class_box, 1)
        row.addStretch(0)  # keeps Examples at the left when there are no classes
        self.negative = QtPromptEdit("what to steer away from (optional)", lines=1)
        self.negative.setAccessibleName("Negative prompt")
        self.body.addWidget(self.prompt)
        self.body.addWidget(self.warning)
        self.body.addLayout(row)
        self.body.addWidget(label("Negative prompt", "heading"))
        self.body.addWidget(self.negative)

    def warn(self, text: str, *, error: bool) -> None:
        """Show the warning line ("" hides it); the status bar's warning and error chips style it in both themes."""
        self.warning.setObjectName("statusError" if error else "statusWarning")
        self.warning.style().unpolish(self.warning)
        self.warning.style().polish(self.warning)
        self.warning.setText(text)
        self.warning.setVisible(bool(text))


class QtSamplingPanel(QtCard):
    """Steps, guidance, sampler, seed with its lock, batch; Generate and Stop; the progress of a run."""

    def __init__(self, *, seed_max: int, idle_text: str = "", parent: QWidget | None = None) -> None:
        super().__init__("Sampling", parent)
        grid = QGridLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(8)
        self.steps = QSpinBox(minimum=1, maximum=1000, value=25)
        self.steps.setToolTip("denoising steps: more are slower and usually cleaner")
        self.guidance = QtDecimalSpinBox(0.0, 50.0, 0.5, decimals=1)
        self.guidance.set_decimal(3.0)
        self.guidance.setToolTip("classifier-free guidance: how hard the image follows the prompt (1 is off, "
                                 "0 ignores the prompt and follows the negative)")
        self.scheduler = QComboBox()
        for name, cls in SCHEDULERS.items():
            hint = SCHEDULER_HINTS.get(name, "")
            self.scheduler.addItem(f"{cls.TITLE or name}" + (f"  ({hint})" if hint else ""), name)
        self.scheduler.setToolTip("the sampler that walks from noise to the image")
        self.seed = QSpinBox(minimum=0, maximum=seed_max, value=0)
        self.seed.setToolTip("image k of a batch uses seed + k; the same seed and settings give the same images")
        self.lock = QPushButton("Random", checkable=True)
        self.lock.setToolTip("Random: every Generate draws a new seed and shows it here. Locked: keep this seed.")
        self.lock.setMinimumWidth(86)
        self.lock.setStyleSheet(TOGGLE_STYLE)
        self.lock.toggled.connect(lambda on: self.lock.setText("Locked" if on else "Random"))
        self.batch = QSpinBox(minimum=1, maximum=MAX_BATCH, value=4)
        self.batch.setToolTip(f"images per run, 1 to {MAX_BATCH}")
        self.unet = QComboBox()
        self.unet.setToolTip("the UNet graph: float32, or int8 (quantized convolutions: faster on CPUs with "
                             "int8 instructions, images differ slightly); offered where the model ships one")
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.lock)
        for r, (name, w) in enumerate((("Steps", self.steps), ("Guidance", self.guidance))):
            grid.addWidget(label(name), 0, 2 * r)
            grid.addWidget(w, 0, 2 * r + 1)
        grid.addWidget(label("Sampler"), 1, 0)
        grid.addWidget(self.scheduler, 1, 1, 1, 3)
        grid.addWidget(label("Seed"), 2, 0)
        grid.addLayout(seed_row, 2, 1, 1, 3)
        grid.addWidget(label("Batch"), 3, 0)
        grid.addWidget(self.batch, 3, 1)
        grid.addWidget(label("UNet"), 3, 2)
        grid.addWidget(self.unet, 3, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        self.body.addLayout(grid)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setProperty("primary", True)
        self.generate_button.setToolTip("Ctrl+Return")
        self.generate_button.setMinimumHeight(34)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("stop after the current step; the preview keeps it")
        self.stop_button.setEnabled(False)
        self.stop_button.setMinimumHeight(34)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 3)
        buttons.addWidget(self.stop_button, 1)
        self.body.addLayout(buttons)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress_label = label(idle_text, "muted")
        self.body.addWidget(self.progress)
        self.body.addWidget(self.progress_label)


class QtPreviewPanel(QtCard):
    """The batch view with its x0 / noisy toggle, the filmstrip, the step scrubber, Save PNG and Save GIF."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        head = QHBoxLayout()
        head.addWidget(label("Preview", "heading"))
        head.addStretch(1)
        head.addWidget(label("Show", "muted"))
        self.show_x0 = QPushButton("Predicted image", checkable=True, checked=True)
        self.show_x0.setToolTip("x0: the clean image the model predicts at this step")
        self.show_noisy = QPushButton("Noisy sample", checkable=True)
        self.show_noisy.setToolTip("x_t: the partly denoised sample the next step starts from")
        self.mode = QButtonGroup(self)
        self.mode.setExclusive(True)
        for b in (self.show_x0, self.show_noisy):
            self.mode.addButton(b)
            b.setStyleSheet(TOGGLE_STYLE)
            head.addWidget(b)
        self.body.addLayout(head)
        self.view = QtBatchView()
        self.body.addWidget(self.view, 1)
        self.film = QtFilmstrip()
        self.body.addWidget(self.film)
        self.scrub = QSlider(Qt.Orientation.Horizontal)
        self.scrub.setRange(0, 0)
        self.scrub.setEnabled(False)
        self.scrub.setToolTip("revisit any step of the last run")
        self.scrub.setAccessibleName("Denoising step")
        self.scrub_label = label("", "muted")
        self.scrub_label.setMinimumWidth(110)
        self.save_button = QPushButton("Save PNG…")
        self.save_button.setToolTip("save the selected image (click one), else the whole batch; the PNG keeps the "
                                    "settings, and dropping it here brings them back")
        self.gif_button = QPushButton("Save GIF…")
        self.gif_button.setToolTip("the denoising, one frame per step, as an animated GIF")
        self.save_button.setEnabled(False)
        self.gif_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.scrub, 1)
        row.addWidget(self.scrub_label)
        row.addWidget(self.save_button)
        row.addWidget(self.gif_button)
        self.body.addLayout(row)
