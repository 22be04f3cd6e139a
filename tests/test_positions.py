"""The positions protocol (``ARModel(..., positions=True)``) gives the dense protocol's samples.

The wrapped oracle answers only the positions the engine lists, NaN in the
padding (so reading it would fail the check), and asserts that every listed
position is free and listed once.
"""

import numpy as np
import pytest

import fastspec
from test_ar_exactness import LogitOracle
from fastspec._rules import CONCRETE_METHODS


def positions_oracle(dense, n, q, seen):
    def marginals(ctx, positions):
        assert ctx.dtype == np.int64 and positions.dtype == np.int64
        assert positions.shape[0] == ctx.shape[0]
        full = np.asarray(dense(ctx))
        out = np.full(positions.shape + (q,), np.nan)
        for r in range(ctx.shape[0]):
            listed = positions[r][positions[r] >= 0]
            assert listed.size and (positions[r, listed.size:] == -1).all()  # padding at the end
            assert np.unique(listed).size == listed.size and (ctx[r, listed] < 0).all()
            out[r, :listed.size] = full[r, listed]
        seen.append(int((positions >= 0).sum()))
        return out
    return marginals


@pytest.mark.parametrize("method", CONCRETE_METHODS)
def test_positions_give_the_dense_samples(method):
    n, q = 12, 3
    oracle = LogitOracle(n=n, q=q, seed=4)
    seen = []
    dense = fastspec.ARModel(oracle, n=n, q=q)
    sparse = fastspec.ARModel(positions_oracle(oracle, n, q, seen), n=n, q=q, positions=True)
    given = np.full((6, n), -1)
    given[:, 3] = 1
    given[2, 7] = 0
    for kw in (dict(), dict(given=given), dict(given=given[2], max_rows=5)):
        a = fastspec.sample(dense, n_samples=6, method=method, seed=11, **kw)
        b = fastspec.sample(sparse, n_samples=6, method=method, seed=11, **kw)
        np.testing.assert_array_equal(a.samples, b.samples)
        np.testing.assert_array_equal(a.log_prob, b.log_prob)
        assert a.stats.contexts == b.stats.contexts
        assert a.stats.positions == n * a.stats.contexts           # dense: every row costs n
        assert b.stats.positions == sum(seen[-b.stats.oracle_calls:])
        assert b.stats.positions == b.stats.positions_per_sample.sum()
        assert b.stats.positions <= a.stats.positions


@pytest.mark.parametrize("method", ["token", "block"])
def test_rows_ask_only_the_window_the_next_draft_reads(method):
    # Each row asks for the block the sizer would propose should the block stop there,
    # not for the longest block it could propose: fewer positions, the same samples, and
    # the NaN padding of the narrower rows is never read.
    n, q = 48, 3
    oracle = LogitOracle(n=n, q=q, seed=5)
    seen = []
    dense = fastspec.ARModel(oracle, n=n, q=q)
    sparse = fastspec.ARModel(positions_oracle(oracle, n, q, seen), n=n, q=q, positions=True)
    a = fastspec.sample(dense, n_samples=4, method=method, seed=3)
    b = fastspec.sample(sparse, n_samples=4, method=method, seed=3)
    np.testing.assert_array_equal(a.samples, b.samples)
    np.testing.assert_array_equal(a.log_prob, b.log_prob)


def test_block_asks_far_fewer_positions_than_its_longest_window():
    # MarkovChain(n=256), 8 samples, seed 2: 103 n positions per sample with the
    # per-row windows, 156 n when every row asked for the longest next block.
    rng = np.random.default_rng(0)
    q = 27
    chain = fastspec.models.MarkovChain(np.exp(2 * np.eye(q) + rng.standard_normal((q, q))),
                                        n=256)
    res = fastspec.sample(chain, n_samples=8, method="block", seed=2)
    assert res.stats.positions / (8 * 256) < 120


def test_positions_protocol_errors_name_the_shape():
    n, q = 5, 3
    model = fastspec.ARModel(lambda ctx, pos: np.full(ctx.shape + (q,), 1 / q), n=n, q=q,
                             positions=True)
    with pytest.raises(fastspec.OracleError, match=r"\(K, W, q\)"):
        fastspec.sample(model, n_samples=2, seed=0)
    with pytest.raises(TypeError, match="positions must be True or False"):
        fastspec.ARModel(lambda ctx: ctx, n=n, q=q, positions=1)


def test_query_with_positions_matches_dense():
    n, q = 12, 3
    oracle = LogitOracle(n=n, q=q, seed=4)
    ctx = np.full((3, n), -1)
    ctx[1, :5] = 2
    ctx[2, :] = 0
    ctx[2, 11] = -1
    dense = fastspec.ARModel(oracle, n=n, q=q).query(ctx)
    sparse = fastspec.ARModel(positions_oracle(oracle, n, q, []), n=n, q=q,
                              positions=True).query(ctx)
    free = ctx < 0
    np.testing.assert_array_equal(dense[free], sparse[free])


def test_reference_models_answer_positions_with_their_dense_numbers():
    from fastspec.models import CurieWeiss, MixtureOfProducts, NeuralAR, TableModel
    rng = np.random.default_rng(1)
    exact = [CurieWeiss(16), MixtureOfProducts.random(10, q=3), TableModel.from_model(
        CurieWeiss(6))]
    for model in exact + [NeuralAR(10, q=3, hidden=16, layers=1)]:
        assert model.positions
        n, q = model.n, model.q
        ctx = np.where(rng.random((6, n)) < 0.4, rng.integers(0, q, (6, n)), -1)
        ctx[0] = -1
        pos = np.full((6, 3), -1)
        for r in range(6):
            free = np.flatnonzero(ctx[r] < 0)
            pick = rng.permutation(free)[:3]
            pos[r, :pick.size] = pick
        part, dense = model.marginals(ctx, pos), model.marginals(ctx)
        r, j = np.nonzero(pos >= 0)
        if model in exact:
            np.testing.assert_array_equal(part[r, j], dense[r, pos[r, j]])
        else:                        # float32 matrix products on other shapes
            np.testing.assert_allclose(part[r, j], dense[r, pos[r, j]], rtol=1e-5, atol=1e-7)
    for model in exact:
        plain = fastspec.ARModel(lambda c, m=model: m.marginals(c), n=model.n, q=model.q)
        a = fastspec.sample(plain, n_samples=3, method="block", seed=5)
        b = fastspec.sample(model, n_samples=3, method="block", seed=5)
        np.testing.assert_array_equal(a.samples, b.samples)
        assert b.stats.positions < a.stats.positions or model.n <= 6
