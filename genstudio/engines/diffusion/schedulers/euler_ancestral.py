"""Euler ancestral: Euler steps in sigma space with fresh noise each step (Karras et al. 2022,
https://arxiv.org/abs/2206.00364; k-diffusion's sample_euler_ancestral, as diffusers implements it).

The sample lives in the variance-exploding view x = x0 + sigma * eps, sigma = sqrt((1 - alpha-bar) / alpha-bar),
so the initial noise has standard deviation sqrt(sigma_max^2 + 1) and the model sees x / sqrt(sigma^2 + 1)
(`scale_model_input`). Each step goes down to sigma_down deterministically and adds sigma_up of new noise,
with sigma_down^2 + sigma_up^2 = sigma_next^2. Timesteps are fractional (diffusers' "linspace" spacing),
their sigmas interpolated linearly in the training table; the last step ends at sigma = 0.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from .base import NoiseSource, Scheduler, StepOutput, spaced_timesteps


class EulerAncestralScheduler(Scheduler):
    NAME: ClassVar[str] = "euler_a"
    TITLE: ClassVar[str] = "Euler ancestral"
    STOCHASTIC: ClassVar[bool] = True
    DEFAULT_SPACING: ClassVar[str] = "linspace"

    sigmas: np.ndarray  # (n + 1,) one per timestep, then 0

    def set_timesteps(self, n: int) -> None:
        n = self._check_steps(n)
        T = self.num_train_timesteps
        if self.spacing == "linspace":  # fractional, as diffusers; one step starts at T - 1, not at 0
            t = np.linspace(T - 1, 0, n, dtype=np.float64) if n > 1 else np.array([T - 1], np.float64)
        else:
            t = spaced_timesteps(T, n, self.spacing, int(self.config.steps_offset)).astype(np.float64)
        self.timesteps = t
        self.sigmas = np.concatenate([np.interp(t, np.arange(T), self.train_sigmas()), [0.0]])
        top = float(self.sigmas.max())
        self.init_noise_sigma = math.sqrt(top ** 2 + 1.0) if self.spacing in ("linspace", "trailing") else top
        self.num_inference_steps = n
        self._index = 0

    def sigma_at(self, timestep: float) -> float:
        return float(self.sigmas[self.index_for(timestep)])

    def scale_model_input(self, sample: np.ndarray, timestep: float) -> np.ndarray:
        sigma = self.sigma_at(timestep)
        return (np.asarray(sample, np.float32) / math.sqrt(sigma ** 2 + 1.0)).astype(np.float32)

    def step(self, model_output: np.ndarray, timestep: float, sample: np.ndarray,
             rng: NoiseSource | None = None) -> StepOutput:
        i = self.index_for(timestep)
        sigma, sigma_next = float(self.sigmas[i]), float(self.sigmas[i + 1])
        eps = np.asarray(model_output, np.float32)
        x = np.asarray(sample, np.float32)
        x0 = self._clip(x - sigma * eps)  # epsilon prediction in the VE view, clipped as DPM++ 2M does
        sigma_up = math.sqrt(max(sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2, 0.0))
        sigma_down = math.sqrt(max(sigma_next ** 2 - sigma_up ** 2, 0.0))
        derivative = (x - x0) / sigma  # dx/dsigma = eps
        prev = x + derivative * (sigma_down - sigma)
        if sigma_up > 0:
            prev = prev + sigma_up * self._noise(rng, x.shape)
        self._index = i + 1
        return StepOutput(prev.astype(np.float32), x0.astype(np.float32))
