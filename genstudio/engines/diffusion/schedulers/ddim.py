"""DDIM: the deterministic (eta = 0) implicit sampler (Song et al. 2020, https://arxiv.org/abs/2010.02502).

x_prev = sqrt(alpha-bar_prev) x0_hat + sqrt(1 - alpha-bar_prev - s^2) eps + s z with s = eta * sigma_t
(equation 12); eta = 0 makes the whole run a deterministic function of the initial noise, and an exact
epsilon for a known x0 lands on that x0 in one step. The last step lands on alpha-bar = 1 (set_alpha_to_one).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from .base import NoiseSource, Scheduler, SchedulerConfig, StepOutput


class DDIMScheduler(Scheduler):
    NAME: ClassVar[str] = "ddim"
    TITLE: ClassVar[str] = "DDIM"
    DEFAULT_SPACING: ClassVar[str] = "trailing"  # https://arxiv.org/abs/2305.08891: start at T - 1

    def __init__(self, config: SchedulerConfig | None = None, *, eta: float = 0.0) -> None:
        super().__init__(config)
        self.eta = float(eta)  # 0: deterministic DDIM; 1: DDPM-like noise
        self.STOCHASTIC = self.eta > 0  # type: ignore[misc]

    def _alpha_prev(self, i: int) -> float:
        return float(self.alphas_cumprod[self.timesteps[i + 1]]) if i + 1 < len(self.timesteps) else 1.0

    def step(self, model_output: np.ndarray, timestep: float, sample: np.ndarray,
             rng: NoiseSource | None = None) -> StepOutput:
        i = self.index_for(timestep)
        a_t = float(self.alphas_cumprod[self.timesteps[i]])
        a_prev = self._alpha_prev(i)
        eps = np.asarray(model_output, np.float32)
        x = np.asarray(sample, np.float32)
        x0 = self._clip((x - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t))
        var = (1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev)  # sigma_t^2 at eta = 1 (equation 16)
        std = self.eta * math.sqrt(max(var, 0.0))
        prev = math.sqrt(a_prev) * x0 + math.sqrt(max(1.0 - a_prev - std ** 2, 0.0)) * eps
        if std > 0:
            prev = prev + std * self._noise(rng, x.shape)
        self._index = i + 1
        return StepOutput(prev.astype(np.float32), x0.astype(np.float32))
