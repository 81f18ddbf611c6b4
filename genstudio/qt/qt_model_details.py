"""The details panel of the Models tab: manifest, files, ONNX inputs and outputs, operators, metrics, benchmark."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from genstudio.qt import qt_icons
from genstudio.qt.qt_widgets import (
    QtBarDelegate,
    QtCard,
    QtFitTable,
    QtKeyValues,
    clear_layout,
    label,
    set_role,
    status_icon,
)
from genstudio.runtime import providers as prov
from genstudio.runtime.benchmark import DEFAULT_RUNS, DEFAULT_WARMUP, BenchmarkRow
from genstudio.runtime.procinfo import format_bytes
from genstudio.runtime.registry import ModelEntry
from genstudio.runtime.safety import OnnxReport

PENDING = "inspecting…"
EMPTY_TEXT = "Select a model to see its files, inputs and outputs, operators and metrics."


def human_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n:,} ({n / size:.1f} {unit})"
    return f"{n:,}"


def format_shape(shape: Sequence[Any]) -> str:
    if not shape:
        return "scalar or unknown"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def format_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(format_value(x) for x in v)
    return str(v)


def flatten(d: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            rows.extend(flatten(v, key + "."))
        else:
            rows.append((key, format_value(v)))
    return rows


class QtModelDetails(QScrollArea):
    """Shows one registry entry. The tab fills it in two steps: the manifest now, the ONNX reports later."""

    benchmark_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.stack = QStackedWidget()
        self.setWidget(self.stack)
        self.entry: ModelEntry | None = None

        # empty state
        self.empty_page = QWidget()
        ev = QVBoxLayout(self.empty_page)
        ev.addStretch(2)
        self.empty_title = label("No model selected", "heading")
        self.empty_title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label = label(EMPTY_TEXT, "empty", wrap=True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        ev.addWidget(self.empty_title)
        ev.addWidget(self.empty_label)
        ev.addStretch(3)
        self.stack.addWidget(self.empty_page)

        # details
        self.page = QWidget()
        page = QVBoxLayout(self.page)
        page.setContentsMargins(4, 0, 10, 12)
        page.setSpacing(12)
        self.stack.addWidget(self.page)

        header = QtCard(spacing=6)
        top = QHBoxLayout()
        top.setSpacing(10)
        self.title = label("", "title", selectable=True)
        self.pills = QHBoxLayout()
        self.pills.setSpacing(6)
        top.addWidget(self.title)
        top.addLayout(self.pills, 1)
        state = QHBoxLayout()
        state.setSpacing(6)
        self.status_icon = QLabel()
        self.status_icon.setFixedSize(16, 16)
        self.status = label("", "ok", selectable=True, wrap=True)
        state.addWidget(self.status_icon, 0, Qt.AlignmentFlag.AlignTop)
        state.addWidget(self.status, 1)
        self.description = label("", None, selectable=True, wrap=True)
        self.folder = label("", "muted", selectable=True, wrap=True)
        header.body.addLayout(top)
        header.body.addLayout(state)
        header.body.addWidget(self.description)
        header.body.addWidget(self.folder)
        page.addWidget(header)

        overview = QtCard("Overview")
        self.overview = QtKeyValues()
        overview.body.addWidget(self.overview)
        overview.body.addStretch(1)
        provenance = QtCard("Provenance")
        self.provenance = QtKeyValues()
        self.build_command = label("", "code", selectable=True, wrap=True)
        provenance.body.addWidget(self.provenance)
        provenance.body.addWidget(self.build_command)
        provenance.body.addStretch(1)
        page.addLayout(_pair(overview, provenance))

        files = QtCard("Files")
        self.files = QtFitTable(["File", "Role", "Size"], stretch=0)
        files.body.addWidget(self.files)
        files.body.addStretch(1)
        metrics = QtCard("Metrics")
        self.metrics_note = label("", "muted", wrap=True)
        self.metrics = QtKeyValues()
        metrics.body.addWidget(self.metrics_note)
        metrics.body.addWidget(self.metrics)
        metrics.body.addStretch(1)
        page.addLayout(_pair(files, metrics))

        io = QtCard("Inputs and outputs")
        self.io_note = label("", "muted", wrap=True)
        self.io = QtFitTable(["", "Name", "Data type", "Shape", "Graph"])
        io.body.addWidget(self.io_note)
        io.body.addWidget(self.io)
        page.addWidget(io)

        ops = QtCard("Operators")
        self.ops_note = label("", "muted", wrap=True)
        self.ops = QtFitTable(["Operator", "Count"], stretch=1, max_rows=12)
        self.ops_bars = QtBarDelegate(self.ops)
        self.ops.setItemDelegateForColumn(1, self.ops_bars)
        self.ops.horizontalHeader().setMinimumSectionSize(90)
        ops.body.addWidget(self.ops_note)
        ops.body.addWidget(self.ops)
        ops.body.addStretch(1)

        bench = QtCard("Benchmark")
        self.bench_note = label(f"Times every ONNX graph on example inputs with each usable provider: "
                                f"{DEFAULT_WARMUP} warm-up runs, then {DEFAULT_RUNS} timed runs.", "muted", wrap=True)
        self.bench_button = QPushButton("Run benchmark")
        self.bench_button.setProperty("primary", True)
        self.bench_button.setProperty("icon_name", "stopwatch")
        self.bench_button.setIcon(qt_icons.icon("stopwatch", "#ffffff"))
        self.bench_button.setIconSize(QSize(16, 16))
        self.bench_button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.bench_button.clicked.connect(self.benchmark_requested)
        self.bench_progress = QProgressBar()
        self.bench_progress.setTextVisible(False)
        self.bench_progress.setFixedHeight(8)
        self.bench_progress.hide()
        self.bench_status = label("", "muted", wrap=True)
        self.bench_status.hide()
        self.bench = QtFitTable(["Provider", "File", "Runs", "Mean ms", "Median ms", "Min ms", "Note"])
        self.bench.hide()
        bench.body.addWidget(self.bench_note)
        bench.body.addWidget(self.bench_button)
        bench.body.addWidget(self.bench_progress)
        bench.body.addWidget(self.bench_status)
        bench.body.addWidget(self.bench)
        bench.body.addStretch(1)
        page.addLayout(_pair(ops, bench))
        page.addStretch(1)
        self.show_empty()

    # -- states ------------------------------------------------------------------------------------
    def show_empty(self, text: str = EMPTY_TEXT, title: str = "No model selected") -> None:
        self.entry = None
        self.empty_title.setText(title)
        self.empty_label.setText(text)
        self.stack.setCurrentWidget(self.empty_page)

    def show_entry(self, entry: ModelEntry, *, provider_text: str = "") -> None:
        """Everything the manifest and the file system tell; the ONNX parts wait for `show_reports`."""
        self.entry = entry
        m = entry.manifest
        self.stack.setCurrentWidget(self.page)
        self.verticalScrollBar().setValue(0)
        self.title.setText(m.display_name if m else entry.folder.name)
        self._set_pills([entry.family, f"v{m.version}" if m else "no manifest", entry.source,
                         entry.name if m and m.title and m.title != entry.name else ""])
        if entry.ready:
            self.status.setText("Ready")
            set_role(self.status, "ok")
            self.status_icon.setPixmap(status_icon("ready", 16).pixmap(16, 16))
        else:
            self.status.setText(f"Not ready: {entry.error}")
            set_role(self.status, "error")
            self.status_icon.setPixmap(status_icon("error", 16).pixmap(16, 16))
        self.description.setText(m.description if m else "")
        self.description.setVisible(bool(m and m.description))
        self.folder.setText(str(entry.folder))
        onnx_count = len(m.onnx_files()) if m else 0
        size = _size_on_disk(entry)
        self.overview.set_rows([
            ("Family", entry.family),
            ("Version", m.version if m else "-"),
            ("Size on disk", size),
            ("Files", f"{len(m.files)} ({onnx_count} ONNX)" if m else "-"),
            ("Parameters", PENDING if onnx_count and entry.ready else "-"),
            ("ONNX", PENDING if onnx_count and entry.ready else "-"),
            ("Provider in use", provider_text or "-"),
        ])
        self._show_provenance(entry)
        self._show_files(entry)
        self._show_metrics(entry)
        waiting = "Reading the ONNX graphs in a checker process…" if onnx_count and entry.ready else (
            "Shown once the model is ready." if onnx_count else "This model has no ONNX graph.")
        self.io_note.setText(waiting)
        self.io_note.show()
        self.io.set_rows([])
        self.io.hide()
        self.ops_note.setText(waiting)
        self.ops_note.show()
        self.ops.set_rows([])
        self.ops.hide()
        self.bench_button.setEnabled(entry.ready and onnx_count > 0)
        self.bench_progress.hide()
        self.bench_status.hide()
        self.bench.hide()

    def show_reports(self, reports: Mapping[str, OnnxReport], errors: Mapping[str, str]) -> None:
        """The checker's reports by file (relative path), and the files it refused with the reason."""
        m = self.entry.manifest if self.entry else None
        roles = {f.path: f.role for f in m.files} if m else {}
        params = sum(r.parameters for r in reports.values())
        self.overview.set_value("Parameters", human_count(params) if reports else "-")
        onnx_bits = []
        for path, r in reports.items():
            opsets = ", ".join(f"{d} {v}" for d, v in sorted(r.opsets.items()))
            producer = f", by {r.producer}" if r.producer else ""
            onnx_bits.append(f"IR {r.ir_version}, opset {opsets}{producer}" if len(reports) == 1
                             else f"{path}: IR {r.ir_version}, opset {opsets}")
        self.overview.set_value("ONNX", "\n".join(onnx_bits) or "-")
        io_rows = []
        for path, r in reports.items():
            for kind, specs in (("in", r.inputs), ("out", r.outputs)):
                for spec in specs:
                    io_rows.append(["→ input" if kind == "in" else "← output", spec["name"], spec.get("dtype", "?"),
                                    format_shape(spec.get("shape", [])), roles.get(path, path)])
        self.io.set_rows(io_rows)
        self.io.setColumnHidden(4, len(reports) < 2)
        notes = [f"{path} was refused: {why}" for path, why in errors.items()]
        self.io_note.setText("\n".join(notes))
        self.io_note.setVisible(bool(notes))
        set_role(self.io_note, "error" if notes else "muted")
        self.io.setVisible(bool(io_rows))
        hist: dict[str, int] = {}
        for r in reports.values():
            for op, n in r.op_histogram.items():
                hist[op] = hist.get(op, 0) + n
        ops = sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))
        self.ops_bars.maximum = float(ops[0][1]) if ops else 1.0
        self.ops.set_rows([[op, n] for op, n in ops], numeric=(1,))
        total = sum(hist.values())
        self.ops_note.setText(f"{total:,} nodes, {len(hist)} distinct operators" if hist else
                              ("\n".join(notes) or "No nodes."))
        self.ops_note.show()
        self.ops.setVisible(bool(ops))

    def show_provider(self, text: str) -> None:
        self.overview.set_value("Provider in use", text)

    # -- benchmark ---------------------------------------------------------------------------------
    def benchmark_started(self) -> None:
        self.bench_button.setEnabled(False)
        self.bench_button.setText("Running…")
        self.bench_progress.setRange(0, 0)
        self.bench_progress.show()
        self.bench_status.setText("Probing providers…")
        set_role(self.bench_status, "muted")
        self.bench_status.show()

    def benchmark_progress(self, step: int, total: int | None, message: str) -> None:
        if total:
            self.bench_progress.setRange(0, total)
            self.bench_progress.setValue(step)
        self.bench_status.setText(message)

    def benchmark_finished(self, rows: Sequence[BenchmarkRow] | None, error: str = "", elapsed: float | None = None) -> None:
        self.bench_button.setText("Run benchmark")
        self.bench_button.setEnabled(bool(self.entry and self.entry.ready))
        self.bench_progress.hide()
        if error:
            self.bench_status.setText(error)
            set_role(self.bench_status, "error")
            self.bench_status.show()
            return
        if rows is not None:
            self.show_benchmark_rows(rows, elapsed)

    def show_benchmark_rows(self, rows: Sequence[BenchmarkRow], elapsed: float | None = None) -> None:
        def ms(v: float | None) -> str:
            return f"{v:.3f}" if v is not None else "-"

        self.bench.set_rows([[prov.short_name(r.provider), r.file, r.runs, ms(r.mean_ms), ms(r.median_ms),
                              ms(r.min_ms), r.note] for r in rows], numeric=(2, 3, 4, 5))
        files = {r.file for r in rows}
        self.bench.setColumnHidden(1, len(files) < 2)
        self.bench.setColumnHidden(6, not any(r.note for r in rows))
        self.bench.show()
        took = f" in {elapsed:.2f} s" if elapsed is not None else ""
        self.bench_status.setText(f"Measured {len(rows)} provider/graph pair(s){took}; times are per run.")
        set_role(self.bench_status, "muted")
        self.bench_status.show()

    # -- parts -------------------------------------------------------------------------------------
    def _set_pills(self, texts: Sequence[str]) -> None:
        clear_layout(self.pills)
        for t in texts:
            if t:
                self.pills.addWidget(label(t, "pill"), 0, Qt.AlignmentFlag.AlignVCenter)
        self.pills.addStretch(1)

    def _show_provenance(self, entry: ModelEntry) -> None:
        m = entry.manifest
        if m is None:
            self.provenance.set_rows([("Manifest", "missing or unreadable")])
            self.build_command.hide()
            return
        build = dict(m.build)
        command = build.pop("command", None)
        rows = [("License", m.license or "not stated"), ("Data source", m.data_source or "not stated")]
        rows += [(k.replace("_", " ").capitalize(), format_value(v)) for k, v in flatten(build)]
        self.provenance.set_rows(rows)
        if isinstance(command, (list, tuple)):
            command = " ".join(str(c) for c in command)
        self.build_command.setText(f"$ {command}" if command else "")
        self.build_command.setVisible(bool(command))

    def _show_files(self, entry: ModelEntry) -> None:
        m = entry.manifest
        rows = []
        if m:
            for f in m.files:
                p = entry.folder / f.path
                try:
                    size = format_bytes(p.stat().st_size) if p.is_file() else ("folder" if p.is_dir() else "missing")
                except OSError:
                    size = "unreadable"
                rows.append([f.path, f.role, size])
        self.files.set_rows(rows, numeric=(2,))

    def _show_metrics(self, entry: ModelEntry) -> None:
        metrics = entry.manifest.metrics if entry.manifest else {}
        rows = flatten(metrics)
        self.metrics.set_rows(rows)
        self.metrics.setVisible(bool(rows))
        self.metrics_note.setText("" if rows else "The manifest records no measured metrics.")
        self.metrics_note.setVisible(not rows)


def _pair(left: QWidget, right: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setSpacing(12)
    row.addWidget(left, 1)
    row.addWidget(right, 1)
    return row


def _size_on_disk(entry: ModelEntry) -> str:
    try:
        return format_bytes(entry.size_bytes())
    except OSError as e:
        return f"unreadable ({e.strerror})"
