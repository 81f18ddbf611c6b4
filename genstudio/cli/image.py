"""`genstudio generate image` and `genstudio evaluate diffusion`: text-to-image sampling and its quality numbers.

    genstudio generate image --model diffusion-synthfaces --prompt "a smiling woman with red hair" \
        --steps 25 --guidance 3 --scheduler dpmpp_2m --seed 0 --batch 4 --out grid.png --npy grid.npy --json
    genstudio evaluate diffusion --model diffusion-synthfaces --n 500 --json   # adherence + FID into model.json
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from pathlib import Path

from genstudio.cli.common import add_generate_args, emit, pick_model, session_pool, write_images

SCHEDULER_NAMES = ("ddpm", "ddim", "euler_a", "dpmpp_2m")  # genstudio.engines.diffusion.schedulers.SCHEDULERS


def register(groups) -> None:
    p = groups.generate.add_parser("image", help="images from a text prompt with a diffusion model")
    add_generate_args(p)
    p.add_argument("--prompt", required=True, help="what to draw, in the model's words (see `--json` for unknown ones)")
    p.add_argument("--negative", default="", help="what to steer away from: the unconditional text (default: none)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale; 1 is off "
                                                                  "(default: the model's)")
    p.add_argument("--scheduler", default=None, metavar="NAME",
                   help=f"sampler: {', '.join(SCHEDULER_NAMES)} (default: the model's)")
    p.add_argument("--unet", choices=("float32", "int8"), default=None,
                   help="the UNet graph: float32, or int8 where the folder has one (default: the model's)")
    p.add_argument("--batch", type=int, default=1, help="images, 1-16; image k uses seed + k (default 1)")
    p.set_defaults(handler=cmd_generate)

    p = groups.evaluate.add_parser("diffusion", help="recompute a text-to-image model's prompt adherence and FID")
    p.add_argument("--model", help="a diffusion model name (default: the first)")
    p.add_argument("--n", type=int, default=500, help="images for FID (default 500; 0 skips FID)")
    p.add_argument("--per-prompt", type=int, default=8, help="images per adherence prompt (default 8)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the model's)")
    p.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the model's)")
    p.add_argument("--scheduler", default=None, metavar="NAME", help=f"{', '.join(SCHEDULER_NAMES)}")
    p.add_argument("--unet", choices=("float32", "int8"), default=None,
                   help="the UNet graph: float32, or int8 where the folder has one (default: the model's); int8 numbers go to metrics.int8")
    p.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    p.add_argument("--no-save", action="store_true", help="print the numbers without writing them to model.json")
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--provider", default=None, help="auto, cuda, directml, coreml or cpu")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0: all cores)")
    p.set_defaults(handler=cmd_evaluate)


# -- generate ---------------------------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    import numpy as np

    from genstudio.cli import CliError
    from genstudio.engines.diffusion.pipeline import DiffusionModel, ImageRequest
    from genstudio.runtime.imaging import to_uint8
    from genstudio.runtime.jobs import drive, text_bar

    entry = pick_model("diffusion", args.model)
    model = DiffusionModel(entry, session_pool(args))
    request = ImageRequest(args.prompt, args.negative, args.steps, args.guidance, args.scheduler, args.seed,
                           args.batch, preview="none", unet=args.unet)
    try:
        request = model.resolve(request)
        for text, what in ((request.prompt, "prompt"), (request.negative, "negative prompt")):
            model.token_ids(text, what)  # a too-long prompt fails here, before any work
    except ValueError as e:
        raise CliError(str(e)) from None
    unknown = model.check_prompt(args.prompt).unknown
    unknown_negative = model.check_prompt(args.negative).unknown
    for words, what in ((unknown, "prompt"), (unknown_negative, "negative prompt")):
        if words:
            print(f"genstudio: warning: {entry.name} does not know these words of the {what}; they run as "
                  f"[UNK]: {', '.join(words)}", file=sys.stderr)
    bar = text_bar(f"{entry.name} {request.scheduler}", stream=sys.stderr)
    result = drive(model.sample(request), bar)
    images = result.images
    written = write_images(to_uint8(images, value_range=(0.0, 1.0)), args, settings=result.settings)
    summary = {**result.settings, "seeds": result.seeds, "unknown_words": unknown,
               "unknown_negative_words": unknown_negative, "shape": list(images.shape),
               "seconds": round(result.seconds, 4),
               "steps_per_second": round(request.steps / max(result.seconds, 1e-9), 3),
               "written": written, "mean_pixel": float(np.mean(images))}
    emit(args, summary, f"{entry.name}: {request.batch} image(s) of {args.prompt!r} in {result.seconds:.2f} s "
                        f"({request.steps} {request.scheduler} steps, guidance {request.guidance:g}, seed {args.seed})"
                        + (f" -> {', '.join(written.values())}" if written else ""))
    return 0


# -- evaluate ---------------------------------------------------------------------------------------------
def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def synthfaces_targets() -> list[tuple[str, dict[str, str]]]:
    """One prompt per (hair colour, expression, glasses) combination held out from training, in a fixed
    order, naming also the subject and, on some, headwear and a background: (prompt, expected attributes)."""
    from genstudio.export.data.synthfaces_attributes import ATTRIBUTES, HELD_OUT
    from genstudio.export.data.synthfaces_captions import (
        BACKGROUND,
        EXPRESSION_ADJ,
        GLASSES,
        HAIR_COLOUR,
        HEADWEAR,
        NOUNS,
    )

    genders = ATTRIBUTES["gender"]
    headwear = [h for h in ATTRIBUTES["headwear"] if h != "none"]
    patterns, colours = ATTRIBUTES["background"], ATTRIBUTES["background_colour"]
    out = []
    for k, (hair, expression, glasses) in enumerate(sorted(HELD_OUT)):
        gender = genders[k % len(genders)]
        expected = {"gender": gender, "hair_colour": hair, "expression": expression, "glasses": glasses}
        wearing = [GLASSES[glasses][0]]
        if k % 2:
            hat = headwear[(k // 2) % len(headwear)]
            wearing.append(HEADWEAR[hat][0])
            expected["headwear"] = hat
        prompt = (f"{_article(EXPRESSION_ADJ[expression][0] + ' ' + NOUNS[gender][0])} "
                  f"with {HAIR_COLOUR[hair][0]} hair wearing {' and '.join(wearing)}")
        if k % 3 == 0:
            pattern, colour = patterns[(k // 3) % len(patterns)], colours[(k // 3 + 1) % len(colours)]
            if colour == hair:
                colour = colours[(k // 3 + 2) % len(colours)]
            prompt += f" on {_article(BACKGROUND[pattern][0].format(colour))}"
            expected.update(background=pattern, background_colour=colour)
        out.append((prompt, expected))
    return out


def synthfaces_real_faces(targets: list[tuple[str, dict[str, str]]], per_prompt: int, size: int):
    """Real SynthFaces with each target's attributes (per_prompt test-split faces each, the attributes pinned),
    shrunk to the model's side as its training images were: uint8 (N, size, size, 3), and how they were made.

    A prompt that names a hair colour describes a face with hair (a bald face's caption says "bald", never
    "with red hair"), so such a target skips the faces whose other attributes would draw them bald."""
    import itertools

    import numpy as np

    from genstudio.export.data import synthfaces
    from genstudio.export.data.image_sets import SYNTHFACES_DRAWS
    from genstudio.export.diffusion.data import resize

    split, draw_seed = SYNTHFACES_DRAWS["test"]
    stream = synthfaces.face_seeds(8 * per_prompt + 16, draw_seed, split)
    faces = []
    for prompt, expected in targets:
        shown = (s for s in stream if "hair_colour" not in expected  # attributes() is cheap, render() is not
                 or synthfaces.attributes(s, expected)["hair_style"] != "bald")
        fit = list(itertools.islice(shown, per_prompt))
        if len(fit) < per_prompt:
            raise ValueError(f"too few test faces can show {prompt!r}")
        faces += [synthfaces.render(s, expected)[0] for s in fit]
    note = (f"{per_prompt} real test-split faces per prompt, rendered with the prompt's attributes pinned "
            f"(genstudio.export.data.synthfaces.render; never bald where the prompt names a hair colour) and "
            f"shrunk to {size}x{size} like the training images: what a generator that followed every prompt "
            "perfectly would score with this evaluator")
    return resize(np.stack(faces), size), note


def synthfaces_fid_prompts(n: int, fits=None, seed: int = 0) -> list[str]:
    """Captions of the first n SynthFaces test faces (the faces of the evaluator's reference statistics).
    `fits(text) -> bool` rejects a caption the model cannot read (too many tokens): the face is captioned
    again, up to 20 times, and skipped after that."""
    import numpy as np

    from genstudio.export.data import synthfaces
    from genstudio.export.data.image_sets import SYNTHFACES_DRAWS

    split, draw_seed = SYNTHFACES_DRAWS["test"]
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for face in synthfaces.face_seeds(2 * n + 100, draw_seed, split):
        attrs = synthfaces.attributes(face)
        for _ in range(20):
            text = synthfaces.caption(attrs, rng)
            if fits is None or fits(text):
                out.append(text)
                break
        if len(out) == n:
            break
    return out


def _command(args: argparse.Namespace, name: str) -> str:
    words = ["genstudio", "evaluate", "diffusion", "--model", name, "--n", str(args.n),
             "--per-prompt", str(args.per_prompt), "--seed", str(args.seed)]
    for flag, value in (("--steps", args.steps), ("--guidance", args.guidance), ("--scheduler", args.scheduler),
                        ("--unet", args.unet)):
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from genstudio.cli import CliError
    from genstudio.engines.diffusion.pipeline import DiffusionModel
    from genstudio.engines.diffusion.quality import PromptTarget, measure_job
    from genstudio.runtime.jobs import drive, text_bar
    from genstudio.runtime.manifest import Manifest

    if args.n < 0 or args.per_prompt < 1:
        raise CliError("--n must be at least 0 and --per-prompt at least 1")
    entry = pick_model("diffusion", args.model)
    model = DiffusionModel(entry, session_pool(args))
    targets, fid_prompts, note, real, real_note = None, None, "", None, ""
    if model.dataset == "synthfaces":
        pairs = synthfaces_targets()
        targets = [PromptTarget(p, e) for p, e in pairs]
        fid_prompts = synthfaces_fid_prompts(args.n, lambda t: not model.check_prompt(t).too_long) \
            if args.n else None
        note = ("one prompt per (hair_colour, expression, glasses) combination held out from training "
                "(genstudio.export.data.synthfaces_attributes.HELD_OUT), composed by genstudio.cli.image")
        real, real_note = synthfaces_real_faces(pairs, args.per_prompt, model.image_shape[-1])
    elif not model.classes:
        raise CliError(f"{entry.name} names no classes and no known dataset; nothing to measure adherence on")
    try:
        result = drive(measure_job(model, None, targets=targets, fid_prompts=fid_prompts, n=args.n,
                                   per_prompt=args.per_prompt, steps=args.steps, scheduler=args.scheduler,
                                   guidance=args.guidance, seed=args.seed, targets_note=note, unet=args.unet,
                                   real_images=real, real_note=real_note),
                       text_bar(f"{entry.name} quality", stream=sys.stderr))
    except ValueError as e:
        raise CliError(str(e)) from None
    if "skipped" in result:
        raise CliError(result["skipped"])
    recorded = entry.manifest.metrics
    result["evaluated_by"] = _command(args, entry.name)
    result["evaluated_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    summary = {"model": entry.name, "recorded_fid": recorded.get("fid"), **result}
    if not args.no_save:
        manifest = Manifest.load(entry.folder)
        if result["quality_sampling"].get("unet") == "int8":  # the float numbers stay the model's headline
            manifest.metrics["int8"] = {**manifest.metrics.get("int8", {}), **result}
        else:
            manifest.metrics.update(result)
        manifest.save(entry.folder)
        summary["saved_to"] = str(Path(entry.folder) / "model.json")
    emit(args, summary, _human(entry.name, result))
    return 0


def _human(name: str, r: dict) -> str:
    s = r["quality_sampling"]
    parts = [f"{name} ({s['steps']} {s['scheduler']} steps, guidance {s['guidance']:g}):"]
    adh = r.get("prompt_adherence")
    if adh:
        acc = ", ".join(f"{h} {v:.3f}" for h, v in adh["accuracy"].items())
        parts.append(f"adherence {acc}; all right {adh['all_correct']:.3f} on {adh['n_prompts']} prompts "
                     f"x {adh['images_per_prompt']}")
        if "real_images" in adh:
            real = ", ".join(f"{h} {v:.3f}" for h, v in adh["real_images"]["accuracy"].items())
            parts.append(f"(real faces with those attributes: {real})")
    if "fid" in r:
        parts.append(f"{r['fid_name']} {r['fid']:.3f} on {r['fid_n_samples']} images")
    return " ".join(parts)
