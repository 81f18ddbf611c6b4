"""`genstudio`: no arguments opens the studio; subcommands list, check, generate, export and measure models.

`genstudio PATH` (or `genstudio -- PATH`) opens the studio on the Models tab with PATH checked and offered
for import, when PATH is an .onnx file, a model folder or its model.json: what a double-click on such a
file runs (installer/). A subcommand's name always wins over a file of that name; `--` forces a path.

Each family adds its commands from its own module (see FAMILY_MODULES): a `register(groups)` function
that adds parsers under `generate`, `export` and `evaluate`, and may add a `Builder` for `export missing`.
Heavy modules (Qt, ONNX Runtime, torch) are imported inside the commands, never here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from genstudio import __version__

# Modules that add commands; each has `register(groups: CommandGroups) -> None`.
FAMILY_MODULES: list[str] = ["genstudio.cli.llm", "genstudio.cli.flow", "genstudio.cli.evaluator", "genstudio.cli.vae",
                            "genstudio.cli.gan", "genstudio.cli.diffusion", "genstudio.cli.image",
                            "genstudio.cli.pixelcnn", "genstudio.cli.compare"]


@dataclass
class Builder:
    """A model that `make run` builds on the user's machine when it is missing (kept out of git)."""

    name: str
    is_present: Callable[[], bool]
    build: Callable[[], int]  # returns an exit code
    describe: str = ""  # the command it runs, for messages


@dataclass
class CommandGroups:
    generate: argparse._SubParsersAction
    export: argparse._SubParsersAction
    evaluate: argparse._SubParsersAction
    root: argparse._SubParsersAction
    builders: list[Builder] = field(default_factory=list)


def build_parser() -> tuple[argparse.ArgumentParser, CommandGroups]:
    parser = argparse.ArgumentParser(prog="genstudio", description="A desktop studio for generative models.")
    parser.add_argument("--version", action="version", version=f"genstudio {__version__}")
    root = parser.add_subparsers(dest="command", metavar="COMMAND")

    gen = root.add_parser("generate", help="generate with a model (one subcommand per family)")
    exp = root.add_parser("export", help="train or convert a model and export its ONNX graphs")
    ev = root.add_parser("evaluate", help="recompute a model's quality numbers",
                         description="`genstudio evaluate --dataset NAME` is short for `evaluate all --dataset NAME`.")
    groups = CommandGroups(
        generate=gen.add_subparsers(dest="family", metavar="FAMILY", required=True),
        export=exp.add_subparsers(dest="family", metavar="FAMILY", required=True),
        evaluate=ev.add_subparsers(dest="family", metavar="FAMILY", required=True),
        root=root,
    )
    from genstudio.cli import core

    core.register(groups)
    for name in FAMILY_MODULES:
        importlib.import_module(name).register(groups)
    core.register_missing(groups)
    return parser, groups


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "__inspect__":  # the model checker's child process (also inside a bundle)
        from genstudio.runtime import inspect_worker

        return inspect_worker.main(argv[1:])
    if argv[:1] == ["evaluate"] and len(argv) > 1 and argv[1].split("=")[0] == "--dataset":
        argv.insert(1, "all")  # `evaluate --dataset NAME`: every model of the dataset
    parser, groups = build_parser()
    try:
        opens, path = studio_target(argv, groups.root.choices)
    except CliError as e:
        print(f"genstudio: {e}", file=sys.stderr)
        return 2
    if opens:
        from genstudio.qt.app import run_studio

        return run_studio(open_path=path)
    args = parser.parse_args(argv)
    if args.command is None:
        from genstudio.qt.app import run_studio

        return run_studio()
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.parse_args([*argv, "--help"])
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CliError as e:
        print(f"genstudio: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # the double-click bundle has no torch and no export pipeline
        if (e.name or "").split(".")[0] not in ("torch", "onnxscript", "gguf", "safetensors") and \
                not (e.name or "").startswith("genstudio.export"):
            raise
        print(f"genstudio: this copy of genstudio cannot run this command (no module {e.name!r}); run it "
              "from a source checkout (`make setup`, then `.venv/bin/genstudio ...`)", file=sys.stderr)
        return 2


def model_path(arg: str | Path) -> Path | None:
    """The model folder or .onnx file that `arg` names (a model.json stands for its folder), else None."""
    path = Path(arg).expanduser()
    if path.is_file() and path.suffix.lower() == ".onnx":
        return path.resolve()
    if path.is_file() and path.name == "model.json":
        return path.resolve().parent
    if path.is_dir() and (path / "model.json").is_file():
        return path.resolve()
    return None


def studio_target(argv: Sequence[str], commands: Collection[str]) -> tuple[bool, Path | None]:
    """(open the studio?, the model path to offer) for a command line; (False, None) for a subcommand.

    `[]`, `["--"]` (a desktop entry's `-- %f` with no file) open the studio; `[PATH]` opens it with PATH
    when PATH is not a command's name and `model_path` accepts it; `["--", PATH]` always means a path.
    """
    argv = list(argv)
    if argv in ([], ["--"]):
        return True, None
    forced = len(argv) == 2 and argv[0] == "--"
    if not forced and not (len(argv) == 1 and argv[0] not in commands and not argv[0].startswith("-")):
        return False, None
    arg = argv[-1]
    path = model_path(arg)
    if path is not None:
        return True, path
    if forced or Path(arg).exists():
        raise CliError(f"{arg}: not an .onnx file, a model folder or a model.json; the studio opens those")
    return False, None  # an unknown word: argparse says which commands there are


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""
