"""Smoke tests for the neural oracles and the bench script (fast)."""
import csv

import numpy as np

import fastspec
from fastspec import bench
from fastspec.models.neural import NeuralAR, NeuralDenoiser


def test_neural_ar_valid_marginals():
    m = NeuralAR(8, q=3, hidden=16, seed=1)
    ctx = np.full((5, 8), -1, dtype=np.int64)
    ctx[1, :3] = [0, 2, 1]
    p = m.marginals(ctx) if hasattr(m, "marginals") else m._marginals(ctx)
    assert p.shape == (5, 8, 3)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    assert np.allclose(p.sum(axis=2), 1.0)
    res = fastspec.sample(m, n_samples=2, method="block", seed=0)
    assert res.samples.shape == (2, 8)


def test_neural_denoiser_finite():
    d = NeuralDenoiser(4, hidden=16, seed=0)
    z = np.random.default_rng(0).normal(size=(6, 4)) * 50
    out = d._denoise(z, np.geomspace(80, 0.002, 6))
    assert out.shape == (6, 4) and np.all(np.isfinite(out))


def test_bench_quick_writes_csv(tmp_path):
    bench.scaling(quick=True, out=str(tmp_path), ar_sizes=[8, 16], steps=[10, 20],
                  methods=("sequential", "block"), plot=False)
    rows = list(csv.DictReader((tmp_path / "scaling.csv").read_text().splitlines()))
    assert {r["method"] for r in rows} == {"sequential", "block"}
    assert (tmp_path / "scaling_slopes.csv").exists()


def test_neural_oracles_reject_bad_sizes():
    import pytest
    with pytest.raises(ValueError, match="hidden must be >= 1"):
        NeuralAR(8, hidden=0)
    with pytest.raises(ValueError, match="layers=-1"):
        NeuralDenoiser(4, layers=-1)


def test_oracle_profile_and_overhead_report_positive_figures():
    m = NeuralAR(8, q=2, hidden=16, layers=1, seed=0)
    single, batched = bench.oracle_profile(
        m, lambda rng, K: (np.full((K, 8), -1, dtype=np.int64),), repeats=3, batch=4)
    assert single > 0 and batched > 0
    shares = bench.overhead(n=16, n_seeds=2)
    assert set(shares) == set(bench.ar_models(16))
    assert all(0.0 <= s <= 1.0 for s in shares.values())


def test_fit_row_cost_recovers_a_linear_cost():
    import pytest
    t0, t1, K = 1e-3, 2e-4, 64
    assert np.isclose(bench.fit_row_cost(t0 + t1, (t0 + K * t1) / K, K), t1 / t0)
    with pytest.raises(ValueError, match="cannot fit"):
        bench.fit_row_cost(1e-3, 2e-3, K)      # batched rows dearer than a lone call
