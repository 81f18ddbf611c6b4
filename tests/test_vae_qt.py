"""The VAE Explorer tab offscreen on the tiny model: drag = decode, encode a held-out sample, interpolate, A - B + C."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import copy_model
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QMouseEvent

from genstudio.qt.qt_context import StudioContext
from genstudio.qt.qt_jobs import JobManager
from genstudio.runtime.registry import Registry
from genstudio.runtime.sessions import SessionConfig, SessionPool

pytestmark = pytest.mark.slow
WAIT_MS = 60_000  # the first view loads the model (safety check in a child process) on a busy 2-core box


@pytest.fixture
def tab(qtbot, tmp_path):
    from vae_tiny import tiny_vae_root

    from genstudio.qt.qt_vae import VAE_TAB

    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(tiny_vae_root(), "shipped")]),
                        pool=SessionPool(SessionConfig(provider="cpu", threads=1)), jobs=jobs,
                        output_dir=lambda: tmp_path)
    w = VAE_TAB.factory(ctx)
    qtbot.addWidget(w)
    w.resize(1280, 760)
    w.show()
    qtbot.waitUntil(lambda: w.view is not None and w.path is not None, timeout=WAIT_MS)
    yield w
    jobs.shutdown()


def test_tab_spec_is_registered():
    from genstudio.qt.qt_tabs import TAB_SPECS, load_tab_spec

    specs = {load_tab_spec(line).key: load_tab_spec(line) for line in TAB_SPECS}
    assert specs["vae"].title == "VAE Explorer"


def _mouse(widget, kind, pos: QPointF, buttons=Qt.MouseButton.LeftButton) -> None:
    button = Qt.MouseButton.LeftButton if kind != QMouseEvent.Type.MouseMove else Qt.MouseButton.NoButton
    ev = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    handler = {QMouseEvent.Type.MouseButtonPress: widget.mousePressEvent,
               QMouseEvent.Type.MouseMove: widget.mouseMoveEvent,
               QMouseEvent.Type.MouseButtonRelease: widget.mouseReleaseEvent}[kind]
    handler(ev)


def test_map_shows_codes_legend_mosaic_and_kl(tab):
    assert tab.map.mosaic is not None and tab.map.points.shape == (40, 2)
    assert len(tab.map.legend) == 10 and tab.colour_box.currentData() == "class"
    assert tab.points_panel.kl.kl.shape == (2,) and len(tab.points_panel.sliders.sliders) == 2
    assert set(tab.points) >= {"A", "B"} and tab.map.path is not None  # seeded points and path
    assert tab.live  # the tiny decoder is far under the live-decode limit
    assert not tab.grab().isNull()


def test_dragging_the_cursor_decodes_live(tab, qtbot):
    m = tab.map
    r = m.plot_rect()
    start = QPointF(r.left() + r.width() * 0.2, r.top() + r.height() * 0.5)
    decoded: list[float] = []
    tab.decoded.connect(decoded.append)
    _mouse(m, QMouseEvent.Type.MouseButtonPress, start)
    images = [tab.current_image.copy()]
    for k in range(1, 6):  # drag to the right: every move decodes at once, on the GUI thread
        _mouse(m, QMouseEvent.Type.MouseMove, QPointF(start.x() + k * r.width() * 0.12, start.y()))
        images.append(tab.current_image.copy())
    _mouse(m, QMouseEvent.Type.MouseButtonRelease, QPointF(start.x() + 5 * r.width() * 0.12, start.y()))
    assert len(decoded) == 6 and all(ms > 0 for ms in decoded)
    u, v = tab.view.plane.project(tab.current)[0]
    assert u == pytest.approx(m.cursor[0], abs=1e-4) and v == pytest.approx(m.cursor[1], abs=1e-4)
    assert images[-1].shape == (28, 28, 3)
    assert "ms" in tab.decode_panel.info.text()


def test_sliders_move_the_point(tab):
    tab.points_panel.sliders.sliders[1].setValue(100)
    assert tab.current[1] == pytest.approx(2.0)
    assert tab.map.cursor[1] == pytest.approx(2.0, abs=1e-4)


def test_encode_a_heldout_sample(tab, qtbot):
    with qtbot.waitSignal(tab.encoded, timeout=WAIT_MS):
        tab.encode_panel.sample.setValue(3)
        tab.encode_panel.encode_sample.click()
    assert np.allclose(tab.current, tab.view.heldout.codes[3], atol=1e-4)  # shipped codes are the same encoder's
    assert tab.encode_panel.recon.image is not None and "encoded" in tab.map.markers


def test_encode_a_file(tab, qtbot, tmp_path):
    from PIL import Image

    path = tmp_path / "shirt.png"
    Image.fromarray(np.full((32, 32, 3), 200, np.uint8)).save(path)
    with qtbot.waitSignal(tab.encoded, timeout=WAIT_MS):
        tab.encode_file(path)
    assert "shirt.png" in tab.encode_panel.info.text()


def test_encode_a_file_over_pillows_pixel_cap_says_so(tab, tmp_path, monkeypatch):
    from PIL import Image

    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 pixels: over twice the cap, a DecompressionBombError
    tab.encode_file(path)  # a dropped file: an exception here would reach only stderr
    assert "cannot read" in tab.status.text()


def test_interpolate_and_save_gif(tab, qtbot, tmp_path):
    tab.move_cursor(-1.0, -1.0)
    tab.set_point("A")
    tab.move_cursor(1.0, 1.5)
    tab.set_point("B")
    tab.points_panel.steps.setValue(7)
    tab.points_panel.mode.setCurrentIndex(1)  # slerp
    with qtbot.waitSignal(tab.interpolated, timeout=WAIT_MS):
        tab.points_panel.interpolate.click()
    assert tab.path.shape == (7, 2) and np.allclose(tab.path[0], tab.points["A"]) and np.allclose(tab.path[-1], tab.points["B"])
    assert tab.map.path.shape == (7, 2) and tab.frames.shape == (7, 28, 28, 3)
    with qtbot.waitSignal(tab.gif_saved, timeout=WAIT_MS) as blocker:
        tab.save_gif(tmp_path / "walk.gif")
    assert (tmp_path / "walk.gif").stat().st_size > 0 and blocker.args[0].endswith("walk.gif")
    tab.points_panel.play.setChecked(True)
    qtbot.waitUntil(lambda: tab._play_index >= 3, timeout=5000)
    tab.points_panel.play.setChecked(False)


def test_arithmetic(tab):
    for name, (u, v) in zip("ABC", ((1.0, 0.0), (0.0, 0.0), (0.0, 1.0)), strict=True):
        tab.move_cursor(u, v)
        tab.set_point(name)
    tab.points_panel.arithmetic.click()
    assert np.allclose(tab.current, [1.0, 1.0], atol=1e-5)
    assert tab.points_panel.result.image is not None and "A-B+C" in tab.map.markers


def test_save_into_a_folder_that_cannot_be_written_says_so(tab, tmp_path, monkeypatch):
    from genstudio.qt import qt_vae

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    target = blocker / "decoded.png"
    monkeypatch.setattr(qt_vae.QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "PNG (*.png)"))
    shown: list[str] = []
    tab.ctx.show_status = shown.append
    assert tab.current_image is not None
    tab.decode_panel.save.click()  # an exception here would reach only stderr
    assert "could not write" in tab.status.text() and shown and "could not write" in shown[-1]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("not-a")) == ["not-a-folder"]


def test_a_model_folder_with_codes_of_the_wrong_size_is_refused(qtbot, tmp_path):
    import shutil

    from vae_tiny import TINY_VAE, tiny_vae_root

    from genstudio.qt.qt_vae import VAE_TAB

    root = tmp_path / "models"
    shutil.copytree(tiny_vae_root() / TINY_VAE, root / TINY_VAE)
    folder = copy_model(root / TINY_VAE, root / "vae-a-codes")
    n = len(np.load(folder / "labels.npy"))
    np.save(folder / "codes.npy", np.random.default_rng(0).standard_normal((n, 3)).astype(np.float32))  # latent: 2-D
    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(root, "shipped")]),
                        pool=SessionPool(SessionConfig(provider="cpu", threads=1)), jobs=jobs,
                        output_dir=lambda: tmp_path)
    w = VAE_TAB.factory(ctx)
    qtbot.addWidget(w)
    w.model_box.setCurrentIndex(w.model_box.findData("vae-a-codes"))
    qtbot.waitUntil(lambda: "failed" in w.status.text(), timeout=WAIT_MS)  # not an exception in the tab's slot
    assert w.view is None and "held-out codes" in w.status.text()
    w.model_box.setCurrentIndex(w.model_box.findData(TINY_VAE))
    qtbot.waitUntil(lambda: w.view is not None, timeout=WAIT_MS)
    jobs.shutdown()


def test_a_failed_load_leaves_no_map_or_images_of_the_previous_model(qtbot, tmp_path, monkeypatch):
    """A model whose decoder cannot be opened, picked while the open model's interpolation is still running: the
    map, images and sliders of the open model go, the error shows on the map, and the old job's late result is
    dropped; picking the good model again brings everything back."""
    import shutil
    import threading

    from vae_tiny import TINY_VAE, tiny_vae_root

    from genstudio.engines.vae_view import to_rgb_u8
    from genstudio.qt import qt_vae
    from genstudio.qt.qt_vae import VAE_TAB

    root = tmp_path / "models"
    shutil.copytree(tiny_vae_root() / TINY_VAE, root / TINY_VAE)
    folder = copy_model(root / TINY_VAE, root / "vae-broken")
    (folder / "decoder.onnx").write_bytes(b"not an ONNX graph")
    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(root, "shipped")]),
                        pool=SessionPool(SessionConfig(provider="cpu", threads=1)), jobs=jobs,
                        output_dir=lambda: tmp_path)
    w = VAE_TAB.factory(ctx)
    qtbot.addWidget(w)
    w.resize(1280, 760)
    w.show()
    w.model_box.setCurrentIndex(w.model_box.findData(TINY_VAE))
    qtbot.waitUntil(lambda: w.view is not None and w.path is not None and not w.slots.running(), timeout=WAIT_MS)
    assert w.map.mosaic is not None and w.decode_panel.view.image is not None

    entered, release = threading.Event(), threading.Event()

    def held_interpolation(model, a, b, steps, mode):
        yield None
        entered.set()
        release.wait(WAIT_MS / 1000)
        path = np.stack([a, b])
        return path, to_rgb_u8(model.decode(path))

    monkeypatch.setattr(qt_vae, "interpolation_frames", held_interpolation)
    w.interpolate()
    job = w.slots.jobs["interpolate"]
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)  # past its last cancel point
    w.model_box.setCurrentIndex(w.model_box.findData("vae-broken"))
    release.set()
    qtbot.waitUntil(lambda: "failed" in w.status.text() and not w.slots.running(), timeout=WAIT_MS)
    assert job.state == "succeeded"  # the old model's interpolation arrived, and was dropped:
    assert w.view is None and w.path is None and w.frames is None and w.points == {}
    assert "vae-broken cannot be opened" in w.map.message
    m = w.map
    assert m.mosaic is None and m.points is None and m.cursor is None and m.path is None and m.markers == {}
    pp = w.points_panel
    for view in (w.decode_panel.view, w.encode_panel.recon, pp.result, pp.strip, *pp.thumbs.values()):
        assert view.image is None
    assert pp.sliders.sliders == [] and len(pp.kl.kl) == 0 and w.decode_panel.info.text() == ""
    for widget in (m, w.decode_panel, w.encode_panel, pp, w.colour_box):
        assert not widget.isEnabled(), widget
    r = m.plot_rect()
    _mouse(m, QMouseEvent.Type.MouseButtonPress, r.center())  # a drag that got through decodes nothing
    assert w.current is None and w.decode_panel.view.image is None

    w.model_box.setCurrentIndex(w.model_box.findData(TINY_VAE))
    qtbot.waitUntil(lambda: w.view is not None and w.path is not None, timeout=WAIT_MS)
    assert w.model.name == TINY_VAE and m.mosaic is not None and m.points.shape == (40, 2) and m.cursor is not None
    assert len(pp.sliders.sliders) == 2 and w.decode_panel.view.image is not None
    for widget in (m, w.decode_panel, w.encode_panel, pp, w.colour_box):
        assert widget.isEnabled(), widget
    _mouse(m, QMouseEvent.Type.MouseButtonPress, r.center())
    u, v = w.view.plane.project(w.current)[0]
    assert (u, v) == pytest.approx(m.to_plane(r.center().x(), r.center().y()), abs=1e-4)
    jobs.shutdown()
