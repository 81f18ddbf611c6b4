"""What every image-model engine shares: a registry entry opened through a session pool, and its manifest's extras."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from genstudio.runtime.registry import ModelEntry
from genstudio.runtime.sessions import SessionPool


@dataclass
class ModelFolder:
    """A ready model folder of one family; subclasses set FAMILY and FAMILY_TITLE."""

    FAMILY: ClassVar[str] = ""
    FAMILY_TITLE: ClassVar[str] = ""  # "a VAE", "a GAN": for the wrong-family message

    entry: ModelEntry
    pool: SessionPool
    batch: int = 64  # images per session.run
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.entry.require_ready()
        if self.entry.family != self.FAMILY:
            raise ValueError(f"{self.entry.name} is a {self.entry.family} model, not {self.FAMILY_TITLE}")

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def extra(self) -> dict[str, Any]:
        return self.entry.manifest.extra

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.extra["image_shape"]
        return int(c), int(h), int(w)

    @property
    def dataset(self) -> str:
        return str(self.extra.get("dataset", ""))

    def _session(self, role: str):
        return self.pool.get(self.entry.path(role), root=self.entry.folder)
