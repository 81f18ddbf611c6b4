"""Runs engine job generators on worker threads and delivers their progress to the GUI thread.

A job is a generator (see genstudio.runtime.jobs): each `yield` is progress and a cancel point.
`JobManager.start(name, gen)` returns a `QtJob` whose signals fire on the GUI thread:

    job = ctx.jobs.start("sample", engine.sample(request))
    job.progressed.connect(show_preview)       # newest wins: stale progress is dropped
    result = await job                          # under qasync; or connect job.succeeded

Cancel takes effect at the next `yield`; closing the window cancels and joins every job.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Signal

if TYPE_CHECKING:
    import asyncio

_NOTHING = object()
# Worker -> GUI wake-up: one posted event per batch of mail (postEvent is thread-safe and needs no
# signal emission from a plain Python thread).
_WAKE = QEvent.Type(QEvent.registerEventType())


@dataclass
class JobFailure:
    message: str  # one line for the user: "ValueError: prompt is too long (600 > 512 tokens)"
    details: str  # the traceback, for a "details" disclosure


class JobCancelled(Exception):
    """What `await job` raises when the job was cancelled; `last` is the newest progress seen."""

    def __init__(self, last: Any = None) -> None:
        super().__init__("cancelled")
        self.last = last


class QtJob(QObject):
    """One generator on one worker thread. Signals are delivered on the thread that created the job."""

    progressed = Signal(object)  # the newest yielded item
    succeeded = Signal(object)  # the generator's return value
    failed = Signal(object)  # JobFailure
    cancelled = Signal(object)  # the last progress seen (a stop keeps the last preview)
    finished = Signal()  # after any of the three above

    def __init__(self, name: str, gen: Generator[Any, None, Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._gen = gen
        self._cancel = threading.Event()
        self._mail_lock = threading.Lock()
        self._mail_progress: Any = _NOTHING
        self._mail_end: tuple[str, Any] | None = None
        self._wake_pending = False
        self._last_progress: Any = None
        self._thread = threading.Thread(target=self._work, name=f"job:{name}", daemon=True)
        self._future: asyncio.Future | None = None
        self.started_at: float | None = None
        self.elapsed: float | None = None  # seconds, once finished
        self.state = "new"  # new, running, succeeded, failed, cancelled
        self.progress_count = 0  # yields seen by the worker (delivered or dropped)
        self.delivered_count = 0  # progress signals emitted on the GUI thread

    # -- control (GUI thread) -------------------------------------------------------------------
    def start(self) -> QtJob:
        self.started_at = time.perf_counter()
        self.state = "running"
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the job to stop; it stops at its next yield."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def is_running(self) -> bool:
        return self.state == "running"

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker thread; True when it has ended."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def __await__(self):
        return self.result().__await__()

    async def result(self) -> Any:
        """Await the return value under qasync; raises JobCancelled or RuntimeError on failure."""
        import asyncio  # here: the studio's first paint does not wait for asyncio's import

        loop = asyncio.get_running_loop()
        if self._future is None:
            self._future = loop.create_future()
            if self.state != "running" and self.state != "new":
                self._settle_future()
        return await self._future

    # -- worker thread --------------------------------------------------------------------------
    def _work(self) -> None:
        gen = self._gen
        end: tuple[str, Any]
        try:
            while True:
                if self._cancel.is_set():
                    end = ("cancelled", None)
                    break
                try:
                    item = next(gen)
                except StopIteration as stop:
                    end = ("succeeded", stop.value)
                    break
                self.progress_count += 1
                self._post(progress=item)
        except BaseException as e:  # noqa: BLE001 - every failure becomes a message, never a dead studio
            end = ("failed", JobFailure(_one_line(e), traceback.format_exc()))
        finally:
            try:
                gen.close()
            except Exception:
                pass
        self._post(end=end)

    def _post(self, *, progress: Any = _NOTHING, end: tuple[str, Any] | None = None) -> None:
        with self._mail_lock:
            if progress is not _NOTHING:
                self._mail_progress = progress  # newest wins: an undelivered older one is dropped
            if end is not None:
                self._mail_end = end
            if self._wake_pending:
                return
            self._wake_pending = True
        QCoreApplication.postEvent(self, QEvent(_WAKE))

    # -- GUI thread -----------------------------------------------------------------------------
    def event(self, ev: QEvent) -> bool:
        if ev.type() == _WAKE:
            self._deliver()
            return True
        return super().event(ev)

    def _deliver(self) -> None:
        with self._mail_lock:
            progress, self._mail_progress = self._mail_progress, _NOTHING
            end, self._mail_end = self._mail_end, None
            self._wake_pending = False
        if progress is not _NOTHING:
            self._last_progress = progress
            if not self._cancel.is_set():
                self.delivered_count += 1
                self.progressed.emit(progress)
        if end is not None:
            self._finish(*end)

    def _finish(self, state: str, value: Any) -> None:
        self.elapsed = time.perf_counter() - (self.started_at or time.perf_counter())
        self.state = state
        self._result_value = value
        if state == "succeeded":
            self.succeeded.emit(value)
        elif state == "failed":
            self.failed.emit(value)
        else:
            self.cancelled.emit(self._last_progress)
        self._settle_future()
        self.finished.emit()

    def _settle_future(self) -> None:
        fut = self._future
        if fut is None or fut.done():
            return
        if self.state == "succeeded":
            fut.set_result(self._result_value)
        elif self.state == "failed":
            fut.set_exception(RuntimeError(self._result_value.message))
        elif self.state == "cancelled":
            fut.set_exception(JobCancelled(self._last_progress))

    @property
    def last_progress(self) -> Any:
        return self._last_progress


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


class JobManager(QObject):
    """Starts jobs, keeps them until they end, and cancels and joins them all on shutdown."""

    job_started = Signal(object)  # QtJob
    job_finished = Signal(object)  # QtJob, with .state and .elapsed set
    job_failed = Signal(object, object)  # QtJob, JobFailure (for a visible message)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[QtJob] = []
        self.last_elapsed: float | None = None
        self._closed = False

    def start(self, name: str, gen: Generator[Any, None, Any]) -> QtJob:
        if self._closed:
            gen.close()
            raise RuntimeError("the studio is closing; no new jobs")
        job = QtJob(name, gen)  # owned by Python (this list, then the caller), never by a Qt parent
        self._jobs.append(job)
        job.failed.connect(lambda failure, j=job: self.job_failed.emit(j, failure))
        job.finished.connect(lambda j=job: self._on_finished(j))
        job.start()
        self.job_started.emit(job)
        return job

    def _on_finished(self, job: QtJob) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        self.last_elapsed = job.elapsed
        self.job_finished.emit(job)

    def active(self) -> list[QtJob]:
        return [j for j in self._jobs if j.is_running()]

    def cancel_all(self) -> None:
        for job in list(self._jobs):
            job.cancel()

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Cancel every job and wait for the workers; True when all of them ended in time."""
        self._closed = True
        self.cancel_all()
        deadline = time.perf_counter() + timeout
        ok = True
        for job in list(self._jobs):
            ok = job.join(max(0.0, deadline - time.perf_counter())) and ok
        return ok


