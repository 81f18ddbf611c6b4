"""GAN training: alternating D and G steps, non-saturating loss, lazy R1, an EMA generator, callbacks, no prints.

    trainer = GanTrainer(GanTrainConfig(steps=8000), g, d, images)      # images: float (N, C, H, W) in [-1, 1]
    trainer.add_callback("on_batch_end", lambda t: bar(t.step, t.config.steps, t.curves["d_loss"][-1]))
    trainer.run()
    trainer.g_ema                                                        # the generator to export

The shape of genstudio.export.trainer.Trainer (config dataclass, `add_callback`, `stop()`, events
on_batch_end / on_train_end) with two optimisers. Recipe from StyleGAN2 (https://arxiv.org/abs/1912.04958):
logistic non-saturating loss, R1 penalty on reals every `r1_every` steps scaled by that interval (lazy
regularisation), Adam betas (0, 0.99), and an EMA of the generator's weights with a half-life in images.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from genstudio.export.gan.discriminator import Discriminator
from genstudio.export.gan.generator import Generator
from genstudio.export.trainer import Callbacks, autocast, check_precision

CURVES = ("d_loss", "g_loss", "r1", "d_real", "d_fake")  # what `curves` logs, one value per step (r1: when run)
AUGMENTS = ("color", "translation", "cutout")


def diff_augment(x: torch.Tensor, policy: str, gen: torch.Generator) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020, https://arxiv.org/abs/2006.10738): the same random, differentiable
    transforms on real and generated images before the discriminator, so it cannot win by memorising the
    training set and its gradients still reach the generator. x (N, C, H, W) in about [-1, 1]."""
    n = x.shape[0]

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=gen)

    for name in filter(None, policy.split(",")):
        if name == "color":  # brightness, saturation, contrast
            x = x + (rand(n, 1, 1, 1) - 0.5)
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (rand(n, 1, 1, 1) * 2.0) + mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (rand(n, 1, 1, 1) + 0.5) + mean
        elif name == "translation":  # up to 1/8 of the side, the border filled with zeros
            h, w = x.shape[2:]
            sy, sx = h // 8, w // 8
            dy = torch.randint(-sy, sy + 1, (n, 1, 1), generator=gen)
            dx = torch.randint(-sx, sx + 1, (n, 1, 1), generator=gen)
            ys = torch.arange(h)[None, :, None] + dy  # (N, H, 1)
            xs = torch.arange(w)[None, None, :] + dx  # (N, 1, W)
            inside = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).to(x.dtype)  # (N, H, W)
            idx = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).view(n, 1, h * w).expand(-1, x.shape[1], -1)
            x = x.flatten(2).gather(2, idx).view_as(x) * inside[:, None]
        elif name == "cutout":  # one zeroed square of half the side per image
            h, w = x.shape[2:]
            cy = torch.randint(0, h, (n, 1, 1), generator=gen)
            cx = torch.randint(0, w, (n, 1, 1), generator=gen)
            ys, xs = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
            keep = ((ys - cy).abs() >= h // 4) | ((xs - cx).abs() >= w // 4)  # (N, H, W)
            x = x * keep[:, None].to(x.dtype)
        else:
            raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTS)}")
    return x


@dataclass
class GanTrainConfig:
    steps: int = 8000  # generator steps (one discriminator step each)
    batch_size: int = 32  # real and fake images per step
    g_lr: float = 2e-3  # Adam learning rate of the generator (equalized-lr layers make one rate fit all)
    d_lr: float = 2e-3  # Adam learning rate of the discriminator
    beta2: float = 0.99  # Adam's second-moment decay; beta1 is 0 (StyleGAN2)
    r1_gamma: float = 0.5  # R1 weight; StyleGAN2-ADA's heuristic 0.0002 * side^2 / batch is about 0.5 at 64/32
    r1_every: int = 8  # lazy R1: penalise every this many steps, scaled up by it
    ema_half_life: int = 10_000  # images after which an old weight counts half in the EMA generator
    ema_rampup: float = 0.05  # early on, the half-life is at most this fraction of the images seen
    augment: str = ""  # DiffAugment policies the discriminator sees, comma-separated: color, translation, cutout
    seed: int = 0  # seeds the weights, the batches and z
    precision: str = "float32"  # "bfloat16": G and D forward passes under bf16 autocast (not R1's gradient)

    def to_dict(self) -> dict:
        return asdict(self)


