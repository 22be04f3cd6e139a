"""Diffusion samplers draw the chain's exact output law (docs/ALGORITHMS.md, section 1)."""

import numpy as np
import pytest
from scipy import stats

import fastspec
from fastspec import schedules
from fastspec._rules import CONCRETE_METHODS, SPECULATIVE_METHODS, UNVERIFIED
from fastspec.api import _sample
from fastspec.models import Gaussian, PointCloud

N_SAMPLES = 20_000
# Fixed seeds, so every test is deterministic; thresholds are Bonferroni-style.
P_MIN = 1e-4

SCHEDULES = {
    "ve": schedules.ve(20, 10.0, 0.05),
    "vp": schedules.vp(20, 0.1, 10.0),
    "sl": schedules.sl(20, 30.0),
}
GAUSSIAN = Gaussian([2.0, -1.0, 0.5], [0.3, 0.5, 1.0])
DIRECTIONS = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 1.0], [1.0, -2.0, 0.5]])


def _check_gaussian_law(x, mean, var):
    n = x.shape[0]
    z_mean = (x.mean(0) - mean) / np.sqrt(var / n)
    assert np.all(np.abs(z_mean) < 4.5), z_mean
    # var of the sample variance of a normal is 2 var^2 / (n - 1)
    z_var = (x.var(0, ddof=1) - var) / (var * np.sqrt(2.0 / (n - 1)))
    assert np.all(np.abs(z_var) < 4.5), z_var
    for u in DIRECTIONS:
        u = u / np.linalg.norm(u)
        proj = x @ u
        p = stats.kstest(proj, "norm", args=(mean @ u, np.sqrt(var @ u ** 2))).pvalue
        assert p > P_MIN, (u, p)


@pytest.mark.parametrize("sched_name", list(SCHEDULES))
@pytest.mark.parametrize("method", CONCRETE_METHODS)
def test_gaussian_exact_law(sched_name, method):
    sched = SCHEDULES[sched_name]
    mean, var = GAUSSIAN.output_law(sched)
    res = fastspec.sample(GAUSSIAN, schedule=sched, n_samples=N_SAMPLES, method=method,
                          seed=11)
    assert res.samples.shape == (N_SAMPLES, 3)
    assert res.stats.method == method
    if method != "sequential":
        assert res.stats.mean_rounds < sched.n_steps
    _check_gaussian_law(res.samples, mean, var)


def test_output_law_matches_monte_carlo_recursion():
    """The closed form agrees with a direct NumPy simulation of the chain."""
    sched = SCHEDULES["vp"]
    rng = np.random.default_rng(5)
    y = sched.init_scale * rng.standard_normal((200_000, 3))
    for j in range(sched.n_steps):
        den = GAUSSIAN.denoise(y / sched.s[j], np.full(len(y), sched.sigma[j]))
        y = sched.a[j] * y + sched.b[j] * den + sched.c[j] * rng.standard_normal(y.shape)
    mean, var = GAUSSIAN.output_law(sched)
    np.testing.assert_allclose(y.mean(0), mean, atol=5 * np.sqrt(var.max() / len(y)))
    np.testing.assert_allclose(y.var(0), var, rtol=0.02)


# -- nonlinear target: every method against "sequential" ------------------------------

POINTS = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.5, 2.5]])
CLOUD = PointCloud(POINTS, weights=[0.4, 0.3, 0.2, 0.1])
SHORT = schedules.ve(24, 6.0, 0.3)


