"""``order="confidence"`` reproduces the confidence sequential sampler's law exactly.

The law is enumerated by recursion over contexts (each step: the most confident
free position, ties within ``TIE`` to the lowest index, its symbol from its
marginal), for consistent oracles (a table, a mixture of products) and
inconsistent ones (conditionals of no joint law); 20,000 samples per case, a
chi-square test with small cells pooled. Negative controls: drafts kept
unverified, and the block rule with the drafted positions taken without
checking, must fail the same test.
"""

import numba
import numpy as np
import pytest

import fastspec
from fastspec._rules import UNVERIFIED
from fastspec.api import _sample
from fastspec.ar.confidence import TIE, UNCHECKED_POSITIONS
from fastspec.models import MixtureOfProducts, TableModel
from lawcheck import chisquare_pvalue, empirical_counts
from test_ar_exactness import LogitOracle    # conditionals of no joint law

N_SAMPLES = 20_000
PASS_P = 1e-3
FAIL_P = 1e-6
METHODS = ["sequential", "token", "block"]


def confidence_law(marginals, n, q, given=None, policy=None):
    """The confidence sampler's law on ``q**n`` configurations, by recursion over contexts
    (``policy(marginals (F, q), positions (F,))`` instead of the confidence rule if given)."""
    law = np.zeros(q ** n)
    start = np.full(n, -1) if given is None else np.asarray(given)

    def visit(ctx, prob):
        free = np.flatnonzero(ctx < 0)
        if free.size == 0:
            law[np.ravel_multi_index(tuple(ctx), (q,) * n)] += prob
            return
        p = np.asarray(marginals(ctx[None].astype(np.int64)), dtype=np.float64)[0]
        conf = np.full(n, -1.0)
        totals = np.ones(n)
        for i in free:
            totals[i] = sum(float(v) for v in p[i])      # summed in symbol order, as the kernels
            conf[i] = p[i].max() / totals[i]
        best = int(np.flatnonzero((conf >= 0) & (conf >= conf.max() - TIE))[0])
        if policy is not None:
            best = int(policy(p[free] / totals[free, None], free.astype(np.int64)))
        for y in range(q):
            if p[best, y] > 0:
                nxt = ctx.copy()
                nxt[best] = y
                visit(nxt, prob * p[best, y] / totals[best])

    visit(start.copy(), 1.0)
    return law


def tied_oracle(ctx):
    """n = 3, q = 2, not from a joint: every free position has the same marginal, set by the
    number of ones pinned, so every step is an exact tie (the lowest free index is drawn)."""
    ones = (ctx == 1).sum(axis=1)
    p1 = np.array([0.3, 0.8, 0.15, 0.5])[ones]
    out = np.empty(ctx.shape + (2,))
    out[..., 1] = p1[:, None]
    out[..., 0] = 1.0 - p1[:, None]
    return out


def _table():
    rng = np.random.default_rng(3)
    return TableModel(rng.dirichlet(np.full(81, 0.7)).reshape(3, 3, 3, 3))


MODELS = {
    "table": lambda: _table(),
    "mixture": lambda: MixtureOfProducts.random(4, q=3, n_components=2, seed=4),
    "logit": lambda: fastspec.ARModel(LogitOracle(n=4, q=3), n=4, q=3),
}
GIVEN = [None, np.array([-1, 2, -1, -1])]


def _law(model, given):
    return confidence_law(lambda c: model.query(c), model.n, model.q, given)


@pytest.mark.parametrize("given", GIVEN, ids=["free", "given"])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_matches_enumerated_law(name, method, given):
    model = MODELS[name]()
    law = _law(model, given)
    res = fastspec.sample(model, n_samples=N_SAMPLES, method=method, order="confidence",
                          given=given, seed=17, block_size=3 if method != "sequential" else "auto")
    if given is not None:
        assert np.all(res.samples[:, 1] == 2)
    p = chisquare_pvalue(empirical_counts(res.samples, (model.q,) * model.n), law)
    assert p > PASS_P, f"{name} {method}: chi-square p = {p:.3g}"


# For a consistent oracle every order gives the joint law, so a sampler that takes
# positions unchecked is only caught by an inconsistent one: the control runs there.
@pytest.mark.parametrize("name, rule", [("table", UNVERIFIED), ("logit", UNVERIFIED),
                                        ("logit", UNCHECKED_POSITIONS)],
                         ids=["table-unverified", "logit-unverified", "logit-positions_unchecked"])
def test_negative_controls_fail_the_same_test(name, rule):
    model = MODELS[name]()
    law = _law(model, None)
    res = _sample(model, n_samples=N_SAMPLES, method="block", order="confidence", seed=17,
                  block_size=3, _rule=rule)
    p = chisquare_pvalue(empirical_counts(res.samples, (model.q,) * model.n), law)
    assert p < FAIL_P, f"the negative control passed: p = {p:.3g}"


def test_exact_ties_go_to_the_lowest_index():
    model = fastspec.ARModel(tied_oracle, n=3, q=2)
    law = confidence_law(tied_oracle, 3, 2)
    for method in METHODS:
        res = fastspec.sample(model, n_samples=N_SAMPLES, method=method, order="confidence",
                              seed=5)
        assert np.all(res.orders == [0, 1, 2])
        p = chisquare_pvalue(empirical_counts(res.samples, (2, 2, 2)), law)
        assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"


