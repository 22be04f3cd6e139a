"""Approximate samplers people run instead of fastspec (comparison code, not the sampling API).

AR (any-order models through ``model.marginals``):

* :func:`parallel_unmask` -- k positions per round, drawn independently from the
  current marginals, no verification (the MDLM / LLaDA style of parallel decoding);
  random order, or the k most confident positions first. ``k = 1`` in random order
  is the sequential sampler.
* :func:`parallel_unmask_law` -- the exact output law of the same sampler on a small
  model, by propagating probability mass over every reachable context.

Diffusion (Gaussian chains of :mod:`fastspec.schedules`):

* :func:`run_chain` -- run a schedule step by step (the reference chain, and
  ``fewer-steps``: the same chain on fewer of its noise levels, :func:`respace`).
* :func:`ddim_schedule` -- the deterministic DDIM chain on a schedule's noise grid.
* :func:`picard` -- ParaDiGMS-style Picard iterations over a sliding window of the
  chain, its noise fixed in advance, stopping at a tolerance.

Every sampler returns a :class:`PeerRun`: the samples and, per sample, the rounds
(batched oracle calls the sample took part in) and the oracle rows it used.
"""

from dataclasses import dataclass
from itertools import combinations
from math import comb
from typing import Optional

import numpy as np

from .._checks import check_int

from ..schedules import Schedule

__all__ = ["PeerRun", "parallel_unmask", "parallel_unmask_law", "confidence", "run_chain",
           "chain_path", "respace", "ddim_schedule", "picard", "picard_path", "CONFIDENCE_DECIMALS"]

#: Confidences are rounded to this many decimals before ranking, so positions whose
#: marginals are equal up to floating-point noise count as tied (the exact law and
#: the sampler break those ties the same way: uniformly at random).
CONFIDENCE_DECIMALS = 12


@dataclass(frozen=True)
class PeerRun:
    """Output of an approximate sampler.

    Attributes
    ----------
    samples : ndarray, shape (S, n) int64 (AR) or (S, d) float64 (diffusion)
    rounds_per_sample : ndarray, shape (S,) int64
        Batched oracle calls in which the sample had at least one row.
    rows_per_sample : ndarray, shape (S,) int64
        Oracle rows (AR contexts or denoiser states) the sample used.
    coupled : ndarray or None
        :func:`picard` with ``coupled=True``: the sequential chain's output on the
        same noise, row by row (its oracle calls are not counted).
    """

    samples: np.ndarray
    rounds_per_sample: np.ndarray
    rows_per_sample: np.ndarray
    coupled: Optional[np.ndarray] = None


def _check_k(k, n):
    return check_int("k", k, 1, n, what=" (positions per round)")


def confidence(probs):
    """Confidence of each position: its largest marginal probability.

    Parameters
    ----------
    probs : ndarray, shape (..., n, q) float64
        Current marginals.

    Returns
    -------
    ndarray, shape (..., n) float64
        ``max_y probs[..., i, y]`` rounded to :data:`CONFIDENCE_DECIMALS`.

    Notes
    -----
    The "max-probability" confidence of masked-diffusion decoders; LLaDA's
    low-confidence remasking ranks by the probability of the drawn symbol instead.
    The max is a function of the context alone, which keeps the exact law
    enumerable (:func:`parallel_unmask_law`).
    """
    return np.round(probs.max(axis=-1), CONFIDENCE_DECIMALS)


