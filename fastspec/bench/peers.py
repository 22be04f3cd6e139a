"""fastspec side by side with the approximate samplers people use instead (issue 11).

``python -m fastspec.bench peers [--quick] [--out DIR]`` runs every registered case
and writes ``peers.csv`` (one row per sampler and setting), ``peers.png`` (error
against rounds per sample, one panel per case) and ``peers_table.md`` (per case, the
fewest rounds each sampler needs to get within the case's stated error).

Cases live in a registry (:data:`CASES`, :func:`register`): an :class:`ARCase` or a
:class:`DiffusionCase` says how to build the model, what the target law is and how
the error is measured. Other modules (e.g. trained models) can register more.

Errors (:mod:`fastspec.bench.peer_errors`): ``tv`` on AR models with an exact target
law (exact for the unmasking peers when their law can be computed, from samples
otherwise), ``kl`` for Gaussian targets (closed form for chains whose output law is
Gaussian, from samples for the fastspec methods), ``energy`` (energy distance to a
large reference sample) for everything else. Picard's error is paired with the
sequential chain run on the same noise. The target of a diffusion case is the law of
its reference chain (``n_steps`` steps), which fastspec samples exactly, not the data
law. docs/PEERS.md explains each choice.
"""

import csv
import math
import os
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from scipy import stats

import fastspec
from . import peer_errors as errors
from . import peer_samplers as approx
from .files import pyplot, write_csv

__all__ = ["ARCase", "DiffusionCase", "Budget", "FULL", "QUICK", "CASES", "register", "run",
           "rounds_to_reach", "format_table", "redraw", "plot_csv", "CSV_COLUMNS", "SAMPLERS"]

CSV_COLUMNS = ("model", "sampler", "setting", "rounds_per_sample", "rows_per_sample", "error",
               "error_kind", "error_se")

#: Sampler names in the CSV. fastspec's own methods draw the target law exactly.
SAMPLERS = ("sequential", "fastspec-token", "fastspec-block", "parallel-unmask",
            "parallel-unmask-confidence", "fewer-steps", "ddim", "picard")
EXACT_SAMPLERS = ("sequential", "fastspec-token", "fastspec-block")


@dataclass(frozen=True)
class ARCase:
    """An any-order AR model in the comparison.

    Attributes
    ----------
    name : str
        Panel title and ``model`` column.
    build : callable
        ``build() -> fastspec.ARModel`` (called once per run).
    target : callable or None
        ``target(model) -> ndarray (M,)``: the exact target law of the cells of
        ``statistic`` (by default of every configuration, in C order as
        ``TableModel.flat_index``); errors are then total variations. None: errors
        are energy distances between one-hot codes and a long sequential reference.
    thresholds : tuple of float
        Stated errors for the summary table (loose first).
    ks : tuple of int or None
        Positions per round for the unmasking peers; None = ``ceil(n / R)`` for
        every round count ``R = n .. 1``.
    statistic : callable or None
        ``statistic(samples (S, n)) -> int (S,)`` cells in ``0..M-1``. The TV of a
        statistic is at most the TV of the configurations, and equal to it when it
        is sufficient for both laws (e.g. the number of ones for an exchangeable
        model sampled in a uniformly random order).
    peer_law : callable or None
        ``peer_law(model, k, confident) -> ndarray (M,)``: exact law of the cells for
        the unmasking peers. Without it the law is enumerated
        (:func:`peer_samplers.parallel_unmask_law`) when ``statistic`` is None and
        ``(q + 1)**n <= ENUMERATE_MAX``, and sampled otherwise.
    """

    name: str
    build: Callable
    target: Optional[Callable] = None
    thresholds: tuple = (0.1, 0.02)
    ks: Optional[tuple] = None
    statistic: Optional[Callable] = None
    peer_law: Optional[Callable] = None


#: Largest (q + 1)**n for which the unmasking peers' laws are enumerated.
ENUMERATE_MAX = 200_000


@dataclass(frozen=True)
class DiffusionCase:
    """A diffusion model in the comparison.

    Attributes
    ----------
    name : str
    build : callable
        ``build() -> fastspec.DiffusionModel``.
    reference : callable
        ``reference(n_steps) -> Schedule``: the reference chain (the target law).
    final_s, final_sigma : float
        Level of the reference chain's output (VE: ``1, sigma_min``; VP: ``1, 0``),
        used by :func:`peer_samplers.respace` and :func:`peer_samplers.ddim_schedule`.
    thresholds : tuple of float
        Stated errors for the summary table (loose first).
    gaussian : bool
        True if ``build()`` has ``output_law(schedule)`` (a linear denoiser): errors
        are KL divergences; otherwise energy distances (Euclidean).
    """

    name: str
    build: Callable
    reference: Callable
    final_s: float
    final_sigma: float
    thresholds: tuple
    gaussian: bool = False


