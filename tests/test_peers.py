"""The approximate samplers and error measures of ``python -m fastspec.bench peers``.

Every check can fail: exact laws against enumeration, closed forms against Monte
Carlo, calibrated errors against samplers known to be right and known to be wrong.
"""

import csv
import math

import numpy as np
import pytest
from scipy import stats

import fastspec
from fastspec.bench import peer_errors as errors
from fastspec.bench import peer_samplers as ps
from fastspec.bench import peers
from fastspec.models import CurieWeiss, Gaussian, PointCloud, TableModel
from fastspec.schedules import ve, vp

from lawcheck import chisquare_pvalue


def _table(seed=0, q=3, n=5, alpha=0.5):
    rng = np.random.default_rng(seed)
    return TableModel(rng.dirichlet(np.full(q ** n, alpha)).reshape((q,) * n))


def _counts(model, samples):
    return np.bincount(model.flat_index(samples), minlength=model.q ** model.n)


# -- parallel unmasking --------------------------------------------------------------------

@pytest.mark.parametrize("confident", [False, True])
def test_unmask_one_position_per_round_has_the_exact_law(confident):
    # k = 1 is sequential sampling (in an order chosen from the past for the
    # confident variant, which is still exact for a consistent model).
    table = _table()
    cw = CurieWeiss(8, J=1.5)
    for model, target in ((table, table._flat), (cw, TableModel.from_model(cw)._flat)):
        law = ps.parallel_unmask_law(model, 1, confident=confident)
        assert errors.tv_exact(law, target) < 1e-12


def test_unmask_all_at_once_is_the_product_of_marginals():
    model = _table(seed=3)
    joint = model.joint
    one_site = [joint.sum(axis=tuple(j for j in range(model.n) if j != i)) for i in range(model.n)]
    product = one_site[0]
    for m in one_site[1:]:
        product = np.multiply.outer(product, m)
    law = ps.parallel_unmask_law(model, model.n)
    assert np.allclose(law, product.ravel(), atol=1e-14)
    assert errors.tv_exact(law, model._flat) > 0.2          # far from the joint


@pytest.mark.parametrize("confident", [False, True])
def test_unmask_sampler_follows_its_enumerated_law(confident):
    model = _table(seed=1, n=4)
    law = ps.parallel_unmask_law(model, 2, confident=confident)
    run = ps.parallel_unmask(model, 2, 20000, seed=5, confident=confident)
    assert (run.rounds_per_sample == 2).all() and (run.rows_per_sample == 2).all()
    counts = _counts(model, run.samples)
    assert chisquare_pvalue(counts, law) > 1e-3
    # Negative control: the same samples against the model's joint law.
    assert chisquare_pvalue(counts, model._flat) < 1e-6


def test_confidence_variant_unmasks_the_most_confident_first():
    # Position 2 is nearly deterministic, the others uniform: with k = 1 the first
    # round must pick position 2, whatever the seed.
    def marg(ctx):
        p = np.full(ctx.shape + (2,), 0.5)
        p[:, 2] = [0.99, 0.01]
        return p
    model = fastspec.ARModel(marg, n=4, q=2)
    seen = []

    def spy(ctx):
        seen.append(ctx.copy())
        return marg(ctx)
    model.marginals = spy
    ps.parallel_unmask(model, 1, 50, seed=0, confident=True)
    pinned = seen[1] >= 0
    assert pinned[:, 2].all() and pinned.sum(axis=1).max() == 1


def test_unmask_bad_arguments():
    model = _table(n=3)
    with pytest.raises(ValueError, match="k must be an int in 1..3"):
        ps.parallel_unmask(model, 4, 10)
    with pytest.raises(ValueError, match="n_samples"):
        ps.parallel_unmask(model, 1, 0)
    with pytest.raises(ValueError, match="too large to enumerate"):
        ps.parallel_unmask_law(CurieWeiss(20), 2)


# -- error measures ------------------------------------------------------------------------

def test_tv_from_samples_is_calibrated_and_detects_a_bias():
    rng = np.random.default_rng(0)
    target = rng.dirichlet(np.ones(500))
    ok = [errors.tv_from_samples(rng.choice(500, 5000, p=target), target, seed=i, n_null=100)
          for i in range(20)]
    z = np.array([e / s for e, s in ok])
    assert abs(z.mean()) < 1.0 and 0.5 < z.std() < 1.6
    wrong = 0.7 * target + 0.3 / 500               # TV 0.3 * TV(target, uniform) ~ 0.1
    err, se = errors.tv_from_samples(rng.choice(500, 5000, p=wrong), target, seed=1)
    assert err > 5 * se


