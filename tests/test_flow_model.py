"""The flows themselves: invertibility and log-determinants against numerical Jacobians; the trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genstudio.export.flow.flow2d import Flow2D, FlowConfig
from genstudio.export.flow.image_flow import ImageFlow, ImageFlowConfig
from genstudio.export.flow.layers2d import ActNorm, AffineCoupling, LUMix2d, Standardize
from genstudio.export.flow.spline2d import SplineCoupling, rq_spline
from genstudio.export.trainer import Trainer, TrainerConfig


def _scramble(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """Random parameters, so no layer is the identity it starts as."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module.eval()


def _numerical_logdet(fn, x: torch.Tensor) -> torch.Tensor:
    """log|det J| per point by central differences, in float64."""
    eps = 1e-5
    out = []
    for xi in x:
        cols = []
        for k in range(xi.numel()):
            e = torch.zeros_like(xi).reshape(-1)
            e[k] = eps
            e = e.reshape(xi.shape)
            cols.append(((fn(xi[None] + e) - fn(xi[None] - e)) / (2 * eps)).reshape(-1))
        jac = torch.stack(cols, 1)
        out.append(torch.linalg.slogdet(jac)[1])
    return torch.stack(out)


@pytest.mark.parametrize("arch", ["realnvp", "glow", "spline"])
def test_flow2d_inverts_and_its_logdet_matches_the_jacobian(arch):
    torch.manual_seed(0)
    flow = Flow2D(FlowConfig(arch=arch, n_blocks=4, hidden=16)).double()
    flow.standardize.fit(torch.randn(100, 2, dtype=torch.float64) * 3 + 1)
    _scramble(flow, scale=0.1 if arch == "spline" else 0.3)  # stronger makes spline slopes ~e^-5: FD gets noisy
    x = torch.randn(6, 2, dtype=torch.float64) * 2
    z, logdet = flow(x)
    assert torch.allclose(flow.inverse(z), x, atol=1e-9)
    num = _numerical_logdet(lambda v: flow(v)[0], x)
    assert torch.allclose(logdet, num, atol=1e-6)
    xs, layers = flow.sample_layers(z)
    assert layers.shape == (flow.n_layers + 1, 6, 2)
    assert torch.allclose(layers[0], z) and torch.allclose(layers[-1], xs) and torch.allclose(xs, x, atol=1e-9)


@pytest.mark.parametrize("layer", [Standardize(), AffineCoupling(1, 8, 2, 4.0), ActNorm(), LUMix2d(),
                                   SplineCoupling(0, 8, 2, 6, 3.0)],
                         ids=["standardize", "coupling", "actnorm", "lumix", "spline"])
def test_each_2d_layer_inverts_with_the_right_logdet(layer):
    layer = _scramble(layer.double(), seed=1)
    x = torch.randn(5, 2, dtype=torch.float64)
    y, ld = layer(x)
    assert torch.allclose(layer.inverse(y), x, atol=1e-10)
    assert torch.allclose(ld, _numerical_logdet(lambda v: layer(v)[0], x), atol=1e-6)


def test_lu_mixing_weight_has_the_determinant_it_reports():
    mix = _scramble(LUMix2d().double())
    with torch.no_grad():
        assert float(torch.linalg.slogdet(mix.weight())[1]) == pytest.approx(float(mix.log_s.sum()), abs=1e-10)


def test_flow_log_prob_integrates_to_one():
    flow = _scramble(Flow2D(FlowConfig(n_blocks=3, hidden=8)), scale=0.1)
    g = torch.linspace(-10, 10, 401)
    gx, gy = torch.meshgrid(g, g, indexing="xy")
    with torch.no_grad():
        p = flow.log_prob(torch.stack([gx.ravel(), gy.ravel()], 1)).exp()
    assert float(p.sum() * (g[1] - g[0]) ** 2) == pytest.approx(1.0, abs=1e-2)