@dataclass(frozen=True)
class Budget:
    """Sample sizes and settings of a run (:data:`FULL`, :data:`QUICK`).

    Attributes
    ----------
    ar_samples : int
        Samples per sampler when an AR error is estimated from samples.
    diffusion_samples : int
        Samples per sampler when a diffusion error is estimated from samples.
    reference_samples : int
        Size of the sequential reference sample for energy distances.
    n_steps : int
        Steps of every diffusion reference chain (what fastspec samples exactly).
    fewer_steps : tuple of int
        Step counts of ``fewer-steps`` and ``ddim`` (each <= n_steps).
    picard_samples : int
        Picard samples (its error is measured against the sequential chain on the
        same noise, which needs fewer samples).
    picard_tols : tuple of float
        Picard tolerances.
    picard_window : int or None
        Picard window length; None = the whole chain.
    n_null : int
        Simulations of the target for the calibration of sample-based TV and KL.
    ar_methods, diffusion_methods : tuple of str
        fastspec methods run on each case (``"sequential"``, ``"token"``, ``"block"``).
    """

    ar_samples: int = 20000
    diffusion_samples: int = 4000
    reference_samples: int = 20000
    n_steps: int = 1000
    fewer_steps: tuple = (2, 5, 10, 20, 50, 100, 200, 500)
    picard_samples: int = 1000
    picard_tols: tuple = (30.0, 10.0, 3.0, 1.0, 0.3, 0.1)
    picard_window: Optional[int] = None
    n_null: int = 200
    ar_methods: tuple = ("sequential", "token", "block")
    diffusion_methods: tuple = ("sequential", "token", "block")


FULL = Budget()
QUICK = Budget(ar_samples=4000, diffusion_samples=400, reference_samples=4000, n_steps=100,
               fewer_steps=(2, 5, 10, 20, 50), picard_samples=200, picard_tols=(10.0, 1.0, 0.1),
               n_null=100)

#: The registry: case name -> ARCase or DiffusionCase, run in insertion order.
CASES = {}


def register(case):
    """Add ``case`` (an :class:`ARCase` or :class:`DiffusionCase`) to :data:`CASES`.

    Raises
    ------
    TypeError
        If ``case`` is neither.
    ValueError
        If a case of that name is already registered.
    """
    if not isinstance(case, (ARCase, DiffusionCase)):
        raise TypeError(f"case must be an ARCase or a DiffusionCase, got {type(case).__name__}")
    if case.name in CASES:
        raise ValueError(f"a case named {case.name!r} is already registered")
    CASES[case.name] = case
    return case


# -- built-in cases ----------------------------------------------------------------------

def _random_table():
    # A joint drawn uniformly from the simplex over 3**7 = 2187 configurations.
    rng = np.random.default_rng(11)
    return fastspec.models.TableModel(rng.dirichlet(np.ones(3 ** 7)).reshape((3,) * 7))


def _table_law(model):
    return fastspec.models.TableModel.from_model(model)._flat


def _markov():
    e2 = math.exp(2.0)
    return fastspec.models.MarkovChain(np.array([[e2, 1.0], [1.0, e2]]), n=10)


def _gaussian():
    rng = np.random.default_rng(12)
    return fastspec.models.Gaussian(rng.normal(size=8), np.linspace(0.5, 2.0, 8))


def _point_cloud():
    return fastspec.models.PointCloud(np.random.default_rng(0).normal(size=(16, 16)))


def _count_ones(samples):
    return np.asarray(samples).sum(axis=1)


def _magnetisation_law(model):
    """Law of the number of +1 spins u of a Curie-Weiss model: C(n, u) exp(J M^2 / 2n + h M)."""
    n = model.n
    u = np.arange(n + 1)
    M = 2 * u - n
    logc = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in u])
    e = logc + model.J / (2 * n) * M ** 2 + model.h * M
    p = np.exp(e - e.max())
    return p / p.sum()


