"""The Models tab: every model folder with its status, its details, import (buttons or drag and drop), benchmark."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QDragEnterEvent, QDropEvent, QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from genstudio.qt import qt_icons
from genstudio.qt.qt_context import StudioContext, TabSpec
from genstudio.qt.qt_jobs import JobFailure, QtJob
from genstudio.qt.qt_model_details import QtModelDetails
from genstudio.qt.qt_model_list import QtModelList
from genstudio.qt.qt_widgets import label
from genstudio.runtime import providers as prov
from genstudio.runtime import safety
from genstudio.runtime.benchmark import BenchmarkRow, benchmark_model
from genstudio.runtime.jobs import Progress
from genstudio.runtime.registry import ModelEntry, Registry
from genstudio.runtime.sessions import SessionPool


# -- jobs (plain generators: they run on worker threads and touch no widget) ----------------------
def inspect_job(entry: ModelEntry, pool: SessionPool) -> Generator[Progress, None, dict[str, Any]]:
    """Deep-check every ONNX file of `entry` (child process) and say which provider it runs or would run on."""
    reports: dict[str, safety.OnnxReport] = {}
    errors: dict[str, str] = {}
    files = entry.manifest.onnx_files() if entry.manifest and entry.ready else []
    for i, f in enumerate(files):
        yield Progress(i, len(files), f"checking {f.path}")
        try:
            reports[f.path] = safety.ensure_safe(entry.folder / f.path, root=entry.folder)
        except safety.UnsafeModelError as e:
            errors[f.path] = str(e)
    yield Progress(len(files), len(files), "checking providers")
    return {"reports": reports, "errors": errors, "provider": provider_text(entry, pool)}


def provider_text(entry: ModelEntry, pool: SessionPool) -> str:
    """Where this model's sessions run now, or would run with the current setting (probes on first use)."""
    folder = str(entry.folder.resolve())
    loaded = [s for s in pool.loaded() if str(s.path.resolve()).startswith(folder)]
    if loaded:
        s = loaded[0]
        text = f"{prov.short_name(s.provider).upper()} (session loaded)"
        return f"{text}; {s.fallback}" if s.fallback else text
    setting = pool.config.provider
    try:
        requested = prov.resolve(setting)
    except prov.ProviderError as e:
        return f"none: {e}"
    probe = prov.probe(requested)
    name = prov.short_name(requested).upper()
    if not probe.usable:
        return f"CPU when loaded ({name} is not usable here: {probe.detail})"
    return f"{name} when loaded (setting: {setting}; no session yet)"


def import_job(paths: Sequence[Path], roots: list[tuple[Path, str]]) -> Generator[Progress, None, dict[str, Any]]:
    """Import each path with Registry.import_path; a failed import leaves nothing behind in the models folder."""
    from genstudio.runtime import paths as gs_paths

    dest_root = next((root for root, source in roots if source == "user"), gs_paths.user_models_dir())
    imported: list[ModelEntry] = []
    errors: list[str] = []
    for i, path in enumerate(paths):
        yield Progress(i, len(paths), f"importing {path.name}")
        registry = Registry(roots)  # a private registry: the GUI thread's one is never touched here
        before = set(dest_root.iterdir()) if dest_root.is_dir() else set()
        try:
            imported.append(registry.import_path(path, dest_root=dest_root))
        except Exception as e:  # every refusal is a message, and a half-made folder is removed
            for leftover in (set(dest_root.iterdir()) if dest_root.is_dir() else set()) - before:
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
            errors.append(f"{path.name}: {e}")
    yield Progress(len(paths), len(paths), "imported")
    return {"imported": imported, "errors": errors}


def check_job(path: Path) -> Generator[Progress, None, str]:
    """The checks an import runs, without copying: a summary line, or UnsafeModelError/ModelNotReady."""
    from genstudio.runtime.registry import ModelNotReady, check_folder

    yield Progress(0, 1, f"checking {path.name}")
    if path.is_dir():
        entry = check_folder(path, "user", deep=True)
        if not entry.ready:
            raise ModelNotReady(entry.error or "not ready")
        return f"{entry.name} ({entry.family}): {len(entry.reports)} ONNX file(s) checked"
    report = safety.ensure_safe(path, root=path.parent)
    return f"{path.name}: {report.summary()}"


