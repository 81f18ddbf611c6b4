"""An int8 UNet beside the float one: ONNX Runtime's static quantization, calibrated on real sampling runs.

    path, report = add_int8_unet(folder, command="genstudio export diffusion-int8 --model diffusion-fashion-mnist")

The UNet's inputs are recorded while the engine samples the model's example prompts (every step of a few
seeded runs with guidance, so the calibration sees the activations the studio will produce); ONNX Runtime's
quantize_static then writes unet/model.int8.onnx in QDQ format with per-channel int8 weights and uint8
activations for the convolutions (most of the UNet's time). Attention, normalisation and the time embedding
stay in float. The folder's model.json gains the file (role "unet_int8"), the command, and the error of the
int8 UNet against the float one on held-out recorded inputs; quality and speed are measured by
`genstudio evaluate diffusion --unet int8` and `genstudio bench diffusion`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from genstudio.runtime.manifest import Manifest, ModelFile

INT8_FILE, INT8_ROLE = "unet/model.int8.onnx", "unet_int8"
OP_TYPES = ("Conv",)  # what is quantized; MatMul in int8 bought nothing measurable and cost accuracy


class _Recording:
    """A session stand-in that keeps a copy of every feed it runs."""

    def __init__(self, session, feeds: list[dict[str, np.ndarray]]) -> None:
        self.session, self.feeds = session, feeds

    def run(self, output_names, feeds, *args):
        self.feeds.append({k: np.array(v, copy=True) for k, v in feeds.items()})
        return self.session.run(output_names, feeds, *args)


def record_unet_inputs(folder: Path, *, runs: int = 4, steps: int = 10, batch: int = 4) -> list[dict[str, np.ndarray]]:
    """The UNet feeds of `runs` sampling runs (the example prompts in turn, seeds 0.., the model's default
    guidance and scheduler) through the float graphs."""
    from genstudio.engines.diffusion.pipeline import DiffusionModel, ImageRequest
    from genstudio.runtime.jobs import drive
    from genstudio.runtime.registry import check_folder
    from genstudio.runtime.sessions import SessionConfig, SessionPool

    entry = check_folder(Path(folder), "shipped")
    entry.require_ready()
    model = DiffusionModel(entry, SessionPool(SessionConfig(provider="cpu")))
    feeds: list[dict[str, np.ndarray]] = []
    float_session = model._session

    def session(role: str):
        s = float_session(role)
        return _Recording(s, feeds) if role == "unet" else s

    model._session = session  # type: ignore[method-assign]
    prompts = model.example_prompts or [""]
    for k in range(runs):
        drive(model.sample(ImageRequest(prompt=prompts[k % len(prompts)], steps=steps, seed=k, batch=batch,
                                        preview="none", unet="float32")))  # every step (a folder may default to int8)
    return feeds


def quantize_unet(src: Path, dest: Path, feeds: list[dict[str, np.ndarray]]) -> Path:
    """Static QDQ quantization of the UNet graph at `src` into `dest`, calibrated (min-max) on `feeds`."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):  # the calibration inputs, one feed at a time
        def __init__(self) -> None:
            self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        part = dest.with_name(dest.name + ".part")
        quantize_static(str(pre), str(part), Reader(), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(OP_TYPES), per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    _prune_opsets(part)
    part.replace(dest)
    return dest


def _prune_opsets(path: Path) -> None:
    """Drop the opset imports no node uses (the pre-processing pass declares a dozen ORT-internal domains)."""
    import onnx

    model = onnx.load(str(path))
    used = {n.domain for n in model.graph.node} | {""}
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def compare_outputs(float_path: Path, int8_path: Path, feeds: list[dict[str, np.ndarray]]) -> dict:
    """How far the int8 UNet's noise prediction is from the float one on `feeds` (relative RMS and max)."""
    from genstudio.export.onnx_io import ort_session

    a, b = ort_session(float_path, threads=1), ort_session(int8_path, threads=1)
    err = ref = 0.0
    worst = 0.0
    for f in feeds:
        ya, yb = a.run(None, f)[0], b.run(None, f)[0]
        err += float(((ya - yb) ** 2).sum())
        ref += float((ya ** 2).sum())
        worst = max(worst, float(np.abs(ya - yb).max()))
    return {"relative_rms_error": round((err / max(ref, 1e-12)) ** 0.5, 5), "max_abs_diff": round(worst, 5),
            "n_feeds": len(feeds)}


def add_int8_unet(folder: Path, *, command: str, runs: int = 4, steps: int = 10,
                  default: bool = False) -> tuple[Path, dict]:
    """Calibrate on recorded runs, write unet/model.int8.onnx and record it in model.json (with `default`, as the
    UNet the studio runs unless asked otherwise); returns (path, report)."""
    folder = Path(folder)
    feeds = record_unet_inputs(folder, runs=runs + 1, steps=steps)
    held_out = feeds[-steps:]  # the last run checks what the others calibrated
    calibration = feeds[:-steps]
    dest = quantize_unet(folder / "unet" / "model.onnx", folder / INT8_FILE, calibration)
    report = {"command": command, "format": "QDQ, per-channel int8 weights, uint8 activations (min-max)",
              "op_types": list(OP_TYPES), "calibration_feeds": len(calibration),
              "calibration": f"UNet inputs of {runs} sampling runs ({steps} steps, the example prompts, seeds 0..)",
              "against_float": compare_outputs(folder / "unet" / "model.onnx", dest, held_out)}
    m = Manifest.load(folder)
    m.files = [f for f in m.files if f.role != INT8_ROLE] + [ModelFile(INT8_FILE, INT8_ROLE)]
    m.io[INT8_ROLE] = m.io.get("unet", {})
    m.build["int8"] = report
    if default:
        m.defaults["unet"] = "int8"
    m.save(folder)
    return dest, report
