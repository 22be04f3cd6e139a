"""Draft models keep every law exact (docs/ALGORITHMS.md, section 7).

AR: a chi-square test against the enumerated law of the target's sequential
chain, for a consistent oracle (a joint table) and an inconsistent one (the
chain of a fixed order), drafted by a model of another law; the negative
control (drafts kept unverified) must fail the same test. Diffusion: a
Gaussian target drafted by a Gaussian denoiser of another mean and variance
must give the target chain's closed-form output law; unverified drafts must not.
Samples are bit-identical across ``n_samples`` and ``max_rows``.
"""

import numpy as np
import pytest

import fastspec
from fastspec import schedules
from fastspec._rules import UNVERIFIED
from fastspec.api import _sample
from fastspec.models import Gaussian, MixtureOfProducts, TableModel
from lawcheck import chisquare_pvalue, empirical_counts
from test_ar_exactness import FAIL_P, PASS_P, LogitOracle
from test_diffusion_exact import _check_gaussian_law

N_SAMPLES = 20_000
N, Q = 4, 3


def _table(seed):
    """A random joint law on {0, 1, 2}^4 with all 81 cells positive."""
    rng = np.random.default_rng(seed)
    return TableModel(rng.dirichlet(np.full(Q ** N, 0.7)).reshape((Q,) * N))


TARGET = _table(1)
# A draft of another law (a mixture of products, dense: without the positions protocol).
_MIX = MixtureOfProducts.random(N, q=Q, n_components=3, seed=9)
DENSE_DRAFT = fastspec.ARModel(lambda ctx: _MIX.marginals(ctx), n=N, q=Q)


POSITIONS_DRAFT = _table(3)          # answers the positions protocol
DRAFT_CASES = [("token", "anchored", DENSE_DRAFT), ("block", "anchored", DENSE_DRAFT),
               ("block", "anchored", POSITIONS_DRAFT), ("token", "plain", DENSE_DRAFT),
               ("block", "plain", POSITIONS_DRAFT)]


@pytest.mark.parametrize("method, variant, draft", DRAFT_CASES,
                         ids=[f"{m}-{v}-{'dense' if d is DENSE_DRAFT else 'positions'}"
                              for m, v, d in DRAFT_CASES])
def test_drafted_ar_matches_the_joint(method, variant, draft):
    res = _sample(TARGET, n_samples=N_SAMPLES, method=method, draft=draft, seed=2024,
                  _plain_drafts=variant == "plain")
    assert res.stats.draft_calls > 0 and res.stats.draft_rows > 0
    assert res.stats.mean_accepted < res.stats.mean_block_size   # drafts were rejected too
    p = chisquare_pvalue(empirical_counts(res.samples, TARGET.joint.shape),
                         TARGET.joint.reshape(-1))
    assert p > PASS_P, f"{method}: chi-square p = {p:.3g}"


@pytest.mark.parametrize("plain", [False, True], ids=["anchored", "plain"])
def test_unverified_drafts_fail_the_same_test(plain):
    res = _sample(TARGET, n_samples=N_SAMPLES, method="block", draft=DENSE_DRAFT, seed=2024,
                  _rule=UNVERIFIED, _plain_drafts=plain)
    p = chisquare_pvalue(empirical_counts(res.samples, TARGET.joint.shape),
                         TARGET.joint.reshape(-1))
    assert p < FAIL_P, f"the negative control passed: p = {p:.3g}"


