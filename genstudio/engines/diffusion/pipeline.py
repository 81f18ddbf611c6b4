"""The text-to-image diffusion engine: tokenizer, text encoder, UNet and a scheduler, with classifier-free guidance.

    model = DiffusionModel(registry.get("diffusion-synthfaces"), pool)
    model.check_prompt("a smiling woman with red hair")         # PromptCheck: unknown words, token count
    job = model.sample(ImageRequest("a smiling woman with red hair", steps=25, seed=0, batch=4))
    result = drive(job, on_progress)                            # Progress per step; .preview is a DiffusionStep
    result.images                                               # (4, C, H, W) float32 in [0, 1]

Image k of a batch uses seed + k for all its noise (the start and every ancestral step), so a batch of 4 at
seed 10 holds the same images as four single runs at seeds 10..13, whatever the scheduler.

Classifier-free guidance (Ho & Salimans 2022, https://arxiv.org/abs/2207.12598): the conditional and the
unconditional halves run as one UNet batch of 2B; eps = eps_uncond + g (eps_cond - eps_uncond), where the
negative prompt ("" by default: all padding, what the model learnt as "no caption") is the unconditional
text. g = 1 runs only the conditional half. numpy, ONNX Runtime and tokenizers only.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from genstudio.engines.diffusion.schedulers import SCHEDULERS, Scheduler, SchedulerConfig, make_scheduler
from genstudio.engines.model_folder import ModelFolder
from genstudio.runtime.jobs import Progress
from genstudio.runtime.manifest import Manifest
from genstudio.runtime.registry import ModelEntry

PAD_ID = 0  # "[PAD]": fills every prompt to max_length; an all-padding prompt is the unconditional input
UNK_ID = 1  # "[UNK]": what a word outside the vocabulary becomes
SPECIAL_TOKENS = ("[PAD]", "[UNK]")
MAX_BATCH = 16  # images per request
PREVIEWS = ("x0", "noisy", "none")  # what each step converts for display
UNET_ROLES = {"float32": "unet", "int8": "unet_int8"}  # the UNet graph a request runs, by precision
# An int8 request runs the timesteps below this through the float graph: min-max calibration makes the int8
# activations too coarse for the last, nearly clean steps, whose noise it leaves behind as speckle. Two of 25
# DPM++ steps (docs/diffusion.md, "The grain is the int8 UNet's").
INT8_FLOAT_BELOW_T = 100
_ENCODER_CACHE = 64  # prompts whose encoder output is kept


def unet_precisions(manifest: Manifest) -> list[str]:
    """The UNet graphs a diffusion folder has: "float32", and "int8" when it ships a quantized one."""
    return [k for k, role in UNET_ROLES.items() if manifest.files_with_role(role)]


def default_unet(manifest: Manifest) -> str:
    """The UNet a request runs when it names none: the manifest's defaults.unet if the folder has that graph."""
    wanted = str(manifest.defaults.get("unet", "float32"))
    return wanted if wanted in unet_precisions(manifest) else "float32"


@dataclass
class PromptCheck:
    """What the tokenizer makes of a prompt, before anything runs."""

    text: str
    words: list[str]  # the prompt split as the tokenizer splits it, lowercased
    unknown: list[str]  # words outside the vocabulary, in order, each once; they run as [UNK]
    n_tokens: int  # tokens before padding
    max_length: int  # what the text encoder reads
    too_long: bool  # n_tokens > max_length: generation refuses such a prompt

    @property
    def ok(self) -> bool:
        return not self.unknown and not self.too_long


@dataclass
class ImageRequest:
    """One generation. None means the model's default (its manifest's "defaults")."""

    prompt: str
    negative: str = ""  # the unconditional text of guidance; "" is the empty (all-padding) caption
    steps: int | None = None  # denoising steps (model default, else 25)
    guidance: float | None = None  # classifier-free guidance scale; 1 turns guidance off, 0 ignores the prompt
    scheduler: str | None = None  # a SCHEDULERS name: ddpm, ddim, euler_a, dpmpp_2m
    seed: int = 0  # image k of the batch uses seed + k
    batch: int = 1  # images, 1..16
    preview: str = "x0"  # per step: "x0" (the denoised estimate), "noisy" (also the current sample), "none"
    unet: str | None = None  # "float32" or "int8" (a folder with an int8 UNet); None: the model's default