def _curie_weiss_unmask_law(model, k, confident):
    """Exact law of the number of +1 spins after parallel unmasking of a Curie-Weiss model.

    All free sites share one marginal (the model is exchangeable), so a round that
    draws m of them independently adds Binomial(m, p_up) ones, p_up read from the
    oracle given the ones so far. Confidences all tie, so the confident variant
    picks uniformly at random too: both have this law.
    """
    n = model.n
    law = np.zeros(n + 1)
    law[0] = 1.0
    for start in range(0, n, k):
        m = min(k, n - start)
        ctx = np.full((start + 1, n), -1, dtype=np.int64)
        for u in range(start + 1):                   # u ones and start - u zeros pinned
            ctx[u, :u] = 1
            ctx[u, u:start] = 0
        p_up = np.asarray(model.marginals(ctx))[:, n - 1, 1]         # a free site
        new = np.zeros(n + 1)
        for u in range(start + 1):
            if law[u] > 0:
                new[u:u + m + 1] += law[u] * stats.binom.pmf(np.arange(m + 1), m, p_up[u])
        law = new
    return law


def _ve(n):
    return fastspec.schedules.ve(n, 80.0, 0.002)


def _vp(n):
    return fastspec.schedules.vp(n, 0.1, 20.0)


register(ARCase("Table q=3 n=7 (Dirichlet(1) joint)", _random_table, lambda m: m._flat))
register(ARCase("CurieWeiss n=10 J=1.5", lambda: fastspec.models.CurieWeiss(10, J=1.5), _table_law))
register(ARCase("Markov n=10 [[e2,1],[1,e2]]", _markov, _table_law))
register(ARCase("CurieWeiss n=256 J=1 (number of ones)", lambda: fastspec.models.CurieWeiss(256),
                _magnetisation_law, ks=tuple(2 ** i for i in range(9)), statistic=_count_ones,
                peer_law=_curie_weiss_unmask_law))
register(DiffusionCase("Gaussian d=8, VE", _gaussian, _ve, 1.0, 0.002, (0.1, 0.01),
                       gaussian=True))
register(DiffusionCase("Gaussian d=8, VP", _gaussian, _vp, 1.0, 0.0, (0.1, 0.01), gaussian=True))
register(DiffusionCase("PointCloud 16 pts d=16, VE", _point_cloud, _ve, 1.0, 0.002, (0.01, 0.003)))


# -- running -----------------------------------------------------------------------------

def _row(model, sampler, setting, rounds, rows, error, kind, se):
    return dict(model=model, sampler=sampler, setting=setting,
                rounds_per_sample=float(np.mean(rounds)), rows_per_sample=float(np.mean(rows)),
                error=float(error), error_kind=kind, error_se=float(se))


def _fastspec(model, method, n_samples, seed, **kw):
    res = fastspec.sample(model, n_samples=n_samples, method=method, seed=seed, **kw)
    return res.samples, res.stats.rounds_per_sample, res.stats.rows_per_sample


def _exact_name(method):
    return method if method == "sequential" else f"fastspec-{method}"


def _ar_ks(case, n):
    return case.ks or tuple(sorted({math.ceil(n / r) for r in range(1, n + 1)}))


def _one_hot(x, q):
    return np.eye(q, dtype=np.float64)[x].reshape(len(x), -1)


