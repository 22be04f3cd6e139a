"""Every AR method reproduces an enumerated law exactly (docs/ALGORITHMS.md, section 1).

Each test draws 20,000 samples with a fixed seed and runs a chi-square test
(small cells pooled) against the enumerated law; the negative control, drafts
kept without verification, must fail the very same test.
"""

import warnings

import numpy as np
import pytest

import fastspec
from fastspec._rules import CONCRETE_METHODS, UNVERIFIED
from fastspec.api import _sample
from fastspec.models import CurieWeiss, MarkovChain, TableModel
from lawcheck import chisquare_pvalue, empirical_counts

N_SAMPLES = 20_000
METHODS = CONCRETE_METHODS
PASS_P = 1e-3  # fixed seeds: a correct sampler fails this with probability 1e-3
FAIL_P = 1e-6


def _strong_curie_weiss():
    # q^n = 256; J = 2 is past the critical point: two well-separated modes.
    return TableModel.from_model(CurieWeiss(n=8, J=2.0, h=0.1))


def _markov_table():
    # q^n = 729; a sticky 3-state chain with a non-stationary start.
    chain = MarkovChain([[6.0, 1.0, 0.5], [1.0, 6.0, 1.0], [0.5, 1.0, 6.0]],
                        initial=[0.6, 0.3, 0.1], n=6)
    return TableModel.from_model(chain)


TABLES = {"curie_weiss_J2": _strong_curie_weiss, "markov_q3": _markov_table}


@pytest.fixture(scope="module", params=sorted(TABLES))
def table(request):
    return TABLES[request.param]()


@pytest.mark.parametrize("method", METHODS)
def test_random_order_matches_joint(table, method):
    res = fastspec.sample(table, n_samples=N_SAMPLES, method=method, seed=2024)
    counts = empirical_counts(res.samples, table.joint.shape)
    p = chisquare_pvalue(counts, table.joint.reshape(-1))
    assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"


def test_srs_without_the_residual_test_fails(table, monkeypatch):
    # Keeping every residual proposal, untested, gives nu min(1, mu/nu) + (1 - acc) mu.
    from fastspec.ar.srs import ARSrsSampler
    monkeypatch.setattr(ARSrsSampler, "_log_ratio", lambda self, wave, jobs: np.full(jobs.size, np.inf))
    res = fastspec.sample(table, n_samples=N_SAMPLES, method="srs", seed=2024)
    p = chisquare_pvalue(empirical_counts(res.samples, table.joint.shape), table.joint.reshape(-1))
    assert p < FAIL_P, f"the srs negative control passed: p = {p:.3g}"


def test_unverified_drafts_fail_the_same_test(table):
    res = _sample(table, n_samples=N_SAMPLES, method="block", seed=2024, _rule=UNVERIFIED)
    counts = empirical_counts(res.samples, table.joint.shape)
    p = chisquare_pvalue(counts, table.joint.reshape(-1))
    assert p < FAIL_P, f"the negative control passed: p = {p:.3g}"


# -- an inconsistent oracle: the target is the sequential chain of a fixed order ----------

class LogitOracle:
    """Marginals softmax(theta_i + sum_j W[i, j, x_j]) over pinned j: a valid
    oracle that is the conditional of no joint law, so only the sequential
    chain for the given order defines the target."""

    def __init__(self, n=8, q=2, seed=5):
        rng = np.random.default_rng(seed)
        self.theta = rng.normal(0, 1.0, size=(n, q))
        self.weights = rng.normal(0, 1.5, size=(n, n, q, q))
        self.n, self.q = n, q

    def __call__(self, ctx):
        K, n = ctx.shape
        logits = np.broadcast_to(self.theta, (K, n, self.q)).copy()
        for j in range(n):
            pinned = ctx[:, j] >= 0
            if pinned.any():
                logits[pinned] += self.weights[:, j, ctx[pinned, j], :].transpose(1, 0, 2)
        logits -= logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=-1, keepdims=True)

    def chain_law(self, order):
        shape = (self.q,) * self.n
        configs = np.array(np.unravel_index(np.arange(self.q ** self.n), shape)).T
        law = np.ones(len(configs))
        ctx = np.full_like(configs, -1)
        for pos in order:
            law *= self(ctx)[np.arange(len(configs)), pos, configs[:, pos]]
            ctx[:, pos] = configs[:, pos]
        return law


