"""Oracles as they really are: low precision, 0/0 contexts, their own exceptions, odd types.

Every case ends in samples with the exact law or a short, clear error; never a
hang, never a silent bias (issue 13).
"""


import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import fastspec
from fastspec import schedules
from fastspec.models import Gaussian, TableModel
from lawcheck import chisquare_pvalue, empirical_counts
from fastspec._rules import CONCRETE_METHODS

METHODS = CONCRETE_METHODS


# -- 1. low-precision probabilities ------------------------------------------------------------

def _float32_oracle(n, q, seed=0, noise=5e-6):
    rng = np.random.default_rng(seed)
    base = rng.dirichlet(np.full(q, 0.3), size=n)

    def marginals(ctx):
        out = np.broadcast_to(base, ctx.shape + (q,)).astype(np.float32)
        # rows sum to 1 +- noise, as float32 softmax outputs over many symbols do
        out *= np.float32(1.0) + np.float32(noise) * np.sign(rng.standard_normal((ctx.shape[0], n, 1)))
        return out
    return marginals, base


@pytest.mark.parametrize("method", ["token", "block"])
def test_float32_rows_within_their_precision_are_accepted(method):
    marginals, base = _float32_oracle(n=3, q=5000)
    model = fastspec.ARModel(marginals, n=3, q=5000)
    res = fastspec.sample(model, n_samples=1500, method=method, seed=1)
    # the oracle is a product law: each position's frequencies follow its row
    top = np.argsort(base[0])[-5:]
    freq = np.array([(res.samples[:, 0] == y).mean() for y in top])
    np.testing.assert_allclose(freq, base[0, top] / base[0].sum(), atol=4 * np.sqrt(0.25 / 1500))


def test_rows_beyond_the_tolerance_get_a_short_error():
    marginals, _ = _float32_oracle(n=6, q=5000, noise=1e-2)
    model = fastspec.ARModel(marginals, n=6, q=5000)
    with pytest.raises(fastspec.OracleError, match=r"not summing to 1 .*5000 values.*tolerance "
                                                   r"0\.00035") as info:
        fastspec.sample(model, n_samples=2, seed=0)
    assert len(str(info.value)) < 500
    # float64 answers keep the tighter tolerance
    f64 = fastspec.ARModel(lambda ctx: marginals(ctx).astype(np.float64), n=6, q=5000)
    with pytest.raises(fastspec.OracleError, match="tolerance 1e-06"):
        fastspec.sample(f64, n_samples=2, seed=0)


# -- 2. contexts of probability zero -------------------------------------------------------------

def _counting_oracle(configs, weights):
    """Marginals by enumeration: 0/0 = NaN for a context no configuration satisfies."""
    configs, weights = np.asarray(configs), np.asarray(weights, dtype=float)

    def marginals(ctx):
        match = np.all((ctx[:, None, :] < 0) | (ctx[:, None, :] == configs[None]), axis=2)
        w = match * weights                                   # (K, C)
        onehot = np.eye(2)[configs]                           # (C, n, 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.einsum("kc,cnq->knq", w, onehot) / w.sum(axis=1)[:, None, None]
    return marginals


@pytest.mark.parametrize("method", METHODS)
def test_zero_probability_contexts_are_never_used(method):
    configs = [(0, 1, 0), (1, 0, 1)]
    model = fastspec.ARModel(_counting_oracle(configs, [0.5, 0.5]), n=3, q=2)
    for seed in (2, 3, 5):
        fastspec.sample(model, method=method, seed=seed)
    res = fastspec.sample(model, n_samples=20_000, method=method, seed=7)
    counts = empirical_counts(res.samples, (2, 2, 2))
    law = np.zeros(8)
    law[[2, 5]] = 0.5                                         # (0,1,0) and (1,0,1)
    assert chisquare_pvalue(counts, law) > 1e-3


def test_a_used_invalid_row_shows_its_context():
    # A wrong counting oracle: NaN also where the context is possible.
    good = _counting_oracle([(0, 1, 0), (1, 0, 1)], [0.5, 0.5])

    def broken(ctx):
        out = good(ctx)
        out[(ctx >= 0).sum(axis=1) == 1] = np.nan
        return out
    with pytest.raises(fastspec.OracleError, match=r"non-finite value .*context \[") as info:
        fastspec.sample(fastspec.ARModel(broken, n=3, q=2), method="sequential", seed=0)
    assert len(str(info.value)) < 400


# -- 3. the user's own exceptions ---------------------------------------------------------------

class OracleBug(RuntimeError):
    pass


