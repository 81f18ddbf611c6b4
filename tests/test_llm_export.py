"""The whole LLM pipeline on a tiny random Llama GGUF: export, parity, KV cache, int4, registry, CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from llm_tiny import exported_tiny, tiny_engine

from genstudio.runtime.manifest import Manifest
from genstudio.runtime.registry import check_folder

pytestmark = pytest.mark.slow


def test_export_writes_a_ready_model_with_checks():
    folder = exported_tiny()
    m = Manifest.load(folder)
    assert m.family == "llm" and m.name == "tiny-llama"
    assert {f.role for f in m.files} >= {"decoder", "decoder_fp32", "tokenizer", "chat_template"}
    met = m.metrics
    assert met["parity_fp32"]["ok"] and met["parity_fp32"]["max_abs_diff"] < 1e-3
    assert met["kv_cache_fp32"]["ok"] and met["kv_cache_fp32"]["greedy_tokens_equal"]
    assert 0.0 <= met["int4_vs_fp32"]["teacher_forced_top1_agreement"] <= 1.0
    assert m.defaults["temperature"] == pytest.approx(0.2)
    io = m.io["decoder"]
    assert io["inputs"][:3] == ["input_ids", "attention_mask", "position_ids"]
    assert io["outputs"][:2] == ["logits", "present.0.key"]
    entry = check_folder(folder, deep=True)  # the studio's ONNX safety checks pass on both graphs
    assert entry.ready, entry.error


def test_int4_graph_uses_fused_kernels():
    import onnx

    model = onnx.load(str(exported_tiny() / "model_int4.onnx"), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    assert {"MatMulNBits", "GatherBlockQuantized", "GroupQueryAttention", "SkipSimplifiedLayerNormalization"} <= ops
    # the only fp32 MatMuls left are the block sums that carry the Q4_1 blocks' offsets
    assert all(n.name.endswith("MatMulBlockSum") for n in model.graph.node if n.op_type == "MatMul")
    build = Manifest.load(exported_tiny()).build["int4"]
    assert build["repacked_q4_matmuls"] == 2 * 4 and len(build["repacked_q8_embedding"]) == 2  # Gather and head


def test_q4_blocks_carry_over_with_their_offsets(tmp_path):
    import onnx

    from genstudio.engines.llm.decoder import KVDecoder
    from genstudio.export.llm.checks import _loaded
    from genstudio.export.llm.gguf_load import open_gguf
    from genstudio.export.llm.q4_repack import repack_linears

    folder = exported_tiny()
    g = open_gguf(folder.parent.parent / "tiny-llama.Q4_1.gguf")
    ids = list(range(3, 60))
    ref = KVDecoder(_loaded(folder / "model_fp32.onnx")).score(ids)
    err = {}
    for correct in (True, False):
        model, n = repack_linears(onnx.load(str(folder / "model_fp32.onnx")), g, accuracy_level=0, correct=correct)
        assert n == 8
        onnx.save_model(model, str(tmp_path / f"r{correct}.onnx"))
        got = KVDecoder(_loaded(tmp_path / f"r{correct}.onnx")).score(ids)
        err[correct] = float(np.sqrt(np.mean((got - ref) ** 2)))
    # the block offsets that an integer zero point cannot hold are what the correction puts back
    assert err[True] < 0.3 * err[False]


@pytest.mark.parametrize("shared", [True, False])
def test_kv_cache_decoding_equals_full_recomputation(shared):
    from genstudio.export.llm.checks import kv_cache_vs_full

    r = kv_cache_vs_full(exported_tiny() / "model_fp32.onnx", list(range(3, 40)), 12, shared_buffer=shared)
    assert r["ok"] and r["max_abs_diff"] < 1e-4


def test_prefix_reuse_between_turns_gives_the_same_reply():
    from genstudio.engines.llm.sampling import SamplingSettings

    eng = tiny_engine(variant="fp32")
    s = SamplingSettings(temperature=0, max_new_tokens=6, repetition_penalty=1.0)
    msgs = [{"role": "user", "content": "hello there"}]
    first = eng.chat(msgs, s)
    msgs2 = msgs + [{"role": "assistant", "content": first.text}, {"role": "user", "content": "and then"}]
    warm = eng.chat(msgs2, s)
    assert warm.stats.cached_tokens > 0
    eng.decoder.reset()
    cold = eng.chat(msgs2, s)
    assert cold.stats.cached_tokens == 0
    assert warm.token_ids == cold.token_ids


def test_cli_generate_text_json(capsys, monkeypatch, tmp_path):
    from genstudio.cli import main
    from genstudio.runtime import paths

    shutil.copytree(exported_tiny(), paths.user_models_dir() / "tiny-llama")
    rc = main(["generate", "text", "--prompt", "hi", "--max-new-tokens", "5", "--seed", "3", "--threads", "1",
               "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["new_tokens"] <= 5 and out["prompt_tokens"] > 0
    for key in ("reply", "time_to_first_token_s", "prefill_tokens_per_s", "decode_tokens_per_s"):
        assert key in out
    rc = main(["generate", "text", "--prompt", "hi", "--max-new-tokens", "5", "--seed", "3", "--threads", "1",
               "--json"])
    assert json.loads(capsys.readouterr().out)["reply"] == out["reply"]  # the same seed, the same reply

    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 20, encoding="utf-8")
    assert main(["evaluate", "llm", "--text", str(text), "--window", "64", "--json"]) == 0
    ppl = json.loads(capsys.readouterr().out)["perplexity"]
    assert np.isfinite(ppl) and ppl > 1


def test_cli_llm_mistakes_are_one_line(capsys, tmp_path):
    from genstudio.cli import main
    from genstudio.runtime import paths

    folder = paths.user_models_dir() / "tiny-llama"
    shutil.copytree(exported_tiny(), folder)
    m = Manifest.load(folder)
    m.files = [f for f in m.files if f.role != "decoder_fp32"]  # as `export llm --no-fp32` leaves it
    m.save(folder)
    (folder / "model_fp32.onnx").unlink()
    assert main(["generate", "text", "--prompt", "hi", "--variant", "fp32", "--threads", "1"]) == 2
    assert "decoder_fp32" in capsys.readouterr().err
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat. " * 100, encoding="utf-8")
    for window, says in (("1", "at least two tokens"), ("0", "at least two tokens"), ("100000", "context")):
        assert main(["evaluate", "llm", "--text", str(text), "--window", window]) == 2
        assert says in capsys.readouterr().err
    text.write_bytes(b"\xff\xfe not utf-8")
    assert main(["evaluate", "llm", "--text", str(text)]) == 2
    assert "UTF-8" in capsys.readouterr().err


def test_cli_export_refuses_a_broken_gguf(tmp_path, capsys):
    from genstudio.cli import main

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 16)
    assert main(["export", "llm", "--gguf", str(bad), "--out", str(tmp_path / "out")]) == 2
    assert "key/values" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
