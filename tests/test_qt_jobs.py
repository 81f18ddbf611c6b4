"""The Qt job adapter: cancel within one step, close during a job, newest preview wins, errors, `await job`."""

from __future__ import annotations

import asyncio
import threading

import pytest

from genstudio.qt.qt_jobs import JobCancelled, JobFailure, JobManager
from genstudio.runtime.jobs import Progress

WAIT_MS = 15_000  # generous: the machine is shared; nothing here waits this long when things work


@pytest.fixture
def jobs(qtbot):
    manager = JobManager()
    yield manager
    assert manager.shutdown(timeout=10.0)


def test_cancel_takes_effect_within_one_step(qtbot, jobs):
    k = 5
    ran: list[int] = []
    at_k = threading.Event()
    go_on = threading.Event()

    def count():
        for i in range(1, 10_000):
            ran.append(i)
            if i == k:  # hold the worker at step k until the GUI has asked for a stop
                at_k.set()
                go_on.wait(WAIT_MS / 1000)
            yield Progress(i, 10_000)
        return "finished"

    job = jobs.start("count", count())
    assert at_k.wait(WAIT_MS / 1000)
    with qtbot.waitSignal(job.cancelled, timeout=WAIT_MS) as blocker:
        job.cancel()
        go_on.set()
    assert job.state == "cancelled"
    assert len(ran) <= k + 1, f"{len(ran)} steps ran after a cancel at step {k}"
    last = blocker.args[0]
    assert last is None or last.step <= k + 1
    assert job.join(WAIT_MS / 1000)


def test_cancel_from_a_progress_handler(qtbot, jobs):
    """The usual Stop button: cancelling on the GUI thread while progress arrives stops the generator."""
    k = 3
    ran: list[int] = []
    delivered = threading.Semaphore(0)

    def count():
        for i in range(1, 1000):
            ran.append(i)
            yield Progress(i, 1000)
            delivered.acquire(timeout=WAIT_MS / 1000)  # one step per delivered preview: lock-step with the GUI

    job = jobs.start("lockstep", count())

    def on_progress(p: Progress) -> None:
        if p.step >= k:
            job.cancel()
        delivered.release()

    job.progressed.connect(on_progress)
    with qtbot.waitSignal(job.finished, timeout=WAIT_MS):
        pass
    assert job.state == "cancelled"
    assert len(ran) <= k + 1


def test_newest_preview_wins(qtbot, jobs):
    n = 20_000
    seen: list[int] = []

    def fast():
        yield from range(1, n + 1)
        return n

    job = jobs.start("fast", fast())
    job.progressed.connect(seen.append)
    with qtbot.waitSignal(job.succeeded, timeout=WAIT_MS) as blocker:
        pass
    assert blocker.args == [n]
    assert seen and seen[-1] == n
    assert len(seen) <= n
    assert seen == sorted(seen), "previews arrive in order"
    assert job.progress_count == n
    assert job.delivered_count == len(seen)


def test_errors_surface_as_job_failure(qtbot, jobs):
    def broken():
        yield Progress(1, 3)
        raise ValueError("prompt is too long (600 > 512 tokens)")

    failures: list[JobFailure] = []
    with qtbot.waitSignal(jobs.job_failed, timeout=WAIT_MS) as blocker:
        job = jobs.start("broken", broken())
        job.failed.connect(failures.append)
    failed_job, failure = blocker.args
    assert failed_job is job
    assert isinstance(failure, JobFailure)
    assert failure.message == "ValueError: prompt is too long (600 > 512 tokens)"
    assert "Traceback" in failure.details and "broken" in failure.details
    assert failures == [failure]
    assert job.state == "failed"


def test_finished_job_reports_elapsed_time(qtbot, jobs):
    def quick():
        yield Progress(1, 1)
        return 42

    with qtbot.waitSignal(jobs.job_finished, timeout=WAIT_MS):
        job = jobs.start("quick", quick())
    assert job.state == "succeeded"
    assert jobs.last_elapsed is not None and jobs.last_elapsed >= 0


def test_no_new_jobs_after_shutdown(jobs):
    jobs.shutdown()

    def never():
        yield 1

    with pytest.raises(RuntimeError, match="closing"):
        jobs.start("late", never())


def test_close_window_during_a_job_joins_the_worker(qtbot, models_root):
    from genstudio.qt.app import build_main_window
    from genstudio.qt.qt_settings import open_settings
    from genstudio.runtime.sessions import SessionPool

    window = build_main_window(pool=SessionPool(), settings=open_settings(), tab_specs=[])
    qtbot.addWidget(window)
    window.show()
    started = threading.Event()
    steps: list[int] = []

    def forever():
        i = 0
        while True:
            i += 1
            steps.append(i)
            started.set()
            yield Progress(i)

    job = window.ctx.jobs.start("forever", forever())
    assert started.wait(WAIT_MS / 1000)
    with qtbot.waitSignal(window.closed, timeout=WAIT_MS):
        window.close()
    assert job.cancel_requested
    assert job.join(0), "closing the window joins the worker thread"
    qtbot.waitUntil(lambda: job.state == "cancelled", timeout=WAIT_MS)  # the last delivery still arrives


def test_await_job_under_qasync(qapp):
    import qasync

    manager = JobManager()
    loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(loop)

    def add(n):
        total = 0
        for i in range(n):
            total += i
            yield Progress(i + 1, n)
        return total

    def boom():
        yield Progress(1)
        raise KeyError("no such model")

    def endless():
        while True:
            yield Progress(0)

    async def main():
        result = await manager.start("add", add(100))
        with pytest.raises(RuntimeError, match="KeyError"):
            await manager.start("boom", boom())
        stopping = manager.start("endless", endless())
        loop.call_soon(stopping.cancel)
        with pytest.raises(JobCancelled):
            await stopping
        return result

    try:
        assert loop.run_until_complete(main()) == sum(range(100))
    finally:
        manager.shutdown()
        loop.close()
        asyncio.set_event_loop(None)