@dataclass
class DiffusionStep:
    """One denoising step's preview (Progress.preview). Arrays are fresh copies the job never touches again."""

    index: int  # 0-based step just done
    total: int  # steps in all
    timestep: float  # the training timestep of this step
    x0: np.ndarray | None  # (B, C, H, W) float32 in [0, 1]: the predicted clean image; None with preview "none"
    noisy: np.ndarray | None  # (B, C, H, W) float32 in [0, 1]: the sample after this step (preview "noisy" only)
    elapsed: float  # seconds since the job started
    preview: str = "x0"  # which one the request asked to show
    frame: np.ndarray | None = None  # x0 as uint8 (B, C, H, W): the filmstrip's frame of this step

    @property
    def image(self) -> np.ndarray | None:
        """The array to display: noisy when asked for, else x0."""
        return self.noisy if self.preview == "noisy" else self.x0


@dataclass
class DiffusionResult:
    images: np.ndarray  # (B, C, H, W) float32 in [0, 1]
    settings: dict[str, Any]  # what reproduces it: prompt, negative, seed, steps, scheduler, guidance, model, version
    steps: list[np.ndarray] = field(default_factory=list)  # per step x0 as uint8 (B, C, H, W), for a filmstrip
    unknown: list[str] = field(default_factory=list)  # prompt words outside the vocabulary
    seconds: float = 0.0

    @property
    def seeds(self) -> list[int]:
        return [int(self.settings["seed"]) + k for k in range(len(self.images))]


class BatchNoise:
    """Noise for a batch from one generator per image (seed + k), so an image never depends on its batch.
    Has the numpy Generator method the schedulers call."""

    def __init__(self, seeds: Sequence[int], stream: int) -> None:
        self.gens = [np.random.default_rng([int(s), stream]) for s in seeds]

    def standard_normal(self, size: Any) -> np.ndarray:
        shape = tuple(size)
        if shape[0] != len(self.gens):
            raise ValueError(f"noise for {shape[0]} images from {len(self.gens)} generators")
        return np.stack([g.standard_normal(shape[1:]) for g in self.gens]).astype(np.float32)


def initial_noise(seeds: Sequence[int], shape: tuple[int, int, int]) -> np.ndarray:
    """(B, C, H, W) standard normal noise, image k from numpy default_rng(seeds[k])."""
    return np.stack([np.random.default_rng(int(s)).standard_normal(shape) for s in seeds]).astype(np.float32)


