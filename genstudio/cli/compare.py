"""`genstudio compare` and `genstudio evaluate all`: every model family trained on one dataset, side by side.

    genstudio compare --dataset fashion-mnist --out docs/compare --n 8 --seed 0            # grid, table, JSON
    genstudio compare --dataset synthfaces --out /tmp/cmp --no-timing                      # manifest numbers only
    genstudio evaluate all --dataset fashion-mnist --json                                   # recompute, into model.json

`compare` writes DIR/comparison.png (one labelled column per model, row k = seed k in every column),
DIR/comparison-chart.png (the table as bars), DIR/comparison.md (the table, with the command and the date) and
DIR/comparison.json (rows, timings, settings): genstudio.engines.compare.write_report, which the Compare tab's
Export also calls.
`evaluate all` runs each family's own `genstudio evaluate <family>` in-process (the GAN, which has none, is
scored here with the dataset's evaluator) and records the numbers in each model.json under metrics.evaluate
(diffusion's own command writes its numbers at the top level, as it always does).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import shlex
import sys
from pathlib import Path

from genstudio.cli.common import emit, session_pool
from genstudio.runtime.manifest import COMPARED_FAMILIES

DATASETS = ("fashion-mnist", "synthfaces")
EVALUATED_FAMILIES = COMPARED_FAMILIES  # what `evaluate all --family` offers: the table's families


def register(groups) -> None:
    p = groups.root.add_parser("compare", help="sample every model family of a dataset side by side: grid + table")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--out", type=Path, required=True, help="folder for comparison.png, .md and .json")
    p.add_argument("--n", type=int, default=8, help="samples per model (default 8; PixelCNN takes ~2 s each)")
    p.add_argument("--seed", type=int, default=0, help="the seed every model samples with (default 0)")
    p.add_argument("--no-timing", action="store_true", help="skip the live timings (use the manifests' numbers)")
    p.add_argument("--max-seconds", type=float, default=60.0,
                   help="skip a timing run expected to take longer than this (default 60)")
    p.add_argument("--json", action="store_true", help="print the JSON summary")
    p.add_argument("--provider", default=None, help="auto, cuda, directml, coreml or cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0: all cores)")
    p.set_defaults(handler=cmd_compare)

    p = groups.evaluate.add_parser("all", help="recompute the numbers of every model trained on a dataset")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--n", type=int, default=2000, help="samples for FID (VAE, GAN, diffusion; default 2000)")
    p.add_argument("--pixelcnn-fid-samples", type=int, default=0,
                   help="PixelCNN samples for FID (slow: ~2 s each; default 0 = bits/dim only)")
    p.add_argument("--family", action="append", choices=EVALUATED_FAMILIES, dest="families",
                   help="only the models of this family (repeatable; default: every family)")
    p.add_argument("--data", type=Path, help="the Fashion-MNIST idx folder (default: Debian's)")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--provider", default=None, help="auto, cuda, directml, coreml or cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0: all cores)")
    p.set_defaults(handler=cmd_evaluate_all)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _entries(dataset: str):
    from genstudio.cli import CliError
    from genstudio.engines.compare import models_for
    from genstudio.runtime.registry import Registry

    entries = models_for(Registry(), dataset)
    if not entries:
        raise CliError(f"no ready generative model is trained on {dataset}; `genstudio models` lists what is here")
    return entries


# -- compare --------------------------------------------------------------------------------------------------
def cmd_compare(args: argparse.Namespace) -> int:
    from genstudio.cli import CliError
    from genstudio.engines.compare import compare_command, compare_job, table_rows, write_report
    from genstudio.runtime.jobs import drive, text_bar

    if args.n < 1:
        raise CliError("--n must be at least 1")
    entries = _entries(args.dataset)
    state = drive(compare_job(entries, session_pool(args), args.dataset, args.n, args.seed,
                              timing=not args.no_timing, max_seconds=args.max_seconds), text_bar("compare"))
    for name, why in state.failed.items():
        print(f"genstudio: {name}: {why}", file=sys.stderr)
    if not state.columns:
        raise CliError("no model could be sampled: " + "; ".join(f"{k}: {v}" for k, v in state.failed.items()))
    command = compare_command(args.dataset, args.out, args.n, args.seed, timing=not args.no_timing,
                              max_seconds=args.max_seconds)
    summary = write_report(args.out, state, table_rows(entries, state.timings or None), command=command,
                           date=_now())
    emit(args, summary, f"{len(state.columns)} models on {args.dataset} -> "
                        f"{', '.join(summary['files'].values())}")
    return 0 if not state.failed else 1


# -- evaluate all -----------------------------------------------------------------------------------------------
def _run_family(argv: list[str]) -> dict:
    """Run `genstudio <argv> --json` in this process; its JSON result, or {"error": ...}."""
    from genstudio.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(argv)
    text = buf.getvalue().strip()
    if rc != 0:
        return {"error": f"`genstudio {shlex.join(argv)}` exited {rc}"}
    try:
        return json.loads(text[text.index("{"):])
    except ValueError:
        return {"error": f"`genstudio {shlex.join(argv)}` printed no JSON"}


def _gan_numbers(entry, pool, n: int) -> dict:
    """FID, precision/recall/coverage of n samples (numpy seed 0, truncation 1) with the dataset's evaluator."""
    from genstudio.engines.evaluate import Evaluator, label_histogram
    from genstudio.engines.gan import GanModel
    from genstudio.runtime.jobs import drive, text_bar
    from genstudio.runtime.registry import Registry

    model = GanModel(entry, pool)
    try:
        evaluator = Evaluator.open(Registry(), model.dataset, pool)
    except LookupError as e:
        return {"error": str(e)}
    images = drive(model.sample_job(n, 0, 1.0), text_bar(f"{entry.name} samples")).images
    out = evaluator.sample_numbers(images, f"{n} samples, z from numpy seed 0, truncation 1.0, through ONNX "
                                           f"Runtime, against the test-set statistics shipped with "
                                           f"{evaluator.entry.name}")
    out["recorded_fid"] = entry.manifest.metrics.get("fid")
    out_logits = evaluator.run(images).logits
    if "class" in out_logits:
        names = evaluator.heads["class"]
        shares = label_histogram(out_logits["class"], len(names))
        out["predicted_class_share"] = {k: round(float(v), 4) for k, v in zip(names, shares, strict=True)}
    return out


