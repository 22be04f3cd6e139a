"""Promises of README.md that no other test held to their stated value."""

import numpy as np
import pytest

import fastspec
from fastspec.models import CurieWeiss, Gaussian, pretrained
from fastspec._rules import SPECULATIVE_METHODS


class _Counting:
    def __init__(self, fn):
        self.fn, self.rows = fn, []

    def __call__(self, x, *args):
        self.rows.append(len(x))
        return self.fn(x, *args)


@pytest.mark.parametrize("method", SPECULATIVE_METHODS)
def test_max_rows_bounds_every_call_and_keeps_rounds_and_samples(method):
    """README: "max_rows=64: at most 64 rows per oracle call; a bigger round is sent as
    several calls (still one round; res.stats.oracle_calls counts them)"."""
    cw = CurieWeiss(n=48, J=1.0)
    whole = fastspec.sample(fastspec.ARModel(_Counting(cw.marginals), n=48, q=2),
                            n_samples=6, method=method, seed=4)
    oracle = _Counting(cw.marginals)
    cut = fastspec.sample(fastspec.ARModel(oracle, n=48, q=2), n_samples=6, method=method,
                          seed=4, max_rows=5)
    assert max(oracle.rows) <= 5 and len(oracle.rows) == cut.stats.oracle_calls
    assert cut.stats.oracle_calls > cut.stats.rounds == whole.stats.rounds
    np.testing.assert_array_equal(cut.samples, whole.samples)
    g = Gaussian(np.zeros(2), 1.0)
    den = _Counting(g.denoise)
    res = fastspec.sample(fastspec.DiffusionModel(den, dim=2), schedule=fastspec.schedules.ve(40),
                          n_samples=3, method=method, seed=1, max_rows=4)
    assert max(den.rows) <= 4 and len(den.rows) == res.stats.oracle_calls


def test_shipped_weights_are_the_stated_size():
    """README "Trained models": 4.3 MB of weights."""
    from pathlib import Path
    folder = Path(pretrained.__file__).parent / "weights"
    total = sum((folder / f).stat().st_size for f in pretrained.WEIGHT_FILES.values())
    assert round(total / 1e6, 1) == 4.3
