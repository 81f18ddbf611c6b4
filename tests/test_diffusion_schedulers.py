"""The schedulers' maths against closed-form facts: noise schedules, timesteps, oracle models, a Gaussian's ODE."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genstudio.engines.diffusion.schedulers import (
    SCHEDULERS,
    DDIMScheduler,
    DDPMScheduler,
    SchedulerConfig,
    make_betas,
    make_scheduler,
)

NAMES = tuple(SCHEDULERS)
CONFIG = SchedulerConfig()  # linear 1e-4 .. 0.02 over 1000, clipped to [-1, 1]
NO_CLIP = SchedulerConfig(clip_sample=False)


def vp_alpha_bar(sched, t: float) -> float:
    """alpha-bar at a (possibly fractional) training timestep, through the sigma table as Euler reads it."""
    sigma = float(np.interp(t, np.arange(sched.num_train_timesteps), sched.train_sigmas()))
    return 1.0 / (sigma ** 2 + 1.0)


def run(sched, model, x, rng=None):
    """The sampling loop every pipeline runs; returns the final sample and the x0 estimates."""
    x0s = []
    for t in sched.timesteps:
        out = sched.step(model(sched.scale_model_input(x, t), t), t, x, rng)
        x = out.prev_sample
        x0s.append(out.pred_original_sample)
    return x, x0s


def oracle(sched, x0):
    """The exact epsilon for a known clean sample x0 at any timestep (input in the VP view)."""
    def model(x_in, t):
        a = vp_alpha_bar(sched, t)
        return ((x_in - math.sqrt(a) * x0) / math.sqrt(1.0 - a)).astype(np.float32)
    return model


# -- the noise schedule -------------------------------------------------------------------------------------
def test_betas_follow_the_config():
    lin = make_betas(SchedulerConfig(beta_start=1e-4, beta_end=0.02))
    assert lin[0] == pytest.approx(1e-4) and lin[-1] == pytest.approx(0.02) and len(lin) == 1000
    sl = make_betas(SchedulerConfig(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012))
    assert sl[0] == pytest.approx(0.00085) and sl[-1] == pytest.approx(0.012)
    assert np.allclose(np.diff(np.sqrt(sl)), np.diff(np.sqrt(sl))[0])  # linear in sqrt(beta)
    cos = DDIMScheduler(SchedulerConfig(beta_schedule="squaredcos_cap_v2"))
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 100, 500, 900):
        assert cos.alphas_cumprod[t] == pytest.approx(f((t + 1) / 1000) / f(0), rel=1e-6)
    for s in (DDPMScheduler(CONFIG), cos):
        assert np.all(np.diff(s.alphas_cumprod) < 0) and 0 < s.alphas_cumprod[-1] < s.alphas_cumprod[0] < 1


def test_config_reads_diffusers_keys_and_rejects_nonsense():
    cfg = SchedulerConfig.from_dict({"num_train_timesteps": 500, "beta_schedule": "linear", "beta_start": 0.001,
                                     "beta_end": 0.03, "_class_name": "DDPMScheduler", "trained_betas": None})
    assert cfg.num_train_timesteps == 500 and make_scheduler("ddpm", cfg).alphas_cumprod.shape == (500,)
    for bad in ({"beta_schedule": "sigmoid"}, {"prediction_type": "v_prediction"}, {"beta_start": 0.5, "beta_end": 0.1},
                {"timestep_spacing": "random"}, {"beta_start": "0.1"}):
        with pytest.raises(ValueError):
            SchedulerConfig.from_dict(bad)
    with pytest.raises(ValueError, match="ddpm, ddim, euler_a, dpmpp_2m"):
        make_scheduler("plms", CONFIG)


# -- timesteps ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [1, 2, 7, 25, 50, 61, 103, 1000])  # 61, 103: trailing spacing's arange gave n + 1
def test_timesteps_descend_in_range_from_the_top(name, n):
    s = make_scheduler(name, CONFIG)
    s.set_timesteps(n)
    t = np.asarray(s.timesteps, np.float64)
    assert len(t) == n and t[0] == 999 and t.min() >= 0 and t.max() <= 999
    assert np.all(np.diff(t) < 0)
    with pytest.raises(ValueError):
        s.set_timesteps(0)
    with pytest.raises(ValueError):
        s.set_timesteps(1001)



@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("offset", [1, 2])
@pytest.mark.parametrize("n", [500, 999, 1000])  # 1000 with offset 1 repeated step 999: DPM++ 2M divided by zero
def test_leading_spacing_with_an_offset_never_repeats_a_step(name, offset, n):
    s = make_scheduler(name, SchedulerConfig(timestep_spacing="leading", steps_offset=offset))
    s.set_timesteps(n)
    t = np.asarray(s.timesteps, np.float64)
    assert len(t) == n and t.max() <= 999 and t.min() >= 0 and np.all(np.diff(t) < 0)
    x0 = np.random.default_rng(0).uniform(-0.9, 0.9, (1, 1, 2, 2)).astype(np.float32)
    x = (np.random.default_rng(1).standard_normal(x0.shape) * s.init_noise_sigma).astype(np.float32)
    final, _ = run(s, oracle(s, x0), x, np.random.default_rng(2))
    assert np.isfinite(final).all() and np.abs(final - x0).max() < 1e-2

@pytest.mark.parametrize("name", NAMES)
def test_first_step_noise_level_matches_the_config(name):
    s = make_scheduler(name, CONFIG)
    s.set_timesteps(25)
    betas = np.linspace(CONFIG.beta_start, CONFIG.beta_end, 1000)
    a_top = float(np.prod(1.0 - betas))  # alpha-bar at t = 999 straight from the config
    assert float(s.alphas_cumprod[int(s.timesteps[0])]) == pytest.approx(a_top, rel=1e-9)
    sigma_top = math.sqrt((1 - a_top) / a_top)
    if hasattr(s, "sigmas"):  # Euler and DPM-Solver step in sigma space
        assert s.sigmas[0] == pytest.approx(sigma_top, rel=1e-6) and s.sigmas[-1] == 0.0 and len(s.sigmas) == 26
    if name == "euler_a":
        assert s.init_noise_sigma == pytest.approx(math.sqrt(sigma_top ** 2 + 1), rel=1e-6)
        x = np.ones((1, 2), np.float32)
        assert s.scale_model_input(x, s.timesteps[0])[0, 0] == pytest.approx(1 / math.sqrt(sigma_top ** 2 + 1))
        # the scaled VE sample x0 + sigma eps is the VP sample sqrt(a) x0 + sqrt(1 - a) eps
        x0, eps = np.float32([[0.3, -0.7]]), np.float32([[1.2, 0.4]])
        vp = s.scale_model_input(x0 + np.float32(sigma_top) * eps, s.timesteps[0])
        assert np.allclose(vp, s.add_noise(x0, eps, 999), atol=1e-5)
    else:
        assert s.init_noise_sigma == 1.0
        x = np.ones((1, 2), np.float32)
        assert s.scale_model_input(x, s.timesteps[0]) is x


# -- oracle models ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [1, 4, 25])
def test_an_exact_model_lands_on_its_x0(name, n):
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-0.9, 0.9, (3, 1, 4, 4)).astype(np.float32)
    s = make_scheduler(name, CONFIG)
    s.set_timesteps(n)
    x = (rng.standard_normal(x0.shape) * s.init_noise_sigma).astype(np.float32)
    final, x0s = run(s, oracle(s, x0), x, np.random.default_rng(1))
    assert final.dtype == np.float32 and final.shape == x0.shape
    assert np.abs(final - x0).max() < 1e-3
    assert all(np.abs(p - x0).max() < 1e-3 for p in x0s)  # every preview shows the answer


def test_ddim_recovers_x0_from_a_noised_sample_in_one_step():
    rng = np.random.default_rng(2)
    x0 = rng.uniform(-1, 1, (2, 3, 5, 5)).astype(np.float32)
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    s = DDIMScheduler(CONFIG)
    s.set_timesteps(1)
    xt = s.add_noise(x0, eps, int(s.timesteps[0]))
    out = s.step(eps, s.timesteps[0], xt)  # eta 0: no rng needed
    assert np.allclose(out.pred_original_sample, x0, atol=5e-4) and np.allclose(out.prev_sample, x0, atol=5e-4)
    # in the middle: x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev) eps exactly (equation 12, eta 0)
    s.set_timesteps(10)
    t, t_prev = int(s.timesteps[3]), int(s.timesteps[4])
    out = s.step(eps, t, s.add_noise(x0, eps, t))  # a step may start anywhere on the schedule
    assert np.allclose(out.prev_sample, s.add_noise(x0, eps, t_prev), atol=1e-5)


def test_ddpm_variance_is_the_posterior_variance():
    s = DDPMScheduler(CONFIG)
    s.set_timesteps(1000)
    ac, b = s.alphas_cumprod, s.betas
    for i in (0, 10, 500, 998):
        t = int(s.timesteps[i])
        assert t == 999 - i
        assert s.variance(i) == pytest.approx((1 - ac[t - 1]) / (1 - ac[t]) * b[t], rel=1e-9)  # Ho et al. eq. 7
    assert s.variance(999) == 0.0  # t = 0 -> clean: no noise


def test_ddim_eta_one_takes_the_ddpm_step():
    rng = np.random.default_rng(3)
    x0 = rng.uniform(-0.5, 0.5, (2, 1, 3, 3)).astype(np.float32)
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    ddpm, ddim = DDPMScheduler(CONFIG), DDIMScheduler(CONFIG, eta=1.0)
    for s in (ddpm, ddim):
        s.set_timesteps(20)
    t = ddpm.timesteps[5]
    xt = ddpm.add_noise(x0, eps, int(t))
    a = ddpm.step(eps, t, xt, np.random.default_rng(9)).prev_sample
    b = ddim.step(eps, t, xt, np.random.default_rng(9)).prev_sample
    assert np.allclose(a, b, atol=1e-5)


# -- randomness ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_noise_comes_only_from_the_rng(name):
    model = lambda x, t: (0.1 * x).astype(np.float32)  # noqa: E731
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    finals = []
    for seed in (5, 5, 6):
        s = make_scheduler(name, CONFIG)
        s.set_timesteps(6)
        finals.append(run(s, model, x * np.float32(s.init_noise_sigma), np.random.default_rng(seed))[0])
    assert np.array_equal(finals[0], finals[1])
    assert np.array_equal(finals[0], finals[2]) == (not SCHEDULERS[name].STOCHASTIC)
    s = make_scheduler(name, CONFIG)
    s.set_timesteps(6)
    if SCHEDULERS[name].STOCHASTIC:
        with pytest.raises(ValueError, match="rng"):
            s.step(model(x, s.timesteps[0]), s.timesteps[0], x)
    else:
        s.step(model(x, s.timesteps[0]), s.timesteps[0], x)  # deterministic: no rng needed


@pytest.mark.parametrize("name", NAMES)
def test_reuse_after_set_timesteps_and_bad_timesteps(name):
    s = make_scheduler(name, CONFIG)
    with pytest.raises(RuntimeError):
        s.step(np.zeros(2, np.float32), 999, np.zeros(2, np.float32))
    model = lambda x, t: (0.3 * x + 0.01).astype(np.float32)  # noqa: E731
    x = np.full((1, 3), 0.5, np.float32)
    s.set_timesteps(5)
    first = run(s, model, x, np.random.default_rng(0))[0]
    s.set_timesteps(5)
    assert np.array_equal(run(s, model, x, np.random.default_rng(0))[0], first)  # the history was reset
    s.set_timesteps(5)
    with pytest.raises(ValueError, match="timestep"):
        s.step(model(x, 0), 123.25, x, np.random.default_rng(0))


# -- a Gaussian data distribution: the exact score is known ------------------------------------------------
S = 0.5  # data ~ N(0, S^2) in every dimension


def gaussian_eps(sched):
    """E[eps | x_t] for Gaussian data: sqrt(1 - a) x_t / (a S^2 + 1 - a)."""
    def model(x_in, t):
        a = vp_alpha_bar(sched, t)
        return (math.sqrt(1 - a) * x_in / (a * S * S + 1 - a)).astype(np.float32)
    return model


def ode_solution(sched, z: np.ndarray) -> np.ndarray:
    """The probability-flow ODE keeps x_t / std_t: from z at t = 999 it ends at S z / std_999."""
    a = float(sched.alphas_cumprod[999])
    return (S * z / math.sqrt(a * S * S + 1 - a)).astype(np.float32)


def deterministic_error(name: str, n: int, z: np.ndarray) -> float:
    s = make_scheduler(name, NO_CLIP)
    s.set_timesteps(n)
    final, _ = run(s, gaussian_eps(s), z)
    return float(np.abs(final - ode_solution(s, z)).max())


def test_dpmpp_2m_and_ddim_converge_to_the_ode_solution_and_2m_faster():
    z = np.random.default_rng(0).standard_normal((1, 1, 16, 16)).astype(np.float32)
    e_ddim = {n: deterministic_error("ddim", n, z) for n in (10, 40, 1000)}
    e_dpm = {n: deterministic_error("dpmpp_2m", n, z) for n in (10, 40, 200)}
    assert e_ddim[1000] < 1e-2 and e_dpm[200] < 1e-3  # both reach the same x0
    assert e_ddim[10] > e_ddim[40] > e_ddim[1000] and e_dpm[10] > e_dpm[40] > e_dpm[200]
    assert e_dpm[10] < 0.8 * e_ddim[10] and e_dpm[40] < 0.1 * e_ddim[40]  # second order beats first


@pytest.mark.parametrize("name", ["ddpm", "euler_a"])
def test_ancestral_samplers_draw_the_data_distribution(name):
    """With every training timestep, the samples have the data's spread; with few steps the posterior
    variance beta-tilde (which ignores the uncertainty of x0) under-disperses (Bao et al. 2022,
    https://arxiv.org/abs/2201.06503), so the spread grows with the number of steps."""
    spread = {}
    for n in (10, 50, 1000):
        s = make_scheduler(name, NO_CLIP)
        s.set_timesteps(n)
        rng = np.random.default_rng(1)
        x = (rng.standard_normal((1, 1, 128, 128)) * s.init_noise_sigma).astype(np.float32)
        final, _ = run(s, gaussian_eps(s), x, rng)
        assert abs(float(final.mean())) < 0.02
        spread[n] = float(final.std())
    assert spread[1000] == pytest.approx(S, rel=0.03)
    assert spread[10] < spread[50] < spread[1000]


@pytest.mark.parametrize("name", NAMES)
def test_every_scheduler_clips_the_predicted_x0_when_the_config_asks(name):
    """A poor epsilon at high noise implies an x0 far outside the data; every scheduler keeps it in range (for
    DPM-Solver++ this is the paper's thresholding for pixel-space models), and none does without clip_sample."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 4, 4)).astype(np.float32)
    eps = -3.0 * x  # wrong on purpose: x0 = (x - sigma eps) / alpha is huge
    for config, bounded in ((CONFIG, True), (NO_CLIP, False)):
        sched = make_scheduler(name, config)
        sched.set_timesteps(10)
        t = sched.timesteps[0]
        x_in = x * np.float32(sched.init_noise_sigma)
        out = sched.step(eps, t, x_in, np.random.default_rng(1))
        assert (np.abs(out.pred_original_sample).max() <= 1.0 + 1e-6) == bounded
