"""The character Markov chain and the diffusion-LM benchmark of Tang et al. (issue 19).

The chain's oracle is checked against enumeration (every configuration, random pinned
subsets), its positions answers against its dense ones, its direct sampler against
its enumerated law; the LLaDA sampler against the exact law of parallel unmasking;
the study's quick mode shows fastspec at the exact floor and few-step unmasking far
above it (the negative control).
"""

import csv
import importlib.util
import math

import numpy as np
import pytest
from scipy import stats

from fastspec.bench import dllm
from fastspec.bench.__main__ import main as bench_main
from fastspec.bench.peer_samplers import parallel_unmask_law
from fastspec.models import MarkovChain, TableModel
from fastspec.models.ar import CHARACTERS, _chain_marginals_at_all

E2 = math.exp(2.0)

CHAINS = {
    # zero transitions and a zero initial entry: contexts of probability 0 exist
    "q3 with zeros n=7": lambda: MarkovChain([[0.0, 2.0, 1.0], [1.0, 0.0, 3.0], [2.0, 1.0, 1.0]],
                                             initial=[0.5, 0.5, 0.0], n=7),
    "q2 e^2 n=8": lambda: MarkovChain([[E2, 1.0], [1.0, E2]], n=8),
    "characters n=3": lambda: MarkovChain.characters(3),
}


def _pinned_subsets(table, K, rng):
    """K contexts of positive probability: configurations drawn from the table's law, each
    with a random subset pinned (its size uniform over 0..n), one all free."""
    n = table.n
    x = table._configs[rng.choice(table._flat.size, size=K, p=table._flat)]
    order = np.argsort(rng.random((K, n)), axis=1)
    pinned = order < rng.integers(0, n + 1, size=(K, 1))
    pinned[0] = False
    return np.where(pinned, x, -1)


@pytest.mark.parametrize("name", CHAINS)
def test_oracle_matches_enumeration(name):
    chain = CHAINS[name]()
    table = TableModel.from_model(chain)
    ctx = _pinned_subsets(table, 300, np.random.default_rng(19))
    got, want = chain.marginals_dense(ctx), table.marginals(ctx)
    free = ctx < 0
    assert free.sum() > 300
    np.testing.assert_allclose(got[free], want[free], rtol=0, atol=1e-12)
    pinned = np.argwhere(~free)
    np.testing.assert_array_equal(got[pinned[:, 0], pinned[:, 1], ctx[~free]], 1.0)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=0, atol=1e-12)


def test_oracle_answers_contexts_of_probability_zero_with_distributions():
    chain = CHAINS["q3 with zeros n=7"]()
    ctx = np.array([[0, 0, -1, -1, 2, -1, -1],        # 0 -> 0 is impossible
                    [2, -1, -1, -1, -1, -1, -1]])     # initial[2] = 0
    p = chain.marginals_dense(ctx)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0)


def test_positions_answers_are_the_dense_rows():
    chain = MarkovChain.characters(50)
    rng = np.random.default_rng(3)
    x = chain.simulate(40, seed=4)
    ctx = np.where(rng.random(x.shape) < rng.random((40, 1)), x, -1)
    W = 12
    positions = np.argsort(rng.random((40, 50)), axis=1)[:, :W]       # distinct, some pinned
    positions[::3, W - 4:] = -1                                         # padding at the end
    dense = chain.marginals_dense(ctx)
    at = chain.marginals_at(ctx, positions)
    assert at.shape == (40, W, 27)
    real = positions >= 0
    rows = np.nonzero(real)[0]
    np.testing.assert_array_equal(at[real], dense[rows, positions[real]])
    np.testing.assert_array_equal(at[~real], 1.0 / 27)
    # serial and parallel twins agree bit for bit
    outs = []
    for parallel in (False, True):
        out = np.empty_like(at)
        _chain_marginals_at_all(parallel, ctx, positions, out, chain._powers, chain._prior)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], at)


def test_marginals_at_rejects_bad_input():
    chain = MarkovChain([[1.0, 1.0], [1.0, 2.0]], n=5)
    ctx = np.full((2, 5), -1)
    with pytest.raises(ValueError, match=r"positions must have shape \(2, W\)"):
        chain.marginals_at(ctx, np.zeros((3, 1), dtype=np.int64))
    with pytest.raises(ValueError, match=r"positions\[1, 0\] = 5 is outside 0..4"):
        chain.marginals_at(ctx, np.array([[0], [5]]))
    with pytest.raises(ValueError, match=r"contexts\[0, 2\] = 2 is not a symbol"):
        chain.marginals_dense(np.array([[0, 1, 2, -1, -1]]))


