"""``fastspec.sample``: one entry point for every model family and method."""

import numbers

import numpy as np

#: Public methods. "auto" resolves to the method the benchmarks show best.
METHODS = ("auto", "sequential", "token", "block", "srs")


def check_method(method):
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    return method


def check_n_samples(n_samples):
    if (not isinstance(n_samples, (numbers.Integral, np.integer)) or isinstance(n_samples, bool)
            or n_samples < 1):
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    return int(n_samples)


def sample(model, *, n_samples=1, method="auto", seed=None, order=None, block_size="auto",
           row_cost=None, schedule=None):
    """Draw exact samples from ``model`` with few sequential oracle rounds.

    Parameters
    ----------
    model : ARModel or DiffusionModel
        The model, reachable only through its oracle.
    n_samples : int, default 1
        Independent samples to draw. They share every oracle round, so the
        rounds of a batch are about those of one sample.
    method : {"auto", "sequential", "token", "block", "srs"}, default "auto"
        ``"sequential"``: one round per step (ancestral sampling).
        ``"token"``: per-position speculative verification.
        ``"block"``: sequence-level prefix-optimal verification.
        ``"srs"``: speculative rejection sampling.
        ``"auto"``: ``"block"``, the fastest in the project's benchmarks.
        Every method draws from exactly the same law.
    seed : None, int, numpy.random.SeedSequence or numpy.random.Generator
        Source of randomness. The same seed gives the same samples whatever
        ``NUMBA_NUM_THREADS`` is.
    order : None or array_like of int, shape (n,)
        AR only. ``None`` draws a uniformly random order per sample; an array
        must be a permutation of ``range(n)`` and is used for every sample.
    block_size : "auto" or int, default "auto"
        Length of each speculated block. ``"auto"`` starts near the square
        root of the number of steps and adapts to the accepted lengths,
        aiming at the fewest rounds.
    row_cost : None or float > 0, default None
        Methods "token" and "block" with ``block_size="auto"`` only. Set it to
        aim at the least oracle *cost* instead of the fewest rounds. It is the
        cost of one extra oracle row relative to a round's fixed cost: for an
        oracle whose call with K rows takes ``t0 + K * t1`` seconds, that is
        ``t1 / t0``. Blocks are then sized to maximise the expected advance per
        unit cost, which wastes fewer rows at the price of more rounds. This pays
        off when rows are not cheap, e.g. a neural network on a CPU; see
        docs/BENCHMARKS.md. The law of the samples does not change.
    schedule : Schedule, optional
        Diffusion only: the Gaussian chain to run
        (default ``fastspec.schedules.ve(1000, 80.0, 0.002)``).

    Returns
    -------
    SampleResult
        ``samples`` and ``stats`` (rounds, oracle rows, per-sample rounds,
        accepted lengths); ``print(result.stats)`` gives a short summary.

    Raises
    ------
    ValueError
        For an invalid argument; the message lists what is allowed.
    OracleError
        If the oracle returns an invalid answer (no sample is returned).

    Examples
    --------
    >>> import fastspec
    >>> model = fastspec.models.CurieWeiss(n=64, J=1.0)
    >>> res = fastspec.sample(model, n_samples=4, seed=0)
    >>> res.samples.shape
    (4, 64)
    """
    from .ar.model import ARModel
    from .diffusion.model import DiffusionModel

    n_samples = check_n_samples(n_samples)
    method = check_method(method)
    if isinstance(model, ARModel):
        if schedule is not None:
            raise ValueError("schedule is for DiffusionModel only; an ARModel takes order=")
        from .ar.sampling import sample_ar
        return sample_ar(model, n_samples=n_samples, method=method, seed=seed, order=order,
                         block_size=block_size, row_cost=row_cost)
    if isinstance(model, DiffusionModel):
        if order is not None:
            raise ValueError("order is for ARModel only; a DiffusionModel takes schedule=")
        from .diffusion.sampling import sample_diffusion
        return sample_diffusion(model, schedule=schedule, n_samples=n_samples, method=method,
                                seed=seed, block_size=block_size, row_cost=row_cost)
    raise TypeError(
        f"model must be a fastspec.ARModel or fastspec.DiffusionModel, got {type(model).__name__}")