def test_gaussian_kl_formula_matches_monte_carlo():
    rng = np.random.default_rng(2)
    d = 3
    A = rng.normal(size=(d, d))
    cov_p = A @ A.T + 0.5 * np.eye(d)
    mean_p, mean_q, var_q = rng.normal(size=d), rng.normal(size=d), rng.uniform(0.5, 2, d)
    x = rng.multivariate_normal(mean_p, cov_p, size=400000)
    mc = np.mean(stats.multivariate_normal(mean_p, cov_p).logpdf(x)
                 - stats.multivariate_normal(mean_q, np.diag(var_q)).logpdf(x))
    assert abs(errors.gaussian_kl(mean_p, cov_p, mean_q, var_q) - mc) < 0.02
    assert errors.gaussian_kl(mean_q, var_q, mean_q, var_q) == pytest.approx(0.0, abs=1e-14)


def test_kl_from_samples_and_paired_kl():
    rng = np.random.default_rng(3)
    mean, var = rng.normal(size=4), rng.uniform(0.5, 2.0, 4)
    z = [errors.kl_from_samples(mean + np.sqrt(var) * rng.standard_normal((3000, 4)), mean, var,
                                seed=i, n_null=100) for i in range(10)]
    assert all(abs(e) <= 3 * s for e, s in z)
    wide = mean + np.sqrt(1.1 * var) * rng.standard_normal((3000, 4))
    err, se = errors.kl_from_samples(wide, mean, var, seed=0)
    assert err > 5 * se
    x0 = mean + np.sqrt(var) * rng.standard_normal((3000, 4))
    assert errors.kl_paired(x0, x0, mean, var, seed=0) == (0.0, 0.0)
    err, se = errors.kl_paired(x0 * 1.05 + 0.1, x0, mean, var, seed=0)
    assert err > 5 * se


def test_energy_distance_is_calibrated_and_detects_a_shift():
    rng = np.random.default_rng(4)
    ref = errors.EnergyReference(rng.standard_normal((4000, 3)), n_perm=100, seed=0)
    z = np.array([np.divide(*ref.distance(rng.standard_normal((400, 3)))) for _ in range(15)])
    assert abs(z.mean()) < 1.0 and 0.4 < z.std() < 1.8
    err, se = ref.distance(rng.standard_normal((400, 3)) + [0.3, 0, 0])
    assert err > 5 * se
    x0 = rng.standard_normal((300, 3))
    assert ref.paired_difference(x0, x0, seed=0) == (0.0, 0.0)
    # The paired figure and the plain one estimate the same energy distance.
    x0 = rng.standard_normal((2000, 3))
    x = x0 + [0.5, 0, 0]
    paired, paired_se = ref.paired_difference(x, x0, seed=0)
    plain, plain_se = ref.distance(x)
    assert paired > 5 * paired_se
    assert abs(paired - plain) < 3 * np.hypot(paired_se, plain_se)
    with pytest.raises(ValueError, match="x must have shape"):
        ref.distance(np.zeros((400, 2)))


# -- diffusion chains ----------------------------------------------------------------------

def _same(s1, s2):
    return all(np.allclose(getattr(s1, k), getattr(s2, k), rtol=1e-12, atol=1e-15)
               for k in ("a", "b", "c", "s", "sigma")) and s1.init_scale == s2.init_scale


def test_respace_gives_the_reference_family_back():
    assert _same(ps.respace(ve(100, 80, 0.002), 100, 1.0, 0.002), ve(100, 80, 0.002))
    assert _same(ps.respace(ve(100, 80, 0.002), 20, 1.0, 0.002), ve(20, 80, 0.002))
    assert _same(ps.respace(vp(200), 200, 1.0, 0.0), vp(200))
    assert not _same(ps.respace(vp(200), 100, 1.0, 0.0), vp(100))   # respacing != re-discretising
    with pytest.raises(ValueError, match="n_steps must be an int in 1..100"):
        ps.respace(ve(100), 101, 1.0, 0.002)


def test_ddim_vp_step_is_song_meng_ermon_eq_12():
    ref = vp(50)
    dd = ps.ddim_schedule(ps.respace(ref, 10, 1.0, 0.0), 1.0, 0.0)
    abar = dd.s ** 2
    abar_next = np.append(abar[1:], 1.0)
    rng = np.random.default_rng(0)
    x, x0 = rng.normal(size=10), rng.normal(size=10)        # state and denoised estimate
    eps = (x - np.sqrt(abar) * x0) / np.sqrt(1 - abar)
    textbook = np.sqrt(abar_next) * x0 + np.sqrt(1 - abar_next) * eps
    assert np.allclose(dd.a * x + dd.b * x0, textbook, rtol=1e-12)
    assert (dd.c == 0).all()