def test_image_flow_inverts_and_its_logdet_matches_the_jacobian():
    torch.manual_seed(0)
    flow = ImageFlow(ImageFlowConfig(size=4, steps_per_scale=1, hidden=4)).double()
    flow.train()
    flow(torch.rand(8, 1, 4, 4, dtype=torch.float64) * 0.8 + 0.1)  # actnorm's data-dependent init
    _scramble(flow, scale=0.1)
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64) * 0.8 + 0.1
    z, logdet = flow(x)
    assert z.shape == (2, 16)
    assert torch.allclose(flow.inverse(z), x, atol=1e-8)
    assert torch.allclose(logdet, _numerical_logdet(lambda v: flow(v)[0], x), atol=1e-5)
    flow.freeze_inverses()  # the exported sampling graph's path
    assert torch.allclose(flow.inverse(z), x, atol=1e-8)


def test_trainer_reports_through_callbacks_and_can_stop():
    torch.manual_seed(0)
    flow = Flow2D(FlowConfig(n_blocks=2, hidden=16))
    data = torch.from_numpy(np.random.default_rng(0).normal(size=(2000, 2)).astype(np.float32)) * 0.3 + 2.0
    seen = []

    def batches(step, gen):
        return data[torch.randint(0, len(data), (128,), generator=gen)]

    t = Trainer(TrainerConfig(steps=60, warmup=5, lr=1e-2), flow, lambda m, b: -m.log_prob(b).mean(), batches)
    t.add_callback("on_batch_end", lambda tr: seen.append((tr.step, tr.loss)))
    t.add_callback("on_batch_end", lambda tr: tr.stop() if tr.step == 50 else None)
    t.run()
    assert [s for s, _ in seen] == list(range(1, 51))
    assert np.mean([loss for _, loss in seen[-5:]]) < np.mean([loss for _, loss in seen[:5]])
    with pytest.raises(ValueError):
        t.add_callback("on_epoch", lambda tr: None)


def test_trainer_runs_the_forward_pass_under_bf16_autocast_when_asked():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 1)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    seen = []

    def loss_fn(m, batch):
        out = m(batch[0])
        seen.append(out.dtype)
        return (out.float() - batch[1]).pow(2).mean()

    for precision, dtype in (("bfloat16", torch.bfloat16), ("float32", torch.float32)):
        seen.clear()
        t = Trainer(TrainerConfig(steps=20, warmup=2, lr=1e-2, precision=precision), net, loss_fn, lambda s, g: (x, y))
        t.run()
        assert set(seen) == {dtype} and np.isfinite(t.losses).all()
        assert net.weight.dtype == torch.float32  # the weights the optimiser updates stay float32
    with pytest.raises(ValueError, match="precision"):
        Trainer(TrainerConfig(precision="float16"), net, loss_fn, lambda s, g: (x, y))


def test_spline_starts_as_the_identity_and_is_the_identity_outside_its_interval():
    coupling = SplineCoupling(1, 8, 2, 8, 2.0).double().eval()
    x = torch.randn(50, 2, dtype=torch.float64) * 2
    y, ld = coupling(x)
    assert torch.allclose(y, x, atol=1e-7) and torch.allclose(ld, torch.zeros(50, dtype=torch.float64), atol=1e-7)
    g = torch.Generator().manual_seed(0)
    raw = [torch.randn(4, k, generator=g, dtype=torch.float64) for k in (5, 5, 4)]
    far = torch.tensor([-3.0, -2.5, 2.5, 9.0], dtype=torch.float64)
    out, logdet = rq_spline(far, *raw, bound=2.0)
    assert torch.equal(out, far) and torch.equal(logdet, torch.zeros(4, dtype=torch.float64))
    inside = torch.tensor([-1.9, -0.3, 0.4, 1.99], dtype=torch.float64)
    y, ld = rq_spline(inside, *raw, bound=2.0)
    back, ld_inv = rq_spline(y, *raw, bound=2.0, inverse=True)
    assert torch.allclose(back, inside, atol=1e-9) and torch.allclose(ld, -ld_inv, atol=1e-9)
    assert (y[1:] > y[:-1]).all()  # monotonic
