"""DDPM: ancestral sampling with the full posterior variance (Ho et al. 2020, https://arxiv.org/abs/2006.11239).

Each step samples q(x_prev | x_t, x0_hat), the Gaussian posterior of the forward process given the predicted
x0, with variance beta-tilde = (1 - alpha-bar_prev) / (1 - alpha-bar_t) * (1 - alpha-bar_t / alpha-bar_prev)
(diffusers' "fixed_small"). With fewer steps than training timesteps, the jump t -> prev uses the composite
beta 1 - alpha-bar_t / alpha-bar_prev, as diffusers does. The last step lands on alpha-bar = 1: no noise.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from .base import NoiseSource, Scheduler, StepOutput


class DDPMScheduler(Scheduler):
    NAME: ClassVar[str] = "ddpm"
    TITLE: ClassVar[str] = "DDPM"
    STOCHASTIC: ClassVar[bool] = True
    DEFAULT_SPACING: ClassVar[str] = "trailing"  # the first step sees pure noise, as in training at t = T - 1

    def _alpha_prev(self, i: int) -> float:
        return float(self.alphas_cumprod[self.timesteps[i + 1]]) if i + 1 < len(self.timesteps) else 1.0

    def variance(self, i: int) -> float:
        """The posterior variance beta-tilde of step i (0 on the last step)."""
        a_t = float(self.alphas_cumprod[self.timesteps[i]])
        a_prev = self._alpha_prev(i)
        beta = 1.0 - a_t / a_prev
        return max((1.0 - a_prev) / (1.0 - a_t) * beta, 0.0)

    def step(self, model_output: np.ndarray, timestep: float, sample: np.ndarray,
             rng: NoiseSource | None = None) -> StepOutput:
        i = self.index_for(timestep)
        a_t = float(self.alphas_cumprod[self.timesteps[i]])
        a_prev = self._alpha_prev(i)
        alpha = a_t / a_prev  # the composite alpha of this jump
        beta = 1.0 - alpha
        eps = np.asarray(model_output, np.float32)
        x = np.asarray(sample, np.float32)
        x0 = self._clip((x - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t))
        # posterior mean (Ho et al. equation 7)
        mean = (math.sqrt(a_prev) * beta / (1.0 - a_t)) * x0 + (math.sqrt(alpha) * (1.0 - a_prev) / (1.0 - a_t)) * x
        var = self.variance(i)
        prev = mean + math.sqrt(var) * self._noise(rng, x.shape) if var > 0 else mean
        self._index = i + 1
        return StepOutput(prev.astype(np.float32), x0.astype(np.float32))
