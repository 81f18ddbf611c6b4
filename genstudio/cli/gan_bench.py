"""`genstudio bench gan`: a 16-face grid through ONNX Runtime against PyTorch eager on the same weights.

The shipped GAN's folder holds the ONNX graphs the studio runs and the safetensors checkpoint they were
exported from; both sides render the same z (mapping, truncation, synthesis) with the same thread count,
interleaved run by run so that machine noise hits both alike. Three workloads, as the GAN Faces tab has them:
a new batch (z -> image for 16 faces), a truncation drag (w -> image for 16 faces) and a slider edit of the
selected face (one w -> image).

PyTorch runs two ways: the generator as trained (`Generator.synthesis`) and the arrangement the graph was
exported from (`SynthesisGraph`, the same function with fewer passes over the feature maps), so the table
separates what the arrangement buys from what ONNX Runtime buys.
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
    from genstudio.export.gan.generator import SynthesisGraph
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    entry = pick_model("gan", model)
    gan = GanModel(entry, SessionPool(SessionConfig(provider="cpu", threads=threads)))
    g, _ = load_generator(entry.path("checkpoint"))
    arranged = SynthesisGraph(g).eval()
    torch.set_num_threads(threads)
    psi = gan.default_truncation
    z = seeded_z(16, gan.z_dim, 0)
    w_avg_t = torch.from_numpy(gan.w_avg)

    def torch_grid(synthesis, z_np):
        with torch.no_grad():
            w = g.mapping(torch.from_numpy(z_np))
            return synthesis(w_avg_t + psi * (w - w_avg_t)).numpy()

    def torch_synth(synthesis, w_np):
        with torch.no_grad():
            return synthesis(torch.from_numpy(w_np)).numpy()

    w16 = gan.truncate(gan.map(z), psi)
    workloads = {  # name: (ONNX Runtime, PyTorch as trained, PyTorch in the exported arrangement)
        "new batch: 16 faces, z -> image": (lambda: gan.render(z, psi)[1], lambda: torch_grid(g.synthesis, z),
                                            lambda: torch_grid(arranged, z)),
        "truncation drag: 16 faces, w -> image": (lambda: gan.synthesize(w16), lambda: torch_synth(g.synthesis, w16),
                                                  lambda: torch_synth(arranged, w16)),
        "slider edit: 1 face, w -> image": (lambda: gan.synthesize(w16[:1]),
                                            lambda: torch_synth(g.synthesis, w16[:1]),
                                            lambda: torch_synth(arranged, w16[:1])),
    }
    diff = float(np.abs(workloads["new batch: 16 faces, z -> image"][0]() - torch_grid(g.synthesis, z)).max())
    provider = gan._session("synthesis").provider
    rows, numbers = [], {}
    for name, fns in workloads.items():
        for _ in range(WARMUP):
            for fn in fns:
                fn()
        times: list[list[float]] = [[] for _ in fns]
        for r in range(runs):
            order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
            for k in order:
                t0 = time.perf_counter()
                fns[k]()
                times[k].append(time.perf_counter() - t0)
        o, t, a = (_median_ms(ts) for ts in times)
        numbers[name] = {"onnxruntime_ms": round(o, 3), "torch_eager_ms": round(t, 3), "ratio": round(t / o, 2),
                         "torch_eager_arranged_ms": round(a, 3), "ratio_arranged": round(a / o, 2)}
        rows.append(f"| {name} | {o:.2f} | {t:.2f} | {a:.2f} | {t / o:.2f}x | {a / o:.2f}x |")
        log(f"{name}: ONNX Runtime {o:.2f} ms, PyTorch eager {t:.2f} ms as trained ({t / o:.2f}x), "
            f"{a:.2f} ms arranged as exported ({a / o:.2f}x)")
    numbers.update({"model": entry.name, "threads": threads, "runs": runs, "truncation": psi,
                    "max_abs_diff": diff, "provider": str(provider), "torch": torch.__version__,
                    "cpu": platform.processor() or platform.machine()})
    section = "\n".join([
        "## GAN Faces: a 16-face grid, ONNX Runtime vs PyTorch eager",
        "",
        f"`genstudio bench gan`: {entry.name} (generator of {entry.manifest.metrics.get('parameters', {}).get('generator', '?')} "
        f"parameters), the same weights on both sides (the folder's checkpoint and the graphs exported from it), "
        f"{threads} threads each ({provider}), truncation ψ {psi}, median of {runs} interleaved runs after {WARMUP} warm-up runs. "
        f"Largest pixel difference between the two: {diff:.1e}. PyTorch runs the generator as trained and, "
        "in the last columns, the same function arranged as the graph was exported (`SynthesisGraph`).",
        "",
        "| workload | ONNX Runtime ms | PyTorch eager ms, as trained | PyTorch eager ms, arranged as exported "
        "| speed-up over as trained | over arranged |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "The tab renders a new batch and a truncation drag in a background job, and a slider edit of the "
        "selected face on the GUI thread.",
    ])
    return section, numbers