@pytest.mark.parametrize("family", ["ve", "vp"])
def test_closed_form_laws_of_fewer_steps_and_ddim_agree_with_monte_carlo(family):
    model = Gaussian([0.5, -1.0, 2.0], [0.5, 1.0, 2.0])
    ref, final = (ve(100, 80, 0.002), (1.0, 0.002)) if family == "ve" else (vp(100), (1.0, 0.0))
    fewer = ps.respace(ref, 5, *final)
    ddim = ps.ddim_schedule(fewer, *final)
    S = 20000
    laws = {}
    for name, sched in (("fewer", fewer), ("ddim", ddim)):
        x = ps.run_chain(model, sched, S, seed=7).samples
        mean, var = model.output_law(sched)
        laws[name] = (x, mean, var)
        assert np.all(np.abs((x.mean(axis=0) - mean) / np.sqrt(var / S)) < 4.5)
        assert np.all(np.abs((x.var(axis=0, ddof=1) / var - 1) / np.sqrt(2 / (S - 1))) < 4.5)
    # Negative control: each sample against the other chain's law.
    x, _, _ = laws["ddim"]
    _, mean, var = laws["fewer"]
    zmean = np.abs((x.mean(axis=0) - mean) / np.sqrt(var / S))
    zvar = np.abs((x.var(axis=0, ddof=1) / var - 1) / np.sqrt(2 / (S - 1)))
    assert max(zmean.max(), zvar.max()) > 10


def test_picard_at_tight_tolerance_is_the_sequential_path():
    rng = np.random.default_rng(8)
    sched = ve(120, 80.0, 0.002)
    for model in (Gaussian(rng.normal(size=4), [0.5, 1, 1.5, 2]),
                  PointCloud(rng.normal(size=(6, 4)))):
        y0 = 80.0 * rng.standard_normal((5, 4))
        xi = rng.standard_normal((5, 120, 4))
        seq = ps.chain_path(model, sched, y0, xi)
        tight = ps.picard_path(model, sched, y0, xi, tol=1e-9, window=40)
        assert np.abs(tight.samples - seq).max() < 1e-6
        assert tight.rounds_per_sample.max() < 120                     # it did parallelise
        one = ps.picard_path(model, sched, y0, xi, tol=1e-9, window=1)
        assert (one.rounds_per_sample == 120).all() and np.abs(one.samples - seq).max() < 1e-9
        loose = ps.picard_path(model, sched, y0, xi, tol=30.0, window=120)   # negative control
        assert np.abs(loose.samples - seq).max() > 1e-3
        assert (loose.rounds_per_sample < tight.rounds_per_sample).all()


def test_picard_coupled_output_is_the_sequential_chain():
    model = Gaussian([0.0, 1.0], [1.0, 0.5])
    sched = ve(40, 80.0, 0.002)
    run = ps.picard(model, sched, 30, seed=1, tol=1e-9, window=40, chunk=7, coupled=True)
    assert run.samples.shape == (30, 2) and run.coupled.shape == (30, 2)
    assert np.abs(run.samples - run.coupled).max() < 1e-6
    with pytest.raises(ValueError, match="c_j > 0"):
        ps.picard_path(model, ps.ddim_schedule(sched, 1.0, 0.002), np.zeros((1, 2)),
                       np.zeros((1, 40, 2)), 0.1, 10)


# -- the study -----------------------------------------------------------------------------

TINY = peers.Budget(ar_samples=300, diffusion_samples=80, reference_samples=400, n_steps=20,
                    fewer_steps=(2, 5), picard_samples=40, picard_tols=(1.0,), n_null=20)

TINY_CASES = (
    peers.ARCase("tiny table", lambda: _table(seed=4, q=2, n=4), lambda m: m._flat),
    peers.ARCase("tiny energy AR", lambda: CurieWeiss(6, J=1.0), None, (0.1, 0.05), ks=(1, 3)),
    peers.ARCase("tiny sampled statistic", lambda: CurieWeiss(6, J=1.0), peers._magnetisation_law,
                 ks=(1, 3), statistic=peers._count_ones),
    peers.DiffusionCase("tiny gaussian", lambda: Gaussian([0.0, 1.0], [1.0, 0.5]),
                        lambda N: ve(N, 80.0, 0.002), 1.0, 0.002, (0.1, 0.01), gaussian=True),
    peers.DiffusionCase("tiny cloud vp", lambda: PointCloud(np.eye(3)), lambda N: vp(N, 0.1, 10.0),
                        1.0, 0.0, (0.05, 0.01)),
)