def run_ar(case, budget, seeds, log=print):
    """Rows of the CSV for one AR case (see :func:`run`)."""
    model = case.build()
    n, q = model.n, model.q
    rows = []
    exact_law = case.peer_law
    if case.target is not None:
        target = np.asarray(case.target(model), dtype=np.float64)
        kind = "tv"
        if exact_law is None and case.statistic is None and (q + 1) ** n <= ENUMERATE_MAX:
            def exact_law(model, k, confident):
                return approx.parallel_unmask_law(model, k, confident=confident)

        def measure(samples):
            if case.statistic is None:
                cells = np.ravel_multi_index(tuple(np.asarray(samples).T), (q,) * n)
            else:
                cells = case.statistic(samples)
            return errors.tv_from_samples(cells, target, seeds.spawn(1)[0], budget.n_null)
    else:
        kind = "energy"
        ref = approx.parallel_unmask(model, 1, budget.reference_samples, seeds.spawn(1)[0])
        # Euclidean distance of one-hot codes = sqrt(2 * Hamming): characteristic, unlike
        # the Hamming distance itself (which only compares one-position marginals).
        reference = errors.EnergyReference(_one_hot(ref.samples, q), n_perm=budget.n_null,
                                           seed=seeds.spawn(1)[0])

        def measure(samples):
            return reference.distance(_one_hot(samples, q))
    for method in budget.ar_methods:
        t = time.perf_counter()
        x, r, w = _fastspec(model, method, budget.ar_samples, seeds.spawn(1)[0])
        err, se = measure(x)
        rows.append(_row(case.name, _exact_name(method), "random order", r, w, err, kind, se))
        log(f"  {_exact_name(method):28s} rounds {np.mean(r):7.2f}  {kind} {err:+.4f} "
            f"+- {se:.4f}  ({time.perf_counter() - t:.1f}s)")
    for confident in (False, True):
        name = "parallel-unmask-confidence" if confident else "parallel-unmask"
        for k in _ar_ks(case, n):
            t = time.perf_counter()
            if kind == "tv" and exact_law is not None:
                err, se = errors.tv_exact(exact_law(model, k, confident), target), 0.0
                r = w = np.full(1, math.ceil(n / k))
            else:
                run = approx.parallel_unmask(model, k, budget.ar_samples, seeds.spawn(1)[0],
                                            confident=confident)
                err, se = measure(run.samples)
                r, w = run.rounds_per_sample, run.rows_per_sample
            rows.append(_row(case.name, name, f"k={k}", r, w, err, kind, se))
            log(f"  {name:28s} k={k:<4d} rounds {np.mean(r):7.2f}  {kind} {err:+.4f} +- {se:.4f}"
                f"  ({time.perf_counter() - t:.1f}s)")
    return rows


def run_diffusion(case, budget, seeds, log=print):
    """Rows of the CSV for one diffusion case (see :func:`run`)."""
    model = case.build()
    N = budget.n_steps
    ref_sched = case.reference(N)
    S = budget.diffusion_samples
    if case.gaussian:
        kind = "kl"
        ref_mean, ref_var = model.output_law(ref_sched)

        def measure(samples):
            return errors.kl_from_samples(samples, ref_mean, ref_var, seeds.spawn(1)[0],
                                          budget.n_null)

        def closed_form(schedule):
            return errors.gaussian_kl(*model.output_law(schedule), ref_mean, ref_var), 0.0

        def paired(x, x0):
            return errors.kl_paired(x, x0, ref_mean, ref_var, seeds.spawn(1)[0], budget.n_null)
    else:
        kind = "energy"
        t = time.perf_counter()
        ref = approx.run_chain(model, ref_sched, budget.reference_samples, seeds.spawn(1)[0])
        reference = errors.EnergyReference(ref.samples, n_perm=budget.n_null,
                                           seed=seeds.spawn(1)[0])
        log(f"  reference: {budget.reference_samples} samples of {N} steps "
            f"({time.perf_counter() - t:.1f}s)")
        measure = reference.distance
        closed_form = None

        def paired(x, x0):
            return reference.paired_difference(x, x0, seeds.spawn(1)[0], budget.n_null)

    def add(sampler, setting, r, w, err, se, t):
        rows.append(_row(case.name, sampler, setting, r, w, err, kind, se))
        log(f"  {sampler:28s} {setting:22s} rounds {np.mean(r):8.2f}  {kind} {err:+.5f} "
            f"+- {se:.5f}  ({time.perf_counter() - t:.1f}s)")

    rows = []
    for method in budget.diffusion_methods:
        t = time.perf_counter()
        x, r, w = _fastspec(model, method, S, seeds.spawn(1)[0], schedule=ref_sched)
        add(_exact_name(method), f"N={N}", r, w, *measure(x), t)
    for steps in budget.fewer_steps:
        if steps > N:
            continue
        fewer = approx.respace(ref_sched, steps, case.final_s, case.final_sigma)
        for name, sched in (("fewer-steps", fewer),
                            ("ddim", approx.ddim_schedule(fewer, case.final_s, case.final_sigma))):
            t = time.perf_counter()
            if closed_form is not None:
                err, se = closed_form(sched)
                r = w = np.full(1, steps)
            else:
                run = approx.run_chain(model, sched, S, seeds.spawn(1)[0])
                err, se = measure(run.samples)
                r, w = run.rounds_per_sample, run.rows_per_sample
            add(name, f"N={steps}", r, w, err, se, t)
    window = budget.picard_window or N
    for tol in budget.picard_tols:
        t = time.perf_counter()
        run = approx.picard(model, ref_sched, budget.picard_samples, seeds.spawn(1)[0], tol=tol,
                           window=window, coupled=True)
        add("picard", f"tol={tol:g} window={window}", run.rounds_per_sample,
            run.rows_per_sample, *paired(run.samples, run.coupled), t)
    return rows


