"""Smoke test of a built bundle: run its executable the way a user's machine would, without .venv.

    python installer/smoke.py [dist/genstudio]

Every step runs `BUNDLE/genstudio ...` with a clean environment (env -i: HOME, PATH=/usr/bin:/bin,
QT_QPA_PLATFORM=offscreen) and a private GENSTUDIO_HOME. Exit 0 when every step passed. Standard
library only, so any Python runs it; tests/test_installer.py calls the same steps.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

STEP_TIMEOUT_S = 180


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {"HOME": os.environ.get("HOME", str(home)), "PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen",
           "GENSTUDIO_HOME": str(home / "genstudio-home"), "XDG_CONFIG_HOME": str(home / "config")}
    env.update(extra)
    return env


def run(bundle: Path, args: list[str], home: Path, timeout: float = STEP_TIMEOUT_S) -> subprocess.CompletedProcess:
    exe = bundle / ("genstudio.exe" if sys.platform == "win32" else "genstudio")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout,
                          env=clean_env(home), stdin=subprocess.DEVNULL, cwd=str(home))


def _tail(p: subprocess.CompletedProcess) -> str:
    return (p.stdout + p.stderr).strip()[-1500:]


def _ok(p: subprocess.CompletedProcess, what: str) -> None:
    if p.returncode != 0:
        raise AssertionError(f"{what}: exit {p.returncode}\n{_tail(p)}")


def _png(path: Path) -> None:
    if not path.is_file() or path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise AssertionError(f"{path} is not a PNG")


# -- the steps ------------------------------------------------------------------------------------------
def step_doctor(bundle: Path, tmp: Path) -> str:
    p = run(bundle, ["doctor"], tmp)
    _ok(p, "doctor")
    if "usable   cpu" not in p.stdout:
        raise AssertionError(f"doctor: the CPU provider is not usable\n{_tail(p)}")
    return p.stdout.splitlines()[3] if len(p.stdout.splitlines()) > 3 else p.stdout.strip()


def step_models(bundle: Path, tmp: Path) -> str:
    p = run(bundle, ["models", "--json"], tmp)
    _ok(p, "models --json")
    entries = json.loads(p.stdout)
    names = {e["name"] for e in entries}
    for need in ("vae-fashion-mnist", "flow-moons-spline"):
        if need not in names:
            raise AssertionError(f"models --json: {need} is not listed ({sorted(names)})")
    shipped = [e for e in entries if e.get("source") == "shipped"]
    not_ready = [e["name"] for e in shipped if e.get("status") != "ready"]
    if not_ready:
        raise AssertionError(f"models --json: shipped models not ready: {not_ready}")
    return f"{len(entries)} models listed, {len(shipped)} shipped, all shipped ready"


def step_generate_vae(bundle: Path, tmp: Path) -> str:
    out = tmp / "vae.png"
    p = run(bundle, ["generate", "vae", "--model", "vae-fashion-mnist", "--n", "4", "--out", str(out), "--json"], tmp)
    _ok(p, "generate vae")
    _png(out)
    return f"{out.name}: {out.stat().st_size} bytes"


def step_generate_flow(bundle: Path, tmp: Path) -> str:
    out = tmp / "flow.png"
    p = run(bundle, ["generate", "flow", "--model", "flow-moons-spline", "--n", "200", "--grid", "64",
                     "--out", str(out)], tmp)
    _ok(p, "generate flow")
    _png(out)
    return f"{out.name}: {out.stat().st_size} bytes"


def step_check_good(bundle: Path, tmp: Path) -> str:
    folder = next(bundle.glob("**/exported_models/flow-moons-spline"))
    p = run(bundle, ["check", str(folder)], tmp)
    _ok(p, "check (a shipped model)")
    return p.stdout.strip().splitlines()[-1]


def step_check_bad(bundle: Path, tmp: Path) -> str:
    """A file that passes the cheap checks but is no protobuf: only the __inspect__ child can refuse it."""
    bad = tmp / "bad" / "broken.onnx"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"\x08\x07\x12\x04evil" + bytes(range(256)) * 8)
    p = run(bundle, ["check", str(bad)], tmp)
    if p.returncode != 2:
        raise AssertionError(f"check of a broken file: exit {p.returncode}, not 2\n{_tail(p)}")
    text = _tail(p)
    if "checker stopped" in text or "Traceback" in text:
        raise AssertionError(f"check of a broken file: the child process did not answer\n{text}")
    return f"exit 2: {text.splitlines()[-1][:160]}"


def step_no_export(bundle: Path, tmp: Path) -> str:
    p = run(bundle, ["export", "llm", "--from-pypi"], tmp)
    if p.returncode != 2 or "cannot run this command" not in p.stderr:
        raise AssertionError(f"export in the bundle: exit {p.returncode}\n{_tail(p)}")
    return "export llm: exit 2 with the source-checkout hint"


def step_shot(bundle: Path, tmp: Path) -> str:
    out = tmp / "models.png"
    p = run(bundle, ["shot", "--tab", "models", "--out", str(out), "--size", "1024x640"], tmp)
    _ok(p, "shot --tab models")
    _png(out)
    return f"{out.name}: {out.stat().st_size} bytes"


def split_exec(value: str) -> list[str]:
    """An Exec value (after the string-level unescaping) split into arguments, as the desktop entry spec
    says: double quotes group, and inside them a backslash escapes " ` $ and itself."""
    args: list[str] = []
    cur: list[str] = []
    quoted = started = False
    i = 0
    while i < len(value):
        c = value[i]
        if quoted:
            if c == "\\" and i + 1 < len(value) and value[i + 1] in '"`$\\':
                cur.append(value[i + 1])
                i += 2
                continue
            if c == '"':
                quoted = False
            else:
                cur.append(c)
        elif c == '"':
            quoted = started = True
        elif c == " ":
            if cur or started:
                args.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(c)
        i += 1
    if cur or started:
        args.append("".join(cur))
    return args


