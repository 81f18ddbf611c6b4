"""A convolutional VAE with a discretized-logistic pixel likelihood, so its ELBO is a bound in bits/dim.

    vae = ConvVAE(VaeConfig(channels=1, size=28, latent=2))
    mu, logvar = vae.encoder(x)                      # x (N, C, H, W) in [0, 1] -> (N, latent) each
    image, loc = vae.decoder(z)                      # (N, C, H, W): clamped mean, raw logistic location
    loss, parts = vae.loss(u8)                       # u8: uint8-valued pixels as float (N, C, H, W)

Likelihood: each 8-bit pixel value u has p(u | z) = the mass of Logistic(loc, s) on the bin
[(u - 0.5) / 255, (u + 0.5) / 255], with the end bins open (Salimans et al. 2017, PixelCNN++,
https://arxiv.org/abs/1701.05517). log s is learned per pixel and channel, independent of z.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class VaeConfig:
    channels: int = 1  # 1 (Fashion-MNIST) or 3 (SynthFaces)
    size: int = 28  # image side; each conv stage halves it (28 -> 14 -> 7, 64 -> 32 -> 16 -> 8 -> 4)
    latent: int = 2  # latent dimensions
    widths: tuple[int, ...] = (32, 64)  # channels of the conv stages, encoder order
    hidden: int = 256  # the fully connected layer between the conv stack and the latent
    beta: float = 1.0  # weight of the KL term (1 = the true ELBO; Higgins et al. 2017 for beta != 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @property
    def bottom(self) -> int:
        """The side of the conv stack's output."""
        side = self.size
        for _ in self.widths:
            side = (side + 1) // 2
        return side


class Encoder(nn.Module):
    def __init__(self, cfg: VaeConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = cfg.channels
        for w in cfg.widths:
            layers += [nn.Conv2d(c, w, 4, stride=2, padding=1), nn.LeakyReLU(0.1)]
            c = w
        self.conv = nn.Sequential(*layers)
        flat = c * cfg.bottom * cfg.bottom
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(flat, cfg.hidden), nn.LeakyReLU(0.1),
                                nn.Linear(cfg.hidden, 2 * cfg.latent))
        self.latent = cfg.latent

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.conv(x * 2.0 - 1.0))  # (N, 2 * latent)
        mu, logvar = h[:, :self.latent], h[:, self.latent:]
        return mu, logvar.clamp(-12.0, 8.0)


class Decoder(nn.Module):
    def __init__(self, cfg: VaeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        widths = list(reversed(cfg.widths))
        self.fc = nn.Sequential(nn.Linear(cfg.latent, cfg.hidden), nn.LeakyReLU(0.1),
                                nn.Linear(cfg.hidden, widths[0] * cfg.bottom * cfg.bottom), nn.LeakyReLU(0.1))
        layers: list[nn.Module] = []
        sides = [cfg.size]
        for _ in cfg.widths:
            sides.append((sides[-1] + 1) // 2)
        sides = sides[::-1]  # bottom first: 7, 14, 28
        for i, w in enumerate(widths):
            out = widths[i + 1] if i + 1 < len(widths) else cfg.channels
            # output_padding makes odd sides exact (e.g. 4 -> 7 never happens, 7 -> 14 -> 28 does)
            pad = sides[i + 1] - 2 * sides[i]
            layers.append(nn.ConvTranspose2d(w, out, 4, stride=2, padding=1, output_padding=pad))
            if i + 1 < len(widths):
                layers.append(nn.LeakyReLU(0.1))
        self.deconv = nn.Sequential(*layers)
        self.log_scale = nn.Parameter(torch.full((cfg.channels, cfg.size, cfg.size), math.log(0.1)))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.cfg
        h = self.fc(z).view(-1, c.widths[-1], c.bottom, c.bottom)  # (N, w, b, b)
        loc = self.deconv(h) + 0.5  # (N, C, H, W), centred on mid-grey
        return loc.clamp(0.0, 1.0), loc


def discretized_logistic_logp(u8: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log p(u | loc, s) per pixel (same shape as u8) for 8-bit values u8 (float, 0..255)."""
    x = u8 / 255.0
    half = 0.5 / 255.0
    inv_s = torch.exp(-log_scale)
    plus, minus = (x - loc + half) * inv_s, (x - loc - half) * inv_s
    cdf_delta = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = (x - loc) * inv_s
    log_pdf_mid = mid - log_scale - 2.0 * F.softplus(mid)  # the density at the bin centre
    interior = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp_min(1e-12)),
                           log_pdf_mid + math.log(2 * half))
    lower = -F.softplus(-plus)  # u = 0: everything below the bin's top edge
    upper = -F.softplus(minus)  # u = 255: everything above the bin's bottom edge
    return torch.where(u8 < 0.5, lower, torch.where(u8 > 254.5, upper, interior))


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per example and dimension, nats: (N, latent)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


class ConvVAE(nn.Module):
    def __init__(self, cfg: VaeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    @property
    def dim(self) -> int:
        return self.cfg.channels * self.cfg.size * self.cfg.size

    def elbo_parts(self, u8: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-example reconstruction log-likelihood and KL (nats), one reparameterised sample each."""
        mu, logvar = self.encoder(u8 / 255.0)
        eps = torch.randn(mu.shape, generator=generator)
        z = mu + eps * torch.exp(0.5 * logvar)
        _, loc = self.decoder(z)
        logp = discretized_logistic_logp(u8, loc, self.decoder.log_scale).flatten(1).sum(1)  # (N,)
        return {"log_likelihood": logp, "kl": kl_per_dim(mu, logvar).sum(1), "mu": mu, "logvar": logvar}

    def loss(self, u8: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Negative beta-ELBO per dimension (nats), averaged over the batch."""
        p = self.elbo_parts(u8, generator)
        return (-(p["log_likelihood"] - self.cfg.beta * p["kl"])).mean() / self.dim


class EncoderGraph(nn.Module):
    """What encoder.onnx computes: x (N, C, H, W) in [0, 1] -> mu, logvar (N, latent)."""

    def __init__(self, vae: ConvVAE) -> None:
        super().__init__()
        self.encoder = vae.encoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)


class DecoderGraph(nn.Module):
    """What decoder.onnx computes: z (N, latent) -> image (N, C, H, W) in [0, 1], loc (raw location)."""

    def __init__(self, vae: ConvVAE) -> None:
        super().__init__()
        self.decoder = vae.decoder

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder(z)
