"""Bad inputs, clear errors, and reproducibility across thread counts."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastspec
from fastspec import schedules
from fastspec.models import Gaussian, GaussianMixture, PointCloud
from fastspec._rules import CONCRETE_METHODS

SHORT = schedules.ve(12, 5.0, 0.1)


def _model(out_fn, dim=2):
    return fastspec.DiffusionModel(out_fn, dim=dim)


@pytest.mark.parametrize("method", CONCRETE_METHODS)
def test_non_finite_denoiser_output(method):
    def bad(z, sigma):
        out = z / (1 + sigma[:, None] ** 2)
        out[sigma < 1.0] = np.nan
        return out
    with pytest.raises(fastspec.OracleError, match=r"round \d+.*chain step \d+, sigma="):
        fastspec.sample(_model(bad), schedule=SHORT, n_samples=3, method=method, seed=0)


def test_wrong_shape_and_dim_mismatch():
    with pytest.raises(fastspec.OracleError, match="shape"):
        fastspec.sample(_model(lambda z, s: z[:, :1]), schedule=SHORT, seed=0)
    with pytest.raises(fastspec.OracleError, match="shape"):
        fastspec.sample(_model(lambda z, s: np.zeros((len(z), 3))), schedule=SHORT, seed=0)
    with pytest.raises(ValueError, match=r"expects z \(K, 2\)"):
        PointCloud(np.eye(2)).denoise(np.zeros((1, 3)), np.ones(1))


def test_model_arguments():
    with pytest.raises(TypeError, match="denoise must be callable"):
        fastspec.DiffusionModel(3, dim=2)
    with pytest.raises(ValueError, match="dim"):
        fastspec.DiffusionModel(lambda z, s: z, dim=0)
    with pytest.raises(ValueError, match="weights"):
        PointCloud(np.eye(2), weights=[1.0])
    with pytest.raises(ValueError, match="stds"):
        GaussianMixture(np.eye(2), stds=[1.0])
    with pytest.raises(ValueError, match="std"):
        Gaussian([0.0, 1.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="std"):
        Gaussian([0.0, 1.0], 0.0)


def test_schedule_validation():
    ones = np.ones(3)
    with pytest.raises(ValueError, match="common length"):
        schedules.Schedule(ones, ones, ones, ones, np.ones(2), 1.0)
    with pytest.raises(ValueError, match=r"sigma\[1\] \(step 1\) must be > 0, got -1"):
        schedules.Schedule(ones, ones, ones, ones, [1.0, -1.0, 1.0], 1.0)
    with pytest.raises(ValueError, match=r"a\[2\] \(step 2\) must be finite"):
        schedules.Schedule([1, 1, np.inf], ones, ones, ones, ones, 1.0)
    with pytest.raises(ValueError, match=r"c\[0\]"):
        schedules.Schedule(ones, ones, [-1.0, 1, 1], ones, ones, 1.0)
    with pytest.raises(ValueError, match="init_scale"):
        schedules.Schedule(ones, ones, ones, ones, ones, float("nan"))
    with pytest.raises(ValueError, match="n_steps"):
        schedules.ve(0)
    with pytest.raises(ValueError, match="sigma_min"):
        schedules.ve(10, 1.0, 2.0)
    with pytest.raises(ValueError, match="beta"):
        schedules.vp(10, 0.1, 20.0)
    with pytest.raises(ValueError, match="t_max"):
        schedules.sl(10, -1.0)
    sched = schedules.ve(5)
    with pytest.raises(AttributeError):
        sched.a = ones
    with pytest.raises(ValueError):
        sched.a[0] = 2.0


def test_zero_noise_needs_sequential():
    n = 6
    sched = schedules.Schedule(np.full(n, 0.5), np.full(n, 0.5), [0.3] * 4 + [0.0, 0.3],
                               np.ones(n), np.full(n, 0.5), 1.0)
    model = PointCloud(np.eye(2))
    with pytest.raises(ValueError, match=r"c\[4\] \(step 4\)"):
        fastspec.sample(model, schedule=sched, method="block", seed=0)
    assert fastspec.sample(model, schedule=sched, method="sequential", seed=0).samples.shape == (1, 2)
    # a noiseless last step is a function of the state before it: every method runs it
    last = schedules.Schedule(np.full(n, 0.5), np.full(n, 0.5), [0.3] * 5 + [0.0],
                              np.ones(n), np.full(n, 0.5), 1.0)
    assert fastspec.sample(model, schedule=last, method="block", seed=0).samples.shape == (1, 2)


def test_sample_arguments():
    model = PointCloud(np.eye(2))
    with pytest.raises(TypeError, match="schedule must be a fastspec.schedules.Schedule"):
        fastspec.sample(model, schedule="ve", seed=0)
    with pytest.raises(ValueError, match="order"):
        fastspec.sample(model, schedule=SHORT, order=[0, 1], seed=0)
    with pytest.raises(ValueError, match="block_size"):
        fastspec.sample(model, schedule=SHORT, block_size=0, seed=0)
    with pytest.raises(ValueError, match="method"):
        fastspec.sample(model, schedule=SHORT, method="unverified", seed=0)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 50), lo=st.floats(1e-3, 1.0), ratio=st.floats(1.5, 1e4))
def test_builtin_schedules_always_valid(n, lo, ratio):
    for sched in (schedules.ve(n, lo * ratio, lo), schedules.vp(n, 0.1, min(20.0, n * 0.5)),
                  schedules.sl(n, ratio)):
        assert sched.n_steps == n
        assert np.all(sched.c > 0) and np.all(sched.sigma > 0) and np.all(sched.s > 0)