def test_inconsistent_oracles_give_the_sequential_chain():
    """Target and draft are conditionals of no joint law: the target is the sequential chain
    of the given order, enumerated; the draft is another such oracle."""
    oracle, other = LogitOracle(n=N, q=Q, seed=5), LogitOracle(n=N, q=Q, seed=6)
    model = fastspec.ARModel(oracle, n=N, q=Q)
    draft = fastspec.ARModel(other, n=N, q=Q)
    order = np.array([2, 0, 3, 1])
    law = oracle.chain_law(order)
    for method, plain in (("token", False), ("block", False), ("block", True)):
        res = _sample(model, n_samples=N_SAMPLES, method=method, draft=draft, seed=7,
                      order=order, block_size=N, _plain_drafts=plain)
        p = chisquare_pvalue(empirical_counts(res.samples, (Q,) * N), law)
        assert p > PASS_P, f"{method}, plain={plain}: chi-square p = {p:.3g}"
    wrong = _sample(model, n_samples=N_SAMPLES, method="block", draft=draft, seed=7,
                    order=order, block_size=N, _rule=UNVERIFIED)
    p_wrong = chisquare_pvalue(empirical_counts(wrong.samples, (Q,) * N), law)
    assert p_wrong < FAIL_P, f"the negative control passed: p = {p_wrong:.3g}"


@pytest.mark.parametrize("draft", [DENSE_DRAFT, POSITIONS_DRAFT], ids=["dense", "positions"])
@pytest.mark.parametrize("plain", [False, True], ids=["anchored", "plain"])
def test_ar_samples_do_not_depend_on_the_batch_or_max_rows(draft, plain):
    ref = _sample(TARGET, n_samples=6, draft=draft, seed=5, _plain_drafts=plain)
    for n_samples, max_rows in ((6, 1), (6, 4), (2, None), (6, None)):
        res = _sample(TARGET, n_samples=n_samples, draft=draft, seed=5, max_rows=max_rows,
                      _plain_drafts=plain)
        np.testing.assert_array_equal(res.samples, ref.samples[:n_samples])
        np.testing.assert_array_equal(res.log_prob, ref.log_prob[:n_samples])
    chunked = _sample(TARGET, n_samples=6, draft=draft, seed=5, max_rows=1,
                      _plain_drafts=plain).stats
    assert chunked.draft_calls == chunked.draft_rows > ref.stats.draft_calls


def test_the_target_as_its_own_draft_keeps_every_block():
    res = fastspec.sample(TARGET, n_samples=50, draft=TARGET, seed=1)
    assert np.array_equal(res.stats.accepted, res.stats.block_sizes)
    assert res.stats.contexts == 50 * N                  # one row per position: none wasted
    assert "draft model:" in str(res.stats)


def test_bad_drafts_are_refused_with_the_fix():
    with pytest.raises(TypeError, match="draft must be a fastspec.ARModel"):
        fastspec.sample(TARGET, draft=Gaussian([0.0], [1.0]))
    with pytest.raises(ValueError, match="n=5, q=3"):
        fastspec.sample(TARGET, draft=MixtureOfProducts.random(5, q=3))
    with pytest.raises(ValueError, match="sequential.*has no drafts"):
        fastspec.sample(TARGET, method="sequential", draft=DENSE_DRAFT)
    with pytest.raises(ValueError, match="srs.*cannot use a draft model"):
        fastspec.sample(TARGET, method="srs", draft=DENSE_DRAFT)
    with pytest.raises(ValueError, match="dim=2, the target dim=3"):
        fastspec.sample(GAUSSIAN, draft=Gaussian([0.0, 0.0], [1.0, 1.0]))


def test_an_invalid_draft_answer_names_the_draft_model():
    bad = fastspec.ARModel(lambda ctx: np.full(ctx.shape + (Q,), 0.5), n=N, q=Q)
    with pytest.raises(fastspec.OracleError, match="draft model, round 0, step 0.*sum 1.5"):
        fastspec.sample(TARGET, draft=bad, seed=0)


# -- diffusion --------------------------------------------------------------------------------

GAUSSIAN = Gaussian([2.0, -1.0, 0.5], [0.3, 0.5, 1.0])
CHEAP = Gaussian([0.0, 0.0, 0.0], [1.0, 0.7, 0.4])          # another mean and variance
SCHED = schedules.ve(20, 10.0, 0.05)


