"""Serial and parallel twins (fastspec._jit) give bit-identical results.

The samplers' twins are compared end to end in test_reproducibility.py (every
method of both pipelines, serial against parallel); here the reference models'
oracles, each forced through both twins.
"""

import numpy as np
import pytest

import fastspec._jit as jit
from fastspec.models import (CurieWeiss, Gaussian, GaussianMixture, MarkovChain,
                             MixtureOfProducts, PointCloud, TableModel)

RNG = np.random.default_rng(0)
AR = [CurieWeiss(n=30, J=1.2, h=0.1), MarkovChain([[3.0, 1.0], [1.0, 2.0]], n=30),
      MixtureOfProducts.random(n=30, q=3, seed=1),
      TableModel.from_model(CurieWeiss(n=6, J=2.0))]
DIFFUSION = [PointCloud(RNG.standard_normal((7, 5))),
             GaussianMixture(RNG.standard_normal((3, 5)), [0.5, 1.0, 0.0]),
             Gaussian(RNG.standard_normal(5), 0.7)]


def _both(monkeypatch, call):
    monkeypatch.setattr(jit, "PARALLEL_MIN_WORK", 1 << 62)
    serial = call()
    monkeypatch.setattr(jit, "PARALLEL_MIN_WORK", 0)
    return serial, call()


@pytest.mark.parametrize("model", AR, ids=lambda m: type(m).__name__)
def test_ar_oracle_twins_agree(model, monkeypatch):
    ctx = RNG.integers(-1, model.q, size=(200, model.n))
    serial, parallel = _both(monkeypatch, lambda: model.marginals(ctx))
    np.testing.assert_array_equal(serial, parallel)


@pytest.mark.parametrize("model", DIFFUSION, ids=lambda m: type(m).__name__)
def test_denoiser_twins_agree(model, monkeypatch):
    z = RNG.standard_normal((200, model.dim)) * 3
    sigma = np.exp(RNG.uniform(-3, 3, 200))
    serial, parallel = _both(monkeypatch, lambda: model.denoise(z, sigma))
    np.testing.assert_array_equal(serial, parallel)
