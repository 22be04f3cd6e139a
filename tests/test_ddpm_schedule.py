"""``schedules.ddpm``: DDPM ancestral steps on a trained model's own timesteps (no torch)."""

import math

import numpy as np
import pytest

from fastspec import schedules
from fastspec.schedules import ddpm


def _linear_abar(n_train=1000, beta_start=1e-4, beta_end=0.02):
    # DDPM's linear betas (Ho et al. 2020), as diffusers' DDPMScheduler builds them
    return np.cumprod(1.0 - np.linspace(beta_start, beta_end, n_train))


def _direct(abar, timesteps):
    """Per-step coefficients written out one timestep at a time, DDPMScheduler.step style."""
    rows = []
    for j, t in enumerate(timesteps):
        prev = timesteps[j + 1] if j + 1 < len(timesteps) else -1
        ab_t = abar[t]
        ab_p = abar[prev] if prev >= 0 else 1.0
        cur_alpha = ab_t / ab_p
        cur_beta = 1.0 - cur_alpha
        x0_coeff = math.sqrt(ab_p) * cur_beta / (1.0 - ab_t)
        xt_coeff = math.sqrt(cur_alpha) * (1.0 - ab_p) / (1.0 - ab_t)
        var = (1.0 - ab_p) / (1.0 - ab_t) * cur_beta
        rows.append((xt_coeff, x0_coeff, var, math.sqrt(ab_t), math.sqrt((1 - ab_t) / ab_t)))
    a, b, var, s, sigma = map(np.array, zip(*rows))
    var[-1] = var[-2] if len(var) > 1 else 1.0 - abar[timesteps[0]]
    return a, b, np.sqrt(var), s, sigma


def _linspace_timesteps(n_train, n_steps):
    # diffusers' timestep_spacing="linspace", written with Python's round (also half-to-even)
    if n_steps == 1:
        return [n_train - 1]
    return [int(round(k * (n_train - 1) / (n_steps - 1))) for k in range(n_steps)][::-1]


@pytest.mark.parametrize("n_train, n_steps", [(1000, None), (1000, 50), (1000, 7), (37, 36),
                                              (37, 2), (37, 1), (1, 1)])
def test_coefficients_match_a_direct_computation(n_train, n_steps):
    abar = _linear_abar(n_train, 1e-3, 0.05) if n_train < 1000 else _linear_abar(n_train)
    sched = ddpm(abar, n_steps)
    steps = _linspace_timesteps(n_train, n_train if n_steps is None else n_steps)
    assert sched.n_steps == len(steps)
    np.testing.assert_array_equal(schedules._ddpm_timesteps(n_train, len(steps)), steps)
    a, b, c, s, sigma = _direct(abar, steps)
    # measured worst relative gap 3.8e-13 (beta from 1 - ratio here, from a difference there)
    for key, want in zip("a b c".split(), (a, b, c)):
        np.testing.assert_allclose(getattr(sched, key), want, rtol=1e-11, atol=1e-300,
                                   err_msg=key)
    # s and sigma are the very values a discrete-time adapter maps back to integer timesteps
    np.testing.assert_array_equal(sched.s, s)
    np.testing.assert_array_equal(sched.sigma, sigma)
    assert sched.init_scale == 1.0
    assert np.all(sched.c > 0)


def test_every_timestep_equals_vp():
    n = 1000
    beta = (0.1 + np.arange(n) / (n - 1) * (20.0 - 0.1)) / n   # vp's own betas
    vp = schedules.vp(n, 0.1, 20.0)
    sched = ddpm(np.cumprod(1.0 - beta))
    # measured worst relative gap 7.7e-13 (vp takes beta, ddpm recovers it from abar)
    for key in ("a", "b", "c", "s", "sigma"):
        np.testing.assert_allclose(getattr(sched, key), getattr(vp, key), rtol=1e-11,
                                   atol=1e-300, err_msg=key)
    assert sched.init_scale == vp.init_scale


def test_timesteps_are_distinct_descending_and_span_the_range():
    for n_train in (1, 2, 3, 10, 37, 1000):
        for n_steps in sorted({1, 2, 3, n_train // 2, n_train - 1, n_train} - {0}):
            if n_steps > n_train:
                continue
            steps = schedules._ddpm_timesteps(n_train, n_steps)
            assert len(steps) == n_steps
            assert steps[0] == n_train - 1
            assert np.all(np.diff(steps) < 0)
            if n_steps > 1:
                assert steps[-1] == 0


def test_accepts_lists_and_float32():
    abar = _linear_abar(50, 1e-3, 0.05)
    assert ddpm(list(abar), 10) == ddpm(abar, 10)
    sched = ddpm(abar.astype(np.float32), 10)
    assert sched.n_steps == 10 and np.all(np.isfinite(sched.a))


@pytest.mark.parametrize("bad, match", [
    (np.ones((2, 3)) * 0.5, r"1-D array \(T,\), got shape \(2, 3\)"),
    (np.array([]), r"non-empty 1-D"),
    (np.array([0.9, np.nan, 0.1]), r"alphas_cumprod\[1\] must be finite and in \(0, 1\), got nan"),
    (np.array([1.0, 0.5, 0.1]), r"alphas_cumprod\[0\] .* got 1.0.*sigma = 0"),
    (np.array([0.9, 0.5, 0.0]), r"alphas_cumprod\[2\] .* got 0.0"),
    (np.array([0.1, 0.5, 0.9]), r"strictly decreasing.*alphas_cumprod\[::-1\]"),
    (np.array([0.9, 0.5, 0.5]), r"alphas_cumprod\[1\] = 0.5 and alphas_cumprod\[2\] = 0.5"),
    ("abc", r"1-D array of floats"),
])
def test_bad_alphas_cumprod(bad, match):
    with pytest.raises(ValueError, match=match):
        ddpm(bad)


@pytest.mark.parametrize("n_steps, match", [
    (0, r"n_steps must be an int >= 1, got 0"),
    (11, r"n_steps must be <= T = 10 .*got 11"),
])
def test_bad_n_steps(n_steps, match):
    with pytest.raises(ValueError, match=match):
        ddpm(_linear_abar(10, 1e-2, 0.2), n_steps)


@pytest.mark.parametrize("n_steps", [2.5, True])
def test_n_steps_of_a_wrong_type(n_steps):
    with pytest.raises(TypeError, match=r"n_steps must be an int >= 1"):
        ddpm(_linear_abar(10, 1e-2, 0.2), n_steps)
