"""`genstudio`: no arguments opens the studio; subcommands list, check, generate, export and measure models.

Each family adds its commands from its own module (see FAMILY_MODULES): a `register(groups)` function
that adds parsers under `generate`, `export` and `evaluate`, and may add a `Builder` for `export missing`.
Heavy modules (Qt, ONNX Runtime, torch) are imported inside the commands, never here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from genstudio import __version__

# Modules that add commands; each has `register(groups: CommandGroups) -> None`.
FAMILY_MODULES: list[str] = ["genstudio.cli.llm", "genstudio.cli.flow", "genstudio.cli.evaluator", "genstudio.cli.vae"]


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
    ev = root.add_parser("evaluate", help="recompute a model's quality numbers")
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
    parser, _groups = build_parser()
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


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""
