"""`genstudio bench`: runs named benchmarks and writes each one's section of docs/benchmarks.md."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

# name -> "module:function"; each function returns (markdown_section, numbers_dict).
BENCHES: dict[str, str] = {
    "startup": "genstudio.qt.bench:bench_startup",
    "stall": "genstudio.qt.bench:bench_stall",
    "llm": "genstudio.cli.llm_bench:bench_llm",
    "gan": "genstudio.cli.gan_bench:bench_gan",
    "diffusion": "genstudio.cli.diffusion_bench:bench_diffusion",
}


def run_benchmarks(which: str, *, write: Path | None = None, as_json: bool = False) -> int:
    names = list(BENCHES) if which == "all" else [which]
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"genstudio: no benchmark named {unknown[0]!r}; choose from all, {', '.join(BENCHES)}")
        return 2
    results = {}
    for name in names:
        module, func = BENCHES[name].split(":")
        section, numbers = getattr(importlib.import_module(module), func)()
        results[name] = numbers
        if not as_json:
            print(section)
        if write:
            write_section(write, name, section)
    if as_json:
        print(json.dumps(results, indent=2))
    return 0


def write_section(path: Path, name: str, section: str) -> None:
    """Replace (or append) the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{section.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _m: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