def importable(path: Path) -> bool:
    return path.is_dir() or (path.is_file() and path.suffix.lower() == ".onnx")


# -- the tab -------------------------------------------------------------------------------------
class QtModelsTab(QWidget):
    """List on the left, details on the right. Long work (checks, imports, benchmarks) runs as jobs."""

    details_filled = Signal(str)  # the entry's folder, once its ONNX details are shown
    settled = Signal()  # nothing left to fill for the current selection
    imported = Signal(list)  # the ModelEntry objects just imported
    rescanned = Signal()  # Refresh: models added to or removed from the folders by hand are now listed
    import_failed = Signal(str)  # the message shown to the user
    benchmark_done = Signal(list)  # BenchmarkRow list
    offered = Signal(object)  # offer_import's QMessageBox: the question, or why the path cannot be imported

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.setAcceptDrops(True)
        self._details_job: QtJob | None = None
        self._import_job: QtJob | None = None
        self._bench_job: QtJob | None = None
        self._bench_for: str | None = None
        self._filled: dict[str, dict[str, Any]] = {}  # folder -> inspect_job's result
        self._bench_rows: dict[str, tuple[list[BenchmarkRow], float | None]] = {}
        self.last_message: QMessageBox | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)
        outer.setSpacing(10)

        bar = QHBoxLayout()
        bar.setSpacing(8)
        self.summary = label("", "heading")
        bar.addWidget(self.summary)
        bar.addStretch(1)
        self.import_folder_button = self._button("Import folder…", "folder-plus", self.choose_folder,
                                                 "Check a model folder (with a model.json) and copy it into your models")
        self.import_file_button = self._button("Import .onnx…", "file-plus", self.choose_file,
                                               "Check a bare ONNX graph and add it as a model")
        self.refresh_button = self._button("Refresh", "refresh", self.refresh, "Scan the model folders again")
        self.open_button = self._button("Open folder", "folder-open", self.open_folder,
                                        "Show the selected model's folder in the file manager")
        for b in (self.import_folder_button, self.import_file_button, self.refresh_button, self.open_button):
            bar.addWidget(b)
        outer.addLayout(bar)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setHandleWidth(12)
        self.left = left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.setSpacing(6)
        self.list = QtModelList()
        self.list.setMinimumWidth(240)
        self.list.setIconSize(QSize(18, 18))
        self.roots_note = label("", "muted", wrap=True, selectable=True)
        lv.addWidget(self.list, 1)
        lv.addWidget(self.roots_note)
        self.details = QtModelDetails()
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([320, 900])
        outer.addWidget(self.splitter, 1)

        self.drop_hint = QLabel("Drop a model folder or an .onnx file to import it", self)
        self.drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.drop_hint.setStyleSheet("background: rgba(47,111,235,0.12); border: 2px dashed #2f6feb; "
                                     "border-radius: 10px; color: #2f6feb; font-size: 13pt; font-weight: 600;")
        self.drop_hint.hide()

        self.list.entry_selected.connect(self._on_selected)
        self.details.benchmark_requested.connect(self.run_benchmark)
        self.populate(select_first=True)

    def _button(self, text: str, icon: str, slot, tip: str) -> QPushButton:
        b = QPushButton(qt_icons.themed(icon, self), text)
        b.setProperty("icon_name", icon)
        b.setIconSize(QSize(16, 16))
        b.setToolTip(tip)
        b.clicked.connect(slot)
        return b

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            for b in self.findChildren(QPushButton):
                name = b.property("icon_name")
                if name:
                    role = QPalette.ColorRole.HighlightedText if b.property("primary") else QPalette.ColorRole.ButtonText
                    b.setIcon(qt_icons.themed(name, self, role))

    # -- list ----------------------------------------------------------------------------------------
    def populate(self, *, select_first: bool = False, keep: str | None = None) -> None:
        entries = self.ctx.registry.scan()
        listed = {str(e.folder) for e in entries}
        for cache in (self._filled, self._bench_rows):
            for key in [k for k in cache if k not in listed]:
                del cache[key]  # gone from the disk: a model put there later must not show these numbers
        current = keep or (str(self.list.current_entry().folder) if self.list.current_entry() else None)
        if current is None and select_first and entries:
            first = next((e for e in entries if e.ready), entries[0])
            current = str(first.folder)
        self.list.set_entries(entries, keep=current)
        ready = sum(e.ready for e in entries)
        self.summary.setText(f"{len(entries)} model{'s' if len(entries) != 1 else ''} · {ready} ready"
                             if entries else "No models installed")
        self.left.setVisible(bool(entries))  # with no models, one empty state fills the tab
        roots = "\n".join(f"{source}: {root}" for root, source in self.ctx.registry.roots)
        self.roots_note.setText(f"Scanned folders\n{roots}")
        if not entries:
            self.details.show_empty("Import a model folder or an .onnx file with the buttons above, or drop one "
                                    f"onto this tab.\n\nThe studio looks for models in\n{roots}",
                                    title="No models yet")
            self._emit_settled()

    def refresh(self) -> None:
        self.populate()
        self.ctx.show_status(f"Models rescanned: {self.list.count()} found")
        self.rescanned.emit()

    def current_entry(self) -> ModelEntry | None:
        return self.list.current_entry()

    def _on_selected(self, entry: ModelEntry | None) -> None:
        if self._details_job is not None:
            self._details_job.cancel()
            self._details_job = None
        if entry is None:
            self.details.show_empty()
            self._emit_settled()
            return
        key = str(entry.folder)
        self.details.show_entry(entry, provider_text="checking…")
        bench = self._bench_rows.get(key)
        if bench:
            self.details.show_benchmark_rows(*bench)
        if self._bench_job is not None and self._bench_for == key:
            self.details.benchmark_started()
        if not entry.ready:
            self.details.show_provider("-")
            self._emit_settled()
            return
        job = self._start(f"inspect {entry.name}", inspect_job(entry, self.ctx.pool))
        if job is None:
            return
        self._details_job = job
        job.succeeded.connect(lambda result, e=entry, j=job: self._on_inspected(e, j, result))
        job.failed.connect(lambda failure, e=entry, j=job: self._on_inspect_failed(e, j, failure))

    def _on_inspected(self, entry: ModelEntry, job: QtJob, result: dict[str, Any]) -> None:
        key = str(entry.folder)
        self._filled[key] = result
        entry.reports.update(result["reports"])
        if result["errors"] and entry.error is None:  # the deep check refused a file: the model is not ready
            path, why = next(iter(result["errors"].items()))
            entry.error = f"{path}: {why}"
            self.list.refresh_entry(entry)
        if job is not self._details_job:
            return  # the user moved on; the result stays cached in entry.reports
        self._details_job = None
        if not entry.ready:
            self.details.show_entry(entry)
        self.details.show_reports(result["reports"], result["errors"])
        self.details.show_provider(result["provider"])
        self.details_filled.emit(key)
        self._emit_settled()

    def _on_inspect_failed(self, entry: ModelEntry, job: QtJob, failure: JobFailure) -> None:
        if job is not self._details_job:
            return
        self._details_job = None
        self.details.show_reports({}, {"(check)": failure.message})
        self.details.show_provider("-")
        self._emit_settled()

    def _start(self, name: str, gen: Generator[Any, None, Any]) -> QtJob | None:
        """A job on the shared manager; None once the studio is closing (it takes no new jobs then)."""
        try:
            return self.ctx.jobs.start(name, gen)
        except RuntimeError:
            gen.close()
            return None

    # -- settling (genstudio shot waits for it) -------------------------------------------------------
    def is_settled(self) -> bool:
        return self._details_job is None and self._import_job is None

    def _emit_settled(self) -> None:
        if self.is_settled():
            QTimer.singleShot(0, self, self.settled.emit)

    # -- import ----------------------------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a model folder", str(Path.home()))
        if folder:
            self.import_paths([Path(folder)])

    def choose_file(self) -> None:
        file, _ = QFileDialog.getOpenFileName(self, "Import an ONNX graph", str(Path.home()), "ONNX graphs (*.onnx)")
        if file:
            self.import_paths([Path(file)])

    def import_paths(self, paths: Sequence[Path]) -> QtJob | None:
        """Check and copy each path into the user's models folder (in a job); errors go to a message box."""
        paths = [Path(p) for p in paths]
        if not paths:
            return None
        if self._import_job is not None:
            self._message("Import", "An import is already running; try again when it has finished.",
                          QMessageBox.Icon.Information)
            return None
        job = self._start("import", import_job(paths, list(self.ctx.registry.roots)))
        if job is None:
            return None
        self._set_importing(True, paths)
        self._import_job = job
        job.progressed.connect(lambda p: self.ctx.show_status(p.message))
        job.succeeded.connect(self._on_imported)
        job.failed.connect(lambda failure: self._on_import_done_with_errors([failure.message]))
        return job

    def offer_import(self, path: Path) -> QtJob | None:
        """A model opened from outside (`genstudio PATH`, a double-click): select it if listed, else check it
        (in a job) and ask whether to import it. A model.json stands for its folder."""
        path = Path(path)
        if path.name == "model.json" and path.is_file():
            path = path.parent
        listed = next((self.list.entry_at(i) for i in range(self.list.count())
                       if self.list.entry_at(i).folder.resolve() == path.resolve()), None)
        if listed is not None:
            self.populate(keep=str(listed.folder))
            self.ctx.show_status(f"{listed.name} is already in your models")
            return None
        if not importable(path):
            self.offered.emit(self._message("Open model", f"{path} is not a model folder or an .onnx file.",
                                            QMessageBox.Icon.Warning))
            return None
        job = self._start(f"check {path.name}", check_job(path))
        if job is None:
            return None
        self.summary.setText(f"checking {path.name}…")
        job.succeeded.connect(lambda summary: self._ask_import(path, summary))
        job.failed.connect(lambda failure: self._refuse_offer(path, failure.message))
        return job

    def _ask_import(self, path: Path, summary: str) -> None:
        self.populate()
        box = QMessageBox(QMessageBox.Icon.Question, "Import model",
                          f"Import {path.name} into your models folder?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setInformativeText(f"It passed the checks: {summary}\n\nFrom: {path}")
        box.setDefaultButton(QMessageBox.StandardButton.Yes)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda result: self.import_paths([path])
                             if result == QMessageBox.StandardButton.Yes else None)
        box.open()
        self.last_message = box
        self.offered.emit(box)

    def _refuse_offer(self, path: Path, why: str) -> None:
        self.populate()
        self.offered.emit(self._message("Open model", f"{path.name} cannot be imported.", QMessageBox.Icon.Critical,
                                        details=why))

    def _set_importing(self, busy: bool, paths: Sequence[Path] = ()) -> None:
        for b in (self.import_folder_button, self.import_file_button, self.refresh_button):
            b.setEnabled(not busy)
        if busy:
            names = ", ".join(p.name for p in paths)
            self.summary.setText(f"importing {names}…")

    def _on_imported(self, result: dict[str, Any]) -> None:
        self._import_job = None
        self._set_importing(False)
        entries: list[ModelEntry] = result["imported"]
        self.populate(keep=str(entries[-1].folder) if entries else None)
        if entries:
            self.ctx.show_status(f"Imported {', '.join(e.name for e in entries)}")
            self.imported.emit(entries)
        if result["errors"]:
            self._on_import_done_with_errors(result["errors"], refreshed=True)
        else:
            self._emit_settled()

    def _on_import_done_with_errors(self, errors: Sequence[str], refreshed: bool = False) -> None:
        if self._import_job is not None:
            self._import_job = None
            self._set_importing(False)
        if not refreshed:
            self.populate()
        text = "\n\n".join(errors)
        what = ("This model was not imported" if len(errors) == 1 else f"{len(errors)} models were not imported")
        self._message("Import failed", f"{what}; nothing of it was copied.", QMessageBox.Icon.Critical, details=text)
        self.import_failed.emit(text)
        self._emit_settled()

    def _message(self, title: str, text: str, icon: QMessageBox.Icon, details: str = "") -> QMessageBox:
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        if details:
            box.setInformativeText(details)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # window-modal and non-blocking: the event loop (and qasync) keep running
        self.last_message = box
        return box

    # -- drag and drop ---------------------------------------------------------------------------------
    @staticmethod
    def _dropped_paths(event: QDragEnterEvent | QDropEvent) -> list[Path]:
        mime = event.mimeData()
        if not mime.hasUrls():
            return []
        return [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile() and importable(Path(u.toLocalFile()))]

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_paths(event):
            event.acceptProposedAction()
            self.drop_hint.setGeometry(self.rect().adjusted(12, 12, -12, -12))
            self.drop_hint.raise_()
            self.drop_hint.show()
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        self.drop_hint.hide()

    def dropEvent(self, event: QDropEvent) -> None:
        self.drop_hint.hide()
        paths = self._dropped_paths(event)
        if paths:
            event.acceptProposedAction()
            self.import_paths(paths)

    # -- benchmark -------------------------------------------------------------------------------------
    def run_benchmark(self) -> QtJob | None:
        entry = self.current_entry()
        if entry is None or not entry.ready:
            return None
        if self._bench_job is not None:  # one benchmark at a time; say so rather than ignore the click
            self.ctx.show_status("A benchmark is already running; try again when it has finished.")
            return None
        key = str(entry.folder)
        job = self._start(f"benchmark {entry.name}", benchmark_model(entry, threads=self.ctx.pool.config.threads))
        if job is None:
            return None
        self._bench_job, self._bench_for = job, key
        self.details.benchmark_started()

        def on_progress(p: Progress) -> None:
            if self._current_key() == key:
                self.details.benchmark_progress(p.step, p.total, p.message)

        def on_done(rows: list[BenchmarkRow]) -> None:
            if self._listed(key):  # not when the model was removed (and the list rescanned) while it ran
                self._bench_rows[key] = (rows, job.elapsed)
            if self._current_key() == key:
                self.details.benchmark_finished(rows, elapsed=job.elapsed)
            self.benchmark_done.emit(rows)

        def on_failed(failure: JobFailure) -> None:
            if self._current_key() == key:
                self.details.benchmark_finished(None, error=f"Benchmark failed: {failure.message}")

        def on_cancelled(_last: Any) -> None:
            if self._current_key() == key:
                self.details.benchmark_finished(None, error="Benchmark stopped.")

        def on_finished() -> None:
            self._bench_job, self._bench_for = None, None

        job.progressed.connect(on_progress)
        job.succeeded.connect(on_done)
        job.failed.connect(on_failed)
        job.cancelled.connect(on_cancelled)
        job.finished.connect(on_finished)
        return job

    def _listed(self, key: str) -> bool:
        return any(str(self.list.entry_at(i).folder) == key for i in range(self.list.count()))

    def _current_key(self) -> str | None:
        e = self.current_entry()
        return str(e.folder) if e else None

    # -- shell hooks -----------------------------------------------------------------------------------
    def open_folder(self) -> Path | None:
        """Show the selected model's folder (else the user's models folder); None when the model's folder
        has gone from the disk since the scan: the list is rescanned and the status bar says so."""
        entry = self.current_entry()
        if entry is not None and not entry.folder.is_dir():
            self.populate()
            self.ctx.show_status(f"{entry.name} is no longer on disk ({entry.folder}); the models were rescanned")
            return None
        if entry is not None:
            folder = entry.folder
        else:
            folder = next((root for root, source in self.ctx.registry.roots if source == "user"),
                          self.ctx.registry.roots[0][0])
            folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
        return folder

    def can_save_output(self) -> bool:
        return self.current_entry() is not None

    def save_output(self, folder: Path) -> Path | None:
        """Write the selected model's details (manifest, ONNX reports, benchmark) as JSON into `folder`."""
        entry = self.current_entry()
        if entry is None:
            return None
        key = str(entry.folder)
        filled = self._filled.get(key, {})
        rows = self._bench_rows.get(key, ([], None))[0]
        report = {
            "model": entry.to_dict(),
            "manifest": entry.manifest.to_dict() if entry.manifest else None,
            "onnx": {p: r.to_dict() for p, r in filled.get("reports", {}).items()},
            "refused": filled.get("errors", {}),
            "provider": filled.get("provider"),
            "benchmark": [r.to_dict() for r in rows],
            "saved": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / f"{entry.name}-details.json"
        tmp = out.with_suffix(".json.part")
        tmp.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(out)
        return out

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.drop_hint.isVisible():
            self.drop_hint.setGeometry(self.rect().adjusted(12, 12, -12, -12))


MODELS_TAB = TabSpec(key="models", title="Models", factory=QtModelsTab)
