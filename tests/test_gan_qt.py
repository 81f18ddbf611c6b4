"""The GAN Faces tab offscreen on the tiny GAN: grid, new batch, truncation, select/edit/save, vary, morph + GIF."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import copy_model
from PIL import Image
from PySide6.QtCore import Qt

from genstudio.qt.qt_context import StudioContext
from genstudio.qt.qt_jobs import JobManager
from genstudio.runtime.imaging import read_png_settings
from genstudio.runtime.registry import Registry
from genstudio.runtime.sessions import SessionConfig, SessionPool

pytestmark = pytest.mark.slow
WAIT_MS = 60_000


@pytest.fixture
def tab(qtbot, tmp_path):
    from gan_tiny import tiny_gan_with_directions

    from genstudio.qt.qt_gan import QtGanTab

    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(tiny_gan_with_directions(tmp_path), "shipped")]),
                        pool=SessionPool(SessionConfig(provider="cpu", threads=1)), jobs=jobs,
                        output_dir=lambda: tmp_path)
    w = QtGanTab(ctx)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitUntil(lambda: len(w.faces) == 16 and w.morph_frames is not None, timeout=WAIT_MS)
    yield w
    jobs.shutdown()


def _tiles(tab) -> np.ndarray:
    """What the grid shows, as uint8 (N, H, W, 3)."""
    out = []
    for img in tab.grid.images:
        img = img.convertToFormat(img.Format.Format_RGB888)
        arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())
        out.append(arr[:, :img.width() * 3].reshape(img.height(), img.width(), 3).copy())
    return np.stack(out)


def test_tab_spec_is_registered():
    from genstudio.qt.qt_tabs import TAB_SPECS, load_tab_spec

    specs = {load_tab_spec(line).key: load_tab_spec(line) for line in TAB_SPECS}
    assert specs["gan"].title == "GAN Faces"


def test_grid_is_the_seeded_batch_and_n_makes_a_new_one(tab, qtbot):
    from genstudio.engines.gan import seeded_z

    assert tab.grid.columns == 4 and len(tab.grid.images) == 16
    np.testing.assert_array_equal(np.stack([f.z for f in tab.faces]), seeded_z(16, tab.model.z_dim, 0))
    assert tab.selected is tab.faces[0] and tab.grid.marks == {"A": 0, "B": 15}
    first = _tiles(tab)
    with qtbot.waitSignal(tab.grid_ready, timeout=WAIT_MS):
        qtbot.keyClick(tab.grid, Qt.Key.Key_N)
    assert tab.seed.value() == 1
    assert not np.array_equal(first, _tiles(tab))
    with qtbot.waitSignal(tab.grid_ready, timeout=WAIT_MS):
        tab.seed.setValue(0)
    np.testing.assert_array_equal(first, _tiles(tab))  # same seed, same faces
    with qtbot.waitSignal(tab.grid_ready, timeout=WAIT_MS):
        tab.size_box.setCurrentIndex(tab.size_box.findData(3))
    assert len(tab.faces) == 9 and tab.grid.columns == 3


def test_truncation_zero_renders_the_mean_face_everywhere(tab, qtbot):
    tab.psi.setValue(0)
    qtbot.waitUntil(lambda: not tab.slots.running(), timeout=WAIT_MS)
    tiles = _tiles(tab).astype(int)
    assert np.abs(tiles - tiles[0]).max() <= 1
    assert tab.psi_label.text() == "ψ 0.00"
    tab.psi.setValue(100)
    qtbot.waitUntil(lambda: not tab.slots.running(), timeout=WAIT_MS)
    assert np.abs(_tiles(tab).astype(int) - tiles[0]).max() > 1


def test_selecting_editing_and_saving_a_face(tab, qtbot, tmp_path):
    tab.grid.selected.emit(5)
    assert tab.selected is tab.faces[5] and tab.grid.marks["A"] == 5
    assert list(tab.sliders.sliders) == ["first axis", "second axis"]
    assert tab.sliders.sliders["first axis"].toolTip().startswith(  # what the export measured for the slider
        "at +2, 50% of faces without it gain it; at -2, 75% of faces with it lose it")
    assert tab.sliders.sliders["second axis"].toolTip() == ""
    before = tab.face_w(tab.selected).copy()
    rendered: list[float] = []
    tab.face_rendered.connect(rendered.append)
    tab.sliders.set_amount("second axis", 1.5)
    assert rendered and tab.selected.edits == {"second axis": pytest.approx(1.5)}
    after = tab.face_w(tab.selected)
    expected = before.copy()
    expected[0, 1] += 1.5 * 2.0  # amount x scale along unit vector e1
    np.testing.assert_allclose(after, expected, atol=1e-5)
    # another face has its own (no) edits; coming back restores the slider
    tab.grid.selected.emit(2)
    assert tab.sliders.amounts() == {}
    tab.grid.selected.emit(5)
    assert tab.sliders.amounts() == {"second axis": pytest.approx(1.5)}
    path = tab.save_face(tab.selected, tmp_path / "face.png")
    s = read_png_settings(path)
    assert s["seed"] == 0 and s["index"] == 5 and s["edits"] == {"second axis": pytest.approx(1.5)}
    assert len(s["z"]) == tab.model.z_dim and len(s["w"]) == tab.model.w_dim
    assert Image.open(path).size == (28, 28)  # the Fashion-MNIST GAN crops its 32x32 render
    tab.reset_edits.click()
    assert tab.selected.edits == {} and tab.sliders.amounts() == {}
    grid = tab.save_grid_png(tmp_path / "grid.png")
    assert read_png_settings(grid)["n"] == 16


def test_variations_are_near_and_selectable(tab, qtbot):
    tab.grid.selected.emit(3)
    tab.make_variations()
    qtbot.waitUntil(lambda: len(tab.variations) == 8, timeout=WAIT_MS)
    base = tab.faces[3].z
    for v in tab.variations:
        assert 0 < np.linalg.norm(v.z - base) < np.linalg.norm(base)
    tab.vary_grid.selected.emit(2)
    assert tab.selected is tab.variations[2] and tab.grid.marks["A"] is None
    assert "variation 3 of seed 0, face 3" in tab.face_info.text()


def test_morph_strip_play_and_gif(tab, qtbot, tmp_path):
    tab.grid.selected.emit(1)
    tab.grid.marked_b.emit(7)
    with qtbot.waitSignal(tab.morphed, timeout=WAIT_MS):
        tab.steps.setValue(6)
        tab.make_morph()
    assert tab.morph_frames.shape[0] == 6
    np.testing.assert_array_equal(tab.morph_frames[0], _tiles(tab)[1])
    np.testing.assert_array_equal(tab.morph_frames[-1], _tiles(tab)[7])
    tab.play.setChecked(True)
    qtbot.wait(200)
    tab.play.setChecked(False)
    with qtbot.waitSignal(tab.gif_saved, timeout=WAIT_MS) as sig:
        tab.save_gif(tmp_path / "morph.gif")
    gif = Image.open(sig.args[0])
    assert gif.n_frames == 10 and gif.size == (56, 56)  # there and back, doubled in size


def test_no_model_shows_how_to_build_one(qtbot, tmp_path):
    from genstudio.qt.qt_gan import QtGanTab

    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(tmp_path, "shipped")]), pool=SessionPool(SessionConfig(provider="cpu")),
                        jobs=jobs, output_dir=lambda: tmp_path)
    w = QtGanTab(ctx)
    qtbot.addWidget(w)
    assert "genstudio export gan" in w.grid.message and w.is_settled()
    jobs.shutdown()


def test_new_directions_leave_no_old_widgets_drawn(tab):
    """The old rows are hidden at once: their deletion waits for an event loop that a nested one may not run."""
    from PySide6.QtWidgets import QApplication, QWidget

    tab.sliders.set_directions(["only"])
    QApplication.processEvents()  # shows the new rows; deleteLater's events wait for an event loop
    shown = [w for w in tab.sliders.findChildren(QWidget) if not w.isHidden()]
    assert len(shown) == 4  # the one row: name, slider, value, reset


def test_save_into_a_folder_that_cannot_be_written_says_so(tab, tmp_path, monkeypatch):
    from genstudio.qt import qt_gan

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    shown: list[str] = []
    tab.ctx.show_status = shown.append
    for name, save in (("face.png", tab.save_face_button.click), ("grid.png", tab.save_grid.click)):
        target = blocker / name
        monkeypatch.setattr(qt_gan.QFileDialog, "getSaveFileName", lambda *a, t=target, **k: (str(t), "PNG (*.png)"))
        tab.status.setText("")
        save()  # an exception here would reach only stderr
        assert "could not write" in tab.status.text() and name in tab.status.text(), name
        assert shown and "could not write" in shown[-1]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("not-a")) == ["not-a-folder"]


def test_a_broken_model_folder_is_refused_and_the_tab_goes_on(qtbot, tmp_path):
    import json
    import shutil

    from gan_tiny import TINY_GAN, tiny_gan_with_directions

    from genstudio.qt.qt_gan import QtGanTab

    root = tiny_gan_with_directions(tmp_path)
    good = root / TINY_GAN

    def broken(name: str, change) -> None:
        folder = root / name
        shutil.copytree(good, folder)
        data = json.loads((folder / "model.json").read_text())
        data["name"] = name
        change(folder, data)
        (folder / "model.json").write_text(json.dumps(data))

    broken("gan-a-truncation", lambda f, d: d["defaults"].update(truncation="high"))
    broken("gan-b-steps", lambda f, d: d["defaults"].update(morph_steps="ten"))
    broken("gan-c-mean", lambda f, d: (f / "w_avg.npy").write_bytes(b"not an npy"))
    broken("gan-d-directions", lambda f, d: d["extra"]["directions"][0].update(index=99))
    broken("gan-e-no-z-dim", lambda f, d: d["extra"].pop("z_dim"))
    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(root, "shipped")]), pool=SessionPool(SessionConfig(provider="cpu")),
                        jobs=jobs, output_dir=lambda: tmp_path)
    w = QtGanTab(ctx)
    qtbot.addWidget(w)
    names = [w.model_box.itemData(i) for i in range(w.model_box.count())]
    for name in names:
        if name == TINY_GAN:
            continue
        w.model_box.setCurrentIndex(w.model_box.findData(name))  # an exception here would leave the tab half-set
        assert w.model is None and f"{name} cannot be opened" in w.status.text(), name
        assert "cannot be opened" in w.grid.message and w.faces == []
        w.save_face_button.click()
        w.save_grid.click()
    w.model_box.setCurrentIndex(w.model_box.findData(TINY_GAN))
    qtbot.waitUntil(lambda: len(w.faces) == 16, timeout=WAIT_MS)
    assert w.model.name == TINY_GAN
    jobs.shutdown()


def test_a_model_imported_elsewhere_joins_the_picker_and_the_open_model_stays(tab, tmp_path):
    import json
    import shutil

    root = tab.ctx.registry.roots[0][0]
    other = root / "gan-other"
    shutil.copytree(tab.model.entry.folder, other)
    manifest = json.loads((other / "model.json").read_text())
    manifest["name"] = "gan-other"
    (other / "model.json").write_text(json.dumps(manifest))
    tab.ctx.registry.refresh()
    model, faces = tab.model, tab.faces
    tab.models_changed()
    names = [tab.model_box.itemData(i) for i in range(tab.model_box.count())]
    assert "gan-other" in names and tab.model_box.currentData() == model.name
    assert tab.model is model and tab.faces is faces and not tab.slots.running()  # nothing reloaded


def _add_broken_models(tab) -> None:
    """Two copies of the open model that cannot be opened: a bad mean latent (refused as the folder is read) and a
    bad mapping graph (read only when the first batch runs)."""

    root = tab.ctx.registry.roots[0][0]
    for name, broken in (("gan-broken-mean", "w_avg.npy"), ("gan-broken-graph", "mapping.onnx")):
        folder = copy_model(tab.model.entry.folder, root / name)
        (folder / broken).write_bytes(b"not what the file should hold")
    tab.ctx.registry.refresh()
    tab.models_changed()


def _shows_no_model(tab, name: str) -> None:
    from PySide6.QtWidgets import QApplication, QWidget

    QApplication.processEvents()
    assert tab.model is None and f"{name} cannot be opened" in tab.status.text(), tab.status.text()
    assert f"{name} cannot be opened" in tab.grid.message and tab.grid.images == []  # the error, not the old faces
    assert tab.faces == [] and tab.selected is None and tab.variations == [] and tab.morph_frames is None
    assert tab.face_view.image is None and tab.morph_strip.image is None and tab.morph_preview.image is None
    assert tab.sliders.sliders == {} and not [w for w in tab.sliders.findChildren(QWidget) if not w.isHidden()]
    assert tab.face_info.text() == ""
    for w in (tab.grid, tab.sliders, tab.new_batch, tab.vary, tab.morph_button, tab.save_face_button, tab.psi):
        assert not w.isEnabled(), w


def test_a_failed_load_leaves_no_faces_or_sliders_of_the_previous_model(tab, qtbot):
    from gan_tiny import TINY_GAN

    _add_broken_models(tab)
    assert len(tab.sliders.sliders) == 2 and tab.face_view.image is not None
    for name in ("gan-broken-mean", "gan-broken-graph"):
        tab.model_box.setCurrentIndex(tab.model_box.findData(name))
        qtbot.waitUntil(lambda: "cannot be opened" in tab.status.text() or "failed" in tab.status.text(),
                        timeout=WAIT_MS)
        _shows_no_model(tab, name)
        qtbot.waitUntil(tab.is_settled, timeout=WAIT_MS)  # `genstudio shot` does not wait out its timeout
        tab._edit_moved("first axis", 1.0)  # a slider signal still queued: nothing renders, nothing raises
        assert tab.face_view.image is None
    tab.model_box.setCurrentIndex(tab.model_box.findData(TINY_GAN))
    qtbot.waitUntil(lambda: len(tab.faces) == 16 and tab.morph_frames is not None, timeout=WAIT_MS)
    assert tab.model.name == TINY_GAN and list(tab.sliders.sliders) == ["first axis", "second axis"]
    assert len(tab.grid.images) == 16 and tab.face_view.image is not None and tab.grid.message == ""
    for w in (tab.grid, tab.sliders, tab.new_batch, tab.vary, tab.morph_button, tab.save_face_button, tab.psi):
        assert w.isEnabled(), w
    tab.sliders.set_amount("first axis", 1.0)
    assert tab.selected.edits == {"first axis": pytest.approx(1.0)}


def test_a_job_of_the_previous_model_ending_after_a_failed_load_shows_nothing(tab, qtbot, monkeypatch):
    """The failed load cancels the morph, but a job past its last yield still ends as succeeded."""
    import threading

    from gan_tiny import TINY_GAN

    from genstudio.qt import qt_gan
    from genstudio.runtime.jobs import Progress

    _add_broken_models(tab)
    entered, release = threading.Event(), threading.Event()

    def held_morph(model, a, b, steps, psi):
        yield Progress(0, 1, "morphing")
        entered.set()
        release.wait(WAIT_MS / 1000)
        return model.morph(a.z, b.z, steps, psi)[1]

    monkeypatch.setattr(qt_gan, "morph_job", held_morph)
    tab.make_morph()
    job = tab.slots.jobs["morph"]
    qtbot.waitUntil(entered.is_set, timeout=WAIT_MS)  # past its last cancel point
    tab.model_box.setCurrentIndex(tab.model_box.findData("gan-broken-mean"))
    release.set()
    qtbot.waitUntil(lambda: not job.is_running(), timeout=WAIT_MS)
    assert job.state == "succeeded"  # the old model's morph arrived ...
    _shows_no_model(tab, "gan-broken-mean")  # ... and was dropped
    tab.model_box.setCurrentIndex(tab.model_box.findData(TINY_GAN))
    qtbot.waitUntil(lambda: len(tab.faces) == 16 and tab.morph_frames is not None, timeout=WAIT_MS)
    assert tab.morph_strip.image is not None