def test_sequential_is_one_round_per_position():
    model = _table()
    res = fastspec.sample(model, n_samples=5, method="sequential", order="confidence", seed=0)
    assert res.stats.rounds == 4 and res.stats.contexts == 5 * 4
    # the recorded order is the confidence order of each sample, recomputed here
    for x, order in zip(res.samples, res.orders):
        ctx = np.full(4, -1)
        for pos in order:
            p = model.query(ctx[None])[0]
            conf = np.where(ctx < 0, p.max(axis=1), -1.0)
            assert pos == np.flatnonzero(conf >= conf.max() - TIE)[0]
            ctx[pos] = x[pos]
        np.testing.assert_allclose(
            np.exp(res.log_prob[0]), _law(model, None)[np.ravel_multi_index(
                tuple(res.samples[0]), (3,) * 4)], rtol=1e-9)


@pytest.mark.parametrize("method", ["token", "block"])
def test_bit_identical_across_batches_max_rows_and_protocols(method):
    from fastspec.models import MarkovChain
    chain = MarkovChain.characters(24)
    dense = fastspec.ARModel(lambda ctx: chain.marginals(ctx), n=chain.n, q=chain.q)
    ref = fastspec.sample(chain, n_samples=6, method=method, order="confidence", seed=9)
    for model, n_samples, max_rows in [(chain, 2, 1), (chain, 6, 7), (dense, 3, None)]:
        res = fastspec.sample(model, n_samples=n_samples, method=method, order="confidence",
                              seed=9, max_rows=max_rows)
        np.testing.assert_array_equal(res.samples, ref.samples[:n_samples])
        np.testing.assert_array_equal(res.orders, ref.orders[:n_samples])
        np.testing.assert_array_equal(res.log_prob, ref.log_prob[:n_samples])
    assert ref.stats.rounds < chain.n


def test_bad_orders_and_srs_raise():
    model = _table()
    with pytest.raises(ValueError, match="order must be"):
        fastspec.sample(model, order="entropy")
    with pytest.raises(ValueError, match="srs"):
        fastspec.sample(model, order="confidence", method="srs")
    with pytest.raises(ValueError, match="draft"):
        fastspec.sample(model, order="confidence", draft=model)


def test_unused_rows_may_hold_anything():
    """A counting oracle answers 0/0 (nan) for a context of probability 0; the rows after
    a rejected pair are still read by the draft's neighbour table, never checked."""
    rng = np.random.default_rng(8)
    joint = rng.dirichlet(np.full(27, 0.5))
    joint[rng.random(27) < 0.5] = 0.0
    joint = (joint / joint.sum()).reshape(3, 3, 3)
    configs = np.array(np.unravel_index(np.arange(27), (3, 3, 3))).T

    def counting(ctx):
        match = np.all((ctx[:, None, :] < 0) | (ctx[:, None, :] == configs[None]), axis=2)
        w = match * joint.reshape(-1)                                  # (K, 27)
        out = np.stack([w @ (configs[:, i, None] == np.arange(3)) for i in range(3)], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return out / out.sum(axis=2, keepdims=True)

    model = fastspec.ARModel(counting, n=3, q=3)
    for method in ("token", "block"):
        res = fastspec.sample(model, n_samples=N_SAMPLES, method=method, order="confidence",
                              seed=4, block_size=3)
        p = chisquare_pvalue(empirical_counts(res.samples, (3, 3, 3)), joint.reshape(-1))
        assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"


def test_readme_example_runs_as_pasted():
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Confidence orders, exactly"):]
    exec(section.split("```python\n", 1)[1].split("```", 1)[0], {})


@numba.njit
def least_confident_policy(marginals, positions):
    """The position whose most probable symbol is *least* probable, ties to the lowest."""
    best, best_top = positions[0], 2.0
    for j in range(positions.shape[0]):
        top = marginals[j].max()
        if top < best_top - 1e-9:
            best, best_top = positions[j], top
    return best


@pytest.mark.parametrize("method", ["sequential", "block"])
def test_policy_hook_matches_its_enumerated_law(method):
    model = MODELS["logit"]()
    law = confidence_law(lambda c: model.query(c), 4, 3, GIVEN[1], policy=least_confident_policy)
    assert not np.allclose(law, _law(model, GIVEN[1]), atol=1e-3)     # another sampler
    res = fastspec.sample(model, n_samples=N_SAMPLES, method=method, order=least_confident_policy,
                          given=GIVEN[1], seed=21, block_size=3 if method == "block" else "auto")
    p = chisquare_pvalue(empirical_counts(res.samples, (3,) * 4), law)
    assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"


def test_policy_errors():
    model = _table()
    with pytest.raises(TypeError, match="numba.njit"):
        fastspec.sample(model, order=lambda m, p: p[0])
    # (a policy returning a position it was not given raises ValueError too; not run
    # here: each new policy compiles the kernels again, about 3 s)
