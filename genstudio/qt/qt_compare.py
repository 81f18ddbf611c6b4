"""The Compare tab: every model family trained on one dataset, side by side, measured.

Pick a dataset; every ready model trained on it gets a column of samples made live with the same seed (and,
for conditional models, the same class or caption per row), then its time per sample at batch 1 and 64 on
the current provider. The table holds the manifests' quality numbers with the live timings; the chart draws
it. Export writes the same four files as `genstudio compare` (genstudio.engines.compare.write_report).

The whole comparison is one background job (genstudio.engines.compare.compare_job); each progress item
carries a snapshot of the columns and timings so far, so the grid and the table fill in as it runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from genstudio.engines.compare import (
    COLUMNS,
    FAMILY_TITLES,
    CompareState,
    cell_text,
    chart_image,
    compare_job,
    comparison_grid,
    models_for,
    table_notes,
    table_rows,
    write_report,
)
from genstudio.qt.qt_context import StudioContext
from genstudio.qt.qt_images import QtImageView
from genstudio.qt.qt_jobs import JobSlots
from genstudio.qt.qt_widgets import QtCard, label, scroll_area
from genstudio.runtime.jobs import Progress
from genstudio.runtime.registry import ModelEntry

DATASET_TITLES = {"fashion-mnist": "Fashion-MNIST", "synthfaces": "SynthFaces"}
GRID_CELL, GRID_FONT = 96, 15  # the on-screen grid's tile side and label size (the export keeps the CLI's)
METRICS = [(k, h) for k, h in COLUMNS if k not in ("family", "name")]  # the table's rows
BETTER = {"fid": min, "precision": max, "recall": max, "coverage": max, "class_accuracy": max,
          "prompt_adherence": max, "bits_per_dim": min, "ms_per_sample_b1": min, "ms_per_sample_b64": min}
EMPTY_TEXT = ("No generative model is trained on {dataset}.\nBuild one with, for example,\n"
              "genstudio export vae --dataset {dataset}")


def _best(key: str, values: list):
    """The best measured value of a metric row (None when the metric has no better way or no numbers)."""
    numbers = [v for v in values if isinstance(v, (int, float))]
    return BETTER[key](numbers) if key in BETTER and numbers else None


def report_job(out: Path, state: CompareState, rows: list[dict]):
    yield Progress(0, 1, f"writing the report to {out}")
    return write_report(out, state, rows)


class QtCompareTab(QWidget):
    compared = Signal()  # a comparison finished (columns and timings in self.state)
    exported = Signal(str)  # the report's folder

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.entries: list[ModelEntry] = []
        self.state: CompareState | None = None
        self.rows: list[dict] = []
        self.slots = JobSlots.reporting(ctx.jobs, "compare", "Compare", lambda text: self.status.setText(text),
                                          ctx.show_status)

        self.dataset_box = QComboBox()
        for key, title in DATASET_TITLES.items():
            self.dataset_box.addItem(title, key)
        self.n_box = QSpinBox(minimum=1, maximum=16, value=8)
        self.n_box.setToolTip("samples per model; row k is the k-th sample of every model")
        self.seed = QSpinBox(minimum=0, maximum=2**31 - 1, value=0)
        self.seed.setMaximumWidth(120)
        self.seed.setToolTip("the seed every model samples with")
        self.timing = QCheckBox("Time batch 1 and 64")
        self.timing.setChecked(True)
        self.timing.setToolTip("after sampling, time each model at batch 1 and 64 on the current provider "
                               "(a run expected to take over a minute is skipped)")
        self.run_button = QPushButton("Compare")
        self.run_button.setToolTip("sample every model of the dataset with the same seed, then time them")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.export_button = QPushButton("Export report…")
        self.export_button.setToolTip("write comparison.png, comparison-chart.png, comparison.md and .json, "
                                      "as `genstudio compare` does")
        self.export_button.setEnabled(False)
        top = QHBoxLayout()
        for w in (label("Dataset"), self.dataset_box, label("Samples"), self.n_box, label("Seed"), self.seed,
                  self.timing, self.run_button, self.stop_button, self.export_button):
            top.addWidget(w)
        top.addStretch(1)

        samples = QtCard("Samples")
        self.grid_view = QtImageView(minimum=160, smooth=True)  # tiles are already enlarged; keeps labels legible
        self.condition_label = label("", "muted", wrap=True)
        scroll = scroll_area(self.grid_view)
        samples.body.addWidget(scroll, 1)
        samples.body.addWidget(self.condition_label)

        self.table = QTableWidget(len(METRICS), 0)  # one row per metric, one column per model (as the samples)
        self.table.setVerticalHeaderLabels([h for _, h in METRICS])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.notes = label("", "muted", selectable=True, wrap=True)
        table_page = QWidget()
        tl = QVBoxLayout(table_page)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.table, 1)
        tl.addWidget(self.notes)
        self.chart_view = QtImageView(minimum=160, smooth=True)
        self.views = QTabWidget()
        self.views.addTab(table_page, "Table")
        self.views.addTab(self.chart_view, "Chart")
        measured = QtCard("Measured")
        measured.body.addWidget(self.views, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(samples)
        split.addWidget(measured)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        self.status = label("", "muted", selectable=True)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        lay.addWidget(self.status)

        self.dataset_box.currentIndexChanged.connect(self.refresh_models)
        self.run_button.clicked.connect(self.compare)
        self.stop_button.clicked.connect(self.stop)
        self.export_button.clicked.connect(self._export_dialog)
        self.refresh_models()

    # -- state ------------------------------------------------------------------------------------------------
    @property
    def dataset(self) -> str:
        return str(self.dataset_box.currentData())

    def refresh_models(self) -> None:
        """The dataset's models with their recorded numbers; samples come with Compare."""
        self.slots.cancel_all()
        self.entries = models_for(self.ctx.registry, self.dataset)
        self.state = None
        self.grid_view.set_image(None)
        self.export_button.setEnabled(False)
        self.run_button.setEnabled(bool(self.entries))
        if not self.entries:
            self.grid_view.set_caption(EMPTY_TEXT.format(dataset=self.dataset).replace("\n", " "))
            self.condition_label.setText("")
            self._show_rows([])
            self.status.setText(f"no model is trained on {DATASET_TITLES[self.dataset]}")
            return
        self._show_rows(table_rows(self.entries))
        self._show_listed()

    def models_changed(self) -> None:
        """Models imported on the Models tab join the list (every ready model of the dataset is compared, in
        models_for's order); a running comparison, the samples and timings on screen and the settings stay, and
        the next Compare samples the newcomers too."""
        entries = models_for(self.ctx.registry, self.dataset)
        before = {old.name for old in self.entries}
        added = [e.name for e in entries if e.name not in before]
        gone = sorted(before - {e.name for e in entries})  # removed from the disk, then a rescan
        if not added and not gone:
            return
        running = self.slots.running("compare")
        if not entries and not running:
            self.refresh_models()  # the last one went: say so
            return
        self.entries = entries  # a new list: a running comparison goes on with the one it was given
        if added or self.state is None:  # results on screen keep the rows they were measured with
            self._show_rows(table_rows(self.entries, (self.state.timings if self.state else None) or None))
        if running:
            return  # Compare comes back (with the new list) when the running one finishes
        self.run_button.setEnabled(bool(self.entries))
        if self.state is None:
            self._show_listed()
            return
        said = [f"added {', '.join(added)}"] if added else []
        said += [f"{', '.join(gone)} {'is' if len(gone) == 1 else 'are'} gone"] if gone else []
        self.status.setText(f"{'; '.join(said)}: the next Compare samples the models listed now")

    def _show_listed(self) -> None:
        """Before any samples: the dataset's models named, and Compare offered."""
        self.grid_view.set_caption("")
        names = ", ".join(e.name for e in self.entries)
        self.condition_label.setText(f"{len(self.entries)} models: {names}. Press Compare to sample them.")
        self.status.setText(f"{len(self.entries)} models trained on {DATASET_TITLES[self.dataset]}")

    def compare(self) -> None:
        if not self.entries:
            return
        job = compare_job(self.entries, self.ctx.pool, self.dataset, self.n_box.value(), self.seed.value(),
                          timing=self.timing.isChecked())
        running = self.slots.start("compare", job, self._on_done)
        running.progressed.connect(lambda p: self.slots.jobs.get("compare") is running and self._on_progress(p))
        running.finished.connect(lambda: self.slots.jobs.get("compare") is running and self._on_finished())
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.export_button.setEnabled(False)

    def stop(self) -> None:
        self.slots.cancel_all()

    # -- job results ------------------------------------------------------------------------------------------
    def _on_progress(self, p: Progress) -> None:
        if isinstance(p.preview, CompareState) and p.preview.dataset == self.dataset:
            self._show_state(p.preview)

    def _on_done(self, state: CompareState) -> None:
        if state.dataset != self.dataset:  # finished just before a dataset switch: not this dataset's
            return
        self._show_state(state)
        failed = f"; failed: {', '.join(state.failed)}" if state.failed else ""
        self.status.setText(f"{len(state.columns)} models compared on {', '.join(state.providers) or 'ONNX Runtime'}"
                            f"{failed}")
        self.compared.emit()

    def _on_finished(self) -> None:
        self.run_button.setEnabled(bool(self.entries))
        self.stop_button.setEnabled(False)
        self.export_button.setEnabled(bool(self.state and self.state.columns))

    def _show_state(self, state: CompareState) -> None:
        """Show a snapshot; the grid, the table and the chart are redrawn only when what they show changed
        (most progress items only carry a new message)."""
        before = self.state
        self.state = state
        if before is None or len(before.columns) != len(state.columns):
            self.grid_view.set_image(self.grid_image())
        if before is None or before.failed != state.failed:
            lines = [f"Row k: {state.condition.label}; seed {state.seed}."]
            lines += [f"{name}: {why}" for name, why in state.failed.items()]
            self.condition_label.setText("\n".join(lines))
        if before is None or before.timings.keys() != state.timings.keys():
            self._show_rows(table_rows(self.entries, state.timings or None))

    def _show_rows(self, rows: list[dict]) -> None:
        """The table transposed: a column per model (in the samples' order), a row per metric, the best
        value of each row in bold."""
        self.rows = rows
        self.table.setColumnCount(len(rows))
        self.table.setHorizontalHeaderLabels([f"{FAMILY_TITLES.get(r['family'], r['family'])}\n{r['name']}"
                                              for r in rows])
        for i, (key, _) in enumerate(METRICS):
            values = [row.get(key) for row in rows]
            best = _best(key, values)
            for c, value in enumerate(values):
                item = QTableWidgetItem(cell_text(key, value))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if best is not None and value == best and len(rows) > 1:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                    item.setToolTip("the best of the row")
                self.table.setItem(i, c, item)
        self.notes.setText("\n".join(table_notes(rows)) if rows else "")
        self.chart_view.set_image(chart_image(rows) if rows else None)

    # -- export -----------------------------------------------------------------------------------------------
    def _export_dialog(self) -> None:
        default = str(self.ctx.output_dir() / f"comparison-{self.dataset}")
        folder = QFileDialog.getExistingDirectory(self, "Export the comparison into a folder", default)
        if folder:
            self.export(Path(folder))

    def export(self, folder: Path) -> None:
        """Write the report of the current comparison into `folder` (in the background)."""
        if not self.state or not self.state.columns:
            self.status.setText("compare first: there is nothing to export yet")
            return
        self.slots.start("export", report_job(Path(folder), self.state, self.rows),
                         lambda summary: self._on_exported(folder, summary))

    def _on_exported(self, folder: Path, summary: dict) -> None:
        self.status.setText(f"exported {', '.join(Path(f).name for f in summary['files'].values())} to {folder}")
        self.exported.emit(str(folder))

    def grid_image(self) -> np.ndarray | None:
        """The sample grid on screen (uint8 RGB), for tests and screenshots."""
        if not self.state or not self.state.columns:
            return None
        return comparison_grid(self.state.columns, cell=GRID_CELL, font_size=GRID_FONT)
