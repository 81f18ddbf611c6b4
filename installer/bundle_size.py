"""Print a bundle's size and what takes the room: `python installer/bundle_size.py [dist/genstudio]`."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# Groups worth naming: the first pattern that a file's path (inside _internal/) starts with wins.
GROUPS = [
    ("Qt (PySide6, Qt libraries, ICU, plugins)", ("PySide6/", "shiboken6/", "libQt6", "libicu", "libpyside6",
                                                  "libshiboken6", "libxcb", "libxkbcommon", "libX")),
    ("ONNX Runtime", ("onnxruntime/",)),
    ("numpy + OpenBLAS", ("numpy/", "numpy.libs/", "numpy-")),
    ("Python itself (libpython, stdlib, extension modules)", ("libpython", "python3", "base_library.zip", "lib-dynload")),
    ("shipped models (exported_models/)", ("exported_models/",)),
    ("Pillow", ("PIL/", "pillow.libs/")),
    ("tokenizers", ("tokenizers/",)),
    ("onnx (the model checker's parser)", ("onnx/", "onnx-", "ml_dtypes/", "google/")),
]


def measure(bundle: Path) -> tuple[int, Counter]:
    sizes: Counter = Counter()
    total = 0
    for f in bundle.rglob("*"):
        if not f.is_file() or f.is_symlink():
            continue
        n = f.stat().st_size
        total += n
        rel = f.relative_to(bundle).as_posix()
        rel = rel.split("_internal/", 1)[1] if rel.startswith("_internal/") else rel
        group = next((name for name, prefixes in GROUPS if rel.startswith(prefixes)), "other libraries and files")
        sizes[group] += n
    return total, sizes


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    bundle = Path(argv[0] if argv else "dist/genstudio")
    if not bundle.is_dir():
        print(f"{bundle}: no bundle here (make installer builds it)", file=sys.stderr)
        return 1
    total, sizes = measure(bundle)
    print(f"bundle {bundle}: {total / 2**20:.0f} MB")
    for name, n in sizes.most_common():
        print(f"  {n / 2**20:6.1f} MB  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
