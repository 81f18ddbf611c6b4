"""The studio-wide commands: models, check, doctor, shot, bench and `export missing`."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

from genstudio import __version__


def register(groups) -> None:
    root = groups.root
    p = root.add_parser("models", help="list every model folder with its status")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--deep", action="store_true", help="also run the ONNX safety checks on every file")
    p.set_defaults(handler=cmd_models)

    p = root.add_parser("check", help="check a model folder or .onnx file: exit 0 when loadable, else 2")
    p.add_argument("path", type=Path)
    p.set_defaults(handler=cmd_check)

    p = root.add_parser("doctor", help="Python, Qt, ONNX Runtime, every provider's probe, the models' status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_doctor)

    p = root.add_parser("shot", help="render a tab of the studio to a PNG (offscreen)")
    p.add_argument("--tab", required=True, help="models, chat, image, gan, vae, flow or compare")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--size", default="1280x800", help="window size, WIDTHxHEIGHT")
    p.add_argument("--theme", default="light", choices=("system", "light", "dark"))
    p.set_defaults(handler=cmd_shot)

    p = root.add_parser("bench", help="measure the studio (startup, event-loop stalls, families)")
    p.add_argument("which", nargs="?", default="all", help="all, startup, stall, or a family's benchmark")
    p.add_argument("--write", type=Path, help="update this Markdown file's table for the benchmark")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_bench)


def register_missing(groups) -> None:
    p = groups.export.add_parser("missing", help="build every model that is missing here (make run does this)")
    p.set_defaults(handler=lambda args: cmd_export_missing(args, groups.builders))


# -- handlers ---------------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from genstudio.runtime.registry import Registry

    entries = Registry().scan(deep=args.deep)
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return 0
    if not entries:
        print("no models found")
        return 0
    width = max(len(e.name) for e in entries)
    for e in entries:
        print(f"{e.name:<{width}}  {e.family:<14} {_size(e.size_bytes()):>9}  {e.status}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from genstudio.runtime import safety
    from genstudio.runtime.manifest import MANIFEST_NAME
    from genstudio.runtime.registry import check_folder

    path: Path = args.path
    try:
        if path.is_dir() and (path / MANIFEST_NAME).exists():
            entry = check_folder(path, deep=True)
            if not entry.ready:
                print(f"{path}: {entry.error}")
                return 2
            print(f"ok: {entry.name} ({entry.family}), {len(entry.reports)} ONNX file(s) checked")
            return 0
        if path.is_dir():
            files = sorted(path.glob("*.onnx"))
            if not files:
                print(f"{path}: no {MANIFEST_NAME} and no .onnx file in this folder")
                return 2
            for f in files:
                safety.ensure_safe(f, root=path)
            print(f"ok: {len(files)} ONNX file(s) checked (no {MANIFEST_NAME}: importable as bare graphs)")
            return 0
        if not path.exists():
            print(f"{path}: no such file or folder")
            return 2
        report = safety.ensure_safe(path, root=path.parent)
        print(f"ok: {path.name}: {report.summary()}")
        return 0
    except safety.UnsafeModelError as e:
        print(f"{path}: {e}")
        return 2


def cmd_doctor(args: argparse.Namespace) -> int:
    from genstudio.runtime import providers
    from genstudio.runtime.registry import Registry

    info: dict = {
        "genstudio": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    try:
        import PySide6
        from PySide6 import QtCore

        info["pyside6"] = PySide6.__version__
        info["qt"] = QtCore.qVersion()
    except Exception as e:  # the CLI still works without a usable Qt
        info["qt"] = f"unavailable: {e}"
    try:
        info.update(providers.versions())
        info["providers"] = [r.to_dict() for r in providers.probe_all()]
        info["auto_provider"] = providers.resolve("auto")
    except Exception as e:
        info["onnxruntime"] = f"unavailable: {e}"
        info["providers"] = []
    entries = Registry().scan()
    info["models"] = [{"name": e.name, "family": e.family, "status": e.status} for e in entries]
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"genstudio   {info['genstudio']}")
    print(f"python      {info['python']} ({info['platform']})")
    print(f"qt          {info.get('qt')} (PySide6 {info.get('pyside6', '?')})")
    print(f"onnxruntime {info.get('onnxruntime')} [{info.get('onnxruntime_package', '?')}]")
    print("providers (probe session created and run on each):")
    for r in info["providers"]:
        mark = "usable " if r["usable"] else "missing"
        print(f"  {mark}  {providers.short_name(r['provider']):<9} {r['detail']}")
    print(f"auto picks  {providers.short_name(info.get('auto_provider', '?'))}")
    print(f"models      {len(entries)} found, {sum(e.ready for e in entries)} ready")
    for m in info["models"]:
        print(f"  {m['name']} ({m['family']}): {m['status']}")
    return 0


def cmd_shot(args: argparse.Namespace) -> int:
    from genstudio.cli import CliError
    from genstudio.qt.shot import render_tab

    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise CliError(f"--size must look like 1280x800, not {args.size!r}") from None
    try:
        out = render_tab(args.tab, args.out, size=(w, h), theme=args.theme)
    except KeyError as e:
        raise CliError(str(e.args[0])) from None
    print(out)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from genstudio.cli.bench import run_benchmarks

    return run_benchmarks(args.which, write=args.write, as_json=args.json)


def cmd_export_missing(args: argparse.Namespace, builders) -> int:
    if not builders:
        print("every model is present (nothing is built on this machine)")
        return 0
    status = 0
    for b in builders:
        if b.is_present():
            print(f"{b.name}: present")
            continue
        print(f"{b.name}: missing, building ({b.describe})", flush=True)
        rc = b.build()
        if rc:
            print(f"{b.name}: build failed (exit {rc}); the studio still opens without it", file=sys.stderr)
            status = rc
    return status


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
