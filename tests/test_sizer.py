"""The block-size rules: the default (fewest rounds) and the cost-aware one (row_cost)."""

import math

import numpy as np
import pytest

import fastspec
from fastspec._sizer import COST, BlockSizer, block_after, update
from fastspec.models import CurieWeiss

ONE = np.zeros(1, dtype=np.int64)   # the sizer's only sample


def _propose(sizer, remaining=10 ** 9):
    return int(sizer.propose(ONE, np.array([remaining]))[0])


def _update(sizer, k, accepted):
    sizer.reserve(np.array([k]))
    update(*sizer.arrays(), 0, k, accepted)


def _run(sizer, p_cut, rounds, seed=0):
    """Feed the sizer blocks whose first rejection is Geometric(p_cut); return its k's."""
    rng = np.random.default_rng(seed)
    ks = []
    for _ in range(rounds):
        k = _propose(sizer)
        accepted = min(int(rng.geometric(p_cut)) - 1, k)
        _update(sizer, k, accepted)
        ks.append(k)
    return np.array(ks)


def _optimal_k(p_cut, row_cost):
    j = np.arange(1, 5000)
    advance = np.cumsum((1.0 - p_cut) ** np.arange(j.size))   # E[min(A + 1, j)]
    return int(j[np.argmax(advance / (1.0 + row_cost * j))])


def test_default_rule_starts_at_sqrt_and_doubles_after_a_whole_block():
    s = BlockSizer("auto", [1000])
    assert _propose(s, 1000) == math.ceil(math.sqrt(1000))
    _update(s, 32, 32)
    assert _propose(s, 1000) == 64
    _update(s, 64, 3)                                    # cut: 2.5 x advance 4
    assert _propose(s, 1000) == 10
    assert _propose(s, 7) == 7                           # never more than remains


@pytest.mark.parametrize("row_cost, p_cut", [(0.01, 0.03), (0.2, 0.03), (0.2, 0.1), (5.0, 0.1)])
def test_cost_aware_rule_finds_the_optimal_block(row_cost, p_cut):
    ks = _run(BlockSizer("auto", [1024], row_cost=row_cost), p_cut, rounds=400)
    best = _optimal_k(p_cut, row_cost)
    # the estimate is noisy (older blocks fade), so ask for the right scale
    assert 0.6 * best <= np.median(ks[100:]) <= 1.5 * best + 1, (np.median(ks[100:]), best)


def test_cost_aware_rule_grows_at_most_twofold_and_shortens_with_dearer_rows():
    ks = _run(BlockSizer("auto", [10 ** 6], row_cost=1e-4), p_cut=1e-4, rounds=30)
    assert np.all(ks[1:] <= 2 * ks[:-1])
    # rows dear against a round's fixed cost (e.g. many samples sharing each call): short blocks
    dear = _run(BlockSizer("auto", [1024], row_cost=20.0), p_cut=0.1, rounds=200)
    cheap = _run(BlockSizer("auto", [1024], row_cost=0.2), p_cut=0.1, rounds=200)
    assert np.median(dear[50:]) < np.median(cheap[50:])


@pytest.mark.parametrize("kwargs", [dict(), dict(row_cost=0.2), dict(block_size=5)])
def test_every_rule_bounds_its_next_block(kwargs):
    # The samplers keep the marginals of the next max_next positions: never fewer
    # than the rule then proposes.
    s = BlockSizer(kwargs.get("block_size", "auto"), [4096], row_cost=kwargs.get("row_cost"))
    rng = np.random.default_rng(1)
    for _ in range(300):
        k = _propose(s)
        bound = int(s.max_next(ONE, np.array([k]))[0])
        _update(s, k, int(rng.integers(0, k + 1)))
        assert _propose(s) <= bound


@pytest.mark.parametrize("kwargs", [dict(), dict(halving=True), dict(block_size=5),
                                    dict(row_cost=0.2)])
def test_block_after_is_what_update_sets(kwargs):
    # The planner asks each row for the window of the block block_after predicts
    # should the block stop there; update must then set exactly that block.
    s = BlockSizer(kwargs.get("block_size", "auto"), [4096], row_cost=kwargs.get("row_cost"),
                   halving=kwargs.get("halving", False))
    rng = np.random.default_rng(2)
    for _ in range(300):
        k = _propose(s, 4096) if rng.random() < 0.9 else 0  # k = 0: a sample's first round
        accepted = int(rng.integers(0, k + 1))
        mode, limit, _, k_state, mean = s.arrays()[:5]
        predicted = block_after(mode, limit, k_state, mean, 0, k, accepted)
        _update(s, k, accepted)
        if s.mode == COST and k > 0:
            assert predicted == -1                           # not known in advance
        else:
            assert predicted == (s.limit if kwargs.get("block_size") else s.k[0])


@pytest.mark.parametrize("kwargs", [dict(), dict(halving=True), dict(row_cost=0.2)])
def test_limit_caps_every_auto_rule(kwargs):
    # A sizer with a limit never proposes, predicts or bounds a block past it, whatever
    # the kept lengths; without one the same history goes past it.
    capped = BlockSizer("auto", [4096], limit=9, **kwargs)
    free = BlockSizer("auto", [4096], **kwargs)
    assert capped.k[0] == 9 and free.k[0] == 64              # ceil(sqrt(4096)), capped
    rng = np.random.default_rng(4)
    longest = 0
    for _ in range(300):
        for s in (capped, free):
            k = _propose(s, 4096)
            accepted = k if rng.random() < 0.7 else int(rng.integers(0, k))
            mode, limit, _, k_state, mean = s.arrays()[:5]
            bound = int(s.max_next(ONE, np.array([k]))[0])
            after = block_after(mode, limit, k_state, mean, 0, k, accepted)
            _update(s, k, accepted)
            if s is capped:
                assert max(k, bound, after, int(s.k[0])) <= 9
            else:
                longest = max(longest, k)
    assert longest > 9


def test_row_cost_trades_rounds_for_rows():
    model = CurieWeiss(n=512, J=1.0)
    default = fastspec.sample(model, n_samples=8, seed=3).stats
    cheap_rows = fastspec.sample(model, n_samples=8, seed=3, row_cost=0.2).stats
    assert cheap_rows.rounds > default.rounds
    assert np.mean(cheap_rows.rows_per_sample) < np.mean(default.rows_per_sample)


@pytest.mark.parametrize("kwargs, message", [
    (dict(row_cost=-1.0), "finite float > 0, got -1.0"),
    (dict(row_cost=float("nan")), "finite float > 0, got nan"),
    (dict(row_cost=0.1, method="srs"), "method 'srs' does not use it"),
    (dict(row_cost=0.1, method="sequential"), "method 'sequential' does not use it"),
    (dict(row_cost=0.1, block_size=8), 'block_size must be "auto", got 8'),
])
def test_row_cost_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fastspec.sample(CurieWeiss(n=16), seed=0, **kwargs)


def test_row_cost_of_a_wrong_type():
    with pytest.raises(TypeError, match="row_cost must be None or a positive float, got '0.1'"):
        fastspec.sample(CurieWeiss(n=16), seed=0, row_cost="0.1")
