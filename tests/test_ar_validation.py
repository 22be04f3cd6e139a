"""Bad input gets a clear error; an invalid oracle answer never yields a sample."""

import numpy as np
import pytest

import fastspec
from fastspec.models import CurieWeiss, MarkovChain, MixtureOfProducts, TableModel
from fastspec._rules import CONCRETE_METHODS


def _uniform(ctx, q=2):
    return np.full(ctx.shape + (q,), 1.0 / q)


def _model_returning(fix):
    def oracle(ctx):
        out = _uniform(ctx)
        fix(ctx, out)
        return out
    return fastspec.ARModel(oracle, n=6, q=2)


def _break_later_rounds(ctx, out):
    # Valid on the empty context, broken at every free position once something is pinned.
    hit = (ctx >= 0).any(axis=1)
    out[hit] = [np.nan, 0.5]


@pytest.mark.parametrize("method", CONCRETE_METHODS)
def test_nan_raises_oracle_error_naming_round_row_position(method):
    pattern = (r"round 1[:,].*marginals returned a non-finite value at row \d+.*free position "
               r"\d+: \[nan, 0.5\].*context \[")
    with pytest.raises(fastspec.OracleError, match=pattern) as info:
        fastspec.sample(_model_returning(_break_later_rounds), method=method, seed=0)
    assert len(str(info.value)) < 400


def _break_everywhere(values):
    def fix(ctx, out):
        out[:, :] = values
    return fix


@pytest.mark.parametrize("values, pattern", [
    ([-0.1, 1.1], r"negative value at row 0.*free position \d+: \[-0.1, 1.1\]"),
    ([0.7, 0.7], r"values not summing to 1 at row 0.*sum 1\.4, tolerance 1e-06"),
    ([np.inf, 0.0], r"non-finite value at row 0.*free position \d+: \[inf, 0\]"),
])
def test_invalid_values_are_named(values, pattern):
    with pytest.raises(fastspec.OracleError, match=pattern):
        fastspec.sample(_model_returning(_break_everywhere(values)), seed=0)


def test_unused_entries_are_not_checked():
    # Garbage where the samplers never read: pinned positions, and rows whose
    # context has probability 0 under the target.
    def oracle(ctx):
        out = _uniform(ctx)
        out[ctx >= 0] = np.nan
        return out
    res = fastspec.sample(fastspec.ARModel(oracle, n=6, q=2), n_samples=3, seed=0)
    assert res.samples.shape == (3, 6)


def test_wrong_shape_and_type():
    wrong = fastspec.ARModel(lambda ctx: np.full((ctx.shape[0], 6, 3), 1 / 3), n=6, q=2)
    with pytest.raises(fastspec.OracleError, match=r"shape \(1, 6, 3\).*expected \(K, n, q\) = \(1, 6, 2\)"):
        fastspec.sample(wrong, seed=0)
    junk = fastspec.ARModel(lambda ctx: "junk", n=6, q=2)
    with pytest.raises(fastspec.OracleError, match="dtype <U4, not a float array"):
        fastspec.sample(junk, seed=0)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(method="fast"), "method must be one of 'auto', 'sequential', 'token', 'block', 'srs'"),
    (dict(n_samples=0), "n_samples must be an int >= 1, got 0"),
    (dict(block_size=0), 'block_size must be an int >= 1 or "auto", got 0'),
    (dict(block_size="big"), 'block_size must be "auto" or an int >= 1'),
    (dict(order=[0, 1, 2]), r"order must be a permutation of range\(6\) or of the free"),
    (dict(order=[0, 1, 2, 3, 4, 4]), r"order must hold distinct positions of range\(6\)"),
    (dict(order=np.zeros(6)), "order must be None or a 1-D int array"),
    (dict(order=list(range(7))), "order must be None or a 1-D int array"),
    (dict(seed=-1), "seed must be a non-negative int, got -1"),
    (dict(given=[0, 1]), r"given must be an int array of shape \(n,\) = \(6,\)"),
    (dict(given=[0, 1, 2, -1, -1, -1]), r"given\[2\] = 2 is not a symbol of range\(2\)"),
    (dict(max_rows=0), "max_rows must be None or an int >= 1"),
    (dict(schedule=object()), "schedule is for DiffusionModel only"),
])
def test_bad_arguments(kwargs, pattern):
    model = fastspec.ARModel(_uniform, n=6, q=2)
    with pytest.raises(ValueError, match=pattern):
        fastspec.sample(model, **kwargs)


@pytest.mark.parametrize("kwargs, pattern", [
    (dict(n_samples=2.5), r"n_samples must be an int >= 1, got 2.5 \(float\)"),
    (dict(n_samples=True), "n_samples must be an int >= 1, got True"),
    (dict(block_size=2.0), 'block_size must be an int >= 1 or "auto", got 2.0'),
    (dict(max_rows="10"), "max_rows must be None or an int >= 1"),
    (dict(progress="yes"), "progress must be True or False"),
])
def test_arguments_of_a_wrong_type_raise_type_error(kwargs, pattern):
    """A wrong type is a TypeError, a wrong value of the right type a ValueError
    (fastspec._checks)."""
    model = fastspec.ARModel(_uniform, n=6, q=2)
    with pytest.raises(TypeError, match=pattern):
        fastspec.sample(model, **kwargs)


@pytest.mark.parametrize("make, pattern", [
    (lambda: fastspec.ARModel(_uniform, n=0, q=2), "n must be an int >= 1"),
    (lambda: fastspec.ARModel(_uniform, n=4, q=1), "q must be an int >= 2"),
    (lambda: MarkovChain([[1, -1], [1, 1]], n=4), "transition must be non-negative"),
    (lambda: MarkovChain([[1, 0, 0], [0, 1, 0]], n=4), "transition must be square"),
    (lambda: MixtureOfProducts([1.0], np.full((2, 3, 2), 0.5)), "weights has 1 components"),
    (lambda: CurieWeiss(n=4, J=float("nan")), "J must be a finite real"),
    (lambda: TableModel(np.full((2, 2), 0.3)), "joint must sum to 1"),
    (lambda: TableModel(np.full((2, 3), 1 / 6)), r"joint must have shape \(q,\) \* n"),
])
def test_bad_models(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_not_a_model_and_bad_seed_types():
    with pytest.raises(TypeError, match="marginals must be callable"):
        fastspec.ARModel("not callable", n=4, q=2)
    with pytest.raises(TypeError, match="n must be an int >= 1, got 4.0"):
        fastspec.ARModel(_uniform, n=4.0, q=2)
    with pytest.raises(TypeError, match="model must be a fastspec.ARModel or fastspec.DiffusionModel"):
        fastspec.sample(object())
    with pytest.raises(TypeError, match="seed must be None, a non-negative int"):
        fastspec.sample(fastspec.ARModel(_uniform, n=6, q=2), seed="abc")