def run(budget=FULL, out="docs", cases=None, seed=2026, plot=True, log=print):
    """Run the comparison; write ``peers.csv``, ``peers.png`` and ``peers_table.md``.

    Parameters
    ----------
    budget : Budget
        Sample sizes and settings (:data:`FULL` or :data:`QUICK`).
    out : str
        Output folder (created if missing).
    cases : iterable of str, ARCase or DiffusionCase, or None
        Registered case names or case objects to run (None = all of :data:`CASES`).
    seed : int
        Root of every random stream (children spawned per sampler, in order).
    plot : bool
        Draw ``peers.png`` (needs matplotlib).
    log : callable
        Progress printer.

    Returns
    -------
    list of dict
        The CSV rows.

    Raises
    ------
    ValueError
        If a case name is not registered.
    TypeError
        If ``cases`` holds something else than names and case objects.
    """
    chosen = []
    for case in (CASES.values() if cases is None else cases):
        if isinstance(case, str):
            if case not in CASES:
                raise ValueError(f"unknown case {case!r}; registered: {', '.join(CASES)}")
            case = CASES[case]
        elif not isinstance(case, (ARCase, DiffusionCase)):
            raise TypeError(f"cases must hold names or ARCase/DiffusionCase objects, got "
                            f"{type(case).__name__}")
        chosen.append(case)
    thresholds = {case.name: case.thresholds for case in chosen}
    root = np.random.SeedSequence(seed)
    rows = []
    t0 = time.perf_counter()
    for case in chosen:
        log(f"{case.name}:")
        seeds = root.spawn(1)[0]
        runner = run_ar if isinstance(case, ARCase) else run_diffusion
        rows += runner(case, budget, seeds, log=log)
    write_csv(os.path.join(out, "peers.csv"), rows, CSV_COLUMNS)
    table = format_table(rows, thresholds)
    with open(os.path.join(out, "peers_table.md"), "w") as f:
        f.write(table + "\n")
    log(table)
    if plot:
        _plot(rows, os.path.join(out, "peers.png"), thresholds)
    log(f"total {time.perf_counter() - t0:.0f}s")
    return rows


# -- summary -----------------------------------------------------------------------------

def rounds_to_reach(rows, threshold):
    """Fewest rounds per sample at which each approximate sampler is within ``threshold``.

    A setting counts when ``error + 2 * error_se <= threshold`` (within the stated
    error at about 97.5 % one-sided confidence; exact figures have se 0).

    Parameters
    ----------
    rows : list of dict
        CSV rows of one model.
    threshold : float

    Returns
    -------
    dict
        sampler -> text: the rounds and the setting; ``"not reached"`` when every
        setting is above the threshold by more than 2 se; ``"unresolved"`` when
        some setting's interval straddles it and none is below.
    """
    res = {}
    for sampler in SAMPLERS:
        mine = [r for r in rows if r["sampler"] == sampler]
        if not mine or sampler in EXACT_SAMPLERS:
            continue
        ok = [r for r in mine if r["error"] + 2 * r["error_se"] <= threshold]
        if ok:
            best = min(ok, key=lambda r: r["rounds_per_sample"])
            res[sampler] = (f"{best['rounds_per_sample']:.1f} ({best['setting']}; "
                            f"{best['rows_per_sample']:.0f} rows)")
        elif any(r["error"] - 2 * r["error_se"] <= threshold for r in mine):
            res[sampler] = "unresolved"
        else:
            res[sampler] = "not reached"
    return res


