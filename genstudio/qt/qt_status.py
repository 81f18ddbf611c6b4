"""The main window's status bar: provider in use (and any fallback), running jobs, last job time, job failures, memory."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from PySide6.QtCore import QCoreApplication, QEvent, QTimer, Signal, Slot
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from genstudio.qt.qt_jobs import JobFailure, JobManager, QtJob
from genstudio.runtime import procinfo
from genstudio.runtime import providers as prov
from genstudio.runtime.sessions import LoadedSession, SessionPool

# Any thread -> status bar: "a session fell back" (postEvent is thread-safe; no signal from a plain thread).
_FALLBACK = QEvent.Type(QEvent.registerEventType())
REFRESH_MS = 1500  # how often memory and the pool's sessions are looked at
FAILURE_SHOWN_MS = 30_000  # how long a job failure stays in the status bar


def _elide(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class QtStatusBar(QStatusBar):
    """Watches the SessionPool (polled, plus its fallback callback) and the JobManager (signals)."""

    fallback_seen = Signal(str)  # on the GUI thread, after a session fell back to another provider

    def __init__(self, pool: SessionPool, jobs: JobManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizeGripEnabled(True)
        self._pool = pool
        self._jobs = jobs
        self._probes: dict[str, prov.ProbeResult] = {}
        self._fallbacks: list[str] = []
        self._mail_lock = threading.Lock()
        self._mail: list[str] = []

        self.error_label = QLabel()
        self.error_label.setObjectName("statusError")
        self.error_label.hide()
        self.fallback_label = QLabel()
        self.fallback_label.setObjectName("statusWarning")
        self.fallback_label.hide()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setFixedSize(70, 8)
        self.busy.setTextVisible(False)
        self.busy.hide()
        self.jobs_label = QLabel()
        self.jobs_label.hide()
        self.provider_label = QLabel("Provider: auto")
        self.provider_label.setObjectName("statusProvider")
        self.job_label = QLabel("Last job: –")
        self.memory_label = QLabel("Memory: –")
        for w in (self.error_label, self.fallback_label, self.busy, self.jobs_label, self.provider_label,
                  self.job_label, self.memory_label):
            self.addPermanentWidget(w)

        self._hide_error = QTimer(self)
        self._hide_error.setSingleShot(True)
        self._hide_error.timeout.connect(self.error_label.hide)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

        previous = pool.on_fallback

        def on_fallback(loaded: LoadedSession) -> None:  # runs on the thread that created the session
            with self._mail_lock:
                self._mail.append(loaded.fallback or "")
            QCoreApplication.postEvent(self, QEvent(_FALLBACK))
            if previous is not None:
                previous(loaded)

        pool.on_fallback = on_fallback
        self._previous_on_fallback = previous
        jobs.job_started.connect(self._jobs_changed)
        jobs.job_finished.connect(self._on_job_finished)
        jobs.job_failed.connect(self.show_failure)
        self.refresh()

    # -- provider ----------------------------------------------------------------------------------
    def set_probe_results(self, results: Sequence[prov.ProbeResult]) -> None:
        self._probes = {r.provider: r for r in results}
        self.refresh()

    def provider_text(self) -> str:
        used = self._pool.providers_in_use()
        if used:
            return "Provider: " + ", ".join(prov.short_name(p).upper() for p in used)
        setting = self._pool.config.provider
        if not self._probes:
            return f"Provider: {setting}"
        try:
            wanted = prov.resolve(setting) if setting != "auto" else next(
                p for p in prov.AUTO_ORDER if self._probes.get(p) and self._probes[p].usable)
        except (prov.ProviderError, StopIteration):
            return f"Provider: {setting} (none usable)"
        probe = self._probes.get(wanted)
        name = prov.short_name(wanted).upper()
        if probe is not None and not probe.usable:
            return f"Provider: CPU ({name} not usable)"
        return f"Provider: {name}" + (" (auto)" if setting == "auto" else "")

    def event(self, e: QEvent) -> bool:
        if e.type() == _FALLBACK:
            with self._mail_lock:
                messages, self._mail = self._mail, []
            for m in messages:
                self.show_fallback(m)
            return True
        return super().event(e)

    @Slot(str)
    def show_fallback(self, message: str) -> None:
        if message and message not in self._fallbacks:
            self._fallbacks.append(message)
        self._show_fallbacks()
        if message:
            self.fallback_seen.emit(message)

    def _show_fallbacks(self) -> None:
        live = [s.fallback for s in self._pool.loaded() if s.fallback]
        messages = list(dict.fromkeys(live + self._fallbacks[-1:]))
        if not messages:
            self.fallback_label.hide()
            return
        self.fallback_label.setText("⚠ " + _elide(messages[-1], 70))
        self.fallback_label.setToolTip("\n".join(messages))
        self.fallback_label.show()

    # -- jobs --------------------------------------------------------------------------------------
    def _jobs_changed(self, _job: QtJob | None = None) -> None:
        active = [j for j in self._jobs.active()]
        self.busy.setVisible(bool(active))
        self.jobs_label.setVisible(bool(active))
        if active:
            names = ", ".join(j.name for j in active[:2]) + (f" +{len(active) - 2}" if len(active) > 2 else "")
            self.jobs_label.setText(_elide(f"Running: {names}", 48))

    def _on_job_finished(self, job: QtJob) -> None:
        self._jobs_changed()
        if job.elapsed is not None:
            self.job_label.setText(f"Last job: {job.elapsed:.2f} s")
            self.job_label.setToolTip(f"{job.name}: {job.state} after {job.elapsed:.3f} s")
        self.refresh()

    @Slot(object, object)
    def show_failure(self, job: QtJob, failure: JobFailure) -> None:
        name = getattr(job, "name", "job")
        self.error_label.setText("✖ " + _elide(f"{name} failed: {failure.message}"))
        self.error_label.setToolTip(f"{failure.message}\n\n{failure.details[-2000:]}")
        self.error_label.show()
        self._hide_error.start(FAILURE_SHOWN_MS)

    # -- polling -----------------------------------------------------------------------------------
    @Slot()
    def refresh(self) -> None:
        self.provider_label.setText(self.provider_text())
        self._show_fallbacks()
        mem = procinfo.memory()
        if mem is None:
            self.memory_label.setText("Memory: unknown")
        else:
            prefix = "Memory" if mem.kind == "rss" else "Peak memory"
            self.memory_label.setText(f"{prefix}: {procinfo.format_bytes(mem.bytes)}")
            self.memory_label.setToolTip("Resident set size of this process" if mem.kind == "rss"
                                         else "Peak resident set size (the current size is not available here)")

    def detach(self) -> None:
        """Stop polling and give the pool its previous fallback callback back (the window is closing)."""
        self._timer.stop()
        self._pool.on_fallback = self._previous_on_fallback