@pytest.mark.parametrize("method, plain", [("token", False), ("block", False), ("block", True)])
def test_drafted_diffusion_has_the_chains_output_law(method, plain):
    mean, var = GAUSSIAN.output_law(SCHED)
    res = _sample(GAUSSIAN, schedule=SCHED, n_samples=N_SAMPLES, method=method, draft=CHEAP,
                  seed=11, _plain_drafts=plain)
    assert res.stats.draft_calls > 0 and res.stats.mean_rounds < SCHED.n_steps
    assert res.stats.mean_accepted < res.stats.mean_block_size
    _check_gaussian_law(res.samples, mean, var)


@pytest.mark.parametrize("plain", [False, True], ids=["anchored", "plain"])
def test_unverified_diffusion_drafts_fail_the_same_test(plain):
    mean, var = GAUSSIAN.output_law(SCHED)
    res = _sample(GAUSSIAN, schedule=SCHED, n_samples=N_SAMPLES, method="block", draft=CHEAP,
                  seed=11, _rule=UNVERIFIED, _plain_drafts=plain)
    with pytest.raises(AssertionError):
        _check_gaussian_law(res.samples, mean, var)


@pytest.mark.parametrize("plain", [False, True], ids=["anchored", "plain"])
def test_diffusion_samples_do_not_depend_on_the_batch_or_max_rows(plain):
    ref = _sample(GAUSSIAN, schedule=SCHED, n_samples=5, draft=CHEAP, seed=3,
                  _plain_drafts=plain)
    for n_samples, max_rows in ((5, 1), (5, 3), (2, None)):
        res = _sample(GAUSSIAN, schedule=SCHED, n_samples=n_samples, draft=CHEAP, seed=3,
                      max_rows=max_rows, _plain_drafts=plain)
        np.testing.assert_array_equal(res.samples, ref.samples[:n_samples])


def test_a_noiseless_last_step_and_the_denoiser_as_its_own_draft():
    sched = schedules.ddpm(np.linspace(0.999, 0.01, 30))             # c = 0 at the last step
    res = fastspec.sample(GAUSSIAN, schedule=sched, n_samples=20, draft=GAUSSIAN, seed=2)
    assert np.array_equal(res.stats.accepted, res.stats.block_sizes)
    assert res.stats.draft_calls > 0 and np.isfinite(res.samples).all()


def test_the_readme_example_runs_as_pasted(capsys):
    from test_docs import _python_blocks
    block, = [b for b in _python_blocks("README.md") if "text_bigram()" in b]
    exec(block, {})
    out = capsys.readouterr().out
    assert "draft model:" in out and len(out.splitlines()) == 8


def test_the_draft_models_own_errors_pass_through_with_a_note():
    def broken(ctx):
        raise KeyError("no such context")
    with pytest.raises(KeyError, match="no such context") as info:
        fastspec.sample(TARGET, draft=fastspec.ARModel(broken, n=N, q=Q), seed=0)
    assert any("draft model" in note for note in info.value.__notes__)
    nan = fastspec.DiffusionModel(lambda z, sigma: np.full(z.shape, np.nan), dim=3)
    with pytest.raises(fastspec.OracleError, match="draft model, round 0, step 0.*non-finite"):
        fastspec.sample(GAUSSIAN, schedule=SCHED, draft=nan, seed=0)


def test_the_bench_command_writes_its_table(tmp_path, monkeypatch):
    from fastspec.bench import drafts
    monkeypatch.setattr(drafts, "_pairs", lambda quick: [
        ("table", TARGET, "mixture", DENSE_DRAFT, {}),
        ("gaussian", GAUSSIAN, "cheap", CHEAP, {"schedule": SCHED})])
    table = drafts.run(out=str(tmp_path), quick=True)
    assert (tmp_path / "drafts.csv").read_text().count("\n") == len(table) + 1 == 9
    assert {row["draft"] for row in table} == {"-", "mixture (anchored)", "mixture (plain)",
                                              "cheap (anchored)", "cheap (plain)"}