def parallel_unmask(model, k, n_samples, seed=None, *, confident=False):
    """Unmask k positions per round from the current independent marginals.

    Each round makes one oracle call with every unfinished sample's context, picks
    ``k`` free positions per sample (uniformly at random, or the ``k`` most confident
    with ties broken uniformly at random) and draws each of them independently from
    its current marginal. No verification: for ``k > 1`` the output law is not the
    model's.

    Parameters
    ----------
    model : fastspec.ARModel
        ``model.marginals(ctx)``: ctx int64 (K, n), -1 = free -> (K, n, q).
    k : int
        Positions per round, ``1 <= k <= n``; the last round takes what is left.
    n_samples : int
        Independent samples S (>= 1).
    seed : None, int, SeedSequence or Generator
        Passed to ``numpy.random.default_rng``.
    confident : bool, default False
        Rank positions by :func:`confidence` instead of a uniformly random order.

    Returns
    -------
    PeerRun
        ``samples`` int64 (S, n); ``ceil(n / k)`` rounds and rows per sample.

    Raises
    ------
    ValueError
        If ``k`` or ``n_samples`` is out of range.
    """
    n, q = model.n, model.q
    k = _check_k(k, n)
    check_int("n_samples", n_samples, 1)
    rng = np.random.default_rng(seed)
    S = int(n_samples)
    ctx = np.full((S, n), -1, dtype=np.int64)
    rows = np.arange(S)[:, None]
    rounds = 0
    for start in range(0, n, k):
        m = min(k, n - start)
        probs = np.asarray(model.marginals(ctx), dtype=np.float64)
        key = rng.random((S, n))           # random order, or the tie-breaker
        if confident:
            conf = np.where(ctx < 0, confidence(probs), -np.inf)
            ranked = np.lexsort((key, -conf), axis=-1)   # most confident first
        else:
            ranked = np.argsort(np.where(ctx < 0, key, np.inf), axis=-1)
        pick = ranked[:, :m]                                          # (S, m), all free
        cdf = np.cumsum(probs[rows, pick], axis=-1)                   # (S, m, q)
        u = rng.random((S, m, 1)) * cdf[..., -1:]
        ctx[rows, pick] = np.minimum((u >= cdf).sum(axis=-1), q - 1)
        rounds += 1
    count = np.full(S, rounds, dtype=np.int64)
    return PeerRun(ctx, count, count.copy())


def _subset_weights(conf, combos, m):
    """Probability that each subset in ``combos`` is the top-m set of ``conf``.

    conf (M, f) confidences of the free positions; combos (C, m) indices into them.
    Positions above the m-th largest value are always taken; the rest of the m come
    uniformly from those tied with it.
    """
    ordered = -np.sort(-conf, axis=1)
    thresh = ordered[:, m - 1:m]                                      # (M, 1)
    above = (conf > thresh).sum(axis=1)                               # (M,)
    tied = (conf == thresh).sum(axis=1)
    member = conf[:, combos]                                          # (M, C, m)
    valid = ((member >= thresh[:, :, None]).all(axis=2)
             & ((member > thresh[:, :, None]).sum(axis=2) == above[:, None]))
    ways = np.array([comb(int(t), m - int(a)) for t, a in zip(tied, above)], dtype=np.float64)
    return valid / ways[:, None]


