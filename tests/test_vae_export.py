"""The VAE export pipeline: model shapes, the likelihood (torch and numpy agree), a tiny export round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genstudio.engines.vae import discretized_logistic_logp as logp_numpy
from genstudio.export.vae.model import ConvVAE, VaeConfig, discretized_logistic_logp


@pytest.mark.parametrize(("channels", "size", "widths"), [(1, 28, (4, 8)), (3, 64, (4, 8, 8))])
def test_shapes(channels, size, widths):
    vae = ConvVAE(VaeConfig(channels=channels, size=size, latent=5, widths=widths, hidden=16))
    x = torch.rand(3, channels, size, size)
    mu, logvar = vae.encoder(x)
    assert mu.shape == logvar.shape == (3, 5)
    image, loc = vae.decoder(mu)
    assert image.shape == loc.shape == (3, channels, size, size)
    assert float(image.detach().min()) >= 0.0 and float(image.detach().max()) <= 1.0
    loss = vae.loss(torch.randint(0, 256, (3, channels, size, size)).float(), torch.Generator().manual_seed(0))
    loss.backward()
    assert math.isfinite(float(loss.detach()))


def test_likelihood_sums_to_one_over_the_256_values_and_numpy_agrees():
    values = torch.arange(256.0, dtype=torch.float64)
    for loc, log_scale in ((0.3, math.log(0.05)), (-0.2, math.log(0.5)), (0.99, math.log(0.01))):
        full = {"dtype": torch.float64}
        lp = discretized_logistic_logp(values, torch.full((256,), loc, **full), torch.full((256,), log_scale, **full))
        assert float(torch.logsumexp(lp, 0)) == pytest.approx(0.0, abs=1e-4)
        lp_np = logp_numpy(values.numpy(), np.full(256, loc), np.full(256, log_scale))
        assert np.allclose(lp_np, lp.numpy(), atol=1e-6)


@pytest.mark.slow
def test_tiny_export_round_trip_with_parity():
    from vae_tiny import tiny_vae_folder

    from genstudio.runtime.manifest import Manifest
    from genstudio.runtime.registry import check_folder

    folder = tiny_vae_folder()
    entry = check_folder(folder, "shipped", deep=True)
    assert entry.ready, entry.error
    m = Manifest.load(folder)
    assert m.family == "vae" and m.extra["latent_dim"] == 2 and m.extra["beta"] == 1.0
    assert {f.role for f in m.files} >= {"encoder", "decoder", "heldout_codes", "heldout_labels", "likelihood_scale"}
    parity = m.metrics["parity"]
    assert parity["max_abs_diff_mu"] < 1e-4 and parity["max_abs_diff_image"] < 1e-4
    h = m.metrics["heldout"]
    assert h["bits_per_dim"] > 0 and h["elbo_nats"] < 0 and 0 <= h["reconstruction_mse"] <= 1
    assert len(m.metrics["kl_per_dim_nats"]) == 2 and "fid_prior_samples" in m.metrics
    lat = m.metrics["decode_latency_batch1"]
    assert lat["onnxruntime_ms"] > 0 and lat["torch_eager_ms"] > 0
    assert m.build["command"].startswith("genstudio export vae")
    codes, labels = np.load(folder / "codes.npy"), np.load(folder / "labels.npy")
    assert codes.shape == (40, 2) and labels.shape == (40, 1)
