"""Kernels alone: residual mass, stop probabilities, residual density, reflection."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from fastspec.diffusion import kernels
import naive


def _phi(t):
    return math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)


def _mass_quad(d, log_pi):
    pi = math.exp(log_pi)
    t_star = (0.5 * d * d - log_pi) / d
    f = lambda t: max(pi * _phi(t - d) - _phi(t), 0.0)  # noqa: E731
    return integrate.quad(f, t_star, t_star + 40, limit=200)[0]


@pytest.mark.parametrize("d,log_pi", [(0.05, 0.0), (0.7, 0.0), (2.0, -0.3), (3.0, -4.0),
                                      (0.3, -1.5), (6.0, -20.0)])
def test_residual_mass_vs_quadrature(d, log_pi):
    assert kernels.residual_mass(d, log_pi) == pytest.approx(_mass_quad(d, log_pi),
                                                             rel=1e-6, abs=1e-12)


def test_residual_mass_zero_when_no_mismatch():
    assert kernels.residual_mass(0.0, -0.5) == 0.0


@pytest.mark.parametrize("d,log_pi", [(0.05, 0.0), (0.8, 0.0), (2.5, -0.2), (3.0, -5.0),
                                      (0.2, -3.0), (8.0, -1.0)])
def test_residual_density_vs_quadrature(d, log_pi):
    rng = np.random.default_rng(7)
    draws = []
    while len(draws) < 20_000:
        t, ok = kernels.residual_t(d, log_pi, rng.random((32, 4)))
        if ok:
            draws.append(t)
    pi = math.exp(log_pi)
    t_star = (0.5 * d * d - log_pi) / d
    grid = np.linspace(t_star, t_star + 12, 4001)
    dens = np.maximum(pi * stats.norm.pdf(grid - d) - stats.norm.pdf(grid), 0.0)
    cdf = integrate.cumulative_trapezoid(dens, grid, initial=0.0)
    cdf /= cdf[-1]
    assert np.min(draws) >= t_star
    p = stats.kstest(np.array(draws), lambda x: np.interp(x, grid, cdf)).pvalue
    assert p > 1e-4


def test_block_stop_probabilities_1d_vs_integration():
    """The block rule (tests/naive.py), k = 2 in 1-D, stale draft: P(tau = i) against
    nested quadrature. tests/test_streaming.py checks the kernels against that rule."""
    a, b, c = np.array([0.9, 0.8]), np.array([0.5, 0.6]), np.array([0.7, 0.6])
    d_draft, w0 = 0.3, 0.4
    den = lambda w: np.sin(w) + 0.5 * w  # noqa: E731  a nonlinear "denoiser"
    delta = lambda i, w: b[i] * (den(w) - d_draft) / c[i]  # noqa: E731
    # P(tau = 0) = R_0 with pi_0 = 1; P(tau = 2) = E_q[min(1, rho_0 rho_1)];
    # P(tau = 1) = E_q[R_1(W_1)].
    d0 = delta(0, w0)
    p0 = kernels.residual_mass(abs(d0), 0.0)

    def w1_of(z0):
        return a[0] * w0 + b[0] * d_draft + c[0] * z0

    def log_pi1(z0):
        return min(0.0, z0 * d0 - 0.5 * d0 * d0)

    p1 = integrate.quad(lambda z0: _phi(z0) * _mass_quad_safe(abs(delta(1, w1_of(z0))),
                                                              log_pi1(z0)), -10, 10)[0]
    p2 = integrate.dblquad(
        lambda z1, z0: _phi(z0) * _phi(z1) * math.exp(min(0.0, log_pi1(z0) + z1 * delta(1, w1_of(z0))
                                                          - 0.5 * delta(1, w1_of(z0)) ** 2)),
        -10, 10, -10, 10)[0]
    assert p0 + p1 + p2 == pytest.approx(1.0, abs=1e-6)
    rng = np.random.default_rng(3)
    n = 200_000
    counts = np.zeros(3)
    for _ in range(n):
        z = rng.standard_normal(2)
        w = np.array([[w0], [w1_of(z[0])], [0.0]])
        w[2, 0] = a[1] * w[1, 0] + b[1] * d_draft + c[1] * z[1]
        d_vals = np.array([[den(w0)], [den(w[1, 0])]])
        log_rho, dn = naive.diffusion_log_ratios(w, d_vals, np.array([d_draft]), a, b, c)
        tau, _ = naive.diffusion_tau(naive.BLOCK, log_rho, dn, rng.random(3))
        counts[tau] += 1
    expect = np.array([p0, p1, p2]) * n
    chi2 = np.sum((counts - expect) ** 2 / expect)
    assert stats.chi2.sf(chi2, 2) > 1e-4, (counts / n, expect / n)


def _mass_quad_safe(d, log_pi):
    return 0.0 if d == 0 else _mass_quad(d, log_pi)


def test_reflection_and_replacement():
    rng = np.random.default_rng(0)
    v, delta = rng.standard_normal(5), rng.standard_normal(5)
    e = delta / np.linalg.norm(delta)
    refl = kernels.set_along(v, delta, True, 0.0)
    assert refl @ e == pytest.approx(np.linalg.norm(delta) - v @ e)
    np.testing.assert_allclose(refl - (refl @ e) * e, v - (v @ e) * e, atol=1e-12)
    moved = kernels.set_along(v, delta, False, 1.25)
    assert moved @ e == pytest.approx(1.25)
    np.testing.assert_allclose(kernels.set_along(v, np.zeros(5), True, 0.0), v)
