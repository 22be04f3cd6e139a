"""A process forked after the parallel (OpenMP) kernels ran draws the parent's samples.

numba's GNU OpenMP layer does not survive ``fork``: without fastspec's guard a
child forked by multiprocessing after the parent ran a parallel region is
killed on its first one (fastspec._jit, "Fork safety"). The report drew 128
samples; 16 keep the test short, and any parallel region in the parent is enough.
"""

import multiprocessing
import sys

import numpy as np
import pytest

import fastspec
import fastspec._jit as jit
from fastspec.models import CurieWeiss

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="fork and GNU OpenMP: the Linux case")


def _draw(seed):
    res = fastspec.sample(CurieWeiss(n=1024), n_samples=16, method="block", seed=seed)
    return res.samples


def test_forked_child_returns_the_parents_samples(monkeypatch):
    monkeypatch.setattr(jit, "PARALLEL_MIN_WORK", 0)   # the parent surely runs parallel regions
    parent = _draw(7)
    import numba
    layer = numba.threading_layer()
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply_async(_draw, (7,)).get(timeout=120)
        forked_serial = pool.apply_async(_forked_state).get(timeout=60)
    np.testing.assert_array_equal(child, parent)
    # the guard engages exactly where it is needed: after OpenMP, not after workqueue/TBB
    assert forked_serial == (layer == "omp")


def _forked_state():
    return jit.FORKED_AFTER_OPENMP