@pytest.mark.parametrize("exc", [ValueError("bad input"), TypeError("bad type"), OracleBug("x")])
@pytest.mark.parametrize("method", METHODS)
def test_user_exceptions_pass_through_with_the_round(method, exc):
    calls = []

    def marginals(ctx):
        calls.append(1)
        if len(calls) == 3:
            raise exc
        return np.full(ctx.shape + (2,), 0.5)

    def denoise(z, sigma):
        calls.append(1)
        if len(calls) == 3:
            raise exc
        return z / (1 + sigma[:, None] ** 2)
    for model, kw in ((fastspec.ARModel(marginals, n=20, q=2), {}),
                      (fastspec.DiffusionModel(denoise, dim=2),
                       {"schedule": schedules.ve(30, 10.0, 0.1)})):
        calls.clear()
        with pytest.raises(type(exc)) as info:
            fastspec.sample(model, n_samples=2, method=method, seed=0, **kw)
        assert info.value is exc
        assert any("round 2" in note for note in info.value.__notes__)


# -- 5. fuzzing the oracle boundary --------------------------------------------------------------

class _ArrayLike:
    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return self.a if dtype is None else self.a.astype(dtype)


GOOD = TableModel.from_model(fastspec.models.CurieWeiss(n=4, J=1.0))
GAUSS = Gaussian([1.0, -1.0], [0.5, 1.0])
SCHED = schedules.ve(12, 10.0, 0.1)

# How a valid answer may be dressed: each must give exactly the plain answer's samples.
DRESS = {
    "list": lambda a: a.tolist(),
    "array-like": _ArrayLike,
    "fortran": np.asfortranarray,
    "non-contiguous": lambda a: np.moveaxis(np.moveaxis(a, -1, 0).copy(), 0, -1),
    "int-valued float view": lambda a: a.view(),
}
# How an answer may be broken: each must raise OracleError with a short message.
BREAK_AR = {
    "nan": lambda a: np.where(a > 0, np.nan, a),
    "inf": lambda a: a + np.inf,
    "negative": lambda a: -a,
    "unnormalised": lambda a: 3 * a,
    "wrong shape": lambda a: a[:, :-1],
    "extra axis": lambda a: a[None],
    "strings": lambda a: a.astype(str),
    "object": lambda a: np.array([object()] * a.shape[0], dtype=object),
    "none": lambda a: None,
    "complex": lambda a: a.astype(complex),
}
BREAK_DIFFUSION = {k: v for k, v in BREAK_AR.items() if k not in ("negative", "unnormalised")}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dress=st.sampled_from(sorted(DRESS)), method=st.sampled_from(METHODS),
       pipeline=st.sampled_from(["ar", "diffusion"]))
def test_dressed_answers_give_the_same_samples(dress, method, pipeline):
    fix = DRESS[dress]
    if pipeline == "ar":
        plain, kw = GOOD, {}
        dressed = fastspec.ARModel(lambda ctx: fix(GOOD.marginals(ctx)), n=GOOD.n, q=GOOD.q)
    else:
        plain, kw = GAUSS, {"schedule": SCHED}
        dressed = fastspec.DiffusionModel(lambda z, s: fix(GAUSS.denoise(z, s)), dim=2)
    ref = fastspec.sample(plain, n_samples=5, method=method, seed=3, **kw).samples
    np.testing.assert_array_equal(fastspec.sample(dressed, n_samples=5, method=method, seed=3,
                                                  **kw).samples, ref)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(breaking=st.sampled_from(sorted(BREAK_AR)), method=st.sampled_from(METHODS),
       pipeline=st.sampled_from(["ar", "diffusion"]), when=st.integers(0, 3))
def test_broken_answers_raise_short_clear_errors(breaking, method, pipeline, when):
    if pipeline == "diffusion" and breaking not in BREAK_DIFFUSION:
        return
    fix = BREAK_AR[breaking]
    calls = []

    def maybe_break(answer):
        calls.append(1)
        return fix(answer) if len(calls) > when else answer
    if pipeline == "ar":
        model = fastspec.ARModel(lambda ctx: maybe_break(GOOD.marginals(ctx)), n=GOOD.n, q=GOOD.q)
        kw = {}
    else:
        model = fastspec.DiffusionModel(lambda z, s: maybe_break(GAUSS.denoise(z, s)), dim=2)
        kw = {"schedule": SCHED}
    try:
        fastspec.sample(model, n_samples=3, method=method, seed=1, **kw)
    except fastspec.OracleError as exc:
        message = str(exc)
        assert len(message) < 500 and message.startswith("round "), message
    else:
        assert len(calls) <= when, "a broken answer was accepted"   # it ended before the break


def test_torch_tensors_are_read_as_arrays():
    torch = pytest.importorskip("torch")
    model = fastspec.ARModel(lambda ctx: torch.from_numpy(GOOD.marginals(ctx)), n=GOOD.n, q=GOOD.q)
    ref = fastspec.sample(GOOD, n_samples=4, seed=2).samples
    np.testing.assert_array_equal(fastspec.sample(model, n_samples=4, seed=2).samples, ref)
    grad = fastspec.ARModel(lambda ctx: torch.from_numpy(GOOD.marginals(ctx)).requires_grad_(),
                            n=GOOD.n, q=GOOD.q)
    with pytest.raises(fastspec.OracleError, match="numpy cannot read"):
        fastspec.sample(grad, seed=0)
