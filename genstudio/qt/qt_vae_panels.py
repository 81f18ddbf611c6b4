"""The VAE Explorer's side panels (layout only): the live decode, encode, points A/B/C with interpolation
and arithmetic, and the per-dimension sliders. The tab (qt_vae.py) connects them to the engine."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from genstudio.qt.qt_images import QtImageView
from genstudio.qt.qt_vae_widgets import QtDimSliders, QtKlChart
from genstudio.qt.qt_widgets import QtCard, label

POINTS = ("A", "B", "C")


class QtDecodePanel(QtCard):
    """The decoded image at the cursor, large, with its coordinates and decode time."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Decoded at the cursor", parent)
        self.view = QtImageView(minimum=140)
        self.info = label("", "muted", selectable=True)
        self.save = QPushButton("Save…")
        self.save.setToolTip("save the decoded image as a PNG (its latent point goes into the file)")
        row = QHBoxLayout()
        row.addWidget(self.info, 1)
        row.addWidget(self.save)
        self.body.addWidget(self.view, 1)
        self.body.addLayout(row)


class QtEncodePanel(QtCard):
    """Open or drop an image, or pick a held-out sample: original, reconstruction and where it lands."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Encode", parent)
        pair = QHBoxLayout()
        self.original = QtImageView("original", minimum=72)
        self.recon = QtImageView("reconstruction", minimum=72)
        pair.addWidget(self.original)
        pair.addWidget(self.recon)
        self.body.addLayout(pair, 1)
        row = QHBoxLayout()
        self.sample = QSpinBox(minimum=0, maximum=0)
        self.sample.setToolTip("index of a held-out image shipped with the model")
        self.sample.setMaximumWidth(70)
        self.encode_sample = QPushButton("Encode")
        self.encode_sample.setToolTip("encode the held-out image with this index")
        self.open = QPushButton("Open…")
        self.open.setToolTip("encode an image file (or drop one anywhere on this tab)")
        row.addWidget(self.sample)
        row.addWidget(self.encode_sample, 1)
        row.addWidget(self.open)
        self.body.addLayout(row)
        self.info = label("or drop an image on this tab", "muted")
        self.body.addWidget(self.info)


class QtPointsPanel(QWidget):
    """Tabs: points A, B, C with interpolation and A - B + C; the sliders; each on its own page."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tabs = QTabWidget()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.tabs)

        # -- points, interpolation, arithmetic -----------------------------------------------------
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(8, 8, 8, 8)
        self.thumbs: dict[str, QtImageView] = {}
        self.set_buttons: dict[str, QPushButton] = {}
        for col, name in enumerate(POINTS):
            self.thumbs[name] = QtImageView(name, minimum=56)
            self.set_buttons[name] = QPushButton(f"Set {name}")
            self.set_buttons[name].setToolTip(f"make the cursor's point {name}")
            grid.addWidget(self.thumbs[name], 0, col)
            grid.addWidget(self.set_buttons[name], 1, col)
        self.result = QtImageView("A − B + C", minimum=56)
        self.arithmetic = QPushButton("A − B + C")
        self.arithmetic.setToolTip("latent arithmetic: the change from B to A applied to C; the cursor moves there")
        grid.addWidget(self.result, 0, 3)
        grid.addWidget(self.arithmetic, 1, 3)
        row = QHBoxLayout()
        self.steps = QSpinBox(minimum=2, maximum=64, value=10)
        self.mode = QComboBox()
        self.mode.addItem("Linear", "linear")
        self.mode.addItem("Spherical (slerp)", "slerp")
        self.interpolate = QPushButton("Interpolate A → B")
        self.play = QPushButton("Play")
        self.play.setCheckable(True)
        self.save_gif = QPushButton("Save GIF…")
        for w in (label("Steps"), self.steps, self.mode, self.interpolate, self.play, self.save_gif):
            row.addWidget(w)
        row.addStretch(1)
        grid.addLayout(row, 2, 0, 1, 4)
        self.strip = QtImageView(minimum=40)
        self.strip.setMinimumHeight(56)
        grid.addWidget(self.strip, 3, 0, 1, 4)
        grid.setRowStretch(0, 1)
        self.tabs.addTab(page, "Points · interpolate · A − B + C")

        # -- sliders -----------------------------------------------------------------------------------
        self.sliders = QtDimSliders()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.sliders)
        self.tabs.addTab(scroll, "Latent dimensions")

        self.kl = QtKlChart()