def test_from_text_counts_bigrams_and_smooths():
    chain = MarkovChain.from_text("abab a", "ab ", n=4, smoothing=0.3)
    # bigrams: ab, ba, ab, b' ', ' 'a
    np.testing.assert_array_equal(chain.counts, [[0, 2, 0], [1, 0, 1], [1, 0, 0]])
    want = 0.7 * np.array([[0, 1, 0], [0.5, 0, 0.5], [1, 0, 0]]) + 0.1
    np.testing.assert_allclose(chain.transition, want)
    np.testing.assert_allclose(chain.initial @ chain.transition, chain.initial)
    assert chain.decode([1, 0, 2, 1]) == "ba b"
    with pytest.raises(ValueError, match=r"outside the alphabet at index 1: 'c'"):
        MarkovChain.from_text("acb", "ab", n=3)
    with pytest.raises(ValueError, match="smoothing must be a number in"):
        MarkovChain.from_text("abab", "ab", n=3, smoothing=2)
    with pytest.raises(ValueError, match="'c' is never followed"):
        MarkovChain.from_text("abac", "abc", n=3, smoothing=0)
    with pytest.raises(TypeError, match="text must be a str"):
        MarkovChain.from_text(b"ab", "ab", n=3)


def test_character_chain_is_text8_like():
    chain = MarkovChain.characters(16)
    assert chain.q == 27 and chain.alphabet == CHARACTERS
    assert chain.counts.sum() > 300_000                          # the Python docs' help texts
    assert chain.transition.min() >= 1e-3 / 27 * (1 - 1e-12)      # smoothing mass
    assert chain.transition[CHARACTERS.index("q"), CHARACTERS.index("u")] > 0.9
    assert chain.initial.argmax() == CHARACTERS.index(" ")


def _chi2_p(samples, law, q, n):
    cells = np.ravel_multi_index(tuple(np.asarray(samples).T), (q,) * n)
    counts = np.bincount(cells, minlength=q ** n)
    keep = law > 0
    assert counts[~keep].sum() == 0
    return stats.chisquare(counts[keep], law[keep] * len(cells)).pvalue


def test_simulate_draws_the_chain():
    chain = MarkovChain([[3.0, 1.0, 0.5], [1.0, 2.0, 1.0], [0.2, 1.0, 4.0]], n=4)
    law = TableModel.from_model(chain)._flat
    x = chain.simulate(20000, seed=5)
    assert _chi2_p(x, law, 3, 4) > 1e-3
    # negative control: the transposed chain fails the same test
    wrong = MarkovChain(chain.transition.T, n=4).simulate(20000, seed=5)
    assert _chi2_p(wrong, law, 3, 4) < 1e-6


def test_transfer_counts_follow_llada():
    np.testing.assert_array_equal(dllm.transfer_counts(10, 4), [3, 3, 2, 2])
    np.testing.assert_array_equal(dllm.transfer_counts(8, 8), np.ones(8))
    with pytest.raises(ValueError, match=r"steps must be an int in 1..10, got 0"):
        dllm.transfer_counts(10, 0)


def test_random_unmasking_has_the_law_of_parallel_unmasking():
    chain = MarkovChain([[E2, 1.0], [1.0, E2]], n=6)
    run = dllm.unmask(chain, 3, 20000, seed=6, remasking="random")
    assert np.all(run.rounds_per_sample == 3)
    assert _chi2_p(run.samples, parallel_unmask_law(chain, 2), 2, 6) > 1e-3
    # negative control: two positions per round is not the chain's law
    assert _chi2_p(run.samples, TableModel.from_model(chain)._flat, 2, 6) < 1e-6


def test_transition_rates_by_hand():
    T = np.array([[0.2, 0.8], [0.6, 0.4]])
    kl, tv = dllm.transition_rates([[0, 1, 0, 1]], T)   # 0->1 twice, 1->0 once
    assert kl == pytest.approx(2 / 3 * math.log(1 / 0.8) + 1 / 3 * math.log(1 / 0.6))
    assert tv == pytest.approx(2 / 3 * 0.2 + 1 / 3 * 0.4)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """``python -m fastspec.bench dllm --quick --out DIR``: the folder and the CSV rows."""
    out = tmp_path_factory.mktemp("dllm")
    bench_main(["dllm", "--quick", "--out", str(out)])
    with open(out / "dllm.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r.update({k: float(r[k]) for k in dllm.CSV_COLUMNS[4:]})
    return out, rows


def test_quick_study_writes_csv_and_figure(quick):
    out, rows = quick
    assert tuple(rows[0]) == dllm.CSV_COLUMNS
    assert len(rows) == 4 + 2 * 6                             # n = 64: S = 2, 4, ..., 64
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "dllm.png").stat().st_size > 10_000


def test_fastspec_sits_at_the_floor_and_few_step_unmasking_does_not(quick):
    _, rows = quick
    by = {(r["sampler"], r["setting"]): r for r in rows}
    z = {key: (r["kl_rate"] - r["kl_floor"]) / r["kl_floor_sd"] for key, r in by.items()}
    for sampler in ("sequential", "fastspec-token", "fastspec-block", "fastspec-srs"):
        assert abs(z[sampler, "random order"]) < 3, (sampler, z[sampler, "random order"])
    assert by["fastspec-block", "random order"]["rounds_per_sample"] < 64 / 4
    # negative control: unmasking at few steps is far above the floor, with either rule
    for sampler in ("unmask-random", "unmask-low-confidence"):
        for steps in (2, 4, 8):
            assert z[sampler, f"S={steps}"] > 30, (sampler, steps, z[sampler, f"S={steps}"])
    # random order at S = n is the sequential sampler: back at the floor
    assert abs(z["unmask-random", "S=64"]) < 3
