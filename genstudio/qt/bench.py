"""Studio benchmarks: cold start against a bare PySide6 window, and event-loop stalls while a job runs.

Both are ratios from one run (the machine is noisy): `genstudio bench startup|stall`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# -- cold start -------------------------------------------------------------------------------------
_BARE_CHILD = r"""
import sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow, QLabel
app = QApplication(sys.argv)
w = QMainWindow(); w.setCentralWidget(QLabel("hello")); w.resize(1280, 800)
class Hook(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint:
            QTimer.singleShot(0, lambda: (print("PAINTED", time.time(), flush=True), app.quit()))
            obj.removeEventFilter(self)
        return False
hook = Hook(); w.installEventFilter(hook); w.show(); app.exec()
"""

_STUDIO_CHILD = r"""
import sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from genstudio.qt.app import create_app, build_main_window
app = create_app(sys.argv)
w = build_main_window()
class Hook(QObject):
    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.Type.Paint:
            print("PAINTED", time.time(), flush=True)
            obj.removeEventFilter(self)
        return False
def ready():  # menus, toolbar, tabs and the current tab are built
    print("READY", time.time(), flush=True)
    QTimer.singleShot(0, lambda: (w.close(), app.quit()))
w.tabs_ready.connect(ready)
hook = Hook(); w.installEventFilter(hook); w.show(); app.exec()
"""


def _startup_times(script: str, env: dict[str, str]) -> dict[str, float]:
    """Seconds from process start to each marker the child prints (PAINTED, READY)."""
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    marks = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("PAINTED", "READY"):
            marks[parts[0]] = float(parts[1]) - t0
    if "PAINTED" not in marks:
        raise RuntimeError(f"the window never painted: {proc.stderr.strip()[-400:]}")
    return marks


def bench_startup(runs: int = 7) -> tuple[str, dict]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = tempfile.mkdtemp(prefix="genstudio-bench-")
    env["GENSTUDIO_HOME"] = home  # fresh settings, the shipped models only
    bare, painted, ready = [], [], []
    _startup_times(_BARE_CHILD, env)  # warm the file cache for both
    _startup_times(_STUDIO_CHILD, env)
    for _ in range(runs):  # interleaved, so drift hits both alike
        bare.append(_startup_times(_BARE_CHILD, env)["PAINTED"])
        marks = _startup_times(_STUDIO_CHILD, env)
        painted.append(marks["PAINTED"])
        ready.append(marks.get("READY", float("nan")))
    b, s, r = statistics.median(bare), statistics.median(painted), statistics.median(ready)
    numbers = {"bare_s": b, "studio_first_paint_s": s, "studio_ready_s": r, "ratio_first_paint": s / b,
               "ratio_ready": r / b, "runs": runs, "target_ratio": 1.5}
    section = "\n".join([
        "## Cold start",
        "",
        "Process start to the first painted window (no model loaded), median of "
        f"{runs} interleaved runs, `{env['QT_QPA_PLATFORM']}` platform, fresh settings, the shipped models. "
        "The studio paints its window first and builds menus, toolbar and tabs on the next turns of the "
        "event loop; the last row is the time until all of that is built and the current tab is filled. "
        "`genstudio bench startup`.",
        "",
        "| window | time | ratio to the baseline |",
        "|---|---:|---:|",
        f"| bare PySide6 `QMainWindow`, first paint (baseline) | {b * 1000:.0f} ms | 1.00x |",
        f"| genstudio main window, first paint | {s * 1000:.0f} ms | **{s / b:.2f}x** (target at most 1.5x) |",
        f"| genstudio, menus, toolbar and tabs built | {r * 1000:.0f} ms | {r / b:.2f}x |",
    ])
    return section, numbers


# -- event-loop stalls while a job runs --------------------------------------------------------------
def _workload_model(folder: Path, size: int = 384, layers: int = 6) -> Path:
    """A chain of MatMul+Tanh on a [size, size] image: a stand-in for one denoising step."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [size, size])
    nodes, inits, prev = [], [], "x"
    for i in range(layers):
        w = (rng.standard_normal((size, size)) / np.sqrt(size)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]))
        out = "y" if i == layers - 1 else f"t{i}"
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [out]))
        prev = out
    model = helper.make_model(helper.make_graph(nodes, "workload", [x], [y], initializer=inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "workload.onnx"
    onnx.save_model(model, str(path))
    return path


def _workload_job(pool, path: Path, steps: int):
    import numpy as np

    from genstudio.runtime.imaging import to_uint8
    from genstudio.runtime.jobs import Progress

    session = pool.get(path)
    x = np.random.default_rng(1).standard_normal((384, 384)).astype(np.float32)
    for i in range(steps):
        (x,) = session.run(None, {"x": x})
        preview = to_uint8(np.repeat(x[None, :, :, None], 3, axis=-1))[0]  # (H, W, 3)
        yield Progress(i + 1, steps, preview=preview)
    return steps


def bench_stall(seconds: float = 4.0) -> tuple[str, dict]:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtGui import QPixmap
    from PySide6.QtWidgets import QApplication, QLabel

    from genstudio.qt.qt_images import rgb_to_qimage
    from genstudio.qt.qt_jobs import JobManager
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    app = QApplication.instance() or QApplication([])
    label = QLabel()
    label.resize(768, 768)
    label.show()

    def show_preview(p) -> None:  # the same work a tab does per preview, on the GUI thread
        label.setPixmap(QPixmap.fromImage(rgb_to_qimage(p.preview)).scaled(768, 768))

    def measure(run_job: bool) -> dict:
        gaps: list[float] = []
        clock = QElapsedTimer()
        last = [0]
        timer = QTimer()
        timer.setInterval(5)

        def tick() -> None:
            now = clock.nsecsElapsed()
            gaps.append((now - last[0]) / 1e6)
            last[0] = now

        timer.timeout.connect(tick)
        loop = QEventLoop()
        manager = JobManager()
        delivered = [0]
        with tempfile.TemporaryDirectory() as tmp:
            pool = SessionPool(SessionConfig(provider="cpu"))
            path = _workload_model(Path(tmp))
            pool.get(path)  # session created before the clock starts
            clock.start()
            timer.start()
            if run_job:
                job = manager.start("bench", _workload_job(pool, path, steps=100000))
                job.progressed.connect(show_preview)
                job.progressed.connect(lambda _p: delivered.__setitem__(0, delivered[0] + 1))
                QTimer.singleShot(int(seconds * 1000), job.cancel)
                job.finished.connect(loop.quit)
            else:
                QTimer.singleShot(int(seconds * 1000), loop.quit)
            loop.exec()
            timer.stop()
            manager.shutdown()
            steps = job.progress_count if run_job else 0
        stall = max(g - 5.0 for g in gaps) if gaps else float("nan")
        return {"max_stall_ms": stall, "p99_gap_ms": statistics.quantiles(gaps, n=100)[98] if len(gaps) > 100 else stall,
                "ticks": len(gaps), "steps": steps, "previews_shown": delivered[0]}

    idle = measure(False)
    busy = measure(True)
    app.processEvents()
    numbers = {"idle": idle, "job": busy, "target_ms": 50}
    step_ms = seconds * 1000 / max(busy["steps"], 1)
    section = "\n".join([
        "## Event-loop stalls while a job runs",
        "",
        f"A 5 ms QTimer on the GUI thread for {seconds:.0f} s; a stall is the longest gap beyond 5 ms. The job runs "
        f"an ONNX Runtime graph (6 x MatMul+Tanh on 384x384, about {step_ms:.0f} ms a step) on a worker "
        "thread and yields a 384x384 preview every step, which the GUI thread converts and shows scaled to "
        "768x768 (newest preview wins). `genstudio bench stall`.",
        "",
        "| state | longest stall | 99th-percentile tick gap | steps | previews shown |",
        "|---|---:|---:|---:|---:|",
        f"| idle (baseline) | {idle['max_stall_ms']:.1f} ms | {idle['p99_gap_ms']:.1f} ms | - | - |",
        f"| job running | **{busy['max_stall_ms']:.1f} ms** (target under 50 ms) | {busy['p99_gap_ms']:.1f} ms | "
        f"{busy['steps']} | {busy['previews_shown']} |",
    ])
    return section, numbers