def parallel_unmask_law(model, k, *, confident=False):
    """Exact output law of :func:`parallel_unmask` on a small model.

    Probability mass is pushed through every reachable context, one round at a
    time: a context with ``f`` free positions moves to each subset of ``min(k, f)``
    of them with the probability the sampler picks that subset, times the product
    of the current marginals of the drawn symbols.

    Parameters
    ----------
    model : fastspec.ARModel
        Small: the work is about ``(q + 1)**n`` oracle rows.
    k : int
        Positions per round, ``1 <= k <= n``.
    confident : bool, default False
        As in :func:`parallel_unmask`.

    Returns
    -------
    ndarray, shape (q**n,) float64
        ``law[i]`` = probability of configuration ``np.unravel_index(i, (q,) * n)``
        (C order, as ``TableModel.flat_index``).

    Raises
    ------
    ValueError
        If ``k`` is out of range or ``(q + 1)**n`` exceeds ``10**7``.
    """
    n, q = model.n, model.q
    k = _check_k(k, n)
    if (q + 1) ** n > 10 ** 7:
        raise ValueError(f"model too large to enumerate: (q + 1)**n = {(q + 1) ** n} > 1e7 "
                         f"(n={n}, q={q})")
    # A context is coded in base q + 1, digit 0 = free, digit v + 1 = symbol v; digit i
    # has weight (q + 1)**(n - 1 - i) so a full context maps to the C-order index.
    weight = (q + 1) ** np.arange(n - 1, -1, -1, dtype=np.int64)
    codes = np.zeros(1, dtype=np.int64)
    mass = np.ones(1)
    for start in range(0, n, k):
        f, m = n - start, min(k, n - start)
        digits = (codes[:, None] // weight) % (q + 1)                 # (M, n)
        ctx = digits - 1
        probs = np.asarray(model.marginals(ctx), dtype=np.float64)    # one batched call
        # Free positions of each context in increasing order (a stable sort puts the
        # False entries of "pinned" first); every context of a round has f of them.
        free = np.argsort(digits != 0, axis=1, kind="stable")[:, :f]  # (M, f)
        combos = np.array(list(combinations(range(f), m)), dtype=np.int64)  # (C, m)
        at = np.arange(len(codes))[:, None]
        if confident:
            conf = confidence(probs[at, free])
            pick_p = _subset_weights(conf, combos, m)                 # (M, C)
        else:
            pick_p = np.full((len(codes), len(combos)), 1.0 / len(combos))
        values = np.array(np.unravel_index(np.arange(q ** m), (q,) * m)).T  # (q^m, m)
        new_codes, new_mass = [], []
        for c, combo in enumerate(combos):
            pos = free[:, combo]                                      # (M, m)
            p = np.ones((len(codes), len(values)))
            step = np.zeros((len(codes), len(values)), dtype=np.int64)
            for j in range(m):
                p *= probs[at, pos[:, j:j + 1], values[None, :, j]]
                step += (values[None, :, j] + 1) * weight[pos[:, j:j + 1]]
            new_codes.append((codes[:, None] + step).ravel())
            new_mass.append((mass[:, None] * pick_p[:, c:c + 1] * p).ravel())
        codes, inverse = np.unique(np.concatenate(new_codes), return_inverse=True)
        mass = np.bincount(inverse.ravel(), weights=np.concatenate(new_mass),
                           minlength=len(codes))
    digits = (codes[:, None] // weight) % (q + 1) - 1                 # all pinned now
    law = np.zeros(q ** n)
    np.add.at(law, np.ravel_multi_index(tuple(digits.T), (q,) * n), mass)
    return law


# -- diffusion ------------------------------------------------------------------------

def _levels(schedule, final_s, final_sigma):
    s = np.append(schedule.s, float(final_s))
    sig = np.append(schedule.sigma, float(final_sigma))
    if not (s[-1] > 0 and sig[-1] >= 0):
        raise ValueError(f"final_s must be > 0 and final_sigma >= 0, got final_s={final_s}, "
                         f"final_sigma={final_sigma}")
    return s, sig


def respace(schedule, n_steps, final_s, final_sigma):
    """The ancestral chain of ``schedule`` on ``n_steps + 1`` of its noise levels.

    Parameters
    ----------
    schedule : fastspec.schedules.Schedule
        The reference chain: step ``j`` evaluates the denoiser at level
        ``(s_j, sigma_j)``; a state at that level is ``y = s (x + sigma eps)``.
    n_steps : int
        Steps of the new chain, ``1 <= n_steps <= schedule.n_steps``. Levels
        ``round(linspace(0, N, n_steps + 1))`` of the reference grid are kept (evenly
        strided steps, as DDIM and improved-DDPM respacing do).
    final_s, final_sigma : float
        Level of the reference output (VE: ``1, sigma_min``; VP: ``1, 0``).

    Returns
    -------
    Schedule
        From level ``(s, sigma)`` to ``(s', sigma')`` with ``r = sigma'**2 / sigma**2``:
        ``a = s' r / s``, ``b = s' (1 - r)``, ``c = s' sigma' sqrt(1 - r)``, the Gaussian
        posterior of the cleaner level given the noisier one and the data, the data
        replaced by the denoiser's estimate. This is how :func:`fastspec.schedules.ve`
        and :func:`fastspec.schedules.vp` are built, so ``n_steps = N`` gives the
        reference back (for VE with a divisor of N, exactly ``ve(n_steps)``). A last
        step to ``sigma' = 0`` gets the noise of the step before it, as ``vp`` does
        (the clipped variance of improved DDPM).

    Raises
    ------
    ValueError
        If ``n_steps`` is out of range or the final level is invalid.
    """
    N = schedule.n_steps
    check_int("n_steps", n_steps, 1, N)
    s, sig = _levels(schedule, final_s, final_sigma)
    keep = np.round(np.linspace(0, N, int(n_steps) + 1)).astype(np.int64)
    s, sig = s[keep], sig[keep]
    r = (sig[1:] / sig[:-1]) ** 2
    a = s[1:] * r / s[:-1]
    b = s[1:] * (1.0 - r)
    c = s[1:] * sig[1:] * np.sqrt(1.0 - r)
    if c[-1] == 0 and n_steps > 1:
        c[-1] = c[-2]
    return Schedule(a, b, c, s[:-1], sig[:-1], schedule.init_scale,
                    final_s=final_s if final_sigma > 0 else None,
                    final_sigma=final_sigma if final_sigma > 0 else None,
                    name=f"respace[{schedule.name}, n_steps={int(n_steps)}]")


def ddim_schedule(schedule, final_s, final_sigma):
    """Deterministic DDIM chain on the noise grid of ``schedule``.

    Parameters
    ----------
    schedule : fastspec.schedules.Schedule
        Supplies the grid: step ``j`` evaluates the denoiser at ``(s_j, sigma_j)``
        (use :func:`respace` first for fewer steps).
    final_s, final_sigma : float
        Level of the output: ``s_N > 0``, ``sigma_N >= 0`` (``sigma_N = 0`` ends on the
        last denoised estimate, as DDPM/VP does at ``alphabar_0 = 1``).

    Returns
    -------
    Schedule
        ``c = 0`` and, with ``D = D(y_j / s_j, sigma_j)``,
        ``y_{j+1} = s_{j+1} (D + sigma_{j+1} / sigma_j (y_j / s_j - D))``, i.e.
        ``a_j = s_{j+1} sigma_{j+1} / (s_j sigma_j)``, ``b_j = s_{j+1} - a_j s_j``.

    Notes
    -----
    The state is ``y = s (x + sigma eps)``; the update keeps the current noise
    estimate ``eps_hat = (y / s - D) / sigma`` and moves it to the next level, the
    deterministic (eta = 0) DDIM step. VE (``s = 1``):
    ``y' = D + (sigma' / sigma) (y - D)``, the Euler step of the probability-flow ODE
    with ``sigma(t) = t`` (Karras et al. 2022, "Elucidating the design space of
    diffusion-based generative models", who show it equals DDIM). VP
    (``s = sqrt(alphabar)``, ``sigma = sqrt((1 - alphabar) / alphabar)``):
    ``y' = sqrt(alphabar') D + sqrt(1 - alphabar') eps_hat`` with
    ``eps_hat = (y - sqrt(alphabar) D) / sqrt(1 - alphabar)``, eq. (12) of Song, Meng &
    Ermon 2021 ("Denoising diffusion implicit models") with sigma_t = 0.
    """
    s, sig = _levels(schedule, final_s, final_sigma)
    a = s[1:] * sig[1:] / (s[:-1] * sig[:-1])
    b = s[1:] - a * s[:-1]
    return Schedule(a, b, np.zeros_like(a), schedule.s, schedule.sigma, schedule.init_scale,
                    final_s=final_s if final_sigma > 0 else None,
                    final_sigma=final_sigma if final_sigma > 0 else None,
                    name=f"ddim[{schedule.name}]")


def _denoise(model, y, s, sigma):
    return np.asarray(model.denoise(y / s[:, None], sigma), dtype=np.float64)


def chain_path(model, schedule, y0, xi):
    """Run the chain step by step with given randomness; return ``y_N``.

    Parameters
    ----------
    model : fastspec.DiffusionModel
    schedule : Schedule
    y0 : ndarray, shape (S, d)
        Initial states.
    xi : ndarray, shape (S, N, d), or None
        Step noises (ignored where ``c_j = 0``; None when every ``c_j = 0``).

    Returns
    -------
    ndarray, shape (S, d) float64
    """
    y = np.array(y0, dtype=np.float64)
    S = y.shape[0]
    for j in range(schedule.n_steps):
        D = _denoise(model, y, np.full(S, schedule.s[j]), np.full(S, schedule.sigma[j]))
        y = schedule.a[j] * y + schedule.b[j] * D
        if schedule.c[j] > 0:
            y += schedule.c[j] * xi[:, j]
    return y


def run_chain(model, schedule, n_samples, seed=None):
    """Sequential (ancestral or DDIM) chain, all samples batched in each step.

    Parameters
    ----------
    model : fastspec.DiffusionModel
    schedule : Schedule
    n_samples : int
        Chains run together, one denoiser call of ``n_samples`` rows per step.
    seed : None, int, SeedSequence or Generator

    Returns
    -------
    PeerRun
        ``samples`` (S, d); N rounds and N rows per sample.
    """
    rng = np.random.default_rng(seed)
    S, d, N = int(n_samples), model.dim, schedule.n_steps
    y = schedule.init_scale * rng.standard_normal((S, d))
    for j in range(N):
        D = _denoise(model, y, np.full(S, schedule.s[j]), np.full(S, schedule.sigma[j]))
        y = schedule.a[j] * y + schedule.b[j] * D
        if schedule.c[j] > 0:
            y += schedule.c[j] * rng.standard_normal((S, d))
    count = np.full(S, N, dtype=np.int64)
    return PeerRun(y, count, count.copy())


def picard_path(model, schedule, y0, xi, tol, window):
    """ParaDiGMS Picard iterations on a sliding window, per sample, noise given.

    The chain ``y_{j+1} = y_j + delta_j(y_j) + c_j xi_j`` with
    ``delta_j(y) = (a_j - 1) y + b_j D(y / s_j, sigma_j)`` is solved on a window of
    steps ``[t, t + L)``: one round evaluates the denoiser at every state of the
    window (L rows), then every state is replaced by
    ``y_t + sum_{i < j} (delta_i + c_i xi_i)`` (a Picard iteration). The window
    slides to the first state whose squared change exceeds ``tol**2 * d * c^2`` (c
    the noise scale of the step that produced it); that state's new value came from
    converged inputs, so it is the next anchor. New window states start at the
    window's last state. Each sample has its own window (as if run alone).

    Parameters
    ----------
    model : fastspec.DiffusionModel
    schedule : Schedule
        Every ``c_j > 0`` (the tolerance is relative to it).
    y0 : ndarray, shape (S, d)
    xi : ndarray, shape (S, N, d)
        The chain's fixed noise.
    tol : float
        Tolerance (> 0 converges to the sequential path as tol -> 0); ParaDiGMS
        uses 0.1 by default.
    window : int
        Window length (>= 1); rows per round per sample.

    Returns
    -------
    PeerRun
        ``samples`` (S, d) = the approximate ``y_N``.

    Raises
    ------
    ValueError
        If some ``c_j <= 0``, ``tol < 0`` or ``window < 1``.
    """
    schedule.check_speculative()
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")
    check_int("window", window, 1)
    y0 = np.asarray(y0, dtype=np.float64)
    S, d = y0.shape
    N = schedule.n_steps
    W = min(int(window), N)
    a, b, c, s, sig = schedule.a, schedule.b, schedule.c, schedule.s, schedule.sigma
    # Arrays hold the unfinished samples only (ids maps them back), so every
    # operation below runs on whole arrays, without gathers by an active mask.
    ids = np.arange(S)
    buf = np.repeat(y0[:, None], W + 1, axis=1)     # buf[:, i] = guess for y_{begin + i}
    begin = np.zeros(S, dtype=np.int64)
    out = np.empty((S, d))
    rounds = np.zeros(S, dtype=np.int64)
    rows = np.zeros(S, dtype=np.int64)
    offs = np.arange(W)
    while ids.size:
        steps = begin[:, None] + offs                                 # (A, W)
        valid = steps < N
        j = np.minimum(steps, N - 1)
        D = np.zeros((ids.size, W, d))
        D[valid] = _denoise(model, buf[:, :W][valid], s[j[valid]], sig[j[valid]])  # one round
        rounds[ids] += 1
        rows[ids] += valid.sum(axis=1)
        incr = buf[:, :W] * (a[j] - 1.0)[..., None]
        incr += b[j][..., None] * D
        incr += c[j][..., None] * xi[ids[:, None], j]
        incr[~valid] = 0.0
        new = np.cumsum(incr, axis=1, out=incr)
        new += buf[:, :1]                                             # y_{begin+1 .. begin+W}
        err = ((new - buf[:, 1:]) ** 2).sum(axis=2) / (d * c[j] ** 2)
        err[~valid] = np.inf
        over = np.concatenate([err > tol ** 2, np.ones((ids.size, 1), bool)], axis=1)
        stride = np.minimum(np.argmax(over, axis=1) + 1, W)           # ParaDiGMS' slide rule
        buf[:, 1:] = new
        done = begin + stride >= N
        if done.any():
            fin = np.flatnonzero(done)
            out[ids[fin]] = buf[fin, N - begin[fin]]                  # y_N
            keep = ~done
            ids, buf, begin, stride = ids[keep], buf[keep], begin[keep], stride[keep]
        # Slide: buf[:, i] <- buf[:, i + stride]; positions past the window start at its end.
        src = np.minimum(np.arange(W + 1) + stride[:, None], W)
        buf = np.take_along_axis(buf, src[..., None], axis=1)
        begin += stride
    return PeerRun(out, rounds, rows)


def picard(model, schedule, n_samples, seed=None, *, tol=0.1, window=None, chunk=256,
           coupled=False):
    """ParaDiGMS Picard sampler (see :func:`picard_path`), fresh noise per sample.

    Parameters
    ----------
    model : fastspec.DiffusionModel
    schedule : Schedule
    n_samples : int
    seed : None, int, SeedSequence or Generator
    tol : float, default 0.1
    window : int or None
        Window length; None = the whole chain (N).
    chunk : int, default 256
        Samples run together; bounds the memory of the pre-drawn noise
        (chunk * N * d floats). Per-sample rounds do not depend on it.
    coupled : bool, default False
        Also run the sequential chain on the same noise (``PeerRun.coupled``).

    Returns
    -------
    PeerRun
    """
    rng = np.random.default_rng(seed)
    N, d = schedule.n_steps, model.dim
    window = N if window is None else window
    parts = []
    for start in range(0, int(n_samples), chunk):
        m = min(chunk, int(n_samples) - start)
        y0 = schedule.init_scale * rng.standard_normal((m, d))
        xi = rng.standard_normal((m, N, d))
        run = picard_path(model, schedule, y0, xi, tol, window)
        if coupled:
            run = PeerRun(run.samples, run.rounds_per_sample, run.rows_per_sample,
                          chain_path(model, schedule, y0, xi))
        parts.append(run)
    fields = ("samples", "rounds_per_sample", "rows_per_sample") + (("coupled",) if coupled else ())
    return PeerRun(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))