class JobSlots:
    """A tab's jobs by kind, newest wins: starting a kind cancels that kind's running job, and a replaced
    job's late signals are dropped. Failures and progress of current jobs go to the tab's two handlers.

        self.slots = JobSlots(ctx.jobs, "gan", on_failed=self._on_failed, on_progress=self._on_progress)
        self.slots.start("grid", model.sample_job(16, seed), self._on_grid)
    """

    def __init__(self, manager: JobManager, label: str, on_failed: Callable[[JobFailure], None],
                 on_progress: Callable[[Any], None] | None = None) -> None:
        self.manager, self.label = manager, label
        self.on_failed, self.on_progress = on_failed, on_progress
        self.jobs: dict[str, QtJob] = {}

    def start(self, kind: str, gen: Generator[Any, None, Any], on_done: Callable[[Any], None],
              name: str = "") -> QtJob:
        """Run `gen` in the slot `kind`; `name` (default "label kind") is what the status bar shows."""
        old = self.jobs.get(kind)
        if old is not None and old.is_running():
            old.cancel()
        job = self.manager.start(name or f"{self.label} {kind}", gen)
        self.jobs[kind] = job
        job.succeeded.connect(lambda result, j=job: self._if_current(kind, j, on_done, result))
        job.failed.connect(lambda failure, j=job: self._if_current(kind, j, self.on_failed, failure))
        if self.on_progress is not None:
            job.progressed.connect(lambda p, j=job: self._if_current(kind, j, self.on_progress, p))
        return job

    @classmethod
    def reporting(cls, manager: JobManager, label: str, title: str, status: Callable[[str], None],
                  show_status: Callable[[str], None]) -> JobSlots:
        """Slots whose progress messages go to a tab's status line (`status`) and whose failures go there
        and to the window's status bar (`show_status`, prefixed with the tab's `title`)."""

        def progressed(p: Any) -> None:
            message = getattr(p, "message", "")
            if message:
                status(message)

        def failed(failure: JobFailure) -> None:
            status(f"failed: {failure.message}")
            show_status(f"{title}: {failure.message}")

        return cls(manager, label, on_failed=failed, on_progress=progressed)

    def _if_current(self, kind: str, job: QtJob, fn: Callable[[Any], None], value: Any) -> None:
        if self.jobs.get(kind) is job:
            fn(value)

    def running(self, kind: str | None = None) -> bool:
        jobs = [self.jobs[kind]] if kind in self.jobs else [] if kind else list(self.jobs.values())
        return any(j.is_running() for j in jobs)

    def cancel(self, *kinds: str) -> None:
        for kind in kinds:
            if (job := self.jobs.get(kind)) is not None and job.is_running():
                job.cancel()

    def cancel_all(self, keep: tuple[str, ...] = ()) -> None:
        """Cancel every running job but those of the kinds in `keep` (a GIF being written, say)."""
        self.cancel(*(kind for kind in self.jobs if kind not in keep))
