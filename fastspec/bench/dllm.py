"""fastspec against the masked-diffusion samplers on their own benchmark (issue 19).

Tang, Yu, Zhang and Ver Steeg, "Is Your Diffusion Sampler Actually Correct? A
Sampler-Centric Evaluation of Discrete Diffusion Language Models" (ICML 2026, arXiv
2602.19619) replace the denoiser of a masked-diffusion language model with the exact
posterior of a character Markov chain, so that whatever error remains comes from the
sampler. They find that few-step unmasking is far from the chain, and that the error
vanishes only as the number of steps approaches the sequence length.

This study builds the same benchmark: a 27-symbol character chain
(:meth:`fastspec.models.MarkovChain.characters`), the paper's two LLaDA samplers with
that chain's exact oracle at temperature 1 (:func:`unmask`: random and low-confidence
remasking, S steps), the paper's transition-level metrics (:func:`transition_rates`),
and the floor those metrics show for exact samples of the same size (sequences drawn
directly from the chain, :func:`floor`). fastspec's methods run on the same oracle.

``python -m fastspec.bench dllm [--quick] [--out DIR]`` writes ``dllm.csv``
(:data:`CSV_COLUMNS`) and ``dllm.png`` (KL rate against rounds per sample, one panel
per n, the floor as a band). docs/DLLM.md gives the results.
"""

import csv
import math
import os
import time
from dataclasses import dataclass

import numpy as np
from scipy.special import rel_entr

import fastspec
from .._checks import check_int
from ..api import check_n_samples
from ..models.ar import CHARACTER_SMOOTHING, MarkovChain
from .files import pyplot, write_csv
from .._rules import CONCRETE_METHODS

__all__ = ["Budget", "FULL", "QUICK", "CSV_COLUMNS", "REMASKING", "transfer_counts", "unmask",
           "transition_rates", "floor", "run", "plot_csv"]

CSV_COLUMNS = ("model", "n", "sampler", "setting", "rounds_per_sample", "rows_per_sample",
               "kl_rate", "kl_floor", "kl_floor_sd", "tv_rate")

#: LLaDA's remasking rules: "random" (the MDLM / LLaDA random order) and
#: "low_confidence" (the positions whose drawn symbol is most probable first).
REMASKING = ("random", "low_confidence")

MODEL_NAME = f"characters q=27 (Python docs, smoothing {CHARACTER_SMOOTHING:g})"


@dataclass(frozen=True)
class Budget:
    """Sizes and sample counts of a run (:data:`FULL`, :data:`QUICK`).

    Attributes
    ----------
    sizes : tuple of int
        Sequence lengths n.
    n_samples : tuple of int
        Samples per sampler at each size (the paper's code evaluates 512).
    replicates : int
        Replicates of the floor (each ``n_samples`` sequences drawn from the chain).
    methods : tuple of str
        fastspec methods.
    """

    sizes: tuple = (128, 1024)
    n_samples: tuple = (1000, 256)
    replicates: int = 30
    methods: tuple = CONCRETE_METHODS


FULL = Budget()
QUICK = Budget(sizes=(64,), n_samples=(300,), replicates=20)


def transfer_counts(n, steps):
    """Positions LLaDA unmasks at each of ``steps`` steps: ``n // steps`` each, and one
    more at each of the first ``n % steps`` steps.

    Returns
    -------
    ndarray of int64, shape (steps,), summing to n.

    Raises
    ------
    ValueError
        If ``steps`` is not an int in 1..n.
    """
    check_int("steps", steps, 1, n)
    counts = np.full(int(steps), n // steps, dtype=np.int64)
    counts[:n % steps] += 1
    return counts


def _draw(probs, rng):
    """One symbol per row of probs (..., q) by inverse CDF."""
    cdf = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1] + (1,)) * cdf[..., -1:]
    return np.minimum((u >= cdf).sum(axis=-1), probs.shape[-1] - 1)


