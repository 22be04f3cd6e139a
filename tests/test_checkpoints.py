"""Checkpoint windows and the block limit: what bounds a large vocabulary's memory and work.

When a block's draft rows would ask for more than ``WINDOW_BYTES`` of windows,
only checkpoint rows ask for one and a block cut at draft ``i`` takes its next
draft from the latest checkpoint at or before ``i`` (docs/ALGORITHMS.md,
"Checkpoint windows"); ``BLOCK_BYTES`` caps the "auto" block length. Both read
only the past, so the law stays exact: tested here against enumerated laws with
the coarsest checkpoints (one per block), with a negative control, and for
samples that do not depend on ``max_rows`` or on the positions protocol.
"""

import numpy as np
import pytest

import fastspec
import fastspec.ar.sampler as ar_sampler
from fastspec._rules import ACCEPT, UNVERIFIED
from fastspec.api import _sample
from fastspec.models import MixtureOfProducts
from lawcheck import chisquare_pvalue, empirical_counts
from test_ar_exactness import (FAIL_P, N_SAMPLES, PASS_P, LogitOracle, _markov_table,
                               _strong_curie_weiss)
from test_positions import positions_oracle


@pytest.fixture
def one_checkpoint(monkeypatch):
    """A window budget of one position: every block reads its next draft from its first row
    (or row k), the stalest draft the rule allows."""
    monkeypatch.setattr(ar_sampler, "WINDOW_BYTES", 1)


def _spacings(model, **kw):
    """The checkpoint spacing of every slot of every round of one call."""
    seen = []
    plan = ar_sampler.ARSampler.plan

    def spy(self):
        rows = plan(self)
        if self._r is not None and rows:
            seen.append(self._r.spacing.copy())
        return rows
    ar_sampler.ARSampler.plan = spy
    try:
        res = fastspec.sample(model, **kw)
    finally:
        ar_sampler.ARSampler.plan = plan
    return res, np.concatenate(seen)


@pytest.mark.parametrize("table_of", [_strong_curie_weiss, _markov_table])
@pytest.mark.parametrize("method", ["token", "block"])
def test_checkpoint_drafts_are_exact(table_of, method, one_checkpoint):
    table = table_of()
    res, spacing = _spacings(table, n_samples=N_SAMPLES, method=method, seed=31, block_size=5)
    assert spacing.max() == 5                     # one checkpoint for the block's draft rows
    p = chisquare_pvalue(empirical_counts(res.samples, table.joint.shape), table.joint.reshape(-1))
    assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"


def test_checkpoint_drafts_without_verification_fail(one_checkpoint):
    table = _markov_table()
    res = _sample(table, n_samples=N_SAMPLES, method="block", seed=31, block_size=5,
                  _rule=UNVERIFIED)
    p = chisquare_pvalue(empirical_counts(res.samples, table.joint.shape), table.joint.reshape(-1))
    assert p < FAIL_P, f"the negative control passed: p = {p:.3g}"


def test_checkpoint_drafts_follow_an_inconsistent_oracle(one_checkpoint):
    # The target is the sequential chain of the given order; a checkpoint's marginals are
    # the oracle's at a smaller context, which is no conditional of that chain: still exact.
    oracle = LogitOracle()
    model = fastspec.ARModel(oracle, n=oracle.n, q=oracle.q)
    order = np.array([3, 0, 7, 1, 5, 2, 6, 4])
    res = fastspec.sample(model, n_samples=N_SAMPLES, method="block", seed=37, order=order,
                          block_size=4)
    p = chisquare_pvalue(empirical_counts(res.samples, (2,) * 8), oracle.chain_law(order))
    assert p > PASS_P, f"chi-square p = {p:.3g}"


@pytest.mark.parametrize("max_rows", [None, 2])
@pytest.mark.parametrize("method", ["token", "block"])
def test_a_cut_block_drafts_from_its_checkpoint(method, max_rows, monkeypatch):
    # After a block cut at draft i, the next draft must be the oracle's marginals at the
    # context of the checkpoint c <= i (the sample before the round with W_0 .. W_{c-1}
    # pinned), at the order indices after i: checked against the oracle itself, in one call
    # and across calls (the window then waits in ckpt_win).
    monkeypatch.setattr(ar_sampler, "WINDOW_BYTES", 8 * 4 * 6)        # 6 positions at q = 4
    model = MixtureOfProducts.random(40, q=4, n_components=3, seed=6)
    checked = []
    finish = ar_sampler.ARSampler.finish

    def spy(self, where):
        r, before = self._r, self.x.copy()
        finish(self, where)
        C = self.draft.shape[1]
        for a, s in enumerate(r.samples):
            new_t = self.progress_t[s]
            tau = new_t - r.t[a] - 1
            if r.istate[a, ACCEPT] == 1 or new_t >= self.n_free[s]:
                continue                              # kept whole, or nothing left to draft
            c = r.first_row[a] + (tau - r.first_row[a]) // r.spacing[a] * r.spacing[a]
            context = before[s].copy()
            context[self.orders[s, r.t[a]:r.t[a] + c]] = r.W[a, :c]
            want = model.marginals(context[None])[0]
            length = min(self.sizer.k[s], self.n_free[s] - new_t)
            o = new_t + np.arange(length)
            np.testing.assert_allclose(self.draft[s, o % C], want[self.orders[s, o]],
                                       rtol=1e-12)
            checked.append(c < tau)
    monkeypatch.setattr(ar_sampler.ARSampler, "finish", spy)
    fastspec.sample(model, n_samples=16, method=method, seed=5, max_rows=max_rows)
    assert sum(checked) >= 10                   # cuts past their checkpoint were checked


