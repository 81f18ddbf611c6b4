"""What every scheduler shares: the training noise schedule (diffusers' config keys), timestep spacing, StepOutput.

    config = SchedulerConfig.from_dict(json.load(open("scheduler/scheduler_config.json")))
    sched = SCHEDULERS["ddim"](config)
    sched.set_timesteps(25)
    x = rng.standard_normal(shape) * sched.init_noise_sigma
    for t in sched.timesteps:
        eps = unet(sched.scale_model_input(x, t), t, text)
        x = sched.step(eps, t, x, rng).prev_sample

Every scheduler is one file with this API (diffusers' shape, numpy only). `alphas_cumprod[t]` is the
signal share alpha-bar of training timestep t; `sigma(t) = sqrt((1 - alpha-bar) / alpha-bar)` is the same
noise level in the variance-exploding view that Euler and DPM-Solver step in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol

import numpy as np

BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
SPACINGS = ("linspace", "leading", "trailing")


class NoiseSource(Protocol):
    """What a scheduler draws its noise from: a numpy Generator, or anything with the same method."""

    def standard_normal(self, size: Any) -> np.ndarray: ...


@dataclass(frozen=True)
class SchedulerConfig:
    """scheduler_config.json, with diffusers' names and meanings."""

    num_train_timesteps: int = 1000  # T: training timesteps 0..T-1
    beta_schedule: str = "linear"  # linear, scaled_linear (Stable Diffusion) or squaredcos_cap_v2 (Nichol & Dhariwal)
    beta_start: float = 0.0001  # beta at t = 0
    beta_end: float = 0.02  # beta at t = T - 1
    prediction_type: str = "epsilon"  # what the model predicts; only "epsilon" is supported
    clip_sample: bool = True  # clip the predicted x0 (every scheduler here; diffusers clips in DDPM and DDIM only)
    clip_sample_range: float = 1.0  # to [-range, range]
    timestep_spacing: str = ""  # "" lets each scheduler use its own default; else linspace, leading, trailing
    steps_offset: int = 0  # added to "leading" timesteps (Stable Diffusion uses 1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchedulerConfig:
        """Read a diffusers-style config; unknown keys (diffusers writes many) are ignored."""
        if not isinstance(data, dict):
            raise ValueError("a scheduler config must be a JSON object")
        known = {f.name for f in fields(cls)}
        cfg = cls(**{k: v for k, v in data.items() if k in known})
        try:
            cfg.validate()
        except TypeError as e:  # a value of the wrong type ("beta_start": "0.1"): still a bad config
            raise ValueError(f"a scheduler config value has the wrong type ({e})") from None
        return cfg

    def validate(self) -> None:
        if int(self.num_train_timesteps) < 2:
            raise ValueError(f"num_train_timesteps must be at least 2, got {self.num_train_timesteps}")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"beta_schedule {self.beta_schedule!r} is not one of {', '.join(BETA_SCHEDULES)}")
        if self.prediction_type != "epsilon":
            raise ValueError(f"prediction_type {self.prediction_type!r} is not supported (only 'epsilon')")
        if self.timestep_spacing and self.timestep_spacing not in SPACINGS:
            raise ValueError(f"timestep_spacing {self.timestep_spacing!r} is not one of {', '.join(SPACINGS)}")
        if self.beta_schedule != "squaredcos_cap_v2" and not 0.0 < self.beta_start <= self.beta_end < 1.0:
            raise ValueError(f"need 0 < beta_start <= beta_end < 1, got {self.beta_start} and {self.beta_end}")


def make_betas(config: SchedulerConfig) -> np.ndarray:
    """beta_t for t = 0..T-1 (float64), as diffusers builds them."""
    n = int(config.num_train_timesteps)
    if config.beta_schedule == "linear":
        return np.linspace(config.beta_start, config.beta_end, n, dtype=np.float64)
    if config.beta_schedule == "scaled_linear":
        return np.linspace(config.beta_start ** 0.5, config.beta_end ** 0.5, n, dtype=np.float64) ** 2
    if config.beta_schedule == "squaredcos_cap_v2":  # https://arxiv.org/abs/2102.09672, equation 17

        def alpha_bar(t: float) -> float:
            return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

        return np.array([min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), 0.999) for i in range(n)], np.float64)
    raise ValueError(f"unknown beta_schedule {config.beta_schedule!r}")


