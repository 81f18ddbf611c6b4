"""Text-to-image diffusion: schedulers (numpy), the ONNX pipeline with classifier-free guidance, and measurement.

    from genstudio.engines.diffusion import DiffusionModel, ImageRequest
    model = DiffusionModel(registry.get("diffusion-synthfaces"), pool)
    result = drive(model.sample(ImageRequest("a smiling man wearing a cap", seed=1, batch=4)))
"""

from __future__ import annotations

from genstudio.engines.diffusion.pipeline import (
    DiffusionModel,
    DiffusionResult,
    DiffusionStep,
    ImageRequest,
    PromptCheck,
    is_diffusion,
)
from genstudio.engines.diffusion.schedulers import SCHEDULERS, SchedulerConfig, make_scheduler

__all__ = ["SCHEDULERS", "DiffusionModel", "DiffusionResult", "DiffusionStep", "ImageRequest", "PromptCheck",
           "SchedulerConfig", "is_diffusion", "make_scheduler"]