def _two_sample_pvalue(x, y):
    """Smallest Bonferroni-corrected p-value of KS on projections and a 2-D binned chi^2."""
    ps = []
    for ang in np.linspace(0, np.pi, 6, endpoint=False):
        u = np.array([np.cos(ang), np.sin(ang)])
        ps.append(stats.ks_2samp(x @ u, y @ u).pvalue)
    pooled = np.vstack([x, y])
    ex = np.quantile(pooled[:, 0], np.linspace(0, 1, 9)[1:-1])
    ey = np.quantile(pooled[:, 1], np.linspace(0, 1, 9)[1:-1])
    cx = np.digitize(x[:, 0], ex) * 8 + np.digitize(x[:, 1], ey)
    cy = np.digitize(y[:, 0], ex) * 8 + np.digitize(y[:, 1], ey)
    table = np.array([np.bincount(cx, minlength=64), np.bincount(cy, minlength=64)])
    table = table[:, table.sum(0) > 0]
    ps.append(stats.chi2_contingency(table).pvalue)
    return min(1.0, min(ps) * len(ps))


@pytest.fixture(scope="module")
def sequential_cloud():
    return fastspec.sample(CLOUD, schedule=SHORT, n_samples=N_SAMPLES, method="sequential",
                           seed=101).samples


@pytest.mark.parametrize("method", SPECULATIVE_METHODS)
def test_point_cloud_matches_sequential(sequential_cloud, method):
    res = fastspec.sample(CLOUD, schedule=SHORT, n_samples=N_SAMPLES, method=method, seed=202)
    assert _two_sample_pvalue(res.samples, sequential_cloud) > P_MIN


def test_unverified_variant_is_rejected(sequential_cloud):
    """Negative control: accepting the frozen-denoiser draft unverified is detected."""
    res = _sample(CLOUD, schedule=SHORT, n_samples=N_SAMPLES, method="block", seed=202,
                  _rule=UNVERIFIED)
    assert _two_sample_pvalue(res.samples, sequential_cloud) < 1e-6


def test_srs_without_the_residual_test_is_rejected(monkeypatch):
    """Negative control of srs: keeping every proposal, untested, is not exact."""
    from fastspec.diffusion.srs import DiffusionSrsSampler
    monkeypatch.setattr(DiffusionSrsSampler, "_log_ratio", lambda self, wave, jobs: np.full(jobs.size, np.inf))
    sched = SCHEDULES["ve"]
    mean, var = GAUSSIAN.output_law(sched)
    res = fastspec.sample(GAUSSIAN, schedule=sched, n_samples=N_SAMPLES, method="srs", seed=11)
    with pytest.raises(AssertionError):
        _check_gaussian_law(res.samples, mean, var)


def test_auto_is_block_and_default_schedule():
    model = PointCloud(POINTS)
    res = fastspec.sample(model, n_samples=2, seed=3)
    assert res.stats.method == "block"
    assert res.stats.n_steps == 1000
    assert res.samples.shape == (2, 2)


def test_rounds_far_below_sequential():
    rng = np.random.default_rng(0)
    model = PointCloud(rng.standard_normal((16, 16)))
    res = fastspec.sample(model, schedule=schedules.ve(1000, 80.0, 0.002), n_samples=4,
                          method="block", seed=0)
    assert res.stats.mean_rounds < 30
    seq = fastspec.sample(model, schedule=schedules.ve(50, 80.0, 0.002), n_samples=2,
                          method="sequential", seed=0)
    assert seq.stats.rounds == 50 and seq.stats.contexts == 100


def test_fixed_block_size_and_stats():
    res = fastspec.sample(CLOUD, schedule=SHORT, n_samples=5, method="block", seed=4,
                          block_size=3)
    assert np.all(res.stats.block_sizes <= 3)
    assert np.all(res.stats.accepted <= res.stats.block_sizes)
    assert res.stats.rows_per_sample.shape == (5,)


def test_cost_aware_block_sizes_keep_the_exact_law():
    sched = SCHEDULES["ve"]
    mean, var = GAUSSIAN.output_law(sched)
    res = fastspec.sample(GAUSSIAN, schedule=sched, n_samples=N_SAMPLES, method="block",
                          seed=12, row_cost=0.2)
    assert np.unique(res.stats.block_sizes).size >= 3
    _check_gaussian_law(res.samples, mean, var)
