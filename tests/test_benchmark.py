"""genstudio.runtime.benchmark: example inputs from report shapes, and timing rows for the CPU provider."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_model_folder

from genstudio.runtime.benchmark import benchmark_model, example_inputs, format_table
from genstudio.runtime.jobs import Progress, drive
from genstudio.runtime.registry import check_folder


def test_benchmark_returns_rows_for_the_cpu_provider(tmp_path):
    entry = check_folder(make_model_folder(tmp_path / "tiny"))
    progress: list[Progress] = []
    rows = drive(benchmark_model(entry, providers=["CPUExecutionProvider"], runs=5, warmup=2),
                 on_progress=progress.append)
    (row,) = rows
    assert row.provider == "CPUExecutionProvider" and row.requested == "CPUExecutionProvider"
    assert row.file == "model.onnx" and row.role == "model"
    assert row.runs == 5 and row.note == ""
    assert row.mean_ms > 0 and row.median_ms > 0 and 0 < row.min_ms <= row.median_ms
    assert progress[-1].step == progress[-1].total == 7
    assert "| cpu | model.onnx | 5 |" in format_table(rows)


def test_benchmark_defaults_to_the_usable_providers(tmp_path):
    entry = check_folder(make_model_folder(tmp_path / "tiny"))
    rows = drive(benchmark_model(entry, runs=1, warmup=0))
    assert "CPUExecutionProvider" in [r.provider for r in rows]


def test_benchmark_stops_at_a_yield(tmp_path):
    entry = check_folder(make_model_folder(tmp_path / "tiny"))
    job = benchmark_model(entry, providers=["CPUExecutionProvider"], runs=1000, warmup=0)
    for i, _ in enumerate(job):
        if i == 3:
            job.close()  # what a cancel does: the session is freed, nothing else runs
            break


def test_example_inputs_fill_dynamic_dims():
    inputs = [
        {"name": "input_ids", "dtype": "int64", "shape": ["batch", "sequence"]},
        {"name": "attention_mask", "dtype": "int64", "shape": ["batch", "past_sequence_length + sequence"]},
        {"name": "position_ids", "dtype": "int64", "shape": ["batch", "sequence"]},
        {"name": "past_key_values.0.key", "dtype": "float32", "shape": ["batch", 3, "past_sequence_length", 64]},
        {"name": "x", "dtype": "float16", "shape": [None, 4]},
    ]
    feeds = example_inputs(inputs, io={"decoder": {"dims": {"sequence": 8}}}, role="decoder")
    assert feeds["input_ids"].shape == (1, 8) and feeds["input_ids"].dtype == np.int64
    assert feeds["attention_mask"].shape == (1, 8) and feeds["attention_mask"].min() == 1
    assert feeds["position_ids"][0].tolist() == list(range(8))
    assert feeds["past_key_values.0.key"].shape == (1, 3, 0, 64)
    assert feeds["x"].shape == (1, 4) and feeds["x"].dtype == np.float16


def test_example_inputs_take_concrete_shapes_from_the_manifest():
    feeds = example_inputs([{"name": "z", "dtype": "float32", "shape": ["batch", "latent"]}],
                           io={"inputs": [{"name": "z", "shape": [2, 16]}]})
    assert feeds["z"].shape == (2, 16)


def test_example_inputs_refuse_string_inputs():
    with pytest.raises(ValueError, match="cannot fill"):
        example_inputs([{"name": "text", "dtype": "object", "shape": [1]}])


def test_paired_cost_cancels_a_slow_patch_that_medians_would_keep():
    from genstudio.cli.diffusion_bench import paired_cost

    base = [1.0, 1.0, 2.0, 2.0, 2.0]  # the machine slows down halfway through the rounds
    slower = [1.02, 1.02, 2.04, 2.04, 2.04]  # the same 2% on top in every round
    assert paired_cost(slower, base) == pytest.approx(0.02)
    with pytest.raises(ValueError):
        paired_cost([1.0], [1.0, 1.0])  # rounds come in pairs