@pytest.mark.parametrize("method", METHODS)
def test_inconsistent_oracle_matches_sequential_chain(method):
    oracle = LogitOracle()
    model = fastspec.ARModel(oracle, n=oracle.n, q=oracle.q)
    order = np.array([3, 0, 7, 1, 5, 2, 6, 4])
    law = oracle.chain_law(order)
    res = fastspec.sample(model, n_samples=N_SAMPLES, method=method, seed=7, order=order)
    assert np.all(res.orders == order)
    p = chisquare_pvalue(empirical_counts(res.samples, (2,) * 8), law)
    assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"
    if method == "block":
        wrong = _sample(model, n_samples=N_SAMPLES, method="block", seed=7, order=order,
                        _rule=UNVERIFIED)
        p_wrong = chisquare_pvalue(empirical_counts(wrong.samples, (2,) * 8), law)
        assert p_wrong < FAIL_P


@pytest.mark.parametrize("block_size", [1, 3, 8])
def test_fixed_block_sizes_are_exact(block_size):
    table = _strong_curie_weiss()
    res = fastspec.sample(table, n_samples=N_SAMPLES, method="block", seed=11,
                          block_size=block_size)
    assert np.all(res.stats.block_sizes <= block_size)
    p = chisquare_pvalue(empirical_counts(res.samples, table.joint.shape), table.joint.reshape(-1))
    assert p > PASS_P


@pytest.mark.parametrize("method", ["token", "block"])
def test_cost_aware_block_sizes_are_exact(method):
    # row_cost sizes each block from past accepted lengths; a row costing a fifth
    # of the round's fixed cost keeps blocks of a few positions, varying.
    table = _strong_curie_weiss()
    res = fastspec.sample(table, n_samples=N_SAMPLES, method=method, seed=13, row_cost=0.2)
    assert np.unique(res.stats.block_sizes).size >= 3
    p = chisquare_pvalue(empirical_counts(res.samples, table.joint.shape), table.joint.reshape(-1))
    assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"
    if method == "block":      # negative control: the same sizing without verification
        wrong = _sample(table, n_samples=N_SAMPLES, method="block", seed=13, row_cost=0.2,
                        _rule=UNVERIFIED)
        p_wrong = chisquare_pvalue(empirical_counts(wrong.samples, table.joint.shape),
                                   table.joint.reshape(-1))
        assert p_wrong < FAIL_P, f"the negative control passed: p = {p_wrong:.3g}"


# -- a legitimate zero: the draft gives a symbol probability 0, the target does not -------------

def _zero_draft_oracle(ctx):
    """n = 2, q = 3: with nothing pinned x_1 = 2 has probability 0; given x_0 it has 0.1."""
    out = np.empty(ctx.shape + (3,))
    out[:, 0] = [0.5, 0.3, 0.2]
    out[:, 1] = np.where((ctx[:, 0] >= 0)[:, None], [0.5, 0.4, 0.1], [0.6, 0.4, 0.0])
    return out


@pytest.mark.parametrize("method", METHODS)
def test_draft_zero_where_target_is_positive_warns_nothing(method):
    """Field report: ``method="srs"`` raised "divide by zero encountered in log" under
    warnings-as-errors (the suite runs so, pyproject.toml). The law was right and must stay so."""
    model = fastspec.ARModel(_zero_draft_oracle, n=2, q=3)
    law = np.outer([0.5, 0.3, 0.2], [0.5, 0.4, 0.1]).ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fastspec.sample(model, n_samples=N_SAMPLES, method=method, seed=3,
                              order=np.array([0, 1]), block_size=2)
    counts = empirical_counts(res.samples, (3, 3))
    assert counts[2::3].sum() > 0.08 * N_SAMPLES          # the draft's zero was proposed against
    p = chisquare_pvalue(counts, law)
    assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"