def desktop_exec(desktop_file: Path, path: str) -> list[str]:
    """The Exec line of a .desktop file as an argv, with %f set to `path`."""
    line = next(ln for ln in desktop_file.read_text().splitlines() if ln.startswith("Exec="))
    value = line[len("Exec="):].replace("\\\\", "\\")  # the string-level escape comes first
    return [path if arg == "%f" else arg.replace("%%", "%") for arg in split_exec(value)]


def step_desktop_entry(bundle: Path, tmp: Path) -> str:
    """install.sh into a private XDG_DATA_HOME, validate, start the Exec line under xvfb-run, uninstall."""
    if not sys.platform.startswith("linux"):
        return "skipped (not Linux)"
    data = tmp / "xdg-data"
    env = dict(os.environ, XDG_DATA_HOME=str(data))
    script = bundle / "install.sh"
    p = subprocess.run(["sh", str(script)], capture_output=True, text=True, env=env, timeout=60)
    _ok(p, "install.sh")
    desktop = data / "applications" / "genstudio.desktop"
    notes = []
    if shutil.which("desktop-file-validate"):
        v = subprocess.run(["desktop-file-validate", str(desktop)], capture_output=True, text=True)
        if v.returncode != 0 or "error" in v.stdout + v.stderr:
            raise AssertionError(f"desktop-file-validate: {v.stdout}{v.stderr}")
        notes.append("desktop-file-validate ok")
    globs = (data / "mime" / "globs2")
    if shutil.which("update-mime-database"):
        if not globs.is_file() or "application/x-onnx:*.onnx" not in globs.read_text():
            raise AssertionError("update-mime-database did not register *.onnx")
        notes.append("*.onnx registered")
    onnx = tmp / "offer" / "tiny.onnx"
    onnx.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(next(bundle.glob("**/exported_models/flow-moons-spline/*.onnx")), onnx)
    argv = desktop_exec(desktop, str(onnx))
    if shutil.which("xvfb-run") and shutil.which("xwininfo"):
        notes.append(launch_under_xvfb(argv, tmp))
    subprocess.run(["sh", str(bundle / "uninstall.sh")], capture_output=True, env=env, timeout=60, check=True)
    if desktop.exists():
        raise AssertionError("uninstall.sh left the menu entry")
    return "; ".join(notes)


def launch_under_xvfb(argv: list[str], tmp: Path, wait_s: float = 25.0) -> str:
    """Start `argv` on a virtual X display; pass when a 'genstudio' top-level window shows up in time."""
    inner = (f"{shlex.join(argv)} > {shlex.quote(str(tmp / 'xvfb.log'))} 2>&1 & pid=$!; "
             f"for i in $(seq 1 {int(wait_s)}); do sleep 1; "
             "if xwininfo -root -tree 2>/dev/null | grep -q '\"genstudio\"'; then "
             "xwininfo -root -tree | grep '\"genstudio\"' | head -1; kill $pid; wait $pid 2>/dev/null; exit 0; fi; "
             "kill -0 $pid 2>/dev/null || exit 3; done; kill $pid; exit 4")
    env = {k: v for k, v in clean_env(tmp).items() if k != "QT_QPA_PLATFORM"}
    env["PATH"] = "/usr/bin:/bin"
    p = subprocess.run(["xvfb-run", "-a", "sh", "-c", inner], capture_output=True, text=True, env=env,
                       timeout=wait_s + 60)
    if p.returncode != 0:
        log = (tmp / "xvfb.log").read_text(errors="replace")[-1500:] if (tmp / "xvfb.log").exists() else ""
        raise AssertionError(f"the desktop entry's Exec line did not open a window (status {p.returncode})\n{log}")
    return "Exec line opened a 'genstudio' window under xvfb-run"


STEPS: list[tuple[str, Callable[[Path, Path], str]]] = [
    ("doctor (clean environment)", step_doctor),
    ("models --json", step_models),
    ("generate vae", step_generate_vae),
    ("generate flow", step_generate_flow),
    ("check a shipped model", step_check_good),
    ("check a crafted bad file (exit 2)", step_check_bad),
    ("export refused in the bundle", step_no_export),
    ("shot --tab models", step_shot),
    ("desktop entry", step_desktop_entry),
]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    bundle = Path(argv[0] if argv else "dist/genstudio").resolve()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="genstudio-smoke-") as t:
        tmp = Path(t)
        for name, step in STEPS:
            start = time.monotonic()
            try:
                note = step(bundle, tmp)
                print(f"ok    {name} ({time.monotonic() - start:.1f} s): {note}", flush=True)
            except Exception as e:  # noqa: BLE001 - report every step
                failed += 1
                print(f"FAIL  {name} ({time.monotonic() - start:.1f} s): {e}", flush=True)
    print(f"{len(STEPS) - failed}/{len(STEPS)} smoke steps passed for {bundle}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
