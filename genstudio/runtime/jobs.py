"""The one contract for long work: a generator whose every `yield` is progress and a cancel point.

    def sample(request) -> Iterator[Progress]:      # or any object with .step and .total
        for i in range(n):
            ...                                     # one bounded piece of work
            yield Progress(i + 1, n, preview=x0)
        return result                               # what the caller gets

The CLI drives it with `drive` and a text bar, the studio with genstudio.qt.qt_jobs, tests directly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, TextIO, TypeVar

R = TypeVar("R")


class ProgressLike(Protocol):
    step: int  # steps done so far
    total: int | None  # steps in all, when known


@dataclass
class Progress:
    step: int  # steps done so far
    total: int | None = None  # steps in all, when known
    message: str = ""  # a short line for a status bar
    preview: Any = None  # a numpy array or a small dataclass; never a Qt object


class Cancelled(Exception):
    """Raised by `drive` when `should_stop` asked for a stop; carries the last progress seen."""

    def __init__(self, last: Any = None) -> None:
        super().__init__("cancelled")
        self.last = last


def drive(job: Generator[Any, None, R], on_progress: Callable[[Any], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> R:
    """Run a job generator to its end; returns its return value. Stops at a yield when asked."""
    last = None
    try:
        while True:
            try:
                item = next(job)
            except StopIteration as stop:
                return stop.value
            last = item
            if on_progress is not None:
                on_progress(item)
            if should_stop is not None and should_stop():
                raise Cancelled(last)
    finally:
        job.close()


def text_bar(label: str, stream: TextIO | None = None, width: int = 30) -> Callable[[Any], None]:
    """A progress callback that draws `label [#####.....] 5/10 1.2 it/s` on one line (for the CLI)."""
    out = stream if stream is not None else sys.stderr
    start = time.perf_counter()
    tty = getattr(out, "isatty", lambda: False)()
    last_draw = [0.0]

    def show(item: Any) -> None:
        step = getattr(item, "step", 0)
        total = getattr(item, "total", None)
        now = time.perf_counter()
        done = bool(total) and step >= total
        if not tty and not done:
            return  # logs get the final line only
        if tty and not done and now - last_draw[0] < 0.05:
            return
        last_draw[0] = now
        rate = step / max(now - start, 1e-9)
        if total:
            filled = int(width * min(step, total) / total)
            bar = "#" * filled + "." * (width - filled)
            line = f"{label} [{bar}] {step}/{total} {rate:.1f} it/s"
        else:
            line = f"{label} {step} {rate:.1f} it/s"
        msg = getattr(item, "message", "")
        if msg:
            line += f" {msg}"
        out.write(("\r" if tty else "") + line + ("\n" if done or not tty else ""))
        out.flush()

    return show
