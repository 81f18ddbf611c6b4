"""The Flow Density tab offscreen on the tiny model: heatmap, histogram, layer slider, samples, play, cursor."""

from __future__ import annotations

import numpy as np
import pytest
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
    import json
    import shutil

    from genstudio.qt.qt_flow import QtFlowTab

    root = tmp_path / "models"
    for name in ("flow-a", "flow-b"):
        shutil.copytree(tiny_flow_root() / TINY_NAME, root / name)
        manifest = json.loads((root / name / "model.json").read_text())
        (root / name / "model.json").write_text(json.dumps({**manifest, "name": name}))
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
