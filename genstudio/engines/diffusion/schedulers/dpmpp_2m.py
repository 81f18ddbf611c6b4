"""DPM-Solver++(2M): the second-order multistep solver in data (x0) prediction (Lu et al. 2022,
https://arxiv.org/abs/2211.01095, algorithm 2; diffusers' DPMSolverMultistepScheduler with
algorithm_type="dpmsolver++", solver_order=2, solver_type="midpoint", final_sigmas_type="zero").

In the VP view alpha_t = 1 / sqrt(sigma^2 + 1), sigma_t = sigma * alpha_t and lambda = log(alpha_t / sigma_t)
= -log(sigma). The first step has no history and the last step (to sigma = 0) is first order, which lands
on the predicted x0; every step between uses the x0 estimates of this step and the one before.
Deterministic: it draws no noise.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from .base import NoiseSource, Scheduler, StepOutput, spaced_timesteps


class DPMSolverPlusPlus2MScheduler(Scheduler):
    NAME: ClassVar[str] = "dpmpp_2m"
    TITLE: ClassVar[str] = "DPM++ 2M"
    DEFAULT_SPACING: ClassVar[str] = "linspace"

    sigmas: np.ndarray  # (n + 1,) VE sigmas of the timesteps, then 0

    def set_timesteps(self, n: int) -> None:
        n = self._check_steps(n)
        T = self.num_train_timesteps
        if self.spacing == "linspace":  # diffusers: n + 1 points from 0 to T - 1, the 0 dropped
            t = np.linspace(0, T - 1, n + 1).round()[::-1][:-1].astype(np.int64)
            if len(np.unique(t)) < n:  # rounding collides near n = T: space them as "trailing" does
                t = spaced_timesteps(T, n, "trailing")
        else:
            super().set_timesteps(n)
            t = self.timesteps
        self.timesteps = t
        self.sigmas = np.concatenate([self.train_sigmas()[t], [0.0]])
        self.num_inference_steps = n
        self._index = 0
        self._previous_x0: np.ndarray | None = None  # the last step's x0 estimate (the multistep history)

    @staticmethod
    def _vp(sigma: float) -> tuple[float, float]:
        """(alpha_t, sigma_t) of a VE sigma."""
        alpha = 1.0 / math.sqrt(sigma ** 2 + 1.0)
        return alpha, sigma * alpha

    def step(self, model_output: np.ndarray, timestep: float, sample: np.ndarray,
             rng: NoiseSource | None = None) -> StepOutput:
        i = self.index_for(timestep)
        if i == 0:
            self._previous_x0 = None
        sigma_s, sigma_t = float(self.sigmas[i]), float(self.sigmas[i + 1])
        alpha_s, sig_s = self._vp(sigma_s)
        x = np.asarray(sample, np.float32)
        # data prediction, clipped to the data range when the config asks: DPM-Solver++'s thresholding for
        # pixel-space models (section 5), without which a small model's x0 at high noise (divided by alpha_s,
        # about 0.006 at t = 999 of a linear schedule) throws the early steps off
        x0 = self._clip((x - sig_s * np.asarray(model_output, np.float32)) / alpha_s)
        if sigma_t == 0.0:  # the final step, first order: exp(-h) = 0 and sigma_t = 0 leave x0
            prev = x0
        else:
            alpha_t, sig_t = self._vp(sigma_t)
            h = math.log(sigma_s) - math.log(sigma_t)  # lambda_t - lambda_s
            phi = math.expm1(-h)  # exp(-h) - 1
            prev = (sig_t / sig_s) * x - (alpha_t * phi) * x0
            if self._previous_x0 is not None and i > 0:  # second order: midpoint with the previous estimate
                sigma_prev = float(self.sigmas[i - 1])
                h_0 = math.log(sigma_prev) - math.log(sigma_s)
                d1 = (x0 - self._previous_x0) * (h / h_0)  # (m0 - m1) / r0
                prev = prev - (0.5 * alpha_t * phi) * d1
        self._previous_x0 = x0
        self._index = i + 1
        return StepOutput(np.asarray(prev, np.float32), x0.astype(np.float32))
