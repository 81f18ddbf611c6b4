"""The Compare tab offscreen on the tiny models: the transposed table, Compare, timings, bold bests, Stop, Export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from test_compare import FMNIST, compare_root

from genstudio.engines import compare
from genstudio.qt.qt_context import StudioContext
from genstudio.qt.qt_jobs import JobManager
from genstudio.runtime.registry import Registry
from genstudio.runtime.sessions import SessionConfig, SessionPool

pytestmark = pytest.mark.slow
WAIT_MS = 60_000
FAST = ["vae-fashion-mnist", "flow-fashion-mnist", "gan-fashion-mnist"]  # quick to time (no PixelCNN)


def subset_root(dest: Path, names: list[str]) -> Path:
    """A models root holding only some of the tiny comparison models (and the evaluator)."""
    src = compare_root()
    dest.mkdir(parents=True)
    for name in [*names, "eval-fashion-mnist"]:
        shutil.copytree(src / name, dest / name)
    return dest


@pytest.fixture
def make_tab(qtbot, tmp_path):
    from genstudio.qt.qt_compare import QtCompareTab

    jobs = JobManager()

    def make(root: Path | None = None, n: int = 2, timing: bool = False) -> QtCompareTab:
        ctx = StudioContext(registry=Registry([(root or compare_root(), "shipped")]),
                            pool=SessionPool(SessionConfig(provider="cpu", threads=1)), jobs=jobs,
                            output_dir=lambda: tmp_path)
        w = QtCompareTab(ctx)
        qtbot.addWidget(w)
        w.resize(1280, 800)
        w.show()
        w.n_box.setValue(n)
        w.timing.setChecked(timing)
        return w

    yield make
    jobs.shutdown()


def _cells(tab, key: str) -> list[str]:
    from genstudio.qt.qt_compare import METRICS

    row = [k for k, _ in METRICS].index(key)
    return [tab.table.item(row, c).text() for c in range(tab.table.columnCount())]


def _bold(tab, key: str) -> list[bool]:
    from genstudio.qt.qt_compare import METRICS

    row = [k for k, _ in METRICS].index(key)
    return [tab.table.item(row, c).font().bold() for c in range(tab.table.columnCount())]


def _run(tab, qtbot) -> None:
    with qtbot.waitSignal(tab.compared, timeout=WAIT_MS):
        qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)


def _table_lines(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("|")]


def test_tab_spec_is_registered(make_tab, qtbot):
    from genstudio.qt.qt_compare import QtCompareTab
    from genstudio.qt.qt_tabs import TAB_SPECS, load_tab_spec

    specs = {load_tab_spec(line).key: load_tab_spec(line) for line in TAB_SPECS}
    assert specs["compare"].title == "Compare"
    ctx = make_tab().ctx
    tab = specs["compare"].factory(ctx)
    qtbot.addWidget(tab)
    assert isinstance(tab, QtCompareTab) and [e.name for e in tab.entries] == FMNIST


def test_picker_lists_models_and_fills_the_transposed_table_before_sampling(make_tab):
    from genstudio.qt.qt_compare import METRICS

    tab = make_tab()
    assert tab.dataset == "fashion-mnist" and [e.name for e in tab.entries] == FMNIST
    assert [e.name for e in tab.entries] == [e.name for e in compare.models_for(tab.ctx.registry, "fashion-mnist")]
    assert tab.table.rowCount() == len(METRICS) and tab.table.columnCount() == len(FMNIST)  # metric rows
    assert [tab.table.verticalHeaderItem(i).text() for i in range(len(METRICS))] == [h for _, h in METRICS]
    heads = [tab.table.horizontalHeaderItem(c).text() for c in range(len(FMNIST))]
    assert heads == [f"{compare.FAMILY_TITLES[e.family]}\n{e.name}" for e in tab.entries]
    rows = compare.table_rows(tab.entries)
    for key, _ in METRICS:
        assert _cells(tab, key) == [compare.cell_text(key, r.get(key)) for r in rows], key
    fid = dict(zip(FMNIST, _cells(tab, "fid"), strict=True))
    assert fid["flow-fashion-mnist"] == "–" and fid["gan-fashion-mnist"] != "–"  # manifest numbers, no estimate
    assert tab.state is None and tab.grid_view.image is None  # no samples before Compare
    assert tab.chart_view.image is not None and tab.notes.text()
    assert tab.run_button.isEnabled() and not tab.export_button.isEnabled() and not tab.stop_button.isEnabled()
    assert "Press Compare" in tab.condition_label.text() and "5 models trained on Fashion-MNIST" in tab.status.text()

    tab.dataset_box.setCurrentIndex(tab.dataset_box.findData("synthfaces"))
    assert tab.dataset == "synthfaces" and [e.name for e in tab.entries] == ["vae-synthfaces"]
    assert tab.table.columnCount() == 1 and tab.table.horizontalHeaderItem(0).text() == "VAE\nvae-synthfaces"
    assert tab.run_button.isEnabled()


def test_best_value_of_a_row_is_bold(make_tab):
    tab = make_tab()
    rows = compare.table_rows(tab.entries)
    for key, pick in (("fid", min), ("precision", max), ("bits_per_dim", min)):
        values = [r[key] for r in rows]
        best = pick(v for v in values if v is not None)
        assert _bold(tab, key) == [v == best for v in values], key
        assert sum(_bold(tab, key)) >= 1
    assert not any(_bold(tab, "parameters")) and not any(_bold(tab, "size_mb"))  # no better way: no bold
    col = _bold(tab, "fid").index(True)
    assert tab.table.item(0, col).toolTip() == "the best of the row"


def test_compare_samples_every_model_and_shows_the_grid(make_tab, qtbot):
    from genstudio.qt.qt_compare import GRID_CELL, GRID_FONT

    tab = make_tab(n=2)
    _run(tab, qtbot)
    state = tab.state
    assert [c.name for c in state.columns] == FMNIST and state.failed == {} and state.timings == {}
    assert all(c.images.shape[0] == 2 for c in state.columns) and state.providers == ["CPUExecutionProvider"]
    grid = tab.grid_image()
    header = (GRID_FONT + 4) * 3 + 6
    assert grid.shape[0] == header + 2 * GRID_CELL + 3 * 4 and grid.shape[2] == 3
    assert (tab.grid_view.image.width(), tab.grid_view.image.height()) == (grid.shape[1], grid.shape[0])
    assert tab.table.columnCount() == len(FMNIST)
    assert _cells(tab, "ms_per_sample_b64") == ["–"] * len(FMNIST)  # timing off: nothing measured at batch 64
    assert tab.condition_label.text().startswith("Row k: sample k: class k % 10")
    assert tab.status.text() == "5 models compared on CPUExecutionProvider"
    assert tab.export_button.isEnabled() and tab.run_button.isEnabled() and not tab.stop_button.isEnabled()
    assert tab.slots.jobs["compare"].state == "succeeded"


def test_timings_fill_the_ms_rows(make_tab, qtbot, tmp_path):
    tab = make_tab(subset_root(tmp_path / "fast", FAST), n=1, timing=True)
    assert [e.name for e in tab.entries] == FAST
    assert _cells(tab, "ms_per_sample_b64") == ["–"] * 3  # before: only what the manifests recorded
    _run(tab, qtbot)
    assert list(tab.state.timings) == FAST
    for key, batch in (("ms_per_sample_b1", "1"), ("ms_per_sample_b64", "64")):
        measured = [tab.state.timings[n]["batches"][batch]["seconds_per_sample"] * 1000 for n in FAST]
        assert all(m > 0 for m in measured)
        assert _cells(tab, key) == [compare.cell_text(key, round(m, 3)) for m in measured]
        assert "–" not in _cells(tab, key)
        assert _bold(tab, key) == [r[key] == min(x[key] for x in tab.rows) for r in tab.rows] and any(_bold(tab, key))
    assert all(r["timing_source"] == "measured" for r in tab.rows)
    assert "vae-fashion-mnist measured" in tab.notes.text()


def test_a_failing_model_is_shown_and_the_others_compared(make_tab, qtbot, tmp_path, monkeypatch):
    real = compare.open_engine

    def broken(entry, pool):
        if entry.family == "gan":
            raise RuntimeError("broken graph")
        return real(entry, pool)

    monkeypatch.setattr(compare, "open_engine", broken)
    tab = make_tab(subset_root(tmp_path / "fast", FAST), n=1)
    _run(tab, qtbot)
    assert [c.name for c in tab.state.columns] == ["vae-fashion-mnist", "flow-fashion-mnist"]
    assert "gan-fashion-mnist: RuntimeError: broken graph" in tab.condition_label.text()
    assert tab.status.text().endswith("failed: gan-fashion-mnist")
    assert tab.table.columnCount() == 3  # its manifest numbers stay in the table
    assert tab.grid_view.image is not None and tab.export_button.isEnabled()


def test_stop_cancels_the_comparison(make_tab, qtbot):
    tab = make_tab(n=2, timing=True)  # timing the PixelCNN alone takes over ten seconds
    fired = []
    tab.compared.connect(lambda: fired.append(True))
    qtbot.mouseClick(tab.run_button, Qt.MouseButton.LeftButton)
    assert tab.stop_button.isEnabled() and not tab.run_button.isEnabled() and tab.slots.running("compare")
    qtbot.waitUntil(lambda: tab.state is not None, timeout=WAIT_MS)  # the first preview arrived
    job = tab.slots.jobs["compare"]
    qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not job.is_running(), timeout=WAIT_MS)
    assert job.state == "cancelled" and not fired
    assert len(tab.state.timings) < len(FMNIST)  # stopped before the end
    assert not tab.stop_button.isEnabled() and tab.run_button.isEnabled()
    assert tab.export_button.isEnabled() == bool(tab.state.columns)  # what was sampled can still be exported


def test_export_writes_the_four_files_like_genstudio_compare(make_tab, qtbot, tmp_path, monkeypatch, capsys):
    from genstudio.cli import main
    from genstudio.runtime.imaging import read_png_settings

    tab = make_tab(n=2)
    tab.seed.setValue(3)
    with qtbot.assertNotEmitted(tab.exported):
        tab.export(tmp_path / "early")  # nothing compared yet
    assert "compare first" in tab.status.text() and not (tmp_path / "early").exists()
    _run(tab, qtbot)
    out = tmp_path / "exported"
    with qtbot.waitSignal(tab.exported, timeout=WAIT_MS) as blocker:
        tab.export(out)
    assert blocker.args == [str(out)]
    assert sorted(p.name for p in out.iterdir()) == ["comparison-chart.png", "comparison.json", "comparison.md",
                                                     "comparison.png"]
    assert tab.status.text().startswith("exported comparison.png, comparison-chart.png")
    command = f"genstudio compare --dataset fashion-mnist --out {out} --n 2 --seed 3 --no-timing"
    md = (out / "comparison.md").read_text()
    assert f"Made by `{command}`" in md
    assert _table_lines(md) == _table_lines(compare.markdown_table(tab.rows)) and len(_table_lines(md)) == 7
    assert read_png_settings(out / "comparison.png")["command"] == command
    assert json.loads((out / "comparison.json").read_text())["rows"][0]["name"] == FMNIST[0]

    # the command in the report makes the same table
    monkeypatch.setenv("GENSTUDIO_MODELS", str(compare_root()))
    cli_out = tmp_path / "cli"
    assert main(["compare", "--dataset", "fashion-mnist", "--out", str(cli_out), "--n", "2", "--seed", "3",
                 "--no-timing", "--threads", "1"]) == 0
    cli_md = (cli_out / "comparison.md").read_text()
    assert _table_lines(cli_md) == _table_lines(md)
    assert ([line for line in cli_md.splitlines() if not line.startswith("Made by")]
            == [line for line in md.splitlines() if not line.startswith("Made by")])


def test_a_dataset_without_models_shows_the_empty_state(make_tab, qtbot, tmp_path):
    tab = make_tab(subset_root(tmp_path / "fast", FAST), n=1)
    _run(tab, qtbot)
    assert tab.grid_view.image is not None and tab.export_button.isEnabled()
    tab.dataset_box.setCurrentIndex(tab.dataset_box.findData("synthfaces"))
    assert tab.entries == [] and tab.state is None and tab.rows == []
    assert not tab.run_button.isEnabled() and not tab.export_button.isEnabled()
    assert tab.table.columnCount() == 0 and tab.grid_view.image is None and tab.chart_view.image is None
    assert tab.grid_view.caption.startswith("No generative model is trained on synthfaces")
    assert "genstudio export vae --dataset synthfaces" in tab.grid_view.caption
    assert tab.status.text() == "no model is trained on SynthFaces"
    job = tab.slots.jobs["compare"]
    tab.compare()  # nothing to compare: no job
    assert tab.slots.jobs["compare"] is job and not tab.slots.running()
    tab.dataset_box.setCurrentIndex(tab.dataset_box.findData("fashion-mnist"))
    assert [e.name for e in tab.entries] == FAST and tab.run_button.isEnabled()


def test_a_result_arriving_after_a_dataset_switch_is_dropped(make_tab, qtbot, tmp_path):
    tab = make_tab(subset_root(tmp_path / "two", ["gan-fashion-mnist", "vae-synthfaces"]), n=1)
    fired = []
    tab.compared.connect(lambda: fired.append(tab.dataset))
    tab.compare()
    job = tab.slots.jobs["compare"]
    assert job.join(30)  # the worker is done; its result waits in the event queue
    tab.dataset_box.setCurrentIndex(tab.dataset_box.findData("synthfaces"))
    qtbot.wait(200)  # deliver it
    assert tab.dataset == "synthfaces" and [e.name for e in tab.entries] == ["vae-synthfaces"]
    assert tab.state is None and not fired and not tab.export_button.isEnabled()


def _import(tab, root: Path, name: str) -> None:
    """What an import on the Models tab does to the shared registry, then its word to the tabs already open."""
    shutil.copytree(compare_root() / name, root / name)
    tab.ctx.registry.refresh()
    tab.models_changed()


def test_an_imported_model_joins_the_list(make_tab, tmp_path):
    root = subset_root(tmp_path / "two", FAST[:2])
    tab = make_tab(root)
    assert [e.name for e in tab.entries] == FAST[:2]
    tab.n_box.setValue(3)
    tab.seed.setValue(7)
    _import(tab, root, "gan-fashion-mnist")
    assert [e.name for e in tab.entries] == FAST  # in models_for's order, as every model of the dataset
    assert tab.table.columnCount() == 3 and tab.table.horizontalHeaderItem(2).text() == "GAN\ngan-fashion-mnist"
    assert "3 models: vae-fashion-mnist, flow-fashion-mnist, gan-fashion-mnist" in tab.condition_label.text()
    assert tab.status.text() == "3 models trained on Fashion-MNIST" and tab.run_button.isEnabled()
    assert (tab.dataset, tab.n_box.value(), tab.seed.value()) == ("fashion-mnist", 3, 7)  # the choices stay
    _import(tab, root, "vae-synthfaces")  # another dataset's model: not listed here
    assert [e.name for e in tab.entries] == FAST
    tab.dataset_box.setCurrentIndex(tab.dataset_box.findData("synthfaces"))
    assert [e.name for e in tab.entries] == ["vae-synthfaces"]


def test_an_imported_model_reaches_a_dataset_that_had_none(make_tab, tmp_path):
    root = subset_root(tmp_path / "faces", ["gan-fashion-mnist"])
    tab = make_tab(root)
    tab.dataset_box.setCurrentIndex(tab.dataset_box.findData("synthfaces"))
    assert tab.entries == [] and not tab.run_button.isEnabled()
    _import(tab, root, "vae-synthfaces")
    assert [e.name for e in tab.entries] == ["vae-synthfaces"] and tab.run_button.isEnabled()
    assert tab.grid_view.caption == "" and tab.table.columnCount() == 1
    assert tab.status.text() == "1 models trained on SynthFaces"


def test_an_import_keeps_the_results_on_screen(make_tab, qtbot, tmp_path):
    root = subset_root(tmp_path / "two", FAST[:2])
    tab = make_tab(root, n=1, timing=True)
    _run(tab, qtbot)
    state, grid, condition = tab.state, tab.grid_view.image, tab.condition_label.text()
    b1 = _cells(tab, "ms_per_sample_b1")
    _import(tab, root, "gan-fashion-mnist")
    assert tab.state is state and tab.grid_view.image is grid and tab.condition_label.text() == condition
    assert [c.name for c in tab.state.columns] == FAST[:2] and tab.export_button.isEnabled()
    assert tab.table.columnCount() == 3
    assert _cells(tab, "ms_per_sample_b1") == [*b1, "–"]  # the timings measured stay; the newcomer has none yet
    assert tab.status.text() == "added gan-fashion-mnist: the next Compare samples the models listed now"
    assert tab.run_button.isEnabled() and not tab.stop_button.isEnabled()
    _run(tab, qtbot)  # the next Compare samples it too
    assert [c.name for c in tab.state.columns] == FAST and list(tab.state.timings) == FAST


def test_an_import_keeps_a_running_comparison(make_tab, qtbot, tmp_path):
    root = subset_root(tmp_path / "two", FAST[:2])
    tab = make_tab(root, n=1)
    fired = []
    tab.compared.connect(lambda: fired.append(True))
    tab.compare()
    job = tab.slots.jobs["compare"]
    _import(tab, root, "gan-fashion-mnist")
    assert [e.name for e in tab.entries] == FAST and tab.table.columnCount() == 3
    assert not tab.run_button.isEnabled() and tab.stop_button.isEnabled()  # still running: no second Compare
    qtbot.waitUntil(lambda: not job.is_running(), timeout=WAIT_MS)
    assert job.state == "succeeded" and fired and tab.slots.jobs["compare"] is job  # not cancelled
    assert [c.name for c in tab.state.columns] == FAST[:2]  # the run goes on with the list it was given
    assert tab.grid_view.image is not None and tab.table.columnCount() == 3
    assert tab.run_button.isEnabled() and tab.export_button.isEnabled() and not tab.stop_button.isEnabled()


def test_the_main_window_forwards_an_import_to_the_compare_tab(qtbot, qapp, models_root):
    from genstudio.qt import qt_settings as st
    from genstudio.qt.app import build_main_window
    from genstudio.qt.qt_theme import apply_theme

    for name in [*FAST[:2], "eval-fashion-mnist"]:
        shutil.copytree(compare_root() / name, models_root / name)
    window = build_main_window(pool=SessionPool(SessionConfig(provider="cpu", threads=1)),
                               settings=st.open_settings())
    qtbot.addWidget(window)
    window.show()
    models = window.tab_widget("models")
    tab = window.tab_widget("compare")
    assert [e.name for e in tab.entries] == FAST[:2]
    with qtbot.waitSignal(models.imported, timeout=WAIT_MS):
        models.import_paths([compare_root() / "gan-fashion-mnist"])
    assert [e.name for e in tab.entries] == FAST and tab.table.columnCount() == 3
    if not models.is_settled():
        with qtbot.waitSignal(models.settled, timeout=WAIT_MS):
            pass
    window.close()
    apply_theme(qapp, "system")


def _remove(tab, root: Path, name: str) -> None:
    """A model folder deleted from the disk, then Refresh on the Models tab."""
    shutil.rmtree(root / name)
    tab.ctx.registry.refresh()
    tab.models_changed()


def test_a_model_removed_from_the_disk_leaves_the_list_and_the_results_stay(make_tab, qtbot, tmp_path):
    root = subset_root(tmp_path / "three", FAST)
    tab = make_tab(root, n=1)
    _run(tab, qtbot)
    state, grid = tab.state, tab.grid_view.image
    _remove(tab, root, "gan-fashion-mnist")
    assert [e.name for e in tab.entries] == FAST[:2]
    assert tab.state is state and tab.grid_view.image is grid and tab.table.columnCount() == 3  # as measured
    assert tab.status.text() == "gan-fashion-mnist is gone: the next Compare samples the models listed now"
    _run(tab, qtbot)
    assert [c.name for c in tab.state.columns] == FAST[:2]
    for name in FAST[:2]:
        _remove(tab, root, name)
    assert tab.entries == [] and not tab.run_button.isEnabled()
    assert tab.status.text() == "no model is trained on Fashion-MNIST"