@pytest.mark.parametrize("method", ["token", "block", "srs"])
def test_checkpoint_samples_do_not_depend_on_max_rows(method, monkeypatch):
    # A round split into calls keeps each checkpoint's window until the rows it covers
    # are read (ckpt_win): the same samples whatever the split.
    monkeypatch.setattr(ar_sampler, "WINDOW_BYTES", 8 * 4 * 12)     # 12 positions at q = 4
    model = MixtureOfProducts.random(40, q=4, n_components=3, seed=2)
    first, spacing = _spacings(model, n_samples=5, method=method, seed=9)
    if method != "srs":
        assert spacing.max() > 1
    for max_rows in (1, 2, 5, "auto"):
        res = fastspec.sample(model, n_samples=5, method=method, seed=9, max_rows=max_rows)
        np.testing.assert_array_equal(res.samples, first.samples)
        np.testing.assert_array_equal(res.log_prob, first.log_prob)


def test_checkpoints_give_the_dense_samples_and_fewer_positions(monkeypatch):
    n, q = 24, 3
    oracle = LogitOracle(n=n, q=q, seed=8)
    dense = fastspec.ARModel(oracle, n=n, q=q)
    sparse = fastspec.ARModel(positions_oracle(oracle, n, q, []), n=n, q=q, positions=True)
    every_row = fastspec.sample(sparse, n_samples=4, method="block", seed=3)
    monkeypatch.setattr(ar_sampler, "WINDOW_BYTES", 8 * q * 10)      # 10 positions
    a = fastspec.sample(dense, n_samples=4, method="block", seed=3, max_rows=4)
    b, spacing = _spacings(sparse, n_samples=4, method="block", seed=3, max_rows=4)
    assert spacing.max() > 1
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.log_prob, b.log_prob)
    assert b.stats.positions < every_row.stats.positions


def test_block_limit_caps_auto_blocks_only(monkeypatch):
    q = 3
    monkeypatch.setattr(ar_sampler, "BLOCK_BYTES", 8 * q * 4)       # blocks of at most 4
    model = MixtureOfProducts.random(64, q=q, n_components=2, seed=4)
    for method in ("token", "block", "srs"):
        res = fastspec.sample(model, n_samples=3, method=method, seed=1)
        assert res.stats.block_sizes.max() <= 4, method
    fixed = fastspec.sample(model, n_samples=3, method="block", seed=1, block_size=9)
    assert fixed.stats.block_sizes.max() == 9


def test_block_limit_is_exact(monkeypatch):
    table = _strong_curie_weiss()
    monkeypatch.setattr(ar_sampler, "BLOCK_BYTES", 8 * 2 * 2)       # blocks of at most 2
    res = fastspec.sample(table, n_samples=N_SAMPLES, method="block", seed=41)
    assert res.stats.block_sizes.max() <= 2
    p = chisquare_pvalue(empirical_counts(res.samples, table.joint.shape), table.joint.reshape(-1))
    assert p > PASS_P, f"chi-square p = {p:.3g}"


@pytest.mark.parametrize("method", ["token", "block"])
def test_checkpoint_twins_agree(method, monkeypatch):
    # The parallel twins keep each slot's checkpoint windows as the serial ones do.
    monkeypatch.setattr(ar_sampler, "WINDOW_BYTES", 8 * 4 * 6)
    model = MixtureOfProducts.random(60, q=4, n_components=3, seed=6)
    for max_rows in (None, 3):
        a = _sample(model, n_samples=12, method=method, seed=4, max_rows=max_rows,
                    _parallel=False)
        b = _sample(model, n_samples=12, method=method, seed=4, max_rows=max_rows,
                    _parallel=True)
        np.testing.assert_array_equal(a.samples, b.samples)
        np.testing.assert_array_equal(a.log_prob, b.log_prob)
