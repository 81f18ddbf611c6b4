"""The samplers, by name: DDPM, DDIM, Euler ancestral and DPM-Solver++(2M); numpy only, one API (see base).

    sched = make_scheduler("dpmpp_2m", SchedulerConfig.from_dict(config))
"""

from __future__ import annotations

from .base import Scheduler, SchedulerConfig, StepOutput, make_betas, spaced_timesteps
from .ddim import DDIMScheduler
from .ddpm import DDPMScheduler
from .dpmpp_2m import DPMSolverPlusPlus2MScheduler
from .euler_ancestral import EulerAncestralScheduler

SCHEDULERS: dict[str, type[Scheduler]] = {
    cls.NAME: cls for cls in (DDPMScheduler, DDIMScheduler, EulerAncestralScheduler, DPMSolverPlusPlus2MScheduler)
}


def make_scheduler(name: str, config: SchedulerConfig | None = None) -> Scheduler:
    """A fresh scheduler by registry name; a ValueError lists the names when it is unknown."""
    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}") from None
    return cls(config)


__all__ = ["SCHEDULERS", "DDIMScheduler", "DDPMScheduler", "DPMSolverPlusPlus2MScheduler", "EulerAncestralScheduler",
           "Scheduler", "SchedulerConfig", "StepOutput", "make_betas", "make_scheduler", "spaced_timesteps"]