def format_table(rows, thresholds):
    """Markdown table: rounds each sampler needs to be within each stated error.

    Parameters
    ----------
    rows : list of dict
        CSV rows.
    thresholds : dict
        model name -> tuple of stated errors (loose first).

    Returns
    -------
    str
        Per model, a header line with the error kind and the stated errors, then
        one line per sampler. fastspec's methods and the sequential sampler are
        exact at every error: their line gives the measured rounds and whether the
        measured error is consistent with zero (``|error| <= 2 se``).
    """
    cols = max(len(t) for t in thresholds.values())
    lines = ["| model / sampler | " + " | ".join(f"rounds for error <= eps{i + 1}"
                                               for i in range(cols)) + " |",
             "|---|" + "---|" * cols]
    for model, thr in thresholds.items():
        mine = [r for r in rows if r["model"] == model]
        if not mine:
            continue
        cells = [f"{mine[0]['error_kind']}, eps{i + 1} = {t:g}" for i, t in enumerate(thr)]
        lines.append(f"| **{model}** | " + " | ".join(cells + [""] * (cols - len(thr))) + " |")
        for r in mine:
            if r["sampler"] in EXACT_SAMPLERS:
                zero = abs(r["error"]) <= 2 * r["error_se"]
                txt = (f"{r['rounds_per_sample']:.1f} (exact, {r['rows_per_sample']:.0f} rows; "
                       f"measured {r['error']:+.2g} +- {r['error_se']:.2g}, "
                       f"{'consistent with 0' if zero else 'NOT consistent with 0'})")
                cells = [txt] + ["same"] * (cols - 1)
                lines.append(f"| {r['sampler']} | " + " | ".join(cells) + " |")
        per = [rounds_to_reach(mine, t) for t in thr]
        for sampler in per[0]:
            cells = [p[sampler] for p in per] + [""] * (cols - len(thr))
            lines.append(f"| {sampler} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- figure ------------------------------------------------------------------------------

_STYLE = {"parallel-unmask": ("C0", "o-"), "parallel-unmask-confidence": ("C1", "s--"),
          "fewer-steps": ("C0", "o-"), "ddim": ("C1", "s--"), "picard": ("C2", "^-"),
          "sequential": ("k", "D"), "fastspec-token": ("C3", "P"), "fastspec-block": ("C4", "*")}


def _read(path):
    with open(path, newline="") as f:
        return [dict(r, **{k: float(r[k]) for k in ("rounds_per_sample", "rows_per_sample",
                                                   "error", "error_se")})
                for r in csv.DictReader(f)]


def redraw(out="docs"):
    """Rewrite ``peers_table.md`` and ``peers.png`` in ``out`` from its ``peers.csv``.

    The stated errors are those of the registered cases.
    """
    rows = _read(os.path.join(out, "peers.csv"))
    thresholds = {m: CASES[m].thresholds for m in dict.fromkeys(r["model"] for r in rows)
                  if m in CASES}
    table = format_table(rows, thresholds)
    with open(os.path.join(out, "peers_table.md"), "w") as f:
        f.write(table + "\n")
    _plot(rows, os.path.join(out, "peers.png"), thresholds)
    return table


def plot_csv(csv_path, png_path, thresholds=None):
    """Redraw ``peers.png`` from a ``peers.csv`` written by :func:`run`.

    ``thresholds`` (model -> stated error) defaults to the registered cases'.
    """
    rows = _read(csv_path)
    if thresholds is None:
        thresholds = {r["model"]: CASES[r["model"]].thresholds for r in rows if r["model"] in CASES}
    _plot(rows, png_path, thresholds)


def _plot(rows, path, thresholds):
    plt = pyplot()
    if plt is None:
        return
    from matplotlib import ticker
    models = list(dict.fromkeys(r["model"] for r in rows))
    cols = min(3, len(models))
    nrow = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(4.6 * cols, 3.8 * nrow), squeeze=False)
    for ax, mod in zip(axes.ravel(), models):
        mine = [r for r in rows if r["model"] == mod]
        # Linear near zero up to the decade of the exact samplers' typical error bar.
        ses = [r["error_se"] for r in mine if r["sampler"] in EXACT_SAMPLERS and r["error_se"] > 0]
        floor = 10.0 ** math.ceil(math.log10(np.median(ses))) if ses else 1e-3
        for sampler in SAMPLERS:
            pts = sorted((r["rounds_per_sample"], r["error"], r["error_se"])
                         for r in mine if r["sampler"] == sampler)
            if not pts:
                continue
            color, fmt = _STYLE[sampler]
            x, y, e = map(np.array, zip(*pts))
            ax.errorbar(x, y, yerr=2 * e, fmt=fmt, color=color, ms=9 if fmt in "DP*" else 4,
                        lw=1, capsize=2, label=sampler)
        for i, t in enumerate(thresholds.get(mod, ())):
            ax.axhline(t, color="grey", ls=":", lw=1, label="stated errors" if i == 0 else None)
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_yscale("symlog", linthresh=floor)
        ax.set_title(mod, fontsize=9)
        ax.set_xlabel("rounds per sample")
        ax.set_ylabel(f"error ({mine[0]['error_kind']}), bars 2 se")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    for ax in axes.ravel()[len(models):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