class GanTrainer(Callbacks):

    def __init__(self, config: GanTrainConfig, g: Generator, d: Discriminator, images: torch.Tensor) -> None:
        check_precision(config.precision)
        self.config = config
        self.g, self.d = g, d
        self.g_ema = copy.deepcopy(g).eval().requires_grad_(False)
        self.images = images  # (N, C, H, W) float in [-1, 1]
        super().__init__()
        self.curves: dict[str, list[float]] = {k: [] for k in CURVES}
        self.r1_steps: list[int] = []  # the steps at which curves["r1"] was measured
        self.step = 0  # steps done
        self.elapsed = 0.0  # seconds of run()
        betas = (0.0, config.beta2)
        r1_ratio = config.r1_every / (config.r1_every + 1)  # lazy regularisation's Adam correction
        self.g_opt = torch.optim.Adam(g.parameters(), lr=config.g_lr, betas=betas, eps=1e-8)
        self.d_opt = torch.optim.Adam(d.parameters(), lr=config.d_lr * r1_ratio,
                                      betas=(0.0, config.beta2 ** r1_ratio), eps=1e-8)
        self.gen = torch.Generator().manual_seed(config.seed)

    def _reals(self) -> torch.Tensor:
        idx = torch.randint(0, len(self.images), (self.config.batch_size,), generator=self.gen)
        return self.images[idx]

    def _z(self) -> torch.Tensor:
        return torch.randn(self.config.batch_size, self.g.cfg.z_dim, generator=self.gen)

    def _d(self, images: torch.Tensor) -> torch.Tensor:
        """The discriminator's logits (float32), after the configured augmentation."""
        if self.config.augment:
            images = diff_augment(images, self.config.augment, self.gen)
        return self.d(images).float()

    def train_step(self) -> None:
        c = self.config
        # discriminator: softplus(D(fake)) + softplus(-D(real)), R1 on reals every r1_every steps
        self.g.requires_grad_(False)
        self.d.requires_grad_(True)
        reals = self._reals()
        with autocast(c.precision, self.d):
            with torch.no_grad():
                fakes = self.g(self._z())
            real_logits, fake_logits = self._d(reals), self._d(fakes.float())
        d_loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        if c.r1_every and self.step % c.r1_every == 0:  # in float32: a gradient of a gradient
            reals = reals.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self._d(reals).sum(), reals, create_graph=True)
            r1 = grad.pow(2).flatten(1).sum(1).mean()
            self.d_opt.zero_grad(set_to_none=True)
            (r1 * (c.r1_gamma / 2) * c.r1_every).backward()
            self.d_opt.step()
            self.curves["r1"].append(float(r1.detach()))
            self.r1_steps.append(self.step)
        # generator: softplus(-D(G(z)))
        self.g.requires_grad_(True)
        self.d.requires_grad_(False)
        with autocast(c.precision, self.g):
            g_loss = F.softplus(-self._d(self.g(self._z()))).mean()
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_opt.step()
        self._update_ema()
        self.curves["d_loss"].append(float(d_loss.detach()))
        self.curves["g_loss"].append(float(g_loss.detach()))
        self.curves["d_real"].append(float(real_logits.detach().mean()))
        self.curves["d_fake"].append(float(fake_logits.detach().mean()))

    @torch.no_grad()
    def _update_ema(self) -> None:
        c = self.config
        seen = (self.step + 1) * c.batch_size
        half_life = min(c.ema_half_life, seen * c.ema_rampup) if c.ema_rampup else c.ema_half_life
        beta = 0.5 ** (c.batch_size / max(half_life, 1e-8))
        for p_ema, p in zip(self.g_ema.parameters(), self.g.parameters(), strict=True):
            p_ema.lerp_(p, 1.0 - beta)

    def run(self) -> GanTrainer:
        self.g.train()
        self.d.train()
        start = time.perf_counter() - self.elapsed
        while self.step < self.config.steps and not self._stop:
            self.train_step()
            self.step += 1
            self.elapsed = time.perf_counter() - start
            self._fire("on_batch_end")
        self.g.eval()
        self._fire("on_train_end")
        return self


def build_models(cfg, seed: int) -> tuple[Generator, Discriminator]:
    """A fresh generator and discriminator, seeded."""
    torch.manual_seed(seed)
    return Generator(cfg), Discriminator(cfg)


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