def to_unit(x: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    """Model values in value_range to float32 [0, 1], clipped."""
    lo, hi = value_range
    return np.clip((np.asarray(x, np.float32) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def to_u8(x01: np.ndarray) -> np.ndarray:
    return (np.asarray(x01, np.float32) * 255.0 + 0.5).astype(np.uint8)


def preview_frame(pred_x0: np.ndarray, value_range: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A step's preview: the predicted clean image in [0, 1] and as uint8, the work each previewed step adds."""
    x0 = to_unit(pred_x0, value_range)
    return x0, to_u8(x0)


@dataclass
class DiffusionModel(ModelFolder):
    """A diffusion model folder (text_encoder/, unet/, tokenizer/, scheduler/) opened through a session pool."""

    FAMILY: ClassVar[str] = "diffusion"
    FAMILY_TITLE: ClassVar[str] = "a diffusion model"

    # -- the folder ------------------------------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        return int(self.extra["max_length"])

    @property
    def text_dim(self) -> int:
        return int(self.extra["text_dim"])

    @property
    def value_range(self) -> tuple[float, float]:
        lo, hi = self.extra.get("value_range", (-1.0, 1.0))
        return float(lo), float(hi)

    @property
    def example_prompts(self) -> list[str]:
        return [str(p) for p in self.extra.get("example_prompts", [])]

    @property
    def classes(self) -> list[str]:
        """One caption per class (Fashion-MNIST models), in the evaluator's class order; [] otherwise."""
        return [str(c) for c in self.extra.get("classes", [])]

    @property
    def defaults(self) -> dict[str, Any]:
        return self.entry.manifest.defaults

    @property
    def tokenizer(self):
        if "tokenizer" not in self._cache:
            from tokenizers import Tokenizer

            try:
                tok = Tokenizer.from_file(str(self.entry.path("tokenizer")))
            except Exception as e:  # noqa: BLE001 - tokenizers raises a bare Exception for a broken or missing file
                raise ValueError(f"{self.name}: the tokenizer cannot be read ({e})") from None
            tok.no_padding()  # the engine pads itself, and refuses rather than truncates
            tok.no_truncation()
            if tok.token_to_id("[PAD]") != PAD_ID or tok.token_to_id("[UNK]") != UNK_ID:
                raise ValueError(f"{self.name}: the tokenizer must map [PAD] to {PAD_ID} and [UNK] to {UNK_ID}")
            self._cache["tokenizer"] = tok
        return self._cache["tokenizer"]

    @property
    def scheduler_config(self) -> SchedulerConfig:
        if "scheduler_config" not in self._cache:
            data = json.loads(self.entry.path("scheduler").read_text(encoding="utf-8"))
            self._cache["scheduler_config"] = SchedulerConfig.from_dict(data)
        return self._cache["scheduler_config"]

    @property
    def vocabulary(self) -> list[str]:
        """Every word the tokenizer knows, sorted, without [PAD] and [UNK] (for prompt completion)."""
        if "vocabulary" not in self._cache:
            vocab = self.tokenizer.get_vocab(with_added_tokens=True)
            self._cache["vocabulary"] = sorted(w for w in vocab if w not in SPECIAL_TOKENS)
        return self._cache["vocabulary"]

    def make_scheduler(self, name: str | None = None) -> Scheduler:
        """A fresh scheduler on this model's noise schedule (the model's default when name is None)."""
        return make_scheduler(name or self.default_scheduler, self.scheduler_config)

    @property
    def unet_precisions(self) -> list[str]:
        """The UNet graphs this folder has: "float32", and "int8" when it ships a quantized one."""
        return unet_precisions(self.entry.manifest)

    @property
    def default_unet(self) -> str:
        return default_unet(self.entry.manifest)

    @property
    def default_scheduler(self) -> str:
        return str(self.defaults.get("scheduler", "dpmpp_2m"))

    # -- text -------------------------------------------------------------------------------------------------
    def check_prompt(self, text: str) -> PromptCheck:
        """Split a prompt as the model will read it and report unknown words and overlong prompts."""
        enc = self.tokenizer.encode(text)
        words = [text[a:b].lower() for a, b in enc.offsets]  # as typed (the tokens say [UNK] for unknown ones)
        unknown: list[str] = []
        for token_id, word in zip(enc.ids, words, strict=True):
            if token_id == UNK_ID and word not in unknown:
                unknown.append(word)
        n = len(enc.ids)
        return PromptCheck(text, words, unknown, n, self.max_length, n > self.max_length)

    def token_ids(self, text: str, what: str = "prompt") -> np.ndarray:
        """(max_length,) int64 ids padded with [PAD]; a ValueError when the text has too many tokens."""
        ids = self.tokenizer.encode(text).ids
        if len(ids) > self.max_length:
            raise ValueError(f"the {what} has {len(ids)} tokens; {self.name} reads at most {self.max_length} "
                             f"(shorten it by {len(ids) - self.max_length} words)")
        out = np.full(self.max_length, PAD_ID, np.int64)
        out[:len(ids)] = ids
        return out

    def encode_text(self, texts: Sequence[str], what: str = "prompt") -> np.ndarray:
        """(N, max_length, text_dim) encoder states; each distinct prompt runs once and is kept (LRU)."""
        cache: OrderedDict[bytes, np.ndarray] = self._cache.setdefault("encoded", OrderedDict())
        lock: threading.Lock = self._cache.setdefault("encoded_lock", threading.Lock())
        ids = [self.token_ids(t, what) for t in texts]
        with lock:  # the studio may sample on a worker while another job encodes
            missing = [i for i in ids if i.tobytes() not in cache]
            unique = list({m.tobytes(): m for m in missing}.values())
            if unique:
                hidden = self._session("text_encoder").run(["hidden"], {"input_ids": np.stack(unique)})[0]
                for row, h in zip(unique, hidden, strict=True):
                    cache[row.tobytes()] = np.asarray(h, np.float32)
            out = []
            for i in ids:
                key = i.tobytes()
                cache.move_to_end(key)
                out.append(cache[key])
            while len(cache) > max(_ENCODER_CACHE, len(ids)):
                cache.popitem(last=False)
        return np.stack(out) if out else np.zeros((0, self.max_length, self.text_dim), np.float32)

    # -- requests ---------------------------------------------------------------------------------------------
    def resolve(self, request: ImageRequest) -> ImageRequest:
        """The request with the model's defaults filled in, checked; a ValueError says what is wrong."""
        r = replace(request,
                    steps=int(request.steps if request.steps is not None else self.defaults.get("steps", 25)),
                    guidance=float(request.guidance if request.guidance is not None
                                   else self.defaults.get("guidance", 3.0)),
                    scheduler=request.scheduler or self.default_scheduler,
                    unet=request.unet or self.default_unet)
        if r.unet not in self.unet_precisions:
            raise ValueError(f"{self.name} has no {r.unet} UNet; it has {', '.join(self.unet_precisions)}")
        if r.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {r.scheduler!r}; choose one of {', '.join(SCHEDULERS)}")
        total = self.scheduler_config.num_train_timesteps
        if not 1 <= r.steps <= total:
            raise ValueError(f"steps must be between 1 and {total}, got {r.steps}")
        if not (math.isfinite(r.guidance) and 0.0 <= r.guidance <= 50.0):
            raise ValueError(f"guidance must be between 0 and 50, got {r.guidance}")
        if not 1 <= int(r.batch) <= MAX_BATCH:
            raise ValueError(f"batch must be between 1 and {MAX_BATCH}, got {r.batch}")
        if not (0 <= int(r.seed) and int(r.seed) + int(r.batch) <= 2 ** 63):
            raise ValueError(f"seed must be between 0 and 2^63 - batch, got {r.seed}")
        if r.preview not in PREVIEWS:
            raise ValueError(f"preview must be one of {', '.join(PREVIEWS)}, not {r.preview!r}")
        return r

    def settings(self, r: ImageRequest) -> dict[str, Any]:
        """What a saved image records (the PNG text chunk): enough to make it again."""
        return {"family": "diffusion", "model": self.name, "version": self.entry.manifest.version,
                "prompt": r.prompt, "negative": r.negative, "seed": int(r.seed), "steps": r.steps,
                "scheduler": r.scheduler, "guidance": r.guidance, "batch": int(r.batch), "unet": r.unet}

    def sample(self, request: ImageRequest) -> Generator[Progress, None, DiffusionResult]:
        """Generate request.batch images; one Progress per denoising step (preview: a DiffusionStep).

        The request is checked here, before the job starts: a bad setting or a prompt with more tokens than
        the text encoder reads raises ValueError at the call, not at the first step."""
        r = self.resolve(request)
        self.token_ids(r.prompt, "prompt")
        self.token_ids(r.negative, "negative prompt")
        return self._sample(r)

    def _sample(self, r: ImageRequest) -> Generator[Progress, None, DiffusionResult]:
        unknown = self.check_prompt(r.prompt).unknown
        unknown += [w for w in self.check_prompt(r.negative).unknown if w not in unknown]
        start = time.perf_counter()
        cond = self.encode_text([r.prompt], "prompt")  # (1, L, D)
        uncond = self.encode_text([r.negative], "negative prompt")  # (1, L, D)
        b = int(r.batch)
        seeds = [int(r.seed) + k for k in range(b)]
        film: list[np.ndarray] = []
        images = yield from self._denoise(np.repeat(cond, b, 0), np.repeat(uncond, b, 0), seeds, r, start, film)
        return DiffusionResult(images, self.settings(r), film, unknown, time.perf_counter() - start)

    def sample_prompts(self, prompts: Sequence[str], seeds: Sequence[int], *, negative: str = "",
                       steps: int | None = None, guidance: float | None = None, scheduler: str | None = None,
                       unet: str | None = None) -> Generator[Progress, None, np.ndarray]:
        """One image per (prompt, seed) pair, up to 16 per UNet batch, no previews: what measurement uses.
        Image k equals sample(ImageRequest(prompts[k], seed=seeds[k], ...)).images[0]."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if any(int(s) < 0 for s in seeds):
            raise ValueError("seeds must be at least 0")
        r = self.resolve(ImageRequest("", negative, steps, guidance, scheduler, 0, 1, "none", unet))
        for text in {*prompts}:
            self.token_ids(text)
        self.token_ids(negative, "negative prompt")
        return self._sample_prompts(list(prompts), [int(s) for s in seeds], negative, r)

    def _sample_prompts(self, prompts: list[str], seeds: list[int], negative: str, r: ImageRequest
                        ) -> Generator[Progress, None, np.ndarray]:
        n, chunks = len(prompts), math.ceil(len(prompts) / MAX_BATCH)
        uncond = self.encode_text([negative], "negative prompt")
        out: list[np.ndarray] = []
        start = time.perf_counter()
        for c in range(chunks):
            sl = slice(c * MAX_BATCH, min((c + 1) * MAX_BATCH, n))
            cond = self.encode_text(list(prompts[sl]))
            job = self._denoise(cond, np.repeat(uncond, len(cond), 0), seeds[sl], r, start, None)
            while True:
                try:
                    step = next(job)
                except StopIteration as stop:
                    out.append(stop.value)
                    break
                done = c * r.steps + step.step
                yield Progress(done, chunks * r.steps, f"{sl.stop}/{n} images, step {step.step}/{r.steps}")
        c, h, w = self.image_shape
        return np.concatenate(out) if out else np.zeros((0, c, h, w), np.float32)

    # -- the loop ---------------------------------------------------------------------------------------------
    def _unet(self, x: np.ndarray, t: float, cond: np.ndarray, uncond: np.ndarray, guidance: float,
              role: str = "unet") -> np.ndarray:
        """The guided epsilon for samples x (B, C, H, W) at training timestep t, from the graph of `role`."""
        sess = self._session(role)
        b = len(x)
        if guidance == 1.0 or guidance == 0.0:  # one half is enough
            text = cond if guidance == 1.0 else uncond
            return sess.run(["noise_pred"], {"sample": x, "timestep": np.full(b, t, np.float32),
                                             "encoder_hidden_states": text})[0]
        feeds = {"sample": np.concatenate([x, x]),  # (2B, C, H, W): uncond half, then cond half
                 "timestep": np.full(2 * b, t, np.float32),
                 "encoder_hidden_states": np.concatenate([uncond, cond])}  # (2B, L, D)
        eps = sess.run(["noise_pred"], feeds)[0]
        eps_u, eps_c = eps[:b], eps[b:]
        return (eps_u + np.float32(guidance) * (eps_c - eps_u)).astype(np.float32)

    def _denoise(self, cond: np.ndarray, uncond: np.ndarray, seeds: list[int], r: ImageRequest, start: float,
                 film: list[np.ndarray] | None) -> Generator[Progress, None, np.ndarray]:
        sched = self.make_scheduler(r.scheduler)
        sched.set_timesteps(r.steps)
        noise = BatchNoise(seeds, stream=1)  # the scheduler's own draws, apart from the starting noise
        x = initial_noise(seeds, self.image_shape) * np.float32(sched.init_noise_sigma)
        timesteps = list(sched.timesteps)
        total = len(timesteps)
        vr = self.value_range
        for i, t in enumerate(timesteps):
            precision = "float32" if r.unet == "int8" and t < INT8_FLOAT_BELOW_T else r.unet
            eps = self._unet(sched.scale_model_input(x, t), float(t), cond, uncond, float(r.guidance),
                             UNET_ROLES[precision])
            out = sched.step(eps, t, x, noise)
            x = out.prev_sample
            x0 = noisy = frame = None
            if r.preview != "none":
                x0, frame = preview_frame(out.pred_original_sample, vr)
                if film is not None:
                    film.append(frame)
                if r.preview == "noisy":
                    # the sample as the model would see it next: the variance-preserving x_t
                    view = sched.scale_model_input(x, timesteps[i + 1]) if i + 1 < total else x
                    noisy = to_unit(view, vr)
            elapsed = time.perf_counter() - start
            yield Progress(i + 1, total, f"step {i + 1}/{total}, {(i + 1) / max(elapsed, 1e-9):.1f} steps/s",
                           preview=DiffusionStep(i, total, float(t), x0, noisy, elapsed, r.preview, frame))
        return to_unit(x, vr)


def is_diffusion(entry: ModelEntry) -> bool:
    return entry.ready and entry.family == "diffusion"