def test_quick_command_writes_csv_figure_and_table(tmp_path, monkeypatch):
    monkeypatch.setattr(peers, "QUICK", TINY)
    monkeypatch.setattr(peers, "CASES", {c.name: c for c in TINY_CASES})
    from fastspec.bench.__main__ import main
    main(["peers", "--quick", "--out", str(tmp_path)])
    rows = list(csv.DictReader((tmp_path / "peers.csv").read_text().splitlines()))
    assert tuple(rows[0]) == peers.CSV_COLUMNS
    by_model = {}
    for r in rows:
        by_model.setdefault(r["model"], set()).add(r["sampler"])
    exact = {"sequential", "fastspec-token", "fastspec-block"}
    assert by_model["tiny table"] == exact | {"parallel-unmask", "parallel-unmask-confidence"}
    assert by_model["tiny cloud vp"] == exact | {"fewer-steps", "ddim", "picard"}
    kinds = {r["model"]: r["error_kind"] for r in rows}
    assert kinds == {"tiny table": "tv", "tiny energy AR": "energy", "tiny sampled statistic": "tv",
                     "tiny gaussian": "kl", "tiny cloud vp": "energy"}
    for r in rows:
        assert math.isfinite(float(r["error"])) and float(r["error_se"]) >= 0
        assert float(r["rounds_per_sample"]) >= 1 and float(r["rows_per_sample"]) >= 1
    unmask = [r for r in rows if r["model"] == "tiny table" and r["sampler"] == "parallel-unmask"]
    assert [float(r["rounds_per_sample"]) for r in unmask] == [4.0, 2.0, 1.0]   # k = 1, 2, 4
    assert (tmp_path / "peers.png").stat().st_size > 10000
    assert "tiny gaussian" in (tmp_path / "peers_table.md").read_text()
    (tmp_path / "peers.png").unlink()
    assert peers.redraw(str(tmp_path)) == (tmp_path / "peers_table.md").read_text().strip()
    assert (tmp_path / "peers.png").exists()


def test_rounds_to_reach_reads_errors_with_their_standard_errors():
    rows = [dict(sampler="ddim", setting=f"N={n}", rounds_per_sample=float(n), error=e,
                 error_se=s)
            for n, e, s in ((2, 0.5, 0.0), (5, 0.04, 0.01), (10, 0.005, 0.01), (20, 0.001, 0.0))]
    rows = [dict(r, rows_per_sample=r["rounds_per_sample"]) for r in rows]
    assert peers.rounds_to_reach(rows, 0.1)["ddim"] == "5.0 (N=5; 5 rows)"
    # N=10 does not count for 0.02: 0.005 + 2 se > 0.02.
    assert peers.rounds_to_reach(rows, 0.02)["ddim"] == "20.0 (N=20; 20 rows)"
    assert peers.rounds_to_reach(rows[:3], 0.02)["ddim"] == "unresolved"
    assert peers.rounds_to_reach(rows[:1], 0.02)["ddim"] == "not reached"


def test_registry_rejects_duplicates_and_unknown_cases(tmp_path):
    with pytest.raises(ValueError, match="already registered"):
        peers.register(peers.CASES[next(iter(peers.CASES))])
    with pytest.raises(TypeError, match="ARCase or a DiffusionCase"):
        peers.register("not a case")
    with pytest.raises(ValueError, match="unknown case 'nope'"):
        peers.run(TINY, out=str(tmp_path), cases=["nope"], plot=False)


def test_curie_weiss_unmask_law_matches_enumeration():
    model = CurieWeiss(8, J=1.5, h=0.1)
    table = TableModel.from_model(model)
    ones = table._configs.sum(axis=1)
    assert np.allclose(peers._magnetisation_law(model), np.bincount(ones, weights=table._flat))
    for k in (1, 3, 8):
        enumerated = np.bincount(ones, weights=ps.parallel_unmask_law(model, k), minlength=9)
        assert np.allclose(peers._curie_weiss_unmask_law(model, k, False), enumerated, atol=1e-12)
    assert errors.tv_exact(peers._curie_weiss_unmask_law(model, 8, False),
                           peers._magnetisation_law(model)) > 0.1