def unmask(chain, steps, n_samples, seed=None, *, remasking="random"):
    """LLaDA's sampler with the chain's exact oracle, temperature 1, no prompt, one block.

    Every step draws a symbol at each masked position from its current marginal
    given the unmasked ones (temperature 1: the Gumbel-max draw of LLaDA is an exact
    categorical draw), then keeps :func:`transfer_counts` of them: positions chosen
    uniformly at random (``"random"``) or those whose drawn symbol has the highest
    probability (``"low_confidence"``, ties broken uniformly at random). The rest
    stay masked. One oracle call per step.

    Parameters
    ----------
    chain : fastspec.models.MarkovChain
        Asked through ``marginals_at`` (whatever protocol the engine uses).
    steps : int
        S, in 1..n. ``S = n`` in random order is the sequential sampler.
    n_samples : int
    seed : None, int, SeedSequence or Generator
        Passed to ``numpy.random.default_rng``.
    remasking : {"random", "low_confidence"}

    Returns
    -------
    fastspec.bench.peer_samplers.PeerRun
        ``samples`` int64 (n_samples, n); S rounds and S oracle rows per sample.

    Raises
    ------
    ValueError
        If ``steps``, ``n_samples`` or ``remasking`` is out of range.

    Notes
    -----
    Only the kept positions need their marginals in random order, so that variant
    asks :meth:`~fastspec.models.MarkovChain.marginals_at` for them; it has the law of
    :func:`fastspec.bench.peer_samplers.parallel_unmask` when S divides n. The
    low-confidence rule needs every masked position's draw and its probability.
    """
    from .peer_samplers import PeerRun
    n = chain.n
    counts = transfer_counts(n, steps)
    if remasking not in REMASKING:
        raise ValueError(f"remasking must be one of {REMASKING}, got {remasking!r}")
    S = check_n_samples(n_samples)
    rng = np.random.default_rng(seed)
    ctx = np.full((S, n), -1, dtype=np.int64)
    rows = np.arange(S)[:, None]
    every = np.broadcast_to(np.arange(n), (S, n))
    for m in counts:
        key = np.where(ctx < 0, rng.random((S, n)), np.inf)
        if remasking == "random":
            pick = np.argpartition(key, m - 1, axis=1)[:, :m]            # m masked positions
            ctx[rows, pick] = _draw(chain.marginals_at(ctx, pick), rng)
        else:
            probs = chain.marginals_at(ctx, every)                       # (S, n, q)
            x0 = _draw(probs, rng)
            conf = np.take_along_axis(probs, x0[..., None], axis=-1)[..., 0]
            # Confidences equal to 12 decimals are ties; the key (< 1) reorders only
            # those, uniformly at random, and masked positions rank first.
            score = np.where(ctx < 0, np.round(conf, 12) + 0.4e-12 * key, -np.inf)
            pick = np.argpartition(-score, m - 1, axis=1)[:, :m]
            ctx[rows, pick] = x0[rows, pick]
    count = np.full(S, len(counts), dtype=np.int64)
    return PeerRun(ctx, count, count.copy())


def transition_rates(samples, transition):
    """Transition-level KL and TV rates of sequences against a chain (Tang et al. 2026).

    With ``C[a, b]`` the number of times ``b`` follows ``a`` in the samples,
    ``w_a = sum_b C[a, b] / sum C`` and ``p_a = C[a, .] / sum_b C[a, b]``:
    ``KL rate = sum_a w_a KL(p_a || T[a, .])`` and
    ``TV rate = sum_a w_a TV(p_a, T[a, .])``, ``TV = half the L1 distance``
    (the "full" metrics of the paper's code, ``sampler/metrics_full.py``).

    Parameters
    ----------
    samples : array_like of int, shape (S, n), n >= 2
    transition : ndarray (q, q)
        Row-stochastic.

    Returns
    -------
    kl_rate, tv_rate : float
        In nats and in [0, 1].

    Notes
    -----
    Both are plug-in estimates, biased upwards: exact samples show about
    (number of bigrams with positive probability - q) / (2 * sum C) of KL rate.
    :func:`floor` measures that bias at the same sample size.
    """
    x = np.asarray(samples, dtype=np.int64)
    q = transition.shape[0]
    counts = np.bincount((x[:, :-1] * q + x[:, 1:]).ravel(), minlength=q * q).reshape(q, q)
    rows = counts.sum(axis=1)
    w = rows / rows.sum()
    p = counts / np.maximum(rows, 1)[:, None]
    kl = float(np.sum(w * rel_entr(p, transition).sum(axis=1)))
    tv = float(np.sum(w * 0.5 * np.abs(p - transition).sum(axis=1)))
    return kl, tv