def _record(entry, result: dict, command: str) -> None:
    from genstudio.runtime.manifest import Manifest

    manifest = Manifest.load(entry.folder)
    manifest.metrics["evaluate"] = {**{k: v for k, v in result.items() if not k.startswith("recorded_")},
                                    "date": _now(), "command": command}
    manifest.save(entry.folder)


def cmd_evaluate_all(args: argparse.Namespace) -> int:
    from genstudio.cli import CliError

    if args.n < 6:
        raise CliError("--n must be more than 5 (precision/recall use k = 5 neighbours)")
    entries = [e for e in _entries(args.dataset) if not args.families or e.family in args.families]
    if not entries:
        raise CliError(f"no {' or '.join(args.families or ['shipped'])} models for {args.dataset}")
    common = [*(["--provider", args.provider] if args.provider else []), "--threads", str(args.threads)]
    data = ["--data", str(args.data)] if args.data else []
    command = shlex.join(["genstudio", "evaluate", "all", "--dataset", args.dataset, "--n", str(args.n),
                          "--pixelcnn-fid-samples", str(args.pixelcnn_fid_samples),
                          *[w for f in args.families or [] for w in ("--family", f)]])
    results: dict[str, dict] = {}
    for e in entries:
        print(f"evaluating {e.name} ({e.family})", file=sys.stderr)
        writes_itself = e.family in ("autoregressive", "diffusion")
        if e.family == "vae":
            r = _run_family(["evaluate", "vae", "--model", e.name, "--n", str(args.n), "--json", *data, *common])
        elif e.family == "flow":
            r = _run_family(["evaluate", "flow", "--model", e.name, "--n", str(args.n), "--json", *data, *common])
        elif e.family == "autoregressive":  # records under metrics.evaluate itself (--write)
            r = _run_family(["evaluate", "pixelcnn", "--model", e.name, "--json", "--write",
                             "--fid-samples", str(args.pixelcnn_fid_samples), *data, *common])
        elif e.family == "diffusion":  # records at the top level of metrics itself, as it always does
            r = _run_family(["evaluate", "diffusion", "--model", e.name, "--n", str(args.n), "--json", *common])
        elif e.family == "gan":  # no `evaluate gan`: scored here with the dataset's evaluator
            r = _gan_numbers(e, session_pool(args), args.n)
        else:
            r = {"error": f"family {e.family} has no evaluation"}
        saved = "error" not in r
        if saved and not writes_itself:
            _record(e, r, command)
        r["saved"] = bool(saved)
        results[e.name] = r
    errors = {k: v["error"] for k, v in results.items() if "error" in v}
    human = "\n".join(f"{k}: {'error: ' + v['error'] if 'error' in v else 'recomputed, saved to model.json'}"
                      for k, v in results.items())
    emit(args, {"dataset": args.dataset, "command": command, "date": _now(), "models": results}, human)
    return 1 if errors else 0
