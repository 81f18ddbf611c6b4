"""`genstudio bench gan`: a 16-face grid through ONNX Runtime against PyTorch eager on the same weights.

The shipped GAN's folder holds the ONNX graphs the studio runs and the safetensors checkpoint they were
exported from; both sides render the same z (mapping, truncation, synthesis) with the same thread count,
interleaved run by run so that machine noise hits both alike. Three workloads, as the GAN Faces tab has them:
a new batch (z -> image for 16 faces), a truncation drag (w -> image for 16 faces) and a slider edit of the
selected face (one w -> image).
"""

from __future__ import annotations

import platform
import statistics
import time

THREADS = 1  # one thread each: on a shared 2-core machine, two torch threads stall on small ops
RUNS = 30
WARMUP = 5
MODEL = "gan-synthfaces"


def _median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000.0


def bench_gan(*, model: str = MODEL, threads: int = THREADS, runs: int = RUNS, log=print) -> tuple[str, dict]:
    import numpy as np
    import torch

    from genstudio.cli.common import pick_model
    from genstudio.engines.gan import GanModel, seeded_z
    from genstudio.export.gan.checkpoint import load_generator
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    entry = pick_model("gan", model)
    gan = GanModel(entry, SessionPool(SessionConfig(provider="cpu", threads=threads)))
    g, _ = load_generator(entry.path("checkpoint"))
    torch.set_num_threads(threads)
    psi = gan.default_truncation
    z = seeded_z(16, gan.z_dim, 0)
    w_avg_t = torch.from_numpy(gan.w_avg)

    def torch_grid(z_np):
        with torch.no_grad():
            w = g.mapping(torch.from_numpy(z_np))
            return g.synthesis(w_avg_t + psi * (w - w_avg_t)).numpy()

    def torch_synth(w_np):
        with torch.no_grad():
            return g.synthesis(torch.from_numpy(w_np)).numpy()

    w16 = gan.truncate(gan.map(z), psi)
    workloads = {
        "new batch: 16 faces, z -> image": (lambda: gan.render(z, psi)[1], lambda: torch_grid(z)),
        "truncation drag: 16 faces, w -> image": (lambda: gan.synthesize(w16), lambda: torch_synth(w16)),
        "slider edit: 1 face, w -> image": (lambda: gan.synthesize(w16[:1]), lambda: torch_synth(w16[:1])),
    }
    diff = float(np.abs(workloads["new batch: 16 faces, z -> image"][0]() - torch_grid(z)).max())
    provider = gan._session("synthesis").provider
    rows, numbers = [], {}
    for name, (ort_fn, torch_fn) in workloads.items():
        for _ in range(WARMUP):
            ort_fn()
            torch_fn()
        t_ort, t_torch = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            ort_fn()
            t1 = time.perf_counter()
            torch_fn()
            t2 = time.perf_counter()
            t_ort.append(t1 - t0)
            t_torch.append(t2 - t1)
        o, t = _median_ms(t_ort), _median_ms(t_torch)
        numbers[name] = {"onnxruntime_ms": round(o, 3), "torch_eager_ms": round(t, 3), "ratio": round(t / o, 2)}
        rows.append(f"| {name} | {o:.2f} | {t:.2f} | {t / o:.2f}x |")
        log(f"{name}: ONNX Runtime {o:.2f} ms, PyTorch eager {t:.2f} ms ({t / o:.2f}x)")
    numbers.update({"model": entry.name, "threads": threads, "runs": runs, "truncation": psi,
                    "max_abs_diff": diff, "provider": str(provider), "torch": torch.__version__,
                    "cpu": platform.processor() or platform.machine()})
    section = "\n".join([
        "## GAN Faces: a 16-face grid, ONNX Runtime vs PyTorch eager",
        "",
        f"`genstudio bench gan`: {entry.name} (generator of {entry.manifest.metrics.get('parameters', {}).get('generator', '?')} "
        f"parameters), the same weights on both sides (the folder's checkpoint and the graphs exported from it), "
        f"{threads} threads each ({provider}), truncation ψ {psi}, median of {runs} interleaved runs after {WARMUP} warm-up runs. "
        f"Largest pixel difference between the two: {diff:.1e}.",
        "",
        "| workload | ONNX Runtime ms | PyTorch eager ms | ONNX Runtime speed-up |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        "The tab renders a new batch and a truncation drag in a background job, and a slider edit of the "
        "selected face on the GUI thread.",
    ])
    return section, numbers
