"""`genstudio PATH` (what a double-click on an .onnx file or a model.json runs): the CLI's argument
handling, and the Models tab's offer_import (select when listed, else check and ask, then import)."""

from __future__ import annotations

import pytest
from conftest import make_model_folder, make_tiny_onnx
from PySide6.QtWidgets import QMessageBox

from genstudio import cli
from genstudio.cli import CliError, model_path, studio_target
from genstudio.qt import qt_settings as st
from genstudio.qt.app import build_main_window, offer_on_open
from genstudio.qt.qt_theme import apply_theme
from genstudio.runtime import paths
from genstudio.runtime.sessions import SessionPool

WAIT_MS = 30_000
COMMANDS = {"models", "check", "doctor", "generate", "export"}


# -- the command line -----------------------------------------------------------------------------------
def test_model_path_accepts_onnx_files_model_folders_and_their_manifest(tmp_path):
    folder = make_model_folder(tmp_path / "m")
    graph = make_tiny_onnx(tmp_path / "g.onnx")
    (tmp_path / "notes.txt").write_text("x")
    assert model_path(graph) == graph.resolve()
    assert model_path(folder) == folder.resolve()
    assert model_path(folder / "model.json") == folder.resolve()
    assert model_path(tmp_path / "notes.txt") is None
    assert model_path(tmp_path) is None  # a folder without a model.json
    assert model_path(tmp_path / "missing.onnx") is None


def test_studio_target(tmp_path, monkeypatch):
    folder = make_model_folder(tmp_path / "m")
    graph = make_tiny_onnx(tmp_path / "g.onnx")
    assert studio_target([], COMMANDS) == (True, None)
    assert studio_target(["--"], COMMANDS) == (True, None)  # a desktop entry's `-- %f` without a file
    assert studio_target([str(graph)], COMMANDS) == (True, graph.resolve())
    assert studio_target(["--", str(folder / "model.json")], COMMANDS) == (True, folder.resolve())
    # subcommands and options are never paths, even when a file of that name exists here
    monkeypatch.chdir(tmp_path)
    make_model_folder(tmp_path / "models")
    assert studio_target(["models"], COMMANDS) == (False, None)
    assert studio_target(["--", "models"], COMMANDS) == (True, (tmp_path / "models").resolve())
    assert studio_target(["check", str(graph)], COMMANDS) == (False, None)
    assert studio_target(["--version"], COMMANDS) == (False, None)
    assert studio_target(["no-such-command"], COMMANDS) == (False, None)  # argparse names the commands
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(CliError, match="not an .onnx file"):
        studio_target(["notes.txt"], COMMANDS)
    with pytest.raises(CliError, match="not an .onnx file"):
        studio_target(["--", "missing.onnx"], COMMANDS)


def test_main_opens_the_studio_with_the_path(tmp_path, monkeypatch, capsys):
    import genstudio.qt.app as app_module

    calls = []
    monkeypatch.setattr(app_module, "run_studio", lambda argv=None, *, open_path=None: calls.append(open_path) or 0)
    folder = make_model_folder(tmp_path / "m")
    assert cli.main([str(folder / "model.json")]) == 0
    assert cli.main(["--"]) == 0
    assert calls == [folder.resolve(), None]
    (tmp_path / "notes.txt").write_text("x")
    assert cli.main([str(tmp_path / "notes.txt")]) == 2
    assert "not an .onnx file" in capsys.readouterr().err
    assert cli.main(["check", str(folder)]) == 0  # subcommands still work
    assert calls == [folder.resolve(), None]


def test_export_without_the_pipeline_is_a_message(monkeypatch, capsys):
    """In the bundle `genstudio export ...` cannot import torch: one line and exit 2, no traceback."""
    import genstudio.cli.llm as llm

    def no_torch(_args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(llm, "cmd_export_llm", no_torch)  # register() reads it when main() runs
    assert cli.main(["export", "llm", "--from-pypi"]) == 2
    assert "cannot run this command" in capsys.readouterr().err


# -- the Models tab ---------------------------------------------------------------------------------------
@pytest.fixture
def studio(qtbot, qapp, models_root):
    make_model_folder(models_root / "tiny")
    window = build_main_window(pool=SessionPool(), settings=st.open_settings())
    qtbot.addWidget(window)
    window.show()
    tab = window.tab_widget("models")
    if not tab.is_settled():
        with qtbot.waitSignal(tab.settled, timeout=WAIT_MS):
            pass
    yield window, tab
    window.close()
    apply_theme(qapp, "system")


def _answer(box: QMessageBox, button: QMessageBox.StandardButton) -> None:
    box.button(button).click()


def test_offer_import_checks_asks_and_imports(qtbot, studio, tmp_path):
    _window, tab = studio
    source = make_model_folder(tmp_path / "downloads" / "other", name="other")
    with qtbot.waitSignal(tab.offered, timeout=WAIT_MS) as offered:
        tab.offer_import(source / "model.json")
    box = offered.args[0]
    assert box.icon() == QMessageBox.Icon.Question and "Import other" in box.text()
    assert "passed the checks" in box.informativeText()
    assert not (paths.user_models_dir() / "other").exists()  # nothing copied before the answer
    with qtbot.waitSignal(tab.imported, timeout=WAIT_MS) as imported:
        _answer(box, QMessageBox.StandardButton.Yes)
    assert [e.name for e in imported.args[0]] == ["other"]
    assert tab.current_entry().name == "other"


def test_offer_import_declined_copies_nothing(qtbot, studio, tmp_path):
    _window, tab = studio
    graph = make_tiny_onnx(tmp_path / "g.onnx")
    with qtbot.waitSignal(tab.offered, timeout=WAIT_MS) as offered:
        tab.offer_import(graph)
    _answer(offered.args[0], QMessageBox.StandardButton.No)
    qtbot.wait(50)
    assert tab._import_job is None
    assert tab.list.names() == ["tiny"]


def test_offer_import_of_a_listed_model_selects_it(qtbot, studio, models_root):
    _window, tab = studio
    make_model_folder(models_root / "second", name="second")
    tab.populate()
    assert tab.offer_import(models_root / "second" / "model.json") is None
    assert tab.current_entry().name == "second"


def test_offer_import_of_a_broken_file_says_why(qtbot, studio, tmp_path):
    _window, tab = studio
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf")
    with qtbot.waitSignal(tab.offered, timeout=WAIT_MS) as offered:
        tab.offer_import(bad)
    box = offered.args[0]
    assert box.icon() == QMessageBox.Icon.Critical and "cannot be imported" in box.text()
    assert "not a valid ONNX model" in box.informativeText()
    box.close()


def test_run_studio_with_a_path_opens_the_models_tab_and_offers_it(qtbot, qapp, models_root, tmp_path):
    """What run_studio(open_path=...) does: once the tabs are up, the Models tab checks and offers the file."""
    make_model_folder(models_root / "tiny")
    graph = make_tiny_onnx(tmp_path / "incoming.onnx")
    window = build_main_window(pool=SessionPool(), settings=st.open_settings())
    qtbot.addWidget(window)
    offer_on_open(window, graph)
    with qtbot.waitSignal(window.tabs_ready, timeout=WAIT_MS):
        window.show()
    tab = window.tab_widget("models")
    assert window.current_tab_key() == "models"
    with qtbot.waitSignal(tab.offered, timeout=WAIT_MS) as offered:
        pass
    assert "incoming.onnx" in offered.args[0].text()
    offered.args[0].close()
    window.close()
    apply_theme(qapp, "system")
