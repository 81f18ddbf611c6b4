"""The studio shell offscreen: main window, Models tab (list, details, import, errors), settings, themes, shot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import make_model_folder, make_tiny_onnx
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QPushButton

from genstudio.qt import qt_settings as st
from genstudio.qt.app import build_main_window
from genstudio.qt.qt_theme import apply_theme, is_dark
from genstudio.runtime import paths
from genstudio.runtime.jobs import Progress
from genstudio.runtime.sessions import SessionConfig, SessionPool

WAIT_MS = 30_000  # a checker child process per model on a shared 2-core machine; normally well under 2 s


def wait_settled(qtbot, tab) -> None:
    if not tab.is_settled():
        with qtbot.waitSignal(tab.settled, timeout=WAIT_MS):
            pass


@pytest.fixture
def studio(qtbot, qapp, models_root):
    make_model_folder(models_root / "tiny")
    window = build_main_window(pool=SessionPool(), settings=st.open_settings())
    qtbot.addWidget(window)
    window.show()
    tab = window.tab_widget("models")
    wait_settled(qtbot, tab)
    yield window, tab
    window.close()
    apply_theme(qapp, "system")


# -- the window ----------------------------------------------------------------------------------
def test_main_window_builds_with_the_models_tab(studio):
    window, tab = studio
    assert window.tab_keys()[0] == "models"
    assert window.current_tab_key() == "models"
    assert window.tabs.tabText(0) == "Models"
    names = set(window.action_collection)
    assert {"file_open_model", "file_save_output", "file_quit", "help_about", "view_theme_light",
            "view_theme_dark", "view_theme_system"} <= names
    assert all(re.fullmatch(r"(file|view|jobs|help)_[a-z_]+", n) for n in names)
    assert window.action_collection["file_quit"].shortcut().toString()
    assert [a.text().replace("&", "") for a in window.menuBar().actions()] == ["File", "View", "Jobs", "Help"]
    assert window.toolbar.actions()
    assert window.status.provider_label.text().startswith("Provider:")
    assert re.search(r"Memory: [\d.]+ [KMG]?B", window.status.memory_label.text())


def test_models_tab_lists_the_model_and_shows_its_details(studio):
    _window, tab = studio
    assert tab.list.names() == ["tiny"]
    entry = tab.current_entry()
    assert entry is not None and entry.name == "tiny"
    d = tab.details
    assert d.title.text() == "Tiny test model"
    assert d.status.text() == "Ready"
    assert d.overview.value("Family") == "onnx"
    assert d.overview.value("Parameters") == "8"
    assert "opset" in d.overview.value("ONNX")
    assert d.overview.value("Provider in use") not in ("", "-", "checking…")
    assert d.files.column_texts(0) == ["model.onnx"] and d.files.column_texts(1) == ["model"]
    assert d.io.column_texts(1) == ["x", "y"]
    assert d.io.column_texts(2) == ["float32", "float32"]
    assert d.io.column_texts(3) == ["[batch, 4]", "[batch, 4]"]
    assert sorted(d.ops.column_texts(0)) == ["Add", "Mul"]
    assert d.provenance.value("License") == "MIT"
    assert d.metrics.value("note") == "test"
    assert "model.onnx" in entry.reports


def test_empty_selection_shows_the_empty_state(studio):
    _window, tab = studio
    tab.list.setCurrentRow(-1)
    assert tab.details.stack.currentWidget() is tab.details.empty_page
    assert "Select a model" in tab.details.empty_label.text()


def test_broken_model_folder_is_listed_with_its_reason(qtbot, studio, models_root):
    _window, tab = studio
    broken = models_root / "broken"
    broken.mkdir()
    (broken / "model.json").write_text('{"family": "onnx", "name": "broken", "version": "1", '
                                       '"files": [{"path": "missing.onnx", "role": "model"}]}')
    tab.refresh()
    assert tab.list.names() == ["broken", "tiny"]
    tab.list.setCurrentRow(0)
    assert tab.details.status.text() == "Not ready: missing.onnx (model) is missing"
    assert "missing.onnx (model) is missing" in tab.list.item(0).toolTip()
    assert not tab.details.bench_button.isEnabled()


def test_a_file_refused_by_the_deep_check_marks_the_model_not_ready(qtbot, studio, models_root):
    _window, tab = studio
    fake = models_root / "fake"
    fake.mkdir()
    (fake / "model.onnx").write_bytes(b"not a protobuf at all")
    (fake / "model.json").write_text('{"family": "onnx", "name": "fake", "version": "1", '
                                     '"files": [{"path": "model.onnx", "role": "model"}]}')
    tab.refresh()
    assert tab.list.names() == ["fake", "tiny"]
    with qtbot.waitSignal(tab.details_filled, timeout=WAIT_MS):
        tab.list.setCurrentRow(0)  # listed as ready by the quick scan; the checker refuses the file
    entry = tab.current_entry()
    assert not entry.ready and "not a valid ONNX model" in entry.error
    assert tab.details.status.text().startswith("Not ready: model.onnx: not a valid ONNX model")
    assert "not a valid ONNX model" in tab.list.item(0).toolTip()
    assert not tab.details.bench_button.isEnabled()


def test_import_a_model_folder(qtbot, studio, tmp_path):
    _window, tab = studio
    source = make_model_folder(tmp_path / "incoming" / "other", name="other")
    with qtbot.waitSignal(tab.imported, timeout=WAIT_MS) as blocker:
        tab.import_paths([source])
    assert [e.name for e in blocker.args[0]] == ["other"]
    assert (paths.user_models_dir() / "other" / "model.json").is_file()
    assert "other" in tab.list.names()
    assert tab.current_entry().name == "other"
    wait_settled(qtbot, tab)


@pytest.mark.slow
def test_an_imported_model_reaches_the_tabs_already_open(qtbot, studio):
    from gan_tiny import tiny_gan_folder

    window, tab = studio
    gan_tab = window.tab_widget("gan")
    assert gan_tab.model_box.count() == 0
    with qtbot.waitSignal(tab.imported, timeout=WAIT_MS):
        tab.import_paths([tiny_gan_folder()])
    assert gan_tab.model_box.currentData() == "gan-fashion-mnist"
    qtbot.waitUntil(lambda: len(gan_tab.faces) == 16, timeout=WAIT_MS)
    wait_settled(qtbot, tab)



def test_a_model_copied_in_or_deleted_by_hand_reaches_the_open_tabs_on_refresh(qtbot, studio, models_root):
    import shutil

    from gan_tiny import tiny_gan_folder

    window, tab = studio
    gan_tab = window.tab_widget("gan")
    assert gan_tab.model_box.count() == 0
    shutil.copytree(tiny_gan_folder(), models_root / "by-hand")
    window.action_collection["view_refresh"].trigger()
    assert gan_tab.model_box.currentData() == "gan-fashion-mnist"
    qtbot.waitUntil(lambda: len(gan_tab.faces) == 16, timeout=WAIT_MS)
    shutil.rmtree(models_root / "by-hand")
    window.action_collection["view_refresh"].trigger()
    assert gan_tab.model_box.count() == 0 and gan_tab.model is None and gan_tab.faces == []
    assert not gan_tab.sliders.sliders and not gan_tab.new_batch.isEnabled() and "No" in gan_tab.grid.message
    wait_settled(qtbot, tab)

def test_import_a_bare_onnx_file(qtbot, studio, tmp_path):
    _window, tab = studio
    graph = make_tiny_onnx(tmp_path / "drop" / "my graph.onnx")
    with qtbot.waitSignal(tab.imported, timeout=WAIT_MS) as blocker:
        tab.import_paths([graph])
    (entry,) = blocker.args[0]
    assert entry.name == "my-graph" and entry.family == "onnx" and entry.ready
    assert (paths.user_models_dir() / "my-graph" / "my graph.onnx").is_file()
    assert tab.current_entry().name == "my-graph"


def test_import_of_a_broken_folder_shows_an_error_and_copies_nothing(qtbot, studio, tmp_path):
    _window, tab = studio
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.onnx").write_bytes(b"this is not a protobuf")
    (bad / "model.json").write_text('{"family": "onnx", "name": "bad", "version": "1", '
                                    '"files": [{"path": "model.onnx", "role": "model"}]}')
    with qtbot.waitSignal(tab.import_failed, timeout=WAIT_MS) as blocker:
        tab.import_paths([bad])
    assert "not a valid ONNX model" in blocker.args[0]
    box = tab.last_message
    assert box.text() == "This model was not imported; nothing of it was copied."
    assert box is not None and box.isVisible()
    assert "not a valid ONNX model" in box.informativeText()
    user = paths.user_models_dir()
    assert not user.exists() or not any(user.iterdir())
    assert tab.list.names() == ["tiny"]
    box.close()


def test_dropping_a_folder_imports_it(qtbot, studio, tmp_path):
    _window, tab = studio
    source = make_model_folder(tmp_path / "dragged" / "dropped", name="dropped")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(source))])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(tab, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(tab.imported, timeout=WAIT_MS):
        QApplication.sendEvent(tab, drop)
    assert "dropped" in tab.list.names()


def test_benchmark_button_fills_the_table(qtbot, studio):
    _window, tab = studio
    with qtbot.waitSignal(tab.benchmark_done, timeout=WAIT_MS) as blocker:
        tab.details.bench_button.click()
    rows = blocker.args[0]
    assert any(r.provider == "CPUExecutionProvider" and r.runs > 0 for r in rows)
    assert tab.details.bench.isVisibleTo(tab.details)
    assert "CPU" in [t.upper() for t in tab.details.bench.column_texts(0)]


def test_benchmark_of_a_second_model_while_one_runs_says_why_it_waits(qtbot, studio, models_root, monkeypatch):
    import threading

    from genstudio.qt import qt_models

    window, tab = studio
    release = threading.Event()

    def slow_benchmark(entry, threads=None):
        yield Progress(0, 1, "benchmarking")
        release.wait(WAIT_MS / 1000)
        return []

    monkeypatch.setattr(qt_models, "benchmark_model", slow_benchmark)
    make_model_folder(models_root / "other", name="other")
    tab.populate(keep=str(models_root / "tiny"))
    wait_settled(qtbot, tab)
    with qtbot.waitSignal(tab.benchmark_done, timeout=WAIT_MS):
        assert tab.run_benchmark() is not None
        tab.list.select_name("other")
        wait_settled(qtbot, tab)
        tab.details.bench_button.click()  # was silently ignored while the first benchmark ran
        assert "already running" in window.statusBar().currentMessage()
        release.set()


def test_save_output_writes_the_model_details(studio, tmp_path):
    window, _tab = studio
    window.set_output_folder(tmp_path / "out")
    path = window.save_output()
    assert path is not None and path.name == "tiny-details.json"
    assert '"op_histogram"' in path.read_text()


def test_open_folder_of_a_model_deleted_since_the_scan_rescans(qtbot, studio, models_root, monkeypatch):
    import shutil

    from genstudio.qt import qt_models

    window, tab = studio
    opened = []
    monkeypatch.setattr(qt_models.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    make_model_folder(models_root / "gone", name="gone")
    tab.populate(keep=str(models_root / "gone"))
    wait_settled(qtbot, tab)
    assert tab.current_entry().name == "gone"
    shutil.rmtree(models_root / "gone")
    tab.open_button.click()  # handed the missing folder to the file manager, and kept listing it
    assert opened == []
    assert "gone" not in tab.list.names() and "tiny" in tab.list.names()
    assert "no longer on disk" in window.statusBar().currentMessage()
    tab.list.select_name("tiny")
    tab.open_button.click()
    assert opened == [str(models_root / "tiny")]


def test_a_removed_models_benchmark_is_not_shown_for_a_new_model_in_its_folder(qtbot, studio, models_root,
                                                                               monkeypatch):
    import shutil
    import threading

    from genstudio.qt import qt_models
    from genstudio.runtime.benchmark import BenchmarkRow

    _window, tab = studio
    release = threading.Event()

    def fake_benchmark(entry, threads=None):
        yield Progress(0, 1, "benchmarking")
        release.wait(WAIT_MS / 1000)
        return [BenchmarkRow("CPUExecutionProvider", "cpu", "model.onnx", "model", 5, 1.0, 1.0, 1.0)]

    monkeypatch.setattr(qt_models, "benchmark_model", fake_benchmark)
    for name in ("old", "gone"):
        make_model_folder(models_root / name, name=name)
    tab.populate(keep=str(models_root / "old"))
    wait_settled(qtbot, tab)
    release.set()
    with qtbot.waitSignal(tab.benchmark_done, timeout=WAIT_MS):
        tab.run_benchmark()
    assert tab.details.bench.isVisibleTo(tab.details)
    release.clear()
    tab.list.select_name("gone")
    wait_settled(qtbot, tab)
    assert tab.run_benchmark() is not None  # "gone" is removed while its benchmark runs ...
    shutil.rmtree(models_root / "gone")
    shutil.rmtree(models_root / "old")  # ... and "old" is replaced by a new build while the studio is open
    tab.refresh()
    with qtbot.waitSignal(tab.benchmark_done, timeout=WAIT_MS):
        release.set()
    for name in ("old", "gone"):
        make_model_folder(models_root / name, name=name)
    tab.refresh()
    for name in ("old", "gone"):
        tab.list.select_name(name)
        wait_settled(qtbot, tab)
        assert not tab.details.bench.isVisibleTo(tab.details), name  # showed the removed build's timings
        assert "Measured" not in tab.details.bench_status.text(), name


# -- status bar ----------------------------------------------------------------------------------
def test_a_failed_job_shows_in_the_status_bar(qtbot, studio):
    window, _tab = studio

    def broken():
        yield Progress(1)
        raise RuntimeError("the model ran out of memory")

    with qtbot.waitSignal(window.ctx.jobs.job_failed, timeout=WAIT_MS):
        window.ctx.jobs.start("generate", broken())
    assert window.status.error_label.isVisible()
    assert "the model ran out of memory" in window.status.error_label.text()


def test_provider_fallback_and_provider_in_use_show_in_the_status_bar(qtbot, studio, models_root):
    window, _tab = studio
    pool = window.ctx.pool
    pool.set_config(SessionConfig(provider="cuda"))  # not usable on this machine: the session falls back
    with qtbot.waitSignal(window.status.fallback_seen, timeout=WAIT_MS):
        loaded = pool.get(models_root / "tiny" / "model.onnx", root=models_root / "tiny")
    assert loaded.provider == "CPUExecutionProvider" and loaded.fallback
    qtbot.waitUntil(lambda: window.status.fallback_label.isVisible(), timeout=WAIT_MS)
    assert "cuda" in window.status.fallback_label.toolTip()
    window.status.refresh()
    assert window.status.provider_label.text() == "Provider: CPU"


def test_about_dialog_shows_versions_and_probes(qtbot, studio):
    window, _tab = studio
    dialog = window.show_about()
    with qtbot.waitSignal(dialog.job.finished, timeout=WAIT_MS):
        pass
    assert re.match(r"\d+\.\d+", dialog.version_text("ONNX Runtime"))
    assert dialog.version_text("Qt") and dialog.version_text("PySide6")
    assert "CPU" in dialog.probes.column_texts(0)
    cpu_row = dialog.probes.column_texts(0).index("CPU")
    assert dialog.probes.item(cpu_row, 1).text() == "yes"
    dialog.close()


# -- settings and themes -------------------------------------------------------------------------
def test_settings_round_trip(tmp_path, _private_home):
    from genstudio.runtime.providers import CHOICES

    assert st.PROVIDER_CHOICES == tuple(CHOICES)
    s = st.open_settings()
    assert Path(s.fileName()).is_relative_to(_private_home), "tests never write the user's settings"
    assert st.read_runtime(s) == st.RuntimeSettings("auto", 0)
    assert st.read_output(s).folder == paths.default_output_dir()
    assert st.read_appearance(s).theme == "light"
    st.write_runtime(s, st.RuntimeSettings("cpu", 3))
    st.write_output(s, st.OutputSettings(tmp_path / "renders"))
    st.write_appearance(s, st.AppearanceSettings("dark"))
    st.write_window(s, st.WindowSettings(current_tab="models"))
    st.write_shortcuts(s, {"file_quit": "Ctrl+W"})
    s.sync()
    again = st.open_settings()
    assert st.read_runtime(again) == st.RuntimeSettings("cpu", 3)
    assert st.read_output(again).folder == tmp_path / "renders"
    assert st.read_appearance(again).theme == "dark"
    assert st.read_window(again).current_tab == "models"
    assert st.read_shortcuts(again) == {"file_quit": "Ctrl+W"}
    again.setValue("runtime/threads", "many")
    again.setValue("runtime/provider", "warp-drive")
    again.setValue("appearance/theme", 42)
    assert st.read_runtime(again) == st.RuntimeSettings("auto", 0)
    assert st.read_appearance(again).theme == "light"


def test_settings_dialog_applies_to_the_pool(qtbot, qapp, studio, tmp_path):
    window, _tab = studio
    dialog = window.open_settings_dialog()
    assert dialog.dialog.isVisible()
    dialog.provider.setCurrentIndex(dialog.provider.findData("cpu"))
    dialog.threads.setValue(2)
    dialog.output.setText(str(tmp_path / "renders"))
    dialog.theme.setCurrentIndex(dialog.theme.findData("dark"))
    with qtbot.waitSignal(dialog.applied, timeout=WAIT_MS):
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert window.ctx.pool.config.provider == "cpu" and window.ctx.pool.config.threads == 2
    assert window.ctx.output_dir() == tmp_path / "renders"
    assert is_dark(qapp)
    s = st.open_settings()
    assert st.read_runtime(s) == st.RuntimeSettings("cpu", 2)
    assert st.read_appearance(s).theme == "dark"


def test_theme_switch(qapp, studio):
    window, _tab = studio
    window.action_collection["view_theme_dark"].trigger()
    assert is_dark(qapp) and "dark theme" in qapp.styleSheet()
    assert st.read_appearance(st.open_settings()).theme == "dark"
    window.action_collection["view_theme_light"].trigger()
    assert not is_dark(qapp) and "light theme" in qapp.styleSheet()
    window.action_collection["view_theme_system"].trigger()
    assert qapp.styleSheet() == ""
    assert window.action_collection["view_theme_system"].isChecked()


def test_window_geometry_and_tab_are_remembered(qtbot, studio):
    window, _tab = studio
    window.resize(780, 560)  # inside the offscreen platform's 800x600 screen: restoring does not clamp it
    window.close()
    saved = st.read_window(st.open_settings())
    assert saved.geometry is not None and saved.current_tab == "models"
    again = build_main_window(pool=SessionPool(), settings=st.open_settings())
    qtbot.addWidget(again)
    assert (again.width(), again.height()) == (780, 560)
    assert again.current_tab_key() == "models"
    wait_settled(qtbot, again.tab_widget("models"))
    again.close()



def test_a_small_window_scrolls_a_tab_instead_of_squeezing_its_controls(qtbot, studio):
    """At the window's smallest size every tab keeps its controls whole (the tab scrolls): Text to Image's
    steps box was once 2 pixels high in a 1280x720 window."""
    window, _tab = studio
    window.resize(window.minimumSize())

    def squeezed(tab) -> list[str]:
        return [f"{type(w).__name__} {w.toolTip()[:30]!r}: {w.height()} px"
                for kind in (QAbstractSpinBox, QComboBox, QPushButton) for w in tab.findChildren(kind)
                if w.isVisibleTo(tab) and w.height() < w.minimumSizeHint().height()]

    for key in window.tab_keys():
        tab = window.select_tab(key)
        qtbot.wait(50)  # posted layout requests: a newly built tab is laid out over a few turns of the loop
        assert not squeezed(tab), key


def test_a_broken_tab_line_does_not_break_the_window(qtbot, models_root):
    window = build_main_window(pool=SessionPool(), settings=st.open_settings(),
                               tab_specs=["genstudio.qt.qt_models:MODELS_TAB", "genstudio.qt.no_such_tab:TAB"])
    qtbot.addWidget(window)
    assert window.tab_keys() == ["models"]
    assert window.tabs.count() == 2
    wait_settled(qtbot, window.tab_widget("models"))
    window.close()


# -- shot ----------------------------------------------------------------------------------------
def test_shot_renders_a_png_of_the_requested_size(qapp, models_root, tmp_path):
    from genstudio.qt.shot import render_tab

    make_model_folder(models_root / "tiny")
    out = render_tab("models", tmp_path / "shots" / "models.png", size=(1024, 700), theme="light")
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1024, 700)
    apply_theme(qapp, "system")


def test_shot_of_an_unknown_tab_names_the_tabs_there_are(qapp, models_root, tmp_path):
    from genstudio.qt.shot import render_tab

    with pytest.raises(KeyError, match="available tabs: models"):
        render_tab("no-such-tab", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    apply_theme(qapp, "system")


# -- the real entry point ------------------------------------------------------------------------
def test_run_studio_opens_the_window_and_closes_cleanly(qapp, models_root, monkeypatch):
    """`genstudio` with no arguments: a qasync loop runs the window; closing it ends the loop with 0."""
    from PySide6.QtCore import QTimer

    from genstudio.qt import app as app_module

    make_model_folder(models_root / "tiny")
    made = []
    real_build = app_module.build_main_window

    def build(**kwargs):
        window = real_build(**kwargs)
        made.append(window)
        # close as soon as the tabs are up: the Models tab's check job may still be running
        window.tabs_ready.connect(lambda: QTimer.singleShot(0, window.close))
        return window

    monkeypatch.setattr(app_module, "build_main_window", build)
    assert app_module.run_studio() == 0
    (window,) = made
    assert window.tab_keys()[0] == "models"
    assert window.ctx.jobs.active() == [] or all(j.join(0) for j in window.ctx.jobs.active())
    assert st.read_window(st.open_settings()).geometry is not None
    apply_theme(qapp, "system")
