"""The shipped numpy models run their matrix products with one BLAS thread (fastspec._threads).

OpenBLAS's threads and numba's oversubscribed the cores: the text demo's oracle took
147-162 s with OpenBLAS's default threads against 11-12 s with one, on the loaded 2-core
machine (docs/BENCHMARKS.md, "Threads").
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from fastspec.models import pretrained
from fastspec.models.neural import NeuralAR, NeuralDenoiser


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def two_blas_threads():
    from threadpoolctl import threadpool_limits
    if not _blas_threads():
        pytest.skip("numpy has no BLAS threadpoolctl can see")
    with threadpool_limits(2, user_api="blas"):
        yield


class _Spy:
    """Stands in for a network layer and records the BLAS threads it runs with."""

    def __init__(self, layer):
        self.layer, self.seen = layer, []

    def __getattr__(self, name):
        return getattr(self.layer, name)

    def __call__(self, *args):
        self.seen += _blas_threads()
        return self.layer(*args)


def test_forward_passes_use_one_blas_thread_and_restore_it(two_blas_threads):
    ar = NeuralAR(8, hidden=16, layers=1)
    dn = NeuralDenoiser(4, hidden=16, layers=1)
    text = pretrained.text_mlm()
    spies = [_Spy(ar.trunk), _Spy(dn.trunk), _Spy(text.head)]
    ar.trunk, dn.trunk, text.head = spies
    ar.marginals(np.full((3, 8), -1))
    dn.denoise(np.zeros((3, 4)), np.ones(3))
    text.marginals(np.full((2, text.n), -1))
    assert all(spy.seen and set(spy.seen) == {1} for spy in spies), [s.seen for s in spies]
    assert set(_blas_threads()) == {2}                # the caller's setting is back
