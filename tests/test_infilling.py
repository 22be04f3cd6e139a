"""Exact infilling (``given=``) and log-probabilities, against enumerated laws."""

import itertools

import numpy as np
import pytest

import fastspec
from fastspec._rules import CONCRETE_METHODS, UNVERIFIED
from fastspec.api import _sample
from fastspec.models import CurieWeiss, TableModel
from lawcheck import chisquare_pvalue, empirical_counts
from test_ar_exactness import FAIL_P, N_SAMPLES, PASS_P, LogitOracle

METHODS = CONCRETE_METHODS
TABLE = TableModel.from_model(CurieWeiss(n=8, J=2.0, h=0.1))
GIVEN = np.array([-1, 1, -1, -1, 0, -1, -1, 1])
FREE = np.flatnonzero(GIVEN < 0)


def _conditional_law(table, given):
    """P(x_free | pinned), indexed like the flattened table of the free positions."""
    free = np.flatnonzero(given < 0)
    configs = np.array(list(itertools.product(range(table.q), repeat=free.size)))
    full = np.repeat(given[None, :], len(configs), axis=0)
    full[:, free] = configs
    p = table.probability(full)
    return p / p.sum()


@pytest.mark.parametrize("method", METHODS)
def test_infilling_matches_the_conditional_law(method):
    res = fastspec.sample(TABLE, n_samples=N_SAMPLES, method=method, seed=41, given=GIVEN)
    assert np.all(res.samples[:, GIVEN >= 0] == GIVEN[GIVEN >= 0])
    assert np.all(res.orders[:, FREE.size:] == -1)
    assert all(set(o[:FREE.size]) == set(FREE) for o in res.orders[:50])
    counts = empirical_counts(res.samples[:, FREE], (2,) * FREE.size)
    p = chisquare_pvalue(counts, _conditional_law(TABLE, GIVEN))
    assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"
    # log_prob is the log of the conditional probability of the free positions
    law = _conditional_law(TABLE, GIVEN)
    idx = np.ravel_multi_index(tuple(res.samples[:, FREE].T), (2,) * FREE.size)
    np.testing.assert_allclose(res.log_prob, np.log(law[idx]), rtol=1e-10)


def test_unverified_infilling_fails_the_same_test():
    res = _sample(TABLE, n_samples=N_SAMPLES, method="block", seed=41, given=GIVEN,
                  _rule=UNVERIFIED)
    counts = empirical_counts(res.samples[:, FREE], (2,) * FREE.size)
    assert chisquare_pvalue(counts, _conditional_law(TABLE, GIVEN)) < FAIL_P


@pytest.mark.parametrize("method", METHODS)
def test_infilling_with_an_order_of_the_free_positions(method):
    # An inconsistent oracle: the target is the sequential chain for this order.
    oracle = LogitOracle()
    model = fastspec.ARModel(oracle, n=8, q=2)
    given = np.array([-1, 0, -1, -1, 1, -1, -1, -1])
    order = np.array([3, 0, 7, 5, 2, 6])
    configs = np.array(list(itertools.product(range(2), repeat=6)))
    ctx = np.repeat(given[None, :], len(configs), axis=0)
    law = np.ones(len(configs))
    for j, pos in enumerate(order):
        law *= oracle(ctx)[np.arange(len(configs)), pos, configs[:, j]]
        ctx[:, pos] = configs[:, j]
    res = fastspec.sample(model, n_samples=N_SAMPLES, method=method, seed=8, given=given,
                          order=order)
    assert np.all(res.orders[:, :6] == order)
    counts = empirical_counts(res.samples[:, order], (2,) * 6)
    p = chisquare_pvalue(counts, law)
    assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"
    idx = np.ravel_multi_index(tuple(res.samples[:, order].T), (2,) * 6)
    np.testing.assert_allclose(res.log_prob, np.log(law[idx]), rtol=1e-10)


def test_per_sample_given():
    given = np.tile(GIVEN, (N_SAMPLES, 1))
    given[1::2] = -1                      # odd samples: nothing pinned
    given[1::2, 0] = 1
    res = fastspec.sample(TABLE, n_samples=N_SAMPLES, method="block", seed=3, given=given)
    pinned = given >= 0
    assert np.all(res.samples[pinned] == given[pinned])
    for part in (slice(0, None, 2), slice(1, None, 2)):
        g = given[part][0]
        free = np.flatnonzero(g < 0)
        counts = empirical_counts(res.samples[part][:, free], (2,) * free.size)
        assert chisquare_pvalue(counts, _conditional_law(TABLE, g)) > PASS_P
    # sample i only depends on its own given and seed
    again = fastspec.sample(TABLE, n_samples=3, method="block", seed=3, given=given[:3])
    np.testing.assert_array_equal(again.samples, res.samples[:3])


@pytest.mark.parametrize("method", METHODS)
def test_log_prob_of_full_samples(method):
    res = fastspec.sample(TABLE, n_samples=200, method=method, seed=5)
    np.testing.assert_allclose(res.log_prob, np.log(TABLE.probability(res.samples)),
                               rtol=1e-10)


def test_fully_given_and_bad_orders():
    full = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    res = fastspec.sample(TABLE, n_samples=2, given=full, seed=0)
    assert res.stats.rounds == 0 and np.all(res.samples == full) and np.all(res.log_prob == 0)
    with pytest.raises(ValueError, match="permutation of range.8. or of the free positions"):
        fastspec.sample(TABLE, given=GIVEN, order=[0, 2, 3], seed=0)
    per_sample = np.tile(GIVEN, (2, 1))
    per_sample[1, 0] = 0
    with pytest.raises(ValueError, match="every sample must have the same free positions"):
        fastspec.sample(TABLE, n_samples=2, given=per_sample, order=FREE, seed=0)
