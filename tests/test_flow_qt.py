"""The Flow Density tab offscreen on the tiny model: heatmap, histogram, layer slider, samples, play, cursor."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import copy_model
from flow_tiny import TINY_NAME, tiny_flow_root
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
    from genstudio.qt.qt_flow import FLOW_TAB

    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(tiny_flow_root(), "shipped")]),
                        pool=SessionPool(SessionConfig(provider="cpu", threads=1)), jobs=jobs,
                        output_dir=lambda: tmp_path)
    with qtbot.waitSignal(jobs.job_finished, timeout=WAIT_MS):
        w = FLOW_TAB.factory(ctx)
        qtbot.addWidget(w)
        w.resize(1200, 720)
        w.show()
    qtbot.waitUntil(lambda: w.view is not None, timeout=WAIT_MS)
    yield w
    jobs.shutdown()


def test_tab_spec_is_registered():
    from genstudio.qt.qt_tabs import TAB_SPECS, load_tab_spec

    specs = {load_tab_spec(line).key: load_tab_spec(line) for line in TAB_SPECS}
    assert specs["flow"].title == "Flow Density"


def test_heatmap_histogram_and_quality(tab):
    assert tab.model_box.currentData() == TINY_NAME
    assert tab.density.image is not None and tab.density.image.width() >= 256
    assert tab.data.image is not None
    assert tab.view.grid.log_p.shape[0] >= 256
    assert "held-out NLL" in tab.quality_label.text() and "true entropy 2.144" in tab.quality_label.text()
    assert tab.density.points is not None and len(tab.density.points) == tab.count.value()
    before = tab.density.image.copy()
    tab.scale_box.setCurrentIndex(1)  # linear
    assert tab.density.image != before and tab.density.bar_labels[2] == "p(x)"
    assert not tab.grab().isNull()


def test_layer_slider_carries_the_samples_from_the_base(tab):
    view = tab.view
    assert tab.slider.value() == tab.slider.maximum()  # starts at the data layer
    assert np.allclose(tab.density.points, view.samples)
    tab.slider.setValue(0)
    assert np.allclose(tab.density.points, view.sample_layers[0])  # the Gaussian base
    assert "Gaussian base" in tab.layer_label.text()
    from genstudio.qt.qt_flow import SUBSTEPS

    tab.slider.setValue(SUBSTEPS // 2)  # halfway between layer 0 and layer 1
    half = 0.5 * (view.sample_layers[0] + view.sample_layers[1])
    assert np.allclose(tab.density.points, half, atol=1e-5)
    assert np.allclose(tab.density.lines, 0.5 * (view.grid_lines[0] + view.grid_lines[1]), atol=1e-5)


def test_sample_count_and_seed_resample(qtbot, tab):
    with qtbot.waitSignal(tab.samples_ready, timeout=WAIT_MS):
        tab.count.setValue(250)
    assert tab.view.samples.shape == (250, 2) and len(tab.density.points) == 250
    first = tab.view.samples.copy()
    with qtbot.waitSignal(tab.samples_ready, timeout=WAIT_MS):
        tab.seed.setValue(5)
    assert not np.allclose(first, tab.view.samples)


def test_a_seed_change_while_another_model_loads_still_shows_that_model(qtbot, tmp_path):

    from genstudio.qt.qt_flow import QtFlowTab

    root = tmp_path / "models"
    for name in ("flow-a", "flow-b"):
        copy_model(tiny_flow_root() / TINY_NAME, root / name)
    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(root, "shipped")]),
                        pool=SessionPool(SessionConfig(provider="cpu", threads=1)), jobs=jobs,
                        output_dir=lambda: tmp_path)
    w = QtFlowTab(ctx)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.view is not None and w.is_settled(), timeout=WAIT_MS)
    other = 1 - w.model_box.currentIndex()
    w.model_box.setCurrentIndex(other)  # starts loading the other model ...
    w.seed.setValue(7)  # ... and a resample before it arrives must not cancel that load
    qtbot.waitUntil(lambda: w.is_settled() and w.model.name == w.model_box.itemData(other), timeout=WAIT_MS)
    assert w.model_box.currentData() == w.model.name and w.view.seed == 7
    jobs.shutdown()


def test_play_animates_to_the_data_layer(qtbot, tab):
    tab.slider.setValue(0)
    tab.play.setChecked(True)
    assert tab.timer.isActive()
    qtbot.waitUntil(lambda: tab.slider.value() > 0, timeout=5000)
    qtbot.waitUntil(lambda: not tab.play.isChecked(), timeout=15000)
    assert tab.slider.value() == tab.slider.maximum() and not tab.timer.isActive()


def test_cursor_shows_log_p(tab):
    plot = tab.density
    r = plot.plot_rect()
    centre = QPointF(r.center())
    event = QMouseEvent(QMouseEvent.Type.MouseMove, centre, centre, Qt.MouseButton.NoButton,
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    plot.mouseMoveEvent(event)
    text = tab.cursor_label.text()
    assert text.startswith("log p(x) = ")
    x, y = plot.to_data(centre.x(), centre.y())
    assert float(text.split("=")[1].split()[0]) == pytest.approx(tab.view.grid.value_at(x, y), abs=1e-3)
    assert plot.to_data(1, 1) is None
    plot.leaveEvent(None)  # leaving keeps the last reading
    assert tab.cursor_label.text() == text


def test_empty_registry_says_how_to_build(qtbot, tmp_path):
    from genstudio.qt.qt_flow import QtFlowTab

    ctx = StudioContext(registry=Registry([(tmp_path, "shipped")]), pool=SessionPool(), jobs=JobManager(),
                        output_dir=lambda: tmp_path)
    w = QtFlowTab(ctx)
    qtbot.addWidget(w)
    assert "genstudio export flow" in w.density.message and w.model_box.count() == 0


def _two_flows(qtbot, tmp_path, *, b_extra=None):
    """A tab over flow-a and flow-b (copies of the tiny model; flow-b's manifest extra updated by b_extra),
    settled on flow-a."""
    import json
    import shutil

    from genstudio.qt.qt_flow import QtFlowTab

    root = tmp_path / "models"
    for name in ("flow-a", "flow-b"):
        shutil.copytree(tiny_flow_root() / TINY_NAME, root / name)
        manifest = json.loads((root / name / "model.json").read_text())
        manifest.update(name=name, title=name)
        if name == "flow-b" and b_extra is not None:
            manifest["extra"] = b_extra(dict(manifest["extra"]))
        (root / name / "model.json").write_text(json.dumps(manifest))
    jobs = JobManager()
    ctx = StudioContext(registry=Registry([(root, "shipped")]),
                        pool=SessionPool(SessionConfig(provider="cpu", threads=1)), jobs=jobs,
                        output_dir=lambda: tmp_path)
    w = QtFlowTab(ctx)
    qtbot.addWidget(w)
    w.resize(1200, 720)
    w.show()
    qtbot.waitUntil(lambda: w.view is not None and w.is_settled(), timeout=WAIT_MS)
    assert w.model.name == "flow-a"
    return w, jobs


def _hover(plot, x, y):
    """A mouse move over `plot` at data coordinates (x, y)."""
    sx, sy = plot.to_screen(np.array([x, y], np.float64))
    pos = QPointF(float(sx), float(sy))
    plot.mouseMoveEvent(QMouseEvent(QMouseEvent.Type.MouseMove, pos, pos, Qt.MouseButton.NoButton,
                                    Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))


def test_a_failed_load_does_not_leave_the_previous_model_on_show(qtbot, tmp_path):
    def no_range(extra):
        extra.pop("range")  # the load of flow-b fails (KeyError) after the registry listed it
        return extra

    w, jobs = _two_flows(qtbot, tmp_path, b_extra=no_range)
    _hover(w.density, 0.0, 0.0)
    assert w.cursor_label.text().startswith("log p(x) = ") and "held-out NLL" in w.quality_label.text()
    w.model_box.setCurrentIndex(w.model_box.findData("flow-b"))
    qtbot.waitUntil(lambda: w.is_settled(), timeout=WAIT_MS)
    assert w.status.text().startswith("failed:")
    # flow-a's picture, numbers and reading were left under flow-b's name
    assert w.view is None and w.model is None
    assert w.density.image is None and w.data.image is None and w.density.points is None
    assert "flow-b could not be loaded" in w.density.message
    assert w.quality_label.text() == "" and not w.cursor_label.text().startswith("log p(x)")
    _hover(w.density, 0.0, 0.0)  # and the readout reads nothing of flow-a's
    assert not w.cursor_label.text().startswith("log p(x)")
    w.model_box.setCurrentIndex(w.model_box.findData("flow-a"))  # picking a loadable model again shows it
    qtbot.waitUntil(lambda: w.view is not None and w.is_settled(), timeout=WAIT_MS)
    assert w.model.name == "flow-a" and w.density.image is not None and "held-out NLL" in w.quality_label.text()
    jobs.shutdown()


def test_the_log_p_reading_is_the_current_models_after_a_switch(qtbot, tmp_path):
    def small_range(extra):
        extra["range"] = [v / 4 for v in extra["range"]]
        return extra

    w, jobs = _two_flows(qtbot, tmp_path, b_extra=small_range)
    x0, x1, y0, y1 = w.view.grid.range
    corner = (x0 + 0.05 * (x1 - x0), y0 + 0.05 * (y1 - y0))  # inside flow-a's range, outside flow-b's
    middle = (0.1 * x1, 0.1 * y1)  # inside both
    _hover(w.density, *middle)
    _hover(w.density, *corner)
    assert w.cursor_label.text().startswith("log p(x) = ")
    with qtbot.waitSignal(w.view_ready, timeout=WAIT_MS):
        w.model_box.setCurrentIndex(w.model_box.findData("flow-b"))
    assert w.model.name == "flow-b"
    assert not w.cursor_label.text().startswith("log p(x)")  # was flow-a's value at a point flow-b does not cover
    _hover(w.density, 0.0, 0.0)
    x, y = w._hover
    with qtbot.waitSignal(w.view_ready, timeout=WAIT_MS):
        w.model_box.setCurrentIndex(w.model_box.findData("flow-a"))
    v = w.view.grid.value_at(x, y)
    assert float(w.cursor_label.text().split("=")[1].split()[0]) == pytest.approx(v, abs=1e-3)
    jobs.shutdown()


def test_a_sample_count_of_zero_still_loads_a_model(qtbot, tab):
    with qtbot.waitSignal(tab.samples_ready, timeout=WAIT_MS):
        tab.count.setValue(0)
    assert tab.view.samples.shape == (0, 2)
    old_view = tab.view
    tab._load()  # what picking a model does: it failed on 0 samples ("need at least one array")
    qtbot.waitUntil(tab.is_settled, timeout=WAIT_MS)
    assert not tab.status.text().startswith("failed") and tab.view is not old_view
    assert tab.view.samples.shape == (0, 2) and tab.view.sample_layers.shape[0] == tab.model.n_layers + 1
    assert not tab.status.text().startswith("failed") and "held-out NLL" in tab.quality_label.text()
    tab.slider.setValue(0)
    assert len(tab.density.points) == 0


def test_the_reading_at_the_plots_top_and_right_edge(tab):
    g = tab.view.grid
    x0, x1, y0, y1 = g.range
    assert g.value_at(x1, y1) == pytest.approx(float(g.log_p[-1, -1]))  # was None: the last pixel read nothing
    assert g.value_at(x0, y0) == pytest.approx(float(g.log_p[0, 0]))
    assert g.value_at(x1 + 1e-3, y0) is None and g.value_at(x0, y1 + 1e-3) is None
    assert g.value_at(float("nan"), 0.0) is None
    plot = tab.density
    r = plot.plot_rect()
    event = QMouseEvent(QMouseEvent.Type.MouseMove, r.topRight(), r.topRight(), Qt.MouseButton.NoButton,
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    plot.mouseMoveEvent(event)
    assert tab.cursor_label.text().startswith(f"log p(x) = {float(g.log_p[-1, -1]):.3f}")


def test_the_reading_of_a_huge_or_missing_log_p(tab):
    g = tab.view.grid
    g.log_p[:] = 800.0  # p(x) = e^800 does not fit in a float: the readout raised OverflowError
    _hover(tab.density, 0.0, 0.0)
    assert tab.cursor_label.text().startswith("log p(x) = 800.000   p(x) = inf")
    g.log_p[:] = -np.inf
    _hover(tab.density, 0.1, 0.1)
    assert tab.cursor_label.text().startswith("log p(x) = -inf   p(x) = 0 ")


def test_infinite_and_missing_log_p_colours():
    from genstudio.engines.flow_render import colorize, scale_log_density, viridis_lut

    lp = np.array([[0.0, np.inf], [-np.inf, np.nan]])  # row 0 is the bottom of the picture
    top, bottom = viridis_lut()[-1].tolist(), viridis_lut()[0].tolist()
    for scale in ("log", "linear"):
        values, _lo, _hi = scale_log_density(lp, scale)
        assert np.all((values >= 0) & (values <= 1)), scale
        rgb = colorize(values)[::-1]  # back to row 0 at the bottom
        assert rgb[0, 1].tolist() == top, scale  # +inf is the densest colour (was the emptiest on the linear scale)
        assert rgb[0, 0].tolist() == top and rgb[1, 0].tolist() == bottom and rgb[1, 1].tolist() == bottom, scale
