"""The VAE Explorer's encode actions: a held-out sample, an opened or dropped file -> reconstruction, map marker.

A mixin of QtVaeTab (qt_vae.py): it uses the tab's view, job starter, encode panel and `set_current`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QFileDialog

from genstudio.engines.vae_view import to_rgb_u8


class VaeEncodeMixin:
    # -- encode --------------------------------------------------------------------------------------------
    def encode_heldout(self, index: int) -> None:
        if self.view is None or self.view.heldout.images is None:
            return
        index = min(max(index, 0), len(self.view.heldout.images) - 1)
        self.encode_image(self.view.heldout.images[index], f"held-out sample {index}")

    def encode_file(self, path: Path) -> None:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                image = np.asarray(img.convert("RGB"))
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as e:  # the bomb: over Pillow's cap
            self.status.setText(f"cannot read {path}: {e}")
            return
        self.encode_image(image, Path(path).name)

    def encode_image(self, image: np.ndarray, what: str) -> None:
        if self.view is None:
            return
        model = self.view.model

        def job():
            yield None
            mu, recon = model.reconstruct(np.asarray(image)[None])
            return image, mu[0], to_rgb_u8(recon)[0], what

        self._start("encode", job(), self._on_encoded)

    def _on_encoded(self, result) -> None:
        image, mu, recon, what = result
        shown = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
        self.encode_panel.original.set_image(np.ascontiguousarray(shown))
        self.encode_panel.recon.set_image(recon)
        self.points.pop("encoded", None)
        self.points["encoded"] = mu
        self.encode_panel.info.setText(f"{what} → the orange marker")
        self.set_current(mu)
        self.encoded.emit()

    def _open_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Encode an image", "", "Images (*.png *.jpg *.jpeg *.bmp *.gif)")
        if path:
            self.encode_file(Path(path))

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.encode_file(Path(urls[0].toLocalFile()))
            event.acceptProposedAction()
