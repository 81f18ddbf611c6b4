"""`genstudio bench diffusion`: one image (25 steps, batch 1 and 8) through ONNX Runtime against PyTorch eager.

Both sides run the engine's own sampling loop (genstudio.engines.diffusion.pipeline: tokenizer, guidance,
scheduler, previews); only the networks differ. The eager side swaps the model's two ONNX sessions for the
PyTorch text encoder and UNet loaded from the same folder's checkpoint (the EMA weights the graphs were
exported from). Runs are interleaved, every other round in reverse order, so machine noise and cold caches hit
all alike. The preview cost is the engine with per-step previews (the predicted clean image converted for
display every step) against no previews, as the median of each round's ratio (`paired_cost`).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

THREADS = 1  # one thread each: on a shared 2-core machine, two torch threads stall on small ops
RUNS = 9  # rounds; on a shared 2-core machine one run's ratios still move by about 10% (docs/diffusion.md)
STEPS = 25
PROMPTS = {"synthfaces": "a smiling woman with long blonde hair", "fashion-mnist": "a photo of a sneaker"}


class TorchSession:
    """Stands in for an ONNX Runtime session: run(output_names, feeds) on a PyTorch module."""

    def __init__(self, module: Any, inputs: tuple[str, ...]) -> None:
        self.module, self.inputs = module, inputs

    def run(self, output_names, feeds: dict) -> list:
        import torch

        with torch.no_grad():
            args = [torch.from_numpy(feeds[name]) for name in self.inputs]
            return [self.module(*args).numpy()]


def paired_cost(slower: list[float], base: list[float]) -> float:
    """The median over interleaved rounds of slower / base, minus 1. The two runs of a round share the machine's
    state, so a slow patch cancels out in its ratio instead of landing in one side's median: a cost of a few
    percent stays readable on a noisy machine."""
    return statistics.median(s / b for s, b in zip(slower, base, strict=True)) - 1.0


def _eager(entry, pool):
    """A DiffusionModel whose text encoder and UNet run in PyTorch eager (same weights, same loop)."""
    from genstudio.engines.diffusion.pipeline import DiffusionModel
    from genstudio.export.diffusion.checkpoint import load_model

    net, _ = load_model(entry.path("checkpoint"))
    sessions = {"text_encoder": TorchSession(net.text_encoder, ("input_ids",)),
                "unet": TorchSession(net.unet, ("sample", "timestep", "encoder_hidden_states"))}

    class EagerDiffusion(DiffusionModel):
        def _session(self, role: str):
            return sessions[role]

    return EagerDiffusion(entry, pool)


def bench_diffusion(*, model: str | None = None, threads: int = THREADS, runs: int = RUNS, steps: int = STEPS,
                    log=print) -> tuple[str, dict]:
    import numpy as np
    import torch

    from genstudio.cli.common import pick_model
    from genstudio.engines.diffusion.pipeline import (
        INT8_FLOAT_BELOW_T,
        DiffusionModel,
        ImageRequest,
        preview_frame,
    )
    from genstudio.runtime.jobs import drive
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    if model is None:  # the faces model when it is installed, else the first diffusion model
        from genstudio.runtime.registry import Registry

        names = [e.name for e in Registry().entries() if e.family == "diffusion" and e.ready]
        model = "diffusion-synthfaces" if "diffusion-synthfaces" in names else None
    entry = pick_model("diffusion", model)
    pool = SessionPool(SessionConfig(provider="cpu", threads=threads))
    ort_model, eager_model = DiffusionModel(entry, pool), _eager(entry, pool)
    torch.set_num_threads(threads)
    prompt = PROMPTS.get(ort_model.dataset, ort_model.example_prompts[0] if ort_model.example_prompts else "")

    def run(m, batch: int, preview: str, unet: str = "float32"):
        r = ImageRequest(prompt, steps=steps, seed=0, batch=batch, preview=preview, unet=unet)
        return lambda: drive(m.sample(r)).images

    diff = float(np.abs(run(ort_model, 1, "none")() - run(eager_model, 1, "none")()).max())
    int8 = "int8" in ort_model.unet_precisions
    diff_int8 = float(np.abs(run(ort_model, 1, "none", "int8")() - run(ort_model, 1, "none")()).max()) if int8 \
        else None
    provider = ort_model._session("unet").provider
    rows, numbers = [], {}
    for batch in (1, 8):
        pairs = {"onnxruntime": run(ort_model, batch, "none"), "torch": run(eager_model, batch, "none"),
                 "onnxruntime_preview": run(ort_model, batch, "x0")}
        if int8:
            pairs["onnxruntime_int8"] = run(ort_model, batch, "none", "int8")
        for fn in pairs.values():
            fn()  # warm up
        times: dict[str, list[float]] = {k: [] for k in pairs}
        for k in range(runs):  # every other round backwards: no run always follows the same one (cold caches)
            for key, fn in (reversed(pairs.items()) if k % 2 else pairs.items()):
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["torch"] / med["onnxruntime"]
        preview_cost = paired_cost(times["onnxruntime_preview"], times["onnxruntime"])
        x0 = np.random.default_rng(0).standard_normal((batch, *ort_model.image_shape)).astype(np.float32)
        n = 200  # the preview's own work, timed alone: far below the noise of whole runs
        t0 = time.perf_counter()
        for _ in range(n):
            preview_frame(x0, ort_model.value_range)
        conversion = (time.perf_counter() - t0) / n * steps / med["onnxruntime"]
        numbers[f"batch_{batch}"] = {"onnxruntime_s": round(med["onnxruntime"], 4), "torch_eager_s": round(med["torch"], 4),
                                     "ratio": round(ratio, 2), "with_preview_s": round(med["onnxruntime_preview"], 4),
                                     "preview_cost": round(preview_cost, 4),
                                     "preview_conversion_share": round(conversion, 6)}
        int8_cells = "| – | – "
        if int8:
            ratio8 = med["torch"] / med["onnxruntime_int8"]
            numbers[f"batch_{batch}"].update({"onnxruntime_int8_s": round(med["onnxruntime_int8"], 4),
                                              "ratio_int8": round(ratio8, 2)})
            int8_cells = f"| {med['onnxruntime_int8']:.3f} | {ratio8:.2f}x "
        rows.append(f"| {batch} | {med['onnxruntime']:.3f} | {med['torch']:.3f} | {ratio:.2f}x {int8_cells}| "
                    f"{med['onnxruntime_preview']:.3f} | {preview_cost * 100:+.1f}% | {conversion * 100:.2f}% |")
        log(f"batch {batch}: ONNX Runtime {med['onnxruntime']:.3f} s, PyTorch eager {med['torch']:.3f} s "
            f"({ratio:.2f}x)" + (f", int8 UNet {med['onnxruntime_int8']:.3f} s ({ratio8:.2f}x)" if int8 else "")
            + f"; with previews {med['onnxruntime_preview']:.3f} s ({preview_cost * 100:+.1f}%)")
    r = ort_model.resolve(ImageRequest(prompt, steps=steps))
    numbers.update({"model": entry.name, "prompt": prompt, "steps": steps, "scheduler": r.scheduler,
                    "guidance": r.guidance, "threads": threads, "runs": runs, "max_abs_diff": diff,
                    "max_abs_diff_int8": diff_int8,
                    "provider": provider, "torch": torch.__version__})
    params = entry.manifest.metrics.get("parameters", {})
    section = "\n".join([
        f"## Text to Image: {steps} steps, ONNX Runtime vs PyTorch eager",
        "",
        f"`genstudio bench diffusion`: {entry.name} ({params.get('total', '?')} parameters), prompt \"{prompt}\", "
        f"{r.scheduler} with guidance {r.guidance:g} (the conditional and unconditional halves in one UNet batch), "
        f"seed 0. Both sides run the engine's sampling loop; only the text encoder and UNet differ (ONNX Runtime "
        f"{provider}, or the PyTorch modules with the same EMA weights). {threads} thread(s) each, median of "
        f"{runs} interleaved runs (every other round in reverse order) after one warm-up. Largest pixel "
        f"difference between the two: {diff:.1e}. "
        "\"With previews\" converts the predicted clean image of every step for display, as the tab does; its "
        "cost is the median of the runs' paired ratios to the same loop without previews, and the conversion "
        f"alone ({steps} conversions timed by themselves, as a share of the loop without previews) shows how much "
        "of that is the preview rather than the machine's noise. "
        + (f"The int8 UNet (unet/model.int8.onnx: ONNX Runtime static quantization of the convolutions) runs the "
           f"same loop, its timesteps below {INT8_FLOAT_BELOW_T} through the float graph as the engine does; "
           f"its largest pixel difference from the float graph is {diff_int8:.3f} "
           "(its quality numbers are in the model's metrics.int8)." if int8 else "The folder has no int8 UNet."),
        "",
        "| batch | ONNX Runtime s | PyTorch eager s | ONNX Runtime speed-up | int8 UNet s | int8 speed-up "
        "| with previews s | preview cost | conversion alone |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ])
    return section, numbers
