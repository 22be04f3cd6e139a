"""The block-size rules: the default (fewest rounds) and the cost-aware one (row_cost)."""

import math

import numpy as np
import pytest

import fastspec
from fastspec._blocksize import BlockSizer
from fastspec.models import CurieWeiss


def _run(sizer, p_cut, rounds, seed=0):
    """Feed the sizer blocks whose first rejection is Geometric(p_cut); return its k's."""
    rng = np.random.default_rng(seed)
    ks = []
    for _ in range(rounds):
        k = sizer.propose(10 ** 9)
        accepted = min(int(rng.geometric(p_cut)) - 1, k)
        sizer.update(k, accepted)
        ks.append(k)
    return np.array(ks)


def _optimal_k(p_cut, row_cost, share=1.0):
    j = np.arange(1, 5000)
    advance = np.cumsum((1.0 - p_cut) ** np.arange(j.size))   # E[min(A + 1, j)]
    return int(j[np.argmax(advance / (share + row_cost * j))])


def test_default_rule_starts_at_sqrt_and_doubles_after_a_whole_block():
    s = BlockSizer("auto", 1000)
    assert s.propose(1000) == math.ceil(math.sqrt(1000))
    s.update(32, 32)
    assert s.propose(1000) == 64
    s.update(64, 3)                                      # cut: 2.5 x advance 4
    assert s.propose(1000) == 10


@pytest.mark.parametrize("row_cost, p_cut", [(0.01, 0.03), (0.2, 0.03), (0.2, 0.1), (5.0, 0.1)])
def test_cost_aware_rule_finds_the_optimal_block(row_cost, p_cut):
    ks = _run(BlockSizer("auto", 1024, row_cost=row_cost), p_cut, rounds=400)
    best = _optimal_k(p_cut, row_cost)
    # the estimate is noisy (older blocks fade), so ask for the right scale
    assert 0.6 * best <= np.median(ks[100:]) <= 1.5 * best + 1, (np.median(ks[100:]), best)


def test_cost_aware_rule_grows_at_most_twofold_and_shrinks_with_many_samples():
    ks = _run(BlockSizer("auto", 10 ** 6, row_cost=1e-4), p_cut=1e-4, rounds=30)
    assert np.all(ks[1:] <= 2 * ks[:-1])
    # 1000 samples share each round's fixed cost: rows dominate, blocks stay short
    shared = _run(BlockSizer("auto", 1024, row_cost=0.2, share=1e-3), p_cut=0.1, rounds=200)
    alone = _run(BlockSizer("auto", 1024, row_cost=0.2, share=1.0), p_cut=0.1, rounds=200)
    assert np.median(shared[50:]) < np.median(alone[50:])


def test_row_cost_trades_rounds_for_rows():
    model = CurieWeiss(n=512, J=1.0)
    default = fastspec.sample(model, n_samples=8, seed=3).stats
    cheap_rows = fastspec.sample(model, n_samples=8, seed=3, row_cost=0.2).stats
    assert cheap_rows.rounds > default.rounds
    assert np.mean(cheap_rows.rows_per_sample) < np.mean(default.rows_per_sample)


@pytest.mark.parametrize("kwargs, message", [
    (dict(row_cost=-1.0), "finite float > 0, got -1.0"),
    (dict(row_cost=float("nan")), "finite float > 0, got nan"),
    (dict(row_cost="0.1"), "positive float, got '0.1'"),
    (dict(row_cost=0.1, method="srs"), "method 'srs' does not use it"),
    (dict(row_cost=0.1, method="sequential"), "method 'sequential' does not use it"),
    (dict(row_cost=0.1, block_size=8), 'block_size must be "auto", got 8'),
])
def test_row_cost_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fastspec.sample(CurieWeiss(n=16), seed=0, **kwargs)
