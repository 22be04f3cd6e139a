"""Rounds and rows are counted right, batches share rounds, seeds reproduce."""

import numpy as np
import pytest

import fastspec
from fastspec.models import CurieWeiss, MarkovChain, MixtureOfProducts, TableModel
from fastspec._rules import SPECULATIVE_METHODS


class CountingOracle:
    """Wraps an oracle and counts its calls and rows independently of the engine."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0
        self.rows = 0

    def __call__(self, ctx):
        self.calls += 1
        self.rows += ctx.shape[0]
        return self.inner(ctx)


def _counted(model):
    oracle = CountingOracle(model.marginals)
    return fastspec.ARModel(oracle, n=model.n, q=model.q), oracle


@pytest.mark.parametrize("n_samples", [1, 5])
def test_sequential_spends_exactly_n_rounds(n_samples):
    model, oracle = _counted(CurieWeiss(n=37, J=1.0))
    res = fastspec.sample(model, n_samples=n_samples, method="sequential", seed=0)
    assert res.stats.rounds == oracle.calls == 37
    assert res.stats.contexts == oracle.rows == 37 * n_samples
    assert np.all(res.stats.rounds_per_sample == 37)


@pytest.mark.parametrize("method", SPECULATIVE_METHODS)
def test_rounds_and_rows_are_counted(method):
    model, oracle = _counted(MarkovChain([[np.e**2, 1], [1, np.e**2]], n=64))
    res = fastspec.sample(model, n_samples=6, method=method, seed=3)
    assert res.stats.rounds == oracle.calls
    assert res.stats.contexts == oracle.rows == res.stats.rows_per_sample.sum()
    # samples share rounds: the call's rounds are the slowest sample's
    assert res.stats.rounds == res.stats.rounds_per_sample.max()
    assert res.stats.rounds < 64
    assert res.samples.shape == (6, 64) and res.samples.dtype == np.int64
    assert set(np.unique(res.samples)) <= {0, 1}


def test_a_batch_costs_about_the_rounds_of_one_sample():
    model = CurieWeiss(n=256, J=1.0)
    one = fastspec.sample(model, n_samples=1, method="block", seed=0).stats.rounds
    many = fastspec.sample(model, n_samples=16, method="block", seed=0)
    assert many.stats.rounds == many.stats.rounds_per_sample.max()
    assert many.stats.rounds < 3 * one
    assert many.stats.rounds < 0.3 * many.stats.rounds_per_sample.sum()


def test_explicit_order_is_honoured_and_random_orders_are_permutations():
    model = MarkovChain([[0.9, 0.1], [0.1, 0.9]], n=20)
    order = np.arange(20)[::-1]
    res = fastspec.sample(model, n_samples=3, order=order, seed=0)
    assert np.all(res.orders == order)
    res = fastspec.sample(model, n_samples=3, seed=0)
    assert all(np.array_equal(np.sort(o), np.arange(20)) for o in res.orders)
    assert not np.array_equal(res.orders[0], res.orders[1])


def test_stats_summary_prints():
    res = fastspec.sample(CurieWeiss(n=64), n_samples=2, method="block", seed=0)
    text = str(res.stats)
    assert "rounds" in text and "oracle rows" in text and "block" in text
    assert res.stats.block_sizes.size == res.stats.accepted.size > 0
    assert 0 <= res.stats.mean_accepted <= res.stats.mean_block_size
    assert res.stats.method == "block"
    assert fastspec.sample(CurieWeiss(n=8), method="auto", seed=0).stats.method == "block"


def test_reference_oracles_match_enumeration():
    # Each structured oracle equals the marginals of its own enumerated joint.
    rng = np.random.default_rng(0)
    models = [CurieWeiss(n=7, J=1.3, h=-0.2),
              MarkovChain([[3.0, 1.0, 0.2], [1.0, 2.0, 1.0], [0.1, 1.0, 4.0]], n=5),
              MixtureOfProducts.random(n=5, q=3, n_components=3, seed=2)]
    for model in models:
        table = TableModel.from_model(model)
        ctx = rng.integers(-1, model.q, size=(50, model.n))
        ctx[rng.random(ctx.shape) < 0.5] = -1
        free = ctx < 0
        np.testing.assert_allclose(model.query(ctx)[free], table.query(ctx)[free], atol=1e-10)


class RecordingOracle(CountingOracle):
    """Also keeps a copy of every context asked."""

    def __init__(self, inner):
        super().__init__(inner)
        self.asked = []

    def __call__(self, ctx):
        self.asked.append(ctx.copy())
        return super().__call__(ctx)


def test_sequential_asks_what_a_plain_ancestral_loop_asks():
    model = MarkovChain([[3.0, 1.0], [1.0, 3.0]], n=12)
    oracle = RecordingOracle(model.marginals)
    res = fastspec.sample(fastspec.ARModel(oracle, n=12, q=2), n_samples=4,
                          method="sequential", seed=1)
    assert len(oracle.asked) == 12
    for t, ctx in enumerate(oracle.asked):       # round t: x with its first t positions pinned
        expect = np.full((4, 12), -1)
        for s in range(4):
            expect[s, res.orders[s, :t]] = res.samples[s, res.orders[s, :t]]
        np.testing.assert_array_equal(ctx, expect)


@pytest.mark.parametrize("method", ["sequential", "token", "block"])
def test_no_wasted_rows(method):
    # No context without a free position is ever asked, and a one-position
    # model costs one round, as sequential sampling does.
    model = MixtureOfProducts.random(n=20, q=3, seed=4)
    oracle = RecordingOracle(model.marginals)
    fastspec.sample(fastspec.ARModel(oracle, n=20, q=3), n_samples=5, method=method, seed=2)
    assert all((ctx < 0).any(axis=1).all() for ctx in oracle.asked)
    one = fastspec.ARModel(lambda ctx: np.full(ctx.shape + (2,), 0.5), n=1, q=2)
    assert fastspec.sample(one, n_samples=3, method=method, seed=0).stats.rounds == 1