def floor(chain, n_samples, replicates, seed=None):
    """KL and TV rates of exact samples: sequences drawn directly from the chain.

    Parameters
    ----------
    chain : fastspec.models.MarkovChain
    n_samples : int
        Sequences per replicate (the sample size of the sampler compared).
    replicates : int
    seed : None, int or SeedSequence

    Returns
    -------
    ndarray, shape (replicates, 2)
        KL rate and TV rate of each replicate.
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return np.array([transition_rates(chain.simulate(n_samples, s), chain.transition)
                     for s in ss.spawn(replicates)])


def _steps(n):
    return [2 ** i for i in range(1, int(math.log2(n)) + 1)] + ([] if n & (n - 1) == 0 else [n])


def run(budget=FULL, out="docs", seed=2026, plot=True, log=print):
    """Run the study; write ``dllm.csv`` and ``dllm.png`` in ``out``.

    For each n: the floor (``budget.replicates`` replicates), fastspec's methods
    (random order), and both unmasking rules at S = 2, 4, 8, ... n steps, each
    with ``n_samples`` samples.

    Parameters
    ----------
    budget : Budget
    out, seed, plot, log
        As in :func:`fastspec.bench.peers.run` (here ``plot`` draws ``dllm.png``).

    Returns
    -------
    list of dict
        The CSV rows.
    """
    root = np.random.SeedSequence(seed)
    rows = []
    t0 = time.perf_counter()
    for n, n_samples in zip(budget.sizes, budget.n_samples):
        chain = MarkovChain.characters(n)
        t = time.perf_counter()
        fl = floor(chain, n_samples, budget.replicates, root.spawn(1)[0])
        kl_floor, kl_sd = float(fl[:, 0].mean()), float(fl[:, 0].std(ddof=1))
        log(f"n={n}, {n_samples} samples: floor KL rate {kl_floor:.5f} +- {kl_sd:.5f}, TV rate "
            f"{fl[:, 1].mean():.5f} ({budget.replicates} replicates, "
            f"{time.perf_counter() - t:.1f}s)")

        def add(sampler, setting, samples, rounds, work, t):
            kl, tv = transition_rates(samples, chain.transition)
            rows.append(dict(model=MODEL_NAME, n=n, sampler=sampler, setting=setting,
                             rounds_per_sample=float(np.mean(rounds)),
                             rows_per_sample=float(np.mean(work)), kl_rate=kl, kl_floor=kl_floor,
                             kl_floor_sd=kl_sd, tv_rate=tv))
            log(f"  {sampler:24s} {setting:13s} rounds {np.mean(rounds):7.1f}  rows "
                f"{np.mean(work):7.0f}  KL rate {kl:.5f} ({(kl - kl_floor) / kl_sd:+7.1f} sd)  "
                f"TV rate {tv:.4f}  ({time.perf_counter() - t:.1f}s)")

        for method in budget.methods:
            t = time.perf_counter()
            res = fastspec.sample(chain, n_samples=n_samples, method=method,
                                  seed=root.spawn(1)[0])
            name = method if method == "sequential" else f"fastspec-{method}"
            add(name, "random order", res.samples, res.stats.rounds_per_sample,
                res.stats.rows_per_sample, t)
        for remasking in REMASKING:
            for steps in _steps(n):
                t = time.perf_counter()
                got = unmask(chain, steps, n_samples, root.spawn(1)[0], remasking=remasking)
                add(f"unmask-{remasking.replace('_', '-')}", f"S={steps}", got.samples,
                    got.rounds_per_sample, got.rows_per_sample, t)
    write_csv(os.path.join(out, "dllm.csv"), rows, CSV_COLUMNS)
    if plot:
        _plot(rows, os.path.join(out, "dllm.png"))
    log(f"total {time.perf_counter() - t0:.0f}s")
    return rows


# -- figure ------------------------------------------------------------------------------

_STYLE = {"unmask-random": ("C0", "o-"), "unmask-low-confidence": ("C1", "s--"),
          "sequential": ("k", "D"), "fastspec-token": ("C3", "P"), "fastspec-block": ("C4", "*"),
          "fastspec-srs": ("C2", "^")}


def plot_csv(csv_path, png_path):
    """Redraw ``dllm.png`` from a ``dllm.csv`` written by :func:`run`."""
    with open(csv_path, newline="") as f:
        rows = [dict(r, n=int(r["n"]), **{k: float(r[k]) for k in CSV_COLUMNS[4:]})
                for r in csv.DictReader(f)]
    _plot(rows, png_path)


def _plot(rows, path):
    plt = pyplot()
    if plt is None:
        return
    sizes = list(dict.fromkeys(r["n"] for r in rows))
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.2 * len(sizes), 4.2), squeeze=False)
    for ax, n in zip(axes[0], sizes):
        mine = [r for r in rows if r["n"] == n]
        mean, sd = mine[0]["kl_floor"], mine[0]["kl_floor_sd"]
        ax.axhspan(max(mean - 3 * sd, 1e-12), mean + 3 * sd, color="grey", alpha=0.3,
                   label="exact floor, mean +- 3 sd")
        ax.axhline(mean, color="grey", lw=0.8)
        for sampler, (color, fmt) in _STYLE.items():
            pts = sorted((r["rounds_per_sample"], r["kl_rate"]) for r in mine
                         if r["sampler"] == sampler)
            if pts:
                x, y = zip(*pts)
                ax.plot(x, y, fmt, color=color, ms=10 if fmt in "DP*^" else 4, lw=1,
                        label=sampler)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("rounds per sample (oracle calls in sequence)")
        ax.set_ylabel("transition KL rate (nats)")
        ax.set_title(f"{mine[0]['model']}, n = {n}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
