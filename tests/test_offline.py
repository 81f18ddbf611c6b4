"""Offline: with every network socket blocked (this process and its children), the studio starts and runs a job."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import make_model_folder

BLOCK = textwrap.dedent("""
    import socket

    class NetworkBlocked(OSError):
        pass

    def _refuse(*args, **kwargs):
        raise NetworkBlocked("network access attempted while offline")

    _connect = socket.socket.connect

    def _connect_local_only(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _refuse()
        return _connect(self, address)

    socket.socket.connect = _connect_local_only
    socket.socket.connect_ex = lambda self, address: _connect_local_only(self, address) or 0
    socket.create_connection = _refuse
    socket.getaddrinfo = _refuse
    socket.gethostbyname = _refuse
""")

STUDIO = textwrap.dedent("""
    import socket, sys
    from PySide6.QtCore import QEventLoop, QTimer
    from genstudio.qt.app import create_app, build_main_window
    from genstudio.runtime.jobs import Progress

    try:
        socket.create_connection(("127.0.0.1", 9))
        sys.exit("sockets are not blocked")
    except OSError as e:
        assert "offline" in str(e), e

    app = create_app()
    window = build_main_window(remember=False)
    window.show()
    app.processEvents()
    ctx = window.ctx
    entry = ctx.registry.get("offline-tiny")
    assert entry.ready, entry.error

    def job():
        import numpy as np
        session = ctx.pool.get(entry.path("model"), root=entry.folder)
        out = None
        for i in range(5):
            (out,) = session.run(None, {"x": np.full((1, 4), i, np.float32)})
            yield Progress(i + 1, 5)
        return out.tolist()

    j = ctx.jobs.start("offline", job())
    loop = QEventLoop()
    j.finished.connect(loop.quit)
    QTimer.singleShot(60000, loop.quit)
    loop.exec()
    assert j.state == "succeeded", (j.state, getattr(j, "_result_value", None))
    window.close()
    print("OFFLINE-OK", j._result_value)
""")


def test_studio_starts_and_runs_a_job_with_sockets_blocked(tmp_path, models_root):
    make_model_folder(models_root / "offline-tiny", name="offline-tiny")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCK)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(Path(__file__).resolve().parents[1])]),
               QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-c", STUDIO], capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "OFFLINE-OK [[8.0, 9.0, 10.0, 11.0]]" in proc.stdout
