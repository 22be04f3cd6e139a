"""Rounds in flight: groups of samples whose oracle calls overlap (``max_in_flight``).

With one group, each round waits for its call before the engine can plan the
next one, and the engine's work and the network's wait add up. With ``G``
groups of consecutive samples, each drawn by its own thread through
``fastspec.api._sample(..., _sample_offset=start)``, up to ``G`` calls are in
flight at once and one group's engine work runs while another waits for its
answer (the HTTP wait releases the GIL). Sample ``i`` depends only on
``(seed, i)`` (:mod:`fastspec._seeds`), so the groups' results, put together by
:func:`fastspec.cluster._combine` as Dask's chunks are, equal
``fastspec.sample``'s bit for bit whatever ``max_in_flight`` is.

This lives here, not in :func:`fastspec.sample`, because it pays only when the
oracle waits without holding the GIL, as a remote one does; a local numpy or
numba oracle computes on the same cores and gains nothing from threads.
"""

import time
from concurrent.futures import ThreadPoolExecutor

__all__ = ["sample"]


def group_bounds(n_samples, groups):
    """``[(start, stop), ...]``: ``n_samples`` cut into ``groups`` near-equal consecutive runs."""
    groups = min(groups, n_samples)
    edges = [n_samples * g // groups for g in range(groups + 1)]
    return list(zip(edges[:-1], edges[1:]))


def sample(model, *, n_samples=1, seed=None, max_in_flight=1, **sample_kwargs):
    """:func:`fastspec.sample` with up to ``max_in_flight`` oracle rounds in flight at once.

    Parameters
    ----------
    model : ARModel or DiffusionModel
        Typically from :func:`fastspec.remote.ar_model` or
        :func:`fastspec.remote.diffusion_model`; its oracle is called from
        ``max_in_flight`` threads at once, so it must be thread-safe (the
        remote oracles are).
    n_samples : int, default 1
    seed : None, int, SeedSequence or Generator
        As for :func:`fastspec.sample` (a Generator is consumed once, here).
    max_in_flight : int, default 1
        Groups of consecutive samples drawn concurrently, each with its own
        rounds (at most ``n_samples``). 1 is exactly :func:`fastspec.sample`.
    **sample_kwargs
        Passed on to :func:`fastspec.sample` (``method``, ``order``, ``given``,
        ``block_size``, ...); a per-sample ``given`` is cut with the samples.
        ``progress=True`` is allowed only with ``max_in_flight=1``.

    Returns
    -------
    SampleResult
        The samples (and ``orders``, ``log_prob``) of ``fastspec.sample`` bit
        for bit. ``stats.rounds`` is the largest group's, ``contexts``,
        ``oracle_calls`` and ``oracle_seconds`` sum over groups,
        ``wall_seconds`` is this call's.

    Raises
    ------
    ValueError, TypeError
        As :func:`fastspec.sample`, and for a bad ``max_in_flight``.
    Exception
        The first group's exception to end, unchanged (with the round's note);
        groups still running finish their current call first.

    Examples
    --------
    >>> import fastspec, fastspec.remote
    >>> model = fastspec.models.CurieWeiss(n=16)
    >>> a = fastspec.remote.sample(model, n_samples=6, seed=1, max_in_flight=3)
    >>> b = fastspec.sample(model, n_samples=6, seed=1)
    >>> bool((a.samples == b.samples).all())
    True
    """
    from .._seeds import as_seed_sequence
    from .._checks import check_int
    from ..api import _sample, check_n_samples
    from ..cluster import _check_kwargs, _chunk_kwargs, _combine

    t_start = time.perf_counter()
    n_samples = check_n_samples(n_samples)
    groups = check_int("max_in_flight", max_in_flight, 1, what=" (oracle rounds in flight)")
    _check_kwargs(n_samples, sample_kwargs, caller="fastspec.remote.sample")
    if groups == 1:
        return _sample(model, n_samples=n_samples, seed=seed, **sample_kwargs)
    if sample_kwargs.get("progress"):
        raise ValueError("progress=True needs max_in_flight=1 (each group would draw its "
                         "own bar)")
    root = as_seed_sequence(seed)
    bounds = group_bounds(n_samples, groups)

    def run(bound):
        a, b = bound
        return _sample(model, n_samples=b - a, seed=root, _sample_offset=a,
                       **_chunk_kwargs(sample_kwargs, a, b))

    with ThreadPoolExecutor(max_workers=len(bounds), thread_name_prefix="fastspec-group") as pool:
        futures = [pool.submit(run, bound) for bound in bounds]
        results = [f.result() for f in futures]
    return _combine(results, time.perf_counter() - t_start)