def spaced_timesteps(num_train: int, n: int, spacing: str, steps_offset: int = 0) -> np.ndarray:
    """n training timesteps, descending, in [0, num_train - 1] (int64), with diffusers' spacings:
    "leading" ends at 0, "trailing" starts at T - 1 (https://arxiv.org/abs/2305.08891, table 2),
    "linspace" spans both ends."""
    if spacing == "linspace":
        t = np.linspace(0, num_train - 1, n).round()[::-1]
    elif spacing == "leading":
        ratio = num_train // n
        t = (np.arange(0, n) * ratio).round()[::-1] + steps_offset
    elif spacing == "trailing":
        ratio = num_train / n
        # T - k ratio for k < n: arange(T, 0, -ratio) adds a point just above 0 for some n (61 of 1000)
        t = np.round(num_train - np.arange(n) * ratio) - 1
    else:
        raise ValueError(f"timestep spacing must be one of {', '.join(SPACINGS)}, not {spacing!r}")
    # an offset can push the top of a "leading" schedule past T - 1 (n = 1000 with Stable Diffusion's offset 1);
    # the k-th from the top stays at or below T - 1 - k, so the clipped steps never repeat (a repeated step
    # divided by a zero step size in DPM++ 2M). A no-op for every schedule already in range.
    t = np.minimum(t, num_train - 1 - np.arange(n))
    return np.clip(t, 0, num_train - 1).astype(np.int64)


@dataclass
class StepOutput:
    prev_sample: np.ndarray  # the sample at the next (smaller) timestep
    pred_original_sample: np.ndarray  # the denoised estimate x0 at this step: what a preview shows


class Scheduler:
    """The shared state and API; subclasses set NAME/TITLE and implement set_timesteps and step."""

    NAME: ClassVar[str] = ""  # the registry key: "ddim"
    TITLE: ClassVar[str] = ""  # for menus: "DDIM"
    STOCHASTIC: ClassVar[bool] = False  # True when step() draws noise from the rng
    DEFAULT_SPACING: ClassVar[str] = "leading"

    def __init__(self, config: SchedulerConfig | None = None) -> None:
        self.config = config or SchedulerConfig()
        self.config.validate()
        self.betas = make_betas(self.config)  # (T,)
        self.alphas_cumprod = np.cumprod(1.0 - self.betas)  # (T,) alpha-bar_t, decreasing
        self.timesteps = np.zeros(0, np.int64)  # set by set_timesteps, descending
        self.num_inference_steps = 0
        self.init_noise_sigma = 1.0  # the initial noise's standard deviation
        self._index = 0  # the step the next call to step() makes

    @property
    def num_train_timesteps(self) -> int:
        return int(self.config.num_train_timesteps)

    @property
    def spacing(self) -> str:
        return self.config.timestep_spacing or self.DEFAULT_SPACING

    def train_sigmas(self) -> np.ndarray:
        """sigma_t = sqrt((1 - alpha-bar_t) / alpha-bar_t) for every training timestep (T,)."""
        return np.sqrt((1.0 - self.alphas_cumprod) / self.alphas_cumprod)

    def _check_steps(self, n: int) -> int:
        n = int(n)
        if not 1 <= n <= self.num_train_timesteps:
            raise ValueError(f"steps must be between 1 and {self.num_train_timesteps}, got {n}")
        return n

    def set_timesteps(self, n: int) -> None:
        n = self._check_steps(n)
        self.timesteps = spaced_timesteps(self.num_train_timesteps, n, self.spacing, int(self.config.steps_offset))
        self.num_inference_steps = n
        self._index = 0

    def scale_model_input(self, sample: np.ndarray, timestep: float) -> np.ndarray:
        """What the model sees at this timestep; the identity except for schedulers that step in sigma space."""
        return sample

    def index_for(self, timestep: float) -> int:
        """The position of `timestep` in `timesteps`: the current step when it matches, else its first match."""
        if not len(self.timesteps):
            raise RuntimeError("call set_timesteps(n) before stepping")
        if self._index < len(self.timesteps) and self.timesteps[self._index] == timestep:
            return self._index
        hits = np.flatnonzero(self.timesteps == timestep)
        if not len(hits):
            raise ValueError(f"timestep {timestep} is not one of this schedule's {len(self.timesteps)} timesteps")
        return int(hits[0])

    def step(self, model_output: np.ndarray, timestep: float, sample: np.ndarray,
             rng: NoiseSource | None = None) -> StepOutput:
        raise NotImplementedError

    def add_noise(self, original: np.ndarray, noise: np.ndarray, timestep: int) -> np.ndarray:
        """x_t = sqrt(alpha-bar_t) x0 + sqrt(1 - alpha-bar_t) noise: the forward process (training, tests)."""
        a = float(self.alphas_cumprod[int(timestep)])
        return (math.sqrt(a) * np.asarray(original, np.float32) + math.sqrt(1 - a) * np.asarray(noise, np.float32)
                ).astype(np.float32)

    def _noise(self, rng: NoiseSource | None, shape: tuple[int, ...]) -> np.ndarray:
        if rng is None:
            raise ValueError(f"the {self.TITLE} scheduler draws noise: pass a numpy Generator as rng")
        return np.asarray(rng.standard_normal(shape), np.float32)

    def _clip(self, x0: np.ndarray) -> np.ndarray:
        if self.config.clip_sample:
            r = float(self.config.clip_sample_range)
            return np.clip(x0, -r, r)
        return x0
